//! Which logging settings win: the command line, then the environment,
//! then `[logging]`, then the defaults (`warn`, `text`, `stderr`, enabled),
//! decided per field (docs/dialect.md §12.4), and opening the result.
//!
//! Errors follow the dialect: a bad `--log-format` or `--log-target` on the
//! command line is a usage error (exit 2) while the same value from the
//! environment is ignored; an invalid level directive falls back to `info`
//! (we say so on stderr instead of silently); a log or audit file that
//! cannot be opened stops the binary (exit 5). `[logging.audit]` and
//! `rotation` come from the workflow only.

use tracing_core::LevelFilter;

use super::filter::Filter;
use super::redact::Redactor;
use super::sink::{Sink, Target};
use super::subscriber::{self, AuditLog, Logger, MainLog};
use super::{DEFAULT_AUDIT_TARGET, LogConfig, LogFormat, Rotation};

/// The logging flags of a compiled binary (`--log-level`, `--log-format`,
/// `--log-target`, `--quiet`; env twins applied), from its command line.
#[derive(Clone, Debug, Default)]
pub struct LogArgs {
    /// `--log-level`: a level or directives like `warn,agentd::engine=debug`.
    pub log_level: Option<String>,
    /// `--log-format`: text (alias pretty) or json.
    pub log_format: Option<String>,
    /// `--log-target`: stderr, stdout or file:PATH.
    pub log_target: Option<String>,
    /// `--quiet`: no log output (the [logging.audit] sink stays on).
    pub quiet: bool,
}

/// One setting as given outside the workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Given {
    /// The value (blank counts as unset).
    pub value: Option<String>,
    /// Whether it came from the environment (lenient) rather than the
    /// command line (strict).
    pub from_env: bool,
}

impl Given {
    /// A command-line value.
    #[must_use]
    pub fn cli(value: &str) -> Self {
        Self {
            value: Some(value.to_owned()),
            from_env: false,
        }
    }

    /// An environment value.
    #[must_use]
    pub fn env(value: &str) -> Self {
        Self {
            value: Some(value.to_owned()),
            from_env: true,
        }
    }

    fn get(&self) -> Option<&str> {
        self.value.as_deref().filter(|v| !v.trim().is_empty())
    }
}

/// The logging settings given outside the workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// `--log-level` / `AGENTD_LOG`.
    pub level: Given,
    /// `--log-format` / `AGENTD_LOG_FORMAT`.
    pub format: Given,
    /// `--log-target` / `AGENTD_LOG_TARGET`.
    pub target: Given,
    /// `--quiet` / `AGENTD_QUIET`.
    pub quiet: bool,
}

/// The effective settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Whether the main log is on.
    pub enabled: bool,
    /// The filter of the main log.
    pub filter: Filter,
    /// Its format.
    pub format: LogFormat,
    /// Its destination.
    pub target: Target,
    /// Rotation of a file destination.
    pub rotation: Rotation,
    /// The audit sink and its redaction, with `[logging.audit]`.
    pub audit: Option<(Target, Redactor)>,
    /// Extra names redacted in the main log (`redact_fields`).
    pub main_redact: Redactor,
    /// Things worth telling the operator (an ignored directive...).
    pub notes: Vec<String>,
    /// `[logging.otel]`, unless `--quiet` (which skips OTLP export too).
    pub otel: Option<crate::workflow::logging::OtelConfig>,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// A bad command-line value (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A log or audit file could not be opened (exit 5).
    #[error("{0}")]
    Setup(String),
}

