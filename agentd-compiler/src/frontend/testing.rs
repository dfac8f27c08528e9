//! `agentd test`: conformance scenarios and fixtures (docs/cli.md "agentd test"),
//! compiled into one harness binary.
//!
//! This module owns discovery, the strict scenario/fixture formats, and generating the
//! harness crate: one module per case (the same codegen `agentd build` uses, under its
//! own type name) plus a `main` that runs every case through
//! `agentd_runtime::harness::run_case`. Pass/fail is decided by the runtime harness,
//! never by generated code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use serde::Deserialize;

use crate::codegen::features::RuntimeFeature;
use crate::codegen::{self, CodegenOptions, GeneratedCrate};
use crate::diagnostics::Diagnostic;
use crate::ir;
use crate::load::{self, LoadOptions, Program};
use crate::model::PolicyManifest;

/// `[[intel.turns]]` entry: `content` (+ token counts), or non-empty `variants`
/// (which win over `content`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub variants: Vec<TurnVariant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnVariant {
    pub content: String,
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intel {
    #[serde(default)]
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub intel_error_on_call: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioWorkflow {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioTrigger {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub payload: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub last_node: Option<String>,
    #[serde(default)]
    pub reason_contains: Option<String>,
    #[serde(default)]
    pub path: Option<Vec<String>>,
    #[serde(default)]
    pub path_exact: bool,
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    #[serde(default)]
    pub max_total_tokens: Option<u64>,
    #[serde(default)]
    pub min_policy_denials: Option<u64>,
}

/// A conformance scenario file (docs/cli.md "agentd test").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub trials: Option<u32>,
    #[serde(default)]
    pub min_pass_rate: Option<f64>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    pub workflow: ScenarioWorkflow,
    #[serde(default)]
    pub trigger: ScenarioTrigger,
    #[serde(default)]
    pub intel: Intel,
    #[serde(default)]
    pub policy: Option<PolicyManifest>,
    #[serde(default)]
    pub faults: Faults,
    /// agentd extension: the fixture format's MCP mocks, for scenarios whose
    /// workflow calls MCP tools or reads resources (LLM turns stay in
    /// `[[intel.turns]]`).
    #[serde(default)]
    pub mocks: ScenarioMocks,
    #[serde(default)]
    pub expected: Expectations,
}

/// A scenario's `[mocks]`: MCP only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioMocks {
    #[serde(default)]
    pub mcp_tools: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    pub mcp_resources: BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureMocks {
    #[serde(default)]
    pub intel: Vec<String>,
    #[serde(default)]
    pub mcp_tools: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    pub mcp_resources: BTreeMap<String, Vec<toml::Value>>,
}

/// A fixture's `fixture.toml` (docs/cli.md "agentd test").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub start: String,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub trigger: ScenarioTrigger,
    #[serde(default)]
    pub mocks: FixtureMocks,
    #[serde(default)]
    pub expected: Expectations,
}

/// Which policy a case runs under.
#[derive(Debug, Clone)]
pub enum PolicyChoice {
    Baked,
    AllowAll,
    Override(Box<PolicyManifest>),
}

/// One runnable case, before compilation.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    /// The file the case came from.
    pub origin: PathBuf,
    pub program: Program,
    pub start: Option<String>,
    pub trigger_kind: String,
    pub payload: serde_json::Value,
    pub policy: PolicyChoice,
    pub timeout_secs: u64,
    pub dry_run: bool,
    pub trials: u32,
    pub min_pass_rate: Option<f64>,
    pub expected: Expectations,
    /// The scripted LLM turns (fixture `[mocks] intel` become zero-usage turns).
    pub turns: Vec<Turn>,
    /// `[faults] intel_error_on_call`.
    pub intel_error_on_call: Option<u32>,
    /// `[mocks] mcp_tools`: tool name → results (JSON), answered in order.
    pub mcp_tools: Vec<(String, Vec<serde_json::Value>)>,
    /// `[mocks] mcp_resources`: exact URI → results (JSON), answered in order.
    pub mcp_resources: Vec<(String, Vec<serde_json::Value>)>,
}

