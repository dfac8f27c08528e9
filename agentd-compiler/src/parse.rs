//! Bytes → typed [`WorkflowDoc`](crate::model::WorkflowDoc), with diagnostics that point
//! at the offending bytes.
//!
//! One TOML parse feeds both the typed model and the span skeleton. Syntax errors are
//! all reported (the parser recovers); schema errors (unknown field, wrong type, unknown
//! node kind) are reported with the key narrowed down and the nearest valid name
//! suggested. This module never panics on any input.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::model::{WorkflowDoc, WrappedDoc};
use crate::source::{Seg, SourceFile, SpanTree};

/// Workflow files larger than this are refused before parsing.
pub const MAX_WORKFLOW_BYTES: usize = 8 * 1024 * 1024;

/// Bracket nesting deeper than this is refused before parsing, so hostile input cannot
/// exhaust the stack of the recursive TOML parser.
pub const MAX_NESTING: usize = 128;

/// A successfully parsed workflow file.
#[derive(Debug, Clone)]
pub struct ParsedWorkflow {
    pub source: SourceFile,
    pub doc: WorkflowDoc,
}

/// Outcome of parsing one file: the source is always returned (so diagnostics can be
/// rendered against it), the document only when it parsed.
#[derive(Debug)]
pub struct ParseResult {
    pub source: SourceFile,
    pub doc: Option<WorkflowDoc>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Read and parse a workflow file. I/O problems become diagnostics too.
pub fn parse_file(path: &Path) -> ParseResult {
    match std::fs::read(path) {
        Ok(bytes) => parse_bytes(path, &bytes),
        Err(e) => ParseResult {
            source: SourceFile::new(path, String::new()),
            doc: None,
            diagnostics: vec![
                Diagnostic::new(
                    Code::IoError,
                    path,
                    format!("cannot read `{}`: {e}", path.display()),
                )
                .with_help("check the path and the file's permissions"),
            ],
        },
    }
}

/// Parse workflow bytes that came from `path`.
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> ParseResult {
    if bytes.len() > MAX_WORKFLOW_BYTES {
        return ParseResult {
            source: SourceFile::new(path, String::new()),
            doc: None,
            diagnostics: vec![
                Diagnostic::new(
                    Code::FileTooLarge,
                    path,
                    format!(
                        "workflow file is {} bytes; the limit is {} bytes",
                        bytes.len(),
                        MAX_WORKFLOW_BYTES
                    ),
                )
                .with_help("a workflow is a small TOML document; is this the right file?"),
            ],
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(path, text),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let at = e.valid_up_to();
            let source = SourceFile::new(path, text);
            // The lossy text has the same prefix, so the offset is valid in it.
            let diag = Diagnostic::new(
                Code::NotUtf8,
                path,
                format!("workflow file is not valid UTF-8 (first bad byte at offset {at})"),
            )
            .with_span(Some(at..at + 1))
            .with_label("invalid UTF-8 here")
            .with_help("workflow files must be UTF-8 text");
            ParseResult {
                source,
                doc: None,
                diagnostics: vec![diag],
            }
        }
    }
}

/// Parse workflow text that came from `path`.
pub fn parse_str(path: &Path, text: &str) -> ParseResult {
    let mut source = SourceFile::new(path, text.to_string());
    if let Some(at) = too_deep(text) {
        return ParseResult {
            source,
            doc: None,
            diagnostics: vec![
                Diagnostic::new(
                    Code::TomlSyntax,
                    path,
                    format!(
                        "arrays or inline tables are nested more than {MAX_NESTING} levels deep"
                    ),
                )
                .with_span(Some(at..at + 1))
                .with_label("too deep")
                .with_help("flatten the structure; no workflow key needs deep nesting"),
            ],
        };
    }

    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let diagnostics = errors
            .iter()
            .map(|e| {
                Diagnostic::new(
                    Code::TomlSyntax,
                    path,
                    format!("invalid TOML: {}", e.message()),
                )
                .with_span(e.span())
                .with_help("fix the TOML syntax; see https://toml.io/en/v1.0.0")
            })
            .collect();
        return ParseResult {
            source,
            doc: None,
            diagnostics,
        };
    }
    source.tree = SpanTree::from_table(table.get_ref());

