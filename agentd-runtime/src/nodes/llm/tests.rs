use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::context::testing::{TestRun, path};
use crate::intel::mock::MockBackend;
use crate::intel::{Backends, Intel, TokenBudget};
use crate::template::Seg;

static PROMPT: [Seg; 2] = [
    Seg::Lit("Classify: "),
    Seg::Key {
        raw: "text",
        path: &["text"],
    },
];

fn cfg(schema: OutputSchema, repairs: u32) -> LlmInfer {
    LlmInfer {
        backend: "default",
        prompt: Template(&PROMPT),
        input_from: Some(path("trigger")),
        output_schema: schema,
        output_repairs: repairs,
    }
}

fn reply(content: &str, p: u64, c: u64) -> ChatReply {
    ChatReply {
        content: content.into(),
        prompt_tokens: p,
        completion_tokens: c,
    }
}

/// A run whose `default` backend is a mock answering `replies`.
fn run_with(replies: Vec<ChatReply>, cap: Option<u64>) -> (TestRun, Arc<MockBackend>) {
    let mock = Arc::new(MockBackend::from_replies(VecDeque::from(replies), None));
    let mut backends = Backends::new();
    backends.insert("default", mock.clone());
    let mut run = TestRun::new(json!({"text": "hello"}));
    run.set_llm_state(std::sync::Arc::new(Intel::new(
        backends,
        TokenBudget::new(cap),
    )));
    (run, mock)
}

fn go(run: &mut TestRun, c: &LlmInfer) -> Result<Step, Error> {
    llm_infer(&mut run.cx(), c)
}

fn err(r: Result<Step, Error>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn no_schema_returns_text_and_usage_and_bills_metrics() {
    let (mut run, mock) = run_with(vec![reply("positive", 10, 2)], None);
    let step = go(&mut run, &cfg(OutputSchema::None, 0));
    assert_eq!(
        step.ok(),
        Some(Step::value(json!({
            "content": "positive", "parsed": null,
            "usage": {"prompt_tokens": 10, "completion_tokens": 2}
        })))
    );
    let m = run.shared.metrics.snapshot();
    assert_eq!((m.llm_calls, m.llm_tokens), (1, 12));
    assert_eq!(
        run.llm_state()
            .and_then(|s| s.downcast_ref::<crate::intel::Intel>())
            .map_or(0, |i| i.budget.used()),
        12
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].model, "fast");
    assert_eq!(reqs[0].max_tokens, Some(1024));
    assert_eq!(reqs[0].messages, vec![ChatMessage::user("Classify: hello")]);
}

#[test]
fn output_keys_serialise_sorted() {
    let (mut run, _) = run_with(vec![reply("{\"b\":1}", 1, 1)], None);
    let Ok(Step::Continue { value, branch }) = go(&mut run, &cfg(OutputSchema::JsonOnly, 0)) else {
        panic!("expected a value");
    };
    assert_eq!(branch, None);
    assert_eq!(
        value.to_string(),
        r#"{"content":"{\"b\":1}","parsed":{"b":1},"usage":{"completion_tokens":1,"prompt_tokens":1}}"#
    );
}

#[test]
fn a_missing_input_renders_against_null() {
    let (mut run, mock) = run_with(vec![reply("x", 0, 0)], None);
    let mut c = cfg(OutputSchema::None, 0);
    c.input_from = Some(path("nobody.here"));
    assert!(go(&mut run, &c).is_ok());
    assert_eq!(mock.requests()[0].messages[0].content, "Classify: {{text}}");
}

