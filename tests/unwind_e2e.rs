//! End to end: static binaries without unwind data (`agentd build` links them with
//! `templates/no-unwind-data.ld` and `--no-eh-frame-hdr`, docs/performance.md) still
//! behave. The sections and the `PT_GNU_EH_FRAME` header are gone; the binary runs
//! to completion; the one path that reads unwind data — a backtrace under
//! `RUST_BACKTRACE`, here after an allocation over `[budget] max_memory_mb` — prints
//! its message and aborts with SIGABRT whatever `RUST_BACKTRACE` says, never a crash
//! of another kind. A build with a `--handlers` crate keeps its unwind data (the
//! crate may link C++ that throws): its panic backtrace (`RUST_BACKTRACE=full`) still
//! lists frames, as addresses since the binary is stripped.
//!
//! Uses `readelf` (binutils, which the C toolchain static linking needs brings).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{agentd_build, scratch, text};

/// `readelf ARGS binary`'s stdout; panics when binutils is missing.
fn readelf(args: &[&str], binary: &Path) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run readelf (binutils): {e}"));
    assert!(out.status.success(), "readelf: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The names of `binary`'s sections and program header types.
fn sections_and_segments(binary: &Path) -> (String, String) {
    (readelf(&["-SW"], binary), readelf(&["-lW"], binary))
}

/// A workflow that echoes `trigger.x` under a 24 MB address-space budget.
const BUDGET_ECHO: &str = r#"name = "unwind-budget-echo"

[policy]

[budget]
max_memory_mb = 24

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "echo"

[[nodes]]
id = "echo"
type = "template_render"
template = "{{x}}"
input_from = "trigger"
"#;

fn budget_echo() -> &'static Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = scratch("budget-echo").keep();
        std::fs::write(dir.join("echo.toml"), BUDGET_ECHO).expect("write workflow");
        let binary = dir.join("echo");
        agentd_build(&dir, "echo.toml", &binary, &[]);
        binary
    })
}

fn run(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("AGENTD_INPUT")
        .env_remove("AGENTD_POLICY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

#[test]
fn static_binaries_carry_no_unwind_data_and_still_run_to_completion() {
    let binary = budget_echo();
    let (sections, segments) = sections_and_segments(binary);
    for gone in [".eh_frame ", ".eh_frame_hdr ", ".gcc_except_table "] {
        assert!(!sections.contains(gone), "{gone}in:\n{sections}");
    }
    assert!(!segments.contains("GNU_EH_FRAME"), "{segments}");
    // The rest of the layout is intact: code, data and the packed relocations.
    assert!(sections.contains(".text "), "{sections}");

    let out = run(binary, &["--input", r#"{"x": "still here"}"#], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON outcome");
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["final_value"]["rendered"], "still here");
}

#[test]
fn an_allocation_over_the_memory_budget_aborts_with_its_message_under_any_rust_backtrace() {
    let binary = budget_echo();
    let dir = binary.parent().expect("scratch dir");
    // 15 MB fits in the 24 MB budget once (the file read); parsing it into a second
    // copy does not, so the JSON parser's allocation fails and std aborts.
    let big = dir.join("big.json");
    std::fs::write(&big, format!("{{\"x\": \"{}\"}}", "a".repeat(15_000_000))).expect("write");
    let input = big.to_str().expect("UTF-8 path");
    for backtrace in [None, Some("0"), Some("1"), Some("full")] {
        let env: Vec<(&str, &str)> = backtrace
            .map(|b| ("RUST_BACKTRACE", b))
            .into_iter()
            .collect();
        let out = run(binary, &["--input-file", input], &env);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "RUST_BACKTRACE={backtrace:?}: {:?}\n{stderr}",
            out.status
        );
        assert!(
            stderr.starts_with("memory allocation of 15000000 bytes failed"),
            "RUST_BACKTRACE={backtrace:?}:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "no outcome: {}", text(&out.stdout));
        if matches!(backtrace, Some("1" | "full")) {
            // The walk finds no frame data and ends at once: a header, no frames.
            assert!(stderr.contains("stack backtrace:"), "{stderr}");
            assert!(!stderr.contains("  0: "), "{stderr}");
        }
    }
}

const PANICKING_HANDLERS: &str = r#"//! A handler that panics on `{"boom": true}`.
use agentd_runtime::Cx;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::serde_json::Value;

pub fn check(_cx: &Cx<'_>, input: &Value) -> Result<NodeOutput, NodeError> {
    if input.get("boom").and_then(Value::as_bool) == Some(true) {
        panic!("the handler gave up on {input}");
    }
    Ok(NodeOutput::value(input.clone()))
}
"#;

const HANDLER_WORKFLOW: &str = r#"name = "unwind-handler"

[policy]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "check"

[[nodes]]
id = "check"
type = "rust"
handler = "check"
input_from = "trigger"
"#;

#[test]
fn a_handler_crate_build_keeps_its_unwind_data_and_its_panic_backtrace_lists_frames() {
    let dir = scratch("handler");
    support::build::handler_crate(&dir.join("handlers"), "unwind-handlers", PANICKING_HANDLERS);
    std::fs::write(dir.join("handler.toml"), HANDLER_WORKFLOW).expect("write workflow");
    let binary = dir.join("handler");
    agentd_build(&dir, "handler.toml", &binary, &["--handlers", "handlers"]);

    let (sections, segments) = sections_and_segments(&binary);
    assert!(sections.contains(".eh_frame "), "{sections}");
    assert!(segments.contains("GNU_EH_FRAME"), "{segments}");

    let fine = run(&binary, &["--input", r#"{"boom": false}"#], &[]);
    assert_eq!(fine.status.code(), Some(0), "{}", text(&fine.stderr));

    let out = run(
        &binary,
        &["--input", r#"{"boom": true}"#],
        &[("RUST_BACKTRACE", "full")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("panicked at") && stderr.contains("the handler gave up on"),
        "{stderr}"
    );
    assert!(stderr.contains("stack backtrace:"), "{stderr}");
    assert!(stderr.contains("  0: "), "frames listed:\n{stderr}");
}
