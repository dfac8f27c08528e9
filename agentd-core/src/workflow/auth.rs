//! `[auth.*]` and `[server.tls]` as the compiler bakes them
//! ([`crate::Workflow::AUTH`], [`crate::Workflow::TLS`]; read by serve mode,
//! schemes behind `auth-hmac`, `auth-oidc`, `tls`). Secret names and file
//! paths, never values. Preparing and checking them is
//! `agentd_runtime::serve::auth`'s and `agentd_runtime::serve::tls`'s; this module only
//! describes.

/// `[auth.bearer.NAME]`: `Authorization: Bearer <token>`.
#[derive(Debug)]
pub struct BearerDef {
    /// The binding name (`NAME`).
    pub name: &'static str,
    /// `tokens_env`: a secret name whose value holds newline-separated tokens.
    pub tokens_secret: Option<&'static str>,
    /// `tokens`: literal tokens from the workflow file (tests only; the build warns).
    pub tokens: &'static [&'static str],
}

/// `[auth.basic.NAME]`: `Authorization: Basic base64(user:password)` (RFC 7617).
#[derive(Debug)]
pub struct BasicDef {
    /// The binding name (`NAME`).
    pub name: &'static str,
    /// `credentials_env`: a secret name whose value holds newline-separated `user:password`.
    pub credentials_secret: Option<&'static str>,
    /// `credentials`: literal `user:password` entries (tests only; the build warns).
    pub credentials: &'static [&'static str],
}

/// Every `[auth.*]` binding of the workflow, baked by the compiler
/// ([`crate::Workflow::AUTH`]). The hmac and oidc tables are read only by a
/// runtime built with `auth-hmac` / `auth-oidc`, which the compiler enables
/// for a workflow that declares them.
#[derive(Debug)]
pub struct AuthDefs {
    pub bearer: &'static [BearerDef],
    pub basic: &'static [BasicDef],
    pub hmac: &'static [HmacDef],
    pub oidc: &'static [OidcDef],
}

impl AuthDefs {
    /// No bindings (a workflow without `[auth]`).
    pub const EMPTY: AuthDefs = AuthDefs {
        bearer: &[],
        basic: &[],
        hmac: &[],
        oidc: &[],
    };
}

/// `[auth.hmac.NAME]`, with the compiler's defaults applied.
#[derive(Debug)]
pub struct HmacDef {
    /// The binding name (`NAME`).
    pub name: &'static str,
    /// `secret_env`: a secret name, resolved per request; wins over `secret`.
    pub secret_name: Option<&'static str>,
    /// `secret`: the literal key (tests only; the build warns).
    pub secret: Option<&'static str>,
    /// `header` (default [`HmacDef::DEFAULT_HEADER`]).
    pub header: &'static str,
    /// `prefix` (default [`HmacDef::DEFAULT_PREFIX`]); empty means none.
    pub prefix: &'static str,
    /// `timestamp_header` (agentd extension): enables the replay window.
    pub timestamp_header: Option<&'static str>,
    /// `tolerance_secs` (default [`HmacDef::DEFAULT_TOLERANCE_SECS`]).
    pub tolerance_secs: u64,
}

impl HmacDef {
    pub const DEFAULT_HEADER: &'static str = "X-Agent-Signature";
    pub const DEFAULT_PREFIX: &'static str = "sha256=";
    pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
}

/// Where a binding's key set comes from.
#[derive(Debug, Clone, Copy)]
pub enum JwksSource {
    /// `jwks_json`: baked into the binary.
    Inline(&'static str),
    /// `jwks_file`: read at start and on every reload (relative to the working
    /// directory).
    File(&'static str),
}

/// `[auth.oidc.NAME]`, with the compiler's defaults applied.
#[derive(Debug)]
pub struct OidcDef {
    pub name: &'static str,
    pub issuer: &'static str,
    /// Empty: `aud` is not checked.
    pub audience: &'static [&'static str],
    pub jwks: JwksSource,
    /// Empty: any subject.
    pub subject_allowlist: &'static [&'static str],
    /// Leeway for `exp` and `nbf` (default 60).
    pub clock_skew_secs: u64,
    /// Allowed `alg` values (default `["RS256"]`).
    pub algorithms: &'static [&'static str],
}

/// `[server.tls]`, baked by the compiler ([`crate::Workflow::TLS`]).
#[derive(Debug)]
pub struct TlsDef {
    /// PEM chain, leaf first. Relative paths are relative to the working directory.
    pub cert_file: &'static str,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: &'static str,
    /// `[server.tls.client_auth]` with mode `required` or `optional`.
    pub client_auth: Option<ClientAuthDef>,
}

/// `[server.tls.client_auth]`.
#[derive(Debug)]
pub struct ClientAuthDef {
    pub mode: ClientCertMode,
    /// PEM certificates of the CAs client certificates must chain to.
    pub ca_file: &'static str,
}

/// Whether a client certificate must be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertMode {
    /// No certificate, no handshake.
    Required,
    /// Verified when presented; connections without one are accepted.
    Optional,
}
