//! The execution context a node function sees.
//!
//! Owns [`Cx`] (the node's window on its run: resolved context paths, the
//! raw trigger input, dry-run, the policy gate, the pending HTTP reply),
//! [`Step`] (what a node returns), the per-walk state (`Frame`) and the
//! per-run state shared by every walk and thread of a run (`Shared`).
//!
//! Path resolution here is docs/dialect.md §9.1 exactly. This module must never decide
//! routing or retries (the engine does) and never read workflow TOML.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::graph::{CtxPath, GraphId, GraphMeta, Kind, NodeMeta, Slot, Source};
use crate::outcome::{HttpResponse, Metrics};
use crate::policy::{Decision, FsOp, Policy};

/// What a node function returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Store `value` as the node's output and route on `branch` (`None` =
    /// unconditional edges only, `Some(label)` = edges with `when = label`).
    Continue {
        /// The node's output.
        value: Value,
        /// The branch label, if the node emits one.
        branch: Option<Cow<'static, str>>,
    },
    /// End the run `completed` with `final_value: null` (`terminate`).
    Terminate,
    /// End the run `failed` (`fail`); nothing is stored.
    Fail {
        /// The failure reason.
        reason: Cow<'static, str>,
    },
}

impl Step {
    /// `Continue` with no branch label.
    #[must_use]
    pub fn value(value: Value) -> Self {
        Self::Continue {
            value,
            branch: None,
        }
    }

    /// `Continue` on the branch `label`.
    #[must_use]
    pub fn branch(value: Value, label: impl Into<Cow<'static, str>>) -> Self {
        Self::Continue {
            value,
            branch: Some(label.into()),
        }
    }
}

/// Where a run's policy comes from.
#[derive(Clone, Debug, Default)]
pub enum PolicyMode {
    /// The workflow's baked `[policy]` ([`crate::Workflow::POLICY`]);
    /// allow-all when the workflow declared none.
    #[default]
    Baked,
    /// Ignore the baked policy and allow everything (fixture runs).
    AllowAll,
    /// Enforce this policy instead of the baked one (`--policy`, scenarios).
    Override(Arc<Policy>),
}

/// A feature subsystem's per-engine state, opaque to the core: the runtime
/// facade's `intel::Intel` or `mcp::Mcp`, shared by every run of an engine
/// (and cloned, as an `Arc`, into each).
pub type Ext = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// The feature subsystems' state an engine lends each of its runs, in one
/// allocation shared by all of them.
#[derive(Clone, Debug, Default)]
pub struct Exts {
    /// The LLM subsystem's state (backends and the token budget).
    pub llm: Option<Ext>,
    /// The MCP subsystem's state (the named servers).
    pub mcp: Option<Ext>,
}

/// Counters shared by every walk and thread of one run.
#[derive(Debug, Default)]
pub struct AtomicMetrics {
    pub node_executions: AtomicU64,
    pub node_failures: AtomicU64,
    pub policy_denials: AtomicU64,
    pub llm_calls: AtomicU64,
    pub llm_tokens: AtomicU64,
}

impl AtomicMetrics {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Metrics {
        Metrics {
            node_executions: self.node_executions.load(Ordering::Relaxed),
            node_failures: self.node_failures.load(Ordering::Relaxed),
            policy_denials: self.policy_denials.load(Ordering::Relaxed),
            llm_calls: self.llm_calls.load(Ordering::Relaxed),
            llm_tokens: self.llm_tokens.load(Ordering::Relaxed),
        }
    }
}

/// Per-run state, shared (read-only or atomic) by the top-level walk and
/// every child walk, including the threads of `parallel` and `map`.
#[derive(Debug)]
pub struct Shared {
    pub execution_id: String,
    pub dry_run: bool,
    pub stub_unavailable: bool,
    /// `None` = allow-all.
    pub policy: Option<PolicyRef>,
    pub metrics: AtomicMetrics,
    /// The feature subsystems' state (`None`: the workflow has none, the
    /// usual case, which costs one word to carry).
    pub exts: Option<Arc<Exts>>,
    /// The top-level workflow's `[[secrets]]` (definitions, never values).
    pub secrets: &'static [crate::workflow::secrets::SecretDef],
    /// The outbound `traceparent` of this run (`None` when the trigger
    /// carried no valid inbound one).
    pub traceparent: Option<String>,
    /// Send `Idempotency-Key` on the top-level walk's `http_request`s: the
    /// run may be re-run from a checkpoint by another replica.
    pub idempotency_keys: bool,
    /// A completed run carrying an HTTP reply has its `final_value` dropped
    /// unread (serve mode without a trace; `Engine::reply_only`).
    pub final_value_unread: bool,
    /// `[budget].max_fs_write_mb` and the process-wide byte counter (read by
    /// `write_file`).
    pub fs_write: crate::budget::FsWriteLimit,
}

