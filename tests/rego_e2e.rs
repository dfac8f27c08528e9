//! End to end: `[policy.rego]` in binaries built by the real `agentd`.
//!
//! A baked Rego policy that denies `env.read` makes the binary exit 5 with the
//! `policy.denied` audit event; one that allows it (from a `file`, read at build
//! time: the test deletes it before running) lets the run complete; a Rego syntax
//! error fails `agentd check` with a span into the inline text or the file; a
//! `--policy` override carries its own `[policy.rego]`, is refused by a binary
//! built without Rego, and is swapped by SIGHUP in serve mode, where a broken one
//! is refused (`reload.failed`) and the previous policy stays in force.
#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{Served, agentd_build, eventually, scratch, text};

/// A one-shot workflow reading `AGENTD_REGO_KEY`, every env key allowed by the
/// static list, `rego` deciding (the TOML of a `[policy.rego]` body).
fn env_workflow(name: &str, rego: &str) -> String {
    format!(
        r#"name = "{name}"

[policy.env]
read_keys = ["*"]

{rego}
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "key"

[[nodes]]
id = "key"
type = "read_env"
key = "AGENTD_REGO_KEY"
"#
    )
}

const DENY_ENV: &str = r#"[policy.rego]
inline = '''
package agent
default allow := false
allow if input.tool != "env.read"
'''
"#;

