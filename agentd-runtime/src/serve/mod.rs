//! Serve mode: HTTP routes and scheduled triggers as a long-running process
//! (docs/operations.md "Serving"; docs/operations.md "Metrics"; docs/operations.md "Schedules"; ARCHITECTURE.md `serve/`; docs/dialect.md §15).
//!
//! Owns the server's life cycle: [`start`] checks the baked [`ServeDef`]
//! against the configuration (idempotency needs a state dir, an
//! authenticated route needs an authorizer, fs_watch paths exist), binds
//! the listener, and runs a tokio reactor on its own thread; [`Running`]
//! reports the bound address and drains on [`Running::shutdown`] or on
//! SIGTERM/SIGINT; [`serve`] is both in one call (what the CLI and
//! `Triage::serve` use).
//!
//! Shape of the process:
//! - one reactor thread (tokio `current_thread`) accepts connections and
//!   drives hyper's HTTP/1 state machine for all of them: no thread per
//!   connection, a connection cap, `TCP_NODELAY` on every socket, a header
//!   read timeout that also bounds idle keep-alive connections, and a body
//!   read timeout;
//! - workflow runs are synchronous. A route whose reachable nodes are all
//!   pure computation ([`RouteDef::inline`]) runs on the reactor
//!   thread; every other run goes to the run pool (`serve/pool.rs`), capped
//!   at [`ServeConfig::max_runs`] concurrent runs — a request beyond that
//!   gets 503 with `Retry-After` instead of waiting in an unbounded queue;
//! - scheduled triggers are reactor tasks that hand each fire to the
//!   blocking pool, serially per trigger ([`schedule`]).
//!
//! Drain: stop accepting, stop the schedules, let hyper close idle
//! keep-alive connections at once and finish in-flight requests, wait for
//! every run (including runs whose client went away) — all within
//! [`ServeConfig::drain_timeout`], else [`ServeError::DrainTimedOut`].
//!
//! Reloadable state comes from [`crate::serve::reload::Reloader`]: the TLS config
//! is taken at accept, the prepared auth ([`auth::authorize`], pipeline step
//! 5) per request, the policy per run. A route's auth reference was checked
//! at build time and its scheme compiled in, so every route is served with
//! its auth or the binary does not exist.
//!
//! This module must never parse HTTP itself (hyper does), never implement
//! run semantics (the [`crate::Engine`] does), and never print unless
//! [`ServeConfig::announce`] asks it to.

pub mod auth;
pub mod body;
/// The baked definitions, under their old path (generated code names it).
pub use crate::workflow::serve as def;
#[cfg(feature = "fleet")]
pub mod fleet;
mod handler;
pub mod idempotency;
mod input_schema;
#[cfg(feature = "mcp")]
pub mod mcp_trigger;
pub mod metrics;
mod pool;
pub mod ratelimit;
pub mod reload;
mod runner;
pub mod schedule;
mod server;
mod stall;
pub mod store;
#[cfg(feature = "tls")]
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::engine::{Engine, RunOptions, Trigger};
use crate::outcome::RunReport;
use crate::workflow::DynWorkflow;

pub use crate::workflow::serve::{AuthRef, RouteDef, ServeDef, TriggerDef};

/// A current-thread runtime with I/O and timers, as serve mode runs on, for
/// the unit tests of its modules.
#[cfg(test)]
pub(crate) fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// Largest request body accepted (docs/operations.md "Request limits"), chunked or not.
pub const BODY_CAP: usize = 1024 * 1024;

/// Largest request line plus headers (docs/operations.md "Request limits"); more is 431.
pub const HEAD_CAP: usize = 16 * 1024;

/// Default `--bind`.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Default `--drain-timeout-secs`.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;

/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;

/// Default `--max-runs`.
pub const DEFAULT_MAX_RUNS: u64 = 64;

/// Default `--read-timeout-secs`.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;

/// Default `--max-preauth-bytes`: the bytes of request bodies that may be
/// held before their request is authenticated (HMAC routes only; every
/// other scheme is checked before the body is read).
pub const DEFAULT_MAX_PREAUTH_BYTES: u64 = 64 * 1024 * 1024;

