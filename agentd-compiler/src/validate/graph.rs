//! The graph checks of dialect 1, in its emission order: unique node ids and
//! start names (1, 2), start references from routes, triggers and start entries
//! (3-5), dangling edges (6), cycles without a loop bound (12) and nodes no start
//! reaches (13).

use std::collections::{HashMap, HashSet, VecDeque};

use super::{Validator, did_you_mean, is_loop, ticked};
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::loc;

impl<'a> Validator<'a> {
    // -- 1, 2: uniqueness -------------------------------------------------------------

    pub(super) fn check_dup_node_ids(&mut self) {
        let nodes = &self.doc.nodes;
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for n in nodes {
            *count.entry(n.id.as_str()).or_insert(0) += 1;
        }
        let mut reported: HashSet<&str> = HashSet::new();
        for (i, n) in nodes.iter().enumerate() {
            let id = n.id.as_str();
            match first.get(id) {
                None => {
                    first.insert(id, i);
                }
                Some(&f) => {
                    if !reported.insert(id) {
                        continue;
                    }
                    let times = count.get(id).copied().unwrap_or(2);
                    let first_span = self.span(loc!["nodes", f, "id"]);
                    let d = Diagnostic::new(
                        Code::DupNodeId,
                        self.path(),
                        format!("node id `{id}` is declared more than once ({times} times)"),
                    )
                    .with_span(self.span(loc!["nodes", i, "id"]))
                    .with_label("duplicate node id")
                    .with_note(format!("first declared on {}", self.line(first_span)))
                    .with_help("give every node a unique `id`; edges and context paths refer to nodes by id");
                    self.push(d);
                }
            }
        }
    }

    pub(super) fn check_dup_start_names(&mut self) {
        let starts = &self.doc.start_nodes;
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut reported: HashSet<&str> = HashSet::new();
        for (i, s) in starts.iter().enumerate() {
            let name = s.name.as_str();
            match first.get(name) {
                None => {
                    first.insert(name, i);
                }
                Some(&f) => {
                    if !reported.insert(name) {
                        continue;
                    }
                    let first_span = self.span(loc!["start_nodes", f, "name"]);
                    let d = Diagnostic::new(
                        Code::DupStartName,
                        self.path(),
                        format!("start node name `{name}` is declared more than once"),
                    )
                    .with_span(self.span(loc!["start_nodes", i, "name"]))
                    .with_label("duplicate start name")
                    .with_note(format!("first declared on {}", self.line(first_span)))
                    .with_help("give every [[start_nodes]] entry a unique `name`");
                    self.push(d);
                }
            }
        }
    }

    // -- 3, 4, 5: routes, triggers, start entries -------------------------------------

    pub(super) fn unknown_start_help(&self, wrong: &str, source: &str) -> String {
        did_you_mean(wrong, self.start_names_sorted()).unwrap_or_else(|| {
            format!(
                "declare it: [[start_nodes]] name = \"{wrong}\", source = \"{source}\", entry_node = \"<node id>\""
            )
        })
    }

    pub(super) fn start_names_sorted(&self) -> Vec<&'a str> {
        let mut v: Vec<&str> = self
            .doc
            .start_nodes
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub(super) fn check_http_routes(&mut self) {
        let mut seen: HashMap<(String, &str), usize> = HashMap::new();
        for (i, route) in self.doc.http_routes.iter().enumerate() {
            let key = (route.method.to_ascii_uppercase(), route.path.as_str());
            if let Some(&f) = seen.get(&key) {
                let first_span = self.span(loc!["http_routes", f, "path"]);
                let d = Diagnostic::new(
                    Code::DupHttpRoute,
                    self.path(),
                    format!("duplicate HTTP route `{} {}`", route.method, route.path),
                )
                .with_span(self.span(loc!["http_routes", i, "path"]))
                .with_label(format!("`{} {}` is already routed", key.0, route.path))
                .with_note(format!("first route on {}", self.line(first_span)))
                .with_help("each (method, path) pair may be routed once; methods compare case-insensitively");
                self.push(d);
            } else {
                seen.insert(key, i);
            }
            if !self.start_names.contains(route.start_node.as_str()) {
                let d = Diagnostic::new(
                    Code::UnknownHttpStartNode,
                    self.path(),
                    format!(
                        "HTTP route `{} {}` points at unknown start node `{}`",
                        route.method, route.path, route.start_node
                    ),
                )
                .with_span(self.span(loc!["http_routes", i, "start_node"]))
                .with_label("no [[start_nodes]] entry has this name")
                .with_help(self.unknown_start_help(&route.start_node, "http"));
                self.push(d);
            }
        }
    }

