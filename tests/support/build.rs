//! Building workflows with the real `agentd` in end-to-end tests: one
//! shared build cache (`target/agentd-cache`), so `agentd-runtime` compiles
//! once per feature set for the whole test run.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agentd-compiler lives inside the workspace")
        .to_path_buf()
}

/// `agentd build WORKFLOW -o OUT` run in `cwd` (extra flags first);
/// panics with agentd's stderr when the build fails.
pub fn agentd_build(cwd: &Path, workflow: &str, out: &Path, flags: &[&str]) {
    let built = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(cwd)
        .env("AGENTD_CACHE_DIR", workspace().join("target/agentd-cache"))
        .env_remove("AGENTD_RUNTIME_PATH")
        .args(["--color=never", "build", "--quiet"])
        .args(flags)
        .arg(workflow)
        .arg("-o")
        .arg(out)
        .output()
        .expect("agentd runs");
    assert!(
        built.status.success(),
        "agentd build {workflow} failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
}
