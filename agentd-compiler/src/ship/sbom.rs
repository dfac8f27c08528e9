//! `agentd build --sbom FILE`: a CycloneDX 1.5 JSON bill of materials of exactly the
//! crates linked into the binary.
//!
//! Read from the generated crate's own resolved graph (`cargo metadata` on its
//! manifest, for the target the binary is built for, with the runtime features the
//! workflow enabled), not from the compiler's workspace: walking normal dependencies
//! only from the generated package leaves out build scripts, dev-dependencies and
//! proc-macros, none of which is linked. Licenses come from each package's manifest,
//! checksums from the generated crate's `Cargo.lock` (the SHA-256 of the `.crate`
//! file). No time stamp unless `SOURCE_DATE_EPOCH` is set, so the same build gives
//! the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::ShipError;

/// One package of the resolved graph that is linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub version: String,
    /// SPDX expression from the manifest's `license`, if any.
    pub license: Option<String>,
    /// `registry+…`, `git+…`, or `None` for a path dependency (the runtime).
    pub source: Option<String>,
    /// Lockfile checksum (hex SHA-256 of the `.crate` archive), registry packages only.
    pub checksum: Option<String>,
    /// Features enabled in this build (sorted).
    pub features: Vec<String>,
    /// `bom-ref`s of the linked packages it depends on (sorted).
    pub depends_on: Vec<String>,
}

impl Component {
    /// The package URL, also used as the `bom-ref`.
    pub fn purl(&self) -> String {
        format!("pkg:cargo/{}@{}", self.name, self.version)
    }
}

/// What the SBOM describes besides its components.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The binary's file name.
    pub name: String,
    /// Hex SHA-256 of the binary.
    pub sha256: String,
    /// The root workflow's `name`.
    pub workflow: String,
    /// Runtime features (capabilities) compiled in.
    pub capabilities: Vec<String>,
}

/// Resolve the linked packages of the generated crate at `manifest` (with
/// `Cargo.lock` beside it) for `target` (a triple, or `None` for the host).
pub fn resolve(manifest: &Path, target: Option<&str>) -> Result<Vec<Component>, ShipError> {
    let run = |offline: bool| -> Result<std::process::Output, ShipError> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(manifest);
        if let Some(t) = target {
            cmd.args(["--filter-platform", t]);
        }
        if offline {
            cmd.arg("--offline");
        }
        for var in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            cmd.env_remove(var);
        }
        cmd.output()
            .map_err(|e| ShipError::Metadata(format!("could not run `{cargo} metadata`: {e}")))
    };
    let mut out = run(true)?;
    if !out.status.success() {
        out = run(false)?;
    }
    if !out.status.success() {
        return Err(ShipError::Metadata(format!(
            "`cargo metadata` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let metadata: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| ShipError::Metadata(format!("`cargo metadata` printed invalid JSON: {e}")))?;
    let lock_path = manifest.with_file_name("Cargo.lock");
    let lock_text =
        std::fs::read_to_string(&lock_path).map_err(super::io("cannot read", &lock_path))?;
    let checksums = lock_checksums(&lock_text).map_err(|message| ShipError::Lockfile {
        path: lock_path.clone(),
        message,
    })?;
    linked_components(&metadata, &checksums)
}

/// `(name, version) → checksum` from a `Cargo.lock`.
pub fn lock_checksums(text: &str) -> Result<BTreeMap<(String, String), String>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    let packages = doc
        .get("package")
        .and_then(toml::Value::as_array)
        .ok_or("no [[package]] entries")?;
    for p in packages {
        let field = |k: &str| p.get(k).and_then(toml::Value::as_str).map(str::to_string);
        if let (Some(name), Some(version), Some(sum)) =
            (field("name"), field("version"), field("checksum"))
        {
            out.insert((name, version), sum);
        }
    }
    Ok(out)
}

fn meta_err(what: &str) -> ShipError {
    ShipError::Metadata(format!("`cargo metadata` output has no {what}"))
}

/// Walk `metadata`'s resolve graph from its root along normal (linked) dependencies.
pub fn linked_components(
    metadata: &Value,
    checksums: &BTreeMap<(String, String), String>,
) -> Result<Vec<Component>, ShipError> {
    let packages: BTreeMap<&str, &Value> = metadata["packages"]
        .as_array()
        .ok_or_else(|| meta_err("packages"))?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let resolve = &metadata["resolve"];
    let root = resolve["root"]
        .as_str()
        .ok_or_else(|| meta_err("resolve.root (is the manifest a package?)"))?;
    let nodes: BTreeMap<&str, &Value> = resolve["nodes"]
        .as_array()
        .ok_or_else(|| meta_err("resolve.nodes"))?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let is_proc_macro = |id: &str| {
        packages.get(id).is_some_and(|p| {
            p["targets"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "proc-macro"))
                })
            })
        })
    };
    // Normal-kind edges to packages that are linked (not proc-macros).
    let linked_deps = |id: &str| -> Vec<String> {
        let Some(node) = nodes.get(id) else {
            return Vec::new();
        };
        node["deps"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter(|d| {
                        d["dep_kinds"]
                            .as_array()
                            .is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()))
                    })
                    .filter_map(|d| d["pkg"].as_str())
                    .filter(|pkg| !is_proc_macro(pkg))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen = BTreeSet::new();
    let mut stack = linked_deps(root);
    while let Some(id) = stack.pop() {
        if seen.insert(id.clone()) {
            stack.extend(linked_deps(&id));
        }
    }
    let bom_ref = |id: &str| -> Option<String> {
        let p = packages.get(id)?;
        Some(format!(
            "pkg:cargo/{}@{}",
            p["name"].as_str()?,
            p["version"].as_str()?
        ))
    };
    let mut out = Vec::new();
    for id in &seen {
        let p = packages.get(id.as_str()).ok_or_else(|| {
            ShipError::Metadata(format!("package `{id}` is in the graph but not listed"))
        })?;
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let version = p["version"].as_str().unwrap_or_default().to_string();
        let source = p["source"].as_str().map(str::to_string);
        let checksum = checksums.get(&(name.clone(), version.clone())).cloned();
        let mut features: Vec<String> = nodes
            .get(id.as_str())
            .and_then(|n| n["features"].as_array())
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        features.sort();
        let mut depends_on: Vec<String> =
            linked_deps(id).iter().filter_map(|d| bom_ref(d)).collect();
        depends_on.sort();
        depends_on.dedup();
        out.push(Component {
            name,
            version,
            license: p["license"].as_str().map(spdx_expression),
            source,
            checksum,
            features,
            depends_on,
        });
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(out)
}

