//! `agentd emit FILE` — print the Rust that `agentd build` would compile.

use std::path::{Path, PathBuf};

use super::{exit_for_failed_load, load_handler_crate};
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
    let compiled = super::compile_and_report(
        file,
        rust_nodes,
        false,
        &agentd_compiler::signing::VerifyOptions::default(),
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
