//! The serve-mode state store: where idempotency records, rate-limit buckets
//! and trigger tick leases live, behind one small trait ([`Store`]) so the
//! handler and the schedules never ask which store they have.
//!
//! Two implementations: [`LocalStore`] (this process only: the on-disk
//! idempotency store of `--state-dir`, in-memory token buckets, every tick
//! fires here), and with feature `fleet` `serve::fleet::RedisStore` (shared by
//! every replica pointed at the same `--state-url`). Every operation is a
//! future that may fail with [`StoreError`]; the caller turns a failure into
//! 503 + `Retry-After` (requests) or a skipped, audited tick (schedules). The
//! local store never fails: its I/O stays best effort, as in dialect 1.
//!
//! This module never builds HTTP replies and never runs a workflow.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::def::{RateLimitDef, ServeDef};
use super::idempotency::{self, IdempotencyStore, StoredResponse};
use super::ratelimit::TokenBucket;

/// How long a tick lease lasts without renewal: a replica that dies while
/// running a tick loses it this long after its last renewal (renewed every
/// third of it).
pub const TICK_LEASE: Duration = Duration::from_secs(5);

/// A store operation in flight.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why the state store could not answer. Requests that need it get 503 with
/// `Retry-After`; nothing is written half-way (every shared update is one
/// atomic script).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No answer within the operation timeout.
    #[error("the state store did not answer within {0} ms")]
    Timeout(u64),
    /// The connection failed or the server refused the command.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what the command returns (a foreign key of the
    /// wrong type, a proxy speaking something else).
    #[error("unexpected reply from the state store to {op}: {detail}")]
    BadReply {
        /// The operation.
        op: &'static str,
        /// What came back.
        detail: String,
    },
}

/// The outcome of [`Store::claim`].
pub enum Claim {
    /// A stored response within its TTL: answer it again.
    Replay(StoredResponse),
    /// Another delivery with this key is running now (409).
    InFlight,
    /// This request owns the key: run it, then [`Held::record`] the response,
    /// or drop the claim to release the key.
    Claimed(Box<dyn Held>),
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Claim::Replay(r) => f.debug_tuple("Replay").field(r).finish(),
            Claim::InFlight => f.write_str("InFlight"),
            Claim::Claimed(_) => f.write_str("Claimed"),
        }
    }
}

/// Ownership of one idempotency key; dropping it releases the key.
pub trait Held: Send {
    /// Keep `response` for replay (for the key's TTL), then release the key.
    fn record(self: Box<Self>, response: StoredResponse) -> StoreFuture<'static, ()>;
}

/// The outcome of [`Store::tick`].
pub enum TickClaim {
    /// This replica fires the tick; [`TickLease::finish`] when the run ends.
    Won(Box<dyn TickLease>),
    /// Another replica holds the tick's lease now (it may still die).
    Held,
    /// The tick has run.
    Done,
}

impl std::fmt::Debug for TickClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TickClaim::Won(_) => "Won",
            TickClaim::Held => "Held",
            TickClaim::Done => "Done",
        })
    }
}

/// The lease on one tick while its run goes.
pub trait TickLease: Send + Sync {
    /// Extend the lease; `false` when it was lost (it expired and another
    /// replica took the tick over).
    fn renew(&self) -> StoreFuture<'_, bool>;
    /// Mark the tick done (no replica will run it again).
    fn finish(self: Box<Self>) -> StoreFuture<'static, ()>;
}

/// Serve-mode state, local or shared by a fleet.
pub trait Store: Send + Sync {
    /// `local` or `fleet` (metrics label, `/readyz`).
    fn kind(&self) -> &'static str;

    /// Whether other replicas share this store (schedules then align their
    /// ticks to the wall clock so every replica names the same tick).
    fn shared(&self) -> bool;

    /// Claim idempotency `key` for a request to `method path`.
    fn claim<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        key: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Claim>;

    /// Take one token of route `route`'s bucket; `Ok(Err(wait))` when it is
    /// empty, with the time until the next token.
    fn take_token(&self, route: usize, def: RateLimitDef) -> StoreFuture<'_, Result<(), Duration>>;

    /// Claim tick `tick` (milliseconds since the epoch of its scheduled
    /// instant, or an interval's period number) of trigger `trigger`.
    fn tick(&self, trigger: usize, tick: u64) -> StoreFuture<'_, TickClaim>;

