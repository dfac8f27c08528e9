//! Hand-wired workflows, written the way `agentd` codegen emits them (see
//! `hand_wired/hello.rs` and `hand_wired/router.rs`), run end to end on the
//! engine. These files are the reference the code generator imitates.

#[path = "hand_wired/hello.rs"]
mod hello;
#[path = "hand_wired/router.rs"]
mod router;

use std::sync::Arc;

use agentd_runtime::policy::FsPolicy;
use agentd_runtime::{
    Engine, Outcome, PolicyMode, RunOptions, RunReport, StepKind, Trigger, Workflow,
};
use serde_json::{Value, json};

fn run<W: Workflow>(workflow: &W, input: Value, options: RunOptions) -> RunReport {
    Engine::new(workflow, options).run("main", Trigger::manual(input))
}

fn completed(report: &RunReport) -> Option<(&Value, Option<&'static str>)> {
    match &report.outcome {
        Ok(Outcome::Completed {
            final_value,
            last_node,
            ..
        }) => Some((final_value, *last_node)),
        _ => None,
    }
}

fn error_text(report: &RunReport) -> String {
    report
        .outcome
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default()
}

// ----- hello ------------------------------------------------------------------

/// What `{{value}}` renders for the env var: its text, or `null` when unset.
fn expected_greeting() -> String {
    let who = std::env::var("AGENTD_NAME").unwrap_or_else(|_| "null".to_owned());
    format!("Hello, {who} - your agent is alive.\n")
}

#[test]
fn hello_writes_the_greeting_and_terminates() {
    let report = run(&hello::Hello, Value::Null, RunOptions::default());
    assert_eq!(completed(&report), Some((&Value::Null, Some("done"))));
    assert_eq!(
        report.trace.path(),
        ["who", "greeting", "path", "save", "done"]
    );
    assert_eq!(
        report.trace.entries[1].output,
        json!({"rendered": expected_greeting()})
    );
    assert_eq!(
        report.trace.entries[3].output,
        json!({
            "path": "/tmp/agentd-hello/greeting.txt",
            "bytes": expected_greeting().len(),
            "written": true,
        })
    );
    assert_eq!(report.trace.entries[4].outcome, StepKind::Terminate);
    assert_eq!(
        std::fs::read_to_string("/tmp/agentd-hello/greeting.txt").ok(),
        Some(expected_greeting())
    );
    assert_eq!(report.metrics.node_executions, 5);
}

#[test]
fn hello_dry_run_reads_env_but_writes_nothing() {
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let report = run(&hello::Hello, Value::Null, options);
    assert_eq!(completed(&report), Some((&Value::Null, Some("done"))));
    assert_eq!(report.trace.entries[0].output["key"], json!("AGENTD_NAME"));
    assert_eq!(
        report.trace.entries[3].output,
        json!({
            "path": "/tmp/agentd-hello/greeting.txt",
            "bytes": expected_greeting().len(),
            "dry_run": true,
        })
    );
}

#[test]
fn hello_policy_override_denies_the_write() {
    let mut policy = hello::POLICY_FOR_TESTS.clone();
    policy.fs = FsPolicy {
        write: vec!["/elsewhere/**".into()].into(),
        ..policy.fs
    };
    let options = RunOptions {
        dry_run: true,
        policy: PolicyMode::Override(Arc::new(policy)),
        ..RunOptions::default()
    };
    let report = run(&hello::Hello, Value::Null, options);
    assert_eq!(
        error_text(&report),
        "policy violation: write_file denied on /tmp/agentd-hello/greeting.txt: fs_write on \
         `/tmp/agentd-hello/greeting.txt` not covered by any allowlist pattern"
    );
    assert!(report.trace.entries.is_empty());
    assert_eq!(report.metrics.policy_denials, 1);
    assert_eq!(report.metrics.node_failures, 1);
    assert_eq!(report.metrics.node_executions, 4);
}

#[test]
fn hello_baked_policy_denies_other_env_keys() {
    // The baked policy allows AGENTD_NAME only; `PATH` is outside it.
    let policy = hello::POLICY_FOR_TESTS.clone();
    assert!(matches!(
        policy.check_env("PATH"),
        agentd_runtime::policy::Decision::Deny(_)
    ));
}