#[test]
fn inline_schema_requires_json_and_repairs_with_the_spec_wording() {
    let (mut run, mock) = run_with(
        vec![
            reply("not json", 5, 1),
            reply("{\"decision\":\"alpha\"}", 7, 3),
        ],
        None,
    );
    let step = go(&mut run, &cfg(OutputSchema::JsonOnly, 1));
    assert_eq!(
        step.ok(),
        Some(Step::value(json!({
            "content": "{\"decision\":\"alpha\"}", "parsed": {"decision": "alpha"},
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}
        })))
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = &reqs[1].messages;
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1], ChatMessage::assistant("not json"));
    assert_eq!(msgs[2].role, "user");
    assert!(
        msgs[2]
            .content
            .starts_with("Your previous output was rejected: model returned invalid JSON: "),
        "{}",
        msgs[2].content
    );
    assert!(
        msgs[2]
            .content
            .ends_with(". Reply with corrected output only.")
    );
    let m = run.shared.metrics.snapshot();
    assert_eq!((m.llm_calls, m.llm_tokens), (2, 16));
}

#[test]
fn out_of_repairs_is_a_schema_error() {
    let (mut run, _) = run_with(vec![reply("nope", 1, 1), reply("still nope", 1, 1)], None);
    let e = err(go(&mut run, &cfg(OutputSchema::JsonOnly, 1)));
    assert!(
        e.starts_with(
            "schema validation failed: llm_infer node `me`: output failed validation after \
             2 attempt(s): model returned invalid JSON: "
        ),
        "{e}"
    );
    let (mut run, _) = run_with(vec![reply("nope", 1, 1)], None);
    let e = err(go(&mut run, &cfg(OutputSchema::JsonOnly, 0)));
    assert!(e.contains("after 1 attempt(s)"), "{e}");
}

#[test]
fn hostile_replies_are_clear_errors() {
    let deep = "[".repeat(10_000);
    let (mut run, _) = run_with(vec![reply(&deep, 0, 0)], None);
    let e = err(go(&mut run, &cfg(OutputSchema::JsonOnly, 0)));
    assert!(e.contains("model returned invalid JSON"), "{e}");
}

#[test]
fn the_budget_is_checked_before_each_call() {
    let (mut run, mock) = run_with(vec![reply("bad", 60, 0), reply("{}", 1, 1)], Some(50));
    let e = err(go(&mut run, &cfg(OutputSchema::JsonOnly, 1)));
    assert_eq!(
        e,
        "tool `llm_infer` failed: budget.max_llm_tokens exceeded: 60 / 50 tokens consumed"
    );
    assert_eq!(mock.requests().len(), 1);
    let m = run.shared.metrics.snapshot();
    assert_eq!((m.llm_calls, m.llm_tokens), (1, 60));
}

#[test]
fn transport_failures_bill_nothing() {
    let (mut run, _) = run_with(vec![], None);
    let e = err(go(&mut run, &cfg(OutputSchema::None, 0)));
    assert_eq!(
        e,
        "intelligence call failed: MockClient: no canned response enqueued"
    );
    let m = run.shared.metrics.snapshot();
    assert_eq!((m.llm_calls, m.llm_tokens), (0, 0));
}

#[test]
fn unknown_backends_error_even_in_dry_run() {
    let (run, _) = run_with(vec![], None);
    let mut run = run.dry();
    let mut c = cfg(OutputSchema::None, 0);
    c.backend = "claude";
    assert_eq!(
        err(go(&mut run, &c)),
        "intelligence call failed: backend `claude` is not configured on this runtime; \
         known backends: `default`"
    );
}

