//! Checkpoints in Redis (feature `fleet`, `--state-url`): the [`Checkpoints`]
//! store every replica of one program shares, so a paused run resumes on any
//! replica and a run whose replica died is taken over by another.
//!
//! Owns the key layout under `agentd:<workflow>:<program hash>:` (two
//! different agents, or two builds of one, sharing a Redis never see each
//! other's runs):
//! - `run:<id>`: the checkpoint (the file format's JSON), expiring
//!   after `--checkpoint-retention-days` (0: never);
//! - `run:<id>:lease`: the holder's random token, expiring [`RUN_LEASE`]
//!   after its last renewal (a background thread renews every held lease a
//!   third of the way through);
//! - `runs`: every run id with a checkpoint (for listing);
//! - `runs:active`: runs in progress (their newest checkpoint is a progress
//!   snapshot and their holder has not let go). A member without a lease is
//!   an orphan: its replica died, and [`RedisCheckpoints::orphans`] offers it
//!   for takeover.
//!
//! Every write is one Lua script that first checks the lease still holds
//! this process's token, so a process that stalled past its lease and was
//! taken over can never overwrite the new holder's checkpoint
//! ([`CheckpointError::LeaseLost`]). Each command has a deadline
//! ([`OP_TIMEOUT`]); an unreachable server, a timeout, a reply of the wrong
//! shape or a value that is not our checkpoint is a precise
//! [`CheckpointError`], never a panic or a hang.
//!
//! This module never runs a workflow and never decides when to checkpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Script, Value};
use serde_json::Value as Json;

use super::{
    Checkpoint, CheckpointError, Checkpoints, Listed, MAX_CHECKPOINT_BYTES, Retention, RunLock,
    check_run_id,
};
use crate::limits::redact_url;
use crate::serve::fleet::FleetConfig;

/// How long a run's lease lasts without renewal: a replica that dies
/// mid-run has its runs taken over about this long after its last renewal.
pub const RUN_LEASE: Duration = Duration::from_secs(5);

/// Longest wait for one command.
const OP_TIMEOUT: Duration = crate::serve::fleet::OP_TIMEOUT;

/// Most orphans offered by one [`RedisCheckpoints::orphans`] call.
const ORPHAN_BATCH: usize = 64;

/// Save a checkpoint while the lease is ours; keep the indexes.
const SAVE_LUA: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[6])
if ARGV[5] == '1' then
  redis.call('SADD', KEYS[4], ARGV[6])
else
  redis.call('SREM', KEYS[4], ARGV[6])
end
return 1
";

/// Delete a checkpoint while the lease is ours: `-1` lost, else keys deleted.
const REMOVE_LUA: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
return n
";

/// Let go of a run that ended: it is no longer in progress (a kept
/// checkpoint is a pause or a failure for a person, not an orphan).
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
";

/// Extend a lease that is still ours.
const RENEW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// The shared checkpoint store. Cheap to share (`Arc`); connections are
/// pooled, opened on demand and dropped after any failure.
pub struct RedisCheckpoints {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// The state URL without its password (messages).
    shown: String,
    /// `agentd:<workflow>:<program hash>:`.
    prefix: String,
    /// Checkpoint expiry in seconds; 0 keeps them.
    keep_secs: u64,
    idle: Mutex<Vec<redis::Connection>>,
    /// Leases this process holds: lease key → token (the renewer's list).
    held: Mutex<HashMap<String, String>>,
    renewer: std::sync::OnceLock<()>,
    token_base: String,
    next_token: AtomicU64,
    save: Script,
    remove: Script,
    release: Script,
    renew: Script,
}

