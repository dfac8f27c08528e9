//! Warnings for workflows that are valid dialect 1 but fail silently (ours,
//! issue 21); the dialect-1 behaviour is kept, `agentd check` says so:
//!
//! - `error_branch_unhandled`: a node that reports failure by taking its
//!   `error` branch (`call_mcp_tool` on a tool error, `shell_run` on a non-zero
//!   exit or timeout, `call`/`parallel`/`map` on a failed child) has no
//!   `when = "error"` edge. The branch then matches no edge and the run ends
//!   `completed` at that node (exit 0, HTTP 200) with the error as its output.
//! - `respond_json_unescaped`: a `respond` node with a JSON content type
//!   inserts request values (its data is the trigger input) with plain
//!   `{{key}}` placeholders, which copy strings raw: a quote in the request
//!   makes the reply invalid JSON, or lets the client add fields. The fix is
//!   `{{key|json}}`, which inserts a JSON value.

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::ir::{SegIr, split_template};
use crate::loc;
use crate::model::NodeKind;

/// Kinds whose runtime takes the `error` branch instead of failing the run.
fn soft_failure(kind: &NodeKind) -> Option<&'static str> {
    match kind {
        NodeKind::CallMcpTool(_) => Some("a tool error"),
        NodeKind::ShellRun(_) => Some("a non-zero exit or a timeout"),
        NodeKind::Call(_) => Some("a failed or timed-out child run"),
        NodeKind::Parallel(_) | NodeKind::Map(_) => Some("a failed child run"),
        _ => None,
    }
}

/// `application/json` and `*/*+json` media types (parameters ignored).
fn is_json_media(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json")
}

impl Validator<'_> {
    pub(super) fn check_unhandled_error_branches(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let Some(what) = soft_failure(&n.kind) else {
                continue;
            };
            let handled = self
                .doc
                .edges
                .iter()
                .any(|e| e.from == n.id && e.when.as_deref() == Some("error"));
            if handled {
                continue;
            }
            let kname = n.kind.type_name();
            let d = Diagnostic::new(
                Code::ErrorBranchUnhandled,
                self.path(),
                format!(
                    "node `{}` (`{kname}`) has no `when = \"error\"` edge: on {what} the run ends \
                     `completed` at `{}`, exit 0, with the error as its output",
                    n.id, n.id
                ),
            )
            .with_span(self.span(loc!["nodes", i, "id"]))
            .with_label("failure passes silently")
            .with_help(format!(
                "add [[edges]] from = \"{}\", when = \"error\", to = \"...\" (a `fail` node makes the \
                 run fail)",
                n.id
            ));
            self.push(d);
        }
    }

    pub(super) fn check_respond_escaping(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Respond(r) = &n.kind else {
                continue;
            };
            let content_type = r.content_type.as_deref().unwrap_or("application/json");
            // Its data is the request unless `input_from` names a node's output.
            let from_request = r
                .input_from
                .as_deref()
                .is_none_or(|p| p == "trigger" || p.starts_with("trigger."));
            if !from_request || !is_json_media(content_type) {
                continue;
            }
            let raw: Vec<String> = split_template(&r.body_template)
                .into_iter()
                .filter_map(|seg| match seg {
                    // The server sets `principal.kind` to one of six words.
                    SegIr::Key { raw, .. } if raw != "principal.kind" => Some(raw),
                    SegIr::Key { .. } | SegIr::Lit(_) | SegIr::Json { .. } => None,
                })
                .collect();
            let Some(first) = raw.first() else {
                continue;
            };
            let keys = raw
                .iter()
                .map(|k| format!("`{{{{{k}}}}}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let d = Diagnostic::new(
                Code::RespondJsonUnescaped,
                self.path(),
                format!(
                    "node `{}` replies `{content_type}` but inserts request values unescaped ({keys}): \
                     a `\"` in the request makes the reply invalid JSON",
                    n.id
                ),
            )
            .with_span(self.span(loc!["nodes", i, "body_template"]))
            .with_label("raw placeholder in a JSON body")
            .with_help(format!(
                "write `{{{{{first}|json}}}}` (it inserts a JSON value: a string with its quotes, so \
                 drop the quotes around it)"
            ));
            self.push(d);
        }
    }
}
