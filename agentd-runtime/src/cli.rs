//! The baked binary's command line (one-shot mode).
//!
//! Owns the flags (one table in `cli/flags.rs` drives parsing, env twins
//! and `--help`), the dialect's env rules (docs/cli.md "The compiled binary"),
//! trigger input loading, one-shot start choice, printing the
//! outcome and the exit codes (docs/cli.md "The compiled binary"). It must never implement run
//! semantics: it builds [`RunOptions`] and hands them to the [`Engine`].
//!
//! Flags:
//!
//! | flag | env | meaning |
//! |---|---|---|
//! | `--input JSON` | — | trigger input as inline text; `-` reads stdin; text that is not JSON becomes `{"raw": text}` |
//! | `--input-file PATH`, `-i` | `AGENTD_INPUT` | trigger input from a file; `-` reads stdin; unreadable ⇒ exit 2 |
//! | `--start NAME`, `-s` | `AGENTD_START` | start node (not pre-checked: unknown ⇒ engine error, exit 5) |
//! | `--dry-run` | `AGENTD_DRY_RUN` | skip side effects |
//! | `--timeout-secs N` | `AGENTD_TIMEOUT_SECS` | run deadline (default 120, at least 1) |
//! | `--validate-only` | `AGENTD_VALIDATE_ONLY` | print `{"ok": true, "workflow": name}` and exit 0 |
//! | `--intel-unix PATH` | `AGENTD_INTEL_UNIX` | the `default` LLM backend: framed JSON-RPC over a Unix socket (wins over `--intel-http`) |
//! | `--intel-http URL` | `AGENTD_INTEL_HTTP` | the `default` LLM backend: JSON-RPC over plain `http://`; a bad or https URL ⇒ exit 2 |
//! | `--intel-http-bearer-file PATH` | `AGENTD_INTEL_HTTP_BEARER_FILE` | bearer token for `--intel-http`, read and trimmed at startup (unreadable ⇒ exit 2); else `AGENTD_INTEL_HTTP_BEARER` |
//! | `--policy FILE` | `AGENTD_POLICY` | `[policy]` override file (feature `policy-file`); a bad file ⇒ exit 2 |
//! | (`[budget]`) | — | `RLIMIT_AS` / `RLIMIT_CPU` applied before the run; failure ⇒ exit 5; `max_run_time_secs` lowers the deadline |
//! | `--state-dir DIR` | `AGENTD_STATE_DIR` | checkpoint directory (created `0700` if absent); a `pause_for_approval` without it is a hard error (exit 5) |
//! | `--resume RUN_ID` | `AGENTD_RESUME` | continue a checkpoint (needs `--state-dir`, or `--state-url` in a fleet binary; unloadable, another build's, or in use ⇒ exit 2) |
//! | `--approve` / `--deny` | — | with `--resume`: the decision; approve is the default, deny ends the run `failed` (exit 5) |
//! | `--checkpoint-each-node` | `AGENTD_CHECKPOINT_EACH_NODE` | progress checkpoint after every node (needs `--state-dir`) |
//! | `--resume-incomplete` | — | resume every progress checkpoint of this workflow; exit = the last non-zero code |
//! | `--list-checkpoints` | — | one line per checkpoint (`<id>  paused\|recoverable  workflow=… resume_node=…`), exit 0 |
//! | `--checkpoint-retention-days N` | `AGENTD_CHECKPOINT_RETENTION_DAYS` | at start, delete this workflow's checkpoints older than N days (default 30; 0 keeps all) |
//! | `--log-level DIRECTIVES` | `AGENTD_LOG` | log filter (`warn`, `warn,agentd::engine=debug`); invalid ⇒ `info` with a note; default `[logging].level`, else `warn` |
//! | `--log-format text\|json` | `AGENTD_LOG_FORMAT` | `pretty` = `text`; bad on the command line ⇒ exit 2, bad in the env ⇒ ignored |
//! | `--log-target T` | `AGENTD_LOG_TARGET` | `stderr`, `stdout` or `file:PATH` (parents created; unopenable ⇒ exit 5); bad CLI value ⇒ exit 2 |
//! | `--quiet` | `AGENTD_QUIET` | no main log (the `[logging.audit]` sink stays on); see [`crate::obs`] |
//! | `--sandbox MODE` | `AGENTD_SANDBOX` | kernel sandbox `enforce`, `best-effort` or `off` (default `[sandbox] mode`, else `best-effort`); a bad value ⇒ exit 2; `enforce` without kernel support ⇒ exit 5 |
//! | `--print-sandbox` | — | print the Landlock and seccomp rules this run would apply (after the start-up checks), exit 0 |
//! | `--provenance` | — | print the build provenance (workflow, source sha256s, signer key fingerprint, versions, capabilities) as JSON and exit 0 |
//! | `--version`, `-V` / `--help`, `-h` | — | exit 0 |
//!
//! Stdin is read only when asked for with `-`: a binary started from a
//! pipeline or a service manager must not block on, or swallow, a stdin it
//! was never meant to read. With no input at all the trigger input is
//! `null`. Env booleans are true only for `1`, `true`, `TRUE`, `True`; an
//! empty or blank env value counts as unset; a `0` or unparsable
//! `AGENTD_TIMEOUT_SECS` falls back to the default, while the same value on
//! the command line is a usage error.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

