//! Build-time pieces of the intelligence layer: resolving `llm_infer.output_schema`
//! to a baked schema (so a built binary never reads workflow-adjacent files), the
//! `llm_infer` node config, and the `[[intelligence.backends]]` / `[budget]` items of
//! the generated `Workflow` impl.
//!
//! Resolution mirrors the validator's `output_schema_unreadable` check: an absolute
//! path as is; a relative one against the workflow file's directory, then the current
//! directory. `"inline"`, an unreadable file and a file that is not JSON all mean
//! "valid JSON only" (the validator has already warned about the last two).

use std::path::{Path, PathBuf};

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::codegen::features::{Features, RuntimeFeature};
use crate::model::{BackendDef, LlmInfer, Provider, WorkflowDoc};

/// What an `output_schema` resolved to at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaIr {
    /// No `output_schema`.
    None,
    /// Valid JSON only.
    JsonOnly,
    /// A readable JSON file: its `output_schema` string and text.
    File { path: String, text: String },
}

/// Resolve `output_schema` for a workflow whose file lives in `base_dir`.
pub fn resolve_schema(output_schema: Option<&str>, base_dir: &Path) -> SchemaIr {
    let Some(p) = output_schema else {
        return SchemaIr::None;
    };
    if p == "inline" {
        return SchemaIr::JsonOnly;
    }
    let path = Path::new(p);
    let mut candidates: Vec<PathBuf> = Vec::new();
    if path.is_absolute() {
        candidates.push(path.to_path_buf());
    } else {
        candidates.push(base_dir.join(path));
        if let Ok(cwd) = std::env::current_dir() {
            candidates.push(cwd.join(path));
        }
    }
    for c in candidates {
        if let Ok(text) = std::fs::read_to_string(&c) {
            if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
                return SchemaIr::File {
                    path: p.to_string(),
                    text,
                };
            }
            return SchemaIr::JsonOnly;
        }
    }
    SchemaIr::JsonOnly
}

/// The `LlmInfer { .. }` config expression; `prompt` and `input_from` are already
/// token streams of the runtime's `Template` and `Option<CtxPath>`.
pub fn node_config(
    c: &LlmInfer,
    schema: &SchemaIr,
    prompt: TokenStream,
    input_from: TokenStream,
) -> TokenStream {
    let rt = quote!(::agentd_runtime::nodes::llm);
    let backend = Literal::string(&c.backend);
    let schema = match schema {
        SchemaIr::None => quote!(#rt::OutputSchema::None),
        SchemaIr::JsonOnly => quote!(#rt::OutputSchema::JsonOnly),
        SchemaIr::File { path, text } => {
            let (path, text) = (Literal::string(path), Literal::string(text));
            quote!(#rt::OutputSchema::File { path: #path, schema: #text })
        }
    };
    let repairs = Literal::u32_unsuffixed(c.output_repairs.unwrap_or(0));
    quote!(#rt::LlmInfer {
        backend: #backend,
        prompt: #prompt,
        input_from: #input_from,
        output_schema: #schema,
        output_repairs: #repairs,
    })
}

/// The root workflow's `[[intelligence.backends]]`.
pub fn backends(root: &WorkflowDoc) -> &[BackendDef] {
    root.intelligence
        .as_ref()
        .map(|i| i.backends.as_slice())
        .unwrap_or_default()
}

/// Add the runtime features the root's `[[intelligence.backends]]` need: the
/// remote providers' client (the `llm` family itself comes with the nodes).
pub fn add_features(root: &WorkflowDoc, features: &mut Features) {
    if !backends(root).is_empty() {
        features.insert(RuntimeFeature::LlmRemote);
    }
}

/// Items of the `Workflow` impl: `MAX_LLM_TOKENS` when `[budget]` sets it above 0 and
/// `BACKENDS` when the root declares backends (empty otherwise, keeping the trait's
/// defaults).
pub fn workflow_consts(root: &WorkflowDoc) -> TokenStream {
    let mut out = TokenStream::new();
    // `0` means no limit (as for every `[budget]` key), so it bakes nothing.
    if let Some(cap) = root
        .budget
        .as_ref()
        .and_then(|b| b.max_llm_tokens)
        .filter(|cap| *cap > 0)
    {
        let cap = Literal::u64_unsuffixed(cap);
        out.extend(quote!(const MAX_LLM_TOKENS: ::core::option::Option<u64> = ::core::option::Option::Some(#cap);));
    }
    let defs = backends(root);
    if !defs.is_empty() {
        let it = quote!(::agentd_runtime::intel);
        let opt = |v: Option<&String>| match v {
            Some(v) => {
                let l = Literal::string(v);
                quote!(::core::option::Option::Some(#l))
            }
            None => quote!(::core::option::Option::None),
        };
        let defs = defs.iter().map(|d| {
            let name = Literal::string(&d.name);
            let provider = match d.provider {
                Provider::Anthropic => quote!(#it::Provider::Anthropic),
                Provider::OpenAi => quote!(#it::Provider::OpenAi),
                Provider::Gemini => quote!(#it::Provider::Gemini),
                Provider::OpenAiCompatible => quote!(#it::Provider::OpenAiCompatible),
            };
            let model = Literal::string(d.model.as_deref().unwrap_or(""));
            let key = opt(d.api_key_env.as_ref());
            let base = opt(d.base_url.as_ref());
            let max = match d.max_tokens {
                Some(n) => {
                    let n = Literal::u32_unsuffixed(n);
                    quote!(::core::option::Option::Some(#n))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(#it::BackendDef {
                name: #name, provider: #provider, model: #model,
                api_key_env: #key, base_url: #base, max_tokens: #max,
            })
        });
        out.extend(
            quote!(const BACKENDS: &'static [::agentd_runtime::intel::BackendDef] = &[#(#defs),*];),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_resolve_like_the_validator() {
        let dir = crate::test_support::temp_dir("llm-schema");
        std::fs::create_dir_all(dir.join("schemas")).expect("mkdir");
        std::fs::write(dir.join("schemas/ok.json"), r#"{"type":"object"}"#).expect("write");
        std::fs::write(dir.join("schemas/bad.json"), "not json").expect("write");
        assert_eq!(resolve_schema(None, &dir), SchemaIr::None);
        assert_eq!(resolve_schema(Some("inline"), &dir), SchemaIr::JsonOnly);
        assert_eq!(
            resolve_schema(Some("schemas/ok.json"), &dir),
            SchemaIr::File {
                path: "schemas/ok.json".into(),
                text: r#"{"type":"object"}"#.into()
            }
        );
        assert_eq!(
            resolve_schema(Some("schemas/bad.json"), &dir),
            SchemaIr::JsonOnly
        );
        assert_eq!(
            resolve_schema(Some("schemas/missing.json"), &dir),
            SchemaIr::JsonOnly
        );
        let abs = dir.join("schemas/ok.json");
        assert!(matches!(
            resolve_schema(abs.to_str(), Path::new("/nowhere")),
            SchemaIr::File { .. }
        ));
    }
}
