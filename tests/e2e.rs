//! End-to-end tests: the real `agentd` binary builds real workflow binaries, which
//! are then run the way a user runs them (ARCHITECTURE.md "Testing").
//!
//! Every child process shares one cache (`<workspace>/target/agentd-cache`), so only
//! the first build of a session is cold. Builds and `agentd test` runs are serialised
//! with `support::build::cache_lock` so their cargo output stays readable when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

mod support;

use support::build::cache_lock;
use support::compat;
use support::{
    Scratch, agentd, agentd_build, exit_code, scratch, stdout_json, text, workflow_command,
    workspace,
};

/// Serialises runs that write `/tmp/agentd-hello/greeting.txt`.
static HELLO_FILE_LOCK: Mutex<()> = Mutex::new(());

const HELLO_FILE: &str = "/tmp/agentd-hello/greeting.txt";

fn hello_file_lock() -> MutexGuard<'static, ()> {
    // A failed test must not poison the lock for the others.
    HELLO_FILE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `agentd build WORKFLOW -o OUT` from `cwd` (see `support::build`); the binary.
fn build(cwd: &Path, workflow: &str, out: &Path) -> PathBuf {
    agentd_build(cwd, workflow, out, &[]);
    out.to_path_buf()
}

/// [`build`] from the compat directory, whose child paths are written relative to it.
fn build_compat(compat: &Path, workflow: &str, out: &Path) -> PathBuf {
    build(compat, workflow, out)
}

/// Run a built workflow binary with `args`.
fn run(binary: &Path, args: &[&str]) -> Output {
    workflow_command(binary)
        .args(args)
        .output()
        .expect("the workflow binary runs")
}

// ----- hello --------------------------------------------------------------------

#[test]
fn hello_builds_a_static_binary_that_writes_the_greeting() {
    let dir = scratch("hello");
    let binary = build(&workspace(), "workflows/hello.toml", &dir.join("hello"));

    let _file = hello_file_lock();
    let _ = std::fs::remove_file(HELLO_FILE);
    let output = Command::new(&binary)
        .env("AGENTD_NAME", "world")
        .output()
        .expect("hello runs");
    assert_eq!(exit_code(&output), 0, "stderr: {}", text(&output.stderr));
    let outcome = stdout_json(&output);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "save");
    assert_eq!(outcome["final_value"]["written"], true);
    assert_eq!(outcome["final_value"]["path"], HELLO_FILE);
    assert_eq!(
        std::fs::read_to_string(HELLO_FILE).expect("hello wrote its file"),
        "Hello, world - your agent is alive.\n"
    );

    match Command::new("ldd").arg(&binary).output() {
        Ok(ldd) => {
            let said = format!("{}{}", text(&ldd.stdout), text(&ldd.stderr));
            assert!(
                said.contains("not a dynamic executable") || said.contains("statically linked"),
                "hello is dynamically linked; ldd says:\n{said}"
            );
        }
        Err(e) => eprintln!("note: ldd unavailable ({e}); static linking not checked"),
    }
}

// ----- the binary's exit codes --------------------------------------------------

/// A workflow that fails on `{"fail": true}` and otherwise writes `OUT_DIR/note.txt`.
fn gate_workflow(out_dir: &Path) -> String {
    format!(
        r#"name = "e2e_gate"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "check"

[[nodes]]
id = "check"
type = "condition"
expr = "trigger.fail"

[[nodes]]
id = "refuse"
type = "fail"
reason = "asked to fail"

[[nodes]]
id = "note"
type = "template_render"
template = "noted\n"

[[nodes]]
id = "path"
type = "template_render"
template = "{out}/note.txt"

[[nodes]]
id = "save"
type = "write_file"
path_from = "path.rendered"
content_from = "note.rendered"

[[edges]]
from = "check"
when = "true"
to = "refuse"

[[edges]]
from = "check"
when = "false"
to = "note"

[[edges]]
from = "note"
to = "path"

[[edges]]
from = "path"
to = "save"
"#,
        out = out_dir.display()
    )
}

