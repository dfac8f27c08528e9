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

use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::load::{Program, Unit};
use crate::source::Seg;

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

/// How `check` and `build` verify a program.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Every file must be signed (`--signing-required` / `AGENTD_SIGNING_REQUIRED=1`);
    /// `[signing] required = true` in the root workflow has the same effect.
    pub required: bool,
    /// A public key file that overrides the root's `[signing]` key (`--verify-key`).
    pub verify_key: Option<PathBuf>,
    /// Fallback directory for a relative `public_key_file`.
    pub cwd: PathBuf,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            required: false,
            verify_key: None,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }
}

/// The outcome of verifying a program.
#[derive(Debug, Default)]
pub struct Verification {
    /// Problems found (errors refuse the build).
    pub diagnostics: Vec<Diagnostic>,
    /// Fingerprint of the key that verified every file of the program; `None` when
    /// any file was not verified.
    pub signer: Option<String>,
    /// How many files verified.
    pub verified: usize,
    /// Signing was required (by the root's `[signing]` block or the options).
    pub required: bool,
    /// The raw public key that verified every file (with [`Verification::signer`]).
    pub key: Option<[u8; 32]>,
}

/// Verify every file of `program` that has a `.sig`, and require one on every file
/// when signing is required. The key comes from `--verify-key`, else the root's
/// `[signing]` block. Children are signed with the root's key: they run on its engine.
pub fn verify_program(program: &Program, opts: &VerifyOptions) -> Verification {
    let mut out = Verification::default();
    let Some(root) = program.root() else {
        return out;
    };
    let block = root.doc.signing.as_ref();
    let required = opts.required || block.is_some_and(|b| b.required);
    out.required = required;
    let block_span = root.source.key_span_of(&[Seg::key("signing")]);
    let root_path = root.source.path.as_path();

    if let Some(alg) = block.and_then(|b| b.algorithm.as_deref())
        && !alg.eq_ignore_ascii_case(ALGORITHM)
    {
        out.diagnostics.push(
            Diagnostic::new(
                Code::SigningAlgorithmUnsupported,
                root_path,
                format!("signing algorithm `{alg}` is not supported"),
            )
            .with_span(block_span)
            .with_help("set `algorithm = \"ed25519\"` or remove the key"),
        );
        return out;
    }

    let key = match resolve_key(root, opts) {
        Ok(key) => key,
        Err(d) => {
            out.diagnostics.push(*d);
            return out;
        }
    };
    if key.is_none() && required {
        out.diagnostics.push(
            Diagnostic::new(
                Code::SigningKeyMissing,
                root_path,
                "signing is required but no public key is configured",
            )
            .with_span(block_span)
            .with_help(
                "add `public_key_file` or `public_key_pem` to `[signing]`, or pass --verify-key PATH",
            ),
        );
        return out;
    }

    let mut all_verified = true;
    for (i, unit) in program.units.iter().enumerate() {
        let path = unit.source.path.as_path();
        // A child's own `[signing] required = true` is honoured for that child: it is
        // checked with the root's key, else the key its own block names.
        let own = i > 0 && unit.doc.signing.as_ref().is_some_and(|b| b.required);
        let unit_key = match (&key, own) {
            (None, true) => match resolve_key(unit, opts) {
                Ok(k) => k,
                Err(d) => {
                    all_verified = false;
                    out.diagnostics.push(*d);
                    continue;
                }
            },
            _ => key,
        };
        if own && unit_key.is_none() {
            all_verified = false;
            out.diagnostics.push(
                Diagnostic::new(
                    Code::SigningKeyMissing,
                    path,
                    "this child workflow requires a signature but no public key is configured",
                )
                .with_span(unit.source.key_span_of(&[Seg::key("signing")]))
                .with_help(
                    "add `public_key_file` or `public_key_pem` to the root's or this file's \
                     `[signing]`, or pass --verify-key PATH",
                ),
            );
            continue;
        }
        match check_file(
            path,
            unit.source.text.as_bytes(),
            unit_key.as_ref(),
            required || own,
        ) {
            FileCheck::Verified => out.verified += 1,
            FileCheck::Unsigned => all_verified = false,
            FileCheck::Problem(d) => {
                all_verified = false;
                out.diagnostics.push(*d);
            }
        }
    }
    if all_verified && out.diagnostics.is_empty() {
        out.signer = key.as_ref().map(fingerprint);
        out.key = key.as_ref().map(VerifyingKey::to_bytes);
    }
    out
}

