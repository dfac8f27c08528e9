//! Golden files of generated code (ARCHITECTURE.md "Testing").
//!
//! `tests/golden/<name>.rs` is the exact output of `agentd emit workflows/<name>.toml`,
//! run from the repository root (so the header names `workflows/<name>.toml`). This test
//! regenerates each one with the real `agentd` binary and compares bytes.
//!
//! To bless after an intended codegen change, rewrite the snapshots and review the diff:
//!
//! ```text
//! AGENTD_BLESS=1 cargo test -p agentd-compiler --test golden
//! git diff tests/golden/
//! ```
//!
//! The snapshots are also compiled, clippy-checked and run by the `agentd-golden`
//! workspace crate (`tests/golden/`); a new workflow needs a `#[path]` module line in
//! `tests/golden/src/lib.rs`, which `every_workflow_has_a_compiled_golden_module` checks.

use std::path::PathBuf;
use std::process::Command;

mod support;

use support::workspace as repo_root;

/// The stems of `workflows/*.toml`, sorted.
fn workflow_names() -> Vec<String> {
    let dir = repo_root().join("workflows");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("workflows/ is readable")
        .map(|entry| entry.expect("a workflows/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| {
            path.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn golden_dir() -> PathBuf {
    repo_root().join("tests").join("golden")
}

fn emit(name: &str) -> Vec<u8> {
    let relative = format!("workflows/{name}.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args(["emit", &relative])
        .current_dir(repo_root())
        .output()
        .expect("agentd runs");
    assert!(
        out.status.success(),
        "agentd emit {relative} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn emitted_code_matches_the_golden_files() {
    let bless = std::env::var_os("AGENTD_BLESS").is_some_and(|v| v == "1");
    let names = workflow_names();
    assert!(!names.is_empty(), "no workflows/*.toml found");
    let mut stale = Vec::new();
    for name in &names {
        let fresh = emit(name);
        let path = golden_dir().join(format!("{name}.rs"));
        if bless {
            std::fs::write(&path, &fresh).expect("write the golden file");
            continue;
        }
        match std::fs::read(&path) {
            Ok(golden) if golden == fresh => {}
            Ok(_) => stale.push(format!("{name}: differs from {}", path.display())),
            Err(e) => stale.push(format!("{name}: cannot read {}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "generated code changed; review and re-bless with \
         `AGENTD_BLESS=1 cargo test -p agentd-compiler --test golden`:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn every_golden_file_belongs_to_a_workflow() {
    let names = workflow_names();
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(golden_dir()).expect("tests/golden is readable") {
        let path = entry.expect("a tests/golden entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let stem = path
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            if !names.contains(&stem) {
                orphans.push(stem);
            }
        }
    }
    assert!(
        orphans.is_empty(),
        "golden files without a workflows/<name>.toml (delete them): {orphans:?}"
    );
}

#[test]
fn every_workflow_has_a_compiled_golden_module() {
    let lib = std::fs::read_to_string(golden_dir().join("src").join("lib.rs"))
        .expect("tests/golden/src/lib.rs is readable");
    let missing: Vec<String> = workflow_names()
        .into_iter()
        .filter(|name| !lib.contains(&format!("#[path = \"../{name}.rs\"]")))
        .collect();
    assert!(
        missing.is_empty(),
        "add `#[path = \"../<name>.rs\"] pub mod <name>;` to tests/golden/src/lib.rs for: {missing:?}"
    );
}
