//! `agentd!("workflows/x.toml")` — compiles a dialect-1 workflow inside a user's crate.
//!
//! This crate will own only the proc-macro shell: it reads the workflow path literal,
//! hands the file to [`agentd_compiler`] (the same generator `agentd emit` uses) and turns
//! every diagnostic into a `compile_error!` on the literal's span. It holds no logic of
//! its own. Until the embedding issue lands it exports nothing.
