//! One log record → one line of text or JSON.
//!
//! The layouts follow tracing-subscriber's (docs/dialect.md §12.4) so
//! log pipelines built for dialect 1 keep working: **text** is
//! `TIMESTAMP LEVEL span{k=v}:span{k=v}: target: message k=v ...` without
//! ANSI colours; **json** is
//! `{"timestamp","level","fields":{...},"target","span":{...},"spans":[...]}`;
//! the audit sink writes `{"timestamp","level","target","fields"}`.
//!
//! Every record is exactly one line: control characters in messages and
//! raw values are escaped, so a value from outside (an error text, a path)
//! cannot forge a second log entry. Formatting is writing, not parsing: this
//! module never reads text back. Timestamps are UTC with microseconds,
//! computed from the UNIX clock without a date crate.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tracing_core::Level;

/// A field value as recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A typed value: strings print quoted in text, numbers and booleans bare.
    Json(Value),
    /// A `Debug`/`Display` rendering (`?x`, `%x`): printed bare in text.
    Raw(String),
}

/// One field: its name and value.
pub type Field = (Cow<'static, str>, Val);

/// The fields of an event or span, in recording order.
pub type Fields = Vec<Field>;

/// One span of an event's context: its name and fields.
#[derive(Clone, Debug)]
pub struct SpanView {
    /// The span's name, e.g. `node.execute`.
    pub name: &'static str,
    /// Its fields recorded so far.
    pub fields: Fields,
}

/// `LEVEL` as tracing-subscriber spells it.
#[must_use]
pub fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        _ => "TRACE",
    }
}

/// The text layout. `spans` runs from the outermost span to the innermost.
#[must_use]
pub fn text_line(
    now: SystemTime,
    level: &Level,
    target: &str,
    fields: &[Field],
    spans: &[SpanView],
) -> String {
    let mut line = String::with_capacity(128);
    push_timestamp(&mut line, now);
    // `{:>5}`: the level right-aligned in five columns.
    let level = level_str(level);
    line.push(' ');
    for _ in level.len()..5 {
        line.push(' ');
    }
    line.push_str(level);
    line.push(' ');
    for span in spans {
        line.push_str(span.name);
        if !span.fields.is_empty() {
            line.push('{');
            push_text_fields(&mut line, &span.fields, false);
            line.push('}');
        }
        line.push(':');
    }
    if !spans.is_empty() {
        line.push(' ');
    }
    line.push_str(target);
    line.push_str(": ");
    let message = fields.iter().find(|(k, _)| k == "message").map(|(_, v)| v);
    if let Some(message) = message {
        match message {
            Val::Json(Value::String(s)) => push_escaped(&mut line, s),
            Val::Raw(s) => push_escaped(&mut line, s),
            Val::Json(v) => line.push_str(&v.to_string()),
        }
        if fields.len() > 1 {
            line.push(' ');
        }
    }
    push_text_fields(&mut line, fields, true);
    line.push('\n');
    line
}

fn push_text_fields(line: &mut String, fields: &[Field], skip_message: bool) {
    let mut first = true;
    for (key, value) in fields {
        if skip_message && key == "message" {
            continue;
        }
        if !first {
            line.push(' ');
        }
        first = false;
        line.push_str(key);
        line.push('=');
        match value {
            // `Value`'s Display is compact JSON: strings quoted and escaped.
            Val::Json(v) => push_json_value(line, v),
            Val::Raw(s) => push_escaped(line, s),
        }
    }
}

/// Append `s` with control characters escaped, so it stays on one line.
fn push_escaped(line: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", u32::from(c));
            }
            c => line.push(c),
        }
    }
}

/// The JSON layout of the main log.
#[must_use]
pub fn json_line(
    now: SystemTime,
    level: &Level,
    target: &str,
    fields: &[Field],
    spans: &[SpanView],
) -> String {
    let mut line = String::with_capacity(160);
    line.push_str("{\"timestamp\":\"");
    push_timestamp(&mut line, now);
    line.push_str("\",\"level\":\"");
    line.push_str(level_str(level));
    line.push_str("\",\"fields\":");
    push_json_object(&mut line, fields, None);
    line.push_str(",\"target\":");
    push_json_str(&mut line, target);
    if let Some(current) = spans.last() {
        line.push_str(",\"span\":");
        push_json_object(&mut line, &current.fields, Some(current.name));
        line.push_str(",\"spans\":[");
        for (i, span) in spans.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_json_object(&mut line, &span.fields, Some(span.name));
        }
        line.push(']');
    }
    line.push_str("}\n");
    line
}

/// The audit sink's layout: no spans.
#[must_use]
pub fn audit_line(now: SystemTime, level: &Level, target: &str, fields: &[Field]) -> String {
    let mut line = String::with_capacity(160);
    line.push_str("{\"timestamp\":\"");
    push_timestamp(&mut line, now);
    line.push_str("\",\"level\":\"");
    line.push_str(level_str(level));
    line.push_str("\",\"target\":");
    push_json_str(&mut line, target);
    line.push_str(",\"fields\":");
    push_json_object(&mut line, fields, None);
    line.push_str("}\n");
    line
}

