//! Tests of `shell_run` with real processes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::context::testing::{TestRun, path};
use crate::policy::{Policy, ShellPolicy};

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn cfg(command: &'static str, args: bool, timeout_secs: u64) -> &'static ShellRun {
    leak(ShellRun {
        command,
        args_from: args.then(|| path("trigger.args")),
        timeout_secs,
    })
}

fn sh(script: &str) -> TestRun {
    TestRun::new(json!({ "args": ["-c", script] }))
}

fn output(step: Result<Step, Error>) -> (Value, Option<String>) {
    match step {
        Ok(Step::Continue { value, branch }) => (value, branch.as_deref().map(str::to_owned)),
        other => panic!("expected output, got {other:?}"),
    }
}

fn err_text<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn shell_policy(commands: &[&str]) -> Policy {
    let list: Vec<Cow<'static, str>> = commands
        .iter()
        .map(|c| Cow::Owned((*c).to_owned()))
        .collect();
    Policy {
        shell: ShellPolicy {
            commands: list.into(),
        },
        ..Policy::DENY_ALL
    }
}

fn canonical(p: &str) -> String {
    std::fs::canonicalize(p)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether process `pid` still exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name.
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(|c| c != 'Z' && c != 'X'))
        })
        .unwrap_or(false)
}

/// Poll until `pid` is gone; false if it is still alive after a generous
/// bound (a hang guard, not a timing assertion).
fn gone_eventually(pid: u32) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentd-shell-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::create_dir_all(&dir);
        Self(dir)
    }

    fn file(&self, name: &str) -> &'static str {
        Box::leak(
            self.0
                .join(name)
                .to_string_lossy()
                .into_owned()
                .into_boxed_str(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_successful_command_reports_its_output_and_no_branch() {
    let mut run = TestRun::new(json!({ "args": ["hello", "wide world"] }));
    let (value, branch) = output(shell_run(&run.cx(), cfg("/bin/echo", true, 30)));
    assert_eq!(branch, None);
    assert_eq!(value["command"], json!(canonical("/bin/echo")));
    assert_eq!(value["args"], json!(["hello", "wide world"]));
    assert_eq!(value["exit_code"], json!(0));
    assert_eq!(value["signal"], Value::Null);
    assert_eq!(value["stdout"], json!("hello wide world\n"));
    assert_eq!(value["stderr"], json!(""));
    assert_eq!(value["truncated"], json!(false));
    assert_eq!(value["timed_out"], json!(false));
    assert!(value["duration_ms"].is_u64(), "{value}");
    let keys: Vec<&String> = value
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "args",
            "command",
            "duration_ms",
            "exit_code",
            "signal",
            "stderr",
            "stdout",
            "timed_out",
            "truncated"
        ]
    );
}

#[test]
fn a_non_zero_exit_takes_the_error_branch() {
    let mut run = sh("echo oops >&2; exit 3");
    let (value, branch) = output(shell_run(&run.cx(), cfg("/bin/sh", true, 30)));
    assert_eq!(branch.as_deref(), Some("error"));
    assert_eq!(value["exit_code"], json!(3));
    assert_eq!(value["signal"], Value::Null);
    assert_eq!(value["stderr"], json!("oops\n"));
}

#[test]
fn a_signal_takes_the_error_branch() {
    let mut run = sh("kill -TERM $$");
    let (value, branch) = output(shell_run(&run.cx(), cfg("/bin/sh", true, 30)));
    assert_eq!(branch.as_deref(), Some("error"));
    assert_eq!(value["exit_code"], json!(-1));
    assert_eq!(value["signal"], json!(libc::SIGTERM));
    assert_eq!(value["timed_out"], json!(false));
}

#[test]
fn the_environment_is_cleared_to_path_and_lang() {
    let mut run = TestRun::new(Value::Null);
    let (value, _) = output(shell_run(&run.cx(), cfg("/usr/bin/env", false, 30)));
    let mut lines: Vec<&str> = value["stdout"].as_str().unwrap_or("").lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["LANG=C.UTF-8", &format!("PATH={CHILD_PATH}")]);
}

