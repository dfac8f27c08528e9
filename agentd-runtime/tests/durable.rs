//! Durable runs on the engine's public API, with a hand-wired workflow (the
//! shape `agentd` codegen emits) and a real state directory: pause, resume
//! with approve or deny, progress checkpoints and recovery, and refusals.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use agentd_runtime::checkpoint::{Approval, Checkpoint, CheckpointError, StateDir};
use agentd_runtime::graph::{BuildInfo, CtxPath, EdgeMeta, GraphMeta, NodeMeta, StartMeta};
use agentd_runtime::nodes::compose::{self, Call, ChildRef};
use agentd_runtime::{
    Cx, Engine, Error, GraphId, Kind, NodeIdx, Outcome, RunOptions, RunReport, Slot, Source, Step,
    StepKind, Trigger, Workflow,
};
use serde_json::{Value, json};

// ----- the workflow -------------------------------------------------------------
//
// main:  prepare -> approve (pause) -> apply
// end:   gate_end (pause, no successor)
// split: split_pause (pause with two unconditional successors)
// steps: one -> two -> three            (two fails hard while `fail_two` is set)
// slow:  nap -> one -> ...              (nap sleeps 500 ms)
// nested: nested (call) -> child graph `gatekeeper`: inner_pause

const fn node(id: &'static str, kind: Kind, i: u32) -> NodeMeta {
    NodeMeta {
        id,
        kind,
        slot: Slot::Node(i),
        retry: None,
    }
}

const fn edge(to: u32, index: u32) -> EdgeMeta {
    EdgeMeta {
        to: NodeIdx(to),
        when: None,
        max_iterations: None,
        index,
    }
}

const fn start(name: &'static str, entry: u32) -> StartMeta {
    StartMeta {
        name,
        source: Source::Manual,
        entry: Some(NodeIdx(entry)),
        roots: 1,
    }
}

static NODES: [NodeMeta; 10] = [
    node("prepare", Kind::TemplateRender, 0),
    node("approve", Kind::PauseForApproval, 1),
    node("apply", Kind::Rust, 2),
    node("gate_end", Kind::PauseForApproval, 3),
    node("split_pause", Kind::PauseForApproval, 4),
    node("one", Kind::Rust, 5),
    node("two", Kind::Rust, 6),
    node("three", Kind::Rust, 7),
    node("nap", Kind::Rust, 8),
    node("nested", Kind::Call, 9),
];

static EDGES: [&[EdgeMeta]; 10] = [
    &[edge(1, 0)],             // prepare -> approve
    &[edge(2, 1)],             // approve -> apply
    &[],                       // apply: dead end
    &[],                       // gate_end: no successor
    &[edge(2, 2), edge(0, 3)], // split_pause: two unconditional
    &[edge(6, 4)],             // one -> two
    &[edge(7, 5)],             // two -> three
    &[],                       // three: dead end
    &[edge(5, 6)],             // nap -> one
    &[],                       // nested: dead end
];

static STARTS: [StartMeta; 6] = [
    start("main", 0),
    start("end", 3),
    start("split", 4),
    start("steps", 5),
    start("slow", 8),
    start("nested", 9),
];

static CHILD_NODES: [NodeMeta; 1] = [node("inner_pause", Kind::PauseForApproval, 0)];
static CHILD_STARTS: [StartMeta; 1] = [start("gate", 0)];

static GRAPHS: [GraphMeta; 2] = [
    GraphMeta {
        name: "approvals",
        starts: &STARTS,
        nodes: &NODES,
        out_edges: &EDGES,
        edge_count: 7,
    },
    GraphMeta {
        name: "gatekeeper",
        starts: &CHILD_STARTS,
        nodes: &CHILD_NODES,
        out_edges: &[&[]],
        edge_count: 0,
    },
];

static NESTED: Call = Call {
    child: ChildRef {
        graph: GraphId(1),
        start: 0,
    },
    input_from: None,
};

