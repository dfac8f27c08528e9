//! The runtime's Streamable HTTP client (`mcp::http::HttpServer`) against a
//! small server on 127.0.0.1 that speaks the wire format: the server-message
//! stream (`GET`, resumed with `Last-Event-ID` after `retry`), the
//! `AuthProvider` seam (asked for every request, told about a `401`, one
//! retry), and a server that picks a protocol version we do not speak.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentd_runtime::mcp::http::HttpServer;
use agentd_runtime::mcp::{AuthProvider, Listing, McpServer};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

/// `(method, headers lower-cased, body)` of one request.
type Seen = (String, Vec<(String, String)>, String);

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let method = line.split_whitespace().next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Serve every connection with `answer` on its own thread; the requests seen.
fn serve(
    answer: impl Fn(&mut TcpStream, &Seen) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (sink, answer) = (Arc::clone(&sink), Arc::clone(&answer));
            std::thread::spawn(move || {
                let Ok(mut w) = stream.try_clone() else {
                    return;
                };
                let mut r = BufReader::new(stream);
                if let Some(req) = read_request(&mut r) {
                    sink.lock().expect("lock").push(req.clone());
                    answer(&mut w, &req);
                }
            });
        }
    });
    (url, seen)
}

fn json_reply(s: &mut TcpStream, status: &str, extra: &str, body: &Value) {
    let body = body.to_string();
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The common replies: initialize (session `s-9`, version `version`),
/// notifications accepted, `tools/call` echoed.
fn basic(s: &mut TcpStream, req: &Seen, version: &str) {
    let msg: Value = serde_json::from_str(&req.2).unwrap_or(Value::Null);
    match msg["method"].as_str() {
        Some("initialize") => json_reply(
            s,
            "200 OK",
            "Mcp-Session-Id: s-9\r\n",
            &json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"protocolVersion": version, "capabilities": {}}}),
        ),
        Some("tools/call") => json_reply(
            s,
            "200 OK",
            "",
            &json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [{"type": "text", "text": "ok"}]}}),
        ),
        _ => {
            let _ = write!(
                s,
                "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    }
}

fn client(url: &str, auth: Option<Arc<dyn AuthProvider>>) -> HttpServer {
    HttpServer::new(
        "remote",
        url,
        Vec::new(),
        Arc::new(|s: &str| Err(format!("no secret {s}"))),
        auth,
    )
    .expect("a client")
}

#[test]
fn the_server_message_stream_is_followed_and_resumed_from_its_last_event_id() {
    let gets = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&gets);
    let (url, seen) = serve(move |s, req| {
        if req.0 != "GET" {
            return basic(s, req, "2025-11-25");
        }
        let n = count.fetch_add(1, Ordering::SeqCst);
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        );
        let note = |uri: &str| json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}});
        if n == 0 {
            // Two notifications, a server request, then the stream ends.
            let _ = write!(
                s,
                "retry: 250\nid: g1\ndata: {}\n\nid: g2\ndata: {}\n\ndata: {}\n\n",
                note("mem://a"),
                json!({"jsonrpc": "2.0", "id": 5, "method": "roots/list"}),
                note("mem://b")
            );
        } else {
            let _ = write!(s, "id: g3\ndata: {}\n\n", note("mem://c"));
        }
    });
    let c = client(&url, None);
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let done = Arc::clone(&got);
    let began = Instant::now();
    c.listen(
        T,
        &mut |m: Value| sink.lock().expect("lock").push(m["params"]["uri"].clone()),
        &|| done.lock().expect("lock").len() >= 3 || began.elapsed() > T,
    )
    .expect("the stream is held");
    assert_eq!(
        *got.lock().expect("lock"),
        vec![json!("mem://a"), json!("mem://b"), json!("mem://c")]
    );
    let seen = seen.lock().expect("lock").clone();
    let gets: Vec<&Seen> = seen.iter().filter(|r| r.0 == "GET").collect();
    assert_eq!(header(&gets[0].1, "last-event-id"), None);
    assert_eq!(header(&gets[1].1, "last-event-id"), Some("g2"));
    assert_eq!(header(&gets[1].1, "mcp-session-id"), Some("s-9"));
    // The server's roots/list request was refused with -32601.
    assert!(
        seen.iter()
            .any(|r| r.2.contains("\"id\":5") && r.2.contains("-32601")),
        "{seen:?}"
    );
}