/// What checking one file's signature found.
enum FileCheck {
    Verified,
    /// No `.sig`, and signing is not required.
    Unsigned,
    /// An error, or the `signature_unverified` warning.
    Problem(Box<Diagnostic>),
}

/// Check `bytes` (the file at `path`, exactly as on disk) against `path.sig`.
fn check_file(path: &Path, bytes: &[u8], key: Option<&VerifyingKey>, required: bool) -> FileCheck {
    let sig_file = sig_path(path);
    let problem = |d: Diagnostic| FileCheck::Problem(Box::new(d));
    let text = match fs::read_to_string(&sig_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !required {
                return FileCheck::Unsigned;
            }
            return problem(
                Diagnostic::new(
                    Code::SignatureMissing,
                    path,
                    format!("`{}` is not signed and signing is required", path.display()),
                )
                .with_help(format!(
                    "sign it: `agentd sign {} --key PRIVATE_KEY` (writes `{}`)",
                    path.display(),
                    sig_file.display()
                )),
            );
        }
        Err(e) => {
            return problem(
                Diagnostic::new(
                    Code::SignatureMalformed,
                    path,
                    format!("cannot read `{}`: {e}", sig_file.display()),
                )
                .with_help("make the signature file readable, or re-sign the workflow"),
            );
        }
    };
    let Some(key) = key else {
        return problem(
            Diagnostic::new(
                Code::SignatureUnverified,
                path,
                format!(
                    "`{}` exists but no public key is configured, so it was not checked",
                    sig_file.display()
                ),
            )
            .with_help("add a `[signing]` block with the public key, or pass --verify-key PATH"),
        );
    };
    match verify(bytes, &text, key) {
        Ok(()) => FileCheck::Verified,
        Err(e @ (SigningError::SignatureEncoding(_) | SigningError::SignatureLength(_))) => problem(
            Diagnostic::new(
                Code::SignatureMalformed,
                path,
                format!("`{}` is malformed: {e}", sig_file.display()),
            )
            .with_help(
                "a .sig file holds standard padded base64 of the 64-byte signature; re-sign with `agentd sign`",
            ),
        ),
        Err(e) => problem(
            Diagnostic::new(
                Code::SignatureInvalid,
                path,
                format!("`{}`: {e}", path.display()),
            )
            .with_help(
                "the file changed after it was signed, or it was signed with another key; re-sign it with the key that matches the configured public key",
            ),
        ),
    }
}

/// Load a program the way `check` and `build` do: every file whose key is
/// known before it is parsed has its signature checked on the raw bytes
/// first, so a tampered or unsigned file never reaches the TOML parser; then
/// [`verify_program`] checks the whole program (the root's own signature
/// when its key lives in its `[signing]` block, key problems, the signer).
///
/// The key is known before parsing for every file with `--verify-key`, and
/// for every child once the root has been parsed.
pub fn load_verified(
    path: &Path,
    load_opts: &crate::load::LoadOptions,
    opts: &VerifyOptions,
) -> (Program, Verification) {
    let mut gate = PreParse {
        opts,
        key: None,
        resolved: false,
        refused: false,
    };
    let program = crate::load::load_gated(path, load_opts, &mut gate);
    let mut verification = verify_program(&program, opts);
    if gate.refused {
        // A file refused before parsing is not part of `program`: the files
        // that remain verifying does not make the program signed.
        verification.signer = None;
        verification.key = None;
    }
    (program, verification)
}

