//! The process's tracing subscriber: a span registry, the per-thread stack
//! of entered spans, and the [`Logger`] that turns records into lines.
//!
//! Small on purpose (the main log and the audit sink are all it serves):
//! spans live in one locked map keyed by id, events are formatted by
//! [`super::format`] and written by [`super::sink`]. Filtering is decided
//! per callsite once ([`Interest`] caching), so a disabled `debug!` costs a
//! load and a branch. The logger can be replaced at run time (each
//! [`install`] swaps it and rebuilds the callsite cache); the subscriber
//! itself is registered as the global default once.
//!
//! Audit events (target `agentd::audit`) reach the audit sink whatever the
//! main log's level: the audit sink's interest is added to the filter's,
//! not subject to it (dialect 1 let the main level filter audit events out; docs/dialect.md §15).

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use serde_json::{Number, Value};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, Level, LevelFilter, Metadata, Subscriber};

use super::filter::Filter;
use super::format::{self, Fields, SpanView, Val};
use super::redact::{Redactor, scrub};
use super::sink::Sink;
use super::{AUDIT_TARGET, LogFormat};

/// The main log: what passes `filter`, in `format`, to `sink`.
#[derive(Debug)]
pub struct MainLog {
    pub(crate) filter: Filter,
    pub(crate) format: LogFormat,
    pub(crate) sink: Sink,
    pub(crate) redact: Redactor,
}

/// The audit sink: every `agentd::audit` event, redacted, as JSON lines.
#[derive(Debug)]
pub struct AuditLog {
    pub(crate) sink: Sink,
    pub(crate) redact: Redactor,
}

/// Everything a record can be written to.
#[derive(Debug)]
pub struct Logger {
    /// `None` when logging is disabled (`--quiet`, `enabled = false`).
    pub(crate) main: Option<MainLog>,
    /// `None` without `[logging.audit]`.
    pub(crate) audit: Option<AuditLog>,
    /// The OTLP exporter, with `[logging.otel]`.
    pub(crate) otel: Option<Arc<dyn super::export::SpanExporter>>,
}

impl Logger {
    fn main_enabled(&self, target: &str, level: &Level) -> bool {
        self.main
            .as_ref()
            .is_some_and(|m| m.filter.enabled(target, level))
    }

    fn audit_wants(&self, target: &str) -> bool {
        self.audit.is_some() && target == AUDIT_TARGET
    }

    /// Whether a record of `target` at `level` goes anywhere.
    pub(crate) fn wants(&self, target: &str, level: &Level) -> bool {
        self.audit_wants(target) || self.main_enabled(target, level)
    }

    /// Whether spans of this callsite are exported (all of the runtime's,
    /// whatever the main log's level).
    fn exports(&self, meta: &Metadata<'_>) -> bool {
        self.otel.is_some() && meta.is_span() && meta.target().starts_with("agentd")
    }

    fn max_level(&self) -> LevelFilter {
        if self.otel.is_some() {
            // Exported spans are info or debug.
            return LevelFilter::TRACE;
        }
        let main = self
            .main
            .as_ref()
            .map_or(LevelFilter::OFF, |m| m.filter.max_level());
        // Audit events are info or warn.
        if self.audit.is_some() {
            main.max(LevelFilter::INFO)
        } else {
            main
        }
    }

    /// Write one record to every sink that wants it. `parent` is the
    /// innermost span of the record's context.
    pub fn emit(&self, level: &Level, target: &str, mut fields: Fields, parent: Option<u64>) {
        let now = SystemTime::now();
        let to_main = self.main_enabled(target, level);
        if let Some(audit) = self.audit.as_ref().filter(|_| target == AUDIT_TARGET) {
            let mut redacted = if to_main {
                fields.clone()
            } else {
                std::mem::take(&mut fields)
            };
            audit.redact.apply(&mut redacted);
            let mut line = format::audit_line(now, level, target, &redacted);
            scrub(&mut line);
            audit.sink.write_line(&line);
        }
        let Some(main) = self.main.as_ref().filter(|_| to_main) else {
            return;
        };
        main.redact.apply(&mut fields);
        let mut spans = span_chain(parent);
        for span in &mut spans {
            main.redact.apply(&mut span.fields);
        }
        let mut line = match main.format {
            LogFormat::Text => format::text_line(now, level, target, &fields, &spans),
            LogFormat::Json => format::json_line(now, level, target, &fields, &spans),
        };
        scrub(&mut line);
        main.sink.write_line(&line);
    }
}

