//! Graphviz dot, for `dot -Tsvg` and anything else that reads it.
//!
//! Start nodes are ovals with an arrow to their entry node; nodes are boxes (`id` and
//! kind), a node running child workflows a 3-D box naming them; labelled edges carry
//! their `when`, loop edges are dashed with their bound at the tail, `error` edges red.

use std::fmt::Write as _;

use super::{EdgeStyle, Picture};

pub fn render(p: &Picture) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&p.name));
    let _ = writeln!(
        out,
        "  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];"
    );
    for s in &p.starts {
        let id = format!("start:{}", s.name);
        let _ = writeln!(
            out,
            "  {} [shape=oval, label={}];",
            quote(&id),
            quote(&format!("{} ({})", s.name, s.source))
        );
        if let Some(entry) = &s.entry {
            let _ = writeln!(out, "  {} -> {};", quote(&id), quote(entry));
        }
    }
    for n in &p.nodes {
        // `\n` is dot's line break inside a quoted label, so it is added after escaping.
        if n.children.is_empty() {
            let _ = writeln!(
                out,
                "  {} [label=\"{}\\n{}\"];",
                quote(&n.id),
                escape(&n.id),
                escape(n.kind)
            );
        } else {
            let _ = writeln!(
                out,
                "  {} [shape=box3d, label=\"{}\\n{} → {}\"];",
                quote(&n.id),
                escape(&n.id),
                escape(n.kind),
                escape(&n.children.join(", "))
            );
        }
    }
    for e in &p.edges {
        let mut attrs = Vec::new();
        match e.style {
            EdgeStyle::Loop => {
                attrs.push("style=dashed".to_string());
                if let Some(l) = &e.label {
                    attrs.push(format!("taillabel={}", quote(l)));
                }
            }
            EdgeStyle::Error => {
                attrs.push("label=\"error\"".to_string());
                attrs.push("color=red, fontcolor=red".to_string());
            }
            EdgeStyle::Normal => {
                if let Some(l) = &e.label {
                    attrs.push(format!("label={}", quote(l)));
                }
            }
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {} -> {}{attrs};", quote(&e.from), quote(&e.to));
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
