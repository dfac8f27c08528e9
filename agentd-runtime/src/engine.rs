//! The single-path walk of spec §4.
//!
//! Owns [`Engine`] (one run: start resolution, trigger context, the walk,
//! the report), the walk itself (routing, loop budgets, the step cap, the
//! deadline, retry with backoff, the trace and metrics) and child walks for
//! `call`/`parallel`/`map`. Dispatch is static: the engine calls
//! [`Workflow::exec`], a generated `match`.
//!
//! It must never implement a node kind (node functions live in
//! [`crate::nodes`]) except `pause_for_approval`, which the dialect defines
//! as engine-internal, and never read workflow files. It decides when a run
//! is checkpointed and how [`Engine::resume`] continues one (spec §8.6); the
//! file format, the state directory and its locks are [`crate::checkpoint`]'s.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::checkpoint::{self, Approval, CheckpointError, Claim, RunPoint, StateDir};
use crate::context::{AtomicMetrics, Cx, Frame, PolicyMode, PolicyRef, Shared, Step};
use crate::error::Error;
use crate::graph::{GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, RetryOn, Source, StartMeta};
use crate::outcome::{Outcome, RunReport, StepKind, Trace, TraceEntry};
use crate::workflow::Workflow;

/// Node visits allowed in one walk before the run errors (spec §4.4).
pub const MAX_STEPS: u32 = 10_000;

/// Deepest allowed child walk; the top-level walk is depth 0 (spec §4.8).
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
    /// Where `pause_for_approval` and progress checkpoints go
    /// (`--state-dir`). `None`: a pause is the dialect's hard error.
    pub state_dir: Option<StateDir>,
    /// Write a progress checkpoint after every node of the top-level walk
    /// (`--checkpoint-each-node`); needs `state_dir`.
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
            state_dir: None,
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
    /// `http_request` (spec/dialect-ops.md §12.6). `None`: no trace.
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
pub struct Engine<'w, W: Workflow> {
    workflow: &'w W,
    options: RunOptions,
    #[cfg(feature = "llm")]
    intel: crate::intel::Intel,
    #[cfg(feature = "mcp")]
    mcp: crate::mcp::Mcp,
}

impl<'w, W: Workflow> Engine<'w, W> {
    /// An engine for `workflow` with `options`.
    pub fn new(workflow: &'w W, options: RunOptions) -> Self {
        Self {
            workflow,
            options,
            // No backends yet; the budget is the workflow's own.
            #[cfg(feature = "llm")]
            intel: crate::intel::Intel::new(
                crate::intel::Backends::new(),
                crate::intel::TokenBudget::new(W::MAX_LLM_TOKENS),
            ),
            // The baked servers, each started on its first call.
            #[cfg(feature = "mcp")]
            mcp: crate::mcp::Mcp::from_defs(
                W::MCP_SERVERS,
                &crate::mcp::McpOptions::with_secrets(W::SECRETS, crate::mcp::DEFAULT_CALL_TIMEOUT),
            ),
        }
    }

    /// Use `intel` (LLM backends and token budget) for every run.
    #[cfg(feature = "llm")]
    #[must_use]
    pub fn with_intel(mut self, intel: crate::intel::Intel) -> Self {
        self.intel = intel;
        self
    }

    /// Use `mcp` (the named MCP servers) for every run.
    #[cfg(feature = "mcp")]
    #[must_use]
    pub fn with_mcp(mut self, mcp: crate::mcp::Mcp) -> Self {
        self.mcp = mcp;
        self
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
        let started = Instant::now();
        let execution_id = next_execution_id();
        let shared = self.shared(execution_id.clone(), trigger.traceparent.as_deref());
        let mut entries = Vec::new();
        let trace = self.options.record_trace.then_some(&mut entries);
        let deadline = started.checked_add(self.options.timeout);
        let mut durable = self.options.state_dir.as_ref().map(|dir| Durable {
            dir,
            each_node: self.options.checkpoint_each_node,
            run_id: execution_id.clone(),
            start_node: start.to_owned(),
            trigger_kind: trigger.kind,
            program_hash: W::INFO.program_hash,
            claim: None,
            resumed: false,
        });
        let run_obs = crate::obs::spans::RunObs::start(
            &execution_id,
            W::INFO.workflow,
            start,
            self.options.dry_run,
        );
        let outcome = run_top(
            self.workflow,
            &shared,
            start,
            trigger,
            deadline,
            trace,
            durable.as_mut(),
        );
        // `[budget].max_run_time_secs`, when it is what set the deadline.
        let run_time_cap = W::LIMITS
            .max_run_time_secs
            .filter(|cap| *cap > 0 && self.options.timeout >= Duration::from_secs(*cap));
        run_obs.finish(&execution_id, &outcome, run_time_cap);
        if let Some(durable) = durable {
            durable.finish(&outcome);
        }
        report(outcome, entries, &shared)
    }

