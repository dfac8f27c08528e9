//! `agentd build --image FILE`: an OCI image-layout tar, `FROM scratch`, that
//! `skopeo copy oci-archive:`, `podman load` and `docker load` accept.
//!
//! One uncompressed layer holds the binary (`/usr/local/bin/<name>`), `/etc/passwd`
//! and `/etc/group` with the non-root user the image runs as, its home, `/tmp`, a CA
//! bundle only when the workflow makes TLS calls, and the SBOM when there is one. The
//! same inputs give the same bytes, hence the same digest: entries are sorted, every
//! mtime is `SOURCE_DATE_EPOCH` (else 0), owners are numeric, JSON keys are sorted and
//! no time stamp is written unless `SOURCE_DATE_EPOCH` asks for one. Never runs docker
//! or touches the network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::image::{
    self as oci, Arch, ConfigBuilder, DescriptorBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder, Sha256Digest,
};

use super::{ShipError, canonical_bytes, sha256_hex};

/// The user the image runs as (the distroless `nonroot` convention's ids).
pub const USER: &str = "agentd";
/// Its uid and gid.
pub const UID: u64 = 65_532;
/// Where the binary goes; the entrypoint.
pub const BIN_DIR: &str = "usr/local/bin";
/// Where a bundled CA file goes, and the `SSL_CERT_FILE` the image sets for it.
pub const CA_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// Where the SBOM goes inside the image (named by the `dev.agentd.sbom` label).
pub const SBOM_PATH: &str = "usr/share/agentd/sbom.cdx.json";
/// The port a serving image exposes and binds on all interfaces.
pub const PORT: u16 = 8080;

/// Label and annotation keys of our own (reverse-DNS under `dev.agentd`).
pub mod label {
    pub const WORKFLOW: &str = "dev.agentd.workflow";
    pub const WORKFLOW_SHA256: &str = "dev.agentd.workflow.sha256";
    pub const PROGRAM_HASH: &str = "dev.agentd.program-hash";
    pub const COMPILER_VERSION: &str = "dev.agentd.compiler.version";
    pub const CAPABILITIES: &str = "dev.agentd.capabilities";
    pub const SBOM: &str = "dev.agentd.sbom";
    pub const HEALTHCHECK: &str = "dev.agentd.healthcheck";
}

/// What goes into the image besides the binary.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `NAME:TAG` (the `org.opencontainers.image.ref.name` of the index entry).
    pub reference: String,
    /// The binary's file name inside the image (a slug of the workflow name).
    pub bin_name: String,
    /// The root workflow's `name`.
    pub workflow: String,
    /// SHA-256 of the root workflow file.
    pub workflow_sha256: String,
    /// The program hash the binary's `--provenance` prints.
    pub program_hash: String,
    /// Runtime features compiled in (sorted).
    pub capabilities: Vec<String>,
    /// The workflow serves HTTP routes: expose [`PORT`] and bind on all interfaces.
    pub serves_http: bool,
    /// PEM CA bundle to place at [`CA_PATH`] (only for workflows making TLS calls).
    pub ca_bundle: Option<Vec<u8>>,
    /// CycloneDX JSON to place at [`SBOM_PATH`].
    pub sbom: Option<Vec<u8>>,
    /// Seconds since 1970 for every mtime and the `created` field (`SOURCE_DATE_EPOCH`).
    pub epoch: Option<u64>,
}

/// A written image: the digests a deployer pins and a verifier checks.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the image manifest: the image's identity in a registry.
    pub manifest_digest: String,
    /// `sha256:<hex>` of the image configuration.
    pub config_digest: String,
    /// The whole image-layout tar.
    pub archive: Vec<u8>,
}

