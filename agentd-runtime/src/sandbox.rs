//! The third wall: a kernel sandbox the binary applies to itself before the
//! first node runs (Landlock paths and TCP ports, a seccomp allow-list),
//! inherited by every child process it starts.
//!
//! Owns the inputs of the plan that only the running binary knows (its
//! `--state-dir`, log files, `--policy` file, TLS and CA files, `--bind`
//! port, MCP commands found on `PATH`), the mode (`[sandbox] mode`, then
//! `--sandbox` / `AGENTD_SANDBOX`), the audit events, and the reload rule: a
//! policy reload may only narrow what was applied, because Landlock cannot
//! widen a domain. Which rules follow from a policy is `sandbox/plan.rs`
//! (shared with `agentd check --explain-sandbox`); the kernel calls are
//! `sandbox/linux.rs` (feature `sandbox`, Linux). It must never apply a
//! rule the printed plan does not show.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::policy::Policy;
use crate::workflow::WorkflowDef;

#[cfg(all(feature = "sandbox", target_os = "linux"))]
mod linux;
pub use agentd_core::sandbox::plan;
#[cfg(all(feature = "sandbox", target_os = "linux"))]
mod syscalls;

pub use plan::{Access, FsRule, Mode, Plan};

/// What only the started binary knows.
#[derive(Debug, Default, Clone)]
pub struct StartNeeds {
    /// `--state-dir` (checkpoints, idempotency store).
    pub state_dir: Option<PathBuf>,
    /// `--policy FILE` (re-read on reload, with its `.sig`).
    pub policy_file: Option<PathBuf>,
    /// Serve mode's `--reload-file` (created when missing, then polled).
    pub reload_file: Option<PathBuf>,
    /// Serve mode's `--bind` port.
    pub bind_port: Option<u16>,
    /// `--intel-http URL`.
    pub intel_http: Option<String>,
    /// Serve mode's `--state-url` (fleet mode's Redis).
    pub state_url: Option<String>,
}

/// The inputs of a plan except the policy, owned, so a reload can recompute
/// the plan for a new policy.
#[derive(Debug, Clone)]
struct Fixed {
    cwd: String,
    features: Vec<&'static str>,
    mcp_commands: Vec<String>,
    connect_urls: Vec<(String, String)>,
    bind_ports: Vec<u16>,
    runtime_fs: Vec<FsRule>,
    /// `runtime_fs[..constant_rules]` are [`plan::constant_runtime_rules`],
    /// which a baked plan already holds.
    constant_rules: usize,
    /// `connect_urls[..static_urls]` come from the workflow itself (a baked
    /// plan holds them); the rest from the command line.
    static_urls: usize,
}

/// The runtime features compiled into this binary that change the plan.
#[must_use]
pub fn features() -> Vec<&'static str> {
    let all = [
        ("shell", cfg!(feature = "shell")),
        ("mcp", cfg!(feature = "mcp")),
        ("mcp-http", cfg!(feature = "mcp-http")),
        ("http", cfg!(feature = "http")),
        ("llm", cfg!(feature = "llm")),
        ("llm-remote", cfg!(feature = "llm-remote")),
        ("otel", cfg!(feature = "otel")),
        ("serve", cfg!(feature = "serve")),
        ("fs-watch", cfg!(feature = "fs-watch")),
        ("schedule-cron", cfg!(feature = "schedule-cron")),
        ("secrets-exec", cfg!(feature = "secrets-exec")),
        ("secrets-oauth2", cfg!(feature = "secrets-oauth2")),
    ];
    all.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect()
}

/// The parent directory of a file the runtime re-reads (rotation and
/// reloads replace files by rename, and a Landlock rule follows the inode).
fn parent_of(cwd: &str, path: &Path) -> String {
    let abs = plan::normalize(cwd, &path.to_string_lossy());
    match abs.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((dir, _)) => dir.to_owned(),
    }
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".to_owned())
}

