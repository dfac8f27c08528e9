//! `[[secrets]]`: the one front door for secret values (spec/dialect-ops.md
//! §11).
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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;

pub use crate::workflow::secrets::{AuthStyle, SecretDef, SecretSource};

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
/// check of spec §11 (a binary whose secrets cannot be read refuses to
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

/// The reload of spec §11: resolve every entry again, with `command` and
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

/// An `oauth2` source: the cached token while it is fresh, else a new one
/// (audited as `secrets.oauth2_token_fetched`). The client id and secret go
/// through the front door, except that they may not come from another
/// `oauth2` source (a loop the build refuses too).
#[cfg(feature = "secrets-oauth2")]
fn oauth2_token(
    defs: &[SecretDef],
    def: &SecretDef,
    env: &dyn Fn(&str) -> Option<OsString>,
    cache: &Cache,
) -> Result<Secret, SecretError> {
    let SecretSource::OAuth2 {
        token_url,
        client_id_env,
        client_secret_env,
        scopes,
        extra_params,
        auth_style,
        skew_secs: _,
    } = def.source
    else {
        return Err(SecretError::Undeclared {
            name: def.name.to_owned(),
        });
    };
    let credential = |key: &'static str, name: &str| -> Result<Secret, SecretError> {
        let wrap = |inner: SecretError| SecretError::OAuth2Credential {
            name: def.name.to_owned(),
            key,
            inner: Box::new(inner),
        };
        match defs.iter().find(|d| d.name == name) {
            Some(d) if matches!(d.source, SecretSource::OAuth2 { .. }) => {
                Err(wrap(SecretError::OAuth2 {
                    name: name.to_owned(),
                    reason: "an oauth2 token cannot be a client credential".to_owned(),
                }))
            }
            Some(d) => resolve_def(defs, d, env, cache).map_err(wrap),
            None => match read_env(name, name, env) {
                Err(SecretError::EnvUnset { name, .. }) => {
                    Err(wrap(SecretError::Undeclared { name }))
                }
                other => other.map_err(wrap),
            },
        }
    };
    let entry = cache.entry(def);
    let (token, fetched) = entry.token.get_or_fetch(|| {
        let id = credential("client_id_env", client_id_env)?;
        let secret = credential("client_secret_env", client_secret_env)?;
        let scope = scopes.join(" ");
        let request = crate::oauth::ClientCredentials {
            token_url,
            client_id: id.expose(),
            client_secret: secret.expose(),
            auth: match auth_style {
                AuthStyle::Body => crate::oauth::ClientAuth::Post,
                AuthStyle::Basic => crate::oauth::ClientAuth::Basic,
            },
            scope: Some(scope.as_str()),
            extra: extra_params,
        };
        crate::oauth::client_credentials(&request, outbound_policy().as_deref()).map_err(|e| {
            SecretError::OAuth2 {
                name: def.name.to_owned(),
                reason: e.to_string(),
            }
        })
    })?;
    if fetched {
        crate::obs::audit(
            "secrets.oauth2_token_fetched",
            // `secret_name`, not dialect 1's `secret`: the redactor hides
            // every field called `secret`, which would leave the event nameless.
            serde_json::json!({ "secret_name": def.name, "expires_in_secs": token.lifetime_secs() }),
        );
    }
    Ok(Secret::registered(token.expose().to_owned()))
}

