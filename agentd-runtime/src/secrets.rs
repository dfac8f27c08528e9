//! `[[secrets]]`: the one front door for secret values (docs/operations.md
//! "Secrets").
//!
//! Owns the baked secret *definitions* ([`SecretDef`]: a name and where the
//! value lives, never the value), resolution ([`resolve`]: the `[[secrets]]`
//! entry of that name first, then the process environment variable of that
//! name), the start-up probe ([`probe`]), the reload ([`refresh`]) and
//! [`Secret`], the value wrapper.
//!
//! `env` and `file` sources are read on **every** use, never cached: an `env`
//! source reads its variable again, a `file` source re-reads its file, so
//! rotating a secret needs no restart. Files are size-capped
//! ([`MAX_SECRET_FILE`]) and must be UTF-8. A `command` source (feature
//! `secrets-exec`) runs its argv with no shell, once, and its trimmed stdout
//! is cached until the next reload. An `oauth2` source (feature
//! `secrets-oauth2`) is an access token from the client credentials grant
//! ([`crate::oauth`]), cached until `expires_in − skew_secs` and fetched again
//! after that; the token URL must be allowed by the effective `[policy.http]`
//! ([`set_outbound_policy`]).
//!
//! Security posture: a value never appears in an error, a log line, an
//! outcome or a trace. Errors name the secret, its variable, file, program
//! or token URL, never its content; [`Secret`]'s `Debug` prints `***` and it
//! implements neither `Display` nor `Serialize`, so it cannot be formatted or
//! stored by accident. Callers take the value out with [`Secret::expose`] at
//! the last moment (to put it on the wire). This module must never log a
//! value, and never fall back to anything but the process environment; the
//! only values it keeps are those of `command` and `oauth2` sources, in
//! memory, for the lifetime the dialect gives them.
//!
//! Files: this one holds [`Secret`], [`SecretError`], resolution, the probe,
//! the reload and the cache; `secrets/sources.rs` reads each kind of source.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;

pub use crate::workflow::secrets::{AuthStyle, SecretDef, SecretSource};

mod sources;
#[cfg(feature = "secrets-oauth2")]
use sources::oauth2_token;
#[cfg(feature = "secrets-exec")]
use sources::run_command;
use sources::{read_env, read_file};

/// Largest secret file read (64 KiB): secrets are tokens and keys, and a
/// path pointing at something huge must fail, not exhaust memory.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// How long a `command` source's program may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A resolved secret value. `Debug` prints `***`; there is no `Display` or
/// `Serialize`, so the value only leaves through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a freshly resolved value and hand it to the log scrubber, so the
    /// value is masked in every log and audit line even if some message
    /// were ever to carry it.
    fn registered(value: String) -> Self {
        crate::obs::register_secret(&value);
        Self(value)
    }

    /// The value, for the one place it is sent (a header, a child's env).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value, owned.
    #[must_use]
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret could not be resolved. Messages name the secret and its
/// source, never the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No `[[secrets]]` entry of that name, and the environment variable of
    /// that name is unset or blank.
    #[error(
        "secret `{name}` is not declared in [[secrets]] and environment variable `{name}` is not set"
    )]
    Undeclared {
        /// The secret name.
        name: String,
    },
    /// An `env` source whose variable is unset or blank.
    #[error("secret `{name}`: environment variable `{var}` is not set")]
    EnvUnset {
        /// The secret name.
        name: String,
        /// The variable the source names.
        var: String,
    },
    /// The variable holds bytes that are not UTF-8.
    #[error("secret `{name}`: environment variable `{var}` is not valid UTF-8")]
    EnvNotUtf8 {
        /// The secret name.
        name: String,
        /// The variable.
        var: String,
    },
    /// A `file` source that cannot be read.
    #[error("secret `{name}`: cannot read `{path}`: {reason}")]
    FileUnreadable {
        /// The secret name.
        name: String,
        /// The file.
        path: String,
        /// The I/O error (never file content).
        reason: String,
    },
    /// A `file` source larger than [`MAX_SECRET_FILE`].
    #[error("secret `{name}`: `{path}` is larger than {MAX_SECRET_FILE} bytes")]
    FileTooLarge {
        /// The secret name.
        name: String,
        /// The file.
        path: String,
    },
    /// A `file` source that is not UTF-8.
    #[error("secret `{name}`: `{path}` is not valid UTF-8")]
    FileNotUtf8 {
        /// The secret name.
        name: String,
        /// The file.
        path: String,
    },
    /// A `file` source that is empty (after trimming, when `trim`).
    #[error("secret `{name}`: `{path}` is empty")]
    FileEmpty {
        /// The secret name.
        name: String,
        /// The file.
        path: String,
    },
    /// A source whose runtime feature this binary was built without.
    #[error(
        "secret `{name}`: source `{source_kind}` is not compiled into this binary (feature `{feature}`)"
    )]
    NotCompiledIn {
        /// The secret name.
        name: String,
        /// `command` or `oauth2`.
        source_kind: &'static str,
        /// The runtime feature it needs.
        feature: &'static str,
    },
    /// A `command` source whose program could not be run, failed, timed out,
    /// or printed nothing usable. `reason` quotes at most 300 characters of
    /// the program's stderr, never its stdout.
    #[error("secret `{name}`: command `{program}` {reason}")]
    Command {
        /// The secret name.
        name: String,
        /// `argv[0]`.
        program: String,
        /// What went wrong.
        reason: String,
    },
    /// An `oauth2` source whose client id or secret does not resolve.
    #[error("secret `{name}`: `{key}`: {inner}")]
    OAuth2Credential {
        /// The secret name.
        name: String,
        /// `client_id_env` or `client_secret_env`.
        key: &'static str,
        /// Why the credential did not resolve.
        inner: Box<SecretError>,
    },
    /// An `oauth2` source whose token request failed (denied by the policy,
    /// transport, refusal, unusable reply).
    #[error("secret `{name}`: {reason}")]
    OAuth2 {
        /// The secret name.
        name: String,
        /// The token error (names the endpoint; never a credential or token).
        reason: String,
    },
}

