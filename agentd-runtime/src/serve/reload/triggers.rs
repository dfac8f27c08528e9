//! What starts a reload pass: SIGHUP (Unix) and `--reload-file PATH`
//! (docs/operations.md "Reload": created when missing, its metadata polled every 250 ms; the
//! content is ignored). Both only *request* a pass; one worker runs passes on
//! the blocking pool, and requests arriving during a pass merge into one more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{ReloadError, Reloader};

/// How often `--reload-file` is looked at.
pub const RELOAD_FILE_POLL: Duration = Duration::from_millis(250);

/// The running triggers. Dropping this stops them (a pass already running
/// finishes).
#[derive(Debug)]
pub struct ReloadTriggers {
    requests: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl ReloadTriggers {
    /// Ask for a reload pass, as SIGHUP does.
    pub fn request(&self) {
        self.requests.notify_one();
    }
}

impl Drop for ReloadTriggers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Start the reload worker, the SIGHUP listener (Unix) and, when given, the
/// `--reload-file` watcher. Must be called inside a tokio runtime (with the
/// `signal` and `time` drivers enabled).
///
/// # Errors
///
/// The SIGHUP handler cannot be installed, or `reload_file` cannot be
/// created: the server should refuse to start rather than run without the
/// reload channel the operator asked for.
pub fn spawn_reload_triggers(
    reloader: Arc<Reloader>,
    reload_file: Option<PathBuf>,
) -> Result<ReloadTriggers, ReloadError> {
    let requests = Arc::new(Notify::new());
    let mut tasks = Vec::new();

    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).map_err(ReloadError::Signal)?;
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                crate::obs::audit("reload.signal", json!({ "signal": "SIGHUP" }));
                requests.notify_one();
            }
        }));
    }

    if let Some(path) = reload_file {
        let stamp = create_and_stamp(&path)?;
        crate::obs::audit(
            "reload_file.watching",
            json!({ "path": path.display().to_string() }),
        );
        tasks.push(tokio::spawn(watch(path, stamp, requests.clone())));
    }

    let worker_requests = requests.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            worker_requests.notified().await;
            let reloader = reloader.clone();
            // Reload reads files and parses keys: keep it off the async workers.
            if let Err(e) = tokio::task::spawn_blocking(move || reloader.reload_all()).await {
                crate::obs::audit(
                    "reload.failed",
                    json!({ "component": "reloader", "reason": e.to_string() }),
                );
            }
        }
    }));

    Ok(ReloadTriggers { requests, tasks })
}

/// What "the file changed" is judged by: mtime, plus length and inode so a
/// coarse mtime or a replaced file is still noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

fn create_and_stamp(path: &std::path::Path) -> Result<Option<Stamp>, ReloadError> {
    let created = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Err(source) = created {
        crate::obs::audit(
            "reload_file.create_failed",
            json!({ "path": path.display().to_string(), "reason": source.to_string() }),
        );
        return Err(ReloadError::ReloadFile {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(stamp(path))
}

async fn watch(path: PathBuf, mut last: Option<Stamp>, requests: Arc<Notify>) {
    let mut tick = tokio::time::interval(RELOAD_FILE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = stamp(&path);
        // A file that vanished is not a request; its reappearance is.
        if now.is_some() && now != last {
            crate::obs::audit(
                "reload_file.triggered",
                json!({ "path": path.display().to_string() }),
            );
            requests.notify_one();
        }
        last = now;
    }
}
