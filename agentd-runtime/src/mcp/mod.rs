//! The MCP client side (feature `mcp`; spec/dialect-ops.md §14).
//!
//! Owns the registry of named MCP servers a run can reach ([`Mcp`]), the
//! baked `[[mcp_servers]]` definitions ([`McpServerDef`]), the server
//! selection rule of the MCP node kinds, the allowlist decision, and the
//! [`McpServer`] trait with its implementations: [`stdio::StdioServer`]
//! (a child process speaking NDJSON JSON-RPC 2.0), `http::HttpServer`
//! (Streamable HTTP, feature `mcp-http`, linked only into binaries with a
//! `url` server) and [`mock::MockServer`] (the `[mocks]` of the test
//! harness). [`jsonrpc`] holds the protocol pieces both transports share.
//!
//! Allowlists. With no effective policy (no `[policy]` block, or a fixture
//! run) every tool and resource is allowed, as in dialect 1. Under a policy,
//! a call must match the target server's own `allow_tools` /
//! `allow_resources` (default `[]`, which denies); the synthetic `default`
//! server of the harness uses `[policy.mcp]` instead. **Extension:** a
//! non-empty `[policy.mcp].tools` / `resources` list narrows every server
//! further, so a `--policy` override file can restrict MCP without a
//! rebuild; an empty one adds nothing (in dialect 1 the per-server lists
//! are the gate, and workflows rely on that). Patterns are the dialect's
//! MCP matcher: `*`, a trailing-`*` prefix, or exact.
//!
//! Everything a server sends is untrusted: lines are capped
//! ([`MAX_LINE`]), every exchange has a read timeout, and garbage is an
//! [`Error::Mcp`], never a panic or a hang. This module never decides what a
//! node outputs (see [`crate::nodes::mcp`]).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Error;
use crate::policy::{Policy, name_matches};
pub use crate::workflow::mcp::{HeaderPart, McpOAuthDef, McpServerDef, McpTokenAuth};

#[cfg(feature = "mcp-http")]
pub mod http;
pub(crate) mod jsonrpc;
pub mod mock;
#[cfg(feature = "mcp-oauth")]
mod oauth;
#[cfg(feature = "mcp-http")]
pub mod sse;
pub mod stdio;

/// The read timeout of one MCP exchange when nothing else is configured.
/// Built binaries use the run timeout (`--timeout-secs`) instead.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest line accepted from a server (16 MiB, the intelligence socket's
/// frame cap).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The protocol revision offered in `initialize` (the newest we speak).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Every revision a server may choose in its `initialize` reply; any other
/// is a clear error (the MCP life cycle: the client disconnects).
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The server name the harness's mocks use when the workflow declares none
/// (dialect 1's `--mcp-stdio` server).
pub const DEFAULT_SERVER: &str = "default";

/// Credentials for a `url` server beyond its declared headers (the OAuth
/// seam): consulted for every request and told about every `401`.
/// Implementations must never log the values they hand out.
pub trait AuthProvider: Send + Sync + fmt::Debug {
    /// The `Authorization` value for the next request (`None`: send none).
    /// `deadline` bounds any token request it makes (`None`: the
    /// long-lived server-message stream).
    ///
    /// # Errors
    ///
    /// Why no credential can be had (the call fails with it).
    fn authorization(&self, deadline: Option<Instant>) -> Result<Option<String>, String>;

    /// The server answered `401` with this `WWW-Authenticate` value; `true`
    /// retries the request once with a fresh [`AuthProvider::authorization`].
    ///
    /// # Errors
    ///
    /// Why the credential cannot be renewed.
    fn unauthorized(
        &self,
        www_authenticate: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<bool, String>;
}

/// Makes the [`AuthProvider`] of a `url` server from its definition and the
/// URL it is reached at (after `--mcp-url`; `None`: the declared headers are
/// the only credentials).
pub type AuthFactory =
    Arc<dyn Fn(&McpServerDef, &str) -> Result<Option<Arc<dyn AuthProvider>>, String> + Send + Sync>;

/// One MCP server, as the nodes see it. Implementations must be safe to
/// call from the threads of `parallel`/`map` at once.
pub trait McpServer: Send + Sync + fmt::Debug {
    /// `tools/call {name, arguments}`; `Ok` is the JSON-RPC `result`.
    ///
    /// # Errors
    ///
    /// [`Error::Mcp`] for transport failures, timeouts, garbage and
    /// JSON-RPC error replies.
    fn call_tool(&self, tool: &str, arguments: &Value, timeout: Duration) -> Result<Value, Error>;

