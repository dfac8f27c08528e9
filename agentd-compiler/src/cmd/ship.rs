//! The shipping half of `agentd build` (`--image`, `--sbom`, `--provenance-out`) and
//! `agentd verify --provenance`: rendering and exit codes around `agentd_compiler::ship`.

use std::path::Path;

use agentd_compiler::ship::{self, ShipError, Shipped};
use agentd_compiler::signing;

use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Print what `ship` wrote (or why it could not); exit 0 or 2.
pub fn report(result: Result<Shipped, ShipError>) -> u8 {
    match result {
        Ok(s) => {
            for note in &s.notes {
                eprintln!("note: {note}");
            }
            eprintln!("binary digest {}", s.binary_digest);
            if let Some((path, reference, digest)) = &s.image {
                eprintln!(
                    "wrote image `{}` ({reference}, manifest {digest})",
                    path.display()
                );
            }
            if let Some(path) = &s.sbom {
                eprintln!("wrote SBOM `{}` (CycloneDX 1.5)", path.display());
            }
            if let Some((path, signed)) = &s.provenance {
                eprintln!(
                    "wrote provenance `{}` ({})",
                    path.display(),
                    if *signed {
                        "DSSE envelope, signed"
                    } else {
                        "unsigned in-toto statement; pass --key to sign it"
                    }
                );
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}

/// `agentd verify --provenance FILE [--pub KEY] [--binary BIN] [--image TAR]`.
pub fn verify(
    statement: &Path,
    public: Option<&Path>,
    binary: Option<&Path>,
    image: Option<&Path>,
) -> u8 {
    let key = match public {
        None => None,
        Some(p) => {
            match signing::read_key_file(p).and_then(|pem| signing::public_key_from_pem(&pem)) {
                Ok(k) => Some(k),
                Err(e) => {
                    eprintln!("error: public key `{}`: {e}", p.display());
                    return EXIT_USAGE;
                }
            }
        }
    };
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| {
            eprintln!("error: cannot read `{}`: {e}", p.display());
            EXIT_USAGE
        })
    };
    let text = match read(statement) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let binary_bytes = match binary.map(read).transpose() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let image_digest = match image {
        None => None,
        Some(p) => match read(p).map(|bytes| ship::image::manifest_digest_of(&bytes)) {
            Ok(Ok(d)) => Some(d),
            Ok(Err(e)) => {
                eprintln!("error: `{}`: {e}", p.display());
                return EXIT_INVALID;
            }
            Err(code) => return code,
        },
    };
    match ship::provenance::verify(
        &text,
        key.as_ref(),
        binary_bytes.as_deref(),
        image_digest.as_deref(),
    ) {
        Ok(v) => {
            match &v.signer {
                Some(fp) => eprintln!("ok: `{}` is signed by key {fp}", statement.display()),
                None => eprintln!(
                    "ok: `{}` is a well-formed statement (UNSIGNED: nothing vouches for it)",
                    statement.display()
                ),
            }
            for (name, sha) in &v.subjects {
                println!("sha256:{sha}  {name}");
            }
            if let Some(b) = binary {
                eprintln!("ok: `{}` is a subject", b.display());
            }
            if let (Some(i), Some(d)) = (image, &image_digest) {
                eprintln!("ok: `{}` (manifest {d}) is a subject", i.display());
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: `{}`: {e}", statement.display());
            EXIT_INVALID
        }
    }
}
