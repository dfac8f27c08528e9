//! Custom Rust nodes (`type = "rust"`, an agentd extension of dialect 1).
//!
//! Owns the handler contract: a plain function
//! `fn(&Cx<'_>, &serde_json::Value) -> Result<NodeOutput, NodeError>` bound
//! in `agentd!(.., handlers = { name = path::to_fn })`. Generated `exec`
//! calls [`call`] with the bound function item, so the handler is
//! monomorphised into the match arm (static dispatch) and its signature is
//! checked by rustc at the binding.
//!
//! This module never decides routing (the engine follows the label the
//! handler returns) and never retries; a handler that touches the world must
//! honour [`Cx::dry_run`] itself, since the runtime cannot know what it does.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;

/// The `tool` name in errors raised by Rust nodes.
const TOOL: &str = "rust";

/// `rust` config.
#[derive(Debug)]
pub struct RustNode {
    /// `handler`: the binding name, for error messages.
    pub handler: &'static str,
    /// `input_from`; `None` passes the raw trigger input.
    pub input_from: Option<CtxPath>,
}

/// What a handler returns on success: the node's output and, optionally,
/// the branch label its out-edges are matched against (`when = "..."`).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOutput {
    /// Stored as the node's output (`<node id>.…` paths read it).
    pub value: Value,
    /// `None` follows unconditional edges only.
    pub branch: Option<Cow<'static, str>>,
}

impl NodeOutput {
    /// Output `value`, no branch label.
    #[must_use]
    pub fn value(value: Value) -> Self {
        Self {
            value,
            branch: None,
        }
    }

    /// Output `value` on the branch `label`.
    #[must_use]
    pub fn branch(value: Value, label: impl Into<Cow<'static, str>>) -> Self {
        Self {
            value,
            branch: Some(label.into()),
        }
    }
}

impl From<Value> for NodeOutput {
    fn from(value: Value) -> Self {
        Self::value(value)
    }
}

/// A handler's failure. It becomes the hard error
/// ``tool `rust` failed: handler `<name>`: <message>``, which the node's
/// `retry` table may retry (it counts as transient, like any tool error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeError {
    message: String,
}

impl NodeError {
    /// A failure described by `message`.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

/// The handler signature, as a fn-pointer type (for documentation and for
/// users who want to store handlers; generated code passes the fn item).
pub type Handler = for<'a, 'b, 'c> fn(&'a Cx<'b>, &'c Value) -> Result<NodeOutput, NodeError>;

/// Run a bound handler: resolve the input, call `handler`, map its result.
///
/// # Errors
///
/// The `path … is not set` tool error when `input_from` misses, and the
/// handler's [`NodeError`] as a tool error.
pub fn call<F>(cx: &mut Cx<'_>, cfg: &'static RustNode, handler: F) -> Result<Step, Error>
where
    F: Fn(&Cx<'_>, &Value) -> Result<NodeOutput, NodeError>,
{
    if cfg.input_from.is_none() {
        cx.settle_raw_input();
    }
    let cx: &Cx<'_> = cx;
    let input = match &cfg.input_from {
        Some(path) => cx.require(TOOL, path)?,
        None => cx.raw_input(),
    };
    match handler(cx, input) {
        Ok(NodeOutput { value, branch }) => Ok(Step::Continue { value, branch }),
        Err(err) => Err(Error::tool(
            TOOL,
            format!("handler `{}`: {}", cfg.handler, err.message),
        )),
    }
}

/// The arm generated for a Rust node with no bound handler (only reachable
/// through code generated outside `agentd!`, which refuses unbound handlers).
///
/// # Errors
///
/// Always [`Error::CapabilityUnavailable`].
pub fn unbound(cx: &Cx<'_>, cfg: &'static RustNode) -> Result<Step, Error> {
    Err(Error::CapabilityUnavailable(format!(
        "no Rust function is bound to handler `{}` (node `{}`)",
        cfg.handler,
        cx.node_id()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::{TestRun, path};
    use serde_json::json;

    fn echo(_cx: &Cx<'_>, input: &Value) -> Result<NodeOutput, NodeError> {
        Ok(NodeOutput::branch(json!({ "got": input }), "seen"))
    }

    fn refuse(_cx: &Cx<'_>, _input: &Value) -> Result<NodeOutput, NodeError> {
        Err(NodeError::new("no thanks"))
    }

    static RAW: RustNode = RustNode {
        handler: "echo",
        input_from: None,
    };

    #[test]
    fn handler_gets_the_raw_trigger_input_by_default() {
        let mut run = TestRun::new(json!({ "n": 1 }));
        let step = call(&mut run.cx(), &RAW, echo).ok();
        assert_eq!(
            step,
            Some(Step::branch(json!({ "got": { "n": 1 } }), "seen"))
        );
    }

    #[test]
    fn handler_gets_the_value_at_input_from() {
        let cfg: &'static RustNode = Box::leak(Box::new(RustNode {
            handler: "echo",
            input_from: Some(path("a.x")),
        }));
        let mut run = TestRun::new(Value::Null).set("a", json!({ "x": [1, 2] }));
        let step = call(&mut run.cx(), cfg, echo).ok();
        assert_eq!(step, Some(Step::branch(json!({ "got": [1, 2] }), "seen")));
    }

    #[test]
    fn missing_input_from_is_a_tool_error() {
        let cfg: &'static RustNode = Box::leak(Box::new(RustNode {
            handler: "echo",
            input_from: Some(path("a.x")),
        }));
        let mut run = TestRun::new(Value::Null);
        let err = call(&mut run.cx(), cfg, echo).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("tool `rust` failed: path `a.x` is not set in the execution context")
        );
    }

    #[test]
    fn handler_error_names_the_handler() {
        let mut run = TestRun::new(Value::Null);
        let err = call(&mut run.cx(), &RAW, refuse)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("tool `rust` failed: handler `echo`: no thanks")
        );
    }

    #[test]
    fn unbound_handler_is_capability_unavailable() {
        let mut run = TestRun::new(Value::Null);
        let err = unbound(&run.cx(), &RAW).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("capability unavailable: no Rust function is bound to handler `echo` (node `me`)")
        );
    }

    #[test]
    fn handler_type_accepts_plain_functions() {
        let h: Handler = echo;
        let mut run = TestRun::new(Value::Null);
        assert!(call(&mut run.cx(), &RAW, h).is_ok());
    }
}
