// Hand-written in the shape `agentd` codegen emits, for this workflow and
// its child (graph 1 is ../shared/compat/examples/subworkflow-child.toml):
//
//   name = "router"
//   [[start_nodes]]  name = "main", source = "manual"   # entry: the only root
//   [[nodes]] id = "check" type = "condition"        expr = "trigger.go"
//   [[nodes]] id = "pick"  type = "switch"           expr = "trigger.mode"
//   [[nodes]] id = "gen"   type = "template_render"  template = "tick"
//   [[nodes]] id = "label" type = "call"             workflow = "subworkflow-child.toml", input_from = "trigger"
//   [[nodes]] id = "each"  type = "map"              items_from = "trigger.items", workflow = "subworkflow-child.toml",
//                                                    max_items = 3, max_concurrent = 2
//   [[nodes]] id = "eval"  type = "condition"        expr = "gen.rendered"
//   [[nodes]] id = "stop"  type = "fail"             reason = "router stopped"
//   [[nodes]] id = "first" type = "json_select"      input_from = "each", path = "results.0.result.rendered"
//   edges (in order): check -true-> pick, check -false-> stop, pick -loop-> gen, pick -call-> label,
//     pick -map-> each, gen -> eval, eval -true (max_iterations 2)-> gen, label -error-> stop,
//     each -> first, each -error-> stop
//
// The start has no `entry_node`: the compiler resolved the unique root
// (`check`) and baked it as `entry`.

/// The `router` workflow.
pub struct Router;

// The two `const fn` helpers only shorten this hand-written file; codegen
// emits full struct literals as in hello.rs (a helper would hide nothing
// and would have to be namespaced per generated module).

