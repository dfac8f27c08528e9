//! Anthropic's Messages API (feature `llm-remote`; provider `anthropic`,
//! docs/llm.md "Wire formats").
//!
//! `POST {base_url}/v1/messages` (default base `https://api.anthropic.com`)
//! with headers `x-api-key: <key>` and `anthropic-version: 2023-06-01`, and
//! `{"model", "max_tokens", "messages": [{"role", "content"}], "system"?,
//! "temperature"?}`. `system` messages of the dialect's conversation go to
//! the top-level `system` field (joined by a blank line); `max_tokens`,
//! which this API requires, is the request's, else the definition's, else
//! [`DEFAULT_MAX_TOKENS`]. The reply's `text` content blocks, concatenated,
//! are the answer; `usage.input_tokens` / `output_tokens` are billed.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::remote::{self, KeyResolver};
use super::{Backend, ChatReply, ChatRequest};
use crate::error::Error;

/// The API version header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// The completion cap when neither the request nor the definition sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A Messages API client for one backend definition.
#[derive(Debug)]
pub struct AnthropicBackend {
    url: String,
    model: String,
    api_key_env: String,
    max_tokens: Option<u32>,
    resolve_key: KeyResolver,
    agent: ureq::Agent,
}

impl AnthropicBackend {
    /// A client for `base_url` (a trailing `/` or `/v1` is accepted),
    /// `model`, the key named `api_key_env`, and the definition's
    /// `max_tokens`.
    #[must_use]
    pub fn new(
        base_url: &str,
        model: &str,
        api_key_env: &str,
        max_tokens: Option<u32>,
        timeout: Duration,
        roots: &remote::Roots,
    ) -> Self {
        Self {
            url: format!("{}/v1/messages", remote::trim_base(base_url, "/v1")),
            model: model.to_owned(),
            api_key_env: api_key_env.to_owned(),
            max_tokens,
            resolve_key: KeyResolver::new(remote::env_key),
            agent: remote::agent(timeout, roots),
        }
    }

    /// Resolve the key with `resolve` (the workflow's secrets).
    #[must_use]
    pub fn with_key_resolver(mut self, resolve: KeyResolver) -> Self {
        self.resolve_key = resolve;
        self
    }

    /// The request body for `req`.
    #[must_use]
    pub fn body(&self, req: &ChatRequest) -> Value {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|m| m.role == "system")
            .map(|m| m.content.as_str())
            .collect();
        let messages: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role != "system")
            .map(|m| json!({ "role": m.role, "content": m.content }))
            .collect();
        let mut body = Map::new();
        body.insert("model".to_owned(), Value::from(self.model.as_str()));
        body.insert(
            "max_tokens".to_owned(),
            Value::from(
                req.max_tokens
                    .or(self.max_tokens)
                    .unwrap_or(DEFAULT_MAX_TOKENS),
            ),
        );
        body.insert("messages".to_owned(), Value::Array(messages));
        if !system.is_empty() {
            body.insert("system".to_owned(), Value::from(system.join("\n\n")));
        }
        if let Some(t) = req.temperature {
            body.insert("temperature".to_owned(), json!(t));
        }
        Value::Object(body)
    }
}

/// Parse a Messages API reply body.
///
/// # Errors
///
/// [`Error::Intelligence`] when the body is not JSON, is an `error`, or
/// carries no text content block.
pub fn decode_message(body: &[u8]) -> Result<ChatReply, Error> {
    let value = remote::parse_body("anthropic", body)?;
    if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
        let kind = err.get("type").and_then(Value::as_str).unwrap_or("error");
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(Error::Intelligence(format!("backend error: {kind}: {msg}")));
    }
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Intelligence("anthropic reply has no `content` array".to_owned()))?;
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    if texts.is_empty() {
        let stop = value
            .get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        return Err(Error::Intelligence(format!(
            "anthropic reply has no text content (stop_reason: {stop})"
        )));
    }
    Ok(remote::chat_reply(
        &value,
        &texts,
        "/usage",
        ["input_tokens", "output_tokens"],
    ))
}

