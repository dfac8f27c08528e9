//! `mcp-double`: a small MCP server speaking NDJSON JSON-RPC 2.0 on stdin and
//! stdout, for tests that need a real child process.
//!
//! Tools (`tools/call`):
//! - `echo`: `content` = one text item holding the arguments as JSON,
//!   `structuredContent` = the arguments;
//! - `fail`: the same, with `isError: true`;
//! - `pid`: the server's process id (tests check respawns with it);
//! - `env`: the value of the environment variable named by `arguments.name`;
//! - `read`: the text of the file at `arguments.path`; when it cannot be read,
//!   `isError: true` with the error and its OS code (`os error 13` for the
//!   kernel sandbox's `EACCES`);
//! - `sleep`: sleeps `arguments.ms` milliseconds, then answers like `echo`;
//! - `hang`: never answers;
//! - `exit`: exits (status 3) without answering;
//! - `huge`: answers with one line longer than 16 MiB;
//! - anything else: JSON-RPC error -32602.
//!
//! Resources (`resources/read`): `mem://hello` → one text item `hello`;
//! anything else: JSON-RPC error -32002.
//!
//! Flags select whole-server behaviour:
//! - `--garbage`: answer every request with a line that is not JSON;
//! - `--silent`: read requests, never answer (not even `initialize`);
//! - `--chatty`: before every answer, send a notification, a `ping`
//!   request and a response to an id nobody asked for;
//! - `--log FILE`: append every received line to FILE;
//! - `--notify`: resource notifications, written from a thread of their own
//!   whether or not a request is going (resource triggers). After answering
//!   `resources/subscribe {uri}`: 300 ms later a burst of five
//!   `notifications/resources/updated` for `uri` 20 ms apart plus one for
//!   `mem://elsewhere`, then 1.5 s later one more for `uri`. After answering
//!   the first `resources/list` (`mem://hello` and whatever was added):
//!   800 ms later `mem://new-1` is added and `notifications/resources/list_changed`
//!   sent, 800 ms after that `mem://new-2`, announced twice.
//!
//! Without `--notify`, `resources/list` lists `mem://hello` and
//! `resources/subscribe` answers `{}`.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

struct Flags {
    garbage: bool,
    silent: bool,
    chatty: bool,
    notify: bool,
    log: Option<String>,
}

/// The resources `resources/list` answers with, shared with `--notify`'s
/// thread.
type Listed = Arc<Mutex<Vec<String>>>;

