//! End to end: the kernel sandbox of built binaries, against the real kernel
//! and real child processes (docs/security.md).
//!
//! The sandbox is on by default (`best-effort`). These tests need a kernel with
//! Landlock (ABI 1+, TCP ports from ABI 4) and seccomp filters; on one without,
//! they fail naming what is missing (they never skip: a kernel that cannot
//! enforce the policy is exactly what they exist to notice).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::{Scratch, scratch, text};

/// Panics, naming the kernel, when it has no Landlock: the sandbox cannot be
/// checked there, and silently passing would hide it.
fn require_landlock(binary: &Path) {
    let out = Command::new(binary)
        .arg("--print-sandbox")
        .output()
        .expect("--print-sandbox runs");
    let printed = text(&out.stdout);
    let abi = printed
        .lines()
        .find_map(|l| l.strip_prefix("kernel: Landlock ABI "))
        .and_then(|rest| rest.split([';', ' ']).next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        abi >= 4,
        "this kernel reports Landlock ABI {abi}; the sandbox tests need ABI 4 or later \
         (Linux 6.7+ with Landlock enabled):\n{printed}"
    );
}

fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env_remove("AGENTD_SANDBOX")
        .env_remove("AGENTD_POLICY")
        .output()
        .expect("the workflow binary runs")
}

