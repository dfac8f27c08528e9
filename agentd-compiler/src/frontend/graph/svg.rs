//! SVG drawn in-process by `layout-rs` (a Sugiyama-style layered layout), so no
//! Graphviz install is needed.
//!
//! Start nodes are blue ellipses, nodes white boxes (`id` and kind), nodes running
//! child workflows yellow boxes naming them; labelled edges carry their label, loop
//! edges are dashed with their bound, `error` edges red. Every node and start node is
//! one `<g class="agentd-node">` / `<g class="agentd-start">` element with a
//! `data-id` attribute, so tools (and the tests) can find them.

use std::collections::HashMap;

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{EdgeStyle, Picture};

const FONT: usize = 14;

fn style(line: u32, fill: u32) -> StyleAttr {
    StyleAttr::new(Color::new(line), 2, Some(Color::new(fill)), 0, FONT)
}

fn element(shape: ShapeKind, look: StyleAttr, class: &str, id: &str) -> Element {
    let size = get_shape_size(Orientation::TopToBottom, &shape, FONT, false);
    Element::create_with_properties(
        shape,
        look,
        Orientation::LeftToRight,
        size,
        format!("class=\"{class}\" data-id=\"{}\"", attr(id)),
    )
}

pub fn render(p: &Picture) -> String {
    let p = &clean(p);
    let mut g = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = HashMap::new();
    for n in &p.nodes {
        let (text, look) = if n.children.is_empty() {
            (
                format!("{}\n{}", n.id, n.kind),
                style(0x000000ff, 0xffffffff),
            )
        } else {
            (
                format!("{}\n{} → {}", n.id, n.kind, n.children.join(", ")),
                style(0xb06000ff, 0xfef7e0ff),
            )
        };
        let h = g.add_node(element(
            ShapeKind::new_box(&text),
            look,
            "agentd-node",
            &n.id,
        ));
        handles.entry(n.id.clone()).or_insert(h);
    }
    // An edge to an id that is not a node (an invalid file) still draws, as its own box.
    let mut handle_of = |g: &mut VisualGraph, name: &str| {
        *handles.entry(name.to_string()).or_insert_with(|| {
            g.add_node(element(
                ShapeKind::new_box(&format!("{name}\n(undefined)")),
                style(0xd93025ff, 0xffffffff),
                "agentd-undefined",
                name,
            ))
        })
    };
    for s in &p.starts {
        let text = format!("{} ({})", s.name, s.source);
        let h = g.add_node(element(
            ShapeKind::new_circle(&text),
            style(0x1a73e8ff, 0xe8f0feff),
            "agentd-start",
            &s.name,
        ));
        if let Some(entry) = &s.entry {
            let to = handle_of(&mut g, entry);
            g.add_edge(Arrow::simple(""), h, to);
        }
    }
    for e in &p.edges {
        let from = handle_of(&mut g, &e.from);
        let to = handle_of(&mut g, &e.to);
        let (line, look) = match e.style {
            EdgeStyle::Normal => (LineStyleKind::Normal, StyleAttr::simple()),
            EdgeStyle::Loop => (LineStyleKind::Dashed, StyleAttr::simple()),
            EdgeStyle::Error => (LineStyleKind::Normal, style(0xd93025ff, 0xffffffff)),
        };
        let arrow = Arrow::new(
            LineEndKind::None,
            LineEndKind::Arrow,
            line,
            e.label.as_deref().unwrap_or(""),
            &look,
            &None,
            &None,
        );
        g.add_edge(arrow, from, to);
    }
    let mut svg = SVGWriter::new();
    if g.num_nodes() > 0 {
        g.do_it(false, false, false, &mut svg);
    }
    svg.finalize()
}

/// The picture with control characters (which XML 1.0 cannot carry, even escaped)
/// shown as U+FFFD; `layout-rs` escapes the rest of its text itself.
fn clean(p: &Picture) -> Picture {
    let c = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect()
    };
    Picture {
        name: c(&p.name),
        starts: p
            .starts
            .iter()
            .map(|s| super::Start {
                name: c(&s.name),
                source: s.source,
                entry: s.entry.as_deref().map(c),
            })
            .collect(),
        nodes: p
            .nodes
            .iter()
            .map(|n| super::Node {
                id: c(&n.id),
                kind: n.kind,
                children: n.children.iter().map(|s| c(s)).collect(),
            })
            .collect(),
        edges: p
            .edges
            .iter()
            .map(|e| super::Edge {
                from: c(&e.from),
                to: c(&e.to),
                label: e.label.as_deref().map(c),
                style: e.style,
            })
            .collect(),
    }
}

/// Escape for an XML attribute value in double quotes.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
