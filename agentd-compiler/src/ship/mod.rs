//! Shipping a built binary: the OCI image (`--image`), the CycloneDX SBOM (`--sbom`)
//! and the in-toto / SLSA provenance statement (`--provenance-out`, DSSE-signed with
//! `--key`), all written by `agentd build` after cargo has produced the binary.
//!
//! Owns everything between "the binary exists" and "CI can push it": reproducible
//! bytes (fixed mtimes, sorted entries and keys, no wall-clock time unless
//! `SOURCE_DATE_EPOCH` is set), and the checks `agentd verify --provenance` makes.
//! Must never touch the build itself: it reads the binary, the generated crate's
//! manifest and lockfile, and the files the user names. Its crates (`tar`,
//! `oci-spec`) are the compiler's; shipped binaries never link them.

pub mod image;
pub mod provenance;
pub mod sbom;

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::codegen::features::RuntimeFeature;

/// Why an image, SBOM or provenance statement could not be made or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// A file could not be read or written.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--tag` is not `NAME[:TAG]` with OCI-legal characters.
    #[error(
        "invalid image tag `{0}`: expected NAME[:TAG] (lower-case name, tag of [A-Za-z0-9_.-], at most 128 characters)"
    )]
    Tag(String),
    /// An image needs a statically linked Linux x86_64 binary: the image has no C library.
    #[error(
        "--image needs a static Linux x86_64 binary (the image is FROM scratch, with no C library); drop --dynamic"
    )]
    NotStatic,
    /// `SOURCE_DATE_EPOCH` is set but is not a non-negative integer.
    #[error("SOURCE_DATE_EPOCH `{0}` is not a number of seconds since 1970")]
    SourceDateEpoch(String),
    /// The OCI types refused a value (a bug in agentd if it ever happens).
    #[error("OCI image types: {0}")]
    Oci(String),
    /// `cargo metadata` on the generated crate failed or printed something unexpected.
    #[error("cannot resolve the generated crate's dependencies for the SBOM: {0}")]
    Metadata(String),
    /// The generated crate's `Cargo.lock` could not be parsed.
    #[error("cannot read `{}` for the SBOM's checksums: {message}", path.display())]
    Lockfile { path: PathBuf, message: String },
    /// The signing key could not be used.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// A provenance statement or envelope failed a check of `agentd verify --provenance`.
    #[error("{0}")]
    Provenance(String),
}

pub(crate) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ShipError + 'a {
    move |source| ShipError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `SOURCE_DATE_EPOCH` (the reproducible-builds convention): the one time stamp a
/// build may record. `None` when unset or empty, so outputs carry no time at all.
pub fn source_date_epoch() -> Result<Option<u64>, ShipError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ShipError::SourceDateEpoch(v)),
        _ => Ok(None),
    }
}

