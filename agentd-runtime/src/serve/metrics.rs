//! Process-wide counters of serve mode and their Prometheus text rendering
//! (`/metrics`, exposition format 0.0.4; docs/operations.md "Metrics").
//!
//! Owns [`Registry`]: the dialect's ten run counters (fed from each run's
//! [`RunReport`] after it ends, so HTTP and scheduled runs share them),
//! HTTP requests by route and status, latency histograms, trigger fires
//! and skips, connection and load-shedding counters, and
//! `agentd_build_info`. Everything is an atomic in a table sized at start
//! (routes and triggers are static), so recording never allocates or
//! locks. Rendering writes text; it parses nothing.
//!
//! Label values are route labels (`POST /hooks`), fixed names and status
//! numbers, never request data: an unmatched path is counted under the
//! label `unmatched`, so a scanner cannot grow the series without bound.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::graph::BuildInfo;
use crate::outcome::{Outcome, RunReport};

use crate::workflow::serve::ServeDef;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Status codes 100..=599 each get a counter.
const STATUSES: usize = 500;

/// A route-like label that is not a declared route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixed {
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
    /// `GET /readyz`.
    Readyz,
    /// Anything that matched no route (404, 405).
    Unmatched,
    /// Requests the HTTP layer refused before any handler saw them (an
    /// unparsable head: 400; a head over the cap: 431). Counted by status,
    /// with no latency.
    Unparsed,
}

/// Which label a request is counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteLabel {
    /// Route `i` of [`ServeDef::routes`].
    Route(usize),
    /// A fixed label.
    Fixed(Fixed),
}

/// Why a request or connection was shed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The connection cap was reached (the connection got a 503 and was closed).
    Connections,
    /// The run pool was saturated (503 + `Retry-After`).
    Runs,
    /// The pre-auth byte budget was spent: an HMAC route's unauthenticated
    /// body would have pushed the bytes in flight past it (503).
    PreAuthBytes,
}

