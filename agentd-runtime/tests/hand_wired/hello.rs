// Hand-written against the runtime's contract layer for
// ../shared/compat/examples/hello.toml: the same items codegen emits (graph
// tables, one `static` per node config, a `Workflow` impl whose `exec` is one
// `match` over `(graph, node)` ending in `unknown_node`), wired without the
// compiler. The exact generated shape (a `use` block and short names, statics
// named after their nodes, `..Policy::DENY_ALL`) is pinned by
// tests/golden/*.rs; this file keeps full `::agentd_runtime::` paths and
// `G<graph>_N<node>` names.
//
// Conventions:
// - node order, edge order and edge indices are declaration order.

/// The `hello` workflow.
pub struct Hello;

static G0_STARTS: [::agentd_runtime::StartMeta; 1] = [::agentd_runtime::StartMeta {
    name: "main",
    source: ::agentd_runtime::Source::Manual,
    entry: Some(::agentd_runtime::NodeIdx(0)),
    roots: 1,
}];

static G0_NODES: [::agentd_runtime::NodeMeta; 5] = [
    ::agentd_runtime::NodeMeta {
        id: "who",
        kind: ::agentd_runtime::Kind::ReadEnv,
        slot: ::agentd_runtime::Slot::Node(0),
        retry: None,
    },
    ::agentd_runtime::NodeMeta {
        id: "greeting",
        kind: ::agentd_runtime::Kind::TemplateRender,
        slot: ::agentd_runtime::Slot::Node(1),
        retry: None,
    },
    ::agentd_runtime::NodeMeta {
        id: "path",
        kind: ::agentd_runtime::Kind::TemplateRender,
        slot: ::agentd_runtime::Slot::Node(2),
        retry: None,
    },
    ::agentd_runtime::NodeMeta {
        id: "save",
        kind: ::agentd_runtime::Kind::WriteFile,
        slot: ::agentd_runtime::Slot::Node(3),
        retry: None,
    },
    ::agentd_runtime::NodeMeta {
        id: "done",
        kind: ::agentd_runtime::Kind::Terminate,
        slot: ::agentd_runtime::Slot::Node(4),
        retry: None,
    },
];

static G0_EDGES: [&[::agentd_runtime::EdgeMeta]; 5] = [
    // who
    &[::agentd_runtime::EdgeMeta {
        to: ::agentd_runtime::NodeIdx(1),
        when: None,
        max_iterations: None,
        index: 0,
    }],
    // greeting
    &[::agentd_runtime::EdgeMeta {
        to: ::agentd_runtime::NodeIdx(2),
        when: None,
        max_iterations: None,
        index: 1,
    }],
    // path
    &[::agentd_runtime::EdgeMeta {
        to: ::agentd_runtime::NodeIdx(3),
        when: None,
        max_iterations: None,
        index: 2,
    }],
    // save
    &[::agentd_runtime::EdgeMeta {
        to: ::agentd_runtime::NodeIdx(4),
        when: None,
        max_iterations: None,
        index: 3,
    }],
    // done
    &[],
];

static GRAPHS: [::agentd_runtime::GraphMeta; 1] = [::agentd_runtime::GraphMeta {
    name: "hello",
    starts: &G0_STARTS,
    nodes: &G0_NODES,
    out_edges: &G0_EDGES,
    edge_count: 4,
}];

static INFO: ::agentd_runtime::BuildInfo = ::agentd_runtime::BuildInfo {
    workflow: "hello",
    compiler_version: "0.1.0",
    sources: &[::agentd_runtime::SourceFile {
        path: "examples/hello.toml",
        sha256: "2e3cc4164e4ce473363a6932d8d3b9adb2ee392e800915ac891026b355447c89",
    }],
    capabilities: &[
        "env",
        "fs",
        "read_env",
        "template_render",
        "terminate",
        "write_file",
    ],
    program_hash: "",
    signer: None,
    policy_key: None,
};

