//! Pre-parsed `{{key}}` templates and the two dialect renderers.
//!
//! Owns [`Template`] / [`Seg`] (baked by the compiler), the *relative* walk
//! ([`walk_relative`], shared with `json_select`), the engine renderer of
//! docs/dialect.md §9.2 ([`Template::render`]) and the LLM renderer
//! ([`Template::render_llm`]). It must never parse template text at run time
//! and never resolve context paths (a template sees only its data value).
//!
//! # How the compiler must split a template
//!
//! Scan the template text left to right:
//!
//! 1. Find the next `{{` (byte search). Everything before it is literal.
//! 2. From just after that `{{`, find the next `}}`. If there is none, the
//!    rest of the text — the `{{` included — is literal; stop.
//! 3. Otherwise the text between them, trimmed of whitespace
//!    (`str::trim`), is the key. Emit `Seg::Key { raw: <trimmed>, path:
//!    <raw split on every '.', empty segments kept> }` and continue after
//!    the `}}`.
//!
//! So `"a {{ user.name }}!"` is `[Lit("a "), Key { raw: "user.name", path:
//! ["user", "name"] }, Lit("!")]`, `"{{}}"` is `[Key { raw: "", path: [""] }]`
//! and `"x {{open"` is `[Lit("x {{open")]`. Adjacent literals may be merged;
//! empty literals may be dropped. Keys are never re-scanned.
//!
//! agentd extension: when the trimmed text ends in `|` plus `json` (spaces
//! around either allowed), e.g. `{{ msg | json }}`, emit `Seg::Json` with the
//! key before the `|` (trimmed, split as above) instead.
//!
//! `path` keeps empty segments because the two renderers differ: the engine
//! renderer skips them, the LLM renderer does not.
//!
//! # Divergence: no Latin-1 mangling
//!
//! Dialect 1's LLM renderer copied literal prompt text byte by byte as
//! Latin-1 (`é` became `Ã©`). That was a defect; [`Template::render_llm`]
//! copies literal text unchanged.

use crate::obs::format::push_json_str;
use serde_json::Value;

/// A template pre-parsed into segments (see the module docs for the split).
#[derive(Clone, Copy, Debug)]
pub struct Template(pub &'static [Seg]);

/// One piece of a [`Template`].
#[derive(Clone, Copy, Debug)]
pub enum Seg {
    /// Literal text, copied verbatim.
    Lit(&'static str),
    /// A `{{...}}` placeholder.
    Key {
        /// The trimmed key text; a miss re-emits `{{raw}}`.
        raw: &'static str,
        /// `raw` split on every `.`, empty segments included.
        path: &'static [&'static str],
    },
    /// A `{{key|json}}` placeholder (agentd extension): the value as JSON
    /// text — a string quoted and escaped, anything else compact JSON — and
    /// `null` on a miss, so the result is always one valid JSON value.
    Json {
        /// The trimmed key text before the `|`.
        raw: &'static str,
        /// `raw` split on every `.`, empty segments included.
        path: &'static [&'static str],
    },
}

impl Template {
    /// The engine renderer (`template_render`, `respond`; docs/dialect.md §9.2).
    ///
    /// Keys walk `data` with [`walk_relative`]. A string is inserted raw;
    /// any other value as compact JSON (object keys sorted); a miss
    /// re-emits `{{raw}}`.
    #[must_use]
    pub fn render(&self, data: &Value) -> String {
        self.render_with(|path| walk_relative(data, path))
    }

    /// The LLM renderer (`llm_infer.prompt`; docs/dialect.md §9.2).
    ///
    /// An empty key inserts the whole value; otherwise every segment (empty
    /// ones included) must name a member of an object — arrays are never
    /// indexed, so `{{arr.0}}` stays literal. Literal text is copied
    /// unchanged (see "Divergence" in the module docs).
    #[must_use]
    pub fn render_llm(&self, data: &Value) -> String {
        self.render_with(|path| walk_objects(data, path))
    }

