//! Positions and file names as the protocol speaks them.
//!
//! The compiler works in byte offsets; LSP positions are (line, UTF-16 code unit)
//! pairs, and documents are named by `file://` URIs. This module converts both ways
//! and clamps instead of failing: a client may send a position past the end of a line
//! or of the document, and that must never panic.

use std::path::{Path, PathBuf};

use lsp_types::{Position, Range};

/// Line starts of a text, for offset ↔ position conversion.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset where each line starts; always starts with 0.
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The protocol position of byte `offset` (clamped to the text and to a char
    /// boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(self.len).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col: usize = text
            .get(start..offset)
            .map(|s| s.chars().map(char::len_utf16).sum())
            .unwrap_or(0);
        Position::new(to_u32(line), to_u32(col))
    }

    /// The byte offset of a protocol position. A line past the end means the end of
    /// the text; a column past the end of its line means the end of that line.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let line = pos.line as usize;
        let Some(&start) = self.starts.get(line) else {
            return text.len();
        };
        let end = self
            .starts
            .get(line + 1)
            .map(|&next| next - 1)
            .unwrap_or(text.len());
        let Some(line_text) = text.get(start..end) else {
            return text.len();
        };
        let mut units = 0usize;
        for (i, c) in line_text.char_indices() {
            if units >= pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }

    /// The protocol range of a byte range.
    pub fn range(&self, text: &str, span: &std::ops::Range<usize>) -> Range {
        Range::new(
            self.position(text, span.start),
            self.position(text, span.end),
        )
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The local path a `file://` URI names, or `None` for any other scheme or a URI
/// whose percent-escapes do not decode to UTF-8.
pub fn path_from_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // `file://host/path`: only the local host (empty or `localhost`) is a local file.
    let path = if rest.starts_with('/') {
        rest
    } else {
        rest.strip_prefix("localhost")?
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let mut bytes = Vec::with_capacity(path.len());
    let raw = path.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(bytes).ok()?;
    Some(PathBuf::from(path))
}

/// The `file://` URI of an absolute path; every byte outside the unreserved set
/// (and `/`) is percent-escaped.
pub fn uri_from_path(path: &Path) -> String {
    let mut out = String::from("file://");
    for &b in path.to_string_lossy().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        let text = "a = \"é😀x\"\nb\n";
        let idx = LineIndex::new(text);
        let x = text.find('x').expect("x");
        let pos = idx.position(text, x);
        // `a = "` is 5 units, é is 1, the emoji is 2.
        assert_eq!(pos, Position::new(0, 8));
        assert_eq!(idx.offset(text, pos), x);
        assert_eq!(idx.position(text, text.len()), Position::new(2, 0));
    }

    #[test]
    fn positions_out_of_range_are_clamped() {
        let text = "ab\ncd";
        let idx = LineIndex::new(text);
        assert_eq!(idx.offset(text, Position::new(0, 99)), 2);
        assert_eq!(idx.offset(text, Position::new(9, 0)), text.len());
        // Inside a multi-byte char: the previous boundary.
        let t = "é";
        assert_eq!(LineIndex::new(t).position(t, 1), Position::new(0, 0));
    }

    #[test]
    fn file_uris_round_trip_with_escapes() {
        let p = Path::new("/tmp/a dir/wf%1.toml");
        let uri = uri_from_path(p);
        assert_eq!(uri, "file:///tmp/a%20dir/wf%251.toml");
        assert_eq!(path_from_uri(&uri).as_deref(), Some(p));
        assert_eq!(path_from_uri("untitled:1"), None);
        assert_eq!(path_from_uri("file:///x%zz"), None);
        assert_eq!(
            path_from_uri("file://localhost/x.toml").as_deref(),
            Some(Path::new("/x.toml"))
        );
    }
}