    /// Resume run `run_id` from its checkpoint in the state directory (spec
    /// §8.6): `Approve` continues at `resume_node` with the saved outputs, a
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
        let dir = self
            .options
            .state_dir
            .as_ref()
            .ok_or(CheckpointError::NoStateDir)?;
        let claim = dir.claim(run_id)?;
        let saved = dir.load(run_id)?;
        saved.check_program(W::INFO.workflow, W::INFO.program_hash)?;
        if approval == Approval::Deny && !saved.awaiting_approval {
            return Err(CheckpointError::NotAwaitingApproval {
                run_id: saved.run_id,
            });
        }
        let graph = W::GRAPHS
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
        let shared = self.shared(saved.run_id.clone(), None);
        let mut durable = Durable {
            dir,
            each_node: self.options.checkpoint_each_node,
            run_id: saved.run_id.clone(),
            start_node: saved.start_node.clone(),
            trigger_kind,
            program_hash: W::INFO.program_hash,
            claim: Some(claim),
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
            )
            .map(|mut outcome| {
                if let Outcome::Completed { http_response, .. } = &mut outcome {
                    *http_response = frame.reply.take();
                }
                outcome
            }),
        };
        durable.finish(&outcome);
        Ok(report(outcome, entries, &shared))
    }

    /// The per-run state every walk of one run shares.
    fn shared(&self, execution_id: String, traceparent: Option<&str>) -> Shared {
        let policy = match &self.options.policy {
            PolicyMode::Baked => W::POLICY.map(PolicyRef::Baked),
            PolicyMode::AllowAll => None,
            PolicyMode::Override(p) => Some(PolicyRef::Owned(p.clone())),
        };
        Shared {
            execution_id,
            dry_run: self.options.dry_run,
            stub_unavailable: self.options.stub_unavailable,
            policy,
            metrics: AtomicMetrics::default(),
            #[cfg(feature = "llm")]
            intel: self.intel.clone(),
            #[cfg(feature = "mcp")]
            mcp: self.mcp.clone(),
            secrets: W::SECRETS,
            traceparent: traceparent.map(str::to_owned),
            fs_write: crate::budget::FsWriteLimit::of(&W::LIMITS),
        }
    }
}

/// The report of a finished run.
fn report(
    outcome: Result<Outcome, Error>,
    mut entries: Vec<TraceEntry>,
    shared: &Shared,
) -> RunReport {
    if outcome.is_err() {
        // Spec §4.4: a hard error has no outcome and no trace.
        entries.clear();
    }
    RunReport {
        outcome,
        trace: Trace {
            execution_id: shared.execution_id.clone(),
            entries,
        },
        metrics: shared.metrics.snapshot(),
        execution_id: shared.execution_id.clone(),
    }
}

