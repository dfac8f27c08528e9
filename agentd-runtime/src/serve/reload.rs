//! Hot reload for serve mode (ARCHITECTURE.md `serve/reload`; docs/operations.md "Reload").
//!
//! Owns the reloadable state of a running server — each component in its own
//! `ArcSwap` cell — and the two triggers, SIGHUP and `--reload-file PATH`.
//! Components:
//!
//! | component | cell | rebuilt from | audit on success |
//! |---|---|---|---|
//! | `tls` (feature `tls`) | `rustls::ServerConfig` | `[server.tls]` cert, key and CA files | `reload.tls{tls_active,cert_file}` |
//! | `auth` | [`PreparedAuth`] | `[auth.*]` (JWKS files re-read) | `reload.auth{bindings}` |
//! | `policy` (feature `policy-file`) | [`PolicyFile`] | the `--policy` file, signature re-checked when the binary requires signed policy | `reload.policy{path}` |
//! | anything [`Reloader::register`]ed | its own | its own | its own |
//!
//! | `secrets` (only when `[[secrets]]` has `command` or `oauth2` entries) | the values of those entries | every entry resolved again, programs re-run and tokens re-fetched ([`crate::secrets::refresh`]); all or nothing | `reload.secrets{entries}` |
//!
//! `env` and `file` secrets need no component: they are read on every use.
//! The `secrets` component goes first, so auth rebuilt in the same pass sees
//! the new values; a policy reload also becomes the policy `oauth2` token
//! URLs are checked against ([`crate::secrets::set_outbound_policy`]).
//!
//! Rules (where we differ from dialect 1, ours win; docs/dialect.md §15):
//! - **Per component, fail-forward.** [`Reloader::reload_all`] rebuilds every
//!   component separately; one that fails keeps its old value and emits
//!   `reload.failed{component,reason}`, and the others still swap. The pass
//!   starts with `reload.started` and ends with `reload.succeeded` when every
//!   component reloaded, or `reload.partial{reloaded,failed}` when some did not.
//! - **Never a downgrade.** The TLS cell exists only when the binary was built
//!   with `[server.tls]` and always holds a config, so a server that started
//!   with TLS keeps TLS, and one without cannot gain it by reload.
//! - **Snapshots.** Readers `load_full` at accept (TLS), per request (auth)
//!   or at run start (policy), so an in-flight handshake, request or run
//!   finishes on what it started with.
//! - **One pass at a time.** Triggers arriving during a pass merge into one
//!   more pass.
//!
//! Nothing here restarts listeners or changes routes: the graph, routes and
//! bind address are compiled in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::{Value, json};

use crate::context::PolicyMode;
#[cfg(feature = "policy-file")]
use crate::policy_file::{PolicyFile, PolicyFileError};
use crate::serve::auth::{AuthDefs, AuthError, PreparedAuth, SecretLookup};
#[cfg(feature = "tls")]
use crate::serve::tls::{TlsDef, TlsError};

/// One reloadable piece of state.
pub trait Reloadable: Send + Sync {
    /// The name in `reload.failed{component}` and in the report.
    fn component(&self) -> &'static str;
    /// The audit event emitted on success (`reload.<component>`).
    fn event(&self) -> &'static str;
    /// Rebuild and swap the new value in. On `Err` the old value must stay.
    /// `Ok` carries the success event's fields.
    ///
    /// # Errors
    ///
    /// Why the new value was refused (no secret values).
    fn reload(&self) -> Result<Value, String>;
}

/// Why the server cannot start with its reloadable state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[cfg(feature = "policy-file")]
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    /// `--reload-file` could not be created or watched.
    #[error("--reload-file `{}`: {source}", path.display())]
    ReloadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The SIGHUP handler could not be installed.
    #[error("cannot install the SIGHUP handler: {0}")]
    Signal(std::io::Error),
}

/// What one [`Reloader::reload_all`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Components that swapped in a new value.
    pub reloaded: Vec<&'static str>,
    /// Components that kept their old value, with the reason.
    pub failed: Vec<(&'static str, String)>,
}

impl ReloadReport {
    /// True when every component reloaded.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

#[cfg(feature = "tls")]
struct TlsCell {
    def: &'static TlsDef,
    current: ArcSwap<rustls::ServerConfig>,
}

#[cfg(feature = "tls")]
impl Reloadable for TlsCell {
    fn component(&self) -> &'static str {
        "tls"
    }
    fn event(&self) -> &'static str {
        "reload.tls"
    }
    fn reload(&self) -> Result<Value, String> {
        let config = crate::serve::tls::server_config(self.def).map_err(|e| e.to_string())?;
        self.current.store(config);
        Ok(json!({ "tls_active": true, "cert_file": self.def.cert_file }))
    }
}

