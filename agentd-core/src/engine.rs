//! The single-path walk of docs/dialect.md §8.
//!
//! Owns [`Engine`] (one run: options, trigger context, checkpoints around
//! the walk, the report); the walk itself (routing, loop budgets, the step
//! cap, the deadline, retry with backoff, the trace and metrics, child walks
//! for `call`/`parallel`/`map`) is `engine/walk.rs`. The engine is not
//! generic: it is compiled once, here, and calls the generated `match`
//! ([`Workflow::exec`]) through [`DynWorkflow`], one indirect call per node.
//!
//! It must never implement a node kind (node functions live in
//! [`crate::nodes`]) except `pause_for_approval`, which the dialect defines
//! as engine-internal, and never read workflow files. It decides when a run
//! is checkpointed and how [`Engine::resume`] continues one (docs/operations.md "Approval, resume and checkpoints"); the
//! file format, the state directory and its locks are [`crate::checkpoint`]'s.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::checkpoint::{self, Approval, CheckpointError, Checkpoints, RunLock, RunPoint};
use crate::context::{AtomicMetrics, Cx, Ext, Exts, Frame, PolicyMode, PolicyRef, Shared, Step};
use crate::error::Error;
use crate::graph::{GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, RetryOn, Source, StartMeta};
use crate::outcome::{Outcome, RunReport, StepKind, Trace, TraceEntry};
#[cfg(doc)]
use crate::workflow::Workflow;
use crate::workflow::{DynWorkflow, WorkflowDef};

mod walk;

pub(crate) use walk::run_child;
use walk::{run_top, walk};

/// Node visits allowed in one walk before the run errors (docs/dialect.md §8.3).
pub const MAX_STEPS: u32 = 10_000;

/// Deepest allowed child walk; the top-level walk is depth 0 (docs/dialect.md §11).
pub const MAX_DEPTH: u32 = 8;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Skip side effects; each node returns its dry-run placeholder.
    pub dry_run: bool,
    /// Run deadline, measured from the start of the run.
    pub timeout: Duration,
    /// Which policy gates the run.
    pub policy: PolicyMode,
    /// Kinds not compiled in answer `{"stub": "<kind>"}` instead of failing
    /// with `capability unavailable` (the conformance/fixture harnesses).
    pub stub_unavailable: bool,
    /// Keep a trace of the top-level walk (each entry clones the node's
    /// output, so the CLI turns this off).
    pub record_trace: bool,
    /// Where `pause_for_approval` and progress checkpoints go: a
    /// [`checkpoint::StateDir`] (`--state-dir`) or a fleet's shared store
    /// (`--state-url`). `None`: a pause is the dialect's hard error.
    pub checkpoints: Option<Arc<dyn Checkpoints>>,
    /// Write a progress checkpoint after every node of the top-level walk
    /// (`--checkpoint-each-node`); needs `checkpoints`.
    pub checkpoint_each_node: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            timeout: Duration::from_secs(120),
            policy: PolicyMode::Baked,
            stub_unavailable: false,
            record_trace: true,
            checkpoints: None,
            checkpoint_each_node: false,
        }
    }
}

/// The trigger of a run: its kind and raw input.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// `trigger.kind` (before input keys override it).
    pub kind: Source,
    /// The raw input (`null` when none).
    pub input: Value,
    /// The run's own W3C `traceparent` (serve mode): the inbound header's
    /// child, made with [`crate::traceparent::outbound`] by whoever received
    /// it, so the reply can echo the same span the run sends on every
    /// `http_request` (docs/operations.md "traceparent"). `None`: no trace.
    pub traceparent: Option<String>,
}

impl Trigger {
    /// A manual trigger (CLI one-shot, schedules, children).
    #[must_use]
    pub fn manual(input: Value) -> Self {
        Self {
            kind: Source::Manual,
            input,
            traceparent: None,
        }
    }
}

/// Runs one workflow. Cheap to build; holds no per-run state.
#[derive(Debug)]
pub struct Engine<'w> {
    workflow: &'w dyn DynWorkflow,
    def: &'static WorkflowDef,
    options: RunOptions,
    /// The caller drops a completed run's `final_value` when the run carries
    /// an HTTP reply ([`Engine::reply_only`]).
    reply_only: bool,
    /// The feature subsystems' state for every run (LLM backends and token
    /// budget, MCP servers): built by the workflow's [`crate::workflow::Hooks`],
    /// or lent by the caller.
    exts: Option<Arc<Exts>>,
}

