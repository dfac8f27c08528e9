//! `agentd schema` is a JSON Schema the files agentd accepts satisfy, and that refuses
//! what the parser refuses wherever JSON Schema can say so (checked with the
//! `jsonschema` crate, draft 2020-12, on the TOML converted to JSON).

use std::path::Path;
use std::process::Command;

use agentd_compiler::parse::parse_str;

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{compat, workspace};

fn validator() -> jsonschema::Validator {
    let schema = agentd_compiler::schema::json_schema();
    jsonschema::draft202012::new(&schema).expect("the schema is a valid 2020-12 schema")
}

fn to_json(text: &str) -> serde_json::Value {
    let table: toml::Table = toml::from_str(text).expect("test input is TOML");
    serde_json::to_value(table).expect("TOML converts to JSON")
}

/// Every schema error for `text`, one per line.
fn schema_errors(v: &jsonschema::Validator, text: &str) -> Vec<String> {
    let json = to_json(text);
    v.iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn agentd_schema_prints_the_library_schema_as_2020_12_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .arg("schema")
        .output()
        .expect("run agentd schema");
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("agentd schema prints JSON");
    assert_eq!(printed, agentd_compiler::schema::json_schema());
    assert_eq!(
        printed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // Doc comments on the model are the editor's hover text.
    let retry = &printed["$defs"]["RetryPolicy"]["properties"]["jitter"]["description"];
    assert!(retry.as_str().is_some_and(|d| !d.is_empty()), "{retry}");
}

#[test]
fn every_example_workflow_satisfies_the_schema() {
    let v = validator();
    let files = compat::toml_files(&[workspace().join("workflows")]);
    assert!(files.len() >= 5, "only {} workflows found", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read workflow");
        let errors = schema_errors(&v, &text);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn every_compat_workflow_satisfies_the_schema() {
    let compat = compat::dir();
    let v = validator();
    let files = compat::toml_files(
        &["examples", "fixtures", "fixture-suite", "corpus"].map(|sub| compat.join(sub)),
    );
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read compat file");
        let table: toml::Table = toml::from_str(&text).expect("compat files are TOML");
        // Scenarios carry their workflow as `[workflow] inline`.
        let workflow = match table.get("workflow").and_then(|w| w.get("inline")) {
            Some(toml::Value::String(inline)) => inline.clone(),
            _ if ["name", "nodes", "workflows"]
                .iter()
                .any(|k| table.contains_key(*k))
                && !table.contains_key("expected")
                && !table.contains_key("mocks") =>
            {
                text
            }
            _ => continue,
        };
        checked += 1;
        let errors = schema_errors(&v, &workflow);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
    assert!(checked >= 20, "only {checked} compat workflows found");
}

/// Each class of shape error JSON Schema can express: the schema refuses it, and so
/// does the parser (the schema never promises more than `agentd check`).
#[test]
fn each_shape_error_the_schema_can_express_is_refused_by_schema_and_parser() {
    let v = validator();
    let base = "name = \"w\"\n";
    let node = "[[nodes]]\nid = \"a\"\ntype = \"terminate\"\n";
    let cases: &[(&str, String)] = &[
        ("unknown top-level key", format!("{base}colour = 1\n{node}")),
        ("missing workflow name", node.to_string()),
        (
            "unknown key of a node kind",
            format!("{base}[[nodes]]\nid = \"r\"\ntype = \"read_env\"\nkey = \"K\"\nkeys = 1\n"),
        ),
        (
            "missing required key of a node kind",
            format!("{base}[[nodes]]\nid = \"r\"\ntype = \"read_env\"\n"),
        ),
        (
            "node without id",
            format!("{base}[[nodes]]\ntype = \"terminate\"\n"),
        ),
        (
            "unknown node type",
            format!("{base}[[nodes]]\nid = \"a\"\ntype = \"teleport\"\n"),
        ),
        (
            "wrong value type",
            format!("{base}{node}retry = {{ max_attempts = \"3\" }}\n"),
        ),
        (
            "negative unsigned integer",
            format!("{base}{node}retry = {{ max_attempts = -1 }}\n"),
        ),
        (
            "unknown key in retry",
            format!("{base}{node}retry = {{ max_attempts = 2, backof_ms = 5 }}\n"),
        ),
        (
            "unknown enum value",
            format!("{base}{node}retry = {{ max_attempts = 2, on = \"sometimes\" }}\n"),
        ),
        (
            "unknown trigger type",
            format!("{base}{node}[[triggers]]\ntype = \"webhook\"\nstart_node = \"s\"\n"),
        ),
        (
            "unknown key of a trigger",
            format!(
                "{base}{node}[[triggers]]\ntype = \"cron\"\nschedule = \"* * * * *\"\nstart_node = \"s\"\nzone = \"UTC\"\n"
            ),
        ),
        (
            "unknown policy section key",
            format!("{base}{node}[policy.fs]\nread = []\nexecute = []\n"),
        ),
        (
            "unknown provider",
            format!("{base}{node}[[intelligence.backends]]\nname = \"b\"\nprovider = \"skynet\"\n"),
        ),
        (
            "unknown secret source",
            format!("{base}{node}[[secrets]]\nname = \"s\"\nsource = \"vault\"\n"),
        ),
        (
            "key of another secret source",
            format!(
                "{base}{node}[[secrets]]\nname = \"s\"\nsource = \"env\"\nvar = \"V\"\npath = \"/p\"\n"
            ),
        ),
        (
            "unknown key in an auth binding",
            format!("{base}{node}[auth.bearer.api]\ntokens_env = \"T\"\ntoken = \"x\"\n"),
        ),
        (
            "wrapped file with two workflows",
            "[[workflows]]\nname = \"a\"\n[[workflows]]\nname = \"b\"\n".to_string(),
        ),
        (
            "edge without to",
            format!("{base}{node}[[edges]]\nfrom = \"a\"\n"),
        ),
    ];
    for (class, text) in cases {
        assert!(
            !schema_errors(&v, text).is_empty(),
            "the schema accepts {class}:\n{text}"
        );
        let parsed = parse_str(Path::new("case.toml"), text);
        assert!(
            parsed.doc.is_none() || parsed.diagnostics.iter().any(|d| d.is_error()),
            "the parser accepts {class} the schema refuses:\n{text}"
        );
    }
}

#[test]
fn merge_and_terminate_extra_keys_satisfy_the_schema_as_they_parse() {
    // Dialect 1 accepts and ignores extra keys on the unit kinds (the validator warns
    // `key_has_no_effect`); the schema mirrors the parser, not the warning.
    let v = validator();
    let text = "name = \"w\"\n[[nodes]]\nid = \"m\"\ntype = \"merge\"\nwhy = \"join\"\n";
    assert!(schema_errors(&v, text).is_empty());
    assert!(parse_str(Path::new("m.toml"), text).doc.is_some());
}
