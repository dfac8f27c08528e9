//! `[[intelligence.backends]]` completeness (ours, DESIGN.md §8): a backend
//! definition the runtime could not serve is a build error, not a binary that
//! exits 2 at startup.
//!
//! - `incomplete_backend`: no `model`; no `api_key_env` for `anthropic`,
//!   `openai` or `gemini`; no `base_url` for `openai-compatible` (the fields
//!   dialect-ops §13 requires). Only the root workflow's backends are checked:
//!   a child's are parsed but never applied.

use super::Validator;
use crate::diagnostics::Diagnostic;
use crate::loc;
use crate::model::Provider;

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
                let d = Diagnostic::error(
                    "incomplete_backend",
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

#[cfg(test)]
mod tests {
    use std::path::Path;

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
            .filter(|d| d.code == "incomplete_backend")
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
