//! The runtime's Cargo features, as codegen names them: the set a program needs
//! (computed by [`super::program_features`] from what each section and node kind
//! lowers to) and the feature each node kind's runtime function sits behind.
//!
//! A leaf: the section lowerers name features through this module, and the
//! computation that asks each of them lives in `codegen/mod.rs`.

use std::collections::BTreeSet;

use crate::model::NodeKind;

/// Runtime Cargo features a program needs.
pub type Features = BTreeSet<&'static str>;

/// The runtime feature a node kind needs, if any (control and composition are always
/// compiled in).
pub fn feature_of(kind: &NodeKind) -> Option<&'static str> {
    match kind {
        NodeKind::ReadFile(_) | NodeKind::WriteFile(_) | NodeKind::CreateDir(_) => Some("fs"),
        NodeKind::ReadEnv(_) => Some("env"),
        NodeKind::ParseJson(_)
        | NodeKind::TemplateRender(_)
        | NodeKind::JsonSelect(_)
        | NodeKind::DiffCompute(_) => Some("data"),
        NodeKind::LlmInfer(_) | NodeKind::AgentLoop(_) => Some("llm"),
        NodeKind::CallMcpTool(_) | NodeKind::ReadMcpResource(_) => Some("mcp"),
        NodeKind::HttpRequest(_) => Some("http"),
        NodeKind::ShellRun(_) => Some("shell"),
        _ => None,
    }
}
