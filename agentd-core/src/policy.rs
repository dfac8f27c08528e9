//! Fail-closed allowlists (docs/dialect.md §12.1).
//!
//! Owns the [`Policy`] data (baked by the compiler as a `static`, or loaded
//! as an owned override — hence `Cow` everywhere and `Deserialize` with
//! `deny_unknown_fields`) and the three matchers: paths (fs, http, shell),
//! names (env) and MCP allowlists. A run without a policy is allow-all; a
//! policy with a missing section denies that whole family.
//!
//! Security posture: decisions are made on text, never by touching the
//! filesystem, so a check cannot race or leak. **Divergence (docs/dialect.md §15):**
//! fs paths — and the fs patterns they are matched against — are lexically
//! normalised first (a relative path is joined to the working directory,
//! `.` and empty components are dropped, `..` pops a component and never
//! climbs above `/`), so `/ws/../etc/passwd` is checked as `/etc/passwd`
//! and does not match `/ws/**`. Symlinks are not resolved (that needs the
//! filesystem); `shell_run` canonicalises its command itself.
//!
//! `[policy.rego]` ([`RegoPolicy`], evaluated in [`rego`] with feature `rego`)
//! is consulted by every `check_*` after the static lists allowed an action,
//! never instead of them: AND, and only a boolean `true` allows.
//!
//! This module must never perform the side effect it judges, and never
//! allow on error: an unusable working directory denies, and so does a Rego
//! policy this binary cannot evaluate.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

pub mod rego;
pub use rego::{RegoCache, RegoInterpreter, RegoPolicy};

/// A list of allowlist patterns, static when baked, owned when loaded.
pub type Patterns = Cow<'static, [Cow<'static, str>]>;

const NO_PATTERNS: Patterns = Cow::Borrowed(&[]);

/// The `[policy]` block. Every section defaults to empty, which denies.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `[policy.fs]`.
    #[serde(default)]
    pub fs: FsPolicy,
    /// `[policy.env]`.
    #[serde(default)]
    pub env: EnvPolicy,
    /// `[policy.http]`.
    #[serde(default)]
    pub http: HttpPolicy,
    /// `[policy.shell]`.
    #[serde(default)]
    pub shell: ShellPolicy,
    /// `[policy.mcp]`.
    #[serde(default)]
    pub mcp: McpPolicy,
    /// `[policy.rego]`: baked by the compiler (the file already read), or read
    /// from a `--policy` override by `policy_file`; never deserialised.
    #[serde(skip)]
    pub rego: Option<RegoPolicy>,
}

/// `[policy.fs]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FsPolicy {
    /// Paths `read_file` may read.
    #[serde(default)]
    pub read: Patterns,
    /// Paths `write_file` / `create_dir` may write.
    #[serde(default)]
    pub write: Patterns,
    /// Paths that may be deleted.
    #[serde(default)]
    pub delete: Patterns,
    /// Directories that may be listed; falls back to `read` when empty.
    #[serde(default)]
    pub list: Patterns,
}

/// `[policy.env]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnvPolicy {
    /// Variable names `read_env` may read (`*`, trailing-`*` prefix, exact).
    #[serde(default)]
    pub read_keys: Patterns,
}

/// `[policy.http]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpPolicy {
    /// URL patterns (path-matcher forms, on the full URL string).
    #[serde(default)]
    pub urls: Patterns,
    /// Allowed methods, case-insensitive; empty allows any method.
    #[serde(default)]
    pub methods: Patterns,
}

/// `[policy.shell]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShellPolicy {
    /// Command patterns, matched against the canonical command path.
    #[serde(default)]
    pub commands: Patterns,
}

/// `[policy.mcp]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McpPolicy {
    /// Parsed for compatibility; unused by dialect 1.
    #[serde(default)]
    pub servers: Patterns,
    /// Tool names (`*`, trailing-`*` prefix, exact).
    #[serde(default)]
    pub tools: Patterns,
    /// Resource URIs (`*`, trailing-`*` prefix, exact).
    #[serde(default)]
    pub resources: Patterns,
}

/// Which fs allowlist a check consults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsOp {
    /// `fs.read`.
    Read,
    /// `fs.write`.
    Write,
    /// `fs.delete`.
    Delete,
    /// `fs.list` (falls back to `fs.read`).
    List,
}