/// RFC 3339 UTC text for seconds since the epoch (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm), for dates from 1970 on.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// `value` with every object's keys in sorted order, whatever map serde_json was
/// built with: the OCI types hold `HashMap`s, and digests must not depend on hashing.
pub fn canonical(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Compact JSON bytes of `value` with sorted keys: what digests are taken over.
pub fn canonical_bytes(value: serde_json::Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail (its keys are strings).
    serde_json::to_vec(&canonical(value)).unwrap_or_default()
}

/// Pretty JSON with sorted keys and a final newline: what humans read (SBOM, statement).
pub fn pretty_bytes(value: serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(&canonical(value)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Write `bytes` to `path` through a temporary file and a rename, so a failed write
/// never leaves a truncated artifact where CI expects a complete one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ShipError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".agentd-tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("cannot write", path))
}

/// What to ship besides the binary (`agentd build` flags).
#[derive(Debug, Clone, Default)]
pub struct ShipOptions {
    /// `--image FILE`: the OCI image-layout tar to write.
    pub image: Option<PathBuf>,
    /// `--tag NAME[:TAG]` (default: the binary's name, `:latest`).
    pub tag: Option<String>,
    /// `--ca-bundle FILE`: the PEM bundle a TLS-calling workflow's image trusts
    /// (default: the build machine's system bundle).
    pub ca_bundle: Option<PathBuf>,
    /// `--sbom FILE`.
    pub sbom: Option<PathBuf>,
    /// `--provenance-out FILE`.
    pub provenance: Option<PathBuf>,
    /// `--key KEY`: PKCS#8 Ed25519 key the provenance is signed with (DSSE).
    pub key: Option<PathBuf>,
    /// `--builder-id URI` (env `AGENTD_BUILDER_ID`).
    pub builder_id: Option<String>,
}

impl ShipOptions {
    /// Whether anything is asked for beyond the binary.
    pub fn any(&self) -> bool {
        self.image.is_some() || self.sbom.is_some() || self.provenance.is_some()
    }
}

/// How the binary was built (for the statement and the image).
#[derive(Debug, Clone)]
pub struct BuiltBinary<'a> {
    pub path: &'a Path,
    /// The generated crate's `Cargo.toml`.
    pub manifest: &'a Path,
    pub generated: &'a crate::codegen::GeneratedCrate,
    /// The target triple it was built for (`None`: the host's, when unknown).
    pub target: Option<&'a str>,
    /// Statically linked (the only kind an image can hold: it has no C library).
    pub static_link: bool,
    pub profile: &'a str,
    /// The root workflow declares `[[http_routes]]`.
    pub serves_http: bool,
}

/// What [`ship`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Shipped {
    /// `sha256:…` of the binary.
    pub binary_digest: String,
    /// `(path, reference, manifest digest)` of the image.
    pub image: Option<(PathBuf, String, String)>,
    pub sbom: Option<PathBuf>,
    /// `(path, signed)`.
    pub provenance: Option<(PathBuf, bool)>,
    /// Things the user should know (no CA bundle found, bundle not needed, ...).
    pub notes: Vec<String>,
}

/// Runtime features that make outgoing TLS connections.
const TLS_FEATURES: &[RuntimeFeature] = &[
    RuntimeFeature::Http,
    RuntimeFeature::LlmRemote,
    RuntimeFeature::OtelTls,
    RuntimeFeature::SecretsOauth2,
    RuntimeFeature::McpHttp,
];
/// Where distributions keep the system CA bundle, tried in order.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];
/// The runtime refuses CA bundles over 4 MiB; so does the image.
const CA_CAP: u64 = 4 << 20;

