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

use std::path::PathBuf;

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
