//! The state directory on a real filesystem: atomic saves, modes, loads of
//! good and bad files, the program check, listing, retention and locks.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::*;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentd-checkpoint-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn state(&self) -> StateDir {
        match StateDir::create(&self.0) {
            Ok(dir) => dir,
            Err(e) => panic!("cannot create {}: {e}", self.0.display()),
        }
    }

    /// File names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sample(run_id: &str) -> Checkpoint {
    let mut outputs = Map::new();
    outputs.insert(
        "trigger".into(),
        json!({"kind": "manual", "service": "api"}),
    );
    outputs.insert("prepare".into(), json!({"rendered": "plan"}));
    Checkpoint {
        run_id: run_id.to_owned(),
        workflow: "deploy".to_owned(),
        start_node: "main".to_owned(),
        trigger_kind: TriggerKind::Manual,
        trigger_input: json!({"service": "api"}),
        node_outputs: outputs,
        paused_at: Some("approve".to_owned()),
        resume_node: Some("apply".to_owned()),
        reason: Some("look first".to_owned()),
        awaiting_approval: true,
        format_version: FORMAT_VERSION,
        program_hash: Some("abc123".to_owned()),
        saved_unix: unix_secs(SystemTime::now()),
        node_visits: Map::new(),
    }
}

fn save(dir: &StateDir, checkpoint: &Checkpoint) {
    if let Err(e) = dir.save(checkpoint) {
        panic!("save {}: {e}", checkpoint.run_id);
    }
}

const DAY: u64 = 24 * 60 * 60;

#[test]
fn save_writes_a_0600_file_and_leaves_no_temp_file_behind() -> Result<(), CheckpointError> {
    let scratch = Scratch::new("save");
    let dir = scratch.state();
    save(&dir, &sample("exec-1"));
    assert_eq!(scratch.names(), ["exec-1.json"]);
    let path = dir.checkpoint_path("exec-1")?;
    let mode = fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .ok();
    assert_eq!(mode, Some(0o600), "checkpoints hold node outputs");
    let dir_mode = fs::metadata(&scratch.0)
        .map(|m| m.permissions().mode() & 0o777)
        .ok();
    assert_eq!(dir_mode, Some(0o700));
    let text = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text.starts_with("{\n  \"run_id\": \"exec-1\","),
        "pretty JSON in spec order: {text}"
    );
    Ok(())
}

#[test]
fn a_checkpoint_load_would_refuse_is_not_saved() -> Result<(), CheckpointError> {
    let scratch = Scratch::new("too-large");
    let dir = scratch.state();
    save(&dir, &sample("exec-1"));
    let mut big = sample("exec-1");
    // Deep nesting: pretty printing indents every element by its depth, so a
    // small value becomes a huge file. Serialising must stop at the cap.
    let mut nested = json!(vec![0; 300_000]);
    for _ in 0..120 {
        nested = json!([nested]);
    }
    big.node_outputs.insert("deep".into(), nested);
    let refused = dir.save(&big);
    assert!(
        matches!(refused, Err(CheckpointError::TooLarge { .. })),
        "{refused:?}"
    );
    // The earlier checkpoint is untouched and still loads.
    assert_eq!(dir.load("exec-1")?.node_outputs.get("deep"), None);
    assert_eq!(scratch.names(), ["exec-1.json"]);
    Ok(())
}

#[test]
fn saving_again_replaces_the_checkpoint_whole() -> Result<(), CheckpointError> {
    let scratch = Scratch::new("replace");
    let dir = scratch.state();
    save(&dir, &sample("exec-2"));
    let mut progress = sample("exec-2");
    progress.awaiting_approval = false;
    progress.resume_node = Some("later".to_owned());
    save(&dir, &progress);
    assert_eq!(scratch.names(), ["exec-2.json"]);
    assert_eq!(dir.load("exec-2")?, progress);
    Ok(())
}

#[test]
fn a_failed_save_keeps_the_old_file_and_removes_its_temp_file() {
    let scratch = Scratch::new("failed-save");
    let dir = scratch.state();
    // A directory where the checkpoint should go: the rename must fail.
    let blocker = scratch.0.join("exec-3.json");
    assert!(fs::create_dir(&blocker).is_ok());
    assert!(fs::write(blocker.join("keep"), "x").is_ok());
    match dir.save(&sample("exec-3")) {
        Err(CheckpointError::Write { path, .. }) => assert_eq!(path, blocker),
        other => panic!("expected a write error, got {other:?}"),
    }
    assert_eq!(scratch.names(), ["exec-3.json"], "no temp file left behind");
    assert!(blocker.join("keep").is_file());
}

