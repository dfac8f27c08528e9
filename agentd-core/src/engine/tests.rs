//! Engine behaviour pinned down on a hand-built "lab" workflow whose nodes
//! are scripted by the test (the real node kinds are tested in `nodes`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::walk::backoff;
use super::*;
use crate::graph::{BuildInfo, CtxPath, EdgeMeta, Retry, Slot};
use crate::nodes::compose::{self, Branch, Call, ChildRef, Map, Parallel};
use crate::nodes::control::{self, Condition, Fail, Respond};
use crate::outcome::HttpResponse;
use crate::template::{Seg, Template};
use crate::workflow::Workflow;

// ---------------------------------------------------------------------------
// The lab workflow: graph 0 "lab" (one start per scenario), graph 1 "child".
// ---------------------------------------------------------------------------

const fn node(id: &'static str, kind: Kind, i: u32) -> NodeMeta {
    NodeMeta {
        id,
        kind,
        slot: Slot::Node(i),
        retry: None,
    }
}

const fn retrying(id: &'static str, i: u32, retry: Retry) -> NodeMeta {
    NodeMeta {
        id,
        kind: Kind::ReadFile,
        slot: Slot::Node(i),
        retry: Some(retry),
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

const fn labelled(to: u32, when: &'static str, index: u32) -> EdgeMeta {
    EdgeMeta {
        to: NodeIdx(to),
        when: Some(when),
        max_iterations: None,
        index,
    }
}

const fn looping(to: u32, when: Option<&'static str>, max: u32, index: u32) -> EdgeMeta {
    EdgeMeta {
        to: NodeIdx(to),
        when,
        max_iterations: Some(max),
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

const RETRY_3: Retry = Retry {
    max_attempts: 3,
    backoff_ms: 1,
    on: RetryOn::Transient,
    jitter: 0.5,
};

static LAB_NODES: [NodeMeta; 33] = [
    node("first", Kind::Merge, 0),
    node("value", Kind::JsonSelect, 1),
    node("term", Kind::Terminate, 2),
    node("failer", Kind::Fail, 3),
    node("fanout", Kind::Merge, 4),
    node("labelled", Kind::Switch, 5),
    node("looper", Kind::Switch, 6),
    node("spin", Kind::Merge, 7),
    retrying("flaky", 8, RETRY_3),
    retrying(
        "denied",
        9,
        Retry {
            max_attempts: 5,
            backoff_ms: 1,
            on: RetryOn::Any,
            jitter: 0.0,
        },
    ),
    retrying(
        "slow_retry",
        10,
        Retry {
            max_attempts: 2,
            backoff_ms: 60_000,
            on: RetryOn::Any,
            jitter: 0.0,
        },
    ),
    node("sleeper", Kind::Merge, 11),
    node("pause", Kind::PauseForApproval, 12),
    node("unavail", Kind::LlmInfer, 13),
    NodeMeta {
        id: "trigger",
        kind: Kind::Merge,
        slot: Slot::Trigger,
        retry: None,
    },
    node("reader", Kind::JsonSelect, 15),
    node("collide", Kind::Switch, 16),
    node("cond", Kind::Condition, 17),
    node("respond", Kind::Respond, 18),
    node("respond_then_fail", Kind::Respond, 19),
    node("call_echo", Kind::Call, 20),
    node("call_fail", Kind::Call, 21),
    node("call_err", Kind::Call, 22),
    node("par", Kind::Parallel, 23),
    node("map_echo", Kind::Map, 24),
    node("recurse", Kind::Call, 25),
    NodeMeta {
        id: "map_rendezvous",
        kind: Kind::Map,
        slot: Slot::Node(26),
        // Composites are never retried, whatever they declare.
        retry: Some(RETRY_3),
    },
    node("par_rendezvous", Kind::Parallel, 27),
    node("map_naps", Kind::Map, 28),
    node("respond_last", Kind::Respond, 29),
    node("call_respond", Kind::Call, 30),
    node("respond_next", Kind::Respond, 31),
    node("read_status", Kind::JsonSelect, 32),
];

static LAB_EDGES: [&[EdgeMeta]; 33] = [
    &[edge(1, 0)],                                           // first -> value
    &[],                                                     // value: dead end
    &[edge(1, 1)],                                           // term -> value (ignored)
    &[edge(1, 2)],                                           // failer -> value (ignored)
    &[edge(1, 3), edge(2, 4)],                               // fanout: two unconditional
    &[edge(1, 5)],                                           // labelled: only unconditional
    &[looping(6, Some("again"), 3, 6)],                      // looper: self loop x3
    &[looping(7, None, 20_000, 7)],                          // spin: beyond the cap
    &[edge(1, 8)],                                           // flaky -> value
    &[],                                                     // denied
    &[],                                                     // slow_retry
    &[edge(1, 9)],                                           // sleeper -> value
    &[edge(1, 10)],                                          // pause -> value
    &[],                                                     // unavail
    &[edge(15, 11)],                                         // trigger -> reader
    &[],                                                     // reader
    &[looping(1, Some("go"), 1, 12), labelled(2, "go", 13)], // collide
    &[labelled(2, "true", 14), labelled(3, "false", 15)],    // cond
    &[edge(1, 16)],                                          // respond -> value
    &[edge(3, 17)],                                          // respond_then_fail -> failer
    &[],                                                     // call_echo
    &[],                                                     // call_fail
    &[],                                                     // call_err
    &[],                                                     // par
    &[],                                                     // map_echo
    &[],                                                     // recurse
    &[],                                                     // map_rendezvous
    &[],                                                     // par_rendezvous
    &[],                                                     // map_naps
    &[labelled(1, "never", 18)],                             // respond_last: ends the walk
    &[],                                                     // call_respond
    &[edge(32, 19)],                                         // respond_next -> read_status
    &[],                                                     // read_status
];

static LAB_STARTS: [StartMeta; 32] = [
    start("first", 0),
    start("term", 2),
    start("failer", 3),
    start("fanout", 4),
    start("labelled", 5),
    start("looper", 6),
    start("spin", 7),
    start("flaky", 8),
    start("denied", 9),
    start("slow_retry", 10),
    start("sleeper", 11),
    start("pause", 12),
    start("unavail", 13),
    start("trigger", 14),
    start("collide", 16),
    start("cond", 17),
    start("respond", 18),
    start("respond_then_fail", 19),
    start("call_echo", 20),
    start("call_fail", 21),
    start("call_err", 22),
    start("par", 23),
    start("map_echo", 24),
    start("recurse", 25),
    start("map_rendezvous", 26),
    start("par_rendezvous", 27),
    StartMeta {
        name: "ambiguous",
        source: Source::Http,
        entry: None,
        roots: 2,
    },
    start("value", 1),
    start("map_naps", 28),
    start("respond_last", 29),
    start("call_respond", 30),
    start("respond_next", 31),
];

/// The start index of "recurse" in `LAB_STARTS`.
const RECURSE_START: u32 = 23;

static CHILD_NODES: [NodeMeta; 7] = [
    node("echo", Kind::JsonSelect, 0),
    node("no", Kind::Fail, 1),
    node("boom", Kind::ReadFile, 2),
    node("meet", Kind::Merge, 3),
    node("meet_pair", Kind::Merge, 4),
    node("nap", Kind::Merge, 5),
    node("child_respond", Kind::Respond, 6),
];

static CHILD_STARTS: [StartMeta; 7] = [
    start("echo", 0),
    start("no", 1),
    start("boom", 2),
    start("meet", 3),
    start("meet_pair", 4),
    start("nap", 5),
    start("child_respond", 6),
];

static GRAPHS: [GraphMeta; 2] = [
    GraphMeta {
        name: "lab",
        starts: &LAB_STARTS,
        nodes: &LAB_NODES,
        out_edges: &LAB_EDGES,
        edge_count: 20,
    },
    GraphMeta {
        name: "child",
        starts: &CHILD_STARTS,
        nodes: &CHILD_NODES,
        out_edges: &[&[], &[], &[], &[], &[], &[], &[]],
        edge_count: 0,
    },
];

static INFO: BuildInfo = BuildInfo {
    workflow: "lab",
    compiler_version: "test",
    sources: &[],
    capabilities: &[],
    program_hash: "",
    signer: None,
    policy_key: None,
};

const fn trigger_path(text: &'static str, rest: &'static [&'static str]) -> CtxPath {
    CtxPath {
        text,
        root: Slot::Trigger,
        rest,
    }
}

static FAILER: Fail = Fail { reason: "nope" };
static COND: Condition = Condition {
    expr: trigger_path("trigger.go", &["go"]),
};
static RESPOND: Respond = Respond {
    status: 202,
    content_type: "text/plain",
    body: Template(&[
        Seg::Lit("hi "),
        Seg::Key {
            raw: "who",
            path: &["who"],
        },
    ]),
    input_from: None,
};
static CALL_ECHO: Call = Call {
    child: ChildRef {
        graph: GraphId(1),
        start: 0,
    },
    input_from: Some(trigger_path("trigger.payload", &["payload"])),
};
static CALL_FAIL: Call = Call {
    child: ChildRef {
        graph: GraphId(1),
        start: 1,
    },
    input_from: None,
};
static CALL_RESPOND: Call = Call {
    child: ChildRef {
        graph: GraphId(1),
        start: 6,
    },
    input_from: None,
};
static CALL_ERR: Call = Call {
    child: ChildRef {
        graph: GraphId(1),
        start: 2,
    },
    input_from: None,
};
static RECURSE: Call = Call {
    child: ChildRef {
        graph: GraphId(0),
        start: RECURSE_START,
    },
    input_from: None,
};
static PAR: Parallel = Parallel {
    branches: &[
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 0,
            },
            input_from: Some(trigger_path("trigger.a", &["a"])),
        },
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 1,
            },
            input_from: None,
        },
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 2,
            },
            input_from: None,
        },
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 0,
            },
            input_from: Some(trigger_path("trigger.missing", &["missing"])),
        },
    ],
};
static PAR_RENDEZVOUS: Parallel = Parallel {
    branches: &[
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 3,
            },
            input_from: None,
        },
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 3,
            },
            input_from: None,
        },
        Branch {
            child: ChildRef {
                graph: GraphId(1),
                start: 3,
            },
            input_from: None,
        },
    ],
};
static MAP_ECHO: Map = Map {
    items_from: trigger_path("trigger.items", &["items"]),
    child: ChildRef {
        graph: GraphId(1),
        start: 0,
    },
    max_items: 3,
    max_concurrent: 2,
};
static MAP_NAPS: Map = Map {
    items_from: trigger_path("trigger.items", &["items"]),
    child: ChildRef {
        graph: GraphId(1),
        start: 5,
    },
    max_items: 10,
    max_concurrent: 1,
};
static MAP_RENDEZVOUS: Map = Map {
    items_from: trigger_path("trigger.items", &["items"]),
    child: ChildRef {
        graph: GraphId(1),
        start: 4,
    },
    max_items: 10,
    max_concurrent: 2,
};