/// The [`crate::load::ParseGate`] of [`load_verified`].
struct PreParse<'a> {
    opts: &'a VerifyOptions,
    /// The key, once known.
    key: Option<VerifyingKey>,
    /// Whether the root's `[signing]` block has been consulted.
    resolved: bool,
    /// Whether some file was refused.
    refused: bool,
}

impl crate::load::ParseGate for PreParse<'_> {
    fn before_parse(
        &mut self,
        path: &Path,
        bytes: &[u8],
        root: Option<&Unit>,
    ) -> Option<Diagnostic> {
        let required = match root {
            // The root: only an out-of-band key is trusted before parsing.
            None => {
                if self.key.is_none()
                    && let Some(file) = &self.opts.verify_key
                {
                    self.key = read_key_file(file)
                        .ok()
                        .and_then(|pem| public_key_from_pem(&pem).ok());
                }
                self.opts.required
            }
            Some(root) => {
                if !self.resolved {
                    self.resolved = true;
                    if self.key.is_none() {
                        self.key = resolve_key(root, self.opts).ok().flatten();
                    }
                }
                self.opts.required || root.doc.signing.as_ref().is_some_and(|b| b.required)
            }
        };
        // Without a key nothing can be checked yet: `verify_program` reports it.
        let key = self.key.as_ref()?;
        match check_file(path, bytes, Some(key), required) {
            FileCheck::Problem(d) if d.is_error() => {
                self.refused = true;
                Some(*d)
            }
            _ => None,
        }
    }
}

