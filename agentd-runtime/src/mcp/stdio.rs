//! An MCP server as a child process speaking NDJSON JSON-RPC 2.0 on its
//! stdin/stdout (docs/operations.md "MCP servers").
//!
//! Life cycle: the child is spawned on [`StdioServer::start`] (the CLI does
//! it at startup) or on the first call, with piped stdin/stdout, stderr read
//! line by line into the log under the server's name (target `agentd::mcp`),
//! the inherited environment plus the `env` secret mapping
//! (set on the child only, resolved at every spawn so a rotated secret is
//! picked up). The first call performs the lazy handshake: `initialize`
//! (protocol [`super::PROTOCOL_VERSION`]), then the
//! `notifications/initialized` notification.
//!
//! One request is in flight per server (a mutex), so `parallel`/`map`
//! branches sharing a server take turns. Request ids start at 1 per child.
//! Incoming lines without an `id` (notifications) and responses to other
//! ids are skipped; requests from the server are answered (`ping` with an
//! empty result, anything else with JSON-RPC error -32601).
//!
//! Divergences from dialect 1 (docs/dialect.md §15): every exchange has a read
//! timeout (the handshake and the call share one deadline); a child that
//! times out, writes a line that is not JSON-RPC, writes a line over
//! [`super::MAX_LINE`], or closes its stdout is killed and reaped, the call
//! fails with a clear [`Error::Mcp`], and a fresh child is spawned after a
//! backoff.
//!
//! Supervision: a child that dies (it exits, or is stopped for one of the
//! failures above) is restarted after [`FIRST_BACKOFF`], doubled for every
//! death that follows a short life up to [`MAX_BACKOFF`], and back to the
//! first delay once a child has lived [`HEALTHY_AFTER`]. The call in flight
//! fails; a call that arrives during the backoff waits for it if its deadline
//! allows, else fails at once. [`StdioServer::supervise`] (the CLI and serve
//! mode call it) restarts a dead child even when no call comes. Deaths,
//! restarts and failed restarts are audited (`mcp.server_exited`,
//! `mcp.server_restarted`, `mcp.server_restart_failed`) and restarts are
//! counted for `/metrics`.
//! A JSON-RPC `error` reply fails only that call. Children are killed
//! (SIGKILL) and reaped when the server is dropped, so none outlives the
//! binary or becomes a zombie.
//!
//! Notifications. While a [`McpServer::listen`] is going (resource
//! triggers), the reader thread hands every notification the child writes
//! (a message with a `method` and no `id`) to the listeners, whether or not
//! a call is running, instead of queueing it for the caller; a listener
//! that falls [`NOTIFY_QUEUE`] messages behind loses the newest (audited
//! `mcp.notification_dropped`). [`McpServer::generation`] is the restart
//! count, so a trigger knows to subscribe again on a new child.
//!
//! Pipes have no timeouts in std, so each child gets a reader thread (lines
//! → a bounded channel the caller waits on with `recv_timeout`) and a writer
//! thread (so a child that stops reading cannot block the caller either).
//! Both threads end when the child's pipes close.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::jsonrpc::{self, Failure, Incoming, snippet};
use super::{MAX_LINE, McpServer, McpServerDef, SecretResolver};
use crate::error::Error;

/// Messages queued for the writer thread before the child counts as not
/// reading its input.
const WRITE_QUEUE: usize = 16;

/// Lines buffered from the reader thread (each up to [`MAX_LINE`]); small,
/// so a flooding child is held back by the pipe instead of our memory.
const READ_QUEUE: usize = 2;

/// The first restart delay after a child dies; doubled for each death that
/// follows a short life, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A child that lived this long was healthy: its death restarts the
/// backoff at [`FIRST_BACKOFF`].
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Notifications buffered per listener.
const NOTIFY_QUEUE: usize = 256;

/// The notification listeners of a server, shared with its reader threads.
#[derive(Default)]
struct Listeners {
    next: AtomicU64,
    senders: Mutex<Vec<(u64, SyncSender<Value>)>>,
}

impl Listeners {
    fn any(&self) -> bool {
        !self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Hand `line` to the listeners if it is a notification; `false` when
    /// it is not one (the caller queues it as usual).
    fn offer(&self, name: &str, line: &[u8]) -> bool {
        if !self.any() {
            return false;
        }
        let Ok(message) = serde_json::from_slice::<Value>(line.trim_ascii()) else {
            return false;
        };
        let is_note = message.get("method").is_some_and(Value::is_string)
            && message.get("id").is_none_or(Value::is_null);
        if !is_note {
            return false;
        }
        let senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, tx) in senders.iter() {
            if let Err(TrySendError::Full(_)) = tx.try_send(message.clone()) {
                crate::obs::audit(
                    "mcp.notification_dropped",
                    json!({ "server": name, "method": message.get("method") }),
                );
            }
        }
        true
    }
}

