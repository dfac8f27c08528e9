//! The runtime's stdio MCP client against `mcp-double`, a real child process
//! speaking NDJSON JSON-RPC 2.0: the handshake, tools and resources, and
//! every way a server can misbehave (garbage, silence, dying mid-call, huge
//! lines, chatter) — each a clear error, never a hang, and the next call
//! gets a fresh child.
#![cfg(unix)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_runtime::mcp::McpServer;
use agentd_runtime::mcp::stdio::StdioServer;
use serde_json::{Value, json};

const DOUBLE: &str = env!("CARGO_BIN_EXE_mcp-double");

fn server(name: &str, flags: &[&str]) -> StdioServer {
    server_with_env(name, flags, Vec::new())
}

fn server_with_env(name: &str, flags: &[&str], env: Vec<(String, String)>) -> StdioServer {
    let mut argv = vec![DOUBLE.to_owned()];
    argv.extend(flags.iter().map(|f| (*f).to_owned()));
    StdioServer::from_parts(
        name,
        argv,
        env,
        Arc::new(|secret: &str| {
            if secret == "DOUBLE_TOKEN" {
                Ok("s3cret-value".to_owned())
            } else {
                Err(format!("secret `{secret}` is not declared"))
            }
        }),
    )
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mcp-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const T: Duration = Duration::from_secs(10);

fn text_of(result: &Value) -> String {
    result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn err(r: Result<Value, agentd_runtime::Error>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e.to_string(),
    }
}

/// Whether `pid` is a live `mcp-double` (not reaped, not reused).
fn double_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("mcp-double"))
        .unwrap_or(false)
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

#[test]
fn handshake_then_tools_and_resources() {
    let dir = scratch("handshake");
    let log = dir.join("received.jsonl");
    let log_arg = log.to_string_lossy().into_owned();
    let s = server("double", &["--log", &log_arg]);
    let echoed = s.call_tool("echo", &json!({"q": "rust"}), T).expect("echo");
    assert_eq!(echoed["structuredContent"], json!({"q": "rust"}));
    assert_eq!(echoed["isError"], json!(false));
    let failed = s.call_tool("fail", &json!({}), T).expect("fail answers");
    assert_eq!(failed["isError"], json!(true));
    let res = s.read_resource("mem://hello", T).expect("resource");
    assert_eq!(res["contents"][0]["text"], json!("hello"));
    // A missing `args_from` is sent as no `arguments` at all.
    let bare = s
        .call_tool("echo", &Value::Null, T)
        .expect("echo without args");
    assert_eq!(bare["structuredContent"], Value::Null);
    drop(s);
    let received: Vec<Value> = std::fs::read_to_string(&log)
        .expect("the double logged")
        .lines()
        .map(|l| serde_json::from_str(l).expect("we sent JSON lines"))
        .collect();
    assert_eq!(received[0]["method"], json!("initialize"));
    assert_eq!(received[0]["id"], json!(1));
    assert_eq!(
        received[0]["params"]["protocolVersion"],
        json!("2025-11-25")
    );
    assert_eq!(received[0]["params"]["clientInfo"]["name"], json!("agentd"));
    assert_eq!(
        received[1],
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    );
    assert_eq!(received[2]["method"], json!("tools/call"));
    assert_eq!(received[2]["id"], json!(2));
    assert_eq!(
        received[2]["params"],
        json!({"name": "echo", "arguments": {"q": "rust"}})
    );
    assert_eq!(received[4]["params"], json!({"uri": "mem://hello"}));
    assert_eq!(received[5]["params"], json!({"name": "echo"}));
    assert_eq!(received.len(), 6, "one handshake for the child's life");
}

#[test]
fn json_rpc_errors_fail_the_call_but_keep_the_child() {
    let s = server("double", &[]);
    let pid = text_of(&s.call_tool("pid", &Value::Null, T).expect("pid"));
    let e = err(s.call_tool("no_such_tool", &json!({}), T));
    assert_eq!(
        e,
        "mcp: mcp server `double` answered `tools/call` with error -32602: unknown tool `no_such_tool`"
    );
    let e = err(s.read_resource("mem://missing", T));
    assert!(e.contains("error -32002: resource not found"), "{e}");
    assert_eq!(
        text_of(&s.call_tool("pid", &Value::Null, T).expect("pid")),
        pid
    );
}

