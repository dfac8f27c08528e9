//! Control kinds, always compiled in: `condition`, `switch`, `merge`,
//! `fail`, `terminate`, `respond` (docs/dialect.md §7 `condition` to `terminate`).
//!
//! These decide branch labels and run endings; they must never touch the
//! world. `respond` only records the reply; serving it is the caller's job.

use serde_json::{Value, json};

use crate::context::{Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::outcome::HttpResponse;
use crate::template::Template;

/// `condition` config.
#[derive(Debug)]
pub struct Condition {
    /// `expr`: a context path (not an expression).
    pub expr: CtxPath,
}

/// `switch` config.
#[derive(Debug)]
pub struct Switch {
    /// `expr`: a context path.
    pub expr: CtxPath,
}

/// `fail` config.
#[derive(Debug)]
pub struct Fail {
    /// `reason`; the compiler bakes the default `"workflow failed"`.
    pub reason: &'static str,
}

/// `respond` config.
#[derive(Debug)]
pub struct Respond {
    /// `status` (default 200; 100..=599 checked at build time).
    pub status: u16,
    /// `content_type` (default `application/json`).
    pub content_type: &'static str,
    /// `body_template`, rendered with the engine renderer.
    pub body: Template,
    /// `input_from`; `None` renders against the raw trigger input.
    pub input_from: Option<CtxPath>,
}

/// `condition`: output `{"value": <resolved or null>}`, branch `"true"` if
/// the value is truthy, else `"false"`.
///
/// # Errors
///
/// Never; a miss is `null`.
pub fn condition(cx: &Cx<'_>, cfg: &'static Condition) -> Result<Step, Error> {
    let value = cx.resolve(&cfg.expr).cloned().unwrap_or(Value::Null);
    let label = if truthy(&value) { "true" } else { "false" };
    Ok(Step::branch(json!({ "value": value }), label))
}

/// Dialect truthiness (docs/dialect.md §7 `condition`): `null`, `false`, any number equal to
/// 0.0, `""`, `[]` and `{}` are false; everything else (including the
/// string `"false"`) is true.
#[must_use]
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `switch`: output `{"value": <resolved or null>}`, branch = the value's
/// label (docs/dialect.md §7 `switch`). There is no default case: an unrouted label is a
/// dead end.
///
/// # Errors
///
/// Never; a miss routes on `"null"`.
pub fn switch(cx: &Cx<'_>, cfg: &'static Switch) -> Result<Step, Error> {
    let value = cx.resolve(&cfg.expr).cloned().unwrap_or(Value::Null);
    let label = switch_label(&value);
    Ok(Step::branch(json!({ "value": value }), label))
}

/// The branch label of a switch value: strings verbatim, `true`/`false`,
/// numbers as serde_json prints them (`1.0` stays `1.0`), `null`, `array`,
/// `object`.
#[must_use]
pub fn switch_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_owned(),
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

/// `merge`: a pass-through with output `null` (there is no join barrier).
///
/// # Errors
///
/// Never.
pub fn merge(_cx: &Cx<'_>) -> Result<Step, Error> {
    Ok(Step::value(Value::Null))
}

/// `terminate`: end the run `completed` with `final_value: null`.
///
/// # Errors
///
/// Never.
pub fn terminate(_cx: &Cx<'_>) -> Result<Step, Error> {
    Ok(Step::Terminate)
}

/// `fail`: end the run `failed` with the configured reason.
///
/// # Errors
///
/// Never (a `fail` node is an outcome, not an error).
pub fn fail(_cx: &Cx<'_>, cfg: &'static Fail) -> Result<Step, Error> {
    Ok(Step::Fail {
        reason: cfg.reason.into(),
    })
}

/// `respond`: render the body, record the pending HTTP reply (last one
/// wins; attached only to a completed top-level run) and output
/// `{"status", "content_type", "bytes"}` — or `null` where that output
/// could never be read (`Cx::reply_makes_output_unread`: the node ends
/// a served run, whose reply is all the client gets).
///
/// # Errors
///
/// `tool `respond` failed` when `input_from` is set but resolves to nothing.
pub fn respond(cx: &mut Cx<'_>, cfg: &'static Respond) -> Result<Step, Error> {
    let body = match &cfg.input_from {
        Some(path) => cfg.body.render(cx.require("respond", path)?),
        None => cx.render_raw_input(&cfg.body),
    };
    let bytes = body.len();
    cx.set_reply(HttpResponse {
        status: cfg.status,
        content_type: cfg.content_type,
        body,
    });
    if cx.reply_makes_output_unread() {
        // The walk ends here and its caller answers with the reply alone:
        // nobody would read the summary object (building and dropping it was
        // a tenth of a served `/ping`'s run).
        return Ok(Step::value(Value::Null));
    }
    Ok(Step::value(json!({
        "status": cfg.status,
        "content_type": cfg.content_type,
        "bytes": bytes,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::{TestRun, path};
    use crate::template::Seg;

    fn leak<T>(v: T) -> &'static T {
        Box::leak(Box::new(v))
    }

    #[test]
    fn condition_routes_on_truthiness() {
        let cases = [
            (json!(null), "false"),
            (json!(false), "false"),
            (json!(0), "false"),
            (json!(0.0), "false"),
            (json!(-0.0), "false"),
            (json!(""), "false"),
            (json!([]), "false"),
            (json!({}), "false"),
            (json!(true), "true"),
            (json!(0.5), "true"),
            (json!("false"), "true"),
            (json!([0]), "true"),
            (json!({"a": null}), "true"),
        ];
        for (value, label) in cases {
            let mut run = TestRun::new(json!({ "v": value }));
            let cfg = leak(Condition {
                expr: path("trigger.v"),
            });
            assert_eq!(
                condition(&run.cx(), cfg).ok(),
                Some(Step::branch(json!({ "value": value }), label)),
                "value {value}"
            );
        }
    }

    #[test]
    fn condition_on_a_missing_path_is_false_with_null_value() {
        let mut run = TestRun::new(json!({}));
        let cfg = leak(Condition {
            expr: path("trigger.nope"),
        });
        assert_eq!(
            condition(&run.cx(), cfg).ok(),
            Some(Step::branch(json!({ "value": null }), "false"))
        );
    }

    #[test]
    fn switch_labels_follow_the_value_type() {
        let cases = [
            (json!("Right"), "Right"),
            (json!(true), "true"),
            (json!(1), "1"),
            (json!(1.5), "1.5"),
            (json!(1.0), "1.0"),
            (json!(null), "null"),
            (json!([1]), "array"),
            (json!({"a": 1}), "object"),
        ];
        for (value, label) in cases {
            let mut run = TestRun::new(json!({ "v": value }));
            let cfg = leak(Switch {
                expr: path("trigger.v"),
            });
            assert_eq!(
                switch(&run.cx(), cfg).ok(),
                Some(Step::branch(json!({ "value": value }), label)),
                "value {value}"
            );
        }
    }

    #[test]
    fn switch_on_a_missing_path_routes_null() {
        let mut run = TestRun::new(json!({}));
        let cfg = leak(Switch { expr: path("a.b") });
        assert_eq!(
            switch(&run.cx(), cfg).ok(),
            Some(Step::branch(json!({ "value": null }), "null"))
        );
    }

    #[test]
    fn merge_outputs_null_and_terminate_and_fail_end_the_run() {
        let mut run = TestRun::new(Value::Null);
        assert_eq!(merge(&run.cx()).ok(), Some(Step::value(Value::Null)));
        assert_eq!(terminate(&run.cx()).ok(), Some(Step::Terminate));
        let cfg = leak(Fail {
            reason: "workflow failed",
        });
        assert_eq!(
            fail(&run.cx(), cfg).ok(),
            Some(Step::Fail {
                reason: "workflow failed".into()
            })
        );
    }

    static GREETING: Respond = Respond {
        status: 201,
        content_type: "text/xml",
        body: Template(&[
            Seg::Lit("<g>"),
            Seg::Key {
                raw: "greeting",
                path: &["greeting"],
            },
            Seg::Lit("</g>"),
        ]),
        input_from: None,
    };

    #[test]
    fn respond_renders_the_raw_input_by_default_and_records_the_reply() {
        let mut run = TestRun::new(json!({"greeting": "hé"}));
        let step = respond(&mut run.cx(), &GREETING).ok();
        assert_eq!(
            step,
            Some(Step::value(
                json!({"status": 201, "content_type": "text/xml", "bytes": 10})
            ))
        );
        assert_eq!(
            run.frame.reply,
            Some(HttpResponse {
                status: 201,
                content_type: "text/xml",
                body: "<g>hé</g>".into()
            })
        );
    }

    #[test]
    fn respond_renders_input_from_and_errors_when_it_is_unset() {
        let cfg = leak(Respond {
            status: 200,
            content_type: "application/json",
            body: Template(&[Seg::Key {
                raw: "",
                path: &[""],
            }]),
            input_from: Some(path("a.out")),
        });
        let mut run = TestRun::new(Value::Null).set("a", json!({"out": {"k": 1}}));
        assert!(respond(&mut run.cx(), cfg).is_ok());
        assert_eq!(
            run.frame.reply.as_ref().map(|r| r.body.as_str()),
            Some(r#"{"k":1}"#)
        );

        let mut run = TestRun::new(Value::Null);
        assert_eq!(
            respond(&mut run.cx(), cfg)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("tool `respond` failed: path `a.out` is not set in the execution context")
        );
    }

    #[test]
    fn the_last_respond_wins() {
        let second = leak(Respond {
            status: 202,
            content_type: "text/plain",
            body: Template(&[Seg::Lit("second")]),
            input_from: None,
        });
        let mut run = TestRun::new(json!({}));
        assert!(respond(&mut run.cx(), &GREETING).is_ok());
        assert!(respond(&mut run.cx(), second).is_ok());
        assert_eq!(run.frame.reply.as_ref().map(|r| r.status), Some(202));
    }

    #[test]
    fn a_literal_body_is_its_text_and_input_from_is_still_required() {
        let literal = leak(Respond {
            status: 200,
            content_type: "text/plain",
            body: Template(&[Seg::Lit("pong\n")]),
            input_from: None,
        });
        let mut run = TestRun::new(json!({"x": 1}));
        assert!(respond(&mut run.cx(), literal).is_ok());
        assert_eq!(
            run.frame.reply.as_ref().map(|r| r.body.as_str()),
            Some("pong\n")
        );
        // A literal body under `input_from` still needs the path set.
        let from = leak(Respond {
            status: 200,
            content_type: "text/plain",
            body: Template(&[Seg::Lit("pong\n")]),
            input_from: Some(path("a.out")),
        });
        let mut run = TestRun::new(json!({}));
        assert!(respond(&mut run.cx(), from).is_err());
        let mut run = TestRun::new(json!({})).set("a", json!({"out": 1}));
        assert!(respond(&mut run.cx(), from).is_ok());
        assert_eq!(
            run.frame.reply.as_ref().map(|r| r.body.as_str()),
            Some("pong\n")
        );
    }
}
