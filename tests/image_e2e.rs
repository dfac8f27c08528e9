//! End to end: `agentd build --image / --sbom / --provenance-out` with the real
//! `agentd`, checked by real tools. `skopeo inspect oci-archive:` reads the image;
//! `umoci unpack` turns it into a root filesystem in which the binary runs under
//! `env -i chroot` as the image's user; a TLS-calling workflow's image reaches an
//! HTTPS server on 127.0.0.1 trusting only the bundled CA; SBOMs validate against the
//! pinned CycloneDX 1.5 schema (`tests/schemas/cyclonedx/`); a tampered provenance
//! statement fails `agentd verify --provenance`. `podman load` stores the image with
//! the archive's digest, `podman image inspect` shows its entrypoint, user and labels,
//! and `podman run` runs it to completion.
//!
//! Needs `skopeo`, `umoci`, `podman` and `runc` (`tests/deps/oci.sh`, run by
//! `tests/run.sh`) and root (for `chroot` and rootful podman, as CI runs); without
//! them the tests fail saying what is missing.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Value, json};

mod support;

use support::stub::Stub;
use support::{scratch, tls};

use support::workspace;

/// The image's user (`agentd build` runs every image as uid/gid 65532).
const USER: &str = "65532:65532";

/// A tool the tests need, from PATH (or `/usr/sbin` and `/sbin`, where `chroot`
/// lives); panics naming the installer when it is missing.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run tests/deps/oci.sh (or tests/run.sh, which runs it)"
            )
        })
}

fn must_be_root() {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests chroot into the unpacked image, which needs root (CI runs as root)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn agentd(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentd"));
    cmd.arg("--color=never");
    for a in args {
        cmd.arg(a);
    }
    run(&mut cmd)
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn skopeo_inspect(archive: &Path, config: bool) -> Value {
    let mut cmd = Command::new(tool("skopeo"));
    cmd.arg("inspect");
    if config {
        cmd.arg("--config");
    }
    cmd.arg(format!("oci-archive:{}", archive.display()));
    json_of(&ok(&mut cmd).stdout)
}

/// `umoci unpack` of the image-layout tar `archive` (tag `tag`) into `dir/bundle`;
/// returns the root filesystem.
fn unpack(archive: &Path, tag: &str, dir: &Path) -> PathBuf {
    // umoci reads an image-layout directory: the tar is one, extracted as is.
    let layout = dir.join("layout");
    std::fs::create_dir_all(&layout).expect("layout dir");
    let bytes = std::fs::read(archive).expect("read the image");
    tar::Archive::new(bytes.as_slice())
        .unpack(&layout)
        .expect("extract the image layout");
    let bundle = dir.join("bundle");
    ok(Command::new(tool("umoci"))
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    bundle.join("rootfs")
}

/// Run the image's entrypoint in `rootfs` as a container runtime would: `env -i`
/// plus the image's own `Env`, as its user, with nothing of the host visible.
fn run_in_image(rootfs: &Path, config: &Value, env: &[(&str, &str)], args: &[&str]) -> Output {
    must_be_root();
    let entrypoint = config["config"]["Entrypoint"][0]
        .as_str()
        .expect("an entrypoint");
    let mut cmd = Command::new(tool("env"));
    cmd.arg("-i");
    for kv in config["config"]["Env"].as_array().into_iter().flatten() {
        cmd.arg(kv.as_str().expect("Env entries are strings"));
    }
    for (k, v) in env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(tool("chroot"))
        .arg(format!("--userspec={USER}"))
        .arg(rootfs)
        .arg(entrypoint)
        .args(args);
    run(&mut cmd)
}

struct Hello {
    dir: PathBuf,
    binary: PathBuf,
    image: PathBuf,
    sbom: PathBuf,
    provenance: PathBuf,
    public_key: PathBuf,
}

/// `workflows/hello.toml` built once with everything: image, SBOM, signed provenance.
fn hello() -> &'static Hello {
    static HELLO: OnceLock<Hello> = OnceLock::new();
    HELLO.get_or_init(|| {
        let dir = scratch("hello").keep();
        let key = dir.join("release");
        let out = agentd(&[&"keygen", &"-o", &key]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let h = Hello {
            binary: dir.join("hello"),
            image: dir.join("hello.tar"),
            sbom: dir.join("hello.cdx.json"),
            provenance: dir.join("hello.provenance.json"),
            public_key: dir.join("release.pub"),
            dir,
        };
        support::agentd_build(
            &workspace(),
            "workflows/hello.toml",
            &h.binary,
            &[
                "--image",
                path(&h.image),
                "--tag",
                "hello:e2e",
                "--sbom",
                path(&h.sbom),
                "--provenance-out",
                path(&h.provenance),
                "--key",
                path(&key),
            ],
        );
        h
    })
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 scratch paths")
}

/// The in-toto statement inside a DSSE envelope file.
fn statement_of(envelope: &Path) -> Value {
    let env = json_of(&std::fs::read(envelope).expect("read the provenance"));
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().expect("a payload"))
        .expect("base64 payload");
    json_of(&payload)
}

/// The image's manifest digest, from its `index.json`.
fn manifest_digest(archive: &Path) -> String {
    let bytes = std::fs::read(archive).expect("read the image");
    let mut tar = tar::Archive::new(bytes.as_slice());
    for entry in tar.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if entry.path().expect("path").as_os_str() == "index.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("index.json");
            let index = json_of(text.as_bytes());
            return index["manifests"][0]["digest"]
                .as_str()
                .expect("a manifest digest")
                .to_string();
        }
    }
    panic!("no index.json in {}", archive.display());
}

