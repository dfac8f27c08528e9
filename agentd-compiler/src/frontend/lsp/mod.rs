//! `agentd lsp`: a Language Server for workflow files, over the same front end as
//! `agentd check`.
//!
//! Owns the protocol loop (initialize, open documents, debounced checks, requests,
//! shutdown) and the conversion between the compiler's byte spans and protocol
//! positions. The answers themselves come from [`analysis`] (names, hover,
//! definition, references, rename, completion), which is pure and tested on its own.
//!
//! Must never: panic or exit on a request it cannot answer (bad parameters get an
//! error response, unknown methods `MethodNotFound`), print to stdout (the protocol's
//! channel), or report diagnostics that differ from `agentd check` for the same file.

pub mod analysis;
pub mod docs;
pub mod keys;
pub mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types as lt;
use serde_json::Value;

use crate::diagnostics::{Diagnostic, Severity};
use crate::load::{LoadOptions, Program};
use analysis::{CompletionKind, Document};
use text::LineIndex;

/// How long after the last edit a document is checked again.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// The one error type of this module: the connection to the client failed.
#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("language server protocol error: {0}")]
    Protocol(#[from] lsp_server::ProtocolError),
    #[error("the client went away before shutdown")]
    Disconnected,
}

/// Server settings (the command line of `agentd lsp`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Accept custom Rust nodes, as `agentd check --allow-rust-nodes`.
    pub allow_rust_nodes: bool,
}

/// The capabilities this server announces.
pub fn capabilities() -> lt::ServerCapabilities {
    lt::ServerCapabilities {
        text_document_sync: Some(lt::TextDocumentSyncCapability::Options(
            lt::TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(lt::TextDocumentSyncKind::FULL),
                save: Some(lt::TextDocumentSyncSaveOptions::Supported(true)),
                ..lt::TextDocumentSyncOptions::default()
            },
        )),
        hover_provider: Some(lt::HoverProviderCapability::Simple(true)),
        definition_provider: Some(lt::OneOf::Left(true)),
        references_provider: Some(lt::OneOf::Left(true)),
        rename_provider: Some(lt::OneOf::Right(lt::RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: lt::WorkDoneProgressOptions::default(),
        })),
        completion_provider: Some(lt::CompletionOptions {
            trigger_characters: Some(vec!["\"".into(), "=".into(), ".".into()]),
            ..lt::CompletionOptions::default()
        }),
        ..lt::ServerCapabilities::default()
    }
}

/// Run the server on `connection` until the client shuts it down.
pub fn serve(connection: &Connection, opts: &Options) -> Result<(), LspError> {
    let caps = serde_json::to_value(capabilities()).unwrap_or(Value::Null);
    connection.initialize(caps)?;
    let mut server = Server::new(opts);
    loop {
        let timeout = server
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        match connection.receiver.recv_timeout(timeout) {
            Ok(Message::Request(req)) => {
                if connection.handle_shutdown(&req)? {
                    return Ok(());
                }
                let resp = server.request(req);
                send(connection, resp.into())?;
            }
            Ok(Message::Notification(n)) => {
                if n.method == "exit" {
                    return Ok(());
                }
                server.notification(n);
            }
            Ok(Message::Response(_)) => {}
            Err(e) if e.is_timeout() => {}
            Err(_) => return Err(LspError::Disconnected),
        }
        for note in server.run_due_checks() {
            send(connection, note.into())?;
        }
    }
}

fn send(connection: &Connection, msg: Message) -> Result<(), LspError> {
    connection
        .sender
        .send(msg)
        .map_err(|_| LspError::Disconnected)
}

struct Open {
    doc: Document,
    index: LineIndex,
    /// When set, the document changed and is checked once this instant passes.
    due: Option<Instant>,
}

struct Server {
    load_opts: LoadOptions,
    open: HashMap<String, Open>,
    /// Per open document: the file URIs its last check published diagnostics for
    /// (itself and its children), so files that became clean are cleared.
    published: HashMap<String, BTreeSet<String>>,
    /// The last diagnostics of each file (span and code), for hover.
    last: HashMap<String, Vec<(Range<usize>, &'static str)>>,
    probe: keys::KeyProbe,
}

impl Server {
    fn new(opts: &Options) -> Server {
        Server {
            load_opts: LoadOptions {
                allow_rust_nodes: opts.allow_rust_nodes,
                ..LoadOptions::default()
            },
            open: HashMap::new(),
            published: HashMap::new(),
            last: HashMap::new(),
            probe: keys::KeyProbe::default(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.open.values().filter_map(|o| o.due).min()
    }

    fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            "textDocument/didOpen" => {
                if let Ok(p) = serde_json::from_value::<lt::DidOpenTextDocumentParams>(n.params) {
                    self.set_text(p.text_document.uri.as_str(), &p.text_document.text, true);
                }
            }
            "textDocument/didChange" => {
                if let Ok(p) = serde_json::from_value::<lt::DidChangeTextDocumentParams>(n.params) {
                    // Full sync: the last change holds the whole text.
                    if let Some(change) = p.content_changes.into_iter().last() {
                        self.set_text(p.text_document.uri.as_str(), &change.text, false);
                    }
                }
            }
            "textDocument/didSave" => {
                if let Ok(p) = serde_json::from_value::<lt::DidSaveTextDocumentParams>(n.params)
                    && let Some(open) = self.open.get_mut(p.text_document.uri.as_str())
                {
                    open.due = Some(Instant::now());
                }
            }
            "textDocument/didClose" => {
                if let Ok(p) = serde_json::from_value::<lt::DidCloseTextDocumentParams>(n.params) {
                    self.open.remove(p.text_document.uri.as_str());
                }
            }
            _ => {}
        }
    }