#[test]
fn load_round_trips_every_field() -> Result<(), CheckpointError> {
    let scratch = Scratch::new("round-trip");
    let dir = scratch.state();
    let original = sample("exec-4");
    save(&dir, &original);
    assert_eq!(dir.load("exec-4")?, original);
    Ok(())
}

#[test]
fn a_checkpoint_holds_exactly_the_spec_fields_and_the_agentd_extensions() {
    let value = serde_json::to_value(sample("exec-5")).unwrap_or_default();
    let keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    // Nothing else (no environment, no headers, no configuration) is written.
    let mut expected = vec![
        "run_id",
        "workflow",
        "start_node",
        "trigger_kind",
        "trigger_input",
        "node_outputs",
        "paused_at",
        "resume_node",
        "reason",
        "awaiting_approval",
        "format_version",
        "program_hash",
        "saved_unix",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn a_dialect_checkpoint_without_awaiting_approval_reads_as_paused() {
    let text = r#"{"run_id":"exec-6","workflow":"w","start_node":"main",
        "trigger_kind":"http","trigger_input":null,"node_outputs":{},
        "paused_at":"p","resume_node":null,"reason":null}"#;
    let parsed: Result<Checkpoint, _> = serde_json::from_str(text);
    let Ok(parsed) = parsed else {
        panic!("dialect checkpoint did not parse: {parsed:?}");
    };
    assert!(parsed.awaiting_approval);
    assert_eq!(parsed.trigger_kind, TriggerKind::Http);
    assert_eq!(parsed.format_version, 0);
    assert_eq!(parsed.program_hash, None);
}

#[test]
fn load_reports_missing_corrupt_oversized_and_misnamed_files() {
    let scratch = Scratch::new("bad-files");
    let dir = scratch.state();
    assert!(matches!(
        dir.load("exec-none"),
        Err(CheckpointError::NotFound { .. })
    ));

    assert!(fs::write(scratch.0.join("exec-torn.json"), "{\"run_id\": \"exec-to").is_ok());
    let err = dir.load("exec-torn");
    assert!(
        matches!(err, Err(CheckpointError::Corrupt { .. })),
        "{err:?}"
    );

    // Sparse, so the test writes nothing of that size.
    let big = File::create(scratch.0.join("exec-big.json"));
    assert!(
        big.and_then(|f| f.set_len(MAX_CHECKPOINT_BYTES + 1))
            .is_ok()
    );
    let err = dir.load("exec-big");
    assert!(
        matches!(err, Err(CheckpointError::TooLarge { .. })),
        "{err:?}"
    );

    save(&dir, &sample("exec-7"));
    assert!(fs::rename(scratch.0.join("exec-7.json"), scratch.0.join("exec-8.json")).is_ok());
    let err = dir.load("exec-8");
    assert!(
        matches!(&err, Err(CheckpointError::RunIdMismatch { found, .. }) if found == "exec-7"),
        "{err:?}"
    );
}

#[test]
fn run_ids_that_are_not_plain_names_are_refused() {
    let scratch = Scratch::new("ids");
    let dir = scratch.state();
    let long = "x".repeat(MAX_RUN_ID_LEN + 1);
    for id in [
        "",
        "../etc/passwd",
        "a/b",
        ".hidden",
        "..",
        "sp ace",
        "ü",
        long.as_str(),
    ] {
        assert!(
            matches!(dir.load(id), Err(CheckpointError::InvalidRunId(_))),
            "accepted `{id}`"
        );
    }
    assert!(check_run_id("exec-19a2b-3f-1").is_ok());
    assert!(check_run_id("run_2.b").is_ok());
}

#[test]
fn a_different_build_or_workflow_is_refused_naming_both() {
    let checkpoint = sample("exec-9");
    assert!(checkpoint.check_program("deploy", "abc123").is_ok());

    let err = checkpoint
        .check_program("deploy", "def456")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("abc123") && err.contains("def456"),
        "both hashes named: {err}"
    );

    let err = checkpoint.check_program("other", "abc123");
    assert!(
        matches!(&err, Err(CheckpointError::WorkflowMismatch { found, expected, .. })
            if found == "deploy" && expected == "other"),
        "{err:?}"
    );

    let mut unhashed = sample("exec-9");
    unhashed.program_hash = None;
    let err = unhashed.check_program("deploy", "abc123");
    assert!(
        matches!(&err, Err(CheckpointError::ProgramMismatch { found, .. }) if found == "none"),
        "{err:?}"
    );

    let mut newer = sample("exec-9");
    newer.format_version = FORMAT_VERSION + 1;
    assert!(matches!(
        newer.check_program("deploy", "abc123"),
        Err(CheckpointError::UnsupportedFormat { .. })
    ));
}

