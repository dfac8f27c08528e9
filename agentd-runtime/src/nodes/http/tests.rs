//! Tests of `http_request` against real servers on 127.0.0.1: plain TCP and
//! rustls with a CA and leaf made by rcgen per test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::context::testing::{TestRun, path};
use crate::policy::{HttpPolicy, Policy};
use crate::secrets::{SecretDef, SecretSource};

// ---------------------------------------------------------------------------
// A tiny test server
// ---------------------------------------------------------------------------

/// What the server does with a request.
enum Reply {
    /// Write these bytes and close.
    Raw(Vec<u8>),
    /// A chunked body that never ends (until the client hangs up).
    Endless,
    /// Read the request, then say nothing until the client hangs up.
    Silent,
}

/// One request as the server saw it.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// The request line.
    line: String,
    /// Header lines, names lower-cased: `name: value`.
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            h.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(": "))
        })
    }
}

struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Serve plain HTTP (or HTTPS with `tls`) on 127.0.0.1:0, answering every
/// request with `reply(seen)`.
fn serve(
    tls: Option<Arc<rustls::ServerConfig>>,
    reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let addr = listener.local_addr().expect("local addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (Arc::clone(&connections), Arc::clone(&seen));
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let (s, reply, tls) = (Arc::clone(&s), Arc::clone(&reply), tls.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                match tls {
                    None => handle(stream, &s, &*reply),
                    Some(cfg) => {
                        let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        handle(rustls::StreamOwned::new(conn, stream), &s, &*reply);
                    }
                }
            });
        }
    });
    Server {
        addr,
        connections,
        seen,
    }
}

fn handle<S: Read + Write>(stream: S, seen: &Mutex<Vec<Seen>>, reply: &dyn Fn(&Seen) -> Reply) {
    let mut r = BufReader::new(stream);
    let mut req = Seen::default();
    let mut len = 0_usize;
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if req.line.is_empty() {
            req.line = line;
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let name = name.to_ascii_lowercase();
        if name == "content-length" {
            len = value.trim().parse().unwrap_or(0);
        }
        req.headers.push(format!("{name}: {}", value.trim()));
    }
    req.body = vec![0; len];
    if r.read_exact(&mut req.body).is_err() {
        return;
    }
    if let Ok(mut s) = seen.lock() {
        s.push(req.clone());
    }
    let answer = reply(&req);
    let mut stream = r.into_inner();
    match answer {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
        }
        Reply::Endless => {
            let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head).is_err() {
                return;
            }
            let chunk = format!("4000\r\n{}\r\n", "z".repeat(0x4000));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        }
        Reply::Silent => {
            // Wait for the client to give up (EOF or error), never answering.
            let mut buf = [0_u8; 64];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        }
    }
}

fn raw(status: &str, headers: &[&str], body: &str) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.push_str(body);
    Reply::Raw(out.into_bytes())
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// A CA and a leaf for 127.0.0.1 / localhost signed by it.
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "agentd test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
    Pki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

// ---------------------------------------------------------------------------
// Node configs and runs
// ---------------------------------------------------------------------------

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn cfg(method: &'static str, body: bool, headers: &'static [Header]) -> &'static HttpRequest {
    leak(HttpRequest {
        method,
        url_from: path("trigger.url"),
        body_from: body.then(|| path("trigger.body")),
        headers,
    })
}

fn get() -> &'static HttpRequest {
    cfg("GET", false, &[])
}

fn webpki() -> Result<Roots, Error> {
    Ok(Roots::WebPki)
}

fn call(run: &mut TestRun, cfg: &'static HttpRequest) -> Result<Step, Error> {
    node(&run.cx(), cfg, webpki)
}

fn output(step: &Result<Step, Error>) -> (Value, Option<String>) {
    match step {
        Ok(Step::Continue { value, branch }) => {
            (value.clone(), branch.as_deref().map(str::to_owned))
        }
        other => panic!("expected output, got {other:?}"),
    }
}

