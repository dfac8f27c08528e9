//! The logger end to end on one thread: a thread-scoped subscriber with
//! file sinks (never the process-wide one, so tests do not interfere).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use tracing_core::{Dispatch, Level, LevelFilter};

use super::filter::Filter;
use super::redact::Redactor;
use super::sink::{Sink, Target};
use super::spans::{NodeObs, RunObs};
use super::subscriber::{AuditLog, Logger, MainLog, ObsSubscriber};
use super::*;
use crate::context::Step;
use crate::error::Error;
use crate::graph::{Kind, NodeMeta, Slot};
use crate::outcome::Outcome;

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentd-obs-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sink(path: &Path) -> Sink {
    match Sink::open(&Target::File(path.to_path_buf()), Rotation::Never) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn logger(
    dir: &Scratch,
    level: &str,
    format: LogFormat,
    audit_extra: &'static [&'static str],
) -> Logger {
    let filter = match Filter::parse(level) {
        Ok(p) => p.filter,
        Err(e) => panic!("{e}"),
    };
    Logger {
        main: Some(MainLog {
            filter,
            format,
            sink: sink(&dir.path("main.log")),
            redact: Redactor::new(audit_extra, false),
        }),
        audit: Some(AuditLog {
            sink: sink(&dir.path("audit/audit.jsonl")),
            redact: Redactor::new(audit_extra, true),
        }),
        otel: None,
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn json_lines(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Run `f` with `logger` as this thread's subscriber.
fn with_logger(logger: Logger, f: impl FnOnce()) {
    let dispatch = Dispatch::new(ObsSubscriber::fixed(Arc::new(logger)));
    tracing_core::dispatcher::with_default(&dispatch, f);
}

static NODE: NodeMeta = NodeMeta {
    id: "save",
    kind: Kind::WriteFile,
    slot: Slot::Node(0),
    retry: None,
};

#[test]
fn info_audit_events_reach_the_sink_when_the_main_log_is_at_warn() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "warn", LogFormat::Text, &[]), || {
        assert!(audit_enabled(Level::INFO));
        audit(
            "workflow.started",
            json!({"execution_id": "exec-1", "dry_run": false}),
        );
        audit("policy.denied", json!({"node": "save"}));
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["level"], "INFO");
    assert_eq!(audit[0]["target"], "agentd::audit");
    assert_eq!(
        audit[0]["fields"],
        json!({"event": "workflow.started", "execution_id": "exec-1", "dry_run": false})
    );
    assert_eq!(audit[1]["level"], "WARN");
    let main = lines(&dir.path("main.log"));
    assert_eq!(
        main.len(),
        1,
        "only the warn event passes the main filter: {main:?}"
    );
    assert!(
        main[0].contains(" WARN agentd::audit: event=\"policy.denied\" node=\"save\""),
        "{}",
        main[0]
    );
}

#[test]
fn audit_fields_are_redacted_by_name_at_any_depth_and_reason_only_in_the_sink() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "info", LogFormat::Json, &["tenant"]), || {
        audit(
            "http.auth_denied",
            json!({
                "reason": "bad token",
                "Token": "t-123",
                "request": {"headers": {"Authorization": "Bearer x", "X-Id": "7"}},
                "TENANT": "acme",
            }),
        );
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    assert_eq!(
        audit[0]["fields"],
        json!({
            "event": "http.auth_denied",
            "reason": "<redacted>",
            "Token": "<redacted>",
            "request": {"headers": {"Authorization": "<redacted>", "X-Id": "7"}},
            "TENANT": "<redacted>",
        })
    );
    let main = json_lines(&dir.path("main.log"));
    assert_eq!(
        main[0]["fields"]["reason"], "bad token",
        "the main log keeps reasons"
    );
    assert_eq!(main[0]["fields"]["Token"], "<redacted>");
    assert_eq!(
        main[0]["fields"]["request"]["headers"]["Authorization"],
        "<redacted>"
    );
}