/// Check `sbom` against the pinned CycloneDX 1.5 schema; returns the component names.
fn validate_sbom(sbom: &Path) -> Vec<String> {
    let dir = workspace().join("tests/schemas/cyclonedx");
    let load = |name: &str| json_of(&std::fs::read(dir.join(name)).expect("pinned schema"));
    let schema = load("bom-1.5.schema.json");
    let mut opts = jsonschema::options();
    for name in ["spdx.schema.json", "jsf-0.82.schema.json"] {
        opts = opts.with_resource(
            format!("http://cyclonedx.org/schema/{name}"),
            jsonschema::Resource::from_contents(load(name)).expect("schema resource"),
        );
    }
    let validator = opts.build(&schema).expect("the CycloneDX schema compiles");
    let doc = json_of(&std::fs::read(sbom).expect("read the SBOM"));
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "SBOM fails the schema:\n{}",
        errors.join("\n")
    );
    assert_eq!(doc["specVersion"], "1.5");
    doc["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn skopeo_shows_the_entrypoint_user_and_labels_of_the_image() {
    let h = hello();
    let config = skopeo_inspect(&h.image, true);
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], json!(["/usr/local/bin/hello"]));
    assert_eq!(c["User"], USER);
    // hello serves nothing and calls nothing over TLS.
    assert!(c.get("ExposedPorts").is_none(), "{c}");
    assert!(c.get("Env").is_none(), "{c}");
    let labels = &c["Labels"];
    let source = std::fs::read(workspace().join("workflows/hello.toml")).expect("hello.toml");
    let sha = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&source)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(labels["dev.agentd.workflow"], "hello");
    assert_eq!(labels["dev.agentd.workflow.sha256"], sha.as_str());
    assert_eq!(
        labels["dev.agentd.compiler.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.title"], "hello");
    assert_eq!(labels["org.opencontainers.image.version"], "e2e");
    assert_eq!(labels["dev.agentd.sbom"], "/usr/share/agentd/sbom.cdx.json");

    let inspect = skopeo_inspect(&h.image, false);
    assert_eq!(inspect["Digest"], manifest_digest(&h.image).as_str());
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_unpacked_image_runs_the_binary_under_env_i_chroot_with_nothing_else() {
    let h = hello();
    let dir = scratch("unpack");
    let rootfs = unpack(&h.image, "hello:e2e", &dir);
    // FROM scratch: no shell, no TLS material (hello makes no TLS calls), no libc.
    for absent in ["bin/sh", "etc/ssl", "lib", "usr/lib"] {
        assert!(!rootfs.join(absent).exists(), "{absent} is in the image");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("/etc/passwd");
    assert!(passwd.contains("agentd:x:65532:65532:"), "{passwd}");
    assert!(
        std::fs::read_to_string(rootfs.join("etc/group"))
            .expect("/etc/group")
            .contains("agentd:x:65532:")
    );
    // The SBOM travels inside the image, byte for byte the one written beside it.
    assert_eq!(
        std::fs::read(rootfs.join("usr/share/agentd/sbom.cdx.json")).expect("SBOM in image"),
        std::fs::read(&h.sbom).expect("SBOM")
    );

    let config = skopeo_inspect(&h.image, true);
    let out = run_in_image(
        &rootfs,
        &config,
        &[("AGENTD_NAME", "chroot")],
        &["--input", "{}"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out.stdout)["status"], "completed");
    // Written as the unprivileged user into the image's own /tmp.
    let greeting = rootfs.join("tmp/agentd-hello/greeting.txt");
    assert_eq!(
        std::fs::read_to_string(&greeting).expect("greeting written inside the image"),
        "Hello, chroot - your agent is alive.\n"
    );
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&greeting).expect("meta").uid(), 65_532);
}

