//! Arbitrary bytes as an open document, and every editor request at offsets taken
//! from the input: the language server promises never to panic on what a user types
//! (agentd-compiler/src/lsp). Seeds: the same corpus as `parse_validate`.

#![no_main]

use std::path::Path;

use agentd_compiler::frontend::lsp::analysis::Document;
use agentd_compiler::frontend::lsp::keys::KeyProbe;
use agentd_compiler::frontend::lsp::text::LineIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let doc = Document::new(Path::new("/fuzz/wf.toml"), &text);
    let index = LineIndex::new(&doc.text);
    let mut probe = KeyProbe::default();
    let whole = [(0..doc.text.len(), "dangling_edge")];
    // Offsets from the first bytes of the input, so the fuzzer steers them.
    for chunk in data.chunks(2).take(8) {
        let raw = chunk.iter().fold(0usize, |a, &b| a * 256 + usize::from(b));
        let pos = index.position(&doc.text, raw);
        let offset = index.offset(&doc.text, pos);
        let _ = doc.hover(offset, &whole);
        let _ = doc.definition(offset, Path::new("/fuzz"));
        let _ = doc.references(offset, true);
        let _ = doc.rename(offset, "renamed");
        let _ = doc.completion(offset, &mut probe);
    }
    let program = agentd_compiler::frontend::lsp::check(Path::new("/fuzz/wf.toml"), &doc.text, &Default::default());
    let _ = agentd_compiler::frontend::lsp::publishable(&program, Path::new("/fuzz/wf.toml"));
});