static INFO: BuildInfo = BuildInfo {
    workflow: "approvals",
    compiler_version: "0.0.0",
    sources: &[],
    capabilities: &[],
    program_hash: "hash-a",
    signer: None,
    policy_key: None,
};

static SERVICE: CtxPath = CtxPath {
    text: "trigger.service",
    root: Slot::Trigger,
    rest: &["service"],
};
static PLAN: CtxPath = CtxPath {
    text: "prepare.rendered",
    root: Slot::Node(0),
    rest: &["rendered"],
};
static ONE: CtxPath = CtxPath {
    text: "one.n",
    root: Slot::Node(5),
    rest: &["n"],
};

/// One instance per test, so counters never leak between parallel tests.
#[derive(Default)]
struct Approvals {
    applied: AtomicU32,
    ones: AtomicU32,
    twos: AtomicU32,
    fail_two: AtomicBool,
}

impl Approvals {
    fn exec_node(&self, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        match node.0 {
            0 => {
                let service = cx.require_str("template_render", &SERVICE)?;
                Ok(Step::value(
                    json!({ "rendered": format!("plan for {service}") }),
                ))
            }
            2 => {
                self.applied.fetch_add(1, Ordering::SeqCst);
                let plan = cx.require("rust", &PLAN)?.clone();
                Ok(Step::value(json!({ "applied": plan })))
            }
            5 => {
                let n = self.ones.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Step::value(json!({ "n": n })))
            }
            6 => {
                self.twos.fetch_add(1, Ordering::SeqCst);
                if self.fail_two.load(Ordering::SeqCst) {
                    return Err(Error::tool("rust", "the machine went away"));
                }
                Ok(Step::value(json!({ "two": true })))
            }
            7 => Ok(Step::value(
                json!({ "one_was": cx.require("rust", &ONE)?.clone() }),
            )),
            8 => {
                std::thread::sleep(Duration::from_millis(500));
                Ok(Step::value(Value::Null))
            }
            _ => agentd_runtime::nodes::unknown_node(GraphId(0), node),
        }
    }
}

impl Workflow for Approvals {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;

    fn exec(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        match (g.0, node.0) {
            (0, 9) => compose::call(self, cx, &NESTED),
            _ => self.exec_node(node, cx),
        }
    }

    fn pause_reason(&self, g: GraphId, node: NodeIdx) -> Option<&'static str> {
        match (g.0, node.0) {
            (0, 1) => Some("check the plan"),
            _ => None,
        }
    }
}

/// The same graphs built differently: another program hash.
#[derive(Default)]
struct Rebuilt(Approvals);

static REBUILT_INFO: BuildInfo = BuildInfo {
    program_hash: "hash-b",
    ..INFO
};

impl Workflow for Rebuilt {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &REBUILT_INFO;

    fn exec(&self, _g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        self.0.exec_node(node, cx)
    }
}

// ----- helpers ------------------------------------------------------------------

fn state_dir(test: &str) -> StateDir {
    let path: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("durable")
        .join(test);
    let _ = std::fs::remove_dir_all(&path);
    match StateDir::create(&path) {
        Ok(dir) => dir,
        Err(e) => panic!("state dir {}: {e}", path.display()),
    }
}

fn options(dir: &StateDir, each_node: bool) -> RunOptions {
    RunOptions {
        checkpoints: Some(std::sync::Arc::new(dir.clone())),
        checkpoint_each_node: each_node,
        ..RunOptions::default()
    }
}

fn run<W: Workflow>(w: &W, options: RunOptions, start: &str, input: Value) -> RunReport {
    Engine::new(w, options).run(start, Trigger::manual(input))
}

fn resume<W: Workflow>(
    w: &W,
    options: RunOptions,
    run_id: &str,
    approval: Approval,
) -> Result<RunReport, CheckpointError> {
    Engine::new(w, options).resume(run_id, approval)
}

