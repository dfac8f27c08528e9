//! One module per subcommand. Each exposes `run(...) -> u8` (the exit code).

pub mod build;
pub mod check;
pub mod emit;
pub mod explain;
pub mod graph;
pub mod signing;
pub mod test;

use std::path::Path;

use agentd_compiler::diagnostics::{self, Diagnostic, SourceDb};
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
    matches!(d.code, "io_error")
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
