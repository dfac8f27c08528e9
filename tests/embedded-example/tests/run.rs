//! Builds and runs the example binary (cargo builds it for this test) and checks
//! what it prints: both embedded workflows ran, the Rust node routed each ticket,
//! and a handler error surfaced as the run's error.

use std::process::Command;

#[test]
fn example_runs_both_embedded_workflows() {
    let out = Command::new(env!("CARGO_BIN_EXE_agentd-embedded-example"))
        .output()
        .expect("run the example binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"data_pipeline: {"status":"completed","final_value":{"rendered":"order 4242: 19.99 EUR, paid"},"last_node":"receipt"}"#,
            r#"triage: {"status":"completed","final_value":{"rendered":"page on-call for support (priority 1)"},"last_node":"page"}"#,
            r#"triage: {"status":"completed","final_value":{"rendered":"queued in billing"},"last_node":"enqueue"}"#,
            "triage: error: tool `rust` failed: handler `classify`: ticket has no string `title`",
        ]
    );
}
