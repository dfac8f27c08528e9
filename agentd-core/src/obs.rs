//! Observability: the log subscriber, a span per run and per node, and the
//! audit sink (docs/dialect.md §12.4; docs/operations.md "Logging and audit").
//!
//! Owns how the runtime reports what it did:
//!
//! - **the main log** — `--log-level` / `AGENTD_LOG` / `[logging].level`
//!   (a directive such as `warn,agentd::engine=debug`, module [`filter`]),
//!   `--log-format text|json`, `--log-target stderr|stdout|file:PATH`,
//!   `--quiet`, with the dialect's precedence per field: command line, then
//!   environment, then `[logging]`, then `warn` / `text` / `stderr` /
//!   enabled (module `config`); time-based rotation of file targets
//!   (module `sink`);
//! - **spans and events** — `workflow.run{execution_id, workflow_id,
//!   start_node, dry_run}` and `node.execute{node_id, kind, outcome,
//!   latency_ms}`, and the events of docs/operations.md "Logging and audit" at their levels (module `spans`,
//!   called by the engine);
//! - **audit events** — [`audit`]: target `agentd::audit`, written to the
//!   `[logging.audit]` JSONL sink **whatever the main log level is** (the
//!   dialect filtered them first, so info-level audit events were lost at
//!   the default level) and to the main log when its filter lets them
//!   through;
//! - **redaction** — secret-named fields (at any depth) become
//!   `"<redacted>"` in every sink, `reason` too in the audit sink unless
//!   `include_reason`, and registered secret values ([`register_secret`])
//!   are scrubbed from every line (module `redact`).
//!
//! The subscriber is our own (module `subscriber`), not tracing-subscriber:
//! the formats are simple to write, and tracing-subscriber's env filter
//! would pull `regex` into every binary. Divergence from dialect 1: `--quiet`
//! and `enabled = false` silence the main log but not the audit sink, which
//! has no command-line or environment override at all.
//!
//! This module must never decide anything about a run; it only reports. A
//! failing log write never fails a run.

mod config;
pub mod export;
pub mod filter;
pub mod format;
pub mod redact;
pub mod sink;
pub mod spans;
mod subscriber;

use std::borrow::Cow;

use serde_json::Value;
use tracing_core::Level;

pub use crate::workflow::logging::{
    AuditConfig, DEFAULT_AUDIT_TARGET, LogConfig, LogFormat, OtelConfig, Rotation,
};
pub use config::{Given, Inputs, LogArgs, LogError, Settings, install, resolve};
pub use redact::register_secret;
pub use sink::file_sinks;

/// Send the spans still queued for OTLP export and wait for them (bounded);
/// a no-op without `[logging.otel]`. The binary calls it before it exits.
pub fn flush() {
    if let Some(exporter) = subscriber::current().and_then(|l| l.otel.clone()) {
        exporter.flush();
    }
}

/// The target of audit events.
pub const AUDIT_TARGET: &str = "agentd::audit";

/// Emit the audit event `event` (docs/operations.md "Logging and audit") with `fields`
/// (a JSON object; anything else is recorded under `value`), at the level
/// [`audit_level`] gives it.
pub fn audit(event: &'static str, fields: Value) {
    audit_at(audit_level(event), event, fields);
}

/// [`audit`] at an explicit level.
pub fn audit_at(level: Level, event: &'static str, fields: Value) {
    let mut record: format::Fields = Vec::with_capacity(8);
    match fields {
        Value::Object(map) => {
            for (k, v) in map {
                record.push((Cow::Owned(k), format::Val::Json(v)));
            }
        }
        Value::Null => {}
        other => record.push((Cow::Borrowed("value"), format::Val::Json(other))),
    }
    emit_audit(level, event, record);
}

/// [`audit_at`] with the fields as name/value pairs, kept in this order.
/// The runtime's own events use it: a list of pairs is less code than a
/// `json!` map at every call site.
pub fn audit_pairs(level: Level, event: &'static str, pairs: Vec<(&'static str, Value)>) {
    // `event` first, then the pairs: built in place rather than inserted at
    // the front afterwards.
    let mut record = Vec::with_capacity(pairs.len() + 1);
    record.push(event_field(event));
    record.extend(
        pairs
            .into_iter()
            .map(|(k, v)| (Cow::Borrowed(k), format::Val::Json(v))),
    );
    emit_record(level, event, record);
}

/// The `event` field every audit record starts with.
fn event_field(event: &'static str) -> format::Field {
    (
        Cow::Borrowed("event"),
        format::Val::Json(Value::String(event.to_owned())),
    )
}

fn emit_audit(level: Level, event: &'static str, mut record: format::Fields) {
    record.insert(0, event_field(event));
    emit_record(level, event, record);
}

/// `record` (its `event` field first) to the audit sinks.
fn emit_record(level: Level, event: &'static str, record: format::Fields) {
    if let Some(logger) = subscriber::active() {
        logger.emit(&level, AUDIT_TARGET, record, subscriber::stack_top());
        return;
    }
    // No agentd logger (a program embedding the runtime): hand the event to
    // whatever tracing subscriber it installed, at info (a subscriber filters
    // by callsite, so one level keeps this to one callsite) with the audit
    // level as a field and the fields as one compact JSON object.
    let fields = format::object_text(&record[1..]);
    tracing::info!(
        target: "agentd::audit",
        event,
        level = format::level_str(&level),
        fields = %fields
    );
}

/// Whether an audit event at `level` would be written anywhere: callers on
/// hot paths check it before building the fields.
#[must_use]
pub fn audit_enabled(level: Level) -> bool {
    if let Some(logger) = subscriber::scoped() {
        return logger.wants(AUDIT_TARGET, &level);
    }
    match subscriber::installed_wants_audit(&level) {
        Some(wants) => wants,
        None => {
            tracing_core::dispatcher::has_been_set()
                && tracing_core::LevelFilter::current() >= level
        }
    }
}

/// The level of an audit event, from its name: `warn` for denials,
/// failures, errors, exceeded limits, rejections, rate limits, timeouts,
/// dropped or truncated data and retries; `info` for everything else
/// (starts, completions, applied settings, reloads).
#[must_use]
pub fn audit_level(event: &str) -> Level {
    let last = event.rsplit('.').next().unwrap_or(event);
    const WARN: [&str; 10] = [
        "denied",
        "failed",
        "error",
        "exceeded",
        "rejected",
        "rate_limited",
        "timed_out",
        "dropped",
        "truncated",
        "retry",
    ];
    if WARN.iter().any(|w| last.contains(w)) {
        Level::WARN
    } else {
        Level::INFO
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
