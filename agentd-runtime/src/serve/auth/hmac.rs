//! HMAC-SHA256 request signatures (`[auth.hmac.NAME]`, feature `auth-hmac`).
//!
//! Dialect 1: the header (default `X-Agent-Signature`, any case) holds
//! `prefix` (default `sha256=`, matched case-sensitively; empty = none) plus
//! the hex (either case) HMAC-SHA256 of the raw body, keyed with the secret.
//!
//! agentd extension (replay protection): with `timestamp_header` set, the
//! request must also carry that header holding Unix time in whole seconds
//! (ASCII digits), the signature is computed over
//! `<timestamp header value> "." <raw body>`, and the request is refused
//! unless `|now - timestamp| <= tolerance_secs` (default 300). The signature
//! is checked before the window, so only authentic requests learn that they
//! were stale. Without `timestamp_header` nothing changes from dialect 1.

use hmac::{KeyInit, Mac};

use super::{AuthDenied, AuthRequest, single_header};
use crate::workflow::auth::HmacDef;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The binding's key: `secret_env` resolved now, else the literal.
pub(super) fn secret(
    def: &HmacDef,
    lookup: impl Fn(&str) -> Result<String, String>,
) -> Result<String, AuthDenied> {
    match (def.secret_name, def.secret) {
        (Some(name), _) => lookup(name)
            .map_err(|why| AuthDenied::new(format!("hmac binding `{}`: {why}", def.name))),
        // An empty key would let anyone compute valid signatures.
        (None, Some(literal)) if !literal.is_empty() => Ok(literal.to_owned()),
        (None, _) => Err(AuthDenied::new(format!(
            "hmac binding `{}` has no secret configured",
            def.name
        ))),
    }
}

fn text<'h>(value: &'h http::HeaderValue, name: &str) -> Result<&'h str, AuthDenied> {
    value
        .to_str()
        .map_err(|_| AuthDenied::new(format!("{name} header is not printable ASCII")))
}

/// Check the request's signature (and timestamp window) with `key`.
pub(super) fn verify(def: &HmacDef, key: &[u8], req: &AuthRequest<'_>) -> Result<(), AuthDenied> {
    let value = single_header(req.headers, def.header)?
        .ok_or_else(|| AuthDenied::new(format!("missing {} header", def.header)))?;
    let value = text(value, def.header)?;
    let hex_sig = value.strip_prefix(def.prefix).ok_or_else(|| {
        AuthDenied::new(format!(
            "{} header does not start with `{}`",
            def.header, def.prefix
        ))
    })?;
    let sig = hex::decode(hex_sig)
        .map_err(|_| AuthDenied::new(format!("{} header is not valid hex", def.header)))?;

    let mut mac = HmacSha256::new_from_slice(key)
        .map_err(|_| AuthDenied::new(format!("hmac binding `{}`: unusable key", def.name)))?;
    let timestamp = match def.timestamp_header {
        None => None,
        Some(th) => {
            let raw = single_header(req.headers, th)?
                .ok_or_else(|| AuthDenied::new(format!("missing {th} header")))?;
            let raw = text(raw, th)?;
            mac.update(raw.as_bytes());
            mac.update(b".");
            Some((th, raw))
        }
    };
    mac.update(req.body);
    mac.verify_slice(&sig)
        .map_err(|_| AuthDenied::new("signature does not match"))?;

    if let Some((th, raw)) = timestamp {
        check_window(th, raw, def.tolerance_secs, req.now)?;
    }
    Ok(())
}

fn check_window(
    header: &str,
    raw: &str,
    tolerance_secs: u64,
    now: std::time::SystemTime,
) -> Result<(), AuthDenied> {
    let not_a_timestamp = || {
        AuthDenied::new(format!(
            "{header} header is not a Unix time in whole seconds"
        ))
    };
    // Digits only: no sign, no fraction, no whitespace; u64 bounds the length.
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_timestamp());
    }
    let ts: u64 = raw.parse().map_err(|_| not_a_timestamp())?;
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now.abs_diff(ts) > tolerance_secs {
        return Err(AuthDenied::new(format!(
            "{header} is outside the allowed window of {tolerance_secs} s"
        )));
    }
    Ok(())
}