    /// `resources/read {uri}`; `Ok` is the JSON-RPC `result`.
    ///
    /// # Errors
    ///
    /// As [`McpServer::call_tool`].
    fn read_resource(&self, uri: &str, timeout: Duration) -> Result<Value, Error>;

    /// Every item of `tools/list` or `resources/list`, following
    /// `nextCursor` page by page (each page within `timeout`).
    ///
    /// # Errors
    ///
    /// As [`McpServer::call_tool`], plus a reply without the item array, a
    /// cursor that repeats, or more than [`MAX_LIST_PAGES`] pages.
    fn list(&self, what: Listing, timeout: Duration) -> Result<Vec<Value>, Error> {
        let _ = timeout;
        Err(Error::Mcp(format!(
            "`{}` is not supported by this server",
            what.method()
        )))
    }

    /// `resources/subscribe {uri}` (resource triggers).
    ///
    /// # Errors
    ///
    /// As [`McpServer::call_tool`].
    fn subscribe(&self, uri: &str, timeout: Duration) -> Result<(), Error> {
        let _ = (uri, timeout);
        Err(Error::Mcp(
            "`resources/subscribe` is not supported by this server".to_owned(),
        ))
    }

    /// Hand every notification the server sends to `on_message` until
    /// `stop` says so, whether or not a call is running (resource
    /// triggers). `setup` runs once the listener is in place, so nothing it
    /// causes (a subscription's first update) is missed. Blocks; `timeout`
    /// bounds the set-up exchanges.
    ///
    /// # Errors
    ///
    /// Why the server's messages cannot be followed, or `setup`'s error.
    fn listen(
        &self,
        setup: &mut dyn FnMut() -> Result<(), String>,
        on_message: &mut dyn FnMut(Value),
        stop: &dyn Fn() -> bool,
        timeout: Duration,
    ) -> Result<(), String> {
        let _ = (setup, on_message, stop, timeout);
        Err("this server sends no notifications".to_owned())
    }

    /// Changes whenever the server loses what was set up on it (a stdio
    /// child restarted): subscriptions must then be made again.
    fn generation(&self) -> u64 {
        0
    }
}

/// Most pages one listing follows (a server whose cursors never end is an
/// error, not a loop).
pub const MAX_LIST_PAGES: usize = 1000;

/// What [`McpServer::list`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// `tools/list` → `tools`.
    Tools,
    /// `resources/list` → `resources`.
    Resources,
}

impl Listing {
    /// The JSON-RPC method.
    #[must_use]
    pub const fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Resources => "resources/list",
        }
    }

    /// The result's item array.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Resources => "resources",
        }
    }
}

/// Where a server's allowlists come from.
#[derive(Clone, Copy, Debug)]
pub enum Allowlists {
    /// The server's own `allow_tools` / `allow_resources`.
    Lists {
        /// Tool patterns.
        tools: &'static [&'static str],
        /// Resource URI patterns.
        resources: &'static [&'static str],
    },
    /// The effective policy's `[policy.mcp]` lists (the harness's synthetic
    /// `default` server, like dialect 1's `--mcp-stdio` server).
    PolicyMcp,
}

/// A named server in a registry.
#[derive(Clone, Debug)]
pub struct ServerEntry {
    /// The name nodes select it by.
    pub name: String,
    /// Its allowlists.
    pub allow: Allowlists,
    /// The connection.
    pub server: Arc<dyn McpServer>,
}

