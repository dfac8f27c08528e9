//! The planner's unit tests (run in agentd-runtime and, through the include,
//! in agentd-compiler).

use super::*;

#[test]
fn a_glob_maps_to_its_longest_literal_directory() {
    assert_eq!(literal_prefix("/w", "/data/**"), "/data");
    assert_eq!(literal_prefix("/w", "/data/in/*.json"), "/data/in");
    assert_eq!(literal_prefix("/w", "/etc/passwd"), "/etc/passwd");
    assert_eq!(literal_prefix("/w", "*"), "/");
    assert_eq!(literal_prefix("/w", "/**"), "/");
    assert_eq!(literal_prefix("/w", "out/*"), "/w/out");
    assert_eq!(literal_prefix("/w", "/a/../b/x*"), "/b");
}

#[test]
fn url_ports_are_explicit_or_implied_by_the_scheme() {
    assert_eq!(url_port("https://api.example.com/**"), Some(443));
    assert_eq!(url_port("http://example.com"), Some(80));
    assert_eq!(url_port("http://127.0.0.1:8080/x"), Some(8080));
    assert_eq!(url_port("http://[::1]:9/x"), Some(9));
    assert_eq!(url_port("http://127.0.0.1:*"), None);
    assert_eq!(url_port("https://*.example.com/**"), None);
    assert_eq!(url_port("*"), None);
    assert_eq!(url_port("ftp://x"), None);
    assert_eq!(url_port("redis://cache:6380/0"), Some(6380));
    assert_eq!(url_port("rediss://:pw@cache/0"), Some(6379));
}

fn inputs(policy: Option<PolicyLists<'static>>, features: Vec<&'static str>) -> Inputs<'static> {
    Inputs {
        cwd: "/w",
        policy,
        features,
        ..Inputs::default()
    }
}

#[test]
fn without_a_policy_no_path_or_port_rule_is_planned() {
    let p = plan(&inputs(None, vec!["fs"]));
    assert_eq!(p.fs, None);
    assert_eq!(p.connect, None);
    assert_eq!(p.groups, vec![Group::Base]);
    assert!(render(&p, Mode::BestEffort).contains("not applied (no [policy]"));
}

#[test]
fn policy_lists_become_merged_rules_and_ports() {
    let policy = PolicyLists {
        fs_read: vec!["/data/**", "/data/x.txt"],
        fs_write: vec!["/data/**"],
        http_urls: vec!["https://api.example.com/**", "http://h:8080/x"],
        shell_commands: vec!["/usr/bin/cat"],
        ..PolicyLists::default()
    };
    let p = plan(&inputs(Some(policy), vec!["http", "shell"]));
    let fs = p.fs.clone().unwrap_or_default();
    let data = fs.iter().find(|r| r.path == "/data").map(|r| r.access);
    assert_eq!(data, Some(Access::READ.with(Access::WRITE)));
    assert!(
        fs.iter()
            .any(|r| r.path == "/usr/bin/cat" && r.access == Access::EXEC)
    );
    assert!(fs.iter().any(|r| r.path == "/etc/resolv.conf"));
    let ports: Vec<u16> = p
        .connect
        .unwrap_or_default()
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(ports, vec![443, 8080]);
    assert_eq!(p.bind, Some(vec![]));
    assert_eq!(p.groups, vec![Group::Base, Group::Exec, Group::NetClient]);
}

#[test]
fn a_url_without_a_fixed_port_leaves_connect_open_and_says_so() {
    let policy = PolicyLists {
        http_urls: vec!["http://127.0.0.1:*"],
        ..PolicyLists::default()
    };
    let p = plan(&inputs(Some(policy), vec!["http"]));
    assert_eq!(p.connect, None);
    assert!(p.notes.iter().any(|n| n.contains("127.0.0.1:*")));
}

