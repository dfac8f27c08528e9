//! `[logging]` checks (ours, docs/dialect.md §15): values the runtime could not use
//! are build errors, not a binary that logs somewhere unexpected.
//!
//! - `invalid_logging`: a `level` directive, `format`, `target`, `rotation`
//!   or `[logging.audit].target` outside the grammar the runtime accepts
//!   (see [`crate::codegen::sections::logging`]);
//! - `invalid_otel`: a `[logging.otel]` block the exporter could not use: an
//!   `endpoint` that is not an `http://` or `https://` URL with a host (an
//!   `https://` one gets the runtime's `otel-tls` feature), a `protocol` other
//!   than `grpc` (dialect 1's only one), or a `sample_ratio` that is not a
//!   number in [0, 1]. (A child's `[logging]` is not applied, so its block is
//!   not checked.)

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::grammar::{check_format, check_level, check_rotation, check_target};
use crate::loc;

/// One grammar check of [`crate::codegen::sections::logging`].
type Check = fn(&str) -> Result<(), String>;

impl Validator<'_> {
    pub(super) fn check_logging(&mut self) {
        let Some(l) = self.doc.logging.as_ref() else {
            return;
        };
        let checks: [(&str, Option<&String>, Check); 4] = [
            ("level", l.level.as_ref(), check_level),
            ("format", l.format.as_ref(), check_format),
            ("target", l.target.as_ref(), check_target),
            ("rotation", l.rotation.as_ref(), check_rotation),
        ];
        for (key, value, check) in checks {
            if let Some(Err(why)) = value.map(|v| check(v)) {
                let d = Diagnostic::new(
                    Code::InvalidLogging,
                    self.path(),
                    format!("[logging].{key}: {why}"),
                )
                .with_span(self.span(loc!["logging", key]))
                .with_label("not accepted by the runtime")
                .with_help(logging_help(key));
                self.push(d);
            }
        }
        if let Some(Err(why)) = l
            .audit
            .as_ref()
            .and_then(|a| a.target.as_ref())
            .map(|t| check_target(t))
        {
            let d = Diagnostic::new(
                Code::InvalidLogging,
                self.path(),
                format!("[logging.audit].target: {why}"),
            )
            .with_span(self.span(loc!["logging", "audit", "target"]))
            .with_label("not accepted by the runtime")
            .with_help(logging_help("target"));
            self.push(d);
        }
        if let Some(otel) = l.otel.as_ref().filter(|_| self.parent.is_none()) {
            for (key, why) in otel_problems(otel) {
                let d = Diagnostic::new(
                    Code::InvalidOtel,
                    self.path(),
                    format!("[logging.otel].{key}: {why}"),
                )
                .with_span(self.span(loc!["logging", "otel", key]))
                .with_label("not usable by the OTLP exporter")
                .with_help(
                    "`endpoint = \"http://collector:4317\"` or `\"https://collector:4317\"` (an OTLP/gRPC \
                     receiver), `protocol = \"grpc\"` or omitted, `sample_ratio` between 0.0 and 1.0",
                );
                self.push(d);
            }
        }
    }
}

/// What is wrong with an OTLP block, by key.
fn otel_problems(otel: &crate::model::OtelConfig) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let endpoint = otel.endpoint.trim();
    let host = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        None => problems.push((
            "endpoint",
            format!("`{endpoint}` is not an http:// or https:// URL"),
        )),
        Some(h) if h.is_empty() || h.starts_with(':') => {
            problems.push(("endpoint", format!("`{endpoint}` has no host")));
        }
        Some(_) => {}
    }
    if let Some(protocol) = otel.protocol.as_deref().filter(|p| *p != "grpc") {
        problems.push((
            "protocol",
            format!("`{protocol}` is not supported; the exporter speaks OTLP over gRPC (`grpc`)"),
        ));
    }
    if let Some(ratio) = otel
        .sample_ratio
        .filter(|r| !(r.is_finite() && (0.0..=1.0).contains(r)))
    {
        problems.push((
            "sample_ratio",
            format!("{ratio} is not a fraction between 0.0 and 1.0"),
        ));
    }
    problems
}

