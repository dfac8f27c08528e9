//! Process limits from the workflow's `[budget]` (docs/dialect.md §12.6):
//! `max_memory_mb` → `RLIMIT_AS`, `max_cpu_secs` → `RLIMIT_CPU` (soft = hard, so the
//! kernel kills the process when it reaches the limit), `max_run_time_secs`, which can only lower
//! the run deadline, and `max_fs_write_mb`, the cumulative bytes `write_file` may
//! write in this process ([`FsWriteBudget`]).
//!
//! Owns the one place the runtime calls `setrlimit`; the `unsafe` here is limited to
//! that libc call. **Divergence from dialect 1:** a limit the workflow asked for that
//! cannot be applied is an error that stops the binary from starting (exit 5), never a
//! warning — a budget that silently does not exist protects nothing. A value of `0`
//! means "no limit" for every field. Every limit applied or hit is an audit event
//! (`budget.applied`, `budget.apply_failed`, `budget.fs_write_denied`; the run-time
//! and token limits are audited where they are enforced).

#![allow(unsafe_code)]

pub use crate::workflow::budget::Limits;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cumulative byte counter with a cap: `max_fs_write_mb`'s accounting.
/// Reservations are atomic (compare-and-swap), so concurrent writers of
/// `parallel`/`map` can never overshoot the cap together.
#[derive(Debug, Default)]
pub struct FsWriteBudget {
    used: AtomicU64,
}

/// The process-wide counter every `write_file` draws from (shared by all
/// runs and triggers, never reset — docs/dialect.md §12.6).
pub static FS_WRITES: FsWriteBudget = FsWriteBudget::new();

/// The fs-write budget a run draws from: the cap and the counter.
#[derive(Debug, Clone, Copy)]
pub struct FsWriteLimit {
    /// The cap in bytes (`None` = unlimited).
    pub cap: Option<u64>,
    /// The counter, [`FS_WRITES`] outside tests.
    pub counter: &'static FsWriteBudget,
}

impl FsWriteLimit {
    /// No cap, counted in [`FS_WRITES`].
    pub const UNLIMITED: FsWriteLimit = FsWriteLimit {
        cap: None,
        counter: &FS_WRITES,
    };

    /// `limits`' cap, counted in [`FS_WRITES`].
    #[must_use]
    pub fn of(limits: &Limits) -> Self {
        Self {
            cap: limits.fs_write_cap_bytes(),
            counter: &FS_WRITES,
        }
    }

    /// [`FsWriteBudget::reserve`] under this cap.
    ///
    /// # Errors
    ///
    /// [`FsWriteDenied`] when the write would cross the cap.
    pub fn reserve(&self, bytes: u64) -> Result<(), FsWriteDenied> {
        self.counter.reserve(bytes, self.cap)
    }
}

/// A write refused by [`FsWriteBudget::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "budget.max_fs_write_mb exceeded: writing {requested} bytes would bring the total to \
     {would_be} of {cap} bytes ({used} already written)"
)]
pub struct FsWriteDenied {
    /// The bytes of the refused write.
    pub requested: u64,
    /// Bytes written before it.
    pub used: u64,
    /// What the total would have been.
    pub would_be: u64,
    /// The cap in bytes.
    pub cap: u64,
}

impl FsWriteBudget {
    /// An empty counter.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            used: AtomicU64::new(0),
        }
    }

    /// Bytes reserved so far.
    #[must_use]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserve `bytes` under `cap` (`None` = unlimited, counted anyway).
    /// A write that would cross the cap reserves nothing and is refused
    /// whole, so nothing is ever partly written. A reservation is kept even
    /// if the write then fails (the bytes may be partly on disk).
    ///
    /// # Errors
    ///
    /// [`FsWriteDenied`] when `used + bytes > cap`.
    pub fn reserve(&self, bytes: u64, cap: Option<u64>) -> Result<(), FsWriteDenied> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let would_be = used.saturating_add(bytes);
            if let Some(cap) = cap
                && would_be > cap
            {
                return Err(FsWriteDenied {
                    requested: bytes,
                    used,
                    would_be,
                    cap,
                });
            }
            match self.used.compare_exchange_weak(
                used,
                would_be,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }
}

