//! Reading one `[[secrets]]` source: `env` and `file` (on every use),
//! `command` (feature `secrets-exec`: the program's stdout) and `oauth2`
//! (feature `secrets-oauth2`: a client credentials token through the
//! definition's cache entry). Each returns a [`Secret`] or a [`SecretError`]
//! naming the secret and its source, never a value. Caching and the choice of
//! source are the parent module's.

use std::ffi::OsString;
use std::io::Read;
#[cfg(feature = "secrets-exec")]
use std::time::Duration;

#[cfg(feature = "secrets-oauth2")]
use super::{AuthStyle, Cache, SecretDef, SecretSource, outbound_policy, resolve_def};
use super::{MAX_SECRET_FILE, Secret, SecretError};

/// An `oauth2` source: the cached token while it is fresh, else a new one
/// (audited as `secrets.oauth2_token_fetched`). The client id and secret go
/// through the front door, except that they may not come from another
/// `oauth2` source (a loop the build refuses too).
#[cfg(feature = "secrets-oauth2")]
pub(super) fn oauth2_token(
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
pub(super) fn run_command(
    name: &str,
    argv: &[&str],
    timeout: Duration,
) -> Result<Secret, SecretError> {
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

pub(super) fn read_env(
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

pub(super) fn read_file(name: &str, path: &str, trim: bool) -> Result<Secret, SecretError> {
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
