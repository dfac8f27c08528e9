//! Scratch directories for tests: `<CARGO_TARGET_TMPDIR>/<test crate>/<name>`,
//! emptied when made and removed when the test that owns them passes. A failing
//! test (a panic, so `std::thread::panicking()`) leaves its directory behind for
//! inspection; the next run empties it again.
//!
//! A directory that outlives one test (a binary built once per test crate into a
//! `OnceLock`) is made with [`Scratch::keep`]: it stays under `target/tmp`, never
//! in the system temp dir, and is replaced by the next run.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A scratch directory, removed on drop unless the test is failing.
#[must_use = "the directory is removed when the Scratch is dropped"]
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

/// A fresh, empty scratch directory `name` for this test crate.
pub fn scratch(name: &str) -> Scratch {
    Scratch::at(scratch_path(name))
}

/// Where [`scratch`]`(name)` makes its directory, for a path that must be known
/// before the directory is made (baked into a binary built once, say).
pub fn scratch_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(env!("CARGO_CRATE_NAME"))
        .join(name)
}

impl Scratch {
    /// `<CARGO_TARGET_TMPDIR>/<suite>/<name>`, emptied first.
    pub fn new(suite: &str, name: &str) -> Scratch {
        Scratch::at(
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(suite)
                .join(name),
        )
    }

    /// `path`, emptied first (and made canonical).
    pub fn at(path: PathBuf) -> Scratch {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create the scratch dir {}: {e}", path.display()));
        // Canonical, because policies and sandboxes compare resolved paths.
        let path = path
            .canonicalize()
            .unwrap_or_else(|e| panic!("resolve the scratch dir {}: {e}", path.display()));
        Scratch { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep the directory past this value (for what a whole test crate shares).
    pub fn keep(self) -> PathBuf {
        let this = std::mem::ManuallyDrop::new(self);
        this.path.clone()
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
