//! Route authentication for serve mode (docs/operations.md "Authentication"): the baked
//! `[auth.*]` bindings, their prepared (reloadable) form, and the one check the
//! server makes per request.
//!
//! Owns: the schemes (bearer, basic, HMAC with an optional replay window, mTLS,
//! OIDC/JWT against a pinned JWKS), their deny reasons, and the principal a
//! request is accepted as. It must never read the network (JWKS is pinned,
//! inline or a local file), never log or return a secret value, and never
//! decide routing, rate limits or status codes beyond "denied, and why".
//!
//! # How the server uses it
//!
//! ```text
//! // at start and on reload (serve/reload.rs holds the result in an ArcSwap):
//! let prepared = PreparedAuth::prepare(W::AUTH)?;           // JWKS parsed here
//! // per request, at pipeline step 4 of docs/dialect.md §6 (after the rate limit, before body decoding):
//! let req = AuthRequest { headers: &parts.headers, body: &body, peer: peer.as_ref(), now: SystemTime::now() };
//! match authorize(&prepared, route.auth, &req) {
//!     Ok(principal) => /* step 6: inject principal.to_json() as `principal` */,
//!     Err(denied) => /* 401, body denied.body(), audit http.auth_denied{method,path,reason} */,
//! }
//! ```
//!
//! A route's [`AuthRef`] names a binding the compiler has checked exists,
//! and the compiler enables a scheme's feature whenever a route names it, so
//! a generated binary never meets an unknown binding or a missing scheme; in
//! hand-written code either one denies every request (fail closed).
//!
//! # Security posture
//!
//! - Secrets (`tokens_env`, `credentials_env`, `secret_env`) are resolved by
//!   name on every request through [`SecretLookup`], so rotation needs no
//!   reload; a secret that cannot be resolved denies (fail closed).
//! - Token and credential comparison is constant-time across the whole set
//!   (only lengths leak); HMAC tags are checked with `Mac::verify_slice`.
//! - More than one `Authorization` (or signature/timestamp) header is refused
//!   rather than guessing which one a proxy meant.
//! - Deny reasons name headers, schemes and bindings, never a secret.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use http::HeaderMap;
#[cfg(feature = "auth-hmac")]
use http::header::AsHeaderName;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

pub use crate::workflow::auth::{AuthDefs, BasicDef, BearerDef};
pub use crate::workflow::serve::AuthRef;

#[cfg(feature = "auth-hmac")]
mod hmac;
#[cfg(feature = "auth-oidc")]
mod oidc;

#[cfg(feature = "auth-hmac")]
pub use crate::workflow::auth::HmacDef;
#[cfg(feature = "auth-oidc")]
pub use crate::workflow::auth::{JwksSource, OidcDef};
#[cfg(feature = "auth-oidc")]
pub use oidc::MAX_JWKS_BYTES;

/// Who the TLS peer is, from its leaf certificate (see `serve::tls::peer_identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// `sha256:<64 lowercase hex>` of the leaf certificate's DER: authoritative.
    pub fingerprint: String,
    /// The first subject CN, when the certificate parsed and has one (advisory).
    pub cn: Option<String>,
    /// DNS subject alternative names, lowercased (advisory; empty when none or
    /// when the certificate did not parse).
    pub sans: Vec<String>,
}

/// What [`authorize`] looks at. `body` is the raw body (HMAC signs it); `now`
/// is injected so replay windows and token lifetimes are testable.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub peer: Option<&'a PeerIdentity>,
    pub now: SystemTime,
}

/// Who a request was accepted as; injected as `trigger.principal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `anonymous`, `bearer`, `basic`, `hmac`, `mtls` or `oidc`.
    pub kind: &'static str,
    /// The binding (bearer, hmac), the user (basic), the certificate
    /// fingerprint (mtls), the subject or issuer (oidc); empty for anonymous.
    pub name: String,
    /// From the client certificate, whenever the connection carried one.
    pub cn: Option<String>,
    pub sans: Option<Vec<String>>,
}

impl Principal {
    fn new(kind: &'static str, name: impl Into<String>, peer: Option<&PeerIdentity>) -> Self {
        Principal {
            kind,
            name: name.into(),
            cn: peer.and_then(|p| p.cn.clone()),
            sans: peer.map(|p| p.sans.clone()),
        }
    }

