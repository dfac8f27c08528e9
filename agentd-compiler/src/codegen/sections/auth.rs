//! Build-time lowering of serve-mode auth and TLS: the `AUTH` and `TLS` items
//! of the generated `Workflow` impl, and the runtime features they need.
//!
//! Only a workflow with `[[http_routes]]` listens, so only such a workflow
//! gets either item (and the features): `[auth.*]` becomes
//! `agentd_runtime::serve::auth::AuthDefs` (secrets by name; literal tokens
//! are baked as written, which the validator warns about), `[server.tls]`
//! becomes `agentd_runtime::serve::tls::TlsDef` (paths as written: the binary
//! reads them relative to its working directory, at start and on reload).
//!
//! Features: `serve` for any binding, `auth-hmac` / `auth-oidc` when such a
//! binding is declared, `tls` for `[server.tls]`. Routes can only name
//! declared bindings (`unknown_auth_binding`) and `mtls` needs client auth,
//! hence `[server.tls]` (`mtls_without_client_auth`), so every scheme a route
//! names is compiled in: the runtime's "not compiled in" denial is
//! unreachable from generated code.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::codegen::features::{Features, RuntimeFeature};
use crate::model::{AuthConfig, ClientAuthMode, TlsConfig, WorkflowDoc};

/// The `[auth.*]` bindings that will be baked, if any.
fn baked_auth(root: &WorkflowDoc) -> Option<&AuthConfig> {
    if root.http_routes.is_empty() {
        return None;
    }
    root.auth.as_ref().filter(|a| {
        !(a.bearer.is_empty() && a.basic.is_empty() && a.hmac.is_empty() && a.oidc.is_empty())
    })
}

/// The `[server.tls]` that will be baked, if any.
fn baked_tls(root: &WorkflowDoc) -> Option<&TlsConfig> {
    if root.http_routes.is_empty() {
        return None;
    }
    root.server.as_ref().and_then(|s| s.tls.as_ref())
}

/// Add the runtime features the root's auth and TLS need.
pub fn add_features(root: &WorkflowDoc, features: &mut Features) {
    if let Some(auth) = baked_auth(root) {
        features.insert(RuntimeFeature::Serve);
        if !auth.hmac.is_empty() {
            features.insert(RuntimeFeature::AuthHmac);
        }
        if !auth.oidc.is_empty() {
            features.insert(RuntimeFeature::AuthOidc);
        }
    }
    if baked_tls(root).is_some() {
        features.insert(RuntimeFeature::Serve);
        features.insert(RuntimeFeature::Tls);
    }
}

fn s(v: &str) -> Literal {
    Literal::string(v)
}

