//! Arbitrary requests through serve mode's request path, after hyper has parsed the
//! head: route auth (bearer, basic, HMAC with and without a timestamp window, OIDC,
//! unknown bindings, mTLS without TLS), body decoding by content type (JSON,
//! urlencoded, multipart), principal injection, the idempotency key and file stem,
//! and `traceparent` parsing and echo — the steps of `serve/handler.rs`, in order.
//!
//! Input, one request (see `fuzz/seeds/serve_request/`):
//!
//! ```text
//! <selectors>\n            byte 0: route auth, byte 1: idempotency key, byte 2: content type,
//!                          byte 3: TLS peer (each taken modulo its choices; '0' = first)
//! name: value\n ...        headers (appended in order, so duplicates are kept)
//! \n                       a blank line ends the head
//! <body>                   the raw body, any bytes
//! ```
//!
//! Signatures the fuzzer cannot forge are made for it: an HMAC signature header
//! whose hex is `auto` is replaced by the correct one (so the timestamp window is
//! reached), and `Authorization: Bearer auto:<claims JSON>` becomes an ES256 JWT
//! over those claims signed with the pinned key (so the claim checks are reached).
//!
//! Properties: nothing panics; a deny reason never contains a secret; urlencoded and
//! multipart bodies decode to flat objects of strings; a `traceparent` that parses
//! yields a child header that is a valid header value and parses back.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use agentd_runtime::serve::auth::{
    AuthDefs, AuthRef, AuthRequest, BasicDef, BearerDef, HmacDef, JwksSource, OidcDef,
    PeerIdentity, PreparedAuth, authorize, authorize_json,
};
use agentd_runtime::serve::body;
use agentd_runtime::serve::def::IdempotencyKey;
use agentd_runtime::serve::idempotency::{file_stem, resolve_key};
use agentd_runtime::traceparent::{self, TraceParent};
use hmac::{KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every secret value reachable through `DEFS`; none may appear in a deny reason.
const SECRETS: &[&str] = &[
    "tok-literal",
    "tok-env-a",
    "tok-env-b",
    "alice:s3cret",
    "hmac-plain-key",
    "hmac-windowed-key",
];

/// A P-256 key generated for this target only (it protects nothing): its public
/// half is the pinned JWKS, its private half (PKCS#8 DER) signs `auto:` tokens.
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256","x":"BcAsAGfNm8h2HqCl-NbMTDveEL9jDJqrL0PI2Wsegds","y":"IJKVJa4crMTJS5V1wWxJnZOrWD--GMkcJ4_0Sx09qi0"}]}"#;
const ES256_PKCS8_HEX: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420224b70449e93bb623ed23afe81194f1b85cfb7659454dfb9142e1b333802d607a1440342000405c02c0067cd9bc8761ea0a5f8d6cc4c3bde10bf630c9aab2f43c8d96b1e81db20929525ae1cacc4c94b9575c16c499d93ab583fbe18c91c278ff44b1d3daa2d";

static DEFS: AuthDefs = AuthDefs {
    bearer: &[BearerDef {
        name: "default",
        tokens_secret: Some("FUZZ_TOKENS"),
        tokens: &["tok-literal"],
    }],
    basic: &[BasicDef {
        name: "default",
        credentials_secret: None,
        credentials: &["alice:s3cret"],
    }],
    hmac: &[
        HmacDef {
            name: "plain",
            secret_name: None,
            secret: Some("hmac-plain-key"),
            header: HmacDef::DEFAULT_HEADER,
            prefix: HmacDef::DEFAULT_PREFIX,
            timestamp_header: None,
            tolerance_secs: HmacDef::DEFAULT_TOLERANCE_SECS,
        },
        HmacDef {
            name: "windowed",
            secret_name: Some("FUZZ_HMAC"),
            secret: None,
            header: "X-Hub-Signature-256",
            prefix: "",
            timestamp_header: Some("X-Timestamp"),
            tolerance_secs: 300,
        },
    ],
    oidc: &[OidcDef {
        name: "idp",
        issuer: "https://idp.example",
        audience: &["agentd"],
        jwks: JwksSource::Inline(JWKS),
        subject_allowlist: &[],
        clock_skew_secs: 60,
        algorithms: &["ES256"],
    }],
};

const ROUTES: [AuthRef; 8] = [
    AuthRef::None,
    AuthRef::Bearer("default"),
    AuthRef::Basic("default"),
    AuthRef::Hmac("plain"),
    AuthRef::Hmac("windowed"),
    AuthRef::Oidc("idp"),
    AuthRef::Bearer("undefined"),
    AuthRef::Mtls,
];

const KEYS: [Option<IdempotencyKey>; 5] = [
    None,
    Some(IdempotencyKey::BodySha256),
    Some(IdempotencyKey::Path(&["id"])),
    Some(IdempotencyKey::Path(&["order", "id"])),
    Some(IdempotencyKey::Path(&["items", "0"])),
];

const CONTENT_TYPES: [Option<&str>; 4] = [
    None, // whatever the headers say
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=fuzz-boundary"),
];

/// A fixed clock: the HMAC window and token lifetimes are judged against it.
const NOW_SECS: u64 = 1_700_000_000;

fn secrets(name: &str) -> Result<String, String> {
    match name {
        "FUZZ_TOKENS" => Ok("  tok-env-a \n\n\ttok-env-b\n".to_owned()),
        "FUZZ_HMAC" => Ok("hmac-windowed-key".to_owned()),
        other => Err(format!("secret `{other}` is not set")),
    }
}

fn prepared() -> &'static PreparedAuth {
    static PREPARED: OnceLock<PreparedAuth> = OnceLock::new();
    PREPARED.get_or_init(|| {
        PreparedAuth::prepare_with(&DEFS, Arc::new(secrets)).expect("the fuzz bindings prepare")
    })
}

