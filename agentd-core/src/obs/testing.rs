//! Test helpers for the logger (feature `testing`, or this crate's own
//! tests): a scratch directory, a logger writing to files in it, and a
//! thread-scoped subscriber around a closure (never the process-wide one, so
//! tests do not interfere). Used by the runtime facade's tests too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use tracing_core::Dispatch;

use super::filter::Filter;
use super::redact::Redactor;
use super::sink::{Sink, Target};
use super::subscriber::{AuditLog, Logger, MainLog, ObsSubscriber};
use super::{LogFormat, Rotation};

/// A directory under the temp dir, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty scratch directory.
    #[must_use]
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentd-obs-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    /// `name` inside the directory.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file sink at `path`, never rotated.
pub fn sink(path: &Path) -> Sink {
    match Sink::open(&Target::File(path.to_path_buf()), Rotation::Never) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A logger at `level` writing `main.log` and `audit/audit.jsonl` in `dir`,
/// redacting `audit_extra` besides the default field names.
pub fn logger(
    dir: &Scratch,
    level: &str,
    format: LogFormat,
    audit_extra: &'static [&'static str],
) -> Logger {
    let filter = match Filter::parse(level) {
        Ok(p) => p.filter,
        Err(e) => panic!("{e}"),
    };
    Logger {
        main: Some(MainLog {
            filter,
            format,
            sink: sink(&dir.path("main.log")),
            redact: Redactor::new(audit_extra, false),
        }),
        audit: Some(AuditLog {
            sink: sink(&dir.path("audit/audit.jsonl")),
            redact: Redactor::new(audit_extra, true),
        }),
        otel: None,
    }
}

/// The lines of the file at `path` (none when it cannot be read).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The lines of the file at `path`, each parsed as JSON (panics on one that is not).
pub fn json_lines(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Run `f` with `logger` as this thread's subscriber.
pub fn with_logger(logger: Logger, f: impl FnOnce()) {
    let dispatch = Dispatch::new(ObsSubscriber::fixed(Arc::new(logger)));
    tracing_core::dispatcher::with_default(&dispatch, f);
}