// [policy.env] read_keys = ["AGENTD_NAME"]; [policy.fs] write = ["/tmp/agentd-hello/**"];
// every section not declared is empty, i.e. denies.
static POLICY: ::agentd_runtime::Policy = ::agentd_runtime::Policy {
    fs: ::agentd_runtime::policy::FsPolicy {
        write: ::std::borrow::Cow::Borrowed(&[::std::borrow::Cow::Borrowed(
            "/tmp/agentd-hello/**",
        )]),
        ..::agentd_runtime::Policy::DENY_ALL.fs
    },
    env: ::agentd_runtime::policy::EnvPolicy {
        read_keys: ::std::borrow::Cow::Borrowed(&[::std::borrow::Cow::Borrowed("AGENTD_NAME")]),
    },
    ..::agentd_runtime::Policy::DENY_ALL
};

/// `who` (read_env)
static G0_N0: ::agentd_runtime::nodes::env::ReadEnv =
    ::agentd_runtime::nodes::env::ReadEnv { key: "AGENTD_NAME" };

/// `greeting` (template_render)
static G0_N1: ::agentd_runtime::nodes::data::TemplateRender =
    ::agentd_runtime::nodes::data::TemplateRender {
        template: ::agentd_runtime::Template(&[
            ::agentd_runtime::Seg::Lit("Hello, "),
            ::agentd_runtime::Seg::Key {
                raw: "value",
                path: &["value"],
            },
            ::agentd_runtime::Seg::Lit(" - your agent is alive.\n"),
        ]),
        input_from: Some(::agentd_runtime::CtxPath {
            text: "who",
            root: ::agentd_runtime::Slot::Node(0),
            rest: &[],
        }),
    };

/// `path` (template_render)
static G0_N2: ::agentd_runtime::nodes::data::TemplateRender =
    ::agentd_runtime::nodes::data::TemplateRender {
        template: ::agentd_runtime::Template(&[::agentd_runtime::Seg::Lit(
            "/tmp/agentd-hello/greeting.txt",
        )]),
        input_from: None,
    };

/// `save` (write_file)
static G0_N3: ::agentd_runtime::nodes::fs::WriteFile = ::agentd_runtime::nodes::fs::WriteFile {
    path_from: ::agentd_runtime::CtxPath {
        text: "path.rendered",
        root: ::agentd_runtime::Slot::Node(2),
        rest: &["rendered"],
    },
    content_from: ::agentd_runtime::CtxPath {
        text: "greeting.rendered",
        root: ::agentd_runtime::Slot::Node(1),
        rest: &["rendered"],
    },
};

// Not generated: lets the tests start from the baked policy.
#[allow(dead_code)]
pub static POLICY_FOR_TESTS: &::agentd_runtime::Policy = &POLICY;

impl ::agentd_runtime::Workflow for Hello {
    const GRAPHS: &'static [::agentd_runtime::GraphMeta] = &GRAPHS;
    const INFO: &'static ::agentd_runtime::BuildInfo = &INFO;
    const POLICY: Option<&'static ::agentd_runtime::Policy> = Some(&POLICY);

    fn exec(
        &self,
        g: ::agentd_runtime::GraphId,
        node: ::agentd_runtime::NodeIdx,
        cx: &mut ::agentd_runtime::Cx<'_>,
    ) -> Result<::agentd_runtime::Step, ::agentd_runtime::Error> {
        match (g.0, node.0) {
            (0, 0) => ::agentd_runtime::nodes::env::read_env(cx, &G0_N0),
            (0, 1) => ::agentd_runtime::nodes::data::template_render(cx, &G0_N1),
            (0, 2) => ::agentd_runtime::nodes::data::template_render(cx, &G0_N2),
            (0, 3) => ::agentd_runtime::nodes::fs::write_file(cx, &G0_N3),
            (0, 4) => ::agentd_runtime::nodes::control::terminate(cx),
            _ => ::agentd_runtime::nodes::unknown_node(g, node),
        }
    }
}
