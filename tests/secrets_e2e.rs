//! End to end: `[[secrets]]` sources `command` and `oauth2` in a binary built by
//! the real `agentd`, against a real OAuth 2.0 token endpoint and a resource
//! server on 127.0.0.1 (both in this file, speaking RFC 6749 JSON over HTTP/1.1)
//! and a real program (`/usr/bin/printenv`) as the `command` source.
//!
//! One workflow, built once: `client_secret` comes from the command, `api_token`
//! is a client credentials token (HTTP Basic auth, a scope list, an extra
//! parameter, `skew_secs = 10`) sent as a bearer by two `http_request` nodes in a
//! row. The token endpoint's behaviour (lifetime, refusal, garbage) is switched
//! per test, so the tests of this file take turns ([`turn`]).
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

mod support;

/// The client secret, printed by the `command` source's program.
const CLIENT_SECRET: &str = "client-secret-4c1e9a";
/// The client id, from the environment.
const CLIENT_ID: &str = "agentd-e2e";

/// What the token endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A bearer token living this many seconds.
    Token(u64),
    /// `401 {"error":"invalid_client",...}`.
    Refuse,
    /// A 200 whose body is not JSON.
    Garbage,
    /// A 200 JSON object without `access_token`.
    NoToken,
}

/// Requests seen: `(path, head + body)`.
#[derive(Default)]
struct Seen {
    token: Vec<String>,
    resource: Vec<String>,
    issued: u32,
}

struct Server {
    port: u16,
    mode: Mutex<Mode>,
    seen: Mutex<Seen>,
}

fn server() -> &'static Arc<Server> {
    static SERVER: OnceLock<Arc<Server>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = Arc::new(Server {
            port: listener.local_addr().expect("addr").port(),
            mode: Mutex::new(Mode::Token(3600)),
            seen: Mutex::new(Seen::default()),
        });
        let s = Arc::clone(&server);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = Arc::clone(&s);
                std::thread::spawn(move || s.answer(stream));
            }
        });
        server
    })
}

impl Server {
    fn answer(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut r = BufReader::new(stream);
        let mut head = String::new();
        let mut len = 0;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; len];
        let _ = r.read_exact(&mut body);
        head.push_str(&String::from_utf8_lossy(&body));
        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let (status, reply) = if path == "/oauth/token" {
            let mode = *self.mode.lock().expect("mode");
            let mut seen = self.seen.lock().expect("seen");
            seen.token.push(head);
            seen.issued += 1;
            match mode {
                Mode::Token(life) => (
                    "200 OK",
                    json!({
                        "access_token": format!("tok-{}", seen.issued),
                        "token_type": "Bearer",
                        "expires_in": life,
                    })
                    .to_string(),
                ),
                Mode::Refuse => (
                    "401 Unauthorized",
                    json!({"error": "invalid_client", "error_description": "unknown client"})
                        .to_string(),
                ),
                Mode::Garbage => ("200 OK", "<html>maintenance</html>".to_owned()),
                Mode::NoToken => ("200 OK", json!({"token_type": "Bearer"}).to_string()),
            }
        } else {
            self.seen.lock().expect("seen").resource.push(head);
            ("200 OK", json!({"ok": true}).to_string())
        };
        let mut stream = r.into_inner();
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        );
    }
}

/// The tests share the server's mode: one at a time.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The directory of the binary and its audit log, shared by every test here.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| support::scratch("bin").keep())
}

fn workflow(port: u16, audit: &Path) -> String {
    format!(
        r#"name = "secrets_e2e"

[logging.audit]
target = "file:{audit}"

[policy.http]
urls = ["http://127.0.0.1:{port}/**"]

[[secrets]]
name = "client_secret"
source = "command"
argv = ["/usr/bin/printenv", "E2E_CLIENT_SECRET"]

[[secrets]]
name = "api_token"
source = "oauth2"
token_url = "http://127.0.0.1:{port}/oauth/token"
client_id_env = "E2E_CLIENT_ID"
client_secret_env = "client_secret"
scopes = ["reports:read", "reports:write"]
extra_params = {{ audience = "https://api.example" }}
auth_style = "basic"
skew_secs = 10

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "first"

[[nodes]]
id = "first"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = {{ Authorization = "Bearer {{{{secret:api_token}}}}" }}

[[nodes]]
id = "second"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = {{ Authorization = "Bearer {{{{secret:api_token}}}}" }}

[[edges]]
from = "first"
to = "second"
"#,
        audit = audit.display()
    )
}

fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = dir();
        std::fs::write(
            dir.join("secrets.toml"),
            workflow(server().port, &dir.join("audit.jsonl")),
        )
        .expect("write the workflow");
        let out = dir.join("secrets-e2e");
        support::agentd_build(dir, "secrets.toml", &out, &[]);
        out
    })
}

