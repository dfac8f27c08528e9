//! End-to-end tests of `agentd build --handlers PATH`: custom Rust nodes bound from a
//! user library crate (`handler = "x"` calls `agentd_handlers::x`, the crate's root-level
//! `pub fn x`), plus `agentd check --allow-rust-nodes` / `--handlers`.
//!
//! Each test writes a tiny handler crate depending on this workspace's `agentd-runtime`
//! by absolute path, and a workflow with a `type = "rust"` node. Builds share the cache
//! `<workspace>/target/agentd-cache` with tests/e2e.rs, so they are warm after the first.

use std::path::Path;
use std::process::Output;

mod support;

use support::build::{cache_lock, handler_crate};
use support::{agentd, exit_code, scratch, stdout_json, text, workflow_command};

/// A workflow named `name` whose Rust node `classify` routes on the handler's label:
/// `urgent` → `page`, `routine` → `enqueue`.
fn workflow(name: &str) -> String {
    format!(
        r#"name = "{name}"

[policy]

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "classify"
type = "rust"
handler = "classify"
input_from = "trigger.ticket"

[[nodes]]
id = "page"
type = "template_render"
template = "page on-call for {{{{queue}}}} (priority {{{{priority}}}})"
input_from = "classify"

[[nodes]]
id = "enqueue"
type = "template_render"
template = "queued in {{{{queue}}}}"
input_from = "classify"

[[edges]]
from = "classify"
to = "page"
when = "urgent"

[[edges]]
from = "classify"
to = "enqueue"
when = "routine"
"#
    )
}

const HANDLERS_LIB: &str = r#"//! Handlers for the test workflow: root-level public functions.
use agentd_runtime::Cx;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::serde_json::{Value, json};

pub fn classify(_cx: &Cx<'_>, ticket: &Value) -> Result<NodeOutput, NodeError> {
    let title = ticket
        .get("title")
        .and_then(Value::as_str)
        .ok_or_else(|| NodeError::new("ticket has no string `title`"))?;
    let urgent = title.contains("down");
    let queue = if title.contains("invoice") { "billing" } else { "support" };
    Ok(NodeOutput::branch(
        json!({ "queue": queue, "priority": if urgent { 1 } else { 3 } }),
        if urgent { "urgent" } else { "routine" },
    ))
}
"#;

fn run(binary: &Path, input: &str) -> Output {
    workflow_command(binary)
        .args(["--input", input])
        .output()
        .expect("the workflow binary runs")
}