    /// The renderer over a lookup of its own: `lookup` answers a key's
    /// segments (empty ones included) with a value or a miss.
    pub(crate) fn render_with<'v>(&self, lookup: impl Fn(&[&str]) -> Option<&'v Value>) -> String {
        // A template without placeholders (a fixed `respond` body, say) is
        // its text: nothing to look up, one exact allocation.
        if let [Seg::Lit(text)] = self.0 {
            return (*text).to_owned();
        }
        let mut out = String::with_capacity(self.capacity_hint());
        for seg in self.0 {
            match *seg {
                Seg::Lit(text) => out.push_str(text),
                Seg::Key { raw, path } => match lookup(path) {
                    Some(Value::String(s)) => out.push_str(s),
                    // `Value`'s Display is compact JSON; without serde_json's
                    // `preserve_order` its maps iterate in sorted key order.
                    Some(other) => push_display(&mut out, other),
                    None => {
                        out.push_str("{{");
                        out.push_str(raw);
                        out.push_str("}}");
                    }
                },
                Seg::Json { path, .. } => match lookup(path) {
                    // What `Value`'s Display writes for a string, without
                    // the formatter.
                    Some(Value::String(s)) => push_json_str(&mut out, s),
                    Some(other) => push_display(&mut out, other),
                    None => out.push_str("null"),
                },
            }
        }
        out
    }

    /// The rendered length if every key is a short value: the literal text
    /// plus [`KEY_GUESS`] bytes a key, so a small reply is one allocation.
    fn capacity_hint(&self) -> usize {
        self.0
            .iter()
            .map(|seg| match seg {
                Seg::Lit(text) => text.len(),
                Seg::Key { .. } | Seg::Json { .. } => KEY_GUESS,
            })
            .fold(0, usize::saturating_add)
    }
}

/// Bytes [`Template::capacity_hint`] allows for each key's value.
const KEY_GUESS: usize = 16;

/// `value`'s Display (compact JSON), written straight into `out`.
fn push_display(out: &mut String, value: &Value) {
    use std::fmt::Write as _;
    // Writing into a `String` cannot fail, and `Value`'s Display does not
    // fail on its own.
    let _ = write!(out, "{value}");
}

/// The relative walk of templates and `json_select` (docs/dialect.md §9.2; docs/dialect.md §7 `json_select`):
/// empty segments are skipped, objects are entered by key, arrays by a
/// segment that parses as `usize`, and anything else misses.
#[must_use]
pub fn walk_relative<'v>(data: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = data;
    for seg in path.iter().filter(|s| !s.is_empty()) {
        cur = step_into(cur, seg)?;
    }
    Some(cur)
}

/// One step of a path walk: an object member, or an array element by
/// `usize` index (Rust's parse: `"01"` and `"+1"` are accepted).
pub fn step_into<'v>(cur: &'v Value, seg: &str) -> Option<&'v Value> {
    match cur {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
        _ => None,
    }
}

