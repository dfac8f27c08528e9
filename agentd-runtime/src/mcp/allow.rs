//! The MCP allowlist gate: which server a call may reach, and which tool or
//! resource on it ([`ServerEntry::check`]), under the run's effective policy
//! (the rules are in the [module docs](super)). Decides only; never calls a
//! server.

use std::sync::Arc;

use super::McpServer;
use crate::error::Error;
use crate::policy::{Policy, name_matches};

/// Where a server's allowlists come from.
#[derive(Clone, Copy, Debug)]
pub enum Allowlists {
    /// The server's own `allow_tools` / `allow_resources`.
    Lists {
        /// Tool patterns.
        tools: &'static [&'static str],
        /// Resource URI patterns.
        resources: &'static [&'static str],
    },
    /// The effective policy's `[policy.mcp]` lists (the harness's synthetic
    /// `default` server, like dialect 1's `--mcp-stdio` server).
    PolicyMcp,
}

/// A named server in a registry.
#[derive(Clone, Debug)]
pub struct ServerEntry {
    /// The name nodes select it by.
    pub name: String,
    /// Its allowlists.
    pub allow: Allowlists,
    /// The connection.
    pub server: Arc<dyn McpServer>,
}

/// What is being asked of a server, for the allowlist check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// `tools/call` of this tool.
    Tool(&'a str),
    /// `resources/read` of this URI.
    Resource(&'a str),
}

impl ServerEntry {
    /// The allowlist gate. `policy` is the run's effective policy (`None`
    /// allows everything).
    ///
    /// # Errors
    ///
    /// [`Error::Policy`]: `mcp tool `t` denied by allowlist on server `s``
    /// (or `mcp resource ...`).
    pub fn check(&self, policy: Option<&Policy>, access: Access<'_>) -> Result<(), Error> {
        let Some(policy) = policy else {
            return Ok(());
        };
        let (what, name, policy_list) = match access {
            Access::Tool(t) => ("tool", t, &policy.mcp.tools),
            Access::Resource(u) => ("resource", u, &policy.mcp.resources),
        };
        let deny = |why: &str| {
            Err(Error::Policy(format!(
                "mcp {what} `{name}` denied by allowlist on server `{}`{why}",
                self.name
            )))
        };
        let by_policy = || Policy::mcp_list_allows(policy_list, name);
        match self.allow {
            Allowlists::PolicyMcp => {
                if !by_policy() {
                    return deny("");
                }
            }
            Allowlists::Lists { tools, resources } => {
                // A declared server is itself an effect family under a policy: an
                // empty `[policy]` (no `servers`) denies every MCP call, as it
                // denies every other effect.
                if !Policy::mcp_list_allows(&policy.mcp.servers, &self.name) {
                    return deny(&format!(
                        ": `[policy.mcp] servers` does not list it ({} configured)",
                        policy.mcp.servers.len()
                    ));
                }
                let own = match access {
                    Access::Tool(_) => tools,
                    Access::Resource(_) => resources,
                };
                if !own.iter().any(|p| name_matches(p, name))
                    || !(policy_list.is_empty() || by_policy())
                {
                    return deny("");
                }
            }
        }
        let decision = match access {
            Access::Tool(tool) => policy.then_rego(
                "mcp.call",
                || serde_json::json!({ "server": self.name, "tool": tool }),
            ),
            Access::Resource(uri) => policy.then_rego(
                "mcp.read",
                || serde_json::json!({ "server": self.name, "uri": uri }),
            ),
        };
        match decision {
            crate::policy::Decision::Allow => Ok(()),
            crate::policy::Decision::Deny(reason) => Err(Error::Policy(format!(
                "mcp {what} `{name}` on server `{}` {reason}",
                self.name
            ))),
        }
    }
}
