//! End to end: MCP against servers nobody here wrote, and against hostile ones.
//!
//! Workflows built by the real `agentd` call the official reference server
//! `@modelcontextprotocol/server-everything` over stdio and over Streamable HTTP
//! (echo, get-sum, a resource read, a tool that errors, a long operation that
//! times out and is cancelled, a resource subscription that fires an
//! `mcp.resource.updated` trigger in a served binary), with the URL given at start by `--mcp-url` and
//! checked against `[policy.http]`. A small Streamable HTTP server written here
//! speaks the wire format to pin down what the client sends (declared headers
//! with a secret, `Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`
//! resumption after the stream's `retry`, `notifications/cancelled`, `DELETE`
//! at exit) and misbehaves on purpose: garbage events, a stream that never
//! ends, a 100 MB reply, a connection closed mid-reply. Each must be a clear
//! error, in bounded time and memory.
//!
//! The reference servers come from `tests/deps/mcp.sh` (pinned, under
//! `target/test-deps/mcp`); without them these tests fail and say so.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

use support::scratch::{Scratch, scratch_path};
use support::stub::wait_listening;
use support::{Served, agentd_build, free_port, scratch, workspace};

/// A canary secret: must reach the server's request headers and nothing else.
const TOKEN: &str = "mcp-canary-5e1d";

/// `target/test-deps/mcp`, where tests/deps/mcp.sh installs the servers.
fn deps() -> PathBuf {
    let dir = workspace().join("target/test-deps/mcp");
    let everything = dir.join("node_modules/.bin/mcp-server-everything");
    assert!(
        everything.exists(),
        "the MCP reference servers are not installed: run tests/deps/mcp.sh \
         (expected {})",
        everything.display()
    );
    dir
}

fn everything_bin() -> PathBuf {
    deps().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The workflow: one `[[mcp_servers]]` entry (`server` is its TOML body) and a
/// start per scenario.
fn workflow(server: &str) -> String {
    format!(
        r#"name = "mcp_everything"

[policy.http]
urls = ["http://127.0.0.1*"]

[policy.mcp]
servers = ["everything"]

[[secrets]]
name = "mcp_token"
source = "env"
var = "AGENTD_E2E_MCP_TOKEN"

[[mcp_servers]]
name = "everything"
{server}
allow_tools = ["echo", "get-sum", "trigger-long-running-operation"]
allow_resources = ["demo://*"]
timeout_secs = 4

[[start_nodes]]
name = "call"
source = "manual"
entry_node = "call"

[[start_nodes]]
name = "sum"
source = "manual"
entry_node = "sum"

[[start_nodes]]
name = "doc"
source = "manual"
entry_node = "doc"

[[start_nodes]]
name = "slow"
source = "manual"
entry_node = "slow"

[[nodes]]
id = "call"
type = "call_mcp_tool"
tool = "echo"
args_from = "trigger.args"

[[nodes]]
id = "sum"
type = "call_mcp_tool"
tool = "get-sum"
args_from = "trigger.args"

[[nodes]]
id = "sum_refused"
type = "fail"
reason = "the tool reported an error"

[[nodes]]
id = "doc"
type = "read_mcp_resource"
resource_from = "trigger.uri"

[[nodes]]
id = "slow"
type = "call_mcp_tool"
tool = "trigger-long-running-operation"
args_from = "trigger.args"

[[edges]]
from = "sum"
when = "error"
to = "sum_refused"
"#
    )
}

/// Build `text` once per `key` (a static binary, as shipped).
fn binary(key: &'static str, text: impl FnOnce() -> String) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, p)) = built.iter().find(|(k, _)| *k == key) {
        return p.clone();
    }
    let dir = scratch(&format!("bin-{key}")).keep();
    let wf = dir.join("wf.toml");
    std::fs::write(&wf, text()).expect("write workflow");
    let out = dir.join(key);
    agentd_build(&dir, wf.to_str().expect("utf-8 path"), &out, &[]);
    built.push((key, out.clone()));
    out
}