fn resumed<W: Workflow>(w: &W, options: RunOptions, run_id: &str, approval: Approval) -> RunReport {
    match resume(w, options, run_id, approval) {
        Ok(report) => report,
        Err(e) => panic!("resume {run_id}: {e}"),
    }
}

fn paused_run_id(report: &RunReport) -> String {
    match &report.outcome {
        Ok(Outcome::Paused { run_id, .. }) => run_id.clone(),
        other => panic!("expected paused, got {other:?}"),
    }
}

fn checkpoints(dir: &StateDir) -> Vec<Checkpoint> {
    dir.list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, c)| c.ok())
        .collect()
}

/// Every file in the state directory (locks and temp files included).
fn files(dir: &StateDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ----- pause and resume -----------------------------------------------------------

#[test]
fn pause_checkpoints_and_approve_resumes_with_the_saved_outputs() {
    let dir = state_dir("approve");
    let w = Approvals::default();
    let report = run(&w, options(&dir, false), "main", json!({"service": "api"}));
    assert_eq!(
        report.outcome.as_ref().ok(),
        Some(&Outcome::Paused {
            run_id: report.execution_id.clone(),
            last_node: Some("approve"),
            reason: Some("check the plan"),
        })
    );
    assert_eq!(report.trace.path(), ["prepare", "approve"]);
    assert_eq!(report.trace.entries[1].outcome, StepKind::Pause);
    assert_eq!(report.trace.entries[1].output, Value::Null);
    let run_id = paused_run_id(&report);
    assert_eq!(
        files(&dir),
        [format!("{run_id}.json")],
        "lock released, no temp files"
    );

    let saved = dir.load(&run_id);
    let Ok(saved) = saved else {
        panic!("checkpoint: {saved:?}");
    };
    assert!(saved.awaiting_approval);
    assert_eq!(saved.workflow, "approvals");
    assert_eq!(saved.start_node, "main");
    assert_eq!(saved.paused_at.as_deref(), Some("approve"));
    assert_eq!(saved.resume_node.as_deref(), Some("apply"));
    assert_eq!(saved.reason.as_deref(), Some("check the plan"));
    assert_eq!(saved.program_hash.as_deref(), Some("hash-a"));
    assert_eq!(saved.trigger_input, json!({"service": "api"}));
    assert_eq!(
        Value::Object(saved.node_outputs.clone()),
        json!({
            "trigger": {"kind": "manual", "service": "api"},
            "prepare": {"rendered": "plan for api"},
        })
    );
    assert_eq!(
        w.applied.load(Ordering::SeqCst),
        0,
        "nothing ran past the pause"
    );

    let report = resumed(&w, options(&dir, false), &run_id, Approval::Approve);
    assert_eq!(
        report.outcome.as_ref().ok(),
        Some(&Outcome::Completed {
            final_value: json!({"applied": "plan for api"}),
            last_node: Some("apply"),
            http_response: None,
        })
    );
    assert_eq!(report.execution_id, run_id, "a resumed run keeps its id");
    assert_eq!(report.trace.path(), ["apply"], "only post-resume nodes");
    assert_eq!(w.applied.load(Ordering::SeqCst), 1);
    assert!(
        files(&dir).is_empty(),
        "the checkpoint is retired: {:?}",
        files(&dir)
    );
}

#[test]
fn deny_ends_the_run_failed_and_runs_nothing_more() {
    let dir = state_dir("deny");
    let w = Approvals::default();
    let run_id = paused_run_id(&run(
        &w,
        options(&dir, false),
        "main",
        json!({"service": "db"}),
    ));
    let report = resumed(&w, options(&dir, false), &run_id, Approval::Deny);
    assert_eq!(
        report.outcome.as_ref().ok(),
        Some(&Outcome::Failed {
            reason: "approval denied at `approve`".into(),
            last_node: Some("approve"),
        })
    );
    assert_eq!(w.applied.load(Ordering::SeqCst), 0);
    assert!(files(&dir).is_empty());
    assert!(matches!(
        resume(&w, options(&dir, false), &run_id, Approval::Approve),
        Err(CheckpointError::NotFound { .. })
    ));
}

#[test]
fn a_pause_without_a_successor_completes_on_resume_with_null() {
    let dir = state_dir("no-successor");
    let w = Approvals::default();
    let run_id = paused_run_id(&run(&w, options(&dir, false), "end", Value::Null));
    let saved = dir.load(&run_id).ok();
    assert_eq!(saved.and_then(|c| c.resume_node), None);
    let report = resumed(&w, options(&dir, false), &run_id, Approval::Approve);
    assert_eq!(
        report.outcome.as_ref().ok(),
        Some(&Outcome::Completed {
            final_value: Value::Null,
            last_node: Some("gate_end"),
            http_response: None,
        })
    );
    assert!(report.trace.entries.is_empty());
    assert!(files(&dir).is_empty());
}

#[test]
fn a_pause_with_two_unconditional_successors_is_a_hard_error_and_saves_nothing() {
    let dir = state_dir("split");
    let report = run(
        &Approvals::default(),
        options(&dir, false),
        "split",
        Value::Null,
    );
    let err = report
        .outcome
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "workflow `approvals`: pause_for_approval node `split_pause` has 2 unconditional \
         out-edges; it must have at most one (the node to resume at)"
    );
    assert!(files(&dir).is_empty());
}

