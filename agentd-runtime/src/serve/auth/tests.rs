//! Each scheme accepting and refusing, with real HMAC tags and real RS256 /
//! ES256 tokens signed in the test.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("test header name"),
            HeaderValue::from_str(v).expect("test header value"),
        );
    }
    h
}

fn req<'a>(h: &'a HeaderMap, body: &'a [u8]) -> AuthRequest<'a> {
    AuthRequest {
        headers: h,
        body,
        peer: None,
        now: SystemTime::now(),
    }
}

/// A secret store backed by a map the test can change between requests.
fn store(values: &[(&str, &str)]) -> (SecretLookup, Arc<Mutex<HashMap<String, String>>>) {
    let map: HashMap<String, String> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let shared = Arc::new(Mutex::new(map));
    let inner = shared.clone();
    let lookup: SecretLookup = Arc::new(move |name: &str| {
        inner
            .lock()
            .map_err(|_| "poisoned".to_owned())?
            .get(name)
            .cloned()
            .ok_or_else(|| format!("secret `{name}` is not set"))
    });
    (lookup, shared)
}

fn defs(bearer: &'static [BearerDef], basic: &'static [BasicDef]) -> &'static AuthDefs {
    // The other tables exist only with their features.
    #[allow(clippy::needless_update)]
    leak(AuthDefs {
        bearer,
        basic,
        ..AuthDefs::EMPTY
    })
}

fn denied(r: Result<Principal, AuthDenied>) -> String {
    match r {
        Ok(p) => panic!("expected a denial, got principal {p:?}"),
        Err(d) => d.reason().to_owned(),
    }
}

// ---------------------------------------------------------------- anonymous

#[test]
fn anonymous_routes_get_the_anonymous_principal() {
    let prepared = PreparedAuth::prepare(&AuthDefs::EMPTY).expect("prepares");
    let h = headers(&[]);
    let p = authorize(&prepared, AuthRef::None, &req(&h, b"")).expect("anonymous");
    assert_eq!(p.to_json(), json!({"kind": "anonymous", "name": ""}));

    let peer = PeerIdentity {
        fingerprint: "sha256:ab".into(),
        cn: Some("client".into()),
        sans: vec!["a.example".into()],
    };
    let r = AuthRequest {
        peer: Some(&peer),
        ..req(&h, b"")
    };
    let p = authorize(&prepared, AuthRef::None, &r).expect("anonymous");
    assert_eq!(
        p.to_json(),
        json!({"kind": "anonymous", "name": "", "cn": "client", "sans": ["a.example"]}),
        "a client certificate adds cn and sans whatever the auth kind"
    );
}

// ---------------------------------------------------------------- bearer

static OPS_LITERAL: [BearerDef; 1] = [BearerDef {
    name: "ops",
    tokens_secret: None,
    tokens: &["alpha", "bravo"],
}];

#[test]
fn bearer_accepts_any_configured_token_and_names_the_binding() {
    let prepared = PreparedAuth::prepare(defs(&OPS_LITERAL, &[])).expect("prepares");
    for token in ["alpha", "bravo"] {
        let h = headers(&[("authorization", &format!("Bearer {token}"))]);
        let p = authorize(&prepared, AuthRef::Bearer("ops"), &req(&h, b"")).expect("accepted");
        assert_eq!(p.to_json(), json!({"kind": "bearer", "name": "ops"}));
    }
}

#[test]
fn bearer_refuses_with_the_spec_reasons() {
    let prepared = PreparedAuth::prepare(defs(&OPS_LITERAL, &[])).expect("prepares");
    let check = |pairs: &[(&str, &str)]| {
        let h = headers(pairs);
        denied(authorize(&prepared, AuthRef::Bearer("ops"), &req(&h, b"")))
    };
    assert_eq!(check(&[]), "missing Authorization header");
    assert_eq!(
        check(&[("authorization", "Basic YTpi")]),
        "Authorization header does not use Bearer scheme"
    );
    assert_eq!(
        check(&[("authorization", "bearer alpha")]),
        "Authorization header does not use Bearer scheme",
        "the scheme is case-sensitive"
    );
    assert_eq!(
        check(&[("authorization", "Bearer    ")]),
        "Bearer token is empty"
    );
    assert_eq!(
        check(&[("authorization", "Bearer alph")]),
        "bearer token does not match"
    );
    assert_eq!(
        check(&[("authorization", "Bearer alphaa")]),
        "bearer token does not match"
    );
    assert_eq!(
        check(&[
            ("authorization", "Bearer alpha"),
            ("authorization", "Bearer nope")
        ]),
        "multiple authorization headers"
    );
}

