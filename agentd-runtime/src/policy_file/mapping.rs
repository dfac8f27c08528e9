//! Reading a policy override file: the `toml` crate's parser (parse-only, no serde)
//! and a strict mapping of its spanned tree onto [`Policy`].
//!
//! An override file is one `[policy]` table whose sections hold string arrays. The
//! document is parsed by `toml::de::DeTable` — the real TOML parser, never a
//! hand-written one — and mapped here without serde's derive: monomorphising a serde
//! deserializer for `Policy` costs more binary size than the parser itself
//! (docs/performance.md). The mapping is fail-closed: an unknown table or key, a
//! value that is not an array of strings, or `[[policy]]` is refused with the
//! `line L, column C` of the offending item. The differential tests in `tests` check
//! it against the `toml` crate's serde path.

use std::borrow::Cow;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::policy::rego::DEFAULT_QUERY;
use crate::policy::{Patterns, Policy, RegoCache, RegoPolicy};

/// The `[policy]` schema: section → keys.
const SECTIONS: &[(&str, &[&str])] = &[
    ("fs", &["read", "write", "delete", "list"]),
    ("env", &["read_keys"]),
    ("http", &["urls", "methods"]),
    ("shell", &["commands"]),
    ("mcp", &["servers", "tools", "resources"]),
];

/// Parse an override file into a [`Policy`].
pub(super) fn parse(text: &str) -> Result<Policy, String> {
    let root = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        located(
            text,
            at,
            format!("invalid TOML: {}", e.message().trim_end()),
        )
    })?;
    let mut policy = None;
    for (key, value) in root.get_ref() {
        if key.get_ref() != "policy" {
            return Err(located(
                text,
                key.span().start,
                format!(
                    "unknown table `{}`; an override file holds only `[policy]`",
                    key.get_ref()
                ),
            ));
        }
        let DeValue::Table(sections) = value.get_ref() else {
            return Err(located(
                text,
                value.span().start,
                "`policy` must be a table",
            ));
        };
        policy = Some(read_policy(text, sections)?);
    }
    policy.ok_or_else(|| "missing table `[policy]`".to_owned())
}

fn read_policy(text: &str, sections: &DeTable<'_>) -> Result<Policy, String> {
    let mut policy = Policy::default();
    for (name, value) in sections {
        let name_str: &str = name.get_ref();
        if name_str == "rego" {
            // Never ignored: a binary that cannot evaluate Rego refuses the file
            // (without the code that reads the section, which every binary would carry).
            if !cfg!(feature = "rego") {
                return Err(located(
                    text,
                    name.span().start,
                    "`[policy.rego]` needs Rego support, and this binary was built without \
                     it (only workflows that declare `[policy.rego]` include it)",
                ));
            }
            policy.rego = Some(read_rego(text, value.get_ref(), value.span())?);
            continue;
        }
        let Some((_, keys)) = SECTIONS.iter().find(|(s, _)| *s == name_str) else {
            return Err(unknown(
                text,
                name.span(),
                "section",
                name_str,
                SECTIONS.iter().map(|(s, _)| *s).chain(["rego"]),
            ));
        };
        let DeValue::Table(table) = value.get_ref() else {
            return Err(located(
                text,
                value.span().start,
                format!("`policy.{name_str}` must be a table"),
            ));
        };
        for (key, list) in table {
            let key_str: &str = key.get_ref();
            if !keys.contains(&key_str) {
                return Err(unknown(
                    text,
                    key.span(),
                    "key",
                    key_str,
                    keys.iter().copied(),
                ));
            }
            let patterns = string_array(text, name_str, key_str, list.get_ref(), list.span())?;
            *slot(&mut policy, name_str, key_str) = patterns;
        }
    }
    Ok(policy)
}

