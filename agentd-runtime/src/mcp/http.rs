//! An MCP server over Streamable HTTP (feature `mcp-http`; protocol revisions
//! 2025-06-18 and 2025-11-25; docs/dialect.md §12.7).
//!
//! Every JSON-RPC message is a `POST` to the server's one URL with
//! `Accept: application/json, text/event-stream`. The reply to a request is
//! either one JSON body or an SSE stream that carries, in any order, the
//! server's notifications (skipped: progress, logging), requests (answered
//! with a `POST` of a JSON-RPC error, `ping` excepted) and finally our
//! response. A stream that ends before the response is resumed with a `GET`
//! carrying `Last-Event-ID`, after the stream's `retry` delay. The
//! `Mcp-Session-Id` the server gives in its `initialize` reply goes on every
//! later request, with `MCP-Protocol-Version`; a `404` for a session is a new
//! session (one retry), and dropping the server `DELETE`s the session.
//! [`HttpServer::listen`] holds the `GET` stream for server-initiated
//! messages (resource notifications) and resumes it the same way.
//!
//! The client is the one of `http_request` (ureq, rustls with ring, Mozilla's
//! roots or `AGENTD_HTTP_CA_FILE`): no redirects are followed (a `3xx` is an
//! error), proxies are not consulted, statuses are data. Every exchange is
//! bounded by its deadline; a request we stop waiting for is followed by
//! `notifications/cancelled`. Replies are untrusted: a JSON body or an SSE
//! event over [`super::MAX_LINE`] bytes is an error after that many bytes,
//! garbage is an [`Error::Mcp`] naming the server, never a panic or a hang.
//!
//! Credentials: the declared `headers` (`{{secret:NAME}}` resolved at every
//! request, so a rotated secret file is picked up), and an optional
//! [`AuthProvider`] consulted per request and told about a `401`. Header
//! values never appear in errors, logs or the trace.

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::http;

use super::jsonrpc::{self, Failure, Incoming, snippet};
use super::sse;
use super::{AuthProvider, HeaderPart, MAX_LINE, McpServer, SecretResolver};
use crate::error::Error;
use crate::tls_roots::Roots;

/// Connect timeout of every request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Resumptions of one reply stream before the call fails.
const MAX_RESUMES: u32 = 5;

/// The `retry` delay when a stream set none, and the most we honour.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The session state the handshake sets.
#[derive(Debug, Default, Clone)]
struct Session {
    initialized: bool,
    id: Option<String>,
    version: Option<&'static str>,
}