static LOGGER: RwLock<Option<Arc<Logger>>> = RwLock::new(None);
static GLOBAL: OnceLock<bool> = OnceLock::new();

/// The installed logger, if any.
pub(crate) fn current() -> Option<Arc<Logger>> {
    LOGGER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The logger for a record made on this thread: a test's thread-scoped
/// subscriber's, else the installed one.
pub(crate) fn active() -> Option<Arc<Logger>> {
    scoped().or_else(current)
}

/// The logger of a thread-scoped subscriber of ours (tests).
pub(crate) fn scoped() -> Option<Arc<Logger>> {
    // No subscriber with a fixed logger was ever made, so no thread has one
    // in scope: skip looking up the thread's dispatcher and downcasting it
    // (two of these per served run; docs/performance.md, "The run's own
    // cost").
    if !FIXED_MADE.load(Ordering::Acquire) {
        return None;
    }
    tracing_core::dispatcher::get_default(|d| {
        d.downcast_ref::<ObsSubscriber>()
            .and_then(|s| s.fixed.clone())
    })
}

/// The installed logger's answer to `wants(AUDIT_TARGET, level)`, one bit
/// per level, and [`INSTALLED`] once a logger is installed. The logger never
/// changes after [`install`] (a new one replaces it), so audit checks on hot
/// paths read this bit instead of locking [`LOGGER`] and walking its filter
/// (docs/performance.md, "Serving CPU, round 5").
static AUDIT_WANTS: AtomicU8 = AtomicU8::new(0);
const INSTALLED: u8 = 1 << 7;

pub(crate) fn level_bit(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 1,
        Level::DEBUG => 1 << 1,
        Level::INFO => 1 << 2,
        Level::WARN => 1 << 3,
        Level::ERROR => 1 << 4,
    }
}

/// [`AUDIT_WANTS`] for `logger` once installed.
pub(crate) fn audit_bits(logger: &Logger) -> u8 {
    LEVELS
        .iter()
        .filter(|level| logger.wants(AUDIT_TARGET, level))
        .fold(INSTALLED, |bits, level| bits | level_bit(level))
}

pub(crate) const LEVELS: [Level; 5] = [
    Level::TRACE,
    Level::DEBUG,
    Level::INFO,
    Level::WARN,
    Level::ERROR,
];

/// Whether the installed logger wants an audit event at `level`; `None`
/// when no logger is installed.
pub(crate) fn installed_wants_audit(level: &Level) -> Option<bool> {
    let wants = AUDIT_WANTS.load(Ordering::Acquire);
    (wants & INSTALLED != 0).then_some(wants & level_bit(level) != 0)
}

/// Make `logger` the process's logger; the first call also registers the
/// subscriber as the global tracing default. Returns `false` when another
/// subscriber already owns the global default (an embedding program's):
/// then [`super::audit`] still reaches our sinks, but spans and events go
/// to that subscriber.
pub(crate) fn install(logger: Logger) -> bool {
    let wants = audit_bits(&logger);
    {
        let mut installed = LOGGER.write().unwrap_or_else(PoisonError::into_inner);
        *installed = Some(Arc::new(logger));
        AUDIT_WANTS.store(wants, Ordering::Release);
    }
    let ours = *GLOBAL.get_or_init(|| {
        tracing_core::dispatcher::set_global_default(Dispatch::new(ObsSubscriber { fixed: None }))
            .is_ok()
    });
    // Filters changed: every callsite's cached interest must be recomputed.
    tracing_core::callsite::rebuild_interest_cache();
    ours
}

/// A live span: its callsite, fields, parent and reference count.
struct SpanRec {
    meta: &'static Metadata<'static>,
    fields: Fields,
    parent: Option<u64>,
    refs: usize,
    /// Its identity and start, when it is exported.
    export: Option<(super::export::SpanIds, SystemTime)>,
}

