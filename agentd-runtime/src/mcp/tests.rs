//! Unit tests of the MCP registry, its allowlists and URL overrides.

use super::*;
use crate::policy::{McpPolicy, Policy};
use std::borrow::Cow;

#[derive(Debug)]
struct Nothing;
impl McpServer for Nothing {
    fn call_tool(&self, _: &str, _: &Value, _: Duration) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn read_resource(&self, _: &str, _: Duration) -> Result<Value, Error> {
        Ok(Value::Null)
    }
}

fn entry(name: &str, allow: Allowlists) -> ServerEntry {
    ServerEntry {
        name: name.to_owned(),
        allow,
        server: Arc::new(Nothing),
    }
}

static ALL_SERVERS: [Cow<'static, str>; 1] = [Cow::Borrowed("*")];

/// A policy whose `[policy.mcp]` lets every server be used and narrows
/// tools to `tools` (nothing when empty).
fn policy_with_mcp(tools: &'static [Cow<'static, str>]) -> Policy {
    Policy {
        mcp: McpPolicy {
            servers: Cow::Borrowed(&ALL_SERVERS),
            tools: Cow::Borrowed(tools),
            ..Policy::DENY_ALL.mcp
        },
        ..Policy::DENY_ALL
    }
}

fn denial(r: Result<(), Error>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn no_policy_allows_everything() {
    let e = entry(
        "gh",
        Allowlists::Lists {
            tools: &[],
            resources: &[],
        },
    );
    assert!(e.check(None, Access::Tool("anything")).is_ok());
    assert!(e.check(None, Access::Resource("file:///x")).is_ok());
}

#[test]
fn under_a_policy_the_server_lists_gate_and_empty_denies() {
    let e = entry(
        "gh",
        Allowlists::Lists {
            tools: &["search", "issue_*"],
            resources: &[],
        },
    );
    let p = policy_with_mcp(&[]);
    assert!(e.check(Some(&p), Access::Tool("search")).is_ok());
    assert!(e.check(Some(&p), Access::Tool("issue_get")).is_ok());
    assert_eq!(
        denial(e.check(Some(&p), Access::Tool("delete_repo"))),
        "policy violation: mcp tool `delete_repo` denied by allowlist on server `gh`"
    );
    assert_eq!(
        denial(e.check(Some(&p), Access::Resource("repo://x"))),
        "policy violation: mcp resource `repo://x` denied by allowlist on server `gh`"
    );
}

#[test]
fn an_empty_policy_denies_every_call_to_a_declared_server() {
    let e = entry(
        "gh",
        Allowlists::Lists {
            tools: &["*"],
            resources: &["*"],
        },
    );
    let empty = Policy::DENY_ALL;
    assert_eq!(
        denial(e.check(Some(&empty), Access::Tool("search"))),
        "policy violation: mcp tool `search` denied by allowlist on server `gh`: \
         `[policy.mcp] servers` does not list it (0 configured)"
    );
    assert!(e.check(Some(&empty), Access::Resource("r://1")).is_err());
    // `servers` names the servers that may be used (MCP name patterns).
    static ONLY_OTHER: [Cow<'static, str>; 1] = [Cow::Borrowed("other*")];
    let mut p = Policy::DENY_ALL;
    p.mcp.servers = Cow::Borrowed(&ONLY_OTHER);
    assert!(e.check(Some(&p), Access::Tool("search")).is_err());
    assert!(
        entry("other-1", e.allow)
            .check(Some(&p), Access::Tool("search"))
            .is_ok()
    );
}

#[cfg(feature = "rego")]
#[test]
fn mcp_calls_go_through_rego_after_the_lists() {
    use crate::policy::{RegoCache, RegoPolicy};
    let e = entry(
        "gh",
        Allowlists::Lists {
            tools: &["*"],
            resources: &["*"],
        },
    );
    let mut p = policy_with_mcp(&[]);
    p.rego = Some(RegoPolicy {
        origin: Cow::Borrowed("inline"),
        source: Cow::Borrowed(
            "package agent\nallow if {\n  input.tool == \"mcp.call\"\n  input.args == {\"server\": \"gh\", \"tool\": \"search\"}\n}\n",
        ),
        data: Cow::Borrowed("{}"),
        query: Cow::Borrowed("data.agent.allow"),
        v0: false,
        cache: RegoCache::with(&crate::rego::INTERPRETER),
    });
    assert!(e.check(Some(&p), Access::Tool("search")).is_ok());
    let refused = denial(e.check(Some(&p), Access::Tool("delete_repo")));
    assert!(
        refused.contains("mcp tool `delete_repo` on server `gh` denied by the Rego policy"),
        "{refused}"
    );
    // Resource reads are `mcp.read` with `{server, uri}`.
    let read = denial(e.check(Some(&p), Access::Resource("r://1")));
    assert!(
        read.contains("\"tool\":\"mcp.read\"") && read.contains("\"uri\":\"r://1\""),
        "{read}"
    );
}

#[test]
fn a_non_empty_policy_mcp_list_narrows_every_server() {
    static ONLY_SEARCH: [Cow<'static, str>; 1] = [Cow::Borrowed("search")];
    let e = entry(
        "gh",
        Allowlists::Lists {
            tools: &["*"],
            resources: &[],
        },
    );
    let p = policy_with_mcp(&ONLY_SEARCH);
    assert!(e.check(Some(&p), Access::Tool("search")).is_ok());
    assert!(e.check(Some(&p), Access::Tool("issue_get")).is_err());
    // The synthetic default server uses [policy.mcp] alone.
    let d = entry(DEFAULT_SERVER, Allowlists::PolicyMcp);
    assert!(d.check(Some(&p), Access::Tool("search")).is_ok());
    assert!(
        d.check(Some(&Policy::DENY_ALL), Access::Tool("search"))
            .is_err()
    );
}

#[test]
fn selection_follows_the_server_rule() {
    let none = Mcp::default();
    assert_eq!(
        none.select(None).err().as_deref(),
        Some("no MCP server is configured")
    );
    let one = Mcp::new(
        vec![entry("only", Allowlists::PolicyMcp)],
        DEFAULT_CALL_TIMEOUT,
    );
    assert_eq!(one.select(None).map(|s| s.name.as_str()), Ok("only"));
    assert_eq!(
        one.select(Some("other")).err().as_deref(),
        Some("mcp server `other` is not configured; known servers: `only`")
    );
    let two = Mcp::new(
        vec![
            entry("a", Allowlists::PolicyMcp),
            entry("b", Allowlists::PolicyMcp),
        ],
        DEFAULT_CALL_TIMEOUT,
    );
    assert_eq!(two.select(Some("b")).map(|s| s.name.as_str()), Ok("b"));
    assert!(
        two.select(None)
            .err()
            .is_some_and(|e| e.contains("several MCP servers"))
    );
}

#[test]
fn restarts_render_as_a_counter_per_stdio_server() {
    static DEFS: [McpServerDef; 1] = [McpServerDef {
        name: "tr\"acker",
        command: &["/bin/true"],
        url: None,
        headers: &[],
        timeout_secs: None,
        allow_tools: &[],
        allow_resources: &[],
        env: &[],
        oauth: None,
    }];
    let mcp = Mcp::from_defs(&DEFS, &McpOptions::default());
    assert_eq!(mcp.restarts(), vec![("tr\"acker", 0)]);
    let text = mcp.render_metrics();
    assert!(
        text.contains("# TYPE agentd_mcp_server_restarts_total counter\n")
            && text.contains("agentd_mcp_server_restarts_total{server=\"tr\\\"acker\"} 0\n"),
        "{text}"
    );
    assert_eq!(Mcp::default().render_metrics(), "");
}

#[test]
fn url_overrides_come_from_flags_then_per_server_variables() {
    static DEFS: [McpServerDef; 2] = [
        McpServerDef {
            name: "remote-one",
            command: &[],
            url: Some("https://a.example/mcp"),
            headers: &[],
            timeout_secs: Some(3),
            allow_tools: &[],
            allow_resources: &[],
            env: &[],
            oauth: None,
        },
        McpServerDef {
            name: "local",
            command: &["/bin/true"],
            url: None,
            headers: &[],
            timeout_secs: None,
            allow_tools: &[],
            allow_resources: &[],
            env: &[],
            oauth: None,
        },
    ];
    assert_eq!(url_env_var("remote-one"), "AGENTD_MCP_URL_REMOTE_ONE");
    let env =
        |v: &str| (v == "AGENTD_MCP_URL_REMOTE_ONE").then(|| "https://env.example/mcp".to_owned());
    assert_eq!(
        url_overrides(&DEFS, &[], env),
        Ok(vec![(
            "remote-one".to_owned(),
            "https://env.example/mcp".to_owned()
        )])
    );
    assert_eq!(
        url_overrides(
            &DEFS,
            &["remote-one=https://flag.example/mcp".to_owned()],
            env
        ),
        Ok(vec![(
            "remote-one".to_owned(),
            "https://flag.example/mcp".to_owned()
        )])
    );
    assert!(
        url_overrides(&DEFS, &["local=https://x/".to_owned()], env)
            .is_err_and(|e| e.contains("--mcp-url `local`"))
    );
    assert!(url_overrides(&DEFS, &["no-equals".to_owned()], env).is_err());
    // The per-server timeout replaces the run's, never past the deadline.
    let mcp = Mcp::from_defs(&DEFS, &McpOptions::default());
    let far = Instant::now() + Duration::from_secs(3600);
    assert_eq!(mcp.timeout_of("remote-one", far), Duration::from_secs(3));
    assert_eq!(mcp.timeout_of("local", far), DEFAULT_CALL_TIMEOUT);
}

#[test]
fn the_read_timeout_never_outlives_the_run_deadline() {
    let mcp = Mcp::new(Vec::new(), Duration::from_secs(30));
    let far = Instant::now() + Duration::from_secs(3600);
    assert_eq!(mcp.timeout_for(far), Duration::from_secs(30));
    let near = Instant::now() + Duration::from_secs(5);
    assert!(mcp.timeout_for(near) <= Duration::from_secs(5));
    // A deadline already passed still leaves one second.
    assert_eq!(mcp.timeout_for(Instant::now()), Duration::from_secs(1));
}
