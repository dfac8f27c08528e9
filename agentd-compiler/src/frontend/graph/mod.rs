//! Pictures of a workflow graph: Graphviz dot, Mermaid, and SVG drawn in-process.
//!
//! [`Picture`] is what every rendering shows, read from a parsed workflow: start nodes
//! (with their source) pointing at their entry node, nodes (id and kind; `call`, `map`
//! and `parallel` marked with the child files they run), and edges (labelled, loop
//! edges with their bound, `error` edges). Each format draws those five things
//! distinctly. Rendering never fails and never reads files.

pub mod dot;
pub mod mermaid;
pub mod svg;

use crate::model::{NodeKind, WorkflowDoc};

/// The output formats of `agentd graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dot,
    Mermaid,
    Svg,
}

/// A start node: `name (source)` pointing at its entry node, if it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub name: String,
    pub source: &'static str,
    pub entry: Option<String>,
}

/// A node: id, kind, and the child workflow files it runs (`call`, `map`, each
/// `parallel` branch), empty for other kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub kind: &'static str,
    pub children: Vec<String>,
}

/// How an edge is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeStyle {
    /// Unconditional or labelled by `when`.
    Normal,
    /// `when = "error"`: the failure branch.
    Error,
    /// Has `max_iterations`: a loop edge.
    Loop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// `when`, and `≤N` for a loop edge.
    pub label: Option<String>,
    pub style: EdgeStyle,
}

/// Everything a rendering shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub name: String,
    pub starts: Vec<Start>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Picture {
    pub fn of(doc: &WorkflowDoc) -> Picture {
        let starts = doc
            .start_nodes
            .iter()
            .map(|s| Start {
                name: s.name.clone(),
                source: s.source.as_str(),
                entry: s.entry_node.clone(),
            })
            .collect();
        let nodes = doc
            .nodes
            .iter()
            .map(|n| Node {
                id: n.id.clone(),
                kind: n.kind.type_name(),
                children: match &n.kind {
                    NodeKind::Call(c) => vec![c.workflow.clone()],
                    NodeKind::Map(m) => vec![m.workflow.clone()],
                    NodeKind::Parallel(p) => {
                        p.branches.iter().map(|b| b.workflow.clone()).collect()
                    }
                    _ => Vec::new(),
                },
            })
            .collect();
        let edges = doc
            .edges
            .iter()
            .map(|e| {
                let style = if e.max_iterations.is_some() {
                    EdgeStyle::Loop
                } else if e.when.as_deref() == Some("error") {
                    EdgeStyle::Error
                } else {
                    EdgeStyle::Normal
                };
                let label = match (&e.when, e.max_iterations) {
                    (Some(w), Some(m)) => Some(format!("{w} ≤{m}")),
                    (None, Some(m)) => Some(format!("≤{m}")),
                    (Some(w), None) => Some(w.clone()),
                    (None, None) => None,
                };
                Edge {
                    from: e.from.clone(),
                    to: e.to.clone(),
                    label,
                    style,
                }
            })
            .collect();
        Picture {
            name: doc.name.clone(),
            starts,
            nodes,
            edges,
        }
    }
}