/// A borrowed-or-shared policy, so a baked `static` needs no allocation.
#[derive(Clone, Debug)]
pub enum PolicyRef {
    Baked(&'static Policy),
    Owned(Arc<Policy>),
}

impl PolicyRef {
    fn get(&self) -> &Policy {
        match self {
            Self::Baked(p) => p,
            Self::Owned(p) => p,
        }
    }
}

/// Per-walk state: one graph's context, fresh for every child walk.
#[derive(Debug)]
pub struct Frame {
    pub(crate) graph: &'static GraphMeta,
    pub(crate) graph_id: GraphId,
    /// Each node's output and visit count, by slot: one allocation for
    /// both.
    pub(crate) nodes: Vec<NodeState>,
    /// The `trigger` entry: flattened from `raw_input` on demand, or a node
    /// named `trigger`'s output.
    pub(crate) trigger: TriggerEntry,
    /// The trigger input as given, without `kind` (respond / call default).
    /// A served request's principal is kept apart, in `principal`.
    pub(crate) raw_input: Value,
    /// The principal a served request's input carries (serve mode, top-level
    /// walk): the input seen by the run is [`merge_principal`] of
    /// `raw_input` and it, read in place by trigger paths and built (once)
    /// only when something needs the whole input ([`Frame::input`]). `None`
    /// also when the input is neither an object nor `null`, which carries no
    /// principal.
    principal: Option<Cow<'static, Value>>,
    /// `raw_input` with `principal` merged, once built.
    merged_input: OnceCell<Value>,
    /// The last `respond` reply of this walk.
    pub(crate) reply: Option<HttpResponse>,
    pub deadline: Instant,
    /// 0 for the top-level walk; children of a walk at depth d run at d+1.
    pub(crate) depth: u32,
}

/// One node's state in a walk ([`Frame::nodes`], by slot).
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeState {
    /// The node's output; `None` until the node has produced output.
    pub(crate) output: Option<Value>,
    /// Times the node has started in this walk, restored from a checkpoint
    /// on resume: the visit number of `http_request`'s `Idempotency-Key`.
    pub(crate) visits: u32,
}

impl Frame {
    pub(crate) fn new(
        graph: &'static GraphMeta,
        graph_id: GraphId,
        kind: Source,
        input: Value,
        deadline: Instant,
        depth: u32,
    ) -> Self {
        Self {
            graph,
            graph_id,
            nodes: node_table(graph.nodes.len()),
            trigger: TriggerEntry::Flat {
                kind,
                whole: OnceCell::new(),
            },
            raw_input: input,
            principal: None,
            merged_input: OnceCell::new(),
            reply: None,
            deadline,
            depth,
        }
    }

    /// This walk's input carries `principal` (a served request's, see
    /// [`merge_principal`]), merged on demand. In place: the frame is a few
    /// hundred bytes, and a by-value builder moved it twice per run.
    pub(crate) fn with_principal(&mut self, principal: Cow<'static, Value>) {
        if matches!(self.raw_input, Value::Object(_) | Value::Null) {
            self.principal = Some(principal);
        }
    }

    /// The input as the run sees it: the trigger input, with the principal
    /// of a served request merged in (built on the first call).
    pub(crate) fn input(&self) -> &Value {
        match &self.principal {
            None => &self.raw_input,
            Some(principal) => self.merged_input.get_or_init(|| {
                merge_principal(self.raw_input.clone(), principal.as_ref().clone())
            }),
        }
    }

    /// [`Frame::input`], merged in place (the input moved, not copied) when
    /// the frame can be borrowed mutably.
    pub(crate) fn settle_input(&mut self) -> &Value {
        if let Some(principal) = self.principal.take() {
            self.raw_input = match self.merged_input.take() {
                Some(merged) => merged,
                None => {
                    merge_principal(std::mem::take(&mut self.raw_input), principal.into_owned())
                }
            };
        }
        &self.raw_input
    }

    /// A copy of [`Frame::input`], made with one copy of the input.
    pub(crate) fn input_cloned(&self) -> Value {
        match (&self.principal, self.merged_input.get()) {
            (None, _) => self.raw_input.clone(),
            (Some(_), Some(merged)) => merged.clone(),
            (Some(principal), None) => {
                merge_principal(self.raw_input.clone(), principal.as_ref().clone())
            }
        }
    }

    /// `template` rendered over [`Frame::input`] (`respond`'s default data),
    /// reading a served request's principal in place: the merged input is
    /// built only for a key naming all of it.
    pub(crate) fn render_input(&self, template: &crate::template::Template) -> String {
        let Some(principal) = self.principal.as_deref() else {
            return template.render(&self.raw_input);
        };
        template.render_with(|path| {
            // `walk_relative` over the merged object: empty segments skipped,
            // its first member the principal or the input's own.
            let mut segs = path.iter().filter(|s| !s.is_empty());
            let Some(first) = segs.next() else {
                return Some(self.input());
            };
            let mut cur = if *first == "principal" {
                principal
            } else {
                self.raw_input.as_object()?.get(*first)?
            };
            for seg in segs {
                cur = crate::template::step_into(cur, seg)?;
            }
            Some(cur)
        })
    }

    /// Count a start of the node in `slot`; its visit number (1 for the first).
    pub(crate) fn visit(&mut self, slot: Slot) -> u32 {
        match self.visit_cell(slot) {
            Some(cell) => {
                *cell = cell.saturating_add(1);
                *cell
            }
            None => 1,
        }
    }

    /// How many times the node in `slot` has started.
    pub(crate) fn visits_of(&self, slot: Slot) -> u32 {
        match slot {
            Slot::Node(i) => usize::try_from(i)
                .ok()
                .and_then(|i| self.nodes.get(i))
                .map_or(0, |n| n.visits),
            _ => 0,
        }
    }

