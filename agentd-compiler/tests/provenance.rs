//! Provenance and reproducibility of built binaries: a signed build carries its
//! sources' digests and the signer's fingerprint (`agent --provenance`) and accepts
//! only a signed `--policy` override (built with `--policy-overrides`; without it any
//! override is refused); building the same workflow twice, with build
//! caches at different paths, gives byte-identical binaries.
//!
//! These tests run real `agentd build`s into the shared cache
//! (`<workspace>/target/agentd-cache`, as the e2e tests do), so only a session's first
//! build is cold.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

#[path = "../../tests/support/mod.rs"]
mod support;

use support::build::cache_dir as cache;
use support::{scratch, workspace};

/// `agentd ARGS...` in `cwd` with the shared cache; `AGENTD_SIGNING_REQUIRED` is
/// the test's to set, never the environment's.
fn agentd(cwd: &Path, args: &[&str]) -> Output {
    agentd_with_cache(&cache(), cwd, args)
}

/// [`agentd`] with the build cache `cache`.
fn agentd_with_cache(cache: &Path, cwd: &Path, args: &[&str]) -> Output {
    support::build::agentd_with_cache(cwd, cache)
        .args(args)
        .env_remove("AGENTD_SIGNING_REQUIRED")
        .env("NO_COLOR", "1")
        .output()
        .expect("run agentd")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `workflows/hello.toml` renamed to `name` (so its generated crate is this test's
/// own) and writing under `dir/out` instead of `/tmp/agentd-hello`, with `extra`
/// appended.
fn hello_as(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let hello = std::fs::read_to_string(workspace().join("workflows/hello.toml")).expect("hello");
    let renamed = hello
        .replacen("name = \"hello\"", &format!("name = \"{name}\""), 1)
        .replace("/tmp/agentd-hello", &dir.join("out").display().to_string());
    assert_ne!(renamed, hello, "hello.toml declares name = \"hello\"");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{renamed}{extra}")).expect("write workflow");
    path
}

fn provenance(binary: &Path) -> Value {
    let out = Command::new(binary)
        .arg("--provenance")
        .output()
        .expect("run the built binary");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("--provenance prints JSON")
}

#[test]
fn signed_build_carries_source_digests_and_signer_fingerprint() {
    let dir = scratch("signed");
    let keygen = agentd(&dir, &["keygen", "-o", "release"]);
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let fingerprint = stderr(&keygen)
        .lines()
        .find_map(|l| l.strip_prefix("key fingerprint: ").map(str::to_owned))
        .expect("keygen prints the fingerprint");
    let wf = hello_as(
        &dir,
        "provenance-signed",
        "\n[signing]\nrequired = true\npublic_key_file = \"release.pub\"\n",
    );
    let sign = agentd(
        &dir,
        &["sign", "provenance-signed.toml", "--key", "release"],
    );
    assert!(sign.status.success(), "{}", stderr(&sign));

    let out = agentd(
        &dir,
        &[
            "build",
            "provenance-signed.toml",
            "-o",
            "agent",
            "--signing-required",
            "--policy-overrides",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let doc = provenance(&dir.join("agent"));
    let digest: String = Sha256::digest(std::fs::read(&wf).expect("read"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(doc["workflow"], "provenance-signed");
    assert_eq!(doc["sources"][0]["sha256"], digest.as_str());
    assert_eq!(doc["sources"][0]["path"], "provenance-signed.toml");
    assert_eq!(doc["signer_key_fingerprint"], fingerprint.as_str());
    assert_eq!(doc["compiler_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["runtime_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["program_hash"].as_str().map(str::len), Some(64));
    let caps: Vec<&str> = doc["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(caps.contains(&"fs") && caps.contains(&"env"), "{caps:?}");

    // The override must be signed by the same key: unsigned refuses to start.
    let agent = dir.join("agent");
    let run = |args: &[&str]| {
        Command::new(&agent)
            .args(args)
            .current_dir(&dir)
            .env("AGENTD_NAME", "override")
            .env_remove("AGENTD_POLICY")
            .output()
            .expect("run the agent")
    };
    let deny_writes = dir.join("deny.toml");
    std::fs::write(
        &deny_writes,
        "[policy.env]\nread_keys = [\"AGENTD_NAME\"]\n",
    )
    .expect("write override");
    let unsigned = run(&["--policy", "deny.toml"]);
    assert_eq!(unsigned.status.code(), Some(2), "{}", stderr(&unsigned));
    assert!(
        stderr(&unsigned).contains("not signed"),
        "{}",
        stderr(&unsigned)
    );
    assert!(unsigned.stdout.is_empty());

    // Signed with the workflow's key: the override replaces the baked policy, which
    // allowed the write; the override has no [policy.fs], so the write is denied.
    let signed = agentd(&dir, &["sign", "deny.toml", "--key", "release"]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let denied = run(&["--policy", "deny.toml"]);
    assert_eq!(denied.status.code(), Some(5), "{}", stderr(&denied));
    assert!(stderr(&denied).contains("policy"), "{}", stderr(&denied));
    let baked = run(&[]);
    assert_eq!(baked.status.code(), Some(0), "{}", stderr(&baked));

    // Signed by another key: refused.
    assert!(agentd(&dir, &["keygen", "-o", "other"]).status.success());
    assert!(
        agentd(&dir, &["sign", "deny.toml", "--key", "other"])
            .status
            .success()
    );
    let other = run(&["--policy", "deny.toml"]);
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("does not verify"),
        "{}",
        stderr(&other)
    );

    // One flipped byte after signing (the greeting's `H` becomes `h`, still valid
    // TOML): refused with exit 4, nothing built.
    let mut bytes = std::fs::read(&wf).expect("read");
    let at = bytes
        .windows(6)
        .position(|w| w == b"Hello,")
        .expect("the greeting template");
    bytes[at] ^= 0x20;
    std::fs::write(&wf, bytes).expect("write");
    let refused = agentd(&dir, &["build", "provenance-signed.toml", "-o", "agent2"]);
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(!dir.join("agent2").exists());
}

#[test]
fn same_workflow_builds_byte_identical_binaries() {
    let dir = scratch("repro");
    hello_as(&dir, "repro-check", "");
    let first = agentd(&dir, &["build", "repro-check.toml", "-o", "a/agent"]);
    assert!(first.status.success(), "{}", stderr(&first));

    // The second build uses a cache at another path: its own generated crate, its own
    // compiled runtime and dependencies (cold on a fresh machine, so the test covers
    // an independent build, as on another CI runner). Build paths are remapped out of
    // the binary, so the bytes must not depend on where the cache is.
    let other_cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("provenance-second-cache");
    let second = agentd_with_cache(
        &other_cache,
        &dir,
        &["build", "repro-check.toml", "-o", "b/agent"],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        other_cache.join("target").is_dir(),
        "the second build compiled into its own cache"
    );

    let a = std::fs::read(dir.join("a/agent")).expect("first binary");
    let b = std::fs::read(dir.join("b/agent")).expect("second binary");
    assert!(!a.is_empty());
    assert!(
        a == b,
        "the two builds differ ({} vs {} bytes)",
        a.len(),
        b.len()
    );
    assert_eq!(
        provenance(&dir.join("b/agent"))["signer_key_fingerprint"],
        Value::Null
    );
}

#[test]
fn policy_override_is_checked_at_start_and_replaces_the_baked_policy() {
    let dir = scratch("override");
    hello_as(&dir, "policy-override", "");
    let out = agentd(
        &dir,
        &[
            "build",
            "policy-override.toml",
            "-o",
            "agent",
            "--policy-overrides",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |policy: Option<&str>| {
        let mut cmd = Command::new(dir.join("agent"));
        cmd.current_dir(&dir).env("AGENTD_NAME", "override");
        match policy {
            Some(p) => cmd.env("AGENTD_POLICY", p),
            None => cmd.env_remove("AGENTD_POLICY"),
        };
        cmd.output().expect("run the agent")
    };

    // A typo in the file: refused before anything runs, with the key and line.
    std::fs::write(dir.join("typo.toml"), "[policy.fs]\nwrit = [\"/x/**\"]\n").expect("write");
    let typo = run(Some("typo.toml"));
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
    assert!(stderr(&typo).contains("writ"), "{}", stderr(&typo));
    assert!(stderr(&typo).contains("line 2"), "{}", stderr(&typo));
    assert!(!dir.join("out").exists(), "nothing ran");

    let missing = run(Some("nope.toml"));
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));

    // Unsigned overrides are fine when the build did not require signing.
    std::fs::write(dir.join("deny.toml"), "[policy.env]\nread_keys = [\"*\"]\n").expect("write");
    let denied = run(Some("deny.toml"));
    assert_eq!(denied.status.code(), Some(5), "{}", stderr(&denied));
    assert!(!dir.join("out").exists(), "the write was denied");

    let allow = format!(
        "[policy.env]\nread_keys = [\"*\"]\n[policy.fs]\nwrite = [\"{}/**\"]\n",
        dir.join("out").display()
    );
    std::fs::write(dir.join("allow.toml"), allow).expect("write");
    let allowed = run(Some("allow.toml"));
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert!(dir.join("out/greeting.txt").is_file());
}

#[test]
fn a_binary_built_without_policy_overrides_refuses_a_policy_file_and_runs_nothing() {
    let dir = scratch("no-overrides");
    hello_as(&dir, "policy-no-overrides", "");
    let out = agentd(&dir, &["build", "policy-no-overrides.toml", "-o", "agent"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let allow = format!(
        "[policy.env]\nread_keys = [\"*\"]\n[policy.fs]\nwrite = [\"{}/**\"]\n",
        dir.join("out").display()
    );
    std::fs::write(dir.join("allow.toml"), allow).expect("write");
    let run = |flag: bool, env: bool| {
        let mut cmd = Command::new(dir.join("agent"));
        cmd.current_dir(&dir)
            .env("AGENTD_NAME", "no-override")
            .env_remove("AGENTD_POLICY");
        if flag {
            cmd.args(["--policy", "allow.toml"]);
        }
        if env {
            cmd.env("AGENTD_POLICY", "allow.toml");
        }
        cmd.output().expect("run the agent")
    };

    // The flag and its environment twin are refused before anything runs, naming the
    // build option that would have accepted them; never ignored.
    for (flag, env) in [(true, false), (false, true)] {
        let refused = run(flag, env);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains("agentd build --policy-overrides"),
            "{}",
            stderr(&refused)
        );
        assert!(refused.stdout.is_empty());
        assert!(!dir.join("out").exists(), "nothing ran");
    }
    // Without an override, the baked policy allows the write.
    let baked = run(false, false);
    assert_eq!(baked.status.code(), Some(0), "{}", stderr(&baked));
    assert!(dir.join("out/greeting.txt").is_file());
}

/// `[signing] public_key_pem`: the inline key (no key file anywhere) is the one
/// the build verifies the workflow against, the one the binary names as signer,
/// and the one it checks a signed policy override with.
#[test]
fn an_inline_public_key_pem_verifies_the_build_and_the_policy_overrides() {
    let dir = scratch("inline-pem");
    let keygen = agentd(&dir, &["keygen", "-o", "release"]);
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let fingerprint = stderr(&keygen)
        .lines()
        .find_map(|l| l.strip_prefix("key fingerprint: ").map(str::to_owned))
        .expect("keygen prints the fingerprint");
    let pem = std::fs::read_to_string(dir.join("release.pub")).expect("public key");
    // Only the private key stays on disk: the public half lives in the workflow.
    std::fs::remove_file(dir.join("release.pub")).expect("remove public key");
    hello_as(
        &dir,
        "provenance-inline-pem",
        &format!("\n[signing]\nrequired = true\npublic_key_pem = \"\"\"\n{pem}\"\"\"\n"),
    );
    let build = |out: &str| {
        agentd(
            &dir,
            &[
                "build",
                "provenance-inline-pem.toml",
                "-o",
                out,
                "--policy-overrides",
            ],
        )
    };

    // Signed by another key: the inline key refuses it (exit 4, nothing built).
    assert!(agentd(&dir, &["keygen", "-o", "other"]).status.success());
    let sign = agentd(
        &dir,
        &["sign", "provenance-inline-pem.toml", "--key", "other"],
    );
    assert!(sign.status.success(), "{}", stderr(&sign));
    let refused = build("agent-other");
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(!dir.join("agent-other").exists());

    // Signed by the inline key's owner: builds, and the binary names that key.
    let sign = agentd(
        &dir,
        &["sign", "provenance-inline-pem.toml", "--key", "release"],
    );
    assert!(sign.status.success(), "{}", stderr(&sign));
    let built = build("agent");
    assert!(built.status.success(), "{}", stderr(&built));
    let doc = provenance(&dir.join("agent"));
    assert_eq!(doc["signer_key_fingerprint"], fingerprint.as_str());

    // At run time the baked inline key checks overrides: the owner's signature
    // is accepted (the override denies the write: exit 5), another key's is not.
    std::fs::write(
        dir.join("deny.toml"),
        "[policy.env]\nread_keys = [\"AGENTD_NAME\"]\n",
    )
    .expect("write override");
    let run = || {
        Command::new(dir.join("agent"))
            .args(["--policy", "deny.toml"])
            .current_dir(&dir)
            .env("AGENTD_NAME", "pem")
            .env_remove("AGENTD_POLICY")
            .output()
            .expect("run the agent")
    };
    assert!(
        agentd(&dir, &["sign", "deny.toml", "--key", "release"])
            .status
            .success()
    );
    let accepted = run();
    assert_eq!(accepted.status.code(), Some(5), "{}", stderr(&accepted));
    assert!(
        stderr(&accepted).contains("policy"),
        "{}",
        stderr(&accepted)
    );
    assert!(
        agentd(&dir, &["sign", "deny.toml", "--key", "other"])
            .status
            .success()
    );
    let other = run();
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("does not verify"),
        "{}",
        stderr(&other)
    );
}
