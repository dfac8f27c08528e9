//! One HTTP request, from head to response: the pipeline of
//! docs/dialect.md §6 with the docs/dialect.md §15 changes.
//!
//! Order: `/healthz`, `/readyz` and `/metrics` (no auth, no rate limit) → route match
//! (404 / 405 with `Allow`) → transfer and content codings (501 / 415: a
//! body is never read as something it is not) → `Content-Length` over the
//! cap (413, before reading) → rate limit (429) → auth of every scheme that
//! does not sign the body (401, before a byte of the body is read) → for
//! HMAC, a share of the pre-auth byte budget (503 past it) → body read,
//! capped while streaming so chunked bodies work (413, 408 on a stalled
//! body) → HMAC auth (401) → body decoding (400; bodies over
//! [`INLINE_BODY_MAX`] are decoded on the blocking pool, never on the
//! reactor) → `input_schema` (400) → principal → idempotency (replay / 409) → traceparent → the
//! run (inline, or on the bounded pool with 503 when it is full) → outcome
//! to status (200 / `respond`'s status, 422, 504, 202, 500).
//!
//! With HTTP/1 `half_close` on, hyper only drops this future when the
//! connection itself is cut off (a drain that outlived its timeout, a
//! failed connection); a client that merely left is noticed when its reply
//! cannot be written. A dropped request is still counted, under status 499,
//! and audited as `http.request_dropped`; a pooled run it started finishes
//! and is recorded as any run is.
//!
//! Rate limits and idempotency go through the state store
//! ([`crate::serve::store`]): this process's own, or the fleet's. A store
//! that does not answer makes the request 503 with `Retry-After` (the run
//! never starts, so nothing is half-done); `/healthz` never asks the store,
//! `/readyz` does.
//!
//! Every reply this module builds is JSON except `/metrics` and `respond`
//! bodies. It never parses HTTP framing (hyper has) and never runs a node.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::engine::Trigger;
use crate::graph::Source;
use crate::outcome::{Outcome, RunReport};
use crate::serve::auth::{self, AuthRequest, PeerIdentity};
use crate::serve::body;
use crate::serve::idempotency::{StoredResponse, resolve_key};
use crate::serve::metrics::{Fixed, RouteLabel, Shed};
use crate::serve::pool::RunError;
use crate::serve::ratelimit::retry_after_secs;
use crate::serve::store::{Claim, StoreError};
use crate::serve::{BODY_CAP, INLINE_BODY_MAX, State};
use crate::traceparent::{self, TraceParent};
use crate::workflow::serve::{AuthRef, RouteDef};

/// The response type of every handler.
pub(crate) type Reply = Response<ReplyBody>;

/// The largest frame of a reply handed to hyper.
const REPLY_FRAME: usize = 16 * 1024;

/// A reply's body: whole in memory, handed to hyper in frames of at most
/// [`REPLY_FRAME`] bytes (slices of one buffer, never copied here). The
/// connection copies replies into one write buffer (`writev(false)` in
/// serve/server.rs, cheaper than a queue of buffers for small replies);
/// hyper stops taking frames once that buffer holds its cap, so a large
/// reply never grows a connection's buffer past the cap and one frame.
#[derive(Debug, Default)]
pub(crate) struct ReplyBody {
    rest: Bytes,
}

