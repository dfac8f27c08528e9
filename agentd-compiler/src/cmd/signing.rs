//! `agentd keygen | sign | verify` — Ed25519 keys and detached `.sig` files.
//!
//! Exit codes: 0 success; 1 (`verify`) the signature is missing, malformed or does not
//! match; 2 usage errors and unreadable or unusable keys and files.

use std::path::{Path, PathBuf};

use agentd_compiler::codes::Stage;
use agentd_compiler::signing::{self, SigningError};

use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `agentd keygen -o NAME`: write `NAME` (PKCS#8 PEM, 0600) and `NAME.pub` (SPKI PEM).
pub fn keygen(output: &Path, force: bool) -> u8 {
    let pair = match signing::generate_keypair() {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut pub_path = output.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    if !force && pub_path.exists() {
        eprintln!(
            "error: `{}` already exists; pass --force to replace the key pair",
            pub_path.display()
        );
        return EXIT_USAGE;
    }
    if let Err(e) = signing::write_private_key(output, &pair.private_pem, force) {
        eprintln!("error: {e}");
        if matches!(&e, SigningError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
        {
            eprintln!("help: pass --force to replace the key pair");
        }
        return EXIT_USAGE;
    }
    if let Err(e) = std::fs::write(&pub_path, &pair.public_pem) {
        eprintln!("error: cannot write `{}`: {e}", pub_path.display());
        return EXIT_USAGE;
    }
    eprintln!(
        "wrote private key `{}` (mode 0600) and public key `{}`\nkey fingerprint: {}",
        output.display(),
        pub_path.display(),
        pair.fingerprint
    );
    EXIT_OK
}

/// `agentd sign FILE --key KEY`: write `FILE.sig`.
pub fn sign(file: &Path, key: &Path) -> u8 {
    let key = match signing::read_key_file(key).and_then(|pem| signing::private_key_from_pem(&pem))
    {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: private key `{}`: {e}", key.display());
            return EXIT_USAGE;
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", file.display());
            return EXIT_USAGE;
        }
    };
    let sig_path = signing::sig_path(file);
    if let Err(e) = std::fs::write(&sig_path, signing::sign(&bytes, &key)) {
        eprintln!("error: cannot write `{}`: {e}", sig_path.display());
        return EXIT_USAGE;
    }
    eprintln!(
        "signed `{}` -> `{}` (key {})",
        file.display(),
        sig_path.display(),
        signing::fingerprint(&key.verifying_key())
    );
    EXIT_OK
}

/// `agentd verify FILE --pub KEY`: check `FILE.sig`.
pub fn verify(file: &Path, public: &Path) -> u8 {
    let key =
        match signing::read_key_file(public).and_then(|pem| signing::public_key_from_pem(&pem)) {
            Ok(key) => key,
            Err(e) => {
                eprintln!("error: public key `{}`: {e}", public.display());
                return EXIT_USAGE;
            }
        };
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", file.display());
            return EXIT_USAGE;
        }
    };
    let sig_path = signing::sig_path(file);
    let text = match std::fs::read_to_string(&sig_path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "error: `{}` has no readable signature `{}`: {e}",
                file.display(),
                sig_path.display()
            );
            return EXIT_INVALID;
        }
    };
    match signing::verify(&bytes, &text, &key) {
        Ok(()) => {
            eprintln!(
                "ok: `{}` is signed by key {}",
                file.display(),
                signing::fingerprint(&key)
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: `{}`: {e}", file.display());
            EXIT_INVALID
        }
    }
}

/// Signature-verification flags shared by `check` and `build`.
#[derive(Debug, clap::Args)]
pub struct SigningArgs {
    /// Refuse any workflow file (root or child) without a valid signature.
    #[arg(long, env = "AGENTD_SIGNING_REQUIRED", action = clap::ArgAction::SetTrue, value_parser = dialect_bool)]
    pub signing_required: bool,
    /// Public key (SPKI PEM) to verify signatures with; overrides the `[signing]` key.
    #[arg(long, value_name = "PATH")]
    pub verify_key: Option<PathBuf>,
}

impl SigningArgs {
    pub fn options(&self) -> signing::VerifyOptions {
        signing::VerifyOptions {
            required: self.signing_required,
            verify_key: self.verify_key.clone(),
            ..signing::VerifyOptions::default()
        }
    }
}

/// The dialect's env boolean: true only for `1`, `true`, `TRUE`, `True`.
fn dialect_bool(value: &str) -> Result<bool, std::convert::Infallible> {
    Ok(matches!(value, "1" | "true" | "TRUE" | "True"))
}

/// True when any error among `diags` is a signing refusal (exit code 4).
pub fn has_signing_error(diags: &[agentd_compiler::diagnostics::Diagnostic]) -> bool {
    diags
        .iter()
        .any(|d| d.is_error() && d.code.info().stage == Stage::Signing)
}
