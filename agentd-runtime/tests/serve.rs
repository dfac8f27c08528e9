//! Serve mode end to end on 127.0.0.1 with real sockets: a hand-wired
//! workflow (`serve/api.rs`) served by `agentd_runtime::serve`, driven by
//! ureq and by raw sockets for hostile input.

#[path = "serve/api.rs"]
mod api;
#[path = "serve/client.rs"]
mod client;

#[allow(dead_code)]
#[path = "../../tests/support/scratch.rs"]
mod support_scratch;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agentd_runtime::serde_json::{Value, json};
use agentd_runtime::serve::{Running, ServeConfig, ServeError, start};

use api::{Api, Ticker};
use client::{agent, closed_by_server, connect, exchange, parts, read_response};

/// Port 0, no signal handlers, and a fresh state dir (the `/orders` route
/// is idempotent, which needs one).
fn config() -> ServeConfig {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ServeConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        handle_signals: false,
        ..ServeConfig::default()
    }
    .state_dir(scratch(&format!("state-{n}")))
}

/// A fresh directory under `target/tmp` (the shared `Scratch` of the workspace's
/// test support), kept after the test: the served configuration holds its path
/// for the rest of the process. The next run empties it.
fn scratch(name: &str) -> PathBuf {
    support_scratch::scratch(name).keep()
}

struct Server {
    running: Option<Running>,
    addr: SocketAddr,
}

impl Server {
    fn start(config: ServeConfig) -> Self {
        let running = start(&Api, config).unwrap_or_else(|e| panic!("serve: {e}"));
        let addr = running
            .local_addr()
            .unwrap_or_else(|| panic!("routes mean a listener"));
        Self {
            running: Some(running),
            addr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Drain and report how it ended.
    fn stop(mut self) -> Result<(), ServeError> {
        let running = self
            .running
            .take()
            .unwrap_or_else(|| panic!("stopped twice"));
        running.shutdown();
        running.wait()
    }
}

fn json_of(body: &str) -> Value {
    agentd_runtime::serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn healthz_metrics_404_and_405_with_allow() {
    let s = Server::start(config());
    let a = agent();
    let (status, ct, body, _) = parts(a.get(&s.url("/healthz")).call());
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    assert_eq!(json_of(&body), json!({"status": "ok", "workflow": "api"}));

    let (status, ct, body, _) = parts(a.get(&s.url("/metrics")).call());
    assert_eq!(status, 200);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        body.contains("agentd_build_info{workflow=\"api\""),
        "{body}"
    );

    let (status, _, body, _) = parts(a.get(&s.url("/nowhere?x=1")).call());
    assert_eq!(status, 404);
    assert_eq!(
        json_of(&body),
        json!({"error": "Not Found", "path": "/nowhere"})
    );

    let (status, _, body, headers) = parts(a.get(&s.url("/echo")).call());
    assert_eq!(status, 405);
    assert_eq!(
        json_of(&body),
        json!({"error": "Method Not Allowed", "path": "/echo"})
    );
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert!(s.stop().is_ok());
}

#[test]
fn respond_sets_status_type_and_body_and_methods_match_case_insensitively() {
    let s = Server::start(config());
    let a = agent();
    let (status, ct, body, _) = parts(
        a.post(&s.url("/echo"))
            .header("content-type", "application/json")
            .send(r#"{"name":"Ada"}"#),
    );
    assert_eq!((status, ct.as_str()), (201, "application/json"));
    assert_eq!(
        json_of(&body),
        json!({"name": "Ada", "principal": "anonymous"})
    );

    // The method token is compared case-insensitively (docs/dialect.md §6).
    let reply = exchange(
        s.addr,
        b"post /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"name\":\"lo\"}",
    );
    let reply = reply.unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(s.stop().is_ok());
}

#[test]
fn bodies_are_decoded_by_content_type() {
    let s = Server::start(config());
    let a = agent();
    let post = |ct: &str, body: &[u8]| {
        parts(
            a.post(&s.url("/slow"))
                .header("content-type", ct)
                .send(body),
        )
    };
    // The `nap` node answers with the raw input it saw.
    let input = |body: &str| json_of(body)["final_value"]["input"].clone();

    let (status, _, body, _) = post("application/json", br#"{"ms":1,"a":[1,2]}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        input(&body),
        json!({"ms": 1, "a": [1, 2], "principal": {"kind": "anonymous", "name": ""}})
    );

    let (status, _, body, _) = post(
        "application/x-www-form-urlencoded",
        b"ms=1&name=J%C3%BCrgen+M&flag",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        input(&body),
        json!({"ms": "1", "name": "Jürgen M", "flag": "", "principal": {"kind": "anonymous", "name": ""}})
    );

    let multipart = b"--b0\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n\
--b0\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n\r\n\x00\x01\r\n--b0--\r\n";
    let (status, _, body, _) = post("multipart/form-data; boundary=b0", multipart);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        input(&body),
        json!({"title": "hi", "principal": {"kind": "anonymous", "name": ""}})
    );

    let (status, _, body, _) = post("application/json", b"{not json");
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("invalid JSON body")),
        "{body}"
    );
    let (status, _, _, _) = post("application/x-www-form-urlencoded", b"a=%zz");
    assert_eq!(status, 400);
    let (status, _, _, _) = post("multipart/form-data", b"x");
    assert_eq!(status, 400);

