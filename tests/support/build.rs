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
/// panics with agentd's stderr when the build fails. Without `--dynamic`, the
/// binary must be static (issue 8), so every test of a default build also checks
/// that what it exercises (TLS, name resolution, child processes) works static.
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
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) && !flags.contains(&"--dynamic") {
        assert_static(out);
    }
}

/// Panics unless `exe` is an ELF64 file without a `PT_INTERP` program header,
/// i.e. one that asks for no dynamic loader.
pub fn assert_static(exe: &Path) {
    let elf = std::fs::read(exe).expect("read the built binary");
    assert!(
        elf.len() > 64 && elf.starts_with(b"\x7fELF") && elf[4] == 2,
        "`{}` is not an ELF64 file",
        exe.display()
    );
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let mut phoff = [0_u8; 8];
    phoff.copy_from_slice(&elf[0x20..0x28]);
    let phoff = usize::try_from(u64::from_le_bytes(phoff)).expect("program header offset");
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let interp = (0..phnum).any(|i| {
        let p = phoff + i * phentsize;
        elf[p..p + 4] == 3_u32.to_le_bytes()
    });
    assert!(
        !interp,
        "`{}` has a PT_INTERP header: a default build must be static",
        exe.display()
    );
}