impl Backend for AnthropicBackend {
    fn max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
        let key = remote::api_key(&self.resolve_key, Some(&self.api_key_env))?.unwrap_or_default();
        let body = remote::post_json_ok(
            &self.agent,
            &self.url,
            &[("x-api-key", &key), ("anthropic-version", API_VERSION)],
            &self.body(req),
        )?;
        decode_message(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::ChatMessage;
    use crate::intel::remote::test_server::{header, json_body, serve};

    fn key(name: &str) -> Result<String, String> {
        if name == "ANTHROPIC_TEST_KEY" {
            Ok("sk-ant-test".to_owned())
        } else {
            Err(format!("secret `{name}` is not set"))
        }
    }

    fn req(max_tokens: Option<u32>) -> ChatRequest {
        ChatRequest {
            model: "fast".into(),
            messages: vec![
                ChatMessage {
                    role: "system",
                    content: "be terse".into(),
                },
                ChatMessage::user("hi"),
                ChatMessage::assistant("{bad"),
                ChatMessage::user("again"),
            ],
            max_tokens,
            temperature: None,
        }
    }

    #[test]
    fn speaks_the_messages_api_to_a_real_local_server() {
        let (base, server) = serve(
            200,
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[{"type":"text","text":"{\"ok\":"},{"type":"tool_use","id":"t","name":"x","input":{}},{"type":"text","text":"true}"}],"stop_reason":"end_turn","usage":{"input_tokens":21,"output_tokens":4}}"#,
        );
        let b = AnthropicBackend::new(
            &format!("{base}/v1/"),
            "claude-test",
            "ANTHROPIC_TEST_KEY",
            Some(512),
            Duration::from_secs(5),
            &crate::tls_roots::Roots::WebPki,
        )
        .with_key_resolver(KeyResolver::new(key));
        let reply = b.complete(&req(None));
        let seen = server.join().unwrap_or_default();
        assert_eq!(
            reply.ok(),
            Some(ChatReply {
                content: r#"{"ok":true}"#.into(),
                prompt_tokens: 21,
                completion_tokens: 4
            })
        );
        assert!(seen.starts_with("POST /v1/messages HTTP/1.1\r\n"), "{seen}");
        assert_eq!(header(&seen, "x-api-key"), Some("sk-ant-test"));
        assert_eq!(header(&seen, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(header(&seen, "authorization"), None);
        assert_eq!(
            json_body(&seen),
            json!({
                "model": "claude-test",
                "max_tokens": 512,
                "system": "be terse",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "{bad"},
                    {"role": "user", "content": "again"},
                ],
            })
        );
    }

    #[test]
    fn the_request_cap_wins_and_a_default_applies() {
        let b = AnthropicBackend::new(
            "https://x",
            "m",
            "K",
            Some(512),
            Duration::from_secs(1),
            &crate::tls_roots::Roots::WebPki,
        );
        assert_eq!(b.body(&req(Some(1024)))["max_tokens"], json!(1024));
        let b = AnthropicBackend::new(
            "https://x",
            "m",
            "K",
            None,
            Duration::from_secs(1),
            &crate::tls_roots::Roots::WebPki,
        );
        assert_eq!(b.body(&req(None))["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    }

    #[test]
    fn provider_errors_carry_the_providers_message() {
        let (base, server) = serve(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        let b = AnthropicBackend::new(
            &base,
            "m",
            "ANTHROPIC_TEST_KEY",
            None,
            Duration::from_secs(5),
            &crate::tls_roots::Roots::WebPki,
        )
        .with_key_resolver(KeyResolver::new(key));
        let err = b
            .complete(&req(None))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let _ = server.join();
        assert!(err.contains("status 401: invalid x-api-key"), "{err}");
    }

    #[test]
    fn a_missing_key_is_a_clear_error_without_a_request() {
        let b = AnthropicBackend::new(
            "http://127.0.0.1:9",
            "m",
            "NOPE",
            None,
            Duration::from_secs(1),
            &crate::tls_roots::Roots::WebPki,
        )
        .with_key_resolver(KeyResolver::new(key));
        assert_eq!(
            b.complete(&req(None))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("intelligence call failed: API key `NOPE`: secret `NOPE` is not set")
        );
    }

    #[test]
    fn hostile_bodies_are_errors() {
        assert!(decode_message(b"\xff\xfe").is_err());
        assert!(decode_message("[".repeat(10_000).as_bytes()).is_err());
        assert!(decode_message(br#"{"content":[]}"#).is_err());
        assert!(decode_message(br#"{"content":"x"}"#).is_err());
        let e = decode_message(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        );
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("intelligence call failed: backend error: overloaded_error: busy")
        );
    }
}