fn http_binary() -> PathBuf {
    binary("http", || {
        workflow(
            "url = \"http://127.0.0.1:9/mcp\"\n\
             headers = { X-Agentd-Test = \"Bearer {{secret:mcp_token}}\" }",
        )
    })
}

fn stdio_binary() -> PathBuf {
    let everything = everything_bin();
    binary("stdio", move || {
        // Node reads across the file system (its own install, ICU data, /proc),
        // which the kernel sandbox would refuse to a child: off for this one.
        format!(
            "{}\n[sandbox]\nmode = \"off\"\n",
            workflow(&format!(
                "command = [\"node\", \"{}\", \"stdio\"]",
                everything.display()
            ))
        )
    })
}

/// Run `exe` with `--start start --input input` plus `extra`; the output, how
/// long it took and the peak resident memory seen (`VmHWM`, kB).
fn run(exe: &Path, start: &str, input: &Value, extra: &[&str]) -> (Output, Duration, u64) {
    let began = Instant::now();
    let mut child = Command::new(exe)
        .env("AGENTD_E2E_MCP_TOKEN", TOKEN)
        .args(["--start", start, "--input", &input.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let _ = out.read_to_end(&mut o);
        o
    });
    let err_reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        let _ = err.read_to_end(&mut e);
        e
    });
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the binary hangs (start {start})"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    };
    (output, began.elapsed(), peak_kb)
}

fn outcome(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("outcome JSON")
}

/// `server-everything` over Streamable HTTP on a free port, stopped on drop.
struct Everything {
    child: Child,
    port: u16,
}

impl Everything {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("node")
            .arg(everything_bin())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs server-everything");
        // Built before `Self`: a server that never listens must still be killed.
        let this = Self { child, port };
        assert!(
            wait_listening(port, Duration::from_secs(30)),
            "server-everything did not listen"
        );
        this
    }

    fn url_flag(&self) -> String {
        format!("everything=http://127.0.0.1:{}/mcp", self.port)
    }
}

