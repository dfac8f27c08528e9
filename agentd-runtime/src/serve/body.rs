//! Request body decoding by `Content-Type` (docs/dialect.md §6, step 5)
//! and principal injection (step 6).
//!
//! Owns the mapping from a raw body to the run's trigger input:
//! - `application/x-www-form-urlencoded` → a flat object of strings, decoded
//!   by the `form_urlencoded` crate after a strictness check (every `%` is
//!   followed by two hex digits and the decoded bytes are UTF-8), last key
//!   wins, a pair without `=` gets `""`;
//! - `multipart/form-data` → a flat object of the text fields, parsed by
//!   `multer`; parts with a `filename` are dropped (and reported so the
//!   server can audit them), a part without a `name` is an error;
//! - anything else → `null` for an empty body, otherwise any JSON value
//!   (serde_json, whose recursion limit stops hostile nesting) of at most
//!   [`MAX_JSON_VALUES`] values, counted by a byte scan before decoding so
//!   the decoding work per request is bounded by more than the body cap.
//!
//! Every failure is a [`DecodeError`] whose text is the 400 reply's
//! `error`. This module never reads sockets and never panics on input.

use serde_json::{Map, Value};

/// A decoding failure: the message is the 400 body's `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not JSON.
    #[error("invalid JSON body: {0}")]
    Json(String),
    /// The body holds more values than [`MAX_JSON_VALUES`].
    #[error("JSON body holds more than {MAX_JSON_VALUES} values")]
    TooManyValues,
    /// A malformed urlencoded body.
    #[error("invalid urlencoded body: {0}")]
    Urlencoded(&'static str),
    /// A malformed multipart body.
    #[error("invalid multipart body: {0}")]
    Multipart(String),
}

/// A file part that was dropped from a multipart body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedFile {
    /// The part's `name`.
    pub field: String,
    /// The part's `filename`.
    pub filename: String,
    /// The part's size in bytes.
    pub bytes: usize,
}

/// A decoded body.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The trigger input.
    pub value: Value,
    /// Multipart file parts that were left out of `value`.
    pub dropped_files: Vec<DroppedFile>,
}

impl Decoded {
    fn value(value: Value) -> Self {
        Self {
            value,
            dropped_files: Vec::new(),
        }
    }
}

/// Most array elements and object members a JSON body may hold, counted as
/// one plus its commas outside strings. A 1 MiB body of `[0,0,…]` has about
/// 524,000; decoding one costs tens of milliseconds of CPU and a few dozen
/// MiB of `Value`s. (Nesting is bounded apart, by serde_json's recursion
/// limit of 128.)
pub const MAX_JSON_VALUES: usize = 100_000;

/// The values of JSON `body` as [`MAX_JSON_VALUES`] counts them: one, plus
/// one per `,` outside strings. A linear scan, far cheaper than decoding.
fn json_value_bound(body: &[u8]) -> usize {
    let mut count = 1_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' => count += 1,
                _ => {}
            }
        }
    }
    count
}

