// `strict_dialect1 = true` refuses the agentd extension `type = "rust"`.
use agentd_runtime::agentd;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::{Cx, serde_json::Value};

fn score(_cx: &Cx<'_>, _input: &Value) -> Result<NodeOutput, NodeError> {
    Ok(NodeOutput::branch(Value::Null, "low"))
}

agentd!(
    "workflows/ok_rust_node.toml",
    strict_dialect1 = true,
    handlers = { score = score }
);

fn main() {}
