//! End to end: MCP calls under the policy, in binaries built through the
//! compiler's library, against `mcp-double` as a real child process.
//!
//! An empty `[policy]` denies every MCP call (exit 5, `policy.denied`) before
//! the server sees it; under `[policy.rego]` a call the lists allow is still
//! denied unless the Rego query (input `{"tool": "mcp.call", "args": {server,
//! tool}}`) is `true`, and a `--policy` override whose Rego allows it runs.
//! `[policy.mcp] tools` / `resources` narrow what a server's own allowlists allow.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agentd_compiler::build::{self, BuildOptions, Linking};
use agentd_compiler::codegen::CodegenOptions;
use agentd_compiler::load::LoadOptions;
use serde_json::{Value, json};

const DOUBLE: &str = env!("CARGO_BIN_EXE_mcp-double");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root resolves")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mcp-policy-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A workflow whose one node calls the double's `echo` with the trigger input;
/// `policy` is the TOML of its `[policy]` tables.
fn workflow(dir: &Path, policy: &str) -> String {
    format!(
        r#"name = "mcp_policy"

{policy}

# The double appends every request it receives to its log; MCP children run inside
# the binary's kernel sandbox, so the policy must allow that write.
[policy.fs]
write = ["{log}"]

[[mcp_servers]]
name = "double"
command = ["{DOUBLE}", "--log", "{log}"]
allow_tools = ["echo"]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "call"

[[nodes]]
id = "call"
type = "call_mcp_tool"
tool = "echo"
args_from = "trigger"
"#,
        log = dir.join("double.log").display()
    )
}

/// Build `workflow` into `dir/bin` and return the binary's path.
fn build_in(dir: &Path, workflow: &str) -> PathBuf {
    let wf = dir.join("wf.toml");
    std::fs::write(&wf, workflow).expect("write workflow");
    // `--policy-overrides`: the Rego test runs the binary with `--policy`.
    let cg = CodegenOptions {
        policy_overrides: true,
        ..CodegenOptions::default()
    };
    let compiled = agentd_compiler::compile(&wf, &LoadOptions::default(), &cg);
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
    let exe = dir.join("bin");
    let mut opts = BuildOptions::new(exe.clone());
    opts.cache_dir = Some(workspace().join("target/agentd-cache"));
    opts.linking = Linking::Dynamic;
    opts.progress = false;
    build::build(&generated, &opts).unwrap_or_else(|e| panic!("agentd build: {e}"));
    exe
}

