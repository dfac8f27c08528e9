//! Durable runs: checkpoints in a state directory (`--state-dir`) or, in a
//! fleet, in Redis (`--state-url`).
//!
//! Owns the checkpoint file format (docs/operations.md "Approval, resume and
//! checkpoints", plus this runtime's `format_version`, `program_hash`,
//! `saved_unix` and `node_visits`), the [`Checkpoints`] trait every
//! checkpoint store answers to (the engine never asks which one it has), the
//! state directory ([`StateDir`]: atomic saves, loads, listing, removal, the
//! retention rule, and the per-run [`Claim`] lock), the Redis store
//! (`RedisCheckpoints`, feature `fleet`; docs/operations.md "Fleet mode: many
//! replicas on Redis"), and
//! the mapping between a walk's context and a checkpoint. The engine decides
//! *when* to checkpoint and resume (docs/operations.md "Approval, resume and
//! checkpoints"); the CLI decides what to print.
//!
//! Guarantees:
//! - **No torn files.** A save writes a temp file in the same directory,
//!   fsyncs it, renames it over `<run_id>.json` and fsyncs the directory. A
//!   crash leaves either the old checkpoint or the new one, never a mix.
//! - **Private.** Checkpoints hold node outputs verbatim, so files are created
//!   `0600` and a directory this module creates is `0700`.
//! - **Same program only.** A checkpoint records the binary's program hash; a
//!   different build (or another workflow) refuses it, because node indices
//!   and outputs only mean something to the program that wrote them.
//! - **One resumer.** A run that writes or resumes a checkpoint holds an
//!   advisory lock (`.<run_id>.lock`, `flock`), so `--resume-incomplete`
//!   never picks up a run that is still going, and two resumers never race.
//!   The kernel drops the lock when a process dies, so a crash never wedges a
//!   run.
//!
//! This module must never hold secrets: a checkpoint is built only from the
//! run's trigger input and node outputs (which never contain secret values),
//! never from the environment, headers or configuration. It must never parse
//! workflow TOML and never run nodes.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::context::Frame;
use crate::graph::{GraphMeta, NodeIdx, NodeMeta, Slot, Source};

mod store;

pub use store::{Claim, Listed, Pruned, Retention, StateDir};

/// Where a run's checkpoints live: a state directory, or a store every
/// replica of a fleet shares. Reads go through the store; every write goes
/// through the run's [`RunLock`], so only the holder of a run can change it.
pub trait Checkpoints: Send + Sync + std::fmt::Debug {
    /// Take run `run_id`'s lock (non-blocking). Held by a run from its first
    /// checkpoint to its end, and by a resume from before it reads the
    /// checkpoint to its end.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Busy`] when another process holds it; why the
    /// store cannot be used otherwise.
    fn claim(&self, run_id: &str) -> Result<Box<dyn RunLock>, CheckpointError>;

    /// Read run `run_id`'s checkpoint.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::NotFound`], or why it cannot be read or trusted.
    fn load(&self, run_id: &str) -> Result<Checkpoint, CheckpointError>;

    /// Every checkpoint this store holds for this program, sorted by run id;
    /// one that cannot be read is listed with its error.
    ///
    /// # Errors
    ///
    /// Why the store cannot be listed.
    fn list(&self) -> Result<Vec<Listed>, CheckpointError>;

    /// Where the checkpoints are, for messages (a directory, or the state
    /// URL without its password).
    fn location(&self) -> String;

    /// Whether other processes (a fleet's replicas) share this store: runs
    /// then send `Idempotency-Key`s and a run whose replica died is taken
    /// over by another.
    fn shared(&self) -> bool {
        false
    }

    /// Runs in progress whose holder is gone (in a shared store: its
    /// replica died and its lease lapsed), for another process to take
    /// over with [`Checkpoints::claim`] (only one wins). A store of one
    /// process has none: `--resume-incomplete` is its operator's call.
    ///
    /// # Errors
    ///
    /// Why the store could not answer.
    fn orphans(&self) -> Result<Vec<String>, CheckpointError> {
        Ok(Vec::new())
    }
}

/// Ownership of one run in a [`Checkpoints`] store; dropping it lets go of
/// the run (another resumer may take it).
pub trait RunLock: Send {
    /// Save `checkpoint` (the run's newest state), replacing the previous one.
    ///
    /// # Errors
    ///
    /// Why it was not saved; the previous checkpoint is then intact.
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;

