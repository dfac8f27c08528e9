//! `llm_infer` (docs/dialect.md §7 `llm_infer`; feature `llm`).
//!
//! Owns the node's algorithm: backend lookup (even in dry-run), the dry-run
//! placeholder, the LLM renderer, up to `1 + output_repairs` calls with the
//! token budget checked before each, billing after each, output validation
//! (JSON, plus JSON Schema with feature `schema` when the compiler baked a
//! readable schema file) and the repair conversation. Transports live in
//! [`crate::intel`]; this module never opens a connection itself.

use serde_json::{Value, json};

use crate::context::{AtomicMetrics, Cx, Step};
use crate::error::Error;
use crate::graph::CtxPath;
use crate::intel::IntelExt as _;
use crate::intel::{ChatMessage, ChatReply, ChatRequest};
use crate::template::Template;

/// The logical model every `llm_infer` request names.
pub const MODEL: &str = "fast";

/// The completion cap an `llm_infer` request carries unless its backend definition
/// sets `max_tokens`.
pub const MAX_TOKENS: u32 = 1024;

/// What `output_schema` asks for, as the compiler resolved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputSchema {
    /// No `output_schema`: the reply is returned as text, `parsed: null`.
    None,
    /// `"inline"`, or a file that could not be read at build time: the
    /// reply must be valid JSON.
    JsonOnly,
    /// A readable schema file, baked at build time: the reply must be JSON
    /// that validates against it (JSON only without feature `schema`).
    File {
        /// The `output_schema` string as written (for messages).
        path: &'static str,
        /// The file's JSON text.
        schema: &'static str,
    },
}

/// A baked `llm_infer` node.
#[derive(Debug)]
pub struct LlmInfer {
    /// The backend name (`default` = the command-line transport).
    pub backend: &'static str,
    /// The prompt template (LLM renderer, docs/dialect.md §9.2).
    pub prompt: Template,
    /// The data the prompt renders against; a miss is `null`.
    pub input_from: Option<CtxPath>,
    /// Output validation.
    pub output_schema: OutputSchema,
    /// Extra attempts after a rejected reply.
    pub output_repairs: u32,
}

const KIND: &str = "llm_infer";

/// Run an `llm_infer` node.
///
/// # Errors
///
/// [`Error::CapabilityUnavailable`] when no backend is configured at all
/// (outside a harness), [`Error::Intelligence`] for an unknown backend or a
/// failed call, [`Error::Tool`] when the token budget is spent, and
/// [`Error::Schema`] when the last attempt's output is still rejected.
pub fn llm_infer(cx: &mut Cx<'_>, cfg: &LlmInfer) -> Result<Step, Error> {
    let intel = cx.intel().clone();
    if intel.backends.is_empty() {
        // Dialect 1 registers the handler only when a backend exists.
        if cx.stub_unavailable() {
            return Ok(Step::value(json!({ "stub": KIND })));
        }
        return Err(Error::CapabilityUnavailable(format!(
            "no handler registered for node kind `{KIND}` (node `{}`): no intelligence backend \
             is configured; pass --intel-unix PATH or --intel-http URL",
            cx.node_id()
        )));
    }
    let backend = intel.backends.get(cfg.backend)?;
    if cx.dry_run() {
        return Ok(Step::value(
            json!({ "content": "<dry-run>", "parsed": null, "dry_run": true }),
        ));
    }
    let data = cfg
        .input_from
        .as_ref()
        .and_then(|p| cx.resolve(p))
        .unwrap_or(&Value::Null);
    let prompt = cfg.prompt.render_llm(data);
    let mut req = ChatRequest {
        model: MODEL.to_owned(),
        messages: vec![ChatMessage::user(prompt)],
        // A backend definition's own `max_tokens` is what its author asked for.
        max_tokens: Some(backend.max_tokens().unwrap_or(MAX_TOKENS)),
        temperature: None,
    };
    let attempts = cfg.output_repairs.saturating_add(1);
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        intel.budget.check(KIND)?;
        let reply = backend.complete(&req)?;
        let tokens = reply.total_tokens();
        AtomicMetrics::bump(&cx.run_metrics().llm_calls);
        cx.run_metrics()
            .llm_tokens
            .fetch_add(tokens, std::sync::atomic::Ordering::Relaxed);
        intel.budget.add(tokens);
        match check_output(&cfg.output_schema, &reply.content) {
            Ok(parsed) => return Ok(Step::value(output(reply, parsed))),
            Err(reason) if attempt < attempts => {
                crate::obs::audit(
                    "llm_infer.repair",
                    json!({"node": cx.node_id(), "attempt": attempt, "reason": reason}),
                );
                req.messages.push(ChatMessage::assistant(reply.content));
                req.messages.push(ChatMessage::user(format!(
                    "Your previous output was rejected: {reason}. Reply with corrected output only."
                )));
            }
            Err(reason) => {
                return Err(Error::Schema(format!(
                    "llm_infer node `{}`: output failed validation after {attempt} attempt(s): {reason}",
                    cx.node_id()
                )));
            }
        }
    }
}

/// `{"content", "parsed", "usage": {"completion_tokens", "prompt_tokens"}}`
/// (keys sorted); `usage` is the accepted call's.
fn output(reply: ChatReply, parsed: Value) -> Value {
    json!({
        "content": reply.content,
        "parsed": parsed,
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
        },
    })
}

/// Validate `content`; `Ok(parsed)` (`null` when there is no schema) or the
/// rejection reason used in the repair prompt and the final error.
fn check_output(schema: &OutputSchema, content: &str) -> Result<Value, String> {
    if *schema == OutputSchema::None {
        return Ok(Value::Null);
    }
    // serde_json's recursion limit turns hostile nesting into an error.
    let value: Value =
        serde_json::from_str(content).map_err(|e| format!("model returned invalid JSON: {e}"))?;
    if let OutputSchema::File { path, schema } = schema {
        validate_schema(path, schema, &value)?;
    }
    Ok(value)
}

#[cfg(feature = "schema")]
fn validate_schema(path: &str, schema: &str, value: &Value) -> Result<(), String> {
    let schema: Value = serde_json::from_str(schema)
        .map_err(|e| format!("output_schema `{path}` is not valid JSON: {e}"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("output_schema `{path}` is not a valid JSON Schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| {
            let at = e.instance_path.to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at `{at}`: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "output does not match the JSON Schema `{path}`: {}",
            errors.join("; ")
        ))
    }
}

#[cfg(not(feature = "schema"))]
fn validate_schema(_path: &str, _schema: &str, _value: &Value) -> Result<(), String> {
    // Without the `schema` feature a schema file means "valid JSON only".
    Ok(())
}

#[cfg(test)]
mod tests;
