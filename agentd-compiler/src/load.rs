//! Whole-program loading: a workflow file plus every child workflow it reaches through
//! `call`, `parallel` and `map`, each parsed and validated, with cross-file checks.
//!
//! Child paths resolve relative to the referring file's directory first and fall back to
//! the working directory (dialect 1 resolved them against the CWD, and the compat
//! examples are written that way). Each distinct file (by canonical path) is loaded
//! once. References form a graph over files; a cycle or a chain deeper than the
//! runtime's nesting bound is a build error, because the shipped binary must contain
//! every child and can never read a workflow file at run time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::codes::Code;
use crate::diagnostics::{Diagnostic, SourceDb};
use crate::model::{NodeKind, WorkflowDoc};
use crate::parse::{self, ParseResult};
use crate::source::{Loc, Seg, SourceFile};
use crate::validate::{self, ValidateOptions};

/// Dialect 1 runs children at depth d+1 and fails past 8; a static chain longer than
/// that can never run to completion.
pub const MAX_CHILD_DEPTH: usize = 8;

/// How to find files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Fallback directory for child paths written relative to the process CWD.
    pub cwd: PathBuf,
    /// Accept custom Rust nodes (`type = "rust"`, an agentd extension) in every file
    /// of the program. Off by default: strict dialect 1.
    pub allow_rust_nodes: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            allow_rust_nodes: false,
        }
    }
}

/// One loaded workflow file. A file that parsed was valid UTF-8, so
/// `source.text.as_bytes()` are exactly the bytes on disk (what signatures cover).
#[derive(Debug, Clone)]
pub struct Unit {
    pub source: SourceFile,
    pub doc: WorkflowDoc,
    /// Canonical path (the identity of the file).
    pub canonical: PathBuf,
    /// Resolved child references, in node order.
    pub children: Vec<ChildRef>,
    /// `[policy.rego]` resolved (file read, compiled) when it is valid; a problem
    /// with it is one of the program's diagnostics.
    pub rego: Option<crate::resolve::rego::RegoIr>,
}

/// A `call`/`parallel` branch/`map` reference resolved to a loaded unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRef {
    /// Index of the referring node in `doc.nodes`.
    pub node: usize,
    /// Branch index for `parallel`, `None` otherwise.
    pub branch: Option<usize>,
    /// Index of the child in [`Program::units`].
    pub unit: usize,
}

/// The result of loading a workflow and its children.
#[derive(Debug, Default)]
pub struct Program {
    /// Every file that parsed; `units[0]` is the root when it parsed.
    pub units: Vec<Unit>,
    /// All diagnostics from every file, in discovery order.
    pub diagnostics: Vec<Diagnostic>,
    /// Texts of every file read, for rendering diagnostics.
    pub sources: SourceDb,
}

impl Program {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The root workflow, when it parsed.
    pub fn root(&self) -> Option<&Unit> {
        self.units.first()
    }

    /// Index of the unit for a child reference of `unit`'s node (and branch).
    pub fn child_of(&self, unit: usize, node: usize, branch: Option<usize>) -> Option<usize> {
        self.units
            .get(unit)?
            .children
            .iter()
            .find(|c| c.node == node && c.branch == branch)
            .map(|c| c.unit)
    }
}

/// A check of a file's raw bytes before the TOML parser sees them (signature
/// verification: a tampered file must never reach the parser).
pub trait ParseGate {
    /// Called with the bytes of `path` before they are parsed; `root` is the
    /// parsed root workflow when `path` is a child. An error diagnostic stops
    /// the file from being parsed (it is reported and the file is not loaded).
    fn before_parse(
        &mut self,
        path: &Path,
        bytes: &[u8],
        root: Option<&Unit>,
    ) -> Option<Diagnostic>;
}

/// Load `path` and everything it references.
pub fn load(path: &Path, opts: &LoadOptions) -> Program {
    let parsed = parse::parse_file(path);
    load_parsed(parsed, opts, None)
}

