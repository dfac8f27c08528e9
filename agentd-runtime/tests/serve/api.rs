// A serve-mode workflow wired by hand, in the shape codegen emits, with a
// few custom nodes (kind `rust`) that only a hand-written `exec` can have:
// `nap` sleeps (a slow run), `boom` errors (a hard error), `count` records
// its trigger input (scheduled triggers). Roughly:
//
//   name = "api"
//   [[start_nodes]] name = "echo"  source = "http"   entry_node = "reply"
//   [[start_nodes]] name = "fail"  source = "http"   entry_node = "stop"
//   [[start_nodes]] name = "slow"  source = "http"   entry_node = "nap"
//   [[start_nodes]] name = "boom"  source = "http"   entry_node = "boom"
//   [[start_nodes]] name = "tick"  source = "manual" entry_node = "count"
//   [[nodes]] id = "reply" type = "respond" status = 201 content_type = "application/json"
//             body_template = '{"name":"{{name}}","principal":"{{principal.kind}}"}'
//   [[nodes]] id = "stop"  type = "fail" reason = "nope"
//   [[http_routes]] POST /echo → echo; POST /fail → fail; POST /slow → slow;
//                   POST /boom → boom; GET /limited → echo (rate_limit 1 per 100 s);
//                   POST /orders → slow (idempotency_key = "order.id")

use std::sync::Mutex;
use std::time::Duration;

use agentd_runtime::serde_json::{Value, json};
use agentd_runtime::workflow::serve::{
    AuthRef, IdempotencyDef, IdempotencyKey, RateLimitDef, RouteDef, ServeDef, TriggerDef,
};
use agentd_runtime::{Cx, Error, GraphId, NodeIdx, Step};

/// The `api` workflow: routes only.
pub struct Api;

/// The same graph with one interval trigger and no routes.
pub struct Ticker;

/// Inputs `count` has seen, in order.
pub static COUNTED: Mutex<Vec<Value>> = Mutex::new(Vec::new());

/// How long `count` sleeps, in ms.
pub static COUNT_SLEEP_MS: Mutex<u64> = Mutex::new(0);

const fn start(name: &'static str, entry: u32) -> ::agentd_runtime::StartMeta {
    ::agentd_runtime::StartMeta {
        name,
        source: ::agentd_runtime::Source::Http,
        entry: Some(::agentd_runtime::NodeIdx(entry)),
        roots: 5,
    }
}

const fn node(
    id: &'static str,
    kind: ::agentd_runtime::Kind,
    slot: u32,
) -> ::agentd_runtime::NodeMeta {
    ::agentd_runtime::NodeMeta {
        id,
        kind,
        slot: ::agentd_runtime::Slot::Node(slot),
        retry: None,
    }
}

static G0: ::agentd_runtime::GraphMeta = ::agentd_runtime::GraphMeta {
    name: "api",
    starts: &[
        start("echo", 0),
        start("fail", 1),
        start("slow", 2),
        start("boom", 3),
        start("late", 5),
        start("hold", 6),
        ::agentd_runtime::StartMeta {
            name: "tick",
            source: ::agentd_runtime::Source::Manual,
            entry: Some(::agentd_runtime::NodeIdx(4)),
            roots: 5,
        },
    ],
    nodes: &[
        node("reply", ::agentd_runtime::Kind::Respond, 0),
        node("stop", ::agentd_runtime::Kind::Fail, 1),
        node("nap", ::agentd_runtime::Kind::Rust, 2),
        node("boom", ::agentd_runtime::Kind::Rust, 3),
        node("count", ::agentd_runtime::Kind::Rust, 4),
        // `late`: the same nap, then `nap` again (the deadline is checked
        // between nodes).
        node("late", ::agentd_runtime::Kind::Rust, 2),
        // `hold`: a pause (engine-internal; never dispatched).
        node("hold", ::agentd_runtime::Kind::PauseForApproval, 6),
    ],
    out_edges: &[
        &[],
        &[],
        &[],
        &[],
        &[],
        &[::agentd_runtime::EdgeMeta {
            to: ::agentd_runtime::NodeIdx(2),
            when: None,
            max_iterations: None,
            index: 0,
        }],
        &[],
    ],
    edge_count: 1,
};