/// Bodies larger than this are decoded, and their run executed, on the
/// blocking pool: decoding a wide JSON object costs milliseconds, which on
/// the one reactor thread would stall every other client.
pub const INLINE_BODY_MAX: usize = 64 * 1024;

/// Settings of one serving process. [`ServeConfig::default`] matches the
/// binary's defaults.
#[derive(Clone)]
pub struct ServeConfig {
    /// Listen address (`--bind`); port 0 picks a free port, reported by
    /// [`Running::local_addr`].
    pub bind: SocketAddr,
    /// How long a drain may take before the process gives up (exit 5).
    pub drain_timeout: Duration,
    /// Open connections allowed at once; one more gets 503 and is closed.
    pub max_connections: usize,
    /// Workflow runs off the reactor at once, and the run pool's most
    /// threads; one more run gets 503.
    pub max_runs: usize,
    /// Longest wait for a request's headers (which also closes an idle
    /// keep-alive connection) and, separately, for its body.
    pub read_timeout: Duration,
    /// Bytes of request bodies held before authentication, all connections
    /// together (`--max-preauth-bytes`). Only HMAC routes read a body
    /// before authenticating; one that would pass this gets 503.
    pub max_preauth_bytes: usize,
    /// `--state-dir`: where idempotency keys are stored.
    pub state_dir: Option<PathBuf>,
    /// `--state-url` (feature `fleet`): idempotency keys, rate limits and
    /// trigger ticks shared with every replica through Redis instead of
    /// `state_dir` and this process's memory.
    #[cfg(feature = "fleet")]
    pub fleet: Option<fleet::FleetConfig>,
    /// Options of every run (deadline, dry run, policy); `record_trace` is
    /// ignored (serve mode never keeps traces).
    pub run: RunOptions,
    /// Install SIGTERM/SIGINT handlers that start the drain, and the
    /// SIGHUP handler that reloads.
    pub handle_signals: bool,
    /// `--reload-file`: touching it reloads, like SIGHUP (docs/operations.md "Reload").
    pub reload_file: Option<PathBuf>,
    /// Print the drain messages of docs/operations.md "Drain" on stderr.
    pub announce: bool,
    /// Parts supplied by other modules.
    pub hooks: Hooks,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            drain_timeout: Duration::from_secs(DEFAULT_DRAIN_TIMEOUT_SECS),
            // The defaults are small numbers; the casts cannot truncate.
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            max_runs: DEFAULT_MAX_RUNS as usize,
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT_SECS),
            max_preauth_bytes: DEFAULT_MAX_PREAUTH_BYTES as usize,
            state_dir: None,
            #[cfg(feature = "fleet")]
            fleet: None,
            run: RunOptions {
                record_trace: false,
                ..RunOptions::default()
            },
            handle_signals: true,
            reload_file: None,
            announce: false,
            hooks: Hooks::default(),
        }
    }
}

impl ServeConfig {
    /// Listen on `bind`.
    #[must_use]
    pub fn bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Keep idempotency keys under `dir`.
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Whether a shared (fleet) store was asked for.
    #[must_use]
    pub fn shared_store(&self) -> bool {
        #[cfg(feature = "fleet")]
        {
            self.fleet.is_some()
        }
        #[cfg(not(feature = "fleet"))]
        {
            false
        }
    }

    /// Set the drain timeout.
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("bind", &self.bind)
            .field("drain_timeout", &self.drain_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_runs", &self.max_runs)
            .field("read_timeout", &self.read_timeout)
            .field("max_preauth_bytes", &self.max_preauth_bytes)
            .field("state_dir", &self.state_dir)
            .field("shared_store", &self.shared_store())
            .field("run", &self.run)
            .field("handle_signals", &self.handle_signals)
            .field("reload_file", &self.reload_file)
            .field("announce", &self.announce)
            .finish_non_exhaustive()
    }
}

/// Parts of serve mode that other modules supply.
#[derive(Clone, Default)]
pub struct Hooks {
    /// The reloadable state (TLS config, prepared auth, policy override),
    /// read at accept (TLS), per request (auth) and per run (policy).
    /// `None` builds one from the workflow's baked `[server.tls]` and
    /// `[auth]` with the baked policy.
    pub reloader: Option<Arc<crate::serve::reload::Reloader>>,
    /// LLM backends and token budget of every run.
    #[cfg(feature = "llm")]
    pub intel: Option<crate::intel::Intel>,
    /// The MCP servers every run shares (their children live as long as
    /// the server). `None`: each run gets the baked servers, started lazily.
    #[cfg(feature = "mcp")]
    pub mcp: Option<crate::mcp::Mcp>,
}

