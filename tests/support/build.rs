//! Building workflows with the real `agentd` in end-to-end tests: one
//! shared build cache (`target/agentd-cache`), so `agentd-runtime` compiles
//! once per feature set for the whole test run.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agentd-compiler lives inside the workspace")
        .to_path_buf()
}

/// The shared build cache every end-to-end build uses.
pub fn cache_dir() -> PathBuf {
    workspace().join("target/agentd-cache")
}

/// Serialises the builds of one test crate, so that the cargo output of a
/// failing build is not interleaved with another's. Poisoning is ignored: a
/// failed test must not fail the others.
pub fn cache_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `agentd --color=never` run from `cwd`, with the shared build cache and no
/// `AGENTD_RUNTIME_PATH` from the environment.
pub fn agentd(cwd: &Path) -> Command {
    agentd_with_cache(cwd, &cache_dir())
}

/// [`agentd`] with the build cache `cache` instead of the shared one.
pub fn agentd_with_cache(cwd: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentd"));
    cmd.current_dir(cwd)
        .env("AGENTD_CACHE_DIR", cache)
        .env_remove("AGENTD_RUNTIME_PATH")
        .arg("--color=never");
    cmd
}

/// `agentd build WORKFLOW -o OUT` run in `cwd` (extra flags first);
/// panics with agentd's stderr when the build fails. Without `--dynamic`, the
/// binary must be static (issue 8), so every test of a default build also checks
/// that what it exercises (TLS, name resolution, child processes) works static.
pub fn agentd_build(cwd: &Path, workflow: &str, out: &Path, flags: &[&str]) {
    agentd_build_with(agentd(cwd), workflow, out, flags);
}

/// [`agentd_build`] with a prepared `agentd` command (another cache, extra
/// environment); holds [`cache_lock`] while it builds.
pub fn agentd_build_with(mut agentd: Command, workflow: &str, out: &Path, flags: &[&str]) {
    let _guard = cache_lock();
    let built = agentd
        .args(["build", "--quiet"])
        .args(flags)
        .arg(workflow)
        .arg("-o")
        .arg(out)
        .output()
        .expect("agentd runs");
    assert!(
        built.status.success(),
        "agentd build {workflow} failed ({}):\n{}",
        built.status,
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(
        out.is_file(),
        "agentd build did not write {}",
        out.display()
    );
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) && !flags.contains(&"--dynamic") {
        assert_static(out);
    }
}

/// Write a handler crate `package` into `dir` (for `agentd build --handlers`):
/// `lib` as its `src/lib.rs`, depending on this workspace's `agentd-runtime` by
/// absolute path.
pub fn handler_crate(dir: &Path, package: &str, lib: &str) {
    let runtime = workspace().join("agentd-runtime");
    let runtime = runtime.canonicalize().unwrap_or(runtime);
    std::fs::create_dir_all(dir.join("src")).expect("create src");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nagentd-runtime = {{ path = {:?}, default-features = false }}\n",
            runtime.display().to_string()
        ),
    )
    .expect("write Cargo.toml");
    std::fs::write(dir.join("src/lib.rs"), lib).expect("write lib.rs");
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
