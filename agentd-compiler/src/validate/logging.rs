//! `[logging]` checks (ours, DESIGN.md §8): values the runtime could not use
//! are build errors, not a binary that logs somewhere unexpected.
//!
//! - `invalid_logging`: a `level` directive, `format`, `target`, `rotation`
//!   or `[logging.audit].target` outside the grammar the runtime accepts
//!   (see [`crate::logging`]);
//! - `otel_unsupported`: a `[logging.otel]` block in the root workflow. OTLP
//!   export is not built into agentd binaries; dialect 1 refused to start
//!   without its `otel` feature, and we refuse to build, so traces are never
//!   silently dropped. (A child's `[logging]` is not applied, so its
//!   `[logging.otel]` is not reported.)

use super::Validator;
use crate::diagnostics::Diagnostic;
use crate::loc;
use crate::logging::{check_format, check_level, check_rotation, check_target};

/// One grammar check of [`crate::logging`].
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
                let d = Diagnostic::error(
                    "invalid_logging",
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
            let d = Diagnostic::error(
                "invalid_logging",
                self.path(),
                format!("[logging.audit].target: {why}"),
            )
            .with_span(self.span(loc!["logging", "audit", "target"]))
            .with_label("not accepted by the runtime")
            .with_help(logging_help("target"));
            self.push(d);
        }
        if l.otel.is_some() && self.parent.is_none() {
            let d = Diagnostic::error(
                "otel_unsupported",
                self.path(),
                "[logging.otel]: OTLP export is not available in agentd binaries",
            )
            .with_span(self.key_span(loc!["logging", "otel"]))
            .with_label("OTLP export requested here")
            .with_help(
                "remove [logging.otel]; use `--log-format json` (or `format = \"json\"`) and ship \
                 the log lines with your collector's file or stderr receiver",
            );
            self.push(d);
        }
    }
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
            .filter(|d| matches!(d.code, "invalid_logging" | "otel_unsupported"))
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
    fn otel_is_refused_in_the_root_and_ignored_in_a_child() {
        let text = format!("name = \"w\"\n[logging.otel]\nendpoint = \"http://c:4317\"\n{NODE}");
        let root = diags(&text, false);
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].0.code, "otel_unsupported");
        assert!(root[0].1.contains("otel"), "{}", root[0].1);
        assert!(diags(&text, true).is_empty());
    }
}