fn choice(selectors: &[u8], i: usize, n: usize) -> usize {
    selectors
        .get(i)
        .map_or(0, |&b| usize::from(b.wrapping_sub(b'0')) % n)
}

fn headers(head: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        // The same checks hyper applies when it builds the request's `HeaderMap`.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Replace an `auto` HMAC signature with the correct one for `def`'s key.
fn sign_hmac(map: &mut HeaderMap, def: &HmacDef, key: &str, body: &[u8]) {
    let Some(value) = map.get(def.header).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if value.strip_prefix(def.prefix) != Some("auto") {
        return;
    }
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    if let Some(th) = def.timestamp_header {
        let Some(ts) = map.get(th) else { return };
        mac.update(ts.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    let signed = format!("{}{}", def.prefix, hex::encode(mac.finalize().into_bytes()));
    let value = HeaderValue::from_str(&signed).expect("hex is a valid header value");
    let name = HeaderName::from_bytes(def.header.as_bytes()).expect("a valid header name");
    map.insert(name, value);
}

/// Replace `Bearer auto:<claims>` with an ES256 token over those claims.
fn sign_jwt(map: &mut HeaderMap) {
    let Some(claims) = map
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer auto:"))
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
    else {
        return;
    };
    static KEY: OnceLock<jsonwebtoken::EncodingKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        jsonwebtoken::EncodingKey::from_ec_der(&hex::decode(ES256_PKCS8_HEX).expect("hex"))
    });
    let mut head = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    head.kid = Some("k1".to_owned());
    let Ok(token) = jsonwebtoken::encode(&head, &claims, key) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        map.insert(header::AUTHORIZATION, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let (selectors, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (head, raw) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let route = ROUTES[choice(selectors, 0, ROUTES.len())];
    let key = KEYS[choice(selectors, 1, KEYS.len())];
    let forced_type = CONTENT_TYPES[choice(selectors, 2, CONTENT_TYPES.len())];
    let peer = (choice(selectors, 3, 2) == 1).then(|| PeerIdentity {
        fingerprint: format!("sha256:{}", "ab".repeat(32)),
        cn: Some("client.example".to_owned()),
        sans: vec!["client.example".to_owned()],
    });

    let mut map = headers(head);
    if let Some(ct) = forced_type {
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    sign_hmac(&mut map, &DEFS.hmac[0], "hmac-plain-key", raw);
    sign_hmac(&mut map, &DEFS.hmac[1], "hmac-windowed-key", raw);
    sign_jwt(&mut map);

    // Step 5: auth.
    let request = AuthRequest {
        headers: &map,
        body: raw,
        peer: peer.as_ref(),
        now: UNIX_EPOCH + Duration::from_secs(NOW_SECS),
    };
    // What the server calls gives what `authorize` gives, value or reason.
    let served = authorize_json(prepared(), route, &request).map(|p| p.into_owned());
    let principal = match authorize(prepared(), route, &request) {
        Ok(principal) => {
            let principal = principal.to_json();
            assert_eq!(served.as_ref().ok(), Some(&principal), "authorize_json");
            principal
        }
        Err(denied) => {
            for secret in SECRETS {
                assert!(
                    !denied.reason().contains(secret),
                    "deny reason {:?} leaks a secret",
                    denied.reason()
                );
            }
            let _ = denied.body();
            assert_eq!(served.err(), Some(denied), "authorize_json");
            body::anonymous()
        }
    };

    // Steps 6–7: the body by content type, then the principal.
    let content_type = map.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(ct) = content_type {
        let _ = body::media_type(ct);
    }
    let input = match body::decode(content_type, raw) {
        Ok(decoded) => {
            let media = content_type.map(body::media_type).unwrap_or_default();
            if media == "application/x-www-form-urlencoded" || media == "multipart/form-data" {
                let fields = decoded
                    .value
                    .as_object()
                    .expect("a form decodes to an object");
                assert!(
                    fields.values().all(Value::is_string),
                    "form fields are strings"
                );
            } else if !raw.is_empty() {
                // JSON, whichever path decoded it, is serde_json's value.
                assert_eq!(
                    serde_json::from_slice::<Value>(raw).ok().as_ref(),
                    Some(&decoded.value),
                    "a JSON body decodes as serde_json decodes it"
                );
            }
            body::inject_principal(decoded.value, principal)
        }
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    // The idempotency key and its file name.
    if let Some(key) = key
        && let Ok(k) = resolve_key(key, raw, &input)
    {
        let stem = file_stem("POST", "/hooks/fuzz", &k);
        assert!(
            !stem.contains('/') && !stem.contains('\0'),
            "file stem {stem:?}"
        );
    }

    // `traceparent`: parsed, and the child echoed on the reply.
    let inbound = map.get("traceparent").and_then(|v| v.to_str().ok());
    if let Some(text) = inbound
        && let Some(tp) = TraceParent::parse(text)
    {
        let _ = tp.sampled();
        let span = traceparent::new_span_id();
        let child = tp.child(&span);
        assert!(
            HeaderValue::from_str(&child).is_ok(),
            "child {child:?} is not a header value"
        );
        let back = TraceParent::parse(&child).expect("a child traceparent parses");
        assert_eq!((back.trace_id, back.parent_id), (tp.trace_id, span));
    }
    // What the handler actually sends on and echoes: the run's own span.
    if let Some(span) = traceparent::outbound(inbound) {
        assert!(
            HeaderValue::from_str(&span).is_ok(),
            "outbound {span:?} is not a header value"
        );
        assert!(
            TraceParent::parse(&span).is_some(),
            "outbound {span:?} does not parse"
        );
    }
});
