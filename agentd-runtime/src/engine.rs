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
//! as engine-internal, and never read workflow files.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::Workflow;
use crate::context::{AtomicMetrics, Cx, Frame, PolicyMode, PolicyRef, Shared, Step};
use crate::error::Error;
use crate::graph::{GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, RetryOn, Source, StartMeta};
use crate::outcome::{Outcome, RunReport, StepKind, Trace, TraceEntry};

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
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            timeout: Duration::from_secs(120),
            policy: PolicyMode::Baked,
            stub_unavailable: false,
            record_trace: true,
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
}

impl Trigger {
    /// A manual trigger (CLI one-shot, schedules, children).
    #[must_use]
    pub fn manual(input: Value) -> Self {
        Self {
            kind: Source::Manual,
            input,
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
        }
    }

    /// Use `intel` (LLM backends and token budget) for every run.
    #[cfg(feature = "llm")]
    #[must_use]
    pub fn with_intel(mut self, intel: crate::intel::Intel) -> Self {
        self.intel = intel;
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
        let policy = match &self.options.policy {
            PolicyMode::Baked => W::POLICY.map(PolicyRef::Baked),
            PolicyMode::AllowAll => None,
            PolicyMode::Override(p) => Some(PolicyRef::Owned(p.clone())),
        };
        let shared = Shared {
            execution_id: execution_id.clone(),
            dry_run: self.options.dry_run,
            stub_unavailable: self.options.stub_unavailable,
            policy,
            metrics: AtomicMetrics::default(),
            #[cfg(feature = "llm")]
            intel: self.intel.clone(),
        };
        let mut entries = Vec::new();
        let trace = self.options.record_trace.then_some(&mut entries);
        let deadline = started.checked_add(self.options.timeout);
        let outcome = run_top(self.workflow, &shared, start, trigger, deadline, trace);
        if outcome.is_err() {
            // Spec §4.4: a hard error has no outcome and no trace.
            entries.clear();
        }
        RunReport {
            outcome,
            trace: Trace {
                execution_id: execution_id.clone(),
                entries,
            },
            metrics: shared.metrics.snapshot(),
            execution_id,
        }
    }
}

fn run_top<W: Workflow>(
    w: &W,
    shared: &Shared,
    start: &str,
    trigger: Trigger,
    deadline: Option<Instant>,
    trace: Option<&mut Vec<TraceEntry>>,
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
    let mut outcome = walk(w, shared, &mut frame, entry, trace)?;
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
    walk(w, shared, &mut frame, entry, None)
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
            return pause(frame, node);
        }

        AtomicMetrics::bump(&shared.metrics.node_executions);
        let visit_started = Instant::now();
        let result = dispatch(w, shared, frame, current, node);
        let elapsed_ms = millis(visit_started.elapsed());

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

/// `pause_for_approval` (spec §3.22, §8.6).
///
/// Checkpointing needs a state directory, which this runtime does not have
/// yet, so a pause is the dialect's hard error. The state-dir issue replaces
/// this function: compute the resume node, write the checkpoint, push the
/// `pause` trace entry and return [`Outcome::Paused`].
fn pause(frame: &Frame, node: &NodeMeta) -> Result<Outcome, Error> {
    Err(Error::workflow(
        frame.graph.name,
        format!(
            "node `{}` is pause_for_approval but no state directory is configured \
             (set --state-dir) — nowhere to checkpoint the run",
            node.id
        ),
    ))
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
    format!("exec-{secs:x}-{:x}-{n:x}", std::process::id())
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
