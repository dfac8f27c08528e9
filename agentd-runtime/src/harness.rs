//! The conformance/fixture harness that `agentd test` compiles scenarios into.
//!
//! Owns running one baked test case (docs/cli.md "agentd test": trials, trigger,
//! policy choice, stub fallback) and comparing the result with its expectations.
//! Generated harness code only declares [`Case`] statics and calls [`run_case`]; it
//! never decides pass or fail itself. Behind the `harness` feature, so shipped
//! workflow binaries never contain it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::PolicyMode;
use crate::engine::{Engine, RunOptions, Trigger};
use crate::graph::Source;
use crate::intel::WithIntel as _;
#[cfg(feature = "mcp")]
use crate::mcp::WithMcp as _;
use crate::outcome::{Outcome, RunReport};
use crate::policy::Policy;
use crate::workflow::DynWorkflow;

/// Which policy a case runs under.
#[derive(Debug, Clone, Copy)]
pub enum CasePolicy {
    /// The workflow's own `[policy]` (scenarios without a `[policy]` table).
    Baked,
    /// Allow everything (fixtures ignore the workflow's policy).
    AllowAll,
    /// The scenario's `[policy]` table.
    Override(&'static Policy),
}

/// What a case expects; every field is optional (docs/cli.md "agentd test" `[expected]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected {
    pub status: Option<&'static str>,
    pub last_node: Option<&'static str>,
    pub reason_contains: Option<&'static str>,
    pub path: Option<&'static [&'static str]>,
    pub path_exact: bool,
    pub max_llm_calls: Option<u64>,
    pub max_total_tokens: Option<u64>,
    pub min_policy_denials: Option<u64>,
}

/// One compiled scenario or fixture.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Report name.
    pub name: &'static str,
    /// Start node name (already defaulted by the compiler).
    pub start: &'static str,
    /// `trigger.kind`.
    pub trigger_kind: Source,
    /// The payload as JSON text.
    pub payload: &'static str,
    pub policy: CasePolicy,
    pub timeout_secs: u64,
    pub dry_run: bool,
    /// pass^k trials (0 behaves as 1).
    pub trials: u32,
    /// Tolerated pass fraction; `None` means every trial must pass.
    pub min_pass_rate: Option<f64>,
    pub expected: Expected,
    /// The scripted LLM: `[[intel.turns]]` (or fixture `[mocks] intel`) and
    /// `[faults] intel_error_on_call`.
    pub intel: CaseIntel,
    /// The scripted MCP servers: `[mocks] mcp_tools` / `mcp_resources`.
    pub mcp: CaseMcp,
}

/// The `[mocks]` MCP results of a case: tool name or exact URI → the JSON
/// text of each result, answered in order (docs/cli.md "agentd test").
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseMcp {
    /// `mcp_tools`: `tools/call` results in MCP wire casing.
    pub tools: &'static [(&'static str, &'static [&'static str])],
    /// `mcp_resources`: `resources/read` results.
    pub resources: &'static [(&'static str, &'static [&'static str])],
}

impl CaseMcp {
    /// Fresh mock servers for one trial of workflow `W`, or an empty
    /// registry (the MCP kinds then answer the stub) when the case has no
    /// MCP mocks. One scripted server answers under every name the
    /// workflow declares in `[[mcp_servers]]` (with that server's
    /// allowlists), or under `default` (gated by `[policy.mcp]`) when it
    /// declares none.
    ///
    /// # Errors
    ///
    /// A canned result that is not JSON.
    #[cfg(feature = "mcp")]
    pub fn for_trial(&self, def: &crate::workflow::WorkflowDef) -> Result<crate::mcp::Mcp, String> {
        use crate::mcp::{
            Allowlists, DEFAULT_CALL_TIMEOUT, DEFAULT_SERVER, Mcp, McpServer, ServerEntry,
            mock::MockServer,
        };
        if self.tools.is_empty() && self.resources.is_empty() {
            return Ok(Mcp::new(Vec::new(), DEFAULT_CALL_TIMEOUT));
        }
        let server: Arc<dyn McpServer> =
            Arc::new(MockServer::from_canned(self.tools, self.resources)?);
        let entries = if def.mcp_servers.is_empty() {
            vec![ServerEntry {
                name: DEFAULT_SERVER.to_owned(),
                allow: Allowlists::PolicyMcp,
                server,
            }]
        } else {
            def.mcp_servers
                .iter()
                .map(|def| ServerEntry {
                    name: def.name.to_owned(),
                    allow: Allowlists::Lists {
                        tools: def.allow_tools,
                        resources: def.allow_resources,
                    },
                    server: Arc::clone(&server),
                })
                .collect()
        };
        Ok(Mcp::new(entries, DEFAULT_CALL_TIMEOUT))
    }
}

