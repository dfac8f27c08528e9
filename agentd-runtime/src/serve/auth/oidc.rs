//! OIDC / JWT bearer tokens against a pinned JWKS (`[auth.oidc.NAME]`, feature
//! `auth-oidc`, jsonwebtoken 9 on ring — the provider rustls already links).
//!
//! Prepare time (start and every reload): the JWKS is read (inline JSON or a
//! local file, never fetched), must hold at least one signature key, and may
//! not hold symmetric (`oct`) keys; `algorithms` (default `["RS256"]`) may not
//! name `none` or `HS*`. Request time: the token's `alg` must be allowed and fit
//! its key, `kid` selects the key (a token without `kid` may use the only key),
//! the signature must verify, `iss` must equal `issuer`, `aud` must intersect
//! `audience` when that is non-empty, `exp` is required and `nbf` checked when
//! present, both with `clock_skew_secs` of leeway against the request's `now`,
//! and `sub` must be in `subject_allowlist` when that is non-empty.
//!
//! Deny reasons are `oidc.<code>` (docs/operations.md "Authentication"); audit `oidc.verified{binding,
//! issuer,subject}` and `oidc.denied{binding,reason}`.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use super::{AuthDenied, AuthError, AuthRequest, Principal, authorization};
use crate::workflow::auth::{JwksSource, OidcDef};

/// Key sets are a few KiB; a bigger file is a wrong path.
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;

struct Key {
    kid: String,
    key: DecodingKey,
    /// The algorithms this key can verify: its type, narrowed by its `alg`.
    algs: Vec<Algorithm>,
}

/// One binding with its key set parsed.
pub(super) struct PreparedOidc {
    def: &'static OidcDef,
    allowed: Vec<Algorithm>,
    keys: Vec<Key>,
}

const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Parse `algorithms`, refusing `none`, symmetric and unknown names.
fn allowed_algorithms(def: &'static OidcDef) -> Result<Vec<Algorithm>, AuthError> {
    let names: &[&'static str] = if def.algorithms.is_empty() {
        &["RS256"]
    } else {
        def.algorithms
    };
    names
        .iter()
        .map(|&alg| {
            let refuse = |reason| AuthError::Algorithm {
                binding: def.name,
                alg,
                reason,
            };
            if alg.eq_ignore_ascii_case("none") {
                return Err(refuse("unsigned tokens are never accepted"));
            }
            match Algorithm::from_str(alg) {
                Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => Err(refuse(
                    "symmetric algorithms would need the shared secret in the key set; use RS*, PS*, ES* or EdDSA",
                )),
                Ok(a) => Ok(a),
                Err(_) => Err(refuse("unknown algorithm")),
            }
        })
        .collect()
}

/// The JWKS text of a binding.
fn jwks_text(def: &'static OidcDef) -> Result<String, AuthError> {
    match def.jwks {
        JwksSource::Inline(text) => Ok(text.to_owned()),
        JwksSource::File(path) => {
            let read = |source| AuthError::JwksRead {
                binding: def.name,
                path,
                source,
            };
            let size = std::fs::metadata(path).map_err(read)?.len();
            if size > MAX_JWKS_BYTES {
                return Err(AuthError::JwksTooLarge {
                    binding: def.name,
                    path,
                    size,
                    limit: MAX_JWKS_BYTES,
                });
            }
            // The size above is for the error message; the read itself is capped,
            // since the file may grow in between (or be a FIFO, whose size is 0).
            crate::limits::read_capped_string(path.as_ref(), MAX_JWKS_BYTES).map_err(read)
        }
    }
}

