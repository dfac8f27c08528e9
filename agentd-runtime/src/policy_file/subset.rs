//! A strict reader for the TOML subset a policy override file needs.
//!
//! An override file is one `[policy]` table of string arrays. Linking a general
//! TOML parser for that costs ~130–250 KB in every static binary (a third of the
//! budget over an empty program, docs/performance.md), so this module reads the
//! subset by hand and maps it straight to [`Policy`].
//!
//! Accepted (TOML 1.0 semantics): comments, blank lines, `\n`/`\r\n`, table headers
//! (`[policy]`, `[policy.fs]`), bare/quoted/dotted keys, basic strings with every
//! TOML escape, literal strings, multi-line arrays with trailing commas and
//! comments, inline tables. Everything else a TOML file could hold — numbers,
//! booleans, dates, multi-line strings, arrays of tables — is refused with a
//! `line L, column C` error: no valid policy contains them, and refusing is the
//! fail-closed answer. A key set twice, or a table header repeated, is refused
//! (TOML forbids both; silently keeping one value would be a policy hole). The
//! differential test in `tests` checks this reader against the `toml` crate.

use std::borrow::Cow;

use crate::policy::{Patterns, Policy};

/// Parse an override file into a [`Policy`].
pub(super) fn parse(text: &str) -> Result<Policy, String> {
    let mut r = Reader {
        text,
        pos: 0,
        seen_keys: Vec::new(),
        seen_headers: Vec::new(),
        policy: Policy::default(),
        has_policy: false,
    };
    r.document()?;
    if r.has_policy {
        Ok(r.policy)
    } else {
        Err("missing table `[policy]`".to_owned())
    }
}

/// The `[policy]` schema: section → keys.
const SECTIONS: &[(&str, &[&str])] = &[
    ("fs", &["read", "write", "delete", "list"]),
    ("env", &["read_keys"]),
    ("http", &["urls", "methods"]),
    ("shell", &["commands"]),
    ("mcp", &["servers", "tools", "resources"]),
];

/// A key segment and the byte offset it starts at.
type Seg = (String, usize);

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// Full paths of the leaves set so far.
    seen_keys: Vec<Vec<String>>,
    /// Full paths of the `[headers]` seen so far.
    seen_headers: Vec<Vec<String>>,
    policy: Policy,
    has_policy: bool,
}

