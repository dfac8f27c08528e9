//! The registry of diagnostic codes: what each one means, for `agentd explain CODE`.
//!
//! A code is the stable, machine-readable name of one kind of problem. The 24 codes
//! marked `dialect1` are the ones the agentd 1.3.0 validator reports, with the same
//! names and trigger conditions (spec/dialect-model.md §7.2); the rest are ours
//! (parse and load stages, and the extra checks of DESIGN.md §8).
//!
//! Every `example` is a complete workflow file (or, for the few codes that cannot be
//! shown as TOML, a comment saying how the problem arises). The fix is given in a
//! comment. Tests check that every code emitted by the compiler is registered here and
//! that every parse- and validate-stage example really triggers its code.

use crate::diagnostics::Severity;

/// The pipeline stage that reports a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading and parsing one file (`parse`).
    Parse,
    /// Resolving child workflows of `call` / `parallel` / `map` (`load`).
    Load,
    /// Checking one parsed workflow (`validate`).
    Validate,
    /// Checks only the `agentd!` macro can make (handler bindings; `embed`).
    Embed,
    /// Verifying the signatures of every file of a program (`signing`).
    Signing,
}

/// Everything `agentd explain` knows about a code.
#[derive(Debug)]
pub struct CodeInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub stage: Stage,
    /// True for the codes the dialect-1 validator itself reports.
    pub dialect1: bool,
    /// One line.
    pub summary: &'static str,
    /// A paragraph: what triggers it, why it matters, how to fix it.
    pub explanation: &'static str,
    /// A minimal workflow that triggers the code, with the fix in a comment.
    pub example: &'static str,
}

/// Look up a code by name.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

use Severity::{Error, Warning};
use Stage::{Embed, Load, Parse, Signing, Validate};

