// Unknown macro arguments are rejected where they are written.
use agentd_runtime::agentd;

agentd!("workflows/ok_greet.toml", nmae = Greet);

fn main() {}
