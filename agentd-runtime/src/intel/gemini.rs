//! Google Gemini's `generateContent` (feature `llm-remote`; provider
//! `gemini`, docs/llm.md "Wire formats").
//!
//! `POST {base_url}/v1beta/models/{model}:generateContent` (default base
//! `https://generativelanguage.googleapis.com`) with header
//! `x-goog-api-key: <key>` and `{"contents": [{"role": "user"|"model",
//! "parts": [{"text"}]}], "systemInstruction"?: {"parts": [{"text"}]},
//! "generationConfig"?: {"maxOutputTokens", "temperature"}}`. The dialect's
//! `assistant` role is Gemini's `model`; `system` messages become the system
//! instruction. The first candidate's text parts, concatenated, are the
//! answer; `usageMetadata.promptTokenCount` / `candidatesTokenCount` are
//! billed. A prompt blocked by the provider is an error naming the reason.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::remote::{self, KeyResolver};
use super::{Backend, ChatReply, ChatRequest};
use crate::error::Error;

/// A `generateContent` client for one backend definition.
#[derive(Debug)]
pub struct GeminiBackend {
    url: String,
    api_key_env: String,
    max_tokens: Option<u32>,
    resolve_key: KeyResolver,
    agent: ureq::Agent,
}

impl GeminiBackend {
    /// A client for `base_url` (a trailing `/` or `/v1beta` is accepted),
    /// `model` (with or without a `models/` prefix), the key named
    /// `api_key_env`, and the definition's `max_tokens`.
    #[must_use]
    pub fn new(
        base_url: &str,
        model: &str,
        api_key_env: &str,
        max_tokens: Option<u32>,
        timeout: Duration,
        roots: &remote::Roots,
    ) -> Self {
        let model = model.strip_prefix("models/").unwrap_or(model);
        Self {
            url: format!(
                "{}/v1beta/models/{model}:generateContent",
                remote::trim_base(base_url, "/v1beta")
            ),
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

    /// The endpoint URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request body for `req`.
    #[must_use]
    pub fn body(&self, req: &ChatRequest) -> Value {
        let system: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role == "system")
            .map(|m| json!({ "text": m.content }))
            .collect();
        let contents: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role != "system")
            .map(|m| {
                let role = if m.role == "assistant" {
                    "model"
                } else {
                    "user"
                };
                json!({ "role": role, "parts": [{ "text": m.content }] })
            })
            .collect();
        let mut body = Map::new();
        body.insert("contents".to_owned(), Value::Array(contents));
        if !system.is_empty() {
            body.insert("systemInstruction".to_owned(), json!({ "parts": system }));
        }
        let mut config = Map::new();
        if let Some(n) = req.max_tokens.or(self.max_tokens) {
            config.insert("maxOutputTokens".to_owned(), Value::from(n));
        }
        if let Some(t) = req.temperature {
            config.insert("temperature".to_owned(), json!(t));
        }
        if !config.is_empty() {
            body.insert("generationConfig".to_owned(), Value::Object(config));
        }
        Value::Object(body)
    }
}

/// Parse a `generateContent` reply body.
///
/// # Errors
///
/// [`Error::Intelligence`] when the body is not JSON, is an `error`, was
/// blocked, or its first candidate has no text part.
pub fn decode_generation(body: &[u8]) -> Result<ChatReply, Error> {
    let value = remote::parse_body("gemini", body)?;
    if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
        let status = err.get("status").and_then(Value::as_str).unwrap_or("ERROR");
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(Error::Intelligence(format!(
            "backend error: {status}: {msg}"
        )));
    }
    let Some(candidate) = value.pointer("/candidates/0") else {
        let reason = value
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("none given");
        return Err(Error::Intelligence(format!(
            "gemini returned no candidates (block reason: {reason})"
        )));
    };
    let texts: Vec<&str> = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if texts.is_empty() {
        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        return Err(Error::Intelligence(format!(
            "gemini candidate has no text (finish reason: {finish})"
        )));
    }
    Ok(remote::chat_reply(
        &value,
        &texts,
        "/usageMetadata",
        ["promptTokenCount", "candidatesTokenCount"],
    ))
}

