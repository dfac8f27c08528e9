//! What the editor features know about one open document: the names it defines and
//! uses, and the answers to hover, definition, references, rename and completion.
//!
//! Everything here is a pure function of the document's text (plus, for completion of
//! keys, what the parser itself says is valid), works in byte offsets, and never
//! panics on any text or offset: the server runs it on every keystroke of whatever
//! the user is typing. Symbols come from the same parse as `check` (the span tree of
//! [`crate::parse`]); completion falls back to reading lines, because the text being
//! typed is usually not valid TOML yet.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::model::NODE_KIND_NAMES;
use crate::parse::{self, ParseResult};
use crate::source::{Seg, SpanEntry, SpanTree};

use super::{docs, keys};

/// What a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    /// A node id (`[[nodes]] id`), used by edges, `entry_node` and context paths.
    Node,
    /// A start node name (`[[start_nodes]] name`), used by triggers and routes.
    Start,
}

/// One occurrence of a name: its definition or a use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub kind: SymbolKind,
    pub name: String,
    /// The bytes of the name itself (inside the quotes; for a context path, its
    /// first segment).
    pub span: Range<usize>,
    pub is_definition: bool,
}

/// A `workflow = "..."` reference to a child file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPath {
    pub span: Range<usize>,
    pub path: String,
}

/// A node table: its id, kind and the bytes of the whole `[[nodes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSite {
    pub id: Option<String>,
    pub kind: Option<String>,
    /// The span of the `type` value (with its quotes).
    pub kind_span: Option<Range<usize>>,
    pub span: Range<usize>,
}

/// Every name, child path and node of a document.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    pub occurrences: Vec<Occurrence>,
    pub children: Vec<ChildPath>,
    pub nodes: Vec<NodeSite>,
    pub starts: Vec<(String, Range<usize>)>,
}

/// One open document, parsed.
#[derive(Debug)]
pub struct Document {
    pub path: PathBuf,
    pub text: String,
    pub symbols: Symbols,
    parsed: ParseResult,
}

impl Document {
    pub fn new(path: &Path, text: &str) -> Document {
        let parsed = parse::parse_str(path, text);
        let symbols = symbols_of(&parsed);
        Document {
            path: path.to_path_buf(),
            text: parsed.source.text.clone(),
            symbols,
            parsed,
        }
    }

    /// The occurrence whose name covers `offset` (the end of a name counts, so a
    /// cursor just after the last character still finds it).
    pub fn occurrence_at(&self, offset: usize) -> Option<&Occurrence> {
        self.symbols
            .occurrences
            .iter()
            .find(|o| o.span.start <= offset && offset <= o.span.end)
    }

    fn same_name<'a>(&'a self, of: &'a Occurrence) -> impl Iterator<Item = &'a Occurrence> {
        self.symbols
            .occurrences
            .iter()
            .filter(move |o| o.kind == of.kind && o.name == of.name)
    }

    /// Go to definition: the node or start node a name at `offset` refers to, or the
    /// child file a `workflow` path names. `cwd` is the fallback directory for child
    /// paths (the loader's rule: next to the referring file first).
    pub fn definition(&self, offset: usize, cwd: &Path) -> Option<(PathBuf, Range<usize>)> {
        if let Some(occ) = self.occurrence_at(offset) {
            let def = self.same_name(occ).find(|o| o.is_definition)?;
            return Some((self.path.clone(), def.span.clone()));
        }
        let child = self
            .symbols
            .children
            .iter()
            .find(|c| c.span.start <= offset && offset <= c.span.end)?;
        let written = Path::new(&child.path);
        let beside = self
            .path
            .parent()
            .map(|dir| dir.join(written))
            .filter(|p| p.is_file());
        let path = beside.unwrap_or_else(|| cwd.join(written));
        path.is_file().then_some((path, 0..0))
    }

    /// Every occurrence of the name at `offset` (its definition only when asked).
    pub fn references(&self, offset: usize, include_definition: bool) -> Vec<Range<usize>> {
        let Some(occ) = self.occurrence_at(offset) else {
            return Vec::new();
        };
        self.same_name(occ)
            .filter(|o| include_definition || !o.is_definition)
            .map(|o| o.span.clone())
            .collect()
    }

