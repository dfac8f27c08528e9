//! End to end: a built workflow binary drives `llm_infer` through `--intel-unix`
//! against a real Unix-socket server speaking the dialect's framed JSON-RPC.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;

use serde_json::{Value, json};

mod support;

use support::{scratch, tls};

fn read_frame(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0_u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len) as usize;
    assert!(len <= 16 * 1024 * 1024);
    let mut buf = vec![0_u8; len];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn write_frame(s: &mut impl Write, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("small frame");
    s.write_all(&len.to_le_bytes()).expect("write length");
    s.write_all(body).expect("write body");
}

const WORKFLOW: &str = r#"name = "llm_e2e"

[budget]
max_llm_tokens = 10000

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "classify"

[[nodes]]
id = "classify"
type = "llm_infer"
backend = "default"
prompt = "Route this ticket: {{text}}"
input_from = "trigger"
output_schema = "schemas/route.json"
output_repairs = 1

[[nodes]]
id = "route"
type = "switch"
expr = "classify.parsed.decision"

[[nodes]]
id = "urgent"
type = "terminate"

[[edges]]
from = "classify"
to = "route"

[[edges]]
from = "route"
when = "urgent"
to = "urgent"
"#;

#[test]
fn a_built_binary_routes_on_a_socket_backend_with_schema_repair() {
    let dir = scratch("socket-backend");
    std::fs::create_dir_all(dir.join("schemas")).expect("scratch dir");
    std::fs::write(dir.join("wf.toml"), WORKFLOW).expect("write workflow");
    std::fs::write(
        dir.join("schemas/route.json"),
        r#"{"type":"object","required":["decision"],"properties":{"decision":{"enum":["urgent","later"]}}}"#,
    )
    .expect("write schema");
    let exe = dir.join("llm-e2e-bin");
    support::agentd_build(&dir, "wf.toml", &exe, &[]);
    // The schema was baked: the binary runs from elsewhere without the file.
    std::fs::remove_dir_all(dir.join("schemas")).expect("remove schema");

    let sock = dir.join("intel.sock");
    let listener = UnixListener::bind(&sock).expect("bind the socket");
    let server = std::thread::spawn(move || {
        let answers = [r#"{"decision": "maybe"}"#, r#"{"decision": "urgent"}"#];
        let mut seen = Vec::new();
        for content in answers {
            let (mut s, _) = listener.accept().expect("accept");
            let req: Value = serde_json::from_slice(&read_frame(&mut s).expect("a request frame"))
                .expect("JSON request");
            let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": {
                "content": content, "usage": {"prompt_tokens": 20, "completion_tokens": 5}}});
            write_frame(&mut s, reply.to_string().as_bytes());
            seen.push(req);
        }
        seen
    });
    let run = Command::new(&exe)
        .arg("--intel-unix")
        .arg(&sock)
        .args(["--input", r#"{"text": "server down"}"#])
        .output()
        .expect("the binary runs");
    let seen = server.join().expect("server thread");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
    assert_eq!(
        outcome,
        json!({"status": "completed", "final_value": null, "last_node": "urgent"})
    );
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["method"], json!("complete"));
    assert_eq!(seen[0]["params"]["model"], json!("fast"));
    assert_eq!(seen[0]["params"]["max_tokens"], json!(1024));
    assert_eq!(
        seen[0]["params"]["messages"],
        json!([{"role": "user", "content": "Route this ticket: server down"}])
    );
    let repair = seen[1]["params"]["messages"][2]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        repair.starts_with("Your previous output was rejected: output does not match the JSON Schema `schemas/route.json`"),
        "{repair}"
    );

    // Without a backend the node is unavailable; with a bad URL the CLI refuses.
    let bare = Command::new(&exe).output().expect("the binary runs");
    assert_eq!(bare.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("no intelligence backend is configured")
    );
    let https = Command::new(&exe)
        .args(["--intel-http", "https://example.invalid/rpc"])
        .output()
        .expect("the binary runs");
    assert_eq!(https.status.code(), Some(2));
}