/// Shared state the scripted nodes use to prove retries and concurrency.
#[derive(Default)]
struct Lab {
    flaky_attempts: AtomicU32,
    denied_attempts: AtomicU32,
    meet: Rendezvous,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
}

/// Children arrive and wait (bounded) until `group` of them are present.
/// If the engine ran them one after another, nobody would ever meet.
#[derive(Default)]
struct Rendezvous {
    arrived: Mutex<u32>,
    all_here: Condvar,
}

impl Rendezvous {
    fn meet(&self, group: u32) -> bool {
        let Ok(mut arrived) = self.arrived.lock() else {
            return false;
        };
        *arrived += 1;
        let target = (*arrived).div_ceil(group) * group;
        self.all_here.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while *arrived < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.all_here.wait_timeout(arrived, left) {
                Ok((guard, _)) => arrived = guard,
                Err(_) => return false,
            }
        }
        true
    }
}

impl Workflow for Lab {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;

    fn exec(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        match (g.0, node.0) {
            (0, 0 | 4 | 7) => control::merge(cx),
            (0, 1) => Ok(Step::value(json!({"v": 1}))),
            (0, 2) => control::terminate(cx),
            (0, 3) => control::fail(cx, &FAILER),
            (0, 5) => Ok(Step::branch(json!("x"), "x")),
            (0, 6) => Ok(Step::branch(json!("again"), "again")),
            (0, 8) => {
                let n = self.flaky_attempts.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 3 {
                    Err(Error::tool("read_file", format!("attempt {n}")))
                } else {
                    Ok(Step::value(json!({"attempts": n})))
                }
            }
            (0, 9) => {
                self.denied_attempts.fetch_add(1, Ordering::SeqCst);
                Err(Error::Policy("denied".into()))
            }
            (0, 10) => Err(Error::tool("read_file", "always")),
            (0, 11) => {
                std::thread::sleep(Duration::from_millis(30));
                Ok(Step::value(json!("slept")))
            }
            (0, 13) => crate::nodes::unavailable(cx),
            (0, 14) => Ok(Step::value(json!({"over": true}))),
            (0, 15) => {
                let path = trigger_path("trigger.over", &["over"]);
                Ok(Step::value(
                    cx.resolve(&path).cloned().unwrap_or(Value::Null),
                ))
            }
            (0, 16) => Ok(Step::branch(Value::Null, "go")),
            (0, 17) => control::condition(cx, &COND),
            (0, 18 | 19 | 29 | 31) | (1, 6) => control::respond(cx, &RESPOND),
            (0, 20) => compose::call(self, cx, &CALL_ECHO),
            (0, 21) => compose::call(self, cx, &CALL_FAIL),
            (0, 22) => compose::call(self, cx, &CALL_ERR),
            (0, 23) => compose::parallel(self, cx, &PAR),
            (0, 24) => compose::map(self, cx, &MAP_ECHO),
            (0, 25) => compose::call(self, cx, &RECURSE),
            (0, 26) => compose::map(self, cx, &MAP_RENDEZVOUS),
            (0, 27) => compose::parallel(self, cx, &PAR_RENDEZVOUS),
            (0, 28) => compose::map(self, cx, &MAP_NAPS),
            (0, 30) => compose::call(self, cx, &CALL_RESPOND),
            (0, 32) => {
                let path = CtxPath {
                    text: "respond_next.status",
                    root: Slot::Node(31),
                    rest: &["status"],
                };
                Ok(Step::value(
                    cx.resolve(&path).cloned().unwrap_or(Value::Null),
                ))
            }
            (1, 0) => Ok(Step::value(json!({
                "got": cx.raw_input().clone(),
                "depth": cx.depth(),
            }))),
            (1, 1) => Ok(Step::Fail {
                reason: "child said no".into(),
            }),
            (1, 2) => Err(Error::tool("read_file", "child broke")),
            (1, 3) => Ok(Step::value(json!(self.meet.meet(3)))),
            (1, 4) => {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_in_flight.fetch_max(now, Ordering::SeqCst);
                let met = self.meet.meet(2);
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(Step::value(json!(met)))
            }
            (1, 5) => {
                std::thread::sleep(Duration::from_millis(300));
                Ok(Step::value(json!("rested")))
            }
            _ => crate::nodes::unknown_node(g, node),
        }
    }
}