/// `fields` as one compact JSON object, in field order.
#[must_use]
pub fn object_text(fields: &[Field]) -> String {
    let mut text = String::new();
    push_json_object(&mut text, fields, None);
    text
}

/// `{"k":v,...}` in field order (a later duplicate key replaces nothing: both
/// are written, as tracing-subscriber does); `name` adds `"name":...` last.
fn push_json_object(line: &mut String, fields: &[Field], name: Option<&str>) {
    line.push('{');
    let mut first = true;
    for (key, value) in fields {
        if !first {
            line.push(',');
        }
        first = false;
        push_json_str(line, key);
        line.push(':');
        match value {
            Val::Json(v) => push_json_value(line, v),
            Val::Raw(s) => push_json_str(line, s),
        }
    }
    if let Some(name) = name {
        if !first {
            line.push(',');
        }
        line.push_str("\"name\":");
        push_json_str(line, name);
    }
    line.push('}');
}

/// `v` as compact JSON, as `Value`'s `Display` writes it; strings, booleans and
/// null without going through `fmt` and a temporary `String`.
pub(crate) fn push_json_value(line: &mut String, v: &Value) {
    match v {
        Value::String(s) => push_json_str(line, s),
        Value::Bool(true) => line.push_str("true"),
        Value::Bool(false) => line.push_str("false"),
        Value::Null => line.push_str("null"),
        Value::Number(n) => {
            let _ = write!(line, "{n}");
        }
        other => line.push_str(&other.to_string()),
    }
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it (`\"`, `\\`,
/// `\b \f \n \r \t`, other control characters below U+0020 as `\u00xx`; nothing
/// else, not even U+007F or non-ASCII).
pub(crate) fn push_json_str(line: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none of them needs escaping.
        match bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            Some(word) if !needs_escape(u64::from_le_bytes(word)) => {
                i += 8;
                continue;
            }
            Some(_) => {}
            // Fewer than eight left: one test of them padded with spaces.
            None => {
                let rest = &bytes[i..];
                let mut word = [b' '; 8];
                word[..rest.len()].copy_from_slice(rest);
                if !needs_escape(u64::from_le_bytes(word)) {
                    break;
                }
            }
        }
        let b = bytes[i];
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` is at an ASCII byte, so a char boundary.
        line.push_str(&s[start..i]);
        i += 1;
        start = i;
        if short.is_empty() {
            line.push_str("\\u00");
            line.push(char::from(HEX[usize::from(b >> 4)]));
            line.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            line.push_str(short);
        }
    }
    line.push_str(&s[start..]);
    line.push('"');
}

/// Whether any of the eight bytes of `word` is below U+0020, `"` or `\\`
/// (the bit tricks of "Bit Twiddling Hacks": a byte below `n` sets its high
/// bit in `(w - n·0x01…) & !w & 0x80…`; a zero byte is one below 1).
const fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn below(w: u64, n: u8) -> u64 {
        w.wrapping_sub(ONES * n as u64) & !w & HIGH
    }
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * b'"' as u64), 1);
    let backslash = below(word ^ (ONES * b'\\' as u64), 1);
    control | quote | backslash != 0
}

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year, e.g. 2026.
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59.
    pub second: u32,
    /// 0–999 999.
    pub micros: u32,
}