/// Hands out `Bearer t<n>`, counting the 401s it is told about.
#[derive(Debug, Default)]
struct Rotating {
    generation: AtomicUsize,
    challenges: Mutex<Vec<Option<String>>>,
}

impl AuthProvider for Rotating {
    fn authorization(&self, _: Option<Instant>) -> Result<Option<String>, String> {
        Ok(Some(format!(
            "Bearer t{}",
            self.generation.load(Ordering::SeqCst)
        )))
    }

    fn unauthorized(&self, www: Option<&str>, _: Option<Instant>) -> Result<bool, String> {
        self.challenges
            .lock()
            .expect("lock")
            .push(www.map(str::to_owned));
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }
}

#[test]
fn the_auth_provider_is_asked_per_request_and_a_401_is_retried_once_with_a_fresh_credential() {
    let (url, seen) = serve(|s, req| {
        // Only the second generation of credentials is accepted.
        if header(&req.1, "authorization") != Some("Bearer t1") {
            let _ = write!(
                s,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"http://x/.well-known/oauth-protected-resource\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        basic(s, req, "2025-06-18");
    });
    let auth = Arc::new(Rotating::default());
    let c = client(&url, Some(auth.clone()));
    let r = c
        .call_tool("echo", &json!({}), T)
        .expect("answered after the retry");
    assert_eq!(r["content"][0]["text"], json!("ok"));
    let challenges = auth.challenges.lock().expect("lock").clone();
    assert_eq!(
        challenges,
        vec![Some(
            "Bearer resource_metadata=\"http://x/.well-known/oauth-protected-resource\"".to_owned()
        )]
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter()
            .skip(1)
            .all(|r| header(&r.1, "authorization") == Some("Bearer t1"))
    );

    // A provider that cannot renew: the 401 is the error, named, with no secret in it.
    let (url, _) = serve(|s, _| {
        let _ = write!(
            s,
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    });
    let c = client(&url, None);
    let e = c.call_tool("echo", &json!({}), T).expect_err("refused");
    assert!(
        e.to_string()
            .contains("answered POST with HTTP 401: the server refused our credentials"),
        "{e}"
    );
}

#[test]
fn a_server_choosing_a_protocol_version_we_do_not_speak_is_a_clear_error() {
    let (url, _) = serve(|s, req| basic(s, req, "2031-01-01"));
    let e = client(&url, None)
        .call_tool("echo", &json!({}), T)
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("chose protocol version `2031-01-01` which agentd does not speak"),
        "{e}"
    );
}

#[test]
fn tools_and_resources_are_listed_across_every_page() {
    let (url, seen) = serve(|s, req| {
        let msg: Value = serde_json::from_str(&req.2).unwrap_or(Value::Null);
        let mut page = |result: Value| {
            json_reply(
                s,
                "200 OK",
                "",
                &json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}),
            );
        };
        match (msg["method"].as_str(), msg["params"]["cursor"].as_str()) {
            (Some("tools/list"), None) => {
                page(json!({"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "2"}));
            }
            (Some("tools/list"), Some("2")) => page(json!({"tools": [{"name": "c"}]})),
            (Some("resources/list"), _) => {
                // A server whose cursor never changes.
                page(json!({"resources": [{"uri": "mem://x"}], "nextCursor": "same"}));
            }
            _ => basic(s, req, "2025-11-25"),
        }
    });
    let c = client(&url, None);
    let tools = c.list(Listing::Tools, T).expect("two pages");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let e = c.list(Listing::Resources, T).expect_err("a cursor loop");
    assert!(e.to_string().contains("repeated the cursor `same`"), "{e}");
    let cursors: Vec<Value> = seen
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.2).ok())
        .filter(|m| m["method"] == json!("tools/list"))
        .map(|m| m["params"].clone())
        .collect();
    assert_eq!(cursors, [json!({}), json!({"cursor": "2"})]);
}