fn run_with(lab: &Lab, start: &str, input: Value, options: RunOptions) -> RunReport {
    Engine::new(lab, options).run(start, Trigger::manual(input))
}

fn run(start: &str, input: Value) -> RunReport {
    run_with(&Lab::default(), start, input, RunOptions::default())
}

fn err_text(report: &RunReport) -> String {
    match &report.outcome {
        Err(e) => e.to_string(),
        Ok(o) => format!("not an error: {o:?}"),
    }
}

fn completed(value: Value, last: &'static str) -> Outcome {
    Outcome::Completed {
        final_value: value,
        last_node: Some(last),
        http_response: None,
    }
}

// ---------------------------------------------------------------------------
// Routing and termination (docs/dialect.md §8.1–§8.3)
// ---------------------------------------------------------------------------

#[test]
fn dead_end_completes_with_node_output() {
    let report = run("first", Value::Null);
    assert_eq!(
        report.outcome.ok(),
        Some(completed(json!({"v": 1}), "value"))
    );
    assert_eq!(report.trace.path(), ["first", "value"]);
    assert_eq!(report.metrics.node_executions, 2);
}

#[test]
fn terminate_completes_with_null_and_ignores_out_edges() {
    let report = run("term", Value::Null);
    assert_eq!(report.outcome.ok(), Some(completed(Value::Null, "term")));
    assert_eq!(report.trace.entries[0].outcome, StepKind::Terminate);
}