/// What `def`'s hooks build for a new engine ([`Exts`]); `None` when it has
/// none, the usual case.
#[inline]
fn exts_from_hooks(def: &'static WorkflowDef) -> Option<Arc<Exts>> {
    let hooks = def.hooks;
    if hooks.llm.is_none() && hooks.mcp.is_none() {
        return None;
    }
    Some(Arc::new(Exts {
        llm: hooks.llm.map(|build| build(def)),
        mcp: hooks.mcp.map(|build| build(def)),
    }))
}

impl<'w> Engine<'w> {
    /// An engine for `workflow` (any [`Workflow`]) with `options`.
    #[inline]
    pub fn new(workflow: &'w dyn DynWorkflow, options: RunOptions) -> Self {
        let def = workflow.def();
        Self {
            workflow,
            def,
            options,
            reply_only: false,
            // The subsystems' own defaults: no LLM backends yet and the
            // workflow's token budget; the baked MCP servers, each started on
            // its first call.
            exts: exts_from_hooks(def),
        }
    }

    /// Use `state` as the LLM subsystem's state (backends and token budget)
    /// for every run. The runtime facade's `with_intel` calls this; the core
    /// never looks inside (ARCHITECTURE.md, "The core and the facade").
    #[doc(hidden)]
    #[must_use]
    pub fn with_llm_state(mut self, state: Ext) -> Self {
        let mut exts = self.exts.as_deref().cloned().unwrap_or_default();
        exts.llm = Some(state);
        self.exts = Some(Arc::new(exts));
        self
    }

    /// Use `state` as the MCP subsystem's state (the named servers) for every
    /// run (the facade's `with_mcp`).
    #[doc(hidden)]
    #[must_use]
    pub fn with_mcp_state(mut self, state: Ext) -> Self {
        let mut exts = self.exts.as_deref().cloned().unwrap_or_default();
        exts.mcp = Some(state);
        self.exts = Some(Arc::new(exts));
        self
    }

    /// An engine for `workflow` whose runs use `exts` (a server lends every
    /// request's engine the state it built once) instead of what the
    /// workflow's hooks would build.
    #[doc(hidden)]
    #[inline]
    #[must_use]
    pub fn lent(
        workflow: &'w dyn DynWorkflow,
        options: RunOptions,
        exts: Option<Arc<Exts>>,
    ) -> Self {
        Self {
            workflow,
            def: workflow.def(),
            options,
            reply_only: false,
            exts,
        }
    }

    /// Runs for a caller that answers a completed run carrying an HTTP reply
    /// with that reply alone (serve mode) and drops its `final_value`
    /// unread: a `respond` node that ends the top-level walk then skips
    /// building its output (docs/performance.md, "Issue 19 round 4"). The
    /// outcome's `final_value` is `null` in exactly those runs.
    #[must_use]
    pub fn reply_only(mut self) -> Self {
        self.reply_only = true;
        self
    }