/// Where `podman(dir)` keeps its run state; tests remove it when they pass.
fn podman_runroot(dir: &Path) -> PathBuf {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("podman");
    let short = name.rsplit('-').next().unwrap_or(name);
    let runroot = std::env::temp_dir().join(format!("agentd-pm-{}-{short}", std::process::id()));
    assert!(
        runroot.as_os_str().len() <= 50,
        "podman run root {} is longer than podman allows",
        runroot.display()
    );
    runroot
}

/// `podman` with its own scratch store under `dir` (the `vfs` storage driver, which
/// needs no overlay or fuse support; cgroupfs; events to a file), so tests neither
/// see nor touch the machine's images. Rootful: needs root, as CI runs.
///
/// The run root holds sockets, and podman refuses one longer than 50 characters, so
/// it lives under the short system temp dir (named by this process and the scratch
/// dir's name) rather than beside the store, whose path depends on the checkout.
fn podman(dir: &Path) -> Command {
    must_be_root();
    let runroot = podman_runroot(dir);
    std::fs::create_dir_all(&runroot).expect("podman run root");
    let mut cmd = Command::new(tool("podman"));
    cmd.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(runroot)
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    cmd
}

#[test]
fn podman_loads_the_image_and_inspect_shows_its_entrypoint_user_and_labels() {
    let h = hello();
    let dir = scratch("podman-load");
    let loaded = ok(podman(&dir).arg("load").arg("-i").arg(&h.image));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&loaded.stdout),
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert!(said.contains("hello:e2e"), "{said}");

    let inspect = json_of(&ok(podman(&dir).args(["image", "inspect", "hello:e2e"])).stdout);
    let image = &inspect[0];
    // The image podman stored is the one in the archive: same manifest digest.
    assert_eq!(image["Digest"], manifest_digest(&h.image).as_str());
    let c = &image["Config"];
    assert_eq!(c["Entrypoint"], json!(["/usr/local/bin/hello"]));
    assert_eq!(c["User"], USER);
    assert_eq!(image["Architecture"], "amd64");
    assert_eq!(image["Os"], "linux");
    assert_eq!(c["Labels"]["dev.agentd.workflow"], "hello");
    assert_eq!(
        c["Labels"]["dev.agentd.compiler.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "e2e");
    assert_eq!(image["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
    let _ = std::fs::remove_dir_all(podman_runroot(&dir));
}

/// `podman run` of the loaded image. What this CI container allows decides the flags,
/// none of which changes what the image does:
/// - `--runtime runc`: crun 1.8 (Debian's default for podman) refuses a host whose
///   cgroup v1 controllers sit beside a mounted cgroup v2 ("cgroups in hybrid mode not
///   supported"); runc runs there.
/// - `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`: podman raises both limits
///   by default (1048576), which needs CAP_SYS_RESOURCE, which the CI container lacks;
///   lowering them needs nothing.
/// - `--network none`: hello uses no network, and no CNI/netavark is needed.
#[test]
fn podman_runs_the_loaded_image_as_its_user_to_completion() {
    let h = hello();
    let dir = scratch("podman-run");
    ok(podman(&dir).arg("load").arg("-i").arg(&h.image));
    // The greeting lands in a host directory mounted where hello writes it, so its
    // owner shows which user the image ran as.
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = run(podman(&dir)
        .args([
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--env",
            "AGENTD_NAME=podman",
            "--volume",
        ])
        .arg(format!("{}:/tmp/agentd-hello", out_dir.display()))
        .args(["hello:e2e", "--input", "{}"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out.stdout)["status"], "completed");
    let greeting = out_dir.join("greeting.txt");
    assert_eq!(
        std::fs::read_to_string(&greeting).expect("greeting written by the container"),
        "Hello, podman - your agent is alive.\n"
    );
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&greeting).expect("meta").uid(), 65_532);
    let _ = std::fs::remove_dir_all(podman_runroot(&dir));
}

#[test]
fn two_builds_of_the_same_workflow_give_the_same_image_digest() {
    let h = hello();
    let dir = scratch("again");
    let again = dir.join("hello.tar");
    support::agentd_build(
        &workspace(),
        "workflows/hello.toml",
        &dir.join("other-name"),
        &["--image", path(&again), "--tag", "hello:e2e"],
    );
    assert_eq!(manifest_digest(&again), manifest_digest(&h.image));
    assert!(
        std::fs::read(&again).expect("image") == std::fs::read(&h.image).expect("image"),
        "the two archives differ byte for byte"
    );
}

#[test]
fn the_hello_sbom_validates_and_lists_the_runtime_but_no_tls_stack() {
    let h = hello();
    let names = validate_sbom(&h.sbom);
    assert!(names.contains(&"agentd-runtime".to_string()), "{names:?}");
    for absent in ["ureq", "rustls", "ring", "tokio", "hyper"] {
        assert!(
            !names.iter().any(|n| n == absent),
            "{absent} listed: {names:?}"
        );
    }
    // Proc-macros and build-only crates are not linked, so not listed.
    for absent in ["serde_derive", "thiserror-impl", "cc"] {
        assert!(
            !names.iter().any(|n| n == absent),
            "{absent} listed: {names:?}"
        );
    }
    let doc = json_of(&std::fs::read(&h.sbom).expect("SBOM"));
    let binary = std::fs::read(&h.binary).expect("binary");
    let sha = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&binary)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        doc["metadata"]["component"]["hashes"][0]["content"],
        sha.as_str()
    );
    for c in doc["components"].as_array().expect("components") {
        assert!(
            c["licenses"][0]["expression"].is_string(),
            "no license: {c}"
        );
        let registry = c["properties"].as_array().is_some_and(|ps| {
            ps.iter().any(|p| {
                p["value"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("registry+"))
            })
        });
        if registry {
            let sum = c["hashes"][0]["content"].as_str().unwrap_or_default();
            assert_eq!(sum.len(), 64, "no Cargo.lock checksum: {c}");
        }
    }
}

