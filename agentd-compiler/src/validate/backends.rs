//! `[[intelligence.backends]]` completeness (ours, docs/dialect.md §15): a backend
//! definition the runtime could not serve is a build error, not a binary that
//! exits 2 at startup.
//!
//! - `incomplete_backend`: no `model`; no `api_key_env` for `anthropic`,
//!   `openai` or `gemini`; no `base_url` for `openai-compatible` (the fields
//!   docs/llm.md "Wire formats" requires). Only the root workflow's backends are checked:
//!   a child's are parsed but never applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{DEFAULT_BACKEND, Validator, did_you_mean, ticked};
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::loc;
use crate::model::{NodeKind, Provider};

impl Validator<'_> {
    pub(super) fn check_backend_defs(&mut self) {
        if self.parent.is_some() {
            return;
        }
        let Some(intel) = self.doc.intelligence.as_ref() else {
            return;
        };
        for (j, b) in intel.backends.iter().enumerate() {
            let provider = match b.provider {
                Provider::Anthropic => "anthropic",
                Provider::OpenAi => "openai",
                Provider::Gemini => "gemini",
                Provider::OpenAiCompatible => "openai-compatible",
            };
            let mut missing: Vec<(&str, &str, String)> = Vec::new();
            if b.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                missing.push((
                    "model",
                    "name",
                    format!("add `model = \"...\"`: the {provider} model id this backend uses"),
                ));
            }
            if b.provider != Provider::OpenAiCompatible && b.api_key_env.is_none() {
                missing.push((
                    "api_key_env",
                    "provider",
                    format!(
                        "add `api_key_env = \"NAME\"`: the secret (a [[secrets]] entry or environment \
                         variable) holding the {provider} API key"
                    ),
                ));
            }
            if b.provider == Provider::OpenAiCompatible && b.base_url.is_none() {
                missing.push((
                    "base_url",
                    "provider",
                    "add `base_url = \"http://host:port\"`: where the OpenAI-compatible server listens"
                        .to_owned(),
                ));
            }
            for (field, at, help) in missing {
                let d = Diagnostic::new(
                    Code::IncompleteBackend,
                    self.path(),
                    format!(
                        "intelligence backend `{}` (provider `{provider}`) has no `{field}`",
                        b.name
                    ),
                )
                .with_span(self.span(loc!["intelligence", "backends", j, at]))
                .with_label(format!("`{field}` is required here"))
                .with_help(help);
                self.push(d);
            }
        }
    }
}

impl<'a> Validator<'a> {
    // -- extra: intelligence backends -------------------------------------------------

