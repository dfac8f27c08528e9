//! What the remote providers share (feature `llm-remote`): the HTTP agent
//! (ureq with rustls; 10 s connect timeout, the run timeout overall,
//! redirects never followed, the roots of [`crate::tls_roots`]), the JSON `POST` with a capped reply body, and
//! API-key resolution through the secrets front door.
//!
//! Keys are resolved at every call (a rotated key is picked up without a
//! restart) and never appear in errors; a reply body is read up to
//! [`MAX_BODY`] and never trusted to be JSON.

use std::time::Duration;

use serde_json::Value;

use super::ChatReply;
use crate::error::Error;

/// Largest reply body accepted from a provider.
pub const MAX_BODY: u64 = 4 * 1024 * 1024;

pub use super::KeyResolver;
pub use crate::tls_roots::Roots;

/// The default [`KeyResolver`]: the process environment (unset or blank is
/// an error), as the secrets front door does for an undeclared name.
///
/// # Errors
///
/// A message naming the variable.
pub fn env_key(name: &str) -> Result<String, String> {
    crate::secrets::resolve(&[], name)
        .map(crate::secrets::Secret::into_exposed)
        .map_err(|e| e.to_string())
}

/// Resolve `name` (when the definition names a key) with `resolve`.
///
/// # Errors
///
/// [`Error::Intelligence`] naming the key's secret.
pub fn api_key(resolve: &KeyResolver, name: Option<&str>) -> Result<Option<String>, Error> {
    match name {
        None => Ok(None),
        Some(name) => resolve
            .resolve(name)
            .map(|k| Some(k.trim().to_owned()))
            .map_err(|why| Error::Intelligence(format!("API key `{name}`: {why}"))),
    }
}

/// An agent with the providers' timeouts, trusting `roots` for https
/// ([`Roots::from_env`]: `AGENTD_HTTP_CA_FILE`, else `SSL_CERT_FILE`, else
/// Mozilla's roots).
#[must_use]
pub fn agent(timeout: Duration, roots: &Roots) -> ureq::Agent {
    let timeout = timeout.max(Duration::from_millis(1));
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_secs(10).min(timeout)))
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(roots.tls_config())
        .build()
        .into()
}

/// `base` without trailing slashes or a trailing `suffix` (so both
/// `https://host` and `https://host/v1` work as a base URL).
#[must_use]
pub fn trim_base<'a>(base: &'a str, suffix: &str) -> &'a str {
    let base = base.trim_end_matches('/');
    base.strip_suffix(suffix).unwrap_or(base)
}

/// `POST url` with a JSON body and `headers`; the status and the body (up
/// to [`MAX_BODY`]).
///
/// # Errors
///
/// [`Error::Intelligence`] for connection, TLS, timeout and read failures
/// and bodies over the cap.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<(u16, Vec<u8>), Error> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| Error::Intelligence(format!("cannot encode the request: {e}")))?;
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut resp = request
        .send(&bytes[..])
        .map_err(|e| Error::Intelligence(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| Error::Intelligence(format!("reading the reply of {url}: {e}")))?;
    Ok((status, body))
}

/// [`post_json`], then [`status_error`] unless the status is 2xx: the reply
/// body of a successful call.
///
/// # Errors
///
/// Those of [`post_json`], and [`status_error`]'s for a non-2xx status.
pub fn post_json_ok(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<Vec<u8>, Error> {
    let (status, reply) = post_json(agent, url, headers, body)?;
    if !(200..300).contains(&status) {
        return Err(status_error(url, status, &reply));
    }
    Ok(reply)
}

/// A [`ChatReply`] of the reply's text parts joined, with the token counts
/// read from `value` at `{usage}/{prompt}` and `{usage}/{completion}` (JSON
/// pointers; 0 when a provider leaves them out).
#[must_use]
pub fn chat_reply(
    value: &Value,
    texts: &[&str],
    usage: &str,
    [prompt, completion]: [&str; 2],
) -> ChatReply {
    let tokens = |key: &str| {
        value
            .pointer(&format!("{usage}/{key}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    ChatReply {
        content: texts.concat(),
        prompt_tokens: tokens(prompt),
        completion_tokens: tokens(completion),
    }
}

/// The error for a non-2xx reply: the provider's own message when the body
/// carries one at `error.message`, else the first 200 characters.
#[must_use]
pub fn status_error(url: &str, status: u16, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    Error::Intelligence(format!("POST {url} answered status {status}: {message}"))
}

/// Parse a reply body as JSON.
///
/// # Errors
///
/// [`Error::Intelligence`] naming the provider; serde_json's recursion limit
/// turns hostile nesting into this error too.
pub fn parse_body(provider: &str, body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::Intelligence(format!("{provider} reply is not valid JSON: {e}")))
}

/// A one-shot HTTP server on 127.0.0.1 for the provider tests: answers one
/// request with `status` and `body`, and hands back the raw request.
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    pub(crate) fn serve(
        status: u16,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut r = BufReader::new(stream);
            let mut head = String::new();
            let mut len = 0_usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut req_body = vec![0_u8; len];
            let _ = r.read_exact(&mut req_body);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = r.get_mut().write_all(reply.as_bytes());
            head + &String::from_utf8_lossy(&req_body)
        });
        (format!("http://{addr}"), handle)
    }

    /// The request's header value for `name` (case-insensitive).
    pub(crate) fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
        raw.split("\r\n\r\n").next()?.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The request's JSON body.
    pub(crate) fn json_body(raw: &str) -> serde_json::Value {
        serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap_or_default()
    }
}
