// `ambiguous_start_entry`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/ambiguous_start_entry.toml");

fn main() {}
