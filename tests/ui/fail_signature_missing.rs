// `signing_required = true` refuses a workflow file without a `.sig` beside it.
use agentd_runtime::agentd;

agentd!("workflows/unsigned.toml", signing_required = true);

fn main() {}