/// Old manifests write `MIT/Apache-2.0`; SPDX spells it `MIT OR Apache-2.0`.
fn spdx_expression(license: &str) -> String {
    license
        .split('/')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The CycloneDX 1.5 document for `subject` linking `components`. Top-level
/// components are the generated crate's direct dependencies.
pub fn document(subject: &Subject, components: &[Component], epoch: Option<u64>) -> Value {
    let root_ref = format!("urn:agentd:binary:{}:{}", subject.name, subject.sha256);
    let comps: Vec<Value> = components
        .iter()
        .map(|c| {
            let mut v = json!({
                "type": "library",
                "bom-ref": c.purl(),
                "name": c.name,
                "version": c.version,
                "purl": c.purl(),
                "scope": "required",
                "properties": [
                    { "name": "agentd:cargo:features", "value": c.features.join(",") },
                    { "name": "agentd:cargo:source", "value": c.source.as_deref().unwrap_or("path") },
                ],
            });
            if let Some(l) = &c.license {
                v["licenses"] = json!([{ "expression": l }]);
            }
            if let Some(sum) = &c.checksum {
                v["hashes"] = json!([{ "alg": "SHA-256", "content": sum }]);
            }
            v
        })
        .collect();
    // Direct dependencies of the binary: components nothing else depends on is not
    // the same thing, so name the runtime (and a handler crate) explicitly: every
    // path dependency is the generated crate's own.
    let direct: Vec<String> = components
        .iter()
        .filter(|c| c.source.is_none())
        .map(Component::purl)
        .collect();
    let mut deps = vec![json!({ "ref": root_ref, "dependsOn": direct })];
    deps.extend(
        components
            .iter()
            .map(|c| json!({ "ref": c.purl(), "dependsOn": c.depends_on })),
    );
    let mut metadata = json!({
        "tools": { "components": [{
            "type": "application",
            "name": "agentd",
            "version": env!("CARGO_PKG_VERSION"),
        }]},
        "component": {
            "type": "application",
            "bom-ref": root_ref,
            "name": subject.name,
            "description": format!("agentd workflow `{}`", subject.workflow),
            "hashes": [{ "alg": "SHA-256", "content": subject.sha256 }],
            "properties": [
                { "name": "agentd:workflow", "value": subject.workflow },
                { "name": "agentd:capabilities", "value": subject.capabilities.join(",") },
            ],
        },
    });
    if let Some(epoch) = epoch {
        metadata["timestamp"] = json!(super::rfc3339(epoch));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(&subject.sha256),
        "version": 1,
        "metadata": metadata,
        "components": comps,
        "dependencies": deps,
    })
}

