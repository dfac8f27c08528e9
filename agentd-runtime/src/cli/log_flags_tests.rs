//! The logging flags through the binary's command line, in-process (the
//! logger's own tests are the core's, `obs/tests.rs`).

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::{
    BuildInfo, EdgeMeta, GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, Slot, Source, StartMeta,
};
use crate::obs::{AuditConfig, LogConfig, LogFormat, Rotation};
use crate::workflow::Workflow;
use agentd_core::obs::testing::Scratch;

static NODES: [NodeMeta; 1] = [NodeMeta {
    id: "only",
    kind: Kind::Merge,
    slot: Slot::Node(0),
    retry: None,
}];
static EDGES: [&[EdgeMeta]; 1] = [&[]];
static STARTS: [StartMeta; 1] = [StartMeta {
    name: "main",
    source: Source::Manual,
    entry: Some(NodeIdx(0)),
    roots: 1,
}];
static GRAPHS: [GraphMeta; 1] = [GraphMeta {
    name: "logged",
    starts: &STARTS,
    nodes: &NODES,
    out_edges: &EDGES,
    edge_count: 0,
}];
static INFO: BuildInfo = BuildInfo {
    workflow: "logged",
    compiler_version: "0.0.0",
    sources: &[],
    capabilities: &[],
    program_hash: "",
    signer: None,
    policy_key: None,
};

struct Plain;

impl Workflow for Plain {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;
    const LOGGING: LogConfig = LogConfig {
        format: Some(LogFormat::Json),
        rotation: Rotation::Hourly,
        ..LogConfig::NONE
    };

    fn exec(&self, _g: GraphId, _node: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
        Ok(Step::value(serde_json::json!({"ok": true})))
    }
}

/// Its audit sink can never be opened (no directory can be made in /proc).
struct BadAudit;

impl Workflow for BadAudit {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;
    const LOGGING: LogConfig = LogConfig {
        audit: Some(AuditConfig {
            target: Some("file:/proc/agentd-no-such-dir/audit.jsonl"),
            redact_fields: &[],
            include_reason: false,
        }),
        ..LogConfig::NONE
    };

    fn exec(&self, _g: GraphId, _node: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
        Ok(Step::value(serde_json::Value::Null))
    }
}

fn run<W: Workflow>(w: &'static W, args: &[&str]) -> (u8, String, String) {
    let mut argv = vec!["agent"];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = crate::cli::run(w, argv, &mut std::io::empty(), &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn a_bad_log_format_or_target_on_the_command_line_is_a_usage_error() {
    let (code, out, err) = run(&Plain, &["--log-format", "yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.contains("--log-format"), "{err}");
    let (code, _, err) = run(&Plain, &["--log-target", "syslog"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("expected stderr, stdout or file:PATH"),
        "{err}"
    );
}

#[test]
fn a_file_target_creates_its_directories_and_rotates_by_the_baked_period() {
    let dir = Scratch::new();
    let target = format!("file:{}", dir.path("a/b/agent.log").display());
    let (code, out, err) = run(&Plain, &["--log-target", &target, "--log-format", "pretty"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"completed\""), "{out}");
    let names: Vec<String> = std::fs::read_dir(dir.path("a/b"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("agent.log.") && names[0].len() == "agent.log.YYYY-MM-DD-HH".len(),
        "{names:?}"
    );
}

#[test]
fn an_unopenable_audit_sink_refuses_to_start_with_exit_5() {
    let (code, out, err) = run(&BadAudit, &[]);
    assert_eq!(code, 5, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("agentd: failed to install log subscriber: audit sink: cannot open log file"),
        "{err}"
    );
}

#[test]
fn an_invalid_level_directive_runs_at_info_and_says_so() {
    let (code, _, err) = run(&Plain, &["--log-level", "agentd=chatty", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("invalid log level `agentd=chatty`"), "{err}");
}