/// A named `openai-compatible` backend baked into a built binary, its API key
/// a `[[secrets]]` file: the key only reaches the server (as a bearer
/// token), a missing key file refuses to start before any call, and the
/// reply drives the run.
#[test]
fn a_built_binary_calls_a_named_chat_completions_backend_with_a_key_from_a_secret_file() {
    use std::net::TcpListener;

    const KEY: &str = "sk-canary-5a1e";
    let dir = scratch("remote-backend");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let key_file = dir.join("openai.key");
    let workflow = format!(
        r#"name = "remote_llm"

[policy]

[[secrets]]
name = "openai_key"
source = "file"
path = "{key}"

[[intelligence.backends]]
name = "local"
provider = "openai-compatible"
base_url = "http://127.0.0.1:{port}"
model = "tiny-model"
api_key_env = "openai_key"
max_tokens = 333

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "classify"

[[nodes]]
id = "classify"
type = "llm_infer"
backend = "local"
prompt = "Label this: {{{{text}}}}"
input_from = "trigger"
output_schema = "inline"
"#,
        key = key_file.display()
    );
    std::fs::write(dir.join("wf.toml"), workflow).expect("write workflow");
    let exe = dir.join("remote-llm-bin");
    support::agentd_build(&dir, "wf.toml", &exe, &[]);
    // An http:// backend never uses the CA bundle, so one that is named but
    // missing must not stop the binary (it used to refuse to start).
    let missing_ca = dir.join("no-such-ca.pem");
    let run = |input: &str| {
        without_proxy(Command::new(&exe).args(["--input", input]))
            .env_remove("AGENTD_HTTP_CA_FILE")
            .env("SSL_CERT_FILE", &missing_ca)
            .output()
            .expect("the binary runs")
    };

    // No key file yet: the start-up probe of [[secrets]] refuses to start
    // (exit 5), naming the secret; nothing is sent.
    let refused = run(r#"{"text": "x"}"#);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("openai_key"), "{stderr}");

    std::fs::write(&key_file, format!("{KEY}\n")).expect("write the key");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        answer_chat_completion(&mut s, "{\"label\": \"bug\"}")
    });
    let ok = run(r#"{"text": "it crashes"}"#);
    let (head, body) = server.join().expect("server thread");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert_eq!(ok.status.code(), Some(0), "{stdout}\n{stderr}");
    let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["final_value"]["parsed"], json!({"label": "bug"}));

    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {KEY}"))),
        "{head}"
    );
    let request: Value = serde_json::from_slice(&body).expect("a JSON request body");
    assert_eq!(request["model"], "tiny-model");
    assert_eq!(request["messages"][0]["content"], "Label this: it crashes");
    // The backend's own max_tokens, not llm_infer's default of 1024.
    assert_eq!(request["max_tokens"], 333);
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains(KEY), "the key reached {name}");
    }
}

/// The providers honour proxy variables; these tests talk to 127.0.0.1 directly.
fn without_proxy(cmd: &mut Command) -> &mut Command {
    for var in ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_ascii_lowercase());
    }
    cmd
}

/// Read one chat-completions request from `s` (head, then the body its
/// Content-Length announces), reply with `content` as the assistant message,
/// and return the head and the body.
fn answer_chat_completion(s: &mut (impl Read + Write), content: &str) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut chunk = [0_u8; 4096];
    let (head, body) = loop {
        let n = s.read(&mut chunk).expect("read the request");
        assert!(n > 0, "the client closed early");
        raw.extend_from_slice(&chunk[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("a Content-Length");
            while raw.len() < end + 4 + len {
                let n = s.read(&mut chunk).expect("read the body");
                assert!(n > 0, "the client closed mid-body");
                raw.extend_from_slice(&chunk[..n]);
            }
            break (head, raw[end + 4..end + 4 + len].to_vec());
        }
    };
    let reply = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "tiny-model",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
    s.write_all(response.as_bytes()).expect("write the reply");
    s.flush().expect("flush the reply");
    (head, body)
}

