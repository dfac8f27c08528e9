//! Generated code → a binary: write the generated crate, run cargo, copy the result.
//!
//! Every generated crate shares one Cargo target directory (under `AGENTD_CACHE_DIR`)
//! and pins the dependency versions of this workspace's `Cargo.lock`, so
//! `agentd-runtime` and its dependencies are compiled once per feature set and every
//! later workflow only compiles its own small crate and links. The crate is written
//! from `templates/` (embedded in the compiler binary, so an installed `agentd` needs
//! no source tree except the runtime's).

use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::codegen::GeneratedCrate;

const CARGO_TOML_TEMPLATE: &str = include_str!("../../templates/Cargo.toml.in");
const MAIN_RS_TEMPLATE: &str = include_str!("../../templates/main.rs.in");
/// The linker script that drops unwind data from static binaries ([`final_link_args`]).
const NO_UNWIND_DATA_LD: &str = include_str!("../../templates/no-unwind-data.ld");
/// The workspace's lockfile, used when the runtime's workspace has none beside it.
const WORKSPACE_LOCK: &str = include_str!("../../Cargo.lock");

/// The target triple static builds are made for.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Which Cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Optimised, stripped, no LTO: fast per-workflow builds.
    Release,
    /// Fat LTO, one codegen unit, `opt-level = "s"`: the smallest binary.
    ReleaseLto,
}

impl Profile {
    /// The Cargo profile's name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::ReleaseLto => "release-lto",
        }
    }
}

/// How to link the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    /// Statically linked (`+crt-static`) where the host supports it.
    Static,
    /// The platform default (dynamic glibc).
    Dynamic,
}

/// Everything `build` needs besides the generated code.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Where to put the binary.
    pub output: PathBuf,
    /// `--runtime PATH`; falls back to `AGENTD_RUNTIME_PATH`, then the source tree the
    /// compiler was built from.
    pub runtime: Option<PathBuf>,
    /// `--cache-dir`; falls back to `AGENTD_CACHE_DIR`, then the user's cache dir.
    pub cache_dir: Option<PathBuf>,
    pub profile: Profile,
    pub linking: Linking,
    /// Show cargo's progress (default: when stderr is a terminal).
    pub progress: bool,
    /// `--handlers PATH`: the user crate custom Rust nodes are bound from.
    pub handlers: Option<crate::handlers::HandlerCrate>,
}

impl BuildOptions {
    pub fn new(output: PathBuf) -> Self {
        BuildOptions {
            output,
            runtime: None,
            cache_dir: None,
            profile: Profile::Release,
            linking: Linking::Static,
            progress: std::io::stderr().is_terminal(),
            handlers: None,
        }
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error(
        "cannot find agentd-runtime at `{0}` (no Cargo.toml there); pass --runtime PATH or set AGENTD_RUNTIME_PATH"
    )]
    RuntimeNotFound(PathBuf),
    #[error("{what} `{path}`: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not run cargo (`{cargo}`): {source}")]
    CargoSpawn {
        cargo: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cargo build failed ({status})")]
    CargoFailed {
        status: String,
        /// Cargo's captured output (empty when it was shown live).
        log: String,
    },
    #[error("cargo reported success but `{0}` was not produced")]
    MissingArtifact(PathBuf),
    #[error(transparent)]
    Handlers(#[from] crate::handlers::HandlerCrateError),
    #[error(
        "the agentd-runtime at `{path}` implements codegen contract {runtime}, but this agentd generates code for contract {compiler}; build against the agentd-runtime that came with this agentd (or use the agentd of that runtime)"
    )]
    RuntimeContract {
        path: PathBuf,
        runtime: u32,
        compiler: u32,
    },
    #[error(
        "the agentd-runtime at `{path}` has an unreadable codegen contract (`[package.metadata.agentd] codegen-contract` must be a whole number): {reason}"
    )]
    RuntimeContractUnreadable { path: PathBuf, reason: String },
}

/// The contract between the code this compiler generates and the runtime API it
/// calls (ARCHITECTURE.md, "The codegen contract"). agentd-runtime declares the
/// one it implements as `[package.metadata.agentd] codegen-contract` in its
/// Cargo.toml; both numbers move together, in the commit that changes what
/// generated code needs from the runtime.
pub const CODEGEN_CONTRACT: u32 = 2;