pub use error::StartError;
pub use flags::Matches;
use flags::Parsed;

use crate::checkpoint::Checkpoints;
use crate::context::PolicyMode;
use crate::engine::{Engine, RunOptions, Trigger};
use crate::graph::Source;
#[cfg(feature = "llm")]
use crate::intel::WithIntel as _;
#[cfg(feature = "mcp")]
use crate::mcp::WithMcp as _;
use crate::outcome::{Outcome, RunReport};
use crate::policy::Policy;
use crate::workflow::{DynWorkflow, WorkflowDef};

/// Exit code: completed, clean `--validate-only`, `--help`, `--version`.
pub const EXIT_OK: u8 = 0;
/// Exit code: usage errors, unreadable input, no start can be chosen.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `failed`, `timed_out`, or a hard error.
pub const EXIT_SEMANTIC: u8 = 5;
/// Exit code: `paused`.
pub const EXIT_PAUSED: u8 = 7;

/// Default run deadline in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// What `--help` says the binary does.
const ABOUT: &str = "Run this compiled agentd workflow once";

/// The flags of [`flags::FLAGS`] this module reads, after env twins.
#[derive(Debug)]
struct Args {
    /// `--log-level`, `--log-format`, `--log-target`, `--quiet`.
    log: crate::obs::LogArgs,
    /// `--mode`, `--bind`, `--drain-timeout-secs`, ... (module `serve`).
    serve: serve::ServeArgs,
    input: Option<String>,
    input_file: Option<String>,
    start: Option<String>,
    dry_run: bool,
    timeout_secs: Option<String>,
    validate_only: bool,
    version: bool,
    provenance: bool,
    sandbox: Option<String>,
    print_sandbox: bool,
    policy: Option<String>,
    intel_unix: Option<String>,
    intel_http: Option<String>,
    intel_http_bearer_file: Option<String>,
    state_dir: Option<String>,
    resume: Option<String>,
    approve: bool,
    deny: bool,
    checkpoint_each_node: bool,
    resume_incomplete: bool,
    list_checkpoints: bool,
    checkpoint_retention_days: Option<String>,
}