#[test]
fn bearer_tokens_from_a_secret_are_re_read_on_every_request() {
    static FROM_SECRET: [BearerDef; 1] = [BearerDef {
        name: "default",
        tokens_secret: Some("API_TOKENS"),
        tokens: &[],
    }];
    let (lookup, values) = store(&[("API_TOKENS", "first\n\n  second \r\n")]);
    let prepared = PreparedAuth::prepare_with(defs(&FROM_SECRET, &[]), lookup).expect("prepares");
    let ask = |token: &str| {
        let h = headers(&[("authorization", &format!("Bearer {token}"))]);
        authorize(&prepared, AuthRef::Bearer("default"), &req(&h, b""))
    };
    assert!(ask("first").is_ok());
    assert!(
        ask("second").is_ok(),
        "lines are trimmed, blank lines dropped"
    );

    // Rotation: the next request sees the new value, no reload needed.
    values
        .lock()
        .expect("lock")
        .insert("API_TOKENS".into(), "third".into());
    assert_eq!(denied(ask("first")), "bearer token does not match");
    assert!(ask("third").is_ok());

    // An unresolvable secret denies, naming the secret, never a value.
    values.lock().expect("lock").clear();
    let reason = denied(ask("third"));
    assert!(
        reason.contains("API_TOKENS") && reason.contains("not set"),
        "{reason}"
    );
    assert!(!reason.contains("third"), "{reason}");
}

#[test]
fn bearer_binding_without_tokens_denies_everything() {
    static EMPTY: [BearerDef; 1] = [BearerDef {
        name: "none_yet",
        tokens_secret: None,
        tokens: &[],
    }];
    let prepared = PreparedAuth::prepare(defs(&EMPTY, &[])).expect("prepares");
    let h = headers(&[("authorization", "Bearer x")]);
    assert_eq!(
        denied(authorize(
            &prepared,
            AuthRef::Bearer("none_yet"),
            &req(&h, b"")
        )),
        "bearer binding `none_yet` has no tokens configured"
    );
}

#[test]
fn an_undefined_binding_fails_closed() {
    let prepared = PreparedAuth::prepare(defs(&OPS_LITERAL, &[])).expect("prepares");
    let h = headers(&[("authorization", "Bearer alpha")]);
    let reason = denied(authorize(
        &prepared,
        AuthRef::Bearer("other"),
        &req(&h, b""),
    ));
    assert!(reason.contains("bearer:other"), "{reason}");
    let reason = denied(authorize(&prepared, AuthRef::Basic("ops"), &req(&h, b"")));
    assert!(reason.contains("basic:ops"), "{reason}");
}

// ---------------------------------------------------------------- the principal's JSON

/// `authorize_json` against the slow path it replaces in the server,
/// `authorize(..).map(|p| p.to_json())`: the same value or the same reason.
fn assert_json_agrees(prepared: &PreparedAuth, route: AuthRef, r: &AuthRequest<'_>) {
    let fast = authorize_json(prepared, route, r).map(Cow::into_owned);
    let slow = authorize(prepared, route, r).map(|p| p.to_json());
    assert_eq!(fast, slow, "{route:?}");
    // With the header found by a walk over the headers, as the server's
    // one pass finds it.
    let mut walked = FoundHeader::Absent;
    for (name, value) in r.headers {
        if *name == http::header::AUTHORIZATION {
            walked = walked.and(value);
        }
    }
    assert_eq!(walked, FoundHeader::lookup(r.headers));
    let found = authorize_json_found(prepared, route, r, Some(walked)).map(Cow::into_owned);
    assert_eq!(found, slow, "{route:?}, header found by the walk");
}

#[test]
fn authorize_json_agrees_with_authorize_for_every_outcome() {
    static TWO: [BearerDef; 2] = [
        BearerDef {
            name: "ops",
            tokens_secret: None,
            tokens: &["alpha", "bravo"],
        },
        BearerDef {
            name: "bench",
            tokens_secret: None,
            tokens: &["bench-token"],
        },
    ];
    let prepared = PreparedAuth::prepare(defs(&TWO, &TEAM)).expect("prepares");
    let peer = PeerIdentity {
        fingerprint: "sha256:ab".into(),
        cn: Some("client".into()),
        sans: vec!["a.example".into()],
    };
    let cases: &[&[(&str, &str)]] = &[
        &[],
        &[("authorization", "Bearer alpha")],
        &[("authorization", "Bearer bravo ")],
        &[("authorization", "Bearer bench-token")],
        &[("authorization", "Bearer alph")],
        &[("authorization", "Bearer    ")],
        &[("authorization", "bearer alpha")],
        &[("authorization", "Basic Ym9iOnB3")],
        &[("authorization", "Basic YWxpY2U6czNjcmV0")],
        &[("authorization", "Basic YWxpY2U6d3Jvbmc=")],
        &[
            ("authorization", "Bearer alpha"),
            ("authorization", "Bearer alpha"),
        ],
    ];
    let routes = [
        AuthRef::None,
        AuthRef::Bearer("ops"),
        AuthRef::Bearer("bench"),
        AuthRef::Bearer("nope"),
        AuthRef::Basic("team"),
    ];
    for pairs in cases {
        let h = headers(pairs);
        for route in routes {
            assert_json_agrees(&prepared, route, &req(&h, b""));
            let with_peer = AuthRequest {
                peer: Some(&peer),
                ..req(&h, b"")
            };
            assert_json_agrees(&prepared, route, &with_peer);
        }
    }
    // A header that is not printable ASCII is refused the same way.
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff").expect("opaque header value"),
    );
    assert_json_agrees(&prepared, AuthRef::Bearer("ops"), &req(&h, b""));
    assert_eq!(
        authorize_json(&prepared, AuthRef::Bearer("ops"), &req(&h, b"")),
        Err(AuthDenied::new(
            "Authorization header is not printable ASCII"
        ))
    );
}