#[test]
fn registered_secret_values_never_reach_a_line() {
    let dir = Scratch::new();
    register_secret("canary-obs-5f2e9");
    with_logger(logger(&dir, "info", LogFormat::Text, &[]), || {
        audit(
            "workflow.failed",
            json!({"last_node": "x", "detail": "sent canary-obs-5f2e9 upstream"}),
        );
        tracing::error!(target: "agentd::engine", event = "node.failed", reason = "echo canary-obs-5f2e9");
    });
    let all = format!(
        "{}{}",
        std::fs::read_to_string(dir.path("main.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.path("audit/audit.jsonl")).unwrap_or_default()
    );
    assert!(all.contains("<redacted>"), "{all}");
    assert!(!all.contains("canary-obs-5f2e9"), "{all}");
}

#[test]
fn node_and_run_spans_give_events_their_context_and_record_the_outcome() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "debug", LogFormat::Json, &[]), || {
        let run = RunObs::start("exec-9", "hello", "main", true, std::time::Instant::now());
        let node = NodeObs::start(&NODE);
        let result: Result<Step, Error> = Err(Error::Policy("write_file denied on /etc/x".into()));
        let from = std::time::Instant::now();
        let to = from + std::time::Duration::from_millis(4);
        node.finish("exec-9", &NODE, &result, (from, to));
        let failed: Result<Outcome, Error> =
            Err(Error::Policy("write_file denied on /etc/x".into()));
        run.finish("exec-9", &failed, None);
    });
    let main = json_lines(&dir.path("main.log"));
    let failed = main
        .iter()
        .find(|l| l["fields"]["event"] == "node.failed")
        .unwrap_or_else(|| panic!("no node.failed in {main:?}"));
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["target"], "agentd::engine");
    assert_eq!(failed["fields"]["latency_ms"], 4);
    assert_eq!(
        failed["spans"],
        json!([
            {"execution_id": "exec-9", "workflow_id": "hello", "start_node": "main", "dry_run": true, "name": "workflow.run"},
            {"node_id": "save", "kind": "write_file", "outcome": "error", "latency_ms": 4, "name": "node.execute"},
        ])
    );
    assert_eq!(failed["span"]["name"], "node.execute");

    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let events: Vec<&str> = audit
        .iter()
        .filter_map(|l| l["fields"]["event"].as_str())
        .collect();
    assert_eq!(
        events,
        ["workflow.started", "policy.denied", "workflow.errored"]
    );
    assert_eq!(
        audit[1]["fields"],
        json!({"event": "policy.denied", "execution_id": "exec-9", "node": "save",
               "kind": "write_file", "reason": "<redacted>", "latency_ms": 4})
    );
}

#[test]
fn a_completed_visit_reports_its_latency_and_a_logged_run_is_not_quiet() {
    let dir = Scratch::new();
    let mut quiet = None;
    with_logger(logger(&dir, "debug", LogFormat::Json, &[]), || {
        let run = RunObs::start("exec-7", "hello", "main", false, std::time::Instant::now());
        quiet = Some(run.quiet());
        let node = NodeObs::start(&NODE);
        let from = std::time::Instant::now();
        let to = from + std::time::Duration::from_millis(7);
        node.finish("exec-7", &NODE, &Ok(Step::value(json!(1))), (from, to));
        run.finish(
            "exec-7",
            &Ok(Outcome::Completed {
                final_value: json!(1),
                last_node: Some("save"),
                http_response: None,
            }),
            None,
        );
    });
    assert_eq!(
        quiet,
        Some(false),
        "the span and workflow.started were written"
    );
    let main = json_lines(&dir.path("main.log"));
    let completed = main
        .iter()
        .find(|l| l["fields"]["event"] == "node.completed")
        .unwrap_or_else(|| panic!("no node.completed in {main:?}"));
    assert_eq!(completed["fields"]["latency_ms"], 7);
    assert_eq!(completed["span"]["latency_ms"], 7);
    assert_eq!(completed["span"]["outcome"], "continue");
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let done = audit
        .iter()
        .find(|l| l["fields"]["event"] == "workflow.completed")
        .unwrap_or_else(|| panic!("no workflow.completed in {audit:?}"));
    assert!(done["fields"]["elapsed_ms"].is_u64(), "{done}");

    // Nothing wants the span or the audit event: the run is quiet.
    let silent = Logger {
        main: None,
        audit: None,
        otel: None,
    };
    with_logger(silent, || {
        let run = RunObs::start("exec-8", "hello", "main", false, std::time::Instant::now());
        quiet = Some(run.quiet());
        run.finish("exec-8", &Err(Error::Config("x".into())), None);
    });
    assert_eq!(quiet, Some(true));
}