/// What is being asked of a server, for the allowlist check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// `tools/call` of this tool.
    Tool(&'a str),
    /// `resources/read` of this URI.
    Resource(&'a str),
}

impl ServerEntry {
    /// The allowlist gate. `policy` is the run's effective policy (`None`
    /// allows everything).
    ///
    /// # Errors
    ///
    /// [`Error::Policy`]: `mcp tool `t` denied by allowlist on server `s``
    /// (or `mcp resource ...`).
    pub fn check(&self, policy: Option<&Policy>, access: Access<'_>) -> Result<(), Error> {
        let Some(policy) = policy else {
            return Ok(());
        };
        let (what, name, policy_list) = match access {
            Access::Tool(t) => ("tool", t, &policy.mcp.tools),
            Access::Resource(u) => ("resource", u, &policy.mcp.resources),
        };
        let deny = |why: &str| {
            Err(Error::Policy(format!(
                "mcp {what} `{name}` denied by allowlist on server `{}`{why}",
                self.name
            )))
        };
        let by_policy = || Policy::mcp_list_allows(policy_list, name);
        match self.allow {
            Allowlists::PolicyMcp => {
                if !by_policy() {
                    return deny("");
                }
            }
            Allowlists::Lists { tools, resources } => {
                // A declared server is itself an effect family under a policy: an
                // empty `[policy]` (no `servers`) denies every MCP call, as it
                // denies every other effect.
                if !Policy::mcp_list_allows(&policy.mcp.servers, &self.name) {
                    return deny(&format!(
                        ": `[policy.mcp] servers` does not list it ({} configured)",
                        policy.mcp.servers.len()
                    ));
                }
                let own = match access {
                    Access::Tool(_) => tools,
                    Access::Resource(_) => resources,
                };
                if !own.iter().any(|p| name_matches(p, name))
                    || !(policy_list.is_empty() || by_policy())
                {
                    return deny("");
                }
            }
        }
        let decision = match access {
            Access::Tool(tool) => policy.then_rego(
                "mcp.call",
                || serde_json::json!({ "server": self.name, "tool": tool }),
            ),
            Access::Resource(uri) => policy.then_rego(
                "mcp.read",
                || serde_json::json!({ "server": self.name, "uri": uri }),
            ),
        };
        match decision {
            crate::policy::Decision::Allow => Ok(()),
            crate::policy::Decision::Deny(reason) => Err(Error::Policy(format!(
                "mcp {what} `{name}` on server `{}` {reason}",
                self.name
            ))),
        }
    }
}

/// How a registry reaches the outside: the per-exchange read timeout, the
/// resolver of secret names (`env` of stdio servers, `headers` of `url`
/// servers), start-time URL overrides and the OAuth seam.
#[derive(Clone)]
pub struct McpOptions {
    /// Read timeout of one exchange (also capped by the run deadline).
    pub call_timeout: Duration,
    /// Resolves a secret name to its value at spawn / request time.
    pub resolve_secret: SecretResolver,
    /// `(server, URL)` from `--mcp-url` / `AGENTD_MCP_URL_<NAME>`: replace a
    /// `url` server's URL (the policy still applies to the new one).
    pub url_overrides: Vec<(String, String)>,
    /// Makes the extra credentials of `url` servers (OAuth).
    pub auth: Option<AuthFactory>,
}

/// Resolves a secret name to its value (`Err` = why it cannot).
pub type SecretResolver = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

impl fmt::Debug for McpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpOptions")
            .field("call_timeout", &self.call_timeout)
            .field("url_overrides", &self.url_overrides)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            resolve_secret: Arc::new(|name: &str| {
                crate::secrets::resolve(&[], name)
                    .map(crate::secrets::Secret::into_exposed)
                    .map_err(|e| e.to_string())
            }),
            url_overrides: Vec::new(),
            auth: None,
        }
    }
}

impl McpOptions {
    /// Options over the secret definitions `defs` (a workflow's
    /// `[[secrets]]`, then the process environment) for `env` entries;
    /// exchanges time out after `call_timeout`.
    #[must_use]
    pub fn with_secrets(
        defs: &'static [crate::workflow::secrets::SecretDef],
        call_timeout: Duration,
    ) -> Self {
        Self {
            call_timeout,
            resolve_secret: Arc::new(crate::secrets::resolver(defs)),
            url_overrides: Vec::new(),
            #[cfg(feature = "mcp-oauth")]
            auth: Some(oauth::factory(defs)),
            #[cfg(not(feature = "mcp-oauth"))]
            auth: None,
        }
    }
}

/// The environment variable that overrides server `name`'s URL:
/// `AGENTD_MCP_URL_` and the name upper-cased, every character that is not
/// an ASCII letter or digit turned into `_`.
#[must_use]
pub fn url_env_var(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("AGENTD_MCP_URL_{tail}")
}

