//! Filesystem kinds (feature `fs`): `read_file`, `write_file`, `create_dir`
//! (docs/dialect.md §7 `read_file`, `write_file`, `create_dir`).
//!
//! Order per kind is the dialect's: resolve the path, pass the policy gate
//! (`fs.read` / `fs.write`), honour dry-run, then act. Every failure is
//! hard — these kinds never emit an `error` branch. They must never act
//! before the gate, and never act at all in dry-run.
//!
//! **Beyond dialect 1:** `read_file` reads regular files only, and at most
//! [`MAX_READ_BYTES`]: a FIFO (whose `open` would block the run forever), a
//! device or a huge file is a hard error instead of a hang or an exhausted
//! memory.

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::policy::FsOp;

/// `read_file` config.
#[derive(Debug)]
pub struct ReadFile {
    /// `path_from`: must resolve to a string.
    pub path_from: CtxPath,
}

/// `write_file` config.
#[derive(Debug)]
pub struct WriteFile {
    /// `path_from`: must resolve to a string.
    pub path_from: CtxPath,
    /// `content_from`: a string is written verbatim, other JSON compact.
    pub content_from: CtxPath,
}

/// `create_dir` config.
#[derive(Debug)]
pub struct CreateDir {
    /// `path_from`: must resolve to a string.
    pub path_from: CtxPath,
}

/// `read_file`: output `{"path", "content", "bytes"}`; dry-run
/// `{"path", "dry_run": true}` after the policy check.
///
/// # Errors
///
/// Unset or non-string path and read/UTF-8 failures (`Tool`); a denial
/// (`Policy`).
pub fn read_file(cx: &Cx<'_>, cfg: &'static ReadFile) -> Result<Step, Error> {
    let path = cx.require_str(READ, &cfg.path_from)?;
    read_path(cx, path).map(Step::value)
}

/// Largest file `read_file` reads (64 MiB); a larger one is a hard error.
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

const READ: &str = "read_file";
const WRITE: &str = "write_file";

/// `read_file` after path resolution: gate, dry-run, read. Shared by the
/// node and the `agent_loop` tool.
fn read_path(cx: &Cx<'_>, path: &str) -> Result<Value, Error> {
    cx.check_fs(READ, FsOp::Read, path)?;
    if cx.dry_run() {
        return Ok(json!({ "path": path, "dry_run": true }));
    }
    let content = read_regular(path).map_err(|e| Error::tool(READ, format!("read {path}: {e}")))?;
    Ok(json!({
        "path": path,
        "bytes": content.len(),
        "content": content,
    }))
}

/// The text of the regular file at `path`, at most [`MAX_READ_BYTES`].
///
/// Opened non-blocking (a FIFO must not block the open), then checked on the
/// open file, so no rename between a check and the open can slip a FIFO or a
/// device in. Non-blocking has no effect on reading a regular file.
fn read_regular(path: &str) -> std::io::Result<String> {
    let mut open = fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
    let file = open.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(too_big());
    }
    let mut content = String::new();
    file.take(MAX_READ_BYTES + 1).read_to_string(&mut content)?;
    if content.len() as u64 > MAX_READ_BYTES {
        // The file grew while being read.
        return Err(too_big());
    }
    Ok(content)
}

fn too_big() -> std::io::Error {
    std::io::Error::other(format!(
        "larger than the read_file limit of {MAX_READ_BYTES} bytes"
    ))
}

/// The `read_file` tool of `agent_loop`: args `{"path"}`; the node's gate,
/// dry-run and output.
///
/// # Errors
///
/// A missing or non-string `path` (`Tool`), and whatever the node fails with.
pub fn loop_read_file(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
    read_path(cx, loop_str(READ, args, "path")?)
}

