//! `agent_loop` (docs/dialect.md §7 `agent_loop`; feature `llm`): a bounded tool
//! loop inside one node.
//!
//! Owns the loop: the dry-run placeholder (checked first), backend lookup,
//! the task text, the fixed protocol system text, one model call per step
//! with the deadline and both token caps checked before it, extraction of
//! the first balanced `{...}` from each reply, tool calls through the same
//! policy gates, dry-run and budgets as the node kinds (the `loop_*`
//! functions of the node modules), the observations fed back, the
//! transcript, and the two outputs: `final` (no branch) and `exhausted`
//! (branch `exhausted`, reason `step cap exhausted`, `token budget
//! exhausted` or `run token budget exhausted`).
//!
//! What the model says is untrusted. A reply that is not a well-formed
//! action, names an undeclared tool, or whose tool call fails (policy
//! denials included) becomes an `{"error": ...}` observation, never a run
//! failure, and is not counted as a policy denial. Bounds beyond dialect 1:
//! a reply over [`MAX_REPLY`] bytes is treated as malformed and only its
//! size is kept in the conversation, and an observation over
//! [`MAX_OBSERVATION`] bytes is replaced by an error observation, so the
//! conversation a loop re-sends stays bounded. Transport failures are hard
//! [`Error::Intelligence`], the deadline passing between steps is a hard
//! [`Error::Timeout`]. This module never talks to the world except through
//! a backend or a declared tool's `loop_*` function.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::context::{AtomicMetrics, Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::intel::IntelExt as _;
use crate::intel::{ChatMessage, ChatRequest};

/// The logical model every loop request names (no `max_tokens` is sent).
pub const MODEL: &str = "fast";

/// Largest model reply the loop acts on (1 MiB).
pub const MAX_REPLY: usize = 1024 * 1024;

/// Largest observation sent back to the model (1 MiB of JSON).
pub const MAX_OBSERVATION: usize = 1024 * 1024;

const KIND: &str = "agent_loop";

/// A tool an `agent_loop` may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopTool {
    /// `read_file{path}` (feature `fs`).
    ReadFile,
    /// `write_file{path, content}` (feature `fs`).
    WriteFile,
    /// `read_env{key}` (feature `env`).
    ReadEnv,
    /// `http_request{method, url, body?}` (feature `http`).
    HttpRequest,
    /// `shell_run{command, args?}` (feature `shell`).
    ShellRun,
    /// `call_mcp_tool{tool, args?, server?}` (feature `mcp`).
    CallMcpTool,
}

impl LoopTool {
    /// The tool's name, as the model writes it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReadFile => "read_file",
            Self::WriteFile => "write_file",
            Self::ReadEnv => "read_env",
            Self::HttpRequest => "http_request",
            Self::ShellRun => "shell_run",
            Self::CallMcpTool => "call_mcp_tool",
        }
    }

    /// The line describing the tool in the protocol text.
    const fn usage(self) -> &'static str {
        match self {
            Self::ReadFile => r#"read_file {"path": "<file path>"}: read a UTF-8 text file"#,
            Self::WriteFile => {
                r#"write_file {"path": "<file path>", "content": "<text>"}: write a text file"#
            }
            Self::ReadEnv => r#"read_env {"key": "<variable name>"}: read an environment variable"#,
            Self::HttpRequest => {
                r#"http_request {"method": "GET|POST|...", "url": "<url>", "body": <optional JSON or text>}: send an HTTP request"#
            }
            Self::ShellRun => {
                r#"shell_run {"command": "<absolute path>", "args": ["<arg>", ...]}: run a program (no shell)"#
            }
            Self::CallMcpTool => {
                r#"call_mcp_tool {"tool": "<name>", "args": {...}, "server": "<optional server name>"}: call a tool on an MCP server"#
            }
        }
    }
}