/// An `openai-compatible` backend behind TLS signed by a private CA: trusted
/// only through `AGENTD_HTTP_CA_FILE` (the roots `http_request` uses too).
/// Without it the handshake fails and nothing is sent; an unusable CA file
/// refuses to start (exit 2) naming the variable.
#[test]
fn an_https_backend_signed_by_a_private_ca_is_trusted_through_agentd_http_ca_file() {
    use std::net::TcpListener;
    use std::sync::Arc;

    let dir = scratch("remote-tls-backend");
    let ca = tls::Ca::new("agentd llm test CA");
    let leaf = ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write the CA");
    std::fs::write(dir.join("not-a-ca.pem"), "no certificates here\n").expect("write");
    let server_config = leaf.server_config();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let workflow = format!(
        r#"name = "remote_llm_tls"

[[intelligence.backends]]
name = "private"
provider = "openai-compatible"
base_url = "https://localhost:{port}/v1"
model = "tiny-model"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "ask"

[[nodes]]
id = "ask"
type = "llm_infer"
backend = "private"
prompt = "Say hi to {{{{who}}}}"
input_from = "trigger"
"#
    );
    std::fs::write(dir.join("wf.toml"), workflow).expect("write workflow");
    let exe = dir.join("remote-llm-tls-bin");
    support::agentd_build(&dir, "wf.toml", &exe, &[]);
    let run = |ca_file: Option<&str>| {
        let mut cmd = Command::new(&exe);
        cmd.args(["--input", r#"{"who": "tls"}"#])
            .env_remove("AGENTD_HTTP_CA_FILE")
            .env_remove("SSL_CERT_FILE");
        without_proxy(&mut cmd);
        if let Some(file) = ca_file {
            cmd.env("AGENTD_HTTP_CA_FILE", dir.join(file));
        }
        cmd.output().expect("the binary runs")
    };

    // Every connection gets a TLS server; what each one received is reported.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(Arc::clone(&server_config)).expect("conn");
            let mut tls = rustls::StreamOwned::new(conn, stream);
            // A client that refuses the certificate aborts the handshake.
            let got = match tls.conn.complete_io(&mut tls.sock) {
                Ok(_) if !tls.conn.is_handshaking() => {
                    Some(answer_chat_completion(&mut tls, "hi, tls"))
                }
                _ => None,
            };
            if tx.send(got).is_err() {
                break;
            }
        }
    });

    // The built-in roots do not know the private CA: the handshake fails, the
    // run fails (exit 5) naming the URL, and no request reached the server.
    let untrusted = run(None);
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("https://localhost:{port}/v1/chat/completions")),
        "{stderr}"
    );
    assert_eq!(
        rx.recv().expect("a connection"),
        None,
        "nothing may pass an untrusted handshake"
    );

    // A file without certificates refuses to start before any call.
    let bad = run(Some("not-a-ca.pem"));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AGENTD_HTTP_CA_FILE"), "{stderr}");
    assert!(stderr.contains("no certificate"), "{stderr}");

    // The CA bundle: the call goes through and its reply drives the run.
    let ok = run(Some("ca.pem"));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert_eq!(ok.status.code(), Some(0), "{stdout}\n{stderr}");
    let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
    assert_eq!(outcome["final_value"]["content"], "hi, tls", "{outcome}");
    let (head, body) = rx
        .recv()
        .expect("a connection")
        .expect("the trusted request reached the server");
    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    let request: Value = serde_json::from_slice(&body).expect("a JSON request body");
    assert_eq!(request["messages"][0]["content"], "Say hi to tls");
}

/// `[budget] max_llm_tokens = 0` means no limit, as every `[budget]` key's 0 does
/// (dialect 1 refused every call): two calls in one run both reach the backend.
#[test]
fn a_zero_token_budget_is_no_limit_in_a_built_binary() {
    let dir = scratch("zero-budget");
    std::fs::write(
        dir.join("wf.toml"),
        r#"name = "zero_budget"

[budget]
max_llm_tokens = 0

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "first"

[[nodes]]
id = "first"
type = "llm_infer"
backend = "default"
prompt = "one"

[[nodes]]
id = "second"
type = "llm_infer"
backend = "default"
prompt = "two"

[[edges]]
from = "first"
to = "second"
"#,
    )
    .expect("write workflow");
    let exe = dir.join("zero-budget-bin");
    support::agentd_build(&dir, "wf.toml", &exe, &[]);

    let sock = dir.join("intel.sock");
    let listener = UnixListener::bind(&sock).expect("bind the socket");
    let server = std::thread::spawn(move || {
        let mut calls = 0;
        for _ in 0..2 {
            let (mut s, _) = listener.accept().expect("accept");
            let req: Value = serde_json::from_slice(&read_frame(&mut s).expect("a request frame"))
                .expect("JSON request");
            let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": {
                "content": "fine", "usage": {"prompt_tokens": 700, "completion_tokens": 300}}});
            write_frame(&mut s, reply.to_string().as_bytes());
            calls += 1;
        }
        calls
    });
    let run = Command::new(&exe)
        .arg("--intel-unix")
        .arg(&sock)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("max_llm_tokens"), "{stderr}");
    assert_eq!(server.join().expect("server thread"), 2);
    let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
    assert_eq!(outcome["status"], json!("completed"));
    assert_eq!(outcome["last_node"], json!("second"));
}
