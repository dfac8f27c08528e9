//! What a run produces: the outcome, the trace and the metrics.
//!
//! Owns the wire shapes of docs/dialect.md §13 ([`Outcome`], and [`TraceEntry`] under "Trace"),
//! the per-run counters ([`Metrics`]) and the bundle the engine hands back
//! ([`RunReport`]). These are Rust structs, so they serialise in declaration
//! order — the order dialect 1 fixes. They must never be built by going
//! through a `serde_json::Value`, which would sort their keys.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::graph::Kind;

/// How a run ended without a hard error (docs/dialect.md §13; tag `status`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// A dead end (final value = that node's output) or `terminate` (null).
    Completed {
        /// The run's value.
        final_value: Value,
        /// The node the run ended at.
        last_node: Option<&'static str>,
        /// The last `respond` reply of this (top-level) run, if any ran.
        #[serde(skip_serializing_if = "Option::is_none")]
        http_response: Option<HttpResponse>,
    },
    /// A `fail` node ran.
    Failed {
        /// The `fail` node's reason.
        reason: Cow<'static, str>,
        /// The `fail` node.
        last_node: Option<&'static str>,
    },
    /// The deadline passed before the next node could start.
    TimedOut {
        /// Milliseconds since the walk started.
        elapsed_ms: u64,
        /// The last node entered (the one that overran), if any.
        last_node: Option<&'static str>,
    },
    /// A `pause_for_approval` node checkpointed the run.
    Paused {
        /// The execution id to resume.
        run_id: String,
        /// The pause node.
        last_node: Option<&'static str>,
        /// The pause node's `reason`, when it declared one.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
}

impl Outcome {
    /// The `status` string.
    #[must_use]
    pub const fn status(&self) -> &'static str {
        match self {
            Self::Completed { .. } => "completed",
            Self::Failed { .. } => "failed",
            Self::TimedOut { .. } => "timed_out",
            Self::Paused { .. } => "paused",
        }
    }

    /// The node the run ended at.
    #[must_use]
    pub const fn last_node(&self) -> Option<&'static str> {
        match self {
            Self::Completed { last_node, .. }
            | Self::Failed { last_node, .. }
            | Self::TimedOut { last_node, .. }
            | Self::Paused { last_node, .. } => *last_node,
        }
    }
}

impl Outcome {
    /// The outcome as `serde_json::to_string_pretty` writes it (two-space
    /// indent, `": "`, `[]`/`{}` when empty), byte for byte, written straight
    /// into one string: the run-once binary prints it at every exit, and the
    /// generic serializer through a `Write` costs several times as much
    /// (docs/performance.md "Run once, issue 19 round 3"). A test compares the
    /// two on every variant.
    #[must_use]
    pub fn to_pretty_json(&self) -> String {
        let mut out = String::with_capacity(256);
        let status = Piece::Str(self.status());
        match self {
            Self::Completed {
                final_value,
                last_node,
                http_response,
            } => {
                let (len, reply) = match http_response {
                    Some(reply) => (4, Piece::Reply(reply)),
                    None => (3, Piece::OptStr(None)),
                };
                let fields = [
                    ("status", status),
                    ("final_value", Piece::Value(final_value)),
                    ("last_node", Piece::OptStr(*last_node)),
                    ("http_response", reply),
                ];
                pretty_fields(&mut out, &fields[..len], 0);
            }
            Self::Failed { reason, last_node } => pretty_fields(
                &mut out,
                &[
                    ("status", status),
                    ("reason", Piece::Str(reason)),
                    ("last_node", Piece::OptStr(*last_node)),
                ],
                0,
            ),
            Self::TimedOut {
                elapsed_ms,
                last_node,
            } => pretty_fields(
                &mut out,
                &[
                    ("status", status),
                    ("elapsed_ms", Piece::U64(*elapsed_ms)),
                    ("last_node", Piece::OptStr(*last_node)),
                ],
                0,
            ),
            Self::Paused {
                run_id,
                last_node,
                reason,
            } => {
                let (len, reason) = match reason {
                    Some(reason) => (4, Piece::Str(reason)),
                    None => (3, Piece::OptStr(None)),
                };
                let fields = [
                    ("status", status),
                    ("run_id", Piece::Str(run_id)),
                    ("last_node", Piece::OptStr(*last_node)),
                    ("reason", reason),
                ];
                pretty_fields(&mut out, &fields[..len], 0);
            }
        }
        out
    }
}