impl ReplyBody {
    pub(crate) fn new(body: impl Into<Bytes>) -> Self {
        Self { rest: body.into() }
    }
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let take = this.rest.len().min(REPLY_FRAME);
        Poll::Ready(Some(Ok(hyper::body::Frame::data(this.rest.split_to(take)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

const JSON: &str = "application/json";
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Handle one request; never fails (every problem is a status code).
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: Option<Arc<PeerIdentity>>,
) -> Reply {
    let started = Instant::now();
    let _in_flight = state.track();
    let mut watch = RequestWatch {
        state: &state,
        started,
        route: AtomicUsize::new(NO_ROUTE),
        answered: false,
    };
    let (label, reply) = pipeline(&state, req, peer, &watch.route).await;
    watch.answered = true;
    state
        .metrics
        .record_request(label, reply.status().as_u16(), started.elapsed());
    reply
}

const NO_ROUTE: usize = usize::MAX;

/// Status counted for a request dropped before its reply existed (nginx's
/// "client closed request"; never sent).
const DROPPED: u16 = 499;

/// Counts and audits a request whose future was dropped before a reply
/// existed, so no request disappears from the metrics and the audit log.
struct RequestWatch<'s> {
    state: &'s State,
    started: Instant,
    /// The matched route's index, once known ([`NO_ROUTE`] before). An
    /// atomic only because the future must be `Send`.
    route: AtomicUsize,
    answered: bool,
}

impl Drop for RequestWatch<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let index = self.route.load(Ordering::Relaxed);
        let (label, method, path) = match self.state.def.routes.get(index) {
            Some(route) => (RouteLabel::Route(index), route.method, route.path),
            None => (RouteLabel::Fixed(Fixed::Unmatched), "", ""),
        };
        self.state
            .metrics
            .record_request(label, DROPPED, self.started.elapsed());
        crate::obs::audit(
            "http.request_dropped",
            json!({
                "method": method,
                "path": path,
                "elapsed_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }),
        );
    }
}

async fn pipeline(
    state: &Arc<State>,
    req: Request<Incoming>,
    peer: Option<Arc<PeerIdentity>>,
    matched: &AtomicUsize,
) -> (RouteLabel, Reply) {
    let path = req.uri().path();
    if req.method() == Method::GET && path == "/healthz" {
        let body = json!({"status": "ok", "workflow": state.workflow.def().info.workflow});
        return (
            RouteLabel::Fixed(Fixed::Healthz),
            json_reply(StatusCode::OK, &body),
        );
    }
    if req.method() == Method::GET && path == "/readyz" {
        let store = state.store.kind();
        let reply = match state.store_op(state.store.ready()).await {
            Ok(()) => json_reply(
                StatusCode::OK,
                &json!({"status": "ready", "store": store, "workflow": state.workflow.def().info.workflow}),
            ),
            Err(e) => {
                let mut reply = json_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "unavailable", "store": store, "error": e.to_string()}),
                );
                set_retry_after(&mut reply, STORE_RETRY_SECS);
                reply
            }
        };
        return (RouteLabel::Fixed(Fixed::Readyz), reply);
    }
    if req.method() == Method::GET && path == "/metrics" {
        #[allow(unused_mut)] // appended to only with MCP servers
        let mut text = state.metrics.render();
        #[cfg(feature = "mcp")]
        if let Some(mcp) = &state.mcp {
            text.push_str(&mcp.render_metrics());
        }
        let reply = text_reply(StatusCode::OK, METRICS_TYPE, text);
        return (RouteLabel::Fixed(Fixed::Metrics), reply);
    }
    let method = req.method().as_str();
    let Some(index) = state
        .def
        .routes
        .iter()
        .position(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
    else {
        return (RouteLabel::Fixed(Fixed::Unmatched), unmatched(state, path));
    };
    let route = &state.def.routes[index];
    matched.store(index, Ordering::Relaxed);
    let label = RouteLabel::Route(index);
    (label, route_request(state, index, route, req, peer).await)
}

/// 405 with `Allow` when another method serves the path, else 404.
fn unmatched(state: &State, path: &str) -> Reply {
    let allowed: Vec<&str> = state
        .def
        .routes
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.method)
        .collect();
    if allowed.is_empty() {
        return json_reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "Not Found", "path": path}),
        );
    }
    let mut reply = json_reply(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "Method Not Allowed", "path": path}),
    );
    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
        reply.headers_mut().insert(header::ALLOW, v);
    }
    reply
}

