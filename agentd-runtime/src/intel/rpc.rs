//! The dialect's JSON-RPC intelligence adapter (docs/llm.md "Wire formats").
//!
//! One request/response pair per connection:
//!
//! ```text
//! → {"jsonrpc":"2.0","id":N,"method":"complete",
//!    "params":{"model":"fast","messages":[{"role":"user","content":"…"}],"max_tokens":1024}}
//! ← {"jsonrpc":"2.0","id":N,"result":{"content":"…","usage":{"prompt_tokens":a,"completion_tokens":b}}}
//!   | {"jsonrpc":"2.0","id":N,"error":{"code":c,"message":"…"}}
//! ```
//!
//! Over a Unix socket ([`UnixBackend`]) each message is a frame: a 4-byte
//! little-endian length, then that many bytes of UTF-8 JSON; frames over
//! [`MAX_FRAME`] (16 MiB) are rejected in both directions. Over HTTP
//! ([`HttpBackend`], plain `http://` only) the envelope is the body of a
//! `POST`, and the reply body is read up to [`MAX_HTTP_BODY`] (4 MiB).
//! Connect, read and write timeouts are the run timeout (`--timeout-secs`).
//! The id counter starts at 1 per client.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::{Backend, ChatReply, ChatRequest};
use crate::error::Error;

/// Largest frame accepted or sent over the Unix socket.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest HTTP reply body accepted.
pub const MAX_HTTP_BODY: usize = 4 * 1024 * 1024;

/// Largest HTTP reply head (status line + headers) accepted.
const MAX_HTTP_HEAD: usize = 64 * 1024;

#[derive(Serialize)]
struct Envelope<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'static str,
    params: &'a ChatRequest,
}

/// The request envelope for call `id`.
///
/// # Errors
///
/// Serialisation failure (not expected for plain data).
pub fn encode_request(id: u64, req: &ChatRequest) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&Envelope {
        jsonrpc: "2.0",
        id,
        method: "complete",
        params: req,
    })
    .map_err(|e| Error::Intelligence(format!("cannot encode the request: {e}")))
}

/// Parse a response envelope into a reply.
///
/// # Errors
///
/// [`Error::Intelligence`]: not JSON, a JSON-RPC `error`
/// (`backend error <code>: <msg>`), neither `result` nor `error`, or a
/// `result` without a string `content`.
pub fn decode_response(bytes: &[u8]) -> Result<ChatReply, Error> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Intelligence(format!("backend reply is not valid JSON: {e}")))?;
    if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
        let code = err
            .get("code")
            .map_or_else(|| "?".to_owned(), Value::to_string);
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(Error::Intelligence(format!("backend error {code}: {msg}")));
    }
    let Some(result) = value.get("result").filter(|r| !r.is_null()) else {
        return Err(Error::Intelligence(
            "backend reply contained neither `result` nor `error`".to_owned(),
        ));
    };
    let content = result
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::Intelligence("backend `result` has no string `content`".to_owned())
        })?;
    let usage = result.get("usage");
    let tokens = |key: &str| {
        usage
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(ChatReply {
        content: content.to_owned(),
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
    })
}

/// Write one frame: 4-byte little-endian length, then `payload`.
///
/// # Errors
///
/// `InvalidInput` when `payload` exceeds [`MAX_FRAME`]; I/O errors.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= MAX_FRAME)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes exceeds the {MAX_FRAME}-byte cap",
                    payload.len()
                ),
            )
        })?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Read one frame.
///
/// # Errors
///
/// `UnexpectedEof` on a closed or truncated stream, `InvalidData` for a
/// length over [`MAX_FRAME`]; other I/O errors (timeouts) as they come.
pub fn read_frame(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0_u8; 4];
    r.read_exact(&mut len).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(e.kind(), "connection closed before a reply frame")
        } else {
            e
        }
    })?;
    let len = u32::from_le_bytes(len);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply frame of {len} bytes exceeds the {MAX_FRAME}-byte cap"),
        ));
    }
    // Grow as bytes arrive rather than trusting the length with an allocation.
    let mut buf = Vec::new();
    r.take(u64::from(len)).read_to_end(&mut buf)?;
    if buf.len() != len_usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("truncated frame: expected {len} bytes, got {}", buf.len()),
        ));
    }
    Ok(buf)
}

