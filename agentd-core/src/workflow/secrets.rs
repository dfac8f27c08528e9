//! `[[secrets]]` as the compiler bakes it: names and where each value
//! lives, never a value ([`crate::Workflow::SECRETS`]). Resolution is
//! `agentd_runtime::secrets`'s; this module only describes.

/// A baked `[[secrets]]` entry (generated code declares these as
/// [`crate::Workflow::SECRETS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretDef {
    /// The name consumers use (`{{secret:NAME}}`, `api_key_env`, ...).
    pub name: &'static str,
    /// Where the value lives.
    pub source: SecretSource,
}

/// Where a secret's value is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretSource {
    /// `source = "env"`: the environment variable `var`, read on every use.
    Env {
        /// The variable holding the value.
        var: &'static str,
    },
    /// `source = "file"`: the file at `path`, re-read on every use.
    File {
        /// The file holding the value.
        path: &'static str,
        /// Strip trailing whitespace (default `true`).
        trim: bool,
    },
    /// `source = "command"` (feature `secrets-exec`): the trimmed stdout of
    /// `argv`, run with no shell, cached until the next reload.
    Command {
        /// The program and its arguments (at least the program).
        argv: &'static [&'static str],
    },
    /// `source = "oauth2"` (feature `secrets-oauth2`): an access token from the
    /// client credentials grant, cached until `expires_in − skew_secs`.
    OAuth2 {
        /// The token endpoint.
        token_url: &'static str,
        /// The secret (or environment variable) holding the client id.
        client_id_env: &'static str,
        /// The secret (or environment variable) holding the client secret.
        client_secret_env: &'static str,
        /// Scopes, sent space-separated as `scope` (none: no parameter).
        scopes: &'static [&'static str],
        /// Extra form parameters, sorted by name.
        extra_params: &'static [(&'static str, &'static str)],
        /// How the client authenticates (`auth_style`).
        auth_style: AuthStyle,
        /// Renew this many seconds before the token expires (default 60).
        skew_secs: u64,
    },
}

/// `auth_style` of an `oauth2` source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthStyle {
    /// `"body"` (the default): `client_id` and `client_secret` in the form
    /// body (`client_secret_post`).
    Body,
    /// `"basic"`: HTTP Basic authentication (`client_secret_basic`).
    Basic,
}
