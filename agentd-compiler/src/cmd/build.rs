//! `agentd build FILE -o OUT` — validate, generate, and compile one binary.

use std::path::{Path, PathBuf};

use agentd_compiler::build::{self, BuildError, BuildOptions, Linking, Profile};
use agentd_compiler::codegen::CodegenOptions;
use agentd_compiler::load::LoadOptions;
use agentd_compiler::signing::VerifyOptions;

use super::{emit_diagnostics, exit_for_failed_load};
use crate::{EXIT_CARGO, EXIT_OK, EXIT_SIGNATURE, EXIT_USAGE};

pub struct Options {
    pub output: Option<PathBuf>,
    pub runtime: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub release_lto: bool,
    pub dynamic: bool,
    pub progress: Option<bool>,
    pub color: bool,
    pub signing: VerifyOptions,
}

pub fn run(file: &Path, opts: Options) -> u8 {
    let compiled = agentd_compiler::compile_verified(
        file,
        &LoadOptions::default(),
        &opts.signing,
        &CodegenOptions::default(),
    );
    emit_diagnostics(
        &compiled.program.diagnostics,
        &compiled.program.sources,
        false,
        opts.color,
    );
    let Some(generated) = compiled.generated else {
        if super::signing::has_signing_error(&compiled.program.diagnostics) {
            eprintln!(
                "error: `{}` refused: a workflow file is unsigned or wrongly signed",
                file.display()
            );
            return EXIT_SIGNATURE;
        }
        return exit_for_failed_load(&compiled.program, file);
    };
    let output = opts
        .output
        .unwrap_or_else(|| PathBuf::from(build::slug(&generated.workflow_name)));
    let mut bopts = BuildOptions::new(output);
    bopts.runtime = opts.runtime;
    bopts.cache_dir = opts.cache_dir;
    if opts.release_lto {
        bopts.profile = Profile::ReleaseLto;
    }
    if opts.dynamic {
        bopts.linking = Linking::Dynamic;
    }
    if let Some(p) = opts.progress {
        bopts.progress = p;
    }
    let started = std::time::Instant::now();
    match build::build(&generated, &bopts) {
        Ok(out) => {
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "built `{}` (workflow `{}`, {:.2} MB) in {:.1}s",
                out.display(),
                generated.workflow_name,
                size as f64 / 1_000_000.0,
                started.elapsed().as_secs_f64()
            );
            EXIT_OK
        }
        Err(BuildError::CargoFailed { status, log }) => {
            if !log.is_empty() {
                eprintln!("{log}");
            }
            eprintln!("error: cargo failed to build the generated crate ({status})");
            eprintln!(
                "help: this is a bug in agentd if `agentd check` passes; please report it with `agentd emit` output"
            );
            EXIT_CARGO
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}
