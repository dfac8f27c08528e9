//! OpenAI-compatible chat completions (feature `llm-remote`): providers
//! `openai` and `openai-compatible` (OpenAI, vLLM, Ollama, llama.cpp, ...).
//!
//! `POST {base_url}/v1/chat/completions` with `{"model": <def model>,
//! "messages": [...], "max_tokens": n}` and `Authorization: Bearer <key>`
//! when the definition names an `api_key_env` (read at every call, so a
//! rotated key is picked up; a missing key is an error only when one was
//! configured). The reply's `choices[0].message.content` and
//! `usage.{prompt,completion}_tokens` become the [`ChatReply`]. The agent of
//! [`super::remote::agent`]: rustls (ring) trusting Mozilla's roots or the
//! `AGENTD_HTTP_CA_FILE` bundle; redirects are never followed;
//! bodies are capped at [`MAX_BODY`]; connect timeout 10 s, overall timeout
//! the run timeout.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Backend, ChatReply, ChatRequest};
use crate::error::Error;

pub use super::remote::MAX_BODY;

/// A chat-completions client for one backend definition.
#[derive(Debug)]
pub struct OpenAiBackend {
    url: String,
    model: String,
    api_key_env: Option<String>,
    max_tokens: Option<u32>,
    resolve_key: KeyResolver,
    agent: ureq::Agent,
}

pub use super::KeyResolver;
pub use super::remote::env_key;

impl OpenAiBackend {
    /// A client for `base_url` (with or without a trailing `/`; a trailing
    /// `/v1` is accepted too) and `model`.
    #[must_use]
    pub fn new(
        base_url: &str,
        model: &str,
        api_key_env: Option<&str>,
        timeout: Duration,
        roots: &super::remote::Roots,
    ) -> Self {
        let base = super::remote::trim_base(base_url, "/v1");
        Self {
            url: format!("{base}/v1/chat/completions"),
            model: model.to_owned(),
            api_key_env: api_key_env.map(str::to_owned),
            max_tokens: None,
            resolve_key: KeyResolver::new(env_key),
            agent: super::remote::agent(timeout, roots),
        }
    }

    /// The definition's own completion cap, sent when a request has none
    /// (`agent_loop`; `llm_infer` always sends 1024).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: Option<u32>) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Resolve `api_key_env` with `resolve` instead of the environment (the
    /// workflow's `[[secrets]]`, then the environment).
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
}

/// Parse a chat-completions reply body.
///
/// # Errors
///
/// [`Error::Intelligence`] when the body is not JSON, carries an `error`,
/// or has no string `choices[0].message.content`.
pub fn decode_completion(body: &[u8]) -> Result<ChatReply, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Error::Intelligence(format!("chat completion reply is not valid JSON: {e}"))
    })?;
    if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| err.to_string(), str::to_owned);
        return Err(Error::Intelligence(format!("backend error: {msg}")));
    }
    let content = value
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::Intelligence(
                "chat completion reply has no string `choices[0].message.content`".to_owned(),
            )
        })?;
    Ok(super::remote::chat_reply(
        &value,
        &[content],
        "/usage",
        ["prompt_tokens", "completion_tokens"],
    ))
}

