//! End to end: the long-lived triggers of a workflow built by the real `agentd`,
//! run as a service with no HTTP routes — a `cron` schedule, an `interval` and
//! two `fs_watch` triggers on scratch directories. Each trigger names its own
//! start node, whose nodes write the run's `trigger` to `out/<start>-<tick>.json`,
//! so every assertion reads what a run really received: which start node ran,
//! when, and for which file event.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

mod support;

use support::{Scratch, Served, agentd_build, scratch};

/// One start node per trigger: render `out/<name>-<tick>.json` from the trigger,
/// then write the trigger there.
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

fn workflow(dir: &Path) -> String {
    let out = dir.join("out");
    let mut text = format!(
        r#"name = "triggers_e2e"

[policy.fs]
read = ["{dir}/**"]
write = ["{out}/**"]

# Every even second (6 fields: seconds first).
[[triggers]]
type = "cron"
schedule = "*/2 * * * * *"
start_node = "on_cron"

[[triggers]]
type = "interval"
every = "1s"
start_node = "on_interval"

# Flat: only `inbox` itself, creations and data changes, settled for 1 s.
[[triggers]]
type = "fs_watch"
path = "{dir}/inbox"
events = ["create", "modify"]
debounce_ms = 1000
start_node = "on_flat"

# Recursive: the whole `tree`, removals only, the default debounce.
[[triggers]]
type = "fs_watch"
path = "{dir}/tree"
recursive = true
events = ["remove"]
start_node = "on_tree"
"#,
        dir = dir.display(),
        out = out.display()
    );
    for name in ["on_cron", "on_interval", "on_flat", "on_tree"] {
        text.push_str(&start(name, &out));
    }
    text
}

/// The service (no HTTP routes) in `dir`, once its start banner is out.
fn start_service(binary: &Path, dir: &Path) -> Served {
    let service = Served::spawn(Command::new(binary).current_dir(dir));
    service.wait_for("the start banner", || {
        service
            .stderr()
            .contains("running 4 triggers, no HTTP routes")
    });
    service
}

/// The triggers the runs of start node `name` received, by tick.
fn runs(out: &Path, name: &str) -> Vec<Value> {
    let mut found: Vec<(u64, Value)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let tick = file
                .strip_prefix(&format!("{name}-"))?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((tick, serde_json::from_str(&text).ok()?))
        })
        .collect();
    found.sort_by_key(|(tick, _)| *tick);
    found.into_iter().map(|(_, v)| v).collect()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn fired_at(run: &Value) -> u64 {
    run["fired_at_unix_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no fired_at_unix_ms in {run}"))
}

fn service_dir() -> Scratch {
    let dir = scratch("service");
    for sub in ["out", "inbox/sub", "tree/deep"] {
        std::fs::create_dir_all(dir.join(sub)).expect("scratch dir");
    }
    dir
}

#[test]
fn cron_interval_and_fs_watch_triggers_fire_their_own_start_nodes_as_configured() {
    let dir = service_dir();
    std::fs::write(dir.join("triggers.toml"), workflow(&dir)).expect("write workflow");
    let binary = dir.join("triggers-bin");
    agentd_build(&dir, "triggers.toml", &binary, &[]);
    // A file that exists before the service starts, to remove later.
    std::fs::write(dir.join("tree/deep/old.txt"), "old").expect("seed file");

    let started = unix_ms();
    let service = start_service(&binary, &dir);
    let out = dir.join("out");

    // cron: `*/2 * * * * *` fires only on even seconds, the run's trigger names it.
    service.wait_for("two cron runs", || runs(&out, "on_cron").len() >= 2);
    let cron = runs(&out, "on_cron");
    for run in &cron {
        assert_eq!(run["kind"], "cron", "{run}");
        assert_eq!(run["schedule"], "*/2 * * * * *", "{run}");
        assert_eq!(
            (fired_at(run) / 1000) % 2,
            0,
            "a `*/2` schedule fired on an odd second: {run}"
        );
    }
    let gap = fired_at(&cron[1]) - fired_at(&cron[0]);
    assert!(
        (1500..=2600).contains(&gap),
        "consecutive `*/2` fires {gap} ms apart: {cron:?}"
    );

    // interval: the first run `every` after the start, the next `every` after it ends.
    service.wait_for("two interval runs", || runs(&out, "on_interval").len() >= 2);
    let interval = runs(&out, "on_interval");
    for run in &interval {
        assert_eq!(run["kind"], "interval", "{run}");
        assert_eq!(run["every_ms"], 1000, "{run}");
    }
    assert!(
        fired_at(&interval[0]) >= started + 900,
        "the first interval run came before `every` passed: started {started}, {}",
        interval[0]
    );
    let gap = fired_at(&interval[1]) - fired_at(&interval[0]);
    assert!(
        gap >= 1000,
        "interval runs only {gap} ms apart with every = 1s"
    );

    // fs_watch, flat: four writes 300 ms apart to one file settle into one run,
    // 1 s (debounce_ms) after the last; the default 250 ms would fire per write.
    let note = dir.join("inbox/note.txt");
    for i in 0..4 {
        std::fs::write(&note, format!("draft {i}")).expect("write note");
        std::thread::sleep(Duration::from_millis(300));
    }
    let last_write = unix_ms() - 300;
    // Not recursive: a file below `inbox/sub` starts nothing.
    std::fs::write(dir.join("inbox/sub/nested.txt"), "below").expect("nested");
    service.wait_for("the flat fs_watch run", || {
        !runs(&out, "on_flat").is_empty()
    });
    // Leave time for any further (wrong) run of the burst or the nested file.
    std::thread::sleep(Duration::from_millis(2000));
    let flat = runs(&out, "on_flat");
    assert_eq!(
        flat.len(),
        1,
        "a burst within debounce_ms must start one run: {flat:?}"
    );
    assert_eq!(flat[0]["kind"], "fs_watch");
    assert_eq!(flat[0]["path"], note.display().to_string(), "{}", flat[0]);
    assert_eq!(
        flat[0]["event"], "modify",
        "the last kind wins: {}",
        flat[0]
    );
    assert!(
        fired_at(&flat[0]) >= last_write + 900,
        "fired before debounce_ms settled: last write {last_write}, {}",
        flat[0]
    );

    // fs_watch, recursive and filtered: a creation deep in `tree` is not a
    // `remove`, so it starts nothing; removing the old file starts one run.
    std::fs::write(dir.join("tree/deep/new.txt"), "new").expect("create in tree");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        runs(&out, "on_tree").is_empty(),
        "a create fired a remove-only trigger: {:?}",
        runs(&out, "on_tree")
    );
    let old = dir.join("tree/deep/old.txt");
    std::fs::remove_file(&old).expect("remove old");
    service.wait_for("the tree fs_watch run", || {
        !runs(&out, "on_tree").is_empty()
    });
    let tree = runs(&out, "on_tree");
    assert_eq!(tree[0]["event"], "remove", "{}", tree[0]);
    assert_eq!(tree[0]["path"], old.display().to_string(), "{}", tree[0]);

    // Each start node ran only for its own trigger.
    for (name, kind) in [
        ("on_cron", "cron"),
        ("on_interval", "interval"),
        ("on_flat", "fs_watch"),
        ("on_tree", "fs_watch"),
    ] {
        for run in runs(&out, name) {
            assert_eq!(run["kind"], kind, "{name} ran for {run}");
        }
    }
}
