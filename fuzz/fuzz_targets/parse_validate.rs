//! Arbitrary bytes through the compiler front end: parse, validate, render.
//!
//! The front end promises never to panic on any input (parse.rs, validate.rs); this
//! target holds it to that. Rendering is included because diagnostics carry byte spans
//! that the renderers slice the source with.

#![no_main]

use std::path::Path;

use agentd_compiler::diagnostics::{SourceDb, render_human, render_json};
use agentd_compiler::parse::parse_bytes;
use agentd_compiler::validate::{ValidateOptions, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.toml");
    let r = parse_bytes(path, data);
    let mut diags = r.diagnostics.clone();
    if let Some(doc) = &r.doc {
        diags.extend(validate(&r.source, doc, &ValidateOptions::for_file(path)));
    }
    let mut db = SourceDb::new();
    db.add(&r.source);
    let _ = render_human(&diags, &db, false);
    let _ = render_human(&diags, &db, true);
    let _ = render_json(&diags, &db);
});
