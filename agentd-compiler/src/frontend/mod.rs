//! Front ends besides the `agentd` CLI: the `agentd!` macro ([`embed`]), the
//! language server ([`lsp`]), `agentd graph` ([`graph`]), `agentd init` ([`init`]),
//! `agentd test` ([`testing`]) and `agentd check --explain-sandbox` ([`sandbox`]).
//!
//! Each calls the pipeline and renders what it returns; none holds a check or a
//! lowering of its own that `agentd build` would not apply.

pub mod embed;
pub mod graph;
pub mod init;
pub mod lsp;
pub mod sandbox;
pub mod testing;
