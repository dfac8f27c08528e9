//! One module per subcommand. Each exposes `run(...) -> u8` (the exit code).

pub mod build;
pub mod check;
pub mod completions;
pub mod emit;
pub mod explain;
pub mod graph;
pub mod init;
pub mod lsp;
pub mod run;
pub mod schema;
pub mod ship;
pub mod signing;
pub mod test;

use std::path::Path;

use agentd_compiler::codes::Code;
use agentd_compiler::diagnostics::{self, Diagnostic, SourceDb};
use agentd_compiler::handlers::HandlerCrate;
use agentd_compiler::load::Program;

use crate::{EXIT_INVALID, EXIT_USAGE};

/// Print diagnostics in the chosen format: human text on stderr, JSON lines on stdout.
pub fn emit_diagnostics(diags: &[Diagnostic], db: &SourceDb, json: bool, color: bool) {
    if diags.is_empty() {
        return;
    }
    if json {
        print!("{}", diagnostics::render_json(diags, db));
    } else {
        eprint!("{}", diagnostics::render_human(diags, db, color));
    }
}

/// Diagnostics that mean "could not read the input" rather than "the input is wrong".
pub fn is_io(d: &Diagnostic) -> bool {
    d.code == Code::IoError
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Exit code after a load that produced no program: usage when a file could not be
/// read, invalid otherwise. Prints the one-line summary.
pub fn exit_for_failed_load(program: &Program, file: &Path) -> u8 {
    let errors = program.diagnostics.iter().filter(|d| d.is_error()).count();
    if program.diagnostics.iter().any(is_io) {
        eprintln!("error: could not read `{}`", file.display());
        return EXIT_USAGE;
    }
    eprintln!(
        "error: `{}` is invalid: {}",
        file.display(),
        plural(errors, "error")
    );
    EXIT_INVALID
}

/// `--handlers PATH`: read the handler crate, or print why it cannot be used (exit 2).
pub fn load_handler_crate(path: Option<&Path>) -> Result<Option<HandlerCrate>, u8> {
    let Some(path) = path else {
        return Ok(None);
    };
    match HandlerCrate::load(path) {
        Ok(h) => Ok(Some(h)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(EXIT_USAGE)
        }
    }
}

/// The validator's help for `rust_node_not_allowed` speaks to `agentd!` users; on the
/// command line, point at the flags that accept Rust nodes instead.
pub fn cli_rust_node_help(diags: &mut [Diagnostic]) {
    diagnostics::cli_rust_node_help(diags);
}

/// The shared front of `build` and `emit`: load, validate, verify and generate `file`,
/// with `type = "rust"` nodes bound to `::agentd_handlers::<name>` when `rust_nodes`,
/// and print the diagnostics.
pub fn compile_and_report(
    file: &Path,
    rust_nodes: bool,
    policy_overrides: bool,
    signing: &agentd_compiler::signing::VerifyOptions,
    color: bool,
) -> agentd_compiler::Compiled {
    let load_opts = agentd_compiler::load::LoadOptions {
        allow_rust_nodes: rust_nodes,
        ..agentd_compiler::load::LoadOptions::default()
    };
    let cg = agentd_compiler::codegen::CodegenOptions {
        handler_crate: rust_nodes.then(agentd_compiler::handlers::codegen_prefix),
        policy_overrides,
        ..agentd_compiler::codegen::CodegenOptions::default()
    };
    let mut compiled = agentd_compiler::compile_verified(file, &load_opts, signing, &cg);
    cli_rust_node_help(&mut compiled.program.diagnostics);
    emit_diagnostics(
        &compiled.program.diagnostics,
        &compiled.program.sources,
        false,
        color,
    );
    compiled
}
