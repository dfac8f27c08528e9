//! The logger end to end on one thread: a thread-scoped subscriber with
//! file sinks (never the process-wide one, so tests do not interfere).

use serde_json::json;
use tracing_core::{Level, LevelFilter};

use super::filter::Filter;
use super::spans::{NodeObs, RunObs};
use super::subscriber::Logger;
use super::testing::{Scratch, json_lines, lines, logger, with_logger};
use super::*;
use crate::context::Step;
use crate::error::Error;
use crate::graph::{Kind, NodeMeta, Slot};
use crate::outcome::Outcome;

static NODE: NodeMeta = NodeMeta {
    id: "save",
    kind: Kind::WriteFile,
    slot: Slot::Node(0),
    retry: None,
};

#[test]
fn info_audit_events_reach_the_sink_when_the_main_log_is_at_warn() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "warn", LogFormat::Text, &[]), || {
        assert!(audit_enabled(Level::INFO));
        audit(
            "workflow.started",
            json!({"execution_id": "exec-1", "dry_run": false}),
        );
        audit("policy.denied", json!({"node": "save"}));
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["level"], "INFO");
    assert_eq!(audit[0]["target"], "agentd::audit");
    assert_eq!(
        audit[0]["fields"],
        json!({"event": "workflow.started", "execution_id": "exec-1", "dry_run": false})
    );
    assert_eq!(audit[1]["level"], "WARN");
    let main = lines(&dir.path("main.log"));
    assert_eq!(
        main.len(),
        1,
        "only the warn event passes the main filter: {main:?}"
    );
    assert!(
        main[0].contains(" WARN agentd::audit: event=\"policy.denied\" node=\"save\""),
        "{}",
        main[0]
    );
}

#[test]
fn audit_fields_are_redacted_by_name_at_any_depth_and_reason_only_in_the_sink() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "info", LogFormat::Json, &["tenant"]), || {
        audit(
            "http.auth_denied",
            json!({
                "reason": "bad token",
                "Token": "t-123",
                "request": {"headers": {"Authorization": "Bearer x", "X-Id": "7"}},
                "TENANT": "acme",
            }),
        );
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    assert_eq!(
        audit[0]["fields"],
        json!({
            "event": "http.auth_denied",
            "reason": "<redacted>",
            "Token": "<redacted>",
            "request": {"headers": {"Authorization": "<redacted>", "X-Id": "7"}},
            "TENANT": "<redacted>",
        })
    );
    let main = json_lines(&dir.path("main.log"));
    assert_eq!(
        main[0]["fields"]["reason"], "bad token",
        "the main log keeps reasons"
    );
    assert_eq!(main[0]["fields"]["Token"], "<redacted>");
    assert_eq!(
        main[0]["fields"]["request"]["headers"]["Authorization"],
        "<redacted>"
    );
}

#[test]
fn registered_secret_values_never_reach_a_line() {
    let dir = Scratch::new();
    register_secret("canary-obs-5f2e9");
    with_logger(logger(&dir, "info", LogFormat::Text, &[]), || {
        audit(
            "workflow.failed",
            json!({"last_node": "x", "detail": "sent canary-obs-5f2e9 upstream"}),
        );
        tracing::error!(target: "agentd::engine", event = "node.failed", reason = "echo canary-obs-5f2e9");
    });
    let all = format!(
        "{}{}",
        std::fs::read_to_string(dir.path("main.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.path("audit/audit.jsonl")).unwrap_or_default()
    );
    assert!(all.contains("<redacted>"), "{all}");
    assert!(!all.contains("canary-obs-5f2e9"), "{all}");
}

#[test]
fn node_and_run_spans_give_events_their_context_and_record_the_outcome() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "debug", LogFormat::Json, &[]), || {
        let run = RunObs::start("exec-9", "hello", "main", true, std::time::Instant::now());
        let node = NodeObs::start(&NODE);
        let result: Result<Step, Error> = Err(Error::Policy("write_file denied on /etc/x".into()));
        let from = std::time::Instant::now();
        let to = from + std::time::Duration::from_millis(4);
        node.finish("exec-9", &NODE, &result, (from, to));
        let failed: Result<Outcome, Error> =
            Err(Error::Policy("write_file denied on /etc/x".into()));
        run.finish("exec-9", &failed, None);
    });
    let main = json_lines(&dir.path("main.log"));
    let failed = main
        .iter()
        .find(|l| l["fields"]["event"] == "node.failed")
        .unwrap_or_else(|| panic!("no node.failed in {main:?}"));
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["target"], "agentd::engine");
    assert_eq!(failed["fields"]["latency_ms"], 4);
    assert_eq!(
        failed["spans"],
        json!([
            {"execution_id": "exec-9", "workflow_id": "hello", "start_node": "main", "dry_run": true, "name": "workflow.run"},
            {"node_id": "save", "kind": "write_file", "outcome": "error", "latency_ms": 4, "name": "node.execute"},
        ])
    );
    assert_eq!(failed["span"]["name"], "node.execute");

    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let events: Vec<&str> = audit
        .iter()
        .filter_map(|l| l["fields"]["event"].as_str())
        .collect();
    assert_eq!(
        events,
        ["workflow.started", "policy.denied", "workflow.errored"]
    );
    assert_eq!(
        audit[1]["fields"],
        json!({"event": "policy.denied", "execution_id": "exec-9", "node": "save",
               "kind": "write_file", "reason": "<redacted>", "latency_ms": 4})
    );
}