#[derive(Debug)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        if let Some(c) = self.counts.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0_u64;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += load(&self.counts[i]);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        cumulative += load(&self.counts[BUCKETS.len()]);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        #[allow(clippy::cast_precision_loss)] // nanoseconds as seconds: display only
        let sum = load(&self.sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

#[derive(Debug)]
struct RouteStats {
    label: String,
    statuses: Box<[AtomicU64]>,
    latency: Histogram,
}

impl RouteStats {
    fn new(label: String) -> Self {
        Self {
            label,
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            latency: Histogram::new(),
        }
    }
}

#[derive(Debug)]
struct TriggerStats {
    label: String,
    fires: AtomicU64,
    skipped: AtomicU64,
}

/// The counters of one serving process.
#[derive(Debug)]
pub struct Registry {
    workflow_label: String,
    build_info_labels: String,
    starts: AtomicU64,
    completions: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    paused: AtomicU64,
    node_executions: AtomicU64,
    node_failures: AtomicU64,
    policy_denials: AtomicU64,
    llm_calls: AtomicU64,
    llm_tokens: AtomicU64,
    run_latency: Histogram,
    /// Declared routes first, then the [`Fixed`] labels in enum order.
    routes: Vec<RouteStats>,
    route_count: usize,
    triggers: Vec<TriggerStats>,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    shed_connections: AtomicU64,
    shed_runs: AtomicU64,
    shed_preauth: AtomicU64,
    offloaded: AtomicU64,
    /// Operations on the state store (`serve::store`): latency, failures,
    /// and ticks or runs taken over from a replica whose lease expired.
    store_latency: Histogram,
    store_errors: AtomicU64,
    lease_takeovers: AtomicU64,
    run_takeovers: AtomicU64,
    /// `fleet` (a shared store) or `local`.
    store_kind: &'static str,
}

impl Registry {
    /// Counters for the routes and triggers of `def`.
    #[must_use]
    pub fn new(info: &BuildInfo, def: &ServeDef) -> Self {
        let workflow_label = format!("workflow=\"{}\"", escape(info.workflow));
        let build_info_labels = format!(
            "{workflow_label},version=\"{}\",compiler_version=\"{}\",program_hash=\"{}\"",
            escape(env!("CARGO_PKG_VERSION")),
            escape(info.compiler_version),
            escape(info.program_hash),
        );
        let mut routes: Vec<RouteStats> = def
            .routes
            .iter()
            .map(|r| RouteStats::new(format!("{} {}", r.method, r.path)))
            .collect();
        let route_count = routes.len();
        for fixed in [
            "GET /healthz",
            "GET /metrics",
            "GET /readyz",
            "unmatched",
            "unparsed",
        ] {
            routes.push(RouteStats::new(fixed.to_owned()));
        }
        let triggers = def
            .triggers
            .iter()
            .enumerate()
            .map(|(i, t)| TriggerStats {
                label: format!("{}#{i}:{}", t.kind(), t.start()),
                fires: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
            })
            .collect();
        Self {
            workflow_label,
            build_info_labels,
            starts: AtomicU64::new(0),
            completions: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            paused: AtomicU64::new(0),
            node_executions: AtomicU64::new(0),
            node_failures: AtomicU64::new(0),
            policy_denials: AtomicU64::new(0),
            llm_calls: AtomicU64::new(0),
            llm_tokens: AtomicU64::new(0),
            run_latency: Histogram::new(),
            routes,
            route_count,
            triggers,
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            shed_connections: AtomicU64::new(0),
            shed_runs: AtomicU64::new(0),
            shed_preauth: AtomicU64::new(0),
            offloaded: AtomicU64::new(0),
            store_latency: Histogram::new(),
            store_errors: AtomicU64::new(0),
            lease_takeovers: AtomicU64::new(0),
            run_takeovers: AtomicU64::new(0),
            store_kind: "local",
        }
    }

    /// Name the store kind in the store metrics' labels (`fleet`, `local`).
    #[must_use]
    pub fn with_store_kind(mut self, kind: &'static str) -> Self {
        self.store_kind = kind;
        self
    }

    /// One operation on the state store took `took`; `ok` false counts an
    /// error (unreachable, timed out, or an unexpected reply).
    pub fn store_op(&self, took: Duration, ok: bool) {
        self.store_latency.observe(took);
        if !ok {
            bump(&self.store_errors);
        }
    }

    /// A trigger tick whose lease holder died was taken over.
    pub fn lease_takeover(&self) {
        bump(&self.lease_takeovers);
    }

    /// A run whose replica died was taken over by this one.
    pub fn run_takeover(&self) {
        bump(&self.run_takeovers);
    }

    /// Lease take-overs so far.
    #[must_use]
    pub fn lease_takeovers(&self) -> u64 {
        load(&self.lease_takeovers)
    }

    /// Fold one finished run into the process-wide counters.
    pub fn record_run(&self, report: &RunReport, took: Duration) {
        bump(&self.starts);
        let counter = match &report.outcome {
            Ok(Outcome::Completed { .. }) => &self.completions,
            Ok(Outcome::Failed { .. }) => &self.failures,
            Ok(Outcome::TimedOut { .. }) => &self.timeouts,
            Ok(Outcome::Paused { .. }) => &self.paused,
            Err(_) => &self.errors,
        };
        bump(counter);
        let m = &report.metrics;
        add(&self.node_executions, m.node_executions);
        add(&self.node_failures, m.node_failures);
        add(&self.policy_denials, m.policy_denials);
        add(&self.llm_calls, m.llm_calls);
        add(&self.llm_tokens, m.llm_tokens);
        self.run_latency.observe(took);
    }

    /// Count one HTTP response.
    pub fn record_request(&self, label: RouteLabel, status: u16, took: Duration) {
        let index = match label {
            RouteLabel::Route(i) if i < self.route_count => i,
            RouteLabel::Route(_) => self.route_count + Fixed::Unmatched as usize,
            RouteLabel::Fixed(f) => self.route_count + f as usize,
        };
        let Some(stats) = self.routes.get(index) else {
            return;
        };
        let slot = usize::from(status.clamp(100, 599) - 100);
        if let Some(c) = stats.statuses.get(slot) {
            bump(c);
        }
        stats.latency.observe(took);
    }

    /// Count one reply the HTTP layer sent by itself (label `unparsed`).
    pub fn record_unparsed(&self, status: u16) {
        let slot = usize::from(status.clamp(100, 599) - 100);
        if let Some(c) = self
            .routes
            .get(self.route_count + Fixed::Unparsed as usize)
            .and_then(|stats| stats.statuses.get(slot))
        {
            bump(c);
        }
    }

    /// A trigger fired (and its run started).
    pub fn trigger_fired(&self, trigger: usize) {
        if let Some(t) = self.triggers.get(trigger) {
            bump(&t.fires);
        }
    }

    /// A trigger's fire was skipped because its previous run was still going.
    pub fn trigger_skipped(&self, trigger: usize) {
        if let Some(t) = self.triggers.get(trigger) {
            bump(&t.skipped);
        }
    }

    /// How many fires of `trigger` were skipped so far.
    #[must_use]
    pub fn skipped(&self, trigger: usize) -> u64 {
        self.triggers.get(trigger).map_or(0, |t| load(&t.skipped))
    }

    /// A connection was accepted (`+1`) or closed (`-1`).
    pub fn connection_delta(&self, delta: i64) {
        self.connections_open.fetch_add(delta, Ordering::Relaxed);
        if delta > 0 {
            bump(&self.connections_total);
        }
    }

    /// Load was shed.
    pub fn shed(&self, why: Shed) {
        bump(match why {
            Shed::Connections => &self.shed_connections,
            Shed::Runs => &self.shed_runs,
            Shed::PreAuthBytes => &self.shed_preauth,
        });
    }

    /// Count one request body decoded (and run) on the blocking pool
    /// because it was too large for the reactor thread.
    pub fn offloaded(&self) {
        bump(&self.offloaded);
    }

    /// The Prometheus text exposition of every series.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096 + self.routes.len() * 2048);
        let wf = &self.workflow_label;
        let counters: [(&str, &str, &AtomicU64); 10] = [
            (
                "agentd_workflow_starts_total",
                "Runs started.",
                &self.starts,
            ),
            (
                "agentd_workflow_completions_total",
                "Runs that completed.",
                &self.completions,
            ),
            (
                "agentd_workflow_failures_total",
                "Runs that ended failed.",
                &self.failures,
            ),
            (
                "agentd_workflow_timeouts_total",
                "Runs stopped by the deadline.",
                &self.timeouts,
            ),
            (
                "agentd_workflow_errors_total",
                "Runs that aborted with a hard error.",
                &self.errors,
            ),
            (
                "agentd_node_executions_total",
                "Node visits.",
                &self.node_executions,
            ),
            (
                "agentd_node_failures_total",
                "Node visits that ended in a hard error.",
                &self.node_failures,
            ),
            (
                "agentd_policy_denials_total",
                "Policy denials.",
                &self.policy_denials,
            ),
            ("agentd_llm_calls_total", "LLM calls.", &self.llm_calls),
            (
                "agentd_llm_tokens_total",
                "LLM tokens billed.",
                &self.llm_tokens,
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name}{{{wf}}} {}", load(value));
        }
        header(
            &mut out,
            "agentd_workflow_paused_total",
            "Runs that paused for approval.",
            "counter",
        );
        let _ = writeln!(
            out,
            "agentd_workflow_paused_total{{{wf}}} {}",
            load(&self.paused)
        );

        header(
            &mut out,
            "agentd_build_info",
            "Build provenance; always 1.",
            "gauge",
        );
        let _ = writeln!(out, "agentd_build_info{{{}}} 1", self.build_info_labels);

        header(
            &mut out,
            "agentd_workflow_run_duration_seconds",
            "Wall time of runs, HTTP and scheduled.",
            "histogram",
        );
        self.run_latency
            .render(&mut out, "agentd_workflow_run_duration_seconds", wf);

        header(
            &mut out,
            "agentd_http_requests_total",
            "HTTP responses by route and status.",
            "counter",
        );
        for r in &self.routes {
            for (i, c) in r.statuses.iter().enumerate() {
                let n = load(c);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "agentd_http_requests_total{{{wf},route=\"{}\",status=\"{}\"}} {n}",
                        escape(&r.label),
                        i + 100
                    );
                }
            }
        }
        header(
            &mut out,
            "agentd_http_request_duration_seconds",
            "Time from request head to response, by route.",
            "histogram",
        );
        // `unparsed` (last) has no latency: the HTTP layer times nothing.
        let timed = self.routes.len().saturating_sub(1);
        for r in &self.routes[..timed] {
            let labels = format!("{wf},route=\"{}\"", escape(&r.label));
            r.latency
                .render(&mut out, "agentd_http_request_duration_seconds", &labels);
        }

        header(
            &mut out,
            "agentd_http_connections_open",
            "Open client connections.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "agentd_http_connections_open{{{wf}}} {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "agentd_http_connections_total",
            "Accepted connections.",
            "counter",
        );
        let _ = writeln!(
            out,
            "agentd_http_connections_total{{{wf}}} {}",
            load(&self.connections_total)
        );
        header(
            &mut out,
            "agentd_http_shed_total",
            "Load shed with 503: over the connection cap, the run pool saturated, or the pre-auth byte budget spent.",
            "counter",
        );
        let _ = writeln!(
            out,
            "agentd_http_shed_total{{{wf},reason=\"connections\"}} {}",
            load(&self.shed_connections)
        );
        let _ = writeln!(
            out,
            "agentd_http_shed_total{{{wf},reason=\"runs\"}} {}",
            load(&self.shed_runs)
        );
        let _ = writeln!(
            out,
            "agentd_http_shed_total{{{wf},reason=\"preauth_bytes\"}} {}",
            load(&self.shed_preauth)
        );
        header(
            &mut out,
            "agentd_http_bodies_offloaded_total",
            "Request bodies too large for the reactor thread, decoded and run on the blocking pool.",
            "counter",
        );
        let _ = writeln!(
            out,
            "agentd_http_bodies_offloaded_total{{{wf}}} {}",
            load(&self.offloaded)
        );

        let store = format!("{wf},store=\"{}\"", self.store_kind);
        header(
            &mut out,
            "agentd_store_operation_duration_seconds",
            "Time of each state-store operation (idempotency claim and record, rate-limit token, tick lease).",
            "histogram",
        );
        self.store_latency
            .render(&mut out, "agentd_store_operation_duration_seconds", &store);
        header(
            &mut out,
            "agentd_store_errors_total",
            "State-store operations that failed (unreachable, timed out, unexpected reply).",
            "counter",
        );
        let _ = writeln!(
            out,
            "agentd_store_errors_total{{{store}}} {}",
            load(&self.store_errors)
        );
        header(
            &mut out,
            "agentd_lease_takeovers_total",
            "Trigger ticks (lease=\"tick\") and runs (lease=\"run\") taken over after the replica holding their lease stopped renewing it.",
            "counter",
        );
        let _ = writeln!(
            out,
            "agentd_lease_takeovers_total{{{store},lease=\"tick\"}} {}",
            load(&self.lease_takeovers)
        );
        let _ = writeln!(
            out,
            "agentd_lease_takeovers_total{{{store},lease=\"run\"}} {}",
            load(&self.run_takeovers)
        );

        if !self.triggers.is_empty() {
            header(
                &mut out,
                "agentd_trigger_fires_total",
                "Scheduled trigger fires that ran.",
                "counter",
            );
            for t in &self.triggers {
                let _ = writeln!(
                    out,
                    "agentd_trigger_fires_total{{{wf},trigger=\"{}\"}} {}",
                    escape(&t.label),
                    load(&t.fires)
                );
            }
            header(
                &mut out,
                "agentd_trigger_skipped_total",
                "Fires skipped because the trigger's previous run was still going.",
                "counter",
            );
            for t in &self.triggers {
                let _ = writeln!(
                    out,
                    "agentd_trigger_skipped_total{{{wf},trigger=\"{}\"}} {}",
                    escape(&t.label),
                    load(&t.skipped)
                );
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A label value with `\`, `"` and newline escaped (exposition format).
#[must_use]
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::outcome::{Metrics, Trace};
    use crate::workflow::serve::{AuthRef, RouteDef, TriggerDef};

    static ROUTES: [RouteDef; 1] = [RouteDef {
        method: "POST",
        path: "/hook",
        start: "main",
        auth: AuthRef::None,
        rate_limit: None,
        idempotency: None,
        input_schema: None,
        inline: true,
    }];
    static TRIGGERS: [TriggerDef; 1] = [TriggerDef::Interval {
        every: "5s",
        every_ms: 5000,
        start: "tick",
    }];
    static DEF: ServeDef = ServeDef {
        routes: &ROUTES,
        triggers: &TRIGGERS,
    };
    static INFO: BuildInfo = BuildInfo {
        workflow: "wf \"q\"",
        compiler_version: "0.1.0",
        sources: &[],
        capabilities: &[],
        program_hash: "abc123",
        signer: None,
        policy_key: None,
    };

    fn report(outcome: Result<Outcome, Error>, nodes: u64) -> RunReport {
        RunReport {
            outcome,
            trace: Trace::default(),
            metrics: Metrics {
                node_executions: nodes,
                llm_tokens: 7,
                ..Metrics::default()
            },
            execution_id: String::new(),
        }
    }

    #[test]
    fn runs_are_counted_by_outcome_and_node_metrics_summed() {
        let r = Registry::new(&INFO, &DEF);
        let done = Outcome::Completed {
            final_value: serde_json::Value::Null,
            last_node: None,
            http_response: None,
        };
        r.record_run(&report(Ok(done), 3), Duration::from_millis(2));
        r.record_run(
            &report(Err(Error::Config("x".into())), 2),
            Duration::from_millis(2),
        );
        let text = r.render();
        let wf = "workflow=\"wf \\\"q\\\"\"";
        for line in [
            format!("agentd_workflow_starts_total{{{wf}}} 2"),
            format!("agentd_workflow_completions_total{{{wf}}} 1"),
            format!("agentd_workflow_errors_total{{{wf}}} 1"),
            format!("agentd_node_executions_total{{{wf}}} 5"),
            format!("agentd_llm_tokens_total{{{wf}}} 14"),
            format!("agentd_workflow_run_duration_seconds_count{{{wf}}} 2"),
            format!(
                "agentd_build_info{{{wf},version=\"{}\",compiler_version=\"0.1.0\",program_hash=\"abc123\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }

    #[test]
    fn requests_are_counted_by_route_label_and_status_with_latency_buckets() {
        let r = Registry::new(&INFO, &DEF);
        r.record_request(RouteLabel::Route(0), 200, Duration::from_micros(300));
        r.record_request(RouteLabel::Route(0), 200, Duration::from_millis(30));
        r.record_request(RouteLabel::Fixed(Fixed::Unmatched), 404, Duration::ZERO);
        r.record_request(RouteLabel::Fixed(Fixed::Healthz), 200, Duration::ZERO);
        let text = r.render();
        let has = |needle: &str| text.lines().any(|l| l.ends_with(needle) || l == needle);
        assert!(has("route=\"POST /hook\",status=\"200\"} 2"), "{text}");
        assert!(has("route=\"unmatched\",status=\"404\"} 1"), "{text}");
        assert!(has("route=\"GET /healthz\",status=\"200\"} 1"), "{text}");
        assert!(has("route=\"POST /hook\",le=\"0.0005\"} 1"), "{text}");
        assert!(has("route=\"POST /hook\",le=\"0.025\"} 1"), "{text}");
        assert!(has("route=\"POST /hook\",le=\"0.05\"} 2"), "{text}");
        assert!(has("route=\"POST /hook\",le=\"+Inf\"} 2"), "{text}");
        // Every series has HELP and TYPE lines.
        assert!(text.contains("# TYPE agentd_http_requests_total counter"));
        assert!(text.contains("# TYPE agentd_http_request_duration_seconds histogram"));
    }

    #[test]
    fn trigger_skips_are_labelled_by_trigger() {
        let r = Registry::new(&INFO, &DEF);
        r.trigger_fired(0);
        r.trigger_skipped(0);
        r.trigger_skipped(0);
        r.trigger_skipped(9); // out of range: ignored, never a panic
        assert_eq!(r.skipped(0), 2);
        let text = r.render();
        assert!(
            text.contains("agentd_trigger_skipped_total{workflow=\"wf \\\"q\\\"\",trigger=\"interval#0:tick\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
