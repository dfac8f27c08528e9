//! End to end: a remote MCP server behind OAuth (`[mcp_servers.oauth]`, client
//! credentials) in binaries built by the real `agentd`.
//!
//! 1. The official conformance suite's `auth/client-credentials-basic` scenario
//!    (tests/deps/mcp.sh installs `@modelcontextprotocol/conformance@0.1.12`): its
//!    MCP server answers 401, its authorization server checks the grant and the
//!    HTTP Basic client authentication. A wrapper passes the scenario's client id
//!    and secret (`MCP_CONFORMANCE_CONTEXT`) to the binary as environment
//!    variables, which the workflow names as its secrets.
//! 2. Our own resource and authorization server on 127.0.0.1 (Streamable HTTP with
//!    JSON replies, RFC 9728 and RFC 8414 metadata, an RFC 6749 token endpoint),
//!    to pin what the suite does not check: `client_secret_post`, the configured
//!    `scope`, the RFC 8707 `resource`, one token reused across calls, and a new
//!    one fetched when the server refuses the old one with a 401.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

mod support;

use support::{Scratch, agentd_build, scratch, workspace};

fn deps() -> PathBuf {
    let dir = workspace().join("target/test-deps/mcp");
    let suite = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(
        suite.exists(),
        "the MCP conformance suite is not installed: run tests/deps/mcp.sh (expected {})",
        suite.display()
    );
    dir
}

/// A workflow with one OAuth `url` server (`oauth` is the body of its
/// `[mcp_servers.oauth]`) and two calls of `tool` in a row.
fn workflow(oauth: &str, tool: &str) -> String {
    format!(
        r#"name = "mcp_oauth"

[policy.http]
urls = ["http://localhost*", "http://127.0.0.1*"]

[policy.mcp]
servers = ["remote"]

[[mcp_servers]]
name = "remote"
url = "http://localhost:9/mcp"
allow_tools = ["*"]
timeout_secs = 20

[mcp_servers.oauth]
{oauth}

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "first"

[[nodes]]
id = "first"
type = "call_mcp_tool"
tool = "{tool}"

[[nodes]]
id = "second"
type = "call_mcp_tool"
tool = "{tool}"

[[edges]]
from = "first"
to = "second"
"#
    )
}

/// `text` built in a scratch directory `key`: the directory and the binary.
fn build_workflow(key: &str, text: &str) -> (Scratch, PathBuf) {
    let dir = scratch(key);
    std::fs::write(dir.join("wf.toml"), text).expect("write the workflow");
    let out = dir.join(key);
    agentd_build(&dir, "wf.toml", &out, &[]);
    (dir, out)
}

#[test]
fn the_conformance_suite_passes_auth_client_credentials_basic() {
    let deps = deps();
    let (_bin, exe) = build_workflow(
        "suite",
        &workflow(
            "grant = \"client_credentials\"\nclient_id = \"MCP_CLIENT_ID\"\n\
             client_secret = \"MCP_CLIENT_SECRET\"\ntoken_auth = \"client_secret_basic\"",
            // The scenario's server offers this one tool.
            "test-tool",
        ),
    );
    let dir = scratch("suite-run");
    let wrapper = dir.join("client.sh");
    // The scenario's client id and secret arrive as JSON in MCP_CONFORMANCE_CONTEXT.
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nctx() {{ node -e \"process.stdout.write(JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT).$1)\"; }}\n\
             MCP_CLIENT_ID=\"$(ctx client_id)\" MCP_CLIENT_SECRET=\"$(ctx client_secret)\" \
             exec '{}' --mcp-url \"remote=$1\"\n",
            exe.display()
        ),
    )
    .expect("write the wrapper");
    let out = Command::new("node")
        .arg(deps.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["client", "--command"])
        .arg(format!("sh {}", wrapper.display()))
        .args(["--scenario", "auth/client-credentials-basic"])
        .current_dir(&dir)
        .output()
        .expect("the conformance suite runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("OVERALL: PASSED") && !text.contains("FAILURE"),
        "auth/client-credentials-basic:\n{text}"
    );
    assert!(text.contains("client-credentials-basic-auth"), "{text}");
}

// ---------------------------------------------------------------------------
// Our own resource + authorization server.

#[derive(Default)]
struct Seen {
    /// Token request bodies.
    token_bodies: Vec<String>,
    /// `Authorization` of each MCP request (`None`: none sent).
    bearers: Vec<Option<String>>,
    issued: u32,
}

struct Server {
    base: String,
    seen: Mutex<Seen>,
}

fn start_server() -> Arc<Server> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = Arc::new(Server {
        base: format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        ),
        seen: Mutex::new(Seen::default()),
    });
    let s = Arc::clone(&server);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.connection(stream));
        }
    });
    server
}