    /// Delete the run's checkpoint (the run ended); `Ok(false)` when there
    /// was none.
    ///
    /// # Errors
    ///
    /// Why it could not be deleted.
    fn remove(&mut self) -> Result<bool, CheckpointError>;
}

/// The checkpoint format this runtime writes and reads. Files without the
/// field (dialect 1's own) read as 0 and are refused with the program-hash
/// error, since they carry no hash.
pub const FORMAT_VERSION: u32 = 1;

/// Largest checkpoint file this runtime reads (node outputs are each capped
/// well below this by their producers).
pub const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// Default of `--checkpoint-retention-days`.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

/// Longest accepted run id (ids this runtime makes are about 30 bytes).
pub const MAX_RUN_ID_LEN: usize = 128;

/// Temp files older than this are leftovers of a crash mid-save.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// `trigger_kind` of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// CLI one-shot runs, schedules.
    Manual,
    /// HTTP routes.
    Http,
    /// `source = "event"` starts.
    Event,
}

impl From<Source> for TriggerKind {
    fn from(source: Source) -> Self {
        match source {
            Source::Manual => Self::Manual,
            Source::Http => Self::Http,
            Source::Event => Self::Event,
        }
    }
}

impl From<TriggerKind> for Source {
    fn from(kind: TriggerKind) -> Self {
        match kind {
            TriggerKind::Manual => Self::Manual,
            TriggerKind::Http => Self::Http,
            TriggerKind::Event => Self::Event,
        }
    }
}

/// One checkpoint file: `<state-dir>/<run_id>.json`, pretty JSON, fields in
/// dialect 1's order (docs/operations.md "Approval, resume and checkpoints") followed by this runtime's extensions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The run's execution id; also the file name.
    pub run_id: String,
    /// The top-level workflow's `name`.
    pub workflow: String,
    /// The start node the run began at.
    pub start_node: String,
    /// The run's trigger kind.
    pub trigger_kind: TriggerKind,
    /// The raw trigger input (without `kind`).
    pub trigger_input: Value,
    /// Outputs by node id, plus `trigger` (the flattened trigger entry).
    pub node_outputs: Map<String, Value>,
    /// The pause node, or for a progress snapshot the node just done
    /// (`None` in the snapshot written before the first node runs).
    pub paused_at: Option<String>,
    /// Where the walk continues; `None` = the run completes on resume.
    pub resume_node: Option<String>,
    /// The pause node's `reason`.
    pub reason: Option<String>,
    /// `true` for a pause waiting for a human; `false` for a progress
    /// snapshot (`--checkpoint-each-node`).
    #[serde(default = "default_awaiting")]
    pub awaiting_approval: bool,
    /// agentd: the file format ([`FORMAT_VERSION`]); 0 when absent.
    #[serde(default)]
    pub format_version: u32,
    /// agentd: [`crate::graph::BuildInfo::program_hash`] of the binary that
    /// wrote it.
    #[serde(default)]
    pub program_hash: Option<String>,
    /// agentd: when it was written (Unix seconds; 0 when absent). Drives
    /// retention.
    #[serde(default)]
    pub saved_unix: u64,
    /// agentd: how many times each node of the top-level walk has run (only
    /// nodes that ran more than once), so a resumed run names the next visit
    /// of a loop the same as the interrupted one did (the visit is part of
    /// an `http_request`'s `Idempotency-Key`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub node_visits: Map<String, Value>,
}

fn default_awaiting() -> bool {
    true
}