impl Backend for GeminiBackend {
    fn max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
        let key = remote::api_key(&self.resolve_key, Some(&self.api_key_env))?.unwrap_or_default();
        let body = remote::post_json_ok(
            &self.agent,
            &self.url,
            &[("x-goog-api-key", &key)],
            &self.body(req),
        )?;
        decode_generation(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::ChatMessage;
    use crate::intel::remote::test_server::{header, json_body, serve};

    fn key(name: &str) -> Result<String, String> {
        if name == "GEMINI_TEST_KEY" {
            Ok("g-test".to_owned())
        } else {
            Err(format!("secret `{name}` is not set"))
        }
    }

    fn req() -> ChatRequest {
        ChatRequest {
            model: "fast".into(),
            messages: vec![
                ChatMessage {
                    role: "system",
                    content: "protocol".into(),
                },
                ChatMessage::user("task"),
                ChatMessage::assistant("call"),
                ChatMessage::user("result"),
            ],
            max_tokens: Some(1024),
            temperature: None,
        }
    }

    #[test]
    fn speaks_generate_content_to_a_real_local_server() {
        let (base, server) = serve(
            200,
            r#"{"candidates":[{"content":{"parts":[{"text":"{\"tier\":"},{"text":"\"simple\"}"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":6,"totalTokenCount":17}}"#,
        );
        let b = GeminiBackend::new(
            &format!("{base}/v1beta/"),
            "models/gemini-test",
            "GEMINI_TEST_KEY",
            None,
            Duration::from_secs(5),
            &crate::tls_roots::Roots::WebPki,
        )
        .with_key_resolver(KeyResolver::new(key));
        let reply = b.complete(&req());
        let seen = server.join().unwrap_or_default();
        assert_eq!(
            reply.ok(),
            Some(ChatReply {
                content: r#"{"tier":"simple"}"#.into(),
                prompt_tokens: 11,
                completion_tokens: 6
            })
        );
        assert!(
            seen.starts_with("POST /v1beta/models/gemini-test:generateContent HTTP/1.1\r\n"),
            "{seen}"
        );
        assert_eq!(header(&seen, "x-goog-api-key"), Some("g-test"));
        assert_eq!(
            json_body(&seen),
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "task"}]},
                    {"role": "model", "parts": [{"text": "call"}]},
                    {"role": "user", "parts": [{"text": "result"}]},
                ],
                "systemInstruction": {"parts": [{"text": "protocol"}]},
                "generationConfig": {"maxOutputTokens": 1024},
            })
        );
    }

    #[test]
    fn provider_errors_and_blocks_are_clear() {
        let (base, server) = serve(
            403,
            r#"{"error":{"code":403,"message":"API key not valid","status":"PERMISSION_DENIED"}}"#,
        );
        let b = GeminiBackend::new(
            &base,
            "g",
            "GEMINI_TEST_KEY",
            None,
            Duration::from_secs(5),
            &crate::tls_roots::Roots::WebPki,
        )
        .with_key_resolver(KeyResolver::new(key));
        let err = b
            .complete(&req())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let _ = server.join();
        assert!(err.contains("status 403: API key not valid"), "{err}");
        assert_eq!(
            decode_generation(br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("intelligence call failed: gemini returned no candidates (block reason: SAFETY)")
        );
        assert!(
            decode_generation(br#"{"candidates":[{"finishReason":"MAX_TOKENS"}]}"#)
                .err()
                .is_some_and(|e| e.to_string().contains("finish reason: MAX_TOKENS"))
        );
    }

    #[test]
    fn hostile_bodies_are_errors() {
        assert!(decode_generation(b"\xff").is_err());
        assert!(decode_generation("{\"a\":".repeat(10_000).as_bytes()).is_err());
        assert!(decode_generation(br#"{"candidates":[{"content":{"parts":"x"}}]}"#).is_err());
    }
}
