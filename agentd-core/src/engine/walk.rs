//! The walk itself: start resolution, routing (labelled and unconditional
//! edges, loop budgets), the step cap, the deadline, retry with backoff, the
//! trace, `pause_for_approval` and child walks for `call`/`parallel`/`map`.
//!
//! Owns the step-by-step semantics of docs/dialect.md §8 for one graph; the run around
//! it (options, the trigger context, checkpoints, the report) is the parent
//! module's. Never implements another node kind: every other node is one
//! call to [`Workflow::exec`], through [`DynWorkflow`].

use super::*;

pub(super) fn run_top(
    w: &dyn DynWorkflow,
    shared: &Shared,
    start: &str,
    (trigger, principal): (Trigger, Option<Cow<'static, serde_json::Value>>),
    (mut started, deadline): (Instant, Option<Instant>),
    trace: Option<&mut Vec<TraceEntry>>,
    mut durable: Option<&mut Durable<'_>>,
) -> Result<Outcome, Error> {
    let graph = w
        .def()
        .graphs
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
    if let Some(principal) = principal {
        frame.with_principal(principal);
    }
    if let Some(durable) = durable.as_deref_mut()
        && durable.each_node
    {
        // The first progress snapshot (trigger input, entry node), before
        // anything runs: a crash inside the first node still leaves a run
        // `--resume-incomplete` can start again.
        let entry_id = node_meta(graph, entry)?.id;
        durable.save(&frame, None, Some(entry_id), None, false)?;
        // The walk starts after the write.
        started = Instant::now();
    }
    let mut outcome = walk(w, shared, &mut frame, entry, trace, durable, started)?;
    // Only the top-level run carries the `respond` reply, and only when it
    // completed (docs/dialect.md §7 `respond`).
    if let Outcome::Completed { http_response, .. } = &mut outcome {
        *http_response = frame.reply.take();
    }
    Ok(outcome)
}

/// Run start `start` of graph `graph` as a child walk at `depth` (already
/// checked against [`MAX_DEPTH`] by the caller) with `input` as its
/// manual trigger input. The child's `respond` reply and trace are dropped.
pub(crate) fn run_child(
    w: &dyn DynWorkflow,
    shared: &Shared,
    graph: GraphId,
    start: u32,
    input: Value,
    deadline: Instant,
    depth: u32,
) -> Result<Outcome, Error> {
    let meta = graph_meta(w, graph)?;
    let start_meta = usize::try_from(start)
        .ok()
        .and_then(|i| meta.starts.get(i))
        .ok_or_else(|| Error::Config(format!("graph {} has no start index {start}", graph.0)))?;
    let entry = resolve_entry(meta, start_meta)?;
    let mut frame = Frame::new(meta, graph, Source::Manual, input, deadline, depth);
    walk(w, shared, &mut frame, entry, None, None, Instant::now())
}

fn graph_meta(w: &dyn DynWorkflow, graph: GraphId) -> Result<&'static GraphMeta, Error> {
    usize::try_from(graph.0)
        .ok()
        .and_then(|i| w.def().graphs.get(i))
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

/// The walk (docs/dialect.md §8.1–§8.3): visit, store, route, until an outcome.
/// `started` is the walk's start, read by the caller (the run's own start
/// for a top-level walk with nothing logged before it).
pub(super) fn walk(
    w: &dyn DynWorkflow,
    shared: &Shared,
    frame: &mut Frame,
    entry: NodeIdx,
    mut trace: Option<&mut Vec<TraceEntry>>,
    mut durable: Option<&mut Durable<'_>>,
    started: Instant,
) -> Result<Outcome, Error> {
    let graph = frame.graph;
    // The clock as last read: the walk's start, then the end of each visit
    // (or of its checkpoint). The deadline check and the next visit's start
    // use it rather than reading the clock twice more per node
    // (docs/performance.md, "Serving CPU, round 5").
    let mut now = started;
    // Traversals per loop edge in this walk, keyed by edge index (docs/dialect.md §8.2);
    // allocated when a loop edge is first looked at, so a walk that meets
    // none allocates nothing.
    let mut loop_counts = Vec::new();
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

        // The deadline is checked only here, between nodes (docs/dialect.md §10.2).
        if now >= frame.deadline {
            return Ok(Outcome::TimedOut {
                elapsed_ms: millis(now.duration_since(started)),
                last_node: last_entered,
            });
        }

        let node = node_meta(graph, current)?;
        last_entered = Some(node.id);

        if node.kind == Kind::PauseForApproval {
            return pause(w, shared, frame, current, node, durable, &mut trace);
        }

        AtomicMetrics::bump(&shared.metrics.node_executions);
        frame.visit(node.slot);
        let visit_started = now;
        let node_obs = crate::obs::spans::NodeObs::start(node);
        let result = dispatch(w, shared, frame, current, node);
        now = Instant::now();
        // The visit's latency is worked out only where something reads it:
        // a trace entry, an enabled span or event (`NodeObs::finish`).
        node_obs.finish(&shared.execution_id, node, &result, (visit_started, now));
        let elapsed_ms = if trace.is_some() {
            millis(now.duration_since(visit_started))
        } else {
            0
        };

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
                // A fail node's output is not stored (docs/dialect.md §7 `fail`).
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
                            // Progress snapshot (docs/operations.md "Approval, resume and checkpoints"): a crash from here on
                            // resumes at `to`, so `to` runs at least once.
                            let next_id = node_meta(graph, to)?.id;
                            durable.save(frame, Some(node.id), Some(next_id), None, false)?;
                            now = Instant::now();
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

/// `pause_for_approval` (docs/dialect.md §7 `pause_for_approval`; docs/operations.md "Approval, resume and checkpoints"), before any handler: without a
/// state directory the dialect's hard error; otherwise find the resume node
/// (the pause's sole unconditional successor, or none), save a checkpoint
/// awaiting approval, record the `pause` trace entry and end `paused`.
///
/// In a child walk nothing is saved (a child run cannot be resumed on its
/// own); the parent's `call`/`parallel`/`map` turns the `paused` outcome
/// into its "nested pause_for_approval is not supported" error.
fn pause(
    w: &dyn DynWorkflow,
    shared: &Shared,
    frame: &Frame,
    idx: NodeIdx,
    node: &'static NodeMeta,
    durable: Option<&mut Durable<'_>>,
    trace: &mut Option<&mut Vec<TraceEntry>>,
) -> Result<Outcome, Error> {
    let reason = w.node_pause_reason(frame.graph_id, idx);
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
/// it has none; a hard error when it has several (docs/operations.md "Approval, resume and checkpoints").
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
fn dispatch(
    w: &dyn DynWorkflow,
    shared: &Shared,
    frame: &mut Frame,
    idx: NodeIdx,
    node: &'static NodeMeta,
) -> Result<Step, Error> {
    let graph_id = frame.graph_id;
    // A label-less `Continue` of a node without unconditional out-edges
    // ends the walk; at the top level its output is the final value.
    let ends_reply_run = shared.final_value_unread
        && frame.depth == 0
        && usize::try_from(idx.0)
            .ok()
            .and_then(|i| frame.graph.out_edges.get(i))
            .is_some_and(|edges| edges.iter().all(|e| e.when.is_some()));
    // Retry applies only to handler kinds (docs/dialect.md §10.1).
    let retry = node.retry.filter(|_| !node.kind.is_engine_internal());
    let max_attempts = retry.map_or(1, |r| r.max_attempts.max(1));
    let mut attempt = 1_u32;
    loop {
        let mut cx = Cx {
            shared,
            frame: &mut *frame,
            node,
            ends_reply_run,
        };
        let result = w.exec_node(graph_id, idx, &mut cx);
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
        // A backoff that would cross the deadline fails the node now (docs/dialect.md §10.1).
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
#[inline(never)] // only on a retry: out of the walk's body (size)
pub(super) fn backoff(backoff_ms: u64, jitter: f32, attempt: u32) -> Duration {
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

/// Successor selection (docs/dialect.md §8.1): label filter, loop budgets, then
/// exactly one candidate or none.
fn pick_next(
    graph: &GraphMeta,
    current: NodeIdx,
    node: &NodeMeta,
    branch: Option<&str>,
    loop_counts: &mut Vec<u32>,
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
            if loop_counts.is_empty() {
                loop_counts.resize(usize::try_from(graph.edge_count).unwrap_or(0), 0);
            }
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
