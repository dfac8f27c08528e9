//! The registry against its files and examples: every code has its explanation and
//! example, and every runnable example triggers exactly its code.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use super::*;
use crate::diagnostics::Diagnostic;
use crate::load::LoadOptions;
use crate::parse::parse_str;
use crate::signing::{VerifyOptions, load_verified};
use crate::validate::{ValidateOptions, validate};

/// Codes whose example cannot be run as one workflow file: the file is
/// unreadable, too large or not UTF-8, the example needs a second file (a child
/// workflow, a key, a signature) or Rust code around the `agentd!` macro, or the
/// code is the parser's fallback for mismatches no other code names. Each of
/// these examples explains itself in comments.
const DESCRIBED_ONLY: &[Code] = &[
    Code::IoError,
    Code::FileTooLarge,
    Code::NotUtf8,
    Code::SchemaError,
    Code::ChildWorkflowInvalid,
    Code::ChildWorkflowTooDeep,
    Code::UnknownChildStart,
    Code::UnboundHandler,
    Code::UnusedHandler,
    Code::SignatureMissing,
    Code::SignatureInvalid,
    Code::SignatureMalformed,
    Code::SignatureUnverified,
];

/// Errors that necessarily come with a code in its minimal example: a start
/// node that enters nowhere leaves the graph's nodes unreachable.
const CONSEQUENCES: &[(Code, Code)] = &[
    (Code::UnknownStartEntryNode, Code::UnreachableNode),
    (Code::AmbiguousStartEntry, Code::UnreachableNode),
];

/// A fresh, empty directory for one example.
fn scratch(code: Code) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentd-codes-{}-{}",
        code.as_str(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Every diagnostic the stage that owns `code` reports for `example`: parse
/// alone, parse and validate, or (load, signing) the whole front half of the
/// pipeline on the example written to disk under the name its first line gives
/// (`# self.toml`), else `example.toml`.
fn diagnostics_of_example(code: Code, example: &str) -> Vec<Diagnostic> {
    let path = Path::new("example.toml");
    let info = code.info();
    match info.stage {
        Stage::Parse => parse_str(path, example).diagnostics,
        Stage::Validate | Stage::Embed => {
            let r = parse_str(path, example);
            let Some(doc) = r.doc else {
                return r.diagnostics;
            };
            let opts = ValidateOptions {
                // Rust nodes are refused by a code of their own; every other
                // example that shows one is about something else.
                allow_rust_nodes: code != Code::RustNodeNotAllowed,
                ..ValidateOptions::default()
            };
            validate(&r.source, &doc, &opts)
        }
        Stage::Load | Stage::Signing => {
            let dir = scratch(code);
            let name = example
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# "))
                .filter(|n| n.ends_with(".toml") && !n.contains(' '))
                .unwrap_or("example.toml");
            let path = dir.join(name);
            std::fs::write(&path, example).expect("write the example");
            let load_opts = LoadOptions {
                cwd: dir.clone(),
                allow_rust_nodes: false,
            };
            let verify_opts = VerifyOptions {
                cwd: dir.clone(),
                ..VerifyOptions::default()
            };
            let (program, verification) = load_verified(&path, &load_opts, &verify_opts);
            let _ = std::fs::remove_dir_all(&dir);
            program
                .diagnostics
                .into_iter()
                .chain(verification.diagnostics)
                .collect()
        }
    }
}

#[test]
fn codes_are_unique_and_well_formed() {
    let mut seen = HashSet::new();
    for (i, c) in CODES.iter().enumerate() {
        assert!(seen.insert(c.code), "duplicate code {}", c.code);
        assert!(
            c.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{}",
            c.code
        );
        assert!(
            !c.summary.is_empty() && !c.explanation.is_empty() && !c.example.is_empty(),
            "{}",
            c.code
        );
        let code = Code::ALL[i];
        assert_eq!(code.as_str(), c.code);
        assert_eq!(code.info().code, c.code);
        assert_eq!(code.severity(), c.severity);
        assert_eq!(Code::from_name(c.code), Some(code));
        assert_eq!(lookup(c.code).map(|i| i.code), Some(c.code));
    }
    assert_eq!(Code::ALL.len(), CODES.len());
    assert!(lookup("no_such_code").is_none());
    let dialect1 = CODES.iter().filter(|c| c.dialect1).count();
    assert_eq!(dialect1, 24, "dialect 1 has exactly 24 validator codes");
}

#[test]
fn every_file_in_the_codes_folder_belongs_to_a_registered_code() {
    // The `include_str!`s of the registry make a missing file a build error;
    // this is the other direction: no stray or misspelt file is left behind.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("codes");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("read codes/") {
        let path = entry.expect("read codes/").path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
        assert!(
            Code::from_name(stem).is_some() && (ext == "md" || ext == "toml"),
            "{} is not codes/<registered code>.{{md,toml}}",
            path.display()
        );
        files += 1;
    }
    assert_eq!(files, 2 * Code::ALL.len(), "one .md and one .toml per code");
}

#[test]
fn every_runnable_example_triggers_exactly_its_code() {
    let mut problems = Vec::new();
    for &code in Code::ALL {
        if DESCRIBED_ONLY.contains(&code) {
            continue;
        }
        let example = code.info().example;
        if example
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            problems.push(format!("the example of {code} is comments only"));
            continue;
        }
        let diags = diagnostics_of_example(code, example);
        let found: BTreeSet<Code> = diags.iter().map(|d| d.code).collect();
        // Minimal examples may draw warnings (no [policy], an unhandled error
        // branch); any other error would make the example teach the wrong code.
        let other_errors: Vec<Code> = diags
            .iter()
            .filter(|d| d.is_error() && d.code != code)
            .map(|d| d.code)
            .filter(|&c| !CONSEQUENCES.contains(&(code, c)))
            .collect();
        if !found.contains(&code) || !other_errors.is_empty() {
            problems.push(format!("the example of {code} reports {found:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn described_only_examples_do_not_trigger_their_code() {
    // Keeps DESCRIBED_ONLY honest: an example that became runnable must be
    // taken off the list (and is then held to the test above).
    for &code in DESCRIBED_ONLY {
        let diags = diagnostics_of_example(code, code.info().example);
        assert!(
            diags.iter().all(|d| d.code != code),
            "the example of {code} now triggers it; remove it from DESCRIBED_ONLY"
        );
    }
}

#[test]
fn fixed_examples_are_clean_of_their_code() {
    // Sanity check of the "fix" comments for a few codes whose fix is a one-line edit.
    let fixes = [
        (
            Code::DanglingEdge,
            "to = \"b\"          # fix",
            "to = \"a\"          # fix",
        ),
        (Code::UnknownBackend, "\"cluade\"", "\"claude\""),
        (Code::InvalidCron, "\"30 25 * * *\"", "\"30 2 * * *\""),
        (Code::InvalidInterval, "\"1.5h\"", "\"90m\""),
        (Code::BadAuthRef, "\"Bearer:ops\"", "\"bearer:ops\""),
        (
            Code::UnknownAuthBinding,
            "auth = \"bearer\"",
            "auth = \"bearer:ops\"",
        ),
    ];
    for (code, from, to) in fixes {
        let example = code.info().example;
        assert!(example.contains(from), "{code}: {from}");
        let fixed = example.replace(from, to);
        let r = parse_str(Path::new("example.toml"), &fixed);
        let doc = r.doc.expect("fixed example parses");
        let diags = validate(&r.source, &doc, &ValidateOptions::default());
        assert!(
            diags.iter().all(|d| d.code != code),
            "{code} still fires after the fix"
        );
    }
}
