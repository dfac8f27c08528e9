//! Locates the dialect-1 compat corpus for the tests (docs/cli.md, "Testing").
//!
//! Tests that need the corpus must neither pass silently nor fail on a clone that does
//! not have it. The corpus is `AGENTD_COMPAT_DIR` (relative paths are taken from the
//! workspace root), else `../shared/compat` beside the workspace. Its resolved path is
//! handed to the tests as `AGENTD_COMPAT_RESOLVED`; when it is missing and `CI` is not
//! set, the cfg `agentd_no_compat` marks those tests `#[ignore]` so cargo reports them
//! as ignored. Under `CI` the cfg is never set and the tests fail with the path they
//! looked for. The library itself never reads either.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(agentd_no_compat)");
    println!("cargo::rerun-if-env-changed=AGENTD_COMPAT_DIR");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest.parent().unwrap_or(Path::new("..")).to_path_buf();
    let dir = match std::env::var_os("AGENTD_COMPAT_DIR") {
        Some(d) if !d.is_empty() => workspace.join(d),
        _ => workspace.join("../shared/compat"),
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    println!("cargo::rustc-env=AGENTD_COMPAT_RESOLVED={}", dir.display());
    if dir.is_dir() {
        // Rebuilt when the corpus changes or goes away; a corpus that appears later
        // needs `AGENTD_COMPAT_DIR` set (or any change to this file) to be seen.
        println!("cargo::rerun-if-changed={}", dir.display());
    } else if std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=agentd_no_compat");
        println!(
            "cargo::warning=compat corpus not found at {}: the tests that need it are ignored (set AGENTD_COMPAT_DIR)",
            dir.display()
        );
    }
}