    /// Restore the visit count of the node in `slot` (resume).
    pub(crate) fn set_visits(&mut self, slot: Slot, visits: u32) {
        if let Some(cell) = self.visit_cell(slot) {
            *cell = visits;
        }
    }

    fn visit_cell(&mut self, slot: Slot) -> Option<&mut u32> {
        match slot {
            Slot::Node(i) => usize::try_from(i)
                .ok()
                .and_then(|i| self.nodes.get_mut(i))
                .map(|n| &mut n.visits),
            _ => None,
        }
    }

    pub fn resolve(&self, path: &CtxPath) -> Option<&Value> {
        let (mut cur, rest) = match path.root {
            Slot::Trigger => match (&self.trigger, path.rest) {
                (TriggerEntry::Stored(value), rest) => (value, rest),
                (TriggerEntry::Flat { .. }, []) => (self.trigger_value(), path.rest),
                // A member of the flattened entry, read without building it.
                (TriggerEntry::Flat { kind, .. }, [first, rest @ ..]) => (
                    trigger_member(*kind, &self.raw_input, self.principal.as_deref(), first)?,
                    rest,
                ),
            },
            Slot::Node(i) => (
                self.nodes.get(usize::try_from(i).ok()?)?.output.as_ref()?,
                path.rest,
            ),
            Slot::Missing => return None,
        };
        // docs/dialect.md §9.1: empty segments are *not* skipped here (unlike templates).
        for seg in rest {
            cur = crate::template::step_into(cur, seg)?;
        }
        Some(cur)
    }

    /// The whole `trigger` entry: [`flatten_trigger`] of the input, built on
    /// the first call (a checkpoint, a path naming all of `trigger`), or a
    /// node named `trigger`'s output.
    pub(crate) fn trigger_value(&self) -> &Value {
        match &self.trigger {
            TriggerEntry::Flat { kind, whole } => {
                whole.get_or_init(|| flatten_trigger(*kind, self.input()))
            }
            TriggerEntry::Stored(value) => value,
        }
    }

    pub(crate) fn store(&mut self, slot: Slot, value: Value) {
        match slot {
            Slot::Trigger => self.trigger = TriggerEntry::Stored(value),
            Slot::Node(i) => {
                if let Some(cell) = usize::try_from(i).ok().and_then(|i| self.nodes.get_mut(i)) {
                    cell.output = Some(value);
                }
            }
            // A node whose id can never be addressed stores nothing visible.
            Slot::Missing => {}
        }
    }
}

/// The most node slots a spare table keeps ([`SPARE_NODES`]): 10 KB.
const SPARE_NODES_MAX: usize = 256;

thread_local! {
    /// The node table of the last walk that ended on this thread, emptied:
    /// the next walk here reuses its allocation instead of making one (a
    /// served run is a walk, so a reactor thread serving inline routes
    /// allocates none; docs/performance.md, "The run's own cost").
    static SPARE_NODES: Cell<Vec<NodeState>> = const { Cell::new(Vec::new()) };
}

/// A walk's node table of `len` empty slots, in this thread's spare table
/// when there is one.
fn node_table(len: usize) -> Vec<NodeState> {
    let mut nodes = SPARE_NODES.try_with(Cell::take).unwrap_or_default();
    // Built in place: `vec![x; n]` clones `x` n - 1 times.
    nodes.resize_with(len, NodeState::default);
    nodes
}

impl Drop for Frame {
    fn drop(&mut self) {
        let mut nodes = std::mem::take(&mut self.nodes);
        if nodes.capacity() <= SPARE_NODES_MAX {
            // The outputs go now; the allocation stays for the next walk (a
            // spare already there, from a child walk, is dropped instead).
            nodes.clear();
            // Gone only while the thread exits: the table is freed here.
            let _ = SPARE_NODES.try_with(|spare| spare.set(nodes));
        }
    }
}

/// A walk's `trigger` context entry.
#[derive(Debug)]
pub(crate) enum TriggerEntry {
    /// `{"kind": <kind>, ...input}` of [`flatten_trigger`], with the input
    /// in [`Frame::raw_input`]: a path into it reads the input in place, and
    /// the whole value is built (once) only when something needs all of it.
    /// Most runs never do, so a run no longer copies its input.
    Flat {
        /// The trigger kind.
        kind: Source,
        /// The flattened value, once built.
        whole: OnceCell<Value>,
    },
    /// A node named `trigger` stored its output here, or a resumed run's
    /// checkpoint held this entry.
    Stored(Value),
}

/// The member `seg` of `flatten_trigger(kind, merge_principal(input,
/// principal))` (only `input` when `principal` is `None`), found without
/// building it: the principal; an object input's own member (`kind`
/// included), else `kind`; for any other input only `kind` and `input`.
fn trigger_member<'v>(
    kind: Source,
    input: &'v Value,
    principal: Option<&'v Value>,
    seg: &str,
) -> Option<&'v Value> {
    if let Some(principal) = principal {
        // Set only for an object or `null` input, which the merge makes an
        // object holding `principal`.
        if seg == "principal" {
            return Some(principal);
        }
        if input.is_null() {
            return (seg == "kind").then(|| kind_value(kind));
        }
    }
    match input {
        Value::Object(fields) => match fields.get(seg) {
            Some(value) => Some(value),
            None => (seg == "kind").then(|| kind_value(kind)),
        },
        other => match seg {
            "kind" => Some(kind_value(kind)),
            "input" => Some(other),
            _ => None,
        },
    }
}

