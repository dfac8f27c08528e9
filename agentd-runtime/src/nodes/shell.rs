//! `shell_run` (feature `shell`, Unix, docs/dialect.md §7 `shell_run`) and the `agent_loop`
//! tool of the same name.
//!
//! Order is the dialect's: absolute-path check → canonicalise (the command
//! must exist, even in dry-run) → `[policy.shell]` on the canonical path →
//! resolve `args_from` → dry-run → spawn. The child gets argv only (never a
//! shell), a cleared environment holding just [`CHILD_PATH`] and
//! `LANG=C.UTF-8`, stdin from `/dev/null`, the binary's working directory,
//! and its own process group. stdout and stderr are drained concurrently,
//! each kept up to [`OUTPUT_CAP`] bytes (`truncated` when more came; the
//! rest is still read so the child never blocks on a full pipe).
//!
//! `timeout_secs` (default 30, at least 1) ends the run with `SIGKILL` to
//! the whole process group (`signal: 9`, `timed_out: true`, branch
//! `error`). **Beyond dialect 1:** when the command exits by itself, what
//! is left of its process group (background grandchildren) is killed too,
//! so a node never leaves processes behind and never waits on a pipe a
//! grandchild holds open. The group is killed before the command is
//! reaped, so its id cannot have been reused.
//!
//! **Beyond dialect 1:** commands do not outlive the binary. Every running
//! group is listed (lock-free slots, readable from a signal handler) from
//! spawn until its leader is dead, and [`kill_running`] kills them all: a
//! once-mode binary calls it from its SIGINT/SIGTERM/SIGHUP handler
//! ([`kill_running_on_fatal_signals`]) before dying of the signal, and a
//! server calls it when its drain times out, before exiting. (A child in its
//! own group gets no terminal Ctrl-C and outlives a parent that dies of one.)
//!
//! On Linux the command also gets `PR_SET_PDEATHSIG = SIGKILL`, so a binary
//! killed outright (no handler runs) does not leave its direct child behind.
//!
//! This module holds the feature's only `unsafe`: `waitid` (exit without
//! reaping), `kill` on the group, the signal handler's installation and the
//! `prctl` between fork and exec, each with a `SAFETY:` note. It must never run a command before the policy gate,
//! never in dry-run, and never through a shell.

#![allow(unsafe_code)]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::policy::Decision;

/// `PATH` of every child (docs/dialect.md §7 `shell_run`).
pub const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes kept of stdout and of stderr (64 KiB each).
pub const OUTPUT_CAP: usize = 64 * 1024;

/// `timeout_secs` when the node sets none.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// How long to wait for the output pipes to close once the process group
/// is gone. Only a process that left the group (`setsid`) can hold them
/// open longer; its output is then cut off, never waited for.
const PIPE_GRACE: Duration = Duration::from_secs(2);

const TOOL: &str = "shell_run";

/// `shell_run` config, baked by the compiler.
#[derive(Debug)]
pub struct ShellRun {
    /// The command, an absolute path as written.
    pub command: &'static str,
    /// `args_from`: an array of strings; unset or `null` = no arguments.
    pub args_from: Option<CtxPath>,
    /// `timeout_secs` (default [`DEFAULT_TIMEOUT_SECS`]; 0 counts as 1).
    pub timeout_secs: u64,
}

/// `shell_run`: output `{"command", "args", "exit_code", "signal",
/// "stdout", "stderr", "truncated", "timed_out", "duration_ms"}`; branch
/// `error` on a non-zero exit, a signal or a timeout. Dry-run:
/// `{"command": <canonical>, "args", "dry_run": true}`.
///
/// # Errors
///
/// A relative or missing command, bad `args_from`, a spawn failure
/// (`Tool`); a denial (`Policy`).
pub fn shell_run(cx: &Cx<'_>, cfg: &'static ShellRun) -> Result<Step, Error> {
    // The conformance harness and fixture runner of dialect 1 run without
    // `tools-shell`: there `shell_run` answers the stub (docs/cli.md "agentd test").
    if cx.stub_unavailable() {
        return super::unavailable(cx);
    }
    let command = gate(cx, cfg.command)?;
    let args = match &cfg.args_from {
        Some(path) => string_args(cx.resolve(path), path.text)?,
        None => Vec::new(),
    };
    let (value, failed) = execute(cx, &command, args, cfg.timeout_secs)?;
    Ok(if failed {
        Step::branch(value, "error")
    } else {
        Step::value(value)
    })
}