/// [`load`], with every file's bytes passed through `gate` before parsing.
pub fn load_gated(path: &Path, opts: &LoadOptions, gate: &mut dyn ParseGate) -> Program {
    let parsed = read_gated(path, &mut Some(&mut *gate), None);
    load_parsed(parsed, opts, Some(gate))
}

/// Load from text already in memory (used by tests and the scenario harness).
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Program {
    load_parsed(parse::parse_str(path, text), opts, None)
}

fn load_parsed<'a>(
    parsed: ParseResult,
    opts: &'a LoadOptions,
    gate: Option<&'a mut dyn ParseGate>,
) -> Program {
    let mut loader = Loader {
        opts,
        gate,
        program: Program::default(),
        by_path: BTreeMap::new(),
        root_doc: None,
    };
    let canonical = canonical_or_given(parsed.source.path());
    loader.admit(parsed, canonical, 0, &mut Vec::new());
    loader.program
}

/// Read `path`, let `gate` see the bytes, then parse them. Unreadable and
/// oversized files go straight to the parser's own diagnostics.
fn read_gated(
    path: &Path,
    gate: &mut Option<&mut dyn ParseGate>,
    root: Option<&Unit>,
) -> ParseResult {
    let Some(gate) = gate.as_mut() else {
        return parse::parse_file(path);
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) if bytes.len() <= parse::MAX_WORKFLOW_BYTES => bytes,
        _ => return parse::parse_file(path),
    };
    match gate.before_parse(path, &bytes, root) {
        Some(refused) => ParseResult {
            source: SourceFile::new(path, String::new()),
            doc: None,
            diagnostics: vec![refused],
        },
        None => parse::parse_bytes(path, &bytes),
    }
}

struct Loader<'a> {
    opts: &'a LoadOptions,
    /// Checks each child's bytes before it is parsed (see [`ParseGate`]).
    gate: Option<&'a mut dyn ParseGate>,
    program: Program,
    /// Canonical path → unit index (`None` while the file failed to parse).
    by_path: BTreeMap<PathBuf, Option<usize>>,
    /// The root workflow, once parsed (children use its backends; its sections govern
    /// theirs).
    root_doc: Option<WorkflowDoc>,
}

/// Where a reference was written, for diagnostics.
struct RefSite<'a> {
    source: &'a SourceFile,
    loc: Loc,
}

