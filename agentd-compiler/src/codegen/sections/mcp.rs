//! Build-time pieces of MCP and `agent_loop`: the `[[mcp_servers]]` item of the
//! generated `Workflow` impl, the node configs of `call_mcp_tool`,
//! `read_mcp_resource` and `agent_loop`, the runtime features an `agent_loop`
//! needs (`llm` plus the family of every declared tool) and the MCP transports
//! the servers need (`mcp-http`, `mcp-oauth`).
//!
//! Only the root workflow's servers are baked: a child's `[[mcp_servers]]` is
//! validated against its own nodes but never applied (docs/dialect.md §11). Secret
//! *names* of `env` are baked, never values.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::secrets::{HeaderSegIr, split_header};
use crate::codegen::features::{Features, RuntimeFeature};
use crate::model::{AgentLoop, WorkflowDoc};

/// The runtime features an `agent_loop` declaring `tools` needs.
pub fn agent_loop_features(tools: &[String]) -> Vec<RuntimeFeature> {
    let mut out = vec![RuntimeFeature::Llm];
    for t in tools {
        let f = match t.as_str() {
            "read_file" | "write_file" => RuntimeFeature::Fs,
            "read_env" => RuntimeFeature::Env,
            "http_request" => RuntimeFeature::Http,
            "shell_run" => RuntimeFeature::Shell,
            "call_mcp_tool" => RuntimeFeature::Mcp,
            // The validator rejects anything else.
            _ => continue,
        };
        out.push(f);
    }
    out
}

/// Add the MCP transports the root's servers need, once `features` holds what the
/// rest of the program uses: the Streamable HTTP transport only for a workflow that
/// uses MCP and declares a `url` server, OAuth (token requests, discovery) only when
/// such a server asks for it.
pub fn add_features(root: &WorkflowDoc, features: &mut Features) {
    if !features.contains(&RuntimeFeature::Mcp) {
        return;
    }
    let remote = || root.mcp_servers.iter().filter(|s| s.url.is_some());
    if remote().next().is_some() {
        features.insert(RuntimeFeature::McpHttp);
        if remote().any(|s| s.oauth.is_some()) {
            features.insert(RuntimeFeature::McpOauth);
        }
    }
}