    /// `{kind, name[, cn][, sans]}` (docs/dialect.md §6, step 6).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(self.kind));
        m.insert("name".into(), Value::from(self.name.clone()));
        if let Some(cn) = &self.cn {
            m.insert("cn".into(), Value::from(cn.clone()));
        }
        if let Some(sans) = &self.sans {
            m.insert("sans".into(), Value::from(sans.clone()));
        }
        Value::Object(m)
    }
}

/// A refused request. The reason is dialect 1's text and is safe to send to the
/// client: it never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthDenied {
    reason: String,
}

impl AuthDenied {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        AuthDenied {
            reason: reason.into(),
        }
    }

    /// The deny reason (`detail` of the 401 body, `reason` of the audit event).
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The 401 body: `{"error":"unauthorized","detail":reason}`.
    #[must_use]
    pub fn body(&self) -> Value {
        json!({ "error": "unauthorized", "detail": self.reason })
    }
}

impl fmt::Display for AuthDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for AuthDenied {}

/// Why the auth material could not be prepared (at start: refuse to serve;
/// on reload: keep the old material).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `jwks_file` could not be read.
    #[error("auth binding `oidc:{binding}`: cannot read jwks_file `{path}`: {source}")]
    JwksRead {
        binding: &'static str,
        path: &'static str,
        source: std::io::Error,
    },
    /// `jwks_file` is larger than the JWKS limit.
    #[error(
        "auth binding `oidc:{binding}`: jwks_file `{path}` is {size} bytes; the limit is {limit}"
    )]
    JwksTooLarge {
        binding: &'static str,
        path: &'static str,
        size: u64,
        limit: u64,
    },
    /// The JWKS is not a usable key set.
    #[error("auth binding `oidc:{binding}`: invalid JWKS: {reason}")]
    Jwks {
        binding: &'static str,
        reason: String,
    },
    /// An `algorithms` entry is unknown, symmetric (`HS*`) or `none`.
    #[error("auth binding `oidc:{binding}`: algorithm `{alg}` is not allowed: {reason}")]
    Algorithm {
        binding: &'static str,
        alg: &'static str,
        reason: &'static str,
    },
}

/// Resolves a secret by name (the `*_env` fields). `Err` carries a reason that
/// names the secret, never a value.
pub type SecretLookup = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// The process environment as the secret store (the front door of
/// [`crate::secrets::resolve`] without `[[secrets]]` entries): an unset or
/// blank variable is an error.
#[must_use]
pub fn env_secrets() -> SecretLookup {
    Arc::new(crate::secrets::resolver(&[]))
}

/// The auth bindings ready for requests: the baked definitions plus whatever
/// had to be read and parsed (JWKS). Rebuilt on reload; requests in flight
/// keep the snapshot they started with.
pub struct PreparedAuth {
    defs: &'static AuthDefs,
    secrets: SecretLookup,
    /// What a request without a TLS peer is accepted as by each bearer
    /// binding (in `defs.bearer`'s order): `{kind, name}` does not vary per
    /// request, so it is built once ([`shared_principal`]).
    bearer_principals: Vec<&'static Value>,
    /// The same for each HMAC binding (in `defs.hmac`'s order).
    #[cfg(feature = "auth-hmac")]
    hmac_principals: Vec<&'static Value>,
    #[cfg(feature = "auth-oidc")]
    oidc: Vec<oidc::PreparedOidc>,
}

impl fmt::Debug for PreparedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedAuth")
            .field("defs", &self.defs)
            .finish_non_exhaustive()
    }
}

impl PreparedAuth {
    /// Prepare every binding of `defs`, resolving secrets from the process
    /// environment.
    ///
    /// # Errors
    ///
    /// An OIDC binding whose JWKS cannot be read or parsed, or whose
    /// `algorithms` name `none`, a symmetric or an unknown algorithm.
    pub fn prepare(defs: &'static AuthDefs) -> Result<Self, AuthError> {
        Self::prepare_with(defs, env_secrets())
    }

