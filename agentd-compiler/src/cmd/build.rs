//! `agentd build FILE -o OUT` — validate, generate, and compile one binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use agentd_compiler::build::{self, BuildError, BuildOptions, Linking, Profile};
use agentd_compiler::codegen::features::RuntimeFeature;
use agentd_compiler::handlers::{self, HandlerCrate};
use agentd_compiler::ship::ShipOptions;
use agentd_compiler::signing::VerifyOptions;

use super::{exit_for_failed_load, load_handler_crate};
use crate::{EXIT_CARGO, EXIT_OK, EXIT_SIGNATURE, EXIT_USAGE};

#[derive(Clone)]
pub struct Options {
    pub output: Option<PathBuf>,
    pub runtime: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub release_lto: bool,
    /// `--fleet`: link the runtime's `fleet` feature (the Redis store).
    pub fleet: bool,
    pub dynamic: bool,
    /// `--handlers PATH`: the crate custom Rust nodes are bound from.
    pub handlers: Option<PathBuf>,
    /// `--policy-overrides`: the binary accepts `--policy FILE`.
    pub policy_overrides: bool,
    pub progress: Option<bool>,
    pub color: bool,
    pub signing: VerifyOptions,
    /// `--image`, `--sbom`, `--provenance-out` and their options.
    pub ship: ShipOptions,
}

pub fn run(file: &Path, opts: Options) -> u8 {
    match build_binary(file, opts) {
        Ok(_) => EXIT_OK,
        Err(code) => code,
    }
}

/// Validate, generate and compile `file`; the path of the binary, or the exit code
/// after the problem was reported (shared with `agentd run`).
pub fn build_binary(file: &Path, opts: Options) -> Result<PathBuf, u8> {
    let handler_crate = load_handler_crate(opts.handlers.as_deref())?;
    // With a handler crate, `type = "rust"` nodes are allowed and each
    // `handler = "x"` calls `::agentd_handlers::x`.
    let compiled = super::compile_and_report(
        file,
        handler_crate.is_some(),
        opts.policy_overrides,
        &opts.signing,
        opts.color,
    );
    let Some(mut generated) = compiled.generated else {
        if super::signing::has_signing_error(&compiled.program.diagnostics) {
            eprintln!(
                "error: `{}` refused: a workflow file is unsigned or wrongly signed",
                file.display()
            );
            return Err(EXIT_SIGNATURE);
        }
        return Err(exit_for_failed_load(&compiled.program, file));
    };
    if opts.fleet {
        // Fleet mode shares serve-mode state; a one-shot workflow has none.
        if !generated.features.contains(&RuntimeFeature::Serve) {
            eprintln!(
                "error: --fleet: workflow `{}` has no [[http_routes]] and no cron or interval \
                 trigger; fleet mode shares serve-mode state (idempotency keys, rate limits, \
                 trigger ticks), so there is nothing to share",
                generated.workflow_name
            );
            return Err(EXIT_USAGE);
        }
        generated.features.push(RuntimeFeature::Fleet);
    }
    let output = opts
        .output
        .unwrap_or_else(|| PathBuf::from(build::slug(&generated.workflow_name)));
    let mut bopts = BuildOptions::new(output);
    bopts.runtime = opts.runtime;
    bopts.cache_dir = opts.cache_dir;
    bopts.handlers = handler_crate.clone();
    if opts.release_lto {
        bopts.profile = Profile::ReleaseLto;
    }
    if opts.dynamic {
        bopts.linking = Linking::Dynamic;
    }
    if let Some(p) = opts.progress {
        bopts.progress = p;
    }
    let static_link =
        bopts.linking == Linking::Static && cfg!(all(target_os = "linux", target_arch = "x86_64"));
    // Refuse what shipping would refuse before spending a cargo build on it.
    if opts.ship.image.is_some() && !static_link {
        eprintln!("error: {}", agentd_compiler::ship::ShipError::NotStatic);
        return Err(EXIT_USAGE);
    }
    if let Some(Err(e)) = opts
        .ship
        .tag
        .as_deref()
        .map(agentd_compiler::ship::image::normalize_reference)
    {
        eprintln!("error: {e}");
        return Err(EXIT_USAGE);
    }
    let started = std::time::Instant::now();
    match build::build_with_layout(&generated, &bopts) {
        Ok((out, layout)) => {
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "built `{}` (workflow `{}`, {:.2} MB) in {:.1}s",
                out.display(),
                generated.workflow_name,
                size as f64 / 1_000_000.0,
                started.elapsed().as_secs_f64()
            );
            if opts.ship.any() {
                let serves_http = compiled
                    .program
                    .root()
                    .is_some_and(|r| !r.doc.http_routes.is_empty());
                let built = agentd_compiler::ship::BuiltBinary {
                    path: &out,
                    manifest: &layout.dir.join("Cargo.toml"),
                    generated: &generated,
                    // Static builds name their target; a dynamic build is for the
                    // host, which is the same triple on x86_64 Linux with glibc.
                    target: (static_link
                        || cfg!(all(
                            target_os = "linux",
                            target_arch = "x86_64",
                            target_env = "gnu"
                        )))
                    .then_some(build::STATIC_TARGET),
                    static_link,
                    profile: bopts.profile.name(),
                    serves_http,
                };
                let code = super::ship::report(agentd_compiler::ship::ship(&built, &opts.ship));
                return if code == EXIT_OK { Ok(out) } else { Err(code) };
            }
            Ok(out)
        }
        Err(BuildError::CargoFailed { status, log }) => {
            if !log.is_empty() {
                eprintln!("{log}");
            }
            eprintln!("error: cargo failed to build the generated crate ({status})");
            if let Some(hint) = toolchain_hint(&log, static_link) {
                eprintln!("{hint}");
                return Err(EXIT_CARGO);
            }
            if log.is_empty() && static_link {
                eprintln!("{MAYBE_NO_STATIC_LIBC}");
            }
            if let Some(note) = unmarked_runtime_note(bopts.runtime.as_deref()) {
                eprintln!("{note}");
                return Err(EXIT_CARGO);
            }
            match &handler_crate {
                Some(h) => {
                    let names = handlers::handler_names(&compiled.program);
                    handler_hint(h, &names, &log);
                }
                None => eprintln!(
                    "help: this is a bug in agentd if `agentd check` passes; please report it with `agentd emit` output"
                ),
            }
            Err(EXIT_CARGO)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(EXIT_USAGE)
        }
    }
}

