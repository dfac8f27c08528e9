//! `[[intelligence.backends]]` as the compiler bakes it
//! ([`crate::Workflow::BACKENDS`], feature `llm`). Building backends from
//! these is `agentd_runtime::intel`'s; this module only describes.

/// `provider` of an `[[intelligence.backends]]` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI (chat completions), default base `https://api.openai.com`.
    OpenAi,
    /// Google Gemini.
    Gemini,
    /// Any OpenAI-dialect server at an explicit `base_url`.
    OpenAiCompatible,
}

impl Provider {
    /// The TOML spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::Gemini => "gemini",
            Self::OpenAiCompatible => "openai-compatible",
        }
    }
}

/// A baked `[[intelligence.backends]]` entry (generated code declares these
/// as [`crate::Workflow::BACKENDS`]).
#[derive(Clone, Copy, Debug)]
pub struct BackendDef {
    /// The name nodes refer to.
    pub name: &'static str,
    /// Which API dialect.
    pub provider: Provider,
    /// The provider's model id (replaces the logical `"fast"`).
    pub model: &'static str,
    /// Environment variable holding the API key, read at every call.
    pub api_key_env: Option<&'static str>,
    /// Base URL (required for `openai-compatible`).
    pub base_url: Option<&'static str>,
    /// The definition's own completion cap (overridden by `llm_infer`).
    pub max_tokens: Option<u32>,
}
