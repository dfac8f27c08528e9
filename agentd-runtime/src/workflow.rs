//! The contract between generated code and the runtime: the [`Workflow`]
//! trait a generated crate implements, and beside it (one module per
//! section) the const-constructible definitions it bakes as `static` data.
//!
//! Owns what a workflow *is* to the runtime; never how a subsystem is built
//! from it (that is [`crate::cli`]'s, from the definitions and the flags) or
//! what it does (the subsystems' own). Every type here is plain data a
//! generated `static` can hold: no behaviour beyond small `const` helpers
//! and no imports from the subsystems, so every subsystem can depend on
//! this layer and this layer on none of them.

#[cfg(feature = "serve")]
pub mod auth;
pub mod budget;
#[cfg(feature = "llm")]
pub mod intel;
pub mod logging;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod secrets;
#[cfg(feature = "serve")]
pub mod serve;

/// `[sandbox] mode`. It lives in the sandbox planner, which the compiler
/// also compiles (for `--explain-sandbox`), so both sides share one type.
pub use crate::sandbox::plan::Mode as SandboxMode;

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::{BuildInfo, GraphId, GraphMeta, NodeIdx};
use crate::policy::Policy;

/// A compiled workflow. Implemented by generated code (one unit struct per
/// workflow); the engine is generic over it, so dispatch is static.
pub trait Workflow: Sync + Sized + 'static {
    /// `GRAPHS[0]` is the top-level workflow; the child workflows of its
    /// `call`/`parallel`/`map` nodes (and theirs, recursively) follow.
    const GRAPHS: &'static [GraphMeta];

    /// Provenance: workflow name, compiler version, source digests,
    /// capability list.
    const INFO: &'static BuildInfo;

    /// The top-level workflow's `[policy]`; `None` (no block) allows all.
    /// Child workflows' policies are never applied (docs/dialect.md §11).
    const POLICY: Option<&'static Policy> = None;

    /// The top-level workflow's `[budget].max_llm_tokens` (`None` = no cap).
    const MAX_LLM_TOKENS: Option<u64> = None;

    /// The top-level workflow's process and run-time limits from `[budget]`,
    /// applied by the CLI at start.
    const LIMITS: budget::Limits = budget::Limits::NONE;

    /// The top-level workflow's `[logging]` (level, format, target, rotation,
    /// the audit sink), the lowest-precedence source of the log settings.
    const LOGGING: logging::LogConfig = logging::LogConfig::NONE;

    /// `[sandbox] mode` (`best-effort` when the block is absent); `--sandbox`
    /// overrides it at start (see [`crate::sandbox`]).
    const SANDBOX: SandboxMode = SandboxMode::BestEffort;

    /// The sandbox plan of [`Self::POLICY`], computed by `agentd build`
    /// (see `sandbox::plan::BakedPlan`); `None` when the plan depends on the
    /// working directory or `PATH`, or there is no `[policy]`: the binary
    /// then plans at start.
    const SANDBOX_PLAN: Option<&'static crate::sandbox::plan::BakedPlan> = None;

    /// The top-level workflow's `[[secrets]]` definitions (names and
    /// sources, never values); resolved by [`crate::secrets::resolve`].
    const SECRETS: &'static [secrets::SecretDef] = &[];

    /// The top-level workflow's `[[intelligence.backends]]`.
    #[cfg(feature = "llm")]
    const BACKENDS: &'static [intel::BackendDef] = &[];

    /// The top-level workflow's `[[http_routes]]` and long-lived
    /// `[[triggers]]` (serve mode; see [`crate::serve`]).
    #[cfg(feature = "serve")]
    const SERVE: &'static serve::ServeDef = &serve::ServeDef::EMPTY;

    /// The top-level workflow's `[[mcp_servers]]` (child workflows' are
    /// never applied, docs/dialect.md §11).
    #[cfg(feature = "mcp")]
    const MCP_SERVERS: &'static [mcp::McpServerDef] = &[];

    /// The top-level workflow's `[auth.*]` bindings, checked per route by
    /// [`crate::serve::auth::authorize`].
    #[cfg(feature = "serve")]
    const AUTH: &'static auth::AuthDefs = &auth::AuthDefs::EMPTY;

    /// The top-level workflow's `[server.tls]`; `None` serves plaintext.
    #[cfg(feature = "tls")]
    const TLS: Option<&'static auth::TlsDef> = None;

    /// Run node `node` of graph `g`: a generated `match` over `(g.0, node.0)`
    /// calling the node function with the node's baked config.
    ///
    /// # Errors
    ///
    /// Whatever the node function returns; an unknown `(g, node)` pair
    /// should return [`Error::Config`].
    fn exec(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error>;

    /// The `reason` of `pause_for_approval` node `node` of graph `g`, if it
    /// declared one (the engine runs pauses itself, so the reason is baked
    /// here rather than in a node config). Generated only for workflows
    /// with such a node.
    fn pause_reason(&self, g: GraphId, node: NodeIdx) -> Option<&'static str> {
        let _ = (g, node);
        None
    }
}
