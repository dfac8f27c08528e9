//! The runtime's Cargo features, as codegen names them: the [`RuntimeFeature`] enum
//! (one variant per feature of agentd-runtime/Cargo.toml that codegen may enable),
//! the set a program needs (computed by [`super::program_features`], which asks each
//! section in `codegen/sections/` for the features of the code it emits) and the
//! feature each node kind's runtime function sits behind.
//!
//! A leaf: the section lowerers name features through this module, and the
//! computation that asks each of them lives in `codegen/mod.rs`. A test reads
//! agentd-runtime/Cargo.toml and checks both directions: every variant is a feature
//! there, and every feature there is a variant or one codegen never enables.

use std::collections::BTreeSet;

use crate::model::NodeKind;

/// Declares [`RuntimeFeature`] from one table of `Variant = "cargo-name"`. Variants
/// are listed in name order, so the derived `Ord` (and so every [`Features`] set and
/// the generated Cargo.toml) sorts by Cargo name.
macro_rules! runtime_features {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// A Cargo feature of agentd-runtime that codegen may enable.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuntimeFeature {
            $( $(#[$doc])* $variant, )*
        }

        impl RuntimeFeature {
            /// Every feature, in name order.
            pub const ALL: &'static [RuntimeFeature] = &[$(RuntimeFeature::$variant),*];

            /// The feature's name in agentd-runtime/Cargo.toml.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(RuntimeFeature::$variant => $name,)* }
            }
        }
    };
}

runtime_features! {
    /// `[auth.hmac.*]` route authentication.
    AuthHmac = "auth-hmac",
    /// `[auth.oidc.*]` route authentication.
    AuthOidc = "auth-oidc",
    /// `parse_json`, `template_render`, `json_select`, `diff_compute`.
    Data = "data",
    /// `read_env`.
    Env = "env",
    /// `agentd build --fleet`: serve-mode state shared through Redis.
    Fleet = "fleet",
    /// `read_file`, `write_file`, `create_dir`.
    Fs = "fs",
    /// `[[triggers]] type = "fs_watch"`.
    FsWatch = "fs-watch",
    /// The `agentd test` scenario runner (never in shipped binaries).
    Harness = "harness",
    /// `http_request`.
    Http = "http",
    /// A route's `input_schema`.
    InputSchema = "input-schema",
    /// `llm_infer`, `agent_loop`.
    Llm = "llm",
    /// `[[intelligence.backends]]`: remote providers.
    LlmRemote = "llm-remote",
    /// `call_mcp_tool`, `read_mcp_resource`, MCP resource triggers.
    Mcp = "mcp",
    /// `[[mcp_servers]] url = ...`: the Streamable HTTP transport.
    McpHttp = "mcp-http",
    /// `[mcp_servers.oauth]`.
    McpOauth = "mcp-oauth",
    /// `[logging.otel]`: OTLP export of spans.
    Otel = "otel",
    /// An `https://` OTLP endpoint.
    OtelTls = "otel-tls",
    /// `--policy FILE` overrides (`agentd build --policy-overrides`).
    PolicyFile = "policy-file",
    /// `[policy.rego]`.
    Rego = "rego",
    /// The kernel sandbox (unless `[sandbox] mode = "off"`).
    Sandbox = "sandbox",
    /// `[[triggers]] type = "cron"`.
    ScheduleCron = "schedule-cron",
    /// `llm_infer` `output_schema` files.
    Schema = "schema",
    /// `[[secrets]] source = "command"`.
    SecretsExec = "secrets-exec",
    /// `[[secrets]] source = "oauth2"`.
    SecretsOauth2 = "secrets-oauth2",
    /// Serve mode: routes and long-lived triggers.
    Serve = "serve",
    /// `shell_run`.
    Shell = "shell",
    /// Signed policy override files.
    Signing = "signing",
    /// `[server.tls]`.
    Tls = "tls",
}