/// The top-level walk's link to the state directory (child walks have
/// none: a child's pause is its parent's error, spec §4.8).
struct Durable<'e> {
    dir: &'e StateDir,
    each_node: bool,
    run_id: String,
    start_node: String,
    trigger_kind: Source,
    /// [`crate::graph::BuildInfo::program_hash`], stamped on every checkpoint.
    program_hash: &'static str,
    /// The run's lock: taken before the first checkpoint write (a resume
    /// takes it before reading), released when the run ends.
    claim: Option<Claim>,
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
        if self.claim.is_none() {
            self.claim = Some(self.dir.claim(&self.run_id).map_err(io_error)?);
        }
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
        self.dir.save(&saved).map_err(io_error)
    }

    /// End-of-run bookkeeping (spec §8.6): `completed` and `failed` delete
    /// the checkpoint; `timed_out` keeps a progress snapshot (when
    /// checkpointing each node) and otherwise deletes a resumed run's
    /// checkpoint; `paused` and hard errors keep it. Dropping `self`
    /// releases the run's lock.
    fn finish(self, outcome: &Result<Outcome, Error>) {
        let delete = match outcome {
            Ok(Outcome::Completed { .. } | Outcome::Failed { .. }) => true,
            Ok(Outcome::TimedOut { .. }) => self.resumed && !self.each_node,
            Ok(Outcome::Paused { .. }) | Err(_) => false,
        };
        // Without the lock this run never wrote a checkpoint.
        if delete
            && self.claim.is_some()
            && let Err(e) = self.dir.remove(&self.run_id)
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

fn io_error(e: CheckpointError) -> Error {
    Error::Io(std::io::Error::other(e.to_string()))
}

fn run_top<W: Workflow>(
    w: &W,
    shared: &Shared,
    start: &str,
    trigger: Trigger,
    deadline: Option<Instant>,
    trace: Option<&mut Vec<TraceEntry>>,
    mut durable: Option<&mut Durable<'_>>,
) -> Result<Outcome, Error> {
    let graph = W::GRAPHS
        .first()
        .ok_or_else(|| Error::Config("the workflow has no graphs".to_owned()))?;
    let (_, start_meta) = graph
        .start(start)
        .ok_or_else(|| Error::workflow(graph.name, format!("unknown start node `{start}`")))?;
    let entry = resolve_entry(graph, start_meta)?;
    let mut frame = Frame::new(
        graph,
        GraphId(0),
        trigger.kind,
        trigger.input,
        // An unrepresentable deadline is as good as none.
        deadline.unwrap_or_else(far_future),
        0,
    );
    if let Some(durable) = durable.as_deref_mut()
        && durable.each_node
    {
        // The first progress snapshot (trigger input, entry node), before
        // anything runs: a crash inside the first node still leaves a run
        // `--resume-incomplete` can start again.
        let entry_id = node_meta(graph, entry)?.id;
        durable.save(&frame, None, Some(entry_id), None, false)?;
    }
    let mut outcome = walk(w, shared, &mut frame, entry, trace, durable)?;
    // Only the top-level run carries the `respond` reply, and only when it
    // completed (spec §3.23).
    if let Outcome::Completed { http_response, .. } = &mut outcome {
        *http_response = frame.reply.take();
    }
    Ok(outcome)
}

/// Run start `start` of graph `graph` as a child walk at `depth` (already
/// checked against [`MAX_DEPTH`] by the caller) with `input` as its
/// manual trigger input. The child's `respond` reply and trace are dropped.
pub(crate) fn run_child<W: Workflow>(
    w: &W,
    shared: &Shared,
    graph: GraphId,
    start: u32,
    input: Value,
    deadline: Instant,
    depth: u32,
) -> Result<Outcome, Error> {
    let meta = graph_meta::<W>(graph)?;
    let start_meta = usize::try_from(start)
        .ok()
        .and_then(|i| meta.starts.get(i))
        .ok_or_else(|| Error::Config(format!("graph {} has no start index {start}", graph.0)))?;
    let entry = resolve_entry(meta, start_meta)?;
    let mut frame = Frame::new(meta, graph, Source::Manual, input, deadline, depth);
    walk(w, shared, &mut frame, entry, None, None)
}

fn graph_meta<W: Workflow>(graph: GraphId) -> Result<&'static GraphMeta, Error> {
    usize::try_from(graph.0)
        .ok()
        .and_then(|i| W::GRAPHS.get(i))
        .ok_or_else(|| Error::Config(format!("graph {} is not compiled in", graph.0)))
}

fn resolve_entry(graph: &GraphMeta, start: &StartMeta) -> Result<NodeIdx, Error> {
    start.entry.ok_or_else(|| {
        Error::workflow(
            graph.name,
            format!(
                "start node `{}` has no `entry_node` and the workflow has {} root nodes; \
                 specify `entry_node` explicitly",
                start.name, start.roots
            ),
        )
    })
}

