//! Serve-mode flags of the baked binary, mode resolution
//! (docs/cli.md "The compiled binary") and the serve entry point.
//!
//! Owns `--mode`, `--bind`, `--drain-timeout-secs`, `--max-connections`,
//! `--max-runs`, `--max-preauth-bytes`, `--read-timeout-secs` and
//! `--reload-file`, `--state-url` and `--state-password-secret` with their env
//! twins, the startup banner, and the exit code of a serving process (0
//! after a clean drain, 5 when it cannot start or the drain times out).
//! The flags exist in every binary, so `--mode serve` on a workflow with
//! nothing to serve is a clear usage error (exit 2), not an unknown flag.
//! It never serves anything itself: [`crate::serve`] does.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{StartError, env_string, from_env};
use crate::engine::RunOptions;
use crate::workflow::{DynWorkflow, WorkflowDef};

// The defaults live with the server; a binary without it still parses the
// flags (and refuses `--mode serve`).
#[cfg(feature = "serve")]
use crate::serve::{
    DEFAULT_DRAIN_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PREAUTH_BYTES,
    DEFAULT_MAX_RUNS, DEFAULT_READ_TIMEOUT_SECS,
};
#[cfg(not(feature = "serve"))]
const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;
#[cfg(not(feature = "serve"))]
const DEFAULT_MAX_CONNECTIONS: u64 = 1024;
#[cfg(not(feature = "serve"))]
const DEFAULT_MAX_RUNS: u64 = 64;
#[cfg(not(feature = "serve"))]
const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;
#[cfg(not(feature = "serve"))]
const DEFAULT_MAX_PREAUTH_BYTES: u64 = 64 * 1024 * 1024;

/// Serve-mode flags (in `cli/flags.rs`'s table, section "Serve mode").
#[derive(Debug)]
pub(super) struct ServeArgs {
    mode: Option<String>,
    bind: Option<String>,
    drain_timeout_secs: Option<String>,
    max_connections: Option<String>,
    max_runs: Option<String>,
    max_preauth_bytes: Option<String>,
    read_timeout_secs: Option<String>,
    reload_file: Option<String>,
    state_url: Option<String>,
    state_password_secret: Option<String>,
}

impl ServeArgs {
    pub(super) fn from_matches(m: &super::Matches) -> Self {
        Self {
            mode: m.value("mode"),
            bind: m.value("bind"),
            drain_timeout_secs: m.value("drain_timeout_secs"),
            max_connections: m.value("max_connections"),
            max_runs: m.value("max_runs"),
            max_preauth_bytes: m.value("max_preauth_bytes"),
            read_timeout_secs: m.value("read_timeout_secs"),
            reload_file: m.value("reload_file"),
            state_url: m.value("state_url"),
            state_password_secret: m.value("state_password_secret"),
        }
    }
}

/// A resolved serve mode: the settings the flags asked for.
#[derive(Debug)]
#[cfg_attr(not(feature = "serve"), allow(dead_code))] // never built without it
pub(super) struct ServeCli {
    bind: SocketAddr,
    drain_timeout: Duration,
    max_connections: usize,
    max_runs: usize,
    max_preauth_bytes: usize,
    read_timeout: Duration,
    reload_file: Option<PathBuf>,
    #[cfg(feature = "fleet")]
    fleet: Option<crate::serve::fleet::FleetConfig>,
    #[cfg(feature = "llm")]
    intel: Option<crate::intel::Intel>,
    #[cfg(feature = "mcp")]
    mcp: Option<crate::mcp::Mcp>,
}

impl ServeCli {
    /// The TCP port `--bind` asks for (the kernel sandbox allows binding it).
    pub(super) fn bind_port(&self) -> u16 {
        self.bind.port()
    }

    /// `--reload-file`, which the server creates when missing.
    pub(super) fn reload_file(&self) -> Option<PathBuf> {
        self.reload_file.clone()
    }
}

/// Whether the workflow has anything to serve.
fn servable(def: &WorkflowDef) -> bool {
    #[cfg(feature = "serve")]
    {
        !def.serve.is_empty()
    }
    #[cfg(not(feature = "serve"))]
    {
        let _ = def;
        false
    }
}

