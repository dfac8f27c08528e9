//! `agentd emit FILE` — print the Rust that `agentd build` would compile.

use std::path::{Path, PathBuf};

use agentd_compiler::codegen::CodegenOptions;
use agentd_compiler::handlers;
use agentd_compiler::load::LoadOptions;

use super::{emit_diagnostics, exit_for_failed_load, load_handler_crate};
use crate::EXIT_OK;

pub struct Options {
    /// `--allow-rust-nodes`: accept `type = "rust"` and bind handlers as
    /// `build --handlers` does.
    pub allow_rust_nodes: bool,
    /// `--handlers PATH` (implies `allow_rust_nodes`).
    pub handlers: Option<PathBuf>,
    pub color: bool,
}

pub fn run(file: &Path, opts: Options) -> u8 {
    if let Err(code) = load_handler_crate(opts.handlers.as_deref()) {
        return code;
    }
    let rust_nodes = opts.allow_rust_nodes || opts.handlers.is_some();
    let load_opts = LoadOptions {
        allow_rust_nodes: rust_nodes,
        ..LoadOptions::default()
    };
    let cg = CodegenOptions {
        handler_crate: rust_nodes.then(handlers::codegen_prefix),
        ..CodegenOptions::default()
    };
    let mut compiled = agentd_compiler::compile(file, &load_opts, &cg);
    super::cli_rust_node_help(&mut compiled.program.diagnostics);
    emit_diagnostics(
        &compiled.program.diagnostics,
        &compiled.program.sources,
        false,
        opts.color,
    );
    match compiled.generated {
        Some(g) => {
            print!("{}", g.code);
            EXIT_OK
        }
        None => exit_for_failed_load(&compiled.program, file),
    }
}