#[test]
fn a_bearer_principal_without_a_peer_is_built_once_and_borrowed() {
    let first = PreparedAuth::prepare(defs(&OPS_LITERAL, &[])).expect("prepares");
    // A reload prepares again: same binding name, same shared value.
    let again = PreparedAuth::prepare(defs(&OPS_LITERAL, &[])).expect("prepares");
    let h = headers(&[("authorization", "Bearer alpha")]);
    let borrowed = |prepared: &PreparedAuth| match authorize_json(
        prepared,
        AuthRef::Bearer("ops"),
        &req(&h, b""),
    ) {
        Ok(Cow::Borrowed(v)) => v,
        other => panic!("expected a borrowed principal, got {other:?}"),
    };
    let a = borrowed(&first);
    assert_eq!(*a, json!({"kind": "bearer", "name": "ops"}));
    assert!(std::ptr::eq(a, borrowed(&first)));
    assert!(std::ptr::eq(a, borrowed(&again)));
    // With a TLS peer the principal carries its cn and sans: built per request.
    let peer = PeerIdentity {
        fingerprint: "sha256:ab".into(),
        cn: None,
        sans: vec![],
    };
    let r = AuthRequest {
        peer: Some(&peer),
        ..req(&h, b"")
    };
    match authorize_json(&first, AuthRef::Bearer("ops"), &r) {
        Ok(Cow::Owned(v)) => assert_eq!(v, json!({"kind": "bearer", "name": "ops", "sans": []})),
        other => panic!("expected an owned principal, got {other:?}"),
    }
}

// ---------------------------------------------------------------- basic

static TEAM: [BasicDef; 1] = [BasicDef {
    name: "team",
    credentials_secret: None,
    credentials: &["alice:s3cret:with:colons", "bob:pw"],
}];

fn basic_header(userpass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(userpass)
    )
}

#[test]
fn basic_accepts_a_configured_pair_and_names_the_user() {
    let prepared = PreparedAuth::prepare(defs(&[], &TEAM)).expect("prepares");
    let h = headers(&[("authorization", &basic_header("alice:s3cret:with:colons"))]);
    let p = authorize(&prepared, AuthRef::Basic("team"), &req(&h, b"")).expect("accepted");
    assert_eq!(p.to_json(), json!({"kind": "basic", "name": "alice"}));
}

#[test]
fn basic_refuses_bad_base64_missing_colon_and_wrong_password() {
    let prepared = PreparedAuth::prepare(defs(&[], &TEAM)).expect("prepares");
    let check = |value: &str| {
        let h = headers(&[("authorization", value)]);
        denied(authorize(&prepared, AuthRef::Basic("team"), &req(&h, b"")))
    };
    assert_eq!(
        check("Basic !!!!"),
        "Basic credentials are not valid padded base64"
    );
    // "bob:pw" is `Ym9iOnB3`; "bob:p" needs padding: `Ym9iOnA=`.
    assert_eq!(
        check("Basic Ym9iOnA"),
        "Basic credentials are not valid padded base64",
        "padding is required"
    );
    assert_eq!(
        check(&basic_header("bobpw")),
        "Basic credentials are not `user:password`"
    );
    assert_eq!(
        check(&basic_header("bob:pW")),
        "basic credentials do not match"
    );
    assert_eq!(
        check("Bearer Ym9iOnB3"),
        "Authorization header does not use Basic scheme"
    );
}

// ---------------------------------------------------------------- hmac

#[cfg(feature = "auth-hmac")]
mod hmac_scheme {
    use ::hmac::{KeyInit, Mac};

    use super::*;

