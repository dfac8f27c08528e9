//! `agentd build --provenance-out FILE`: an in-toto Statement v1 with a SLSA
//! Provenance v1 predicate for the binary (and the image), signed as a DSSE envelope
//! with the workflow Ed25519 key when `--key` is given; and its check,
//! `agentd verify --provenance FILE`.
//!
//! The statement names the workflow files and their SHA-256, the compiler version,
//! the runtime features, the target and the builder (`--builder-id`, else a local
//! URN). Its first subject is the binary, whose digest the binary's own
//! `--provenance` prints as `binary_sha256`. Nothing here reads the clock: a time
//! appears only when `SOURCE_DATE_EPOCH` is set. Verification never trusts the
//! payload before its signature has been checked against the caller's key.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{Value, json};

use super::ShipError;
use crate::signing;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA Provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The build type: what the external and internal parameters mean is documented there.
pub const BUILD_TYPE: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/docs/ci.md#provenance");
/// Builder id when neither `--builder-id` nor `AGENTD_BUILDER_ID` names one.
pub const LOCAL_BUILDER: &str = "urn:agentd:builder:local";

/// One workflow file compiled in.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: String,
    pub sha256: String,
}

/// Everything the statement records.
#[derive(Debug, Clone)]
pub struct BuildFacts {
    /// The binary's file name and hex SHA-256.
    pub binary: (String, String),
    /// The image reference and manifest digest (`sha256:…`), when `--image` was given.
    pub image: Option<(String, String)>,
    /// The SBOM's file name and hex SHA-256, when `--sbom` was given.
    pub sbom: Option<(String, String)>,
    pub workflow: String,
    pub sources: Vec<Source>,
    pub program_hash: String,
    pub features: Vec<String>,
    pub target: String,
    pub profile: String,
    pub linking: String,
    /// Fingerprint of the key that verified the workflow files at build time.
    pub workflow_signer: Option<String>,
    pub builder_id: String,
    pub epoch: Option<u64>,
}

/// The in-toto statement for `facts`.
pub fn statement(facts: &BuildFacts) -> Value {
    let mut subject = vec![json!({
        "name": facts.binary.0,
        "digest": { "sha256": facts.binary.1 },
    })];
    if let Some((reference, digest)) = &facts.image {
        subject.push(json!({
            "name": reference,
            "digest": { "sha256": digest.trim_start_matches("sha256:") },
        }));
    }
    let mut deps: Vec<Value> = facts
        .sources
        .iter()
        .map(|s| {
            json!({
                "uri": format!("file:{}", s.path),
                "name": s.path,
                "digest": { "sha256": s.sha256 },
            })
        })
        .collect();
    // The runtime and its feature-free core (ARCHITECTURE.md, "The core and the
    // facade"), released together with this compiler.
    for name in ["agentd-runtime", "agentd-core"] {
        deps.push(json!({
            "uri": format!("pkg:cargo/{name}@{}", env!("CARGO_PKG_VERSION")),
            "name": name,
        }));
    }
    let mut byproducts = Vec::new();
    if let Some((name, sha)) = &facts.sbom {
        byproducts.push(json!({
            "name": name,
            "digest": { "sha256": sha },
            "mediaType": "application/vnd.cyclonedx+json",
        }));
    }
    let mut metadata = json!({});
    if let Some(epoch) = facts.epoch {
        metadata["startedOn"] = json!(super::rfc3339(epoch));
        metadata["finishedOn"] = json!(super::rfc3339(epoch));
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "workflow": facts.sources.first().map(|s| s.path.as_str()).unwrap_or_default(),
                    "image": facts.image.as_ref().map(|(r, _)| r),
                    "profile": facts.profile,
                    "linking": facts.linking,
                },
                "internalParameters": {
                    "workflowName": facts.workflow,
                    "programHash": facts.program_hash,
                    "compilerVersion": env!("CARGO_PKG_VERSION"),
                    "runtimeFeatures": facts.features,
                    "target": facts.target,
                    "workflowSigner": facts.workflow_signer,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": facts.builder_id,
                    "version": { "agentd": env!("CARGO_PKG_VERSION") },
                },
                "metadata": metadata,
                "byproducts": byproducts,
            },
        },
    })
}