#[test]
fn fail_ends_failed_with_null_trace_output() {
    let report = run("failer", Value::Null);
    assert_eq!(
        report.outcome.ok(),
        Some(Outcome::Failed {
            reason: "nope".into(),
            last_node: Some("failer")
        })
    );
    let entry = &report.trace.entries[0];
    assert_eq!(
        (entry.outcome, &entry.output),
        (StepKind::Fail, &Value::Null)
    );
}

#[test]
fn two_matching_edges_are_a_hard_error() {
    let report = run("fanout", Value::Null);
    assert_eq!(
        err_text(&report),
        "workflow `lab`: node `fanout` has 2 matching out-edges for branch `None`; \
         workflow graphs must select exactly one"
    );
    assert!(
        report.trace.entries.is_empty(),
        "a hard error drops the trace"
    );
}

#[test]
fn an_unconditional_edge_never_serves_a_label() {
    let report = run("labelled", Value::Null);
    assert_eq!(report.outcome.ok(), Some(completed(json!("x"), "labelled")));
    assert_eq!(report.trace.entries[0].branch.as_deref(), Some("x"));
}

#[test]
fn loop_edges_run_out_then_dead_end() {
    let report = run("looper", Value::Null);
    assert_eq!(report.trace.path(), ["looper"; 4]);
    assert_eq!(
        report.outcome.ok(),
        Some(completed(json!("again"), "looper"))
    );
}