    /// The definitions of the workflow this engine runs.
    #[must_use]
    pub fn def(&self) -> &'static WorkflowDef {
        self.def
    }

    /// The options runs use.
    #[must_use]
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// Run the start named `start` of the top-level graph.
    ///
    /// Never panics on bad input: every problem is either an [`Outcome`] or
    /// the `Err` of [`RunReport::outcome`].
    pub fn run(&self, start: &str, trigger: Trigger) -> RunReport {
        self.run_as(start, trigger, None, Instant::now())
    }

    /// [`Engine::run`] for a served request whose input carries
    /// `principal` (docs/operations.md "Bodies and the trigger"): the run sees
    /// `merge_principal(trigger.input, principal)`, built only if something
    /// reads the whole input. `started` is the caller's reading of the clock
    /// as the run begins (serve mode times its run metrics from the same
    /// reading): the run's deadline, its `elapsed_ms` and, unless something
    /// was logged before the walk, the walk's start count from it.
    pub fn run_as(
        &self,
        start: &str,
        mut trigger: Trigger,
        principal: Option<std::borrow::Cow<'static, Value>>,
        started: Instant,
    ) -> RunReport {
        let mut shared = self.shared(next_execution_id(), trigger.traceparent.take());
        let execution_id = &shared.execution_id;
        let mut entries = Vec::new();
        let trace = self.options.record_trace.then_some(&mut entries);
        let deadline = started.checked_add(self.options.timeout);
        let mut durable = self.options.checkpoints.as_deref().map(|store| Durable {
            store,
            each_node: self.options.checkpoint_each_node,
            run_id: execution_id.to_owned(),
            start_node: start.to_owned(),
            trigger_kind: trigger.kind,
            program_hash: self.def.info.program_hash,
            lock: None,
            resumed: false,
        });
        let run_obs = crate::obs::spans::RunObs::start(
            execution_id,
            self.def.info.workflow,
            start,
            self.options.dry_run,
            started,
        );
        // Nothing but computation since `started` unless the run's span or
        // `workflow.started` was written: then the walk reads its own start,
        // as the first node's latency must not include a log write.
        let walk_started = if run_obs.quiet() {
            started
        } else {
            Instant::now()
        };
        let outcome = run_top(
            self.workflow,
            &shared,
            start,
            // The served request's principal travels beside its input.
            (trigger, principal),
            (walk_started, deadline),
            trace,
            durable.as_mut(),
        );
        // `[budget].max_run_time_secs`, when it is what set the deadline.
        let run_time_cap = self
            .def
            .limits
            .max_run_time_secs
            .filter(|cap| *cap > 0 && self.options.timeout >= Duration::from_secs(*cap));
        run_obs.finish(execution_id, &outcome, run_time_cap);
        if let Some(durable) = durable {
            durable.finish(&outcome);
        }
        report(outcome, entries, &mut shared)
    }

    /// Resume run `run_id` from its checkpoint in the state directory (docs/operations.md
    /// "Approval, resume and checkpoints"): `Approve` continues at `resume_node` with the saved outputs, a
    /// fresh deadline and fresh loop counters (a checkpoint without a
    /// `resume_node` completes at once); `Deny` ends the run `failed`. The
    /// trace holds only post-resume nodes. A `completed` or `failed` end
    /// deletes the checkpoint; a hard error leaves it for another attempt.
    ///
    /// The run's lock is taken before the checkpoint is read and held to
    /// the end, so a run still in progress, or a second resumer, is refused.
    ///
    /// # Errors
    ///
    /// Why the checkpoint cannot be resumed (no state dir, missing, corrupt,
    /// another workflow or build, in use, `Deny` of a progress snapshot);
    /// the run has not started then. Problems during the run are in the
    /// report, as for [`Engine::run`].
    pub fn resume(&self, run_id: &str, approval: Approval) -> Result<RunReport, CheckpointError> {
        let store = self
            .options
            .checkpoints
            .as_deref()
            .ok_or(CheckpointError::NoStateDir)?;
        let lock = store.claim(run_id)?;
        let saved = store.load(run_id)?;
        saved.check_program(self.def.info.workflow, self.def.info.program_hash)?;
        if approval == Approval::Deny && !saved.awaiting_approval {
            return Err(CheckpointError::NotAwaitingApproval {
                run_id: saved.run_id,
            });
        }
        let graph = self
            .def
            .graphs
            .first()
            .ok_or_else(|| CheckpointError::WorkflowMismatch {
                run_id: saved.run_id.clone(),
                found: saved.workflow.clone(),
                expected: "(no graphs compiled in)".to_owned(),
            })?;
        let named = |id: &Option<String>| {
            id.as_deref()
                .map(|id| checkpoint::node_named(graph, run_id, id))
                .transpose()
        };
        let paused_at = named(&saved.paused_at)?.map(|(_, node)| node.id);
        let resume_at = named(&saved.resume_node)?.map(|(idx, _)| idx);

        let started = Instant::now();
        let deadline = started
            .checked_add(self.options.timeout)
            .unwrap_or_else(far_future);
        let trigger_kind = Source::from(saved.trigger_kind);
        let mut frame = Frame::new(
            graph,
            GraphId(0),
            trigger_kind,
            saved.trigger_input.clone(),
            deadline,
            0,
        );
        checkpoint::restore(&mut frame, &saved)?;
        let mut shared = self.shared(saved.run_id.clone(), None);
        let mut durable = Durable {
            store,
            each_node: self.options.checkpoint_each_node,
            run_id: saved.run_id.clone(),
            start_node: saved.start_node.clone(),
            trigger_kind,
            program_hash: self.def.info.program_hash,
            lock: Some(lock),
            resumed: true,
        };
        crate::obs::audit(
            "workflow.resumed",
            serde_json::json!({
                "execution_id": saved.run_id,
                "workflow": saved.workflow,
                "decision": match approval {
                    Approval::Approve => "approve",
                    Approval::Deny => "deny",
                },
                "resume_node": saved.resume_node,
            }),
        );
        let mut entries = Vec::new();
        let trace = self.options.record_trace.then_some(&mut entries);
        let outcome = match (approval, resume_at) {
            (Approval::Deny, _) => Ok(Outcome::Failed {
                reason: format!(
                    "approval denied at `{}`",
                    paused_at.unwrap_or("pause_for_approval")
                )
                .into(),
                last_node: paused_at,
            }),
            (Approval::Approve, None) => Ok(Outcome::Completed {
                final_value: Value::Null,
                last_node: paused_at,
                http_response: None,
            }),
            (Approval::Approve, Some(entry)) => walk(
                self.workflow,
                &shared,
                &mut frame,
                entry,
                trace,
                Some(&mut durable),
                Instant::now(),
            )
            .map(|mut outcome| {
                if let Outcome::Completed { http_response, .. } = &mut outcome {
                    *http_response = frame.reply.take();
                }
                outcome
            }),
        };
        durable.finish(&outcome);
        Ok(report(outcome, entries, &mut shared))
    }

    /// The per-run state every walk of one run shares.
    fn shared(&self, execution_id: String, traceparent: Option<String>) -> Shared {
        let policy = match &self.options.policy {
            PolicyMode::Baked => self.def.policy.map(PolicyRef::Baked),
            PolicyMode::AllowAll => None,
            PolicyMode::Override(p) => Some(PolicyRef::Owned(p.clone())),
        };
        Shared {
            execution_id,
            dry_run: self.options.dry_run,
            stub_unavailable: self.options.stub_unavailable,
            policy,
            metrics: AtomicMetrics::default(),
            exts: self.exts.clone(),
            secrets: self.def.secrets,
            traceparent,
            // Nothing reads the final value: not the caller, not a trace.
            final_value_unread: self.reply_only && !self.options.record_trace,
            // A run that another replica may re-run from its last checkpoint
            // tells servers which requests are repeats.
            idempotency_keys: self.options.checkpoint_each_node
                && self
                    .options
                    .checkpoints
                    .as_deref()
                    .is_some_and(Checkpoints::shared),
            fs_write: crate::budget::FsWriteLimit::of(&self.def.limits),
        }
    }
}