/// DSSE's pre-authentication encoding: what the signature covers.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope around `statement`, signed with `key`.
pub fn envelope(statement: &[u8], key: &SigningKey) -> Value {
    let sig: Signature = key.sign(&pae(PAYLOAD_TYPE, statement));
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": STANDARD.encode(statement),
        "signatures": [{
            "keyid": signing::fingerprint(&key.verifying_key()),
            "sig": STANDARD.encode(sig.to_bytes()),
        }],
    })
}

/// What `agentd verify --provenance` found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The statement (after its signature checked out, when signed).
    pub statement: Value,
    /// Fingerprint of the key whose signature verified, `None` for an unsigned statement.
    pub signer: Option<String>,
    /// `name → sha256` of every subject.
    pub subjects: Vec<(String, String)>,
}

fn bad(msg: impl Into<String>) -> ShipError {
    ShipError::Provenance(msg.into())
}

/// Check a provenance file: a DSSE envelope must carry a signature by `key` over its
/// payload (an unsigned statement is accepted only without `key`); the payload must
/// be an in-toto statement with a SLSA v1 predicate whose subjects have SHA-256
/// digests; `binary` (bytes) and `image_digest` (`sha256:…`), when given, must each
/// be one of the subjects.
pub fn verify(
    text: &[u8],
    key: Option<&VerifyingKey>,
    binary: Option<&[u8]>,
    image_digest: Option<&str>,
) -> Result<Verified, ShipError> {
    let doc: Value = serde_json::from_slice(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let (statement_bytes, signer) = if doc.get("payloadType").is_some() {
        if doc["payloadType"] != PAYLOAD_TYPE {
            return Err(bad(format!(
                "DSSE payloadType is {}, expected {PAYLOAD_TYPE}",
                doc["payloadType"]
            )));
        }
        let payload = STANDARD
            .decode(
                doc["payload"]
                    .as_str()
                    .ok_or_else(|| bad("DSSE envelope has no payload"))?,
            )
            .map_err(|e| bad(format!("DSSE payload is not base64: {e}")))?;
        let Some(key) = key else {
            return Err(bad(
                "the statement is signed: pass the public key with --pub KEY to check it",
            ));
        };
        let signed = pae(PAYLOAD_TYPE, &payload);
        let sigs = doc["signatures"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let ok = sigs.iter().any(|s| {
            s["sig"]
                .as_str()
                .and_then(|t| signing::decode_signature(t).ok())
                .is_some_and(|sig| key.verify_strict(&signed, &sig).is_ok())
        });
        if !ok {
            return Err(bad(format!(
                "no signature in the envelope verifies with key {} (the statement was changed after signing, or signed with another key)",
                signing::fingerprint(key)
            )));
        }
        (payload, Some(signing::fingerprint(key)))
    } else {
        if key.is_some() {
            return Err(bad(
                "the statement is not signed (no DSSE envelope), but a key was given",
            ));
        }
        (text.to_vec(), None)
    };
    let statement: Value = serde_json::from_slice(&statement_bytes)
        .map_err(|e| bad(format!("the statement is not JSON: {e}")))?;
    if statement["_type"] != STATEMENT_TYPE {
        return Err(bad(format!(
            "_type is {}, expected {STATEMENT_TYPE}",
            statement["_type"]
        )));
    }
    if statement["predicateType"] != PREDICATE_TYPE {
        return Err(bad(format!(
            "predicateType is {}, expected {PREDICATE_TYPE}",
            statement["predicateType"]
        )));
    }
    let subjects: Vec<(String, String)> = statement["subject"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap_or_default().to_string();
            let sha = s["digest"]["sha256"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (name, sha)
        })
        .collect();
    if subjects.is_empty()
        || subjects
            .iter()
            .any(|(_, d)| d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad(
            "every subject needs a sha256 digest, and there must be one",
        ));
    }
    if let Some(bytes) = binary {
        let sha = super::sha256_hex(bytes);
        if !subjects.iter().any(|(_, d)| d.eq_ignore_ascii_case(&sha)) {
            return Err(bad(format!(
                "the binary's sha256 {sha} is not a subject of the statement"
            )));
        }
    }
    if let Some(digest) = image_digest {
        let hex = digest.trim_start_matches("sha256:");
        if !subjects.iter().any(|(_, d)| d.eq_ignore_ascii_case(hex)) {
            return Err(bad(format!(
                "the image's manifest digest {digest} is not a subject of the statement"
            )));
        }
    }
    Ok(Verified {
        statement,
        signer,
        subjects,
    })
}

/// Load a PKCS#8 PEM private key for `--key`.
pub fn signing_key(path: &Path) -> Result<SigningKey, ShipError> {
    let pem = signing::read_key_file(path)?;
    Ok(signing::private_key_from_pem(&pem)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BuildFacts {
        BuildFacts {
            binary: ("hello".into(), "ab".repeat(32)),
            image: Some(("hello:1".into(), format!("sha256:{}", "cd".repeat(32)))),
            sbom: None,
            workflow: "hello".into(),
            sources: vec![Source {
                path: "workflows/hello.toml".into(),
                sha256: "ef".repeat(32),
            }],
            program_hash: "01".repeat(32),
            features: vec!["data".into()],
            target: "x86_64-unknown-linux-gnu".into(),
            profile: "release".into(),
            linking: "static".into(),
            workflow_signer: None,
            builder_id: LOCAL_BUILDER.into(),
            epoch: None,
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn pae_is_the_dsse_v1_encoding() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
    }

    #[test]
    fn a_signed_statement_verifies_and_any_change_to_it_does_not() {
        let bytes = super::super::canonical_bytes(statement(&facts()));
        let env = envelope(&bytes, &key(1));
        let text = serde_json::to_vec(&env).expect("json");
        let vk = key(1).verifying_key();
        let ok = verify(
            &text,
            Some(&vk),
            None,
            Some(&format!("sha256:{}", "cd".repeat(32))),
        )
        .expect("verifies");
        assert_eq!(ok.subjects.len(), 2);
        assert!(ok.signer.is_some());
        // Wrong key.
        let other = key(2).verifying_key();
        assert!(verify(&text, Some(&other), None, None).is_err());
        // Tampered payload: one subject digest changed.
        let tampered_stmt = String::from_utf8(bytes.clone())
            .expect("utf8")
            .replace(&"ab".repeat(32), &"ff".repeat(32));
        let mut tampered = env.clone();
        tampered["payload"] = json!(STANDARD.encode(tampered_stmt));
        let text = serde_json::to_vec(&tampered).expect("json");
        let err = verify(&text, Some(&vk), None, None).expect_err("tampered");
        assert!(err.to_string().contains("no signature"), "{err}");
        // Unsigned statement with a key, and signed one without.
        assert!(verify(&bytes, Some(&vk), None, None).is_err());
        assert!(verify(&serde_json::to_vec(&env).expect("json"), None, None, None).is_err());
    }

    #[test]
    fn the_binary_must_be_a_subject() {
        let bytes = super::super::canonical_bytes(statement(&facts()));
        let err = verify(&bytes, None, Some(b"not the binary"), None).expect_err("mismatch");
        assert!(err.to_string().contains("not a subject"), "{err}");
        for junk in [&b"{"[..], b"[]", br#"{"_type": "x"}"#] {
            assert!(verify(junk, None, None, None).is_err());
        }
    }
}
