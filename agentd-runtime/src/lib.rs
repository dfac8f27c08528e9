//! Runtime library linked into every binary `agentd build` produces.
//!
//! Generated code is wiring only: `static` node configs, the graph tables of
//! [`graph`], and an implementation of [`Workflow`] whose `exec` is a `match`
//! calling the node functions of [`nodes`]. Everything with behaviour — the
//! walk ([`engine`]), path resolution ([`context`]), templates
//! ([`template`]), policy ([`policy`]), outcomes ([`outcome`]) and the
//! command line ([`cli`]) — lives here, unit-tested.
//!
//! Invariants: the runtime never parses workflow TOML; a node kind that is
//! not compiled in cannot run (it answers `capability unavailable`, or a
//! stub under a test harness); input from outside the process never causes
//! a panic.
//!
//! # Cargo features
//!
//! | feature | node kinds |
//! |---|---|
//! | *(always)* | `condition`, `switch`, `merge`, `fail`, `terminate`, `respond`, `call`, `parallel`, `map` |
//! | *(always)* | `read_file`, `write_file`, `create_dir`, `read_env`, `parse_json`, `template_render`, `json_select`, `diff_compute` (std only; linked only when a graph calls them. The features `fs`, `env` and `data` still exist and enable nothing) |
//! | `http` | `http_request` (ureq + rustls, ring provider, roots of [`tls_roots`]) |
//! | `shell` | `shell_run` (Unix; process-group kill through libc) |
//! | `secrets-exec` | `[[secrets]] source = "command"` (a program's stdout, no shell, cached until reload) |
//! | `oauth` | OAuth 2.0 client credentials tokens and their cache ([`oauth`]; ureq + rustls, roots of [`tls_roots`]) |
//! | `secrets-oauth2` | `[[secrets]] source = "oauth2"` (over `oauth`) |
//! | *(always)* | `[[secrets]]` resolution ([`secrets`]) and W3C `traceparent` ([`traceparent`]) |
//! | *(always)* | `pause_for_approval`, checkpoints, resume and crash recovery in `--state-dir` ([`checkpoint`]) |
//! | *(always)* | logging, `workflow.run`/`node.execute` spans, the `[logging.audit]` sink and redaction ([`obs`]); `[budget]` limits incl. `max_fs_write_mb` ([`budget`]) |
//! | `llm` | `llm_infer`, `agent_loop`, the backend registry, mock and JSON-RPC transports ([`intel`]) |
//! | `llm-remote` | `[[intelligence.backends]]` providers (`openai`, `openai-compatible`, `anthropic`, `gemini`) over ureq + rustls |
//! | `schema` | JSON Schema validation of `llm_infer` output |
//! | `mcp` | `call_mcp_tool`, `read_mcp_resource`, the stdio MCP client ([`mcp`]) |
//! | `policy-file` | `--policy FILE` / `AGENTD_POLICY` override (module `policy_file`); `agentd build --policy-overrides` only (without it `--policy` refuses to start) |
//! | `signing` | Ed25519 check of signed policy overrides (built with signing required) |
//! | `rego` | `[policy.rego]` evaluated by regorus after the static lists (module `policy::rego`); only for workflows that declare it |
//! | `serve` (auth part) | route auth with bearer and basic ([`serve::auth`]), hot reload ([`serve::reload`]: SIGHUP, `--reload-file`) |
//! | `auth-hmac` | `[auth.hmac.*]`: HMAC-SHA256 signatures, optional timestamp window (hmac + sha2) |
//! | `auth-oidc` | `[auth.oidc.*]`: JWT bearer tokens against a pinned JWKS (jsonwebtoken 9 on ring) |
//! | `tls` | `[server.tls]`: rustls server config, mTLS peer identity (tokio-rustls, x509-parser) |
//! | `otel` | `[logging.otel]`: OTLP/gRPC span export over tonic (module `obs::otel`) |
//! | `otel-tls` | an `https://` OTLP endpoint: tonic's rustls client (ring), webpki roots or `AGENTD_HTTP_CA_FILE` |
//! | `macros` | re-exports the `agentd!` macro (embedding; see `docs/embedding.md`); never in `agentd build` binaries |
//! | `sandbox` | the kernel sandbox ([`sandbox`]): Landlock + seccomp from the policy and the compiled-in features (Linux) |
//! | `fuzzing` | `#[doc(hidden)]` entry points for the cargo-fuzz targets in `fuzz/` (`context::fuzz_resolve`); never in `agentd build` binaries |
//!
//! # What generated code looks like
//!
//! `tests/golden/*.rs` (the generated modules of the workflows in
//! `workflows/`) and `agentd-runtime/tests/hand_wired.rs` (a workflow wired by
//! hand against the same items).

// The feature-free core, re-exported under the names generated code and
// embedders use (ARCHITECTURE.md, "The core and the facade").
pub use agentd_core::{
    budget, clock, context, engine, error, graph, limits, obs, outcome, policy, template,
    traceparent, workflow,
};

pub mod checkpoint;
pub mod cli;
pub mod embed;
#[cfg(feature = "harness")]
pub mod harness;
#[cfg(feature = "llm")]
pub mod intel;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod nodes;
#[cfg(feature = "oauth")]
pub mod oauth;
#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "policy-file")]
pub mod policy_file;
#[cfg(feature = "rego")]
pub mod rego;
pub mod sandbox;
pub mod secrets;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(any(
    feature = "http",
    feature = "llm-remote",
    feature = "oauth",
    feature = "mcp-http"
))]
pub mod tls_roots;

pub use context::{Cx, PolicyMode, Step};
pub use engine::{Engine, RunOptions, Trigger};
pub use error::Error;
pub use graph::{
    BuildInfo, CtxPath, EdgeMeta, GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, Retry, RetryOn,
    Slot, Source, SourceFile, StartMeta,
};
#[cfg(feature = "llm")]
pub use intel::{IntelExt, WithIntel};
#[cfg(feature = "mcp")]
pub use mcp::{McpExt, WithMcp};
pub use outcome::{HttpResponse, Metrics, Outcome, RunReport, StepKind, Trace, TraceEntry};
pub use policy::Policy;
pub use secrets::SecretsExt;
pub use template::{Seg, Template};
pub use workflow::{DynWorkflow, Hooks, Workflow, WorkflowDef};

/// What this runtime's compiled features lend the core (see [`Hooks`]):
/// generated code names it as its `Workflow::HOOKS`.
pub static HOOKS: Hooks = Hooks {
    #[cfg(feature = "llm")]
    llm: Some(intel::engine_state),
    #[cfg(not(feature = "llm"))]
    llm: None,
    #[cfg(feature = "mcp")]
    mcp: Some(mcp::engine_state),
    #[cfg(not(feature = "mcp"))]
    mcp: None,
};

/// `agentd!("workflows/x.toml")`: compile a workflow into this crate (see
/// `docs/embedding.md`). Behind the `macros` feature, so binaries built by
/// `agentd build` never compile the compiler.
#[cfg(feature = "macros")]
pub use agentd_macros::agentd;
/// Re-exported so generated code and handler signatures name the same
/// `serde_json::Value` the runtime uses.
pub use serde_json;
