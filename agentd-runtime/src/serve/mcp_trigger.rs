//! Resource triggers (feature `mcp`): `mcp.resource.updated` and
//! `mcp.resource.created` (docs/dialect.md, "Triggers").
//!
//! Owns the listener thread of each such trigger and its debouncer; the
//! transports (stdio children, Streamable HTTP) are [`crate::mcp`]'s and the
//! runs are [`super::runner::Runner`]'s. Never reads a resource itself.
//!
//! - `updated`: at start (and again whenever the server lost its state — a
//!   stdio child restarted) the trigger sends `resources/subscribe` for its
//!   URI; a pattern with `*` subscribes every matching URI of
//!   `resources/list`. Each `notifications/resources/updated` whose URI
//!   matches the pattern fires the start node.
//! - `created`: at start the trigger lists the server's resources; on each
//!   `notifications/resources/list_changed` it lists them again and fires
//!   once per matching URI it has not seen before.
//! - Fires are debounced per URI for [`DEBOUNCE`] (a burst of notifications
//!   for one URI is one run) and serial, like `fs_watch`: a URI that settled
//!   during a run fires after it. The payload is
//!   `{kind, server, uri, fired_at_unix_ms, tick}`.
//! - A listener that fails (the server is away, it offers no message
//!   stream) is audited (`mcp_trigger.error`) and set up again after a delay
//!   that doubles up to [`MAX_RETRY`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::runner::{Runner, unix_ms};
use crate::mcp::{Listing, McpServer};
use crate::policy::name_matches;
use crate::workflow::serve::{McpResourceEvent, TriggerDef};

/// Quiet time per URI before a fire.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Longest wait before a failed listener is set up again.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// URIs queued between the listener thread and the debouncer.
const QUEUE: usize = 1024;

/// Most URIs a `created` trigger remembers, and most a pattern subscribes.
const MAX_URIS: usize = 100_000;

/// The run input of a resource trigger's fire.
#[must_use]
pub fn mcp_resource_payload(
    kind: &str,
    server: &str,
    uri: &str,
    fired_at: SystemTime,
    tick: u64,
) -> Value {
    json!({
        "kind": kind,
        "server": server,
        "uri": uri,
        "fired_at_unix_ms": unix_ms(fired_at),
        "tick": tick,
    })
}

/// The trigger's task: a listener thread feeding a per-URI debouncer.
pub(crate) async fn task(runner: Runner, mut stop: watch::Receiver<bool>) {
    let TriggerDef::McpResource {
        event,
        server: name,
        resource,
        ..
    } = *runner.def()
    else {
        return;
    };
    let kind = runner.def().kind();
    let server = match runner.state().mcp.as_ref().map(|m| m.select(Some(name))) {
        Some(Ok(entry)) => Arc::clone(&entry.server),
        Some(Err(why)) => return audit_error(kind, name, &why),
        None => return audit_error(kind, name, "no MCP servers are running in this process"),
    };
    let timeout = runner.state().run_options.timeout;
    let (tx, mut uris) = mpsc::channel::<String>(QUEUE);
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stopped);
    let listener = std::thread::Builder::new()
        .name(format!("agentd-mcp-trigger-{name}"))
        .spawn(move || listen(&*server, event, name, resource, timeout, &tx, &flag));
    if let Err(e) = listener {
        return audit_error(kind, name, &format!("cannot start its thread: {e}"));
    }
    let mut pending: HashMap<String, tokio::time::Instant> = HashMap::new();
    let mut tick = 0_u64;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            uri = uris.recv() => match uri {
                Some(uri) => {
                    if pending.len() < MAX_URIS || pending.contains_key(&uri) {
                        pending.insert(uri, tokio::time::Instant::now());
                    }
                }
                None => break,
            },
            () = tokio::time::sleep(DEBOUNCE / 4), if !pending.is_empty() => {}
        }
        let now = tokio::time::Instant::now();
        let mut due: Vec<String> = pending
            .iter()
            .filter(|(_, seen)| now.duration_since(**seen) >= DEBOUNCE)
            .map(|(u, _)| u.clone())
            .collect();
        due.sort();
        for uri in due {
            if runner.is_busy() {
                break;
            }
            pending.remove(&uri);
            tick += 1;
            let payload = mcp_resource_payload(kind, name, &uri, SystemTime::now(), tick);
            runner.fire(tick, payload, None);
        }
    }
    stopped.store(true, Ordering::Release);
}

fn audit_error(kind: &str, server: &str, reason: &str) {
    crate::obs::audit(
        "mcp_trigger.error",
        json!({ "kind": kind, "server": server, "reason": reason }),
    );
}

