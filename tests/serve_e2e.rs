//! End to end: `workflows/order-api.toml` built by the real `agentd`, served on
//! an ephemeral port, and driven over real sockets — routing, `respond`,
//! outcome statuses, body decoding, caps, keep-alive, rate limits,
//! idempotency, `/metrics`, traceparent, hostile clients, and a SIGTERM
//! drain with a request in flight. One build for the whole file.
#![cfg(target_os = "linux")]

// Shared with the runtime's serve tests; not every helper is used here.
#[allow(dead_code)]
#[path = "../agentd-runtime/tests/serve/client.rs"]
mod client;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use client::{agent, closed_by_server, connect, exchange, parts, read_response};
use serde_json::{Value, json};
use support::{Scratch, Served, agentd, agentd_build, scratch, workspace};

/// `agentd build workflows/order-api.toml`, once per test binary.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = scratch("bin").keep().join("order-api");
        agentd_build(&workspace(), "workflows/order-api.toml", &out, &[]);
        out
    })
}

/// A served `order-api` on 127.0.0.1:0 with its own state directory; the
/// binary is killed, then the directory removed, on drop.
struct Server {
    served: Served,
    _state: Scratch,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let state = scratch(name);
        let mut args = vec!["--state-dir", state.to_str().expect("UTF-8 scratch path")];
        args.extend_from_slice(extra);
        Server {
            served: Served::start(binary(), Path::new("."), &args, &[]),
            _state: state,
        }
    }
}