fn err_text<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn http_policy(urls: &[&str], methods: &[&str]) -> Policy {
    let list = |items: &[&str]| -> crate::policy::Patterns {
        items
            .iter()
            .map(|s| std::borrow::Cow::Owned((*s).to_owned()))
            .collect::<Vec<_>>()
            .into()
    };
    Policy {
        http: HttpPolicy {
            urls: list(urls),
            methods: list(methods),
        },
        ..Policy::DENY_ALL
    }
}

/// A scratch file holding `content`, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(content: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "agentd-http-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, content).expect("write a temp file");
        Self(p)
    }

    fn path(&self) -> &'static str {
        Box::leak(self.0.to_string_lossy().into_owned().into_boxed_str())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn a_2xx_reply_becomes_status_headers_body_and_bytes() {
    let server = serve(None, |_| {
        raw("200 OK", &["X-Thing: One", "X-Thing: Two"], "hello")
    });
    let mut run = TestRun::new(json!({ "url": server.url("http", "/hi?q=1") }));
    let (value, branch) = output(&call(&mut run, get()));
    assert_eq!(branch, None);
    assert_eq!(value["status"], json!(200));
    assert_eq!(value["body"], json!("hello"));
    assert_eq!(value["bytes"], json!(5));
    assert_eq!(value["headers"]["x-thing"], json!("One, Two"));
    assert_eq!(value["headers"]["content-length"], json!("5"));
    assert!(value.get("truncated").is_none(), "{value}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].line, "GET /hi?q=1 HTTP/1.1");
    assert_eq!(seen[0].header("content-type"), None);
    assert_eq!(seen[0].header("traceparent"), None);
    assert!(
        seen[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("agentd/")),
        "{:?}",
        seen[0].headers
    );
}

#[test]
fn a_non_2xx_status_takes_the_error_branch_with_the_response() {
    let server = serve(None, |_| raw("404 Not Found", &[], "nope"));
    let mut run = TestRun::new(json!({ "url": server.url("http", "/missing") }));
    let (value, branch) = output(&call(&mut run, get()));
    assert_eq!(branch.as_deref(), Some("error"));
    assert_eq!(value["status"], json!(404));
    assert_eq!(value["body"], json!("nope"));
}

#[test]
fn a_chunked_reply_is_read_in_full() {
    let server = serve(None, |_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let mut run = TestRun::new(json!({ "url": server.url("http", "/") }));
    let (value, _) = output(&call(&mut run, get()));
    assert_eq!(value["body"], json!("hello, world"));
    assert_eq!(value["bytes"], json!(12));
}

#[test]
fn redirects_are_never_followed() {
    let server = serve(None, |seen| {
        if seen.line.starts_with("GET /from ") {
            raw("302 Found", &["Location: /to"], "")
        } else {
            raw("200 OK", &[], "followed")
        }
    });
    let mut run = TestRun::new(json!({ "url": server.url("http", "/from") }));
    let (value, branch) = output(&call(&mut run, get()));
    assert_eq!(value["status"], json!(302));
    assert_eq!(value["headers"]["location"], json!("/to"));
    assert_eq!(branch.as_deref(), Some("error"));
    assert_eq!(server.requests().len(), 1, "the redirect was followed");
}

#[test]
fn a_policy_denial_happens_before_any_connection() {
    let server = serve(None, |_| raw("200 OK", &[], "reached"));
    let url = server.url("http", "/x");
    let mut run = TestRun::new(json!({ "url": url }))
        .with_policy(http_policy(&["https://api.example.com/**"], &[]));
    assert_eq!(
        err_text(call(&mut run, get())),
        format!("policy violation: http_request URL `{url}` not covered by any allowlist pattern")
    );
    // The method is upper-cased before the check.
    let mut run = TestRun::new(json!({ "url": url })).with_policy(http_policy(&["*"], &["GET"]));
    assert_eq!(
        err_text(call(&mut run, cfg("POST", false, &[]))),
        "policy violation: http_request method `POST` not in allowlist"
    );
    let mut run = TestRun::new(json!({ "url": url }));
    assert_eq!(
        err_text(loop_tool(
            &with_policy_cx(&mut run, http_policy(&["*"], &["GET"])),
            &json!({"method": "delete", "url": url}),
            webpki
        )),
        "policy violation: http_request method `DELETE` not in allowlist"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn dry_run_connects_to_nothing() {
    let server = serve(None, |_| raw("200 OK", &[], "reached"));
    let url = server.url("http", "/x");
    let mut run = TestRun::new(json!({ "url": url })).dry();
    assert_eq!(
        call(&mut run, cfg("POST", true, &[])).ok(),
        Some(Step::value(
            json!({"method": "POST", "url": url, "dry_run": true})
        ))
    );
    assert_eq!(
        loop_tool(&run.cx(), &json!({"method": "get", "url": url}), webpki).ok(),
        Some(json!({"method": "GET", "url": url, "dry_run": true}))
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn json_bodies_are_sent_compact_with_a_content_type_and_the_traceparent() {
    let server = serve(None, |_| raw("201 Created", &[], ""));
    let mut run = TestRun::new(json!({
        "url": server.url("http", "/items"),
        "body": {"b": [1, 2], "a": "x"},
    }));
    run.shared.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    let (value, branch) = output(&call(&mut run, cfg("POST", true, &[])));
    assert_eq!((value["status"].clone(), branch), (json!(201), None));
    let seen = server.requests();
    assert_eq!(seen[0].line, "POST /items HTTP/1.1");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].header("traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(
        String::from_utf8_lossy(&seen[0].body),
        r#"{"a":"x","b":[1,2]}"#
    );
}

#[test]
fn a_string_body_is_sent_verbatim_and_a_declared_content_type_wins() {
    static HEADERS: [Header; 1] = [Header {
        name: "Content-Type",
        value: &[HeaderSeg::Lit("text/plain")],
    }];
    let server = serve(None, |_| raw("200 OK", &[], ""));
    let mut run = TestRun::new(json!({ "url": server.url("http", "/"), "body": "a \"b\"" }));
    assert!(call(&mut run, cfg("PUT", true, &HEADERS)).is_ok());
    let seen = server.requests();
    assert_eq!(seen[0].body, b"a \"b\"");
    let types: Vec<&String> = seen[0]
        .headers
        .iter()
        .filter(|h| h.starts_with("content-type:"))
        .collect();
    assert_eq!(types, vec!["content-type: text/plain"]);
}

#[test]
fn an_unset_body_path_and_an_oversized_body_are_hard_errors_before_connecting() {
    let server = serve(None, |_| raw("200 OK", &[], ""));
    let url = server.url("http", "/");
    let mut run = TestRun::new(json!({ "url": url }));
    assert_eq!(
        err_text(call(&mut run, cfg("POST", true, &[]))),
        "tool `http_request` failed: path `trigger.body` is not set in the execution context"
    );
    let mut run = TestRun::new(json!({ "url": url, "body": "x".repeat(MAX_REQUEST_BODY + 1) }));
    assert_eq!(
        err_text(call(&mut run, cfg("POST", true, &[]))),
        format!(
            "tool `http_request` failed: request body is {} bytes; the limit is {MAX_REQUEST_BODY}",
            MAX_REQUEST_BODY + 1
        )
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_secret_header_reaches_the_server_but_never_the_output() {
    const CANARY: &str = "canary-5e1f-do-not-leak";
    static HEADERS: [Header; 2] = [
        Header {
            name: "Authorization",
            value: &[HeaderSeg::Lit("Bearer "), HeaderSeg::Secret("API_TOKEN")],
        },
        Header {
            name: "X-Pkg",
            value: &[HeaderSeg::Secret("CARGO_PKG_NAME")],
        },
    ];
    let file = TempFile::new(&format!("{CANARY}\n"));
    let defs: &'static [SecretDef] = Box::leak(Box::new([SecretDef {
        name: "API_TOKEN",
        source: SecretSource::File {
            path: file.path(),
            trim: true,
        },
    }]));
    let server = serve(None, |_| raw("200 OK", &["X-A: b"], "ok"));
    let mut run = TestRun::new(json!({ "url": server.url("http", "/") }));
    run.shared.secrets = defs;
    let step = call(&mut run, cfg("GET", false, &HEADERS));
    let seen = server.requests();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {CANARY}").as_str())
    );
    // An undeclared name falls back to the process environment.
    assert_eq!(seen[0].header("x-pkg"), Some("agentd-runtime"));
    let (value, _) = output(&step);
    assert_eq!(value["body"], json!("ok"));
    assert!(!value.to_string().contains(CANARY), "{value}");
}

#[test]
fn secret_errors_name_the_secret_never_its_value() {
    static HEADERS: [Header; 1] = [Header {
        name: "X-Key",
        value: &[HeaderSeg::Secret("INJECT")],
    }];
    static MISSING: [Header; 1] = [Header {
        name: "X-Key",
        value: &[HeaderSeg::Secret("AGENTD_TEST_SURELY_UNSET_SECRET")],
    }];
    let file = TempFile::new("value-1\r\nX-Evil: yes");
    let defs: &'static [SecretDef] = Box::leak(Box::new([SecretDef {
        name: "INJECT",
        source: SecretSource::File {
            path: file.path(),
            trim: false,
        },
    }]));
    let server = serve(None, |_| raw("200 OK", &[], ""));
    let mut run = TestRun::new(json!({ "url": server.url("http", "/") }));
    run.shared.secrets = defs;
    let text = err_text(call(&mut run, cfg("GET", false, &HEADERS)));
    assert_eq!(
        text,
        "tool `http_request` failed: header `X-Key`: secret `INJECT` contains CR or LF"
    );
    let text = err_text(call(&mut run, cfg("GET", false, &MISSING)));
    assert_eq!(
        text,
        "tool `http_request` failed: header `X-Key`: secret `AGENTD_TEST_SURELY_UNSET_SECRET` is not \
         declared in [[secrets]] and environment variable `AGENTD_TEST_SURELY_UNSET_SECRET` is not set"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn an_endless_body_is_truncated_at_the_cap() {
    let server = serve(None, |_| Reply::Endless);
    let mut run = TestRun::new(json!({ "url": server.url("http", "/stream") }));
    let (value, branch) = output(&call(&mut run, get()));
    assert_eq!(branch, None);
    assert_eq!(value["bytes"], json!(MAX_RESPONSE_BODY));
    assert_eq!(value["truncated"], json!(true));
    assert_eq!(
        value["body"].as_str().map(str::len),
        Some(MAX_RESPONSE_BODY)
    );
}

#[test]
fn a_silent_server_fails_at_the_run_deadline() {
    let server = serve(None, |_| Reply::Silent);
    let mut run = TestRun::new(json!({ "url": server.url("http", "/slow") }));
    run.frame.deadline = Instant::now() + Duration::from_millis(500);
    let text = err_text(call(&mut run, get()));
    assert!(
        text.starts_with("tool `http_request` failed: GET http://")
            && text.ends_with("timed out (the run deadline was reached)"),
        "{text}"
    );
}

#[test]
fn a_refused_connection_is_a_hard_tool_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("http://127.0.0.1:{port}/");
    let mut run = TestRun::new(json!({ "url": url }));
    let text = err_text(call(&mut run, get()));
    assert!(
        text.starts_with(&format!("tool `http_request` failed: GET {url}: ")),
        "{text}"
    );
}