impl Utc {
    /// `t` in UTC; times before 1970 clamp to the epoch.
    #[must_use]
    pub fn from(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        // `rem` < 86 400, so these fit.
        let rem = u32::try_from(rem).unwrap_or(0);
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            micros: d.subsec_micros(),
        }
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = if m <= 2 { y + 1 } else { y };
    (
        year,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
#[must_use]
pub fn timestamp(t: SystemTime) -> String {
    let mut text = String::with_capacity(27);
    push_timestamp(&mut text, t);
    text
}

/// [`timestamp`] appended to `line`, digit by digit (no `fmt` machinery: it
/// runs for every log line).
fn push_timestamp(line: &mut String, t: SystemTime) {
    let u = Utc::from(t);
    let Some(year) = u32::try_from(u.year).ok().filter(|y| *y <= 9999) else {
        let _ = write!(
            line,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            u.year, u.month, u.day, u.hour, u.minute, u.second, u.micros
        );
        return;
    };
    // Every field has a fixed place: fill them in, then one append.
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    for (range, value) in [
        (0..4, year),
        (5..7, u.month),
        (8..10, u.day),
        (11..13, u.hour),
        (14..16, u.minute),
        (17..19, u.second),
        (20..26, u.micros),
    ] {
        put_digits(&mut text[range], value);
    }
    line.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// The last `slot.len()` decimal digits of `value` into `slot`, zero-padded.
fn put_digits(slot: &mut [u8], value: u32) {
    let mut rest = value;
    for byte in slot.iter_mut().rev() {
        // `rest % 10` < 10.
        *byte = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn at(secs: u64, micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    fn fields(pairs: &[(&'static str, Val)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
            .collect()
    }

    #[test]
    fn the_word_test_flags_exactly_the_words_with_a_byte_to_escape() {
        let escapes = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        // Every byte value in every position, among bytes that need nothing.
        for fill in [b'a', b'~', 0x7f, 0x80, 0xff, b' '] {
            for pos in 0..8 {
                for b in 0..=255u8 {
                    let mut word = [fill; 8];
                    word[pos] = b;
                    assert_eq!(
                        needs_escape(u64::from_le_bytes(word)),
                        escapes(b),
                        "{fill} {pos} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn json_strings_and_values_are_written_as_serde_json_writes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("é€😀\u{2028}\u{85}");
        let long = format!("{every}{every}0123456789abcdef\"tail\\");
        for s in [
            every.as_str(),
            long.as_str(),
            "",
            "plain",
            "exactly8",
            "sixteen bytes ok",
            "a\"b\\c",
            "\u{1}x\u{1f}",
            "landlock not enforced (kernel without Landlock); seccomp: Function not implemented",
        ] {
            let mut line = String::new();
            push_json_str(&mut line, s);
            assert_eq!(Some(line), serde_json::to_string(s).ok(), "{s:?}");
        }
        for v in [
            json!("x\ny"),
            json!(true),
            json!(false),
            json!(null),
            json!(0),
            json!(-17),
            json!(u64::MAX),
            json!(1.5),
            json!(1e300),
            json!(0.1),
            json!([1, "a", {"k": null}]),
            json!({"b": [true], "a": "\t"}),
        ] {
            let mut line = String::new();
            push_json_value(&mut line, &v);
            assert_eq!(line, v.to_string());
        }
        // A year past 9999 takes the `{:04}` path: five digits.
        assert_eq!(
            timestamp(at(253_402_300_800, 0)),
            "10000-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(timestamp(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day) 12:34:56.000789
        assert_eq!(
            timestamp(at(951_827_696, 789)),
            "2000-02-29T12:34:56.000789Z"
        );
        // 2024-12-31 23:59:59
        assert_eq!(
            timestamp(at(1_735_689_599, 999_999)),
            "2024-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp(at(1_735_689_600, 0)),
            "2025-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn text_lines_match_the_fmt_layout_and_stay_on_one_line() {
        let spans = [
            SpanView {
                name: "workflow.run",
                fields: fields(&[("execution_id", Val::Json(json!("exec-1")))]),
            },
            SpanView {
                name: "node.execute",
                fields: fields(&[
                    ("node_id", Val::Json(json!("save"))),
                    ("kind", Val::Json(json!("write_file"))),
                ]),
            },
        ];
        let line = text_line(
            at(0, 0),
            &Level::WARN,
            "agentd::engine",
            &fields(&[
                ("event", Val::Json(json!("node.failed"))),
                ("reason", Val::Json(json!("bad\nline"))),
                ("latency_ms", Val::Json(json!(3))),
            ]),
            &spans,
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000000Z  WARN workflow.run{execution_id=\"exec-1\"}:\
             node.execute{node_id=\"save\" kind=\"write_file\"}: agentd::engine: \
             event=\"node.failed\" reason=\"bad\\nline\" latency_ms=3\n"
        );
        let message = text_line(
            at(0, 0),
            &Level::INFO,
            "t",
            &fields(&[
                ("message", Val::Raw("two\nlines".into())),
                ("n", Val::Raw("x\ry".into())),
            ]),
            &[],
        );
        assert_eq!(
            message,
            "1970-01-01T00:00:00.000000Z  INFO t: two\\nlines n=x\\ry\n"
        );
    }

    #[test]
    fn json_lines_have_the_tracing_subscriber_shape() {
        let spans = [SpanView {
            name: "node.execute",
            fields: fields(&[("node_id", Val::Json(json!("a")))]),
        }];
        let line = json_line(
            at(0, 0),
            &Level::ERROR,
            "agentd::engine",
            &fields(&[
                ("event", Val::Json(json!("node.failed"))),
                ("dbg", Val::Raw("X\n".into())),
            ]),
            &spans,
        );
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(
            v,
            json!({
                "timestamp": "1970-01-01T00:00:00.000000Z",
                "level": "ERROR",
                "fields": {"event": "node.failed", "dbg": "X\n"},
                "target": "agentd::engine",
                "span": {"node_id": "a", "name": "node.execute"},
                "spans": [{"node_id": "a", "name": "node.execute"}],
            })
        );
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let bare = json_line(at(0, 0), &Level::INFO, "t", &Vec::new(), &[]);
        assert_eq!(
            bare,
            "{\"timestamp\":\"1970-01-01T00:00:00.000000Z\",\"level\":\"INFO\",\"fields\":{},\"target\":\"t\"}\n"
        );
    }

    #[test]
    fn audit_lines_carry_no_spans() {
        let line = audit_line(
            at(0, 0),
            &Level::INFO,
            "agentd::audit",
            &fields(&[("event", Val::Json(json!("workflow.started")))]),
        );
        assert_eq!(
            line,
            "{\"timestamp\":\"1970-01-01T00:00:00.000000Z\",\"level\":\"INFO\",\
             \"target\":\"agentd::audit\",\"fields\":{\"event\":\"workflow.started\"}}\n"
        );
    }
}