#[test]
fn list_is_sorted_skips_other_files_and_reports_unreadable_ones() {
    let scratch = Scratch::new("list");
    let dir = scratch.state();
    save(&dir, &sample("exec-b"));
    let mut progress = sample("exec-a");
    progress.awaiting_approval = false;
    progress.resume_node = None;
    save(&dir, &progress);
    assert!(fs::write(scratch.0.join("exec-c.json"), "not json").is_ok());
    assert!(fs::create_dir(scratch.0.join("idempotency")).is_ok());
    assert!(fs::write(scratch.0.join(".exec-d.json.tmp-1-1"), "{}").is_ok());
    assert!(fs::write(scratch.0.join("notes.txt"), "x").is_ok());

    let listed = dir.list().unwrap_or_default();
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["exec-a", "exec-b", "exec-c"]);
    let lines: Vec<String> = listed
        .iter()
        .filter_map(|(_, c)| c.as_ref().ok().map(Checkpoint::list_line))
        .collect();
    assert_eq!(
        lines,
        [
            "exec-a  recoverable  workflow=deploy resume_node=-",
            "exec-b  paused  workflow=deploy resume_node=apply",
        ]
    );
    assert!(matches!(listed[2].1, Err(CheckpointError::Corrupt { .. })));
}

#[test]
fn retention_prunes_old_checkpoints_of_this_workflow_only() {
    let scratch = Scratch::new("prune");
    let dir = scratch.state();
    let now = SystemTime::now();
    let at = |id: &str, age_days: u64, awaiting: bool, workflow: &str| {
        let mut c = sample(id);
        c.saved_unix = unix_secs(now) - age_days * DAY;
        c.awaiting_approval = awaiting;
        c.workflow = workflow.to_owned();
        c
    };
    save(&dir, &at("old-progress", 10, false, "deploy"));
    save(&dir, &at("old-paused", 10, true, "deploy"));
    save(&dir, &at("young-paused", 2, true, "deploy"));
    save(&dir, &at("old-other", 40, false, "other"));
    let busy = at("old-busy", 10, false, "deploy");
    save(&dir, &busy);
    assert!(fs::write(scratch.0.join("old-corrupt.json"), "{").is_ok());
    let held = dir.claim("old-busy");
    assert!(held.is_ok(), "{held:?}");

    let pruned = match dir.prune("deploy", Retention::days(7), now) {
        Ok(p) => p,
        Err(e) => panic!("prune: {e}"),
    };
    let mut removed = pruned.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        [
            ("old-paused".to_owned(), "paused"),
            ("old-progress".to_owned(), "recoverable")
        ]
    );
    assert!(pruned.problems.is_empty(), "{:?}", pruned.problems);
    let left: Vec<String> = dir
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        left,
        ["old-busy", "old-corrupt", "old-other", "young-paused"]
    );

    // Once its holder is gone, the old run goes too.
    drop(held);
    let pruned = dir.prune("deploy", Retention::days(7), now);
    assert_eq!(
        pruned.map(|p| p.removed).unwrap_or_default(),
        [("old-busy".to_owned(), "recoverable")]
    );
}

#[test]
fn retention_of_zero_days_keeps_everything_and_dialect_files_age_by_mtime() {
    let scratch = Scratch::new("prune-zero");
    let dir = scratch.state();
    let mut dialect = sample("exec-old");
    dialect.saved_unix = 0;
    save(&dir, &dialect);
    let later = SystemTime::now() + Duration::from_secs(100 * DAY);
    let kept = dir.prune("deploy", Retention::days(0), later);
    assert!(kept.map(|p| p.removed.is_empty()).unwrap_or(false));
    let pruned = dir.prune("deploy", Retention::days(30), later);
    assert_eq!(
        pruned.map(|p| p.removed).unwrap_or_default(),
        [("exec-old".to_owned(), "paused")]
    );
}

#[test]
fn prune_removes_only_stale_temp_files() {
    let scratch = Scratch::new("prune-temps");
    let dir = scratch.state();
    let stale = scratch.0.join(".exec-1.json.tmp-9-0");
    let fresh = scratch.0.join(".exec-2.json.tmp-9-1");
    assert!(fs::write(&stale, "{").is_ok());
    assert!(fs::write(&fresh, "{").is_ok());
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let aged = File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(two_hours_ago));
    assert!(aged.is_ok(), "{aged:?}");
    assert!(
        dir.prune("deploy", Retention::default(), SystemTime::now())
            .is_ok()
    );
    assert!(!stale.exists(), "a crash's leftover temp file is removed");
    assert!(fresh.exists(), "a save in progress is left alone");
}

