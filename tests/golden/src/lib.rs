//! Golden snapshots of `agentd emit workflows/<name>.toml`, one module per workflow.
//!
//! The snapshots live next to this crate (`tests/golden/<name>.rs`) and are checked
//! byte for byte by `tests/golden.rs` (re-bless with `AGENTD_BLESS=1 cargo test -p
//! agentd-compiler --test golden`). Including them here keeps them compiling against
//! the current runtime and under the workspace's clippy policy (ARCHITECTURE.md "Testing"); the
//! tests in `tests/run.rs` run each program once on the engine.

#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../approval-gate.rs"]
pub mod approval_gate;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../data-pipeline.rs"]
pub mod data_pipeline;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../hello.rs"]
pub mod hello;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../incident-agent.rs"]
pub mod incident_agent;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../llm-classifier.rs"]
pub mod llm_classifier;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../map-child.rs"]
pub mod map_child;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../map-fanout.rs"]
pub mod map_fanout;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../order-api.rs"]
pub mod order_api;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../secure-api.rs"]
pub mod secure_api;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../status-report.rs"]
pub mod status_report;
#[rustfmt::skip] // byte-exact `agentd emit` output, checked by tests/golden.rs
#[path = "../webhook-receiver.rs"]
pub mod webhook_receiver;
