//! The baked binary's start-up error: every reason it refuses to run,
//! from a bad flag to a sandbox the kernel cannot apply, and output it
//! cannot deliver.
//!
//! Owns [`StartError`], the one place that decides a start-up exit code
//! ([`StartError::exit_code`], documented in `docs/cli.md`) and the one
//! place that prints a refusal ([`StartError::report`]). Start-up paths
//! return it with `?`; they must never print a refusal or pick an exit
//! code themselves. Run outcomes and hard errors during a run are not
//! start-up errors: [`super::exit_code`] and the engine own those.

use std::io::Write;

use super::{EXIT_SEMANTIC, EXIT_USAGE};
use crate::budget::BudgetError;
use crate::checkpoint::CheckpointError;
use crate::obs::LogError;
#[cfg(feature = "policy-file")]
use crate::policy_file::PolicyFileError;
use crate::sandbox::EnforceError;
use crate::secrets::SecretError;
#[cfg(feature = "serve")]
use crate::serve::{ServeError, reload::ReloadError};

/// Why the binary refused to start (or, for the durable-run commands,
/// could not do what its flags asked), or could not write its output.
///
/// Each variant's `Display` is what the binary prints after `agentd: `
/// (except [`StartError::Flags`], printed as the parser formatted it): it
/// says what was wrong and, where one exists, the flag or file to fix.
/// The exit code follows from the variant alone: `2` for what the person
/// starting the binary can fix on the command line (usage), `5` for what
/// the environment refused (files, the kernel, the secrets, the server).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The command line could not be parsed (an unknown flag, a missing
    /// value). Carries the parser's whole message, usage line and `--help`
    /// hint included. Exit 2.
    #[error("{0}")]
    Flags(String),

    /// A flag or its env twin has a value this binary cannot use, or flags
    /// that contradict each other; also an unreadable `--input-file`/stdin
    /// and a workflow with no start to pick. The message names the flag.
    /// Exit 2.
    #[error("{0}")]
    Usage(String),

    /// `--policy FILE` was refused: unreadable, invalid, or unsigned where
    /// the binary requires signed overrides. Fix the file. Exit 2.
    #[cfg(feature = "policy-file")]
    #[error("refusing to start: {0}")]
    PolicyFile(#[from] PolicyFileError),

    /// `--policy FILE` was given to a binary built without policy
    /// overrides: it runs only with its baked `[policy]`. Exit 2.
    #[error(
        "refusing to start: --policy `{path}` given, but this binary does not accept policy overrides (rebuild it with `agentd build --policy-overrides`); it runs only with its baked [policy]"
    )]
    PolicyOverridesOff {
        /// The file that was given.
        path: String,
    },

    /// A `--log-*` flag has a value logging cannot use. Exit 2.
    #[error("{0}")]
    LogSettings(LogError),

    /// The log or audit sink could not be opened (a `file:` target whose
    /// directory is not writable, an OTLP exporter that cannot start).
    /// Exit 5.
    #[error("failed to install log subscriber: {0}")]
    LogInstall(LogError),

    /// A `[[secrets]]` entry could not be read at start; the message names
    /// the secret and its source, never a value. Exit 5.
    #[error("[[secrets]]: {0}")]
    Secrets(#[from] SecretError),

    /// `--state-dir` could not be opened or created, or a checkpoint named
    /// by `--resume` cannot be continued (missing, another build's, in use).
    /// Exit 2.
    #[error("{0}")]
    StateDir(#[from] CheckpointError),

    /// An LLM backend could not be set up from the flags and the baked
    /// `[[intelligence.backends]]` (a bad `--intel-http` URL, an unreadable
    /// bearer file, an unusable CA bundle). Exit 2.
    #[error("{0}")]
    Intel(String),

    /// An `--mcp-url` names no `url` server or is not a URL, or an
    /// `[[mcp_servers]]` child could not be started. Exit 2.
    #[error("{0}")]
    Mcp(String),

    /// The workflow's definitions need a subsystem this runtime was built
    /// without (`crate::cli::check_compiled_in`): generated code and the
    /// runtime's features disagree, which `agentd build` never produces. Exit 5.
    #[error("refusing to start: {0}")]
    NotCompiledIn(String),

    /// An `[[mcp_servers]]` `url` is denied by the effective `[policy]`
    /// (an override may narrow what the baked policy allowed). Exit 5.
    #[error("refusing to start: {0}")]
    McpPolicy(String),

    /// `--sandbox enforce` and the kernel cannot apply every wall. Exit 5.
    #[error("refusing to start: {0}")]
    Sandbox(#[from] EnforceError),

    /// A `[budget]` process limit could not be applied. Exit 5.
    #[error("refusing to start: {0}")]
    Budget(#[from] BudgetError),

    /// Serve mode's reloadable state (TLS, auth keys, the policy file,
    /// `--reload-file`, the SIGHUP handler) could not be set up. Exit 5.
    #[cfg(feature = "serve")]
    #[error("refusing to start: {0}")]
    Reload(#[from] ReloadError),

    /// The server could not start (the address is in use, the state store
    /// is unreachable, ...). Exit 5.
    #[cfg(feature = "serve")]
    #[error("cannot serve: {0}")]
    Serve(#[from] ServeError),

    /// What the binary was asked to print (an outcome, `--version`,
    /// `--help`, `--provenance`, a listing) could not be written to stdout:
    /// it was closed, or the disk behind it is full. The output is lost, so
    /// the exit is not 0; a run's side effects have happened. Exit 5.
    #[error("cannot write {what} to stdout: {source}")]
    Output {
        /// What was being written, e.g. `the outcome`.
        what: &'static str,
        /// The write's (or the flush's) error.
        source: std::io::Error,
    },
}

impl StartError {
    /// The process exit code for this refusal (`docs/cli.md`, exit codes):
    /// [`EXIT_USAGE`] (2) or [`EXIT_SEMANTIC`] (5).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Flags(_)
            | Self::Usage(_)
            | Self::PolicyOverridesOff { .. }
            | Self::LogSettings(_)
            | Self::StateDir(_)
            | Self::Intel(_)
            | Self::Mcp(_) => EXIT_USAGE,
            #[cfg(feature = "policy-file")]
            Self::PolicyFile(_) => EXIT_USAGE,
            Self::LogInstall(_)
            | Self::Secrets(_)
            | Self::McpPolicy(_)
            | Self::NotCompiledIn(_)
            | Self::Sandbox(_)
            | Self::Budget(_)
            | Self::Output { .. } => EXIT_SEMANTIC,
            #[cfg(feature = "serve")]
            Self::Reload(_) | Self::Serve(_) => EXIT_SEMANTIC,
        }
    }

    /// Print the refusal on `stderr` (`agentd: <Display>`, or the parser's
    /// text as is) and return [`StartError::exit_code`].
    pub fn report(&self, stderr: &mut dyn Write) -> u8 {
        let _ = match self {
            Self::Flags(text) => write!(stderr, "{text}"),
            other => writeln!(stderr, "agentd: {other}"),
        };
        self.exit_code()
    }

    /// Shorthand for [`StartError::Usage`].
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_refusals_exit_2_and_environment_refusals_exit_5() {
        let usage = [
            StartError::Flags("error: x\n".to_owned()),
            StartError::usage("--mode"),
            StartError::PolicyOverridesOff { path: "p".into() },
            StartError::LogSettings(LogError::Usage("--log-format".into())),
            StartError::Intel("--intel-http".into()),
            StartError::Mcp("--mcp-url".into()),
        ];
        for e in usage {
            assert_eq!(e.exit_code(), EXIT_USAGE, "{e:?}");
        }
        let semantic = [
            StartError::LogInstall(LogError::Setup("audit sink".into())),
            StartError::McpPolicy("denied".into()),
            StartError::Output {
                what: "the outcome",
                source: std::io::Error::other("full"),
            },
        ];
        for e in semantic {
            assert_eq!(e.exit_code(), EXIT_SEMANTIC, "{e:?}");
        }
    }

    #[test]
    fn report_prefixes_agentd_except_for_the_parsers_own_text() {
        let mut out = Vec::new();
        let code =
            StartError::LogInstall(LogError::Setup("audit sink: nope".into())).report(&mut out);
        assert_eq!(code, EXIT_SEMANTIC);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "agentd: failed to install log subscriber: audit sink: nope\n"
        );
        let mut out = Vec::new();
        let code = StartError::Flags("error: bad\n\nUsage: x [OPTIONS]\n".into()).report(&mut out);
        assert_eq!(code, EXIT_USAGE);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "error: bad\n\nUsage: x [OPTIONS]\n"
        );
    }
}