#[test]
fn a_loop_edge_collides_with_a_same_label_edge_until_spent() {
    let report = run("collide", Value::Null);
    assert_eq!(
        err_text(&report),
        "workflow `lab`: node `collide` has 2 matching out-edges for branch `Some(\"go\")`; \
         workflow graphs must select exactly one"
    );
}

#[test]
fn the_safety_cap_stops_runaway_walks() {
    let report = run("spin", Value::Null);
    assert_eq!(
        err_text(&report),
        "workflow `lab`: safety cap hit: engine walked 10000 nodes without reaching a \
         terminal outcome"
    );
    assert_eq!(report.metrics.node_executions, u64::from(MAX_STEPS));
}

#[test]
fn condition_routes_true_and_false() {
    let yes = run("cond", json!({"go": true}));
    assert_eq!(yes.trace.path(), ["cond", "term"]);
    let no = run("cond", json!({"go": 0}));
    assert_eq!(no.trace.path(), ["cond", "failer"]);
    assert_eq!(no.outcome.ok().map(|o| o.status()), Some("failed"));
}

// ---------------------------------------------------------------------------
// Starts, trigger and context
// ---------------------------------------------------------------------------

#[test]
fn unknown_start_is_a_hard_error() {
    assert_eq!(
        err_text(&run("nope", Value::Null)),
        "workflow `lab`: unknown start node `nope`"
    );
}

#[test]
fn a_start_without_a_unique_root_is_a_hard_error() {
    assert_eq!(
        err_text(&run("ambiguous", Value::Null)),
        "workflow `lab`: start node `ambiguous` has no `entry_node` and the workflow has 2 \
         root nodes; specify `entry_node` explicitly"
    );
}

#[test]
fn a_node_named_trigger_overwrites_the_trigger_entry() {
    let report = run("trigger", json!({"over": false}));
    assert_eq!(report.outcome.ok(), Some(completed(json!(true), "reader")));
}

#[test]
fn respond_reply_rides_a_completed_outcome_only() {
    let report = run("respond", json!({"who": "Ada"}));
    assert_eq!(
        report.outcome.ok(),
        Some(Outcome::Completed {
            final_value: json!({"v": 1}),
            last_node: Some("value"),
            http_response: Some(HttpResponse {
                status: 202,
                content_type: "text/plain",
                body: "hi Ada".into()
            }),
        })
    );
    let failed = run("respond_then_fail", json!({"who": "Ada"}));
    assert_eq!(
        failed.outcome.ok(),
        Some(Outcome::Failed {
            reason: "nope".into(),
            last_node: Some("failer")
        })
    );
}

