//! `[policy.rego]` and `[[mcp_servers]]` checks (ours, docs/dialect.md §12.1 and
//! §12.7): a security block that would be ignored, or that would deny everything
//! because it does not compile, is a build error; a server the policy can never let
//! a node use is a warning.
//!
//! - `rego_source_conflict`, `rego_source_missing`: `inline` and `file` together, or
//!   neither;
//! - `rego_file_unreadable`: `file` cannot be read (it is read at build time and
//!   baked; the binary never reads it);
//! - `rego_data_invalid`: `data` is not a table;
//! - `rego_syntax_error`: the policy does not compile (span into the inline text, or
//!   into the file);
//! - `rego_query_invalid`: `query` does not parse;
//! - `dup_mcp_server_name`, `invalid_mcp_server`: two servers with one name, an
//!   empty name, an empty `command`;
//! - `mcp_server_not_in_policy`: under a `[policy]`, a server `[policy.mcp] servers`
//!   does not list (every call to it is denied);
//! - `key_has_no_effect`: `[[mcp_servers]]` in a workflow whose nodes never use MCP.

use std::collections::HashMap;

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::loc;
use crate::model::{NodeKind, Trigger};
use crate::resolve::rego::{RegoProblem, inline_offset, resolve};

impl Validator<'_> {
    pub(super) fn check_policy_rego(&mut self) {
        let Some(rego) = self.doc.policy.as_ref().and_then(|p| p.rego.as_ref()) else {
            return;
        };
        let Err(problem) = resolve(rego, &self.opts.base_dir, &self.opts.cwd) else {
            return;
        };
        let table = self
            .key_span(loc!["policy", "rego"])
            .or_else(|| self.span(loc!["policy", "rego"]));
        let d = match problem {
            RegoProblem::Conflict => Diagnostic::new(
                Code::RegoSourceConflict,
                self.path(),
                "[policy.rego] sets both `inline` and `file`",
            )
            .with_span(self.span(loc!["policy", "rego", "file"]).or(table))
            .with_label("and `inline` is set too")
            .with_help("keep one: the policy text in `inline`, or a path to it in `file`"),
            RegoProblem::Missing => Diagnostic::new(
                Code::RegoSourceMissing,
                self.path(),
                "[policy.rego] has neither `inline` nor `file`, so there is no policy to enforce",
            )
            .with_span(table)
            .with_label("no Rego policy text")
            .with_help(
                "add `inline = '''package agent ...'''` or `file = \"policy.rego\"`, or remove \
                 [policy.rego]",
            ),
            RegoProblem::Unreadable { tried, error } => Diagnostic::new(
                Code::RegoFileUnreadable,
                self.path(),
                format!(
                    "[policy.rego] file `{}` cannot be read: {error}",
                    rego.file.as_deref().unwrap_or_default()
                ),
            )
            .with_span(self.span(loc!["policy", "rego", "file"]))
            .with_label("read at build time and baked into the binary")
            .with_help(format!(
                "tried {}; a relative path is resolved against the workflow's directory, \
                 then the working directory",
                tried
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
            RegoProblem::DataNotTable { found } => Diagnostic::new(
                Code::RegoDataInvalid,
                self.path(),
                format!("[policy.rego] data must be a table (Rego's `data` document); found {found}"),
            )
            .with_span(self.span(loc!["policy", "rego", "data"]))
            .with_label("not a table")
            .with_help("write it as a table: `data = { allowed = [\"HOME\"] }` or [policy.rego.data]"),
            RegoProblem::Query { message } => Diagnostic::new(
                Code::RegoQueryInvalid,
                self.path(),
                format!("[policy.rego] query does not parse: {message}"),
            )
            .with_span(self.span(loc!["policy", "rego", "query"]))
            .with_label("not a Rego query")
            .with_help("name the rule that decides, e.g. `query = \"data.agent.allow\"` (the default)"),
            RegoProblem::Syntax {
                file: Some(path),
                message,
                offset,
            } => Diagnostic::new(
                Code::RegoSyntaxError,
                &path,
                format!("[policy.rego] file `{}` does not compile: {message}", path.display()),
            )
            .with_span(offset.map(|o| o..o + 1))
            .with_label(message.clone())
            .with_note(format!("referenced by [policy.rego] in {}", self.path().display()))
            .with_help("fix the Rego policy; it is compiled at build time with the interpreter the binary runs"),
            RegoProblem::Syntax {
                file: None,
                message,
                offset,
            } => {
                let value = self.span(loc!["policy", "rego", "inline"]);
                let text = rego.inline.as_deref().unwrap_or_default();
                let precise = value.clone().zip(offset).and_then(|(span, o)| {
                    inline_offset(&self.file.text, span, text, o).map(|at| at..at + 1)
                });
                Diagnostic::new(
                    Code::RegoSyntaxError,
                    self.path(),
                    format!("[policy.rego] inline policy does not compile: {message}"),
                )
                .with_span(precise.or(value))
                .with_label(message.clone())
                .with_help("fix the Rego policy; it is compiled at build time with the interpreter the binary runs")
            }
        };
        self.push(d);
    }

    /// `command` xor `url`, a usable URL the policy allows, headers as
    /// `http_request`'s, a positive `timeout_secs`.
    fn check_mcp_transport(&mut self, i: usize) {
        let s = &self.doc.mcp_servers[i];
        let name = s.name.clone();
        let invalid = |this: &Self, key: &str, message: String, label: &str, help: &str| {
            Diagnostic::new(Code::InvalidMcpServer, this.path(), message)
                .with_span(
                    this.span(loc!["mcp_servers", i, key])
                        .or_else(|| this.span(loc!["mcp_servers", i, "name"])),
                )
                .with_label(label.to_owned())
                .with_help(help.to_owned())
        };
        let has_command = !s.command.is_empty();
        match (&s.url, has_command) {
            (Some(_), true) => {
                let d = invalid(
                    self,
                    "url",
                    format!("mcp_server `{name}` sets both `command` and `url`"),
                    "and `command` is set too",
                    "keep one: `command` starts a local server over stdio, `url` reaches a \
                     remote one over Streamable HTTP",
                );
                self.push(d);
            }
            (None, _) if s.command.first().is_none_or(|p| p.trim().is_empty()) => {
                let d = invalid(
                    self,
                    "command",
                    format!(
                        "mcp_server `{name}` has no program to run and no URL: set `command` or `url`"
                    ),
                    "nothing to start",
                    "set `command` to the server's argv, e.g. [\"/usr/local/bin/tracker-mcp\", \
                     \"--stdio\"], or `url` to its Streamable HTTP endpoint",
                );
                self.push(d);
            }
            _ => {}
        }
        if let Some(url) = &s.url {
            let lower = url.trim().to_ascii_lowercase();
            let host = lower
                .strip_prefix("https://")
                .or_else(|| lower.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/'))
                || url.contains(char::is_whitespace)
            {
                let d = invalid(
                    self,
                    "url",
                    format!("mcp_server `{name}`: `{url}` is not an http:// or https:// URL"),
                    "not a URL the client can reach",
                    "write the server's endpoint, e.g. \"https://mcp.example.com/mcp\"",
                );
                self.push(d);
            } else if let Some(policy) = &self.doc.policy
                && let Some(why) = policy_http_refuses(&policy.http, url)
            {
                let d = Diagnostic::new(
                    Code::McpUrlNotAllowed,
                    self.path(),
                    format!("mcp_server `{name}`: `{url}` is not allowed by [policy.http]: {why}"),
                )
                .with_span(self.span(loc!["mcp_servers", i, "url"]))
                .with_label("outside [policy.http]")
                .with_help(format!(
                    "add a pattern covering it to [policy.http] urls (e.g. \"{url}\") — a remote \
                     MCP server is an outgoing HTTP effect like http_request"
                ));
                self.push(d);
            }
        } else if !s.headers.is_empty() {
            let d = invalid(
                self,
                "headers",
                format!("mcp_server `{name}` sets `headers` but is a stdio server"),
                "only sent to a `url` server",
                "remove `headers`, or pass values to a stdio server with `env`",
            );
            self.push(d);
        }
        if s.timeout_secs == Some(0) {
            let d = invalid(
                self,
                "timeout_secs",
                format!("mcp_server `{name}`: `timeout_secs` must be at least 1"),
                "zero",
                "set the seconds one exchange may take, or remove the key to use the run timeout",
            );
            self.push(d);
        }
        let headers: Vec<(String, String)> = s
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (hname, value) in headers {
            let hloc = loc!["mcp_servers", i, "headers", hname.as_str()];
            let valid_name = !hname.is_empty()
                && hname
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_name {
                let d = Diagnostic::new(
                    Code::HttpHeaderBadName,
                    self.path(),
                    format!("mcp_server `{name}`: header name `{hname}` must match [A-Za-z0-9_-]+"),
                )
                .with_span(self.key_span(hloc.clone()))
                .with_label("invalid header name")
                .with_help("header names may contain only ASCII letters, digits, `-` and `_`");
                self.push(d);
            }
            if value.contains(['\r', '\n']) {
                let d = Diagnostic::new(
                    Code::HttpHeaderCrlf,
                    self.path(),
                    format!("mcp_server `{name}`: header `{hname}` value contains CR or LF"),
                )
                .with_span(self.span(hloc.clone()))
                .with_label("line break in a header value")
                .with_help(
                    "remove the line breaks; a CR/LF would let the value inject extra headers",
                );
                self.push(d);
            }
            if let Err(why) = crate::grammar::check_header_placeholders(&value) {
                let d = Diagnostic::new(
                    Code::HttpHeaderBadPlaceholder,
                    self.path(),
                    format!("mcp_server `{name}`: header `{hname}`: {why}"),
                )
                .with_span(self.span(hloc.clone()))
                .with_label("bad placeholder")
                .with_help("header values are literals plus `{{secret:NAME}}` placeholders only");
                self.push(d);
            }
        }
    }

    pub(super) fn check_mcp_servers(&mut self) {
        let servers = &self.doc.mcp_servers;
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, s) in servers.iter().enumerate() {
            if s.name.trim().is_empty() {
                let d = Diagnostic::new(
                    Code::InvalidMcpServer,
                    self.path(),
                    format!("[[mcp_servers]] entry {} has an empty name", i + 1),
                )
                .with_span(self.span(loc!["mcp_servers", i, "name"]))
                .with_label("empty")
                .with_help(
                    "give the server a name that MCP nodes can refer to with `server = \"...\"`",
                );
                self.push(d);
            } else if let Some(&f) = first.get(s.name.as_str()) {
                let earlier = self.line(self.span(loc!["mcp_servers", f, "name"]));
                let d = Diagnostic::new(
                    Code::DupMcpServerName,
                    self.path(),
                    format!("mcp_server `{}` is declared more than once", s.name),
                )
                .with_span(self.span(loc!["mcp_servers", i, "name"]))
                .with_label(format!("first declared at {earlier}"))
                .with_help(
                    "give each [[mcp_servers]] entry its own name: nodes select servers by name, \
                     so a second entry would silently never be used",
                );
                self.push(d);
            } else {
                first.insert(s.name.as_str(), i);
            }
            self.check_mcp_transport(i);
        }
        if servers.is_empty() {
            return;
        }
        let uses_mcp = self.doc.nodes.iter().any(|n| match &n.kind {
            NodeKind::CallMcpTool(_) | NodeKind::ReadMcpResource(_) => true,
            NodeKind::AgentLoop(a) => a.tools.iter().any(|t| t == "call_mcp_tool"),
            // A child workflow's MCP nodes use this workflow's servers.
            NodeKind::Call(_) | NodeKind::Parallel(_) | NodeKind::Map(_) => true,
            _ => false,
        }) || self.doc.triggers.iter().any(|t| {
            matches!(
                t,
                Trigger::McpResourceUpdated(_) | Trigger::McpResourceCreated(_)
            )
        });
        if !uses_mcp {
            let d = Diagnostic::new(
                Code::KeyHasNoEffect,
                self.path(),
                "[[mcp_servers]] is declared but no node uses MCP, so no server is ever called",
            )
            .with_span(
                self.key_span(loc!["mcp_servers", 0])
                    .or_else(|| self.span(loc!["mcp_servers", 0, "name"])),
            )
            .with_label("never used")
            .with_help(
                "remove [[mcp_servers]], or add a call_mcp_tool / read_mcp_resource node (or an \
                 agent_loop with the call_mcp_tool tool) that uses it",
            );
            self.push(d);
            return;
        }
        let Some(policy) = self.doc.policy.as_ref() else {
            return;
        };
        if self.parent.is_some() {
            return;
        }
        for (i, s) in servers.iter().enumerate() {
            let listed = policy
                .mcp
                .servers
                .iter()
                .any(|p| mcp_name_matches(p, &s.name));
            if listed || s.name.trim().is_empty() {
                continue;
            }
            let d = Diagnostic::new(
                Code::McpServerNotInPolicy,
                self.path(),
                format!(
                    "every call to mcp_server `{}` will be denied: the workflow has a [policy] and \
                     `[policy.mcp] servers` does not list it",
                    s.name
                ),
            )
            .with_span(self.span(loc!["mcp_servers", i, "name"]))
            .with_label("not in [policy.mcp] servers")
            .with_help(format!(
                "add it: [policy.mcp] servers = [\"{}\"] (its allow_tools / allow_resources \
                 still apply)",
                s.name
            ));
            self.push(d);
        }
    }
}

/// Why `[policy.http]` refuses a `POST` to `url`, if it does: the runtime's
/// check (`Policy::check_http`: an empty `urls` denies, `methods` when set
/// must hold `POST`, then the URL patterns of docs/dialect.md §12.1).
fn policy_http_refuses(http: &crate::model::HttpPolicy, url: &str) -> Option<String> {
    if http.urls.is_empty() {
        return Some("no `urls` allowlist is configured".to_owned());
    }
    if !http.methods.is_empty() && !http.methods.iter().any(|m| m.eq_ignore_ascii_case("POST")) {
        return Some("`methods` does not include POST".to_owned());
    }
    if http.urls.iter().any(|p| url_pattern_matches(p, url)) {
        None
    } else {
        Some("no `urls` pattern covers it".to_owned())
    }
}

/// The runtime's path/URL matcher: `*`, a `/*` or `/**` subtree, a trailing
/// `*` prefix, or exact.
fn url_pattern_matches(pattern: &str, candidate: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern
        .strip_suffix("/**")
        .or_else(|| pattern.strip_suffix("/*"))
    {
        return candidate == prefix
            || candidate
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'));
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return candidate.starts_with(prefix);
    }
    pattern == candidate
}

impl<'a> Validator<'a> {
    // -- extra: policy ----------------------------------------------------------------

    pub(super) fn check_policy_present(&mut self) {
        if self.doc.policy.is_some() || self.parent.is_some() {
            return;
        }
        let d = Diagnostic::new(
            Code::NoPolicy,
            self.path(),
            "workflow has no [policy] block, so every file, environment, HTTP, shell and MCP action is allowed",
        )
        .with_span(self.key_span(loc!["name"]))
        .with_label("no [policy] for this workflow")
        .with_help(
            "add a fail-closed [policy] block that lists what the workflow may touch \
             (e.g. [policy.fs] read = [\"/data/**\"]); an empty [policy] denies everything",
        );
        self.push(d);
    }
}

/// The runtime's MCP name matcher (`*`, a trailing-`*` prefix, or exact), for
/// `[policy.mcp] servers`.
fn mcp_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes::Code;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate};

    const NODE: &str = "[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"call\"\n\
                        [[nodes]]\nid = \"call\"\ntype = \"call_mcp_tool\"\ntool = \"search\"\nserver = \"a\"\n";

    /// `(code, text under the span)` of every diagnostic this module emits.
    fn found(text: &str) -> Vec<(Code, String)> {
        let r = parse_str(Path::new("wf.toml"), text);
        let doc = r.doc.expect("parses");
        validate(&r.source, &doc, &ValidateOptions::default())
            .into_iter()
            .filter(|d| {
                d.code.as_str().starts_with("rego_")
                    || d.code.as_str().contains("mcp_server")
                    || d.code == Code::McpUrlNotAllowed
                    || d.code.as_str().starts_with("http_header_")
                    || d.code == Code::KeyHasNoEffect
            })
            .map(|d| {
                let at = d.span.and_then(|s| text.get(s)).unwrap_or("").to_owned();
                (d.code, at)
            })
            .collect()
    }

    #[test]
    fn a_second_server_of_one_name_is_an_error_at_its_name() {
        let text = format!(
            "name = \"w\"\n[policy.mcp]\nservers = [\"a\"]\n\
             [[mcp_servers]]\nname = \"a\"\ncommand = [\"/bin/one\"]\n\
             [[mcp_servers]]\nname = \"a\"\ncommand = [\"/bin/two\"]\n{NODE}"
        );
        assert_eq!(found(&text), [(Code::DupMcpServerName, "\"a\"".to_owned())]);
    }

    #[test]
    fn a_server_needs_exactly_one_of_command_and_url_and_a_usable_url() {
        let server = |body: &str| {
            format!(
                "name = \"w\"\n[policy.mcp]\nservers = [\"a\"]\n[policy.http]\n\
                 urls = [\"https://mcp.example.com/*\"]\n[[mcp_servers]]\nname = \"a\"\n{body}\n{NODE}"
            )
        };
        assert_eq!(
            found(&server(
                "url = \"https://mcp.example.com/mcp\"\ncommand = [\"/bin/a\"]"
            )),
            [(
                Code::InvalidMcpServer,
                "\"https://mcp.example.com/mcp\"".to_owned()
            )]
        );
        assert_eq!(
            found(&server("allow_tools = []")),
            [(Code::InvalidMcpServer, "[[mcp_servers]]".to_owned())]
        );
        assert_eq!(
            found(&server("url = \"ftp://mcp.example.com/mcp\"")),
            [(
                Code::InvalidMcpServer,
                "\"ftp://mcp.example.com/mcp\"".to_owned()
            )]
        );
        assert_eq!(
            found(&server("command = [\"/bin/a\"]\nheaders = { X = \"1\" }")),
            [(Code::InvalidMcpServer, "{ X = \"1\" }".to_owned())]
        );
        assert_eq!(
            found(&server(
                "url = \"https://mcp.example.com/mcp\"\ntimeout_secs = 0"
            )),
            [(Code::InvalidMcpServer, "0".to_owned())]
        );
        assert_eq!(
            found(&server(
                "url = \"https://mcp.example.com/mcp\"\nheaders = { X = \"{{secret:}}\" }"
            )),
            [(Code::HttpHeaderBadPlaceholder, "\"{{secret:}}\"".to_owned())]
        );
        assert!(found(&server(
            "url = \"https://mcp.example.com/mcp\"\nheaders = { Authorization = \"Bearer {{secret:t}}\" }\ntimeout_secs = 5"
        ))
        .is_empty());
    }

    #[test]
    fn a_literal_url_the_http_policy_does_not_allow_is_refused() {
        let text = format!(
            "name = \"w\"\n[policy.mcp]\nservers = [\"a\"]\n[policy.http]\n\
             urls = [\"https://api.example.com/*\"]\n[[mcp_servers]]\nname = \"a\"\n\
             url = \"https://mcp.example.com/mcp\"\n{NODE}"
        );
        assert_eq!(
            found(&text),
            [(
                Code::McpUrlNotAllowed,
                "\"https://mcp.example.com/mcp\"".to_owned()
            )]
        );
        let get_only = text.replace(
            "urls = [\"https://api.example.com/*\"]",
            "urls = [\"https://mcp.example.com/*\"]\nmethods = [\"GET\"]",
        );
        assert_eq!(found(&get_only)[0].0, Code::McpUrlNotAllowed);
        // Without a [policy] nothing is refused at build time.
        let open = text.replace("[policy.mcp]\nservers = [\"a\"]\n[policy.http]\nurls = [\"https://api.example.com/*\"]\n", "");
        assert!(found(&open).is_empty(), "{:?}", found(&open));
    }

    #[test]
    fn an_empty_name_or_command_is_an_error() {
        let text = format!(
            "name = \"w\"\n[policy.mcp]\nservers = [\"*\"]\n\
             [[mcp_servers]]\nname = \"\"\ncommand = [\"/bin/one\"]\n\
             [[mcp_servers]]\nname = \"a\"\ncommand = []\n{NODE}"
        );
        assert_eq!(
            found(&text),
            [
                (Code::InvalidMcpServer, "\"\"".to_owned()),
                (Code::InvalidMcpServer, "[]".to_owned()),
            ]
        );
    }

    #[test]
    fn under_a_policy_an_unlisted_server_is_warned_and_a_listed_one_is_not() {
        let servers = "[[mcp_servers]]\nname = \"a\"\ncommand = [\"/bin/a\"]\n";
        let unlisted = format!("name = \"w\"\n[policy]\n{servers}{NODE}");
        assert_eq!(
            found(&unlisted),
            [(Code::McpServerNotInPolicy, "\"a\"".to_owned())]
        );
        let listed = format!("name = \"w\"\n[policy.mcp]\nservers = [\"a*\"]\n{servers}{NODE}");
        assert!(found(&listed).is_empty(), "{:?}", found(&listed));
        // Without a [policy] everything is allowed: nothing to warn about.
        let open = format!("name = \"w\"\n{servers}{NODE}");
        assert!(found(&open).is_empty(), "{:?}", found(&open));
    }

    #[test]
    fn servers_no_node_uses_have_no_effect() {
        let text = "name = \"w\"\n[policy]\n[[mcp_servers]]\nname = \"a\"\ncommand = [\"/bin/a\"]\n\
                    [[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"n\"\n\
                    [[nodes]]\nid = \"n\"\ntype = \"merge\"\n";
        assert_eq!(
            found(text),
            [(Code::KeyHasNoEffect, "[[mcp_servers]]".to_owned())]
        );
    }

    #[test]
    fn a_rego_inline_error_points_at_the_character_in_the_toml() {
        let text = "name = \"w\"\n[policy.rego]\ninline = '''\npackage agent\nallow if {\n  input.tool ==\n}\n'''\n";
        assert_eq!(found(text), [(Code::RegoSyntaxError, "}".to_owned())]);
        // Escapes in a basic string: the whole value is underlined instead.
        let escaped = "name = \"w\"\n[policy.rego]\ninline = \"package agent\\nallow if {\\t\"\n";
        assert_eq!(
            found(escaped),
            [(
                Code::RegoSyntaxError,
                "\"package agent\\nallow if {\\t\"".to_owned()
            )]
        );
    }
}