struct AuthCell {
    defs: &'static AuthDefs,
    secrets: SecretLookup,
    current: ArcSwap<PreparedAuth>,
}

impl Reloadable for AuthCell {
    fn component(&self) -> &'static str {
        "auth"
    }
    fn event(&self) -> &'static str {
        "reload.auth"
    }
    fn reload(&self) -> Result<Value, String> {
        let prepared = PreparedAuth::prepare_with(self.defs, self.secrets.clone())
            .map_err(|e| e.to_string())?;
        self.current.store(Arc::new(prepared));
        Ok(json!({ "bindings": binding_count(self.defs) }))
    }
}

fn binding_count(defs: &AuthDefs) -> usize {
    let n = defs.bearer.len() + defs.basic.len();
    #[cfg(feature = "auth-hmac")]
    let n = n + defs.hmac.len();
    #[cfg(feature = "auth-oidc")]
    let n = n + defs.oidc.len();
    n
}

#[cfg(feature = "policy-file")]
struct PolicyCell(Arc<PolicyFile>);

#[cfg(feature = "policy-file")]
impl Reloadable for PolicyCell {
    fn component(&self) -> &'static str {
        "policy"
    }
    fn event(&self) -> &'static str {
        "reload.policy"
    }
    fn reload(&self) -> Result<Value, String> {
        self.0.reload().map_err(|e| e.to_string())?;
        #[cfg(feature = "secrets-oauth2")]
        crate::secrets::set_outbound_policy(Some((*self.0.current()).clone()));
        Ok(json!({ "path": self.0.path().display().to_string() }))
    }
}

/// The cached `[[secrets]]` sources (`command`, `oauth2`).
struct SecretsCell(&'static [crate::secrets::SecretDef]);

impl Reloadable for SecretsCell {
    fn component(&self) -> &'static str {
        "secrets"
    }
    fn event(&self) -> &'static str {
        "reload.secrets"
    }
    fn reload(&self) -> Result<Value, String> {
        crate::secrets::refresh(self.0).map_err(|e| e.to_string())?;
        Ok(json!({ "entries": self.0.len() }))
    }
}

/// The reloadable state of one server, and the registry of its components.
pub struct Reloader {
    #[cfg(feature = "tls")]
    tls: Option<Arc<TlsCell>>,
    auth: Arc<AuthCell>,
    #[cfg(feature = "policy-file")]
    policy: Option<Arc<PolicyFile>>,
    /// Every component, in reload order: tls, auth, policy, then registered ones.
    components: Mutex<Vec<Arc<dyn Reloadable>>>,
    /// Held for a whole pass, so passes never interleave.
    running: Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("components", &self.component_names())
            .finish_non_exhaustive()
    }
}

/// What a [`Reloader`] is built from.
pub struct ReloaderConfig {
    /// `[server.tls]`, if the workflow declares it ([`crate::Workflow::TLS`]).
    #[cfg(feature = "tls")]
    pub tls: Option<&'static TlsDef>,
    /// `[auth.*]` ([`crate::Workflow::AUTH`]).
    pub auth: &'static AuthDefs,
    /// Where `*_env` secrets are resolved ([`crate::serve::auth::env_secrets`]
    /// unless `[[secrets]]` supplies a store).
    pub secrets: SecretLookup,
    /// The `[[secrets]]` entries ([`crate::Workflow::SECRETS`]): a `secrets`
    /// component is registered when some are cached (`command`, `oauth2`).
    pub secret_defs: &'static [crate::secrets::SecretDef],
    /// `--policy FILE`, with the key it must be signed with
    /// ([`crate::graph::BuildInfo::policy_key`]).
    #[cfg(feature = "policy-file")]
    pub policy: Option<(PathBuf, Option<&'static [u8; 32]>)>,
}

impl std::fmt::Debug for ReloaderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloaderConfig").finish_non_exhaustive()
    }
}

impl ReloaderConfig {
    /// The baked TLS and auth of workflow `def`, its `[[secrets]]` (then the
    /// process environment) as the secret store, and `policy` (the `--policy`
    /// path, signed with `def.info.policy_key` when that is set).
    #[must_use]
    pub fn for_workflow(def: &crate::workflow::WorkflowDef, policy: Option<&Path>) -> Self {
        #[cfg(not(feature = "policy-file"))]
        let _ = policy;
        ReloaderConfig {
            #[cfg(feature = "tls")]
            tls: def.tls,
            auth: def.auth,
            secrets: Arc::new(crate::secrets::resolver(def.secrets)),
            secret_defs: def.secrets,
            #[cfg(feature = "policy-file")]
            policy: policy.map(|p| (p.to_path_buf(), def.info.policy_key)),
        }
    }
}