/// Live spans by id. A `Vec` searched linearly: a run has a handful of live
/// spans (the run, the node, its child walks), and a map type would add
/// kilobytes of code to every binary.
static SPANS: Mutex<Vec<(u64, SpanRec)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Spans entered on this thread, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn spans() -> std::sync::MutexGuard<'static, Vec<(u64, SpanRec)>> {
    SPANS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn find(list: &mut [(u64, SpanRec)], id: u64) -> Option<&mut SpanRec> {
    list.iter_mut().find(|(k, _)| *k == id).map(|(_, rec)| rec)
}

/// The innermost span entered on this thread.
pub(crate) fn stack_top() -> Option<u64> {
    STACK
        .try_with(|s| s.borrow().last().copied())
        .ok()
        .flatten()
}

/// The context of a record whose innermost span is `parent`, outermost first.
fn span_chain(parent: Option<u64>) -> Vec<SpanView> {
    let list = spans();
    let mut chain = Vec::new();
    let mut next = parent;
    // Parents always predate children, so this ends; the bound is a guard.
    while let Some(id) = next
        && chain.len() < 64
    {
        let Some((_, rec)) = list.iter().find(|(k, _)| *k == id) else {
            break;
        };
        chain.push(SpanView {
            name: rec.meta.name(),
            fields: rec.fields.clone(),
        });
        next = rec.parent;
    }
    chain.reverse();
    chain
}

/// A root span that recorded an inbound trace (`http.request`'s `trace_id`
/// and `parent_id`) continues it: same trace, the caller's span as remote
/// parent, sampling decided again on that trace id.
fn continue_remote_trace(rec: &mut SpanRec, subscriber: &ObsSubscriber) {
    use serde_json::Value;
    if rec.parent.is_some() {
        return;
    }
    let text = |name: &str| {
        rec.fields.iter().find_map(|(k, v)| match v {
            Val::Json(Value::String(s)) if k == name => Some(s.clone()),
            _ => None,
        })
    };
    let (trace, parent) = (text("trace_id"), text("parent_id"));
    let Some((ids, _)) = rec.export.as_mut() else {
        return;
    };
    if let Some(trace_id) = trace.and_then(|t| super::export::from_hex::<16>(&t)) {
        ids.trace_id = trace_id;
        if let Some(exporter) = subscriber.logger().and_then(|l| l.otel.clone()) {
            ids.sampled = exporter.samples(&trace_id);
        }
    }
    if let Some(parent) = parent.and_then(|t| super::export::from_hex::<8>(&t)) {
        ids.parent = Some(parent);
        ids.remote_parent = true;
    }
}

/// Collects field values into [`Fields`]; a field recorded again replaces
/// its earlier value.
struct Collect<'a>(&'a mut Fields);

impl Collect<'_> {
    fn put(&mut self, field: &Field, value: Val) {
        let name = field.name();
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((Cow::Borrowed(name), value)),
        }
    }
}

