//! `[budget]` process limits, checked in real child processes: the built binary
//! applies `RLIMIT_AS` / `RLIMIT_CPU` before the run (read back from
//! `/proc/self/limits`), a limit that cannot be applied refuses to start with exit 5
//! (one whose bytes overflow is refused at build time),
//! and a memory cap below what the process needs stops it.

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{Scratch, agentd, agentd_build, scratch};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Build a workflow that returns the text of the file `read` (an absolute path), with
/// `budget` as its `[budget]` body: the scratch directory and the binary's path.
fn build_with_budget(test: &str, budget: &str, read: &str) -> (Scratch, PathBuf) {
    let dir = scratch(test);
    let wf = format!(
        "name = \"budget-{test}\"\n[budget]\n{budget}\n\
         [[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"path\"\n\
         [[nodes]]\nid = \"path\"\ntype = \"template_render\"\ntemplate = \"{read}\"\n\
         [[nodes]]\nid = \"read\"\ntype = \"read_file\"\npath_from = \"path.rendered\"\n\
         [[edges]]\nfrom = \"path\"\nto = \"read\"\n"
    );
    std::fs::write(dir.join("wf.toml"), wf).expect("write workflow");
    let agent = dir.join("agent");
    agentd_build(&dir, "wf.toml", &agent, &[]);
    (dir, agent)
}

/// The soft limit column of one `/proc/self/limits` row.
fn soft_limit(limits: &str, row: &str) -> Option<String> {
    let line = limits.lines().find(|l| l.starts_with(row))?;
    line[row.len()..]
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

#[cfg(target_os = "linux")]
#[test]
fn memory_and_cpu_budgets_are_process_limits_of_the_running_binary() {
    let (_dir, agent) = build_with_budget(
        "applied",
        "max_memory_mb = 512\nmax_cpu_secs = 7\nmax_run_time_secs = 30",
        "/proc/self/limits",
    );
    let out = Command::new(&agent).output().expect("run the agent");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).expect("outcome JSON");
    let limits = outcome["final_value"]["content"]
        .as_str()
        .expect("read_file content");
    assert_eq!(
        soft_limit(limits, "Max address space").as_deref(),
        Some("536870912"),
        "{limits}"
    );
    assert_eq!(
        soft_limit(limits, "Max cpu time").as_deref(),
        Some("7"),
        "{limits}"
    );
}

#[test]
fn a_limit_that_cannot_be_applied_refuses_to_start_with_exit_5() {
    // A CPU limit above the hard limit the process was given, in a process without
    // CAP_SYS_RESOURCE: setrlimit refuses, so nothing runs. (prlimit lowers the hard
    // limit; setpriv drops the capability even when the tests run as root.)
    let (_dir, agent) = build_with_budget("unappliable", "max_cpu_secs = 100", "/proc/self/limits");
    let out = Command::new("prlimit")
        .args([
            "--cpu=50:50",
            "--",
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(&agent)
        .output()
        .expect("run the agent under prlimit and setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("refusing to start"), "{err}");
    assert!(err.contains("[budget] max_cpu_secs = 100"), "{err}");
}

#[test]
fn a_memory_budget_whose_bytes_overflow_is_refused_at_build_time() {
    // 2^63-1 MiB does not fit in 64 bits of bytes: the compiler refuses it
    // (budget_out_of_range) instead of building a binary that cannot start.
    let dir = scratch("overflow");
    std::fs::write(
        dir.join("wf.toml"),
        "name = \"budget-overflow\"\n[budget]\nmax_memory_mb = 9223372036854775807\n\
         [[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"n\"\n\
         [[nodes]]\nid = \"n\"\ntype = \"merge\"\n",
    )
    .expect("write workflow");
    let out = agentd(&dir)
        .args(["build", "wf.toml", "-o", "agent"])
        .output()
        .expect("run agentd");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error[budget_out_of_range]"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("agent").exists());
}

#[cfg(target_os = "linux")]
#[test]
fn a_memory_cap_below_what_the_run_needs_stops_the_process() {
    // Reading a 16 MiB file needs fresh address space; 8 MiB in all is not enough.
    let big_dir = scratch("big");
    let big = big_dir.join("big.txt");
    std::fs::write(&big, "x".repeat(16 * 1024 * 1024)).expect("write big file");
    let (_dir, agent) = build_with_budget("tiny", "max_memory_mb = 8", &big.display().to_string());
    let out = Command::new(&agent).output().expect("run the agent");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("out of memory"), "{}", stderr(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("completed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
