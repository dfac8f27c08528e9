//! Each golden program, run once on the engine: the snapshots are not only
//! compiled but wired correctly (start names, edges, baked configs, policy).
//!
//! Side-effecting workflows run with `dry_run`, so these tests touch no files.

use agentd_golden::{
    approval_gate, data_pipeline, hello, incident_agent, llm_classifier, map_child, map_fanout,
    order_api, status_report, webhook_receiver,
};
use agentd_runtime::{Engine, RunOptions, Trigger, WithIntel as _, Workflow};
use serde_json::{Value, json};

/// The run's outcome as the CLI would print it, or `{"error": ...}` for a hard error.
fn run<W: Workflow>(program: &W, start: &str, input: Value, options: RunOptions) -> Value {
    let report = Engine::new(program, options).run(start, Trigger::manual(input));
    match report.outcome {
        Ok(outcome) => serde_json::to_value(&outcome).expect("an outcome serialises"),
        Err(error) => json!({ "error": error.to_string() }),
    }
}

fn dry_run() -> RunOptions {
    RunOptions {
        dry_run: true,
        ..RunOptions::default()
    }
}

#[test]
fn data_pipeline_renders_a_receipt_for_a_paid_order() {
    let raw = r#"{"order":{"id":4242,"paid":true,"total":19.99,"currency":"EUR"}}"#;
    let outcome = run(
        &data_pipeline::Program,
        "main",
        json!({ "raw_json": raw }),
        RunOptions::default(),
    );
    assert_eq!(
        outcome,
        json!({
            "status": "completed",
            "final_value": {"rendered": "order 4242: 19.99 EUR, paid"},
            "last_node": "receipt",
        })
    );
}

#[test]
fn data_pipeline_fails_an_unpaid_order() {
    let raw = r#"{"order":{"id":1,"paid":false,"total":1,"currency":"EUR"}}"#;
    let outcome = run(
        &data_pipeline::Program,
        "main",
        json!({ "raw_json": raw }),
        RunOptions::default(),
    );
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["last_node"], "unpaid");
}

#[test]
fn map_child_renders_one_element() {
    let outcome = run(
        &map_child::Program,
        "main",
        json!({"title": "Fix login", "owner": "ana"}),
        RunOptions::default(),
    );
    assert_eq!(
        outcome,
        json!({
            "status": "completed",
            "final_value": {"rendered": "Fix login (owner: ana)"},
            "last_node": "render",
        })
    );
}

#[test]
fn map_fanout_returns_child_results_in_input_order() {
    let input = json!({"items": [
        {"title": "Fix login", "owner": "ana"},
        {"title": "Ship 1.2", "owner": "bo"},
    ]});
    let outcome = run(&map_fanout::Program, "main", input, RunOptions::default());
    assert_eq!(
        outcome,
        json!({
            "status": "completed",
            "final_value": {
                "found": true,
                "value": [
                    {"result": {"rendered": "Fix login (owner: ana)"}},
                    {"result": {"rendered": "Ship 1.2 (owner: bo)"}},
                ],
            },
            "last_node": "results",
        })
    );
}

#[test]
fn map_fanout_rejects_more_items_than_max_items() {
    let items: Vec<Value> = (0..26).map(|i| json!({"title": i, "owner": "x"})).collect();
    let outcome = run(
        &map_fanout::Program,
        "main",
        json!({ "items": items }),
        RunOptions::default(),
    );
    let error = outcome["error"]
        .as_str()
        .expect("over max_items is a hard error");
    assert!(error.contains("max_items"), "{error}");
}

#[test]
fn hello_dry_run_ends_at_save_without_writing() {
    let outcome = run(&hello::Program, "main", Value::Null, dry_run());
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(outcome["last_node"], "save");
}

#[test]
fn webhook_receiver_dry_run_ends_at_save() {
    let body = json!({"action": "opened", "number": 7, "repository": {"full_name": "acme/api"}});
    let outcome = run(&webhook_receiver::Program, "on_hook", body, dry_run());
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(outcome["last_node"], "save");
}

#[test]
fn approval_gate_without_a_state_dir_aborts_at_the_pause() {
    let outcome = run(
        &approval_gate::Program,
        "main",
        json!({"service": "api", "env": "prod"}),
        dry_run(),
    );
    let error = outcome["error"]
        .as_str()
        .expect("a pause with nowhere to checkpoint is a hard error");
    assert!(
        error.contains("`approve`") && error.contains("state directory"),
        "{error}"
    );
}

