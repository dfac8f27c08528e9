//! End to end: a workflow with `[logging]` and `[logging.audit]` built by the
//! real `agentd` and run against a real HTTP server on 127.0.0.1 — JSON logs
//! to a file with run and node spans, the audit sink (info-level events at
//! the default `warn` level, redaction), the precedence of flags over the
//! environment over `[logging]`, and a canary secret that reaches the server
//! and no log, audit line or output.
//!
//! The workflow uses the node kinds of `workflows/status-report.toml`, so it
//! links the runtime `tests/effects_e2e.rs` already compiled (one cargo
//! build of a small crate, not another runtime build).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

/// The canary secret: must reach the server and nothing else.
const CANARY: &str = "canary-obs-e2e-7d41c9";

mod support;

use support::scratch;
use support::stub::Stub;

fn workflow(dir: &Path) -> String {
    format!(
        r#"name = "obs_e2e"

[logging]
level = "error"
format = "text"

[logging.audit]
target = "file:{audit}"
redact_fields = ["tenant"]

[policy.http]
urls = ["http://127.0.0.1:*"]
methods = ["GET"]

[policy.shell]
commands = ["/usr/bin/echo"]

[[secrets]]
name = "api_token"
source = "env"
var = "OBS_E2E_TOKEN"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "fetch"

[[nodes]]
id = "fetch"
type = "http_request"
method = "get"
url_from = "trigger.url"
headers = {{ Authorization = "Bearer {{{{secret:api_token}}}}" }}

[[nodes]]
id = "status"
type = "parse_json"
input_from = "fetch.body"

[[nodes]]
id = "argv"
type = "template_render"
template = "[\"state={{{{state}}}}\"]"
input_from = "status.parsed"

[[nodes]]
id = "args"
type = "parse_json"
input_from = "argv.rendered"

[[nodes]]
id = "record"
type = "shell_run"
command = "/usr/bin/echo"
args_from = "args.parsed"
timeout_secs = 5

[[nodes]]
id = "down"
type = "fail"
reason = "status endpoint down"

[[edges]]
from = "fetch"
to = "status"

[[edges]]
from = "fetch"
when = "error"
to = "down"

[[edges]]
from = "status"
to = "argv"

[[edges]]
from = "argv"
to = "args"

[[edges]]
from = "args"
to = "record"
"#,
        audit = dir.join("audit/deep/audit.jsonl").display()
    )
}

fn build(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("obs.toml"), workflow(dir)).expect("write workflow");
    let out = dir.join("obs-agent");
    support::agentd_build(dir, "obs.toml", &out, &[]);
    out
}

fn run(binary: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary);
    cmd.arg("--input")
        .arg(json!({ "url": url }).to_string())
        .args(args)
        .env("OBS_E2E_TOKEN", CANARY);
    for var in [
        "AGENTD_LOG",
        "AGENTD_LOG_FORMAT",
        "AGENTD_LOG_TARGET",
        "AGENTD_QUIET",
        "AGENTD_INPUT",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the workflow binary runs")
}

fn json_lines(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn events<'v>(lines: &'v [Value], execution_id: &str) -> Vec<&'v str> {
    lines
        .iter()
        .filter(|l| l["fields"]["execution_id"] == execution_id)
        .filter_map(|l| l["fields"]["event"].as_str())
        .collect()
}

fn assert_no_canary(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY),
        "the secret leaked into {what}:\n{text}"
    );
}