/// What a runtime source tree says about the codegen contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeContract {
    /// It implements [`CODEGEN_CONTRACT`].
    Matches,
    /// It declares none: a tree from before the contract was declared, whose
    /// fit can only be learned by building.
    Unmarked,
}

/// Read `runtime`'s codegen contract from its Cargo.toml; a different one is
/// an error, so a mismatched `--runtime` is refused before cargo runs.
pub fn runtime_contract(runtime: &Path) -> Result<RuntimeContract, BuildError> {
    let manifest = runtime.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(io("read", &manifest))?;
    let unreadable = |reason: String| BuildError::RuntimeContractUnreadable {
        path: runtime.to_path_buf(),
        reason,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let declared = table
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("agentd"))
        .and_then(|a| a.get("codegen-contract"));
    let Some(declared) = declared else {
        return Ok(RuntimeContract::Unmarked);
    };
    let number = declared
        .as_integer()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| unreadable(format!("found `{declared}`")))?;
    if number == CODEGEN_CONTRACT {
        Ok(RuntimeContract::Matches)
    } else {
        Err(BuildError::RuntimeContract {
            path: runtime.to_path_buf(),
            runtime: number,
            compiler: CODEGEN_CONTRACT,
        })
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Locate the runtime crate.
pub fn runtime_path(explicit: Option<&Path>) -> Result<PathBuf, BuildError> {
    let candidate = explicit
        .map(Path::to_path_buf)
        .or_else(|| non_empty_env("AGENTD_RUNTIME_PATH").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../agentd-runtime"));
    let candidate = std::fs::canonicalize(&candidate).unwrap_or(candidate);
    if candidate.join("Cargo.toml").is_file() {
        Ok(candidate)
    } else {
        Err(BuildError::RuntimeNotFound(candidate))
    }
}

/// The cache root: `explicit`, `AGENTD_CACHE_DIR`, `$XDG_CACHE_HOME/agentd`,
/// `$HOME/.cache/agentd`, or the temp dir.
pub fn cache_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| non_empty_env("AGENTD_CACHE_DIR").map(PathBuf::from))
        .or_else(|| non_empty_env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("agentd")))
        .or_else(|| non_empty_env("HOME").map(|d| PathBuf::from(d).join(".cache/agentd")))
        .unwrap_or_else(|| std::env::temp_dir().join("agentd-cache"))
}

fn non_empty_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// Where a generated crate lives and what it is called.
#[derive(Debug, Clone)]
pub struct CrateLayout {
    pub dir: PathBuf,
    pub package: String,
    pub bin: String,
}