#[test]
fn a_reload_may_narrow_but_never_widen() {
    let wide = PolicyLists {
        fs_read: vec!["/data/**"],
        http_urls: vec!["https://a.example/**"],
        ..PolicyLists::default()
    };
    let narrow = PolicyLists {
        fs_read: vec!["/data/sub/**"],
        ..PolicyLists::default()
    };
    let other = PolicyLists {
        fs_read: vec!["/etc/**"],
        ..PolicyLists::default()
    };
    let write = PolicyLists {
        fs_write: vec!["/data/**"],
        ..PolicyLists::default()
    };
    let applied = plan(&inputs(Some(wide), vec!["fs", "http"]));
    assert_eq!(
        covers(&applied, &plan(&inputs(Some(narrow), vec!["fs", "http"]))),
        Ok(())
    );
    let err = covers(&applied, &plan(&inputs(Some(other), vec!["fs", "http"])));
    assert!(err.is_err_and(|e| e.contains("`/etc`")));
    assert!(covers(&applied, &plan(&inputs(Some(write), vec!["fs", "http"]))).is_err());
    assert!(covers(&applied, &plan(&inputs(None, vec!["fs", "http"]))).is_err());
    // Nothing applied at start (no policy): anything narrows it.
    let open = plan(&inputs(None, vec!["fs"]));
    assert_eq!(covers(&open, &applied), Ok(()));
}

#[test]
fn exec_and_network_groups_follow_the_features() {
    assert_eq!(Group::for_features(&["fs", "data"]), vec![Group::Base]);
    assert_eq!(
        Group::for_features(&["mcp", "serve", "fs-watch"]),
        vec![
            Group::Base,
            Group::Exec,
            Group::NetClient,
            Group::NetServer,
            Group::Watch
        ]
    );
    assert!(!BASE.contains(&"socket") && !BASE.contains(&"execve"));
}

#[test]
fn commands_without_a_slash_are_found_on_path() {
    let exists = |p: &str| p == "/usr/bin/python3";
    assert_eq!(
        resolve_command("python3", "/bin:/usr/bin", &exists),
        "/usr/bin/python3"
    );
    assert_eq!(resolve_command("./x", "/usr/bin", &exists), "./x");
    assert_eq!(resolve_command("nope", "/usr/bin", &exists), "nope");
}

#[test]
fn normalize_keeps_the_meaning_of_the_list_of_parts_it_replaced() {
    fn by_parts(cwd: &str, path: &str) -> String {
        let base = if path.starts_with('/') { "" } else { cwd };
        let mut parts: Vec<&str> = Vec::new();
        for comp in base.split('/').chain(path.split('/')) {
            match comp {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        if parts.is_empty() {
            return "/".to_owned();
        }
        parts.iter().map(|p| format!("/{p}")).collect()
    }
    for cwd in ["/", "/w", "/cwd", "/a/b/", "/a/./b/../c"] {
        for path in [
            "",
            ".",
            "..",
            "/",
            "//",
            "x",
            "./x/./y",
            "a/../b",
            "a/b/../../..",
            "/a/b/../../../c",
            "/a/b",
            "/é/ü",
            "../..x/.../y",
            "a//b///c/",
            "/..",
            "é/ü/..",
        ] {
            assert_eq!(normalize(cwd, path), by_parts(cwd, path), "{cwd} {path}");
        }
    }
    assert_eq!(normalize("/cwd", "/../../x"), "/x");
    assert_eq!(normalize("/cwd", "/"), "/");
    assert_eq!(normalize("/cwd", "a/b/"), "/cwd/a/b");
    assert_eq!(normalize("/cwd", ".."), "/");
    assert_eq!(normalize("/", "x"), "/x");
}

#[test]
fn a_path_left_as_is_is_exactly_one_normalize_returns_unchanged() {
    for p in [
        "/", "/a", "/a/b", "/a/b/", "//a", "/a//b", "/./a", "/a/.", "/a/..", "/..", "/a/.b",
        "/a/..b", "/a/b.", "a", "", ".", "a/b", "/é/ü",
    ] {
        let unchanged = p.starts_with('/') && normalize("/cwd", p) == p;
        assert_eq!(is_normal_absolute(p), unchanged, "{p}");
    }
}
