//! The Rego interpreter behind `[policy.rego]` (feature `rego`): regorus,
//! compiled once per policy on first use and kept in the policy's
//! [`RegoCache`](crate::policy::RegoCache). The policy, its cache and the
//! decision live in the core (`policy::rego`), which holds this interpreter
//! as a [`RegoCompile`](crate::policy::rego::RegoCompile) without naming
//! regorus (ARCHITECTURE.md, "The core and the facade"); generated code puts
//! [`compile`] in a baked policy's cache, and a `--policy` override's reader
//! does the same.

use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use serde_json::json;

use crate::policy::Decision;
use crate::policy::rego::{RegoEval, RegoInterpreter, RegoPolicy};

/// regorus, as the core's policy holds it.
pub static INTERPRETER: RegoInterpreter = RegoInterpreter { compile, decide };

/// The Rego half of a check whose static lists allowed `tool` with `args`:
/// the input document is `{"tool": tool, "args": args}`; only a query that is
/// boolean `true` allows, and undefined, any other value and every error deny.
fn decide(rego: &RegoPolicy, tool: &str, args: Value) -> Decision {
    let input = json!({ "tool": tool, "args": args });
    match rego.allows(&input) {
        Ok(true) => Decision::Allow,
        Ok(false) => Decision::Deny(format!(
            "denied by the Rego policy: `{}` is not true for input {input}",
            rego.query
        )),
        Err(e) => Decision::Deny(format!(
            "denied by the Rego policy: `{}` could not be evaluated for input {input}: {e}",
            rego.query
        )),
    }
}

/// Compile `policy` (its text, `data` and syntax version) with regorus.
///
/// # Errors
///
/// regorus's compile error on one line, or `data` that is not a JSON object.
pub fn compile(policy: &RegoPolicy) -> Result<Box<dyn RegoEval>, String> {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(policy.v0);
    engine
        .add_policy(policy.origin.to_string(), policy.source.to_string())
        .map_err(|e| one_line(&e.to_string()))?;
    engine
        .add_data_json(&policy.data)
        .map_err(|e| format!("`data` is not a JSON object: {}", one_line(&e.to_string())))?;
    Ok(Box::new(Regorus(Mutex::new(engine))))
}

/// regorus evaluates through `&mut Engine`; runs on several threads
/// (parallel, map, served requests) take turns, which costs little next to
/// the effect being gated.
struct Regorus(Mutex<regorus::Engine>);

impl RegoEval for Regorus {
    fn allows(&self, query: &str, input: &Value) -> Result<bool, String> {
        let mut engine = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        engine.set_input(regorus::Value::from(input.clone()));
        let results = engine
            .eval_query(query.to_owned(), false)
            .map_err(|e| one_line(&e.to_string()))?;
        match results.result.as_slice() {
            [] => Err(format!("`{query}` is undefined")),
            [one] => match one.expressions.as_slice() {
                [expr] => Ok(expr.value == regorus::Value::from(true)),
                _ => Err(format!("`{query}` produced more than one value")),
            },
            _ => Err(format!("`{query}` produced more than one value")),
        }
    }
}

/// regorus's messages are multi-line source excerpts; one line reads better
/// in an error string and an audit field.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|" && !l.ends_with('^'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use std::borrow::Cow;

    use crate::policy::rego::{DEFAULT_QUERY, RegoCache, RegoPolicy};
    use crate::policy::{Decision, EnvPolicy, Policy};

    fn rego(source: &str) -> RegoPolicy {
        RegoPolicy {
            origin: Cow::Borrowed("inline"),
            source: Cow::Owned(source.to_owned()),
            data: Cow::Borrowed("{}"),
            query: Cow::Borrowed(DEFAULT_QUERY),
            v0: false,
            cache: RegoCache::with(&super::INTERPRETER),
        }
    }

    fn env_policy(source: &str) -> Policy {
        Policy {
            env: EnvPolicy {
                read_keys: Cow::Borrowed(&[Cow::Borrowed("*")]),
            },
            rego: Some(rego(source)),
            ..Policy::DENY_ALL
        }
    }

    #[test]
    fn only_boolean_true_allows() {
        let input = json!({"tool": "env.read", "args": {"key": "HOME"}});
        let cases = [
            ("package agent\nallow := true\n", Ok(true)),
            ("package agent\nallow := false\n", Ok(false)),
            ("package agent\nallow := 1\n", Ok(false)),
            ("package agent\nallow := \"true\"\n", Ok(false)),
        ];
        for (source, want) in cases {
            assert_eq!(rego(source).allows(&input), want, "{source}");
        }
        let undefined = rego("package agent\nallow if input.tool == \"fs.read\"\n");
        assert!(
            undefined
                .allows(&input)
                .is_err_and(|e| e.contains("undefined"))
        );
    }

    #[test]
    fn the_rego_layer_runs_after_the_static_list_allowed() {
        let p = env_policy(
            "package agent\ndefault allow := false\nallow if {\n  input.tool == \"env.read\"\n  input.args.key == \"HOME\"\n}\n",
        );
        assert_eq!(p.check_env("HOME"), Decision::Allow);
        let Decision::Deny(reason) = p.check_env("PATH") else {
            panic!("PATH allowed");
        };
        assert!(
            reason.contains("Rego") && reason.contains("\"PATH\""),
            "{reason}"
        );
        // A static deny is final: Rego is not asked.
        let mut narrow = env_policy("package agent\nallow := true\n");
        narrow.env.read_keys = Cow::Borrowed(&[Cow::Borrowed("HOME")]);
        assert!(matches!(narrow.check_env("PATH"), Decision::Deny(r) if !r.contains("Rego")));
    }

    #[test]
    fn data_is_visible_to_the_policy_and_v0_text_evaluates() {
        let mut r = rego("package agent\nallow { input.args.key == data.allowed[_] }\n");
        r.v0 = true;
        r.data = Cow::Borrowed(r#"{"allowed": ["HOME"]}"#);
        let input = |k: &str| json!({"tool": "env.read", "args": {"key": k}});
        assert_eq!(r.allows(&input("HOME")), Ok(true));
        assert!(r.allows(&input("PATH")).is_err());
    }

    #[test]
    fn a_policy_that_does_not_compile_denies_every_check() {
        let p = env_policy("package agent\nallow if {\n");
        assert!(p.rego.as_ref().is_some_and(|r| r.compile().is_err()));
        assert!(
            matches!(p.check_env("HOME"), Decision::Deny(r) if r.contains("could not be evaluated"))
        );
    }

    #[test]
    fn a_baked_static_policy_compiles_once_and_is_shared_by_threads() {
        static POLICY: Policy = Policy {
            env: EnvPolicy {
                read_keys: Cow::Borrowed(&[Cow::Borrowed("*")]),
            },
            rego: Some(RegoPolicy {
                origin: Cow::Borrowed("inline"),
                source: Cow::Borrowed(
                    "package agent\nallow if startswith(input.args.key, \"A\")\n",
                ),
                data: Cow::Borrowed("{}"),
                query: Cow::Borrowed(DEFAULT_QUERY),
                v0: false,
                cache: RegoCache::with(&super::INTERPRETER),
            }),
            ..Policy::DENY_ALL
        };
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let key = if i % 2 == 0 { "A_KEY" } else { "B_KEY" };
                    (i, matches!(POLICY.check_env(key), Decision::Allow))
                })
            })
            .collect();
        for t in threads {
            let (i, allowed) = t.join().expect("thread");
            assert_eq!(allowed, i % 2 == 0);
        }
    }
}