impl Drop for Everything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scenarios every transport must pass against server-everything.
fn everything_scenarios(exe: &Path, extra: &[&str]) {
    let echo = outcome(
        &run(
            exe,
            "call",
            &json!({"args": {"message": "hi there"}}),
            extra,
        )
        .0,
    );
    assert_eq!(
        echo["final_value"]["content"][0]["text"],
        json!("Echo: hi there")
    );
    assert_eq!(echo["final_value"]["is_error"], json!(false));

    let sum = outcome(&run(exe, "sum", &json!({"args": {"a": 2, "b": 40}}), extra).0);
    let text = sum["final_value"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains("42"), "{sum}");

    let uri = "demo://resource/static/document/features.md";
    let doc = outcome(&run(exe, "doc", &json!({"uri": uri}), extra).0);
    assert_eq!(doc["final_value"]["contents"][0]["uri"], json!(uri));
    assert!(
        doc["final_value"]["contents"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{doc}"
    );

    // Arguments the tool's schema refuses: an error the server reports.
    let (bad, _, _) = run(exe, "sum", &json!({"args": {"a": "two"}}), extra);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        (bad.status.code() == Some(5) && stdout.contains("the tool reported an error"))
            || stderr.contains("answered `tools/call` with error"),
        "a refused call is reported: {stdout} {stderr}"
    );

    // 20 s of work against `timeout_secs = 4`: the call fails in time.
    let (slow, took, _) = run(
        exe,
        "slow",
        &json!({"args": {"duration": 20, "steps": 4}}),
        extra,
    );
    let stderr = String::from_utf8_lossy(&slow.stderr);
    assert_ne!(slow.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("did not answer `tools/call`"),
        "the timeout is named: {stderr}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn server_everything_answers_echo_sum_resource_errors_and_timeouts_over_streamable_http() {
    let exe = http_binary();
    let server = Everything::start();
    let flag = server.url_flag();
    everything_scenarios(&exe, &["--mcp-url", &flag]);
    // The same override from the environment.
    let run_env = Command::new(&exe)
        .env("AGENTD_E2E_MCP_TOKEN", TOKEN)
        .env(
            "AGENTD_MCP_URL_EVERYTHING",
            format!("http://127.0.0.1:{}/mcp", server.port),
        )
        .args([
            "--start",
            "call",
            "--input",
            r#"{"args": {"message": "env"}}"#,
        ])
        .output()
        .expect("runs");
    assert_eq!(
        outcome(&run_env)["final_value"]["content"][0]["text"],
        json!("Echo: env")
    );
}

#[test]
fn server_everything_answers_echo_sum_resource_errors_and_timeouts_over_stdio() {
    let _ = deps();
    everything_scenarios(&stdio_binary(), &[]);
}

#[test]
fn an_mcp_url_outside_the_policy_refuses_to_start_and_a_literal_one_refuses_to_build() {
    let exe = http_binary();
    let (out, _, _) = run(
        &exe,
        "call",
        &json!({"args": {"message": "x"}}),
        &["--mcp-url", "everything=https://elsewhere.example/mcp"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("MCP server `everything` at `https://elsewhere.example/mcp` is not allowed by [policy.http]"),
        "{stderr}"
    );
    let (unknown, _, _) = run(
        &exe,
        "call",
        &json!({}),
        &["--mcp-url", "nope=http://127.0.0.1:1/"],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--mcp-url `nope`"));

    let dir = scratch("denied");
    let wf = dir.join("wf.toml");
    std::fs::write(
        &wf,
        workflow("url = \"https://mcp.example.com/mcp\"").replace(
            "urls = [\"http://127.0.0.1*\"]",
            "urls = [\"https://api.example.com/*\"]",
        ),
    )
    .expect("write");
    let built = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args(["--color=never", "check"])
        .arg(&wf)
        .output()
        .expect("agentd runs");
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(!built.status.success(), "{stderr}");
    assert!(stderr.contains("mcp_url_not_allowed"), "{stderr}");
}

// ---------------------------------------------------------------------------
// A Streamable HTTP server of our own, to pin the wire format and misbehave.

/// One request the wire server saw: `(method, headers lower-cased, body)`.
type Exchange = (String, Vec<(String, String)>, String);
type Seen = Arc<Mutex<Vec<Exchange>>>;

struct Wire {
    port: u16,
    seen: Seen,
}

/// One request: `(method, path, headers, body)`.
type Request = (String, String, Vec<(String, String)>, String);

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).ok()?;
    Some((
        method,
        path,
        headers,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn respond(s: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body);
}

fn sse_head(s: &mut TcpStream) {
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nMcp-Session-Id: s-1\r\nConnection: close\r\n\r\n"
    );
}

impl Wire {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        // The id of the call whose stream `/resume` cut, answered on the GET.
        let pending = Arc::new(Mutex::new(Value::Null));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                let pending = Arc::clone(&pending);
                std::thread::spawn(move || {
                    let Ok(mut write) = stream.try_clone() else {
                        return;
                    };
                    let mut read = BufReader::new(stream);
                    let Some((method, path, headers, body)) = read_request(&mut read) else {
                        return;
                    };
                    if let Ok(mut s) = sink.lock() {
                        s.push((method.clone(), headers.clone(), body.clone()));
                    }
                    Wire::answer(&mut write, (&method, &path), &headers, &body, &pending);
                });
            }
        });
        Self { port, seen }
    }

    /// Answer one request; what `tools/call` does depends on the URL path
    /// (`/echo`, `/resume`, `/garbage`, `/endless`, `/huge`, `/cut`, `/hang`).
    fn answer(
        s: &mut TcpStream,
        (method, path): (&str, &str),
        headers: &[(String, String)],
        body: &str,
        pending: &Mutex<Value>,
    ) {
        let header = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        if method == "DELETE" {
            return respond(s, "200 OK", "", b"");
        }
        if method == "GET" {
            // The resumption of the `resume` tool's stream.
            if header("last-event-id") == Some("ev-1") {
                sse_head(s);
                let _ = write!(
                    s,
                    "id: ev-2\ndata: {}\n\n",
                    json!({"jsonrpc": "2.0", "id": *pending.lock().expect("lock"),
                           "result": {"content": [{"type": "text", "text": "resumed"}]}})
                );
                return;
            }
            let seen = format!("last-event-id {:?}", header("last-event-id"));
            return respond(s, "405 Method Not Allowed", "", seen.as_bytes());
        }
        let msg: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let id = msg["id"].clone();
        let ok = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
        match msg["method"].as_str().unwrap_or("") {
            "initialize" => respond(
                s,
                "200 OK",
                "Content-Type: application/json\r\nMcp-Session-Id: s-1\r\n",
                ok(
                    json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                          "serverInfo": {"name": "wire", "version": "0"}}),
                )
                .as_bytes(),
            ),
            "tools/call" => {
                match path.trim_start_matches('/') {
                    "echo" => {
                        // A progress notification and a server request first.
                        sse_head(s);
                        let _ = write!(
                            s,
                            ": keep-alive\n\ndata: {}\n\ndata: {}\n\nid: e9\ndata: {}\n\n",
                            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}}),
                            json!({"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {}}),
                            ok(
                                json!({"content": [{"type": "text", "text": "wire echo"}], "structuredContent": {"n": 1}})
                            ),
                        );
                    }
                    "resume" => {
                        // A priming event with an id and a retry, then the stream ends.
                        *pending.lock().expect("lock") = id.clone();
                        sse_head(s);
                        let _ = write!(s, "id: ev-1\nretry: 300\ndata:\n\n");
                    }
                    "garbage" => {
                        sse_head(s);
                        let _ = write!(s, "data: this is not json\n\n");
                    }
                    "endless" => {
                        sse_head(s);
                        let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
                        while write!(s, "data: {note}\n\n").is_ok() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    "huge" => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n"
                        );
                        let chunk = vec![b' '; 1 << 20];
                        for _ in 0..100 {
                            if s.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                    }
                    "cut" => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{{\"jsonrpc\": \"2.0\", \"id\": "
                        );
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                    // `hang`: never answer.
                    _ => std::thread::sleep(Duration::from_secs(30)),
                }
            }
            // Notifications and our replies to server requests.
            _ => respond(s, "202 Accepted", "", b""),
        }
    }

    /// `--mcp-url` for the behaviour `mode` (a path of [`Wire::answer`]).
    fn flag(&self, mode: &str) -> String {
        format!("everything=http://127.0.0.1:{}/{mode}", self.port)
    }

    fn seen(&self) -> Vec<Exchange> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_client_speaks_streamable_http_sessions_headers_resumption_and_delete() {
    let exe = http_binary();
    let wire = Wire::start();
    let flag = wire.flag("echo");
    let echo = outcome(
        &run(
            &exe,
            "call",
            &json!({"args": {"q": 1}}),
            &["--mcp-url", &flag],
        )
        .0,
    );
    assert_eq!(
        echo["final_value"]["content"][0]["text"],
        json!("wire echo")
    );
    assert_eq!(echo["final_value"]["structured"], json!({"n": 1}));
    let seen = wire.seen();
    let methods: Vec<String> = seen
        .iter()
        .map(|(m, _, b)| {
            let body: Value = serde_json::from_str(b).unwrap_or(Value::Null);
            format!(
                "{m} {}",
                body["method"]
                    .as_str()
                    .or(body["error"]["message"].as_str())
                    .unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            "POST initialize",
            "POST notifications/initialized",
            "POST tools/call",
            "POST method `sampling/createMessage` is not supported by agentd",
            "DELETE ",
        ],
        "{seen:?}"
    );
    let (_, init_headers, init_body) = &seen[0];
    assert_eq!(
        serde_json::from_str::<Value>(init_body).expect("json")["params"]["protocolVersion"],
        json!("2025-11-25")
    );
    assert_eq!(header(init_headers, "mcp-session-id"), None);
    assert_eq!(
        header(init_headers, "accept"),
        Some("application/json, text/event-stream")
    );
    for (_, h, _) in &seen[1..] {
        assert_eq!(header(h, "mcp-session-id"), Some("s-1"));
        assert_eq!(header(h, "mcp-protocol-version"), Some("2025-06-18"));
    }
    for (_, h, _) in &seen {
        assert_eq!(
            header(h, "x-agentd-test"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let reply: Value = serde_json::from_str(&seen[3].2).expect("json");
    assert_eq!(reply["id"], json!("srv-1"));
    assert_eq!(reply["error"]["code"], json!(-32601));
    assert!(!echo.to_string().contains(TOKEN));
}

#[test]
fn a_reply_stream_that_ends_early_is_resumed_after_its_retry_delay() {
    let exe = http_binary();
    let wire = Wire::start();
    let flag = wire.flag("resume");
    let (out, took, _) = run(&exe, "call", &json!({}), &["--mcp-url", &flag]);
    let value = outcome(&out);
    assert_eq!(value["final_value"]["content"][0]["text"], json!("resumed"));
    assert!(
        took >= Duration::from_millis(300),
        "the retry delay was honoured: {took:?}"
    );
    let seen = wire.seen();
    let get = seen
        .iter()
        .find(|(m, _, _)| m == "GET")
        .unwrap_or_else(|| panic!("a GET resumed the stream: {seen:?}"));
    assert_eq!(header(&get.1, "last-event-id"), Some("ev-1"));
    assert_eq!(header(&get.1, "accept"), Some("text/event-stream"));
}

#[test]
fn hostile_servers_fail_the_call_clearly_in_bounded_time_and_memory() {
    let cases = [
        ("garbage", "sent an event that is not JSON"),
        ("endless", "did not answer `tools/call` in time"),
        ("hang", "did not answer `tools/call` in time"),
        ("huge", "sent a reply larger than"),
        ("cut", "reading the reply failed"),
    ];
    for (tool, expected) in cases {
        let exe = http_binary();
        let wire = Wire::start();
        let flag = wire.flag(tool);
        let (out, took, peak_kb) = run(&exe, "call", &json!({"args": {}}), &["--mcp-url", &flag]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{tool}: {stderr}");
        assert!(stderr.contains(expected), "{tool}: {stderr}");
        assert!(took < Duration::from_secs(15), "{tool} took {took:?}");
        assert!(peak_kb < 80_000, "{tool}: peak RSS {peak_kb} kB");
        if matches!(tool, "hang" | "endless") {
            // The server is told the request was given up.
            let seen = wire.seen();
            assert!(
                seen.iter()
                    .any(|(_, _, b)| b.contains("notifications/cancelled")),
                "{tool}: {seen:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The official conformance suite, client side.

/// The client scenarios we run, each a start of the conformance workflow.
const SCENARIOS: [&str; 3] = ["initialize", "tools_call", "sse-retry"];

/// One workflow for every scenario: a start per scenario, each calling the
/// tool that scenario's server offers. The server's URL is the suite's, given
/// at start by the wrapper with `--mcp-url`.
fn conformance_binary() -> PathBuf {
    binary("conformance", || {
        r#"name = "mcp_conformance"

[policy.http]
urls = ["http://localhost*", "http://127.0.0.1*"]

[policy.mcp]
servers = ["suite"]

[[mcp_servers]]
name = "suite"
url = "http://localhost:9/mcp"
allow_tools = ["*"]
timeout_secs = 20

[[start_nodes]]
name = "initialize"
source = "manual"
entry_node = "initialize"

[[start_nodes]]
name = "tools_call"
source = "manual"
entry_node = "tools_call"

[[start_nodes]]
name = "sse-retry"
source = "manual"
entry_node = "sse_retry"

[[nodes]]
id = "initialize"
type = "call_mcp_tool"
tool = "noop"

[[nodes]]
id = "tools_call"
type = "call_mcp_tool"
tool = "add_numbers"
args_from = "trigger.args"

[[nodes]]
id = "sse_retry"
type = "call_mcp_tool"
tool = "test_reconnection"
"#
        .to_owned()
    })
}

#[test]
fn the_official_conformance_suite_passes_the_client_scenarios_initialize_tools_call_and_sse_retry()
{
    let deps = deps();
    let exe = conformance_binary();
    let dir = scratch("suite");
    // The wrapper the suite runs: it appends the server URL; the scenario is in
    // MCP_CONFORMANCE_SCENARIO.
    let wrapper = dir.join("client.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec '{}' --mcp-url \"suite=$1\" --start \"$MCP_CONFORMANCE_SCENARIO\" \
             --input '{{\"args\": {{\"a\": 2, \"b\": 3}}}}'\n",
            exe.display()
        ),
    )
    .expect("write the wrapper");
    let mut failed = Vec::new();
    for scenario in SCENARIOS {
        let out = Command::new("node")
            .arg(deps.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
            .args(["client", "--command"])
            .arg(format!("sh {}", wrapper.display()))
            .args(["--scenario", scenario])
            .current_dir(&dir)
            .output()
            .expect("the conformance suite runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The suite's verdict: every check SUCCESS or INFO (a WARNING, e.g. a
        // reconnection slightly late on a loaded machine, is not a failure).
        let passed =
            out.status.success() && text.contains("OVERALL: PASSED") && !text.contains("FAILURE");
        if !passed {
            failed.push(format!("{scenario}:\n{text}"));
        }
    }
    assert!(
        failed.is_empty(),
        "conformance failures:\n{}",
        failed.join("\n")
    );
}

// ---------------------------------------------------------------------------
// server-filesystem over stdio, through call_mcp_tool and an agent_loop.

fn read_frame(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0_u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len) as usize;
    assert!(len <= 16 * 1024 * 1024, "frame within the cap");
    let mut buf = vec![0_u8; len];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn write_frame(s: &mut impl Write, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("small frame");
    s.write_all(&len.to_le_bytes()).expect("write length");
    s.write_all(body).expect("write body");
}

#[test]
fn server_filesystem_confined_to_a_scratch_dir_serves_call_mcp_tool_and_an_agent_loop() {
    use std::os::unix::net::UnixListener;

    let deps = deps();
    let dir = scratch("filesystem");
    let allowed = dir.join("allowed");
    std::fs::create_dir_all(&allowed).expect("allowed dir");
    std::fs::write(allowed.join("notes.txt"), "disk at 91%\n").expect("notes");
    std::fs::write(dir.join("secret.txt"), "outside\n").expect("secret");
    let server = deps.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    let wf = dir.join("wf.toml");
    std::fs::write(
        &wf,
        format!(
            r#"name = "mcp_filesystem"

[[mcp_servers]]
name = "fs"
command = ["node", "{server}", "{allowed}"]
allow_tools = ["read_text_file", "write_file"]

[[start_nodes]]
name = "read"
source = "manual"
entry_node = "read"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "agent"

[[nodes]]
id = "read"
type = "call_mcp_tool"
tool = "read_text_file"
args_from = "trigger.read"

[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
instructions_from = "trigger.task"
tools = ["call_mcp_tool"]
max_steps = 5

[sandbox]
# Node reads across the file system (its install, ICU data, /proc).
mode = "off"
"#,
            server = server.display(),
            allowed = allowed.display(),
        ),
    )
    .expect("write workflow");
    let exe = dir.join("fs-bin");
    agentd_build(&dir, wf.to_str().expect("utf-8"), &exe, &[]);

    let sock = dir.join("intel.sock");
    let listener = UnixListener::bind(&sock).expect("bind the socket");
    let outside = dir.join("secret.txt").display().to_string();
    let written = allowed.join("out.txt").display().to_string();
    let model = std::thread::spawn(move || {
        let answers = [
            json!({"action": "tool", "tool": "call_mcp_tool",
                   "args": {"tool": "read_text_file", "args": {"path": outside}}}),
            json!({"action": "tool", "tool": "call_mcp_tool",
                   "args": {"tool": "write_file", "args": {"path": written, "content": "checked"}}}),
            json!({"action": "final", "result": {"disk": "91%"}}),
        ];
        let mut seen = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().expect("accept");
            let req: Value = serde_json::from_slice(&read_frame(&mut s).expect("a request frame"))
                .expect("JSON request");
            let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": {
                "content": answer.to_string(), "usage": {"prompt_tokens": 5, "completion_tokens": 5}}});
            write_frame(&mut s, reply.to_string().as_bytes());
            seen.push(req);
        }
        seen
    });
    // call_mcp_tool: a file inside the allowed directory.
    let input = json!({"read": {"path": allowed.join("notes.txt").display().to_string()}});
    let read = outcome(
        &Command::new(&exe)
            .args(["--start", "read", "--input", &input.to_string()])
            .output()
            .expect("the binary runs"),
    );
    assert_eq!(
        read["final_value"]["content"][0]["text"],
        json!("disk at 91%\n"),
        "{read}"
    );
    // agent_loop: the model's calls go through the same server.
    let input = json!({"task": "check the disk"});
    let run = Command::new(&exe)
        .args(["--start", "main"])
        .arg("--intel-unix")
        .arg(&sock)
        .args(["--input", &input.to_string()])
        .output()
        .expect("the binary runs");
    let value = outcome(&run);
    assert_eq!(
        value["final_value"]["result"],
        json!({"disk": "91%"}),
        "{value}"
    );
    let seen = model.join().expect("the model double");
    let observation = |call: usize| -> Value {
        let msgs = seen[call]["params"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let last = msgs
            .last()
            .and_then(|m| m["content"].as_str())
            .unwrap_or("null");
        serde_json::from_str(last).expect("observation JSON")
    };
    // Outside the allowed directory the server refuses (a tool error, not a crash).
    let refused = observation(1);
    assert_eq!(refused["tool_result"]["is_error"], json!(true), "{refused}");
    assert!(
        refused.to_string().contains("Access denied") || refused.to_string().contains("outside"),
        "{refused}"
    );
    assert!(
        !refused.to_string().contains("outside\\n"),
        "the file was not read"
    );
    assert_eq!(
        std::fs::read_to_string(allowed.join("out.txt")).expect("written by the server"),
        "checked"
    );
}

// ---------------------------------------------------------------------------
// The official Python SDK over Streamable HTTP, behind a rotating bearer token.

#[test]
fn a_python_sdk_server_behind_a_bearer_rotated_between_calls_via_a_secret_file() {
    let deps = deps();
    let dir = scratch("python");
    let token = dir.join("token");
    std::fs::write(&token, "first-token-7c2\n").expect("token file");
    let port = free_port();
    let mut server = Command::new("python3")
        .arg(workspace().join("tests/support/mcp_bearer_server.py"))
        .arg(&token)
        .arg(port.to_string())
        .env("PYTHONPATH", deps.join("py"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the SDK server");
    let began = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the Python SDK server did not listen (is `mcp` installed by tests/deps/mcp.sh?)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let wf = dir.join("wf.toml");
    std::fs::write(
        &wf,
        format!(
            r#"name = "mcp_python"

[policy.http]
urls = ["http://127.0.0.1:{port}/*"]

[policy.mcp]
servers = ["py"]

[[secrets]]
name = "py_token"
source = "file"
path = "{token}"

[[mcp_servers]]
name = "py"
url = "http://127.0.0.1:{port}/mcp"
headers = {{ Authorization = "Bearer {{{{secret:py_token}}}}" }}
allow_tools = ["whoami"]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "first"

[[nodes]]
id = "first"
type = "call_mcp_tool"
tool = "whoami"

[[nodes]]
id = "second"
type = "call_mcp_tool"
tool = "whoami"

[[edges]]
from = "first"
to = "second"
"#,
            token = token.display()
        ),
    )
    .expect("write workflow");
    let exe = dir.join("py-bin");
    agentd_build(&dir, wf.to_str().expect("utf-8"), &exe, &[]);
    let run = Command::new(&exe).output().expect("the binary runs");
    let _ = server.kill();
    let _ = server.wait();
    let value = outcome(&run);
    assert_eq!(
        value["final_value"]["content"][0]["text"],
        json!("python sdk call 2"),
        "{value}"
    );
    // The server rotated the token after each call; the second call carried the new one.
    assert_eq!(
        std::fs::read_to_string(&token).expect("token"),
        "rotated-token-2\n"
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!all.contains("first-token-7c2") && !all.contains("rotated-token-1"));
}

/// A service whose `mcp.resource.updated` trigger subscribes to one of
/// server-everything's resources; `POST /toggle` calls the server's
/// `toggle-subscriber-updates` tool (on the same connection, so the same
/// session), after which the server announces an update of every subscribed
/// URI at once and every five seconds. The trigger's start node writes its
/// `trigger` to `out/on_updated-<tick>.json`.
fn trigger_workflow(server: &str, out: &Path) -> String {
    format!(
        r#"name = "mcp_everything_trigger"

[policy.http]
urls = ["http://127.0.0.1*"]

[policy.fs]
write = ["{out}/**"]

[policy.mcp]
servers = ["everything"]

[[mcp_servers]]
name = "everything"
{server}
allow_tools = ["toggle-subscriber-updates"]
allow_resources = ["demo://*"]

[[http_routes]]
method = "POST"
path = "/toggle"
start_node = "toggle"

[[start_nodes]]
name = "toggle"
source = "http"
entry_node = "toggle"

[[nodes]]
id = "toggle"
type = "call_mcp_tool"
tool = "toggle-subscriber-updates"

[[triggers]]
type = "mcp.resource.updated"
server = "everything"
resource = "demo://resource/dynamic/text/1"
start_node = "on_updated"

[[start_nodes]]
name = "on_updated"
source = "event"
entry_node = "on_updated_path"

[[nodes]]
id = "on_updated_path"
type = "template_render"
template = "{out}/on_updated-{{{{tick}}}}.json"
input_from = "trigger"

[[nodes]]
id = "on_updated_save"
type = "write_file"
path_from = "on_updated_path.rendered"
content_from = "trigger"

[[edges]]
from = "on_updated_path"
to = "on_updated_save"

[sandbox]
mode = "off"
"#,
        out = out.display()
    )
}

fn trigger_out(key: &str) -> PathBuf {
    scratch_path(&format!("trigger-out-{key}"))
}

/// Serve `exe` (plus `extra`), toggle the updates, and return the first
/// run's `trigger`.
fn first_update(exe: &Path, key: &str, extra: &[&str]) -> Value {
    let out = Scratch::at(trigger_out(key));
    let served = Served::listening(
        Command::new(exe)
            .args(["--bind", "127.0.0.1:0"])
            .args(extra),
    );
    let stderr = || served.stderr();
    let addr = served.addr;
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.write_all(
        b"POST /toggle HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    let file = out.join("on_updated-1.json");
    let began = Instant::now();
    while !file.exists() && began.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The write may be under way: give it a moment to finish.
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(&file);
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "toggle: {reply}\nstderr:\n{}",
        stderr()
    );
    let text = text.unwrap_or_else(|e| {
        panic!(
            "the trigger never fired ({e}); toggle: {reply}\nstderr:\n{}",
            stderr()
        )
    });
    serde_json::from_str(&text).expect("the trigger as JSON")
}

fn assert_update(trigger: &Value) {
    assert_eq!(trigger["kind"], "mcp.resource.updated", "{trigger}");
    assert_eq!(trigger["server"], "everything", "{trigger}");
    assert_eq!(
        trigger["uri"], "demo://resource/dynamic/text/1",
        "{trigger}"
    );
    assert_eq!(trigger["tick"], 1, "{trigger}");
}

#[test]
fn a_server_everything_subscription_fires_the_trigger_start_node_over_stdio() {
    let everything = everything_bin();
    let out = trigger_out("stdio");
    let exe = binary("trigger-stdio", move || {
        trigger_workflow(
            &format!(
                "command = [\"node\", \"{}\", \"stdio\"]",
                everything.display()
            ),
            &out,
        )
    });
    assert_update(&first_update(&exe, "stdio", &[]));
}

#[test]
fn a_server_everything_subscription_fires_the_trigger_start_node_over_streamable_http() {
    let out = trigger_out("http");
    let exe = binary("trigger-http", move || {
        trigger_workflow("url = \"http://127.0.0.1:9/mcp\"", &out)
    });
    let server = Everything::start();
    let flag = server.url_flag();
    assert_update(&first_update(&exe, "http", &["--mcp-url", &flag]));
}