fn fixed_for(wf: &WorkflowDef, needs: &StartNeeds) -> Fixed {
    let features = features();
    // Asked of the kernel once: every relative path below is joined to it.
    let cwd = cwd();
    let parent_of = |path: &Path| parent_of(&cwd, path);
    let mut fs = plan::constant_runtime_rules(&features);
    let constant_rules = fs.len();
    // `/proc/self` is a link to `/proc/<pid>`: the rule goes on the target.
    if let Ok(me) = std::fs::read_link("/proc/self") {
        let me = me.to_string_lossy();
        let mut path = String::with_capacity(6 + me.len());
        path.push_str("/proc/");
        path.push_str(&me);
        fs.push(FsRule::new(path, Access::READ, "runtime (/proc/self)"));
    }
    if let Some(dir) = &needs.state_dir {
        fs.push(FsRule::new(
            plan::normalize(&cwd, &dir.to_string_lossy()),
            Access::READ.with(Access::WRITE).with(Access::REMOVE),
            "--state-dir",
        ));
    }
    if let Some(file) = &needs.policy_file {
        fs.push(FsRule::new(
            parent_of(file),
            Access::READ,
            "--policy file (reload)",
        ));
    }
    if let Some(file) = &needs.reload_file {
        fs.push(FsRule::new(
            parent_of(file),
            Access::READ.with(Access::WRITE),
            "--reload-file (created when missing)",
        ));
    }
    for path in crate::obs::file_sinks() {
        fs.push(FsRule::new(
            parent_of(&path),
            Access::WRITE,
            "log/audit file and its rotations",
        ));
    }
    let mut connect_urls = Vec::new();
    for def in wf.secrets {
        match def.source {
            crate::workflow::secrets::SecretSource::File { path, .. } => fs.push(FsRule::new(
                parent_of(Path::new(path)),
                Access::READ,
                format!("[[secrets]] {} (read at each use)", def.name),
            )),
            // Run again at each reload, inside the sandbox. Without the feature the
            // command never runs (resolving it fails), so it needs no rule; the arm
            // compiled out keeps the command lookup out of binaries that cannot use it.
            #[cfg(feature = "secrets-exec")]
            crate::secrets::SecretSource::Command { argv } => {
                if let Some(program) = argv.first() {
                    let path_var = std::env::var("PATH").unwrap_or_default();
                    let exists = |p: &str| Path::new(p).is_file();
                    fs.push(FsRule::new(
                        plan::resolve_command(program, &path_var, &exists),
                        Access::EXEC,
                        format!("[[secrets]] {} command (run at each reload)", def.name),
                    ));
                }
            }
            // Fetched again when the token expires (with the feature, as above).
            #[cfg(feature = "secrets-oauth2")]
            crate::secrets::SecretSource::OAuth2 { token_url, .. } => connect_urls.push((
                token_url.to_owned(),
                format!("[[secrets]] {} token_url", def.name),
            )),
            #[cfg(not(feature = "secrets-exec"))]
            crate::secrets::SecretSource::Command { .. } => {}
            #[cfg(not(feature = "secrets-oauth2"))]
            crate::secrets::SecretSource::OAuth2 { .. } => {}
            crate::secrets::SecretSource::Env { .. } => {}
        }
    }
    for (var, why) in [
        ("AGENTD_HTTP_CA_FILE", "AGENTD_HTTP_CA_FILE (CA bundle)"),
        ("SSL_CERT_FILE", "SSL_CERT_FILE (CA bundle)"),
    ] {
        if let Some(file) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            fs.push(FsRule::new(parent_of(Path::new(&file)), Access::READ, why));
        }
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = wf.tls {
        let mut files = vec![tls.cert_file, tls.key_file];
        if let Some(client) = &tls.client_auth {
            files.push(client.ca_file);
        }
        for f in files {
            fs.push(FsRule::new(
                parent_of(Path::new(f)),
                Access::READ,
                "[server.tls] (reload)",
            ));
        }
    }
    #[cfg(feature = "auth-oidc")]
    for def in wf.auth.oidc {
        if let crate::workflow::auth::JwksSource::File(path) = def.jwks {
            fs.push(FsRule::new(
                parent_of(Path::new(path)),
                Access::READ,
                format!("[auth.oidc.{}] jwks_file (reload)", def.name),
            ));
        }
    }
    #[cfg(feature = "fs-watch")]
    for t in wf.serve.triggers {
        if let crate::workflow::serve::TriggerDef::FsWatch { path, .. } = t {
            fs.push(FsRule::new(
                plan::normalize(&cwd, path),
                Access::READ,
                "fs_watch trigger",
            ));
        }
    }

    #[cfg(feature = "llm-remote")]
    for b in wf.backends {
        let url = b.base_url.unwrap_or("https://default-provider-endpoint");
        connect_urls.push((url.to_owned(), format!("backend `{}`", b.name)));
    }
    #[cfg(feature = "otel")]
    if let Some(otel) = &wf.logging.otel {
        connect_urls.push((otel.endpoint.to_owned(), "[logging.otel]".to_owned()));
    }
    let static_urls = connect_urls.len();
    if let Some(url) = &needs.intel_http {
        connect_urls.push((url.clone(), "--intel-http".to_owned()));
    }
    if let Some(url) = &needs.state_url {
        connect_urls.push((url.clone(), "--state-url".to_owned()));
    }

    Fixed {
        cwd,
        features,
        mcp_commands: mcp_commands(wf),
        connect_urls,
        bind_ports: needs.bind_port.into_iter().collect(),
        runtime_fs: fs,
        constant_rules,
        static_urls,
    }
}