/// A baked `agent_loop` node.
#[derive(Debug)]
pub struct AgentLoop {
    /// The backend name.
    pub backend: &'static str,
    /// The task, literal (wins over `instructions_from`).
    pub instructions: Option<&'static str>,
    /// The task, from the context.
    pub instructions_from: Option<CtxPath>,
    /// The declared tools (non-empty; the compiler checks it).
    pub tools: &'static [LoopTool],
    /// Model calls allowed (1..=64).
    pub max_steps: u32,
    /// Tokens (prompt + completion) this node may spend.
    pub max_tokens: Option<u32>,
}

/// The fixed protocol text of the system message, listing `tools`.
#[must_use]
pub fn protocol_text(tools: &[LoopTool]) -> String {
    let mut text = String::from(
        "You are an agent working inside a bounded tool loop. Answer every turn with exactly \
         one JSON object and nothing else, in one of two forms:\n\
         {\"action\": \"tool\", \"tool\": \"<tool name>\", \"args\": {...}} to call a tool; \
         its result comes back as {\"tool_result\": ...} or {\"error\": \"...\"}.\n\
         {\"action\": \"final\", \"result\": <any JSON>} when the task is done.\n\
         Only these tools exist:\n",
    );
    for tool in tools {
        text.push_str("- ");
        text.push_str(tool.usage());
        text.push('\n');
    }
    text
}

/// Run an `agent_loop` node.
///
/// # Errors
///
/// [`Error::CapabilityUnavailable`] when no backend is configured at all
/// (outside a harness), [`Error::Intelligence`] for an unknown backend or a
/// failed call, [`Error::Tool`] when `instructions_from` is not set, and
/// [`Error::Timeout`] when the run deadline passes between steps.
pub fn agent_loop(cx: &mut Cx<'_>, cfg: &'static AgentLoop) -> Result<Step, Error> {
    let intel = cx.intel().clone();
    if intel.backends.is_empty() {
        // Dialect 1 registers the kind only when a backend exists.
        if cx.stub_unavailable() {
            return Ok(Step::value(json!({ "stub": KIND })));
        }
        return Err(Error::CapabilityUnavailable(format!(
            "no handler registered for node kind `{KIND}` (node `{}`): no intelligence backend \
             is configured; pass --intel-unix PATH or --intel-http URL, or declare \
             [[intelligence.backends]]",
            cx.node_id()
        )));
    }
    if cx.dry_run() {
        return Ok(Step::value(
            json!({ "result": null, "steps": 0, "dry_run": true }),
        ));
    }
    let backend = intel.backends.get(cfg.backend)?;
    let task = match (cfg.instructions, &cfg.instructions_from) {
        (Some(text), _) => text.to_owned(),
        (None, Some(path)) => match cx.require(KIND, path)? {
            Value::String(s) => s.clone(),
            // `Value`'s Display is compact JSON.
            other => other.to_string(),
        },
        (None, None) => String::new(),
    };
    let mut messages = vec![
        ChatMessage {
            role: "system",
            content: protocol_text(cfg.tools),
        },
        ChatMessage::user(task),
    ];
    let started = Instant::now();
    let mut transcript: Vec<Value> = Vec::new();
    let mut tokens: u64 = 0;
    let mut steps: u32 = 0;
    let exhausted = loop {
        if steps >= cfg.max_steps {
            break "step cap exhausted";
        }
        if Instant::now() >= cx.deadline() {
            return Err(Error::Timeout(started.elapsed()));
        }
        if cfg.max_tokens.is_some_and(|cap| tokens >= u64::from(cap)) {
            break "token budget exhausted";
        }
        if intel
            .budget
            .cap()
            .is_some_and(|cap| intel.budget.used() >= cap)
        {
            break "run token budget exhausted";
        }
        let step = steps + 1;
        let reply = backend.complete(&ChatRequest {
            model: MODEL.to_owned(),
            messages: messages.clone(),
            max_tokens: None,
            temperature: None,
        })?;
        steps = step;
        let billed = reply.total_tokens();
        tokens = tokens.saturating_add(billed);
        AtomicMetrics::bump(&cx.run_metrics().llm_calls);
        cx.run_metrics()
            .llm_tokens
            .fetch_add(billed, Ordering::Relaxed);
        intel.budget.add(billed);

        let action = if reply.content.len() > MAX_REPLY {
            messages.push(ChatMessage::assistant(format!(
                "<reply of {} bytes omitted>",
                reply.content.len()
            )));
            Err(format!(
                "your reply of {} bytes exceeds the {MAX_REPLY}-byte limit",
                reply.content.len()
            ))
        } else {
            let action = parse_action(&reply.content);
            messages.push(ChatMessage::assistant(reply.content));
            action
        };
        let observation = match action {
            Ok(Action::Final(result)) => {
                transcript.push(json!({ "step": step, "action": "final" }));
                return Ok(Step::value(json!({
                    "result": result,
                    "steps": step,
                    "tokens": tokens,
                    "transcript": transcript,
                })));
            }
            Ok(Action::Tool { tool, args }) => {
                let outcome = run_declared(cx, cfg, &tool, &args);
                transcript.push(json!({
                    "step": step,
                    "action": "tool",
                    "tool": tool,
                    "args": args,
                    "ok": outcome.is_ok(),
                }));
                match outcome {
                    Ok(value) => json!({ "tool_result": value }),
                    Err(message) => json!({ "error": message }),
                }
            }
            Err(why) => {
                transcript.push(json!({ "step": step, "action": "malformed" }));
                json!({ "error": why })
            }
        };
        messages.push(ChatMessage::user(bounded(&observation)));
    };
    Ok(Step::branch(
        json!({
            "result": null,
            "reason": exhausted,
            "steps": steps,
            "transcript": transcript,
        }),
        "exhausted",
    ))
}