impl Checkpoint {
    /// The checkpoint a parsed file holds, with serde's rules for the derive
    /// (unknown keys ignored; the defaults of the `#[serde(default)]` fields),
    /// mapped by hand: a typed serde_json deserializer for this one struct
    /// cost every binary 45 KB.
    ///
    /// # Errors
    ///
    /// A message naming the missing or mistyped field.
    pub fn from_json(value: Value) -> Result<Self, String> {
        let Value::Object(mut map) = value else {
            return Err("expected a JSON object".to_owned());
        };
        // `take` leaves a null behind rather than removing the key: no map
        // rebalancing code for a map that is dropped right after.
        let mut take = |key: &str| map.get_mut(key).map(Value::take).filter(|v| !v.is_null());
        let string = |key: &str, v: Option<Value>| match v {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("`{key}` is not a string")),
            None => Err(format!("missing field `{key}`")),
        };
        let opt_string = |key: &str, v: Option<Value>| match v {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{key}` is not a string")),
        };
        let number = |key: &str, v: Option<Value>| match v {
            None => Ok(0),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("`{key}` is not a whole number")),
        };
        let run_id = string("run_id", take("run_id"))?;
        let workflow = string("workflow", take("workflow"))?;
        let start_node = string("start_node", take("start_node"))?;
        let trigger_kind = match string("trigger_kind", take("trigger_kind"))?.as_str() {
            "manual" => TriggerKind::Manual,
            "http" => TriggerKind::Http,
            "event" => TriggerKind::Event,
            other => {
                return Err(format!(
                    "`trigger_kind` `{other}` is not manual, http or event"
                ));
            }
        };
        // Present but null is a value here, as for serde's `Value` field.
        let trigger_input = match map.get_mut("trigger_input") {
            Some(v) => v.take(),
            None => return Err("missing field `trigger_input`".to_owned()),
        };
        let mut take = |key: &str| map.get_mut(key).map(Value::take).filter(|v| !v.is_null());
        let node_outputs = match take("node_outputs") {
            Some(Value::Object(m)) => m,
            Some(_) => return Err("`node_outputs` is not an object".to_owned()),
            None => return Err("missing field `node_outputs`".to_owned()),
        };
        let paused_at = opt_string("paused_at", take("paused_at"))?;
        let resume_node = opt_string("resume_node", take("resume_node"))?;
        let reason = opt_string("reason", take("reason"))?;
        let awaiting_approval = match take("awaiting_approval") {
            None => default_awaiting(),
            Some(Value::Bool(b)) => b,
            Some(_) => return Err("`awaiting_approval` is not a boolean".to_owned()),
        };
        let format_version = u32::try_from(number("format_version", take("format_version"))?)
            .map_err(|_| "`format_version` is too large".to_owned())?;
        let program_hash = opt_string("program_hash", take("program_hash"))?;
        let saved_unix = number("saved_unix", take("saved_unix"))?;
        let node_visits = match take("node_visits") {
            None => Map::new(),
            Some(Value::Object(m)) if m.values().all(Value::is_u64) => m,
            Some(_) => return Err("`node_visits` is not an object of whole numbers".to_owned()),
        };
        Ok(Self {
            run_id,
            workflow,
            start_node,
            trigger_kind,
            trigger_input,
            node_outputs,
            paused_at,
            resume_node,
            reason,
            awaiting_approval,
            format_version,
            program_hash,
            saved_unix,
            node_visits,
        })
    }

    /// `paused` (awaiting approval) or `recoverable` (progress snapshot).
    #[must_use]
    pub fn state(&self) -> &'static str {
        if self.awaiting_approval {
            "paused"
        } else {
            "recoverable"
        }
    }

    /// The `--list-checkpoints` line:
    /// `<id>  paused|recoverable  workflow=<name> resume_node=<id|->`.
    #[must_use]
    pub fn list_line(&self) -> String {
        format!(
            "{}  {}  workflow={} resume_node={}",
            self.run_id,
            self.state(),
            self.workflow,
            self.resume_node.as_deref().unwrap_or("-")
        )
    }

    /// Refuse a checkpoint that this program did not write: another
    /// workflow, another build, or a newer format.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::WorkflowMismatch`], [`CheckpointError::ProgramMismatch`]
    /// or [`CheckpointError::UnsupportedFormat`].
    pub fn check_program(&self, workflow: &str, program_hash: &str) -> Result<(), CheckpointError> {
        if self.workflow != workflow {
            return Err(CheckpointError::WorkflowMismatch {
                run_id: self.run_id.clone(),
                found: self.workflow.clone(),
                expected: workflow.to_owned(),
            });
        }
        if self.format_version > FORMAT_VERSION {
            return Err(CheckpointError::UnsupportedFormat {
                run_id: self.run_id.clone(),
                found: self.format_version,
            });
        }
        if self.program_hash.as_deref() != Some(program_hash) {
            return Err(CheckpointError::ProgramMismatch {
                run_id: self.run_id.clone(),
                found: self
                    .program_hash
                    .clone()
                    .unwrap_or_else(|| "none".to_owned()),
                expected: program_hash.to_owned(),
            });
        }
        Ok(())
    }
}

/// The human decision `--resume` carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Approval {
    /// Continue at `resume_node` (dialect 1's only resume behaviour).
    #[default]
    Approve,
    /// End the run `failed` without running anything more.
    Deny,
}

