//! Ed25519 keys and detached signatures: generating, reading and writing keys in
//! PEM, signing bytes and verifying one signature; no knowledge of programs.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{SIGNATURE_LENGTH, Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::SigningError;

/// A freshly generated key pair, both halves PEM-encoded.
pub struct KeyPair {
    /// PKCS#8 PEM; write it with [`write_private_key`] (mode 0600).
    pub private_pem: String,
    /// SPKI PEM.
    pub public_pem: String,
    /// [`fingerprint`] of the public key.
    pub fingerprint: String,
}

impl std::fmt::Debug for KeyPair {
    // Never print the private half.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Generate an Ed25519 key pair from the OS random source (`/dev/urandom`).
pub fn generate_keypair() -> Result<KeyPair, SigningError> {
    let mut seed = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut seed))
        .map_err(SigningError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    // PKCS#8 v1 (no embedded public key): OpenSSL 3.0 refuses the v2 form for Ed25519,
    // and keys must work with `openssl pkeyutl` (the documented CI recipe).
    let v1 = KeypairBytes {
        secret_key: seed,
        public_key: None,
    };
    seed.fill(0);
    let private_pem = v1
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SigningError::PrivateKey(e.to_string()))?
        .to_string();
    let verifying = key.verifying_key();
    let public_pem = verifying
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| SigningError::PublicKey(e.to_string()))?;
    Ok(KeyPair {
        private_pem,
        public_pem,
        fingerprint: fingerprint(&verifying),
    })
}

/// Parse a PKCS#8 PEM private key.
pub fn private_key_from_pem(pem: &str) -> Result<SigningKey, SigningError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| SigningError::PrivateKey(e.to_string()))
}

/// Parse an SPKI PEM public key.
pub fn public_key_from_pem(pem: &str) -> Result<VerifyingKey, SigningError> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| SigningError::PublicKey(e.to_string()))
}

/// Read a key file (a private or public key PEM).
pub fn read_key_file(path: &Path) -> Result<String, SigningError> {
    fs::read_to_string(path).map_err(|source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// First 8 bytes of SHA-256 over the raw 32-byte public key, as 16 hex characters.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The `.sig` file of `path`: the path with `.sig` appended (`a.toml` → `a.toml.sig`).
pub fn sig_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Sign `bytes`; returns the `.sig` file content (base64 and a newline).
pub fn sign(bytes: &[u8], key: &SigningKey) -> String {
    let sig: Signature = key.sign(bytes);
    let mut text = STANDARD.encode(sig.to_bytes());
    text.push('\n');
    text
}

/// Decode the text of a `.sig` file.
pub fn decode_signature(text: &str) -> Result<Signature, SigningError> {
    let raw = STANDARD
        .decode(text.trim())
        .map_err(|e| SigningError::SignatureEncoding(e.to_string()))?;
    let bytes: [u8; SIGNATURE_LENGTH] = raw
        .as_slice()
        .try_into()
        .map_err(|_| SigningError::SignatureLength(raw.len()))?;
    Ok(Signature::from_bytes(&bytes))
}

/// Check `.sig` text against `bytes` and `key`.
pub fn verify(bytes: &[u8], sig_text: &str, key: &VerifyingKey) -> Result<(), SigningError> {
    let sig = decode_signature(sig_text)?;
    key.verify_strict(bytes, &sig)
        .map_err(|_| SigningError::Mismatch {
            fingerprint: fingerprint(key),
        })
}

/// Write a private key readable by its owner only (0600), refusing to replace an
/// existing file unless `overwrite`.
pub fn write_private_key(path: &Path, pem: &str, overwrite: bool) -> Result<(), SigningError> {
    let io_err = |source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true);
    if overwrite {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(io_err)?;
    // `mode` applies only when the file is created; an overwritten key keeps whatever
    // it had, so set the permissions explicitly before writing the secret.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err)?;
    }
    file.write_all(pem.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}