/// The `write_file` tool of `agent_loop`: args `{"path", "content"}`
/// (`content` must be a string); the node's gate, dry-run, fs-write budget
/// and output.
///
/// # Errors
///
/// A missing or non-string argument (`Tool`), and whatever the node fails
/// with.
pub fn loop_write_file(cx: &Cx<'_>, args: &Value) -> Result<Value, Error> {
    let path = loop_str(WRITE, args, "path")?;
    cx.check_fs(WRITE, FsOp::Write, path)?;
    let content = loop_str(WRITE, args, "content")?;
    write_text(cx, path, content.to_owned())
}

fn loop_str<'a>(tool: &'static str, args: &'a Value, key: &str) -> Result<&'a str, Error> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::tool(tool, format!("argument `{key}` must be a string")))
}

/// `write_file`: output `{"path", "bytes", "written": true}`; dry-run
/// `{"path", "bytes", "dry_run": true}`. Parent directories are created.
///
/// # Errors
///
/// Unset paths, a non-string path, directory or write failures, a write
/// that would cross `[budget].max_fs_write_mb` (`Tool`); a denial (`Policy`).
pub fn write_file(cx: &Cx<'_>, cfg: &'static WriteFile) -> Result<Step, Error> {
    const TOOL: &str = WRITE;
    let path = cx.require_str(TOOL, &cfg.path_from)?;
    cx.check_fs(TOOL, FsOp::Write, path)?;
    let content = match cx.require(TOOL, &cfg.content_from)? {
        Value::String(s) => s.clone(),
        // `Value`'s Display is compact JSON.
        other => other.to_string(),
    };
    write_text(cx, path, content).map(Step::value)
}

/// `write_file` after the gate and content resolution: dry-run, budget,
/// parent directories, write. Shared by the node and the `agent_loop` tool.
fn write_text(cx: &Cx<'_>, path: &str, content: String) -> Result<Value, Error> {
    const TOOL: &str = WRITE;
    if cx.dry_run() {
        return Ok(json!({
            "path": path,
            "bytes": content.len(),
            "dry_run": true,
        }));
    }
    // `[budget].max_fs_write_mb`: the whole write is reserved before any byte
    // (or directory) is written, so a refusal leaves nothing behind.
    let bytes = u64::try_from(content.len()).unwrap_or(u64::MAX);
    if let Err(denied) = cx.shared.fs_write.reserve(bytes) {
        crate::obs::audit_pairs(
            tracing_core::Level::WARN,
            "budget.fs_write_denied",
            vec![
                ("execution_id", cx.execution_id().into()),
                ("node", cx.node_id().into()),
                ("path", path.into()),
                ("bytes", bytes.into()),
                ("used", denied.used.into()),
                ("cap_bytes", denied.cap.into()),
            ],
        );
        return Err(Error::tool(TOOL, denied.to_string()));
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent)
            .map_err(|e| Error::tool(TOOL, format!("mkdir_p {}: {e}", parent.display())))?;
    }
    fs::write(path, content.as_bytes())
        .map_err(|e| Error::tool(TOOL, format!("write {path}: {e}")))?;
    // The map built directly: `json!` would serialise each value again.
    let mut out = serde_json::Map::new();
    out.insert("path".to_owned(), Value::from(path));
    out.insert("bytes".to_owned(), Value::from(content.len()));
    out.insert("written".to_owned(), Value::Bool(true));
    Ok(Value::Object(out))
}

