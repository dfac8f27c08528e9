// Test clients: ureq for ordinary requests, a raw socket (responses parsed
// with httparse) for what a well-behaved client never sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response read off a raw socket.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `(status, content-type, body, headers)` of a ureq response.
pub fn parts(
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, String, String, ureq::http::HeaderMap) {
    let mut resp = resp.unwrap_or_else(|e| panic!("request failed: {e}"));
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("read body: {e}"));
    (status, ct, body, headers)
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    s
}

/// Read one response from `s` (head with httparse, body by Content-Length).
/// `None` when the server closed the connection before a full head.
pub fn read_response(s: &mut TcpStream) -> Option<Raw> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = resp.parse(&buf) {
            let status = resp.code.unwrap_or(0);
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = buf[head_len..].to_vec();
            while body.len() < len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            body.truncate(len);
            return Some(Raw {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Send `bytes` on a fresh connection and read one response.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Raw> {
    let mut s = connect(addr);
    s.write_all(bytes).ok()?;
    read_response(&mut s)
}

/// Whether the server closed `s` (EOF, or a reset) within the read timeout.
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut byte = [0_u8; 1];
    loop {
        match s.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}
