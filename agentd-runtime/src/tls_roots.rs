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

/// Largest CA bundle read from `AGENTD_HTTP_CA_FILE` / `SSL_CERT_FILE`.
pub const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// The variables naming a CA bundle, in order of precedence.
pub const CA_FILE_VARS: [&str; 2] = ["AGENTD_HTTP_CA_FILE", "SSL_CERT_FILE"];

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
    /// is larger than [`MAX_CA_FILE`], or holds no certificate.
    pub fn from_env() -> Result<Self, String> {
        let named = CA_FILE_VARS.into_iter().find_map(|var| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(|v| (var, v))
        });
        match named {
            None => Ok(Self::WebPki),
            Some((var, path)) => {
                let path = std::path::PathBuf::from(path);
                crate::limits::read_capped(&path, MAX_CA_FILE)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| Self::from_pem(&pem))
                    .map_err(|e| format!("{var} `{}`: {e}", path.display()))
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