/// Parse a key set into verification keys (see the module docs for the rules).
fn parse_keys(def: &'static OidcDef, text: &str) -> Result<Vec<Key>, AuthError> {
    let bad = |reason: String| AuthError::Jwks {
        binding: def.name,
        reason,
    };
    let set: JwkSet = serde_json::from_str(text).map_err(|e| bad(format!("not a JWK set: {e}")))?;
    if set.keys.is_empty() {
        return Err(bad("the key set has no keys".into()));
    }
    let mut keys: Vec<Key> = Vec::new();
    for jwk in &set.keys {
        let kid = jwk
            .common
            .key_id
            .clone()
            .unwrap_or_else(|| "default".into());
        // Encryption keys published alongside signing keys are not ours to use.
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
            || matches!(
                jwk.common.key_algorithm,
                Some(KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256)
            )
        {
            continue;
        }
        let by_type: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::OctetKey(_) => {
                return Err(bad(format!(
                    "key `{kid}` is symmetric (`oct`); only public keys may be pinned"
                )));
            }
            AlgorithmParameters::RSA(_) => RSA_ALGS.to_vec(),
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                ref other => {
                    return Err(bad(format!(
                        "key `{kid}`: curve {other:?} is not supported"
                    )));
                }
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
                ref other => {
                    return Err(bad(format!(
                        "key `{kid}`: curve {other:?} is not supported"
                    )));
                }
            },
        };
        let algs = match jwk.common.key_algorithm {
            None => by_type,
            Some(ka) => {
                let declared = Algorithm::from_str(&format!("{ka:?}"))
                    .ok()
                    .filter(|a| by_type.contains(a))
                    .ok_or_else(|| {
                        bad(format!(
                            "key `{kid}` declares alg {ka:?}, which does not fit its type"
                        ))
                    })?;
                vec![declared]
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(format!("key `{kid}`: {e}")))?;
        if keys.iter().any(|k| k.kid == kid) {
            return Err(bad(format!("kid `{kid}` appears more than once")));
        }
        keys.push(Key { kid, key, algs });
    }
    if keys.is_empty() {
        return Err(bad("the key set has no signature keys".into()));
    }
    Ok(keys)
}

impl PreparedOidc {
    pub(super) fn prepare(def: &'static OidcDef) -> Result<Self, AuthError> {
        let allowed = allowed_algorithms(def)?;
        let keys = parse_keys(def, &jwks_text(def)?)?;
        Ok(PreparedOidc { def, allowed, keys })
    }

    pub(super) fn name(&self) -> &'static str {
        self.def.name
    }

    /// Verify the request's bearer token; audits the decision.
    pub(super) fn verify(&self, req: &AuthRequest<'_>) -> Result<Principal, AuthDenied> {
        match self.check(req) {
            Ok((subject, principal)) => {
                crate::obs::audit(
                    "oidc.verified",
                    json!({ "binding": self.def.name, "issuer": self.def.issuer, "subject": subject }),
                );
                Ok(principal)
            }
            Err(code) => {
                let denied = AuthDenied::new(format!("oidc.{code}"));
                crate::obs::audit(
                    "oidc.denied",
                    json!({ "binding": self.def.name, "reason": denied.reason() }),
                );
                Err(denied)
            }
        }
    }

    /// `Ok((subject, principal))` or the deny code.
    fn check(&self, req: &AuthRequest<'_>) -> Result<(String, Principal), &'static str> {
        let header = authorization(req.headers).map_err(|_| "missing-bearer")?;
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or("missing-bearer")?;
        let head = jsonwebtoken::decode_header(token).map_err(|_| undecodable_header(token))?;
        if !self.allowed.contains(&head.alg) {
            return Err("algorithm-not-allowed");
        }
        let key = match &head.kid {
            Some(kid) => self.keys.iter().find(|k| &k.kid == kid),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .ok_or("unknown-kid")?;
        if !key.algs.contains(&head.alg) {
            return Err("bad-algorithm");
        }

        let mut validation = Validation::new(head.alg);
        // Lifetimes are checked below against the request's `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[self.def.issuer]);
        if self.def.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(self.def.audience);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::Crypto(_) => "bad-signature",
                ErrorKind::InvalidIssuer => "bad-issuer",
                ErrorKind::InvalidAudience => "bad-audience",
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "bad-algorithm",
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::ImmatureSignature => "not-yet-valid",
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => "malformed",
                _ => "invalid",
            })?;
        let claims = data.claims;

        let now = secs_since_epoch(req.now);
        let skew = self.def.clock_skew_secs as f64;
        let exp = claims.get("exp").and_then(Value::as_f64).ok_or("invalid")?;
        if exp + skew < now {
            return Err("expired");
        }
        match claims.get("nbf") {
            None => {}
            Some(v) => {
                let nbf = v.as_f64().ok_or("invalid")?;
                if nbf > now + skew {
                    return Err("not-yet-valid");
                }
            }
        }

        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !self.def.subject_allowlist.is_empty()
            && !self.def.subject_allowlist.contains(&subject.as_str())
        {
            return Err("subject-not-allowed");
        }
        let name = if subject.is_empty() {
            self.def.issuer.to_owned()
        } else {
            subject.clone()
        };
        Ok((subject, Principal::new("oidc", name, req.peer)))
    }
}

/// Why a header jsonwebtoken cannot decode is refused: an `alg` it does not
/// know (`none` above all) is a disallowed algorithm, anything else malformed.
fn undecodable_header(token: &str) -> &'static str {
    use base64::Engine as _;

    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned));
    match alg {
        Some(_) => "algorithm-not-allowed",
        None => "malformed",
    }
}

fn secs_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
