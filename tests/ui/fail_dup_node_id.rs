// `dup_node_id`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/dup_node_id.toml");

fn main() {}