/// Write the generated crate under the cache and return its layout. Files are only
/// rewritten when their content changes, so cargo's fingerprints stay warm.
pub fn write_crate(
    generated: &GeneratedCrate,
    runtime: &Path,
    cache: &Path,
    handlers: Option<&crate::handlers::HandlerCrate>,
) -> Result<CrateLayout, BuildError> {
    let slug = slug(&generated.workflow_name);
    let package = format!("agentd-wf-{slug}");
    // The always-compiled families are not named, so workflows that differ only in
    // them share one compiled runtime.
    let features = crate::codegen::features::cargo_features(&generated.features)
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let handlers_line = handlers.map(|h| h.dependency_line()).unwrap_or_default();
    let version = env!("CARGO_PKG_VERSION");
    let main_rs = match &generated.main_override {
        Some(main) => main.clone(),
        None => MAIN_RS_TEMPLATE
            .replace("{{compiler_version}}", version)
            .replace("{{workflow}}", &generated.workflow_name.replace('\n', " ")),
    };
    // The binary name (and so the crate directory) carries a digest of everything
    // written into the crate, not only of the workflow's sources: cargo copies a
    // binary to its final path only when it relinks, so two programs sharing one
    // name would hand back each other's binary from the shared target dir, and two
    // builds of one workflow with different flags (`--fleet`, `--policy-overrides`,
    // `--handlers`) running at once would rewrite each other's manifest.
    let variant = {
        let mut h = Sha256::new();
        for part in [
            generated.source_hash.as_str(),
            &features,
            &handlers_line,
            &main_rs,
            &generated.code,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let bin = format!("{slug}-{variant}");
    let dir = cache.join("crates").join(&bin);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(io("cannot create", &src))?;

    let cargo_toml = CARGO_TOML_TEMPLATE
        .replace("{{compiler_version}}", version)
        .replace("{{package}}", &package)
        .replace("{{bin}}", &bin)
        .replace(
            "{{runtime_path}}",
            &toml_escape(&runtime.display().to_string()),
        )
        .replace("{{features}}", &features)
        .replace("{{handlers_dependency}}", &handlers_line);

    write_if_changed(&dir.join("Cargo.toml"), &cargo_toml)?;
    write_if_changed(&src.join("main.rs"), &main_rs)?;
    write_if_changed(&src.join("workflow.rs"), &generated.code)?;
    let lock_path = dir.join("Cargo.lock");
    if !lock_path.exists() {
        let lock = std::fs::read_to_string(runtime.join("../Cargo.lock"))
            .unwrap_or_else(|_| WORKSPACE_LOCK.to_string());
        write_if_changed(&lock_path, &lock)?;
    }
    Ok(CrateLayout { dir, package, bin })
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), BuildError> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(io("cannot write", path))
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A name usable as a Cargo package/binary name: lowercase ASCII alphanumerics and `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "workflow".to_string()
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("wf-{out}")
    } else {
        out
    }
}

/// Build the generated crate with cargo and copy the binary to `opts.output`.
pub fn build(generated: &GeneratedCrate, opts: &BuildOptions) -> Result<PathBuf, BuildError> {
    build_with_layout(generated, opts).map(|(out, _)| out)
}

/// [`build`], also returning where the generated crate was written (its manifest and
/// `Cargo.lock` are what `--sbom` resolves).
pub fn build_with_layout(
    generated: &GeneratedCrate,
    opts: &BuildOptions,
) -> Result<(PathBuf, CrateLayout), BuildError> {
    let runtime = runtime_path(opts.runtime.as_deref())?;
    runtime_contract(&runtime)?;
    let cache = cache_dir(opts.cache_dir.as_deref());
    if let Some(h) = &opts.handlers {
        h.check_runtime(&runtime)?;
    }
    let layout = write_crate(generated, &runtime, &cache, opts.handlers.as_ref())?;
    let target_dir = cache.join("target");
    let static_link =
        opts.linking == Linking::Static && cfg!(all(target_os = "linux", target_arch = "x86_64"));

    // The runtime's core crate sits beside it (`agentd-core`, ARCHITECTURE.md "The
    // core and the facade"); `runtime` is canonical, so its parent is too.
    let core = runtime.parent().map(|dir| dir.join("agentd-core"));
    let flags = rustflags(
        static_link,
        &user_rustflags(),
        &[
            (cargo_home(), "/cargo"),
            (Some(cache.clone()), "/agentd-cache"),
            (Some(runtime.clone()), "/agentd-runtime"),
            (core, "/agentd-core"),
        ],
    );

    // A user's handler crate may link C++ that throws and catches its own exceptions:
    // its binaries keep their unwind data.
    let no_unwind_data = if static_link && opts.handlers.is_none() {
        let script = cache.join("link").join("no-unwind-data.ld");
        let dir = cache.join("link");
        std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        write_if_changed(&script, NO_UNWIND_DATA_LD)?;
        Some(script)
    } else {
        None
    };
    let link_args = final_link_args(no_unwind_data.as_deref());

    let run = |offline: bool| -> Result<(std::process::ExitStatus, String), BuildError> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(&cargo);
        // `cargo rustc` rather than `cargo build`: the same build, plus arguments for
        // the final binary's rustc only (`final_link_args`), which leave the
        // dependencies' fingerprints alone.
        cmd.arg("rustc")
            .arg("--manifest-path")
            .arg(layout.dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .arg("--profile")
            .arg(opts.profile.name())
            .arg("--bin")
            .arg(&layout.bin);
        if offline {
            cmd.arg("--offline");
        }
        if static_link {
            // With `--target`, cargo applies the flags below to target artifacts only:
            // proc-macros and build scripts (host) stay dynamic and keep unwind tables.
            cmd.arg("--target").arg(STATIC_TARGET);
        }
        cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
        cmd.env_remove("RUSTFLAGS");
        // Builds made from inside `cargo test` must not inherit its per-package flags.
        for var in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "RUSTC_WORKSPACE_WRAPPER",
        ] {
            cmd.env_remove(var);
        }
        if !opts.progress {
            cmd.arg("--quiet").arg("--color").arg("never");
        }
        if !link_args.is_empty() {
            cmd.arg("--").args(&link_args);
        }
        if opts.progress {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            let status = cmd.status().map_err(|source| BuildError::CargoSpawn {
                cargo: cargo.clone(),
                source,
            })?;
            Ok((status, String::new()))
        } else {
            let out = cmd.output().map_err(|source| BuildError::CargoSpawn {
                cargo: cargo.clone(),
                source,
            })?;
            let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
            log.push_str(&String::from_utf8_lossy(&out.stderr));
            Ok((out.status, log))
        }
    };

    // Offline first: with a warm registry cache this avoids any network round trip.
    // If something is missing from the cache, cargo says so quickly and we go online.
    let (mut status, mut log) = run(true)?;
    if !status.success() && (log.contains("offline") || opts.progress) {
        (status, log) = run(false)?;
    }
    if !status.success() {
        return Err(BuildError::CargoFailed {
            status: status.to_string(),
            log,
        });
    }

    let mut artifact = target_dir.clone();
    if static_link {
        artifact.push(STATIC_TARGET);
    }
    artifact.push(opts.profile.name());
    artifact.push(&layout.bin);
    if !artifact.is_file() {
        return Err(BuildError::MissingArtifact(artifact));
    }
    if let Some(parent) = opts.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    // Copy to a temp name and rename, so a running old binary is never overwritten in
    // place (ETXTBSY) and a failed copy never leaves a truncated file.
    let tmp = opts.output.with_extension("agentd-tmp");
    std::fs::copy(&artifact, &tmp).map_err(io("cannot write", &tmp))?;
    std::fs::rename(&tmp, &opts.output).map_err(io("cannot write", &opts.output))?;
    Ok((opts.output.clone(), layout))
}

/// The rustc flags of a generated crate's build, after the user's own.
///
/// - Static: `+crt-static`; no unwind tables (`panic = "abort"` and a stripped binary
///   leave them nothing to do but feed an address-only backtrace: about 30 KB); and
///   packed relative relocations (`DT_RELR`, about 85 KB for a static PIE), only
///   where the C library's static start-up code applies them (glibc 2.36 or later;
///   binutils older than 2.38 ignores the option with a warning).
/// - Always: `--cfg sha2_backend_soft="compact"`, the `sha2` crate's small portable
///   SHA-256 (used only where the CPU lacks the SHA extensions).
/// - Always: `--remap-path-prefix` for the cargo home, the cache, the runtime and its
///   core, so a binary names `/agentd-core/src/engine.rs` (in panic and log
///   locations) rather than the build machine's paths.
fn rustflags(
    static_link: bool,
    user: &[String],
    remaps: &[(Option<PathBuf>, &str)],
) -> Vec<String> {
    let mut flags = user.to_vec();
    // SHA-256 (`--provenance` hashes the binary) keeps its SHA-NI path; only the
    // portable fallback is the compact loop instead of 64 unrolled rounds: ~10 KB.
    flags.extend(["--cfg", "sha2_backend_soft=\"compact\""].map(String::from));
    if static_link {
        flags.extend(
            [
                "-C",
                "target-feature=+crt-static",
                "-C",
                "force-unwind-tables=no",
            ]
            .map(String::from),
        );
        if static_glibc_applies_relr() {
            flags.extend(["-C", "link-arg=-Wl,-z,pack-relative-relocs"].map(String::from));
        }
    }
    for (from, to) in remaps {
        if let Some(from) = from {
            flags.push(format!("--remap-path-prefix={}={to}", from.display()));
        }
    }
    flags
}

/// Arguments for the final binary's rustc only (after `cargo rustc --`).
///
/// With `no_unwind_data` (static builds without a handler crate): drop the unwind
/// data of the precompiled std, `libc.a` and `libgcc_eh.a` (`.eh_frame`,
/// `.eh_frame_hdr` and `.gcc_except_table`, about 0.14 MB in hello) with the linker
/// script at that path (`templates/no-unwind-data.ld`) and `--no-eh-frame-hdr`.
/// With `panic = "abort"` and no unwind tables of our own nothing unwinds; only a
/// backtrace under `RUST_BACKTRACE` reads them, and it then lists no frames. A
/// static PIE reaches that data only through its `PT_GNU_EH_FRAME` header, which
/// goes with it, so nothing is left pointing at discarded bytes.
fn final_link_args(no_unwind_data: Option<&Path>) -> Vec<String> {
    let Some(script) = no_unwind_data else {
        return Vec::new();
    };
    // `-T` and the path as two arguments: a path is never split at a comma.
    vec![
        "-C".to_string(),
        "link-arg=-Wl,--no-eh-frame-hdr".to_string(),
        "-C".to_string(),
        "link-arg=-T".to_string(),
        "-C".to_string(),
        format!("link-arg={}", script.display()),
    ]
}

/// The user's `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS`, which cargo would otherwise
/// use instead of (not besides) ours.
fn user_rustflags() -> Vec<String> {
    if let Ok(encoded) = std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        return encoded
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect();
    }
    std::env::var("RUSTFLAGS")
        .map(|f| f.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn cargo_home() -> Option<PathBuf> {
    non_empty_env("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// Whether static glibc's start-up code processes `DT_RELR` (glibc 2.36+). The static
/// `libc.a` comes from the same C library package as the one this process runs on.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // one libc call
fn static_glibc_applies_relr() -> bool {
    // SAFETY: gnu_get_libc_version takes no arguments and returns a pointer to a
    // static NUL-terminated string owned by glibc, valid for the whole process.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    glibc_at_least(&version.to_string_lossy(), (2, 36))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn static_glibc_applies_relr() -> bool {
    false
}

/// `"2.36"` / `"2.39.0"` compared with a (major, minor) pair; unparsable is "no".
fn glibc_at_least(version: &str, want: (u32, u32)) -> bool {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::features::RuntimeFeature;

    /// A runtime tree whose Cargo.toml is `manifest`.
    fn runtime_tree(name: &str, manifest: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("agentd-contract-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the tree");
        std::fs::write(dir.join("Cargo.toml"), manifest).expect("write the manifest");
        dir
    }

    #[test]
    fn the_bundled_runtime_implements_this_compilers_contract() {
        let runtime = runtime_path(None).expect("the bundled runtime");
        assert_eq!(
            runtime_contract(&runtime).expect("a readable contract"),
            RuntimeContract::Matches
        );
    }

    #[test]
    fn a_runtime_with_another_contract_is_refused_before_cargo_runs() {
        let other = CODEGEN_CONTRACT + 1;
        let tree = runtime_tree(
            "other",
            &format!(
                "[package]\nname = \"agentd-runtime\"\n\n[package.metadata.agentd]\ncodegen-contract = {other}\n"
            ),
        );
        let err = runtime_contract(&tree).expect_err("a mismatch");
        let text = err.to_string();
        assert!(
            text.contains(&format!("implements codegen contract {other}"))
                && text.contains(&format!("generates code for contract {CODEGEN_CONTRACT}")),
            "{text}"
        );
        // `build` refuses it before writing or building anything.
        let out = tree.join("never-built");
        let mut opts = BuildOptions::new(out.clone());
        opts.runtime = Some(tree.clone());
        opts.cache_dir = Some(tree.join("cache"));
        let generated = GeneratedCrate {
            workflow_name: "contract_probe".to_owned(),
            code: String::new(),
            features: Vec::new(),
            source_hash: "ab".repeat(32),
            sources: Vec::new(),
            signer: None,
            main_override: None,
            tokens: proc_macro2::TokenStream::new(),
        };
        assert!(matches!(
            build(&generated, &opts),
            Err(BuildError::RuntimeContract { .. })
        ));
        assert!(!tree.join("cache").exists() && !out.exists());

        let tree = runtime_tree(
            "garbled",
            "[package]\nname = \"agentd-runtime\"\n[package.metadata.agentd]\ncodegen-contract = \"one\"\n",
        );
        assert!(matches!(
            runtime_contract(&tree),
            Err(BuildError::RuntimeContractUnreadable { .. })
        ));
        let tree = runtime_tree("unmarked", "[package]\nname = \"agentd-runtime\"\n");
        assert_eq!(
            runtime_contract(&tree).expect("an unmarked tree is not an error"),
            RuntimeContract::Unmarked
        );
    }

    #[test]
    fn one_workflow_built_with_other_features_gets_its_own_crate_and_binary() {
        let cache =
            std::env::temp_dir().join(format!("agentd-build-variant-{}", std::process::id()));
        let runtime = Path::new("/nonexistent/agentd-runtime");
        let generated = |features: Vec<RuntimeFeature>| GeneratedCrate {
            workflow_name: "hello".to_string(),
            code: "// workflow".to_string(),
            features,
            source_hash: "ab".repeat(32),
            sources: Vec::new(),
            signer: None,
            main_override: None,
            tokens: proc_macro2::TokenStream::new(),
        };
        let plain = write_crate(&generated(vec![RuntimeFeature::Env]), runtime, &cache, None)
            .expect("write the generated crate");
        let again = write_crate(&generated(vec![RuntimeFeature::Env]), runtime, &cache, None)
            .expect("write the generated crate");
        let overrides = write_crate(
            &generated(vec![RuntimeFeature::Env, RuntimeFeature::PolicyFile]),
            runtime,
            &cache,
            None,
        )
        .expect("write the generated crate");
        assert_eq!(plain.dir, again.dir, "the same inputs reuse one warm crate");
        assert_eq!(plain.bin, again.bin);
        assert_ne!(plain.dir, overrides.dir);
        assert_ne!(plain.bin, overrides.bin);
        let manifest =
            std::fs::read_to_string(plain.dir.join("Cargo.toml")).expect("read the manifest");
        assert!(!manifest.contains("policy-file"), "{manifest}");
        assert!(
            manifest.contains("default-features = false, features = []"),
            "an always-compiled family is not named: {manifest}"
        );
        let overrides_manifest =
            std::fs::read_to_string(overrides.dir.join("Cargo.toml")).expect("read the manifest");
        assert!(
            overrides_manifest.contains("features = [\"policy-file\"]"),
            "{overrides_manifest}"
        );
        let _ = std::fs::remove_dir_all(&cache);
    }

    #[test]
    fn slug_makes_cargo_safe_names() {
        assert_eq!(slug("hello"), "hello");
        assert_eq!(slug("Webhook Receiver!"), "webhook-receiver");
        assert_eq!(slug("3d"), "wf-3d");
        assert_eq!(slug("  "), "workflow");
        assert_eq!(slug("a__b"), "a-b");
    }

    #[test]
    fn glibc_versions_compare_by_major_and_minor() {
        assert!(glibc_at_least("2.36", (2, 36)));
        assert!(glibc_at_least("2.39.0", (2, 36)));
        assert!(glibc_at_least("3.0", (2, 36)));
        assert!(!glibc_at_least("2.35", (2, 36)));
        assert!(!glibc_at_least("2.4", (2, 36)));
        assert!(!glibc_at_least("", (2, 36)));
        assert!(!glibc_at_least("two.36", (2, 36)));
    }

    #[test]
    fn rustflags_keep_the_users_first_and_remap_known_paths() {
        let user = vec!["-C".to_string(), "target-cpu=native".to_string()];
        let remaps = [
            (Some(PathBuf::from("/home/u/.cargo")), "/cargo"),
            (None, "/agentd-cache"),
            (
                Some(PathBuf::from("/src/agentd-runtime")),
                "/agentd-runtime",
            ),
        ];
        let dynamic = rustflags(false, &user, &remaps);
        assert_eq!(
            dynamic,
            [
                "-C",
                "target-cpu=native",
                "--cfg",
                "sha2_backend_soft=\"compact\"",
                "--remap-path-prefix=/home/u/.cargo=/cargo",
                "--remap-path-prefix=/src/agentd-runtime=/agentd-runtime",
            ]
        );
        let static_ = rustflags(true, &user, &remaps);
        assert_eq!(&static_[..2], &user[..]);
        assert!(static_.contains(&"target-feature=+crt-static".to_string()));
        assert!(static_.contains(&"force-unwind-tables=no".to_string()));
        // Host artifacts (proc-macros) need unwind tables: never in a dynamic build,
        // whose flags cargo also applies to them.
        assert!(!dynamic.iter().any(|f| f.contains("unwind")));
    }

    #[test]
    fn only_static_builds_without_handlers_get_the_unwind_data_script() {
        assert!(final_link_args(None).is_empty());
        let script = Path::new("/cache,with comma/link/no-unwind-data.ld");
        let args = final_link_args(Some(script));
        assert!(args.contains(&"link-arg=-Wl,--no-eh-frame-hdr".to_string()));
        // The path is its own linker argument, commas and spaces intact.
        let t = args.iter().position(|a| a == "link-arg=-T").expect("-T");
        assert_eq!(args[t + 2], format!("link-arg={}", script.display()));
        assert!(NO_UNWIND_DATA_LD.contains("/DISCARD/"));
    }
}