#[test]
fn a_reply_only_run_skips_the_output_of_the_respond_node_that_ends_it() {
    let reply = || HttpResponse {
        status: 202,
        content_type: "text/plain",
        body: "hi Ada".into(),
    };
    let summary = json!({"status": 202, "content_type": "text/plain", "bytes": 6});
    let untraced = RunOptions {
        record_trace: false,
        ..RunOptions::default()
    };
    let serve = |start: &str, options: RunOptions| {
        Engine::new(&Lab::default(), options)
            .reply_only()
            .run(start, Trigger::manual(json!({"who": "Ada"})))
    };
    // Served, no trace: nothing reads the final value beside the reply.
    assert_eq!(
        serve("respond_last", untraced.clone()).outcome.ok(),
        Some(Outcome::Completed {
            final_value: Value::Null,
            last_node: Some("respond_last"),
            http_response: Some(reply()),
        })
    );
    // A trace keeps the output, and so does every other caller.
    let traced = serve("respond_last", RunOptions::default());
    assert_eq!(traced.trace.entries[0].output, summary);
    let full = Outcome::Completed {
        final_value: summary.clone(),
        last_node: Some("respond_last"),
        http_response: Some(reply()),
    };
    assert_eq!(traced.outcome.ok(), Some(full.clone()));
    assert_eq!(
        run_with(
            &Lab::default(),
            "respond_last",
            json!({"who": "Ada"}),
            untraced.clone()
        )
        .outcome
        .ok(),
        Some(full)
    );
    // A child walk's final value is its parent's output.
    assert_eq!(
        serve("call_respond", untraced.clone()).outcome.ok(),
        Some(completed(json!({ "result": summary }), "call_respond"))
    );
    // A `respond` with a successor keeps its output for the nodes after it.
    assert_eq!(
        serve("respond_next", untraced).outcome.ok(),
        Some(Outcome::Completed {
            final_value: json!(202),
            last_node: Some("read_status"),
            http_response: Some(reply()),
        })
    );
}

