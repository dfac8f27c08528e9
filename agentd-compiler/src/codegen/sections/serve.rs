//! Build-time lowering of serve mode: the `SERVE` item of the generated
//! `Workflow` impl (`[[http_routes]]` and the long-lived `[[triggers]]`) and
//! the runtime features it needs.
//!
//! A workflow with neither routes nor a `cron` / `interval` / `fs_watch` /
//! `mcp.resource.*` trigger gets no item and no feature, so a one-shot binary
//! contains no server. Features: `serve` for any route or such trigger, plus
//! `schedule-cron` for a cron trigger, `fs-watch` for an fs_watch one and
//! `mcp` for a resource trigger (so a route-only binary does not carry
//! `cron`, `chrono` or `notify`).
//!
//! Everything is resolved here, from a validated program: methods are
//! upper-cased; auth refs become `AuthRef` variants naming their binding
//! (checked to exist by the validator; the scheme's feature is enabled by
//! `auth`); `rate_limit.per_second` keeps its written decimal value;
//! idempotency key paths lose their `trigger.` prefix and are split; an
//! `input_schema` is baked as the compact JSON text [`crate::ir::lower`] read and
//! [`crate::resolve::input_schema`] compiled (its runtime feature `input-schema` is added by
//! [`crate::codegen::program_features`]); cron schedules are normalised with
//! [`parse_cron`], as the validator checks them (one rule: five fields get a `0`
//! seconds field); intervals become
//! milliseconds; fs_watch event lists become a bit set (empty = all).
//!
//! Each route also gets `inline`: true when every node its run can reach in
//! the top-level graph is pure computation (no I/O, no sleeping retry, no
//! child walks), which lets the server run it on the reactor thread.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::codegen::features::{Features, RuntimeFeature};
use crate::grammar::{AuthRef, AuthScheme, parse_auth_ref, parse_cron, parse_interval};
use crate::ir::{GraphIr, ProgramIr};
use crate::model::{HttpRoute, NodeKind, Trigger, WorkflowDoc};
use crate::resolve::input_schema::RouteSchema;

/// Whether the root has anything to serve.
fn serves(root: &WorkflowDoc) -> bool {
    !root.http_routes.is_empty() || root.triggers.iter().any(long_lived)
}

fn long_lived(t: &Trigger) -> bool {
    matches!(
        t,
        Trigger::Cron(_)
            | Trigger::Interval(_)
            | Trigger::FsWatch(_)
            | Trigger::McpResourceUpdated(_)
            | Trigger::McpResourceCreated(_)
    )
}

/// Add the runtime features the root's routes and triggers need.
pub fn add_features(root: &WorkflowDoc, features: &mut Features) {
    if !serves(root) {
        return;
    }
    features.insert(RuntimeFeature::Serve);
    for t in &root.triggers {
        match t {
            Trigger::Cron(_) => {
                features.insert(RuntimeFeature::ScheduleCron);
            }
            Trigger::FsWatch(_) => {
                features.insert(RuntimeFeature::FsWatch);
            }
            // The listener is the MCP client's (and its servers are baked
            // only when `mcp` is on).
            Trigger::McpResourceUpdated(_) | Trigger::McpResourceCreated(_) => {
                features.insert(RuntimeFeature::Mcp);
            }
            _ => {}
        }
    }
}

fn s(v: &str) -> Literal {
    Literal::string(v)
}

