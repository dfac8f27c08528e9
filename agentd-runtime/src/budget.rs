//! Process limits from the workflow's `[budget]` (spec/dialect-ops.md §10):
//! `max_memory_mb` → `RLIMIT_AS`, `max_cpu_secs` → `RLIMIT_CPU` (soft = hard, so the
//! kernel's SIGXCPU ends the process), and `max_run_time_secs`, which can only lower
//! the run deadline.
//!
//! Owns the one place the runtime calls `setrlimit`; the `unsafe` here is limited to
//! that libc call. **Divergence from dialect 1:** a limit the workflow asked for that
//! cannot be applied is an error that stops the binary from starting (exit 5), never a
//! warning — a budget that silently does not exist protects nothing. A value of `0`
//! means "no limit" for every field.

#![allow(unsafe_code)]

use std::time::Duration;

/// The `[budget]` limits applied at start, baked by the compiler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address-space cap in MiB (`RLIMIT_AS`).
    pub max_memory_mb: Option<u64>,
    /// CPU-time cap in seconds (`RLIMIT_CPU`).
    pub max_cpu_secs: Option<u64>,
    /// Upper bound on the run deadline, in seconds.
    pub max_run_time_secs: Option<u64>,
}

impl Limits {
    /// No `[budget]`: nothing is limited.
    pub const NONE: Limits = Limits {
        max_memory_mb: None,
        max_cpu_secs: None,
        max_run_time_secs: None,
    };

    /// The effective deadline: `min(requested, max_run_time_secs)`; `0` never clamps.
    #[must_use]
    pub fn clamp_timeout(&self, requested: Duration) -> Duration {
        match self.max_run_time_secs.filter(|s| *s > 0) {
            Some(cap) => requested.min(Duration::from_secs(cap)),
            None => requested,
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
        let bytes = mb.checked_mul(1024 * 1024).ok_or(BudgetError::TooLarge {
            key: "max_memory_mb",
            value: mb,
        })?;
        set(Resource::AddressSpace, "max_memory_mb", mb, bytes)?;
    }
    if let Some(secs) = limits.max_cpu_secs.filter(|v| *v > 0) {
        set(Resource::CpuTime, "max_cpu_secs", secs, secs)?;
    }
    Ok(())
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
}
