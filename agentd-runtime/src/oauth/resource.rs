//! Tokens for a protected resource that says where to get them (the MCP
//! authorization spec, client credentials): on a `401`, the resource's
//! `WWW-Authenticate` names its protected-resource metadata (RFC 9728
//! `resource_metadata`; without it the well-known URLs of §3.1 are tried),
//! whose `authorization_servers` lead to the authorization server's metadata
//! (RFC 8414, then OpenID Connect discovery) and its `token_endpoint`. The
//! token is fetched with [`super::client_credentials`] (with the RFC 8707
//! `resource` parameter), cached in a [`super::TokenCache`], sent as a bearer,
//! and dropped and fetched again on the next `401`.
//!
//! Owns the discovery and [`ResourceClient`]; the transport decides when to
//! ask. Metadata requests are `GET`s through the same client and checks as
//! the token request (`[policy.http]`, roots, no redirects, 64 KiB). Never
//! logs; errors name URLs, never a credential or a token.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use ureq::http;

use super::{ClientAuth, ClientCredentials, TokenCache, TokenError};
use crate::policy::{Decision, Policy};

/// The `resource_metadata` parameter of a `WWW-Authenticate` value (any
/// challenge; quoted or bare), if there is one.
#[must_use]
pub fn resource_metadata(www_authenticate: &str) -> Option<String> {
    param(www_authenticate, "resource_metadata")
}

/// The `scope` parameter of a `WWW-Authenticate` value, if there is one.
#[must_use]
pub fn challenge_scope(www_authenticate: &str) -> Option<String> {
    param(www_authenticate, "scope")
}

fn param(header: &str, name: &str) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        // A whole parameter name: preceded by a separator, followed by `=`.
        let before = lower[..start].chars().next_back();
        if before.is_some_and(|c| !matches!(c, ' ' | ',' | '\t')) {
            continue;
        }
        let rest = header[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        return Some(match rest.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                value
            }
            None => rest
                .split([',', ' ', '\t'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    None
}

/// `scheme://authority` and the path of an absolute http(s) URL (the path
/// without query or fragment, `""` for the root).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let after = url.find("://")? + 3;
    let end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    let origin = &url[..end];
    let path = &url[end..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    Some((origin, path.trim_end_matches('/')))
}

/// Whether the protected resource `resource` (from metadata) covers the
/// server at `server_url`: the same scheme and authority (compared without
/// regard to case) and a path that is the server's or one of its ancestors
/// on a segment boundary.
fn resource_covers(resource: &str, server_url: &str) -> bool {
    let (Some((r_origin, r_path)), Some((s_origin, s_path))) =
        (split_url(resource), split_url(server_url))
    else {
        return false;
    };
    r_origin.eq_ignore_ascii_case(s_origin)
        && (r_path.is_empty()
            || s_path == r_path
            || s_path
                .strip_prefix(r_path)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// RFC 9728 §3.1: the metadata URL of `resource`, path-specific first, then
/// the origin's.
#[must_use]
pub fn resource_metadata_urls(resource: &str) -> Vec<String> {
    let Some((origin, path)) = split_url(resource) else {
        return Vec::new();
    };
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-protected-resource{path}"
    )];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/oauth-protected-resource"));
    }
    urls
}

/// RFC 8414 §3.1, then OpenID Connect discovery (both placements): where an
/// authorization server `issuer` publishes its metadata.
#[must_use]
pub fn authorization_server_metadata_urls(issuer: &str) -> Vec<String> {
    let Some((origin, path)) = split_url(issuer) else {
        return Vec::new();
    };
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    urls
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The authorization server's token endpoint.
    pub token_endpoint: String,
    /// The resource identifier to ask a token for (RFC 8707): the metadata's
    /// `resource`, else the server URL.
    pub resource: String,
    /// `scopes_supported` of the resource, joined (used when no scope is
    /// configured and the challenge names none).
    pub scopes_supported: Option<String>,
}

/// `GET url` as JSON: `Ok(None)` for a 404 (try the next URL).
fn get_json(url: &str, policy: Option<&Policy>) -> Result<Option<Value>, TokenError> {
    if let Some(Decision::Deny(reason)) = policy.map(|p| p.check_http("GET", url)) {
        return Err(TokenError::Denied {
            url: url.to_owned(),
            reason,
        });
    }
    let roots = super::roots_for(url)?;
    let request = http::Request::builder()
        .method(http::Method::GET)
        .uri(url)
        .header("accept", "application/json")
        .body(&[][..])
        .map_err(|e| TokenError::BadUrl {
            url: url.to_owned(),
            reason: format!("invalid request: {e}"),
        })?;
    let (status, bytes) = super::exchange(url, &roots, request)?;
    if status == 404 {
        return Ok(None);
    }
    if !(200..=299).contains(&status) {
        return Err(TokenError::Discovery {
            url: url.to_owned(),
            detail: format!("HTTP {status}: {}", super::excerpt_or_empty(&bytes)),
        });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| TokenError::Discovery {
            url: url.to_owned(),
            detail: format!("metadata is not JSON: {e}"),
        })
}

/// The first of `urls` that answers with metadata.
fn first_found(urls: &[String], policy: Option<&Policy>) -> Result<(String, Value), TokenError> {
    for url in urls {
        if let Some(doc) = get_json(url, policy)? {
            return Ok((url.clone(), doc));
        }
    }
    Err(TokenError::Discovery {
        url: urls.first().cloned().unwrap_or_default(),
        detail: format!("no metadata found (tried {})", urls.join(", ")),
    })
}

/// Find the token endpoint for `server_url` from a `401`'s `WWW-Authenticate`.
///
/// # Errors
///
/// A metadata document that cannot be had or lacks what the next step
/// needs (`authorization_servers`, `token_endpoint`).
pub fn discover(
    server_url: &str,
    www_authenticate: Option<&str>,
    policy: Option<&Policy>,
) -> Result<Discovered, TokenError> {
    let urls = match www_authenticate.and_then(resource_metadata) {
        Some(url) => vec![url],
        None => resource_metadata_urls(server_url),
    };
    let (prm_url, prm) = first_found(&urls, policy)?;
    let bad = |url: &str, detail: &str| TokenError::Discovery {
        url: url.to_owned(),
        detail: detail.to_owned(),
    };
    let issuer = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                &prm_url,
                "no `authorization_servers` in the protected-resource metadata",
            )
        })?;
    let resource = prm
        .get("resource")
        .and_then(Value::as_str)
        .unwrap_or(server_url)
        .to_owned();
    // RFC 9728 §3.3 and the MCP authorization spec: metadata that names another
    // resource is not this server's, and a token asked for it would be one this
    // server must refuse (or, worse, one another server would accept).
    if !resource_covers(&resource, server_url) {
        return Err(bad(
            &prm_url,
            &format!(
                "the protected-resource metadata is for `{resource}`, which does not cover \
                 the server `{server_url}`"
            ),
        ));
    }
    let scopes_supported = prm
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty());
    let (as_url, asm) = first_found(&authorization_server_metadata_urls(issuer), policy)?;
    let token_endpoint = asm
        .get("token_endpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                &as_url,
                "no `token_endpoint` in the authorization server metadata",
            )
        })?
        .to_owned();
    Ok(Discovered {
        token_endpoint,
        resource,
        scopes_supported,
    })
}

