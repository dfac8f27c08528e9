//! Per-route token buckets (docs/operations.md "Rate limits").
//!
//! Owns [`TokenBucket`]: it starts full (`capacity` tokens), refills
//! continuously at `per_second` up to `capacity`, and each request takes one
//! token. An empty bucket answers how long until the next token. State is
//! in memory and per process. The bucket never sleeps and never decides the
//! HTTP response; the server turns a refusal into 429 + `Retry-After`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::workflow::serve::RateLimitDef;

/// The shortest wait a refusal reports (spec: at least 1 ms).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// The longest wait a refusal reports: one year. The compiler refuses rates slower
/// than one token a year (`invalid_rate_limit`), so this only bounds a hand-wired
/// bucket; it keeps `Retry-After` a number a client can act on, never
/// `u64::MAX` seconds.
pub const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// One route's bucket.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `def` (whose fields were checked at build time; a
    /// non-positive or NaN rate here refuses everything once empty, with
    /// [`MAX_WAIT`], never panics).
    #[must_use]
    pub fn new(def: RateLimitDef, now: Instant) -> Self {
        let capacity = f64::from(def.capacity);
        Self {
            capacity,
            per_second: def.per_second,
            state: Mutex::new(BucketState {
                tokens: capacity,
                last: now,
            }),
        }
    }

    /// Take one token at `now`; `Err(wait)` when the bucket is empty, with
    /// the time until a whole token is available again.
    ///
    /// # Errors
    ///
    /// The wait before a request would be admitted.
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update;
        // the numbers inside are still a valid bucket.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A clock that moved backwards adds nothing (and removes nothing).
        let elapsed = now.saturating_duration_since(state.last);
        if !elapsed.is_zero() {
            state.tokens =
                (state.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
            state.last = now;
        }
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            return Ok(());
        }
        let wait = if self.per_second > 0.0 && self.per_second.is_finite() {
            Duration::try_from_secs_f64((1.0 - state.tokens) / self.per_second).unwrap_or(MAX_WAIT)
        } else {
            MAX_WAIT
        };
        Err(wait.clamp(MIN_WAIT, MAX_WAIT))
    }
}

/// The `Retry-After` seconds for a wait: whole seconds, at least 1, at most
/// [`MAX_WAIT`].
#[must_use]
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.min(MAX_WAIT).as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(capacity: u32, per_second: f64, now: Instant) -> TokenBucket {
        TokenBucket::new(
            RateLimitDef {
                capacity,
                per_second,
            },
            now,
        )
    }

    #[test]
    fn a_new_bucket_admits_a_full_burst_then_refuses() {
        let t0 = Instant::now();
        let b = bucket(3, 1.0, t0);
        for i in 0..3 {
            assert_eq!(b.try_take(t0), Ok(()), "request {i} of the burst");
        }
        let wait = b.try_take(t0).expect_err("the fourth request is refused");
        assert_eq!(wait, Duration::from_secs(1));
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_capacity() {
        let t0 = Instant::now();
        let b = bucket(2, 4.0, t0);
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_err());
        // A quarter second at 4/s is exactly one token.
        let t1 = t0 + Duration::from_millis(250);
        assert!(b.try_take(t1).is_ok());
        assert!(b.try_take(t1).is_err());
        // A long pause refills to capacity, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert!(b.try_take(t2).is_ok());
        assert!(b.try_take(t2).is_ok());
        assert!(b.try_take(t2).is_err());
    }

    #[test]
    fn the_wait_is_the_time_to_the_next_whole_token() {
        let t0 = Instant::now();
        let b = bucket(1, 0.1, t0);
        assert!(b.try_take(t0).is_ok());
        let wait = b
            .try_take(t0 + Duration::from_secs(5))
            .expect_err("half a token is not enough");
        // 0.5 tokens at 0.1/s: 5 s to go.
        assert!((wait.as_secs_f64() - 5.0).abs() < 1e-6, "wait was {wait:?}");
        assert_eq!(retry_after_secs(wait), 5);
        assert_eq!(retry_after_secs(Duration::from_millis(20)), 1);
    }

    #[test]
    fn a_clock_that_goes_backwards_adds_no_tokens() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let b = bucket(1, 1000.0, t0);
        assert!(b.try_take(t0).is_ok());
        let earlier = t0 - Duration::from_secs(5);
        assert!(b.try_take(earlier).is_err());
        // Time moving forward again from the last seen instant refills.
        assert!(b.try_take(t0 + Duration::from_millis(2)).is_ok());
    }

    #[test]
    fn waits_saturate_at_one_year_for_rates_that_never_refill() {
        let t0 = Instant::now();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300] {
            let empty = bucket(0, rate, t0);
            let wait = empty.try_take(t0).expect_err("an empty bucket refuses");
            assert_eq!(wait, MAX_WAIT, "per_second = {rate}");
        }
        assert_eq!(retry_after_secs(MAX_WAIT), 31_536_000);
        assert_eq!(retry_after_secs(Duration::MAX), 31_536_000);
    }

    #[test]
    fn the_shortest_reported_wait_is_one_millisecond() {
        let t0 = Instant::now();
        let b = bucket(1, 1e9, t0);
        assert!(b.try_take(t0).is_ok());
        assert_eq!(b.try_take(t0), Err(MIN_WAIT));
    }
}
