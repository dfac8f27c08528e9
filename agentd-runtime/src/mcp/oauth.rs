//! OAuth for remote MCP servers (feature `mcp-oauth`): the [`AuthProvider`]
//! of a `url` server with `[mcp_servers.oauth]`, over
//! [`crate::oauth::resource::ResourceClient`] — nothing is sent until the
//! server's first `401`, whose `WWW-Authenticate` leads to the authorization
//! server; the client credentials token is then sent as a bearer, cached,
//! and fetched again on the next `401`.
//!
//! The client id and secret are secret names, resolved through
//! `[[secrets]]` at every token request. The token URL and metadata URLs are
//! checked against the effective `[policy.http]`. Each fetch is audited as
//! `mcp.oauth_token_fetched{server,expires_in_secs}`; nothing here logs a
//! credential or a token.

use std::sync::Arc;
use std::time::Instant;

use super::{AuthFactory, AuthProvider, McpServerDef, McpTokenAuth};
use crate::oauth::ClientAuth;
use crate::oauth::resource::{Registration, ResourceClient};

/// The factory [`super::McpOptions::with_secrets`] installs: an OAuth
/// provider for every server with `[mcp_servers.oauth]`, its credentials
/// resolved through `defs` (then the process environment).
pub(super) fn factory(defs: &'static [crate::workflow::secrets::SecretDef]) -> AuthFactory {
    Arc::new(move |def: &McpServerDef, url: &str| {
        let Some(o) = def.oauth else {
            return Ok(None);
        };
        let server = def.name;
        let client = ResourceClient::new(
            url,
            Registration {
                client_id: o.client_id.to_owned(),
                client_secret: o.client_secret.to_owned(),
                auth: match o.token_auth {
                    McpTokenAuth::ClientSecretBasic => ClientAuth::Basic,
                    McpTokenAuth::ClientSecretPost => ClientAuth::Post,
                },
                scope: o.scope.map(str::to_owned),
            },
            Arc::new(crate::secrets::resolver(defs)),
            crate::secrets::outbound_policy(),
            Box::new(move |expires_in_secs| {
                crate::obs::audit(
                    "mcp.oauth_token_fetched",
                    serde_json::json!({ "server": server, "expires_in_secs": expires_in_secs }),
                );
            }),
        );
        Ok(Some(Arc::new(McpOAuth(client)) as Arc<dyn AuthProvider>))
    })
}

/// One server's OAuth client.
#[derive(Debug)]
struct McpOAuth(ResourceClient);

impl AuthProvider for McpOAuth {
    fn authorization(&self, _deadline: Option<Instant>) -> Result<Option<String>, String> {
        // Token requests have their own 10 s / 30 s bounds (`crate::oauth`).
        self.0.authorization()
    }

    fn unauthorized(
        &self,
        www_authenticate: Option<&str>,
        _deadline: Option<Instant>,
    ) -> Result<bool, String> {
        self.0.unauthorized(www_authenticate)
    }
}
