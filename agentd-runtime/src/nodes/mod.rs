//! Node functions: one module per node family.
//!
//! The always-compiled families (control, compose, data, env, fs, rust) and
//! the shared fallbacks live in the feature-free core and are re-exported
//! here (ARCHITECTURE.md, "The core and the facade"); the families that bring
//! code or dependencies of their own are declared here, each behind its Cargo
//! feature. Generated `exec` calls exactly one node function per match arm.

pub use agentd_core::nodes::*;

#[cfg(feature = "llm")]
pub mod agent_loop;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "llm")]
pub mod llm;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(all(feature = "shell", unix))]
pub mod shell;
