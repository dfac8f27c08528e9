//! End to end: the edges of serve mode, against a binary the real `agentd`
//! builds from the workflow below — clients that half-close after their
//! request or reset mid-run, unauthenticated large bodies (refused before a
//! byte is read, or bounded by the pre-auth byte budget for HMAC) and the
//! memory they leave behind, wide JSON bodies decoded off the reactor, and
//! transfer/content codings the server does not undo; which routes run inline
//! on the reactor and which on the worker pool (the compiler decides), and a
//! saturated pool answering 503. One build per file.
//! Reactor latency under wide bodies is measured by `bench/wide-json.sh`, not
//! timed here.
#![cfg(target_os = "linux")]

#[allow(dead_code)]
#[path = "../agentd-runtime/tests/serve/client.rs"]
mod client;
mod support;

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use client::{agent, connect, exchange, parts, read_response};
use support::{Served, scratch};

const WORKFLOW: &str = r#"
name = "edges"
description = "Serve-mode edges: half-closed clients, pre-auth bodies, wide JSON, codings."

[policy.shell]
commands = ["/usr/bin/sleep", "/bin/sleep"]

[auth.bearer.ops]
tokens_env = "EDGES_TOKENS"

[auth.hmac.hooks]
secret_env = "EDGES_HOOK_SECRET"

[[start_nodes]]
name = "fast"
source = "http"
entry_node = "fast_reply"

[[start_nodes]]
name = "echo"
source = "http"
entry_node = "echo_reply"

[[start_nodes]]
name = "echo_pooled"
source = "http"
entry_node = "echo_pooled_reply"

[[start_nodes]]
name = "slow"
source = "http"
entry_node = "nap_argv"

[[http_routes]]
method = "POST"
path = "/fast"
start_node = "fast"

[[http_routes]]
method = "POST"
path = "/slow"
start_node = "slow"

[[http_routes]]
method = "POST"
path = "/echo"
start_node = "echo"

[[http_routes]]
method = "POST"
path = "/echo_pooled"
start_node = "echo_pooled"

[[http_routes]]
method = "POST"
path = "/bearer"
start_node = "fast"
auth = "bearer:ops"

[[http_routes]]
method = "POST"
path = "/hooks"
start_node = "fast"
auth = "hmac:hooks"

[[nodes]]
id = "fast_reply"
type = "respond"
content_type = "application/json"
body_template = '{"ok":true,"caller":"{{principal.kind}}"}'

[[nodes]]
id = "echo_reply"
type = "respond"
content_type = "application/json"
body_template = '{"said":{{msg|json}},"n":{{n|json}},"missing":{{nothing|json}}}'

# /echo's twin: the same reply, but a `retry` table makes the compiler send
# its runs to the worker pool instead of running them on the reactor.
[[nodes]]
id = "echo_pooled_reply"
type = "respond"
content_type = "application/json"
body_template = '{"said":{{msg|json}},"n":{{n|json}},"missing":{{nothing|json}}}'
retry = { max_attempts = 1 }

[[nodes]]
id = "nap_argv"
type = "template_render"
template = '["3"]'

[[nodes]]
id = "nap_args"
type = "parse_json"
input_from = "nap_argv.rendered"

[[nodes]]
id = "nap"
type = "shell_run"
command = "/bin/sleep"
args_from = "nap_args.parsed"
timeout_secs = 10

[[nodes]]
id = "nap_failed"
type = "fail"
reason = "the nap failed"

[[nodes]]
id = "slow_reply"
type = "respond"
status = 202
content_type = "application/json"
body_template = '{"slow":true}'

[[edges]]
from = "nap_argv"
to = "nap_args"

[[edges]]
from = "nap_args"
to = "nap"

[[edges]]
from = "nap"
to = "slow_reply"

[[edges]]
from = "nap"
to = "nap_failed"
when = "error"
"#;

/// The workflow above, built once per test binary.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = scratch("bin").keep();
        std::fs::write(dir.join("edges.toml"), WORKFLOW).expect("write the workflow");
        let out = dir.join("edges");
        support::agentd_build(&dir, "edges.toml", &out, &[]);
        out
    })
}

/// A served `edges` on 127.0.0.1:0 with JSON logs and its secrets set.
fn serve(extra: &[&str]) -> Served {
    let mut args = vec!["--log-format", "json"];
    args.extend_from_slice(extra);
    Served::start(
        binary(),
        Path::new("."),
        &args,
        &[
            ("EDGES_TOKENS", "ops-token"),
            ("EDGES_HOOK_SECRET", "hook-secret"),
        ],
    )
}

