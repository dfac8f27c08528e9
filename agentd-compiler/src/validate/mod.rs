//! The validator: every dialect-1 check of spec/dialect-model.md §7, plus our own
//! (DESIGN.md §8).
//!
//! [`validate`] never fails fast and never panics: it returns every problem it finds,
//! in a deterministic order. The 24 dialect-1 codes come first, in the spec's emission
//! order (§7.2), with the spec's skip rules; our extra checks follow in a fixed order:
//!
//! 1. route auth references (`bad_auth_ref`, `unknown_auth_binding`,
//!    `mtls_without_client_auth`);
//! 2. trigger syntax (`invalid_cron`, `invalid_interval`, `invalid_fs_watch_event`,
//!    `invalid_fs_watch_debounce`,
//!    `unknown_trigger_mcp_server`);
//! 3. intelligence backends (`reserved_backend_name`, `dup_backend_name`,
//!    `unknown_backend`) and `output_schema_unreadable`;
//! 4. routing (`ambiguous_successor`, then one label warning per edge, then
//!    `condition_missing_branch`);
//! 5. `no_policy`, then `[policy.rego]` and `[[mcp_servers]]` (`rego_*`,
//!    `dup_mcp_server_name`, `invalid_mcp_server`, `key_has_no_effect`,
//!    `mcp_server_not_in_policy`; module `policy`);
//! 6. custom Rust nodes;
//! 7. secrets (`dup_secret_name`, `secret_command_empty`, `secret_oauth2_*`,
//!    `secret_literal_material`; module `secrets`);
//! 8. auth bindings and `[server.tls]` (`oidc_algorithm_rejected`,
//!    `oidc_jwks_source`, `oidc_jwks_invalid`, `oidc_jwks_file_unreadable`,
//!    `auth_literal_secret`, `hmac_tolerance_without_timestamp`,
//!    `tls_client_ca_missing`; module `auth`);
//! 9. `[logging]` (`invalid_logging`, `invalid_otel`; module `logging`), then retry
//!    numbers and keys without effect (module `no_effect`);
//! 10. routes (`reserved_route`, `invalid_rate_limit`, `input_schema_invalid`; module
//!     `routes`);
//! 11. `[budget]` (`budget_out_of_range`; module `budget`).
//!
//! Maps are iterated in sorted order, so header issues (a hash map in dialect 1) come
//! out in header-name order. Every diagnostic points at the most precise span we can
//! find and carries a help line that says how to fix it. The list of codes, with an
//! explanation and an example of each, is in [`crate::codes`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::diagnostics::{Diagnostic, line_col};
use crate::grammar::{
    AuthRef, AuthScheme, is_rust_identifier, parse_auth_ref, parse_cron, parse_interval,
};
use crate::loc;
use crate::model::{AGENT_LOOP_TOOLS, ClientAuthMode, Edge, NodeKind, Trigger, WorkflowDoc};
use crate::parse::suggest;
use crate::source::{Loc, Seg, SourceFile};

mod auth;
mod backends;
mod budget;
mod logging;
mod no_effect;
mod policy;
mod routes;
mod secrets;
mod silent;
pub use auth::{OIDC_ALGORITHMS, check_jwks, rejected_algorithm};
pub use routes::{MIN_PER_SECOND, RESERVED_GET_PATHS};
pub use secrets::{CREDENTIAL_HEADERS, header_secret_names};

/// Largest `agent_loop.max_steps` dialect 1 accepts.
pub const MAX_AGENT_LOOP_STEPS: u32 = 64;

/// The backend name reserved for the CLI-configured transport.
pub const DEFAULT_BACKEND: &str = "default";

/// `fs_watch.events` values (case-insensitive); `delete` is an alias of `remove`.
pub const FS_WATCH_EVENTS: [&str; 5] = ["create", "modify", "remove", "delete", "rename"];

/// The longest `fs_watch.debounce_ms` accepted: ten minutes. A path must stay quiet
/// that long before its run starts, so anything longer is in practice never.
pub const MAX_FS_WATCH_DEBOUNCE_MS: u64 = 600_000;

/// Settings that come from outside the document.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Directory that relative file references (`output_schema`) are resolved against
    /// first: the directory of the workflow file. Empty means the process CWD.
    pub base_dir: PathBuf,
    /// Fallback directory for files written relative to the process working directory
    /// (the dialect-1 convention). Empty means the process CWD.
    pub cwd: PathBuf,
    /// Accept `type = "rust"` nodes (an agentd extension): true only for front ends
    /// that can bind handlers (`agentd!`). Strict dialect 1 (the default) rejects them.
    pub allow_rust_nodes: bool,
}

impl ValidateOptions {
    /// Options for the workflow file at `path`: relative references resolve against
    /// its directory, then against the process working directory.
    pub fn for_file(path: &Path) -> Self {
        ValidateOptions {
            base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            cwd: PathBuf::new(),
            allow_rust_nodes: false,
        }
    }
}

/// Validate a parsed top-level workflow. Returns every problem found (errors and
/// warnings), in a deterministic order; an empty list means the workflow is clean.
pub fn validate(file: &SourceFile, doc: &WorkflowDoc, opts: &ValidateOptions) -> Vec<Diagnostic> {
    let mut v = Validator::new(file, doc, opts, None);
    v.run();
    v.diags
}

/// Validate a child workflow of `call` / `parallel` / `map`. A child runs on its
/// parent's engine (spec §4.8): its own `[policy]` is not applied, so `no_policy` is
/// not reported, and the backends the parent declares (`parent_backends`) are
/// accepted by `unknown_backend`.
pub fn validate_child(
    file: &SourceFile,
    doc: &WorkflowDoc,
    opts: &ValidateOptions,
    parent_backends: &[String],
) -> Vec<Diagnostic> {
    let mut v = Validator::new(file, doc, opts, Some(parent_backends));
    v.run();
    v.diags
}

/// [`validate_child`] for a child of the root workflow `root`: the root's backends are
/// accepted, and a child section that differs from the root's (which governs) is
/// reported as `key_has_no_effect`.
pub fn validate_child_of(
    file: &SourceFile,
    doc: &WorkflowDoc,
    opts: &ValidateOptions,
    root: &WorkflowDoc,
) -> Vec<Diagnostic> {
    let backends = declared_backends(root);
    let mut v = Validator::new(file, doc, opts, Some(&backends));
    v.root = Some(root);
    v.run();
    v.diags
}

/// Names of the `[[intelligence.backends]]` a document declares.
pub fn declared_backends(doc: &WorkflowDoc) -> Vec<String> {
    doc.intelligence
        .as_ref()
        .map(|i| i.backends.iter().map(|b| b.name.clone()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// Reusable grammars (also used by later stages)
// ---------------------------------------------------------------------------------

/// The runtime's MCP name matcher (`*`, a trailing-`*` prefix, or exact), for
/// `[policy.mcp] servers`.
pub fn mcp_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

// ---------------------------------------------------------------------------------
// The validator
// ---------------------------------------------------------------------------------

struct Validator<'a> {
    file: &'a SourceFile,
    doc: &'a WorkflowDoc,
    opts: &'a ValidateOptions,
    /// `Some(parent backends)` when validating a child workflow.
    parent: Option<&'a [String]>,
    /// The root workflow when validating a child whose root is known: a child section
    /// identical to the root's is not reported as without effect.
    root: Option<&'a WorkflowDoc>,
    diags: Vec<Diagnostic>,
    /// Unique node ids in declaration order.
    ids: Vec<&'a str>,
    id_set: HashSet<&'a str>,
    /// First declaration of each node id: (index, kind).
    first: HashMap<&'a str, (usize, &'a NodeKind)>,
    start_names: HashSet<&'a str>,
}

fn is_loop(e: &Edge) -> bool {
    e.max_iterations.is_some()
}

fn ticked<'s>(names: impl IntoIterator<Item = &'s str>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn did_you_mean<'s>(wrong: &str, candidates: impl IntoIterator<Item = &'s str>) -> Option<String> {
    let cands: Vec<String> = candidates.into_iter().map(str::to_string).collect();
    suggest(wrong, &cands).map(|s| format!("did you mean `{s}`?"))
}

fn branch_name(label: Option<&str>) -> String {
    match label {
        Some(l) => format!("branch `{l}`"),
        None => "the unlabelled branch".to_string(),
    }
}

impl<'a> Validator<'a> {
    fn new(
        file: &'a SourceFile,
        doc: &'a WorkflowDoc,
        opts: &'a ValidateOptions,
        parent: Option<&'a [String]>,
    ) -> Self {
        let mut ids = Vec::new();
        let mut id_set = HashSet::new();
        let mut first = HashMap::new();
        for (i, n) in doc.nodes.iter().enumerate() {
            if id_set.insert(n.id.as_str()) {
                ids.push(n.id.as_str());
                first.insert(n.id.as_str(), (i, &n.kind));
            }
        }
        let start_names = doc.start_nodes.iter().map(|s| s.name.as_str()).collect();
        Validator {
            file,
            doc,
            opts,
            parent,
            root: None,
            diags: Vec::new(),
            ids,
            id_set,
            first,
            start_names,
        }
    }

