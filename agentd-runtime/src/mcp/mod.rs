//! The MCP client side (feature `mcp`; docs/operations.md "MCP servers").
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
//! Files: this one holds the [`McpServer`] trait, the OAuth seam and the
//! protocol constants; `allow.rs` the allowlist gate ([`ServerEntry::check`]);
//! `registry.rs` the run's servers ([`Mcp`]: built from the baked
//! definitions, started, selected by name) and the start-time URL overrides.
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
pub use crate::workflow::mcp::{HeaderPart, McpOAuthDef, McpServerDef, McpTokenAuth};
pub use allow::{Access, Allowlists, ServerEntry};
pub use registry::{Mcp, McpOptions, SecretResolver, url_env_var, url_overrides};

/// The engine's MCP state for `def`: the baked servers, each started on its
/// first call ([`crate::HOOKS`]'s `mcp` slot, called by `Engine::new`).
pub(crate) fn engine_state(def: &'static crate::WorkflowDef) -> crate::workflow::Ext {
    Arc::new(Mcp::from_defs(
        def.mcp_servers,
        &McpOptions::with_secrets(def.secrets, DEFAULT_CALL_TIMEOUT),
    ))
}

/// A run's [`Mcp`]: the `mcp()` of a node's [`crate::Cx`]. The context lives
/// in the feature-free core, which holds this state without naming its type
/// (ARCHITECTURE.md, "The core and the facade").
pub trait McpExt {
    /// The run's MCP servers (none when the engine was built without them: a
    /// workflow wired by hand).
    fn mcp(&self) -> &Mcp;
}

impl McpExt for crate::Cx<'_> {
    fn mcp(&self) -> &Mcp {
        static NONE: std::sync::OnceLock<Mcp> = std::sync::OnceLock::new();
        self.mcp_state()
            .and_then(|s| s.downcast_ref::<Mcp>())
            .unwrap_or_else(|| NONE.get_or_init(Mcp::default))
    }
}

/// Wiring an engine's MCP servers: see [`McpExt`].
pub trait WithMcp {
    /// Use `mcp` (the named MCP servers) for every run.
    #[must_use]
    fn with_mcp(self, mcp: Mcp) -> Self;
}

impl WithMcp for crate::Engine<'_> {
    fn with_mcp(self, mcp: Mcp) -> Self {
        self.with_mcp_state(Arc::new(mcp))
    }
}

mod allow;
#[cfg(feature = "mcp-http")]
pub mod http;
pub(crate) mod jsonrpc;
pub mod mock;
#[cfg(feature = "mcp-oauth")]
mod oauth;
mod registry;
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

#[cfg(test)]
mod tests;