#[test]
fn approval_gate_pauses_with_its_baked_reason_and_resumes_to_apply() {
    let path = std::env::temp_dir().join(format!("agentd-golden-approval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let state = agentd_runtime::checkpoint::StateDir::create(&path).expect("a state dir");
    let options = RunOptions {
        checkpoints: Some(std::sync::Arc::new(state)),
        ..dry_run()
    };
    let paused = run(
        &approval_gate::Program,
        "main",
        json!({"service": "api", "env": "prod"}),
        options.clone(),
    );
    assert_eq!(paused["status"], "paused", "{paused}");
    assert_eq!(
        paused["reason"],
        "Review the proposal, then resume with --resume RUN_ID to apply it."
    );
    let run_id = paused["run_id"].as_str().expect("a run id");
    let report = Engine::new(&approval_gate::Program, options)
        .resume(run_id, agentd_runtime::checkpoint::Approval::Approve)
        .expect("the checkpoint resumes");
    let outcome = serde_json::to_value(report.outcome.expect("an outcome")).expect("serialises");
    assert_eq!(
        outcome,
        json!({
            "status": "completed",
            "final_value": {
                "path": "/tmp/agentd-approvals/api-prod.plan",
                "bytes": 65,
                "dry_run": true,
            },
            "last_node": "apply",
        })
    );
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn llm_classifier_with_llm_stubbed_ends_at_the_switch() {
    // This runtime has no LLM capability yet: a stubbed `classify` answers
    // `{"stub": "llm_infer"}`, `classify.parsed` is missing, no switch case
    // matches and the run ends at `route`.
    let options = RunOptions {
        stub_unavailable: true,
        ..dry_run()
    };
    let outcome = run(
        &llm_classifier::Program,
        "main",
        json!({"body": "INVOICE #2024-117"}),
        options,
    );
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(outcome["last_node"], "route");
}

#[test]
fn status_report_gates_the_url_then_dry_runs_the_fetch() {
    // Outside `[policy.http]`: refused before any connection, even in dry-run.
    let outcome = run(
        &status_report::Program,
        "main",
        json!({"url": "http://example.com/status"}),
        dry_run(),
    );
    assert_eq!(
        outcome["error"],
        "policy violation: http_request URL `http://example.com/status` not covered by any allowlist pattern"
    );
    // Allowed: the fetch answers its dry-run placeholder (no body), so the
    // parse of `fetch.body` is the first hard error.
    let outcome = run(
        &status_report::Program,
        "main",
        json!({"url": "http://127.0.0.1:9/status"}),
        dry_run(),
    );
    assert_eq!(
        outcome["error"],
        "tool `parse_json` failed: path `fetch.body` is not set in the execution context"
    );
}

/// `incident_agent` with a scripted `claude` that is never called.
fn incident_engine(options: RunOptions) -> Engine<'static> {
    use agentd_runtime::intel::{Backends, Intel, TokenBudget, mock::MockBackend};
    let mut backends = Backends::new();
    backends.insert(
        "claude",
        std::sync::Arc::new(MockBackend::from_contents(Vec::<String>::new())),
    );
    Engine::new(&incident_agent::Program, options)
        .with_intel(Intel::new(backends, TokenBudget::new(None)))
}

#[test]
fn incident_agent_dry_run_walks_every_mcp_and_loop_step_without_a_server() {
    // The baked server's program does not exist: a dry run never starts it.
    let report =
        incident_engine(dry_run()).run("main", Trigger::manual(json!({"service": "billing"})));
    let outcome = serde_json::to_value(report.outcome.expect("completes")).expect("serialises");
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "done");
    assert_eq!(
        report.trace.path(),
        ["runbook_uri", "runbook", "investigate", "note", "done"]
    );
    assert_eq!(
        report.trace.entries[1].output,
        json!({"uri": "runbook://billing", "server": "pager", "dry_run": true})
    );
    assert_eq!(
        report.trace.entries[2].output,
        json!({"result": null, "steps": 0, "dry_run": true})
    );
    assert_eq!(
        report.trace.entries[3].output,
        json!({"tool": "incident_note", "server": "pager", "dry_run": true})
    );
}

#[test]
fn incident_agent_reports_a_server_that_cannot_start() {
    // The server's `env` secret resolves through [[secrets]] before the spawn;
    // the error names the secret and its variable, never a value.
    if std::env::var_os("PAGER_TOKEN").is_some() {
        return;
    }
    let report = incident_engine(RunOptions::default())
        .run("main", Trigger::manual(json!({"service": "billing"})));
    let error = report
        .outcome
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        error,
        "mcp: failed to start MCP server `pager`: env `PAGER_TOKEN`: secret `pager_token`: \
         environment variable `PAGER_TOKEN` is not set"
    );
}

#[test]
fn order_api_bakes_its_routes_and_answers_an_order_with_201() {
    let routes = order_api::Program::SERVE.routes;
    let summary: Vec<(&str, &str, &str, bool)> = routes
        .iter()
        .map(|r| (r.method, r.path, r.start, r.inline))
        .collect();
    // Pure routes run on the reactor; the one with a command goes to the pool.
    assert_eq!(
        summary,
        [
            ("POST", "/echo", "echo", true),
            ("POST", "/orders", "order", true),
            ("GET", "/status", "status", true),
            ("POST", "/reports", "report", false),
        ]
    );
    assert!(routes[1].idempotency.is_some() && routes[2].rate_limit.is_some());
    let outcome = run(
        &order_api::Program,
        "order",
        json!({"order_id": "A-1", "quantity": 3}),
        RunOptions::default(),
    );
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["http_response"]["status"], 201);
    assert_eq!(
        outcome["http_response"]["body"],
        r#"{"order_id":"A-1","quantity":3,"status":"accepted"}"#
    );
}