    pub(super) fn check_trigger_starts(&mut self) {
        for (i, t) in self.doc.triggers.iter().enumerate() {
            let sn = t.start_node();
            if !self.start_names.contains(sn) {
                let d = Diagnostic::new(
                    Code::UnknownTriggerStartNode,
                    self.path(),
                    format!(
                        "{} trigger points at unknown start node `{sn}`",
                        t.type_name()
                    ),
                )
                .with_span(self.span(loc!["triggers", i, "start_node"]))
                .with_label("no [[start_nodes]] entry has this name")
                .with_help(self.unknown_start_help(sn, "event"));
                self.push(d);
            }
        }
    }

    pub(super) fn node_help(&self, wrong: &str) -> String {
        let mut ids = self.ids.clone();
        ids.sort_unstable();
        did_you_mean(wrong, ids).unwrap_or_else(|| {
            format!("declare a [[nodes]] entry with id = \"{wrong}\", or use one of the declared node ids")
        })
    }

    pub(super) fn check_start_entries(&mut self) {
        for (i, s) in self.doc.start_nodes.iter().enumerate() {
            if let Some(entry) = &s.entry_node
                && !self.id_set.contains(entry.as_str())
            {
                let d = Diagnostic::new(
                    Code::UnknownStartEntryNode,
                    self.path(),
                    format!(
                        "start node `{}` references unknown entry node `{entry}`",
                        s.name
                    ),
                )
                .with_span(self.span(loc!["start_nodes", i, "entry_node"]))
                .with_label("no node has this id")
                .with_help(self.node_help(entry));
                self.push(d);
            }
        }
    }

    // -- 6: dangling edges ------------------------------------------------------------

    /// Returns true when any edge dangles (checks 12-13 are then skipped).
    pub(super) fn check_dangling_edges(&mut self) -> bool {
        let mut any = false;
        for (i, e) in self.doc.edges.iter().enumerate() {
            for (end, field, what) in [(&e.from, "from", "source"), (&e.to, "to", "target")] {
                if self.id_set.contains(end.as_str()) {
                    continue;
                }
                any = true;
                let d = Diagnostic::new(
                    Code::DanglingEdge,
                    self.path(),
                    format!(
                        "edge #{i} `{}` → `{}`: {what} node `{end}` is not declared",
                        e.from, e.to
                    ),
                )
                .with_span(self.span(loc!["edges", i, field]))
                .with_label("no node has this id")
                .with_help(self.node_help(end));
                self.push(d);
            }
        }
        any
    }

    // -- 12: cycles -------------------------------------------------------------------

    pub(super) fn check_cycle(&mut self) {
        let edges = &self.doc.edges;
        let mut indeg: HashMap<&str, usize> = self.ids.iter().map(|id| (*id, 0)).collect();
        let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in edges.iter().filter(|e| !is_loop(e)) {
            *indeg.entry(e.to.as_str()).or_insert(0) += 1;
            adj.entry(e.from.as_str()).or_default().push(e.to.as_str());
        }
        let mut queue: VecDeque<&str> = self
            .ids
            .iter()
            .copied()
            .filter(|id| indeg.get(id).copied().unwrap_or(0) == 0)
            .collect();
        while let Some(id) = queue.pop_front() {
            for next in adj.get(id).map(Vec::as_slice).unwrap_or_default() {
                if let Some(d) = indeg.get_mut(next) {
                    *d = d.saturating_sub(1);
                    if *d == 0 {
                        queue.push_back(next);
                    }
                }
            }
        }
        let remaining: Vec<&str> = self
            .ids
            .iter()
            .copied()
            .filter(|id| indeg.get(id).copied().unwrap_or(0) > 0)
            .collect();
        if remaining.is_empty() {
            return;
        }
        let mut sorted = remaining.clone();
        sorted.sort_unstable();

        // Every remaining node has a non-loop predecessor among the remaining nodes,
        // so walking predecessors from any of them must revisit a node: that is a cycle.
        let rem: HashSet<&str> = remaining.iter().copied().collect();
        let mut walk: Vec<(&str, usize)> = Vec::new(); // (node, edge index into it)
        let mut pos: HashMap<&str, usize> = HashMap::new();
        let mut cur = remaining[0];
        let mut cycle_edges: Vec<usize> = Vec::new();
        for _ in 0..=edges.len() {
            if let Some(&p) = pos.get(cur) {
                cycle_edges = walk[p..].iter().map(|(_, e)| *e).collect();
                break;
            }
            let Some(ei) = edges
                .iter()
                .position(|e| !is_loop(e) && e.to == cur && rem.contains(e.from.as_str()))
            else {
                break;
            };
            pos.insert(cur, walk.len());
            walk.push((cur, ei));
            cur = edges[ei].from.as_str();
        }
        cycle_edges.reverse();

        let mut d = Diagnostic::new(
            Code::Cycle,
            self.path(),
            format!(
                "workflow contains a cycle; nodes involved or downstream: {}",
                sorted.join(", ")
            ),
        )
        .with_help(
            "remove an edge of the cycle, or make the back edge a bounded loop by adding \
             `max_iterations = N` to it",
        );
        if let Some(&back) = cycle_edges.iter().max() {
            let mut path: Vec<&str> = cycle_edges
                .iter()
                .map(|&e| edges[e].from.as_str())
                .collect();
            if let Some(&first) = path.first() {
                path.push(first);
            }
            d = d
                .with_span(self.span(loc!["edges", back, "to"]))
                .with_label("this edge closes the cycle")
                .with_note(format!("cycle: {}", path.join(" → ")));
        }
        self.push(d);
    }

