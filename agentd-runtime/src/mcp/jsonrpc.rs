//! The JSON-RPC 2.0 and MCP life-cycle pieces both transports share: the
//! `initialize` request and the version negotiation of its reply, the
//! decoding of a response, what to answer a request the server sends us, and
//! the snippet of untrusted output quoted in errors.
//!
//! This module does no I/O; the transports ([`super::stdio`],
//! [`super::http`]) own the wire.

use serde_json::{Map, Value, json};

use super::{Listing, MAX_LIST_PAGES, PROTOCOL_VERSION, SUPPORTED_VERSIONS};
use crate::error::Error;

/// Why an exchange failed: `Reply` leaves the connection usable (the server
/// answered with a JSON-RPC error); `Fatal` means it is not (the stdio child
/// is replaced, the HTTP session is started again).
#[derive(Debug)]
pub(crate) enum Failure {
    Reply(String),
    Fatal(String),
}

impl Failure {
    pub(crate) fn into_message(self) -> String {
        match self {
            Self::Reply(m) | Self::Fatal(m) => m,
        }
    }
}

/// The params of `tools/call`. MCP's `arguments` is an optional object: a
/// missing `args_from` (null) is sent as no arguments rather than `null`.
pub(crate) fn tools_call_params(tool: &str, arguments: &Value) -> Value {
    let mut params = Map::new();
    params.insert("name".to_owned(), Value::from(tool));
    if !arguments.is_null() {
        params.insert("arguments".to_owned(), arguments.clone());
    }
    Value::Object(params)
}

/// The `initialize` params: our newest revision, no client capabilities (no
/// sampling, roots or elicitation are offered).
pub(crate) fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "clientInfo": { "name": "agentd", "version": env!("CARGO_PKG_VERSION") },
        "capabilities": {},
    })
}

/// The revision the server picked in its `initialize` result, if we speak it.
///
/// # Errors
///
/// A message naming the server, the revision it chose and the ones we speak
/// (the MCP life cycle says a client that does not support the server's
/// choice must disconnect), or a result that is not an object.
pub(crate) fn negotiated_version(name: &str, result: &Value) -> Result<&'static str, String> {
    let Value::Object(fields) = result else {
        return Err(format!(
            "mcp server `{name}` answered `initialize` with a non-object result: {}",
            snippet(result.to_string().as_bytes())
        ));
    };
    let chosen = fields.get("protocolVersion").and_then(Value::as_str);
    match chosen.and_then(|v| SUPPORTED_VERSIONS.iter().find(|s| **s == v)) {
        Some(v) => Ok(v),
        None => Err(format!(
            "mcp server `{name}` chose protocol version {} which agentd does not speak \
             (agentd speaks {})",
            chosen.map_or_else(|| "(none)".to_owned(), |v| format!("`{v}`")),
            SUPPORTED_VERSIONS.join(", ")
        )),
    }
}

/// Whether a message's `id` is the request id `ours`.
pub(crate) fn same_id(theirs: &Value, ours: u64) -> bool {
    theirs.as_u64() == Some(ours) || theirs.as_str() == Some(ours.to_string().as_str())
}

/// What a message from the server is, relative to our request `ours`.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The response to our request.
    Response(Map<String, Value>),
    /// A request from the server, to be answered with this reply.
    ServerRequest(Value),
    /// A notification, or a response to some other request: skipped.
    Other,
}

/// Sort one decoded message.
///
/// # Errors
///
/// A message that is not a JSON object.
pub(crate) fn classify(name: &str, message: Value, ours: u64) -> Result<Incoming, String> {
    let Value::Object(message) = message else {
        return Err(format!(
            "mcp server `{name}` sent something that is not a JSON-RPC message: {}",
            snippet(message.to_string().as_bytes())
        ));
    };
    let Some(their_id) = message.get("id").filter(|i| !i.is_null()) else {
        // Notifications (progress, logging, list changes) carry no id.
        return Ok(Incoming::Other);
    };
    if let Some(Value::String(method)) = message.get("method") {
        return Ok(Incoming::ServerRequest(answer_server_request(
            their_id, method,
        )));
    }
    if same_id(their_id, ours) {
        Ok(Incoming::Response(message))
    } else {
        Ok(Incoming::Other)
    }
}

