//! End-to-end durable runs: real `agentd build` binaries paused, resumed, refused by
//! another build, and killed with SIGKILL mid-run then recovered with
//! `--resume-incomplete`.
//!
//! Builds share `<workspace>/target/agentd-cache` with tests/e2e.rs and
//! tests/handlers_e2e.rs, so the runtime is compiled once per feature set.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::compat;
use support::{agentd_build, exit_code, scratch, stdout_json, text, workflow_command};

/// `agentd build --quiet [extra...] WORKFLOW -o OUT` from `cwd`.
fn build(cwd: &Path, extra: &[&str], workflow: &str, out: &Path) {
    agentd_build(cwd, workflow, out, extra);
}

fn run(path: &Path, args: &[&str]) -> Output {
    workflow_command(path)
        .args(args)
        .output()
        .expect("the workflow binary runs")
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every file in `dir`, sorted (locks and temp files included).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ----- the compat approval gate -------------------------------------------------

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_approval_gate_pauses_with_exit_7_and_resumes_to_completion() {
    let compat = compat::dir();
    let dir = scratch("approval-gate");
    let gate = dir.join("approval-gate");
    build(&compat, &[], "examples/approval-gate.toml", &gate);
    let state = dir.join("state");
    let state_arg = state.to_string_lossy().into_owned();

    // Without a state dir the pause has nowhere to go: the dialect's hard error.
    let nowhere = run(&gate, &["--input", r#"{"service":"api","env":"prod"}"#]);
    assert_eq!(exit_code(&nowhere), 5);
    assert!(
        text(&nowhere.stderr).contains("no state directory is configured (set --state-dir)"),
        "{}",
        text(&nowhere.stderr)
    );

    let paused = run(
        &gate,
        &[
            "--state-dir",
            &state_arg,
            "--input",
            r#"{"service":"api","env":"prod"}"#,
        ],
    );
    assert_eq!(exit_code(&paused), 7, "stderr: {}", text(&paused.stderr));
    let outcome = stdout_json(&paused);
    assert_eq!(outcome["status"], "paused");
    assert_eq!(outcome["last_node"], "approve");
    assert_eq!(
        outcome["reason"],
        "Review the prepared change above, then resume to apply it."
    );
    let run_id = outcome["run_id"].as_str().expect("a run id").to_owned();
    assert!(run_id.starts_with("exec-"), "{run_id}");

    let file = state.join(format!("{run_id}.json"));
    assert_eq!(files(&state), [format!("{run_id}.json")]);
    let mode = std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let saved = read_json(&file);
    assert_eq!(saved["awaiting_approval"], true);
    assert_eq!(saved["resume_node"], "apply");
    assert_eq!(
        saved["node_outputs"]["prepare"]["rendered"],
        "Prepared: deploy api to prod."
    );
    let provenance = stdout_json(&run(&gate, &["--provenance"]));
    assert_eq!(saved["program_hash"], provenance["program_hash"]);

    let listed = run(&gate, &["--state-dir", &state_arg, "--list-checkpoints"]);
    assert_eq!(exit_code(&listed), 0);
    assert_eq!(
        text(&listed.stdout),
        format!("{run_id}  paused  workflow=deploy_with_approval resume_node=apply\n")
    );

    // The same workflow name built from different bytes refuses the checkpoint.
    let edited = std::fs::read_to_string(compat.join("examples/approval-gate.toml"))
        .expect("read the example")
        .replace("then resume to apply it.", "then resume to apply it (v2).");
    std::fs::write(dir.join("approval-gate-v2.toml"), edited).expect("write the edit");
    let v2 = dir.join("approval-gate-v2");
    build(&dir, &[], "approval-gate-v2.toml", &v2);
    let refused = run(&v2, &["--state-dir", &state_arg, "--resume", &run_id]);
    assert_eq!(exit_code(&refused), 2, "stderr: {}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    let v2_hash = stdout_json(&run(&v2, &["--provenance"]))["program_hash"].clone();
    for hash in [&provenance["program_hash"], &v2_hash] {
        let hash = hash.as_str().expect("a program hash");
        assert!(stderr.contains(hash), "names {hash}: {stderr}");
    }
    assert!(file.is_file(), "a refused checkpoint is kept");

    let resumed = run(&gate, &["--state-dir", &state_arg, "--resume", &run_id]);
    assert_eq!(exit_code(&resumed), 0, "stderr: {}", text(&resumed.stderr));
    let outcome = stdout_json(&resumed);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "apply");
    assert_eq!(outcome["final_value"], Value::Null);
    assert!(files(&state).is_empty(), "retired: {:?}", files(&state));

    let again = run(&gate, &["--state-dir", &state_arg, "--resume", &run_id]);
    assert_eq!(exit_code(&again), 2);
    assert!(
        text(&again.stderr).contains(&format!("no checkpoint `{run_id}`")),
        "{}",
        text(&again.stderr)
    );
}

// ----- crash recovery -------------------------------------------------------------

const CRASH_WORKFLOW: &str = r#"name = "durable_e2e_crash"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "first"

[[nodes]]
id = "first"
type = "rust"
handler = "first"
input_from = "trigger"

[[nodes]]
id = "slow"
type = "rust"
handler = "slow"
input_from = "first"

[[nodes]]
id = "report"
type = "template_render"
template = "batch {{batch}} done after {{waited}}"
input_from = "slow"

[[edges]]
from = "first"
to = "slow"

[[edges]]
from = "slow"
to = "report"
"#;

/// `first` logs once and passes the batch on (when `$CRASH_FIRST_SLEEP_SECS` is set,
/// it first announces itself through `$CRASH_MARKER` and sleeps that long); `slow`
/// logs, announces itself through `$CRASH_MARKER`, then sleeps `$CRASH_SLEEP_SECS`
/// (0 when unset).
const CRASH_HANDLERS: &str = r#"//! Handlers for the crash test.
use std::io::Write;

use agentd_runtime::Cx;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::serde_json::{Value, json};

fn log(line: &str) -> Result<(), NodeError> {
    let path = std::env::var("CRASH_LOG").map_err(NodeError::new)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(NodeError::new)?;
    writeln!(file, "{line}").map_err(NodeError::new)
}

pub fn first(_cx: &Cx<'_>, trigger: &Value) -> Result<NodeOutput, NodeError> {
    log("first")?;
    if let Some(secs) = std::env::var("CRASH_FIRST_SLEEP_SECS").ok().and_then(|s| s.parse().ok()) {
        if let Ok(marker) = std::env::var("CRASH_MARKER") {
            std::fs::write(marker, "sleeping").map_err(NodeError::new)?;
        }
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    Ok(NodeOutput::value(json!({ "batch": trigger.get("batch").cloned() })))
}

pub fn slow(_cx: &Cx<'_>, first: &Value) -> Result<NodeOutput, NodeError> {
    log("slow")?;
    let secs: u64 = std::env::var("CRASH_SLEEP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Ok(marker) = std::env::var("CRASH_MARKER") {
        std::fs::write(marker, "sleeping").map_err(NodeError::new)?;
    }
    std::thread::sleep(std::time::Duration::from_secs(secs));
    Ok(NodeOutput::value(json!({ "batch": first.get("batch").cloned(), "waited": secs })))
}
"#;

/// The crash workflow with its handlers, built once for the tests that kill it.
fn crash_binary() -> &'static Path {
    static CRASH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CRASH.get_or_init(|| {
        let dir = scratch("crash-build").keep();
        support::build::handler_crate(&dir.join("handlers"), "crash-handlers", CRASH_HANDLERS);
        std::fs::write(dir.join("crash.toml"), CRASH_WORKFLOW).expect("write the workflow");
        let crash = dir.join("crash");
        build(&dir, &["--handlers", "handlers"], "crash.toml", &crash);
        crash
    })
}

/// Start the crash binary with `--checkpoint-each-node`, wait until a node has
/// written `marker`, then SIGKILL it.
fn kill_when_marked(crash: &Path, state_arg: &str, log: &Path, marker: &Path, env: (&str, &str)) {
    let mut child = workflow_command(crash)
        .args(["--state-dir", state_arg, "--checkpoint-each-node"])
        .args(["--input", r#"{"batch": 7}"#])
        .env("CRASH_LOG", log)
        .env("CRASH_MARKER", marker)
        .env(env.0, env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the workflow binary");
    // Generous: only there so a broken binary cannot hang the suite.
    let give_up = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        if let Some(status) = child.try_wait().expect("poll the child") {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("the run ended before the marked node started ({status}): {err}");
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("the marked node never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL the run");
    let status = child.wait().expect("reap the run");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
}

#[test]
fn a_run_killed_in_its_first_node_is_rerun_by_resume_incomplete() {
    let dir = scratch("crash-first");
    let crash = crash_binary();
    let state = dir.join("state");
    let state_arg = state.to_string_lossy().into_owned();
    let log = dir.join("log.txt");
    let marker = dir.join("marker");
    kill_when_marked(
        crash,
        &state_arg,
        &log,
        &marker,
        ("CRASH_FIRST_SLEEP_SECS", "600"),
    );

    // The snapshot written before `first` ran: the trigger and the entry node.
    let snapshots: Vec<String> = files(&state)
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{:?}", files(&state));
    let snapshot = read_json(&state.join(&snapshots[0]));
    assert_eq!(snapshot["awaiting_approval"], false);
    assert_eq!(snapshot["paused_at"], Value::Null);
    assert_eq!(snapshot["resume_node"], "first");
    assert_eq!(snapshot["trigger_input"]["batch"], 7);

    let recovered = workflow_command(crash)
        .args(["--state-dir", &state_arg, "--resume-incomplete"])
        .env("CRASH_LOG", &log)
        .output()
        .expect("run --resume-incomplete");
    assert_eq!(
        exit_code(&recovered),
        0,
        "stderr: {}",
        text(&recovered.stderr)
    );
    let outcome = stdout_json(&recovered);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["final_value"]["rendered"], "batch 7 done after 0");
    let lines = std::fs::read_to_string(&log).expect("read the log");
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        ["first", "first", "slow"]
    );
    assert!(files(&state).is_empty(), "{:?}", files(&state));
}

#[test]
fn a_run_killed_mid_node_is_completed_by_resume_incomplete() {
    let dir = scratch("crash");
    let crash = crash_binary();

    let state = dir.join("state");
    let state_arg = state.to_string_lossy().into_owned();
    let log = dir.join("log.txt");
    let marker = dir.join("marker");

    kill_when_marked(
        crash,
        &state_arg,
        &log,
        &marker,
        ("CRASH_SLEEP_SECS", "600"),
    );

    // The progress snapshot written before `slow` started is whole and says where
    // to go on; no temp file, and the dead run's lock is free again.
    let snapshots: Vec<String> = files(&state)
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{:?}", files(&state));
    assert!(
        !files(&state).iter().any(|f| f.contains(".tmp-")),
        "{:?}",
        files(&state)
    );
    let snapshot = read_json(&state.join(&snapshots[0]));
    assert_eq!(snapshot["awaiting_approval"], false);
    assert_eq!(snapshot["paused_at"], "first");
    assert_eq!(snapshot["resume_node"], "slow");
    assert_eq!(snapshot["node_outputs"]["first"]["batch"], 7);

    let listed = run(crash, &["--state-dir", &state_arg, "--list-checkpoints"]);
    assert!(
        text(&listed.stdout).contains("  recoverable  workflow=durable_e2e_crash resume_node=slow"),
        "{}",
        text(&listed.stdout)
    );

    let recovered = workflow_command(crash)
        .args(["--state-dir", &state_arg, "--resume-incomplete"])
        .env("CRASH_LOG", &log)
        .output()
        .expect("run --resume-incomplete");
    assert_eq!(
        exit_code(&recovered),
        0,
        "stderr: {}",
        text(&recovered.stderr)
    );
    let outcome = stdout_json(&recovered);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "report");
    assert_eq!(outcome["final_value"]["rendered"], "batch 7 done after 0");

    // At least once for the interrupted node, exactly once for the finished one.
    let lines = std::fs::read_to_string(&log).expect("read the log");
    assert_eq!(lines.lines().collect::<Vec<_>>(), ["first", "slow", "slow"]);
    assert!(files(&state).is_empty(), "{:?}", files(&state));
}
