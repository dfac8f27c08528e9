//! `agentd run [--watch] FILE [-- ARGS...]` — build (cached) and run, for the edit-run
//! loop.
//!
//! The binary goes to `<cache>/run/<hash of the workflow's path>/<name>`, so every
//! workflow keeps its own and a rebuild of an unchanged workflow is cargo's no-op.
//! Without `--watch` agentd replaces itself with the binary (exec), so its exit code,
//! signals and terminal are the binary's own. With `--watch` it polls the workflow and
//! every child file, and on a change stops the running binary (SIGTERM, then SIGKILL
//! after 3 s), rebuilds and runs it again; a workflow that does not build waits for
//! the next change.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use agentd_compiler::build;
use agentd_compiler::load::{self, LoadOptions};
use sha2::{Digest, Sha256};

use crate::{EXIT_OK, EXIT_USAGE};

/// How often `--watch` looks at the files.
const POLL: Duration = Duration::from_millis(250);
/// How long a binary gets to stop after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(3);

pub struct Options {
    pub build: super::build::Options,
    pub watch: bool,
    pub args: Vec<String>,
}

/// Where `agentd run` keeps the binary of `file`.
fn binary_path(file: &Path, cache: Option<&Path>, name: &str) -> PathBuf {
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    build::cache_dir(cache)
        .join("run")
        .join(hash)
        .join(build::slug(name))
}

fn build_once(file: &Path, opts: &super::build::Options) -> Result<PathBuf, u8> {
    // The workflow's name names the binary; an unparsable file fails in the build.
    let name = load::load(file, &LoadOptions::default())
        .root()
        .map(|u| u.doc.name.clone())
        .unwrap_or_else(|| "workflow".into());
    let mut opts = opts.clone();
    opts.output = Some(binary_path(file, opts.cache_dir.as_deref(), &name));
    if let Some(dir) = opts.output.as_deref().and_then(Path::parent)
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create `{}`: {e}", dir.display());
        return Err(EXIT_USAGE);
    }
    super::build::build_binary(file, opts)
}

pub fn run(file: &Path, opts: Options) -> u8 {
    if opts.watch {
        return watch(file, &opts);
    }
    let exe = match build_once(file, &opts.build) {
        Ok(exe) => exe,
        Err(code) => return code,
    };
    exec(&exe, &opts.args)
}

#[cfg(unix)]
fn exec(exe: &Path, args: &[String]) -> u8 {
    use std::os::unix::process::CommandExt;
    // Only returns on failure.
    let e = Command::new(exe).args(args).exec();
    eprintln!("error: cannot run `{}`: {e}", exe.display());
    EXIT_USAGE
}

#[cfg(not(unix))]
fn exec(exe: &Path, args: &[String]) -> u8 {
    match Command::new(exe).args(args).status() {
        Ok(status) => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(EXIT_USAGE),
        Err(e) => {
            eprintln!("error: cannot run `{}`: {e}", exe.display());
            EXIT_USAGE
        }
    }
}

/// The files of the program rooted at `file` (root and every child that loaded),
/// with their modification times.
fn snapshot(file: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let program = load::load(file, &LoadOptions::default());
    let mut paths: Vec<PathBuf> = program.units.iter().map(|u| u.canonical.clone()).collect();
    if paths.is_empty() {
        paths.push(file.to_path_buf());
    }
    // A child that failed to load is still a file to wait for.
    paths.extend(program.sources.paths().map(Path::to_path_buf));
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, t)
        })
        .collect()
}

fn changed(before: &[(PathBuf, Option<SystemTime>)]) -> bool {
    before.iter().any(|(p, t)| {
        let now = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        now != *t
    })
}

fn watch(file: &Path, opts: &Options) -> u8 {
    loop {
        let files = snapshot(file);
        let mut child: Option<Child> = match build_once(file, &opts.build) {
            Ok(exe) => match Command::new(&exe).args(&opts.args).spawn() {
                Ok(c) => {
                    eprintln!("watch: running `{}`", exe.display());
                    Some(c)
                }
                Err(e) => {
                    eprintln!("error: cannot run `{}`: {e}", exe.display());
                    None
                }
            },
            Err(_) => None,
        };
        let mut reported = false;
        loop {
            std::thread::sleep(POLL);
            if let Some(c) = child.as_mut()
                && !reported
                && let Ok(Some(status)) = c.try_wait()
            {
                eprintln!("watch: the run ended ({status}); waiting for a change");
                reported = true;
            }
            if changed(&files) {
                break;
            }
        }
        if let Some(c) = child.take() {
            stop(c);
        }
        eprintln!("watch: `{}` or a child changed; rebuilding", file.display());
        if !file.exists() {
            eprintln!("error: `{}` is gone", file.display());
            return EXIT_OK;
        }
    }
}

/// SIGTERM, a grace period, then SIGKILL; always reaped.
fn stop(mut child: Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    terminate(&child);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
#[allow(unsafe_code)] // one libc call
fn terminate(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: `kill` has no memory effects; `pid` is our own unreaped child, so
        // the id cannot have been reused by another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {}
