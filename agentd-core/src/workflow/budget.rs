//! `[budget]` as the compiler bakes it ([`crate::Workflow::LIMITS`]).
//! Applying the limits is [`crate::budget`]'s; this module only describes.

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
    /// Cumulative `write_file` bytes for the whole process, in MiB.
    pub max_fs_write_mb: Option<u64>,
}

impl Limits {
    /// No `[budget]`: nothing is limited.
    pub const NONE: Limits = Limits {
        max_memory_mb: None,
        max_cpu_secs: None,
        max_run_time_secs: None,
        max_fs_write_mb: None,
    };

    /// The effective deadline: `min(requested, max_run_time_secs)`; `0` never clamps.
    #[must_use]
    pub fn clamp_timeout(&self, requested: Duration) -> Duration {
        match self.max_run_time_secs.filter(|s| *s > 0) {
            Some(cap) => requested.min(Duration::from_secs(cap)),
            None => requested,
        }
    }

    /// The fs-write cap in bytes (`None` or `0` = unlimited; saturates).
    #[must_use]
    pub fn fs_write_cap_bytes(&self) -> Option<u64> {
        self.max_fs_write_mb
            .filter(|mb| *mb > 0)
            .map(|mb| mb.saturating_mul(1024 * 1024))
    }
}