#[test]
fn another_build_or_workflow_is_refused_and_the_checkpoint_kept() {
    let dir = state_dir("other-build");
    let w = Approvals::default();
    let run_id = paused_run_id(&run(
        &w,
        options(&dir, false),
        "main",
        json!({"service": "x"}),
    ));

    let refused = resume(
        &Rebuilt::default(),
        options(&dir, false),
        &run_id,
        Approval::Approve,
    );
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("hash-a") && message.contains("hash-b"),
        "names both hashes: {message}"
    );
    assert_eq!(checkpoints(&dir).len(), 1, "kept for the right binary");

    // A checkpoint edited to claim another workflow is refused too.
    let mut forged = checkpoints(&dir).remove(0);
    forged.workflow = "someone_else".to_owned();
    assert!(dir.save(&forged).is_ok());
    assert!(matches!(
        resume(&w, options(&dir, false), &run_id, Approval::Approve),
        Err(CheckpointError::WorkflowMismatch { .. })
    ));
    assert_eq!(w.applied.load(Ordering::SeqCst), 0);
}

#[test]
fn resume_needs_a_state_dir_and_a_free_lock() {
    let dir = state_dir("locked");
    let w = Approvals::default();
    assert!(matches!(
        resume(&w, RunOptions::default(), "exec-1", Approval::Approve),
        Err(CheckpointError::NoStateDir)
    ));
    let run_id = paused_run_id(&run(
        &w,
        options(&dir, false),
        "main",
        json!({"service": "x"}),
    ));
    let held = dir.claim(&run_id);
    assert!(held.is_ok());
    assert!(matches!(
        resume(&w, options(&dir, false), &run_id, Approval::Approve),
        Err(CheckpointError::Busy { .. })
    ));
    drop(held);
    let report = resumed(&w, options(&dir, false), &run_id, Approval::Approve);
    assert_eq!(report.outcome.ok().map(|o| o.status()), Some("completed"));
}

// ----- progress checkpoints and recovery ------------------------------------------

