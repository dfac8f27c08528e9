// The same warning, allowed on the call: the workflow still compiles and runs.
use agentd_runtime::serde_json::json;
use agentd_runtime::{Outcome, agentd};

#[allow(deprecated)]
mod open {
    use super::agentd;
    agentd!("workflows/warn_no_policy.toml");
}

fn main() {
    let outcome = open::OpenGreet::run(json!({ "who": "ui" }));
    assert!(matches!(outcome, Ok(Outcome::Completed { .. })), "{outcome:?}");
}
