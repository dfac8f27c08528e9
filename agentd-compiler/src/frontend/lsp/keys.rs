//! Which keys a table takes, asked of the parser itself.
//!
//! The model's serde types know every key (`deny_unknown_fields` lists them in its
//! "unknown field" error), so instead of keeping a second list that could drift, a
//! probe document with one unknown key in the table of interest is parsed and the
//! keys are read from the resulting diagnostic. Answers are cached per table.
//!
//! Node tables are the one special case: `[[nodes]]` is not `deny_unknown_fields`
//! (its extra keys go to the kind), so its own keys (`id`, `type`, `retry`) are
//! listed here and the kind's keys come from the probe.

use std::collections::HashMap;
use std::path::Path;

use crate::codes::Code;

/// The key written into probe documents; no table has a key of this name.
const PROBE: &str = "agentd_lsp_probe_key";

/// The keys of `[[nodes]]` itself (model::Node), before the kind's keys.
const NODE_KEYS: [&str; 3] = ["id", "type", "retry"];

/// A cache of probe answers.
#[derive(Debug, Default)]
pub struct KeyProbe {
    cache: HashMap<(String, Option<String>), Vec<String>>,
    /// Reference rows of keys (searching the reference is the slow part of a
    /// completion request).
    docs: HashMap<(String, Option<String>, String), Option<String>>,
}

impl KeyProbe {
    /// The keys valid in the table `header` (dotted, empty for the top level).
    /// `array_headers` are the headers written as `[[...]]` in the document;
    /// `node_type` is the enclosing node's `type`, when in a node.
    pub fn keys(
        &mut self,
        header: &str,
        array_headers: &[String],
        node_type: Option<&str>,
    ) -> Vec<String> {
        let in_node = header == "nodes" || header.starts_with("nodes.");
        let kind = node_type.filter(|_| in_node).map(str::to_string);
        let cache_key = (header.to_string(), kind.clone());
        if let Some(hit) = self.cache.get(&cache_key) {
            return hit.clone();
        }
        let mut keys = probe(header, array_headers, kind.as_deref());
        if header == "nodes" {
            let mut all: Vec<String> = NODE_KEYS.iter().map(|k| k.to_string()).collect();
            all.extend(
                keys.into_iter()
                    .filter(|k| !NODE_KEYS.contains(&k.as_str())),
            );
            keys = all;
        }
        self.cache.insert(cache_key, keys.clone());
        keys
    }

    /// [`super::docs::key_doc`] for a key of the table `header`, cached.
    pub fn key_doc(&mut self, header: &str, node_type: Option<&str>, key: &str) -> Option<String> {
        let cache_key = (
            header.to_string(),
            node_type.map(str::to_string),
            key.to_string(),
        );
        self.docs
            .entry(cache_key)
            .or_insert_with(|| {
                let context: Vec<String> = header
                    .split('.')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                super::docs::key_doc(&context, node_type, key)
            })
            .clone()
    }
}

/// Parse a document whose only unusual key sits in `header` and read the keys the
/// parser lists as expected.
fn probe(header: &str, array_headers: &[String], kind: Option<&str>) -> Vec<String> {
    let mut doc = String::from("name = \"probe\"\n");
    if !header.is_empty() {
        // Every enclosing array of tables must be opened as one first, or the
        // sub-table header would make it a plain table.
        let parts: Vec<&str> = header.split('.').collect();
        for i in 1..parts.len() {
            let prefix = parts[..i].join(".");
            if array_headers.contains(&prefix) {
                doc.push_str(&format!("[[{prefix}]]\n"));
                if prefix == "nodes" {
                    doc.push_str(&node_lines(kind));
                }
            }
        }
        if array_headers.iter().any(|h| h == header) {
            doc.push_str(&format!("[[{header}]]\n"));
        } else {
            doc.push_str(&format!("[{header}]\n"));
        }
        if header == "nodes" {
            doc.push_str(&node_lines(kind));
        }
    }
    doc.push_str(&format!("{PROBE} = 0\n"));
    let parsed = crate::parse::parse_str(Path::new("probe.toml"), &doc);
    parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::UnknownField && d.message.contains(PROBE))
        .find_map(|d| {
            d.message
                .split_once("expected")
                .map(|(_, rest)| backticked(rest))
        })
        .unwrap_or_default()
}

fn node_lines(kind: Option<&str>) -> String {
    match kind {
        Some(k) if !k.contains(['"', '\\', '\n']) => format!("id = \"probe\"\ntype = \"{k}\"\n"),
        _ => "id = \"probe\"\n".to_string(),
    }
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_model() {
        let mut p = KeyProbe::default();
        let top = p.keys("", &[], None);
        assert!(top.contains(&"start_nodes".to_string()), "{top:?}");
        assert!(top.contains(&"sandbox".to_string()), "{top:?}");
        assert_eq!(top.len(), 17, "{top:?}");
        assert_eq!(
            p.keys("nodes", &["nodes".into()], Some("read_file")),
            ["id", "type", "retry", "path_from"]
        );
        let fs = p.keys("policy.fs", &[], None);
        assert_eq!(fs, ["read", "write", "delete", "list"]);
        let retry = p.keys("nodes.retry", &["nodes".into()], Some("read_file"));
        assert!(retry.contains(&"max_attempts".to_string()), "{retry:?}");
    }
}
