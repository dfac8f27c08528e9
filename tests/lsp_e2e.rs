//! `agentd lsp` driven by a scripted client over stdio, speaking real JSON-RPC with
//! `Content-Length` framing, against the real `agentd` binary.
//!
//! The central check: for every workflow file in tests/ui and workflows/, the
//! diagnostics the server publishes on `didOpen` are exactly what
//! `agentd check --message-format json` reports for the same file (code, severity,
//! message with its label/notes/help, file and byte span).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const AGENTD: &str = env!("CARGO_BIN_EXE_agentd");
/// Longest wait for any one reply; the test fails (never hangs) past it.
const TIMEOUT: Duration = Duration::from_secs(30);

mod support;

use support::workspace as repo;

fn uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for &b in path.to_string_lossy().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(AGENTD)
            .arg("lsp")
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn agentd lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("Content-Length header")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let v: Value = serde_json::from_slice(&body).expect("server sent JSON");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            rx,
            next_id: 1,
        };
        let caps = c.request(
            "initialize",
            json!({"processId": null, "rootUri": uri(&repo()), "capabilities": {}}),
        );
        assert!(
            caps["capabilities"]["hoverProvider"]
                .as_bool()
                .unwrap_or(false),
            "{caps}"
        );
        c.notify("initialized", json!({}));
        c
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request; return its result, collecting notifications that arrive first.
    fn request_collect(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut notes = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = match self.rx.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => panic!("no reply to {method} in {TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("server exited during {method}"),
            };
            if msg.get("id") == Some(&json!(id)) {
                if let Some(err) = msg.get("error") {
                    return (json!({"error": err}), notes);
                }
                return (msg["result"].clone(), notes);
            }
            notes.push(msg);
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_collect(method, params).0
    }

    /// Wait for the next publishDiagnostics for `file_uri`.
    fn wait_publish(&mut self, file_uri: &str) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no diagnostics for {file_uri}"));
            if msg["method"] == "textDocument/publishDiagnostics"
                && msg["params"]["uri"] == file_uri
            {
                return msg["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }

    fn open(&mut self, path: &Path, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(path), "languageId": "toml", "version": 1, "text": text}}),
        );
    }

    fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r, Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.child.try_wait().expect("wait") {
                Some(status) => {
                    assert!(status.success(), "agentd lsp exited with {status}");
                    return;
                }
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!("agentd lsp did not exit after `exit`");
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Byte offset of an LSP position (UTF-16 columns) in `text`.
fn offset(text: &str, pos: &Value) -> usize {
    let line = pos["line"].as_u64().expect("line") as usize;
    let col = pos["character"].as_u64().expect("character") as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    let mut units = 0;
    for (i, c) in text[start..].char_indices() {
        if units >= col || c == '\n' {
            return start + i;
        }
        units += c.len_utf16();
    }
    text.len()
}

/// (file, code, severity, full message, byte span) — the comparable form.
type Key = (String, String, String, String, usize, usize);

fn from_check(line: &Value) -> Key {
    let mut message = line["message"].as_str().expect("message").to_string();
    if let Some(l) = line["label"].as_str() {
        message.push_str(&format!("\n{l}"));
    }
    for n in line["notes"].as_array().into_iter().flatten() {
        message.push_str(&format!("\nnote: {}", n.as_str().expect("note")));
    }
    if let Some(h) = line["help"].as_str() {
        message.push_str(&format!("\nhelp: {h}"));
    }
    (
        uri(&repo().join(line["file"].as_str().expect("file"))),
        line["code"].as_str().expect("code").to_string(),
        line["severity"].as_str().expect("severity").to_string(),
        message,
        line["byte_start"].as_u64().unwrap_or(0) as usize,
        line["byte_end"].as_u64().unwrap_or(0) as usize,
    )
}

fn from_lsp(file_uri: &str, text: &str, d: &Value) -> Key {
    let severity = match d["severity"].as_u64() {
        Some(1) => "error",
        Some(2) => "warning",
        other => panic!("unexpected severity {other:?}"),
    };
    (
        file_uri.to_string(),
        d["code"].as_str().expect("code").to_string(),
        severity.to_string(),
        d["message"].as_str().expect("message").to_string(),
        offset(text, &d["range"]["start"]),
        offset(text, &d["range"]["end"]),
    )
}

#[test]
fn published_diagnostics_match_agentd_check_for_every_ui_and_example_workflow() {
    let root = repo();
    let files = support::compat::toml_files(&[root.join("tests/ui"), root.join("workflows")]);
    assert!(files.len() > 20, "corpus went missing: {files:?}");
    let mut client = Client::start();
    let mut with_diagnostics = 0;
    for file in &files {
        let out = Command::new(AGENTD)
            .args(["check", "--message-format", "json"])
            .arg(file)
            .current_dir(&root)
            .output()
            .expect("agentd check");
        let expected: BTreeSet<Key> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| from_check(&serde_json::from_str(l).expect("check JSON line")))
            .collect();

        let text = std::fs::read_to_string(file).expect("read");
        client.open(file, &text);
        // Every publish of the open's check arrives before the answer to a later request.
        let (_, notes) = client.request_collect(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri(file)}, "position": {"line": 0, "character": 0}}),
        );
        let mut got = BTreeSet::new();
        let mut root_published = false;
        for n in notes
            .iter()
            .filter(|n| n["method"] == "textDocument/publishDiagnostics")
        {
            let file_uri = n["params"]["uri"].as_str().expect("uri");
            root_published |= file_uri == uri(file);
            let path = PathBuf::from(
                file_uri
                    .strip_prefix("file://")
                    .expect("file uri")
                    .replace("%20", " "),
            );
            let file_text = std::fs::read_to_string(&path).unwrap_or_default();
            for d in n["params"]["diagnostics"].as_array().expect("diagnostics") {
                got.insert(from_lsp(file_uri, &file_text, d));
            }
        }
        assert!(root_published, "{}: nothing published", file.display());
        assert_eq!(got, expected, "{}", file.display());
        with_diagnostics += usize::from(!expected.is_empty());
        client.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri(file)}}),
        );
    }
    // The corpus must exercise both outcomes.
    assert!(
        with_diagnostics > 5,
        "only {with_diagnostics} files had diagnostics"
    );
    assert!(with_diagnostics < files.len());
    client.shutdown();
}

