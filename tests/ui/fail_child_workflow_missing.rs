// `child_workflow_missing`: a `call` to a file that does not exist fails the build.
use agentd_runtime::agentd;

agentd!("workflows/child_missing.toml");

fn main() {}