/// How often the supervisor looks at its child.
const SUPERVISE_EVERY: Duration = Duration::from_millis(200);

/// Longest stderr line logged (the rest of the line is dropped).
const MAX_STDERR_LINE: u64 = 8 * 1024;

/// The restart state of a server whose child died.
#[derive(Debug)]
struct Backoff {
    /// The delay the next death waits.
    next: Duration,
    /// When the child died, while no new one runs.
    died_at: Option<Instant>,
    /// What the current wait is.
    wait: Duration,
}

/// A stdio MCP server.
pub struct StdioServer {
    name: String,
    argv: Vec<String>,
    /// `(VAR, secret name)`.
    env: Vec<(String, String)>,
    resolve_secret: SecretResolver,
    /// The running child, if any; the mutex is the one-request-in-flight
    /// rule.
    proc: Mutex<Option<Proc>>,
    /// Restart backoff (locked after `proc`, never before it).
    backoff: Mutex<Backoff>,
    /// Children started after one died.
    restarts: AtomicU64,
    /// Who wants the children's notifications.
    listeners: Arc<Listeners>,
}

impl std::fmt::Debug for StdioServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioServer")
            .field("name", &self.name)
            .field("argv", &self.argv)
            .field(
                "env_vars",
                &self.env.iter().map(|(v, _)| v).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What the reader and writer threads report.
#[derive(Debug)]
enum Event {
    Line(Vec<u8>),
    TooLong,
    Eof,
    ReadFailed(String),
    WriteFailed(String),
}

/// One running child.
struct Proc {
    child: Child,
    to_child: SyncSender<Vec<u8>>,
    from_child: Receiver<Event>,
    next_id: u64,
    initialized: bool,
    spawned_at: Instant,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Kill before reaping: a hung child would never exit on its own.
        // Both fail only when the child is already gone, which is the goal.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StdioServer {
    /// A server for the baked definition `def` (not started).
    #[must_use]
    pub fn new(def: &McpServerDef, resolve_secret: SecretResolver) -> Self {
        Self::from_parts(
            def.name,
            def.command.iter().map(|s| (*s).to_owned()).collect(),
            def.env
                .iter()
                .map(|(v, s)| ((*v).to_owned(), (*s).to_owned()))
                .collect(),
            resolve_secret,
        )
    }

    /// A server named `name` running `argv`, with `env` as `(VAR, secret
    /// name)` pairs (not started).
    #[must_use]
    pub fn from_parts(
        name: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        resolve_secret: SecretResolver,
    ) -> Self {
        Self {
            name: name.to_owned(),
            argv,
            env,
            resolve_secret,
            proc: Mutex::new(None),
            backoff: Mutex::new(Backoff {
                next: FIRST_BACKOFF,
                died_at: None,
                wait: Duration::ZERO,
            }),
            restarts: AtomicU64::new(0),
            listeners: Arc::new(Listeners::default()),
        }
    }

    /// The server's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Spawn the child unless it is already running.
    ///
    /// # Errors
    ///
    /// `failed to start MCP server `N`: ...` (no program, an unresolvable
    /// env secret, or a spawn failure).
    pub fn start(&self) -> Result<(), String> {
        let mut guard = self.lock();
        self.ensure_running(&mut guard, None).map(|_| ())
    }

    /// Children started because an earlier one died (`/metrics`).
    #[must_use]
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Watch the child from a thread of its own: a child that exits is
    /// restarted after its backoff even when no call comes. The thread
    /// ends when the server is dropped.
    pub fn supervise(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name(format!("agentd-mcp-watch-{}", self.name))
            .spawn(move || {
                loop {
                    std::thread::sleep(SUPERVISE_EVERY);
                    let Some(server) = weak.upgrade() else {
                        return;
                    };
                    // A call in progress holds the lock and sees deaths itself.
                    let Ok(mut guard) = server.proc.try_lock() else {
                        continue;
                    };
                    let due = server.restart_due();
                    let dead = guard.as_mut().is_some_and(Proc::has_exited);
                    if dead || (guard.is_none() && due.is_some_and(|d| d <= Instant::now())) {
                        // Errors are audited by `ensure_running`; the next
                        // round (or call) tries again after the backoff.
                        let _ = server.ensure_running(&mut guard, Some(Instant::now()));
                    }
                }
            });
    }

    /// When the next child may start, if one died.
    fn restart_due(&self) -> Option<Instant> {
        let b = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        b.died_at.map(|at| at + b.wait)
    }

    /// Stop (kill and reap) a child that died or failed, log why and start
    /// its backoff.
    fn died(&self, proc: Proc, why: &str) {
        let lived = proc.spawned_at.elapsed();
        drop(proc);
        let mut b = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        if lived >= HEALTHY_AFTER {
            b.next = FIRST_BACKOFF;
        }
        b.wait = b.next;
        b.next = (b.next * 2).min(MAX_BACKOFF);
        b.died_at = Some(Instant::now());
        let wait = b.wait;
        drop(b);
        crate::obs::audit(
            "mcp.server_exited",
            json!({
                "server": self.name,
                "reason": why,
                "lived_ms": u64::try_from(lived.as_millis()).unwrap_or(u64::MAX),
                "restart_in_ms": u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            }),
        );
    }

    /// The child's process id, if one is running (tests use it to check
    /// that a timed-out child is gone).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(|p| p.child.id())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Proc>> {
        // A panic while holding the lock leaves at worst a child that the
        // next call finds dead and replaces.
        self.proc.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn command_text(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// The running child, spawning one if there is none or it has exited.
    /// After a death the new child starts only when its backoff is over: a
    /// call whose `deadline` comes first fails without waiting (`None`: the
    /// first start, which never waits).
    fn ensure_running<'g>(
        &self,
        guard: &'g mut MutexGuard<'_, Option<Proc>>,
        deadline: Option<Instant>,
    ) -> Result<&'g mut Proc, String> {
        if guard.as_mut().is_some_and(Proc::has_exited)
            && let Some(mut proc) = guard.take()
        {
            let code = proc.child.try_wait().ok().flatten();
            let why = code.map_or_else(
                || "the server process exited".to_owned(),
                |c| format!("the server process exited ({c})"),
            );
            self.died(proc, &why);
        }
        if guard.is_none() {
            let restarting = self.restart_due();
            if let (Some(due), Some(deadline)) = (restarting, deadline) {
                let now = Instant::now();
                if due > deadline {
                    return Err(format!(
                        "mcp server `{}` is restarting after its process died; the next \
                         attempt is in {:.1}s",
                        self.name,
                        due.saturating_duration_since(now).as_secs_f32()
                    ));
                }
                std::thread::sleep(due.saturating_duration_since(now));
            }
            match self.spawn() {
                Ok(proc) => **guard = Some(proc),
                Err(e) => {
                    if restarting.is_some() {
                        // A failed restart waits a longer backoff.
                        let mut b = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
                        b.wait = b.next;
                        b.next = (b.next * 2).min(MAX_BACKOFF);
                        b.died_at = Some(Instant::now());
                        drop(b);
                        crate::obs::audit(
                            "mcp.server_restart_failed",
                            json!({ "server": self.name, "reason": e }),
                        );
                    }
                    return Err(e);
                }
            }
            if restarting.is_some() {
                self.backoff
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .died_at = None;
                let n = self.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                crate::obs::audit(
                    "mcp.server_restarted",
                    json!({ "server": self.name, "restarts": n }),
                );
            }
        }
        guard
            .as_mut()
            .ok_or_else(|| format!("failed to start MCP server `{}`", self.name))
    }

    fn spawn(&self) -> Result<Proc, String> {
        let fail = |why: String| format!("failed to start MCP server `{}`: {why}", self.name);
        let Some((program, args)) = self.argv.split_first() else {
            return Err(fail("`command` is empty".to_owned()));
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (var, secret) in &self.env {
            let value =
                (self.resolve_secret)(secret).map_err(|e| fail(format!("env `{var}`: {e}")))?;
            cmd.env(var, value);
        }
        let mut child = cmd.spawn().map_err(|e| fail(format!("{program}: {e}")))?;
        if let Some(stderr) = child.stderr.take() {
            let name = self.name.clone();
            // Best effort: without the thread the pipe fills and the child
            // blocks on its own logging, which the read timeout catches.
            let _ = std::thread::Builder::new()
                .name(format!("agentd-mcp-err-{}", self.name))
                .spawn(move || log_stderr(&name, stderr));
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("the child's pipes are missing".to_owned()));
        };
        let (events_tx, from_child) = mpsc::sync_channel(READ_QUEUE);
        let (to_child, writes) = mpsc::sync_channel(WRITE_QUEUE);
        let write_events = events_tx.clone();
        let (listeners, name) = (Arc::clone(&self.listeners), self.name.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("agentd-mcp-read-{}", self.name))
            .spawn(move || read_lines(stdout, &events_tx, &listeners, &name))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name(format!("agentd-mcp-write-{}", self.name))
                    .spawn(move || write_lines(stdin, &writes, &write_events))
            });
        if let Err(e) = spawned {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("cannot start its I/O threads: {e}")));
        }
        Ok(Proc {
            child,
            to_child,
            from_child,
            next_id: 1,
            initialized: false,
            spawned_at: Instant::now(),
        })
    }

    /// One request (handshake first if this child has not done it), within
    /// `timeout`.
    fn request(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, Error> {
        let mut guard = self.lock();
        let deadline = Instant::now() + timeout;
        let proc = self
            .ensure_running(&mut guard, Some(deadline))
            .map_err(Error::Mcp)?;
        let result = self
            .handshake(proc, deadline, timeout)
            .and_then(|()| proc.exchange(self, method, params, deadline, timeout));
        match result {
            Ok(v) => Ok(v),
            Err(Failure::Reply(msg)) => Err(Error::Mcp(msg)),
            Err(Failure::Fatal(msg)) => {
                // Dropping the child kills and reaps it; a fresh one starts
                // after the backoff.
                if let Some(proc) = guard.take() {
                    self.died(proc, &msg);
                }
                Err(Error::Mcp(msg))
            }
        }
    }

    fn handshake(
        &self,
        proc: &mut Proc,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), Failure> {
        if proc.initialized {
            return Ok(());
        }
        match proc.exchange(
            self,
            "initialize",
            jsonrpc::initialize_params(),
            deadline,
            timeout,
        ) {
            Ok(result) => {
                jsonrpc::negotiated_version(&self.name, &result).map_err(Failure::Fatal)?;
            }
            // A refused handshake leaves the child in an unknown state.
            Err(failure) => return Err(Failure::Fatal(failure.into_message())),
        }
        proc.send(
            self,
            &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        )?;
        proc.initialized = true;
        Ok(())
    }
}