/// Run a `command` source's program (no shell, stdin closed) and take its
/// stdout: UTF-8, at most [`MAX_SECRET_FILE`] bytes, trailing whitespace
/// trimmed, not empty. A program still running after `timeout` is killed.
#[cfg(feature = "secrets-exec")]
fn run_command(name: &str, argv: &[&str], timeout: Duration) -> Result<Secret, SecretError> {
    use std::process::{Command, Stdio};
    let program = argv.first().copied().unwrap_or_default();
    let fail = |reason: String| SecretError::Command {
        name: name.to_owned(),
        program: program.to_owned(),
        reason,
    };
    if program.is_empty() {
        return Err(fail("is empty".to_owned()));
    }
    let mut child = Command::new(program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot be started: {e}")))?;
    // Both pipes are drained on their own threads (bounded), so a chatty
    // program cannot block on a full pipe while we wait for it.
    let drain = |pipe: Option<Box<dyn Read + Send>>, cap: u64| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(cap).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        MAX_SECRET_FILE + 1,
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        4096,
    );
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not finish within {timeout:?} and was killed"
                )));
            }
            Err(e) => return Err(fail(format!("cannot be waited for: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let said: String = String::from_utf8_lossy(&stderr)
            .trim()
            .chars()
            .take(300)
            .collect();
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        return Err(fail(if said.is_empty() {
            how
        } else {
            format!("{how}: {said}")
        }));
    }
    if stdout.len() as u64 > MAX_SECRET_FILE {
        return Err(fail(format!("printed more than {MAX_SECRET_FILE} bytes")));
    }
    let mut value = String::from_utf8(stdout)
        .map_err(|_| fail("printed output that is not UTF-8".to_owned()))?;
    value.truncate(value.trim_end().len());
    if value.trim().is_empty() {
        return Err(fail("printed nothing".to_owned()));
    }
    Ok(Secret::registered(value))
}

fn read_env(
    name: &str,
    var: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Secret, SecretError> {
    let unset = || SecretError::EnvUnset {
        name: name.to_owned(),
        var: var.to_owned(),
    };
    let raw = env(var).ok_or_else(unset)?;
    let value = raw.into_string().map_err(|_| SecretError::EnvNotUtf8 {
        name: name.to_owned(),
        var: var.to_owned(),
    })?;
    if value.trim().is_empty() {
        return Err(unset());
    }
    Ok(Secret::registered(value))
}

fn read_file(name: &str, path: &str, trim: bool) -> Result<Secret, SecretError> {
    let unreadable = |e: std::io::Error| SecretError::FileUnreadable {
        name: name.to_owned(),
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    // One byte over the cap tells "exactly at the cap" from "too large".
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretError::FileTooLarge {
            name: name.to_owned(),
            path: path.to_owned(),
        });
    }
    let mut value = String::from_utf8(bytes).map_err(|_| SecretError::FileNotUtf8 {
        name: name.to_owned(),
        path: path.to_owned(),
    })?;
    if trim {
        value.truncate(value.trim_end().len());
    }
    if value.is_empty() {
        return Err(SecretError::FileEmpty {
            name: name.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(Secret::registered(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "agentd-secrets-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::create_dir_all(&dir);
            Self(dir)
        }

        fn path(&self, name: &str) -> &'static str {
            Box::leak(
                self.0
                    .join(name)
                    .to_string_lossy()
                    .into_owned()
                    .into_boxed_str(),
            )
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: BTreeMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(*v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn value(r: Result<Secret, SecretError>) -> Option<String> {
        r.ok().map(Secret::into_exposed)
    }

    fn err(r: Result<Secret, SecretError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn an_env_source_reads_its_variable_not_the_secret_name() {
        let defs = [SecretDef {
            name: "API",
            source: SecretSource::Env { var: "REAL_VAR" },
        }];
        let env = env_of(&[("REAL_VAR", "s3cret"), ("API", "wrong")]);
        assert_eq!(
            value(resolve_with(&defs, "API", &env)).as_deref(),
            Some("s3cret")
        );
    }

    #[test]
    fn an_undeclared_name_falls_back_to_the_process_environment() {
        let env = env_of(&[("TOKEN", "from-env")]);
        assert_eq!(
            value(resolve_with(&[], "TOKEN", &env)).as_deref(),
            Some("from-env")
        );
        assert_eq!(
            err(resolve_with(&[], "MISSING", &env)),
            "secret `MISSING` is not declared in [[secrets]] and environment variable `MISSING` is not set"
        );
    }

    #[test]
    fn the_real_process_environment_is_the_fallback() {
        // Cargo sets CARGO_PKG_NAME for the test process.
        assert_eq!(
            value(resolve(&[], "CARGO_PKG_NAME")).as_deref(),
            Some("agentd-runtime")
        );
    }

    #[test]
    fn blank_env_values_count_as_unset() {
        let defs = [SecretDef {
            name: "K",
            source: SecretSource::Env { var: "V" },
        }];
        let env = env_of(&[("V", "  \n")]);
        assert_eq!(
            err(resolve_with(&defs, "K", &env)),
            "secret `K`: environment variable `V` is not set"
        );
    }

    #[test]
    fn a_file_source_is_reread_on_every_use_so_rotation_works() {
        let dir = Scratch::new();
        let path = dir.path("token");
        let defs = [SecretDef {
            name: "T",
            source: SecretSource::File { path, trim: true },
        }];
        let env = env_of(&[]);
        std::fs::write(path, "first\n").ok();
        assert_eq!(
            value(resolve_with(&defs, "T", &env)).as_deref(),
            Some("first")
        );
        std::fs::write(path, "second \t\n").ok();
        assert_eq!(
            value(resolve_with(&defs, "T", &env)).as_deref(),
            Some("second")
        );
    }

    #[test]
    fn trim_false_keeps_trailing_whitespace() {
        let dir = Scratch::new();
        let path = dir.path("raw");
        std::fs::write(path, "abc \n").ok();
        let defs = [SecretDef {
            name: "R",
            source: SecretSource::File { path, trim: false },
        }];
        assert_eq!(
            value(resolve_with(&defs, "R", env_of(&[]))).as_deref(),
            Some("abc \n")
        );
    }

    #[test]
    fn file_errors_name_the_file_never_the_content() {
        let dir = Scratch::new();
        let (empty, big, bin, missing) = (
            dir.path("empty"),
            dir.path("big"),
            dir.path("bin"),
            dir.path("missing"),
        );
        std::fs::write(empty, " \n").ok();
        std::fs::write(big, "x".repeat(MAX_SECRET_FILE as usize + 1)).ok();
        std::fs::write(bin, [0xff, 0xfe, b'c', b'a', b'n']).ok();
        let def = |path| SecretDef {
            name: "S",
            source: SecretSource::File { path, trim: true },
        };
        let env = env_of(&[]);
        assert_eq!(
            err(resolve_with(&[def(empty)], "S", &env)),
            format!("secret `S`: `{empty}` is empty")
        );
        assert_eq!(
            err(resolve_with(&[def(big)], "S", &env)),
            format!("secret `S`: `{big}` is larger than 65536 bytes")
        );
        assert_eq!(
            err(resolve_with(&[def(bin)], "S", &env)),
            format!("secret `S`: `{bin}` is not valid UTF-8")
        );
        let text = err(resolve_with(&[def(missing)], "S", &env));
        assert!(
            text.starts_with(&format!("secret `S`: cannot read `{missing}`: ")),
            "{text}"
        );
    }

    #[test]
    fn a_file_exactly_at_the_cap_is_accepted() {
        let dir = Scratch::new();
        let path = dir.path("cap");
        std::fs::write(path, "y".repeat(MAX_SECRET_FILE as usize)).ok();
        let defs = [SecretDef {
            name: "C",
            source: SecretSource::File { path, trim: true },
        }];
        assert_eq!(
            value(resolve_with(&defs, "C", env_of(&[]))).map(|v| v.len()),
            Some(MAX_SECRET_FILE as usize)
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret("canary-7f3a".to_owned());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(s)), "Some(Secret(***))");
    }

    #[test]
    fn probe_reports_the_first_entry_that_fails() {
        let dir = Scratch::new();
        let ok = dir.path("ok");
        std::fs::write(ok, "v").ok();
        let defs = [
            SecretDef {
                name: "A",
                source: SecretSource::File {
                    path: ok,
                    trim: true,
                },
            },
            SecretDef {
                name: "B",
                source: SecretSource::File {
                    path: dir.path("nope"),
                    trim: true,
                },
            },
        ];
        assert!(probe(&defs[..1]).is_ok());
        assert_eq!(
            probe(&defs).err().map(|e| e.secret_name().to_owned()),
            Some("B".to_owned())
        );
    }
    #[cfg(feature = "secrets-exec")]
    fn command(argv: &'static [&'static str]) -> SecretDef {
        SecretDef {
            name: "cmd",
            source: SecretSource::Command { argv },
        }
    }

    #[cfg(feature = "secrets-exec")]
    #[test]
    fn a_command_source_runs_once_and_is_cached_until_refresh() {
        let dir = Scratch::new();
        let counter = dir.path("count");
        let script: &'static str = Box::leak(
            format!("echo run >> {counter}; printf 'tok-%s\\n\\n' $(wc -l < {counter})")
                .into_boxed_str(),
        );
        let argv: &'static [&'static str] = Box::leak(Box::new(["/bin/sh", "-c", script]));
        let defs = [command(argv)];
        let env = env_of(&[]);
        assert_eq!(
            value(resolve_with(&defs, "cmd", &env)).as_deref(),
            Some("tok-1")
        );
        assert_eq!(
            value(resolve_with(&defs, "cmd", &env)).as_deref(),
            Some("tok-1")
        );
        assert!(refresh(&defs).is_ok());
        assert_eq!(
            value(resolve_with(&defs, "cmd", &env)).as_deref(),
            Some("tok-2")
        );
        let runs = std::fs::read_to_string(counter).unwrap_or_default();
        assert_eq!(runs.lines().count(), 2);
    }

    #[cfg(feature = "secrets-exec")]
    #[test]
    fn command_failures_are_clear_and_never_cached() {
        let env = env_of(&[]);
        assert_eq!(
            err(resolve_with(
                &[command(&["/bin/sh", "-c", "echo nope >&2; exit 3"])],
                "cmd",
                &env
            )),
            "secret `cmd`: command `/bin/sh` exited with status 3: nope"
        );
        assert_eq!(
            err(resolve_with(
                &[command(&["/bin/sh", "-c", "printf '  \\n'"])],
                "cmd",
                &env
            )),
            "secret `cmd`: command `/bin/sh` printed nothing"
        );
        let missing = err(resolve_with(
            &[command(&["/nonexistent/agentd-pass"])],
            "cmd",
            &env,
        ));
        assert!(
            missing.starts_with(
                "secret `cmd`: command `/nonexistent/agentd-pass` cannot be started: "
            ),
            "{missing}"
        );
        assert_eq!(
            err(resolve_with(
                &[command(&["/bin/sh", "-c", "printf '\\377'"])],
                "cmd",
                &env
            )),
            "secret `cmd`: command `/bin/sh` printed output that is not UTF-8"
        );
    }

    #[cfg(feature = "secrets-exec")]
    #[test]
    fn a_command_that_hangs_is_killed_at_the_timeout() {
        let started = std::time::Instant::now();
        let e = run_command("slow", &["/bin/sleep", "30"], Duration::from_millis(200))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("secret `slow`: command `/bin/sleep` did not finish within 200ms and was killed")
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[cfg(not(feature = "secrets-oauth2"))]
    #[test]
    fn a_source_without_its_feature_is_refused_by_name() {
        let defs = [SecretDef {
            name: "tok",
            source: SecretSource::OAuth2 {
                token_url: "http://127.0.0.1:1/t",
                client_id_env: "ID",
                client_secret_env: "SECRET",
                scopes: &[],
                extra_params: &[],
                auth_style: AuthStyle::Body,
                skew_secs: 60,
            },
        }];
        assert_eq!(
            err(resolve_with(&defs, "tok", env_of(&[]))),
            "secret `tok`: source `oauth2` is not compiled into this binary (feature `secrets-oauth2`)"
        );
    }
}