/// Decide every setting.
///
/// # Errors
///
/// [`LogError::Usage`] for a bad `--log-format` or `--log-target`;
/// [`LogError::Setup`] for a baked audit target that does not parse (the
/// compiler rejects those, so only a hand-written `Workflow` can hit it).
pub fn resolve(inputs: &Inputs, baked: &LogConfig) -> Result<Settings, LogError> {
    let mut notes = Vec::new();

    let directive = inputs
        .level
        .get()
        .map(str::to_owned)
        .or_else(|| baked.level.map(str::to_owned))
        .unwrap_or_else(|| "warn".to_owned());
    let filter = match Filter::parse(&directive) {
        Ok(parsed) => {
            for skipped in parsed.skipped {
                notes.push(format!(
                    "log level directive `{skipped}` ignored: span and field filters are not supported"
                ));
            }
            parsed.filter
        }
        Err(e) => {
            notes.push(format!("invalid log level {e}; logging at `info`"));
            Filter::at(LevelFilter::INFO)
        }
    };

    let format = match inputs.format.get() {
        Some(v) => match (LogFormat::parse(v), inputs.format.from_env) {
            (Some(f), _) => Some(f),
            (None, false) => {
                return Err(LogError::Usage(format!(
                    "invalid value `{v}` for --log-format: expected text, pretty or json"
                )));
            }
            (None, true) => None,
        },
        None => None,
    }
    .or(baked.format)
    .unwrap_or(LogFormat::Text);

    let given_target = match inputs.target.get() {
        Some(v) => match (Target::parse(v), inputs.target.from_env) {
            (Ok(t), _) => Some(t),
            (Err(e), false) => return Err(LogError::Usage(format!("--log-target {e}"))),
            (Err(_), true) => None,
        },
        None => None,
    };
    let target = match given_target {
        Some(t) => t,
        None => match baked.target {
            Some(t) => {
                Target::parse(t).map_err(|e| LogError::Setup(format!("[logging].target {e}")))?
            }
            None => Target::Stderr,
        },
    };

    let enabled = !inputs.quiet && baked.enabled.unwrap_or(true);
    let extra = baked.audit.map_or(&[][..], |a| a.redact_fields);
    let audit = match baked.audit {
        Some(a) => {
            let t = Target::parse(a.target.unwrap_or(DEFAULT_AUDIT_TARGET))
                .map_err(|e| LogError::Setup(format!("[logging.audit].target {e}")))?;
            Some((t, Redactor::new(a.redact_fields, !a.include_reason)))
        }
        None => None,
    };
    Ok(Settings {
        enabled,
        filter,
        format,
        target,
        rotation: baked.rotation,
        audit,
        main_redact: Redactor::new(extra, false),
        notes,
        otel: baked.otel.filter(|_| !inputs.quiet),
    })
}

