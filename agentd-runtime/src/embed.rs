//! Calling a compiled workflow as a library: the behaviour behind the typed
//! handle `agentd!` generates (`Triage::run(input)`, `Triage::run_with(..)`).
//!
//! Owns [`RunWith`] (the options of one embedded run), [`run`] and
//! [`run_with`], for any [`Workflow`], plus the feature guards
//! (`__agentd_require_<feature>!`) that turn a missing runtime feature into
//! one clear compile error. Generated code only forwards to these functions.
//!
//! This module must never parse workflow TOML or print anything: an
//! embedding program decides what to do with the outcome.

use std::time::Duration;

use serde_json::Value;

use crate::cli::pick_start;
use crate::context::PolicyMode;
use crate::engine::{Engine, RunOptions, Trigger};
use crate::error::Error;
use crate::graph::Source;
use crate::outcome::{Metrics, Outcome, RunReport, Trace};
use crate::workflow::DynWorkflow;
#[cfg(doc)]
use crate::workflow::Workflow;

/// Options of one embedded run. Start from [`RunWith::input`] and adjust.
#[derive(Clone, Debug)]
pub struct RunWith {
    /// The trigger input (`null` for none).
    pub input: Value,
    /// The start node to run; `None` picks it like the CLI does (the only
    /// `manual` start, else the only start).
    pub start: Option<String>,
    /// The trigger kind (`trigger.kind`); `manual` by default.
    pub trigger: Source,
    /// Skip side effects (each node returns its dry-run placeholder).
    pub dry_run: bool,
    /// Run deadline (default 120 s, like the CLI).
    pub timeout: Duration,
    /// Which policy gates the run (default: the workflow's baked `[policy]`).
    pub policy: PolicyMode,
    /// Record the trace of the top-level walk (default on).
    pub record_trace: bool,
}

impl RunWith {
    /// Default options for a run on `input`.
    #[must_use]
    pub fn input(input: Value) -> Self {
        let defaults = RunOptions::default();
        Self {
            input,
            start: None,
            trigger: Source::Manual,
            dry_run: defaults.dry_run,
            timeout: defaults.timeout,
            policy: defaults.policy,
            record_trace: defaults.record_trace,
        }
    }

    /// Run the start named `start`.
    #[must_use]
    pub fn start(mut self, start: impl Into<String>) -> Self {
        self.start = Some(start.into());
        self
    }

    /// Skip side effects.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Set the run deadline.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Set the policy mode.
    #[must_use]
    pub fn policy(mut self, policy: PolicyMode) -> Self {
        self.policy = policy;
        self
    }

    /// Set the trigger kind.
    #[must_use]
    pub fn trigger(mut self, trigger: Source) -> Self {
        self.trigger = trigger;
        self
    }
}

impl Default for RunWith {
    fn default() -> Self {
        Self::input(Value::Null)
    }
}

/// Run `workflow` once on `input` with default options and return its
/// outcome (`completed`, `failed`, `timed_out` or `paused`).
///
/// # Errors
///
/// The run's hard error, or [`Error::Workflow`] when no start node can be
/// picked automatically (use [`run_with`] and [`RunWith::start`]).
pub fn run(workflow: &dyn DynWorkflow, input: Value) -> Result<Outcome, Error> {
    let mut options = RunWith::input(input);
    options.record_trace = false;
    run_with(workflow, options).outcome
}

/// Run `workflow` once with `options`; the full report (outcome, trace,
/// metrics, execution id).
pub fn run_with(workflow: &dyn DynWorkflow, options: RunWith) -> RunReport {
    let def = workflow.def();
    let start = match options.start {
        Some(start) => start,
        None => match pick_start(def) {
            Ok(start) => start.to_owned(),
            Err(reason) => return refused(Error::workflow(def.info.workflow, reason)),
        },
    };
    let engine = Engine::new(
        workflow,
        RunOptions {
            dry_run: options.dry_run,
            timeout: options.timeout,
            policy: options.policy,
            stub_unavailable: false,
            record_trace: options.record_trace,
            ..RunOptions::default()
        },
    );
    engine.run(
        &start,
        Trigger {
            kind: options.trigger,
            input: options.input,
            traceparent: None,
        },
    )
}

/// The report of a run that never started.
fn refused(err: Error) -> RunReport {
    RunReport {
        outcome: Err(err),
        trace: Trace::default(),
        metrics: Metrics::default(),
        execution_id: String::new(),
    }
}

// The contract guard. `agentd!` emits
// `::agentd_runtime::__agentd_require_contract!(N, "name");` with the codegen
// contract its compiler generates for (ARCHITECTURE.md, "The codegen contract").
// The number this runtime implements (its Cargo.toml's `[package.metadata.agentd]
// codegen-contract`; a test keeps the two equal) expands to nothing; any other is
// one compile error, reported during expansion and naming both numbers, before rustc
// complains about whatever the generated code calls that this runtime lacks. A
// runtime older than the guard has no such macro, and rustc says so.