async fn route_request(
    state: &Arc<State>,
    index: usize,
    route: &'static RouteDef,
    req: Request<Incoming>,
    peer: Option<Arc<PeerIdentity>>,
) -> Reply {
    let (parts, incoming) = req.into_parts();
    let head = HeadFacts::scan(&parts.headers);
    // A body in a coding we do not undo would be read as something else.
    if let Some(refusal) = head.refusal() {
        return refusal;
    }

    // 413 from Content-Length, before a byte of the body is read.
    let declared = head.content_length;
    if declared.is_some_and(|n| n > BODY_CAP as u64) {
        return too_large();
    }

    let taken = match route.rate_limit {
        Some(def) => match state.store_op(state.store.take_token(index, def)).await {
            Ok(taken) => taken,
            Err(e) => return store_unavailable(&e),
        },
        None => Ok(()),
    };
    if let Err(wait) = taken {
        let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        crate::obs::audit(
            "http.rate_limited",
            json!({"method": route.method, "path": route.path, "retry_after_ms": retry_after_ms}),
        );
        let mut reply = json_reply(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate limited", "retry_after_ms": retry_after_ms}),
        );
        set_retry_after(&mut reply, retry_after_secs(wait));
        return reply;
    }

    // The material current now: a reload never changes a request midway.
    let needs_auth = route.auth != AuthRef::None || peer.is_some();
    let prepared = needs_auth.then(|| state.reloader.auth());
    let deny = |denied: auth::AuthDenied| {
        crate::obs::audit(
            "http.auth_denied",
            json!({"method": route.method, "path": route.path, "reason": denied.reason()}),
        );
        // The body stays unread: hyper drains what has already arrived and
        // keeps the connection, or closes it when more is on the way.
        json_reply(StatusCode::UNAUTHORIZED, &denied.body())
    };

    // Every scheme but HMAC is decided by headers and the TLS peer alone:
    // decide before reading a byte of the body, so a client without
    // credentials never gets memory held on its behalf.
    let signs_body = matches!(route.auth, AuthRef::Hmac(_));
    let mut principal = match &prepared {
        Some(prepared) if !signs_body => {
            let request = AuthRequest {
                headers: &parts.headers,
                body: &[],
                peer: peer.as_deref(),
                now: SystemTime::now(),
            };
            match auth::authorize_json_found(
                prepared,
                route.auth,
                &request,
                Some(head.authorization),
            ) {
                Ok(principal) => Some(principal),
                Err(denied) => return deny(denied),
            }
        }
        Some(_) => None,
        // The common case needs no auth material at all, and copies nothing.
        None => Some(Cow::Borrowed(body::anonymous_ref())),
    };

    // An HMAC body is held before it is authenticated: charge it to the
    // global pre-auth budget (the whole cap when the length is unknown).
    let preauth = if principal.is_none() {
        let want = declared.map_or(BODY_CAP, |n| usize::try_from(n).unwrap_or(BODY_CAP));
        match state.preauth.reserve(want) {
            Some(reserved) => Some(reserved),
            None => {
                state.metrics.shed(Shed::PreAuthBytes);
                let mut reply = json_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"error": "server busy: too many unauthenticated request bodies in flight"}),
                );
                set_retry_after(&mut reply, 1);
                return reply;
            }
        }
    } else {
        None
    };

    let raw = match read_body(incoming, declared, state.read_timeout).await {
        Ok(raw) => raw,
        Err(reply) => return reply,
    };

    if let (None, Some(prepared)) = (&principal, &prepared) {
        let request = AuthRequest {
            headers: &parts.headers,
            body: &raw,
            peer: peer.as_deref(),
            now: SystemTime::now(),
        };
        match auth::authorize_json(prepared, route.auth, &request) {
            Ok(p) => principal = Some(p),
            Err(denied) => return deny(denied),
        }
    }
    drop(preauth);
    let principal = principal.unwrap_or(Cow::Borrowed(body::anonymous_ref()));

    let content_type = head.content_type;
    // A large body is decoded, its run executed and its value freed on the
    // blocking pool under a run permit: milliseconds of work per request
    // that must not stall the reactor, and at most `--max-runs` at once.
    let offload = if raw.len() > INLINE_BODY_MAX {
        match run_permit(state) {
            Some(permit) => Some(permit),
            None => return pool_busy(),
        }
    } else {
        None
    };
    let decoded = if offload.is_some() {
        state.metrics.offloaded();
        let content_type = content_type.map(str::to_owned);
        let body = raw.clone();
        // The schema check of a large body is as much work as its decoding.
        let schema_state = Arc::clone(state);
        match tokio::task::spawn_blocking(move || {
            body::decode(content_type.as_deref(), &body).map(|decoded| {
                let checked = schema_state.input_schemas.check(index, &decoded.value);
                (decoded, checked)
            })
        })
        .await
        {
            Ok(decoded) => decoded,
            Err(_) => return stopped_unexpectedly(),
        }
    } else {
        body::decode(content_type, &raw).map(|decoded| {
            let checked = state.input_schemas.check(index, &decoded.value);
            (decoded, checked)
        })
    };
    let (decoded, checked) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => {
            return json_reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()}));
        }
    };
    for file in &decoded.dropped_files {
        crate::obs::audit(
            "http.multipart_file_dropped",
            json!({"field": file.field, "filename": file.filename, "bytes": file.bytes}),
        );
    }
    // The schema saw the body as decoded, before the server adds `principal`.
    if let Err(rejected) = checked {
        crate::obs::audit(
            "http.input_rejected",
            json!({"method": route.method, "path": route.path, "pointer": rejected.pointer}),
        );
        return json_reply(StatusCode::BAD_REQUEST, &rejected.body());
    }
    // The run reads the principal beside the body (merged on demand,
    // `Frame::with_principal`); an idempotency key may name it, so that one
    // path merges now.
    let (input, principal) = match route.idempotency {
        Some(_) => (
            body::inject_principal(decoded.value, principal.into_owned()),
            None,
        ),
        None => (decoded.value, Some(principal)),
    };

    let key = match route.idempotency {
        Some(def) => match resolve_key(def.key, &raw, &input) {
            Ok(key) => Some((key, def.ttl_secs)),
            Err(e) => {
                return json_reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()}));
            }
        },
        None => None,
    };

    // The run's span: sent on its outbound calls and echoed in the reply.
    let inbound = head.traceparent.and_then(TraceParent::parse);
    let span = inbound
        .as_ref()
        .map(|tp| tp.child(&traceparent::new_span_id()));
    let echo = span.clone();
    let trigger = Trigger {
        kind: Source::Http,
        input,
        traceparent: span,
    };

    // The request's header map, emptied, carries the reply's headers (see
    // `reply_headers`); the facts read from it are no longer needed.
    let headers = reply_headers(parts.headers);
    let mut reply = if route.inline && key.is_none() && offload.is_none() {
        reply_for(
            state.run_http(route, trigger, principal, inbound.as_ref()),
            headers,
        )
    } else {
        match pooled(
            state, route, trigger, principal, key, inbound, offload, headers,
        )
        .await
        {
            Ok(reply) => reply,
            Err(reply) => return reply,
        }
    };
    if let Some(tp) = echo
        && let Ok(v) = HeaderValue::from_str(&tp)
    {
        reply.headers_mut().insert("traceparent", v);
    }
    reply
}

