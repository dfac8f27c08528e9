//! Shared by the end-to-end tests of route auth: an ES256 OIDC issuer whose
//! public half is the pinned JWKS, and the hex HMAC-SHA256 a webhook sender
//! computes.
#![allow(dead_code)] // each test file uses its own subset

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

/// The OIDC provider of a test: an ES256 key whose public half is the
/// pinned JWKS (`kid` "test-key").
pub struct Issuer {
    key: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl Issuer {
    /// A fresh key per call.
    pub fn new() -> Issuer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate the OIDC key");
        Issuer::from_pkcs8(pkcs8.as_ref())
    }

    /// A fixed key (base64 PKCS#8), for a workflow that inlines its JWKS and
    /// should not change, and so rebuild, on every run.
    pub fn fixed(pkcs8_base64: &str) -> Issuer {
        let pkcs8 = STANDARD.decode(pkcs8_base64).expect("base64 PKCS#8");
        Issuer::from_pkcs8(&pkcs8)
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Issuer {
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .expect("load the OIDC key");
        Issuer { key, rng }
    }

    pub fn jwks(&self) -> String {
        // An uncompressed point: 0x04 || x || y.
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "test-key", "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]})
        .to_string()
    }

    pub fn token(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("sign the token");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    pub fn es256(&self, claims: &Value) -> String {
        self.token(
            &json!({"alg": "ES256", "typ": "JWT", "kid": "test-key"}),
            claims,
        )
    }
}

/// Lower-case hex HMAC-SHA256 of `message` under `key`.
pub fn hmac_hex(key: &str, message: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, message.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