fn outcome(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not an outcome ({e}):\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// `cat` and `sleep` are allowed commands; only `<dir>/allowed` may be read.
fn shell_workflow(dir: &Path) -> String {
    format!(
        r#"name = "sandbox_shell"

[policy.fs]
read = ["{dir}/allowed/**"]

[policy.shell]
commands = ["/usr/bin/cat", "/usr/bin/sleep"]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "cat"

[[start_nodes]]
name = "nap"
source = "event"
entry_node = "sleep"

[[nodes]]
id = "cat"
type = "shell_run"
command = "/usr/bin/cat"
args_from = "trigger.args"
timeout_secs = 10

[[nodes]]
id = "sleep"
type = "shell_run"
command = "/usr/bin/sleep"
args_from = "trigger.args"
timeout_secs = 30
"#,
        dir = dir.display()
    )
}

fn build_shell(test: &str) -> (Scratch, PathBuf) {
    let dir = scratch(test);
    std::fs::create_dir_all(dir.join("allowed")).expect("mkdir allowed");
    std::fs::write(dir.join("allowed/in.txt"), "inside\n").expect("write inside");
    std::fs::write(dir.join("secret.txt"), "outside\n").expect("write outside");
    std::fs::write(dir.join("shell.toml"), shell_workflow(&dir)).expect("write workflow");
    let binary = dir.join("sandbox-shell");
    support::agentd_build(&dir, "shell.toml", &binary, &[]);
    require_landlock(&binary);
    (dir, binary)
}

#[test]
fn shell_run_cat_outside_the_fs_policy_is_refused_by_the_kernel_and_allowed_with_sandbox_off() {
    let (dir, binary) = build_shell("shell_cat");
    let inside = dir.join("allowed/in.txt").display().to_string();
    let outside = dir.join("secret.txt").display().to_string();
    let input = |path: &str| format!(r#"{{"args": ["{path}"]}}"#);

    let ok = outcome(&run(&binary, &["--input", &input(&inside)]));
    assert_eq!(ok["final_value"]["exit_code"], 0, "{ok}");
    assert_eq!(ok["final_value"]["stdout"], "inside\n", "{ok}");

    // The command is allowed and the in-process fs policy does not see its
    // arguments: only the kernel stands between `cat` and the file.
    let denied = outcome(&run(&binary, &["--input", &input(&outside)]));
    let stderr = denied["final_value"]["stderr"].as_str().unwrap_or_default();
    assert_eq!(denied["final_value"]["exit_code"], 1, "{denied}");
    assert!(stderr.contains("Permission denied"), "{denied}");
    assert_eq!(denied["final_value"]["stdout"], "", "{denied}");

    let off = outcome(&run(
        &binary,
        &["--sandbox=off", "--input", &input(&outside)],
    ));
    assert_eq!(off["final_value"]["exit_code"], 0, "{off}");
    assert_eq!(off["final_value"]["stdout"], "outside\n", "{off}");

    // The environment twin says the same.
    let off_env = Command::new(&binary)
        .env("AGENTD_SANDBOX", "off")
        .args(["--input", &input(&outside)])
        .output()
        .expect("runs");
    assert_eq!(outcome(&off_env)["final_value"]["stdout"], "outside\n");
}

fn status_fields(pid: u32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (field("Seccomp:"), field("NoNewPrivs:"))
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn a_running_binary_and_its_child_show_seccomp_filter_mode_and_no_new_privs() {
    let (_dir, binary) = build_shell("proc_status");
    let mut child = Command::new(&binary)
        .args(["--start", "nap", "--input", r#"{"args": ["5"]}"#])
        .env_remove("AGENTD_SANDBOX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let pid = child.id();
    // Wait until `sleep` runs: the sandbox is on by then (it goes on before any node).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sleeper = None;
    while Instant::now() < deadline && sleeper.is_none() {
        sleeper = children_of(pid).first().copied();
        std::thread::sleep(Duration::from_millis(50));
    }
    let (seccomp, nnp) = status_fields(pid);
    let child_fields = sleeper.map(status_fields);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seccomp, "2", "Seccomp: of the running binary");
    assert_eq!(nnp, "1", "NoNewPrivs: of the running binary");
    assert_eq!(
        child_fields,
        Some(("2".to_owned(), "1".to_owned())),
        "the shell_run child inherits the filter"
    );
}

#[test]
fn print_sandbox_shows_the_rules_and_explain_sandbox_shows_the_same_ones_at_build_time() {
    let (dir, binary) = build_shell("print_explain");
    let printed = text(&run(&binary, &["--print-sandbox"]).stdout);
    let explained = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(&dir)
        .args(["check", "--explain-sandbox", "shell.toml"])
        .output()
        .expect("agentd check runs");
    assert!(explained.status.success(), "{}", text(&explained.stderr));
    let explained = text(&explained.stdout);
    let allowed = format!("{}/allowed", dir.display());
    for expected in [
        format!("  read                 {allowed}  # [policy.fs] read \"{allowed}/**\""),
        "  exec                 /usr/bin/cat  # [policy.shell] \"/usr/bin/cat\"".to_owned(),
        "landlock tcp connect: no port (ABI 4+)".to_owned(),
    ] {
        assert!(
            printed.contains(&expected),
            "--print-sandbox lacks {expected:?}:\n{printed}"
        );
        assert!(
            explained.contains(&expected),
            "--explain-sandbox lacks {expected:?}:\n{explained}"
        );
    }
    // The seccomp allow-list is computed from the same features on both sides.
    let seccomp = |t: &str| -> Vec<String> {
        t.lines()
            .skip_while(|l| !l.starts_with("seccomp:"))
            .take_while(|l| l.starts_with("seccomp:") || l.starts_with("  "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(seccomp(&printed), seccomp(&explained));
    assert!(seccomp(&printed)[0].contains("(base, exec)"), "{printed}");
    assert!(
        !printed.contains(" socket "),
        "no network capability, no socket:\n{printed}"
    );
    // The runtime's own needs are added at start, and only there.
    assert!(printed.contains("/dev/null  # runtime"), "{printed}");
    assert!(!explained.contains("/dev/null  # runtime"), "{explained}");
}

/// A custom Rust node with a bug: it opens a TCP connection although the
/// workflow declares no network capability.
const LEAKY_HANDLER: &str = r#"//! A handler that tries to reach the network.
use agentd_runtime::Cx;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::serde_json::{Value, json};

pub fn leak(_cx: &Cx<'_>, input: &Value) -> Result<NodeOutput, NodeError> {
    let addr = input.get("addr").and_then(Value::as_str).unwrap_or("127.0.0.1:9");
    Ok(NodeOutput::value(match std::net::TcpStream::connect(addr) {
        Ok(_) => json!({ "connected": true }),
        Err(e) => json!({ "connected": false, "error": e.to_string() }),
    }))
}
"#;

#[test]
fn a_workflow_without_network_capability_cannot_open_a_socket_even_through_a_buggy_rust_node() {
    let dir = scratch("no_socket");
    support::build::handler_crate(&dir.join("handlers"), "leaky-handlers", LEAKY_HANDLER);
    std::fs::write(
        dir.join("leak.toml"),
        "name = \"sandbox_leak\"\n\n[policy]\n\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\n\
         [[nodes]]\nid = \"leak\"\ntype = \"rust\"\nhandler = \"leak\"\ninput_from = \"trigger\"\n",
    )
    .expect("write workflow");
    let binary = dir.join("sandbox-leak");
    support::agentd_build(&dir, "leak.toml", &binary, &["--handlers", "handlers"]);
    require_landlock(&binary);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local listener");
    let addr = listener.local_addr().expect("its address").to_string();
    let input = format!(r#"{{"addr": "{addr}"}}"#);

    let sandboxed = outcome(&run(&binary, &["--input", &input]));
    assert_eq!(sandboxed["final_value"]["connected"], false, "{sandboxed}");
    assert!(
        sandboxed["final_value"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Operation not permitted (os error 1)")),
        "socket(2) fails with EPERM from the seccomp filter: {sandboxed}"
    );

    // The control: the same node connects when the binary runs unsandboxed.
    let off = outcome(&run(&binary, &["--sandbox=off", "--input", &input]));
    assert_eq!(off["final_value"]["connected"], true, "{off}");
}

fn wait_for_line(log: &Path, needle: &str, from: usize) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().skip(from).find(|l| l.contains(needle)) {
            return Some(line.to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn line_count(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count()
}

/// Rewrite the policy file and touch the reload file (a new mtime and size).
fn reload_with(dir: &Path, policy: &str, n: usize) {
    std::fs::write(dir.join("conf/policy.toml"), policy).expect("write policy");
    std::fs::write(dir.join("conf/reload"), "x".repeat(n)).expect("touch reload");
}

#[test]
fn a_policy_reload_that_would_widen_the_sandbox_is_refused_and_one_that_narrows_is_taken() {
    let dir = scratch("reload");
    // The directories of the policy and reload files are readable (reloads
    // re-read them), so they live apart from the directories the policy names.
    for sub in ["a/sub", "b", "conf"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let d = dir.display();
    std::fs::write(
        dir.join("serve.toml"),
        format!(
            "name = \"sandbox_reload\"\n\n[policy.fs]\nread = [\"{d}/a/**\"]\n\n\
             [[start_nodes]]\nname = \"hello\"\nsource = \"http\"\nentry_node = \"hello\"\n\n\
             [[http_routes]]\nmethod = \"POST\"\npath = \"/hello\"\nstart_node = \"hello\"\n\n\
             [[nodes]]\nid = \"hello\"\ntype = \"template_render\"\ntemplate = \"hi\"\ninput_from = \"trigger\"\n"
        ),
    )
    .expect("write workflow");
    let binary = dir.join("sandbox-reload");
    support::agentd_build(&dir, "serve.toml", &binary, &["--policy-overrides"]);
    require_landlock(&binary);

    std::fs::write(
        dir.join("conf/policy.toml"),
        format!("[policy.fs]\nread = [\"{d}/a/**\"]\n"),
    )
    .expect("write policy");
    std::fs::write(dir.join("conf/reload"), "").expect("write reload file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let log = dir.join("serve.log");
    let mut server = Command::new(&binary)
        .current_dir(&dir)
        .args(["--mode", "serve", "--bind", &format!("127.0.0.1:{port}")])
        .args([
            "--policy",
            "conf/policy.toml",
            "--reload-file",
            "conf/reload",
        ])
        .args(["--log-level", "info"])
        .env_remove("AGENTD_SANDBOX")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create the log"))
        .spawn()
        .expect("the server starts");
    let applied = wait_for_line(&log, "sandbox.applied", 0);
    // The watcher takes its first stamp before it says so.
    let _ = wait_for_line(&log, "reload_file.watching", 0);
    std::thread::sleep(Duration::from_millis(300));

    let before = line_count(&log);
    reload_with(
        &dir,
        &format!("[policy.fs]\nread = [\"{d}/a/**\", \"{d}/b/**\"]\n"),
        1,
    );
    let widened = wait_for_line(&log, "reload.failed", before);

    let before = line_count(&log);
    reload_with(
        &dir,
        &format!("[policy.fs]\nread = [\"{d}/a/sub/**\"]\n"),
        2,
    );
    let narrowed = wait_for_line(&log, "reload.policy", before);
    let after_narrow = std::fs::read_to_string(&log).unwrap_or_default();

    let _ = server.kill();
    let _ = server.wait();
    let full = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        applied
            .as_deref()
            .is_some_and(|l| l.contains("fully enforced")),
        "the server applied the sandbox:\n{full}"
    );
    let widened = widened.unwrap_or_else(|| panic!("no reload.failed:\n{full}"));
    assert!(widened.contains("component=\"policy\""), "{widened}");
    assert!(widened.contains("widens the sandbox"), "{widened}");
    assert!(widened.contains(&format!("`{d}/b`")), "{widened}");
    assert!(
        narrowed.is_some(),
        "the narrower policy is taken:\n{after_narrow}"
    );
}

#[test]
fn sandbox_mode_off_compiles_no_sandbox_and_enforce_then_refuses_to_start() {
    let dir = scratch("mode_off");
    std::fs::write(dir.join("secret.txt"), "outside\n").expect("write outside");
    let workflow = shell_workflow(&dir) + "\n[sandbox]\nmode = \"off\"\n";
    std::fs::write(dir.join("off.toml"), workflow).expect("write workflow");
    let binary = dir.join("sandbox-off");
    support::agentd_build(&dir, "off.toml", &binary, &[]);

    let printed = text(&run(&binary, &["--print-sandbox"]).stdout);
    assert!(printed.starts_with("sandbox mode: off\n"), "{printed}");
    assert!(printed.contains("sandbox compiled in: no"), "{printed}");
    // Nothing stands between `cat` and the file but the in-process policy.
    let input = format!(r#"{{"args": ["{}"]}}"#, dir.join("secret.txt").display());
    let off = outcome(&run(&binary, &["--input", &input]));
    assert_eq!(off["final_value"]["stdout"], "outside\n", "{off}");

    // Asking for enforcement of a sandbox that is not there refuses to start.
    let enforce = run(&binary, &["--sandbox", "enforce", "--input", &input]);
    assert_eq!(enforce.status.code(), Some(5), "{}", text(&enforce.stderr));
    assert!(
        text(&enforce.stderr).contains("refusing to start: sandbox (mode enforce)"),
        "{}",
        text(&enforce.stderr)
    );
    assert!(enforce.stdout.is_empty(), "nothing ran");
}
