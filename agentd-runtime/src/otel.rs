//! OTLP/gRPC export of the runtime's spans (`[logging.otel]`, feature
//! `otel`; docs/dialect.md §12.4), behind the core's
//! [`SpanExporter`](crate::obs::export::SpanExporter).
//!
//! Owns the exporter thread and the translation of a finished span of our
//! subscriber into OTLP span data. The subscriber gives every span a trace
//! id and span id when it opens (a child inherits its parent's trace; an
//! `http.request` with a valid inbound `traceparent` continues the caller's
//! trace, with the caller's span as remote parent) and hands the span here
//! when it closes. Spans travel through a bounded channel to one thread
//! (`agentd-otel`) that owns a single-threaded tokio runtime and the
//! opentelemetry-otlp tonic exporter, and sends batches of up to
//! [`BATCH`] spans at least every [`EVERY`]. A full channel drops the span
//! (counted, never blocking a run); a failed export is the audit event
//! `otel.flush_error`. Sampling keeps a trace when the low 8 bytes of its
//! trace id, as a fraction of 2⁶⁴, fall below `sample_ratio`
//! (TraceIdRatioBased). [`Exporter::flush`] sends what is queued and waits
//! for it, bounded, before the process exits.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use crate::obs::OtelConfig;
use crate::obs::export::{SpanExporter, SpanIds};
use crate::obs::format::{Fields, Val};

/// Most spans sent in one export call.
const BATCH: usize = 512;
/// Longest a finished span waits to be sent.
const EVERY: Duration = Duration::from_secs(1);
/// Spans queued between the runs and the exporter thread.
const QUEUE: usize = 4096;
/// Longest [`Exporter::flush`] waits.
const FLUSH_WAIT: Duration = Duration::from_secs(5);
/// Longest one export call may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

enum Msg {
    Span(Box<SpanData>),
    Flush(SyncSender<()>),
}

/// The running exporter: where finished spans go.
#[derive(Debug)]
pub(crate) struct Exporter {
    tx: Mutex<Option<SyncSender<Msg>>>,
    ratio: f64,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Span(_) => "Span",
            Msg::Flush(_) => "Flush",
        })
    }
}

impl Exporter {
    /// Start the exporter thread for `config`.
    ///
    /// # Errors
    ///
    /// The thread, its runtime or the gRPC client cannot be set up.
    pub(crate) fn start(config: &OtelConfig) -> Result<Arc<Self>, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        let config = *config;
        std::thread::Builder::new()
            .name("agentd-otel".to_owned())
            .spawn(move || worker(&config, &rx, &ready_tx))
            .map_err(|e| format!("[logging.otel]: cannot start the exporter thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Arc::new(Self {
                tx: Mutex::new(Some(tx)),
                ratio: config.sample_ratio,
                dropped: AtomicU64::new(0),
            })),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("[logging.otel]: the exporter thread stopped while starting".to_owned()),
        }
    }

    /// Whether a trace with `trace_id` is kept (TraceIdRatioBased).
    pub(crate) fn samples(&self, trace_id: &[u8; 16]) -> bool {
        if self.ratio >= 1.0 {
            return true;
        }
        let mut low = [0_u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        #[allow(clippy::cast_precision_loss)] // a fraction; precision loss is fine
        let fraction = u64::from_be_bytes(low) as f64 / 18_446_744_073_709_551_616.0;
        fraction < self.ratio
    }

    /// Queue a finished span. Never blocks: a full queue drops it.
    pub(crate) fn finish(
        &self,
        name: &'static str,
        ids: SpanIds,
        fields: &Fields,
        start: SystemTime,
        end: SystemTime,
    ) {
        if !ids.sampled {
            return;
        }
        let data = span_data(name, ids, fields, start, end);
        let guard = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = guard.as_ref() else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Span(Box::new(data))) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Send everything queued and wait for it (at most [`FLUSH_WAIT`]).
    pub(crate) fn flush(&self) {
        let guard = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = guard.as_ref() else { return };
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        if tx.send(Msg::Flush(done_tx)).is_ok() {
            drop(guard);
            let _ = done_rx.recv_timeout(FLUSH_WAIT);
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            crate::obs::audit(
                "otel.flush_error",
                serde_json::json!({"reason": format!("{dropped} span(s) dropped: the export queue was full")}),
            );
        }
    }
}