/// The walk (spec §4.2–§4.4): visit, store, route, until an outcome.
fn walk<W: Workflow>(
    w: &W,
    shared: &Shared,
    frame: &mut Frame,
    entry: NodeIdx,
    mut trace: Option<&mut Vec<TraceEntry>>,
    mut durable: Option<&mut Durable<'_>>,
) -> Result<Outcome, Error> {
    let graph = frame.graph;
    let started = Instant::now();
    // Traversals per loop edge in this walk, keyed by edge index (§4.7).
    let mut loop_counts = vec![0_u32; usize::try_from(graph.edge_count).unwrap_or(0)];
    let mut current = entry;
    let mut last_entered: Option<&'static str> = None;
    let mut steps = 0_u32;

    loop {
        if steps == MAX_STEPS {
            return Err(Error::workflow(
                graph.name,
                format!(
                    "safety cap hit: engine walked {MAX_STEPS} nodes without reaching a \
                     terminal outcome"
                ),
            ));
        }
        steps += 1;

        // The deadline is checked only here, between nodes (§6.2).
        if Instant::now() >= frame.deadline {
            return Ok(Outcome::TimedOut {
                elapsed_ms: millis(started.elapsed()),
                last_node: last_entered,
            });
        }

        let node = node_meta(graph, current)?;
        last_entered = Some(node.id);

        if node.kind == Kind::PauseForApproval {
            return pause(w, shared, frame, current, node, durable, &mut trace);
        }

        AtomicMetrics::bump(&shared.metrics.node_executions);
        let visit_started = Instant::now();
        let node_obs = crate::obs::spans::NodeObs::start(node);
        let result = dispatch(w, shared, frame, current, node);
        let elapsed_ms = millis(visit_started.elapsed());
        node_obs.finish(&shared.execution_id, node, &result, elapsed_ms);

        let step = match result {
            Ok(step) => step,
            Err(err) => {
                AtomicMetrics::bump(&shared.metrics.node_failures);
                if matches!(err, Error::Policy(_)) {
                    AtomicMetrics::bump(&shared.metrics.policy_denials);
                }
                return Err(err);
            }
        };

        match step {
            Step::Terminate => {
                record(
                    &mut trace,
                    node,
                    StepKind::Terminate,
                    None,
                    Value::Null,
                    elapsed_ms,
                );
                frame.store(node.slot, Value::Null);
                return Ok(Outcome::Completed {
                    final_value: Value::Null,
                    last_node: Some(node.id),
                    http_response: None,
                });
            }
            Step::Fail { reason } => {
                // A fail node's output is not stored (§3.21).
                record(
                    &mut trace,
                    node,
                    StepKind::Fail,
                    None,
                    Value::Null,
                    elapsed_ms,
                );
                return Ok(Outcome::Failed {
                    reason,
                    last_node: Some(node.id),
                });
            }
            Step::Continue { value, branch } => {
                let next = pick_next(graph, current, node, branch.as_deref(), &mut loop_counts)?;
                if trace.is_some() {
                    record(
                        &mut trace,
                        node,
                        StepKind::Continue,
                        branch,
                        value.clone(),
                        elapsed_ms,
                    );
                }
                match next {
                    Some(to) => {
                        frame.store(node.slot, value);
                        if let Some(durable) = durable.as_deref_mut()
                            && durable.each_node
                        {
                            // Progress snapshot (§8.6): a crash from here on
                            // resumes at `to`, so `to` runs at least once.
                            let next_id = node_meta(graph, to)?.id;
                            durable.save(frame, Some(node.id), Some(next_id), None, false)?;
                        }
                        current = to;
                    }
                    None => {
                        // Dead end: the run completes with this node's output.
                        // (Storing it too would be unobservable: the walk is over.)
                        return Ok(Outcome::Completed {
                            final_value: value,
                            last_node: Some(node.id),
                            http_response: None,
                        });
                    }
                }
            }
        }
    }
}

fn node_meta(graph: &GraphMeta, idx: NodeIdx) -> Result<&'static NodeMeta, Error> {
    usize::try_from(idx.0)
        .ok()
        .and_then(|i| graph.nodes.get(i))
        .ok_or_else(|| {
            Error::Config(format!(
                "graph `{}` has no node index {}",
                graph.name, idx.0
            ))
        })
}

