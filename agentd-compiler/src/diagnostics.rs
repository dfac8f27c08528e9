//! Diagnostics as data, and their two renderings (rustc-style text and JSON lines).
//!
//! A [`Diagnostic`] carries a stable [`Code`], the severity the code registry gives
//! it, a message, the file and byte span it points at, and a help line that says how
//! to fix it. Every
//! stage (parse, validate, build) produces them; front ends (CLI, `agentd!`) only
//! render. Rendering never fails: a diagnostic without a span renders without a snippet.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::codes::Code;
use crate::source::SourceFile;

/// How bad a diagnostic is; the codes registry gives each code its own.
pub use crate::codes::Severity;

/// One problem found in a workflow.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// Stable machine name, e.g. `dangling_edge` (see `agentd explain`); serialised
    /// as that name.
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The file the span refers to.
    pub file: PathBuf,
    /// Byte range in `file`, when the problem has a location.
    #[serde(skip)]
    pub span: Option<Range<usize>>,
    /// Label under the underlined span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Extra context (for example, where a child workflow was referenced from).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with `code`, at the severity the registry gives that code.
    ///
    /// There is deliberately no way to choose the severity here: the `registry!`
    /// table in `codes` is the one place that decides whether a code is an error or
    /// a warning, so a warning code cannot be raised as an error by accident (or the
    /// other way round). Only `check --deny-warnings` changes it afterwards.
    pub fn new(code: Code, file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            file: file.to_path_buf(),
            span: None,
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn with_span(mut self, span: Option<Range<usize>>) -> Self {
        self.span = span;
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The files diagnostics may point into, by path.
#[derive(Debug, Default)]
pub struct SourceDb {
    files: BTreeMap<PathBuf, String>,
}

impl SourceDb {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, file: &SourceFile) {
        self.files.insert(file.path.clone(), file.text.clone());
    }

    pub fn add_text(&mut self, path: &Path, text: &str) {
        self.files.insert(path.to_path_buf(), text.to_string());
    }

    pub fn text(&self, path: &Path) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// Every file in the database, in path order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }
}

/// 1-based line and column (in characters) of `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, text[line_start..offset].chars().count() + 1)
}

/// Clamp a span to the text and to char boundaries so rendering never panics.
fn clamp_span(text: &str, span: &Range<usize>) -> Range<usize> {
    let mut start = span.start.min(text.len());
    let mut end = span.end.min(text.len()).max(start);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Render diagnostics rustc-style. `color` selects ANSI styling.
pub fn render_human(diags: &[Diagnostic], db: &SourceDb, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    }
    .decor_style(DecorStyle::Ascii);
    let mut out = String::new();
    for d in diags {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let path = d.file.display().to_string();
        let title = level.primary_title(d.message.as_str()).id(d.code.as_str());
        let mut group: Group<'_> = match (db.text(&d.file), &d.span) {
            (Some(text), Some(span)) => {
                let span = clamp_span(text, span);
                let mut ann = AnnotationKind::Primary.span(span);
                if let Some(label) = &d.label {
                    ann = ann.label(label.as_str());
                }
                title.element(Snippet::source(text).path(path.as_str()).annotation(ann))
            }
            _ => title.element(annotate_snippets::Origin::path(path.as_str())),
        };
        for note in &d.notes {
            group = group.element(Level::NOTE.message(note.as_str()));
        }
        if let Some(help) = &d.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        out.push_str(&renderer.render(&[group]));
        out.push_str("\n\n");
    }
    out
}

/// The one-line JSON form of a diagnostic (`--message-format json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub code: &'a str,
    pub severity: Severity,
    pub message: &'a str,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_start: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_end: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub notes: &'a [String],
}

impl<'a> JsonDiagnostic<'a> {
    pub fn new(d: &'a Diagnostic, db: &SourceDb) -> Self {
        let pos = match (db.text(&d.file), &d.span) {
            (Some(text), Some(span)) => {
                let span = clamp_span(text, span);
                let (l, c) = line_col(text, span.start);
                let (el, ec) = line_col(text, span.end);
                Some((l, c, el, ec, span.start, span.end))
            }
            _ => None,
        };
        JsonDiagnostic {
            code: d.code.as_str(),
            severity: d.severity,
            message: &d.message,
            file: d.file.display().to_string(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            end_line: pos.map(|p| p.2),
            end_column: pos.map(|p| p.3),
            byte_start: pos.map(|p| p.4),
            byte_end: pos.map(|p| p.5),
            label: d.label.as_deref(),
            help: d.help.as_deref(),
            notes: &d.notes,
        }
    }
}

/// Render one JSON object per line.
pub fn render_json(diags: &[Diagnostic], db: &SourceDb) -> String {
    let mut out = String::new();
    for d in diags {
        let j = JsonDiagnostic::new(d, db);
        // Serialising plain strings and numbers cannot fail.
        if let Ok(line) = serde_json::to_string(&j) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// `file:line:col: severity[code]: message` — the short form used by `agentd!` and logs.
pub fn render_short(d: &Diagnostic, db: &SourceDb) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let pos = match (db.text(&d.file), &d.span) {
        (Some(text), Some(span)) => {
            let (l, c) = line_col(text, span.start);
            format!("{}:{l}:{c}", d.file.display())
        }
        _ => d.file.display().to_string(),
    };
    let mut s = format!("{pos}: {sev}[{}]: {}", d.code, d.message);
    if let Some(help) = &d.help {
        s.push_str("\n  help: ");
        s.push_str(help);
    }
    s
}

/// The validator's help for `rust_node_not_allowed` speaks to `agentd!` users; the
/// command-line front ends (`check`, `build`, `emit`, `lsp`) point at the flags that
/// accept Rust nodes instead.
pub fn cli_rust_node_help(diags: &mut [Diagnostic]) {
    for d in diags
        .iter_mut()
        .filter(|d| d.code == Code::RustNodeNotAllowed)
    {
        d.help = Some(
            "bind its handler from a library crate with `agentd build --handlers PATH` \
             (`handler = \"x\"` calls the crate's `pub fn x`), embed the workflow with \
             agentd!(\"<file>\", handlers = { <name> = path::to_fn }), or check it with \
             `agentd check --allow-rust-nodes`"
                .to_string(),
        );
    }
}