/// The mock backend of a case (docs/cli.md "agentd test").
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseIntel {
    /// One entry per successive LLM call. Empty: no backend is registered,
    /// so `llm_infer` answers the stub.
    pub turns: &'static [crate::intel::mock::MockTurn],
    /// 1-based call that fails with an injected transport fault.
    pub fault_on_call: Option<u32>,
}

impl CaseIntel {
    /// A fresh registry for trial `trial` (0-based) and an unbounded budget.
    /// The one scripted backend answers as `default` and under every name
    /// in `aliases` (the workflow's `[[intelligence.backends]]`), so the
    /// turns drive `llm_infer` and `agent_loop` whatever backend they name,
    /// in call order.
    #[must_use]
    pub fn for_trial(&self, trial: u32, aliases: &[&str]) -> crate::intel::Intel {
        use crate::intel::{Backend, Backends, Intel, TokenBudget, mock::MockBackend};
        let mut backends = Backends::new();
        if !self.turns.is_empty() {
            let mock: Arc<dyn Backend> = Arc::new(MockBackend::new(
                self.turns,
                u64::from(trial),
                self.fault_on_call,
            ));
            backends.insert(crate::intel::DEFAULT_BACKEND, Arc::clone(&mock));
            for name in aliases {
                backends.insert(*name, Arc::clone(&mock));
            }
        }
        Intel::new(backends, TokenBudget::new(None))
    }
}

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub passed: bool,
    pub trials_passed: u32,
    pub trials: u32,
    /// Why the first failing trial failed (empty when all passed).
    pub detail: String,
}

/// Run every trial of `case` against workflow `w`.
pub fn run_case(w: &dyn DynWorkflow, case: &Case) -> CaseResult {
    let def = w.def();
    let payload: Value = match serde_json::from_str(case.payload) {
        Ok(v) => v,
        Err(e) => {
            return CaseResult {
                passed: false,
                trials_passed: 0,
                trials: case.trials.max(1),
                detail: format!("payload is not JSON: {e}"),
            };
        }
    };
    let policy = match case.policy {
        CasePolicy::Baked => PolicyMode::Baked,
        CasePolicy::AllowAll => PolicyMode::AllowAll,
        CasePolicy::Override(p) => PolicyMode::Override(Arc::new(p.clone())),
    };
    let options = RunOptions {
        dry_run: case.dry_run,
        timeout: Duration::from_secs(case.timeout_secs.max(1)),
        policy,
        stub_unavailable: true,
        record_trace: true,
        // docs/cli.md "agentd test": no state dir, so `pause_for_approval` is `errored`.
        checkpoints: None,
        checkpoint_each_node: false,
    };
    let trials = case.trials.max(1);
    let mut passed = 0;
    let mut detail = String::new();
    for trial in 0..trials {
        // A fresh mock per trial: its queue and variant choice are per trial.
        let aliases: Vec<&str> = def.backends.iter().map(|b| b.name).collect();
        let engine =
            Engine::new(w, options.clone()).with_intel(case.intel.for_trial(trial, &aliases));
        #[cfg(feature = "mcp")]
        let engine = match case.mcp.for_trial(def) {
            Ok(mcp) => engine.with_mcp(mcp),
            Err(why) => {
                return CaseResult {
                    passed: false,
                    trials_passed: 0,
                    trials,
                    detail: why,
                };
            }
        };
        let report = engine.run(
            case.start,
            Trigger {
                kind: case.trigger_kind,
                input: payload.clone(),
                traceparent: None,
            },
        );
        match check(&case.expected, &report) {
            Ok(()) => passed += 1,
            Err(why) if detail.is_empty() => detail = why,
            Err(_) => {}
        }
    }
    let ok = match case.min_pass_rate {
        Some(rate) => f64::from(passed) / f64::from(trials) >= rate,
        None => passed == trials,
    };
    CaseResult {
        passed: ok,
        trials_passed: passed,
        trials,
        detail,
    }
}

