//! The runtime policy override: `--policy FILE` / `AGENTD_POLICY` (feature
//! `policy-file`).
//!
//! Owns reading, size-capping, strict parsing and (when the binary was built with
//! signing required) signature-checking of a small TOML file holding one `[policy]`
//! table with the same keys as a workflow's. The accepted policy is held in an
//! [`ArcSwap`] so that a reload (SIGHUP, `--reload-file`) can replace it while runs
//! hold the old one; a reload that fails keeps the old policy.
//!
//! Security posture: fail closed. Any unreadable, oversized, unparsable or unknown-key
//! file, and, when a key is baked in, any file without a valid `FILE.sig` from that
//! key, refuses to start (or, on reload, is refused and the old policy kept). This
//! module never falls back to the baked policy silently: the caller decides what an
//! error means.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::policy::Policy;

/// Override files are a few lines of allowlists; anything bigger is a wrong path.
pub const MAX_POLICY_FILE_BYTES: u64 = 1024 * 1024;

/// Why an override file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The file (or its signature) could not be read.
    #[error("cannot read policy file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_FILE_BYTES`].
    #[error("policy file `{}` is larger than the limit of {MAX_POLICY_FILE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    /// Not TOML, no `[policy]` table, an unknown key or a wrong type.
    #[error("policy file `{}` is invalid: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Signing is required and `FILE.sig` does not exist.
    #[error("policy file `{}` is not signed ({} is missing) and this binary requires signed policy", path.display(), sig.display())]
    SignatureMissing { path: PathBuf, sig: PathBuf },
    /// `FILE.sig` is not base64 of a 64-byte signature.
    #[error("signature `{}` is malformed: {reason}", sig.display())]
    SignatureMalformed { sig: PathBuf, reason: String },
    /// `FILE.sig` does not verify with the baked key.
    #[error("signature `{}` does not verify with the workflow's signing key", sig.display())]
    SignatureInvalid { sig: PathBuf },
    /// Signing is required but the binary was built without the `signing` feature.
    #[error("this binary requires signed policy files but was built without signature support")]
    SigningUnsupported,
    /// A reload would need more than the kernel sandbox applied at start allows.
    #[error("policy file `{}` widens the sandbox: {reason}", path.display())]
    WidensSandbox { path: PathBuf, reason: String },
}

mod mapping;

/// Parse the text of an override file: exactly one `[policy]` table whose sections
/// and keys are those of a workflow's `[policy]`, every value an array of strings.
///
/// Parsed by the `toml` crate (parse-only) and mapped onto [`Policy`] by
/// [`mapping`] without serde, whose derive costs ~0.25 MB in every static binary
/// (docs/performance.md).
///
/// # Errors
///
/// `line L, column C: message` for invalid TOML (including keys set twice), unknown
/// tables or keys and wrong types; `missing table `[policy]`` when there is none.
pub fn parse(text: &str) -> Result<Policy, String> {
    mapping::parse(text)
}

/// A loaded override file and the policy it currently holds.
#[derive(Debug)]
pub struct PolicyFile {
    path: PathBuf,
    /// Raw Ed25519 public key the file must be signed with (baked at build time
    /// when signing is required), if any.
    key: Option<&'static [u8; 32]>,
    current: ArcSwap<Policy>,
}

impl PolicyFile {
    /// Read, verify and parse `path`.
    ///
    /// # Errors
    ///
    /// Any [`PolicyFileError`]; nothing is loaded.
    pub fn load(path: &Path, key: Option<&'static [u8; 32]>) -> Result<Self, PolicyFileError> {
        let policy = read_policy(path, key)?;
        Ok(PolicyFile {
            path: path.to_path_buf(),
            key,
            current: ArcSwap::from_pointee(policy),
        })
    }

    /// Re-read the file and swap the new policy in. On error the old policy stays.
    ///
    /// # Errors
    ///
    /// Why the new file was refused.
    pub fn reload(&self) -> Result<(), PolicyFileError> {
        let policy = read_policy(&self.path, self.key)?;
        // Landlock cannot widen a domain: a policy the sandbox applied at
        // start does not cover would be allowed in-process and denied by the
        // kernel. Keep the old one and say why.
        crate::sandbox::check_reload(&policy).map_err(|reason| PolicyFileError::WidensSandbox {
            path: self.path.clone(),
            reason,
        })?;
        self.current.store(Arc::new(policy));
        Ok(())
    }

