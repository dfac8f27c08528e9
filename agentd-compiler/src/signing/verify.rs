//! The build-time check that every file of a program carries a valid signature:
//! which key applies, what each file's `.sig` says, and the diagnostics.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::load::{Program, Unit};
use crate::source::Seg;

use super::*;

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
