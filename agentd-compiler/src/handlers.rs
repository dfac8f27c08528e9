//! `agentd build --handlers PATH`: custom Rust nodes bound from a user library crate.
//!
//! The generated crate gains a path dependency on the user's crate, renamed to
//! [`CRATE_ALIAS`] (`agentd_handlers = { path = "..", package = "<its name>" }`), and
//! every `handler = "name"` of a `type = "rust"` node is bound to
//! `::agentd_handlers::name`: handlers are public functions at the crate root (or
//! re-exported there). rustc checks that each exists and has the handler signature.
//!
//! The user crate must depend on the same `agentd-runtime` directory the build uses,
//! so that cargo compiles one runtime and the handler's `Cx`/`NodeOutput` are the
//! generated code's; [`HandlerCrate::check_runtime`] verifies that before cargo runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::quote;

use crate::load::Program;
use crate::model::NodeKind;

/// The name the generated crate knows the handler crate by.
pub const CRATE_ALIAS: &str = "agentd_handlers";

/// The runtime's package name.
const RUNTIME_PACKAGE: &str = "agentd-runtime";

/// A user library crate holding handler functions.
#[derive(Debug, Clone)]
pub struct HandlerCrate {
    /// The crate's directory (where its `Cargo.toml` is), canonicalised.
    pub dir: PathBuf,
    /// `package.name` of its `Cargo.toml`.
    pub package: String,
    /// Its library root (`[lib] path`, default `src/lib.rs`).
    pub lib: PathBuf,
    /// How its `Cargo.toml` asks for `agentd-runtime`.
    runtime_dep: RuntimeDep,
}

#[derive(Debug, Clone)]
enum RuntimeDep {
    /// `path = ".."`, resolved against the manifest (or workspace root) declaring it.
    Path(PathBuf),
    /// A registry or git dependency, or an inherited one whose path was not found.
    NotPath,
    Missing,
}

/// Why a handler crate cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerCrateError {
    #[error("handler crate: no Cargo.toml in `{0}` (--handlers takes the crate's directory)")]
    NoManifest(PathBuf),
    #[error("handler crate: cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("handler crate: `{path}` is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("handler crate: `{0}` has no `[package] name`")]
    NoPackageName(PathBuf),
    #[error(
        "handler crate: `{package}` is not a library (no `{lib}`); handlers are public functions at the root of a library crate"
    )]
    NotALibrary { package: String, lib: PathBuf },
    #[error(
        "handler crate: `{manifest}` does not depend on agentd-runtime; add `agentd-runtime = {{ path = \"{runtime}\", default-features = false }}` to its [dependencies]"
    )]
    RuntimeMissing { manifest: PathBuf, runtime: String },
    #[error(
        "handler crate: `{manifest}` must depend on agentd-runtime by path, the same one the build uses: `agentd-runtime = {{ path = \"{runtime}\", default-features = false }}`"
    )]
    RuntimeNotPath { manifest: PathBuf, runtime: String },
    #[error(
        "handler crate: `{manifest}` depends on agentd-runtime at `{found}`, but the build uses `{runtime}`; both must be the same directory so that one runtime is compiled (pass --runtime {found}, or change the path)"
    )]
    RuntimeMismatch {
        manifest: PathBuf,
        found: String,
        runtime: String,
    },
}

impl HandlerCrate {
    /// Read the crate at `dir` (the directory holding its `Cargo.toml`).
    pub fn load(dir: &Path) -> Result<HandlerCrate, HandlerCrateError> {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(HandlerCrateError::NoManifest(dir));
        }
        let doc = read_toml(&manifest)?;
        let package = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
            .ok_or_else(|| HandlerCrateError::NoPackageName(manifest.clone()))?
            .to_string();
        let lib = dir.join(
            doc.get("lib")
                .and_then(|l| l.get("path"))
                .and_then(toml::Value::as_str)
                .unwrap_or("src/lib.rs"),
        );
        if !lib.is_file() {
            return Err(HandlerCrateError::NotALibrary { package, lib });
        }
        let runtime_dep = runtime_dep(&dir, &doc);
        Ok(HandlerCrate {
            dir,
            package,
            lib,
            runtime_dep,
        })
    }

    /// The crate's `Cargo.toml`.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("Cargo.toml")
    }

    /// Check that the crate depends on `agentd-runtime` at `runtime` (compared
    /// canonicalised), so cargo unifies the two and compiles one runtime.
    pub fn check_runtime(&self, runtime: &Path) -> Result<(), HandlerCrateError> {
        let want = canonical(runtime);
        let shown = want.display().to_string();
        match &self.runtime_dep {
            RuntimeDep::Path(found) if canonical(found) == want => Ok(()),
            RuntimeDep::Path(found) => Err(HandlerCrateError::RuntimeMismatch {
                manifest: self.manifest(),
                found: canonical(found).display().to_string(),
                runtime: shown,
            }),
            RuntimeDep::NotPath => Err(HandlerCrateError::RuntimeNotPath {
                manifest: self.manifest(),
                runtime: shown,
            }),
            RuntimeDep::Missing => Err(HandlerCrateError::RuntimeMissing {
                manifest: self.manifest(),
                runtime: shown,
            }),
        }
    }

    /// The generated crate's `[dependencies]` line for this crate.
    pub fn dependency_line(&self) -> String {
        format!(
            "# `agentd build --handlers`: custom Rust nodes call `{CRATE_ALIAS}::<handler>`.\n\
             {CRATE_ALIAS} = {{ path = \"{}\", package = \"{}\" }}",
            toml_escape(&self.dir.display().to_string()),
            toml_escape(&self.package)
        )
    }
}

