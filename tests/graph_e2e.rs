//! `agentd graph` through the real binary: Mermaid output accepted by mermaid's own
//! parser (installed by tests/deps/mermaid.sh), and SVG drawn for every example.

use std::path::{Path, PathBuf};
use std::process::Command;

const AGENTD: &str = env!("CARGO_BIN_EXE_agentd");

mod support;

use support::{scratch, workspace as repo};

fn workflows() -> Vec<PathBuf> {
    support::compat::toml_files(&[repo().join("workflows")])
}

fn graph(file: &Path, format: &str, out: &Path) {
    let status = Command::new(AGENTD)
        .args(["graph", "--format", format, "-o"])
        .arg(out)
        .arg(file)
        .status()
        .expect("run agentd graph");
    assert!(
        status.success(),
        "agentd graph --format {format} {}",
        file.display()
    );
}

/// Every trick the Mermaid writer must survive: quotes and markup in ids, a loop
/// edge, a self-loop, an error edge, a child workflow, labels with `#` and `|`.
const TRICKY: &str = r##"name = "tricky"
[[start_nodes]]
name = "main <1>"
source = "manual"
entry_node = "a"

[[nodes]]
id = "a"
type = "condition"
expr = "trigger.x"

[[nodes]]
id = "b \"q\" <&> #1 | end"
type = "merge"

[[nodes]]
id = "sub"
type = "call"
workflow = "child.toml"

[[edges]]
from = "a"
to = "b \"q\" <&> #1 | end"
when = "true"

[[edges]]
from = "b \"q\" <&> #1 | end"
to = "a"
max_iterations = 2

[[edges]]
from = "a"
to = "sub"
when = "error"

[[edges]]
from = "sub"
to = "sub"
when = "a|b #2"
max_iterations = 1
"##;

#[test]
fn mermaid_output_of_every_example_parses_with_mermaid() {
    let tmp = scratch("mermaid");
    let mut charts = Vec::new();
    let tricky = tmp.join("tricky.toml");
    std::fs::write(&tricky, TRICKY).expect("write");
    for (i, file) in workflows().iter().chain([&tricky]).enumerate() {
        let out = tmp.join(format!("{i}.mmd"));
        graph(file, "mermaid", &out);
        charts.push(out);
    }
    let deps = repo().join("target/test-deps/mermaid");
    // Never passes by skipping: without the parser the test fails and says how to
    // install it (the README's test command, tests/run.sh, always does).
    assert!(
        deps.join("node_modules/mermaid").is_dir(),
        "mermaid is not installed: run tests/deps/mermaid.sh (tests/run.sh does)"
    );
    let script = std::fs::read_to_string(repo().join("tests/support/mermaid-parse.mjs"))
        .expect("parser script");
    let out = Command::new("node")
        .args(["--input-type=module", "-e", &script, "--"])
        .args(&charts)
        .current_dir(&deps)
        .output()
        .expect("run node (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok, charts.len(), "{stdout}");
    assert!(
        stdout.lines().all(|l| l.ends_with("flowchart-v2")),
        "{stdout}"
    );
}

#[test]
fn svg_output_of_every_example_is_written_and_an_unreadable_file_exits_2() {
    let tmp = scratch("svg");
    for (i, file) in workflows().iter().enumerate() {
        let out = tmp.join(format!("{i}.svg"));
        graph(file, "svg", &out);
        let svg = std::fs::read_to_string(&out).expect("svg written");
        assert!(
            svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
    let status = Command::new(AGENTD)
        .args(["graph", "--format", "svg"])
        .arg(tmp.join("missing.toml"))
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(2));
}

#[test]
fn the_readme_picture_is_the_current_mermaid_output_of_map_fanout() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let block = readme
        .split("```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a mermaid block in README.md");
    let out = Command::new(AGENTD)
        .args(["graph", "--format", "mermaid"])
        .arg(repo().join("workflows/map-fanout.toml"))
        .output()
        .expect("agentd graph");
    assert_eq!(block, String::from_utf8_lossy(&out.stdout));
}