#[test]
fn checkpoint_each_node_lets_a_broken_run_resume_at_the_node_that_broke() {
    let dir = state_dir("recover");
    let w = Approvals::default();
    w.fail_two.store(true, Ordering::SeqCst);
    let report = run(&w, options(&dir, true), "steps", Value::Null);
    assert!(report.outcome.is_err(), "{:?}", report.outcome);

    let left = checkpoints(&dir);
    assert_eq!(left.len(), 1, "a hard error leaves the snapshot");
    let snapshot = &left[0];
    assert_eq!(snapshot.run_id, report.execution_id);
    assert!(!snapshot.awaiting_approval);
    assert_eq!(snapshot.paused_at.as_deref(), Some("one"));
    assert_eq!(snapshot.resume_node.as_deref(), Some("two"));
    assert_eq!(snapshot.state(), "recoverable");

    // A progress snapshot is not a decision to deny.
    assert!(matches!(
        resume(&w, options(&dir, true), &snapshot.run_id, Approval::Deny),
        Err(CheckpointError::NotAwaitingApproval { .. })
    ));

    w.fail_two.store(false, Ordering::SeqCst);
    let report = resumed(&w, options(&dir, true), &snapshot.run_id, Approval::Approve);
    assert_eq!(
        report.outcome.as_ref().ok(),
        Some(&Outcome::Completed {
            final_value: json!({"one_was": 1}),
            last_node: Some("three"),
            http_response: None,
        })
    );
    assert_eq!(report.trace.path(), ["two", "three"]);
    assert_eq!(
        w.ones.load(Ordering::SeqCst),
        1,
        "finished nodes are not re-run"
    );
    assert_eq!(
        w.twos.load(Ordering::SeqCst),
        2,
        "the interrupted node runs again"
    );
    assert!(files(&dir).is_empty());
}

#[test]
fn a_clean_end_deletes_the_progress_snapshot() {
    let dir = state_dir("clean-end");
    let report = run(
        &Approvals::default(),
        options(&dir, true),
        "steps",
        Value::Null,
    );
    assert_eq!(report.outcome.ok().map(|o| o.status()), Some("completed"));
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
}

#[test]
fn a_timeout_keeps_the_progress_snapshot_for_recovery() {
    let dir = state_dir("timeout");
    let w = Approvals::default();
    let timeout_options = RunOptions {
        timeout: Duration::from_millis(250),
        ..options(&dir, true)
    };
    // `nap` sleeps past the deadline, which is checked before `one`. The deadline
    // leaves room for the first progress snapshot, written before `nap` runs.
    let report = run(&w, timeout_options, "slow", Value::Null);
    assert_eq!(
        report.outcome.as_ref().ok().map(Outcome::status),
        Some("timed_out")
    );
    let left = checkpoints(&dir);
    assert_eq!(
        left.iter()
            .map(|c| c.resume_node.as_deref())
            .collect::<Vec<_>>(),
        [Some("one")]
    );

    let report = resumed(&w, options(&dir, true), &left[0].run_id, Approval::Approve);
    assert_eq!(report.trace.path(), ["one", "two", "three"]);
    assert!(files(&dir).is_empty());
}

#[test]
fn a_paused_run_with_progress_checkpoints_overwrites_its_snapshot() {
    let dir = state_dir("progress-then-pause");
    let w = Approvals::default();
    let run_id = paused_run_id(&run(
        &w,
        options(&dir, true),
        "main",
        json!({"service": "q"}),
    ));
    let left = checkpoints(&dir);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].run_id, run_id);
    assert!(
        left[0].awaiting_approval,
        "the pause replaced the progress snapshot"
    );
}

#[test]
fn a_pause_inside_a_child_workflow_is_an_error_and_saves_no_approval() {
    let dir = state_dir("nested");
    for with_dir in [true, false] {
        let opts = if with_dir {
            options(&dir, true)
        } else {
            RunOptions::default()
        };
        let report = run(&Approvals::default(), opts, "nested", Value::Null);
        let err = report
            .outcome
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "workflow `gatekeeper`: sub-workflow paused; nested pause_for_approval is not supported",
            "state dir: {with_dir}"
        );
    }
    // The child's pause saves no approval checkpoint; what is left is the first
    // progress snapshot (written before the entry node runs), which a hard error keeps
    // for `--resume-incomplete`, like any other.
    let left = checkpoints(&dir);
    assert_eq!(left.len(), 1, "{:?}", files(&dir));
    assert!(!left[0].awaiting_approval);
    assert_eq!(left[0].paused_at, None);
}
