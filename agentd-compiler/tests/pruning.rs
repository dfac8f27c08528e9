//! Capability pruning, measured (docs/security.md "Capability pruning and policy"; issue 8): a binary holds only the code
//! paths its workflow uses.
//!
//! Shipped binaries are stripped, so symbol names are gone; the markers are byte
//! strings that only the pruned code carries: the source paths that panic locations
//! embed (`…/ureq-3.5.1/src/…`, `…/rustls-0.23.46/src/…`) and messages unique to
//! the runtime's LLM modules. The positive controls must contain them, so the test
//! can fail if a marker stops meaning anything: `workflows/llm-classifier.toml`
//! (`llm_infer` with an OpenAI-compatible backend) for HTTP, TLS and LLM, and
//! `workflows/order-api.toml` (routes) for the server stack.
//!
//! Not covered: the MCP client is plain std (no crate of its own to mark), so MCP
//! has no marker here. Node kind *names* (`llm_infer`, …) are in every binary, in
//! the table that names kinds in traces; they are not markers.

use std::path::Path;

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{agentd_build, scratch, workspace};

/// `agentd build WORKFLOW -o OUT` (static, the default) with the shared test
/// cache; the binary's bytes.
fn build(workflow: &str, out: &Path) -> Vec<u8> {
    agentd_build(&workspace(), workflow, out, &[]);
    std::fs::read(out).expect("read the built binary")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// HTTP client and TLS: crate paths from panic locations.
const HTTP_TLS: &[&str] = &[
    "/ureq-",
    "/ureq-proto-",
    "/rustls-",
    "/ring-",
    "/rustls-webpki-",
];
/// The runtime's LLM modules: the `llm_infer` node, the JSON-RPC envelope, the
/// OpenAI-compatible client.
const LLM: &[&str] = &[
    "budget.llm_tokens_exceeded",
    "jsonrpc",
    "/v1/chat/completions",
];
/// The server stack.
const SERVE: &[&str] = &["/tokio-", "/hyper-"];

#[test]
fn hello_contains_no_http_tls_llm_or_server_code_and_llm_classifier_does() {
    let dir = scratch("pruning");

    let hello = build("workflows/hello.toml", &dir.join("hello"));
    let present: Vec<&str> = HTTP_TLS
        .iter()
        .chain(LLM)
        .chain(SERVE)
        .copied()
        .filter(|m| contains(&hello, m))
        .collect();
    assert!(
        present.is_empty(),
        "hello (no http_request, llm_infer or routes) carries code it does not use: {present:?}"
    );

    // Positive control: the same markers do show up when the capability is used.
    let llm = build("workflows/llm-classifier.toml", &dir.join("llm-classifier"));
    let missing: Vec<&str> = HTTP_TLS
        .iter()
        .chain(LLM)
        .copied()
        .filter(|m| !contains(&llm, m))
        .collect();
    assert!(
        missing.is_empty(),
        "markers absent from llm-classifier (an OpenAI-compatible backend), so they prove nothing: {missing:?}"
    );
    assert!(
        llm.len() > hello.len() * 2,
        "llm-classifier ({} bytes) should dwarf hello ({} bytes)",
        llm.len(),
        hello.len()
    );

    let served = build("workflows/order-api.toml", &dir.join("order-api"));
    let missing: Vec<&str> = SERVE
        .iter()
        .copied()
        .filter(|m| !contains(&served, m))
        .collect();
    assert!(
        missing.is_empty(),
        "server markers absent from order-api (routes), so they prove nothing: {missing:?}"
    );
}
