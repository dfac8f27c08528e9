//! `http_request` (feature `http`, docs/dialect.md §7 `http_request`) and the `agent_loop` tool of
//! the same name.
//!
//! Order is the dialect's: resolve the URL → `[policy.http]` on the
//! upper-cased method and the full URL → dry-run → resolve the body (over
//! [`MAX_REQUEST_BODY`] is a hard error) → render headers (`{{secret:NAME}}`
//! through [`crate::secrets`]; CR/LF is a hard error) → send. A non-2xx
//! status takes the `error` branch; connection, DNS, TLS and timeout
//! failures are hard [`Error::Tool`]. In a run another replica may re-run
//! from a checkpoint (fleet mode), each request carries
//! [`Cx::idempotency_key`] unless a declared header sets `Idempotency-Key`.
//!
//! The client is ureq with rustls (ring provider). Beyond dialect 1
//! (docs/dialect.md §15): `https://` is always available, chunked responses are
//! read, the response body is read up to [`MAX_RESPONSE_BODY`] and then
//! **truncated** (the output gains `"truncated": true`, the audit event
//! `http_response.truncated` is emitted, the rest is never read, so an
//! endless body cannot hang or exhaust memory), and every request is also
//! bounded by the run deadline. Redirects are never followed; proxy
//! environment variables are not consulted. Trusted roots are Mozilla's
//! (webpki-roots), or — when `AGENTD_HTTP_CA_FILE` (else `SSL_CERT_FILE`)
//! names a PEM file — exactly the certificates in that file, read at every
//! `https://` request (never for plain `http://`, which does not use them).
//!
//! Security posture: header values are literals baked at build time plus
//! secrets; no context data can reach a header. Secret values never enter
//! the output, errors or the trace: the output holds only the response.
//! This module must never act before the policy gate, never send in
//! dry-run, and never follow a redirect.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use ureq::http;

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::policy::Decision;
use crate::secrets::SecretsExt as _;
pub(crate) use crate::tls_roots::Roots;

/// Largest request body sent (1 MiB); a larger one is a hard error.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Most response-body bytes read (1 MiB); the rest is dropped.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Connect, per-read and per-write timeout (docs/dialect.md §10.2).
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

const TOOL: &str = "http_request";

/// `http_request` config, baked by the compiler.
#[derive(Debug)]
pub struct HttpRequest {
    /// The method, upper-cased at build time.
    pub method: &'static str,
    /// `url_from`: must resolve to a string.
    pub url_from: CtxPath,
    /// `body_from`: a string is sent verbatim, other JSON compact; the path
    /// must be set.
    pub body_from: Option<CtxPath>,
    /// Declared headers, sorted by name.
    pub headers: &'static [Header],
}

/// One declared header: a name and its value pre-split at build time.
#[derive(Debug)]
pub struct Header {
    /// The header name (`[A-Za-z0-9_-]+`, checked at build time).
    pub name: &'static str,
    /// Literal text and secret references, in order.
    pub value: &'static [HeaderSeg],
}

