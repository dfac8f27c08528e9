//! One node's wiring: the `static` config of its kind and the call of the
//! runtime's node function that its `exec` arm makes (or
//! `nodes::unavailable` for a kind whose feature the runtime lacks).
//!
//! Owns the per-kind mapping from a node's IR to runtime items; never the
//! graph tables or the `Workflow` impl around them (the parent module's).

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::{CodegenOptions, opt_path, opt_str, path, s, str_slice, template};
use crate::ir::GraphIr;
use crate::model::NodeKind;

/// The config static (if the kind has one) and the `exec` arm's call expression.
pub(super) fn node_wiring(
    cfg: &proc_macro2::Ident,
    ni: usize,
    g: &GraphIr,
    graphs: &[GraphIr],
    kind: &NodeKind,
    opts: &CodegenOptions,
) -> (TokenStream, TokenStream) {
    let rt = quote!(::agentd_runtime::nodes);
    // A child reference: its graph id and the index of the named start (default: the
    // child's first declared start). The loader guarantees both exist.
    let child = |branch: Option<usize>, start: Option<&String>| -> TokenStream {
        let id = g.child(ni as u32, branch).unwrap_or(u32::MAX);
        let start_idx = graphs
            .get(id as usize)
            .and_then(|c| {
                start.map_or(Some(0), |name| {
                    c.starts.iter().position(|s| &s.name == name)
                })
            })
            .unwrap_or(0) as u32;
        let id = Literal::u32_unsuffixed(id);
        let start_idx = Literal::u32_unsuffixed(start_idx);
        quote!(#rt::compose::ChildRef {
            graph: ::agentd_runtime::graph::GraphId(#id),
            start: #start_idx,
        })
    };
    macro_rules! with_cfg {
        ($ty:expr, $init:expr, $call:expr) => {{
            let ty = $ty;
            let init = $init;
            (
                quote!(static #cfg: #ty = #init;),
                $call,
            )
        }};
    }
    match kind {
        NodeKind::ReadFile(c) => {
            let p = path(&g.path(&c.path_from));
            with_cfg!(
                quote!(#rt::fs::ReadFile),
                quote!(#rt::fs::ReadFile { path_from: #p }),
                quote!(#rt::fs::read_file(cx, &#cfg))
            )
        }
        NodeKind::WriteFile(c) => {
            let p = path(&g.path(&c.path_from));
            let content = path(&g.path(&c.content_from));
            with_cfg!(
                quote!(#rt::fs::WriteFile),
                quote!(#rt::fs::WriteFile { path_from: #p, content_from: #content }),
                quote!(#rt::fs::write_file(cx, &#cfg))
            )
        }
        NodeKind::CreateDir(c) => {
            let p = path(&g.path(&c.path_from));
            with_cfg!(
                quote!(#rt::fs::CreateDir),
                quote!(#rt::fs::CreateDir { path_from: #p }),
                quote!(#rt::fs::create_dir(cx, &#cfg))
            )
        }
        NodeKind::ReadEnv(c) => {
            let key = s(&c.key);
            with_cfg!(
                quote!(#rt::env::ReadEnv),
                quote!(#rt::env::ReadEnv { key: #key }),
                quote!(#rt::env::read_env(cx, &#cfg))
            )
        }
        NodeKind::ParseJson(c) => {
            let p = path(&g.path(&c.input_from));
            with_cfg!(
                quote!(#rt::data::ParseJson),
                quote!(#rt::data::ParseJson { input_from: #p }),
                quote!(#rt::data::parse_json(cx, &#cfg))
            )
        }
        NodeKind::TemplateRender(c) => {
            let t = template(&c.template);
            let input = opt_path(g, c.input_from.as_ref());
            with_cfg!(
                quote!(#rt::data::TemplateRender),
                quote!(#rt::data::TemplateRender { template: #t, input_from: #input }),
                quote!(#rt::data::template_render(cx, &#cfg))
            )
        }
        NodeKind::JsonSelect(c) => {
            let p = path(&g.path(&c.input_from));
            let sel: Vec<String> = c.path.split('.').map(str::to_string).collect();
            let sel = str_slice(&sel);
            with_cfg!(
                quote!(#rt::data::JsonSelect),
                quote!(#rt::data::JsonSelect { input_from: #p, path: #sel }),
                quote!(#rt::data::json_select(cx, &#cfg))
            )
        }
        NodeKind::DiffCompute(c) => {
            let l = path(&g.path(&c.left_from));
            let r = path(&g.path(&c.right_from));
            with_cfg!(
                quote!(#rt::data::DiffCompute),
                quote!(#rt::data::DiffCompute { left_from: #l, right_from: #r }),
                quote!(#rt::data::diff_compute(cx, &#cfg))
            )
        }
        NodeKind::Condition(c) => {
            let p = path(&g.path(&c.expr));
            with_cfg!(
                quote!(#rt::control::Condition),
                quote!(#rt::control::Condition { expr: #p }),
                quote!(#rt::control::condition(cx, &#cfg))
            )
        }
        NodeKind::Switch(c) => {
            let p = path(&g.path(&c.expr));
            with_cfg!(
                quote!(#rt::control::Switch),
                quote!(#rt::control::Switch { expr: #p }),
                quote!(#rt::control::switch(cx, &#cfg))
            )
        }
        NodeKind::Fail(c) => {
            let reason = s(c.reason.as_deref().unwrap_or("workflow failed"));
            with_cfg!(
                quote!(#rt::control::Fail),
                quote!(#rt::control::Fail { reason: #reason }),
                quote!(#rt::control::fail(cx, &#cfg))
            )
        }
        NodeKind::Respond(c) => {
            let status = Literal::u16_unsuffixed(c.status.unwrap_or(200));
            let ct = s(c.content_type.as_deref().unwrap_or("application/json"));
            let body = template(&c.body_template);
            let input = opt_path(g, c.input_from.as_ref());
            with_cfg!(
                quote!(#rt::control::Respond),
                quote!(#rt::control::Respond { status: #status, content_type: #ct, body: #body, input_from: #input }),
                quote!(#rt::control::respond(cx, &#cfg))
            )
        }
        NodeKind::Merge => (TokenStream::new(), quote!(#rt::control::merge(cx))),
        NodeKind::Terminate => (TokenStream::new(), quote!(#rt::control::terminate(cx))),
        NodeKind::Rust(c) => {
            let handler = s(&c.handler);
            let input = opt_path(g, c.input_from.as_ref());
            // The validator only lets identifiers through (no keywords).
            let bound = opts.handlers.get(&c.handler).cloned().or_else(|| {
                let krate = opts.handler_crate.as_ref()?;
                let name = format_ident!("{}", c.handler);
                Some(quote!(#krate::#name))
            });
            let call = match bound {
                // The bound function item is passed by value: `call` is generic over it,
                // so the handler is called directly (monomorphised, no fn pointer).
                Some(f) => quote!(#rt::rust::call(cx, &#cfg, #f)),
                None => quote!(#rt::rust::unbound(cx, &#cfg)),
            };
            with_cfg!(
                quote!(#rt::rust::RustNode),
                quote!(#rt::rust::RustNode { handler: #handler, input_from: #input }),
                call
            )
        }
        NodeKind::Call(c) => {
            let input = opt_path(g, c.input_from.as_ref());
            let child = child(None, c.start.as_ref());
            with_cfg!(
                quote!(#rt::compose::Call),
                quote!(#rt::compose::Call { child: #child, input_from: #input }),
                quote!(#rt::compose::call(self, cx, &#cfg))
            )
        }
        NodeKind::Parallel(c) => {
            let branches = c.branches.iter().enumerate().map(|(bi, b)| {
                let input = opt_path(g, b.input_from.as_ref());
                let child = child(Some(bi), b.start.as_ref());
                quote!(#rt::compose::Branch { child: #child, input_from: #input })
            });
            with_cfg!(
                quote!(#rt::compose::Parallel),
                quote!(#rt::compose::Parallel { branches: &[#(#branches),*] }),
                quote!(#rt::compose::parallel(self, cx, &#cfg))
            )
        }
        NodeKind::Map(c) => {
            let items = path(&g.path(&c.items_from));
            let max_items = Literal::u32_unsuffixed(c.max_items);
            let max_conc = Literal::u32_unsuffixed(c.max_concurrent.unwrap_or(4));
            let child = child(None, c.start.as_ref());
            with_cfg!(
                quote!(#rt::compose::Map),
                quote!(#rt::compose::Map { items_from: #items, child: #child, max_items: #max_items, max_concurrent: #max_conc }),
                quote!(#rt::compose::map(self, cx, &#cfg))
            )
        }
        // Pause is handled by the engine before dispatch; the arm exists so the match
        // is total.
        NodeKind::PauseForApproval(_) => (TokenStream::new(), quote!(#rt::unavailable(cx))),
        NodeKind::LlmInfer(c) => {
            let schema = g
                .schemas
                .get(&(ni as u32))
                .cloned()
                .unwrap_or(crate::codegen::sections::llm::SchemaIr::None);
            let init = crate::codegen::sections::llm::node_config(
                c,
                &schema,
                template(&c.prompt),
                opt_path(g, c.input_from.as_ref()),
            );
            with_cfg!(
                quote!(#rt::llm::LlmInfer),
                init,
                quote!(#rt::llm::llm_infer(cx, &#cfg))
            )
        }
        NodeKind::HttpRequest(c) => {
            // Upper-cased here so the runtime's policy check and request use it as is.
            let method = s(&c.method.to_ascii_uppercase());
            let url = path(&g.path(&c.url_from));
            let body = opt_path(g, c.body_from.as_ref());
            let headers = crate::codegen::sections::secrets::headers_tokens(c.headers.as_ref());
            with_cfg!(
                quote!(#rt::http::HttpRequest),
                quote!(#rt::http::HttpRequest { method: #method, url_from: #url, body_from: #body, headers: #headers }),
                quote!(#rt::http::http_request(cx, &#cfg))
            )
        }
        NodeKind::ShellRun(c) => {
            let command = s(&c.command);
            let args = opt_path(g, c.args_from.as_ref());
            // docs/dialect.md §7 `shell_run`: default 30 s, at least 1.
            let timeout = Literal::u64_unsuffixed(c.timeout_secs.unwrap_or(30).max(1));
            with_cfg!(
                quote!(#rt::shell::ShellRun),
                quote!(#rt::shell::ShellRun { command: #command, args_from: #args, timeout_secs: #timeout }),
                quote!(#rt::shell::shell_run(cx, &#cfg))
            )
        }
        NodeKind::AgentLoop(c) => {
            let init = crate::codegen::sections::mcp::agent_loop_config(
                c,
                opt_path(g, c.instructions_from.as_ref()),
            );
            with_cfg!(
                quote!(#rt::agent_loop::AgentLoop),
                init,
                quote!(#rt::agent_loop::agent_loop(cx, &#cfg))
            )
        }
        NodeKind::CallMcpTool(c) => {
            let tool = s(&c.tool);
            let args = opt_path(g, c.args_from.as_ref());
            let server = opt_str(c.server.as_deref());
            with_cfg!(
                quote!(#rt::mcp::CallMcpTool),
                quote!(#rt::mcp::CallMcpTool { tool: #tool, args_from: #args, server: #server }),
                quote!(#rt::mcp::call_mcp_tool(cx, &#cfg))
            )
        }
        NodeKind::ReadMcpResource(c) => {
            let uri = path(&g.path(&c.resource_from));
            let server = opt_str(c.server.as_deref());
            with_cfg!(
                quote!(#rt::mcp::ReadMcpResource),
                quote!(#rt::mcp::ReadMcpResource { resource_from: #uri, server: #server }),
                quote!(#rt::mcp::read_mcp_resource(cx, &#cfg))
            )
        }
    }
}
