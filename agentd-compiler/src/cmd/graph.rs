//! `agentd graph FILE` — the workflow graph as Graphviz dot, for `dot -Tsvg`.

use std::fmt::Write as _;
use std::path::Path;

use agentd_compiler::load::{self, LoadOptions};

use super::{emit_diagnostics, is_io};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

pub fn run(file: &Path, color: bool) -> u8 {
    let program = load::load(file, &LoadOptions::default());
    let Some(unit) = program.root() else {
        emit_diagnostics(&program.diagnostics, &program.sources, false, color);
        return if program.diagnostics.iter().any(is_io) {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        };
    };
    print!("{}", to_dot(&unit.doc));
    EXIT_OK
}

/// Render a workflow as dot. Start nodes are drawn as entry arrows; loop edges dashed.
pub fn to_dot(doc: &agentd_compiler::model::WorkflowDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&doc.name));
    let _ = writeln!(
        out,
        "  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];"
    );
    for s in &doc.start_nodes {
        let id = format!("start:{}", s.name);
        let _ = writeln!(
            out,
            "  {} [shape=oval, label={}];",
            quote(&id),
            quote(&format!("{} ({})", s.name, s.source.as_str()))
        );
        if let Some(entry) = &s.entry_node {
            let _ = writeln!(out, "  {} -> {};", quote(&id), quote(entry));
        }
    }
    for n in &doc.nodes {
        // `\n` is dot's line break inside a quoted label, so it is added after escaping.
        let _ = writeln!(
            out,
            "  {} [label=\"{}\\n{}\"];",
            quote(&n.id),
            escape(&n.id),
            escape(n.kind.type_name())
        );
    }
    for e in &doc.edges {
        let mut attrs = Vec::new();
        if let Some(w) = &e.when {
            attrs.push(format!("label={}", quote(w)));
        }
        if let Some(m) = e.max_iterations {
            attrs.push("style=dashed".to_string());
            attrs.push(format!("taillabel={}", quote(&format!("≤{m}"))));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_labels_break_lines_and_escape_quotes() {
        let text = "name = \"w\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"a\"\n\
                    [[nodes]]\nid = \"a\"\ntype = \"condition\"\nexpr = \"trigger.x\"\n\
                    [[nodes]]\nid = \"b\\\"q\"\ntype = \"merge\"\n\
                    [[edges]]\nfrom = \"a\"\nto = \"b\\\"q\"\nwhen = \"true\"\n\
                    [[edges]]\nfrom = \"b\\\"q\"\nto = \"a\"\nmax_iterations = 2\n";
        let r = agentd_compiler::parse::parse_str(Path::new("w.toml"), text);
        let dot = to_dot(&r.doc.expect("parses"));
        assert!(dot.contains("\"a\" [label=\"a\\ncondition\"];"), "{dot}");
        assert!(
            dot.contains("\"b\\\"q\" [label=\"b\\\"q\\nmerge\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"a\" -> \"b\\\"q\" [label=\"true\"];"),
            "{dot}"
        );
        assert!(dot.contains("style=dashed"), "{dot}");
        assert!(dot.contains("\"start:main\" -> \"a\";"), "{dot}");
    }
}