    fn set_text(&mut self, uri: &str, text: &str, now: bool) {
        let Some(path) = text::path_from_uri(uri) else {
            return;
        };
        let doc = Document::new(&path, text);
        let index = LineIndex::new(&doc.text);
        let due = Instant::now() + if now { Duration::ZERO } else { DEBOUNCE };
        self.open.insert(
            uri.to_string(),
            Open {
                doc,
                index,
                due: Some(due),
            },
        );
    }

    /// Check every document whose debounce has passed; the notifications to send.
    fn run_due_checks(&mut self) -> Vec<Notification> {
        let now = Instant::now();
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| o.due.is_some_and(|d| d <= now))
            .map(|(u, _)| u.clone())
            .collect();
        let mut out = Vec::new();
        for uri in due {
            let Some(open) = self.open.get_mut(&uri) else {
                continue;
            };
            open.due = None;
            let program = check(&open.doc.path, &open.doc.text, &self.load_opts);
            let by_file = publishable(&program, &open.doc.path);
            let mut now_published = BTreeSet::new();
            for (file_uri, (diags, spans)) in by_file {
                self.last.insert(file_uri.clone(), spans);
                out.push(publish(&file_uri, diags));
                now_published.insert(file_uri);
            }
            let before = self.published.insert(uri.clone(), now_published.clone());
            for stale in before.unwrap_or_default().difference(&now_published) {
                self.last.remove(stale);
                out.push(publish(stale, Vec::new()));
            }
        }
        out
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        match self.answer(req) {
            Ok(v) => Response::new_ok(id, v),
            Err((code, msg)) => Response::new_err(id, code as i32, msg),
        }
    }

