//! The listener, the connection loop and the drain.
//!
//! Owns start-up checks, binding, the tokio runtime and its thread, the
//! accept loop (connection cap, `TCP_NODELAY`, hyper's HTTP/1 connection
//! under the slow-client limits of [`super::stall`]), signal handling, and
//! the drain sequence.
//! Request handling is [`super::handler`]; schedules are
//! [`super::schedule`]. This module never looks inside a request.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::serve::auth::PeerIdentity;
use crate::serve::idempotency::IdempotencyStore;
use crate::serve::metrics::{Registry, Shed};
use crate::serve::reload::{Reloader, ReloaderConfig, spawn_reload_triggers};
use crate::serve::stall::{ConnClock, HeadDeadline, WriteStall};
use crate::serve::store::{LocalStore, Store};
use crate::serve::{
    HEAD_CAP, InFlight, InFlightCount, Running, ServeConfig, ServeError, State, handler, schedule,
};
use crate::workflow::DynWorkflow;
use crate::workflow::serve::ServeDef;

/// The read buffer hyper may grow to while reading a request head: the
/// head cap plus room for the start of a body read in the same segment.
const READ_BUF: usize = HEAD_CAP + 8 * 1024;

/// Reply to a connection over the cap. Written raw because no request is
/// read from it: it is an output format, not a parse.
const OVER_CAP_BODY: &str = r#"{"error":"too many connections"}"#;