impl FsOp {
    /// The `tool` of the Rego input document.
    const fn tool(self) -> &'static str {
        match self {
            Self::Read => "fs.read",
            Self::Write => "fs.write",
            Self::Delete => "fs.delete",
            Self::List => "fs.list",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Self::Read => "fs_read",
            Self::Write => "fs_write",
            Self::Delete => "fs_delete",
            Self::List => "fs_list",
        }
    }
}

/// A policy decision; `Deny` carries the dialect's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The action may proceed.
    Allow,
    /// The action is refused, and why.
    Deny(String),
}

impl Policy {
    /// A policy with every section empty: denies everything. Usable in
    /// `static` items, as the base of a baked policy.
    pub const DENY_ALL: Policy = Policy {
        fs: FsPolicy {
            read: NO_PATTERNS,
            write: NO_PATTERNS,
            delete: NO_PATTERNS,
            list: NO_PATTERNS,
        },
        env: EnvPolicy {
            read_keys: NO_PATTERNS,
        },
        http: HttpPolicy {
            urls: NO_PATTERNS,
            methods: NO_PATTERNS,
        },
        shell: ShellPolicy {
            commands: NO_PATTERNS,
        },
        mcp: McpPolicy {
            servers: NO_PATTERNS,
            tools: NO_PATTERNS,
            resources: NO_PATTERNS,
        },
        rego: None,
    };

    /// Check an fs path (as the node resolved it) against `op`'s allowlist,
    /// after lexical normalisation of both sides.
    #[must_use]
    pub fn check_fs(&self, op: FsOp, path: &str) -> Decision {
        let patterns = self.fs_patterns(op);
        let label = op.label();
        if patterns.is_empty() {
            return Decision::Deny(format!(
                "{label} denied: no `{label}` allowlist patterns are configured"
            ));
        }
        let covered = current_dir().and_then(|cwd| {
            let candidate = normalize(&cwd, path);
            patterns
                .iter()
                .any(|p| fs_pattern_matches(&cwd, p, &candidate))
                .then_some(candidate)
        });
        match covered {
            // Rego sees the normalised absolute path, the one the lists matched.
            Some(candidate) => self.then_rego(op.tool(), || json!({ "path": candidate })),
            None => Decision::Deny(format!(
                "{label} on `{path}` not covered by any allowlist pattern"
            )),
        }
    }