/// Every way a checkpoint operation can fail. All are usage-level problems
/// for the CLI (exit 2) except write failures during a run, which the engine
/// reports as hard errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Resume or listing asked for without a state directory or state URL.
    #[error("no state directory is configured (set --state-dir)")]
    NoStateDir,
    /// The state directory cannot be created or read.
    #[error("state directory `{dir}`: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The underlying failure.
        source: io::Error,
    },
    /// A run id that cannot be a file name of ours (path separators, dots
    /// first, odd characters, too long).
    #[error(
        "invalid run id `{0}`: expected 1-128 characters of A-Z a-z 0-9 `_` `-` `.`, not starting with `.`"
    )]
    InvalidRunId(String),
    /// No checkpoint of that run (no `<run_id>.json`, no Redis key).
    #[error("no checkpoint `{run_id}` in `{location}`")]
    NotFound {
        /// The requested run.
        run_id: String,
        /// The state directory, or the state URL without its password.
        location: String,
    },
    /// The shared checkpoint store (`--state-url`) did not answer, or
    /// refused the command.
    #[error("checkpoint store `{location}` is unavailable: {detail}")]
    StoreUnavailable {
        /// The state URL without its password.
        location: String,
        /// What failed.
        detail: String,
    },
    /// A value in the shared store that is not a checkpoint of ours (bad
    /// JSON, wrong type, too large), or a reply of the wrong shape.
    #[error("checkpoint `{run_id}` in `{location}` is corrupt: {detail}")]
    StoreCorrupt {
        /// The run (or the operation, when no run is concerned).
        run_id: String,
        /// The state URL without its password.
        location: String,
        /// What is wrong with it.
        detail: String,
    },
    /// This process no longer holds the run: its lease lapsed (the process
    /// stalled longer than the lease) and another replica took it over.
    #[error(
        "run `{run_id}` was taken over by another replica after its lease lapsed; \
         this process stopped writing it"
    )]
    LeaseLost {
        /// The run.
        run_id: String,
    },
    /// Reading the file failed.
    #[error("cannot read checkpoint `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        source: io::Error,
    },
    /// The file is (or would be) larger than [`MAX_CHECKPOINT_BYTES`].
    #[error("checkpoint `{path}` is larger than {MAX_CHECKPOINT_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not a checkpoint: bad JSON or missing fields.
    #[error("checkpoint `{path}` is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the JSON reader said.
        source: serde_json::Error,
    },
    /// The file's `run_id` is not the one its name says.
    #[error("checkpoint `{path}` holds run `{found}`, not `{expected}`")]
    RunIdMismatch {
        /// The file.
        path: PathBuf,
        /// The id inside.
        found: String,
        /// The id its name gives.
        expected: String,
    },
    /// Written by a newer runtime.
    #[error(
        "checkpoint `{run_id}` has format version {found}; this binary reads version {FORMAT_VERSION}"
    )]
    UnsupportedFormat {
        /// The run.
        run_id: String,
        /// Its `format_version`.
        found: u32,
    },
    /// Written for another workflow.
    #[error("checkpoint `{run_id}` belongs to workflow `{found}`, not `{expected}`")]
    WorkflowMismatch {
        /// The run.
        run_id: String,
        /// The checkpoint's workflow.
        found: String,
        /// This binary's workflow.
        expected: String,
    },
    /// Written by a different build of the workflow.
    #[error(
        "checkpoint `{run_id}` was written by a different build of this workflow \
         (program hash {found}; this binary is {expected}); resume it with the binary that wrote it"
    )]
    ProgramMismatch {
        /// The run.
        run_id: String,
        /// The checkpoint's program hash (`none` when absent).
        found: String,
        /// This binary's program hash.
        expected: String,
    },
    /// Names a node this program does not have (a tampered file).
    #[error("checkpoint `{run_id}` names node `{node}`, which this workflow does not have")]
    UnknownNode {
        /// The run.
        run_id: String,
        /// The unknown id.
        node: String,
    },
    /// `--deny` on a progress snapshot.
    #[error("checkpoint `{run_id}` is not awaiting approval; only a paused run can be denied")]
    NotAwaitingApproval {
        /// The run.
        run_id: String,
    },
    /// Another process holds the run's lock.
    #[error(
        "checkpoint `{run_id}` is in use by another process (a run or a resume is in progress)"
    )]
    Busy {
        /// The run.
        run_id: String,
    },
    /// Saving failed; the previous checkpoint (if any) is intact.
    #[error("cannot write checkpoint `{path}`: {source}")]
    Write {
        /// The checkpoint path.
        path: PathBuf,
        /// The underlying failure.
        source: io::Error,
    },
    /// Removing failed.
    #[error("cannot remove checkpoint `{path}`: {source}")]
    Remove {
        /// The checkpoint path.
        path: PathBuf,
        /// The underlying failure.
        source: io::Error,
    },
    /// Taking the run's lock failed for a reason other than contention.
    #[error("cannot lock `{path}`: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying failure.
        source: io::Error,
    },
}