/// A case that could not even be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    pub name: String,
    pub origin: PathBuf,
    pub reason: String,
    pub diagnostics: Vec<Diagnostic>,
    pub program: Option<Program>,
}

/// Everything discovered under the given paths.
#[derive(Debug, Default)]
pub struct Suite {
    pub cases: Vec<Case>,
    pub failures: Vec<LoadFailure>,
}

/// Find scenarios (`*.toml` with a `[workflow]` table) and fixtures (directories with
/// `workflow.toml` + `fixture.toml`) under `paths`, in sorted order.
pub fn discover(paths: &[PathBuf], opts: &LoadOptions) -> Suite {
    let mut suite = Suite::default();
    for p in paths {
        if p.is_dir() {
            walk(p, opts, &mut suite);
        } else {
            load_scenario(p, opts, &mut suite, true);
        }
    }
    suite
}

fn walk(dir: &Path, opts: &LoadOptions, suite: &mut Suite) {
    if dir.join("fixture.toml").is_file() && dir.join("workflow.toml").is_file() {
        load_fixture(dir, opts, suite);
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            suite.failures.push(LoadFailure {
                name: dir.display().to_string(),
                origin: dir.to_path_buf(),
                reason: format!("cannot read directory: {e}"),
                diagnostics: Vec::new(),
                program: None,
            });
            return;
        }
    };
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, opts, suite);
        } else if e.extension().is_some_and(|x| x == "toml") {
            load_scenario(&e, opts, suite, false);
        }
    }
}

fn fail(suite: &mut Suite, name: String, origin: &Path, reason: String) {
    suite.failures.push(LoadFailure {
        name,
        origin: origin.to_path_buf(),
        reason,
        diagnostics: Vec::new(),
        program: None,
    });
}

/// `[mocks]` MCP tables as JSON, in key order.
fn mock_results(
    table: &BTreeMap<String, Vec<toml::Value>>,
) -> Vec<(String, Vec<serde_json::Value>)> {
    table
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(toml_to_json).collect()))
        .collect()
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn load_scenario(path: &Path, opts: &LoadOptions, suite: &mut Suite, explicit: bool) {
    let name_guess = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(suite, name_guess, path, format!("cannot read: {e}")),
    };
    // Plain workflow files (children of scenarios) live beside scenarios; only files
    // with a `[workflow]` table are scenarios.
    let is_scenario = toml::from_str::<toml::Table>(&text)
        .map(|t| t.get("workflow").is_some_and(toml::Value::is_table))
        .unwrap_or(true);
    if !is_scenario {
        if explicit {
            fail(
                suite,
                name_guess,
                path,
                "not a scenario file (no [workflow] table)".into(),
            );
        }
        return;
    }
    let sc: Scenario = match toml::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                suite,
                name_guess,
                path,
                format!("invalid scenario: {}", e.message()),
            );
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let abs_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let program = match (&sc.workflow.inline, &sc.workflow.path) {
        (Some(inline), _) => {
            let inline = inline.replace(
                "${SCENARIO_DIR}",
                &abs_dir.display().to_string().replace('\\', "/"),
            );
            load::load_str(path, &inline, opts)
        }
        (None, Some(p)) => load::load(&dir.join(p), opts),
        (None, None) => {
            return fail(
                suite,
                sc.name,
                path,
                "[workflow] needs `inline` or `path`".into(),
            );
        }
    };
    let trigger_kind = sc.trigger.kind.clone().unwrap_or_else(|| "manual".into());
    push_case(
        suite,
        Case {
            name: sc.name.clone(),
            origin: path.to_path_buf(),
            start: sc.trigger.start.clone(),
            trigger_kind,
            payload: sc
                .trigger
                .payload
                .as_ref()
                .map(toml_to_json)
                .unwrap_or(serde_json::Value::Null),
            policy: match sc.policy {
                Some(p) => PolicyChoice::Override(Box::new(p)),
                None => PolicyChoice::Baked,
            },
            timeout_secs: sc.timeout_secs.unwrap_or(30).max(1),
            dry_run: false,
            trials: sc.trials.unwrap_or(1).max(1),
            min_pass_rate: sc.min_pass_rate,
            expected: sc.expected,
            turns: sc.intel.turns,
            intel_error_on_call: sc.faults.intel_error_on_call,
            mcp_tools: mock_results(&sc.mocks.mcp_tools),
            mcp_resources: mock_results(&sc.mocks.mcp_resources),
            program,
        },
    );
}

