//! `agentd keygen | sign | verify` and signature checks in `check` / `build`, driven
//! through the real `agentd` binary.

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{Scratch, scratch};

const AGENTD: &str = env!("CARGO_BIN_EXE_agentd");

const CHILD: &str = "name = \"child\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"r\"\ntype = \"merge\"\n";

fn root(signing: &str) -> String {
    format!(
        "name = \"root\"\n[policy]\n{signing}\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"c\"\ntype = \"call\"\nworkflow = \"child.toml\"\n"
    )
}

/// A fresh directory holding `root.toml` (with `signing` as its `[signing]` text),
/// `child.toml`, and a key pair `release` (private) / `release.pub`.
struct Fixture {
    dir: Scratch,
}

impl Fixture {
    fn new(tag: &str, signing: &str) -> Fixture {
        let dir = scratch(tag);
        std::fs::write(dir.join("root.toml"), root(signing)).expect("write root");
        std::fs::write(dir.join("child.toml"), CHILD).expect("write child");
        let f = Fixture { dir };
        let out = f.agentd(&["keygen", "-o", "release"]);
        assert!(out.status.success(), "keygen: {}", stderr(&out));
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn agentd(&self, args: &[&str]) -> Output {
        Command::new(AGENTD)
            .args(args)
            .current_dir(&self.dir)
            .env_remove("AGENTD_SIGNING_REQUIRED")
            .env("NO_COLOR", "1")
            .output()
            .expect("run agentd")
    }

    fn sign(&self, file: &str, key: &str) {
        let out = self.agentd(&["sign", file, "--key", key]);
        assert!(out.status.success(), "sign {file}: {}", stderr(&out));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

use support::exit_code as code;

const REQUIRED: &str = "[signing]\nrequired = true\npublic_key_file = \"release.pub\"\n";

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read_and_an_spki_public_key() {
    let f = Fixture::new("keygen", "");
    let private = std::fs::read_to_string(f.path("release")).expect("private key");
    let public = std::fs::read_to_string(f.path("release.pub")).expect("public key");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{private}"
    );
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.path("release"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An existing key is never silently replaced.
    let again = f.agentd(&["keygen", "-o", "release"]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
    assert!(stderr(&again).contains("--force"));
}

#[test]
fn sign_then_verify_round_trips_and_a_flipped_byte_fails() {
    let f = Fixture::new("roundtrip", "");
    f.sign("child.toml", "release");
    let sig = std::fs::read_to_string(f.path("child.toml.sig")).expect("sig");
    assert_eq!(sig.trim().len(), 88, "base64 of 64 bytes: {sig}");
    let ok = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));

    let mut bytes = std::fs::read(f.path("child.toml")).expect("read");
    bytes[0] ^= 0x01;
    std::fs::write(f.path("child.toml"), bytes).expect("write");
    let bad = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&bad), 1, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("does not verify"), "{}", stderr(&bad));
}

#[test]
fn verify_rejects_another_key_missing_malformed_and_short_signatures() {
    let f = Fixture::new("verify-bad", "");
    let other = f.agentd(&["keygen", "-o", "other"]);
    assert!(other.status.success());

    let missing = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&missing), 1, "{}", stderr(&missing));

    f.sign("child.toml", "other");
    let wrong = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&wrong), 1, "{}", stderr(&wrong));

    std::fs::write(f.path("child.toml.sig"), "not base64 at all!\n").expect("write");
    let malformed = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&malformed), 1);
    assert!(
        stderr(&malformed).contains("base64"),
        "{}",
        stderr(&malformed)
    );

    // 63 bytes of base64: well formed, wrong length.
    let short = "A".repeat(84);
    std::fs::write(f.path("child.toml.sig"), format!("{short}\n")).expect("write");
    let short_out = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&short_out), 1);
    assert!(
        stderr(&short_out).contains("signature is 63 bytes; Ed25519 requires exactly 64"),
        "{}",
        stderr(&short_out)
    );

    // An unusable key is a usage error, not a verdict on the signature.
    let bad_key = f.agentd(&["verify", "child.toml", "--pub", "release"]);
    assert_eq!(code(&bad_key), 2, "{}", stderr(&bad_key));
}

