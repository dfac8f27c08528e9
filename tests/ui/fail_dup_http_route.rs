// `dup_http_route`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/dup_http_route.toml");

fn main() {}
