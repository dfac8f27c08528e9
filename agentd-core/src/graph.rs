//! The static description of a compiled workflow graph.
//!
//! Owns the types the compiler bakes into `static` items: [`GraphMeta`] and
//! its start, node and edge tables, context paths ([`CtxPath`]), retry
//! policies and the build provenance ([`BuildInfo`]). Every type here is
//! const-constructible from `&'static` data; none allocates.
//!
//! This module must never parse workflow TOML or resolve names at run time:
//! ids are already dense indices, paths are already split, the entry node of
//! each start is already resolved. It describes; the engine walks.

use serde::{Serialize, Serializer};

/// Index of a node inside one graph's [`GraphMeta::nodes`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIdx(pub u32);

/// Index of a graph inside [`crate::Workflow::GRAPHS`]; `GraphId(0)` is the
/// top-level workflow, child workflows of `call`/`parallel`/`map` follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GraphId(pub u32);

/// One workflow file, compiled: its starts, nodes and out-edge tables.
#[derive(Debug)]
pub struct GraphMeta {
    /// The workflow's `name` (used in ``workflow `<name>`: ...`` errors).
    pub name: &'static str,
    /// `[[start_nodes]]` in declaration order.
    pub starts: &'static [StartMeta],
    /// `[[nodes]]` in declaration order; [`NodeIdx`] indexes this.
    pub nodes: &'static [NodeMeta],
    /// Per node (same index as `nodes`), its out-edges in declaration order.
    pub out_edges: &'static [&'static [EdgeMeta]],
    /// Number of `[[edges]]` in the file; every [`EdgeMeta::index`] is below
    /// it. Sizes the per-walk loop counters.
    pub edge_count: u32,
}

impl GraphMeta {
    /// The start named `name`, with its index into [`GraphMeta::starts`].
    #[must_use]
    pub fn start(&self, name: &str) -> Option<(usize, &'static StartMeta)> {
        self.starts
            .iter()
            .enumerate()
            .find(|(_, s)| same_name(s.name, name))
    }
}

/// `a == b` for short names, cheaply: a serve route's start is often the
/// very string the start table holds (one literal), and names of the same
/// length mostly differ in their first byte, so most comparisons end
/// before a `memcmp` call (docs/performance.md, "The run's own cost").
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr())
            || (a.as_bytes().first() == b.as_bytes().first() && a == b))
}

/// The declared `source` of a start node, also the trigger kind string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `source = "manual"`: CLI one-shot runs, cron/interval/fs_watch, children.
    Manual,
    /// `source = "http"`: HTTP routes.
    Http,
    /// `source = "event"`.
    Event,
}

impl Source {
    /// The dialect spelling, which is also `trigger.kind`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Http => "http",
            Self::Event => "event",
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One `[[start_nodes]]` entry with its entry node already resolved.
#[derive(Debug)]
pub struct StartMeta {
    /// The start's `name`.
    pub name: &'static str,
    /// The start's `source`.
    pub source: Source,
    /// The entry node: `entry_node` if declared, else the unique root (a node
    /// with no incoming edge, loop edges included). `None` when there is no
    /// unique root; running such a start is a hard error.
    pub entry: Option<NodeIdx>,
    /// How many root nodes the graph has; only used for the error message
    /// when `entry` is `None`.
    pub roots: u32,
}

/// One `[[nodes]]` entry: identity and the engine-level settings. The
/// kind-specific configuration lives in a separate static the generated
/// `exec` passes to the node function.
#[derive(Debug)]
pub struct NodeMeta {
    /// The node's `id`.
    pub id: &'static str,
    /// The node's `type`.
    pub kind: Kind,
    /// Where the node's output is stored in the run context: `Slot::Node(i)`
    /// for node `i`, or `Slot::Trigger` for a node literally named `trigger`
    /// (its output overwrites the trigger entry, as in dialect 1).
    pub slot: Slot,
    /// The node's `retry` table, if any (`max_attempts = 0` already as 1 or
    /// left 0: the engine treats both as one attempt).
    pub retry: Option<Retry>,
}

/// One `[[edges]]` entry, stored under its `from` node.
#[derive(Debug)]
pub struct EdgeMeta {
    /// Target node.
    pub to: NodeIdx,
    /// The branch label this edge answers; `None` = unconditional.
    pub when: Option<&'static str>,
    /// `Some(n)` marks a loop edge traversable at most `n` times per walk.
    pub max_iterations: Option<u32>,
    /// Declaration index among all edges of the graph (loop counter key).
    pub index: u32,
}

/// A node's `retry` table (docs/dialect.md §10.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retry {
    /// Total attempts including the first; 0 behaves as 1.
    pub max_attempts: u32,
    /// Base backoff; attempt `n` waits `backoff_ms × n` (default 100).
    pub backoff_ms: u64,
    /// Which errors are retried.
    pub on: RetryOn,
    /// Jitter fraction; clamped to `[0, 0.5]` at use.
    pub jitter: f32,
}