static INFO: ::agentd_runtime::BuildInfo = ::agentd_runtime::BuildInfo {
    workflow: "api",
    compiler_version: "test",
    sources: &[],
    capabilities: &["serve"],
    program_hash: "0123abcd",
    signer: None,
    policy_key: None,
};

/// `reply` (respond)
static G0_N0: ::agentd_runtime::nodes::control::Respond =
    ::agentd_runtime::nodes::control::Respond {
        status: 201,
        content_type: "application/json",
        body: ::agentd_runtime::Template(&[
            ::agentd_runtime::Seg::Lit("{\"name\":\""),
            ::agentd_runtime::Seg::Key {
                raw: "name",
                path: &["name"],
            },
            ::agentd_runtime::Seg::Lit("\",\"principal\":\""),
            ::agentd_runtime::Seg::Key {
                raw: "principal.kind",
                path: &["principal", "kind"],
            },
            ::agentd_runtime::Seg::Lit("\"}"),
        ]),
        input_from: None,
    };

/// `stop` (fail)
static G0_N1: ::agentd_runtime::nodes::control::Fail =
    ::agentd_runtime::nodes::control::Fail { reason: "nope" };

const fn route(
    method: &'static str,
    path: &'static str,
    start: &'static str,
    inline: bool,
) -> RouteDef {
    RouteDef {
        method,
        path,
        start,
        auth: AuthRef::None,
        rate_limit: None,
        idempotency: None,
        input_schema: None,
        inline,
    }
}

static ROUTES: [RouteDef; 8] = [
    route("POST", "/echo", "echo", true),
    route("POST", "/hold", "hold", false),
    route("POST", "/late", "late", false),
    route("POST", "/fail", "fail", true),
    route("POST", "/slow", "slow", false),
    route("POST", "/boom", "boom", false),
    RouteDef {
        rate_limit: Some(RateLimitDef {
            capacity: 1,
            per_second: 0.01,
        }),
        ..route("GET", "/limited", "echo", true)
    },
    RouteDef {
        idempotency: Some(IdempotencyDef {
            key: IdempotencyKey::Path(&["order", "id"]),
            ttl_secs: 86_400,
        }),
        ..route("POST", "/orders", "slow", false)
    },
];

static API_SERVE: ServeDef = ServeDef {
    routes: &ROUTES,
    triggers: &[],
};

static TICKER_TRIGGERS: [TriggerDef; 1] = [TriggerDef::Interval {
    every: "100ms",
    every_ms: 100,
    start: "tick",
}];

static TICKER_SERVE: ServeDef = ServeDef {
    routes: &[],
    triggers: &TICKER_TRIGGERS,
};

/// `nap`: sleep `ms` (default 300) from the input, report what the run saw.
fn nap(cx: &Cx<'_>) -> Result<Step, Error> {
    let ms = cx
        .raw_input()
        .get("ms")
        .and_then(Value::as_u64)
        .unwrap_or(300);
    std::thread::sleep(Duration::from_millis(ms));
    Ok(Step::value(json!({
        "slept_ms": ms,
        "traceparent": cx.traceparent(),
        "input": cx.raw_input(),
    })))
}

/// `count`: record the input into `sink`, then sleep `sleep_ms`.
fn count(cx: &Cx<'_>, sink: &Mutex<Vec<Value>>, sleep_ms: u64) -> Result<Step, Error> {
    sink.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(cx.raw_input().clone());
    std::thread::sleep(Duration::from_millis(sleep_ms));
    Ok(Step::value(Value::Null))
}

