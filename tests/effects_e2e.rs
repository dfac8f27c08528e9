//! End to end: `workflows/status-report.toml` built by the real `agentd` into a
//! static binary, run against real HTTP and HTTPS servers on 127.0.0.1 with a
//! real `/usr/bin/echo` (http_request with a `{{secret:NAME}}` header from
//! `[[secrets]]`, shell_run, the error branch, the start-up secret probe, the
//! CA bundle of `AGENTD_HTTP_CA_FILE`).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

/// A canary secret: must reach the server and nothing else.
const TOKEN: &str = "canary-token-93b1f7";

mod support;

use support::stub::Stub;
use support::{agentd_build, scratch, workspace};

/// The workflow binary, built once for every test of this file.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = scratch("bin").keep();
        let out = dir.join("status-report");
        agentd_build(&workspace(), "workflows/status-report.toml", &out, &[]);
        out
    })
}

/// Run the binary with `input`; `token` set as STATUS_API_TOKEN when given.
fn run(input: &Value, token: Option<&str>, ca_file: Option<&Path>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.arg("--input")
        .arg(input.to_string())
        .env_remove("STATUS_API_TOKEN")
        .env_remove("AGENTD_HTTP_CA_FILE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("AGENTD_INPUT");
    if let Some(t) = token {
        cmd.env("STATUS_API_TOKEN", t);
    }
    if let Some(ca) = ca_file {
        cmd.env("AGENTD_HTTP_CA_FILE", ca);
    }
    cmd.output().expect("the workflow binary runs")
}

fn outcome(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The last line of stderr: the `agentd: ...` error (logs come before it).
fn last_stderr_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

fn assert_no_canary(out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(TOKEN),
            "the secret leaked into {name}"
        );
    }
}