impl Args {
    fn from_matches(m: &Matches) -> Self {
        Self {
            log: crate::obs::LogArgs {
                log_level: m.value("log_level"),
                log_format: m.value("log_format"),
                log_target: m.value("log_target"),
                quiet: m.switch("quiet"),
            },
            serve: serve::ServeArgs::from_matches(m),
            // `--input` has no env twin.
            input: m.value("input"),
            input_file: m.value("input_file"),
            start: m.value("start"),
            dry_run: m.switch("dry_run"),
            timeout_secs: m.value("timeout_secs"),
            validate_only: m.switch("validate_only"),
            version: m.switch("version"),
            provenance: m.switch("provenance"),
            sandbox: m.value("sandbox"),
            print_sandbox: m.switch("print_sandbox"),
            policy: m.value("policy"),
            intel_unix: m.value("intel_unix"),
            intel_http: m.value("intel_http"),
            intel_http_bearer_file: m.value("intel_http_bearer_file"),
            state_dir: m.value("state_dir"),
            resume: m.value("resume"),
            approve: m.switch("approve"),
            deny: m.switch("deny"),
            checkpoint_each_node: m.switch("checkpoint_each_node"),
            resume_incomplete: m.switch("resume_incomplete"),
            list_checkpoints: m.switch("list_checkpoints"),
            checkpoint_retention_days: m.value("checkpoint_retention_days"),
        }
    }
}

/// The dialect's env boolean: true only for `1`, `true`, `TRUE`, `True`.
#[cfg(test)]
fn dialect_bool(value: &str) -> Result<bool, std::convert::Infallible> {
    Ok(flags::dialect_bool(value))
}

/// The entry point of a generated binary's `main` (`workflow` is any
/// [`crate::Workflow`]). Call it first, before the process starts threads:
/// it reads the environment without std's lock ([`run`] is the entry for a
/// process that is not the CLI's own).
pub fn main(workflow: &'static dyn DynWorkflow) -> ExitCode {
    ExitCode::from(main_code(workflow))
}

fn main_code(workflow: &'static dyn DynWorkflow) -> u8 {
    // stdout and stderr stay unlocked: a lock held for the whole run (a server's
    // whole life) would block every other thread that logs to them, forever.
    let code = run_as(
        Process::Owned,
        workflow,
        std::env::args_os(),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    // Spans still queued for OTLP export leave before the process does.
    crate::obs::flush();
    code
}

/// The C `main` of a generated binary, which is `#![no_main]`: std's own
/// start-up (`lang_start`) is skipped because on the main thread of a static
/// glibc binary it finds the stack's guard page with `pthread_getattr_np`,
/// which parses `/proc/self/maps` with `sscanf`: ~41 k instructions, a fifth of
/// a whole run (docs/performance.md, "Run-once cost"). What `lang_start` does
/// that a binary relies on is done here: standard descriptors that were closed
/// at exec are reopened on `/dev/null` (so a file opened later never becomes
/// fd 1), `SIGPIPE` is ignored (a write to a closed pipe or socket is an
/// `EPIPE` error, not a silent death), and stdout is flushed before `exit`.
/// What is not: std's stack-overflow message (a stack overflow still stops
/// the process, by `SIGSEGV` on the kernel's guard gap, without the message).
/// `argv` and the environment reach `std::env` without `lang_start` on glibc
/// (std reads them from `.init_array`).
pub fn c_main(workflow: &'static dyn DynWorkflow) -> std::ffi::c_int {
    process_start();
    let code = main_code(workflow);
    let _ = std::io::stdout().flush();
    std::ffi::c_int::from(code)
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn process_start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the call; a zero
    // timeout returns at once.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if polled >= 0 {
        for pfd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            // SAFETY: a NUL-terminated literal path; the lowest free
            // descriptor is the closed one, since lower ones are open.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != pfd.fd {
                // As std does: a process that cannot have its standard
                // descriptors must not run.
                std::process::abort();
            }
        }
    }
    // SAFETY: setting a signal's disposition to SIG_IGN takes no pointers.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

#[cfg(not(unix))]
fn process_start() {}

/// [`main`] with its inputs and outputs injected; returns the exit code.
/// Environment twins are read from the process environment. Unlike [`main`],
/// it installs no process-wide signal handler of its own (serve mode still
/// handles SIGTERM/SIGINT when it serves).
pub fn run(
    workflow: &'static dyn DynWorkflow,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    run_as(Process::Shared, workflow, args, stdin, stdout, stderr)
}

