//! Real HTTP/1.1 servers standing in for an upstream a workflow calls: each
//! request is read whole (head, then a `Content-Length` body), recorded, and
//! answered with a fixed status and JSON body, then the connection is closed.
//! Also [`free_port`], for servers started by another program.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a [`Stub`] answered.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request line and headers, CRLF-terminated, without the blank line.
    pub head: String,
    pub body: String,
}

/// A stub server on 127.0.0.1; its thread lives as long as the test process.
pub struct Stub {
    pub port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    /// Answer every request with `status` (e.g. `"200 OK"`) and `body`, over
    /// TLS when `tls` is given (a failed handshake is not recorded).
    pub fn start(
        status: &'static str,
        body: &'static str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a stub server");
        let port = listener.local_addr().expect("stub address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                match &tls {
                    None => {
                        answer(stream, status, body, &sink);
                    }
                    Some(config) => {
                        if let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) {
                            answer(rustls::StreamOwned::new(conn, stream), status, body, &sink);
                        }
                    }
                }
            }
        });
        Stub { port, seen }
    }

    /// Every whole request received so far, in order (recorded before its
    /// reply is written, so a client that has read the reply finds its request
    /// here).
    pub fn seen(&self) -> Vec<Request> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The heads of [`Stub::seen`].
    pub fn heads(&self) -> Vec<String> {
        self.seen().into_iter().map(|r| r.head).collect()
    }

    /// The bodies of [`Stub::seen`].
    pub fn bodies(&self) -> Vec<String> {
        self.seen().into_iter().map(|r| r.body).collect()
    }
}

/// Read one request from `stream`, record it in `seen`, then answer it;
/// nothing is recorded when the client went away before a whole request.
fn answer(
    stream: impl Read + Write,
    status: &str,
    body: &str,
    seen: &Mutex<Vec<Request>>,
) -> Option<()> {
    let mut r = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0_usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
        head.push_str(&line);
    }
    let mut request_body = vec![0_u8; length];
    r.read_exact(&mut request_body).ok()?;
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Request {
            head,
            body: String::from_utf8_lossy(&request_body).into_owned(),
        });
    let mut stream = r.into_inner();
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).ok()?;
    stream.flush().ok()
}

/// A TCP port free on 127.0.0.1 a moment ago, for a server another program
/// starts (it may be taken again before that program binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Wait until something listens on 127.0.0.1:`port` (at most `limit`).
pub fn wait_listening(port: u16, limit: Duration) -> bool {
    let began = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if began.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}
