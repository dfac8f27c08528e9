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

use crate::policy::{Patterns, Policy};

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
        let Some((_, keys)) = SECTIONS.iter().find(|(s, _)| *s == name_str) else {
            return Err(unknown(
                text,
                name.span(),
                "section",
                name_str,
                SECTIONS.iter().map(|(s, _)| *s),
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

    #[test]
    fn errors_point_at_the_offending_key() {
        let err = parse("[policy.fs]\nreed = []\n").expect_err("typo");
        assert!(err.starts_with("line 2, column 1:"), "{err}");
        assert!(err.contains("`reed`") && err.contains("`read`"), "{err}");
        let err = parse("[policy.fs]\nread = [\"a\", 7]\n").expect_err("type");
        assert!(err.starts_with("line 2, column 14:"), "{err}");
    }
}
