//! End to end: a signed serve-mode workflow built by the real `agentd` (signing
//! required, so the key is baked in), served over mutual TLS with a bearer
//! route, and reloaded while it runs: a signed `--policy` change is taken on
//! SIGHUP, a tampered one is refused on a `--reload-file` touch (the signed
//! policy stays), and a rotated server certificate reaches new connections.
#![cfg(target_os = "linux")]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use support::tls::{Ca, client_config, post};
use support::{Served, eventually, scratch};

/// `agentd ARGS...` in `dir`, which must succeed; `AGENTD_SIGNING_REQUIRED` is
/// the test's to set, never the environment's.
fn agentd_ok(dir: &Path, args: &[&str], what: &str) {
    let out = support::agentd(dir)
        .args(args)
        .env_remove("AGENTD_SIGNING_REQUIRED")
        .output()
        .expect("agentd runs");
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        support::text(&out.stderr)
    );
}

// ---------------------------------------------------------------- the agent

const POLICY_A: &str = "[policy.env]\nread_keys = [\"A_VALUE\"]\n";
const POLICY_B: &str = "[policy.env]\nread_keys = [\"B_VALUE\"]\n";

fn workflow(dir: &Path) -> String {
    let p = |name: &str| dir.join(name).display().to_string();
    format!(
        r#"name = "guarded"

[signing]
required = true
public_key_file = "release.pub"

[server.tls]
cert_file = "{cert}"
key_file = "{key}"

[server.tls.client_auth]
mode = "required"
ca_file = "{ca}"

[auth.bearer.ops]
tokens_env = "OPS_TOKENS"

[logging.audit]
target = "file:{audit}"

# Baked: no env var may be read. The --policy override decides.
[policy.env]
read_keys = []

[[start_nodes]]
name = "a"
source = "http"
entry_node = "ra"

[[start_nodes]]
name = "b"
source = "http"
entry_node = "rb"

[[start_nodes]]
name = "c"
source = "http"
entry_node = "rc"

[[http_routes]]
method = "POST"
path = "/a"
start_node = "a"
auth = "bearer:ops"

[[http_routes]]
method = "POST"
path = "/b"
start_node = "b"
auth = "bearer:ops"

[[http_routes]]
method = "POST"
path = "/c"
start_node = "c"
auth = "bearer:ops"

[[nodes]]
id = "ra"
type = "read_env"
key = "A_VALUE"

[[nodes]]
id = "rb"
type = "read_env"
key = "B_VALUE"

[[nodes]]
id = "rc"
type = "read_env"
key = "C_VALUE"
"#,
        cert = p("server.pem"),
        key = p("server.key"),
        ca = p("clients-ca.pem"),
        audit = p("audit.jsonl"),
    )
}

