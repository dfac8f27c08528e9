//! The dialect-1 document model: serde types for every key a workflow file may hold.
//!
//! These types mirror the agentd 1.3.0 runtime's structs (docs/dialect.md §2–§12) so that every file that
//! runtime accepted parses here, and every file it rejected is rejected here too.
//! `deny_unknown_fields` sits exactly where dialect 1 puts it (docs/dialect.md §2): everywhere except `Node`
//! itself (whose extra keys go to the tagged [`NodeKind`]) and the unit kinds `merge`
//! and `terminate`, which silently ignore extra keys.
//!
//! This module owns *shape*, never *meaning*: cross-references, graph rules and
//! operational checks live in `validate`. Spans are not stored here; `source` maps a
//! logical location (`nodes[3].path_from`) back to bytes.
//!
//! One file per part of the document: `start` (start nodes, triggers, routes), `graph`
//! (nodes and edges), `policy` (`[policy]`, `[auth]`) and `ops` (the other operational
//! sections); this file holds the document itself and `[sandbox]`, and re-exports
//! every type so users name them `model::X`.

use schemars::JsonSchema;
use serde::Deserialize;

mod graph;
mod ops;
mod policy;
mod start;

pub use graph::*;
pub use ops::*;
pub use policy::*;
pub use start::*;

/// The wrapped document shape: `[[workflows]]` holding exactly one workflow.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WrappedDoc {
    #[schemars(length(min = 1, max = 1))]
    pub workflows: Vec<WorkflowDoc>,
}

/// One workflow: the 16 top-level keys of dialect 1.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDoc {
    /// Workflow id: shown in logs, `/healthz` and metrics labels; checkpoints are matched on it.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Named ways into the graph.
    #[serde(default)]
    pub start_nodes: Vec<StartNode>,
    /// Schedules and watchers that start runs (serve mode).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// HTTP endpoints that start runs (serve mode).
    #[serde(default)]
    pub http_routes: Vec<HttpRoute>,
    /// The steps of the graph.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// The routing between nodes.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// What effects may touch; present means fail-closed (absent allows all).
    #[serde(default)]
    pub policy: Option<PolicyManifest>,
    /// Credentials for route authentication, per scheme and binding name.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Log level, format and target, the audit sink, OTLP export.
    #[serde(default)]
    pub logging: Option<LoggingConfig>,
    /// TLS and mTLS for serve mode.
    #[serde(default)]
    pub server: Option<ServerConfig>,
    /// Ed25519 signature requirement for this file and its children.
    #[serde(default)]
    pub signing: Option<SigningConfig>,
    /// Memory, CPU, run time, bytes written and LLM token limits.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// MCP servers spoken to over stdio.
    #[serde(default)]
    pub mcp_servers: Vec<McpServer>,
    /// Named LLM backends.
    #[serde(default)]
    pub intelligence: Option<IntelligenceConfig>,
    /// Where secret values come from (names and sources, never values).
    #[serde(default)]
    pub secrets: Vec<SecretDef>,
    /// `[sandbox]` (agentd extension): the kernel sandbox's mode.
    #[serde(default)]
    pub sandbox: Option<SandboxConfig>,
}

/// `[sandbox]` (agentd extension; docs/security.md).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// `enforce`, `best-effort` (the default) or `off`.
    #[serde(default)]
    pub mode: SandboxMode,
}

/// `[sandbox] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Refuse to start (exit 5) without full kernel support.
    Enforce,
    /// Apply what the kernel supports, log the rest.
    #[default]
    BestEffort,
    /// No kernel sandbox is compiled in.
    Off,
}