fn post(path: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Send `request`, shut down the write side, read the one reply.
fn half_closed(addr: SocketAddr, request: &[u8]) -> Option<client::Raw> {
    let mut s = connect(addr);
    s.write_all(request).ok()?;
    s.shutdown(Shutdown::Write).ok()?;
    read_response(&mut s)
}

#[test]
fn half_closed_clients_are_answered_on_inline_and_pooled_routes() {
    let s = serve(&[]);
    // Fast inline route, one half-closed client after another.
    for i in 0..200 {
        let reply = half_closed(s.addr, &post("/fast", "", "{}"))
            .unwrap_or_else(|| panic!("half-closed request {i} got no reply"));
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert_eq!(reply.body, r#"{"ok":true,"caller":"anonymous"}"#);
    }
    // Slow pooled route (a 3 s command), all at once.
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let addr = s.addr;
            std::thread::spawn(move || half_closed(addr, &post("/slow", "", "{}")))
        })
        .collect();
    for (i, t) in slow.into_iter().enumerate() {
        let reply = t
            .join()
            .expect("client thread")
            .unwrap_or_else(|| panic!("half-closed slow request {i} got no reply"));
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (202, r#"{"slow":true}"#)
        );
    }
    assert_eq!(
        s.metric(
            "agentd_http_requests_total{workflow=\"edges\",route=\"POST /slow\",status=\"202\"}"
        ),
        8.0
    );
    assert_eq!(
        s.metric(
            "agentd_http_requests_total{workflow=\"edges\",route=\"POST /fast\",status=\"200\"}"
        ),
        200.0
    );
}

#[test]
fn a_request_cut_off_by_the_drain_timeout_is_audited_as_dropped() {
    let mut s = serve(&["--log-level", "info", "--drain-timeout-secs", "1"]);
    let mut c = connect(s.addr);
    c.write_all(&post("/slow", "", "{}")).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    let pid = libc::pid_t::try_from(s.child.id()).expect("pid fits");
    // SAFETY: kill(2) with a pid this test spawned and still owns.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM delivered");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Ok(Some(status)) = s.child.try_wait() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "the server never exited");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(5), "a drain that times out exits 5");
    // The stderr reader may still be copying the last lines.
    std::thread::sleep(Duration::from_millis(300));
    let log = s.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("http.request_dropped") && l.contains("/slow")),
        "the cut-off request is audited:\n{log}"
    );
    drop(c);
}

#[test]
fn a_run_whose_client_reset_the_connection_is_still_recorded() {
    let s = serve(&["--log-level", "info"]);
    let mut c = connect(s.addr);
    c.write_all(&post("/slow", "", "{}")).expect("send");
    // Let the request reach the server, then reset (SO_LINGER 0 + close).
    std::thread::sleep(Duration::from_millis(200));
    let sock = socket2_linger_zero(c);
    drop(sock);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("agentd_workflow_completions_total") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the orphaned run never completed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("workflow.completed") && l.contains("slow_reply")),
        "the orphaned run is in the audit log:\n{log}"
    );
    // Its request is counted too, and the run pool is free again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answered = s.metric(
            "agentd_http_requests_total{workflow=\"edges\",route=\"POST /slow\",status=\"202\"}",
        );
        if answered >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the request was never counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, _, _) = parts(agent().post(&s.url("/slow")).send("{}"));
    assert_eq!(status, 202);
}

/// Close `s` with a reset (SO_LINGER with a zero timeout) instead of a FIN.
fn socket2_linger_zero(s: TcpStream) -> TcpStream {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a descriptor `s` owns, with a pointer to a
    // live `linger` of the size passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).expect("fits"),
        )
    };
    assert_eq!(rc, 0, "SO_LINGER set");
    s
}

/// Open `n` connections that each send a `path` request declaring a body of
/// `size` bytes and then all of it but the last byte; returns the sockets
/// (still open) and how many got a reply before the body was complete.
fn hold_large_bodies(
    addr: SocketAddr,
    path: &'static str,
    n: usize,
    size: usize,
) -> Vec<TcpStream> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                     X-Agent-Signature: sha256=00\r\nContent-Length: {size}\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes());
                let body = vec![b' '; size - 1];
                // A refused request is closed before its body is read: the
                // write then fails, which is the point.
                let _ = s.write_all(&body);
                s
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect()
}

