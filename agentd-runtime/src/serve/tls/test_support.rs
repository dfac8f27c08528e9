//! Test PKI and a real TLS echo server/client pair over 127.0.0.1, shared by
//! the TLS and reload tests. Certificates are made by rcgen in the test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector, client::TlsStream};

use super::{ClientAuthDef, ClientCertMode, TlsDef, connection_peer};
use crate::serve::auth::PeerIdentity;

pub(crate) const RSA_PKCS1: &str = include_str!("../../../tests/fixtures/keys/rsa-pkcs1.pem");
pub(crate) const RSA_PKCS8: &str = include_str!("../../../tests/fixtures/keys/rsa-pkcs8.pem");
pub(crate) const EC_SEC1: &str = include_str!("../../../tests/fixtures/keys/ec-sec1.pem");
pub(crate) const EC_PKCS8: &str = include_str!("../../../tests/fixtures/keys/ec-pkcs8.pem");

pub(crate) fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

/// A fresh directory under the system temp dir.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "agentd-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> &'static str {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    leak(path.display().to_string())
}

/// A certificate authority.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, as PEM, plus the certificate's DER.
pub(crate) struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed ca"),
        }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf with `cn` and DNS `sans`, keyed with `key_pem` (PKCS#8) or a
    /// fresh P-256 key.
    pub(crate) fn leaf(&self, cn: &str, sans: &[&str], key_pem: Option<&str>) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = match key_pem {
            Some(pem) => KeyPair::from_pem(pem).expect("fixture key"),
            None => KeyPair::generate().expect("leaf key"),
        };
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// Server files for `leaf` (and a client CA) under `dir`, as a baked def.
pub(crate) fn tls_def(
    dir: &Path,
    leaf: &Leaf,
    client_ca: Option<(&Ca, ClientCertMode)>,
) -> &'static TlsDef {
    let cert_file = write(dir, "server.pem", &leaf.cert_pem);
    let key_file = write(dir, "server.key", &leaf.key_pem);
    let client_auth = client_ca.map(|(ca, mode)| ClientAuthDef {
        mode,
        ca_file: write(dir, "clients-ca.pem", &ca.pem()),
    });
    Box::leak(Box::new(TlsDef {
        cert_file,
        key_file,
        client_auth,
    }))
}

/// What the echo server reports per connection.
#[derive(Debug)]
pub(crate) enum Accepted {
    Handshake(Option<PeerIdentity>),
    Failed(String),
}

/// A TLS echo server on 127.0.0.1 whose config is fetched per connection
/// (as the real server does through the reloader). Each accepted
/// connection's outcome is sent on the returned channel; lines are echoed.
pub(crate) async fn echo_server(
    config: impl Fn() -> Arc<rustls::ServerConfig> + Send + Sync + 'static,
) -> (SocketAddr, mpsc::UnboundedReceiver<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = TlsAcceptor::from(config());
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Err(e) => {
                        let _ = tx.send(Accepted::Failed(e.to_string()));
                    }
                    Ok(tls) => {
                        let _ = tx.send(Accepted::Handshake(connection_peer(tls.get_ref().1)));
                        let (r, mut w) = tokio::io::split(tls);
                        let mut lines = BufReader::new(r).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// A rustls client trusting `server_ca`, optionally presenting a client cert.
pub(crate) fn client_config(
    server_ca: &CertificateDer<'static>,
    client: Option<&Leaf>,
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.clone()).expect("trust server ca");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("client key"),
            )
            .expect("client auth cert"),
    };
    Arc::new(config)
}

/// Connect and handshake with SNI `localhost`.
pub(crate) async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    TlsConnector::from(config).connect(name, tcp).await
}

/// Send a line and read the echo (an error if the server closed on us).
pub(crate) async fn roundtrip(
    tls: &mut TlsStream<TcpStream>,
    line: &str,
) -> std::io::Result<String> {
    tls.write_all(format!("{line}\n").as_bytes()).await?;
    tls.flush().await?;
    let mut reply = String::new();
    let mut reader = BufReader::new(tls);
    let n = reader.read_line(&mut reply).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ));
    }
    Ok(reply.trim_end().to_owned())
}

/// The leaf certificate the server presented on `tls`.
pub(crate) fn server_leaf(tls: &TlsStream<TcpStream>) -> Option<CertificateDer<'static>> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
}

/// Wait (bounded, to avoid a hang) for the next accept report.
pub(crate) async fn next_accept(rx: &mut mpsc::UnboundedReceiver<Accepted>) -> Accepted {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("the server reported within 20 s")
        .expect("the server is running")
}

pub(crate) fn def_with_client(mode: ClientCertMode) -> (&'static TlsDef, Ca, Ca, Leaf, PathBuf) {
    let dir = temp_dir("tls");
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let leaf = server_ca.leaf("localhost", &["localhost"], None);
    let def = tls_def(&dir, &leaf, Some((&client_ca, mode)));
    (def, server_ca, client_ca, leaf, dir)
}
