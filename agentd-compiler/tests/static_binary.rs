//! The static binary does what a dynamic one does (docs/cli.md "agentd build",
//! issue 8).
//!
//! - Linkage (`ldd` says "not a dynamic executable"/"statically linked") is checked
//!   by `tests/e2e.rs`; here a precondition only (no `PT_INTERP` program header).
//! - Host-name resolution: static glibc's `getaddrinfo` loads NSS modules
//!   (`libnss_files`, `libnss_dns`) at run time. This test points an `llm_infer`
//!   binary at `--intel-http http://localhost:PORT/rpc`, served by a tiny in-test HTTP
//!   server speaking the dialect's JSON-RPC: `localhost` must be resolved by the
//!   binary itself.
//! - TLS and child processes are exercised by the end-to-end tests that build with
//!   `tests/support/build.rs`, which asserts that every default build is static:
//!   an HTTPS `http_request` against an in-test CA (`tests/effects_e2e.rs`), mutual
//!   TLS served to an in-test client (`tests/auth_e2e.rs`), and `shell_run` children
//!   (`tests/effects_e2e.rs`, `tests/obs_e2e.rs`).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;

use serde_json::{Value, json};

#[path = "../../tests/support/mod.rs"]
mod support;

const WORKFLOW: &str = r#"name = "static_dns"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "ask"

[[nodes]]
id = "ask"
type = "llm_infer"
backend = "default"
prompt = "Say hi to {{who}}"
input_from = "trigger"
"#;

/// Answer one HTTP/1.1 JSON-RPC `complete` request; return the request line, the
/// `Host` header and the JSON body.
fn serve_one(listener: &TcpListener) -> (String, String, Value) {
    let (stream, _) = listener.accept().expect("accept");
    let mut r = BufReader::new(stream);
    let mut request_line = String::new();
    r.read_line(&mut request_line).expect("request line");
    let (mut host, mut length) = (String::new(), 0_usize);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("host") {
                host = value.trim().to_owned();
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("Content-Length");
            }
        }
    }
    let mut body = vec![0_u8; length];
    r.read_exact(&mut body).expect("body");
    let req: Value = serde_json::from_slice(&body).expect("a JSON-RPC request");
    let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": {
        "content": "hi from localhost", "usage": {"prompt_tokens": 4, "completion_tokens": 3}}})
    .to_string();
    let mut stream = r.into_inner();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )
    .expect("write the reply");
    (request_line.trim_end().to_owned(), host, req)
}

#[test]
fn a_static_binary_resolves_localhost_for_its_llm_backend() {
    let dir = support::scratch("static-dns");
    std::fs::write(dir.join("wf.toml"), WORKFLOW).expect("write workflow");
    let exe = dir.join("static-dns");
    // The shared builder also asserts that the default build is static (no
    // `PT_INTERP` header).
    support::agentd_build(&dir, "wf.toml", &exe, &[]);

    // 127.0.0.1 only: `localhost` may resolve to ::1 first, which the binary must
    // then skip (it tries every address getaddrinfo returns).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let server = std::thread::spawn(move || serve_one(&listener));
    let run = Command::new(&exe)
        .args(["--intel-http", &format!("http://localhost:{port}/rpc")])
        .args(["--input", r#"{"who": "static glibc"}"#])
        .env_remove("AGENTD_INTEL_UNIX")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let (request_line, host, req) = server.join().expect("server thread");
    assert_eq!(request_line, "POST /rpc HTTP/1.1");
    assert_eq!(host, format!("localhost:{port}"));
    assert_eq!(req["method"], "complete");
    assert_eq!(
        req["params"]["messages"],
        json!([{"role": "user", "content": "Say hi to static glibc"}])
    );
    let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert!(
        outcome.to_string().contains("hi from localhost"),
        "{outcome}"
    );
}