/// Mode resolution: `Some` to serve, `None` to run once.
///
/// `--mode` wins; any value other than `once` or `serve` is an error (the
/// dialect ignored it silently). Without it, serve when the workflow has
/// routes or long-lived triggers.
///
/// # Errors
///
/// [`StartError::Usage`] for a flag this binary or workflow cannot use.
pub(super) fn resolve(
    def: &WorkflowDef,
    matches: &super::Matches,
    args: &ServeArgs,
) -> Result<Option<ServeCli>, StartError> {
    let mode = env_string(matches, "mode", args.mode.clone());
    let serve = match mode.as_deref().map(str::trim) {
        None => servable(def),
        Some(m) if m.eq_ignore_ascii_case("once") => false,
        Some(m) if m.eq_ignore_ascii_case("serve") => {
            if !servable(def) {
                return Err(StartError::usage(
                    "--mode serve: this workflow has no [[http_routes]] and no cron, interval or \
                     fs_watch trigger; nothing to serve",
                ));
            }
            true
        }
        Some(other) => {
            return Err(StartError::Usage(format!(
                "invalid value `{other}` for --mode: expected `once` or `serve`"
            )));
        }
    };
    if state_url(matches, args)?.is_some() && !serve {
        return Err(StartError::usage(
            "--state-url shares serve-mode state (idempotency keys, rate limits, trigger \
             ticks, runs); a once-mode run uses it only with --resume, --resume-incomplete \
             or --list-checkpoints",
        ));
    }
    if !serve {
        return Ok(None);
    }
    #[cfg(feature = "fleet")]
    let fleet = fleet_config(def, matches, args)?;
    let bind_text = env_string(matches, "bind", args.bind.clone());
    let bind = match bind_text.as_deref() {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(text) => text.trim().parse().map_err(|_| {
            StartError::Usage(format!("invalid bind address `{text}`: expected IP:PORT"))
        })?,
    };
    let secs = |id: &str, raw: &Option<String>, default: u64| {
        number(matches, id, raw.as_deref(), default, super::MAX_SECS).map(Duration::from_secs)
    };
    let count = |id: &str, raw: &Option<String>, default: u64| {
        number(matches, id, raw.as_deref(), default, MAX_COUNT)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    Ok(Some(ServeCli {
        bind,
        drain_timeout: secs(
            "drain_timeout_secs",
            &args.drain_timeout_secs,
            DEFAULT_DRAIN_TIMEOUT_SECS,
        )?,
        max_connections: count(
            "max_connections",
            &args.max_connections,
            DEFAULT_MAX_CONNECTIONS,
        )?,
        max_runs: count("max_runs", &args.max_runs, DEFAULT_MAX_RUNS)?,
        max_preauth_bytes: number(
            matches,
            "max_preauth_bytes",
            args.max_preauth_bytes.as_deref(),
            DEFAULT_MAX_PREAUTH_BYTES,
            MAX_PREAUTH_BYTES,
        )
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))?,
        read_timeout: secs(
            "read_timeout_secs",
            &args.read_timeout_secs,
            DEFAULT_READ_TIMEOUT_SECS,
        )?,
        reload_file: env_string(matches, "reload_file", args.reload_file.clone())
            .map(PathBuf::from),
        #[cfg(feature = "fleet")]
        fleet,
        #[cfg(feature = "llm")]
        intel: None,
        #[cfg(feature = "mcp")]
        mcp: None,
    }))
}

/// `--state-url` (or its env twin), trimmed; `None` when unset or blank.
///
/// # Errors
///
/// A state URL given to a binary built without fleet mode, or
/// `--state-password-secret` without a state URL.
pub(super) fn state_url(
    matches: &super::Matches,
    args: &ServeArgs,
) -> Result<Option<String>, StartError> {
    let state_url = env_string(matches, "state_url", args.state_url.clone())
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    match &state_url {
        Some(url) if !cfg!(feature = "fleet") => Err(StartError::Usage(format!(
            "--state-url `{}`: this binary was built without fleet mode; rebuild it with \
             `agentd build --fleet` to share state through Redis",
            crate::limits::redact_url(url)
        ))),
        None if env_string(
            matches,
            "state_password_secret",
            args.state_password_secret.clone(),
        )
        .is_some() =>
        {
            Err(StartError::usage(
                "--state-password-secret needs --state-url",
            ))
        }
        _ => Ok(state_url),
    }
}