/// One field of a pretty-printed struct.
enum Piece<'a> {
    Str(&'a str),
    OptStr(Option<&'a str>),
    U64(u64),
    Value(&'a Value),
    Reply(&'a HttpResponse),
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A non-empty object of `fields` at `depth`, as serde_json's pretty
/// formatter lays out a struct.
fn pretty_fields(out: &mut String, fields: &[(&str, Piece<'_>)], depth: usize) {
    out.push('{');
    for (i, (key, piece)) in fields.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        indent(out, depth + 1);
        crate::obs::format::push_json_str(out, key);
        out.push_str(": ");
        match piece {
            Piece::Str(s) | Piece::OptStr(Some(s)) => crate::obs::format::push_json_str(out, s),
            Piece::OptStr(None) => out.push_str("null"),
            Piece::U64(n) => {
                use std::fmt::Write as _;
                let _ = write!(out, "{n}");
            }
            Piece::Value(v) => pretty_value(out, v, depth + 1),
            Piece::Reply(reply) => pretty_fields(
                out,
                &[
                    ("status", Piece::U64(u64::from(reply.status))),
                    ("content_type", Piece::Str(reply.content_type)),
                    ("body", Piece::Str(&reply.body)),
                ],
                depth + 1,
            ),
        }
    }
    out.push('\n');
    indent(out, depth);
    out.push('}');
}

/// `v` at `depth`, as serde_json's pretty formatter writes it.
fn pretty_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                pretty_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                crate::obs::format::push_json_str(out, key);
                out.push_str(": ");
                pretty_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
        // Scalars, `[]` and `{}` print as in compact JSON.
        other => crate::obs::format::push_json_value(out, other),
    }
}

/// The reply a `respond` node declared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpResponse {
    /// HTTP status (100..=599, checked at build time).
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The rendered body.
    pub body: String,
}

/// The execution trace: one entry per node visit, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Trace {
    /// The run's execution id.
    pub execution_id: String,
    /// The visits.
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    /// The visited node ids, in order (the conformance "path").
    #[must_use]
    pub fn path(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.node_id).collect()
    }
}

/// One node visit (docs/dialect.md §13 "Trace").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEntry {
    /// The node's id.
    pub node_id: &'static str,
    /// The node's type.
    pub kind: Kind,
    /// How the visit ended.
    pub outcome: StepKind,
    /// The branch label the node emitted.
    pub branch: Option<Cow<'static, str>>,
    /// The node's output (`null` for fail and pause).
    pub output: Value,
    /// Wall time of the visit, retries and backoff included.
    pub elapsed_ms: u64,
}

/// [`TraceEntry::outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The node returned a value; the walk went on (or dead-ended).
    Continue,
    /// A `terminate` node.
    Terminate,
    /// A `fail` node.
    Fail,
    /// A `pause_for_approval` node.
    Pause,
}

/// Per-run counters. Child walks of `call`/`parallel`/`map` count into
/// their parent run's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Node visits (not attempts).
    pub node_executions: u64,
    /// Visits that ended in a hard error (after retries).
    pub node_failures: u64,
    /// Failed visits whose error was a policy denial.
    pub policy_denials: u64,
    /// LLM calls made (0 until the intelligence family lands).
    pub llm_calls: u64,
    /// LLM tokens billed (0 until the intelligence family lands).
    pub llm_tokens: u64,
}

/// Everything [`crate::engine::Engine::run`] returns.
#[derive(Debug)]
pub struct RunReport {
    /// The outcome, or the hard error that aborted the run.
    pub outcome: Result<Outcome, Error>,
    /// The visits of the top-level walk. Empty after a hard error (dialect 1
    /// drops a partial trace) and when trace recording is off.
    pub trace: Trace,
    /// The run's counters, child walks included.
    pub metrics: Metrics,
    /// `exec-<unix secs hex>-<pid hex>-<counter hex>`.
    pub execution_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(o: &Outcome) -> String {
        serde_json::to_string(o).unwrap_or_default()
    }

