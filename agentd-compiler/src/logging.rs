//! `[logging]` at build time: the grammar checks behind the validator's
//! `invalid_logging` code, and the `LOGGING` item of the generated `Workflow`
//! impl (left out without a `[logging]` block, keeping the runtime's
//! defaults).
//!
//! The checks mirror what the runtime accepts (`agentd_runtime::obs`), so a
//! binary never starts with a `[logging]` value it cannot use: a filter
//! directive of levels and `target=level` pairs (span and field filters are
//! refused: the runtime has no regex engine), `text` / `pretty` / `json`,
//! `stderr` / `stdout` / `file:PATH`, and `never` / `daily` / `hourly` /
//! `minutely`. `[logging.otel]` is checked by the validator (`invalid_otel`)
//! and baked as `LogConfig::otel`; the IR then enables the runtime's `otel`
//! feature, so only workflows that ask for OTLP export carry the exporter.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::model::WorkflowDoc;

/// The level names a directive accepts (any case), besides `0`–`5`.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn is_level(text: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(text))
        || matches!(text, "0" | "1" | "2" | "3" | "4" | "5")
}

fn is_target(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

/// Check a filter directive such as `warn,agentd::audit=info`.
pub fn check_level(spec: &str) -> Result<(), String> {
    for part in spec.split(',') {
        let d = part.trim();
        if d.is_empty() {
            continue;
        }
        if d.contains(['[', ']', '{', '}']) {
            return Err(format!(
                "`{d}`: span and field filters are not supported; use `target=level`"
            ));
        }
        match d.split_once('=') {
            Some((target, level)) => {
                if !is_target(target.trim()) {
                    return Err(format!("`{d}`: `{}` is not a target", target.trim()));
                }
                if !is_level(level.trim()) {
                    return Err(format!(
                        "`{d}`: `{}` is not a level (off, error, warn, info, debug, trace)",
                        level.trim()
                    ));
                }
            }
            None if is_level(d) || is_target(d) => {}
            None => return Err(format!("`{d}` is neither a level nor a target")),
        }
    }
    Ok(())
}

/// Check a log or audit target.
pub fn check_target(text: &str) -> Result<(), String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("stderr") || t.eq_ignore_ascii_case("stdout") {
        return Ok(());
    }
    match t.strip_prefix("file:") {
        Some(path) if !path.trim().is_empty() => Ok(()),
        Some(_) => Err(format!("`{text}`: `file:` needs a path")),
        None => Err(format!(
            "`{text}` is not a target: expected stderr, stdout or file:PATH"
        )),
    }
}

/// Check a `format`.
pub fn check_format(text: &str) -> Result<(), String> {
    if ["text", "pretty", "json"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(text.trim()))
    {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a format: expected text, pretty or json"
        ))
    }
}

/// Check a `rotation`.
pub fn check_rotation(text: &str) -> Result<(), String> {
    if ["never", "daily", "hourly", "minutely"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(text.trim()))
    {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a rotation: expected never, daily, hourly or minutely"
        ))
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
mod tests {
    use super::*;

    #[test]
    fn directives_accept_levels_targets_and_pairs() {
        for ok in [
            "warn",
            "INFO",
            "2",
            "warn,agentd::audit=info",
            "agentd::engine",
            " , debug",
            "",
        ] {
            assert_eq!(check_level(ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("agentd=loud", "`loud` is not a level"),
            ("=info", "is not a target"),
            ("info warn", "neither a level nor a target"),
            (
                "agentd[run]=debug",
                "span and field filters are not supported",
            ),
        ] {
            let err = check_level(bad).err().unwrap_or_default();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn targets_formats_and_rotations() {
        assert!(check_target("STDERR").is_ok() && check_target("file:/var/log/a").is_ok());
        assert!(check_target("file:").is_err() && check_target("syslog").is_err());
        assert!(check_format("Pretty").is_ok() && check_format("yaml").is_err());
        assert!(check_rotation("hourly").is_ok() && check_rotation("weekly").is_err());
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