/// The fleet's store settings: `--state-url` with the password read from
/// the `--state-password-secret` secret; `None` without a state URL.
///
/// # Errors
///
/// As [`state_url`], or a password secret that does not resolve.
#[cfg(feature = "fleet")]
pub(super) fn fleet_config(
    def: &WorkflowDef,
    matches: &super::Matches,
    args: &ServeArgs,
) -> Result<Option<crate::serve::fleet::FleetConfig>, StartError> {
    let Some(url) = state_url(matches, args)? else {
        return Ok(None);
    };
    let password_secret = env_string(
        matches,
        "state_password_secret",
        args.state_password_secret.clone(),
    );
    let password = match &password_secret {
        Some(name) => Some(
            crate::secrets::resolve(def.secrets, name.trim())
                .map_err(|e| StartError::Usage(format!("--state-password-secret: {e}")))?
                .into_exposed(),
        ),
        None => None,
    };
    Ok(Some(crate::serve::fleet::FleetConfig { url, password }))
}

/// A positive whole number flag: strict on the command line (a bad value
/// or 0 is a usage error), lenient from the env (falls back to `default`),
/// as the dialect's env rules say.
/// Largest `--max-connections` / `--max-runs`: far beyond what one process can
/// serve, and small enough for every sum and semaphore built from it.
pub(super) const MAX_COUNT: u64 = 1_000_000;

/// Largest `--max-preauth-bytes` (1 TiB): beyond any memory it could guard.
const MAX_PREAUTH_BYTES: u64 = 1 << 40;

fn number(
    matches: &super::Matches,
    id: &str,
    raw: Option<&str>,
    default: u64,
    max: u64,
) -> Result<u64, StartError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let parsed = raw
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n));
    if from_env(matches, id) {
        return Ok(parsed.unwrap_or(default));
    }
    parsed.ok_or_else(|| {
        StartError::Usage(format!(
            "invalid value `{raw}` for --{}: expected a whole number from 1 to {max}",
            id.replace('_', "-")
        ))
    })
}

impl ServeCli {
    /// Use `intel` for every run.
    #[cfg(feature = "llm")]
    pub(super) fn with_intel(mut self, intel: crate::intel::Intel) -> Self {
        self.intel = Some(intel);
        self
    }

    /// Use `mcp` (started once, shared by every run) for every run.
    #[cfg(feature = "mcp")]
    pub(super) fn with_mcp(mut self, mcp: crate::mcp::Mcp) -> Self {
        self.mcp = Some(mcp);
        self
    }

    /// Serve until SIGTERM/SIGINT and drain; the exit code (0 after a
    /// clean drain, 5 when the drain timed out or serving failed).
    ///
    /// `options` are every run's options (the policy is re-read per run
    /// from the reloadable `--policy` file at `policy`, else the baked one).
    ///
    /// # Errors
    ///
    /// [`StartError::Reload`] or [`StartError::Serve`] when the server
    /// cannot start.
    #[cfg(feature = "serve")]
    pub(super) fn run(
        self,
        workflow: &'static dyn DynWorkflow,
        options: RunOptions,
        policy: Option<&str>,
        state_dir: Option<&std::path::Path>,
        stderr: &mut dyn Write,
    ) -> Result<u8, StartError> {
        use std::sync::Arc;

        use crate::serve::reload::{Reloader, ReloaderConfig};
        use crate::serve::{ServeConfig, ServeError};

        let reloader = Arc::new(Reloader::new(ReloaderConfig::for_workflow(
            workflow.def(),
            policy.map(std::path::Path::new),
        ))?);
        let drain_secs = self.drain_timeout.as_secs();
        let config = ServeConfig {
            bind: self.bind,
            drain_timeout: self.drain_timeout,
            max_connections: self.max_connections,
            max_runs: self.max_runs,
            max_preauth_bytes: self.max_preauth_bytes,
            read_timeout: self.read_timeout,
            state_dir: state_dir.map(std::path::Path::to_path_buf),
            #[cfg(feature = "fleet")]
            fleet: self.fleet,
            run: options,
            handle_signals: true,
            reload_file: self.reload_file,
            announce: true,
            hooks: crate::serve::Hooks {
                reloader: Some(reloader),
                #[cfg(feature = "llm")]
                intel: self.intel,
                #[cfg(feature = "mcp")]
                mcp: self.mcp,
            },
        };
        let running = crate::serve::start(workflow, config)?;
        banner(workflow.def(), stderr, running.local_addr(), drain_secs);
        // How serving ended is not a start-up refusal: the server has run.
        Ok(match running.wait() {
            Ok(()) => super::EXIT_OK,
            Err(ServeError::DrainTimedOut { .. }) => {
                // The process exits with runs still going: their commands go too.
                #[cfg(all(feature = "shell", unix))]
                crate::nodes::shell::kill_running();
                super::EXIT_SEMANTIC
            }
            Err(e) => {
                let _ = writeln!(stderr, "agentd: {e}");
                super::EXIT_SEMANTIC
            }
        })
    }