/// The report of a finished run; takes the execution id out of `shared`
/// (borrowed, not moved: `Shared` is ~150 bytes).
fn report(
    outcome: Result<Outcome, Error>,
    mut entries: Vec<TraceEntry>,
    shared: &mut Shared,
) -> RunReport {
    if outcome.is_err() {
        // docs/dialect.md §13: a hard error has no outcome and no trace.
        entries.clear();
    }
    let metrics = shared.metrics.snapshot();
    let execution_id = std::mem::take(&mut shared.execution_id);
    RunReport {
        outcome,
        trace: Trace {
            execution_id: execution_id.clone(),
            entries,
        },
        metrics,
        execution_id,
    }
}

/// The top-level walk's link to the checkpoint store (child walks have
/// none: a child's pause is its parent's error, docs/dialect.md §11).
struct Durable<'e> {
    store: &'e dyn Checkpoints,
    each_node: bool,
    run_id: String,
    start_node: String,
    trigger_kind: Source,
    /// [`crate::graph::BuildInfo::program_hash`], stamped on every checkpoint.
    program_hash: &'static str,
    /// The run's lock: taken before the first checkpoint write (a resume
    /// takes it before reading), released when the run ends.
    lock: Option<Box<dyn RunLock>>,
    /// The run started from a checkpoint.
    resumed: bool,
}