/// A segment of a header value.
#[derive(Debug)]
pub enum HeaderSeg {
    /// Literal text from the workflow file.
    Lit(&'static str),
    /// `{{secret:NAME}}`: resolved through [`crate::secrets`] at send time.
    Secret(&'static str),
}

/// `http_request`: output `{"status", "headers", "body", "bytes"}` (plus
/// `"truncated": true` when the body was cut at [`MAX_RESPONSE_BODY`]);
/// branch `error` when the status is not 2xx. Dry-run: `{"method", "url",
/// "dry_run": true}` after the policy check.
///
/// # Errors
///
/// Unset paths, an oversized body, a secret that does not resolve or holds
/// CR/LF, and every transport failure (`Tool`); a denial (`Policy`).
pub fn http_request(cx: &Cx<'_>, cfg: &'static HttpRequest) -> Result<Step, Error> {
    node(cx, cfg, roots_from_env)
}

/// [`http_request`] with the trust roots supplied by `roots`, called only
/// when an `https://` request is really sent.
fn node(
    cx: &Cx<'_>,
    cfg: &'static HttpRequest,
    roots: impl FnOnce() -> Result<Roots, Error>,
) -> Result<Step, Error> {
    let url = cx.require_str(TOOL, &cfg.url_from)?;
    check_policy(cx, cfg.method, url)?;
    if cx.dry_run() {
        return Ok(Step::value(dry_run(cfg.method, url)));
    }
    let body = match &cfg.body_from {
        Some(path) => Some(body_text(cx.require(TOOL, path)?)?),
        None => None,
    };
    let headers = render_headers(cx, cfg.headers)?;
    let response = send(
        &Outgoing {
            method: cfg.method,
            url,
            body: body.as_deref(),
            headers: &headers,
            traceparent: cx.traceparent(),
            idempotency_key: cx.idempotency_key(),
            deadline: cx.deadline(),
        },
        &roots_for(url, roots)?,
    )?;
    let branch = !(200..=299).contains(&response.status);
    let value = response.into_value();
    Ok(if branch {
        Step::branch(value, "error")
    } else {
        Step::value(value)
    })
}

/// The `http_request` tool of `agent_loop` (docs/dialect.md §7 `agent_loop`): args `{"method",
/// "url", "body"?}` — never headers. Same gate, dry-run and caps as the
/// node; returns the node's output value (a non-2xx status is data, not an
/// error).
///
/// # Errors
///
/// Malformed args and everything [`http_request`] fails with.
#[allow(dead_code, reason = "called by agent_loop")]
pub(crate) fn loop_http(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
    loop_tool(cx, args, roots_from_env)
}

fn loop_tool(
    cx: &Cx<'_>,
    args: &Value,
    roots: impl FnOnce() -> Result<Roots, Error>,
) -> Result<Value, Error> {
    let field = |key: &str| -> Result<&str, Error> {
        args.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::tool(TOOL, format!("argument `{key}` must be a string")))
    };
    let method = field("method")?.to_ascii_uppercase();
    let url = field("url")?;
    check_policy(cx, &method, url)?;
    if cx.dry_run() {
        return Ok(dry_run(&method, url));
    }
    let body = match args.get("body") {
        None | Some(Value::Null) => None,
        Some(v) => Some(body_text(v)?),
    };
    let response = send(
        &Outgoing {
            method: &method,
            url,
            body: body.as_deref(),
            headers: &[],
            traceparent: cx.traceparent(),
            // The agent's own calls are not node visits: a re-run loop may
            // choose other requests, so no key would be honest.
            idempotency_key: None,
            deadline: cx.deadline(),
        },
        &roots_for(url, roots)?,
    )?;
    Ok(response.into_value())
}

fn dry_run(method: &str, url: &str) -> Value {
    json!({ "method": method, "url": url, "dry_run": true })
}

fn check_policy(cx: &Cx<'_>, method: &str, url: &str) -> Result<(), Error> {
    match cx.policy().map(|p| p.check_http(method, url)) {
        None | Some(Decision::Allow) => Ok(()),
        Some(Decision::Deny(reason)) => Err(Error::Policy(reason)),
    }
}

/// A string is sent verbatim, any other JSON compact-serialised.
fn body_text(value: &Value) -> Result<String, Error> {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() > MAX_REQUEST_BODY {
        return Err(Error::tool(
            TOOL,
            format!(
                "request body is {} bytes; the limit is {MAX_REQUEST_BODY}",
                text.len()
            ),
        ));
    }
    Ok(text)
}

/// Render the declared headers. Errors name the header and the secret,
/// never a value.
fn render_headers(
    cx: &Cx<'_>,
    headers: &'static [Header],
) -> Result<Vec<(&'static str, String)>, Error> {
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        let mut value = String::new();
        for seg in h.value {
            match seg {
                HeaderSeg::Lit(text) => value.push_str(text),
                HeaderSeg::Secret(name) => {
                    let secret = cx
                        .secret(name)
                        .map_err(|e| Error::tool(TOOL, format!("header `{}`: {e}", h.name)))?;
                    if secret.expose().contains(['\r', '\n']) {
                        return Err(Error::tool(
                            TOOL,
                            format!("header `{}`: secret `{name}` contains CR or LF", h.name),
                        ));
                    }
                    value.push_str(secret.expose());
                }
            }
        }
        if value.contains(['\r', '\n']) {
            return Err(Error::tool(
                TOOL,
                format!("header `{}` contains CR or LF", h.name),
            ));
        }
        out.push((h.name, value));
    }
    Ok(out)
}

/// One request, ready to send.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) body: Option<&'a str>,
    /// Rendered declared headers (may hold secret values: never logged).
    pub(crate) headers: &'a [(&'static str, String)],
    pub(crate) traceparent: Option<&'a str>,
    /// `Idempotency-Key` to send unless a declared header sets one
    /// ([`Cx::idempotency_key`]).
    pub(crate) idempotency_key: Option<String>,
    pub(crate) deadline: Instant,
}