#[test]
fn workflow_binary_exit_codes_follow_the_outcome() {
    let dir = scratch("exit-codes");
    let out_dir = dir.join("out");
    let toml = dir.join("gate.toml");
    std::fs::write(&toml, gate_workflow(&out_dir)).expect("write the workflow");
    let binary = build(&dir, "gate.toml", &dir.join("gate"));
    let note = out_dir.join("note.txt");

    // A run that ends at a `fail` node: exit 5, status failed.
    let failed = run(&binary, &["--input", r#"{"fail": true}"#]);
    assert_eq!(exit_code(&failed), 5, "stderr: {}", text(&failed.stderr));
    let outcome = stdout_json(&failed);
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["last_node"], "refuse");
    assert_eq!(outcome["reason"], "asked to fail");

    // An unknown start is a hard error, not an outcome.
    let unknown_start = run(&binary, &["--start", "nope"]);
    assert_eq!(exit_code(&unknown_start), 5);
    assert!(
        text(&unknown_start.stderr).contains("agentd: "),
        "stderr: {}",
        text(&unknown_start.stderr)
    );

    // An unknown flag is a usage error.
    assert_eq!(exit_code(&run(&binary, &["--no-such-flag"])), 2);

    // --validate-only answers without running anything.
    let validated = run(&binary, &["--validate-only"]);
    assert_eq!(exit_code(&validated), 0);
    assert_eq!(stdout_json(&validated)["ok"], true);
    assert!(!note.exists(), "--validate-only ran the workflow");

    // --dry-run walks the graph but skips the write.
    let dry = run(&binary, &["--dry-run", "--input", "{}"]);
    assert_eq!(exit_code(&dry), 0, "stderr: {}", text(&dry.stderr));
    let outcome = stdout_json(&dry);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "save");
    assert!(!note.exists(), "--dry-run wrote {}", note.display());

    // The same run for real does write, so the dry-run check above can fail.
    let real = run(&binary, &["--input", "{}"]);
    assert_eq!(exit_code(&real), 0, "stderr: {}", text(&real.stderr));
    assert_eq!(stdout_json(&real)["final_value"]["written"], true);
    assert_eq!(
        std::fs::read_to_string(&note).expect("the real run wrote the note"),
        "noted\n"
    );
}

/// Edit a workflow, build, undo the edit, build again: the second binary must be
/// the original one.
#[test]
fn returning_to_an_earlier_edit_rebuilds_its_binary() {
    let dir = scratch("edit-undo");
    let original = std::fs::read_to_string(workspace().join("workflows/hello.toml"))
        .expect("read workflows/hello.toml");
    let edited = original.replace("your agent is alive", "your agent was edited");
    assert_ne!(original, edited, "the edit applies");
    let toml = dir.join("hello.toml");
    let bytes = |binary: PathBuf| std::fs::read(binary).expect("read the binary");

    std::fs::write(&toml, &original).expect("write hello");
    let first = bytes(build(&dir, "hello.toml", &dir.join("first")));
    std::fs::write(&toml, &edited).expect("write the edit");
    let second = bytes(build(&dir, "hello.toml", &dir.join("second")));
    std::fs::write(&toml, &original).expect("undo the edit");
    let third = bytes(build(&dir, "hello.toml", &dir.join("third")));

    assert_ne!(first, second, "the edit changed the binary");
    assert_eq!(first, third, "undoing the edit gave back the edited binary");
}

