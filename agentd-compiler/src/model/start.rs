//! How runs begin: `[[start_nodes]]`, `[[triggers]]` (tagged by `type`) and
//! `[[http_routes]]` with their rate limits (docs/dialect.md §4–§6).

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartNode {
    /// Referenced by routes, triggers and `--start`.
    pub name: String,
    /// Informational; a one-shot run without `--start` prefers the single `manual` start node.
    pub source: StartSource,
    /// The node the run starts at (default: the first node).
    #[serde(default)]
    pub entry_node: Option<String>,
}

/// Informational origin of a start node; only used to pick the one-shot default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartSource {
    Event,
    Http,
    Manual,
}

impl StartSource {
    pub fn as_str(self) -> &'static str {
        match self {
            StartSource::Event => "event",
            StartSource::Http => "http",
            StartSource::Manual => "manual",
        }
    }
}

/// `[[triggers]]`, internally tagged by `type`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Trigger {
    /// Accepted for dialect-1 compatibility; never fires.
    #[serde(rename = "mcp.resource.updated")]
    McpResourceUpdated(McpResourceTrigger),
    /// Accepted for dialect-1 compatibility; never fires.
    #[serde(rename = "mcp.resource.created")]
    McpResourceCreated(McpResourceTrigger),
    /// Accepted for dialect-1 compatibility; never fires.
    #[serde(rename = "internal.event")]
    InternalEvent(InternalEventTrigger),
    /// Run on a cron schedule (local time) in serve mode.
    #[serde(rename = "cron")]
    Cron(CronTrigger),
    /// Run repeatedly, a fixed delay after each run ends.
    #[serde(rename = "interval")]
    Interval(IntervalTrigger),
    /// Run when a watched file or directory changes.
    #[serde(rename = "fs_watch")]
    FsWatch(FsWatchTrigger),
}

impl Trigger {
    pub fn start_node(&self) -> &str {
        match self {
            Trigger::McpResourceUpdated(t) | Trigger::McpResourceCreated(t) => &t.start_node,
            Trigger::InternalEvent(t) => &t.start_node,
            Trigger::Cron(t) => &t.start_node,
            Trigger::Interval(t) => &t.start_node,
            Trigger::FsWatch(t) => &t.start_node,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Trigger::McpResourceUpdated(_) => "mcp.resource.updated",
            Trigger::McpResourceCreated(_) => "mcp.resource.created",
            Trigger::InternalEvent(_) => "internal.event",
            Trigger::Cron(_) => "cron",
            Trigger::Interval(_) => "interval",
            Trigger::FsWatch(_) => "fs_watch",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpResourceTrigger {
    pub server: String,
    pub resource: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalEventTrigger {
    pub name: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// Cron expression (5, 6 or 7 fields), local time.
    pub schedule: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalTrigger {
    /// Delay after each run, e.g. `30s`, `5m`.
    pub every: String,
    pub start_node: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsWatchTrigger {
    /// File or directory to watch.
    pub path: String,
    pub start_node: String,
    /// Watch subdirectories too.
    #[serde(default)]
    pub recursive: bool,
    /// Event kinds that fire (`[]`: all).
    #[serde(default)]
    pub events: Vec<String>,
    /// Quiet time per path before firing.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
}

fn default_debounce_ms() -> u64 {
    250
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRoute {
    /// HTTP method, compared case-insensitively.
    pub method: String,
    /// Exact path; the query string is dropped.
    pub path: String,
    /// The start node a request runs.
    pub start_node: String,
    /// JSON Schema file the decoded request body must match (compiled into the binary; else 400).
    #[serde(default)]
    pub input_schema: Option<String>,
    /// Auth reference: `bearer[:NAME]`, `basic[:NAME]`, `hmac[:NAME]`, `oidc[:NAME]`, `mtls` or `none`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Token bucket for this route.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Payload path (or `body_sha256`) whose value makes retries replay the stored response; needs `--state-dir`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// How long a stored response is replayed (default 86400).
    #[serde(default)]
    pub idempotency_ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Bucket size: requests allowed in a burst.
    pub capacity: u32,
    /// Tokens refilled per second.
    pub per_second: f32,
}
