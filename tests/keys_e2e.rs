//! End to end: keys of `[budget]`, `[logging]`, edges and retries whose effect
//! only a run shows, in two workflows built by the real `agentd` and run one-shot.
//!
//! - `keys-fs` (data and file nodes): a loop edge's `max_iterations`, a retry's
//!   `jitter` (each `wait_ms` the audit sink records), `[budget] max_fs_write_mb`,
//!   and a JSON main log in a `minutely` rotated file.
//! - `keys-effects` (an HTTP call and a shell command): `body_from` is what a real
//!   server on 127.0.0.1 receives, `[budget] max_run_time_secs` ends a slow run
//!   `timed_out` with exit 5, `[logging] enabled = false` silences the main log
//!   while the audit sink, with `include_reason = true`, keeps the reason.
//!
//! They link the runtime feature sets of tests/budget.rs and tests/obs_e2e.rs, so
//! neither needs a runtime build of its own.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

use support::stub::Stub;
use support::{scratch, stdout_json};

fn run(binary: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run the binary")
}

/// Every JSON line of the files in `dir` whose name starts with `prefix`.
fn json_lines(dir: &Path, prefix: &str) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["event"] == event || l["event"] == event)
        .collect()
}

// ------------------------------------------------------------ keys-fs

fn fs_workflow(dir: &Path) -> String {
    format!(
        r#"name = "keys_fs"

[logging]
level = "warn,agentd::engine=debug"
format = "json"
target = "file:{dir}/logs/main.log"
rotation = "minutely"

[logging.audit]
target = "file:{dir}/logs/audit.jsonl"

[budget]
max_fs_write_mb = 1

[policy.fs]
write = ["{dir}/out/**"]

# loop: bump -> check -> bump, the loop edge followed at most 3 times.
[[start_nodes]]
name = "loop"
source = "manual"
entry_node = "bump"

[[nodes]]
id = "bump"
type = "template_render"
template = "again"

[[nodes]]
id = "check"
type = "template_render"
template = "checked"

[[edges]]
from = "bump"
to = "check"

[[edges]]
from = "check"
to = "bump"
max_iterations = 3

# write: the input's content to two files; together they may cross the budget.
[[start_nodes]]
name = "write"
source = "manual"
entry_node = "first"

[[nodes]]
id = "first"
type = "write_file"
path_from = "trigger.first"
content_from = "trigger.content"

[[nodes]]
id = "second"
type = "write_file"
path_from = "trigger.second"
content_from = "trigger.content"

[[edges]]
from = "first"
to = "second"

# retry: a write below a regular file fails every attempt; each wait is
# backoff_ms x attempt, scaled by a random factor in 1 +- jitter.
[[start_nodes]]
name = "retry"
source = "manual"
entry_node = "stuck"

[[nodes]]
id = "stuck"
type = "write_file"
path_from = "trigger.path"
content_from = "trigger.path"
retry = {{ max_attempts = 6, backoff_ms = 100, on = "any", jitter = 0.5 }}
"#,
        dir = dir.display()
    )
}

fn fs_binary(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("out")).expect("out dir");
    std::fs::write(dir.join("keys-fs.toml"), fs_workflow(dir)).expect("workflow");
    let out = dir.join("keys-fs");
    support::agentd_build(dir, "keys-fs.toml", &out, &[]);
    out
}

