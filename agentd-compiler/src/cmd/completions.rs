//! `agentd completions bash|zsh|fish` and `agentd man` — generated from the clap
//! definitions in main.rs, so they cannot drift from the real flags.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::{Cli, EXIT_OK, EXIT_USAGE};

/// Print the completion script for `shell` on stdout.
pub fn completions(shell: Shell) -> u8 {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "agentd", &mut std::io::stdout());
    EXIT_OK
}

/// Print the `agentd(1)` man page, or with `dir` write it and one page per
/// subcommand (`agentd-check.1`, ...) there.
pub fn man(dir: Option<&Path>) -> u8 {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
            eprintln!("error: could not render the man page: {e}");
            return EXIT_USAGE;
        }
        print!("{}", String::from_utf8_lossy(&out));
        return EXIT_OK;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: could not create `{}`: {e}", dir.display());
        return EXIT_USAGE;
    }
    let mut pages = vec![("agentd".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("agentd-{}", sub.get_name());
        pages.push((
            name.clone(),
            sub.clone().display_name(name.clone()).bin_name(name),
        ));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        let written = clap_mangen::Man::new(page)
            .render(&mut out)
            .and_then(|()| std::fs::write(&path, out));
        if let Err(e) = written {
            eprintln!("error: could not write `{}`: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    EXIT_OK
}