/// Resolves a secret name to its value (the `[[secrets]]` front door).
pub type Resolve = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// A client's registration with the authorization server of a resource.
#[derive(Clone)]
pub struct Registration {
    /// Secret holding the client id.
    pub client_id: String,
    /// Secret holding the client secret.
    pub client_secret: String,
    /// How the client authenticates.
    pub auth: ClientAuth,
    /// Scopes to ask for (`None`: the challenge's, else the resource's).
    pub scope: Option<String>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names of secrets only; the values are never held here.
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Bearer tokens for one protected resource, discovered on its first `401`.
pub struct ResourceClient {
    server_url: String,
    registration: Registration,
    resolve: Resolve,
    policy: Option<Arc<Policy>>,
    found: Mutex<Option<(Discovered, Option<String>)>>,
    cache: TokenCache,
    /// Called with the token's lifetime after each fetch (the caller audits).
    on_fetch: Box<dyn Fn(u64) + Send + Sync>,
}

impl std::fmt::Debug for ResourceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceClient")
            .field("server_url", &self.server_url)
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}

impl ResourceClient {
    /// A client for `server_url`; nothing is sent until the first `401`.
    #[must_use]
    pub fn new(
        server_url: &str,
        registration: Registration,
        resolve: Resolve,
        policy: Option<Arc<Policy>>,
        on_fetch: Box<dyn Fn(u64) + Send + Sync>,
    ) -> Self {
        Self {
            server_url: server_url.to_owned(),
            registration,
            resolve,
            policy,
            found: Mutex::new(None),
            cache: TokenCache::new(Duration::from_secs(60)),
            on_fetch,
        }
    }

