//! Each golden program, run once on the engine: the snapshots are not only
//! compiled but wired correctly (start names, edges, baked configs, policy).
//!
//! Side-effecting workflows run with `dry_run`, so these tests touch no files.

use agentd_golden::{
    approval_gate, data_pipeline, hello, llm_classifier, map_child, map_fanout, webhook_receiver,
};
use agentd_runtime::{Engine, RunOptions, Trigger, Workflow};
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
