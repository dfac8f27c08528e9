//! `agentd!("workflows/x.toml")` — compile a dialect-1 workflow inside a Rust crate.
//!
//! This crate is only the proc-macro shell: it reads the macro's arguments and hands
//! them to [`agentd_compiler::frontend::embed::expand`], which runs the same generator as
//! `agentd emit` and turns every diagnostic into a `compile_error!` on the span of the
//! path literal. It holds no logic of its own. Users normally reach it through
//! `agentd_runtime::agentd` (feature `macros`); see `docs/embedding.md`.

use std::path::PathBuf;

use agentd_compiler::frontend::embed::{EmbedRequest, HandlerBinding, expand};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitBool, LitStr, Token};

/// Compile a workflow file into this crate.
///
/// ```ignore
/// use agentd_runtime::agentd;
///
/// agentd!("workflows/triage.toml", name = Triage);
///
/// let outcome = Triage::run(serde_json::json!({ "ticket": 42 }))?;
/// ```
///
/// The path is relative to `CARGO_MANIFEST_DIR` (when the file is not there, the
/// directory of the source file calling the macro is tried, which is what makes the
/// macro work in trybuild tests). The expansion is the code `agentd emit` prints,
/// inside a hidden module, plus a `pub use` of the workflow type, which gets:
///
/// - `Type::run(input: serde_json::Value) -> Result<Outcome, Error>`;
/// - `Type::run_with(options: agentd_runtime::embed::RunWith) -> RunReport`.
///
/// Optional arguments, after the path, in any order:
///
/// - `name = Ident` — the type's name (default: UpperCamelCase of the workflow's
///   `name`, e.g. `data-pipeline` → `DataPipeline`);
/// - `handlers = { name = path::to_fn, .. }` — bind the `handler` of each
///   `type = "rust"` node to a `fn(&Cx<'_>, &serde_json::Value) -> Result<NodeOutput,
///   NodeError>`; a handler the workflow uses but is not bound, or a binding no node
///   uses, is a compile error;
/// - `signing_required = true` — every workflow file (children too) must have a valid
///   `.sig` beside it, verified with the root's `[signing]` key;
/// - `strict_dialect1 = true` — refuse agentd extensions (custom Rust nodes).
///
/// Every workflow file read (and its `.sig`) is tracked with `include_bytes!`, so
/// editing it rebuilds the crate. Errors are reported as
/// `file:line:col: error[code]: message` plus `help:`, the words of `agentd check`.
#[proc_macro]
pub fn agentd(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let args = match syn::parse::<Args>(input) {
        Ok(args) => args,
        Err(err) => return err.to_compile_error().into(),
    };
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return syn::Error::new(
            args.path.span(),
            "agentd!: CARGO_MANIFEST_DIR is not set; build this crate with cargo",
        )
        .to_compile_error()
        .into();
    };
    let source_dir = proc_macro::Span::call_site()
        .local_file()
        .and_then(|file| file.parent().map(PathBuf::from));
    let request = EmbedRequest {
        path: args.path.value(),
        path_span: args.path.span(),
        manifest_dir: PathBuf::from(manifest_dir),
        source_dir,
        type_name: args.name.map(|n| n.to_string()),
        signing_required: args.signing_required,
        strict_dialect1: args.strict_dialect1,
        handlers: args.handlers,
    };
    expand(&request).into()
}

/// The macro's arguments: `"path" (, key = value)* ,?`.
struct Args {
    path: LitStr,
    name: Option<Ident>,
    signing_required: bool,
    strict_dialect1: bool,
    handlers: Vec<HandlerBinding>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let path: LitStr = input.parse()?;
        let mut args = Args {
            path,
            name: None,
            signing_required: false,
            strict_dialect1: false,
            handlers: Vec::new(),
        };
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            let key_name = key.to_string();
            if seen.contains(&key_name) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{key_name}` is given twice"),
                ));
            }
            seen.push(key_name.clone());
            input.parse::<Token![=]>()?;
            match key_name.as_str() {
                "name" => args.name = Some(input.parse()?),
                "signing_required" => args.signing_required = input.parse::<LitBool>()?.value,
                "strict_dialect1" => args.strict_dialect1 = input.parse::<LitBool>()?.value,
                "handlers" => args.handlers = parse_handlers(input)?,
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown agentd! argument `{other}`; expected `name`, `handlers`, \
                             `signing_required` or `strict_dialect1`"
                        ),
                    ));
                }
            }
        }
        Ok(args)
    }
}

/// `{ name = path::to_fn, .. }`.
fn parse_handlers(input: ParseStream<'_>) -> syn::Result<Vec<HandlerBinding>> {
    let content;
    syn::braced!(content in input);
    let mut out: Vec<HandlerBinding> = Vec::new();
    while !content.is_empty() {
        let name: Ident = content.parse()?;
        content.parse::<Token![=]>()?;
        let path: syn::Path = content.parse()?;
        let name_text = name.to_string();
        if out.iter().any(|b| b.name == name_text) {
            return Err(syn::Error::new(
                name.span(),
                format!("handler `{name_text}` is bound twice"),
            ));
        }
        out.push(HandlerBinding {
            name: name_text,
            name_span: name.span(),
            path: path.to_token_stream(),
        });
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(out)
}