fn exec(
    node: NodeIdx,
    cx: &mut Cx<'_>,
    sink: &Mutex<Vec<Value>>,
    sleep_ms: u64,
) -> Result<Step, Error> {
    match node.0 {
        0 => ::agentd_runtime::nodes::control::respond(cx, &G0_N0),
        1 => ::agentd_runtime::nodes::control::fail(cx, &G0_N1),
        2 => nap(cx),
        3 => Err(Error::tool("boom", "it blew up")),
        4 => count(cx, sink, sleep_ms),
        5 => nap(cx),
        _ => ::agentd_runtime::nodes::unknown_node(GraphId(0), node),
    }
}

fn count_sleep_ms() -> u64 {
    *COUNT_SLEEP_MS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ::agentd_runtime::Workflow for Api {
    const GRAPHS: &'static [::agentd_runtime::GraphMeta] = std::slice::from_ref(&G0);
    const INFO: &'static ::agentd_runtime::BuildInfo = &INFO;
    const SERVE: &'static ServeDef = &API_SERVE;

    fn exec(&self, _g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        exec(node, cx, &COUNTED, 0)
    }
}

impl ::agentd_runtime::Workflow for Ticker {
    const GRAPHS: &'static [::agentd_runtime::GraphMeta] = std::slice::from_ref(&G0);
    const INFO: &'static ::agentd_runtime::BuildInfo = &INFO;
    const SERVE: &'static ServeDef = &TICKER_SERVE;

    fn exec(&self, _g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        exec(node, cx, &COUNTED, count_sleep_ms())
    }
}

/// The same graph fired by a cron schedule (every second) and nothing else.
#[cfg(feature = "schedule-cron")]
pub struct Every;

/// Inputs `count` has seen in [`Every`].
#[cfg(feature = "schedule-cron")]
pub static CRON_SEEN: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[cfg(feature = "schedule-cron")]
static CRON_TRIGGERS: [TriggerDef; 1] = [TriggerDef::Cron {
    schedule: "* * * * * *",
    expr: "* * * * * *",
    start: "tick",
}];

#[cfg(feature = "schedule-cron")]
static CRON_SERVE: ServeDef = ServeDef {
    routes: &[],
    triggers: &CRON_TRIGGERS,
};

#[cfg(feature = "schedule-cron")]
impl ::agentd_runtime::Workflow for Every {
    const GRAPHS: &'static [::agentd_runtime::GraphMeta] = std::slice::from_ref(&G0);
    const INFO: &'static ::agentd_runtime::BuildInfo = &INFO;
    const SERVE: &'static ServeDef = &CRON_SERVE;

    fn exec(&self, _g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        exec(node, cx, &CRON_SEEN, 0)
    }
}

/// The directory [`Watcher`] watches (created by its test).
#[cfg(feature = "fs-watch")]
pub const WATCHED: &str = "/tmp/agentd-serve-test-fs-watch";

/// The same graph fired by an fs_watch trigger on [`WATCHED`] (creates and
/// removes only, 100 ms debounce).
#[cfg(feature = "fs-watch")]
pub struct Watcher;

/// Inputs `count` has seen in [`Watcher`].
#[cfg(feature = "fs-watch")]
pub static FS_SEEN: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[cfg(feature = "fs-watch")]
static FS_TRIGGERS: [TriggerDef; 1] = [TriggerDef::FsWatch {
    path: WATCHED,
    recursive: false,
    events: agentd_runtime::workflow::serve::FsEvents(
        agentd_runtime::workflow::serve::FsEvents::CREATE.0
            | agentd_runtime::workflow::serve::FsEvents::REMOVE.0,
    ),
    debounce_ms: 100,
    start: "tick",
}];

#[cfg(feature = "fs-watch")]
static FS_SERVE: ServeDef = ServeDef {
    routes: &[],
    triggers: &FS_TRIGGERS,
};

#[cfg(feature = "fs-watch")]
impl ::agentd_runtime::Workflow for Watcher {
    const GRAPHS: &'static [::agentd_runtime::GraphMeta] = std::slice::from_ref(&G0);
    const INFO: &'static ::agentd_runtime::BuildInfo = &INFO;
    const SERVE: &'static ServeDef = &FS_SERVE;

    fn exec(&self, _g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        exec(node, cx, &FS_SEEN, 0)
    }
}