/// The URL overrides of a start: `--mcp-url NAME=URL` values (`flags`), then
/// `AGENTD_MCP_URL_<NAME>` for each `url` server the flags left alone
/// (`env` reads a variable).
///
/// # Errors
///
/// A flag value without `=`, or naming a server that is not a `url` server.
pub fn url_overrides(
    defs: &[McpServerDef],
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let remote: Vec<&str> = defs
        .iter()
        .filter(|d| d.url.is_some())
        .map(|d| d.name)
        .collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for value in flags {
        let Some((name, url)) = value.split_once('=') else {
            return Err(format!(
                "--mcp-url `{value}`: expected NAME=URL (a [[mcp_servers]] name and its URL)"
            ));
        };
        if !remote.contains(&name) {
            return Err(format!(
                "--mcp-url `{name}`: no [[mcp_servers]] entry with a `url` has this name \
                 (servers with a url: {})",
                if remote.is_empty() {
                    "none".to_owned()
                } else {
                    remote.join(", ")
                }
            ));
        }
        out.push((name.to_owned(), url.trim().to_owned()));
    }
    for name in remote {
        if out.iter().any(|(n, _)| n == name) {
            continue;
        }
        if let Some(url) = env(&url_env_var(name)).filter(|u| !u.trim().is_empty()) {
            out.push((name.to_owned(), url.trim().to_owned()));
        }
    }
    Ok(out)
}

/// A server that could not be set up (a `url` server in a binary built
/// without `mcp-http`, a broken CA file): every call fails with why, and
/// [`Mcp::start_all`] refuses to start.
#[derive(Debug)]
struct Unusable(String);

impl McpServer for Unusable {
    fn call_tool(&self, _: &str, _: &Value, _: Duration) -> Result<Value, Error> {
        Err(Error::Mcp(self.0.clone()))
    }
    fn read_resource(&self, _: &str, _: Duration) -> Result<Value, Error> {
        Err(Error::Mcp(self.0.clone()))
    }
}

/// The named MCP servers a run can reach. Cheap to share (`Arc` inside);
/// dropping the last handle stops every child process.
#[derive(Clone, Debug)]
pub struct Mcp {
    inner: Arc<Registry>,
}

#[derive(Debug)]
struct Registry {
    servers: Vec<ServerEntry>,
    /// The stdio servers among `servers`, for [`Mcp::start_all`].
    stdio: Vec<Arc<stdio::StdioServer>>,
    /// The `url` servers among `servers`: `(name, URL)` for the policy check
    /// of [`Mcp::check_urls`].
    urls: Vec<(String, String)>,
    /// The `url` servers themselves (for [`Mcp::http_server`]).
    #[cfg(feature = "mcp-http")]
    http: Vec<Arc<http::HttpServer>>,
    /// Servers that cannot work, with why.
    unusable: Vec<String>,
    /// `timeout_secs` of the servers that set it.
    timeouts: Vec<(String, Duration)>,
    call_timeout: Duration,
}

impl Default for Mcp {
    fn default() -> Self {
        Self::new(Vec::new(), DEFAULT_CALL_TIMEOUT)
    }
}

