//! End to end: `workflows/secure-api.toml` built by the real `agentd` and
//! served over mutual TLS on 127.0.0.1, with one route per auth scheme.
//! Each scheme accepts a good credential (the principal reaches the reply)
//! and refuses bad ones with 401: bearer, basic, HMAC with its timestamp
//! window, OIDC against the pinned JWKS (a real ES256 token), and mTLS.
//! Certificates and the OIDC key are made here, per run.
#![cfg(target_os = "linux")]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use support::oidc::{Issuer, hmac_hex};
use support::tls::{Ca, Exchange, client_config, post};
use support::{Served, agentd_build, scratch, workspace};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn principal(reply: &Exchange) -> Value {
    assert_eq!(reply.status, Some(200), "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.body))
}

fn refused(reply: &Exchange, why: &str) {
    assert_eq!(reply.status, Some(401), "{why}: {}", reply.body);
    assert!(reply.body.contains("unauthorized"), "{why}: {}", reply.body);
}

#[test]
fn every_auth_scheme_of_secure_api_accepts_and_refuses_over_mutual_tls() {
    let dir = scratch("run");
    std::fs::create_dir_all(dir.join("tls")).expect("scratch dir");
    std::fs::create_dir_all(dir.join("secure-api")).expect("scratch dir");

    agentd_build(
        &workspace(),
        "workflows/secure-api.toml",
        &dir.join("secure-api-bin"),
        &[],
    );

    // The files the workflow names, relative to the directory it runs in.
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let server = server_ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("tls/server.pem"), &server.cert_pem).expect("cert");
    std::fs::write(dir.join("tls/server.key"), &server.key_pem).expect("key");
    std::fs::write(dir.join("tls/clients-ca.pem"), client_ca.pem()).expect("ca");
    let issuer = Issuer::new();
    std::fs::write(dir.join("secure-api/jwks.json"), issuer.jwks()).expect("jwks");

    let agent = Served::start(
        &dir.join("secure-api-bin"),
        &dir,
        &[],
        &[
            ("OPS_TOKENS", "t0ken\nother-token"),
            ("TEAM_CREDENTIALS", "alice:pw\nbob:secret"),
            ("HOOK_SECRET", "hook-key"),
        ],
    );
    let robot = client_ca.leaf("robot", &["robot.internal"]);
    let config = client_config(&server_ca, Some(&robot));
    let call = |path: &str, headers: &[(&str, &str)], body: &str| {
        post(agent.addr, config.clone(), path, headers, body)
    };

    // bearer: any listed token; the binding is the name.
    let p = principal(&call(
        "/ops",
        &[("Authorization", "Bearer other-token")],
        "{}",
    ));
    assert_eq!(
        (p["kind"].as_str(), p["name"].as_str()),
        (Some("bearer"), Some("ops"))
    );
    assert_eq!(p["cn"], "robot", "the certificate's CN rides along");
    refused(&call("/ops", &[], "{}"), "no token");
    refused(
        &call("/ops", &[("Authorization", "Bearer nope")], "{}"),
        "wrong token",
    );

    // basic: user and password from the list; the user is the name.
    let creds = STANDARD.encode("bob:secret");
    let p = principal(&call(
        "/team",
        &[("Authorization", &format!("Basic {creds}"))],
        "{}",
    ));
    assert_eq!(
        (p["kind"].as_str(), p["name"].as_str()),
        (Some("basic"), Some("bob"))
    );
    let wrong = STANDARD.encode("bob:pw");
    refused(
        &call(
            "/team",
            &[("Authorization", &format!("Basic {wrong}"))],
            "{}",
        ),
        "another user's password",
    );
    refused(
        &call("/team", &[("Authorization", "Bearer t0ken")], "{}"),
        "a bearer token on a basic route",
    );

    // hmac: sha256=hex(HMAC(secret, "<timestamp>.<body>")), timestamp within 300 s.
    let body = r#"{"event":"push"}"#;
    let ts = now().to_string();
    let sig = format!("sha256={}", hmac_hex("hook-key", &format!("{ts}.{body}")));
    let signed = [
        ("X-Agent-Signature", sig.as_str()),
        ("X-Agent-Timestamp", ts.as_str()),
    ];
    let p = principal(&call("/hooks", &signed, body));
    assert_eq!(
        (p["kind"].as_str(), p["name"].as_str()),
        (Some("hmac"), Some("hooks"))
    );
    refused(
        &call("/hooks", &signed, r#"{"event":"pusH"}"#),
        "a changed body",
    );
    let stale = (now() - 3600).to_string();
    let stale_sig = format!(
        "sha256={}",
        hmac_hex("hook-key", &format!("{stale}.{body}"))
    );
    refused(
        &call(
            "/hooks",
            &[
                ("X-Agent-Signature", &stale_sig),
                ("X-Agent-Timestamp", &stale),
            ],
            body,
        ),
        "a replay an hour old, correctly signed",
    );
    let bare = format!("sha256={}", hmac_hex("hook-key", body));
    refused(
        &call("/hooks", &[("X-Agent-Signature", &bare)], body),
        "no timestamp header",
    );

    // oidc: ES256 token from the pinned key, iss/aud/exp checked.
    let claims = |iss: &str, aud: &str, exp: u64| json!({"iss": iss, "aud": aud, "sub": "svc-42", "exp": exp, "iat": now()});
    let good = issuer.es256(&claims(
        "https://login.example.com",
        "secure-api",
        now() + 600,
    ));
    let p = principal(&call(
        "/corp",
        &[("Authorization", &format!("Bearer {good}"))],
        "{}",
    ));
    assert_eq!(p["kind"], "oidc", "{p}");
    for (why, token) in [
        (
            "expired",
            issuer.es256(&claims(
                "https://login.example.com",
                "secure-api",
                now() - 3600,
            )),
        ),
        (
            "another issuer",
            issuer.es256(&claims(
                "https://evil.example.com",
                "secure-api",
                now() + 600,
            )),
        ),
        (
            "another audience",
            issuer.es256(&claims(
                "https://login.example.com",
                "other-api",
                now() + 600,
            )),
        ),
        (
            "signed by a key that is not pinned",
            Issuer::new().es256(&claims(
                "https://login.example.com",
                "secure-api",
                now() + 600,
            )),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(
                    claims("https://login.example.com", "secure-api", now() + 600).to_string()
                )
            ),
        ),
    ] {
        refused(
            &call(
                "/corp",
                &[("Authorization", &format!("Bearer {token}"))],
                "{}",
            ),
            why,
        );
    }

    // mtls: the certificate alone; the name is its SHA-256 fingerprint.
    let p = principal(&call("/machine", &[], "{}"));
    assert_eq!(p["kind"], "mtls");
    assert!(
        p["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("sha256:") && n.len() == 7 + 64),
        "{p}"
    );
    // A client without a certificate never gets to HTTP.
    let anonymous = post(
        agent.addr,
        client_config(&server_ca, None),
        "/machine",
        &[],
        "{}",
    );
    assert_eq!(anonymous.status, None, "{}", anonymous.body);

    let stderr = agent.stderr();
    for secret in ["t0ken", "other-token", "hook-key", "alice:pw"] {
        assert!(
            !stderr.contains(secret),
            "`{secret}` reached stderr:\n{stderr}"
        );
    }
}
