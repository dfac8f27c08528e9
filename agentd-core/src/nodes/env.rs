//! The environment kind (feature `env`): `read_env` (docs/dialect.md §7 `read_env`).
//!
//! Gated by `env.read_keys`. Dry-run has no special case: the variable is
//! read (reading is not a side effect). This module must never read a
//! variable before the gate and never consult `[[secrets]]`.

use std::env::{self, VarError};

use serde_json::json;

use crate::context::{Cx, Step};
use crate::error::Error;

/// `read_env` config.
#[derive(Debug)]
pub struct ReadEnv {
    /// `key`: the literal variable name.
    pub key: &'static str,
}

/// `read_env`: output `{"key", "value"}`, or `{"key", "value": null,
/// "missing": true}` when the variable is unset (not an error).
///
/// # Errors
///
/// A denial (`Policy`); a non-UTF-8 value (`Tool`).
pub fn read_env(cx: &Cx<'_>, cfg: &'static ReadEnv) -> Result<Step, Error> {
    read_key(cx, cfg.key).map(Step::value)
}

/// The `read_env` tool of `agent_loop`: args `{"key"}`; the node's gate and
/// output.
///
/// # Errors
///
/// A missing or non-string `key` (`Tool`), and whatever the node fails with.
pub fn loop_read_env(cx: &Cx<'_>, args: &serde_json::Value) -> Result<serde_json::Value, Error> {
    let key = args
        .get("key")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::tool("read_env", "argument `key` must be a string"))?;
    read_key(cx, key)
}

/// `read_env` for `key`: gate, then read. Shared by the node and the loop tool.
fn read_key(cx: &Cx<'_>, key: &str) -> Result<serde_json::Value, Error> {
    cx.check_env(key)?;
    // `env::var` panics on a name with `=` or NUL; such a name cannot be
    // set, so it is simply missing.
    if key.is_empty() || key.contains(['=', '\0']) {
        return Ok(missing(key));
    }
    match env::var(key) {
        // The map built directly: `json!` would serialise each value again.
        Ok(value) => {
            let mut out = serde_json::Map::new();
            out.insert("key".to_owned(), key.into());
            out.insert("value".to_owned(), value.into());
            Ok(out.into())
        }
        Err(VarError::NotPresent) => Ok(missing(key)),
        Err(VarError::NotUnicode(_)) => Err(Error::tool(
            "read_env",
            format!("env var `{key}` is not valid UTF-8"),
        )),
    }
}

fn missing(key: &str) -> serde_json::Value {
    json!({ "key": key, "value": null, "missing": true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::TestRun;
    use crate::policy::{EnvPolicy, Policy};
    use serde_json::Value;
    use std::borrow::Cow;

    fn leak<T>(v: T) -> &'static T {
        Box::leak(Box::new(v))
    }

    #[test]
    fn reads_a_set_variable() {
        // PATH is set in every environment the tests run in; compare with
        // what std sees rather than assuming a value.
        let Ok(expected) = env::var("PATH") else {
            return;
        };
        let mut run = TestRun::new(Value::Null);
        assert_eq!(
            read_env(&run.cx(), leak(ReadEnv { key: "PATH" })).ok(),
            Some(Step::value(json!({"key": "PATH", "value": expected})))
        );
    }

    #[test]
    fn an_unset_variable_is_missing_not_an_error() {
        let key = "AGENTD_TEST_SURELY_UNSET_5f1c2a";
        let mut run = TestRun::new(Value::Null);
        assert_eq!(
            read_env(&run.cx(), leak(ReadEnv { key })).ok(),
            Some(Step::value(
                json!({"key": key, "value": null, "missing": true})
            ))
        );
    }

    #[test]
    fn unsettable_names_are_missing_rather_than_a_panic() {
        let mut run = TestRun::new(Value::Null);
        for key in ["", "A=B", "NUL\0"] {
            assert_eq!(
                read_env(&run.cx(), leak(ReadEnv { key })).ok(),
                Some(Step::value(
                    json!({"key": key, "value": null, "missing": true})
                ))
            );
        }
    }

    #[test]
    fn dry_run_still_reads() {
        let Ok(expected) = env::var("PATH") else {
            return;
        };
        let mut run = TestRun::new(Value::Null).dry();
        assert_eq!(
            read_env(&run.cx(), leak(ReadEnv { key: "PATH" })).ok(),
            Some(Step::value(json!({"key": "PATH", "value": expected})))
        );
    }

    #[test]
    fn keys_outside_the_allowlist_are_denied() {
        let policy = Policy {
            env: EnvPolicy {
                read_keys: Cow::Borrowed(&[Cow::Borrowed("AGENTD_NAME")]),
            },
            ..Policy::DENY_ALL
        };
        let mut run = TestRun::new(Value::Null).with_policy(policy);
        assert_eq!(
            read_env(&run.cx(), leak(ReadEnv { key: "HOME" }))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                "policy violation: read_env `HOME`: env var `HOME` is not in the allowlist \
                 (1 configured)"
            )
        );
    }
}