/// The verifying key: `--verify-key`, else `[signing]` (inline PEM or file), else none.
fn resolve_key(root: &Unit, opts: &VerifyOptions) -> Result<Option<VerifyingKey>, Box<Diagnostic>> {
    let root_path = root.source.path.as_path();
    let block_span = root.source.key_span_of(&[Seg::key("signing")]);
    let invalid = |msg: String, help: &str| {
        Box::new(
            Diagnostic::new(Code::SigningKeyInvalid, root_path, msg)
                .with_span(block_span.clone())
                .with_help(help.to_string()),
        )
    };
    let from_file = |path: &Path, origin: &str| -> Result<Option<VerifyingKey>, Box<Diagnostic>> {
        let pem = match read_key_file(path) {
            Ok(pem) => pem,
            Err(e) => {
                return Err(Box::new(
                    Diagnostic::new(
                        Code::SigningKeyMissing,
                        root_path,
                        format!("cannot read the public key ({origin}): {e}"),
                    )
                    .with_span(block_span.clone())
                    .with_help("check the path; a relative `public_key_file` is resolved against the workflow's directory, then the working directory"),
                ));
            }
        };
        public_key_from_pem(&pem).map(Some).map_err(|e| {
            invalid(
                format!("`{}` ({origin}): {e}", path.display()),
                "use the `.pub` file written by `agentd keygen`, or `openssl pkey -pubout`",
            )
        })
    };

    if let Some(path) = &opts.verify_key {
        return from_file(path, "--verify-key");
    }
    let Some(block) = root.doc.signing.as_ref() else {
        return Ok(None);
    };
    match (&block.public_key_pem, &block.public_key_file) {
        (Some(_), Some(_)) => Err(invalid(
            "`[signing]` sets both `public_key_pem` and `public_key_file`".into(),
            "keep exactly one of them",
        )),
        (Some(pem), None) => public_key_from_pem(pem).map(Some).map_err(|e| {
            invalid(
                format!("`[signing] public_key_pem`: {e}"),
                "paste the whole SPKI PEM, from `-----BEGIN PUBLIC KEY-----` to `-----END PUBLIC KEY-----`",
            )
        }),
        (None, Some(file)) => {
            let written = Path::new(file);
            let beside = root
                .source
                .path
                .parent()
                .map(|dir| dir.join(written))
                .unwrap_or_else(|| written.to_path_buf());
            let path = if written.is_absolute() || beside.exists() {
                beside
            } else {
                opts.cwd.join(written)
            };
            from_file(&path, "`[signing] public_key_file`")
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load};

    fn keypair() -> (SigningKey, VerifyingKey) {
        let kp = generate_keypair().expect("keygen");
        let sk = private_key_from_pem(&kp.private_pem).expect("private pem");
        let vk = public_key_from_pem(&kp.public_pem).expect("public pem");
        assert_eq!(sk.verifying_key(), vk);
        assert_eq!(kp.fingerprint, fingerprint(&vk));
        (sk, vk)
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let (sk, vk) = keypair();
        let sig = sign(b"name = \"x\"\n", &sk);
        assert!(sig.ends_with('\n'));
        verify(b"name = \"x\"\n", &sig, &vk).expect("verifies");
    }

    #[test]
    fn one_flipped_byte_fails_verification() {
        let (sk, vk) = keypair();
        let sig = sign(b"name = \"x\"\n", &sk);
        let err = verify(b"name = \"y\"\n", &sig, &vk).expect_err("tampered");
        assert!(matches!(err, SigningError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn another_keys_signature_fails() {
        let (sk, _) = keypair();
        let (_, other) = keypair();
        let sig = sign(b"abc", &sk);
        assert!(matches!(
            verify(b"abc", &sig, &other),
            Err(SigningError::Mismatch { .. })
        ));
    }

    #[test]
    fn bad_base64_and_short_signatures_are_malformed() {
        let (_, vk) = keypair();
        assert!(matches!(
            verify(b"abc", "not base64!!", &vk),
            Err(SigningError::SignatureEncoding(_))
        ));
        let short = STANDARD.encode([7u8; 63]);
        let err = verify(b"abc", &short, &vk).expect_err("63 bytes");
        assert!(matches!(err, SigningError::SignatureLength(63)));
        assert_eq!(
            err.to_string(),
            "signature is 63 bytes; Ed25519 requires exactly 64"
        );
    }

    #[test]
    fn fingerprint_is_16_hex_chars_of_sha256_over_raw_key() {
        let (_, vk) = keypair();
        let fp = fingerprint(&vk);
        assert_eq!(fp.len(), 16);
        let full: String = Sha256::digest(vk.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(full.starts_with(&fp));
    }

    #[test]
    fn sig_path_appends_extension() {
        assert_eq!(
            sig_path(Path::new("w/a.toml")),
            PathBuf::from("w/a.toml.sig")
        );
    }

    #[test]
    fn openssl_style_signature_without_newline_verifies() {
        let (sk, vk) = keypair();
        let raw = sk.sign(b"bytes").to_bytes();
        let text = format!("  {}", STANDARD.encode(raw));
        verify(b"bytes", &text, &vk).expect("trimmed");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("agentd-signing-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn required_signing_reports_each_unsigned_file_and_key_file_is_found_beside_workflow() {
        let dir = temp_dir("program");
        let kp = generate_keypair().expect("keygen");
        fs::write(dir.join("k.pub"), &kp.public_pem).expect("write");
        let root = dir.join("root.toml");
        fs::write(
            &root,
            "name = \"root\"\n[policy]\n[signing]\nrequired = true\npublic_key_file = \"k.pub\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"c\"\ntype = \"call\"\nworkflow = \"child.toml\"\n",
        )
        .expect("write");
        fs::write(
            dir.join("child.toml"),
            "name = \"child\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"r\"\ntype = \"merge\"\n",
        )
        .expect("write");
        let program = load(
            &root,
            &LoadOptions {
                cwd: dir.clone(),
                ..LoadOptions::default()
            },
        );
        assert!(!program.has_errors(), "{:#?}", program.diagnostics);
        let opts = VerifyOptions {
            cwd: dir.clone(),
            ..VerifyOptions::default()
        };
        let v = verify_program(&program, &opts);
        let codes: Vec<_> = v.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::SignatureMissing, Code::SignatureMissing]);

        let sk = private_key_from_pem(&kp.private_pem).expect("pem");
        for unit in &program.units {
            fs::write(
                sig_path(&unit.source.path),
                sign(unit.source.text.as_bytes(), &sk),
            )
            .expect("write sig");
        }
        let v = verify_program(&program, &opts);
        assert!(v.diagnostics.is_empty(), "{:#?}", v.diagnostics);
        assert_eq!(v.verified, 2);
        assert_eq!(v.signer.as_deref(), Some(kp.fingerprint.as_str()));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_child_requiring_a_signature_is_verified_even_when_the_root_does_not() {
        let dir = temp_dir("child-required");
        let kp = generate_keypair().expect("keygen");
        fs::write(dir.join("k.pub"), &kp.public_pem).expect("write");
        let root = dir.join("root.toml");
        fs::write(
            &root,
            "name = \"root\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"c\"\ntype = \"call\"\nworkflow = \"child.toml\"\n",
        )
        .expect("write");
        let child = dir.join("child.toml");
        fs::write(
            &child,
            "name = \"child\"\n[signing]\nrequired = true\npublic_key_file = \"k.pub\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"r\"\ntype = \"merge\"\n",
        )
        .expect("write");
        let program = load(
            &root,
            &LoadOptions {
                cwd: dir.clone(),
                ..LoadOptions::default()
            },
        );
        assert!(!program.has_errors(), "{:#?}", program.diagnostics);
        let opts = VerifyOptions {
            cwd: dir.clone(),
            ..VerifyOptions::default()
        };
        // Unsigned: the child is refused, the unsigned root (not required) is not.
        let v = verify_program(&program, &opts);
        assert_eq!(codes(&v.diagnostics), [Code::SignatureMissing]);
        assert_eq!(v.diagnostics[0].file, child);

        // Signed with the key the child names: accepted.
        let sk = private_key_from_pem(&kp.private_pem).expect("pem");
        fs::write(
            sig_path(&child),
            sign(&fs::read(&child).expect("read"), &sk),
        )
        .expect("write sig");
        let v = verify_program(&program, &opts);
        assert!(v.diagnostics.is_empty(), "{:#?}", v.diagnostics);
        assert_eq!(v.verified, 1);

        // Signed by another key: refused.
        let other = generate_keypair().expect("keygen");
        let other_sk = private_key_from_pem(&other.private_pem).expect("pem");
        fs::write(
            sig_path(&child),
            sign(&fs::read(&child).expect("read"), &other_sk),
        )
        .expect("write sig");
        let v = verify_program(&program, &opts);
        assert_eq!(codes(&v.diagnostics), [Code::SignatureInvalid]);
        let _ = fs::remove_dir_all(&dir);
    }

    fn codes(diags: &[Diagnostic]) -> Vec<Code> {
        diags.iter().map(|d| d.code).collect()
    }

    /// A root calling `child.toml`, both signed with a fresh key; returns the
    /// directory, the public key file and the root path.
    fn signed_program(name: &str, key_in_root: bool) -> (PathBuf, PathBuf, PathBuf) {
        let dir = temp_dir(name);
        let kp = generate_keypair().expect("keygen");
        let sk = private_key_from_pem(&kp.private_pem).expect("pem");
        let public = dir.join("k.pub");
        fs::write(&public, &kp.public_pem).expect("write");
        let signing = if key_in_root {
            "[signing]\nrequired = true\npublic_key_file = \"k.pub\"\n"
        } else {
            ""
        };
        let root = dir.join("root.toml");
        let files = [
            (
                root.clone(),
                format!(
                    "name = \"root\"\n[policy]\n{signing}[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\
                     [[nodes]]\nid = \"c\"\ntype = \"call\"\nworkflow = \"child.toml\"\n"
                ),
            ),
            (
                dir.join("child.toml"),
                "name = \"child\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\
                 [[nodes]]\nid = \"r\"\ntype = \"merge\"\n"
                    .to_owned(),
            ),
        ];
        for (path, text) in files {
            fs::write(&path, &text).expect("write");
            fs::write(sig_path(&path), sign(text.as_bytes(), &sk)).expect("write sig");
        }
        (dir, public, root)
    }

    /// Replace a signed file's content with bytes the TOML parser rejects.
    fn tamper(path: &Path) {
        fs::write(path, "name = [[[ not toml\n").expect("tamper");
    }

    #[test]
    fn a_tampered_root_never_reaches_the_parser_with_an_out_of_band_key() {
        let (dir, public, root) = signed_program("preparse-root", false);
        tamper(&root);
        let opts = VerifyOptions {
            required: true,
            verify_key: Some(public),
            cwd: dir.clone(),
        };
        let load_opts = LoadOptions {
            cwd: dir.clone(),
            ..LoadOptions::default()
        };
        let (program, v) = load_verified(&root, &load_opts, &opts);
        assert_eq!(
            codes(&program.diagnostics),
            [Code::SignatureInvalid],
            "no parse diagnostics"
        );
        assert!(program.units.is_empty() && v.diagnostics.is_empty());

        // The same file with signing checked after parsing would have failed to parse.
        let parsed = load(&root, &load_opts);
        assert!(codes(&parsed.diagnostics).contains(&Code::TomlSyntax));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tampered_child_is_refused_before_parsing_with_the_roots_key() {
        let (dir, _, root) = signed_program("preparse-child", true);
        tamper(&dir.join("child.toml"));
        let opts = VerifyOptions {
            cwd: dir.clone(),
            ..VerifyOptions::default()
        };
        let load_opts = LoadOptions {
            cwd: dir.clone(),
            ..LoadOptions::default()
        };
        let (program, v) = load_verified(&root, &load_opts, &opts);
        let all = codes(&program.diagnostics);
        assert!(all.contains(&Code::SignatureInvalid), "{all:?}");
        assert!(
            !all.contains(&Code::TomlSyntax),
            "the child was parsed: {all:?}"
        );
        assert_eq!(program.units.len(), 1, "only the root loaded");
        assert!(v.signer.is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unsigned_child_is_refused_before_parsing_when_signing_is_required() {
        let (dir, public, root) = signed_program("preparse-unsigned", false);
        let child = dir.join("child.toml");
        let _ = fs::remove_file(sig_path(&child));
        tamper(&child);
        let opts = VerifyOptions {
            required: true,
            verify_key: Some(public),
            cwd: dir.clone(),
        };
        let load_opts = LoadOptions {
            cwd: dir.clone(),
            ..LoadOptions::default()
        };
        let (program, _) = load_verified(&root, &load_opts, &opts);
        let all = codes(&program.diagnostics);
        assert!(all.contains(&Code::SignatureMissing), "{all:?}");
        assert!(!all.contains(&Code::TomlSyntax), "{all:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_correctly_signed_program_loads_and_verifies_as_before() {
        let (dir, public, root) = signed_program("preparse-ok", false);
        let opts = VerifyOptions {
            required: true,
            verify_key: Some(public),
            cwd: dir.clone(),
        };
        let load_opts = LoadOptions {
            cwd: dir.clone(),
            ..LoadOptions::default()
        };
        let (program, v) = load_verified(&root, &load_opts, &opts);
        assert!(!program.has_errors(), "{:#?}", program.diagnostics);
        assert!(v.diagnostics.is_empty(), "{:#?}", v.diagnostics);
        assert_eq!((program.units.len(), v.verified), (2, 2));
        assert!(v.signer.is_some());
        let _ = fs::remove_dir_all(&dir);
    }
}
