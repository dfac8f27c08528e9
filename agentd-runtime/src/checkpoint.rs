//! Durable runs: checkpoint files in a state directory (`--state-dir`).
//!
//! Owns the checkpoint file format (spec/dialect-model.md §8.5, plus this
//! runtime's `format_version`, `program_hash` and `saved_unix`), the state
//! directory ([`StateDir`]: atomic saves, loads, listing, removal, the
//! retention rule, and the per-run [`Claim`] lock), and the mapping between a
//! walk's context and a checkpoint. The engine decides *when* to checkpoint
//! and resume (spec §8.6); the CLI decides what to print.
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

#![allow(unsafe_code)] // one libc call: `flock` in `try_lock`

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::context::Frame;
use crate::graph::{GraphMeta, NodeIdx, NodeMeta, Source};

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
/// the spec's order (§8.5) followed by this runtime's extensions.
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
    /// Resume or listing asked for without a state directory.
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
    /// No `<run_id>.json`.
    #[error("no checkpoint `{run_id}` in `{dir}`")]
    NotFound {
        /// The requested run.
        run_id: String,
        /// The state directory.
        dir: PathBuf,
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

/// How long checkpoints are kept (`--checkpoint-retention-days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Checkpoints older than this are pruned; `None` keeps everything.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Keep checkpoints `days` days; 0 keeps them forever.
    #[must_use]
    pub fn days(days: u64) -> Self {
        Self {
            max_age: (days > 0).then(|| Duration::from_secs(days.saturating_mul(SECS_PER_DAY))),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::days(DEFAULT_RETENTION_DAYS)
    }
}

/// What [`StateDir::prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Checkpoints removed (run id and its state, `paused`/`recoverable`).
    pub removed: Vec<(String, &'static str)>,
    /// Problems met on the way (unreadable entries are left alone).
    pub problems: Vec<String>,
}

/// One entry of [`StateDir::list`]: the run id (from the file name) and the
/// checkpoint, or why it could not be read.
pub type Listed = (String, Result<Checkpoint, CheckpointError>);

/// A state directory holding `<run_id>.json` checkpoints. Cheap to clone
/// (the path is shared). Other users of the directory (the idempotency
/// store in `idempotency/`) are left alone: this type only touches
/// `<run_id>.json`, `.<run_id>.lock` and its own temp files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    root: Arc<Path>,
}