impl Mcp {
    /// A registry of `servers` (names must be unique; the compiler checks
    /// that) with read timeout `call_timeout`.
    #[must_use]
    pub fn new(servers: Vec<ServerEntry>, call_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Registry {
                servers,
                stdio: Vec::new(),
                urls: Vec::new(),
                #[cfg(feature = "mcp-http")]
                http: Vec::new(),
                unusable: Vec::new(),
                timeouts: Vec::new(),
                call_timeout: call_timeout.max(Duration::from_millis(1)),
            }),
        }
    }

    /// The servers of `defs`, not started yet (see [`Mcp::start_all`]; a
    /// stdio server that is not running is started on its first call, a
    /// `url` server makes its session on its first call).
    #[must_use]
    pub fn from_defs(defs: &'static [McpServerDef], options: &McpOptions) -> Self {
        let mut servers = Vec::with_capacity(defs.len());
        let mut stdio = Vec::new();
        let mut urls = Vec::new();
        #[cfg(feature = "mcp-http")]
        let mut http = Vec::new();
        let mut unusable = Vec::new();
        let mut timeouts = Vec::new();
        for def in defs {
            let server: Arc<dyn McpServer> = match def.url {
                None => {
                    let s = Arc::new(stdio::StdioServer::new(def, options.resolve_secret.clone()));
                    stdio.push(s.clone());
                    s
                }
                Some(baked) => {
                    let url = options
                        .url_overrides
                        .iter()
                        .rev()
                        .find(|(n, _)| n == def.name)
                        .map_or(baked, |(_, u)| u.as_str())
                        .to_owned();
                    urls.push((def.name.to_owned(), url.clone()));
                    match Self::http_server(def, &url, options) {
                        Ok(s) => {
                            #[cfg(feature = "mcp-http")]
                            http.push(s.clone());
                            s
                        }
                        Err(why) => {
                            let why = format!("failed to start MCP server `{}`: {why}", def.name);
                            unusable.push(why.clone());
                            Arc::new(Unusable(why))
                        }
                    }
                }
            };
            if let Some(secs) = def.timeout_secs {
                timeouts.push((def.name.to_owned(), Duration::from_secs(secs.max(1))));
            }
            servers.push(ServerEntry {
                name: def.name.to_owned(),
                allow: Allowlists::Lists {
                    tools: def.allow_tools,
                    resources: def.allow_resources,
                },
                server,
            });
        }
        Self {
            inner: Arc::new(Registry {
                servers,
                stdio,
                urls,
                #[cfg(feature = "mcp-http")]
                http,
                unusable,
                timeouts,
                call_timeout: options.call_timeout.max(Duration::from_millis(1)),
            }),
        }
    }

    #[cfg(feature = "mcp-http")]
    fn http_server(
        def: &McpServerDef,
        url: &str,
        options: &McpOptions,
    ) -> Result<Arc<http::HttpServer>, String> {
        let auth = match &options.auth {
            Some(make) => make(def, url)?,
            None => None,
        };
        let headers = def
            .headers
            .iter()
            .map(|(n, parts)| ((*n).to_owned(), parts.to_vec()))
            .collect();
        http::HttpServer::new(def.name, url, headers, options.resolve_secret.clone(), auth)
            .map(Arc::new)
    }

    #[cfg(not(feature = "mcp-http"))]
    fn http_server(
        _: &McpServerDef,
        _: &str,
        _: &McpOptions,
    ) -> Result<Arc<dyn McpServer>, String> {
        Err(
            "this binary was built without the Streamable HTTP transport (feature `mcp-http`)"
                .to_owned(),
        )
    }

    /// The `url` server named `name`, if there is one (serve mode follows
    /// its server-message stream for resource triggers).
    #[cfg(feature = "mcp-http")]
    #[must_use]
    pub fn http_server_named(&self, name: &str) -> Option<Arc<http::HttpServer>> {
        self.inner.http.iter().find(|s| s.name() == name).cloned()
    }

    /// Check every `url` server's URL (after overrides) against the
    /// effective policy's `[policy.http]` (as a `POST`; `None` allows all).
    ///
    /// # Errors
    ///
    /// `MCP server `N`: <the policy's reason>` for the first URL denied.
    pub fn check_urls(&self, policy: Option<&Policy>) -> Result<(), String> {
        let Some(policy) = policy else {
            return Ok(());
        };
        for (name, url) in &self.inner.urls {
            if let crate::policy::Decision::Deny(why) = policy.check_http("POST", url) {
                return Err(format!(
                    "MCP server `{name}` at `{url}` is not allowed by [policy.http]: {why}"
                ));
            }
        }
        Ok(())
    }

    /// Spawn every stdio server that is not running yet, so a server that
    /// cannot start stops the binary at startup (exit 2) instead of failing
    /// a node later. `url` servers are checked to be usable, not contacted.
    ///
    /// # Errors
    ///
    /// `failed to start MCP server `N`: ...` for the first failure.
    pub fn start_all(&self) -> Result<(), String> {
        if let Some(why) = self.inner.unusable.first() {
            return Err(why.clone());
        }
        for s in &self.inner.stdio {
            s.start().map_err(|e| e.to_string())?;
            s.supervise();
        }
        Ok(())
    }

    /// `(server, restarts)` of every stdio server, for `/metrics`.
    #[must_use]
    pub fn restarts(&self) -> Vec<(&str, u64)> {
        self.inner
            .stdio
            .iter()
            .map(|s| (s.name(), s.restarts()))
            .collect()
    }

    /// The Prometheus lines of [`Mcp::restarts`] (nothing without stdio
    /// servers).
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let restarts = self.restarts();
        if restarts.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "# HELP agentd_mcp_server_restarts_total MCP server processes started again after one died.\n\
             # TYPE agentd_mcp_server_restarts_total counter\n",
        );
        for (name, n) in restarts {
            let name = name
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            out.push_str(&format!(
                "agentd_mcp_server_restarts_total{{server=\"{name}\"}} {n}\n"
            ));
        }
        out
    }

    /// Whether no server is registered (the MCP kinds are then
    /// "capability unavailable", or a stub under a harness).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.servers.is_empty()
    }

    /// The registered names, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.servers.iter().map(|s| s.name.as_str())
    }

    /// The server a node addresses: `explicit` must exist; when omitted,
    /// the only server.
    ///
    /// # Errors
    ///
    /// The reason (the node wraps it in [`Error::Workflow`]): unknown name,
    /// or `server` omitted while several servers are registered.
    pub fn select(&self, explicit: Option<&str>) -> Result<&ServerEntry, String> {
        let servers = &self.inner.servers;
        match explicit {
            Some(name) => servers.iter().find(|s| s.name == name).ok_or_else(|| {
                format!(
                    "mcp server `{name}` is not configured; known servers: {}",
                    self.known()
                )
            }),
            None => match servers.as_slice() {
                [only] => Ok(only),
                [] => Err("no MCP server is configured".to_owned()),
                _ => Err(format!(
                    "several MCP servers are configured ({}); name one with `server`",
                    self.known()
                )),
            },
        }
    }

    fn known(&self) -> String {
        let names: Vec<String> = self.names().map(|n| format!("`{n}`")).collect();
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// [`Mcp::timeout_for`] for server `name`, whose `timeout_secs`, when
    /// set, replaces the run's timeout (still never past the deadline).
    #[must_use]
    pub fn timeout_of(&self, name: &str, deadline: Instant) -> Duration {
        let base = self
            .inner
            .timeouts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.inner.call_timeout, |(_, t)| *t);
        let remaining = deadline.saturating_duration_since(Instant::now());
        base.min(remaining.max(Duration::from_secs(1)))
    }

    /// The read timeout of an exchange started now in a run whose deadline
    /// is `deadline`: the configured timeout, but never past the deadline
    /// (at least one second, so a node that started just in time can still
    /// finish a quick call).
    #[must_use]
    pub fn timeout_for(&self, deadline: Instant) -> Duration {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.inner
            .call_timeout
            .min(remaining.max(Duration::from_secs(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::McpPolicy;
    use std::borrow::Cow;

    #[derive(Debug)]
    struct Nothing;
    impl McpServer for Nothing {
        fn call_tool(&self, _: &str, _: &Value, _: Duration) -> Result<Value, Error> {
            Ok(Value::Null)
        }
        fn read_resource(&self, _: &str, _: Duration) -> Result<Value, Error> {
            Ok(Value::Null)
        }
    }

    fn entry(name: &str, allow: Allowlists) -> ServerEntry {
        ServerEntry {
            name: name.to_owned(),
            allow,
            server: Arc::new(Nothing),
        }
    }

    static ALL_SERVERS: [Cow<'static, str>; 1] = [Cow::Borrowed("*")];

    /// A policy whose `[policy.mcp]` lets every server be used and narrows
    /// tools to `tools` (nothing when empty).
    fn policy_with_mcp(tools: &'static [Cow<'static, str>]) -> Policy {
        Policy {
            mcp: McpPolicy {
                servers: Cow::Borrowed(&ALL_SERVERS),
                tools: Cow::Borrowed(tools),
                ..Policy::DENY_ALL.mcp
            },
            ..Policy::DENY_ALL
        }
    }

    fn denial(r: Result<(), Error>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn no_policy_allows_everything() {
        let e = entry(
            "gh",
            Allowlists::Lists {
                tools: &[],
                resources: &[],
            },
        );
        assert!(e.check(None, Access::Tool("anything")).is_ok());
        assert!(e.check(None, Access::Resource("file:///x")).is_ok());
    }

    #[test]
    fn under_a_policy_the_server_lists_gate_and_empty_denies() {
        let e = entry(
            "gh",
            Allowlists::Lists {
                tools: &["search", "issue_*"],
                resources: &[],
            },
        );
        let p = policy_with_mcp(&[]);
        assert!(e.check(Some(&p), Access::Tool("search")).is_ok());
        assert!(e.check(Some(&p), Access::Tool("issue_get")).is_ok());
        assert_eq!(
            denial(e.check(Some(&p), Access::Tool("delete_repo"))),
            "policy violation: mcp tool `delete_repo` denied by allowlist on server `gh`"
        );
        assert_eq!(
            denial(e.check(Some(&p), Access::Resource("repo://x"))),
            "policy violation: mcp resource `repo://x` denied by allowlist on server `gh`"
        );
    }

    #[test]
    fn an_empty_policy_denies_every_call_to_a_declared_server() {
        let e = entry(
            "gh",
            Allowlists::Lists {
                tools: &["*"],
                resources: &["*"],
            },
        );
        let empty = Policy::DENY_ALL;
        assert_eq!(
            denial(e.check(Some(&empty), Access::Tool("search"))),
            "policy violation: mcp tool `search` denied by allowlist on server `gh`: \
             `[policy.mcp] servers` does not list it (0 configured)"
        );
        assert!(e.check(Some(&empty), Access::Resource("r://1")).is_err());
        // `servers` names the servers that may be used (MCP name patterns).
        static ONLY_OTHER: [Cow<'static, str>; 1] = [Cow::Borrowed("other*")];
        let mut p = Policy::DENY_ALL;
        p.mcp.servers = Cow::Borrowed(&ONLY_OTHER);
        assert!(e.check(Some(&p), Access::Tool("search")).is_err());
        assert!(
            entry("other-1", e.allow)
                .check(Some(&p), Access::Tool("search"))
                .is_ok()
        );
    }

    #[cfg(feature = "rego")]
    #[test]
    fn mcp_calls_go_through_rego_after_the_lists() {
        use crate::policy::{RegoCache, RegoPolicy};
        let e = entry(
            "gh",
            Allowlists::Lists {
                tools: &["*"],
                resources: &["*"],
            },
        );
        let mut p = policy_with_mcp(&[]);
        p.rego = Some(RegoPolicy {
            origin: Cow::Borrowed("inline"),
            source: Cow::Borrowed(
                "package agent\nallow if {\n  input.tool == \"mcp.call\"\n  input.args == {\"server\": \"gh\", \"tool\": \"search\"}\n}\n",
            ),
            data: Cow::Borrowed("{}"),
            query: Cow::Borrowed("data.agent.allow"),
            v0: false,
            cache: RegoCache::new(),
        });
        assert!(e.check(Some(&p), Access::Tool("search")).is_ok());
        let refused = denial(e.check(Some(&p), Access::Tool("delete_repo")));
        assert!(
            refused.contains("mcp tool `delete_repo` on server `gh` denied by the Rego policy"),
            "{refused}"
        );
        // Resource reads are `mcp.read` with `{server, uri}`.
        let read = denial(e.check(Some(&p), Access::Resource("r://1")));
        assert!(
            read.contains("\"tool\":\"mcp.read\"") && read.contains("\"uri\":\"r://1\""),
            "{read}"
        );
    }

    #[test]
    fn a_non_empty_policy_mcp_list_narrows_every_server() {
        static ONLY_SEARCH: [Cow<'static, str>; 1] = [Cow::Borrowed("search")];
        let e = entry(
            "gh",
            Allowlists::Lists {
                tools: &["*"],
                resources: &[],
            },
        );
        let p = policy_with_mcp(&ONLY_SEARCH);
        assert!(e.check(Some(&p), Access::Tool("search")).is_ok());
        assert!(e.check(Some(&p), Access::Tool("issue_get")).is_err());
        // The synthetic default server uses [policy.mcp] alone.
        let d = entry(DEFAULT_SERVER, Allowlists::PolicyMcp);
        assert!(d.check(Some(&p), Access::Tool("search")).is_ok());
        assert!(
            d.check(Some(&Policy::DENY_ALL), Access::Tool("search"))
                .is_err()
        );
    }

    #[test]
    fn selection_follows_the_server_rule() {
        let none = Mcp::default();
        assert_eq!(
            none.select(None).err().as_deref(),
            Some("no MCP server is configured")
        );
        let one = Mcp::new(
            vec![entry("only", Allowlists::PolicyMcp)],
            DEFAULT_CALL_TIMEOUT,
        );
        assert_eq!(one.select(None).map(|s| s.name.as_str()), Ok("only"));
        assert_eq!(
            one.select(Some("other")).err().as_deref(),
            Some("mcp server `other` is not configured; known servers: `only`")
        );
        let two = Mcp::new(
            vec![
                entry("a", Allowlists::PolicyMcp),
                entry("b", Allowlists::PolicyMcp),
            ],
            DEFAULT_CALL_TIMEOUT,
        );
        assert_eq!(two.select(Some("b")).map(|s| s.name.as_str()), Ok("b"));
        assert!(
            two.select(None)
                .err()
                .is_some_and(|e| e.contains("several MCP servers"))
        );
    }

    #[test]
    fn restarts_render_as_a_counter_per_stdio_server() {
        static DEFS: [McpServerDef; 1] = [McpServerDef {
            name: "tr\"acker",
            command: &["/bin/true"],
            url: None,
            headers: &[],
            timeout_secs: None,
            allow_tools: &[],
            allow_resources: &[],
            env: &[],
            oauth: None,
        }];
        let mcp = Mcp::from_defs(&DEFS, &McpOptions::default());
        assert_eq!(mcp.restarts(), vec![("tr\"acker", 0)]);
        let text = mcp.render_metrics();
        assert!(
            text.contains("# TYPE agentd_mcp_server_restarts_total counter\n")
                && text.contains("agentd_mcp_server_restarts_total{server=\"tr\\\"acker\"} 0\n"),
            "{text}"
        );
        assert_eq!(Mcp::default().render_metrics(), "");
    }

    #[test]
    fn url_overrides_come_from_flags_then_per_server_variables() {
        static DEFS: [McpServerDef; 2] = [
            McpServerDef {
                name: "remote-one",
                command: &[],
                url: Some("https://a.example/mcp"),
                headers: &[],
                timeout_secs: Some(3),
                allow_tools: &[],
                allow_resources: &[],
                env: &[],
                oauth: None,
            },
            McpServerDef {
                name: "local",
                command: &["/bin/true"],
                url: None,
                headers: &[],
                timeout_secs: None,
                allow_tools: &[],
                allow_resources: &[],
                env: &[],
                oauth: None,
            },
        ];
        assert_eq!(url_env_var("remote-one"), "AGENTD_MCP_URL_REMOTE_ONE");
        let env = |v: &str| {
            (v == "AGENTD_MCP_URL_REMOTE_ONE").then(|| "https://env.example/mcp".to_owned())
        };
        assert_eq!(
            url_overrides(&DEFS, &[], env),
            Ok(vec![(
                "remote-one".to_owned(),
                "https://env.example/mcp".to_owned()
            )])
        );
        assert_eq!(
            url_overrides(
                &DEFS,
                &["remote-one=https://flag.example/mcp".to_owned()],
                env
            ),
            Ok(vec![(
                "remote-one".to_owned(),
                "https://flag.example/mcp".to_owned()
            )])
        );
        assert!(
            url_overrides(&DEFS, &["local=https://x/".to_owned()], env)
                .is_err_and(|e| e.contains("--mcp-url `local`"))
        );
        assert!(url_overrides(&DEFS, &["no-equals".to_owned()], env).is_err());
        // The per-server timeout replaces the run's, never past the deadline.
        let mcp = Mcp::from_defs(&DEFS, &McpOptions::default());
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(mcp.timeout_of("remote-one", far), Duration::from_secs(3));
        assert_eq!(mcp.timeout_of("local", far), DEFAULT_CALL_TIMEOUT);
    }

    #[test]
    fn the_read_timeout_never_outlives_the_run_deadline() {
        let mcp = Mcp::new(Vec::new(), Duration::from_secs(30));
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(mcp.timeout_for(far), Duration::from_secs(30));
        let near = Instant::now() + Duration::from_secs(5);
        assert!(mcp.timeout_for(near) <= Duration::from_secs(5));
        // A deadline already passed still leaves one second.
        assert_eq!(mcp.timeout_for(Instant::now()), Duration::from_secs(1));
    }
}