/// Why serving could not start, or how it ended badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The workflow has no routes and no long-lived triggers.
    #[error(
        "serve mode needs [[http_routes]] or a cron, interval, fs_watch or mcp.resource trigger; this workflow has none"
    )]
    NothingToServe,
    /// A route declares an idempotency key but there is no state dir.
    #[error("route `{0}` declares idempotency_key but no --state-dir (or --state-url) is set")]
    IdempotencyWithoutStateDir(String),
    /// `--state-url` cannot be used (bad URL, unusable CA bundle).
    #[error("{0}")]
    StateUrl(String),
    /// A route's `input_schema` cannot be compiled (never for a binary `agentd
    /// build` produced: the schema was compiled at build time and the feature is on).
    #[error("route `{route}`: {reason}")]
    InputSchema {
        /// `METHOD /path`.
        route: String,
        /// What is wrong.
        reason: String,
    },
    /// The idempotency store cannot be created.
    #[error("cannot create the idempotency store under `{dir}`: {source}")]
    StateDir {
        /// The state dir.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS material, auth material (JWKS) or the policy file cannot be
    /// loaded, or the reload triggers cannot be installed.
    #[error("{0}")]
    Reload(#[from] crate::serve::reload::ReloadError),
    /// A trigger cannot be set up (bad schedule, missing path, feature off).
    #[error("trigger `{trigger}`: {reason}")]
    Trigger {
        /// `kind#index:start`.
        trigger: String,
        /// What is wrong.
        reason: String,
    },
    /// The listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The reactor could not be started.
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
    /// In-flight work outlived the drain timeout.
    #[error("drain timed out with {in_flight} request(s) or run(s) still in flight")]
    DrainTimedOut {
        /// Connections and runs still going.
        in_flight: usize,
    },
    /// The server thread died.
    #[error("the server thread stopped unexpectedly")]
    Crashed,
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    local_addr: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    /// The bound listen address (`None` when there are no routes: a
    /// schedules-only process has no HTTP listener, as in dialect 1).
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Start the drain (as SIGTERM would). Idempotent.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Wait until the server has drained.
    ///
    /// # Errors
    ///
    /// [`ServeError::DrainTimedOut`] when in-flight work outlived the drain
    /// timeout; [`ServeError::Crashed`] if the server thread panicked.
    pub fn wait(mut self) -> Result<(), ServeError> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or(Err(ServeError::Crashed)),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A dropped handle stops its server rather than leaking it.
        if let Some(t) = self.thread.take() {
            self.stop.send_replace(true);
            let _ = t.join();
        }
    }
}

/// Start serving `workflow` and return at once.
///
/// # Errors
///
/// Any [`ServeError`] that prevents the start.
pub fn start(
    workflow: &'static dyn DynWorkflow,
    config: ServeConfig,
) -> Result<Running, ServeError> {
    server::start(workflow, workflow.def().serve, config)
}

/// Serve `workflow` until SIGTERM/SIGINT (when
/// [`ServeConfig::handle_signals`]) and drain.
///
/// # Errors
///
/// Any [`ServeError`] of [`start`] or [`Running::wait`].
pub fn serve(workflow: &'static dyn DynWorkflow, config: ServeConfig) -> Result<(), ServeError> {
    start(workflow, config)?.wait()
}

