//! The seam between the subscriber and an OTLP exporter (`[logging.otel]`).
//!
//! The subscriber gives every exported span its [`SpanIds`] when it opens (a
//! child inherits its parent's trace; a root `http.request` with a valid
//! inbound `traceparent` continues the caller's trace) and hands the span to
//! the installed [`SpanExporter`] when it closes. The exporter itself (the
//! OTLP/gRPC client, its thread and its sampling ratio) is the runtime
//! facade's `otel` module, behind feature `otel`: the core names it only
//! through this trait (ARCHITECTURE.md, "The core and the facade").

use std::sync::Arc;
use std::time::SystemTime;

use super::OtelConfig;
use super::format::Fields;

/// The identity an open span carries for export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanIds {
    /// The trace.
    pub trace_id: [u8; 16],
    /// This span.
    pub span_id: [u8; 8],
    /// The parent's span id (ours, or the caller's when `remote_parent`).
    pub parent: Option<[u8; 8]>,
    /// Whether `parent` is the caller's span (an inbound `traceparent`).
    pub remote_parent: bool,
    /// Whether the trace is kept ([`SpanExporter::samples`]).
    pub sampled: bool,
}

/// Where finished spans go: the facade's OTLP exporter.
pub trait SpanExporter: Send + Sync + std::fmt::Debug {
    /// Whether a trace with `trace_id` is kept.
    fn samples(&self, trace_id: &[u8; 16]) -> bool;

    /// Queue a finished span; never blocks.
    fn finish(
        &self,
        name: &'static str,
        ids: SpanIds,
        fields: &Fields,
        start: SystemTime,
        end: SystemTime,
    );

    /// Send everything queued and wait for it (bounded).
    fn flush(&self);
}

/// Starts the exporter of a `[logging.otel]` block: the facade's
/// `otel::start` in a binary built with feature `otel`.
pub type StartExporter = fn(&OtelConfig) -> Result<Arc<dyn SpanExporter>, String>;

/// Fresh random-looking ids (not secrets): the clock, the process and a
/// counter through splitmix64, as `traceparent` span ids are made.
pub(crate) fn new_ids() -> ([u8; 16], [u8; 8]) {
    let a = crate::traceparent::random_u64();
    let b = crate::traceparent::random_u64();
    let c = crate::traceparent::random_u64();
    let mut trace = [0_u8; 16];
    trace[..8].copy_from_slice(&a.to_be_bytes());
    trace[8..].copy_from_slice(&b.to_be_bytes());
    (trace, c.to_be_bytes())
}

/// A fresh span id.
pub(crate) fn new_span_id() -> [u8; 8] {
    crate::traceparent::random_u64().to_be_bytes()
}

/// Hex text (`trace_id`, `parent_id` fields) as bytes; `None` unless it is
/// exactly `N` bytes of hex.
pub(crate) fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0_u8; N];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::from_hex;

    #[test]
    fn hex_ids_parse_only_at_their_length() {
        assert_eq!(from_hex::<2>("0aff"), Some([0x0a, 0xff]));
        assert_eq!(from_hex::<2>("0af"), None);
        assert_eq!(from_hex::<2>("0aff00"), None);
        assert_eq!(from_hex::<2>("0agg"), None);
    }
}
