// A valid workflow expands to a type with a typed handle that runs it.
use agentd_runtime::serde_json::json;
use agentd_runtime::{Outcome, agentd};

agentd!("workflows/ok_greet.toml");

fn main() {
    let outcome = Greet::run(json!({ "who": "ui" }));
    match outcome {
        Ok(Outcome::Completed { final_value, .. }) => {
            assert_eq!(final_value, json!({ "rendered": "hello, ui" }));
        }
        other => panic!("unexpected outcome: {other:?}"),
    }
}