/// Per-process state shared by connections, triggers and runs.
pub(crate) struct State {
    pub(crate) workflow: &'static dyn DynWorkflow,
    pub(crate) def: &'static ServeDef,
    pub(crate) metrics: metrics::Registry,
    /// Idempotency records, rate-limit buckets and tick leases: this
    /// process's own, or the fleet's.
    pub(crate) store: Arc<dyn store::Store>,
    /// Per route (same index), its compiled `input_schema`.
    pub(crate) input_schemas: input_schema::InputSchemas,
    /// Permits for runs off the reactor (route runs on [`State::pool`],
    /// offloaded bodies and fleet takeovers on tokio's blocking pool).
    pub(crate) runs: Arc<tokio::sync::Semaphore>,
    /// The threads that execute route runs (`--max-runs` of them at most).
    pub(crate) pool: pool::RunPool,
    /// Runs and requests still going (the drain waits for zero).
    pub(crate) in_flight: Arc<InFlightCount>,
    pub(crate) run_options: RunOptions,
    /// Runs checkpoint into a store the fleet shares (`--state-url`): route
    /// runs are durable by default and orphans are taken over.
    pub(crate) fleet_runs: bool,
    pub(crate) reloader: Arc<crate::serve::reload::Reloader>,
    #[cfg(feature = "mcp")]
    pub(crate) mcp: Option<crate::mcp::Mcp>,
    /// The LLM backends ([`Hooks::intel`]) and the MCP servers as every
    /// run's engine holds them, made once (`Engine::lent`).
    pub(crate) engine_exts: Option<Arc<crate::context::Exts>>,
    pub(crate) read_timeout: Duration,
    /// Bytes of unauthenticated bodies in flight (HMAC routes).
    pub(crate) preauth: Arc<PreAuthBudget>,
}

impl State {
    /// Run start `start` synchronously with `trigger` and fold its metrics
    /// into the registry.
    /// [`State::run`] for a request on `route`, inside its `http.request`
    /// span (`inbound`: the request's valid `traceparent`, if any).
    pub(crate) fn run_http(
        &self,
        route: &RouteDef,
        trigger: Trigger,
        principal: Option<std::borrow::Cow<'static, serde_json::Value>>,
        inbound: Option<&crate::traceparent::TraceParent>,
    ) -> RunReport {
        let _span = crate::obs::spans::http_request(route.method, route.path, inbound);
        // Durable by default in a fleet: checkpointed after every node, so
        // another replica completes the run if this one dies. Not an inline
        // route's: it is pure computation on the reactor thread (no I/O may
        // block it), done in microseconds, with nothing to repeat or resume.
        let each_node = (self.fleet_runs && !route.inline) || self.run_options.checkpoint_each_node;
        // The reply is built from the run's `respond` reply alone when it
        // has one (`handler::reply_for`), never from its final value.
        self.run_with(
            self.engine(each_node).reply_only(),
            route.start,
            trigger,
            principal,
        )
    }

    /// Run start `start` of a trigger (a schedule) synchronously.
    ///
    /// In a fleet a tick's run is not checkpointed node by node: its tick
    /// lease already hands the whole tick to another replica when this one
    /// dies, and a second, run-level takeover would run it twice.
    pub(crate) fn run(&self, start: &str, trigger: Trigger) -> RunReport {
        let durable = !self.fleet_runs && self.run_options.checkpoint_each_node;
        self.run_with(self.engine(durable), start, trigger, None)
    }

    /// The engine every run of this process uses (the policy re-read from a
    /// reloaded `--policy` file), checkpointing each node when `each_node`.
    fn engine(&self, each_node: bool) -> Engine<'static> {
        let mut options = self.run_options.clone();
        // A reloaded `--policy` file applies from the next run on.
        options.policy = self.reloader.policy_mode();
        options.checkpoint_each_node = each_node;
        Engine::lent(self.workflow, options, self.engine_exts.clone())
    }

    /// Run `trigger` (carrying a served request's `principal`, if any) and
    /// record it in the metrics.
    fn run_with(
        &self,
        engine: Engine<'_>,
        start: &str,
        trigger: Trigger,
        principal: Option<std::borrow::Cow<'static, serde_json::Value>>,
    ) -> RunReport {
        // One reading starts both the run and its latency.
        let started = Instant::now();
        let report = engine.run_as(start, trigger, principal, started);
        self.metrics.record_run(&report, started.elapsed());
        report
    }

    /// Take over run `run_id`, whose replica died mid-run (its lease
    /// lapsed): resume it from its last checkpoint, the interrupted node
    /// running again. `false` when another replica took it first.
    pub(crate) fn take_over(&self, run_id: &str) -> bool {
        let engine = self.engine(true);
        let started = Instant::now();
        match engine.resume(run_id, crate::checkpoint::Approval::Approve) {
            Ok(report) => {
                self.metrics.run_takeover();
                self.metrics.record_run(&report, started.elapsed());
                let outcome = match &report.outcome {
                    Ok(outcome) => serde_json::to_value(outcome).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                };
                crate::obs::audit(
                    "run.takeover",
                    serde_json::json!({ "execution_id": run_id, "outcome": outcome }),
                );
                true
            }
            Err(crate::checkpoint::CheckpointError::Busy { .. }) => false,
            Err(e) => {
                crate::obs::audit(
                    "run.takeover_failed",
                    serde_json::json!({ "execution_id": run_id, "error": e.to_string() }),
                );
                false
            }
        }
    }

    /// Await a store operation, timing it into the metrics.
    pub(crate) async fn store_op<T>(
        &self,
        op: store::StoreFuture<'_, T>,
    ) -> Result<T, store::StoreError> {
        let started = Instant::now();
        let result = op.await;
        self.metrics.store_op(started.elapsed(), result.is_ok());
        if let Err(e) = &result {
            crate::obs::audit(
                "store.error",
                serde_json::json!({"store": self.store.kind(), "reason": e.to_string()}),
            );
        }
        result
    }

    /// Count one unit of in-flight work until the guard drops.
    pub(crate) fn track(&self) -> InFlight {
        self.in_flight.enter()
    }
}

