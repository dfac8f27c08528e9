//! Auth and TLS checks (ours, docs/dialect.md §15): what would make a serve-mode
//! binary refuse to start, refuse every request, or carry secret material.
//!
//! - `oidc_algorithm_rejected` (error): `algorithms` naming `none`, an `HS*`
//!   algorithm or a name the runtime does not know;
//! - `oidc_jwks_source` (error): neither or both of `jwks_json` / `jwks_file`;
//! - `oidc_jwks_invalid` (error): an inline `jwks_json` that is not a usable
//!   public key set (it is baked, so it cannot be fixed by a reload);
//! - `oidc_jwks_file_unreadable` (warning): a `jwks_file` that cannot be read
//!   or parsed now — a warning only, because it is read again at start and on
//!   every reload, relative to the binary's working directory;
//! - `auth_literal_secret` (warning): literal `tokens`, `credentials` or
//!   `secret` (dialect 1 allows them, for tests);
//! - `secret_literal_material` (error, shared with `secrets`): a `*_env`
//!   field naming neither a declared secret nor an environment variable;
//! - `hmac_tolerance_without_timestamp` (warning): `tolerance_secs` with no
//!   `timestamp_header` to apply it to;
//! - `tls_client_ca_missing` (error): `[server.tls.client_auth]` requiring or
//!   accepting client certificates without a `ca_file` to verify them.
//!
//! JWKS are checked structurally here (JSON, `keys`, key types and members);
//! the runtime re-parses them with the JWT library at start.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Validator, did_you_mean};
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::grammar::{AuthRef, AuthScheme, is_env_name, parse_auth_ref};
use crate::loc;
use crate::model::ClientAuthMode;

/// The JWT algorithms the runtime verifies: asymmetric only.
pub const OIDC_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Why an `algorithms` entry is refused, if it is.
pub fn rejected_algorithm(alg: &str) -> Option<&'static str> {
    if alg.eq_ignore_ascii_case("none") {
        Some("unsigned tokens would be accepted from anyone")
    } else if matches!(alg, "HS256" | "HS384" | "HS512") {
        Some(
            "symmetric algorithms need the shared secret, which a pinned public key set cannot hold",
        )
    } else if OIDC_ALGORITHMS.contains(&alg) {
        None
    } else {
        Some("not a JWT signature algorithm this runtime verifies")
    }
}

/// Structural check of a JWK set: `Err` says what is wrong.
pub fn check_jwks(text: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    if keys.is_empty() {
        return Err("the `keys` array is empty".into());
    }
    for (i, k) in keys.iter().enumerate() {
        let kid = k
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{i}"), |s| format!("`{s}`"));
        let has = |m: &str| k.get(m).and_then(Value::as_str).is_some();
        match k.get("kty").and_then(Value::as_str) {
            Some("RSA") if has("n") && has("e") => {}
            Some("EC") if has("crv") && has("x") && has("y") => {}
            Some("OKP") if has("crv") && has("x") => {}
            Some("oct") => {
                return Err(format!(
                    "key {kid} is symmetric (`oct`); only public keys may be pinned"
                ));
            }
            Some(kty @ ("RSA" | "EC" | "OKP")) => {
                return Err(format!("key {kid} (`{kty}`) lacks its public members"));
            }
            Some(other) => return Err(format!("key {kid} has unknown kty `{other}`")),
            None => return Err(format!("key {kid} has no `kty`")),
        }
    }
    Ok(())
}