impl Visit for Collect<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities are not JSON numbers; spelled out here rather
        // than through float formatting, which would cost every binary ~16 KB.
        let v = match Number::from_f64(value) {
            Some(n) => Val::Json(Value::Number(n)),
            None if value.is_nan() => Val::Raw("NaN".to_owned()),
            None if value > 0.0 => Val::Raw("inf".to_owned()),
            None => Val::Raw("-inf".to_owned()),
        };
        self.put(field, v);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        // Nothing logs 128-bit values; out of i64 range they are marked, not
        // formatted (128-bit formatting is code every binary would carry).
        let v = match i64::try_from(value) {
            Ok(v) => Val::Json(Value::from(v)),
            Err(_) => Val::Raw("<i128>".to_owned()),
        };
        self.put(field, v);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        let v = match u64::try_from(value) {
            Ok(v) => Val::Json(Value::from(v)),
            Err(_) => Val::Raw("<u128>".to_owned()),
        };
        self.put(field, v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Val::Json(Value::from(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Val::Json(Value::from(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Val::Json(Value::Bool(value)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Val::Json(Value::String(value.to_owned())));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Val::Raw(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Val::Raw(format!("{value:?}")));
    }
}

/// The subscriber registered as the global default (`fixed: None`: it
/// follows [`install`]). Tests give it a fixed logger and scope it to a
/// thread, so they never touch the process-wide one.
pub(crate) struct ObsSubscriber {
    fixed: Option<Arc<Logger>>,
}

/// An [`ObsSubscriber`] with a fixed logger has been made (only
/// [`ObsSubscriber::fixed`] makes one); [`scoped`] looks for one only then.
static FIXED_MADE: AtomicBool = AtomicBool::new(false);

impl ObsSubscriber {
    /// A subscriber that always writes to `logger`, for a thread's scope.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn fixed(logger: Arc<Logger>) -> Self {
        FIXED_MADE.store(true, Ordering::Release);
        Self {
            fixed: Some(logger),
        }
    }

    fn logger(&self) -> Option<Arc<Logger>> {
        match &self.fixed {
            Some(l) => Some(l.clone()),
            None => current(),
        }
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        self.logger()
            .is_some_and(|l| l.wants(meta.target(), meta.level()) || l.exports(meta))
    }
}

impl Subscriber for ObsSubscriber {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.wants(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.logger().map_or(LevelFilter::OFF, |l| l.max_level()))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => stack_top(),
            None => None,
        };
        let mut fields = Vec::new();
        attrs.record(&mut Collect(&mut fields));
        let mut list = spans();
        let export = self
            .logger()
            .and_then(|l| l.otel.clone())
            .filter(|_| attrs.metadata().target().starts_with("agentd"))
            .map(|exporter| {
                let parent_ids = parent
                    .and_then(|p| find(&mut list, p))
                    .and_then(|rec| rec.export.map(|(ids, _)| ids));
                let ids = match parent_ids {
                    Some(p) => super::export::SpanIds {
                        span_id: super::export::new_span_id(),
                        parent: Some(p.span_id),
                        remote_parent: false,
                        ..p
                    },
                    None => {
                        let (trace_id, span_id) = super::export::new_ids();
                        super::export::SpanIds {
                            trace_id,
                            span_id,
                            parent: None,
                            remote_parent: false,
                            sampled: exporter.samples(&trace_id),
                        }
                    }
                };
                (ids, SystemTime::now())
            });
        list.push((
            id,
            SpanRec {
                meta: attrs.metadata(),
                fields,
                parent,
                refs: 1,
                export,
            },
        ));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(rec) = find(&mut spans(), span.into_u64()) {
            values.record(&mut Collect(&mut rec.fields));
            continue_remote_trace(rec, self);
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(logger) = self.logger() else { return };
        let meta = event.metadata();
        let mut fields = Vec::new();
        event.record(&mut Collect(&mut fields));
        let parent = match event.parent() {
            Some(p) => Some(p.into_u64()),
            None if event.is_contextual() => stack_top(),
            None => None,
        };
        logger.emit(meta.level(), meta.target(), fields, parent);
    }

    fn enter(&self, span: &Id) {
        let id = span.into_u64();
        let _ = STACK.try_with(|s| s.borrow_mut().push(id));
    }

    fn exit(&self, span: &Id) {
        let id = span.into_u64();
        let _ = STACK.try_with(|s| {
            let mut s = s.borrow_mut();
            if let Some(pos) = s.iter().rposition(|x| *x == id) {
                s.remove(pos);
            }
        });
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(rec) = find(&mut spans(), span.into_u64()) {
            rec.refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let id = span.into_u64();
        let mut list = spans();
        let Some(pos) = list.iter().position(|(k, _)| *k == id) else {
            return false;
        };
        let rec = &mut list[pos].1;
        rec.refs = rec.refs.saturating_sub(1);
        if rec.refs == 0 {
            let (_, rec) = list.swap_remove(pos);
            drop(list);
            if let (Some((ids, start)), Some(exporter)) =
                (rec.export, self.logger().and_then(|l| l.otel.clone()))
            {
                exporter.finish(rec.meta.name(), ids, &rec.fields, start, SystemTime::now());
            }
            true
        } else {
            false
        }
    }

    fn current_span(&self) -> Current {
        let Some(id) = stack_top() else {
            return Current::none();
        };
        match spans().iter().find(|(k, _)| *k == id) {
            Some((_, rec)) => Current::new(Id::from_u64(id), rec.meta),
            None => Current::none(),
        }
    }
}