fn run(exe: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .current_dir(dir)
        .args(["--input", r#"{"n": 7}"#])
        .args(args)
        .output()
        .expect("the binary runs")
}

/// What the double received (empty when it never got a line).
fn received(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("double.log")).unwrap_or_default()
}

#[test]
fn an_empty_policy_denies_an_mcp_call_before_the_server_sees_it() {
    let dir = scratch("empty");
    let exe = build_in(&dir, &workflow(&dir, "[policy]"));
    let out = run(&exe, &dir, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "stderr:\n{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("event=\"policy.denied\"")
            && stderr.contains(
                "mcp tool `echo` denied by allowlist on server `double`: `[policy.mcp] servers` \
                 does not list it"
            ),
        "stderr:\n{stderr}"
    );
    assert!(
        !received(&dir).contains("tools/call"),
        "the server got the call:\n{}",
        received(&dir)
    );
    // The control: with `double` listed, the same binary reaches the server and
    // its log records the call, so the check above could have failed (an empty log
    // alone could also be a log the double was not allowed to write).
    std::fs::write(
        dir.join("allow.toml"),
        format!(
            "[policy.fs]\nwrite = [\"{}\"]\n[policy.mcp]\nservers = [\"double\"]\n",
            dir.join("double.log").display()
        ),
    )
    .expect("write override");
    let out = run(&exe, &dir, &["--policy", "allow.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(received(&dir).contains("tools/call"), "{}", received(&dir));
}

/// A workflow with two start nodes against the double, whose own allowlists
/// allow `echo` and `mem://*`: `call` calls `echo`, `read` reads `trigger.uri`.
fn narrowed_workflow(dir: &Path, policy_mcp: &str) -> String {
    format!(
        r#"name = "mcp_narrowed"

[policy.mcp]
servers = ["double"]
{policy_mcp}

[policy.fs]
write = ["{log}"]

[[mcp_servers]]
name = "double"
command = ["{DOUBLE}", "--log", "{log}"]
allow_tools = ["echo"]
allow_resources = ["mem://*"]

[[start_nodes]]
name = "call"
source = "manual"
entry_node = "call"

[[start_nodes]]
name = "read"
source = "manual"
entry_node = "read"

[[nodes]]
id = "call"
type = "call_mcp_tool"
tool = "echo"
args_from = "trigger"

[[nodes]]
id = "read"
type = "read_mcp_resource"
resource_from = "trigger.uri"
"#,
        log = dir.join("double.log").display()
    )
}

#[test]
fn policy_mcp_tools_and_resources_narrow_what_the_server_allows() {
    let dir = scratch("narrowed");
    // The server allows `echo` and `mem://*`; the workflow's policy narrows every
    // server to the tool `env` and `file://` resources.
    let exe = build_in(
        &dir,
        &narrowed_workflow(&dir, "tools = [\"env\"]\nresources = [\"file://*\"]"),
    );
    let input = r#"{"uri": "mem://hello"}"#;
    let run_as = |start: &str, extra: &[&str]| {
        let out = Command::new(&exe)
            .current_dir(&dir)
            .args(["--start", start, "--input", input])
            .args(extra)
            .output()
            .expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.stdout,
        )
    };
    let (code, stderr, _) = run_as("call", &[]);
    assert_eq!(code, Some(5), "stderr:\n{stderr}");
    assert!(
        stderr.contains("event=\"policy.denied\"")
            && stderr.contains("mcp tool `echo` denied by allowlist on server `double`"),
        "stderr:\n{stderr}"
    );
    let (code, stderr, _) = run_as("read", &[]);
    assert_eq!(code, Some(5), "stderr:\n{stderr}");
    assert!(
        stderr.contains("event=\"policy.denied\"")
            && stderr.contains("mcp resource `mem://hello` denied by allowlist on server `double`"),
        "stderr:\n{stderr}"
    );
    assert!(
        !received(&dir).contains("tools/call") && !received(&dir).contains("resources/read"),
        "the server got a request:\n{}",
        received(&dir)
    );

    // The same servers with lists that name `echo` and `mem://*`: both go through,
    // so the lists alone made the difference.
    std::fs::write(
        dir.join("wide.toml"),
        format!(
            "[policy.fs]\nwrite = [\"{}\"]\n[policy.mcp]\nservers = [\"double\"]\n\
             tools = [\"ech*\"]\nresources = [\"mem://*\"]\n",
            dir.join("double.log").display()
        ),
    )
    .expect("write override");
    let (code, stderr, stdout) = run_as("call", &["--policy", "wide.toml"]);
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let outcome: Value = serde_json::from_slice(&stdout).expect("outcome JSON");
    assert_eq!(outcome["final_value"]["tool"], "echo", "{outcome}");
    let (code, stderr, stdout) = run_as("read", &["--policy", "wide.toml"]);
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let outcome: Value = serde_json::from_slice(&stdout).expect("outcome JSON");
    assert_eq!(
        outcome["final_value"]["contents"][0]["text"], "hello",
        "{outcome}"
    );
    assert!(
        received(&dir).contains("resources/read"),
        "{}",
        received(&dir)
    );
}

#[test]
fn rego_decides_an_mcp_call_the_lists_allow() {
    let dir = scratch("rego");
    // The lists allow `echo` on `double`; the baked Rego allows only `env`.
    let policy = r#"[policy.mcp]
servers = ["double"]

[policy.rego]
inline = '''
package agent
default allow := false
allow if {
  input.tool == "mcp.call"
  input.args == {"server": "double", "tool": "env"}
}
'''"#;
    let exe = build_in(&dir, &workflow(&dir, policy));
    let out = run(&exe, &dir, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "stderr:\n{stderr}");
    assert!(
        stderr.contains("event=\"policy.denied\"")
            && stderr.contains("mcp tool `echo` on server `double` denied by the Rego policy")
            && stderr.contains(r#"{"args":{"server":"double","tool":"echo"},"tool":"mcp.call"}"#),
        "stderr:\n{stderr}"
    );
    assert!(
        !received(&dir).contains("tools/call"),
        "the server got the call:\n{}",
        received(&dir)
    );

    // An override with the same lists and a Rego that allows `echo`: the call runs.
    std::fs::write(
        dir.join("allow.toml"),
        format!(
            "[policy.fs]\nwrite = [\"{}\"]\n[policy.mcp]\nservers = [\"double\"]\n\
             [policy.rego]\ninline = '''\npackage agent\nallow if input.args.tool == \"echo\"\n'''\n",
            dir.join("double.log").display()
        ),
    )
    .expect("write override");
    let out = run(&exe, &dir, &["--policy", "allow.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("outcome JSON");
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(outcome["final_value"]["tool"], "echo", "{outcome}");
    assert_eq!(
        outcome["final_value"]["structured"]["n"],
        json!(7),
        "{outcome}"
    );
    assert!(received(&dir).contains("tools/call"));
}