fn load_fixture(dir: &Path, opts: &LoadOptions, suite: &mut Suite) {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let fixture_path = dir.join("fixture.toml");
    let text = match std::fs::read_to_string(&fixture_path) {
        Ok(t) => t,
        Err(e) => return fail(suite, name, &fixture_path, format!("cannot read: {e}")),
    };
    let fx: Fixture = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            return fail(
                suite,
                name,
                &fixture_path,
                format!("invalid fixture: {}", e.message()),
            );
        }
    };
    let program = load::load(&dir.join("workflow.toml"), opts);
    push_case(
        suite,
        Case {
            name,
            origin: fixture_path,
            start: Some(fx.start.clone()),
            trigger_kind: fx.trigger.kind.clone().unwrap_or_else(|| "manual".into()),
            payload: fx
                .trigger
                .payload
                .as_ref()
                .map(toml_to_json)
                .unwrap_or_else(|| serde_json::json!({})),
            policy: PolicyChoice::AllowAll,
            timeout_secs: fx.timeout_secs.unwrap_or(30).max(1),
            dry_run: fx.dry_run,
            trials: 1,
            min_pass_rate: None,
            expected: fx.expected,
            turns: fx
                .mocks
                .intel
                .iter()
                .map(|c| Turn {
                    content: Some(c.clone()),
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    variants: Vec::new(),
                })
                .collect(),
            intel_error_on_call: None,
            mcp_tools: mock_results(&fx.mocks.mcp_tools),
            mcp_resources: mock_results(&fx.mocks.mcp_resources),
            program,
        },
    );
}

fn push_case(suite: &mut Suite, mut case: Case) {
    if case.program.has_errors() || case.program.root().is_none() {
        let errors = case
            .program
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        suite.failures.push(LoadFailure {
            name: case.name,
            origin: case.origin,
            reason: format!("workflow failed to load ({errors} errors)"),
            diagnostics: case.program.diagnostics.clone(),
            program: Some(case.program),
        });
        return;
    }
    if !matches!(case.trigger_kind.as_str(), "manual" | "http" | "event") {
        let reason = format!(
            "trigger kind `{}` must be manual, http or event",
            case.trigger_kind
        );
        return fail(suite, case.name, &case.origin.clone(), reason);
    }
    // Default start: the workflow's first declared start node (docs/cli.md "agentd test").
    if case.start.is_none() {
        case.start = case
            .program
            .root()
            .and_then(|u| u.doc.start_nodes.first())
            .map(|s| s.name.clone());
    }
    suite.cases.push(case);
}

