//! Running a built workflow binary, and reading what a finished child process
//! printed.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Bytes a process printed, as text (lossy: a test reports, it does not decode).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON document a process printed on stdout; panics with both streams when
/// stdout is not JSON.
pub fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    })
}

/// The exit code, or -1 when a signal ended the process.
pub fn exit_code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// `binary` as a command with every `AGENTD_*` variable of the test's own
/// environment removed, so a developer's shell cannot change what a test runs
/// (each test sets the ones it means).
pub fn workflow_command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENTD_") {
            cmd.env_remove(name);
        }
    }
    cmd
}