impl Backend for OpenAiBackend {
    fn max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
        let key = super::remote::api_key(&self.resolve_key, self.api_key_env.as_deref())?;
        let mut body = json!({ "model": self.model, "messages": req.messages });
        if let Some(n) = req.max_tokens.or(self.max_tokens) {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        let bearer = key.map(|key| format!("Bearer {key}"));
        let headers: &[(&str, &str)] = match &bearer {
            Some(value) => &[("Authorization", value)],
            None => &[],
        };
        let (status, body) = super::remote::post_json(&self.agent, &self.url, headers, &body)?;
        if !(200..300).contains(&status) {
            let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(Error::Intelligence(format!(
                "POST {} answered status {status}: {snippet}",
                self.url
            )));
        }
        decode_completion(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::ChatMessage;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP server on 127.0.0.1:0 answering `reply_body` with
    /// `status`; returns the base URL and a handle yielding the raw request.
    fn serve(status: u16, reply_body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut r = BufReader::new(stream);
            let mut head = String::new();
            let mut len = 0_usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0_u8; len];
            let _ = r.read_exact(&mut body);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply_body}",
                reply_body.len()
            );
            let _ = r.get_mut().write_all(reply.as_bytes());
            head + &String::from_utf8_lossy(&body)
        });
        (format!("http://{addr}"), handle)
    }

    fn req() -> ChatRequest {
        ChatRequest {
            model: "fast".into(),
            messages: vec![ChatMessage::user("classify: hi")],
            max_tokens: Some(1024),
            temperature: None,
        }
    }

    #[test]
    fn talks_chat_completions_to_a_real_local_server() {
        let (base, server) = serve(
            200,
            r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\"label\":\"ok\"}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
        );
        let b = OpenAiBackend::new(
            &format!("{base}/"),
            "gpt-test",
            Some("AGENTD_TEST_OPENAI_KEY_1"),
            Duration::from_secs(5),
            &crate::tls_roots::Roots::WebPki,
        )
        .with_key_resolver(KeyResolver::new(|name: &str| {
            (name == "AGENTD_TEST_OPENAI_KEY_1")
                .then(|| "sk-test".to_owned())
                .ok_or_else(|| format!("secret `{name}` is not set"))
        }));
        let reply = b.complete(&req());
        let seen = server.join().unwrap_or_default();
        assert_eq!(
            reply.ok(),
            Some(ChatReply {
                content: r#"{"label":"ok"}"#.into(),
                prompt_tokens: 12,
                completion_tokens: 5
            })
        );
        assert!(
            seen.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("authorization: Bearer sk-test\r\n")
                || seen.contains("Authorization: Bearer sk-test\r\n"),
            "{seen}"
        );
        let body = seen.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(
            v,
            json!({"model": "gpt-test", "max_tokens": 1024,
                   "messages": [{"role": "user", "content": "classify: hi"}]})
        );
    }

    #[test]
    fn non_2xx_and_error_bodies_are_intelligence_errors() {
        let (base, server) = serve(401, r#"{"error":{"message":"bad key"}}"#);
        let b = OpenAiBackend::new(
            &base,
            "m",
            None,
            Duration::from_secs(5),
            &crate::tls_roots::Roots::WebPki,
        );
        let err = b
            .complete(&req())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let _ = server.join();
        assert!(err.starts_with("intelligence call failed: POST "), "{err}");
        assert!(err.contains("status 401"), "{err}");
    }

    #[test]
    fn a_missing_key_is_a_clear_error() {
        let b = OpenAiBackend::new(
            "http://127.0.0.1:9",
            "m",
            Some("AGENTD_TEST_SURELY_UNSET_KEY"),
            Duration::from_secs(1),
            &crate::tls_roots::Roots::WebPki,
        );
        assert_eq!(
            b.complete(&req()).err().map(|e| e.to_string()).as_deref(),
            Some(
                "intelligence call failed: API key `AGENTD_TEST_SURELY_UNSET_KEY`: secret \
                 `AGENTD_TEST_SURELY_UNSET_KEY` is not declared in [[secrets]] and environment \
                 variable `AGENTD_TEST_SURELY_UNSET_KEY` is not set"
            )
        );
    }

    #[test]
    fn decode_rejects_hostile_bodies() {
        assert!(decode_completion(b"\xff\xfe").is_err());
        assert!(decode_completion(br#"{"choices":[]}"#).is_err());
        let deep = "[".repeat(10_000);
        assert!(decode_completion(deep.as_bytes()).is_err());
        let ok = decode_completion(br#"{"choices":[{"message":{"content":"x"}}]}"#);
        assert_eq!(
            ok.ok().map(|r| (r.total_tokens(), r.content)),
            Some((0, "x".into()))
        );
    }
}
