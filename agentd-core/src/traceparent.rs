//! W3C `traceparent` (docs/operations.md "traceparent"): parsing an inbound
//! header and forming the outbound one a run sends on `http_request`.
//!
//! Owns the parse rules (four hyphen-separated parts: 2-hex version, 32-hex
//! trace id not all zeros, 16-hex parent id not all zeros, 2-hex flags;
//! lower-cased) and the run span id (one fresh 16-hex id per run, from the
//! clock, the process id and a counter). A header that breaks the rules is
//! ignored (`None`), never an error. This module never reads or writes
//! headers itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A valid inbound `traceparent`, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// 2 hex digits (any value is accepted).
    pub version: String,
    /// 32 hex digits, not all zeros.
    pub trace_id: String,
    /// 16 hex digits, not all zeros.
    pub parent_id: String,
    /// 2 hex digits; bit 0 is `sampled`.
    pub flags: String,
}

impl TraceParent {
    /// Parse a header value; `None` when it breaks any rule of docs/operations.md "traceparent".
    #[must_use]
    pub fn parse(header: &str) -> Option<Self> {
        let lower = header.trim().to_ascii_lowercase();
        let mut parts = lower.split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let zeros = |s: &str| s.bytes().all(|b| b == b'0');
        if !hex(version, 2)
            || !hex(trace_id, 32)
            || zeros(trace_id)
            || !hex(parent_id, 16)
            || zeros(parent_id)
            || !hex(flags, 2)
        {
            return None;
        }
        Some(Self {
            version: version.to_owned(),
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags: flags.to_owned(),
        })
    }

    /// Whether bit 0 of the flags (`sampled`) is set.
    #[must_use]
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.flags, 16).is_ok_and(|f| f & 1 == 1)
    }

    /// The header a child span `span_id` sends: same version, trace id and
    /// flags, `span_id` as the parent id.
    #[must_use]
    pub fn child(&self, span_id: &str) -> String {
        format!(
            "{}-{}-{}-{}",
            self.version, self.trace_id, span_id, self.flags
        )
    }
}

/// A fresh 16-hex span id, never all zeros.
#[must_use]
pub fn new_span_id() -> String {
    format!("{:016x}", random_u64())
}

/// A fresh id-sized number, never zero: splitmix64 over the clock, the
/// process id and a counter, so distinct per call in a process and
/// unlikely to collide across processes. Not a secret.
#[must_use]
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z =
        nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.max(1)
}

/// The outbound `traceparent` of a run whose trigger carried `inbound`:
/// `None` when there is no inbound header or it is invalid (cron, manual
/// and malformed-header runs originate no trace).
#[must_use]
pub fn outbound(inbound: Option<&str>) -> Option<String> {
    let parent = TraceParent::parse(inbound?)?;
    Some(parent.child(&new_span_id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";

    #[test]
    fn a_valid_header_is_lower_cased() {
        let tp = TraceParent::parse(VALID);
        assert_eq!(
            tp,
            Some(TraceParent {
                version: "00".into(),
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                parent_id: "00f067aa0ba902b7".into(),
                flags: "01".into(),
            })
        );
        assert!(tp.is_some_and(|t| t.sampled()));
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn outbound_keeps_the_trace_and_replaces_the_parent() {
        let out = outbound(Some(VALID)).unwrap_or_default();
        let parts: Vec<&str> = out.split('-').collect();
        assert_eq!(parts.len(), 4, "{out}");
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(parts[2], "00f067aa0ba902b7");
        assert!(TraceParent::parse(&out).is_some(), "{out}");
        assert_eq!(outbound(None), None);
        assert_eq!(outbound(Some("garbage")), None);
    }

    #[test]
    fn span_ids_differ_between_calls() {
        let (a, b) = (new_span_id(), new_span_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
