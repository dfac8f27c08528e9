//! Secret checks (ours, DESIGN.md §8): `[[secrets]]` definitions and every
//! place a workflow names a secret.
//!
//! The model already gives literal values nowhere to go inside `[[secrets]]`
//! (each source accepts only its own keys). What is left, and checked here:
//!
//! - `dup_secret_name`: two entries with one name (the second could never
//!   be used);
//! - `secret_source_unsupported`: `command` and `oauth2` sources, which this
//!   runtime does not implement (a build that would fail at start is refused
//!   now);
//! - `secret_literal_material`: a value pasted where a *name* belongs — an
//!   `env` source whose `var` is not a variable name, an `api_key_env`, MCP
//!   `env` entry or `{{secret:NAME}}` naming neither a declared secret nor a
//!   variable, and a credential header (`Authorization`, `Cookie`,
//!   `X-Api-Key`, ...) written as a literal with no `{{secret:NAME}}`.
//!
//! Messages never repeat the suspected value: they name the key, and the
//! span points at it.

use std::collections::HashMap;

use super::Validator;
use crate::diagnostics::Diagnostic;
use crate::loc;
use crate::model::{NodeKind, SecretSource};

/// Header names whose value is a credential: a literal there is secret
/// material in the workflow file.
pub const CREDENTIAL_HEADERS: [&str; 8] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "private-token",
];

/// `[A-Za-z_][A-Za-z0-9_]*`: what an environment variable name looks like.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The secret names a header value references (`{{secret:NAME}}`, trimmed).
pub fn header_secret_names(value: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        if let Some(name) = after[..close].trim().strip_prefix("secret:") {
            names.push(name.trim());
        }
        rest = &after[close + 2..];
    }
    names
}