/// A Streamable HTTP MCP server.
pub struct HttpServer {
    name: String,
    url: String,
    headers: Vec<(String, Vec<HeaderPart>)>,
    resolve_secret: SecretResolver,
    auth: Option<Arc<dyn AuthProvider>>,
    agent: ureq::Agent,
    /// Held while a handshake runs, so concurrent first calls make one.
    session: Mutex<Session>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("name", &self.name)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What one POST brought back.
enum Reply {
    /// `202 Accepted` (or another 2xx without a body) to a notification or a
    /// response we sent.
    Accepted,
    /// A JSON body.
    Json(Vec<u8>),
    /// An event stream.
    Stream(sse::Reader<BufReader<ureq::BodyReader<'static>>>),
}

impl HttpServer {
    /// A server named `name` at `url` (already policy-checked by the
    /// caller). The trust roots are read now: a broken CA file is a start-up
    /// error, as for the LLM providers.
    ///
    /// # Errors
    ///
    /// A URL that is not `http://` or `https://`, or an unusable CA file.
    pub fn new(
        name: &str,
        url: &str,
        headers: Vec<(String, Vec<HeaderPart>)>,
        resolve_secret: SecretResolver,
        auth: Option<Arc<dyn AuthProvider>>,
    ) -> Result<Self, String> {
        let lower = url.to_ascii_lowercase();
        let roots = if lower.starts_with("https://") {
            Roots::from_env()?
        } else if lower.starts_with("http://") {
            Roots::WebPki
        } else {
            return Err(format!(
                "mcp server `{name}`: `{url}` is not an http:// or https:// URL"
            ));
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .tls_config(roots.tls_config())
            .build()
            .into();
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            headers,
            resolve_secret,
            auth,
            agent,
            session: Mutex::new(Session::default()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The server's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL requests go to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    fn session(&self) -> Session {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The session, after the handshake if it has not happened yet.
    fn ensure_session(&self, deadline: Instant) -> Result<Session, Failure> {
        let mut guard = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.initialized {
            return Ok(guard.clone());
        }
        let fresh = Session::default();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": jsonrpc::initialize_params(),
        });
        let (result, session_id) = self
            .exchange(&fresh, "initialize", id, &message, deadline)
            .map_err(|f| Failure::Fatal(f.into_message()))?;
        let version = jsonrpc::negotiated_version(&self.name, &result).map_err(Failure::Fatal)?;
        let session = Session {
            initialized: true,
            id: session_id,
            version: Some(version),
        };
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        // Whatever the body of the reply, the notification is delivered.
        self.post(&session, &note, deadline)?;
        *guard = session.clone();
        Ok(session)
    }

    /// Forget the session (the next call makes a new one), unless another
    /// call already replaced it.
    fn reset_session(&self, stale: &Session) {
        let mut guard = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.id == stale.id {
            *guard = Session::default();
        }
    }

    /// One request within `timeout`: handshake if needed, POST, wait for the
    /// response; a session the server no longer knows is made again once.
    fn request(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, Error> {
        let deadline = Instant::now() + timeout;
        let mut renewed = false;
        loop {
            let session = self
                .ensure_session(deadline)
                .map_err(|f| Error::Mcp(f.into_message()))?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            match self.exchange(&session, method, id, &message, deadline) {
                Ok((value, _)) => return Ok(value),
                Err(Failure::Fatal(m)) if m == SESSION_GONE && !renewed => {
                    self.reset_session(&session);
                    renewed = true;
                }
                Err(failure) => {
                    if matches!(failure, Failure::Fatal(ref m) if m == SESSION_GONE) {
                        self.reset_session(&session);
                    }
                    return Err(Error::Mcp(failure.into_message()));
                }
            }
        }
    }

    /// POST request `message` (id `id`) and wait for its response; returns
    /// the result and the session id the reply carried.
    fn exchange(
        &self,
        session: &Session,
        method: &str,
        id: u64,
        message: &Value,
        deadline: Instant,
    ) -> Result<(Value, Option<String>), Failure> {
        let (reply, session_id) = match self.post(session, message, deadline) {
            Ok(r) => r,
            Err(Failure::Fatal(m)) if m == TIMED_OUT => {
                return Err(self.timed_out(session, method, id));
            }
            Err(f) => return Err(f),
        };
        let outcome = match reply {
            Reply::Accepted => Err(Failure::Fatal(format!(
                "mcp server `{}` accepted `{method}` without answering it",
                self.name
            ))),
            Reply::Json(body) => self.json_reply(session, method, id, &body, deadline),
            Reply::Stream(stream) => self.stream_reply(session, method, id, stream, deadline),
        };
        match outcome {
            Ok(v) => Ok((v, session_id)),
            Err(Failure::Fatal(m)) if m == TIMED_OUT => Err(self.timed_out(session, method, id)),
            Err(f) => Err(f),
        }
    }

    /// The failure of a request we stopped waiting for, after telling the
    /// server (best effort, a short deadline of its own).
    fn timed_out(&self, session: &Session, method: &str, id: u64) -> Failure {
        let note = jsonrpc::cancelled(id, "timed out");
        let _ = self.post(session, &note, Instant::now() + Duration::from_secs(2));
        Failure::Fatal(format!(
            "mcp server `{}` did not answer `{method}` in time; the request was cancelled",
            self.name
        ))
    }

    fn json_reply(
        &self,
        session: &Session,
        method: &str,
        id: u64,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Value, Failure> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            Failure::Fatal(format!(
                "mcp server `{}` answered `{method}` with a body that is not JSON ({e}): {}",
                self.name,
                snippet(body)
            ))
        })?;
        // A JSON-RPC batch is allowed by older revisions: look for ours.
        let messages = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        for m in messages {
            match jsonrpc::classify(&self.name, m, id).map_err(Failure::Fatal)? {
                Incoming::Response(r) => return jsonrpc::decode_response(&self.name, method, r),
                Incoming::ServerRequest(reply) => {
                    let _ = self.post(session, &reply, deadline)?;
                }
                Incoming::Other => {}
            }
        }
        Err(Failure::Fatal(format!(
            "mcp server `{}` answered `{method}` without a response to it",
            self.name
        )))
    }

