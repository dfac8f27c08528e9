//! Node functions of the always-compiled families: one module per family
//! (the families behind Cargo features are the runtime facade's, in
//! `agentd_runtime::nodes`, which re-exports these beside them).
//!
//! Owns the behaviour of every node kind the runtime implements. Each kind
//! is a plain function over the run context ([`Cx`]) and the node's baked
//! `&'static` config struct, returning a [`Step`] or a hard [`Error`] whose
//! wording is the dialect's (docs/dialect.md §7). Generated `exec` calls exactly one of
//! these per match arm.
//!
//! Node functions must never route (the engine picks edges), never retry,
//! never check the deadline, and never touch the world without first passing
//! the policy gate and honouring dry-run the way docs/dialect.md §7 says for their kind.

use serde_json::json;

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::{GraphId, NodeIdx};

pub mod compose;
pub mod control;
pub mod data;
pub mod env;
pub mod fs;
pub mod rust;

/// The node function for a kind this runtime does not implement or the
/// binary was built without (today: `shell_run` under a test harness,
/// which dialect 1 runs without `tools-shell`; the match arm of
/// `pause_for_approval`, which the engine handles before dispatch).
///
/// Under a test harness ([`crate::RunOptions::stub_unavailable`]) it answers
/// `{"stub": "<kind>"}` with no branch; otherwise it is the hard
/// `capability unavailable` error of docs/dialect.md §7 (`capability unavailable`).
///
/// # Errors
///
/// [`Error::CapabilityUnavailable`] unless stubs were requested.
pub fn unavailable(cx: &Cx<'_>) -> Result<Step, Error> {
    let kind = cx.kind().as_str();
    if cx.stub_unavailable() {
        return Ok(Step::value(json!({ "stub": kind })));
    }
    Err(Error::CapabilityUnavailable(format!(
        "no handler registered for node kind `{kind}` (node `{}`); \
         this binary was built without that capability",
        cx.node_id()
    )))
}

/// The fallback arm of a generated `exec` match: a `(graph, node)` pair the
/// generated tables do not know. Unreachable when the tables are consistent;
/// an error rather than a panic when they are not.
///
/// # Errors
///
/// Always [`Error::Config`].
pub fn unknown_node(g: GraphId, node: NodeIdx) -> Result<Step, Error> {
    Err(Error::Config(format!(
        "no node function for graph {} node {}",
        g.0, node.0
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::TestRun;
    use serde_json::Value;

    #[test]
    fn unavailable_kinds_error_by_default() {
        let mut run = TestRun::new(Value::Null);
        let err = unavailable(&run.cx()).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "capability unavailable: no handler registered for node kind `merge` (node `me`); \
                 this binary was built without that capability"
            )
        );
    }

    #[test]
    fn unavailable_kinds_stub_under_a_harness() {
        let mut run = TestRun::new(Value::Null);
        run.shared.stub_unavailable = true;
        assert_eq!(
            unavailable(&run.cx()).ok(),
            Some(Step::value(json!({"stub": "merge"})))
        );
    }

    #[test]
    fn unknown_node_is_a_configuration_error() {
        assert_eq!(
            unknown_node(GraphId(1), NodeIdx(9))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("configuration error: no node function for graph 1 node 9")
        );
    }
}
