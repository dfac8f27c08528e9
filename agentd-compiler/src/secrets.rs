//! Build-time lowering of secret *references*: the root workflow's
//! `[[secrets]]` definitions (the generated `Workflow::SECRETS`) and
//! `http_request` header values pre-split into literal and
//! `{{secret:NAME}}` segments.
//!
//! Only names and sources are baked — a workflow file holds no values (the
//! validator's `secret_literal_material` sees to that), so generated code
//! and binaries never contain one either. Runs only on validated programs:
//! unsupported sources have already been refused.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::model::{SecretSource, WorkflowDoc};

/// A piece of a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSegIr {
    /// Literal text.
    Lit(String),
    /// `{{secret:NAME}}` (name trimmed).
    Secret(String),
}

/// Split a (validated) header value into literal and secret segments. A
/// `{{...}}` that is not a secret placeholder stays literal; the validator
/// has already refused those.
pub fn split_header(value: &str) -> Vec<HeaderSegIr> {
    let mut segs = Vec::new();
    let mut lit = String::new();
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        match after[..close].trim().strip_prefix("secret:") {
            Some(name) => {
                lit.push_str(&rest[..open]);
                if !lit.is_empty() {
                    segs.push(HeaderSegIr::Lit(std::mem::take(&mut lit)));
                }
                segs.push(HeaderSegIr::Secret(name.trim().to_string()));
            }
            None => lit.push_str(&rest[..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        segs.push(HeaderSegIr::Lit(lit));
    }
    segs
}

/// The `&[Header { .. }]` of an `http_request` config, sorted by name.
pub fn headers_tokens(headers: Option<&std::collections::BTreeMap<String, String>>) -> TokenStream {
    let rt = quote!(::agentd_runtime::nodes::http);
    // BTreeMap: already sorted by name, so the bytes are deterministic.
    let items = headers.into_iter().flatten().map(|(name, value)| {
        let segs = split_header(value).into_iter().map(|seg| match seg {
            HeaderSegIr::Lit(text) => {
                let text = Literal::string(&text);
                quote!(#rt::HeaderSeg::Lit(#text))
            }
            HeaderSegIr::Secret(name) => {
                let name = Literal::string(&name);
                quote!(#rt::HeaderSeg::Secret(#name))
            }
        });
        let name = Literal::string(name);
        quote!(#rt::Header { name: #name, value: &[#(#segs),*] })
    });
    quote!(&[#(#items),*])
}

/// The `const SECRETS` item of the `Workflow` impl, or nothing when the
/// root declares no `[[secrets]]` (keeping the trait's empty default).
pub fn workflow_consts(root: &WorkflowDoc) -> TokenStream {
    if root.secrets.is_empty() {
        return TokenStream::new();
    }
    let sec = quote!(::agentd_runtime::secrets);
    let defs = root.secrets.iter().filter_map(|d| {
        let name = Literal::string(&d.name);
        let source = match &d.source {
            SecretSource::Env(e) => {
                let var = Literal::string(&e.var);
                quote!(#sec::SecretSource::Env { var: #var })
            }
            SecretSource::File(f) => {
                let path = Literal::string(&f.path);
                let trim = f.trim.unwrap_or(true);
                quote!(#sec::SecretSource::File { path: #path, trim: #trim })
            }
            // Refused by the validator (`secret_source_unsupported`).
            SecretSource::Command(_) | SecretSource::Oauth2(_) => return None,
        };
        Some(quote!(#sec::SecretDef { name: #name, source: #source }))
    });
    quote!(const SECRETS: &'static [#sec::SecretDef] = &[#(#defs),*];)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> HeaderSegIr {
        HeaderSegIr::Lit(s.to_string())
    }

    fn secret(s: &str) -> HeaderSegIr {
        HeaderSegIr::Secret(s.to_string())
    }

    #[test]
    fn headers_split_into_literals_and_trimmed_secret_names() {
        assert_eq!(
            split_header("Bearer {{ secret: API }}"),
            vec![lit("Bearer "), secret("API")]
        );
        assert_eq!(
            split_header("{{secret:A}}:{{secret:B}}"),
            vec![secret("A"), lit(":"), secret("B")]
        );
        assert_eq!(split_header("plain"), vec![lit("plain")]);
        assert_eq!(split_header(""), Vec::<HeaderSegIr>::new());
    }

    #[test]
    fn non_secret_braces_stay_literal() {
        assert_eq!(split_header("a {{x}} b"), vec![lit("a {{x}} b")]);
        assert_eq!(split_header("a {{open"), vec![lit("a {{open")]);
    }
}
