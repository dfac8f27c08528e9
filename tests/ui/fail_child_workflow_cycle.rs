// `child_workflow_cycle`: two workflows that call each other fail the build.
use agentd_runtime::agentd;

agentd!("workflows/cycle_a.toml");

fn main() {}
