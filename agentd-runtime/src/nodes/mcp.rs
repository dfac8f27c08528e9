//! The MCP kinds (feature `mcp`): `call_mcp_tool` and `read_mcp_resource`
//! (docs/dialect.md §7 `read_mcp_resource`, `call_mcp_tool`), and the `call_mcp_tool` tool of
//! `agent_loop` ([`loop_call_mcp_tool`]).
//!
//! Order per kind is the dialect's: resolve the server (hard `Workflow`
//! error when unknown or ambiguous), resolve the URI (resources), pass the
//! allowlist (`Policy`), honour dry-run, then call. Transport failures are
//! hard `Mcp` errors; `call_mcp_tool` takes the `error` branch when the
//! server reports `isError`. This module never talks to a server except
//! through [`crate::mcp`], and never before the allowlist and dry-run.

use serde_json::{Value, json};

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::mcp::McpExt as _;
use crate::mcp::{Access, ServerEntry};

/// `call_mcp_tool` config.
#[derive(Debug)]
pub struct CallMcpTool {
    /// The tool name (literal).
    pub tool: &'static str,
    /// The tool's arguments; a miss is `null` (sent as no arguments).
    pub args_from: Option<CtxPath>,
    /// The server; may be omitted when exactly one is configured.
    pub server: Option<&'static str>,
}

/// `read_mcp_resource` config.
#[derive(Debug)]
pub struct ReadMcpResource {
    /// Must resolve to a string URI.
    pub resource_from: CtxPath,
    /// The server; may be omitted when exactly one is configured.
    pub server: Option<&'static str>,
}

#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "the agent_loop tool"))]
const CALL: &str = "call_mcp_tool";
const READ: &str = "read_mcp_resource";

/// The dialect registers the MCP kinds only when a server exists: without
/// one they are "capability unavailable" (a stub under a harness).
fn no_servers(cx: &Cx<'_>) -> Result<Step, Error> {
    let kind = cx.kind().as_str();
    if cx.stub_unavailable() {
        return Ok(Step::value(json!({ "stub": kind })));
    }
    Err(Error::CapabilityUnavailable(format!(
        "no handler registered for node kind `{kind}` (node `{}`): no MCP server is configured; \
         declare one in [[mcp_servers]]",
        cx.node_id()
    )))
}

fn select<'m>(
    cx: &Cx<'_>,
    mcp: &'m crate::mcp::Mcp,
    server: Option<&str>,
) -> Result<&'m ServerEntry, Error> {
    mcp.select(server).map_err(|reason| {
        Error::workflow(cx.workflow(), format!("node `{}`: {reason}", cx.node_id()))
    })
}

/// `call_mcp_tool`: output `{"tool", "server", "content", "is_error",
/// "structured"}`, branch `error` when the server set `isError`; dry-run
/// `{"tool", "server", "dry_run": true}` after the allowlist.
///
/// # Errors
///
/// Unknown or ambiguous server (`Workflow`), a denial (`Policy`), transport
/// failures and malformed results (`Mcp`).
pub fn call_mcp_tool(cx: &Cx<'_>, cfg: &'static CallMcpTool) -> Result<Step, Error> {
    let mcp = cx.mcp().clone();
    if mcp.is_empty() {
        return no_servers(cx);
    }
    let server = select(cx, &mcp, cfg.server)?;
    let args = cfg
        .args_from
        .as_ref()
        .and_then(|p| cx.resolve(p))
        .unwrap_or(&Value::Null);
    let out = call_tool(cx, server, cfg.tool, args)?;
    let is_error = out.get("is_error").and_then(Value::as_bool) == Some(true);
    Ok(if is_error {
        Step::branch(out, "error")
    } else {
        Step::value(out)
    })
}

/// The shared path of the node and the loop tool: allowlist, dry-run, call,
/// output shape.
fn call_tool(cx: &Cx<'_>, server: &ServerEntry, tool: &str, args: &Value) -> Result<Value, Error> {
    server.check(cx.policy(), Access::Tool(tool))?;
    if cx.dry_run() {
        return Ok(json!({ "tool": tool, "server": server.name, "dry_run": true }));
    }
    let timeout = cx.mcp().timeout_of(&server.name, cx.deadline());
    let result = server.server.call_tool(tool, args, timeout)?;
    tool_output(&server.name, tool, result)
}

