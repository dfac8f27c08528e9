//! Shared by the end-to-end tests that talk to a built binary over TLS: a
//! test PKI made with rcgen, a blocking rustls client, and the served
//! binary as a child process whose banner gives its address.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

// ---------------------------------------------------------------- PKI

pub struct Ca(pub CertifiedIssuer<'static, KeyPair>);

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca"))
    }

    pub fn leaf(&self, cn: &str, sans: &[&str]) -> Leaf {
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

    pub fn pem(&self) -> String {
        self.0.pem()
    }
}

// ---------------------------------------------------------------- client

pub fn client_config(server_ca: &Ca, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
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
pub struct Exchange {
    pub status: Option<u16>,
    pub body: String,
    pub server_cert: Option<CertificateDer<'static>>,
}

/// `POST path` with `headers` and `body` on a new TLS connection to `addr`
/// (server name `localhost`).
pub fn post(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Exchange {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
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

/// A served binary on 127.0.0.1:0, killed on drop.
pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Agent {
    /// Start `binary` in `dir` with `args` (after `--bind 127.0.0.1:0`) and
    /// `env`; waits for the banner.
    pub fn start(binary: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut child = Command::new(binary)
            .current_dir(dir)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on https://").nth(1) {
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

    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with the pid of a child this test spawned and still owns.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` (bounded, only so that a bug cannot hang the test).
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}