/// `kind`'s string as a JSON value that lives for the whole process.
fn kind_value(kind: Source) -> &'static Value {
    static KINDS: OnceLock<[Value; 3]> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| {
        [Source::Manual, Source::Http, Source::Event].map(|k| Value::from(k.as_str()))
    });
    match kind {
        Source::Manual => &kinds[0],
        Source::Http => &kinds[1],
        Source::Event => &kinds[2],
    }
}

/// Fuzzing entry point (feature `fuzzing`, used by `fuzz/fuzz_targets/paths.rs`;
/// never enabled by `agentd build`, not a stable API): start a top-level walk
/// of `graph` with `input` as its trigger, store each of `outputs` as a node
/// with that slot would, then resolve `path` exactly as [`Cx::resolve`] does.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[must_use]
pub fn fuzz_resolve(
    graph: &'static GraphMeta,
    kind: Source,
    input: Value,
    outputs: Vec<(Slot, Value)>,
    path: &CtxPath,
) -> Option<Value> {
    let mut frame = Frame::new(graph, GraphId(0), kind, input, Instant::now(), 0);
    for (slot, value) in outputs {
        frame.store(slot, value);
    }
    frame.resolve(path).cloned()
}

/// A served request's input with its authenticated principal: an object
/// input gets (or has overwritten) the key `principal`, `null` becomes
/// `{"principal": …}`, and any other input is left as it is (docs/operations.md,
/// "Bodies and the trigger").
#[must_use]
pub fn merge_principal(input: Value, principal: Value) -> Value {
    match input {
        Value::Object(mut map) => {
            map.insert("principal".to_owned(), principal);
            Value::Object(map)
        }
        Value::Null => {
            let mut map = Map::new();
            map.insert("principal".to_owned(), principal);
            Value::Object(map)
        }
        other => other,
    }
}

/// The `trigger` context entry of docs/dialect.md §5 "What a run sees as `trigger`": `{"kind": <kind>, ...input}`
/// for an object input (input keys win, `kind` included), else
/// `{"kind": <kind>, "input": <input>}`.
#[must_use]
pub fn flatten_trigger(kind: Source, input: &Value) -> Value {
    let mut map = Map::new();
    map.insert("kind".to_owned(), Value::from(kind.as_str()));
    match input {
        Value::Object(fields) => {
            for (k, v) in fields {
                map.insert(k.clone(), v.clone());
            }
        }
        other => {
            map.insert("input".to_owned(), other.clone());
        }
    }
    Value::Object(map)
}

/// A node's view of its run. Generated `exec` receives one per node visit
/// and passes it to the node function.
#[derive(Debug)]
pub struct Cx<'r> {
    pub(crate) shared: &'r Shared,
    pub(crate) frame: &'r mut Frame,
    pub(crate) node: &'static NodeMeta,
    /// This node has no unconditional out-edge, runs in the top-level walk,
    /// and the run's caller drops the final value of a run with an HTTP
    /// reply: see [`Cx::reply_makes_output_unread`].
    pub(crate) ends_reply_run: bool,
}

