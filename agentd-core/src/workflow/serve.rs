//! What the compiler bakes for serve mode: routes, scheduled triggers and
//! the per-route settings, as `static` data.
//!
//! Owns [`ServeDef`] and its parts. Every type is const-constructible from
//! `&'static` data and already validated at build time (methods upper-cased,
//! cron schedules normalised to the `cron` crate's 6/7-field form, intervals
//! in milliseconds, fs_watch events as a bit set). This module describes; it
//! never parses workflow text and never starts anything.

/// Everything serve mode needs from the workflow: [`crate::Workflow::SERVE`].
#[derive(Debug)]
pub struct ServeDef {
    /// `[[http_routes]]` in declaration order.
    pub routes: &'static [RouteDef],
    /// The long-lived `[[triggers]]` (`cron`, `interval`, `fs_watch`) in
    /// declaration order; MCP and `internal.event` triggers never fire and
    /// are not baked.
    pub triggers: &'static [TriggerDef],
}

impl ServeDef {
    /// Serve mode with nothing to serve (the default of
    /// [`crate::Workflow::SERVE`]).
    pub const EMPTY: Self = Self {
        routes: &[],
        triggers: &[],
    };

    /// Whether there is anything to serve: a route or a long-lived trigger.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.triggers.is_empty()
    }
}

/// One `[[http_routes]]` entry.
#[derive(Debug)]
pub struct RouteDef {
    /// The method, upper-cased at build time; matched case-insensitively.
    pub method: &'static str,
    /// The exact path (no parameters, no trailing-slash folding).
    pub path: &'static str,
    /// The `[[start_nodes]]` name the route runs.
    pub start: &'static str,
    /// The route's `auth` reference.
    pub auth: AuthRef,
    /// The route's token bucket, if any.
    pub rate_limit: Option<RateLimitDef>,
    /// The route's idempotency key, if any.
    pub idempotency: Option<IdempotencyDef>,
    /// The route's `input_schema`, if any (read and compiled at build time).
    pub input_schema: Option<InputSchemaDef>,
    /// Every node the route's run can reach is pure computation (data and
    /// control kinds, no retry backoff, no child walks, no I/O), so the run
    /// executes on the connection's reactor thread instead of the blocking
    /// pool: a handoff to another thread would cost more than the run.
    pub inline: bool,
}

/// A route's `auth` reference (docs/operations.md "Authentication"), resolved at build
/// time: the binding it names exists, and the scheme's code is compiled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRef {
    /// No `auth`, `""` or `none`: anonymous.
    None,
    /// `bearer[:name]` (`default` when no name).
    Bearer(&'static str),
    /// `basic[:name]`.
    Basic(&'static str),
    /// `hmac[:name]`.
    Hmac(&'static str),
    /// `oidc:name`.
    Oidc(&'static str),
    /// `mtls`: the TLS client certificate is the credential.
    Mtls,
}

impl AuthRef {
    /// The route reference as written canonically (`bearer:default`, …).
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Self::None => "none".to_owned(),
            Self::Bearer(n) => format!("bearer:{n}"),
            Self::Basic(n) => format!("basic:{n}"),
            Self::Hmac(n) => format!("hmac:{n}"),
            Self::Oidc(n) => format!("oidc:{n}"),
            Self::Mtls => "mtls".to_owned(),
        }
    }
}

/// `rate_limit = { capacity, per_second }` (both checked > 0 at build time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimitDef {
    /// Bucket size; the bucket starts full.
    pub capacity: u32,
    /// Refill rate in tokens per second.
    pub per_second: f64,
}

/// `input_schema`: the JSON Schema a route's decoded request body must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSchemaDef {
    /// `input_schema` as written in the workflow (for errors at start).
    pub path: &'static str,
    /// The schema document, checked to be a valid JSON Schema at build time.
    pub schema: &'static str,
}

/// `idempotency_key` and `idempotency_ttl_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyDef {
    /// Where the key comes from.
    pub key: IdempotencyKey,
    /// How long a stored response is replayed (default 86 400 s).
    pub ttl_secs: u64,
}

/// The source of an idempotency key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdempotencyKey {
    /// `"body_sha256"`: the hex SHA-256 of the raw request body.
    BodySha256,
    /// A dotted path into the decoded payload (a leading `trigger.` already
    /// stripped), pre-split; it must resolve to a string, number or bool.
    Path(&'static [&'static str]),
}

/// One long-lived `[[triggers]]` entry.
#[derive(Debug)]
pub enum TriggerDef {
    /// `type = "cron"`.
    Cron {
        /// The schedule as written (the payload's `schedule`).
        schedule: &'static str,
        /// The schedule normalised for the `cron` crate (a 5-field
        /// expression gets a `0` seconds field), checked at build time.
        expr: &'static str,
        /// The start node each fire runs.
        start: &'static str,
    },
    /// `type = "interval"`.
    Interval {
        /// `every` as written.
        every: &'static str,
        /// `every` in milliseconds (> 0).
        every_ms: u64,
        /// The start node each fire runs.
        start: &'static str,
    },
    /// `type = "fs_watch"`.
    FsWatch {
        /// The watched path (must exist at start).
        path: &'static str,
        /// Watch subdirectories too.
        recursive: bool,
        /// The event kinds that fire, as [`FsEvents`] bits (never 0: an
        /// empty list in the workflow means all four).
        events: FsEvents,
        /// Quiet time per path before a fire (the last event kind wins).
        debounce_ms: u64,
        /// The start node each fire runs.
        start: &'static str,
    },
    /// `type = "mcp.resource.updated"` / `"mcp.resource.created"` (feature
    /// `mcp`): a server's resource notifications.
    McpResource {
        /// Which notification fires.
        event: McpResourceEvent,
        /// The `[[mcp_servers]]` name.
        server: &'static str,
        /// The URI pattern (the dialect's MCP matcher: `*`, a trailing-`*`
        /// prefix, or exact).
        resource: &'static str,
        /// The start node each fire runs.
        start: &'static str,
    },
}

/// What an `mcp.resource.*` trigger listens for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpResourceEvent {
    /// `notifications/resources/updated` of a subscribed URI.
    Updated,
    /// A URI that `resources/list` did not list before, looked for on each
    /// `notifications/resources/list_changed`.
    Created,
}

impl TriggerDef {
    /// The start node the trigger runs.
    #[must_use]
    pub const fn start(&self) -> &'static str {
        match self {
            Self::Cron { start, .. }
            | Self::Interval { start, .. }
            | Self::FsWatch { start, .. }
            | Self::McpResource { start, .. } => start,
        }
    }

    /// The dialect's trigger type (`cron`, `interval`, `fs_watch`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Cron { .. } => "cron",
            Self::Interval { .. } => "interval",
            Self::FsWatch { .. } => "fs_watch",
            Self::McpResource {
                event: McpResourceEvent::Updated,
                ..
            } => "mcp.resource.updated",
            Self::McpResource {
                event: McpResourceEvent::Created,
                ..
            } => "mcp.resource.created",
        }
    }
}

/// A set of `fs_watch` event kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsEvents(pub u8);

impl FsEvents {
    /// A file or directory appeared.
    pub const CREATE: Self = Self(1);
    /// File contents changed.
    pub const MODIFY: Self = Self(2);
    /// A file or directory disappeared (`delete` is an alias).
    pub const REMOVE: Self = Self(4);
    /// A name changed.
    pub const RENAME: Self = Self(8);
    /// All four (what an empty `events` list means).
    pub const ALL: Self = Self(15);

    /// Whether every kind in `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}