    // An empty body is `null`, which becomes `{"principal": ...}` (and a
    // template key that misses is left as written, as in dialect 1).
    let (status, _, body, _) = parts(a.post(&s.url("/echo")).send_empty());
    assert_eq!(status, 201);
    assert_eq!(
        json_of(&body),
        json!({"name": "{{name}}", "principal": "anonymous"})
    );
    assert!(s.stop().is_ok());
}

#[test]
fn outcomes_map_to_statuses() {
    let s = Server::start(config());
    let a = agent();
    let (status, ct, body, _) = parts(a.post(&s.url("/fail")).send_empty());
    assert_eq!((status, ct.as_str()), (422, "application/json"));
    assert_eq!(
        json_of(&body),
        json!({"status": "failed", "reason": "nope", "last_node": "stop"})
    );

    let (status, _, body, _) = parts(a.post(&s.url("/slow")).send(r#"{"ms":1}"#));
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(
        (v["status"].as_str(), v["last_node"].as_str()),
        (Some("completed"), Some("nap"))
    );

    // A hard error is a 500 that closes the connection.
    let reply = exchange(
        s.addr,
        b"POST /boom HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
    );
    let reply = reply.unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(
        json_of(&reply.body),
        json!({"error": "tool `boom` failed: it blew up"})
    );
    assert!(s.stop().is_ok());
}

#[test]
fn oversized_bodies_get_413_whether_declared_or_chunked() {
    let s = Server::start(config());
    // Declared: refused before the body is sent at all.
    let reply = exchange(
        s.addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1048577\r\n\r\n",
    );
    let reply = reply.unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.status, 413);
    assert_eq!(
        json_of(&reply.body),
        json!({"error": "body exceeds server cap", "cap_bytes": 1_048_576})
    );

    // Chunked: accepted while small...
    let small = b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
5\r\n{\"nam\r\n9\r\ne\":\"chk\"}\r\n0\r\n\r\n";
    let reply = exchange(s.addr, small).unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(json_of(&reply.body)["name"], "chk");

    // ...and cut off at the cap while streaming.
    let mut conn = connect(s.addr);
    let head = b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    assert!(conn.write_all(head).is_ok());
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..17 {
        let size = format!("{:x}\r\n", chunk.len());
        if conn.write_all(size.as_bytes()).is_err()
            || conn.write_all(&chunk).is_err()
            || conn.write_all(b"\r\n").is_err()
        {
            break; // the server may close as soon as it has answered
        }
    }
    let reply = read_response(&mut conn).unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.status, 413);
    assert!(s.stop().is_ok());
}

#[test]
fn oversized_headers_get_431_and_malformed_requests_400() {
    let s = Server::start(config());
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let reply = exchange(s.addr, big.as_bytes()).unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.status, 431);

    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"POST /echo HTTP/1.1\r\ncontent-length: nope\r\n\r\n",
    ] {
        let mut conn = connect(s.addr);
        assert!(conn.write_all(garbage).is_ok());
        let _ = conn.shutdown(std::net::Shutdown::Write);
        // A 400 that closes the connection; never a hang, never a 2xx.
        let reply = read_response(&mut conn);
        assert_eq!(
            reply.as_ref().map(|r| r.status),
            Some(400),
            "{garbage:?} → {reply:?}"
        );
        assert!(closed_by_server(&mut conn), "{garbage:?}: still open");
    }

    // The HTTP layer's own replies are counted too, under `unparsed` (counted
    // when each connection ends, so poll briefly).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, _, metrics, _) = parts(agent().get(&s.url("/metrics")).call());
        let counted = metrics.contains("route=\"unparsed\",status=\"431\"} 1")
            && metrics.contains("route=\"unparsed\",status=\"400\"} 5");
        if counted {
            assert!(
                !metrics.lines().any(|l| {
                    l.starts_with("agentd_http_request_duration_seconds")
                        && l.contains("route=\"unparsed\"")
                }),
                "unparsed requests have no latency:\n{metrics}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // A valid request followed by pipelined garbage: the first is answered,
    // the rest is refused, and the server lives on.
    let mut conn = connect(s.addr);
    assert!(
        conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n\x00\x01garbage garbage\r\n\r\n")
            .is_ok()
    );
    let first = read_response(&mut conn).unwrap_or_else(|| panic!("first reply"));
    assert_eq!(first.status, 200);
    if let Some(second) = read_response(&mut conn) {
        assert_eq!(second.status, 400, "{second:?}");
    }
    let (status, _, _, _) = parts(agent().get(&s.url("/healthz")).call());
    assert_eq!(status, 200);
    assert!(s.stop().is_ok());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start(config());
    let mut conn = connect(s.addr);
    for name in ["one", "two", "three"] {
        let body = format!("{{\"name\":\"{name}\"}}");
        let req = format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        assert!(conn.write_all(req.as_bytes()).is_ok());
        let reply = read_response(&mut conn).unwrap_or_else(|| panic!("reply for {name}"));
        assert_eq!(reply.status, 201);
        assert_eq!(json_of(&reply.body)["name"], name);
    }
    // The same connection counted once.
    let (_, _, metrics, _) = parts(agent().get(&s.url("/metrics")).call());
    assert!(
        metrics.contains("route=\"POST /echo\",status=\"201\"} 3"),
        "{metrics}"
    );
    assert!(s.stop().is_ok());
}

#[test]
fn rate_limited_route_answers_429_with_retry_after() {
    let s = Server::start(config());
    let a = agent();
    let (status, _, _, _) = parts(a.get(&s.url("/limited")).call());
    assert_eq!(status, 201);
    let (status, _, body, headers) = parts(a.get(&s.url("/limited")).call());
    assert_eq!(status, 429);
    let v = json_of(&body);
    assert_eq!(v["error"], "rate limited");
    assert!(
        v["retry_after_ms"].as_u64().is_some_and(|ms| ms > 90_000),
        "{body}"
    );
    let retry_after: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (90..=100).contains(&retry_after),
        "retry-after {retry_after}"
    );
    // Other routes are not limited.
    let (status, _, _, _) = parts(a.post(&s.url("/echo")).send_empty());
    assert_eq!(status, 201);
    assert!(s.stop().is_ok());
}

