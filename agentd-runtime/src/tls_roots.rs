//! The TLS roots outgoing HTTPS trusts (features `http` and `llm-remote`): Mozilla's
//! (webpki-roots, compiled in) or, when `AGENTD_HTTP_CA_FILE` (else `SSL_CERT_FILE`)
//! names a PEM file, exactly the certificates in that file.
//!
//! `http_request` reads the file at every request; the LLM providers read it once,
//! when their backends are built at start, so a bad file refuses to start (exit 2).
//!
//! Security posture: a named file that cannot be read, is too large or holds no
//! certificate is an error, never a silent fall-back to the built-in roots.

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

/// The trusted TLS roots of a client.
#[derive(Debug, Clone)]
pub enum Roots {
    /// Mozilla's roots (webpki-roots), compiled in.
    WebPki,
    /// Exactly these certificates (from a CA file).
    Specific(Vec<Certificate<'static>>),
}

impl Roots {
    /// `AGENTD_HTTP_CA_FILE`, else `SSL_CERT_FILE`, else the built-in roots.
    ///
    /// # Errors
    ///
    /// A message naming the variable and the file when the named file cannot be read,
    /// is larger than [`crate::limits::MAX_CA_FILE`], or holds no certificate.
    pub fn from_env() -> Result<Self, String> {
        match crate::limits::ca_bundle_from_env()? {
            None => Ok(Self::WebPki),
            Some(bundle) => {
                Self::from_pem(&bundle.pem).map_err(|e| format!("{}: {e}", bundle.source))
            }
        }
    }

    /// The certificates of a PEM bundle (other PEM items are skipped).
    ///
    /// # Errors
    ///
    /// Not PEM, or no certificate in it.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => return Err(format!("not a PEM bundle: {e}")),
            }
        }
        if certs.is_empty() {
            return Err("no certificate in the file".to_owned());
        }
        Ok(Self::Specific(certs))
    }

    /// A rustls (ring) client configuration trusting these roots.
    #[must_use]
    pub fn tls_config(&self) -> TlsConfig {
        let roots = match self {
            Self::WebPki => RootCerts::WebPki,
            Self::Specific(certs) => RootCerts::new_with_certs(certs),
        };
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .build()
    }
}