#[test]
fn notifications_pings_and_stale_answers_are_skipped() {
    let dir = scratch("chatty");
    let log = dir.join("received.jsonl");
    let log_arg = log.to_string_lossy().into_owned();
    let s = server("chatty", &["--chatty", "--log", &log_arg]);
    for i in 0..3 {
        let r = s
            .call_tool("echo", &json!({"i": i}), T)
            .expect("answers despite chatter");
        assert_eq!(r["structuredContent"], json!({"i": i}));
    }
    drop(s);
    let text = std::fs::read_to_string(&log).expect("the double logged");
    // The server pinged before each answer (ids 1001 on); every ping was
    // answered with an empty result. A pong is queued before the next
    // request, so all but the last one (racing the kill at drop) are
    // logged for sure.
    let pongs: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("method").is_none() && v["result"] == json!({}))
        .map(|v| v["id"].clone())
        .collect();
    for id in [1001, 1002, 1003] {
        assert!(pongs.contains(&json!(id)), "no pong for ping {id}: {text}");
    }
}

#[test]
fn garbage_is_a_clear_error() {
    let s = server("noisy", &["--garbage"]);
    let e = err(s.call_tool("echo", &json!({}), T));
    assert!(
        e.starts_with("mcp: mcp server `noisy` wrote a line that is not JSON"),
        "{e}"
    );
    assert!(e.contains("this is not json"), "{e}");
    assert_eq!(s.pid(), None, "the garbled child was stopped");
}

#[test]
fn a_silent_server_times_out_and_is_stopped() {
    let s = server("mute", &["--silent"]);
    s.start().expect("spawns");
    let pid = s.pid().expect("running");
    let started = Instant::now();
    let e = err(s.call_tool("echo", &json!({}), Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(20), "no hang");
    assert!(
        e.starts_with("mcp: mcp server `mute` did not answer `initialize` within 300ms"),
        "{e}"
    );
    assert_eq!(s.pid(), None);
    assert!(
        !double_alive(pid),
        "the timed-out child is killed and reaped"
    );
}

#[test]
fn a_hung_call_times_out_and_the_next_call_gets_a_fresh_child() {
    let s = server("double", &[]);
    let first = text_of(&s.call_tool("pid", &Value::Null, T).expect("pid"));
    let e = err(s.call_tool("hang", &json!({}), Duration::from_millis(300)));
    assert!(
        e.contains("did not answer `tools/call` within 300ms"),
        "{e}"
    );
    let second = text_of(&s.call_tool("pid", &Value::Null, T).expect("respawned"));
    assert_ne!(first, second);
}

#[test]
fn a_child_exiting_mid_call_is_a_clean_error_then_respawns() {
    let s = server("double", &[]);
    let first = text_of(&s.call_tool("pid", &Value::Null, T).expect("pid"));
    let e = err(s.call_tool("exit", &json!({}), T));
    assert_eq!(
        e,
        format!("mcp: mcp server `double` (`{DOUBLE}`) closed the pipe unexpectedly")
    );
    let second = text_of(&s.call_tool("pid", &Value::Null, T).expect("respawned"));
    assert_ne!(first, second);
    let pid: u32 = first.parse().expect("numeric pid");
    assert!(!double_alive(pid), "the dead child was reaped");
}

#[test]
fn an_over_long_line_is_refused() {
    let s = server("double", &[]);
    let e = err(s.call_tool("huge", &json!({}), T));
    assert_eq!(
        e,
        "mcp: mcp server `double` wrote a line longer than 16777216 bytes"
    );
    assert!(s.call_tool("echo", &json!({}), T).is_ok());
}

#[test]
fn env_secrets_reach_the_child_only() {
    let s = server_with_env(
        "double",
        &[],
        vec![("DOUBLE_SEEN_TOKEN".to_owned(), "DOUBLE_TOKEN".to_owned())],
    );
    let r = s
        .call_tool("env", &json!({"name": "DOUBLE_SEEN_TOKEN"}), T)
        .expect("env tool");
    assert_eq!(text_of(&r), "s3cret-value");
    assert!(std::env::var_os("DOUBLE_SEEN_TOKEN").is_none());
    // Debug output names the variable, never the secret or its value.
    let debug = format!("{s:?}");
    assert!(
        debug.contains("DOUBLE_SEEN_TOKEN") && !debug.contains("s3cret"),
        "{debug}"
    );

    let missing = server_with_env(
        "double",
        &[],
        vec![("X".to_owned(), "UNDECLARED".to_owned())],
    );
    assert_eq!(
        missing.start().err().as_deref(),
        Some("failed to start MCP server `double`: env `X`: secret `UNDECLARED` is not declared")
    );
}

#[test]
fn a_missing_program_fails_to_start() {
    let s = StdioServer::from_parts(
        "ghost",
        vec!["/nonexistent/mcp-server".to_owned()],
        Vec::new(),
        Arc::new(|_: &str| Err("unused".to_owned())),
    );
    let e = s.start().err().unwrap_or_default();
    assert!(
        e.starts_with("failed to start MCP server `ghost`: /nonexistent/mcp-server:"),
        "{e}"
    );
    let e = err(s.call_tool("echo", &json!({}), T));
    assert!(
        e.starts_with("mcp: failed to start MCP server `ghost`"),
        "{e}"
    );
}

#[test]
fn concurrent_callers_take_turns() {
    let s = Arc::new(server("double", &[]));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.call_tool("sleep", &json!({"ms": 30, "i": i}), T))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().expect("no panic").expect("each call answered");
        assert_eq!(r["structuredContent"]["i"], json!(i));
    }
}

