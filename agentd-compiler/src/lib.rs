//! `agentd_compiler` — the dialect-1 workflow compiler.
//!
//! Pipeline: bytes → [`parse`] (typed [`model`] + span skeleton in [`source`]) →
//! `validate` → IR → codegen → generated crate → cargo. Every stage reports problems
//! as [`diagnostics::Diagnostic`] values; the CLI and the `agentd!` macro only render
//! them.

pub mod build;
pub mod codegen;
pub mod codes;
pub mod diagnostics;
pub mod ir;
pub mod load;
pub mod model;
pub mod parse;
pub mod source;
pub mod testing;
pub mod validate;

use std::path::Path;

/// The front and middle of the pipeline for one workflow file: load (parse + validate
/// the file and its children) and, when there are no errors, generate code.
#[derive(Debug)]
pub struct Compiled {
    /// Every file read, with all diagnostics (warnings included).
    pub program: load::Program,
    /// The generated crate, present only when the program has no errors.
    pub generated: Option<codegen::GeneratedCrate>,
}

/// Load, validate and (when valid) generate code for `path`.
pub fn compile(
    path: &Path,
    load_opts: &load::LoadOptions,
    cg: &codegen::CodegenOptions,
) -> Compiled {
    let program = load::load(path, load_opts);
    let generated = match program.root() {
        Some(root) if !program.has_errors() => {
            let ir = ir::lower(&program);
            Some(codegen::generate(&ir, &root.doc, cg))
        }
        _ => None,
    };
    Compiled { program, generated }
}