/// Compare one run with the expectations; `Err` says what differed.
pub fn check(expected: &Expected, report: &RunReport) -> Result<(), String> {
    let (status, last_node, reason): (&str, Option<&str>, Option<String>) = match &report.outcome {
        Ok(o) => {
            let reason = match o {
                Outcome::Failed { reason, .. } => Some(reason.to_string()),
                _ => None,
            };
            (o.status(), o.last_node(), reason)
        }
        Err(e) => ("errored", None, Some(e.to_string())),
    };
    if let Some(want) = expected.status
        && want != status
    {
        let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        return Err(format!("status: expected `{want}`, got `{status}`{why}"));
    }
    if let Some(want) = expected.last_node
        && Some(want) != last_node
    {
        return Err(format!(
            "last_node: expected `{want}`, got {}",
            last_node.map_or("none".to_string(), |n| format!("`{n}`"))
        ));
    }
    if let Some(want) = expected.reason_contains {
        match &reason {
            Some(r) if r.contains(want) => {}
            Some(r) => return Err(format!("reason `{r}` does not contain `{want}`")),
            None => {
                return Err(format!(
                    "expected a reason containing `{want}`, run was `{status}`"
                ));
            }
        }
    }
    if let Some(want) = expected.path {
        let got = if report.outcome.is_ok() {
            report.trace.path()
        } else {
            Vec::new()
        };
        let ok = if expected.path_exact {
            got == want
        } else {
            got.len() >= want.len() && got[..want.len()] == *want
        };
        if !ok {
            return Err(format!(
                "path: expected {}{want:?}, got {got:?}",
                if expected.path_exact {
                    "exactly "
                } else {
                    "prefix "
                }
            ));
        }
    }
    let m = &report.metrics;
    if let Some(max) = expected.max_llm_calls
        && m.llm_calls > max
    {
        return Err(format!(
            "llm calls {} exceed max_llm_calls {max}",
            m.llm_calls
        ));
    }
    if let Some(max) = expected.max_total_tokens
        && m.llm_tokens > max
    {
        return Err(format!(
            "tokens {} exceed max_total_tokens {max}",
            m.llm_tokens
        ));
    }
    if let Some(min) = expected.min_policy_denials
        && m.policy_denials < min
    {
        return Err(format!(
            "policy denials {} below min_policy_denials {min}",
            m.policy_denials
        ));
    }
    Ok(())
}

/// Print one result line and return whether it passed.
pub fn report_line(case: &Case, result: &CaseResult) -> bool {
    let trials = if result.trials > 1 {
        format!(" ({}/{} trials)", result.trials_passed, result.trials)
    } else {
        String::new()
    };
    if result.passed {
        println!("PASS  {}{trials}", case.name);
    } else {
        println!("FAIL  {}{trials}: {}", case.name, result.detail);
    }
    result.passed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::outcome::{Metrics, Trace};

    const NOTHING: Expected = Expected {
        status: None,
        last_node: None,
        reason_contains: None,
        path: None,
        path_exact: false,
        max_llm_calls: None,
        max_total_tokens: None,
        min_policy_denials: None,
    };

    fn completed(metrics: Metrics) -> RunReport {
        RunReport {
            outcome: Ok(Outcome::Completed {
                final_value: Value::Null,
                last_node: Some("done"),
                http_response: None,
            }),
            trace: Trace::default(),
            metrics,
            execution_id: "exec-test".to_owned(),
        }
    }

    const SPENT: Metrics = Metrics {
        node_executions: 4,
        node_failures: 0,
        policy_denials: 1,
        llm_calls: 3,
        llm_tokens: 120,
    };

    #[test]
    fn cost_caps_hold_at_their_bound_and_fail_past_it() {
        let report = completed(SPENT);
        let at_bounds = Expected {
            max_llm_calls: Some(3),
            max_total_tokens: Some(120),
            min_policy_denials: Some(1),
            ..NOTHING
        };
        assert_eq!(check(&at_bounds, &report), Ok(()));

        let calls = Expected {
            max_llm_calls: Some(2),
            ..NOTHING
        };
        assert_eq!(
            check(&calls, &report),
            Err("llm calls 3 exceed max_llm_calls 2".to_owned())
        );
        let tokens = Expected {
            max_total_tokens: Some(119),
            ..NOTHING
        };
        assert_eq!(
            check(&tokens, &report),
            Err("tokens 120 exceed max_total_tokens 119".to_owned())
        );
        let denials = Expected {
            min_policy_denials: Some(2),
            ..NOTHING
        };
        assert_eq!(
            check(&denials, &report),
            Err("policy denials 1 below min_policy_denials 2".to_owned())
        );
    }

    #[test]
    fn an_errored_run_fails_a_completed_expectation_and_has_no_last_node() {
        let report = RunReport {
            outcome: Err(Error::tool("x", "boom")),
            ..completed(SPENT)
        };
        let want = Expected {
            status: Some("completed"),
            ..NOTHING
        };
        let why = check(&want, &report).expect_err("errored is not completed");
        assert!(why.contains("got `errored`"), "{why}");
        let want = Expected {
            last_node: Some("done"),
            ..NOTHING
        };
        assert_eq!(
            check(&want, &report),
            Err("last_node: expected `done`, got none".to_owned())
        );
    }
}