    /// [`PreparedAuth::prepare`] with another secret store (`[[secrets]]`).
    ///
    /// # Errors
    ///
    /// As [`PreparedAuth::prepare`].
    pub fn prepare_with(defs: &'static AuthDefs, secrets: SecretLookup) -> Result<Self, AuthError> {
        Ok(PreparedAuth {
            defs,
            secrets,
            bearer_principals: defs
                .bearer
                .iter()
                .map(|d| shared_principal("bearer", d.name))
                .collect(),
            #[cfg(feature = "auth-hmac")]
            hmac_principals: defs
                .hmac
                .iter()
                .map(|d| shared_principal("hmac", d.name))
                .collect(),
            #[cfg(feature = "auth-oidc")]
            oidc: defs
                .oidc
                .iter()
                .map(oidc::PreparedOidc::prepare)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The baked definitions this was prepared from.
    #[must_use]
    pub fn defs(&self) -> &'static AuthDefs {
        self.defs
    }

    fn secret(&self, name: &str) -> Result<String, String> {
        (self.secrets)(name)
    }
}

/// Check one request against its route's auth (docs/dialect.md §6, step 4).
///
/// # Errors
///
/// [`AuthDenied`] with dialect 1's reason when the request is not authorised.
pub fn authorize(
    prepared: &PreparedAuth,
    route: AuthRef,
    req: &AuthRequest<'_>,
) -> Result<Principal, AuthDenied> {
    match route {
        AuthRef::None => Ok(Principal::new("anonymous", "", req.peer)),
        AuthRef::Bearer(name) => {
            let (_, def) = binding(prepared.defs.bearer, name, |d| d.name, "bearer")?;
            bearer(prepared, def, FoundHeader::lookup(req.headers))?;
            Ok(Principal::new("bearer", def.name, req.peer))
        }
        AuthRef::Basic(name) => {
            let (_, def) = binding(prepared.defs.basic, name, |d| d.name, "basic")?;
            basic(prepared, def, req)
        }
        #[cfg(feature = "auth-hmac")]
        AuthRef::Hmac(name) => {
            let (_, def) = binding(prepared.defs.hmac, name, |d| d.name, "hmac")?;
            check_hmac(prepared, def, req)?;
            Ok(Principal::new("hmac", def.name, req.peer))
        }
        #[cfg(feature = "auth-oidc")]
        AuthRef::Oidc(name) => {
            let Some(p) = prepared.oidc.iter().find(|p| p.name() == name) else {
                return Err(AuthDenied::new(format!("oidc.unknown-binding:{name}")));
            };
            p.verify(req)
        }
        #[cfg(feature = "tls")]
        AuthRef::Mtls => match req.peer {
            Some(peer) => Ok(Principal::new("mtls", peer.fingerprint.clone(), Some(peer))),
            None => Err(AuthDenied::new("client certificate required")),
        },
        #[cfg(not(feature = "auth-hmac"))]
        AuthRef::Hmac(_) => Err(not_compiled_in("hmac")),
        #[cfg(not(feature = "auth-oidc"))]
        AuthRef::Oidc(_) => Err(not_compiled_in("oidc")),
        #[cfg(not(feature = "tls"))]
        AuthRef::Mtls => Err(not_compiled_in("mtls")),
    }
}

/// [`authorize`], answering with the principal's JSON (what the server hands
/// the run, `Principal::to_json`): the same checks, the same denials, the
/// same value. Where the value is the same for every request — a bearer or
/// HMAC binding on a connection without a TLS peer: `{kind, name}` — it is
/// borrowed from one built when the auth material was prepared, so such a
/// request builds (and the run frees) no principal of its own.
///
/// # Errors
///
/// As [`authorize`].
pub fn authorize_json(
    prepared: &PreparedAuth,
    route: AuthRef,
    req: &AuthRequest<'_>,
) -> Result<Cow<'static, Value>, AuthDenied> {
    authorize_json_found(prepared, route, req, None)
}

/// [`authorize_json`] with `req`'s `Authorization` header already found,
/// when the caller has walked the headers anyway (the server's one pass,
/// `handler::HeadFacts`): a bearer route then looks nothing up by name.
/// `found` must be `FoundHeader::lookup(req.headers)`'s answer.
pub(crate) fn authorize_json_found(
    prepared: &PreparedAuth,
    route: AuthRef,
    req: &AuthRequest<'_>,
    found: Option<FoundHeader<'_>>,
) -> Result<Cow<'static, Value>, AuthDenied> {
    match route {
        AuthRef::Bearer(name) if req.peer.is_none() => {
            let (at, def) = binding(prepared.defs.bearer, name, |d| d.name, "bearer")?;
            let found = found.unwrap_or_else(|| FoundHeader::lookup(req.headers));
            bearer(prepared, def, found)?;
            Ok(shared_at(
                &prepared.bearer_principals,
                at,
                "bearer",
                def.name,
            ))
        }
        #[cfg(feature = "auth-hmac")]
        AuthRef::Hmac(name) if req.peer.is_none() => {
            let (at, def) = binding(prepared.defs.hmac, name, |d| d.name, "hmac")?;
            check_hmac(prepared, def, req)?;
            Ok(shared_at(&prepared.hmac_principals, at, "hmac", def.name))
        }
        _ => authorize(prepared, route, req).map(|p| Cow::Owned(p.to_json())),
    }
}