/// Status of the reply waiting on each socket (0 for none), as counts.
fn statuses(socks: Vec<TcpStream>) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for mut s in socks {
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let status = read_response(&mut s).map_or(0, |r| r.status);
        *counts.entry(status).or_insert(0) += 1;
    }
    counts
}

fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn unauthenticated_bodies_are_refused_unread_or_bounded_and_memory_is_returned() {
    const MIB: usize = 1024 * 1024;
    let s = serve(&[
        "--max-connections",
        "2000",
        "--max-preauth-bytes",
        "16777216",
        "--read-timeout-secs",
        "20",
    ]);
    settle();
    let idle = s.rss_mib();

    // Bearer: refused from the headers alone, 401, before any body byte.
    let socks = hold_large_bodies(s.addr, "/bearer", 300, MIB);
    settle();
    let held = s.rss_mib();
    let counts = statuses(socks);
    assert_eq!(counts.get(&401), Some(&300), "{counts:?}");
    assert!(
        held - idle < 32.0,
        "300 unauthenticated 1 MiB bodies on a bearer route held {held:.1} MiB (idle {idle:.1})"
    );

    // HMAC: bodies are read before the signature can be checked, but only
    // within the 16 MiB budget; the rest get 503 without being read.
    let socks = hold_large_bodies(s.addr, "/hooks", 300, MIB - 100);
    settle();
    let held = s.rss_mib();
    let counts = statuses(socks);
    assert!(
        held - idle < 16.0 + 32.0,
        "300 unauthenticated HMAC bodies held {held:.1} MiB against a 16 MiB budget (idle {idle:.1})"
    );
    let shed = s.metric("agentd_http_shed_total{workflow=\"edges\",reason=\"preauth_bytes\"}");
    assert!(
        shed >= 280.0,
        "only {shed} HMAC requests shed; statuses {counts:?}"
    );
    assert!(counts.get(&503).copied().unwrap_or(0) >= 280, "{counts:?}");
    settle();
    let after = s.rss_mib();
    assert!(
        after - idle < 16.0,
        "memory not returned after the HMAC load: {after:.1} MiB (idle {idle:.1})"
    );

    // Anonymous bodies are read in full (they are the request), but their
    // memory goes back to the system once the requests end.
    let socks = hold_large_bodies(s.addr, "/fast", 100, MIB - 100);
    settle();
    let held = s.rss_mib();
    drop(socks);
    settle();
    let after = s.rss_mib();
    assert!(
        held - idle > 50.0,
        "the load did not hold bodies ({held:.1} MiB)"
    );
    assert!(
        after - idle < 16.0,
        "memory not returned after 100 anonymous 1 MiB bodies: {after:.1} MiB (held {held:.1}, idle {idle:.1})"
    );

    // A signed request still gets through after all that.
    let body = r#"{"event":"ping"}"#;
    let sig = hmac_sha256_hex(b"hook-secret", body.as_bytes());
    let reply = exchange(
        s.addr,
        &post(
            "/hooks",
            &format!("X-Agent-Signature: sha256={sig}\r\n"),
            body,
        ),
    )
    .expect("a reply");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, r#"{"ok":true,"caller":"hmac"}"#);
}

fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), msg);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn wide_json_bodies_are_decoded_and_run_off_the_reactor_within_a_value_bound() {
    let s = serve(&[]);
    let offloaded = "agentd_http_bodies_offloaded_total{workflow=\"edges\"}";
    let (status, _, _, _) = parts(agent().post(&s.url("/fast")).send(r#"{"a":1}"#));
    assert_eq!(status, 200);
    assert_eq!(
        s.metric(offloaded),
        0.0,
        "a small body stays on the reactor"
    );

    let mut wide = String::from("{");
    for i in 0..60_000 {
        if i > 0 {
            wide.push(',');
        }
        wide.push_str(&format!("\"k{i}\":{i}"));
    }
    wide.push('}');
    let (status, _, body, _) = parts(
        agent()
            .post(&s.url("/fast"))
            .header("content-type", "application/json")
            .send(&wide),
    );
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"ok":true,"caller":"anonymous"}"#)
    );
    assert_eq!(
        s.metric(offloaded),
        1.0,
        "the wide body went to the blocking pool"
    );

    // Past the value bound: refused before it is decoded.
    let zeros = format!("[0{}]", ",0".repeat(120_000));
    let (status, _, body, _) = parts(
        agent()
            .post(&s.url("/fast"))
            .header("content-type", "application/json")
            .send(&zeros),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("more than 100000 values"), "{body}");
}