/// Refuse a workflow whose baked definitions need a subsystem this runtime was
/// built without. The definitions live in the feature-free core and exist in
/// every build (ARCHITECTURE.md, "The core and the facade"), so a mismatch is
/// no longer a compile error in the generated crate; `agentd build` and
/// `agentd!` enable exactly the features a workflow needs, so only a crate
/// wired by hand against the wrong features gets here. Without this, routes
/// would never be served, `[server.tls]` would serve plaintext and LLM
/// backends, MCP servers or OTLP export would be silently dropped.
///
/// # Errors
///
/// What is declared and which feature it needs.
pub fn check_compiled_in(def: &WorkflowDef) -> Result<(), String> {
    // The features of `missing_feature`'s table that this runtime has.
    const COMPILED: &[&str] = &[
        #[cfg(feature = "serve")]
        "serve",
        #[cfg(feature = "tls")]
        "tls",
        #[cfg(feature = "auth-hmac")]
        "auth-hmac",
        #[cfg(feature = "auth-oidc")]
        "auth-oidc",
        #[cfg(feature = "llm")]
        "llm",
        #[cfg(feature = "mcp")]
        "mcp",
        #[cfg(feature = "otel")]
        "otel",
    ];
    let compiled = |feature: &str| COMPILED.contains(&feature);
    match missing_feature(def, compiled) {
        Some((what, feature)) => Err(format!(
            "workflow `{}` declares {what}, but this binary was built without the \
             runtime's `{feature}` feature; rebuild it with `agentd build`",
            def.info.workflow
        )),
        None => Ok(()),
    }
}

/// The first definition of `def` that needs a feature `compiled` says is
/// missing: what it is, and the feature.
fn missing_feature(
    def: &WorkflowDef,
    compiled: impl Fn(&str) -> bool,
) -> Option<(&'static str, &'static str)> {
    let needs = [
        (
            !def.serve.is_empty(),
            "[[http_routes]] or long-lived [[triggers]]",
            "serve",
        ),
        (def.tls.is_some(), "[server.tls]", "tls"),
        (!def.auth.hmac.is_empty(), "[auth.hmac.*]", "auth-hmac"),
        (!def.auth.oidc.is_empty(), "[auth.oidc.*]", "auth-oidc"),
        (!def.backends.is_empty(), "[[intelligence.backends]]", "llm"),
        (!def.mcp_servers.is_empty(), "[[mcp_servers]]", "mcp"),
        (def.logging.otel.is_some(), "[logging.otel]", "otel"),
    ];
    needs
        .into_iter()
        .find(|(declared, _, feature)| *declared && !compiled(feature))
        .map(|(_, what, feature)| (what, feature))
}

/// Whether the CLI is the process's `main` (and may install process-wide
/// signal handlers) or runs inside a process that is not its own (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Process {
    Owned,
    Shared,
}

fn run_as(
    process: Process,
    workflow: &'static dyn DynWorkflow,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    match start(process, workflow, args, stdin, stdout, stderr) {
        Ok(code) => code,
        Err(refused) => refused.report(stderr),
    }
}