impl Loader<'_> {
    /// Parse-validate one file and recurse into its children. Returns the unit index
    /// when the file parsed. `stack` holds the canonical paths currently being loaded,
    /// for cycle detection.
    fn admit(
        &mut self,
        parsed: ParseResult,
        canonical: PathBuf,
        depth: usize,
        stack: &mut Vec<PathBuf>,
    ) -> Option<usize> {
        let ParseResult {
            source,
            doc,
            diagnostics,
        } = parsed;
        self.program.sources.add(&source);
        self.program.diagnostics.extend(diagnostics);
        let Some(doc) = doc else {
            self.by_path.insert(canonical, None);
            return None;
        };
        let base_dir = source
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let vopts = ValidateOptions {
            base_dir,
            cwd: self.opts.cwd.clone(),
            allow_rust_nodes: self.opts.allow_rust_nodes,
        };
        // Children run on the root's engine (its backends, policy, secrets), so they
        // are validated against the root's backends and not nagged about policy.
        let diags = match (&self.root_doc, depth) {
            (_, 0) => {
                self.root_doc = Some(doc.clone());
                validate::validate(&source, &doc, &vopts)
            }
            (Some(root), _) => validate::validate_child_of(&source, &doc, &vopts, root),
            (None, _) => validate::validate_child(&source, &doc, &vopts, &[]),
        };
        self.program.diagnostics.extend(diags);
        let rego = doc
            .policy
            .as_ref()
            .and_then(|p| p.rego.as_ref())
            .and_then(|r| {
                // A policy file's text, so a diagnostic can point into it.
                if let Some((path, text)) = r.file.as_deref().and_then(|file| {
                    crate::resolve::rego::read_file(file, &vopts.base_dir, &vopts.cwd).ok()
                }) {
                    self.program.sources.add_text(&path, &text);
                }
                crate::resolve::rego::resolve(r, &vopts.base_dir, &vopts.cwd).ok()
            });

        let index = self.program.units.len();
        self.program.units.push(Unit {
            source: source.clone(),
            doc: doc.clone(),
            canonical: canonical.clone(),
            children: Vec::new(),
            rego,
        });
        self.by_path.insert(canonical.clone(), Some(index));
        stack.push(canonical);

        let mut children = Vec::new();
        for (node_idx, node) in doc.nodes.iter().enumerate() {
            for (branch, (written, key_loc)) in node.kind.child_workflows().into_iter().enumerate()
            {
                let branch = matches!(node.kind, NodeKind::Parallel(_)).then_some(branch);
                let mut loc: Loc = vec![Seg::key("nodes"), Seg::Index(node_idx)];
                loc.extend(key_loc);
                if written.trim().is_empty() {
                    // `map_empty_workflow` already covers map; parallel/call get the
                    // missing-file diagnostic below.
                    if matches!(node.kind, NodeKind::Map(_)) {
                        continue;
                    }
                }
                let site = RefSite {
                    source: &source,
                    loc,
                };
                let start = child_start(&node.kind, branch);
                if let Some(unit) = self.reference(&site, written, start, depth, stack) {
                    children.push(ChildRef {
                        node: node_idx,
                        branch,
                        unit,
                    });
                }
            }
        }
        stack.pop();
        self.program.units[index].children = children;
        Some(index)
    }

    /// Resolve, load and check one child reference.
    fn reference(
        &mut self,
        site: &RefSite<'_>,
        written: &str,
        start: Option<&str>,
        depth: usize,
        stack: &mut Vec<PathBuf>,
    ) -> Option<usize> {
        let parent = site.source.path();
        let span = site.source.span_of(&site.loc);
        let Some(found) = resolve_child(parent, written, &self.opts.cwd) else {
            let rel = parent.parent().unwrap_or(Path::new("")).join(written);
            self.program.diagnostics.push(
                Diagnostic::new(
                    Code::ChildWorkflowMissing,
                    parent,
                    format!("child workflow `{written}` does not exist"),
                )
                .with_span(span)
                .with_label("no such file")
                .with_note(format!(
                    "looked for `{}` and `{}`",
                    rel.display(),
                    self.opts.cwd.join(written).display()
                ))
                .with_help("child paths are resolved relative to this file's directory, then the working directory"),
            );
            return None;
        };
        let canonical = canonical_or_given(&found);
        if stack.contains(&canonical) {
            let chain: Vec<String> = stack
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| p.display().to_string())
                .collect();
            self.program.diagnostics.push(
                Diagnostic::new(
                    Code::ChildWorkflowCycle,
                    parent,
                    format!("child workflow `{written}` refers back to a workflow that is already being called"),
                )
                .with_span(span)
                .with_label("cycle closes here")
                .with_note(format!("reference chain: {}", chain.join(" -> ")))
                .with_help("workflows compiled into one binary cannot call each other recursively; break the cycle"),
            );
            return None;
        }
        if depth + 1 > MAX_CHILD_DEPTH {
            self.program.diagnostics.push(
                Diagnostic::new(
                    Code::ChildWorkflowTooDeep,
                    parent,
                    format!(
                        "child workflow `{written}` is nested {} levels deep; the limit is {MAX_CHILD_DEPTH}",
                        depth + 1
                    ),
                )
                .with_span(span)
                .with_help("flatten the composition: fewer levels of call/parallel/map"),
            );
            return None;
        }
        let unit = match self.by_path.get(&canonical) {
            Some(known) => *known,
            None => {
                let parsed = read_gated(&found, &mut self.gate, self.program.units.first());
                let before = self.program.diagnostics.len();
                let unit = self.admit(parsed, canonical, depth + 1, stack);
                let child_errors = self.program.diagnostics[before..]
                    .iter()
                    .filter(|d| d.is_error())
                    .count();
                if child_errors > 0 {
                    self.program.diagnostics.push(
                        Diagnostic::new(
                            Code::ChildWorkflowInvalid,
                            parent,
                            format!(
                                "child workflow `{written}` has {child_errors} error{}",
                                if child_errors == 1 { "" } else { "s" }
                            ),
                        )
                        .with_span(span.clone())
                        .with_label("referenced here")
                        .with_help("fix the errors reported for the child file above"),
                    );
                }
                unit
            }
        };
        let unit = unit?;
        let child = &self.program.units[unit].doc;
        let known: Vec<String> = child.start_nodes.iter().map(|s| s.name.clone()).collect();
        match start {
            Some(name) if !known.iter().any(|k| k == name) => {
                let mut d = Diagnostic::new(
                    Code::UnknownChildStart,
                    parent,
                    format!("child workflow `{written}` has no start node named `{name}`"),
                )
                .with_span(span);
                d = match parse::suggest(name, &known) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None if known.is_empty() => {
                        d.with_help("the child declares no [[start_nodes]]")
                    }
                    None => d.with_help(format!("declared start nodes: {}", known.join(", "))),
                };
                self.program.diagnostics.push(d);
            }
            None if known.is_empty() => {
                self.program.diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownChildStart,
                        parent,
                        format!("child workflow `{written}` declares no start nodes"),
                    )
                    .with_span(span)
                    .with_help("add a [[start_nodes]] entry to the child workflow"),
                );
            }
            _ => {}
        }
        Some(unit)
    }
}