/// The media type of a `Content-Type` value: the part before `;`, trimmed
/// and lower-cased.
#[must_use]
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The common small JSON body, `{"name": "text", …}`, decoded by hand: an
/// object whose members are strings without escapes or control characters,
/// `true`, `false` or `null`, between JSON whitespace. The value is the one
/// serde_json builds (members inserted in order into the same map, so a
/// repeated key keeps its last value, as there), without its visitor
/// machinery. `None` for anything else — numbers, escapes, nesting, and every
/// malformed body — which serde_json then decodes, or names the error of,
/// as before.
fn flat_object(body: &[u8]) -> Option<Value> {
    // Checked once for the whole body: outside its strings the fast path
    // takes only ASCII, and serde_json refuses any body that is not UTF-8.
    let text = std::str::from_utf8(body).ok()?;
    let mut scan = Scan {
        text,
        body: text.as_bytes(),
        at: 0,
    };
    scan.whitespace();
    scan.expect(b'{')?;
    scan.whitespace();
    let mut map = Map::new();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            let key = scan.string()?;
            scan.whitespace();
            scan.expect(b':')?;
            scan.whitespace();
            let value = match scan.peek()? {
                b'"' => Value::String(scan.string()?.to_owned()),
                b't' => scan.literal(b"true", Value::Bool(true))?,
                b'f' => scan.literal(b"false", Value::Bool(false))?,
                b'n' => scan.literal(b"null", Value::Null)?,
                _ => return None,
            };
            map.insert(key.to_owned(), value);
            scan.whitespace();
            match scan.peek()? {
                b',' => {
                    scan.at += 1;
                    scan.whitespace();
                }
                b'}' => {
                    scan.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    scan.whitespace();
    (scan.at == body.len()).then_some(Value::Object(map))
}

/// [`flat_object`]'s cursor.
struct Scan<'b> {
    text: &'b str,
    /// `text`'s bytes.
    body: &'b [u8],
    at: usize,
}

impl<'b> Scan<'b> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    /// Skip JSON whitespace (space, tab, line feed, carriage return).
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// `text` (a JSON literal) as `value`.
    fn literal(&mut self, text: &[u8], value: Value) -> Option<Value> {
        let end = self.at.checked_add(text.len())?;
        (self.body.get(self.at..end)? == text).then(|| {
            self.at = end;
            value
        })
    }

    /// A string without escapes or control characters (the body is UTF-8).
    fn string(&mut self) -> Option<&'b str> {
        self.expect(b'"')?;
        let rest = self.body.get(self.at..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        // Both ends are at a `"`: character boundaries.
        let text = self.text.get(self.at..self.at + len)?;
        self.at += len + 1;
        Some(text)
    }
}

/// How [`decode`] reads a body: the only two media types with a decoder of
/// their own, and JSON for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Media {
    Urlencoded,
    Multipart,
    Json,
}

/// The [`Media`] of a `Content-Type` value: [`media_type`]'s answer compared
/// in place (`eq_ignore_ascii_case` is `to_ascii_lowercase` then `==`), so
/// the common `application/json` costs no allocation.
fn media(content_type: Option<&str>) -> Media {
    let Some(content_type) = content_type else {
        return Media::Json;
    };
    // A plain loop: a header value is short, and `split_once` calls memchr.
    let end = content_type
        .bytes()
        .position(|b| b == b';')
        .unwrap_or(content_type.len());
    // `end` is at an ASCII byte or the end: a character boundary.
    let media = content_type.get(..end).unwrap_or(content_type).trim();
    if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Media::Urlencoded
    } else if media.eq_ignore_ascii_case("multipart/form-data") {
        Media::Multipart
    } else {
        Media::Json
    }
}

/// Decode `body` according to `content_type`.
///
/// # Errors
///
/// [`DecodeError`] with the reason the body cannot be read as its type.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Decoded, DecodeError> {
    match media(content_type) {
        Media::Urlencoded => urlencoded(body).map(Decoded::value),
        Media::Multipart => multipart(content_type.unwrap_or(""), body),
        Media::Json if body.is_empty() => Ok(Decoded::value(Value::Null)),
        // The bound is at most one more than the body's length: only a body
        // that long can exceed it (never one decoded on the reactor).
        Media::Json
            if body.len() >= MAX_JSON_VALUES && json_value_bound(body) > MAX_JSON_VALUES =>
        {
            Err(DecodeError::TooManyValues)
        }
        Media::Json => match flat_object(body) {
            Some(value) => Ok(Decoded::value(value)),
            None => serde_json::from_slice(body)
                .map(Decoded::value)
                .map_err(|e| DecodeError::Json(e.to_string())),
        },
    }
}

fn urlencoded(body: &[u8]) -> Result<Value, DecodeError> {
    check_percent_escapes(body)?;
    // `+` is a space only in the form encoding; decoding the whole body at
    // once is enough to check UTF-8, because the separators are ASCII and
    // never part of a multi-byte sequence.
    let plus_as_space: Vec<u8> = body
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    if percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8()
        .is_err()
    {
        return Err(DecodeError::Urlencoded("decoded text is not UTF-8"));
    }
    let mut map = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        map.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    Ok(Value::Object(map))
}

/// Every `%` must start a `%XX` escape with two hex digits.
fn check_percent_escapes(body: &[u8]) -> Result<(), DecodeError> {
    let mut i = 0;
    while let Some(off) = body
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'%'))
    {
        let at = i + off;
        let ok = body
            .get(at + 1..at + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if !ok {
            return Err(DecodeError::Urlencoded(
                "`%` is not followed by two hex digits",
            ));
        }
        i = at + 3;
    }
    Ok(())
}