#[test]
fn a_2xx_status_is_recorded_by_the_command_and_the_token_only_reaches_the_server() {
    let upstream = Stub::start("200 OK", r#"{"service":"api","state":"up"}"#, None);
    let port = upstream.port;
    let out = run(
        &json!({ "url": format!("http://127.0.0.1:{port}/status") }),
        Some(TOKEN),
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = outcome(&out);
    assert_eq!(o["status"], "completed", "{o}");
    assert_eq!(o["last_node"], "record");
    assert_eq!(o["final_value"]["stdout"], "service=api state=up\n");
    assert_eq!(o["final_value"]["exit_code"], 0);
    let heads = upstream.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let auth = heads[0]
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .map(str::to_owned);
    assert_eq!(
        auth.as_deref(),
        Some(format!("authorization: Bearer {TOKEN}").as_str())
    );
    assert_no_canary(&out);
}

/// A run that ends in a hard error after `fetch` keeps its progress
/// checkpoint (`--checkpoint-each-node`); that file holds what `fetch`
/// returned, and never the secret sent in its header.
#[test]
fn a_kept_checkpoint_holds_the_fetched_output_but_never_the_secret() {
    // A quote in `service` makes the rendered argv invalid JSON: `args` fails hard.
    let upstream = Stub::start("200 OK", r#"{"service":"a\"b","state":"up"}"#, None);
    let port = upstream.port;
    let scratch = scratch("kept-checkpoint");
    let state = scratch.join("state");
    let out = Command::new(binary())
        .arg("--input")
        .arg(json!({ "url": format!("http://127.0.0.1:{port}/status") }).to_string())
        .arg("--state-dir")
        .arg(&state)
        .arg("--checkpoint-each-node")
        .env("STATUS_API_TOKEN", TOKEN)
        .env_remove("AGENTD_INPUT")
        .output()
        .expect("the workflow binary runs");
    assert_ne!(out.status.code(), Some(0), "the run must not complete");
    assert_no_canary(&out);
    assert_eq!(upstream.seen().len(), 1);
    let kept: Vec<String> = std::fs::read_dir(&state)
        .expect("the state dir exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| std::fs::read_to_string(p).expect("read the checkpoint"))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "one progress checkpoint; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(kept[0].contains("\"fetch\""), "{}", kept[0]);
    assert!(
        kept[0].contains("a\\\"b"),
        "the fetched body is there: {}",
        kept[0]
    );
    assert!(
        !kept[0].contains(TOKEN),
        "the secret reached the checkpoint"
    );
}

#[test]
fn a_non_2xx_status_takes_the_error_branch_to_the_fail_node() {
    let upstream = Stub::start("503 Service Unavailable", r#"{"state":"down"}"#, None);
    let port = upstream.port;
    let out = run(
        &json!({ "url": format!("http://127.0.0.1:{port}/status") }),
        Some(TOKEN),
        None,
    );
    assert_eq!(out.status.code(), Some(5));
    let o = outcome(&out);
    assert_eq!(o["status"], "failed", "{o}");
    assert_eq!(o["last_node"], "unreachable_status");
    assert_no_canary(&out);
}

#[test]
fn a_missing_secret_refuses_to_start_and_names_it() {
    let upstream = Stub::start("200 OK", "{}", None);
    let port = upstream.port;
    let out = run(
        &json!({ "url": format!("http://127.0.0.1:{port}/status") }),
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        last_stderr_line(&out),
        "agentd: [[secrets]]: secret `status_token`: environment variable `STATUS_API_TOKEN` is not set"
    );
    assert!(upstream.seen().is_empty());
}

#[test]
fn https_uses_the_ca_bundle_named_by_agentd_http_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .expect("server config");
    let upstream = Stub::start(
        "200 OK",
        r#"{"service":"tls","state":"up"}"#,
        Some(Arc::new(server)),
    );
    let port = upstream.port;
    let dir = scratch("ca-bundle");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    let input = json!({ "url": format!("https://localhost:{port}/status") });

    let out = run(&input, Some(TOKEN), Some(&ca_file));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        outcome(&out)["final_value"]["stdout"],
        "service=tls state=up\n"
    );

    // Without the bundle the test CA is not trusted: a hard error (exit 5).
    let out = run(&input, Some(TOKEN), None);
    assert_eq!(out.status.code(), Some(5));
    let stderr = last_stderr_line(&out);
    assert!(
        stderr.starts_with("agentd: tool `http_request` failed: GET https://localhost:"),
        "{stderr}"
    );
    assert_no_canary(&out);
}

#[test]
fn a_url_outside_the_policy_is_refused() {
    let out = run(
        &json!({ "url": "http://example.com/status" }),
        Some(TOKEN),
        None,
    );
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        last_stderr_line(&out),
        "agentd: policy violation: http_request URL `http://example.com/status` not covered by any allowlist pattern"
    );
}

/// The CA bundle is only for TLS: a plain `http://` request succeeds although
/// `SSL_CERT_FILE` names a file that does not exist, while an `https://` one
/// still refuses to fall back to the built-in roots.
#[test]
fn a_missing_ssl_cert_file_fails_only_https_requests() {
    let dir = scratch("missing-bundle");
    let missing = dir.join("no-such-ca.pem");
    let with_missing_bundle = |url: String| {
        let mut cmd = Command::new(binary());
        cmd.arg("--input")
            .arg(json!({ "url": url }).to_string())
            .env("STATUS_API_TOKEN", TOKEN)
            .env_remove("AGENTD_HTTP_CA_FILE")
            .env_remove("AGENTD_INPUT")
            .env("SSL_CERT_FILE", &missing);
        cmd.output().expect("the workflow binary runs")
    };
    let upstream = Stub::start("200 OK", r#"{"service":"plain","state":"up"}"#, None);
    let port = upstream.port;
    let out = with_missing_bundle(format!("http://127.0.0.1:{port}/status"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        outcome(&out)["final_value"]["stdout"],
        "service=plain state=up\n"
    );
    assert_eq!(upstream.seen().len(), 1);

    // https:// needs the bundle: the named, missing file is the error.
    let out = with_missing_bundle(format!("https://localhost:{port}/status"));
    assert_eq!(out.status.code(), Some(5));
    let stderr = last_stderr_line(&out);
    assert!(
        stderr.contains("SSL_CERT_FILE") && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );
    assert_no_canary(&out);
}