const fn edge(to: u32, when: Option<&'static str>, index: u32) -> ::agentd_runtime::EdgeMeta {
    ::agentd_runtime::EdgeMeta {
        to: ::agentd_runtime::NodeIdx(to),
        when,
        max_iterations: None,
        index,
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

// ----- graph 0: router ------------------------------------------------------

static G0_STARTS: [::agentd_runtime::StartMeta; 1] = [::agentd_runtime::StartMeta {
    name: "main",
    source: ::agentd_runtime::Source::Manual,
    entry: Some(::agentd_runtime::NodeIdx(0)),
    roots: 1,
}];

static G0_NODES: [::agentd_runtime::NodeMeta; 8] = [
    node("check", ::agentd_runtime::Kind::Condition, 0),
    node("pick", ::agentd_runtime::Kind::Switch, 1),
    node("gen", ::agentd_runtime::Kind::TemplateRender, 2),
    node("label", ::agentd_runtime::Kind::Call, 3),
    node("each", ::agentd_runtime::Kind::Map, 4),
    node("eval", ::agentd_runtime::Kind::Condition, 5),
    node("stop", ::agentd_runtime::Kind::Fail, 6),
    node("first", ::agentd_runtime::Kind::JsonSelect, 7),
];

static G0_EDGES: [&[::agentd_runtime::EdgeMeta]; 8] = [
    // check
    &[edge(1, Some("true"), 0), edge(6, Some("false"), 1)],
    // pick
    &[
        edge(2, Some("loop"), 2),
        edge(3, Some("call"), 3),
        edge(4, Some("map"), 4),
    ],
    // gen
    &[edge(5, None, 5)],
    // label
    &[edge(6, Some("error"), 7)],
    // each
    &[edge(7, None, 8), edge(6, Some("error"), 9)],
    // eval: the loop edge
    &[::agentd_runtime::EdgeMeta {
        to: ::agentd_runtime::NodeIdx(2),
        when: Some("true"),
        max_iterations: Some(2),
        index: 6,
    }],
    // stop
    &[],
    // first
    &[],
];

/// `check` (condition)
static G0_N0: ::agentd_runtime::nodes::control::Condition =
    ::agentd_runtime::nodes::control::Condition {
        expr: ::agentd_runtime::CtxPath {
            text: "trigger.go",
            root: ::agentd_runtime::Slot::Trigger,
            rest: &["go"],
        },
    };

/// `pick` (switch)
static G0_N1: ::agentd_runtime::nodes::control::Switch = ::agentd_runtime::nodes::control::Switch {
    expr: ::agentd_runtime::CtxPath {
        text: "trigger.mode",
        root: ::agentd_runtime::Slot::Trigger,
        rest: &["mode"],
    },
};

/// `gen` (template_render)
static G0_N2: ::agentd_runtime::nodes::data::TemplateRender =
    ::agentd_runtime::nodes::data::TemplateRender {
        template: ::agentd_runtime::Template(&[::agentd_runtime::Seg::Lit("tick")]),
        input_from: None,
    };

/// `label` (call)
static G0_N3: ::agentd_runtime::nodes::compose::Call = ::agentd_runtime::nodes::compose::Call {
    child: ::agentd_runtime::nodes::compose::ChildRef {
        graph: ::agentd_runtime::GraphId(1),
        start: 0,
    },
    input_from: Some(::agentd_runtime::CtxPath {
        text: "trigger",
        root: ::agentd_runtime::Slot::Trigger,
        rest: &[],
    }),
};

/// `each` (map)
static G0_N4: ::agentd_runtime::nodes::compose::Map = ::agentd_runtime::nodes::compose::Map {
    items_from: ::agentd_runtime::CtxPath {
        text: "trigger.items",
        root: ::agentd_runtime::Slot::Trigger,
        rest: &["items"],
    },
    child: ::agentd_runtime::nodes::compose::ChildRef {
        graph: ::agentd_runtime::GraphId(1),
        start: 0,
    },
    max_items: 3,
    max_concurrent: 2,
};

/// `eval` (condition)
static G0_N5: ::agentd_runtime::nodes::control::Condition =
    ::agentd_runtime::nodes::control::Condition {
        expr: ::agentd_runtime::CtxPath {
            text: "gen.rendered",
            root: ::agentd_runtime::Slot::Node(2),
            rest: &["rendered"],
        },
    };

/// `stop` (fail)
static G0_N6: ::agentd_runtime::nodes::control::Fail = ::agentd_runtime::nodes::control::Fail {
    reason: "router stopped",
};

/// `first` (json_select)
static G0_N7: ::agentd_runtime::nodes::data::JsonSelect =
    ::agentd_runtime::nodes::data::JsonSelect {
        input_from: ::agentd_runtime::CtxPath {
            text: "each",
            root: ::agentd_runtime::Slot::Node(4),
            rest: &[],
        },
        path: &["results", "0", "result", "rendered"],
    };

// ----- graph 1: labeller (subworkflow-child.toml) ---------------------------

static G1_STARTS: [::agentd_runtime::StartMeta; 1] = [::agentd_runtime::StartMeta {
    name: "main",
    source: ::agentd_runtime::Source::Manual,
    entry: Some(::agentd_runtime::NodeIdx(0)),
    roots: 1,
}];

static G1_NODES: [::agentd_runtime::NodeMeta; 1] =
    [node("label", ::agentd_runtime::Kind::TemplateRender, 0)];

static G1_EDGES: [&[::agentd_runtime::EdgeMeta]; 1] = [
    // label
    &[],
];

/// `label` (template_render)
static G1_N0: ::agentd_runtime::nodes::data::TemplateRender =
    ::agentd_runtime::nodes::data::TemplateRender {
        template: ::agentd_runtime::Template(&[
            ::agentd_runtime::Seg::Lit("label:"),
            ::agentd_runtime::Seg::Key {
                raw: "kind",
                path: &["kind"],
            },
        ]),
        input_from: Some(::agentd_runtime::CtxPath {
            text: "trigger",
            root: ::agentd_runtime::Slot::Trigger,
            rest: &[],
        }),
    };

// ----- the workflow ---------------------------------------------------------

static GRAPHS: [::agentd_runtime::GraphMeta; 2] = [
    ::agentd_runtime::GraphMeta {
        name: "router",
        starts: &G0_STARTS,
        nodes: &G0_NODES,
        out_edges: &G0_EDGES,
        edge_count: 10,
    },
    ::agentd_runtime::GraphMeta {
        name: "labeller",
        starts: &G1_STARTS,
        nodes: &G1_NODES,
        out_edges: &G1_EDGES,
        edge_count: 0,
    },
];

static INFO: ::agentd_runtime::BuildInfo = ::agentd_runtime::BuildInfo {
    workflow: "router",
    compiler_version: "0.1.0",
    sources: &[
        ::agentd_runtime::SourceFile {
            path: "router.toml",
            sha256: "0000000000000000000000000000000000000000000000000000000000000000",
        },
        ::agentd_runtime::SourceFile {
            path: "examples/subworkflow-child.toml",
            sha256: "811689669bc45e0782bd4a685c37cbbaefb4f8def18e38866e95ac10b56ed44d",
        },
    ],
    capabilities: &[
        "call",
        "condition",
        "data",
        "fail",
        "json_select",
        "map",
        "switch",
        "template_render",
    ],
    program_hash: "",
    signer: None,
    policy_key: None,
};

impl ::agentd_runtime::Workflow for Router {
    const GRAPHS: &'static [::agentd_runtime::GraphMeta] = &GRAPHS;
    const INFO: &'static ::agentd_runtime::BuildInfo = &INFO;
    // No `[policy]` block: `POLICY` keeps its default, `None` (allow-all).

    fn exec(
        &self,
        g: ::agentd_runtime::GraphId,
        node: ::agentd_runtime::NodeIdx,
        cx: &mut ::agentd_runtime::Cx<'_>,
    ) -> Result<::agentd_runtime::Step, ::agentd_runtime::Error> {
        match (g.0, node.0) {
            (0, 0) => ::agentd_runtime::nodes::control::condition(cx, &G0_N0),
            (0, 1) => ::agentd_runtime::nodes::control::switch(cx, &G0_N1),
            (0, 2) => ::agentd_runtime::nodes::data::template_render(cx, &G0_N2),
            (0, 3) => ::agentd_runtime::nodes::compose::call(self, cx, &G0_N3),
            (0, 4) => ::agentd_runtime::nodes::compose::map(self, cx, &G0_N4),
            (0, 5) => ::agentd_runtime::nodes::control::condition(cx, &G0_N5),
            (0, 6) => ::agentd_runtime::nodes::control::fail(cx, &G0_N6),
            (0, 7) => ::agentd_runtime::nodes::data::json_select(cx, &G0_N7),
            (1, 0) => ::agentd_runtime::nodes::data::template_render(cx, &G1_N0),
            _ => ::agentd_runtime::nodes::unknown_node(g, node),
        }
    }
}