    /// Read a reply stream until our response, resuming it with `GET` and
    /// `Last-Event-ID` when it ends early.
    fn stream_reply(
        &self,
        session: &Session,
        method: &str,
        id: u64,
        mut stream: sse::Reader<BufReader<ureq::BodyReader<'static>>>,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        let mut resumes = 0;
        loop {
            while let Some(event) = stream
                .next_event()
                .map_err(|e| self.stream_error(method, &e))?
            {
                if event.data.trim().is_empty()
                    || !(event.kind.is_empty() || event.kind == "message")
                {
                    continue;
                }
                let message: Value = serde_json::from_str(&event.data).map_err(|e| {
                    Failure::Fatal(format!(
                        "mcp server `{}` sent an event that is not JSON ({e}): {}",
                        self.name,
                        snippet(event.data.as_bytes())
                    ))
                })?;
                match jsonrpc::classify(&self.name, message, id).map_err(Failure::Fatal)? {
                    Incoming::Response(r) => {
                        return jsonrpc::decode_response(&self.name, method, r);
                    }
                    Incoming::ServerRequest(reply) => {
                        let _ = self.post(session, &reply, deadline)?;
                    }
                    Incoming::Other => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(Failure::Fatal(TIMED_OUT.to_owned()));
            }
            let Some(last_id) = stream.last_id.clone() else {
                return Err(Failure::Fatal(format!(
                    "mcp server `{}` closed the stream before answering `{method}` \
                     (and gave no event id to resume from)",
                    self.name
                )));
            };
            resumes += 1;
            if resumes > MAX_RESUMES {
                return Err(Failure::Fatal(format!(
                    "mcp server `{}` closed the stream of `{method}` {MAX_RESUMES} times \
                     without answering",
                    self.name
                )));
            }
            let wait = stream
                .retry_ms
                .map_or(DEFAULT_RETRY, Duration::from_millis)
                .min(MAX_RETRY);
            if Instant::now() + wait >= deadline {
                return Err(Failure::Fatal(TIMED_OUT.to_owned()));
            }
            std::thread::sleep(wait);
            let retry_ms = stream.retry_ms;
            stream = self.resume(session, &last_id, deadline)?;
            // A resumed stream keeps the delay until it sets its own.
            stream.retry_ms = stream.retry_ms.or(retry_ms);
            stream.last_id = stream.last_id.take().or(Some(last_id));
        }
    }

    fn stream_error(&self, method: &str, e: &str) -> Failure {
        if e.contains("timed out") || e.contains("Timeout") || e.contains("timeout") {
            return Failure::Fatal(TIMED_OUT.to_owned());
        }
        Failure::Fatal(format!(
            "mcp server `{}`: the stream answering `{method}` failed: {e}",
            self.name
        ))
    }

    /// `GET` the stream again from `last_id`.
    fn resume(
        &self,
        session: &Session,
        last_id: &str,
        deadline: Instant,
    ) -> Result<sse::Reader<BufReader<ureq::BodyReader<'static>>>, Failure> {
        let response = self.send(
            session,
            http::Method::GET,
            None,
            Some(last_id),
            Some(deadline),
        )?;
        match response {
            Reply::Stream(s) => Ok(s),
            _ => Err(Failure::Fatal(format!(
                "mcp server `{}` did not resume its stream with an event stream",
                self.name
            ))),
        }
    }

    /// POST one message; the reply and the session id it carried.
    fn post(
        &self,
        session: &Session,
        message: &Value,
        deadline: Instant,
    ) -> Result<(Reply, Option<String>), Failure> {
        let body = serde_json::to_vec(message).map_err(|e| {
            Failure::Fatal(format!(
                "cannot encode a message for mcp server `{}`: {e}",
                self.name
            ))
        })?;
        let mut last_session = None;
        let reply = self.send_with(
            session,
            http::Method::POST,
            Some(&body),
            None,
            Some(deadline),
            &mut last_session,
        )?;
        Ok((reply, last_session))
    }

