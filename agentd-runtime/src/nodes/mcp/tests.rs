use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::context::testing::{TestRun, path};
use crate::mcp::mock::MockServer;
use crate::mcp::{Allowlists, Mcp, McpServer};
use crate::policy::Policy;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn queues(pairs: &[(&str, Vec<Value>)]) -> BTreeMap<String, VecDeque<Value>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.iter().cloned().collect()))
        .collect()
}

/// A run with one mock server `name` allowing tools `search*` and resources
/// `mem://*` (under a policy).
fn run_with(
    names: &[&str],
    tools: &[(&str, Vec<Value>)],
    resources: &[(&str, Vec<Value>)],
) -> (TestRun, Arc<MockServer>) {
    let mock = Arc::new(MockServer::new(queues(tools), queues(resources)));
    let servers = names
        .iter()
        .map(|n| ServerEntry {
            name: (*n).to_owned(),
            allow: Allowlists::Lists {
                tools: &["search*"],
                resources: &["mem://*"],
            },
            server: mock.clone() as Arc<dyn McpServer>,
        })
        .collect();
    let mut run = TestRun::new(json!({"q": {"text": "rust"}, "uri": "mem://a", "n": 1}));
    run.set_mcp_state(std::sync::Arc::new(Mcp::new(
        servers,
        Duration::from_secs(5),
    )));
    (run, mock)
}

fn call_cfg(tool: &'static str, server: Option<&'static str>) -> &'static CallMcpTool {
    leak(CallMcpTool {
        tool,
        args_from: Some(path("trigger.q")),
        server,
    })
}

