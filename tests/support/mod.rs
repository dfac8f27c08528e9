//! The one test-support module of the `agentd-compiler` test crates: every file
//! under `tests/` (and `agentd-compiler/tests/`) declares `mod support;` (or
//! `#[path = "../../tests/support/mod.rs"] mod support;`) and takes what it needs.
//!
//! Each helper lives here once:
//! - [`build`]: the workspace root, `agentd` with the shared build cache, builds;
//! - [`scratch`]: per-test directories under `CARGO_TARGET_TMPDIR`, removed when the
//!   test passes and kept for inspection when it fails;
//! - [`process`]: a workflow binary as a command with no stray `AGENTD_*`
//!   variables, and reading what a child process printed (text, JSON, exit code);
//! - [`served`]: a served workflow binary (banner address, stderr, signals) and
//!   `eventually`, the bounded poll;
//! - [`stub`]: small real HTTP(S) servers standing in for an upstream, and free ports;
//! - [`tls`], [`oidc`]: a test PKI with a rustls client, and an OIDC issuer;
//! - [`compat`]: where the dialect-1 compat corpus is.
//!
//! Nothing here asserts on behaviour under test: helpers panic only when the test
//! machinery itself fails (a build, a spawn, a bind), with the output that explains it.

// Each test crate uses its own subset.
#![allow(dead_code, unused_imports)]

pub mod build;
pub mod compat;
pub mod oidc;
pub mod process;
pub mod scratch;
pub mod served;
pub mod stub;
pub mod tls;

pub use build::{agentd, agentd_build, workspace};
pub use process::{exit_code, stdout_json, text, workflow_command};
pub use scratch::{Scratch, scratch};
pub use served::{Served, eventually};
pub use stub::free_port;