/// The `shell_run` tool of `agent_loop` (docs/dialect.md §7 `agent_loop`): args `{"command",
/// "args"?}` with an absolute command path. Same checks, gate and dry-run
/// as the node; returns the node's output value (a failed command is data,
/// not an error). The timeout is the default, 30 s.
///
/// # Errors
///
/// Malformed args and everything [`shell_run`] fails with.
#[allow(dead_code, reason = "called by agent_loop")]
pub(crate) fn loop_shell(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
    let command = args
        .get("command")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::tool(TOOL, "argument `command` must be a string"))?;
    let command = gate(cx, command)?;
    let argv = string_args(args.get("args"), "args")?;
    execute(cx, &command, argv, DEFAULT_TIMEOUT_SECS).map(|(value, _)| value)
}

/// Absolute-path check, canonicalisation, policy: the canonical path.
fn gate(cx: &Cx<'_>, command: &str) -> Result<String, Error> {
    if !Path::new(command).is_absolute() {
        return Err(Error::tool(
            TOOL,
            format!("command `{command}` must be an absolute path"),
        ));
    }
    let canonical = std::fs::canonicalize(command)
        .map_err(|e| Error::tool(TOOL, format!("command `{command}`: {e}")))?;
    let canonical = canonical.to_str().ok_or_else(|| {
        Error::tool(
            TOOL,
            format!("command `{command}` resolves to a path that is not UTF-8"),
        )
    })?;
    match cx.policy().map(|p| p.check_shell(canonical)) {
        None | Some(Decision::Allow) => Ok(canonical.to_owned()),
        Some(Decision::Deny(reason)) => Err(Error::Policy(reason)),
    }
}

/// `args_from`: unset or `null` = none; otherwise an array of strings.
fn string_args(value: Option<&Value>, what: &str) -> Result<Vec<String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(Error::tool(
                    TOOL,
                    format!(
                        "`{what}` element {i} must be a string; got {}",
                        crate::context::type_name(other)
                    ),
                )),
            })
            .collect(),
        Some(other) => Err(Error::tool(
            TOOL,
            format!(
                "`{what}` must be an array of strings; got {}",
                crate::context::type_name(other)
            ),
        )),
    }
}

/// Dry-run placeholder or a real run of `command`: the output value and
/// whether the run failed (non-zero exit, signal or timeout).
fn execute(
    cx: &Cx<'_>,
    command: &str,
    args: Vec<String>,
    timeout_secs: u64,
) -> Result<(Value, bool), Error> {
    if cx.dry_run() {
        let value = json!({ "command": command, "args": args, "dry_run": true });
        return Ok((value, false));
    }
    let timeout = Duration::from_secs(timeout_secs.max(1));
    let ran = run(command, &args, timeout)?;
    let failed = ran.exit_code != 0 || ran.signal.is_some();
    let value = json!({
        "command": command,
        "args": args,
        "exit_code": ran.exit_code,
        "signal": ran.signal,
        "stdout": String::from_utf8_lossy(&ran.stdout.bytes),
        "stderr": String::from_utf8_lossy(&ran.stderr.bytes),
        "truncated": ran.stdout.truncated || ran.stderr.truncated,
        "timed_out": ran.timed_out,
        "duration_ms": u64::try_from(ran.duration.as_millis()).unwrap_or(u64::MAX),
    });
    Ok((value, failed))
}

/// What one run produced.
#[derive(Debug)]
struct Ran {
    exit_code: i32,
    signal: Option<i32>,
    stdout: Captured,
    stderr: Captured,
    timed_out: bool,
    duration: Duration,
}

/// One output stream: the first [`OUTPUT_CAP`] bytes, and whether more
/// came.
#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

fn run(command: &str, args: &[String], timeout: Duration) -> Result<Ran, Error> {
    let started = Instant::now();
    let mut cmd = Command::new(command);
    die_with_parent(&mut cmd);
    let mut child = cmd
        .args(args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout can kill everything it started.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::tool(TOOL, format!("spawn `{command}`: {e}")))?;
    let pid = child.id();
    let listed = Listed::new(pid);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let stdout = child.stdout.take().map(|s| drain(s, done_tx.clone()));
    let stderr = child.stderr.take().map(|s| drain(s, done_tx.clone()));
    drop(done_tx);

    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        wait_exit_without_reaping(pid);
        let _ = exit_tx.send(());
    });
    let timed_out = match exit_rx.recv_timeout(timeout) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => false,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            kill_group(pid);
            // SIGKILL cannot be caught; the exit follows.
            let _ = exit_rx.recv();
            true
        }
    };
    // The leader is a zombie now (not reaped), so `pid` still names this
    // group: killing it cannot hit an unrelated process.
    kill_group(pid);
    // Unlisted before the reap, so a listed id never names a reused pid.
    drop(listed);
    let status = child
        .wait()
        .map_err(|e| Error::tool(TOOL, format!("wait for `{command}`: {e}")))?;

    // Both pipes close once every holder is dead; a process that escaped
    // the group is not waited for beyond the grace period.
    let grace_end = Instant::now() + PIPE_GRACE;
    let expected = usize::from(stdout.is_some()) + usize::from(stderr.is_some());
    for _ in 0..expected {
        let left = grace_end.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let take = |c: Option<Arc<Mutex<Captured>>>| {
        c.map(|c| std::mem::take(&mut *c.lock().unwrap_or_else(PoisonError::into_inner)))
            .unwrap_or_default()
    };
    Ok(Ran {
        exit_code: status.code().unwrap_or(-1),
        signal: status.signal(),
        stdout: take(stdout),
        stderr: take(stderr),
        timed_out,
        duration: started.elapsed(),
    })
}