    // -- 13: start entries and reachability -------------------------------------------

    pub(super) fn check_reachability(&mut self) {
        let doc = self.doc;
        if doc.nodes.is_empty() || doc.start_nodes.is_empty() {
            return;
        }
        let mut incoming: HashMap<&str, usize> = HashMap::new();
        let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &doc.edges {
            *incoming.entry(e.to.as_str()).or_insert(0) += 1;
            adj.entry(e.from.as_str()).or_default().push(e.to.as_str());
        }
        // Roots over every declared node (duplicates included), all edges counted.
        let roots: Vec<&str> = doc
            .nodes
            .iter()
            .map(|n| n.id.as_str())
            .filter(|id| incoming.get(id).copied().unwrap_or(0) == 0)
            .collect();

        let mut reached: HashSet<&str> = HashSet::new();
        let mut ambiguous: Vec<&str> = Vec::new();
        for (i, s) in doc.start_nodes.iter().enumerate() {
            let entry = match &s.entry_node {
                Some(e) => e.as_str(),
                None if roots.len() == 1 => roots[0],
                None => {
                    ambiguous.push(s.name.as_str());
                    let detail = if roots.is_empty() {
                        "no root node (every node has an incoming edge)".to_string()
                    } else {
                        format!(
                            "{} root nodes ({})",
                            roots.len(),
                            ticked(roots.iter().copied())
                        )
                    };
                    let help = match roots.first() {
                        Some(r) => format!(
                            "set `entry_node = \"{r}\"` (or another node id) on this start node"
                        ),
                        None => "set `entry_node = \"<node id>\"` on this start node".to_string(),
                    };
                    let d = Diagnostic::new(
                        Code::AmbiguousStartEntry,
                        self.path(),
                        format!(
                            "start node `{}` has no `entry_node` and the workflow has {detail}; \
                             specify `entry_node` explicitly",
                            s.name
                        ),
                    )
                    .with_span(self.span(loc!["start_nodes", i, "name"]))
                    .with_label("entry node cannot be inferred")
                    .with_help(help);
                    self.push(d);
                    continue;
                }
            };
            let mut queue = VecDeque::from([entry]);
            while let Some(id) = queue.pop_front() {
                if !reached.insert(id) {
                    continue;
                }
                queue.extend(
                    adj.get(id)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .copied(),
                );
            }
        }
        for (i, n) in doc.nodes.iter().enumerate() {
            if reached.contains(n.id.as_str()) {
                continue;
            }
            let mut d = Diagnostic::new(
                Code::UnreachableNode,
                self.path(),
                format!("node `{}` is not reachable from any start node", n.id),
            )
            .with_span(self.span(loc!["nodes", i, "id"]))
            .with_label("never runs")
            .with_help("connect it with an [[edges]] entry from a reachable node, or remove it");
            if !ambiguous.is_empty() {
                d = d.with_note(format!(
                    "start node(s) {} have an ambiguous entry and reach nothing",
                    ticked(ambiguous.iter().copied())
                ));
            }
            self.push(d);
        }
    }
}