/// `[policy.rego]` of an override file: `inline` (required), `data`, `query`.
///
/// `file` is refused: the policy text must be in the override file itself, so that
/// its signature (when the binary requires signed policy) covers it. The text is
/// compiled here, so a policy that does not compile refuses the file (at start, or
/// the reload) instead of denying every check later.
fn read_rego(text: &str, value: &DeValue<'_>, span: Range<usize>) -> Result<RegoPolicy, String> {
    let DeValue::Table(table) = value else {
        return Err(located(text, span.start, "`policy.rego` must be a table"));
    };
    let mut rego = RegoPolicy {
        origin: Cow::Borrowed("inline"),
        data: Cow::Borrowed("{}"),
        query: Cow::Borrowed(DEFAULT_QUERY),
        cache: interpreter(),
        ..RegoPolicy::default()
    };
    let mut inline = None;
    for (key, item) in table {
        let at = item.span().start;
        match (key.get_ref().as_ref(), item.get_ref()) {
            ("inline", DeValue::String(s)) => inline = Some(s.to_string()),
            ("query", DeValue::String(s)) => rego.query = Cow::Owned(s.to_string()),
            ("data", DeValue::Table(_)) => {
                rego.data = Cow::Owned(to_json(item.get_ref()).to_string());
            }
            ("file", _) => {
                return Err(located(
                    text,
                    key.span().start,
                    "`policy.rego.file` is not accepted in an override file; put the policy \
                     text in `inline`, so the file's signature covers it",
                ));
            }
            ("inline" | "query", other) => {
                return Err(located(
                    text,
                    at,
                    format!(
                        "`policy.rego.{}` must be a string; found {}",
                        key.get_ref(),
                        other.type_str()
                    ),
                ));
            }
            ("data", other) => {
                return Err(located(
                    text,
                    at,
                    format!(
                        "`policy.rego.data` must be a table; found {}",
                        other.type_str()
                    ),
                ));
            }
            (other, _) => {
                return Err(unknown(
                    text,
                    key.span(),
                    "key",
                    other,
                    ["inline", "data", "query"].into_iter(),
                ));
            }
        }
    }
    let Some(source) = inline else {
        return Err(located(
            text,
            span.start,
            "`[policy.rego]` needs `inline`, the policy text",
        ));
    };
    rego.source = Cow::Owned(source);
    compile_rego(rego).map_err(|e| located(text, span.start, e))
}

/// A cache holding this binary's Rego interpreter (none without feature `rego`:
/// such a binary refuses an override with `[policy.rego]` before this).
fn interpreter() -> RegoCache {
    #[cfg(feature = "rego")]
    {
        RegoCache::with(&crate::rego::INTERPRETER)
    }
    #[cfg(not(feature = "rego"))]
    {
        RegoCache::new()
    }
}

/// Compile `rego` as Rego v1, else as v0 (dialect 1's syntax), as the compiler
/// does for a workflow's `[policy.rego]`.
fn compile_rego(mut rego: RegoPolicy) -> Result<RegoPolicy, String> {
    let v1 = match rego.compile() {
        Ok(()) => return Ok(rego),
        Err(e) => e,
    };
    rego.v0 = true;
    rego.cache = interpreter();
    if rego.compile().is_ok() {
        return Ok(rego);
    }
    Err(format!("`[policy.rego]` does not compile: {v1}"))
}

/// A TOML value as JSON, for Rego's `data` (datetimes become their TOML text).
fn to_json(value: &DeValue<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or_else(|_| J::String(i.to_string()), J::from),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| J::String(f.as_str().to_owned()), J::Number),
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(items) => J::Array(items.iter().map(|i| to_json(i.get_ref())).collect()),
        DeValue::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}

