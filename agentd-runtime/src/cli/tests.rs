//! The command line driven in-process (the environment is left alone:
//! changing it is `unsafe` and racy, so env twins are tested through the
//! helpers they share with the flags).

use super::*;
use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::{
    BuildInfo, EdgeMeta, GraphId, GraphMeta, Kind, NodeIdx, NodeMeta, Slot, StartMeta,
};
use crate::workflow::Workflow;

const fn node(id: &'static str, i: u32) -> NodeMeta {
    NodeMeta {
        id,
        kind: Kind::Merge,
        slot: Slot::Node(i),
        retry: None,
    }
}

const fn start(name: &'static str, source: Source, entry: u32) -> StartMeta {
    StartMeta {
        name,
        source,
        entry: Some(NodeIdx(entry)),
        roots: 3,
    }
}

static NODES: [NodeMeta; 3] = [node("echo", 0), node("stop", 1), node("err", 2)];
static EDGES: [&[EdgeMeta]; 3] = [&[], &[], &[]];
static STARTS: [StartMeta; 3] = [
    start("main", Source::Manual, 0),
    start("stop", Source::Http, 1),
    start("err", Source::Event, 2),
];
static GRAPHS: [GraphMeta; 1] = [GraphMeta {
    name: "cli",
    starts: &STARTS,
    nodes: &NODES,
    out_edges: &EDGES,
    edge_count: 0,
}];
static INFO: BuildInfo = BuildInfo {
    workflow: "cli",
    compiler_version: "9.9.9",
    sources: &[],
    capabilities: &[],
    program_hash: "",
    signer: None,
    policy_key: None,
};

struct Cli;

impl Workflow for Cli {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;

    fn exec(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        match node.0 {
            0 => Ok(Step::value(json!({
                "input": cx.raw_input().clone(),
                "dry_run": cx.dry_run(),
            }))),
            1 => Ok(Step::Fail {
                reason: "stopped".into(),
            }),
            2 => Err(Error::tool("read_file", "broken")),
            _ => crate::nodes::unknown_node(g, node),
        }
    }
}

static TWO_MANUAL_STARTS: [StartMeta; 2] =
    [start("a", Source::Manual, 0), start("b", Source::Manual, 0)];
static AMBIGUOUS_GRAPHS: [GraphMeta; 1] = [GraphMeta {
    name: "two",
    starts: &TWO_MANUAL_STARTS,
    nodes: &NODES,
    out_edges: &EDGES,
    edge_count: 0,
}];

struct TwoManual;

impl Workflow for TwoManual {
    const GRAPHS: &'static [GraphMeta] = &AMBIGUOUS_GRAPHS;
    const INFO: &'static BuildInfo = &INFO;

    fn exec(&self, g: GraphId, node: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
        crate::nodes::unknown_node(g, node)
    }
}

static ONE_HTTP_START: [StartMeta; 1] = [start("hook", Source::Http, 0)];
static HTTP_GRAPHS: [GraphMeta; 1] = [GraphMeta {
    name: "hook",
    starts: &ONE_HTTP_START,
    nodes: &NODES,
    out_edges: &EDGES,
    edge_count: 0,
}];

struct OneHttp;

impl Workflow for OneHttp {
    const GRAPHS: &'static [GraphMeta] = &HTTP_GRAPHS;
    const INFO: &'static BuildInfo = &INFO;

    fn exec(&self, g: GraphId, node: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
        crate::nodes::unknown_node(g, node)
    }
}

struct Output {
    code: u8,
    stdout: String,
    stderr: String,
}

