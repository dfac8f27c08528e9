//! Mermaid flowcharts, for READMEs and pull requests (GitHub and GitLab render them).
//!
//! Ids are generated (`s0`, `n0`, ...) so no workflow name can break the syntax; every
//! label is a quoted string with `"`, `<`, `>`, `#` and `&` written as Mermaid entity
//! codes. Start nodes are stadiums, nodes rectangles, nodes that run child workflows
//! subroutine boxes; `error` edges are red (a `linkStyle`), loop edges dotted with
//! their bound.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{EdgeStyle, Picture};

pub fn render(p: &Picture) -> String {
    let mut out = String::from("flowchart TD\n");
    let ids: HashMap<&str, String> = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), format!("n{i}")))
        .collect();
    // An edge to an id that is not a node (an invalid file) still draws: as its own box.
    let mut extra: Vec<String> = Vec::new();
    let mut id_of = |name: &str| -> String {
        if let Some(id) = ids.get(name) {
            return id.clone();
        }
        let pos = match extra.iter().position(|e| e == name) {
            Some(p) => p,
            None => {
                extra.push(name.to_string());
                extra.len() - 1
            }
        };
        format!("x{pos}")
    };
    let mut links = 0usize;
    let mut red = Vec::new();
    let mut body = String::new();
    for (i, s) in p.starts.iter().enumerate() {
        let _ = writeln!(
            body,
            "  s{i}([\"{}\"]):::start",
            label(&format!("{} ({})", s.name, s.source))
        );
        if let Some(entry) = &s.entry {
            let _ = writeln!(body, "  s{i} --> {}", id_of(entry));
            links += 1;
        }
    }
    for (i, n) in p.nodes.iter().enumerate() {
        if n.children.is_empty() {
            let _ = writeln!(body, "  n{i}[\"{}<br/>{}\"]", label(&n.id), label(n.kind));
        } else {
            let _ = writeln!(
                body,
                "  n{i}[[\"{}<br/>{} → {}\"]]:::child",
                label(&n.id),
                label(n.kind),
                label(&n.children.join(", "))
            );
        }
    }
    for e in &p.edges {
        let (from, to) = (id_of(&e.from), id_of(&e.to));
        let arrow = match e.style {
            EdgeStyle::Loop => "-.->",
            _ => "-->",
        };
        match &e.label {
            Some(l) => {
                let _ = writeln!(body, "  {from} {arrow}|\"{}\"| {to}", label(l));
            }
            None => {
                let _ = writeln!(body, "  {from} {arrow} {to}");
            }
        }
        if e.style == EdgeStyle::Error {
            red.push(links);
        }
        links += 1;
    }
    for (i, name) in extra.iter().enumerate() {
        let _ = writeln!(body, "  x{i}[\"{} (undefined)\"]", label(name));
    }
    out.push_str(&body);
    out.push_str("  classDef start fill:#e8f0fe,stroke:#1a73e8\n");
    out.push_str("  classDef child fill:#fef7e0,stroke:#b06000\n");
    if !red.is_empty() {
        let list: Vec<String> = red.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "  linkStyle {} stroke:#d93025,color:#d93025",
            list.join(",")
        );
    }
    out
}

/// A label for inside `"..."`: Mermaid's entity codes for the characters that would
/// end the string or be read as markup.
fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