impl Cx<'_> {
    /// The running node's id.
    #[must_use]
    pub fn node_id(&self) -> &'static str {
        self.node.id
    }

    /// The running node's kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.node.kind
    }

    /// The run's execution id (`exec-...`), shared by its child walks.
    #[must_use]
    pub fn execution_id(&self) -> &str {
        &self.shared.execution_id
    }

    /// The running graph's workflow `name`.
    #[must_use]
    pub fn workflow(&self) -> &'static str {
        self.frame.graph.name
    }

    /// Whether side effects must be skipped (`--dry-run`). Each node decides
    /// what that means (docs/dialect.md §10.3).
    #[must_use]
    pub fn dry_run(&self) -> bool {
        self.shared.dry_run
    }

    /// The run deadline; checked by the engine before each node.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.frame.deadline
    }

    /// Nesting depth of this walk (0 = top level).
    #[must_use]
    pub fn depth(&self) -> u32 {
        self.frame.depth
    }

    /// Resolve a context path (docs/dialect.md §9.1); `None` = "not set".
    #[must_use]
    pub fn resolve(&self, path: &CtxPath) -> Option<&Value> {
        self.frame.resolve(path)
    }

    /// Resolve a path that must be set, or fail with the handler error
    /// "path `P` is not set in the execution context".
    pub fn require(&self, tool: &'static str, path: &CtxPath) -> Result<&Value, Error> {
        self.resolve(path).ok_or_else(|| {
            Error::tool(
                tool,
                format!("path `{}` is not set in the execution context", path.text),
            )
        })
    }

    /// Resolve a path that must be set and hold a string.
    pub fn require_str(&self, tool: &'static str, path: &CtxPath) -> Result<&str, Error> {
        match self.require(tool, path)? {
            Value::String(s) => Ok(s),
            other => Err(Error::tool(
                tool,
                format!(
                    "path `{}` must resolve to a string; got {}",
                    path.text,
                    type_name(other)
                ),
            )),
        }
    }

    /// The trigger input as given (no `kind` key): the default data of
    /// `respond` and the default child input of `call`/`parallel`.
    #[must_use]
    pub fn raw_input(&self) -> &Value {
        self.frame.input()
    }

    /// [`Cx::raw_input`], with a served request's principal merged in place
    /// (no copy of the input).
    pub(crate) fn settle_raw_input(&mut self) -> &Value {
        self.frame.settle_input()
    }

    /// A copy of [`Cx::raw_input`] (a child's default input).
    pub(crate) fn raw_input_cloned(&self) -> Value {
        self.frame.input_cloned()
    }

    /// `template` rendered over [`Cx::raw_input`] (`respond`'s default
    /// body), reading a served request's principal where it is.
    pub(crate) fn render_raw_input(&self, template: &crate::template::Template) -> String {
        self.frame.render_input(template)
    }

    /// The run's LLM subsystem state (the runtime facade's `Intel`, which
    /// its `intel()` downcasts); `None` for a workflow without one.
    #[doc(hidden)]
    #[must_use]
    pub fn llm_state(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        self.shared.exts.as_deref().and_then(|e| e.llm.as_deref())
    }

    /// The run's MCP subsystem state (the facade's `Mcp`).
    #[doc(hidden)]
    #[must_use]
    pub fn mcp_state(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        self.shared.exts.as_deref().and_then(|e| e.mcp.as_deref())
    }

    /// The run's counters (the facade's LLM nodes count their calls and
    /// tokens here).
    #[doc(hidden)]
    #[inline]
    #[must_use]
    pub fn run_metrics(&self) -> &AtomicMetrics {
        &self.shared.metrics
    }

    /// The run's `[[secrets]]` definitions (names and sources).
    #[must_use]
    pub fn secrets(&self) -> &'static [crate::workflow::secrets::SecretDef] {
        self.shared.secrets
    }

    /// The `traceparent` header this run sends on outbound requests, when
    /// its trigger carried a valid one (docs/operations.md "traceparent").
    #[must_use]
    pub fn traceparent(&self) -> Option<&str> {
        self.shared.traceparent.as_deref()
    }

    /// The `Idempotency-Key` of this visit's outbound request, when the run
    /// may be re-run from a checkpoint (a fleet's durable serve-mode run):
    /// `<execution id>:<node id>`, with `:<visit>` appended from a node's
    /// second visit in the walk on (a loop), the same when a replica re-runs
    /// the visit after a takeover. Child walks (`call`, `map`, `parallel`)
    /// get none: they are not checkpointed, and a `map`'s items would share
    /// one key.
    #[must_use]
    pub fn idempotency_key(&self) -> Option<String> {
        if !self.shared.idempotency_keys || self.frame.depth > 0 {
            return None;
        }
        let visit = self.frame.visits_of(self.node.slot);
        let mut key = format!("{}:{}", self.shared.execution_id, self.node.id);
        if visit > 1 {
            use std::fmt::Write as _;
            let _ = write!(key, ":{visit}");
        }
        Some(key)
    }

    /// The effective policy; `None` means allow-all.
    #[must_use]
    pub fn policy(&self) -> Option<&Policy> {
        self.shared.policy.as_ref().map(PolicyRef::get)
    }

    /// Gate an fs side effect of node kind `tool` on `path` (as resolved).
    ///
    /// The policy first decides on the text of the path (normalised, so `..`
    /// cannot climb out). When that allows it, the path is resolved through
    /// the filesystem, and if a symbolic link takes it somewhere else, that
    /// real location must be allowed too: a link inside an allowed directory
    /// cannot lead out of it. (A link swapped in between this check and the
    /// node's open is not caught; keep allowed directories unwritable by
    /// others.)
    pub fn check_fs(&self, tool: &'static str, op: FsOp, path: &str) -> Result<(), Error> {
        let Some(policy) = self.policy() else {
            return Ok(());
        };
        let decision = match policy.check_fs(op, path) {
            Decision::Allow => match real_location(path) {
                Some(real) => policy.check_fs_real(op, path, &real, &|dir| {
                    real_location(dir).unwrap_or_else(|| dir.to_owned())
                }),
                None => Decision::Allow,
            },
            deny => deny,
        };
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => {
                Err(Error::Policy(format!("{tool} denied on {path}: {reason}")))
            }
        }
    }

    /// Gate reading the environment variable `key`.
    pub fn check_env(&self, key: &str) -> Result<(), Error> {
        match self.policy().map(|p| p.check_env(key)) {
            None | Some(Decision::Allow) => Ok(()),
            Some(Decision::Deny(reason)) => {
                Err(Error::Policy(format!("read_env `{key}`: {reason}")))
            }
        }
    }

    /// Whether this node's output goes unread once it has recorded an HTTP
    /// reply: the node has no unconditional out-edge, so a `Continue` without
    /// a label ends the top-level walk with the output as the run's
    /// `final_value`, and the run's caller answers a run with a reply by the
    /// reply alone (serve mode; no trace recorded, no child walk). `respond`
    /// then outputs `null` instead of building its summary object.
    #[must_use]
    pub(crate) fn reply_makes_output_unread(&self) -> bool {
        self.ends_reply_run
    }

    /// Record `reply` as this walk's pending HTTP reply (last one wins).
    pub fn set_reply(&mut self, reply: HttpResponse) {
        self.frame.reply = Some(reply);
    }

    /// Whether kinds that are not compiled in should answer with a stub.
    pub fn stub_unavailable(&self) -> bool {
        self.shared.stub_unavailable
    }
}

