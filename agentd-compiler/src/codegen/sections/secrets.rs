//! Build-time lowering of secret *references*: the root workflow's
//! `[[secrets]]` definitions (the generated `Workflow::SECRETS`) and
//! `http_request` header values pre-split into literal and
//! `{{secret:NAME}}` segments.
//!
//! Only names and sources are baked — a workflow file holds no values (the
//! validator's `secret_literal_material` sees to that), so generated code
//! and binaries never contain one either. Runs only on validated programs.
//! [`add_features`] enables the runtime features the sources need
//! (`secrets-exec`, `secrets-oauth2`).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::codegen::features::{Features, RuntimeFeature};
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

/// The runtime features the root's `[[secrets]]` sources need.
pub fn add_features(root: &WorkflowDoc, features: &mut Features) {
    for d in &root.secrets {
        match d.source {
            SecretSource::Command(_) => {
                features.insert(RuntimeFeature::SecretsExec);
            }
            SecretSource::Oauth2(_) => {
                features.insert(RuntimeFeature::SecretsOauth2);
            }
            SecretSource::Env(_) | SecretSource::File(_) => {}
        }
    }
}

/// The `const SECRETS` item of the `Workflow` impl, or nothing when the
/// root declares no `[[secrets]]` (keeping the trait's empty default).
pub fn workflow_consts(root: &WorkflowDoc) -> TokenStream {
    if root.secrets.is_empty() {
        return TokenStream::new();
    }
    let sec = quote!(::agentd_runtime::secrets);
    let defs = root.secrets.iter().map(|d| {
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
            SecretSource::Command(c) => {
                let argv = c.argv.iter().map(|a| Literal::string(a));
                quote!(#sec::SecretSource::Command { argv: &[#(#argv),*] })
            }
            SecretSource::Oauth2(o) => {
                let token_url = Literal::string(&o.token_url);
                let id = Literal::string(&o.client_id_env);
                let secret = Literal::string(&o.client_secret_env);
                let scopes = o.scopes.iter().map(|a| Literal::string(a));
                // BTreeMap: sorted by name, as the request sends them.
                let extra = o.extra_params.iter().map(|(k, v)| {
                    let (k, v) = (Literal::string(k), Literal::string(v));
                    quote!((#k, #v))
                });
                let style = if o.auth_style.as_deref() == Some("basic") {
                    quote!(#sec::AuthStyle::Basic)
                } else {
                    quote!(#sec::AuthStyle::Body)
                };
                let skew = o.skew_secs.unwrap_or(60);
                quote!(#sec::SecretSource::OAuth2 {
                    token_url: #token_url,
                    client_id_env: #id,
                    client_secret_env: #secret,
                    scopes: &[#(#scopes),*],
                    extra_params: &[#(#extra),*],
                    auth_style: #style,
                    skew_secs: #skew,
                })
            }
        };
        quote!(#sec::SecretDef { name: #name, source: #source })
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