    fn answer(&mut self, req: Request) -> Result<Value, (ErrorCode, String)> {
        let bad = |e: serde_json::Error| (ErrorCode::InvalidParams, e.to_string());
        let json =
            |v: serde_json::Result<Value>| v.map_err(|e| (ErrorCode::InternalError, e.to_string()));
        match req.method.as_str() {
            "textDocument/hover" => {
                let p: lt::HoverParams = serde_json::from_value(req.params).map_err(bad)?;
                let (open, offset) = self.at(&p.text_document_position_params)?;
                let uri = p.text_document_position_params.text_document.uri.as_str();
                let diags: Vec<(Range<usize>, &str)> = self
                    .last
                    .get(uri)
                    .map(|v| v.iter().map(|(s, c)| (s.clone(), *c)).collect())
                    .unwrap_or_default();
                let hover = open.doc.hover(offset, &diags).map(|md| lt::Hover {
                    contents: lt::HoverContents::Markup(lt::MarkupContent {
                        kind: lt::MarkupKind::Markdown,
                        value: md,
                    }),
                    range: None,
                });
                json(serde_json::to_value(hover))
            }
            "textDocument/definition" => {
                let p: lt::GotoDefinitionParams =
                    serde_json::from_value(req.params).map_err(bad)?;
                let (open, offset) = self.at(&p.text_document_position_params)?;
                let Some((path, span)) = open.doc.definition(offset, &self.load_opts.cwd) else {
                    return Ok(Value::Null);
                };
                let range = if path == open.doc.path {
                    open.index.range(&open.doc.text, &span)
                } else {
                    lt::Range::default()
                };
                let loc = location(&path, range)?;
                json(serde_json::to_value(lt::GotoDefinitionResponse::Scalar(
                    loc,
                )))
            }
            "textDocument/references" => {
                let p: lt::ReferenceParams = serde_json::from_value(req.params).map_err(bad)?;
                let (open, offset) = self.at(&p.text_document_position)?;
                let locs = open
                    .doc
                    .references(offset, p.context.include_declaration)
                    .iter()
                    .map(|s| location(&open.doc.path, open.index.range(&open.doc.text, s)))
                    .collect::<Result<Vec<_>, _>>()?;
                json(serde_json::to_value(locs))
            }
            "textDocument/prepareRename" => {
                let p: lt::TextDocumentPositionParams =
                    serde_json::from_value(req.params).map_err(bad)?;
                let (open, offset) = self.at(&p)?;
                let range = open.doc.rename_target(offset).map(|s| {
                    lt::PrepareRenameResponse::Range(open.index.range(&open.doc.text, &s))
                });
                json(serde_json::to_value(range))
            }
            "textDocument/rename" => {
                let p: lt::RenameParams = serde_json::from_value(req.params).map_err(bad)?;
                let (open, offset) = self.at(&p.text_document_position)?;
                let spans = open
                    .doc
                    .rename(offset, &p.new_name)
                    .map_err(|e| (ErrorCode::RequestFailed, e))?;
                let edits: Vec<lt::TextEdit> = spans
                    .iter()
                    .map(|s| lt::TextEdit {
                        range: open.index.range(&open.doc.text, s),
                        new_text: p.new_name.clone(),
                    })
                    .collect();
                // `WorkspaceEdit::changes` is keyed by `Uri` (which clippy sees as
                // mutable); the JSON form is a plain object keyed by the URI string.
                let uri = p.text_document_position.text_document.uri.as_str();
                json(
                    serde_json::to_value(edits)
                        .map(|e| serde_json::json!({ "changes": { uri: e } })),
                )
            }
            "textDocument/completion" => {
                let p: lt::CompletionParams = serde_json::from_value(req.params).map_err(bad)?;
                let uri = p
                    .text_document_position
                    .text_document
                    .uri
                    .as_str()
                    .to_string();
                let (_, offset) = self.at(&p.text_document_position)?;
                let Some(open) = self.open.get(&uri) else {
                    return Ok(Value::Null);
                };
                let items: Vec<lt::CompletionItem> = open
                    .doc
                    .completion(offset, &mut self.probe)
                    .into_iter()
                    .map(|c| lt::CompletionItem {
                        kind: Some(match c.kind {
                            CompletionKind::Key => lt::CompletionItemKind::FIELD,
                            CompletionKind::NodeKind => lt::CompletionItemKind::CLASS,
                            CompletionKind::NodeId | CompletionKind::StartName => {
                                lt::CompletionItemKind::REFERENCE
                            }
                            CompletionKind::Value => lt::CompletionItemKind::ENUM_MEMBER,
                        }),
                        documentation: c.detail.map(|d| {
                            lt::Documentation::MarkupContent(lt::MarkupContent {
                                kind: lt::MarkupKind::Markdown,
                                value: d,
                            })
                        }),
                        label: c.label,
                        ..lt::CompletionItem::default()
                    })
                    .collect();
                json(serde_json::to_value(lt::CompletionResponse::Array(items)))
            }
            other => Err((
                ErrorCode::MethodNotFound,
                format!("agentd lsp does not implement `{other}`"),
            )),
        }
    }

    /// The open document and byte offset a position names.
    fn at(
        &self,
        p: &lt::TextDocumentPositionParams,
    ) -> Result<(&Open, usize), (ErrorCode, String)> {
        let open = self.open.get(p.text_document.uri.as_str()).ok_or((
            ErrorCode::InvalidParams,
            format!("`{}` is not open", p.text_document.uri.as_str()),
        ))?;
        let offset = open.index.offset(&open.doc.text, p.position);
        Ok((open, offset))
    }
}

fn location(path: &Path, range: lt::Range) -> Result<lt::Location, (ErrorCode, String)> {
    let uri = lt::Uri::from_str(&text::uri_from_path(path)).map_err(|e| {
        (
            ErrorCode::InternalError,
            format!("no URI for {}: {e}", path.display()),
        )
    })?;
    Ok(lt::Location::new(uri, range))
}

fn publish(uri: &str, diagnostics: Vec<lt::Diagnostic>) -> Notification {
    let params = serde_json::json!({ "uri": uri, "diagnostics": diagnostics });
    Notification::new("textDocument/publishDiagnostics".into(), params)
}

/// Load and validate a document as `agentd check` does. When the buffer is the file
/// on disk, exactly `check`'s path (signatures included); an edited buffer is loaded
/// from memory (its children from disk), and signatures, which cover the bytes on
/// disk, are checked again once it is saved.
pub fn check(path: &Path, text: &str, load_opts: &LoadOptions) -> Program {
    let on_disk = std::fs::read(path).is_ok_and(|bytes| bytes == text.as_bytes());
    if on_disk {
        let (mut program, verification) = crate::signing::load_verified(
            path,
            load_opts,
            &crate::signing::VerifyOptions::default(),
        );
        program.diagnostics.extend(verification.diagnostics);
        crate::diagnostics::cli_rust_node_help(&mut program.diagnostics);
        program
    } else {
        let mut program = crate::load::load_str(path, text, load_opts);
        // The in-memory root is what the user sees, whatever the loader recorded.
        program.sources.add_text(path, text);
        crate::diagnostics::cli_rust_node_help(&mut program.diagnostics);
        program
    }
}

