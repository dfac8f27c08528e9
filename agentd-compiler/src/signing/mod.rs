//! Workflow signing: Ed25519 keys, detached `.sig` files, and the build-time check that
//! every file of a program (root and children) carries a valid signature.
//!
//! Formats are dialect 1's (docs/security.md "Signing"), so keys and signatures made with
//! `openssl` interoperate:
//!
//! - private keys are PKCS#8 PEM, public keys SPKI PEM (`-----BEGIN PUBLIC KEY-----`);
//! - `FILE.sig` holds standard, padded base64 of the raw 64-byte signature over the
//!   exact bytes of `FILE` (no canonicalisation; surrounding whitespace is ignored);
//! - a key's fingerprint is the first 8 bytes of SHA-256 over the 32-byte raw public
//!   key, as 16 lower-case hex characters.
//!
//! Verification uses `verify_strict` (it rejects small-order keys and malleable
//! signatures, which honest signers never produce). This module must never weaken a
//! refusal into a warning: a `.sig` that exists but does not verify is an error whether
//! or not signing is required.
//!
//! `keys` holds the key and signature primitives (generate, PEM, sign, verify one
//! file's bytes); `verify` the program check that `check`, `build` and `agentd!` run.
//! Both are re-exported here, so users name them `signing::X`.

use std::io;
use std::path::PathBuf;

use ed25519_dalek::SIGNATURE_LENGTH;

mod keys;
mod verify;

pub use keys::*;
pub use verify::*;

/// The one algorithm dialect 1 (and agentd) accepts.
pub const ALGORITHM: &str = "ed25519";

/// Why a key, a signature or a file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A key, signature or signed file could not be read or written.
    #[error("cannot access `{}`: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The private key is not a PKCS#8 PEM Ed25519 key.
    #[error("not a PKCS#8 PEM Ed25519 private key: {0}")]
    PrivateKey(String),
    /// The public key is not an SPKI PEM Ed25519 key.
    #[error("not an SPKI PEM Ed25519 public key: {0}")]
    PublicKey(String),
    /// The signature text is not standard, padded base64.
    #[error("signature is not standard padded base64: {0}")]
    SignatureEncoding(String),
    /// The decoded signature has the wrong length.
    #[error("signature is {0} bytes; Ed25519 requires exactly {SIGNATURE_LENGTH}")]
    SignatureLength(usize),
    /// The signature is well formed but does not match the bytes and key.
    #[error("signature does not verify with key {fingerprint}")]
    Mismatch { fingerprint: String },
    /// The operating system's random source failed.
    #[error("cannot read random bytes for a new key: {0}")]
    Random(io::Error),
}

#[cfg(test)]
mod tests;