#[test]
fn a_timed_out_run_under_a_run_time_budget_is_a_budget_event() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "off", LogFormat::Text, &[]), || {
        let run = RunObs::start("exec-2", "slow", "main", false, std::time::Instant::now());
        let timed_out: Result<Outcome, Error> = Ok(Outcome::TimedOut {
            elapsed_ms: 1000,
            last_node: Some("wait"),
        });
        run.finish("exec-2", &timed_out, Some(1));
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let events: Vec<&str> = audit
        .iter()
        .filter_map(|l| l["fields"]["event"].as_str())
        .collect();
    assert_eq!(
        events,
        [
            "workflow.started",
            "workflow.timed_out",
            "budget.run_time_exceeded"
        ]
    );
    assert_eq!(audit[2]["fields"]["max_run_time_secs"], 1);
    assert!(
        lines(&dir.path("main.log")).is_empty(),
        "level `off` writes nothing"
    );
}

#[test]
fn a_disabled_main_log_still_feeds_the_audit_sink() {
    let dir = Scratch::new();
    let mut l = logger(&dir, "trace", LogFormat::Text, &[]);
    l.main = None;
    with_logger(l, || {
        tracing::error!(target: "agentd::engine", event = "node.failed");
        audit("reload.completed", json!({}));
    });
    assert_eq!(json_lines(&dir.path("audit/audit.jsonl")).len(), 1);
    assert!(lines(&dir.path("main.log")).is_empty());
}

