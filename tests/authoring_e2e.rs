//! The workflow author's commands through the real binary: `agentd completions`,
//! `agentd man`, `agentd init` and `agentd run`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;

use support::build::cache_dir;
use support::scratch;

const AGENTD: &str = env!("CARGO_BIN_EXE_agentd");

fn agentd(args: &[&str]) -> Output {
    Command::new(AGENTD)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run agentd")
}

/// Every subcommand `agentd --help` lists.
fn subcommands() -> Vec<String> {
    let help = String::from_utf8(agentd(&["--help"]).stdout).expect("utf8");
    help.split("Commands:")
        .nth(1)
        .expect("commands section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn bash_completion_is_valid_bash_and_every_shell_completes_every_subcommand() {
    let subs = subcommands();
    assert!(subs.len() >= 12, "{subs:?}");
    for shell in ["bash", "zsh", "fish"] {
        let out = agentd(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).expect("utf8");
        for sub in &subs {
            assert!(
                script.contains(sub.as_str()),
                "{shell} completion lacks `{sub}`"
            );
        }
    }
    let script = agentd(&["completions", "bash"]).stdout;
    let dir = scratch("bash");
    let file = dir.join("agentd.bash");
    std::fs::write(&file, script).expect("write");
    // Source it and ask for the completions of `agentd gr`.
    let probe = format!(
        "source {}; COMP_WORDS=(agentd gr); COMP_CWORD=1; COMP_LINE='agentd gr'; COMP_POINT=9; \
         _agentd agentd gr agentd; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .expect("bash");
    let replies = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(replies.trim(), "graph", "{replies}");
}

#[test]
fn man_pages_cover_every_subcommand() {
    let out = agentd(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).expect("utf8");
    assert!(page.contains(".TH agentd 1"), "{page}");
    for sub in subcommands() {
        assert!(
            page.contains(&format!("agentd\\-{sub}")),
            "agentd.1 lacks {sub}"
        );
    }
    let dir = scratch("man");
    let out = agentd(&["man", "--dir", dir.to_str().expect("utf8 path")]);
    assert!(out.status.success());
    for sub in subcommands() {
        let page = std::fs::read_to_string(dir.join(format!("agentd-{sub}.1")))
            .unwrap_or_else(|e| panic!("agentd-{sub}.1: {e}"));
        assert!(page.contains(&format!(".TH agentd-{sub} 1")), "{page}");
        assert!(page.contains(".SH SYNOPSIS"), "{page}");
    }
    assert!(Path::new(&dir.join("agentd.1")).is_file());
}

const TEMPLATES: [&str; 5] = ["hello", "webhook", "llm-classifier", "approval", "map"];

#[test]
fn every_init_template_passes_agentd_test_as_created() {
    let root = scratch("init");
    let mut test_dirs = Vec::new();
    let mut scenarios = 0;
    for t in TEMPLATES {
        let dir = root.join(format!("my-{t}"));
        let out = agentd(&["init", "--template", t, dir.to_str().expect("utf8 path")]);
        assert!(
            out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for f in ["workflow.toml", "README.md", ".github/workflows/agentd.yml"] {
            assert!(dir.join(f).is_file(), "{t}: no {f}");
        }
        let check = agentd(&[
            "check",
            "--deny-warnings",
            dir.join("workflow.toml").to_str().expect("utf8"),
        ]);
        assert!(
            check.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        scenarios += std::fs::read_dir(dir.join("tests"))
            .expect("tests dir")
            .count();
        test_dirs.push(dir.join("tests"));
    }
    // Initialising into a non-empty directory never overwrites anything.
    let again = agentd(&["init", root.join("my-hello").to_str().expect("utf8")]);
    assert_eq!(again.status.code(), Some(2));
    // One harness for every template's scenarios.
    let out = Command::new(AGENTD)
        .arg("test")
        .args(&test_dirs)
        .env("AGENTD_CACHE_DIR", cache_dir())
        .output()
        .expect("agentd test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{scenarios} passed, 0 failed")),
        "{stdout}"
    );
}

#[test]
fn run_builds_then_runs_with_the_binarys_arguments_and_exit_code() {
    let dir = scratch("run");
    let ok = agentd(&["init", dir.join("hi").to_str().expect("utf8")]);
    assert!(ok.status.success());
    let out = Command::new(AGENTD)
        .args([
            "run",
            "-q",
            "workflow.toml",
            "--",
            "--input",
            r#"{"name": "Ada"}"#,
        ])
        .current_dir(dir.join("hi"))
        .env("AGENTD_CACHE_DIR", cache_dir())
        .output()
        .expect("agentd run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Hello, Ada!"), "{stdout}");

    // The binary's exit code is agentd run's: a `fail` node ends the run with 5.
    let failing = dir.join("failing.toml");
    std::fs::write(
        &failing,
        "name = \"failing\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\
         entry_node = \"no\"\n[[nodes]]\nid = \"no\"\ntype = \"fail\"\nreason = \"on purpose\"\n",
    )
    .expect("write");
    let out = Command::new(AGENTD)
        .args(["run", "-q"])
        .arg(&failing)
        .env("AGENTD_CACHE_DIR", cache_dir())
        .output()
        .expect("agentd run");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("on purpose"));
}

#[test]
fn run_watch_rebuilds_and_reruns_when_the_workflow_or_a_child_changes() {
    use std::io::BufRead;
    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    let root = scratch("watch");
    let dir = root.join("tasks");
    let ok = agentd(&["init", "--template", "map", dir.to_str().expect("utf8")]);
    assert!(ok.status.success());
    let mut child = Command::new(AGENTD)
        .args(["run", "--watch", "-q", "workflow.toml", "--", "--input"])
        .arg(r#"{"items": [{"title": "one"}]}"#)
        .current_dir(&dir)
        .env("AGENTD_CACHE_DIR", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agentd run --watch");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Kill(child);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("`{needle}` never appeared"),
            }
        }
    };
    wait_for("- one");
    // The child workflow changes: rebuilt, rerun.
    let item = dir.join("item.toml");
    let text = std::fs::read_to_string(&item).expect("read");
    std::fs::write(&item, text.replace("\"- {{title}}\"", "\"* {{title}}\"")).expect("write");
    wait_for("* one");
    // The workflow itself changes: the new input path is used.
    let wf = dir.join("workflow.toml");
    let text = std::fs::read_to_string(&wf).expect("read");
    std::fs::write(&wf, text.replace("max_items = 100", "max_items = 1")).expect("write");
    std::fs::write(
        &item,
        std::fs::read_to_string(&item)
            .expect("read")
            .replace("* {{", "+ {{"),
    )
    .expect("write");
    wait_for("+ one");
}