impl std::ops::Deref for Server {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Served {
        &mut self.served
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const JSON: &str = "application/json";

#[test]
fn routes_respond_statuses_decoding_and_fixed_endpoints() {
    let s = Server::start("routes", &[]);
    let a = agent();

    let (status, _, body, _) = parts(a.get(&s.url("/healthz")).call());
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"status": "ok", "workflow": "order_api"})
    );

    // respond sets status, type and body; JSON, urlencoded and multipart all
    // land in trigger.* with the anonymous principal.
    let (status, ct, body, _) = parts(
        a.post(&s.url("/echo"))
            .header("content-type", JSON)
            .send(r#"{"name":"Ada"}"#),
    );
    assert_eq!((status, ct.as_str()), (200, JSON));
    assert_eq!(
        json_of(&body),
        json!({"hello": "Ada", "caller": "anonymous"})
    );
    let (_, _, body, _) = parts(
        a.post(&s.url("/echo"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send("name=Grace+H"),
    );
    assert_eq!(json_of(&body)["hello"], "Grace H");
    let multipart =
        "--zz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nLin\r\n--zz--\r\n";
    let (_, _, body, _) = parts(
        a.post(&s.url("/echo"))
            .header("content-type", "multipart/form-data; boundary=zz")
            .send(multipart),
    );
    assert_eq!(json_of(&body)["hello"], "Lin");
    let (status, _, body, _) = parts(
        a.post(&s.url("/echo"))
            .header("content-type", JSON)
            .send("{broken"),
    );
    assert_eq!(status, 400, "{body}");

    // A condition routes to `fail`: 422 with the outcome.
    let (status, _, body, _) = parts(
        a.post(&s.url("/orders"))
            .header("content-type", JSON)
            .send(r#"{"order_id":"B-1"}"#),
    );
    assert_eq!(status, 422);
    assert_eq!(
        json_of(&body),
        json!({"status": "failed", "reason": "an order needs a quantity", "last_node": "rejected"})
    );

    let (status, _, body, _) = parts(a.get(&s.url("/orders")).call());
    assert_eq!(status, 405);
    assert_eq!(json_of(&body)["error"], "Method Not Allowed");
    let (status, _, _, _) = parts(a.get(&s.url("/orders/1")).call());
    assert_eq!(status, 404);
}

#[test]
fn idempotency_rate_limits_keep_alive_traceparent_and_metrics() {
    let s = Server::start("limits", &["--log-format", "json", "--log-level", "info"]);
    let a = agent();
    let order = r#"{"order_id":"A-1","quantity":2}"#;
    let post = || {
        parts(
            a.post(&s.url("/orders"))
                .header("content-type", JSON)
                .send(order),
        )
    };
    let (status, _, first, headers) = post();
    assert_eq!(status, 201);
    assert_eq!(
        json_of(&first),
        json!({"order_id": "A-1", "quantity": 2, "status": "accepted"})
    );
    assert!(headers.get("x-agentd-idempotent-replay").is_none());
    let (status, _, again, headers) = post();
    assert_eq!((status, again.as_str()), (201, first.as_str()));
    assert_eq!(
        headers
            .get("x-agentd-idempotent-replay")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );

    // Two tokens, then 429 with Retry-After.
    for _ in 0..2 {
        let (status, ct, body, _) = parts(a.get(&s.url("/status")).call());
        assert_eq!(
            (status, ct.as_str(), body.as_str()),
            (200, "text/plain", "ok\n")
        );
    }
    let (status, _, body, headers) = parts(a.get(&s.url("/status")).call());
    assert_eq!(status, 429, "{body}");
    assert!(headers.get("retry-after").is_some());

    // Several requests on one connection.
    let mut conn = connect(s.addr);
    for _ in 0..3 {
        let req = "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"name\":\"k\"}";
        assert!(conn.write_all(req.as_bytes()).is_ok());
        let reply = read_response(&mut conn).expect("a reply on the kept-alive connection");
        assert_eq!(reply.status, 200);
    }

    let inbound = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (_, _, _, headers) = parts(
        a.post(&s.url("/echo"))
            .header("traceparent", inbound)
            .send_empty(),
    );
    let echoed = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        echoed.starts_with("00-0af7651916cd43dd8448eb211c80319c-")
            && !echoed.contains("b7ad6b7169203331"),
        "{echoed}"
    );
    // The run's log lines sit inside an `http.request` span that names the
    // caller's trace (docs/operations.md "Logging and audit").
    let find_traced = || {
        s.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l["spans"][0]["name"] == "http.request"
                    && l["spans"][0]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
            })
    };
    // stderr is drained by a thread: give the line a moment to arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    let traced = loop {
        if let Some(line) = find_traced() {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no line in an http.request span:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let span = &traced["spans"][0];
    assert_eq!(
        (span["method"].as_str(), span["path"].as_str()),
        (Some("POST"), Some("/echo"))
    );
    assert_eq!(span["parent_id"], "b7ad6b7169203331");
    assert_eq!(span["trace_flags"], "01");
    assert_eq!(span["sampled"], true);
    assert_eq!(traced["spans"][1]["name"], "workflow.run");

    let (_, ct, metrics, _) = parts(a.get(&s.url("/metrics")).call());
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    for needle in [
        "agentd_workflow_completions_total{workflow=\"order_api\"}",
        "agentd_http_requests_total{workflow=\"order_api\",route=\"POST /orders\",status=\"201\"} 2",
        "agentd_http_requests_total{workflow=\"order_api\",route=\"GET /status\",status=\"429\"} 1",
        "agentd_http_request_duration_seconds_bucket{workflow=\"order_api\",route=\"POST /echo\",le=\"+Inf\"} 4",
        "agentd_build_info{workflow=\"order_api\",",
    ] {
        assert!(metrics.contains(needle), "missing `{needle}` in\n{metrics}");
    }
}

#[test]
fn hostile_clients_get_precise_statuses_and_the_server_lives_on() {
    let s = Server::start("hostile", &["--read-timeout-secs", "2"]);

    assert_eq!(
        exchange(s.addr, b"NOT A REQUEST\r\n\r\n").map(|r| r.status),
        Some(400)
    );
    let big = format!("GET /healthz HTTP/1.1\r\nx: {}\r\n\r\n", "y".repeat(20_000));
    assert_eq!(
        exchange(s.addr, big.as_bytes()).map(|r| r.status),
        Some(431)
    );
    let declared = b"POST /echo HTTP/1.1\r\ncontent-length: 5000000\r\n\r\n";
    assert_eq!(exchange(s.addr, declared).map(|r| r.status), Some(413));

    let mut conn = connect(s.addr);
    assert!(
        conn.write_all(b"POST /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n")
            .is_ok()
    );
    let chunk = vec![b'x'; 256 * 1024];
    for _ in 0..5 {
        let size = format!("{:x}\r\n", chunk.len());
        if conn.write_all(size.as_bytes()).is_err()
            || conn.write_all(&chunk).is_err()
            || conn.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    assert_eq!(read_response(&mut conn).map(|r| r.status), Some(413));

    // Pipelined garbage after a good request.
    let mut conn = connect(s.addr);
    assert!(
        conn.write_all(b"GET /healthz HTTP/1.1\r\n\r\n\x01\x02\x03 nonsense\r\n\r\n")
            .is_ok()
    );
    assert_eq!(read_response(&mut conn).map(|r| r.status), Some(200));
    if let Some(second) = read_response(&mut conn) {
        assert_eq!(second.status, 400);
    }

    // Slowloris: headers a byte at a time are cut off by the read timeout
    // while another client is served.
    let mut slow = connect(s.addr);
    let started = Instant::now();
    for b in b"GET /healthz HTTP/1.1\r\nx-drip: " {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _, _, _) = parts(agent().get(&s.url("/healthz")).call());
    assert_eq!(status, 200, "served while the slow client dribbles");
    let mut dripping = true;
    while dripping && started.elapsed() < Duration::from_secs(30) {
        dripping = slow.write_all(b"a").is_ok();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !dripping || closed_by_server(&mut slow),
        "the slow client was never cut off"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let (status, _, _, _) = parts(agent().get(&s.url("/healthz")).call());
    assert_eq!(status, 200, "alive after all of it");
}

#[test]
fn sigterm_drains_the_request_in_flight_and_exits_zero() {
    let mut s = Server::start("drain", &[]);
    let url = s.url("/reports");
    // The report job runs for two seconds.
    let in_flight = std::thread::spawn(move || parts(agent().post(&url).send_empty()));
    std::thread::sleep(Duration::from_millis(300));
    s.signal(libc::SIGTERM);
    let (status, _, body, _) = in_flight.join().expect("the client thread");
    assert_eq!((status, body.as_str()), (202, r#"{"report":"done"}"#));
    assert_eq!(s.wait(Duration::from_secs(30)), Some(0), "{}", s.stderr());
    let log = s.stderr();
    assert!(log.contains("shutdown signal received; draining"), "{log}");
    assert!(log.contains("drain complete"), "{log}");
}

#[test]
fn a_drain_that_outlives_its_timeout_exits_5() {
    let mut s = Server::start("drain-timeout", &["--drain-timeout-secs", "1"]);
    let url = s.url("/reports");
    // The report job runs for two seconds; the drain allows one.
    let in_flight =
        std::thread::spawn(move || agent().post(&url).send_empty().map(|r| r.status().as_u16()));
    std::thread::sleep(Duration::from_millis(300));
    s.signal(libc::SIGTERM);
    assert_eq!(s.wait(Duration::from_secs(30)), Some(5), "{}", s.stderr());
    let log = s.stderr();
    assert!(log.contains("drain timed out"), "{log}");
    // The process exited under the request: no reply reached the client.
    let reply = in_flight.join().expect("the client thread");
    assert!(reply.is_err(), "a reply after a forced exit: {reply:?}");
}

#[test]
fn flags_and_start_checks_exit_with_the_dialect_codes() {
    let run = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs")
    };
    let out = run(&["--mode", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mode"));
    let out = run(&["--bind", "localhost:80"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid bind address"));
    // An idempotent route without --state-dir refuses to serve.
    let out = run(&["--bind", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no --state-dir"));
    // --mode once runs a route's start like any one-shot run.
    let out = run(&[
        "--mode",
        "once",
        "--start",
        "echo",
        "--input",
        r#"{"name":"cli"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let outcome = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        outcome["http_response"]["body"],
        r#"{"hello":"cli","caller":"{{principal.kind}}"}"#
    );
}

#[test]
fn input_schema_rejects_a_nonconforming_body_with_400_naming_its_pointer() {
    let s = Server::start("schema", &["--log-format", "json", "--log-level", "info"]);
    let a = agent();
    let post = |ct: &str, body: &str| {
        parts(
            a.post(&s.url("/orders"))
                .header("content-type", ct)
                .send(body),
        )
    };
    // A conforming order runs.
    let (status, _, body, _) = post(JSON, r#"{"order_id":"S-1","quantity":3}"#);
    assert_eq!(status, 201, "{body}");
    // A wrong type deep in the body: 400, the JSON pointer, the reason, and the
    // run never started (no idempotency claim, no outcome).
    let (status, ct, body, _) = post(JSON, r#"{"order_id":"S-2","quantity":"three"}"#);
    assert_eq!((status, ct.as_str()), (400, JSON), "{body}");
    let reply = json_of(&body);
    assert_eq!(
        reply["error"],
        "request body does not match the route's input_schema"
    );
    assert_eq!(reply["pointer"], "/quantity");
    let reason = reply["reason"].as_str().expect("a reason");
    assert!(reason.contains("integer"), "{reason}");
    assert!(
        !reason.contains("three"),
        "the reason echoes request data: {reason}"
    );
    // A missing required key points at the whole body.
    let (status, _, body, _) = post(JSON, r#"{"quantity":1}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(json_of(&body)["pointer"], "");
    assert!(body.contains("order_id"), "{body}");
    // A form decodes to strings, so `quantity` is checked as the string it is.
    let (status, _, body, _) = post(
        "application/x-www-form-urlencoded",
        "order_id=S-3&quantity=2",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(json_of(&body)["pointer"], "/quantity");
    // An empty body is `null`, not an object.
    let (status, _, body, _) = parts(a.post(&s.url("/orders")).send_empty());
    assert_eq!(status, 400, "{body}");
    // The same request again after a rejection is not an idempotent replay.
    let (status, _, body, headers) = post(JSON, r#"{"order_id":"S-2","quantity":2}"#);
    assert_eq!(status, 201, "{body}");
    assert!(headers.get("x-agentd-idempotent-replay").is_none());
    // Each rejection is audited with the route and the pointer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.stderr().contains("http.input_rejected") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = s.stderr();
    let audited = log
        .lines()
        .find(|l| l.contains("http.input_rejected"))
        .unwrap_or_else(|| panic!("no http.input_rejected event:\n{log}"));
    assert!(
        audited.contains("/quantity") && audited.contains("/orders"),
        "{audited}"
    );
}

/// `agentd build` of `text` (written as `dir/w.toml`, with `files` beside it).
fn build_in(dir: &str, text: &str, files: &[(&str, &str)]) -> std::process::Output {
    let dir = scratch(dir);
    std::fs::write(dir.join("w.toml"), text).expect("write the workflow");
    for (name, content) in files {
        std::fs::write(dir.join(name), content).expect("write a file");
    }
    agentd(&dir)
        .args(["build", "w.toml", "-o", "w-bin"])
        .output()
        .expect("agentd runs")
}

fn routed(route_extra: &str) -> String {
    format!(
        "name = \"r\"\n[policy]\n[[start_nodes]]\nname = \"s\"\nsource = \"http\"\nentry_node = \"a\"\n\
         [[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"s\"\n{route_extra}\n\
         [[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
    )
}

#[test]
fn an_unusable_input_schema_fails_the_build_with_a_span() {
    for (name, schema, why) in [
        ("schema-missing", None, "not a readable file"),
        ("schema-not-json", Some("{"), "not valid JSON"),
        (
            "schema-invalid",
            Some(r#"{"type":"objekt"}"#),
            "not a valid JSON Schema",
        ),
    ] {
        let files: Vec<(&str, &str)> = schema.map(|s| ("s.json", s)).into_iter().collect();
        let out = build_in(name, &routed("input_schema = \"s.json\""), &files);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("error[input_schema_invalid]") && stderr.contains(why),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("w.toml:11:16"), "{name}: no span: {stderr}");
    }
}

#[test]
fn unusable_rate_limits_and_reserved_routes_fail_the_build_not_abort_it() {
    // NaN used to abort `agentd build` (exit 134) in code generation.
    for (name, extra, span) in [
        (
            "rl-nan",
            "rate_limit = { capacity = 1, per_second = nan }",
            "w.toml:11:43",
        ),
        (
            "rl-inf",
            "rate_limit = { capacity = 1, per_second = inf }",
            "w.toml:11:43",
        ),
        (
            "rl-zero",
            "rate_limit = { capacity = 1, per_second = 0.0 }",
            "w.toml:11:43",
        ),
        (
            "rl-cap0",
            "rate_limit = { capacity = 0, per_second = 1.0 }",
            "w.toml:11:27",
        ),
    ] {
        let out = build_in(name, &routed(extra), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("error[invalid_rate_limit]"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(span), "{name}: {stderr}");
    }
    let reserved = routed("").replace("\"POST\"\npath = \"/x\"", "\"GET\"\npath = \"/metrics\"");
    let out = build_in("reserved", &reserved, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[reserved_route]"), "{stderr}");
}
