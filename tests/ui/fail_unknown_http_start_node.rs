// `unknown_http_start_node`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/unknown_http_start_node.toml");

fn main() {}