    /// Without the `serve` feature there is nothing to serve ([`resolve`]
    /// never returns `Some`); kept so the CLI compiles the same either way.
    #[cfg(not(feature = "serve"))]
    pub(super) fn run(
        self,
        _workflow: &'static dyn DynWorkflow,
        _options: RunOptions,
        _policy: Option<&str>,
        _state_dir: Option<&std::path::Path>,
        _stderr: &mut dyn Write,
    ) -> Result<u8, StartError> {
        Err(StartError::usage(
            "this binary was built without serve mode (feature `serve`)",
        ))
    }
}

/// The startup banner (docs/operations.md "Serving"): where it listens, each route, each
/// trigger. Tests read the bound address from its first line.
#[cfg(feature = "serve")]
fn banner(wf: &WorkflowDef, stderr: &mut dyn Write, addr: Option<SocketAddr>, drain_secs: u64) {
    use crate::workflow::serve::TriggerDef;

    let def = wf.serve;
    let name = wf.info.workflow;
    match addr {
        Some(addr) => {
            #[cfg(feature = "tls")]
            let scheme = if wf.tls.is_some() { "https" } else { "http" };
            #[cfg(not(feature = "tls"))]
            let scheme = "http";
            let _ = writeln!(
                stderr,
                "agentd: workflow `{name}` listening on {scheme}://{addr}/ ({} routes; drain_timeout={drain_secs}s)",
                def.routes.len()
            );
        }
        None => {
            let _ = writeln!(
                stderr,
                "agentd: workflow `{name}` running {} triggers, no HTTP routes (drain_timeout={drain_secs}s)",
                def.triggers.len()
            );
        }
    }
    for r in def.routes {
        let _ = writeln!(stderr, "agentd:   {} {} → {}", r.method, r.path, r.start);
    }
    for t in def.triggers {
        let what = match t {
            TriggerDef::Cron { schedule, .. } => format!("cron \"{schedule}\""),
            TriggerDef::Interval { every, .. } => format!("interval every {every}"),
            TriggerDef::FsWatch { path, .. } => format!("fs_watch {path}"),
            TriggerDef::McpResource {
                server, resource, ..
            } => format!("{} {server} {resource}", t.kind()),
        };
        let _ = writeln!(stderr, "agentd:   {what} → {}", t.start());
    }
    if addr.is_some() {
        let _ = writeln!(stderr, "agentd: GET /healthz is always live");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Cx, Step};
    use crate::error::Error;
    use crate::graph::{BuildInfo, GraphId, GraphMeta, NodeIdx};
    use crate::workflow::Workflow;

    static INFO: BuildInfo = BuildInfo {
        workflow: "quiet",
        compiler_version: "0",
        sources: &[],
        capabilities: &[],
        program_hash: "",
        signer: None,
        policy_key: None,
    };

    /// Nothing to serve: no routes, no triggers.
    struct Quiet;

    impl Workflow for Quiet {
        const GRAPHS: &'static [GraphMeta] = &[];
        const INFO: &'static BuildInfo = &INFO;

        fn exec(&self, _g: GraphId, _n: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
            Ok(Step::value(serde_json::Value::Null))
        }
    }

    /// One route.
    #[cfg(feature = "serve")]
    struct Served;

    #[cfg(feature = "serve")]
    static ROUTES: [crate::workflow::serve::RouteDef; 1] = [crate::workflow::serve::RouteDef {
        method: "GET",
        path: "/x",
        start: "s",
        auth: crate::workflow::serve::AuthRef::None,
        rate_limit: None,
        idempotency: None,
        input_schema: None,
        inline: true,
    }];

    #[cfg(feature = "serve")]
    static SERVED: crate::workflow::serve::ServeDef = crate::workflow::serve::ServeDef {
        routes: &ROUTES,
        triggers: &[],
    };

    #[cfg(feature = "serve")]
    impl Workflow for Served {
        const GRAPHS: &'static [GraphMeta] = &[];
        const INFO: &'static BuildInfo = &INFO;
        const SERVE: &'static crate::workflow::serve::ServeDef = &SERVED;

        fn exec(&self, _g: GraphId, _n: NodeIdx, _cx: &mut Cx<'_>) -> Result<Step, Error> {
            Ok(Step::value(serde_json::Value::Null))
        }
    }

    /// [`resolve`] on `args`; a refusal as the message the binary prints.
    fn resolve_args<W: Workflow>(args: &[&str]) -> Result<Option<ServeCli>, String> {
        let argv = std::iter::once("agent").chain(args.iter().copied());
        let parsed =
            super::super::flags::parse("agent", "", argv.map(std::ffi::OsString::from), |_| None)?;
        let super::super::flags::Parsed::Run(matches) = parsed else {
            return Err("--help".to_owned());
        };
        resolve(W::DEF, &matches, &ServeArgs::from_matches(&matches)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_workflow_without_routes_runs_once_and_refuses_serve() {
        assert!(matches!(resolve_args::<Quiet>(&[]), Ok(None)));
        assert!(matches!(
            resolve_args::<Quiet>(&["--mode", "once"]),
            Ok(None)
        ));
        let err = resolve_args::<Quiet>(&["--mode", "serve"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("nothing to serve"), "{err}");
    }

    #[cfg(feature = "serve")]
    #[test]
    fn serve_numbers_above_their_maximum_are_usage_errors() {
        for (flag, max) in [
            ("--max-runs", MAX_COUNT),
            ("--max-connections", MAX_COUNT),
            ("--drain-timeout-secs", super::super::MAX_SECS),
            ("--read-timeout-secs", super::super::MAX_SECS),
        ] {
            let err = resolve_args::<Served>(&[flag, "18446744073709551615"])
                .err()
                .unwrap_or_default();
            assert_eq!(
                err,
                format!(
                    "invalid value `18446744073709551615` for {flag}: expected a whole number from 1 to {max}"
                )
            );
            let at_max = max.to_string();
            assert!(
                resolve_args::<Served>(&[flag, &at_max]).is_ok(),
                "{flag} {max}"
            );
        }
    }

    #[test]
    fn an_unknown_mode_is_a_usage_error() {
        let err = resolve_args::<Quiet>(&["--mode", "daemon"])
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "invalid value `daemon` for --mode: expected `once` or `serve`"
        );
    }

    #[cfg(feature = "serve")]
    #[test]
    fn routes_infer_serve_mode_with_the_dialect_defaults() {
        let serve = resolve_args::<Served>(&[]).ok().flatten();
        let serve = serve.unwrap_or_else(|| panic!("routes mean serve mode"));
        assert_eq!(serve.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(serve.drain_timeout, Duration::from_secs(30));
        assert_eq!(serve.max_connections, 1024);
        assert_eq!(serve.max_runs, 64);
        assert!(matches!(
            resolve_args::<Served>(&["--mode", "once"]),
            Ok(None)
        ));
    }

    #[cfg(feature = "serve")]
    #[test]
    fn serve_flags_are_checked_strictly_on_the_command_line() {
        let serve = resolve_args::<Served>(&[
            "--bind",
            "0.0.0.0:9000",
            "--drain-timeout-secs",
            "5",
            "--max-connections",
            "10",
            "--max-runs",
            "2",
            "--read-timeout-secs",
            "3",
        ]);
        let serve = serve.ok().flatten().unwrap_or_else(|| panic!("serve"));
        assert_eq!(serve.bind, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(
            (
                serve.drain_timeout,
                serve.max_connections,
                serve.max_runs,
                serve.read_timeout
            ),
            (Duration::from_secs(5), 10, 2, Duration::from_secs(3))
        );
        for (flag, value, needle) in [
            (
                "--bind",
                "localhost:80",
                "invalid bind address `localhost:80`",
            ),
            ("--max-connections", "0", "--max-connections"),
            ("--max-runs", "many", "--max-runs"),
            ("--drain-timeout-secs", "1.5", "--drain-timeout-secs"),
        ] {
            let err = resolve_args::<Served>(&[flag, value])
                .err()
                .unwrap_or_default();
            assert!(err.contains(needle), "{flag} {value}: {err}");
        }
    }
}