fn io_err(what: &str, e: &io::Error) -> Error {
    let why = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".to_owned(),
        _ => e.to_string(),
    };
    Error::Intelligence(format!("{what}: {why}"))
}

/// The `--intel-unix` backend.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixBackend {
    path: std::path::PathBuf,
    timeout: Duration,
    next_id: AtomicU64,
}

#[cfg(unix)]
impl UnixBackend {
    /// A client for the socket at `path` with I/O timeout `timeout`.
    #[must_use]
    pub fn new(path: impl Into<std::path::PathBuf>, timeout: Duration) -> Self {
        Self {
            path: path.into(),
            timeout: timeout.max(Duration::from_millis(1)),
            next_id: AtomicU64::new(1),
        }
    }
}

#[cfg(unix)]
impl Backend for UnixBackend {
    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = encode_request(id, req)?;
        let sock = self.path.display();
        let stream = std::os::unix::net::UnixStream::connect(&self.path).map_err(|e| {
            io_err(
                &format!("cannot connect to intelligence socket `{sock}`"),
                &e,
            )
        })?;
        let mut stream = Deadlined::new(stream, self.timeout);
        write_frame(&mut stream, &body)
            .map_err(|e| io_err(&format!("cannot send to intelligence socket `{sock}`"), &e))?;
        let reply = read_frame(&mut stream).map_err(|e| {
            io_err(
                &format!("cannot read from intelligence socket `{sock}`"),
                &e,
            )
        })?;
        decode_response(&reply)
    }
}

/// A socket whose every read and write must end by one deadline: before each
/// call the socket timeout is set to the time left, so a backend that sends a
/// byte just before each timeout cannot stretch one call past `timeout`.
struct Deadlined<S> {
    inner: S,
    deadline: Instant,
}

/// Sockets whose read and write timeouts can be set.
trait Timeouts {
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
}

impl Timeouts for TcpStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

#[cfg(unix)]
impl Timeouts for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl<S: Timeouts> Deadlined<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            // A timeout too large to add is no deadline at all, in effect.
            deadline: now
                .checked_add(timeout)
                .unwrap_or(now + Duration::from_secs(315_360_000)),
        }
    }

    /// Arm the socket with the time left, or fail once there is none.
    fn arm(&self) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        self.inner.set_timeouts(left)
    }
}

impl<S: Read + Timeouts> Read for Deadlined<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.read(buf)
    }
}

impl<S: Write + Timeouts> Write for Deadlined<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The `--intel-http` backend: the same envelope as a plain `POST` body.
#[derive(Debug)]
pub struct HttpBackend {
    host: String,
    port: u16,
    path: String,
    bearer: Option<String>,
    timeout: Duration,
    next_id: AtomicU64,
}

impl HttpBackend {
    /// A client for `url` (`http://host[:port]/path`; https is rejected).
    ///
    /// # Errors
    ///
    /// A usage message for a URL this client cannot use.
    pub fn new(url: &str, bearer: Option<String>, timeout: Duration) -> Result<Self, String> {
        let (host, port, path) = parse_http_url(url)?;
        Ok(Self {
            host,
            port,
            path,
            bearer: bearer.filter(|b| !b.is_empty()),
            timeout: timeout.max(Duration::from_millis(1)),
            next_id: AtomicU64::new(1),
        })
    }

    fn connect(&self) -> Result<TcpStream, Error> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| io_err(&format!("cannot resolve `{}`", self.host), &e))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::other("no addresses"));
        Err(io_err(
            &format!("cannot connect to http://{}:{}", self.host, self.port),
            &e,
        ))
    }
}