fn cli_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("agent").chain(args.iter().copied());
    let code = run(&Cli, argv, &mut stdin.as_bytes(), &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

fn cli(args: &[&str]) -> Output {
    cli_with_stdin(args, "")
}

#[test]
fn completed_prints_pretty_outcome_and_exits_0() {
    let out = cli(&["--input", r#"{"b": 1, "a": "x"}"#]);
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "{\n  \"status\": \"completed\",\n  \"final_value\": {\n    \"dry_run\": false,\n    \
         \"input\": {\n      \"a\": \"x\",\n      \"b\": 1\n    }\n  },\n  \"last_node\": \
         \"echo\"\n}\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn no_input_is_null_and_non_json_text_is_raw() {
    let out = cli(&[]);
    assert!(out.stdout.contains("\"input\": null"), "{}", out.stdout);
    let out = cli(&["--input", "hello there"]);
    assert!(
        out.stdout.contains("\"raw\": \"hello there\""),
        "{}",
        out.stdout
    );
}

#[test]
fn stdin_is_read_only_when_asked_for() {
    let out = cli_with_stdin(&[], r#"{"from": "stdin"}"#);
    assert!(out.stdout.contains("\"input\": null"), "{}", out.stdout);
    let out = cli_with_stdin(&["--input", "-"], r#"{"from": "stdin"}"#);
    assert!(out.stdout.contains("\"from\": \"stdin\""), "{}", out.stdout);
    let out = cli_with_stdin(&["-i", "-"], "[1, 2]");
    assert!(out.stdout.contains("\"input\": [\n"), "{}", out.stdout);
}

#[test]
fn input_file_is_parsed_and_unreadable_files_exit_2() {
    let path = std::env::temp_dir().join(format!("agentd-cli-input-{}.json", std::process::id()));
    let _ = std::fs::write(&path, "{\"k\": [true]}\n");
    let text = path.to_string_lossy().into_owned();
    let out = cli(&["--input-file", &text]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert!(out.stdout.contains("\"k\": [\n"), "{}", out.stdout);

    let out = cli(&["-i", "/nonexistent/agentd/input.json"]);
    assert_eq!(out.code, EXIT_USAGE);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with("agentd: cannot read input file `/nonexistent/agentd/input.json`: "),
        "{}",
        out.stderr
    );
}

#[test]
fn input_and_input_file_are_exclusive() {
    let out = cli(&["--input", "{}", "--input-file", "x.json"]);
    assert_eq!(out.code, EXIT_USAGE);
    assert_eq!(
        out.stderr,
        "agentd: --input and --input-file cannot be used together\n"
    );
}

#[test]
fn failed_prints_the_outcome_and_exits_5() {
    let out = cli(&["--start", "stop"]);
    assert_eq!(out.code, EXIT_SEMANTIC);
    assert_eq!(
        out.stdout,
        "{\n  \"status\": \"failed\",\n  \"reason\": \"stopped\",\n  \"last_node\": \"stop\"\n}\n"
    );
}

#[test]
fn hard_errors_print_only_to_stderr_and_exit_5() {
    let out = cli(&["-s", "err"]);
    assert_eq!(out.code, EXIT_SEMANTIC);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr, "agentd: tool `read_file` failed: broken\n");

    let out = cli(&["--start", "nope"]);
    assert_eq!(out.code, EXIT_SEMANTIC);
    assert_eq!(
        out.stderr,
        "agentd: workflow `cli`: unknown start node `nope`\n"
    );
}

#[test]
fn dry_run_reaches_the_nodes() {
    let out = cli(&["--dry-run"]);
    assert!(out.stdout.contains("\"dry_run\": true"), "{}", out.stdout);
}

#[test]
fn validate_only_prints_ok_and_the_workflow_name() {
    let out = cli(&["--validate-only", "--input-file", "/nonexistent"]);
    assert_eq!(out.code, EXIT_OK);
    assert_eq!(
        out.stdout,
        "{\n  \"ok\": true,\n  \"workflow\": \"cli\"\n}\n"
    );
}

#[test]
fn version_and_help_exit_0() {
    let out = cli(&["--version"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (EXIT_OK, "cli (agentd 9.9.9)\n")
    );
    let out = cli(&["--help"]);
    assert_eq!(out.code, EXIT_OK);
    assert!(out.stdout.contains("--input-file"), "{}", out.stdout);
    assert!(out.stdout.contains("AGENTD_TIMEOUT_SECS"), "{}", out.stdout);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(cli(&["--bogus"]).code, EXIT_USAGE);
    assert_eq!(cli(&["--start"]).code, EXIT_USAGE);
    let out = cli(&["--timeout-secs", "soon"]);
    assert_eq!(out.code, EXIT_USAGE);
    assert_eq!(
        out.stderr,
        "agentd: invalid value `soon` for --timeout-secs: expected whole seconds up to 315360000\n"
    );
    // A deadline that far away would overflow `now + timeout` in the HTTP clients.
    let out = cli(&["--timeout-secs", "18446744073709551615"]);
    assert_eq!(out.code, EXIT_USAGE, "{}", out.stdout);
    assert!(out.stderr.contains("up to 315360000"), "{}", out.stderr);
}

#[test]
fn an_input_over_the_cap_is_a_usage_error_not_a_huge_read() {
    let big = vec![b' '; usize::try_from(MAX_INPUT_BYTES).unwrap_or(usize::MAX) + 1];
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run(
        &Cli,
        ["agent", "--input", "-"],
        &mut &big[..],
        &mut out,
        &mut err,
    );
    assert_eq!(code, EXIT_USAGE);
    assert_eq!(
        String::from_utf8_lossy(&err),
        format!(
            "agentd: cannot read input from stdin: the input is larger than {MAX_INPUT_BYTES} bytes\n"
        )
    );
}

#[test]
fn a_zero_timeout_on_the_command_line_is_clamped_to_one_second() {
    let out = cli(&["--timeout-secs", "0"]);
    assert_eq!(out.code, EXIT_OK, "{}", out.stdout);
    assert!(out.stdout.contains("\"completed\""));
}

#[test]
fn start_choice_prefers_the_only_manual_start() {
    assert_eq!(pick_start(Cli::DEF), Ok("main"));
    assert_eq!(pick_start(OneHttp::DEF), Ok("hook"));
    assert_eq!(
        pick_start(TwoManual::DEF),
        Err(
            "cannot pick a start node automatically (2 manual / 2 total); pass --start NAME".into()
        )
    );
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run(&TwoManual, ["agent"], &mut &b""[..], &mut out, &mut err);
    assert_eq!(code, EXIT_USAGE);
    assert_eq!(
        String::from_utf8_lossy(&err),
        "agentd: cannot pick a start node automatically (2 manual / 2 total); pass --start NAME\n"
    );
}

#[test]
fn env_booleans_follow_the_dialect_rule() {
    for yes in ["1", "true", "TRUE", "True"] {
        assert_eq!(dialect_bool(yes), Ok(true), "{yes}");
    }
    for no in ["0", "yes", "on", "tRUE", "", " 1"] {
        assert_eq!(dialect_bool(no), Ok(false), "{no}");
    }
}

#[test]
fn exit_codes_per_outcome() {
    let paused = Outcome::Paused {
        run_id: "exec-1".into(),
        last_node: None,
        reason: None,
    };
    assert_eq!(exit_code(&paused), EXIT_PAUSED);
    let timed_out = Outcome::TimedOut {
        elapsed_ms: 1,
        last_node: None,
    };
    assert_eq!(exit_code(&timed_out), EXIT_SEMANTIC);
}

#[test]
fn parse_input_wraps_non_json_text() {
    assert_eq!(parse_input("3".into()), json!(3));
    assert_eq!(parse_input("{oops".into()), json!({"raw": "{oops"}));
    assert_eq!(parse_input(String::new()), json!({"raw": ""}));
}

#[test]
fn provenance_prints_build_info_as_json_and_runs_nothing() {
    let out = cli(&["--provenance", "--input", "{}"]);
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("provenance is JSON");
    assert_eq!(doc["workflow"], "cli");
    assert_eq!(doc["compiler_version"], "9.9.9");
    assert_eq!(doc["runtime_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["signer_key_fingerprint"], serde_json::Value::Null);
    assert_eq!(doc["sources"], json!([]));
    // The digest of the executable running the test: the file's own SHA-256.
    let exe = std::fs::read("/proc/self/exe").expect("read own executable");
    let want: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&exe)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(doc["binary_sha256"], json!(want));
    assert!(!out.stdout.contains("completed"), "{}", out.stdout);
}

#[test]
fn a_bad_sandbox_mode_is_a_usage_error() {
    let out = cli(&["--sandbox", "strict"]);
    assert_eq!(out.code, EXIT_USAGE);
    assert!(
        out.stderr
            .contains("invalid value `strict` for --sandbox: expected enforce, best-effort or off"),
        "{}",
        out.stderr
    );
}

#[test]
fn print_sandbox_prints_the_plan_and_runs_nothing() {
    // No `[policy]`: allow-all, so no Landlock rule, only the seccomp list.
    let out = cli(&["--print-sandbox", "--sandbox", "enforce"]);
    assert_eq!(out.code, EXIT_OK, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("sandbox mode: enforce\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("landlock fs: not applied (no [policy]: allow-all)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("seccomp: allow "), "{}", out.stdout);
    assert!(!out.stdout.contains("completed"), "{}", out.stdout);
}

/// A stdout whose every write fails, like `/dev/full`.
struct Full;

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from_raw_os_error(28))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_that_cannot_be_written_exits_5_and_says_what_was_lost() {
    for (args, what) in [
        (&["--input", "{}"][..], "the outcome"),
        (&["--version"][..], "the version"),
        (&["--help"][..], "the help text"),
        (&["--provenance"][..], "the provenance"),
        (&["--validate-only"][..], "the validation report"),
    ] {
        let mut err = Vec::new();
        let argv = std::iter::once("agent").chain(args.iter().copied());
        let code = run(&Cli, argv, &mut &b""[..], &mut Full, &mut err);
        let err = String::from_utf8_lossy(&err);
        assert_eq!(code, EXIT_SEMANTIC, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("agentd: cannot write {what} to stdout: ")),
            "{args:?}: {err}"
        );
    }
}

/// A workflow declaring `[server.tls]` (and nothing else needing a feature).
struct WithTls;

static TLS: crate::workflow::auth::TlsDef = crate::workflow::auth::TlsDef {
    cert_file: "cert.pem",
    key_file: "key.pem",
    client_auth: None,
};

impl Workflow for WithTls {
    const GRAPHS: &'static [GraphMeta] = &GRAPHS;
    const INFO: &'static BuildInfo = &INFO;
    const TLS: Option<&'static crate::workflow::auth::TlsDef> = Some(&TLS);

    fn exec(&self, g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        Cli.exec(g, node, cx)
    }
}

#[test]
fn a_definition_whose_feature_is_missing_refuses_to_start() {
    // Nothing needs a feature: whatever is compiled in, it starts.
    assert_eq!(missing_feature(Cli::DEF, |_| false), None);
    // `[server.tls]` in a runtime without `tls` must not serve plaintext.
    assert_eq!(
        missing_feature(WithTls::DEF, |f| f != "tls"),
        Some(("[server.tls]", "tls"))
    );
    assert_eq!(missing_feature(WithTls::DEF, |_| true), None);
    if !cfg!(feature = "tls") {
        let mut err = Vec::new();
        let code = run(
            &WithTls,
            ["agent"],
            &mut std::io::empty(),
            &mut Vec::new(),
            &mut err,
        );
        let err = String::from_utf8_lossy(&err);
        assert_eq!(code, 5, "{err}");
        assert!(err.contains("without the runtime's `tls` feature"), "{err}");
        // `--version` still answers.
        let mut out = Vec::new();
        let code = run(
            &WithTls,
            ["agent", "--version"],
            &mut std::io::empty(),
            &mut out,
            &mut Vec::new(),
        );
        assert_eq!(code, 0);
        assert!(String::from_utf8_lossy(&out).starts_with("cli (agentd "));
    }
}
