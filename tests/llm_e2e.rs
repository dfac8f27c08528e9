//! End to end: a built workflow binary drives `llm_infer` through `--intel-unix`
//! against a real Unix-socket server speaking the dialect's framed JSON-RPC.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agentd-compiler lives inside the workspace")
        .to_path_buf()
}

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
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("llm-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("schemas")).expect("scratch dir");
    std::fs::write(dir.join("wf.toml"), WORKFLOW).expect("write workflow");
    std::fs::write(
        dir.join("schemas/route.json"),
        r#"{"type":"object","required":["decision"],"properties":{"decision":{"enum":["urgent","later"]}}}"#,
    )
    .expect("write schema");
    let exe = dir.join("llm-e2e-bin");
    let out = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(&dir)
        .env("AGENTD_CACHE_DIR", workspace().join("target/agentd-cache"))
        .env_remove("AGENTD_RUNTIME_PATH")
        .args(["--color=never", "build", "--quiet", "wf.toml", "-o"])
        .arg(&exe)
        .output()
        .expect("agentd build runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
