//! `[logging]` as the compiler bakes it ([`crate::Workflow::LOGGING`]): the
//! lowest-precedence source of the log settings. Resolving and installing
//! them is [`crate::obs`]'s; this module only describes.

/// The default `[logging.audit].target`.
pub const DEFAULT_AUDIT_TARGET: &str = "file:/var/log/agent/audit.jsonl";

/// `[logging]` as the compiler bakes it ([`crate::Workflow::LOGGING`]).
/// Values were checked at build time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogConfig {
    /// `level`: a filter directive.
    pub level: Option<&'static str>,
    /// `format`.
    pub format: Option<LogFormat>,
    /// `target`: `stderr`, `stdout` or `file:PATH`.
    pub target: Option<&'static str>,
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `rotation` of a file target.
    pub rotation: Rotation,
    /// `[logging.audit]`.
    pub audit: Option<AuditConfig>,
    /// `[logging.otel]`: OTLP/gRPC export of spans (feature `otel`).
    pub otel: Option<OtelConfig>,
}

impl LogConfig {
    /// No `[logging]` block.
    pub const NONE: LogConfig = LogConfig {
        level: None,
        format: None,
        target: None,
        enabled: None,
        rotation: Rotation::Never,
        audit: None,
        otel: None,
    };
}

/// `[logging.otel]`, as baked (validated at build time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OtelConfig {
    /// The OTLP/gRPC receiver, `http://host:port` or `https://…`.
    pub endpoint: &'static str,
    /// `service.name` of the exported resource (default `agentd`).
    pub service_name: &'static str,
    /// Further resource attributes.
    pub resource_attrs: &'static [(&'static str, &'static str)],
    /// Fraction of traces kept, by trace id (1.0 keeps all).
    pub sample_ratio: f64,
}

/// `[logging.audit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// `target`; `None` = [`DEFAULT_AUDIT_TARGET`].
    pub target: Option<&'static str>,
    /// `redact_fields`, added to the built-in list.
    pub redact_fields: &'static [&'static str],
    /// `include_reason`: keep `reason` fields unredacted.
    pub include_reason: bool,
}

/// `--log-format` / `[logging].format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (`text`, alias `pretty`).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` | `pretty` | `json`, any case.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("text") || t.eq_ignore_ascii_case("pretty") {
            Some(Self::Text)
        } else if t.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// `[logging].rotation` of a file target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rotation {
    /// One file, appended forever.
    #[default]
    Never,
    /// `<file>.YYYY-MM-DD`.
    Daily,
    /// `<file>.YYYY-MM-DD-HH`.
    Hourly,
    /// `<file>.YYYY-MM-DD-HH-MM`.
    Minutely,
}