    /// The span of the name that can be renamed at `offset`.
    pub fn rename_target(&self, offset: usize) -> Option<Range<usize>> {
        self.occurrence_at(offset).map(|o| o.span.clone())
    }

    /// Rename the name at `offset` everywhere in the file.
    pub fn rename(&self, offset: usize, new_name: &str) -> Result<Vec<Range<usize>>, String> {
        let occ = self
            .occurrence_at(offset)
            .ok_or("no node id or start node name here")?;
        if let Some(bad) = bad_name(new_name) {
            return Err(bad);
        }
        if occ.kind == SymbolKind::Node && new_name == "trigger" {
            return Err("`trigger` is the run's input in context paths; pick another id".into());
        }
        if new_name != occ.name
            && self
                .symbols
                .occurrences
                .iter()
                .any(|o| o.kind == occ.kind && o.name == new_name && o.is_definition)
        {
            return Err(format!("`{new_name}` is already defined in this file"));
        }
        Ok(self.same_name(occ).map(|o| o.span.clone()).collect())
    }

    /// Hover text (Markdown) at `offset`: the node a name refers to, a node kind's or
    /// a key's reference docs, and the explanation of every diagnostic code whose span
    /// covers `offset` (`diagnostics`: span and code, from the last check).
    pub fn hover(&self, offset: usize, diagnostics: &[(Range<usize>, &str)]) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(occ) = self.occurrence_at(offset) {
            parts.push(self.hover_symbol(occ));
        } else if let Some(node) = self
            .symbols
            .nodes
            .iter()
            .find(|n| n.kind_span.as_ref().is_some_and(|s| contains(s, offset)))
        {
            if let Some(doc) = node.kind.as_deref().and_then(docs::kind_section) {
                parts.push(doc.to_string());
            }
        } else if let Some((context, key)) = self.key_at(offset) {
            let kind = self.node_at(offset).and_then(|n| n.kind.as_deref());
            if let Some(doc) = docs::key_doc(&context, kind, &key) {
                parts.push(doc);
            }
        }
        for (span, code) in diagnostics {
            if contains(span, offset)
                && let Some(info) = crate::codes::lookup(code)
            {
                parts.push(format!(
                    "**`{}`** — {}\n\n{}\n\n(`agentd explain {}` shows an example.)",
                    info.code, info.summary, info.explanation, info.code
                ));
            }
        }
        (!parts.is_empty()).then(|| parts.join("\n\n---\n\n"))
    }

    fn hover_symbol(&self, occ: &Occurrence) -> String {
        let def = self.same_name(occ).find(|o| o.is_definition);
        let table = def.and_then(|d| match occ.kind {
            SymbolKind::Node => self
                .symbols
                .nodes
                .iter()
                .find(|n| contains(&n.span, d.span.start))
                .map(|n| n.span.clone()),
            SymbolKind::Start => self
                .symbols
                .starts
                .iter()
                .find(|(_, s)| contains(s, d.span.start))
                .map(|(_, s)| s.clone()),
        });
        let what = match occ.kind {
            SymbolKind::Node => "node",
            SymbolKind::Start => "start node",
        };
        match table.and_then(|s| self.text.get(s)) {
            Some(body) => {
                let header = match occ.kind {
                    SymbolKind::Node => "[[nodes]]",
                    SymbolKind::Start => "[[start_nodes]]",
                };
                format!(
                    "{what} `{}`\n\n```toml\n{header}\n{}\n```",
                    occ.name,
                    body.trim()
                )
            }
            None => format!("{what} `{}` is not defined in this file", occ.name),
        }
    }

    fn node_at(&self, offset: usize) -> Option<&NodeSite> {
        self.symbols
            .nodes
            .iter()
            .find(|n| contains(&n.span, offset))
    }

    /// The key whose name covers `offset`, with the keys of the tables around it.
    fn key_at(&self, offset: usize) -> Option<(Vec<String>, String)> {
        fn walk(tree: &SpanTree, offset: usize, path: &mut Vec<String>) -> Option<String> {
            match tree {
                SpanTree::Table(entries) => {
                    for e in entries {
                        if contains(&e.key_span, offset) {
                            return Some(e.key.clone());
                        }
                        path.push(e.key.clone());
                        if let Some(k) = walk(&e.value, offset, path) {
                            return Some(k);
                        }
                        path.pop();
                    }
                    None
                }
                SpanTree::Array(items) => items.iter().find_map(|(_, v)| walk(v, offset, path)),
                SpanTree::Leaf => None,
            }
        }
        let root = root_table(&self.parsed)?;
        let mut path = Vec::new();
        let key = walk(root, offset, &mut path)?;
        Some((path, key))
    }

    /// Completion items at `offset`; `probe` answers which keys a table takes.
    pub fn completion(&self, offset: usize, probe: &mut keys::KeyProbe) -> Vec<Completion> {
        let ctx = line_context(&self.text, offset);
        match &ctx.position {
            Slot::Value(key) => self.value_completion(&ctx, key),
            Slot::Key => {
                let keys = probe.keys(&ctx.header, &ctx.array_headers, ctx.node_type.as_deref());
                let present = &ctx.section_keys;
                keys.into_iter()
                    .filter(|k| !present.contains(k))
                    .map(|k| {
                        let detail = probe.key_doc(&ctx.header, ctx.node_type.as_deref(), &k);
                        Completion {
                            label: k,
                            kind: CompletionKind::Key,
                            detail,
                        }
                    })
                    .collect()
            }
            Slot::None => Vec::new(),
        }
    }

    fn value_completion(&self, ctx: &LineContext, key: &str) -> Vec<Completion> {
        let node_ids = || {
            let mut ids: Vec<String> = self
                .symbols
                .occurrences
                .iter()
                .filter(|o| o.kind == SymbolKind::Node && o.is_definition)
                .map(|o| o.name.clone())
                .collect();
            if ids.is_empty() {
                ids = line_node_ids(&self.text);
            }
            ids
        };
        let (names, kind): (Vec<String>, CompletionKind) = match (ctx.header.as_str(), key) {
            ("nodes", "type") => (
                NODE_KIND_NAMES.iter().map(|s| s.to_string()).collect(),
                CompletionKind::NodeKind,
            ),
            ("triggers", "type") => (
                [
                    "cron",
                    "interval",
                    "fs_watch",
                    "internal.event",
                    "mcp.resource.updated",
                    "mcp.resource.created",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                CompletionKind::Value,
            ),
            ("start_nodes", "source") => (
                ["manual", "http", "event"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                CompletionKind::Value,
            ),
            (_, "from" | "to" | "entry_node") => (node_ids(), CompletionKind::NodeId),
            (_, "start_node") => (
                self.symbols.starts.iter().map(|(n, _)| n.clone()).collect(),
                CompletionKind::StartName,
            ),
            (_, k) if k.ends_with("_from") || k == "expr" => {
                let mut ids = node_ids();
                ids.insert(0, "trigger".into());
                (ids, CompletionKind::NodeId)
            }
            _ => return Vec::new(),
        };
        names
            .into_iter()
            .map(|label| Completion {
                detail: match kind {
                    CompletionKind::NodeKind => docs::kind_summary(&label),
                    _ => None,
                },
                label,
                kind,
            })
            .collect()
    }
}

/// A completion proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    Key,
    NodeKind,
    NodeId,
    StartName,
    Value,
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

/// Why `name` cannot be a node id or start name, if it cannot. Context paths split on
/// `.` and `[`, and the name is written inside a TOML basic string.
fn bad_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name cannot be empty".into());
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '.' | '[' | ']' | '"' | '\\' | '\'')
    }) {
        return Some(format!("a name cannot contain {c:?}"));
    }
    None
}