/// Start-up in the dialect's order (docs/cli.md "The compiled binary"), then the run or
/// the server; the exit code. Every refusal is a [`StartError`], printed and
/// mapped to its exit code by [`run_as`] alone.
fn start(
    process: Process,
    workflow: &'static dyn DynWorkflow,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, StartError> {
    let def = workflow.def();
    let name = def.info.workflow;
    let argv = args.into_iter().map(Into::into);
    let twins = match process {
        // SAFETY: the binary's own start-up: the process has started no
        // thread yet, so nothing changes the environment during the read.
        #[cfg(all(unix, not(miri)))]
        #[allow(unsafe_code)]
        Process::Owned => unsafe { flags::EnvTwins::read() },
        _ => flags::EnvTwins::read_locked(),
    };
    let matches = match flags::parse(name, ABOUT, argv, |var| twins.get(var)) {
        Ok(Parsed::Run(matches)) => matches,
        Ok(Parsed::Help(text)) => {
            emit(stdout, "the help text", format_args!("{text}"))?;
            return Ok(EXIT_OK);
        }
        Err(text) => return Err(StartError::Flags(text)),
    };
    let args = Args::from_matches(&matches);

    if args.version {
        let version = def.info.compiler_version;
        emit(
            stdout,
            "the version",
            format_args!("{name} (agentd {version})\n"),
        )?;
        return Ok(EXIT_OK);
    }
    if args.provenance {
        let provenance = pretty(&def.info.provenance());
        emit(stdout, "the provenance", format_args!("{provenance}\n"))?;
        return Ok(EXIT_OK);
    }
    // `--help`, `--version` and `--provenance` answer even for a binary that
    // cannot run; nothing else does.
    check_compiled_in(def).map_err(StartError::NotCompiledIn)?;
    if args.validate_only {
        // The graph was validated when the binary was built.
        let report = json!({ "ok": true, "workflow": name });
        let report = pretty(&report);
        emit(stdout, "the validation report", format_args!("{report}\n"))?;
        return Ok(EXIT_OK);
    }
    let durable = durable::DurableArgs::from_args(&matches, &args)?;
    // `--state-url`: checkpoints live in the fleet's store (any replica,
    // or this process, resumes them).
    let state_url = serve::state_url(&matches, &args.serve)?;
    #[cfg(feature = "fleet")]
    let fleet_checkpoints = match serve::fleet_config(def, &matches, &args.serve)? {
        Some(config) => Some(std::sync::Arc::new(
            crate::checkpoint::RedisCheckpoints::open(
                &config,
                def.info.workflow,
                def.info.program_hash,
                durable.retention,
            )
            .map_err(StartError::Usage)?,
        ) as std::sync::Arc<dyn Checkpoints>),
        None => None,
    };
    #[cfg(not(feature = "fleet"))]
    let fleet_checkpoints: Option<std::sync::Arc<dyn Checkpoints>> = None;
    if args.list_checkpoints {
        return durable::list(
            durable.state_dir.as_deref(),
            fleet_checkpoints.as_deref(),
            stdout,
            stderr,
        );
    }

    // Logging comes up before anything that can audit (docs/cli.md "The compiled binary"): the policy override, budgets and the run itself.
    wire::logging(&matches, &args.log, &def.logging, stderr)?;

    // The override is checked before anything else runs: a bad file refuses to start.
    let policy = match env_string(&matches, "policy", args.policy.clone()) {
        None => PolicyMode::Baked,
        Some(path) => PolicyMode::Override(load_policy_override(&path, def.info.policy_key)?),
    };

    // `oauth2` secrets fetch their tokens under the effective `[policy.http]`
    // (only they read it: a binary without them pays nothing for the copy).
    #[cfg(feature = "secrets-oauth2")]
    crate::secrets::set_outbound_policy(match &policy {
        PolicyMode::Override(p) => Some((**p).clone()),
        PolicyMode::Baked => def.policy.cloned(),
        PolicyMode::AllowAll => None,
    });
    // Every `[[secrets]]` entry is read once before anything runs (docs/operations.md
    // "Secrets"): one that cannot be read refuses to start, naming it (never a value). `env`
    // and `file` values are re-read at each use afterwards, so rotation needs no
    // restart; `command` values stay cached until a reload, `oauth2` tokens until they
    // expire.
    crate::secrets::probe(def.secrets)?;
    let timeout = def.limits.clamp_timeout(Duration::from_secs(timeout_secs(
        &matches,
        args.timeout_secs.as_deref(),
    )?));
    // Mode resolution (docs/cli.md "The compiled binary"); a resume always runs once.
    let serve = if durable.resuming() {
        None
    } else {
        serve::resolve(def, &matches, &args.serve)?
    };
    let input = load_input(&matches, &args, stdin)?;
    let start = match env_string(&matches, "start", args.start) {
        Some(start) => start,
        // A resume takes its start from the checkpoint.
        None if durable.resuming() => String::new(),
        // Routes and triggers name their own starts.
        None if serve.is_some() => String::new(),
        None => pick_start(def).map_err(StartError::Usage)?.to_owned(),
    };

    let intel_unix = env_string(&matches, "intel_unix", args.intel_unix);
    let intel_http = env_string(&matches, "intel_http", args.intel_http);
    let intel_http_url = intel_http.clone();
    let bearer_file = env_string(
        &matches,
        "intel_http_bearer_file",
        args.intel_http_bearer_file,
    );
    #[cfg(feature = "llm")]
    let intel = wire::intel(
        def,
        intel_unix.as_deref(),
        intel_http.as_deref(),
        bearer_file.as_deref(),
        timeout,
    )?;
    #[cfg(not(feature = "llm"))]
    let _ = (intel_unix, intel_http, bearer_file);
    let checkpoints = durable::open(def, &durable, fleet_checkpoints, stderr)?;

    // The kernel sandbox goes on once start-up has opened what it needs (logs,
    // state dir) and before any child process or node runs, so MCP servers and
    // shell commands inherit it.
    let sandbox_mode = sandbox_mode(def, &matches, args.sandbox.as_deref())?;
    let sandbox_needs = crate::sandbox::StartNeeds {
        state_dir: durable.state_dir.as_ref().map(std::path::PathBuf::from),
        policy_file: env_string(&matches, "policy", args.policy.clone()).map(Into::into),
        bind_port: serve.as_ref().map(serve::ServeCli::bind_port),
        reload_file: serve.as_ref().and_then(serve::ServeCli::reload_file),
        intel_http: intel_http_url,
        // A serving replica and a resume both reach the fleet's store.
        state_url: state_url.filter(|_| serve.is_some() || durable.resuming()),
    };
    let effective_policy = match &policy {
        PolicyMode::Override(p) => Some(&**p),
        PolicyMode::Baked => def.policy,
        PolicyMode::AllowAll => None,
    };
    if args.print_sandbox {
        let plan = crate::sandbox::plan_for(def, effective_policy, &sandbox_needs);
        let rules = crate::sandbox::render(&plan, sandbox_mode);
        emit(stdout, "the sandbox rules", format_args!("{rules}"))?;
        return Ok(EXIT_OK);
    }
    // Only a process the CLI owns is sandboxed: `run` inside a test or a host
    // program must not lock down a process that is not its own.
    if process == Process::Owned {
        crate::sandbox::apply(def, sandbox_mode, effective_policy, &sandbox_needs)?;
    }

    // The `[[mcp_servers]]` children start now, so one that cannot start
    // refuses the binary (exit 2) instead of failing a node later; a dry run
    // starts none (they start on a first call, which a dry run never makes).
    // `url` servers are checked against the effective policy now, overrides
    // included (a literal URL the baked policy refuses never builds).
    #[cfg(feature = "mcp")]
    let mcp = {
        let mcp = wire::mcp(def, timeout, &matches)?;
        mcp.check_urls(effective_policy)
            .map_err(StartError::McpPolicy)?;
        if !args.dry_run {
            mcp.start_all().map_err(StartError::Mcp)?;
        }
        mcp
    };
    #[cfg(not(feature = "mcp"))]
    if !matches.values("mcp_url").is_empty() {
        return Err(StartError::Mcp(
            "--mcp-url: this workflow declares no [[mcp_servers]]".to_owned(),
        ));
    }

    // Process limits go on last, just before the run: everything above allocates
    // freely and is bounded by the input size limits.
    crate::budget::apply(&def.limits)?;
    let options = RunOptions {
        dry_run: args.dry_run,
        timeout,
        record_trace: false,
        policy,
        checkpoints: checkpoints.clone(),
        checkpoint_each_node: durable.each_node,
        ..RunOptions::default()
    };
    if let Some(serve) = serve {
        #[cfg(feature = "llm")]
        let serve = serve.with_intel(intel);
        #[cfg(feature = "mcp")]
        let serve = serve.with_mcp(mcp);
        let policy_path = env_string(&matches, "policy", args.policy.clone());
        let state_dir = durable.state_dir.as_deref().map(std::path::Path::new);
        return serve.run(workflow, options, policy_path.as_deref(), state_dir, stderr);
    }
    // A command started by `shell_run` runs in its own process group, out of
    // reach of a terminal's Ctrl-C: it is killed when the binary is.
    #[cfg(all(feature = "shell", unix))]
    if process == Process::Owned {
        crate::nodes::shell::kill_running_on_fatal_signals();
    }
    #[cfg(not(all(feature = "shell", unix)))]
    let _ = process;
    let engine = Engine::new(workflow, options);
    #[cfg(feature = "llm")]
    let engine = engine.with_intel(intel);
    #[cfg(feature = "mcp")]
    let engine = engine.with_mcp(mcp);
    if let Some(code) =
        durable::resume_if_asked(&engine, &durable, checkpoints.as_deref(), stdout, stderr)
    {
        return code;
    }
    let report = engine.run(&start, Trigger::manual(input));
    print_report(report, stdout, stderr)
}

