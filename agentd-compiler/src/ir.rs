//! The intermediate representation codegen consumes: every workflow of a program
//! (root plus children) as dense, index-based graphs with everything the runtime
//! would otherwise have to work out at start already resolved.
//!
//! - node ids become indices; `trigger` and node ids in paths become slots;
//! - edges become per-node successor tables in declaration order;
//! - each start's entry node is resolved (or recorded as ambiguous with its root count);
//! - `*_from` paths are split; templates are split into literal/placeholder segments;
//! - child workflow references become graph ids.
//!
//! The IR is built only from a program without errors; it never re-validates.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::load::Program;
use crate::model::{NodeKind, RetryOn, StartSource, WorkflowDoc};

/// Where a context path starts (mirrors `agentd_runtime::graph::Slot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotIr {
    Trigger,
    Node(u32),
    Missing,
}

/// A pre-split context path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathIr {
    pub text: String,
    pub root: SlotIr,
    pub rest: Vec<String>,
}

/// One template segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegIr {
    Lit(String),
    /// `{{ raw }}`: `raw` is the trimmed key (re-emitted on a miss); `path` its
    /// non-empty dot-separated segments.
    Key {
        raw: String,
        path: Vec<String>,
    },
    /// `{{ raw | json }}` (agentd extension): the value as JSON text; `raw` and
    /// `path` are those of the key before the `|`.
    Json {
        raw: String,
        path: Vec<String>,
    },
}

/// The filter that makes a placeholder a [`SegIr::Json`].
pub const JSON_FILTER: &str = "json";

/// `key` of a `{{ key | json }}` placeholder's trimmed text, else `None`.
#[must_use]
pub fn json_filter_key(raw: &str) -> Option<&str> {
    let (key, filter) = raw.rsplit_once('|')?;
    (filter.trim() == JSON_FILTER).then(|| key.trim())
}

#[derive(Debug, Clone)]
pub struct StartIr {
    pub name: String,
    pub source: StartSource,
    pub entry: Option<u32>,
    pub roots: u32,
}

#[derive(Debug, Clone)]
pub struct RetryIr {
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub on: RetryOn,
    pub jitter: f32,
}

#[derive(Debug, Clone)]
pub struct NodeIr {
    pub id: String,
    /// 1-based line of the node's table in its file (0 when unknown), for the
    /// comment on its generated items.
    pub line: u32,
    pub kind: NodeKind,
    pub slot: SlotIr,
    pub retry: Option<RetryIr>,
}

#[derive(Debug, Clone)]
pub struct EdgeIr {
    pub to: u32,
    pub when: Option<String>,
    pub max_iterations: Option<u32>,
    pub index: u32,
}

/// One workflow file, compiled.
#[derive(Debug, Clone)]
pub struct GraphIr {
    pub name: String,
    /// Display path of the source file (for comments in generated code).
    pub file: String,
    pub starts: Vec<StartIr>,
    pub nodes: Vec<NodeIr>,
    pub out_edges: Vec<Vec<EdgeIr>>,
    pub edge_count: u32,
    /// For each node with child references: (branch, child graph id).
    pub children: BTreeMap<u32, Vec<(Option<usize>, u32)>>,
    /// Each `llm_infer` node's `output_schema`, resolved (and read) at build time.
    pub schemas: BTreeMap<u32, crate::codegen::sections::llm::SchemaIr>,
    /// Node id → index, for path resolution.
    ids: BTreeMap<String, u32>,
}

impl GraphIr {
    /// Split a context path against this graph's node ids (docs/dialect.md §9.1).
    pub fn path(&self, text: &str) -> PathIr {
        let mut parts = text.split('.');
        let first = parts.next().unwrap_or("");
        let root = self.slot_of(first);
        PathIr {
            text: text.to_string(),
            root,
            rest: parts.map(str::to_string).collect(),
        }
    }