impl Proc {
    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn send(&self, server: &StdioServer, message: &Value) -> Result<(), Failure> {
        let mut line = serde_json::to_vec(message).map_err(|e| {
            Failure::Fatal(format!(
                "cannot encode a request for mcp server `{}`: {e}",
                server.name
            ))
        })?;
        line.push(b'\n');
        match self.to_child.try_send(line) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Failure::Fatal(format!(
                "mcp server `{}` is not reading its input",
                server.name
            ))),
            Err(TrySendError::Disconnected(_)) => Err(Failure::Fatal(format!(
                "mcp server `{}` (`{}`) closed the pipe unexpectedly",
                server.name,
                server.command_text()
            ))),
        }
    }

    /// Send request `method` and wait for the response with its id.
    fn exchange(
        &mut self,
        server: &StdioServer,
        method: &str,
        params: Value,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Value, Failure> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            server,
            &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
        )?;
        let name = &server.name;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let event = match self.from_child.recv_timeout(remaining) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    // Best effort: the child is stopped next anyway.
                    let _ = self.send(server, &jsonrpc::cancelled(id, "timed out"));
                    return Err(Failure::Fatal(format!(
                        "mcp server `{name}` did not answer `{method}` within {timeout:?}; \
                         the server process was stopped and the next call starts a new one"
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => Event::Eof,
            };
            let line = match event {
                Event::Line(line) => line,
                Event::TooLong => {
                    return Err(Failure::Fatal(format!(
                        "mcp server `{name}` wrote a line longer than {MAX_LINE} bytes"
                    )));
                }
                Event::Eof => {
                    return Err(Failure::Fatal(format!(
                        "mcp server `{name}` (`{}`) closed the pipe unexpectedly",
                        server.command_text()
                    )));
                }
                Event::ReadFailed(e) => {
                    return Err(Failure::Fatal(format!(
                        "cannot read from mcp server `{name}`: {e}"
                    )));
                }
                Event::WriteFailed(e) => {
                    return Err(Failure::Fatal(format!(
                        "cannot write to mcp server `{name}`: {e}"
                    )));
                }
            };
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            // serde_json's recursion limit turns hostile nesting into an error.
            let message: Value = serde_json::from_slice(text).map_err(|e| {
                Failure::Fatal(format!(
                    "mcp server `{name}` wrote a line that is not JSON ({e}): {}",
                    snippet(text)
                ))
            })?;
            match jsonrpc::classify(name, message, id).map_err(Failure::Fatal)? {
                Incoming::Response(message) => {
                    return jsonrpc::decode_response(name, method, message);
                }
                Incoming::ServerRequest(reply) => self.send(server, &reply)?,
                Incoming::Other => {}
            }
        }
    }
}