#[test]
fn dry_run_returns_the_placeholder_without_calling() {
    let (run, mock) = run_with(vec![reply("x", 1, 1)], None);
    let mut run = run.dry();
    assert_eq!(
        go(&mut run, &cfg(OutputSchema::JsonOnly, 0)).ok(),
        Some(Step::value(
            json!({"content": "<dry-run>", "parsed": null, "dry_run": true})
        ))
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn no_backends_at_all_is_unavailable_or_a_stub() {
    let mut run = TestRun::new(json!({}));
    let e = err(go(&mut run, &cfg(OutputSchema::None, 0)));
    assert!(
        e.starts_with("capability unavailable: no handler registered for node kind `llm_infer`"),
        "{e}"
    );
    run.shared.stub_unavailable = true;
    assert_eq!(
        go(&mut run, &cfg(OutputSchema::None, 0)).ok(),
        Some(Step::value(json!({"stub": "llm_infer"})))
    );
}

#[cfg(feature = "schema")]
mod schema {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","required":["decision"],"properties":{"decision":{"enum":["alpha","beta"]}}}"#;

    fn file() -> OutputSchema {
        OutputSchema::File {
            path: "schemas/route.json",
            schema: SCHEMA,
        }
    }

    #[test]
    fn a_schema_file_validates_and_repairs() {
        let (mut run, mock) = run_with(
            vec![
                reply("{\"decision\":\"gamma\"}", 1, 1),
                reply("{\"decision\":\"beta\"}", 1, 1),
            ],
            None,
        );
        let step = go(&mut run, &cfg(file(), 2));
        assert_eq!(
            step.ok().and_then(|s| match s {
                Step::Continue { value, .. } => Some(value["parsed"].clone()),
                _ => None,
            }),
            Some(json!({"decision": "beta"}))
        );
        let reqs = mock.requests();
        let repair = &reqs[1].messages[2].content;
        assert!(
            repair.starts_with(
                "Your previous output was rejected: output does not match the JSON Schema `schemas/route.json`: at `/decision`: "
            ),
            "{repair}"
        );
    }

    #[test]
    fn schema_violations_after_the_last_attempt_are_schema_errors() {
        let (mut run, _) = run_with(vec![reply("{}", 1, 1)], None);
        let e = err(go(&mut run, &cfg(file(), 0)));
        assert!(
            e.starts_with(
                "schema validation failed: llm_infer node `me`: output failed validation after 1 attempt(s): output does not match the JSON Schema"
            ),
            "{e}"
        );
        assert!(e.contains("decision"), "{e}");
    }
}

/// Each schema repair of `llm_infer` is the audit event
/// `llm_infer.repair{node, attempt, reason}` (docs/operations.md "Logging and audit").
#[test]
fn an_llm_schema_repair_is_an_audit_event() {
    use std::collections::VecDeque;

    use agentd_core::obs::testing::{Scratch, json_lines, logger, with_logger};
    use serde_json::Value;

    use crate::context::testing::{TestRun, path};
    use crate::intel::mock::MockBackend;
    use crate::intel::{Backends, ChatReply, Intel, TokenBudget};
    use crate::nodes::llm::{LlmInfer, OutputSchema, llm_infer};
    use crate::obs::LogFormat;
    use crate::template::{Seg, Template};

    static PROMPT: [Seg; 1] = [Seg::Lit("Decide.")];
    let reply = |content: &str| ChatReply {
        content: content.into(),
        prompt_tokens: 1,
        completion_tokens: 1,
    };
    let mock = Arc::new(MockBackend::from_replies(
        VecDeque::from(vec![reply("not json"), reply("{\"ok\": true}")]),
        None,
    ));
    let mut backends = Backends::new();
    backends.insert("default", mock);
    let mut run = TestRun::new(json!({}));
    run.set_llm_state(std::sync::Arc::new(Intel::new(
        backends,
        TokenBudget::new(None),
    )));
    let node = LlmInfer {
        backend: "default",
        prompt: Template(&PROMPT),
        input_from: Some(path("trigger")),
        output_schema: OutputSchema::JsonOnly,
        output_repairs: 1,
    };
    let dir = Scratch::new();
    with_logger(logger(&dir, "off", LogFormat::Text, &[]), || {
        assert!(llm_infer(&mut run.cx(), &node).is_ok());
    });
    let audit = json_lines(&dir.path("audit/audit.jsonl"));
    let repairs: Vec<&Value> = audit
        .iter()
        .filter(|l| l["fields"]["event"] == "llm_infer.repair")
        .collect();
    assert_eq!(repairs.len(), 1, "{audit:#?}");
    assert_eq!(repairs[0]["fields"]["node"], "me");
    assert_eq!(repairs[0]["fields"]["attempt"], 1);
}
