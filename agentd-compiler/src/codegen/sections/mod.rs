//! One lowerer per workflow section: each turns a validated section of the root
//! workflow into the items of the generated `Workflow` impl it owns, and names the
//! runtime features those items need. Never validates and never reads files the
//! validator has not already read.

pub mod auth;
pub mod budget;
pub mod llm;
pub mod logging;
pub mod mcp;
pub mod sandbox;
pub mod secrets;
pub mod serve;
