//! Fleet mode (feature `fleet`): the [`Store`] shared by every replica of one
//! workflow through Redis (or Valkey), selected at run time by `--state-url`.
//!
//! Owns the connection (the `redis` crate's `ConnectionManager`: one
//! multiplexed connection, reconnected in the background after a failure),
//! the key layout under `agentd:<workflow>:`, and the Lua scripts that make
//! every shared update one atomic step on the server:
//! - idempotency: `idem:<sha256>` holds the recorded response for the route's
//!   TTL, `idem:<sha256>:pending` the claim of the delivery running now (a
//!   random token, expiring after the stale age so a dead replica's claim
//!   lapses). First `SET NX` wins; the others answer 409 or replay.
//! - rate limits: one token bucket per route (`rl:<METHOD> <path>`), refilled
//!   from the server's own clock (`TIME`), so replicas with skewed clocks
//!   still share one rate.
//! - trigger ticks: `tick:<trigger>:<tick>` holds the firing replica's token
//!   for [`LEASE`], renewed while its run goes, then `done` for a day.
//!
//! Every operation has a deadline ([`OP_TIMEOUT`]); an unreachable server,
//! a timeout or a reply of the wrong shape is a [`StoreError`], never a panic
//! or a hang. This module never builds HTTP replies and never runs a workflow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use sha2::{Digest as _, Sha256};

use super::def::RateLimitDef;
use super::idempotency::StoredResponse;
use super::ratelimit::MAX_WAIT;
use super::store::{Claim, Held, Store, StoreError, StoreFuture, TickClaim, TickLease};
use crate::limits::redact_url;

/// Longest wait for any one store operation before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long a tick lease lasts without renewal.
const LEASE: Duration = super::store::TICK_LEASE;

/// How long a finished tick stays marked `done` (other replicas look it up
/// only while its lease could still lapse).
const DONE_KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// Largest recorded response read back from the store (as the local store).
const MAX_STORED_BYTES: usize = 8 * 1024 * 1024;

/// `--state-url` and the password for it.
#[derive(Clone)]
pub struct FleetConfig {
    /// `redis://HOST:PORT/DB`, `rediss://...` or `redis+unix:///path`.
    pub url: String,
    /// The password (from `--state-password-secret`), if any.
    pub password: Option<String>,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The shared store.
pub struct RedisStore {
    conn: ConnectionManager,
    /// `agentd:<workflow>:`.
    prefix: String,
    /// Rate-limit key per route (same index), `None` for unlimited routes.
    rl_keys: Vec<Option<String>>,
    /// Trigger labels (same index), for tick keys.
    trigger_labels: Vec<String>,
    /// Claim tokens: this process's id and a counter, unique in the fleet.
    token_base: String,
    next_token: AtomicU64,
    /// A pending claim lapses after this (a replica died mid-run).
    stale_after: Duration,
    claim_script: Script,
    record_script: Script,
    release_script: Script,
    bucket_script: Script,
    renew_script: Script,
    finish_script: Script,
}

/// Claim: a recorded response replays, else the first `SET NX` wins.
const CLAIM_LUA: &str = r"
local done = redis.call('GET', KEYS[1])
if done then return {1, done} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3}
";

/// Record the response for the TTL and release the claim if still ours.
const RECORD_LUA: &str = r"
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// Delete a key only while it still holds our token.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Token bucket: `{1, 0}` admitted, `{0, wait_us}` refused. Refilled from the
/// server's clock; state kept as decimal text (exact enough, and no float
/// truncation on the way back).
const BUCKET_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then tokens = cap; ts = now end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) / 1000000 * rate)
  ts = now
end
local ok = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
elseif rate > 0 then
  wait = math.ceil((1 - tokens) / rate * 1000000)
else
  wait = -1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', ts))
if rate > 0 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 60000)
end
return {ok, wait}
";

/// Extend a tick lease while it holds our token: 1, else 0.
const RENEW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Mark a tick done (whoever holds it: the run has happened).
const FINISH_LUA: &str = r"
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[1])
return 1
";