/// The child's stderr, line by line, into the log under the server's name
/// (each line capped at [`MAX_STDERR_LINE`] bytes, invalid UTF-8 replaced).
fn log_stderr(name: &str, stderr: std::process::ChildStderr) {
    let mut reader = BufReader::new(stderr);
    loop {
        let mut line = Vec::new();
        match reader
            .by_ref()
            .take(MAX_STDERR_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if line.last() != Some(&b'\n') && !skip_line(&mut reader) {
                    return;
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if !text.is_empty() {
                    tracing::info!(target: "agentd::mcp", server = name, stderr = text);
                }
            }
        }
    }
}

/// Drop bytes up to the next newline without keeping them; `false` at the
/// end of the stream or on an error.
fn skip_line(reader: &mut impl BufRead) -> bool {
    loop {
        let (done, n) = match reader.fill_buf() {
            Ok([]) | Err(_) => return false,
            Ok(buf) => match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            },
        };
        reader.consume(n);
        if done {
            return true;
        }
    }
}

/// The reader thread: one event per line, each capped at [`MAX_LINE`].
fn read_lines(stdout: ChildStdout, events: &SyncSender<Event>, listeners: &Listeners, name: &str) {
    let mut reader = BufReader::new(stdout);
    let cap = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    loop {
        let mut line = Vec::new();
        let event = match reader.by_ref().take(cap).read_until(b'\n', &mut line) {
            Ok(0) => Event::Eof,
            Ok(_) if line.last() != Some(&b'\n') && line.len() > MAX_LINE => Event::TooLong,
            Ok(_) if listeners.offer(name, &line) => continue,
            Ok(_) => Event::Line(line),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Event::ReadFailed(e.to_string()),
        };
        let last = !matches!(event, Event::Line(_));
        // A send fails only when the child was dropped: nobody is listening.
        if events.send(event).is_err() || last {
            return;
        }
    }
}