/// Render `doc` in `format`.
pub fn render(doc: &WorkflowDoc, format: Format) -> String {
    let picture = Picture::of(doc);
    match format {
        Format::Dot => dot::render(&picture),
        Format::Mermaid => mermaid::render(&picture),
        Format::Svg => svg::render(&picture),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    const LOOPY: &str = "name = \"w\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"a\"\n\
        [[nodes]]\nid = \"a\"\ntype = \"condition\"\nexpr = \"trigger.x\"\n\
        [[nodes]]\nid = \"b\\\"q<&>\"\ntype = \"merge\"\n\
        [[nodes]]\nid = \"sub\"\ntype = \"call\"\nworkflow = \"child.toml\"\n\
        [[edges]]\nfrom = \"a\"\nto = \"b\\\"q<&>\"\nwhen = \"true\"\n\
        [[edges]]\nfrom = \"b\\\"q<&>\"\nto = \"a\"\nmax_iterations = 2\n\
        [[edges]]\nfrom = \"a\"\nto = \"sub\"\nwhen = \"error\"\n\
        [[edges]]\nfrom = \"sub\"\nto = \"sub\"\nmax_iterations = 1\n";

    fn doc(text: &str) -> WorkflowDoc {
        crate::parse::parse_str(Path::new("w.toml"), text)
            .doc
            .expect("parses")
    }

    fn corpus() -> Vec<PathBuf> {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::compat_support::toml_files(&[
            here.join("../workflows"),
            here.join("../tests/ui/workflows"),
            crate::compat_support::dir(),
        ])
    }

    #[test]
    fn dot_labels_break_lines_escape_quotes_and_mark_edge_kinds() {
        let dot = render(&doc(LOOPY), Format::Dot);
        assert!(dot.contains("\"a\" [label=\"a\\ncondition\"];"), "{dot}");
        assert!(
            dot.contains("\"b\\\"q<&>\" [label=\"b\\\"q<&>\\nmerge\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"a\" -> \"b\\\"q<&>\" [label=\"true\"];"),
            "{dot}"
        );
        assert!(dot.contains("style=dashed, taillabel=\"≤2\""), "{dot}");
        assert!(
            dot.contains("\"a\" -> \"sub\" [label=\"error\", color=red"),
            "{dot}"
        );
        assert!(
            dot.contains("\"sub\" [shape=box3d, label=\"sub\\ncall → child.toml\"];"),
            "{dot}"
        );
        assert!(dot.contains("\"start:main\" -> \"a\";"), "{dot}");
    }

    #[test]
    fn mermaid_uses_generated_ids_entity_escapes_and_styles_error_links() {
        let m = render(&doc(LOOPY), Format::Mermaid);
        assert!(m.starts_with("flowchart TD\n"), "{m}");
        assert!(m.contains("s0([\"main (manual)\"]):::start"), "{m}");
        assert!(m.contains("n1[\"b#quot;q#lt;#amp;#gt;<br/>merge\"]"), "{m}");
        assert!(
            m.contains("n2[[\"sub<br/>call → child.toml\"]]:::child"),
            "{m}"
        );
        assert!(m.contains("n1 -.->|\"≤2\"| n0"), "{m}");
        // Links: the start's (0), then edges 1..; the error edge is the third edge.
        assert!(m.contains("linkStyle 3 stroke:#d93025"), "{m}");
    }

    /// Every element of the SVG with `class`, by class.
    fn classes(svg: &str) -> Vec<(String, String)> {
        let xml = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        xml.descendants()
            .filter_map(|n| {
                Some((
                    n.attribute("class")?.to_string(),
                    n.attribute("data-id")?.to_string(),
                ))
            })
            .collect()
    }

    #[test]
    #[cfg_attr(
        agentd_no_compat,
        ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
    )]
    fn svg_is_well_formed_xml_with_one_element_per_node_and_start() {
        let mut drawn = 0;
        for path in corpus() {
            let text = std::fs::read_to_string(&path).expect("read");
            let Some(d) = crate::parse::parse_str(&path, &text).doc else {
                continue;
            };
            let svg = render(&d, Format::Svg);
            let found = classes(&svg);
            let nodes: Vec<&str> = found
                .iter()
                .filter(|(c, _)| c == "agentd-node")
                .map(|(_, id)| id.as_str())
                .collect();
            let want: Vec<&str> = d.nodes.iter().map(|n| n.id.as_str()).collect();
            assert_eq!(nodes, want, "{}", path.display());
            let starts = found.iter().filter(|(c, _)| c == "agentd-start").count();
            assert_eq!(starts, d.start_nodes.len(), "{}", path.display());
            drawn += 1;
        }
        assert!(drawn > 30, "only {drawn} workflows drawn");
        // Escaping, loops, self-loops and error edges.
        let found = classes(&render(&doc(LOOPY), Format::Svg));
        assert!(
            found.contains(&("agentd-node".into(), "b\"q<&>".into())),
            "{found:?}"
        );
    }

    #[test]
    fn svg_of_edges_to_undefined_nodes_and_control_characters_is_still_xml() {
        let text = "name = \"w\"\n[[nodes]]\nid = \"a\\u0001\"\ntype = \"merge\"\n\
                    [[edges]]\nfrom = \"a\\u0001\"\nto = \"ghost\"\n";
        let found = classes(&render(&doc(text), Format::Svg));
        assert!(
            found.contains(&("agentd-undefined".into(), "ghost".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("agentd-node".into(), "a\u{FFFD}".into())),
            "{found:?}"
        );
        let empty = render(&doc("name = \"w\"\n"), Format::Svg);
        assert!(classes(&empty).is_empty());
    }
}