#[test]
fn dropping_the_server_kills_its_child() {
    let s = server("double", &[]);
    // A call, not just a spawn: /proc shows the new program's command line
    // only once its exec has finished, which a reply proves.
    let pid: u32 = text_of(&s.call_tool("pid", &Value::Null, T).expect("pid"))
        .parse()
        .expect("numeric pid");
    assert_eq!(s.pid(), Some(pid));
    assert!(double_alive(pid));
    drop(s);
    assert!(!double_alive(pid), "no orphan, no zombie");
}

#[test]
fn a_dead_child_is_restarted_by_its_supervisor_with_a_growing_backoff_and_counted() {
    let s = Arc::new(server("double", &[]));
    s.start().expect("starts");
    s.supervise();
    let mut pid = s.pid().expect("running");
    for (round, backoff) in [(1, Duration::from_secs(1)), (2, Duration::from_secs(2))] {
        // The call in flight fails cleanly when its child dies.
        let e = err(s.call_tool("exit", &json!({}), T));
        assert!(e.contains("closed the pipe unexpectedly"), "{e}");
        let died = Instant::now();
        assert_eq!(s.pid(), None, "the dead child was reaped at once");
        // No call comes: the supervisor starts a new child after the backoff.
        let next = loop {
            if let Some(p) = s.pid() {
                break p;
            }
            assert!(
                died.elapsed() < backoff * 4,
                "no restart after {:?}",
                died.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let waited = died.elapsed();
        assert!(
            waited >= backoff - Duration::from_millis(100),
            "round {round}: restarted after {waited:?}, before the {backoff:?} backoff"
        );
        assert_ne!(next, pid);
        assert!(!double_alive(pid), "the old child is gone");
        assert_eq!(s.restarts(), round);
        pid = next;
    }
    // The restarted child serves calls (a fresh handshake).
    let echo = s
        .call_tool("echo", &json!({"q": "back"}), T)
        .expect("the restarted child answers");
    assert_eq!(echo["structuredContent"], json!({"q": "back"}));
}

#[test]
fn a_call_during_the_backoff_waits_for_the_restart_when_its_deadline_allows() {
    let s = server("double", &[]);
    let _ = err(s.call_tool("exit", &json!({}), T));
    // One second of backoff, a 200 ms deadline: a clear error at once.
    let began = Instant::now();
    let e = err(s.call_tool("pid", &Value::Null, Duration::from_millis(200)));
    assert!(e.contains("is restarting after its process died"), "{e}");
    assert!(
        began.elapsed() < Duration::from_millis(150),
        "{:?}",
        began.elapsed()
    );
    // A call with time to spare waits and is served by the new child.
    let answered = s
        .call_tool("pid", &Value::Null, T)
        .expect("served after the backoff");
    assert!(!text_of(&answered).is_empty());
    assert_eq!(s.restarts(), 1);
}