    fn tag(key: &str, parts: &[&[u8]]) -> String {
        let mut mac = ::hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
        for p in parts {
            mac.update(p);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    static GITHUB: [HmacDef; 1] = [HmacDef {
        name: "github",
        secret_name: Some("HOOK_SECRET"),
        secret: Some("literal-loses"),
        header: HmacDef::DEFAULT_HEADER,
        prefix: HmacDef::DEFAULT_PREFIX,
        timestamp_header: None,
        tolerance_secs: HmacDef::DEFAULT_TOLERANCE_SECS,
    }];

    fn prepared(hmac: &'static [HmacDef]) -> PreparedAuth {
        let (lookup, _) = store(&[("HOOK_SECRET", "k3y")]);
        let defs = leak(AuthDefs {
            hmac,
            ..AuthDefs::EMPTY
        });
        PreparedAuth::prepare_with(defs, lookup).expect("prepares")
    }

    #[test]
    fn hmac_accepts_a_signature_over_the_raw_body_in_either_case() {
        let p = prepared(&GITHUB);
        let body = br#"{"action":"opened"}"#;
        let sig = tag("k3y", &[body]);
        for value in [
            format!("sha256={sig}"),
            format!("sha256={}", sig.to_uppercase()),
        ] {
            let h = headers(&[("x-agent-signature", &value)]);
            let principal =
                authorize(&p, AuthRef::Hmac("github"), &req(&h, body)).expect("accepted");
            assert_eq!(
                principal.to_json(),
                json!({"kind": "hmac", "name": "github"})
            );
        }
    }

    #[test]
    fn hmac_authorize_json_agrees_with_authorize_and_shares_the_principal() {
        let p = prepared(&GITHUB);
        let body = b"payload";
        let sig = format!("sha256={}", tag("k3y", &[body]));
        let peer = PeerIdentity {
            fingerprint: "sha256:ab".into(),
            cn: Some("client".into()),
            sans: vec![],
        };
        for pairs in [
            &[("x-agent-signature", sig.as_str())][..],
            &[("x-agent-signature", "sha256=00")],
            &[],
        ] {
            let h = headers(pairs);
            for peer in [None, Some(&peer)] {
                for route in [AuthRef::Hmac("github"), AuthRef::Hmac("nope")] {
                    let r = AuthRequest {
                        peer,
                        ..req(&h, body)
                    };
                    assert_json_agrees(&p, route, &r);
                }
            }
        }
        let h = headers(&[("x-agent-signature", sig.as_str())]);
        match authorize_json(&p, AuthRef::Hmac("github"), &req(&h, body)) {
            Ok(Cow::Borrowed(v)) => assert_eq!(*v, json!({"kind": "hmac", "name": "github"})),
            other => panic!("expected a borrowed principal, got {other:?}"),
        }
    }

    #[test]
    fn hmac_refuses_missing_unprefixed_bad_hex_and_wrong_signatures() {
        let p = prepared(&GITHUB);
        let body = b"payload";
        let check = |pairs: &[(&str, &str)], body: &[u8]| {
            let h = headers(pairs);
            denied(authorize(&p, AuthRef::Hmac("github"), &req(&h, body)))
        };
        let good = format!("sha256={}", tag("k3y", &[body]));
        assert_eq!(check(&[], body), "missing X-Agent-Signature header");
        assert_eq!(
            check(&[("x-agent-signature", &good[7..])], body),
            "X-Agent-Signature header does not start with `sha256=`"
        );
        assert_eq!(
            check(&[("x-agent-signature", "sha256=zz")], body),
            "X-Agent-Signature header is not valid hex"
        );
        assert_eq!(
            check(&[("x-agent-signature", &good)], b"payload!"),
            "signature does not match",
            "a changed body"
        );
        let literal_keyed = format!("sha256={}", tag("literal-loses", &[body]));
        assert_eq!(
            check(&[("x-agent-signature", &literal_keyed)], body),
            "signature does not match",
            "secret_env wins over secret"
        );
    }

    #[test]
    fn hmac_with_a_custom_header_and_no_prefix_takes_the_raw_hex() {
        static RAW: [HmacDef; 1] = [HmacDef {
            name: "raw",
            secret_name: None,
            secret: Some("lit"),
            header: "X-Hub-Sig",
            prefix: "",
            timestamp_header: None,
            tolerance_secs: 300,
        }];
        let p = prepared(&RAW);
        let h = headers(&[("x-hub-sig", &tag("lit", &[b"b"]))]);
        assert!(authorize(&p, AuthRef::Hmac("raw"), &req(&h, b"b")).is_ok());
    }

    static STAMPED: [HmacDef; 1] = [HmacDef {
        name: "stamped",
        secret_name: None,
        secret: Some("k"),
        header: HmacDef::DEFAULT_HEADER,
        prefix: HmacDef::DEFAULT_PREFIX,
        timestamp_header: Some("X-Agent-Timestamp"),
        tolerance_secs: 300,
    }];

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
    }

    fn stamped(p: &PreparedAuth, ts: &str, sig_over: &[&[u8]], now: u64) -> Result<(), String> {
        let sig = format!("sha256={}", tag("k", sig_over));
        let h = headers(&[("x-agent-signature", &sig), ("x-agent-timestamp", ts)]);
        let r = AuthRequest {
            now: at(now),
            ..req(&h, b"body")
        };
        authorize(p, AuthRef::Hmac("stamped"), &r)
            .map(|_| ())
            .map_err(|d| d.reason().to_owned())
    }

    #[test]
    fn timestamped_hmac_signs_timestamp_dot_body_within_the_window() {
        let p = prepared(&STAMPED);
        let now = 1_700_000_000;
        let ts = now.to_string();
        assert_eq!(
            stamped(&p, &ts, &[ts.as_bytes(), b".", b"body"], now),
            Ok(())
        );
        // Within the window on both sides.
        assert_eq!(
            stamped(&p, &ts, &[ts.as_bytes(), b".", b"body"], now + 300),
            Ok(())
        );
        assert_eq!(
            stamped(&p, &ts, &[ts.as_bytes(), b".", b"body"], now - 300),
            Ok(())
        );
    }

    #[test]
    fn timestamped_hmac_refuses_stale_future_missing_and_unbound_timestamps() {
        let p = prepared(&STAMPED);
        let now = 1_700_000_000u64;
        let ts = now.to_string();
        let over = [ts.as_bytes(), b".".as_slice(), b"body".as_slice()];
        assert_eq!(
            stamped(&p, &ts, &over, now + 301),
            Err("X-Agent-Timestamp is outside the allowed window of 300 s".into()),
            "a replayed request"
        );
        assert_eq!(
            stamped(&p, &ts, &over, now - 301),
            Err("X-Agent-Timestamp is outside the allowed window of 300 s".into())
        );
        assert_eq!(
            stamped(&p, &ts, &[b"body"], now),
            Err("signature does not match".into()),
            "a body-only signature does not cover the timestamp"
        );
        let other = (now + 1).to_string();
        assert_eq!(
            stamped(&p, &other, &over, now),
            Err("signature does not match".into()),
            "the timestamp cannot be swapped after signing"
        );
        let h = headers(&[("x-agent-signature", "sha256=00")]);
        assert_eq!(
            denied(authorize(&p, AuthRef::Hmac("stamped"), &req(&h, b"body"))),
            "missing X-Agent-Timestamp header"
        );
        let junk = "17e8";
        assert_eq!(
            stamped(&p, junk, &[junk.as_bytes(), b".", b"body"], now),
            Err("X-Agent-Timestamp header is not a Unix time in whole seconds".into())
        );
    }

    #[test]
    fn an_empty_literal_secret_is_no_secret() {
        static EMPTY_KEY: [HmacDef; 1] = [HmacDef {
            name: "empty",
            secret_name: None,
            secret: Some(""),
            header: HmacDef::DEFAULT_HEADER,
            prefix: HmacDef::DEFAULT_PREFIX,
            timestamp_header: None,
            tolerance_secs: 300,
        }];
        let p = prepared(&EMPTY_KEY);
        let forged = format!("sha256={}", tag("", &[b"x"]));
        let h = headers(&[("x-agent-signature", &forged)]);
        assert_eq!(
            denied(authorize(&p, AuthRef::Hmac("empty"), &req(&h, b"x"))),
            "hmac binding `empty` has no secret configured"
        );
    }

    #[test]
    fn hmac_secret_that_cannot_be_resolved_denies() {
        static UNSET: [HmacDef; 1] = [HmacDef {
            name: "unset",
            secret_name: Some("NOT_THERE"),
            secret: None,
            header: HmacDef::DEFAULT_HEADER,
            prefix: HmacDef::DEFAULT_PREFIX,
            timestamp_header: None,
            tolerance_secs: 300,
        }];
        let p = prepared(&UNSET);
        let h = headers(&[("x-agent-signature", "sha256=00")]);
        let reason = denied(authorize(&p, AuthRef::Hmac("unset"), &req(&h, b"")));
        assert!(reason.contains("NOT_THERE"), "{reason}");
    }
}

// ---------------------------------------------------------------- mtls

#[cfg(feature = "tls")]
#[test]
fn mtls_needs_a_client_certificate_and_names_its_fingerprint() {
    let prepared = PreparedAuth::prepare(&AuthDefs::EMPTY).expect("prepares");
    let h = headers(&[]);
    assert_eq!(
        denied(authorize(&prepared, AuthRef::Mtls, &req(&h, b""))),
        "client certificate required"
    );
    let peer = PeerIdentity {
        fingerprint: format!("sha256:{}", "ab".repeat(32)),
        cn: Some("svc".into()),
        sans: vec!["svc.internal".into()],
    };
    let r = AuthRequest {
        peer: Some(&peer),
        ..req(&h, b"")
    };
    let p = authorize(&prepared, AuthRef::Mtls, &r).expect("accepted");
    assert_eq!(
        p.to_json(),
        json!({"kind": "mtls", "name": peer.fingerprint, "cn": "svc", "sans": ["svc.internal"]})
    );
}

// ---------------------------------------------------------------- oidc

#[cfg(feature = "auth-oidc")]
mod oidc_scheme {
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use rustls::pki_types::PrivatePkcs1KeyDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;

