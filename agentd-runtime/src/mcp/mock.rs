//! The scripted MCP server of the test harnesses (docs/cli.md
//! "agentd test", `[mocks]`).
//!
//! `mcp_tools` maps a tool name to a FIFO of `tools/call` results and
//! `mcp_resources` maps an exact URI (not a pattern) to a FIFO of
//! `resources/read` results, both in MCP wire casing
//! (`{content, isError?, structuredContent?}` / `{contents}`). Each call
//! pops the next result; an unknown tool or URI, or an exhausted queue, is a
//! hard [`Error::Mcp`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use super::McpServer;
use crate::error::Error;

/// Canned results, as baked by the harness generator: name or URI → the
/// JSON text of each result in order.
pub type CannedResults = &'static [(&'static str, &'static [&'static str])];

#[derive(Debug, Default)]
struct Queues {
    tools: BTreeMap<String, VecDeque<Value>>,
    resources: BTreeMap<String, VecDeque<Value>>,
    calls: Vec<(String, Value)>,
}

/// A scripted server. Safe to share between threads.
#[derive(Debug, Default)]
pub struct MockServer {
    queues: Mutex<Queues>,
}

impl MockServer {
    /// A server answering `tools` and `resources` (JSON texts).
    ///
    /// # Errors
    ///
    /// A message naming the entry whose text is not JSON.
    pub fn from_canned(tools: CannedResults, resources: CannedResults) -> Result<Self, String> {
        let parse = |kind: &str, canned: CannedResults| {
            canned
                .iter()
                .map(|(key, texts)| {
                    let values = texts
                        .iter()
                        .map(|t| {
                            serde_json::from_str(t)
                                .map_err(|e| format!("[mocks] {kind} `{key}`: not JSON: {e}"))
                        })
                        .collect::<Result<VecDeque<Value>, String>>()?;
                    Ok(((*key).to_owned(), values))
                })
                .collect::<Result<BTreeMap<_, _>, String>>()
        };
        Ok(Self::new(
            parse("mcp_tools", tools)?,
            parse("mcp_resources", resources)?,
        ))
    }

    /// A server answering these queues.
    #[must_use]
    pub fn new(
        tools: BTreeMap<String, VecDeque<Value>>,
        resources: BTreeMap<String, VecDeque<Value>>,
    ) -> Self {
        Self {
            queues: Mutex::new(Queues {
                tools,
                resources,
                calls: Vec::new(),
            }),
        }
    }

    /// Every `tools/call` received so far: `(tool, arguments)`.
    #[must_use]
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl McpServer for MockServer {
    fn call_tool(&self, tool: &str, arguments: &Value, _: Duration) -> Result<Value, Error> {
        let mut q = self.lock();
        q.calls.push((tool.to_owned(), arguments.clone()));
        let Some(queue) = q.tools.get_mut(tool) else {
            return Err(Error::Mcp(format!(
                "mock: no canned result for tool `{tool}`"
            )));
        };
        queue.pop_front().ok_or_else(|| {
            Error::Mcp(format!(
                "mock: canned results for tool `{tool}` are exhausted"
            ))
        })
    }

    fn read_resource(&self, uri: &str, _: Duration) -> Result<Value, Error> {
        let mut q = self.lock();
        let Some(queue) = q.resources.get_mut(uri) else {
            return Err(Error::Mcp(format!(
                "mock: no canned result for resource `{uri}`"
            )));
        };
        queue.pop_front().ok_or_else(|| {
            Error::Mcp(format!(
                "mock: canned results for resource `{uri}` are exhausted"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TOOLS: [(&str, &[&str]); 1] = [(
        "search",
        &[
            r#"{"content":[{"type":"text","text":"one"}]}"#,
            r#"{"content":[],"isError":true}"#,
        ],
    )];
    static RESOURCES: [(&str, &[&str]); 1] = [("file:///a", &[r#"{"contents":[]}"#])];

    #[test]
    fn queues_answer_in_order_then_run_dry() {
        let m = MockServer::from_canned(&TOOLS, &RESOURCES).expect("canned JSON");
        let t = Duration::from_secs(1);
        let first = m.call_tool("search", &Value::Null, t).ok();
        assert_eq!(
            first.and_then(|v| v.pointer("/content/0/text").cloned()),
            Some(Value::from("one"))
        );
        assert_eq!(
            m.call_tool("search", &Value::Null, t)
                .ok()
                .and_then(|v| v.get("isError").cloned()),
            Some(Value::Bool(true))
        );
        assert_eq!(
            m.call_tool("search", &Value::Null, t)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("mcp: mock: canned results for tool `search` are exhausted")
        );
        assert_eq!(
            m.call_tool("other", &Value::Null, t)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("mcp: mock: no canned result for tool `other`")
        );
        assert!(m.read_resource("file:///a", t).is_ok());
        assert!(m.read_resource("file:///a", t).is_err());
        // URIs are exact keys, not patterns.
        assert!(m.read_resource("file:///", t).is_err());
        assert_eq!(m.calls().len(), 4);
    }

    #[test]
    fn canned_text_that_is_not_json_is_reported() {
        static BAD: [(&str, &[&str]); 1] = [("t", &["{nope"])];
        let err = MockServer::from_canned(&BAD, &[]).err().unwrap_or_default();
        assert!(err.starts_with("[mocks] mcp_tools `t`: not JSON"), "{err}");
    }
}
