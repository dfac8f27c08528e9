//! OAuth 2.0 access tokens for outbound calls (feature `oauth`): the client
//! credentials grant (RFC 6749 §4.4) and a per-credential token cache.
//!
//! Shared by the `[[secrets]] source = "oauth2"` entries (module
//! [`crate::secrets`]) and by anything else that must present a bearer token
//! it obtains itself (remote MCP servers behind OAuth).
//!
//! Owns: the token request (form body `grant_type=client_credentials`, the
//! client authenticated with HTTP Basic — `client_secret_basic`, RFC 6749
//! §2.3.1, id and secret form-encoded first — or in the body —
//! `client_secret_post`), `scope`, extra parameters (sorted, so the request
//! is deterministic), the reply's parsing (RFC 6749 §5.1 and the §5.2 error
//! object), and [`TokenCache`]: a token is reused until `expires_in − skew`
//! on the monotonic clock (a reply without `expires_in` counts as 300 s),
//! then fetched again.
//!
//! Transport: ureq with rustls (ring) and the roots of [`crate::tls_roots`]
//! — the same client stack and CA handling as `http_request`. No redirects,
//! no proxies, 10 s to connect and 30 s for the whole exchange, replies read
//! up to [`MAX_TOKEN_REPLY`]. `[policy.http]` decides on the token URL (as a
//! `POST`) before anything is sent.
//!
//! Security posture: the client secret and the access token never appear in
//! an error, a log line or a `Debug` ([`AccessToken`] prints `***`). Error
//! texts quote at most the first 300 characters of a *refusal or unparsable*
//! body (which carries no token); a well-formed reply that lacks
//! `access_token` is described by its key names only. Tokens are registered
//! with the log scrubber when received. This module never logs; callers
//! audit the fetch (`secrets.oauth2_token_fetched`, ...).

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http;

use crate::policy::{Decision, Policy};

/// Connect timeout of a token request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-exchange timeout of a token request.
pub const OVERALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest token reply read (64 KiB); a larger one is an error.
pub const MAX_TOKEN_REPLY: u64 = 64 * 1024;
/// Lifetime assumed when a reply carries no `expires_in`.
pub const DEFAULT_EXPIRES_IN: u64 = 300;
/// How much of a refusal body an error quotes.
const BODY_EXCERPT: usize = 300;

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic base64(id:secret)`, each
    /// form-urlencoded first (RFC 6749 §2.3.1). Dialect 1's
    /// `auth_style = "basic"`.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form
    /// body. Dialect 1's `auth_style = "body"`.
    Post,
}

/// One client credentials token request.
pub struct ClientCredentials<'a> {
    /// The token endpoint (`http://` or `https://`).
    pub token_url: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The client secret (never printed).
    pub client_secret: &'a str,
    /// How the client authenticates.
    pub auth: ClientAuth,
    /// Space-separated scopes (`None` or empty: no `scope` parameter).
    pub scope: Option<&'a str>,
    /// Extra form parameters (sent sorted by name, after the standard ones).
    pub extra: &'a [(&'a str, &'a str)],
}

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .field("extra", &self.extra)
            .finish()
    }
}

/// A token as the endpoint granted it.
#[derive(Clone)]
pub struct AccessToken {
    value: String,
    /// `expires_in` of the reply, if it had one.
    pub expires_in: Option<u64>,
}