fn string_array(
    text: &str,
    section: &str,
    key: &str,
    value: &DeValue<'_>,
    span: Range<usize>,
) -> Result<Patterns, String> {
    let DeValue::Array(items) = value else {
        return Err(located(
            text,
            span.start,
            format!("`policy.{section}.{key}` must be an array of strings"),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => out.push(Cow::Owned(s.to_string())),
            other => {
                return Err(located(
                    text,
                    item.span().start,
                    format!(
                        "`policy.{section}.{key}` must hold strings; found {}",
                        other.type_str()
                    ),
                ));
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// The field of `policy` that `section.key` names (both already validated).
fn slot<'p>(policy: &'p mut Policy, section: &str, key: &str) -> &'p mut Patterns {
    match (section, key) {
        ("fs", "read") => &mut policy.fs.read,
        ("fs", "write") => &mut policy.fs.write,
        ("fs", "delete") => &mut policy.fs.delete,
        ("fs", "list") => &mut policy.fs.list,
        ("env", _) => &mut policy.env.read_keys,
        ("http", "urls") => &mut policy.http.urls,
        ("http", _) => &mut policy.http.methods,
        ("shell", _) => &mut policy.shell.commands,
        ("mcp", "servers") => &mut policy.mcp.servers,
        ("mcp", "tools") => &mut policy.mcp.tools,
        _ => &mut policy.mcp.resources,
    }
}

fn unknown<'a>(
    text: &str,
    span: Range<usize>,
    what: &str,
    name: &str,
    expected: impl Iterator<Item = &'a str>,
) -> String {
    let expected: Vec<String> = expected.map(|e| format!("`{e}`")).collect();
    located(
        text,
        span.start,
        format!(
            "unknown {what} `{name}`, expected one of {}",
            expected.join(", ")
        ),
    )
}

/// Prefix `message` with the 1-based line and column of byte `at`.
fn located(text: &str, at: usize, message: impl std::fmt::Display) -> String {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the `toml` crate through serde, as before this reader existed.
    fn reference(text: &str) -> Result<Policy, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            policy: Policy,
        }
        toml::from_str::<File>(text)
            .map(|f| f.policy)
            .map_err(|e| e.to_string())
    }

    const VALID: &[&str] = &[
        "[policy]\n",
        "[policy.fs]\nread = [\"/data/**\"]\n",
        "[policy.fs]\r\nread = [\"/a\", '/b']\r\nwrite = []\r\n",
        "# c\n[policy] # c\nfs.read = [ # c\n  \"/a\", # c\n  \"/b\",\n]\nenv = { read_keys = [\"HOME\", 'P*'] }\n",
        "[ policy . \"fs\" ]\n'write' = [\"/tmp/\\u00e9\\t\\\\x\\\"\"]\n",
        "policy.http.urls = [\"https://a/**\"]\npolicy.http.methods = ['GET']\n",
        "policy = { shell = { commands = [\"/bin/ls\"] }, mcp = { tools = [\"*\"], servers = [], resources = [\"r\"] } }\n",
        "[policy.env]\nread_keys = [\"A\"]\n[policy.fs]\nlist = [\"/x\"]\ndelete = [\"/y\"]",
        "\n\n[policy]\n\n[policy.fs]\nread=['C:\\path']\n",
        "[policy.fs]\nread = [\"\"\"a\"\"\"]\n",
        "[policy.fs]\nread = [\'\'\'a\'\'\']\n",
    ];

    const INVALID: &[&str] = &[
        "",
        "[fs]\nread = []\n",
        "[policy.fs]\nreed = []\n",
        "[policy.fs]\nread = \"/data/**\"\n",
        "[policy.fs]\nread = [1]\n",
        "[policy.fs]\nread = [true]\n",
        "[policy.fs]\nread = [\"a\"]\nread = [\"b\"]\n",
        "[policy.fs]\n[policy.fs]\n",
        "[policy\n",
        "[policy.fs]\nread = [\"a\" \"b\"]\n",
        "[policy.fs]\nread = [\"a\"] x\n",
        "[policy.fs]\nread = [\"\\q\"]\n",
        "[policy.fs.read]\n",
        "[policy.nope]\n",
        "policy = 3\n",
        "[policy.fs]\nread = [\"a\nb\"]\n",
        "[policy.fs]\nread = [\"a\"]\n[policy]\nfs.read = [\"b\"]\n",
        "[policy.fs]\nread = [[\"a\"]]\n",
        "[policy.fs]\nread = [\"\\uD800\"]\n",
    ];

    /// TOML the reference accepts only because serde reads a struct from a sequence:
    /// `[[policy]]` and `fs = []` are not policies, so the mapping refuses them.
    const UNSUPPORTED: &[&str] = &["[[policy]]\n", "[policy]\nfs = []\n"];

    #[test]
    fn unsupported_toml_is_refused_with_a_location() {
        for text in UNSUPPORTED {
            assert!(reference(text).is_ok(), "reference refuses {text:?}");
            let err = parse(text).expect_err(text);
            assert!(err.starts_with("line "), "{text:?}: {err}");
        }
    }

    #[test]
    fn valid_files_read_the_same_as_the_toml_crate() {
        for text in VALID {
            let ours = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let theirs = reference(text).unwrap_or_else(|e| panic!("reference {text:?}: {e}"));
            assert_eq!(ours, theirs, "{text:?}");
        }
    }

    #[test]
    fn invalid_files_are_refused_like_the_toml_crate_refuses_them() {
        for text in INVALID {
            assert!(reference(text).is_err(), "reference accepts {text:?}");
            let err = parse(text).expect_err(text);
            assert!(
                err.starts_with("line ") || err.starts_with("missing"),
                "{text:?}: {err}"
            );
        }
    }

    #[cfg(feature = "rego")]
    #[test]
    fn a_rego_section_is_compiled_with_its_data_and_query() {
        let text = r#"[policy.env]
read_keys = ["*"]
[policy.rego]
query = "data.ops.ok"
inline = '''
package ops
ok if input.args.key in data.keys
'''
data = { keys = ["HOME"], n = 0x10, f = 1.5, when = 1979-05-27 }
"#;
        let p = parse(text).expect("valid");
        let rego = p.rego.as_ref().expect("rego");
        assert_eq!(rego.query, "data.ops.ok");
        assert!(!rego.v0);
        let data: serde_json::Value = serde_json::from_str(&rego.data).expect("json");
        assert_eq!(data["n"], 16);
        assert_eq!(data["f"], 1.5);
        assert_eq!(data["when"], "1979-05-27");
        assert!(matches!(
            p.check_env("HOME"),
            crate::policy::Decision::Allow
        ));
        assert!(!matches!(
            p.check_env("PATH"),
            crate::policy::Decision::Allow
        ));
        // Dialect 1's Rego v0 text is accepted too.
        let v0 = parse("[policy.rego]\ninline = \"package agent\\nallow { true }\"\n").expect("v0");
        assert!(v0.rego.as_ref().is_some_and(|r| r.v0));
    }

    #[cfg(feature = "rego")]
    #[test]
    fn a_bad_rego_section_refuses_the_file() {
        for (text, want) in [
            (
                "[policy.rego]\ninline = \"package agent\\nallow if {\"\n",
                "does not compile",
            ),
            (
                "[policy.rego]\nfile = \"p.rego\"\n",
                "not accepted in an override file",
            ),
            ("[policy.rego]\nquery = \"data.x\"\n", "needs `inline`"),
            (
                "[policy.rego]\ninline = \"package agent\"\ndata = 3\n",
                "must be a table",
            ),
            (
                "[policy.rego]\ninline = \"package agent\"\nbogus = 1\n",
                "unknown key `bogus`",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(
                err.starts_with("line ") && err.contains(want),
                "{text:?}: {err}"
            );
        }
    }

    #[cfg(not(feature = "rego"))]
    #[test]
    fn without_rego_support_a_rego_section_refuses_the_file() {
        let err = parse("[policy.rego]\ninline = \"package agent\\nallow := true\"\n")
            .expect_err("no rego feature");
        assert!(err.contains("built without"), "{err}");
    }

    #[test]
    fn errors_point_at_the_offending_key() {
        let err = parse("[policy.fs]\nreed = []\n").expect_err("typo");
        assert!(err.starts_with("line 2, column 1:"), "{err}");
        assert!(err.contains("`reed`") && err.contains("`read`"), "{err}");
        let err = parse("[policy.fs]\nread = [\"a\", 7]\n").expect_err("type");
        assert!(err.starts_with("line 2, column 14:"), "{err}");
    }
}