fn run(exe: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .current_dir(dir)
        .env("AGENTD_REGO_KEY", "rego-value")
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn a_rego_policy_denying_env_read_exits_5_with_policy_denied_and_an_override_can_allow_it() {
    let dir = scratch("deny");
    std::fs::write(dir.join("deny.toml"), env_workflow("rego_deny", DENY_ENV)).expect("write");
    let exe = dir.join("deny");
    agentd_build(&dir, "deny.toml", &exe, &["--policy-overrides"]);

    let out = run(&exe, &dir, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "stderr:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains("event=\"policy.denied\"")
            && stderr.contains("denied by the Rego policy")
            && stderr.contains(r#"{"args":{"key":"AGENTD_REGO_KEY"},"tool":"env.read"}"#),
        "stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("rego-value"),
        "the value was never read:\n{stderr}"
    );

    // A `--policy` override with its own Rego replaces the baked one.
    std::fs::write(
        dir.join("allow.toml"),
        "[policy.env]\nread_keys = [\"AGENTD_REGO_*\"]\n[policy.rego]\n\
         inline = \"package agent\\nallow if input.args.key == data.key\"\n\
         data = { key = \"AGENTD_REGO_KEY\" }\n",
    )
    .expect("write override");
    let out = run(&exe, &dir, &["--policy", "allow.toml"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rego-value"),
        "{}",
        text(&out.stdout)
    );

    // An override whose Rego does not compile refuses to start; never ignored.
    std::fs::write(
        dir.join("broken.toml"),
        "[policy.env]\nread_keys = [\"*\"]\n[policy.rego]\ninline = \"package agent\\nallow if {\"\n",
    )
    .expect("write override");
    let out = run(&exe, &dir, &["--policy", "broken.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("does not compile"), "stderr:\n{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_rego_file_is_baked_at_build_time_and_allows_the_run() {
    let dir = scratch("allow");
    std::fs::write(
        dir.join("allow.rego"),
        "package ops\n\nimport rego.v1\n\nok if {\n  input.tool == \"env.read\"\n  \
         input.args.key in data.keys\n}\n",
    )
    .expect("write policy");
    let rego = "[policy.rego]\nfile = \"allow.rego\"\nquery = \"data.ops.ok\"\n\
                [policy.rego.data]\nkeys = [\"AGENTD_REGO_KEY\"]\n";
    std::fs::write(dir.join("allow.toml"), env_workflow("rego_allow", rego)).expect("write");
    let exe = dir.join("allow");
    agentd_build(&dir, "allow.toml", &exe, &[]);
    // The binary never reads the file: it runs the same without it.
    std::fs::remove_file(dir.join("allow.rego")).expect("remove the policy file");

    let out = run(&exe, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).expect("outcome JSON");
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert!(outcome.to_string().contains("rego-value"), "{outcome}");
}

#[test]
fn a_rego_syntax_error_fails_agentd_check_with_a_span_into_the_policy() {
    let dir = scratch("check");
    let inline =
        "[policy.rego]\ninline = '''\npackage agent\nallow if {\n  input.tool ==\n}\n'''\n";
    std::fs::write(dir.join("inline.toml"), env_workflow("rego_inline", inline)).expect("write");
    std::fs::write(
        dir.join("bad.rego"),
        "package agent\n\nallow if input.tool = = 1\n",
    )
    .expect("write policy");
    let file = "[policy.rego]\nfile = \"bad.rego\"\n";
    std::fs::write(dir.join("file.toml"), env_workflow("rego_file", file)).expect("write");

    let check = |workflow: &str| {
        support::agentd(&dir)
            .args(["check", workflow])
            .output()
            .expect("agentd runs")
    };
    let out = check("inline.toml");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("error[rego_syntax_error]"),
        "stderr:\n{stderr}"
    );
    // The caret is on the `}` of line 11 of the workflow (line 4 of the policy).
    assert!(stderr.contains("inline.toml:11:1"), "stderr:\n{stderr}");
    assert!(stderr.contains("11 | }"), "the line shown:\n{stderr}");
    assert!(stderr.contains("expecting expression"), "stderr:\n{stderr}");

    let out = check("file.toml");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("error[rego_syntax_error]"),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("bad.rego:3:"),
        "a span into the file:\n{stderr}"
    );
    assert!(
        stderr.contains("allow if input.tool = = 1"),
        "the line shown:\n{stderr}"
    );
}

#[test]
fn a_binary_without_rego_refuses_an_override_that_carries_rego() {
    let dir = scratch("norego");
    std::fs::write(dir.join("plain.toml"), env_workflow("rego_plain", "")).expect("write");
    let exe = dir.join("plain");
    agentd_build(&dir, "plain.toml", &exe, &["--policy-overrides"]);
    std::fs::write(
        dir.join("override.toml"),
        "[policy.env]\nread_keys = [\"*\"]\n[policy.rego]\ninline = \"package agent\\nallow := false\"\n",
    )
    .expect("write override");
    let out = run(&exe, &dir, &["--policy", "override.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("built without"), "stderr:\n{stderr}");
    assert!(out.stdout.is_empty(), "never run with the Rego ignored");
}

// ------------------------------------------------------------ serve and reload

/// The status of `POST /key` on a served binary.
fn status(served: &Served) -> Option<u16> {
    let mut tcp = TcpStream::connect(served.addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    tcp.write_all(
        b"POST /key HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .ok()?;
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

const OVERRIDE_ALLOW: &str = "[policy.env]\nread_keys = [\"*\"]\n[policy.rego]\n\
                              inline = \"package agent\\nallow := true\"\n";
const OVERRIDE_DENY: &str = "[policy.env]\nread_keys = [\"*\"]\n[policy.rego]\n\
                             inline = \"package agent\\nallow := input.tool != \\\"env.read\\\"\"\n";
const OVERRIDE_BROKEN: &str = "[policy.env]\nread_keys = [\"*\"]\n[policy.rego]\n\
                               inline = \"package agent\\nallow := := true\"\n";

#[test]
fn sighup_swaps_an_override_rego_policy_and_a_broken_one_keeps_the_old() {
    let dir = scratch("reload");
    let workflow = r#"name = "rego_served"

[policy.env]
read_keys = ["*"]

# Baked: allows. The --policy override decides once given.
[policy.rego]
inline = "package agent\nallow := true"

[[start_nodes]]
name = "main"
source = "http"
entry_node = "key"

[[http_routes]]
method = "POST"
path = "/key"
start_node = "main"

[[nodes]]
id = "key"
type = "read_env"
key = "AGENTD_REGO_KEY"
"#;
    std::fs::write(dir.join("served.toml"), workflow).expect("write");
    let exe = dir.join("served");
    agentd_build(&dir, "served.toml", &exe, &["--policy-overrides"]);
    std::fs::write(dir.join("policy.toml"), OVERRIDE_DENY).expect("write override");

    let served = Served::start(
        &exe,
        &dir,
        &["--policy", "policy.toml"],
        &[("AGENTD_REGO_KEY", "rego-value")],
    );
    assert_eq!(status(&served), Some(500), "the override's Rego denies");

    std::fs::write(dir.join("policy.toml"), OVERRIDE_ALLOW).expect("write override");
    served.signal(libc::SIGHUP);
    eventually("the reloaded Rego to allow", || {
        status(&served) == Some(200)
    });

    std::fs::write(dir.join("policy.toml"), OVERRIDE_DENY).expect("write override");
    served.signal(libc::SIGHUP);
    eventually("the reloaded Rego to deny", || status(&served) == Some(500));

    std::fs::write(dir.join("policy.toml"), OVERRIDE_BROKEN).expect("write override");
    served.signal(libc::SIGHUP);
    eventually("reload.failed for the broken policy", || {
        served
            .stderr()
            .lines()
            .any(|l| l.contains("reload.failed") && l.contains("does not compile"))
    });
    assert_eq!(
        status(&served),
        Some(500),
        "the previous (denying) policy stays"
    );
    let stderr = served.stderr();
    assert!(stderr.contains("policy.denied"), "stderr:\n{stderr}");
}