impl RuntimeFeature {
    /// Whether this family is compiled into every runtime, so that naming it as a
    /// Cargo feature would change nothing but the runtime's feature set: `fs`, `env`
    /// and `data` (std only; a binary links only the node functions its graph
    /// calls). It is still a capability of the program ([`program_features`] and
    /// `BuildInfo`), but [`cargo_features`] leaves it out, so that workflows that
    /// differ only in these families share one compiled runtime
    /// (docs/performance.md, "Fewer feature sets").
    ///
    /// [`program_features`]: super::program_features
    #[must_use]
    pub const fn always_compiled(self) -> bool {
        matches!(
            self,
            RuntimeFeature::Fs | RuntimeFeature::Env | RuntimeFeature::Data
        )
    }
}

/// The features to enable on agentd-runtime for a program needing `features`: all
/// of them but the [always compiled](RuntimeFeature::always_compiled) ones.
pub fn cargo_features(features: &[RuntimeFeature]) -> impl Iterator<Item = RuntimeFeature> + '_ {
    features.iter().copied().filter(|f| !f.always_compiled())
}

impl std::fmt::Display for RuntimeFeature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runtime Cargo features a program needs, in name order.
pub type Features = BTreeSet<RuntimeFeature>;

/// The runtime feature a node kind needs, if any (control and composition are always
/// compiled in).
pub fn feature_of(kind: &NodeKind) -> Option<RuntimeFeature> {
    match kind {
        NodeKind::ReadFile(_) | NodeKind::WriteFile(_) | NodeKind::CreateDir(_) => {
            Some(RuntimeFeature::Fs)
        }
        NodeKind::ReadEnv(_) => Some(RuntimeFeature::Env),
        NodeKind::ParseJson(_)
        | NodeKind::TemplateRender(_)
        | NodeKind::JsonSelect(_)
        | NodeKind::DiffCompute(_) => Some(RuntimeFeature::Data),
        NodeKind::LlmInfer(_) | NodeKind::AgentLoop(_) => Some(RuntimeFeature::Llm),
        NodeKind::CallMcpTool(_) | NodeKind::ReadMcpResource(_) => Some(RuntimeFeature::Mcp),
        NodeKind::HttpRequest(_) => Some(RuntimeFeature::Http),
        NodeKind::ShellRun(_) => Some(RuntimeFeature::Shell),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::RuntimeFeature;

    /// Features of agentd-runtime that codegen never enables by name: `default`,
    /// `oauth` (only through `secrets-oauth2` and `mcp-oauth`), `macros` (chosen by
    /// the crate that embeds a workflow with `agentd!`) and `fuzzing` (cargo-fuzz).
    const NEVER_REQUESTED: [&str; 4] = ["default", "oauth", "macros", "fuzzing"];

    /// The names of agentd-runtime's `[features]`.
    fn runtime_cargo_features() -> BTreeSet<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../agentd-runtime/Cargo.toml");
        let text = std::fs::read_to_string(path).expect("read agentd-runtime/Cargo.toml");
        let manifest: toml::Table = toml::from_str(&text).expect("agentd-runtime/Cargo.toml");
        manifest["features"]
            .as_table()
            .expect("agentd-runtime/Cargo.toml has [features]")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn every_variant_is_a_feature_of_the_runtime() {
        let cargo = runtime_cargo_features();
        for f in RuntimeFeature::ALL {
            assert!(
                cargo.contains(f.as_str()),
                "RuntimeFeature::{f:?} (`{f}`) is not a feature of agentd-runtime"
            );
        }
    }

    #[test]
    fn every_runtime_feature_codegen_may_request_is_a_variant() {
        let variants: BTreeSet<&str> = RuntimeFeature::ALL.iter().map(|f| f.as_str()).collect();
        for name in runtime_cargo_features() {
            assert!(
                variants.contains(name.as_str()) || NEVER_REQUESTED.contains(&name.as_str()),
                "agentd-runtime feature `{name}` has no RuntimeFeature variant; add one (or \
                 list it in NEVER_REQUESTED if codegen never enables it by name)"
            );
        }
        for name in NEVER_REQUESTED {
            assert!(
                !variants.contains(name),
                "`{name}` is both a variant and never requested"
            );
        }
    }

    #[test]
    fn variants_sort_by_their_cargo_name() {
        // The generated Cargo.toml lists features in set order; keeping it the name
        // order keeps build cache keys stable.
        let names: Vec<&str> = RuntimeFeature::ALL.iter().map(|f| f.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(RuntimeFeature::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