fn pos(text: &str, needle: &str, nth: usize, plus: usize) -> Value {
    let at = text.match_indices(needle).nth(nth).expect(needle).0 + plus;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": col})
}

#[test]
fn hover_definition_references_completion_and_rename_on_an_example() {
    let file = repo().join("workflows/map-fanout.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let doc = json!({"uri": uri(&file)});
    let mut c = Client::start();
    c.open(&file, &text);
    assert!(c.wait_publish(&uri(&file)).is_empty());

    // Hover on a node kind shows the kind's reference section.
    let h = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": pos(&text, "\"map\"", 0, 2)}),
    );
    let md = h["contents"]["value"].as_str().expect("hover text");
    assert!(md.starts_with("### map"), "{md}");
    // Hover on a node id in an edge shows that node.
    let h = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": pos(&text, "from = \"each\"", 0, 9)}),
    );
    let md = h["contents"]["value"].as_str().expect("hover text");
    assert!(md.contains("items_from = \"trigger.items\""), "{md}");

    // Definition: an edge end goes to the node's id; a child path to the child file.
    let d = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": pos(&text, "input_from = \"each\"", 0, 14)}),
    );
    assert_eq!(d["uri"], uri(&file));
    assert_eq!(d["range"]["start"], pos(&text, "id = \"each\"", 0, 6));
    let d = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": pos(&text, "map-child.toml\"", 0, 3)}),
    );
    assert_eq!(d["uri"], uri(&repo().join("workflows/map-child.toml")));

    // References of `each`: the id, the entry node, the context path, the edges.
    let r = c.request(
        "textDocument/references",
        json!({"textDocument": doc, "position": pos(&text, "id = \"each\"", 0, 7),
               "context": {"includeDeclaration": true}}),
    );
    let refs = r.as_array().expect("locations");
    let expected = text.matches("\"each").count();
    assert_eq!(refs.len(), expected, "{r}");

    // Completion: node kinds after `type = "`, node ids after `to = "`, keys of a kind.
    let mut edited = text.clone();
    edited.push_str("\n[[nodes]]\nid = \"extra\"\ntype = \"\n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&file), "version": 2}, "contentChanges": [{"text": edited}]}),
    );
    let end = pos(&edited, "type = \"\n", 0, 8);
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": doc, "position": end}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["label"].as_str().expect("label"))
        .collect();
    assert!(
        labels.contains(&"http_request") && labels.contains(&"map"),
        "{labels:?}"
    );
    // The debounced check of the edit reports the bad node.
    let diags = c.wait_publish(&uri(&file));
    assert!(!diags.is_empty(), "the edit has an error");

    let mut edited = text.clone();
    edited.push_str("\n[[edges]]\nfrom = \"results\"\nto = \"\n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&file), "version": 3}, "contentChanges": [{"text": edited}]}),
    );
    let end = pos(&edited, "to = \"\n", 0, 6);
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": doc, "position": end}),
    );
    let labels: BTreeSet<&str> = items
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["label"].as_str().expect("label"))
        .collect();
    assert_eq!(
        labels,
        BTreeSet::from(["each", "results", "element_failed"]),
        "{items}"
    );

    let mut edited = text.clone();
    edited.push_str("\n[[nodes]]\nid = \"load\"\ntype = \"read_file\"\npa\n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&file), "version": 4}, "contentChanges": [{"text": edited}]}),
    );
    let at = pos(&edited, "\npa\n", 0, 3);
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": doc, "position": at}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["label"].as_str().expect("label"))
        .collect();
    assert!(
        labels.contains(&"path_from") && labels.contains(&"retry"),
        "{labels:?}"
    );
    assert!(
        !labels.contains(&"id"),
        "keys already written are not offered: {labels:?}"
    );

    // Rename `each` everywhere; a name that breaks context paths is refused.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&file), "version": 5}, "contentChanges": [{"text": text}]}),
    );
    let at = pos(&text, "id = \"each\"", 0, 7);
    let r = c.request(
        "textDocument/rename",
        json!({"textDocument": doc, "position": at, "newName": "for_each"}),
    );
    let edits = r["changes"][uri(&file)].as_array().expect("edits");
    assert_eq!(edits.len(), expected);
    assert!(edits.iter().all(|e| e["newText"] == "for_each"));
    let r = c.request(
        "textDocument/rename",
        json!({"textDocument": doc, "position": at, "newName": "a.b"}),
    );
    assert!(r.get("error").is_some(), "{r}");

    // Requests the server cannot answer get errors, and it keeps serving.
    let r = c.request("textDocument/hover", json!({"bogus": true}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c.request("workspace/unknownThing", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///not/open.toml"}, "position": {"line": 0, "character": 0}}),
    );
    assert!(r.get("error").is_some());
    let r = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": {"line": 99999, "character": 99999}}),
    );
    assert!(r.get("error").is_none(), "{r}");
    c.shutdown();
}