impl RedisStore {
    /// Connect lazily to `config.url` for `workflow`'s routes and triggers:
    /// the process starts even while Redis is down, and `/readyz` says so.
    ///
    /// # Errors
    ///
    /// A URL the client cannot use (scheme, host, database), or an unusable
    /// CA bundle for `rediss://`; the message never contains the password.
    pub fn connect(
        config: &FleetConfig,
        workflow: &str,
        def: &super::def::ServeDef,
        run_timeout: Duration,
    ) -> Result<Self, String> {
        let shown = redact_url(&config.url);
        let client = client(config)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| format!("--state-url `{shown}`: {e}"))?;
        let prefix = format!("agentd:{workflow}:");
        let rl_keys = def
            .routes
            .iter()
            .map(|r| {
                r.rate_limit
                    .map(|_| format!("{prefix}rl:{} {}", r.method, r.path))
            })
            .collect();
        let trigger_labels = def
            .triggers
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{}#{i}:{}", t.kind(), t.start()))
            .collect();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            conn,
            prefix,
            rl_keys,
            trigger_labels,
            token_base: format!("{}-{nanos:x}", std::process::id()),
            next_token: AtomicU64::new(0),
            stale_after: run_timeout.saturating_mul(2).max(Duration::from_secs(60)),
            claim_script: Script::new(CLAIM_LUA),
            record_script: Script::new(RECORD_LUA),
            release_script: Script::new(RELEASE_LUA),
            bucket_script: Script::new(BUCKET_LUA),
            renew_script: Script::new(RENEW_LUA),
            finish_script: Script::new(FINISH_LUA),
        })
    }

    fn token(&self) -> String {
        let n = self.next_token.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.token_base)
    }
}

/// The Redis client for `config`: its URL with the password set, and for
/// `rediss://` the runtime's trust (the `AGENTD_HTTP_CA_FILE`, else
/// `SSL_CERT_FILE` bundle exactly, else Mozilla's roots). Shared by the
/// serve-mode store and the checkpoint store (`crate::checkpoint`).
///
/// # Errors
///
/// A URL the client cannot use (scheme, host, database), or an unusable
/// CA bundle for `rediss://`; the message never contains the password.
pub(crate) fn client(config: &FleetConfig) -> Result<redis::Client, String> {
    use redis::IntoConnectionInfo as _;
    let shown = redact_url(&config.url);
    let mut info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("--state-url `{shown}`: {e}"))?;
    if let Some(password) = &config.password {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    if tls {
        // The same trust as every other TLS client of the runtime: the
        // AGENTD_HTTP_CA_FILE (else SSL_CERT_FILE) bundle exactly, else
        // Mozilla's roots; an unusable bundle is an error, never a fall-back.
        let bundle = crate::limits::ca_bundle_from_env()?;
        redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: bundle.map(|b| b.pem),
            },
        )
    } else {
        redis::Client::open(info)
    }
    .map_err(|e| format!("--state-url `{shown}`: {e}"))
}