/// The prepared principal at `at`, or (never: both lists follow the
/// bindings' order) the same value built now.
fn shared_at(
    principals: &[&'static Value],
    at: usize,
    kind: &'static str,
    name: &str,
) -> Cow<'static, Value> {
    match principals.get(at) {
        Some(&shared) => Cow::Borrowed(shared),
        None => Cow::Owned(Principal::new(kind, name, None).to_json()),
    }
}

/// `Principal::new(kind, name, None).to_json()`, built once per distinct
/// value in the life of the process and shared. Called when auth material is
/// prepared (at start and on reload), never per request; the values are
/// kept for the life of the process, one per distinct binding name, so a
/// reload adds nothing new for a name it has seen.
fn shared_principal(kind: &'static str, name: &str) -> &'static Value {
    static SHARED: Mutex<Vec<&'static Value>> = Mutex::new(Vec::new());
    let value = Principal::new(kind, name, None).to_json();
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&found) = shared.iter().find(|&&v| *v == value) {
        return found;
    }
    let leaked: &'static Value = Box::leak(Box::new(value));
    shared.push(leaked);
    leaked
}

#[cfg(feature = "auth-hmac")]
fn check_hmac(
    prepared: &PreparedAuth,
    def: &HmacDef,
    req: &AuthRequest<'_>,
) -> Result<(), AuthDenied> {
    let secret = hmac::secret(def, |n| prepared.secret(n))?;
    hmac::verify(def, secret.as_bytes(), req)
}

/// Unreachable from generated code (the compiler enables the scheme's
/// feature); hand-written code that names a missing scheme fails closed.
#[allow(dead_code)]
fn not_compiled_in(scheme: &str) -> AuthDenied {
    AuthDenied::new(format!("`{scheme}` auth is not compiled into this binary"))
}

/// The binding named `name` and its index in `defs`.
fn binding<'d, T>(
    defs: &'d [T],
    name: &str,
    name_of: impl Fn(&T) -> &str,
    scheme: &str,
) -> Result<(usize, &'d T), AuthDenied> {
    // Unreachable from generated code, whose references the compiler checked.
    defs.iter()
        .enumerate()
        .find(|(_, d)| name_of(d) == name)
        .ok_or_else(|| AuthDenied::new(format!("auth ref `{scheme}:{name}` is not defined")))
}

/// The single value of header `name`; more than one is refused. `name` is a
/// `&str` (parsed per call) or a `&HeaderName` (no parsing).
#[cfg(feature = "auth-hmac")]
pub(crate) fn single_header<K: AsHeaderName + fmt::Display + Copy>(
    headers: &HeaderMap,
    name: K,
) -> Result<Option<&http::HeaderValue>, AuthDenied> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthDenied::new(format!("multiple {name} headers")));
    }
    Ok(first)
}

/// The `Authorization` header's text (`None` when absent).
fn authorization(headers: &HeaderMap) -> Result<Option<&str>, AuthDenied> {
    FoundHeader::lookup(headers).text()
}

/// A request's `Authorization` header as found: absent, one value, or
/// more than one (refused, as every single-valued auth header is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FoundHeader<'a> {
    Absent,
    One(&'a http::HeaderValue),
    Repeated,
}

impl<'a> FoundHeader<'a> {
    /// Looked up by name.
    pub(crate) fn lookup(headers: &'a HeaderMap) -> Self {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        match (values.next(), values.next()) {
            (None, _) => Self::Absent,
            (Some(value), None) => Self::One(value),
            (Some(_), Some(_)) => Self::Repeated,
        }
    }

    /// One more value of the header, met in a walk over the headers.
    pub(crate) fn and(self, value: &'a http::HeaderValue) -> Self {
        match self {
            Self::Absent => Self::One(value),
            Self::One(_) | Self::Repeated => Self::Repeated,
        }
    }

    /// The header's text (`None` when absent).
    fn text(self) -> Result<Option<&'a str>, AuthDenied> {
        match self {
            Self::Absent => Ok(None),
            // The constant's Display is `authorization`, as the deny reason was.
            Self::Repeated => Err(AuthDenied::new(format!(
                "multiple {} headers",
                http::header::AUTHORIZATION
            ))),
            Self::One(v) => v
                .to_str()
                .map(Some)
                .map_err(|_| AuthDenied::new("Authorization header is not printable ASCII")),
        }
    }
}