#[test]
fn loop_budgets_jitter_fs_write_budget_and_a_rotated_json_log_act_in_a_built_binary() {
    let dir = scratch("keys-e2e-fs");
    let binary = fs_binary(&dir);
    let logs = dir.join("logs");

    // edges[].max_iterations = 3: bump runs 4 times (once, then once per loop).
    let out = run(&binary, &dir, &["--start", "loop"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let outcome = stdout_json(&out);
    assert_eq!(
        (&outcome["status"], &outcome["last_node"]),
        (&json!("completed"), &json!("check")),
        "{outcome}"
    );
    // logging.target + rotation: the JSON log is `main.log.YYYY-MM-DD-HH-MM`, never
    // `main.log` itself.
    assert!(
        !logs.join("main.log").exists(),
        "rotation = minutely wrote the unrotated path"
    );
    let rotated: Vec<String> = std::fs::read_dir(&logs)
        .expect("logs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("main.log."))
        .collect();
    assert!(!rotated.is_empty(), "no rotated main log in {logs:?}");
    for name in &rotated {
        let suffix = name.trim_start_matches("main.log.");
        let shape: String = suffix
            .chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect();
        assert_eq!(shape, "NNNN-NN-NN-NN-NN", "`{name}` is not a minutely file");
    }
    let main = json_lines(&logs, "main.log.");
    let visits = |node: &str| {
        events(&main, "node.completed")
            .into_iter()
            .filter(|l| l["span"]["node_id"] == node)
            .count()
    };
    assert_eq!(
        (visits("bump"), visits("check")),
        (4, 4),
        "max_iterations = 3 must allow exactly three loops: {main:#?}"
    );

    // budget.max_fs_write_mb = 1: two 400 KiB writes fit ...
    let content = "x".repeat(400 * 1024);
    let input = |tag: &str, content: &str| {
        json!({
            "first": dir.join(format!("out/{tag}-1.txt")),
            "second": dir.join(format!("out/{tag}-2.txt")),
            "content": content,
        })
        .to_string()
    };
    // (Inputs this large go through a file: one argument is at most 128 KiB.)
    let small_file = dir.join("small-input.json");
    std::fs::write(&small_file, input("small", &content)).expect("input file");
    let out = run(
        &binary,
        &dir,
        &[
            "--start",
            "write",
            "--input-file",
            &small_file.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(dir.join("out/small-2.txt").exists());
    // ... two 600 KiB writes do not: the second is refused whole, exit 5.
    let content = "y".repeat(600 * 1024);
    let input_file = dir.join("big-input.json");
    std::fs::write(&input_file, input("big", &content)).expect("input file");
    let out = run(
        &binary,
        &dir,
        &[
            "--start",
            "write",
            "--input-file",
            &input_file.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        std::fs::metadata(dir.join("out/big-1.txt"))
            .map(|m| m.len())
            .ok(),
        Some(600 * 1024),
        "the first write fits"
    );
    assert!(
        !dir.join("out/big-2.txt").exists(),
        "a write crossing max_fs_write_mb must not happen, not even in part"
    );
    let audit = json_lines(&logs, "audit.jsonl");
    let denied = events(&audit, "budget.fs_write_denied");
    assert_eq!(denied.len(), 1, "{audit:#?}");

    // nodes[].retry.jitter = 0.5: five waits, each in [0.5, 1.5] x 100 ms x attempt,
    // not all of them exactly the unjittered wait.
    std::fs::write(dir.join("out/blocker"), "a file, not a directory").expect("blocker");
    let path = dir.join("out/blocker/inside.txt").display().to_string();
    let out = run(
        &binary,
        &dir,
        &[
            "--start",
            "retry",
            "--input",
            &json!({ "path": path }).to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let audit = json_lines(&logs, "audit.jsonl");
    let retries = events(&audit, "node.retry");
    assert_eq!(retries.len(), 5, "six attempts wait five times: {audit:#?}");
    let mut jittered = 0;
    for retry in &retries {
        let field = |k: &str| {
            retry
                .get(k)
                .or_else(|| retry["fields"].get(k))
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("no `{k}` in {retry}"))
        };
        let base = 100 * field("attempt");
        let wait = field("wait_ms");
        assert!(
            base / 2 <= wait && wait <= base * 3 / 2,
            "wait {wait} ms outside 1 +- 0.5 of {base} ms: {retry}"
        );
        if wait != base {
            jittered += 1;
        }
    }
    assert!(
        jittered > 0,
        "jitter = 0.5 left every wait exactly backoff_ms x attempt: {retries:#?}"
    );
    // include_reason defaults to false: the reason is redacted in the audit sink.
    assert!(
        retries.iter().all(|r| r.to_string().contains("<redacted>")),
        "{retries:#?}"
    );
}

// ------------------------------------------------------------ keys-effects

fn effects_workflow(dir: &Path) -> String {
    format!(
        r#"name = "keys_effects"

[logging]
enabled = false

[logging.audit]
target = "file:{dir}/audit.jsonl"
include_reason = true

[budget]
max_run_time_secs = 1

[policy.http]
urls = ["http://127.0.0.1:*"]
methods = ["POST"]

[policy.shell]
commands = ["/usr/bin/sleep"]

# post: the body is `trigger.order` only, then the run fails with a reason.
[[start_nodes]]
name = "post"
source = "manual"
entry_node = "send"

[[nodes]]
id = "send"
type = "http_request"
method = "post"
url_from = "trigger.url"
body_from = "trigger.order"

[[nodes]]
id = "rejected"
type = "fail"
reason = "order rejected downstream"

[[edges]]
from = "send"
to = "rejected"

[[edges]]
from = "send"
when = "error"
to = "rejected"

# slow: a 2 s command, then a node the 1 s run budget never reaches.
[[start_nodes]]
name = "slow"
source = "manual"
entry_node = "secs"

[[nodes]]
id = "secs"
type = "parse_json"
input_from = "trigger.secs"

[[nodes]]
id = "nap"
type = "shell_run"
command = "/usr/bin/sleep"
args_from = "secs.parsed"
timeout_secs = 10

[[nodes]]
id = "after"
type = "parse_json"
input_from = "trigger.secs"

[[edges]]
from = "secs"
to = "nap"

[[edges]]
from = "nap"
to = "after"

[[edges]]
from = "nap"
when = "error"
to = "after"
"#,
        dir = dir.display()
    )
}

#[test]
fn body_from_run_time_budget_disabled_logging_and_audit_reasons_act_in_a_built_binary() {
    let dir = scratch("keys-e2e-effects");
    std::fs::write(dir.join("keys-effects.toml"), effects_workflow(&dir)).expect("workflow");
    let binary = dir.join("keys-effects");
    support::agentd_build(&dir, "keys-effects.toml", &binary, &[]);
    let upstream = Stub::start("200 OK", "{}", None);
    let port = upstream.port;

    // body_from = "trigger.order": the server gets that value, compact JSON, and
    // nothing else of the input.
    let input = json!({
        "url": format!("http://127.0.0.1:{port}/orders"),
        "order": {"sku": "A-7", "qty": 2},
        "not_sent": "internal note",
    });
    let out = run(
        &binary,
        &dir,
        &["--start", "post", "--input", &input.to_string()],
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "the run ends at a fail node: {out:?}"
    );
    let got = upstream.bodies();
    assert_eq!(got.len(), 1, "{got:?}");
    let body: Value = serde_json::from_str(&got[0]).expect("the body is JSON");
    assert_eq!(body, json!({"sku": "A-7", "qty": 2}));
    assert!(!got[0].contains("internal note"));

    // logging.enabled = false: no main-log line on stderr, although the
    // workflow.failed event is at the default `warn` level ...
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("workflow.failed") && !stderr.contains("WARN"),
        "the main log is off, yet stderr has:\n{stderr}"
    );
    // ... while the audit sink keeps it, with its reason (include_reason = true).
    let audit = json_lines(&dir, "audit.jsonl");
    let failed = events(&audit, "workflow.failed");
    assert_eq!(failed.len(), 1, "{audit:#?}");
    assert!(
        failed[0].to_string().contains("order rejected downstream"),
        "include_reason = true must keep the reason: {}",
        failed[0]
    );

    // budget.max_run_time_secs = 1: a 2 s command runs to its end (a running node is
    // not interrupted), then the deadline ends the run `timed_out` before `after`;
    // exit 5. The default deadline (120 s) would let it complete.
    let started = Instant::now();
    let out = run(
        &binary,
        &dir,
        &["--start", "slow", "--input", r#"{"secs": "[\"2\"]"}"#],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let outcome = stdout_json(&out);
    assert_eq!(outcome["status"], "timed_out", "{outcome}");
    assert_eq!(outcome["last_node"], "nap", "{outcome}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let audit = json_lines(&dir, "audit.jsonl");
    let exceeded = events(&audit, "budget.run_time_exceeded");
    assert_eq!(exceeded.len(), 1, "{audit:#?}");
    assert!(
        exceeded[0].to_string().contains("\"max_run_time_secs\":1"),
        "{}",
        exceeded[0]
    );
}