/// `const MCP_SERVERS` when the root declares servers and the program uses MCP
/// (`mcp_enabled`); otherwise nothing (the trait's empty default).
pub fn workflow_consts(root: &WorkflowDoc, mcp_enabled: bool) -> TokenStream {
    if !mcp_enabled || root.mcp_servers.is_empty() {
        return TokenStream::new();
    }
    let strs = |items: &[String]| {
        let lits = items.iter().map(|i| Literal::string(i));
        quote!(&[#(#lits),*])
    };
    let defs = root.mcp_servers.iter().map(|s| {
        let name = Literal::string(&s.name);
        let command = strs(&s.command);
        let url = match &s.url {
            Some(u) => {
                let u = Literal::string(u);
                quote!(::core::option::Option::Some(#u))
            }
            None => quote!(::core::option::Option::None),
        };
        let headers = s.headers.iter().map(|(name, value)| {
            let parts = split_header(value).into_iter().map(|seg| match seg {
                HeaderSegIr::Lit(text) => {
                    let text = Literal::string(&text);
                    quote!(::agentd_runtime::mcp::HeaderPart::Lit(#text))
                }
                HeaderSegIr::Secret(name) => {
                    let name = Literal::string(&name);
                    quote!(::agentd_runtime::mcp::HeaderPart::Secret(#name))
                }
            });
            let name = Literal::string(name);
            quote!((#name, &[#(#parts),*]))
        });
        let timeout = match s.timeout_secs {
            Some(t) => {
                let t = Literal::u64_unsuffixed(t);
                quote!(::core::option::Option::Some(#t))
            }
            None => quote!(::core::option::Option::None),
        };
        let tools = strs(&s.allow_tools);
        let resources = strs(&s.allow_resources);
        // BTreeMap: sorted, so the output is deterministic.
        let env = s.env.iter().map(|(var, secret)| {
            let (var, secret) = (Literal::string(var), Literal::string(secret));
            quote!((#var, #secret))
        });
        let oauth = match &s.oauth {
            Some(o) => {
                let (id, secret) = (
                    Literal::string(&o.client_id),
                    Literal::string(&o.client_secret),
                );
                let auth = if o.token_auth.as_deref() == Some("client_secret_post") {
                    quote!(::agentd_runtime::mcp::McpTokenAuth::ClientSecretPost)
                } else {
                    quote!(::agentd_runtime::mcp::McpTokenAuth::ClientSecretBasic)
                };
                let scope = match &o.scope {
                    Some(sc) => {
                        let sc = Literal::string(sc);
                        quote!(::core::option::Option::Some(#sc))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!(::core::option::Option::Some(::agentd_runtime::mcp::McpOAuthDef {
                    client_id: #id,
                    client_secret: #secret,
                    token_auth: #auth,
                    scope: #scope,
                }))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(::agentd_runtime::mcp::McpServerDef {
            name: #name,
            command: #command,
            url: #url,
            headers: &[#(#headers),*],
            timeout_secs: #timeout,
            allow_tools: #tools,
            allow_resources: #resources,
            env: &[#(#env),*],
            oauth: #oauth,
        })
    });
    quote!(const MCP_SERVERS: &'static [::agentd_runtime::mcp::McpServerDef] = &[#(#defs),*];)
}

/// The `AgentLoop { .. }` config expression; `instructions_from` is already the
/// token stream of an `Option<CtxPath>`.
pub fn agent_loop_config(c: &AgentLoop, instructions_from: TokenStream) -> TokenStream {
    let rt = quote!(::agentd_runtime::nodes::agent_loop);
    let backend = Literal::string(&c.backend);
    let instructions = match &c.instructions {
        Some(text) => {
            let text = Literal::string(text);
            quote!(::core::option::Option::Some(#text))
        }
        None => quote!(::core::option::Option::None),
    };
    let tools = c.tools.iter().filter_map(|t| {
        let variant = match t.as_str() {
            "read_file" => quote!(ReadFile),
            "write_file" => quote!(WriteFile),
            "read_env" => quote!(ReadEnv),
            "http_request" => quote!(HttpRequest),
            "shell_run" => quote!(ShellRun),
            "call_mcp_tool" => quote!(CallMcpTool),
            _ => return None,
        };
        Some(quote!(#rt::LoopTool::#variant))
    });
    let max_steps = Literal::u32_unsuffixed(c.max_steps);
    let max_tokens = match c.max_tokens {
        Some(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    quote!(#rt::AgentLoop {
        backend: #backend,
        instructions: #instructions,
        instructions_from: #instructions_from,
        tools: &[#(#tools),*],
        max_steps: #max_steps,
        max_tokens: #max_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_features_follow_the_declared_tools() {
        let tools: Vec<String> = ["read_file", "write_file", "call_mcp_tool", "shell_run"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            agent_loop_features(&tools),
            vec![
                RuntimeFeature::Llm,
                RuntimeFeature::Fs,
                RuntimeFeature::Fs,
                RuntimeFeature::Mcp,
                RuntimeFeature::Shell
            ]
        );
        assert_eq!(agent_loop_features(&[]), vec![RuntimeFeature::Llm]);
    }

    #[test]
    fn servers_are_baked_only_when_mcp_is_in_use() {
        let doc: WorkflowDoc = toml::from_str(
            "name = \"w\"\n[[mcp_servers]]\nname = \"gh\"\ncommand = [\"/bin/gh-mcp\", \"--stdio\"]\n\
             allow_tools = [\"search\"]\nenv = { GH_TOKEN = \"github_token\" }\n",
        )
        .expect("valid doc");
        assert!(workflow_consts(&doc, false).is_empty());
        let text = workflow_consts(&doc, true).to_string();
        assert!(text.contains("\"/bin/gh-mcp\" , \"--stdio\""), "{text}");
        assert!(text.contains("(\"GH_TOKEN\" , \"github_token\")"), "{text}");
    }
}