/// Check `NAME[:TAG]` and return it with `:latest` when no tag is given. Names follow
/// the distribution spec (lower-case path components, optional registry host and port).
pub fn normalize_reference(text: &str) -> Result<String, ShipError> {
    let bad = || ShipError::Tag(text.to_string());
    // The tag is after the last ':' that comes after the last '/' (a registry port
    // such as `host:5000/name` is not a tag).
    let slash = text.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match text[slash..].rfind(':') {
        Some(i) => (&text[..slash + i], &text[slash + i + 1..]),
        None => (text, "latest"),
    };
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !tag.starts_with(['.', '-']);
    let mut components = name.split('/').peekable();
    let mut name_ok = !name.is_empty();
    let mut first = true;
    while let Some(c) = components.next() {
        let is_host =
            first && components.peek().is_some() && (c.contains(['.', ':']) || c == "localhost");
        first = false;
        let ok = if is_host {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':'))
        } else {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        name_ok &= ok;
    }
    if name_ok && tag_ok {
        Ok(format!("{name}:{tag}"))
    } else {
        Err(bad())
    }
}

/// One file or directory of the layer.
struct Entry {
    mode: u32,
    owner: u64,
    /// `None` for a directory.
    data: Option<Vec<u8>>,
}

fn dir(mode: u32, owner: u64) -> Entry {
    Entry {
        mode,
        owner,
        data: None,
    }
}

fn file(mode: u32, data: Vec<u8>) -> Entry {
    Entry {
        mode,
        owner: 0,
        data: Some(data),
    }
}

/// The layer's root filesystem, keyed by path (sorted: a parent sorts before its
/// children because it is their prefix).
fn rootfs(spec: &ImageSpec, binary: Vec<u8>) -> BTreeMap<String, Entry> {
    let mut fs = BTreeMap::new();
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\n{USER}:x:{UID}:{UID}:{USER}:/home/{USER}:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\n{USER}:x:{UID}:\n");
    fs.insert("etc".into(), dir(0o755, 0));
    fs.insert("etc/passwd".into(), file(0o644, passwd.into_bytes()));
    fs.insert("etc/group".into(), file(0o644, group.into_bytes()));
    fs.insert("home".into(), dir(0o755, 0));
    fs.insert(format!("home/{USER}"), dir(0o700, UID));
    // World-writable with the sticky bit, as on any Unix system.
    fs.insert("tmp".into(), dir(0o1777, 0));
    for d in ["usr", "usr/local", BIN_DIR] {
        fs.insert(d.into(), dir(0o755, 0));
    }
    fs.insert(format!("{BIN_DIR}/{}", spec.bin_name), file(0o755, binary));
    if let Some(ca) = &spec.ca_bundle {
        for d in ["etc/ssl", "etc/ssl/certs"] {
            fs.insert(d.into(), dir(0o755, 0));
        }
        fs.insert(CA_PATH.into(), file(0o644, ca.clone()));
    }
    if let Some(sbom) = &spec.sbom {
        for d in ["usr/share", "usr/share/agentd"] {
            fs.insert(d.into(), dir(0o755, 0));
        }
        fs.insert(SBOM_PATH.into(), file(0o644, sbom.clone()));
    }
    fs
}

/// A tar of `entries` with fixed metadata.
fn tar_of<'a>(
    entries: impl IntoIterator<Item = (String, &'a Entry)>,
    mtime: u64,
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_uid(entry.owner);
        header.set_gid(entry.owner);
        header.set_mtime(mtime);
        match &entry.data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, &path, data.as_slice())?;
            }
        }
    }
    builder.into_inner()
}

fn oci_err(e: impl std::fmt::Display) -> ShipError {
    ShipError::Oci(e.to_string())
}

fn digest(hex: &str) -> Result<Sha256Digest, ShipError> {
    hex.parse::<Sha256Digest>().map_err(oci_err)
}