impl SecretError {
    /// The name of the secret that failed.
    #[must_use]
    pub fn secret_name(&self) -> &str {
        match self {
            Self::Undeclared { name }
            | Self::EnvUnset { name, .. }
            | Self::EnvNotUtf8 { name, .. }
            | Self::FileUnreadable { name, .. }
            | Self::FileTooLarge { name, .. }
            | Self::FileNotUtf8 { name, .. }
            | Self::FileEmpty { name, .. }
            | Self::NotCompiledIn { name, .. }
            | Self::Command { name, .. }
            | Self::OAuth2Credential { name, .. }
            | Self::OAuth2 { name, .. } => name,
        }
    }
}

/// `cx.secret(name)` for node functions: the secret resolved now through the
/// run's `[[secrets]]` ([`crate::Workflow::SECRETS`] of the top-level
/// workflow), then the process environment, at the last moment. A trait
/// because the run's context lives in the feature-free core and secret
/// sources in this crate (ARCHITECTURE.md, "The core and the facade").
pub trait SecretsExt {
    /// The secret `name`.
    ///
    /// # Errors
    ///
    /// As [`resolve`]: the error names the secret, never a value.
    fn secret(&self, name: &str) -> Result<Secret, SecretError>;
}

impl SecretsExt for crate::Cx<'_> {
    fn secret(&self, name: &str) -> Result<Secret, SecretError> {
        resolve(self.secrets(), name)
    }
}

/// Resolve `name`: the `[[secrets]]` entry of that name in `defs`, else the
/// process environment variable `name` (unset or blank is an error).
///
/// # Errors
///
/// [`SecretError`] naming the secret and its source; never the value.
pub fn resolve(defs: &[SecretDef], name: &str) -> Result<Secret, SecretError> {
    resolve_with(defs, name, |var| std::env::var_os(var))
}

/// Resolve every entry of `defs` once and drop the values: the start-up
/// check of docs/operations.md "Secrets" (a binary whose secrets cannot be read refuses to
/// start instead of failing at the first request).
///
/// # Errors
///
/// The first entry that does not resolve.
pub fn probe(defs: &[SecretDef]) -> Result<(), SecretError> {
    for def in defs {
        resolve_def(defs, def, &|var| std::env::var_os(var), &CACHE)?;
    }
    Ok(())
}

/// The reload of docs/operations.md "Secrets": resolve every entry again, with `command` and
/// `oauth2` sources run and fetched afresh, and only when all of them resolve
/// replace the cached values (a failing reload keeps the old ones).
///
/// # Errors
///
/// The first entry that does not resolve; the caches are then unchanged.
pub fn refresh(defs: &[SecretDef]) -> Result<(), SecretError> {
    let fresh = Cache::default();
    for def in defs {
        resolve_def(defs, def, &|var| std::env::var_os(var), &fresh)?;
    }
    let fresh = fresh.0.into_inner().unwrap_or_else(PoisonError::into_inner);
    CACHE.lock().extend(fresh);
    Ok(())
}