pub(crate) fn start(
    workflow: &'static dyn DynWorkflow,
    def: &'static ServeDef,
    config: ServeConfig,
) -> Result<Running, ServeError> {
    if def.is_empty() {
        return Err(ServeError::NothingToServe);
    }
    check_routes(def, &config)?;
    let reloader = match &config.hooks.reloader {
        Some(r) => Arc::clone(r),
        None => Arc::new(Reloader::new(ReloaderConfig::for_workflow(
            workflow.def(),
            None,
        ))?),
    };
    let triggers = schedule::prepare(def)?;

    // Bound here, before the thread starts, so a bad address is reported
    // to the caller and the bound port is known when `start` returns.
    let listener = if def.routes.is_empty() {
        None
    } else {
        let std_listener =
            std::net::TcpListener::bind(config.bind).map_err(|source| ServeError::Bind {
                addr: config.bind,
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| ServeError::Bind {
                addr: config.bind,
                source,
            })?;
        Some(std_listener)
    };
    let local_addr = match &listener {
        Some(l) => Some(l.local_addr().map_err(|source| ServeError::Bind {
            addr: config.bind,
            source,
        })?),
        None => None,
    };

    tune_allocator();
    let max_runs = config.max_runs.max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Offloaded bodies and fleet takeovers (both under run permits; route
        // runs have the run pool of their own) plus one per trigger (trigger
        // runs are serial per trigger and never wait for a route's permit).
        .max_blocking_threads(max_runs + def.triggers.len() + 1)
        .thread_name("agentd-run")
        .build()
        .map_err(ServeError::Runtime)?;

    // Inside the runtime: the Redis client's connection task belongs to it.
    let store = {
        let _entered = runtime.enter();
        open_store(def, &config, workflow.def().info.workflow)?
    };
    // Inside the runtime: the pool's reply task is a reactor task.
    let pool = {
        let _entered = runtime.enter();
        super::pool::RunPool::new(max_runs)
    };
    let input_schemas =
        super::input_schema::InputSchemas::compile(def).map_err(|e| ServeError::InputSchema {
            route: e.route,
            reason: e.reason,
        })?;
    let state = Arc::new(State {
        workflow,
        def,
        metrics: Registry::new(workflow.def().info, def).with_store_kind(store.kind()),
        store,
        input_schemas,
        runs: Arc::new(Semaphore::new(max_runs)),
        pool,
        in_flight: Arc::default(),
        run_options: config.run.clone(),
        fleet_runs: config
            .run
            .checkpoints
            .as_deref()
            .is_some_and(crate::checkpoint::Checkpoints::shared),
        reloader: Arc::clone(&reloader),
        #[cfg(feature = "mcp")]
        mcp: config.hooks.mcp.clone(),
        engine_exts: engine_exts(workflow.def(), &config.hooks),
        read_timeout: config.read_timeout,
        preauth: Arc::new(crate::serve::PreAuthBudget::new(config.max_preauth_bytes)),
    });

    // SIGHUP and --reload-file. Installed now, inside the runtime, so a
    // failure refuses the start instead of running without the reload
    // channel the operator asked for.
    let reload_triggers = if config.handle_signals || config.reload_file.is_some() {
        let _entered = runtime.enter();
        Some(spawn_reload_triggers(reloader, config.reload_file.clone())?)
    } else {
        None
    };

    // SIGTERM/SIGINT handlers go in before `start` returns (and so before
    // the banner): a signal sent as soon as the process says it is ready
    // must drain it, not kill it with the default disposition.
    let signals = if config.handle_signals {
        let _entered = runtime.enter();
        Signals::install()
    } else {
        None
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("agentd-serve".to_owned())
        .spawn(move || {
            let result = runtime.block_on(run(state, listener, triggers, config, stop_rx, signals));
            drop(reload_triggers);
            // Runs that outlived a drain timeout are abandoned, not joined:
            // the process is about to exit with 5.
            runtime.shutdown_background();
            result
        })
        .map_err(ServeError::Runtime)?;
    Ok(Running {
        local_addr,
        stop: stop_tx,
        thread: Some(thread),
    })
}

/// Request bodies at or above this size get memory of their own from the
/// kernel (glibc's `M_MMAP_THRESHOLD`), returned the moment they are freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Make memory held for request bodies go back to the system after a load.
///
/// glibc raises its mmap threshold each time an mmapped block is freed, up
/// to 32 MiB: after the first burst of 1 MiB bodies, later bodies come
/// from the heap, where a few small live allocations above them keep the
/// freed pages resident (300 MB held after 300 idle connections closed).
/// Setting the threshold pins it, so every body-sized buffer is mmapped and
/// unmapped on free. Other allocators (musl) already return large blocks.
#[allow(unsafe_code)]
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` takes two integers and touches only the allocator's
    // own settings; it is thread-safe in glibc and fails by returning 0,
    // which leaves the defaults (a tuning, not a requirement).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// The state store: the fleet's when `--state-url` names one, else this
/// process's (`--state-dir` idempotency files, in-memory buckets).
#[cfg_attr(not(feature = "fleet"), allow(unused_variables))]
fn open_store(
    def: &'static ServeDef,
    config: &ServeConfig,
    workflow: &str,
) -> Result<Arc<dyn Store>, ServeError> {
    #[cfg(feature = "fleet")]
    if let Some(fleet) = &config.fleet {
        let store =
            crate::serve::fleet::RedisStore::connect(fleet, workflow, def, config.run.timeout)
                .map_err(ServeError::StateUrl)?;
        return Ok(Arc::new(store));
    }
    let idempotency = match &config.state_dir {
        Some(dir) if def.routes.iter().any(|r| r.idempotency.is_some()) => Some(
            IdempotencyStore::open(dir, config.run.timeout).map_err(|source| {
                ServeError::StateDir {
                    dir: dir.clone(),
                    source,
                }
            })?,
        ),
        _ => None,
    };
    Ok(Arc::new(LocalStore::new(def, idempotency, Instant::now())))
}

/// Refuse a configuration that would serve a route wrongly.
fn check_routes(def: &ServeDef, config: &ServeConfig) -> Result<(), ServeError> {
    match def.routes.iter().find(|r| r.idempotency.is_some()) {
        Some(r) if config.state_dir.is_none() && !config.shared_store() => Err(
            ServeError::IdempotencyWithoutStateDir(format!("{} {}", r.method, r.path)),
        ),
        _ => Ok(()),
    }
}

async fn run(
    state: Arc<State>,
    listener: Option<std::net::TcpListener>,
    triggers: Vec<schedule::Prepared>,
    config: ServeConfig,
    mut stop: watch::Receiver<bool>,
    signals: Option<Signals>,
) -> Result<(), ServeError> {
    let (accept_stop_tx, accept_stop_rx) = watch::channel(false);
    let accept = match listener {
        Some(l) => {
            let listener = TcpListener::from_std(l).map_err(ServeError::Runtime)?;
            let state = Arc::clone(&state);
            let max_connections = config.max_connections.max(1);
            let read_timeout = config.read_timeout;
            Some(tokio::spawn(accept_loop(
                state,
                listener,
                max_connections,
                read_timeout,
                accept_stop_rx,
            )))
        }
        None => None,
    };
    // Triggers and the sweeper get a stop of their own, set below whatever
    // ended the wait (the handle or a signal: a signal never sets `stop`).
    let (tasks_stop_tx, tasks_stop_rx) = watch::channel(false);
    let schedules = schedule::spawn(&state, triggers, tasks_stop_rx.clone());
    let idempotent = state.def.routes.iter().any(|r| r.idempotency.is_some());
    let sweeper = idempotent.then(|| {
        let state = Arc::clone(&state);
        tokio::spawn(sweep_idempotency(state, tasks_stop_rx.clone()))
    });
    let takeover = state.fleet_runs.then(|| {
        let state = Arc::clone(&state);
        tokio::spawn(take_over_orphans(state, tasks_stop_rx))
    });

    wait_for_stop(&mut stop, signals).await;
    if config.announce {
        announce("agentd: shutdown signal received; draining…");
    }
    let deadline = tokio::time::Instant::now() + config.drain_timeout.max(Duration::from_secs(1));

    // 1. No new connections and no new fires.
    accept_stop_tx.send_replace(true);
    tasks_stop_tx.send_replace(true);
    let graceful = match accept {
        Some(accept) => accept.await.ok(),
        None => None,
    };
    stop_schedules(schedules).await;
    if let Some(sweeper) = sweeper {
        let _ = sweeper.await;
    }
    if let Some(takeover) = takeover {
        let _ = takeover.await;
    }
    // 2. Idle keep-alive connections close now; busy ones after their
    //    response. 3. Runs whose client left still finish.
    let drained = tokio::time::timeout_at(deadline, async {
        if let Some(graceful) = graceful {
            graceful.shutdown().await;
        }
        state.in_flight.idle().await;
    })
    .await;
    match drained {
        Ok(()) => {
            if config.announce {
                announce("agentd: drain complete");
            }
            Ok(())
        }
        Err(_) => {
            let in_flight = state.in_flight.get();
            crate::obs::audit(
                "http.drain_deadline_exceeded",
                serde_json::json!({ "in_flight": in_flight }),
            );
            if config.announce {
                announce("agentd: drain timed out (forced exit)");
            }
            Err(ServeError::DrainTimedOut { in_flight })
        }
    }
}

/// A drain message on stderr. Never `eprintln!`: a closed stderr (a
/// supervisor that went away) must not panic a server mid-drain.
fn announce(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// How often expired idempotency entries are deleted (also once at start).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Delete expired idempotency entries at start and every [`SWEEP_EVERY`],
/// on the blocking pool (it is directory I/O), until `stop`.
async fn sweep_idempotency(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    // The longest TTL of any route: an entry older than that can never be
    // replayed again.
    let keep = state
        .def
        .routes
        .iter()
        .filter_map(|r| r.idempotency.map(|i| i.ttl_secs))
        .max()
        .map_or(Duration::ZERO, Duration::from_secs);
    loop {
        let _ = state.store.sweep(keep).await;
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

async fn stop_schedules(tasks: Vec<tokio::task::JoinHandle<()>>) {
    // Trigger tasks see the stop flag themselves; joining them here only
    // makes sure no fire starts after this point.
    for t in tasks {
        let _ = t.await;
    }
}

/// The SIGTERM and SIGINT streams that start the drain.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers (inside a runtime context). `None` when they
    /// cannot be installed: the default disposition then stays (the signal
    /// kills the process) and `stop` still works.
    fn install() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Some(Self {
                term: signal(SignalKind::terminate()).ok()?,
                int: signal(SignalKind::interrupt()).ok()?,
            })
        }
        #[cfg(not(unix))]
        {
            Some(Self {})
        }
    }
}

/// Until `stop` is set, or a SIGTERM/SIGINT arrives when `signals`.
async fn wait_for_stop(stop: &mut watch::Receiver<bool>, signals: Option<Signals>) {
    let stopped = async {
        // A dropped sender (the handle went away) also means stop.
        let _ = stop.wait_for(|s| *s).await;
    };
    let Some(mut signals) = signals else {
        stopped.await;
        return;
    };
    #[cfg(unix)]
    tokio::select! {
        () = stopped => {}
        _ = signals.term.recv() => {}
        _ = signals.int.recv() => {}
    }
    #[cfg(not(unix))]
    {
        let _ = &mut signals;
        tokio::select! {
            () = stopped => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
}

/// Accept until `stop`; returns the [`Drain`] of every connection still open,
/// for the drain.
async fn accept_loop(
    state: Arc<State>,
    listener: TcpListener,
    max_connections: usize,
    read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> Arc<Drain> {
    let graceful = Arc::new(Drain::default());
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut builder = http1::Builder::new();
    builder
        // The wait for a request head is bounded per connection by
        // `HeadDeadline` (serve/stall.rs), not by hyper's timer per request.
        .header_read_timeout(None)
        // Replies are copied after their head into one buffer and written
        // with one write: cheaper than hyper's queue of buffers for writev.
        // `handler::ReplyBody` frames keep a large reply from growing it.
        .writev(false)
        .max_buf_size(READ_BUF)
        // A client may shut down its write side once its request is sent
        // (`curl --no-keepalive`-style clients, `shutdown(SHUT_WR)`): without
        // this hyper reads the EOF as an aborted request and drops the reply
        // while the run goes on. The request is answered; a client that
        // really left only makes the write fail.
        .half_close(true)
        .keep_alive(true);
    // `max_header_size` bounds the parsed head (request line + headers):
    // hyper answers 431 beyond it.
    builder.max_header_size(HEAD_CAP);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return graceful,
            accepted = listener.accept() => accepted,
        };
        #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the
                // listener stays up.
                if !is_per_connection_error(&e) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        // Every reply is written whole; Nagle would only add latency
        // (and delayed-ACK stalls on keep-alive).
        let _ = stream.set_nodelay(true);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            state.metrics.shed(Shed::Connections);
            tokio::spawn(refuse(stream));
            continue;
        };
        state.metrics.connection_delta(1);
        // A client that stops reading its replies cannot hold the connection,
        // and one that sends no request head within the read timeout is cut off.
        let clock = ConnClock::new();
        let stream = WriteStall::new(stream, read_timeout).with_clock(Arc::clone(&clock));
        #[cfg(feature = "tls")]
        if let Some(tls) = state.reloader.tls_config() {
            // The handshake runs in the connection's task so a slow client
            // never stalls the accept loop; it is bounded by the read
            // timeout. The config is the one current at accept: a reload
            // never changes a connection's TLS midway.
            let state = Arc::clone(&state);
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        // The wait for the first head starts after the handshake.
                        clock.touch();
                        let peer_identity =
                            crate::serve::tls::connection_peer(tls_stream.get_ref().1)
                                .map(Arc::new);
                        let conn = builder.serve_connection(
                            TokioIo::new(tls_stream),
                            service(&state, peer_identity, Arc::clone(&clock)),
                        );
                        let watched = watcher.watch(conn);
                        if let Some(Err(e)) = HeadDeadline::new(watched, clock, read_timeout).await
                        {
                            count_refusal(&state, &e);
                        }
                    }
                    Ok(Err(e)) => crate::obs::audit(
                        "tls.handshake_failed",
                        serde_json::json!({"peer": peer.to_string(), "reason": e.to_string()}),
                    ),
                    Err(_) => crate::obs::audit(
                        "tls.handshake_failed",
                        serde_json::json!({"peer": peer.to_string(), "reason": "handshake timed out"}),
                    ),
                }
                state.metrics.connection_delta(-1);
                drop(slot);
            });
            continue;
        }
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service(&state, None, Arc::clone(&clock)),
        );
        let watched = HeadDeadline::new(graceful.watcher().watch(conn), clock, read_timeout);
        let conn_state = Arc::clone(&state);
        tokio::spawn(async move {
            // Errors here are the client's (reset, malformed request); hyper
            // already answered what can be answered. `None` is a head that
            // did not come in time: closed without a reply.
            if let Some(Err(e)) = watched.await {
                count_refusal(&conn_state, &e);
            }
            conn_state.metrics.connection_delta(-1);
            drop(slot);
        });
    }
}

/// The drain's word to every open connection, and its wait for them to
/// close: hyper_util's `GracefulShutdown` without its cost per request.
///
/// That one has each connection poll a `watch` receiver on every wake-up (a
/// cooperative-budget check, a lock of the channel's waiter list: ~250
/// instructions per wake-up, docs/performance.md "Around the run"). Here a
/// connection reads one flag per wake-up and keeps its task's waker where
/// the drain can find it (a lock that is never contended but by the drain,
/// and a clone only when the waker changes). The drain sets the flag, then
/// wakes every connection still open; one that wakes for any reason after
/// the flag is set shuts down gracefully (hyper finishes the request in
/// flight, closes an idle connection at once). The flag is read after the
/// waker is stored, and the drain takes the waker (under the slot's lock)
/// after setting the flag: a connection either sees the flag or is woken.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    started: AtomicBool,
    /// The connections watched so far, dead ones dropped as the list grows.
    parked: Mutex<Vec<Weak<Parked>>>,
    /// Connections watched and not yet finished (accepted TLS connections
    /// still in their handshake included).
    open: Arc<InFlightCount>,
}

/// Where a watched connection keeps its task's waker for the drain.
#[derive(Debug, Default)]
struct Parked(Mutex<Option<Waker>>);

impl Drain {
    /// A watcher for a connection just accepted: counted as open from now.
    pub(crate) fn watcher(self: &Arc<Self>) -> DrainWatcher {
        let parked = Arc::new(Parked::default());
        {
            let mut list = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
            if list.len() == list.capacity() {
                list.retain(|p| p.strong_count() > 0);
            }
            list.push(Arc::downgrade(&parked));
        }
        DrainWatcher {
            drain: Arc::clone(self),
            parked,
            _open: self.open.enter(),
        }
    }

    /// Tell every watched connection to finish, then wait until all have.
    pub(crate) async fn shutdown(&self) {
        self.started.store(true, Ordering::SeqCst);
        let parked: Vec<Arc<Parked>> = self
            .parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for conn in parked {
            let waker = conn.0.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        self.open.idle().await;
    }
}

/// One connection's share of the [`Drain`].
pub(crate) struct DrainWatcher {
    drain: Arc<Drain>,
    parked: Arc<Parked>,
    /// Counts the connection open until it is dropped.
    _open: InFlight,
}

impl DrainWatcher {
    /// `conn`, shut down gracefully once the drain starts.
    pub(crate) fn watch<C: Graceful>(self, conn: C) -> Drained<C> {
        Drained {
            conn: Box::pin(conn),
            watcher: self,
            shutting: false,
        }
    }
}

/// A connection hyper can finish gracefully.
pub(crate) trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, B, S> Graceful for http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::Connection::graceful_shutdown(self);
    }
}

/// A connection watched by the [`Drain`]; counted open until dropped.
pub(crate) struct Drained<C> {
    conn: Pin<Box<C>>,
    watcher: DrainWatcher,
    shutting: bool,
}

impl<C: Graceful> Future for Drained<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if !this.shutting {
            {
                let mut slot = this
                    .watcher
                    .parked
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *slot = Some(cx.waker().clone());
                }
            }
            if this.watcher.drain.started.load(Ordering::SeqCst) {
                this.shutting = true;
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.as_mut().poll(cx)
    }
}

/// Count the reply hyper sent by itself for a request it could not parse, if
/// it sent one: 431 for a head over [`super::HEAD_CAP`], 400 for anything
/// else unparsable. (hyper's 414 needs a URI over 64 KiB, which cannot fit in
/// the capped head; an HTTP/2 preface gets no reply.)
fn count_refusal(state: &State, e: &hyper::Error) {
    if !e.is_parse() || e.is_parse_status() || e.is_parse_version_h2() {
        return;
    }
    let status = if e.is_parse_too_large() { 431 } else { 400 };
    state.metrics.record_unparsed(status);
}

/// The per-connection request handler; `peer` is the TLS client identity,
/// `clock` learns which requests are in flight.
fn service(
    state: &Arc<State>,
    peer: Option<Arc<PeerIdentity>>,
    clock: Arc<ConnClock>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = handler::Reply,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<handler::Reply, std::convert::Infallible>> + Send,
> + Send
+ 'static {
    let state = Arc::clone(state);
    hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        let peer = peer.clone();
        let in_flight = clock.request();
        async move {
            let reply = handler::handle(state, req, peer).await;
            drop(in_flight);
            Ok(reply)
        }
    })
}

/// Errors of one accepted connection that say nothing about the listener.
fn is_per_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// Answer a connection over the cap with 503 and close it.
async fn refuse(mut stream: TcpStream) {
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{OVER_CAP_BODY}",
        OVER_CAP_BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// How often a replica looks for runs whose replica died (their lease
/// lapses 5 s, `checkpoint::RUN_LEASE`, after its last renewal).
const TAKEOVER_EVERY: Duration = Duration::from_millis(2500);

/// In a fleet, until `stop`: every [`TAKEOVER_EVERY`] (with jitter, so the
/// replicas do not all ask at once) find runs in progress whose replica
/// died and resume each on the blocking pool, as far as run permits allow
/// (the rest wait for the next round). Only one replica wins each run.
async fn take_over_orphans(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let Some(store) = state.run_options.checkpoints.clone() else {
        return;
    };
    // A cheap per-process jitter: replicas started together drift apart.
    let jitter = Duration::from_millis(u64::from(std::process::id() % 500));
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(TAKEOVER_EVERY + jitter) => {}
        }
        let lookup = Arc::clone(&store);
        let started = Instant::now();
        let orphans = tokio::task::spawn_blocking(move || lookup.orphans()).await;
        let orphans = match orphans {
            Ok(Ok(orphans)) => {
                state.metrics.store_op(started.elapsed(), true);
                orphans
            }
            Ok(Err(e)) => {
                state.metrics.store_op(started.elapsed(), false);
                crate::obs::audit(
                    "store.error",
                    serde_json::json!({"store": state.store.kind(), "reason": e.to_string()}),
                );
                continue;
            }
            Err(_) => continue,
        };
        for run_id in orphans {
            if *stop.borrow() {
                return;
            }
            let Ok(permit) = Arc::clone(&state.runs).try_acquire_owned() else {
                break;
            };
            let tracked = state.track();
            let runner = Arc::clone(&state);
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _tracked = tracked;
                runner.take_over(&run_id);
            });
        }
    }
}

/// The LLM backends and MCP servers every run of the server shares, as the
/// engine holds them (`Engine::lent`), made once: what the caller lent
/// (`Hooks::intel`, `Hooks::mcp`; the CLI always lends both), else what the
/// workflow's own hooks build. `None` when there is neither.
fn engine_exts(
    def: &'static crate::WorkflowDef,
    hooks: &crate::serve::Hooks,
) -> Option<Arc<crate::context::Exts>> {
    let _ = hooks;
    #[cfg(feature = "llm")]
    let lent_llm = hooks
        .intel
        .clone()
        .map(|i| Arc::new(i) as crate::workflow::Ext);
    #[cfg(not(feature = "llm"))]
    let lent_llm = None;
    #[cfg(feature = "mcp")]
    let lent_mcp = hooks
        .mcp
        .clone()
        .map(|m| Arc::new(m) as crate::workflow::Ext);
    #[cfg(not(feature = "mcp"))]
    let lent_mcp = None;
    let exts = crate::context::Exts {
        llm: lent_llm.or_else(|| def.hooks.llm.map(|build| build(def))),
        mcp: lent_mcp.or_else(|| def.hooks.mcp.map(|build| build(def))),
    };
    (exts.llm.is_some() || exts.mcp.is_some()).then(|| Arc::new(exts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A connection that idles until told to shut down, then ends at its
    /// next poll — or, when `busy`, only once `busy` is cleared as well.
    struct Conn {
        shutdowns: Arc<AtomicUsize>,
        told: bool,
        busy: Arc<AtomicBool>,
    }

    impl Future for Conn {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.told && !self.busy.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if self.told {
                // A request in flight: look again soon.
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    impl Graceful for Conn {
        fn graceful_shutdown(mut self: Pin<&mut Self>) {
            self.shutdowns.fetch_add(1, Ordering::SeqCst);
            self.told = true;
        }
    }

    fn conn(shutdowns: &Arc<AtomicUsize>, busy: &Arc<AtomicBool>) -> Conn {
        Conn {
            shutdowns: Arc::clone(shutdowns),
            told: false,
            busy: Arc::clone(busy),
        }
    }

    #[test]
    fn the_drain_wakes_idle_connections_and_waits_for_busy_ones() {
        crate::serve::test_runtime().block_on(async {
            let drain = Arc::new(Drain::default());
            let shutdowns = Arc::new(AtomicUsize::new(0));
            let idle = Arc::new(AtomicBool::new(false));
            let busy = Arc::new(AtomicBool::new(true));
            let mut tasks = Vec::new();
            for i in 0..50 {
                let flag = if i == 7 { &busy } else { &idle };
                let watched = drain.watcher().watch(conn(&shutdowns, flag));
                tasks.push(tokio::spawn(watched));
            }
            // Some connections already gone: their entries are dropped.
            for _ in 0..10 {
                drop(drain.watcher());
            }
            // Every connection polled once and parked.
            tokio::task::yield_now().await;
            assert!(tasks.iter().all(|t| !t.is_finished()));

            let shutdown = {
                let drain = Arc::clone(&drain);
                tokio::spawn(async move { drain.shutdown().await })
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                !shutdown.is_finished(),
                "the drain did not wait for the busy one"
            );
            assert_eq!(tasks.iter().filter(|t| !t.is_finished()).count(), 1);

            // Watched after the drain started (a TLS handshake that ended
            // late): shut down at its first poll.
            let late = tokio::spawn(drain.watcher().watch(conn(&shutdowns, &idle)));
            busy.store(false, Ordering::SeqCst);
            let done = tokio::time::timeout(Duration::from_secs(5), shutdown).await;
            assert!(matches!(done, Ok(Ok(()))), "the drain never finished");
            for task in tasks {
                assert!(task.await.is_ok());
            }
            assert!(late.await.is_ok());
            assert_eq!(shutdowns.load(Ordering::SeqCst), 51);
        });
    }
}
