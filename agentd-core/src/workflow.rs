//! The contract between generated code and the runtime: the [`Workflow`]
//! trait a generated crate implements, and beside it (one module per
//! section) the const-constructible definitions it bakes as `static` data.
//!
//! Owns what a workflow *is* to the runtime; never how a subsystem is built
//! from it (that is `agentd_runtime::cli`'s, from the definitions and the flags) or
//! what it does (the subsystems' own). Every type here is plain data a
//! generated `static` can hold: no behaviour beyond small `const` helpers
//! and no imports from the subsystems, so every subsystem can depend on
//! this layer and this layer on none of them.

pub mod auth;
pub mod budget;
pub mod intel;
pub mod logging;
pub mod mcp;
pub mod secrets;
pub mod serve;

/// `[sandbox] mode`. It lives in the sandbox planner, which the compiler
/// also compiles (for `--explain-sandbox`), so both sides share one type.
pub use crate::sandbox::plan::Mode as SandboxMode;

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::{BuildInfo, GraphId, GraphMeta, NodeIdx};
use crate::policy::Policy;

/// A compiled workflow. Implemented by generated code (one unit struct per
/// workflow) as `const` data and a `match`. The runtime is compiled once,
/// not per workflow: the engine, serve mode and the CLI take a
/// [`&dyn DynWorkflow`](DynWorkflow), which every `Workflow` is, and read
/// the definitions from the one [`WorkflowDef`] table built from these
/// consts ([`Workflow::DEF`]).
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
    /// overrides it at start (see `agentd_runtime::sandbox`).
    const SANDBOX: SandboxMode = SandboxMode::BestEffort;

    /// The sandbox plan of [`Self::POLICY`], computed by `agentd build`
    /// (see `sandbox::plan::BakedPlan`); `None` when the plan depends on the
    /// working directory or `PATH`, or there is no `[policy]`: the binary
    /// then plans at start.
    const SANDBOX_PLAN: Option<&'static crate::sandbox::plan::BakedPlan> = None;

    /// The top-level workflow's `[[secrets]]` definitions (names and
    /// sources, never values); resolved by `agentd_runtime::secrets::resolve`.
    const SECRETS: &'static [secrets::SecretDef] = &[];

    /// The top-level workflow's `[[intelligence.backends]]`.
    const BACKENDS: &'static [intel::BackendDef] = &[];

    /// The top-level workflow's `[[http_routes]]` and long-lived
    /// `[[triggers]]` (serve mode; see `agentd_runtime::serve`).
    const SERVE: &'static serve::ServeDef = &serve::ServeDef::EMPTY;

    /// The top-level workflow's `[[mcp_servers]]` (child workflows' are
    /// never applied, docs/dialect.md §11).
    const MCP_SERVERS: &'static [mcp::McpServerDef] = &[];

    /// The top-level workflow's `[auth.*]` bindings, checked per route by
    /// `agentd_runtime::serve::auth::authorize`.
    const AUTH: &'static auth::AuthDefs = &auth::AuthDefs::EMPTY;

    /// The top-level workflow's `[server.tls]`; `None` serves plaintext.
    const TLS: Option<&'static auth::TlsDef> = None;

    /// What the runtime's feature subsystems lend this workflow's engine
    /// (see [`Hooks`]). Generated code names the runtime's own table,
    /// `agentd_runtime::HOOKS`, which holds what the compiled features give;
    /// a workflow wired by hand without LLM or MCP nodes can keep the default.
    const HOOKS: &'static Hooks = &Hooks::NONE;

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

    /// Every const above in one `static` table, the form the runtime reads.
    /// Never overridden: it is built from the consts.
    #[doc(hidden)]
    const DEF: &'static WorkflowDef = &WorkflowDef {
        graphs: Self::GRAPHS,
        info: Self::INFO,
        policy: Self::POLICY,
        max_llm_tokens: Self::MAX_LLM_TOKENS,
        limits: Self::LIMITS,
        logging: Self::LOGGING,
        sandbox: Self::SANDBOX,
        sandbox_plan: Self::SANDBOX_PLAN,
        secrets: Self::SECRETS,
        backends: Self::BACKENDS,
        serve: Self::SERVE,
        mcp_servers: Self::MCP_SERVERS,
        auth: Self::AUTH,
        tls: Self::TLS,
        hooks: Self::HOOKS,
    };
}

/// The consts of a [`Workflow`] as one table (field `x` is `Workflow::X`,
/// documented there). The runtime's engine, serve mode and CLI read this
/// instead of the consts so that they are compiled once in this crate
/// rather than monomorphised in every generated crate (docs/performance.md,
/// "Build times").
#[derive(Debug)]
#[allow(missing_docs)] // each field is documented on its `Workflow` const
pub struct WorkflowDef {
    pub graphs: &'static [GraphMeta],
    pub info: &'static BuildInfo,
    pub policy: Option<&'static Policy>,
    pub max_llm_tokens: Option<u64>,
    pub limits: budget::Limits,
    pub logging: logging::LogConfig,
    pub sandbox: SandboxMode,
    pub sandbox_plan: Option<&'static crate::sandbox::plan::BakedPlan>,
    pub secrets: &'static [secrets::SecretDef],
    pub backends: &'static [intel::BackendDef],
    pub serve: &'static serve::ServeDef,
    pub mcp_servers: &'static [mcp::McpServerDef],
    pub auth: &'static auth::AuthDefs,
    pub tls: Option<&'static auth::TlsDef>,
    pub hooks: &'static Hooks,
}

