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
use std::sync::OnceLock;

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

/// Compiles a [`RegoPolicy`] into an evaluator (see [`RegoInterpreter`]).
pub type RegoCompile = fn(&RegoPolicy) -> Result<Box<dyn RegoEval>, String>;

/// The Rego interpreter a binary carries: the runtime's regorus
/// (`agentd_runtime::rego::INTERPRETER`, feature `rego`). The core holds the
/// policy and its cache without naming regorus, so generated code and a
/// `--policy` override put the interpreter in the cache
/// ([`RegoCache::with`]) when the binary has one. Both halves of a decision
/// live behind it, building the input document and wording the denial
/// included, so a binary without `[policy.rego]` links none of that code.
#[derive(Debug)]
pub struct RegoInterpreter {
    /// Compiles a policy, once per cache.
    pub compile: RegoCompile,
    /// Decides `tool` with `args` for a policy whose static lists allowed it
    /// (what [`crate::Policy::then_rego`] returns).
    pub decide: fn(&RegoPolicy, &str, Value) -> crate::policy::Decision,
}

/// A compiled [`RegoPolicy`].
pub trait RegoEval: Send + Sync {
    /// Whether `query` evaluates to boolean `true` for `input`.
    ///
    /// # Errors
    ///
    /// The query's value is undefined or not a single value, or the
    /// evaluation failed.
    fn allows(&self, query: &str, input: &Value) -> Result<bool, String>;
}

/// The compiled engine of one [`RegoPolicy`]; empty until first used.
/// `const`-constructible, so a baked `static` policy can hold one.
pub struct RegoCache {
    /// The interpreter; `None` in a binary built without Rego support, where
    /// every evaluation fails and the caller denies.
    interpreter: Option<&'static RegoInterpreter>,
    engine: OnceLock<Result<Box<dyn RegoEval>, String>>,
}

impl RegoCache {
    /// An empty cache with no interpreter: every evaluation fails (a binary
    /// built without the `rego` feature).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            interpreter: None,
            engine: OnceLock::new(),
        }
    }

    /// An empty cache that compiles its policy with `interpreter` on first use.
    #[must_use]
    pub const fn with(interpreter: &'static RegoInterpreter) -> Self {
        Self {
            interpreter: Some(interpreter),
            engine: OnceLock::new(),
        }
    }

    /// The interpreter, if this binary has one.
    #[must_use]
    pub const fn interpreter(&self) -> Option<&'static RegoInterpreter> {
        self.interpreter
    }

    fn compiled(&self, policy: &RegoPolicy) -> Result<&dyn RegoEval, String> {
        let Some(interpreter) = self.interpreter else {
            return Err(UNSUPPORTED.to_owned());
        };
        self.engine
            .get_or_init(|| (interpreter.compile)(policy))
            .as_ref()
            .map(AsRef::as_ref)
            .map_err(Clone::clone)
    }

    fn allows(&self, policy: &RegoPolicy, input: &Value) -> Result<bool, String> {
        self.compiled(policy)?.allows(&policy.query, input)
    }
}

impl Default for RegoCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RegoCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegoCache")
            .field("interpreter", &self.interpreter.is_some())
            .field("compiled", &self.engine.get().map(Result::is_ok))
            .finish()
    }
}

const UNSUPPORTED: &str = "this binary was built without Rego support (feature `rego`)";

/// A cache is a memo of the policy's own fields: a copy starts empty, and two
/// policies are equal whatever their caches hold.
impl Clone for RegoCache {
    fn clone(&self) -> Self {
        Self {
            interpreter: self.interpreter,
            engine: OnceLock::new(),
        }
    }
}

impl PartialEq for RegoCache {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for RegoCache {}
