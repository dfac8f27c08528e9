//! The intelligence layer: LLM backends behind one trait (feature `llm`).
//!
//! Owns the chat request/reply shapes ([`ChatRequest`], [`ChatReply`]), the
//! [`Backend`] trait, the registry of named backends a run sees
//! ([`Backends`]), the process-wide token budget ([`TokenBudget`]) and the
//! baked backend definitions of `[[intelligence.backends]]` ([`BackendDef`]).
//! The transports live in submodules: [`mock`] (the scripted harness
//! backend), [`rpc`] (the dialect's JSON-RPC adapter over a Unix socket or
//! plain HTTP), and with feature `llm-remote` the providers `openai`
//! (OpenAI-compatible chat completions), `anthropic` (Messages API) and
//! `gemini` (`generateContent`), which share `remote`.
//!
//! Everything a backend receives from the outside (socket bytes, HTTP
//! bodies, model output) is untrusted: sizes are bounded, malformed input is
//! an [`Error::Intelligence`], and nothing here panics on it. This module
//! never decides what a node does with a reply (see [`crate::nodes::llm`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
pub use crate::workflow::intel::{BackendDef, Provider};

#[cfg(feature = "llm-remote")]
pub mod anthropic;
#[cfg(feature = "llm-remote")]
pub mod gemini;
pub mod mock;
#[cfg(feature = "llm-remote")]
pub mod openai;
#[cfg(feature = "llm-remote")]
pub mod remote;
pub mod rpc;

/// The reserved name of the command-line backend (`--intel-unix`/`--intel-http`).
pub const DEFAULT_BACKEND: &str = "default";

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `user`, `assistant` (or `system`).
    pub role: &'static str,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A `user` message.
    #[must_use]
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }

    /// An `assistant` message.
    #[must_use]
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: "assistant",
            content: content.into(),
        }
    }
}

/// A chat completion request in the dialect's shape (docs/llm.md "Wire formats").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The logical model name (`llm_infer` always sends `"fast"`); remote
    /// providers substitute their configured model.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Completion token cap; omitted from the wire when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature; omitted from the wire when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// What a backend answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatReply {
    /// The assistant text.
    pub content: String,
    /// Prompt tokens billed (0 when the backend reported no usage).
    pub prompt_tokens: u64,
    /// Completion tokens billed.
    pub completion_tokens: u64,
}

impl ChatReply {
    /// Prompt plus completion tokens (saturating).
    #[must_use]
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// An LLM backend. Implementations must be safe to call from the threads of
/// `parallel`/`map` at once.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Run one completion.
    ///
    /// # Errors
    ///
    /// [`Error::Intelligence`] for transport failures and malformed replies.
    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error>;

    /// The `max_tokens` of the backend's `[[intelligence.backends]]` definition, if
    /// any. `llm_infer` sends it instead of its default of 1024 (dialect 1 always
    /// sent 1024, overriding it).
    fn max_tokens(&self) -> Option<u32> {
        None
    }
}

/// The named backends a run can reach. Cheap to share (`Arc`).
#[derive(Clone, Debug, Default)]
pub struct Backends {
    map: BTreeMap<String, Arc<dyn Backend>>,
}

impl Backends {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `backend` as `name`, replacing any earlier one.
    pub fn insert(&mut self, name: impl Into<String>, backend: Arc<dyn Backend>) {
        self.map.insert(name.into(), backend);
    }

    /// Whether no backend is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Look up `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Intelligence`] naming the known backends (docs/dialect.md §7 `llm_infer`).
    pub fn get(&self, name: &str) -> Result<&dyn Backend, Error> {
        self.map.get(name).map(|b| &**b).ok_or_else(|| {
            let known = self
                .names()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            Error::Intelligence(format!(
                "backend `{name}` is not configured on this runtime; known backends: {}",
                if known.is_empty() { "(none)" } else { &known }
            ))
        })
    }
}

/// The `[budget].max_llm_tokens` counter: cumulative prompt + completion
/// tokens, shared by every run of the process, never reset (docs/dialect.md §12.6).
#[derive(Debug, Default)]
pub struct TokenBudget {
    cap: Option<u64>,
    used: AtomicU64,
}