#[test]
fn the_json_filter_keeps_a_json_reply_valid_whatever_the_request_holds() {
    let s = serve(&[]);
    let hostile = r#"{"msg":"say \"hi\", \\ and </x>\n","n":{"b":[1,2]}}"#;
    let (status, ct, body, _) = parts(
        agent()
            .post(&s.url("/echo"))
            .header("content-type", "application/json")
            .send(hostile),
    );
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let reply: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {body}"));
    assert_eq!(
        reply,
        serde_json::json!({"said": "say \"hi\", \\ and </x>\n", "n": {"b": [1, 2]}, "missing": null})
    );
}

/// `agentd check` on `workflow` (written to a scratch dir); (exit code, stderr).
fn check(name: &str, workflow: &str, flags: &[&str]) -> (i32, String) {
    let dir = scratch(name);
    std::fs::write(dir.join("w.toml"), workflow).expect("write the workflow");
    let out = support::agentd(&dir)
        .arg("check")
        .args(flags)
        .arg("w.toml")
        .output()
        .expect("agentd runs");
    (support::exit_code(&out), support::text(&out.stderr))
}

#[test]
fn check_warns_on_silent_error_branches_and_raw_json_placeholders() {
    const SILENT: &str = r#"
name = "silent"

[policy.shell]
commands = ["/bin/false"]

[[start_nodes]]
name = "hook"
source = "http"
entry_node = "run"

[[http_routes]]
method = "POST"
path = "/hook"
start_node = "hook"

[[nodes]]
id = "run"
type = "shell_run"
command = "/bin/false"

[[nodes]]
id = "reply"
type = "respond"
body_template = '{"got":"{{msg}}","who":"{{principal.kind}}"}'

[[edges]]
from = "run"
to = "reply"
"#;
    let (code, stderr) = check("silent", SILENT, &[]);
    assert_eq!(code, 0, "warnings do not fail a check:\n{stderr}");
    assert!(
        stderr.contains("warning[error_branch_unhandled]: node `run` (`shell_run`)"),
        "{stderr}"
    );
    let message = stderr
        .lines()
        .find(|l| l.contains("warning[respond_json_unescaped]: node `reply`"))
        .unwrap_or_else(|| panic!("no respond_json_unescaped warning:\n{stderr}"));
    assert!(message.contains("(`{{msg}}`)"), "{message}");
    assert!(
        !message.contains("principal.kind"),
        "the server-set principal.kind is not reported: {message}"
    );
    assert!(
        stderr.contains("`{{msg|json}}`"),
        "the help names the fix:\n{stderr}"
    );
    let (code, _) = check("silent-deny", SILENT, &["--deny-warnings"]);
    assert_eq!(code, 1);

    // Fixed as the help says: clean.
    let fixed = SILENT
        .replace(r#""{{msg}}""#, "{{msg|json}}")
        .replace(
            "[[edges]]\nfrom = \"run\"\nto = \"reply\"\n",
            "[[edges]]\nfrom = \"run\"\nto = \"reply\"\n\n[[nodes]]\nid = \"failed\"\ntype = \"fail\"\nreason = \"x\"\n\n[[edges]]\nfrom = \"run\"\nto = \"failed\"\nwhen = \"error\"\n",
        );
    let (code, stderr) = check("silent-fixed", &fixed, &["--deny-warnings"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn unsupported_transfer_and_content_codings_are_refused() {
    let s = serve(&[]);
    let chunked = |te: &str| {
        format!(
            "POST /fast HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: {te}\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
    };
    let reply = exchange(s.addr, chunked("gzip, chunked").as_bytes()).expect("a reply");
    assert_eq!(reply.status, 501, "{}", reply.body);
    assert!(
        reply.body.contains("unsupported transfer coding `gzip`"),
        "{}",
        reply.body
    );
    assert_eq!(reply.header("connection"), Some("close"));

    let reply =
        exchange(s.addr, &post("/fast", "Content-Encoding: gzip\r\n", "{}")).expect("a reply");
    assert_eq!(reply.status, 415, "{}", reply.body);
    assert_eq!(reply.header("accept-encoding"), Some("identity"));

    // What the server does understand still works.
    let reply = exchange(s.addr, chunked("chunked").as_bytes()).expect("a reply");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = exchange(
        s.addr,
        &post("/fast", "Content-Encoding: identity\r\n", "{}"),
    )
    .expect("a reply");
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// (status, Content-Type, body) of one raw request.
fn answer(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let reply = exchange(addr, request).unwrap_or_else(|| panic!("no reply"));
    let ct = reply.header("content-type").unwrap_or_default().to_owned();
    (reply.status, ct, reply.body)
}

#[test]
fn a_route_sent_to_the_pool_answers_exactly_as_its_inline_twin() {
    let s = serve(&[]);
    let wide = format!(r#"{{"msg":"wide","pad":"{}"}}"#, "x".repeat(70 * 1024));
    let cases: Vec<(&str, String, String)> = vec![
        (
            "a JSON body",
            "Content-Type: application/json\r\n".into(),
            r#"{"msg":"say \"hi\"","n":[1,2]}"#.into(),
        ),
        (
            "malformed JSON",
            "Content-Type: application/json\r\n".into(),
            "{not json".into(),
        ),
        (
            "a form",
            "Content-Type: application/x-www-form-urlencoded\r\n".into(),
            "msg=hi&n=2".into(),
        ),
        (
            "plain text",
            "Content-Type: text/plain\r\n".into(),
            "hello".into(),
        ),
        ("no body", String::new(), String::new()),
        (
            "a body over 64 KiB",
            "Content-Type: application/json\r\n".into(),
            wide,
        ),
        (
            "a coded body",
            "Content-Type: application/json\r\nContent-Encoding: gzip\r\n".into(),
            "{}".into(),
        ),
    ];
    let mut statuses = Vec::new();
    for (what, headers, body) in &cases {
        let request = |path: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        let inline = answer(s.addr, &request("/echo"));
        let pooled = answer(s.addr, &request("/echo_pooled"));
        assert_eq!(inline, pooled, "{what}: inline and pooled replies differ");
        statuses.push(inline.0);
    }
    // (Plain text is refused by this server: a route's input is an object.)
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(statuses, [200, 400, 200, 400, 200, 200, 415], "{names:?}");
    // Over the body cap: refused from the declared length alike.
    let over = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n").into_bytes()
    };
    let inline = answer(s.addr, &over("/echo"));
    assert_eq!(inline.0, 413, "{inline:?}");
    assert_eq!(inline, answer(s.addr, &over("/echo_pooled")));
}

#[test]
fn effect_routes_take_a_pool_worker_and_a_full_pool_answers_503_while_inline_routes_run() {
    let s = serve(&["--max-runs", "1"]);
    // The only worker runs a 3 s command. Probing before its `sleep` child
    // exists could take the worker first and turn the slow request away.
    let addr = s.addr;
    let slow = std::thread::spawn(move || exchange(addr, &post("/slow", "", "{}")));
    while !s.has_children() {
        assert!(
            !slow.is_finished(),
            "/slow answered without starting its command"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let busy = exchange(s.addr, &post("/echo_pooled", "", r#"{"msg":"m"}"#))
        .unwrap_or_else(|| panic!("no reply from /echo_pooled"));
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert_eq!(
        busy.body,
        r#"{"error":"server busy: every run worker is in use"}"#
    );
    // A pure route needs no worker: answered while the pool is full.
    let fast = exchange(s.addr, &post("/echo", "", r#"{"msg":"m"}"#))
        .unwrap_or_else(|| panic!("no reply from /echo"));
    assert_eq!(
        (fast.status, fast.body.as_str()),
        (200, r#"{"said":"m","n":null,"missing":null}"#)
    );
    assert!(s.metric("agentd_http_shed_total{workflow=\"edges\",reason=\"runs\"}") >= 1.0);
    let slow = slow
        .join()
        .expect("client thread")
        .unwrap_or_else(|| panic!("no reply from /slow"));
    assert_eq!((slow.status, slow.body.as_str()), (202, r#"{"slow":true}"#));
    // The worker is free again.
    let again = exchange(s.addr, &post("/echo_pooled", "", r#"{"msg":"m"}"#))
        .unwrap_or_else(|| panic!("no reply from /echo_pooled"));
    assert_eq!(again.status, 200, "{}", again.body);
}