/// `const SERVE: &ServeDef = ...;` when the root serves anything; empty
/// otherwise (the trait's default).
pub fn workflow_consts(ir: &ProgramIr, root: &WorkflowDoc) -> TokenStream {
    if !serves(root) {
        return TokenStream::new();
    }
    let def = quote!(::agentd_runtime::serve::def);
    let graph = ir.graphs.first();
    let routes = root
        .http_routes
        .iter()
        .enumerate()
        .map(|(i, r)| route_tokens(r, graph, ir.route_schemas.get(i).and_then(Option::as_ref)));
    let triggers = root
        .triggers
        .iter()
        .filter_map(trigger_tokens)
        .collect::<Vec<_>>();
    quote! {
        const SERVE: &'static #def::ServeDef = &#def::ServeDef {
            routes: &[#(#routes),*],
            triggers: &[#(#triggers),*],
        };
    }
}

fn route_tokens(
    r: &HttpRoute,
    graph: Option<&GraphIr>,
    schema: Option<&RouteSchema>,
) -> TokenStream {
    let def = quote!(::agentd_runtime::serve::def);
    let method = s(&r.method.to_ascii_uppercase());
    let path = s(&r.path);
    let start = s(&r.start_node);
    let auth = match r.auth.as_deref().map(parse_auth_ref) {
        None | Some(Ok(AuthRef::Anonymous)) | Some(Err(_)) => quote!(#def::AuthRef::None),
        Some(Ok(AuthRef::Mtls)) => quote!(#def::AuthRef::Mtls),
        Some(Ok(AuthRef::Binding { scheme, name })) => {
            let name = s(&name);
            match scheme {
                AuthScheme::Bearer => quote!(#def::AuthRef::Bearer(#name)),
                AuthScheme::Basic => quote!(#def::AuthRef::Basic(#name)),
                AuthScheme::Hmac => quote!(#def::AuthRef::Hmac(#name)),
                AuthScheme::Oidc => quote!(#def::AuthRef::Oidc(#name)),
            }
        }
    };
    let rate_limit = match &r.rate_limit {
        Some(rl) => {
            let capacity = Literal::u32_unsuffixed(rl.capacity);
            // The decimal the user wrote (0.1 stays 0.1, not 0.10000000149).
            let per_second: f64 = rl
                .per_second
                .to_string()
                .parse()
                .unwrap_or(f64::from(rl.per_second));
            let per_second = Literal::f64_suffixed(per_second);
            quote!(::core::option::Option::Some(#def::RateLimitDef {
                capacity: #capacity,
                per_second: #per_second,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    let idempotency = match &r.idempotency_key {
        Some(key) => {
            let key = if key == "body_sha256" {
                quote!(#def::IdempotencyKey::BodySha256)
            } else {
                let path = key.strip_prefix("trigger.").unwrap_or(key);
                let segs = path.split('.').map(s);
                quote!(#def::IdempotencyKey::Path(&[#(#segs),*]))
            };
            let ttl = Literal::u64_unsuffixed(r.idempotency_ttl_secs.unwrap_or(86_400));
            quote!(::core::option::Option::Some(#def::IdempotencyDef { key: #key, ttl_secs: #ttl }))
        }
        None => quote!(::core::option::Option::None),
    };
    let input_schema = match schema {
        Some(sc) => {
            let (path, text) = (s(&sc.path), s(&sc.text));
            quote!(::core::option::Option::Some(#def::InputSchemaDef { path: #path, schema: #text }))
        }
        None => quote!(::core::option::Option::None),
    };
    let inline = graph.is_some_and(|g| runs_inline(g, &r.start_node));
    quote!(#def::RouteDef {
        method: #method,
        path: #path,
        start: #start,
        auth: #auth,
        rate_limit: #rate_limit,
        idempotency: #idempotency,
        input_schema: #input_schema,
        inline: #inline,
    })
}

fn trigger_tokens(t: &Trigger) -> Option<TokenStream> {
    let def = quote!(::agentd_runtime::serve::def);
    Some(match t {
        Trigger::Cron(c) => {
            // Validated already; an error here cannot happen, and would only
            // fail the generated code's start with the schedule as written.
            let expr = parse_cron(&c.schedule).unwrap_or_else(|_| c.schedule.clone());
            let (schedule, expr, start) = (s(&c.schedule), s(&expr), s(&c.start_node));
            quote!(#def::TriggerDef::Cron { schedule: #schedule, expr: #expr, start: #start })
        }
        Trigger::Interval(i) => {
            let ms = parse_interval(&i.every)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0);
            let (every, ms, start) = (s(&i.every), Literal::u64_unsuffixed(ms), s(&i.start_node));
            quote!(#def::TriggerDef::Interval { every: #every, every_ms: #ms, start: #start })
        }
        Trigger::FsWatch(f) => {
            let mask = fs_events_mask(&f.events);
            let (path, start) = (s(&f.path), s(&f.start_node));
            let recursive = f.recursive;
            let mask = Literal::u8_unsuffixed(mask);
            let debounce = Literal::u64_unsuffixed(f.debounce_ms);
            quote!(#def::TriggerDef::FsWatch {
                path: #path,
                recursive: #recursive,
                events: #def::FsEvents(#mask),
                debounce_ms: #debounce,
                start: #start,
            })
        }
        Trigger::McpResourceUpdated(m) | Trigger::McpResourceCreated(m) => {
            let event = if matches!(t, Trigger::McpResourceUpdated(_)) {
                quote!(Updated)
            } else {
                quote!(Created)
            };
            let (server, resource, start) = (s(&m.server), s(&m.resource), s(&m.start_node));
            quote!(#def::TriggerDef::McpResource {
                event: #def::McpResourceEvent::#event,
                server: #server,
                resource: #resource,
                start: #start,
            })
        }
        Trigger::InternalEvent(_) => return None,
    })
}

/// `events` as the runtime's `FsEvents` bits; an empty list means all four.
fn fs_events_mask(events: &[String]) -> u8 {
    let mask = events.iter().fold(0_u8, |m, e| {
        m | match e.to_ascii_lowercase().as_str() {
            "create" => 1,
            "modify" => 2,
            "remove" | "delete" => 4,
            "rename" => 8,
            _ => 0,
        }
    });
    if mask == 0 { 15 } else { mask }
}

/// Whether a run of `start` only ever visits pure nodes of `g`.
fn runs_inline(g: &GraphIr, start: &str) -> bool {
    let Some(entry) = g
        .starts
        .iter()
        .find(|s| s.name == start)
        .and_then(|s| s.entry)
    else {
        // No entry: the run errors at once, wherever it runs.
        return true;
    };
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = vec![entry];
    while let Some(i) = stack.pop() {
        let Some(slot) = seen.get_mut(i as usize) else {
            return false;
        };
        if *slot {
            continue;
        }
        *slot = true;
        let Some(node) = g.nodes.get(i as usize) else {
            return false;
        };
        if node.retry.is_some() || !is_pure(&node.kind) {
            return false;
        }
        if let Some(edges) = g.out_edges.get(i as usize) {
            stack.extend(edges.iter().map(|e| e.to));
        }
    }
    true
}

/// Kinds that compute on the run's data without I/O, sleeping or threads.
fn is_pure(kind: &NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::ParseJson(_)
            | NodeKind::TemplateRender(_)
            | NodeKind::JsonSelect(_)
            | NodeKind::DiffCompute(_)
            | NodeKind::ReadEnv(_)
            | NodeKind::Condition(_)
            | NodeKind::Switch(_)
            | NodeKind::Merge
            | NodeKind::Fail(_)
            | NodeKind::Respond(_)
            | NodeKind::Terminate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(text: &str) -> (ProgramIr, WorkflowDoc) {
        let opts = crate::load::LoadOptions::default();
        let program = crate::load::load_str(std::path::Path::new("t.toml"), text, &opts);
        let errors: Vec<_> = program
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let doc = program
            .root()
            .map(|r| r.doc.clone())
            .unwrap_or_else(|| panic!("a root"));
        (crate::ir::lower(&program), doc)
    }

    const BASE: &str = r#"
name = "s"
[[start_nodes]]
name = "pure"
source = "http"
entry_node = "reply"
[[start_nodes]]
name = "io"
source = "http"
entry_node = "read"
[[nodes]]
id = "reply"
type = "respond"
body_template = "ok"
[[nodes]]
id = "read"
type = "read_file"
path_from = "trigger.p"
[[nodes]]
id = "after"
type = "respond"
body_template = "done"
[[edges]]
from = "read"
to = "after"
"#;

    #[test]
    fn nothing_to_serve_means_no_item_and_no_feature() {
        let (ir, doc) = program(BASE);
        assert!(workflow_consts(&ir, &doc).is_empty());
        let mut f = Features::new();
        add_features(&doc, &mut f);
        assert!(f.is_empty());
    }

    #[test]
    fn routes_are_baked_with_inline_decided_by_reachable_kinds() {
        let text = format!(
            "{BASE}\n[[http_routes]]\nmethod = \"post\"\npath = \"/a\"\nstart_node = \"pure\"\n\
             rate_limit = {{ capacity = 3, per_second = 0.1 }}\n\
             idempotency_key = \"trigger.order.id\"\n\
             [[http_routes]]\nmethod = \"GET\"\npath = \"/b\"\nstart_node = \"io\"\nauth = \"bearer\"\n\
             idempotency_key = \"body_sha256\"\nidempotency_ttl_secs = 60\n\
             [auth.bearer.default]\ntokens_env = \"T\"\n"
        );
        let (ir, doc) = program(&text);
        let code = workflow_consts(&ir, &doc).to_string().replace(' ', "");
        assert!(code.contains("method:\"POST\""), "{code}");
        assert!(code.contains("per_second:0.1f64"), "{code}");
        assert!(
            code.contains("IdempotencyKey::Path(&[\"order\",\"id\"])"),
            "{code}"
        );
        assert!(code.contains("ttl_secs:86400"), "{code}");
        assert!(code.contains("AuthRef::Bearer(\"default\")"), "{code}");
        assert!(code.contains("IdempotencyKey::BodySha256"), "{code}");
        assert!(code.contains("ttl_secs:60"), "{code}");
        // `pure` reaches only respond; `io` reaches read_file.
        assert_eq!(code.matches("inline:true").count(), 1, "{code}");
        assert_eq!(code.matches("inline:false").count(), 1, "{code}");
        let mut f = Features::new();
        add_features(&doc, &mut f);
        assert_eq!(f.into_iter().collect::<Vec<_>>(), [RuntimeFeature::Serve]);
    }

    #[test]
    fn triggers_are_normalised_and_pick_their_features() {
        let text = format!(
            "{BASE}\n[[triggers]]\ntype = \"cron\"\nschedule = \"30 2 * * *\"\nstart_node = \"pure\"\n\
             [[triggers]]\ntype = \"interval\"\nevery = \"5m\"\nstart_node = \"pure\"\n\
             [[triggers]]\ntype = \"fs_watch\"\npath = \"/tmp\"\nevents = [\"Create\", \"delete\"]\nstart_node = \"io\"\n\
             [[triggers]]\ntype = \"internal.event\"\nname = \"x\"\nstart_node = \"pure\"\n"
        );
        let (ir, doc) = program(&text);
        let code = workflow_consts(&ir, &doc).to_string().replace(' ', "");
        assert!(
            code.contains("schedule:\"30\"") || code.contains("schedule:\"302***\""),
            "{code}"
        );
        assert!(code.contains("expr:\"0302***\""), "{code}");
        assert!(code.contains("every_ms:300000"), "{code}");
        assert!(
            code.contains("FsEvents(5u8)") || code.contains("FsEvents(5)"),
            "{code}"
        );
        assert_eq!(
            code.matches("TriggerDef::").count(),
            3,
            "internal.event is not baked: {code}"
        );
        let mut f = Features::new();
        add_features(&doc, &mut f);
        assert_eq!(
            f.into_iter().collect::<Vec<_>>(),
            [
                RuntimeFeature::FsWatch,
                RuntimeFeature::ScheduleCron,
                RuntimeFeature::Serve
            ]
        );
    }

    #[test]
    fn an_empty_event_list_means_all_four() {
        assert_eq!(fs_events_mask(&[]), 15);
        assert_eq!(fs_events_mask(&["rename".into()]), 8);
    }
}
