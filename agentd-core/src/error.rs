//! The runtime's one error type.
//!
//! Owns [`Error`]: a variant per cause, whose `Display` strings are the
//! dialect's hard-error messages (docs/dialect.md §13 "Hard errors") byte for byte —
//! conformance scenarios match `reason_contains` against them, and the CLI
//! prints them after `agentd: `. This module must never format a message that
//! a variant does not own, and must never decide retry policy beyond the
//! per-variant facts ([`Error::is_transient`], [`Error::is_never_retried`]).

use std::borrow::Cow;
use std::time::Duration;

/// Every way a workflow run can abort (a "hard error", docs/dialect.md §13).
///
/// A hard error is not an outcome: the run has no `final_value`, the CLI
/// prints `agentd: <Display>` on stderr and exits 5, serve mode answers 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runtime itself was configured inconsistently (for example a
    /// generated graph table that does not match its node list).
    #[error("configuration error: {0}")]
    Config(String),

    /// A graph-level problem found while walking: unknown start, ambiguous
    /// entry, several matching out-edges, the safety cap, composite limits.
    #[error("workflow `{workflow}`: {reason}")]
    Workflow {
        /// `name` of the workflow (graph) that was running.
        workflow: Cow<'static, str>,
        /// What went wrong, in the dialect's wording.
        reason: String,
    },

    /// A policy allowlist denied a side effect. Never retried (docs/dialect.md §15).
    #[error("policy violation: {0}")]
    Policy(String),

    /// The node's kind is not compiled into this binary.
    #[error("capability unavailable: {0}")]
    CapabilityUnavailable(String),

    /// A node handler failed (missing path, I/O failure, bad JSON, ...).
    #[error("tool `{tool}` failed: {reason}")]
    Tool {
        /// The node kind that failed, e.g. `read_file`.
        tool: &'static str,
        /// Why, in the dialect's wording.
        reason: String,
    },

    /// An LLM backend call failed.
    #[error("intelligence call failed: {0}")]
    Intelligence(String),

    /// An MCP server call failed.
    #[error("mcp: {0}")]
    Mcp(String),

    /// Output failed validation (JSON or JSON Schema). Never retried.
    #[error("schema validation failed: {0}")]
    Schema(String),

    /// A retry backoff would have crossed the run deadline.
    #[error("timeout after {0:?}")]
    Timeout(Duration),

    /// An I/O failure outside any one node (for example starting a thread).
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),

    /// A JSON (de)serialisation failure outside any one node.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Whether `retry.on = "transient"` retries this error: exactly the
    /// `Tool`, `Intelligence` and `Mcp` variants (docs/dialect.md §10.1).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Tool { .. } | Self::Intelligence(_) | Self::Mcp(_)
        )
    }

    /// Whether no retry policy may repeat this error, even `on = "any"`.
    ///
    /// Our divergence from dialect 1 (docs/dialect.md §15): repeating a policy
    /// denial or a validation failure cannot change its result and only
    /// delays the error, so they are never retried.
    #[must_use]
    pub fn is_never_retried(&self) -> bool {
        matches!(self, Self::Policy(_) | Self::Schema(_))
    }

    /// Shorthand for [`Error::Workflow`].
    pub fn workflow(workflow: &'static str, reason: impl Into<String>) -> Self {
        Self::Workflow {
            workflow: Cow::Borrowed(workflow),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Tool`].
    pub fn tool(tool: &'static str, reason: impl Into<String>) -> Self {
        Self::Tool {
            tool,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_strings_match_the_dialect() {
        let cases: Vec<(Error, &str)> = vec![
            (Error::Config("x".into()), "configuration error: x"),
            (Error::workflow("wf", "boom"), "workflow `wf`: boom"),
            (Error::Policy("no".into()), "policy violation: no"),
            (
                Error::CapabilityUnavailable("k".into()),
                "capability unavailable: k",
            ),
            (
                Error::tool("read_file", "gone"),
                "tool `read_file` failed: gone",
            ),
            (
                Error::Intelligence("down".into()),
                "intelligence call failed: down",
            ),
            (Error::Mcp("eof".into()), "mcp: eof"),
            (Error::Schema("bad".into()), "schema validation failed: bad"),
            (
                Error::Timeout(Duration::from_millis(1500)),
                "timeout after 1.5s",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn transient_covers_tool_intelligence_and_mcp_only() {
        assert!(Error::tool("t", "r").is_transient());
        assert!(Error::Intelligence(String::new()).is_transient());
        assert!(Error::Mcp(String::new()).is_transient());
        assert!(!Error::Policy(String::new()).is_transient());
        assert!(!Error::Schema(String::new()).is_transient());
        assert!(!Error::workflow("w", "r").is_transient());
    }

    #[test]
    fn policy_and_schema_are_never_retried() {
        assert!(Error::Policy(String::new()).is_never_retried());
        assert!(Error::Schema(String::new()).is_never_retried());
        assert!(!Error::tool("t", "r").is_never_retried());
    }
}
