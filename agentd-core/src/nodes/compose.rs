//! Composition kinds, always compiled in: `call`, `parallel`, `map`
//! (docs/dialect.md §7 `call`, `parallel`, `map`; §11).
//!
//! Each runs child walks of graphs compiled into the same binary, on the
//! same engine: same policy, same metrics, same dry-run, the parent's
//! deadline, a fresh context whose manual trigger input is the value handed
//! down. `parallel` and `map` run their children concurrently on scoped OS
//! threads; `map` in waves of `max_concurrent`.
//!
//! The soft/hard split is the dialect's: for `call` every child problem
//! except a `failed` or `timed_out` child is a hard error; for `parallel`
//! and `map` every child problem becomes an `{"error": ...}` element, and
//! only depth (and, for `map`, a bad item list) is hard. This module must
//! never read workflow files: children were resolved at build time.

use std::thread;

use serde_json::{Value, json};

use crate::context::{Cx, Step, type_name};
use crate::engine::{self, MAX_DEPTH};
use crate::error::Error;
use crate::graph::{CtxPath, GraphId};
use crate::outcome::Outcome;
use crate::workflow::DynWorkflow;
#[cfg(doc)]
use crate::workflow::Workflow;

/// A child workflow start, resolved by the compiler.
#[derive(Clone, Copy, Debug)]
pub struct ChildRef {
    /// The child's graph in [`Workflow::GRAPHS`].
    pub graph: GraphId,
    /// Index into the child's `starts`: the node's `start`, or 0 (the
    /// child's first declared start) when the node names none.
    pub start: u32,
}

/// `call` config.
#[derive(Debug)]
pub struct Call {
    /// The child workflow.
    pub child: ChildRef,
    /// `input_from`; a miss hands down `null`, `None` hands down the
    /// parent's raw trigger input.
    pub input_from: Option<CtxPath>,
}

/// `parallel` config.
#[derive(Debug)]
pub struct Parallel {
    /// `branches`, in declaration order (may be empty).
    pub branches: &'static [Branch],
}

/// One `parallel` branch.
#[derive(Debug)]
pub struct Branch {
    /// The child workflow.
    pub child: ChildRef,
    /// As [`Call::input_from`].
    pub input_from: Option<CtxPath>,
}

/// `map` config.
#[derive(Debug)]
pub struct Map {
    /// `items_from`: must resolve to an array.
    pub items_from: CtxPath,
    /// The child workflow run once per element.
    pub child: ChildRef,
    /// More elements than this is a hard error (never a truncation).
    pub max_items: u32,
    /// Wave size (default 4; 0 behaves as 1).
    pub max_concurrent: u32,
}

const PAUSED_CHILD: &str = "sub-workflow paused; nested pause_for_approval is not supported";
const TIMED_OUT_CHILD: &str = "sub-workflow timed out";

/// `call`: run the child to completion.
///
/// Output `{"result": <final_value>}`; a failed child gives
/// `{"error": <reason>}` on branch `error`; a timed-out child
/// `{"error": "sub-workflow timed out"}` on `error`.
///
/// # Errors
///
/// Depth above [`MAX_DEPTH`], a paused child, and any hard error of the
/// child (including an ambiguous child entry).
pub fn call(w: &dyn DynWorkflow, cx: &Cx<'_>, cfg: &'static Call) -> Result<Step, Error> {
    let depth = child_depth(cx)?;
    let input = child_input(cx, cfg.input_from.as_ref());
    let outcome = engine::run_child(
        w,
        cx.shared,
        cfg.child.graph,
        cfg.child.start,
        input,
        cx.deadline(),
        depth,
    )?;
    match outcome {
        Outcome::Completed { final_value, .. } => Ok(Step::value(json!({ "result": final_value }))),
        Outcome::Failed { reason, .. } => Ok(Step::branch(json!({ "error": reason }), "error")),
        Outcome::TimedOut { .. } => Ok(Step::branch(json!({ "error": TIMED_OUT_CHILD }), "error")),
        Outcome::Paused { .. } => Err(Error::workflow(
            child_name(w, cfg.child.graph),
            PAUSED_CHILD,
        )),
    }
}

/// `parallel`: resolve every branch input, run all branches concurrently,
/// output `{"results": [{"result": v} | {"error": msg}, ...], "ok": bool}` in
/// declaration order, on branch `error` iff any element is an error.
///
/// # Errors
///
/// Only depth above [`MAX_DEPTH`].
pub fn parallel(w: &dyn DynWorkflow, cx: &Cx<'_>, cfg: &'static Parallel) -> Result<Step, Error> {
    let depth = child_depth(cx)?;
    // All inputs are resolved before anything is spawned (docs/dialect.md §7 `parallel`).
    let inputs: Vec<Value> = cfg
        .branches
        .iter()
        .map(|b| child_input(cx, b.input_from.as_ref()))
        .collect();
    let jobs: Vec<(ChildRef, &Value)> = cfg
        .branches
        .iter()
        .zip(&inputs)
        .map(|(b, input)| (b.child, input))
        .collect();
    let outcomes = run_concurrently(w, cx, &jobs, depth);
    Ok(collect_elements(outcomes))
}