impl std::fmt::Debug for RedisCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCheckpoints")
            .field("url", &self.inner.shown)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCheckpoints {
    /// The store of `workflow` built as `program_hash` at `config.url`. Connects
    /// lazily: the process starts while Redis is down, and each operation
    /// then fails with [`CheckpointError::StoreUnavailable`].
    ///
    /// # Errors
    ///
    /// A URL the client cannot use, or an unusable CA bundle for
    /// `rediss://`; the message never contains the password.
    pub fn open(
        config: &FleetConfig,
        workflow: &str,
        program_hash: &str,
        retention: Retention,
    ) -> Result<Self, String> {
        let client = crate::serve::fleet::client(config)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                shown: redact_url(&config.url),
                prefix: format!("agentd:{workflow}:{program_hash}:"),
                keep_secs: retention.max_age.map_or(0, |d| d.as_secs()),
                idle: Mutex::new(Vec::new()),
                held: Mutex::new(HashMap::new()),
                renewer: std::sync::OnceLock::new(),
                token_base: format!("{}-{nanos:x}", std::process::id()),
                next_token: AtomicU64::new(0),
                save: Script::new(SAVE_LUA),
                remove: Script::new(REMOVE_LUA),
                release: Script::new(RELEASE_LUA),
                renew: Script::new(RENEW_LUA),
            }),
        })
    }

    /// Up to a batch of runs in progress whose lease has lapsed (their
    /// replica died): candidates for takeover.
    fn orphan_batch(&self) -> Result<Vec<String>, CheckpointError> {
        let inner = &self.inner;
        let active = inner.key("runs:active");
        let members: Vec<String> = inner.with_conn(|c| {
            redis::cmd("SRANDMEMBER")
                .arg(&active)
                .arg(ORPHAN_BATCH)
                .query(c)
        })?;
        let members: Vec<String> = members
            .into_iter()
            .filter(|id| check_run_id(id).is_ok())
            .collect();
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &members {
            pipe.cmd("EXISTS").arg(inner.lease_key(id));
            pipe.cmd("EXISTS").arg(inner.run_key(id));
        }
        let exists: Vec<i64> = inner.with_conn(|c| pipe.query(c))?;
        let mut orphans = Vec::new();
        for (id, pair) in members.into_iter().zip(exists.chunks(2)) {
            match pair {
                [0, 1] => orphans.push(id),
                // Its checkpoint expired: nothing to take over.
                [_, 0] => {
                    let _ = inner
                        .with_conn(|c| redis::cmd("SREM").arg(&active).arg(&id).query::<i64>(c));
                }
                _ => {}
            }
        }
        Ok(orphans)
    }
}

impl Inner {
    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn run_key(&self, run_id: &str) -> String {
        format!("{}run:{run_id}", self.prefix)
    }

    fn lease_key(&self, run_id: &str) -> String {
        format!("{}run:{run_id}:lease", self.prefix)
    }

    fn token(&self) -> String {
        let n = self.next_token.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.token_base)
    }

    fn unavailable(&self, detail: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::StoreUnavailable {
            location: self.shown.clone(),
            detail: detail.to_string(),
        }
    }

    fn corrupt(&self, run_id: &str, detail: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::StoreCorrupt {
            run_id: run_id.to_owned(),
            location: self.shown.clone(),
            detail: detail.to_string(),
        }
    }

    /// A new connection with deadlines on connect, reads and writes.
    fn connect(&self) -> Result<redis::Connection, CheckpointError> {
        let conn = self
            .client
            .get_connection_with_timeout(OP_TIMEOUT)
            .map_err(|e| self.unavailable(e))?;
        conn.set_read_timeout(Some(OP_TIMEOUT))
            .and_then(|()| conn.set_write_timeout(Some(OP_TIMEOUT)))
            .map_err(|e| self.unavailable(e))?;
        Ok(conn)
    }

    /// Run `f` on a pooled connection (a new one when none is idle). A
    /// connection that failed is dropped, not pooled: its reply stream may
    /// be out of step. An idle connection the server closed meanwhile (a
    /// Redis restart) is replaced once: that is not an outage.
    fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, CheckpointError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let mut result = f(&mut conn);
        if reused
            && let Err(e) = &result
            && (e.is_connection_dropped() || e.is_io_error())
        {
            // Every other idle connection went with the same server.
            if let Ok(mut idle) = self.idle.lock() {
                idle.clear();
            }
            conn = self.connect()?;
            result = f(&mut conn);
        }
        match result {
            Ok(value) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(conn);
                }
                Ok(value)
            }
            // A key of the wrong type (someone else's data under our
            // prefix) is corrupt data, not an outage.
            Err(e) if e.code() == Some("WRONGTYPE") => Err(self.corrupt("-", e)),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// Run `script` and read an integer reply.
    fn eval_int(
        &self,
        op: &str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<i64, CheckpointError> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        let value: Value = self.with_conn(|c| invocation.invoke(c))?;
        match value {
            Value::Int(n) => Ok(n),
            other => Err(self.corrupt(op, format!("unexpected reply {other:?}"))),
        }
    }

    /// Start the renewer thread once (it ends with the store).
    fn start_renewer(self: &Arc<Self>) {
        self.renewer.get_or_init(|| {
            let weak = Arc::downgrade(self);
            let _ = std::thread::Builder::new()
                .name("agentd-lease".to_owned())
                .spawn(move || renew_loop(&weak));
        });
    }
}