    /// `Bearer <token>` once the authorization server is known (a fresh token
    /// is fetched when the cached one is stale), else `None`.
    ///
    /// # Errors
    ///
    /// The token request failed, or a credential did not resolve.
    pub fn authorization(&self) -> Result<Option<String>, String> {
        let found = self
            .found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some((found, challenge_scope)) = found else {
            return Ok(None);
        };
        let (token, fetched) = self
            .cache
            .get_or_fetch(|| self.fetch(&found, challenge_scope.as_deref()))?;
        if fetched {
            (self.on_fetch)(token.lifetime_secs());
        }
        Ok(Some(format!("Bearer {}", token.expose())))
    }

    /// The resource answered `401` with `www_authenticate`: discover (again,
    /// when the challenge names other metadata), drop the cached token, and
    /// say to retry.
    ///
    /// # Errors
    ///
    /// Discovery failed.
    pub fn unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, String> {
        let discovered = discover(&self.server_url, www_authenticate, self.policy.as_deref())
            .map_err(|e| e.to_string())?;
        let scope = www_authenticate.and_then(challenge_scope);
        *self.found.lock().unwrap_or_else(PoisonError::into_inner) = Some((discovered, scope));
        self.cache.invalidate();
        Ok(true)
    }

    fn fetch(
        &self,
        found: &Discovered,
        challenge_scope: Option<&str>,
    ) -> Result<super::AccessToken, String> {
        let id = (self.resolve)(&self.registration.client_id)?;
        let secret = (self.resolve)(&self.registration.client_secret)?;
        let scope = self
            .registration
            .scope
            .as_deref()
            .or(challenge_scope)
            .or(found.scopes_supported.as_deref());
        let extra = [("resource", found.resource.as_str())];
        super::client_credentials(
            &ClientCredentials {
                token_url: &found.token_endpoint,
                client_id: &id,
                client_secret: &secret,
                auth: self.registration.auth,
                scope,
                extra: &extra,
            },
            self.policy.as_deref(),
        )
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_for_another_resource_does_not_cover_the_server() {
        let server = "https://mcp.example/api/mcp";
        assert!(resource_covers("https://mcp.example/api/mcp", server));
        assert!(resource_covers("https://MCP.example/api/mcp/", server));
        assert!(resource_covers("https://mcp.example/api", server));
        assert!(resource_covers("https://mcp.example", server));
        assert!(!resource_covers("https://evil.example/api/mcp", server));
        assert!(!resource_covers("http://mcp.example/api/mcp", server));
        assert!(!resource_covers("https://mcp.example:8443/api/mcp", server));
        assert!(!resource_covers("https://mcp.example/ap", server));
        assert!(!resource_covers(
            "https://mcp.example/api/mcp/tools",
            server
        ));
        assert!(!resource_covers("not a url", server));
    }

    #[test]
    fn challenge_parameters_are_read_quoted_or_bare() {
        let h = r#"Bearer error="invalid_token", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="a b""#;
        assert_eq!(
            resource_metadata(h).as_deref(),
            Some("https://mcp.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(challenge_scope(h).as_deref(), Some("a b"));
        assert_eq!(
            resource_metadata("Bearer resource_metadata=http://x/m, realm=\"r\"").as_deref(),
            Some("http://x/m")
        );
        assert_eq!(resource_metadata("Bearer realm=\"x\""), None);
        // Only a whole parameter name counts.
        assert_eq!(challenge_scope("Bearer xscope=\"no\""), None);
    }

    #[test]
    fn well_known_urls_follow_rfc_9728_and_rfc_8414() {
        assert_eq!(
            resource_metadata_urls("https://h:8443/mcp/?x=1"),
            [
                "https://h:8443/.well-known/oauth-protected-resource/mcp",
                "https://h:8443/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            resource_metadata_urls("http://h"),
            ["http://h/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            authorization_server_metadata_urls("https://as.example/tenant1"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration"
            ]
        );
    }
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A protected resource's metadata, its authorization server's metadata
    /// and token endpoint, all on one 127.0.0.1 server; the token requests'
    /// bodies are recorded.
    fn authorization_server() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let base = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (b, sink) = (base.clone(), Arc::clone(&seen));
        let issued = AtomicU32::new(0);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut r = BufReader::new(stream);
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let (status, reply) = match path.as_str() {
                    "/.well-known/oauth-protected-resource/mcp" => (
                        "200 OK",
                        format!(
                            r#"{{"resource":"{b}/mcp","authorization_servers":["{b}/as"],"scopes_supported":["tools"]}}"#
                        ),
                    ),
                    "/.well-known/oauth-authorization-server/as" => (
                        "200 OK",
                        format!(r#"{{"issuer":"{b}/as","token_endpoint":"{b}/as/token"}}"#),
                    ),
                    "/as/token" => {
                        if let Ok(mut s) = sink.lock() {
                            s.push(String::from_utf8_lossy(&body).into_owned());
                        }
                        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                        (
                            "200 OK",
                            format!(
                                r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600}}"#
                            ),
                        )
                    }
                    _ => ("404 Not Found", String::new()),
                };
                let mut s = r.into_inner();
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        (base, seen)
    }

    fn client(base: &str, fetches: Arc<AtomicU32>) -> ResourceClient {
        let resolve: Resolve = Arc::new(|name: &str| match name {
            "ID" => Ok("cid".to_owned()),
            "SECRET" => Ok("cs".to_owned()),
            other => Err(format!("secret `{other}` is not set")),
        });
        ResourceClient::new(
            &format!("{base}/mcp"),
            Registration {
                client_id: "ID".to_owned(),
                client_secret: "SECRET".to_owned(),
                auth: ClientAuth::Post,
                scope: None,
            },
            resolve,
            None,
            Box::new(move |_| {
                fetches.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    #[test]
    fn a_401_leads_through_both_metadata_documents_to_a_cached_bearer_token() {
        let (base, seen) = authorization_server();
        let fetches = Arc::new(AtomicU32::new(0));
        let c = client(&base, Arc::clone(&fetches));
        // Nothing is known before the first 401: no header.
        assert_eq!(c.authorization(), Ok(None));
        let challenge = format!(
            r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
        );
        assert_eq!(c.unauthorized(Some(&challenge)), Ok(true));
        assert_eq!(
            c.authorization().ok().flatten().as_deref(),
            Some("Bearer at-1")
        );
        assert_eq!(
            c.authorization().ok().flatten().as_deref(),
            Some("Bearer at-1")
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "the token is cached");
        // Another 401: the token is dropped and a new one fetched.
        assert_eq!(c.unauthorized(Some(&challenge)), Ok(true));
        assert_eq!(
            c.authorization().ok().flatten().as_deref(),
            Some("Bearer at-2")
        );
        let bodies = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let resource: String =
            form_urlencoded::byte_serialize(format!("{base}/mcp").as_bytes()).collect();
        assert_eq!(
            bodies[0],
            format!(
                "grant_type=client_credentials&client_id=cid&client_secret=cs&scope=tools&resource={resource}"
            )
        );
    }

    #[test]
    fn metadata_naming_another_resource_is_refused_before_any_token_request() {
        let (base, _) = authorization_server();
        let fetches = Arc::new(AtomicU32::new(0));
        let c = ResourceClient::new(
            &format!("{base}/elsewhere"),
            Registration {
                client_id: "cid".to_owned(),
                client_secret: "cs".to_owned(),
                auth: ClientAuth::Basic,
                scope: None,
            },
            Arc::new(|_: &str| Ok("x".to_owned())),
            None,
            Box::new({
                let fetches = Arc::clone(&fetches);
                move |_| {
                    fetches.fetch_add(1, Ordering::SeqCst);
                }
            }),
        );
        // The challenge points at the metadata of `/mcp`, not of this server.
        let challenge = format!(
            r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
        );
        let err = c
            .unauthorized(Some(&challenge))
            .expect_err("metadata for another resource must be refused");
        assert!(
            err.contains(&format!(
                "is for `{base}/mcp`, which does not cover the server `{base}/elsewhere`"
            )),
            "{err}"
        );
        assert_eq!(c.authorization(), Ok(None));
        assert_eq!(fetches.load(Ordering::SeqCst), 0, "no token was asked for");
    }

    #[test]
    fn without_resource_metadata_the_well_known_url_is_tried() {
        let (base, _) = authorization_server();
        let c = client(&base, Arc::new(AtomicU32::new(0)));
        assert_eq!(c.unauthorized(Some("Bearer realm=\"mcp\"")), Ok(true));
        assert_eq!(
            c.authorization().ok().flatten().as_deref(),
            Some("Bearer at-1")
        );
    }

    #[test]
    fn missing_metadata_is_a_clear_error() {
        let (base, _) = authorization_server();
        let c = ResourceClient::new(
            &format!("{base}/other"),
            Registration {
                client_id: "ID".to_owned(),
                client_secret: "SECRET".to_owned(),
                auth: ClientAuth::Basic,
                scope: None,
            },
            Arc::new(|_: &str| Ok("x".to_owned())),
            None,
            Box::new(|_| {}),
        );
        assert_eq!(
            c.unauthorized(None),
            Err(format!(
                "authorization discovery at `{base}/.well-known/oauth-protected-resource/other`: \
                 no metadata found (tried {base}/.well-known/oauth-protected-resource/other, \
                 {base}/.well-known/oauth-protected-resource)"
            ))
        );
    }
}