#[test]
fn idempotent_deliveries_replay_and_concurrent_duplicates_conflict() {
    let dir = scratch("idem");
    let s = Server::start(config().state_dir(&dir));
    let url = s.url("/orders");
    let a = agent();
    // A slow first delivery, and a duplicate while it runs.
    let first = std::thread::spawn({
        let url = url.clone();
        move || parts(agent().post(&url).send(r#"{"order":{"id":7},"ms":800}"#))
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, _, body, _) = parts(a.post(&url).send(r#"{"order":{"id":7},"ms":1}"#));
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        json_of(&body),
        json!({"error": "a delivery with this idempotency key is in flight"})
    );
    let (status, _, original, _) = first.join().unwrap_or_else(|_| panic!("first delivery"));
    assert_eq!(status, 200);

    // After it completed, the same key replays the stored response.
    let (status, _, replay, headers) = parts(a.post(&url).send(r#"{"order":{"id":7},"ms":1}"#));
    assert_eq!(status, 200);
    assert_eq!(replay, original);
    assert_eq!(
        headers
            .get("x-agentd-idempotent-replay")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // Another key runs.
    let (status, _, other, headers) = parts(a.post(&url).send(r#"{"order":{"id":8},"ms":1}"#));
    assert_eq!(status, 200);
    assert_ne!(other, original);
    assert!(headers.get("x-agentd-idempotent-replay").is_none());
    // A key that is not a scalar is a 400.
    let (status, _, body, _) = parts(a.post(&url).send(r#"{"order":{"id":[1]}}"#));
    assert_eq!(status, 400);
    assert!(body.contains("did not resolve to a scalar"), "{body}");
    assert!(s.stop().is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idempotent_routes_need_a_state_dir() {
    let config = ServeConfig {
        state_dir: None,
        ..config()
    };
    match start(&Api, config) {
        Err(ServeError::IdempotencyWithoutStateDir(route)) => assert_eq!(route, "POST /orders"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn traceparent_reaches_the_run_and_is_echoed_with_a_new_span() {
    let s = Server::start(config());
    let inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, _, body, headers) = parts(
        agent()
            .post(&s.url("/slow"))
            .header("traceparent", inbound)
            .send(r#"{"ms":1}"#),
    );
    assert_eq!(status, 200);
    let echoed = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parts_of = |t: &str| t.split('-').map(str::to_owned).collect::<Vec<_>>();
    let (e, i) = (parts_of(&echoed), parts_of(inbound));
    assert_eq!(e.len(), 4, "{echoed}");
    assert_eq!((&e[0], &e[1], &e[3]), (&i[0], &i[1], &i[3]));
    assert_ne!(e[2], i[2], "a new span id");
    let seen = json_of(&body)["final_value"]["traceparent"].clone();
    let seen = seen.as_str().map(parts_of).unwrap_or_default();
    assert_eq!(seen.get(1), Some(&i[1]), "the run continues the trace");
    assert_eq!(
        seen.get(2),
        Some(&e[2]),
        "the reply names the span the run sends on its outbound calls"
    );

    // A malformed header is ignored, not an error.
    let (status, _, _, headers) = parts(
        agent()
            .post(&s.url("/slow"))
            .header("traceparent", "00-zz-00-01")
            .send(r#"{"ms":1}"#),
    );
    assert_eq!(status, 200);
    assert!(headers.get("traceparent").is_none());
    assert!(s.stop().is_ok());
}

#[test]
fn metrics_count_runs_requests_and_latency() {
    let s = Server::start(config());
    let a = agent();
    let _ = parts(a.post(&s.url("/echo")).send_empty());
    let _ = parts(a.post(&s.url("/fail")).send_empty());
    let _ = parts(a.get(&s.url("/nope")).call());
    let (_, _, text, _) = parts(a.get(&s.url("/metrics")).call());
    for line in [
        "agentd_workflow_starts_total{workflow=\"api\"} 2",
        "agentd_workflow_completions_total{workflow=\"api\"} 1",
        "agentd_workflow_failures_total{workflow=\"api\"} 1",
        "agentd_node_executions_total{workflow=\"api\"} 2",
        "agentd_http_requests_total{workflow=\"api\",route=\"POST /echo\",status=\"201\"} 1",
        "agentd_http_requests_total{workflow=\"api\",route=\"POST /fail\",status=\"422\"} 1",
        "agentd_http_requests_total{workflow=\"api\",route=\"unmatched\",status=\"404\"} 1",
        "agentd_http_request_duration_seconds_count{workflow=\"api\",route=\"POST /echo\"} 1",
        "agentd_workflow_run_duration_seconds_count{workflow=\"api\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("agentd_build_info{workflow=\"api\",")
                && l.contains("program_hash=\"0123abcd\"")
                && l.ends_with(" 1")),
        "{text}"
    );
    assert!(s.stop().is_ok());
}

#[test]
fn drain_finishes_the_request_in_flight_and_exits_cleanly() {
    let s = Server::start(config());
    let url = s.url("/slow");
    let addr = s.addr;
    let in_flight = std::thread::spawn(move || parts(agent().post(&url).send(r#"{"ms":700}"#)));
    // An idle keep-alive connection must not hold the drain up.
    let mut idle = connect(addr);
    assert!(
        idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .is_ok()
    );
    assert_eq!(read_response(&mut idle).map(|r| r.status), Some(200));
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    assert!(s.stop().is_ok(), "a clean drain");
    let (status, _, body, _) = in_flight.join().unwrap_or_else(|_| panic!("client"));
    assert_eq!(status, 200, "the in-flight request completed: {body}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        closed_by_server(&mut idle),
        "the idle connection was closed"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn drain_that_outlives_its_timeout_is_an_error() {
    let s = Server::start(config().drain_timeout(Duration::from_secs(1)));
    let url = s.url("/slow");
    let client = std::thread::spawn(move || {
        let _ = agent().post(&url).send(r#"{"ms":3000}"#);
    });
    std::thread::sleep(Duration::from_millis(300));
    match s.stop() {
        Err(ServeError::DrainTimedOut { in_flight }) => assert!(in_flight >= 1),
        other => panic!("expected a drain timeout, got {other:?}"),
    }
    let _ = client.join();
}

#[test]
fn a_saturated_run_pool_sheds_load_with_503() {
    let s = Server::start(ServeConfig {
        max_runs: 1,
        ..config()
    });
    let url = s.url("/slow");
    let busy = std::thread::spawn(move || parts(agent().post(&url).send(r#"{"ms":800}"#)));
    std::thread::sleep(Duration::from_millis(300));
    let (status, _, body, headers) = parts(agent().post(&s.url("/slow")).send(r#"{"ms":1}"#));
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Inline routes do not need a worker.
    let (status, _, _, _) = parts(agent().post(&s.url("/echo")).send_empty());
    assert_eq!(status, 201);
    assert_eq!(busy.join().map(|r| r.0).ok(), Some(200));
    assert!(s.stop().is_ok());
}

#[test]
fn connections_over_the_cap_get_503_and_are_closed() {
    let s = Server::start(ServeConfig {
        max_connections: 1,
        ..config()
    });
    let mut first = connect(s.addr);
    assert!(
        first
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .is_ok()
    );
    assert_eq!(read_response(&mut first).map(|r| r.status), Some(200));
    let reply = exchange(s.addr, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    let reply = reply.unwrap_or_else(|| panic!("a 503, not a silent close"));
    assert_eq!(reply.status, 503);
    assert_eq!(
        json_of(&reply.body),
        json!({"error": "too many connections"})
    );
    // Once the first connection goes, a new one is served.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = exchange(
            s.addr,
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        );
        if r.as_ref().map(|r| r.status) == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.stop().is_ok());
}

#[test]
fn a_slowloris_client_is_cut_off_while_others_are_served() {
    let s = Server::start(ServeConfig {
        read_timeout: Duration::from_secs(1),
        ..config()
    });
    let addr = s.addr;
    let slow = std::thread::spawn(move || {
        let mut conn = connect(addr);
        let started = Instant::now();
        // One header byte every 100 ms, forever (until the server hangs up).
        for byte in b"GET /healthz HTTP/1.1\r\nx-slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if conn.write_all(&[*byte]).is_err() || started.elapsed() > Duration::from_secs(30) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    });
    // Meanwhile other clients are served promptly.
    for _ in 0..5 {
        let (status, _, _, _) = parts(agent().get(&s.url("/healthz")).call());
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = slow.join().unwrap_or_else(|_| panic!("slow client"));
    assert!(
        held < Duration::from_secs(30),
        "the server never cut the slow client off"
    );
    let (status, _, _, _) = parts(agent().get(&s.url("/healthz")).call());
    assert_eq!(status, 200);
    assert!(s.stop().is_ok());
}

#[test]
fn a_run_past_its_deadline_is_504_with_the_timed_out_outcome() {
    let mut cfg = config();
    cfg.run.timeout = Duration::from_millis(300);
    let s = Server::start(cfg);
    // `late` naps 800 ms; the deadline stops the walk before its next node.
    let (status, ct, body, _) = parts(agent().post(&s.url("/late")).send(r#"{"ms":800}"#));
    assert_eq!((status, ct.as_str()), (504, "application/json"), "{body}");
    let v = json_of(&body);
    assert_eq!(v["status"], "timed_out", "{v}");
    // The server is still there for the next request.
    let (status, _, _, _) = parts(agent().post(&s.url("/slow")).send(r#"{"ms":1}"#));
    assert_eq!(status, 200);
    assert!(s.stop().is_ok());
}

#[test]
fn a_paused_run_is_202_with_its_run_id_and_leaves_a_checkpoint() {
    let mut cfg = config();
    let dir = scratch("pause-checkpoints");
    cfg.run.checkpoints = Some(std::sync::Arc::new(
        agentd_runtime::checkpoint::StateDir::create(&dir)
            .unwrap_or_else(|e| panic!("state dir: {e}")),
    ));
    let s = Server::start(cfg);
    let (status, ct, body, _) = parts(agent().post(&s.url("/hold")).send(r#"{"amount":5}"#));
    assert_eq!((status, ct.as_str()), (202, "application/json"), "{body}");
    let v = json_of(&body);
    assert_eq!(v["status"], "paused", "{v}");
    let run_id = v["run_id"].as_str().unwrap_or_default().to_owned();
    assert!(!run_id.is_empty(), "{v}");
    let saved = std::fs::read_to_string(dir.join(format!("{run_id}.json")))
        .unwrap_or_else(|e| panic!("the checkpoint of {run_id}: {e}"));
    assert!(saved.contains("\"awaiting_approval\": true"), "{saved}");
    assert!(s.stop().is_ok());
}

#[test]
fn a_stalled_body_times_out_with_408() {
    let s = Server::start(ServeConfig {
        read_timeout: Duration::from_secs(1),
        ..config()
    });
    let mut conn = connect(s.addr);
    assert!(
        conn.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{\"a")
            .is_ok()
    );
    let reply = read_response(&mut conn).unwrap_or_else(|| panic!("a reply"));
    assert_eq!(reply.status, 408);
    assert!(s.stop().is_ok());
}

#[test]
fn interval_triggers_fire_with_the_dialect_payload_a_fixed_delay_after_each_run() {
    api::COUNTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    // Each run takes 250 ms; the trigger's delay is 100 ms.
    *api::COUNT_SLEEP_MS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = 250;
    let running = start(&Ticker, config()).unwrap_or_else(|e| panic!("serve: {e}"));
    assert_eq!(running.local_addr(), None, "no routes, no listener");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = api::COUNTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if n >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    running.shutdown();
    assert!(running.wait().is_ok());
    let seen = api::COUNTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let first = &seen[0];
    assert_eq!(first["kind"], "interval");
    assert_eq!(first["every_ms"], 100);
    // The delay starts when the previous run ends, so no fire is ever
    // skipped: ticks are consecutive, and fires are at least run + delay
    // (250 + 100 ms) apart.
    let ticks: Vec<u64> = seen.iter().filter_map(|v| v["tick"].as_u64()).collect();
    assert_eq!(ticks, (1..=ticks.len() as u64).collect::<Vec<_>>());
    let fired: Vec<u64> = seen
        .iter()
        .filter_map(|v| v["fired_at_unix_ms"].as_u64())
        .collect();
    assert!(fired[0] > 1_600_000_000_000);
    assert!(
        fired.windows(2).all(|w| w[1] >= w[0] + 350),
        "fires closer than run + delay: {fired:?}"
    );
}

/// Poll `sink` until it holds at least `n` entries (or fail after 20 s).
#[cfg(any(feature = "schedule-cron", feature = "fs-watch"))]
fn wait_for(sink: &std::sync::Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if seen.len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} runs: {seen:?}",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(feature = "schedule-cron")]
#[test]
fn cron_triggers_fire_on_schedule_with_the_dialect_payload() {
    let running = start(&api::Every, config()).unwrap_or_else(|e| panic!("serve: {e}"));
    let seen = wait_for(&api::CRON_SEEN, 2);
    running.shutdown();
    assert!(running.wait().is_ok());
    assert_eq!(seen[0]["kind"], "cron");
    assert_eq!(seen[0]["schedule"], "* * * * * *");
    assert_eq!(
        (seen[0]["tick"].as_u64(), seen[1]["tick"].as_u64()),
        (Some(1), Some(2))
    );
    let (a, b) = (
        seen[0]["fired_at_unix_ms"].as_u64().unwrap_or(0),
        seen[1]["fired_at_unix_ms"].as_u64().unwrap_or(0),
    );
    // One fire per second (the sleeps wake on the second, give or take).
    assert!((500..=1500).contains(&(b - a)), "{a} → {b}");
}

#[cfg(feature = "fs-watch")]
#[test]
fn fs_watch_fires_per_path_with_the_last_event_and_honours_the_filter() {
    let dir = std::path::Path::new(api::WATCHED);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let running = start(&api::Watcher, config()).unwrap_or_else(|e| panic!("serve: {e}"));
    let file = dir.join("in.txt");
    std::fs::write(&file, b"one").unwrap_or_else(|e| panic!("write: {e}"));
    // Modifications are filtered out (only create and remove fire).
    std::fs::write(&file, b"two").unwrap_or_else(|e| panic!("write: {e}"));
    let seen = wait_for(&api::FS_SEEN, 1);
    assert_eq!(seen[0]["kind"], "fs_watch");
    assert_eq!(seen[0]["event"], "create");
    assert_eq!(seen[0]["path"], file.to_string_lossy().as_ref());
    assert_eq!(seen[0]["tick"], 1);
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("remove: {e}"));
    let seen = wait_for(&api::FS_SEEN, 2);
    assert_eq!(seen[1]["event"], "remove");
    // A burst on one path inside the debounce window is one fire, and the
    // last kind wins.
    let burst = dir.join("burst.txt");
    std::fs::write(&burst, b"x").unwrap_or_else(|e| panic!("write: {e}"));
    std::fs::remove_file(&burst).unwrap_or_else(|e| panic!("remove: {e}"));
    let seen = wait_for(&api::FS_SEEN, 3);
    assert_eq!(seen[2]["path"], burst.to_string_lossy().as_ref());
    assert_eq!(seen[2]["event"], "remove");
    // Long enough for a second fire of the burst to show up if there were one.
    std::thread::sleep(Duration::from_millis(500));
    running.shutdown();
    assert!(running.wait().is_ok());
    assert_eq!(
        api::FS_SEEN.lock().map(|s| s.len()).unwrap_or(0),
        3,
        "a modify fired, or the burst fired twice"
    );
    let _ = std::fs::remove_dir_all(dir);
}
