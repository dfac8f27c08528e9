//! Where log lines go: stderr, stdout, or a file (optionally rotated by
//! time), each line written whole under a lock.
//!
//! Files are opened for appending, parent directories created, at start:
//! a file that cannot be opened stops the binary before it does anything
//! (exit 5), rather than running without the log the operator asked for.
//! With rotation, lines go to `<file>.YYYY-MM-DD[-HH[-MM]]` (UTC) next to
//! `<file>`, the names tracing-appender uses; the next period's file is
//! opened by the first line written in it. Writes are synchronous and go
//! straight to the OS (no user-space buffer), so a crash loses nothing
//! already logged.
//!
//! A failed write never stops the run: the first failure of each sink is
//! reported once on stderr and logging carries on.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::Rotation;
use super::format::Utc;

/// A log destination as written in `--log-target` / `[logging].target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard error.
    Stderr,
    /// Standard output.
    Stdout,
    /// Append to this file.
    File(PathBuf),
}

impl Target {
    /// `stderr` | `stdout` (any case) | `file:PATH` (the prefix is
    /// case-sensitive and the path must not be empty).
    ///
    /// # Errors
    ///
    /// A message saying what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("stderr") {
            return Ok(Self::Stderr);
        }
        if trimmed.eq_ignore_ascii_case("stdout") {
            return Ok(Self::Stdout);
        }
        match trimmed.strip_prefix("file:") {
            Some(path) if !path.trim().is_empty() => Ok(Self::File(PathBuf::from(path.trim()))),
            Some(_) => Err(format!("`{text}`: `file:` needs a path")),
            None => Err(format!(
                "`{text}` is not a log target: expected stderr, stdout or file:PATH"
            )),
        }
    }
}

/// An open destination.
#[derive(Debug)]
pub struct Sink {
    kind: Kind,
    /// Set after the first failed write has been reported.
    reported: AtomicBool,
}

#[derive(Debug)]
enum Kind {
    Stderr,
    Stdout,
    File(Mutex<FileSink>),
}

#[derive(Debug)]
struct FileSink {
    base: PathBuf,
    rotation: Rotation,
    /// The rotation period the open file belongs to.
    period: u64,
    file: File,
}

impl Sink {
    /// Open `target`; `rotation` applies to files only.
    ///
    /// # Errors
    ///
    /// A file (or its parent directory) that cannot be created or opened.
    pub fn open(target: &Target, rotation: Rotation) -> Result<Self, String> {
        let kind = match target {
            Target::Stderr => Kind::Stderr,
            Target::Stdout => Kind::Stdout,
            Target::File(base) => {
                let now = SystemTime::now();
                let period = period_of(rotation, now);
                let path = rotated_path(base, rotation, now);
                remember(base);
                let file = open_append(&path)
                    .map_err(|e| format!("cannot open log file `{}`: {e}", path.display()))?;
                Kind::File(Mutex::new(FileSink {
                    base: base.clone(),
                    rotation,
                    period,
                    file,
                }))
            }
        };
        Ok(Self {
            kind,
            reported: AtomicBool::new(false),
        })
    }

    /// Write one whole line.
    pub fn write_line(&self, line: &str) {
        let result = match &self.kind {
            Kind::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            Kind::Stdout => {
                let mut out = io::stdout().lock();
                // stdout is line-buffered; the line must not wait in it.
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Kind::File(file) => {
                let mut file = file
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                file.write_line(line, SystemTime::now())
            }
        };
        if let Err(e) = result
            && !self.reported.swap(true, Ordering::Relaxed)
        {
            let _ = writeln!(io::stderr(), "agentd: writing a log line failed: {e}");
        }
    }
}

impl FileSink {
    fn write_line(&mut self, line: &str, now: SystemTime) -> io::Result<()> {
        let period = period_of(self.rotation, now);
        if period != self.period {
            // A new period: switch files. If the new one cannot be opened the
            // line still goes to the old one, and the error is reported.
            let path = rotated_path(&self.base, self.rotation, now);
            let file = open_append(&path);
            self.period = period;
            match file {
                Ok(file) => self.file = file,
                Err(e) => {
                    self.file.write_all(line.as_bytes())?;
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot open log file `{}`: {e}", path.display()),
                    ));
                }
            }
        }
        self.file.write_all(line.as_bytes())
    }
}