/// Build the image-layout tar for `binary`.
pub fn build(spec: &ImageSpec, binary: Vec<u8>) -> Result<Image, ShipError> {
    let mtime = spec.epoch.unwrap_or(0);
    let write_err = |source| ShipError::Io {
        what: "cannot assemble the image layer for",
        path: PathBuf::from(&spec.reference),
        source,
    };
    let fs = rootfs(spec, binary);
    let layer = tar_of(fs.iter().map(|(p, e)| (p.clone(), e)), mtime).map_err(write_err)?;
    let layer_hex = sha256_hex(&layer);

    let entrypoint = format!("/{BIN_DIR}/{}", spec.bin_name);
    let mut labels = BTreeMap::new();
    labels.insert(label::WORKFLOW.to_string(), spec.workflow.clone());
    labels.insert(
        label::WORKFLOW_SHA256.to_string(),
        spec.workflow_sha256.clone(),
    );
    labels.insert(label::PROGRAM_HASH.to_string(), spec.program_hash.clone());
    labels.insert(
        label::COMPILER_VERSION.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    labels.insert(label::CAPABILITIES.to_string(), spec.capabilities.join(","));
    if spec.sbom.is_some() {
        labels.insert(label::SBOM.to_string(), format!("/{SBOM_PATH}"));
    }
    let mut env = Vec::new();
    let mut exposed = Vec::new();
    if spec.serves_http {
        // The binary's default bind is loopback, unreachable from outside a container.
        env.push(format!("AGENTD_HTTP_BIND=0.0.0.0:{PORT}"));
        exposed.push(format!("{PORT}/tcp"));
        // OCI configs have no HEALTHCHECK (a Docker extension that would need a
        // client in the image); orchestrators read this label for their probe.
        labels.insert(
            label::HEALTHCHECK.to_string(),
            format!("GET http://127.0.0.1:{PORT}/healthz"),
        );
    }
    if spec.ca_bundle.is_some() {
        // The runtime trusts exactly this bundle (tls_roots reads SSL_CERT_FILE).
        env.push(format!("SSL_CERT_FILE=/{CA_PATH}"));
    }
    let annotations = annotations(spec);
    for (k, v) in &annotations {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }

    let mut config = ConfigBuilder::default()
        .user(format!("{UID}:{UID}"))
        .entrypoint(vec![entrypoint])
        .working_dir(format!("/home/{USER}"))
        .labels(
            labels
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .stop_signal("SIGTERM".to_string());
    if !env.is_empty() {
        config = config.env(env);
    }
    if !exposed.is_empty() {
        config = config.exposed_ports(exposed);
    }
    let config = config.build().map_err(oci_err)?;
    let rootfs = RootFsBuilder::default()
        .typ("layers".to_string())
        .diff_ids(vec![format!("sha256:{layer_hex}")])
        .build()
        .map_err(oci_err)?;
    let mut image_config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs);
    if let Some(epoch) = spec.epoch {
        image_config = image_config.created(super::rfc3339(epoch));
    }
    let image_config = image_config.build().map_err(oci_err)?;
    let config_bytes = canonical_bytes(serde_json::to_value(&image_config).map_err(oci_err)?);
    let config_hex = sha256_hex(&config_bytes);

    let manifest = ImageManifestBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .size(config_bytes.len() as u64)
                .digest(digest(&config_hex)?)
                .build()
                .map_err(oci_err)?,
        )
        .layers(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayer)
                .size(layer.len() as u64)
                .digest(digest(&layer_hex)?)
                .build()
                .map_err(oci_err)?,
        ])
        .annotations(
            annotations
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .map_err(oci_err)?;
    let manifest_bytes = canonical_bytes(serde_json::to_value(&manifest).map_err(oci_err)?);
    let manifest_hex = sha256_hex(&manifest_bytes);

    let mut ref_annotations = std::collections::HashMap::new();
    ref_annotations.insert(oci::ANNOTATION_REF_NAME.to_string(), spec.reference.clone());
    // containerd (and so `docker load` of an OCI archive) names the image from this.
    ref_annotations.insert(
        "io.containerd.image.name".to_string(),
        spec.reference.clone(),
    );
    let index = ImageIndexBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .size(manifest_bytes.len() as u64)
                .digest(digest(&manifest_hex)?)
                .platform(
                    oci::PlatformBuilder::default()
                        .architecture(Arch::Amd64)
                        .os(Os::Linux)
                        .build()
                        .map_err(oci_err)?,
                )
                .annotations(ref_annotations)
                .build()
                .map_err(oci_err)?,
        ])
        .build()
        .map_err(oci_err)?;
    let index_bytes = canonical_bytes(serde_json::to_value(&index).map_err(oci_err)?);
    let layout = oci::OciLayoutBuilder::default()
        .image_layout_version("1.0.0".to_string())
        .build()
        .map_err(oci_err)?;
    let layout_bytes = canonical_bytes(serde_json::to_value(&layout).map_err(oci_err)?);
    // Docker's own `manifest.json`, so `docker load` of older engines (before OCI
    // archive support) loads and tags the image too.
    let docker_manifest = canonical_bytes(serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": [spec.reference],
        "Layers": [format!("blobs/sha256/{layer_hex}")],
    }]));

    let mut outer = BTreeMap::new();
    outer.insert("blobs".to_string(), dir(0o755, 0));
    outer.insert("blobs/sha256".to_string(), dir(0o755, 0));
    outer.insert(format!("blobs/sha256/{layer_hex}"), file(0o644, layer));
    outer.insert(
        format!("blobs/sha256/{config_hex}"),
        file(0o644, config_bytes),
    );
    outer.insert(
        format!("blobs/sha256/{manifest_hex}"),
        file(0o644, manifest_bytes),
    );
    outer.insert("index.json".to_string(), file(0o644, index_bytes));
    outer.insert("manifest.json".to_string(), file(0o644, docker_manifest));
    outer.insert("oci-layout".to_string(), file(0o644, layout_bytes));
    // `oci-layout` first: tools that stream the archive look for it before the rest.
    let order = std::iter::once("oci-layout".to_string())
        .chain(outer.keys().filter(|k| *k != "oci-layout").cloned())
        .collect::<Vec<_>>();
    let archive = tar_of(
        order
            .into_iter()
            .filter_map(|k| outer.get(&k).map(|e| (k, e))),
        mtime,
    )
    .map_err(write_err)?;
    Ok(Image {
        manifest_digest: format!("sha256:{manifest_hex}"),
        config_digest: format!("sha256:{config_hex}"),
        archive,
    })
}