impl Reloader {
    /// Build every component once, at start.
    ///
    /// # Errors
    ///
    /// The first component that cannot be built: the server must not start
    /// (TLS files, JWKS, or a policy file that is bad or badly signed).
    pub fn new(config: ReloaderConfig) -> Result<Self, ReloadError> {
        let mut components: Vec<Arc<dyn Reloadable>> = Vec::new();
        if config.secret_defs.iter().any(|d| {
            matches!(
                d.source,
                crate::secrets::SecretSource::Command { .. }
                    | crate::secrets::SecretSource::OAuth2 { .. }
            )
        }) {
            components.push(Arc::new(SecretsCell(config.secret_defs)));
        }
        #[cfg(feature = "tls")]
        let tls = match config.tls {
            None => None,
            Some(def) => {
                let cell = Arc::new(TlsCell {
                    def,
                    current: ArcSwap::new(crate::serve::tls::server_config(def)?),
                });
                components.push(cell.clone());
                Some(cell)
            }
        };
        let auth = Arc::new(AuthCell {
            defs: config.auth,
            current: ArcSwap::from_pointee(PreparedAuth::prepare_with(
                config.auth,
                config.secrets.clone(),
            )?),
            secrets: config.secrets,
        });
        components.push(auth.clone());
        #[cfg(feature = "policy-file")]
        let policy = match config.policy {
            None => None,
            Some((path, key)) => {
                let file = Arc::new(PolicyFile::load(&path, key)?);
                components.push(Arc::new(PolicyCell(file.clone())));
                Some(file)
            }
        };
        Ok(Reloader {
            #[cfg(feature = "tls")]
            tls,
            auth,
            #[cfg(feature = "policy-file")]
            policy,
            components: Mutex::new(components),
            running: Mutex::new(()),
        })
    }

    /// The TLS config for a connection accepted now; `None` means the server
    /// was built without `[server.tls]` (and serves plaintext for its lifetime).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.as_ref().map(|c| c.current.load_full())
    }

    /// The auth material for a connection accepted (or request started) now.
    #[must_use]
    pub fn auth(&self) -> Arc<PreparedAuth> {
        self.auth.current.load_full()
    }

    /// The policy a run starting now must use: the current `--policy` file's,
    /// else the baked one.
    #[must_use]
    pub fn policy_mode(&self) -> PolicyMode {
        #[cfg(feature = "policy-file")]
        if let Some(file) = &self.policy {
            return PolicyMode::Override(file.current());
        }
        PolicyMode::Baked
    }

    /// Add a component (secrets registry, MCP clients, ...) to every later pass.
    pub fn register(&self, component: Arc<dyn Reloadable>) {
        lock(&self.components).push(component);
    }

    /// The components, in reload order.
    #[must_use]
    pub fn component_names(&self) -> Vec<&'static str> {
        lock(&self.components)
            .iter()
            .map(|c| c.component())
            .collect()
    }

    /// Rebuild every component, each on its own (see the module docs).
    pub fn reload_all(&self) -> ReloadReport {
        let _pass = lock(&self.running);
        let components: Vec<Arc<dyn Reloadable>> = lock(&self.components).clone();
        let names: Vec<&'static str> = components.iter().map(|c| c.component()).collect();
        crate::obs::audit("reload.started", json!({ "components": names }));
        let mut report = ReloadReport::default();
        for c in &components {
            match c.reload() {
                Ok(fields) => {
                    crate::obs::audit(c.event(), fields);
                    report.reloaded.push(c.component());
                }
                Err(reason) => {
                    crate::obs::audit(
                        "reload.failed",
                        json!({ "component": c.component(), "reason": reason }),
                    );
                    report.failed.push((c.component(), reason));
                }
            }
        }
        if report.ok() {
            crate::obs::audit("reload.succeeded", json!({ "components": report.reloaded }));
        } else {
            let failed: Vec<&str> = report.failed.iter().map(|(c, _)| *c).collect();
            crate::obs::audit(
                "reload.partial",
                json!({ "reloaded": report.reloaded, "failed": failed }),
            );
        }
        report
    }
}

/// A poisoned lock only means a panic elsewhere; the data (a list, a unit) is fine.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

mod triggers;

pub use triggers::{RELOAD_FILE_POLL, ReloadTriggers, spawn_reload_triggers};

#[cfg(test)]
mod tests;
