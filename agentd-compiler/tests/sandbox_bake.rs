//! The sandbox plan `agentd build` bakes into a binary (`Workflow::SANDBOX_PLAN`)
//! and completes at start (`plan::extend`) must be the plan the binary would
//! compute from its policy whole at start. Checked for every workflow of the
//! compat corpus and `workflows/` whose plan can be baked, with what a start
//! can add: nothing; a state dir, `/proc/<pid>`, a log directory, a rule on a
//! path the baked plan already has (reasons join), an `--intel-http` URL with
//! a port and a `--bind` port; and a URL with no fixed port (connect opens).
//! Real binaries print the completed plan with `--print-sandbox`, compared
//! with `agentd check --explain-sandbox` in `tests/sandbox_e2e.rs`.

use agentd_compiler::frontend::sandbox::{bake_inputs, plan};
use agentd_compiler::load::{LoadOptions, load};

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{compat, workspace};

/// What a start may add to the baked inputs.
struct Start {
    fs: Vec<plan::FsRule>,
    urls: Vec<(String, String)>,
    bind: Vec<u16>,
}

fn starts() -> Vec<Start> {
    use plan::{Access, FsRule};
    let rw = Access::READ.with(Access::WRITE);
    vec![
        Start {
            fs: Vec::new(),
            urls: Vec::new(),
            bind: Vec::new(),
        },
        Start {
            fs: vec![
                FsRule::new("/proc/4242", Access::READ, "runtime (/proc/self)"),
                FsRule::new("/var/lib/agentd", rw.with(Access::REMOVE), "--state-dir"),
                FsRule::new("/var/log/agentd", Access::WRITE, "log/audit file"),
                FsRule::new("/dev/null", Access::WRITE, "--reload-file"),
                FsRule::new("/tmp", rw, "--reload-file (created when missing)"),
            ],
            urls: vec![("http://127.0.0.1:9000/rpc".into(), "--intel-http".into())],
            bind: vec![8080],
        },
        Start {
            fs: vec![FsRule::new("/etc/ssl/certs", Access::READ, "SSL_CERT_FILE")],
            urls: vec![
                ("https://intel.example/rpc".into(), "--intel-http".into()),
                ("ftp://no-fixed-port".into(), "--state-url".into()),
            ],
            bind: vec![443, 443],
        },
    ]
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn a_baked_plan_completed_at_start_equals_the_plan_computed_from_the_policy_whole() {
    let mut roots = vec![workspace().join("workflows")];
    roots.push(compat::dir());
    let files = compat::toml_files(&roots);
    let opts = LoadOptions::default();
    let mut baked = 0;
    for file in &files {
        let program = load(file, &opts);
        if program.has_errors() {
            continue;
        }
        let Some(root) = program.root() else {
            continue;
        };
        let ir = agentd_compiler::ir::lower(&program);
        let features = agentd_compiler::codegen::program_features(&ir, &root.doc);
        let Some(inputs) = bake_inputs(&root.doc, &features) else {
            continue;
        };
        baked += 1;
        let at_build = plan::plan(&inputs);
        for start in starts() {
            let mut whole = inputs.clone();
            whole.runtime_fs.extend(start.fs.iter().cloned());
            whole.connect_urls.extend(start.urls.iter().cloned());
            whole.bind_ports.clone_from(&start.bind);
            let completed = plan::extend(at_build.clone(), &start.fs, &start.urls, &start.bind);
            assert_eq!(
                completed,
                plan::plan(&whole),
                "{}: the baked plan completed at start differs from the whole plan",
                file.display()
            );
        }
    }
    // The corpus has many workflows with an absolute `[policy]`: a loader
    // that found none would make this test pass vacuously.
    assert!(
        baked >= 5,
        "only {baked} of {} workflows had a bakeable plan",
        files.len()
    );
}
