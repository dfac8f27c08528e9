//! `[[mcp_servers]]` as the compiler bakes it
//! ([`crate::Workflow::MCP_SERVERS`], feature `mcp`). Spawning and talking to
//! servers is `agentd_runtime::mcp`'s; this module only describes.

/// A baked `[[mcp_servers]]` entry (generated code declares these as
/// [`crate::Workflow::MCP_SERVERS`]).
#[derive(Clone, Copy, Debug)]
pub struct McpServerDef {
    /// The name nodes refer to with `server`.
    pub name: &'static str,
    /// argv; the first element is the program. Empty for a `url` server.
    pub command: &'static [&'static str],
    /// The Streamable HTTP endpoint (`None` for a stdio server).
    pub url: Option<&'static str>,
    /// Extra request headers of a `url` server, sorted by name.
    pub headers: &'static [(&'static str, &'static [HeaderPart])],
    /// `timeout_secs`: this server's read timeout, instead of the run's.
    pub timeout_secs: Option<u64>,
    /// Tool names this server may be asked to call.
    pub allow_tools: &'static [&'static str],
    /// Resource URIs this server may be asked to read.
    pub allow_resources: &'static [&'static str],
    /// `(VAR, secret name)`: set on the child only, resolved at spawn.
    pub env: &'static [(&'static str, &'static str)],
    /// `[mcp_servers.oauth]` of a `url` server: bearer tokens from the
    /// client credentials grant (feature `mcp-oauth`).
    pub oauth: Option<McpOAuthDef>,
}

/// `[mcp_servers.oauth]`: the client's registration with the authorization
/// server the server's protected-resource metadata names (secret names only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McpOAuthDef {
    /// Secret holding the client id.
    pub client_id: &'static str,
    /// Secret holding the client secret.
    pub client_secret: &'static str,
    /// `token_auth`: how the client authenticates to the token endpoint.
    pub token_auth: McpTokenAuth,
    /// `scope` to ask for (`None`: the 401's, else the server's `scopes_supported`).
    pub scope: Option<&'static str>,
}

/// `token_auth` of `[mcp_servers.oauth]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpTokenAuth {
    /// `client_secret_basic` (the default): HTTP Basic.
    ClientSecretBasic,
    /// `client_secret_post`: in the form body.
    ClientSecretPost,
}

/// A piece of a declared header value of a `url` server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderPart {
    /// Literal text from the workflow file.
    Lit(&'static str),
    /// `{{secret:NAME}}`, resolved at every request.
    Secret(&'static str),
}