    /// Whether the store answers now (`/readyz`).
    fn ready(&self) -> StoreFuture<'_, ()>;

    /// Delete idempotency records older than `keep` and what a crash left
    /// behind; the number removed. A store whose records expire by
    /// themselves does nothing.
    fn sweep(&self, keep: Duration) -> StoreFuture<'_, usize>;
}

/// One process's own state: `--state-dir` idempotency files and in-memory
/// token buckets; every tick fires here.
pub struct LocalStore {
    idempotency: Option<Arc<IdempotencyStore>>,
    buckets: Vec<Option<TokenBucket>>,
}

impl LocalStore {
    /// The store for `def`'s routes, with idempotency files under `idempotency`.
    #[must_use]
    pub fn new(def: &ServeDef, idempotency: Option<IdempotencyStore>, now: Instant) -> Self {
        Self {
            idempotency: idempotency.map(Arc::new),
            buckets: def
                .routes
                .iter()
                .map(|r| r.rate_limit.map(|rl| TokenBucket::new(rl, now)))
                .collect(),
        }
    }
}

struct LocalHeld(idempotency::ClaimGuard);

impl Held for LocalHeld {
    fn record(self: Box<Self>, response: StoredResponse) -> StoreFuture<'static, ()> {
        let guard = self.0;
        Box::pin(async move {
            // File I/O (write, fsync, rename) stays off the reactor.
            let _ = tokio::task::spawn_blocking(move || {
                guard.store(
                    response.status,
                    &response.content_type,
                    &response.body,
                    SystemTime::now(),
                );
            })
            .await;
            Ok(())
        })
    }
}

/// The lease of a local tick: nobody else can take it.
struct LocalLease;

impl TickLease for LocalLease {
    fn renew(&self) -> StoreFuture<'_, bool> {
        Box::pin(std::future::ready(Ok(true)))
    }
    fn finish(self: Box<Self>) -> StoreFuture<'static, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Store for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn shared(&self) -> bool {
        false
    }

    fn claim<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        key: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Claim> {
        let Some(store) = self.idempotency.clone() else {
            // `start` refuses idempotent routes without a state dir; a
            // hand-wired state without one runs unguarded, as an unwritable
            // store does.
            return Box::pin(std::future::ready(Ok(Claim::Claimed(Box::new(Unguarded)))));
        };
        let (method, path, key) = (method.to_owned(), path.to_owned(), key.to_owned());
        Box::pin(async move {
            // File I/O must not block the reactor.
            let claim = tokio::task::spawn_blocking(move || {
                store.claim(&method, &path, &key, ttl, SystemTime::now())
            })
            .await
            .map_err(|_| StoreError::Unavailable("the store task stopped".to_owned()))?;
            Ok(match claim {
                idempotency::Claim::Replay(hit) => Claim::Replay(hit),
                idempotency::Claim::InFlight => Claim::InFlight,
                idempotency::Claim::Claimed(guard) => Claim::Claimed(Box::new(LocalHeld(guard))),
            })
        })
    }

    fn take_token(
        &self,
        route: usize,
        _def: RateLimitDef,
    ) -> StoreFuture<'_, Result<(), Duration>> {
        let taken = match self.buckets.get(route) {
            Some(Some(bucket)) => bucket.try_take(Instant::now()),
            _ => Ok(()),
        };
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn tick(&self, _trigger: usize, _tick: u64) -> StoreFuture<'_, TickClaim> {
        Box::pin(std::future::ready(Ok(TickClaim::Won(Box::new(LocalLease)))))
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn sweep(&self, keep: Duration) -> StoreFuture<'_, usize> {
        let store = self.idempotency.clone();
        Box::pin(async move {
            let Some(store) = store else { return Ok(0) };
            // Directory walks and unlinks stay off the reactor.
            tokio::task::spawn_blocking(move || store.sweep(keep, SystemTime::now()))
                .await
                .map_err(|_| StoreError::Unavailable("the sweep task stopped".to_owned()))
        })
    }
}

/// A claim with nothing behind it (no store to record into).
struct Unguarded;

impl Held for Unguarded {
    fn record(self: Box<Self>, _response: StoredResponse) -> StoreFuture<'static, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