impl Validator<'_> {
    pub(super) fn check_auth_bindings(&mut self) {
        let Some(auth) = &self.doc.auth else {
            return;
        };
        for (name, b) in &auth.bearer {
            self.secret_name_field(
                &["auth", "bearer", name, "tokens_env"],
                b.tokens_env.as_deref(),
            );
            if !b.tokens.is_empty() {
                self.literal_secret(
                    &["auth", "bearer", name, "tokens"],
                    "bearer",
                    name,
                    "tokens",
                    "tokens_env",
                );
            }
        }
        for (name, b) in &auth.basic {
            self.secret_name_field(
                &["auth", "basic", name, "credentials_env"],
                b.credentials_env.as_deref(),
            );
            if !b.credentials.is_empty() {
                self.literal_secret(
                    &["auth", "basic", name, "credentials"],
                    "basic",
                    name,
                    "credentials",
                    "credentials_env",
                );
            }
        }
        for (name, h) in &auth.hmac {
            self.secret_name_field(
                &["auth", "hmac", name, "secret_env"],
                h.secret_env.as_deref(),
            );
            if h.secret.is_some() {
                self.literal_secret(
                    &["auth", "hmac", name, "secret"],
                    "hmac",
                    name,
                    "secret",
                    "secret_env",
                );
            }
            if h.tolerance_secs.is_some() && h.timestamp_header.is_none() {
                let d = Diagnostic::new(
                    Code::HmacToleranceWithoutTimestamp,
                    self.path(),
                    format!(
                        "[auth.hmac.{name}]: `tolerance_secs` has no effect without `timestamp_header`"
                    ),
                )
                .with_span(self.key_span(loc!["auth", "hmac", name, "tolerance_secs"]))
                .with_label("no timestamp to compare")
                .with_help(
                    "add `timestamp_header = \"X-Agent-Timestamp\"` (the sender then signs \
                     `<timestamp>.<body>`), or remove `tolerance_secs`",
                );
                self.push(d);
            }
        }
        for (name, o) in &auth.oidc {
            self.check_oidc(name, o);
        }
    }

    fn check_oidc(&mut self, name: &str, o: &crate::model::OidcAuth) {
        for (j, alg) in o.algorithms.iter().enumerate() {
            let Some(why) = rejected_algorithm(alg) else {
                continue;
            };
            let d = Diagnostic::new(
                Code::OidcAlgorithmRejected,
                self.path(),
                format!("[auth.oidc.{name}]: algorithm `{alg}` is not allowed: {why}"),
            )
            .with_span(self.span(loc!["auth", "oidc", name, "algorithms", j]))
            .with_label("refused algorithm")
            .with_help(format!(
                "use the algorithm your identity provider signs with, one of {}",
                OIDC_ALGORITHMS.join(", ")
            ));
            self.push(d);
        }
        match (&o.jwks_json, &o.jwks_file) {
            (Some(_), Some(_)) | (None, None) => {
                let both = o.jwks_json.is_some();
                let d = Diagnostic::new(
                    Code::OidcJwksSource,
                    self.path(),
                    format!(
                        "[auth.oidc.{name}] must set exactly one of `jwks_json` and `jwks_file` ({})",
                        if both { "both are set" } else { "neither is set" }
                    ),
                )
                .with_span(self.key_span(if both {
                    loc!["auth", "oidc", name, "jwks_file"]
                } else {
                    loc!["auth", "oidc", name, "issuer"]
                }))
                .with_label(if both { "second key source" } else { "no key source" })
                .with_help(
                    "pin the provider's public keys: `jwks_file = \"/etc/agent/jwks.json\"` (re-read on \
                     reload) or `jwks_json = '{\"keys\": [...]}'` (baked in); keys are never fetched",
                );
                self.push(d);
            }
            (Some(json), None) => {
                if let Err(why) = check_jwks(json) {
                    let d = Diagnostic::new(
                        Code::OidcJwksInvalid,
                        self.path(),
                        format!("[auth.oidc.{name}]: `jwks_json` is not a usable key set: {why}"),
                    )
                    .with_span(self.span(loc!["auth", "oidc", name, "jwks_json"]))
                    .with_label("unusable JWKS")
                    .with_help(
                        "paste the provider's JWKS document (`{\"keys\": [...]}` with RSA, EC or OKP \
                         public keys)",
                    );
                    self.push(d);
                }
            }
            (None, Some(file)) => {
                let candidates = self.jwks_candidates(file);
                let problem = match candidates
                    .iter()
                    .find_map(|c| std::fs::read_to_string(c).ok())
                {
                    None => Some(format!(
                        "cannot be read now (tried {})",
                        candidates
                            .iter()
                            .map(|c| format!("`{}`", c.display()))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )),
                    Some(text) => check_jwks(&text).err(),
                };
                if let Some(why) = problem {
                    let d = Diagnostic::new(
                        Code::OidcJwksFileUnreadable,
                        self.path(),
                        format!("[auth.oidc.{name}]: jwks_file `{file}` {why}"),
                    )
                    .with_span(self.span(loc!["auth", "oidc", name, "jwks_file"]))
                    .with_label("checked again at start and on every reload")
                    .with_help(
                        "the binary reads this file at start (relative to its working directory) and \
                         refuses to serve if it is missing or invalid; make sure it is deployed",
                    );
                    self.push(d);
                }
            }
        }
    }

    /// `jwks_file` as the binary will read it (working directory), then next
    /// to the workflow file.
    fn jwks_candidates(&self, file: &str) -> Vec<PathBuf> {
        let p = Path::new(file);
        if p.is_absolute() {
            return vec![p.to_path_buf()];
        }
        let mut c = vec![p.to_path_buf()];
        if let Some(dir) = self.path().parent().filter(|d| !d.as_os_str().is_empty()) {
            c.push(dir.join(p));
        }
        c
    }

    /// A `*_env` field must name a secret, not hold one.
    fn secret_name_field(&mut self, at: &[&str], name: Option<&str>) {
        let Some(name) = name else {
            return;
        };
        let declared = self.doc.secrets.iter().any(|s| s.name == name);
        if declared || is_env_name(name) {
            return;
        }
        let field = at.last().copied().unwrap_or_default();
        let table = at[..at.len().saturating_sub(1)].join(".");
        let d = Diagnostic::new(
            Code::SecretLiteralMaterial,
            self.path(),
            format!(
                "[{table}]: `{field}` names a secret that is neither declared in [[secrets]] nor an environment variable name"
            ),
        )
        .with_span(self.span(at.iter().map(|s| crate::source::Seg::Key((*s).to_owned())).collect()))
        .with_label("not a secret name")
        .with_help(
            "write the NAME of a secret here, declared in [[secrets]] or set as an environment variable; \
             secret values never go in the workflow file",
        );
        self.push(d);
    }

    fn literal_secret(
        &mut self,
        at: &[&str],
        scheme: &str,
        name: &str,
        field: &str,
        instead: &str,
    ) {
        let d = Diagnostic::new(
            Code::AuthLiteralSecret,
            self.path(),
            format!(
                "[auth.{scheme}.{name}]: `{field}` puts credentials in the workflow file (and in the binary)"
            ),
        )
        .with_span(self.key_span(at.iter().map(|s| crate::source::Seg::Key((*s).to_owned())).collect()))
        .with_label("literal credentials")
        .with_help(format!(
            "fine for tests; for anything deployed use `{instead} = \"SECRET_NAME\"` (a [[secrets]] entry or \
             an environment variable, re-read on every request)"
        ));
        self.push(d);
    }

    pub(super) fn check_server_tls(&mut self) {
        let Some(tls) = self.doc.server.as_ref().and_then(|s| s.tls.as_ref()) else {
            return;
        };
        let Some(ca) = &tls.client_auth else {
            return;
        };
        if ca.mode != ClientAuthMode::None && ca.ca_file.is_none() {
            let d = Diagnostic::new(
                Code::TlsClientCaMissing,
                self.path(),
                "[server.tls.client_auth] asks for client certificates but has no `ca_file` to verify them",
            )
            .with_span(self.key_span(loc!["server", "tls", "client_auth", "mode"]))
            .with_label("no CA to verify against")
            .with_help("add `ca_file = \"/etc/agent/clients-ca.pem\"` (PEM, one or more CA certificates)");
            self.push(d);
        }
    }
}