    fn slot_of(&self, id: &str) -> SlotIr {
        // A node literally named `trigger` shares the trigger slot (dialect 1 stores
        // its output over the trigger entry).
        if id == "trigger" {
            return SlotIr::Trigger;
        }
        match self.ids.get(id) {
            Some(&i) => SlotIr::Node(i),
            None => SlotIr::Missing,
        }
    }

    /// The child graph a composite node (and parallel branch) refers to.
    pub fn child(&self, node: u32, branch: Option<usize>) -> Option<u32> {
        self.children
            .get(&node)?
            .iter()
            .find(|(b, _)| *b == branch)
            .map(|(_, g)| *g)
    }
}

/// SHA-256 of one source file.
#[derive(Debug, Clone)]
pub struct SourceHash {
    pub path: String,
    pub sha256: String,
}

/// The whole program.
#[derive(Debug, Clone)]
pub struct ProgramIr {
    /// `graphs[0]` is the root workflow.
    pub graphs: Vec<GraphIr>,
    pub sources: Vec<SourceHash>,
    /// Combined hash over every source (hex), the program's identity.
    pub program_hash: String,
    /// Fingerprint of the key that verified every source (set after signing checks).
    pub signer: Option<String>,
    /// Raw public key a `--policy` override must be signed with (signing required).
    pub policy_key: Option<[u8; 32]>,
    /// The root's `[[http_routes]]` `input_schema`s (same index), read at build time.
    pub route_schemas: Vec<Option<crate::resolve::input_schema::RouteSchema>>,
    /// The root's `[policy.rego]`, read and compiled (it enables feature `rego`).
    pub rego: Option<crate::resolve::rego::RegoIr>,
    /// The root says `[sandbox] mode = "off"`: no kernel sandbox is compiled in.
    pub sandbox_off: bool,
}

/// The 1-based line where node `ni`'s table starts in `source` (0 when the
/// span tree does not know it).
fn line_of(source: &crate::source::SourceFile, ni: usize) -> u32 {
    use crate::source::Seg;
    let loc = [Seg::Key("nodes".to_owned()), Seg::Index(ni)];
    source
        .span_of(&loc)
        .and_then(|span| source.text.get(..span.start))
        .map_or(0, |before| {
            u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX)
        })
}

/// Lower a loaded program (which must have no errors) to IR.
pub fn lower(program: &Program) -> ProgramIr {
    let graphs: Vec<GraphIr> = program
        .units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let mut g = lower_graph(&unit.doc, unit.source.path.display().to_string());
            for (ni, node) in g.nodes.iter_mut().enumerate() {
                node.line = line_of(&unit.source, ni);
            }
            for c in &unit.children {
                g.children
                    .entry(c.node as u32)
                    .or_default()
                    .push((c.branch, c.unit as u32));
            }
            let _ = i;
            let base = unit
                .source
                .path
                .parent()
                .unwrap_or(std::path::Path::new(""));
            for (ni, n) in unit.doc.nodes.iter().enumerate() {
                if let NodeKind::LlmInfer(l) = &n.kind {
                    let schema = crate::codegen::sections::llm::resolve_schema(
                        l.output_schema.as_deref(),
                        base,
                    );
                    g.schemas.insert(ni as u32, schema);
                }
            }
            g
        })
        .collect();
    let rego = program.root().and_then(|r| r.rego.clone());
    let route_schemas = program.root().map_or_else(Vec::new, |root| {
        let base = root
            .source
            .path
            .parent()
            .unwrap_or(std::path::Path::new(""));
        root.doc
            .http_routes
            .iter()
            .map(|r| r.input_schema.as_deref().map(|p| route_schema(p, base)))
            .collect()
    });
    let sources: Vec<SourceHash> = program
        .units
        .iter()
        .map(|u| SourceHash {
            path: u.source.path.display().to_string(),
            sha256: hex(&Sha256::digest(u.source.text.as_bytes())),
        })
        .collect();
    let mut all = Sha256::new();
    for s in &sources {
        all.update(s.sha256.as_bytes());
    }
    ProgramIr {
        graphs,
        sources,
        program_hash: hex(&all.finalize()),
        signer: None,
        policy_key: None,
        route_schemas,
        rego,
        sandbox_off: program.root().is_some_and(|r| {
            r.doc
                .sandbox
                .as_ref()
                .is_some_and(|s| s.mode == crate::model::SandboxMode::Off)
        }),
    }
}