impl TokenBudget {
    /// A budget capped at `cap` tokens (`None` or `Some(0)` = unbounded: `0`
    /// means no limit for every `[budget]` key).
    #[must_use]
    pub fn new(cap: Option<u64>) -> Self {
        Self {
            cap: cap.filter(|c| *c > 0),
            used: AtomicU64::new(0),
        }
    }

    /// Tokens consumed so far.
    #[must_use]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The cap, if any.
    #[must_use]
    pub fn cap(&self) -> Option<u64> {
        self.cap
    }

    /// The check made before every call.
    ///
    /// # Errors
    ///
    /// `Error::Tool` (`tool` = the node kind) once the cap is reached:
    /// `budget.max_llm_tokens exceeded: U / C tokens consumed`.
    pub fn check(&self, tool: &'static str) -> Result<(), Error> {
        let used = self.used();
        match self.cap {
            Some(cap) if used >= cap => {
                crate::obs::audit(
                    "budget.llm_tokens_exceeded",
                    serde_json::json!({"tool": tool, "used": used, "cap": cap}),
                );
                Err(Error::tool(
                    tool,
                    format!("budget.max_llm_tokens exceeded: {used} / {cap} tokens consumed"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Bill `tokens` after a call.
    pub fn add(&self, tokens: u64) {
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_add(tokens))
            });
    }
}

/// What an engine hands its runs: the backends and the token budget.
#[derive(Clone, Debug, Default)]
pub struct Intel {
    /// Named backends (`default` = the command-line transport).
    pub backends: Arc<Backends>,
    /// The process-wide token budget.
    pub budget: Arc<TokenBudget>,
}

impl Intel {
    /// Bundle a registry and a budget.
    #[must_use]
    pub fn new(backends: Backends, budget: TokenBudget) -> Self {
        Self {
            backends: Arc::new(backends),
            budget: Arc::new(budget),
        }
    }
}

/// The engine's LLM state for `def` before any backend is wired: no
/// backends, the workflow's `[budget].max_llm_tokens` ([`crate::HOOKS`]'s
/// `llm` slot, called by `Engine::new`).
pub(crate) fn engine_state(def: &'static crate::WorkflowDef) -> crate::workflow::Ext {
    Arc::new(Intel::new(
        Backends::new(),
        TokenBudget::new(def.max_llm_tokens),
    ))
}

/// A run's [`Intel`]: the `intel()` of a node's [`crate::Cx`] and the
/// `with_intel` of an [`crate::Engine`]. The engine and the context live in
/// the feature-free core, which holds this state without naming its type
/// (ARCHITECTURE.md, "The core and the facade").
pub trait IntelExt {
    /// The run's LLM backends and token budget (none, and no budget, when
    /// the engine was built without them: a workflow wired by hand).
    fn intel(&self) -> &Intel;
}

impl IntelExt for crate::Cx<'_> {
    fn intel(&self) -> &Intel {
        static NONE: std::sync::OnceLock<Intel> = std::sync::OnceLock::new();
        self.llm_state()
            .and_then(|s| s.downcast_ref::<Intel>())
            .unwrap_or_else(|| NONE.get_or_init(Intel::default))
    }
}

/// Wiring an engine's LLM backends: see [`IntelExt`].
pub trait WithIntel {
    /// Use `intel` (LLM backends and token budget) for every run.
    #[must_use]
    fn with_intel(self, intel: Intel) -> Self;
}

impl WithIntel for crate::Engine<'_> {
    fn with_intel(self, intel: Intel) -> Self {
        self.with_llm_state(Arc::new(intel))
    }
}

/// Resolves an `api_key_env` secret name to the key at call time; `Err`
/// says why it cannot (never containing a value). A closure rather than a
/// `fn`, so the CLI (not generic over the workflow) can hand it the
/// workflow's `[[secrets]]`.
#[derive(Clone)]
pub struct KeyResolver(Arc<ResolveFn>);

/// The function behind a [`KeyResolver`].
type ResolveFn = dyn Fn(&str) -> Result<String, String> + Send + Sync;

impl KeyResolver {
    /// A resolver calling `resolve`.
    pub fn new(resolve: impl Fn(&str) -> Result<String, String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(resolve))
    }

    /// The key named `name`.
    ///
    /// # Errors
    ///
    /// Why it cannot be resolved (never containing a value).
    pub fn resolve(&self, name: &str) -> Result<String, String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for KeyResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyResolver")
    }
}

