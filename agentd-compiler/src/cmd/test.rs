//! `agentd test PATH...` — compile every scenario and fixture under PATH into one
//! harness binary, run it, and report one line per case, ending with
//! `N passed, M failed`.

use std::path::PathBuf;
use std::process::Command;

use agentd_compiler::build::{self, BuildError, BuildOptions};
use agentd_compiler::frontend::testing;
use agentd_compiler::load::LoadOptions;

use super::emit_diagnostics;
use crate::{EXIT_CARGO, EXIT_INVALID, EXIT_OK, EXIT_USAGE};

pub struct Options {
    pub runtime: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub progress: Option<bool>,
    pub color: bool,
}

pub fn run(paths: &[PathBuf], opts: Options) -> u8 {
    for p in paths {
        if !p.exists() {
            eprintln!("error: `{}` does not exist", p.display());
            return EXIT_USAGE;
        }
    }
    let suite = testing::discover(paths, &LoadOptions::default());
    let mut failed = 0usize;
    let mut passed = 0usize;

    for f in &suite.failures {
        if let Some(program) = &f.program {
            emit_diagnostics(&f.diagnostics, &program.sources, false, opts.color);
        }
        println!("FAIL  {}: {} ({})", f.name, f.reason, f.origin.display());
        failed += 1;
    }
    let runnable: Vec<_> = suite.cases.iter().collect();

    if !runnable.is_empty() {
        let generated = testing::harness_crate(&runnable);
        let cache = build::cache_dir(opts.cache_dir.as_deref());
        let exe = cache.join("bin").join("agentd-test-harness");
        let mut bopts = BuildOptions::new(exe.clone());
        bopts.runtime = opts.runtime;
        bopts.cache_dir = Some(cache);
        bopts.progress = opts.progress.unwrap_or(false);
        if let Err(e) = build::build(&generated, &bopts) {
            return match e {
                BuildError::CargoFailed { status, log } => {
                    eprintln!("{log}\nerror: cargo failed to build the test harness ({status})");
                    if let Some(note) =
                        super::build::unmarked_runtime_note(bopts.runtime.as_deref())
                    {
                        eprintln!("{note}");
                    }
                    EXIT_CARGO
                }
                other => {
                    eprintln!("error: {other}");
                    EXIT_USAGE
                }
            };
        }
        let out = match Command::new(&exe).output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!(
                    "error: cannot run the test harness `{}`: {e}",
                    exe.display()
                );
                return EXIT_USAGE;
            }
        };
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut counted = false;
        for line in stdout.lines() {
            if let Some((p, f)) = parse_summary(line) {
                passed += p;
                failed += f;
                counted = true;
            } else {
                println!("{line}");
            }
        }
        if !counted {
            println!(
                "FAIL  test harness: exited with {} without a summary",
                out.status
            );
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { EXIT_OK } else { EXIT_INVALID }
}

/// Parse the harness's `N passed, M failed` line.
fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let (p, rest) = line.split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}