/// Print a run's outcome (stdout) or hard error (stderr); its exit code
/// ([`exit_code`] of the outcome, 5 for a hard error).
///
/// # Errors
///
/// [`StartError::Output`] when the outcome cannot be written: the run
/// happened, but whoever reads stdout never learns how it ended.
fn print_report(
    report: RunReport,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, StartError> {
    match report.outcome {
        Ok(outcome) => {
            let mut text = outcome.to_pretty_json();
            text.push('\n');
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|source| StartError::Output {
                    what: "the outcome",
                    source,
                })?;
            Ok(exit_code(&outcome))
        }
        Err(err) => {
            let _ = writeln!(stderr, "agentd: {err}");
            Ok(EXIT_SEMANTIC)
        }
    }
}

/// Write `text` (`what`, for the error) to stdout and flush it, so output
/// that is lost (stdout closed, a full disk, `/dev/full`) is an error the
/// exit code reports, never a silent exit 0.
///
/// # Errors
///
/// [`StartError::Output`] with the write's or the flush's error.
fn emit(
    stdout: &mut dyn Write,
    what: &'static str,
    text: std::fmt::Arguments<'_>,
) -> Result<(), StartError> {
    stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .map_err(|source| StartError::Output { what, source })
}

/// `--sandbox` / `AGENTD_SANDBOX`, else the baked `[sandbox] mode`.
fn sandbox_mode(
    def: &WorkflowDef,
    matches: &Matches,
    raw: Option<&str>,
) -> Result<crate::sandbox::Mode, StartError> {
    match env_string(matches, "sandbox", raw.map(str::to_owned)) {
        None => Ok(def.sandbox),
        Some(text) => crate::sandbox::Mode::parse(text.trim()).ok_or_else(|| {
            StartError::Usage(format!(
                "invalid value `{text}` for --sandbox: expected enforce, best-effort or off"
            ))
        }),
    }
}