// ----- router -----------------------------------------------------------------

#[test]
fn condition_false_routes_to_fail() {
    let report = run(&router::Router, json!({"go": false}), RunOptions::default());
    assert_eq!(
        report.outcome.as_ref().ok(),
        Some(&Outcome::Failed {
            reason: "router stopped".into(),
            last_node: Some("stop"),
        })
    );
    assert_eq!(report.trace.path(), ["check", "stop"]);
    assert_eq!(report.trace.entries[0].branch.as_deref(), Some("false"));
}

#[test]
fn loop_edge_runs_its_budget_then_dead_ends() {
    let report = run(
        &router::Router,
        json!({"go": true, "mode": "loop"}),
        RunOptions::default(),
    );
    assert_eq!(
        report.trace.path(),
        ["check", "pick", "gen", "eval", "gen", "eval", "gen", "eval"]
    );
    assert_eq!(
        completed(&report),
        Some((&json!({"value": "tick"}), Some("eval")))
    );
}

#[test]
fn unrouted_switch_label_completes_at_the_switch() {
    let report = run(
        &router::Router,
        json!({"go": 1, "mode": "other"}),
        RunOptions::default(),
    );
    assert_eq!(
        completed(&report),
        Some((&json!({"value": "other"}), Some("pick")))
    );
}

#[test]
fn call_returns_the_child_result() {
    let report = run(
        &router::Router,
        json!({"go": true, "mode": "call", "kind": "invoice"}),
        RunOptions::default(),
    );
    assert_eq!(
        completed(&report),
        Some((
            &json!({"result": {"rendered": "label:invoice"}}),
            Some("label")
        ))
    );
    assert_eq!(report.trace.path(), ["check", "pick", "label"]);
    assert_eq!(
        report.metrics.node_executions, 4,
        "the child's node counts too"
    );
}

#[test]
fn call_hands_down_the_flattened_trigger_whose_kind_wins() {
    // `input_from = "trigger"` hands down {kind: "manual", ...}; the child's
    // own trigger keeps that kind. Without a `kind` input key it renders it.
    let report = run(
        &router::Router,
        json!({"go": true, "mode": "call"}),
        RunOptions::default(),
    );
    assert_eq!(
        completed(&report),
        Some((
            &json!({"result": {"rendered": "label:manual"}}),
            Some("label")
        ))
    );
}

#[test]
fn map_fans_out_and_selects_the_first_result() {
    let report = run(
        &router::Router,
        json!({"go": true, "mode": "map", "items": [{"kind": "a"}, {"kind": "b"}, 7]}),
        RunOptions::default(),
    );
    assert_eq!(
        completed(&report),
        Some((&json!({"value": "label:a", "found": true}), Some("first")))
    );
    assert_eq!(report.trace.path(), ["check", "pick", "each", "first"]);
    assert_eq!(
        report.trace.entries[2].output,
        json!({
            "ok": true,
            "results": [
                {"result": {"rendered": "label:a"}},
                {"result": {"rendered": "label:b"}},
                // A non-object item becomes {kind: "manual", input: 7}.
                {"result": {"rendered": "label:manual"}},
            ],
        })
    );
}

#[test]
fn map_over_max_items_is_a_hard_error() {
    let report = run(
        &router::Router,
        json!({"go": true, "mode": "map", "items": [1, 2, 3, 4]}),
        RunOptions::default(),
    );
    assert_eq!(
        error_text(&report),
        "workflow `router`: map `each`: `items_from` path `trigger.items` has 4 items, more \
         than max_items = 3"
    );
    assert!(report.trace.entries.is_empty());
}

#[test]
fn trace_entries_serialise_in_spec_shape() {
    let report = run(&router::Router, json!({"go": false}), RunOptions::default());
    let text = serde_json::to_string(&report.trace.entries[0]).unwrap_or_default();
    let elapsed = report.trace.entries[0].elapsed_ms;
    assert_eq!(
        text,
        format!(
            r#"{{"node_id":"check","kind":"condition","outcome":"continue","branch":"false","output":{{"value":false}},"elapsed_ms":{elapsed}}}"#
        )
    );
}