/// The path prefix handlers are bound under (`CodegenOptions::handler_crate`).
pub fn codegen_prefix() -> TokenStream {
    quote!(::agentd_handlers)
}

/// Every handler name used by a `type = "rust"` node of the program, children included.
pub fn handler_names(program: &Program) -> BTreeSet<String> {
    program
        .units
        .iter()
        .flat_map(|u| u.doc.nodes.iter())
        .filter_map(|n| match &n.kind {
            NodeKind::Rust(r) => Some(r.handler.clone()),
            _ => None,
        })
        .collect()
}

fn read_toml(path: &Path) -> Result<toml::Table, HandlerCrateError> {
    let text = std::fs::read_to_string(path).map_err(|source| HandlerCrateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| HandlerCrateError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
}

/// How `doc` (the manifest in `dir`) depends on the runtime: `[dependencies]`, under its
/// own name or renamed with `package = "agentd-runtime"`; `workspace = true` is looked
/// up in the enclosing workspace's `[workspace.dependencies]`.
fn runtime_dep(dir: &Path, doc: &toml::Table) -> RuntimeDep {
    let Some(spec) = find_runtime(doc.get("dependencies")) else {
        return RuntimeDep::Missing;
    };
    if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
        return RuntimeDep::Path(dir.join(path));
    }
    if spec.get("workspace").and_then(toml::Value::as_bool) == Some(true) {
        for root in dir.ancestors().skip(1) {
            let Ok(ws) = read_toml(&root.join("Cargo.toml")) else {
                continue;
            };
            let Some(ws) = ws.get("workspace") else {
                continue;
            };
            return find_runtime(ws.get("dependencies"))
                .and_then(|s| s.get("path").and_then(toml::Value::as_str))
                .map_or(RuntimeDep::NotPath, |p| RuntimeDep::Path(root.join(p)));
        }
    }
    RuntimeDep::NotPath
}

fn find_runtime(deps: Option<&toml::Value>) -> Option<&toml::Value> {
    deps?.as_table()?.iter().find_map(|(key, spec)| {
        let package = spec
            .get("package")
            .and_then(toml::Value::as_str)
            .unwrap_or(key);
        (package == RUNTIME_PACKAGE).then_some(spec)
    })
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
    }

    fn scratch(name: &str) -> crate::test_support::TempDir {
        crate::test_support::temp_dir(&format!("handlers-{name}"))
    }

    #[test]
    fn reads_name_and_checks_the_runtime_path() {
        let root = scratch("ok");
        write(
            &root,
            &[
                (
                    "runtime/Cargo.toml",
                    "[package]\nname = \"agentd-runtime\"\n",
                ),
                (
                    "h/Cargo.toml",
                    "[package]\nname = \"my-handlers\"\n[dependencies]\nrt = { path = \"../runtime\", package = \"agentd-runtime\" }\n",
                ),
                ("h/src/lib.rs", ""),
            ],
        );
        let h = HandlerCrate::load(&root.join("h")).expect("loads");
        assert_eq!(h.package, "my-handlers");
        assert!(
            h.dependency_line()
                .contains("\nagentd_handlers = { path = \"")
        );
        assert!(h.dependency_line().ends_with("package = \"my-handlers\" }"));
        assert!(h.check_runtime(&root.join("runtime")).is_ok());
        let other = root.join("h");
        let err = h.check_runtime(&other).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("but the build uses")),
            "{err:?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn workspace_inherited_runtime_is_resolved_at_the_workspace_root() {
        let root = scratch("ws");
        write(
            &root,
            &[
                (
                    "Cargo.toml",
                    "[workspace]\nmembers = [\"h\"]\n[workspace.dependencies]\nagentd-runtime = { path = \"runtime\" }\n",
                ),
                (
                    "runtime/Cargo.toml",
                    "[package]\nname = \"agentd-runtime\"\n",
                ),
                (
                    "h/Cargo.toml",
                    "[package]\nname = \"h\"\n[dependencies]\nagentd-runtime.workspace = true\n",
                ),
                ("h/src/lib.rs", ""),
            ],
        );
        let h = HandlerCrate::load(&root.join("h")).expect("loads");
        assert!(h.check_runtime(&root.join("runtime")).is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn refuses_missing_manifest_binaries_and_registry_runtimes() {
        let root = scratch("bad");
        write(
            &root,
            &[
                (
                    "bin/Cargo.toml",
                    "[package]\nname = \"b\"\n[dependencies]\nagentd-runtime = \"0.1\"\n",
                ),
                ("bin/src/main.rs", ""),
                (
                    "reg/Cargo.toml",
                    "[package]\nname = \"r\"\n[dependencies]\nagentd-runtime = \"0.1\"\n",
                ),
                ("reg/src/lib.rs", ""),
                ("none/Cargo.toml", "[package]\nname = \"n\"\n"),
                ("none/src/lib.rs", ""),
            ],
        );
        assert!(matches!(
            HandlerCrate::load(&root.join("nowhere")),
            Err(HandlerCrateError::NoManifest(_))
        ));
        assert!(matches!(
            HandlerCrate::load(&root.join("bin")),
            Err(HandlerCrateError::NotALibrary { .. })
        ));
        let reg = HandlerCrate::load(&root.join("reg")).expect("loads");
        assert!(matches!(
            reg.check_runtime(&root),
            Err(HandlerCrateError::RuntimeNotPath { .. })
        ));
        let none = HandlerCrate::load(&root.join("none")).expect("loads");
        assert!(matches!(
            none.check_runtime(&root),
            Err(HandlerCrateError::RuntimeMissing { .. })
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
