//! Idempotency keys (docs/operations.md "Idempotency keys"): the on-disk store of
//! replayable responses under `<state-dir>/idempotency/`.
//!
//! Owns key resolution from a request ([`resolve_key`]), the store layout
//! (`<first 48 chars of the key, non-alphanumerics as _>-<16-hex FNV-1a-64 of
//! "METHOD|path|key">.json` plus a `.pending` marker created with
//! `create_new`), claims ([`IdempotencyStore::claim`]: replay, in flight, or
//! claimed), TTL expiry and take-over of markers left by a crash.
//!
//! Store I/O is best-effort, as in dialect 1: a store that cannot be read or
//! written never fails a request, it only loses the replay. Files are
//! written atomically (temporary file + rename) with mode 0600, because
//! stored bodies can hold request data. The store never runs workflows and
//! never builds HTTP responses.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::workflow::serve::IdempotencyKey;

/// Longest stored response body read back (a replay larger than this is
/// treated as absent rather than read into memory).
const MAX_STORED_BYTES: u64 = 8 * 1024 * 1024;

/// How many characters of the key appear in the file name.
const NAME_CHARS: usize = 48;

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body, verbatim.
    pub body: String,
    /// When it was stored (UNIX seconds).
    pub stored_unix: u64,
}

/// The outcome of [`IdempotencyStore::claim`].
#[derive(Debug)]
pub enum Claim {
    /// A stored response within its TTL: answer it again.
    Replay(StoredResponse),
    /// Another delivery with this key is running now (409).
    InFlight,
    /// This request owns the key: run it, then [`ClaimGuard::store`] the
    /// response or drop the guard to release the key.
    Claimed(ClaimGuard),
}

/// The on-disk store.
#[derive(Debug)]
pub struct IdempotencyStore {
    dir: PathBuf,
    /// A `.pending` marker older than this was left by a crash and is taken
    /// over: `max(2 × run timeout, 60 s)`.
    stale_after: Duration,
}

impl IdempotencyStore {
    /// Open (and create) `<state_dir>/idempotency/`.
    ///
    /// # Errors
    ///
    /// The directory cannot be created.
    pub fn open(state_dir: &Path, run_timeout: Duration) -> io::Result<Self> {
        let dir = state_dir.join("idempotency");
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            stale_after: run_timeout.saturating_mul(2).max(Duration::from_secs(60)),
        })
    }

    /// The store directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Claim `key` for a request to `method path` at `now`.
    #[must_use]
    pub fn claim(
        &self,
        method: &str,
        path: &str,
        key: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Claim {
        let stem = file_stem(method, path, key);
        let stored = self.dir.join(format!("{stem}.json"));
        let marker = self.dir.join(format!("{stem}.pending"));
        if let Some(hit) = self.replayable(&stored, ttl, now) {
            return Claim::Replay(hit);
        }
        match create_marker(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !self.is_stale(&marker, now) {
                    return Claim::InFlight;
                }
                // Left by a crash: take it over. Whoever re-creates it first
                // owns the key; the loser sees a live marker.
                let _ = fs::remove_file(&marker);
                if create_marker(&marker).is_err() {
                    return Claim::InFlight;
                }
            }
            // Best effort: an unwritable store runs the request unguarded.
            Err(_) => {
                return Claim::Claimed(ClaimGuard {
                    stored,
                    marker: None,
                });
            }
        }
        // A delivery that finished between our first look and the marker:
        // its response is there now, and it must not run twice.
        if let Some(hit) = self.replayable(&stored, ttl, now) {
            let _ = fs::remove_file(&marker);
            return Claim::Replay(hit);
        }
        Claim::Claimed(ClaimGuard {
            stored,
            marker: Some(marker),
        })
    }

    /// The stored response at `path` if it is within `ttl`; an expired or
    /// unreadable one is deleted.
    fn replayable(&self, path: &Path, ttl: Duration, now: SystemTime) -> Option<StoredResponse> {
        let meta = fs::metadata(path).ok()?;
        if meta.len() > MAX_STORED_BYTES {
            return None;
        }
        let parsed = fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<StoredResponse>(&bytes).ok());
        let Some(hit) = parsed else {
            let _ = fs::remove_file(path);
            return None;
        };
        let age = unix_secs(now).saturating_sub(hit.stored_unix);
        if age > ttl.as_secs() {
            let _ = fs::remove_file(path);
            return None;
        }
        Some(hit)
    }

    /// Delete what no claim will ever read again: entries older than
    /// `keep` (the longest TTL of any route), `.pending` markers left by a
    /// crash and temporary files of an interrupted write (both once older
    /// than the stale age). Ages come from modification times (entries
    /// are written once, atomically). Best effort; returns the number of
    /// files removed.
    pub fn sweep(&self, keep: Duration, now: SystemTime) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let limit = if name.ends_with(".json") {
                keep
            } else if name.ends_with(".pending") || name.contains(".tmp-") {
                self.stale_after
            } else {
                continue;
            };
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| now.duration_since(at).ok());
            if age.is_some_and(|age| age > limit) && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn is_stale(&self, marker: &Path, now: SystemTime) -> bool {
        fs::metadata(marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age > self.stale_after)
    }
}

