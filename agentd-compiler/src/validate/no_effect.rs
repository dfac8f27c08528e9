//! Keys that parse but would do nothing, and numbers the runtime cannot use (ours,
//! docs/dialect.md §15). "If it builds, it does what the file says": a key agentd accepts
//! for dialect-1 compatibility but does not act on is reported, never dropped quietly.
//!
//! - `key_has_no_effect` (warning; the message says why, the help how to fix it):
//!   `internal.event` triggers (they never fire), `[policy.fs]
//!   delete` / `list` (no node kind deletes or lists), `retry` on `call`, `parallel`,
//!   `map` and `pause_for_approval` (the engine retries only the other kinds), extra
//!   keys on `merge` / `terminate`, `[auth]` and `[server.tls]` in a workflow without
//!   routes, auth bindings no route names, `instructions_from` beside `instructions`
//!   (the literal wins), and every section of a *child* workflow that only the root's
//!   copy governs (a child runs inside its root's binary). (`[policy.rego]`,
//!   `[policy.mcp] servers` and route `input_schema` are enforced;
//!   `[[mcp_servers]]` that no node uses is reported by `validate/policy.rs`.)
//! - `invalid_retry` (error): a `retry.jitter` that is not a finite number ≥ 0 (it
//!   would also make code generation fail);
//! - `retry_jitter_clamped` (warning): a `retry.jitter` above 0.5, which the runtime
//!   clamps to 0.5.
//!
//! Never reports a key the runtime acts on: the key registry
//! (`crate::keys`, checked by `tests/keys.rs`) lists each key as honoured or as
//! diagnosed with the code that reports it.

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::grammar::{AuthRef, AuthScheme, parse_auth_ref};
use crate::loc;
use crate::model::{NodeKind, Trigger};
use crate::source::Seg;

/// The largest jitter the runtime applies; larger values are clamped to it.
pub const MAX_JITTER: f32 = 0.5;