impl<'a> Validator<'a> {
    // -- extra: route auth ------------------------------------------------------------

    pub(super) fn bindings(&self, scheme: AuthScheme) -> Vec<&'a str> {
        let Some(auth) = &self.doc.auth else {
            return Vec::new();
        };
        match scheme {
            AuthScheme::Bearer => auth.bearer.keys().map(String::as_str).collect(),
            AuthScheme::Basic => auth.basic.keys().map(String::as_str).collect(),
            AuthScheme::Hmac => auth.hmac.keys().map(String::as_str).collect(),
            AuthScheme::Oidc => auth.oidc.keys().map(String::as_str).collect(),
        }
    }

    pub(super) fn check_route_auth(&mut self) {
        for (i, route) in self.doc.http_routes.iter().enumerate() {
            let Some(raw) = &route.auth else {
                continue;
            };
            let span = self.span(loc!["http_routes", i, "auth"]);
            match parse_auth_ref(raw) {
                Err(why) => {
                    let kind = raw.trim().split_once(':').map_or(raw.trim(), |(k, _)| k);
                    let help = if kind == "mtls" {
                        "write plain `mtls`; the client certificate identifies the caller"
                            .to_string()
                    } else if ["bearer", "basic", "hmac", "oidc"].contains(&kind) {
                        format!(
                            "name the binding (`{kind}:<name>`), or write `{kind}` for `{kind}:default`"
                        )
                    } else {
                        did_you_mean(kind, ["none", "bearer", "basic", "hmac", "oidc", "mtls"])
                            .map(|m| format!("{m} (auth kinds are case-sensitive)"))
                            .unwrap_or_else(|| {
                                "write `none`, `bearer[:name]`, `basic[:name]`, `hmac[:name]`, \
                                 `oidc[:name]` or `mtls`"
                                    .to_string()
                            })
                    };
                    let d = Diagnostic::new(
                        Code::BadAuthRef,
                        self.path(),
                        format!(
                            "HTTP route `{} {}`: invalid auth reference `{raw}`: {why}",
                            route.method, route.path
                        ),
                    )
                    .with_span(span)
                    .with_label("not an auth reference")
                    .with_help(help);
                    self.push(d);
                }
                Ok(AuthRef::Anonymous) => {}
                Ok(AuthRef::Binding { scheme, name }) => {
                    let known = self.bindings(scheme);
                    if known.contains(&name.as_str()) {
                        continue;
                    }
                    let s = scheme.as_str();
                    let help = did_you_mean(&name, known.iter().copied())
                        .map(|m| format!("{m} (write `auth = \"{s}:<name>\"`)"))
                        .unwrap_or_else(|| {
                            format!("declare the binding as a [auth.{s}.{name}] table")
                        });
                    let implicit = if raw.trim().contains(':') {
                        String::new()
                    } else {
                        format!(" (`{s}` alone means `{s}:default`)")
                    };
                    let d = Diagnostic::new(
                        Code::UnknownAuthBinding,
                        self.path(),
                        format!(
                            "HTTP route `{} {}`: auth ref `{s}:{name}` is not defined in [auth.{s}]{implicit}",
                            route.method, route.path
                        ),
                    )
                    .with_span(span)
                    .with_label(format!("no [auth.{s}.{name}] binding"))
                    .with_help(help);
                    self.push(d);
                }
                Ok(AuthRef::Mtls) => {
                    let client_auth = self
                        .doc
                        .server
                        .as_ref()
                        .and_then(|s| s.tls.as_ref())
                        .and_then(|t| t.client_auth.as_ref())
                        .map(|c| c.mode);
                    if matches!(client_auth, None | Some(ClientAuthMode::None)) {
                        let d = Diagnostic::new(
                            Code::MtlsWithoutClientAuth,
                            self.path(),
                            format!(
                                "HTTP route `{} {}` requires mtls but no TLS client authentication is configured",
                                route.method, route.path
                            ),
                        )
                        .with_span(span)
                        .with_label("no client certificates are requested")
                        .with_help(
                            "add [server.tls] with cert_file/key_file and \
                             [server.tls.client_auth] mode = \"required\", ca_file = \"...\"",
                        );
                        self.push(d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate};

    fn diags(text: &str) -> Vec<Diagnostic> {
        let r = parse_str(Path::new("wf.toml"), text);
        let doc = r
            .doc
            .unwrap_or_else(|| panic!("parse failed: {:?}", r.diagnostics));
        validate(&r.source, &doc, &ValidateOptions::default())
            .into_iter()
            // These cases declare [auth] and [server.tls] without routes: the
            // `key_has_no_effect` warnings about that are tested in `no_effect`.
            .filter(|d| d.code != Code::NoPolicy && d.code != Code::KeyHasNoEffect)
            .collect()
    }

    fn spanned<'t>(text: &'t str, d: &Diagnostic) -> &'t str {
        d.span.clone().and_then(|s| text.get(s)).unwrap_or("")
    }

    fn only(ds: &[Diagnostic], code: Code) -> &Diagnostic {
        let found: Vec<&Diagnostic> = ds.iter().filter(|d| d.code == code).collect();
        assert_eq!(found.len(), 1, "expected one {code}: {ds:#?}");
        found[0]
    }

    const BASE: &str = "name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n";
    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA"}]}"#;

    fn oidc(body: &str) -> String {
        format!("{BASE}[auth.oidc.idp]\nissuer = \"https://idp\"\n{body}")
    }

    #[test]
    fn none_hs_and_unknown_algorithms_are_errors_at_their_entry() {
        let text = oidc(&format!(
            "jwks_json = '{JWKS}'\nalgorithms = [\"ES256\", \"none\", \"HS256\", \"XS1\"]\n"
        ));
        let ds = diags(&text);
        let codes: Vec<_> = ds.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec![Code::OidcAlgorithmRejected; 3], "{ds:#?}");
        assert_eq!(spanned(&text, &ds[0]), "\"none\"");
        assert!(ds[1].message.contains("symmetric"), "{}", ds[1].message);
        assert_eq!(spanned(&text, &ds[2]), "\"XS1\"");
        assert!(ds.iter().all(|d| d.is_error()));
    }

    #[test]
    fn exactly_one_jwks_source_is_required() {
        let ds = diags(&oidc(""));
        assert!(only(&ds, Code::OidcJwksSource).message.contains("neither"));
        let text = oidc(&format!("jwks_json = '{JWKS}'\njwks_file = \"j.json\"\n"));
        let ds = diags(&text);
        let d = only(&ds, Code::OidcJwksSource);
        assert!(d.message.contains("both"));
        assert_eq!(spanned(&text, d), "jwks_file");
    }

    #[test]
    fn an_inline_jwks_must_be_a_public_key_set() {
        for (jwks, why) in [
            ("not json", "not JSON"),
            (r#"{"keys":[]}"#, "empty"),
            (r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#, "symmetric"),
            (r#"{"keys":[{"kty":"RSA","kid":"r"}]}"#, "public members"),
        ] {
            let text = oidc(&format!("jwks_json = '{jwks}'\n"));
            let ds = diags(&text);
            let d = only(&ds, Code::OidcJwksInvalid);
            assert!(d.message.contains(why), "{jwks}: {}", d.message);
            assert_eq!(spanned(&text, d), format!("'{jwks}'"));
        }
        assert!(diags(&oidc(&format!("jwks_json = '{JWKS}'\n"))).is_empty());
    }

    #[test]
    fn an_unreadable_jwks_file_is_only_a_warning() {
        let text = oidc("jwks_file = \"no/such/jwks.json\"\n");
        let ds = diags(&text);
        let d = only(&ds, Code::OidcJwksFileUnreadable);
        assert!(!d.is_error());
        assert_eq!(spanned(&text, d), "\"no/such/jwks.json\"");

        let dir = crate::test_support::temp_dir("jwks");
        let good = dir.join("good.json");
        std::fs::write(&good, JWKS).expect("write");
        let ds = diags(&oidc(&format!("jwks_file = \"{}\"\n", good.display())));
        assert!(ds.is_empty(), "{ds:#?}");
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{}").expect("write");
        let ds = diags(&oidc(&format!("jwks_file = \"{}\"\n", bad.display())));
        assert!(
            only(&ds, Code::OidcJwksFileUnreadable)
                .message
                .contains("keys")
        );
    }

    #[test]
    fn literal_credentials_warn_and_pasted_values_in_env_fields_are_errors() {
        let text = format!(
            "{BASE}[auth.bearer.ops]\ntokens = [\"t\"]\ntokens_env = \"OPS_TOKENS\"\n\
             [auth.basic.team]\ncredentials_env = \"alice:hunter2\"\n\
             [auth.hmac.gh]\nsecret = \"s\"\n"
        );
        let ds = diags(&text);
        let warnings: Vec<&str> = ds
            .iter()
            .filter(|d| d.code == Code::AuthLiteralSecret)
            .map(|d| spanned(&text, d))
            .collect();
        assert_eq!(warnings, vec!["tokens", "secret"]);
        let d = only(&ds, Code::SecretLiteralMaterial);
        assert_eq!(spanned(&text, d), "\"alice:hunter2\"");
        assert!(!d.message.contains("hunter2"), "{}", d.message);
    }

    #[test]
    fn tolerance_without_a_timestamp_header_warns() {
        let text = format!("{BASE}[auth.hmac.gh]\nsecret_env = \"S\"\ntolerance_secs = 60\n");
        let ds = diags(&text);
        let d = only(&ds, Code::HmacToleranceWithoutTimestamp);
        assert_eq!(spanned(&text, d), "tolerance_secs");
        let text = format!(
            "{BASE}[auth.hmac.gh]\nsecret_env = \"S\"\ntimestamp_header = \"X-Agent-Timestamp\"\ntolerance_secs = 60\n"
        );
        assert!(diags(&text).is_empty());
    }

    #[test]
    fn client_auth_needs_a_ca_file() {
        let tls =
            "[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[server.tls.client_auth]\n";
        let text = format!("{BASE}{tls}mode = \"required\"\n");
        let ds = diags(&text);
        assert_eq!(spanned(&text, only(&ds, Code::TlsClientCaMissing)), "mode");
        assert!(
            diags(&format!(
                "{BASE}{tls}mode = \"optional\"\nca_file = \"ca.pem\"\n"
            ))
            .is_empty()
        );
        assert!(diags(&format!("{BASE}{tls}mode = \"none\"\n")).is_empty());
    }
}
