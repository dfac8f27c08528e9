//! The `agentd!` front end: everything the proc-macro does except reading its
//! arguments.
//!
//! [`expand`] resolves the workflow path, runs the same pipeline as `agentd emit`
//! ([`crate::compile_verified`], one generator, no second code path), checks the
//! handler bindings of custom Rust nodes, and wraps the generated items in a module
//! with the typed handle (`Triage::run`, `Triage::run_with`), the runtime feature
//! guards and an `include_bytes!` per workflow file (and `.sig`) so that editing any
//! of them rebuilds the crate.
//!
//! Every problem becomes a `compile_error!` on the span of the path literal (a
//! binding problem: on the binding), worded exactly as `agentd check` words it
//! ([`render_short`]), with file paths shown relative to the directory the workflow
//! path was resolved against. A workflow that compiles with warnings gets one rustc
//! warning per diagnostic, on the same span: stable proc-macros cannot emit
//! warnings, so each becomes the use of a `#[deprecated]` constant whose note is the
//! diagnostic (the `deprecated` lint: `#[allow(deprecated)]` on the call silences
//! them, `#![deny(deprecated)]` makes them errors). This module must never panic:
//! the proc-macro runs inside rustc.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::codegen::CodegenOptions;
use crate::codegen::features::RuntimeFeature;
use crate::codes::Code;
use crate::diagnostics::{Diagnostic, SourceDb, render_short};
use crate::load::{LoadOptions, Program};
use crate::model::NodeKind;
use crate::signing::{self, VerifyOptions};
use crate::source::Seg;

/// One `name = path::to_fn` entry of `handlers = { .. }`.
#[derive(Debug, Clone)]
pub struct HandlerBinding {
    /// The handler name, as the workflow's `handler = "..."` spells it.
    pub name: String,
    /// Where the name is written in the macro call.
    pub name_span: Span,
    /// The Rust path of the function, with the user's spans.
    pub path: TokenStream,
}

/// A parsed `agentd!(..)` call.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// The workflow path as written in the literal.
    pub path: String,
    /// The span of the path literal: where errors are reported.
    pub path_span: Span,
    /// `CARGO_MANIFEST_DIR` of the crate being compiled: the path is relative to it.
    pub manifest_dir: PathBuf,
    /// Directory of the source file holding the macro call. Used only when the path
    /// does not exist under `manifest_dir` (trybuild compiles test cases in a
    /// generated crate, so there `CARGO_MANIFEST_DIR` is not the test's directory).
    pub source_dir: Option<PathBuf>,
    /// `name = Ident`: the generated type's name.
    pub type_name: Option<String>,
    /// `signing_required = true`: every workflow file must carry a valid signature.
    pub signing_required: bool,
    /// `strict_dialect1 = true`: refuse agentd extensions (custom Rust nodes).
    pub strict_dialect1: bool,
    /// `handlers = { .. }`.
    pub handlers: Vec<HandlerBinding>,
}