/// Linux: the command gets `SIGKILL` when the thread that started it dies, so a
/// binary killed outright (`SIGKILL`, the OOM killer), which can run no
/// handler, does not leave it running. The starting thread is the one waiting
/// for the command in [`run`], so it lives exactly as long as the node needs.
/// (What the command itself starts is not covered: only the direct child gets
/// the signal.)
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, so it may only
    // make async-signal-safe calls: `prctl`, `getppid` and `raise` are. It touches
    // no memory but the copied `parent` id.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before prctl: then nobody will signal us.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Read `stream` to its end on a thread, keeping the first [`OUTPUT_CAP`]
/// bytes; signals `done` at EOF or on a read error.
fn drain(mut stream: impl Read + Send + 'static, done: mpsc::Sender<()>) -> Arc<Mutex<Captured>> {
    let captured = Arc::new(Mutex::new(Captured::default()));
    let sink = Arc::clone(&captured);
    std::thread::spawn(move || {
        let mut buf = [0_u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut c = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    let room = OUTPUT_CAP.saturating_sub(c.bytes.len());
                    c.bytes.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        c.truncated = true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
    captured
}

/// Block until process `pid` (our child) has exited, leaving it unreaped.
fn wait_exit_without_reaping(pid: u32) {
    let id = libc::id_t::from(pid);
    loop {
        // SAFETY: `info` is a zeroed, properly aligned `siginfo_t` that
        // outlives the call; `waitid` only writes into it. `pid` is our own
        // child, which std has not reaped yet (only `child.wait()` below
        // reaps it), and WNOWAIT leaves it unreaped.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// How many running commands [`kill_running`] can reach; one more still
/// runs (and is still killed by its own timeout), it is just not listed.
const MAX_LISTED: usize = 256;

/// Process-group ids of the commands running now (0 = free slot).
static RUNNING: [AtomicI32; MAX_LISTED] = [const { AtomicI32::new(0) }; MAX_LISTED];

/// A slot of [`RUNNING`] held from spawn until the leader is dead, unreaped.
struct Listed(Option<&'static AtomicI32>);

impl Listed {
    fn new(pid: u32) -> Self {
        let Ok(pgid) = i32::try_from(pid) else {
            return Self(None);
        };
        Self(RUNNING.iter().find(|slot| {
            slot.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        }))
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            slot.store(0, Ordering::SeqCst);
        }
    }
}

/// `SIGKILL` to the process group of every running command. Only atomic
/// loads and `kill`, so a signal handler may call it.
pub fn kill_running() {
    for slot in &RUNNING {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 1 {
            // SAFETY: `kill` takes plain integers and touches no memory of
            // ours. A listed group's leader is alive or an unreaped zombie
            // (it is unlisted before the reap), so `-pgid` is that group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Once mode: on SIGINT, SIGTERM or SIGHUP, kill the running commands'
/// groups, then die of the same signal (default disposition, re-raised), as
/// the binary would have without the handler. A signal the process was
/// started with ignored (`nohup`) stays ignored. Not for serve mode, whose
/// SIGTERM/SIGINT start a drain.
pub fn kill_running_on_fatal_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: both `sigaction` structs are zeroed locals that outlive the
        // calls; the first call only reads the current action. The handler
        // is an `extern "C" fn(c_int)` that only does async-signal-safe work
        // (atomic loads, `kill`, `signal`, `raise`).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    kill_running();
    // SAFETY: `signal` and `raise` are async-signal-safe; restoring the
    // default action and re-raising ends the process with `sig`, as if no
    // handler had been installed.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// `SIGKILL` to every process of the group led by `pid` (errors such as
/// "no such group" are expected and ignored).
fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: `kill` takes plain integers and touches no memory of ours.
    // `-pgid` addresses exactly the group our child leads; the caller keeps
    // the leader unreaped, so the id cannot name anyone else's group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests;
