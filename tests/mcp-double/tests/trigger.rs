//! End to end: `mcp.resource.updated` and `mcp.resource.created` triggers in a
//! serve-mode binary built from a workflow, against `mcp-double --notify` as a
//! real child. The double writes its notifications from a thread of its own,
//! while no call is running; each trigger's start node writes the run's
//! `trigger` to `out/<start>-<tick>.json`, so the assertions read what each run
//! really received.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentd_compiler::build::{self, BuildOptions, Linking};
use agentd_compiler::codegen::CodegenOptions;
use agentd_compiler::codegen::features::RuntimeFeature;
use agentd_compiler::load::LoadOptions;
use serde_json::Value;

const DOUBLE: &str = env!("CARGO_BIN_EXE_mcp-double");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root resolves")
}

/// A start node that writes its `trigger` to `out/<name>-<tick>.json`.
fn start(name: &str, out: &Path) -> String {
    format!(
        r#"
[[start_nodes]]
name = "{name}"
source = "event"
entry_node = "{name}_path"

[[nodes]]
id = "{name}_path"
type = "template_render"
template = "{out}/{name}-{{{{tick}}}}.json"
input_from = "trigger"

[[nodes]]
id = "{name}_save"
type = "write_file"
path_from = "{name}_path.rendered"
content_from = "trigger"

[[edges]]
from = "{name}_path"
to = "{name}_save"
"#,
        out = out.display()
    )
}

fn workflow(out: &Path) -> String {
    format!(
        r#"name = "mcp_triggers"

[policy.fs]
write = ["{out}/**"]

[policy.mcp]
servers = ["double"]

[[mcp_servers]]
name = "double"
command = ["{DOUBLE}", "--notify"]
allow_resources = ["mem://*"]

# An exact URI: subscribed with resources/subscribe.
[[triggers]]
type = "mcp.resource.updated"
server = "double"
resource = "mem://hello"
start_node = "on_updated"

# A pattern: every URI resources/list shows that was not listed at start.
[[triggers]]
type = "mcp.resource.created"
server = "double"
resource = "mem://*"
start_node = "on_created"
{updated}{created}"#,
        out = out.display(),
        updated = start("on_updated", out),
        created = start("on_created", out),
    )
}

fn build_binary(dir: &Path, text: &str) -> PathBuf {
    let wf = dir.join("wf.toml");
    std::fs::write(&wf, text).expect("write workflow");
    let compiled =
        agentd_compiler::compile(&wf, &LoadOptions::default(), &CodegenOptions::default());
    let diagnostics: Vec<String> = compiled
        .program
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    // The triggers fire: no "never fires" warning, no "unused server" one.
    assert!(
        !diagnostics.iter().any(|d| d.contains("key_has_no_effect")),
        "{diagnostics:?}"
    );
    let generated = compiled
        .generated
        .unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
    for f in [RuntimeFeature::Serve, RuntimeFeature::Mcp] {
        assert!(
            generated.features.contains(&f),
            "feature {f} in {:?}",
            generated.features
        );
    }
    let exe = dir.join("mcp-triggers-bin");
    let mut opts = BuildOptions::new(exe.clone());
    opts.cache_dir = Some(workspace().join("target/agentd-cache"));
    opts.linking = Linking::Dynamic;
    opts.progress = false;
    build::build(&generated, &opts).unwrap_or_else(|e| panic!("agentd build: {e}"));
    exe
}

/// The service, killed on drop; its stderr is collected.
struct Service {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Service {
    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(exe: &Path, dir: &Path) -> Service {
    let mut child = Command::new(exe)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the service");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr");
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    Service { child, stderr }
}

/// The `trigger` of every run of `start`, by tick.
fn fired(out: &Path, start: &str) -> Vec<Value> {
    let mut runs: Vec<(u64, Value)> = std::fs::read_dir(out)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let tick = name
                        .strip_prefix(&format!("{start}-"))?
                        .strip_suffix(".json")?
                        .parse::<u64>()
                        .ok()?;
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    Some((tick, serde_json::from_str(&text).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    runs.sort_by_key(|(t, _)| *t);
    runs.into_iter().map(|(_, v)| v).collect()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn resource_triggers_fire_their_start_nodes_with_the_uri_debounced_and_only_for_new_uris() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-triggers");
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("scratch dir");
    let exe = build_binary(&dir, &workflow(&out));
    let service = serve(&exe, &dir);

    // The double: a burst of five updates to mem://hello (one run), one to a
    // URI nobody subscribed to (none), one more 1.5 s later (a second run);
    // mem://new-1, then mem://new-2 announced twice (one run each), while
    // mem://hello, listed at start, never counts as created.
    let began = Instant::now();
    while (fired(&out, "on_updated").len() < 2 || fired(&out, "on_created").len() < 2)
        && began.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Anything extra would come within a debounce or two.
    std::thread::sleep(Duration::from_millis(1500));
    let log = service.stderr();
    let updated = fired(&out, "on_updated");
    assert_eq!(
        updated.len(),
        2,
        "updated runs: {updated:?}\nstderr:\n{log}"
    );
    for (i, run) in updated.iter().enumerate() {
        assert_eq!(field(run, "kind"), "mcp.resource.updated", "{run}");
        assert_eq!(field(run, "uri"), "mem://hello", "{run}");
        assert_eq!(field(run, "server"), "double", "{run}");
        assert_eq!(run.get("tick").and_then(Value::as_u64), Some(i as u64 + 1));
    }
    let created = fired(&out, "on_created");
    let uris: Vec<&str> = created.iter().map(|r| field(r, "uri")).collect();
    assert_eq!(uris, ["mem://new-1", "mem://new-2"], "stderr:\n{log}");
    assert!(
        created
            .iter()
            .all(|r| field(r, "kind") == "mcp.resource.created"),
        "{created:?}"
    );
}
