//! `agentd check` on hostile and broken input: truncated workflows, random bytes,
//! oversized files, pathological nesting. Whatever the input, the real binary must
//! exit with a code (never die on a signal or a panic) and explain itself with a
//! rendered diagnostic. Also pins the other side: every shipped workflow and every
//! compat example checks clean.
//!
//! The fuzz target in `fuzz/` explores the same front end without bounds; inputs it
//! finds that crash belong here as regression cases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{compat, scratch, workspace as repo_root};

fn agentd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agentd"))
}

fn shipped_workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("workflows"))
        .expect("read workflows/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "workflows/ has no *.toml files");
    files
}

fn check(args: &[&str], file: &Path) -> Output {
    agentd()
        .arg("check")
        .args(args)
        .arg(file)
        .output()
        .expect("run agentd")
}

/// Write `bytes` to `dir/name`, run `agentd check` on it and require a clean rejection:
/// exit code 1 or 2 (not a signal), no panic, and at least one rendered error.
fn assert_rejected(dir: &Path, name: &str, bytes: &[u8]) {
    let file = dir.join(name);
    std::fs::write(&file, bytes).expect("write input");
    let out = check(&["--color", "never"], &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown: String = stderr.chars().take(2000).collect();
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{name}: expected exit 1 or 2, got {:?}\n{shown}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{name}: panicked\n{shown}");
    assert!(
        stderr.contains("error["),
        "{name}: no rendered diagnostic on stderr\n{shown}"
    );
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce without new deps.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

/// Offsets inside `text` where cutting the file must leave it broken: right after the
/// opening quote of a string value outside a comment (an unterminated string),
/// searched from several points spread through the file, plus inside the first
/// `[[nodes]]` header.
fn breaking_cut_points(text: &str) -> Vec<usize> {
    let mut cuts = Vec::new();
    for eighth in 0..8 {
        let from = text.len() * eighth / 8;
        let opening = text[from..].match_indices("= \"").map(|(i, _)| from + i);
        // Skip matches inside comments: a truncated comment is still valid TOML.
        let mut values = opening.filter(|&at| {
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            !text[line_start..at].contains('#')
        });
        if let Some(at) = values.next() {
            cuts.push(at + 3);
        }
    }
    if let Some(i) = text.find("[[nodes]]") {
        cuts.push(i + 5); // `[[nod`
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn truncated_workflows_are_rejected_with_a_diagnostic() {
    let dir = scratch("truncated");
    for wf in shipped_workflows() {
        let text = std::fs::read_to_string(&wf).expect("read workflow");
        let stem = wf.file_stem().expect("file stem").to_string_lossy();
        let cuts = breaking_cut_points(&text);
        assert!(cuts.len() >= 3, "{}: too few cut points", wf.display());
        for cut in cuts {
            assert_rejected(&dir, &format!("{stem}-{cut}.toml"), &text.as_bytes()[..cut]);
        }
    }
}

#[test]
fn random_bytes_are_rejected_with_a_diagnostic() {
    let dir = scratch("random");
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (i, len) in [1usize, 7, 64, 512, 4096, 65_536].into_iter().enumerate() {
        let mut bytes = rng.bytes(len);
        // A lone continuation byte up front: never UTF-8, even for the 1-byte case.
        bytes[0] = 0x80;
        assert_rejected(&dir, &format!("random-{i}.toml"), &bytes);
    }
}

#[test]
fn random_toml_punctuation_is_rejected_with_a_diagnostic() {
    // Valid UTF-8 drawn from TOML's own punctuation, so the bytes reach the parser
    // instead of stopping at the UTF-8 check.
    const ALPHABET: &[u8] = b"[]{}=\",.'\n\t #-_:+0123456789abcdefnodesidtype\\\"\"\"";
    let dir = scratch("punctuation");
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    for (i, len) in [3usize, 40, 300, 3000, 30_000].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize])
            .collect();
        assert_rejected(&dir, &format!("punctuation-{i}.toml"), &bytes);
    }
}

#[test]
fn oversized_file_is_rejected_before_parsing() {
    let dir = scratch("oversized");
    let line = b"# padding padding padding padding padding padding padding padding\n";
    let bytes: Vec<u8> = line.iter().copied().cycle().take(9 * 1024 * 1024).collect();
    assert_rejected(&dir, "nine-megabytes.toml", &bytes);
}

#[test]
fn deeply_nested_arrays_are_rejected_without_overflowing_the_stack() {
    let dir = scratch("nesting");
    let mut text = String::from("a = ");
    text.push_str(&"[".repeat(100_000));
    assert_rejected(&dir, "deep.toml", text.as_bytes());
}

#[test]
fn fifty_thousand_empty_node_tables_are_rejected() {
    let dir = scratch("many_nodes");
    assert_rejected(&dir, "nodes.toml", "[[nodes]]\n".repeat(50_000).as_bytes());
}

#[test]
fn empty_file_is_rejected() {
    let dir = scratch("empty");
    assert_rejected(&dir, "empty.toml", b"");
}

#[test]
fn every_shipped_workflow_checks_clean_with_deny_warnings() {
    for wf in shipped_workflows() {
        let out = check(&["--deny-warnings", "--color", "never"], &wf);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} is not clean:\n{}",
            wf.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn every_compat_example_checks_ok() {
    let compat = compat::dir();
    let files = compat::toml_files(&[compat.join("examples")]);
    assert!(!files.is_empty(), "no compat examples found");
    for file in files {
        // Child paths in the examples are written relative to the compat dir (the
        // dialect-1 convention), so run from there with a relative path.
        let rel = file.strip_prefix(&compat).expect("under compat");
        let out = agentd()
            .current_dir(&compat)
            .args(["check", "--color", "never"])
            .arg(rel)
            .output()
            .expect("run agentd");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} does not check:\n{}",
            rel.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