/// The request headers route handling reads, found in one pass over the map:
/// a lookup by name hashes the name, and a request carries a handful of
/// headers, so walking them once costs less than five lookups
/// (docs/performance.md, "Serving CPU, round 5"). Each single-valued field is the header's first
/// value, as `HeaderMap::get` would give.
struct HeadFacts<'a> {
    /// `Content-Length` as a number; absent or unparsable is `None` (hyper
    /// has already refused a malformed length).
    content_length: Option<u64>,
    content_type: Option<&'a str>,
    traceparent: Option<&'a str>,
    /// The first `Transfer-Encoding` coding other than `chunked`, and the
    /// first `Content-Encoding` other than `identity` (`"?"` for a value
    /// that is not visible ASCII).
    bad_transfer: Option<&'a str>,
    bad_content: Option<&'a str>,
    /// `Authorization`, for the auth of a route that has one.
    authorization: auth::FoundHeader<'a>,
}

impl<'a> HeadFacts<'a> {
    fn scan(headers: &'a hyper::HeaderMap) -> Self {
        let mut facts = HeadFacts {
            content_length: None,
            content_type: None,
            traceparent: None,
            bad_transfer: None,
            bad_content: None,
            authorization: auth::FoundHeader::Absent,
        };
        // The first value decides, even when it is unreadable.
        let (mut length_seen, mut type_seen, mut trace_seen) = (false, false, false);
        for (name, value) in headers {
            if *name == header::TRANSFER_ENCODING {
                if facts.bad_transfer.is_none() {
                    facts.bad_transfer = unsupported_in(value, "chunked");
                }
            } else if *name == header::CONTENT_ENCODING {
                if facts.bad_content.is_none() {
                    facts.bad_content = unsupported_in(value, "identity");
                }
            } else if *name == header::CONTENT_LENGTH {
                if !std::mem::replace(&mut length_seen, true) {
                    facts.content_length = value
                        .to_str()
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok());
                }
            } else if *name == header::CONTENT_TYPE {
                if !std::mem::replace(&mut type_seen, true) {
                    facts.content_type = value.to_str().ok();
                }
            } else if *name == header::AUTHORIZATION {
                facts.authorization = facts.authorization.and(value);
            } else if name.as_str() == "traceparent" && !std::mem::replace(&mut trace_seen, true) {
                facts.traceparent = value.to_str().ok();
            }
        }
        facts
    }

    /// The refusal of a body in a coding this server does not undo: a
    /// `Transfer-Encoding` other than `chunked` alone (501, RFC 9112 §6.1)
    /// and a `Content-Encoding` other than `identity` (415, RFC 9110
    /// §8.4.1); the transfer coding is judged first.
    fn refusal(&self) -> Option<Reply> {
        if let Some(coding) = self.bad_transfer {
            return Some(unsupported_coding(
                StatusCode::NOT_IMPLEMENTED,
                "transfer",
                coding,
            ));
        }
        self.bad_content
            .map(|coding| unsupported_coding(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content", coding))
    }
}

/// The first coding in a `Transfer-Encoding` or `Content-Encoding` value
/// other than `accepted` (case-insensitive; empty list items skipped), or
/// `"?"` when the value is not visible ASCII.
fn unsupported_in<'a>(value: &'a HeaderValue, accepted: &str) -> Option<&'a str> {
    let Ok(text) = value.to_str() else {
        return Some("?");
    };
    text.split(',')
        .map(str::trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case(accepted))
}

