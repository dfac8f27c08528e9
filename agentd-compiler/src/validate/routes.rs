//! `[[http_routes]]` checks beyond dialect 1's (ours, docs/dialect.md §15): a route that
//! builds must do what it says.
//!
//! - `invalid_route_path`: a path that no request can match — routes match the path
//!   exactly after the query string is dropped, so a path without a leading `/`, or
//!   with `?`, `#`, whitespace or a control character, would never run;
//! - `reserved_route`: `GET /healthz`, `GET /readyz` and `GET /metrics` are answered by the server
//!   before routing (with no auth and no rate limit), so a route declared on them
//!   could never run — dialect 1 accepted it and silently shadowed it;
//! - `invalid_rate_limit`: a `rate_limit` whose bucket could never work —
//!   `capacity = 0` (answers 429 forever), a `per_second` that is NaN, infinite, zero
//!   or negative, or so small that the next token is more than a year away;
//! - `input_schema_invalid`: an `input_schema` of the root workflow that is not a
//!   readable JSON Schema file (it is compiled into the binary, so this is known at
//!   build time; see [`crate::resolve::input_schema`]).

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::loc;

/// The paths the server answers itself on `GET`, before any route.
pub const RESERVED_GET_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The slowest refill accepted: one token a year. Anything slower is a route that
/// never admits a second request (and a `Retry-After` no client can honour).
pub const MIN_PER_SECOND: f64 = 1.0 / 31_536_000.0;

/// Why no request path can equal `path`, if none can.
fn unmatchable_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("does not start with `/`")
    } else if path.contains('?') {
        Some("a query string is dropped before matching")
    } else if path.contains('#') {
        Some("a fragment is never sent to the server")
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a request path holds no whitespace or control character")
    } else {
        None
    }
}

