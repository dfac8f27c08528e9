//! `[[secrets]]`: the one front door for secret values (spec/dialect-ops.md
//! §11).
//!
//! Owns the baked secret *definitions* ([`SecretDef`]: a name and where the
//! value lives, never the value), resolution ([`resolve`]: the `[[secrets]]`
//! entry of that name first, then the process environment variable of that
//! name), the start-up probe ([`probe`]) and [`Secret`], the value wrapper.
//!
//! Sources are read on **every** use, never cached: an `env` source reads
//! its variable again, a `file` source re-reads its file, so rotating a
//! secret needs no restart. Files are size-capped ([`MAX_SECRET_FILE`]) and
//! must be UTF-8.
//!
//! Security posture: a value never appears in an error, a log line, an
//! outcome or a trace. Errors name the secret, its variable or its file,
//! never its content; [`Secret`]'s `Debug` prints `***` and it implements
//! neither `Display` nor `Serialize`, so it cannot be formatted or stored
//! by accident. Callers take the value out with [`Secret::expose`] at the
//! last moment (to put it on the wire). This module must never log, cache
//! values or fall back to anything but the process environment.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;

/// Largest secret file read (64 KiB): secrets are tokens and keys, and a
/// path pointing at something huge must fail, not exhaust memory.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A baked `[[secrets]]` entry (generated code declares these as
/// [`crate::Workflow::SECRETS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretDef {
    /// The name consumers use (`{{secret:NAME}}`, `api_key_env`, ...).
    pub name: &'static str,
    /// Where the value lives.
    pub source: SecretSource,
}

/// Where a secret's value is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// `source = "env"`: the environment variable `var`, read on every use.
    Env {
        /// The variable holding the value.
        var: &'static str,
    },
    /// `source = "file"`: the file at `path`, re-read on every use.
    File {
        /// The file holding the value.
        path: &'static str,
        /// Strip trailing whitespace (default `true`).
        trim: bool,
    },
}

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
            | Self::FileEmpty { name, .. } => name,
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
        resolve_def(def, &|var| std::env::var_os(var))?;
    }
    Ok(())
}

/// [`resolve`] against the run's registry ([`crate::Workflow::SECRETS`] of
/// the top-level workflow): what node functions call.
///
/// # Errors
///
/// As [`resolve`].
pub fn resolve_secret(cx: &crate::Cx<'_>, name: &str) -> Result<Secret, SecretError> {
    resolve(cx.secrets(), name)
}

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
        return resolve_def(def, &env);
    }
    match read_env(name, name, &env) {
        Err(SecretError::EnvUnset { name, .. }) => Err(SecretError::Undeclared { name }),
        other => other,
    }
}

fn resolve_def(
    def: &SecretDef,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Secret, SecretError> {
    match def.source {
        SecretSource::Env { var } => read_env(def.name, var, env),
        SecretSource::File { path, trim } => read_file(def.name, path, trim),
    }
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
}