/// Renew every held lease each third of [`RUN_LEASE`] until the store is
/// dropped. A renewal that fails (Redis down) is retried next round; a
/// lease that was lost is forgotten here, and the run's next save fails
/// with [`CheckpointError::LeaseLost`].
fn renew_loop(weak: &Weak<Inner>) {
    loop {
        std::thread::sleep(RUN_LEASE / 3);
        let Some(inner) = weak.upgrade() else { return };
        let held: Vec<(String, String)> = match inner.held.lock() {
            Ok(held) => held.iter().map(|(k, t)| (k.clone(), t.clone())).collect(),
            Err(_) => return,
        };
        let ms = millis(RUN_LEASE).to_string();
        for (key, token) in held {
            if let Ok(0) = inner.eval_int("lease renewal", &inner.renew, &[&key], &[&token, &ms])
                && let Ok(mut held) = inner.held.lock()
                && held.get(&key) == Some(&token)
            {
                held.remove(&key);
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Checkpoints for RedisCheckpoints {
    fn claim(&self, run_id: &str) -> Result<Box<dyn RunLock>, CheckpointError> {
        check_run_id(run_id)?;
        let inner = &self.inner;
        let lease = inner.lease_key(run_id);
        let token = inner.token();
        let set: Option<String> = inner.with_conn(|c| {
            redis::cmd("SET")
                .arg(&lease)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(millis(RUN_LEASE))
                .query(c)
        })?;
        if set.is_none() {
            return Err(CheckpointError::Busy {
                run_id: run_id.to_owned(),
            });
        }
        if let Ok(mut held) = inner.held.lock() {
            held.insert(lease.clone(), token.clone());
        }
        inner.start_renewer();
        Ok(Box::new(RedisLock {
            inner: Arc::clone(inner),
            run_id: run_id.to_owned(),
            lease,
            token,
        }))
    }

    fn load(&self, run_id: &str) -> Result<Checkpoint, CheckpointError> {
        check_run_id(run_id)?;
        let inner = &self.inner;
        let key = inner.run_key(run_id);
        let bytes: Option<Vec<u8>> = inner
            .with_conn(|c| redis::cmd("GET").arg(&key).query(c))
            .map_err(|e| match e {
                CheckpointError::StoreCorrupt { detail, .. } => inner.corrupt(run_id, detail),
                other => other,
            })?;
        let Some(bytes) = bytes else {
            return Err(CheckpointError::NotFound {
                run_id: run_id.to_owned(),
                location: inner.shown.clone(),
            });
        };
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CHECKPOINT_BYTES {
            return Err(inner.corrupt(run_id, format!("larger than {MAX_CHECKPOINT_BYTES} bytes")));
        }
        let value: Json = serde_json::from_slice(&bytes).map_err(|e| inner.corrupt(run_id, e))?;
        let checkpoint = Checkpoint::from_json(value).map_err(|e| inner.corrupt(run_id, e))?;
        if checkpoint.run_id != run_id {
            return Err(inner.corrupt(run_id, format!("it holds run `{}`", checkpoint.run_id)));
        }
        Ok(checkpoint)
    }

    fn list(&self) -> Result<Vec<Listed>, CheckpointError> {
        let inner = &self.inner;
        let all = inner.key("runs");
        let mut ids: Vec<String> =
            inner.with_conn(|c| redis::cmd("SMEMBERS").arg(&all).query(c))?;
        ids.retain(|id| check_run_id(id).is_ok());
        ids.sort_unstable();
        let mut listed = Vec::with_capacity(ids.len());
        for id in ids {
            match self.load(&id) {
                // Expired: drop it from the index rather than list a ghost.
                Err(CheckpointError::NotFound { .. }) => {
                    let _ =
                        inner.with_conn(|c| redis::cmd("SREM").arg(&all).arg(&id).query::<i64>(c));
                }
                loaded => listed.push((id, loaded)),
            }
        }
        Ok(listed)
    }

    fn location(&self) -> String {
        self.inner.shown.clone()
    }

    fn shared(&self) -> bool {
        true
    }

    fn orphans(&self) -> Result<Vec<String>, CheckpointError> {
        self.orphan_batch()
    }
}

/// A run this process holds in Redis.
struct RedisLock {
    inner: Arc<Inner>,
    run_id: String,
    lease: String,
    token: String,
}

impl RedisLock {
    fn lost(&self) -> CheckpointError {
        if let Ok(mut held) = self.inner.held.lock() {
            held.remove(&self.lease);
        }
        CheckpointError::LeaseLost {
            run_id: self.run_id.clone(),
        }
    }
}

impl RunLock for RedisLock {
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let inner = &self.inner;
        // The file format exactly (pretty JSON, one writer compiled in).
        let bytes = crate::limits::pretty_json(checkpoint, MAX_CHECKPOINT_BYTES)
            .map_err(|e| inner.corrupt(&self.run_id, e))?
            .ok_or_else(|| {
                inner.corrupt(
                    &self.run_id,
                    format!("it would be larger than {MAX_CHECKPOINT_BYTES} bytes"),
                )
            })?;
        let text = String::from_utf8(bytes).map_err(|e| inner.corrupt(&self.run_id, e))?;
        let keys = [
            inner.run_key(&self.run_id),
            self.lease.clone(),
            inner.key("runs"),
            inner.key("runs:active"),
        ];
        let active = if checkpoint.awaiting_approval {
            "0"
        } else {
            "1"
        };
        let saved = inner.eval_int(
            "checkpoint save",
            &inner.save,
            &[&keys[0], &keys[1], &keys[2], &keys[3]],
            &[
                &self.token,
                &text,
                &millis(RUN_LEASE).to_string(),
                &inner.keep_secs.to_string(),
                active,
                &self.run_id,
            ],
        )?;
        match saved {
            1 => Ok(()),
            _ => Err(self.lost()),
        }
    }

    fn remove(&mut self) -> Result<bool, CheckpointError> {
        let inner = &self.inner;
        let keys = [
            inner.run_key(&self.run_id),
            self.lease.clone(),
            inner.key("runs"),
            inner.key("runs:active"),
        ];
        let removed = inner.eval_int(
            "checkpoint removal",
            &inner.remove,
            &[&keys[0], &keys[1], &keys[2], &keys[3]],
            &[&self.token, &self.run_id],
        )?;
        match removed {
            -1 => Err(self.lost()),
            n => Ok(n > 0),
        }
    }
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        if let Ok(mut held) = self.inner.held.lock() {
            held.remove(&self.lease);
        }
        // Best effort: a release that does not arrive leaves the lease to
        // lapse, and the run (if still marked active) to be taken over.
        let active = self.inner.key("runs:active");
        let _ = self.inner.eval_int(
            "lease release",
            &self.inner.release,
            &[&self.lease, &active],
            &[&self.token, &self.run_id],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> RedisCheckpoints {
        let config = FleetConfig {
            url: "redis://:hunter2@127.0.0.1:1/0".to_owned(),
            password: None,
        };
        match RedisCheckpoints::open(&config, "wf", "abc123", Retention::days(1)) {
            Ok(store) => store,
            Err(e) => panic!("open: {e}"),
        }
    }

    #[test]
    fn keys_are_namespaced_by_workflow_and_program() {
        let store = store();
        assert_eq!(store.inner.run_key("r1"), "agentd:wf:abc123:run:r1");
        assert_eq!(store.inner.lease_key("r1"), "agentd:wf:abc123:run:r1:lease");
        assert_eq!(store.inner.keep_secs, 86_400);
    }

    #[test]
    fn an_unreachable_store_is_a_precise_error_without_the_password() {
        let store = store();
        let err = match store.load("r1") {
            Err(e) => e,
            Ok(c) => panic!("loaded {c:?} from nowhere"),
        };
        let text = err.to_string();
        assert!(
            matches!(err, CheckpointError::StoreUnavailable { .. }),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(
            store.load("../x"),
            Err(CheckpointError::InvalidRunId(_))
        ));
    }
}