/// Every code, grouped by stage; validate-stage codes in emission order.
pub static CODES: &[CodeInfo] = &[
    // ---------------------------------------------------------------- parse stage
    CodeInfo {
        code: "io_error",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "the workflow file cannot be read",
        explanation: "The file does not exist, is a directory, or cannot be opened with the current \
permissions. Check the path you passed (relative paths are relative to the working directory) and \
the file's permissions.",
        example: "# agentd check does-not-exist.toml\n",
    },
    CodeInfo {
        code: "file_too_large",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "the workflow file is larger than the 8 MiB limit",
        explanation: "Workflow files are refused before parsing when they exceed 8 MiB, so a wrong \
path (a log file, a binary) cannot make the compiler allocate without bound. A workflow is a small \
TOML document; check that you passed the right file.",
        example: "# Any file over 8 MiB, e.g. `agentd check big.log`.\n",
    },
    CodeInfo {
        code: "not_utf8",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "the workflow file is not valid UTF-8",
        explanation: "TOML documents must be UTF-8. The diagnostic points at the first invalid byte. \
Re-save the file as UTF-8 (without a UTF-16 byte order mark).",
        example: "# A file saved as Latin-1 with a non-ASCII character, e.g. name = \"caf\\xe9\".\n",
    },
    CodeInfo {
        code: "toml_syntax",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "the file is not valid TOML",
        explanation: "The TOML parser rejected the file: an unclosed bracket or string, a duplicated \
key, a bare word where a value belongs, or brackets nested more than 128 levels deep. Every syntax \
error the parser can recover from is reported. See https://toml.io/en/v1.0.0.",
        example: r#"name = "example"
nodes = [        # fix: close the array: nodes = []
"#,
    },
    CodeInfo {
        code: "unknown_field",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "a key that this table does not accept",
        explanation: "Dialect 1 rejects unknown keys almost everywhere (spec §1.3): at the top level \
(there is no `version` key), on start nodes, triggers, routes, edges, every node kind with fields, \
and every operational block. The help line suggests the nearest valid key. Only the field-less node \
kinds `merge` and `terminate` silently ignore extra keys.",
        example: r#"name = "example"

[[nodes]]
id = "greet"
type = "template_render"
template = "hello"
input_fron = "trigger"   # fix: input_from
"#,
    },
    CodeInfo {
        code: "unknown_variant",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "a value that is not one of the allowed names",
        explanation: "An enumerated value is not one of its allowed names: a node `type` that is not \
one of the 24 kinds, a start node `source` other than event/http/manual, a trigger `type`, a secret \
`source`, a backend `provider`. Names are case-sensitive; the help line suggests the nearest one.",
        example: r#"name = "example"

[[nodes]]
id = "load"
type = "read_fiel"      # fix: read_file
path_from = "trigger.path"
"#,
    },
    CodeInfo {
        code: "missing_field",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "a required key is missing",
        explanation: "A required key is absent: `name` at the top level, `id`/`type` on a node, \
`from`/`to` on an edge, `max_steps` on an agent_loop, `max_items` on a map, `max_attempts` in a \
retry table, and so on (spec §2-§4 list which keys are required).",
        example: r#"name = "example"

[[nodes]]
id = "loop"
type = "agent_loop"
backend = "default"
instructions = "Tidy the inbox."
tools = ["read_file"]
# fix: max_steps = 8
"#,
    },
    CodeInfo {
        code: "invalid_type",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "a value has the wrong TOML type",
        explanation: "The value's TOML type does not match the key: a number where a string belongs, \
a table where an array belongs, a float for an integer field. Quote strings; write integer fields \
without a fractional part.",
        example: r#"name = "example"

[budget]
max_llm_tokens = 1.5   # fix: a whole number, e.g. 20000
"#,
    },
    CodeInfo {
        code: "invalid_value",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "a value of the right type is out of range",
        explanation: "Integer fields are unsigned and sized (u16/u32/u64): negative numbers and \
numbers too large for the field are rejected.",
        example: r#"name = "example"

[[nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = "child.toml"
max_items = -1          # fix: a positive limit, e.g. 100
"#,
    },
    CodeInfo {
        code: "schema_error",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "the document does not fit the workflow schema",
        explanation: "A structural problem the more specific parse codes do not cover. The message \
comes from the deserializer and names the offending value; compare the file with the dialect \
reference.",
        example: "# Reported for schema mismatches without a more specific code.\n",
    },
    CodeInfo {
        code: "workflow_count",
        severity: Error,
        stage: Parse,
        dialect1: false,
        summary: "a wrapped document must hold exactly one [[workflows]] entry",
        explanation: "The wrapped shape (`[[workflows]]` at the root) must contain exactly one \
workflow table; dialect 1 fails with \"expected exactly one [[workflows]] entry; found N\". Put each \
workflow in its own file (children are referenced with `call`, `parallel` or `map`).",
        example: r#"[[workflows]]
name = "first"

[[workflows]]           # fix: move this workflow to its own file
name = "second"
"#,
    },
    // ----------------------------------------------------------------- load stage
    CodeInfo {
        code: "child_workflow_missing",
        severity: Error,
        stage: Load,
        dialect1: false,
        summary: "a child workflow file of call/parallel/map does not exist",
        explanation: "Child workflows are compiled into the same binary, so they must exist at build \
time. A child path is resolved relative to the directory of the file that names it, then relative \
to the working directory (the dialect-1 convention). Fix the path or create the file.",
        example: r#"name = "parent"

[[nodes]]
id = "sub"
type = "call"
workflow = "no-such-child.toml"   # fix: the path of an existing child workflow
"#,
    },
    CodeInfo {
        code: "child_workflow_invalid",
        severity: Error,
        stage: Load,
        dialect1: false,
        summary: "a child workflow has errors",
        explanation: "A child workflow referenced by call/parallel/map failed to parse or validate. \
Its own diagnostics are reported first, against the child file; this one points at the reference \
in the parent. Fix the child's errors.",
        example: r#"# parent.toml
name = "parent"

[[nodes]]
id = "sub"
type = "call"
workflow = "child.toml"   # child.toml has an error, e.g. a dangling edge
"#,
    },
    CodeInfo {
        code: "child_workflow_cycle",
        severity: Error,
        stage: Load,
        dialect1: false,
        summary: "child workflows call each other in a cycle",
        explanation: "A workflow reaches itself through call/parallel/map references. Dialect 1 \
would recurse until its depth limit of 8 and fail at run time; a compiled program cannot contain \
the cycle. Break the cycle (for bounded repetition use a loop edge with `max_iterations`).",
        example: r#"# self.toml
name = "self"

[[nodes]]
id = "again"
type = "call"
workflow = "self.toml"    # fix: call a different workflow
"#,
    },
    CodeInfo {
        code: "child_workflow_too_deep",
        severity: Error,
        stage: Load,
        dialect1: false,
        summary: "child workflows are nested more than 8 levels deep",
        explanation: "Dialect 1 runs a child at depth d+1 and fails hard past depth 8. A static \
chain of references longer than that could never run, so it is rejected at build time. Flatten \
the composition.",
        example: "# a.toml calls b.toml, which calls c.toml, ... nine levels deep.\n",
    },
    CodeInfo {
        code: "unknown_child_start",
        severity: Error,
        stage: Load,
        dialect1: false,
        summary: "a child workflow has no such start node (or none at all)",
        explanation: "`start` on call/parallel/map must name one of the child's [[start_nodes]]; \
without `start` the child's first start node is used, so the child must declare at least one. \
Dialect 1 failed at run time with \"unknown start node\".",
        example: r#"name = "parent"

[[nodes]]
id = "sub"
type = "call"
workflow = "child.toml"
start = "mian"        # fix: a start name the child declares, e.g. "main"
"#,
    },
    // ------------------------------------------------- validate stage: dialect 1
    CodeInfo {
        code: "dup_node_id",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "a node id is declared more than once",
        explanation: "Node ids name nodes in edges, start entries and context paths, so they must be \
unique. One diagnostic is reported per duplicated id, at its second declaration.",
        example: r#"name = "example"

[[nodes]]
id = "step"
type = "merge"

[[nodes]]
id = "step"          # fix: a unique id, e.g. "step2"
type = "terminate"
"#,
    },
    CodeInfo {
        code: "dup_start_name",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "a start node name is declared more than once",
        explanation: "Routes, triggers and `--start` select start nodes by name, so names must be \
unique.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"
source = "manual"

[[start_nodes]]
name = "main"        # fix: a unique name, e.g. "webhook"
source = "http"
"#,
    },
    CodeInfo {
        code: "dup_http_route",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "two HTTP routes have the same method and path",
        explanation: "A route is identified by its upper-cased method and its exact path; a second \
route with the same pair could never be selected.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"
source = "http"

[[http_routes]]
method = "POST"
path = "/run"
start_node = "main"

[[http_routes]]
method = "post"
path = "/run"        # fix: remove this route or give it another path
start_node = "main"
"#,
    },
    CodeInfo {
        code: "unknown_http_start_node",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an HTTP route points at an undeclared start node",
        explanation: "`start_node` of an [[http_routes]] entry must be the `name` of a \
[[start_nodes]] entry.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"
source = "http"

[[http_routes]]
method = "POST"
path = "/run"
start_node = "mian"   # fix: "main"
"#,
    },
    CodeInfo {
        code: "unknown_trigger_start_node",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "a trigger points at an undeclared start node",
        explanation: "`start_node` of a [[triggers]] entry must be the `name` of a [[start_nodes]] \
entry.",
        example: r#"name = "example"

[[start_nodes]]
name = "tick"
source = "event"

[[triggers]]
type = "interval"
every = "5m"
start_node = "tock"   # fix: "tick"
"#,
    },
    CodeInfo {
        code: "unknown_start_entry_node",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "a start node's entry_node is not a declared node id",
        explanation: "`entry_node` names the node a run begins at; it must be the id of a declared \
node.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "frist"   # fix: "first"

[[nodes]]
id = "first"
type = "merge"
"#,
    },
    CodeInfo {
        code: "dangling_edge",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an edge's from or to is not a declared node id",
        explanation: "Both ends of an edge must be declared node ids; one diagnostic is reported per \
bad end. While any edge dangles, the cycle and reachability checks are skipped (their results \
would be meaningless).",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[[edges]]
from = "a"
to = "b"          # fix: declare node "b" or point at an existing node
"#,
    },
    CodeInfo {
        code: "unknown_mcp_server",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an MCP node names a server that is not in [[mcp_servers]]",
        explanation: "`server` on call_mcp_tool and read_mcp_resource must be the `name` of an \
[[mcp_servers]] entry of the same file (a child workflow must declare its own).",
        example: r#"name = "example"

[[mcp_servers]]
name = "github"
command = ["/usr/local/bin/github-mcp"]

[[nodes]]
id = "issue"
type = "call_mcp_tool"
tool = "create_issue"
server = "gitlab"     # fix: "github"
"#,
    },
    CodeInfo {
        code: "ambiguous_mcp_server",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an MCP node has no server while several are declared",
        explanation: "`server` may be omitted only when at most one [[mcp_servers]] entry exists; \
with two or more the node must say which one it uses.",
        example: r#"name = "example"

[[mcp_servers]]
name = "docs"
command = ["/usr/local/bin/docs-mcp"]

[[mcp_servers]]
name = "github"
command = ["/usr/local/bin/github-mcp"]

[[nodes]]
id = "page"
type = "read_mcp_resource"
resource_from = "trigger.uri"
# fix: server = "docs"
"#,
    },
    CodeInfo {
        code: "agent_loop_steps_out_of_range",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "agent_loop max_steps is 0 or greater than 64",
        explanation: "An agent loop must be bounded: `max_steps` must be between 1 and 64.",
        example: r#"name = "example"

[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
instructions = "Summarise /data/report.txt"
tools = ["read_file"]
max_steps = 100       # fix: at most 64
"#,
    },
    CodeInfo {
        code: "agent_loop_missing_instructions",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "agent_loop has neither instructions nor instructions_from",
        explanation: "An agent loop needs a task: a literal `instructions` string or an \
`instructions_from` context path.",
        example: r#"name = "example"

[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
tools = ["read_file"]
max_steps = 8
# fix: instructions = "Summarise /data/report.txt"
"#,
    },
    CodeInfo {
        code: "agent_loop_no_tools",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "agent_loop declares no tools",
        explanation: "`tools` must list at least one loop tool (read_file, write_file, read_env, \
http_request, shell_run, call_mcp_tool). An instructions file's `loop_tools` is not used.",
        example: r#"name = "example"

[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
instructions = "Summarise /data/report.txt"
tools = []            # fix: tools = ["read_file"]
max_steps = 8
"#,
    },
    CodeInfo {
        code: "agent_loop_unknown_tool",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "agent_loop lists a tool that is not a loop tool",
        explanation: "Each entry of `tools` must be one of read_file, write_file, read_env, \
http_request, shell_run, call_mcp_tool. One diagnostic is reported per unknown tool.",
        example: r#"name = "example"

[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
instructions = "Summarise /data/report.txt"
tools = ["read_file", "browse_web"]   # fix: remove "browse_web"
max_steps = 8
"#,
    },
    CodeInfo {
        code: "respond_status_out_of_range",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "respond status is outside 100..=599",
        explanation: "`status` of a respond node must be an HTTP status code (100-599); omit it for \
200.",
        example: r#"name = "example"

[[nodes]]
id = "reply"
type = "respond"
status = 700          # fix: e.g. 202
body_template = "{\"ok\": true}"
"#,
    },
    CodeInfo {
        code: "respond_empty_content_type",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "respond content_type is blank",
        explanation: "When present, `content_type` must be a non-blank media type; omit it for \
application/json.",
        example: r#"name = "example"

[[nodes]]
id = "reply"
type = "respond"
content_type = " "    # fix: "text/plain", or remove the key
body_template = "done"
"#,
    },
    CodeInfo {
        code: "map_zero_max_items",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "map max_items is 0",
        explanation: "`max_items` caps how many elements a map may fan out over (a longer array is \
a hard error, never truncated); it must be at least 1.",
        example: r#"name = "example"

[[nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = "child.toml"
max_items = 0         # fix: e.g. 100
"#,
    },
    CodeInfo {
        code: "map_zero_concurrency",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "map max_concurrent is 0",
        explanation: "`max_concurrent` is how many children run per wave; it must be at least 1 \
(default 4).",
        example: r#"name = "example"

[[nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = "child.toml"
max_items = 100
max_concurrent = 0    # fix: e.g. 4, or remove the key
"#,
    },
    CodeInfo {
        code: "map_empty_workflow",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "map workflow path is blank",
        explanation: "`workflow` must name the child workflow file each element runs through.",
        example: r#"name = "example"

[[nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = ""         # fix: "child.toml"
max_items = 100
"#,
    },
    CodeInfo {
        code: "http_header_bad_name",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an http_request header name is empty or has invalid characters",
        explanation: "Header names must match [A-Za-z0-9_-]+. Header issues are reported in \
header-name order.",
        example: r#"name = "example"

[[nodes]]
id = "call"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = { "X Trace" = "1" }   # fix: "X-Trace"
"#,
    },
    CodeInfo {
        code: "http_header_crlf",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an http_request header value contains CR or LF",
        explanation: "A line break in a header value would let it inject further headers; values \
must be a single line.",
        example: r#"name = "example"

[[nodes]]
id = "call"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = { X-Note = "a\r\nX-Injected: 1" }   # fix: "a"
"#,
    },
    CodeInfo {
        code: "http_header_bad_placeholder",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "an http_request header uses a placeholder other than {{secret:NAME}}",
        explanation: "Header values are literals plus `{{secret:NAME}}` placeholders, resolved \
through [[secrets]] and then the environment at request time. Context data can never reach a \
header, so any other `{{...}}` (or an unclosed `{{`) is rejected.",
        example: r#"name = "example"

[[nodes]]
id = "call"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = { Authorization = "Bearer {{trigger.token}}" }   # fix: "Bearer {{secret:API_TOKEN}}"
"#,
    },
    CodeInfo {
        code: "cycle",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "the graph has a cycle that is not a bounded loop edge",
        explanation: "Apart from loop edges (edges with `max_iterations`), the graph must be \
acyclic; Kahn's algorithm over the other edges must visit every node. The message lists the nodes \
involved in or downstream of the cycle; the span points at an edge that closes it. Remove an edge, \
or bound the back edge with `max_iterations = N`. Skipped while any edge dangles.",
        example: r#"name = "example"

[[nodes]]
id = "draft"
type = "merge"

[[nodes]]
id = "review"
type = "merge"

[[edges]]
from = "draft"
to = "review"

[[edges]]
from = "review"
to = "draft"          # fix: add max_iterations = 3 to bound the loop
"#,
    },
    CodeInfo {
        code: "ambiguous_start_entry",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "a start node has no entry_node and the graph has no single root",
        explanation: "Without `entry_node`, a start node begins at the unique node with no incoming \
edge (counting every edge, loop edges included). With zero or several such roots the entry cannot \
be inferred; such a start reaches nothing, so nodes only it would reach are also reported \
unreachable. Only checked when the workflow has nodes and start nodes, and no edge dangles.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"         # fix: entry_node = "a"
source = "manual"

[[nodes]]
id = "a"
type = "merge"

[[nodes]]
id = "b"
type = "merge"
"#,
    },
    CodeInfo {
        code: "unreachable_node",
        severity: Error,
        stage: Validate,
        dialect1: true,
        summary: "a node cannot be reached from any start node",
        explanation: "Every node must be reachable from the entry of some start node, following \
edges of any label (loop edges included). Connect the node or remove it. Only checked when the \
workflow has nodes and start nodes, and no edge dangles.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "a"

[[nodes]]
id = "a"
type = "merge"

[[nodes]]
id = "island"         # fix: add an edge from "a" to "island", or remove it
type = "merge"
"#,
    },
    // ------------------------------------------------ validate stage: our checks
    CodeInfo {
        code: "bad_auth_ref",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a route's auth string is not a valid auth reference",
        explanation: "A route `auth` is absent, \"\", `none` (any case), `bearer[:name]`, \
`basic[:name]`, `hmac[:name]`, `oidc[:name]` or `mtls`. Scheme names are case-sensitive and `mtls` \
takes no name. Dialect 1 found these only when the server started (or, built without its `auth` \
feature, served the route unauthenticated); here it is a build error.",
        example: r#"name = "example"

[auth.bearer.ops]
tokens_env = "OPS_TOKENS"

[[start_nodes]]
name = "main"
source = "http"

[[http_routes]]
method = "POST"
path = "/run"
start_node = "main"
auth = "Bearer:ops"   # fix: "bearer:ops"
"#,
    },
    CodeInfo {
        code: "unknown_auth_binding",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a route's auth reference names a binding that is not declared",
        explanation: "`auth = \"<scheme>:<name>\"` needs an `[auth.<scheme>.<name>]` table; a bare \
scheme (`bearer`) means `<scheme>:default`. A route must never be served without the \
authentication it names, so a missing binding fails the build.",
        example: r#"name = "example"

[auth.bearer.ops]
tokens_env = "OPS_TOKENS"

[[start_nodes]]
name = "main"
source = "http"

[[http_routes]]
method = "POST"
path = "/run"
start_node = "main"
auth = "bearer"       # means bearer:default; fix: "bearer:ops"
"#,
    },
    CodeInfo {
        code: "mtls_without_client_auth",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a route requires mtls but TLS client authentication is not configured",
        explanation: "`auth = \"mtls\"` accepts a request only when the TLS handshake produced a \
client certificate. Without [server.tls.client_auth] (mode required or optional) no certificate is \
ever requested and every request would be refused, so the build fails instead.",
        example: r#"name = "example"

[[start_nodes]]
name = "main"
source = "http"

[[http_routes]]
method = "POST"
path = "/run"
start_node = "main"
auth = "mtls"
# fix:
# [server.tls]
# cert_file = "server.pem"
# key_file = "server.key"
# [server.tls.client_auth]
# mode = "required"
# ca_file = "clients-ca.pem"
"#,
    },
    CodeInfo {
        code: "invalid_cron",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a cron trigger's schedule does not parse",
        explanation: "`schedule` is a cron expression: either the classic five fields \
`min hour dom mon dow` (a seconds field of 0 is added) or six or seven fields with seconds first \
`sec min hour dom mon dow [year]`, or a shorthand such as `@daily`. Dialect 1 accepted only the \
6/7-field form and failed at serve startup; here a bad schedule is a build error.",
        example: r#"name = "example"

[[start_nodes]]
name = "nightly"
source = "event"

[[triggers]]
type = "cron"
schedule = "30 25 * * *"   # fix: hours are 0-23, e.g. "30 2 * * *"
start_node = "nightly"
"#,
    },
    CodeInfo {
        code: "invalid_interval",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an interval trigger's `every` is not a duration",
        explanation: "`every` is a positive whole number followed by a unit: s|sec|secs, \
m|min|mins, h|hr|hrs, d|day|days. Zero, fractions and other units are rejected.",
        example: r#"name = "example"

[[start_nodes]]
name = "tick"
source = "event"

[[triggers]]
type = "interval"
every = "1.5h"        # fix: "90m"
start_node = "tick"
"#,
    },
    CodeInfo {
        code: "invalid_fs_watch_debounce",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an fs_watch trigger's debounce_ms is above 600000 (10 minutes)",
        explanation: "Events on one path are coalesced until the path has been quiet for \
`debounce_ms`; only then does the run start. A path that changes more often than that never \
settles, so a very long debounce is a trigger that in practice never fires (dialect 1 accepted \
any number). agentd accepts 0 to 600000 ms; the default is 250.",
        example: r#"name = "example"

[[start_nodes]]
name = "inbox"
source = "event"

[[triggers]]
type = "fs_watch"
path = "/var/spool/inbox"
debounce_ms = 86400000   # fix: at most 600000, e.g. 2000
start_node = "inbox"
"#,
    },
    CodeInfo {
        code: "invalid_fs_watch_event",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an fs_watch trigger lists an unknown event kind",
        explanation: "`events` entries are create, modify, remove (alias delete) and rename, in any \
case; an empty list means all of them.",
        example: r#"name = "example"

[[start_nodes]]
name = "inbox"
source = "event"

[[triggers]]
type = "fs_watch"
path = "/var/spool/inbox"
events = ["create", "write"]   # fix: "modify"
start_node = "inbox"
"#,
    },
    CodeInfo {
        code: "unknown_trigger_mcp_server",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an MCP resource trigger names a server that is not declared",
        explanation: "mcp.resource.updated / mcp.resource.created triggers subscribe to (or list) \
the resources of the [[mcp_servers]] entry they name, so that entry must exist; dialect 1 never \
fired these triggers and accepted any name (agentd: an error, since the trigger would never fire).",
        example: r#"name = "example"

[[start_nodes]]
name = "on_change"
source = "event"

[[triggers]]
type = "mcp.resource.updated"
server = "docs"       # fix: declare [[mcp_servers]] name = "docs"
resource = "docs://pages/*"
start_node = "on_change"
"#,
    },
    CodeInfo {
        code: "reserved_backend_name",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an intelligence backend is declared with the reserved name `default`",
        explanation: "`default` names the transport configured on the command line; it cannot be \
declared in [[intelligence.backends]].",
        example: r#"name = "example"

[[intelligence.backends]]
name = "default"      # fix: another name, e.g. "claude"
provider = "anthropic"
model = "claude-sonnet-4-6"
api_key_env = "ANTHROPIC_API_KEY"
"#,
    },
    CodeInfo {
        code: "dup_backend_name",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "two intelligence backends have the same name",
        explanation: "Nodes select a backend by name, so [[intelligence.backends]] names must be \
unique.",
        example: r#"name = "example"

[[intelligence.backends]]
name = "fast"
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"

[[intelligence.backends]]
name = "fast"         # fix: a unique name, e.g. "smart"
provider = "anthropic"
model = "claude-sonnet-4-6"
api_key_env = "ANTHROPIC_API_KEY"
"#,
    },
    CodeInfo {
        code: "incomplete_backend",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an intelligence backend lacks a field its provider requires",
        explanation: "Every [[intelligence.backends]] entry needs `model`; `anthropic`, `openai` and \
`gemini` also need `api_key_env` (the secret holding the API key), and `openai-compatible` needs \
`base_url`. Dialect 1 refused to start (exit 2) with such a definition; agentd refuses to build it.",
        example: r#"name = "example"

[[intelligence.backends]]
name = "claude"
provider = "anthropic"
model = "claude-sonnet-4-6"
# fix: api_key_env = "ANTHROPIC_API_KEY"
"#,
    },
    CodeInfo {
        code: "unknown_backend",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an llm_infer or agent_loop node uses a backend that is not declared",
        explanation: "`backend` must be `default` (the command-line transport) or the name of an \
[[intelligence.backends]] entry (a child workflow may also use its parent's). Dialect 1 found this \
only when the node ran.",
        example: r#"name = "example"

[[intelligence.backends]]
name = "claude"
provider = "anthropic"
model = "claude-sonnet-4-6"
api_key_env = "ANTHROPIC_API_KEY"

[[nodes]]
id = "classify"
type = "llm_infer"
backend = "cluade"    # fix: "claude"
prompt = "Classify: {{body}}"
input_from = "trigger"
"#,
    },
    CodeInfo {
        code: "output_schema_unreadable",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "llm_infer output_schema names a file that cannot be read (or is not JSON)",
        explanation: "An `output_schema` other than \"inline\" is a JSON Schema file, resolved \
relative to the workflow file's directory and then the working directory. When it cannot be read \
dialect 1 silently falls back to checking JSON validity only, so the schema is not enforced.",
        example: r#"name = "example"

[[nodes]]
id = "classify"
type = "llm_infer"
backend = "default"
prompt = "Classify: {{body}}"
input_from = "trigger"
output_schema = "schemas/missing.json"   # fix: an existing file, or "inline"
"#,
    },
    CodeInfo {
        code: "ambiguous_successor",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "two out-edges of a node match the same branch",
        explanation: "After a node runs, exactly one out-edge must match its branch: two \
unconditional edges (fan-out) or two edges with the same `when` label make the run fail there \
with \"N matching out-edges\". A loop edge collides with an ordinary edge of the same label until \
its budget is spent, so that is reported too (unless `max_iterations = 0`). Edges a node can never \
take (from fail/terminate, or unconditional edges from condition/switch) are ignored. To run work \
concurrently use `parallel`; to choose, use `condition` or `switch`.",
        example: r#"name = "example"

[[nodes]]
id = "start"
type = "merge"

[[nodes]]
id = "left"
type = "merge"

[[nodes]]
id = "right"
type = "merge"

[[edges]]
from = "start"
to = "left"

[[edges]]
from = "start"        # fix: chain start -> left -> right, or use `parallel`
to = "right"
"#,
    },
    CodeInfo {
        code: "unlabelled_source_when",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a `when` edge leaves a node kind that never emits a branch label",
        explanation: "Only condition, switch, agent_loop (`exhausted`) and the kinds with an `error` \
branch (http_request, call_mcp_tool, shell_run, call, parallel, map) emit labels. A labelled edge \
from any other kind is never taken. In particular read_file and the other pure kinds have no \
`error` branch: their failures abort the run. Accepted (dialect-1 workflows contain such edges), \
but reported.",
        example: r#"name = "example"

[[nodes]]
id = "load"
type = "read_file"
path_from = "trigger.path"

[[nodes]]
id = "missing"
type = "fail"

[[edges]]
from = "load"
to = "missing"
when = "error"        # never taken: read_file has no error branch; fix: remove this edge
"#,
    },
    CodeInfo {
        code: "error_edge_never_taken",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a `when = \"error\"` edge leaves a kind that has no error branch",
        explanation: "condition emits only true/false and agent_loop only `exhausted`; neither ever \
takes an `error` branch, so this edge is dead. (Kinds that emit no label at all get \
`unlabelled_source_when` instead.)",
        example: r#"name = "example"

[[nodes]]
id = "check"
type = "condition"
expr = "trigger.ok"

[[nodes]]
id = "done"
type = "terminate"

[[edges]]
from = "check"
to = "done"
when = "true"

[[edges]]
from = "check"
to = "done"
when = "false"

[[edges]]
from = "check"
to = "done"
when = "error"        # fix: remove this edge
"#,
    },
    CodeInfo {
        code: "exhausted_edge_not_agent_loop",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a `when = \"exhausted\"` edge leaves a node that is not an agent_loop",
        explanation: "Only agent_loop emits `exhausted` (step or token budget spent). From a kind \
that emits other labels the edge is dead. (Kinds that emit no label at all get \
`unlabelled_source_when` instead.)",
        example: r#"name = "example"

[[nodes]]
id = "fetch"
type = "http_request"
method = "GET"
url_from = "trigger.url"

[[nodes]]
id = "gave_up"
type = "fail"

[[edges]]
from = "fetch"
to = "gave_up"
when = "exhausted"    # fix: when = "error"
"#,
    },
    CodeInfo {
        code: "label_never_emitted",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a `when` label is not one the source kind can emit",
        explanation: "A condition emits exactly `true` or `false` (case-sensitive); the error-branch \
kinds emit only `error`. Any other label on an edge from them is never matched. (switch edges may \
use any label.)",
        example: r#"name = "example"

[[nodes]]
id = "check"
type = "condition"
expr = "trigger.ok"

[[nodes]]
id = "done"
type = "terminate"

[[edges]]
from = "check"
to = "done"
when = "yes"          # fix: "true"

[[edges]]
from = "check"
to = "done"
when = "false"
"#,
    },
    CodeInfo {
        code: "condition_missing_branch",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a condition lacks a `true` or a `false` edge",
        explanation: "When a condition takes a branch that has no edge, the run dead-ends and \
completes at the condition, returning `{\"value\": ...}` as the final value. That is rarely \
intended; route both branches (a `fail` or `terminate` node makes the outcome explicit).",
        example: r#"name = "example"

[[nodes]]
id = "check"
type = "condition"
expr = "trigger.ok"

[[nodes]]
id = "done"
type = "terminate"

[[edges]]
from = "check"
to = "done"
when = "true"
# fix: add an edge with when = "false"
"#,
    },
    CodeInfo {
        code: "error_branch_unhandled",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a node that fails by taking its `error` branch has no `error` edge",
        explanation: "call_mcp_tool (a tool error: unknown tool, bad arguments, a server \
exception), shell_run (a non-zero exit or a timeout), call, parallel and map (a failed child run) \
report failure by taking their `error` branch instead of aborting the run. Without a \
`when = \"error\"` edge that branch matches nothing, so the run ends `completed` at the node, exit 0 \
or HTTP 200, with the error as its output: side effects further on are skipped and nobody is told. \
This is dialect 1's behaviour and is kept; add an `error` edge, to a `fail` node to fail the run or \
to a node that handles the failure.",
        example: r#"name = "example"

[policy.shell]
commands = ["/bin/true"]

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "run"
type = "shell_run"
command = "/bin/true"

# fix: add
# [[nodes]]
# id = "failed"
# type = "fail"
# reason = "the command failed"
#
# [[edges]]
# from = "run"
# to = "failed"
# when = "error"
"#,
    },
    CodeInfo {
        code: "respond_json_unescaped",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a JSON `respond` body inserts request values with raw placeholders",
        explanation: "A respond node renders its body_template against the request (the trigger \
input, unless input_from names a node's output), and a plain `{{key}}` copies a string as it is. \
In a body labelled JSON (application/json, the default, or any +json type), a request value \
holding a `\"` makes the reply invalid JSON, or adds fields the workflow never wrote. Dialect 1 \
renders this way and so does agentd, for compatibility; write `{{key|json}}` instead, which inserts \
the value as JSON (a string quoted and escaped, a number or object as is, null when missing), and \
drop the quotes around it. `{{principal.kind}}` is set by the server and not reported.",
        example: r#"name = "example"

[policy]

[[start_nodes]]
name = "hello"
source = "http"

[[http_routes]]
method = "POST"
path = "/hello"
start_node = "hello"

[[nodes]]
id = "reply"
type = "respond"
body_template = '{"hello":"{{name}}"}'   # fix: '{"hello":{{name|json}}}'
"#,
    },
    CodeInfo {
        code: "no_policy",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "the workflow has no [policy] block, so everything is allowed",
        explanation: "Without [policy], every file, environment, HTTP, shell and MCP action is \
allowed. With a [policy] block, each section defaults to deny-all, so list exactly what the \
workflow may touch. Not reported for child workflows (their parent's policy applies).",
        example: r#"name = "example"
# fix:
# [policy.fs]
# read = ["/data/**"]
"#,
    },
    CodeInfo {
        code: "rego_source_conflict",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "[policy.rego] sets both `inline` and `file`",
        explanation: "A Rego policy comes from exactly one place: its text in `inline`, or a \
path in `file` (read at build time and baked into the binary). With both, it is not clear \
which one is meant to be enforced, so the build refuses.",
        example: r#"name = "example"
[policy.rego]
inline = "package agent\nallow := true"
file = "policy.rego"   # fix: keep only one of inline / file
"#,
    },
    CodeInfo {
        code: "rego_source_missing",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "[policy.rego] has neither `inline` nor `file`",
        explanation: "A [policy.rego] block without policy text enforces nothing. The \
dialect-1 interpreter silently ran no Rego in that case; agentd refuses to build, because a \
security block that has no effect is a hole. Add the policy, or remove the block.",
        example: r#"name = "example"
[policy.rego]
query = "data.agent.allow"   # fix: add inline = "package agent ..." or file = "policy.rego"
"#,
    },
    CodeInfo {
        code: "rego_file_unreadable",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "the [policy.rego] `file` cannot be read at build time",
        explanation: "The policy file is read when the workflow is built and its text is baked \
into the binary, which never reads it (so the policy cannot change under a running binary \
except through a `--policy` override). A relative path is resolved against the workflow \
file's directory, then the working directory. Files over 1 MiB or not UTF-8 are refused.",
        example: r#"name = "example"
[policy.rego]
file = "no-such-policy.rego"   # fix: the path of an existing .rego file
"#,
    },
    CodeInfo {
        code: "rego_data_invalid",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "[policy.rego] `data` is not a table",
        explanation: "`data` becomes Rego's `data` document, which must be an object: write it \
as a TOML table (`data = { allowed = [\"HOME\"] }` or a [policy.rego.data] section).",
        example: r#"name = "example"
[policy.rego]
inline = "package agent\nallow := true"
data = 3   # fix: data = { limit = 3 }
"#,
    },
    CodeInfo {
        code: "rego_syntax_error",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "the Rego policy does not compile",
        explanation: "The policy is compiled at build time with regorus, the interpreter the \
binary runs, so a mistake is reported here, pointing into the inline text (or into the file), \
instead of a binary that denies every action. Rego v1 syntax (`allow if ...`) is expected; \
text written for dialect 1's Rego v0 (`allow { ... }`) is accepted when it is valid v0.",
        example: r#"name = "example"
[policy.rego]
inline = '''
package agent
allow if {
  input.tool ==
}
'''   # fix: complete the comparison, e.g. input.tool == "env.read"
"#,
    },
    CodeInfo {
        code: "rego_query_invalid",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "the [policy.rego] `query` does not parse",
        explanation: "`query` (default `data.agent.allow`) is the Rego expression whose value \
decides each action: only a boolean `true` allows. It is parsed at build time.",
        example: r#"name = "example"
[policy.rego]
inline = "package agent\nallow := true"
query = "data.agent.allow =="   # fix: query = "data.agent.allow"
"#,
    },
    CodeInfo {
        code: "dup_mcp_server_name",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "two [[mcp_servers]] entries have the same name",
        explanation: "Nodes select an MCP server by name. With two entries of one name, the \
first wins and the second is never used, so reordering the entries could silently change which \
program runs and which allowlists apply.",
        example: r#"name = "example"
[[mcp_servers]]
name = "tracker"
command = ["/usr/local/bin/tracker-mcp"]
[[mcp_servers]]
name = "tracker"   # fix: a name of its own, or remove the entry
command = ["/usr/local/bin/other-mcp"]
"#,
    },
    CodeInfo {
        code: "invalid_mcp_server",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an [[mcp_servers]] entry that cannot work: no name, neither or both of \
`command` and `url`, a bad URL, headers on a stdio server, a zero timeout",
        explanation: "A server with an empty name cannot be selected. A server is either a \
local program (`command`, spoken to over stdio) or a remote endpoint (`url`, Streamable HTTP): \
exactly one of the two. A `url` must be http:// or https://. `headers` are sent only to a \
`url` server, so on a stdio server they would silently do nothing. `timeout_secs` must be at \
least 1. All are refused at build time.",
        example: r#"name = "example"
[[mcp_servers]]
name = "tracker"
command = []   # fix: command = ["/usr/local/bin/tracker-mcp", "--stdio"]
"#,
    },
    // ------------------------------------------------ keys without effect, retry
    CodeInfo {
        code: "key_has_no_effect",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "a key that is accepted but does nothing",
        explanation: "Dialect 1 accepts some keys that no part of the runtime acts on, so a file \
that uses them builds and then silently does something else than it says. agentd keeps accepting \
them (dialect-1 files legitimately contain them) but warns, saying why the key does nothing and \
what to write instead: `internal.event` triggers never fire; `[policy.fs] \
delete` and `list` grant nothing (no node kind deletes or lists); `retry` is not applied to \
`call`, `parallel`, `map` and `pause_for_approval`; extra keys on `merge` and `terminate` are \
ignored; `[auth]` and `[server.tls]` need [[http_routes]], and an auth binding no route names is \
never consulted; `instructions_from` is ignored when `instructions` is set; [[mcp_servers]] \
in a workflow whose nodes never use MCP (nor call a child that could) is never started for \
anything; and in a child workflow, the sections only the root's copy governs ([policy], [budget], [signing] without \
`required`, [auth], [server], routes, triggers, [logging], MCP servers, backends, secrets). \
`--deny-warnings` turns these into errors.",
        example: r#"name = "example"
[policy]
[[start_nodes]]
name = "main"
source = "manual"
[[nodes]]
id = "done"
type = "terminate"
reason = "all good"   # fix: remove this line (terminate takes no keys)
"#,
    },
    CodeInfo {
        code: "invalid_retry",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "`retry.jitter` is not a finite number of at least 0",
        explanation: "`jitter` spreads each retry delay by up to plus or minus that fraction of it. \
NaN, infinity or a negative number has no meaning (dialect 1 let them through and they aborted code \
generation); write a fraction from 0.0 to 0.5.",
        example: r#"name = "example"
[policy]
[[start_nodes]]
name = "main"
source = "manual"
[[nodes]]
id = "get"
type = "read_env"
key = "HOME"
retry = { max_attempts = 3, jitter = nan }   # fix: jitter = 0.2
"#,
    },
    CodeInfo {
        code: "retry_jitter_clamped",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "`retry.jitter` above 0.5, which the runtime clamps to 0.5",
        explanation: "The runtime applies at most 0.5 (each delay between half and one and a half \
times the backoff), as dialect 1 did; a larger value is clamped, so the file would say more spread \
than it gets. Write 0.5 or less.",
        example: r#"name = "example"
[policy]
[[start_nodes]]
name = "main"
source = "manual"
[[nodes]]
id = "get"
type = "read_env"
key = "HOME"
retry = { max_attempts = 3, jitter = 0.9 }   # fix: jitter = 0.5
"#,
    },
    CodeInfo {
        code: "mcp_server_not_in_policy",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "under a [policy], an MCP server that `[policy.mcp] servers` does not list",
        explanation: "With a [policy] block, MCP is an effect family like the others: a server \
may be used only when `[policy.mcp] servers` lists it (`*`, a trailing-`*` prefix or the exact \
name), so an empty [policy] denies every MCP call. Its own allow_tools / allow_resources still \
apply. In dialect 1 `servers` was unused; a workflow written for it must now list its servers. \
A warning, not an error: a `--policy` override can list the server at run time.",
        example: r#"name = "example"
[policy.fs]
read = ["/data/**"]
# fix: [policy.mcp] servers = ["tracker"]
[[mcp_servers]]
name = "tracker"
command = ["/usr/local/bin/tracker-mcp"]
allow_tools = ["search"]
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "find"
[[nodes]]
id = "find"
type = "call_mcp_tool"
tool = "search"
"#,
    },
    CodeInfo {
        code: "mcp_url_not_allowed",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "under a [policy], an [[mcp_servers]] `url` that [policy.http] does not allow",
        explanation: "A remote MCP server is reached with HTTP POSTs to its `url`, an outgoing \
HTTP effect like http_request, so [policy.http] must allow it: a `urls` pattern must cover the \
URL and `methods`, when set, must include POST. A literal URL outside the policy would make \
every call fail, so it is refused at build time; a URL given at start with --mcp-url is checked \
when the binary starts.",
        example: r#"name = "example"
[policy.http]
urls = ["https://api.example.com/*"]   # fix: add "https://mcp.example.com/*"
[policy.mcp]
servers = ["tracker"]
[[mcp_servers]]
name = "tracker"
url = "https://mcp.example.com/mcp"
allow_tools = ["search"]
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "find"
[[nodes]]
id = "find"
type = "call_mcp_tool"
tool = "search"
"#,
    },
    // ------------------------------------------- extension: custom Rust nodes
    CodeInfo {
        code: "rust_node_not_allowed",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a custom Rust node (`type = \"rust\"`) where strict dialect 1 is required",
        explanation: "`type = \"rust\"` is an agentd extension: the node runs a Rust function that the \
embedding crate binds with agentd!(\"file.toml\", handlers = { name = path::to_fn }), or that \
`agentd build --handlers PATH` binds from a library crate (`handler = \"x\"` calls its root-level \
`pub fn x`). Without those, `agentd check`, `emit` and `build` are strict dialect 1 and refuse \
these nodes (`check --allow-rust-nodes` accepts them), and so does agentd! with \
`strict_dialect1 = true`. Bind the handlers, or replace the node with dialect-1 kinds.",
        example: r#"name = "example"

[[nodes]]
id = "classify"
type = "rust"        # fix: embed with agentd!(.., handlers = { classify = crate::classify })
handler = "classify"
"#,
    },
    CodeInfo {
        code: "invalid_handler_name",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a Rust node's `handler` is not a Rust identifier",
        explanation: "A handler is bound in agentd!(.., handlers = { name = path }) by a Rust \
identifier (and `agentd build --handlers` calls `agentd_handlers::<name>`), so the name in the \
workflow must be one: ASCII letters, digits and `_`, not starting with a digit, not a keyword.",
        example: r#"name = "example"

[[nodes]]
id = "classify"
type = "rust"
handler = "classify-ticket"   # fix: "classify_ticket"
"#,
    },
    // ------------------------------------------------------- extension: secrets
    CodeInfo {
        code: "dup_secret_name",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "two [[secrets]] entries have the same name",
        explanation: "Secrets are looked up by name (`{{secret:NAME}}`, `api_key_env`, MCP `env`), \
so a second entry with a name already declared could never be used. Dialect 1 refuses duplicates \
when the binary starts; we refuse them at build time. Rename or remove one of them.",
        example: r#"name = "example"

[[secrets]]
name = "api"
source = "env"
var = "API_TOKEN"

[[secrets]]
name = "api"          # fix: another name, e.g. "api_backup"
source = "file"
path = "/run/secrets/api"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "invalid_mcp_oauth",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "[mcp_servers.oauth] on a stdio server, with a grant other than client_credentials, or an unknown token_auth",
        explanation: "`[mcp_servers.oauth]` gets bearer tokens for a remote (`url`) MCP server from the \
authorization server its protected-resource metadata names, with the OAuth client credentials grant. \
It has no meaning for a stdio server (give the child its credentials through `env`), agentd speaks \
only `grant = \"client_credentials\"` (a service has no user to send through a browser), and the \
client authenticates with `token_auth = \"client_secret_basic\"` (the default) or \
`\"client_secret_post\"`.",
        example: r#"name = "example"

[[mcp_servers]]
name = "tracker"
url = "https://mcp.example.com/mcp"

[mcp_servers.oauth]
grant = "authorization_code"   # fix: grant = "client_credentials"
client_id = "TRACKER_CLIENT_ID"
client_secret = "TRACKER_CLIENT_SECRET"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_command_empty",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a `command` secret whose `argv` names no program",
        explanation: "A `[[secrets]]` entry with `source = \"command\"` runs `argv` (no shell) and takes its \
trimmed stdout as the value. An empty `argv`, or an empty program name, could never run; the binary \
would refuse to start. Give the program (an absolute path, or a name found on `PATH`) and its \
arguments.",
        example: r#"name = "example"

[[secrets]]
name = "api"
source = "command"
argv = []               # fix: argv = ["/usr/bin/pass", "show", "api"]

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_oauth2_bad_url",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an `oauth2` secret whose `token_url` is not an absolute http(s) URL",
        explanation: "An `oauth2` secret POSTs the client credentials grant to `token_url`. Only absolute \
`http://` and `https://` URLs without surrounding whitespace can be requested; anything else would \
fail at every start.",
        example: r#"name = "example"

[[secrets]]
name = "api_token"
source = "oauth2"
token_url = "auth.example.com/token"   # fix: "https://auth.example.com/token"
client_id_env = "CLIENT_ID"
client_secret_env = "CLIENT_SECRET"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_oauth2_url_denied",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an `oauth2` secret whose `token_url` the workflow's [policy.http] does not allow",
        explanation: "Token requests are outbound HTTP like any other: `[policy.http]` must allow a \
`POST` to the token endpoint (a `urls` pattern covering it, and `POST` in `methods` when `methods` \
lists any). A literal `token_url` the baked policy denies could never be fetched, so the build \
fails. A `--policy` override is checked again when the binary starts.",
        example: r#"name = "example"

[[secrets]]
name = "api_token"
source = "oauth2"
token_url = "https://auth.example.com/token"
client_id_env = "CLIENT_ID"
client_secret_env = "CLIENT_SECRET"

[policy.http]
urls = ["https://api.example.com/**"]   # fix: add "https://auth.example.com/token"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_oauth2_auth_style",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an `oauth2` secret with an `auth_style` other than \"body\" or \"basic\"",
        explanation: "`auth_style` says how the client authenticates to the token endpoint: `body` (the \
default; `client_id` and `client_secret` in the form body, OAuth's `client_secret_post`) or `basic` \
(HTTP Basic, `client_secret_basic`). No other value is understood.",
        example: r#"name = "example"

[[secrets]]
name = "api_token"
source = "oauth2"
token_url = "https://auth.example.com/token"
client_id_env = "CLIENT_ID"
client_secret_env = "CLIENT_SECRET"
auth_style = "header"   # fix: "basic"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_oauth2_reserved_param",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "`extra_params` of an `oauth2` secret sets a parameter the grant sends itself",
        explanation: "The token request always carries `grant_type=client_credentials`, the client \
(`client_id`, `client_secret`, in the body or as HTTP Basic) and `scope` (from `scopes`). Setting one \
of them again in `extra_params` would send it twice or contradict the grant. Use `scopes` for scopes; \
the client comes from `client_id_env` and `client_secret_env`.",
        example: r#"name = "example"

[[secrets]]
name = "api_token"
source = "oauth2"
token_url = "https://auth.example.com/token"
client_id_env = "CLIENT_ID"
client_secret_env = "CLIENT_SECRET"
extra_params = { scope = "read" }   # fix: scopes = ["read"]

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_oauth2_credential_loop",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an `oauth2` secret whose client id or secret is itself an `oauth2` token",
        explanation: "`client_id_env` and `client_secret_env` name the secrets (or environment variables) \
holding the client's credentials. They are resolved through `[[secrets]]`, so they may come from an \
`env`, `file` or `command` source, but not from another `oauth2` entry: a token is not a client \
credential, and two such entries could wait on each other forever.",
        example: r#"name = "example"

[[secrets]]
name = "api_token"
source = "oauth2"
token_url = "https://auth.example.com/token"
client_id_env = "CLIENT_ID"
client_secret_env = "api_token"   # fix: a secret holding the client secret, e.g. "CLIENT_SECRET"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "secret_literal_material",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a secret value written into the workflow file",
        explanation: "Workflow files are committed, reviewed, signed and baked into binaries, so \
they must never hold secret values. This fires where a value was pasted in place of a name: an \
`env` secret whose `var` is not an environment variable name; an `api_key_env`, MCP server `env` \
entry, auth binding `tokens_env` / `credentials_env` / `secret_env`, or `{{secret:NAME}}` that \
names neither a declared [[secrets]] entry nor a variable; and a credential header (`Authorization`, `Proxy-Authorization`, `Cookie`, `X-Api-Key`, `Api-Key`, \
`X-Auth-Token`, `X-Access-Token`, `Private-Token`) written as a literal with no \
`{{secret:NAME}}`. Put the value in the environment or a file, declare it in [[secrets]], and \
reference it by name. The message never repeats the suspected value.",
        example: r#"name = "example"

[[nodes]]
id = "call"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = { Authorization = "Bearer sk-live-1234" }   # fix: "Bearer {{secret:API_TOKEN}}"
"#,
    },
    CodeInfo {
        code: "auth_literal_secret",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "an auth binding holds literal tokens, credentials or an HMAC secret",
        explanation: "`tokens` ([auth.bearer.*]), `credentials` ([auth.basic.*]) and `secret` \
([auth.hmac.*]) put credentials in the workflow file, and so in version control, in signatures and \
in the built binary. Dialect 1 accepts them for tests, and so do we, with this warning. For anything \
deployed use `tokens_env`, `credentials_env` or `secret_env`: the NAME of a [[secrets]] entry or an \
environment variable, resolved on every request (rotation needs no restart).",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[auth.bearer.ops]
tokens = ["let-me-in"]   # fix: tokens_env = "OPS_TOKENS"
"#,
    },
    CodeInfo {
        code: "hmac_tolerance_without_timestamp",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "`tolerance_secs` is set but there is no `timestamp_header` to apply it to",
        explanation: "agentd extends [auth.hmac.*] with replay protection: with `timestamp_header` \
set, the sender puts Unix seconds in that header and signs `<timestamp>.<body>`, and requests more \
than `tolerance_secs` (default 300) away from the server's clock are refused. Without \
`timestamp_header` the signature covers the body alone and `tolerance_secs` does nothing.",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[auth.hmac.github]
secret_env = "HOOK_SECRET"
tolerance_secs = 120   # fix: also set timestamp_header = "X-Agent-Timestamp"
"#,
    },
    CodeInfo {
        code: "oidc_algorithm_rejected",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an OIDC binding allows `none`, a symmetric (HS*) or an unknown JWT algorithm",
        explanation: "Tokens are verified against pinned public keys (JWKS). `none` would accept \
unsigned tokens from anyone; HS256/384/512 are keyed with a shared secret that a public key set \
cannot hold (and dialect 1 refused them at start). Any other name must be one the runtime \
verifies: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA. The default is \
[\"RS256\"].",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[auth.oidc.corp]
issuer = "https://login.example.com"
jwks_file = "/etc/agent/jwks.json"
algorithms = ["HS256"]   # fix: ["RS256"] (what the provider signs with)
"#,
    },
    CodeInfo {
        code: "oidc_jwks_source",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an OIDC binding sets neither or both of `jwks_json` and `jwks_file`",
        explanation: "Keys are pinned, never fetched: each [auth.oidc.*] binding takes its public \
keys from exactly one place, `jwks_json` (the JWKS document inline, baked into the binary) or \
`jwks_file` (read at start and again on every reload, so keys can rotate without a rebuild).",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[auth.oidc.corp]
issuer = "https://login.example.com"
# fix: jwks_file = "/etc/agent/jwks.json"
"#,
    },
    CodeInfo {
        code: "oidc_jwks_invalid",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an inline `jwks_json` is not a usable public key set",
        explanation: "`jwks_json` is baked into the binary, so it is checked now: it must be a JSON \
object whose `keys` array holds at least one public key, RSA (`n`, `e`), EC (`crv`, `x`, `y`) or \
OKP (`crv`, `x`). Symmetric `oct` keys are refused: a shared secret does not belong in a key set \
that the workflow file publishes.",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[auth.oidc.corp]
issuer = "https://login.example.com"
jwks_json = '{"keys": []}'   # fix: paste the provider's JWKS
"#,
    },
    CodeInfo {
        code: "oidc_jwks_file_unreadable",
        severity: Warning,
        stage: Validate,
        dialect1: false,
        summary: "an OIDC `jwks_file` cannot be read or is not a key set at build time",
        explanation: "`jwks_file` is read when the binary starts (relative to its working \
directory) and on every reload, so the build only warns: the file may well exist on the host the \
binary is deployed to. If it is missing or invalid there, the binary refuses to serve (and a reload \
keeps the previous keys).",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[auth.oidc.corp]
issuer = "https://login.example.com"
jwks_file = "does/not/exist/jwks.json"   # fine if it exists where the binary runs
"#,
    },
    CodeInfo {
        code: "tls_client_ca_missing",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "client certificates are requested but there is no `ca_file` to verify them",
        explanation: "[server.tls.client_auth] with `mode = \"required\"` (or agentd's \
`\"optional\"`) verifies client certificates against the CA certificates in `ca_file`. Without it \
no certificate could ever be verified, so the build fails instead of the server.",
        example: r#"name = "example"

[[nodes]]
id = "a"
type = "merge"

[server.tls]
cert_file = "server.pem"
key_file = "server.key"

[server.tls.client_auth]
mode = "required"
# fix: ca_file = "clients-ca.pem"
"#,
    },
    CodeInfo {
        code: "unbound_handler",
        severity: Error,
        stage: Embed,
        dialect1: false,
        summary: "a Rust node's handler is not bound in agentd!",
        explanation: "Every `handler` named by a `type = \"rust\"` node (in the workflow or any \
child workflow) needs a binding in the macro call: agentd!(\"file.toml\", handlers = { name = \
crate::path::to_fn }). The function must have the signature \
fn(&agentd_runtime::Cx<'_>, &serde_json::Value) -> Result<NodeOutput, NodeError>.",
        example: r#"# agentd!("wf.toml") with wf.toml holding:
#   [[nodes]]
#   id = "classify"
#   type = "rust"
#   handler = "classify"
# fix: agentd!("wf.toml", handlers = { classify = crate::classify })
"#,
    },
    CodeInfo {
        code: "unused_handler",
        severity: Error,
        stage: Embed,
        dialect1: false,
        summary: "agentd! binds a handler that no Rust node uses",
        explanation: "A binding in agentd!(.., handlers = { .. }) must match the `handler` of at \
least one `type = \"rust\"` node of the workflow or its children. An unused binding is usually a \
typo in the binding or in the workflow.",
        example: r#"# agentd!("wf.toml", handlers = { clasify = crate::classify })
# where the workflow's node says handler = "classify"
# fix: bind the name the workflow uses: handlers = { classify = crate::classify }
"#,
    },
    // ------------------------------------------------------- extension: logging
    CodeInfo {
        code: "invalid_logging",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a [logging] value the runtime cannot use",
        explanation: "`level` is a filter directive: a level (`off`, `error`, `warn`, `info`, \
`debug`, `trace`) and/or comma-separated `target=level` pairs such as \
`warn,agentd::engine=debug` (span and field filters like `target[span]=debug` are not \
supported). `format` is `text` (alias `pretty`) or `json`; `target` and \
`[logging.audit].target` are `stderr`, `stdout` or `file:PATH`; `rotation` is `never`, \
`daily`, `hourly` or `minutely`. Dialect 1 silently fell back to `info` for a bad level; \
agentd refuses to build, so the binary logs what you wrote.",
        example: r#"name = "example"

[logging]
level = "warn,agentd=loud"   # fix: "warn,agentd=debug"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "invalid_otel",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "[logging.otel] cannot be used by the OTLP exporter",
        explanation: "A root workflow's `[logging.otel]` block turns on OTLP/gRPC export of the \
run, node and request spans (the runtime feature `otel`, compiled in only for such workflows). \
Its `endpoint` must be an `http://` or `https://` URL with a host (an OTLP/gRPC receiver, \
usually port 4317; `https://` adds the runtime feature `otel-tls`, which trusts Mozilla's roots \
or the `AGENTD_HTTP_CA_FILE` bundle), `protocol` must be `grpc` or omitted (dialect 1 offered nothing else), and \
`sample_ratio` must be a fraction between 0.0 and 1.0. Dialect 1 found these problems only \
when the process started; agentd refuses to build. A child's [logging] is not applied, so it \
is not checked.",
        example: r#"name = "example"

[logging.otel]
endpoint = "collector:4317"     # fix: "http://collector:4317"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "reserved_route",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an HTTP route on a path the server answers itself (GET /healthz, GET /readyz, GET /metrics)",
        explanation: "Every binary with routes answers `GET /healthz` (liveness), `GET /readyz` \
(readiness: its state store answers; in fleet mode, Redis) and `GET /metrics` (Prometheus text) \
itself, before routing, with no auth and no rate limit. Dialect 1 accepted a route declared on \
/healthz or /metrics and then never ran it (its `auth` was shadowed too, and the start \
banner still listed it); agentd refuses to build. Other methods on these paths are ordinary \
routes.",
        example: r#"name = "example"

[[start_nodes]]
name = "status"
source = "http"
entry_node = "a"

[[http_routes]]
method = "GET"
path = "/healthz"     # fix: another path, e.g. "/status"
start_node = "status"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "invalid_route_path",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "an HTTP route path no request can match (no leading `/`, or a `?`, `#`, space or control character)",
        explanation: "A route matches the request path exactly, after the query string is \
dropped. A path that does not start with `/`, or that holds `?` (a query), `#` (a fragment, \
never sent), whitespace or a control character can never equal a request path, so the route \
would never run. Dialect 1 accepted such paths; agentd refuses to build. Route on the path \
alone and read query parameters from the request instead.",
        example: r#"name = "example"

[[start_nodes]]
name = "orders"
source = "http"
entry_node = "a"

[[http_routes]]
method = "GET"
path = "/orders?status=open"   # fix: "/orders"
start_node = "orders"

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "invalid_rate_limit",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a route's rate_limit could never work (capacity 0, per_second not a positive number)",
        explanation: "`rate_limit = { capacity, per_second }` gives a route a token bucket that \
starts full with `capacity` tokens and refills `per_second` tokens a second. `capacity = 0` \
answers 429 to every request; a `per_second` that is NaN, infinite, zero or negative never \
refills (dialect 1 accepted these, then aborted the build on NaN or answered 429 forever with \
an absurd `Retry-After`), and one below one token a year (about 3.2e-8) in effect never admits \
again. Both are build errors.",
        example: r#"name = "example"

[[start_nodes]]
name = "hook"
source = "http"
entry_node = "a"

[[http_routes]]
method = "POST"
path = "/hook"
start_node = "hook"
rate_limit = { capacity = 0, per_second = 5.0 }   # fix: capacity = 10

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "input_schema_invalid",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a route's input_schema is not a readable JSON Schema file",
        explanation: "A route's `input_schema` names a JSON Schema file, resolved relative to the \
workflow file's directory and then the working directory. The schema is read and compiled at \
build time and baked into the binary, which answers 400 (naming the first failing path) to a \
request body that does not match it. Dialect 1 accepted the key and never enforced it; agentd \
enforces it, so a file that is missing, unreadable, over 1 MiB, not JSON, not a valid JSON \
Schema, or whose `$ref` points outside the file is a build error.",
        example: r#"name = "example"

[[start_nodes]]
name = "orders"
source = "http"
entry_node = "a"

[[http_routes]]
method = "POST"
path = "/orders"
start_node = "orders"
input_schema = "schemas/missing.json"   # fix: an existing JSON Schema file

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    CodeInfo {
        code: "budget_out_of_range",
        severity: Error,
        stage: Validate,
        dialect1: false,
        summary: "a [budget] size in MiB is more bytes than fit in 64 bits",
        explanation: "`max_memory_mb` and `max_fs_write_mb` are MiB; the runtime works in bytes. \
A value above 17592186044415 MiB cannot be expressed in bytes: dialect 1 refused to start on \
such a memory cap and silently capped such a write cap. agentd refuses to build. `0` (or \
leaving the key out) means no limit.",
        example: r#"name = "example"

[budget]
max_memory_mb = 9223372036854775807   # fix: a real limit, e.g. 512

[[nodes]]
id = "a"
type = "merge"
"#,
    },
    // -------------------------------------------------------------- signing stage
    CodeInfo {
        code: "signature_missing",
        severity: Error,
        stage: Signing,
        dialect1: false,
        summary: "a workflow file has no `.sig` and signing is required",
        explanation: "With `[signing] required = true` in the root workflow, `--signing-required` or \
AGENTD_SIGNING_REQUIRED=1, every file compiled into the binary (the root and every child of call, \
parallel and map) must have a detached signature next to it: `FILE.sig`. Sign each file with the \
private key that matches the configured public key. `agentd build` and `check` exit with code 4.",
        example: r#"name = "example"
[signing]
required = true
public_key_file = "release.pub"
# example.toml.sig does not exist.
# fix: agentd sign example.toml --key release.key
"#,
    },
    CodeInfo {
        code: "signature_invalid",
        severity: Error,
        stage: Signing,
        dialect1: false,
        summary: "a workflow file's signature does not match its bytes and the public key",
        explanation: "The `.sig` file is well formed but does not verify: the file changed after it \
was signed (signatures cover the exact bytes, comments and whitespace included), or it was signed \
with a different key than the one in `[signing]` / --verify-key. A wrong signature refuses the \
build whether or not signing is required. Re-sign the file if the change is intended.",
        example: r#"name = "example"
[signing]
public_key_file = "release.pub"
# example.toml.sig was made before this comment was added.
# fix: agentd sign example.toml --key release.key
"#,
    },
    CodeInfo {
        code: "signature_malformed",
        severity: Error,
        stage: Signing,
        dialect1: false,
        summary: "a `.sig` file is unreadable, not base64, or not 64 bytes",
        explanation: "A `.sig` file holds standard, padded base64 of the raw 64-byte Ed25519 \
signature (surrounding whitespace is ignored). Anything else is refused, even when signing is not \
required, because a broken signature next to a file is never what its author meant. `openssl \
pkeyutl -sign -rawin -inkey key.pem -in FILE | base64 -w 0` makes the same format.",
        example: r#"name = "example"
[signing]
public_key_file = "release.pub"
# example.toml.sig contains `not-a-signature`.
# fix: agentd sign example.toml --key release.key
"#,
    },
    CodeInfo {
        code: "signature_unverified",
        severity: Warning,
        stage: Signing,
        dialect1: false,
        summary: "a `.sig` file exists but no public key is configured to check it",
        explanation: "The file has a signature next to it, but the root workflow has no `[signing]` \
block and no --verify-key was given, so the signature was not checked. Declare the public key so \
that the signature protects something.",
        example: r#"name = "example"
# example.toml.sig exists.
# fix:
# [signing]
# public_key_file = "release.pub"
"#,
    },
    CodeInfo {
        code: "signing_key_missing",
        severity: Error,
        stage: Signing,
        dialect1: false,
        summary: "signing is required but no public key is configured, or the key file is unreadable",
        explanation: "Verification needs the signer's public key: `[signing] public_key_pem` (inline \
SPKI PEM), `public_key_file` (relative to the workflow's directory, then the working directory), or \
--verify-key PATH, which overrides both. Also reported when the named key file cannot be read.",
        example: r#"name = "example"
[signing]
required = true
# fix: public_key_file = "release.pub"
"#,
    },
    CodeInfo {
        code: "signing_key_invalid",
        severity: Error,
        stage: Signing,
        dialect1: false,
        summary: "the public key is not an SPKI PEM Ed25519 key, or both key sources are set",
        explanation: "The key must be an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as written by \
`agentd keygen` (NAME.pub) or `openssl pkey -pubout`. A private key, a bare 32-byte key or a \
certificate is refused. `public_key_pem` and `public_key_file` are mutually exclusive.",
        example: r#"name = "example"
[signing]
public_key_pem = "ssh-ed25519 AAAAC3Nza..."
# fix: paste the SPKI PEM written by `agentd keygen` (NAME.pub)
"#,
    },
    CodeInfo {
        code: "signing_algorithm_unsupported",
        severity: Error,
        stage: Signing,
        dialect1: false,
        summary: "`[signing] algorithm` is not ed25519",
        explanation: "Dialect 1 signs workflows with Ed25519 only; `algorithm` defaults to \
`ed25519` and is compared case-insensitively. Any other value refuses the build rather than \
silently skipping verification.",
        example: r#"name = "example"
[signing]
algorithm = "rsa"   # fix: algorithm = "ed25519" (or remove the line)
public_key_file = "release.pub"
"#,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate};

    /// Every code literal passed to `Diagnostic::error` / `Diagnostic::warning` in `src`.
    fn emitted_codes(src: &str) -> Vec<String> {
        // Ignore the file's own test module.
        let src = src.split("#[cfg(test)]").next().unwrap_or(src);
        let mut out = Vec::new();
        for pat in ["Diagnostic::error(", "Diagnostic::warning("] {
            let mut rest = src;
            while let Some(i) = rest.find(pat) {
                rest = &rest[i + pat.len()..];
                let arg = rest.trim_start();
                if let Some(lit) = arg.strip_prefix('"')
                    && let Some(end) = lit.find('"')
                {
                    out.push(lit[..end].to_string());
                }
            }
        }
        out
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "duplicate code {}", c.code);
            assert!(
                c.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                c.code
            );
            assert!(
                !c.summary.is_empty() && !c.explanation.is_empty() && !c.example.is_empty(),
                "{}",
                c.code
            );
            assert_eq!(lookup(c.code).map(|i| i.code), Some(c.code));
        }
        assert!(lookup("no_such_code").is_none());
        let dialect1 = CODES.iter().filter(|c| c.dialect1).count();
        assert_eq!(dialect1, 24, "dialect 1 has exactly 24 validator codes");
    }

    #[test]
    fn every_emitted_code_is_registered() {
        let sources = [
            ("validate.rs", include_str!("validate/mod.rs")),
            ("validate.rs", include_str!("validate/secrets.rs")),
            ("validate.rs", include_str!("validate/auth.rs")),
            ("validate.rs", include_str!("validate/logging.rs")),
            ("validate.rs", include_str!("validate/backends.rs")),
            ("validate.rs", include_str!("validate/no_effect.rs")),
            ("validate.rs", include_str!("validate/routes.rs")),
            ("validate.rs", include_str!("validate/budget.rs")),
            ("validate.rs", include_str!("validate/policy.rs")),
            ("validate.rs", include_str!("validate/graph.rs")),
            ("validate.rs", include_str!("validate/nodes.rs")),
            ("validate.rs", include_str!("validate/triggers.rs")),
            ("validate.rs", include_str!("validate/edges.rs")),
            ("parse.rs", include_str!("parse.rs")),
            ("load.rs", include_str!("load.rs")),
            ("embed.rs", include_str!("frontend/embed.rs")),
            ("signing.rs", include_str!("signing.rs")),
        ];
        let mut total = 0;
        for (file, src) in sources {
            for code in emitted_codes(src) {
                total += 1;
                let info = lookup(&code)
                    .unwrap_or_else(|| panic!("{file} emits unregistered code `{code}`"));
                // The macro reports a missing workflow file itself (without the
                // absolute path the parser's message carries), under the parser's code.
                if file == "embed.rs" && code == "io_error" {
                    continue;
                }
                let stage = match file {
                    "validate.rs" => Stage::Validate,
                    "parse.rs" => Stage::Parse,
                    "embed.rs" => Stage::Embed,
                    "signing.rs" => Stage::Signing,
                    _ => Stage::Load,
                };
                assert_eq!(
                    info.stage, stage,
                    "{code} is registered under the wrong stage"
                );
            }
        }
        assert!(
            total > 40,
            "the scan found only {total} codes; has the emitting style changed?"
        );
    }

    #[test]
    fn every_validate_code_is_emitted_with_its_severity() {
        // The validator's own file plus its submodules.
        let src = [
            include_str!("validate/mod.rs"),
            include_str!("validate/secrets.rs"),
            include_str!("validate/auth.rs"),
            include_str!("validate/logging.rs"),
            include_str!("validate/backends.rs"),
            include_str!("validate/no_effect.rs"),
            include_str!("validate/routes.rs"),
            include_str!("validate/budget.rs"),
            include_str!("validate/policy.rs"),
            include_str!("validate/silent.rs"),
            include_str!("validate/graph.rs"),
            include_str!("validate/nodes.rs"),
            include_str!("validate/triggers.rs"),
            include_str!("validate/edges.rs"),
        ]
        .map(|s| s.split("#[cfg(test)]").next().unwrap_or(s))
        .concat();
        let src = src.as_str();
        for c in CODES.iter().filter(|c| c.stage == Stage::Validate) {
            let ctor = match c.severity {
                Severity::Error => "Diagnostic::error(",
                Severity::Warning => "Diagnostic::warning(",
            };
            let found = src.match_indices(ctor).any(|(i, _)| {
                src[i + ctor.len()..]
                    .trim_start()
                    .starts_with(&format!("\"{}\"", c.code))
            });
            assert!(
                found,
                "`{}` is registered but validate.rs never emits it as {ctor}",
                c.code
            );
        }
    }

    #[test]
    fn validate_examples_trigger_their_code() {
        for c in CODES.iter().filter(|c| c.stage == Stage::Validate) {
            let r = parse_str(Path::new("example.toml"), c.example);
            let doc = r.doc.unwrap_or_else(|| {
                panic!("example for {} does not parse: {:?}", c.code, r.diagnostics)
            });
            let diags = validate(&r.source, &doc, &ValidateOptions::default());
            let d = diags.iter().find(|d| d.code == c.code).unwrap_or_else(|| {
                panic!("example for {} does not trigger it: {diags:#?}", c.code)
            });
            assert_eq!(d.severity, c.severity, "{}", c.code);
        }
    }

    #[test]
    fn parse_examples_trigger_their_code() {
        for c in CODES.iter().filter(|c| c.stage == Stage::Parse) {
            // Codes that cannot be shown as TOML text have a comment-only example.
            if c.example
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                continue;
            }
            let r = parse_str(Path::new("example.toml"), c.example);
            assert!(
                r.diagnostics.iter().any(|d| d.code == c.code),
                "example for {} gives {:?}",
                c.code,
                r.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn fixed_examples_are_clean_of_their_code() {
        // Sanity check of the "fix" comments for a few codes whose fix is a one-line edit.
        let fixes = [
            (
                "dangling_edge",
                "to = \"b\"          # fix",
                "to = \"a\"          # fix",
            ),
            ("unknown_backend", "\"cluade\"", "\"claude\""),
            ("invalid_cron", "\"30 25 * * *\"", "\"30 2 * * *\""),
            ("invalid_interval", "\"1.5h\"", "\"90m\""),
            ("bad_auth_ref", "\"Bearer:ops\"", "\"bearer:ops\""),
            (
                "unknown_auth_binding",
                "auth = \"bearer\"",
                "auth = \"bearer:ops\"",
            ),
        ];
        for (code, from, to) in fixes {
            let info = lookup(code).expect("registered");
            assert!(info.example.contains(from), "{code}: {from}");
            let fixed = info.example.replace(from, to);
            let r = parse_str(Path::new("example.toml"), &fixed);
            let doc = r.doc.expect("fixed example parses");
            let diags = validate(&r.source, &doc, &ValidateOptions::default());
            assert!(
                diags.iter().all(|d| d.code != code),
                "{code} still fires after the fix"
            );
        }
    }
}