/// `map`: run the child once per element of `items_from` (the element is
/// the child's input), in waves of `max_concurrent`; output as `parallel`,
/// in input order. An empty array runs nothing: `{"results": [], "ok": true}`.
///
/// # Errors
///
/// Depth above [`MAX_DEPTH`]; `items_from` not set, not an array, or longer
/// than `max_items`.
pub fn map(w: &dyn DynWorkflow, cx: &Cx<'_>, cfg: &'static Map) -> Result<Step, Error> {
    let depth = child_depth(cx)?;
    let path = cfg.items_from.text;
    let fail = |reason: String| {
        Error::workflow(cx.workflow(), format!("map `{}`: {reason}", cx.node_id()))
    };
    let items = match cx.resolve(&cfg.items_from) {
        None => {
            return Err(fail(format!(
                "`items_from` path `{path}` is not set in the execution context"
            )));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(fail(format!(
                "`items_from` path `{path}` resolved to {} — an array is required",
                type_name(other)
            )));
        }
    };
    if items.len() > usize::try_from(cfg.max_items).unwrap_or(usize::MAX) {
        return Err(fail(format!(
            "`items_from` path `{path}` has {} items, more than max_items = {}",
            items.len(),
            cfg.max_items
        )));
    }
    let wave = usize::try_from(cfg.max_concurrent.max(1)).unwrap_or(1);
    let mut outcomes = Vec::with_capacity(items.len());
    for chunk in items.chunks(wave) {
        let jobs: Vec<(ChildRef, &Value)> = chunk.iter().map(|item| (cfg.child, item)).collect();
        outcomes.extend(run_concurrently(w, cx, &jobs, depth));
    }
    Ok(collect_elements(outcomes))
}

/// The depth the children of this node run at, or the hard depth error.
fn child_depth(cx: &Cx<'_>) -> Result<u32, Error> {
    let depth = cx.depth().saturating_add(1);
    if depth > MAX_DEPTH {
        return Err(Error::workflow(
            cx.workflow(),
            format!(
                "{} depth exceeded {MAX_DEPTH} at node `{}`",
                cx.kind().as_str(),
                cx.node_id()
            ),
        ));
    }
    Ok(depth)
}

/// A child's input: the resolved path (a miss is `null`), or the parent's
/// raw trigger input when no path is configured.
fn child_input(cx: &Cx<'_>, input_from: Option<&CtxPath>) -> Value {
    match input_from {
        Some(path) => cx.resolve(path).cloned().unwrap_or(Value::Null),
        None => cx.raw_input_cloned(),
    }
}

fn child_name(w: &dyn DynWorkflow, graph: GraphId) -> &'static str {
    usize::try_from(graph.0)
        .ok()
        .and_then(|i| w.def().graphs.get(i))
        .map_or("", |g| g.name)
}

/// Run `jobs` at the same time: the first on this thread, the rest on
/// scoped threads. Results come back in job order. A thread that cannot be
/// started degrades to running its job here, after the others.
fn run_concurrently(
    w: &dyn DynWorkflow,
    cx: &Cx<'_>,
    jobs: &[(ChildRef, &Value)],
    depth: u32,
) -> Vec<Result<Outcome, Error>> {
    let shared = cx.shared;
    let deadline = cx.deadline();
    let run = move |child: ChildRef, input: &Value| {
        engine::run_child(
            w,
            shared,
            child.graph,
            child.start,
            input.clone(),
            deadline,
            depth,
        )
    };
    let Some((&(first_child, first_input), rest)) = jobs.split_first() else {
        return Vec::new();
    };
    thread::scope(|scope| {
        let handles: Vec<_> = rest
            .iter()
            .map(|&(child, input)| {
                thread::Builder::new()
                    .name(format!("agentd-child-{}", child.graph.0))
                    .spawn_scoped(scope, move || run(child, input))
                    .ok()
            })
            .collect();
        let mut results = Vec::with_capacity(jobs.len());
        results.push(run(first_child, first_input));
        for (handle, &(child, input)) in handles.into_iter().zip(rest) {
            results.push(match handle {
                Some(handle) => handle.join().unwrap_or_else(|_| {
                    Err(Error::workflow(
                        child_name(w, child.graph),
                        "sub-workflow panicked",
                    ))
                }),
                None => run(child, input),
            });
        }
        results
    })
}

/// The `parallel`/`map` output: every child problem is a soft element.
fn collect_elements(outcomes: Vec<Result<Outcome, Error>>) -> Step {
    let mut ok = true;
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|outcome| {
            let error = match outcome {
                Ok(Outcome::Completed { final_value, .. }) => {
                    return json!({ "result": final_value });
                }
                Ok(Outcome::Failed { reason, .. }) => format!("sub-workflow failed: {reason}"),
                Ok(Outcome::TimedOut { .. }) => TIMED_OUT_CHILD.to_owned(),
                Ok(Outcome::Paused { .. }) => PAUSED_CHILD.to_owned(),
                Err(err) => err.to_string(),
            };
            ok = false;
            json!({ "error": error })
        })
        .collect();
    let value = json!({ "results": results, "ok": ok });
    if ok {
        Step::value(value)
    } else {
        Step::branch(value, "error")
    }
}
