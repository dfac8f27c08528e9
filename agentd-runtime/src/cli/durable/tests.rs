//! The durable-run flags driven in-process against a real state directory:
//! exit codes, what goes to stdout and stderr, and flag combinations.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::checkpoint::{Checkpoint, StateDir, unix_secs};
use crate::cli::{EXIT_OK, EXIT_PAUSED, EXIT_SEMANTIC, EXIT_USAGE, run};
use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::{
    BuildInfo, EdgeMeta, GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, Slot, Source, StartMeta,
};
use crate::workflow::Workflow;

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
        roots: 2,
    }
}

// main: prep -> approve (pause) -> done;  work: work -> after
static NODES: [NodeMeta; 5] = [
    node("prep", Kind::Merge, 0),
    node("approve", Kind::PauseForApproval, 1),
    node("done", Kind::Merge, 2),
    node("work", Kind::Rust, 3),
    node("after", Kind::Rust, 4),
];
static EDGES: [&[EdgeMeta]; 5] = [&[edge(1, 0)], &[edge(2, 1)], &[], &[edge(4, 2)], &[]];
// Two manual starts: a plain run needs --start, a resume must not.
static STARTS: [StartMeta; 2] = [start("main", 0), start("work", 3)];
static GRAPHS: [GraphMeta; 1] = [GraphMeta {
    name: "gate",
    starts: &STARTS,
    nodes: &NODES,
    out_edges: &EDGES,
    edge_count: 3,
}];
static INFO: BuildInfo = BuildInfo {
    workflow: "gate",
    compiler_version: "9.9.9",
    sources: &[],
    capabilities: &[],
    program_hash: "h1",
    signer: None,
    policy_key: None,
};

#[derive(Default)]
struct Gate {
    /// `after` fails hard while set (a stand-in for a crash).
    break_after: AtomicBool,
}

impl Workflow for Gate {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;

    fn exec(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        match node.0 {
            0 => Ok(Step::value(json!({ "input": cx.raw_input().clone() }))),
            2 => Ok(Step::value(json!({ "done": true }))),
            3 => Ok(Step::value(json!({ "worked": true }))),
            4 if self.break_after.load(Ordering::SeqCst) => Err(Error::tool("rust", "power cut")),
            4 => Ok(Step::value(json!({ "after": true }))),
            _ => crate::nodes::unknown_node(g, node),
        }
    }

    fn pause_reason(&self, _g: GraphId, node: NodeIdx) -> Option<&'static str> {
        (node.0 == 1).then_some("sign here")
    }
}

/// The CLI serves `'static` workflows; each test gets its own (leaked) one.
fn new_gate() -> &'static Gate {
    Box::leak(Box::default())
}

struct Output {
    code: u8,
    stdout: String,
    stderr: String,
}

fn cli(gate: &'static Gate, args: &[&str]) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("gate").chain(args.iter().copied());
    let code = run(gate, argv, &mut "".as_bytes(), &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

fn json_out(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            out.stdout, out.stderr
        )
    })
}

/// A fresh, not yet existing state directory path.
fn fresh_dir(test: &str) -> (PathBuf, String) {
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "agentd-cli-durable-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    let text = path.to_string_lossy().into_owned();
    (path, text)
}

