// A correctly signed workflow builds under `signing_required = true`.
use agentd_runtime::agentd;

agentd!("workflows/signed.toml", signing_required = true);

fn main() {
    assert!(Signed::run(agentd_runtime::serde_json::Value::Null).is_ok());
}
