//! Arbitrary bytes through the whole compiler short of cargo: parse, validate, render
//! the diagnostics, and, for input without errors, load (children resolve against a
//! directory that does not exist), lower to the IR and generate the Rust code.
//!
//! The compiler promises never to panic on any input (parse.rs, validate.rs, and
//! codegen's `quote!` of numbers such as `retry.jitter`, which panics on a non-finite
//! float unless validation refused it); this target holds it to that. Rendering is
//! included because diagnostics carry byte spans that the renderers slice the source
//! with.

#![no_main]

use std::path::{Path, PathBuf};

use agentd_compiler::codegen::{CodegenOptions, generate};
use agentd_compiler::diagnostics::{SourceDb, render_human, render_json};
use agentd_compiler::ir::lower;
use agentd_compiler::load::{LoadOptions, load_str};
use agentd_compiler::parse::parse_bytes;
use agentd_compiler::validate::{ValidateOptions, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/nonexistent-agentd-fuzz/fuzz.toml");
    let r = parse_bytes(path, data);
    let mut diags = r.diagnostics.clone();
    let mut vopts = ValidateOptions::for_file(path);
    vopts.allow_rust_nodes = true;
    if let Some(doc) = &r.doc {
        diags.extend(validate(&r.source, doc, &vopts));
    }
    let mut db = SourceDb::new();
    db.add(&r.source);
    let _ = render_human(&diags, &db, false);
    let _ = render_human(&diags, &db, true);
    let _ = render_json(&diags, &db);

    // Lowering and codegen only ever see an error-free program (as in
    // `compile_verified`).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if r.doc.is_none() || diags.iter().any(|d| d.is_error()) {
        return;
    }
    let opts = LoadOptions {
        cwd: PathBuf::from("/nonexistent-agentd-fuzz"),
        allow_rust_nodes: true,
    };
    let program = load_str(path, text, &opts);
    let Some(root) = program.root() else {
        return;
    };
    if program.has_errors() {
        return;
    }
    let ir = lower(&program);
    let generated = generate(&ir, &root.doc, &CodegenOptions::default());
    assert!(generated.code.contains("impl"), "codegen produced no Workflow impl");
});