#[test]
fn signed_provenance_verifies_and_names_the_binary_the_image_and_the_workflow() {
    let h = hello();
    let out = agentd(&[
        &"verify",
        &"--provenance",
        &h.provenance,
        &"--pub",
        &h.public_key,
        &"--binary",
        &h.binary,
        &"--image",
        &h.image,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statement = statement_of(&h.provenance);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects = statement["subject"].as_array().expect("subjects");
    assert_eq!(
        subjects[1]["digest"]["sha256"],
        manifest_digest(&h.image).trim_start_matches("sha256:")
    );
    let build_def = &statement["predicate"]["buildDefinition"];
    assert_eq!(
        build_def["resolvedDependencies"][0]["name"],
        "workflows/hello.toml"
    );
    assert_eq!(
        build_def["internalParameters"]["compilerVersion"],
        env!("CARGO_PKG_VERSION")
    );

    // The binary's own --provenance prints the subject digest.
    let out = ok(Command::new(&h.binary).arg("--provenance"));
    let own = json_of(&out.stdout);
    assert_eq!(own["binary_sha256"], subjects[0]["digest"]["sha256"]);
    assert_eq!(
        own["program_hash"],
        build_def["internalParameters"]["programHash"]
    );
}

#[test]
fn a_tampered_statement_or_binary_or_another_key_fails_verify() {
    let h = hello();
    let dir = &h.dir;
    // Tampered payload: the statement now claims another workflow digest.
    let mut env = json_of(&std::fs::read(&h.provenance).expect("provenance"));
    let mut statement = statement_of(&h.provenance);
    statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] =
        json!("0".repeat(64));
    env["payload"] = json!(
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&statement).expect("json"))
    );
    let tampered = dir.join("tampered.provenance.json");
    std::fs::write(&tampered, serde_json::to_vec(&env).expect("json")).expect("write");
    let out = agentd(&[
        &"verify",
        &"--provenance",
        &tampered,
        &"--pub",
        &h.public_key,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no signature in the envelope verifies"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A changed binary is not the subject.
    let changed = dir.join("hello-changed");
    let mut bytes = std::fs::read(&h.binary).expect("binary");
    bytes.push(0);
    std::fs::write(&changed, bytes).expect("write");
    let out = agentd(&[
        &"verify",
        &"--provenance",
        &h.provenance,
        &"--pub",
        &h.public_key,
        &"--binary",
        &changed,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a subject"));

    // Another key.
    let other = dir.join("other");
    assert!(agentd(&[&"keygen", &"-o", &other]).status.success());
    let out = agentd(&[
        &"verify",
        &"--provenance",
        &h.provenance,
        &"--pub",
        &dir.join("other.pub"),
    ]);
    assert_eq!(out.status.code(), Some(1));

    // A signed envelope checked without a key is refused, not waved through.
    let out = agentd(&[&"verify", &"--provenance", &h.provenance]);
    assert_eq!(out.status.code(), Some(1));
}

const TLS_WORKFLOW: &str = r#"
name = "tls_ping"

[policy.http]
urls = ["https://127.0.0.1:*"]
methods = ["GET"]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "fetch"

[[nodes]]
id = "fetch"
type = "http_request"
method = "get"
url_from = "trigger.url"

[[nodes]]
id = "unreachable"
type = "fail"
reason = "the HTTPS call failed"

[[edges]]
from = "fetch"
when = "error"
to = "unreachable"
"#;

/// An HTTPS server on 127.0.0.1 presenting a leaf of `ca`, answering every
/// request with `body`.
fn https_server(ca: &tls::Ca, body: &'static str) -> Stub {
    let leaf = ca.leaf("127.0.0.1", &["127.0.0.1"]);
    Stub::start("200 OK", body, Some(leaf.server_config()))
}

#[test]
fn a_tls_workflow_image_reaches_https_on_loopback_with_the_bundled_ca_only() {
    let dir = scratch("tls");
    let ca = tls::Ca::new("image-e2e test CA");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    let workflow = dir.join("tls-ping.toml");
    std::fs::write(&workflow, TLS_WORKFLOW).expect("write the workflow");
    let image = dir.join("tls-ping.tar");
    let sbom = dir.join("tls-ping.cdx.json");
    support::agentd_build(
        &dir,
        "tls-ping.toml",
        &dir.join("tls-ping"),
        &[
            "--image",
            path(&image),
            "--ca-bundle",
            path(&ca_file),
            "--sbom",
            path(&sbom),
        ],
    );

    let names = validate_sbom(&sbom);
    for linked in ["agentd-runtime", "ureq", "rustls"] {
        assert!(
            names.iter().any(|n| n == linked),
            "{linked} missing: {names:?}"
        );
    }

    let config = skopeo_inspect(&image, true);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(env, ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]);

    let rootfs = unpack(&image, "tls-ping:latest", &dir);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt"))
            .expect("bundled CA"),
        ca.pem()
    );

    let upstream = https_server(&ca, r#"{"pong":true}"#);
    let port = upstream.port;
    let input = json!({ "url": format!("https://127.0.0.1:{port}/ping") }).to_string();
    let out = run_in_image(&rootfs, &config, &[], &["--input", &input]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome = json_of(&out.stdout);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(outcome["final_value"]["status"], 200, "{outcome}");
    assert_eq!(upstream.seen().len(), 1);

    // The same image with the host's bundle instead does not trust the test CA:
    // the bundled file, not anything outside the chroot, decided the handshake.
    let other_ca = tls::Ca::new("not the bundled CA");
    let upstream = https_server(&other_ca, r#"{"pong":true}"#);
    let port = upstream.port;
    let input = json!({ "url": format!("https://127.0.0.1:{port}/ping") }).to_string();
    let out = run_in_image(&rootfs, &config, &[], &["--input", &input]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(upstream.seen().len(), 0);
}

#[test]
fn a_serving_workflow_image_exposes_its_port_binds_all_interfaces_and_names_its_health_check() {
    let dir = scratch("serve");
    let image = dir.join("order-api.tar");
    support::agentd_build(
        &workspace(),
        "workflows/order-api.toml",
        &dir.join("order-api"),
        &[
            "--image",
            path(&image),
            "--tag",
            "registry.example:5000/team/order-api:1.0",
        ],
    );
    let config = skopeo_inspect(&image, true);
    let c = &config["config"];
    assert_eq!(c["ExposedPorts"], json!({ "8080/tcp": {} }));
    assert_eq!(c["Env"], json!(["AGENTD_HTTP_BIND=0.0.0.0:8080"]));
    assert_eq!(
        c["Labels"]["dev.agentd.healthcheck"],
        "GET http://127.0.0.1:8080/healthz"
    );
    assert_eq!(
        c["Labels"]["org.opencontainers.image.ref.name"],
        "registry.example:5000/team/order-api:1.0"
    );
}

#[test]
fn image_flags_are_refused_for_a_dynamic_build_and_a_bad_tag() {
    let dir = scratch("refused");
    let image = dir.join("x.tar");
    let out = agentd(&[
        &"build",
        &"--quiet",
        &"--dynamic",
        &workspace().join("workflows/hello.toml"),
        &"-o",
        &dir.join("x"),
        &"--image",
        &image,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("static"));
    assert!(!image.exists());

    let out = agentd(&[
        &"build",
        &"--quiet",
        &workspace().join("workflows/hello.toml"),
        &"-o",
        &dir.join("x"),
        &"--image",
        &image,
        &"--tag",
        &"Not A/Tag:",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid image tag"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!image.exists() && !dir.join("x").exists());
}
