//! Data kinds (feature `data`): `parse_json`, `template_render`,
//! `json_select`, `diff_compute` (docs/dialect.md §7 `parse_json` to `json_select`).
//!
//! Pure functions of the context: no policy gate, no dry-run effect, no
//! I/O. They must never grow a side effect.

use serde_json::{Map, Value, json};

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::template::{Template, walk_relative};

/// `parse_json` config.
#[derive(Debug)]
pub struct ParseJson {
    /// `input_from`: must resolve to a JSON string.
    pub input_from: CtxPath,
}

/// `template_render` config.
#[derive(Debug)]
pub struct TemplateRender {
    /// `template`, pre-parsed.
    pub template: Template,
    /// `input_from`; `None` renders against `null`.
    pub input_from: Option<CtxPath>,
}

/// `json_select` config.
#[derive(Debug)]
pub struct JsonSelect {
    /// `input_from`: must be set.
    pub input_from: CtxPath,
    /// `path`, split on every `.` (empty segments may be kept: the walk
    /// skips them).
    pub path: &'static [&'static str],
}

/// `diff_compute` config.
#[derive(Debug)]
pub struct DiffCompute {
    /// `left_from`: must be set.
    pub left_from: CtxPath,
    /// `right_from`: must be set.
    pub right_from: CtxPath,
}

/// `parse_json`: output `{"parsed": <value>}`.
///
/// # Errors
///
/// `tool `parse_json` failed` when the path is unset, not a string, or not
/// valid JSON.
pub fn parse_json(cx: &Cx<'_>, cfg: &'static ParseJson) -> Result<Step, Error> {
    let raw = cx.require_str("parse_json", &cfg.input_from)?;
    let parsed: Value = serde_json::from_str(raw).map_err(|e| {
        Error::tool(
            "parse_json",
            format!("invalid JSON at `{}`: {e}", cfg.input_from.text),
        )
    })?;
    Ok(Step::value(json!({ "parsed": parsed })))
}

/// `template_render`: output `{"rendered": <string>}` (engine renderer).
///
/// # Errors
///
/// `tool `template_render` failed` when `input_from` is set but unresolved.
pub fn template_render(cx: &Cx<'_>, cfg: &'static TemplateRender) -> Result<Step, Error> {
    let rendered = match &cfg.input_from {
        Some(path) => cfg.template.render(cx.require("template_render", path)?),
        None => cfg.template.render(&Value::Null),
    };
    // The map built directly: `json!` would serialise `rendered` again.
    let mut out = Map::new();
    out.insert("rendered".to_owned(), Value::String(rendered));
    Ok(Step::value(Value::Object(out)))
}

/// `json_select`: output `{"value": <selected or null>, "found": bool}`;
/// `found` is true whenever the path resolved, even to an explicit `null`.
///
/// # Errors
///
/// `tool `json_select` failed` when `input_from` is unset.
pub fn json_select(cx: &Cx<'_>, cfg: &'static JsonSelect) -> Result<Step, Error> {
    let input = cx.require("json_select", &cfg.input_from)?;
    let selected = walk_relative(input, cfg.path);
    Ok(Step::value(json!({
        "value": selected.cloned().unwrap_or(Value::Null),
        "found": selected.is_some(),
    })))
}

/// `diff_compute`: output `{"added", "removed", "changed", "unchanged"}`
/// (docs/dialect.md §7 `diff_compute`).
///
/// # Errors
///
/// `tool `diff_compute` failed` when either path is unset.
pub fn diff_compute(cx: &Cx<'_>, cfg: &'static DiffCompute) -> Result<Step, Error> {
    let left = cx.require("diff_compute", &cfg.left_from)?;
    let right = cx.require("diff_compute", &cfg.right_from)?;
    diff(left, right).map(Step::value).ok_or_else(|| {
        Error::tool(
            "diff_compute",
            format!("the diff is too large: its paths exceed {MAX_DIFF_PATH_BYTES} bytes"),
        )
    })
}