/// Run `script` with `keys` and `args` within [`OP_TIMEOUT`].
async fn eval(
    conn: &ConnectionManager,
    script: &Script,
    keys: &[&str],
    args: &[String],
) -> Result<Value, StoreError> {
    let mut conn = conn.clone();
    let mut invocation = script.prepare_invoke();
    for k in keys {
        invocation.key(*k);
    }
    for a in args {
        invocation.arg(a.as_str());
    }
    match tokio::time::timeout(OP_TIMEOUT, invocation.invoke_async::<Value>(&mut conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
        Err(_) => Err(StoreError::Timeout(millis(OP_TIMEOUT))),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn bad(op: &'static str, value: &Value) -> StoreError {
    let mut detail = format!("{value:?}");
    if detail.len() > 200 {
        detail.truncate(200);
        detail.push('…');
    }
    StoreError::BadReply { op, detail }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// The hex SHA-256 of `METHOD|path|key`: fixed-length keys whatever the
/// idempotency key's size, and no request text in key names.
fn key_digest(method: &str, path: &str, key: &str) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(format!("{method}|{path}|{key}").as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Read a recorded response; `None` for one that is not ours to replay
/// (too large, not our JSON): it is dropped rather than replayed wrongly.
fn parse_recorded(bytes: &[u8]) -> Option<StoredResponse> {
    if bytes.len() > MAX_STORED_BYTES {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// Ownership of a key in Redis; dropping it releases the claim.
struct RedisHeld {
    conn: ConnectionManager,
    done: String,
    pending: String,
    token: String,
    ttl: Duration,
    record: Script,
    release: Option<Script>,
}

impl Held for RedisHeld {
    fn record(mut self: Box<Self>, response: StoredResponse) -> StoreFuture<'static, ()> {
        // Recorded: nothing left to release on drop.
        self.release = None;
        Box::pin(async move {
            let text = serde_json::to_string(&response).map_err(|e| StoreError::BadReply {
                op: "record",
                detail: e.to_string(),
            })?;
            let ttl = self.ttl.as_secs().max(1);
            let value = eval(
                &self.conn,
                &self.record,
                &[&self.done, &self.pending],
                &[self.token.clone(), text, ttl.to_string()],
            )
            .await?;
            match int(&value) {
                Some(1) => Ok(()),
                _ => Err(bad("record", &value)),
            }
        })
    }
}

impl Drop for RedisHeld {
    fn drop(&mut self) {
        let Some(script) = self.release.take() else {
            return;
        };
        // Released in the background: a failed run must not wait on the
        // store, and a release that never arrives only leaves the claim to
        // lapse at the stale age.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.conn.clone();
        let pending = std::mem::take(&mut self.pending);
        let token = std::mem::take(&mut self.token);
        handle.spawn(async move {
            let _ = eval(&conn, &script, &[&pending], &[token]).await;
        });
    }
}

struct RedisLease {
    conn: ConnectionManager,
    key: String,
    token: String,
    renew: Script,
    finish: Script,
}

impl TickLease for RedisLease {
    fn renew(&self) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let value = eval(
                &self.conn,
                &self.renew,
                &[&self.key],
                &[self.token.clone(), millis(LEASE).to_string()],
            )
            .await?;
            match int(&value) {
                Some(1) => Ok(true),
                Some(0) => Ok(false),
                _ => Err(bad("lease renewal", &value)),
            }
        })
    }

    fn finish(self: Box<Self>) -> StoreFuture<'static, ()> {
        Box::pin(async move {
            let value = eval(
                &self.conn,
                &self.finish,
                &[&self.key],
                &[millis(DONE_KEEP).to_string()],
            )
            .await?;
            match int(&value) {
                Some(1) => Ok(()),
                _ => Err(bad("tick finish", &value)),
            }
        })
    }
}

impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "fleet"
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        key: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let digest = key_digest(method, path, key);
            let done = format!("{}idem:{digest}", self.prefix);
            let pending = format!("{done}:pending");
            let token = self.token();
            let value = eval(
                &self.conn,
                &self.claim_script,
                &[&done, &pending],
                &[token.clone(), millis(self.stale_after).to_string()],
            )
            .await?;
            let Value::Array(items) = &value else {
                return Err(bad("idempotency claim", &value));
            };
            match (items.first().and_then(int), items.get(1)) {
                (Some(1), Some(Value::BulkString(bytes))) => match parse_recorded(bytes) {
                    Some(hit) => Ok(Claim::Replay(hit)),
                    // Not a record we wrote: fail closed (409 until it
                    // expires) rather than run the delivery a second time.
                    None => Err(StoreError::BadReply {
                        op: "idempotency claim",
                        detail: format!("`{done}` does not hold a recorded response"),
                    }),
                },
                (Some(2), None) => Ok(Claim::Claimed(Box::new(RedisHeld {
                    conn: self.conn.clone(),
                    done,
                    pending,
                    token,
                    ttl,
                    record: self.record_script.clone(),
                    release: Some(self.release_script.clone()),
                }))),
                (Some(3), None) => Ok(Claim::InFlight),
                _ => Err(bad("idempotency claim", &value)),
            }
        })
    }

    fn take_token(&self, route: usize, def: RateLimitDef) -> StoreFuture<'_, Result<(), Duration>> {
        Box::pin(async move {
            let Some(Some(key)) = self.rl_keys.get(route) else {
                return Ok(Ok(()));
            };
            let value = eval(
                &self.conn,
                &self.bucket_script,
                &[key],
                &[def.capacity.to_string(), format!("{:.17}", def.per_second)],
            )
            .await?;
            let Value::Array(items) = &value else {
                return Err(bad("rate limit", &value));
            };
            match (items.first().and_then(int), items.get(1).and_then(int)) {
                (Some(1), Some(_)) => Ok(Ok(())),
                (Some(0), Some(wait_us)) => {
                    let wait = u64::try_from(wait_us)
                        .map_or(MAX_WAIT, Duration::from_micros)
                        .clamp(Duration::from_millis(1), MAX_WAIT);
                    Ok(Err(wait))
                }
                _ => Err(bad("rate limit", &value)),
            }
        })
    }

    fn tick(&self, trigger: usize, tick: u64) -> StoreFuture<'_, TickClaim> {
        Box::pin(async move {
            let label = self
                .trigger_labels
                .get(trigger)
                .map_or("trigger", String::as_str);
            let key = format!("{}tick:{label}:{tick}", self.prefix);
            let token = self.token();
            let mut conn = self.conn.clone();
            let set = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(millis(LEASE))
                .arg("GET")
                .to_owned();
            // SET NX GET: the old value when the key exists (Redis ≥ 7.0),
            // nil when this call set it.
            let value =
                match tokio::time::timeout(OP_TIMEOUT, set.query_async::<Value>(&mut conn)).await {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => return Err(StoreError::Unavailable(e.to_string())),
                    Err(_) => return Err(StoreError::Timeout(millis(OP_TIMEOUT))),
                };
            match value {
                Value::Nil => Ok(TickClaim::Won(Box::new(RedisLease {
                    conn: self.conn.clone(),
                    key,
                    token,
                    renew: self.renew_script.clone(),
                    finish: self.finish_script.clone(),
                }))),
                Value::BulkString(b) if b == b"done" => Ok(TickClaim::Done),
                Value::BulkString(_) => Ok(TickClaim::Held),
                other => Err(bad("tick lease", &other)),
            }
        })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let ping = redis::cmd("PING");
            match tokio::time::timeout(OP_TIMEOUT, ping.query_async::<Value>(&mut conn)).await {
                Ok(Ok(Value::SimpleString(s))) if s == "PONG" => Ok(()),
                Ok(Ok(other)) => Err(bad("PING", &other)),
                Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
                Err(_) => Err(StoreError::Timeout(millis(OP_TIMEOUT))),
            }
        })
    }

    fn sweep(&self, _keep: Duration) -> StoreFuture<'_, usize> {
        // Records, claims and buckets carry their own expiry in Redis.
        Box::pin(std::future::ready(Ok(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_digests_separate_routes_and_hide_the_key() {
        let a = key_digest("POST", "/a", "order-1");
        assert_eq!(a.len(), 64);
        assert_ne!(a, key_digest("POST", "/b", "order-1"));
        assert!(!a.contains("order"));
    }

    #[test]
    fn only_our_records_replay() {
        let ok = br#"{"status":201,"content_type":"text/plain","body":"x","stored_unix":1}"#;
        assert_eq!(parse_recorded(ok).map(|r| r.status), Some(201));
        assert!(parse_recorded(b"not json").is_none());
        assert!(parse_recorded(br#"{"status":"x"}"#).is_none());
    }

    #[test]
    fn replies_of_the_wrong_shape_are_named_not_trusted() {
        let e = bad("rate limit", &Value::SimpleString("OK".into()));
        assert!(e.to_string().contains("rate limit"), "{e}");
        assert_eq!(int(&Value::BulkString(b"12".to_vec())), Some(12));
        assert_eq!(int(&Value::BulkString(b"x".to_vec())), None);
        assert_eq!(int(&Value::Nil), None);
    }
}
