//! `[policy.rego]` at build time: the policy text found (`inline`, or `file` read
//! now — a built binary never reads it), `data` turned into JSON, and the whole
//! compiled with regorus, the interpreter the binary will run, so that a policy
//! or query that does not compile is a `check`/`build` error with a span instead
//! of a binary that denies everything.
//!
//! Owns the resolution ([`resolve`]) that both the validator (which reports each
//! [`RegoProblem`] as a diagnostic, in `validate/policy.rs`) and IR lowering
//! (which bakes the resulting [`RegoIr`]) use, so the two cannot disagree. Text
//! that parses as Rego v1 is v1; text that only parses as v0 (the syntax of
//! dialect 1's regorus 0.3) is baked as v0. Never evaluates the policy against
//! real input and never panics on any text.

use std::path::{Path, PathBuf};

use crate::model::RegoPolicy;

/// The default `query`.
pub const DEFAULT_QUERY: &str = "data.agent.allow";

/// A `[policy.rego]` ready to bake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoIr {
    /// `inline`, or the `file` as written.
    pub origin: String,
    /// The policy text.
    pub source: String,
    /// `data` as JSON text (`{}` without `data`).
    pub data: String,
    /// The query.
    pub query: String,
    /// The text is Rego v0 (it does not parse as v1).
    pub v0: bool,
}

/// Why a `[policy.rego]` block cannot be baked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegoProblem {
    /// Both `inline` and `file`.
    Conflict,
    /// Neither `inline` nor `file`.
    Missing,
    /// `file` could not be read from any candidate path.
    Unreadable {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
        /// The last error.
        error: String,
    },
    /// `data` is not a table.
    DataNotTable {
        /// The TOML type found.
        found: &'static str,
    },
    /// The policy text does not compile.
    Syntax {
        /// Where the text came from: `None` for `inline`, else the file read.
        file: Option<PathBuf>,
        /// regorus's message (first line).
        message: String,
        /// Byte offset of the error in the policy text, when regorus gave one.
        offset: Option<usize>,
    },
    /// The query does not parse.
    Query {
        /// regorus's message.
        message: String,
    },
}

/// The paths `file` may name: absolute as is; relative against the workflow's
/// directory, then the working directory (as `output_schema`).
pub fn candidates(file: &str, base_dir: &Path, cwd: &Path) -> Vec<PathBuf> {
    let path = Path::new(file);
    if path.is_absolute() {
        return vec![path.to_path_buf()];
    }
    let mut out = vec![base_dir.join(path)];
    let from_cwd = if cwd.as_os_str().is_empty() {
        std::env::current_dir().map(|c| c.join(path)).ok()
    } else {
        Some(cwd.join(path))
    };
    if let Some(c) = from_cwd.filter(|c| !out.contains(c)) {
        out.push(c);
    }
    out
}

/// Policy files are a few pages of rules; refuse anything absurd before reading it.
const MAX_REGO_FILE_BYTES: u64 = 1024 * 1024;