impl Validator<'_> {
    fn no_effect(&mut self, loc: Vec<Seg>, message: String, help: &str) {
        let d = Diagnostic::new(Code::KeyHasNoEffect, self.path(), message)
            .with_span(self.key_span(loc))
            .with_label("has no effect")
            .with_help(help.to_string());
        self.push(d);
    }

    pub(super) fn check_retry_numbers(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            let Some(j) = n.retry.as_ref().and_then(|r| r.jitter) else {
                continue;
            };
            let span = self.span(loc!["nodes", i, "retry", "jitter"]);
            if !j.is_finite() || j < 0.0 {
                let d = Diagnostic::new(
                    Code::InvalidRetry,
                    self.path(),
                    format!(
                        "node `{}`: retry.jitter = {j} is not a number between 0 and {MAX_JITTER}",
                        n.id
                    ),
                )
                .with_span(span)
                .with_label("not a finite, non-negative fraction")
                .with_help(
                    "jitter spreads each backoff by up to ± this fraction of it: write a number \
                     from 0.0 (no spread) to 0.5, e.g. `jitter = 0.2`",
                );
                self.push(d);
            } else if j > MAX_JITTER {
                let d = Diagnostic::new(
                    Code::RetryJitterClamped,
                    self.path(),
                    format!(
                        "node `{}`: retry.jitter = {j} is above {MAX_JITTER}; the runtime uses {MAX_JITTER}",
                        n.id
                    ),
                )
                .with_span(span)
                .with_label("clamped to 0.5")
                .with_help("write `jitter = 0.5` (the largest spread the runtime applies)");
                self.push(d);
            }
        }
    }

    pub(super) fn check_keys_without_effect(&mut self) {
        if self.parent.is_some() {
            self.check_child_sections();
        } else {
            self.check_dormant_triggers();
            self.check_auth_without_routes();
        }
        self.check_fs_delete_list();
        self.check_node_keys_without_effect();
    }

    /// Triggers dialect 1 accepts but never fires.
    fn check_dormant_triggers(&mut self) {
        for (i, t) in self.doc.triggers.iter().enumerate() {
            let what = match t {
                Trigger::InternalEvent(_) => "nothing publishes internal events",
                _ => continue,
            };
            self.no_effect(
                loc!["triggers", i, "type"],
                format!(
                    "trigger `{}` never fires: {what}; it is accepted for dialect-1 compatibility only",
                    t.type_name()
                ),
                "remove the trigger, or start the run another way: a `cron`, `interval`, \
                 `fs_watch` or `mcp.resource.*` trigger, an [[http_routes]] entry, or a one-shot run",
            );
        }
    }

    fn check_fs_delete_list(&mut self) {
        for key in ["delete", "list"] {
            if self.has_key(loc!["policy", "fs", key]) {
                let msg = format!(
                    "[policy.fs] {key} grants nothing: no node kind {}s files",
                    if key == "delete" { "delete" } else { "list" }
                );
                self.no_effect(
                    loc!["policy", "fs", key],
                    msg,
                    "remove the key; `read` and `write` are the fs permissions nodes check",
                );
            }
        }
    }

    fn check_node_keys_without_effect(&mut self) {
        for (i, n) in self.doc.nodes.iter().enumerate() {
            match &n.kind {
                NodeKind::Call(_)
                | NodeKind::Parallel(_)
                | NodeKind::Map(_)
                | NodeKind::PauseForApproval(_)
                    if n.retry.is_some() =>
                {
                    self.no_effect(
                        loc!["nodes", i, "retry"],
                        format!(
                            "node `{}`: `retry` is not applied to `{}` nodes (the engine retries only \
                             nodes that do their own work)",
                            n.id,
                            n.kind.type_name()
                        ),
                        "remove `retry`; to retry a child workflow's step, put `retry` on that node \
                         in the child, or route the `error` branch back with a loop edge",
                    );
                }
                NodeKind::Merge | NodeKind::Terminate => {
                    let extra: Vec<String> = self
                        .file
                        .keys_of(&[Seg::key("nodes"), Seg::Index(i)])
                        .into_iter()
                        .map(|(k, _)| k)
                        .filter(|k| !matches!(k.as_str(), "id" | "type" | "retry"))
                        .collect();
                    for key in extra {
                        self.no_effect(
                            loc!["nodes", i, key.as_str()],
                            format!(
                                "node `{}`: `{key}` is ignored; `{}` nodes take no keys",
                                n.id,
                                n.kind.type_name()
                            ),
                            "remove the key (a comment keeps a note without pretending to configure \
                             anything)",
                        );
                    }
                }
                NodeKind::AgentLoop(a)
                    if a.instructions.is_some() && a.instructions_from.is_some() =>
                {
                    self.no_effect(
                        loc!["nodes", i, "instructions_from"],
                        format!(
                            "node `{}`: `instructions_from` is ignored because `instructions` is \
                             set (the literal wins)",
                            n.id
                        ),
                        "keep one of them: `instructions` for a fixed task, `instructions_from` \
                         for a task read from the context",
                    );
                }
                _ => {}
            }
        }
    }

    /// `[auth]` and `[server.tls]` configure serve mode's HTTP listener, which only
    /// routes open; bindings no route names are never consulted.
    fn check_auth_without_routes(&mut self) {
        let has_routes = !self.doc.http_routes.is_empty();
        if !has_routes {
            if self.doc.auth.is_some() {
                self.no_effect(
                    loc!["auth"],
                    "[auth] has no effect: the workflow has no [[http_routes]] to authenticate".into(),
                    "remove [auth], or add the [[http_routes]] it should protect with `auth = \"<scheme>[:<name>]\"`",
                );
            }
            if self.doc.server.as_ref().is_some_and(|s| s.tls.is_some()) {
                self.no_effect(
                    loc!["server", "tls"],
                    "[server.tls] has no effect: the workflow has no [[http_routes]], so the binary \
                     serves no HTTPS"
                        .into(),
                    "remove [server.tls], or add the [[http_routes]] it should serve",
                );
            }
            return;
        }
        let used: Vec<(AuthScheme, String)> = self
            .doc
            .http_routes
            .iter()
            .filter_map(|r| r.auth.as_deref())
            .filter_map(|a| match parse_auth_ref(a) {
                Ok(AuthRef::Binding { scheme, name }) => Some((scheme, name)),
                _ => None,
            })
            .collect();
        let Some(auth) = &self.doc.auth else {
            return;
        };
        let declared: Vec<(AuthScheme, &String)> = [
            (AuthScheme::Bearer, auth.bearer.keys().collect::<Vec<_>>()),
            (AuthScheme::Basic, auth.basic.keys().collect()),
            (AuthScheme::Hmac, auth.hmac.keys().collect()),
            (AuthScheme::Oidc, auth.oidc.keys().collect()),
        ]
        .into_iter()
        .flat_map(|(s, names)| names.into_iter().map(move |n| (s, n)))
        .collect();
        for (scheme, name) in declared {
            if used.iter().any(|(s, n)| *s == scheme && n == name) {
                continue;
            }
            let reference = if name == "default" {
                scheme.as_str().to_string()
            } else {
                format!("{}:{name}", scheme.as_str())
            };
            self.no_effect(
                loc!["auth", scheme.as_str(), name.as_str()],
                format!(
                    "[auth.{}.{name}] is never used: no route has `auth = \"{reference}\"`",
                    scheme.as_str()
                ),
                "name the binding on the route it should protect, or remove it",
            );
        }
    }

    /// A child workflow runs inside its root's binary: the root's sections govern. A
    /// child section identical to the root's (a child that also builds on its own,
    /// with the same settings) changes nothing and is not reported.
    fn check_child_sections(&mut self) {
        let doc = self.doc;
        let root = self.root;
        // Compared through `Debug`, which prints every field in declaration order
        // (maps are `BTreeMap`s), so equal text means equal settings.
        let differs =
            |f: &dyn Fn(&crate::model::WorkflowDoc) -> String| root.is_none_or(|r| f(r) != f(doc));
        let sections: [(&str, bool, &str); 11] = [
            (
                "policy",
                doc.policy.is_some() && differs(&|d| format!("{:?}", d.policy)),
                "only the root's [policy] is enforced, for every workflow of the binary",
            ),
            (
                "budget",
                doc.budget.is_some() && differs(&|d| format!("{:?}", d.budget)),
                "the root's [budget] limits the whole process",
            ),
            (
                "signing",
                doc.signing.as_ref().is_some_and(|s| !s.required)
                    && differs(&|d| format!("{:?}", d.signing)),
                "the root's [signing] (or `--signing-required`) decides which files must be signed",
            ),
            (
                "auth",
                doc.auth.is_some() && differs(&|d| format!("{:?}", d.auth)),
                "only the root's [[http_routes]] and [auth] are served",
            ),
            (
                "server",
                doc.server.is_some() && differs(&|d| format!("{:?}", d.server)),
                "only the root's [server.tls] is served",
            ),
            (
                "http_routes",
                !doc.http_routes.is_empty(),
                "only the root's [[http_routes]] are served",
            ),
            (
                "triggers",
                !doc.triggers.is_empty(),
                "only the root's [[triggers]] fire",
            ),
            (
                "logging",
                doc.logging.is_some() && differs(&|d| format!("{:?}", d.logging)),
                "the root's [logging] configures the binary's logs",
            ),
            (
                "mcp_servers",
                !doc.mcp_servers.is_empty() && differs(&|d| format!("{:?}", d.mcp_servers)),
                "MCP nodes of every workflow use the root's [[mcp_servers]]",
            ),
            (
                "intelligence",
                doc.intelligence.is_some() && differs(&|d| format!("{:?}", d.intelligence)),
                "LLM nodes of every workflow use the root's [[intelligence.backends]]",
            ),
            (
                "secrets",
                !doc.secrets.is_empty() && differs(&|d| format!("{:?}", d.secrets)),
                "secrets are resolved through the root's [[secrets]]",
            ),
        ];
        for (key, report, governs) in sections {
            if report && self.file.key_span_of(&[Seg::key(key)]).is_some() {
                self.no_effect(
                    loc![key],
                    format!("`{key}` in a child workflow has no effect: {governs}"),
                    "move the setting to the root workflow (the file you build), or remove it here",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes::Code;
    use crate::diagnostics::{Diagnostic, Severity};
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate, validate_child_of};

    const BASE: &str =
        "name = \"x\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n";

    fn diags(text: &str) -> Vec<Diagnostic> {
        let r = parse_str(Path::new("wf.toml"), text);
        let doc = r
            .doc
            .unwrap_or_else(|| panic!("parse failed: {:?}", r.diagnostics));
        validate(&r.source, &doc, &ValidateOptions::default())
    }

    /// The `(severity, spanned text)` of every diagnostic with `code`.
    fn found(text: &str, code: Code) -> Vec<(Severity, &str)> {
        diags(text)
            .into_iter()
            .filter(|d| d.code == code)
            .map(|d| (d.severity, d.span.and_then(|s| text.get(s)).unwrap_or("")))
            .collect()
    }

    fn no_effect(text: &str) -> Vec<&str> {
        found(text, Code::KeyHasNoEffect)
            .into_iter()
            .map(|(sev, t)| {
                assert_eq!(sev, Severity::Warning);
                t
            })
            .collect()
    }

    fn node(kind: &str, extra: &str) -> String {
        format!("{BASE}[[nodes]]\nid = \"n\"\ntype = \"{kind}\"\n{extra}")
    }

    #[test]
    fn jitter_that_is_not_a_finite_non_negative_number_is_an_error() {
        for bad in ["nan", "inf", "-inf", "-0.1"] {
            let text = node(
                "read_env",
                &format!("key = \"K\"\nretry = {{ max_attempts = 2, jitter = {bad} }}\n"),
            );
            assert_eq!(
                found(&text, Code::InvalidRetry),
                [(Severity::Error, bad)],
                "{bad}"
            );
        }
    }

    #[test]
    fn jitter_above_one_half_warns_that_it_is_clamped() {
        let text = node(
            "read_env",
            "key = \"K\"\nretry = { max_attempts = 2, jitter = 0.75 }\n",
        );
        assert_eq!(
            found(&text, Code::RetryJitterClamped),
            [(Severity::Warning, "0.75")]
        );
        let fine = node(
            "read_env",
            "key = \"K\"\nretry = { max_attempts = 2, jitter = 0.5 }\n",
        );
        assert!(found(&fine, Code::RetryJitterClamped).is_empty());
        assert!(found(&fine, Code::InvalidRetry).is_empty());
    }

    #[test]
    fn internal_event_triggers_never_fire_but_mcp_resource_triggers_do() {
        let text = format!(
            "{BASE}[[nodes]]\nid = \"n\"\ntype = \"merge\"\n\
             [[mcp_servers]]\nname = \"s\"\ncommand = [\"/bin/s\"]\n\
             [[triggers]]\ntype = \"mcp.resource.updated\"\nserver = \"s\"\nresource = \"file:///x\"\nstart_node = \"main\"\n\
             [[triggers]]\ntype = \"internal.event\"\nname = \"e\"\nstart_node = \"main\"\n\
             [[triggers]]\ntype = \"interval\"\nevery = \"5m\"\nstart_node = \"main\"\n"
        );
        // The resource trigger fires, and it uses the server it names.
        assert_eq!(no_effect(&text), ["type"]);
        let messages: Vec<String> = diags(&text)
            .into_iter()
            .filter(|d| d.code == Code::KeyHasNoEffect)
            .map(|d| d.message)
            .collect();
        assert!(
            messages[0].contains("`internal.event` never fires"),
            "{messages:?}"
        );
    }

    #[test]
    fn fs_delete_and_list_grant_nothing() {
        let text = format!(
            "{BASE}[policy.fs]\nread = [\"/d/**\"]\ndelete = [\"/d/**\"]\nlist = []\n[[nodes]]\nid = \"n\"\ntype = \"merge\"\n"
        )
        .replace("[policy]\n", "");
        assert_eq!(no_effect(&text), ["delete", "list"]);
    }

    #[test]
    fn retry_on_engine_internal_kinds_is_not_applied() {
        for (kind, keys) in [
            ("call", "workflow = \"c.toml\"\n"),
            (
                "map",
                "items_from = \"trigger.xs\"\nworkflow = \"c.toml\"\nmax_items = 2\n",
            ),
            ("parallel", "branches = [{ workflow = \"c.toml\" }]\n"),
            ("pause_for_approval", ""),
        ] {
            let text = node(kind, &format!("{keys}retry = {{ max_attempts = 3 }}\n"));
            assert_eq!(no_effect(&text), ["retry"], "{kind}");
        }
        let honoured = node("read_env", "key = \"K\"\nretry = { max_attempts = 3 }\n");
        assert!(no_effect(&honoured).is_empty());
    }

    #[test]
    fn extra_keys_on_merge_and_terminate_are_reported_one_by_one() {
        let text = node("merge", "reason = \"x\"\nwait_for = [\"a\"]\n");
        assert_eq!(no_effect(&text), ["reason", "wait_for"]);
        let text = node("terminate", "status = 3\n");
        assert_eq!(no_effect(&text), ["status"]);
        assert!(no_effect(&node("terminate", "")).is_empty());
    }

    #[test]
    fn instructions_from_beside_instructions_is_ignored() {
        let text = node(
            "agent_loop",
            "backend = \"default\"\ninstructions = \"do it\"\ninstructions_from = \"trigger.task\"\ntools = [\"read_env\"]\nmax_steps = 2\n",
        );
        assert_eq!(no_effect(&text), ["instructions_from"]);
    }

    #[test]
    fn auth_and_tls_without_routes_and_unused_bindings_are_reported() {
        let text = format!(
            "{BASE}[[nodes]]\nid = \"n\"\ntype = \"merge\"\n[auth.bearer.api]\ntokens_env = \"T\"\n\
             [server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
        );
        assert_eq!(no_effect(&text), ["auth", "tls"]);

        let routed = format!(
            "{BASE}[[nodes]]\nid = \"n\"\ntype = \"merge\"\n\
             [[http_routes]]\nmethod = \"POST\"\npath = \"/a\"\nstart_node = \"main\"\nauth = \"bearer:api\"\n\
             [[http_routes]]\nmethod = \"POST\"\npath = \"/b\"\nstart_node = \"main\"\nauth = \"basic\"\n\
             [auth.bearer.api]\ntokens_env = \"T\"\n[auth.bearer.spare]\ntokens_env = \"U\"\n\
             [auth.basic.default]\ncredentials_env = \"C\"\n"
        );
        assert_eq!(no_effect(&routed), ["spare"]);
    }

    #[test]
    fn rego_mcp_servers_and_input_schema_are_enforced_not_reported_as_without_effect() {
        let text = format!(
            "{BASE}[policy.rego]\ninline = \"package agentd\\ndefault allow = false\"\n\
             [policy.mcp]\nservers = [\"gh\"]\n\
             [[http_routes]]\nmethod = \"POST\"\npath = \"/a\"\nstart_node = \"main\"\ninput_schema = \"s.json\"\n\
             [[nodes]]\nid = \"n\"\ntype = \"merge\"\n"
        )
        .replace("[policy]\n", "");
        // All three are enforced (validate/policy.rs and validate/routes.rs check them).
        assert!(no_effect(&text).is_empty(), "{:?}", no_effect(&text));
    }

    fn child_diags(root: &str, child: &str) -> Vec<String> {
        let r = parse_str(Path::new("root.toml"), root);
        let root_doc = r.doc.expect("root parses");
        let c = parse_str(Path::new("child.toml"), child);
        let doc = c.doc.expect("child parses");
        validate_child_of(&c.source, &doc, &ValidateOptions::default(), &root_doc)
            .into_iter()
            .filter(|d| d.code == Code::KeyHasNoEffect)
            .map(|d| d.span.and_then(|s| child.get(s)).unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_childs_own_sections_are_reported_unless_identical_to_the_roots() {
        let root = format!(
            "{BASE}[policy.env]\nread_keys = [\"A\"]\n[[nodes]]\nid = \"n\"\ntype = \"merge\"\n"
        )
        .replace("[policy]\n", "");
        let child = "name = \"c\"\n[policy.env]\nread_keys = [\"B\"]\n[budget]\nmax_cpu_secs = 1\n\
             [signing]\npublic_key_file = \"k.pub\"\n[logging]\nlevel = \"info\"\n\
             [[triggers]]\ntype = \"interval\"\nevery = \"1m\"\nstart_node = \"main\"\n\
             [[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"n\"\ntype = \"merge\"\n";
        assert_eq!(
            child_diags(&root, child),
            ["policy", "budget", "signing", "triggers", "logging"]
        );
        // The same [policy] as the root's changes nothing: not reported.
        let same = child.replace("\"B\"", "\"A\"");
        assert!(!child_diags(&root, &same).contains(&"policy".to_string()));
        // `[signing] required = true` is honoured (the child's signature is verified).
        let required = child.replace("[signing]\n", "[signing]\nrequired = true\n");
        assert!(!child_diags(&root, &required).contains(&"signing".to_string()));
    }
}
