//! Where the dialect-1 compat corpus is, for every test that needs it.
//!
//! `agentd-compiler/build.rs` resolves the directory (`AGENTD_COMPAT_DIR`, else
//! `../shared/compat` beside the workspace) at build time. Tests that need it are
//! written
//!
//! ```ignore
//! #[test]
//! #[cfg_attr(agentd_no_compat, ignore = "compat corpus missing (AGENTD_COMPAT_DIR)")]
//! fn uses_the_corpus() { let compat = compat::dir(); /* ... */ }
//! ```
//!
//! so cargo reports them as ignored where the corpus is absent, never as passed; under
//! `CI` the attribute is inactive and [`dir`] fails the test with the path it looked for.

#![allow(dead_code)] // Each test crate uses what it needs.

use std::path::{Path, PathBuf};

/// The compat corpus directory; panics (failing the test) when it is missing.
pub fn dir() -> PathBuf {
    let dir = PathBuf::from(env!("AGENTD_COMPAT_RESOLVED"));
    assert!(
        dir.is_dir(),
        "the compat corpus is missing: {} is not a directory (set AGENTD_COMPAT_DIR to \
         the dialect-1 compat directory; outside CI these tests are reported as ignored)",
        dir.display()
    );
    dir
}

/// Every `.toml` file under `roots` (recursively, in path order): the corpus the
/// whole-corpus tests walk. A root or directory that cannot be read fails the test
/// with its path: a corpus that went missing must never pass as an empty one.
pub fn toml_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read the corpus directory {}: {e}", dir.display()));
        let mut paths: Vec<PathBuf> = entries
            .map(|e| {
                e.map(|e| e.path())
                    .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            })
            .collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for root in roots {
        walk(root, &mut files);
    }
    files
}
