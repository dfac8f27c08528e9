//! Route `input_schema` enforcement: each route's baked JSON Schema, compiled once
//! when the server starts, and the check of a decoded request body against it.
//!
//! Owns [`InputSchemas`] (one compiled validator per route, same index as
//! `ServeDef::routes`) and [`Rejected`], the 400 reply's content: the JSON pointer of
//! the first failing location and the reason, with the instance value masked (a
//! reason never echoes the request's data). The schema applies to the body as the
//! workflow would see it in `trigger.*` — JSON as sent, a form as an object of
//! strings, an empty body as `null` — before the principal is added. The validators
//! come from the `jsonschema` crate behind the `input-schema` feature, which the
//! compiler enables only for workflows with an `input_schema`; a binary without the
//! feature refuses to start a route that has one rather than serve it unchecked.
//! Never reads a file and never builds an HTTP response.

use serde_json::{Value, json};

use crate::workflow::serve::ServeDef;

/// Longest reason sent back (a schema's own `pattern` or enum list can be long).
const MAX_REASON: usize = 300;

/// The compiled schema of every route.
pub(crate) struct InputSchemas {
    #[cfg(feature = "input-schema")]
    routes: Vec<Option<jsonschema::Validator>>,
}

/// Why a route's schema cannot be used at start (it was compiled at build time, so
/// this means a binary built without the feature, or a hand-wired `ServeDef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaError {
    /// `METHOD /path`.
    pub(crate) route: String,
    /// What is wrong.
    pub(crate) reason: String,
}

/// A request body that does not match its route's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// The JSON pointer (RFC 6901) of the first failing location; `""` is the
    /// whole body.
    pub(crate) pointer: String,
    /// What the schema required there.
    pub(crate) reason: String,
}

impl Rejected {
    /// The 400 body.
    pub(crate) fn body(&self) -> Value {
        json!({
            "error": "request body does not match the route's input_schema",
            "pointer": self.pointer,
            "reason": self.reason,
        })
    }
}

impl InputSchemas {
    /// Compile every route's schema.
    ///
    /// # Errors
    ///
    /// The first route whose schema cannot be compiled.
    pub(crate) fn compile(def: &ServeDef) -> Result<Self, SchemaError> {
        #[cfg(feature = "input-schema")]
        {
            let mut routes = Vec::with_capacity(def.routes.len());
            for r in def.routes {
                let Some(s) = r.input_schema else {
                    routes.push(None);
                    continue;
                };
                let fail = |reason: String| SchemaError {
                    route: format!("{} {}", r.method, r.path),
                    reason: format!("input_schema `{}`: {reason}", s.path),
                };
                let doc: Value = serde_json::from_str(s.schema)
                    .map_err(|e| fail(format!("not valid JSON: {e}")))?;
                let validator = jsonschema::validator_for(&doc)
                    .map_err(|e| fail(format!("not a valid JSON Schema: {e}")))?;
                routes.push(Some(validator));
            }
            Ok(Self { routes })
        }
        #[cfg(not(feature = "input-schema"))]
        {
            match def.routes.iter().find(|r| r.input_schema.is_some()) {
                Some(r) => Err(SchemaError {
                    route: format!("{} {}", r.method, r.path),
                    reason: "input_schema needs the runtime's `input-schema` feature, which this \
                             binary lacks"
                        .to_owned(),
                }),
                None => Ok(Self {}),
            }
        }
    }

    /// Check `value`, the decoded body of a request on route `index`.
    ///
    /// # Errors
    ///
    /// [`Rejected`] with the first failing location.
    pub(crate) fn check(&self, index: usize, value: &Value) -> Result<(), Rejected> {
        #[cfg(feature = "input-schema")]
        {
            let Some(Some(validator)) = self.routes.get(index) else {
                return Ok(());
            };
            validator.validate(value).map_err(|e| Rejected {
                pointer: e.instance_path.to_string(),
                reason: truncate(e.masked().to_string()),
            })
        }
        #[cfg(not(feature = "input-schema"))]
        {
            // `compile` refused every route with a schema.
            let _ = (index, value);
            Ok(())
        }
    }
}

#[cfg_attr(not(feature = "input-schema"), allow(dead_code))]
fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

#[cfg(all(test, feature = "input-schema"))]
mod tests {
    use super::*;
    use crate::workflow::serve::{AuthRef, InputSchemaDef, RouteDef};

    static ROUTES: [RouteDef; 2] = [
        RouteDef {
            method: "POST",
            path: "/orders",
            start: "s",
            auth: AuthRef::None,
            rate_limit: None,
            idempotency: None,
            input_schema: Some(InputSchemaDef {
                path: "order.json",
                schema: r#"{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"items":{"type":"array","items":{"type":"integer","minimum":1}}}}"#,
            }),
            inline: true,
        },
        RouteDef {
            method: "POST",
            path: "/free",
            start: "s",
            auth: AuthRef::None,
            rate_limit: None,
            idempotency: None,
            input_schema: None,
            inline: true,
        },
    ];
    static DEF: ServeDef = ServeDef {
        routes: &ROUTES,
        triggers: &[],
    };

    #[test]
    fn a_failing_body_names_the_first_failing_pointer_without_echoing_data() {
        let schemas = InputSchemas::compile(&DEF).expect("compiles");
        assert_eq!(
            schemas.check(0, &json!({"id": "A", "items": [1, 2]})),
            Ok(())
        );
        let r = schemas
            .check(0, &json!({"id": "A", "items": [1, "secret-ish"]}))
            .expect_err("a string item");
        assert_eq!(r.pointer, "/items/1");
        assert!(r.reason.contains("integer"), "{}", r.reason);
        assert!(!r.reason.contains("secret-ish"), "{}", r.reason);
        let r = schemas.check(0, &json!({"items": []})).expect_err("no id");
        assert_eq!(r.pointer, "");
        assert!(r.reason.contains("\"id\""), "{}", r.reason);
        // An empty body decodes to null, which is not an object.
        assert!(schemas.check(0, &Value::Null).is_err());
        // A route without a schema takes anything.
        assert_eq!(schemas.check(1, &json!(42)), Ok(()));
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(long);
        assert!(cut.len() <= MAX_REASON + '…'.len_utf8(), "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