fn unsupported_coding(status: StatusCode, which: &str, coding: &str) -> Reply {
    // Closing: the client framed or coded its message in a way this server
    // does not interpret, so nothing after it on the connection is trusted.
    let coding: String = coding.chars().take(64).collect();
    let mut reply = closing(json_reply(
        status,
        &json!({"error": format!("unsupported {which} coding `{coding}`")}),
    ));
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        // RFC 9110 §12.5.3: say which codings are accepted.
        reply
            .headers_mut()
            .insert("accept-encoding", HeaderValue::from_static("identity"));
    }
    reply
}

/// A run permit now, or `None` (counted as shed) for a saturated pool.
fn run_permit(state: &Arc<State>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let permit = Arc::clone(&state.runs).try_acquire_owned().ok();
    if permit.is_none() {
        state.metrics.shed(Shed::Runs);
    }
    permit
}

/// The 503 for a saturated run pool.
fn pool_busy() -> Reply {
    let mut reply = json_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "server busy: every run worker is in use"}),
    );
    set_retry_after(&mut reply, 1);
    reply
}

fn stopped_unexpectedly() -> Reply {
    closing(json_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"error": "the run stopped unexpectedly"}),
    ))
}

/// Seconds a client is told to wait when the state store does not answer.
const STORE_RETRY_SECS: u64 = 1;