impl Reader<'_> {
    fn err<T>(&self, at: usize, message: impl std::fmt::Display) -> Result<T, String> {
        let before = self.text.get(..at).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Err(format!("line {line}, column {column}: {message}"))
    }

    fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Spaces and tabs.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// Spaces, tabs, comments and newlines (inside arrays).
    fn ws_nl(&mut self) -> Result<(), String> {
        loop {
            self.ws();
            match self.peek() {
                Some('#') => self.comment()?,
                Some('\n') => self.pos += 1,
                Some('\r') if self.rest().starts_with("\r\n") => self.pos += 2,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            if c.is_control() && c != '\t' {
                return self.err(self.pos, "control character in a comment");
            }
            self.pos += c.len_utf8();
        }
        Ok(())
    }

    /// After a header or a key/value pair: optional comment, then newline or end.
    fn line_end(&mut self) -> Result<(), String> {
        self.ws();
        if self.peek() == Some('#') {
            self.comment()?;
        }
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.pos += 1;
                Ok(())
            }
            Some('\r') if self.rest().starts_with("\r\n") => {
                self.pos += 2;
                Ok(())
            }
            Some(c) => self.err(self.pos, format!("expected a newline, found `{c}`")),
        }
    }

    fn document(&mut self) -> Result<(), String> {
        let mut table: Vec<Seg> = Vec::new();
        loop {
            self.ws_nl()?;
            match self.peek() {
                None => return Ok(()),
                Some('[') => {
                    let start = self.pos;
                    self.pos += 1;
                    if self.peek() == Some('[') {
                        return self.err(
                            start,
                            "arrays of tables (`[[...]]`) are not allowed in a policy file",
                        );
                    }
                    self.ws();
                    table = self.key()?;
                    self.ws();
                    if self.bump() != Some(']') {
                        return self.err(self.pos.saturating_sub(1), "expected `]`");
                    }
                    let path: Vec<String> = table.iter().map(|(k, _)| k.clone()).collect();
                    if self.seen_headers.contains(&path) {
                        return self
                            .err(start, format!("table `[{}]` defined twice", path.join(".")));
                    }
                    self.seen_headers.push(path);
                    self.check_table(&table)?;
                    self.line_end()?;
                }
                Some(_) => {
                    let mut path = table.clone();
                    path.extend(self.key()?);
                    self.ws();
                    if self.bump() != Some('=') {
                        return self.err(self.pos.saturating_sub(1), "expected `=` after a key");
                    }
                    self.ws();
                    self.value(path)?;
                    self.line_end()?;
                }
            }
        }
    }

    /// A (dotted) key: `a`, `"a b"`, `'a'`, `a.b . "c"`.
    fn key(&mut self) -> Result<Vec<Seg>, String> {
        let mut segs = Vec::new();
        loop {
            let start = self.pos;
            let seg = match self.peek() {
                Some('"') => self.basic_string()?,
                Some('\'') => self.literal_string()?,
                Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                    while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        self.pos += 1;
                    }
                    self.text[start..self.pos].to_owned()
                }
                Some(c) => return self.err(start, format!("expected a key, found `{c}`")),
                None => return self.err(start, "expected a key, found the end of the file"),
            };
            segs.push((seg, start));
            self.ws();
            if self.peek() == Some('.') {
                self.pos += 1;
                self.ws();
            } else {
                return Ok(segs);
            }
        }
    }

    /// A table path (header or inline table) must be a prefix of `policy.SECTION`.
    fn check_table(&mut self, path: &[Seg]) -> Result<(), String> {
        match path {
            [] => Ok(()),
            [(p, at), rest @ ..] => {
                if p != "policy" {
                    return self.err(*at, format!("unknown key `{p}`, expected `policy`"));
                }
                self.has_policy = true;
                match rest {
                    [] => Ok(()),
                    [(section, at)] => self.section(section, *at).map(|_| ()),
                    [(section, at), (key, kat), ..] => {
                        let keys = self.section(section, *at)?;
                        if !keys.contains(&key.as_str()) {
                            return self.unknown(key, *kat, keys);
                        }
                        self.err(
                            *kat,
                            format!(
                                "`{key}` must be an array of strings (a sequence), found a table"
                            ),
                        )
                    }
                }
            }
        }
    }

    fn section(&self, name: &str, at: usize) -> Result<&'static [&'static str], String> {
        match SECTIONS.iter().find(|(s, _)| *s == name) {
            Some((_, keys)) => Ok(keys),
            None => {
                let names: Vec<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
                self.unknown(name, at, &names)
            }
        }
    }

    fn unknown<T>(&self, key: &str, at: usize, expected: &[&str]) -> Result<T, String> {
        self.err(
            at,
            format!(
                "unknown key `{key}`, expected one of `{}`",
                expected.join("`, `")
            ),
        )
    }

    /// The value of `path` (a full path from the document root).
    fn value(&mut self, path: Vec<Seg>) -> Result<(), String> {
        let start = self.pos;
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.check_table(&path)?;
                self.ws();
                if self.peek() == Some('}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    let mut inner = path.clone();
                    inner.extend(self.key()?);
                    self.ws();
                    if self.bump() != Some('=') {
                        return self.err(self.pos.saturating_sub(1), "expected `=` after a key");
                    }
                    self.ws();
                    self.value(inner)?;
                    self.ws();
                    match self.bump() {
                        Some(',') => {}
                        Some('}') => return Ok(()),
                        _ => {
                            return self.err(
                                self.pos.saturating_sub(1),
                                "expected `,` or `}` in an inline table",
                            );
                        }
                    }
                }
            }
            Some('[') => {
                // The only arrays in a policy are leaves: check the path first so an
                // unknown key is reported as such.
                let (key, at) = self.leaf(&path)?;
                self.pos += 1;
                let mut items: Vec<Cow<'static, str>> = Vec::new();
                loop {
                    self.ws_nl()?;
                    if self.peek() == Some(']') {
                        self.pos += 1;
                        break;
                    }
                    let item_at = self.pos;
                    let s = match self.peek() {
                        Some('"') => self.basic_string()?,
                        Some('\'') => self.literal_string()?,
                        _ => return self.wrong_type(&key, item_at),
                    };
                    items.push(Cow::Owned(s));
                    self.ws_nl()?;
                    match self.bump() {
                        Some(',') => {}
                        Some(']') => break,
                        _ => {
                            return self.err(
                                self.pos.saturating_sub(1),
                                "expected `,` or `]` in an array",
                            );
                        }
                    }
                }
                self.set(path, key, at, Cow::Owned(items))
            }
            _ => {
                let (key, _) = self.leaf(&path)?;
                self.wrong_type(&key, start)
            }
        }
    }

    fn wrong_type<T>(&self, key: &str, at: usize) -> Result<T, String> {
        let found: String = self
            .text
            .get(at..)
            .unwrap_or("")
            .chars()
            .take_while(|c| !matches!(c, ',' | ']' | '}' | '\n' | '\r' | '#'))
            .take(40)
            .collect();
        self.err(
            at,
            format!(
                "`{key}` must be an array of strings (a sequence), found `{}`",
                found.trim_end()
            ),
        )
    }

    /// `path` must be exactly `policy.SECTION.KEY`; returns KEY and where it is.
    fn leaf(&mut self, path: &[Seg]) -> Result<(String, usize), String> {
        match path {
            [_, _, (key, at)] => {
                self.check_table(&path[..2])?;
                let keys = self.section(&path[1].0, path[1].1)?;
                if !keys.contains(&key.as_str()) {
                    return self.unknown(key, *at, keys);
                }
                Ok((key.clone(), *at))
            }
            [_, _, _, ..] => self.check_table(path).map(|()| (String::new(), 0)),
            [.., (key, at)] => {
                self.check_table(path)?;
                self.err(*at, format!("`{key}` must be a table"))
            }
            [] => self.err(self.pos, "expected a key"),
        }
    }

    fn set(
        &mut self,
        path: Vec<Seg>,
        key: String,
        at: usize,
        items: Patterns,
    ) -> Result<(), String> {
        let full: Vec<String> = path.into_iter().map(|(k, _)| k).collect();
        if self.seen_keys.contains(&full) {
            return self.err(at, format!("key `{}` is set twice", full.join(".")));
        }
        let p = &mut self.policy;
        let slot = match (full[1].as_str(), key.as_str()) {
            ("fs", "read") => &mut p.fs.read,
            ("fs", "write") => &mut p.fs.write,
            ("fs", "delete") => &mut p.fs.delete,
            ("fs", "list") => &mut p.fs.list,
            ("env", "read_keys") => &mut p.env.read_keys,
            ("http", "urls") => &mut p.http.urls,
            ("http", "methods") => &mut p.http.methods,
            ("shell", "commands") => &mut p.shell.commands,
            ("mcp", "servers") => &mut p.mcp.servers,
            ("mcp", "tools") => &mut p.mcp.tools,
            ("mcp", "resources") => &mut p.mcp.resources,
            _ => return self.err(at, format!("unknown key `{key}`")),
        };
        *slot = items;
        self.seen_keys.push(full);
        Ok(())
    }

    /// `"..."` with TOML escapes; no newlines, no control characters but tab.
    fn basic_string(&mut self) -> Result<String, String> {
        let start = self.pos;
        if self.rest().starts_with("\"\"\"") {
            return self.err(start, "multi-line strings are not allowed in a policy file");
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n' | '\r') => return self.err(start, "unterminated string"),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('b') => '\u{8}',
                        Some('t') => '\t',
                        Some('n') => '\n',
                        Some('f') => '\u{c}',
                        Some('r') => '\r',
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some(u @ ('u' | 'U')) => {
                            let n = if u == 'u' { 4 } else { 8 };
                            let hex = self.rest().get(..n).unwrap_or("");
                            let code = (hex.len() == n
                                && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                            .then(|| u32::from_str_radix(hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                            match code {
                                Some(c) => {
                                    self.pos += n;
                                    c
                                }
                                None => return self.err(at, "invalid unicode escape"),
                            }
                        }
                        _ => return self.err(at, "invalid escape sequence"),
                    };
                    out.push(c);
                }
                Some(c) if c.is_control() && c != '\t' => {
                    return self.err(at, "control character in a string");
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `'...'`, taken verbatim.
    fn literal_string(&mut self) -> Result<String, String> {
        let start = self.pos;
        if self.rest().starts_with("'''") {
            return self.err(start, "multi-line strings are not allowed in a policy file");
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n' | '\r') => return self.err(start, "unterminated string"),
                Some('\'') => return Ok(out),
                Some(c) if c.is_control() && c != '\t' => {
                    return self.err(at, "control character in a string");
                }
                Some(c) => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the `toml` crate through serde, as before this reader existed.
    fn reference(text: &str) -> Result<Policy, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            policy: Policy,
        }
        toml::from_str::<File>(text)
            .map(|f| f.policy)
            .map_err(|e| e.to_string())
    }

    const VALID: &[&str] = &[
        "[policy]\n",
        "[policy.fs]\nread = [\"/data/**\"]\n",
        "[policy.fs]\r\nread = [\"/a\", '/b']\r\nwrite = []\r\n",
        "# c\n[policy] # c\nfs.read = [ # c\n  \"/a\", # c\n  \"/b\",\n]\nenv = { read_keys = [\"HOME\", 'P*'] }\n",
        "[ policy . \"fs\" ]\n'write' = [\"/tmp/\\u00e9\\t\\\\x\\\"\"]\n",
        "policy.http.urls = [\"https://a/**\"]\npolicy.http.methods = ['GET']\n",
        "policy = { shell = { commands = [\"/bin/ls\"] }, mcp = { tools = [\"*\"], servers = [], resources = [\"r\"] } }\n",
        "[policy.env]\nread_keys = [\"A\"]\n[policy.fs]\nlist = [\"/x\"]\ndelete = [\"/y\"]",
        "\n\n[policy]\n\n[policy.fs]\nread=['C:\\path']\n",
    ];

    const INVALID: &[&str] = &[
        "",
        "[fs]\nread = []\n",
        "[policy.fs]\nreed = []\n",
        "[policy.fs]\nread = \"/data/**\"\n",
        "[policy.fs]\nread = [1]\n",
        "[policy.fs]\nread = [true]\n",
        "[policy.fs]\nread = [\"a\"]\nread = [\"b\"]\n",
        "[policy.fs]\n[policy.fs]\n",
        "[policy\n",
        "[policy.fs]\nread = [\"a\" \"b\"]\n",
        "[policy.fs]\nread = [\"a\"] x\n",
        "[policy.fs]\nread = [\"\\q\"]\n",
        "[policy.fs.read]\n",
        "[policy.nope]\n",
        "policy = 3\n",
        "[policy.fs]\nread = [\"a\nb\"]\n",
        "[policy.fs]\nread = [\"a\"]\n[policy]\nfs.read = [\"b\"]\n",
        "[policy.fs]\nread = [[\"a\"]]\n",
        "[policy.fs]\nread = [\"\\uD800\"]\n",
    ];

    /// TOML the reference accepts but no valid policy needs: refused, fail-closed.
    /// (serde reads a struct from a sequence, so it takes `[[policy]]` and `fs = []`.)
    const UNSUPPORTED: &[&str] = &[
        "[[policy]]\n",
        "[policy]\nfs = []\n",
        "[policy.fs]\nread = [\"\"\"a\"\"\"]\n",
        "[policy.fs]\nread = [\'\'\'a\'\'\']\n",
    ];

    #[test]
    fn unsupported_toml_is_refused_with_a_location() {
        for text in UNSUPPORTED {
            assert!(reference(text).is_ok(), "reference refuses {text:?}");
            let err = parse(text).expect_err(text);
            assert!(err.starts_with("line "), "{text:?}: {err}");
        }
    }

    #[test]
    fn valid_files_read_the_same_as_the_toml_crate() {
        for text in VALID {
            let ours = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let theirs = reference(text).unwrap_or_else(|e| panic!("reference {text:?}: {e}"));
            assert_eq!(ours, theirs, "{text:?}");
        }
    }

    #[test]
    fn invalid_files_are_refused_like_the_toml_crate_refuses_them() {
        for text in INVALID {
            assert!(reference(text).is_err(), "reference accepts {text:?}");
            let err = parse(text).expect_err(text);
            assert!(
                err.starts_with("line ") || err.starts_with("missing"),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn errors_point_at_the_offending_key() {
        let err = parse("[policy.fs]\nreed = []\n").expect_err("typo");
        assert!(err.starts_with("line 2, column 1:"), "{err}");
        assert!(err.contains("`reed`") && err.contains("`read`"), "{err}");
        let err = parse("[policy.fs]\nread = [\"a\", 7]\n").expect_err("type");
        assert!(err.starts_with("line 2, column 14:"), "{err}");
    }
}