/// Build the named backends of `defs` with I/O timeout `timeout`; API keys
/// are resolved with `keys` at every call.
///
/// # Errors
///
/// A message (the CLI exits 2) for a definition this build cannot serve: a
/// missing `model`, a missing `api_key_env` (`anthropic`, `gemini`) or
/// `base_url` (`openai-compatible`), or a build without the `llm-remote`
/// feature.
pub fn build_named(
    defs: &[BackendDef],
    timeout: Duration,
    keys: KeyResolver,
) -> Result<Backends, String> {
    let mut out = Backends::new();
    if defs.is_empty() {
        return Ok(out);
    }
    // Read once for every backend: an unusable CA file refuses to start — but only
    // when some backend speaks https (the providers' default bases do); plain
    // `http://` backends never use the roots, so a missing bundle is no reason to stop.
    let roots = if defs.iter().all(|d| d.base_url.is_some_and(is_plain_http)) {
        plain_roots()
    } else {
        remote_roots()?
    };
    for (i, def) in defs.iter().enumerate() {
        if def.model.is_empty() {
            return Err(format!("intelligence.backends.{i}: `model` is required"));
        }
        // Resolved once now so a missing key refuses to start (exit 2, docs/operations.md
        // "Secrets") instead of failing the first call; the value is dropped and
        // re-resolved at every call, so rotation still needs no restart.
        if let Some(name) = def.api_key_env {
            keys.resolve(name).map_err(|why| {
                format!(
                    "intelligence.backends.{i} (`{}`): API key `{name}` cannot be resolved: {why}",
                    def.name
                )
            })?;
        }
        out.insert(
            def.name,
            remote_backend(i, def, timeout, keys.clone(), &roots)?,
        );
    }
    Ok(out)
}

/// What the remote providers trust for https.
#[cfg(feature = "llm-remote")]
type RemoteRoots = remote::Roots;
#[cfg(not(feature = "llm-remote"))]
type RemoteRoots = NoRoots;

/// What a build without `llm-remote` has instead of TLS roots: nothing.
#[cfg(not(feature = "llm-remote"))]
#[derive(Clone, Copy, Debug)]
struct NoRoots;

/// The roots the remote providers trust ([`crate::tls_roots::Roots::from_env`]).
#[cfg(feature = "llm-remote")]
fn remote_roots() -> Result<RemoteRoots, String> {
    remote::Roots::from_env().map_err(|e| format!("intelligence backends: {e}"))
}

#[cfg(not(feature = "llm-remote"))]
fn remote_roots() -> Result<RemoteRoots, String> {
    Ok(NoRoots)
}

/// Roots for backends that never use TLS (never read from the environment).
#[cfg(feature = "llm-remote")]
fn plain_roots() -> RemoteRoots {
    remote::Roots::WebPki
}

#[cfg(not(feature = "llm-remote"))]
fn plain_roots() -> RemoteRoots {
    NoRoots
}

/// Whether `url` is plain `http://` (case-insensitive scheme).
fn is_plain_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
}

#[cfg(feature = "llm-remote")]
fn remote_backend(
    i: usize,
    def: &BackendDef,
    timeout: Duration,
    keys: KeyResolver,
    roots: &RemoteRoots,
) -> Result<Arc<dyn Backend>, String> {
    let required_key = || {
        def.api_key_env.ok_or_else(|| {
            format!(
                "intelligence.backends.{i} (`{}`): `api_key_env` is required for provider `{}`",
                def.name,
                def.provider.as_str()
            )
        })
    };
    Ok(match def.provider {
        Provider::Anthropic => Arc::new(
            anthropic::AnthropicBackend::new(
                def.base_url.unwrap_or("https://api.anthropic.com"),
                def.model,
                required_key()?,
                def.max_tokens,
                timeout,
                roots,
            )
            .with_key_resolver(keys),
        ),
        Provider::Gemini => Arc::new(
            gemini::GeminiBackend::new(
                def.base_url
                    .unwrap_or("https://generativelanguage.googleapis.com"),
                def.model,
                required_key()?,
                def.max_tokens,
                timeout,
                roots,
            )
            .with_key_resolver(keys),
        ),
        Provider::OpenAi | Provider::OpenAiCompatible => {
            let base = match (def.provider, def.base_url) {
                (_, Some(url)) => url,
                (Provider::OpenAi, None) => "https://api.openai.com",
                _ => {
                    return Err(format!(
                        "intelligence.backends.{i} (`{}`): `base_url` is required for provider `openai-compatible`",
                        def.name
                    ));
                }
            };
            Arc::new(
                openai::OpenAiBackend::new(base, def.model, def.api_key_env, timeout, roots)
                    .with_max_tokens(def.max_tokens)
                    .with_key_resolver(keys),
            )
        }
    })
}