/// The 503 for a request that needs the state store while it is down.
fn store_unavailable(e: &StoreError) -> Reply {
    let mut reply = json_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "state store unavailable", "reason": e.to_string()}),
    );
    set_retry_after(&mut reply, STORE_RETRY_SECS);
    reply
}

/// Claim the idempotency key (when the route has one), then run on the
/// blocking pool, then record the reply (its headers in `headers`, see
/// [`reply_headers`]). `Err` is a reply that did not run.
#[allow(clippy::too_many_arguments)]
async fn pooled(
    state: &Arc<State>,
    route: &'static RouteDef,
    trigger: Trigger,
    principal: Option<Cow<'static, Value>>,
    key: Option<(String, u64)>,
    inbound: Option<TraceParent>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    headers: HeaderMap,
) -> Result<Reply, Reply> {
    let Some(permit) = permit.or_else(|| run_permit(state)) else {
        return Err(pool_busy());
    };
    let held = match key {
        None => None,
        Some((key, ttl)) => {
            let ttl = std::time::Duration::from_secs(ttl);
            let claim = state.store.claim(route.method, route.path, &key, ttl);
            match state.store_op(claim).await {
                Err(e) => return Err(store_unavailable(&e)),
                Ok(Claim::Replay(hit)) => {
                    let status = StatusCode::from_u16(hit.status).unwrap_or(StatusCode::OK);
                    let mut reply = text_reply(status, &hit.content_type, hit.body);
                    reply.headers_mut().insert(
                        "x-agentd-idempotent-replay",
                        HeaderValue::from_static("true"),
                    );
                    return Ok(reply);
                }
                Ok(Claim::InFlight) => {
                    return Ok(json_reply(
                        StatusCode::CONFLICT,
                        &json!({"error": "a delivery with this idempotency key is in flight"}),
                    ));
                }
                Ok(Claim::Claimed(held)) => Some(held),
            }
        }
    };
    let run_state = Arc::clone(state);
    // Counted apart from the request: a run whose client disconnects keeps
    // going, and the drain must wait for it (`run_guard`, held by the run
    // itself) and for its record (`guard`).
    let guard = state.track();
    let run_guard = state.track();
    let task = state.pool.run(move || {
        let _permit = permit;
        let _running = run_guard;
        let report = run_state.run_http(route, trigger, principal, inbound.as_ref());
        let (reply, text) = reply_and_text(&report, headers);
        // Completed (respond replies included) and paused runs are kept;
        // failures only release the key so a retry runs again.
        let keep = matches!(
            report.outcome,
            Ok(Outcome::Completed { .. } | Outcome::Paused { .. })
        );
        (reply, text.filter(|_| keep))
    });
    let (reply, text) = task.await.map_err(|e| match e {
        RunError::Panicked => stopped_unexpectedly(),
        RunError::NoThread => pool_busy(),
    })?;
    if let Some(held) = held {
        match text {
            Some((content_type, body)) => {
                let response = StoredResponse {
                    status: reply.status().as_u16(),
                    content_type,
                    body,
                    stored_unix: SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                };
                // A record that cannot be written loses only the replay (the
                // claim lapses at the stale age); the reply stands.
                let _ = state.store_op(held.record(response)).await;
            }
            None => drop(held),
        }
    }
    drop(guard);
    Ok(reply)
}

