//! `agentd_compiler` — the dialect-1 workflow compiler.
//!
//! Pipeline: bytes → [`parse`] (typed [`model`] + span skeleton in [`source`]) →
//! `validate` → IR → codegen → generated crate → cargo. Every stage reports problems
//! as [`diagnostics::Diagnostic`] values; the CLI and the `agentd!` macro only render
//! them.

// The pipeline stages: parse → validate → load → signing → ir → codegen → build, then
// ship (ARCHITECTURE.md draws it). `handlers` is the user crate `build` links.
pub mod build;
pub mod codegen;
pub mod handlers;
pub mod ir;
pub mod load;
pub mod parse;
pub mod ship;
pub mod signing;
pub mod validate;

// What the stages share: the document model, spans, diagnostics and their codes.
pub mod codes;
pub mod diagnostics;
pub mod grammar;
pub mod keys;
pub mod model;
pub mod resolve;
pub mod schema;
pub mod source;

// Front ends other than the CLI (`src/cmd/`, binary only).
pub mod frontend;

/// Scratch directories for unit tests, removed when the test passes.
#[cfg(test)]
mod test_support;

/// The compat corpus for unit tests (shared with the integration tests).
#[cfg(test)]
#[path = "../../tests/support/compat.rs"]
mod compat_support;

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

/// Load, validate and (when valid) generate code for `path`. Signatures present next
/// to the files are verified with the root's `[signing]` key (see [`compile_verified`]).
pub fn compile(
    path: &Path,
    load_opts: &load::LoadOptions,
    cg: &codegen::CodegenOptions,
) -> Compiled {
    compile_verified(path, load_opts, &signing::VerifyOptions::default(), cg)
}

/// [`compile`] with explicit signature-verification options (`--signing-required`,
/// `--verify-key`). Signing problems are diagnostics like any other; the verified
/// signer's fingerprint is baked into the binary's provenance.
pub fn compile_verified(
    path: &Path,
    load_opts: &load::LoadOptions,
    verify: &signing::VerifyOptions,
    cg: &codegen::CodegenOptions,
) -> Compiled {
    // Signatures are checked on the raw bytes before parsing wherever the key is
    // already known, so a tampered file never reaches the parser.
    let (mut program, verification) = signing::load_verified(path, load_opts, verify);
    program.diagnostics.extend(verification.diagnostics);
    let generated = match program.root() {
        Some(root) if !program.has_errors() => {
            let mut ir = ir::lower(&program);
            ir.signer = verification.signer;
            // Built with signing required and accepting `--policy` overrides: an
            // override must be signed by the same key, so the key is baked in.
            if verification.required && cg.policy_overrides {
                ir.policy_key = verification.key;
            }
            Some(codegen::generate(&ir, &root.doc, cg))
        }
        _ => None,
    };
    Compiled { program, generated }
}