impl Validator<'_> {
    pub(super) fn check_secrets(&mut self) {
        self.check_secret_defs();
        self.check_secret_references();
        self.check_credential_headers();
    }

    fn check_secret_defs(&mut self) {
        let defs = &self.doc.secrets;
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (j, s) in defs.iter().enumerate() {
            let name_span = self.span(loc!["secrets", j, "name"]);
            if let Some(&f) = first.get(s.name.as_str()) {
                let first_span = self.span(loc!["secrets", f, "name"]);
                let d = Diagnostic::error(
                    "dup_secret_name",
                    self.path(),
                    format!("secret `{}` is declared more than once", s.name),
                )
                .with_span(name_span.clone())
                .with_label("duplicate secret name")
                .with_note(format!("first declared on {}", self.line(first_span)))
                .with_help("give every [[secrets]] entry a unique `name`");
                self.push(d);
            } else {
                first.insert(s.name.as_str(), j);
            }
            match &s.source {
                SecretSource::Env(e) if !is_env_name(&e.var) => {
                    let d = Diagnostic::error(
                        "secret_literal_material",
                        self.path(),
                        format!(
                            "secret `{}`: `var` must name an environment variable, and this value is not a variable name",
                            s.name
                        ),
                    )
                    .with_span(self.span(loc!["secrets", j, "var"]))
                    .with_label("not an environment variable name")
                    .with_help(
                        "set `var` to the NAME of the variable that holds the secret (e.g. `var = \"API_TOKEN\"`); \
                         secret values never go in the workflow file",
                    );
                    self.push(d);
                }
                SecretSource::Command(_) | SecretSource::Oauth2(_) => {
                    let source = if matches!(s.source, SecretSource::Command(_)) {
                        "command"
                    } else {
                        "oauth2"
                    };
                    let d = Diagnostic::error(
                        "secret_source_unsupported",
                        self.path(),
                        format!(
                            "secret `{}`: source `{source}` is not supported by this runtime",
                            s.name
                        ),
                    )
                    .with_span(self.span(loc!["secrets", j, "source"]))
                    .with_label("unsupported source")
                    .with_help(
                        "use `source = \"env\"` (var = \"NAME\") or `source = \"file\"` (path = \"/run/secrets/x\"), \
                         and let the deployment put the value there",
                    );
                    self.push(d);
                }
                _ => {}
            }
        }
    }

    /// Names used as secret references that can never resolve: not declared
    /// and not a variable name — almost always a pasted value.
    fn check_secret_references(&mut self) {
        // A child runs on its root's secrets, which this file cannot see.
        if self.parent.is_some() {
            return;
        }
        let declared: Vec<&str> = self.doc.secrets.iter().map(|s| s.name.as_str()).collect();
        let resolvable = |name: &str| declared.contains(&name) || is_env_name(name);
        let mut found: Vec<(crate::source::Loc, String)> = Vec::new();
        if let Some(intel) = &self.doc.intelligence {
            for (j, b) in intel.backends.iter().enumerate() {
                if let Some(name) = &b.api_key_env
                    && !resolvable(name)
                {
                    found.push((
                        loc!["intelligence", "backends", j, "api_key_env"],
                        format!("backend `{}`: `api_key_env`", b.name),
                    ));
                }
            }
        }
        for (j, m) in self.doc.mcp_servers.iter().enumerate() {
            for (var, name) in &m.env {
                if !resolvable(name) {
                    found.push((
                        loc!["mcp_servers", j, "env", var.as_str()],
                        format!("MCP server `{}`: env `{var}`", m.name),
                    ));
                }
            }
        }
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::HttpRequest(h) = &n.kind else {
                continue;
            };
            for (header, value) in h.headers.iter().flatten() {
                if header_secret_names(value)
                    .into_iter()
                    .any(|name| !name.is_empty() && !resolvable(name))
                {
                    found.push((
                        loc!["nodes", i, "headers", header.as_str()],
                        format!("node `{}`: header `{header}`", n.id),
                    ));
                }
            }
        }
        for (at, what) in found {
            let d = Diagnostic::error(
                "secret_literal_material",
                self.path(),
                format!(
                    "{what} names a secret that is neither declared in [[secrets]] nor an environment variable name"
                ),
            )
            .with_span(self.span(at))
            .with_label("not a secret name")
            .with_help(
                "write the NAME of a secret here, declared in [[secrets]] or set as an environment variable; \
                 secret values never go in the workflow file",
            );
            self.push(d);
        }
    }

    /// A credential header with a literal value and no `{{secret:NAME}}`.
    fn check_credential_headers(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::HttpRequest(h) = &n.kind else {
                continue;
            };
            for (header, value) in h.headers.iter().flatten() {
                let credential = CREDENTIAL_HEADERS
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(header));
                if !credential || value.trim().is_empty() || value.contains("{{") {
                    continue;
                }
                let d = Diagnostic::error(
                    "secret_literal_material",
                    self.path(),
                    format!(
                        "node `{}`: header `{header}` carries a literal credential",
                        n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "headers", header.as_str()]))
                .with_label("credential written in the workflow file")
                .with_help(format!(
                    "move the value into a secret and reference it: {header} = \"... {{{{secret:NAME}}}}\" \
                     with [[secrets]] name = \"NAME\", source = \"env\" or \"file\""
                ));
                self.push(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate};
    use std::path::Path;

    fn diags(text: &str) -> Vec<Diagnostic> {
        let r = parse_str(Path::new("wf.toml"), text);
        let doc = r
            .doc
            .unwrap_or_else(|| panic!("parse failed: {:?}", r.diagnostics));
        validate(&r.source, &doc, &ValidateOptions::default())
            .into_iter()
            .filter(|d| d.code != "no_policy")
            .collect()
    }

    /// The text a diagnostic's span covers.
    fn spanned<'t>(text: &'t str, d: &Diagnostic) -> &'t str {
        d.span.clone().and_then(|s| text.get(s)).unwrap_or("")
    }

    const NODE: &str = "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n";

    fn http(headers: &str) -> String {
        format!(
            "name = \"x\"\n[[nodes]]\nid = \"call\"\ntype = \"http_request\"\nmethod = \"GET\"\n\
             url_from = \"trigger.url\"\nheaders = {headers}\n"
        )
    }

    #[test]
    fn env_names_are_recognised() {
        assert!(is_env_name("API_TOKEN"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("sk-live-abc"));
        assert!(!is_env_name("a b"));
    }

    #[test]
    fn an_env_source_holding_a_value_is_literal_material() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"api\"\nsource = \"env\"\nvar = \"sk-live-0123456789abcdef\"\n{NODE}"
        );
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, "secret_literal_material");
        assert_eq!(spanned(&text, &ds[0]), "\"sk-live-0123456789abcdef\"");
        assert!(
            !ds[0].message.contains("sk-live"),
            "the message must not repeat the value: {}",
            ds[0].message
        );
    }

    #[test]
    fn a_literal_authorization_header_is_literal_material() {
        let text = http("{ Authorization = \"Bearer abc123\", Accept = \"text/plain\" }");
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, "secret_literal_material");
        assert_eq!(spanned(&text, &ds[0]), "\"Bearer abc123\"");
        assert!(diags(&http("{ Authorization = \"Bearer {{secret:API}}\" }")).is_empty());
    }

    #[test]
    fn a_reference_that_can_never_resolve_is_literal_material() {
        let text = http("{ X-Token = \"{{secret:ghp_abc-123}}\" }");
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, "secret_literal_material");
        assert_eq!(spanned(&text, &ds[0]), "\"{{secret:ghp_abc-123}}\"");
        // A declared secret may have any name.
        let declared = format!(
            "{}[[secrets]]\nname = \"ghp_abc-123\"\nsource = \"file\"\npath = \"/run/t\"\n",
            http("{ X-Token = \"{{secret:ghp_abc-123}}\" }")
        );
        assert!(diags(&declared).is_empty());
    }

    #[test]
    fn duplicate_names_point_at_the_second() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"t\"\nsource = \"env\"\nvar = \"A\"\n\
             [[secrets]]\nname = \"t\"\nsource = \"file\"\npath = \"/p\"\n{NODE}"
        );
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, "dup_secret_name");
        let second = text.rfind("\"t\"").map(|i| i..i + 3);
        assert_eq!(ds[0].span, second);
    }

    #[test]
    fn command_and_oauth2_sources_are_refused() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"c\"\nsource = \"command\"\nargv = [\"/bin/pass\"]\n{NODE}"
        );
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, "secret_source_unsupported");
        assert_eq!(spanned(&text, &ds[0]), "\"command\"");
    }

    #[test]
    fn env_and_file_sources_are_clean() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"a\"\nsource = \"env\"\nvar = \"A\"\n\
             [[secrets]]\nname = \"b\"\nsource = \"file\"\npath = \"/run/b\"\ntrim = false\n{NODE}"
        );
        assert!(diags(&text).is_empty());
    }
}
