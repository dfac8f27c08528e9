//! `[logging]` at build time: the `LOGGING` item of the generated `Workflow`
//! impl (left out without a `[logging]` block, keeping the runtime's
//! defaults).
//!
//! The values were checked against what the runtime accepts (the grammar in
//! `crate::grammar::logging`, reported by the validator as `invalid_logging`),
//! so a binary never starts with a `[logging]` value it cannot use.
//! `[logging.otel]` is checked by the validator (`invalid_otel`) and baked as
//! `LogConfig::otel`; codegen then enables the runtime's `otel` feature, so
//! only workflows that ask for OTLP export carry the exporter.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::codegen::features::{Features, RuntimeFeature};
use crate::model::WorkflowDoc;

/// Add the runtime features the root's `[logging.otel]` needs: OTLP export is
/// compiled in only for a workflow that asks for it, and TLS only for an `https://`
/// collector (tonic's rustls client).
pub fn add_features(root: &WorkflowDoc, features: &mut Features) {
    if let Some(otel) = root.logging.as_ref().and_then(|l| l.otel.as_ref()) {
        features.insert(RuntimeFeature::Otel);
        if otel.endpoint.trim().starts_with("https://") {
            features.insert(RuntimeFeature::OtelTls);
        }
    }
}

/// `const LOGGING: LogConfig = ...;` for the root's `[logging]`; empty without one.
pub fn workflow_consts(root: &WorkflowDoc) -> TokenStream {
    let Some(l) = root.logging.as_ref() else {
        return TokenStream::new();
    };
    let obs = quote!(::agentd_runtime::obs);
    let opt_str = |v: Option<&str>| match v {
        Some(v) => {
            let v = Literal::string(v.trim());
            quote!(::core::option::Option::Some(#v))
        }
        None => quote!(::core::option::Option::None),
    };
    let level = opt_str(l.level.as_deref());
    let target = opt_str(l.target.as_deref());
    let format = match l.format.as_deref().map(|f| f.trim().to_ascii_lowercase()) {
        Some(f) if f == "json" => quote!(::core::option::Option::Some(#obs::LogFormat::Json)),
        Some(_) => quote!(::core::option::Option::Some(#obs::LogFormat::Text)),
        None => quote!(::core::option::Option::None),
    };
    let enabled = match l.enabled {
        Some(true) => quote!(::core::option::Option::Some(true)),
        Some(false) => quote!(::core::option::Option::Some(false)),
        None => quote!(::core::option::Option::None),
    };
    let rotation = match l
        .rotation
        .as_deref()
        .map(|r| r.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("daily") => quote!(#obs::Rotation::Daily),
        Some("hourly") => quote!(#obs::Rotation::Hourly),
        Some("minutely") => quote!(#obs::Rotation::Minutely),
        _ => quote!(#obs::Rotation::Never),
    };
    let audit = match &l.audit {
        Some(a) => {
            let target = opt_str(a.target.as_deref());
            let names = a.redact_fields.iter().map(|n| Literal::string(n));
            let include = a.include_reason;
            quote!(::core::option::Option::Some(#obs::AuditConfig {
                target: #target,
                redact_fields: &[#(#names),*],
                include_reason: #include,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    let otel = match &l.otel {
        Some(o) => {
            let endpoint = Literal::string(o.endpoint.trim());
            let service = Literal::string(o.service_name.as_deref().unwrap_or("agentd"));
            // Dialect 1 clamped the ratio; the validator already refused
            // anything outside [0, 1], so this only fills the default.
            let ratio = o.sample_ratio.unwrap_or(1.0).clamp(0.0, 1.0);
            let attrs = o.resource_attrs.iter().map(|(k, v)| {
                let (k, v) = (Literal::string(k), Literal::string(v));
                quote!((#k, #v))
            });
            quote!(::core::option::Option::Some(#obs::OtelConfig {
                endpoint: #endpoint,
                service_name: #service,
                resource_attrs: &[#(#attrs),*],
                sample_ratio: #ratio,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        const LOGGING: #obs::LogConfig = #obs::LogConfig {
            level: #level,
            format: #format,
            target: #target,
            enabled: #enabled,
            rotation: #rotation,
            audit: #audit,
            otel: #otel,
        };
    }
}

#[cfg(test)]
mod codegen_tests {
    use super::*;
    use crate::parse::parse_str;
    use std::path::Path;

    fn consts(logging: &str) -> String {
        let text = format!("name = \"w\"\n{logging}\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n");
        let r = parse_str(Path::new("w.toml"), &text);
        let Some(doc) = r.doc else {
            panic!("{:?}", r.diagnostics);
        };
        workflow_consts(&doc).to_string()
    }

    #[test]
    fn no_block_keeps_the_runtime_defaults() {
        assert!(consts("").is_empty());
    }

    #[test]
    fn every_key_is_baked() {
        let tokens = consts(
            "[logging]\nlevel = \"warn,agentd::audit=info\"\nformat = \"Pretty\"\ntarget = \"stdout\"\n\
             enabled = false\nrotation = \"Hourly\"\n[logging.audit]\nredact_fields = [\"tenant\"]\ninclude_reason = true\n",
        );
        for want in [
            "level : :: core :: option :: Option :: Some (\"warn,agentd::audit=info\")",
            "format : :: core :: option :: Option :: Some (:: agentd_runtime :: obs :: LogFormat :: Text)",
            "target : :: core :: option :: Option :: Some (\"stdout\")",
            "enabled : :: core :: option :: Option :: Some (false)",
            "rotation : :: agentd_runtime :: obs :: Rotation :: Hourly",
            "redact_fields : & [\"tenant\"]",
            "include_reason : true",
        ] {
            assert!(tokens.contains(want), "missing `{want}` in {tokens}");
        }
    }
}
