use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::context::testing::{TestRun, path};
use crate::intel::mock::MockBackend;
use crate::intel::{Backends, ChatReply, Intel, TokenBudget};
use crate::policy::{FsPolicy, Policy};

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn cfg(tools: &'static [LoopTool], max_steps: u32, max_tokens: Option<u32>) -> &'static AgentLoop {
    leak(AgentLoop {
        backend: "default",
        instructions: None,
        instructions_from: Some(path("trigger.task")),
        tools,
        max_steps,
        max_tokens,
    })
}

static READ_ONLY: [LoopTool; 1] = [LoopTool::ReadFile];
static READ_WRITE: [LoopTool; 2] = [LoopTool::ReadFile, LoopTool::WriteFile];

fn reply(content: &str, p: u64, c: u64) -> ChatReply {
    ChatReply {
        content: content.into(),
        prompt_tokens: p,
        completion_tokens: c,
    }
}

/// A run whose `default` backend answers `replies`; the task is `task`.
fn run_with(replies: Vec<ChatReply>, run_cap: Option<u64>) -> (TestRun, Arc<MockBackend>) {
    let mock = Arc::new(MockBackend::from_replies(VecDeque::from(replies), None));
    let mut backends = Backends::new();
    backends.insert("default", mock.clone());
    let mut run = TestRun::new(json!({"task": "summarise the log"}));
    run.set_llm_state(std::sync::Arc::new(Intel::new(
        backends,
        TokenBudget::new(run_cap),
    )));
    (run, mock)
}

fn go(run: &mut TestRun, c: &'static AgentLoop) -> Result<Step, Error> {
    agent_loop(&mut run.cx(), c)
}

fn parts(step: Result<Step, Error>) -> (Value, Option<String>) {
    match step {
        Ok(Step::Continue { value, branch }) => (value, branch.map(Cow::into_owned)),
        other => panic!("expected Continue, got {other:?}"),
    }
}

/// A scratch file under the temp dir, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("agentd-loop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    fn read_only_policy(&self) -> Policy {
        let pattern: &'static str = Box::leak(format!("{}/**", self.0.display()).into_boxed_str());
        let patterns: &'static [Cow<'static, str>] =
            Box::leak(vec![Cow::Borrowed(pattern)].into_boxed_slice());
        Policy {
            fs: FsPolicy {
                read: Cow::Borrowed(patterns),
                ..Policy::DENY_ALL.fs
            },
            ..Policy::DENY_ALL
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_final_answer_wrapped_in_prose_and_fences_ends_the_loop() {
    let (mut run, mock) = run_with(
        vec![reply(
            "Done.\n```json\n{\"action\": \"final\", \"result\": {\"summary\": \"all {quiet}\"}}\n```",
            30,
            7,
        )],
        None,
    );
    let (value, branch) = parts(go(&mut run, cfg(&READ_ONLY, 4, None)));
    assert_eq!(branch, None);
    assert_eq!(
        value,
        json!({
            "result": {"summary": "all {quiet}"},
            "steps": 1,
            "tokens": 37,
            "transcript": [{"step": 1, "action": "final"}],
        })
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].model, "fast");
    assert_eq!(reqs[0].max_tokens, None);
    assert_eq!(reqs[0].messages[0].role, "system");
    assert!(reqs[0].messages[0].content.contains("read_file {\"path\""));
    assert!(!reqs[0].messages[0].content.contains("write_file"));
    assert_eq!(reqs[0].messages[1], ChatMessage::user("summarise the log"));
    let m = run.shared.metrics.snapshot();
    assert_eq!((m.llm_calls, m.llm_tokens), (1, 37));
    assert_eq!(
        run.llm_state()
            .and_then(|s| s.downcast_ref::<crate::intel::Intel>())
            .map_or(0, |i| i.budget.used()),
        37
    );
}