/// Start the exporter of `config`: the `otel` hook that `obs::install` calls
/// (the core's [`StartExporter`](crate::obs::export::StartExporter)).
///
/// # Errors
///
/// The thread, its runtime or the gRPC client cannot be set up.
pub(crate) fn start(config: &OtelConfig) -> Result<Arc<dyn SpanExporter>, String> {
    Exporter::start(config).map(|e| e as Arc<dyn SpanExporter>)
}

impl SpanExporter for Exporter {
    fn samples(&self, trace_id: &[u8; 16]) -> bool {
        Exporter::samples(self, trace_id)
    }

    fn finish(
        &self,
        name: &'static str,
        ids: SpanIds,
        fields: &Fields,
        start: SystemTime,
        end: SystemTime,
    ) {
        Exporter::finish(self, name, ids, fields, start, end);
    }

    fn flush(&self) {
        Exporter::flush(self);
    }
}

/// The TLS client of an `https://` endpoint: exactly the certificates of
/// `AGENTD_HTTP_CA_FILE` (else `SSL_CERT_FILE`) when one is named, else Mozilla's
/// roots; `None` for `http://`.
#[cfg(feature = "otel-tls")]
fn tls_config(endpoint: &str) -> Result<Option<Tls>, String> {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};

    if !endpoint.starts_with("https://") {
        return Ok(None);
    }
    let tls = ClientTlsConfig::new();
    Ok(Some(match crate::limits::ca_bundle_from_env()? {
        None => tls.with_webpki_roots(),
        Some(bundle) => {
            // tonic parses the PEM only when it connects; refuse an obviously
            // wrong file now, at start.
            let marker = b"-----BEGIN CERTIFICATE-----";
            if !bundle.pem.windows(marker.len()).any(|w| w == marker) {
                return Err(format!("{}: no certificate in the file", bundle.source));
            }
            tls.ca_certificate(Certificate::from_pem(bundle.pem))
        }
    }))
}

/// Without `otel-tls` an `https://` endpoint cannot be served (the compiler
/// enables the feature for one, so this is a binary built by hand).
#[cfg(not(feature = "otel-tls"))]
fn tls_config(endpoint: &str) -> Result<Option<Tls>, String> {
    if endpoint.starts_with("https://") {
        return Err(format!(
            "`{endpoint}` needs TLS, but this binary was built without the `otel-tls` feature"
        ));
    }
    Ok(None)
}

/// The TLS client configuration of an `https://` endpoint.
#[cfg(feature = "otel-tls")]
type Tls = opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
/// No TLS client without `otel-tls`.
#[cfg(not(feature = "otel-tls"))]
type Tls = std::convert::Infallible;

/// The exporter thread: build the client, then batch and send until the
/// sending side goes away.
fn worker(config: &OtelConfig, rx: &Receiver<Msg>, ready: &SyncSender<Result<(), String>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "[logging.otel]: cannot start the exporter runtime: {e}"
            )));
            return;
        }
    };
    let tls = match tls_config(config.endpoint) {
        Ok(tls) => tls,
        Err(e) => {
            let _ = ready.send(Err(format!("[logging.otel]: {e}")));
            return;
        }
    };
    // tonic's channel must be built inside the runtime.
    let built = runtime.block_on(async {
        let builder = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint)
            .with_timeout(EXPORT_TIMEOUT);
        #[cfg(feature = "otel-tls")]
        let builder = match tls {
            Some(tls) => opentelemetry_otlp::WithTonicConfig::with_tls_config(builder, tls),
            None => builder,
        };
        #[cfg(not(feature = "otel-tls"))]
        let _: Option<Tls> = tls;
        builder.build()
    });
    let mut exporter = match built {
        Ok(exporter) => exporter,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "[logging.otel]: cannot set up the OTLP exporter for `{}`: {e}",
                config.endpoint
            )));
            return;
        }
    };
    exporter.set_resource(&resource(config));
    let _ = ready.send(Ok(()));

    let mut batch: Vec<SpanData> = Vec::new();
    let mut oldest: Option<Instant> = None;
    loop {
        let wait = oldest.map_or(EVERY, |t| EVERY.saturating_sub(t.elapsed()));
        let mut flushed = None;
        match rx.recv_timeout(wait) {
            Ok(Msg::Span(span)) => {
                batch.push(*span);
                oldest.get_or_insert_with(Instant::now);
                if batch.len() < BATCH {
                    continue;
                }
            }
            Ok(Msg::Flush(done)) => flushed = Some(done),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                send(&runtime, &exporter, &mut batch);
                return;
            }
        }
        send(&runtime, &exporter, &mut batch);
        oldest = None;
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

