// A `.sig` that does not match the file's bytes is refused (signing_required or not).
use agentd_runtime::agentd;

agentd!("workflows/tampered.toml", signing_required = true);

fn main() {}
