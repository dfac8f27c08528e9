//! End to end: `agentd build` turns a workflow with `[[mcp_servers]]`,
//! `read_mcp_resource`, `call_mcp_tool` and an `agent_loop` into a binary;
//! the binary starts `mcp-double` as a real child at startup, drives the loop
//! through `--intel-unix` against a framed JSON-RPC socket server, resolves
//! the server's `env` secret from `[[secrets]]`, and leaves no child behind.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentd_compiler::build::{self, BuildOptions, Linking};
use agentd_compiler::codegen::CodegenOptions;
use agentd_compiler::codegen::features::RuntimeFeature;
use agentd_compiler::load::LoadOptions;
use serde_json::{Value, json};

const DOUBLE: &str = env!("CARGO_BIN_EXE_mcp-double");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root resolves")
}

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

fn workflow(dir: &Path) -> String {
    format!(
        r#"name = "mcp_e2e"

[policy.fs]
read = ["{dir}/**"]
# The double appends every request to this log; MCP children run inside the
# binary's kernel sandbox, so the policy must allow the write.
write = ["{dir}/double.log"]

[policy.mcp]
servers = ["double"]

[[secrets]]
name = "double_token"
source = "env"
var = "AGENTD_E2E_DOUBLE_TOKEN"

[[mcp_servers]]
name = "double"
command = ["{DOUBLE}", "--chatty", "--log", "{dir}/double.log"]
allow_tools = ["echo", "env"]
allow_resources = ["mem://*"]
env = {{ DOUBLE_SEEN_TOKEN = "double_token" }}

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "hello"

[[nodes]]
id = "hello"
type = "read_mcp_resource"
resource_from = "trigger.uri"

[[nodes]]
id = "echo"
type = "call_mcp_tool"
tool = "echo"
args_from = "trigger.args"
server = "double"

[[nodes]]
id = "investigate"
type = "agent_loop"
backend = "default"
instructions_from = "trigger.task"
tools = ["call_mcp_tool", "read_file"]
max_steps = 5

[[nodes]]
id = "answer"
type = "json_select"
input_from = "investigate"
path = "result"

[[nodes]]
id = "gave_up"
type = "fail"
reason = "agent loop exhausted"

[[edges]]
from = "hello"
to = "echo"

[[edges]]
from = "echo"
to = "investigate"

[[edges]]
from = "investigate"
to = "answer"

[[edges]]
from = "investigate"
when = "exhausted"
to = "gave_up"
"#,
        dir = dir.display()
    )
}

/// `mcp-double` processes whose command line mentions `dir`.
fn doubles_in(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains("mcp-double") && c.contains(&needle))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_built_binary_runs_mcp_nodes_and_an_agent_loop_against_real_processes() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let wf = dir.join("wf.toml");
    std::fs::write(&wf, workflow(&dir)).expect("write workflow");
    std::fs::write(dir.join("notes.txt"), "disk at 91%\n").expect("write notes");

    let compiled =
        agentd_compiler::compile(&wf, &LoadOptions::default(), &CodegenOptions::default());
    let errors: Vec<String> = compiled
        .program
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{d:?}"))
        .collect();
    let generated = compiled
        .generated
        .unwrap_or_else(|| panic!("compiles: {errors:?}"));
    for f in [
        RuntimeFeature::Mcp,
        RuntimeFeature::Llm,
        RuntimeFeature::Fs,
        RuntimeFeature::Data,
    ] {
        assert!(
            generated.features.contains(&f),
            "feature {f} in {:?}",
            generated.features
        );
    }
    let exe = dir.join("mcp-e2e-bin");
    let mut opts = BuildOptions::new(exe.clone());
    opts.cache_dir = Some(workspace().join("target/agentd-cache"));
    opts.linking = Linking::Dynamic;
    opts.progress = false;
    build::build(&generated, &opts).unwrap_or_else(|e| panic!("agentd build: {e}"));

    let sock = dir.join("intel.sock");
    let listener = UnixListener::bind(&sock).expect("bind the socket");
    let notes = dir.join("notes.txt").display().to_string();
    let server = std::thread::spawn(move || {
        let answers = [
            json!({"action": "tool", "tool": "call_mcp_tool",
                   "args": {"tool": "env", "args": {"name": "DOUBLE_SEEN_TOKEN"}}}),
            json!({"action": "tool", "tool": "call_mcp_tool", "args": {"tool": "drop_everything"}}),
            json!({"action": "tool", "tool": "read_file", "args": {"path": notes}}),
            json!({"action": "final", "result": {"disk": "91%"}}),
        ];
        let mut seen = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().expect("accept");
            let req: Value = serde_json::from_slice(&read_frame(&mut s).expect("a request frame"))
                .expect("JSON request");
            let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": {
                "content": answer.to_string(), "usage": {"prompt_tokens": 50, "completion_tokens": 10}}});
            write_frame(&mut s, reply.to_string().as_bytes());
            seen.push(req);
        }
        seen
    });
    let run = Command::new(&exe)
        .env("AGENTD_E2E_DOUBLE_TOKEN", "tok-e2e-123")
        .args(["--log-level", "info"])
        .arg("--intel-unix")
        .arg(&sock)
        .args([
            "--input",
            r#"{"uri": "mem://hello", "args": {"n": 7}, "task": "check the disk"}"#,
        ])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "stderr: {stderr}");
    // The child's stderr reaches the binary's log under the server's name.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("agentd::mcp: server=\"double\"")
                && l.contains("mcp-double: started as pid")),
        "the child's stderr is logged: {stderr}"
    );
    let outcome: Value = serde_json::from_slice(&run.stdout).expect("outcome JSON");
    assert_eq!(
        outcome,
        json!({"status": "completed", "final_value": {"value": {"disk": "91%"}, "found": true},
               "last_node": "answer"})
    );
    let seen = server.join().expect("socket server");
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
    // The child got the secret through `env`, and only the child.
    assert_eq!(
        observation(1)["tool_result"]["content"][0]["text"],
        json!("tok-e2e-123")
    );
    // A tool outside allow_tools is denied before the child sees it.
    assert_eq!(
        observation(2)["error"],
        json!(
            "policy violation: mcp tool `drop_everything` denied by allowlist on server `double`"
        )
    );
    assert_eq!(
        observation(3)["tool_result"]["content"],
        json!("disk at 91%\n")
    );
    let log = std::fs::read_to_string(dir.join("double.log")).expect("the double logged");
    assert!(
        !log.contains("drop_everything"),
        "denied calls never reach the server"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains("\"initialize\"")).count(),
        1,
        "one child, one handshake:\n{log}"
    );
    assert!(
        doubles_in(&dir).is_empty(),
        "the binary left no MCP child behind"
    );
}

