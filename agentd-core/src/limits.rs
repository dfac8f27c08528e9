//! Reading a file that must be small (keys, signatures, PEM and JWKS files,
//! CA bundles) without trusting its size: at most one byte past the limit is
//! read from the open file, so a file that grows, a device or a FIFO fed
//! forever cannot exhaust memory. Likewise pretty JSON is written into a
//! buffer that stops at a limit ([`pretty_json`]).

use std::io::Read;
use std::path::Path;

/// All of the file at `path`, if it holds at most `limit` bytes.
///
/// # Errors
///
/// The open or read error, or an error saying the file is larger than `limit`.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// The variables naming the CA bundle outgoing TLS trusts instead of Mozilla's
/// roots, in order of precedence (`http_request`, the LLM providers, OTLP).
pub const CA_FILE_VARS: [&str; 2] = ["AGENTD_HTTP_CA_FILE", "SSL_CERT_FILE"];

/// Largest CA bundle read.
pub const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// A CA bundle named by one of [`CA_FILE_VARS`].
#[derive(Debug)]
pub struct CaBundle {
    /// Where it came from, for messages: ``AGENTD_HTTP_CA_FILE `/etc/roots.pem` ``.
    pub source: String,
    /// Its bytes (PEM, unchecked).
    pub pem: Vec<u8>,
}

/// The bundle the first set (non-empty) variable of [`CA_FILE_VARS`] names, or
/// `None` when neither is set.
///
/// # Errors
///
/// A message naming the variable and the file when it cannot be read or is
/// larger than [`MAX_CA_FILE`]: a misconfigured trust store must never fall
/// back to other roots.
pub fn ca_bundle_from_env() -> Result<Option<CaBundle>, String> {
    let named = CA_FILE_VARS.into_iter().find_map(|var| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(|v| (var, std::path::PathBuf::from(v)))
    });
    let Some((var, path)) = named else {
        return Ok(None);
    };
    let source = format!("{var} `{}`", path.display());
    match read_capped(&path, MAX_CA_FILE) {
        Ok(pem) => Ok(Some(CaBundle { source, pem })),
        Err(e) => Err(format!("{source}: {e}")),
    }
}

/// Pretty JSON (two-space indent) of `value` if it takes at most `limit`
/// bytes, else `Ok(None)`. Serialising stops at the limit, so a value whose
/// pretty form balloons (deep nesting indents every line) cannot exhaust
/// memory. Every pretty JSON the runtime writes goes through here, so the
/// serializer is compiled for one writer only.
///
/// # Errors
///
/// A value serde_json cannot serialise (a map with non-string keys).
pub fn pretty_json<T: serde::Serialize + ?Sized>(
    value: &T,
    limit: u64,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    // Room for a typical outcome up front: serde_json writes it in many small
    // pieces, and growing the buffer from empty costs a reallocation every few.
    let mut out = Capped {
        bytes: Vec::with_capacity(usize::try_from(limit.min(1024)).unwrap_or(1024)),
        limit,
        over: false,
    };
    match serde_json::to_writer_pretty(&mut out, value) {
        Ok(()) => Ok(Some(out.bytes)),
        Err(_) if out.over => Ok(None),
        Err(e) => Err(e),
    }
}

/// A byte buffer that refuses to grow past `limit`.
struct Capped {
    bytes: Vec<u8>,
    limit: u64,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = u64::try_from(self.bytes.len().saturating_add(buf.len())).unwrap_or(u64::MAX);
        if len > self.limit {
            self.over = true;
            return Err(std::io::Error::other("over the size limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // One call per piece instead of `write`'s loop: every write is whole.
        self.write(buf).map(|_| ())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`read_capped`] as UTF-8 text.
///
/// # Errors
///
/// As [`read_capped`], or `InvalidData` when the bytes are not UTF-8.
pub fn read_capped_string(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8"))
}

/// `url` with the password of its user-info shown as `***`, for messages and
/// logs (`--state-url redis://:secret@host/0` → `redis://:***@host/0`).
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split_once(':').map_or("", |(n, _)| n);
            format!("{scheme}://{name}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_shown_urls() {
        assert_eq!(
            redact_url("redis://:hunter2@10.0.0.1:6379/2"),
            "redis://:***@10.0.0.1:6379/2"
        );
        assert_eq!(
            redact_url("rediss://app:hunter2@cache.internal/0"),
            "rediss://app:***@cache.internal/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn files_up_to_the_limit_are_read_and_larger_ones_refused() {
        let dir = std::env::temp_dir().join(format!("agentd-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("f");
        std::fs::write(&file, "12345").expect("write");
        assert_eq!(read_capped(&file, 5).ok().as_deref(), Some(&b"12345"[..]));
        assert_eq!(read_capped_string(&file, 5).ok().as_deref(), Some("12345"));
        let refused = read_capped(&file, 4).err().map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some("larger than 4 bytes"));
        std::fs::write(&file, [0xff_u8, 0xfe]).expect("write");
        let refused = read_capped_string(&file, 5).err().map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some("not valid UTF-8"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pretty_json_stops_at_its_limit() {
        let value = serde_json::json!({"a": [1, 2]});
        let text = "{\n  \"a\": [\n    1,\n    2\n  ]\n}";
        let fits = pretty_json(&value, text.len() as u64).ok().flatten();
        assert_eq!(fits.as_deref(), Some(text.as_bytes()));
        let over = pretty_json(&value, text.len() as u64 - 1).ok();
        assert_eq!(over, Some(None));
    }
}