#[test]
fn a_completed_visit_reports_its_latency_and_a_logged_run_is_not_quiet() {
    let dir = Scratch::new();
    let mut quiet = None;
    with_logger(logger(&dir, "debug", LogFormat::Json, &[]), || {
        let run = RunObs::start("exec-7", "hello", "main", false, std::time::Instant::now());
        quiet = Some(run.quiet());
        let node = NodeObs::start(&NODE);
        let from = std::time::Instant::now();
        let to = from + std::time::Duration::from_millis(7);
        node.finish("exec-7", &NODE, &Ok(Step::value(json!(1))), (from, to));
        run.finish(
            "exec-7",
            &Ok(Outcome::Completed {
                final_value: json!(1),
                last_node: Some("save"),
                http_response: None,
            }),
            None,
        );
    });
    assert_eq!(
        quiet,
        Some(false),
        "the span and workflow.started were written"
    );
    let main = json_lines(&dir.path("main.log"));
    let completed = main
        .iter()
        .find(|l| l["fields"]["event"] == "node.completed")
        .unwrap_or_else(|| panic!("no node.completed in {main:?}"));
    assert_eq!(completed["fields"]["latency_ms"], 7);
    assert_eq!(completed["span"]["latency_ms"], 7);
    assert_eq!(completed["span"]["outcome"], "continue");
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let done = audit
        .iter()
        .find(|l| l["fields"]["event"] == "workflow.completed")
        .unwrap_or_else(|| panic!("no workflow.completed in {audit:?}"));
    assert!(done["fields"]["elapsed_ms"].is_u64(), "{done}");

    // Nothing wants the span or the audit event: the run is quiet.
    let silent = Logger {
        main: None,
        audit: None,
        otel: None,
    };
    with_logger(silent, || {
        let run = RunObs::start("exec-8", "hello", "main", false, std::time::Instant::now());
        quiet = Some(run.quiet());
        run.finish("exec-8", &Err(Error::Config("x".into())), None);
    });
    assert_eq!(quiet, Some(true));
}

#[test]
fn a_timed_out_run_under_a_run_time_budget_is_a_budget_event() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "off", LogFormat::Text, &[]), || {
        let run = RunObs::start("exec-2", "slow", "main", false, std::time::Instant::now());
        let timed_out: Result<Outcome, Error> = Ok(Outcome::TimedOut {
            elapsed_ms: 1000,
            last_node: Some("wait"),
        });
        run.finish("exec-2", &timed_out, Some(1));
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let events: Vec<&str> = audit
        .iter()
        .filter_map(|l| l["fields"]["event"].as_str())
        .collect();
    assert_eq!(
        events,
        [
            "workflow.started",
            "workflow.timed_out",
            "budget.run_time_exceeded"
        ]
    );
    assert_eq!(audit[2]["fields"]["max_run_time_secs"], 1);
    assert!(
        lines(&dir.path("main.log")).is_empty(),
        "level `off` writes nothing"
    );
}