/// `create_dir`: `mkdir -p`; output `{"path", "created": true}`; dry-run
/// `{"path", "dry_run": true}`.
///
/// # Errors
///
/// Unset or non-string path and mkdir failures (`Tool`); a denial
/// (`Policy`).
pub fn create_dir(cx: &Cx<'_>, cfg: &'static CreateDir) -> Result<Step, Error> {
    const TOOL: &str = "create_dir";
    let path = cx.require_str(TOOL, &cfg.path_from)?;
    cx.check_fs(TOOL, FsOp::Write, path)?;
    if cx.dry_run() {
        return Ok(Step::value(json!({ "path": path, "dry_run": true })));
    }
    fs::create_dir_all(path).map_err(|e| Error::tool(TOOL, format!("mkdir_p {path}: {e}")))?;
    Ok(Step::value(json!({ "path": path, "created": true })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::{TestRun, path};
    use crate::policy::{FsPolicy, Policy};
    use std::borrow::Cow;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "agentd-fs-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            Self(dir)
        }

        fn file(&self, rel: &str) -> String {
            self.0.join(rel).to_string_lossy().into_owned()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn leak<T>(v: T) -> &'static T {
        Box::leak(Box::new(v))
    }

    fn err_text(r: Result<Step, Error>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    fn read_cfg() -> &'static ReadFile {
        leak(ReadFile {
            path_from: path("trigger.path"),
        })
    }

    fn write_cfg() -> &'static WriteFile {
        leak(WriteFile {
            path_from: path("trigger.path"),
            content_from: path("trigger.content"),
        })
    }

    fn write_only(prefix: &str) -> Policy {
        let pattern: &'static str = Box::leak(format!("{prefix}/**").into_boxed_str());
        let patterns: &'static [Cow<'static, str>] =
            Box::leak(vec![Cow::Borrowed(pattern)].into_boxed_slice());
        Policy {
            fs: FsPolicy {
                write: Cow::Borrowed(patterns),
                ..Policy::DENY_ALL.fs
            },
            ..Policy::DENY_ALL
        }
    }

    #[test]
    fn write_then_read_round_trips_and_creates_parents() {
        let scratch = Scratch::new();
        let file = scratch.file("a/b/out.txt");
        let mut run = TestRun::new(json!({"path": file, "content": "héllo"}));
        assert_eq!(
            write_file(&run.cx(), write_cfg()).ok(),
            Some(Step::value(
                json!({"path": file, "bytes": 6, "written": true})
            ))
        );
        assert_eq!(
            read_file(&run.cx(), read_cfg()).ok(),
            Some(Step::value(
                json!({"path": file, "content": "héllo", "bytes": 6})
            ))
        );
    }

    #[test]
    fn read_file_refuses_fifos_directories_and_files_over_the_cap() {
        let scratch = Scratch::new();
        fs::create_dir_all(&scratch.0).expect("scratch dir");
        // A FIFO with no writer: a blocking open would hang the run forever.
        let fifo = scratch.file("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "mkfifo {fifo}");
        let mut run = TestRun::new(json!({"path": fifo}));
        assert_eq!(
            err_text(read_file(&run.cx(), read_cfg())),
            format!("tool `read_file` failed: read {fifo}: not a regular file")
        );
        let dir = scratch.file("");
        let mut run = TestRun::new(json!({"path": dir}));
        assert_eq!(
            err_text(read_file(&run.cx(), read_cfg())),
            format!("tool `read_file` failed: read {dir}: not a regular file")
        );
        // Sparse: one byte over the cap without writing 64 MiB.
        let big = scratch.file("big");
        let f = fs::File::create(&big).expect("create");
        f.set_len(MAX_READ_BYTES + 1).expect("set_len");
        let mut run = TestRun::new(json!({"path": big}));
        assert_eq!(
            err_text(read_file(&run.cx(), read_cfg())),
            format!(
                "tool `read_file` failed: read {big}: larger than the read_file limit of {MAX_READ_BYTES} bytes"
            )
        );
    }

    #[test]
    fn write_file_serialises_non_string_content_compactly() {
        let scratch = Scratch::new();
        let file = scratch.file("o.json");
        let mut run = TestRun::new(json!({"path": file, "content": {"n": 42, "a": [1]}}));
        assert!(write_file(&run.cx(), write_cfg()).is_ok());
        assert_eq!(
            fs::read_to_string(&file).ok().as_deref(),
            Some(r#"{"a":[1],"n":42}"#)
        );
    }

    #[test]
    fn dry_run_placeholders_touch_nothing() {
        let scratch = Scratch::new();
        let file = scratch.file("x/y.txt");
        let mut run = TestRun::new(json!({"path": file, "content": "abc"})).dry();
        assert_eq!(
            write_file(&run.cx(), write_cfg()).ok(),
            Some(Step::value(
                json!({"path": file, "bytes": 3, "dry_run": true})
            ))
        );
        assert_eq!(
            read_file(&run.cx(), read_cfg()).ok(),
            Some(Step::value(json!({"path": file, "dry_run": true})))
        );
        let dir_cfg = leak(CreateDir {
            path_from: path("trigger.path"),
        });
        assert_eq!(
            create_dir(&run.cx(), dir_cfg).ok(),
            Some(Step::value(json!({"path": file, "dry_run": true})))
        );
        assert!(!scratch.0.exists());
    }

    #[test]
    fn create_dir_is_idempotent() {
        let scratch = Scratch::new();
        let dir = scratch.file("p/q");
        let cfg = leak(CreateDir {
            path_from: path("trigger.path"),
        });
        let mut run = TestRun::new(json!({"path": dir}));
        for _ in 0..2 {
            assert_eq!(
                create_dir(&run.cx(), cfg).ok(),
                Some(Step::value(json!({"path": dir, "created": true})))
            );
        }
        assert!(Path::new(&dir).is_dir());
    }

    #[test]
    fn a_missing_file_is_a_hard_tool_error() {
        let scratch = Scratch::new();
        let file = scratch.file("missing.txt");
        let mut run = TestRun::new(json!({"path": file}));
        let text = err_text(read_file(&run.cx(), read_cfg()));
        assert!(
            text.starts_with(&format!("tool `read_file` failed: read {file}: ")),
            "{text}"
        );
    }

    #[test]
    fn non_utf8_content_is_a_hard_tool_error() {
        let scratch = Scratch::new();
        let file = scratch.file("bin");
        let _ = fs::create_dir_all(&scratch.0);
        let _ = fs::write(&file, [0xff, 0xfe]);
        let mut run = TestRun::new(json!({"path": file}));
        assert!(
            err_text(read_file(&run.cx(), read_cfg()))
                .starts_with("tool `read_file` failed: read ")
        );
    }

    #[test]
    fn path_errors_name_the_kind() {
        let mut run = TestRun::new(json!({"path": 3}));
        assert_eq!(
            err_text(read_file(&run.cx(), read_cfg())),
            "tool `read_file` failed: path `trigger.path` must resolve to a string; got number"
        );
        let mut run = TestRun::new(json!({"path": "/tmp/x"}));
        assert_eq!(
            err_text(write_file(&run.cx(), write_cfg())),
            "tool `write_file` failed: path `trigger.content` is not set in the execution context"
        );
    }

    #[test]
    fn denials_happen_before_dry_run_and_before_content_resolution() {
        let scratch = Scratch::new();
        let allowed_root = scratch.file("ok");
        let outside = scratch.file("ok/../escape.txt");
        // No content at all: the gate must fire first.
        let mut run = TestRun::new(json!({"path": outside}))
            .with_policy(write_only(&allowed_root))
            .dry();
        assert_eq!(
            err_text(write_file(&run.cx(), write_cfg())),
            format!(
                "policy violation: write_file denied on {outside}: fs_write on `{outside}` \
                 not covered by any allowlist pattern"
            )
        );
        assert_eq!(
            err_text(read_file(&run.cx(), read_cfg())),
            format!(
                "policy violation: read_file denied on {outside}: fs_read denied: no `fs_read` \
                 allowlist patterns are configured"
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_inside_an_allowed_directory_cannot_lead_out_of_it() {
        let scratch = Scratch::new();
        let allowed = scratch.file("allowed");
        let outside = scratch.file("outside");
        fs::create_dir_all(&allowed).expect("allowed dir");
        fs::create_dir_all(&outside).expect("outside dir");
        std::os::unix::fs::symlink(&outside, scratch.0.join("allowed/escape")).expect("link");

        // A write through the link (to a file that does not exist yet).
        let through = scratch.file("allowed/escape/planted.txt");
        let mut run = TestRun::new(json!({"path": through, "content": "x"}))
            .with_policy(write_only(&allowed));
        let why = err_text(write_file(&run.cx(), write_cfg()));
        assert!(
            why.contains("leads through a symbolic link")
                && why.contains(&scratch.file("outside/planted.txt")),
            "{why}"
        );
        assert!(!scratch.0.join("outside/planted.txt").exists());

        // A plain file next to the link is still allowed.
        let plain = scratch.file("allowed/plain.txt");
        let mut run =
            TestRun::new(json!({"path": plain, "content": "x"})).with_policy(write_only(&allowed));
        assert!(write_file(&run.cx(), write_cfg()).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn an_allowed_directory_that_is_itself_a_link_still_covers_its_contents() {
        let scratch = Scratch::new();
        let real = scratch.file("real");
        fs::create_dir_all(&real).expect("real dir");
        std::os::unix::fs::symlink(&real, scratch.0.join("alias")).expect("link");
        // The policy names the alias (think `/var/run` → `/run`).
        let target = scratch.file("alias/out.txt");
        let mut run = TestRun::new(json!({"path": target, "content": "ok"}))
            .with_policy(write_only(&scratch.file("alias")));
        assert!(
            write_file(&run.cx(), write_cfg()).is_ok(),
            "the alias pattern must cover its real directory"
        );
        assert_eq!(
            fs::read_to_string(scratch.0.join("real/out.txt"))
                .ok()
                .as_deref(),
            Some("ok")
        );
    }

    #[test]
    fn a_write_crossing_the_fs_write_budget_is_refused_whole() {
        let scratch = Scratch::new();
        let first = scratch.file("budget/one.txt");
        let second = scratch.file("budget/two/two.txt");
        let counter: &'static crate::budget::FsWriteBudget =
            leak(crate::budget::FsWriteBudget::new());
        let limit = crate::budget::FsWriteLimit {
            cap: Some(10),
            counter,
        };
        let mut run = TestRun::new(json!({"path": first, "content": "123456"}));
        run.shared.fs_write = limit;
        assert!(write_file(&run.cx(), write_cfg()).is_ok());

        let mut run = TestRun::new(json!({"path": second, "content": "12345"}));
        run.shared.fs_write = limit;
        assert_eq!(
            err_text(write_file(&run.cx(), write_cfg())),
            "tool `write_file` failed: budget.max_fs_write_mb exceeded: writing 5 bytes would \
             bring the total to 11 of 10 bytes (6 already written)"
        );
        assert!(
            !Path::new(&second).exists(),
            "nothing of the refused write exists"
        );
        assert!(
            !Path::new(&scratch.file("budget/two")).exists(),
            "not even its directory"
        );
        assert_eq!(counter.used(), 6);

        // Dry runs write nothing, so they draw nothing.
        let mut run = TestRun::new(json!({"path": second, "content": "12345"})).dry();
        run.shared.fs_write = limit;
        assert!(write_file(&run.cx(), write_cfg()).is_ok());
        assert_eq!(counter.used(), 6);
    }

    #[test]
    fn writes_inside_the_allowlist_succeed() {
        let scratch = Scratch::new();
        let allowed_root = scratch.file("ok");
        let file = scratch.file("ok/sub/../f.txt");
        let mut run = TestRun::new(json!({"path": file, "content": "x"}))
            .with_policy(write_only(&allowed_root));
        assert!(write_file(&run.cx(), write_cfg()).is_ok());
        assert!(Path::new(&scratch.file("ok/f.txt")).is_file());
    }
}
