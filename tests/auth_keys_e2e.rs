//! End to end: the auth keys that change *what* verifies, in a workflow built by
//! the real `agentd` and served over TLS on 127.0.0.1 — an HMAC binding with its
//! own `header` and `prefix` and one with `prefix = ""`, and an OIDC binding with
//! an inline `jwks_json`, a wide `clock_skew_secs` and a `subject_allowlist`.
//! Each key is shown by a request that its default would answer the other way.
//! The same `respond` node shows `input_from`: its data is the principal alone.
#![cfg(target_os = "linux")]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::oidc::{Issuer, hmac_hex};
use support::tls::{Ca, Exchange, client_config, post};
use support::{Served, agentd_build, scratch};

/// The issuer's fixed P-256 key (PKCS#8), so the inline JWKS, and with it the
/// workflow and its cached build, stay the same from run to run. Test-only.
const ISSUER_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpOmlsoL6+aSI7hLGLv4cYxs+aQW24+PEdsP1uqHNH3yhRANCAARXOA+kBaqRjEuehOySbDt9MDs1xLS/wjpbexlGHIW7i2lYt6iTet9Yf7bAKgEF1Q3RYuzERHMHPCMRPTCJK3Ht";

fn workflow(jwks: &str) -> String {
    format!(
        r#"name = "auth_keys"

[server.tls]
cert_file = "tls/server.pem"
key_file = "tls/server.key"

# GitHub's layout: another header, another prefix.
[auth.hmac.github]
secret_env = "GITHUB_SECRET"
header = "X-Hub-Signature-256"
prefix = "v1="

# The bare hex digest in the default header.
[auth.hmac.bare]
secret_env = "BARE_SECRET"
prefix = ""

[auth.oidc.corp]
issuer = "https://login.example.com"
jwks_json = '{jwks}'
algorithms = ["ES256"]
clock_skew_secs = 600
subject_allowlist = ["svc-42", "svc-43"]

[policy]

[[start_nodes]]
name = "whoami"
source = "http"
entry_node = "reply"

[[http_routes]]
method = "POST"
path = "/github"
start_node = "whoami"
auth = "hmac:github"

[[http_routes]]
method = "POST"
path = "/bare"
start_node = "whoami"
auth = "hmac:bare"

[[http_routes]]
method = "POST"
path = "/corp"
start_node = "whoami"
auth = "oidc:corp"

# The data is the principal alone (not the request's body and principal).
[[nodes]]
id = "reply"
type = "respond"
status = 200
content_type = "application/json"
input_from = "trigger.principal"
body_template = '{{"kind":"{{{{kind}}}}","name":{{{{name|json}}}}}}'
"#
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn accepted(reply: &Exchange, why: &str) -> Value {
    assert_eq!(reply.status, Some(200), "{why}: {}", reply.body);
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("{why}: not JSON ({e}): {}", reply.body))
}

fn refused(reply: &Exchange, why: &str) {
    assert_eq!(reply.status, Some(401), "{why}: {}", reply.body);
    assert!(reply.body.contains("unauthorized"), "{why}: {}", reply.body);
}

#[test]
fn hmac_header_and_prefix_and_oidc_inline_jwks_skew_and_subjects_decide_what_verifies() {
    let dir = scratch("run");
    std::fs::create_dir_all(dir.join("tls")).expect("scratch dir");
    let issuer = Issuer::fixed(ISSUER_KEY);
    std::fs::write(dir.join("auth-keys.toml"), workflow(&issuer.jwks())).expect("workflow");
    let binary = dir.join("auth-keys-bin");
    agentd_build(&dir, "auth-keys.toml", &binary, &[]);

    let ca = Ca::new("server ca");
    let server = ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("tls/server.pem"), &server.cert_pem).expect("cert");
    std::fs::write(dir.join("tls/server.key"), &server.key_pem).expect("key");
    let agent = Served::start(
        &binary,
        &dir,
        &[],
        &[("GITHUB_SECRET", "gh-key"), ("BARE_SECRET", "bare-key")],
    );
    let config = client_config(&ca, None);
    let call = |path: &str, headers: &[(&str, &str)], body: &str| {
        post(agent.addr, config.clone(), path, headers, body)
    };

    // hmac `header` + `prefix`: only `X-Hub-Signature-256: v1=<hex>` verifies.
    let body = r#"{"action":"opened"}"#;
    let hex = hmac_hex("gh-key", body);
    let p = accepted(
        &call(
            "/github",
            &[("X-Hub-Signature-256", &format!("v1={hex}"))],
            body,
        ),
        "the configured header and prefix",
    );
    assert_eq!(p, json!({"kind": "hmac", "name": "github"}), "input_from");
    refused(
        &call(
            "/github",
            &[("X-Agent-Signature", &format!("v1={hex}"))],
            body,
        ),
        "the default header on a binding with its own",
    );
    refused(
        &call(
            "/github",
            &[("X-Hub-Signature-256", &format!("sha256={hex}"))],
            body,
        ),
        "the default prefix on a binding with its own",
    );

    // hmac `prefix = ""`: the bare digest verifies, the default prefix does not.
    let hex = hmac_hex("bare-key", body);
    let p = accepted(
        &call("/bare", &[("X-Agent-Signature", &hex)], body),
        "a bare digest with prefix = \"\"",
    );
    assert_eq!(p["name"], "bare");
    refused(
        &call(
            "/bare",
            &[("X-Agent-Signature", &format!("sha256={hex}"))],
            body,
        ),
        "a prefixed digest with prefix = \"\"",
    );

    // oidc: the inline JWKS verifies the issuer's tokens.
    let claims = |sub: &str, exp: u64| json!({"iss": "https://login.example.com", "sub": sub, "exp": exp, "iat": now() - 900});
    let bearer = |token: String| format!("Bearer {token}");
    let p = accepted(
        &call(
            "/corp",
            &[(
                "Authorization",
                &bearer(issuer.es256(&claims("svc-42", now() + 600))),
            )],
            "{}",
        ),
        "a fresh token from the inline JWKS",
    );
    assert_eq!(p, json!({"kind": "oidc", "name": "svc-42"}));
    refused(
        &call(
            "/corp",
            &[(
                "Authorization",
                &bearer(Issuer::new().es256(&claims("svc-42", now() + 600))),
            )],
            "{}",
        ),
        "a key the inline JWKS does not hold",
    );
    // clock_skew_secs = 600: expired 5 minutes ago is inside the leeway (the
    // default 60 s would refuse it); expired 15 minutes ago is not.
    accepted(
        &call(
            "/corp",
            &[(
                "Authorization",
                &bearer(issuer.es256(&claims("svc-43", now() - 300))),
            )],
            "{}",
        ),
        "expired 300 s ago with clock_skew_secs = 600",
    );
    refused(
        &call(
            "/corp",
            &[(
                "Authorization",
                &bearer(issuer.es256(&claims("svc-43", now() - 900))),
            )],
            "{}",
        ),
        "expired 900 s ago with clock_skew_secs = 600",
    );
    // subject_allowlist: a valid token for another subject is refused.
    refused(
        &call(
            "/corp",
            &[(
                "Authorization",
                &bearer(issuer.es256(&claims("svc-99", now() + 600))),
            )],
            "{}",
        ),
        "a subject outside subject_allowlist",
    );

    let stderr = agent.stderr();
    for secret in ["gh-key", "bare-key"] {
        assert!(
            !stderr.contains(secret),
            "`{secret}` reached stderr:\n{stderr}"
        );
    }
}