/// Install the effective `[policy]` (the baked one, or a `--policy`
/// override; `None`: no policy) that decides on `oauth2` token URLs. The CLI
/// calls this before the first resolution and again when a reload changes
/// the policy. Until it is called, nothing is denied — host programs that
/// embed the engine install their own.
pub fn set_outbound_policy(policy: Option<crate::policy::Policy>) {
    *OUTBOUND_POLICY
        .write()
        .unwrap_or_else(PoisonError::into_inner) = policy.map(Arc::new);
}

static OUTBOUND_POLICY: RwLock<Option<Arc<crate::policy::Policy>>> = RwLock::new(None);

/// The policy installed by [`set_outbound_policy`] (`None`: none installed,
/// or no policy).
#[cfg_attr(
    not(any(feature = "secrets-oauth2", feature = "mcp-oauth")),
    allow(dead_code)
)]
pub(crate) fn outbound_policy() -> Option<Arc<crate::policy::Policy>> {
    OUTBOUND_POLICY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The remembered values of `command` and `oauth2` sources, per definition.
#[derive(Default)]
struct Cache(Mutex<BTreeMap<SecretDef, Arc<Entry>>>);

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SecretDef, Arc<Entry>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `def`, created empty on first use.
    #[cfg_attr(
        not(any(feature = "secrets-exec", feature = "secrets-oauth2")),
        allow(dead_code)
    )]
    fn entry(&self, def: &SecretDef) -> Arc<Entry> {
        Arc::clone(
            self.lock()
                .entry(*def)
                .or_insert_with(|| Arc::new(Entry::new(def))),
        )
    }
}

/// One definition's cached value. Its locks serialise concurrent first uses,
/// so a program runs (or a token is fetched) once, not once per caller.
struct Entry {
    #[cfg_attr(not(feature = "secrets-exec"), allow(dead_code))]
    command: Mutex<Option<Secret>>,
    #[cfg(feature = "secrets-oauth2")]
    token: crate::oauth::TokenCache,
}

impl Entry {
    fn new(def: &SecretDef) -> Self {
        let _ = def;
        Self {
            command: Mutex::new(None),
            #[cfg(feature = "secrets-oauth2")]
            token: crate::oauth::TokenCache::new(Duration::from_secs(match def.source {
                SecretSource::OAuth2 { skew_secs, .. } => skew_secs,
                _ => 0,
            })),
        }
    }
}

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::default);

/// A resolver over `defs` for consumers that hold no [`crate::Cx`] (MCP
/// child env at spawn, LLM provider keys, serve-mode auth): the value, or
/// the error message (which names the secret, never a value).
pub fn resolver(
    defs: &'static [SecretDef],
) -> impl Fn(&str) -> Result<String, String> + Send + Sync + Clone + 'static {
    move |name| {
        resolve(defs, name)
            .map(Secret::into_exposed)
            .map_err(|e| e.to_string())
    }
}

/// [`resolve`] with an injectable environment (tests; the process
/// environment cannot be changed safely from a multi-threaded test).
pub(crate) fn resolve_with(
    defs: &[SecretDef],
    name: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Secret, SecretError> {
    if let Some(def) = defs.iter().find(|d| d.name == name) {
        return resolve_def(defs, def, &env, &CACHE);
    }
    match read_env(name, name, &env) {
        Err(SecretError::EnvUnset { name, .. }) => Err(SecretError::Undeclared { name }),
        other => other,
    }
}

fn resolve_def(
    defs: &[SecretDef],
    def: &SecretDef,
    env: &dyn Fn(&str) -> Option<OsString>,
    cache: &Cache,
) -> Result<Secret, SecretError> {
    match def.source {
        SecretSource::Env { var } => read_env(def.name, var, env),
        SecretSource::File { path, trim } => read_file(def.name, path, trim),
        SecretSource::Command { argv } => {
            #[cfg(feature = "secrets-exec")]
            {
                let entry = cache.entry(def);
                let mut slot = entry.command.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(value) = slot.as_ref() {
                    return Ok(value.clone());
                }
                let value = run_command(def.name, argv, COMMAND_TIMEOUT)?;
                *slot = Some(value.clone());
                Ok(value)
            }
            #[cfg(not(feature = "secrets-exec"))]
            {
                let _ = (argv, cache);
                Err(SecretError::NotCompiledIn {
                    name: def.name.to_owned(),
                    source_kind: "command",
                    feature: "secrets-exec",
                })
            }
        }
        SecretSource::OAuth2 { .. } => {
            #[cfg(feature = "secrets-oauth2")]
            {
                oauth2_token(defs, def, env, cache)
            }
            #[cfg(not(feature = "secrets-oauth2"))]
            {
                let _ = (defs, env, cache);
                Err(SecretError::NotCompiledIn {
                    name: def.name.to_owned(),
                    source_kind: "oauth2",
                    feature: "secrets-oauth2",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
