// A binding that no `rust` node uses is an error on the binding's name.
use agentd_runtime::agentd;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::{Cx, serde_json::Value};

fn score(_cx: &Cx<'_>, _input: &Value) -> Result<NodeOutput, NodeError> {
    Ok(NodeOutput::branch(Value::Null, "low"))
}

agentd!(
    "workflows/ok_rust_node.toml",
    handlers = { score = score, sorce = score }
);

fn main() {}
