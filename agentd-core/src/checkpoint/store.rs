//! The state directory of durable runs: [`StateDir`] (atomic saves, capped
//! loads, listing, removal and the retention rule) and [`Claim`], the
//! per-run `flock` that keeps a live run and a second resumer apart.
//!
//! Owns every file operation under `--state-dir` that concerns checkpoints
//! (`<run_id>.json`, `.<run_id>.lock`, its own temp files); the file format
//! itself is the parent module's. Never touches other users of the directory
//! (the idempotency store).

#![allow(unsafe_code)] // one libc call: `flock` in `try_lock`

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{
    Checkpoint, CheckpointError, Checkpoints, DEFAULT_RETENTION_DAYS, MAX_CHECKPOINT_BYTES,
    RunLock, SECS_PER_DAY, STALE_TEMP_AGE, check_run_id, unix_secs,
};

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
    /// (docs/operations.md "Approval, resume and checkpoints").
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
                    location: self.root.display().to_string(),
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

impl Checkpoints for StateDir {
    fn claim(&self, run_id: &str) -> Result<Box<dyn RunLock>, CheckpointError> {
        let claim = StateDir::claim(self, run_id)?;
        Ok(Box::new(DirLock {
            dir: self.clone(),
            run_id: run_id.to_owned(),
            _claim: claim,
        }))
    }

    fn load(&self, run_id: &str) -> Result<Checkpoint, CheckpointError> {
        StateDir::load(self, run_id)
    }

    fn list(&self) -> Result<Vec<Listed>, CheckpointError> {
        StateDir::list(self)
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

/// A run held in a state directory: its `flock` and where to write.
struct DirLock {
    dir: StateDir,
    run_id: String,
    _claim: Claim,
}

impl RunLock for DirLock {
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        self.dir.save(checkpoint)
    }

    fn remove(&mut self) -> Result<bool, CheckpointError> {
        self.dir.remove(&self.run_id)
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