/// Read `file` from the first candidate that works.
///
/// # Errors
///
/// [`RegoProblem::Unreadable`] with every path tried.
pub fn read_file(
    file: &str,
    base_dir: &Path,
    cwd: &Path,
) -> Result<(PathBuf, String), RegoProblem> {
    let tried = candidates(file, base_dir, cwd);
    let mut error = String::from("not found");
    for c in &tried {
        match read_capped(c) {
            Ok(text) => return Ok((c.clone(), text)),
            Err(e) => error = e,
        }
    }
    Err(RegoProblem::Unreadable { tried, error })
}

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_REGO_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_REGO_FILE_BYTES {
        return Err(format!("larger than {MAX_REGO_FILE_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

/// Resolve and compile a `[policy.rego]` block.
///
/// # Errors
///
/// The first [`RegoProblem`] found, in the order of the variants.
pub fn resolve(rego: &RegoPolicy, base_dir: &Path, cwd: &Path) -> Result<RegoIr, RegoProblem> {
    let (origin, source, file) = match (&rego.inline, &rego.file) {
        (Some(_), Some(_)) => return Err(RegoProblem::Conflict),
        (None, None) => return Err(RegoProblem::Missing),
        (Some(text), None) => ("inline".to_owned(), text.clone(), None),
        (None, Some(file)) => {
            let (path, text) = read_file(file, base_dir, cwd)?;
            (file.clone(), text, Some(path))
        }
    };
    let data = match &rego.data {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(toml::Value::Table(t)) => toml_to_json(&toml::Value::Table(t.clone())),
        Some(other) => {
            return Err(RegoProblem::DataNotTable {
                found: other.type_str(),
            });
        }
    };
    let query = rego
        .query
        .clone()
        .unwrap_or_else(|| DEFAULT_QUERY.to_owned());
    let v0 = compile(&origin, &source, &data, &query).map_err(|e| match e {
        CompileError::Policy { message, offset } => RegoProblem::Syntax {
            file,
            message,
            offset,
        },
        CompileError::Query { message } => RegoProblem::Query { message },
    })?;
    Ok(RegoIr {
        origin,
        source,
        data: data.to_string(),
        query,
        v0,
    })
}

enum CompileError {
    Policy {
        message: String,
        offset: Option<usize>,
    },
    Query {
        message: String,
    },
}

/// Compile as v1, else v0; then parse the query. `Ok(true)` means v0.
fn compile(
    origin: &str,
    source: &str,
    data: &serde_json::Value,
    query: &str,
) -> Result<bool, CompileError> {
    let attempt = |v0: bool| {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(v0);
        engine
            .add_policy(origin.to_owned(), source.to_owned())
            .map(|_| engine)
    };
    let (mut engine, v0) = match attempt(false) {
        Ok(engine) => (engine, false),
        Err(v1_error) => match attempt(true) {
            Ok(engine) => (engine, true),
            Err(_) => {
                let text = v1_error.to_string();
                return Err(CompileError::Policy {
                    offset: error_offset(&text, source),
                    message: error_message(&text),
                });
            }
        },
    };
    // `data` came from TOML, so it is an object; regorus still gets its say.
    if let Err(e) = engine.add_data(regorus::Value::from(data.clone())) {
        return Err(CompileError::Policy {
            message: format!("`data` is not usable: {e}"),
            offset: None,
        });
    }
    // Evaluating once with a neutral input checks the query parses, and that the
    // modules link (unknown functions, conflicting rules); an evaluation error that
    // depends on the input is the run's business, not the build's.
    engine.set_input(regorus::Value::from(
        serde_json::json!({"tool": "", "args": {}}),
    ));
    if let Err(e) = engine.eval_query(query.to_owned(), false) {
        let text = e.to_string();
        if text.contains("<query.rego>") {
            return Err(CompileError::Query {
                message: error_message(&text),
            });
        }
        if let Some(offset) = located_in(&text, origin).and_then(|(l, c)| offset_of(source, l, c)) {
            return Err(CompileError::Policy {
                message: error_message(&text),
                offset: Some(offset),
            });
        }
    }
    Ok(v0)
}

/// The `error: ...` line of a regorus message (its first line when there is none).
fn error_message(text: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("does not compile")
        .to_owned()
}

/// The line and column of a regorus message's `--> FILE:L:C` when FILE is `origin`.
fn located_in(text: &str, origin: &str) -> Option<(usize, usize)> {
    let at = text.lines().find_map(|l| l.trim().strip_prefix("--> "))?;
    let rest = at.strip_prefix(origin)?.strip_prefix(':')?;
    let (line, col) = rest.split_once(':')?;
    Some((line.trim().parse().ok()?, col.trim().parse().ok()?))
}

fn error_offset(text: &str, source: &str) -> Option<usize> {
    let at = text.lines().find_map(|l| l.trim().strip_prefix("--> "))?;
    // FILE may itself contain ':'; the last two fields are line and column.
    let mut parts = at.rsplitn(3, ':');
    let col = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    offset_of(source, line, col)
}

/// Byte offset of 1-based `line`, `col` (columns counted in characters) in `text`.
fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut start = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let within = l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(l.trim_end_matches('\n').len(), |(b, _)| b);
            return Some(start + within);
        }
        start += l.len();
    }
    // An error at end of input points just past the text.
    (line > 0).then_some(text.len())
}