/// A route's schema as validated (`input_schema_invalid` stopped the build if it was
/// unusable then). Should the file have changed into something unusable since, the
/// route is baked with the schema `false`, which refuses every request: enforcement
/// fails closed, never open.
fn route_schema(p: &str, base: &std::path::Path) -> crate::resolve::input_schema::RouteSchema {
    crate::resolve::input_schema::resolve(p, base, std::path::Path::new("")).unwrap_or_else(|_| {
        crate::resolve::input_schema::RouteSchema {
            path: p.to_string(),
            text: "false".to_string(),
        }
    })
}

fn lower_graph(doc: &WorkflowDoc, file: String) -> GraphIr {
    let ids: BTreeMap<String, u32> = doc
        .nodes
        .iter()
        .enumerate()
        .rev() // first declaration wins on duplicates (validator rejects them anyway)
        .map(|(i, n)| (n.id.clone(), i as u32))
        .collect();

    let mut out_edges: Vec<Vec<EdgeIr>> = vec![Vec::new(); doc.nodes.len()];
    let mut has_incoming = vec![false; doc.nodes.len()];
    for (index, e) in doc.edges.iter().enumerate() {
        let (Some(&from), Some(&to)) = (ids.get(&e.from), ids.get(&e.to)) else {
            continue;
        };
        has_incoming[to as usize] = true;
        out_edges[from as usize].push(EdgeIr {
            to,
            when: e.when.clone(),
            max_iterations: e.max_iterations,
            index: index as u32,
        });
    }
    let roots: Vec<u32> = (0..doc.nodes.len() as u32)
        .filter(|&i| !has_incoming[i as usize])
        .collect();
    let starts = doc
        .start_nodes
        .iter()
        .map(|s| {
            let entry = match &s.entry_node {
                Some(e) => ids.get(e).copied(),
                None if roots.len() == 1 => Some(roots[0]),
                None => None,
            };
            StartIr {
                name: s.name.clone(),
                source: s.source,
                entry,
                roots: roots.len() as u32,
            }
        })
        .collect();

    let mut g = GraphIr {
        name: doc.name.clone(),
        file,
        starts,
        nodes: Vec::new(),
        out_edges,
        edge_count: doc.edges.len() as u32,
        children: BTreeMap::new(),
        schemas: BTreeMap::new(),
        ids,
    };
    g.nodes = doc
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeIr {
            id: n.id.clone(),
            line: 0,
            kind: n.kind.clone(),
            slot: if n.id == "trigger" {
                SlotIr::Trigger
            } else {
                SlotIr::Node(i as u32)
            },
            retry: n.retry.as_ref().map(|r| RetryIr {
                max_attempts: r.max_attempts,
                backoff_ms: r.backoff_ms.unwrap_or(100),
                on: r.on.unwrap_or(RetryOn::Any),
                jitter: r.jitter.unwrap_or(0.0),
            }),
        })
        .collect();
    g
}

