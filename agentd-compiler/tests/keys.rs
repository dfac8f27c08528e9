//! The key registry test ("make the class impossible"): every key of the document
//! model, enumerated from the model itself (its JSON Schema, see
//! `agentd_compiler::schema::key_paths`), is in `agentd_compiler::keys::KEYS` exactly
//! once, as honoured (naming a test that exists) or diagnosed (naming a registered
//! code); and the registry names no key the model lacks. There is no third status:
//! a key nobody has shown working in a built binary cannot be registered.

use std::collections::{BTreeMap, BTreeSet};

use agentd_compiler::keys::{KEYS, KeyStatus};
use agentd_compiler::schema::key_paths;

#[path = "../../tests/support/mod.rs"]
mod support;

use support::workspace;

#[test]
fn the_model_walk_finds_every_section_kind_and_variant() {
    let keys = key_paths();
    assert!(keys.len() > 150, "only {} keys found", keys.len());
    for known in [
        "name",
        "nodes[llm_infer].prompt",
        "nodes[].type",
        "secrets[env].var",
        "auth.oidc.*.issuer",
        "server.tls.client_auth.mode",
        "nodes[parallel].branches[].workflow",
    ] {
        assert!(
            keys.iter().any(|k| k == known),
            "{known} missing from {keys:#?}"
        );
    }
}

#[test]
fn every_model_key_is_registered_exactly_once_and_nothing_else_is() {
    let model = key_paths();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, _) in KEYS {
        *seen.entry(key).or_default() += 1;
    }
    let mut problems = Vec::new();
    for (key, n) in &seen {
        if *n > 1 {
            problems.push(format!("`{key}` is registered {n} times; keep one entry"));
        }
    }
    for (i, key) in model.iter().enumerate() {
        if !seen.contains_key(key.as_str()) {
            let after = i
                .checked_sub(1)
                .and_then(|j| model.get(j))
                .map_or("the start of KEYS".to_string(), |k| {
                    format!("the `{k}` line")
                });
            problems.push(format!(
                "model key `{key}` is not in agentd-compiler/src/keys.rs; add after {after}:\n                     (\"{key}\", Honoured(\"tests/FILE.rs::test_showing_it_in_a_built_binary\")),\n                   or, when every use is reported by a diagnostic:\n                     (\"{key}\", Diagnosed(Code::TheCode)),"
            ));
        }
    }
    let model: BTreeSet<&str> = model.iter().map(String::as_str).collect();
    for key in seen.keys() {
        if !model.contains(key) {
            problems.push(format!(
                "`{key}` is in agentd-compiler/src/keys.rs but is not a key of the model                  (renamed or removed?); delete or rename its line"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "key registry:\n{}",
        problems.join("\n")
    );
}

/// True when `file` holds `fn name(` marked `#[test]` (other attributes, even
/// spread over several lines, may sit between).
fn test_exists(file: &str, name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(workspace().join(file)) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        line.trim_start().starts_with(&format!("fn {name}("))
            && lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty() && !l.trim_end().ends_with('}'))
                .any(|l| l.trim() == "#[test]")
    })
}

#[test]
fn every_honoured_key_names_a_test_that_exists() {
    let mut problems = Vec::new();
    for (key, status) in KEYS {
        if let KeyStatus::Honoured(test) = status {
            let Some((file, name)) = test.split_once("::") else {
                problems.push(format!("`{key}`: `{test}` is not FILE::FUNCTION"));
                continue;
            };
            if !test_exists(file, name) {
                problems.push(format!(
                    "`{key}`: no #[test] fn {name} in {file} (relative to the workspace root)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