/// Where `path` really leads when a symbolic link is on the way: the
/// longest existing prefix canonicalised (links followed), the rest
/// appended as written. `None` when it leads where its normalised text
/// says, or when nothing of it can be resolved.
fn real_location(path: &str) -> Option<String> {
    // An absolute path does not depend on the working directory: no need to
    // ask the kernel for it.
    let lexical = if path.starts_with('/') {
        crate::policy::normalize("/", path)
    } else {
        let cwd = std::env::current_dir().ok()?;
        crate::policy::normalize(cwd.to_str()?, path)
    };
    let mut existing = std::path::Path::new(&lexical);
    let mut rest = Vec::new();
    let real = loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            break real;
        }
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    };
    let mut real = real;
    for part in rest.iter().rev() {
        real.push(part);
    }
    let real = real.to_str()?.to_owned();
    (real != lexical).then_some(real)
}

/// The JSON type name used in handler errors.
#[must_use]
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Test scaffolding: a one-graph run context without an engine.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;
    use crate::graph::{EdgeMeta, StartMeta};
    use std::time::Duration;

    /// Node ids of the test graph, in slot order.
    pub const IDS: [&str; 4] = ["a", "b", "c", "me"];

    static NODES: [NodeMeta; 4] = [node("a", 0), node("b", 1), node("c", 2), node("me", 3)];
    static NO_EDGES: [&[EdgeMeta]; 4] = [&[], &[], &[], &[]];
    static STARTS: [StartMeta; 0] = [];

    pub static GRAPH: GraphMeta = GraphMeta {
        name: "test",
        starts: &STARTS,
        nodes: &NODES,
        out_edges: &NO_EDGES,
        edge_count: 0,
    };

    const fn node(id: &'static str, i: u32) -> NodeMeta {
        NodeMeta {
            id,
            kind: Kind::Merge,
            slot: Slot::Node(i),
            retry: None,
        }
    }

    /// A path into the test graph: `"trigger..."` or `"<id>..."`.
    pub fn path(text: &'static str) -> CtxPath {
        let mut parts = text.split('.');
        let head = parts.next().unwrap_or_default();
        let root = if head == "trigger" {
            Slot::Trigger
        } else {
            IDS.iter()
                .position(|id| *id == head)
                .and_then(|i| u32::try_from(i).ok())
                .map_or(Slot::Missing, Slot::Node)
        };
        let rest: Vec<&'static str> = parts.collect();
        CtxPath {
            text,
            root,
            rest: Box::leak(rest.into_boxed_slice()),
        }
    }

    pub struct TestRun {
        pub shared: Shared,
        pub frame: Frame,
    }

    impl TestRun {
        /// Lend the run `state` as its LLM subsystem's.
        pub fn set_llm_state(&mut self, state: Ext) {
            let mut exts = self.shared.exts.as_deref().cloned().unwrap_or_default();
            exts.llm = Some(state);
            self.shared.exts = Some(Arc::new(exts));
        }

        /// Lend the run `state` as its MCP subsystem's.
        pub fn set_mcp_state(&mut self, state: Ext) {
            let mut exts = self.shared.exts.as_deref().cloned().unwrap_or_default();
            exts.mcp = Some(state);
            self.shared.exts = Some(Arc::new(exts));
        }

        /// The run's LLM subsystem state.
        pub fn llm_state(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
            self.shared.exts.as_deref().and_then(|e| e.llm.as_deref())
        }

        pub fn new(input: Value) -> Self {
            Self {
                shared: Shared {
                    execution_id: "exec-test".into(),
                    dry_run: false,
                    stub_unavailable: false,
                    policy: None,
                    metrics: AtomicMetrics::default(),
                    exts: None,
                    secrets: &[],
                    traceparent: None,
                    idempotency_keys: false,
                    final_value_unread: false,
                    fs_write: crate::budget::FsWriteLimit::UNLIMITED,
                },
                frame: Frame::new(
                    &GRAPH,
                    GraphId(0),
                    Source::Manual,
                    input,
                    Instant::now() + Duration::from_secs(60),
                    0,
                ),
            }
        }

        // Used by the fs/env node tests.
        pub fn dry(mut self) -> Self {
            self.shared.dry_run = true;
            self
        }

        pub fn with_policy(mut self, policy: Policy) -> Self {
            self.shared.policy = Some(PolicyRef::Owned(Arc::new(policy)));
            self
        }

        /// Set node `id`'s output.
        pub fn set(mut self, id: &str, value: Value) -> Self {
            if let Some(i) = IDS.iter().position(|x| *x == id) {
                self.frame.nodes[i].output = Some(value);
            }
            self
        }

        /// A context for the node `me`.
        pub fn cx(&mut self) -> Cx<'_> {
            Cx {
                shared: &self.shared,
                frame: &mut self.frame,
                node: &NODES[3],
                ends_reply_run: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TestRun, path};
    use super::*;
    use serde_json::json;

    /// A top-level walk of the test graph with `input` as its trigger input.
    fn top_frame(kind: Source, input: &Value) -> Frame {
        Frame::new(
            &super::testing::GRAPH,
            GraphId(0),
            kind,
            input.clone(),
            Instant::now(),
            0,
        )
    }

    #[test]
    fn a_walk_starts_from_empty_slots_in_the_threads_spare_node_table() {
        let len = super::testing::GRAPH.nodes.len();
        let mut parent = top_frame(Source::Manual, &json!({}));
        parent.store(Slot::Node(0), json!("parent's"));
        parent.visit(Slot::Node(0));
        // A child walk while the parent's table is in use, then another.
        for _ in 0..2 {
            let mut child = top_frame(Source::Manual, &json!({}));
            assert_eq!(child.nodes.len(), len);
            assert!(
                child
                    .nodes
                    .iter()
                    .all(|n| n.output.is_none() && n.visits == 0)
            );
            child.store(Slot::Node(1), json!("child's"));
            child.visit(Slot::Node(1));
        }
        assert_eq!(parent.nodes[0].output, Some(json!("parent's")));
        assert_eq!(parent.visits_of(Slot::Node(0)), 1);
        drop(parent);
        let next = top_frame(Source::Manual, &json!({}));
        assert_eq!(next.nodes.len(), len);
        assert!(
            next.nodes
                .iter()
                .all(|n| n.output.is_none() && n.visits == 0)
        );
    }

    #[test]
    fn idempotency_keys_name_the_run_the_node_and_later_visits_of_durable_top_level_walks() {
        let mut run = TestRun::new(json!({}));
        run.frame.visit(Slot::Node(3));
        assert_eq!(run.cx().idempotency_key(), None, "only durable fleet runs");
        run.shared.idempotency_keys = true;
        assert_eq!(run.cx().idempotency_key().as_deref(), Some("exec-test:me"));
        run.frame.visit(Slot::Node(3));
        assert_eq!(
            run.cx().idempotency_key().as_deref(),
            Some("exec-test:me:2"),
            "a loop's second visit has a key of its own"
        );
        // A resumed run restores the count: the re-run visit keeps its key.
        run.frame.set_visits(Slot::Node(3), 1);
        run.frame.visit(Slot::Node(3));
        assert_eq!(
            run.cx().idempotency_key().as_deref(),
            Some("exec-test:me:2")
        );
        run.frame.depth = 1;
        assert_eq!(run.cx().idempotency_key(), None, "child walks send none");
    }

    #[test]
    fn object_input_is_flattened_after_kind_and_may_override_it() {
        assert_eq!(
            flatten_trigger(Source::Manual, &json!({"a": 1})),
            json!({"kind": "manual", "a": 1})
        );
        assert_eq!(
            flatten_trigger(Source::Http, &json!({"kind": "cron"})),
            json!({"kind": "cron"})
        );
    }

    #[test]
    fn non_object_input_is_wrapped_under_input() {
        assert_eq!(
            flatten_trigger(Source::Event, &Value::Null),
            json!({"kind": "event", "input": null})
        );
        assert_eq!(
            flatten_trigger(Source::Manual, &json!([1])),
            json!({"kind": "manual", "input": [1]})
        );
    }

    #[test]
    fn trigger_paths_read_the_input_in_place_exactly_as_the_flattened_entry() {
        let inputs = [
            json!({"a": {"b": [1, {"c": 2}]}, "s": "text", "principal": {"kind": "anonymous"}}),
            json!({"kind": "cron", "input": 3}),
            json!({"": {"": 4}}),
            json!({}),
            Value::Null,
            json!([1, [2]]),
            json!("text"),
            json!(7),
        ];
        let paths = [
            "trigger",
            "trigger.kind",
            "trigger.kind.0",
            "trigger.input",
            "trigger.input.0",
            "trigger.input.1.0",
            "trigger.a",
            "trigger.a.b.1.c",
            "trigger.a.b.+1.c",
            "trigger.s.0",
            "trigger.principal.kind",
            "trigger.",
            "trigger..",
            "trigger.missing",
        ];
        for kind in [Source::Manual, Source::Http, Source::Event] {
            for input in &inputs {
                let flat = flatten_trigger(kind, input);
                let frame = top_frame(kind, input);
                for text in paths {
                    let path = path(text);
                    let mut want = Some(&flat);
                    for seg in path.rest {
                        want = want.and_then(|v| crate::template::step_into(v, seg));
                    }
                    assert_eq!(frame.resolve(&path), want, "{kind:?} {input} {text}");
                }
                assert_eq!(frame.trigger_value(), &flat, "{kind:?} {input}");
            }
        }
    }

    #[test]
    fn a_principal_beside_the_input_reads_exactly_as_the_merged_input() {
        let inputs = [
            json!({"a": {"b": [1, {"c": 2}]}, "principal": "forged"}),
            json!({"kind": "cron", "input": 3}),
            json!({}),
            Value::Null,
            json!([1, [2]]),
            json!("text"),
            json!(7),
        ];
        let anonymous = json!({"kind": "anonymous", "name": ""});
        let principals: [Cow<'static, Value>; 3] = [
            Cow::Owned(json!({"kind": "bearer", "name": "ci"})),
            Cow::Owned(json!("scalar")),
            Cow::Owned(anonymous),
        ];
        fn key(raw: &'static str) -> crate::template::Seg {
            let path: Vec<&'static str> = raw.split('.').collect();
            crate::template::Seg::Key {
                raw,
                path: Box::leak(path.into_boxed_slice()),
            }
        }
        fn json(raw: &'static str) -> crate::template::Seg {
            let path: Vec<&'static str> = raw.split('.').collect();
            crate::template::Seg::Json {
                raw,
                path: Box::leak(path.into_boxed_slice()),
            }
        }
        let lit = crate::template::Seg::Lit("pong ");
        let templates: Vec<&'static [crate::template::Seg]> = [
            vec![lit],
            vec![lit, key("principal.kind"), json("principal")],
            vec![key("a.b.1.c"), json("a"), key("kind"), key("input")],
            vec![
                key(""),
                json(""),
                key(".principal..name"),
                key("principal.0"),
            ],
            vec![key("missing"), json("missing.x"), key("0")],
        ]
        .into_iter()
        .map(|t| &*Box::leak(t.into_boxed_slice()))
        .collect();
        let paths = [
            "trigger",
            "trigger.kind",
            "trigger.input",
            "trigger.input.0",
            "trigger.a.b.1.c",
            "trigger.principal",
            "trigger.principal.kind",
            "trigger.principal.name",
            "trigger.principal.0",
            "trigger.",
            "trigger.missing",
        ];
        for kind in [Source::Manual, Source::Http, Source::Event] {
            for input in &inputs {
                for principal in &principals {
                    let merged = merge_principal(input.clone(), principal.as_ref().clone());
                    let eager = top_frame(kind, &merged);
                    let mut lazy = top_frame(kind, input);
                    lazy.with_principal(principal.clone());
                    for text in paths {
                        let path = path(text);
                        assert_eq!(
                            lazy.resolve(&path),
                            eager.resolve(&path),
                            "{kind:?} {input} {principal} {text}"
                        );
                    }
                    for &template in &templates {
                        let template = crate::template::Template(template);
                        assert_eq!(
                            lazy.render_input(&template),
                            template.render(&merged),
                            "{input} {principal} {template:?}"
                        );
                    }
                    assert_eq!(lazy.input_cloned(), merged, "{input} {principal}");
                    assert_eq!(lazy.input(), &merged, "{input} {principal}");
                    assert_eq!(lazy.trigger_value(), eager.trigger_value());
                    let mut settled = top_frame(kind, input);
                    settled.with_principal(principal.clone());
                    assert_eq!(settled.settle_input(), &merged, "{input} {principal}");
                    for text in paths {
                        let path = path(text);
                        assert_eq!(settled.resolve(&path), eager.resolve(&path), "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_stored_trigger_entry_replaces_the_flattened_one() {
        let mut run = TestRun::new(json!({"a": 1}));
        run.frame.store(Slot::Trigger, json!({"b": 2}));
        assert_eq!(run.frame.resolve(&path("trigger.a")), None);
        assert_eq!(run.frame.resolve(&path("trigger.kind")), None);
        assert_eq!(run.frame.resolve(&path("trigger.b")), Some(&json!(2)));
        assert_eq!(run.frame.trigger_value(), &json!({"b": 2}));
        assert_eq!(run.cx().raw_input(), &json!({"a": 1}));
    }

    #[test]
    fn paths_walk_objects_and_index_arrays() {
        let mut run = TestRun::new(json!({"items": [{"id": 7}]})).set("a", json!({"x": [1, 2]}));
        let cx = run.cx();
        assert_eq!(cx.resolve(&path("trigger.items.0.id")), Some(&json!(7)));
        assert_eq!(cx.resolve(&path("trigger.kind")), Some(&json!("manual")));
        assert_eq!(cx.resolve(&path("a.x.+1")), Some(&json!(2)));
        assert_eq!(cx.resolve(&path("a.x.01")), Some(&json!(2)));
        assert_eq!(cx.resolve(&path("a")), Some(&json!({"x": [1, 2]})));
    }

    #[test]
    fn paths_miss_on_unrun_nodes_unknown_roots_and_scalars() {
        let mut run = TestRun::new(json!({"s": "text"}));
        let cx = run.cx();
        assert_eq!(cx.resolve(&path("b")), None);
        assert_eq!(cx.resolve(&path("nobody.x")), None);
        assert_eq!(cx.resolve(&path("trigger.s.0")), None);
        assert_eq!(cx.resolve(&path("trigger.missing")), None);
    }

    #[test]
    fn empty_segments_are_not_skipped() {
        let mut run = TestRun::new(json!({"a": {"b": 1}, "e": {"": 2}}));
        let cx = run.cx();
        assert_eq!(cx.resolve(&path("trigger.a..b")), None);
        assert_eq!(cx.resolve(&path("trigger.a.b.")), None);
        assert_eq!(cx.resolve(&path("trigger.e.")), Some(&json!(2)));
    }

    #[test]
    fn negative_indices_miss() {
        let mut run = TestRun::new(json!({"l": [1]}));
        let cx = run.cx();
        assert_eq!(cx.resolve(&path("trigger.l.-0")), None);
    }

    #[test]
    fn require_str_names_the_path_and_type() {
        let mut run = TestRun::new(json!({"n": 1}));
        let cx = run.cx();
        let missing = cx.require_str("read_file", &path("trigger.p"));
        assert_eq!(
            missing.err().map(|e| e.to_string()).as_deref(),
            Some("tool `read_file` failed: path `trigger.p` is not set in the execution context")
        );
        let wrong = cx.require_str("read_file", &path("trigger.n"));
        assert_eq!(
            wrong.err().map(|e| e.to_string()).as_deref(),
            Some("tool `read_file` failed: path `trigger.n` must resolve to a string; got number")
        );
    }
}