#[test]
fn unsupported_schemes_and_bad_urls_are_hard_tool_errors() {
    let mut run = TestRun::new(json!({ "url": "ftp://example.com/x" }));
    assert_eq!(
        err_text(call(&mut run, get())),
        "tool `http_request` failed: GET ftp://example.com/x: only http:// and https:// URLs are supported"
    );
    let mut run = TestRun::new(json!({ "url": "http://exa mple.com/" }));
    assert!(
        err_text(call(&mut run, get())).contains("invalid request"),
        "a URL with a space must be refused before sending"
    );
}

#[test]
fn https_works_with_the_ca_of_the_bundle() {
    let pki = pki();
    let server = serve(Some(Arc::clone(&pki.server)), |seen| {
        raw("200 OK", &[], &format!("secure {}", seen.line))
    });
    let ca = pki.ca_pem.clone();
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/tls", server.addr.port());
        let mut run = TestRun::new(json!({ "url": url }));
        let roots = || Roots::from_pem(ca.as_bytes()).map_err(|e| Error::tool(TOOL, e));
        let (value, branch) = output(&node(&run.cx(), get(), roots));
        assert_eq!(branch, None);
        assert_eq!(value["body"], json!("secure GET /tls HTTP/1.1"), "{host}");
    }
}

#[test]
fn https_with_an_untrusted_certificate_is_a_hard_tool_error() {
    let pki = pki();
    let server = serve(Some(Arc::clone(&pki.server)), |_| raw("200 OK", &[], "no"));
    let url = server.url("https", "/");
    let mut run = TestRun::new(json!({ "url": url }));
    let text = err_text(call(&mut run, get()));
    assert!(
        text.starts_with(&format!("tool `http_request` failed: GET {url}: ")),
        "{text}"
    );
    assert!(
        server.requests().is_empty(),
        "no request may pass an untrusted TLS handshake"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    assert_eq!(
        Roots::from_pem(b"not a pem").err().as_deref(),
        Some("no certificate in the file")
    );
}

#[test]
fn loop_http_sends_method_url_and_body_and_returns_the_output() {
    let server = serve(None, |seen| {
        raw(
            "500 Internal Server Error",
            &[],
            &String::from_utf8_lossy(&seen.body),
        )
    });
    let mut run = TestRun::new(Value::Null);
    let args = json!({"method": "patch", "url": server.url("http", "/r"), "body": {"k": 1}});
    let value = loop_tool(&run.cx(), &args, webpki).expect("a response");
    assert_eq!(value["status"], json!(500));
    assert_eq!(value["body"], json!(r#"{"k":1}"#));
    assert_eq!(server.requests()[0].line, "PATCH /r HTTP/1.1");
    assert_eq!(
        err_text(loop_tool(&run.cx(), &json!({"url": "http://x/"}), webpki)),
        "tool `http_request` failed: argument `method` must be a string"
    );
}

/// A context of `run` with `policy` in force (keeps the run's other state).
fn with_policy_cx(run: &mut TestRun, policy: Policy) -> Cx<'_> {
    run.shared.policy = Some(crate::context::PolicyRef::Owned(Arc::new(policy)));
    run.cx()
}

#[test]
fn plain_http_never_reads_the_trust_roots_and_https_always_does() {
    let read = std::cell::Cell::new(0);
    let unusable = || {
        read.set(read.get() + 1);
        Err(Error::tool(TOOL, "SSL_CERT_FILE `/missing`: not found"))
    };
    assert!(roots_for("http://127.0.0.1:9/x", unusable).is_ok());
    assert!(roots_for("HTTP://example.test/", unusable).is_ok());
    assert_eq!(read.get(), 0, "a plaintext request read the CA bundle");
    assert!(roots_for("https://example.test/", unusable).is_err());
    assert!(roots_for("ftp://example.test/", unusable).is_err());
    assert_eq!(read.get(), 2);
}
