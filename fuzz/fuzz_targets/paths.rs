//! Arbitrary paths through the two kinds of path handling: context paths (every
//! `*_from` field and `expr`, docs/dialect.md §9.1) and the policy's fs path normalisation and
//! matchers (docs/dialect.md §12.1).
//!
//! Context paths are split as the compiler splits them (on every `.`, the first
//! segment picking the root: `trigger`, a node id, or nothing) and resolved by the
//! runtime's own walk (`context::fuzz_resolve`, feature `fuzzing`: a fresh walk with
//! the given trigger input and node outputs, then `Cx::resolve`'s code). The graph
//! has nodes `a`, `b`, `c` and a node literally named `trigger`, whose output
//! replaces the trigger entry.
//!
//! Input, one field per line (see `fuzz/seeds/paths/`; a missing line is empty):
//!
//! ```text
//! 0  context path                 e.g. trigger.items.0.name
//! 1  trigger input (JSON; other text is used as a JSON string)
//! 2  output of node a (JSON; empty or not JSON: the node has not run)
//! 3  output of node b
//! 4  output of node c
//! 5  output of the node named `trigger`
//! 6  trigger kind: http, event, anything else manual
//! 7  working directory for `policy::normalize`
//! 8  allowlist pattern (used for every fs op, env, http, shell and MCP list)
//! 9  candidate path / name / URL
//! ```
//!
//! Properties: nothing panics; a path without empty segments resolves to what
//! `template::walk_relative` finds from its root (the two walks differ only there);
//! `normalize` returns an absolute path with no empty, `.` or `..` component, is
//! idempotent and ignores the working directory for absolute paths; an fs check a
//! `P/**` (or `P/*`) pattern allows is for a path inside normalised `P`.

#![no_main]

use std::borrow::Cow;

use agentd_fuzz::{Arena, lines};
use agentd_runtime::context::{flatten_trigger, fuzz_resolve};
use agentd_runtime::graph::{CtxPath, EdgeMeta, GraphMeta, Kind, NodeMeta, Slot, Source};
use agentd_runtime::policy::{
    Decision, EnvPolicy, FsOp, FsPolicy, HttpPolicy, McpPolicy, Patterns, Policy, ShellPolicy,
    name_matches, normalize, path_matches,
};
use agentd_runtime::template::walk_relative;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const fn node(id: &'static str, slot: Slot) -> NodeMeta {
    NodeMeta {
        id,
        kind: Kind::Merge,
        slot,
        retry: None,
    }
}

static NODES: [NodeMeta; 4] = [
    node("a", Slot::Node(0)),
    node("b", Slot::Node(1)),
    node("c", Slot::Node(2)),
    node("trigger", Slot::Trigger),
];
static OUT_EDGES: [&[EdgeMeta]; 4] = [&[], &[], &[], &[]];
static GRAPH: GraphMeta = GraphMeta {
    name: "fuzz",
    starts: &[],
    nodes: &NODES,
    out_edges: &OUT_EDGES,
    edge_count: 0,
};

/// The root slot of a path's first segment, as the compiler resolves it.
fn root_of(first: &str) -> Slot {
    NODES
        .iter()
        .find(|n| n.id == first)
        .map_or(Slot::Missing, |n| n.slot)
}