/// The exit code of an outcome: completed 0, failed/timed out 5, paused 7.
#[must_use]
pub fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Completed { .. } => EXIT_OK,
        Outcome::Failed { .. } | Outcome::TimedOut { .. } => EXIT_SEMANTIC,
        Outcome::Paused { .. } => EXIT_PAUSED,
    }
}

/// One-shot start choice (docs/cli.md "The compiled binary"): the only `manual` start, else
/// the only start, else an error naming the counts.
///
/// # Errors
///
/// The usage message when no start can be chosen.
pub fn pick_start(def: &WorkflowDef) -> Result<&'static str, String> {
    let starts = def.graphs.first().map_or(&[][..], |g| g.starts);
    let manual: Vec<_> = starts
        .iter()
        .filter(|s| s.source == Source::Manual)
        .collect();
    if let [only] = manual.as_slice() {
        return Ok(only.name);
    }
    if let [only] = starts {
        return Ok(only.name);
    }
    Err(format!(
        "cannot pick a start node automatically ({} manual / {} total); pass --start NAME",
        manual.len(),
        starts.len()
    ))
}

/// Load `--policy FILE`; when the binary was built with signing required, the file
/// must carry a valid `FILE.sig` from the workflow's signing key.
#[cfg(feature = "policy-file")]
fn load_policy_override(
    path: &str,
    key: Option<&'static [u8; 32]>,
) -> Result<std::sync::Arc<Policy>, StartError> {
    Ok(crate::policy_file::PolicyFile::load(std::path::Path::new(path), key)?.current())
}

