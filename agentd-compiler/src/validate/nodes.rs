//! Per-kind node checks of dialect 1 (7-11: MCP server references, `agent_loop`,
//! `respond`, `map`, `http_request` headers) and of the `rust` extension (custom
//! nodes: allowed only where handlers can be bound, named as Rust identifiers).

use super::MAX_AGENT_LOOP_STEPS;
use super::{Validator, did_you_mean, ticked};
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::grammar::check_header_placeholders;
use crate::grammar::is_rust_identifier;
use crate::loc;
use crate::model::{AGENT_LOOP_TOOLS, NodeKind};
use crate::source::{Loc, Seg};

impl<'a> Validator<'a> {
    // -- 7: MCP servers ---------------------------------------------------------------

    pub(super) fn check_mcp_nodes(&mut self) {
        let mut known: Vec<&str> = self
            .doc
            .mcp_servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        known.sort_unstable();
        known.dedup();
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let (kind, server) = match &n.kind {
                NodeKind::CallMcpTool(c) => ("call_mcp_tool", c.server.as_deref()),
                NodeKind::ReadMcpResource(r) => ("read_mcp_resource", r.server.as_deref()),
                _ => continue,
            };
            match server {
                Some(name) if !known.contains(&name) => {
                    let help = did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "declare it: [[mcp_servers]] name = \"{name}\", command = [\"/path/to/server\"]"
                        )
                    });
                    let d = Diagnostic::new(
                        Code::UnknownMcpServer,
                        self.path(),
                        format!(
                            "node `{}` ({kind}) references unknown mcp_server `{name}`",
                            n.id
                        ),
                    )
                    .with_span(self.span(loc!["nodes", i, "server"]))
                    .with_label("not declared in [[mcp_servers]]")
                    .with_help(help);
                    self.push(d);
                }
                None if known.len() > 1 => {
                    let d = Diagnostic::new(
                        Code::AmbiguousMcpServer,
                        self.path(),
                        format!(
                            "node `{}` ({kind}) has no `server` field but multiple mcp_servers are configured",
                            n.id
                        ),
                    )
                    .with_span(self.span(loc!["nodes", i, "id"]))
                    .with_label("this node does not say which server to use")
                    .with_help(format!("add `server = \"...\"` naming one of {}", ticked(known.iter().copied())));
                    self.push(d);
                }
                _ => {}
            }
        }
    }

    // -- 8: agent_loop ----------------------------------------------------------------

    pub(super) fn check_agent_loops(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::AgentLoop(a) = &n.kind else {
                continue;
            };
            if a.max_steps == 0 || a.max_steps > MAX_AGENT_LOOP_STEPS {
                let d = Diagnostic::new(
                    Code::AgentLoopStepsOutOfRange,
                    self.path(),
                    format!(
                        "node `{}`: max_steps must be 1..={MAX_AGENT_LOOP_STEPS} (got {})",
                        n.id, a.max_steps
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "max_steps"]))
                .with_label("out of range")
                .with_help(format!(
                    "set `max_steps` between 1 and {MAX_AGENT_LOOP_STEPS}"
                ));
                self.push(d);
            }
            if a.instructions.is_none() && a.instructions_from.is_none() {
                let d = Diagnostic::new(
                    Code::AgentLoopMissingInstructions,
                    self.path(),
                    format!("node `{}`: one of `instructions` / `instructions_from` is required", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "id"]))
                .with_label("this agent_loop has no task")
                .with_help("add `instructions = \"...\"` (literal text) or `instructions_from = \"<context path>\"`");
                self.push(d);
            }
            if a.tools.is_empty() {
                let tools_span = self.span(loc!["nodes", i, "tools"]);
                let span = if self.has_key(loc!["nodes", i, "tools"]) {
                    tools_span
                } else {
                    self.span(loc!["nodes", i, "id"])
                };
                let d = Diagnostic::new(
                    Code::AgentLoopNoTools,
                    self.path(),
                    format!(
                        "node `{}`: `tools` must list at least one of: {}",
                        n.id,
                        AGENT_LOOP_TOOLS.join(", ")
                    ),
                )
                .with_span(span)
                .with_label("no tools declared")
                .with_help("list the tools the loop may call, e.g. `tools = [\"read_file\"]`");
                self.push(d);
            }
            for (k, t) in a.tools.iter().enumerate() {
                if AGENT_LOOP_TOOLS.contains(&t.as_str()) {
                    continue;
                }
                let help = did_you_mean(t, AGENT_LOOP_TOOLS)
                    .unwrap_or_else(|| format!("loop tools are: {}", AGENT_LOOP_TOOLS.join(", ")));
                let d = Diagnostic::new(
                    Code::AgentLoopUnknownTool,
                    self.path(),
                    format!(
                        "node `{}`: `{t}` is not a loop tool (known: {})",
                        n.id,
                        AGENT_LOOP_TOOLS.join(", ")
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "tools", k]))
                .with_label("unknown tool")
                .with_help(help);
                self.push(d);
            }
        }
    }

    /// True when the key at `loc` is literally present in the file (`key_span_of`
    /// falls back to an ancestor when it is not).
    pub(super) fn has_key(&self, loc: Loc) -> bool {
        let Some(Seg::Key(last)) = loc.last() else {
            return false;
        };
        self.file
            .key_span_of(&loc)
            .and_then(|s| self.file.text.get(s))
            .is_some_and(|t| t.trim_matches(['"', '\'']) == last)
    }

    // -- 9: respond -------------------------------------------------------------------

    pub(super) fn check_respond_nodes(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Respond(r) = &n.kind else {
                continue;
            };
            if let Some(status) = r.status
                && !(100..=599).contains(&status)
            {
                let d = Diagnostic::new(
                    Code::RespondStatusOutOfRange,
                    self.path(),
                    format!(
                        "node `{}`: respond status must be 100..=599 (got {status})",
                        n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "status"]))
                .with_label("not an HTTP status code")
                .with_help("use an HTTP status between 100 and 599, or omit `status` for 200");
                self.push(d);
            }
            if let Some(ct) = &r.content_type
                && ct.trim().is_empty()
            {
                let d = Diagnostic::new(
                    Code::RespondEmptyContentType,
                    self.path(),
                    format!("node `{}`: respond content_type must not be blank", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "content_type"]))
                .with_label("blank content type")
                .with_help("set a media type such as \"text/plain\", or omit `content_type` for application/json");
                self.push(d);
            }
        }
    }

    // -- 10: map ----------------------------------------------------------------------

    pub(super) fn check_map_nodes(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Map(m) = &n.kind else {
                continue;
            };
            if m.max_items == 0 {
                let d = Diagnostic::new(
                    Code::MapZeroMaxItems,
                    self.path(),
                    format!("node `{}`: map max_items must be at least 1", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "max_items"]))
                .with_label("zero")
                .with_help("set `max_items` to the largest array this map may fan out over");
                self.push(d);
            }
            if m.max_concurrent == Some(0) {
                let d = Diagnostic::new(
                    Code::MapZeroConcurrency,
                    self.path(),
                    format!("node `{}`: map max_concurrent must be at least 1", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "max_concurrent"]))
                .with_label("zero")
                .with_help("set `max_concurrent` to 1 or more, or omit it for the default of 4");
                self.push(d);
            }
            if m.workflow.trim().is_empty() {
                let d = Diagnostic::new(
                    Code::MapEmptyWorkflow,
                    self.path(),
                    format!("node `{}`: map workflow must not be blank", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "workflow"]))
                .with_label("blank path")
                .with_help("set `workflow` to the path of the child workflow file");
                self.push(d);
            }
        }
    }

    // -- 11: http_request headers -----------------------------------------------------

    pub(super) fn check_http_headers(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::HttpRequest(h) = &n.kind else {
                continue;
            };
            let Some(headers) = &h.headers else {
                continue;
            };
            // BTreeMap: sorted by header name, so the order is stable.
            for (name, value) in headers {
                let hloc = loc!["nodes", i, "headers", name.as_str()];
                let valid_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid_name {
                    let d = Diagnostic::new(
                        Code::HttpHeaderBadName,
                        self.path(),
                        format!(
                            "node `{}`: header name `{name}` must match [A-Za-z0-9_-]+",
                            n.id
                        ),
                    )
                    .with_span(self.key_span(hloc.clone()))
                    .with_label("invalid header name")
                    .with_help("header names may contain only ASCII letters, digits, `-` and `_`");
                    self.push(d);
                }
                if value.contains(['\r', '\n']) {
                    let d = Diagnostic::new(
                        Code::HttpHeaderCrlf,
                        self.path(),
                        format!("node `{}`: header `{name}` value contains CR or LF", n.id),
                    )
                    .with_span(self.span(hloc.clone()))
                    .with_label("line break in a header value")
                    .with_help(
                        "remove the line breaks; a CR/LF would let the value inject extra headers",
                    );
                    self.push(d);
                }
                if let Err(why) = check_header_placeholders(value) {
                    let d = Diagnostic::new(
                        Code::HttpHeaderBadPlaceholder,
                        self.path(),
                        format!("node `{}`: header `{name}`: {why}", n.id),
                    )
                    .with_span(self.span(hloc.clone()))
                    .with_label("bad placeholder")
                    .with_help(
                        "header values are literals plus `{{secret:NAME}}` placeholders only; \
                         context data can never reach a header",
                    );
                    self.push(d);
                }
            }
        }
    }

    // -- extension: custom Rust nodes --------------------------------------------------

    /// `type = "rust"` is not dialect 1: refused unless the front end can bind handlers;
    /// when allowed, the handler name must be a Rust identifier so it can be bound.
    pub(super) fn check_rust_nodes(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Rust(r) = &n.kind else {
                continue;
            };
            if !self.opts.allow_rust_nodes {
                let d = Diagnostic::new(
                    Code::RustNodeNotAllowed,
                    self.path(),
                    format!(
                        "node `{}` is a custom Rust node, which strict dialect 1 does not allow",
                        n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "type"]))
                .with_label("`rust` is an agentd extension")
                .with_help(
                    "custom Rust nodes only build inside a Rust crate: embed the workflow with \
                     agentd!(\"<file>\", handlers = { <name> = path::to_fn }) \
                     (and do not pass `strict_dialect1 = true`)",
                );
                self.push(d);
            }
            if !is_rust_identifier(&r.handler) {
                let d = Diagnostic::new(
                    Code::InvalidHandlerName,
                    self.path(),
                    format!(
                        "handler name `{}` of node `{}` is not a Rust identifier",
                        r.handler, n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "handler"]))
                .with_help("use letters, digits and `_`, not starting with a digit and not a Rust keyword, e.g. \"classify_ticket\"");
                self.push(d);
            }
        }
    }
}
