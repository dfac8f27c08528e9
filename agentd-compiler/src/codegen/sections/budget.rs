//! Codegen for `[budget]`'s process, run-time and fs-write limits: the `LIMITS` item
//! of the generated `Workflow` impl (left out when the workflow declares none, keeping
//! the trait's no-limit default). `max_llm_tokens` is baked separately, with the LLM
//! settings.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::model::WorkflowDoc;

/// `const LIMITS: Limits = ...;` when the root's `[budget]` sets memory, CPU,
/// run-time or fs-write limits; empty otherwise.
pub fn workflow_consts(root: &WorkflowDoc) -> TokenStream {
    let Some(b) = root.budget.as_ref() else {
        return TokenStream::new();
    };
    if b.max_memory_mb.is_none()
        && b.max_cpu_secs.is_none()
        && b.max_run_time_secs.is_none()
        && b.max_fs_write_mb.is_none()
    {
        return TokenStream::new();
    }
    let opt = |v: Option<u64>| match v {
        Some(v) => {
            let v = Literal::u64_unsuffixed(v);
            quote!(::core::option::Option::Some(#v))
        }
        None => quote!(::core::option::Option::None),
    };
    let (mem, cpu, run, fs_write) = (
        opt(b.max_memory_mb),
        opt(b.max_cpu_secs),
        opt(b.max_run_time_secs),
        opt(b.max_fs_write_mb),
    );
    quote! {
        const LIMITS: ::agentd_runtime::budget::Limits = ::agentd_runtime::budget::Limits {
            max_memory_mb: #mem,
            max_cpu_secs: #cpu,
            max_run_time_secs: #run,
            max_fs_write_mb: #fs_write,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;
    use std::path::Path;

    fn consts(budget: &str) -> String {
        let text =
            format!("name = \"w\"\n[budget]\n{budget}\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n");
        let r = parse_str(Path::new("w.toml"), &text);
        let Some(doc) = r.doc else {
            panic!("{:?}", r.diagnostics);
        };
        workflow_consts(&doc).to_string()
    }

    #[test]
    fn an_fs_write_cap_alone_emits_limits() {
        let tokens = consts("max_fs_write_mb = 3");
        assert!(
            tokens.contains("max_fs_write_mb : :: core :: option :: Option :: Some (3)"),
            "{tokens}"
        );
        assert!(
            tokens.contains("max_memory_mb : :: core :: option :: Option :: None"),
            "{tokens}"
        );
    }

    #[test]
    fn a_zero_token_cap_bakes_no_limit() {
        let text =
            "name = \"w\"\n[budget]\nmax_llm_tokens = 0\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n";
        let r = parse_str(Path::new("w.toml"), text);
        let Some(doc) = r.doc else {
            panic!("{:?}", r.diagnostics);
        };
        assert!(crate::codegen::sections::llm::workflow_consts(&doc).is_empty());
        let capped = parse_str(Path::new("w.toml"), &text.replace("= 0", "= 7"))
            .doc
            .map(|d| crate::codegen::sections::llm::workflow_consts(&d).to_string())
            .unwrap_or_default();
        assert!(capped.contains("MAX_LLM_TOKENS"), "{capped}");
    }

    #[test]
    fn a_token_cap_alone_keeps_the_default_limits() {
        assert!(consts("max_llm_tokens = 100").is_empty());
    }
}
