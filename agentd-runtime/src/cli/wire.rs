//! Building a run's subsystems from the workflow's baked definitions
//! ([`crate::workflow`]) and the command line: the logger, the LLM backends,
//! the MCP servers.
//!
//! Owns the wiring only; each subsystem's behaviour stays in its module
//! ([`crate::obs`], [`crate::intel`], [`crate::mcp`]), which takes plain
//! definitions and never a [`Workflow`] or the flags.

use std::io::Write;
#[cfg(feature = "llm")]
use std::sync::Arc;
#[cfg(any(feature = "llm", feature = "mcp"))]
use std::time::Duration;

use super::{Matches, StartError};
#[cfg(feature = "llm")]
use crate::intel::Intel;
use crate::obs;
#[cfg(any(feature = "llm", feature = "mcp"))]
use crate::workflow::WorkflowDef;
use crate::workflow::logging::LogConfig;
#[cfg(feature = "llm")]
use crate::workflow::secrets::SecretDef;

/// The command-line front end: resolve the flags in `args` (with their
/// sources from `matches`) against `baked`, print notes on `stderr`, and
/// install.
///
/// # Errors
///
/// [`StartError::LogSettings`] for a bad `--log-*` value,
/// [`StartError::LogInstall`] for a sink that cannot be opened.
pub(super) fn logging(
    matches: &Matches,
    args: &obs::LogArgs,
    baked: &LogConfig,
    stderr: &mut dyn Write,
) -> Result<(), StartError> {
    let given = |id: &str, value: &Option<String>| obs::Given {
        value: value.clone(),
        from_env: matches.from_env(id),
    };
    let inputs = obs::Inputs {
        level: given("log_level", &args.log_level),
        format: given("log_format", &args.log_format),
        target: given("log_target", &args.log_target),
        quiet: args.quiet,
    };
    let settings = obs::resolve(&inputs, baked).map_err(StartError::LogSettings)?;
    for note in &settings.notes {
        let _ = writeln!(stderr, "agentd: {note}");
    }
    #[cfg(feature = "otel")]
    let otel: Option<obs::export::StartExporter> = Some(crate::otel::start);
    #[cfg(not(feature = "otel"))]
    let otel = None;
    obs::install(&settings, otel).map_err(StartError::LogInstall)
}

/// Largest `--intel-http-bearer-file`: a token, not a document.
#[cfg(feature = "llm")]
const MAX_BEARER_BYTES: u64 = 64 * 1024;

/// The [`crate::intel::KeyResolver`] of a workflow with `[[secrets]]`
/// `secrets`: those, then the process environment (docs/operations.md "Secrets",
/// the single front door). Its errors name the secret and its source.
#[cfg(feature = "llm")]
fn secret_keys(secrets: &'static [SecretDef]) -> crate::intel::KeyResolver {
    crate::intel::KeyResolver::new(move |name| {
        crate::secrets::resolve(secrets, name)
            .map(crate::secrets::Secret::into_exposed)
            .map_err(|e| e.to_string())
    })
}

/// The baked binary's backends: `default` from `--intel-unix` (wins) or
/// `--intel-http` (+ bearer from `bearer_file`, else
/// `AGENTD_INTEL_HTTP_BEARER`), plus `def.backends`; the budget is
/// `def.max_llm_tokens`. `timeout` is the run timeout (the transports' I/O
/// timeout).
///
/// # Errors
///
/// [`StartError::Intel`] (exit 2): `--intel-unix` off Unix, a bad
/// `--intel-http` URL, an unreadable bearer file, or a backend definition
/// this build cannot serve.
#[cfg(feature = "llm")]
pub(super) fn intel(
    def: &WorkflowDef,
    unix: Option<&str>,
    http: Option<&str>,
    bearer_file: Option<&str>,
    timeout: Duration,
) -> Result<Intel, StartError> {
    let mut backends = crate::intel::build_named(def.backends, timeout, secret_keys(def.secrets))
        .map_err(StartError::Intel)?;
    if let Some(path) = unix {
        #[cfg(unix)]
        backends.insert(
            crate::intel::DEFAULT_BACKEND,
            Arc::new(crate::intel::rpc::UnixBackend::new(path, timeout)),
        );
        #[cfg(not(unix))]
        return Err(StartError::Intel(format!(
            "--intel-unix `{path}`: Unix sockets are not available on this platform"
        )));
    } else if let Some(url) = http {
        let bearer = match bearer_file {
            Some(file) => Some(
                crate::limits::read_capped_string(std::path::Path::new(file), MAX_BEARER_BYTES)
                    .map_err(|e| {
                        StartError::Intel(format!(
                            "cannot read --intel-http-bearer-file `{file}`: {e}"
                        ))
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("AGENTD_INTEL_HTTP_BEARER")
                .ok()
                .map(|b| b.trim().to_owned()),
        };
        backends.insert(
            crate::intel::DEFAULT_BACKEND,
            Arc::new(
                crate::intel::rpc::HttpBackend::new(url, bearer, timeout)
                    .map_err(StartError::Intel)?,
            ),
        );
    }
    Ok(Intel::new(
        backends,
        crate::intel::TokenBudget::new(def.max_llm_tokens),
    ))
}

/// The `[[mcp_servers]]` of `def`, their secrets resolved through its
/// `[[secrets]]`, `url` servers moved by `--mcp-url NAME=URL` (and its env
/// twins); each exchange times out after `timeout` (the run's) unless the
/// server sets its own.
///
/// # Errors
///
/// [`StartError::Mcp`] (exit 2) for an `--mcp-url` that names no `url`
/// server or is not a URL.
#[cfg(feature = "mcp")]
pub(super) fn mcp(
    def: &WorkflowDef,
    timeout: Duration,
    matches: &Matches,
) -> Result<crate::mcp::Mcp, StartError> {
    let mut options = crate::mcp::McpOptions::with_secrets(def.secrets, timeout);
    options.url_overrides =
        crate::mcp::url_overrides(def.mcp_servers, &matches.values("mcp_url"), |var| {
            std::env::var(var).ok()
        })
        .map_err(StartError::Mcp)?;
    Ok(crate::mcp::Mcp::from_defs(def.mcp_servers, &options))
}