impl Durable<'_> {
    /// Write this run's checkpoint of `frame`.
    fn save(
        &mut self,
        frame: &Frame,
        paused_at: Option<&str>,
        resume_node: Option<&str>,
        reason: Option<&str>,
        awaiting_approval: bool,
    ) -> Result<(), Error> {
        let lock = match &mut self.lock {
            Some(lock) => lock,
            None => self
                .lock
                .insert(self.store.claim(&self.run_id).map_err(io_error)?),
        };
        let point = RunPoint {
            run_id: &self.run_id,
            start_node: &self.start_node,
            trigger_kind: self.trigger_kind,
            program_hash: self.program_hash,
        };
        let saved = checkpoint::capture(
            frame,
            &point,
            paused_at,
            resume_node,
            reason,
            awaiting_approval,
        );
        lock.save(&saved).map_err(io_error)
    }

    /// End-of-run bookkeeping (docs/operations.md "Approval, resume and checkpoints"): `completed` and `failed` delete
    /// the checkpoint; `timed_out` keeps a progress snapshot (when
    /// checkpointing each node, in a store of its own) and otherwise
    /// deletes a resumed run's checkpoint; `paused` and hard errors keep
    /// it. Dropping `self` releases the run's lock.
    ///
    /// In a shared store a timed-out run's snapshot is deleted too: the
    /// fleet would otherwise take it over and time it out again, forever.
    fn finish(mut self, outcome: &Result<Outcome, Error>) {
        let delete = match outcome {
            Ok(Outcome::Completed { .. } | Outcome::Failed { .. }) => true,
            Ok(Outcome::TimedOut { .. }) => {
                (self.resumed && !self.each_node) || self.store.shared()
            }
            Ok(Outcome::Paused { .. }) | Err(_) => false,
        };
        // Without the lock this run never wrote a checkpoint.
        if delete
            && let Some(lock) = &mut self.lock
            && let Err(e) = lock.remove()
        {
            // The outcome stands; a leftover checkpoint would be resumed again,
            // so say so loudly.
            crate::obs::audit(
                "checkpoint.remove_failed",
                serde_json::json!({ "execution_id": self.run_id, "error": e.to_string() }),
            );
        }
    }
}

/// A checkpoint failure during a run: a hard error that keeps the
/// [`CheckpointError`] as its source (serve mode answers an unreachable
/// shared store with 503, as for its other uses of the store).
fn io_error(e: CheckpointError) -> Error {
    Error::Io(std::io::Error::other(e))
}

/// `exec-<unix secs hex>-<pid hex>-<counter hex>`, unique per process run.
#[must_use]
pub fn next_execution_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let secs = unix_secs();
    // `exec-<secs>-<pid>-` changes once a second: each thread keeps the one
    // it wrote last, so a run writes only its counter's digits (the id is
    // one allocation of its exact length, no formatter, no UTF-8 check).
    thread_local! {
        static PREFIX: RefCell<(Option<u64>, String)> = const { RefCell::new((None, String::new())) };
    }
    PREFIX.with_borrow_mut(|(at, prefix)| {
        if *at != Some(secs) {
            prefix.clear();
            prefix.push_str("exec-");
            push_hex(prefix, secs);
            prefix.push('-');
            push_hex(prefix, u64::from(pid()));
            prefix.push('-');
            *at = Some(secs);
        }
        let mut id = String::with_capacity(prefix.len() + hex_digits(n));
        id.push_str(prefix);
        push_hex(&mut id, n);
        id
    })
}

/// Whole seconds since the UNIX epoch, for an execution id. On Linux from
/// `CLOCK_REALTIME_COARSE`: the wall clock as of the last scheduler tick (a
/// few milliseconds behind at most), read without `SystemTime`'s checked
/// conversions; the id names the second, so that is precise enough.
fn unix_secs() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(secs) = coarse_wall_secs() {
        return secs;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(target_os = "linux")]
fn coarse_wall_secs() -> Option<u64> {
    crate::clock::nanos(libc::CLOCK_REALTIME_COARSE).map(|n| n / 1_000_000_000)
}

/// This process's id. getpid(2) is a system call each time (glibc does not
/// cache it); the id of this process never changes.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// How many hex digits `{:x}` writes for `v` (at least one).
fn hex_digits(v: u64) -> usize {
    // At most 16: the cast cannot truncate.
    (64 - (v | 1).leading_zeros()).div_ceil(4) as usize
}

/// Append `v` in lower-case hex without leading zeros (`{:x}`) to `out`.
fn push_hex(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for at in (0..hex_digits(v)).rev() {
        // `at < 16`, so the shift is in range and the nibble indexes DIGITS.
        out.push(char::from(DIGITS[((v >> (at * 4)) & 0xf) as usize]));
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A deadline nobody reaches (`Instant` has no max; try decreasing spans).
fn far_future() -> Instant {
    let now = Instant::now();
    [1_000_000_000, 10_000_000, 100_000]
        .into_iter()
        .find_map(|secs| now.checked_add(Duration::from_secs(secs)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