/// Split a template into segments exactly as the dialect-1 renderers scan it
/// (docs/dialect.md §9.2): `{{` without a later `}}` leaves the rest literal; a key is the
/// trimmed text between the braces.
pub fn split_template(text: &str) -> Vec<SegIr> {
    let mut segs: Vec<SegIr> = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        lit.push_str(&rest[..open]);
        if !lit.is_empty() {
            segs.push(SegIr::Lit(std::mem::take(&mut lit)));
        }
        let raw = after[..close].trim();
        if let Some(key) = json_filter_key(raw) {
            let path = key.split('.').map(str::to_string).collect();
            segs.push(SegIr::Json {
                raw: key.to_string(),
                path,
            });
        } else {
            let path = raw.split('.').map(str::to_string).collect();
            segs.push(SegIr::Key {
                raw: raw.to_string(),
                path,
            });
        }
        rest = &after[close + 2..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        segs.push(SegIr::Lit(lit));
    }
    segs
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_filter_makes_a_json_segment_of_the_key_before_it() {
        let json = |raw: &str, path: &[&str]| SegIr::Json {
            raw: raw.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            split_template(r#"{"m":{{ msg.text | json }},"n":{{n|json}}}"#),
            vec![
                SegIr::Lit(r#"{"m":"#.into()),
                json("msg.text", &["msg", "text"]),
                SegIr::Lit(r#","n":"#.into()),
                json("n", &["n"]),
                SegIr::Lit("}".into()),
            ]
        );
        // Any other filter text is part of the key, as in dialect 1.
        assert_eq!(
            split_template("{{a|upper}}"),
            vec![key("a|upper", &["a|upper"])]
        );
    }

    fn key(raw: &str, path: &[&str]) -> SegIr {
        SegIr::Key {
            raw: raw.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn template_splits_literals_and_keys() {
        assert_eq!(
            split_template("Hello, {{ value }} - {{a.b}}!"),
            vec![
                SegIr::Lit("Hello, ".into()),
                key("value", &["value"]),
                SegIr::Lit(" - ".into()),
                key("a.b", &["a", "b"]),
                SegIr::Lit("!".into()),
            ]
        );
    }

    #[test]
    fn unclosed_marker_stays_literal() {
        assert_eq!(
            split_template("a {{open"),
            vec![SegIr::Lit("a {{open".into())]
        );
        assert_eq!(
            split_template("{{x}} and {{y"),
            vec![key("x", &["x"]), SegIr::Lit(" and {{y".into())]
        );
    }

    #[test]
    fn empty_segments_are_kept_for_the_renderers() {
        assert_eq!(split_template("{{}}"), vec![key("", &[""])]);
        assert_eq!(split_template("{{ . }}"), vec![key(".", &["", ""])]);
        assert_eq!(
            split_template("{{a..b.}}"),
            vec![key("a..b.", &["a", "", "b", ""])]
        );
    }

    #[test]
    fn non_ascii_literals_survive() {
        assert_eq!(
            split_template("héllo {{x}} ✓"),
            vec![
                SegIr::Lit("héllo ".into()),
                key("x", &["x"]),
                SegIr::Lit(" ✓".into()),
            ]
        );
    }

    fn graph(text: &str) -> GraphIr {
        let r = crate::parse::parse_str(std::path::Path::new("t.toml"), text);
        lower_graph(&r.doc.expect("parses"), "t.toml".into())
    }

    #[test]
    fn paths_keep_empty_segments_and_resolve_roots() {
        let g = graph("name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n");
        assert_eq!(g.path("a.b..c").rest, vec!["b", "", "c"]);
        assert_eq!(g.path("a").root, SlotIr::Node(0));
        assert_eq!(g.path("trigger.x").root, SlotIr::Trigger);
        assert_eq!(g.path("nope.x").root, SlotIr::Missing);
    }

    #[test]
    fn entry_is_the_unique_root_counting_loop_edges() {
        let g = graph(
            "name = \"x\"\n[[start_nodes]]\nname = \"m\"\nsource = \"manual\"\n\
             [[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n\
             [[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"b\"\nto = \"a\"\nmax_iterations = 2\n\
             [[nodes]]\nid = \"c\"\ntype = \"merge\"\n[[edges]]\nfrom = \"c\"\nto = \"a\"\n",
        );
        assert_eq!(g.starts[0].entry, Some(2));
        assert_eq!(g.out_edges[1][0].max_iterations, Some(2));
        assert_eq!(g.out_edges[1][0].index, 1);
    }

    #[test]
    fn ambiguous_entry_records_the_root_count() {
        let g = graph(
            "name = \"x\"\n[[start_nodes]]\nname = \"m\"\nsource = \"manual\"\n\
             [[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n",
        );
        assert_eq!(g.starts[0].entry, None);
        assert_eq!(g.starts[0].roots, 2);
    }
}