    let wrapped = table
        .get_ref()
        .iter()
        .any(|(k, _)| k.get_ref() == "workflows");
    let de = toml::de::Deserializer::from(table);
    let result = if wrapped {
        match WrappedDoc::deserialize(de) {
            Ok(w) if w.workflows.len() == 1 => {
                source.root = vec![Seg::key("workflows"), Seg::Index(0)];
                w.workflows
                    .into_iter()
                    .next()
                    .ok_or_else(|| unreachable_empty(path))
            }
            Ok(w) => Err(Diagnostic::new(
                Code::WorkflowCount,
                path,
                format!(
                    "expected exactly one [[workflows]] entry; found {}",
                    w.workflows.len()
                ),
            )
            .with_span(source.span_of(&[Seg::key("workflows")]))
            .with_help("put each workflow in its own file")),
            Err(e) => Err(schema_diagnostic(&source, &e)),
        }
    } else {
        WorkflowDoc::deserialize(de).map_err(|e| schema_diagnostic(&source, &e))
    };
    match result {
        Ok(doc) => ParseResult {
            source,
            doc: Some(doc),
            diagnostics: Vec::new(),
        },
        Err(d) => ParseResult {
            source,
            doc: None,
            diagnostics: vec![d],
        },
    }
}

fn unreachable_empty(path: &Path) -> Diagnostic {
    Diagnostic::new(
        Code::WorkflowCount,
        path,
        "expected exactly one [[workflows]] entry; found 0",
    )
}