#[test]
fn build_with_handlers_binds_the_crate_and_routes_on_the_handler_label() {
    let dir = scratch("bound");
    handler_crate(&dir.join("handlers"), "triage-handlers", HANDLERS_LIB);
    std::fs::write(dir.join("triage.toml"), workflow("handlers-e2e-triage")).expect("write");

    let binary = dir.join("triage");
    let output = {
        let _guard = cache_lock();
        agentd(&dir)
            .args([
                "build",
                "--quiet",
                "--handlers",
                "handlers",
                "triage.toml",
                "-o",
            ])
            .arg(&binary)
            .output()
            .expect("agentd runs")
    };
    // A successful build also proves the runtime unified: `rust::call` requires the
    // handler to take the generated crate's `Cx` and return its `NodeOutput`, which a
    // second copy of agentd-runtime would not satisfy (E0631).
    assert_eq!(
        exit_code(&output),
        0,
        "agentd build --handlers failed:\n{}",
        text(&output.stderr)
    );

    let urgent = run(&binary, r#"{"ticket": {"title": "site down"}}"#);
    assert_eq!(exit_code(&urgent), 0, "stderr: {}", text(&urgent.stderr));
    let outcome = stdout_json(&urgent);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "page");
    assert_eq!(
        outcome["final_value"]["rendered"],
        "page on-call for support (priority 1)"
    );

    let routine = run(&binary, r#"{"ticket": {"title": "invoice copy"}}"#);
    assert_eq!(exit_code(&routine), 0, "stderr: {}", text(&routine.stderr));
    let outcome = stdout_json(&routine);
    assert_eq!(outcome["last_node"], "enqueue");
    assert_eq!(outcome["final_value"]["rendered"], "queued in billing");

    // A handler's `NodeError` is the run's hard error, naming the handler.
    let failed = run(&binary, r#"{"ticket": {}}"#);
    assert_ne!(exit_code(&failed), 0);
    let all = text(&failed.stdout) + &text(&failed.stderr);
    assert!(
        all.contains("handler `classify`: ticket has no string `title`"),
        "{all}"
    );
}

#[test]
fn build_with_a_crate_lacking_the_handler_fails_with_exit_3_naming_it() {
    let dir = scratch("missing");
    let lib = HANDLERS_LIB.replace("pub fn classify(", "pub fn classify_ticket(");
    handler_crate(&dir.join("handlers"), "missing-handlers", &lib);
    std::fs::write(dir.join("triage.toml"), workflow("handlers-e2e-missing")).expect("write");

    let output = {
        let _guard = cache_lock();
        agentd(&dir)
            .args([
                "build",
                "--quiet",
                "--handlers",
                "handlers",
                "triage.toml",
                "-o",
            ])
            .arg(dir.join("triage"))
            .output()
            .expect("agentd runs")
    };
    let stderr = text(&output.stderr);
    assert_eq!(exit_code(&output), 3, "stderr:\n{stderr}");
    // rustc's error (cargo's output is shown) and agentd's hint naming the handler file.
    assert!(stderr.contains("error[E0425]"), "{stderr}");
    assert!(
        stderr.contains("help: handler `classify` is not defined in crate `missing-handlers`"),
        "{stderr}"
    );
    assert!(stderr.contains("src/lib.rs"), "{stderr}");
    assert!(!dir.join("triage").exists());
}

#[test]
fn check_refuses_rust_nodes_unless_allowed_or_given_handlers() {
    let dir = scratch("check");
    handler_crate(&dir.join("handlers"), "check-handlers", HANDLERS_LIB);
    std::fs::write(dir.join("triage.toml"), workflow("handlers-e2e-check")).expect("write");

    let strict = agentd(&dir)
        .args(["check", "triage.toml"])
        .output()
        .expect("agentd runs");
    let stderr = text(&strict.stderr);
    assert_eq!(exit_code(&strict), 1, "{stderr}");
    assert!(stderr.contains("error[rust_node_not_allowed]"), "{stderr}");
    assert!(stderr.contains("--handlers PATH"), "{stderr}");

    for flags in [&["--allow-rust-nodes"][..], &["--handlers", "handlers"][..]] {
        let ok = agentd(&dir)
            .arg("check")
            .args(flags)
            .arg("triage.toml")
            .output()
            .expect("agentd runs");
        assert_eq!(exit_code(&ok), 0, "{flags:?}: {}", text(&ok.stderr));
        assert!(text(&ok.stderr).starts_with("ok: "), "{}", text(&ok.stderr));
    }

    // `emit` binds the handler as `build --handlers` does.
    let emit = agentd(&dir)
        .args(["emit", "--allow-rust-nodes", "triage.toml"])
        .output()
        .expect("agentd runs");
    assert_eq!(exit_code(&emit), 0, "{}", text(&emit.stderr));
    assert!(
        text(&emit.stdout).contains("::agentd_handlers::classify"),
        "{}",
        text(&emit.stdout)
    );

    // Not a crate directory: a usage error naming the problem.
    let bad = agentd(&dir)
        .args(["check", "--handlers", "nowhere", "triage.toml"])
        .output()
        .expect("agentd runs");
    assert_eq!(exit_code(&bad), 2);
    assert!(
        text(&bad.stderr).contains("no Cargo.toml"),
        "{}",
        text(&bad.stderr)
    );
}