fn note(method: &str, params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// `--notify` after a subscription to `uri`.
fn updates_after_subscribe(uri: String) {
    std::thread::spawn(move || {
        let updated = |u: &str| {
            let _ = send(
                &mut std::io::stdout(),
                &note("notifications/resources/updated", &json!({"uri": u})),
            );
        };
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..5 {
            updated(&uri);
            std::thread::sleep(Duration::from_millis(20));
        }
        updated("mem://elsewhere");
        std::thread::sleep(Duration::from_millis(1500));
        updated(&uri);
    });
}

/// `--notify` after the first listing.
fn growth_after_list(listed: Listed) {
    std::thread::spawn(move || {
        let changed = || {
            let _ = send(
                &mut std::io::stdout(),
                &note("notifications/resources/list_changed", &json!({})),
            );
        };
        let add = |u: &str| {
            listed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(u.to_owned());
        };
        std::thread::sleep(Duration::from_millis(800));
        add("mem://new-1");
        changed();
        std::thread::sleep(Duration::from_millis(800));
        add("mem://new-2");
        changed();
        changed();
    });
}

fn flags() -> Flags {
    let mut f = Flags {
        garbage: false,
        silent: false,
        chatty: false,
        notify: false,
        log: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--garbage" => f.garbage = true,
            "--silent" => f.silent = true,
            "--chatty" => f.chatty = true,
            "--notify" => f.notify = true,
            "--log" => f.log = args.next(),
            other => {
                eprintln!("mcp-double: unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    f
}

fn send(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    // One write per line, so lines from several threads never interleave.
    out.write_all(format!("{v}\n").as_bytes())?;
    out.flush()
}

fn tool_result(args: &Value, is_error: bool) -> Value {
    json!({
        "content": [{"type": "text", "text": args.to_string()}],
        "isError": is_error,
        "structuredContent": args,
    })
}

fn text_result(text: String) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

/// The answer to one request, or `None` to say nothing.
fn answer(
    method: &str,
    params: &Value,
    listed: &Listed,
    out: &mut impl Write,
) -> std::io::Result<Option<Result<Value, (i64, String)>>> {
    Ok(Some(match method {
        "initialize" => Ok(json!({
            "protocolVersion": "2025-03-26",
            "capabilities": {"tools": {}, "resources": {}},
            "serverInfo": {"name": "mcp-double", "version": "1"},
        })),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let args = params.get("arguments").cloned().unwrap_or(Value::Null);
            match name {
                "echo" => Ok(tool_result(&args, false)),
                "fail" => Ok(tool_result(&args, true)),
                "pid" => Ok(text_result(std::process::id().to_string())),
                "env" => {
                    let var = args.get("name").and_then(Value::as_str).unwrap_or("");
                    Ok(text_result(std::env::var(var).unwrap_or_default()))
                }
                "read" => {
                    let path = args.get("path").and_then(Value::as_str).unwrap_or("");
                    Ok(match std::fs::read_to_string(path) {
                        Ok(text) => text_result(text),
                        Err(e) => {
                            let mut r = text_result(format!("cannot read {path}: {e}"));
                            r["isError"] = Value::Bool(true);
                            r
                        }
                    })
                }
                "sleep" => {
                    let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    Ok(tool_result(&args, false))
                }
                "hang" => return Ok(None),
                "exit" => std::process::exit(3),
                "huge" => {
                    let filler = "x".repeat(17 * 1024 * 1024);
                    writeln!(out, "{{\"pad\":\"{filler}\"}}")?;
                    out.flush()?;
                    return Ok(None);
                }
                other => Err((-32602, format!("unknown tool `{other}`"))),
            }
        }
        "resources/read" => match params.get("uri").and_then(Value::as_str) {
            Some("mem://hello") => Ok(json!({"contents": [
                {"uri": "mem://hello", "mimeType": "text/plain", "text": "hello"}
            ]})),
            Some(uri) => Err((-32002, format!("resource not found: {uri}"))),
            None => Err((-32602, "missing uri".to_owned())),
        },
        "resources/list" => {
            let uris = listed.lock().unwrap_or_else(PoisonError::into_inner);
            let items: Vec<Value> = uris.iter().map(|u| json!({"uri": u, "name": u})).collect();
            Ok(json!({ "resources": items }))
        }
        "resources/subscribe" => Ok(json!({})),
        "ping" => Ok(json!({})),
        other => Err((-32601, format!("method not found: {other}"))),
    }))
}

fn main() -> std::io::Result<()> {
    let f = flags();
    // A line on stderr: clients should log it under the server's name.
    eprintln!("mcp-double: started as pid {}", std::process::id());
    let stdin = std::io::stdin();
    // Not locked for good: `--notify` writes from threads of its own (each
    // line is one write under the handle's lock).
    let mut out = std::io::stdout();
    let listed: Listed = Arc::new(Mutex::new(vec!["mem://hello".to_owned()]));
    let mut grown = false;
    let mut log = match &f.log {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => None,
    };
    let mut server_ids = 1_000_u64;
    for line in stdin.lock().lines() {
        let line = line?;
        if let Some(log) = log.as_mut() {
            writeln!(log, "{line}")?;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id").cloned() else {
            // A notification (`notifications/initialized`): nothing to say.
            continue;
        };
        if msg.get("method").is_none() {
            // A response to one of our pings.
            continue;
        }
        if f.silent {
            continue;
        }
        if f.garbage {
            writeln!(out, "this is not json {{")?;
            out.flush()?;
            continue;
        }
        if f.chatty {
            send(
                &mut out,
                &json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "working"}}),
            )?;
            server_ids += 1;
            send(
                &mut out,
                &json!({"jsonrpc": "2.0", "id": server_ids, "method": "ping"}),
            )?;
            send(
                &mut out,
                &json!({"jsonrpc": "2.0", "id": 999_999, "result": {"stale": true}}),
            )?;
        }
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        let reply = match answer(method, &params, &listed, &mut out)? {
            None => continue,
            Some(Ok(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Some(Err((code, message))) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        };
        send(&mut out, &reply)?;
        if f.notify && method == "resources/subscribe" {
            let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
            updates_after_subscribe(uri.to_owned());
        }
        if f.notify && method == "resources/list" && !grown {
            grown = true;
            growth_after_list(Arc::clone(&listed));
        }
    }
    Ok(())
}