#[test]
fn tracing_events_on_the_audit_target_reach_the_sink_too() {
    let dir = Scratch::new();
    with_logger(logger(&dir, "error", LogFormat::Text, &[]), || {
        tracing::info!(target: "agentd::audit", event = "cron.fire", tick = 3_u64, secret = "s");
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    assert_eq!(
        audit[0]["fields"],
        json!({"event": "cron.fire", "tick": 3, "secret": "<redacted>"})
    );
}

#[test]
fn audit_levels_follow_the_event_name() {
    for warn in [
        "policy.denied",
        "budget.fs_write_denied",
        "budget.apply_failed",
        "budget.llm_tokens_exceeded",
        "node.retry",
        "http.rate_limited",
        "workflow.timed_out",
        "cron.error",
    ] {
        assert_eq!(audit_level(warn), Level::WARN, "{warn}");
    }
    for info in [
        "workflow.started",
        "budget.applied",
        "reload.completed",
        "signing.verified",
    ] {
        assert_eq!(audit_level(info), Level::INFO, "{info}");
    }
}

#[test]
fn the_filter_hint_covers_audit_events() {
    let dir = Scratch::new();
    let l = logger(&dir, "error", LogFormat::Text, &[]);
    assert!(l.wants(AUDIT_TARGET, &Level::INFO));
    assert!(!l.wants("agentd::engine", &Level::INFO));
    assert_eq!(
        Filter::at(LevelFilter::ERROR).max_level(),
        LevelFilter::ERROR
    );
}

/// The logging flags through the binary's command line, in-process.
mod cli_flags {
    use super::Scratch;
    use crate::context::{Cx, Step};
    use crate::error::Error;
    use crate::graph::{
        BuildInfo, EdgeMeta, GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, Slot, Source, StartMeta,
    };
    use crate::obs::{AuditConfig, LogConfig, LogFormat, Rotation};
    use crate::workflow::Workflow;

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
            err.contains(
                "agentd: failed to install log subscriber: audit sink: cannot open log file"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_level_directive_runs_at_info_and_says_so() {
        let (code, _, err) = run(&Plain, &["--log-level", "agentd=chatty", "--quiet"]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("invalid log level `agentd=chatty`"), "{err}");
    }
}

/// Each budget limit hit is an audit event in the sink (whatever the main
/// level), carrying what was asked and what was left.
#[test]
fn budget_hits_are_audit_events_fs_write_and_llm_tokens() {
    use crate::context::testing::{TestRun, path};

    let dir = Scratch::new();
    let target = dir.path("out/over.txt");
    let write: &'static crate::nodes::fs::WriteFile =
        Box::leak(Box::new(crate::nodes::fs::WriteFile {
            path_from: path("trigger.path"),
            content_from: path("trigger.content"),
        }));
    let counter: &'static crate::budget::FsWriteBudget =
        Box::leak(Box::new(crate::budget::FsWriteBudget::new()));
    with_logger(logger(&dir, "off", LogFormat::Text, &[]), || {
        let mut run = TestRun::new(json!({"path": target, "content": "0123456789ab"}));
        run.shared.fs_write = crate::budget::FsWriteLimit {
            cap: Some(10),
            counter,
        };
        assert!(crate::nodes::fs::write_file(&run.cx(), write).is_err());
        #[cfg(feature = "llm")]
        {
            let tokens = crate::intel::TokenBudget::new(Some(100));
            tokens.add(120);
            assert!(tokens.check("llm_infer").is_err());
        }
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let fs = audit
        .iter()
        .find(|l| l["fields"]["event"] == "budget.fs_write_denied")
        .unwrap_or_else(|| panic!("no budget.fs_write_denied in {audit:#?}"));
    assert_eq!(fs["level"], "WARN");
    assert_eq!(
        (&fs["fields"]["bytes"], &fs["fields"]["cap_bytes"]),
        (&json!(12), &json!(10))
    );
    assert!(!target.exists(), "the refused write left nothing");
    #[cfg(feature = "llm")]
    {
        let llm = audit
            .iter()
            .find(|l| l["fields"]["event"] == "budget.llm_tokens_exceeded")
            .unwrap_or_else(|| panic!("no budget.llm_tokens_exceeded in {audit:#?}"));
        assert_eq!(
            (&llm["fields"]["used"], &llm["fields"]["cap"]),
            (&json!(120), &json!(100))
        );
    }
}

/// Each schema repair of `llm_infer` is the audit event
/// `llm_infer.repair{node, attempt, reason}` (docs/operations.md "Logging and audit").
#[cfg(feature = "llm")]
#[test]
fn an_llm_schema_repair_is_an_audit_event() {
    use std::collections::VecDeque;

    use crate::context::testing::{TestRun, path};
    use crate::intel::mock::MockBackend;
    use crate::intel::{Backends, ChatReply, Intel, TokenBudget};
    use crate::nodes::llm::{LlmInfer, OutputSchema, llm_infer};
    use crate::template::{Seg, Template};

    static PROMPT: [Seg; 1] = [Seg::Lit("Decide.")];
    let reply = |content: &str| ChatReply {
        content: content.into(),
        prompt_tokens: 1,
        completion_tokens: 1,
    };
    let mock = Arc::new(MockBackend::from_replies(
        VecDeque::from(vec![reply("not json"), reply("{\"ok\": true}")]),
        None,
    ));
    let mut backends = Backends::new();
    backends.insert("default", mock);
    let mut run = TestRun::new(json!({}));
    run.shared.llm = Some(std::sync::Arc::new(Intel::new(
        backends,
        TokenBudget::new(None),
    )));
    let node = LlmInfer {
        backend: "default",
        prompt: Template(&PROMPT),
        input_from: Some(path("trigger")),
        output_schema: OutputSchema::JsonOnly,
        output_repairs: 1,
    };
    let dir = Scratch::new();
    with_logger(logger(&dir, "off", LogFormat::Text, &[]), || {
        assert!(llm_infer(&mut run.cx(), &node).is_ok());
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let repairs: Vec<&Value> = audit
        .iter()
        .filter(|l| l["fields"]["event"] == "llm_infer.repair")
        .collect();
    assert_eq!(repairs.len(), 1, "{audit:#?}");
    assert_eq!(repairs[0]["fields"]["node"], "me");
    assert_eq!(repairs[0]["fields"]["attempt"], 1);
}

#[test]
fn the_installed_audit_bits_answer_as_the_logger_does() {
    use super::subscriber::{LEVELS, audit_bits, level_bit};
    let dir = Scratch::new();
    let with_audit = logger(&dir, "warn", LogFormat::Text, &[]);
    let mut main_only = logger(&dir, "info", LogFormat::Text, &[]);
    main_only.audit = None;
    let mut main_error = logger(&dir, "error", LogFormat::Text, &[]);
    main_error.audit = None;
    let mut silent = logger(&dir, "off", LogFormat::Text, &[]);
    silent.audit = None;
    silent.main = None;
    let mut seen = std::collections::BTreeSet::new();
    for logger in [&with_audit, &main_only, &main_error, &silent] {
        let bits = audit_bits(logger);
        seen.insert(bits);
        for level in &LEVELS {
            assert_eq!(
                bits & level_bit(level) != 0,
                logger.wants(AUDIT_TARGET, level),
                "{level}"
            );
        }
    }
    // The four loggers answer differently, so the bits cannot be a constant.
    assert_eq!(seen.len(), 4, "{seen:?}");
}