#[test]
fn a_tool_call_runs_through_the_policy_gate_and_its_result_is_observed() {
    let scratch = Scratch::new("read");
    let file = scratch.file("app.log");
    std::fs::write(&file, "line one\n").expect("write fixture");
    let call = json!({"action": "tool", "tool": "read_file", "args": {"path": file}}).to_string();
    let (run, mock) = run_with(
        vec![
            reply(&call, 10, 5),
            reply(r#"{"action":"final","result":"one line"}"#, 20, 3),
        ],
        None,
    );
    let mut run = run.with_policy(scratch.read_only_policy());
    let (value, branch) = parts(go(&mut run, cfg(&READ_ONLY, 4, None)));
    assert_eq!(branch, None);
    assert_eq!(value["result"], json!("one line"));
    assert_eq!(value["steps"], json!(2));
    assert_eq!(value["tokens"], json!(38));
    assert_eq!(
        value["transcript"],
        json!([
            {"step": 1, "action": "tool", "tool": "read_file", "args": {"path": file}, "ok": true},
            {"step": 2, "action": "final"},
        ])
    );
    let reqs = mock.requests();
    let second = &reqs[1].messages;
    assert_eq!(second.len(), 4, "system, task, assistant, observation");
    assert_eq!(second[2], ChatMessage::assistant(call));
    let observed: Value = serde_json::from_str(&second[3].content).expect("observation JSON");
    assert_eq!(
        observed,
        json!({"tool_result": {"path": file, "content": "line one\n", "bytes": 9}})
    );
}

#[test]
fn a_policy_denial_is_an_observation_not_a_run_failure() {
    let scratch = Scratch::new("deny");
    let call =
        json!({"action": "tool", "tool": "read_file", "args": {"path": "/etc/shadow"}}).to_string();
    let (run, mock) = run_with(
        vec![
            reply(&call, 1, 1),
            reply(r#"{"action":"final","result":null}"#, 1, 1),
        ],
        None,
    );
    let mut run = run.with_policy(scratch.read_only_policy());
    let (value, _) = parts(go(&mut run, cfg(&READ_ONLY, 4, None)));
    assert_eq!(value["transcript"][0]["ok"], json!(false));
    let observed: Value =
        serde_json::from_str(&mock.requests()[1].messages[3].content).expect("observation JSON");
    let error = observed["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("policy violation: read_file denied on /etc/shadow"),
        "{error}"
    );
    assert_eq!(run.shared.metrics.snapshot().policy_denials, 0);
}

#[test]
fn undeclared_tools_and_malformed_replies_become_error_observations() {
    let (mut run, mock) = run_with(
        vec![
            reply(
                r#"{"action":"tool","tool":"shell_run","args":{"command":"/bin/rm"}}"#,
                1,
                1,
            ),
            reply("I think I should look at the file first.", 1, 1),
            reply(r#"{"action":"dance"}"#, 1, 1),
            reply(r#"{"action":"tool","tool":"read_file","args":[1]}"#, 1, 1),
            reply(r#"{"action":"final","result":7}"#, 1, 1),
        ],
        None,
    );
    let (value, _) = parts(go(&mut run, cfg(&READ_ONLY, 8, None)));
    assert_eq!(value["result"], json!(7));
    assert_eq!(
        value["transcript"],
        json!([
            {"step": 1, "action": "tool", "tool": "shell_run", "args": {"command": "/bin/rm"}, "ok": false},
            {"step": 2, "action": "malformed"},
            {"step": 3, "action": "malformed"},
            {"step": 4, "action": "malformed"},
            {"step": 5, "action": "final"},
        ])
    );
    let reqs = mock.requests();
    let obs = |call: usize| -> String {
        let msgs = &reqs[call].messages;
        let v: Value = serde_json::from_str(&msgs[msgs.len() - 1].content).expect("JSON");
        v["error"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(
        obs(1),
        "tool `shell_run` is not available in this loop; available tools: read_file"
    );
    assert!(obs(2).starts_with("no JSON object found"), "{}", obs(2));
    assert!(obs(3).starts_with("unknown action `dance`"), "{}", obs(3));
    assert_eq!(obs(4), "`args` must be a JSON object");
}

#[test]
fn the_step_cap_takes_the_exhausted_branch() {
    let tool = r#"{"action":"tool","tool":"read_file","args":{"path":"/nonexistent/x"}}"#;
    let (mut run, mock) = run_with(vec![reply(tool, 1, 1); 5], None);
    let (value, branch) = parts(go(&mut run, cfg(&READ_ONLY, 3, None)));
    assert_eq!(branch.as_deref(), Some("exhausted"));
    assert_eq!(value["result"], Value::Null);
    assert_eq!(value["reason"], json!("step cap exhausted"));
    assert_eq!(value["steps"], json!(3));
    assert_eq!(value["transcript"].as_array().map(Vec::len), Some(3));
    assert!(
        value.get("tokens").is_none(),
        "exhausted output has no tokens"
    );
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn the_node_token_cap_takes_the_exhausted_branch() {
    let tool = r#"{"action":"tool","tool":"read_file","args":{"path":"/nonexistent/x"}}"#;
    let (mut run, mock) = run_with(vec![reply(tool, 40, 20); 5], None);
    let (value, branch) = parts(go(&mut run, cfg(&READ_ONLY, 10, Some(100))));
    assert_eq!(branch.as_deref(), Some("exhausted"));
    assert_eq!(value["reason"], json!("token budget exhausted"));
    // 60 after one call, 120 after two: the third is never made.
    assert_eq!(value["steps"], json!(2));
    assert_eq!(mock.requests().len(), 2);
}

#[test]
fn the_run_token_budget_takes_the_exhausted_branch() {
    let tool = r#"{"action":"tool","tool":"read_file","args":{"path":"/nonexistent/x"}}"#;
    let (mut run, mock) = run_with(vec![reply(tool, 30, 30); 5], Some(100));
    run.llm_state()
        .and_then(|s| s.downcast_ref::<crate::intel::Intel>())
        .expect("the run's Intel")
        .budget
        .add(50);
    let (value, branch) = parts(go(&mut run, cfg(&READ_ONLY, 10, None)));
    assert_eq!(branch.as_deref(), Some("exhausted"));
    assert_eq!(value["reason"], json!("run token budget exhausted"));
    assert_eq!(value["steps"], json!(1));
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn a_passed_deadline_is_a_hard_timeout() {
    let (mut run, mock) = run_with(vec![reply(r#"{"action":"final"}"#, 1, 1)], None);
    run.frame.deadline = Instant::now();
    std::thread::sleep(Duration::from_millis(2));
    let err = go(&mut run, cfg(&READ_ONLY, 4, None))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("timeout after"), "{err}");
    assert!(mock.requests().is_empty());
}

#[test]
fn dry_run_answers_the_placeholder_without_calling_the_model() {
    let (run, mock) = run_with(Vec::new(), None);
    let mut run = run.dry();
    let (value, branch) = parts(go(&mut run, cfg(&READ_ONLY, 4, None)));
    assert_eq!(branch, None);
    assert_eq!(value, json!({"result": null, "steps": 0, "dry_run": true}));
    assert!(mock.requests().is_empty());
}

#[test]
fn no_backend_is_unavailable_or_a_stub_and_unknown_backends_are_named() {
    let mut run = TestRun::new(json!({"task": "x"}));
    let err = go(&mut run, cfg(&READ_ONLY, 4, None))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("capability unavailable: no handler registered for node kind `agent_loop`"),
        "{err}"
    );
    run.shared.stub_unavailable = true;
    assert_eq!(
        go(&mut run, cfg(&READ_ONLY, 4, None)).ok(),
        Some(Step::value(json!({"stub": "agent_loop"})))
    );
    let (mut run, _) = run_with(Vec::new(), None);
    let named = leak(AgentLoop {
        backend: "claude",
        instructions: Some("t"),
        instructions_from: None,
        tools: &READ_ONLY,
        max_steps: 1,
        max_tokens: None,
    });
    assert_eq!(
        go(&mut run, named).err().map(|e| e.to_string()).as_deref(),
        Some(
            "intelligence call failed: backend `claude` is not configured on this runtime; \
             known backends: `default`"
        )
    );
}

#[test]
fn instructions_from_serialises_json_and_must_be_set() {
    let (mut run, mock) = run_with(vec![reply(r#"{"action":"final"}"#, 0, 0)], None);
    let from_obj = leak(AgentLoop {
        backend: "default",
        instructions: None,
        instructions_from: Some(path("trigger")),
        tools: &READ_ONLY,
        max_steps: 1,
        max_tokens: None,
    });
    assert!(go(&mut run, from_obj).is_ok());
    assert_eq!(
        mock.requests()[0].messages[1].content,
        r#"{"kind":"manual","task":"summarise the log"}"#
    );
    let unset = leak(AgentLoop {
        backend: "default",
        instructions: None,
        instructions_from: Some(path("trigger.nope")),
        tools: &READ_ONLY,
        max_steps: 1,
        max_tokens: None,
    });
    assert_eq!(
        go(&mut run, unset).err().map(|e| e.to_string()).as_deref(),
        Some("tool `agent_loop` failed: path `trigger.nope` is not set in the execution context")
    );
}

#[test]
fn transport_failures_are_hard_errors() {
    let mock = Arc::new(MockBackend::from_replies(VecDeque::new(), Some(1)));
    let mut backends = Backends::new();
    backends.insert("default", mock);
    let mut run = TestRun::new(json!({"task": "x"}));
    run.set_llm_state(std::sync::Arc::new(Intel::new(
        backends,
        TokenBudget::new(None),
    )));
    assert_eq!(
        go(&mut run, cfg(&READ_ONLY, 4, None))
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("intelligence call failed: injected transport fault on call 1")
    );
}

#[test]
fn hostile_replies_are_malformed_observations_not_crashes() {
    let deep = "{\"a\":".repeat(10_000) + &"}".repeat(10_000);
    let huge = format!(
        r#"{{"action":"final","result":"{}"}}"#,
        "x".repeat(MAX_REPLY + 1)
    );
    let (mut run, mock) = run_with(
        vec![
            reply(&deep, 1, 1),
            reply(&huge, 1, 1),
            reply(&"{".repeat(50_000), 1, 1),
            reply(r#"{"action":"final","result":"ok"}"#, 1, 1),
        ],
        None,
    );
    let (value, _) = parts(go(&mut run, cfg(&READ_ONLY, 8, None)));
    assert_eq!(value["result"], json!("ok"));
    assert_eq!(value["steps"], json!(4));
    let reqs = mock.requests();
    let last = |call: usize| -> Value {
        let msgs = &reqs[call].messages;
        serde_json::from_str(&msgs[msgs.len() - 1].content).expect("observation JSON")
    };
    let deep_err = last(1)["error"].as_str().unwrap_or_default().to_owned();
    assert!(deep_err.contains("recursion limit"), "{deep_err}");
    let huge_err = last(2)["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        huge_err.contains("exceeds the 1048576-byte limit"),
        "{huge_err}"
    );
    // The oversized reply itself is not re-sent to the model.
    assert!(reqs[2].messages.iter().all(|m| m.content.len() < MAX_REPLY));
    let open_err = last(3)["error"].as_str().unwrap_or_default().to_owned();
    assert!(open_err.starts_with("no JSON object found"), "{open_err}");
}

#[test]
fn oversized_observations_are_replaced_by_an_error() {
    let scratch = Scratch::new("big");
    let file = scratch.file("big.txt");
    std::fs::write(&file, "y".repeat(MAX_OBSERVATION + 10)).expect("write fixture");
    let call = json!({"action": "tool", "tool": "read_file", "args": {"path": file}}).to_string();
    let (mut run, mock) = run_with(
        vec![reply(&call, 1, 1), reply(r#"{"action":"final"}"#, 1, 1)],
        None,
    );
    let (value, _) = parts(go(&mut run, cfg(&READ_ONLY, 4, None)));
    assert_eq!(value["transcript"][0]["ok"], json!(true));
    let observed: Value =
        serde_json::from_str(&mock.requests()[1].messages[3].content).expect("observation JSON");
    assert!(
        observed["error"]
            .as_str()
            .is_some_and(|e| e.contains("observation limit")),
        "{observed}"
    );
}

#[test]
fn write_file_tool_requires_string_content_and_writes_through_the_gate() {
    let scratch = Scratch::new("write");
    let file = scratch.file("sub/out.txt");
    let bad = json!({"action": "tool", "tool": "write_file", "args": {"path": file, "content": 5}});
    let good =
        json!({"action": "tool", "tool": "write_file", "args": {"path": file, "content": "hi"}});
    let (mut run, mock) = run_with(
        vec![
            reply(&bad.to_string(), 1, 1),
            reply(&good.to_string(), 1, 1),
            reply(r#"{"action":"final","result":"written"}"#, 1, 1),
        ],
        None,
    );
    let (value, _) = parts(go(&mut run, cfg(&READ_WRITE, 4, None)));
    assert_eq!(value["result"], json!("written"));
    assert_eq!(value["transcript"][0]["ok"], json!(false));
    assert_eq!(value["transcript"][1]["ok"], json!(true));
    assert_eq!(std::fs::read_to_string(&file).ok().as_deref(), Some("hi"));
    let reqs = mock.requests();
    let first: Value = serde_json::from_str(&reqs[1].messages[3].content).expect("JSON");
    assert_eq!(
        first["error"],
        json!("tool `write_file` failed: argument `content` must be a string")
    );
}

#[test]
fn first_object_honours_strings_and_nesting() {
    assert_eq!(
        first_object("x {\"a\": {\"b\": 1}} y {}"),
        Some("{\"a\": {\"b\": 1}}")
    );
    assert_eq!(
        first_object(r#"{"s": "} {", "t": "\"}"}"#),
        Some(r#"{"s": "} {", "t": "\"}"}"#)
    );
    assert_eq!(first_object("no braces"), None);
    assert_eq!(first_object("{ unclosed"), None);
    assert_eq!(first_object("é {\"ü\": 1}"), Some("{\"ü\": 1}"));
}

#[test]
fn the_protocol_lists_only_declared_tools() {
    let text = protocol_text(&[LoopTool::CallMcpTool, LoopTool::ReadEnv]);
    assert!(text.contains("\"action\": \"final\""));
    assert!(text.contains("- call_mcp_tool {\"tool\""));
    assert!(text.contains("- read_env {\"key\""));
    assert!(!text.contains("read_file"));
}

/// A real Unix-socket backend that answers each connection with one of
/// `replies` (raw bytes after the length prefix, or a bare length).
#[cfg(unix)]
fn hostile_socket(
    tag: &str,
    replies: Vec<Vec<u8>>,
) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let path = std::env::temp_dir().join(format!("agentd-loop-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let handle = std::thread::spawn(move || {
        for reply in replies {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut len = [0_u8; 4];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let mut req = vec![0_u8; u32::from_le_bytes(len) as usize];
            let _ = s.read_exact(&mut req);
            let _ = s.write_all(&reply);
        }
    });
    (path, handle)
}

#[cfg(unix)]
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

#[cfg(unix)]
#[test]
fn hostile_transport_replies_are_clear_intelligence_errors() {
    let deep = "[".repeat(10_000);
    let mut not_utf8 = br#"{"jsonrpc":"2.0","id":1,"result":{"content":""#.to_vec();
    not_utf8.extend_from_slice(b"\xff\xfe\xfd");
    not_utf8.extend_from_slice(br#""}}"#);
    let replies = vec![
        framed(&not_utf8),
        // A frame header announcing 32 MiB: refused before reading it.
        (32_u32 * 1024 * 1024).to_le_bytes().to_vec(),
        framed(deep.as_bytes()),
    ];
    let (path, server) = hostile_socket("hostile", replies);
    let mut backends = Backends::new();
    backends.insert(
        "default",
        Arc::new(crate::intel::rpc::UnixBackend::new(
            &path,
            Duration::from_secs(5),
        )),
    );
    let mut run = TestRun::new(json!({"task": "x"}));
    run.set_llm_state(std::sync::Arc::new(Intel::new(
        backends,
        TokenBudget::new(None),
    )));
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(
            go(&mut run, cfg(&READ_ONLY, 4, None))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        );
    }
    let _ = server.join();
    let _ = std::fs::remove_file(&path);
    for e in &errors {
        assert!(e.starts_with("intelligence call failed: "), "{e}");
    }
    assert!(errors[0].contains("not valid JSON"), "{}", errors[0]);
    assert!(
        errors[1].contains("exceeds the 16777216-byte cap"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("recursion limit"), "{}", errors[2]);
    assert_eq!(run.shared.metrics.snapshot().llm_calls, 0, "nothing billed");
}

#[cfg(all(feature = "shell", feature = "http", unix))]
#[test]
fn shell_and_http_tools_take_their_node_kinds_gates() {
    use crate::policy::ShellPolicy;
    static TOOLS: [LoopTool; 2] = [LoopTool::ShellRun, LoopTool::HttpRequest];
    static ANY_COMMAND: [Cow<'static, str>; 1] = [Cow::Borrowed("*")];
    let echo = json!({"action": "tool", "tool": "shell_run",
                      "args": {"command": "/bin/echo", "args": ["from", "the loop"]}});
    let fetch = json!({"action": "tool", "tool": "http_request",
                       "args": {"method": "get", "url": "http://127.0.0.1:9/x"}});
    let (run, mock) = run_with(
        vec![
            reply(&echo.to_string(), 1, 1),
            reply(&fetch.to_string(), 1, 1),
            reply(r#"{"action":"final","result":"ok"}"#, 1, 1),
        ],
        None,
    );
    // Shell allowed; [policy.http] empty, so every request is denied
    // before any connection.
    let mut run = run.with_policy(Policy {
        shell: ShellPolicy {
            commands: Cow::Borrowed(&ANY_COMMAND),
        },
        ..Policy::DENY_ALL
    });
    let (value, _) = parts(go(&mut run, cfg(&TOOLS, 4, None)));
    assert_eq!(value["result"], json!("ok"));
    let reqs = mock.requests();
    let observed = |call: usize| -> Value {
        serde_json::from_str(&reqs[call].messages[reqs[call].messages.len() - 1].content)
            .expect("observation JSON")
    };
    let shell = observed(1);
    assert_eq!(
        shell["tool_result"]["stdout"],
        json!("from the loop\n"),
        "{shell}"
    );
    assert_eq!(shell["tool_result"]["exit_code"], json!(0));
    let http = observed(2)["error"].as_str().unwrap_or_default().to_owned();
    assert!(http.starts_with("policy violation: "), "{http}");
    assert_eq!(value["transcript"][1]["ok"], json!(false));
}
