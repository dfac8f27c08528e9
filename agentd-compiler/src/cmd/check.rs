//! `agentd check FILE...` — parse and validate, report every problem, build nothing.

use std::path::{Path, PathBuf};

use agentd_compiler::diagnostics::Severity;
use agentd_compiler::load::LoadOptions;
use agentd_compiler::signing::{self, VerifyOptions};

use super::{emit_diagnostics, is_io, plural};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_SIGNATURE, EXIT_USAGE};

pub struct Options {
    pub json: bool,
    pub deny_warnings: bool,
    /// `--allow-rust-nodes`: accept custom Rust nodes (`type = "rust"`).
    pub allow_rust_nodes: bool,
    /// `--handlers PATH`: implies `allow_rust_nodes`; the crate must be readable.
    pub handlers: Option<PathBuf>,
    /// `--explain-sandbox`: print the kernel sandbox of each valid workflow.
    pub explain_sandbox: bool,
    pub color: bool,
    pub signing: VerifyOptions,
}

pub fn run(files: &[PathBuf], opts: Options) -> u8 {
    if let Err(code) = super::load_handler_crate(opts.handlers.as_deref()) {
        return code;
    }
    let load_opts = LoadOptions {
        allow_rust_nodes: opts.allow_rust_nodes || opts.handlers.is_some(),
        ..LoadOptions::default()
    };
    let mut worst = EXIT_OK;
    for file in files {
        worst = worst.max(check_one(file, &load_opts, &opts));
    }
    worst
}

fn check_one(file: &Path, load_opts: &LoadOptions, opts: &Options) -> u8 {
    let (mut program, verification) = signing::load_verified(file, load_opts, &opts.signing);
    program.diagnostics.extend(verification.diagnostics);
    super::cli_rust_node_help(&mut program.diagnostics);
    if opts.deny_warnings {
        for d in &mut program.diagnostics {
            if d.severity == Severity::Warning {
                d.severity = Severity::Error;
                d.notes
                    .push("warnings are errors because of --deny-warnings".into());
            }
        }
    }
    emit_diagnostics(
        &program.diagnostics,
        &program.sources,
        opts.json,
        opts.color,
    );
    let errors = program.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = program.diagnostics.len() - errors;
    let name = program
        .root()
        .map(|u| format!(" (workflow `{}`)", u.doc.name))
        .unwrap_or_default();
    if program.diagnostics.iter().any(is_io) {
        if !opts.json {
            eprintln!("error: could not check `{}`", file.display());
        }
        return EXIT_USAGE;
    }
    if errors > 0 {
        let signing_refused = super::signing::has_signing_error(&program.diagnostics);
        if !opts.json {
            eprintln!(
                "error: `{}`{name} is invalid: {}, {}",
                file.display(),
                plural(errors, "error"),
                plural(warnings, "warning")
            );
        }
        return if signing_refused {
            EXIT_SIGNATURE
        } else {
            EXIT_INVALID
        };
    }
    if !opts.json {
        let children = program.units.len().saturating_sub(1);
        let with_children = if children > 0 {
            format!(" and {}", plural(children, "child workflow"))
        } else {
            String::new()
        };
        eprintln!(
            "ok: `{}`{name}{with_children} valid, {}",
            file.display(),
            plural(warnings, "warning")
        );
    }
    if opts.explain_sandbox {
        let ir = agentd_compiler::ir::lower(&program);
        println!("{}", file.display());
        print!(
            "{}",
            agentd_compiler::frontend::sandbox::explain(&program, &ir)
        );
    }
    EXIT_OK
}