/// An MCP server that may only read `<dir>/allowed`; it is asked to read a
/// file next to it.
fn confined_workflow(dir: &Path) -> String {
    format!(
        r#"name = "mcp_sandbox"

[policy.fs]
read = ["{dir}/allowed/**"]

[policy.mcp]
servers = ["double"]

[[mcp_servers]]
name = "double"
command = ["{DOUBLE}"]
allow_tools = ["read"]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "read"

[[nodes]]
id = "read"
type = "call_mcp_tool"
tool = "read"
args_from = "trigger"
server = "double"
"#,
        dir = dir.display()
    )
}

#[test]
fn an_mcp_child_reading_outside_the_fs_policy_gets_eacces_from_the_kernel() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-sandbox");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("allowed")).expect("scratch dir");
    let dir = dir.canonicalize().expect("scratch dir resolves");
    std::fs::write(dir.join("allowed/ok.txt"), "fine\n").expect("write inside");
    std::fs::write(dir.join("secret.txt"), "private\n").expect("write outside");
    let wf = dir.join("wf.toml");
    std::fs::write(&wf, confined_workflow(&dir)).expect("write workflow");
    let compiled =
        agentd_compiler::compile(&wf, &LoadOptions::default(), &CodegenOptions::default());
    let generated = compiled.generated.expect("the workflow compiles");
    let exe = dir.join("mcp-sandbox-bin");
    let mut opts = BuildOptions::new(exe.clone());
    opts.cache_dir = Some(workspace().join("target/agentd-cache"));
    opts.linking = Linking::Dynamic;
    opts.progress = false;
    build::build(&generated, &opts).unwrap_or_else(|e| panic!("agentd build: {e}"));

    let read = |path: &Path, extra: &[&str]| -> Value {
        let run = Command::new(&exe)
            .env_remove("AGENTD_SANDBOX")
            .args(extra)
            .arg("--input")
            .arg(json!({ "path": path }).to_string())
            .output()
            .expect("the binary runs");
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "outcome JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            )
        })
    };
    let inside = read(&dir.join("allowed/ok.txt"), &[]);
    assert_eq!(
        inside["final_value"]["content"][0]["text"], "fine\n",
        "{inside}"
    );

    let outside = read(&dir.join("secret.txt"), &[]);
    let said = outside["final_value"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(outside["final_value"]["is_error"], true, "{outside}");
    assert!(
        said.contains("Permission denied (os error 13)"),
        "the child got EACCES from the kernel: {outside}"
    );

    // The control: the same child reads it when the binary runs unsandboxed.
    let off = read(&dir.join("secret.txt"), &["--sandbox=off"]);
    assert_eq!(
        off["final_value"]["content"][0]["text"], "private\n",
        "{off}"
    );
}