    const RSA_PKCS1: &str = include_str!("../../../tests/fixtures/keys/rsa-pkcs1.pem");
    const RSA_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-jwk.json");
    const ISSUER: &str = "https://idp.example";
    const NOW: u64 = 1_700_000_000;

    fn b64u(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A fresh P-256 key: its encoding key and its JWK.
    fn ec_key(kid: &str) -> (EncodingKey, Value) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate P-256");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("parse P-256");
        let point = pair.public_key().as_ref(); // 0x04 || x || y
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": b64u(&point[1..33]), "y": b64u(&point[33..65]),
        });
        (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    fn rsa_key() -> (EncodingKey, Value) {
        let der = PrivatePkcs1KeyDer::from_pem_slice(RSA_PKCS1.as_bytes()).expect("fixture key");
        let jwk: Value = serde_json::from_str(RSA_JWK).expect("fixture jwk");
        (EncodingKey::from_rsa_der(der.secret_pkcs1_der()), jwk)
    }

    fn jwks(keys: &[&Value]) -> &'static str {
        Box::leak(json!({ "keys": keys }).to_string().into_boxed_str())
    }

    fn binding(
        jwks_json: &'static str,
        algorithms: &'static [&'static str],
        audience: &'static [&'static str],
        subjects: &'static [&'static str],
    ) -> PreparedAuth {
        let def = OidcDef {
            name: "idp",
            issuer: ISSUER,
            audience,
            jwks: JwksSource::Inline(jwks_json),
            subject_allowlist: subjects,
            clock_skew_secs: 60,
            algorithms,
        };
        let defs = leak(AuthDefs {
            oidc: Box::leak(vec![def].into_boxed_slice()),
            ..AuthDefs::EMPTY
        });
        PreparedAuth::prepare(defs).expect("prepares")
    }

    fn token(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, key).expect("sign token")
    }

    fn claims(extra: Value) -> Value {
        let mut c = json!({ "iss": ISSUER, "sub": "user-7", "exp": NOW + 600, "aud": "agentd" });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    fn check(p: &PreparedAuth, authorization: &str) -> Result<Principal, String> {
        let h = headers(&[("authorization", authorization)]);
        let r = AuthRequest {
            now: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(NOW),
            ..req(&h, b"")
        };
        authorize(p, AuthRef::Oidc("idp"), &r).map_err(|d| d.reason().to_owned())
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn rs256_and_es256_tokens_verify_against_the_pinned_jwks() {
        let (rsa, rsa_jwk) = rsa_key();
        let (ec, ec_jwk) = ec_key("ec1");
        let p = binding(
            jwks(&[&rsa_jwk, &ec_jwk]),
            &["RS256", "ES256"],
            &["agentd"],
            &[],
        );

        let t = token(Algorithm::RS256, Some("rsa1"), &rsa, claims(json!({})));
        let principal = check(&p, &bearer(&t)).expect("RS256 accepted");
        assert_eq!(
            principal.to_json(),
            json!({"kind": "oidc", "name": "user-7"})
        );

        let t = token(Algorithm::ES256, Some("ec1"), &ec, claims(json!({})));
        assert!(
            check(&p, &format!("bearer {t}")).is_ok(),
            "lower-case bearer accepted"
        );
    }

    #[test]
    fn lifetimes_use_the_clock_skew_as_leeway() {
        let (ec, jwk) = ec_key("k");
        let p = binding(jwks(&[&jwk]), &["ES256"], &[], &[]);
        let t = |extra| bearer(&token(Algorithm::ES256, Some("k"), &ec, claims(extra)));
        assert!(
            check(&p, &t(json!({"exp": NOW - 30}))).is_ok(),
            "within the skew"
        );
        assert_eq!(
            check(&p, &t(json!({"exp": NOW - 61}))),
            Err("oidc.expired".into())
        );
        assert_eq!(
            check(&p, &t(json!({"nbf": NOW + 61}))),
            Err("oidc.not-yet-valid".into())
        );
        assert!(check(&p, &t(json!({"nbf": NOW + 30}))).is_ok());
        let no_exp = token(
            Algorithm::ES256,
            Some("k"),
            &ec,
            json!({"iss": ISSUER, "sub": "s"}),
        );
        assert_eq!(check(&p, &bearer(&no_exp)), Err("oidc.invalid".into()));
    }

    #[test]
    fn issuer_audience_and_subject_are_enforced() {
        let (ec, jwk) = ec_key("k");
        let p = binding(jwks(&[&jwk]), &["ES256"], &["agentd", "other"], &["user-7"]);
        let t = |extra| bearer(&token(Algorithm::ES256, Some("k"), &ec, claims(extra)));
        assert_eq!(
            check(&p, &t(json!({"iss": "https://evil.example"}))),
            Err("oidc.bad-issuer".into())
        );
        assert_eq!(
            check(&p, &t(json!({"aud": "someone-else"}))),
            Err("oidc.bad-audience".into())
        );
        assert!(check(&p, &t(json!({"aud": ["x", "other"]}))).is_ok());
        assert_eq!(
            check(&p, &t(json!({"sub": "user-8"}))),
            Err("oidc.subject-not-allowed".into())
        );
    }

    #[test]
    fn an_empty_subject_names_the_issuer() {
        let (ec, jwk) = ec_key("k");
        let p = binding(jwks(&[&jwk]), &["ES256"], &[], &[]);
        let t = token(
            Algorithm::ES256,
            Some("k"),
            &ec,
            json!({"iss": ISSUER, "exp": NOW + 60}),
        );
        let principal = check(&p, &bearer(&t)).expect("accepted");
        assert_eq!(principal.name, ISSUER);
    }

    #[test]
    fn keys_are_selected_by_kid() {
        let (a, jwk_a) = ec_key("a");
        let (b, jwk_b) = ec_key("b");
        let two = binding(jwks(&[&jwk_a, &jwk_b]), &["ES256"], &[], &[]);
        assert!(
            check(
                &two,
                &bearer(&token(Algorithm::ES256, Some("b"), &b, claims(json!({}))))
            )
            .is_ok()
        );
        assert_eq!(
            check(
                &two,
                &bearer(&token(Algorithm::ES256, Some("c"), &b, claims(json!({}))))
            ),
            Err("oidc.unknown-kid".into())
        );
        assert_eq!(
            check(
                &two,
                &bearer(&token(Algorithm::ES256, None, &b, claims(json!({}))))
            ),
            Err("oidc.unknown-kid".into()),
            "no kid and several keys"
        );
        assert_eq!(
            check(
                &two,
                &bearer(&token(Algorithm::ES256, Some("a"), &b, claims(json!({}))))
            ),
            Err("oidc.bad-signature".into()),
            "signed by another key under a known kid"
        );
        let one = binding(jwks(&[&jwk_a]), &["ES256"], &[], &[]);
        assert!(
            check(
                &one,
                &bearer(&token(Algorithm::ES256, None, &a, claims(json!({}))))
            )
            .is_ok(),
            "no kid may use the only key"
        );
    }

    #[test]
    fn unsigned_symmetric_and_mismatched_algorithms_are_refused() {
        let (ec, jwk) = ec_key("k");
        let (rsa, rsa_jwk) = rsa_key();
        let p = binding(jwks(&[&jwk, &rsa_jwk]), &["ES256", "RS256"], &[], &[]);

        let header = b64u(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64u(claims(json!({})).to_string().as_bytes());
        assert_eq!(
            check(&p, &bearer(&format!("{header}.{payload}."))),
            Err("oidc.algorithm-not-allowed".into()),
            "alg none"
        );
        let hs = token(
            Algorithm::HS256,
            Some("k"),
            &EncodingKey::from_secret(b"guessable"),
            claims(json!({})),
        );
        assert_eq!(
            check(&p, &bearer(&hs)),
            Err("oidc.algorithm-not-allowed".into())
        );
        // An RSA signature presented under the EC key's kid.
        let t = token(Algorithm::RS256, Some("k"), &rsa, claims(json!({})));
        assert_eq!(check(&p, &bearer(&t)), Err("oidc.bad-algorithm".into()));

        let only_rs = binding(jwks(&[&rsa_jwk]), &[], &[], &[]);
        let t = token(Algorithm::ES256, Some("k"), &ec, claims(json!({})));
        assert_eq!(
            check(&only_rs, &bearer(&t)),
            Err("oidc.algorithm-not-allowed".into()),
            "the default allows RS256 only"
        );
    }

    #[test]
    fn missing_and_malformed_tokens_are_refused() {
        let (_, jwk) = ec_key("k");
        let p = binding(jwks(&[&jwk]), &["ES256"], &[], &[]);
        let h = headers(&[]);
        assert_eq!(
            authorize(&p, AuthRef::Oidc("idp"), &req(&h, b"")).map_err(|d| d.reason().to_owned()),
            Err("oidc.missing-bearer".into())
        );
        assert_eq!(check(&p, "Basic abc="), Err("oidc.missing-bearer".into()));
        assert_eq!(check(&p, "Bearer not.a.jwt"), Err("oidc.malformed".into()));
        assert_eq!(check(&p, "Bearer x"), Err("oidc.malformed".into()));
    }

    fn prepare_err(jwks_json: &'static str, algorithms: &'static [&'static str]) -> String {
        let def = OidcDef {
            name: "idp",
            issuer: ISSUER,
            audience: &[],
            jwks: JwksSource::Inline(jwks_json),
            subject_allowlist: &[],
            clock_skew_secs: 60,
            algorithms,
        };
        let defs = leak(AuthDefs {
            oidc: Box::leak(vec![def].into_boxed_slice()),
            ..AuthDefs::EMPTY
        });
        match PreparedAuth::prepare(defs) {
            Ok(_) => panic!("expected a prepare error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn prepare_refuses_none_hs_and_unknown_algorithms() {
        let (_, jwk) = ec_key("k");
        let set = jwks(&[&jwk]);
        let e = prepare_err(set, &["none"]);
        assert!(e.contains("`none`") && e.contains("never accepted"), "{e}");
        let e = prepare_err(set, &["ES256", "HS256"]);
        assert!(e.contains("`HS256`") && e.contains("symmetric"), "{e}");
        let e = prepare_err(set, &["XS999"]);
        assert!(e.contains("unknown algorithm"), "{e}");
    }

    #[test]
    fn prepare_refuses_unusable_key_sets() {
        let e = prepare_err("not json", &[]);
        assert!(e.contains("not a JWK set"), "{e}");
        let e = prepare_err(r#"{"keys": []}"#, &[]);
        assert!(e.contains("no keys"), "{e}");
        let e = prepare_err(
            r#"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}"#,
            &[],
        );
        assert!(e.contains("symmetric"), "{e}");
        let (_, jwk) = ec_key("dup");
        let e = prepare_err(jwks(&[&jwk, &jwk]), &["ES256"]);
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn a_jwks_file_is_read_and_bounded() {
        let dir = std::env::temp_dir().join(format!("agentd-oidc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (ec, jwk) = ec_key("f");
        let path = dir.join("jwks.json");
        std::fs::write(&path, json!({ "keys": [jwk] }).to_string()).expect("write jwks");
        let path: &'static str = Box::leak(path.display().to_string().into_boxed_str());
        let def = |jwks| OidcDef {
            name: "idp",
            issuer: ISSUER,
            audience: &[],
            jwks,
            subject_allowlist: &[],
            clock_skew_secs: 60,
            algorithms: &["ES256"],
        };
        let defs = leak(AuthDefs {
            oidc: Box::leak(vec![def(JwksSource::File(path))].into_boxed_slice()),
            ..AuthDefs::EMPTY
        });
        let p = PreparedAuth::prepare(defs).expect("file JWKS prepares");
        assert!(
            check(
                &p,
                &bearer(&token(Algorithm::ES256, Some("f"), &ec, claims(json!({}))))
            )
            .is_ok()
        );

        let missing: &'static str = Box::leak(format!("{path}.missing").into_boxed_str());
        let defs = leak(AuthDefs {
            oidc: Box::leak(vec![def(JwksSource::File(missing))].into_boxed_slice()),
            ..AuthDefs::EMPTY
        });
        let e = PreparedAuth::prepare(defs)
            .expect_err("missing file")
            .to_string();
        assert!(
            e.contains("cannot read jwks_file") && e.contains(".missing"),
            "{e}"
        );

        let big = dir.join("big.json");
        let size = usize::try_from(MAX_JWKS_BYTES).unwrap_or(usize::MAX) + 1;
        std::fs::write(&big, vec![b' '; size]).expect("write big");
        let big: &'static str = Box::leak(big.display().to_string().into_boxed_str());
        let defs = leak(AuthDefs {
            oidc: Box::leak(vec![def(JwksSource::File(big))].into_boxed_slice()),
            ..AuthDefs::EMPTY
        });
        let e = PreparedAuth::prepare(defs)
            .expect_err("oversized")
            .to_string();
        assert!(e.contains("the limit is"), "{e}");
    }
}

#[test]
fn denial_body_is_the_spec_shape() {
    let d = AuthDenied::new("bearer token does not match");
    assert_eq!(
        d.body(),
        json!({"error": "unauthorized", "detail": "bearer token does not match"})
    );
    assert_eq!(d.to_string(), "bearer token does not match");
}