/// Offset of the first bracket that nests deeper than [`MAX_NESTING`], ignoring
/// brackets inside strings and comments.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
                if triple {
                    i += 3;
                    while i < bytes.len() && bytes.get(i..i + 3) != Some(&[q, q, q][..]) {
                        if q == b'"' && bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    i += 2;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != q && bytes[i] != b'\n' {
                        if q == b'"' && bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Turn a serde/TOML schema error into a diagnostic with a precise span and a
/// suggestion.
fn schema_diagnostic(source: &SourceFile, err: &toml::de::Error) -> Diagnostic {
    let path = source.path();
    let msg = err.message().to_string();
    let span = err.span();
    let (code, narrowed, help) = classify(source, &msg, span.clone());
    let mut d = Diagnostic::new(code, path, msg).with_span(narrowed.or(span));
    if let Some(h) = help {
        d = d.with_help(h);
    }
    d
}

fn classify(
    source: &SourceFile,
    msg: &str,
    span: Option<Range<usize>>,
) -> (Code, Option<Range<usize>>, Option<String>) {
    let quoted = backticked(msg);
    let expected = msg
        .split_once("expected")
        .map(|(_, rest)| backticked(rest))
        .unwrap_or_default();
    if let Some(field) = msg.strip_prefix("unknown field ").and(quoted.first()) {
        let narrowed = span
            .as_ref()
            .and_then(|s| source.tree.find_key_within(field, s))
            .map(|e| e.key_span.clone());
        let help = match suggest(field, &expected) {
            Some(s) => format!("did you mean `{s}`?"),
            None if expected.is_empty() => {
                format!("remove `{field}`; this table takes no other keys")
            }
            None => format!(
                "remove `{field}`; valid keys here: {}",
                join_ticked(&expected)
            ),
        };
        return (Code::UnknownField, narrowed, Some(help));
    }
    if let Some(variant) = msg.strip_prefix("unknown variant ").and(quoted.first()) {
        let help = match suggest(variant, &expected) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected one of {}", join_ticked(&expected)),
        };
        // Point at the value that holds the bad name when we can find it.
        let narrowed = span.as_ref().and_then(|s| {
            ["type", "source", "provider", "on", "mode"]
                .iter()
                .filter_map(|k| source.tree.find_key_within(k, s))
                .find(|e| {
                    source
                        .text
                        .get(e.value_span.clone())
                        .is_some_and(|v| v.contains(variant.as_str()))
                })
                .map(|e| e.value_span.clone())
                .or_else(|| find_string_value(source, variant, s))
        });
        return (Code::UnknownVariant, narrowed, Some(help));
    }
    if let Some(field) = msg.strip_prefix("missing field ").and(quoted.first()) {
        return (
            Code::MissingField,
            None,
            Some(format!("add the required key `{field}`")),
        );
    }
    if msg.starts_with("invalid type") {
        return (Code::InvalidType, None, None);
    }
    if msg.starts_with("invalid value") || msg.starts_with("invalid length") {
        return (Code::InvalidValue, None, None);
    }
    if msg.starts_with("duplicate") {
        return (
            Code::TomlSyntax,
            None,
            Some("each key may appear once per table".into()),
        );
    }
    (Code::SchemaError, None, None)
}

/// Find the span of a string value equal to `value` inside `within`.
fn find_string_value(
    source: &SourceFile,
    value: &str,
    within: &Range<usize>,
) -> Option<Range<usize>> {
    let hay = source.text.get(within.clone())?;
    for quote in ['"', '\''] {
        let needle = format!("{quote}{value}{quote}");
        if let Some(i) = hay.find(&needle) {
            let start = within.start + i;
            return Some(start..start + needle.len());
        }
    }
    None
}

/// The names in backticks of a serde message, in order.
fn backticked(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('`') {
        let after = &rest[i + 1..];
        match after.find('`') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

fn join_ticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The valid name closest to `wrong`, if it is close enough to be a likely typo.
pub fn suggest<'a>(wrong: &str, candidates: &'a [String]) -> Option<&'a str> {
    let wrong_l = wrong.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            let c_l = c.to_ascii_lowercase();
            let dist = strsim::damerau_levenshtein(&wrong_l, &c_l);
            let jw = strsim::jaro_winkler(&wrong_l, &c_l);
            (c, dist, jw)
        })
        .filter(|(c, dist, jw)| {
            let limit = (c.len().max(wrong.len()) / 3).max(1);
            *dist <= limit || *jw >= 0.88
        })
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)))
        .map(|(c, _, _)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParseResult {
        parse_str(Path::new("wf.toml"), text)
    }

    fn only_diag(text: &str) -> Diagnostic {
        let r = parse(text);
        assert!(r.doc.is_none(), "expected a parse failure");
        assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
        r.diagnostics.into_iter().next().expect("one diagnostic")
    }

    fn spanned<'a>(text: &'a str, d: &Diagnostic) -> &'a str {
        let s = d.span.clone().expect("diagnostic has a span");
        &text[s]
    }

    #[test]
    fn bare_document_parses() {
        let r = parse("name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n");
        let doc = r.doc.expect("parses");
        assert_eq!(doc.name, "x");
        assert_eq!(doc.nodes[0].kind.type_name(), "merge");
        assert!(r.source.root.is_empty());
    }

    #[test]
    fn wrapped_document_parses_and_spans_point_inside_it() {
        let text =
            "[[workflows]]\nname = \"w\"\n[[workflows.nodes]]\nid = \"a\"\ntype = \"merge\"\n";
        let r = parse(text);
        let doc = r.doc.expect("parses");
        assert_eq!(doc.name, "w");
        let span = r
            .source
            .span_of(&[Seg::key("nodes"), Seg::Index(0), Seg::key("id")])
            .expect("span");
        assert_eq!(&text[span], "\"a\"");
    }

    #[test]
    fn two_wrapped_workflows_are_rejected() {
        let d = only_diag("[[workflows]]\nname = \"a\"\n[[workflows]]\nname = \"b\"\n");
        assert_eq!(d.code, Code::WorkflowCount);
        assert!(d.message.contains("found 2"));
    }

    #[test]
    fn syntax_error_points_at_the_bad_bytes() {
        let text = "name = \"x\"\nnodes = [\n";
        let r = parse(text);
        assert!(r.doc.is_none());
        assert!(r.diagnostics.iter().all(|d| d.code == Code::TomlSyntax));
        assert!(r.diagnostics[0].span.is_some());
    }

    #[test]
    fn unknown_node_field_points_at_the_key_and_suggests() {
        let text = "name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"template_render\"\ntemplate = \"t\"\ninput_fron = \"trigger\"\n";
        let d = only_diag(text);
        assert_eq!(d.code, Code::UnknownField);
        assert_eq!(spanned(text, &d), "input_fron");
        assert_eq!(d.help.as_deref(), Some("did you mean `input_from`?"));
    }

    #[test]
    fn unknown_top_level_key_is_rejected() {
        let text = "name = \"x\"\nversion = 1\n";
        let d = only_diag(text);
        assert_eq!(d.code, Code::UnknownField);
        assert_eq!(spanned(text, &d), "version");
    }

    #[test]
    fn unknown_node_type_suggests_the_nearest_kind() {
        let text = "name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"read_fiel\"\npath_from = \"p\"\n";
        let d = only_diag(text);
        assert_eq!(d.code, Code::UnknownVariant);
        assert_eq!(d.help.as_deref(), Some("did you mean `read_file`?"));
        assert_eq!(spanned(text, &d), "\"read_fiel\"");
    }

    #[test]
    fn unit_kinds_ignore_extra_keys() {
        let r = parse(
            "name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\nbogus = 1\n[[nodes]]\nid = \"b\"\ntype = \"terminate\"\nfoo = \"bar\"\n",
        );
        assert!(r.doc.is_some(), "{:?}", r.diagnostics);
    }

    #[test]
    fn struct_kinds_reject_extra_keys() {
        let d = only_diag(
            "name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"template_render\"\ntemplate = \"t\"\nbogus = 1\n",
        );
        assert_eq!(d.code, Code::UnknownField);
        assert!(d.message.contains("bogus"));
    }

    #[test]
    fn negative_integers_are_rejected() {
        let d = only_diag(
            "name = \"x\"\n[[nodes]]\nid = \"m\"\ntype = \"map\"\nitems_from = \"trigger.items\"\nworkflow = \"c.toml\"\nmax_items = -1\n",
        );
        assert_eq!(d.code, Code::InvalidValue);
    }

    #[test]
    fn missing_name_is_reported() {
        let d = only_diag("description = \"x\"\n");
        assert_eq!(d.code, Code::MissingField);
        assert!(d.message.contains("name"));
    }

    #[test]
    fn secret_sources_reject_literal_material() {
        let d = only_diag(
            "name = \"x\"\n[[secrets]]\nname = \"k\"\nsource = \"env\"\nvar = \"K\"\nvalue = \"hunter2\"\n",
        );
        assert_eq!(d.code, Code::UnknownField);
    }

    #[test]
    fn non_utf8_input_is_a_diagnostic() {
        let r = parse_bytes(Path::new("wf.toml"), b"name = \"\xff\xfe\"\n");
        assert_eq!(r.diagnostics[0].code, Code::NotUtf8);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let text = format!(
            "name = \"x\"\na = {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let d = only_diag(&text);
        assert_eq!(d.code, Code::TomlSyntax);
    }

    #[test]
    fn every_kind_name_parses() {
        for kind in crate::model::NODE_KIND_NAMES {
            let text = format!("name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"{kind}\"\n");
            let r = parse(&text);
            // Kinds with required fields fail with missing_field, never unknown_variant.
            for d in &r.diagnostics {
                assert_eq!(d.code, Code::MissingField, "{kind}: {}", d.message);
            }
        }
    }
}
