//! Route `auth` references: `none`, `bearer[:name]`, `basic[:name]`, `hmac[:name]`,
//! `oidc[:name]` and `mtls` (docs/dialect.md, serve mode). Parsed once here for the
//! validator (which reports a bad one as `bad_auth_ref`) and the serve lowering.

/// An auth scheme that names a binding under `[auth.<scheme>.<name>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    Bearer,
    Basic,
    Hmac,
    Oidc,
}

impl AuthScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "bearer",
            AuthScheme::Basic => "basic",
            AuthScheme::Hmac => "hmac",
            AuthScheme::Oidc => "oidc",
        }
    }
}

/// A parsed route `auth` reference (docs/operations.md "Authentication").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRef {
    /// Absent, `""` or `none` (any case).
    Anonymous,
    /// `bearer[:name]`, `basic[:name]`, `hmac[:name]`, `oidc[:name]`; the name
    /// defaults to `default`.
    Binding { scheme: AuthScheme, name: String },
    /// `mtls` (takes no name).
    Mtls,
}

/// Parse a route `auth` string. Surrounding whitespace is ignored; scheme names are
/// case-sensitive.
pub fn parse_auth_ref(s: &str) -> Result<AuthRef, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(AuthRef::Anonymous);
    }
    let (kind, name) = match s.split_once(':') {
        Some((k, n)) => (k, Some(n)),
        None => (s, None),
    };
    let scheme = match kind {
        "bearer" => AuthScheme::Bearer,
        "basic" => AuthScheme::Basic,
        "hmac" => AuthScheme::Hmac,
        "oidc" => AuthScheme::Oidc,
        "mtls" => {
            return match name {
                None => Ok(AuthRef::Mtls),
                Some(n) => Err(format!("`mtls` takes no binding name (got `mtls:{n}`)")),
            };
        }
        other => {
            return Err(format!(
                "unknown auth kind `{other}` (expected bearer / basic / hmac / oidc / mtls / none)"
            ));
        }
    };
    let name = match name {
        None => "default".to_string(),
        Some(n) if n.trim().is_empty() => {
            return Err(format!("`{kind}:` names no binding"));
        }
        Some(n) => n.to_string(),
    };
    Ok(AuthRef::Binding { scheme, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_ref_grammar() {
        assert_eq!(parse_auth_ref(" none "), Ok(AuthRef::Anonymous));
        assert_eq!(
            parse_auth_ref("oidc"),
            Ok(AuthRef::Binding {
                scheme: AuthScheme::Oidc,
                name: "default".into()
            })
        );
        assert_eq!(
            parse_auth_ref("basic:ops"),
            Ok(AuthRef::Binding {
                scheme: AuthScheme::Basic,
                name: "ops".into()
            })
        );
        assert_eq!(parse_auth_ref("mtls"), Ok(AuthRef::Mtls));
        assert!(parse_auth_ref("MTLS").is_err());
        assert!(parse_auth_ref("jwt:x").is_err());
    }
}
