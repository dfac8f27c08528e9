//! The validator: every dialect-1 check of docs/dialect.md §14, plus our own
//! (docs/dialect.md §15).
//!
//! [`validate`] never fails fast and never panics: it returns every problem it finds,
//! in a deterministic order. `Validator::run` is the table of contents. The 24
//! dialect-1 codes come first, in dialect 1's emission order (docs/dialect.md §14), with dialect 1's
//! skip rules (modules `graph` and `nodes`); our extra checks follow in a fixed order:
//!
//! 1. route auth references (`bad_auth_ref`, `unknown_auth_binding`,
//!    `mtls_without_client_auth`; module `auth`);
//! 2. trigger syntax (`invalid_cron`, `invalid_interval`, `invalid_fs_watch_event`,
//!    `invalid_fs_watch_debounce`,
//!    `unknown_trigger_mcp_server`; module `triggers`);
//! 3. intelligence backends (`reserved_backend_name`, `dup_backend_name`,
//!    `unknown_backend`) and `output_schema_unreadable` (module `backends`);
//! 4. routing (`ambiguous_successor`, then one label warning per edge, then
//!    `condition_missing_branch`; module `edges`), then valid dialect 1 that fails
//!    silently (module `silent`);
//! 5. `no_policy`, then `[policy.rego]` and `[[mcp_servers]]` (`rego_*`,
//!    `dup_mcp_server_name`, `invalid_mcp_server`, `key_has_no_effect`,
//!    `mcp_server_not_in_policy`; module `policy`);
//! 6. custom Rust nodes (module `nodes`);
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

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::diagnostics::{Diagnostic, line_col};
use crate::model::{Edge, NodeKind, WorkflowDoc};
use crate::parse::suggest;
use crate::source::{Loc, SourceFile};

mod auth;
mod backends;
mod budget;
mod edges;
mod graph;
mod logging;
mod no_effect;
mod nodes;
mod policy;
mod routes;
mod secrets;
mod silent;
mod triggers;
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
/// parent's engine (docs/dialect.md §11): its own `[policy]` is not applied, so `no_policy` is
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

    /// The table of contents: every check, in emission order, with the module that
    /// holds it. Dialect 1's 13 come first, numbered as docs/dialect.md lists its
    /// codes; a dangling edge skips the two graph walks that would trip on it.
    fn run(&mut self) {
        // graph.rs: uniqueness and start references
        self.check_dup_node_ids(); // 1
        self.check_dup_start_names(); // 2
        self.check_http_routes(); // 3
        self.check_trigger_starts(); // 4
        self.check_start_entries(); // 5
        let dangling = self.check_dangling_edges(); // 6
        // nodes.rs: per-kind node fields
        self.check_mcp_nodes(); // 7
        self.check_agent_loops(); // 8
        self.check_respond_nodes(); // 9
        self.check_map_nodes(); // 10
        self.check_http_headers(); // 11
        // graph.rs: walks
        if !dangling {
            self.check_cycle(); // 12
            self.check_reachability(); // 13
        }

        // Our own checks, in a fixed order.
        self.check_route_auth(); // auth.rs
        self.check_trigger_syntax(); // triggers.rs
        self.check_backends(); // backends.rs
        self.check_backend_defs();
        self.check_output_schemas();
        self.check_ambiguous_successors(); // edges.rs
        self.check_edge_labels();
        self.check_condition_branches();
        self.check_unhandled_error_branches(); // silent.rs
        self.check_respond_escaping();
        self.check_policy_present(); // policy.rs
        self.check_policy_rego();
        self.check_mcp_servers();
        self.check_rust_nodes(); // nodes.rs
        self.check_secrets(); // secrets.rs
        self.check_auth_bindings(); // auth.rs
        self.check_server_tls();
        self.check_logging(); // logging.rs
        self.check_retry_numbers(); // no_effect.rs
        self.check_keys_without_effect();
        self.check_route_extras(); // routes.rs
        self.check_budget(); // budget.rs
    }
}

#[cfg(test)]
mod tests;