/// An observation as the user message text, replaced by an error when it
/// is over [`MAX_OBSERVATION`].
fn bounded(observation: &Value) -> String {
    let text = observation.to_string();
    if text.len() <= MAX_OBSERVATION {
        return text;
    }
    json!({
        "error": format!(
            "the tool result of {} bytes exceeds the {MAX_OBSERVATION}-byte observation limit",
            text.len()
        )
    })
    .to_string()
}

/// What a reply asked for.
#[derive(Debug, PartialEq)]
enum Action {
    Tool { tool: String, args: Value },
    Final(Value),
}

/// Parse a reply: the first balanced `{...}` must be a JSON object with
/// `"action": "tool"` (a string `tool`, an object `args`, `{}` when absent)
/// or `"action": "final"` (`result`, `null` when absent). `Err` is the
/// reason sent back to the model.
fn parse_action(reply: &str) -> Result<Action, String> {
    let Some(object) = first_object(reply) else {
        return Err(
            "no JSON object found in your reply; answer with exactly one JSON action object"
                .to_owned(),
        );
    };
    // serde_json's recursion limit turns hostile nesting into an error.
    let value: Value = serde_json::from_str(object)
        .map_err(|e| format!("the JSON object in your reply is not valid JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("the reply is not a JSON object".to_owned());
    };
    match fields.get("action").and_then(Value::as_str) {
        Some("final") => Ok(Action::Final(
            fields.remove("result").unwrap_or(Value::Null),
        )),
        Some("tool") => {
            let Some(Value::String(tool)) = fields.remove("tool") else {
                return Err("a tool action needs a string `tool`".to_owned());
            };
            let args = match fields.remove("args") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(args @ Value::Object(_)) => args,
                Some(_) => return Err("`args` must be a JSON object".to_owned()),
            };
            Ok(Action::Tool { tool, args })
        }
        Some(other) => Err(format!(
            "unknown action `{other}`; use \"tool\" or \"final\""
        )),
        None => Err("the JSON object has no string `action`; use \"tool\" or \"final\"".to_owned()),
    }
}

