//! End-to-end tests of `agentd build --handlers PATH`: custom Rust nodes bound from a
//! user library crate (`handler = "x"` calls `agentd_handlers::x`, the crate's root-level
//! `pub fn x`), plus `agentd check --allow-rust-nodes` / `--handlers`.
//!
//! Each test writes a tiny handler crate depending on this workspace's `agentd-runtime`
//! by absolute path, and a workflow with a `type = "rust"` node. Builds share the cache
//! `<workspace>/target/agentd-cache` with tests/e2e.rs, so they are warm after the first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

/// Serialises builds into the shared cache, so cargo's output stays readable.
static CACHE_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    CACHE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agentd-compiler lives inside the workspace")
        .to_path_buf()
}

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("handlers_e2e")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

fn agentd(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentd"));
    cmd.current_dir(cwd)
        .env("AGENTD_CACHE_DIR", workspace().join("target/agentd-cache"))
        .env_remove("AGENTD_RUNTIME_PATH")
        .arg("--color=never");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn exit_code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

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

/// Write a handler crate `package` with `lib` as its `src/lib.rs` into `dir`.
fn handler_crate(dir: &Path, package: &str, lib: &str) {
    let runtime = workspace().join("agentd-runtime");
    let runtime = runtime.canonicalize().unwrap_or(runtime);
    std::fs::create_dir_all(dir.join("src")).expect("create src");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nagentd-runtime = {{ path = {:?}, default-features = false }}\n",
            runtime.display().to_string()
        ),
    )
    .expect("write Cargo.toml");
    std::fs::write(dir.join("src/lib.rs"), lib).expect("write lib.rs");
}

fn run(binary: &Path, input: &str) -> Output {
    Command::new(binary)
        .args(["--input", input])
        .env_remove("AGENTD_INPUT")
        .env_remove("AGENTD_START")
        .env_remove("AGENTD_DRY_RUN")
        .env_remove("AGENTD_VALIDATE_ONLY")
        .output()
        .expect("the workflow binary runs")
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    })
}

#[test]
fn build_with_handlers_binds_the_crate_and_routes_on_the_handler_label() {
    let dir = scratch("bound");
    handler_crate(&dir.join("handlers"), "triage-handlers", HANDLERS_LIB);
    std::fs::write(dir.join("triage.toml"), workflow("handlers-e2e-triage")).expect("write");

    let binary = dir.join("triage");
    let output = {
        let _guard = lock();
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
        let _guard = lock();
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