/// Read the whole body within `timeout`, at most [`BODY_CAP`] bytes.
///
/// Into one buffer sized by `Content-Length` (when declared), each of
/// hyper's chunks dropped as soon as it is copied: a body is one
/// allocation, not a list of read-buffer pieces, so its memory goes back
/// to the system when the request ends (see `serve::server::tune_allocator`).
async fn read_body(
    mut incoming: Incoming,
    declared: Option<u64>,
    timeout: std::time::Duration,
) -> Result<Bytes, Reply> {
    use hyper::body::Body as _;
    // No body at all (a GET, or Content-Length: 0): nothing to wait for, so
    // no timer either.
    if incoming.is_end_stream() {
        return Ok(Bytes::new());
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(BODY_CAP).min(BODY_CAP));
    // A body that comes in one frame (a small one, with its head) is kept as
    // hyper's bytes, not copied; a second frame starts a buffer holding all.
    let mut first: Option<Bytes> = None;
    let mut buf = Vec::new();
    let read = async {
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| {
                closing(json_reply(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": format!("body read failed: {e}")}),
                ))
            })?;
            if let Ok(data) = frame.into_data() {
                let held = first.as_ref().map_or(buf.len(), Bytes::len);
                if held.saturating_add(data.len()) > BODY_CAP {
                    return Err(too_large());
                }
                if first.is_none() && buf.is_empty() {
                    first = Some(data);
                } else {
                    if let Some(head) = first.take() {
                        buf.reserve(capacity.max(head.len() + data.len()));
                        buf.extend_from_slice(&head);
                    }
                    buf.extend_from_slice(&data);
                }
            }
            // A body of a declared length ends with its last byte: hyper
            // has read it whole (no trailers follow a sized body), so the
            // poll that would only say so is skipped.
            if incoming.is_end_stream() {
                break;
            }
        }
        Ok(())
    };
    let read = {
        let mut read = std::pin::pin!(read);
        // A small body usually arrives with the head, so the first look
        // finishes the read: no timer to arm and cancel for it.
        let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(done) => Ok(done),
            Poll::Pending => tokio::time::timeout(timeout, read).await,
        }
    };
    match read {
        Ok(Ok(())) => Ok(first.unwrap_or_else(|| Bytes::from(buf))),
        Ok(Err(reply)) => Err(reply),
        Err(_) => Err(closing(json_reply(
            StatusCode::REQUEST_TIMEOUT,
            &json!({"error": "request body read timed out"}),
        ))),
    }
}

fn too_large() -> Reply {
    closing(json_reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        &json!({"error": "body exceeds server cap", "cap_bytes": BODY_CAP}),
    ))
}

/// The HTTP reply for a run (docs/dialect.md §6, step 8), its headers in
/// `headers` (empty; see [`reply_headers`]).
pub(crate) fn reply_for(report: RunReport, headers: HeaderMap) -> Reply {
    let outcome = match report.outcome {
        Ok(Outcome::Completed {
            http_response: Some(r),
            ..
        }) => {
            let status =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return static_reply(status, r.content_type, r.body, headers);
        }
        Ok(outcome) => outcome,
        Err(e) => return error_reply(&e),
    };
    let body = serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".to_owned());
    static_reply(outcome_status(&outcome), JSON, body, headers)
}

/// 500 for a hard error; the connection closes after it.
fn error_reply(e: &crate::error::Error) -> Reply {
    // A durable run whose shared checkpoint store stopped answering: the
    // same 503 + Retry-After as every other request that needs the store.
    if let crate::error::Error::Io(io) = e
        && let Some(crate::checkpoint::CheckpointError::StoreUnavailable { .. }) = io
            .get_ref()
            .and_then(|source| source.downcast_ref::<crate::checkpoint::CheckpointError>())
    {
        let mut reply = json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "state store unavailable", "reason": e.to_string()}),
        );
        set_retry_after(&mut reply, STORE_RETRY_SECS);
        return reply;
    }
    closing(json_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"error": e.to_string()}),
    ))
}

fn outcome_status(outcome: &Outcome) -> StatusCode {
    match outcome {
        Outcome::Completed { .. } => StatusCode::OK,
        Outcome::Failed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
        Outcome::Paused { .. } => StatusCode::ACCEPTED,
    }
}

