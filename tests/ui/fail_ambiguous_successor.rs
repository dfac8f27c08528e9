// `ambiguous_successor`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/ambiguous_successor.toml");

fn main() {}