/// `retry.on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryOn {
    /// Every error except policy denials and validation failures.
    Any,
    /// Only `Tool`, `Intelligence` and `Mcp` errors.
    Transient,
}

/// Where a context path starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The reserved `trigger` entry (or a node literally named `trigger`).
    Trigger,
    /// The output of node `i` of the same graph.
    Node(u32),
    /// A root that names no node: the path always misses.
    Missing,
}

/// A context path (every `*_from` field and `expr`), pre-split by the
/// compiler.
///
/// The compiler splits the path text on every `.` — no escaping, no
/// trimming. The first segment picks [`CtxPath::root`]: `"trigger"` gives
/// [`Slot::Trigger`]; a node id gives that node's slot; anything else gives
/// [`Slot::Missing`]. The remaining segments go to `rest` verbatim,
/// **including empty ones** (`"a..b"` → `["", "b"]`, a trailing dot → a
/// trailing `""`), because dialect 1 does not skip them (docs/dialect.md §9.1).
#[derive(Debug)]
pub struct CtxPath {
    /// The path as written, for error messages.
    pub text: &'static str,
    /// The resolved first segment.
    pub root: Slot,
    /// The segments after the first, verbatim.
    pub rest: &'static [&'static str],
}

/// The 24 node kinds of dialect 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the kind named by `as_str`
pub enum Kind {
    ReadFile,
    ReadEnv,
    ReadMcpResource,
    ParseJson,
    TemplateRender,
    DiffCompute,
    JsonSelect,
    LlmInfer,
    AgentLoop,
    WriteFile,
    CreateDir,
    HttpRequest,
    CallMcpTool,
    ShellRun,
    Call,
    Parallel,
    Map,
    Condition,
    Switch,
    Merge,
    Fail,
    PauseForApproval,
    Respond,
    Terminate,
    /// agentd extension: a node run by a Rust function bound in `agentd!`.
    Rust,
}

