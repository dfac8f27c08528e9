//! The JSON Schema (draft 2020-12) of a workflow file, derived from [`crate::model`].
//!
//! Owns the one place the schema is produced: `agentd schema` prints it for editors
//! (taplo / Even Better TOML read it through `#:schema` or `.taplo.toml`), and the key
//! registry test (`tests/keys.rs`) walks it to enumerate every key of the model. It is
//! generated from the serde types with `schemars`, never written by hand, so it cannot
//! drift from what the parser accepts; doc comments on the model become descriptions.
//! It describes *shape* only: cross-references and the validator's rules are not in it.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

use crate::model::{WorkflowDoc, WrappedDoc};

/// The `$id` of the schema; stable so editors can cache it.
pub const SCHEMA_ID: &str = "https://agentd.invalid/schema/dialect-1.json";

/// A workflow file: the workflow's keys at the top level, or the wrapped shape
/// `[[workflows]]` holding exactly one workflow.
#[derive(JsonSchema)]
#[serde(untagged)]
// Only its schema is used (files are parsed by `parse`), so never built or moved.
#[allow(dead_code, clippy::large_enum_variant)]
enum WorkflowFile {
    Plain(WorkflowDoc),
    Wrapped(WrappedDoc),
}

/// The schema as a JSON value.
pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<WorkflowFile>();
    schema.insert("$id".into(), SCHEMA_ID.into());
    schema.insert("title".into(), "agentd workflow (dialect 1)".into());
    let mut value = schema.to_value();
    adjust(&mut value);
    value
}

/// Post-processing of schemars' output so the schema accepts exactly what `parse`
/// accepts:
/// - TOML has no null (an absent key is the only way to leave an option unset), so
///   the `null` alternatives schemars gives every `Option` are dropped, with their
///   `"default": null`;
/// - a struct that flattens a tagged enum (`[[nodes]]`, `[[secrets]]`) gets
///   `unevaluatedProperties: false`, since serde refuses keys neither the struct nor
///   the selected variant declares, and schemars drops `additionalProperties` when
///   flattening; a variant without keys of its own (`merge`, `terminate`) accepts and
///   ignores any extra key in dialect 1, so it marks them all evaluated.
fn adjust(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("default").is_some_and(serde_json::Value::is_null) {
                map.remove("default");
            }
            drop_null(map);
            let flattened_enum = map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && map.get("oneOf").is_some_and(serde_json::Value::is_array);
            if flattened_enum {
                map.insert("unevaluatedProperties".into(), false.into());
                if let Some(serde_json::Value::Array(variants)) = map.get_mut("oneOf") {
                    for variant in variants {
                        let keyless = variant
                            .get("properties")
                            .and_then(serde_json::Value::as_object)
                            .is_some_and(|p| p.len() == 1);
                        if let (true, Some(v)) = (keyless, variant.as_object_mut()) {
                            v.insert("unevaluatedProperties".into(), true.into());
                        }
                    }
                }
            }
            map.values_mut().for_each(adjust);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(adjust),
        _ => {}
    }
}

/// The schema as pretty-printed JSON with a trailing newline (what `agentd schema`
/// prints).
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// Removes `null` from `"type": [T, "null"]` and `{"type": "null"}` from `anyOf`.
fn drop_null(map: &mut serde_json::Map<String, serde_json::Value>) {
    if let Some(serde_json::Value::Array(types)) = map.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            map.insert("type".into(), only);
        }
    }
    let is_null = |v: &serde_json::Value| v.get("type").is_some_and(|t| t == "null");
    let single = match map.get_mut("anyOf") {
        Some(serde_json::Value::Array(alts)) if alts.iter().any(is_null) => {
            alts.retain(|a| !is_null(a));
            match alts.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(serde_json::Value::Object(only)) = single {
        map.remove("anyOf");
        for (k, v) in only {
            map.entry(k).or_insert(v);
        }
    }
}

/// Every key path of the model, read off [`json_schema`], sorted: `policy.fs.read`,
/// `nodes[].retry.jitter`, `nodes[llm_infer].prompt` (a key of one variant of a
/// tagged array), `nodes[].type` (the tag), `auth.bearer.*.tokens` (`*` is a name the
/// user chooses). Tables are listed as well as their keys. The wrapped shape adds
/// only `workflows`, whose entries have the same keys as the bare shape.
pub fn key_paths() -> Vec<String> {
    let schema = json_schema();
    let mut out = std::collections::BTreeSet::new();
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    let walker = KeyWalker { defs: &defs };
    if let Some(root) = defs.get("WorkflowDoc") {
        walker.walk(root, "", &mut out);
    }
    out.insert("workflows".to_string());
    out.into_iter().collect()
}

struct KeyWalker<'a> {
    defs: &'a serde_json::Value,
}

impl KeyWalker<'_> {
    fn resolve<'s>(&'s self, schema: &'s serde_json::Value) -> &'s serde_json::Value {
        match schema
            .get("$ref")
            .and_then(serde_json::Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            Some(name) => self.defs.get(name).unwrap_or(schema),
            None => schema,
        }
    }

    fn walk(
        &self,
        schema: &serde_json::Value,
        path: &str,
        out: &mut std::collections::BTreeSet<String>,
    ) {
        let schema = self.resolve(schema);
        let join = |key: &str| {
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        };
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (key, sub) in props {
                let p = join(key);
                out.insert(p.clone());
                self.walk(sub, &p, out);
            }
        }
        if let Some(items) = schema.get("items") {
            self.walk(items, &format!("{path}[]"), out);
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            self.walk(values, &join("*"), out);
        }
        for variant in ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(|v| v.as_array()))
            .flatten()
        {
            let variant = self.resolve(variant);
            let Some(props) = variant.get("properties").and_then(|p| p.as_object()) else {
                continue;
            };
            let tag = props
                .iter()
                .find_map(|(k, v)| v.get("const").and_then(|c| c.as_str()).map(|c| (k, c)));
            let Some((tag_key, tag_value)) = tag else {
                self.walk(variant, path, out);
                continue;
            };
            out.insert(join(tag_key));
            let base = path.strip_suffix("[]").unwrap_or(path);
            let prefix = format!("{base}[{tag_value}]");
            for (key, sub) in props.iter().filter(|(k, _)| *k != tag_key) {
                let p = format!("{prefix}.{key}");
                out.insert(p.clone());
                self.walk(sub, &p, out);
            }
        }
    }
}
