//! Shared by the end-to-end tests that talk to a built binary over TLS: a
//! test PKI made with rcgen, a server config for a leaf, and a blocking rustls
//! client. The served binary itself is `support::served::Served`.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

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

impl Leaf {
    /// A rustls server config presenting this leaf, without client auth.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![self.der.clone()],
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("leaf key"),
        )
        .expect("server config");
        Arc::new(config)
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