    fn send(
        &self,
        session: &Session,
        method: http::Method,
        body: Option<&[u8]>,
        last_event_id: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<Reply, Failure> {
        let mut ignored = None;
        self.send_with(session, method, body, last_event_id, deadline, &mut ignored)
    }

    /// One HTTP exchange (a `401` is retried once when the auth provider
    /// says a fresh credential may help). `deadline: None` is the listener's
    /// stream, which has no end.
    fn send_with(
        &self,
        session: &Session,
        method: http::Method,
        body: Option<&[u8]>,
        last_event_id: Option<&str>,
        deadline: Option<Instant>,
        session_out: &mut Option<String>,
    ) -> Result<Reply, Failure> {
        let mut retried_auth = false;
        loop {
            let request = self.build(session, &method, body, last_event_id, deadline)?;
            let response = self.agent.run(request).map_err(|e| match e {
                ureq::Error::Timeout(_) => Failure::Fatal(TIMED_OUT.to_owned()),
                other => Failure::Fatal(format!(
                    "mcp server `{}` ({method} {}): {}",
                    self.name,
                    self.url,
                    describe(&other)
                )),
            })?;
            let status = response.status().as_u16();
            let head = response.headers().clone();
            let header = |name: &str| {
                head.get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            if let Some(sid) = header("mcp-session-id") {
                *session_out = Some(sid);
            }
            if status == 401
                && let Some(auth) = &self.auth
                && !retried_auth
            {
                let challenge = header("www-authenticate");
                let retry = auth
                    .unauthorized(challenge.as_deref(), deadline)
                    .map_err(|e| {
                        Failure::Fatal(format!(
                            "mcp server `{}`: authorization failed: {e}",
                            self.name
                        ))
                    })?;
                if retry {
                    retried_auth = true;
                    continue;
                }
            }
            if status == 404 && session.id.is_some() {
                return Err(Failure::Fatal(SESSION_GONE.to_owned()));
            }
            let content_type = header("content-type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !(200..=299).contains(&status) {
                let mut text = Vec::new();
                let _ = response
                    .into_body()
                    .into_reader()
                    .take(4096)
                    .read_to_end(&mut text);
                let why = match status {
                    300..=399 => format!(
                        "redirected to {} (redirects are not followed)",
                        header("location").unwrap_or_default()
                    ),
                    401 | 403 => "the server refused our credentials".to_owned(),
                    _ => snippet(&text),
                };
                return Err(Failure::Fatal(format!(
                    "mcp server `{}` answered {method} with HTTP {status}: {why}",
                    self.name
                )));
            }
            if content_type.starts_with("text/event-stream") {
                let reader = BufReader::new(response.into_body().into_reader());
                return Ok(Reply::Stream(sse::Reader::new(reader)));
            }
            let mut bytes = Vec::new();
            response
                .into_body()
                .into_reader()
                .take(MAX_LINE as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| {
                    let text = e.to_string();
                    if text.contains("imeout") || text.contains("timed out") {
                        Failure::Fatal(TIMED_OUT.to_owned())
                    } else {
                        Failure::Fatal(format!(
                            "mcp server `{}`: reading the reply failed: {text}",
                            self.name
                        ))
                    }
                })?;
            if bytes.len() > MAX_LINE {
                return Err(Failure::Fatal(format!(
                    "mcp server `{}` sent a reply larger than {MAX_LINE} bytes",
                    self.name
                )));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Reply::Accepted);
            }
            return Ok(Reply::Json(bytes));
        }
    }

    /// The request: our headers, the declared ones, the auth provider's.
    fn build(
        &self,
        session: &Session,
        method: &http::Method,
        body: Option<&[u8]>,
        last_event_id: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<http::Request<Vec<u8>>, Failure> {
        let fail = |why: String| Failure::Fatal(format!("mcp server `{}`: {why}", self.name));
        let accept = if body.is_some() {
            "application/json, text/event-stream"
        } else {
            "text/event-stream"
        };
        let mut b = http::Request::builder()
            .method(method.clone())
            .uri(&self.url)
            .header("accept", accept);
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        if let Some(sid) = &session.id {
            b = b.header("mcp-session-id", sid.as_str());
        }
        if let Some(v) = session.version {
            b = b.header("mcp-protocol-version", v);
        }
        if let Some(last) = last_event_id {
            b = b.header("last-event-id", last);
        }
        for (name, parts) in &self.headers {
            let mut value = String::new();
            for part in parts {
                match part {
                    HeaderPart::Lit(text) => value.push_str(text),
                    HeaderPart::Secret(secret) => value.push_str(
                        &(self.resolve_secret)(secret)
                            .map_err(|e| fail(format!("header `{name}`: {e}")))?,
                    ),
                }
            }
            if value.contains(['\r', '\n']) {
                return Err(fail(format!("header `{name}` contains CR or LF")));
            }
            b = b.header(name.as_str(), value);
        }
        if let Some(auth) = &self.auth
            && let Some(value) = auth
                .authorization(deadline)
                .map_err(|e| fail(format!("authorization failed: {e}")))?
        {
            b = b.header("authorization", value);
        }
        // The http crate's message never includes a header value.
        let request = b
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| fail(format!("invalid request: {e}")))?;
        let left = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        Ok(self
            .agent
            .configure_request(request)
            .timeout_global(left)
            .build())
    }

    /// Follow the server's `GET` stream for server-initiated messages,
    /// handing each notification to `on_message`, until `stop` says so.
    /// The stream is resumed from its last event id after its `retry`
    /// delay; a server without a `GET` stream (`405`) ends the loop with
    /// `Err`.
    ///
    /// # Errors
    ///
    /// Why the stream cannot be held (no session, `405`, repeated
    /// failures).
    pub fn listen(
        &self,
        timeout: Duration,
        on_message: &mut dyn FnMut(Value),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), String> {
        let session = self
            .ensure_session(Instant::now() + timeout)
            .map_err(Failure::into_message)?;
        let mut last_id: Option<String> = None;
        let mut retry = DEFAULT_RETRY;
        let mut failures = 0u32;
        while !stop() {
            match self.send(&session, http::Method::GET, None, last_id.as_deref(), None) {
                Ok(Reply::Stream(mut stream)) => {
                    failures = 0;
                    loop {
                        match stream.next_event() {
                            Ok(Some(event)) if !event.data.trim().is_empty() => {
                                if let Ok(message) = serde_json::from_str::<Value>(&event.data) {
                                    if let Some(reply) = server_request_reply(&message) {
                                        let _ =
                                            self.post(&session, &reply, Instant::now() + timeout);
                                    } else {
                                        on_message(message);
                                    }
                                }
                            }
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => break,
                        }
                        if stop() {
                            return Ok(());
                        }
                    }
                    if stream.last_id.is_some() {
                        last_id.clone_from(&stream.last_id);
                    }
                    if let Some(ms) = stream.retry_ms {
                        retry = Duration::from_millis(ms).min(MAX_RETRY);
                    }
                }
                Ok(_) => failures += 1,
                Err(Failure::Fatal(m) | Failure::Reply(m)) => {
                    if m.contains("HTTP 405") {
                        return Err(format!(
                            "mcp server `{}` offers no stream for server messages (HTTP 405)",
                            self.name
                        ));
                    }
                    failures += 1;
                    if failures > 10 {
                        return Err(m);
                    }
                }
            }
            std::thread::sleep(retry);
        }
        Ok(())
    }

    /// `DELETE` the session, if there is one (best effort, two seconds).
    pub fn close(&self) {
        let session = self.session();
        if session.id.is_none() {
            return;
        }
        let _ = self.send(
            &session,
            http::Method::DELETE,
            None,
            None,
            Some(Instant::now() + Duration::from_secs(2)),
        );
        self.reset_session(&session);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Internal markers carried in [`Failure::Fatal`] between the layers above.
const TIMED_OUT: &str = "\0timed out";
const SESSION_GONE: &str = "\0session gone";

fn server_request_reply(message: &Value) -> Option<Value> {
    let id = message.get("id").filter(|i| !i.is_null())?;
    let method = message.get("method")?.as_str()?;
    Some(jsonrpc::answer_server_request(id, method))
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::HostNotFound => "host not found".to_owned(),
        other => other.to_string(),
    }
}

impl McpServer for HttpServer {
    fn call_tool(&self, tool: &str, arguments: &Value, timeout: Duration) -> Result<Value, Error> {
        self.request(
            "tools/call",
            jsonrpc::tools_call_params(tool, arguments),
            timeout,
        )
    }

    fn read_resource(&self, uri: &str, timeout: Duration) -> Result<Value, Error> {
        self.request("resources/read", json!({ "uri": uri }), timeout)
    }

    fn list(&self, what: super::Listing, timeout: Duration) -> Result<Vec<Value>, Error> {
        jsonrpc::list_pages(&self.name, what, |params| {
            self.request(what.method(), params, timeout)
        })
    }

    fn subscribe(&self, uri: &str, timeout: Duration) -> Result<(), Error> {
        self.request("resources/subscribe", json!({ "uri": uri }), timeout)
            .map(|_| ())
    }

    fn listen(
        &self,
        setup: &mut dyn FnMut() -> Result<(), String>,
        on_message: &mut dyn FnMut(Value),
        stop: &dyn Fn() -> bool,
        timeout: Duration,
    ) -> Result<(), String> {
        // The server-message stream needs the session `setup` makes; a
        // server that keeps no event history may send in between.
        setup()?;
        Self::listen(self, timeout, on_message, stop)
    }
}
