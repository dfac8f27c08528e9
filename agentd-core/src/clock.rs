//! Clock readings for hot paths: Linux's coarse clocks, read with one
//! `clock_gettime` and none of `Instant`'s or `SystemTime`'s conversions
//! (docs/performance.md, "The run's own cost"). A coarse clock is the last
//! scheduler tick's time, a few milliseconds behind at most; callers use it
//! only where whole seconds matter (an execution id's second, a connection's
//! read timeout).

/// Clock `id` in nanoseconds since its origin; `None` when the kernel does
/// not have that clock or it reads before its origin (a wall clock set before
/// 1970).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn nanos(id: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer,
    // which points at a live local of that type, and reads nothing else.
    let rc = unsafe { libc::clock_gettime(id, &raw mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_coarse_wall_clock_agrees_with_system_time_to_the_tick() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        let coarse = u128::from(super::nanos(libc::CLOCK_REALTIME_COARSE).expect("a coarse clock"));
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        // At most one tick (1–10 ms) behind; a second is a generous bound.
        assert!(coarse <= after, "{coarse} > {after}");
        assert!(
            before - coarse.min(before) < 1_000_000_000,
            "{before} vs {coarse}"
        );
    }

    #[test]
    fn an_unknown_clock_reads_as_none() {
        assert_eq!(super::nanos(-12_345), None);
    }
}