/// The LLM renderer's walk: the whole value for an empty key, else objects
/// only, without skipping empty segments.
fn walk_objects<'v>(data: &'v Value, path: &[&str]) -> Option<&'v Value> {
    if let [only] = path
        && only.is_empty()
    {
        return Some(data);
    }
    let mut cur = data;
    for seg in path {
        cur = cur.as_object()?.get(*seg)?;
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_json_filter_inserts_valid_json_for_hostile_strings_values_and_misses() {
        let t = Template(&[
            Seg::Lit(r#"{"m":"#),
            Seg::Json {
                raw: "msg",
                path: &["msg"],
            },
            Seg::Lit(r#","n":"#),
            Seg::Json {
                raw: "n",
                path: &["n"],
            },
            Seg::Lit(r#","gone":"#),
            Seg::Json {
                raw: "gone",
                path: &["gone"],
            },
            Seg::Lit("}"),
        ]);
        let data = json!({"msg": "say \"hi\"\n</x>", "n": {"b": [1, 2]}});
        for rendered in [t.render(&data), t.render_llm(&data)] {
            let parsed: Value = serde_json::from_str(&rendered)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {rendered}"));
            assert_eq!(
                parsed,
                json!({"m": "say \"hi\"\n</x>", "n": {"b": [1, 2]}, "gone": null})
            );
        }
    }

    #[test]
    fn a_template_without_placeholders_renders_its_text_under_every_renderer() {
        let t = Template(&[Seg::Lit("pong {not a key}\n")]);
        let data = json!({"pong": "x", "not a key": "y"});
        assert_eq!(t.render(&data), "pong {not a key}\n");
        assert_eq!(t.render_llm(&data), "pong {not a key}\n");
        assert_eq!(t.render_with(|_| Some(&data)), "pong {not a key}\n");
        assert_eq!(Template(&[]).render(&data), "");
    }

    #[test]
    fn json_strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        every_ascii.push_str("é\u{2028}\u{1f600}\u{7f}\u{80}\u{ffff} end");
        let samples = [
            String::new(),
            "plain".to_owned(),
            "say \"hi\"\n</x>\\".to_owned(),
            "\u{0}\u{1}\u{1f}\u{20}".to_owned(),
            "trailing\\".to_owned(),
            "\"".to_owned(),
            every_ascii,
        ];
        for s in samples {
            let value = Value::String(s.clone());
            let mut out = String::new();
            push_json_str(&mut out, &s);
            assert_eq!(out, value.to_string(), "{s:?}");
            // And through both renderers, beside a non-string value.
            let t = Template(&[
                Seg::Json {
                    raw: "s",
                    path: &["s"],
                },
                Seg::Lit(","),
                Seg::Json {
                    raw: "n",
                    path: &["n"],
                },
                Seg::Lit(","),
                Seg::Key {
                    raw: "n",
                    path: &["n"],
                },
            ]);
            let data = json!({"s": s, "n": {"b": [1.5, null, "x\ty"], "a": true}});
            let expected = format!("{value},{},{}", data["n"], data["n"]);
            assert_eq!(t.render(&data), expected);
            assert_eq!(t.render_llm(&data), expected);
        }
    }

    const GREETING: Template = Template(&[
        Seg::Lit("Hello, "),
        Seg::Key {
            raw: "user.name",
            path: &["user", "name"],
        },
        Seg::Lit(" ("),
        Seg::Key {
            raw: "user.age",
            path: &["user", "age"],
        },
        Seg::Lit(")"),
    ]);

    #[test]
    fn strings_insert_raw_and_other_values_as_compact_json() {
        let data = json!({"user": {"name": "Ada", "age": 36}});
        assert_eq!(GREETING.render(&data), "Hello, Ada (36)");
    }

    #[test]
    fn a_miss_re_emits_the_trimmed_key() {
        assert_eq!(
            GREETING.render(&json!({})),
            "Hello, {{user.name}} ({{user.age}})"
        );
    }

    #[test]
    fn null_data_leaves_every_non_empty_key_literal() {
        assert_eq!(
            GREETING.render(&Value::Null),
            "Hello, {{user.name}} ({{user.age}})"
        );
    }

    #[test]
    fn empty_key_and_lone_dot_insert_the_whole_value_as_sorted_json() {
        let t = Template(&[
            Seg::Key {
                raw: "",
                path: &[""],
            },
            Seg::Lit("|"),
            Seg::Key {
                raw: ".",
                path: &["", ""],
            },
        ]);
        let data = json!({"b": 1, "a": [true, null]});
        assert_eq!(
            t.render(&data),
            r#"{"a":[true,null],"b":1}|{"a":[true,null],"b":1}"#
        );
    }

    #[test]
    fn engine_renderer_indexes_arrays_and_skips_empty_segments() {
        let t = Template(&[Seg::Key {
            raw: "items..1.name",
            path: &["items", "", "1", "name"],
        }]);
        let data = json!({"items": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(t.render(&data), "b");
    }

    #[test]
    fn unclosed_marker_is_plain_literal_text() {
        let t = Template(&[Seg::Lit("a {{open")]);
        assert_eq!(t.render(&json!({"open": 1})), "a {{open");
    }

    #[test]
    fn utf8_literal_text_is_preserved_by_both_renderers() {
        let t = Template(&[
            Seg::Lit("café "),
            Seg::Key {
                raw: "x",
                path: &["x"],
            },
        ]);
        let data = json!({"x": "é"});
        assert_eq!(t.render(&data), "café é");
        assert_eq!(t.render_llm(&data), "café é");
    }

    #[test]
    fn llm_renderer_never_indexes_arrays() {
        let t = Template(&[Seg::Key {
            raw: "arr.0",
            path: &["arr", "0"],
        }]);
        let data = json!({"arr": ["x"]});
        assert_eq!(t.render_llm(&data), "{{arr.0}}");
        assert_eq!(t.render(&data), "x");
    }

    #[test]
    fn llm_renderer_does_not_skip_empty_segments() {
        let t = Template(&[Seg::Key {
            raw: "a..b",
            path: &["a", "", "b"],
        }]);
        assert_eq!(t.render_llm(&json!({"a": {"b": 1}})), "{{a..b}}");
        assert_eq!(t.render_llm(&json!({"a": {"": {"b": 1}}})), "1");
        assert_eq!(t.render(&json!({"a": {"b": 1}})), "1");
    }

    #[test]
    fn llm_renderer_empty_key_is_the_whole_value() {
        let t = Template(&[Seg::Key {
            raw: "",
            path: &[""],
        }]);
        assert_eq!(t.render_llm(&json!("plain")), "plain");
        assert_eq!(t.render_llm(&json!([1, 2])), "[1,2]");
    }

    #[test]
    fn relative_walk_accepts_rust_usize_syntax_only() {
        let data = json!([10, 20]);
        assert_eq!(walk_relative(&data, &["+1"]), Some(&json!(20)));
        assert_eq!(walk_relative(&data, &["01"]), Some(&json!(20)));
        assert_eq!(walk_relative(&data, &["-1"]), None);
        assert_eq!(walk_relative(&json!("s"), &["0"]), None);
    }
}
