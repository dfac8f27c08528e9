// `toml_syntax`: the diagnostic lands on the path literal with the workflow's file:line:col.
use agentd_runtime::agentd;

agentd!("workflows/toml_syntax.toml");

fn main() {}
