//! Scratch directories for this crate's unit tests: a fresh directory per call
//! under the system temp dir, removed when the owning test passes and kept for
//! inspection when it fails (the integration tests' equivalent is
//! `tests/support/scratch.rs`, which lives under `CARGO_TARGET_TMPDIR`, a variable
//! cargo sets for integration tests only).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A scratch directory, removed on drop unless the test is failing.
#[must_use = "the directory is removed when the TempDir is dropped"]
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

/// A fresh, empty directory `agentd-compiler-<tag>-<pid>-<n>` in the system temp dir.
pub(crate) fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "agentd-compiler-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path)
        .unwrap_or_else(|e| panic!("create the scratch dir {}: {e}", path.display()));
    TempDir { path }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