/// Requests and runs still going. An atomic on the hot path; the drain
/// is woken when the count reaches zero.
#[derive(Debug, Default)]
pub(crate) struct InFlightCount {
    count: AtomicUsize,
    /// Set once something waits in [`InFlightCount::idle`] (the drain):
    /// until then a count that reaches zero wakes no one, and a server
    /// between two requests does not lock `idle`'s waiter list for nothing.
    waiting: AtomicBool,
    idle: tokio::sync::Notify,
}

impl InFlightCount {
    /// Count one more until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// The current count.
    pub(crate) fn get(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Until nothing is in flight.
    pub(crate) async fn idle(&self) {
        // SeqCst here and in `InFlight::drop`: either the check below sees
        // the last decrement, or that decrement (later in the one order of
        // SeqCst operations) sees `waiting` and notifies.
        self.waiting.store(true, Ordering::SeqCst);
        loop {
            // Registered before the check, so a drop to zero in between
            // still wakes us (`notify_waiters` only wakes registered ones).
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The global budget of body bytes held before authentication.
#[derive(Debug)]
pub(crate) struct PreAuthBudget {
    used: AtomicUsize,
    cap: usize,
}

impl PreAuthBudget {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            cap,
        }
    }

    /// Reserve `bytes`, or `None` when that would pass the cap.
    pub(crate) fn reserve(self: &Arc<Self>, bytes: usize) -> Option<PreAuthBytes> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.cap)
            })
            .ok()?;
        Some(PreAuthBytes {
            budget: Arc::clone(self),
            bytes,
        })
    }
}

/// A reservation of [`PreAuthBudget`], returned on drop.
pub(crate) struct PreAuthBytes {
    budget: Arc<PreAuthBudget>,
    bytes: usize,
}

impl Drop for PreAuthBytes {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// One request or run the drain must wait for.
pub(crate) struct InFlight(Arc<InFlightCount>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.waiting.load(Ordering::SeqCst)
        {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod in_flight_tests {
    use super::*;

    fn guard(count: &Arc<InFlightCount>) -> InFlight {
        count.count.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(count))
    }

    #[test]
    fn idle_returns_at_once_when_nothing_is_in_flight() {
        let count = Arc::new(InFlightCount::default());
        drop(guard(&count));
        let waited = test_runtime()
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), count.idle()).await });
        assert!(waited.is_ok());
    }

    #[test]
    fn the_last_guard_dropped_wakes_a_waiting_drain() {
        // Guards dropped on another thread while the drain waits, with and
        // without a pause: every round must end well within the timeout.
        let runtime = test_runtime();
        for round in 0..500 {
            let count = Arc::new(InFlightCount::default());
            let guards = vec![guard(&count), guard(&count)];
            let dropper = std::thread::spawn(move || {
                if round % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                drop(guards);
            });
            let waited = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), count.idle()).await
            });
            assert!(waited.is_ok(), "round {round}: the drain was not woken");
            assert_eq!(count.get(), 0);
            dropper.join().expect("the dropping thread");
        }
    }
}