/// Ownership of one key; dropping it releases the key without storing.
#[derive(Debug)]
pub struct ClaimGuard {
    stored: PathBuf,
    /// `None` when the marker could not be written (best effort).
    marker: Option<PathBuf>,
}

impl ClaimGuard {
    /// Keep `response` for replay, then release the key. Failures are
    /// swallowed (best effort): the next delivery simply runs again.
    pub fn store(self, status: u16, content_type: &str, body: &str, now: SystemTime) {
        let record = StoredResponse {
            status,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
            stored_unix: unix_secs(now),
        };
        if let Ok(bytes) = serde_json::to_vec(&record) {
            let _ = write_atomically(&self.stored, &bytes);
        }
        // `Drop` removes the marker.
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(marker) = self.marker.take() {
            let _ = fs::remove_file(marker);
        }
    }
}

/// Why a request's idempotency key could not be resolved (400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("idempotency key `{0}` did not resolve to a scalar in the request payload")]
pub struct KeyError(pub String);

/// The key of a request: the hex SHA-256 of `body`, or the scalar at the
/// route's path in `payload` (a non-empty string, a number or a bool).
///
/// # Errors
///
/// [`KeyError`] when the path is missing or not a usable scalar.
pub fn resolve_key(key: IdempotencyKey, body: &[u8], payload: &Value) -> Result<String, KeyError> {
    let segments = match key {
        IdempotencyKey::BodySha256 => return Ok(hex(&Sha256::digest(body))),
        IdempotencyKey::Path(segments) => segments,
    };
    let mut cur = payload;
    for seg in segments {
        cur = crate::template::step_into(cur, seg).ok_or_else(|| KeyError(segments.join(".")))?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(KeyError(segments.join("."))),
    }
}

/// `<first 48 chars, non-alphanumerics as _>-<16-hex FNV-1a-64 of "M|p|k">`.
#[must_use]
pub fn file_stem(method: &str, path: &str, key: &str) -> String {
    let readable: String = key
        .chars()
        .take(NAME_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let hash = fnv1a64(format!("{method}|{path}|{key}").as_bytes());
    format!("{readable}-{hash:016x}")
}

/// FNV-1a, 64 bit: the dialect's file-name hash (not a security boundary:
/// the full key is compared by living in the name's hash only, as in
/// dialect 1, so two keys must collide in 64 bits to share an entry).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn create_marker(path: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    restrict(&mut options);
    options.open(path).map(drop)
}

/// Write `bytes` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees a torn file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        restrict(&mut options);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn restrict(options: &mut fs::OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt as _;
    options.mode(0o600);
}