impl AccessToken {
    /// The token, for the one place it is sent (an `Authorization` header,
    /// a secret's value).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The lifetime the cache uses: `expires_in`, else [`DEFAULT_EXPIRES_IN`].
    #[must_use]
    pub fn lifetime_secs(&self) -> u64 {
        self.expires_in.unwrap_or(DEFAULT_EXPIRES_IN)
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"***")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Why no token was obtained. Messages name the endpoint and quote refusal
/// bodies (up to 300 characters), never a credential or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// `[policy.http]` does not allow a `POST` to the token URL.
    #[error("token endpoint `{url}` is not allowed: {reason}")]
    Denied {
        /// The token URL.
        url: String,
        /// The policy's reason.
        reason: String,
    },
    /// A URL that is not `http://` or `https://`, or that ureq refuses.
    #[error("token endpoint `{url}`: {reason}")]
    BadUrl {
        /// The token URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA bundle named by `AGENTD_HTTP_CA_FILE` / `SSL_CERT_FILE` is unusable.
    #[error("token endpoint `{url}`: {reason}")]
    Roots {
        /// The token URL.
        url: String,
        /// Which file and why.
        reason: String,
    },
    /// Connection, TLS, timeout or read failure.
    #[error("token endpoint `{url}`: {reason}")]
    Transport {
        /// The token URL.
        url: String,
        /// The failure in words.
        reason: String,
    },
    /// A non-2xx status (RFC 6749 §5.2 `error` and `error_description` are
    /// shown when present).
    #[error("token endpoint `{url}` refused the request with HTTP {status}: {detail}")]
    Refused {
        /// The token URL.
        url: String,
        /// The status.
        status: u16,
        /// The OAuth error, or the body's first 300 characters.
        detail: String,
    },
    /// Authorization server discovery failed (a metadata document missing,
    /// refused, not JSON, or without what the next step needs).
    #[error("authorization discovery at `{url}`: {detail}")]
    Discovery {
        /// The metadata URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// A 2xx reply that is not a usable token response.
    #[error("token endpoint `{url}` sent an unusable reply: {detail}")]
    BadReply {
        /// The token URL.
        url: String,
        /// What is wrong (never the token).
        detail: String,
    },
}

/// Obtain a token with the client credentials grant.
///
/// `policy` is the effective `[policy]` (`None`: no policy, everything is
/// allowed); it must allow a `POST` to the token URL.
///
/// # Errors
///
/// [`TokenError`]: denied, transport failure, refusal, or an unusable reply.
pub fn client_credentials(
    req: &ClientCredentials<'_>,
    policy: Option<&Policy>,
) -> Result<AccessToken, TokenError> {
    let url = req.token_url;
    if let Some(Decision::Deny(reason)) = policy.map(|p| p.check_http("POST", url)) {
        return Err(TokenError::Denied {
            url: url.to_owned(),
            reason,
        });
    }
    let roots = roots_for(url)?;
    let body = form_body(req);
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    if req.auth == ClientAuth::Basic {
        builder = builder.header(
            "authorization",
            basic_header(req.client_id, req.client_secret),
        );
    }
    let request = builder
        .body(body.as_bytes())
        .map_err(|e| TokenError::BadUrl {
            url: url.to_owned(),
            reason: format!("invalid request: {e}"),
        })?;
    let (status, bytes) = exchange(url, &roots, request)?;
    parse_reply(url, status, &bytes)
}

/// Send one request with the token client's settings and read the reply
/// (at most [`MAX_TOKEN_REPLY`] bytes).
fn exchange(
    url: &str,
    roots: &crate::tls_roots::Roots,
    request: http::Request<&[u8]>,
) -> Result<(u16, Vec<u8>), TokenError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(OVERALL_TIMEOUT))
        .max_idle_connections(0)
        .tls_config(roots.tls_config())
        .build()
        .into();
    let transport = |reason: String| TokenError::Transport {
        url: url.to_owned(),
        reason,
    };
    let reply = agent.run(request).map_err(|e| transport(describe(&e)))?;
    let status = reply.status().as_u16();
    let mut bytes = Vec::new();
    reply
        .into_body()
        .into_reader()
        .take(MAX_TOKEN_REPLY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| transport(format!("reading the reply: {e}")))?;
    if bytes.len() as u64 > MAX_TOKEN_REPLY {
        return Err(TokenError::BadReply {
            url: url.to_owned(),
            detail: format!("the reply is larger than {MAX_TOKEN_REPLY} bytes"),
        });
    }
    Ok((status, bytes))
}

/// The trusted roots for `url` (none read for plain `http://`), after the
/// scheme check.
fn roots_for(url: &str) -> Result<crate::tls_roots::Roots, TokenError> {
    let https = url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
    let plain = url
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
    if !https && !plain {
        return Err(TokenError::BadUrl {
            url: url.to_owned(),
            reason: "only http:// and https:// URLs are supported".to_owned(),
        });
    }
    if https {
        crate::tls_roots::Roots::from_env().map_err(|reason| TokenError::Roots {
            url: url.to_owned(),
            reason,
        })
    } else {
        // A plaintext exchange never uses roots: a broken CA bundle must not fail it.
        Ok(crate::tls_roots::Roots::WebPki)
    }
}

