//! Secret checks (ours, docs/dialect.md §15): `[[secrets]]` definitions and every
//! place a workflow names a secret.
//!
//! The model already gives literal values nowhere to go inside `[[secrets]]`
//! (each source accepts only its own keys). What is left, and checked here:
//!
//! - `dup_secret_name`: two entries with one name (the second could never
//!   be used);
//! - `secret_command_empty`: a `command` source whose `argv` names no program;
//! - `secret_oauth2_bad_url`: an `oauth2` `token_url` that is not an absolute
//!   `http://` or `https://` URL;
//! - `secret_oauth2_url_denied`: under a `[policy]`, a `token_url` its
//!   `[policy.http]` does not allow as a `POST` (the token could never be
//!   fetched);
//! - `secret_oauth2_auth_style`: `auth_style` other than `body` or `basic`;
//! - `secret_oauth2_reserved_param`: an `extra_params` key the grant itself
//!   sends (`grant_type`, `client_id`, `client_secret`, `scope`);
//! - `secret_oauth2_credential_loop`: `client_id_env` or `client_secret_env`
//!   naming an `oauth2` secret;
//! - `invalid_mcp_oauth`: `[mcp_servers.oauth]` on a stdio server, a grant
//!   other than `client_credentials`, an unknown `token_auth`;
//! - `secret_literal_material`: a value pasted where a *name* belongs — an
//!   `env` source whose `var` is not a variable name, an `api_key_env`, MCP
//!   `env` entry, `oauth2` `client_id_env` / `client_secret_env` or
//!   `{{secret:NAME}}` naming neither a declared secret nor a variable, and a
//!   credential header (`Authorization`, `Cookie`,
//!   `X-Api-Key`, ...) written as a literal with no `{{secret:NAME}}`.
//!
//! Messages never repeat the suspected value: they name the key, and the
//! span points at it.

use std::collections::HashMap;

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::grammar::is_env_name;
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

