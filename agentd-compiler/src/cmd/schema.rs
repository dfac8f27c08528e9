//! `agentd schema` — print the JSON Schema of a workflow file (docs/cli.md).

use std::io::Write;

use crate::{EXIT_OK, EXIT_USAGE};

pub fn run() -> u8 {
    let text = agentd_compiler::schema::render();
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot write the schema: {e}");
            EXIT_USAGE
        }
    }
}
