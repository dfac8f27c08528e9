//! Hover and completion text, taken from the workflow reference (docs/dialect.md),
//! which is compiled into the binary so the editor shows exactly the published docs.
//!
//! Never hand-writes a description of a kind or key: a key's text is its row in the
//! reference's tables, a kind's text its section.

/// The workflow reference, as published.
const DIALECT: &str = include_str!("../../../../docs/dialect.md");

/// The `### kind` section of the reference for a node kind (heading included, up to
/// the next heading of the same or a higher level).
pub fn kind_section(kind: &str) -> Option<&'static str> {
    section(DIALECT, &format!("### {kind}"))
}

/// The first line of a kind's section after its heading: a one-line summary.
pub fn kind_summary(kind: &str) -> Option<String> {
    let section = kind_section(kind)?;
    section
        .lines()
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let start = text.match_indices(heading).map(|(i, _)| i).find(|&i| {
        (i == 0 || text.as_bytes().get(i - 1) == Some(&b'\n'))
            && text[i + heading.len()..]
                .chars()
                .next()
                .is_none_or(|c| c == '\n' || c == '\r')
    })?;
    let body = &text[start..];
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut end = body.len();
    let mut offset = 0;
    let mut in_code = false;
    for line in body.split_inclusive('\n') {
        if offset > 0 {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            let hashes = line.chars().take_while(|&c| c == '#').count();
            if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
                end = offset;
                break;
            }
        }
        offset += line.len();
    }
    Some(body[..end].trim_end())
}

/// The reference row for `key`, as Markdown. `context` holds the keys of the tables
/// around it (`["nodes"]`, `["policy", "fs"]`), `kind` the enclosing node's type.
/// Rows in the kind's own section win; then the sections on the enclosing table;
/// then the first row anywhere that documents a key of that name.
pub fn key_doc(context: &[String], kind: Option<&str>, key: &str) -> Option<String> {
    let mut places: Vec<&str> = Vec::new();
    if context.first().is_some_and(|c| c == "nodes") {
        if let Some(s) = kind.and_then(kind_section) {
            places.push(s);
        }
        if let Some(s) = section(DIALECT, "## 7. Nodes") {
            places.push(s);
        }
    }
    if context.is_empty()
        && let Some(s) = section(DIALECT, "## 3. Top-level keys")
    {
        places.push(s);
    }
    places.push(DIALECT);
    let (header, row) = places.iter().find_map(|s| row_for(s, key))?;
    let cells: Vec<&str> = row
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    let names: Vec<&str> = header
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    let mut out = format!("**`{key}`**");
    for (i, cell) in cells.iter().enumerate().skip(1) {
        if cell.is_empty() {
            continue;
        }
        match names.get(i).filter(|n| !n.is_empty()) {
            Some(name) => out.push_str(&format!("\n- {name}: {cell}")),
            None => out.push_str(&format!("\n- {cell}")),
        }
    }
    Some(out)
}

/// The table header line and the row whose first cell is `` `key` ``.
fn row_for<'a>(text: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
    let cell = format!("| `{key}` |");
    let mut header = None;
    let mut prev: Option<&str> = None;
    for line in text.lines() {
        if line.starts_with("|---") || line.starts_with("| ---") {
            header = prev;
        } else if line.starts_with(&cell) {
            return Some((header.unwrap_or(""), line));
        }
        if !line.starts_with('|') {
            header = None;
        }
        prev = Some(line);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_kind_has_a_reference_section() {
        for kind in crate::model::NODE_KIND_NAMES {
            let s = kind_section(kind).unwrap_or_else(|| panic!("no section for {kind}"));
            assert!(s.starts_with(&format!("### {kind}")), "{s}");
            assert!(!s[4..].contains("\n### "), "section of {kind} runs on: {s}");
        }
    }

    #[test]
    fn key_docs_prefer_the_kind_section() {
        let d = key_doc(&["nodes".into()], Some("read_file"), "path_from").expect("row");
        assert!(d.contains("required: yes"), "{d}");
        let d = key_doc(&[], None, "name").expect("top-level row");
        assert!(d.contains("Workflow id"), "{d}");
        assert!(key_doc(&[], None, "no_such_key_anywhere").is_none());
    }
}