    /// The second half of the fs gate, for a path that passed
    /// [`Policy::check_fs`] on its text but that the filesystem resolves
    /// elsewhere (a symbolic link on the way): `real` is where it really
    /// leads, and each pattern's path part is passed through `resolve`
    /// (the caller's symlink resolution) before matching, so an allowed
    /// directory that is itself a link (`/var/run` → `/run`) still covers
    /// what is inside it. This module never touches the filesystem; the
    /// caller does, through `resolve` and `real`.
    #[must_use]
    pub fn check_fs_real(
        &self,
        op: FsOp,
        path: &str,
        real: &str,
        resolve: &dyn Fn(&str) -> String,
    ) -> Decision {
        let patterns = self.fs_patterns(op);
        let covered = current_dir().is_some_and(|cwd| {
            let candidate = normalize(&cwd, real);
            patterns.iter().any(|p| {
                let resolved = resolve_pattern(&cwd, p, resolve);
                fs_pattern_matches(&cwd, &resolved, &candidate)
            })
        });
        if covered {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "{} on `{path}` leads through a symbolic link to `{real}`, which no allowlist \
                 pattern covers",
                op.label()
            ))
        }
    }

    fn fs_patterns(&self, op: FsOp) -> &Patterns {
        match op {
            FsOp::Read => &self.fs.read,
            FsOp::Write => &self.fs.write,
            FsOp::Delete => &self.fs.delete,
            FsOp::List if self.fs.list.is_empty() => &self.fs.read,
            FsOp::List => &self.fs.list,
        }
    }

    /// Check an environment variable name against `env.read_keys`.
    #[must_use]
    pub fn check_env(&self, key: &str) -> Decision {
        let keys = &self.env.read_keys;
        if keys.iter().any(|p| name_matches(p, key)) {
            self.then_rego("env.read", || json!({ "key": key }))
        } else {
            Decision::Deny(format!(
                "env var `{key}` is not in the allowlist ({} configured)",
                keys.len()
            ))
        }
    }

    /// Check an outbound request (method already upper-cased by the node).
    #[must_use]
    pub fn check_http(&self, method: &str, url: &str) -> Decision {
        let http = &self.http;
        if http.urls.is_empty() {
            return Decision::Deny(
                "http_request denied: no `http.urls` allowlist configured".to_owned(),
            );
        }
        if !http.methods.is_empty() && !http.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        {
            return Decision::Deny(format!("http_request method `{method}` not in allowlist"));
        }
        if http.urls.iter().any(|p| path_matches(p, url)) {
            self.then_rego("http.request", || json!({ "method": method, "url": url }))
        } else {
            Decision::Deny(format!(
                "http_request URL `{url}` not covered by any allowlist pattern"
            ))
        }
    }

    /// Check a canonical command path against `shell.commands`.
    #[must_use]
    pub fn check_shell(&self, command: &str) -> Decision {
        let commands = &self.shell.commands;
        if commands.is_empty() {
            return Decision::Deny(
                "shell_run denied: no `shell.commands` allowlist configured".to_owned(),
            );
        }
        if commands.iter().any(|p| path_matches(p, command)) {
            self.then_rego("shell.run", || json!({ "command": command }))
        } else {
            Decision::Deny(format!(
                "shell_run command `{command}` not covered by any allowlist pattern"
            ))
        }
    }

    /// The Rego half of a check whose static lists allowed `tool` with `args`
    /// (the input document is `{"tool": tool, "args": args}`): allowed when
    /// there is no `[policy.rego]`, else only when the query is boolean `true`.
    /// An undefined result, any other value, an evaluation error and a binary
    /// without the `rego` feature all deny.
    #[must_use]
    pub fn then_rego(&self, tool: &str, args: impl FnOnce() -> Value) -> Decision {
        let Some(rego) = &self.rego else {
            return Decision::Allow;
        };
        // Without the interpreter nothing is built for the input: every binary
        // has these gates, and most never carry Rego (the input document and
        // the wording are the interpreter's, so such a binary links neither).
        match rego.cache.interpreter() {
            Some(interpreter) => (interpreter.decide)(rego, tool, args()),
            None => Decision::Deny(format!(
                "{tool} denied: the policy has [policy.rego] but this binary was built \
                 without Rego support"
            )),
        }
    }

    /// Check an MCP tool name against an allowlist (`*`, prefix, exact; no
    /// `/**` handling, as in dialect 1).
    #[must_use]
    pub fn mcp_list_allows(patterns: &[Cow<'static, str>], name: &str) -> bool {
        patterns.iter().any(|p| name_matches(p, name))
    }
}

/// The path matcher of fs, http and shell: `*` anything; `P/**` or `P/*`
/// exactly `P` or anything under `P/` (any depth); `P*` a plain prefix;
/// otherwise exact equality.
#[must_use]
pub fn path_matches(pattern: &str, candidate: &str) -> bool {
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

/// The name matcher of env keys and MCP allowlists: `*`, trailing-`*`
/// prefix, or exact.
#[must_use]
pub fn name_matches(pattern: &str, candidate: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => candidate.starts_with(prefix),
        None => pattern == candidate,
    }
}

/// The fs form of [`path_matches`]: the pattern's path part is normalised
/// like the candidate. A plain `P*` prefix is only made absolute (joined to
/// the working directory when relative), never normalised, because a
/// trailing `.` or `..` there is part of a file-name prefix.
fn fs_pattern_matches(cwd: &str, pattern: &str, candidate: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern
        .strip_suffix("/**")
        .or_else(|| pattern.strip_suffix("/*"))
    {
        let prefix = if prefix.is_empty() {
            // `/**` is "everything under the root".
            Cow::Borrowed("")
        } else if is_normal_absolute(prefix) {
            // What `normalize` would return: no copy.
            Cow::Borrowed(prefix)
        } else {
            Cow::Owned(normalize(cwd, prefix))
        };
        let prefix = prefix.trim_end_matches('/');
        return candidate == prefix
            || candidate
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'));
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return if prefix.starts_with('/') {
            candidate.starts_with(prefix)
        } else {
            candidate
                .strip_prefix(cwd.trim_end_matches('/'))
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| rest.starts_with(prefix))
        };
    }
    candidate == normalize(cwd, pattern)
}