fn record(
    trace: &mut Option<&mut Vec<TraceEntry>>,
    node: &NodeMeta,
    outcome: StepKind,
    branch: Option<Cow<'static, str>>,
    output: Value,
    elapsed_ms: u64,
) {
    if let Some(entries) = trace {
        entries.push(TraceEntry {
            node_id: node.id,
            kind: node.kind,
            outcome,
            branch,
            output,
            elapsed_ms,
        });
    }
}

/// `pause_for_approval` (spec §3.22, §8.6), before any handler: without a
/// state directory the dialect's hard error; otherwise find the resume node
/// (the pause's sole unconditional successor, or none), save a checkpoint
/// awaiting approval, record the `pause` trace entry and end `paused`.
///
/// In a child walk nothing is saved (a child run cannot be resumed on its
/// own); the parent's `call`/`parallel`/`map` turns the `paused` outcome
/// into its "nested pause_for_approval is not supported" error.
fn pause<W: Workflow>(
    w: &W,
    shared: &Shared,
    frame: &Frame,
    idx: NodeIdx,
    node: &'static NodeMeta,
    durable: Option<&mut Durable<'_>>,
    trace: &mut Option<&mut Vec<TraceEntry>>,
) -> Result<Outcome, Error> {
    let reason = w.pause_reason(frame.graph_id, idx);
    let paused = Outcome::Paused {
        run_id: shared.execution_id.clone(),
        last_node: Some(node.id),
        reason,
    };
    if frame.depth > 0 {
        return Ok(paused);
    }
    let Some(durable) = durable else {
        return Err(Error::workflow(
            frame.graph.name,
            format!(
                "node `{}` is pause_for_approval but no state directory is configured \
                 (set --state-dir) — nowhere to checkpoint the run",
                node.id
            ),
        ));
    };
    let resume_node = match sole_unconditional_successor(frame.graph, idx, node)? {
        Some(to) => Some(node_meta(frame.graph, to)?.id),
        None => None,
    };
    durable.save(frame, Some(node.id), resume_node, reason, true)?;
    record(trace, node, StepKind::Pause, None, Value::Null, 0);
    crate::obs::audit(
        "workflow.paused",
        serde_json::json!({
            "execution_id": shared.execution_id,
            "workflow": frame.graph.name,
            "node": node.id,
            "resume_node": resume_node,
            "reason": reason,
        }),
    );
    Ok(paused)
}

/// The target of the pause node's only unconditional out-edge; `None` when
/// it has none; a hard error when it has several (spec §8.6).
fn sole_unconditional_successor(
    graph: &GraphMeta,
    idx: NodeIdx,
    node: &NodeMeta,
) -> Result<Option<NodeIdx>, Error> {
    let edges = usize::try_from(idx.0)
        .ok()
        .and_then(|i| graph.out_edges.get(i))
        .map_or(&[][..], |edges| *edges);
    let mut unconditional = edges.iter().filter(|e| e.when.is_none());
    match (unconditional.next(), unconditional.count()) {
        (None, _) => Ok(None),
        (Some(edge), 0) => Ok(Some(edge.to)),
        (Some(_), more) => Err(Error::workflow(
            graph.name,
            format!(
                "pause_for_approval node `{}` has {} unconditional out-edges; \
                 it must have at most one (the node to resume at)",
                node.id,
                more + 1
            ),
        )),
    }
}

/// Call the node through the generated dispatch, honouring its retry policy.
fn dispatch<W: Workflow>(
    w: &W,
    shared: &Shared,
    frame: &mut Frame,
    idx: NodeIdx,
    node: &'static NodeMeta,
) -> Result<Step, Error> {
    let graph_id = frame.graph_id;
    // Retry applies only to handler kinds (§6.1).
    let retry = node.retry.filter(|_| !node.kind.is_engine_internal());
    let max_attempts = retry.map_or(1, |r| r.max_attempts.max(1));
    let mut attempt = 1_u32;
    loop {
        let mut cx = Cx {
            shared,
            frame: &mut *frame,
            node,
        };
        let result = w.exec(graph_id, idx, &mut cx);
        let (Err(err), Some(policy)) = (&result, retry) else {
            return result;
        };
        let retryable = !err.is_never_retried()
            && match policy.on {
                RetryOn::Any => true,
                RetryOn::Transient => err.is_transient(),
            };
        if !retryable || attempt >= max_attempts {
            return result;
        }
        let wait = backoff(policy.backoff_ms, policy.jitter, attempt);
        // A backoff that would cross the deadline fails the node now (§6.1).
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|wake| wake > frame.deadline)
        {
            return Err(Error::Timeout(wait));
        }
        crate::obs::spans::node_retry(&shared.execution_id, node, attempt, &policy, wait, err);
        std::thread::sleep(wait);
        attempt += 1;
    }
}

