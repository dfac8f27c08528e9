//! The engine's spans and events (docs/operations.md "Logging and audit"), kept here so
//! the walk only marks where a run or a node starts and ends.
//!
//! `workflow.run{execution_id, workflow_id, start_node, dry_run}` wraps a
//! top-level run; `node.execute{node_id, kind}` wraps one node visit and
//! records `outcome` and `latency_ms` when it ends. Events:
//!
//! | event | level | target |
//! |---|---|---|
//! | `workflow.started`, `workflow.completed{last_node, elapsed_ms}` | info | audit |
//! | `workflow.failed{last_node, reason, elapsed_ms}`, `workflow.errored{reason, elapsed_ms}` | warn | audit |
//! | `workflow.timed_out{elapsed_ms, last_node}` | warn | audit |
//! | `budget.run_time_exceeded{max_run_time_secs, elapsed_ms}` | warn | audit |
//! | `node.completed{latency_ms}`, `node.branch{label}` | debug | `agentd::engine` |
//! | `node.failed{reason, latency_ms}` | error | `agentd::engine` |
//! | `node.retry{node_id, attempt, max_attempts, backoff_ms, jitter, wait_ms, reason}` | warn | audit |
//! | `policy.denied{node, kind, reason, latency_ms}` | warn | audit |
//!
//! Audit events carry `execution_id` (the audit sink has no span context).
//! Fields are only built when some sink wants the event. `workflow.timed_out`
//! and `workflow.errored` are audit events here (dialect 1 logged the first
//! on the default target and the second not at all). This module never
//! changes what a run does.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::field::Empty;
use tracing::span::EnteredSpan;
use tracing_core::Level;

use super::{audit_enabled, audit_pairs};
use crate::context::Step;
use crate::error::Error;
use crate::graph::{Kind, NodeMeta, Retry};
use crate::outcome::Outcome;

/// A top-level run in progress.
pub(crate) struct RunObs {
    span: EnteredSpan,
    started: Instant,
    /// `workflow.started` was written.
    audited: bool,
}

impl RunObs {
    /// Open `workflow.run` and emit `workflow.started`.
    // Out of line, as when the engine was generic and compiled in each
    // generated crate: inlined into the walk and the run, these reporting
    // paths made a static hello larger (docs/performance.md, "Build times").
    #[inline(never)]
    /// `started` is when the run began (the engine's clock reading, not a
    /// second one).
    pub(crate) fn start(
        execution_id: &str,
        workflow: &'static str,
        start: &str,
        dry_run: bool,
        started: Instant,
    ) -> Self {
        let span = tracing::info_span!(
            target: "agentd::engine",
            "workflow.run",
            execution_id,
            workflow_id = workflow,
            start_node = start,
            dry_run
        )
        .entered();
        let audited = audit_enabled(Level::INFO);
        if audited {
            audit_pairs(
                Level::INFO,
                "workflow.started",
                vec![
                    ("execution_id", execution_id.into()),
                    ("workflow", workflow.into()),
                    ("start_node", start.into()),
                    ("dry_run", dry_run.into()),
                ],
            );
        }
        Self {
            span,
            started,
            audited,
        }
    }

    /// Neither the span nor `workflow.started` went to a subscriber or sink:
    /// the run's start reading still stands for the walk's start.
    pub(crate) fn quiet(&self) -> bool {
        !self.audited && self.span.is_disabled()
    }

    /// Emit the run's ending event and close the span. `run_time_cap` is
    /// `[budget].max_run_time_secs` when it set the deadline.
    // Out of line, as when the engine was generic and compiled in each
    // generated crate: inlined into the walk and the run, these reporting
    // paths made a static hello larger (docs/performance.md, "Build times").
    #[inline(never)]
    pub(crate) fn finish(
        self,
        execution_id: &str,
        outcome: &Result<Outcome, Error>,
        run_time_cap: Option<u64>,
    ) {
        // Read the clock only for an event that is written.
        let elapsed_ms = || millis(self.started.elapsed());
        let (level, event, last_node, reason) = match outcome {
            Ok(Outcome::Completed { last_node, .. }) => {
                (Level::INFO, "workflow.completed", *last_node, None)
            }
            Ok(Outcome::Paused { last_node, .. }) => {
                (Level::INFO, "workflow.paused", *last_node, None)
            }
            Ok(Outcome::Failed { last_node, reason }) => (
                Level::WARN,
                "workflow.failed",
                *last_node,
                Some(reason.to_string()),
            ),
            Ok(Outcome::TimedOut { last_node, .. }) => {
                (Level::WARN, "workflow.timed_out", *last_node, None)
            }
            Err(e) => (Level::WARN, "workflow.errored", None, Some(e.to_string())),
        };
        let elapsed = std::cell::OnceCell::new();
        if audit_enabled(level) {
            let mut fields = vec![("execution_id", Value::from(execution_id))];
            if outcome.is_ok() {
                fields.push(("last_node", last_node.into()));
            }
            if let Some(reason) = reason {
                fields.push(("reason", reason.into()));
            }
            fields.push(("elapsed_ms", Value::from(*elapsed.get_or_init(elapsed_ms))));
            audit_pairs(level, event, fields);
        }
        if let (Ok(Outcome::TimedOut { .. }), Some(cap)) = (outcome, run_time_cap)
            && audit_enabled(Level::WARN)
        {
            audit_pairs(
                Level::WARN,
                "budget.run_time_exceeded",
                vec![
                    ("execution_id", execution_id.into()),
                    ("max_run_time_secs", cap.into()),
                    ("elapsed_ms", Value::from(*elapsed.get_or_init(elapsed_ms))),
                ],
            );
        }
        drop(self.span);
    }
}