#[test]
fn a_disabled_main_log_still_feeds_the_audit_sink() {
    let dir = Scratch::new();
    let mut l = logger(&dir, "trace", LogFormat::Text, &[]);
    l.main = None;
    with_logger(l, || {
        tracing::error!(target: "agentd::engine", event = "node.failed");
        audit("reload.completed", json!({}));
    });
    assert_eq!(json_lines(&dir.path("audit/audit.jsonl")).len(), 1);
    assert!(lines(&dir.path("main.log")).is_empty());
}

#[test]
fn tracing_events_on_the_audit_target_reach_the_sink_too() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "error", LogFormat::Text, &[]), || {
        tracing::info!(target: "agentd::audit", event = "cron.fire", tick = 3_u64, secret = "s");
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    assert_eq!(
        audit[0]["fields"],
        json!({"event": "cron.fire", "tick": 3, "secret": "<redacted>"})
    );
}

#[test]
fn audit_levels_follow_the_event_name() {
    for warn in [
        "policy.denied",
        "budget.fs_write_denied",
        "budget.apply_failed",
        "budget.llm_tokens_exceeded",
        "node.retry",
        "http.rate_limited",
        "workflow.timed_out",
        "cron.error",
    ] {
        assert_eq!(audit_level(warn), Level::WARN, "{warn}");
    }
    for info in [
        "workflow.started",
        "budget.applied",
        "reload.completed",
        "signing.verified",
    ] {
        assert_eq!(audit_level(info), Level::INFO, "{info}");
    }
}

#[test]
fn the_filter_hint_covers_audit_events() {
    let dir = Scratch::new();
    let l = logger(&dir, "error", LogFormat::Text, &[]);
    assert!(l.wants(AUDIT_TARGET, &Level::INFO));
    assert!(!l.wants("agentd::engine", &Level::INFO));
    assert_eq!(
        Filter::at(LevelFilter::ERROR).max_level(),
        LevelFilter::ERROR
    );
}

/// Each budget limit hit is an audit event in the sink (whatever the main
/// level), carrying what was asked and what was left.
#[test]
fn budget_hits_are_audit_events_fs_write() {
    use crate::context::testing::{TestRun, path};

    let dir = Scratch::new();
    let target = dir.path("out/over.txt");
    let write: &'static crate::nodes::fs::WriteFile =
        Box::leak(Box::new(crate::nodes::fs::WriteFile {
            path_from: path("trigger.path"),
            content_from: path("trigger.content"),
        }));
    let counter: &'static crate::budget::FsWriteBudget =
        Box::leak(Box::new(crate::budget::FsWriteBudget::new()));
    with_logger(logger(&dir, "off", LogFormat::Text, &[]), || {
        let mut run = TestRun::new(json!({"path": target, "content": "0123456789ab"}));
        run.shared.fs_write = crate::budget::FsWriteLimit {
            cap: Some(10),
            counter,
        };
        assert!(crate::nodes::fs::write_file(&run.cx(), write).is_err());
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let fs = audit
        .iter()
        .find(|l| l["fields"]["event"] == "budget.fs_write_denied")
        .unwrap_or_else(|| panic!("no budget.fs_write_denied in {audit:#?}"));
    assert_eq!(fs["level"], "WARN");
    assert_eq!(
        (&fs["fields"]["bytes"], &fs["fields"]["cap_bytes"]),
        (&json!(12), &json!(10))
    );
    assert!(!target.exists(), "the refused write left nothing");
}

#[test]
fn the_installed_audit_bits_answer_as_the_logger_does() {
    use super::subscriber::{LEVELS, audit_bits, level_bit};
    let dir = Scratch::new();
    let with_audit = logger(&dir, "warn", LogFormat::Text, &[]);
    let mut main_only = logger(&dir, "info", LogFormat::Text, &[]);
    main_only.audit = None;
    let mut main_error = logger(&dir, "error", LogFormat::Text, &[]);
    main_error.audit = None;
    let mut silent = logger(&dir, "off", LogFormat::Text, &[]);
    silent.audit = None;
    silent.main = None;
    let mut seen = std::collections::BTreeSet::new();
    for logger in [&with_audit, &main_only, &main_error, &silent] {
        let bits = audit_bits(logger);
        seen.insert(bits);
        for level in &LEVELS {
            assert_eq!(
                bits & level_bit(level) != 0,
                logger.wants(AUDIT_TARGET, level),
                "{level}"
            );
        }
    }
    // The four loggers answer differently, so the bits cannot be a constant.
    assert_eq!(seen.len(), 4, "{seen:?}");
}