/// `[[mcp_servers]]` commands, found on `PATH` as the child will be started.
#[cfg(feature = "mcp")]
fn mcp_commands(wf: &WorkflowDef) -> Vec<String> {
    let path_var = std::env::var("PATH").unwrap_or_default();
    let exists = |p: &str| Path::new(p).is_file();
    wf.mcp_servers
        .iter()
        .filter_map(|def| def.command.first())
        .map(|cmd| plan::resolve_command(cmd, &path_var, &exists))
        .collect()
}

#[cfg(not(feature = "mcp"))]
fn mcp_commands(_wf: &WorkflowDef) -> Vec<String> {
    Vec::new()
}

fn plan_with(fixed: &Fixed, policy: Option<&Policy>) -> Plan {
    // The planner borrows the patterns: no copy of the policy's strings.
    fn strs(p: &crate::policy::Patterns) -> Vec<&str> {
        p.iter().map(AsRef::as_ref).collect()
    }
    let lists = policy.map(|p| plan::PolicyLists {
        fs_read: strs(&p.fs.read),
        fs_write: strs(&p.fs.write),
        fs_delete: strs(&p.fs.delete),
        fs_list: strs(&p.fs.list),
        http_urls: strs(&p.http.urls),
        shell_commands: strs(&p.shell.commands),
    });
    let inputs = plan::Inputs {
        cwd: &fixed.cwd,
        policy: lists,
        features: fixed.features.clone(),
        mcp_commands: fixed.mcp_commands.clone(),
        connect_urls: fixed.connect_urls.clone(),
        bind_ports: fixed.bind_ports.clone(),
        runtime_fs: fixed.runtime_fs.clone(),
    };
    let mut plan = plan::plan(&inputs);
    resolve_existing(&mut plan);
    plan
}

/// The plan of a start: from the plan `agentd build` baked
/// (`Workflow::SANDBOX_PLAN`) when `policy` is the baked policy, completed
/// with what this start knows; otherwise planned from `policy` whole. Both
/// give the same plan (tested on every compat workflow's policy, and
/// `--print-sandbox` prints this one).
fn start_plan(wf: &WorkflowDef, fixed: &Fixed, policy: Option<&Policy>) -> Plan {
    let baked_policy = match (policy, wf.policy) {
        (Some(given), Some(baked)) => std::ptr::eq(given, baked),
        _ => false,
    };
    match wf.sandbox_plan {
        Some(baked) if baked_policy => {
            let mut plan = plan::extend(
                baked.to_plan(&fixed.features),
                &fixed.runtime_fs[fixed.constant_rules..],
                &fixed.connect_urls[fixed.static_urls..],
                &fixed.bind_ports,
            );
            resolve_existing(&mut plan);
            plan
        }
        _ => plan_with(fixed, policy),
    }
}

