//! In-process TLS and mTLS for serve mode (`[server.tls]`, feature `tls`;
//! docs/operations.md "TLS and mTLS").
//!
//! Owns turning the baked [`TlsDef`] into a rustls [`ServerConfig`] (PEM files
//! read, size-capped and parsed by `rustls-pki-types`, never by hand; the `ring`
//! provider passed explicitly, so no process-wide provider is installed), and
//! naming a TLS peer ([`peer_identity`]). It must never fall back to plaintext:
//! an error here means "no new config", and `reload` keeps the old one.
//!
//! - `cert_file`: a PEM chain, leaf first, at least one certificate.
//! - `key_file`: the first private key found, PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
//! - `[server.tls.client_auth]` `mode = "required"`: a `WebPkiClientVerifier`
//!   over the certificates of `ca_file`; a handshake without a valid client
//!   certificate fails, so no HTTP is spoken. `mode = "optional"` (an agentd
//!   extension; dialect 1 refused it at start) verifies a certificate when one
//!   is offered and accepts connections without one; routes with
//!   `auth = "mtls"` still refuse those. `mode = "none"` bakes no client auth.
//! - TLS 1.2 and 1.3 with rustls' safe defaults; no ALPN (HTTP/1.1).
//!
//! The peer's identity: the SHA-256 fingerprint of the leaf certificate's DER
//! is authoritative (it is what verification pinned); CN and DNS SANs come
//! from x509-parser and are advisory (a parse failure yields none).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};

use super::auth::PeerIdentity;
pub use crate::workflow::auth::{ClientAuthDef, ClientCertMode, TlsDef};

/// PEM files are a few KiB; anything bigger is a wrong path.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why a TLS config could not be built. Messages follow docs/operations.md "TLS and mTLS".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("tls: open {what} {path}: {source}")]
    Open {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("tls: {what} {path} is {size} bytes; the limit is {MAX_PEM_BYTES}")]
    TooLarge {
        what: &'static str,
        path: String,
        size: u64,
    },
    #[error("tls: parse {what} {path}: {reason}")]
    Parse {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("tls: {what} {path} contains no certificates")]
    NoCertificates { what: &'static str, path: String },
    #[error("tls: key_file {path} has no recognised private key")]
    NoKey { path: String },
    #[error("tls: client verifier: {0}")]
    ClientVerifier(String),
    /// The key does not match the certificate, or rustls refused the pair.
    #[error("tls: with_single_cert: {0}")]
    Config(String),
}

fn read_pem(what: &'static str, path: &str) -> Result<Vec<u8>, TlsError> {
    let open = |source| TlsError::Open {
        what,
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(Path::new(path)).map_err(open)?.len();
    if size > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            what,
            path: path.to_owned(),
            size,
        });
    }
    // Capped again while reading: the file may grow after the size check.
    crate::limits::read_capped(Path::new(path), MAX_PEM_BYTES).map_err(open)
}

fn certificates(what: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Parse {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    use rustls::pki_types::pem::Error as PemError;

    let pem = read_pem("key_file", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        PemError::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        other => TlsError::Parse {
            what: "key_file",
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Build the rustls server config for `def` from its files, now.
///
/// # Errors
///
/// A [`TlsError`] naming the file and the problem; nothing is half-built.
pub fn server_config(def: &TlsDef) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates("cert_file", def.cert_file)?;
    let key = private_key(def.key_file)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &def.client_auth {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates("ca_file", ca.ca_file)? {
                roots.add(cert).map_err(|e| {
                    TlsError::ClientVerifier(format!("ca_file {}: {e}", ca.ca_file))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match ca.mode {
                ClientCertMode::Required => verifier,
                ClientCertMode::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::ClientVerifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The identity of a peer from its leaf certificate (DER).
#[must_use]
pub fn peer_identity(cert: &CertificateDer<'_>) -> PeerIdentity {
    let der = cert.as_ref();
    let fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(der)));
    let (cn, sans) = match x509_parser::parse_x509_certificate(der) {
        Ok((_, parsed)) => {
            let cn = parsed
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned);
            let sans = match parsed.subject_alternative_name() {
                Ok(Some(ext)) => ext
                    .value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            Some(d.to_ascii_lowercase())
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (cn, sans)
        }
        Err(_) => (None, Vec::new()),
    };
    PeerIdentity {
        fingerprint,
        cn,
        sans,
    }
}

/// The identity of a connection's client, if it presented a certificate.
#[must_use]
pub fn connection_peer(conn: &rustls::ServerConnection) -> Option<PeerIdentity> {
    conn.peer_certificates()
        .and_then(<[CertificateDer<'static>]>::first)
        .map(peer_identity)
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
