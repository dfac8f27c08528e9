//! Unit tests of signing: keys, signatures and the program check.

use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::*;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
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
    let dir = std::env::temp_dir().join(format!("agentd-signing-{name}-{}", std::process::id()));
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
