//! Files a workflow names besides other workflows, read and compiled at build time
//! so that a built binary never reads them: `[policy.rego]` ([`rego`]) and route
//! `input_schema`s ([`input_schema`]).
//!
//! Each resolves a path one way for both the validator (which reports the problem)
//! and the IR (which bakes the result), so the two cannot disagree. Never reports:
//! it returns why, and `validate` turns that into a diagnostic.

pub mod input_schema;
pub mod rego;