/// A TOML value as JSON (datetimes become their TOML text).
pub fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| J::String(f.to_string()), J::Number)
        }
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Where a byte `offset` of an `inline` string's value lands in the TOML source,
/// given the span of the whole string literal (`value_span`). Exact when the
/// literal's body is the value verbatim (literal strings, and basic strings without
/// escapes); otherwise `None`, and the caller points at the whole literal.
pub fn inline_offset(
    toml_text: &str,
    value_span: std::ops::Range<usize>,
    value: &str,
    offset: usize,
) -> Option<usize> {
    let raw = toml_text.get(value_span.clone())?;
    let delim = ["'''", "\"\"\"", "'", "\""]
        .into_iter()
        .find(|d| raw.starts_with(d) && raw.ends_with(d) && raw.len() >= 2 * d.len())?;
    let mut body_start = value_span.start + delim.len();
    let mut body = &raw[delim.len()..raw.len() - delim.len()];
    // A newline right after the opening of a multi-line string is not part of the value.
    if delim.len() == 3 {
        for nl in ["\r\n", "\n"] {
            if let Some(rest) = body.strip_prefix(nl) {
                body = rest;
                body_start += nl.len();
                break;
            }
        }
    }
    (body == value && offset <= body.len()).then_some(body_start + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(inline: Option<&str>, file: Option<&str>) -> RegoPolicy {
        RegoPolicy {
            inline: inline.map(str::to_owned),
            file: file.map(str::to_owned),
            data: None,
            query: None,
        }
    }

    fn here() -> (PathBuf, PathBuf) {
        (PathBuf::from("/nonexistent"), PathBuf::from("/nonexistent"))
    }

    #[test]
    fn v1_text_is_v1_and_dialect_one_v0_text_is_v0() {
        let (b, c) = here();
        let v1 = resolve(&model(Some("package agent\nallow if true\n"), None), &b, &c);
        assert_eq!(v1.map(|r| r.v0), Ok(false));
        let v0 = resolve(
            &model(Some("package agent\nallow { true }\n"), None),
            &b,
            &c,
        );
        assert_eq!(v0.map(|r| r.v0), Ok(true));
    }

    #[test]
    fn a_syntax_error_carries_the_offset_of_its_line_and_column() {
        let (b, c) = here();
        let text = "package agent\nallow if {\n  input.tool ==\n}\n";
        match resolve(&model(Some(text), None), &b, &c) {
            Err(RegoProblem::Syntax {
                file: None,
                message,
                offset: Some(offset),
            }) => {
                assert_eq!(&text[offset..offset + 1], "}", "{message}");
                assert!(message.contains("expecting expression"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sources_data_and_query_problems_are_told_apart() {
        let (b, c) = here();
        assert_eq!(
            resolve(&model(Some("package a"), Some("p.rego")), &b, &c),
            Err(RegoProblem::Conflict)
        );
        assert_eq!(
            resolve(&model(None, None), &b, &c),
            Err(RegoProblem::Missing)
        );
        assert!(matches!(
            resolve(&model(None, Some("missing.rego")), &b, Path::new("/nonexistent-cwd")),
            Err(RegoProblem::Unreadable { tried, .. }) if tried.len() == 2
        ));
        let mut m = model(Some("package agent\nallow := true\n"), None);
        m.data = Some(toml::Value::Integer(3));
        assert_eq!(
            resolve(&m, &b, &c),
            Err(RegoProblem::DataNotTable { found: "integer" })
        );
        m.data = None;
        m.query = Some("data.agent.allow ==".to_owned());
        assert!(matches!(
            resolve(&m, &b, &c),
            Err(RegoProblem::Query { .. })
        ));
    }

    #[test]
    fn inline_offsets_map_into_literal_and_plain_strings_only() {
        let toml = "inline = '''\nab\ncd'''\n";
        let span = 9..toml.len() - 1;
        assert_eq!(inline_offset(toml, span.clone(), "ab\ncd", 3), Some(16));
        assert_eq!(&toml[16..17], "c");
        let escaped = "inline = \"a\\nb\"\n";
        assert_eq!(
            inline_offset(escaped, 9..escaped.len() - 1, "a\nb", 2),
            None
        );
    }
}