/// The base paths of every file sink opened so far: the kernel sandbox
/// (`crate::sandbox`) keeps their directories writable for rotation.
static FILE_SINKS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn remember(base: &Path) {
    if let Ok(mut list) = FILE_SINKS.lock()
        && !list.iter().any(|p| p == base)
    {
        list.push(base.to_path_buf());
    }
}

/// The base paths of the file sinks opened by this process.
#[must_use]
pub fn file_sinks() -> Vec<PathBuf> {
    FILE_SINKS.lock().map(|l| l.clone()).unwrap_or_default()
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The rotation period `now` falls in (0 for `Never`).
fn period_of(rotation: Rotation, now: SystemTime) -> u64 {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match rotation {
        Rotation::Never => 0,
        Rotation::Daily => secs / 86_400,
        Rotation::Hourly => secs / 3600,
        Rotation::Minutely => secs / 60,
    }
}

/// `base` itself, or `base.YYYY-MM-DD[-HH[-MM]]` for the period of `now`.
#[must_use]
pub fn rotated_path(base: &Path, rotation: Rotation, now: SystemTime) -> PathBuf {
    let u = Utc::from(now);
    let date = format!("{:04}-{:02}-{:02}", u.year, u.month, u.day);
    let suffix = match rotation {
        Rotation::Never => return base.to_path_buf(),
        Rotation::Daily => date,
        Rotation::Hourly => format!("{date}-{:02}", u.hour),
        Rotation::Minutely => format!("{date}-{:02}-{:02}", u.hour, u.minute),
    };
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agentd-sink-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn targets_parse_like_the_dialect() {
        assert_eq!(Target::parse("stderr"), Ok(Target::Stderr));
        assert_eq!(Target::parse("STDOUT"), Ok(Target::Stdout));
        assert_eq!(
            Target::parse("file:/var/log/a.log"),
            Ok(Target::File(PathBuf::from("/var/log/a.log")))
        );
        assert!(Target::parse("file:").is_err());
        assert!(
            Target::parse("FILE:/x").is_err(),
            "the prefix is case-sensitive"
        );
        assert!(
            Target::parse("syslog")
                .err()
                .unwrap_or_default()
                .contains("stderr, stdout or file:PATH")
        );
    }

    #[test]
    fn rotated_file_names_carry_the_utc_period() {
        let base = Path::new("/logs/agent.log");
        // 2024-03-05 07:08:09 UTC
        let t = at(1_709_622_489);
        assert_eq!(rotated_path(base, Rotation::Never, t), base);
        assert_eq!(
            rotated_path(base, Rotation::Daily, t),
            Path::new("/logs/agent.log.2024-03-05")
        );
        assert_eq!(
            rotated_path(base, Rotation::Hourly, t),
            Path::new("/logs/agent.log.2024-03-05-07")
        );
        assert_eq!(
            rotated_path(base, Rotation::Minutely, t),
            Path::new("/logs/agent.log.2024-03-05-07-08")
        );
    }

    #[test]
    fn a_file_sink_creates_parents_appends_and_switches_files_per_period() {
        let dir = scratch("rotate");
        let base = dir.join("deep/agent.log");
        let t0 = at(1_709_622_489); // 07:08:09
        let file = open_append(&rotated_path(&base, Rotation::Minutely, t0));
        let Ok(file) = file else {
            panic!("open: {file:?}");
        };
        let mut sink = FileSink {
            base: base.clone(),
            rotation: Rotation::Minutely,
            period: period_of(Rotation::Minutely, t0),
            file,
        };
        assert!(sink.write_line("one\n", t0).is_ok());
        assert!(sink.write_line("two\n", at(1_709_622_489 + 50)).is_ok()); // 07:08:59
        assert!(sink.write_line("three\n", at(1_709_622_489 + 51)).is_ok()); // 07:09:00
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(
            read(dir.join("deep/agent.log.2024-03-05-07-08")),
            "one\ntwo\n"
        );
        assert_eq!(read(dir.join("deep/agent.log.2024-03-05-07-09")), "three\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unopenable_file_is_an_error_naming_it() {
        let dir = scratch("unopenable");
        let _ = std::fs::create_dir_all(&dir);
        // A directory cannot be opened for appending.
        let err = Sink::open(&Target::File(dir.clone()), Rotation::Never)
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("cannot open log file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn opening_appends_to_an_existing_file() {
        let dir = scratch("append");
        let path = dir.join("a.log");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(&path, "old\n");
        match Sink::open(&Target::File(path.clone()), Rotation::Never) {
            Ok(sink) => sink.write_line("new\n"),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            "old\nnew\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
