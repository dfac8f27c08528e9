//! The graph: `[[nodes]]` (the 24 dialect-1 kinds tagged by `type`, plus the `rust`
//! extension) with their retry policies (docs/dialect.md §7), and `[[edges]]` (§8).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

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
