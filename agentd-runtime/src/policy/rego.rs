//! `[policy.rego]`: the Rego layer of the policy (docs/dialect.md §12.1).
//!
//! Owns [`RegoPolicy`] — the policy text, `data` and query, baked as `static`
//! data by the compiler (which read `file` and compiled the policy at build
//! time, so a syntax error never reaches a binary) or read from a `--policy`
//! override — and its evaluation against one input document. With feature
//! `rego` the text is compiled by regorus once, on first use, and the engine
//! kept in the policy's [`RegoCache`]; without it every evaluation is an
//! error, which the caller turns into a denial.
//!
//! Must never allow on doubt: only a query result that is exactly boolean
//! `true` allows; undefined, any other value, and every error deny. Never
//! reads files (a `file` was read by whoever built the policy).

use std::borrow::Cow;

use serde_json::Value;

/// The default `query` of `[policy.rego]`.
pub const DEFAULT_QUERY: &str = "data.agent.allow";

/// A `[policy.rego]` block, ready to evaluate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegoPolicy {
    /// Where the text came from, for messages: `inline`, or the file as written.
    pub origin: Cow<'static, str>,
    /// The Rego source text.
    pub source: Cow<'static, str>,
    /// The `data` document as JSON text (`{}` when the block has none).
    pub data: Cow<'static, str>,
    /// The query whose value decides ([`DEFAULT_QUERY`] unless set).
    pub query: Cow<'static, str>,
    /// Parse the text as Rego v0 (the syntax of dialect 1's regorus 0.3)
    /// rather than v1: set when the text is valid v0 but not v1.
    pub v0: bool,
    /// The compiled engine, built on first use.
    pub cache: RegoCache,
}

impl RegoPolicy {
    /// Whether the query evaluates to boolean `true` for `input`.
    ///
    /// # Errors
    ///
    /// Why it could not be evaluated: the policy does not compile, the
    /// query's value is undefined or not a single boolean, an evaluation
    /// error, or a binary built without the `rego` feature.
    pub fn allows(&self, input: &Value) -> Result<bool, String> {
        self.cache.allows(self, input)
    }

    /// Compile the text, `data` and query now, as the first evaluation would.
    ///
    /// # Errors
    ///
    /// The compile error (regorus's message, with its line and column).
    pub fn compile(&self) -> Result<(), String> {
        self.cache.compiled(self).map(|_| ())
    }
}

#[cfg(feature = "rego")]
pub use enabled::RegoCache;

#[cfg(not(feature = "rego"))]
pub use disabled::RegoCache;

#[cfg(feature = "rego")]
mod enabled {
    use std::sync::{Mutex, OnceLock, PoisonError};

    use serde_json::Value;

    use super::RegoPolicy;

    /// The compiled engine of one [`RegoPolicy`]; empty until first used.
    /// `const`-constructible, so a baked `static` policy can hold one.
    #[derive(Default)]
    pub struct RegoCache {
        // regorus evaluates through `&mut Engine`; runs on several threads
        // (parallel, map, served requests) take turns, which costs little next
        // to the effect being gated.
        engine: OnceLock<Result<Mutex<regorus::Engine>, String>>,
    }

    impl RegoCache {
        /// An empty cache.
        #[must_use]
        pub const fn new() -> Self {
            Self {
                engine: OnceLock::new(),
            }
        }

        pub(super) fn compiled(
            &self,
            policy: &RegoPolicy,
        ) -> Result<&Mutex<regorus::Engine>, String> {
            self.engine
                .get_or_init(|| build(policy).map(Mutex::new))
                .as_ref()
                .map_err(Clone::clone)
        }

        pub(super) fn allows(&self, policy: &RegoPolicy, input: &Value) -> Result<bool, String> {
            let engine = self.compiled(policy)?;
            let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
            engine.set_input(regorus::Value::from(input.clone()));
            let results = engine
                .eval_query(policy.query.to_string(), false)
                .map_err(|e| one_line(&e.to_string()))?;
            match results.result.as_slice() {
                [] => Err(format!("`{}` is undefined", policy.query)),
                [one] => match one.expressions.as_slice() {
                    [expr] => Ok(expr.value == regorus::Value::from(true)),
                    _ => Err(format!("`{}` produced more than one value", policy.query)),
                },
                _ => Err(format!("`{}` produced more than one value", policy.query)),
            }
        }
    }

    fn build(policy: &RegoPolicy) -> Result<regorus::Engine, String> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(policy.v0);
        engine
            .add_policy(policy.origin.to_string(), policy.source.to_string())
            .map_err(|e| one_line(&e.to_string()))?;
        engine
            .add_data_json(&policy.data)
            .map_err(|e| format!("`data` is not a JSON object: {}", one_line(&e.to_string())))?;
        Ok(engine)
    }

    /// regorus's messages are multi-line source excerpts; one line reads
    /// better in an error string and an audit field.
    fn one_line(message: &str) -> String {
        message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "|" && !l.ends_with('^'))
            .collect::<Vec<_>>()
            .join(" ")
    }

    impl std::fmt::Debug for RegoCache {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RegoCache")
                .field("compiled", &self.engine.get().map(Result::is_ok))
                .finish()
        }
    }
}

#[cfg(not(feature = "rego"))]
mod disabled {
    use serde_json::Value;

    use super::RegoPolicy;

    /// Without feature `rego` there is nothing to cache: every evaluation
    /// fails, and the caller denies.
    #[derive(Debug, Default)]
    pub struct RegoCache;

    impl RegoCache {
        /// An empty cache.
        #[must_use]
        pub const fn new() -> Self {
            Self
        }

        #[allow(clippy::unused_self)]
        pub(super) fn compiled(&self, _policy: &RegoPolicy) -> Result<(), String> {
            Err(UNSUPPORTED.to_owned())
        }

        #[allow(clippy::unused_self)]
        pub(super) fn allows(&self, _policy: &RegoPolicy, _input: &Value) -> Result<bool, String> {
            Err(UNSUPPORTED.to_owned())
        }
    }

    const UNSUPPORTED: &str = "this binary was built without Rego support (feature `rego`)";
}

/// A cache is a memo of the policy's own fields: a copy starts empty, and two
/// policies are equal whatever their caches hold.
impl Clone for RegoCache {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl PartialEq for RegoCache {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for RegoCache {}

#[cfg(all(test, feature = "rego"))]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::{Decision, EnvPolicy, Policy};

    fn rego(source: &str) -> RegoPolicy {
        RegoPolicy {
            origin: Cow::Borrowed("inline"),
            source: Cow::Owned(source.to_owned()),
            data: Cow::Borrowed("{}"),
            query: Cow::Borrowed(DEFAULT_QUERY),
            v0: false,
            cache: RegoCache::new(),
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
                cache: RegoCache::new(),
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