/// The form body: the grant, the client (for `client_secret_post`), the
/// scope, then the extra parameters sorted by name.
fn form_body(req: &ClientCredentials<'_>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if req.auth == ClientAuth::Post {
        form.append_pair("client_id", req.client_id);
        form.append_pair("client_secret", req.client_secret);
    }
    if let Some(scope) = req.scope.filter(|s| !s.trim().is_empty()) {
        form.append_pair("scope", scope);
    }
    let mut extra = req.extra.to_vec();
    extra.sort_unstable();
    for (k, v) in extra {
        form.append_pair(k, v);
    }
    form.finish()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_header(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Read a token endpoint reply (RFC 6749 §5.1 success, §5.2 error).
fn parse_reply(url: &str, status: u16, bytes: &[u8]) -> Result<AccessToken, TokenError> {
    let json: Option<Value> = serde_json::from_slice(bytes).ok();
    if !(200..=299).contains(&status) {
        let detail = match json.as_ref().and_then(|j| j.get("error")?.as_str()) {
            Some(error) => match json
                .as_ref()
                .and_then(|j| j.get("error_description")?.as_str())
            {
                Some(desc) => format!("{error}: {}", excerpt(desc.as_bytes())),
                None => error.to_owned(),
            },
            None => excerpt_or_empty(bytes),
        };
        return Err(TokenError::Refused {
            url: url.to_owned(),
            status,
            detail,
        });
    }
    let bad = |detail: String| TokenError::BadReply {
        url: url.to_owned(),
        detail,
    };
    let Some(json) = json else {
        return Err(bad(format!("not JSON: {}", excerpt_or_empty(bytes))));
    };
    let Some(obj) = json.as_object() else {
        return Err(bad("the reply is JSON but not an object".to_owned()));
    };
    let Some(token) = obj.get("access_token").and_then(Value::as_str) else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        return Err(bad(format!(
            "no `access_token` string in the reply (keys: {})",
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.join(", ")
            }
        )));
    };
    if token.is_empty() || token.contains(['\r', '\n']) {
        return Err(bad(
            "`access_token` is empty or holds a line break".to_owned()
        ));
    }
    if let Some(kind) = obj.get("token_type") {
        let bearer = kind
            .as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case("bearer"));
        if !bearer {
            return Err(bad(format!(
                "`token_type` is {kind}, and only bearer tokens are supported"
            )));
        }
    }
    // RFC 6749 says a number; some servers send a numeric string.
    let expires_in = match obj.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| bad(format!("`expires_in` is {v}, not a number of seconds")))?,
        ),
    };
    crate::obs::register_secret(token);
    Ok(AccessToken {
        value: token.to_owned(),
        expires_in,
    })
}

fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(BODY_EXCERPT)
        .collect()
}

fn excerpt_or_empty(bytes: &[u8]) -> String {
    let text = excerpt(bytes);
    if text.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        format!("`{}`", text.trim())
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(phase) => format!("timed out ({phase})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        other => other.to_string(),
    }
}

/// One credential's cached token: reused until `lifetime − skew` has passed
/// on the monotonic clock, then fetched again. [`TokenCache::invalidate`]
/// drops it (a resource server's 401 says it is no longer good).
///
/// Fetches are serialised per cache, so concurrent users of an expired token
/// cause one request, not one each.
#[derive(Debug)]
pub struct TokenCache {
    skew: Duration,
    slot: Mutex<Option<(AccessToken, Instant)>>,
}

impl TokenCache {
    /// An empty cache whose tokens are renewed `skew` before they expire.
    #[must_use]
    pub const fn new(skew: Duration) -> Self {
        Self {
            skew,
            slot: Mutex::new(None),
        }
    }

    /// The cached token while it is fresh, else `fetch()`'s, which is cached.
    /// The flag is `true` when `fetch` ran.
    ///
    /// # Errors
    ///
    /// `fetch`'s error; the cache is then empty.
    pub fn get_or_fetch<E>(
        &self,
        fetch: impl FnOnce() -> Result<AccessToken, E>,
    ) -> Result<(AccessToken, bool), E> {
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((token, until)) = slot.as_ref()
            && Instant::now() < *until
        {
            return Ok((token.clone(), false));
        }
        *slot = None;
        let token = fetch()?;
        let life = Duration::from_secs(token.lifetime_secs()).saturating_sub(self.skew);
        *slot = Some((token.clone(), Instant::now() + life));
        Ok((token, true))
    }

    /// Forget the cached token (the next use fetches).
    pub fn invalidate(&self) {
        *self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

pub mod resource;

#[cfg(test)]
mod tests;