#[cfg(not(feature = "policy-file"))]
fn load_policy_override(
    path: &str,
    _key: Option<&'static [u8; 32]>,
) -> Result<std::sync::Arc<Policy>, StartError> {
    Err(StartError::PolicyOverridesOff {
        path: path.to_owned(),
    })
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data cannot fail and is not limited here; an empty line
    // is a harmless fallback that keeps this path panic-free.
    crate::limits::pretty_json(value, u64::MAX)
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default()
}

fn from_env(matches: &Matches, id: &str) -> bool {
    matches.from_env(id)
}

/// A string flag whose env twin counts as unset when empty or blank.
fn env_string(matches: &Matches, id: &str, value: Option<String>) -> Option<String> {
    value.filter(|v| !(from_env(matches, id) && v.trim().is_empty()))
}

/// `--timeout-secs`: strict on the command line, lenient from the env;
/// at least 1.
fn timeout_secs(matches: &Matches, raw: Option<&str>) -> Result<u64, StartError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_TIMEOUT_SECS);
    };
    let parsed = raw.trim().parse::<u64>();
    if from_env(matches, "timeout_secs") {
        return Ok(parsed
            .ok()
            .filter(|secs| (1..=MAX_SECS).contains(secs))
            .unwrap_or(DEFAULT_TIMEOUT_SECS));
    }
    match parsed {
        Ok(secs) if secs <= MAX_SECS => Ok(secs.max(1)),
        _ => Err(StartError::Usage(format!(
            "invalid value `{raw}` for --timeout-secs: expected whole seconds up to {MAX_SECS}"
        ))),
    }
}

/// Largest number of seconds a flag accepts (ten years): every deadline built from
/// it (`now + timeout`) stays far from overflowing.
const MAX_SECS: u64 = 10 * 365 * 24 * 3600;

/// Largest trigger input read from `--input-file` or stdin; more is a usage error.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// The trigger input: `--input` text, else `--input-file`, else `null`.
fn load_input(matches: &Matches, args: &Args, stdin: &mut dyn Read) -> Result<Value, StartError> {
    let file = env_string(matches, "input_file", args.input_file.clone());
    if args.input.is_some() && file.is_some() && !from_env(matches, "input_file") {
        return Err(StartError::usage(
            "--input and --input-file cannot be used together",
        ));
    }
    let text = match (&args.input, file) {
        (Some(text), _) if text == "-" => read_stdin(stdin)?,
        (Some(text), _) => text.clone(),
        (None, Some(path)) if path == "-" => read_stdin(stdin)?,
        (None, Some(path)) => std::fs::File::open(&path)
            .and_then(|file| read_capped_text(file, "input file"))
            .map_err(|e| StartError::Usage(format!("cannot read input file `{path}`: {e}")))?,
        (None, None) => return Ok(Value::Null),
    };
    Ok(parse_input(text))
}

fn read_stdin(stdin: &mut dyn Read) -> Result<String, StartError> {
    read_capped_text(stdin, "input")
        .map_err(|e| StartError::Usage(format!("cannot read input from stdin: {e}")))
}

/// All of `source` as UTF-8, refusing more than [`MAX_INPUT_BYTES`].
fn read_capped_text(source: impl Read, what: &str) -> std::io::Result<String> {
    let mut text = String::new();
    source.take(MAX_INPUT_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(format!(
            "the {what} is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// Input text as JSON, or `{"raw": text}` when it is not JSON.
#[must_use]
pub fn parse_input(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }))
}

mod durable;
mod error;
mod flags;
mod serve;
mod wire;

#[cfg(test)]
mod log_flags_tests;
#[cfg(test)]
mod tests;
