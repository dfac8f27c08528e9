// Child workflows are compiled in: the binary never reads a workflow file.
use agentd_runtime::serde_json::json;
use agentd_runtime::{Outcome, agentd};

agentd!("workflows/ok_parent.toml");

fn main() {
    let outcome = Parent::run(json!({ "who": "child" }));
    assert!(matches!(outcome, Ok(Outcome::Completed { .. })), "{outcome:?}");
}