/// A response as the node reports it.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) status: u16,
    pub(crate) headers: Map<String, Value>,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
}

impl Received {
    fn into_value(self) -> Value {
        let mut out = json!({
            "status": self.status,
            "headers": Value::Object(self.headers),
            "bytes": self.body.len(),
            "body": String::from_utf8_lossy(&self.body),
        });
        if self.truncated {
            out["truncated"] = Value::Bool(true);
        }
        out
    }
}

/// The roots for a request to `url`: `roots()` for `https://`, and none to read
/// for plain `http://`, whose exchange never uses them — a CA bundle that is missing
/// or broken (say an inherited `SSL_CERT_FILE`) must not fail a plaintext request.
fn roots_for(url: &str, roots: impl FnOnce() -> Result<Roots, Error>) -> Result<Roots, Error> {
    if url
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
    {
        Ok(Roots::WebPki)
    } else {
        roots()
    }
}

/// The trusted roots, read at every request (a hard `Tool` error when a named CA file
/// is unusable: a misconfigured trust store must not fall back to other roots).
fn roots_from_env() -> Result<Roots, Error> {
    Roots::from_env().map_err(|e| Error::tool(TOOL, e))
}

/// An agent for one request: no redirects, no proxies, statuses as data,
/// 30 s connect/read/write timeouts, and the whole exchange bounded by the
/// time left before `deadline`.
fn agent(roots: &Roots, deadline: Instant) -> ureq::Agent {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .allow_non_standard_methods(true)
        .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(IO_TIMEOUT))
        .timeout_per_read(Some(IO_TIMEOUT))
        .timeout_per_write(Some(IO_TIMEOUT))
        .timeout_global(Some(left))
        // One request per agent: nothing to pool.
        .max_idle_connections(0)
        .tls_config(roots.tls_config())
        .build()
        .into()
}

/// Send `req` and read the reply (body capped at [`MAX_RESPONSE_BODY`]).
pub(crate) fn send(req: &Outgoing<'_>, roots: &Roots) -> Result<Received, Error> {
    let (method, url) = (req.method, req.url);
    let fail = |what: String| Error::tool(TOOL, format!("{method} {url}: {what}"));
    let scheme_ok = url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        || url
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
    if !scheme_ok {
        return Err(fail(
            "only http:// and https:// URLs are supported".to_owned(),
        ));
    }
    let m = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| fail("invalid method".to_owned()))?;
    let mut builder = http::Request::builder().method(m).uri(url);
    let declares = |name: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if req.body.is_some_and(|b| !b.is_empty()) && !declares("content-type") {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(tp) = req.traceparent
        && !declares("traceparent")
    {
        builder = builder.header("traceparent", tp);
    }
    if let Some(key) = &req.idempotency_key
        && !declares("idempotency-key")
    {
        builder = builder.header("idempotency-key", key.as_str());
    }
    for (name, value) in req.headers {
        builder = builder.header(*name, value.as_str());
    }
    let agent = agent(roots, req.deadline);
    // The http crate validates the URI and header values; its message never
    // includes a header value.
    let sent = match req.body {
        Some(body) => builder
            .body(body.as_bytes())
            .map_err(|e| fail(format!("invalid request: {e}")))
            .and_then(|r| agent.run(r).map_err(|e| fail(describe(&e)))),
        None => builder
            .body(())
            .map_err(|e| fail(format!("invalid request: {e}")))
            .and_then(|r| agent.run(r).map_err(|e| fail(describe(&e)))),
    }?;
    let status = sent.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in sent.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // Repeated headers are joined as HTTP allows (RFC 9110 §5.3).
        match headers.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let mut body = Vec::new();
    sent.into_body()
        .into_reader()
        .take(MAX_RESPONSE_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| fail(format!("reading the response body: {e}")))?;
    let truncated = body.len() > MAX_RESPONSE_BODY;
    if truncated {
        body.truncate(MAX_RESPONSE_BODY);
        crate::obs::audit(
            "http_response.truncated",
            json!({
                "claimed_bytes": headers.get("content-length"),
                "cap_bytes": MAX_RESPONSE_BODY,
            }),
        );
    }
    Ok(Received {
        status,
        headers,
        body,
        truncated,
    })
}

/// A transport error in words (ureq's own, plus the timeout's phase).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(ureq::Timeout::Global) => {
            "timed out (the run deadline was reached)".to_owned()
        }
        ureq::Error::Timeout(phase) => format!("timed out ({phase})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