impl Server {
    fn connection(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let mut r = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = line.split(' ');
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let (mut len, mut auth) = (0, None);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = Some(h["authorization:".len()..].trim().to_owned());
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let (status, headers, reply) = self.answer(&method, &path, auth, &body);
            let s = r.get_mut();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\n\r\n{reply}",
                reply.len()
            );
            let _ = s.flush();
        }
    }

    fn answer(
        &self,
        method: &str,
        path: &str,
        auth: Option<String>,
        body: &[u8],
    ) -> (&'static str, String, String) {
        let json_ct = "content-type: application/json\r\n".to_owned();
        let base = &self.base;
        match (method, path) {
            ("GET", "/.well-known/oauth-protected-resource/mcp") => (
                "200 OK",
                json_ct,
                json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/as")]})
                    .to_string(),
            ),
            ("GET", "/.well-known/oauth-authorization-server/as") => (
                "200 OK",
                json_ct,
                json!({"issuer": format!("{base}/as"), "token_endpoint": format!("{base}/as/token")})
                    .to_string(),
            ),
            ("POST", "/as/token") => {
                let mut seen = self.seen.lock().expect("seen");
                seen.token_bodies
                    .push(String::from_utf8_lossy(body).into_owned());
                seen.issued += 1;
                (
                    "200 OK",
                    json_ct,
                    json!({"access_token": format!("at-{}", seen.issued), "token_type": "Bearer", "expires_in": 3600})
                        .to_string(),
                )
            }
            ("POST", "/mcp") => self.mcp(auth, body),
            ("DELETE", "/mcp") => ("200 OK", String::new(), String::new()),
            _ => ("404 Not Found", String::new(), String::new()),
        }
    }

    /// The MCP endpoint: a bearer is required; `at-1` is good for one
    /// `tools/call`, then refused (so a fresh token must be fetched).
    fn mcp(&self, auth: Option<String>, body: &[u8]) -> (&'static str, String, String) {
        let msg: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let method = msg["method"].as_str().unwrap_or_default().to_owned();
        let mut seen = self.seen.lock().expect("seen");
        seen.bearers.push(auth.clone());
        let calls_with_first = seen
            .bearers
            .iter()
            .filter(|b| b.as_deref() == Some("Bearer at-1"))
            .count();
        drop(seen);
        let challenge = format!(
            "www-authenticate: Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"\r\n",
            self.base
        );
        let valid = match auth.as_deref() {
            Some("Bearer at-1") => method != "tools/call" || calls_with_first <= 2,
            Some(b) => b.starts_with("Bearer at-"),
            None => false,
        };
        if !valid {
            return ("401 Unauthorized", challenge, String::new());
        }
        let id = msg.get("id").cloned();
        let result = match method.as_str() {
            "initialize" => json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "oauth-double", "version": "1"}
            }),
            "tools/call" => json!({"content": [{"type": "text", "text": "ok"}]}),
            _ => json!({}),
        };
        match id {
            None => ("202 Accepted", String::new(), String::new()),
            Some(id) => (
                "200 OK",
                "content-type: application/json\r\nmcp-session-id: s1\r\n".to_owned(),
                json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
            ),
        }
    }
}

fn run(exe: &Path, server: &Server) -> Output {
    Command::new(exe)
        .args(["--mcp-url", &format!("remote={}/mcp", server.base)])
        .env("OAUTH_E2E_CLIENT_ID", "agent-7")
        .env("OAUTH_E2E_CLIENT_SECRET", "cs-canary-91f3")
        .env("AGENTD_LOG_LEVEL", "debug")
        .output()
        .expect("the binary runs")
}

#[test]
fn an_oauth_mcp_server_gets_one_token_per_401_with_the_configured_scope_and_post_auth() {
    let (_bin, exe) = build_workflow(
        "own",
        &workflow(
            "grant = \"client_credentials\"\nclient_id = \"OAUTH_E2E_CLIENT_ID\"\n\
             client_secret = \"OAUTH_E2E_CLIENT_SECRET\"\ntoken_auth = \"client_secret_post\"\n\
             scope = \"tools:call tools:list\"",
            "echo",
        ),
    );
    let server = start_server();
    let out = run(&exe, &server);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let seen = server.seen.lock().expect("seen");
    // The first request goes without a token and is refused; then at-1 serves
    // until the server refuses it at the second call, and at-2 is fetched.
    assert_eq!(seen.bearers.first(), Some(&None), "{:?}", seen.bearers);
    assert_eq!(seen.issued, 2, "bearers: {:?}", seen.bearers);
    assert_eq!(
        seen.bearers.last().cloned().flatten().as_deref(),
        Some("Bearer at-2")
    );
    let resource: String = url_encode(&format!("{}/mcp", server.base));
    assert_eq!(
        seen.token_bodies[0],
        format!(
            "grant_type=client_credentials&client_id=agent-7&client_secret=cs-canary-91f3\
             &scope=tools%3Acall+tools%3Alist&resource={resource}"
        )
    );
    for text in [String::from_utf8_lossy(&out.stdout).into_owned(), stderr] {
        assert!(
            !text.contains("cs-canary-91f3") && !text.contains("at-1"),
            "leaked: {text}"
        );
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