/// The writer thread: queued lines to the child's stdin, flushed each.
fn write_lines(mut stdin: ChildStdin, lines: &Receiver<Vec<u8>>, events: &SyncSender<Event>) {
    for line in lines {
        if let Err(e) = stdin.write_all(&line).and_then(|()| stdin.flush()) {
            let _ = events.try_send(Event::WriteFailed(e.to_string()));
            return;
        }
    }
}

impl McpServer for StdioServer {
    fn call_tool(&self, tool: &str, arguments: &Value, timeout: Duration) -> Result<Value, Error> {
        self.request(
            "tools/call",
            jsonrpc::tools_call_params(tool, arguments),
            timeout,
        )
    }

    fn read_resource(&self, uri: &str, timeout: Duration) -> Result<Value, Error> {
        self.request("resources/read", json!({ "uri": uri }), timeout)
    }

    fn list(&self, what: super::Listing, timeout: Duration) -> Result<Vec<Value>, Error> {
        jsonrpc::list_pages(&self.name, what, |params| {
            self.request(what.method(), params, timeout)
        })
    }

    fn subscribe(&self, uri: &str, timeout: Duration) -> Result<(), Error> {
        self.request("resources/subscribe", json!({ "uri": uri }), timeout)
            .map(|_| ())
    }

    fn listen(
        &self,
        setup: &mut dyn FnMut() -> Result<(), String>,
        on_message: &mut dyn FnMut(Value),
        stop: &dyn Fn() -> bool,
        _timeout: Duration,
    ) -> Result<(), String> {
        let (tx, rx) = mpsc::sync_channel(NOTIFY_QUEUE);
        let id = self.listeners.next.fetch_add(1, Ordering::Relaxed);
        self.listeners
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, tx));
        let ready = setup();
        while ready.is_ok() && !stop() {
            match rx.recv_timeout(SUPERVISE_EVERY) {
                Ok(message) => on_message(message),
                Err(RecvTimeoutError::Timeout) => {}
                // Never: the sender lives in `listeners` until removed below.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.listeners
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(i, _)| *i != id);
        ready
    }

    fn generation(&self) -> u64 {
        self.restarts()
    }
}
