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

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

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

// ---------------------------------------------------------------------------------
// Start nodes, triggers, routes (docs/dialect.md §4–§6)
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartNode {
    /// Referenced by routes, triggers and `--start`.
    pub name: String,
    /// Informational; a one-shot run without `--start` prefers the single `manual` start node.
    pub source: StartSource,
    /// The node the run starts at (default: the first node).
    #[serde(default)]
    pub entry_node: Option<String>,
}

/// Informational origin of a start node; only used to pick the one-shot default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartSource {
    Event,
    Http,
    Manual,
}

impl StartSource {
    pub fn as_str(self) -> &'static str {
        match self {
            StartSource::Event => "event",
            StartSource::Http => "http",
            StartSource::Manual => "manual",
        }
    }
}

/// `[[triggers]]`, internally tagged by `type`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Trigger {
    /// Accepted for dialect-1 compatibility; never fires.
    #[serde(rename = "mcp.resource.updated")]
    McpResourceUpdated(McpResourceTrigger),
    /// Accepted for dialect-1 compatibility; never fires.
    #[serde(rename = "mcp.resource.created")]
    McpResourceCreated(McpResourceTrigger),
    /// Accepted for dialect-1 compatibility; never fires.
    #[serde(rename = "internal.event")]
    InternalEvent(InternalEventTrigger),
    /// Run on a cron schedule (local time) in serve mode.
    #[serde(rename = "cron")]
    Cron(CronTrigger),
    /// Run repeatedly, a fixed delay after each run ends.
    #[serde(rename = "interval")]
    Interval(IntervalTrigger),
    /// Run when a watched file or directory changes.
    #[serde(rename = "fs_watch")]
    FsWatch(FsWatchTrigger),
}

