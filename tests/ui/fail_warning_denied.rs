// A workflow that compiles with a validator warning gets a rustc warning on the path
// literal (the `deprecated` lint, the one stable proc-macros can raise); denying that
// lint turns it into an error, which is what this case snapshots.
#![deny(deprecated)]

use agentd_runtime::agentd;

agentd!("workflows/warn_no_policy.toml");

fn main() {}