    /// The policy in force now.
    #[must_use]
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// The file this policy came from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_policy(path: &Path, key: Option<&'static [u8; 32]>) -> Result<Policy, PolicyFileError> {
    let read_err = |source| PolicyFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Read at most one byte past the cap from the open file, rather than
    // trusting a size taken before the read: the file may grow in between.
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_POLICY_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(read_err)?;
    if bytes.len() as u64 > MAX_POLICY_FILE_BYTES {
        return Err(PolicyFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    if let Some(key) = key {
        verify_signature(path, &bytes, key)?;
    }
    let text = String::from_utf8(bytes).map_err(|_| PolicyFileError::Parse {
        path: path.to_path_buf(),
        message: "not valid UTF-8".into(),
    })?;
    parse(&text).map_err(|message| PolicyFileError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// `FILE.sig` next to the file.
#[cfg(feature = "signing")]
fn sig_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

#[cfg(feature = "signing")]
fn verify_signature(path: &Path, bytes: &[u8], key: &[u8; 32]) -> Result<(), PolicyFileError> {
    use base64::Engine as _;

    let sig = sig_path(path);
    // A signature is 88 base64 characters; anything much larger is not one.
    let text = match crate::limits::read_capped_string(&sig, 4096) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PolicyFileError::SignatureMissing {
                path: path.to_path_buf(),
                sig,
            });
        }
        Err(source) => return Err(PolicyFileError::Read { path: sig, source }),
    };
    let malformed = |reason: String| PolicyFileError::SignatureMalformed {
        sig: sig.clone(),
        reason,
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| malformed(format!("not standard padded base64: {e}")))?;
    let raw: [u8; 64] = raw.as_slice().try_into().map_err(|_| {
        malformed(format!(
            "signature is {} bytes; Ed25519 requires exactly 64",
            raw.len()
        ))
    })?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(key)
        .map_err(|_| PolicyFileError::SignatureInvalid { sig: sig.clone() })?;
    key.verify_strict(bytes, &ed25519_dalek::Signature::from_bytes(&raw))
        .map_err(|_| PolicyFileError::SignatureInvalid { sig })
}

#[cfg(not(feature = "signing"))]
fn verify_signature(_path: &Path, _bytes: &[u8], _key: &[u8; 32]) -> Result<(), PolicyFileError> {
    // A baked key without the code to check it must never mean "unchecked".
    Err(PolicyFileError::SigningUnsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Decision, FsOp};

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agentd-policy-file-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write policy file");
        path
    }

    #[test]
    fn policy_table_parses_with_the_workflow_keys() {
        let p = parse("[policy.fs]\nread = [\"/data/**\"]\n[policy.env]\nread_keys = [\"HOME\"]\n")
            .expect("valid");
        assert!(matches!(p.check_fs(FsOp::Read, "/data/x"), Decision::Allow));
        assert!(!matches!(
            p.check_fs(FsOp::Write, "/data/x"),
            Decision::Allow
        ));
    }

    #[test]
    fn unknown_keys_missing_table_and_bad_toml_are_refused_with_a_location() {
        let err = parse("[policy.fs]\nreed = []\n").expect_err("typo");
        assert!(err.contains("reed"), "{err}");
        let err = parse("[fs]\nread = []\n").expect_err("no [policy]");
        assert!(err.contains("policy") || err.contains("fs"), "{err}");
        let err = parse("[policy\n").expect_err("syntax");
        assert!(err.contains("line 1") || err.contains("1:"), "{err}");
        let err = parse("[policy.fs]\nread = \"/data/**\"\n").expect_err("wrong type");
        assert!(err.contains("read") || err.contains("sequence"), "{err}");
    }

    #[test]
    fn reload_swaps_a_good_file_and_keeps_the_old_policy_on_a_bad_one() {
        let path = temp("reload.toml", "[policy.env]\nread_keys = [\"A\"]\n");
        let file = PolicyFile::load(&path, None).expect("loads");
        assert!(matches!(file.current().check_env("A"), Decision::Allow));

        std::fs::write(&path, "[policy.env]\nread_keys = [\"B\"]\n").expect("write");
        file.reload().expect("reloads");
        assert!(matches!(file.current().check_env("B"), Decision::Allow));
        assert!(!matches!(file.current().check_env("A"), Decision::Allow));

        std::fs::write(&path, "[policy.env]\nread_keys = 7\n").expect("write");
        assert!(file.reload().is_err());
        assert!(matches!(file.current().check_env("B"), Decision::Allow));
    }

    #[test]
    fn a_missing_file_and_an_oversized_file_are_refused() {
        let missing = std::env::temp_dir().join("agentd-no-such-policy.toml");
        assert!(matches!(
            PolicyFile::load(&missing, None),
            Err(PolicyFileError::Read { .. })
        ));
        let big = temp(
            "big.toml",
            &"#".repeat(usize::try_from(MAX_POLICY_FILE_BYTES).unwrap_or(0) + 1),
        );
        assert!(matches!(
            PolicyFile::load(&big, None),
            Err(PolicyFileError::TooLarge { .. })
        ));
    }

    #[cfg(feature = "signing")]
    #[test]
    fn with_a_baked_key_the_file_needs_a_valid_signature() {
        use base64::Engine as _;
        use ed25519_dalek::{Signer, SigningKey};

        static SEED: [u8; 32] = [7; 32];
        let signer = SigningKey::from_bytes(&SEED);
        let public: &'static [u8; 32] = Box::leak(Box::new(signer.verifying_key().to_bytes()));
        let text = "[policy.env]\nread_keys = [\"A\"]\n";
        let path = temp("signed.toml", text);
        let sig = sig_path(&path);
        let _ = std::fs::remove_file(&sig);

        assert!(matches!(
            PolicyFile::load(&path, Some(public)),
            Err(PolicyFileError::SignatureMissing { .. })
        ));
        let b64 = base64::engine::general_purpose::STANDARD;
        std::fs::write(&sig, b64.encode(signer.sign(text.as_bytes()).to_bytes())).expect("sig");
        let file = PolicyFile::load(&path, Some(public)).expect("signed file loads");

        // Tampered after signing: the reload is refused, the old policy stays.
        std::fs::write(&path, "[policy.env]\nread_keys = [\"*\"]\n").expect("write");
        assert!(matches!(
            file.reload(),
            Err(PolicyFileError::SignatureInvalid { .. })
        ));
        assert!(!matches!(file.current().check_env("B"), Decision::Allow));

        std::fs::write(&sig, b64.encode([1u8; 63])).expect("short sig");
        assert!(matches!(
            file.reload(),
            Err(PolicyFileError::SignatureMalformed { .. })
        ));
    }
}