impl Validator<'_> {
    pub(super) fn check_route_extras(&mut self) {
        for (i, route) in self.doc.http_routes.iter().enumerate() {
            if let Some(why) = unmatchable_path(&route.path) {
                let d = Diagnostic::new(
                    Code::InvalidRoutePath,
                    self.path(),
                    format!("HTTP route path `{}` can never match a request", route.path),
                )
                .with_span(self.span(loc!["http_routes", i, "path"]))
                .with_label(why)
                .with_note(
                    "a route matches the request path exactly, after the query string is \
                     dropped",
                )
                .with_help("write an absolute path such as `/orders`, without a query or fragment");
                self.push(d);
            }
            if route.method.eq_ignore_ascii_case("GET")
                && RESERVED_GET_PATHS.contains(&route.path.as_str())
            {
                let d = Diagnostic::new(
                    Code::ReservedRoute,
                    self.path(),
                    format!(
                        "HTTP route `{} {}` is reserved by the server",
                        route.method, route.path
                    ),
                )
                .with_span(self.span(loc!["http_routes", i, "path"]))
                .with_label("answered by the server before routing; this route would never run")
                .with_note(
                    "`GET /healthz` (liveness), `GET /readyz` (readiness: the state store \
                     answers) and `GET /metrics` (Prometheus) are served with no auth and no \
                     rate limit by every binary with routes",
                )
                .with_help("choose another path, e.g. `/status`");
                self.push(d);
            }
            if let Some(rl) = &route.rate_limit {
                self.check_rate_limit(i, rl.capacity, rl.per_second);
            }
            // A child's routes are never served (see `no_effect`), so its schema
            // files are not read.
            if let Some(schema) = route
                .input_schema
                .as_deref()
                .filter(|_| self.parent.is_none())
                && let Err(why) = crate::resolve::input_schema::resolve(
                    schema,
                    &self.opts.base_dir,
                    &self.opts.cwd,
                )
            {
                let d = Diagnostic::new(
                    Code::InputSchemaInvalid,
                    self.path(),
                    format!(
                        "HTTP route `{} {}`: input_schema {why}",
                        route.method, route.path
                    ),
                )
                .with_span(self.span(loc!["http_routes", i, "input_schema"]))
                .with_label("not a usable JSON Schema file")
                .with_help(
                    "point `input_schema` at a JSON Schema file (relative to the workflow \
                     file, then the working directory); it is compiled into the binary, and \
                     `$ref`s must stay inside the file",
                );
                self.push(d);
            }
        }
    }

    fn check_rate_limit(&mut self, i: usize, capacity: u32, per_second: f32) {
        if capacity == 0 {
            let d = Diagnostic::new(
                Code::InvalidRateLimit,
                self.path(),
                "rate_limit.capacity is 0: the route would answer 429 to every request",
            )
            .with_span(self.span(loc!["http_routes", i, "rate_limit", "capacity"]))
            .with_label("must be at least 1")
            .with_help("`capacity` is the burst size, e.g. `rate_limit = { capacity = 20, per_second = 5.0 }`");
            self.push(d);
        }
        let rate = f64::from(per_second);
        let why = if rate.is_nan() {
            Some("is not a number".to_string())
        } else if rate.is_infinite() {
            Some("is infinite (or too large for a 32-bit float)".to_string())
        } else if rate <= 0.0 {
            Some(format!(
                "is {per_second}: the bucket would never refill and the route would answer 429 forever"
            ))
        } else if rate < MIN_PER_SECOND {
            Some(format!(
                "is {per_second}: less than one token a year, so the route would in effect never admit again"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            let d = Diagnostic::new(
                Code::InvalidRateLimit,
                self.path(),
                format!("rate_limit.per_second {why}"),
            )
            .with_span(self.span(loc!["http_routes", i, "rate_limit", "per_second"]))
            .with_label("must be a finite number of tokens per second > 0")
            .with_help(
                "`per_second` is the refill rate, e.g. `5.0`, or `0.05` for one request every 20 s \
                 (at least one token a year)",
            );
            self.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes::Code;
    use crate::diagnostics::Diagnostic;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate};

    fn route(method: &str, path: &str, extra: &str) -> String {
        format!(
            "name = \"t\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"http\"\nentry_node = \"a\"\n\
             [[http_routes]]\nmethod = \"{method}\"\npath = \"{path}\"\nstart_node = \"main\"\n{extra}\n\
             [[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
        )
    }

    fn diags_in(text: &str, base: &Path) -> Vec<Diagnostic> {
        let r = parse_str(Path::new("wf.toml"), text);
        let doc = r
            .doc
            .unwrap_or_else(|| panic!("parse failed: {:?}", r.diagnostics));
        let opts = ValidateOptions {
            base_dir: base.to_path_buf(),
            cwd: base.to_path_buf(),
            allow_rust_nodes: false,
        };
        validate(&r.source, &doc, &opts)
    }

    /// The spans (as source text) of every error with `code`.
    fn spans(text: &str, code: Code) -> Vec<String> {
        diags_in(text, Path::new("/nowhere"))
            .iter()
            .filter(|d| d.code == code)
            .map(|d| {
                assert!(d.is_error() && d.help.is_some(), "{d:?}");
                let span = d.span.clone().expect("a span");
                text[span].to_string()
            })
            .collect()
    }

    #[test]
    fn get_healthz_and_get_metrics_are_reserved_in_any_case() {
        assert_eq!(
            spans(&route("GET", "/healthz", ""), Code::ReservedRoute),
            ["\"/healthz\""]
        );
        assert_eq!(
            spans(&route("get", "/metrics", ""), Code::ReservedRoute),
            ["\"/metrics\""]
        );
        assert_eq!(
            spans(&route("GET", "/readyz", ""), Code::ReservedRoute),
            ["\"/readyz\""]
        );
        // Only GET is answered before routing: other methods are ordinary routes.
        assert!(spans(&route("POST", "/metrics", ""), Code::ReservedRoute).is_empty());
        assert!(spans(&route("GET", "/healthz/x", ""), Code::ReservedRoute).is_empty());
    }

    #[test]
    fn a_route_path_no_request_can_match_is_an_error_on_the_path() {
        for path in ["orders", "/orders?id=1", "/a#top", "/a b", ""] {
            assert_eq!(
                spans(&route("POST", path, ""), Code::InvalidRoutePath),
                [format!("\"{path}\"")],
                "{path:?}"
            );
        }
        for path in ["/", "/orders", "/hooks/github", "/a%20b"] {
            assert!(
                spans(&route("POST", path, ""), Code::InvalidRoutePath).is_empty(),
                "{path:?}"
            );
        }
    }

    #[test]
    fn rate_limit_capacity_zero_is_an_error_on_the_capacity() {
        let t = route(
            "POST",
            "/x",
            "rate_limit = { capacity = 0, per_second = 1.0 }",
        );
        assert_eq!(spans(&t, Code::InvalidRateLimit), ["0"]);
    }

    #[test]
    fn rate_limit_per_second_must_be_a_finite_positive_rate() {
        for bad in ["nan", "inf", "-inf", "0.0", "-1.5", "1e300", "1e-9"] {
            let t = route(
                "POST",
                "/x",
                &format!("rate_limit = {{ capacity = 1, per_second = {bad} }}"),
            );
            assert_eq!(
                spans(&t, Code::InvalidRateLimit),
                [bad],
                "per_second = {bad}"
            );
        }
        for good in ["0.05", "5.0", "1e9", "4e-8"] {
            let t = route(
                "POST",
                "/x",
                &format!("rate_limit = {{ capacity = 1, per_second = {good} }}"),
            );
            assert!(
                spans(&t, Code::InvalidRateLimit).is_empty(),
                "per_second = {good}"
            );
        }
    }

    #[test]
    fn a_child_workflows_schema_file_is_not_read_as_its_routes_are_never_served() {
        let t = route("POST", "/x", "input_schema = \"missing.json\"");
        let r = parse_str(Path::new("child.toml"), &t);
        let doc = r.doc.expect("parses");
        let opts = ValidateOptions::default();
        let child = crate::validate::validate_child(&r.source, &doc, &opts, &[]);
        assert!(
            child.iter().all(|d| d.code != Code::InputSchemaInvalid),
            "{child:?}"
        );
        let root = validate(&r.source, &doc, &opts);
        assert!(root.iter().any(|d| d.code == Code::InputSchemaInvalid));
    }

    #[test]
    fn input_schema_must_be_a_readable_valid_schema() {
        let dir = crate::test_support::temp_dir("route-schema");
        std::fs::write(
            dir.join("ok.json"),
            r#"{"type":"object","required":["id"]}"#,
        )
        .expect("write");
        std::fs::write(dir.join("bad.json"), r#"{"type":"objekt"}"#).expect("write");
        let codes = |schema: &str| -> Vec<(String, String)> {
            let t = route("POST", "/x", &format!("input_schema = \"{schema}\""));
            diags_in(&t, &dir)
                .iter()
                .filter(|d| d.code == Code::InputSchemaInvalid)
                .map(|d| {
                    let span = d.span.clone().expect("a span");
                    (t[span].to_string(), d.message.clone())
                })
                .collect()
        };
        assert!(codes("ok.json").is_empty());
        let bad = codes("bad.json");
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, "\"bad.json\"");
        assert!(bad[0].1.contains("not a valid JSON Schema"), "{}", bad[0].1);
        let missing = codes("missing.json");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].1.contains("not a readable file"),
            "{}",
            missing[0].1
        );
    }
}
