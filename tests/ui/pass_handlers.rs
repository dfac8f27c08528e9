// A custom Rust node bound to a plain function; its label routes the run.
use agentd_runtime::embed::RunWith;
use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
use agentd_runtime::serde_json::{Value, json};
use agentd_runtime::{Cx, Outcome, agentd};

mod scoring {
    use super::*;

    pub fn score(_cx: &Cx<'_>, input: &Value) -> Result<NodeOutput, NodeError> {
        let text = input.as_str().ok_or_else(|| NodeError::new("text must be a string"))?;
        let score = text.len();
        let label = if score > 3 { "high" } else { "low" };
        Ok(NodeOutput::branch(json!({ "score": score }), label))
    }
}

agentd!(
    "workflows/ok_rust_node.toml",
    name = Scorer,
    handlers = { score = scoring::score },
);

fn main() {
    let high = Scorer::run(json!({ "text": "long enough" }));
    assert!(
        matches!(&high, Ok(Outcome::Completed { final_value, .. })
            if final_value == &json!({ "rendered": "high: 11" })),
        "{high:?}"
    );
    let low = Scorer::run_with(RunWith::input(json!({ "text": "ab" })));
    assert!(matches!(low.outcome, Ok(Outcome::Failed { .. })), "{:?}", low.outcome);
    assert_eq!(low.trace.path(), vec!["score", "low"]);
    let bad = Scorer::run(json!({ "text": 7 }));
    assert_eq!(
        bad.err().map(|e| e.to_string()).as_deref(),
        Some("tool `rust` failed: handler `score`: text must be a string")
    );
}