/// Linear backoff `backoff_ms × attempt`, scaled by `1 + j × s` with
/// `j = jitter` clamped to `[0, 0.5]` and `s` pseudo-random in `[-1, 1]`.
fn backoff(backoff_ms: u64, jitter: f32, attempt: u32) -> Duration {
    let base = backoff_ms.saturating_mul(u64::from(attempt));
    let j = f64::from(jitter.clamp(0.0, 0.5));
    if j.is_nan() || j <= 0.0 {
        return Duration::from_millis(base);
    }
    // Decorrelation, not secrecy: clock nanos mixed with the attempt.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let bits = nanos ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // `bits % 2001` is exact in f64; s ∈ [-1, 1].
    #[allow(clippy::cast_precision_loss)]
    let s = (bits % 2001) as f64 / 1000.0 - 1.0;
    let factor = 1.0 + j * s;
    Duration::try_from_secs_f64((base as f64 / 1000.0 * factor).max(0.0)).unwrap_or(Duration::MAX)
}

/// Successor selection (spec §4.2): label filter, loop budgets, then
/// exactly one candidate or none.
fn pick_next(
    graph: &GraphMeta,
    current: NodeIdx,
    node: &NodeMeta,
    branch: Option<&str>,
    loop_counts: &mut [u32],
) -> Result<Option<NodeIdx>, Error> {
    let edges = usize::try_from(current.0)
        .ok()
        .and_then(|i| graph.out_edges.get(i))
        .ok_or_else(|| {
            Error::Config(format!(
                "graph `{}` has no out-edge table for node `{}`",
                graph.name, node.id
            ))
        })?;
    let mut chosen = None;
    let mut matching = 0_usize;
    for edge in *edges {
        // An unconditional edge never serves a label and vice versa.
        if edge.when != branch {
            continue;
        }
        if let Some(max) = edge.max_iterations {
            let used = usize::try_from(edge.index)
                .ok()
                .and_then(|i| loop_counts.get(i))
                .copied()
                .unwrap_or(u32::MAX);
            if used >= max {
                continue;
            }
        }
        matching += 1;
        chosen.get_or_insert(edge);
    }
    match (matching, chosen) {
        (1, Some(edge)) => {
            if edge.max_iterations.is_some()
                && let Some(count) = usize::try_from(edge.index)
                    .ok()
                    .and_then(|i| loop_counts.get_mut(i))
            {
                *count += 1;
            }
            Ok(Some(edge.to))
        }
        (0, _) | (_, None) => Ok(None),
        (n, Some(_)) => Err(Error::workflow(
            graph.name,
            format!(
                "node `{}` has {n} matching out-edges for branch `{branch:?}`; \
                 workflow graphs must select exactly one",
                node.id
            ),
        )),
    }
}

/// `exec-<unix secs hex>-<pid hex>-<counter hex>`, unique per process run.
#[must_use]
pub fn next_execution_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // getpid(2) is a system call each time (glibc does not cache it), and a
    // server runs this once per request; the id of this process never changes.
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    // Written by hand rather than with `format!`: the formatting machinery
    // was most of the cost of a trivial served run.
    let mut id = String::with_capacity(5 + 16 + 1 + 8 + 1 + 16);
    id.push_str("exec-");
    push_hex(&mut id, secs);
    id.push('-');
    push_hex(&mut id, u64::from(pid));
    id.push('-');
    push_hex(&mut id, n);
    id
}

/// Append `v` in lower-case hex without leading zeros (`{:x}`).
fn push_hex(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0_u8; 16];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
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