/// Open the sinks of `settings` and make them the process's logger.
/// Nothing is installed when the main log is off and there is no audit
/// sink.
///
/// # Errors
///
/// [`LogError::Setup`] when a log or audit file cannot be opened, or the
/// `[logging.otel]` exporter cannot start (or `otel` is `None`: a binary
/// built without it).
pub fn install(
    settings: &Settings,
    otel: Option<super::export::StartExporter>,
) -> Result<(), LogError> {
    let main = if settings.enabled {
        Some(MainLog {
            filter: settings.filter.clone(),
            format: settings.format,
            sink: Sink::open(&settings.target, settings.rotation).map_err(LogError::Setup)?,
            redact: settings.main_redact.clone(),
        })
    } else {
        None
    };
    let audit = match &settings.audit {
        Some((target, redact)) => Some(AuditLog {
            sink: Sink::open(target, Rotation::Never)
                .map_err(|e| LogError::Setup(format!("audit sink: {e}")))?,
            redact: redact.clone(),
        }),
        None => None,
    };
    // The runtime's own unit tests call `cli::run` many times in one process:
    // a process-wide logger there would write every later test's events to
    // the test runner's stderr. (Opening the sinks above is still tested.)
    if (main.is_none() && audit.is_none() && settings.otel.is_none()) || cfg!(test) {
        return Ok(());
    }
    let otel = match (&settings.otel, otel) {
        (Some(config), Some(start)) => Some(start(config).map_err(LogError::Setup)?),
        (Some(_), None) => {
            return Err(LogError::Setup(
                "[logging.otel] is set, but this binary was built without the `otel` feature"
                    .into(),
            ));
        }
        (None, _) => None,
    };
    subscriber::install(Logger { main, audit, otel });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::AuditConfig;
    use std::path::PathBuf;
    use tracing_core::Level;

    const BAKED: LogConfig = LogConfig {
        level: Some("debug"),
        format: Some(LogFormat::Json),
        target: Some("file:/var/log/wf.log"),
        enabled: Some(true),
        rotation: Rotation::Daily,
        audit: None,
        otel: None,
    };

    fn ok(inputs: &Inputs, baked: &LogConfig) -> Settings {
        match resolve(inputs, baked) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_are_warn_text_stderr_enabled() {
        let s = ok(&Inputs::default(), &LogConfig::NONE);
        assert_eq!(s.filter, Filter::at(LevelFilter::WARN));
        assert_eq!(
            (s.format, s.target, s.enabled, s.rotation),
            (LogFormat::Text, Target::Stderr, true, Rotation::Never)
        );
        assert!(s.audit.is_none() && s.notes.is_empty());
    }

    #[test]
    fn the_workflow_beats_the_defaults() {
        let s = ok(&Inputs::default(), &BAKED);
        assert!(s.filter.enabled("x", &Level::DEBUG));
        assert_eq!(s.format, LogFormat::Json);
        assert_eq!(s.target, Target::File(PathBuf::from("/var/log/wf.log")));
        assert_eq!(s.rotation, Rotation::Daily);
    }

    #[test]
    fn env_beats_the_workflow_and_cli_beats_env_per_field() {
        let env = Inputs {
            level: Given::env("error"),
            format: Given::env("text"),
            target: Given::env("STDOUT"),
            quiet: false,
        };
        let s = ok(&env, &BAKED);
        assert!(!s.filter.enabled("x", &Level::WARN));
        assert_eq!((s.format, s.target), (LogFormat::Text, Target::Stdout));

        // Only the level on the command line: the other fields keep their sources.
        let cli = Inputs {
            level: Given::cli("trace"),
            format: Given::default(),
            target: Given::env("stdout"),
            quiet: false,
        };
        let s = ok(&cli, &BAKED);
        assert!(s.filter.enabled("x", &Level::TRACE));
        assert_eq!((s.format, s.target), (LogFormat::Json, Target::Stdout));
    }

    #[test]
    fn bad_cli_values_are_usage_errors_and_bad_env_values_are_ignored() {
        let cli = Inputs {
            format: Given::cli("yaml"),
            ..Inputs::default()
        };
        assert!(
            matches!(resolve(&cli, &BAKED), Err(LogError::Usage(m)) if m.contains("--log-format"))
        );
        let cli = Inputs {
            target: Given::cli("syslog"),
            ..Inputs::default()
        };
        assert!(
            matches!(resolve(&cli, &BAKED), Err(LogError::Usage(m)) if m.contains("--log-target"))
        );

        let env = Inputs {
            format: Given::env("yaml"),
            target: Given::env("syslog"),
            ..Inputs::default()
        };
        let s = ok(&env, &BAKED);
        assert_eq!(s.format, LogFormat::Json, "falls back to [logging]");
        assert_eq!(s.target, Target::File(PathBuf::from("/var/log/wf.log")));
        assert_eq!(ok(&env, &LogConfig::NONE).format, LogFormat::Text);
    }

    #[test]
    fn pretty_is_text_and_blank_values_count_as_unset() {
        let s = ok(
            &Inputs {
                format: Given::cli("pretty"),
                level: Given::env("  "),
                ..Inputs::default()
            },
            &BAKED,
        );
        assert_eq!(s.format, LogFormat::Text);
        assert!(
            s.filter.enabled("x", &Level::DEBUG),
            "blank env level ⇒ [logging].level"
        );
    }

    #[test]
    fn an_invalid_directive_falls_back_to_info_with_a_note() {
        let s = ok(
            &Inputs {
                level: Given::cli("agentd=chatty"),
                ..Inputs::default()
            },
            &LogConfig::NONE,
        );
        assert_eq!(s.filter, Filter::at(LevelFilter::INFO));
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(s.notes[0].contains("agentd=chatty"), "{:?}", s.notes);
    }

    #[test]
    fn quiet_and_enabled_false_turn_the_main_log_off() {
        let quiet = Inputs {
            quiet: true,
            ..Inputs::default()
        };
        assert!(!ok(&quiet, &BAKED).enabled);
        let off = LogConfig {
            enabled: Some(false),
            ..LogConfig::NONE
        };
        assert!(!ok(&Inputs::default(), &off).enabled);
    }

    #[test]
    fn the_audit_sink_defaults_to_the_dialect_path_and_hides_reason() {
        let baked = LogConfig {
            audit: Some(AuditConfig {
                target: None,
                redact_fields: &["tenant"],
                include_reason: false,
            }),
            ..LogConfig::NONE
        };
        let s = ok(&Inputs::default(), &baked);
        let Some((target, redact)) = &s.audit else {
            panic!("no audit sink");
        };
        assert_eq!(
            *target,
            Target::File(PathBuf::from("/var/log/agent/audit.jsonl"))
        );
        assert!(redact.is_secret("reason") && redact.is_secret("TENANT"));
        assert!(s.main_redact.is_secret("tenant") && !s.main_redact.is_secret("reason"));
    }
}