type FileDiagnostics = (Vec<lt::Diagnostic>, Vec<(Range<usize>, &'static str)>);

/// The program's diagnostics as protocol diagnostics, by file URI. The root is always
/// present (an empty list clears it).
pub fn publishable(program: &Program, root: &Path) -> BTreeMap<String, FileDiagnostics> {
    // A child found through the working-directory fallback has a relative path.
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut out: BTreeMap<String, FileDiagnostics> = BTreeMap::new();
    out.insert(text::uri_from_path(root), Default::default());
    let mut indexes: HashMap<PathBuf, LineIndex> = HashMap::new();
    for d in &program.diagnostics {
        let text = program.sources.text(&d.file).unwrap_or("");
        let index = indexes
            .entry(d.file.clone())
            .or_insert_with(|| LineIndex::new(text));
        let span = d.span.clone().unwrap_or(0..0);
        let entry = out
            .entry(text::uri_from_path(&cwd.join(&d.file)))
            .or_default();
        entry.0.push(to_lsp(d, index.range(text, &span)));
        entry.1.push((span, d.code.as_str()));
    }
    out
}

fn to_lsp(d: &Diagnostic, range: lt::Range) -> lt::Diagnostic {
    let mut message = d.message.clone();
    if let Some(label) = &d.label {
        message.push_str(&format!("\n{label}"));
    }
    for note in &d.notes {
        message.push_str(&format!("\nnote: {note}"));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    lt::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => lt::DiagnosticSeverity::ERROR,
            Severity::Warning => lt::DiagnosticSeverity::WARNING,
        }),
        code: Some(lt::NumberOrString::String(d.code.to_string())),
        source: Some("agentd".into()),
        message,
        data: Some(serde_json::json!({
            "explain": format!("agentd explain {}", d.code),
            "summary": d.code.info().summary,
        })),
        ..lt::Diagnostic::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<(PathBuf, String)> {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = crate::compat_support::toml_files(&[
            here.join("../workflows"),
            here.join("../tests/ui/workflows"),
            crate::compat_support::dir(),
        ]);
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
            .collect()
    }

    /// Edits of `text` of the kinds a user makes mid-typing: cut short, a byte
    /// removed, an unbalanced quote or bracket, a half-written table.
    fn variants(text: &str) -> Vec<String> {
        let mut out = vec![text.to_string()];
        let n = text.len();
        for i in [1, 3, 5, 7] {
            let mut at = n * i / 8;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            out.push(text[..at].to_string());
            let mut cut = text.to_string();
            if at < n {
                cut.remove(at);
            }
            out.push(cut);
            for insert in [
                "\"",
                "[",
                "=",
                "\n[[nodes]]\nid = \"",
                "\n[nodes.",
                "é\u{1F600}",
            ] {
                let mut s = text.to_string();
                s.insert_str(at, insert);
                out.push(s);
            }
        }
        out
    }

    #[test]
    #[cfg_attr(
        agentd_no_compat,
        ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
    )]
    fn every_request_on_every_edit_of_the_corpus_answers_without_panicking() {
        let files = corpus();
        assert!(
            files.len() > 40,
            "corpus went missing ({} files)",
            files.len()
        );
        let mut probe = keys::KeyProbe::default();
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut answered = 0usize;
        for (path, text) in &files {
            for (i, variant) in variants(text).iter().enumerate() {
                let doc = Document::new(path, variant);
                let index = LineIndex::new(&doc.text);
                let whole = [(0..doc.text.len(), "dangling_edge")];
                let stride = (doc.text.len() / 37).max(1);
                for offset in (0..=doc.text.len() + 2).step_by(stride) {
                    let pos = index.position(&doc.text, offset);
                    let back = index.offset(&doc.text, pos);
                    assert!(back <= doc.text.len());
                    answered += usize::from(doc.hover(back, &whole).is_some());
                    let _ = doc.definition(back, &cwd);
                    let _ = doc.references(back, true);
                    let _ = doc.rename_target(back);
                    let _ = doc.rename(back, "renamed");
                    let _ = doc.rename(back, "a.b");
                    let _ = doc.completion(back, &mut probe);
                }
                // The whole check on a few edits per file (it is the slow part).
                if i % 7 == 0 {
                    let program = check(path, variant, &LoadOptions::default());
                    let by_file = publishable(&program, path);
                    assert!(by_file.contains_key(&text::uri_from_path(path)));
                }
            }
        }
        assert!(answered > 500, "hover answered only {answered} times");
    }
}
