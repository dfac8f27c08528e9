//! Comments cite documents of this repository — `docs/*.md` pages and their
//! sections, `ARCHITECTURE.md` — never the dialect specification, design notes or
//! style guide the code was first written from, which a reader of the repository
//! does not have. Every Rust comment in the workspace is read; a cited `docs/` page
//! must exist, a cited `docs/dialect.md §N` must be one of its numbered sections,
//! and a cited `docs/<page>.md "Title"` must be one of that page's headings.

use std::path::{Path, PathBuf};

#[path = "../../tests/support/mod.rs"]
mod support;

/// What a comment must not cite: documents outside this repository.
const FOREIGN: &[&str] = &[
    "spec §",
    "Spec §",
    "spec/dialect",
    "dialect-ops",
    "dialect-model",
    "DESIGN.md",
    "DESIGN §",
    "STYLE",
];

/// Every `.rs` file of the workspace (build output and installed packages aside).
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "target" | ".git" | "node_modules") {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&support::workspace(), &mut files);
    files.sort();
    files
}

/// The comment text of `line` (after `//`), if it has one.
fn comment(line: &str) -> Option<&str> {
    let at = line.find("//")?;
    // `"https://…"` in code is not a comment.
    let before = &line[..at];
    if before.matches('"').count() % 2 == 1 {
        return None;
    }
    Some(&line[at + 2..])
}

/// The headings of a Markdown page, without their `#`s.
fn headings(page: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(page).unwrap_or_else(|e| panic!("read {}: {e}", page.display()));
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_owned());
        }
    }
    out
}

/// What is wrong with the `docs/` citations in `text`, if anything.
fn check_docs_citations(root: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("docs/") {
        let cite = &rest[at..];
        rest = &rest[at + 5..];
        let Some(end) = cite.find(".md") else {
            continue;
        };
        let page = &cite[..end + 3];
        // A pattern such as `docs/<page>.md` in prose is not a citation.
        if page.contains(|c: char| c.is_whitespace() || c == '*' || c == '<') {
            continue;
        }
        let path = root.join(page);
        if !path.is_file() {
            problems.push(format!("cites {page}, which does not exist"));
            continue;
        }
        let after = &cite[end + 3..];
        if let Some(section) = after.strip_prefix(" §") {
            let number: String = section
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            if number.is_empty() {
                continue;
            }
            let found = headings(&path).iter().any(|h| {
                h.strip_prefix(number)
                    .is_some_and(|r| r.starts_with(". ") || r.starts_with(' '))
            });
            if !found {
                problems.push(format!("cites {page} §{number}, which has no such section"));
            }
        } else if let Some(quoted) = after.strip_prefix(" \"") {
            let Some(close) = quoted.find('"') else {
                continue;
            };
            let title = &quoted[..close];
            if !headings(&path).iter().any(|h| h.contains(title)) {
                problems.push(format!(
                    "cites {page} \"{title}\", which has no such heading"
                ));
            }
        }
    }
    problems
}

#[test]
fn comments_cite_documents_of_this_repository_and_only_sections_that_exist() {
    let root = support::workspace();
    let files = rust_files();
    assert!(
        files.len() > 100,
        "the walk found only {} files",
        files.len()
    );
    let mut problems = Vec::new();
    let mut docs_citations = 0;
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            let Some(comment) = comment(line) else {
                continue;
            };
            for foreign in FOREIGN {
                if comment.contains(foreign) {
                    problems.push(format!(
                        "{shown}:{}: cites `{foreign}`, which is not in this repository \
                         (cite the docs/ page that says it; write it there if none does)",
                        n + 1
                    ));
                }
            }
            docs_citations += comment.matches("docs/").count();
            for problem in check_docs_citations(&root, comment) {
                problems.push(format!("{shown}:{}: {problem}", n + 1));
            }
        }
    }
    assert!(
        docs_citations > 50,
        "only {docs_citations} docs/ citations found: the walk or the comment reader broke"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_citation_checks_catch_a_foreign_citation_and_a_missing_section() {
    let root = support::workspace();
    assert!(
        FOREIGN
            .iter()
            .any(|f| comment("    // the walk of spec §4").is_some_and(|c| c.contains(f)))
    );
    assert_eq!(comment(r#"let url = "https://example.invalid";"#), None);
    assert!(check_docs_citations(&root, " see docs/dialect.md §9.1").is_empty());
    assert!(check_docs_citations(&root, " see docs/operations.md \"Serving\"").is_empty());
    assert_eq!(
        check_docs_citations(&root, " see docs/dialect.md §99.1").len(),
        1
    );
    assert_eq!(
        check_docs_citations(&root, " see docs/operations.md \"No such heading\"").len(),
        1
    );
    assert_eq!(check_docs_citations(&root, " see docs/nowhere.md").len(), 1);
}
