//! A workflow binary running as a child process: its stderr drained into a
//! buffer (so it never blocks on a full pipe), the address its start banner
//! names, signals, and a kill on drop. Also [`eventually`], the bounded poll.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a binary may take to print its banner.
const BANNER: Duration = Duration::from_secs(60);

/// A running binary, killed (and reaped) on drop.
pub struct Served {
    pub child: Child,
    /// Where it listens: the `listening on http(s)://ADDR/` of its banner
    /// (`0.0.0.0:0` for a binary started with [`Served::spawn`]).
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// `binary --bind 127.0.0.1:0 ARGS...` in `dir` with `env` added; waits for
    /// the banner and takes the address from it.
    pub fn start(binary: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = Command::new(binary);
        cmd.current_dir(dir)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied());
        Served::listening(&mut cmd)
    }

    /// Spawn `cmd` and wait for its `listening on http(s)://ADDR/` banner.
    pub fn listening(cmd: &mut Command) -> Served {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut served = Served::spawn_with(cmd, move |line| {
            if let Some(addr) = banner_addr(line) {
                let _ = tx.send(addr);
            }
        });
        match rx.recv_timeout(BANNER) {
            Ok(addr) => served.addr = addr,
            Err(_) => panic!("no banner within {BANNER:?}; stderr:\n{}", served.stderr()),
        }
        served
    }

    /// Spawn `cmd` (stdin and stdout null, stderr collected) without waiting for
    /// anything.
    pub fn spawn(cmd: &mut Command) -> Served {
        Served::spawn_with(cmd, |_| {})
    }

    fn spawn_with(cmd: &mut Command, mut on_line: impl FnMut(&str) + Send + 'static) -> Served {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                on_line(&line);
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        Served {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr,
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the binary wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Send `sig` to the binary.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) with the pid of a child this test spawned and has not reaped.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Wait (at most `limit`) for the binary to exit; its exit code, `None` when
    /// it is still running or a signal ended it.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of the `/metrics` sample whose line starts with `prefix`.
    pub fn metric(&self, prefix: &str) -> f64 {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let text = agent
            .get(&self.url("/metrics"))
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample `{prefix}` in:\n{text}"))
    }

    /// Whether the binary has a child process (a `shell_run` command running).
    pub fn has_children(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return false;
        };
        tasks.filter_map(Result::ok).any(|t| {
            std::fs::read_to_string(t.path().join("children")).is_ok_and(|c| !c.trim().is_empty())
        })
    }

    /// Resident set size of the binary, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib / 1024.0
    }

    /// Poll `check` like [`eventually`], with the binary's stderr in the panic.
    pub fn wait_for(&self, what: &str, check: impl FnMut() -> bool) {
        if !poll(Duration::from_secs(60), check) {
            panic!("timed out waiting for {what}; stderr:\n{}", self.stderr());
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a `listening on http://ADDR/...` or `https://` banner line.
fn banner_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    rest.split('/').next()?.parse().ok()
}

/// Poll `check` every 50 ms until it holds; panics after 60 s (a bound only so
/// that a bug cannot hang the test).
pub fn eventually(what: &str, check: impl FnMut() -> bool) {
    if !poll(Duration::from_secs(60), check) {
        panic!("timed out waiting for: {what}");
    }
}

fn poll(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}