    #[test]
    fn completed_puts_fields_in_spec_order_and_omits_absent_reply() {
        let o = Outcome::Completed {
            final_value: json!({"b": 1, "a": 2}),
            last_node: Some("n"),
            http_response: None,
        };
        assert_eq!(
            text(&o),
            r#"{"status":"completed","final_value":{"a":2,"b":1},"last_node":"n"}"#
        );
    }

    #[test]
    fn completed_with_reply_appends_http_response() {
        let o = Outcome::Completed {
            final_value: Value::Null,
            last_node: Some("t"),
            http_response: Some(HttpResponse {
                status: 200,
                content_type: "text/xml",
                body: "<a/>".into(),
            }),
        };
        assert_eq!(
            text(&o),
            r#"{"status":"completed","final_value":null,"last_node":"t","http_response":{"status":200,"content_type":"text/xml","body":"<a/>"}}"#
        );
    }

    #[test]
    fn failed_timed_out_and_paused_shapes() {
        let failed = Outcome::Failed {
            reason: "nope".into(),
            last_node: Some("f"),
        };
        assert_eq!(
            text(&failed),
            r#"{"status":"failed","reason":"nope","last_node":"f"}"#
        );
        let timed_out = Outcome::TimedOut {
            elapsed_ms: 7,
            last_node: None,
        };
        assert_eq!(
            text(&timed_out),
            r#"{"status":"timed_out","elapsed_ms":7,"last_node":null}"#
        );
        let paused = Outcome::Paused {
            run_id: "exec-1".into(),
            last_node: Some("p"),
            reason: None,
        };
        assert_eq!(
            text(&paused),
            r#"{"status":"paused","run_id":"exec-1","last_node":"p"}"#
        );
        let paused_with_reason = Outcome::Paused {
            run_id: "exec-1".into(),
            last_node: Some("p"),
            reason: Some("ok?"),
        };
        assert_eq!(
            text(&paused_with_reason),
            r#"{"status":"paused","run_id":"exec-1","last_node":"p","reason":"ok?"}"#
        );
    }

    #[test]
    fn the_pretty_outcome_is_serde_jsons_pretty_text_byte_for_byte() {
        let value = json!({
            "s": "a\"b\\c\n\u{1}é😀",
            "n": [0, -1, 1.5, 1e300, 0.1, u64::MAX, i64::MIN],
            "empty_a": [],
            "empty_o": {},
            "nested": [[], {}, [{"k": [null, true, false]}], {"x": {"y": []}}],
            "": null,
        });
        let reply = HttpResponse {
            status: 201,
            content_type: "application/json",
            body: "{\"a\":\n1}".into(),
        };
        let outcomes = [
            Outcome::Completed {
                final_value: value.clone(),
                last_node: Some("save"),
                http_response: None,
            },
            Outcome::Completed {
                final_value: json!([]),
                last_node: None,
                http_response: Some(reply),
            },
            Outcome::Completed {
                final_value: json!("plain"),
                last_node: Some("n"),
                http_response: None,
            },
            Outcome::Completed {
                final_value: json!({}),
                last_node: Some("n"),
                http_response: None,
            },
            Outcome::Completed {
                final_value: json!([value]),
                last_node: Some("n"),
                http_response: None,
            },
            Outcome::Failed {
                reason: "no\tway \"x\"".into(),
                last_node: Some("f"),
            },
            Outcome::TimedOut {
                elapsed_ms: 12_345,
                last_node: None,
            },
            Outcome::Paused {
                run_id: "exec-1".into(),
                last_node: Some("p"),
                reason: None,
            },
            Outcome::Paused {
                run_id: "exec-2".into(),
                last_node: None,
                reason: Some("ok?"),
            },
        ];
        for o in &outcomes {
            let expected = serde_json::to_string_pretty(o).unwrap_or_default();
            assert!(!expected.is_empty());
            assert_eq!(o.to_pretty_json(), expected);
        }
    }

    #[test]
    fn trace_entry_shape() {
        let e = TraceEntry {
            node_id: "c",
            kind: Kind::Condition,
            outcome: StepKind::Continue,
            branch: Some("true".into()),
            output: json!({"value": true}),
            elapsed_ms: 0,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap_or_default(),
            r#"{"node_id":"c","kind":"condition","outcome":"continue","branch":"true","output":{"value":true},"elapsed_ms":0}"#
        );
    }
}