#[test]
fn signed_policy_reloads_on_sighup_tampering_is_refused_and_certificates_rotate() {
    let dir = scratch("run");

    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let first = server_ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("server.pem"), &first.cert_pem).expect("cert");
    std::fs::write(dir.join("server.key"), &first.key_pem).expect("key");
    std::fs::write(dir.join("clients-ca.pem"), client_ca.0.pem()).expect("ca");
    std::fs::write(dir.join("guarded.toml"), workflow(&dir)).expect("workflow");
    std::fs::write(dir.join("policy.toml"), POLICY_A).expect("policy");

    agentd_ok(&dir, &["keygen", "-o", "release"], "keygen");
    agentd_ok(
        &dir,
        &["sign", "guarded.toml", "--key", "release"],
        "sign workflow",
    );
    agentd_ok(
        &dir,
        &["sign", "policy.toml", "--key", "release"],
        "sign policy",
    );
    let mut build = support::agentd(&dir);
    build.env_remove("AGENTD_SIGNING_REQUIRED");
    support::build::agentd_build_with(
        build,
        "guarded.toml",
        &dir.join("guarded"),
        &["--policy-overrides"],
    );

    let agent = Served::start(
        &dir.join("guarded"),
        &dir,
        &["--policy", "policy.toml", "--reload-file", "reload"],
        &[
            ("OPS_TOKENS", "t0ken"),
            ("A_VALUE", "alpha"),
            ("B_VALUE", "bravo"),
            ("C_VALUE", "charlie"),
        ],
    );
    let client = client_ca.leaf("robot", &[]);
    let config = client_config(&server_ca, Some(&client));
    let bearer = [("Authorization", "Bearer t0ken")];
    let call = |path: &str| post(agent.addr, config.clone(), path, &bearer, "{}");

    // Auth and TLS as built.
    let a = call("/a");
    assert_eq!(a.status, Some(200), "{}", a.body);
    assert!(a.body.contains("alpha"), "{}", a.body);
    assert_eq!(a.server_cert, Some(first.der.clone()));
    let denied = post(agent.addr, config.clone(), "/a", &[], "{}");
    assert_eq!(denied.status, Some(401), "{}", denied.body);
    assert!(
        denied.body.contains("missing Authorization header"),
        "{}",
        denied.body
    );
    let denied = post(
        agent.addr,
        config.clone(),
        "/a",
        &[("Authorization", "Bearer wrong")],
        "{}",
    );
    assert_eq!(denied.status, Some(401), "{}", denied.body);
    assert_eq!(
        post(
            agent.addr,
            client_config(&server_ca, None),
            "/a",
            &bearer,
            "{}"
        )
        .status,
        None,
        "no client certificate, no HTTP"
    );
    assert_eq!(call("/b").status, Some(500), "B_VALUE is not allowed yet");

    // A signed change, taken on SIGHUP.
    std::fs::write(dir.join("policy.toml"), POLICY_B).expect("policy");
    agentd_ok(
        &dir,
        &["sign", "policy.toml", "--key", "release"],
        "re-sign policy",
    );
    agent.signal(libc::SIGHUP);
    eventually("the signed policy to allow B_VALUE", || {
        call("/b").status == Some(200)
    });
    assert_eq!(call("/a").status, Some(500), "A_VALUE is no longer allowed");

    // Tampered after signing: refused on a --reload-file touch; B stays, C never opens.
    std::fs::write(
        dir.join("policy.toml"),
        "[policy.env]\nread_keys = [\"*\"]\n",
    )
    .expect("tamper");
    std::fs::write(dir.join("reload"), "1").expect("touch");
    let audit = dir.join("audit.jsonl");
    eventually("reload.failed for the policy in the audit log", || {
        std::fs::read_to_string(&audit).is_ok_and(|log| {
            log.lines()
                .any(|l| l.contains("reload.failed") && l.contains("\"policy\""))
        })
    });
    assert_eq!(
        call("/c").status,
        Some(500),
        "the unsigned policy is not in force"
    );
    assert_eq!(call("/b").status, Some(200), "the signed policy stays");

    // A rotated server certificate reaches new connections, while a client
    // keeps requesting on new connections: not one request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        let (addr, config) = (agent.addr, config.clone());
        std::thread::spawn(move || {
            let mut first_failure = None;
            while !stop.load(Ordering::Acquire) {
                let reply = post(addr, config.clone(), "/b", &bearer, "{}");
                if reply.status == Some(200) {
                    done.fetch_add(1, Ordering::AcqRel);
                } else {
                    failed.fetch_add(1, Ordering::AcqRel);
                    first_failure.get_or_insert(reply.body);
                }
            }
            first_failure
        })
    };
    eventually("the load client to get going", || {
        done.load(Ordering::Acquire) >= 5
    });
    let second = server_ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("server.pem"), &second.cert_pem).expect("cert");
    std::fs::write(dir.join("server.key"), &second.key_pem).expect("key");
    agent.signal(libc::SIGHUP);
    eventually("new handshakes to present the new certificate", || {
        call("/b").server_cert == Some(second.der.clone())
    });
    let after_swap = done.load(Ordering::Acquire);
    eventually("more requests on the new certificate", || {
        done.load(Ordering::Acquire) >= after_swap + 5
    });
    stop.store(true, Ordering::Release);
    let first_failure = load.join().expect("the load client");
    assert_eq!(
        failed.load(Ordering::Acquire),
        0,
        "requests failed during the certificate swap; first: {first_failure:?}"
    );

    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    for event in [
        "reload.started",
        "reload.tls",
        "reload.policy",
        "reload.failed",
    ] {
        assert!(log.contains(event), "audit log lacks {event}:\n{log}");
    }
    let stderr = agent.stderr();
    assert!(
        !stderr.contains("t0ken"),
        "a secret reached stderr:\n{stderr}"
    );
}