fn child_start(kind: &NodeKind, branch: Option<usize>) -> Option<&str> {
    match kind {
        NodeKind::Call(c) => c.start.as_deref(),
        NodeKind::Map(m) => m.start.as_deref(),
        NodeKind::Parallel(p) => branch
            .and_then(|b| p.branches.get(b))
            .and_then(|b| b.start.as_deref()),
        _ => None,
    }
}

/// Find a child file: relative to the parent's directory, then to `cwd`.
pub fn resolve_child(parent: &Path, written: &str, cwd: &Path) -> Option<PathBuf> {
    let written_path = Path::new(written);
    if written_path.is_absolute() {
        return written_path.is_file().then(|| written_path.to_path_buf());
    }
    let beside = parent.parent().unwrap_or(Path::new("")).join(written_path);
    if beside.is_file() {
        return Some(beside);
    }
    let from_cwd = cwd.join(written_path);
    from_cwd.is_file().then_some(from_cwd)
}

fn canonical_or_given(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write test file");
        p
    }

    fn tmpdir(tag: &str) -> crate::test_support::TempDir {
        crate::test_support::temp_dir(&format!("load-{tag}"))
    }

    const CHILD: &str = "name = \"child\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"r\"\ntype = \"merge\"\n";

    fn parent_calling(workflow: &str) -> String {
        format!(
            "name = \"parent\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"c\"\ntype = \"call\"\nworkflow = \"{workflow}\"\n"
        )
    }

    fn codes(p: &Program) -> Vec<Code> {
        errors(p).iter().map(|d| d.code).collect()
    }

    /// The errors, in order (the parent's `call` without an `error` edge
    /// also gets a warning).
    fn errors(p: &Program) -> Vec<&Diagnostic> {
        p.diagnostics.iter().filter(|d| d.is_error()).collect()
    }

    #[test]
    fn child_resolves_beside_the_parent() {
        let dir = tmpdir("beside");
        write(&dir, "child.toml", CHILD);
        let parent = write(&dir, "parent.toml", &parent_calling("child.toml"));
        let p = load(
            &parent,
            &LoadOptions {
                cwd: PathBuf::from("/nonexistent"),
                ..LoadOptions::default()
            },
        );
        assert!(codes(&p).is_empty(), "{:?}", p.diagnostics);
        assert_eq!(p.units.len(), 2);
        assert_eq!(p.child_of(0, 0, None), Some(1));
    }

    #[test]
    fn child_falls_back_to_the_working_directory() {
        let dir = tmpdir("cwd");
        std::fs::create_dir_all(dir.join("examples")).expect("mkdir");
        write(&dir.join("examples"), "child.toml", CHILD);
        let parent = write(
            &dir.join("examples"),
            "parent.toml",
            &parent_calling("examples/child.toml"),
        );
        let p = load(
            &parent,
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert!(codes(&p).is_empty(), "{:?}", p.diagnostics);
        assert_eq!(p.units.len(), 2);
    }

    #[test]
    fn missing_child_points_at_the_workflow_value() {
        let dir = tmpdir("missing");
        let text = parent_calling("nope.toml");
        let parent = write(&dir, "parent.toml", &text);
        let p = load(
            &parent,
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert_eq!(codes(&p), vec![Code::ChildWorkflowMissing]);
        let span = errors(&p)[0].span.clone().expect("span");
        assert_eq!(&text[span], "\"nope.toml\"");
    }

    #[test]
    fn invalid_child_reports_both_files() {
        let dir = tmpdir("invalid");
        write(
            &dir,
            "child.toml",
            "name = \"child\"\n[[nodes]]\nid = \"a\"\ntype = \"bogus\"\n",
        );
        let parent = write(&dir, "parent.toml", &parent_calling("child.toml"));
        let p = load(
            &parent,
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert_eq!(
            codes(&p),
            vec![Code::UnknownVariant, Code::ChildWorkflowInvalid]
        );
        assert!(errors(&p)[0].file.ends_with("child.toml"));
        assert!(errors(&p)[1].file.ends_with("parent.toml"));
    }

    #[test]
    fn cycle_between_files_is_an_error() {
        let dir = tmpdir("cycle");
        write(
            &dir,
            "a.toml",
            &parent_calling("b.toml").replace("parent", "a"),
        );
        write(
            &dir,
            "b.toml",
            &parent_calling("a.toml").replace("parent", "b"),
        );
        let p = load(
            &dir.join("a.toml"),
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert!(
            codes(&p).contains(&Code::ChildWorkflowCycle),
            "{:?}",
            p.diagnostics
        );
    }

    #[test]
    fn chains_deeper_than_the_runtime_bound_are_rejected() {
        let dir = tmpdir("deep");
        for i in 0..10 {
            write(
                &dir,
                &format!("w{i}.toml"),
                &parent_calling(&format!("w{}.toml", i + 1)).replace("parent", &format!("w{i}")),
            );
        }
        write(&dir, "w10.toml", CHILD);
        let p = load(
            &dir.join("w0.toml"),
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert!(
            codes(&p).contains(&Code::ChildWorkflowTooDeep),
            "{:?}",
            p.diagnostics
        );
    }

    #[test]
    fn shared_child_is_loaded_once() {
        let dir = tmpdir("shared");
        write(&dir, "child.toml", CHILD);
        let text = "name = \"p\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"par\"\ntype = \"parallel\"\nbranches = [{ workflow = \"child.toml\" }, { workflow = \"./child.toml\" }]\n";
        let parent = write(&dir, "parent.toml", text);
        let p = load(
            &parent,
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert!(codes(&p).is_empty(), "{:?}", p.diagnostics);
        assert_eq!(p.units.len(), 2);
        assert_eq!(p.child_of(0, 0, Some(0)), Some(1));
        assert_eq!(p.child_of(0, 0, Some(1)), Some(1));
    }

    #[test]
    fn unknown_child_start_is_reported() {
        let dir = tmpdir("start");
        write(&dir, "child.toml", CHILD);
        let text = parent_calling("child.toml") + "start = \"mian\"\n";
        let parent = write(&dir, "parent.toml", &text);
        let p = load(
            &parent,
            &LoadOptions {
                cwd: dir.to_path_buf(),
                ..LoadOptions::default()
            },
        );
        assert_eq!(codes(&p), vec![Code::UnknownChildStart]);
        assert_eq!(errors(&p)[0].help.as_deref(), Some("did you mean `main`?"));
    }
}
