//! End to end: fleet mode on a real Redis. `tests/fleet/fleet.toml` built once
//! with `agentd build --fleet`; each test starts its own `redis-server`
//! (installed by tests/deps/redis.sh) on a free port with a scratch directory,
//! and three replicas of the binary pointed at it with `--state-url`.
//!
//! Pinned here: one idempotency key sent to every replica runs once and
//! replays the same response everywhere; a rate limit holds for the fleet; a
//! cron tick every second, and an interval of one second (`tests/fleet/interval.toml`),
//! fire once per period across three replicas; a tick
//! whose replica is `kill -9`'d mid-run is taken over and completed by another; Redis
//! stopped mid-load gives 503 + Retry-After (and `/readyz` 503, `/healthz`
//! 200), and after it returns nothing was lost or run twice; a server that
//! answers nonsense is a precise 503, never a crash; a binary built without
//! `--fleet` refuses `--state-url`. Runs: a route's run whose replica is
//! `kill -9`'d mid-node is completed by another replica (the interrupted
//! `http_request` sent again with the same `Idempotency-Key`, the next one
//! once); a paused run is listed and resumed by another process from Redis,
//! and a corrupt checkpoint there is a precise error.
#![cfg(target_os = "linux")]

#[path = "support/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "../agentd-runtime/tests/serve/client.rs"]
mod client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use client::{agent, parts};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fleet-e2e")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

/// `agentd build --fleet tests/fleet/fleet.toml`, once per test binary.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = scratch("bin").join("fleet_test");
        build::agentd_build(
            &build::workspace(),
            "tests/fleet/fleet.toml",
            &out,
            &["--fleet"],
        );
        out
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `redis-server`, from tests/deps/redis.sh. Missing is a failure, never a skip.
fn redis_server_path() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join("redis-server");
        if p.exists() {
            return p;
        }
    }
    panic!("redis-server is not installed: run tests/deps/redis.sh (tests/install-deps.sh)");
}

