//! `agentd init [--template NAME] DIR` — a new workflow project (logic in
//! `agentd_compiler::frontend::init`).

use std::path::Path;

use agentd_compiler::frontend::init;

use crate::{EXIT_OK, EXIT_USAGE};

pub fn run(dir: &Path, template: &str) -> u8 {
    let result = init::template(template).and_then(|t| init::create(dir, t));
    match result {
        Ok(files) => {
            for f in &files {
                eprintln!("  created {}", dir.join(f).display());
            }
            eprintln!(
                "ok: `{}` is a new `{template}` workflow project. Next:\n  cd {}\n  agentd run workflow.toml\n  agentd test tests/",
                dir.display(),
                dir.display()
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}
