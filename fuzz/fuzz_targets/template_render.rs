//! Arbitrary templates and contexts through both renderers.
//!
//! The template text is split the way a build splits it (`agentd_compiler::ir::
//! split_template`, the code behind every baked `Template`), then rendered with the
//! engine renderer (`Template::render`, docs/dialect.md §9.2) and the LLM renderer
//! (`Template::render_llm`, docs/dialect.md §9.2) against the context and against `null`; every
//! key's path also goes through `template::walk_relative` (shared with
//! `json_select`).
//!
//! Input (see `fuzz/seeds/template_render/`): `<template> NUL <context JSON>`. With
//! no NUL, or a context that is not JSON, a fixed nested context is used.
//!
//! Properties: nothing panics; a template without a `{{key}}` renders to itself in
//! both renderers; over an object context, keys of one non-empty segment render the
//! same in both (they only differ on arrays and empty segments).

#![no_main]

use agentd_compiler::ir::{SegIr, split_template};
use agentd_fuzz::Arena;
use agentd_runtime::template::{Seg, Template, walk_relative};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn fallback_context() -> Value {
    json!({
        "user": {"name": "Ada", "tags": ["a", "b"], "age": 36},
        "items": [{"id": 1}, {"id": "two"}, null],
        "": {"": "empty keys"},
        "none": null,
        "é": "ü ✓",
    })
}

fuzz_target!(|data: &[u8]| {
    let (text, context) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], serde_json::from_slice(&data[i + 1..]).ok()),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(text);
    let context: Value = context.unwrap_or_else(fallback_context);
    let split = split_template(&text);

    // SAFETY: the arena and everything lent from it live only in this closure
    // call, and the arena is declared first, so it is dropped last.
    let mut arena = unsafe { Arena::new() };
    let mut segs = Vec::with_capacity(split.len());
    for seg in &split {
        segs.push(match seg {
            SegIr::Lit(t) => Seg::Lit(arena.str(t)),
            SegIr::Key { raw, path } => {
                let path: Vec<&'static str> = path.iter().map(|p| arena.str(p)).collect();
                Seg::Key {
                    raw: arena.str(raw),
                    path: arena.slice(path),
                }
            }
            SegIr::Json { raw, path } => {
                let path: Vec<&'static str> = path.iter().map(|p| arena.str(p)).collect();
                Seg::Json {
                    raw: arena.str(raw),
                    path: arena.slice(path),
                }
            }
        });
    }
    let template = Template(arena.slice(segs));

    let engine = template.render(&context);
    let llm = template.render_llm(&context);
    let _ = template.render(&Value::Null);
    let _ = template.render_llm(&Value::Null);
    for seg in template.0 {
        if let Seg::Key { path, .. } = seg {
            let _ = walk_relative(&context, path);
        }
    }

    let keys: Vec<&[&str]> = template
        .0
        .iter()
        .filter_map(|s| match s {
            Seg::Key { path, .. } | Seg::Json { path, .. } => Some(*path),
            Seg::Lit(_) => None,
        })
        .collect();
    if keys.is_empty() {
        assert_eq!(engine, text, "a template without keys renders to itself");
        assert_eq!(llm, text, "a template without keys renders to itself (llm)");
    }
    if context.is_object() && keys.iter().all(|p| p.len() == 1 && !p[0].is_empty()) {
        assert_eq!(
            engine, llm,
            "single-segment keys over an object render alike"
        );
    }
});
