//! Keeping secrets out of every log line.
//!
//! Two independent guards:
//!
//! - **By field name** ([`Redactor`]): a field whose name is on the list has
//!   its value replaced by `"<redacted>"`, at any depth of a JSON value
//!   (`{"headers": {"Authorization": ...}}`). Names match case-insensitively,
//!   as a whole or as the last `.`-separated segment (`auth.token`). The
//!   built-in list is the one docs/operations.md "Logging and audit" gives; `[logging.audit]
//!   redact_fields` adds to it; the audit sink also hides `reason` unless
//!   `include_reason = true`. The list can only grow.
//! - **By value** ([`register_secret`] / [`scrub`]): values the runtime
//!   resolved as secrets are replaced wherever they appear in a line, raw
//!   or JSON-escaped, so a secret that leaked into an error message is still
//!   caught before the line is written.
//!
//! This module must never log, and never keep a secret anywhere but the
//! in-memory list it scrubs with.

use std::sync::RwLock;

use serde_json::Value;

use super::format::{Field, Val};

/// What a redacted value becomes.
pub const REDACTED: &str = "<redacted>";

/// Field names always redacted (docs/operations.md "Logging and audit").
pub const BUILTIN: [&str; 9] = [
    "token",
    "secret",
    "password",
    "authorization",
    "api_key",
    "bearer",
    "jwt",
    "cookie",
    "session",
];

/// Secret values shorter than this are not scrubbed by value: replacing
/// every `a` in a log would destroy it and protect nothing. Field-name
/// redaction still applies to them.
pub const MIN_SCRUB_LEN: usize = 4;

/// Redaction by field name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redactor {
    /// `redact_fields` (trimmed, non-empty); matched case-insensitively.
    extra: Vec<String>,
    /// Whether `reason` is redacted too.
    hide_reason: bool,
}

impl Redactor {
    /// The built-in names plus `extra`, plus `reason` when `hide_reason`.
    #[must_use]
    pub fn new(extra: &[&str], hide_reason: bool) -> Self {
        let extra = extra
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        Self { extra, hide_reason }
    }

    /// Whether a field called `name` is secret.
    #[must_use]
    pub fn is_secret(&self, name: &str) -> bool {
        let last = name.rsplit('.').next().unwrap_or(name);
        // `last` is `name` itself when it has no dot: one comparison then.
        let dotted = last.len() != name.len();
        let hit =
            |n: &str| n.eq_ignore_ascii_case(name) || (dotted && n.eq_ignore_ascii_case(last));
        BUILTIN.iter().any(|n| hit(n))
            || (self.hide_reason && hit("reason"))
            || self.extra.iter().any(|n| hit(n))
    }

    /// Redact `fields` in place (names at every depth).
    pub fn apply(&self, fields: &mut [Field]) {
        for (name, value) in fields.iter_mut() {
            if self.is_secret(name) {
                *value = Val::Json(Value::String(REDACTED.to_owned()));
            } else if let Val::Json(v) = value {
                self.apply_value(v);
            }
        }
    }

    /// Redact the keys of every object inside `value`.
    pub fn apply_value(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if self.is_secret(key) {
                        *v = Value::String(REDACTED.to_owned());
                    } else {
                        self.apply_value(v);
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.apply_value(v);
                }
            }
            _ => {}
        }
    }
}

static SECRETS: RwLock<Vec<Box<str>>> = RwLock::new(Vec::new());

/// Never let `value` reach a log line: every later line has it (raw or
/// JSON-escaped) replaced by `<redacted>`. Call it with each secret value
/// the process resolves (`[[secrets]]`, API keys, bearer tokens). Values
/// shorter than [`MIN_SCRUB_LEN`] are ignored.
pub fn register_secret(value: &str) {
    if value.len() < MIN_SCRUB_LEN {
        return;
    }
    let mut list = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !list.iter().any(|s| &**s == value) {
        // Kept longest first, so a secret containing another is replaced whole.
        let at = list
            .iter()
            .position(|s| s.len() < value.len())
            .unwrap_or(list.len());
        list.insert(at, value.into());
    }
}

/// Replace every registered secret value in `line`.
pub fn scrub(line: &mut String) {
    let list = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    scrub_with(&list, line);
}

fn scrub_with(secrets: &[Box<str>], line: &mut String) {
    for secret in secrets {
        if line.contains(&**secret) {
            *line = line.replace(&**secret, REDACTED);
        }
        // The JSON-escaped form (a secret with `"`, `\` or control characters).
        if let Ok(quoted) = serde_json::to_string(&**secret) {
            let escaped = &quoted[1..quoted.len() - 1];
            if escaped != &**secret && line.contains(escaped) {
                *line = line.replace(escaped, REDACTED);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    fn field(name: &'static str, v: Value) -> (Cow<'static, str>, Val) {
        (Cow::Borrowed(name), Val::Json(v))
    }

    #[test]
    fn builtin_names_match_case_insensitively_and_by_last_segment() {
        let r = Redactor::new(&[], false);
        for name in [
            "token",
            "TOKEN",
            "Authorization",
            "api_KEY",
            "auth.token",
            "Session",
        ] {
            assert!(r.is_secret(name), "{name}");
        }
        for name in ["tokens", "reason", "node", "my_token"] {
            assert!(!r.is_secret(name), "{name}");
        }
    }

    #[test]
    fn reason_is_hidden_unless_included_and_extra_names_add_to_the_list() {
        let audit = Redactor::new(&["X-Tenant", " "], true);
        assert!(audit.is_secret("reason") && audit.is_secret("x-tenant"));
        assert!(audit.is_secret("password"), "the list can only grow");
        assert!(!Redactor::new(&[], false).is_secret("Reason"));
    }

    #[test]
    fn nested_fields_are_redacted_at_any_depth() {
        let r = Redactor::new(&["tenant"], false);
        let mut fields = vec![
            field("event", json!("http.request")),
            field("Cookie", json!("c=1")),
            field(
                "request",
                json!({"headers": {"AUTHORIZATION": "Bearer abc", "accept": "*/*"},
                       "items": [{"Tenant": "t1", "n": 1}]}),
            ),
        ];
        r.apply(&mut fields);
        assert_eq!(fields[0].1, Val::Json(json!("http.request")));
        assert_eq!(fields[1].1, Val::Json(json!(REDACTED)));
        assert_eq!(
            fields[2].1,
            Val::Json(
                json!({"headers": {"AUTHORIZATION": REDACTED, "accept": "*/*"},
                             "items": [{"Tenant": REDACTED, "n": 1}]})
            )
        );
    }

    #[test]
    fn raw_values_under_secret_names_are_redacted_too() {
        let r = Redactor::new(&[], false);
        let mut fields = vec![(Cow::Borrowed("bearer"), Val::Raw("xyz".into()))];
        r.apply(&mut fields);
        assert_eq!(fields[0].1, Val::Json(json!(REDACTED)));
    }

    #[test]
    fn scrubbing_replaces_raw_and_json_escaped_values() {
        let secrets: Vec<Box<str>> = vec!["s3cr\"et-value".into(), "canary-123".into()];
        let mut line =
            String::from("failed: canary-123 and {\"v\":\"s3cr\\\"et-value\"} s3cr\"et-value");
        scrub_with(&secrets, &mut line);
        assert_eq!(
            line,
            "failed: <redacted> and {\"v\":\"<redacted>\"} <redacted>"
        );
    }

    #[test]
    fn short_values_are_not_registered() {
        register_secret("ab");
        let mut line = String::from("ab ab");
        scrub(&mut line);
        assert_eq!(line, "ab ab");
    }
}