/// The `CaseIntel { .. }` of a case: its turns as `MockTurn` statics.
fn intel_tokens(turns: &[Turn], fault: Option<u32>) -> TokenStream {
    let mock = quote!(::agentd_runtime::intel::mock);
    let variant = |content: &str, p: u32, c: u32| {
        let content = Literal::string(content);
        let (p, c) = (Literal::u32_unsuffixed(p), Literal::u32_unsuffixed(c));
        quote!(#mock::MockVariant { content: #content, prompt_tokens: #p, completion_tokens: #c })
    };
    let turns = turns.iter().map(|t| {
        let variants: Vec<TokenStream> = if t.variants.is_empty() {
            vec![variant(
                t.content.as_deref().unwrap_or(""),
                t.prompt_tokens,
                t.completion_tokens,
            )]
        } else {
            t.variants
                .iter()
                .map(|v| variant(&v.content, v.prompt_tokens, v.completion_tokens))
                .collect()
        };
        quote!(#mock::MockTurn { variants: &[#(#variants),*] })
    });
    let fault = match fault {
        Some(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    quote!(::agentd_runtime::harness::CaseIntel { turns: &[#(#turns),*], fault_on_call: #fault })
}

/// The `CaseMcp { .. }` of a case: each canned result as JSON text.
fn mcp_tokens(
    tools: &[(String, Vec<serde_json::Value>)],
    resources: &[(String, Vec<serde_json::Value>)],
) -> TokenStream {
    let table = |entries: &[(String, Vec<serde_json::Value>)]| {
        let rows = entries.iter().map(|(key, results)| {
            let key = Literal::string(key);
            let texts = results.iter().map(|r| Literal::string(&r.to_string()));
            quote!((#key, &[#(#texts),*]))
        });
        quote!(&[#(#rows),*])
    };
    let (tools, resources) = (table(tools), table(resources));
    quote!(::agentd_runtime::harness::CaseMcp { tools: #tools, resources: #resources })
}

/// Generate the harness crate for the cases.
pub fn harness_crate(cases: &[&Case]) -> GeneratedCrate {
    let mut modules = String::new();
    let mut features = std::collections::BTreeSet::from([RuntimeFeature::Harness]);
    let mut case_items = TokenStream::new();
    let mut runs = Vec::new();
    let mut hash = sha2::Sha256::new();
    use sha2::Digest;
    for (i, case) in cases.iter().enumerate() {
        let Some(root) = case.program.root() else {
            continue;
        };
        let ir = ir::lower(&case.program);
        features.extend(codegen::program_features(&ir, &root.doc));
        hash.update(ir.program_hash.as_bytes());
        let generated = codegen::generate(&ir, &root.doc, &CodegenOptions::default());
        modules.push_str(&format!(
            "\n#[allow(dead_code)]\nmod case{i} {{\n{}\n}}\n",
            generated.code
        ));

        let module = format_ident!("case{i}");
        let cname = format_ident!("CASE{i}");
        let name = Literal::string(&case.name);
        let start = Literal::string(case.start.as_deref().unwrap_or(""));
        let kind = match case.trigger_kind.as_str() {
            "http" => quote!(::agentd_runtime::graph::Source::Http),
            "event" => quote!(::agentd_runtime::graph::Source::Event),
            _ => quote!(::agentd_runtime::graph::Source::Manual),
        };
        let payload = Literal::string(&case.payload.to_string());
        let policy = match &case.policy {
            PolicyChoice::Baked => quote!(::agentd_runtime::harness::CasePolicy::Baked),
            PolicyChoice::AllowAll => quote!(::agentd_runtime::harness::CasePolicy::AllowAll),
            PolicyChoice::Override(p) => {
                // A case's own policy may carry Rego too (relative files resolve
                // against the working directory).
                // One that cannot be resolved is baked empty, which denies every
                // check: never silently dropped.
                let rego = p.rego.as_ref().map(|r| {
                    crate::resolve::rego::resolve(r, Path::new(""), Path::new("")).unwrap_or_else(
                        |_| crate::resolve::rego::RegoIr {
                            origin: "inline".into(),
                            source: String::new(),
                            data: "{}".into(),
                            query: crate::resolve::rego::DEFAULT_QUERY.into(),
                            v0: false,
                        },
                    )
                });
                if rego.is_some() {
                    features.insert(RuntimeFeature::Rego);
                }
                let v = codegen::policy_value(p, rego.as_ref());
                // Its own static: a Rego cache is interior-mutable, which a
                // reference inside another static's initialiser may not hold.
                let pname = format_ident!("CASE{i}_POLICY");
                case_items.extend(quote! {
                    static #pname: ::agentd_runtime::policy::Policy = #v;
                });
                quote!(::agentd_runtime::harness::CasePolicy::Override(&#pname))
            }
        };
        let timeout = Literal::u64_unsuffixed(case.timeout_secs);
        let dry_run = case.dry_run;
        let trials = Literal::u32_unsuffixed(case.trials);
        let rate = match case.min_pass_rate {
            Some(r) => {
                let r = Literal::f64_suffixed(r);
                quote!(::core::option::Option::Some(#r))
            }
            None => quote!(::core::option::Option::None),
        };
        let e = &case.expected;
        let opt_s = |v: &Option<String>| match v {
            Some(v) => {
                let l = Literal::string(v);
                quote!(::core::option::Option::Some(#l))
            }
            None => quote!(::core::option::Option::None),
        };
        let opt_u = |v: Option<u64>| match v {
            Some(v) => {
                let l = Literal::u64_unsuffixed(v);
                quote!(::core::option::Option::Some(#l))
            }
            None => quote!(::core::option::Option::None),
        };
        let (status, last_node, reason) = (
            opt_s(&e.status),
            opt_s(&e.last_node),
            opt_s(&e.reason_contains),
        );
        let path = match &e.path {
            Some(p) => {
                let lits = p.iter().map(|s| Literal::string(s));
                quote!(::core::option::Option::Some(&[#(#lits),*]))
            }
            None => quote!(::core::option::Option::None),
        };
        let path_exact = e.path_exact;
        let (mlc, mtt, mpd) = (
            opt_u(e.max_llm_calls),
            opt_u(e.max_total_tokens),
            opt_u(e.min_policy_denials),
        );
        let intel = intel_tokens(&case.turns, case.intel_error_on_call);
        let mcp = mcp_tokens(&case.mcp_tools, &case.mcp_resources);
        case_items.extend(quote! {
            static #cname: ::agentd_runtime::harness::Case = ::agentd_runtime::harness::Case {
                name: #name,
                start: #start,
                trigger_kind: #kind,
                payload: #payload,
                policy: #policy,
                timeout_secs: #timeout,
                dry_run: #dry_run,
                trials: #trials,
                min_pass_rate: #rate,
                expected: ::agentd_runtime::harness::Expected {
                    status: #status,
                    last_node: #last_node,
                    reason_contains: #reason,
                    path: #path,
                    path_exact: #path_exact,
                    max_llm_calls: #mlc,
                    max_total_tokens: #mtt,
                    min_policy_denials: #mpd,
                },
                intel: #intel,
                mcp: #mcp,
            };
        });
        runs.push(quote! {
            let r = ::agentd_runtime::harness::run_case(&#module::Program, &#cname);
            if ::agentd_runtime::harness::report_line(&#cname, &r) { passed += 1 } else { failed += 1 }
        });
    }
    let main_fn = quote! {
        #case_items

        /// Run every case; the last line is `N passed, M failed`.
        pub fn run_all() -> ::std::process::ExitCode {
            let mut passed = 0usize;
            let mut failed = 0usize;
            #(#runs)*
            println!("{passed} passed, {failed} failed");
            if failed == 0 { ::std::process::ExitCode::SUCCESS } else { ::std::process::ExitCode::FAILURE }
        }
    };
    let code = format!(
        "// @generated by agentd {} — the `agentd test` harness. Do not edit.\n{}{}",
        env!("CARGO_PKG_VERSION"),
        codegen::pretty(&main_fn),
        modules
    );
    let main = format!(
        "// @generated by agentd {} — the `agentd test` harness.\nmod workflow;\n\nfn main() -> std::process::ExitCode {{\n    workflow::run_all()\n}}\n",
        env!("CARGO_PKG_VERSION")
    );
    let digest = hash.finalize();
    GeneratedCrate {
        workflow_name: "agentd-test-harness".into(),
        code,
        features: features.into_iter().collect(),
        source_hash: digest.iter().map(|b| format!("{b:02x}")).collect(),
        sources: Vec::new(),
        signer: None,
        main_override: Some(main),
        tokens: proc_macro2::TokenStream::new(),
    }
}