fn multipart(content_type: &str, body: &[u8]) -> Result<Decoded, DecodeError> {
    use futures_util::FutureExt as _;

    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| DecodeError::Multipart("missing or invalid boundary".to_owned()))?;
    let chunk = bytes::Bytes::copy_from_slice(body);
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(chunk) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut fields = Map::new();
    let mut dropped_files = Vec::new();
    // The whole body is already in memory, so every future below is ready
    // on its first poll; `now_or_never` turns multer's async API into a
    // plain loop (a `None` would be a multer bug, reported as bad input).
    let not_ready = || DecodeError::Multipart("parser stalled on a complete body".to_owned());
    loop {
        let next = parts
            .next_field()
            .now_or_never()
            .ok_or_else(not_ready)?
            .map_err(|e| DecodeError::Multipart(e.to_string()))?;
        let Some(field) = next else { break };
        let name = field
            .name()
            .map(str::to_owned)
            .ok_or_else(|| DecodeError::Multipart("a part has no `name`".to_owned()))?;
        let filename = field.file_name().map(str::to_owned);
        let data = field
            .bytes()
            .now_or_never()
            .ok_or_else(not_ready)?
            .map_err(|e| DecodeError::Multipart(e.to_string()))?;
        match filename {
            Some(filename) => dropped_files.push(DroppedFile {
                field: name,
                filename,
                bytes: data.len(),
            }),
            None => {
                let text = String::from_utf8(data.to_vec()).map_err(|_| {
                    DecodeError::Multipart(format!("field `{name}` is not UTF-8 text"))
                })?;
                fields.insert(name, Value::String(text));
            }
        }
    }
    Ok(Decoded {
        value: Value::Object(fields),
        dropped_files,
    })
}

/// Step 7: put `principal` into the input. An object gains the key (a body
/// field of that name is replaced: the server's word wins), `null` becomes
/// `{"principal": …}`, arrays and scalars are left alone.
#[must_use]
pub fn inject_principal(input: Value, principal: Value) -> Value {
    crate::context::merge_principal(input, principal)
}

/// The principal of a route without authentication.
#[must_use]
pub fn anonymous() -> Value {
    anonymous_ref().clone()
}