/// Write the image, SBOM and provenance `opts` ask for, for the binary just built.
pub fn ship(built: &BuiltBinary<'_>, opts: &ShipOptions) -> Result<Shipped, ShipError> {
    let mut shipped = Shipped::default();
    let epoch = source_date_epoch()?;
    let binary = std::fs::read(built.path).map_err(io("cannot read", built.path))?;
    let binary_sha = sha256_hex(&binary);
    shipped.binary_digest = format!("sha256:{binary_sha}");
    let bin_name = built
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| crate::build::slug(&built.generated.workflow_name));
    let gen_ = built.generated;
    let features: Vec<String> = gen_.features.iter().map(|f| f.to_string()).collect();

    // The SBOM, needed for --sbom and placed in every image.
    let sbom_bytes = if opts.sbom.is_some() || opts.image.is_some() {
        let components = sbom::resolve(built.manifest, built.target)?;
        // The name inside the image, not the `-o` file name: the SBOM is part of the
        // image, whose digest must not depend on where the binary was written.
        let subject = sbom::Subject {
            name: crate::build::slug(&gen_.workflow_name),
            sha256: binary_sha.clone(),
            workflow: gen_.workflow_name.clone(),
            capabilities: features.clone(),
        };
        Some(pretty_bytes(sbom::document(&subject, &components, epoch)))
    } else {
        None
    };
    if let (Some(path), Some(bytes)) = (&opts.sbom, &sbom_bytes) {
        write_atomic(path, bytes)?;
        shipped.sbom = Some(path.clone());
    }

    let mut image_subject = None;
    if let Some(path) = &opts.image {
        if !built.static_link {
            return Err(ShipError::NotStatic);
        }
        let reference = image::normalize_reference(
            opts.tag
                .as_deref()
                .unwrap_or(&crate::build::slug(&gen_.workflow_name)),
        )?;
        let tls = gen_.features.iter().any(|f| TLS_FEATURES.contains(f));
        let ca_bundle = if tls {
            ca_bundle(opts.ca_bundle.as_deref(), &mut shipped.notes)?
        } else {
            if let Some(ca) = &opts.ca_bundle {
                shipped.notes.push(format!(
                    "`{}` not bundled: the workflow makes no TLS calls",
                    ca.display()
                ));
            }
            None
        };
        let spec = image::ImageSpec {
            reference: reference.clone(),
            bin_name: crate::build::slug(&gen_.workflow_name),
            workflow: gen_.workflow_name.clone(),
            workflow_sha256: gen_
                .sources
                .first()
                .map(|s| s.sha256.clone())
                .unwrap_or_default(),
            program_hash: gen_.source_hash.clone(),
            capabilities: features.clone(),
            serves_http: built.serves_http,
            ca_bundle,
            sbom: sbom_bytes.clone(),
            epoch,
        };
        let img = image::build(&spec, binary)?;
        write_atomic(path, &img.archive)?;
        image_subject = Some((reference.clone(), img.manifest_digest.clone()));
        shipped.image = Some((path.clone(), reference, img.manifest_digest));
    }

    if let Some(path) = &opts.provenance {
        let facts = provenance::BuildFacts {
            binary: (bin_name, binary_sha),
            image: image_subject,
            sbom: match (&opts.sbom, &sbom_bytes) {
                (Some(p), Some(b)) => Some((
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256_hex(b),
                )),
                _ => None,
            },
            workflow: gen_.workflow_name.clone(),
            sources: gen_
                .sources
                .iter()
                .map(|s| provenance::Source {
                    path: s.path.clone(),
                    sha256: s.sha256.clone(),
                })
                .collect(),
            program_hash: gen_.source_hash.clone(),
            features,
            target: built
                .target
                .map_or_else(|| "host".to_string(), str::to_string),
            profile: built.profile.to_string(),
            linking: if built.static_link {
                "static"
            } else {
                "dynamic"
            }
            .to_string(),
            workflow_signer: gen_.signer.clone(),
            builder_id: opts
                .builder_id
                .clone()
                .filter(|b| !b.trim().is_empty())
                .unwrap_or_else(|| provenance::LOCAL_BUILDER.to_string()),
            epoch,
        };
        let statement = canonical_bytes(provenance::statement(&facts));
        let (bytes, signed) = match &opts.key {
            Some(key) => {
                let key = provenance::signing_key(key)?;
                (pretty_bytes(provenance::envelope(&statement, &key)), true)
            }
            None => {
                let value: serde_json::Value =
                    serde_json::from_slice(&statement).unwrap_or_default();
                (pretty_bytes(value), false)
            }
        };
        write_atomic(path, &bytes)?;
        shipped.provenance = Some((path.clone(), signed));
    }
    Ok(shipped)
}

/// The CA bundle for a TLS-calling workflow's image: `explicit`, else the build
/// machine's system bundle, else none (the binary then trusts its built-in Mozilla
/// roots), said in a note.
fn ca_bundle(
    explicit: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, ShipError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match SYSTEM_CA_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
        {
            Some(p) => p.to_path_buf(),
            None => {
                notes.push(
                    "no CA bundle bundled (none given with --ca-bundle, none on this machine): \
                     the binary trusts its built-in Mozilla roots"
                        .to_string(),
                );
                return Ok(None);
            }
        },
    };
    use std::io::Read as _;
    let file = std::fs::File::open(&path).map_err(io("cannot read CA bundle", &path))?;
    let mut bytes = Vec::new();
    file.take(CA_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(io("cannot read CA bundle", &path))?;
    if bytes.len() as u64 > CA_CAP {
        return Err(ShipError::Io {
            what: "CA bundle is over 4 MiB, the runtime's cap:",
            path,
            source: std::io::Error::other("too large"),
        });
    }
    if !bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(ShipError::Io {
            what: "CA bundle holds no PEM certificate:",
            path,
            source: std::io::Error::other("no -----BEGIN CERTIFICATE----- block"),
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": 3}});
        let text = String::from_utf8(canonical_bytes(v)).unwrap_or_default();
        assert_eq!(text, r#"{"a":{"c":3,"z":[{"x":2,"y":1}]},"b":1}"#);
    }
}