/// `http.request{method, path, trace_id, parent_id, trace_flags, sampled}`
/// (serve mode), entered on the thread that runs the request's workflow, so
/// it wraps `workflow.run`. The trace fields are recorded only when the
/// request carried a valid `traceparent`; `parent_id` is the caller's span.
#[inline]
pub fn http_request(
    method: &str,
    path: &str,
    inbound: Option<&crate::traceparent::TraceParent>,
) -> EnteredSpan {
    let span = tracing::info_span!(
        target: "agentd::serve",
        "http.request",
        method,
        path,
        trace_id = Empty,
        parent_id = Empty,
        trace_flags = Empty,
        sampled = Empty
    );
    if let Some(tp) = inbound {
        span.record("trace_id", tp.trace_id.as_str());
        span.record("parent_id", tp.parent_id.as_str());
        span.record("trace_flags", tp.flags.as_str());
        span.record("sampled", tp.sampled());
    }
    span.entered()
}

/// One node visit in progress.
pub(crate) struct NodeObs {
    span: EnteredSpan,
}

impl NodeObs {
    /// Open `node.execute`.
    pub(crate) fn start(node: &NodeMeta) -> Self {
        let span = tracing::info_span!(
            target: "agentd::engine",
            "node.execute",
            node_id = node.id,
            kind = node.kind.as_str(),
            outcome = Empty,
            latency_ms = Empty
        )
        .entered();
        Self { span }
    }

    /// Record how the visit ended and emit its events. A policy denial is
    /// audited here, where the engine counts it, once per failed node: a
    /// `call` node only passes on its child's denial, already audited.
    /// `(from, to)` are the visit's start and end readings; its `latency_ms`
    /// is worked out only for a span, event or audit that is written.
    // Out of line, as when the engine was generic and compiled in each
    // generated crate: inlined into the walk and the run, these reporting
    // paths made a static hello larger (docs/performance.md, "Build times").
    #[inline(never)]
    pub(crate) fn finish(
        self,
        execution_id: &str,
        node: &NodeMeta,
        result: &Result<Step, Error>,
        (from, to): (Instant, Instant),
    ) {
        let latency_ms = || millis(to.duration_since(from));
        // A disabled span records nothing, but would look its fields up.
        if !self.span.is_disabled() {
            let outcome = match result {
                Ok(Step::Continue { .. }) => "continue",
                Ok(Step::Terminate) => "terminate",
                Ok(Step::Fail { .. }) => "fail",
                Err(_) => "error",
            };
            self.span.record("outcome", outcome);
            self.span.record("latency_ms", latency_ms());
        }
        match result {
            Ok(step) => {
                // One callsite for both events: `label` is recorded only when set.
                let label = match step {
                    Step::Continue {
                        branch: Some(label),
                        ..
                    } => Some(&**label),
                    _ => None,
                };
                let event = if label.is_some() {
                    "node.branch"
                } else {
                    "node.completed"
                };
                // The field values are evaluated only when the event is enabled.
                tracing::debug!(target: "agentd::engine", event, label, latency_ms = latency_ms());
            }
            Err(err) => {
                let latency_ms = latency_ms();
                tracing::error!(target: "agentd::engine", event = "node.failed", reason = %err, latency_ms);
                if matches!(err, Error::Policy(_))
                    && node.kind != Kind::Call
                    && audit_enabled(Level::WARN)
                {
                    audit_pairs(
                        Level::WARN,
                        "policy.denied",
                        vec![
                            ("execution_id", execution_id.into()),
                            ("node", node.id.into()),
                            ("kind", node.kind.as_str().into()),
                            ("reason", err.to_string().into()),
                            ("latency_ms", latency_ms.into()),
                        ],
                    );
                }
            }
        }
    }
}

/// `node.retry`: attempt `attempt` of `node` failed with `err`; the next
/// one follows after `wait`.
#[inline(never)] // out of line, as `NodeObs::finish`
pub(crate) fn node_retry(
    execution_id: &str,
    node: &NodeMeta,
    attempt: u32,
    retry: &Retry,
    wait: Duration,
    err: &Error,
) {
    if audit_enabled(Level::WARN) {
        audit_pairs(
            Level::WARN,
            "node.retry",
            vec![
                ("execution_id", execution_id.into()),
                ("node_id", node.id.into()),
                ("attempt", attempt.into()),
                ("max_attempts", retry.max_attempts.max(1).into()),
                ("backoff_ms", retry.backoff_ms.into()),
                ("jitter", f64::from(retry.jitter).into()),
                ("wait_ms", millis(wait).into()),
                ("reason", err.to_string().into()),
            ],
        );
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