/// `[policy.http] urls` matching, as the runtime's `policy::path_matches`
/// does it: `*`, a `/*` or `/**` suffix (the prefix or below it), a trailing
/// `*` (prefix), or the exact URL.
fn url_pattern_matches(pattern: &str, url: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern
        .strip_suffix("/**")
        .or_else(|| pattern.strip_suffix("/*"))
    {
        return url == prefix
            || url
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'));
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => url.starts_with(prefix),
        None => pattern == url,
    }
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
        self.check_mcp_oauth();
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
                let d = Diagnostic::new(
                    Code::DupSecretName,
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
                    let d = Diagnostic::new(
                        Code::SecretLiteralMaterial,
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
                SecretSource::Command(c) if c.argv.first().is_none_or(|p| p.trim().is_empty()) => {
                    let d = Diagnostic::new(
                        Code::SecretCommandEmpty,
                        self.path(),
                        format!("secret `{}`: `argv` names no program", s.name),
                    )
                    .with_span(self.span(loc!["secrets", j, "argv"]))
                    .with_label("no program to run")
                    .with_help(
                        "give the program and its arguments, e.g. argv = [\"/usr/bin/pass\", \"show\", \"api\"]; \
                         it runs with no shell",
                    );
                    self.push(d);
                }
                SecretSource::Oauth2(o) => self.check_oauth2_secret(j, &s.name, o),
                _ => {}
            }
        }
    }

    fn check_oauth2_secret(&mut self, j: usize, name: &str, o: &crate::model::OAuth2Secret) {
        let url = o.token_url.trim();
        let scheme_ok = ["http://", "https://"].iter().any(|p| {
            url.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
                && url.len() > p.len()
        });
        if !scheme_ok || url != o.token_url || url.contains(char::is_whitespace) {
            let d = Diagnostic::new(
                Code::SecretOauth2BadUrl,
                self.path(),
                format!("secret `{name}`: `token_url` is not an absolute http:// or https:// URL"),
            )
            .with_span(self.span(loc!["secrets", j, "token_url"]))
            .with_label("not a token endpoint URL")
            .with_help("write the token endpoint's full URL, e.g. token_url = \"https://auth.example.com/oauth/token\"");
            self.push(d);
        } else if let Some(http) = self.doc.policy.as_ref().map(|p| &p.http) {
            let method_ok = http.methods.is_empty()
                || http.methods.iter().any(|m| m.eq_ignore_ascii_case("POST"));
            let url_ok = http.urls.iter().any(|p| url_pattern_matches(p, url));
            if !(method_ok && url_ok) {
                let why = if url_ok {
                    "its methods do not include POST"
                } else {
                    "no `urls` pattern covers it"
                };
                let d = Diagnostic::new(
                    Code::SecretOauth2UrlDenied,
                    self.path(),
                    format!("secret `{name}`: [policy.http] does not allow a POST to `token_url` ({why})"),
                )
                .with_span(self.span(loc!["secrets", j, "token_url"]))
                .with_label("the token could never be fetched")
                .with_help(format!(
                    "add the endpoint to [policy.http], e.g. urls = [\"{url}\"] (and \"POST\" to `methods` when it lists any)"
                ));
                self.push(d);
            }
        }
        if let Some(style) = &o.auth_style
            && style != "body"
            && style != "basic"
        {
            let d = Diagnostic::new(
                Code::SecretOauth2AuthStyle,
                self.path(),
                format!("secret `{name}`: `auth_style` must be \"body\" or \"basic\""),
            )
            .with_span(self.span(loc!["secrets", j, "auth_style"]))
            .with_label("unknown client authentication")
            .with_help(
                "use \"body\" (client_secret_post, the default) or \"basic\" (client_secret_basic)",
            );
            self.push(d);
        }
        for key in o.extra_params.keys() {
            if ["grant_type", "client_id", "client_secret", "scope"].contains(&key.as_str()) {
                let d = Diagnostic::new(
                    Code::SecretOauth2ReservedParam,
                    self.path(),
                    format!(
                        "secret `{name}`: `extra_params` sets `{key}`, which the grant sends itself"
                    ),
                )
                .with_span(self.span(loc!["secrets", j, "extra_params", key.as_str()]))
                .with_label("set by the client credentials grant")
                .with_help(match key.as_str() {
                    "scope" => "list scopes in `scopes = [...]`",
                    "grant_type" => "remove it: the grant is always client_credentials",
                    _ => {
                        "the client id and secret come from `client_id_env` and `client_secret_env`"
                    }
                });
                self.push(d);
            }
        }
        for (key, cred) in [
            ("client_id_env", &o.client_id_env),
            ("client_secret_env", &o.client_secret_env),
        ] {
            let loops = self
                .doc
                .secrets
                .iter()
                .any(|d| &d.name == cred && matches!(d.source, SecretSource::Oauth2(_)));
            if loops {
                let d = Diagnostic::new(
                    Code::SecretOauth2CredentialLoop,
                    self.path(),
                    format!("secret `{name}`: `{key}` names `{cred}`, which is itself an oauth2 token"),
                )
                .with_span(self.span(loc!["secrets", j, key]))
                .with_label("a token cannot be a client credential")
                .with_help("name a secret with an `env`, `file` or `command` source (or an environment variable)");
                self.push(d);
            }
        }
    }

    /// `[mcp_servers.oauth]`: only on `url` servers, only the client
    /// credentials grant, a known `token_auth`.
    fn check_mcp_oauth(&mut self) {
        for (j, m) in self.doc.mcp_servers.iter().enumerate() {
            let Some(o) = &m.oauth else {
                continue;
            };
            let mut problems: Vec<(crate::source::Loc, String, &str, &str)> = Vec::new();
            if m.url.is_none() {
                problems.push((
                    loc!["mcp_servers", j, "oauth"],
                    format!("MCP server `{}`: `oauth` needs a `url` server (stdio servers take credentials through `env`)", m.name),
                    "OAuth on a stdio server",
                    "remove [mcp_servers.oauth], or give the server a `url` instead of a `command`",
                ));
            }
            if o.grant != "client_credentials" {
                problems.push((
                    loc!["mcp_servers", j, "oauth", "grant"],
                    format!("MCP server `{}`: OAuth grant `{}` is not supported", m.name, o.grant),
                    "unsupported grant",
                    "use grant = \"client_credentials\" (a service has no user to send through a browser)",
                ));
            }
            if let Some(t) = &o.token_auth
                && t != "client_secret_basic"
                && t != "client_secret_post"
            {
                problems.push((
                    loc!["mcp_servers", j, "oauth", "token_auth"],
                    format!(
                        "MCP server `{}`: `token_auth` `{t}` is not supported",
                        m.name
                    ),
                    "unknown client authentication",
                    "use \"client_secret_basic\" (the default) or \"client_secret_post\"",
                ));
            }
            for (at, message, label, help) in problems {
                let d = Diagnostic::new(Code::InvalidMcpOauth, self.path(), message)
                    .with_span(self.span(at))
                    .with_label(label)
                    .with_help(help);
                self.push(d);
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
        for (j, s) in self.doc.secrets.iter().enumerate() {
            if let SecretSource::Oauth2(o) = &s.source {
                for (key, name) in [
                    ("client_id_env", &o.client_id_env),
                    ("client_secret_env", &o.client_secret_env),
                ] {
                    if !resolvable(name) {
                        found.push((
                            loc!["secrets", j, key],
                            format!("secret `{}`: `{key}`", s.name),
                        ));
                    }
                }
            }
        }
        for (j, m) in self.doc.mcp_servers.iter().enumerate() {
            if let Some(o) = &m.oauth {
                for (key, name) in [
                    ("client_id", &o.client_id),
                    ("client_secret", &o.client_secret),
                ] {
                    if !resolvable(name) {
                        found.push((
                            loc!["mcp_servers", j, "oauth", key],
                            format!("MCP server `{}`: oauth `{key}`", m.name),
                        ));
                    }
                }
            }
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
            let d = Diagnostic::new(
                Code::SecretLiteralMaterial,
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
                let d = Diagnostic::new(
                    Code::SecretLiteralMaterial,
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
            .filter(|d| d.code != Code::NoPolicy)
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
    fn an_env_source_holding_a_value_is_literal_material() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"api\"\nsource = \"env\"\nvar = \"sk-live-0123456789abcdef\"\n{NODE}"
        );
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, Code::SecretLiteralMaterial);
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
        assert_eq!(ds[0].code, Code::SecretLiteralMaterial);
        assert_eq!(spanned(&text, &ds[0]), "\"Bearer abc123\"");
        assert!(diags(&http("{ Authorization = \"Bearer {{secret:API}}\" }")).is_empty());
    }

    #[test]
    fn a_reference_that_can_never_resolve_is_literal_material() {
        let text = http("{ X-Token = \"{{secret:ghp_abc-123}}\" }");
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, Code::SecretLiteralMaterial);
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
        assert_eq!(ds[0].code, Code::DupSecretName);
        let second = text.rfind("\"t\"").map(|i| i..i + 3);
        assert_eq!(ds[0].span, second);
    }

    fn oauth2(extra: &str) -> String {
        format!(
            "name = \"x\"\n[[secrets]]\nname = \"tok\"\nsource = \"oauth2\"\n\
             token_url = \"https://auth.example.com/token\"\nclient_id_env = \"CID\"\n\
             client_secret_env = \"CSECRET\"\n{extra}\n{NODE}"
        )
    }

    #[test]
    fn command_and_oauth2_sources_build() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"c\"\nsource = \"command\"\nargv = [\"/bin/pass\"]\n{NODE}"
        );
        assert!(diags(&text).is_empty(), "{:#?}", diags(&text));
        let text = oauth2(
            "scopes = [\"a\"]\nauth_style = \"basic\"\nskew_secs = 5\nextra_params = { audience = \"api\" }",
        );
        assert!(diags(&text).is_empty(), "{:#?}", diags(&text));
    }

    #[test]
    fn a_command_without_a_program_is_refused_at_argv() {
        let text = format!(
            "name = \"x\"\n[[secrets]]\nname = \"c\"\nsource = \"command\"\nargv = []\n{NODE}"
        );
        let ds = diags(&text);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, Code::SecretCommandEmpty);
        assert_eq!(spanned(&text, &ds[0]), "[]");
    }

    #[test]
    fn bad_oauth2_keys_each_have_a_code_at_their_value() {
        let cases = [
            ("token_url = \"ftp://x/t\"", Code::SecretOauth2BadUrl),
            ("auth_style = \"jwt\"", Code::SecretOauth2AuthStyle),
            (
                "extra_params = { scope = \"a\" }",
                Code::SecretOauth2ReservedParam,
            ),
        ];
        for (extra, code) in cases {
            let text = if extra.starts_with("token_url") {
                oauth2("").replace("token_url = \"https://auth.example.com/token\"", extra)
            } else {
                oauth2(extra)
            };
            let ds = diags(&text);
            assert_eq!(ds.len(), 1, "{extra}: {ds:#?}");
            assert_eq!(ds[0].code, code);
            assert!(!spanned(&text, &ds[0]).is_empty());
        }
        let looped = format!(
            "{}[[secrets]]\nname = \"CID\"\nsource = \"oauth2\"\ntoken_url = \"https://a/t\"\n\
             client_id_env = \"X\"\nclient_secret_env = \"Y\"\n",
            oauth2("")
        );
        let ds = diags(&looped);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, Code::SecretOauth2CredentialLoop);
        assert_eq!(spanned(&looped, &ds[0]), "\"CID\"");
        let pasted = oauth2("").replace("\"CSECRET\"", "\"s3cr3t-value!\"");
        let ds = diags(&pasted);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, Code::SecretLiteralMaterial);
    }

    #[test]
    fn a_token_url_the_policy_does_not_allow_is_refused() {
        let denied = oauth2("[policy.http]\nurls = [\"https://api.example.com/**\"]");
        let ds = diags(&denied);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].code, Code::SecretOauth2UrlDenied);
        assert_eq!(
            spanned(&denied, &ds[0]),
            "\"https://auth.example.com/token\""
        );
        let get_only =
            oauth2("[policy.http]\nurls = [\"https://auth.example.com/*\"]\nmethods = [\"GET\"]");
        assert_eq!(
            diags(&get_only).first().map(|d| d.code),
            Some(Code::SecretOauth2UrlDenied)
        );
        let allowed = oauth2("[policy.http]\nurls = [\"https://auth.example.com/*\"]");
        assert!(diags(&allowed).is_empty(), "{:#?}", diags(&allowed));
    }

    #[test]
    fn mcp_oauth_is_checked_at_its_keys() {
        let server = |extra: &str, oauth: &str| {
            format!(
                "name = \"x\"\n[[mcp_servers]]\nname = \"r\"\n{extra}\n\
                 [mcp_servers.oauth]\n{oauth}\n{NODE}"
            )
        };
        let good = "grant = \"client_credentials\"\nclient_id = \"CID\"\nclient_secret = \"CS\"";
        let ok = server("url = \"https://mcp.example/mcp\"", good);
        assert!(
            diags(&ok)
                .iter()
                .all(|d| d.code != Code::InvalidMcpOauth && d.code != Code::SecretLiteralMaterial),
            "{:#?}",
            diags(&ok)
        );
        let cases = [
            (
                server("command = [\"/bin/x\"]", good),
                Code::InvalidMcpOauth,
            ),
            (
                server(
                    "url = \"https://m/mcp\"",
                    &good.replace("client_credentials", "authorization_code"),
                ),
                Code::InvalidMcpOauth,
            ),
            (
                server(
                    "url = \"https://m/mcp\"",
                    &format!("{good}\ntoken_auth = \"private_key_jwt\""),
                ),
                Code::InvalidMcpOauth,
            ),
            (
                server(
                    "url = \"https://m/mcp\"",
                    &good.replace("\"CS\"", "\"sk-live-123\""),
                ),
                Code::SecretLiteralMaterial,
            ),
        ];
        for (text, code) in cases {
            let ds: Vec<_> = diags(&text)
                .into_iter()
                .filter(|d| {
                    d.code == Code::InvalidMcpOauth || d.code == Code::SecretLiteralMaterial
                })
                .collect();
            assert_eq!(ds.len(), 1, "{text}: {ds:#?}");
            assert_eq!(ds[0].code, code);
            assert!(!spanned(&text, &ds[0]).is_empty());
        }
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