/// The listener thread: set up (subscribe, or the first listing), follow
/// the server's notifications, and start over when the server lost its
/// state or the stream failed; until `stopped`.
fn listen(
    server: &dyn McpServer,
    event: McpResourceEvent,
    name: &str,
    pattern: &str,
    timeout: Duration,
    tx: &mpsc::Sender<String>,
    stopped: &AtomicBool,
) {
    let kind = match event {
        McpResourceEvent::Updated => "mcp.resource.updated",
        McpResourceEvent::Created => "mcp.resource.created",
    };
    let seen: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    let mut first = true;
    let mut retry = Duration::from_secs(1);
    while !stopped.load(Ordering::Acquire) {
        let generation = server.generation();
        let mut setup = || {
            match event {
                McpResourceEvent::Updated => subscribe(server, pattern, timeout)?,
                McpResourceEvent::Created => {
                    let now = listed(server, pattern, timeout)?;
                    if first {
                        *seen.borrow_mut() = now;
                    } else {
                        // Created while the listener was away: they fire too.
                        send_new(&mut seen.borrow_mut(), now, tx);
                    }
                }
            }
            first = false;
            crate::obs::audit(
                "mcp_trigger.listening",
                json!({ "kind": kind, "server": name, "resource": pattern }),
            );
            Ok(())
        };
        let mut on_message = |message: Value| {
            let method = message.get("method").and_then(Value::as_str);
            match (event, method) {
                (McpResourceEvent::Updated, Some("notifications/resources/updated")) => {
                    let uri = message
                        .get("params")
                        .and_then(|p| p.get("uri"))
                        .and_then(Value::as_str);
                    if let Some(uri) = uri.filter(|u| name_matches(pattern, u)) {
                        queue(tx, uri.to_owned());
                    }
                }
                (McpResourceEvent::Created, Some("notifications/resources/list_changed")) => {
                    match listed(server, pattern, timeout) {
                        Ok(now) => send_new(&mut seen.borrow_mut(), now, tx),
                        Err(why) => audit_error(kind, name, &why),
                    }
                }
                _ => {}
            }
        };
        let stop = || stopped.load(Ordering::Acquire) || server.generation() != generation;
        let outcome = server.listen(&mut setup, &mut on_message, &stop, timeout);
        match outcome {
            // Stopped, or the server lost its state: set up again at once.
            Ok(()) => retry = Duration::from_secs(1),
            Err(why) => {
                audit_error(kind, name, &why);
                let until = std::time::Instant::now() + retry;
                while std::time::Instant::now() < until && !stopped.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// `resources/subscribe` for `pattern`: the URI itself, or every listed URI
/// it matches when it has a `*`.
fn subscribe(server: &dyn McpServer, pattern: &str, timeout: Duration) -> Result<(), String> {
    if !pattern.contains('*') {
        return server
            .subscribe(pattern, timeout)
            .map_err(|e| e.to_string());
    }
    for uri in listed(server, pattern, timeout)? {
        server.subscribe(&uri, timeout).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The URIs of `resources/list` that match `pattern` (at most [`MAX_URIS`]).
fn listed(
    server: &dyn McpServer,
    pattern: &str,
    timeout: Duration,
) -> Result<HashSet<String>, String> {
    let items = server
        .list(Listing::Resources, timeout)
        .map_err(|e| e.to_string())?;
    Ok(items
        .iter()
        .filter_map(|r| r.get("uri").and_then(Value::as_str))
        .filter(|u| name_matches(pattern, u))
        .take(MAX_URIS)
        .map(str::to_owned)
        .collect())
}

/// Queue every URI of `now` not in `seen` (sorted, so a batch fires in a
/// stable order) and remember it.
fn send_new(seen: &mut HashSet<String>, now: HashSet<String>, tx: &mpsc::Sender<String>) {
    let mut new: Vec<String> = now.into_iter().filter(|u| !seen.contains(u)).collect();
    new.sort();
    for uri in new {
        if seen.len() < MAX_URIS {
            seen.insert(uri.clone());
        }
        queue(tx, uri);
    }
}

fn queue(tx: &mpsc::Sender<String>, uri: String) {
    if let Err(mpsc::error::TrySendError::Full(uri)) = tx.try_send(uri) {
        crate::obs::audit(
            "mcp_trigger.dropped",
            json!({ "uri": uri, "reason": "queue full" }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_carries_the_uri_and_server() {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            mcp_resource_payload("mcp.resource.updated", "docs", "file:///a", at, 2),
            json!({"kind": "mcp.resource.updated", "server": "docs", "uri": "file:///a",
                   "fired_at_unix_ms": 1_700_000_000_123_u64, "tick": 2})
        );
    }

    #[test]
    fn only_unseen_uris_are_queued_once() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut seen: HashSet<String> = ["a".to_owned()].into();
        send_new(
            &mut seen,
            ["a".to_owned(), "c".to_owned(), "b".to_owned()].into(),
            &tx,
        );
        send_new(&mut seen, ["a".to_owned(), "b".to_owned()].into(), &tx);
        drop(tx);
        let mut got = Vec::new();
        while let Ok(u) = rx.try_recv() {
            got.push(u);
        }
        assert_eq!(got, ["b", "c"]);
    }
}
