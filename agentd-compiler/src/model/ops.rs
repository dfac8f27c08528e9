//! The operational sections: `[logging]`, `[server]`, `[signing]`, `[budget]`,
//! `[[mcp_servers]]`, `[intelligence]` and `[[secrets]]` (docs/dialect.md §12).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub rotation: Option<String>,
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    #[serde(default)]
    pub otel: Option<OtelConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub redact_fields: Vec<String>,
    #[serde(default)]
    pub include_reason: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtelConfig {
    pub endpoint: String,
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub resource_attrs: BTreeMap<String, String>,
    #[serde(default)]
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    pub mode: ClientAuthMode,
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    Required,
    Optional,
    None,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub public_key_pem: Option<String>,
    #[serde(default)]
    pub public_key_file: Option<String>,
    #[serde(default)]
    pub algorithm: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    #[serde(default)]
    pub max_cpu_secs: Option<u64>,
    #[serde(default)]
    pub max_run_time_secs: Option<u64>,
    #[serde(default)]
    pub max_fs_write_mb: Option<u64>,
    #[serde(default)]
    pub max_llm_tokens: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    pub name: String,
    /// argv of a stdio server; exactly one of `command` and `url` is set.
    #[serde(default)]
    pub command: Vec<String>,
    /// The Streamable HTTP endpoint of a remote server.
    #[serde(default)]
    pub url: Option<String>,
    /// Request headers of a `url` server: literals plus `{{secret:NAME}}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Read timeout of one exchange with this server (seconds, ≥ 1).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub allow_tools: Vec<String>,
    #[serde(default)]
    pub allow_resources: Vec<String>,
    /// Child env var → secret name, resolved at spawn.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// OAuth client credentials for a `url` server behind an authorization server.
    #[serde(default)]
    pub oauth: Option<McpOAuth>,
}

/// `[mcp_servers.oauth]`: the client's registration (secret names, never values).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpOAuth {
    /// The grant: only `client_credentials`.
    pub grant: String,
    /// Secret (or environment variable) holding the client id.
    pub client_id: String,
    /// Secret (or environment variable) holding the client secret.
    pub client_secret: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_auth: Option<String>,
    /// Space-separated scopes to ask for.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntelligenceConfig {
    #[serde(default)]
    pub backends: Vec<BackendDef>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendDef {
    pub name: String,
    pub provider: Provider,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Provider {
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "gemini")]
    Gemini,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

/// `[[secrets]]`: a name plus a `source`-tagged body. Each source accepts only its own
/// keys, so literal secret material has nowhere to go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SecretDef {
    pub name: String,
    #[serde(flatten)]
    pub source: SecretSource,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SecretSource {
    /// The value of an environment variable, read on every use.
    Env(EnvSecret),
    /// The content of a file, read on every use (rotation without restart).
    File(FileSecret),
    /// The trimmed stdout of a program (no shell), cached until the next reload.
    Command(CommandSecret),
    /// An access token from the client credentials grant, cached until it expires.
    Oauth2(OAuth2Secret),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvSecret {
    pub var: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSecret {
    pub path: String,
    #[serde(default)]
    pub trim: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSecret {
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Secret {
    pub token_url: String,
    pub client_id_env: String,
    pub client_secret_env: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    #[serde(default)]
    pub auth_style: Option<String>,
    #[serde(default)]
    pub skew_secs: Option<u64>,
}