fn logging_help(key: &str) -> &'static str {
    match key {
        "level" => {
            "use a level (`warn`) or comma-separated `target=level` directives, e.g. `warn,agentd::engine=debug`"
        }
        "format" => "use `text` (alias `pretty`) or `json`",
        "target" => "use `stderr`, `stdout` or `file:/path/to/file.log`",
        _ => {
            "use `never`, `daily`, `hourly` or `minutely` (files become `<file>.YYYY-MM-DD[-HH[-MM]]`)"
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes::Code;
    use crate::diagnostics::Diagnostic;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate, validate_child};

    const NODE: &str = "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n";

    fn diags(text: &str, child: bool) -> Vec<(Diagnostic, String)> {
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
            .filter(|d| matches!(d.code, Code::InvalidLogging | Code::InvalidOtel))
            .map(|d| {
                let at = d
                    .span
                    .clone()
                    .and_then(|s| text.get(s))
                    .unwrap_or_default()
                    .to_owned();
                (d, at)
            })
            .collect()
    }

    #[test]
    fn every_bad_value_is_reported_at_its_key() {
        let text = format!(
            "name = \"w\"\n[logging]\nlevel = \"info,x[y]=debug\"\nformat = \"yaml\"\n\
             target = \"syslog\"\nrotation = \"weekly\"\n[logging.audit]\ntarget = \"file:\"\n{NODE}"
        );
        let found = diags(&text, false);
        let seen: Vec<(&str, &str)> = found
            .iter()
            .map(|(d, at)| (d.message.split(':').next().unwrap_or_default(), at.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("[logging].level", "\"info,x[y]=debug\""),
                ("[logging].format", "\"yaml\""),
                ("[logging].target", "\"syslog\""),
                ("[logging].rotation", "\"weekly\""),
                ("[logging.audit].target", "\"file:\""),
            ]
        );
        assert!(found.iter().all(|(d, _)| d.is_error()));
    }

    #[test]
    fn a_valid_block_is_clean() {
        let text = format!(
            "name = \"w\"\n[logging]\nlevel = \"warn,agentd::audit=info\"\nformat = \"json\"\n\
             target = \"file:/var/log/w.log\"\nrotation = \"daily\"\nenabled = true\n\
             [logging.audit]\nredact_fields = [\"tenant\"]\ninclude_reason = true\n{NODE}"
        );
        assert!(diags(&text, false).is_empty());
    }

    #[test]
    fn a_usable_otel_block_is_clean_and_a_bad_one_is_reported_at_its_keys() {
        let good = format!(
            "name = \"w\"\n[logging.otel]\nendpoint = \"http://collector:4317\"\n\
             service_name = \"w\"\nprotocol = \"grpc\"\nsample_ratio = 0.25\n\
             resource_attrs = {{ env = \"prod\" }}\n{NODE}"
        );
        assert!(diags(&good, false).is_empty());
        let tls = format!("name = \"w\"\n[logging.otel]\nendpoint = \"https://c:4317\"\n{NODE}");
        assert!(diags(&tls, false).is_empty());
        let no_host = format!("name = \"w\"\n[logging.otel]\nendpoint = \"https://:4317\"\n{NODE}");
        let found = diags(&no_host, false);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].0.message.contains("has no host"),
            "{}",
            found[0].0.message
        );
        let bad = format!(
            "name = \"w\"\n[logging.otel]\nendpoint = \"collector:4317\"\n\
             protocol = \"http/json\"\nsample_ratio = 1.5\n{NODE}"
        );
        let found = diags(&bad, false);
        let seen: Vec<(Code, &str)> = found.iter().map(|(d, at)| (d.code, at.as_str())).collect();
        assert_eq!(
            seen,
            [
                (Code::InvalidOtel, "\"collector:4317\""),
                (Code::InvalidOtel, "\"http/json\""),
                (Code::InvalidOtel, "1.5"),
            ]
        );
        // A child's [logging] is not applied, so it is not checked.
        assert!(diags(&bad, true).is_empty());
    }
}
