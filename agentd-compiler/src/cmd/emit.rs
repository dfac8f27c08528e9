//! `agentd emit FILE` — print the Rust that `agentd build` would compile.

use std::path::Path;

use agentd_compiler::codegen::CodegenOptions;
use agentd_compiler::load::LoadOptions;

use super::{emit_diagnostics, exit_for_failed_load};
use crate::EXIT_OK;

pub fn run(file: &Path, color: bool) -> u8 {
    let compiled =
        agentd_compiler::compile(file, &LoadOptions::default(), &CodegenOptions::default());
    emit_diagnostics(
        &compiled.program.diagnostics,
        &compiled.program.sources,
        false,
        color,
    );
    match compiled.generated {
        Some(g) => {
            print!("{}", g.code);
            EXIT_OK
        }
        None => exit_for_failed_load(&compiled.program, file),
    }
}