#[cfg(not(unix))]
fn restrict(_options: &mut fs::OpenOptions) {}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "agentd-idem-{name}-{}-{}",
            std::process::id(),
            fnv1a64(format!("{:?}", SystemTime::now()).as_bytes())
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn store(name: &str) -> (IdempotencyStore, PathBuf) {
        let dir = temp_dir(name);
        let store = IdempotencyStore::open(&dir, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("open the store in {}: {e}", dir.display()));
        (store, dir)
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn the_first_delivery_claims_and_a_second_replays() {
        let (store, dir) = store("replay");
        let now = SystemTime::now();
        let Claim::Claimed(guard) = store.claim("POST", "/o", "k1", DAY, now) else {
            panic!("the first delivery must claim the key");
        };
        guard.store(201, "text/plain", "made", now);
        match store.claim("POST", "/o", "k1", DAY, now) {
            Claim::Replay(hit) => {
                assert_eq!((hit.status, hit.content_type.as_str()), (201, "text/plain"));
                assert_eq!(hit.body, "made");
            }
            other => panic!("expected a replay, got {other:?}"),
        }
        // Another route (or method) with the same key is a different entry.
        assert!(matches!(
            store.claim("POST", "/other", "k1", DAY, now),
            Claim::Claimed(_)
        ));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_concurrent_duplicate_is_in_flight_until_the_claim_is_released() {
        let (store, dir) = store("inflight");
        let now = SystemTime::now();
        let first = store.claim("POST", "/o", "k", DAY, now);
        assert!(matches!(first, Claim::Claimed(_)));
        assert!(matches!(
            store.claim("POST", "/o", "k", DAY, now),
            Claim::InFlight
        ));
        // A failed run releases without storing: the key is retryable.
        drop(first);
        assert!(matches!(
            store.claim("POST", "/o", "k", DAY, now),
            Claim::Claimed(_)
        ));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn an_expired_entry_is_deleted_and_the_key_runs_again() {
        let (store, dir) = store("expired");
        let then = SystemTime::now();
        if let Claim::Claimed(guard) = store.claim("POST", "/o", "k", DAY, then) {
            guard.store(200, "application/json", "{}", then);
        }
        let later = then + Duration::from_secs(11);
        assert!(matches!(
            store.claim("POST", "/o", "k", Duration::from_secs(10), later),
            Claim::Claimed(_)
        ));
        // Within the TTL (age == TTL still counts) it replays.
        if let Claim::Claimed(guard) = store.claim("POST", "/x", "k", DAY, then) {
            guard.store(200, "application/json", "{}", then);
        }
        assert!(matches!(
            store.claim("POST", "/x", "k", Duration::from_secs(11), later),
            Claim::Replay(_)
        ));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_sweep_removes_expired_entries_and_crash_leftovers_only() {
        let (store, _) = store("sweep");
        let dir = store.dir().to_path_buf();
        let t0 = SystemTime::now();
        let Claim::Claimed(guard) = store.claim("POST", "/o", "old", DAY, t0) else {
            panic!("first delivery claims");
        };
        guard.store(201, "application/json", "{}", t0);
        let Claim::Claimed(live) = store.claim("POST", "/o", "running", DAY, t0) else {
            panic!("first delivery claims");
        };
        std::fs::write(dir.join("x.json.tmp-1-2"), b"torn").expect("temp file");
        std::fs::write(dir.join("notes.txt"), b"not ours").expect("other file");
        // Nothing is old yet.
        assert_eq!(store.sweep(Duration::from_secs(3600), t0), 0);
        // Two hours on: the entry is past a one-hour keep, the marker and
        // the temp file past the stale age; the unrelated file stays.
        let later = t0 + Duration::from_secs(7200);
        assert_eq!(store.sweep(Duration::from_secs(3600), later), 3);
        let left: Vec<String> = std::fs::read_dir(&dir)
            .expect("read the store")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["notes.txt"]);
        drop(live);
    }

    #[test]
    fn a_marker_left_by_a_crash_is_taken_over_once_stale() {
        let (store, dir) = store("stale");
        let now = SystemTime::now();
        let Claim::Claimed(guard) = store.claim("POST", "/o", "k", DAY, now) else {
            panic!("claim");
        };
        // Simulate a crash: the marker stays behind.
        std::mem::forget(guard);
        assert!(matches!(
            store.claim("POST", "/o", "k", DAY, now),
            Claim::InFlight
        ));
        // 60 s is the floor of the stale age.
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            store.claim("POST", "/o", "k", DAY, later),
            Claim::Claimed(_)
        ));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_corrupt_entry_is_dropped_not_replayed() {
        let (store, dir) = store("corrupt");
        let stem = file_stem("POST", "/o", "k");
        let path = store.dir().join(format!("{stem}.json"));
        assert!(fs::write(&path, b"{not json").is_ok());
        assert!(matches!(
            store.claim("POST", "/o", "k", DAY, SystemTime::now()),
            Claim::Claimed(_)
        ));
        assert!(!path.exists(), "the corrupt entry is removed");
        let _ = fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[test]
    fn stored_responses_are_private_and_no_temporary_files_remain() {
        use std::os::unix::fs::PermissionsExt as _;
        let (store, dir) = store("mode");
        let now = SystemTime::now();
        if let Claim::Claimed(guard) = store.claim("POST", "/o", "secret-ish", DAY, now) {
            guard.store(200, "application/json", "{\"card\":\"x\"}", now);
        }
        let names: Vec<String> = fs::read_dir(store.dir())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names.len(), 1, "only the stored entry remains: {names:?}");
        assert!(names[0].ends_with(".json"), "{names:?}");
        let mode = fs::metadata(store.dir().join(&names[0]))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn file_names_keep_48_readable_characters_and_a_hash() {
        let stem = file_stem("POST", "/orders", "order 42/ä");
        assert!(stem.starts_with("order_42__-"), "{stem}");
        assert_eq!(stem.len(), "order_42__-".len() + 16);
        let long = "x".repeat(100);
        assert_eq!(file_stem("POST", "/o", &long).len(), 48 + 1 + 16);
        assert_ne!(file_stem("POST", "/a", "k"), file_stem("POST", "/b", "k"));
        // FNV-1a-64 test vector.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn keys_resolve_from_scalars_or_the_body_hash() {
        let payload =
            json!({"order": {"id": 42, "ref": "A-1", "ok": true, "empty": "", "list": [1]}});
        let path = |p: &'static [&'static str]| IdempotencyKey::Path(p);
        assert_eq!(
            resolve_key(path(&["order", "id"]), b"", &payload),
            Ok("42".into())
        );
        assert_eq!(
            resolve_key(path(&["order", "ref"]), b"", &payload),
            Ok("A-1".into())
        );
        assert_eq!(
            resolve_key(path(&["order", "ok"]), b"", &payload),
            Ok("true".into())
        );
        assert_eq!(
            resolve_key(path(&["order", "list", "0"]), b"", &payload),
            Ok("1".into())
        );
        for bad in [
            &["order", "empty"][..],
            &["order", "list"],
            &["nope"],
            &["order"],
        ] {
            let key = IdempotencyKey::Path(Box::leak(bad.to_vec().into_boxed_slice()));
            assert!(resolve_key(key, b"", &payload).is_err(), "{bad:?}");
        }
        assert_eq!(
            resolve_key(IdempotencyKey::BodySha256, b"abc", &Value::Null),
            Ok("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into())
        );
    }
}