/// The manifest digest (`sha256:…`) an image-layout tar's `index.json` names (its
/// first manifest): what a provenance subject must match.
pub fn manifest_digest_of(archive: &[u8]) -> Result<String, ShipError> {
    let not_image = |why: String| ShipError::Oci(format!("not an OCI image-layout tar: {why}"));
    let mut tar = tar::Archive::new(archive);
    let entries = tar.entries().map_err(|e| not_image(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_image(e.to_string()))?;
        let is_index = entry
            .path()
            .is_ok_and(|p| p.as_os_str() == "index.json" || p.as_os_str() == "./index.json");
        if !is_index {
            continue;
        }
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut entry, 1 << 20), &mut text)
            .map_err(|e| not_image(e.to_string()))?;
        let index: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| not_image(format!("index.json: {e}")))?;
        return index["manifests"][0]["digest"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| not_image("index.json names no manifest".to_string()));
    }
    Err(not_image("no index.json".to_string()))
}

/// The `org.opencontainers.image.*` annotations of the manifest (copied into the
/// config's labels, where `docker inspect` and `skopeo inspect` show them).
fn annotations(spec: &ImageSpec) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(oci::ANNOTATION_TITLE.to_string(), spec.workflow.clone());
    a.insert(
        oci::ANNOTATION_DESCRIPTION.to_string(),
        format!(
            "agentd workflow `{}` (program {}), compiled by agentd {}",
            spec.workflow,
            spec.program_hash,
            env!("CARGO_PKG_VERSION")
        ),
    );
    if let Some((_, tag)) = spec.reference.rsplit_once(':') {
        a.insert(oci::ANNOTATION_VERSION.to_string(), tag.to_string());
    }
    a.insert(oci::ANNOTATION_REF_NAME.to_string(), spec.reference.clone());
    a.insert(
        oci::ANNOTATION_SOURCE.to_string(),
        env!("CARGO_PKG_REPOSITORY").to_string(),
    );
    a.insert(
        oci::ANNOTATION_BASE_IMAGE_NAME.to_string(),
        "scratch".to_string(),
    );
    if let Some(epoch) = spec.epoch {
        a.insert(oci::ANNOTATION_CREATED.to_string(), super::rfc3339(epoch));
    }
    a.insert(label::WORKFLOW.to_string(), spec.workflow.clone());
    a.insert(
        label::WORKFLOW_SHA256.to_string(),
        spec.workflow_sha256.clone(),
    );
    a.insert(
        label::COMPILER_VERSION.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec {
            reference: "hello:1".into(),
            bin_name: "hello".into(),
            workflow: "hello".into(),
            workflow_sha256: "ab".repeat(32),
            program_hash: "cd".repeat(32),
            capabilities: vec!["data".into()],
            serves_http: false,
            ca_bundle: None,
            sbom: None,
            epoch: None,
        }
    }

    #[test]
    fn references_get_latest_and_bad_ones_are_refused() {
        assert_eq!(
            normalize_reference("hello").ok().as_deref(),
            Some("hello:latest")
        );
        assert_eq!(
            normalize_reference("registry.example:5000/team/hello:v1.2")
                .ok()
                .as_deref(),
            Some("registry.example:5000/team/hello:v1.2")
        );
        assert_eq!(
            normalize_reference("localhost/hello").ok().as_deref(),
            Some("localhost/hello:latest")
        );
        for bad in [
            "",
            "Hello:1",
            "hello:",
            "hello:-x",
            "a//b",
            "hello:t a",
            "-x",
        ] {
            assert!(normalize_reference(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_archive_and_digest() {
        let a = build(&spec(), b"\x7fELF binary".to_vec()).expect("image");
        let b = build(&spec(), b"\x7fELF binary".to_vec()).expect("image");
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.archive, b.archive);
        let c = build(&spec(), b"\x7fELF other".to_vec()).expect("image");
        assert_ne!(a.manifest_digest, c.manifest_digest);
        assert_eq!(manifest_digest_of(&a.archive).ok(), Some(a.manifest_digest));
        assert!(manifest_digest_of(b"not a tar at all").is_err());
    }

    #[test]
    fn layer_lists_parents_first_with_fixed_owners_and_times() {
        let mut s = spec();
        s.ca_bundle = Some(b"-----BEGIN CERTIFICATE-----\n".to_vec());
        let fs = rootfs(&s, b"bin".to_vec());
        let layer = tar_of(fs.iter().map(|(p, e)| (p.clone(), e)), 7).expect("tar");
        let mut archive = tar::Archive::new(layer.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let h = entry.header();
            assert_eq!(h.mtime().ok(), Some(7));
            let path = entry.path().expect("path").display().to_string();
            let path = path.trim_end_matches('/').to_string();
            if let Some((parent, _)) = path.rsplit_once('/') {
                assert!(seen.contains(&parent.to_string()), "{path} before {parent}");
            }
            if path == "tmp" {
                assert_eq!(h.mode().ok(), Some(0o1777));
            }
            if path == format!("home/{USER}") {
                assert_eq!(h.uid().ok(), Some(UID));
            }
            seen.push(path);
        }
        assert!(seen.contains(&CA_PATH.to_string()));
        assert!(seen.contains(&"usr/local/bin/hello".to_string()));
    }
}
