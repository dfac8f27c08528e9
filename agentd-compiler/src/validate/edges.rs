//! Routing between nodes: a node whose successors the runtime could not choose
//! between (`ambiguous_successor`), edge labels a node can never emit, and
//! `condition` nodes missing a branch (`condition_missing_branch`).

use super::{Validator, branch_name, did_you_mean, is_loop, ticked};
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::loc;
use crate::model::NodeKind;

impl<'a> Validator<'a> {
    // -- extra: routing ---------------------------------------------------------------

    /// Can a node of this kind continue with `label` (`None` = no branch label)?
    pub(super) fn label_can_fire(kind: &NodeKind, label: Option<&str>) -> bool {
        match label {
            None => !matches!(kind, NodeKind::Condition(_) | NodeKind::Switch(_)),
            Some(l) => match kind.emitted_labels() {
                None => true,
                Some(ls) => ls.contains(&l),
            },
        }
    }

    pub(super) fn check_ambiguous_successors(&mut self) {
        let edges = &self.doc.edges;
        for &id in &self.ids.clone() {
            let Some(&(_, kind)) = self.first.get(id) else {
                continue;
            };
            if kind.ends_run() {
                continue;
            }
            // Group traversable out-edges by label, in order of first appearance.
            let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
            for (ei, e) in edges.iter().enumerate() {
                if e.from != id || e.max_iterations == Some(0) {
                    continue;
                }
                let label = e.when.as_deref();
                match groups.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, v)) => v.push(ei),
                    None => groups.push((label, vec![ei])),
                }
            }
            for (label, idxs) in groups {
                if idxs.len() < 2 || !Self::label_can_fire(kind, label) {
                    continue;
                }
                let second = idxs[1];
                let span = match label {
                    Some(_) => self.span(loc!["edges", second, "when"]),
                    None => self.span(loc!["edges", second, "from"]),
                };
                let targets = idxs
                    .iter()
                    .map(|&e| format!("`{}`", edges[e].to))
                    .collect::<Vec<_>>()
                    .join(", ");
                let others = idxs
                    .iter()
                    .filter(|&&e| e != second)
                    .map(|&e| {
                        format!(
                            "edge #{e} → `{}` on {}",
                            edges[e].to,
                            self.line(self.span(loc!["edges", e]))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let help = match label {
                    None => "a node continues along exactly one edge: chain these targets, run them \
                             concurrently with `parallel`, or choose between them with `condition`/`switch`"
                        .to_string(),
                    Some(l) => format!("keep exactly one `when = \"{l}\"` edge from `{id}`"),
                };
                let mut d = Diagnostic::new(
                    Code::AmbiguousSuccessor,
                    self.path(),
                    format!(
                        "node `{id}` has {} out-edges for {} (to {targets}); a run would fail here \
                         because workflow graphs must select exactly one",
                        idxs.len(),
                        branch_name(label)
                    ),
                )
                .with_span(span)
                .with_label("matches the same branch as another edge")
                .with_note(format!("other matching edges: {others}"))
                .with_help(help);
                if idxs.iter().any(|&e| is_loop(&edges[e])) {
                    d = d.with_note(
                        "a loop edge (`max_iterations`) collides with other edges of the same label \
                         until its budget is spent",
                    );
                }
                self.push(d);
            }
        }
    }

    pub(super) fn check_edge_labels(&mut self) {
        for (ei, e) in self.doc.edges.iter().enumerate() {
            let Some(label) = e.when.as_deref() else {
                continue;
            };
            let Some(&(_, kind)) = self.first.get(e.from.as_str()) else {
                continue;
            };
            if kind.ends_run() {
                continue;
            }
            let Some(labels) = kind.emitted_labels() else {
                continue; // switch: any label may occur
            };
            if labels.contains(&label) {
                continue;
            }
            let kname = kind.type_name();
            let span = self.span(loc!["edges", ei, "when"]);
            let d = if labels.is_empty() {
                let help = if label == "error" {
                    format!(
                        "`{kname}` failures are hard errors that abort the run and no edge can catch them; \
                         remove this edge"
                    )
                } else {
                    "remove `when` to make the edge unconditional, or route through a `condition` or \
                     `switch` node"
                        .to_string()
                };
                Diagnostic::new(
                    Code::UnlabelledSourceWhen,
                    self.path(),
                    format!(
                        "edge #{ei} `{}` → `{}` has `when = \"{label}\"`, but `{kname}` nodes never emit a \
                         branch label, so it is never taken",
                        e.from, e.to
                    ),
                )
                .with_span(span)
                .with_label("never matches")
                .with_help(help)
            } else if label == "error" {
                Diagnostic::new(
                    Code::ErrorEdgeNeverTaken,
                    self.path(),
                    format!(
                        "edge #{ei} `{}` → `{}` waits for an `error` branch, but `{kname}` nodes never take \
                         one (they emit {})",
                        e.from,
                        e.to,
                        ticked(labels.iter().copied())
                    ),
                )
                .with_span(span)
                .with_label("never taken")
                .with_help(format!(
                    "route on {} instead, or remove this edge",
                    ticked(labels.iter().copied())
                ))
            } else if label == "exhausted" {
                Diagnostic::new(
                    Code::ExhaustedEdgeNotAgentLoop,
                    self.path(),
                    format!(
                        "edge #{ei} `{}` → `{}` waits for `exhausted`, which only `agent_loop` nodes emit; \
                         `{kname}` emits {}",
                        e.from,
                        e.to,
                        ticked(labels.iter().copied())
                    ),
                )
                .with_span(span)
                .with_label("never taken")
                .with_help(format!(
                    "route on {} instead, or remove this edge",
                    ticked(labels.iter().copied())
                ))
            } else {
                let help = did_you_mean(label, labels.iter().copied())
                    .map(|m| format!("{m} (labels compare case-sensitively)"))
                    .unwrap_or_else(|| format!("use one of {}", ticked(labels.iter().copied())));
                Diagnostic::new(
                    Code::LabelNeverEmitted,
                    self.path(),
                    format!(
                        "edge #{ei} `{}` → `{}` has `when = \"{label}\"`, but `{kname}` nodes only emit {}",
                        e.from,
                        e.to,
                        ticked(labels.iter().copied())
                    ),
                )
                .with_span(span)
                .with_label("never matches")
                .with_help(help)
            };
            self.push(d);
        }
    }

    pub(super) fn check_condition_branches(&mut self) {
        for &id in &self.ids.clone() {
            let Some(&(i, NodeKind::Condition(_))) = self.first.get(id) else {
                continue;
            };
            let has = |l: &str| {
                self.doc
                    .edges
                    .iter()
                    .any(|e| e.from == id && e.when.as_deref() == Some(l))
            };
            let missing: Vec<&str> = ["true", "false"].into_iter().filter(|l| !has(l)).collect();
            if missing.is_empty() {
                continue;
            }
            let which = missing
                .iter()
                .map(|l| format!("`when = \"{l}\"`"))
                .collect::<Vec<_>>()
                .join(" or ");
            let d = Diagnostic::new(
                Code::ConditionMissingBranch,
                self.path(),
                format!(
                    "condition `{id}` has no {which} edge; on that branch the run completes at the \
                     condition with its `{{\"value\": ...}}` output"
                ),
            )
            .with_span(self.span(loc!["nodes", i, "id"]))
            .with_label("missing branch")
            .with_help(format!(
                "add [[edges]] from = \"{id}\", when = \"{}\", to = \"...\" (a `fail` or `terminate` node \
                 makes the outcome explicit)",
                missing[0]
            ));
            self.push(d);
        }
    }
}