/// A UUID URN derived from the binary's digest: stable for the same binary (so the
/// SBOM is reproducible) and different for every other.
fn serial_number(sha256_hex: &str) -> String {
    let h = super::sha256_hex(format!("agentd-sbom:{sha256_hex}").as_bytes());
    let mut b: Vec<char> = h.chars().take(32).collect();
    b[12] = '5'; // version nibble (name-based)
    b[16] = match b[16] {
        '0' | '4' | '8' | 'c' => '8',
        '1' | '5' | '9' | 'd' => '9',
        '2' | '6' | 'a' | 'e' => 'a',
        _ => 'b',
    }; // RFC 4122 variant
    let s: String = b.into_iter().collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Value {
        let dep = |pkg: &str, kind: Value| json!({"name": pkg, "pkg": pkg, "dep_kinds": [{"kind": kind, "target": null}]});
        let pkg = |id: &str, license: Value, source: Value, kind: &str| {
            json!({"id": id, "name": id, "version": "1.0.0", "license": license, "source": source,
                   "targets": [{"kind": [kind]}]})
        };
        let reg = json!("registry+https://github.com/rust-lang/crates.io-index");
        json!({
            "packages": [
                pkg("app", Value::Null, Value::Null, "bin"),
                pkg("runtime", json!("MIT OR Apache-2.0"), Value::Null, "lib"),
                pkg("linked", json!("MIT/Apache-2.0"), reg.clone(), "lib"),
                pkg("derive", json!("MIT"), reg.clone(), "proc-macro"),
                pkg("buildonly", json!("MIT"), reg.clone(), "lib"),
                pkg("devonly", json!("MIT"), reg, "lib"),
            ],
            "resolve": {
                "root": "app",
                "nodes": [
                    {"id": "app", "deps": [dep("runtime", Value::Null), dep("devonly", json!("dev"))], "features": []},
                    {"id": "runtime", "deps": [dep("linked", Value::Null), dep("derive", Value::Null), dep("buildonly", json!("build"))], "features": ["http", "default"]},
                    {"id": "linked", "deps": [], "features": ["std"]},
                    {"id": "derive", "deps": [dep("linked", Value::Null)], "features": []},
                    {"id": "buildonly", "deps": [], "features": []},
                    {"id": "devonly", "deps": [], "features": []},
                ]
            }
        })
    }

    #[test]
    fn only_normal_non_proc_macro_dependencies_are_linked() {
        let mut sums = BTreeMap::new();
        sums.insert(("linked".to_string(), "1.0.0".to_string()), "ff".repeat(32));
        let comps = linked_components(&metadata(), &sums).expect("components");
        let names: Vec<&str> = comps.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["linked", "runtime"]);
        assert_eq!(comps[0].license.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(comps[0].checksum.as_deref(), Some("ff".repeat(32).as_str()));
        assert_eq!(comps[1].features, ["default", "http"]);
        assert_eq!(comps[1].depends_on, ["pkg:cargo/linked@1.0.0"]);
        assert_eq!(comps[1].checksum, None);
    }

    #[test]
    fn metadata_without_a_resolve_graph_is_an_error_not_a_panic() {
        let sums = BTreeMap::new();
        for bad in [
            json!({}),
            json!({"packages": []}),
            json!({"packages": [], "resolve": null}),
        ] {
            assert!(linked_components(&bad, &sums).is_err(), "{bad}");
        }
    }

    #[test]
    fn serial_numbers_are_stable_rfc4122_urns() {
        let a = serial_number(&"00".repeat(32));
        assert_eq!(a, serial_number(&"00".repeat(32)));
        assert_ne!(a, serial_number(&"01".repeat(32)));
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a["urn:uuid:".len() + 14..][..1], "5");
    }
}