#[test]
fn json_logs_and_the_audit_sink_record_runs_and_never_the_secret() {
    let dir = scratch("obs-e2e");
    let binary = build(&dir);
    let upstream = Stub::start("200 OK", r#"{"state":"up"}"#, None);
    let port = upstream.port;
    let url = format!("http://127.0.0.1:{port}/status");
    let main_log = dir.join("logs/nested/main.log");
    let audit_log = dir.join("audit/deep/audit.jsonl");

    // 1. Flags beat the environment, which beats [logging] (level error, text).
    let target = format!("file:{}", main_log.display());
    let out = run(
        &binary,
        &url,
        &["--log-format", "json", "--log-target", &target],
        &[("AGENTD_LOG", "debug"), ("AGENTD_LOG_FORMAT", "text")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("outcome JSON");
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert!(
        stderr.is_empty(),
        "logs go to the file, not stderr: {stderr}"
    );

    let main = json_lines(&main_log);
    let started = main
        .iter()
        .find(|l| l["fields"]["event"] == "workflow.started")
        .unwrap_or_else(|| panic!("no workflow.started in {main:#?}"));
    assert_eq!(started["target"], "agentd::audit");
    assert_eq!(started["level"], "INFO");
    let id = started["fields"]["execution_id"]
        .as_str()
        .expect("execution_id")
        .to_owned();
    assert!(id.starts_with("exec-"), "{id}");
    let fetched = main
        .iter()
        .find(|l| l["fields"]["event"] == "node.completed" && l["span"]["node_id"] == "fetch")
        .unwrap_or_else(|| panic!("no node.completed for fetch in {main:#?}"));
    assert_eq!(
        fetched["level"], "DEBUG",
        "AGENTD_LOG=debug beat [logging].level"
    );
    assert_eq!(fetched["target"], "agentd::engine");
    assert_eq!(fetched["spans"][0]["name"], "workflow.run");
    assert_eq!(fetched["spans"][0]["execution_id"], id.as_str());
    assert_eq!(fetched["spans"][0]["workflow_id"], "obs_e2e");
    assert_eq!(fetched["spans"][0]["start_node"], "main");
    assert_eq!(fetched["spans"][0]["dry_run"], false);
    assert_eq!(fetched["spans"][1]["name"], "node.execute");
    assert_eq!(fetched["spans"][1]["kind"], "http_request");
    assert_eq!(fetched["spans"][1]["outcome"], "continue");
    assert!(fetched["spans"][1]["latency_ms"].is_u64(), "{fetched}");

    let audit = json_lines(&audit_log);
    assert_eq!(
        events(&audit, &id),
        ["workflow.started", "workflow.completed"]
    );
    assert!(
        audit
            .iter()
            .all(|l| l["target"] == "agentd::audit" && l.get("spans").is_none())
    );

    // The canary reached the server, and nothing else.
    let heads = upstream.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.contains(&format!("Bearer {CANARY}"))),
        "the server never saw the token: {heads:?}"
    );

    // 2. Defaults (no flags; a bad env format is ignored): [logging] says
    // `error` and text on stderr, but the denial's info-level neighbours
    // still reach the audit sink, with `reason` redacted there.
    let out = run(
        &binary,
        "http://localhost:9/denied",
        &[],
        &[("AGENTD_LOG_FORMAT", "yaml")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(5), "stderr: {stderr}");
    assert!(
        stderr.contains(" ERROR agentd::engine: event=\"node.failed\" reason=policy violation"),
        "text format, [logging].level = error: {stderr}"
    );
    assert!(
        !stderr.contains("workflow.started"),
        "info is below [logging].level: {stderr}"
    );
    let audit = json_lines(&audit_log);
    let denied = audit
        .iter()
        .find(|l| l["fields"]["event"] == "policy.denied")
        .unwrap_or_else(|| panic!("no policy.denied in {audit:#?}"));
    let id = denied["fields"]["execution_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        events(&audit, &id),
        ["workflow.started", "policy.denied", "workflow.errored"]
    );
    assert_eq!(denied["level"], "WARN");
    assert_eq!(denied["fields"]["node"], "fetch");
    assert_eq!(denied["fields"]["kind"], "http_request");
    assert_eq!(denied["fields"]["reason"], "<redacted>");

    // 3. --quiet silences the main log; the audit sink stays on.
    let out = run(&binary, "http://localhost:9/denied", &["--quiet"], &[]);
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.lines().count(),
        1,
        "only the `agentd:` error line: {stderr}"
    );
    assert!(json_lines(&audit_log).len() > audit.len());

    for (what, text) in [
        (
            "the main log",
            std::fs::read_to_string(&main_log).unwrap_or_default(),
        ),
        (
            "the audit sink",
            std::fs::read_to_string(&audit_log).unwrap_or_default(),
        ),
        ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
        ("stderr", stderr),
    ] {
        assert_no_canary(what, &text);
    }
}
