//! `agentd check --explain-sandbox`: the kernel sandbox a workflow's binary
//! will apply, computed at build time by the runtime's own planner (through
//! `codegen::sections::sandbox`, which also bakes the plan into the binary), so
//! the rules an operator reviews in CI are the rules the binary derives.
//!
//! Owns only the rendering. What the binary adds at start (its `--state-dir`,
//! log files, `--policy` file, TLS and CA files, `--bind` port) is named, not
//! guessed: the exact list is the binary's `--print-sandbox`. Never fails: a
//! loaded program always has a plan.

pub use crate::codegen::sections::sandbox::{bake_inputs, baked, mode, plan};
use crate::ir::ProgramIr;
use crate::load::Program;

/// The plan of an error-free program (`ir` is its lowering).
#[must_use]
pub fn plan_of(program: &Program, ir: &ProgramIr) -> plan::Plan {
    let features = match program.root() {
        Some(root) => crate::codegen::program_features(ir, &root.doc),
        None => crate::codegen::features::Features::new(),
    };
    crate::codegen::sections::sandbox::plan_of(program, &features)
}

/// The text `--explain-sandbox` prints for one workflow.
#[must_use]
pub fn explain(program: &Program, ir: &ProgramIr) -> String {
    let mode = mode(program);
    if mode == plan::Mode::Off {
        return "sandbox mode: off ([sandbox] mode = \"off\": no kernel sandbox is compiled in)\n"
            .to_owned();
    }
    let mut out = plan::render(&plan_of(program, ir), mode);
    out.push_str(
        "at start the binary adds: /dev/null, /dev/urandom, /proc/self; its --state-dir; the \
         directories of its log and audit files, --policy file, [[secrets]] files, CA bundle \
         and [server.tls] files; the --bind port. A write rule on a missing directory goes on \
         its nearest existing ancestor. Exact rules: run the binary with --print-sandbox.\n",
    );
    out
}