#[test]
fn stdin_is_empty() {
    let mut run = sh("cat; echo end");
    let (value, _) = output(shell_run(&run.cx(), cfg("/bin/sh", true, 30)));
    assert_eq!(value["stdout"], json!("end\n"));
}

#[test]
fn output_is_capped_and_the_child_is_never_blocked_by_a_full_pipe() {
    // 1 MiB on each stream: far more than a pipe buffer and the cap.
    let mut run =
        sh("head -c 1048576 /dev/zero | tr '\\0' a; head -c 1048576 /dev/zero >&2; echo done >&2");
    let (value, branch) = output(shell_run(&run.cx(), cfg("/bin/sh", true, 60)));
    assert_eq!(
        branch,
        None,
        "{}",
        value["stderr"].as_str().map(str::len).unwrap_or(0)
    );
    assert_eq!(value["exit_code"], json!(0));
    assert_eq!(value["truncated"], json!(true));
    assert_eq!(value["stdout"].as_str().map(str::len), Some(OUTPUT_CAP));
    assert!(
        value["stdout"]
            .as_str()
            .is_some_and(|s| s.bytes().all(|b| b == b'a'))
    );
    assert_eq!(value["stderr"].as_str().map(str::len), Some(OUTPUT_CAP));
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    // The shell prints its background child's pid, then waits on a sleep.
    let mut run = sh("sleep 100 & echo $!; sleep 100");
    let (value, branch) = output(shell_run(&run.cx(), cfg("/bin/sh", true, 1)));
    assert_eq!(branch.as_deref(), Some("error"));
    assert_eq!(value["timed_out"], json!(true));
    assert_eq!(value["signal"], json!(libc::SIGKILL));
    assert_eq!(value["exit_code"], json!(-1));
    let grandchild: u32 = value["stdout"]
        .as_str()
        .and_then(|s| s.trim().parse().ok())
        .expect("the shell printed the background pid");
    assert!(
        gone_eventually(grandchild),
        "grandchild {grandchild} survived the timeout"
    );
}

#[test]
fn background_leftovers_are_killed_when_the_command_exits() {
    // Without the group kill the sleep would keep running, holding stdout.
    let mut run = sh("sleep 100 & echo $!");
    let (value, branch) = output(shell_run(&run.cx(), cfg("/bin/sh", true, 300)));
    assert_eq!(branch, None);
    assert_eq!(value["timed_out"], json!(false));
    let grandchild: u32 = value["stdout"]
        .as_str()
        .and_then(|s| s.trim().parse().ok())
        .expect("the shell printed the background pid");
    assert!(
        gone_eventually(grandchild),
        "grandchild {grandchild} was left running"
    );
}

#[test]
fn the_policy_sees_the_canonical_path_so_symlinks_cannot_escape() {
    let scratch = Scratch::new();
    let link = scratch.file("innocent");
    std::os::unix::fs::symlink("/bin/sh", link).expect("symlink");
    let target = canonical("/bin/sh");
    let mut run = sh("exit 0").with_policy(shell_policy(&[link]));
    assert_eq!(
        err_text(shell_run(&run.cx(), cfg(link, true, 30))),
        format!(
            "policy violation: shell_run command `{target}` not covered by any allowlist pattern"
        )
    );
    let mut run = sh("exit 0").with_policy(shell_policy(&[&target]));
    assert!(shell_run(&run.cx(), cfg(link, true, 30)).is_ok());
    let mut run = sh("exit 0").with_policy(Policy::DENY_ALL);
    assert_eq!(
        err_text(shell_run(&run.cx(), cfg("/bin/sh", true, 30))),
        "policy violation: shell_run denied: no `shell.commands` allowlist configured"
    );
}