// ----- compat examples ------------------------------------------------------------

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_hello_example_writes_the_greeting_and_terminates() {
    let compat = compat::dir();
    let dir = scratch("compat-hello");
    let binary = build_compat(&compat, "examples/hello.toml", &dir.join("hello"));

    let _file = hello_file_lock();
    let _ = std::fs::remove_file(HELLO_FILE);
    let output = Command::new(&binary)
        .env("AGENTD_NAME", "compat")
        .output()
        .expect("hello runs");
    assert_eq!(exit_code(&output), 0, "stderr: {}", text(&output.stderr));
    let outcome = stdout_json(&output);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "done");
    assert_eq!(
        outcome["final_value"],
        Value::Null,
        "terminate returns null"
    );
    assert_eq!(
        std::fs::read_to_string(HELLO_FILE).expect("hello wrote its file"),
        "Hello, compat - your agent is alive.\n"
    );
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_map_fanout_example_runs_its_child_per_item_under_max_items() {
    let compat = compat::dir();
    let dir = scratch("compat-map");
    let binary = build_compat(&compat, "examples/map-fanout.toml", &dir.join("map"));

    let items = r#"{"items":[{"kind":"invoice"},{"kind":"contract"},{"kind":"resume"}]}"#;
    let ok = run(&binary, &["--input", items]);
    assert_eq!(exit_code(&ok), 0, "stderr: {}", text(&ok.stderr));
    let outcome = stdout_json(&ok);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "done");
    assert_eq!(outcome["final_value"], Value::Null);

    // More than max_items = 25 is a hard error, never a silent truncation.
    let many = format!(r#"{{"items":[{}]}}"#, vec![r#"{"kind":"x"}"#; 26].join(","));
    let too_many = run(&binary, &["--input", &many]);
    assert_eq!(exit_code(&too_many), 5);
    assert!(
        text(&too_many.stderr).contains("max_items"),
        "stderr: {}",
        text(&too_many.stderr)
    );
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_parallel_fanout_example_joins_both_branches() {
    let compat = compat::dir();
    let dir = scratch("compat-parallel");
    let binary = build_compat(&compat, "examples/parallel-fanout.toml", &dir.join("fan"));
    let output = run(&binary, &["--input", r#"{"kind":"invoice"}"#]);
    assert_eq!(exit_code(&output), 0, "stderr: {}", text(&output.stderr));
    let outcome = stdout_json(&output);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "done");
    assert_eq!(outcome["final_value"], Value::Null);
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_subworkflow_parent_example_routes_a_successful_call_to_done() {
    let compat = compat::dir();
    let dir = scratch("compat-subworkflow");
    let binary = build_compat(
        &compat,
        "examples/subworkflow-parent.toml",
        &dir.join("router"),
    );
    // The child was compiled in at build time: run from elsewhere.
    let output = Command::new(&binary)
        .args(["--input", r#"{"kind":"invoice"}"#])
        .current_dir(&dir)
        .output()
        .expect("router runs");
    assert_eq!(exit_code(&output), 0, "stderr: {}", text(&output.stderr));
    let outcome = stdout_json(&output);
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["last_node"], "done");
    assert_eq!(outcome["final_value"], Value::Null);
}

// ----- agentd test --------------------------------------------------------------------

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_corpus_and_fixture_suite_pass_in_full() {
    let compat = compat::dir();
    let output = {
        let _guard = cache_lock();
        agentd(&workspace())
            .arg("test")
            .arg(compat.join("corpus"))
            .arg(compat.join("fixture-suite"))
            // Our own scenarios ride in the same harness build (agent_loop, MCP).
            .arg(workspace().join("tests/scenarios"))
            .output()
            .expect("agentd test runs")
    };
    let stdout = text(&output.stdout);
    assert_eq!(
        exit_code(&output),
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    assert_eq!(
        stdout.lines().last(),
        Some("19 passed, 0 failed"),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|line| line.starts_with("XFAIL ")),
        "nothing is expected to fail any more:\n{stdout}"
    );
    for llm in [
        "llm-route",
        "reliability-robust (8/8 trials)",
        "intel_classify",
        "agent-loop-mcp",
        "agent-loop-injection",
        "mcp-allowlist",
        "mcp-warehouse",
    ] {
        assert!(
            stdout.lines().any(|line| line == format!("PASS  {llm}")),
            "no PASS line for {llm}:\n{stdout}"
        );
    }
}

#[test]
fn agentd_test_reports_a_wrong_expectation_as_a_failure() {
    let dir = scratch("wrong-expectation");
    let case = dir.join("linear-wrong");
    std::fs::create_dir_all(&case).expect("create the case dir");
    std::fs::write(
        case.join("workflow.toml"),
        r#"name = "linear_wrong"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "a"

[[nodes]]
id = "a"
type = "merge"

[[nodes]]
id = "done"
type = "terminate"

[[edges]]
from = "a"
to = "done"
"#,
    )
    .expect("write the workflow");
    std::fs::write(
        case.join("fixture.toml"),
        r#"start = "main"

[expected]
status = "completed"
last_node = "a"
"#,
    )
    .expect("write the fixture");

    let output = {
        let _guard = cache_lock();
        agentd(&dir)
            .arg("test")
            .arg(&case)
            .output()
            .expect("agentd test runs")
    };
    let stdout = text(&output.stdout);
    assert_eq!(
        exit_code(&output),
        1,
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.lines().any(|line| line.starts_with("FAIL")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("0 passed, 1 failed"),
        "{stdout}"
    );
}

// ----- agentd build errors ------------------------------------------------------------

#[test]
fn building_an_invalid_workflow_exits_1_and_writes_nothing() {
    let dir = scratch("invalid");
    std::fs::write(
        dir.join("broken.toml"),
        r#"name = "broken"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "a"

[[nodes]]
id = "a"
type = "merge"

[[edges]]
from = "a"
to = "nowhere"
"#,
    )
    .expect("write the workflow");
    let out = dir.join("broken");
    let output = agentd(&dir)
        .args(["build", "broken.toml", "-o"])
        .arg(&out)
        .output()
        .expect("agentd runs");
    assert_eq!(exit_code(&output), 1, "stderr: {}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("nowhere"),
        "the diagnostic names the bad edge target:\n{}",
        text(&output.stderr)
    );
    assert!(
        !out.exists(),
        "an invalid workflow produced {}",
        out.display()
    );
}

#[test]
fn building_a_missing_file_is_a_usage_error() {
    let dir = scratch("missing");
    let out = dir.join("ghost");
    let output = agentd(&dir)
        .args(["build", "no-such-workflow.toml", "-o"])
        .arg(&out)
        .output()
        .expect("agentd runs");
    assert_eq!(exit_code(&output), 2, "stderr: {}", text(&output.stderr));
    assert!(!out.exists());
}

#[test]
fn a_runtime_of_another_codegen_contract_is_refused_with_both_numbers() {
    let dir = scratch("contract");
    let runtime = dir.join("old-runtime");
    std::fs::create_dir_all(&runtime).expect("create the runtime tree");
    let out = dir.join("hello");
    // `agentd build` of hello against `runtime` whose Cargo.toml is `manifest`.
    let build_against = |manifest: &str| {
        std::fs::write(runtime.join("Cargo.toml"), manifest).expect("write its manifest");
        let output = agentd(&workspace())
            .args(["build", "workflows/hello.toml", "--runtime"])
            .arg(&runtime)
            .arg("-o")
            .arg(&out)
            .env("AGENTD_CACHE_DIR", dir.join("cache"))
            .output()
            .expect("agentd runs");
        (exit_code(&output), text(&output.stderr))
    };

    let (code, stderr) = build_against(
        "[package]\nname = \"agentd-runtime\"\nversion = \"0.1.0\"\n\n\
         [package.metadata.agentd]\ncodegen-contract = 999999\n",
    );
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(
        stderr.contains("implements codegen contract 999999")
            && stderr.contains("this agentd generates code for contract"),
        "{stderr}"
    );
    assert!(
        !out.exists() && !dir.join("cache").exists(),
        "nothing is built"
    );

    // A tree that declares no contract is built; when that fails, the note
    // names the likely cause instead of calling it a bug in agentd.
    let (code, stderr) = build_against(
        "[package]\nname = \"agentd-runtime\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    assert_ne!(code, 0, "stderr: {stderr}");
    assert!(
        stderr.contains("declares no codegen contract") && !stderr.contains("a bug in agentd"),
        "{stderr}"
    );
    assert!(!out.exists());
}

// ----- deterministic output -------------------------------------------------------------

#[test]
fn emit_is_byte_for_byte_deterministic() {
    // map-fanout compiles a child workflow into the same program.
    for workflow in ["workflows/hello.toml", "workflows/map-fanout.toml"] {
        let emit = || {
            let output = agentd(&workspace())
                .args(["emit", workflow])
                .output()
                .expect("agentd runs");
            assert!(output.status.success(), "{}", text(&output.stderr));
            output.stdout
        };
        let first = emit();
        assert!(!first.is_empty());
        assert_eq!(first, emit(), "{workflow}: two emits differ");
    }
}

/// Issue 4's acceptance: every compat example that uses an effect node kind
/// builds, each with its own capability set, and the binary starts. The LLM
/// examples need a model to run, so they print their provenance instead;
/// `cron-poller` (an interval trigger) is served and stopped with SIGTERM,
/// which must drain and exit 0 even though no HTTP listener exists.
#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_examples_with_effect_nodes_build_and_start() {
    let compat = compat::dir();
    let dir = scratch("compat-effects");
    for example in [
        "agent-loop",
        "llm-classifier",
        "multi-provider",
        "evaluator-optimizer",
    ] {
        let binary = build_compat(
            &compat,
            &format!("examples/{example}.toml"),
            &dir.join(example),
        );
        let out = run(&binary, &["--provenance"]);
        assert_eq!(exit_code(&out), 0, "{example}: {}", text(&out.stderr));
        let provenance = stdout_json(&out);
        let caps = provenance["capabilities"].to_string();
        assert!(
            caps.contains("llm"),
            "{example} lacks the llm capability: {caps}"
        );
    }

    let poller = build_compat(
        &compat,
        "examples/cron-poller.toml",
        &dir.join("cron-poller"),
    );
    let mut child = Command::new(&poller)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the poller starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    // The banner is among the first lines; reading stops at the process's end.
    let banner = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .take(20)
        .find(|l| l.contains("running 1 triggers"));
    assert!(banner.is_some(), "no trigger banner from cron-poller");
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with the pid of a child this test spawned and still owns.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM delivered");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("cron-poller did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

/// A workflow whose `shell_run` starts `sh -c SCRIPT` (from the trigger's
/// `args`), reachable once (`main`) and over `POST /nap` (`nap`).
const SLEEPER: &str = r#"name = "sleeper"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "nap"

[[start_nodes]]
name = "nap"
source = "http"
entry_node = "nap"

[[http_routes]]
method = "POST"
path = "/nap"
start_node = "nap"

[[nodes]]
id = "nap"
type = "shell_run"
command = "/bin/sh"
args_from = "trigger.args"
timeout_secs = 120
"#;

/// The script of [`SLEEPER`]: the shell (the group leader) starts a sleeping
/// grandchild, writes both pids to `pids` and waits.
fn sleeper_args(pids: &Path) -> Value {
    let script = format!(
        "sleep 120 & echo $$ $! > {}.tmp; mv {0}.tmp {0}; wait",
        pids.display()
    );
    serde_json::json!({ "args": ["-c", script] })
}

/// [`SLEEPER`] built into a fresh scratch directory for `test`: the directory and
/// the binary.
fn build_sleeper(test: &str) -> (Scratch, PathBuf) {
    let dir = scratch(test);
    std::fs::write(dir.join("sleeper.toml"), SLEEPER).expect("write workflow");
    let exe = build(&dir, "sleeper.toml", &dir.join("sleeper"));
    (dir, exe)
}

/// `exe --mode once --input INPUT`, its output discarded.
fn start_once(exe: &Path, input: &Value) -> std::process::Child {
    use std::os::unix::process::CommandExt;

    let mut cmd = Command::new(exe);
    // A shell starting `cargo test` in the background without job control
    // (`cmd &` in a script, `nohup`) leaves SIGINT ignored, and an ignored
    // signal stays ignored in the binary by design: give the binary the
    // default disposition an interactive start would.
    // SAFETY: between fork and exec the closure only calls `signal`, which is
    // async-signal-safe, with plain integer arguments.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.args(["--mode", "once", "--input", &input.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// The `n` pids the script wrote to `pids`, once it has.
fn wait_for_pids(pids: &Path, n: usize) -> Vec<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(pids) {
            let found: Vec<i32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            assert_eq!(found.len(), n, "pids file: {text:?}");
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether `pid` is still a live process (a zombie waiting for a reaper
/// that is not us counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // `pid (comm) S ...`: the state follows the last ')'.
        Ok(stat) => {
            !matches!(stat.rsplit(')').next().map(str::trim_start), Some(s) if s.starts_with('Z') || s.starts_with('X'))
        }
    }
}

fn assert_all_gone(pids: &[i32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "processes of the shell_run group outlived the binary: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn signal(child: &std::process::Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with the pid of a child this test spawned and still owns.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "signal {sig} delivered");
}

/// A `shell_run` command runs in its own process group, so a terminal's Ctrl-C
/// never reaches it: the once-mode binary kills the group when it gets SIGINT,
/// then dies of SIGINT itself.
#[cfg(target_os = "linux")]
#[test]
fn sigint_to_a_once_run_kills_its_shell_run_group() {
    use std::os::unix::process::ExitStatusExt;

    let (dir, exe) = build_sleeper("sigint_kills_shell_group");
    let pids = dir.join("pids");
    let mut child = start_once(&exe, &sleeper_args(&pids));
    let group = wait_for_pids(&pids, 2);
    assert!(group.iter().all(|&p| alive(p)), "the command is running");

    signal(&child, libc::SIGINT);
    let status = child.wait().expect("the binary ends");
    assert_eq!(
        status.signal(),
        Some(libc::SIGINT),
        "dies of the signal: {status}"
    );
    assert_all_gone(&group);
}

/// A server whose drain times out exits 5 and takes the commands of the runs it
/// abandons with it.
#[cfg(target_os = "linux")]
#[test]
fn a_drain_timeout_kills_the_shell_run_groups_it_abandons() {
    use std::io::{BufRead, Write};

    let (dir, exe) = build_sleeper("drain_timeout_kills_shell_group");
    let mut child = Command::new(&exe)
        .args(["--bind", "127.0.0.1:0", "--drain-timeout-secs", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .take(20)
        .find_map(|l| {
            l.split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next().map(str::to_owned))
        })
        .expect("a banner with the address");
    // Keep reading stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let pids = dir.join("pids");
    let body = sleeper_args(&pids).to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        conn,
        "POST /nap HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let group = wait_for_pids(&pids, 2);

    signal(&child, libc::SIGTERM);
    let status = child.wait().expect("the server ends");
    assert_eq!(
        status.code(),
        Some(5),
        "a timed-out drain exits 5: {status}"
    );
    assert_all_gone(&group);
}

/// A binary killed outright runs no handler; on Linux its direct `shell_run`
/// child still goes (`PR_SET_PDEATHSIG`), instead of running on unsupervised.
#[cfg(target_os = "linux")]
#[test]
fn sigkill_to_a_once_run_takes_its_direct_shell_run_child_along() {
    let (dir, exe) = build_sleeper("sigkill_takes_shell_child");
    let pids = dir.join("pids");
    // `exec`: the command itself is the sleeping process.
    let script = format!(
        "echo $$ > {0}.tmp; mv {0}.tmp {0}; exec sleep 120",
        pids.display()
    );
    let mut child = start_once(&exe, &serde_json::json!({ "args": ["-c", script] }));
    let command = wait_for_pids(&pids, 1);
    assert!(alive(command[0]), "the command is running");

    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    assert_all_gone(&command);
}

// ----- keys without another end-to-end test (agentd-compiler/src/keys.rs) -----------

/// A wrapped-shape (`[[workflows]]`) root with one start node per behaviour, calling a
/// child that has two start nodes.
const KEYS_ROOT: &str = r#"
[[workflows]]
name = "keys_e2e"

[workflows.policy.fs]
read = ["DIR/**"]
write = ["DIR/**"]

[[workflows.start_nodes]]
name = "files"
source = "manual"
entry_node = "mkdir"

[[workflows.start_nodes]]
name = "call"
source = "manual"
entry_node = "one"

[[workflows.start_nodes]]
name = "map"
source = "manual"
entry_node = "each"

[[workflows.start_nodes]]
name = "parallel"
source = "manual"
entry_node = "both"

[[workflows.start_nodes]]
name = "retry"
source = "manual"
entry_node = "flaky"

[[workflows.nodes]]
id = "mkdir"
type = "create_dir"
path_from = "trigger.dir"

[[workflows.nodes]]
id = "save"
type = "write_file"
path_from = "trigger.file"
content_from = "trigger.text"

[[workflows.nodes]]
id = "load"
type = "read_file"
path_from = "trigger.file"

[[workflows.nodes]]
id = "one"
type = "call"
workflow = "child.toml"
start = "second"

[[workflows.nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = "child.toml"
start = "second"
max_items = 4

[[workflows.nodes]]
id = "both"
type = "parallel"
branches = [{ workflow = "child.toml", start = "second" }, { workflow = "child.toml" }]

[[workflows.nodes]]
id = "flaky"
type = "read_file"
path_from = "trigger.missing"
retry = { max_attempts = 3, backoff_ms = 400, on = "transient" }

[[workflows.edges]]
from = "mkdir"
to = "save"

[[workflows.edges]]
from = "save"
to = "load"
"#;

const KEYS_CHILD: &str = r#"
name = "keys_child"

[[start_nodes]]
name = "first"
source = "manual"
entry_node = "a"

[[start_nodes]]
name = "second"
source = "manual"
entry_node = "b"

[[nodes]]
id = "a"
type = "template_render"
template = "first"

[[nodes]]
id = "b"
type = "template_render"
template = "second"
"#;

/// Keys no other end-to-end test shows: the wrapped shape, `create_dir`, `read_file`,
/// the child `start` of `call`, `map` and `parallel` branches, and `retry`.
#[test]
fn wrapped_shape_file_nodes_child_starts_and_retry_work_in_a_built_binary() {
    let dir = scratch("keys");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let root = KEYS_ROOT.replace("DIR", &data.display().to_string());
    std::fs::write(dir.join("root.toml"), root).expect("write root");
    std::fs::write(dir.join("child.toml"), KEYS_CHILD).expect("write child");
    let binary = build(&dir, "root.toml", &dir.join("keys"));
    let start = |name: &str, input: Value| {
        let out = run(&binary, &["--start", name, "--input", &input.to_string()]);
        (exit_code(&out), out)
    };

    // create_dir makes the directory write_file needs; read_file reads it back.
    let nested = data.join("a/b");
    let file = nested.join("note.txt");
    let (code, out) = start(
        "files",
        serde_json::json!({"dir": nested, "file": file, "text": "kept"}),
    );
    assert_eq!(code, 0, "{}", text(&out.stderr));
    let outcome = stdout_json(&out);
    assert_eq!(outcome["final_value"]["content"], "kept", "{outcome}");
    assert_eq!(std::fs::read_to_string(&file).expect("written"), "kept");

    // `start` picks the child's second start node; without it, the first.
    let (code, out) = start("call", Value::Null);
    assert_eq!(code, 0, "{}", text(&out.stderr));
    assert_eq!(
        stdout_json(&out)["final_value"]["result"]["rendered"],
        "second"
    );
    let (code, out) = start("map", serde_json::json!({"items": [1, 2]}));
    assert_eq!(code, 0, "{}", text(&out.stderr));
    let results = stdout_json(&out)["final_value"]["results"].clone();
    assert_eq!(results[0]["result"]["rendered"], "second", "{results}");
    assert_eq!(results[1]["result"]["rendered"], "second", "{results}");
    let (code, out) = start("parallel", Value::Null);
    assert_eq!(code, 0, "{}", text(&out.stderr));
    let results = stdout_json(&out)["final_value"]["results"].clone();
    assert_eq!(results[0]["result"]["rendered"], "second", "{results}");
    assert_eq!(results[1]["result"]["rendered"], "first", "{results}");

    // A missing file is a transient error: three attempts, 400 ms then 800 ms apart.
    let began = std::time::Instant::now();
    let (code, out) = start(
        "retry",
        serde_json::json!({"missing": data.join("absent.txt")}),
    );
    let took = began.elapsed();
    assert_ne!(code, 0, "{}", text(&out.stdout));
    assert!(
        took >= std::time::Duration::from_millis(1200),
        "three attempts with backoff took only {took:?}"
    );
}

// ----- output that cannot be written --------------------------------------------

/// A binary whose stdout is `/dev/full` (every write fails with `ENOSPC`) has lost
/// its output: it says so on stderr and exits 5, never 0 (docs/cli.md).
#[test]
fn output_lost_to_a_full_stdout_exits_5_with_a_message() {
    let dir = scratch("dev-full");
    let toml = dir.join("gate.toml");
    std::fs::write(&toml, gate_workflow(&dir.join("out"))).expect("write the workflow");
    let binary = build(&dir, "gate.toml", &dir.join("gate"));
    let cases: [(&[&str], &str); 5] = [
        (&["--dry-run", "--input", "{}"], "the outcome"),
        (&["--version"], "the version"),
        (&["--help"], "the help text"),
        (&["--provenance"], "the provenance"),
        (&["--validate-only"], "the validation report"),
    ];
    for (args, what) in cases {
        // The same command with a working stdout succeeds, so only the lost
        // output can make the exit non-zero below.
        let working = run(&binary, args);
        assert_eq!(
            exit_code(&working),
            0,
            "{args:?}: {}",
            text(&working.stderr)
        );

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full opens for writing");
        let lost = Command::new(&binary)
            .args(args)
            .env_remove("AGENTD_INPUT")
            .env_remove("AGENTD_START")
            .env_remove("AGENTD_DRY_RUN")
            .env_remove("AGENTD_VALIDATE_ONLY")
            .stdout(full)
            .output()
            .expect("the workflow binary runs");
        let stderr = text(&lost.stderr);
        assert_eq!(exit_code(&lost), 5, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("agentd: cannot write {what} to stdout: ")),
            "{args:?}: {stderr}"
        );
    }
}