/// Every non-blank line of a secret's value, trimmed.
fn lines(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Constant-time membership: every candidate is compared, so the time taken
/// does not depend on which one (if any) matched.
fn contains_ct<'a>(set: impl Iterator<Item = &'a str>, presented: &[u8]) -> bool {
    let mut found = subtle::Choice::from(0);
    for candidate in set {
        found |= candidate.as_bytes().ct_eq(presented);
    }
    bool::from(found)
}

/// The secret-backed and literal entries of a binding: the secret's value as
/// read for this request (re-read every time, so rotation needs no restart)
/// and the baked literals, compared where they are (no copy of either per
/// request).
struct Entries {
    secret: Option<String>,
    literals: &'static [&'static str],
}

impl Entries {
    fn read(
        prepared: &PreparedAuth,
        secret: Option<&'static str>,
        literals: &'static [&'static str],
        scheme: &str,
        binding: &str,
    ) -> Result<Self, AuthDenied> {
        let secret =
            match secret {
                Some(name) => Some(prepared.secret(name).map_err(|why| {
                    AuthDenied::new(format!("{scheme} binding `{binding}`: {why}"))
                })?),
                None => None,
            };
        Ok(Self { secret, literals })
    }

    /// Every entry: the secret's non-blank lines, then the literals.
    fn iter(&self) -> impl Iterator<Item = &str> {
        self.secret
            .as_deref()
            .into_iter()
            .flat_map(lines)
            .chain(self.literals.iter().copied())
    }

    fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Check a bearer token (in the request's `Authorization` header, as
/// `found`) against `def`; the principal is the caller's.
fn bearer(
    prepared: &PreparedAuth,
    def: &BearerDef,
    found: FoundHeader<'_>,
) -> Result<(), AuthDenied> {
    let header = found
        .text()?
        .ok_or_else(|| AuthDenied::new("missing Authorization header"))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| AuthDenied::new("Authorization header does not use Bearer scheme"))?
        .trim();
    if token.is_empty() {
        return Err(AuthDenied::new("Bearer token is empty"));
    }
    let tokens = Entries::read(prepared, def.tokens_secret, def.tokens, "bearer", def.name)?;
    if tokens.is_empty() {
        return Err(AuthDenied::new(format!(
            "bearer binding `{}` has no tokens configured",
            def.name
        )));
    }
    if !contains_ct(tokens.iter(), token.as_bytes()) {
        return Err(AuthDenied::new("bearer token does not match"));
    }
    Ok(())
}

fn basic(
    prepared: &PreparedAuth,
    def: &BasicDef,
    req: &AuthRequest<'_>,
) -> Result<Principal, AuthDenied> {
    use base64::Engine as _;

    let header = authorization(req.headers)?
        .ok_or_else(|| AuthDenied::new("missing Authorization header"))?;
    let encoded = header
        .strip_prefix("Basic ")
        .ok_or_else(|| AuthDenied::new("Authorization header does not use Basic scheme"))?
        .trim();
    // STANDARD requires canonical padding: the length is a multiple of 4.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| AuthDenied::new("Basic credentials are not valid padded base64"))?;
    let presented = String::from_utf8(decoded)
        .map_err(|_| AuthDenied::new("Basic credentials are not valid UTF-8"))?;
    let Some((user, _)) = presented.split_once(':') else {
        return Err(AuthDenied::new("Basic credentials are not `user:password`"));
    };
    let credentials = Entries::read(
        prepared,
        def.credentials_secret,
        def.credentials,
        "basic",
        def.name,
    )?;
    if credentials.is_empty() {
        return Err(AuthDenied::new(format!(
            "basic binding `{}` has no credentials configured",
            def.name
        )));
    }
    if !contains_ct(credentials.iter(), presented.as_bytes()) {
        return Err(AuthDenied::new("basic credentials do not match"));
    }
    Ok(Principal::new("basic", user, req.peer))
}

#[cfg(test)]
mod tests;