impl StateDir {
    /// Use `path`, creating it (mode `0700`) if it does not exist: the
    /// form for runs that may write checkpoints.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Dir`] when it cannot be created or is not a
    /// directory.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let path = path.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .map_err(|source| CheckpointError::Dir {
                dir: path.clone(),
                source,
            })?;
        Self::existing(path)
    }

    /// Use `path`, which must already be a directory: the form for listing
    /// and resuming, where a typo must not silently create an empty dir.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Dir`] when it is missing or not a directory.
    pub fn existing(path: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let path = path.into();
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(Self {
                root: Arc::from(path),
            }),
            Ok(_) => Err(CheckpointError::Dir {
                dir: path,
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
            }),
            Err(source) => Err(CheckpointError::Dir { dir: path, source }),
        }
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<dir>/<run_id>.json`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidRunId`] for an id that is not a plain name.
    pub fn checkpoint_path(&self, run_id: &str) -> Result<PathBuf, CheckpointError> {
        check_run_id(run_id)?;
        Ok(self.root.join(format!("{run_id}.json")))
    }

    /// Write `checkpoint` atomically as `<run_id>.json` (mode `0600`), pretty JSON
    /// (spec §8.5).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidRunId`], [`CheckpointError::TooLarge`] for a
    /// checkpoint [`StateDir::load`] would refuse (so a run never pauses into a
    /// state it cannot resume; serialising stops at the cap, so deeply nested
    /// data that pretty printing inflates cannot exhaust memory either), or
    /// [`CheckpointError::Write`]; the previous file, if any, is then untouched
    /// and no temp file remains.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let path = self.checkpoint_path(&checkpoint.run_id)?;
        // One byte is kept for the trailing newline.
        let mut bytes = match crate::limits::pretty_json(checkpoint, MAX_CHECKPOINT_BYTES - 1) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(CheckpointError::TooLarge { path }),
            Err(e) => {
                return Err(CheckpointError::Write {
                    path,
                    source: io::Error::other(e),
                });
            }
        };
        bytes.push(b'\n');
        self.write_atomically(&path, &checkpoint.run_id, &bytes)
            .map_err(|source| CheckpointError::Write { path, source })
    }

    fn write_atomically(&self, path: &Path, run_id: &str, bytes: &[u8]) -> io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Hidden, and unique per process and save, so concurrent writers of
        // different runs never collide and listings skip it.
        let temp = self
            .root
            .join(format!(".{run_id}.json.tmp-{}-{n}", std::process::id()));
        let written = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp)?;
            file.write_all(bytes)?;
            // The data must be on disk before the rename makes it visible.
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        // The rename itself must survive a power loss.
        sync_dir(&self.root)
    }

    /// Read `<run_id>.json`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::NotFound`], [`CheckpointError::Read`],
    /// [`CheckpointError::TooLarge`], [`CheckpointError::Corrupt`],
    /// [`CheckpointError::RunIdMismatch`] or [`CheckpointError::InvalidRunId`].
    pub fn load(&self, run_id: &str) -> Result<Checkpoint, CheckpointError> {
        let path = self.checkpoint_path(run_id)?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CheckpointError::NotFound {
                    run_id: run_id.to_owned(),
                    dir: self.root.to_path_buf(),
                });
            }
            Err(source) => return Err(CheckpointError::Read { path, source }),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CHECKPOINT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| CheckpointError::Read {
                path: path.clone(),
                source,
            })?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CHECKPOINT_BYTES {
            return Err(CheckpointError::TooLarge { path });
        }
        let corrupt = |source| CheckpointError::Corrupt {
            path: path.clone(),
            source,
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(corrupt)?;
        let checkpoint = Checkpoint::from_json(value)
            .map_err(|why| corrupt(<serde_json::Error as serde::de::Error>::custom(why)))?;
        if checkpoint.run_id != run_id {
            return Err(CheckpointError::RunIdMismatch {
                path,
                found: checkpoint.run_id,
                expected: run_id.to_owned(),
            });
        }
        Ok(checkpoint)
    }

    /// Delete `<run_id>.json`; `Ok(false)` when there was none.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Remove`] or [`CheckpointError::InvalidRunId`].
    pub fn remove(&self, run_id: &str) -> Result<bool, CheckpointError> {
        let path = self.checkpoint_path(run_id)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                // Best effort: the removal is durable once the directory is.
                let _ = sync_dir(&self.root);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(CheckpointError::Remove { path, source }),
        }
    }

    /// Every checkpoint in the directory, sorted by run id. Files that are
    /// not `<run_id>.json` (temp files, locks, `idempotency/`) are skipped;
    /// a checkpoint that cannot be read is listed with its error.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Dir`] when the directory cannot be read.
    pub fn list(&self) -> Result<Vec<Listed>, CheckpointError> {
        let mut ids = self.run_ids()?;
        // Run ids are distinct file names: an unstable sort gives the same order
        // with a smaller instantiation than the stable one (docs/performance.md).
        ids.sort_unstable();
        Ok(ids
            .into_iter()
            .map(|id| {
                let loaded = self.load(&id);
                (id, loaded)
            })
            .collect())
    }

    fn run_ids(&self) -> Result<Vec<String>, CheckpointError> {
        let dir_error = |source| CheckpointError::Dir {
            dir: self.root.to_path_buf(),
            source,
        };
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(dir_error)? {
            let entry = entry.map_err(dir_error)?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if check_run_id(id).is_ok() && entry.file_type().is_ok_and(|t| t.is_file()) {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// Apply the retention rule for `workflow` at time `now`:
    ///
    /// - a checkpoint of `workflow` (paused or recoverable) saved more than
    ///   `retention.max_age` ago is deleted — unless a process holds its
    ///   lock (that run is alive);
    /// - checkpoints of other workflows, and files that cannot be read, are
    ///   never touched (their owner decides; a person should look at a
    ///   corrupt file);
    /// - temp files of interrupted saves older than an hour are deleted.
    ///
    /// A checkpoint without `saved_unix` (dialect 1's) is aged by its file's
    /// modification time.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Dir`] when the directory cannot be read.
    pub fn prune(
        &self,
        workflow: &str,
        retention: Retention,
        now: SystemTime,
    ) -> Result<Pruned, CheckpointError> {
        let mut pruned = Pruned::default();
        self.remove_stale_temps(now, &mut pruned);
        self.remove_orphan_locks(&mut pruned);
        let Some(max_age) = retention.max_age else {
            return Ok(pruned);
        };
        let now_unix = unix_secs(now);
        for (run_id, loaded) in self.list()? {
            let Ok(checkpoint) = loaded else {
                continue;
            };
            if checkpoint.workflow != workflow {
                continue;
            }
            let saved = if checkpoint.saved_unix > 0 {
                Some(checkpoint.saved_unix)
            } else {
                self.checkpoint_path(&run_id)
                    .ok()
                    .and_then(|p| fs::metadata(p).ok())
                    .and_then(|m| m.modified().ok())
                    .map(unix_secs)
            };
            let Some(saved) = saved else { continue };
            if now_unix.saturating_sub(saved) <= max_age.as_secs() {
                continue;
            }
            let claim = match self.claim(&run_id) {
                Ok(claim) => claim,
                Err(CheckpointError::Busy { .. }) => continue,
                Err(e) => {
                    pruned.problems.push(e.to_string());
                    continue;
                }
            };
            match self.remove(&run_id) {
                Ok(true) => pruned.removed.push((run_id, checkpoint.state())),
                Ok(false) => {}
                Err(e) => pruned.problems.push(e.to_string()),
            }
            drop(claim);
        }
        Ok(pruned)
    }

    /// Delete `.<run_id>.lock` files without a checkpoint and without a
    /// holder: what a crash between removing a finished run's checkpoint
    /// and unlinking its lock leaves. They never block anything (a lock is
    /// the `flock`, not the file), but would pile up.
    fn remove_orphan_locks(&self, pruned: &mut Pruned) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(run_id) = name
                .to_str()
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".lock"))
            else {
                continue;
            };
            if check_run_id(run_id).is_err() || self.root.join(format!("{run_id}.json")).exists() {
                continue;
            }
            // Taking the claim proves nobody holds it; dropping it unlinks
            // the file. A live run (between its claim and its first save)
            // is `Busy` and left alone.
            match self.claim(run_id) {
                Ok(claim) => drop(claim),
                Err(CheckpointError::Busy { .. }) => {}
                Err(e) => pruned.problems.push(e.to_string()),
            }
        }
    }

    fn remove_stale_temps(&self, now: SystemTime, pruned: &mut Pruned) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let is_temp = name
                .to_str()
                .is_some_and(|n| n.starts_with('.') && n.contains(".json.tmp-"));
            if !is_temp {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if old && let Err(e) = fs::remove_file(entry.path()) {
                pruned
                    .problems
                    .push(format!("cannot remove `{}`: {e}", entry.path().display()));
            }
        }
    }

    /// Take run `run_id`'s lock (`.<run_id>.lock`, `flock`, non-blocking).
    /// Held by a run from its first checkpoint to its end, and by a resume
    /// from before it reads the checkpoint to its end.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Busy`] when another holder has it,
    /// [`CheckpointError::Lock`] when the lock file cannot be used.
    pub fn claim(&self, run_id: &str) -> Result<Claim, CheckpointError> {
        check_run_id(run_id)?;
        let path = self.root.join(format!(".{run_id}.lock"));
        let lock_error = |source| CheckpointError::Lock {
            path: path.clone(),
            source,
        };
        // A previous holder unlinks the file as it lets go; a lock taken on
        // the unlinked inode would be no lock at all, so check the path still
        // names the locked file, and retry a few times if not.
        for _ in 0..8 {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&path).map_err(lock_error)?;
            if !try_lock(&file).map_err(lock_error)? {
                return Err(CheckpointError::Busy {
                    run_id: run_id.to_owned(),
                });
            }
            if same_file(&file, &path) {
                return Ok(Claim {
                    _locked: file,
                    path,
                });
            }
        }
        Err(CheckpointError::Busy {
            run_id: run_id.to_owned(),
        })
    }
}