fn opt(v: Option<&str>) -> TokenStream {
    match v {
        Some(v) => {
            let l = s(v);
            quote!(::core::option::Option::Some(#l))
        }
        None => quote!(::core::option::Option::None),
    }
}

fn strs(items: &[String]) -> TokenStream {
    let lits = items.iter().map(|i| s(i));
    quote!(&[#(#lits),*])
}

/// `const AUTH` and `const TLS` for the root workflow (empty when it bakes neither).
pub fn workflow_consts(root: &WorkflowDoc) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(auth) = baked_auth(root) {
        out.extend(auth_const(auth));
    }
    if let Some(tls) = baked_tls(root) {
        out.extend(tls_const(tls));
    }
    out
}

fn auth_const(auth: &AuthConfig) -> TokenStream {
    let rt = quote!(::agentd_runtime::serve::auth);
    let bearer = auth.bearer.iter().map(|(name, b)| {
        let (name, secret, tokens) = (s(name), opt(b.tokens_env.as_deref()), strs(&b.tokens));
        quote!(#rt::BearerDef { name: #name, tokens_secret: #secret, tokens: #tokens })
    });
    let basic = auth.basic.iter().map(|(name, b)| {
        let (name, secret, creds) = (
            s(name),
            opt(b.credentials_env.as_deref()),
            strs(&b.credentials),
        );
        quote!(#rt::BasicDef { name: #name, credentials_secret: #secret, credentials: #creds })
    });
    let mut tables = quote! {
        bearer: &[#(#bearer),*],
        basic: &[#(#basic),*],
    };
    if !auth.hmac.is_empty() {
        let hmac = auth.hmac.iter().map(|(name, h)| {
            let name = s(name);
            let secret_name = opt(h.secret_env.as_deref());
            let secret = opt(h.secret.as_deref());
            let header = match &h.header {
                Some(v) => quote!(#v),
                None => quote!(#rt::HmacDef::DEFAULT_HEADER),
            };
            let prefix = match &h.prefix {
                Some(v) => quote!(#v),
                None => quote!(#rt::HmacDef::DEFAULT_PREFIX),
            };
            let timestamp = opt(h.timestamp_header.as_deref());
            let tolerance = match h.tolerance_secs {
                Some(t) => {
                    let t = Literal::u64_unsuffixed(t);
                    quote!(#t)
                }
                None => quote!(#rt::HmacDef::DEFAULT_TOLERANCE_SECS),
            };
            quote!(#rt::HmacDef {
                name: #name,
                secret_name: #secret_name,
                secret: #secret,
                header: #header,
                prefix: #prefix,
                timestamp_header: #timestamp,
                tolerance_secs: #tolerance,
            })
        });
        tables.extend(quote!(hmac: &[#(#hmac),*],));
    }
    if !auth.oidc.is_empty() {
        let oidc = auth.oidc.iter().map(|(name, o)| {
            let name = s(name);
            let issuer = s(&o.issuer);
            let audience = strs(&o.audience);
            // The validator guarantees exactly one source.
            let jwks = match (&o.jwks_json, &o.jwks_file) {
                (Some(json), _) => quote!(#rt::JwksSource::Inline(#json)),
                (None, Some(file)) => quote!(#rt::JwksSource::File(#file)),
                (None, None) => quote!(#rt::JwksSource::Inline("")),
            };
            let subjects = strs(&o.subject_allowlist);
            let skew = Literal::u64_unsuffixed(o.clock_skew_secs.unwrap_or(60));
            let algorithms = strs(&o.algorithms);
            quote!(#rt::OidcDef {
                name: #name,
                issuer: #issuer,
                audience: #audience,
                jwks: #jwks,
                subject_allowlist: #subjects,
                clock_skew_secs: #skew,
                algorithms: #algorithms,
            })
        });
        tables.extend(quote!(oidc: &[#(#oidc),*],));
    }
    quote! {
        // Tables of schemes the workflow does not declare come from EMPTY; the
        // update is "needless" only when a build compiles in no other scheme.
        #[allow(clippy::needless_update)]
        const AUTH: &'static #rt::AuthDefs = &#rt::AuthDefs {
            #tables
            ..#rt::AuthDefs::EMPTY
        };
    }
}

fn tls_const(tls: &TlsConfig) -> TokenStream {
    let rt = quote!(::agentd_runtime::serve::tls);
    let (cert, key) = (s(&tls.cert_file), s(&tls.key_file));
    let client_auth = match tls.client_auth.as_ref() {
        Some(c) if c.mode != ClientAuthMode::None => {
            let mode = match c.mode {
                ClientAuthMode::Optional => quote!(#rt::ClientCertMode::Optional),
                _ => quote!(#rt::ClientCertMode::Required),
            };
            // The validator refuses client auth without a CA (`tls_client_ca_missing`).
            let ca = s(c.ca_file.as_deref().unwrap_or_default());
            quote!(::core::option::Option::Some(#rt::ClientAuthDef { mode: #mode, ca_file: #ca }))
        }
        _ => quote!(::core::option::Option::None),
    };
    quote! {
        const TLS: ::core::option::Option<&'static #rt::TlsDef> = ::core::option::Option::Some(&#rt::TlsDef {
            cert_file: #cert,
            key_file: #key,
            client_auth: #client_auth,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> WorkflowDoc {
        let r = crate::parse::parse_str(std::path::Path::new("t.toml"), text);
        r.doc.expect("parses")
    }

    const ROUTE: &str = "[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"m\"\n";

    #[test]
    fn features_follow_the_declared_schemes_and_need_a_route() {
        let text = "name = \"x\"\n[auth.hmac.gh]\nsecret_env = \"S\"\n\
                    [auth.oidc.idp]\nissuer = \"i\"\njwks_file = \"j\"\n\
                    [server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n";
        let mut f = Features::new();
        add_features(&doc(text), &mut f);
        assert!(f.is_empty(), "no route, nothing listens: {f:?}");

        add_features(&doc(&format!("{text}{ROUTE}")), &mut f);
        assert_eq!(
            f.iter().copied().collect::<Vec<_>>(),
            vec![
                RuntimeFeature::AuthHmac,
                RuntimeFeature::AuthOidc,
                RuntimeFeature::Serve,
                RuntimeFeature::Tls
            ]
        );

        let mut f = Features::new();
        add_features(
            &doc(&format!(
                "name = \"x\"\n[auth.bearer.b]\ntokens_env = \"T\"\n{ROUTE}"
            )),
            &mut f,
        );
        assert_eq!(
            f.iter().copied().collect::<Vec<_>>(),
            vec![RuntimeFeature::Serve]
        );
    }

    #[test]
    fn consts_carry_names_defaults_and_extensions() {
        let text = format!(
            "name = \"x\"\n[auth.bearer.ops]\ntokens_env = \"OPS\"\n\
             [auth.hmac.gh]\nsecret_env = \"S\"\ntimestamp_header = \"X-Ts\"\n\
             [server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n\
             [server.tls.client_auth]\nmode = \"optional\"\nca_file = \"ca.pem\"\n{ROUTE}"
        );
        let code = workflow_consts(&doc(&text)).to_string();
        assert!(
            code.contains("tokens_secret : :: core :: option :: Option :: Some (\"OPS\")"),
            "{code}"
        );
        assert!(code.contains("HmacDef :: DEFAULT_HEADER"), "{code}");
        assert!(
            code.contains("timestamp_header : :: core :: option :: Option :: Some (\"X-Ts\")"),
            "{code}"
        );
        assert!(code.contains("ClientCertMode :: Optional"), "{code}");
        assert!(
            !code.contains("oidc :"),
            "no oidc table without oidc bindings: {code}"
        );
        assert!(workflow_consts(&doc("name = \"x\"\n")).is_empty());
    }
}