/// The reply to a request the server sent us: `ping` succeeds; nothing else
/// is offered (no sampling, roots or elicitation), so everything else is
/// JSON-RPC error -32601.
pub(crate) fn answer_server_request(id: &Value, method: &str) -> Value {
    if method == "ping" {
        json!({ "jsonrpc": "2.0", "id": id, "result": {} })
    } else {
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": -32601, "message": format!("method `{method}` is not supported by agentd") },
        })
    }
}

/// Every item of a paginated listing: `page` is one request with the given
/// params (`{}` first, then `{"cursor": ...}`), answered with its result.
///
/// # Errors
///
/// What `page` fails with; a result without the item array; a cursor seen
/// before; more than [`MAX_LIST_PAGES`] pages.
pub(crate) fn list_pages(
    name: &str,
    what: Listing,
    mut page: impl FnMut(Value) -> Result<Value, Error>,
) -> Result<Vec<Value>, Error> {
    let (method, key) = (what.method(), what.key());
    let mut items = Vec::new();
    let mut cursors: Vec<String> = Vec::new();
    loop {
        let params = match cursors.last() {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let mut result = page(params)?;
        match result.get_mut(key).map(Value::take) {
            Some(Value::Array(page_items)) => items.extend(page_items),
            _ => {
                return Err(Error::Mcp(format!(
                    "mcp server `{name}` answered `{method}` without a `{key}` array"
                )));
            }
        }
        let next = match result.get("nextCursor") {
            Some(Value::String(c)) if !c.is_empty() => c.clone(),
            _ => return Ok(items),
        };
        if cursors.contains(&next) {
            return Err(Error::Mcp(format!(
                "mcp server `{name}` repeated the cursor `{}` of `{method}`",
                snippet(next.as_bytes())
            )));
        }
        if cursors.len() + 1 >= MAX_LIST_PAGES {
            return Err(Error::Mcp(format!(
                "mcp server `{name}` answered `{method}` with more than {MAX_LIST_PAGES} pages"
            )));
        }
        cursors.push(next);
    }
}

/// `notifications/cancelled` for request `id` (sent when we stop waiting).
pub(crate) fn cancelled(id: u64, reason: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": { "requestId": id, "reason": reason },
    })
}

/// The `result` of a response, or why there is none.
pub(crate) fn decode_response(
    name: &str,
    method: &str,
    mut message: Map<String, Value>,
) -> Result<Value, Failure> {
    if let Some(err) = message.get("error").filter(|e| !e.is_null()) {
        let code = err
            .get("code")
            .map_or_else(|| "?".to_owned(), Value::to_string);
        let text = err.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(Failure::Reply(format!(
            "mcp server `{name}` answered `{method}` with error {code}: {}",
            snippet(text.as_bytes())
        )));
    }
    match message.remove("result") {
        Some(result) if !result.is_null() => Ok(result),
        _ => Err(Failure::Fatal(format!(
            "mcp server `{name}` answered `{method}` with neither `result` nor `error`"
        ))),
    }
}

