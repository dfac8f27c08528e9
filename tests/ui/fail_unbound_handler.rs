// The workflow's `rust` node names handler `score`, but nothing binds it.
use agentd_runtime::agentd;

agentd!("workflows/ok_rust_node.toml");

fn main() {}
