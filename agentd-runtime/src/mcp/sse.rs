//! A Server-Sent Events reader (the WHATWG event-stream format) for the
//! Streamable HTTP transport: `data`, `id`, `event` and `retry` fields,
//! comments, CR / LF / CRLF line ends.
//!
//! Everything is untrusted: a line is capped at [`MAX_LINE`] bytes and an
//! event's data at [`MAX_EVENT`] bytes, so a stream without line breaks or
//! with an endless event is an error after a bounded amount of memory, never
//! an allocation that grows with the stream. This module only parses; it
//! never decides what an event means.

use std::io::BufRead;

/// Longest field line accepted (16 MiB: one JSON-RPC message per `data`).
pub const MAX_LINE: usize = super::MAX_LINE;

/// Most data bytes one event may gather over its `data` lines.
pub const MAX_EVENT: usize = super::MAX_LINE;

/// One dispatched event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event` (empty for the default `message`).
    pub kind: String,
    /// The `data` lines joined by `\n`.
    pub data: String,
}

/// Reads events from a byte stream and keeps the stream's `id` and `retry`
/// state, which outlive single events (resumption needs them).
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    /// The last event id seen (`Last-Event-ID` when resuming).
    pub last_id: Option<String>,
    /// The last valid `retry`, in milliseconds.
    pub retry_ms: Option<u64>,
}

impl<R: BufRead> Reader<R> {
    /// A reader over `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            last_id: None,
            retry_ms: None,
        }
    }

    /// The next event with data, `Ok(None)` at the end of the stream.
    /// Events without data (a priming event that sets only `id`/`retry`)
    /// update the state and are not returned.
    ///
    /// # Errors
    ///
    /// I/O errors, a line over [`MAX_LINE`], data over [`MAX_EVENT`], or
    /// text that is not UTF-8.
    pub fn next_event(&mut self) -> Result<Option<Event>, String> {
        let mut event = Event::default();
        let mut has_data = false;
        loop {
            let Some(line) = self.read_line()? else {
                // The end of the stream discards an event not yet dispatched.
                return Ok(None);
            };
            if line.is_empty() {
                if has_data {
                    return Ok(Some(event));
                }
                event = Event::default();
                continue;
            }
            if line.starts_with(':') {
                continue; // comment (keep-alive)
            }
            let (field, value) = match line.find(':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                }
                None => (line.as_str(), ""),
            };
            match field {
                "data" => {
                    if event.data.len() + value.len() + 1 > MAX_EVENT {
                        return Err(format!(
                            "an event-stream event is larger than {MAX_EVENT} bytes"
                        ));
                    }
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                "event" => event.kind = value.to_owned(),
                "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
                "retry" => {
                    if let Ok(ms) = value.parse::<u64>() {
                        self.retry_ms = Some(ms);
                    }
                }
                _ => {} // unknown fields are ignored, as the format says
            }
        }
    }

    /// One line without its terminator, `None` at the end of the stream.
    fn read_line(&mut self) -> Result<Option<String>, String> {
        let mut line: Vec<u8> = Vec::new();
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading the event stream: {e}")),
            };
            if buf.is_empty() {
                return if line.is_empty() {
                    Ok(None)
                } else {
                    finish(line).map(Some)
                };
            }
            match buf.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(i) => {
                    line.extend_from_slice(&buf[..i]);
                    let cr = buf[i] == b'\r';
                    self.inner.consume(i + 1);
                    if cr {
                        // CRLF is one line end.
                        if let Ok(next) = self.inner.fill_buf()
                            && next.first() == Some(&b'\n')
                        {
                            self.inner.consume(1);
                        }
                    }
                    if line.len() > MAX_LINE {
                        return Err(too_long());
                    }
                    return finish(line).map(Some);
                }
                None => {
                    let n = buf.len();
                    line.extend_from_slice(buf);
                    self.inner.consume(n);
                    if line.len() > MAX_LINE {
                        return Err(too_long());
                    }
                }
            }
        }
    }
}

fn too_long() -> String {
    format!("an event-stream line is longer than {MAX_LINE} bytes")
}

fn finish(line: Vec<u8>) -> Result<String, String> {
    String::from_utf8(line).map_err(|_| "the event stream is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> (Vec<Event>, Reader<&[u8]>) {
        let mut r = Reader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = r.next_event().expect("valid stream") {
            out.push(e);
        }
        (out, r)
    }

    #[test]
    fn events_gather_data_lines_and_keep_id_and_retry() {
        let (evs, r) = events(
            ": keep-alive\r\nid: 1\r\nretry: 500\r\ndata:\r\n\r\nevent: message\ndata: {\"a\":\ndata: 1}\n\nid: 2\rdata:x\r\r",
        );
        assert_eq!(
            evs,
            vec![
                Event {
                    kind: String::new(),
                    data: String::new()
                },
                Event {
                    kind: "message".into(),
                    data: "{\"a\":\n1}".into()
                },
                Event {
                    kind: String::new(),
                    data: "x".into()
                },
            ]
        );
        assert_eq!(r.last_id.as_deref(), Some("2"));
        assert_eq!(r.retry_ms, Some(500));
    }

    #[test]
    fn a_priming_event_without_data_is_state_only_and_a_cut_event_is_dropped() {
        let (evs, r) = events("id: abc\nretry: x\n\ndata: unfinished");
        assert!(evs.is_empty());
        assert_eq!(r.last_id.as_deref(), Some("abc"));
        assert_eq!(r.retry_ms, None);
    }

    #[test]
    fn an_endless_line_is_an_error_after_a_bounded_read() {
        let endless = std::io::repeat(b'a').take(MAX_LINE as u64 + 10);
        let mut r = Reader::new(std::io::BufReader::new(endless));
        let e = r.next_event().expect_err("too long");
        assert!(e.contains("longer than"), "{e}");
        let mut bad = Reader::new(&b"data: \xff\xfe\n\n"[..]);
        assert!(bad.next_event().is_err());
    }

    use std::io::Read;
}