/// Most bytes of the paths of one diff. Each entry names its whole path, so
/// many entries under a long key would repeat that key: without a cap a 1 MiB
/// input could make gigabytes of paths.
pub const MAX_DIFF_PATH_BYTES: usize = 16 * 1024 * 1024;

/// The structural diff of docs/dialect.md §7 `diff_compute` as a value; `None` when its paths would
/// exceed [`MAX_DIFF_PATH_BYTES`].
#[must_use]
pub fn diff(left: &Value, right: &Value) -> Option<Value> {
    let mut bins = DiffBins::default();
    bins.walk(&mut Vec::new(), left, right);
    if bins.over {
        return None;
    }
    let unchanged = bins.added.is_empty() && bins.removed.is_empty() && bins.changed.is_empty();
    Some(json!({
        "added": bins.added,
        "removed": bins.removed,
        "changed": bins.changed,
        "unchanged": unchanged,
    }))
}

/// One step of a diff path.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
enum Bin {
    Added,
    Removed,
    Changed,
}

#[derive(Default)]
struct DiffBins {
    added: Map<String, Value>,
    removed: Map<String, Value>,
    changed: Map<String, Value>,
    path_bytes: usize,
    over: bool,
}

impl DiffBins {
    /// `path` is the location so far, as segments: it is spelled out only for
    /// an entry (keys joined by `.`, indices as `[i]`, `$` for the root), so
    /// walking equal subtrees costs no string work.
    fn walk<'a>(&mut self, path: &mut Vec<Seg<'a>>, left: &'a Value, right: &'a Value) {
        if self.over {
            return;
        }
        match (left, right) {
            (Value::Object(l), Value::Object(r)) => {
                for (key, lv) in l {
                    path.push(Seg::Key(key));
                    match r.get(key) {
                        Some(rv) => self.walk(path, lv, rv),
                        None => self.record(Bin::Removed, path, lv.clone()),
                    }
                    path.pop();
                }
                for (key, rv) in r {
                    if !l.contains_key(key) {
                        path.push(Seg::Key(key));
                        self.record(Bin::Added, path, rv.clone());
                        path.pop();
                    }
                }
            }
            (Value::Array(l), Value::Array(r)) => {
                for i in 0..l.len().max(r.len()) {
                    path.push(Seg::Index(i));
                    match (l.get(i), r.get(i)) {
                        (Some(lv), Some(rv)) => self.walk(path, lv, rv),
                        (Some(lv), None) => self.record(Bin::Removed, path, lv.clone()),
                        (None, Some(rv)) => self.record(Bin::Added, path, rv.clone()),
                        (None, None) => {}
                    }
                    path.pop();
                }
            }
            (l, r) if l == r => {}
            (l, r) => self.record(Bin::Changed, path, json!({ "from": l, "to": r })),
        }
    }

    fn record(&mut self, bin: Bin, path: &[Seg<'_>], value: Value) {
        if self.over {
            return;
        }
        let spelled = spell(path);
        self.path_bytes = self.path_bytes.saturating_add(spelled.len());
        if self.path_bytes > MAX_DIFF_PATH_BYTES {
            self.over = true;
            return;
        }
        let map = match bin {
            Bin::Added => &mut self.added,
            Bin::Removed => &mut self.removed,
            Bin::Changed => &mut self.changed,
        };
        map.insert(spelled, value);
    }
}

