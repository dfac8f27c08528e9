//! The feature-free core of the agentd runtime: the engine, a run's context,
//! the definitions generated code bakes, the policy, observability,
//! checkpoints, templates and the always-compiled node families.
//!
//! **Not a public API.** Generated code and embedders use `agentd-runtime`,
//! which re-exports every module here under its own name and adds the
//! subsystems behind Cargo features (LLM, MCP, HTTP, shell, serve mode, the
//! sandbox's application, OTLP export, Rego). This crate has no features of
//! its own (`fuzzing` and `testing` are for this workspace's fuzz targets and
//! tests only), so `agentd build` compiles it once per cache, whatever a
//! workflow's feature set: a new feature set recompiles only the facade
//! (ARCHITECTURE.md, "The core and the facade"). Items are `pub` so the
//! facade can reach them, not because they are stable.
//!
//! Invariant: nothing here names a feature subsystem's type. Where the core
//! needs one it holds it behind a seam the facade fills: [`workflow::Hooks`]
//! (LLM and MCP engine state), [`policy::rego::RegoInterpreter`] (the Rego
//! interpreter) and [`obs::export::SpanExporter`] (OTLP export).

pub mod budget;
pub mod checkpoint;
pub mod clock;
pub mod context;
pub mod engine;
pub mod error;
pub mod graph;
pub mod limits;
pub mod nodes;
pub mod obs;
pub mod outcome;
pub mod policy;
/// The sandbox planner (pure; the runtime facade applies the plan).
pub mod sandbox {
    pub mod plan;
}
pub mod template;
pub mod traceparent;
pub mod workflow;

pub use context::{Cx, PolicyMode, Step};
pub use engine::{Engine, RunOptions, Trigger};
pub use error::Error;
pub use outcome::{HttpResponse, Metrics, Outcome, RunReport, StepKind, Trace, TraceEntry};
pub use policy::Policy;
pub use workflow::{DynWorkflow, Hooks, Workflow, WorkflowDef};