/// Run the binary once with the token endpoint in `mode`; the requests it made.
fn run(mode: Mode, client_secret: Option<&str>) -> (Output, Seen) {
    let binary = binary();
    let s = server();
    *s.mode.lock().expect("mode") = mode;
    *s.seen.lock().expect("seen") = Seen::default();
    let _ = std::fs::remove_file(dir().join("audit.jsonl"));
    let mut cmd = Command::new(binary);
    cmd.arg("--input")
        .arg(json!({ "url": format!("http://127.0.0.1:{}/reports", s.port) }).to_string())
        .env("E2E_CLIENT_ID", CLIENT_ID)
        .env_remove("E2E_CLIENT_SECRET")
        .env_remove("AGENTD_INPUT")
        .env("AGENTD_LOG_LEVEL", "debug");
    if let Some(secret) = client_secret {
        cmd.env("E2E_CLIENT_SECRET", secret);
    }
    let out = cmd.output().expect("the workflow binary runs");
    let seen = std::mem::take(&mut *s.seen.lock().expect("seen"));
    (out, seen)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn bearer(head: &str) -> Option<&str> {
    head.lines()
        .find_map(|l| l.strip_prefix("authorization: Bearer "))
        .or_else(|| {
            head.lines()
                .find_map(|l| l.strip_prefix("Authorization: Bearer "))
        })
}

/// No token and no client secret in stdout, stderr (debug logs included) or
/// the audit file.
fn assert_nothing_leaked(out: &Output) {
    let audit = std::fs::read_to_string(dir().join("audit.jsonl")).unwrap_or_default();
    for (what, text) in [
        ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
        ("stderr", stderr(out)),
        ("the audit file", audit),
    ] {
        assert!(
            !text.contains("tok-"),
            "a token leaked into {what}:\n{text}"
        );
        assert!(
            !text.contains(CLIENT_SECRET),
            "the client secret leaked into {what}:\n{text}"
        );
    }
}

#[test]
fn an_oauth2_token_is_fetched_once_and_reused_by_every_request() {
    let _turn = turn();
    let (out, seen) = run(Mode::Token(3600), Some(CLIENT_SECRET));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // One token request (the start-up probe); both nodes reuse its token.
    assert_eq!(seen.token.len(), 1, "{:?}", seen.token);
    let bearers: Vec<_> = seen.resource.iter().map(|h| bearer(h)).collect();
    assert_eq!(bearers, [Some("tok-1"), Some("tok-1")]);

    let request = &seen.token[0];
    assert!(request.starts_with("POST /oauth/token "), "{request}");
    // auth_style = "basic": id and secret (from the command) as HTTP Basic.
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert!(
        request.to_ascii_lowercase().contains(&format!(
            "authorization: basic {}",
            basic.to_ascii_lowercase()
        )),
        "{request}"
    );
    assert!(
        request.ends_with(
            "grant_type=client_credentials&scope=reports%3Aread+reports%3Awrite\
             &audience=https%3A%2F%2Fapi.example"
        ),
        "{request}"
    );

    let audit = std::fs::read_to_string(dir().join("audit.jsonl")).unwrap_or_default();
    let fetched: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["event"] == "secrets.oauth2_token_fetched")
        .collect();
    assert_eq!(fetched.len(), 1, "{audit}");
    assert_eq!(fetched[0]["fields"]["secret_name"], "api_token");
    assert_eq!(fetched[0]["fields"]["expires_in_secs"], 3600);
    assert_nothing_leaked(&out);
}

#[test]
fn a_token_inside_its_skew_is_fetched_again_at_every_use() {
    let _turn = turn();
    // 5 s of life minus `skew_secs = 10`: stale as soon as it arrives, so the
    // probe and each node fetch their own.
    let (out, seen) = run(Mode::Token(5), Some(CLIENT_SECRET));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(seen.token.len(), 3, "{:?}", seen.token);
    let bearers: Vec<_> = seen.resource.iter().map(|h| bearer(h)).collect();
    assert_eq!(bearers, [Some("tok-2"), Some("tok-3")]);
    assert_nothing_leaked(&out);
}

#[test]
fn a_command_secret_runs_a_real_program_whose_output_is_the_client_secret() {
    let _turn = turn();
    // printenv's trailing newline is trimmed: the Basic credential is exact
    // (checked in the test above); here, a failing program refuses the start.
    let (out, seen) = run(Mode::Token(3600), None);
    assert_eq!(out.status.code(), Some(5), "stderr: {}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().last(),
        Some(
            "agentd: [[secrets]]: secret `client_secret`: command `/usr/bin/printenv` exited with status 1"
        )
    );
    assert!(seen.token.is_empty() && seen.resource.is_empty());
    // And with the variable set, its value (trimmed) is what the endpoint sees.
    let (out, seen) = run(Mode::Token(3600), Some(&format!("{CLIENT_SECRET}  ")));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert!(
        seen.token[0].contains(&basic),
        "the trimmed client secret: {:?}",
        seen.token
    );
}

#[test]
fn token_endpoint_failures_refuse_the_start_with_a_clear_error() {
    let _turn = turn();
    let port = server().port;
    let url = format!("http://127.0.0.1:{port}/oauth/token");
    let cases = [
        (
            Mode::Refuse,
            "refused the request with HTTP 401: invalid_client: unknown client",
        ),
        (
            Mode::Garbage,
            "sent an unusable reply: not JSON: `<html>maintenance</html>`",
        ),
        (
            Mode::NoToken,
            "sent an unusable reply: no `access_token` string in the reply (keys: token_type)",
        ),
    ];
    for (mode, why) in cases {
        let (out, seen) = run(mode, Some(CLIENT_SECRET));
        assert_eq!(out.status.code(), Some(5), "{mode:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).lines().last().map(str::to_owned),
            Some(format!(
                "agentd: [[secrets]]: secret `api_token`: token endpoint `{url}` {why}"
            )),
            "{mode:?}"
        );
        assert_eq!(seen.token.len(), 1, "{mode:?}");
        assert!(
            seen.resource.is_empty(),
            "{mode:?}: no request without a token"
        );
        assert_nothing_leaked(&out);
    }
}