/// What to tell the user when cargo failed because of the machine's toolchain
/// rather than agentd: no C linker, or no static C library for a static build.
fn toolchain_hint(log: &str, static_link: bool) -> Option<&'static str> {
    const NO_LINKER: &str = "help: cargo needs a C compiler to link the binary; install one \
        (Debian/Ubuntu: `apt-get install gcc`, Fedora: `dnf install gcc`)";
    const NO_STATIC_LIBC: &str = "help: a static build links the C library's static archives \
        (libc.a and friends), which this machine lacks; install them (Debian/Ubuntu: \
        `apt-get install libc6-dev`, Fedora/RHEL: `dnf install glibc-static`) or build with \
        `--dynamic`";
    if log.contains("linker `cc` not found") {
        return Some(NO_LINKER);
    }
    if static_link {
        let missing_archive = [
            "-lc",
            "-lm",
            "-lpthread",
            "-lrt",
            "-ldl",
            "-lutil",
            "-lgcc_eh",
        ]
        .iter()
        .any(|lib| log.contains(&format!("cannot find {lib}")));
        if missing_archive || log.contains("cannot find crt1.o") {
            return Some(NO_STATIC_LIBC);
        }
    }
    None
}

/// With live progress cargo's output went to the terminal, so the log cannot be
/// read: a static build names the likeliest machine problem as a possibility.
const MAYBE_NO_STATIC_LIBC: &str = "help: if the link step failed with `cannot find -lc` \
    (or another `-l` library), this machine lacks the static C library a static build \
    needs: install it (Debian/Ubuntu: `apt-get install libc6-dev`, Fedora/RHEL: \
    `dnf install glibc-static`) or build with `--dynamic`";

/// After a failed build with `--handlers`: name the handlers rustc could not find in
/// the crate (or all of them) and where they must be defined.
fn handler_hint(h: &HandlerCrate, names: &BTreeSet<String>, log: &str) {
    let alias = handlers::CRATE_ALIAS;
    let lib = h.lib.display();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| {
            // rustc: "cannot find function `x` in crate `agentd_handlers`" (or `::agentd_handlers`).
            log.contains(&format!("`{n}` in crate `{alias}`"))
                || log.contains(&format!("`{n}` in crate `::{alias}`"))
        })
        .collect();
    for name in &missing {
        eprintln!(
            "help: handler `{name}` is not defined in crate `{}`: add `pub fn {name}(cx: &Cx<'_>, input: &Value) -> Result<NodeOutput, NodeError>` to {lib} (or re-export it at the crate root)",
            h.package
        );
    }
    if missing.is_empty() {
        let list = names
            .iter()
            .map(|n| format!("`{alias}::{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!(
            "help: the workflow's Rust nodes call {list} in crate `{}` ({lib}); each must be a `pub fn(&Cx<'_>, &serde_json::Value) -> Result<NodeOutput, NodeError>` at the crate root (or re-exported there); see rustc's errors above",
            h.package
        );
    }
}

/// When the build used a runtime tree that declares no codegen contract, the
/// likely cause of a failed build: that tree is older than this agentd.
pub(super) fn unmarked_runtime_note(explicit: Option<&std::path::Path>) -> Option<String> {
    use agentd_compiler::build::{RuntimeContract, runtime_contract, runtime_path};
    let runtime = runtime_path(explicit).ok()?;
    match runtime_contract(&runtime) {
        Ok(RuntimeContract::Unmarked) => Some(format!(
            "note: the agentd-runtime at `{}` declares no codegen contract \
             (`[package.metadata.agentd] codegen-contract`): it predates the contract \
             check and is likely older than this agentd, which generates code for contract {}; \
             build against the agentd-runtime that came with this agentd",
            runtime.display(),
            agentd_compiler::build::CODEGEN_CONTRACT
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_failures_get_a_hint_and_code_failures_do_not() {
        let no_libc = "error: linking with `cc` failed: exit status: 1\n  = note: /usr/bin/ld: cannot find -lc: No such file or directory\n";
        let hint = toolchain_hint(no_libc, true).unwrap_or_default();
        assert!(
            hint.contains("glibc-static") && hint.contains("--dynamic"),
            "{hint}"
        );
        // The same message from a dynamic build is not about static archives.
        assert_eq!(toolchain_hint(no_libc, false), None);
        let no_cc =
            "error: linker `cc` not found\n  |\n  = note: No such file or directory (os error 2)";
        let hint = toolchain_hint(no_cc, false).unwrap_or_default();
        assert!(hint.contains("C compiler"), "{hint}");
        let rustc = "error[E0425]: cannot find value `x` in this scope";
        assert_eq!(toolchain_hint(rustc, true), None);
    }
}