/// The first 120 characters of untrusted output, for error messages.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let mut out: String = text.chars().take(120).collect();
    if text.chars().nth(120).is_some() || bytes.len() > 4096 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_choosing_a_version_we_do_not_speak_is_a_clear_error() {
        assert_eq!(
            negotiated_version("s", &json!({"protocolVersion": "2025-06-18"})),
            Ok("2025-06-18")
        );
        let e = negotiated_version("s", &json!({"protocolVersion": "1999-01-01"}))
            .expect_err("unknown version");
        assert!(
            e.contains("chose protocol version `1999-01-01` which agentd does not speak")
                && e.contains("2025-11-25"),
            "{e}"
        );
        assert!(
            negotiated_version("s", &json!({}))
                .expect_err("none")
                .contains("(none)")
        );
        assert!(
            negotiated_version("s", &json!([1]))
                .expect_err("array")
                .contains("non-object")
        );
    }

    #[test]
    fn messages_are_sorted_into_ours_server_requests_and_the_rest() {
        let ours = classify("s", json!({"jsonrpc": "2.0", "id": 7, "result": {}}), 7);
        assert!(matches!(ours, Ok(Incoming::Response(_))));
        let string_id = classify("s", json!({"id": "7", "result": {}}), 7);
        assert!(matches!(string_id, Ok(Incoming::Response(_))));
        let other = classify("s", json!({"id": 6, "result": {}}), 7);
        assert!(matches!(other, Ok(Incoming::Other)));
        let progress = classify(
            "s",
            json!({"method": "notifications/progress", "params": {"progress": 1}}),
            7,
        );
        assert!(matches!(progress, Ok(Incoming::Other)));
        let Ok(Incoming::ServerRequest(reply)) = classify(
            "s",
            json!({"id": "x", "method": "sampling/createMessage"}),
            7,
        ) else {
            panic!("a server request");
        };
        assert_eq!(reply["id"], json!("x"));
        assert_eq!(reply["error"]["code"], json!(-32601));
        let Ok(Incoming::ServerRequest(pong)) =
            classify("s", json!({"id": 1, "method": "ping"}), 7)
        else {
            panic!("a ping");
        };
        assert_eq!(pong["result"], json!({}));
        assert!(classify("s", json!("text"), 7).is_err());
    }

    #[test]
    fn listings_follow_next_cursor_and_refuse_a_cursor_loop() {
        let pages = [
            json!({"tools": [{"name": "a"}], "nextCursor": "p2"}),
            json!({"tools": [{"name": "b"}, {"name": "c"}], "nextCursor": "p3"}),
            json!({"tools": [], "nextCursor": ""}),
        ];
        let mut asked = Vec::new();
        let all = list_pages("s", Listing::Tools, |params| {
            asked.push(params);
            Ok(pages[asked.len() - 1].clone())
        })
        .expect("three pages");
        assert_eq!(all.len(), 3);
        assert_eq!(
            asked,
            [json!({}), json!({"cursor": "p2"}), json!({"cursor": "p3"})]
        );
        let looped = list_pages("s", Listing::Resources, |_| {
            Ok(json!({"resources": [], "nextCursor": "again"}))
        });
        assert!(
            looped
                .expect_err("a loop")
                .to_string()
                .contains("repeated the cursor `again` of `resources/list`")
        );
        let mut n = 0;
        let endless = list_pages("s", Listing::Tools, |_| {
            n += 1;
            Ok(json!({"tools": [], "nextCursor": format!("c{n}")}))
        });
        assert!(
            endless
                .expect_err("capped")
                .to_string()
                .contains("more than 1000 pages")
        );
        assert!(list_pages("s", Listing::Tools, |_| Ok(json!({}))).is_err());
    }

    #[test]
    fn responses_decode_to_their_result_or_a_clear_error() {
        let Value::Object(ok) = json!({"id": 1, "result": {"x": 1}}) else {
            unreachable!()
        };
        assert_eq!(decode_response("s", "m", ok).ok(), Some(json!({"x": 1})));
        let Value::Object(err) = json!({"id": 1, "error": {"code": -32602, "message": "bad"}})
        else {
            unreachable!()
        };
        assert!(matches!(
            decode_response("s", "m", err),
            Err(Failure::Reply(m)) if m == "mcp server `s` answered `m` with error -32602: bad"
        ));
        let Value::Object(neither) = json!({"id": 1}) else {
            unreachable!()
        };
        assert!(matches!(
            decode_response("s", "m", neither),
            Err(Failure::Fatal(_))
        ));
    }
}