fn context_paths(f: &[String]) {
    let field = |i: usize| f.get(i).map_or("", String::as_str);
    let json = |i: usize| serde_json::from_str::<Value>(field(i)).ok();
    let input = json(1).unwrap_or_else(|| Value::String(field(1).to_owned()));
    let kind = match field(6) {
        "http" => Source::Http,
        "event" => Source::Event,
        _ => Source::Manual,
    };
    let mut outputs = Vec::new();
    for (i, n) in NODES.iter().enumerate() {
        if let Some(v) = json(2 + i) {
            outputs.push((n.slot, v));
        }
    }

    let text = field(0);
    // SAFETY: the arena and the path borrowed from it live only in this call, and
    // the arena is declared first, so it is dropped last.
    let mut arena = unsafe { Arena::new() };
    let mut parts = text.split('.');
    let root = root_of(parts.next().unwrap_or(""));
    let rest: Vec<&'static str> = parts.map(|p| arena.str(p)).collect();
    let path = CtxPath {
        text: arena.str(text),
        root,
        rest: arena.slice(rest),
    };

    let got = fuzz_resolve(&GRAPH, kind, input.clone(), outputs.clone(), &path);

    if path.rest.iter().all(|s| !s.is_empty()) {
        let stored = |slot: Slot| {
            outputs
                .iter()
                .rev()
                .find(|(s, _)| *s == slot)
                .map(|(_, v)| v.clone())
        };
        let start = match root {
            Slot::Trigger => {
                Some(stored(Slot::Trigger).unwrap_or_else(|| flatten_trigger(kind, &input)))
            }
            Slot::Node(_) => stored(root),
            Slot::Missing => None,
        };
        let want = start
            .as_ref()
            .and_then(|v| walk_relative(v, path.rest))
            .cloned();
        assert_eq!(got, want, "path {text:?}");
    }
}

fn assert_normal(n: &str, what: &str) {
    assert!(n.starts_with('/'), "{what}: {n:?} is not absolute");
    if n != "/" {
        assert!(
            n[1..].split('/').all(|c| !matches!(c, "" | "." | "..")),
            "{what}: {n:?} has an empty, `.` or `..` component"
        );
    }
}

fn policy_paths(f: &[String]) {
    let field = |i: usize| f.get(i).map_or("", String::as_str);
    let (cwd, pattern, candidate) = (field(7), field(8), field(9));

    let n = normalize(cwd, candidate);
    assert_normal(&n, "normalize(cwd, candidate)");
    assert_eq!(normalize(cwd, &n), n, "normalize is idempotent");
    assert_eq!(
        normalize("/elsewhere", &n),
        n,
        "an absolute path ignores the cwd"
    );
    if candidate.starts_with('/') {
        assert_eq!(
            normalize("", candidate),
            n,
            "an absolute path ignores the cwd"
        );
    }
    assert_normal(&normalize(cwd, pattern), "normalize(cwd, pattern)");
    let _ = path_matches(pattern, candidate);
    let _ = name_matches(pattern, candidate);

    let one: Patterns = Cow::Owned(vec![Cow::Owned(pattern.to_owned())]);
    let none: Patterns = Cow::Borrowed(&[]);
    let policy = Policy {
        fs: FsPolicy {
            read: one.clone(),
            write: one.clone(),
            delete: none.clone(),
            list: none.clone(),
        },
        env: EnvPolicy {
            read_keys: one.clone(),
        },
        http: HttpPolicy {
            urls: one.clone(),
            methods: none,
        },
        shell: ShellPolicy {
            commands: one.clone(),
        },
        mcp: McpPolicy {
            servers: one.clone(),
            tools: one.clone(),
            resources: one.clone(),
        },
    };
    let read = policy.check_fs(FsOp::Read, candidate);
    for op in [FsOp::Write, FsOp::Delete, FsOp::List] {
        let _ = policy.check_fs(op, candidate);
    }
    let _ = policy.check_env(candidate);
    let _ = policy.check_http("GET", candidate);
    let _ = policy.check_http(candidate, candidate);
    let _ = policy.check_shell(candidate);
    let _ = Policy::mcp_list_allows(&policy.mcp.tools, candidate);

    // `..` never escapes an allowed `P/**`.
    let prefix = pattern
        .strip_suffix("/**")
        .or_else(|| pattern.strip_suffix("/*"));
    if let (Decision::Allow, Some(prefix)) = (&read, prefix)
        && !prefix.is_empty()
        && let Some(cwd) = std::env::current_dir()
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
    {
        let p = normalize(&cwd, prefix);
        let c = normalize(&cwd, candidate);
        assert!(
            p == "/" || c == p || c.starts_with(&format!("{p}/")),
            "{candidate:?} ({c:?}) allowed by {pattern:?} but outside {p:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let fields = lines(data);
    context_paths(&fields);
    policy_paths(&fields);
});
