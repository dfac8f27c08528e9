// A path that exists neither under CARGO_MANIFEST_DIR nor beside this file.
use agentd_runtime::agentd;

agentd!("workflows/no_such_file.toml");

fn main() {}
