//! The sandbox section: maps a workflow's `[policy]`, `[sandbox]` and the
//! features it compiles in to the inputs of the runtime's own planner
//! (`agentd-core/src/sandbox/plan.rs`, included below), for the plan
//! `agentd build` bakes into the binary (`Workflow::SANDBOX_PLAN`) and the
//! one `agentd check --explain-sandbox` shows.
//!
//! Owns only the mapping from the parsed workflow to the planner's inputs;
//! never renders (the front end does).

use crate::codegen::features::{Features, RuntimeFeature};
use crate::load::Program;
use crate::model::{SandboxMode, SecretSource};

/// The runtime's planner, shared source.
#[path = "../../../../agentd-core/src/sandbox/plan.rs"]
#[allow(dead_code)]
pub mod plan;

/// The mode the binary starts in (before `--sandbox`).
#[must_use]
pub fn mode(program: &Program) -> plan::Mode {
    match program
        .root()
        .and_then(|r| r.doc.sandbox.as_ref())
        .map(|s| s.mode)
    {
        Some(SandboxMode::Enforce) => plan::Mode::Enforce,
        Some(SandboxMode::Off) => plan::Mode::Off,
        Some(SandboxMode::BestEffort) | None => plan::Mode::BestEffort,
    }
}

/// The plan of an error-free program, given the runtime features it compiles
/// in (`codegen::program_features`).
#[must_use]
pub fn plan_of(program: &Program, program_features: &Features) -> plan::Plan {
    let cwd = std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".to_owned());
    let Some(root) = program.root() else {
        return plan::Plan::default();
    };
    let doc = &root.doc;
    let policy = doc.policy.as_ref().map(|p| {
        fn v(l: &[String]) -> Vec<&str> {
            l.iter().map(String::as_str).collect()
        }
        plan::PolicyLists {
            fs_read: v(&p.fs.read),
            fs_write: v(&p.fs.write),
            fs_delete: v(&p.fs.delete),
            fs_list: v(&p.fs.list),
            http_urls: v(&p.http.urls),
            shell_commands: v(&p.shell.commands),
        }
    });
    let features: Vec<&str> = program_features.iter().map(|f| f.as_str()).collect();
    let path_var = std::env::var("PATH").unwrap_or_default();
    let exists = |p: &str| std::path::Path::new(p).is_file();
    let mcp_commands = if program_features.contains(&RuntimeFeature::Mcp) {
        doc.mcp_servers
            .iter()
            .filter_map(|s| s.command.first())
            .map(|c| plan::resolve_command(c, &path_var, &exists))
            .collect()
    } else {
        Vec::new()
    };
    let mut connect_urls = Vec::new();
    for b in crate::codegen::sections::llm::backends(doc) {
        let url = b
            .base_url
            .clone()
            .unwrap_or_else(|| "https://default-provider-endpoint".to_owned());
        connect_urls.push((url, format!("backend `{}`", b.name)));
    }
    if let Some(otel) = doc.logging.as_ref().and_then(|l| l.otel.as_ref()) {
        connect_urls.push((otel.endpoint.clone(), "[logging.otel]".to_owned()));
    }
    // The binary adds the same rules at start (agentd-runtime's sandbox.rs).
    let mut runtime_fs = Vec::new();
    for s in &doc.secrets {
        match &s.source {
            SecretSource::Oauth2(o) => connect_urls.push((
                o.token_url.clone(),
                format!("[[secrets]] {} token_url", s.name),
            )),
            SecretSource::Command(c) => {
                if let Some(program) = c.argv.first() {
                    runtime_fs.push(plan::FsRule::new(
                        plan::resolve_command(program, &path_var, &exists),
                        plan::Access::EXEC,
                        format!("[[secrets]] {} command (run at each reload)", s.name),
                    ));
                }
            }
            SecretSource::Env(_) | SecretSource::File(_) => {}
        }
    }
    let inputs = plan::Inputs {
        cwd: &cwd,
        policy,
        features,
        mcp_commands,
        connect_urls,
        bind_ports: Vec::new(),
        runtime_fs,
    };
    plan::plan(&inputs)
}

/// The plan `agentd build` bakes into the binary (`Workflow::SANDBOX_PLAN`):
/// the root's `[policy]` with the rules and URLs that do not depend on how
/// the binary is started, in the order the runtime adds them
/// (agentd-runtime's `sandbox.rs`, `fixed_for`). `None` without a `[policy]`
/// or when [`plan::bakeable`] says the plan depends on the working
/// directory or `PATH`.
#[must_use]
pub fn baked(doc: &crate::model::WorkflowDoc, program_features: &Features) -> Option<plan::Plan> {
    bake_inputs(doc, program_features).map(|inputs| plan::plan(&inputs))
}

/// The planner's inputs [`baked`] plans from: `runtime_fs` and
/// `connect_urls` hold only what does not depend on how the binary is
/// started; the binary adds the rest with `plan::extend`.
#[must_use]
pub fn bake_inputs<'a>(
    doc: &'a crate::model::WorkflowDoc,
    program_features: &Features,
) -> Option<plan::Inputs<'a>> {
    let p = doc.policy.as_ref()?;
    fn v(l: &[String]) -> Vec<&str> {
        l.iter().map(String::as_str).collect()
    }
    let policy = plan::PolicyLists {
        fs_read: v(&p.fs.read),
        fs_write: v(&p.fs.write),
        fs_delete: v(&p.fs.delete),
        fs_list: v(&p.fs.list),
        http_urls: v(&p.http.urls),
        shell_commands: v(&p.shell.commands),
    };
    let features: Vec<&str> = program_features.iter().map(|f| f.as_str()).collect();
    if !plan::bakeable(&policy, &features) {
        return None;
    }
    let mut connect_urls = Vec::new();
    if features.contains(&"secrets-oauth2") {
        for s in &doc.secrets {
            if let SecretSource::Oauth2(o) = &s.source {
                connect_urls.push((
                    o.token_url.clone(),
                    format!("[[secrets]] {} token_url", s.name),
                ));
            }
        }
    }
    if features.contains(&"llm-remote") {
        for b in crate::codegen::sections::llm::backends(doc) {
            let url = b
                .base_url
                .clone()
                .unwrap_or_else(|| "https://default-provider-endpoint".to_owned());
            connect_urls.push((url, format!("backend `{}`", b.name)));
        }
    }
    if features.contains(&"otel")
        && let Some(otel) = doc.logging.as_ref().and_then(|l| l.otel.as_ref())
    {
        connect_urls.push((otel.endpoint.clone(), "[logging.otel]".to_owned()));
    }
    let runtime_fs = plan::constant_runtime_rules(&features);
    Some(plan::Inputs {
        // Unused: every pattern is absolute (`bakeable`).
        cwd: "/",
        policy: Some(policy),
        features,
        mcp_commands: Vec::new(),
        connect_urls,
        bind_ports: Vec::new(),
        runtime_fs,
    })
}