fn read_cfg(from: &'static str) -> &'static ReadMcpResource {
    leak(ReadMcpResource {
        resource_from: path(from),
        server: None,
    })
}

fn err(r: Result<Step, Error>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn a_tool_result_becomes_the_output_and_is_error_takes_the_error_branch() {
    let (mut run, mock) = run_with(
        &["gh"],
        &[(
            "search",
            vec![
                json!({"content": [{"type": "text", "text": "hit"}], "structuredContent": {"n": 1}}),
                json!({"content": [], "isError": true}),
            ],
        )],
        &[],
    );
    let cfg = call_cfg("search", None);
    assert_eq!(
        call_mcp_tool(&run.cx(), cfg).ok(),
        Some(Step::value(json!({
            "tool": "search", "server": "gh",
            "content": [{"type": "text", "text": "hit"}],
            "is_error": false, "structured": {"n": 1},
        })))
    );
    assert_eq!(
        call_mcp_tool(&run.cx(), cfg).ok(),
        Some(Step::branch(
            json!({"tool": "search", "server": "gh", "content": [], "is_error": true, "structured": null}),
            "error"
        ))
    );
    assert_eq!(
        mock.calls()[0],
        ("search".to_owned(), json!({"text": "rust"}))
    );
    // The queue is spent: a hard Mcp error.
    assert_eq!(
        err(call_mcp_tool(&run.cx(), cfg)),
        "mcp: mock: canned results for tool `search` are exhausted"
    );
}

#[test]
fn a_missing_args_path_sends_null() {
    let (mut run, mock) = run_with(&["gh"], &[("search", vec![json!({"content": []})])], &[]);
    let cfg = leak(CallMcpTool {
        tool: "search",
        args_from: Some(path("trigger.nope")),
        server: Some("gh"),
    });
    assert!(call_mcp_tool(&run.cx(), cfg).is_ok());
    assert_eq!(mock.calls()[0].1, Value::Null);
}

/// A policy under which every declared server may be used (`[policy.mcp]
/// servers = ["*"]`), so the servers' own lists decide.
fn any_server() -> Policy {
    static ANY: [std::borrow::Cow<'static, str>; 1] = [std::borrow::Cow::Borrowed("*")];
    let mut p = Policy::DENY_ALL;
    p.mcp.servers = std::borrow::Cow::Borrowed(&ANY);
    p
}

#[test]
fn an_empty_policy_denies_mcp_before_dry_run() {
    let (run, mock) = run_with(&["gh"], &[("search", vec![json!({"content": []})])], &[]);
    let mut run = run.with_policy(Policy::DENY_ALL).dry();
    assert!(
        err(call_mcp_tool(&run.cx(), call_cfg("search", None)))
            .contains("`[policy.mcp] servers` does not list it")
    );
    assert!(mock.calls().is_empty());
}

#[test]
fn the_allowlist_is_checked_before_dry_run_and_dry_run_never_calls() {
    let (run, mock) = run_with(&["gh"], &[("search", vec![json!({"content": []})])], &[]);
    let mut run = run.with_policy(any_server()).dry();
    assert_eq!(
        err(call_mcp_tool(&run.cx(), call_cfg("delete_repo", None))),
        "policy violation: mcp tool `delete_repo` denied by allowlist on server `gh`"
    );
    assert_eq!(
        call_mcp_tool(&run.cx(), call_cfg("search", None)).ok(),
        Some(Step::value(
            json!({"tool": "search", "server": "gh", "dry_run": true})
        ))
    );
    assert_eq!(
        read_mcp_resource(&run.cx(), read_cfg("trigger.uri")).ok(),
        Some(Step::value(
            json!({"uri": "mem://a", "server": "gh", "dry_run": true})
        ))
    );
    assert!(mock.calls().is_empty());
}

#[test]
fn server_selection_errors_are_workflow_errors() {
    let (mut run, _) = run_with(&["a", "b"], &[], &[]);
    let e = err(call_mcp_tool(&run.cx(), call_cfg("search", None)));
    assert!(
        e.starts_with("workflow `test`: node `me`: several MCP servers are configured"),
        "{e}"
    );
    assert_eq!(
        err(call_mcp_tool(&run.cx(), call_cfg("search", Some("c")))),
        "workflow `test`: node `me`: mcp server `c` is not configured; known servers: `a`, `b`"
    );
}

#[test]
fn no_servers_is_unavailable_or_a_stub() {
    let mut run = TestRun::new(Value::Null);
    let e = err(call_mcp_tool(&run.cx(), call_cfg("search", None)));
    assert!(
        e.starts_with("capability unavailable: no handler registered for node kind `merge`"),
        "{e}"
    );
    run.shared.stub_unavailable = true;
    assert_eq!(
        read_mcp_resource(&run.cx(), read_cfg("trigger.uri")).ok(),
        Some(Step::value(json!({"stub": "merge"})))
    );
}

#[test]
fn a_resource_read_returns_its_contents() {
    let (mut run, _) = run_with(
        &["docs"],
        &[],
        &[(
            "mem://a",
            vec![json!({"contents": [{"uri": "mem://a", "text": "A"}]})],
        )],
    );
    assert_eq!(
        read_mcp_resource(&run.cx(), read_cfg("trigger.uri")).ok(),
        Some(Step::value(json!({
            "uri": "mem://a", "server": "docs",
            "contents": [{"uri": "mem://a", "text": "A"}],
        })))
    );
}

#[test]
fn resource_uris_must_be_set_strings_and_allowed() {
    let (run, _) = run_with(&["docs"], &[], &[]);
    let mut run = run.with_policy(any_server());
    assert_eq!(
        err(read_mcp_resource(&run.cx(), read_cfg("trigger.missing"))),
        "tool `read_mcp_resource` failed: path `trigger.missing` is not set in the execution context"
    );
    assert_eq!(
        err(read_mcp_resource(&run.cx(), read_cfg("trigger.n"))),
        "tool `read_mcp_resource` failed: path `trigger.n` must resolve to a string; got number"
    );
    let mut denied = TestRun::new(json!({"uri": "file:///etc/passwd"})).with_policy(any_server());
    denied.shared.exts = run.shared.exts.clone();
    assert_eq!(
        err(read_mcp_resource(&denied.cx(), read_cfg("trigger.uri"))),
        "policy violation: mcp resource `file:///etc/passwd` denied by allowlist on server `docs`"
    );
}

#[test]
fn malformed_results_are_mcp_errors() {
    let (mut run, _) = run_with(
        &["gh"],
        &[(
            "search",
            vec![
                json!({"content": "text"}),
                json!({"content": [], "isError": "yes"}),
                json!([1]),
            ],
        )],
        &[("mem://a", vec![json!({"contents": 3})])],
    );
    let cfg = call_cfg("search", None);
    assert!(err(call_mcp_tool(&run.cx(), cfg)).contains("non-array `content`"));
    assert!(err(call_mcp_tool(&run.cx(), cfg)).contains("non-boolean `isError`"));
    assert!(err(call_mcp_tool(&run.cx(), cfg)).contains("non-object result"));
    assert!(
        err(read_mcp_resource(&run.cx(), read_cfg("trigger.uri"))).contains("non-array `contents`")
    );
}

#[test]
fn the_loop_tool_checks_its_arguments_and_reports_is_error_as_data() {
    let (mut run, mock) = run_with(
        &["gh"],
        &[("search", vec![json!({"content": [], "isError": true})])],
        &[],
    );
    let cx = run.cx();
    assert_eq!(
        loop_call_mcp_tool(&cx, &json!({"args": {}}))
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("tool `call_mcp_tool` failed: loop argument `tool` must be a string")
    );
    assert_eq!(
        loop_call_mcp_tool(&cx, &json!({"tool": "search", "server": 1}))
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("tool `call_mcp_tool` failed: loop argument `server` must be a string")
    );
    let out = loop_call_mcp_tool(
        &cx,
        &json!({"tool": "search", "args": {"q": 1}, "server": "gh"}),
    );
    assert_eq!(
        out.ok().and_then(|v| v.get("is_error").cloned()),
        Some(json!(true))
    );
    assert_eq!(mock.calls()[0].1, json!({"q": 1}));
}