/// Landlock rules need an existing path. A write rule whose directory does
/// not exist yet goes on its nearest existing ancestor (a node may create
/// the directory; the in-process matcher still checks the exact pattern);
/// any other rule on a missing path grants nothing and is dropped. Both are
/// said in the rule's reason, so the printed plan is what is applied.
fn resolve_existing(plan: &mut Plan) {
    let Some(rules) = plan.fs.take() else {
        return;
    };
    let mut out = Vec::with_capacity(rules.len());
    let mut moved = false;
    for mut r in rules {
        if Path::new(&*r.path).exists() {
            out.push(r);
            continue;
        }
        if !r.access.contains(Access::WRITE) {
            continue;
        }
        moved = true;
        let mut dir = Path::new(&*r.path);
        while let Some(parent) = dir.parent() {
            dir = parent;
            if dir.exists() {
                break;
            }
        }
        r.why = format!(
            "{} (`{}` absent at start: nearest existing ancestor)",
            r.why, r.path
        )
        .into();
        r.path = dir.to_string_lossy().into_owned().into();
        out.push(r);
    }
    // The plan's rules are sorted and one per path; only a rule moved to
    // an ancestor can break that.
    if !moved {
        plan.fs = Some(out);
        return;
    }
    // Merging again keeps one rule per path.
    let mut merged: Vec<FsRule> = Vec::new();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    for r in out {
        match merged.last_mut() {
            Some(last) if last.path == r.path => {
                last.access = last.access.with(r.access);
                let why = last.why.to_mut();
                why.push_str("; ");
                why.push_str(&r.why);
            }
            _ => merged.push(r),
        }
    }
    plan.fs = Some(merged);
}

/// The plan this binary applies at start with `policy` in force.
#[must_use]
pub fn plan_for(wf: &WorkflowDef, policy: Option<&Policy>, needs: &StartNeeds) -> Plan {
    start_plan(wf, &fixed_for(wf, needs), policy)
}

/// [`plan_for`] planned from the policy whole, never from the baked plan:
/// what the baked plan must equal.
#[must_use]
pub fn plan_unbaked(wf: &WorkflowDef, policy: Option<&Policy>, needs: &StartNeeds) -> Plan {
    plan_with(&fixed_for(wf, needs), policy)
}

/// The plan applied at start and what it was computed from.
static APPLIED: OnceLock<(Fixed, Plan)> = OnceLock::new();

/// Why the sandbox could not be applied in `enforce` mode (exit 5).
#[derive(Debug, thiserror::Error)]
#[error("sandbox (mode enforce): {0}")]
pub struct EnforceError(String);

/// Apply the sandbox for workflow `wf` with `policy` in force, in `mode`. Best effort
/// logs what the kernel could not apply (`sandbox.failed`); enforce refuses.
///
/// # Errors
///
/// [`EnforceError`] in `enforce` mode when a wall is missing or partial.
pub fn apply(
    wf: &WorkflowDef,
    mode: Mode,
    policy: Option<&Policy>,
    needs: &StartNeeds,
) -> Result<(), EnforceError> {
    if mode == Mode::Off {
        if applied_wanted() {
            crate::obs::audit("sandbox.applied", json!({ "mode": "off" }));
        }
        return Ok(());
    }
    let fixed = fixed_for(wf, needs);
    let plan = start_plan(wf, &fixed, policy);
    let problems = apply_plan(&plan);
    let _ = APPLIED.set((fixed, plan));
    if problems.is_empty() {
        return Ok(());
    }
    if mode == Mode::Enforce {
        return Err(EnforceError(problems.join("; ")));
    }
    // Name/value pairs rather than a `json!` map: the same fields in the same
    // (sorted) order, without building and draining a map at every start that
    // reports this (docs/performance.md "Run once, issue 19 round 3").
    crate::obs::audit_pairs(
        FAILED_LEVEL,
        "sandbox.failed",
        vec![
            ("mode", Value::String(mode.as_str().to_owned())),
            ("reason", Value::String(problems.join("; "))),
        ],
    );
    Ok(())
}