fn json_files(path: &PathBuf) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn pause_exits_7_and_resume_approves_to_completion() {
    let gate = new_gate();
    let (path, dir) = fresh_dir("approve");
    let paused = cli(
        gate,
        &[
            "--state-dir",
            &dir,
            "--start",
            "main",
            "--input",
            "{\"n\":1}",
        ],
    );
    assert_eq!(paused.code, EXIT_PAUSED, "stderr: {}", paused.stderr);
    let outcome = json_out(&paused);
    assert_eq!(outcome["status"], "paused");
    assert_eq!(outcome["last_node"], "approve");
    assert_eq!(outcome["reason"], "sign here");
    let run_id = outcome["run_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(json_files(&path), [format!("{run_id}.json")]);

    let listed = cli(gate, &["--state-dir", &dir, "--list-checkpoints"]);
    assert_eq!(listed.code, EXIT_OK);
    assert_eq!(
        listed.stdout,
        format!("{run_id}  paused  workflow=gate resume_node=done\n")
    );

    // No --start: a resume takes its start from the checkpoint.
    let resumed = cli(
        gate,
        &["--state-dir", &dir, "--resume", &run_id, "--approve"],
    );
    assert_eq!(resumed.code, EXIT_OK, "stderr: {}", resumed.stderr);
    assert_eq!(
        json_out(&resumed),
        json!({"status": "completed", "final_value": {"done": true}, "last_node": "done"})
    );
    assert!(json_files(&path).is_empty());
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn deny_exits_5_with_a_failed_outcome() {
    let gate = new_gate();
    let (path, dir) = fresh_dir("deny");
    let paused = cli(gate, &["--state-dir", &dir, "--start", "main"]);
    let run_id = json_out(&paused)["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let denied = cli(gate, &["--state-dir", &dir, "--resume", &run_id, "--deny"]);
    assert_eq!(denied.code, EXIT_SEMANTIC);
    assert_eq!(
        json_out(&denied),
        json!({"status": "failed", "reason": "approval denied at `approve`", "last_node": "approve"})
    );
    assert!(json_files(&path).is_empty());
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn durable_flags_without_what_they_need_are_usage_errors() {
    let gate = new_gate();
    for (args, message) in [
        (
            &["--list-checkpoints"][..],
            "--list-checkpoints needs --state-dir",
        ),
        (&["--resume", "exec-1"][..], "--resume needs --state-dir"),
        (
            &["--resume-incomplete"][..],
            "--resume-incomplete needs --state-dir",
        ),
        (
            &["--checkpoint-each-node", "--start", "main"][..],
            "--checkpoint-each-node needs --state-dir",
        ),
        (&["--deny"][..], "--approve and --deny need --resume RUN_ID"),
        (
            &["--checkpoint-retention-days", "soon"][..],
            "invalid value `soon` for --checkpoint-retention-days",
        ),
    ] {
        let out = cli(gate, args);
        assert_eq!(out.code, EXIT_USAGE, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    let both = cli(gate, &["--resume", "x", "--approve", "--deny"]);
    assert_eq!(
        both.code, EXIT_USAGE,
        "the pair is refused: {}",
        both.stderr
    );
}

#[test]
fn resume_problems_exit_2_with_the_reason() {
    let gate = new_gate();
    let (path, dir) = fresh_dir("resume-problems");
    let missing_dir = cli(gate, &["--state-dir", &dir, "--resume", "exec-1"]);
    assert_eq!(missing_dir.code, EXIT_USAGE);
    assert!(
        missing_dir.stderr.contains("state directory"),
        "{}",
        missing_dir.stderr
    );
    assert!(!path.exists(), "a resume never creates the state dir");

    assert!(std::fs::create_dir_all(&path).is_ok());
    let unknown = cli(gate, &["--state-dir", &dir, "--resume", "exec-1"]);
    assert_eq!(unknown.code, EXIT_USAGE);
    assert!(
        unknown.stderr.contains("no checkpoint `exec-1`"),
        "{}",
        unknown.stderr
    );

    let traversal = cli(gate, &["--state-dir", &dir, "--resume", "../../etc/passwd"]);
    assert_eq!(traversal.code, EXIT_USAGE);
    assert!(
        traversal.stderr.contains("invalid run id"),
        "{}",
        traversal.stderr
    );

    assert!(std::fs::write(path.join("exec-2.json"), "{ torn").is_ok());
    let corrupt = cli(gate, &["--state-dir", &dir, "--resume", "exec-2"]);
    assert_eq!(corrupt.code, EXIT_USAGE);
    assert!(corrupt.stderr.contains("is corrupt"), "{}", corrupt.stderr);
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn resume_incomplete_recovers_interrupted_runs_and_leaves_paused_ones() {
    let gate = new_gate();
    let (path, dir) = fresh_dir("incomplete");

    let nothing = cli(gate, &["--state-dir", &dir, "--resume-incomplete"]);
    assert_eq!(nothing.code, EXIT_USAGE, "the state dir must exist");
    assert!(std::fs::create_dir_all(&path).is_ok());
    let nothing = cli(gate, &["--state-dir", &dir, "--resume-incomplete"]);
    assert_eq!(nothing.code, EXIT_OK);
    assert!(
        nothing.stderr.contains("no interrupted runs of `gate`"),
        "{}",
        nothing.stderr
    );

    let paused = cli(gate, &["--state-dir", &dir, "--start", "main"]);
    assert_eq!(paused.code, EXIT_PAUSED);
    gate.break_after.store(true, Ordering::SeqCst);
    let broken = cli(
        gate,
        &[
            "--state-dir",
            &dir,
            "--start",
            "work",
            "--checkpoint-each-node",
        ],
    );
    assert_eq!(broken.code, EXIT_SEMANTIC, "{}", broken.stderr);
    assert_eq!(json_files(&path).len(), 2);

    // Still broken: the resume fails again, and that is the exit code.
    let again = cli(gate, &["--state-dir", &dir, "--resume-incomplete"]);
    assert_eq!(again.code, EXIT_SEMANTIC, "{}", again.stderr);
    assert!(again.stderr.contains("power cut"), "{}", again.stderr);

    gate.break_after.store(false, Ordering::SeqCst);
    let recovered = cli(gate, &["--state-dir", &dir, "--resume-incomplete"]);
    assert_eq!(recovered.code, EXIT_OK, "{}", recovered.stderr);
    assert!(
        recovered.stderr.contains("at `after`"),
        "{}",
        recovered.stderr
    );
    assert_eq!(
        json_out(&recovered),
        json!({"status": "completed", "final_value": {"after": true}, "last_node": "after"})
    );
    let left = json_files(&path);
    assert_eq!(left.len(), 1, "the paused run waits for a person: {left:?}");
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn resume_incomplete_names_a_corrupt_checkpoint_and_fails_and_stale_locks_never_block() {
    let gate = new_gate();
    let (path, dir) = fresh_dir("incomplete-corrupt");
    assert!(std::fs::create_dir_all(&path).is_ok());

    // An interrupted run, with the empty lock file a crash can leave behind.
    gate.break_after.store(true, Ordering::SeqCst);
    let broken = cli(
        gate,
        &[
            "--state-dir",
            &dir,
            "--start",
            "work",
            "--checkpoint-each-node",
        ],
    );
    assert_eq!(broken.code, EXIT_SEMANTIC, "{}", broken.stderr);
    gate.break_after.store(false, Ordering::SeqCst);
    let run_id = json_files(&path)
        .first()
        .and_then(|f| f.strip_suffix(".json").map(str::to_owned))
        .unwrap_or_default();
    assert!(std::fs::write(path.join(format!(".{run_id}.lock")), "").is_ok());
    // A torn checkpoint next to it.
    assert!(std::fs::write(path.join("exec-0-torn.json"), "{ torn").is_ok());

    let resumed = cli(gate, &["--state-dir", &dir, "--resume-incomplete"]);
    assert_eq!(resumed.code, EXIT_USAGE, "{}", resumed.stderr);
    let torn = path.join("exec-0-torn.json");
    assert!(
        resumed
            .stderr
            .contains(&format!("checkpoint `{}` is corrupt", torn.display())),
        "{}",
        resumed.stderr
    );
    // The stale lock did not stop the interrupted run from completing.
    assert_eq!(
        json_out(&resumed),
        json!({"status": "completed", "final_value": {"after": true}, "last_node": "after"})
    );
    assert!(!path.join(format!(".{run_id}.lock")).exists());

    // A lock file whose checkpoint is gone is cleared by the next run.
    assert!(std::fs::remove_file(&torn).is_ok());
    assert!(std::fs::write(path.join(".exec-9-gone.lock"), "").is_ok());
    let next = cli(gate, &["--state-dir", &dir, "--resume-incomplete"]);
    assert_eq!(next.code, EXIT_OK, "{}", next.stderr);
    assert!(!path.join(".exec-9-gone.lock").exists());
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn old_checkpoints_are_pruned_at_start_by_the_retention_rule() {
    let gate = new_gate();
    let (path, dir) = fresh_dir("retention");
    let state = StateDir::create(&path);
    let Ok(state) = state else {
        panic!("{state:?}");
    };
    let old = Checkpoint {
        run_id: "exec-old".into(),
        workflow: "gate".into(),
        start_node: "main".into(),
        trigger_kind: crate::checkpoint::TriggerKind::Manual,
        trigger_input: Value::Null,
        node_outputs: serde_json::Map::new(),
        paused_at: Some("approve".into()),
        resume_node: Some("done".into()),
        reason: None,
        awaiting_approval: true,
        format_version: 1,
        program_hash: Some("h1".into()),
        saved_unix: unix_secs(SystemTime::now() - Duration::from_secs(10 * 24 * 3600)),
        node_visits: serde_json::Map::new(),
    };
    assert!(state.save(&old).is_ok());

    // --resume never prunes what it was asked to continue; 0 days keeps all.
    let kept = cli(
        gate,
        &[
            "--state-dir",
            &dir,
            "--start",
            "work",
            "--checkpoint-retention-days",
            "0",
        ],
    );
    assert_eq!(kept.code, EXIT_OK, "{}", kept.stderr);
    assert_eq!(json_files(&path), ["exec-old.json"]);

    let pruned = cli(
        gate,
        &[
            "--state-dir",
            &dir,
            "--start",
            "work",
            "--checkpoint-retention-days",
            "7",
        ],
    );
    assert_eq!(pruned.code, EXIT_OK, "{}", pruned.stderr);
    assert!(
        pruned
            .stderr
            .contains("removed paused checkpoint `exec-old` (older than 7 days)"),
        "{}",
        pruned.stderr
    );
    assert!(json_files(&path).is_empty());
    let _ = std::fs::remove_dir_all(&path);
}
