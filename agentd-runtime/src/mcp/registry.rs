//! The MCP servers of a run ([`Mcp`]): built from the baked
//! `[[mcp_servers]]` with their secrets and `--mcp-url` overrides, checked
//! against `[policy.http]` and started at start-up, selected by name for a
//! node, and given each exchange's timeout. Owns no transport: the servers
//! are [`stdio`](super::stdio) and [`http`](super::http) ones.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[cfg(feature = "mcp-http")]
use super::http;
#[cfg(feature = "mcp-oauth")]
use super::oauth;
use super::{
    Allowlists, AuthFactory, DEFAULT_CALL_TIMEOUT, McpServer, McpServerDef, ServerEntry, stdio,
};
use crate::error::Error;
use crate::policy::Policy;

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
