//! Source files and the map from logical locations to byte spans.
//!
//! The typed model carries no spans (serde's internally tagged enums buffer their
//! content, which loses `toml::Spanned`). Instead every file keeps a [`SpanTree`] built
//! from the same parse, and a diagnostic names *where* with a logical [`Loc`]
//! (`nodes[3].path_from`) that this module turns into bytes. One parse, no drift.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// One step of a logical location inside a TOML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    pub fn key(k: &str) -> Seg {
        Seg::Key(k.to_string())
    }
}

/// A logical location: a path of keys and array indices from the workflow's root.
pub type Loc = Vec<Seg>;

/// Builds a [`Loc`] from a compact literal: `loc!["nodes", 3, "path_from"]`.
#[macro_export]
macro_rules! loc {
    ($($seg:expr),* $(,)?) => {
        vec![$($crate::source::IntoSeg::into_seg($seg)),*]
    };
}

/// Conversion used by [`loc!`].
pub trait IntoSeg {
    fn into_seg(self) -> Seg;
}

impl IntoSeg for &str {
    fn into_seg(self) -> Seg {
        Seg::Key(self.to_string())
    }
}

impl IntoSeg for &String {
    fn into_seg(self) -> Seg {
        Seg::Key(self.clone())
    }
}

impl IntoSeg for String {
    fn into_seg(self) -> Seg {
        Seg::Key(self)
    }
}

impl IntoSeg for usize {
    fn into_seg(self) -> Seg {
        Seg::Index(self)
    }
}

impl IntoSeg for Seg {
    fn into_seg(self) -> Seg {
        self
    }
}

/// Span skeleton of a parsed TOML document.
#[derive(Debug, Clone, Default)]
pub enum SpanTree {
    Table(Vec<SpanEntry>),
    Array(Vec<(Range<usize>, SpanTree)>),
    #[default]
    Leaf,
}

#[derive(Debug, Clone)]
pub struct SpanEntry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value_span: Range<usize>,
    pub value: SpanTree,
}

impl SpanTree {
    pub(crate) fn from_table(table: &DeTable<'_>) -> SpanTree {
        let entries = table
            .iter()
            .map(|(k, v)| SpanEntry {
                key: k.get_ref().to_string(),
                key_span: k.span(),
                value_span: v.span(),
                value: SpanTree::from_value(v.get_ref()),
            })
            .collect();
        SpanTree::Table(entries)
    }

    fn from_value(value: &DeValue<'_>) -> SpanTree {
        match value {
            DeValue::Table(t) => SpanTree::from_table(t),
            DeValue::Array(a) => SpanTree::Array(
                a.iter()
                    .map(|v| (v.span(), SpanTree::from_value(v.get_ref())))
                    .collect(),
            ),
            _ => SpanTree::Leaf,
        }
    }

    fn entry(&self, key: &str) -> Option<&SpanEntry> {
        match self {
            SpanTree::Table(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The entry named `key` of the table that an error span designates. For tables
    /// of arrays the span may be just the `[[header]]`, so a table matches when its
    /// span starts where the error span starts; otherwise the innermost entry named
    /// `key` inside the span wins.
    pub fn find_key_within(&self, key: &str, within: &Range<usize>) -> Option<&SpanEntry> {
        let mut table_hit: Option<&SpanEntry> = None;
        let mut inner_hit: Option<&SpanEntry> = None;
        self.visit_tables(&mut |span, table| {
            if let SpanTree::Table(entries) = table
                && let Some(e) = entries.iter().find(|e| e.key == key)
            {
                if span.start == within.start {
                    table_hit = Some(e);
                }
                let inside = e.key_span.start >= within.start && e.key_span.end <= within.end;
                if inside && inner_hit.is_none_or(|b| e.key_span.start >= b.key_span.start) {
                    inner_hit = Some(e);
                }
            }
        });
        table_hit.or(inner_hit)
    }

    fn visit_tables<'s>(&'s self, f: &mut dyn FnMut(&Range<usize>, &'s SpanTree)) {
        match self {
            SpanTree::Table(entries) => {
                for e in entries {
                    f(&e.value_span, &e.value);
                    e.value.visit_tables(f);
                }
            }
            SpanTree::Array(items) => {
                for (span, v) in items {
                    f(span, v);
                    v.visit_tables(f);
                }
            }
            SpanTree::Leaf => {}
        }
    }
}

/// A workflow file as read from disk, with its span skeleton.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user wrote it (for messages).
    pub path: PathBuf,
    /// The file's text. Invalid UTF-8 is replaced, so spans stay meaningful.
    pub text: String,
    /// Span skeleton of the whole document (empty when the TOML did not parse).
    pub tree: SpanTree,
    /// Where the workflow table sits: empty for the bare shape, `workflows[0]` when
    /// wrapped.
    pub root: Loc,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: String) -> SourceFile {
        SourceFile {
            path: path.into(),
            text,
            tree: SpanTree::Leaf,
            root: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The span of the value at `loc` (relative to the workflow root), or of its
    /// nearest existing ancestor so a diagnostic always points somewhere useful.
    pub fn span_of(&self, loc: &[Seg]) -> Option<Range<usize>> {
        self.walk(loc, false)
    }

    /// Like [`span_of`](Self::span_of) but for a table entry returns the *key* span,
    /// which reads better for "this field" diagnostics.
    pub fn key_span_of(&self, loc: &[Seg]) -> Option<Range<usize>> {
        self.walk(loc, true)
    }

    /// The keys of the table at `loc` (relative to the workflow root), with their key
    /// spans, in file order; empty when `loc` is not a table.
    pub fn keys_of(&self, loc: &[Seg]) -> Vec<(String, Range<usize>)> {
        let mut node = &self.tree;
        for seg in self.root.iter().chain(loc.iter()) {
            let next = match (seg, node) {
                (Seg::Key(k), _) => node.entry(k).map(|e| &e.value),
                (Seg::Index(i), SpanTree::Array(items)) => items.get(*i).map(|(_, v)| v),
                (Seg::Index(_), _) => None,
            };
            match next {
                Some(n) => node = n,
                None => return Vec::new(),
            }
        }
        match node {
            SpanTree::Table(entries) => entries
                .iter()
                .map(|e| (e.key.clone(), e.key_span.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn walk(&self, loc: &[Seg], want_key: bool) -> Option<Range<usize>> {
        let full: Vec<&Seg> = self.root.iter().chain(loc.iter()).collect();
        let mut node = &self.tree;
        let mut best: Option<Range<usize>> = None;
        for (i, seg) in full.iter().enumerate() {
            let last = i + 1 == full.len();
            match seg {
                Seg::Key(k) => match node.entry(k) {
                    Some(e) => {
                        best = Some(if last && want_key {
                            e.key_span.clone()
                        } else {
                            e.value_span.clone()
                        });
                        node = &e.value;
                    }
                    None => return best,
                },
                Seg::Index(idx) => match node {
                    SpanTree::Array(items) => match items.get(*idx) {
                        Some((span, v)) => {
                            best = Some(span.clone());
                            node = v;
                        }
                        None => return best,
                    },
                    _ => return best,
                },
            }
        }
        best
    }
}