/// Shape a `tools/call` result: `content` (an array, `[]` when absent),
/// `is_error` (`isError`, default false), `structured`
/// (`structuredContent`, default null).
fn tool_output(server: &str, tool: &str, result: Value) -> Result<Value, Error> {
    let Value::Object(mut result) = result else {
        return Err(Error::Mcp(format!(
            "mcp server `{server}` answered `tools/call` for `{tool}` with a non-object result"
        )));
    };
    let content = match result.remove("content") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(v @ Value::Array(_)) => v,
        Some(_) => {
            return Err(Error::Mcp(format!(
                "mcp server `{server}` answered `tools/call` for `{tool}` with a non-array `content`"
            )));
        }
    };
    let is_error = match result.get("isError") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::Mcp(format!(
                "mcp server `{server}` answered `tools/call` for `{tool}` with a non-boolean `isError`"
            )));
        }
    };
    let structured = result.remove("structuredContent").unwrap_or(Value::Null);
    Ok(json!({
        "tool": tool,
        "server": server,
        "content": content,
        "is_error": is_error,
        "structured": structured,
    }))
}

/// `read_mcp_resource`: output `{"uri", "server", "contents"}`; dry-run
/// `{"uri", "server", "dry_run": true}` after the allowlist.
///
/// # Errors
///
/// Unknown or ambiguous server (`Workflow`), an unset or non-string URI
/// (`Tool`), a denial (`Policy`), transport failures and malformed results
/// (`Mcp`).
pub fn read_mcp_resource(cx: &Cx<'_>, cfg: &'static ReadMcpResource) -> Result<Step, Error> {
    let mcp = cx.mcp().clone();
    if mcp.is_empty() {
        return no_servers(cx);
    }
    let server = select(cx, &mcp, cfg.server)?;
    let uri = cx.require_str(READ, &cfg.resource_from)?;
    server.check(cx.policy(), Access::Resource(uri))?;
    if cx.dry_run() {
        return Ok(Step::value(
            json!({ "uri": uri, "server": server.name, "dry_run": true }),
        ));
    }
    let timeout = mcp.timeout_of(&server.name, cx.deadline());
    let result = server.server.read_resource(uri, timeout)?;
    let contents = match result {
        Value::Object(mut r) => match r.remove("contents") {
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(v @ Value::Array(_)) => v,
            Some(_) => {
                return Err(Error::Mcp(format!(
                    "mcp server `{}` answered `resources/read` for `{uri}` with a non-array `contents`",
                    server.name
                )));
            }
        },
        _ => {
            return Err(Error::Mcp(format!(
                "mcp server `{}` answered `resources/read` for `{uri}` with a non-object result",
                server.name
            )));
        }
    };
    Ok(Step::value(
        json!({ "uri": uri, "server": server.name, "contents": contents }),
    ))
}

/// The `call_mcp_tool` tool of `agent_loop`: args `{tool, args?, server?}`;
/// the node's server rule, allowlist, dry-run and output (an `isError`
/// result is an ordinary observation, not a failure).
///
/// # Errors
///
/// As [`call_mcp_tool`], plus `Tool` for malformed loop arguments; with no
/// server configured, `CapabilityUnavailable`.
#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "the agent_loop tool"))]
pub(crate) fn loop_call_mcp_tool(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
    let tool = args
        .get("tool")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::tool(CALL, "loop argument `tool` must be a string"))?;
    let server = match args.get("server") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Error::tool(CALL, "loop argument `server` must be a string")),
    };
    let tool_args = args.get("args").unwrap_or(&Value::Null);
    let mcp = cx.mcp().clone();
    if mcp.is_empty() {
        return Err(Error::CapabilityUnavailable(
            "no MCP server is configured; declare one in [[mcp_servers]]".to_owned(),
        ));
    }
    let entry = select(cx, &mcp, server)?;
    call_tool(cx, entry, tool, tool_args)
}

#[cfg(test)]
mod tests;