/// A run id usable as a file name: 1-128 of `[A-Za-z0-9_.-]`, not starting
/// with `.` (so never `.`/`..`, never hidden).
///
/// # Errors
///
/// [`CheckpointError::InvalidRunId`].
pub fn check_run_id(run_id: &str) -> Result<(), CheckpointError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= MAX_RUN_ID_LEN
        && !run_id.starts_with('.')
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CheckpointError::InvalidRunId(
            run_id.chars().take(160).collect(),
        ))
    }
}

/// Seconds since the epoch (0 before it).
#[must_use]
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Where a top-level walk stands, as the engine describes it.
pub(crate) struct RunPoint<'a> {
    pub(crate) run_id: &'a str,
    pub(crate) start_node: &'a str,
    pub(crate) trigger_kind: Source,
    pub(crate) program_hash: &'a str,
}

/// A checkpoint of `frame` (the top-level walk's context) at `point`;
/// `paused_at` is `None` for the run's first checkpoint, written before its
/// entry node runs.
pub(crate) fn capture(
    frame: &Frame,
    point: &RunPoint<'_>,
    paused_at: Option<&str>,
    resume_node: Option<&str>,
    reason: Option<&str>,
    awaiting_approval: bool,
) -> Checkpoint {
    let mut node_outputs = Map::new();
    node_outputs.insert("trigger".to_owned(), frame.trigger_value().clone());
    let mut node_visits = Map::new();
    for (node, state) in frame.graph.nodes.iter().zip(&frame.nodes) {
        if let Some(output) = &state.output {
            node_outputs.insert(node.id.to_owned(), output.clone());
        }
        let visits = frame.visits_of(node.slot);
        if visits > 1 {
            node_visits.insert(node.id.to_owned(), Value::from(visits));
        }
    }
    Checkpoint {
        run_id: point.run_id.to_owned(),
        workflow: frame.graph.name.to_owned(),
        start_node: point.start_node.to_owned(),
        trigger_kind: point.trigger_kind.into(),
        trigger_input: frame.input().clone(),
        node_outputs,
        paused_at: paused_at.map(str::to_owned),
        resume_node: resume_node.map(str::to_owned),
        reason: reason.map(str::to_owned),
        awaiting_approval,
        format_version: FORMAT_VERSION,
        program_hash: Some(point.program_hash.to_owned()),
        saved_unix: unix_secs(SystemTime::now()),
        node_visits,
    }
}

/// The node named `id` in `graph`.
pub(crate) fn node_named(
    graph: &'static GraphMeta,
    run_id: &str,
    id: &str,
) -> Result<(NodeIdx, &'static NodeMeta), CheckpointError> {
    graph
        .nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.id == id)
        .and_then(|(i, n)| Some((NodeIdx(u32::try_from(i).ok()?), n)))
        .ok_or_else(|| CheckpointError::UnknownNode {
            run_id: run_id.to_owned(),
            node: id.to_owned(),
        })
}

/// Put the checkpoint's outputs back into `frame` (a fresh top-level frame
/// built from the checkpoint's trigger). `trigger` replaces the flattened
/// trigger entry (it may be a node named `trigger`'s output).
pub(crate) fn restore(frame: &mut Frame, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    for (id, value) in &checkpoint.node_outputs {
        if id == "trigger" {
            frame.store(Slot::Trigger, value.clone());
            continue;
        }
        let (_, node) = node_named(frame.graph, &checkpoint.run_id, id)?;
        frame.store(node.slot, value.clone());
        // A node with an output ran at least once; `node_visits` records
        // only the ones that ran more.
        frame.set_visits(node.slot, 1);
    }
    for (id, visits) in &checkpoint.node_visits {
        let (_, node) = node_named(frame.graph, &checkpoint.run_id, id)?;
        let visits = visits
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(u32::MAX);
        frame.set_visits(node.slot, visits);
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests;