/// The reply, and its content type and body text for the idempotency store
/// (`None` for replies that are never stored).
fn reply_and_text(report: &RunReport, headers: HeaderMap) -> (Reply, Option<(String, String)>) {
    let outcome = match &report.outcome {
        Ok(outcome) => outcome,
        Err(e) => return (error_reply(e), None),
    };
    if let Outcome::Completed {
        http_response: Some(r),
        ..
    } = outcome
    {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reply = static_reply(status, r.content_type, r.body.clone(), headers);
        return (reply, Some((r.content_type.to_owned(), r.body.clone())));
    }
    let status = outcome_status(outcome);
    // Serialising the outcome (plain data) cannot fail; `{}` keeps this
    // path panic-free regardless.
    let body = serde_json::to_string(outcome).unwrap_or_else(|_| "{}".to_owned());
    (
        static_reply(status, JSON, body.clone(), headers),
        Some((JSON.to_owned(), body)),
    )
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    static_reply(status, JSON, body.to_string(), HeaderMap::new())
}

fn text_reply(status: StatusCode, content_type: &str, body: String) -> Reply {
    let ct = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    reply_with(status, ct, body, HeaderMap::new())
}

/// [`text_reply`] for a content type that lives for the whole process (a
/// `respond` node's, or ours): no copy when it is a valid header value.
fn static_reply(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    headers: HeaderMap,
) -> Reply {
    reply_with(status, static_type(content_type), body, headers)
}

/// The header value of a content type that lives for the whole process:
/// built at compile time for the usual ones, else checked once and
/// borrowed, with [`text_reply`]'s fallback for an invalid one (the same
/// value `HeaderValue::from_str` gives, without its copy).
fn static_type(content_type: &'static str) -> HeaderValue {
    const JSON_VALUE: HeaderValue = HeaderValue::from_static(JSON);
    const TEXT: HeaderValue = HeaderValue::from_static("text/plain");
    const TEXT_UTF8: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
    const HTML: HeaderValue = HeaderValue::from_static("text/html");
    const HTML_UTF8: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
    match content_type {
        JSON => JSON_VALUE,
        "text/plain" => TEXT,
        "text/plain; charset=utf-8" => TEXT_UTF8,
        "text/html" => HTML,
        "text/html; charset=utf-8" => HTML_UTF8,
        other => HeaderValue::from_maybe_shared(Bytes::from_static(other.as_bytes()))
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    }
}

/// The largest request header map (in headers it holds without growing)
/// that [`reply_headers`] keeps for the reply.
const REUSED_HEADERS_MAX: usize = 24;

/// The request's header map, emptied, to carry the reply's headers.
///
/// hyper hands each reply's header map, drained, to the next request head
/// it parses on the connection (its `cached_headers`), so a map the reply
/// borrows from its request goes round one connection with no allocation
/// or free per request, where a fresh map costs two of each. A map grown
/// past [`REUSED_HEADERS_MAX`] by a request with many headers is freed
/// instead, and so is one that held more values than that (repeated
/// names), so that an idle connection never keeps more than a small map.
fn reply_headers(mut headers: HeaderMap) -> HeaderMap {
    if headers.capacity() > REUSED_HEADERS_MAX || headers.len() > REUSED_HEADERS_MAX {
        return HeaderMap::new();
    }
    headers.clear();
    headers
}

fn reply_with(
    status: StatusCode,
    content_type: HeaderValue,
    body: String,
    headers: HeaderMap,
) -> Reply {
    let mut reply = Response::new(ReplyBody::new(body));
    *reply.status_mut() = status;
    let map = reply.headers_mut();
    let unused = std::mem::replace(map, headers);
    // `Response::new`'s map is `HeaderMap::new()`, which never allocates:
    // forgetting it frees nothing and skips its drop (checked, so a map
    // that did allocate is still dropped).
    if unused.capacity() == 0 {
        std::mem::forget(unused);
    }
    map.insert(header::CONTENT_TYPE, content_type);
    reply
}

/// Ask hyper to close the connection after this reply.
fn closing(mut reply: Reply) -> Reply {
    reply
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    reply
}

fn set_retry_after(reply: &mut Reply, secs: u64) {
    reply
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
}

#[cfg(test)]
mod tests;