/// A held run lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct Claim {
    /// Held open for the claim's life: closing it releases the `flock`.
    _locked: File,
    path: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Unlink while still holding the lock, then close (which unlocks):
        // a newcomer either sees no file or a fresh one (see `claim`).
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: `flock` takes a file descriptor and flags; the descriptor is
    // owned by `file`, which outlives this call, and no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    // No advisory locks here: a single resumer is the operator's job.
    Ok(true)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is atomic.
    Ok(())
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
    if let Some(trigger) = &frame.trigger {
        node_outputs.insert("trigger".to_owned(), trigger.clone());
    }
    for (node, output) in frame.graph.nodes.iter().zip(&frame.outputs) {
        if let Some(output) = output {
            node_outputs.insert(node.id.to_owned(), output.clone());
        }
    }
    Checkpoint {
        run_id: point.run_id.to_owned(),
        workflow: frame.graph.name.to_owned(),
        start_node: point.start_node.to_owned(),
        trigger_kind: point.trigger_kind.into(),
        trigger_input: frame.raw_input.clone(),
        node_outputs,
        paused_at: paused_at.map(str::to_owned),
        resume_node: resume_node.map(str::to_owned),
        reason: reason.map(str::to_owned),
        awaiting_approval,
        format_version: FORMAT_VERSION,
        program_hash: Some(point.program_hash.to_owned()),
        saved_unix: unix_secs(SystemTime::now()),
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
            frame.trigger = Some(value.clone());
            continue;
        }
        let (_, node) = node_named(frame.graph, &checkpoint.run_id, id)?;
        frame.store(node.slot, value.clone());
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests;
