//! A hand-wired workflow with `[[secrets]]`, `http_request` and `shell_run`,
//! run on the engine against a real HTTP server on 127.0.0.1: the secret
//! reaches the server and never the outcome or the trace, a rewritten
//! secret file is picked up by the next run, and an inbound `traceparent`
//! becomes the run's outbound one.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_runtime::nodes::http::{Header, HeaderSeg, HttpRequest};
use agentd_runtime::nodes::shell::ShellRun;
use agentd_runtime::secrets::{SecretDef, SecretSource};
use agentd_runtime::{
    BuildInfo, CtxPath, EdgeMeta, Engine, GraphMeta, NodeIdx, NodeMeta, Outcome, RunOptions,
    RunReport, Slot, Source, StartMeta, Trigger, Workflow,
};
use serde_json::{Value, json};

/// Where the `api_token` secret lives; baked like generated code bakes it.
const SECRET_FILE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/agentd-effects-secret");

struct Effects;

static NODES: [NodeMeta; 2] = [
    NodeMeta {
        id: "fetch",
        kind: agentd_runtime::Kind::HttpRequest,
        slot: Slot::Node(0),
        retry: None,
    },
    NodeMeta {
        id: "record",
        kind: agentd_runtime::Kind::ShellRun,
        slot: Slot::Node(1),
        retry: None,
    },
];

static EDGES: [&[EdgeMeta]; 2] = [
    &[EdgeMeta {
        to: NodeIdx(1),
        when: None,
        max_iterations: None,
        index: 0,
    }],
    &[],
];

static GRAPHS: [GraphMeta; 1] = [GraphMeta {
    name: "effects",
    starts: &[StartMeta {
        name: "main",
        source: Source::Manual,
        entry: Some(NodeIdx(0)),
        roots: 1,
    }],
    nodes: &NODES,
    out_edges: &EDGES,
    edge_count: 1,
}];

static INFO: BuildInfo = BuildInfo {
    workflow: "effects",
    compiler_version: "test",
    sources: &[],
    capabilities: &["http", "shell"],
    program_hash: "test",
    signer: None,
    policy_key: None,
};

/// `fetch` (http_request)
static G0_N0: HttpRequest = HttpRequest {
    method: "POST",
    url_from: CtxPath {
        text: "trigger.url",
        root: Slot::Trigger,
        rest: &["url"],
    },
    body_from: Some(CtxPath {
        text: "trigger.payload",
        root: Slot::Trigger,
        rest: &["payload"],
    }),
    headers: &[Header {
        name: "Authorization",
        value: &[HeaderSeg::Lit("Bearer "), HeaderSeg::Secret("api_token")],
    }],
};

/// `record` (shell_run): echoes the response body.
static G0_N1: ShellRun = ShellRun {
    command: "/bin/sh",
    args_from: Some(CtxPath {
        text: "trigger.script",
        root: Slot::Trigger,
        rest: &["script"],
    }),
    timeout_secs: 30,
};

impl Workflow for Effects {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;
    const SECRETS: &'static [SecretDef] = &[SecretDef {
        name: "api_token",
        source: SecretSource::File {
            path: SECRET_FILE,
            trim: true,
        },
    }];

    fn exec(
        &self,
        g: agentd_runtime::GraphId,
        node: NodeIdx,
        cx: &mut agentd_runtime::Cx<'_>,
    ) -> Result<agentd_runtime::Step, agentd_runtime::Error> {
        match (g.0, node.0) {
            (0, 0) => agentd_runtime::nodes::http::http_request(cx, &G0_N0),
            (0, 1) => agentd_runtime::nodes::shell::shell_run(cx, &G0_N1),
            _ => agentd_runtime::nodes::unknown_node(g, node),
        }
    }
}

/// A server answering 200 with a fixed body; returns its URL and the
/// request heads it saw.
fn serve() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let mut r = BufReader::new(stream);
            let (mut head, mut len) = (String::new(), 0_usize);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = std::io::Read::read_exact(&mut r, &mut body);
            if let Ok(mut s) = sink.lock() {
                s.push(head);
            }
            let reply = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\naccepted";
            let _ = r.into_inner().write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

fn input(url: &str) -> Value {
    json!({
        "url": url,
        "payload": {"event": "deploy"},
        "script": ["-c", "echo recorded"],
    })
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn everything_reported(report: &RunReport) -> String {
    format!(
        "{} {} {:?}",
        serde_json::to_string(report.outcome.as_ref().expect("an outcome")).unwrap_or_default(),
        serde_json::to_string(&report.trace).unwrap_or_default(),
        report
    )
}

// The tests share SECRET_FILE, so they run as one.
#[test]
fn secrets_reach_only_the_wire_rotate_and_traceparent_propagates() {
    let (url, seen) = serve();

    // 1. The secret reaches the server; outcome, trace and Debug never hold it.
    std::fs::write(SECRET_FILE, "canary-one-7d2c\n").expect("write the secret");
    let report =
        Engine::new(&Effects, RunOptions::default()).run("main", Trigger::manual(input(&url)));
    match &report.outcome {
        Ok(Outcome::Completed { final_value, .. }) => {
            assert_eq!(final_value["stdout"], "recorded\n", "{final_value}");
        }
        other => panic!("expected completed, got {other:?}"),
    }
    assert_eq!(report.trace.entries[0].output["body"], "accepted");
    assert!(!everything_reported(&report).contains("canary-one"));

    // 2. Rotation: the next run reads the rewritten file.
    std::fs::write(SECRET_FILE, "canary-two-90aa\n").expect("rewrite the secret");
    let mut trigger = Trigger::manual(input(&url));
    trigger.traceparent = agentd_runtime::traceparent::outbound(Some(
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ));
    let report = Engine::new(&Effects, RunOptions::default()).run("main", trigger);
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    assert!(!everything_reported(&report).contains("canary-two"));

    let heads = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(heads.len(), 2);
    assert_eq!(
        header(&heads[0], "authorization"),
        Some("Bearer canary-one-7d2c")
    );
    assert_eq!(
        header(&heads[1], "authorization"),
        Some("Bearer canary-two-90aa")
    );
    assert_eq!(
        header(&heads[0], "traceparent"),
        None,
        "manual runs originate no trace"
    );
    let tp = header(&heads[1], "traceparent").unwrap_or_default();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "the run sends its own span id"
    );
    assert_eq!(parts[3], "01");

    // 3. A secret that cannot be read is a hard error naming it, not its file content.
    std::fs::write(SECRET_FILE, "  \n").expect("blank the secret");
    let report =
        Engine::new(&Effects, RunOptions::default()).run("main", Trigger::manual(input(&url)));
    let error = report
        .outcome
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        error,
        format!(
            "tool `http_request` failed: header `Authorization`: secret `api_token`: `{SECRET_FILE}` is empty"
        )
    );
    let _ = std::fs::remove_file(SECRET_FILE);
}
