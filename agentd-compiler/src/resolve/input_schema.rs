//! Route `input_schema` at build time: the JSON Schema file a route's decoded request
//! body must match, read, parsed and compiled here so that a missing, unreadable or
//! invalid schema is a build error (`input_schema_invalid`) and a built binary never
//! reads the file.
//!
//! Owns the one resolution rule used by both the validator and the lowering (relative
//! to the workflow file's directory, then the working directory; an absolute path as
//! written) and the compile check (the `jsonschema` crate, the same one the runtime's
//! `input-schema` feature links, with no remote or file `$ref` resolution). Never
//! reports: it returns why, and the validator turns that into a diagnostic.

use std::path::{Path, PathBuf};

/// Largest schema file read (a schema is configuration, not data).
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;

/// A route's schema, ready to bake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSchema {
    /// `input_schema` as written (named in the runtime's 400 replies' logs).
    pub path: String,
    /// The schema, re-serialised compactly.
    pub text: String,
}

/// The files tried for `p`, in order.
pub fn candidates(p: &str, base_dir: &Path, cwd: &Path) -> Vec<PathBuf> {
    let path = Path::new(p);
    if path.is_absolute() {
        return vec![path.to_path_buf()];
    }
    let mut out = vec![base_dir.join(path)];
    let from_cwd = cwd.join(path);
    if !out.contains(&from_cwd) {
        out.push(from_cwd);
    }
    out
}

/// Read, parse and compile `p`; `Err` says why it cannot be used.
pub fn resolve(p: &str, base_dir: &Path, cwd: &Path) -> Result<RouteSchema, String> {
    if p.trim().is_empty() {
        return Err("input_schema is empty".to_string());
    }
    let tried = candidates(p, base_dir, cwd);
    let Some((file, bytes)) = tried.iter().find_map(|c| read_capped(c).map(|b| (c, b))) else {
        let names: Vec<String> = tried.iter().map(|c| format!("`{}`", c.display())).collect();
        return Err(format!(
            "`{p}` is not a readable file (tried {})",
            names.join(" and ")
        ));
    };
    let bytes = bytes.map_err(|why| format!("`{}`: {why}", file.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not valid JSON: {e}", file.display()))?;
    jsonschema::validator_for(&value)
        .map_err(|e| format!("`{}` is not a valid JSON Schema: {e}", file.display()))?;
    Ok(RouteSchema {
        path: p.to_string(),
        text: value.to_string(),
    })
}

/// `None` when `path` cannot be opened (try the next candidate); `Some(Err)` when it
/// opens but cannot be used.
fn read_capped(path: &Path) -> Option<Result<Vec<u8>, String>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    // One byte past the cap tells "too large" from "exactly at the cap".
    Some(
        match file.take(MAX_SCHEMA_BYTES + 1).read_to_end(&mut bytes) {
            Ok(n) if n as u64 > MAX_SCHEMA_BYTES => Err(format!(
                "larger than the {MAX_SCHEMA_BYTES}-byte limit for a schema file"
            )),
            Ok(_) => Ok(bytes),
            Err(e) => Err(format!("cannot be read: {e}")),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> crate::test_support::TempDir {
        crate::test_support::temp_dir(&format!("input-schema-{name}"))
    }

    #[test]
    fn a_valid_schema_is_baked_compactly() {
        let d = dir("ok");
        std::fs::write(d.join("s.json"), "{\n  \"type\": \"object\"\n}\n").expect("write");
        let got = resolve("s.json", &d, Path::new("/nowhere")).expect("resolves");
        assert_eq!(got.text, r#"{"type":"object"}"#);
        assert_eq!(got.path, "s.json");
    }

    #[test]
    fn missing_invalid_json_and_invalid_schema_say_why() {
        let d = dir("bad");
        std::fs::write(d.join("nojson.json"), "{").expect("write");
        std::fs::write(d.join("noschema.json"), r#"{"type": 12}"#).expect("write");
        let cwd = Path::new("/nowhere");
        let missing = resolve("missing.json", &d, cwd).expect_err("missing");
        assert!(missing.contains("not a readable file"), "{missing}");
        let json = resolve("nojson.json", &d, cwd).expect_err("not json");
        assert!(json.contains("not valid JSON"), "{json}");
        let schema = resolve("noschema.json", &d, cwd).expect_err("not a schema");
        assert!(schema.contains("not a valid JSON Schema"), "{schema}");
        assert!(resolve(" ", &d, cwd).is_err());
    }

    #[test]
    fn a_remote_ref_is_refused_at_build_time() {
        let d = dir("ref");
        std::fs::write(
            d.join("r.json"),
            r#"{"$ref": "https://example.invalid/schema.json"}"#,
        )
        .expect("write");
        let why = resolve("r.json", &d, Path::new("/nowhere")).expect_err("no remote refs");
        assert!(why.contains("not a valid JSON Schema"), "{why}");
    }
}