#[test]
fn a_claim_is_exclusive_until_dropped_and_cleans_up_its_lock_file() {
    let scratch = Scratch::new("claim");
    let dir = scratch.state();
    let first = dir.claim("exec-1");
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(scratch.names(), [".exec-1.lock"]);
    assert!(matches!(
        dir.claim("exec-1"),
        Err(CheckpointError::Busy { .. })
    ));
    assert!(dir.claim("exec-2").is_ok(), "other runs are independent");
    drop(first);
    assert!(scratch.names().is_empty(), "lock files are removed");
    assert!(dir.claim("exec-1").is_ok());
}

#[test]
fn an_existing_state_dir_must_exist_and_be_a_directory() {
    let scratch = Scratch::new("existing");
    assert!(matches!(
        StateDir::existing(&scratch.0),
        Err(CheckpointError::Dir { .. })
    ));
    let dir = scratch.state();
    assert_eq!(StateDir::existing(&scratch.0).ok(), Some(dir));
    let file = scratch.0.join("file");
    assert!(fs::write(&file, "x").is_ok());
    assert!(StateDir::existing(&file).is_err());
    assert!(StateDir::create(&file).is_err());
}

#[test]
fn remove_says_whether_there_was_a_checkpoint() -> Result<(), CheckpointError> {
    let scratch = Scratch::new("remove");
    let dir = scratch.state();
    save(&dir, &sample("exec-1"));
    assert!(dir.remove("exec-1")?);
    assert!(!dir.remove("exec-1")?);
    assert!(scratch.names().is_empty());
    Ok(())
}

/// The hand mapping reads files exactly as the serde derive would: the
/// derive (kept for this test) is the reference.
#[test]
fn from_json_agrees_with_the_serde_derive() {
    let full = serde_json::to_value(sample("exec-1")).unwrap_or_default();
    let minimal = json!({
        "run_id": "r", "workflow": "w", "start_node": "s", "trigger_kind": "http",
        "trigger_input": null, "node_outputs": {}, "paused_at": null,
        "resume_node": null, "reason": null, "extra_key": [1, 2]
    });
    for good in [full, minimal] {
        let derived: Result<Checkpoint, _> = serde_json::from_value(good.clone());
        let mapped = Checkpoint::from_json(good.clone());
        assert_eq!(mapped.as_ref().ok(), derived.as_ref().ok(), "{good}");
        assert!(mapped.is_ok(), "{good}");
    }
    let minimal = Checkpoint::from_json(json!({
        "run_id": "r", "workflow": "w", "start_node": "s", "trigger_kind": "event",
        "trigger_input": {"a": 1}, "node_outputs": {"trigger": {}}
    }));
    let minimal = minimal.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        minimal.awaiting_approval,
        "awaiting_approval defaults to true"
    );
    assert_eq!((minimal.format_version, minimal.saved_unix), (0, 0));

    for (bad, why) in [
        (json!([]), "expected a JSON object"),
        (json!({"workflow": "w"}), "missing field `run_id`"),
        (
            json!({"run_id": 7, "workflow": "w", "start_node": "s", "trigger_kind": "manual",
                   "trigger_input": null, "node_outputs": {}}),
            "`run_id` is not a string",
        ),
        (
            json!({"run_id": "r", "workflow": "w", "start_node": "s", "trigger_kind": "cron",
                   "trigger_input": null, "node_outputs": {}}),
            "`trigger_kind` `cron` is not manual, http or event",
        ),
        (
            json!({"run_id": "r", "workflow": "w", "start_node": "s", "trigger_kind": "manual",
                   "node_outputs": {}}),
            "missing field `trigger_input`",
        ),
        (
            json!({"run_id": "r", "workflow": "w", "start_node": "s", "trigger_kind": "manual",
                   "trigger_input": null, "node_outputs": {}, "saved_unix": -1}),
            "`saved_unix` is not a whole number",
        ),
    ] {
        let derived: Result<Checkpoint, _> = serde_json::from_value(bad.clone());
        assert!(derived.is_err(), "the derive accepts {bad}");
        assert_eq!(Checkpoint::from_json(bad).err().as_deref(), Some(why));
    }
}

#[test]
fn node_visits_round_trip_and_only_whole_numbers_are_read() {
    let mut visited = sample("exec-v");
    visited.node_visits.insert("prepare".into(), json!(3));
    let value = serde_json::to_value(&visited).unwrap_or_default();
    assert_eq!(value["node_visits"], json!({"prepare": 3}));
    assert_eq!(Checkpoint::from_json(value).ok(), Some(visited));
    // Absent when every node ran once: the file format is unchanged then.
    let once = serde_json::to_value(sample("exec-v")).unwrap_or_default();
    assert!(once.get("node_visits").is_none(), "{once}");
    let mut bad = once;
    bad["node_visits"] = json!({"prepare": "x"});
    assert_eq!(
        Checkpoint::from_json(bad).err().as_deref(),
        Some("`node_visits` is not an object of whole numbers")
    );
}
