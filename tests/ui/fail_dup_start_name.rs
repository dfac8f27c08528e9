// `dup_start_name`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/dup_start_name.toml");

fn main() {}