/// [`anonymous`], built once and borrowed: a run reads it in place
/// (`Frame::with_principal`), so an anonymous request copies nothing.
#[must_use]
pub fn anonymous_ref() -> &'static Value {
    static ANONYMOUS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    ANONYMOUS.get_or_init(|| {
        let mut map = Map::new();
        map.insert("kind".to_owned(), Value::from("anonymous"));
        map.insert("name".to_owned(), Value::from(""));
        Value::Object(map)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_value_bound_counts_the_commas_outside_strings() {
        assert_eq!(json_value_bound(b"1"), 1);
        assert_eq!(json_value_bound(br#"{"a":1,"b":[1,2]}"#), 3);
        // Commas inside strings, after escaped quotes included, are text.
        assert_eq!(json_value_bound(br#"["a,{[", "\",x"]"#), 2);
    }

    #[test]
    fn the_value_bound_never_exceeds_the_length_plus_one() {
        // `decode` scans only bodies of at least MAX_JSON_VALUES bytes.
        for body in [
            &b""[..],
            b",",
            b",,,,",
            b"[0,0]",
            br#"{"a":"b","c":"d"}"#,
            b"\",,\"",
        ] {
            assert!(json_value_bound(body) <= body.len() + 1);
        }
        let commas = vec![b','; MAX_JSON_VALUES - 1];
        assert_eq!(json_value_bound(&commas), MAX_JSON_VALUES);
        assert!(decode(None, &commas).is_err_and(|e| e != DecodeError::TooManyValues));
        let commas = vec![b','; MAX_JSON_VALUES];
        assert_eq!(decode(None, &commas), Err(DecodeError::TooManyValues));
    }

    #[test]
    fn a_json_body_over_the_value_bound_is_refused_before_decoding() {
        let mut wide = b"[0".to_vec();
        wide.extend(std::iter::repeat_n(&b",0"[..], MAX_JSON_VALUES).flatten());
        wide.push(b']');
        assert_eq!(
            decode(Some("application/json"), &wide),
            Err(DecodeError::TooManyValues)
        );
        // Just under the bound still decodes.
        let mut fits = b"[0".to_vec();
        fits.extend(std::iter::repeat_n(&b",0"[..], MAX_JSON_VALUES - 2).flatten());
        fits.push(b']');
        assert!(decode(Some("application/json"), &fits).is_ok());
    }

    fn ok(ct: Option<&str>, body: &[u8]) -> Value {
        match decode(ct, body) {
            Ok(d) => d.value,
            Err(e) => panic!(
                "{ct:?} {:?} should decode: {e}",
                String::from_utf8_lossy(body)
            ),
        }
    }

    fn err(ct: Option<&str>, body: &[u8]) -> String {
        match decode(ct, body) {
            Ok(d) => panic!("{ct:?} {body:?} should fail, got {:?}", d.value),
            Err(e) => e.to_string(),
        }
    }

    /// The slow path [`media`] replaces: [`media_type`], then a match on
    /// the lower-cased text.
    fn media_by_name(content_type: Option<&str>) -> Media {
        match content_type.map(media_type).unwrap_or_default().as_str() {
            "application/x-www-form-urlencoded" => Media::Urlencoded,
            "multipart/form-data" => Media::Multipart,
            _ => Media::Json,
        }
    }

    #[test]
    fn the_media_fast_path_agrees_with_media_type() {
        let cases = [
            None,
            Some(""),
            Some(";"),
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("APPLICATION/JSON"),
            Some("Application/Json;charset=UTF-8"),
            Some("application/vnd.x+json"),
            Some("text/plain"),
            Some("  application/x-www-form-urlencoded  "),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            Some("APPLICATION/X-WWW-FORM-URLENCODED"),
            Some("application/x-www-form-urlencoded;"),
            Some("application/x-www-form-urlencodedx"),
            Some("application/x-www-form"),
            Some("multipart/form-data; boundary=XyZ"),
            Some("Multipart/Form-Data;boundary=\"a;b\""),
            Some("\tmultipart/form-data\t; boundary=B"),
            Some("multipart/form-data-x"),
            Some("multipart/mixed; boundary=B"),
            Some("; multipart/form-data"),
            Some("\u{a0}multipart/form-data\u{a0}"),
            Some("multipart/form-dat\u{e0}"),
            Some("MULTİPART/FORM-DATA"),
        ];
        for ct in cases {
            assert_eq!(media(ct), media_by_name(ct), "{ct:?}");
        }
        assert_eq!(
            media(Some("Multipart/Form-Data; boundary=B")),
            Media::Multipart
        );
        assert_eq!(
            media(Some(" application/x-www-form-urlencoded ")),
            Media::Urlencoded
        );
        assert_eq!(media(Some("application/json; charset=utf-8")), Media::Json);
    }

    /// Bodies for the flat-object fast path: ones it takes, and ones it must
    /// leave to serde_json (valid or not).
    const FLAT_CASES: &[&str] = &[
        r#"{"name":"bench"}"#,
        r#"{}"#,
        " \t\r\n{ \n\"a\" :\t\"x\" , \"b\":true,\"c\":false ,\"d\": null } \n",
        r#"{"a":"1","a":"2"}"#,
        r#"{"a":"1","b":"2","a":null}"#,
        r#"{"":""}"#,
        "{\"k\":\"caf\u{e9} \u{1f600}\",\"\u{e9}\":\"\u{7f}\"}",
        // serde_json's to decide (valid):
        r#"{"n":1}"#,
        r#"{"n":-1.5e3}"#,
        r#"{"e":"a\"b"}"#,
        r#"{"e":"a\\b"}"#,
        r#"{"u":"\u00e9"}"#,
        r#"{"o":{"x":"y"}}"#,
        r#"{"a":[]}"#,
        r#"["x"]"#,
        r#""s""#,
        "null",
        "true",
        // serde_json's to refuse:
        "{",
        "{}}",
        "{} x",
        r#"{"a":"b",}"#,
        r#"{"a":"b""c":"d"}"#,
        r#"{"a" "b"}"#,
        r#"{"a":"b"#,
        r#"{"a":"#,
        r#"{"a"#,
        r#"{a:"b"}"#,
        r#"{"a":tru}"#,
        r#"{"a":truex}"#,
        r#"{"a":nul}"#,
        r#"{"a":falsey}"#,
        r#"{"a":"b"},"#,
        "{\"a\":\"line\nbreak\"}",
        "{\"a\":\"tab\there\"}",
        "\u{feff}{}",
        "{\u{a0}}",
        "\x0b{}",
        "{}\x0c",
    ];

    fn slow(body: &[u8]) -> Result<Value, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }

    #[test]
    fn the_flat_object_fast_path_agrees_with_serde_json() {
        let mut taken = 0;
        for case in FLAT_CASES {
            let body = case.as_bytes();
            if let Some(fast) = flat_object(body) {
                taken += 1;
                assert_eq!(Ok(fast), slow(body), "{case:?}");
            }
            // Through `decode`, whichever path, the answer is serde_json's.
            let decoded = decode(Some("application/json"), body)
                .map(|d| d.value)
                .map_err(|e| e.to_string());
            let expected = slow(body).map_err(|e| format!("invalid JSON body: {e}"));
            assert_eq!(decoded, expected, "{case:?}");
        }
        assert_eq!(taken, 7, "the fast path takes the flat string objects");
        // Invalid UTF-8 in a key or a value is serde_json's error.
        for body in [
            &b"{\"\xff\":\"x\"}"[..],
            b"{\"k\":\"\xc3\"}",
            b"{\"k\":\"\xed\xa0\x80\"}",
        ] {
            assert_eq!(flat_object(body), None);
            assert!(decode(None, body).is_err());
        }
    }

    #[test]
    fn the_flat_object_fast_path_agrees_with_serde_json_on_generated_bodies() {
        // Objects built from keys, values and whitespace (some of them the
        // fast path's, some serde_json's alone), half of them then broken by
        // a deleted, inserted or repeated byte or a cut, all by a fixed
        // pseudo-random sequence: wherever the fast path answers, serde_json
        // answers the same.
        const KEYS: &[&str] = &[
            "\"a\"",
            "\"b\"",
            "\"\"",
            "\"é\u{1f600}\"",
            "\"x\\\"y\"",
            "a",
            "\"\u{1}\"",
        ];
        const VALUES: &[&str] = &[
            "\"v\"",
            "\"\"",
            "true",
            "false",
            "null",
            "\"\u{7f}é\"",
            "1",
            "-0.5",
            "\"\\u0041\"",
            "[]",
            "{}",
            "tru",
            "nul",
            "\"\\\\\"",
            "\"tab\there\"",
        ];
        const SPACE: &[&str] = &["", "", "", " ", "\t", "\n", "\r", " \n ", "\u{a0}", "\x0b"];
        const BYTES: &[u8] = b"{}\":, \\\tatn1";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap_or(0)
        };
        let pick = |list: &[&'static str], at: usize| list.get(at).copied().unwrap_or("");
        let (mut taken, mut refused) = (0, 0);
        for _ in 0..50_000 {
            let mut body = String::from(pick(SPACE, next(SPACE.len())));
            body.push('{');
            for member in 0..next(4) {
                if member > 0 {
                    body.push(',');
                }
                for piece in [
                    pick(SPACE, next(SPACE.len())),
                    pick(KEYS, next(KEYS.len())),
                    pick(SPACE, next(SPACE.len())),
                    ":",
                    pick(SPACE, next(SPACE.len())),
                    pick(VALUES, next(VALUES.len())),
                    pick(SPACE, next(SPACE.len())),
                ] {
                    body.push_str(piece);
                }
            }
            body.push('}');
            body.push_str(pick(SPACE, next(SPACE.len())));
            let mut body = body.into_bytes();
            let at = next(body.len() + 1);
            match next(8) {
                0 if at < body.len() => {
                    body.remove(at);
                }
                1 => body.insert(at, BYTES.get(next(BYTES.len())).copied().unwrap_or(b'x')),
                2 if at < body.len() => body.insert(at, body.get(at).copied().unwrap_or(b'x')),
                3 => body.truncate(at),
                _ => {}
            }
            match flat_object(&body) {
                Some(fast) => {
                    taken += 1;
                    assert_eq!(
                        Ok(fast),
                        slow(&body),
                        "{:?}",
                        String::from_utf8_lossy(&body)
                    );
                }
                None => refused += 1,
            }
        }
        assert!(
            taken > 5_000 && refused > 5_000,
            "{taken} taken, {refused} refused"
        );
    }

    #[test]
    fn json_is_the_default_and_an_empty_body_is_null() {
        assert_eq!(ok(None, b""), Value::Null);
        assert_eq!(ok(Some("application/json"), b""), Value::Null);
        assert_eq!(ok(None, br#"{"a":[1,2]}"#), json!({"a": [1, 2]}));
        assert_eq!(ok(Some("text/plain"), b"42"), json!(42));
        assert_eq!(
            ok(Some("Application/JSON; charset=utf-8"), br#""s""#),
            json!("s")
        );
    }

    #[test]
    fn bad_json_is_a_400_reason() {
        assert!(err(None, b"{oops").starts_with("invalid JSON body: "));
        assert!(err(None, b"  ").starts_with("invalid JSON body: "));
        // Hostile nesting hits serde_json's recursion limit, not the stack.
        let deep = "[".repeat(100_000);
        assert!(err(None, deep.as_bytes()).contains("recursion limit"));
    }

    #[test]
    fn urlencoded_becomes_a_flat_object_of_strings() {
        let ct = Some("application/x-www-form-urlencoded");
        assert_eq!(
            ok(ct, b"name=J%C3%BCrgen+M&age=42&flag&name2=a%2Bb&x=1&x=2"),
            json!({"name": "Jürgen M", "age": "42", "flag": "", "name2": "a+b", "x": "2"})
        );
        assert_eq!(ok(ct, b""), json!({}));
    }

    #[test]
    fn urlencoded_is_strict() {
        let ct = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert!(err(ct, b"a=%zz").contains("two hex digits"));
        assert!(err(ct, b"a=%4").contains("two hex digits"));
        assert!(err(ct, b"a=%").contains("two hex digits"));
        assert!(err(ct, b"a=%ff%fe").contains("UTF-8"));
        assert!(err(ct, b"a=\xff").contains("UTF-8"));
    }

    fn multipart_body(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut body = String::new();
        for (name, filename, data) in parts {
            body.push_str("--XyZ\r\n");
            match filename {
                Some(f) => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )),
                None => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                )),
            }
            body.push_str(data);
            body.push_str("\r\n");
        }
        body.push_str("--XyZ--\r\n");
        body.into_bytes()
    }

    #[test]
    fn multipart_keeps_text_fields_and_drops_files() {
        let body = multipart_body(&[
            ("title", None, "hello"),
            ("upload", Some("a.bin"), "12345"),
            ("note", None, "multi\r\nline"),
        ]);
        let d = decode(Some("multipart/form-data; boundary=\"XyZ\""), &body);
        let d = d.unwrap_or_else(|e| panic!("decodes: {e}"));
        assert_eq!(d.value, json!({"title": "hello", "note": "multi\r\nline"}));
        assert_eq!(
            d.dropped_files,
            vec![DroppedFile {
                field: "upload".into(),
                filename: "a.bin".into(),
                bytes: 5
            }]
        );
    }

    #[test]
    fn multipart_without_a_boundary_or_name_is_rejected() {
        assert!(err(Some("multipart/form-data"), b"x").contains("boundary"));
        let nameless = b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n";
        assert!(err(Some("multipart/form-data; boundary=B"), nameless).contains("name"));
        let truncated = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end";
        assert!(
            err(Some("multipart/form-data; boundary=B"), truncated)
                .starts_with("invalid multipart body")
        );
    }

    #[test]
    fn principal_goes_into_objects_and_null_only() {
        let p = anonymous();
        assert_eq!(
            inject_principal(json!({"a": 1, "principal": "forged"}), p.clone()),
            json!({"a": 1, "principal": {"kind": "anonymous", "name": ""}})
        );
        assert_eq!(
            inject_principal(Value::Null, p.clone()),
            json!({"principal": {"kind": "anonymous", "name": ""}})
        );
        assert_eq!(inject_principal(json!([1]), p.clone()), json!([1]));
        assert_eq!(inject_principal(json!("s"), p), json!("s"));
    }
}
