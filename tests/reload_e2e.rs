//! End to end: a signed serve-mode workflow built by the real `agentd` (signing
//! required, so the key is baked in), served over mutual TLS with a bearer
//! route, and reloaded while it runs: a signed `--policy` change is taken on
//! SIGHUP, a tampered one is refused on a `--reload-file` touch (the signed
//! policy stays), and a rotated server certificate reaches new connections.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const AGENTD: &str = env!("CARGO_BIN_EXE_agentd");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agentd-compiler lives inside the workspace")
        .to_path_buf()
}

fn agentd(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(AGENTD)
        .args(args)
        .current_dir(dir)
        .env("AGENTD_CACHE_DIR", workspace().join("target/agentd-cache"))
        .env_remove("AGENTD_RUNTIME_PATH")
        .env_remove("AGENTD_SIGNING_REQUIRED")
        .env("NO_COLOR", "1")
        .output()
        .expect("agentd runs")
}

fn ok(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- PKI

struct Ca(CertifiedIssuer<'static, KeyPair>);

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca"))
    }

    fn leaf(&self, cn: &str, sans: &[&str]) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.0).expect("leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

// ---------------------------------------------------------------- client

fn client_config(server_ca: &Ca, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.0.der().clone()).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key"),
            )
            .expect("client cert"),
    })
}

/// What one `Connection: close` request got: the status and body, or `None`
/// when no HTTP came back (refused handshake); plus the server's certificate.
struct Exchange {
    status: Option<u16>,
    body: String,
    server_cert: Option<CertificateDer<'static>>,
}

fn post(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    token: Option<&str>,
) -> Exchange {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let mut raw = Vec::new();
    let mut error = None;
    match tls.write_all(req.as_bytes()) {
        Err(e) => error = Some(e.to_string()),
        Ok(()) => {
            let mut chunk = [0u8; 4096];
            // Read to the end; a peer that closes without close_notify ends it too.
            loop {
                match tls.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => raw.extend_from_slice(&chunk[..n]),
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Exchange {
        status: head.split_whitespace().nth(1).and_then(|c| c.parse().ok()),
        body: if body.is_empty() {
            format!("(no body; error: {error:?})")
        } else {
            body.to_owned()
        },
        server_cert: tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .cloned(),
    }
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

struct Agent {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    fn start(binary: &Path, dir: &Path) -> Agent {
        let mut child = Command::new(binary)
            .current_dir(dir)
            .args([
                "--bind",
                "127.0.0.1:0",
                "--policy",
                "policy.toml",
                "--reload-file",
            ])
            .arg(dir.join("reload"))
            .env("OPS_TOKENS", "t0ken")
            .env("A_VALUE", "alpha")
            .env("B_VALUE", "bravo")
            .env("C_VALUE", "charlie")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default().to_owned();
                    let _ = tx.send(addr);
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().expect("banner address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no banner; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        Agent {
            child,
            addr,
            stderr,
        }
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with the pid of a child this test spawned and still owns.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` (bounded, only so that a bug cannot hang the test).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}

#[test]
fn signed_policy_reloads_on_sighup_tampering_is_refused_and_certificates_rotate() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reload-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");

    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let first = server_ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("server.pem"), &first.cert_pem).expect("cert");
    std::fs::write(dir.join("server.key"), &first.key_pem).expect("key");
    std::fs::write(dir.join("clients-ca.pem"), client_ca.0.pem()).expect("ca");
    std::fs::write(dir.join("guarded.toml"), workflow(&dir)).expect("workflow");
    std::fs::write(dir.join("policy.toml"), POLICY_A).expect("policy");

    ok(agentd(&dir, &["keygen", "-o", "release"]), "keygen");
    ok(
        agentd(&dir, &["sign", "guarded.toml", "--key", "release"]),
        "sign workflow",
    );
    ok(
        agentd(&dir, &["sign", "policy.toml", "--key", "release"]),
        "sign policy",
    );
    ok(
        agentd(
            &dir,
            &[
                "--color=never",
                "build",
                "--quiet",
                "guarded.toml",
                "-o",
                "guarded",
            ],
        ),
        "agentd build",
    );

    let agent = Agent::start(&dir.join("guarded"), &dir);
    let client = client_ca.leaf("robot", &[]);
    let config = client_config(&server_ca, Some(&client));
    let call = |path: &str| post(agent.addr, config.clone(), path, Some("t0ken"));

    // Auth and TLS as built.
    let a = call("/a");
    assert_eq!(a.status, Some(200), "{}", a.body);
    assert!(a.body.contains("alpha"), "{}", a.body);
    assert_eq!(a.server_cert, Some(first.der.clone()));
    let denied = post(agent.addr, config.clone(), "/a", None);
    assert_eq!(denied.status, Some(401), "{}", denied.body);
    assert!(
        denied.body.contains("missing Authorization header"),
        "{}",
        denied.body
    );
    let denied = post(agent.addr, config.clone(), "/a", Some("wrong"));
    assert_eq!(denied.status, Some(401), "{}", denied.body);
    assert_eq!(
        post(
            agent.addr,
            client_config(&server_ca, None),
            "/a",
            Some("t0ken")
        )
        .status,
        None,
        "no client certificate, no HTTP"
    );
    assert_eq!(call("/b").status, Some(500), "B_VALUE is not allowed yet");

    // A signed change, taken on SIGHUP.
    std::fs::write(dir.join("policy.toml"), POLICY_B).expect("policy");
    ok(
        agentd(&dir, &["sign", "policy.toml", "--key", "release"]),
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

    // A rotated server certificate reaches new connections.
    let second = server_ca.leaf("localhost", &["localhost"]);
    std::fs::write(dir.join("server.pem"), &second.cert_pem).expect("cert");
    std::fs::write(dir.join("server.key"), &second.key_pem).expect("key");
    agent.signal(libc::SIGHUP);
    eventually("new handshakes to present the new certificate", || {
        call("/b").server_cert == Some(second.der.clone())
    });

    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    for event in [
        "reload.started",
        "reload.tls",
        "reload.policy",
        "reload.failed",
    ] {
        assert!(log.contains(event), "audit log lacks {event}:\n{log}");
    }
    let stderr = agent.stderr.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        !stderr.contains("t0ken"),
        "a secret reached stderr:\n{stderr}"
    );
}