    pub(super) fn check_backends(&mut self) {
        let defs = self
            .doc
            .intelligence
            .as_ref()
            .map(|i| i.backends.as_slice())
            .unwrap_or_default();
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (j, b) in defs.iter().enumerate() {
            let span = self.span(loc!["intelligence", "backends", j, "name"]);
            if b.name == DEFAULT_BACKEND {
                let d = Diagnostic::new(
                    Code::ReservedBackendName,
                    self.path(),
                    "the backend name `default` is reserved for the transport configured on the command line",
                )
                .with_span(span.clone())
                .with_label("reserved name")
                .with_help("give this backend another name and refer to it by that name in `backend = \"...\"`");
                self.push(d);
            }
            match first.get(b.name.as_str()) {
                None => {
                    first.insert(b.name.as_str(), j);
                }
                Some(&f) => {
                    let first_span = self.span(loc!["intelligence", "backends", f, "name"]);
                    let d = Diagnostic::new(
                        Code::DupBackendName,
                        self.path(),
                        format!(
                            "intelligence backend `{}` is declared more than once",
                            b.name
                        ),
                    )
                    .with_span(span)
                    .with_label("duplicate backend name")
                    .with_note(format!("first declared on {}", self.line(first_span)))
                    .with_help("give every [[intelligence.backends]] entry a unique `name`");
                    self.push(d);
                }
            }
        }
        // A child runs on the root's engine, whose registry holds the root's backends
        // only: a child's own [[intelligence.backends]] are never applied, so they
        // cannot make its nodes' backends known.
        let mut known: Vec<&str> = match self.parent {
            Some(root) => root.iter().map(String::as_str).collect(),
            None => defs.iter().map(|b| b.name.as_str()).collect(),
        };
        known.push(DEFAULT_BACKEND);
        known.sort_unstable();
        known.dedup();
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let backend = match &n.kind {
                NodeKind::LlmInfer(l) => l.backend.as_str(),
                NodeKind::AgentLoop(a) => a.backend.as_str(),
                _ => continue,
            };
            if known.contains(&backend) {
                continue;
            }
            let help = did_you_mean(backend, known.iter().copied()).unwrap_or_else(|| {
                format!(
                    "declare it: [[intelligence.backends]] name = \"{backend}\", provider = \"...\", model = \"...\"; \
                     or use `default` for the command-line transport"
                )
            });
            let d = Diagnostic::new(
                Code::UnknownBackend,
                self.path(),
                format!(
                    "node `{}` ({}) uses backend `{backend}`, which is not declared; known backends: {}",
                    n.id,
                    n.kind.type_name(),
                    ticked(known.iter().copied())
                ),
            )
            .with_span(self.span(loc!["nodes", i, "backend"]))
            .with_label("unknown backend")
            .with_help(help);
            let d = if self.parent.is_some() && defs.iter().any(|b| b.name == backend) {
                d.with_note(
                    "this child declares it, but a child runs on the root workflow's engine: \
                     only the root's [[intelligence.backends]] are applied; declare it there",
                )
            } else {
                d
            };
            self.push(d);
        }
    }

    // -- extra: output_schema files ---------------------------------------------------

    pub(super) fn schema_candidates(&self, p: &str) -> Vec<PathBuf> {
        let path = Path::new(p);
        if path.is_absolute() {
            return vec![path.to_path_buf()];
        }
        let mut out = vec![self.opts.base_dir.join(path)];
        let from_cwd = self.opts.cwd.join(path);
        if !out.contains(&from_cwd) {
            out.push(from_cwd);
        }
        out
    }

    pub(super) fn check_output_schemas(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::LlmInfer(l) = &n.kind else {
                continue;
            };
            let Some(schema) = l.output_schema.as_deref() else {
                continue;
            };
            if schema == "inline" {
                continue;
            }
            let candidates = self.schema_candidates(schema);
            let read = candidates
                .iter()
                .find_map(|c| std::fs::read(c).ok().map(|b| (c, b)));
            let problem = match read {
                None => Some((
                    format!(
                        "node `{}`: output_schema `{schema}` is not a readable file; only JSON validity will be checked",
                        n.id
                    ),
                    format!(
                        "tried {}",
                        candidates
                            .iter()
                            .map(|c| format!("`{}`", c.display()))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )),
                Some((c, bytes)) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(_) => None,
                    Err(e) => Some((
                        format!(
                            "node `{}`: output_schema file `{}` is not valid JSON: {e}",
                            n.id,
                            c.display()
                        ),
                        "a JSON Schema file must hold a JSON document".to_string(),
                    )),
                },
            };
            if let Some((msg, note)) = problem {
                let d = Diagnostic::new(Code::OutputSchemaUnreadable, self.path(), msg)
                    .with_span(self.span(loc!["nodes", i, "output_schema"]))
                    .with_label("schema file not usable")
                    .with_note(note)
                    .with_help(
                        "point `output_schema` at a JSON Schema file (relative to the workflow file), \
                         or write `output_schema = \"inline\"` to require only valid JSON",
                    );
                self.push(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes::Code;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate, validate_child};

    fn found(text: &str, child: bool) -> Vec<(String, String)> {
        let r = parse_str(Path::new("wf.toml"), text);
        let Some(doc) = r.doc else {
            panic!("parse failed: {:?}", r.diagnostics);
        };
        let all = if child {
            validate_child(&r.source, &doc, &ValidateOptions::default(), &[])
        } else {
            validate(&r.source, &doc, &ValidateOptions::default())
        };
        all.into_iter()
            .filter(|d| d.code == Code::IncompleteBackend)
            .map(|d| {
                assert!(d.help.is_some(), "incomplete_backend has a help line");
                let at = d
                    .span
                    .clone()
                    .and_then(|s| text.get(s))
                    .unwrap_or_default()
                    .to_owned();
                (d.message, at)
            })
            .collect()
    }

    fn backend(body: &str) -> String {
        format!("name = \"w\"\n[policy]\n[[intelligence.backends]]\nname = \"b\"\n{body}")
    }

    #[test]
    fn complete_definitions_pass() {
        for body in [
            "provider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"K\"\n",
            "provider = \"gemini\"\nmodel = \"m\"\napi_key_env = \"K\"\n",
            "provider = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\n",
            "provider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:8000\"\n",
        ] {
            assert_eq!(found(&backend(body), false), Vec::new(), "{body}");
        }
    }

    #[test]
    fn missing_model_key_and_base_url_are_reported_at_their_table() {
        assert_eq!(
            found(&backend("provider = \"anthropic\"\n"), false),
            vec![
                (
                    "intelligence backend `b` (provider `anthropic`) has no `model`".to_owned(),
                    "\"b\"".to_owned()
                ),
                (
                    "intelligence backend `b` (provider `anthropic`) has no `api_key_env`"
                        .to_owned(),
                    "\"anthropic\"".to_owned()
                ),
            ]
        );
        assert_eq!(
            found(
                &backend("provider = \"openai-compatible\"\nmodel = \"m\"\n"),
                false
            ),
            vec![(
                "intelligence backend `b` (provider `openai-compatible`) has no `base_url`"
                    .to_owned(),
                "\"openai-compatible\"".to_owned()
            )]
        );
    }

    #[test]
    fn a_childs_backends_are_not_applied_so_not_checked() {
        assert!(found(&backend("provider = \"gemini\"\n"), true).is_empty());
    }
}