/// Split `http://host[:port]/path` (default port 80, default path `/`).
///
/// # Errors
///
/// `https://` (not supported by this transport), another scheme, an empty
/// host or a bad port.
pub fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(format!(
            "--intel-http `{url}`: https is not supported by the intelligence HTTP transport; use http://"
        ));
    } else {
        return Err(format!(
            "--intel-http `{url}`: expected http://host[:port]/path"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("--intel-http `{url}`: invalid port `{p}`"))?;
            (h, port)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || authority.contains('@') {
        return Err(format!(
            "--intel-http `{url}`: expected http://host[:port]/path"
        ));
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

impl Backend for HttpBackend {
    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = encode_request(id, req)?;
        let mut stream = Deadlined::new(self.connect()?, self.timeout);
        let host = if self.port == 80 {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.path,
            body.len()
        );
        if let Some(token) = &self.bearer {
            head.push_str("Authorization: Bearer ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body))
            .and_then(|()| stream.flush())
            .map_err(|e| io_err("cannot send the intelligence HTTP request", &e))?;
        let (status, body) = read_http_response(stream, MAX_HTTP_BODY)?;
        if !(200..300).contains(&status) {
            let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(Error::Intelligence(format!(
                "intelligence HTTP endpoint answered status {status}: {snippet}"
            )));
        }
        decode_response(&body)
    }
}

/// Read an HTTP/1.x response: the status code and the body (by
/// `Content-Length`, chunked, or to EOF), refusing bodies over `cap`.
///
/// # Errors
///
/// [`Error::Intelligence`] for malformed heads, oversized bodies, truncated
/// bodies and I/O failures.
pub fn read_http_response(stream: impl Read, cap: usize) -> Result<(u16, Vec<u8>), Error> {
    let bad = |why: String| Error::Intelligence(format!("malformed HTTP reply: {why}"));
    let mut r = BufReader::new(stream);
    let mut head_bytes = 0_usize;
    let mut line = Vec::new();
    let mut read_line = |r: &mut BufReader<_>, line: &mut Vec<u8>| -> Result<(), Error> {
        line.clear();
        let limit = MAX_HTTP_HEAD.saturating_sub(head_bytes) as u64 + 1;
        let n = r
            .by_ref()
            .take(limit)
            .read_until(b'\n', line)
            .map_err(|e| io_err("cannot read the intelligence HTTP reply", &e))?;
        head_bytes += n;
        if head_bytes > MAX_HTTP_HEAD {
            return Err(bad(format!("head exceeds {MAX_HTTP_HEAD} bytes")));
        }
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(bad("connection closed inside the head".to_owned()));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(())
    };
    read_line(&mut r, &mut line)?;
    let status_line = String::from_utf8_lossy(&line).into_owned();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| bad(format!("status line `{status_line}`")))?,
        _ => return Err(bad(format!("status line `{status_line}`"))),
    };
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    loop {
        read_line(&mut r, &mut line)?;
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(bad(format!("header line `{text}`")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| bad(format!("Content-Length `{value}`")))?;
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let too_big = |n: usize| {
        Error::Intelligence(format!(
            "intelligence HTTP reply body of {n} bytes exceeds the {cap}-byte cap"
        ))
    };
    let body = if chunked {
        read_chunked(&mut r, cap)?
    } else if let Some(n) = content_length {
        if n > cap {
            return Err(too_big(n));
        }
        let mut body = Vec::new();
        r.take(n as u64)
            .read_to_end(&mut body)
            .map_err(|e| io_err("cannot read the intelligence HTTP reply", &e))?;
        if body.len() != n {
            return Err(bad(format!(
                "body truncated: expected {n} bytes, got {}",
                body.len()
            )));
        }
        body
    } else {
        let mut body = Vec::new();
        r.take(cap as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| io_err("cannot read the intelligence HTTP reply", &e))?;
        if body.len() > cap {
            return Err(too_big(body.len()));
        }
        body
    };
    Ok((status, body))
}

fn read_chunked(r: &mut impl BufRead, cap: usize) -> Result<Vec<u8>, Error> {
    let bad = |why: &str| Error::Intelligence(format!("malformed HTTP reply: {why}"));
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        r.by_ref()
            .take(1024)
            .read_until(b'\n', &mut line)
            .map_err(|e| io_err("cannot read the intelligence HTTP reply", &e))?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            return Ok(body);
        }
        if body.len().saturating_add(size) > cap {
            return Err(Error::Intelligence(format!(
                "intelligence HTTP reply body exceeds the {cap}-byte cap"
            )));
        }
        let start = body.len();
        r.by_ref()
            .take(size as u64)
            .read_to_end(&mut body)
            .map_err(|e| io_err("cannot read the intelligence HTTP reply", &e))?;
        if body.len() - start != size {
            return Err(bad("chunk truncated"));
        }
        let mut crlf = [0_u8; 2];
        r.read_exact(&mut crlf)
            .map_err(|_| bad("chunk truncated"))?;
    }
}

#[cfg(test)]
mod tests;