/// Apply `plan`; the list of what could not be applied.
#[cfg(all(feature = "sandbox", target_os = "linux"))]
fn apply_plan(plan: &Plan) -> Vec<String> {
    let out = linux::apply(plan);
    let mut problems = Vec::new();
    if !out.landlock_full {
        problems.push(format!("landlock {}", out.landlock));
    }
    let seccomp = match &out.seccomp {
        Ok(n) => format!("{n} system calls allowed"),
        Err(e) => {
            problems.push(format!("seccomp not applied: {e}"));
            format!("not applied: {e}")
        }
    };
    if applied_wanted() {
        crate::obs::audit(
            "sandbox.applied",
            json!({
                "landlock": out.landlock,
                "landlock_fs_rules": plan.fs.as_ref().map(Vec::len),
                "seccomp": seccomp,
                "groups": plan.groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
            }),
        );
    }
    problems
}

/// Whether a sink takes `sandbox.applied` (info): its fields are built only
/// then, since every run-once start pays for them otherwise.
fn applied_wanted() -> bool {
    crate::obs::audit_enabled(APPLIED_LEVEL)
}

/// `audit_level("sandbox.applied")` and `audit_level("sandbox.failed")`,
/// written out: every start asks (a test checks they agree).
const APPLIED_LEVEL: tracing_core::Level = tracing_core::Level::INFO;
const FAILED_LEVEL: tracing_core::Level = tracing_core::Level::WARN;

#[cfg(not(all(feature = "sandbox", target_os = "linux")))]
fn apply_plan(_plan: &Plan) -> Vec<String> {
    vec![
        "this binary has no kernel sandbox (built without the `sandbox` feature or not for Linux)"
            .to_owned(),
    ]
}

/// The Landlock ABI of the running kernel (0: none, or not Linux).
#[must_use]
pub fn kernel_abi() -> i32 {
    #[cfg(all(feature = "sandbox", target_os = "linux"))]
    return linux::kernel_abi();
    #[cfg(not(all(feature = "sandbox", target_os = "linux")))]
    0
}

/// Whether `policy` (a reloaded `--policy` file) stays within the sandbox
/// applied at start. Always `Ok` when none was applied.
///
/// # Errors
///
/// What the new policy would need that the applied sandbox does not allow.
pub fn check_reload(policy: &Policy) -> Result<(), String> {
    let Some((fixed, applied)) = APPLIED.get() else {
        return Ok(());
    };
    plan::covers(applied, &plan_with(fixed, Some(policy)))
}

/// `--print-sandbox`: the plan, and what this kernel supports.
#[must_use]
pub fn render(plan: &Plan, mode: Mode) -> String {
    let mut out = plan::render(plan, mode);
    let abi = kernel_abi();
    let compiled = cfg!(all(feature = "sandbox", target_os = "linux"));
    out.push_str(&format!(
        "kernel: Landlock ABI {abi}{}; sandbox compiled in: {}\n",
        if abi >= 4 {
            ""
        } else {
            " (TCP port rules need ABI 4)"
        },
        if compiled { "yes" } else { "no" },
    ));
    out
}

#[cfg(test)]
mod level_tests {
    #[test]
    fn the_written_out_levels_are_the_ones_audit_level_gives() {
        let level = crate::obs::audit_level;
        assert_eq!(super::APPLIED_LEVEL, level("sandbox.applied"));
        assert_eq!(super::FAILED_LEVEL, level("sandbox.failed"));
    }
}
