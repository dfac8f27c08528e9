//! Durable runs: the core's checkpoint format, the `Checkpoints` trait and
//! `StateDir` (re-exported), and with feature `fleet` the store every replica
//! of a fleet shares, `RedisCheckpoints` (ARCHITECTURE.md, "The core and the
//! facade").

pub use agentd_core::checkpoint::*;

#[cfg(feature = "fleet")]
mod redis;

#[cfg(feature = "fleet")]
pub use redis::{RUN_LEASE, RedisCheckpoints};
