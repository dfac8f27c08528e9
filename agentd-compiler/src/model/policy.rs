//! Who and what is allowed: `[policy]` (fs, env, http, shell, mcp allowlists and
//! `[policy.rego]`) and `[auth]` (route credentials per scheme and binding;
//! docs/dialect.md §12).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// `[policy]`. Present ⇒ fail-closed: every section defaults to empty = deny.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyManifest {
    #[serde(default)]
    pub fs: FsPolicy,
    #[serde(default)]
    pub env: EnvPolicy,
    #[serde(default)]
    pub http: HttpPolicy,
    #[serde(default)]
    pub shell: ShellPolicy,
    #[serde(default)]
    pub mcp: McpPolicy,
    #[serde(default)]
    pub rego: Option<RegoPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsPolicy {
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub delete: Vec<String>,
    #[serde(default)]
    pub list: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvPolicy {
    #[serde(default)]
    pub read_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpPolicy {
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellPolicy {
    #[serde(default)]
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpPolicy {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegoPolicy {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<toml::Value>,
    #[serde(default)]
    pub query: Option<String>,
}

/// `[auth]`: named bindings per scheme (`[auth.bearer.NAME]`, …).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub bearer: BTreeMap<String, BearerAuth>,
    #[serde(default)]
    pub basic: BTreeMap<String, BasicAuth>,
    #[serde(default)]
    pub hmac: BTreeMap<String, HmacAuth>,
    #[serde(default)]
    pub oidc: BTreeMap<String, OidcAuth>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BearerAuth {
    #[serde(default)]
    pub tokens_env: Option<String>,
    #[serde(default)]
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub credentials_env: Option<String>,
    #[serde(default)]
    pub credentials: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacAuth {
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// agentd extension (replay protection; the names dialect 1's docs advertised):
    /// a header holding Unix seconds, signed together with the body.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// agentd extension: how far (seconds) `timestamp_header` may be from now
    /// (default 300).
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcAuth {
    pub issuer: String,
    #[serde(default)]
    pub audience: Vec<String>,
    #[serde(default)]
    pub jwks_json: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<String>,
    #[serde(default)]
    pub subject_allowlist: Vec<String>,
    #[serde(default)]
    pub clock_skew_secs: Option<u64>,
    #[serde(default)]
    pub algorithms: Vec<String>,
}