#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_contract {
    (2, $workflow:literal) => {};
    ($other:literal, $workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "`: agentd! generates code for codegen contract ",
            ::core::stringify!($other),
            ", but this agentd-runtime implements contract 2; ",
            "use agentd-macros and agentd-runtime of the same release"
        ));
    };
}

// Feature guards. `agentd!` emits
// `::agentd_runtime::__agentd_require_feature!("fs", "name");` for every runtime
// feature the workflow needs. With the feature on, the guard expands to
// nothing; without it, to one compile error that says what to enable, reported
// during expansion, before rustc complains about the missing `nodes::<family>`
// module. A feature this runtime has no guard for expands to nothing (rustc's
// own error remains). The per-feature macros are written out because a
// macro-generated `#[macro_export]` macro would need `$$` for its own
// metavariables.

#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_feature {
    ("llm", $workflow:literal) => {
        $crate::__agentd_require_llm!($workflow);
    };
    ("llm-remote", $workflow:literal) => {
        $crate::__agentd_require_llm_remote!($workflow);
    };
    ("schema", $workflow:literal) => {
        $crate::__agentd_require_schema!($workflow);
    };
    ("http", $workflow:literal) => {
        $crate::__agentd_require_http!($workflow);
    };
    ("shell", $workflow:literal) => {
        $crate::__agentd_require_shell!($workflow);
    };
    ("serve", $workflow:literal) => {
        $crate::__agentd_require_serve!($workflow);
    };
    ("schedule-cron", $workflow:literal) => {
        $crate::__agentd_require_schedule_cron!($workflow);
    };
    ("fs-watch", $workflow:literal) => {
        $crate::__agentd_require_fs_watch!($workflow);
    };
    // Features only the CLI of a built binary needs (`policy-file`, `signing`), and
    // any this runtime does not know.
    ($other:literal, $workflow:literal) => {};
}

#[cfg(feature = "llm")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_llm {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "llm"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_llm {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `llm`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"llm\"] }"
        ));
    };
}

#[cfg(feature = "llm-remote")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_llm_remote {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "llm-remote"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_llm_remote {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `llm-remote`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"llm-remote\"] }"
        ));
    };
}

#[cfg(feature = "schema")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_schema {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "schema"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_schema {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `schema`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"schema\"] }"
        ));
    };
}

#[cfg(feature = "http")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_http {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "http"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_http {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `http`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"http\"] }"
        ));
    };
}

#[cfg(feature = "shell")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_shell {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "shell"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_shell {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `shell`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"shell\"] }"
        ));
    };
}

#[cfg(feature = "serve")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_serve {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "serve"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_serve {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `serve`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"serve\"] }"
        ));
    };
}

#[cfg(feature = "schedule-cron")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_schedule_cron {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "schedule-cron"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_schedule_cron {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `schedule-cron`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"schedule-cron\"] }"
        ));
    };
}

#[cfg(feature = "fs-watch")]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_fs_watch {
    ($workflow:literal) => {};
}

#[cfg(not(feature = "fs-watch"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __agentd_require_fs_watch {
    ($workflow:literal) => {
        ::core::compile_error!(::core::concat!(
            "workflow `",
            $workflow,
            "` needs agentd-runtime feature `fs-watch`; enable it in Cargo.toml: ",
            "agentd-runtime = { features = [\"macros\", \"fs-watch\"] }"
        ));
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_with_defaults_match_the_cli() {
        let o = RunWith::input(Value::Bool(true));
        assert_eq!(o.input, Value::Bool(true));
        assert_eq!(o.start, None);
        assert_eq!(o.trigger, Source::Manual);
        assert!(!o.dry_run);
        assert_eq!(o.timeout, Duration::from_secs(120));
        assert!(matches!(o.policy, PolicyMode::Baked));
    }

    #[test]
    fn builder_methods_set_their_field() {
        let o = RunWith::default()
            .start("main")
            .dry_run(true)
            .timeout(Duration::from_secs(3))
            .trigger(Source::Event);
        assert_eq!(o.start.as_deref(), Some("main"));
        assert!(o.dry_run);
        assert_eq!(o.timeout, Duration::from_secs(3));
        assert_eq!(o.trigger, Source::Event);
    }

    /// The number `__agentd_require_contract!` accepts is the one this runtime's
    /// Cargo.toml declares (the one `agentd build` reads): bumping one without the
    /// other fails here.
    #[test]
    fn the_contract_guard_accepts_the_declared_contract() {
        let manifest = include_str!("../Cargo.toml");
        let declared = manifest
            .lines()
            .find_map(|line| line.trim().strip_prefix("codegen-contract = "))
            .expect("Cargo.toml declares `codegen-contract`");
        let source = include_str!("embed.rs");
        let arm = "macro_rules! __agentd_require_contract {\n    (";
        let at = source.find(arm).expect("the guard macro") + arm.len();
        let accepted = &source[at..].split_once(',').expect("the accepting arm").0;
        assert_eq!(accepted.trim(), declared.trim());
    }
}
