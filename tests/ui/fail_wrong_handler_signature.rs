// rustc checks the bound function against the handler signature, at the binding.
use agentd_runtime::agentd;
use agentd_runtime::serde_json::Value;

fn score(input: &Value) -> Option<Value> {
    Some(input.clone())
}

agentd!("workflows/ok_rust_node.toml", handlers = { score = score });

fn main() {}