#[test]
fn dry_run_checks_everything_but_runs_nothing() {
    let scratch = Scratch::new();
    let marker = scratch.file("ran");
    let mut run = TestRun::new(json!({ "args": [marker] })).dry();
    let (value, branch) = output(shell_run(&run.cx(), cfg("/usr/bin/touch", true, 30)));
    assert_eq!(branch, None);
    assert_eq!(
        value,
        json!({"command": canonical("/usr/bin/touch"), "args": [marker], "dry_run": true})
    );
    assert!(!std::path::Path::new(marker).exists());
    // The command must exist even in dry-run, and the policy still applies.
    assert!(
        err_text(shell_run(&run.cx(), cfg("/no/such/command", true, 30)))
            .starts_with("tool `shell_run` failed: command `/no/such/command`: ")
    );
    let mut run = TestRun::new(json!({ "args": [] }))
        .dry()
        .with_policy(Policy::DENY_ALL);
    assert!(
        err_text(shell_run(&run.cx(), cfg("/usr/bin/touch", true, 30)))
            .starts_with("policy violation")
    );
}

#[test]
fn commands_must_be_absolute_paths() {
    let mut run = TestRun::new(Value::Null);
    assert_eq!(
        err_text(shell_run(&run.cx(), cfg("echo", false, 30))),
        "tool `shell_run` failed: command `echo` must be an absolute path"
    );
    assert_eq!(
        err_text(loop_shell(&run.cx(), &json!({"command": "bin/sh"}))),
        "tool `shell_run` failed: command `bin/sh` must be an absolute path"
    );
}

#[test]
fn args_must_be_an_array_of_strings() {
    let mut run = TestRun::new(json!({ "args": "-c true" }));
    assert_eq!(
        err_text(shell_run(&run.cx(), cfg("/bin/sh", true, 30))),
        "tool `shell_run` failed: `trigger.args` must be an array of strings; got string"
    );
    let mut run = TestRun::new(json!({ "args": ["-c", 1] }));
    assert_eq!(
        err_text(shell_run(&run.cx(), cfg("/bin/sh", true, 30))),
        "tool `shell_run` failed: `trigger.args` element 1 must be a string; got number"
    );
    // Unset or null: no arguments.
    for input in [json!({}), json!({ "args": null })] {
        let mut run = TestRun::new(input);
        let (value, _) = output(shell_run(&run.cx(), cfg("/bin/echo", true, 30)));
        assert_eq!(value["args"], json!([]));
        assert_eq!(value["stdout"], json!("\n"));
    }
}

#[test]
fn a_command_that_cannot_be_executed_is_a_hard_tool_error() {
    let scratch = Scratch::new();
    let file = scratch.file("not-executable");
    std::fs::write(file, "#!/bin/sh\n").expect("write");
    let mut run = TestRun::new(Value::Null);
    let text = err_text(shell_run(&run.cx(), cfg(file, false, 30)));
    assert!(
        text.starts_with(&format!("tool `shell_run` failed: spawn `{file}`: ")),
        "{text}"
    );
}

#[test]
fn under_a_test_harness_shell_run_is_a_stub() {
    let mut run = TestRun::new(Value::Null);
    run.shared.stub_unavailable = true;
    assert_eq!(
        shell_run(&run.cx(), cfg("/bin/false", false, 30)).ok(),
        Some(Step::value(json!({"stub": "merge"})))
    );
}

#[test]
fn loop_shell_runs_the_command_and_returns_failures_as_data() {
    let mut run = TestRun::new(Value::Null);
    let value = loop_shell(
        &run.cx(),
        &json!({"command": "/bin/sh", "args": ["-c", "echo hi; exit 4"]}),
    )
    .expect("an outcome");
    assert_eq!(value["exit_code"], json!(4));
    assert_eq!(value["stdout"], json!("hi\n"));
    assert_eq!(
        err_text(loop_shell(&run.cx(), &json!({"args": []}))),
        "tool `shell_run` failed: argument `command` must be a string"
    );
    assert_eq!(
        err_text(loop_shell(
            &run.cx(),
            &json!({"command": "/bin/echo", "args": [true]})
        )),
        "tool `shell_run` failed: `args` element 0 must be a string; got bool"
    );
}