/// `pattern` with its path part (normalised, absolute) passed through
/// `resolve`; the glob suffix is kept. For a `P*` prefix only the directory
/// part is resolved (the rest is a file-name prefix).
fn resolve_pattern(cwd: &str, pattern: &str, resolve: &dyn Fn(&str) -> String) -> String {
    if pattern == "*" {
        return pattern.to_owned();
    }
    for suffix in ["/**", "/*"] {
        if let Some(prefix) = pattern.strip_suffix(suffix) {
            if prefix.is_empty() {
                return pattern.to_owned();
            }
            return format!("{}{suffix}", resolve(&normalize(cwd, prefix)));
        }
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        let absolute = if prefix.starts_with('/') {
            prefix.to_owned()
        } else {
            format!("{}/{prefix}", cwd.trim_end_matches('/'))
        };
        return match absolute.rsplit_once('/') {
            Some((dir, name)) if !dir.is_empty() => {
                format!("{}/{name}*", resolve(&normalize(cwd, dir)))
            }
            _ => format!("{absolute}*"),
        };
    }
    resolve(&normalize(cwd, pattern))
}

use crate::sandbox::plan::is_normal_absolute;
pub use crate::sandbox::plan::normalize;

/// The working directory as UTF-8, or `None` (which makes fs checks deny).
fn current_dir() -> Option<String> {
    // The buffer std read it into, kept: no second copy.
    std::env::current_dir()
        .ok()
        .and_then(|p| p.into_os_string().into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_write(patterns: &'static [Cow<'static, str>]) -> Policy {
        Policy {
            fs: FsPolicy {
                write: Cow::Borrowed(patterns),
                ..Policy::DENY_ALL.fs
            },
            ..Policy::DENY_ALL
        }
    }

    fn allowed(d: &Decision) -> bool {
        matches!(d, Decision::Allow)
    }

    /// A pretend filesystem for [`Policy::check_fs_real`]: `/var/run` is a
    /// link to `/run`; nothing else is a link.
    fn fake_resolve(dir: &str) -> String {
        match dir.strip_prefix("/var/run") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/run{rest}"),
            _ => dir.to_owned(),
        }
    }

    #[test]
    fn a_real_location_is_matched_against_resolved_patterns_of_every_form() {
        static PATTERNS: [Cow<'static, str>; 4] = [
            Cow::Borrowed("/var/run/agent/**"),
            Cow::Borrowed("/var/run/spool/*"),
            Cow::Borrowed("/var/run/report-*"),
            Cow::Borrowed("/var/run/exact.txt"),
        ];
        let p = fs_write(&PATTERNS);
        let real = |path: &str, real: &str| {
            allowed(&p.check_fs_real(FsOp::Write, path, real, &fake_resolve))
        };
        // Each form covers what its alias covers, at the real location.
        assert!(real("/var/run/agent/a/b.txt", "/run/agent/a/b.txt"));
        assert!(real("/var/run/spool/x", "/run/spool/x"));
        assert!(real("/var/run/report-1.json", "/run/report-1.json"));
        assert!(real("/var/run/exact.txt", "/run/exact.txt"));
        // A link inside an allowed directory that leads out of it is denied,
        // whichever form allowed the text of the path.
        assert!(!real("/var/run/agent/escape/x", "/etc/cron.d/x"));
        assert!(!real("/var/run/spool/link", "/root/.ssh/authorized_keys"));
        assert!(!real("/var/run/report-link", "/etc/passwd"));
        assert!(!real("/var/run/exact.txt", "/etc/shadow"));
        // `..` in the real location is normalised away, never an escape.
        assert!(!real("/var/run/agent/x", "/run/agent/../../etc/x"));
        let deny = p.check_fs_real(FsOp::Write, "/var/run/agent/e/x", "/etc/x", &fake_resolve);
        assert_eq!(
            deny,
            Decision::Deny(
                "fs_write on `/var/run/agent/e/x` leads through a symbolic link to `/etc/x`, \
                 which no allowlist pattern covers"
                    .to_owned()
            )
        );
    }

    #[test]
    fn star_matches_anything() {
        assert!(path_matches("*", "/x/y"));
        assert!(name_matches("*", "HOME"));
    }

    #[test]
    fn double_star_and_single_star_are_the_same_any_depth_prefix() {
        for p in ["/ws/**", "/ws/*"] {
            assert!(path_matches(p, "/ws"));
            assert!(path_matches(p, "/ws/a"));
            assert!(path_matches(p, "/ws/a/b/c"));
            assert!(!path_matches(p, "/wsx"));
            assert!(!path_matches(p, "/other/ws/a"));
        }
    }

    #[test]
    fn trailing_star_is_a_plain_prefix() {
        assert!(path_matches("https://api.x.com*", "https://api.x.com.evil"));
        assert!(path_matches("/tmp/agent*", "/tmp/agent-1/x"));
        assert!(!path_matches("/tmp/agent*", "/tmp/agen"));
    }

    #[test]
    fn anything_else_is_exact() {
        assert!(path_matches("/etc/hosts", "/etc/hosts"));
        assert!(!path_matches("/etc/hosts", "/etc/hosts2"));
    }

    #[test]
    fn env_names_support_star_prefix_and_exact() {
        let p = Policy {
            env: EnvPolicy {
                read_keys: Cow::Borrowed(&[
                    Cow::Borrowed("GITHUB_TOKEN"),
                    Cow::Borrowed("AGENTD_*"),
                ]),
            },
            ..Policy::DENY_ALL
        };
        assert!(allowed(&p.check_env("GITHUB_TOKEN")));
        assert!(allowed(&p.check_env("AGENTD_")));
        assert!(allowed(&p.check_env("AGENTD_NAME")));
        assert_eq!(
            p.check_env("HOME"),
            Decision::Deny("env var `HOME` is not in the allowlist (2 configured)".into())
        );
    }

    #[test]
    fn empty_sections_deny_with_the_dialect_messages() {
        let p = Policy::DENY_ALL;
        assert_eq!(
            p.check_fs(FsOp::Write, "/tmp/x"),
            Decision::Deny(
                "fs_write denied: no `fs_write` allowlist patterns are configured".into()
            )
        );
        assert_eq!(
            p.check_env("HOME"),
            Decision::Deny("env var `HOME` is not in the allowlist (0 configured)".into())
        );
        assert_eq!(
            p.check_http("GET", "http://x"),
            Decision::Deny("http_request denied: no `http.urls` allowlist configured".into())
        );
        assert_eq!(
            p.check_shell("/bin/ls"),
            Decision::Deny("shell_run denied: no `shell.commands` allowlist configured".into())
        );
    }

    #[test]
    fn fs_uncovered_path_names_the_op_and_raw_path() {
        let p = fs_write(&[Cow::Borrowed("/ws/**")]);
        assert_eq!(
            p.check_fs(FsOp::Write, "/ws/../etc/passwd"),
            Decision::Deny(
                "fs_write on `/ws/../etc/passwd` not covered by any allowlist pattern".into()
            )
        );
    }

    #[test]
    fn dot_dot_cannot_escape_an_allowed_prefix() {
        let p = fs_write(&[Cow::Borrowed("/ws/**")]);
        assert!(!allowed(&p.check_fs(FsOp::Write, "/ws/../etc/passwd")));
        assert!(!allowed(&p.check_fs(FsOp::Write, "/ws/a/../../etc")));
        assert!(allowed(&p.check_fs(FsOp::Write, "/ws/a/../b")));
        assert!(allowed(&p.check_fs(FsOp::Write, "/ws//a/./b")));
        assert!(allowed(&p.check_fs(FsOp::Write, "/ws/")));
    }

    #[test]
    fn relative_paths_are_joined_to_the_working_directory() {
        let Some(cwd) = current_dir() else { return };
        let pattern: &'static str = Box::leak(format!("{cwd}/out/**").into_boxed_str());
        let patterns: &'static [Cow<'static, str>] =
            Box::leak(vec![Cow::Borrowed(pattern)].into_boxed_slice());
        let p = fs_write(patterns);
        assert!(allowed(&p.check_fs(FsOp::Write, "out/file.txt")));
        assert!(allowed(&p.check_fs(FsOp::Write, "./out/../out/x")));
        assert!(!allowed(&p.check_fs(FsOp::Write, "out/../secret")));
    }

    #[test]
    fn relative_patterns_are_joined_to_the_working_directory() {
        let Some(cwd) = current_dir() else { return };
        let p = fs_write(&[Cow::Borrowed("./out/**"), Cow::Borrowed("logs*")]);
        assert!(allowed(&p.check_fs(FsOp::Write, &format!("{cwd}/out/a"))));
        assert!(allowed(&p.check_fs(FsOp::Write, "out/a")));
        assert!(allowed(&p.check_fs(FsOp::Write, "logs-2024.txt")));
        assert!(!allowed(&p.check_fs(FsOp::Write, "/logs-2024.txt")));
    }

    #[test]
    fn exact_fs_patterns_are_normalised_too() {
        let p = fs_write(&[Cow::Borrowed("/etc/./app//conf")]);
        assert!(allowed(&p.check_fs(FsOp::Write, "/etc/app/conf")));
        assert!(allowed(&p.check_fs(FsOp::Write, "/etc/x/../app/conf")));
        assert!(!allowed(&p.check_fs(FsOp::Write, "/etc/app/conf2")));
    }

    #[test]
    fn root_double_star_covers_every_absolute_path() {
        let p = fs_write(&[Cow::Borrowed("/**")]);
        assert!(allowed(&p.check_fs(FsOp::Write, "/anything/at/all")));
        assert!(allowed(&p.check_fs(FsOp::Write, "/")));
    }

    #[test]
    fn list_falls_back_to_read_when_empty() {
        let mut p = Policy::DENY_ALL;
        p.fs.read = Cow::Borrowed(&[Cow::Borrowed("/docs/**")]);
        assert!(allowed(&p.check_fs(FsOp::List, "/docs/a")));
        p.fs.list = Cow::Borrowed(&[Cow::Borrowed("/public/**")]);
        assert!(!allowed(&p.check_fs(FsOp::List, "/docs/a")));
        assert!(allowed(&p.check_fs(FsOp::List, "/public/a")));
        assert!(!allowed(&p.check_fs(FsOp::Delete, "/docs/a")));
    }

    #[test]
    fn http_checks_methods_then_urls() {
        let p = Policy {
            http: HttpPolicy {
                urls: Cow::Borrowed(&[Cow::Borrowed("https://api.example.com/**")]),
                methods: Cow::Borrowed(&[Cow::Borrowed("get")]),
            },
            ..Policy::DENY_ALL
        };
        assert!(allowed(&p.check_http("GET", "https://api.example.com/v1")));
        assert_eq!(
            p.check_http("POST", "https://api.example.com/v1"),
            Decision::Deny("http_request method `POST` not in allowlist".into())
        );
        assert_eq!(
            p.check_http("GET", "https://evil.com"),
            Decision::Deny(
                "http_request URL `https://evil.com` not covered by any allowlist pattern".into()
            )
        );
    }

    #[test]
    fn shell_uses_the_path_matcher() {
        let p = Policy {
            shell: ShellPolicy {
                commands: Cow::Borrowed(&[Cow::Borrowed("/usr/bin/*")]),
            },
            ..Policy::DENY_ALL
        };
        assert!(allowed(&p.check_shell("/usr/bin/git")));
        assert_eq!(
            p.check_shell("/bin/sh"),
            Decision::Deny(
                "shell_run command `/bin/sh` not covered by any allowlist pattern".into()
            )
        );
    }

    #[test]
    fn mcp_lists_have_no_double_star_handling() {
        let list = [Cow::Borrowed("issue://**"), Cow::Borrowed("search")];
        assert!(Policy::mcp_list_allows(&list, "search"));
        assert!(!Policy::mcp_list_allows(&list, "issue://1"));
        assert!(Policy::mcp_list_allows(&list, "issue://*x"));
    }

    #[test]
    fn override_deserialises_and_rejects_unknown_keys() {
        let p: Policy = serde_json::from_str(r#"{"fs": {"read": ["/a/**"]}, "env": {}}"#)
            .unwrap_or(Policy::DENY_ALL);
        assert_eq!(p.fs.read.len(), 1);
        assert!(p.fs.write.is_empty());
        assert!(serde_json::from_str::<Policy>(r#"{"fs": {"reed": []}}"#).is_err());
        assert!(serde_json::from_str::<Policy>(r#"{"bogus": {}}"#).is_err());
    }
}