#[test]
fn check_with_signing_required_refuses_an_unsigned_child_by_name() {
    let f = Fixture::new("child-unsigned", REQUIRED);
    f.sign("root.toml", "release");
    let out = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("signature_missing"), "{err}");
    assert!(err.contains("child.toml"), "{err}");

    f.sign("child.toml", "release");
    let ok = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
}

#[test]
fn build_refuses_a_tampered_child_with_exit_code_4_before_running_cargo() {
    let f = Fixture::new("build-tampered", REQUIRED);
    f.sign("root.toml", "release");
    f.sign("child.toml", "release");
    let mut child = std::fs::read_to_string(f.path("child.toml")).expect("read");
    child.push_str("# edited after signing\n");
    std::fs::write(f.path("child.toml"), child).expect("write");
    let out = f.agentd(&["build", "root.toml", "-o", "agent"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("signature_invalid"), "{err}");
    assert!(err.contains("child.toml"), "{err}");
    assert!(!f.path("agent").exists());
}

#[test]
fn env_and_flag_force_signing_without_a_signing_block() {
    let f = Fixture::new("force", "");
    // No key anywhere: required by env, so the key is missing.
    let out = Command::new(AGENTD)
        .args(["check", "root.toml"])
        .current_dir(&f.dir)
        .env("AGENTD_SIGNING_REQUIRED", "1")
        .output()
        .expect("run");
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signing_key_missing"),
        "{}",
        stderr(&out)
    );

    // `0` is not a dialect-1 true value.
    let off = Command::new(AGENTD)
        .args(["check", "root.toml"])
        .current_dir(&f.dir)
        .env("AGENTD_SIGNING_REQUIRED", "0")
        .output()
        .expect("run");
    assert_eq!(code(&off), 0, "{}", stderr(&off));

    // --verify-key supplies the key; both files signed: ok.
    f.sign("root.toml", "release");
    f.sign("child.toml", "release");
    let ok = f.agentd(&[
        "check",
        "root.toml",
        "--signing-required",
        "--verify-key",
        "release.pub",
    ]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
}

#[test]
fn verify_key_overrides_the_workflow_key_and_another_signer_is_refused() {
    let f = Fixture::new("override", REQUIRED);
    assert!(f.agentd(&["keygen", "-o", "other"]).status.success());
    f.sign("root.toml", "other");
    f.sign("child.toml", "other");
    let refused = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&refused), 4, "{}", stderr(&refused));
    assert_eq!(
        stderr(&refused).matches("signature_invalid").count(),
        2,
        "{}",
        stderr(&refused)
    );
    let ok = f.agentd(&["check", "root.toml", "--verify-key", "other.pub"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
}

#[test]
fn a_bad_signature_refuses_even_when_signing_is_not_required() {
    let f = Fixture::new(
        "not-required",
        "[signing]\npublic_key_file = \"release.pub\"\n",
    );
    // Unsigned: fine when not required.
    let ok = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    std::fs::write(f.path("child.toml.sig"), "@@@\n").expect("write");
    let out = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signature_malformed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unsupported_algorithm_and_unparsable_inline_key_are_refused() {
    let f = Fixture::new(
        "alg",
        "[signing]\nalgorithm = \"rsa\"\npublic_key_file = \"release.pub\"\n",
    );
    let out = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("signing_algorithm_unsupported"));

    let f = Fixture::new(
        "inline",
        "[signing]\npublic_key_pem = \"ssh-ed25519 AAAA\"\n",
    );
    let out = f.agentd(&["check", "root.toml"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("signing_key_invalid"));
}

#[test]
fn signatures_made_with_openssl_verify() {
    let f = Fixture::new("openssl", "");
    let have_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_openssl {
        eprintln!("openssl not installed; skipping the interoperability check");
        return;
    }
    let raw = f.path("child.raw");
    let out = Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(f.path("release"))
        .arg("-in")
        .arg(f.path("child.toml"))
        .arg("-out")
        .arg(&raw)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", stderr(&out));
    let sig = std::fs::read(&raw).expect("raw sig");
    assert_eq!(sig.len(), 64);
    let b64 = Command::new("base64")
        .args(["-w", "0"])
        .arg(&raw)
        .output()
        .expect("base64");
    std::fs::write(f.path("child.toml.sig"), &b64.stdout).expect("write");
    let ok = f.agentd(&["verify", "child.toml", "--pub", "release.pub"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
}