/// The first balanced `{...}` of `text`, so prose and code fences around
/// the object are tolerated. Braces inside JSON strings do not count.
/// Iterative, so hostile nesting cannot exhaust the stack.
#[must_use]
pub fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    // `{` and `}` are ASCII, so both ends are char boundaries.
                    return text.get(start..=i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Run `tool` if the loop declared it; `Err` is the observation's message.
fn run_declared(cx: &Cx<'_>, cfg: &AgentLoop, tool: &str, args: &Value) -> Result<Value, String> {
    let Some(declared) = cfg.tools.iter().copied().find(|t| t.name() == tool) else {
        let names: Vec<&str> = cfg.tools.iter().map(|t| t.name()).collect();
        return Err(format!(
            "tool `{tool}` is not available in this loop; available tools: {}",
            names.join(", ")
        ));
    };
    run_tool(cx, declared, args).map_err(|e| {
        // docs/dialect.md §7 `agent_loop`: a denial is an observation, not a run failure, and is not
        // counted in `policy_denials`; it is still an audit event, so an
        // operator sees what the model tried.
        if matches!(e, Error::Policy(_)) {
            crate::obs::audit(
                "policy.denied",
                serde_json::json!({
                    "node": cx.node_id(),
                    "kind": "agent_loop",
                    "tool": tool,
                    "reason": e.to_string(),
                }),
            );
        }
        e.to_string()
    })
}

/// One tool call through its node kind's gates (policy, dry-run, budgets).
fn run_tool(cx: &Cx<'_>, tool: LoopTool, args: &Value) -> Result<Value, Error> {
    match tool {
        LoopTool::ReadFile => tools::read_file(cx, args),
        LoopTool::WriteFile => tools::write_file(cx, args),
        LoopTool::ReadEnv => tools::read_env(cx, args),
        LoopTool::HttpRequest => tools::http_request(cx, args),
        LoopTool::ShellRun => tools::shell_run(cx, args),
        LoopTool::CallMcpTool => tools::call_mcp_tool(cx, args),
    }
}

/// The loop tools. The fs and env families are always compiled in; the
/// others are present only with their node family's feature. The compiler
/// enables the feature of every declared tool, so the fallbacks only answer a
/// hand-wired loop that declares a tool its build lacks.
mod tools {
    use serde_json::Value;

    use crate::context::Cx;
    use crate::error::Error;

    #[allow(dead_code, reason = "used only when a tool's feature is off")]
    fn missing(tool: &str, feature: &str) -> Error {
        Error::CapabilityUnavailable(format!(
            "loop tool `{tool}` needs the `{feature}` feature, which this binary was built without"
        ))
    }

    pub(super) fn read_file(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
        crate::nodes::fs::loop_read_file(cx, args)
    }

    pub(super) fn write_file(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
        crate::nodes::fs::loop_write_file(cx, args)
    }

    pub(super) fn read_env(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
        crate::nodes::env::loop_read_env(cx, args)
    }

    #[cfg(feature = "http")]
    pub(super) fn http_request(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
        crate::nodes::http::loop_http(cx, args)
    }
    #[cfg(not(feature = "http"))]
    pub(super) fn http_request(_: &Cx<'_>, _: &Value) -> Result<Value, Error> {
        Err(missing("http_request", "http"))
    }

    #[cfg(feature = "shell")]
    pub(super) fn shell_run(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
        crate::nodes::shell::loop_shell(cx, args)
    }
    #[cfg(not(feature = "shell"))]
    pub(super) fn shell_run(_: &Cx<'_>, _: &Value) -> Result<Value, Error> {
        Err(missing("shell_run", "shell"))
    }

    #[cfg(feature = "mcp")]
    pub(super) fn call_mcp_tool(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
        crate::nodes::mcp::loop_call_mcp_tool(cx, args)
    }
    #[cfg(not(feature = "mcp"))]
    pub(super) fn call_mcp_tool(_: &Cx<'_>, _: &Value) -> Result<Value, Error> {
        Err(missing("call_mcp_tool", "mcp"))
    }
}

#[cfg(test)]
mod tests;
