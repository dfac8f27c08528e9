//! The hello workflow as a binary, wired by hand the way codegen will wire
//! it (the wiring is shared with `tests/hand_wired.rs`).
//!
//! ```text
//! AGENTD_NAME=world cargo run -p agentd-runtime --example hello --features fs,env,data
//! ```

#[path = "../tests/hand_wired/hello.rs"]
mod hello;

fn main() -> std::process::ExitCode {
    agentd_runtime::cli::main(&hello::Hello)
}