#[cfg(not(feature = "llm-remote"))]
fn remote_backend(
    i: usize,
    def: &BackendDef,
    _timeout: Duration,
    _keys: KeyResolver,
    _roots: &RemoteRoots,
) -> Result<Arc<dyn Backend>, String> {
    Err(format!(
        "intelligence.backends.{i} (`{}`): this binary was built without the `llm-remote` feature",
        def.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Echo;
    impl Backend for Echo {
        fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
            Ok(ChatReply {
                content: req.messages.len().to_string(),
                ..ChatReply::default()
            })
        }
    }

    #[cfg(feature = "llm-remote")]
    #[test]
    fn a_backend_whose_key_cannot_be_resolved_refuses_to_start_naming_it() {
        static DEFS: [BackendDef; 1] = [BackendDef {
            name: "smart",
            provider: Provider::OpenAi,
            model: "gpt-test",
            api_key_env: Some("OPENAI_KEY_FOR_TEST"),
            base_url: None,
            max_tokens: None,
        }];
        fn missing(name: &str) -> Result<String, String> {
            Err(format!("`{name}` is not set"))
        }
        fn present(_: &str) -> Result<String, String> {
            Ok("sk-canary".to_owned())
        }
        let why = build_named(&DEFS, Duration::from_secs(5), KeyResolver::new(missing))
            .err()
            .unwrap_or_default();
        assert!(
            why.contains("`smart`") && why.contains("OPENAI_KEY_FOR_TEST"),
            "{why}"
        );
        let built = build_named(&DEFS, Duration::from_secs(5), KeyResolver::new(present));
        assert!(built.is_ok_and(|b| b.names().eq(["smart"])));
    }

    #[test]
    fn unknown_backend_names_the_known_ones() {
        let mut b = Backends::new();
        b.insert("zeta", Arc::new(Echo));
        b.insert("alpha", Arc::new(Echo));
        let err = b.get("nope").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "intelligence call failed: backend `nope` is not configured on this runtime; \
                 known backends: `alpha`, `zeta`"
            )
        );
        assert!(b.get("alpha").is_ok());
        let empty = Backends::new().get("default").err().map(|e| e.to_string());
        assert!(empty.is_some_and(|e| e.ends_with("known backends: (none)")));
    }

    #[test]
    fn budget_refuses_once_the_cap_is_reached() {
        let b = TokenBudget::new(Some(100));
        assert!(b.check("llm_infer").is_ok());
        b.add(99);
        assert!(b.check("llm_infer").is_ok());
        b.add(1);
        assert_eq!(
            b.check("llm_infer").err().map(|e| e.to_string()).as_deref(),
            Some(
                "tool `llm_infer` failed: budget.max_llm_tokens exceeded: 100 / 100 tokens consumed"
            )
        );
        let unbounded = TokenBudget::new(None);
        unbounded.add(u64::MAX);
        unbounded.add(5);
        assert_eq!(unbounded.used(), u64::MAX);
        assert!(unbounded.check("llm_infer").is_ok());
    }

    #[test]
    fn a_zero_token_cap_means_no_limit() {
        let zero = TokenBudget::new(Some(0));
        assert_eq!(zero.cap(), None);
        assert!(zero.check("llm_infer").is_ok());
        zero.add(1_000_000);
        assert!(zero.check("agent_loop").is_ok());
    }

    #[test]
    fn request_omits_unset_fields_on_the_wire() {
        let req = ChatRequest {
            model: "fast".into(),
            messages: vec![ChatMessage::user("hi")],
            max_tokens: None,
            temperature: None,
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap_or_default(),
            r#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#
        );
    }
}