/// Why a limit could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The value does not fit the platform's limit type.
    #[error("[budget] {key} = {value} is too large for this platform")]
    TooLarge { key: &'static str, value: u64 },
    /// `setrlimit` refused (for example raising a hard limit without privilege).
    #[error("cannot apply [budget] {key} = {value}: setrlimit failed: {source}")]
    Setrlimit {
        key: &'static str,
        value: u64,
        source: std::io::Error,
    },
    /// Process limits are not implemented on this platform.
    #[error("cannot apply [budget] {key}: process limits are not supported on this platform")]
    Unsupported { key: &'static str },
}

/// Apply `max_memory_mb` and `max_cpu_secs` to the current process.
///
/// # Errors
///
/// The first limit that could not be applied.
pub fn apply(limits: &Limits) -> Result<(), BudgetError> {
    if let Some(mb) = limits.max_memory_mb.filter(|v| *v > 0) {
        let applied = mb
            .checked_mul(1024 * 1024)
            .ok_or(BudgetError::TooLarge {
                key: "max_memory_mb",
                value: mb,
            })
            .and_then(|bytes| set(Resource::AddressSpace, "max_memory_mb", mb, bytes));
        audited("memory_mb", mb, applied)?;
    }
    if let Some(secs) = limits.max_cpu_secs.filter(|v| *v > 0) {
        audited(
            "cpu_secs",
            secs,
            set(Resource::CpuTime, "max_cpu_secs", secs, secs),
        )?;
    }
    Ok(())
}

/// `budget.applied{kind, value}` or `budget.apply_failed{kind, value, reason}`.
fn audited(
    kind: &'static str,
    value: u64,
    result: Result<(), BudgetError>,
) -> Result<(), BudgetError> {
    use tracing_core::Level;
    let mut fields = vec![("kind", kind.into()), ("value", value.into())];
    match &result {
        Ok(()) => crate::obs::audit_pairs(Level::INFO, "budget.applied", fields),
        Err(e) => {
            fields.push(("reason", e.to_string().into()));
            crate::obs::audit_pairs(Level::WARN, "budget.apply_failed", fields);
        }
    }
    result
}

#[derive(Clone, Copy)]
enum Resource {
    AddressSpace,
    CpuTime,
}

#[cfg(unix)]
fn set(resource: Resource, key: &'static str, value: u64, limit: u64) -> Result<(), BudgetError> {
    // `rlim_t` is u64 on Linux but not on every Unix.
    #[allow(clippy::useless_conversion)]
    let limit: libc::rlim_t = limit
        .try_into()
        .map_err(|_| BudgetError::TooLarge { key, value })?;
    let resource = match resource {
        Resource::AddressSpace => libc::RLIMIT_AS,
        Resource::CpuTime => libc::RLIMIT_CPU,
    };
    let rlim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: `setrlimit` reads one fully initialised `rlimit` through a valid,
    // properly aligned pointer that lives for the whole call; it has no other
    // memory effects on this process.
    let rc = unsafe { libc::setrlimit(resource, &rlim) };
    if rc == 0 {
        Ok(())
    } else {
        Err(BudgetError::Setrlimit {
            key,
            value,
            source: std::io::Error::last_os_error(),
        })
    }
}

#[cfg(not(unix))]
fn set(
    _resource: Resource,
    key: &'static str,
    _value: u64,
    _limit: u64,
) -> Result<(), BudgetError> {
    Err(BudgetError::Unsupported { key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn run_time_budget_only_lowers_the_deadline_and_zero_never_clamps() {
        let l = Limits {
            max_run_time_secs: Some(10),
            ..Limits::NONE
        };
        assert_eq!(
            l.clamp_timeout(Duration::from_secs(120)),
            Duration::from_secs(10)
        );
        assert_eq!(
            l.clamp_timeout(Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        let zero = Limits {
            max_run_time_secs: Some(0),
            ..Limits::NONE
        };
        assert_eq!(
            zero.clamp_timeout(Duration::from_secs(120)),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn no_budget_applies_nothing_and_an_overflowing_memory_cap_is_an_error() {
        assert!(apply(&Limits::NONE).is_ok());
        let err = apply(&Limits {
            max_memory_mb: Some(u64::MAX),
            ..Limits::NONE
        })
        .expect_err("overflow");
        assert_eq!(
            err.to_string(),
            format!(
                "[budget] max_memory_mb = {} is too large for this platform",
                u64::MAX
            )
        );
    }

    #[test]
    fn fs_write_reservations_stop_at_the_cap_and_refuse_whole() {
        let budget = FsWriteBudget::new();
        let cap = Limits {
            max_fs_write_mb: Some(1),
            ..Limits::NONE
        }
        .fs_write_cap_bytes();
        assert_eq!(cap, Some(1024 * 1024));
        assert_eq!(budget.reserve(1000 * 1024, cap), Ok(()));
        assert_eq!(
            budget.reserve(24 * 1024, cap),
            Ok(()),
            "exactly the cap is allowed"
        );
        let denied = budget.reserve(1, cap);
        assert_eq!(
            denied,
            Err(FsWriteDenied {
                requested: 1,
                used: 1024 * 1024,
                would_be: 1024 * 1024 + 1,
                cap: 1024 * 1024,
            })
        );
        assert_eq!(budget.used(), 1024 * 1024, "a refusal reserves nothing");
        assert_eq!(budget.reserve(0, cap), Ok(()));
    }

    #[test]
    fn without_a_cap_writes_are_counted_but_never_refused() {
        let budget = FsWriteBudget::new();
        let zero = Limits {
            max_fs_write_mb: Some(0),
            ..Limits::NONE
        };
        assert_eq!(zero.fs_write_cap_bytes(), None);
        assert_eq!(budget.reserve(u64::MAX, None), Ok(()));
        assert_eq!(budget.reserve(5, None), Ok(()), "the counter saturates");
        assert_eq!(budget.used(), u64::MAX);
    }

    #[test]
    fn concurrent_writers_never_overshoot_the_cap() {
        let budget = FsWriteBudget::new();
        let granted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if budget.reserve(7, Some(10_000)).is_ok() {
                            granted.fetch_add(7, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::Relaxed), budget.used());
        assert!(
            budget.used() <= 10_000 && budget.used() > 10_000 - 7,
            "{}",
            budget.used()
        );
    }

    const CPU_CHILD: &str = "AGENTD_BUDGET_TEST_CPU_CHILD";

    /// Runs only as the child of the test below: apply a 1 s CPU budget,
    /// then spin. Reaching the end means the limit did not stop it.
    #[test]
    #[ignore = "runs in a child process of a_cpu_budget_kills_a_process_that_spins_past_it"]
    fn cpu_budget_child_spins() {
        if std::env::var_os(CPU_CHILD).is_none() {
            return;
        }
        if let Err(e) = apply(&Limits {
            max_cpu_secs: Some(1),
            ..Limits::NONE
        }) {
            panic!("apply: {e}");
        }
        let started = std::time::Instant::now();
        let mut x = 1_u64;
        // Bounded, so a limit that does not work fails the test instead of hanging.
        while started.elapsed() < Duration::from_secs(60) {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_cpu_budget_kills_a_process_that_spins_past_it() {
        use std::os::unix::process::ExitStatusExt;
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => panic!("current_exe: {e}"),
        };
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "budget::tests::cpu_budget_child_spins",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CPU_CHILD, "1")
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => panic!("spawn the child: {e}"),
        };
        // soft = hard: Linux sends SIGKILL at the hard limit (SIGXCPU only
        // between a lower soft and the hard one).
        let signal = out.status.signal();
        assert!(
            signal == Some(libc::SIGKILL) || signal == Some(libc::SIGXCPU),
            "the child was not killed by its CPU limit: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