impl Trigger {
    pub fn start_node(&self) -> &str {
        match self {
            Trigger::McpResourceUpdated(t) | Trigger::McpResourceCreated(t) => &t.start_node,
            Trigger::InternalEvent(t) => &t.start_node,
            Trigger::Cron(t) => &t.start_node,
            Trigger::Interval(t) => &t.start_node,
            Trigger::FsWatch(t) => &t.start_node,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Trigger::McpResourceUpdated(_) => "mcp.resource.updated",
            Trigger::McpResourceCreated(_) => "mcp.resource.created",
            Trigger::InternalEvent(_) => "internal.event",
            Trigger::Cron(_) => "cron",
            Trigger::Interval(_) => "interval",
            Trigger::FsWatch(_) => "fs_watch",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpResourceTrigger {
    pub server: String,
    pub resource: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalEventTrigger {
    pub name: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// Cron expression (5, 6 or 7 fields), local time.
    pub schedule: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalTrigger {
    /// Delay after each run, e.g. `30s`, `5m`.
    pub every: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsWatchTrigger {
    /// File or directory to watch.
    pub path: String,
    pub start_node: String,
    /// Watch subdirectories too.
    #[serde(default)]
    pub recursive: bool,
    /// Event kinds that fire (`[]`: all).
    #[serde(default)]
    pub events: Vec<String>,
    /// Quiet time per path before firing.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
}

fn default_debounce_ms() -> u64 {
    250
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRoute {
    /// HTTP method, compared case-insensitively.
    pub method: String,
    /// Exact path; the query string is dropped.
    pub path: String,
    /// The start node a request runs.
    pub start_node: String,
    /// JSON Schema file the decoded request body must match (compiled into the binary; else 400).
    #[serde(default)]
    pub input_schema: Option<String>,
    /// Auth reference: `bearer[:NAME]`, `basic[:NAME]`, `hmac[:NAME]`, `oidc[:NAME]`, `mtls` or `none`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Token bucket for this route.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Payload path (or `body_sha256`) whose value makes retries replay the stored response; needs `--state-dir`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// How long a stored response is replayed (default 86400).
    #[serde(default)]
    pub idempotency_ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Bucket size: requests allowed in a burst.
    pub capacity: u32,
    /// Tokens refilled per second.
    pub per_second: f32,
}

// ---------------------------------------------------------------------------------
// Nodes (docs/dialect.md §7)
// ---------------------------------------------------------------------------------

/// A `[[nodes]]` entry. No `deny_unknown_fields` here on purpose: every key other than
/// `id` and `retry` belongs to the kind, which decides its own strictness.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Node {
    /// Unique node id, referenced by edges and entry nodes.
    pub id: String,
    /// Retry policy for a failing node.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    #[serde(flatten)]
    pub kind: NodeKind,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Base delay between attempts, doubled each time.
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Which errors are retried: `any` or `transient`.
    #[serde(default)]
    pub on: Option<RetryOn>,
    /// Random spread of each delay, as a fraction of it (0 to 0.5).
    #[serde(default)]
    pub jitter: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    Any,
    Transient,
}

/// The 24 node kinds, tagged by `type` with snake_case names.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// Read a file (policy `fs.read`) into the context.
    ReadFile(ReadFile),
    /// Read an environment variable (policy `env.read_keys`).
    ReadEnv(ReadEnv),
    /// Read a resource from an MCP server.
    ReadMcpResource(ReadMcpResource),
    /// Parse a string from the context as JSON.
    ParseJson(ParseJson),
    /// Render a `{{key}}` template against the context.
    TemplateRender(TemplateRender),
    /// Compare two context values and list the differing paths.
    DiffCompute(DiffCompute),
    /// Select a value from JSON by a dotted path.
    JsonSelect(JsonSelect),
    /// One LLM completion, optionally checked against a JSON Schema.
    LlmInfer(LlmInfer),
    /// A bounded tool-using LLM loop; `exhausted` when its limits are reached.
    AgentLoop(AgentLoop),
    /// Write a file (policy `fs.write`, `[budget] max_fs_write_mb`).
    WriteFile(WriteFile),
    /// Create a directory and its parents (policy `fs.write`).
    CreateDir(CreateDir),
    /// An HTTP(S) request (policy `http`); `error` on a non-2xx status.
    HttpRequest(HttpRequest),
    /// Call a tool of an MCP server; `error` when the tool reports one.
    CallMcpTool(CallMcpTool),
    /// Run a command without a shell (policy `shell`); `error` on a non-zero exit.
    ShellRun(ShellRun),
    /// Run a child workflow and take its final value.
    Call(Call),
    /// Run several child workflows concurrently and join their results.
    Parallel(Parallel),
    /// Run a child workflow once per array element (bounded).
    Map(Map),
    /// Branch `true` / `false` on the truthiness of a context path.
    Condition(Condition),
    /// Branch on the value at a context path (the edge `when` label).
    Switch(Switch),
    /// Unit kind: extra keys are accepted and ignored (dialect-1 behaviour).
    Merge,
    /// End the run as failed, with a reason.
    Fail(Fail),
    /// Pause the run until it is resumed with `--approve` or `--deny` (exit 7).
    PauseForApproval(PauseForApproval),
    /// Set the HTTP reply of a routed run (status, content type, body).
    Respond(Respond),
    /// Unit kind: extra keys are accepted and ignored (dialect-1 behaviour).
    Terminate,
    /// agentd extension (not dialect 1): a node whose behaviour is a Rust function
    /// bound through `agentd!(.., handlers = { .. })`. The validator rejects it unless
    /// the front end allows extensions (`ValidateOptions::allow_rust_nodes`).
    Rust(RustNode),
}

/// Every kind name in declaration order; used for suggestions and docs.
pub const NODE_KIND_NAMES: [&str; 24] = [
    "read_file",
    "read_env",
    "read_mcp_resource",
    "parse_json",
    "template_render",
    "diff_compute",
    "json_select",
    "llm_infer",
    "agent_loop",
    "write_file",
    "create_dir",
    "http_request",
    "call_mcp_tool",
    "shell_run",
    "call",
    "parallel",
    "map",
    "condition",
    "switch",
    "merge",
    "fail",
    "pause_for_approval",
    "respond",
    "terminate",
];

impl NodeKind {
    /// The `type` string of this kind.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::ReadFile(_) => "read_file",
            NodeKind::ReadEnv(_) => "read_env",
            NodeKind::ReadMcpResource(_) => "read_mcp_resource",
            NodeKind::ParseJson(_) => "parse_json",
            NodeKind::TemplateRender(_) => "template_render",
            NodeKind::DiffCompute(_) => "diff_compute",
            NodeKind::JsonSelect(_) => "json_select",
            NodeKind::LlmInfer(_) => "llm_infer",
            NodeKind::AgentLoop(_) => "agent_loop",
            NodeKind::WriteFile(_) => "write_file",
            NodeKind::CreateDir(_) => "create_dir",
            NodeKind::HttpRequest(_) => "http_request",
            NodeKind::CallMcpTool(_) => "call_mcp_tool",
            NodeKind::ShellRun(_) => "shell_run",
            NodeKind::Call(_) => "call",
            NodeKind::Parallel(_) => "parallel",
            NodeKind::Map(_) => "map",
            NodeKind::Condition(_) => "condition",
            NodeKind::Switch(_) => "switch",
            NodeKind::Merge => "merge",
            NodeKind::Fail(_) => "fail",
            NodeKind::PauseForApproval(_) => "pause_for_approval",
            NodeKind::Respond(_) => "respond",
            NodeKind::Terminate => "terminate",
            NodeKind::Rust(_) => "rust",
        }
    }

    /// Branch labels this kind can emit, or `None` when it emits free-form labels
    /// (`switch` emits the resolved value's label).
    pub fn emitted_labels(&self) -> Option<&'static [&'static str]> {
        match self {
            NodeKind::Condition(_) => Some(&["true", "false"]),
            NodeKind::Switch(_) => None,
            NodeKind::HttpRequest(_)
            | NodeKind::CallMcpTool(_)
            | NodeKind::ShellRun(_)
            | NodeKind::Call(_)
            | NodeKind::Parallel(_)
            | NodeKind::Map(_) => Some(&["error"]),
            NodeKind::AgentLoop(_) => Some(&["exhausted"]),
            // A Rust handler may return any label (`NodeOutput::branch`).
            NodeKind::Rust(_) => None,
            _ => Some(&[]),
        }
    }

    /// True for kinds whose outgoing edges are ignored because they end the run.
    pub fn ends_run(&self) -> bool {
        matches!(self, NodeKind::Fail(_) | NodeKind::Terminate)
    }

    /// Child workflow files this node refers to, with the logical key of each.
    pub fn child_workflows(&self) -> Vec<(&str, Vec<crate::source::Seg>)> {
        use crate::source::Seg;
        match self {
            NodeKind::Call(c) => vec![(c.workflow.as_str(), vec![Seg::key("workflow")])],
            NodeKind::Map(m) => vec![(m.workflow.as_str(), vec![Seg::key("workflow")])],
            NodeKind::Parallel(p) => p
                .branches
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    (
                        b.workflow.as_str(),
                        vec![Seg::key("branches"), Seg::Index(i), Seg::key("workflow")],
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFile {
    pub path_from: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadEnv {
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMcpResource {
    pub resource_from: String,
    #[serde(default)]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseJson {
    pub input_from: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRender {
    pub template: String,
    #[serde(default)]
    pub input_from: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffCompute {
    pub left_from: String,
    pub right_from: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSelect {
    pub input_from: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmInfer {
    pub backend: String,
    pub prompt: String,
    #[serde(default)]
    pub input_from: Option<String>,
    #[serde(default)]
    pub output_schema: Option<String>,
    #[serde(default)]
    pub output_repairs: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLoop {
    pub backend: String,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub instructions_from: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    pub max_steps: u32,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// The tools an `agent_loop` may declare.
pub const AGENT_LOOP_TOOLS: [&str; 6] = [
    "read_file",
    "write_file",
    "read_env",
    "http_request",
    "shell_run",
    "call_mcp_tool",
];

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    pub path_from: String,
    pub content_from: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDir {
    pub path_from: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    pub method: String,
    pub url_from: String,
    #[serde(default)]
    pub body_from: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallMcpTool {
    pub tool: String,
    #[serde(default)]
    pub args_from: Option<String>,
    #[serde(default)]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellRun {
    pub command: String,
    #[serde(default)]
    pub args_from: Option<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub workflow: String,
    #[serde(default)]
    pub input_from: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    pub branches: Vec<ParallelBranch>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelBranch {
    pub workflow: String,
    #[serde(default)]
    pub input_from: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Map {
    pub items_from: String,
    pub workflow: String,
    #[serde(default)]
    pub start: Option<String>,
    pub max_items: u32,
    #[serde(default)]
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub expr: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub expr: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseForApproval {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub content_type: Option<String>,
    pub body_template: String,
    #[serde(default)]
    pub input_from: Option<String>,
}

/// `type = "rust"` (agentd extension): the node runs the Rust function bound to
/// `handler` in the embedding crate, with the value at `input_from` (default: the raw
/// trigger input).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RustNode {
    pub handler: String,
    #[serde(default)]
    pub input_from: Option<String>,
}

// ---------------------------------------------------------------------------------
// Edges (docs/dialect.md §8)
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Branch label that selects this edge (absent: unconditional).
    #[serde(default)]
    pub when: Option<String>,
    /// How often a loop edge may be taken in one run.
    #[serde(default)]
    pub max_iterations: Option<u32>,
}

// ---------------------------------------------------------------------------------
// Operational sections (docs/dialect.md §12)
// ---------------------------------------------------------------------------------

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

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub rotation: Option<String>,
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    #[serde(default)]
    pub otel: Option<OtelConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub redact_fields: Vec<String>,
    #[serde(default)]
    pub include_reason: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtelConfig {
    pub endpoint: String,
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub resource_attrs: BTreeMap<String, String>,
    #[serde(default)]
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    pub mode: ClientAuthMode,
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    Required,
    Optional,
    None,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub public_key_pem: Option<String>,
    #[serde(default)]
    pub public_key_file: Option<String>,
    #[serde(default)]
    pub algorithm: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    #[serde(default)]
    pub max_cpu_secs: Option<u64>,
    #[serde(default)]
    pub max_run_time_secs: Option<u64>,
    #[serde(default)]
    pub max_fs_write_mb: Option<u64>,
    #[serde(default)]
    pub max_llm_tokens: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    pub name: String,
    /// argv of a stdio server; exactly one of `command` and `url` is set.
    #[serde(default)]
    pub command: Vec<String>,
    /// The Streamable HTTP endpoint of a remote server.
    #[serde(default)]
    pub url: Option<String>,
    /// Request headers of a `url` server: literals plus `{{secret:NAME}}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Read timeout of one exchange with this server (seconds, ≥ 1).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub allow_tools: Vec<String>,
    #[serde(default)]
    pub allow_resources: Vec<String>,
    /// Child env var → secret name, resolved at spawn.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// OAuth client credentials for a `url` server behind an authorization server.
    #[serde(default)]
    pub oauth: Option<McpOAuth>,
}

/// `[mcp_servers.oauth]`: the client's registration (secret names, never values).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpOAuth {
    /// The grant: only `client_credentials`.
    pub grant: String,
    /// Secret (or environment variable) holding the client id.
    pub client_id: String,
    /// Secret (or environment variable) holding the client secret.
    pub client_secret: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_auth: Option<String>,
    /// Space-separated scopes to ask for.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntelligenceConfig {
    #[serde(default)]
    pub backends: Vec<BackendDef>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendDef {
    pub name: String,
    pub provider: Provider,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Provider {
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "gemini")]
    Gemini,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

/// `[[secrets]]`: a name plus a `source`-tagged body. Each source accepts only its own
/// keys, so literal secret material has nowhere to go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SecretDef {
    pub name: String,
    #[serde(flatten)]
    pub source: SecretSource,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SecretSource {
    /// The value of an environment variable, read on every use.
    Env(EnvSecret),
    /// The content of a file, read on every use (rotation without restart).
    File(FileSecret),
    /// The trimmed stdout of a program (no shell), cached until the next reload.
    Command(CommandSecret),
    /// An access token from the client credentials grant, cached until it expires.
    Oauth2(OAuth2Secret),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvSecret {
    pub var: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSecret {
    pub path: String,
    #[serde(default)]
    pub trim: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSecret {
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Secret {
    pub token_url: String,
    pub client_id_env: String,
    pub client_secret_env: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    #[serde(default)]
    pub auth_style: Option<String>,
    #[serde(default)]
    pub skew_secs: Option<u64>,
}
