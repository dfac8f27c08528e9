// `unknown_start_entry_node`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/unknown_start_entry_node.toml");

fn main() {}