/// A `redis-server` of this test: its own port and scratch directory, with
/// an fsync-always append-only file so a restart keeps every record.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(name: &str) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: scratch(&format!("redis-{name}")),
        };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new(redis_server_path())
            .current_dir(&self.dir)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--dir"])
            .arg(&self.dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0_u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A replica on 127.0.0.1:0, killed on drop.
struct Replica {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Replica {
    fn start(state_url: &str, extra: &[&str]) -> Replica {
        Replica::start_with_env(state_url, extra, &[])
    }

    fn start_with_env(state_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Replica {
        Replica::start_binary(binary(), state_url, extra, env)
    }

    /// A replica of another fleet binary than `fleet.toml`'s.
    fn start_binary(bin: &Path, state_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Replica {
        let dir = scratch(&format!("replica-{}", free_port()));
        let mut child = Command::new(bin)
            .current_dir(&dir)
            .envs(env.iter().copied())
            .args(["--bind", "127.0.0.1:0", "--state-url", state_url])
            .args(["--log-level", "info", "--log-format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a replica");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "no banner; stderr:\n{}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            );
        };
        Replica {
            child,
            addr: addr.parse().expect("banner address"),
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str) -> (u16, String, String, ureq::http::HeaderMap) {
        parts(agent().get(&self.url(path)).call())
    }

    fn order(&self, id: &str) -> (u16, String, String, ureq::http::HeaderMap) {
        parts(
            agent()
                .post(&self.url("/orders"))
                .header("content-type", "application/json")
                .send(format!("{{\"order_id\":\"{id}\"}}")),
        )
    }

    /// The value of the metric line starting with `prefix` (0 when absent).
    fn metric(&self, prefix: &str) -> f64 {
        let (_, _, text, _) = self.get("/metrics");
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replay(headers: &ureq::http::HeaderMap) -> bool {
    headers
        .get("x-agentd-idempotent-replay")
        .is_some_and(|v| v == "true")
}

fn three(redis: &Redis) -> Vec<Replica> {
    (0..3).map(|_| Replica::start(&redis.url(), &[])).collect()
}

#[test]
fn one_idempotency_key_sent_to_three_replicas_runs_once_and_replays_everywhere() {
    let redis = Redis::start("idem");
    let fleet = three(&redis);
    // The same delivery to all three at once: the run takes a second, so the
    // other two arrive while it is in flight.
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = fleet
            .iter()
            .map(|r| s.spawn(move || r.order("A-1")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    let ran: Vec<_> = answers.iter().filter(|a| a.0 == 201).collect();
    assert_eq!(ran.len(), 1, "exactly one replica runs it: {statuses:?}");
    assert!(!replay(&ran[0].3), "the first delivery is not a replay");
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        2,
        "the concurrent duplicates are 409: {statuses:?}"
    );
    let first = ran[0].2.clone();
    assert_eq!(first, r#"{"order_id":"A-1","status":"accepted"}"#);
    // Later deliveries, to every replica: the recorded response, replayed.
    for r in &fleet {
        let (status, ct, body, headers) = r.order("A-1");
        assert_eq!((status, body.as_str()), (201, first.as_str()), "{}", r.addr);
        assert_eq!(ct, "application/json");
        assert!(replay(&headers), "a replay says so");
    }
    // One run in the whole fleet for that key: every other answer was a 409
    // or a replay, so no replica ran the node a second time.
    let runs: f64 = fleet
        .iter()
        .map(|r| r.metric("agentd_http_requests_total{workflow=\"fleet_test\",route=\"POST /orders\",status=\"201\"}"))
        .sum();
    assert_eq!(runs, 4.0, "one run plus three replays answered 201");
}

#[test]
fn a_rate_limit_holds_for_the_whole_fleet_with_a_usable_retry_after() {
    let redis = Redis::start("ratelimit");
    let fleet = three(&redis);
    let mut admitted = 0;
    let mut retry_after = Vec::new();
    for i in 0..12 {
        let (status, _, _, headers) = fleet[i % 3].get("/limited");
        match status {
            200 => admitted += 1,
            429 => retry_after.push(
                headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("a 429 carries a numeric Retry-After"),
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    // Capacity 3 for the fleet (each replica alone would admit 3, so 9).
    assert_eq!(admitted, 3, "the bucket is shared");
    assert_eq!(retry_after.len(), 9);
    // One token per 100 s: the wait for the next is close to that.
    for secs in retry_after {
        assert!((90..=100).contains(&secs), "Retry-After {secs}");
    }
}

#[test]
fn a_cron_tick_every_second_fires_once_per_second_across_three_replicas() {
    let redis = Redis::start("cron");
    let fleet = three(&redis);
    let fires = |fleet: &[Replica]| -> f64 { fleet.iter().map(|r| r.metric(TICK_FIRES)).sum() };
    // Let every replica's schedule start, then count five seconds of ticks.
    std::thread::sleep(Duration::from_millis(1500));
    let before = fires(&fleet);
    std::thread::sleep(Duration::from_secs(5));
    let after = fires(&fleet);
    let ran = after - before;
    // Five ticks (one either side for where the snapshots fall); without a
    // shared lease it would be fifteen.
    assert!(
        (4.0..=6.0).contains(&ran),
        "{ran} fires in 5 s across the fleet"
    );
    let skipped: f64 = fleet
        .iter()
        .map(|r| {
            r.metric(
                "agentd_trigger_skipped_total{workflow=\"fleet_test\",trigger=\"cron#0:tick\"}",
            )
        })
        .sum();
    assert_eq!(skipped, 0.0, "no tick was skipped");
}

/// `agentd build --fleet tests/fleet/interval.toml`, once per test binary.
fn interval_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = scratch("interval-bin").join("fleet_interval");
        build::agentd_build(
            &build::workspace(),
            "tests/fleet/interval.toml",
            &out,
            &["--fleet"],
        );
        out
    })
}

#[test]
fn an_interval_tick_every_second_fires_once_per_period_across_three_replicas() {
    const FIRES: &str =
        "agentd_trigger_fires_total{workflow=\"fleet_interval\",trigger=\"interval#0:tick\"}";
    let redis = Redis::start("interval");
    let fleet: Vec<Replica> = (0..3)
        .map(|_| Replica::start_binary(interval_binary(), &redis.url(), &[], &[]))
        .collect();
    let fires = |fleet: &[Replica]| -> f64 { fleet.iter().map(|r| r.metric(FIRES)).sum() };
    // Let every replica's first period begin, then count five seconds of ticks.
    std::thread::sleep(Duration::from_millis(2500));
    let before = fires(&fleet);
    std::thread::sleep(Duration::from_secs(5));
    let ran = fires(&fleet) - before;
    // Five periods (one either side for where the snapshots fall); each replica
    // firing its own would be fifteen.
    assert!(
        (4.0..=6.0).contains(&ran),
        "{ran} fires in 5 s across the fleet"
    );
}

const TICK_FIRES: &str =
    "agentd_trigger_fires_total{workflow=\"fleet_test\",trigger=\"cron#0:tick\"}";

#[test]
fn a_tick_whose_replica_is_killed_mid_run_is_taken_over_by_another() {
    let redis = Redis::start("takeover");
    let mut fleet: Vec<Replica> = (0..2).map(|_| Replica::start(&redis.url(), &[])).collect();
    // The slow trigger (every 10 s, a 4 s run): find the replica that won a tick.
    let started = |r: &Replica| {
        r.stderr()
            .lines()
            .any(|l| l.contains("\"event\":\"cron.fire\"") && l.contains("\"start_node\":\"slow\""))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        if let Some(i) = fleet.iter().position(started) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no replica fired the slow trigger"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let other = 1 - holder;
    assert!(!started(&fleet[other]), "one tick, one replica");
    // kill -9 mid-run: its lease is no longer renewed.
    fleet[holder].child.kill().expect("kill -9 the holder");
    let _ = fleet[holder].child.wait();
    // The survivor takes the tick over once the 5 s lease lapses, before the
    // next tick is due.
    let deadline = Instant::now() + Duration::from_secs(9);
    while fleet[other].metric("agentd_lease_takeovers_total{") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no take-over; survivor's log:\n{}",
            fleet[other].stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fleet[other].stderr().contains("cron.takeover"), "audited");
    // And runs it to the end.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fleet[other].stderr().lines().any(|l| {
        l.contains("\"event\":\"workflow.completed\"") && l.contains("\"last_node\":\"slow_done\"")
    }) {
        assert!(
            Instant::now() < deadline,
            "the taken-over tick did not complete"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    fleet.truncate(0);
}

#[test]
fn redis_stopped_mid_load_gives_503_then_recovers_without_lost_or_doubled_runs() {
    let mut redis = Redis::start("outage");
    let fleet = three(&redis);
    for (i, id) in ["B-1", "B-2", "B-3"].iter().enumerate() {
        assert_eq!(fleet[i].order(id).0, 201, "{id} before the outage");
    }
    redis.stop();
    for (i, id) in ["B-4", "B-5"].iter().enumerate() {
        let (status, _, body, headers) = fleet[i].order(id);
        assert_eq!(status, 503, "{id} while Redis is down: {body}");
        assert!(body.contains("state store unavailable"), "{body}");
        assert!(
            headers.get("retry-after").is_some(),
            "503 says when to retry"
        );
    }
    for r in &fleet {
        assert_eq!(r.get("/healthz").0, 200, "liveness does not need the store");
        let (status, _, body, _) = r.get("/readyz");
        assert_eq!(status, 503, "readiness reports the store: {body}");
        assert!(body.contains("\"store\":\"fleet\""), "{body}");
    }
    redis.restart();
    for r in &fleet {
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.get("/readyz").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "{} never became ready again",
                r.addr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // The refused deliveries never ran: retried, they run now (not replays).
    for (i, id) in ["B-4", "B-5"].iter().enumerate() {
        let (status, _, _, headers) = fleet[2 - i].order(id);
        assert_eq!(status, 201, "{id} after the outage");
        assert!(!replay(&headers), "{id} had not run before");
    }
    // The ones that ran before the outage are still recorded: not run twice.
    for (i, id) in ["B-1", "B-2", "B-3"].iter().enumerate() {
        let (status, _, _, headers) = fleet[(i + 1) % 3].order(id);
        assert_eq!(status, 201);
        assert!(replay(&headers), "{id} replays after the restart");
    }
    let errors: f64 = fleet
        .iter()
        .map(|r| r.metric("agentd_store_errors_total{"))
        .sum();
    assert!(errors >= 2.0, "store errors are counted: {errors}");
    assert!(
        fleet[0].stderr().contains("store.error"),
        "store errors are audited"
    );
}

/// A TCP server that answers every RESP command with `reply`.
fn nonsense_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0_u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_store_that_answers_nonsense_is_a_precise_503_not_a_crash() {
    for reply in [&b":42\r\n"[..], b"this is not RESP\r\n", b"-ERR wrong\r\n"] {
        let port = nonsense_server(reply);
        let replica = Replica::start(&format!("redis://127.0.0.1:{port}/0"), &[]);
        let (status, _, body, headers) = replica.order("C-1");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("state store unavailable"), "{body}");
        assert!(headers.get("retry-after").is_some());
        let (status, _, body, _) = replica.get("/limited");
        assert_eq!(status, 503, "{body}");
        // Still serving.
        assert_eq!(replica.get("/healthz").0, 200);
    }
}

#[test]
fn a_bad_state_url_refuses_to_start_naming_it_without_the_password() {
    let out = Command::new(binary())
        .args([
            "--bind",
            "127.0.0.1:0",
            "--state-url",
            "redis://:hunter2@[nope/0",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--state-url"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is never shown: {stderr}"
    );
}

#[test]
fn a_binary_built_without_fleet_refuses_a_state_url() {
    // The serve example, as serve_e2e builds it (the same runtime features,
    // so the shared cache has it), without --fleet.
    let plain = scratch("plain").join("order-api");
    build::agentd_build(&build::workspace(), "workflows/order-api.toml", &plain, &[]);
    let out = Command::new(&plain)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--state-url",
            "redis://127.0.0.1:1/0",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built without fleet mode") && stderr.contains("agentd build --fleet"),
        "{stderr}"
    );
}

/// Requests a [`Recorder`] saw: path and `Idempotency-Key`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A local HTTP server recording each request's path and `Idempotency-Key`.
/// The first request to `/step1` is answered only after `hold` (its replica
/// is killed meanwhile); every other one at once.
struct Recorder {
    addr: SocketAddr,
    seen: Seen,
}

impl Recorder {
    fn start(hold: Duration) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let addr = listener.local_addr().expect("recorder address");
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || serve_one(stream, &sink, hold));
            }
        });
        Recorder { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `Idempotency-Key`s of the requests to `path` so far.
    fn keys(&self, path: &str) -> Vec<Option<String>> {
        self.seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(p, _)| p == path)
                    .map(|(_, k)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn wait_for(&self, path: &str, count: usize, within: Duration, log: &dyn Fn() -> String) {
        let deadline = Instant::now() + within;
        while self.keys(path).len() < count {
            assert!(
                Instant::now() < deadline,
                "{count} request(s) to {path} never arrived; log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_one(mut stream: TcpStream, sink: &Mutex<Vec<(String, Option<String>)>>, hold: Duration) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let (path, key, body_start, length) = loop {
        let Ok(n) = stream.read(&mut chunk) else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(at)) = req.parse(&buf) {
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let length = header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            break (
                req.path.unwrap_or_default().to_owned(),
                header("idempotency-key"),
                at,
                length,
            );
        }
    };
    while buf.len() < body_start + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let first_step1 = {
        let Ok(mut seen) = sink.lock() else { return };
        let first = path == "/step1" && !seen.iter().any(|(p, _)| p == "/step1");
        seen.push((path, key));
        first
    };
    if first_step1 {
        std::thread::sleep(hold);
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}");
}

const RUN_TAKEOVERS: &str =
    "agentd_lease_takeovers_total{workflow=\"fleet_test\",store=\"fleet\",lease=\"run\"}";

#[test]
fn a_run_whose_replica_is_killed_mid_node_is_completed_by_another_with_the_same_idempotency_key() {
    let redis = Redis::start("run-takeover");
    let mut doomed = Replica::start(&redis.url(), &[]);
    let survivor = Replica::start(&redis.url(), &[]);
    let server = Recorder::start(Duration::from_secs(30));
    let body = format!(
        r#"{{"step1":"{}","final":"{}"}}"#,
        server.url("/step1"),
        server.url("/final")
    );
    let url = doomed.url("/durable");
    // Its client loses the connection when the replica dies.
    std::thread::spawn(move || {
        let _ = agent()
            .post(&url)
            .header("content-type", "application/json")
            .send(body);
    });
    server.wait_for("/step1", 1, Duration::from_secs(20), &|| doomed.stderr());
    // kill -9 inside `step1`: its lease is no longer renewed.
    doomed
        .child
        .kill()
        .expect("kill -9 the replica running the run");
    let _ = doomed.child.wait();
    // The survivor takes the run over once the 5 s lease lapses, sends
    // `step1` again and runs `final`.
    server.wait_for("/final", 1, Duration::from_secs(30), &|| survivor.stderr());
    // Nothing more arrives: the run completed once.
    std::thread::sleep(Duration::from_secs(3));
    let step1 = server.keys("/step1");
    let last = server.keys("/final");
    assert_eq!(step1.len(), 2, "the interrupted node ran again: {step1:?}");
    assert_eq!(last.len(), 1, "the next node ran once: {last:?}");
    let key = step1[0].clone().expect("step1 carries an Idempotency-Key");
    assert_eq!(
        step1[1].as_deref(),
        Some(key.as_str()),
        "the re-run sends the same key"
    );
    let run_id = key
        .strip_suffix(":step1")
        .unwrap_or_else(|| panic!("`<run id>:<node id>`: {key}"));
    assert!(run_id.starts_with("exec-"), "{key}");
    assert_eq!(
        last[0].as_deref(),
        Some(format!("{run_id}:final").as_str()),
        "one key per node of the run"
    );
    assert_eq!(
        survivor.metric(RUN_TAKEOVERS),
        1.0,
        "the take-over is counted"
    );
    let log = survivor.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("\"event\":\"run.takeover\"") && l.contains(run_id)),
        "the take-over is audited:\n{log}"
    );
}

/// Send one command to Redis on `port`; the raw RESP reply.
fn redis_cmd(port: u16, args: &[&str]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).expect("send to redis");
    let mut buf = [0_u8; 8192];
    let n = s.read(&mut buf).expect("redis reply");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Pause one `/gated` run on `replica`; its run id.
fn pause_one(replica: &Replica, server: &Recorder) -> String {
    let (status, _, body, _) = parts(
        agent()
            .post(&replica.url("/gated"))
            .header("content-type", "application/json")
            .send(format!(r#"{{"final":"{}"}}"#, server.url("/final"))),
    );
    assert_eq!(status, 202, "a paused run is 202: {body}");
    let outcome: serde_json::Value = serde_json::from_str(&body).expect("a JSON outcome");
    outcome["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_id in {body}"))
        .to_owned()
}

#[test]
fn a_paused_run_is_resumed_from_redis_by_another_process_and_a_corrupt_one_is_refused() {
    let redis = Redis::start("paused");
    let server = Recorder::start(Duration::ZERO);
    let replica = Replica::start(&redis.url(), &[]);
    let run_id = pause_one(&replica, &server);
    let corrupt_id = pause_one(&replica, &server);
    // The replica that paused them is gone, with its disk.
    drop(replica);
    let elsewhere = scratch("paused-elsewhere");
    let cli = |args: &[&str]| {
        Command::new(binary())
            .current_dir(&elsewhere)
            .args(["--state-url", &redis.url()])
            .args(args)
            .output()
            .expect("run the binary once")
    };
    let listed = cli(&["--list-checkpoints"]);
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        listed_text.lines().any(|l| l.starts_with(&run_id)
            && l.contains("paused")
            && l.contains("resume_node=after")),
        "{listed_text}"
    );
    let resumed = cli(&["--resume", &run_id]);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("\"completed\""), "{stdout}");
    assert_eq!(
        server.keys("/final").len(),
        1,
        "the resumed run went on once"
    );
    // Resumed and done: its checkpoint is gone from the fleet.
    let again = cli(&["--resume", &run_id]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("no checkpoint `{run_id}`")),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter"), "{stderr}");

    // Keys are namespaced by workflow and build; overwrite the other
    // checkpoint with something that is not one.
    let keys = redis_cmd(
        redis.port,
        &["KEYS", &format!("agentd:fleet_test:*:run:{corrupt_id}")],
    );
    let key = keys
        .lines()
        .find(|l| l.starts_with("agentd:fleet_test:"))
        .unwrap_or_else(|| panic!("no checkpoint key for {corrupt_id}: {keys:?}"))
        .to_owned();
    assert!(redis_cmd(redis.port, &["SET", &key, "{not a checkpoint"]).starts_with("+OK"));
    let refused = cli(&["--resume", &corrupt_id]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("checkpoint `{corrupt_id}`")) && stderr.contains("is corrupt"),
        "{stderr}"
    );
    assert_eq!(server.keys("/final").len(), 1, "nothing ran");
}

/// A child process killed (and reaped) on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rediss_with_a_password_from_a_secret_shares_keys_and_runs_over_tls() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = scratch("redis-tls");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let ca_file = dir.join("ca.pem");
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    std::fs::write(&cert_file, leaf.pem()).expect("write the certificate");
    std::fs::write(&key_file, leaf_key.serialize_pem()).expect("write the key");

    // Debian's redis-server is built with TLS: a TLS-only port and a password.
    let port = free_port();
    let _redis = KillOnDrop(
        Command::new(redis_server_path())
            .current_dir(&dir)
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&cert_file)
            .arg("--tls-key-file")
            .arg(&key_file)
            .arg("--tls-ca-cert-file")
            .arg(&ca_file)
            .args(["--tls-auth-clients", "no", "--requirepass", "s3cret-pw"])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server with TLS"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS port never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("rediss://127.0.0.1:{port}/0");
    let ca_path = ca_file.to_str().expect("a UTF-8 path");
    // The password is the secret `REDIS_PASSWORD` (no `[[secrets]]` entry of
    // that name: the environment variable), never on the command line.
    let env = [
        ("AGENTD_HTTP_CA_FILE", ca_path),
        ("REDIS_PASSWORD", "s3cret-pw"),
    ];
    let secret = ["--state-password-secret", "REDIS_PASSWORD"];
    let once = |env: &[(&str, &str)], args: &[&str]| {
        Command::new(binary())
            .current_dir(&dir)
            .envs(env.iter().copied())
            .args(["--state-url", &url])
            .args(secret)
            .args(args)
            .output()
            .expect("run the binary once")
    };
    let replica = Replica::start_with_env(&url, &secret, &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while replica.get("/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            replica.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, _, headers) = replica.order("TLS-1");
    assert_eq!(status, 201, "{}", replica.stderr());
    assert!(!replay(&headers));
    let (status, _, _, headers) = replica.order("TLS-1");
    assert_eq!(status, 201);
    assert!(replay(&headers), "the record came back over TLS");

    // Checkpoints use the same TLS and password, from another process.
    let server = Recorder::start(Duration::ZERO);
    let run_id = pause_one(&replica, &server);
    let resumed = once(&env, &["--resume", &run_id]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(server.keys("/final").len(), 1);

    // A wrong password is refused, and never shown.
    let wrong = once(
        &[
            ("AGENTD_HTTP_CA_FILE", ca_path),
            ("REDIS_PASSWORD", "not-it"),
        ],
        &["--list-checkpoints"],
    );
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("is unavailable"), "{stderr}");
    assert!(!stderr.contains("not-it"), "{stderr}");
}