impl Kind {
    /// The dialect's `type` string (snake_case).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadFile => "read_file",
            Self::ReadEnv => "read_env",
            Self::ReadMcpResource => "read_mcp_resource",
            Self::ParseJson => "parse_json",
            Self::TemplateRender => "template_render",
            Self::DiffCompute => "diff_compute",
            Self::JsonSelect => "json_select",
            Self::LlmInfer => "llm_infer",
            Self::AgentLoop => "agent_loop",
            Self::WriteFile => "write_file",
            Self::CreateDir => "create_dir",
            Self::HttpRequest => "http_request",
            Self::CallMcpTool => "call_mcp_tool",
            Self::ShellRun => "shell_run",
            Self::Call => "call",
            Self::Parallel => "parallel",
            Self::Map => "map",
            Self::Condition => "condition",
            Self::Switch => "switch",
            Self::Merge => "merge",
            Self::Fail => "fail",
            Self::PauseForApproval => "pause_for_approval",
            Self::Respond => "respond",
            Self::Terminate => "terminate",
            Self::Rust => "rust",
        }
    }

    /// Kinds the engine runs itself rather than through a handler; `retry`
    /// is never applied to them (docs/dialect.md §10.1).
    #[must_use]
    pub const fn is_engine_internal(self) -> bool {
        matches!(
            self,
            Self::Call | Self::Parallel | Self::Map | Self::PauseForApproval
        )
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Provenance baked into the binary.
#[derive(Debug)]
pub struct BuildInfo {
    /// The top-level workflow's `name`.
    pub workflow: &'static str,
    /// Version of the `agentd` compiler that generated the code.
    pub compiler_version: &'static str,
    /// Every workflow file compiled in (top level first), with its digest.
    pub sources: &'static [SourceFile],
    /// The capability set the binary was built with (sorted).
    pub capabilities: &'static [&'static str],
    /// SHA-256 (hex) over the sources' digests, in order: the program's identity.
    pub program_hash: &'static str,
    /// Fingerprint of the Ed25519 key that verified every source at build time
    /// (16 hex characters), or `None` when the sources were not all verified.
    pub signer: Option<&'static str>,
    /// Raw Ed25519 public key a `--policy` override file must be signed with; set
    /// when the binary was built with signing required.
    pub policy_key: Option<&'static [u8; 32]>,
}

impl BuildInfo {
    /// The provenance document `--provenance` prints. `runtime_version` is the
    /// version of this runtime crate, which the binary was linked against;
    /// `binary_sha256` is the SHA-256 of the running executable's file, the subject
    /// digest of the statement `agentd build --provenance-out` writes (`null` when
    /// the file cannot be read).
    #[must_use]
    pub fn provenance(&self) -> serde_json::Value {
        let sources: Vec<serde_json::Value> = self
            .sources
            .iter()
            .map(|s| serde_json::json!({ "path": s.path, "sha256": s.sha256 }))
            .collect();
        serde_json::json!({
            "workflow": self.workflow,
            "program_hash": self.program_hash,
            "sources": sources,
            "signer_key_fingerprint": self.signer,
            "compiler_version": self.compiler_version,
            "runtime_version": env!("CARGO_PKG_VERSION"),
            "capabilities": self.capabilities,
            "binary_sha256": own_sha256(),
        })
    }
}

/// Hex SHA-256 of the running executable, read through `/proc/self/exe` on Linux
/// (the file this process was started from, even if its path was replaced since).
fn own_sha256() -> Option<String> {
    use sha2::{Digest, Sha256};
    let path = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().ok()?
    };
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut file, &mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// One workflow file the binary was compiled from.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the compiler resolved it.
    pub path: &'static str,
    /// Lower-case hex sha256 of the exact file bytes.
    pub sha256: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_dialect_type_strings() {
        assert_eq!(Kind::PauseForApproval.as_str(), "pause_for_approval");
        assert_eq!(Kind::CallMcpTool.as_str(), "call_mcp_tool");
        assert_eq!(
            serde_json::to_string(&Kind::ReadEnv).ok().as_deref(),
            Some("\"read_env\"")
        );
    }

    #[test]
    fn only_composites_and_pause_are_engine_internal() {
        assert!(Kind::Map.is_engine_internal());
        assert!(Kind::PauseForApproval.is_engine_internal());
        assert!(!Kind::Respond.is_engine_internal());
        assert!(!Kind::Fail.is_engine_internal());
    }

    #[test]
    fn start_names_compare_as_strings() {
        let owned = String::from("ping");
        for (a, b, same) in [
            ("ping", "ping", true),
            ("ping", owned.as_str(), true),
            ("ping", "pong", false),
            ("ping", "echo", false),
            ("ping", "pin", false),
            ("", "", true),
            ("", "p", false),
        ] {
            assert_eq!(super::same_name(a, b), same, "{a:?} {b:?}");
            assert_eq!(super::same_name(b, a), same, "{b:?} {a:?}");
        }
    }
}