fn send(
    runtime: &tokio::runtime::Runtime,
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: &mut Vec<SpanData>,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len();
    if let Err(e) = runtime.block_on(exporter.export(spans)) {
        crate::obs::audit(
            "otel.flush_error",
            serde_json::json!({"reason": format!("{count} span(s) not exported: {e}")}),
        );
    }
}

fn resource(config: &OtelConfig) -> Resource {
    Resource::builder_empty()
        .with_service_name(config.service_name)
        .with_attributes(
            config
                .resource_attrs
                .iter()
                .map(|(k, v)| KeyValue::new(*k, *v)),
        )
        .build()
}

/// A finished span as OTLP span data: `http.request` is a server span,
/// everything else internal; an `outcome` of `error` marks it failed.
fn span_data(
    name: &'static str,
    ids: SpanIds,
    fields: &Fields,
    start: SystemTime,
    end: SystemTime,
) -> SpanData {
    let attributes: Vec<KeyValue> = fields.iter().filter_map(|(k, v)| attribute(k, v)).collect();
    let failed = fields.iter().any(|(k, v)| {
        k == "outcome" && matches!(v, Val::Json(serde_json::Value::String(s)) if s == "error")
    });
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(ids.trace_id),
            SpanId::from_bytes(ids.span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: ids.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: ids.remote_parent,
        span_kind: if name == "http.request" {
            SpanKind::Server
        } else {
            SpanKind::Internal
        },
        name: Cow::Borrowed(name),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if failed {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: InstrumentationScope::builder("agentd")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

fn attribute(key: &str, value: &Val) -> Option<KeyValue> {
    use serde_json::Value;
    let key = key.to_owned();
    Some(match value {
        Val::Json(Value::String(s)) | Val::Raw(s) => KeyValue::new(key, s.clone()),
        Val::Json(Value::Bool(b)) => KeyValue::new(key, *b),
        Val::Json(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => KeyValue::new(key, i),
            (None, Some(f)) => KeyValue::new(key, f),
            (None, None) => KeyValue::new(key, n.to_string()),
        },
        Val::Json(Value::Null) => return None,
        Val::Json(other) => KeyValue::new(key, other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporter(ratio: f64) -> Exporter {
        Exporter {
            tx: Mutex::new(None),
            ratio,
            dropped: AtomicU64::new(0),
        }
    }

    #[test]
    fn sampling_follows_the_trace_id_fraction() {
        let low = |x: u64| {
            let mut t = [0_u8; 16];
            t[8..].copy_from_slice(&x.to_be_bytes());
            t
        };
        assert!(exporter(1.0).samples(&low(u64::MAX)));
        assert!(!exporter(0.0).samples(&low(0)));
        let half = exporter(0.5);
        assert!(half.samples(&low(1 << 62)));
        assert!(!half.samples(&low(3 << 62)));
    }

    #[test]
    fn a_finished_span_becomes_span_data_with_its_ids_and_fields() {
        let ids = SpanIds {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            remote_parent: true,
            sampled: true,
        };
        let fields: Fields = vec![
            (Cow::Borrowed("node_id"), Val::Json("save".into())),
            (Cow::Borrowed("outcome"), Val::Json("error".into())),
            (Cow::Borrowed("latency_ms"), Val::Json(4.into())),
        ];
        let t = SystemTime::UNIX_EPOCH;
        let data = span_data("http.request", ids, &fields, t, t);
        assert_eq!(data.span_context.trace_id(), TraceId::from_bytes([1; 16]));
        assert_eq!(data.parent_span_id, SpanId::from_bytes([3; 8]));
        assert!(data.parent_span_is_remote);
        assert_eq!(data.span_kind, SpanKind::Server);
        assert_eq!(data.status, Status::error(""));
        assert!(data.attributes.contains(&KeyValue::new("node_id", "save")));
        assert!(
            data.attributes
                .contains(&KeyValue::new("latency_ms", 4_i64))
        );
    }
}