/// Expand an `agentd!` call: the generated items, or `compile_error!`s.
pub fn expand(req: &EmbedRequest) -> TokenStream {
    let (file, base) = resolve(req);
    if !file.is_file() {
        // Said here rather than by the loader, whose message carries the absolute path.
        let d = Diagnostic::new(
            Code::IoError,
            Path::new(&req.path),
            format!("cannot read `{}`: no such file", req.path),
        )
        .with_help(
            "paths in agentd! are relative to CARGO_MANIFEST_DIR, the directory of this \
             crate's Cargo.toml",
        );
        let text = render_short(&d, &SourceDb::new());
        return quote_spanned!(req.path_span=> ::core::compile_error! { #text });
    }
    let type_name = match &req.type_name {
        Some(name) => name.clone(),
        None => default_type_name(&file),
    };
    let load_opts = LoadOptions {
        cwd: base.clone(),
        allow_rust_nodes: !req.strict_dialect1,
    };
    let verify = VerifyOptions {
        required: req.signing_required,
        cwd: base.clone(),
        ..VerifyOptions::default()
    };
    let cg = CodegenOptions {
        type_name: Some(type_name.clone()),
        handlers: req
            .handlers
            .iter()
            .map(|h| (h.name.clone(), from_inner_module(&h.path)))
            .collect(),
        handler_crate: None,
        // The embedding crate picks its runtime features itself; with `policy-file`
        // on and signing required, its `--policy` overrides need the baked key.
        policy_overrides: true,
    };
    let compiled = crate::compile_verified(&file, &load_opts, &verify, &cg);
    let program = &compiled.program;
    let tracking = track_files(program);

    let mut errors: Vec<(Diagnostic, Span)> = program
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.clone(), req.path_span))
        .collect();
    errors.extend(check_handlers(program, &req.handlers, req.path_span));

    if compiled.generated.is_none() && errors.is_empty() {
        // Unreachable today (no code is generated only when there are errors), but an
        // expansion must never silently produce nothing.
        let text = format!("agentd: no code was generated for `{}`", req.path);
        return quote_spanned!(req.path_span=> ::core::compile_error! { #text });
    }
    let generated = match compiled.generated {
        Some(generated) if errors.is_empty() => generated,
        _ => {
            let messages = errors.iter().map(|(d, span)| {
                let text = render_relative(d, &program.sources, &base);
                quote_spanned!(*span=> ::core::compile_error! { #text })
            });
            return quote! {
                #(#messages)*
                const _: () = { #tracking };
            };
        }
    };

    let warnings = program
        .diagnostics
        .iter()
        .filter(|d| !d.is_error())
        .map(|d| {
            let text = render_relative(d, &program.sources, &base);
            // Codes are snake_case; anything else would make `format_ident!` panic.
            let code: String = d
                .code
                .as_str()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let name = format_ident!("agentd_warning_{code}");
            quote_spanned! {req.path_span=>
                const _: () = {
                    #[deprecated(note = #text)]
                    #[allow(non_upper_case_globals)]
                    const #name: () = ();
                    #name
                };
            }
        });
    let ty = format_ident!("{type_name}");
    let module = format_ident!("__agentd_{type_name}");
    let workflow = generated.workflow_name.as_str();
    let guards = crate::codegen::features::cargo_features(&generated.features)
        .map(|f| f.as_str())
        .map(|f| quote!(::agentd_runtime::__agentd_require_feature!(#f, #workflow);));
    // Refuse, at expansion, a runtime that implements another codegen contract
    // (ARCHITECTURE.md, "The codegen contract"); unsuffixed, so the guard's arm matches.
    let contract = proc_macro2::Literal::u32_unsuffixed(crate::build::CODEGEN_CONTRACT);
    let contract_guard =
        quote!(::agentd_runtime::__agentd_require_contract!(#contract, #workflow););
    let items = generated.tokens;
    let doc = format!(
        " Workflow `{workflow}` compiled by `agentd!` from `{}`.",
        req.path
    );
    let run_doc = format!(
        " Run workflow `{workflow}` once on `input` (its only manual start, else its only start) \
         and return the outcome."
    );
    // Only a workflow with routes or long-lived triggers can be served.
    let serve_fn = if generated.features.contains(&RuntimeFeature::Serve) {
        quote! {
            /// Serve the workflow's HTTP routes and scheduled triggers until
            /// SIGTERM/SIGINT (with `config.handle_signals`), then drain.
            ///
            /// # Errors
            ///
            /// The server cannot start (bind, state dir, TLS or auth material),
            /// or in-flight work outlived the drain timeout.
            pub fn serve(
                config: ::agentd_runtime::serve::ServeConfig,
            ) -> ::core::result::Result<(), ::agentd_runtime::serve::ServeError> {
                ::agentd_runtime::serve::serve(&#ty, config)
            }

            /// Start serving in the background and return at once: the
            /// handle gives the bound address, and `shutdown` + `wait`
            /// drain it (for tests and programs that stop it themselves).
            ///
            /// # Errors
            ///
            /// The server cannot start (bind, state dir, TLS or auth material).
            pub fn start(
                config: ::agentd_runtime::serve::ServeConfig,
            ) -> ::core::result::Result<
                ::agentd_runtime::serve::Running,
                ::agentd_runtime::serve::ServeError,
            > {
                ::agentd_runtime::serve::start(&#ty, config)
            }
        }
    } else {
        TokenStream::new()
    };
    quote! {
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::all)]
        mod #module {
            #items

            // Handler paths are written relative to the module that calls `agentd!`.
            #[allow(unused_imports)]
            use super::*;

            #contract_guard
            #(#guards)*

            #tracking

            impl #ty {
                #[doc = #run_doc]
                ///
                /// # Errors
                ///
                /// The run's hard error, or a workflow error when no start can be picked.
                pub fn run(
                    input: ::agentd_runtime::serde_json::Value,
                ) -> ::core::result::Result<::agentd_runtime::Outcome, ::agentd_runtime::Error> {
                    ::agentd_runtime::embed::run(&#ty, input)
                }

                /// Run the workflow once with explicit options (start, dry run, deadline,
                /// policy); the full report with trace and metrics.
                pub fn run_with(options: ::agentd_runtime::embed::RunWith) -> ::agentd_runtime::RunReport {
                    ::agentd_runtime::embed::run_with(&#ty, options)
                }

                #serve_fn
            }
        }
        #[doc(inline)]
        pub use self::#module::#ty;
        #(#warnings)*
    }
}

/// A handler path as seen from the generated module, one level below the caller: a
/// leading `super` gains one more `super`. Plain names, `self::` and `crate::` paths
/// resolve through the module's `use super::*`.
fn from_inner_module(path: &TokenStream) -> TokenStream {
    let starts_with_super = matches!(
        path.clone().into_iter().next(),
        Some(proc_macro2::TokenTree::Ident(ident)) if ident == "super"
    );
    if starts_with_super {
        quote!(super:: #path)
    } else {
        path.clone()
    }
}

/// The workflow file and the directory relative paths resolve against: the manifest
/// directory, or the calling source file's directory when only that one has the file.
fn resolve(req: &EmbedRequest) -> (PathBuf, PathBuf) {
    let written = Path::new(&req.path);
    let in_manifest = req.manifest_dir.join(written);
    if !in_manifest.is_file()
        && let Some(dir) = &req.source_dir
        && dir.join(written).is_file()
    {
        return (dir.join(written), dir.clone());
    }
    (in_manifest, req.manifest_dir.clone())
}

/// UpperCamelCase of the workflow's `name` (`data-pipeline` → `DataPipeline`), or
/// `Workflow` when the file does not parse or the name gives no identifier.
fn default_type_name(file: &Path) -> String {
    let name = crate::parse::parse_file(file)
        .doc
        .map(|d| d.name)
        .unwrap_or_default();
    upper_camel(&name)
}

/// `my-flow_v2` → `MyFlowV2`; a result that is not a usable type name gets a
/// `Workflow` prefix (or is `Workflow` when empty).
pub fn upper_camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() {
        return "Workflow".to_string();
    }
    let starts_with_digit = out.starts_with(|c: char| c.is_ascii_digit());
    if starts_with_digit || out == "Self" {
        out.insert_str(0, "Workflow");
    }
    out
}

/// `const _: &[u8] = include_bytes!(..)` for every workflow file read and every
/// `.sig` beside one, so cargo rebuilds the crate when any of them changes.
fn track_files(program: &Program) -> TokenStream {
    let mut files = BTreeSet::new();
    let read = program
        .units
        .iter()
        .map(|u| u.source.path.as_path())
        .chain(program.sources.paths());
    for path in read {
        let Ok(path) = std::fs::canonicalize(path) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let sig = signing::sig_path(&path);
        if sig.is_file() {
            files.insert(sig);
        }
        files.insert(path);
    }
    let includes = files.iter().filter_map(|p| p.to_str()).map(|p| {
        quote!(
            const _: &[u8] = ::core::include_bytes!(#p);
        )
    });
    quote!(#(#includes)*)
}

/// Every `type = "rust"` handler must be bound, and every binding used.
fn check_handlers(
    program: &Program,
    bindings: &[HandlerBinding],
    path_span: Span,
) -> Vec<(Diagnostic, Span)> {
    let bound: BTreeMap<&str, &HandlerBinding> =
        bindings.iter().map(|b| (b.name.as_str(), b)).collect();
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for unit in &program.units {
        for (i, node) in unit.doc.nodes.iter().enumerate() {
            let NodeKind::Rust(r) = &node.kind else {
                continue;
            };
            used.insert(r.handler.as_str());
            if bound.contains_key(r.handler.as_str()) {
                continue;
            }
            let loc = [Seg::key("nodes"), Seg::Index(i), Seg::key("handler")];
            let d = Diagnostic::new(
                Code::UnboundHandler,
                &unit.source.path,
                format!(
                    "node `{}` runs Rust handler `{}`, which agentd! does not bind",
                    node.id, r.handler
                ),
            )
            .with_span(unit.source.span_of(&loc))
            .with_help(format!(
                "bind it: agentd!(\"..\", handlers = {{ {} = crate::path::to_fn }})",
                r.handler
            ));
            out.push((d, path_span));
        }
    }
    // An unused binding can be a side effect of a file that failed to load.
    let Some(root) = program.root().filter(|_| !program.has_errors()) else {
        return out;
    };
    for b in bindings {
        if used.contains(b.name.as_str()) {
            continue;
        }
        let d = Diagnostic::new(
            Code::UnusedHandler,
            &root.source.path,
            format!(
                "handler `{}` is bound, but no `type = \"rust\"` node of workflow `{}` uses it",
                b.name, root.doc.name
            ),
        )
        .with_help(if used.is_empty() {
            "remove the binding: the workflow has no Rust nodes".to_string()
        } else {
            format!(
                "remove the binding or fix its name; handlers used: {}",
                used.iter().copied().collect::<Vec<_>>().join(", ")
            )
        });
        out.push((d, b.name_span));
    }
    out
}

/// [`render_short`] with the diagnostic's file shown relative to `base` when it is
/// inside it (`workflows/x.toml:3:1: error[..]`), as a user wrote the path.
fn render_relative(d: &Diagnostic, db: &SourceDb, base: &Path) -> String {
    let Ok(rel) = d.file.strip_prefix(base) else {
        return render_short(d, db);
    };
    let mut local = SourceDb::new();
    if let Some(text) = db.text(&d.file) {
        local.add_text(rel, text);
    }
    let mut d = d.clone();
    d.file = rel.to_path_buf();
    render_short(&d, &local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_upper_camel_case() {
        assert_eq!(upper_camel("data-pipeline"), "DataPipeline");
        assert_eq!(upper_camel("llm_classifier"), "LlmClassifier");
        assert_eq!(upper_camel("hello"), "Hello");
        assert_eq!(upper_camel("2fa check"), "Workflow2faCheck");
        assert_eq!(upper_camel("self"), "WorkflowSelf");
        assert_eq!(upper_camel("--"), "Workflow");
    }

    fn tmpdir(tag: &str) -> crate::test_support::TempDir {
        crate::test_support::temp_dir(&format!("embed-{tag}"))
    }

    fn request(dir: &Path, file: &str) -> EmbedRequest {
        EmbedRequest {
            path: file.to_string(),
            path_span: Span::call_site(),
            manifest_dir: dir.to_path_buf(),
            source_dir: None,
            type_name: None,
            signing_required: false,
            strict_dialect1: false,
            handlers: Vec::new(),
        }
    }

    const RUST_NODE: &str = "name = \"flow\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"k\"\ntype = \"rust\"\nhandler = \"classify\"\n";

    #[test]
    fn warnings_become_deprecated_constants_and_a_clean_workflow_has_none() {
        let dir = tmpdir("warn");
        let open = RUST_NODE.replace("[policy]\n", "");
        std::fs::write(dir.join("open.toml"), &open).expect("write");
        std::fs::write(dir.join("flow.toml"), RUST_NODE).expect("write");
        let bind = |mut req: EmbedRequest| {
            req.handlers.push(HandlerBinding {
                name: "classify".into(),
                name_span: Span::call_site(),
                path: quote!(crate::classify),
            });
            expand(&req).to_string()
        };
        let out = bind(request(&dir, "open.toml"));
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("const agentd_warning_no_policy"), "{out}");
        assert!(
            out.contains("deprecated (note = \"open.toml:1:1: warning[no_policy]"),
            "{out}"
        );
        let clean = bind(request(&dir, "flow.toml"));
        assert!(!clean.contains("deprecated"), "{clean}");
    }

    #[test]
    fn valid_workflow_expands_to_a_module_and_a_reexport() {
        let dir = tmpdir("ok");
        std::fs::write(dir.join("flow.toml"), RUST_NODE).expect("write");
        let mut req = request(&dir, "flow.toml");
        req.handlers.push(HandlerBinding {
            name: "classify".into(),
            name_span: Span::call_site(),
            path: quote!(crate::classify),
        });
        let out = expand(&req).to_string();
        assert!(out.contains("mod __agentd_Flow"), "{out}");
        assert!(
            out.contains("pub use self :: __agentd_Flow :: Flow"),
            "{out}"
        );
        // The generated module imports the runtime's `rust::call` and calls it by
        // its short name (codegen/imports.rs).
        assert!(
            out.contains("use :: agentd_runtime :: nodes :: rust :: { RustNode , call }"),
            "{out}"
        );
        assert!(out.contains("call (cx , & K , crate :: classify)"), "{out}");
        assert!(out.contains("include_bytes"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn needed_runtime_features_get_a_guard() {
        let dir = tmpdir("guard");
        let text = RUST_NODE
            .replace(
                "[policy]\n",
                "[policy.shell]\ncommands = [\"/usr/bin/echo\"]\n",
            )
            .replace(
                "type = \"rust\"\nhandler = \"classify\"\n",
                "type = \"shell_run\"\ncommand = \"/usr/bin/echo\"\n",
            );
        std::fs::write(dir.join("flow.toml"), text).expect("write");
        let out = expand(&request(&dir, "flow.toml")).to_string();
        assert!(
            out.contains(":: agentd_runtime :: __agentd_require_feature ! (\"shell\" , \"flow\")"),
            "{out}"
        );
    }

    #[test]
    fn the_expansion_names_the_codegen_contract() {
        let dir = tmpdir("contract");
        let text = RUST_NODE.replace(
            "type = \"rust\"\nhandler = \"classify\"\n",
            "type = \"template_render\"\ntemplate = \"x\"\n",
        );
        std::fs::write(dir.join("flow.toml"), text).expect("write");
        let out = expand(&request(&dir, "flow.toml")).to_string();
        let guard = format!(
            ":: agentd_runtime :: __agentd_require_contract ! ({} , \"flow\")",
            crate::build::CODEGEN_CONTRACT
        );
        assert!(out.contains(&guard), "{out}");
    }

    #[test]
    fn always_compiled_families_need_no_guard() {
        let dir = tmpdir("noguard");
        let text = RUST_NODE.replace(
            "type = \"rust\"\nhandler = \"classify\"\n",
            "type = \"template_render\"\ntemplate = \"x\"\n",
        );
        std::fs::write(dir.join("flow.toml"), text).expect("write");
        let out = expand(&request(&dir, "flow.toml")).to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("template_render"), "{out}");
        assert!(
            !out.contains("__agentd_require_feature ! (\"data\""),
            "{out}"
        );
    }

    #[test]
    fn unbound_handler_is_an_error_at_the_handler_value() {
        let dir = tmpdir("unbound");
        std::fs::write(dir.join("flow.toml"), RUST_NODE).expect("write");
        let out = expand(&request(&dir, "flow.toml")).to_string();
        assert!(
            out.contains("flow.toml:9:11: error[unbound_handler]: node `k` runs Rust handler `classify`, which agentd! does not bind"),
            "{out}"
        );
        // The file is still tracked, so fixing it rebuilds.
        assert!(out.contains("include_bytes"), "{out}");
    }

    #[test]
    fn unused_binding_is_an_error() {
        let dir = tmpdir("unused");
        let text = RUST_NODE.replace(
            "type = \"rust\"\nhandler = \"classify\"\n",
            "type = \"merge\"\n",
        );
        std::fs::write(dir.join("flow.toml"), text).expect("write");
        let mut req = request(&dir, "flow.toml");
        req.handlers.push(HandlerBinding {
            name: "classify".into(),
            name_span: Span::call_site(),
            path: quote!(crate::classify),
        });
        let out = expand(&req).to_string();
        assert!(out.contains("error[unused_handler]"), "{out}");
    }

    #[test]
    fn strict_dialect1_refuses_rust_nodes() {
        let dir = tmpdir("strict");
        std::fs::write(dir.join("flow.toml"), RUST_NODE).expect("write");
        let mut req = request(&dir, "flow.toml");
        req.strict_dialect1 = true;
        let out = expand(&req).to_string();
        assert!(out.contains("error[rust_node_not_allowed]"), "{out}");
    }

    #[test]
    fn super_paths_climb_out_of_the_generated_module() {
        assert_eq!(
            from_inner_module(&quote!(super::h::f)).to_string(),
            quote!(super::super::h::f).to_string()
        );
        assert_eq!(
            from_inner_module(&quote!(crate::f)).to_string(),
            quote!(crate::f).to_string()
        );
    }

    #[test]
    fn path_falls_back_to_the_calling_source_directory() {
        let dir = tmpdir("fallback");
        std::fs::write(dir.join("flow.toml"), RUST_NODE).expect("write");
        let mut req = request(Path::new("/nonexistent"), "flow.toml");
        req.source_dir = Some(dir.to_path_buf());
        let (file, base) = resolve(&req);
        assert_eq!(file, dir.join("flow.toml"));
        assert_eq!(base, dir.to_path_buf());
    }
}
