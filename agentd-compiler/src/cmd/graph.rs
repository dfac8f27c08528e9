//! `agentd graph FILE [--format dot|mermaid|svg]` — a picture of the workflow graph
//! (logic in `agentd_compiler::frontend::graph`).

use std::path::Path;

use agentd_compiler::frontend::graph::{self, Format};
use agentd_compiler::load::{self, LoadOptions};

use super::{emit_diagnostics, is_io};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

pub fn run(file: &Path, format: Format, output: Option<&Path>, color: bool) -> u8 {
    let program = load::load(file, &LoadOptions::default());
    let Some(unit) = program.root() else {
        emit_diagnostics(&program.diagnostics, &program.sources, false, color);
        return if program.diagnostics.iter().any(is_io) {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        };
    };
    let text = graph::render(&unit.doc, format);
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: could not write `{}`: {e}", path.display());
                return EXIT_USAGE;
            }
        }
        None => print!("{text}"),
    }
    EXIT_OK
}