/// `a.b[2].c`; `$` for the root.
fn spell(path: &[Seg<'_>]) -> String {
    if path.is_empty() {
        return "$".to_owned();
    }
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::{TestRun, path};
    use crate::template::Seg;

    fn leak<T>(v: T) -> &'static T {
        Box::leak(Box::new(v))
    }

    fn err_text(r: Result<Step, Error>) -> Option<String> {
        r.err().map(|e| e.to_string())
    }

    #[test]
    fn parse_json_outputs_parsed() {
        let cfg = leak(ParseJson {
            input_from: path("trigger.raw"),
        });
        let mut run = TestRun::new(json!({"raw": r#"{"n": 7, "l": [1]}"#}));
        assert_eq!(
            parse_json(&run.cx(), cfg).ok(),
            Some(Step::value(json!({"parsed": {"n": 7, "l": [1]}})))
        );
    }

    #[test]
    fn parse_json_errors() {
        let cfg = leak(ParseJson {
            input_from: path("trigger.raw"),
        });
        let mut run = TestRun::new(json!({}));
        assert_eq!(
            err_text(parse_json(&run.cx(), cfg)).as_deref(),
            Some(
                "tool `parse_json` failed: path `trigger.raw` is not set in the execution context"
            )
        );
        let mut run = TestRun::new(json!({"raw": 5}));
        assert_eq!(
            err_text(parse_json(&run.cx(), cfg)).as_deref(),
            Some(
                "tool `parse_json` failed: path `trigger.raw` must resolve to a string; got number"
            )
        );
        let mut run = TestRun::new(json!({"raw": "not json"}));
        let text = err_text(parse_json(&run.cx(), cfg)).unwrap_or_default();
        assert!(
            text.starts_with("tool `parse_json` failed: invalid JSON at `trigger.raw`: "),
            "{text}"
        );
    }

    static HELLO: Template = Template(&[
        Seg::Lit("Hello, "),
        Seg::Key {
            raw: "value",
            path: &["value"],
        },
        Seg::Lit("!"),
    ]);

    #[test]
    fn template_render_uses_input_from() {
        let cfg = leak(TemplateRender {
            template: HELLO,
            input_from: Some(path("a")),
        });
        let mut run = TestRun::new(Value::Null).set("a", json!({"value": "Ada"}));
        assert_eq!(
            template_render(&run.cx(), cfg).ok(),
            Some(Step::value(json!({"rendered": "Hello, Ada!"})))
        );
    }

    #[test]
    fn template_render_without_input_renders_against_null() {
        let cfg = leak(TemplateRender {
            template: HELLO,
            input_from: None,
        });
        let mut run = TestRun::new(json!({"value": "ignored"}));
        assert_eq!(
            template_render(&run.cx(), cfg).ok(),
            Some(Step::value(json!({"rendered": "Hello, {{value}}!"})))
        );
    }

    #[test]
    fn template_render_errors_on_unset_input() {
        let cfg = leak(TemplateRender {
            template: HELLO,
            input_from: Some(path("b")),
        });
        let mut run = TestRun::new(Value::Null);
        assert_eq!(
            err_text(template_render(&run.cx(), cfg)).as_deref(),
            Some("tool `template_render` failed: path `b` is not set in the execution context")
        );
    }

    #[test]
    fn json_select_found_value_null_and_miss() {
        let select = |p: &'static [&'static str]| {
            leak(JsonSelect {
                input_from: path("a"),
                path: p,
            })
        };
        let mut run = TestRun::new(Value::Null)
            .set("a", json!({"order": {"id": 9, "gone": null}, "l": [1, 2]}));
        let cx = run.cx();
        assert_eq!(
            json_select(&cx, select(&["order", "id"])).ok(),
            Some(Step::value(json!({"value": 9, "found": true})))
        );
        assert_eq!(
            json_select(&cx, select(&["order", "gone"])).ok(),
            Some(Step::value(json!({"value": null, "found": true})))
        );
        assert_eq!(
            json_select(&cx, select(&["order", "nope"])).ok(),
            Some(Step::value(json!({"value": null, "found": false})))
        );
        assert_eq!(
            json_select(&cx, select(&["l", "", "1"])).ok(),
            Some(Step::value(json!({"value": 2, "found": true})))
        );
    }

    #[test]
    fn json_select_errors_on_unset_input() {
        let cfg = leak(JsonSelect {
            input_from: path("c"),
            path: &["x"],
        });
        let mut run = TestRun::new(Value::Null);
        assert_eq!(
            err_text(json_select(&run.cx(), cfg)).as_deref(),
            Some("tool `json_select` failed: path `c` is not set in the execution context")
        );
    }

    #[test]
    fn diff_reports_added_removed_changed_with_paths() {
        let left = json!({"a": 1, "b": {"c": [1, 2, 3]}, "gone": true, "same": "x"});
        let right = json!({"a": "1", "b": {"c": [1, 5]}, "new": null, "same": "x"});
        assert_eq!(
            diff(&left, &right).unwrap_or_default(),
            json!({
                "added": {"new": null},
                "removed": {"gone": true, "b.c[2]": 3},
                "changed": {"a": {"from": 1, "to": "1"}, "b.c[1]": {"from": 2, "to": 5}},
                "unchanged": false,
            })
        );
    }

    #[test]
    fn diff_of_equal_values_is_unchanged() {
        assert_eq!(
            diff(&json!({"a": [1]}), &json!({"a": [1]})).unwrap_or_default(),
            json!({"added": {}, "removed": {}, "changed": {}, "unchanged": true})
        );
    }

    #[test]
    fn diff_of_root_scalars_uses_dollar() {
        assert_eq!(
            diff(&json!(1), &json!([1])).unwrap_or_default()["changed"],
            json!({"$": {"from": 1, "to": [1]}})
        );
        assert_eq!(
            diff(&json!([1]), &json!([1, {"k": 2}])).unwrap_or_default()["added"],
            json!({"[1]": {"k": 2}})
        );
    }

    #[test]
    fn diff_paths_after_an_index_and_deep_keys_are_spelled_like_the_dialect() {
        let left = json!([{"a": {"b": 1}}]);
        let right = json!([{"a": {"b": 2, "c": 3}}]);
        assert_eq!(
            diff(&left, &right).unwrap_or_default(),
            json!({
                "added": {"[0].a.c": 3},
                "removed": {},
                "changed": {"[0].a.b": {"from": 1, "to": 2}},
                "unchanged": false,
            })
        );
    }

    #[test]
    fn a_diff_whose_paths_would_repeat_a_long_key_too_often_is_refused() {
        // 64 KiB key × 300 removed entries = 19 MiB of paths, from a 64 KiB input.
        let key = "k".repeat(64 * 1024);
        let inner: Map<String, Value> = (0..300).map(|i| (format!("x{i}"), json!(0))).collect();
        let left = json!({ key.clone(): inner });
        let right = json!({ key: {} });
        assert_eq!(diff(&left, &right), None);
        let cfg = leak(DiffCompute {
            left_from: path("trigger.before"),
            right_from: path("trigger.after"),
        });
        let mut run = TestRun::new(json!({"before": left, "after": right}));
        assert_eq!(
            err_text(diff_compute(&run.cx(), cfg)).as_deref(),
            Some(
                "tool `diff_compute` failed: the diff is too large: its paths exceed 16777216 bytes"
            )
        );
        // Equal subtrees under the same key cost nothing and stay unchanged.
        let same = diff(&left_same(), &left_same()).unwrap_or_default();
        assert_eq!(same["unchanged"], json!(true));
    }

    fn left_same() -> Value {
        let key = "k".repeat(64 * 1024);
        let inner: Map<String, Value> = (0..3000).map(|i| (format!("x{i}"), json!(0))).collect();
        json!({ key: inner })
    }

    #[test]
    fn diff_compute_requires_both_paths() {
        let cfg = leak(DiffCompute {
            left_from: path("trigger.before"),
            right_from: path("trigger.after"),
        });
        let mut run = TestRun::new(json!({"before": {"x": 1}, "after": {"x": 2}}));
        assert_eq!(
            diff_compute(&run.cx(), cfg).ok(),
            Some(Step::value(json!({
                "added": {}, "removed": {}, "changed": {"x": {"from": 1, "to": 2}}, "unchanged": false
            })))
        );
        let mut run = TestRun::new(json!({"before": 1}));
        assert_eq!(
            err_text(diff_compute(&run.cx(), cfg)).as_deref(),
            Some(
                "tool `diff_compute` failed: path `trigger.after` is not set in the execution context"
            )
        );
    }
}
