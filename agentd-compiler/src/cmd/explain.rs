//! `agentd explain [CODE]` — what a diagnostic code means, with a minimal example.

use agentd_compiler::codes::{self, CODES};
use agentd_compiler::diagnostics::Severity;

use crate::{EXIT_OK, EXIT_USAGE};

pub fn run(code: Option<&str>) -> u8 {
    let Some(code) = code else {
        for info in CODES {
            println!(
                "{:<34} {:<7} {}",
                info.code,
                severity(info.severity),
                info.summary
            );
        }
        return EXIT_OK;
    };
    match codes::lookup(code) {
        Some(info) => {
            println!("{} ({})\n", info.code, severity(info.severity));
            println!("{}\n", info.summary);
            println!("{}\n", info.explanation.trim());
            if !info.example.trim().is_empty() {
                println!("Example:\n");
                for line in info.example.trim_end().lines() {
                    println!("    {line}");
                }
            }
            EXIT_OK
        }
        None => {
            let names: Vec<String> = CODES.iter().map(|c| c.code.to_string()).collect();
            eprintln!("error: unknown diagnostic code `{code}`");
            if let Some(s) = agentd_compiler::parse::suggest(code, &names) {
                eprintln!("help: did you mean `{s}`?");
            } else {
                eprintln!("help: run `agentd explain` to list every code");
            }
            EXIT_USAGE
        }
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