#[test]
fn execution_ids_follow_the_dialect_format_and_are_unique() {
    let a = run("first", Value::Null).execution_id;
    let b = run("first", Value::Null).execution_id;
    assert_ne!(a, b);
    let parts: Vec<&str> = a.split('-').collect();
    assert_eq!(parts.len(), 4, "{a}");
    assert_eq!(parts[0], "exec");
    assert!(
        parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert_eq!(
        u32::from_str_radix(parts[2], 16).ok(),
        Some(std::process::id())
    );
}

#[test]
fn hand_written_hex_matches_the_formatter() {
    let mut values = vec![0_u64, 1, 0xdead_beef, u64::MAX];
    // Every digit-count boundary: 0x1, 0xf, 0x10, 0xff, 0x100, ...
    for shift in (0..64).step_by(4) {
        values.extend([1_u64 << shift, (1_u64 << shift).wrapping_sub(1) | 0xf]);
    }
    for v in values {
        for before in ["", "exec-", "#######"] {
            let mut out = before.to_owned();
            super::push_hex(&mut out, v);
            // The digits are appended; nothing before them changes.
            assert_eq!(out, format!("{before}{v:x}"));
            assert_eq!(super::hex_digits(v), format!("{v:x}").len());
        }
    }
}

#[test]
fn execution_ids_of_one_second_share_the_prefix_and_count_up() {
    // Whatever second each id was taken in, it parses back to the format's
    // parts, the pid is ours and the counter grows (other tests take ids
    // too, so only the order is known).
    let ids: Vec<String> = (0..50).map(|_| super::next_execution_id()).collect();
    let mut last = 0_u64;
    for id in &ids {
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!(parts[0], "exec");
        let secs = u64::from_str_radix(parts[1], 16).expect("hex seconds");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        assert!(secs <= now && now - secs < 60, "{id}");
        assert_eq!(parts[1], format!("{secs:x}"), "no leading zeros: {id}");
        assert_eq!(parts[2], format!("{:x}", std::process::id()));
        let n = u64::from_str_radix(parts[3], 16).expect("hex counter");
        assert_eq!(parts[3], format!("{n:x}"), "no leading zeros: {id}");
        assert!(n > last, "{id} after {last:x}");
        last = n;
        assert_eq!(id.capacity(), id.len(), "one allocation of the id's length");
    }
}

#[test]
fn trace_recording_can_be_turned_off() {
    let options = RunOptions {
        record_trace: false,
        ..RunOptions::default()
    };
    let report = run_with(&Lab::default(), "first", Value::Null, options);
    assert!(report.outcome.is_ok());
    assert!(report.trace.entries.is_empty());
}

// ---------------------------------------------------------------------------
// Deadline and retry (docs/dialect.md §10)
// ---------------------------------------------------------------------------

#[test]
fn the_deadline_is_checked_before_each_node() {
    let options = RunOptions {
        timeout: Duration::from_millis(10),
        ..RunOptions::default()
    };
    let report = run_with(&Lab::default(), "sleeper", Value::Null, options);
    match report.outcome {
        Ok(Outcome::TimedOut {
            elapsed_ms,
            last_node,
        }) => {
            assert_eq!(last_node, Some("sleeper"), "the node that overran");
            assert!(elapsed_ms >= 10);
        }
        other => panic!("expected timed_out, got {other:?}"),
    }
    assert_eq!(
        report.trace.path(),
        ["sleeper"],
        "a running node is not interrupted"
    );
}

#[test]
fn an_expired_deadline_times_out_before_the_first_node() {
    let options = RunOptions {
        timeout: Duration::ZERO,
        ..RunOptions::default()
    };
    let report = run_with(&Lab::default(), "first", Value::Null, options);
    assert!(matches!(
        report.outcome,
        Ok(Outcome::TimedOut {
            last_node: None,
            ..
        })
    ));
}

#[test]
fn transient_errors_are_retried_within_one_trace_entry() {
    let lab = Lab::default();
    let report = run_with(&lab, "flaky", Value::Null, RunOptions::default());
    assert_eq!(
        report.outcome.ok(),
        Some(completed(json!({"v": 1}), "value"))
    );
    assert_eq!(lab.flaky_attempts.load(Ordering::SeqCst), 3);
    assert_eq!(report.trace.path(), ["flaky", "value"]);
    assert_eq!(report.trace.entries[0].output, json!({"attempts": 3}));
    assert_eq!(report.metrics.node_executions, 2);
    assert_eq!(report.metrics.node_failures, 0);
}

#[test]
fn policy_denials_are_never_retried_even_with_on_any() {
    let lab = Lab::default();
    let report = run_with(&lab, "denied", Value::Null, RunOptions::default());
    assert_eq!(err_text(&report), "policy violation: denied");
    assert_eq!(lab.denied_attempts.load(Ordering::SeqCst), 1);
    assert_eq!(report.metrics.policy_denials, 1);
    assert_eq!(report.metrics.node_failures, 1);
}

#[test]
fn a_backoff_crossing_the_deadline_is_a_hard_timeout() {
    let options = RunOptions {
        timeout: Duration::from_secs(5),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let report = run_with(&Lab::default(), "slow_retry", Value::Null, options);
    assert_eq!(err_text(&report), "timeout after 60s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it must not sleep first"
    );
}

#[test]
fn linear_backoff_with_jitter_stays_in_bounds() {
    assert_eq!(backoff(100, 0.0, 3), Duration::from_millis(300));
    for attempt in 1..50 {
        let wait = backoff(1000, 0.9, attempt).as_secs_f64();
        let base = f64::from(attempt);
        // Jitter clamps to 0.5: the wait stays within ±50 % of the base.
        assert!(
            wait >= base * 0.5 - 1e-9 && wait <= base * 1.5 + 1e-9,
            "{wait}"
        );
    }
}

// ---------------------------------------------------------------------------
// Engine-internal kinds
// ---------------------------------------------------------------------------

#[test]
fn pause_without_a_state_dir_is_the_dialect_hard_error() {
    let report = run("pause", Value::Null);
    assert_eq!(
        err_text(&report),
        "workflow `lab`: node `pause` is pause_for_approval but no state directory is \
         configured (set --state-dir) — nowhere to checkpoint the run"
    );
    assert_eq!(report.metrics.node_executions, 0);
}

#[test]
fn unavailable_kinds_error_or_stub() {
    let report = run("unavail", Value::Null);
    assert!(err_text(&report).starts_with(
        "capability unavailable: no handler registered for node kind `llm_infer` (node `unavail`)"
    ));
    let options = RunOptions {
        stub_unavailable: true,
        ..RunOptions::default()
    };
    let stubbed = run_with(&Lab::default(), "unavail", Value::Null, options);
    assert_eq!(
        stubbed.outcome.ok(),
        Some(completed(json!({"stub": "llm_infer"}), "unavail"))
    );
}

#[test]
fn call_returns_the_child_final_value_from_a_fresh_context() {
    let report = run("call_echo", json!({"payload": {"k": 1}}));
    assert_eq!(
        report.outcome.ok(),
        Some(completed(
            json!({"result": {"got": {"k": 1}, "depth": 1}}),
            "call_echo"
        ))
    );
    assert_eq!(report.trace.path(), ["call_echo"], "child entries stay out");
    assert_eq!(
        report.metrics.node_executions, 2,
        "children count into the run"
    );
}

#[test]
fn call_of_a_failed_child_routes_error() {
    let report = run("call_fail", Value::Null);
    assert_eq!(
        report.outcome.ok(),
        Some(completed(json!({"error": "child said no"}), "call_fail"))
    );
    assert_eq!(report.trace.entries[0].branch.as_deref(), Some("error"));
}

#[test]
fn call_propagates_a_child_hard_error() {
    let report = run("call_err", Value::Null);
    assert_eq!(err_text(&report), "tool `read_file` failed: child broke");
    assert_eq!(
        report.metrics.node_failures, 2,
        "the child node and the call node"
    );
}

#[test]
fn nesting_deeper_than_eight_is_a_hard_error() {
    let report = run("recurse", Value::Null);
    assert_eq!(
        err_text(&report),
        "workflow `lab`: call depth exceeded 8 at node `recurse`"
    );
}

#[test]
fn parallel_turns_every_child_problem_into_an_element() {
    let report = run("par", json!({"a": [1]}));
    let want = json!({
        "ok": false,
        "results": [
            {"result": {"got": [1], "depth": 1}},
            {"error": "sub-workflow failed: child said no"},
            {"error": "tool `read_file` failed: child broke"},
            {"result": {"got": null, "depth": 1}},
        ],
    });
    assert_eq!(report.outcome.ok(), Some(completed(want, "par")));
    assert_eq!(report.trace.entries[0].branch.as_deref(), Some("error"));
}

#[test]
fn parallel_branches_really_run_at_the_same_time() {
    let report = run("par_rendezvous", Value::Null);
    let want = json!({
        "ok": true,
        "results": [{"result": true}, {"result": true}, {"result": true}],
    });
    assert_eq!(report.outcome.ok(), Some(completed(want, "par_rendezvous")));
}

#[test]
fn map_runs_one_child_per_item_in_input_order() {
    let report = run("map_echo", json!({"items": ["a", {"b": 2}, 3]}));
    let want = json!({
        "ok": true,
        "results": [
            {"result": {"got": "a", "depth": 1}},
            {"result": {"got": {"b": 2}, "depth": 1}},
            {"result": {"got": 3, "depth": 1}},
        ],
    });
    assert_eq!(report.outcome.ok(), Some(completed(want, "map_echo")));
}

#[test]
fn map_of_an_empty_array_runs_nothing() {
    let report = run("map_echo", json!({"items": []}));
    assert_eq!(
        report.outcome.ok(),
        Some(completed(json!({"results": [], "ok": true}), "map_echo"))
    );
    assert_eq!(report.metrics.node_executions, 1);
}

#[test]
fn map_hard_errors() {
    assert_eq!(
        err_text(&run("map_echo", json!({}))),
        "workflow `lab`: map `map_echo`: `items_from` path `trigger.items` is not set in the \
         execution context"
    );
    assert_eq!(
        err_text(&run("map_echo", json!({"items": {"a": 1}}))),
        "workflow `lab`: map `map_echo`: `items_from` path `trigger.items` resolved to object \
         — an array is required"
    );
    assert_eq!(
        err_text(&run("map_echo", json!({"items": [1, 2, 3, 4]}))),
        "workflow `lab`: map `map_echo`: `items_from` path `trigger.items` has 4 items, more \
         than max_items = 3"
    );
}

#[test]
fn map_runs_in_waves_of_max_concurrent() {
    let lab = Lab::default();
    let report = run_with(
        &lab,
        "map_rendezvous",
        json!({"items": [1, 2, 3, 4, 5, 6]}),
        RunOptions::default(),
    );
    let results = report
        .outcome
        .ok()
        .and_then(|o| match o {
            Outcome::Completed { final_value, .. } => Some(final_value),
            _ => None,
        })
        .unwrap_or_default();
    assert_eq!(results["ok"], json!(true));
    assert!(
        results["results"]
            .as_array()
            .is_some_and(|r| r.len() == 6 && r.iter().all(|e| e["result"] == json!(true))),
        "every pair met: {results}"
    );
    assert_eq!(lab.max_in_flight.load(Ordering::SeqCst), 2);
}

#[test]
fn children_share_the_parent_deadline_and_time_out_softly() {
    let options = RunOptions {
        timeout: Duration::from_millis(200),
        ..RunOptions::default()
    };
    // Wave 1 starts in time and overruns; wave 2 finds the deadline passed.
    let report = run_with(
        &Lab::default(),
        "map_naps",
        json!({"items": [1, 2]}),
        options,
    );
    assert_eq!(
        report.outcome.ok(),
        Some(completed(
            json!({"ok": false, "results": [{"result": "rested"}, {"error": "sub-workflow timed out"}]}),
            "map_naps"
        ))
    );
}
