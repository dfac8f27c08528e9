//! Unit tests of secret resolution, its sources, caching and errors.

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
        missing.starts_with("secret `cmd`: command `/nonexistent/agentd-pass` cannot be started: "),
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