pub use crate::context::Ext;

/// What the runtime's feature subsystems lend the core (ARCHITECTURE.md, "The
/// core and the facade"). The core (`agentd-core`) is compiled once, without
/// features, so it cannot name the subsystems' types; the facade
/// (`agentd-runtime`, compiled per feature set) fills this table with what
/// its features compiled in (`agentd_runtime::HOOKS`), and generated code
/// hands it over as [`Workflow::HOOKS`]. An empty slot means the subsystem is
/// not compiled in: the workflow has no node that needs it.
#[derive(Debug)]
pub struct Hooks {
    /// Builds an engine's LLM state (no backends yet, the workflow's
    /// `[budget].max_llm_tokens`) when [`crate::Engine::new`] makes one.
    pub llm: Option<fn(&'static WorkflowDef) -> Ext>,
    /// Builds an engine's MCP state (the baked `[[mcp_servers]]`, each
    /// started on its first call).
    pub mcp: Option<fn(&'static WorkflowDef) -> Ext>,
}

impl Hooks {
    /// No subsystem: a workflow of the always-compiled node families.
    pub const NONE: Hooks = Hooks {
        llm: None,
        mcp: None,
    };
}

/// A [`Workflow`] as the runtime holds it: a trait object, so the engine
/// and everything above it are not generic. The generated `match` is one
/// indirect call per node visit away; every `Workflow` implements this.
pub trait DynWorkflow: Sync {
    /// The workflow's definitions ([`Workflow::DEF`]).
    fn def(&self) -> &'static WorkflowDef;

    /// [`Workflow::exec`].
    ///
    /// # Errors
    ///
    /// Whatever the node function returns.
    fn exec_node(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error>;

    /// [`Workflow::pause_reason`].
    fn node_pause_reason(&self, g: GraphId, node: NodeIdx) -> Option<&'static str>;
}

impl<W: Workflow> DynWorkflow for W {
    fn def(&self) -> &'static WorkflowDef {
        W::DEF
    }

    fn exec_node(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        self.exec(g, node, cx)
    }

    fn node_pause_reason(&self, g: GraphId, node: NodeIdx) -> Option<&'static str> {
        self.pause_reason(g, node)
    }
}

impl std::fmt::Debug for dyn DynWorkflow + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "workflow `{}`", self.def().info.workflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphMeta, SourceFile};

    static INFO: BuildInfo = BuildInfo {
        workflow: "defs",
        compiler_version: "0",
        sources: &[SourceFile {
            path: "defs.toml",
            sha256: "",
        }],
        capabilities: &[],
        program_hash: "abc",
        signer: None,
        policy_key: None,
    };
    static GRAPHS: [GraphMeta; 0] = [];
    static POLICY: Policy = Policy::DENY_ALL;
    static SECRETS: [secrets::SecretDef; 1] = [secrets::SecretDef {
        name: "token",
        source: secrets::SecretSource::Env { var: "TOKEN" },
    }];

    struct Defs;

    impl Workflow for Defs {
        const GRAPHS: &'static [GraphMeta] = &GRAPHS;
        const INFO: &'static BuildInfo = &INFO;
        const POLICY: Option<&'static Policy> = Some(&POLICY);
        const MAX_LLM_TOKENS: Option<u64> = Some(7);
        const SANDBOX: SandboxMode = SandboxMode::Enforce;
        const SECRETS: &'static [secrets::SecretDef] = &SECRETS;

        fn exec(&self, _g: GraphId, node: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
            Err(Error::Config(format!("node {}", node.0)))
        }

        fn pause_reason(&self, _g: GraphId, node: NodeIdx) -> Option<&'static str> {
            (node.0 == 3).then_some("sign-off")
        }
    }

    #[test]
    fn the_def_table_holds_every_const_of_the_workflow() {
        let def = Defs::DEF;
        assert!(std::ptr::eq(def.info, &INFO));
        assert!(std::ptr::eq(def.graphs, &GRAPHS[..]));
        assert!(def.policy.is_some_and(|p| std::ptr::eq(p, &POLICY)));
        assert_eq!(def.max_llm_tokens, Some(7));
        assert_eq!(def.sandbox, SandboxMode::Enforce);
        assert_eq!(def.secrets, &SECRETS[..]);
        assert_eq!(def.limits, budget::Limits::NONE);
        assert_eq!(def.logging, logging::LogConfig::NONE);
    }

    #[test]
    fn a_workflow_seen_through_dyn_workflow_dispatches_to_its_own_methods() {
        let w: &dyn DynWorkflow = &Defs;
        // The table is a promoted const: rustc may give each use its own
        // copy, so compare what it points at (statics have one address).
        let def = w.def();
        assert!(std::ptr::eq(def.info, &INFO));
        assert!(std::ptr::eq(def.graphs, &GRAPHS[..]));
        assert_eq!(def.max_llm_tokens, Some(7));
        assert_eq!(
            w.node_pause_reason(GraphId(0), NodeIdx(3)),
            Some("sign-off")
        );
        assert_eq!(w.node_pause_reason(GraphId(0), NodeIdx(2)), None);
        assert_eq!(format!("{w:?}"), "workflow `defs`");
    }
}