/// The workflow table of a parsed file (the root, or `workflows[0]` when wrapped).
fn root_table(parsed: &ParseResult) -> Option<&SpanTree> {
    let mut node = &parsed.source.tree;
    for seg in &parsed.source.root {
        node = match (seg, node) {
            (Seg::Key(k), SpanTree::Table(entries)) => &entries.iter().find(|e| &e.key == k)?.value,
            (Seg::Index(i), SpanTree::Array(items)) => &items.get(*i)?.1,
            _ => return None,
        };
    }
    matches!(node, SpanTree::Table(_)).then_some(node)
}

fn entries(tree: &SpanTree) -> &[SpanEntry] {
    match tree {
        SpanTree::Table(e) => e,
        _ => &[],
    }
}

fn items(tree: &SpanTree) -> Vec<(&Range<usize>, &[SpanEntry])> {
    match tree {
        SpanTree::Array(items) => items.iter().map(|(s, v)| (s, entries(v))).collect(),
        _ => Vec::new(),
    }
}

fn get<'a>(table: &'a [SpanEntry], key: &str) -> Option<&'a SpanEntry> {
    table.iter().find(|e| e.key == key)
}

/// The text and span of a one-line string value without escapes (what a name can be
/// renamed in place in); `None` for anything else.
fn string_value(text: &str, span: &Range<usize>) -> Option<(String, Range<usize>)> {
    let raw = text.get(span.clone())?;
    let quote = raw.chars().next()?;
    if !matches!(quote, '"' | '\'')
        || raw.len() < 2
        || !raw.ends_with(quote)
        || raw.starts_with("\"\"\"")
        || raw.starts_with("'''")
    {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    if (quote == '"' && inner.contains('\\')) || inner.contains('\n') {
        return None;
    }
    Some((inner.to_string(), span.start + 1..span.end - 1))
}

/// The bytes of a whole array-of-tables entry: the parser's span of an entry may be
/// just its `[[header]]`, so it runs on to the end of the entry's last value.
fn extent(span: &Range<usize>, table: &[SpanEntry]) -> Range<usize> {
    let end = table
        .iter()
        .map(|e| e.value_span.end.max(e.key_span.end))
        .fold(span.end, usize::max);
    span.start..end
}

fn symbols_of(parsed: &ParseResult) -> Symbols {
    let mut out = Symbols::default();
    let Some(root) = root_table(parsed) else {
        return out;
    };
    let text = parsed.source.text.as_str();
    let root = entries(root);
    let push = |out: &mut Symbols, kind, e: Option<&SpanEntry>, def: bool| {
        if let Some((name, span)) = e.and_then(|e| string_value(text, &e.value_span)) {
            out.occurrences.push(Occurrence {
                kind,
                name,
                span,
                is_definition: def,
            });
        }
    };
    if let Some(nodes) = get(root, "nodes") {
        for (span, node) in items(&nodes.value) {
            push(&mut out, SymbolKind::Node, get(node, "id"), true);
            let kind_entry = get(node, "type");
            out.nodes.push(NodeSite {
                id: get(node, "id")
                    .and_then(|e| string_value(text, &e.value_span))
                    .map(|v| v.0),
                kind: kind_entry
                    .and_then(|e| string_value(text, &e.value_span))
                    .map(|v| v.0),
                kind_span: kind_entry.map(|e| e.value_span.clone()),
                span: extent(span, node),
            });
            node_references(text, node, &mut out);
        }
    }
    if let Some(edges) = get(root, "edges") {
        for (_, edge) in items(&edges.value) {
            push(&mut out, SymbolKind::Node, get(edge, "from"), false);
            push(&mut out, SymbolKind::Node, get(edge, "to"), false);
        }
    }
    if let Some(starts) = get(root, "start_nodes") {
        for (span, start) in items(&starts.value) {
            push(&mut out, SymbolKind::Start, get(start, "name"), true);
            push(&mut out, SymbolKind::Node, get(start, "entry_node"), false);
            if let Some((name, _)) =
                get(start, "name").and_then(|e| string_value(text, &e.value_span))
            {
                out.starts.push((name, extent(span, start)));
            }
        }
    }
    for table in ["triggers", "http_routes"] {
        if let Some(list) = get(root, table) {
            for (_, entry) in items(&list.value) {
                push(&mut out, SymbolKind::Start, get(entry, "start_node"), false);
            }
        }
    }
    out.occurrences.sort_by_key(|o| o.span.start);
    out
}

/// Uses inside one node table, at any depth: context paths (`*_from`, `expr`) name a
/// node by their first segment, and `workflow` names a child file.
fn node_references(text: &str, table: &[SpanEntry], out: &mut Symbols) {
    for e in table {
        if e.key.ends_with("_from") || e.key == "expr" {
            if let Some((path, span)) = string_value(text, &e.value_span) {
                let first = path.split(['.', '[']).next().unwrap_or("");
                if !first.is_empty() && first != "trigger" {
                    out.occurrences.push(Occurrence {
                        kind: SymbolKind::Node,
                        name: first.to_string(),
                        span: span.start..span.start + first.len(),
                        is_definition: false,
                    });
                }
            }
        } else if e.key == "workflow"
            && let Some((path, span)) = string_value(text, &e.value_span)
        {
            out.children.push(ChildPath { span, path });
        }
        match &e.value {
            SpanTree::Table(inner) => node_references(text, inner, out),
            SpanTree::Array(list) => {
                for (_, v) in list {
                    node_references(text, entries(v), out);
                }
            }
            SpanTree::Leaf => {}
        }
    }
}

/// Where the cursor is, read from the lines around it (the text need not parse).
#[derive(Debug, Clone, Default)]
pub struct LineContext {
    /// The dotted name of the enclosing `[table]` / `[[array]]` header; empty at the top.
    pub header: String,
    /// Headers written as `[[...]]` anywhere before the cursor.
    pub array_headers: Vec<String>,
    /// The `type` of the enclosing node, when in `[[nodes]]` or one of its sub-tables.
    pub node_type: Option<String>,
    /// Keys already written in the enclosing table.
    pub section_keys: Vec<String>,
    pub position: Slot,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Slot {
    /// Where a key name goes.
    Key,
    /// After `key =`.
    Value(String),
    /// Inside a header, a comment or anything else.
    #[default]
    None,
}

fn header_of(line: &str) -> Option<(String, bool)> {
    let t = line.trim();
    let (inner, array) = if let Some(rest) = t.strip_prefix("[[") {
        (rest.split("]]").next()?, true)
    } else {
        (t.strip_prefix('[')?.split(']').next()?, false)
    };
    let name: String = inner
        .split('.')
        .map(|s| s.trim().trim_matches(['"', '\'']))
        .collect::<Vec<_>>()
        .join(".");
    Some((name, array))
}

fn key_of(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once('=')?;
    let k = k.trim().trim_matches(['"', '\'']);
    (!k.is_empty() && !k.starts_with('#') && !k.starts_with('[')).then_some((k, v.trim()))
}

fn unquote(v: &str) -> Option<String> {
    let v = v.split('#').next().unwrap_or(v).trim();
    let q = v.chars().next()?;
    if !matches!(q, '"' | '\'') {
        return None;
    }
    let inner = &v[1..];
    Some(inner.split(q).next().unwrap_or(inner).to_string())
}

/// Read the context of `offset` from the lines of `text`.
pub fn line_context(text: &str, offset: usize) -> LineContext {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    let mut ctx = LineContext::default();

    // Headers and node ids before the cursor.
    let mut section_start = 0;
    let mut node_section_start = None;
    for (pos, line) in line_spans(&text[..line_start]) {
        if let Some((name, array)) = header_of(line) {
            if array && !ctx.array_headers.contains(&name) {
                ctx.array_headers.push(name.clone());
            }
            if name == "nodes" && array {
                node_section_start = Some(pos);
            } else if !name.starts_with("nodes.") {
                node_section_start = None;
            }
            ctx.header = name;
            section_start = pos;
        }
    }
    // The enclosing table runs from its header to the next header.
    let rest = &text[line_start..];
    let section_end = line_start
        + line_spans(rest)
            .skip(1)
            .find(|(_, l)| header_of(l).is_some())
            .map_or(rest.len(), |(p, _)| p);
    for (pos, line) in line_spans(&text[section_start..section_end]) {
        if section_start + pos == line_start {
            continue;
        }
        if let Some((k, _)) = key_of(line) {
            ctx.section_keys.push(k.to_string());
        }
    }
    if let Some(start) = node_section_start {
        let node_end = line_start
            + line_spans(rest)
                .skip(1)
                .find(|(_, l)| header_of(l).is_some_and(|(h, _)| !h.starts_with("nodes.")))
                .map_or(rest.len(), |(p, _)| p);
        ctx.node_type = line_spans(&text[start..node_end])
            .filter_map(|(_, l)| key_of(l))
            .find(|(k, _)| *k == "type")
            .and_then(|(_, v)| unquote(v));
    }

    let trimmed = before.trim_start();
    ctx.position = if trimmed.starts_with('#') || trimmed.starts_with('[') {
        Slot::None
    } else if let Some((k, v)) = before.split_once('=') {
        // Only directly in a string value (not after it is closed, not in arrays).
        let v = v.trim_start();
        let open = v.starts_with(['"', '\'']) && v.matches(['"', '\'']).count() == 1;
        if open || v.is_empty() {
            Slot::Value(k.trim().trim_matches(['"', '\'']).to_string())
        } else {
            Slot::None
        }
    } else if trimmed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Slot::Key
    } else {
        Slot::None
    };
    ctx
}

/// The ids of `[[nodes]]` read line by line, for a file that does not parse.
fn line_node_ids(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut in_nodes = false;
    for (_, line) in line_spans(text) {
        if let Some((name, _)) = header_of(line) {
            in_nodes = name == "nodes";
        } else if in_nodes
            && let Some(("id", v)) = key_of(line)
            && let Some(id) = unquote(v)
        {
            ids.push(id);
        }
    }
    ids
}

/// Lines of `text` with their byte offsets.
fn line_spans(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = 0;
    text.split_inclusive('\n').map(move |l| {
        let at = pos;
        pos += l.len();
        (at, l.trim_end_matches(['\n', '\r']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WF: &str = r#"name = "w"
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "load"

[[triggers]]
type = "cron"
schedule = "0 * * * *"
start_node = "main"

[[nodes]]
id = "load"
type = "read_file"
path_from = "trigger.path"

[[nodes]]
id = "parse"
type = "parse_json"
input_from = "load.content"

[[nodes]]
id = "sub"
type = "call"
workflow = "child.toml"

[[edges]]
from = "load"
to = "parse"
"#;

    fn doc() -> Document {
        Document::new(Path::new("/nonexistent/w.toml"), WF)
    }

    fn at(needle: &str, nth: usize) -> usize {
        WF.match_indices(needle).nth(nth).expect("needle").0 + 1
    }

    #[test]
    fn references_of_a_node_id_cover_edges_entry_and_context_paths() {
        let d = doc();
        let refs = d.references(at("load", 1), true);
        let texts: Vec<&str> = refs.iter().map(|r| &WF[r.clone()]).collect();
        assert_eq!(texts, ["load"; 4], "{refs:?}");
        assert_eq!(d.references(at("load", 1), false).len(), 3);
    }

    #[test]
    fn definition_of_an_edge_end_is_the_node_id() {
        let d = doc();
        let (path, span) = d
            .definition(at("\"parse\"", 1), Path::new("/"))
            .expect("def");
        assert_eq!(path, Path::new("/nonexistent/w.toml"));
        assert_eq!(span.start, WF.find("id = \"parse\"").expect("id") + 6);
        let (_, span) = d
            .definition(at("\"main\"", 1), Path::new("/"))
            .expect("start");
        assert_eq!(&WF[span], "main");
    }

    #[test]
    fn rename_refuses_names_that_break_context_paths_and_duplicates() {
        let d = doc();
        assert!(d.rename(at("load", 1), "a.b").is_err());
        assert!(d.rename(at("load", 1), "parse").is_err());
        assert!(d.rename(at("load", 1), "trigger").is_err());
        assert_eq!(d.rename(at("load", 1), "fetch").expect("ok").len(), 4);
    }

    #[test]
    fn hover_on_a_node_kind_shows_its_reference_section() {
        let d = doc();
        let h = d.hover(at("read_file", 0), &[]).expect("hover");
        assert!(h.contains("Reads a whole file"), "{h}");
        let h = d.hover(at("path_from", 0), &[]).expect("key hover");
        assert!(h.contains("context path"), "{h}");
    }

    #[test]
    fn line_context_finds_header_node_type_and_slot() {
        let off = WF.find("input_from").expect("k") + 3;
        let ctx = line_context(WF, off);
        assert_eq!(ctx.header, "nodes");
        assert_eq!(ctx.node_type.as_deref(), Some("parse_json"));
        assert_eq!(ctx.position, Slot::Key);
        let off = WF.find("to = \"").expect("to") + 6;
        assert_eq!(line_context(WF, off).position, Slot::Value("to".into()));
    }
}