    fn path(&self) -> &'a Path {
        self.file.path()
    }

    fn span(&self, loc: Loc) -> Option<Range<usize>> {
        self.file.span_of(&loc)
    }

    fn key_span(&self, loc: Loc) -> Option<Range<usize>> {
        self.file.key_span_of(&loc)
    }

    /// "line N" for the start of `span`, for notes that refer to another place.
    fn line(&self, span: Option<Range<usize>>) -> String {
        match span {
            Some(s) => format!("line {}", line_col(&self.file.text, s.start).0),
            None => "an unknown line".to_string(),
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn run(&mut self) {
        // Dialect-1 checks, spec §7.2 emission order.
        self.check_dup_node_ids(); // 1
        self.check_dup_start_names(); // 2
        self.check_http_routes(); // 3
        self.check_trigger_starts(); // 4
        self.check_start_entries(); // 5
        let dangling = self.check_dangling_edges(); // 6
        self.check_mcp_nodes(); // 7
        self.check_agent_loops(); // 8
        self.check_respond_nodes(); // 9
        self.check_map_nodes(); // 10
        self.check_http_headers(); // 11
        if !dangling {
            self.check_cycle(); // 12
            self.check_reachability(); // 13
        }

        // Our extra checks (DESIGN.md §8).
        self.check_route_auth();
        self.check_trigger_syntax();
        self.check_backends();
        self.check_backend_defs();
        self.check_output_schemas();
        self.check_ambiguous_successors();
        self.check_edge_labels();
        self.check_condition_branches();
        self.check_unhandled_error_branches();
        self.check_respond_escaping();
        self.check_policy_present();
        self.check_policy_rego();
        self.check_mcp_servers();
        self.check_rust_nodes();
        self.check_secrets();
        self.check_auth_bindings();
        self.check_server_tls();
        self.check_logging();
        self.check_retry_numbers();
        self.check_keys_without_effect();
        self.check_route_extras();
        self.check_budget();
    }

    // -- 1, 2: uniqueness -------------------------------------------------------------

    fn check_dup_node_ids(&mut self) {
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
                    let d = Diagnostic::error(
                        "dup_node_id",
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

    fn check_dup_start_names(&mut self) {
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
                    let d = Diagnostic::error(
                        "dup_start_name",
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

    fn unknown_start_help(&self, wrong: &str, source: &str) -> String {
        did_you_mean(wrong, self.start_names_sorted()).unwrap_or_else(|| {
            format!(
                "declare it: [[start_nodes]] name = \"{wrong}\", source = \"{source}\", entry_node = \"<node id>\""
            )
        })
    }

    fn start_names_sorted(&self) -> Vec<&'a str> {
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

    fn check_http_routes(&mut self) {
        let mut seen: HashMap<(String, &str), usize> = HashMap::new();
        for (i, route) in self.doc.http_routes.iter().enumerate() {
            let key = (route.method.to_ascii_uppercase(), route.path.as_str());
            if let Some(&f) = seen.get(&key) {
                let first_span = self.span(loc!["http_routes", f, "path"]);
                let d = Diagnostic::error(
                    "dup_http_route",
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
                let d = Diagnostic::error(
                    "unknown_http_start_node",
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

    fn check_trigger_starts(&mut self) {
        for (i, t) in self.doc.triggers.iter().enumerate() {
            let sn = t.start_node();
            if !self.start_names.contains(sn) {
                let d = Diagnostic::error(
                    "unknown_trigger_start_node",
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

    fn node_help(&self, wrong: &str) -> String {
        let mut ids = self.ids.clone();
        ids.sort_unstable();
        did_you_mean(wrong, ids).unwrap_or_else(|| {
            format!("declare a [[nodes]] entry with id = \"{wrong}\", or use one of the declared node ids")
        })
    }

    fn check_start_entries(&mut self) {
        for (i, s) in self.doc.start_nodes.iter().enumerate() {
            if let Some(entry) = &s.entry_node
                && !self.id_set.contains(entry.as_str())
            {
                let d = Diagnostic::error(
                    "unknown_start_entry_node",
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
    fn check_dangling_edges(&mut self) -> bool {
        let mut any = false;
        for (i, e) in self.doc.edges.iter().enumerate() {
            for (end, field, what) in [(&e.from, "from", "source"), (&e.to, "to", "target")] {
                if self.id_set.contains(end.as_str()) {
                    continue;
                }
                any = true;
                let d = Diagnostic::error(
                    "dangling_edge",
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

    // -- 7: MCP servers ---------------------------------------------------------------

    fn check_mcp_nodes(&mut self) {
        let mut known: Vec<&str> = self
            .doc
            .mcp_servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        known.sort_unstable();
        known.dedup();
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let (kind, server) = match &n.kind {
                NodeKind::CallMcpTool(c) => ("call_mcp_tool", c.server.as_deref()),
                NodeKind::ReadMcpResource(r) => ("read_mcp_resource", r.server.as_deref()),
                _ => continue,
            };
            match server {
                Some(name) if !known.contains(&name) => {
                    let help = did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "declare it: [[mcp_servers]] name = \"{name}\", command = [\"/path/to/server\"]"
                        )
                    });
                    let d = Diagnostic::error(
                        "unknown_mcp_server",
                        self.path(),
                        format!(
                            "node `{}` ({kind}) references unknown mcp_server `{name}`",
                            n.id
                        ),
                    )
                    .with_span(self.span(loc!["nodes", i, "server"]))
                    .with_label("not declared in [[mcp_servers]]")
                    .with_help(help);
                    self.push(d);
                }
                None if known.len() > 1 => {
                    let d = Diagnostic::error(
                        "ambiguous_mcp_server",
                        self.path(),
                        format!(
                            "node `{}` ({kind}) has no `server` field but multiple mcp_servers are configured",
                            n.id
                        ),
                    )
                    .with_span(self.span(loc!["nodes", i, "id"]))
                    .with_label("this node does not say which server to use")
                    .with_help(format!("add `server = \"...\"` naming one of {}", ticked(known.iter().copied())));
                    self.push(d);
                }
                _ => {}
            }
        }
    }

    // -- 8: agent_loop ----------------------------------------------------------------

    fn check_agent_loops(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::AgentLoop(a) = &n.kind else {
                continue;
            };
            if a.max_steps == 0 || a.max_steps > MAX_AGENT_LOOP_STEPS {
                let d = Diagnostic::error(
                    "agent_loop_steps_out_of_range",
                    self.path(),
                    format!(
                        "node `{}`: max_steps must be 1..={MAX_AGENT_LOOP_STEPS} (got {})",
                        n.id, a.max_steps
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "max_steps"]))
                .with_label("out of range")
                .with_help(format!(
                    "set `max_steps` between 1 and {MAX_AGENT_LOOP_STEPS}"
                ));
                self.push(d);
            }
            if a.instructions.is_none() && a.instructions_from.is_none() {
                let d = Diagnostic::error(
                    "agent_loop_missing_instructions",
                    self.path(),
                    format!("node `{}`: one of `instructions` / `instructions_from` is required", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "id"]))
                .with_label("this agent_loop has no task")
                .with_help("add `instructions = \"...\"` (literal text) or `instructions_from = \"<context path>\"`");
                self.push(d);
            }
            if a.tools.is_empty() {
                let tools_span = self.span(loc!["nodes", i, "tools"]);
                let span = if self.has_key(loc!["nodes", i, "tools"]) {
                    tools_span
                } else {
                    self.span(loc!["nodes", i, "id"])
                };
                let d = Diagnostic::error(
                    "agent_loop_no_tools",
                    self.path(),
                    format!(
                        "node `{}`: `tools` must list at least one of: {}",
                        n.id,
                        AGENT_LOOP_TOOLS.join(", ")
                    ),
                )
                .with_span(span)
                .with_label("no tools declared")
                .with_help("list the tools the loop may call, e.g. `tools = [\"read_file\"]`");
                self.push(d);
            }
            for (k, t) in a.tools.iter().enumerate() {
                if AGENT_LOOP_TOOLS.contains(&t.as_str()) {
                    continue;
                }
                let help = did_you_mean(t, AGENT_LOOP_TOOLS)
                    .unwrap_or_else(|| format!("loop tools are: {}", AGENT_LOOP_TOOLS.join(", ")));
                let d = Diagnostic::error(
                    "agent_loop_unknown_tool",
                    self.path(),
                    format!(
                        "node `{}`: `{t}` is not a loop tool (known: {})",
                        n.id,
                        AGENT_LOOP_TOOLS.join(", ")
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "tools", k]))
                .with_label("unknown tool")
                .with_help(help);
                self.push(d);
            }
        }
    }

    /// True when the key at `loc` is literally present in the file (`key_span_of`
    /// falls back to an ancestor when it is not).
    fn has_key(&self, loc: Loc) -> bool {
        let Some(Seg::Key(last)) = loc.last() else {
            return false;
        };
        self.file
            .key_span_of(&loc)
            .and_then(|s| self.file.text.get(s))
            .is_some_and(|t| t.trim_matches(['"', '\'']) == last)
    }

    // -- 9: respond -------------------------------------------------------------------

    fn check_respond_nodes(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Respond(r) = &n.kind else {
                continue;
            };
            if let Some(status) = r.status
                && !(100..=599).contains(&status)
            {
                let d = Diagnostic::error(
                    "respond_status_out_of_range",
                    self.path(),
                    format!(
                        "node `{}`: respond status must be 100..=599 (got {status})",
                        n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "status"]))
                .with_label("not an HTTP status code")
                .with_help("use an HTTP status between 100 and 599, or omit `status` for 200");
                self.push(d);
            }
            if let Some(ct) = &r.content_type
                && ct.trim().is_empty()
            {
                let d = Diagnostic::error(
                    "respond_empty_content_type",
                    self.path(),
                    format!("node `{}`: respond content_type must not be blank", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "content_type"]))
                .with_label("blank content type")
                .with_help("set a media type such as \"text/plain\", or omit `content_type` for application/json");
                self.push(d);
            }
        }
    }

    // -- 10: map ----------------------------------------------------------------------

    fn check_map_nodes(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Map(m) = &n.kind else {
                continue;
            };
            if m.max_items == 0 {
                let d = Diagnostic::error(
                    "map_zero_max_items",
                    self.path(),
                    format!("node `{}`: map max_items must be at least 1", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "max_items"]))
                .with_label("zero")
                .with_help("set `max_items` to the largest array this map may fan out over");
                self.push(d);
            }
            if m.max_concurrent == Some(0) {
                let d = Diagnostic::error(
                    "map_zero_concurrency",
                    self.path(),
                    format!("node `{}`: map max_concurrent must be at least 1", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "max_concurrent"]))
                .with_label("zero")
                .with_help("set `max_concurrent` to 1 or more, or omit it for the default of 4");
                self.push(d);
            }
            if m.workflow.trim().is_empty() {
                let d = Diagnostic::error(
                    "map_empty_workflow",
                    self.path(),
                    format!("node `{}`: map workflow must not be blank", n.id),
                )
                .with_span(self.span(loc!["nodes", i, "workflow"]))
                .with_label("blank path")
                .with_help("set `workflow` to the path of the child workflow file");
                self.push(d);
            }
        }
    }

    // -- 11: http_request headers -----------------------------------------------------

    fn check_http_headers(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::HttpRequest(h) = &n.kind else {
                continue;
            };
            let Some(headers) = &h.headers else {
                continue;
            };
            // BTreeMap: sorted by header name, so the order is stable.
            for (name, value) in headers {
                let hloc = loc!["nodes", i, "headers", name.as_str()];
                let valid_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid_name {
                    let d = Diagnostic::error(
                        "http_header_bad_name",
                        self.path(),
                        format!(
                            "node `{}`: header name `{name}` must match [A-Za-z0-9_-]+",
                            n.id
                        ),
                    )
                    .with_span(self.key_span(hloc.clone()))
                    .with_label("invalid header name")
                    .with_help("header names may contain only ASCII letters, digits, `-` and `_`");
                    self.push(d);
                }
                if value.contains(['\r', '\n']) {
                    let d = Diagnostic::error(
                        "http_header_crlf",
                        self.path(),
                        format!("node `{}`: header `{name}` value contains CR or LF", n.id),
                    )
                    .with_span(self.span(hloc.clone()))
                    .with_label("line break in a header value")
                    .with_help(
                        "remove the line breaks; a CR/LF would let the value inject extra headers",
                    );
                    self.push(d);
                }
                if let Err(why) = check_header_placeholders(value) {
                    let d = Diagnostic::error(
                        "http_header_bad_placeholder",
                        self.path(),
                        format!("node `{}`: header `{name}`: {why}", n.id),
                    )
                    .with_span(self.span(hloc.clone()))
                    .with_label("bad placeholder")
                    .with_help(
                        "header values are literals plus `{{secret:NAME}}` placeholders only; \
                         context data can never reach a header",
                    );
                    self.push(d);
                }
            }
        }
    }

    // -- 12: cycles -------------------------------------------------------------------

    fn check_cycle(&mut self) {
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

        let mut d = Diagnostic::error(
            "cycle",
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

    fn check_reachability(&mut self) {
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
                    let d = Diagnostic::error(
                        "ambiguous_start_entry",
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
            let mut d = Diagnostic::error(
                "unreachable_node",
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

    // -- extra: route auth ------------------------------------------------------------

    fn bindings(&self, scheme: AuthScheme) -> Vec<&'a str> {
        let Some(auth) = &self.doc.auth else {
            return Vec::new();
        };
        match scheme {
            AuthScheme::Bearer => auth.bearer.keys().map(String::as_str).collect(),
            AuthScheme::Basic => auth.basic.keys().map(String::as_str).collect(),
            AuthScheme::Hmac => auth.hmac.keys().map(String::as_str).collect(),
            AuthScheme::Oidc => auth.oidc.keys().map(String::as_str).collect(),
        }
    }

    fn check_route_auth(&mut self) {
        for (i, route) in self.doc.http_routes.iter().enumerate() {
            let Some(raw) = &route.auth else {
                continue;
            };
            let span = self.span(loc!["http_routes", i, "auth"]);
            match parse_auth_ref(raw) {
                Err(why) => {
                    let kind = raw.trim().split_once(':').map_or(raw.trim(), |(k, _)| k);
                    let help = if kind == "mtls" {
                        "write plain `mtls`; the client certificate identifies the caller"
                            .to_string()
                    } else if ["bearer", "basic", "hmac", "oidc"].contains(&kind) {
                        format!(
                            "name the binding (`{kind}:<name>`), or write `{kind}` for `{kind}:default`"
                        )
                    } else {
                        did_you_mean(kind, ["none", "bearer", "basic", "hmac", "oidc", "mtls"])
                            .map(|m| format!("{m} (auth kinds are case-sensitive)"))
                            .unwrap_or_else(|| {
                                "write `none`, `bearer[:name]`, `basic[:name]`, `hmac[:name]`, \
                                 `oidc[:name]` or `mtls`"
                                    .to_string()
                            })
                    };
                    let d = Diagnostic::error(
                        "bad_auth_ref",
                        self.path(),
                        format!(
                            "HTTP route `{} {}`: invalid auth reference `{raw}`: {why}",
                            route.method, route.path
                        ),
                    )
                    .with_span(span)
                    .with_label("not an auth reference")
                    .with_help(help);
                    self.push(d);
                }
                Ok(AuthRef::Anonymous) => {}
                Ok(AuthRef::Binding { scheme, name }) => {
                    let known = self.bindings(scheme);
                    if known.contains(&name.as_str()) {
                        continue;
                    }
                    let s = scheme.as_str();
                    let help = did_you_mean(&name, known.iter().copied())
                        .map(|m| format!("{m} (write `auth = \"{s}:<name>\"`)"))
                        .unwrap_or_else(|| {
                            format!("declare the binding as a [auth.{s}.{name}] table")
                        });
                    let implicit = if raw.trim().contains(':') {
                        String::new()
                    } else {
                        format!(" (`{s}` alone means `{s}:default`)")
                    };
                    let d = Diagnostic::error(
                        "unknown_auth_binding",
                        self.path(),
                        format!(
                            "HTTP route `{} {}`: auth ref `{s}:{name}` is not defined in [auth.{s}]{implicit}",
                            route.method, route.path
                        ),
                    )
                    .with_span(span)
                    .with_label(format!("no [auth.{s}.{name}] binding"))
                    .with_help(help);
                    self.push(d);
                }
                Ok(AuthRef::Mtls) => {
                    let client_auth = self
                        .doc
                        .server
                        .as_ref()
                        .and_then(|s| s.tls.as_ref())
                        .and_then(|t| t.client_auth.as_ref())
                        .map(|c| c.mode);
                    if matches!(client_auth, None | Some(ClientAuthMode::None)) {
                        let d = Diagnostic::error(
                            "mtls_without_client_auth",
                            self.path(),
                            format!(
                                "HTTP route `{} {}` requires mtls but no TLS client authentication is configured",
                                route.method, route.path
                            ),
                        )
                        .with_span(span)
                        .with_label("no client certificates are requested")
                        .with_help(
                            "add [server.tls] with cert_file/key_file and \
                             [server.tls.client_auth] mode = \"required\", ca_file = \"...\"",
                        );
                        self.push(d);
                    }
                }
            }
        }
    }

    // -- extra: trigger syntax --------------------------------------------------------

    fn check_trigger_syntax(&mut self) {
        let mut servers: Vec<&str> = self
            .doc
            .mcp_servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        servers.sort_unstable();
        servers.dedup();
        for (i, t) in self.doc.triggers.iter().enumerate() {
            match t {
                Trigger::Cron(c) => {
                    if let Err(why) = parse_cron(&c.schedule) {
                        let d = Diagnostic::error(
                            "invalid_cron",
                            self.path(),
                            format!("invalid cron schedule `{}`: {why}", c.schedule),
                        )
                        .with_span(self.span(loc!["triggers", i, "schedule"]))
                        .with_label("not a cron expression")
                        .with_help(
                            "write `min hour dom mon dow` (e.g. \"30 2 * * *\") or \
                             `sec min hour dom mon dow [year]` (e.g. \"0 30 2 * * *\")",
                        );
                        self.push(d);
                    }
                }
                Trigger::Interval(iv) => {
                    if let Err(why) = parse_interval(&iv.every) {
                        let d = Diagnostic::error(
                            "invalid_interval",
                            self.path(),
                            format!("invalid interval `{}`: {why}", iv.every),
                        )
                        .with_span(self.span(loc!["triggers", i, "every"]))
                        .with_label("not an interval")
                        .with_help("write a positive whole number and a unit: \"30s\", \"5m\", \"2h\" or \"1d\"");
                        self.push(d);
                    }
                }
                Trigger::FsWatch(f) => {
                    for (k, ev) in f.events.iter().enumerate() {
                        let lower = ev.to_ascii_lowercase();
                        if FS_WATCH_EVENTS.contains(&lower.as_str()) {
                            continue;
                        }
                        let help = did_you_mean(&lower, FS_WATCH_EVENTS).unwrap_or_else(|| {
                            "events are create, modify, remove (or delete) and rename".to_string()
                        });
                        let d = Diagnostic::error(
                            "invalid_fs_watch_event",
                            self.path(),
                            format!("fs_watch trigger: unknown event `{ev}`"),
                        )
                        .with_span(self.span(loc!["triggers", i, "events", k]))
                        .with_label("unknown event kind")
                        .with_help(help);
                        self.push(d);
                    }
                    // A path that keeps changing more often than `debounce_ms`
                    // never settles, so a huge value is a trigger that never fires.
                    if f.debounce_ms > MAX_FS_WATCH_DEBOUNCE_MS {
                        let d = Diagnostic::error(
                            "invalid_fs_watch_debounce",
                            self.path(),
                            format!(
                                "fs_watch trigger: debounce_ms = {} is above the limit of {MAX_FS_WATCH_DEBOUNCE_MS} (10 minutes)",
                                f.debounce_ms
                            ),
                        )
                        .with_span(self.span(loc!["triggers", i, "debounce_ms"]))
                        .with_label("too long to ever settle")
                        .with_help("events on one path are coalesced for debounce_ms; use at most 600000 (the default is 250)");
                        self.push(d);
                    }
                }
                Trigger::McpResourceUpdated(m) | Trigger::McpResourceCreated(m) => {
                    if servers.contains(&m.server.as_str()) {
                        continue;
                    }
                    let help =
                        did_you_mean(&m.server, servers.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "declare it: [[mcp_servers]] name = \"{}\", command = [...]",
                                m.server
                            )
                        });
                    let d = Diagnostic::error(
                        "unknown_trigger_mcp_server",
                        self.path(),
                        format!(
                            "{} trigger names mcp server `{}`, which is not declared in [[mcp_servers]]",
                            t.type_name(),
                            m.server
                        ),
                    )
                    .with_span(self.span(loc!["triggers", i, "server"]))
                    .with_label("unknown server")
                    .with_note("MCP resource triggers are parsed but never fire in dialect 1")
                    .with_help(help);
                    self.push(d);
                }
                Trigger::InternalEvent(_) => {}
            }
        }
    }

    // -- extra: intelligence backends -------------------------------------------------

    fn check_backends(&mut self) {
        let defs = self
            .doc
            .intelligence
            .as_ref()
            .map(|i| i.backends.as_slice())
            .unwrap_or_default();
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (j, b) in defs.iter().enumerate() {
            let span = self.span(loc!["intelligence", "backends", j, "name"]);
            if b.name == DEFAULT_BACKEND {
                let d = Diagnostic::error(
                    "reserved_backend_name",
                    self.path(),
                    "the backend name `default` is reserved for the transport configured on the command line",
                )
                .with_span(span.clone())
                .with_label("reserved name")
                .with_help("give this backend another name and refer to it by that name in `backend = \"...\"`");
                self.push(d);
            }
            match first.get(b.name.as_str()) {
                None => {
                    first.insert(b.name.as_str(), j);
                }
                Some(&f) => {
                    let first_span = self.span(loc!["intelligence", "backends", f, "name"]);
                    let d = Diagnostic::error(
                        "dup_backend_name",
                        self.path(),
                        format!(
                            "intelligence backend `{}` is declared more than once",
                            b.name
                        ),
                    )
                    .with_span(span)
                    .with_label("duplicate backend name")
                    .with_note(format!("first declared on {}", self.line(first_span)))
                    .with_help("give every [[intelligence.backends]] entry a unique `name`");
                    self.push(d);
                }
            }
        }
        // A child runs on the root's engine, whose registry holds the root's backends
        // only: a child's own [[intelligence.backends]] are never applied, so they
        // cannot make its nodes' backends known.
        let mut known: Vec<&str> = match self.parent {
            Some(root) => root.iter().map(String::as_str).collect(),
            None => defs.iter().map(|b| b.name.as_str()).collect(),
        };
        known.push(DEFAULT_BACKEND);
        known.sort_unstable();
        known.dedup();
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let backend = match &n.kind {
                NodeKind::LlmInfer(l) => l.backend.as_str(),
                NodeKind::AgentLoop(a) => a.backend.as_str(),
                _ => continue,
            };
            if known.contains(&backend) {
                continue;
            }
            let help = did_you_mean(backend, known.iter().copied()).unwrap_or_else(|| {
                format!(
                    "declare it: [[intelligence.backends]] name = \"{backend}\", provider = \"...\", model = \"...\"; \
                     or use `default` for the command-line transport"
                )
            });
            let d = Diagnostic::error(
                "unknown_backend",
                self.path(),
                format!(
                    "node `{}` ({}) uses backend `{backend}`, which is not declared; known backends: {}",
                    n.id,
                    n.kind.type_name(),
                    ticked(known.iter().copied())
                ),
            )
            .with_span(self.span(loc!["nodes", i, "backend"]))
            .with_label("unknown backend")
            .with_help(help);
            let d = if self.parent.is_some() && defs.iter().any(|b| b.name == backend) {
                d.with_note(
                    "this child declares it, but a child runs on the root workflow's engine: \
                     only the root's [[intelligence.backends]] are applied; declare it there",
                )
            } else {
                d
            };
            self.push(d);
        }
    }

    // -- extra: output_schema files ---------------------------------------------------

    fn schema_candidates(&self, p: &str) -> Vec<PathBuf> {
        let path = Path::new(p);
        if path.is_absolute() {
            return vec![path.to_path_buf()];
        }
        let mut out = vec![self.opts.base_dir.join(path)];
        let from_cwd = self.opts.cwd.join(path);
        if !out.contains(&from_cwd) {
            out.push(from_cwd);
        }
        out
    }

    fn check_output_schemas(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::LlmInfer(l) = &n.kind else {
                continue;
            };
            let Some(schema) = l.output_schema.as_deref() else {
                continue;
            };
            if schema == "inline" {
                continue;
            }
            let candidates = self.schema_candidates(schema);
            let read = candidates
                .iter()
                .find_map(|c| std::fs::read(c).ok().map(|b| (c, b)));
            let problem = match read {
                None => Some((
                    format!(
                        "node `{}`: output_schema `{schema}` is not a readable file; only JSON validity will be checked",
                        n.id
                    ),
                    format!(
                        "tried {}",
                        candidates
                            .iter()
                            .map(|c| format!("`{}`", c.display()))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )),
                Some((c, bytes)) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(_) => None,
                    Err(e) => Some((
                        format!(
                            "node `{}`: output_schema file `{}` is not valid JSON: {e}",
                            n.id,
                            c.display()
                        ),
                        "a JSON Schema file must hold a JSON document".to_string(),
                    )),
                },
            };
            if let Some((msg, note)) = problem {
                let d = Diagnostic::warning("output_schema_unreadable", self.path(), msg)
                    .with_span(self.span(loc!["nodes", i, "output_schema"]))
                    .with_label("schema file not usable")
                    .with_note(note)
                    .with_help(
                        "point `output_schema` at a JSON Schema file (relative to the workflow file), \
                         or write `output_schema = \"inline\"` to require only valid JSON",
                    );
                self.push(d);
            }
        }
    }

    // -- extra: routing ---------------------------------------------------------------

    /// Can a node of this kind continue with `label` (`None` = no branch label)?
    fn label_can_fire(kind: &NodeKind, label: Option<&str>) -> bool {
        match label {
            None => !matches!(kind, NodeKind::Condition(_) | NodeKind::Switch(_)),
            Some(l) => match kind.emitted_labels() {
                None => true,
                Some(ls) => ls.contains(&l),
            },
        }
    }

    fn check_ambiguous_successors(&mut self) {
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
                let mut d = Diagnostic::error(
                    "ambiguous_successor",
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

    fn check_edge_labels(&mut self) {
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
                Diagnostic::warning(
                    "unlabelled_source_when",
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
                Diagnostic::warning(
                    "error_edge_never_taken",
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
                Diagnostic::warning(
                    "exhausted_edge_not_agent_loop",
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
                Diagnostic::warning(
                    "label_never_emitted",
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

    fn check_condition_branches(&mut self) {
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
            let d = Diagnostic::warning(
                "condition_missing_branch",
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

    // -- extra: policy ----------------------------------------------------------------

    fn check_policy_present(&mut self) {
        if self.doc.policy.is_some() || self.parent.is_some() {
            return;
        }
        let d = Diagnostic::warning(
            "no_policy",
            self.path(),
            "workflow has no [policy] block, so every file, environment, HTTP, shell and MCP action is allowed",
        )
        .with_span(self.key_span(loc!["name"]))
        .with_label("no [policy] for this workflow")
        .with_help(
            "add a fail-closed [policy] block that lists what the workflow may touch \
             (e.g. [policy.fs] read = [\"/data/**\"]); an empty [policy] denies everything",
        );
        self.push(d);
    }
}

impl Validator<'_> {
    // -- extension: custom Rust nodes --------------------------------------------------

    /// `type = "rust"` is not dialect 1: refused unless the front end can bind handlers;
    /// when allowed, the handler name must be a Rust identifier so it can be bound.
    fn check_rust_nodes(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let NodeKind::Rust(r) = &n.kind else {
                continue;
            };
            if !self.opts.allow_rust_nodes {
                let d = Diagnostic::error(
                    "rust_node_not_allowed",
                    self.path(),
                    format!(
                        "node `{}` is a custom Rust node, which strict dialect 1 does not allow",
                        n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "type"]))
                .with_label("`rust` is an agentd extension")
                .with_help(
                    "custom Rust nodes only build inside a Rust crate: embed the workflow with \
                     agentd!(\"<file>\", handlers = { <name> = path::to_fn }) \
                     (and do not pass `strict_dialect1 = true`)",
                );
                self.push(d);
            }
            if !is_rust_identifier(&r.handler) {
                let d = Diagnostic::error(
                    "invalid_handler_name",
                    self.path(),
                    format!(
                        "handler name `{}` of node `{}` is not a Rust identifier",
                        r.handler, n.id
                    ),
                )
                .with_span(self.span(loc!["nodes", i, "handler"]))
                .with_help("use letters, digits and `_`, not starting with a digit and not a Rust keyword, e.g. \"classify_ticket\"");
                self.push(d);
            }
        }
    }
}

/// Check an `http_request` header value: only `{{secret:NAME}}` placeholders
/// (whitespace-trimmed, non-empty name) are allowed, and every `{{` must be closed.
pub fn check_header_placeholders(value: &str) -> Result<(), String> {
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("unclosed `{{` placeholder".to_string());
        };
        let inner = after[..close].trim();
        let ok = inner
            .strip_prefix("secret:")
            .is_some_and(|name| !name.trim().is_empty());
        if !ok {
            return Err(format!(
                "placeholder `{{{{{inner}}}}}` is not allowed (only `{{{{secret:NAME}}}}`)"
            ));
        }
        rest = &after[close + 2..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;
    use std::time::Duration;

    const START: &str =
        "[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"a\"\n";

    fn run(text: &str) -> Vec<Diagnostic> {
        let r = parse_str(Path::new("wf.toml"), text);
        let doc = r
            .doc
            .unwrap_or_else(|| panic!("parse failed: {:?}", r.diagnostics));
        validate(&r.source, &doc, &ValidateOptions::default())
    }

    fn codes(diags: &[Diagnostic]) -> Vec<&'static str> {
        diags.iter().map(|d| d.code).collect()
    }

    fn errors(diags: &[Diagnostic]) -> Vec<&'static str> {
        diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code)
            .collect()
    }

    /// The single diagnostic with `code`, its span text, and the whole list.
    fn one<'t>(text: &'t str, code: &str) -> (Diagnostic, &'t str) {
        let diags = run(text);
        let found: Vec<&Diagnostic> = diags.iter().filter(|d| d.code == code).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{code}`, got {:#?}",
            codes(&diags)
        );
        let d = found[0].clone();
        assert!(d.help.is_some(), "`{code}` has no help line");
        let span = d.span.clone().expect("diagnostic has a span");
        (d, &text[span])
    }

    fn wf(body: &str) -> String {
        format!("name = \"t\"\n[policy]\n{START}{body}")
    }

    // ---- the 24 dialect-1 codes -------------------------------------------------

    #[test]
    fn dup_node_id_points_at_the_second_id() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = 'a'\ntype = \"terminate\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
        );
        let (d, s) = one(&t, "dup_node_id");
        assert_eq!(s, "'a'");
        assert!(d.is_error());
        assert!(d.message.contains("3 times"), "{}", d.message);
        assert!(
            !codes(&run(&t)).contains(&"cycle"),
            "duplicates must not fake a cycle"
        );
    }

    #[test]
    fn dup_start_name() {
        let t = format!(
            "{}[[start_nodes]]\nname = 'main'\nsource = \"http\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
            wf("")
        );
        let (_, s) = one(&t, "dup_start_name");
        assert_eq!(s, "'main'");
    }

    #[test]
    fn dup_http_route_compares_methods_case_insensitively() {
        let t = wf(
            "[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"main\"\n[[http_routes]]\nmethod = \"post\"\npath = '/x'\nstart_node = \"main\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
        );
        let (_, s) = one(&t, "dup_http_route");
        assert_eq!(s, "'/x'");
    }

    #[test]
    fn unknown_http_start_node_suggests() {
        let t = wf(
            "[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"mian\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
        );
        let (d, s) = one(&t, "unknown_http_start_node");
        assert_eq!(s, "\"mian\"");
        assert_eq!(d.help.as_deref(), Some("did you mean `main`?"));
    }

    #[test]
    fn unknown_trigger_start_node() {
        let t = wf(
            "[[triggers]]\ntype = \"internal.event\"\nname = \"e\"\nstart_node = \"nope\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
        );
        let (_, s) = one(&t, "unknown_trigger_start_node");
        assert_eq!(s, "\"nope\"");
    }

    #[test]
    fn unknown_start_entry_node() {
        let t = "name = \"t\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"b\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n";
        let (d, s) = one(t, "unknown_start_entry_node");
        assert_eq!(s, "\"b\"");
        assert!(d.message.contains("`main`"));
    }

    #[test]
    fn dangling_edge_one_issue_per_end() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[edges]]\nfrom = \"x\"\nto = \"missing\"\n",
        );
        let diags = run(&t);
        let d: Vec<&Diagnostic> = diags.iter().filter(|d| d.code == "dangling_edge").collect();
        assert_eq!(d.len(), 2);
        assert_eq!(&t[d[0].span.clone().expect("span")], "\"x\"");
        assert_eq!(&t[d[1].span.clone().expect("span")], "\"missing\"");
    }

    #[test]
    fn unknown_mcp_server_suggests() {
        let t = wf(
            "[[mcp_servers]]\nname = \"github\"\ncommand = [\"/bin/gh-mcp\"]\n[[nodes]]\nid = \"a\"\ntype = \"call_mcp_tool\"\ntool = \"t\"\nserver = \"gihtub\"\n",
        );
        let (d, s) = one(&t, "unknown_mcp_server");
        assert_eq!(s, "\"gihtub\"");
        assert_eq!(d.help.as_deref(), Some("did you mean `github`?"));
    }

    #[test]
    fn ambiguous_mcp_server_needs_two_servers() {
        let servers = "[[mcp_servers]]\nname = \"one\"\ncommand = [\"/bin/a\"]\n[[mcp_servers]]\nname = \"two\"\ncommand = [\"/bin/b\"]\n";
        let node = "[[nodes]]\nid = \"a\"\ntype = \"read_mcp_resource\"\nresource_from = \"trigger.uri\"\n";
        let t = wf(&format!("{servers}{node}"));
        let (_, s) = one(&t, "ambiguous_mcp_server");
        assert_eq!(s, "\"a\"");
        // Zero or one server: no issue.
        assert!(!codes(&run(&wf(node))).contains(&"ambiguous_mcp_server"));
    }

    fn agent(fields: &str) -> String {
        wf(&format!(
            "[[nodes]]\nid = \"a\"\ntype = \"agent_loop\"\nbackend = \"default\"\n{fields}"
        ))
    }

    #[test]
    fn agent_loop_steps_out_of_range() {
        let t = agent("instructions = \"go\"\ntools = [\"read_file\"]\nmax_steps = 65\n");
        let (_, s) = one(&t, "agent_loop_steps_out_of_range");
        assert_eq!(s, "65");
        let t = agent("instructions = \"go\"\ntools = [\"read_file\"]\nmax_steps = 0\n");
        assert_eq!(one(&t, "agent_loop_steps_out_of_range").1, "0");
        let t = agent("instructions = \"go\"\ntools = [\"read_file\"]\nmax_steps = 64\n");
        assert!(errors(&run(&t)).is_empty());
    }

    #[test]
    fn agent_loop_missing_instructions() {
        let t = agent("tools = [\"read_file\"]\nmax_steps = 4\n");
        let (_, s) = one(&t, "agent_loop_missing_instructions");
        assert_eq!(s, "\"a\"");
    }

    #[test]
    fn agent_loop_no_tools() {
        let t = agent("instructions = \"go\"\ntools = []\nmax_steps = 4\n");
        assert_eq!(one(&t, "agent_loop_no_tools").1, "[]");
        let t = agent("instructions = \"go\"\nmax_steps = 4\n");
        assert_eq!(one(&t, "agent_loop_no_tools").1, "\"a\"");
    }

    #[test]
    fn agent_loop_unknown_tool() {
        let t =
            agent("instructions = \"go\"\ntools = [\"read_file\", \"raed_env\"]\nmax_steps = 4\n");
        let (d, s) = one(&t, "agent_loop_unknown_tool");
        assert_eq!(s, "\"raed_env\"");
        assert_eq!(d.help.as_deref(), Some("did you mean `read_env`?"));
    }

    #[test]
    fn respond_status_out_of_range() {
        let t =
            wf("[[nodes]]\nid = \"a\"\ntype = \"respond\"\nbody_template = \"x\"\nstatus = 700\n");
        assert_eq!(one(&t, "respond_status_out_of_range").1, "700");
    }

    #[test]
    fn respond_empty_content_type() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"respond\"\nbody_template = \"x\"\ncontent_type = \"  \"\n",
        );
        assert_eq!(one(&t, "respond_empty_content_type").1, "\"  \"");
    }

    fn map(fields: &str) -> String {
        wf(&format!(
            "[[nodes]]\nid = \"a\"\ntype = \"map\"\nitems_from = \"trigger.items\"\n{fields}"
        ))
    }

    #[test]
    fn map_zero_max_items() {
        let t = map("workflow = \"c.toml\"\nmax_items = 0\n");
        assert_eq!(one(&t, "map_zero_max_items").1, "0");
    }

    #[test]
    fn map_zero_concurrency() {
        let t = map("workflow = \"c.toml\"\nmax_items = 3\nmax_concurrent = 0\n");
        assert_eq!(one(&t, "map_zero_concurrency").1, "0");
    }

    #[test]
    fn map_empty_workflow() {
        let t = map("workflow = \" \"\nmax_items = 3\n");
        assert_eq!(one(&t, "map_empty_workflow").1, "\" \"");
    }

    fn http(headers: &str) -> String {
        wf(&format!(
            "[[nodes]]\nid = \"a\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.url\"\nheaders = {headers}\n"
        ))
    }

    #[test]
    fn http_header_bad_name() {
        let t = http("{ \"X Bad\" = \"v\" }");
        assert_eq!(one(&t, "http_header_bad_name").1, "\"X Bad\"");
        let t = http("{ \"\" = \"v\" }");
        assert_eq!(one(&t, "http_header_bad_name").1, "\"\"");
    }

    #[test]
    fn http_header_crlf() {
        let t = http("{ X-A = \"a\\r\\nInjected: 1\" }");
        assert_eq!(one(&t, "http_header_crlf").1, "\"a\\r\\nInjected: 1\"");
    }

    #[test]
    fn http_header_bad_placeholder() {
        let t = http("{ Authorization = \"Bearer {{trigger.token}}\" }");
        let (d, s) = one(&t, "http_header_bad_placeholder");
        assert_eq!(s, "\"Bearer {{trigger.token}}\"");
        assert!(d.message.contains("{{trigger.token}}"), "{}", d.message);
        assert_eq!(
            one(
                &http("{ A = \"x {{secret:K\" }"),
                "http_header_bad_placeholder"
            )
            .1,
            "\"x {{secret:K\""
        );
        assert_eq!(
            one(
                &http("{ A = \"{{secret: }}\" }"),
                "http_header_bad_placeholder"
            )
            .1,
            "\"{{secret: }}\""
        );
        assert!(errors(&run(&http("{ A = \"Bearer {{ secret:TOKEN }}\" }"))).is_empty());
    }

    #[test]
    fn header_issues_come_out_in_name_order() {
        let t = http("{ \"Z Z\" = \"{{x}}\", \"A A\" = \"\\n\", \"M M\" = \"ok\" }");
        let diags = run(&t);
        let got: Vec<(&str, &str)> = diags
            .iter()
            .filter(|d| d.code.starts_with("http_header"))
            .map(|d| (d.code, &t[d.span.clone().expect("span")]))
            .collect();
        assert_eq!(
            got,
            vec![
                ("http_header_bad_name", "\"A A\""),
                ("http_header_crlf", "\"\\n\""),
                ("http_header_bad_name", "\"M M\""),
                ("http_header_bad_name", "\"Z Z\""),
                ("http_header_bad_placeholder", "\"{{x}}\""),
            ]
        );
        // Same input, same output, every time.
        assert_eq!(codes(&run(&t)), codes(&diags));
    }

    #[test]
    fn cycle_points_at_the_closing_edge() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"b\"\nto = \"c\"\n[[edges]]\nfrom = \"c\"\nto = 'b'\n",
        );
        let (d, s) = one(&t, "cycle");
        assert_eq!(s, "'b'");
        assert_eq!(
            d.message,
            "workflow contains a cycle; nodes involved or downstream: b, c"
        );
        assert!(
            d.notes.iter().any(|n| n == "cycle: b → c → b"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn self_loop_is_a_cycle_and_loop_edges_are_exempt() {
        let t =
            wf("[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"a\"\n");
        assert_eq!(one(&t, "cycle").1, "\"a\"");
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"a\"\nmax_iterations = 3\n",
        );
        assert!(errors(&run(&t)).is_empty(), "{:?}", codes(&run(&t)));
    }

    #[test]
    fn ambiguous_start_entry_and_its_extra_unreachable_nodes() {
        let t = "name = \"t\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n";
        let (d, s) = one(t, "ambiguous_start_entry");
        assert_eq!(s, "\"main\"");
        assert!(d.message.contains("2 root nodes"), "{}", d.message);
        // The ambiguous start reaches nothing, so both nodes are unreachable too.
        assert_eq!(
            codes(&run(t)),
            vec![
                "ambiguous_start_entry",
                "unreachable_node",
                "unreachable_node"
            ]
        );
    }

    #[test]
    fn unreachable_node() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"island\"\ntype = \"merge\"\n",
        );
        let (d, s) = one(&t, "unreachable_node");
        assert_eq!(s, "\"island\"");
        assert!(d.message.contains("`island`"));
    }

    // ---- skip rules ---------------------------------------------------------------

    #[test]
    fn dangling_edges_skip_cycle_and_reachability() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"island\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"b\"\nto = \"a\"\n[[edges]]\nfrom = \"gone\"\nto = \"island\"\n",
        );
        assert_eq!(errors(&run(&t)), vec!["dangling_edge"]);
    }

    #[test]
    fn nodes_without_start_nodes_validate_clean() {
        let t = "name = \"t\"\n[policy]\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n";
        assert!(run(t).is_empty(), "{:?}", codes(&run(t)));
    }

    #[test]
    fn empty_workflow_is_valid() {
        assert!(errors(&run("name = \"\"\n")).is_empty());
        assert!(run("name = \"x\"\n[policy]\n").is_empty());
    }

    #[test]
    fn roots_count_loop_edges() {
        // `gen` has only a loop edge coming in, but that still makes it a non-root.
        let t = "name = \"t\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"gen\"\ntype = \"merge\"\n[[nodes]]\nid = \"eval\"\ntype = \"switch\"\nexpr = \"x\"\n[[edges]]\nfrom = \"gen\"\nto = \"eval\"\n[[edges]]\nfrom = \"eval\"\nto = \"gen\"\nwhen = \"retry\"\nmax_iterations = 2\n";
        let diags = run(t);
        assert!(!codes(&diags).contains(&"cycle"));
        let (d, _) = one(t, "ambiguous_start_entry");
        assert!(d.message.contains("no root node"), "{}", d.message);
    }

    #[test]
    fn loop_edges_count_for_reachability() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"switch\"\nexpr = \"x\"\n[[nodes]]\nid = \"back\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"back\"\nwhen = \"go\"\nmax_iterations = 1\n",
        );
        assert!(errors(&run(&t)).is_empty(), "{:?}", codes(&run(&t)));
    }

    #[test]
    fn spec_codes_come_in_spec_order() {
        let t = "name = \"t\"\n[policy]\n\
            [[start_nodes]]\nname = \"s\"\nsource = \"manual\"\nentry_node = \"nope\"\n\
            [[start_nodes]]\nname = \"s\"\nsource = \"manual\"\n\
            [[http_routes]]\nmethod = \"GET\"\npath = \"/\"\nstart_node = \"zz\"\n\
            [[triggers]]\ntype = \"internal.event\"\nname = \"e\"\nstart_node = \"zz\"\n\
            [[nodes]]\nid = \"m\"\ntype = \"map\"\nitems_from = \"x\"\nworkflow = \"\"\nmax_items = 0\n\
            [[nodes]]\nid = \"m\"\ntype = \"respond\"\nbody_template = \"\"\nstatus = 1\n\
            [[nodes]]\nid = \"l\"\ntype = \"agent_loop\"\nbackend = \"default\"\nmax_steps = 0\n\
            [[nodes]]\nid = \"t\"\ntype = \"call_mcp_tool\"\ntool = \"x\"\nserver = \"none\"\n\
            [[edges]]\nfrom = \"m\"\nto = \"q\"\n";
        assert_eq!(
            errors(&run(t)),
            vec![
                "dup_node_id",
                "dup_start_name",
                "unknown_http_start_node",
                "unknown_trigger_start_node",
                "unknown_start_entry_node",
                "dangling_edge",
                "unknown_mcp_server",
                "agent_loop_steps_out_of_range",
                "agent_loop_missing_instructions",
                "agent_loop_no_tools",
                "respond_status_out_of_range",
                "map_zero_max_items",
                "map_empty_workflow",
            ]
        );
    }

    #[test]
    fn wrapped_documents_get_spans_inside_the_wrapper() {
        let t = "[[workflows]]\nname = \"t\"\n[workflows.policy]\n[[workflows.start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"a\"\n[[workflows.nodes]]\nid = \"a\"\ntype = \"merge\"\n[[workflows.edges]]\nfrom = \"a\"\nto = \"ghost\"\n";
        assert_eq!(one(t, "dangling_edge").1, "\"ghost\"");
    }

    #[test]
    fn a_clean_workflow_has_no_diagnostics() {
        let t = "name = \"clean\"\n\
            [policy.http]\nurls = [\"http://api.internal/*\"]\n\
            [[intelligence.backends]]\nname = \"local\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n\
            [auth.bearer.default]\ntokens_env = \"TOKENS\"\n\
            [[start_nodes]]\nname = \"main\"\nsource = \"http\"\nentry_node = \"fetch\"\n\
            [[http_routes]]\nmethod = \"POST\"\npath = \"/run\"\nstart_node = \"main\"\nauth = \"bearer\"\n\
            [[triggers]]\ntype = \"cron\"\nschedule = \"30 2 * * *\"\nstart_node = \"main\"\n\
            [[triggers]]\ntype = \"interval\"\nevery = \"5m\"\nstart_node = \"main\"\n\
            [[triggers]]\ntype = \"fs_watch\"\npath = \"/tmp\"\nevents = [\"Create\", \"delete\"]\nstart_node = \"main\"\n\
            [[nodes]]\nid = \"fetch\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.url\"\nheaders = { Authorization = \"Bearer {{secret:API}}\" }\n\
            [[nodes]]\nid = \"judge\"\ntype = \"llm_infer\"\nbackend = \"local\"\nprompt = \"ok? {{body}}\"\ninput_from = \"fetch\"\noutput_schema = \"inline\"\n\
            [[nodes]]\nid = \"ok\"\ntype = \"condition\"\nexpr = \"judge.parsed.ok\"\n\
            [[nodes]]\nid = \"done\"\ntype = \"terminate\"\n\
            [[nodes]]\nid = \"bad\"\ntype = \"fail\"\nreason = \"no\"\n\
            [[edges]]\nfrom = \"fetch\"\nto = \"judge\"\n\
            [[edges]]\nfrom = \"fetch\"\nto = \"bad\"\nwhen = \"error\"\n\
            [[edges]]\nfrom = \"judge\"\nto = \"ok\"\n\
            [[edges]]\nfrom = \"ok\"\nto = \"done\"\nwhen = \"true\"\n\
            [[edges]]\nfrom = \"ok\"\nto = \"bad\"\nwhen = \"false\"\n";
        let diags = run(t);
        assert!(diags.is_empty(), "{diags:#?}");
    }

    // ---- extra codes ----------------------------------------------------------------

    fn two_nodes(edges: &str) -> String {
        wf(&format!(
            "[[nodes]]\nid = \"a\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.u\"\n\
             [[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n{edges}"
        ))
    }

    #[test]
    fn ambiguous_successor_for_fan_out() {
        let t =
            two_nodes("[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = 'a'\nto = \"c\"\n");
        let (d, s) = one(&t, "ambiguous_successor");
        assert_eq!(s, "'a'");
        assert!(d.is_error());
        assert!(
            d.message.contains("2 out-edges for the unlabelled branch"),
            "{}",
            d.message
        );
    }

    #[test]
    fn ambiguous_successor_for_a_repeated_label() {
        let t = two_nodes(
            "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\nwhen = 'error'\n",
        );
        assert_eq!(one(&t, "ambiguous_successor").1, "'error'");
        // Different labels are fine.
        let t = two_nodes(
            "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\n",
        );
        assert!(errors(&run(&t)).is_empty(), "{:?}", codes(&run(&t)));
    }

    #[test]
    fn ambiguous_successor_with_loop_edges() {
        let body = |max: u32| {
            wf(&format!(
                "[[nodes]]\nid = \"a\"\ntype = \"switch\"\nexpr = \"x\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n\
                 [[edges]]\nfrom = \"a\"\nto = \"a\"\nwhen = \"retry\"\nmax_iterations = {max}\n\
                 [[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"retry\"\n"
            ))
        };
        let t = body(2);
        let (d, s) = one(&t, "ambiguous_successor");
        assert_eq!(s, "\"retry\"");
        assert!(d.notes.iter().any(|n| n.contains("loop edge")));
        // A loop edge that can never be traversed collides with nothing.
        assert!(
            errors(&run(&body(0))).is_empty(),
            "{:?}",
            codes(&run(&body(0)))
        );
    }

    #[test]
    fn ambiguous_successor_ignores_dead_and_ending_sources() {
        // fail/terminate ignore their out-edges; a condition never takes unconditional edges.
        for kind in [
            "type = \"fail\"",
            "type = \"terminate\"",
            "type = \"condition\"\nexpr = \"x\"",
        ] {
            let t = wf(&format!(
                "[[nodes]]\nid = \"a\"\n{kind}\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n\
                 [[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\n"
            ));
            assert!(!codes(&run(&t)).contains(&"ambiguous_successor"), "{kind}");
        }
    }

    fn route(auth: &str, extra: &str) -> String {
        wf(&format!(
            "{extra}[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"main\"\nauth = {auth}\n\
             [[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
        ))
    }

    #[test]
    fn bad_auth_ref() {
        let t = route("\"Bearer\"", "[auth.bearer.default]\ntokens = [\"x\"]\n");
        let (d, s) = one(&t, "bad_auth_ref");
        assert_eq!(s, "\"Bearer\"");
        assert!(
            d.help
                .as_deref()
                .is_some_and(|h| h.starts_with("did you mean `bearer`?")),
            "{:?}",
            d.help
        );
        assert_eq!(
            one(&route("\"mtls:x\"", ""), "bad_auth_ref").1,
            "\"mtls:x\""
        );
        assert_eq!(
            one(&route("\"bearer:\"", ""), "bad_auth_ref").1,
            "\"bearer:\""
        );
        for ok in ["\"\"", "\"NONE\"", "\" none \""] {
            assert!(errors(&run(&route(ok, ""))).is_empty(), "{ok}");
        }
    }

    #[test]
    fn unknown_auth_binding() {
        let t = route("\"bearer\"", "[auth.bearer.ops]\ntokens = [\"x\"]\n");
        let (d, s) = one(&t, "unknown_auth_binding");
        assert_eq!(s, "\"bearer\"");
        assert!(d.message.contains("`bearer:default`"), "{}", d.message);
        let t = route("\"hmac:gihub\"", "[auth.hmac.github]\nsecret_env = \"S\"\n");
        let (d, _) = one(&t, "unknown_auth_binding");
        assert!(
            d.help
                .as_deref()
                .is_some_and(|h| h.starts_with("did you mean `github`?"))
        );
        assert!(
            errors(&run(&route(
                "\"hmac:github\"",
                "[auth.hmac.github]\nsecret_env = \"S\"\n"
            )))
            .is_empty()
        );
    }

    #[test]
    fn mtls_without_client_auth() {
        let t = route("\"mtls\"", "");
        assert_eq!(one(&t, "mtls_without_client_auth").1, "\"mtls\"");
        let tls = "[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[server.tls.client_auth]\nmode = \"required\"\nca_file = \"ca.pem\"\n";
        assert!(errors(&run(&route("\"mtls\"", tls))).is_empty());
    }

    fn trigger(body: &str) -> String {
        wf(&format!(
            "[[triggers]]\n{body}start_node = \"main\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
        ))
    }

    #[test]
    fn invalid_cron() {
        let t = trigger("type = \"cron\"\nschedule = \"0 61 * * * *\"\n");
        let (d, s) = one(&t, "invalid_cron");
        assert_eq!(s, "\"0 61 * * * *\"");
        assert!(d.message.contains("Minutes"), "{}", d.message);
        let t = trigger("type = \"cron\"\nschedule = \"every day\"\n");
        assert!(one(&t, "invalid_cron").0.message.contains("found 2"));
        for ok in [
            "30 2 * * *",
            "0 30 2 * * *",
            "0 30 2 * * * 2030",
            "@daily",
            "0 0 9 * * MON-FRI",
        ] {
            let t = trigger(&format!("type = \"cron\"\nschedule = \"{ok}\"\n"));
            assert!(errors(&run(&t)).is_empty(), "{ok}: {:?}", run(&t));
        }
    }

    #[test]
    fn invalid_interval() {
        let t = trigger("type = \"interval\"\nevery = \"5 weeks\"\n");
        assert_eq!(one(&t, "invalid_interval").1, "\"5 weeks\"");
        for bad in ["0s", "5", "m", "1.5h", "-1s", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("2 days"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_interval("10secs"), Ok(Duration::from_secs(10)));
        assert!(parse_interval("18446744073709551615d").is_err());
    }

    #[test]
    fn invalid_fs_watch_event() {
        let t = trigger(
            "type = \"fs_watch\"\npath = \"/tmp\"\nevents = [\"CREATE\", \"modfy\", \"Rename\"]\n",
        );
        let (d, s) = one(&t, "invalid_fs_watch_event");
        assert_eq!(s, "\"modfy\"");
        assert_eq!(d.help.as_deref(), Some("did you mean `modify`?"));
    }

    #[test]
    fn invalid_fs_watch_debounce_bounds_debounce_ms() {
        let t = trigger("type = \"fs_watch\"\npath = \"/tmp\"\ndebounce_ms = 600001\n");
        let (d, s) = one(&t, "invalid_fs_watch_debounce");
        assert_eq!(s, "600001");
        assert!(d.message.contains("600000"), "{}", d.message);
        let ok = trigger("type = \"fs_watch\"\npath = \"/tmp\"\ndebounce_ms = 600000\n");
        assert!(
            !codes(&run(&ok)).contains(&"invalid_fs_watch_debounce"),
            "{:?}",
            codes(&run(&ok))
        );
    }

    #[test]
    fn unknown_trigger_mcp_server_is_an_error() {
        let t = trigger(
            "type = \"mcp.resource.updated\"\nserver = \"docs\"\nresource = \"docs://*\"\n",
        );
        let (d, s) = one(&t, "unknown_trigger_mcp_server");
        assert_eq!(s, "\"docs\"");
        assert!(d.is_error());
    }

    fn llm(backend: &str, extra: &str) -> String {
        wf(&format!(
            "{extra}[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = {backend}\nprompt = \"p\"\n"
        ))
    }

    const CLAUDE: &str = "[[intelligence.backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"K\"\n";

    #[test]
    fn unknown_backend() {
        let t = llm("\"claud\"", CLAUDE);
        let (d, s) = one(&t, "unknown_backend");
        assert_eq!(s, "\"claud\"");
        assert_eq!(d.help.as_deref(), Some("did you mean `claude`?"));
        assert!(errors(&run(&llm("\"claude\"", CLAUDE))).is_empty());
        assert!(errors(&run(&llm("\"default\"", ""))).is_empty());
    }

    #[test]
    fn child_workflows_accept_parent_backends_and_skip_no_policy() {
        let t = "name = \"c\"\n[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = \"claude\"\nprompt = \"p\"\n";
        let r = parse_str(Path::new("c.toml"), t);
        let doc = r.doc.expect("parses");
        let opts = ValidateOptions::default();
        assert!(validate_child(&r.source, &doc, &opts, &["claude".to_string()]).is_empty());
        assert_eq!(
            codes(&validate(&r.source, &doc, &opts)),
            vec!["unknown_backend", "no_policy"]
        );
    }

    #[test]
    fn a_child_backend_the_root_does_not_declare_is_unknown_even_if_the_child_declares_it() {
        let t = format!(
            "name = \"c\"\n[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = \"claude\"\nprompt = \"p\"\n{CLAUDE}"
        );
        let r = parse_str(Path::new("c.toml"), &t);
        let doc = r.doc.expect("parses");
        let opts = ValidateOptions::default();
        let diags = validate_child(&r.source, &doc, &opts, &["other".to_string()]);
        let d = diags
            .iter()
            .find(|d| d.code == "unknown_backend")
            .unwrap_or_else(|| panic!("{diags:?}"));
        assert!(
            d.notes.iter().any(|n| n.contains("only the root's")),
            "{d:?}"
        );
        assert!(
            !codes(&validate_child(
                &r.source,
                &doc,
                &opts,
                &["claude".to_string()]
            ))
            .contains(&"unknown_backend")
        );
    }

    #[test]
    fn reserved_backend_name() {
        let t = llm("\"default\"", &CLAUDE.replace("claude", "default"));
        assert_eq!(one(&t, "reserved_backend_name").1, "\"default\"");
    }

    #[test]
    fn dup_backend_name() {
        let t = llm(
            "\"claude\"",
            &format!("{CLAUDE}{}", CLAUDE.replace("\"claude\"", "'claude'")),
        );
        assert_eq!(one(&t, "dup_backend_name").1, "'claude'");
    }

    #[test]
    fn output_schema_unreadable() {
        let t = llm("\"default\"", "").replace(
            "prompt = \"p\"\n",
            "prompt = \"p\"\noutput_schema = \"no/such/schema.json\"\n",
        );
        let (d, s) = one(&t, "output_schema_unreadable");
        assert_eq!(s, "\"no/such/schema.json\"");
        assert!(!d.is_error());
        let t = llm("\"default\"", "").replace(
            "prompt = \"p\"\n",
            "prompt = \"p\"\noutput_schema = \"inline\"\n",
        );
        assert!(run(&t).is_empty());
    }

    #[test]
    fn output_schema_resolves_against_base_dir_then_cwd() {
        let dir = std::env::temp_dir().join(format!("agentd-validate-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("schemas")).expect("mkdir");
        std::fs::write(dir.join("schemas/ok.json"), "{\"type\": \"object\"}").expect("write");
        std::fs::write(dir.join("schemas/bad.json"), "not json").expect("write");
        let text = |f: &str| {
            format!(
                "name = \"t\"\n[policy]\n[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = \"default\"\nprompt = \"p\"\noutput_schema = \"schemas/{f}\"\n"
            )
        };
        let check = |f: &str, opts: &ValidateOptions| {
            let t = text(f);
            let r = parse_str(&dir.join("wf.toml"), &t);
            let doc = r.doc.expect("parses");
            codes(&validate(&r.source, &doc, opts))
        };
        let by_dir = ValidateOptions::for_file(&dir.join("wf.toml"));
        assert!(check("ok.json", &by_dir).is_empty());
        assert_eq!(check("bad.json", &by_dir), vec!["output_schema_unreadable"]);
        let by_cwd = ValidateOptions {
            base_dir: PathBuf::from("/nonexistent"),
            cwd: dir.clone(),
            ..ValidateOptions::default()
        };
        assert!(check("ok.json", &by_cwd).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unlabelled_source_when() {
        let t = wf(
            "[[nodes]]\nid = \"a\"\ntype = \"read_file\"\npath_from = \"trigger.p\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n",
        );
        let (d, s) = one(&t, "unlabelled_source_when");
        assert_eq!(s, "\"error\"");
        assert!(!d.is_error());
        // Exactly one warning for the edge.
        assert_eq!(codes(&run(&t)), vec!["unlabelled_source_when"]);
    }

    fn cond(edges: &str) -> String {
        wf(&format!(
            "[[nodes]]\nid = \"a\"\ntype = \"condition\"\nexpr = \"trigger.x\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n{edges}"
        ))
    }

    #[test]
    fn error_edge_never_taken() {
        let t = cond(
            "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"true\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"false\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n",
        );
        let (d, s) = one(&t, "error_edge_never_taken");
        assert_eq!(s, "\"error\"");
        assert!(!d.is_error());
        assert_eq!(codes(&run(&t)), vec!["error_edge_never_taken"]);
    }

    #[test]
    fn exhausted_edge_not_agent_loop() {
        let t = two_nodes(
            "[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\nwhen = \"exhausted\"\n",
        );
        assert_eq!(one(&t, "exhausted_edge_not_agent_loop").1, "\"exhausted\"");
        assert_eq!(codes(&run(&t)), vec!["exhausted_edge_not_agent_loop"]);
    }

    #[test]
    fn label_never_emitted() {
        let t = cond(
            "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"true\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"False\"\n",
        );
        let (d, s) = one(&t, "label_never_emitted");
        assert_eq!(s, "\"False\"");
        assert!(
            d.help
                .as_deref()
                .is_some_and(|h| h.starts_with("did you mean `false`?"))
        );
    }

    #[test]
    fn condition_missing_branch() {
        let t = cond("[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"true\"\n");
        let (d, s) = one(&t, "condition_missing_branch");
        assert_eq!(s, "\"a\"");
        assert!(d.message.contains("`when = \"false\"`"), "{}", d.message);
        assert!(!d.is_error());
    }

    #[test]
    fn no_policy_points_at_the_name_key() {
        let t = "name = \"t\"\n";
        let (d, s) = one(t, "no_policy");
        assert_eq!(s, "name");
        assert!(!d.is_error());
    }

    // ---- acceptance: the compat corpus validates without errors -----------------------

    fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                toml_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }

    fn assert_no_errors(label: &str, path: &Path, text: &str, failures: &mut Vec<String>) {
        let r = parse_str(path, text);
        let Some(doc) = r.doc else {
            failures.push(format!("{label}: parse failed: {:?}", r.diagnostics));
            return;
        };
        let opts = ValidateOptions::for_file(path);
        let errs: Vec<String> = validate(&r.source, &doc, &opts)
            .into_iter()
            .filter(Diagnostic::is_error)
            .map(|d| format!("[{}] {}", d.code, d.message))
            .collect();
        if !errs.is_empty() {
            failures.push(format!("{label}: {errs:#?}"));
        }
    }

    #[test]
    #[cfg_attr(
        agentd_no_compat,
        ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
    )]
    fn compat_workflows_validate_without_errors() {
        let compat = crate::compat_support::dir();
        let mut failures = Vec::new();
        let mut checked = 0;

        // Plain workflow files: examples, fixtures and the fixture suite's workflows.
        let mut files = Vec::new();
        for sub in ["examples", "fixtures", "fixture-suite"] {
            toml_files(&compat.join(sub), &mut files);
        }
        for f in &files {
            let text = std::fs::read_to_string(f).expect("read compat file");
            let Ok(value) = text.parse::<toml::Table>() else {
                failures.push(format!("{}: not TOML", f.display()));
                continue;
            };
            let is_workflow = ["name", "nodes", "workflows"]
                .iter()
                .any(|k| value.contains_key(*k))
                && !value.contains_key("expected")
                && !value.contains_key("mocks");
            if !is_workflow {
                continue;
            }
            checked += 1;
            assert_no_errors(&f.display().to_string(), f, &text, &mut failures);
        }

        // Conformance scenarios: the `[workflow] inline` document.
        let mut scenarios = Vec::new();
        toml_files(&compat.join("corpus"), &mut scenarios);
        for f in &scenarios {
            let text = std::fs::read_to_string(f).expect("read scenario");
            let value: toml::Table = text.parse().expect("scenario is TOML");
            let Some(inline) = value
                .get("workflow")
                .and_then(|w| w.get("inline"))
                .and_then(toml::Value::as_str)
            else {
                continue;
            };
            let dir = f.parent().unwrap_or(Path::new("."));
            let inline = inline.replace("${SCENARIO_DIR}", &dir.display().to_string());
            checked += 1;
            assert_no_errors(
                &f.display().to_string(),
                &dir.join("inline.toml"),
                &inline,
                &mut failures,
            );
        }
        assert!(checked >= 20, "only {checked} compat workflows found");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
