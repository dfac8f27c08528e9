//! Scheduled triggers (docs/operations.md "Schedules"): `cron` (feature
//! `schedule-cron`), `interval`, and `fs_watch` (feature `fs-watch`); the
//! `mcp.resource.*` triggers' listeners are [`super::mcp_trigger`]'s; every
//! trigger fires through a [`Runner`] (`serve/runner.rs`).
//!
//! Owns the trigger tasks and their payloads. Each trigger is a task on the
//! server's reactor that decides *when* to fire and hands each fire to the
//! blocking pool; the workflow run itself is the engine's.
//!
//! Rules:
//! - runs of one trigger are serial. A cron or interval fire that comes
//!   while the trigger's previous run is still going is **skipped and
//!   counted** (`agentd_trigger_skipped_total`, audit `cron.skipped`);
//! - `interval` waits `every` after start, then `every` after each run
//!   *ends* (dialect 1's fixed delay), so it never overlaps itself;
//! - `cron` times are in the local time zone (`TZ`, else `/etc/localtime`,
//!   else UTC), as in dialect 1; 5-field expressions were given a `0`
//!   seconds field at build time. A fire missed by more than a second (the
//!   machine was suspended) is not caught up;
//! - `fs_watch` coalesces events per path for `debounce_ms` (the last event
//!   kind wins) and never drops one for being busy: a path whose quiet time
//!   ended during a run fires after it;
//! - `tick` counts a trigger's fires from 1, skipped ones included, so a
//!   gap in `tick` shows a skip.
//!
//! In a fleet (a shared [`crate::serve::store::Store`]), cron and interval
//! ticks are claimed before they fire: every replica computes the same tick
//! (a cron fire's scheduled instant; an interval's period number, with ticks
//! aligned to multiples of `every` on the wall clock instead of a delay after
//! each run), and the one whose claim wins runs it under a lease it renews
//! while the run goes. A replica that lost the claim watches the tick until
//! it is done; if the holder stops renewing (it died), the lease lapses and
//! a watcher takes the tick over (`agentd_lease_takeovers_total`, audit
//! `cron.takeover`): at least once per tick. A tick whose claim cannot reach
//! the store is skipped and audited (`cron.store_unavailable`). fs_watch
//! fires on every replica that sees the event (it watches its own files).
//!
//! Shutdown stops every trigger; a run already going finishes (the drain
//! waits for it).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::serve::runner::{Runner, unix_ms};
use crate::serve::{ServeError, State};
use crate::workflow::serve::{ServeDef, TriggerDef};

/// A trigger checked and ready to run.
pub(crate) struct Prepared {
    index: usize,
    def: &'static TriggerDef,
    how: How,
}

enum How {
    #[cfg(feature = "schedule-cron")]
    Cron(Box<cron::Schedule>),
    Interval(Duration),
    #[cfg(feature = "fs-watch")]
    FsWatch(fs_watch::Watch),
    #[cfg(feature = "mcp")]
    McpResource,
}

/// Check every trigger of `def` (schedules parse, watched paths exist, the
/// feature is compiled in) before anything starts.
pub(crate) fn prepare(def: &'static ServeDef) -> Result<Vec<Prepared>, ServeError> {
    def.triggers
        .iter()
        .enumerate()
        .map(|(index, t)| {
            let err = |reason: String| ServeError::Trigger {
                trigger: format!("{}#{index}:{}", t.kind(), t.start()),
                reason,
            };
            let how = match t {
                TriggerDef::Interval { every_ms, .. } => {
                    if *every_ms == 0 {
                        return Err(err("the interval must be greater than zero".to_owned()));
                    }
                    How::Interval(Duration::from_millis(*every_ms))
                }
                #[cfg(feature = "schedule-cron")]
                TriggerDef::Cron { expr, .. } => {
                    use std::str::FromStr as _;
                    How::Cron(Box::new(
                        cron::Schedule::from_str(expr)
                            .map_err(|e| err(format!("schedule `{expr}`: {e}")))?,
                    ))
                }
                #[cfg(not(feature = "schedule-cron"))]
                TriggerDef::Cron { .. } => {
                    return Err(err(
                        "cron triggers need the `schedule-cron` feature; rebuild with agentd build"
                            .to_owned(),
                    ));
                }
                #[cfg(feature = "fs-watch")]
                TriggerDef::FsWatch {
                    path, recursive, ..
                } => How::FsWatch(fs_watch::Watch::new(path, *recursive).map_err(err)?),
                #[cfg(not(feature = "fs-watch"))]
                TriggerDef::FsWatch { .. } => {
                    return Err(err(
                        "fs_watch triggers need the `fs-watch` feature; rebuild with agentd build"
                            .to_owned(),
                    ));
                }
                #[cfg(feature = "mcp")]
                TriggerDef::McpResource { .. } => How::McpResource,
                #[cfg(not(feature = "mcp"))]
                TriggerDef::McpResource { .. } => {
                    return Err(err(
                        "mcp.resource triggers need the `mcp` feature; rebuild with agentd build"
                            .to_owned(),
                    ));
                }
            };
            Ok(Prepared { index, def: t, how })
        })
        .collect()
}

/// Start one task per trigger; each ends when `stop` turns true.
pub(crate) fn spawn(
    state: &Arc<State>,
    triggers: Vec<Prepared>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    triggers
        .into_iter()
        .map(|p| {
            let runner = Runner::new(Arc::clone(state), p.index, p.def);
            let stop = stop.clone();
            match p.how {
                How::Interval(every) => tokio::spawn(interval_task(runner, every, stop)),
                #[cfg(feature = "schedule-cron")]
                How::Cron(schedule) => tokio::spawn(cron_task(runner, *schedule, stop)),
                #[cfg(feature = "fs-watch")]
                How::FsWatch(watch) => tokio::spawn(fs_watch::task(runner, watch, stop)),
                #[cfg(feature = "mcp")]
                How::McpResource => tokio::spawn(super::mcp_trigger::task(runner, stop)),
            }
        })
        .collect()
}

/// The run input of a cron fire.
#[must_use]
pub fn cron_payload(schedule: &str, fired_at: SystemTime, tick: u64) -> Value {
    json!({
        "kind": "cron",
        "schedule": schedule,
        "fired_at_unix_ms": unix_ms(fired_at),
        "tick": tick,
    })
}

/// The run input of an interval fire.
#[must_use]
pub fn interval_payload(every_ms: u64, fired_at: SystemTime, tick: u64) -> Value {
    json!({
        "kind": "interval",
        "every_ms": every_ms,
        "fired_at_unix_ms": unix_ms(fired_at),
        "tick": tick,
    })
}

/// The run input of an fs_watch fire.
#[must_use]
pub fn fs_watch_payload(path: &str, event: &str, fired_at: SystemTime, tick: u64) -> Value {
    json!({
        "kind": "fs_watch",
        "path": path,
        "event": event,
        "fired_at_unix_ms": unix_ms(fired_at),
        "tick": tick,
    })
}

/// Dialect 1's fixed delay: the next fire is `every` after the previous run
/// *ends*, so an interval trigger never overlaps itself.
async fn interval_task(runner: Runner, every: Duration, mut stop: watch::Receiver<bool>) {
    let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut tick = 0_u64;
    if runner.state.store.shared() {
        // A fleet names ticks by period: the same number on every replica.
        loop {
            let now_ms = unix_ms(SystemTime::now());
            let period = now_ms / every_ms + 1;
            let wait =
                Duration::from_millis(period.saturating_mul(every_ms).saturating_sub(now_ms));
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(wait) => {}
            }
            tick += 1;
            let payload = interval_payload(every_ms, SystemTime::now(), tick);
            // Not awaited: the next period comes on the clock, not after
            // this run (a long run makes this replica skip, not the fleet).
            let _ = runner.claim_and_fire(tick, period, payload, &stop).await;
        }
    }
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every) => {}
        }
        tick += 1;
        if let Some(run) = runner.fire(
            tick,
            interval_payload(every_ms, SystemTime::now(), tick),
            None,
        ) {
            // The drain waits for the run itself (it is tracked); here only
            // the next delay does.
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = run => {}
            }
        }
    }
}

#[cfg(feature = "schedule-cron")]
async fn cron_task(runner: Runner, schedule: cron::Schedule, mut stop: watch::Receiver<bool>) {
    use chrono::Local;

    let text = match runner.def {
        TriggerDef::Cron { schedule, .. } => *schedule,
        _ => "",
    };
    let mut after = Local::now();
    let mut tick = 0_u64;
    loop {
        // Only an instant later than `after`: in the hour a daylight-saving
        // change repeats, the crate can yield an earlier one, which would
        // otherwise fire (or skip) in a tight loop until the hour is over.
        let Some(next) = schedule.after(&after).take(64).find(|n| *n > after) else {
            crate::obs::audit(
                "cron.no_next_fire",
                json!({"schedule": text, "start_node": runner.def.start()}),
            );
            return;
        };
        let wait = (next - Local::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        tick += 1;
        let payload = cron_payload(text, SystemTime::now(), tick);
        // Every replica computes the same scheduled instant: the tick's name.
        let id = u64::try_from(next.timestamp_millis()).unwrap_or(0);
        runner.claim_and_fire(tick, id, payload, &stop).await;
        // The next fire is computed from the one just made, not from the
        // clock, so an early wake-up can never fire the same instant twice;
        // after a suspend, missed fires are dropped, not replayed.
        let floor = Local::now() - chrono::TimeDelta::seconds(1);
        after = if next < floor { floor } else { next };
    }
}

#[cfg(feature = "fs-watch")]
mod fs_watch {
    //! The `notify` watcher and the per-path debouncer.

    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use notify::event::{EventKind, ModifyKind};
    use notify::{RecursiveMode, Watcher as _};
    use tokio::sync::{mpsc, watch};

    use serde_json::json;

    use super::{Runner, fs_watch_payload};
    use crate::workflow::serve::{FsEvents, TriggerDef};

    /// Events queued between the watcher thread and the debouncer; beyond
    /// this, events are dropped (and audited) rather than buffered without
    /// bound.
    const QUEUE: usize = 4096;

    /// Most distinct paths a trigger holds while they settle or wait for the
    /// current run; events for more new paths are dropped (audit
    /// `fs_watch.dropped` says how many), so a flood of files cannot grow
    /// memory without bound.
    const MAX_PENDING_PATHS: usize = 10_000;

    /// A live watch on one path.
    pub(crate) struct Watch {
        // Kept alive: dropping the watcher stops the events.
        _watcher: notify::RecommendedWatcher,
        events: mpsc::Receiver<(PathBuf, FsEvents)>,
    }

    impl Watch {
        pub(crate) fn new(path: &str, recursive: bool) -> Result<Self, String> {
            if !std::path::Path::new(path).exists() {
                return Err(format!("watched path `{path}` does not exist"));
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let mut watcher = notify::recommended_watcher(
                move |res: notify::Result<notify::Event>| match res {
                    Ok(event) => {
                        let Some(kind) = classify(event.kind) else {
                            return;
                        };
                        for path in event.paths {
                            if tx.try_send((path, kind)).is_err() {
                                crate::obs::audit(
                                    "fs_watch.event_error",
                                    serde_json::json!({"reason": "event queue full; event dropped"}),
                                );
                            }
                        }
                    }
                    Err(e) => crate::obs::audit(
                        "fs_watch.event_error",
                        serde_json::json!({"reason": e.to_string()}),
                    ),
                },
            )
            .map_err(|e| format!("cannot start a file watcher: {e}"))?;
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher
                .watch(std::path::Path::new(path), mode)
                .map_err(|e| format!("cannot watch `{path}`: {e}"))?;
            crate::obs::audit(
                "fs_watch.started",
                serde_json::json!({"path": path, "recursive": recursive}),
            );
            Ok(Self {
                _watcher: watcher,
                events: rx,
            })
        }
    }

    /// The dialect's event kinds; everything else (access, metadata) is
    /// ignored.
    pub(crate) fn classify(kind: EventKind) -> Option<FsEvents> {
        match kind {
            EventKind::Create(_) => Some(FsEvents::CREATE),
            EventKind::Modify(ModifyKind::Data(_)) => Some(FsEvents::MODIFY),
            EventKind::Modify(ModifyKind::Name(_)) => Some(FsEvents::RENAME),
            EventKind::Remove(_) => Some(FsEvents::REMOVE),
            _ => None,
        }
    }

    pub(crate) fn name(kind: FsEvents) -> &'static str {
        match kind {
            FsEvents::CREATE => "create",
            FsEvents::MODIFY => "modify",
            FsEvents::REMOVE => "remove",
            _ => "rename",
        }
    }

    pub(crate) async fn task(runner: Runner, mut watch: Watch, mut stop: watch::Receiver<bool>) {
        let (filter, debounce) = match runner.def {
            TriggerDef::FsWatch {
                events,
                debounce_ms,
                ..
            } => (*events, Duration::from_millis(*debounce_ms)),
            _ => return,
        };
        let poll = debounce.clamp(Duration::from_millis(1), Duration::from_millis(200));
        // Path → (last kind, when it was seen).
        let mut pending: HashMap<PathBuf, (FsEvents, tokio::time::Instant)> = HashMap::new();
        // New paths refused because `pending` was full, since the last report.
        let mut dropped = 0_u64;
        let mut tick = 0_u64;
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                event = watch.events.recv() => match event {
                    Some((path, kind)) => {
                        let room = pending.len() < MAX_PENDING_PATHS || pending.contains_key(&path);
                        if filter.contains(kind) && room {
                            pending.insert(path, (kind, tokio::time::Instant::now()));
                        } else if filter.contains(kind) {
                            dropped += 1;
                        }
                    }
                    // The watcher is gone; nothing more will come.
                    None => return,
                },
                () = tokio::time::sleep(poll), if !pending.is_empty() => {}
            }
            let now = tokio::time::Instant::now();
            let mut due: Vec<PathBuf> = pending
                .iter()
                .filter(|(_, (_, seen))| now.duration_since(*seen) >= debounce)
                .map(|(p, _)| p.clone())
                .collect();
            // Deterministic order when several paths settle together.
            due.sort();
            for path in due {
                // Serial runs: a settled path waits for the current run
                // instead of being dropped.
                if runner.is_busy() {
                    break;
                }
                let Some((kind, _)) = pending.remove(&path) else {
                    continue;
                };
                tick += 1;
                let payload =
                    fs_watch_payload(&path.to_string_lossy(), name(kind), SystemTime::now(), tick);
                runner.fire(tick, payload, None);
            }
            if dropped > 0 && pending.len() < MAX_PENDING_PATHS {
                crate::obs::audit(
                    "fs_watch.dropped",
                    json!({
                        "start_node": runner.def.start(),
                        "dropped": dropped,
                        "limit": MAX_PENDING_PATHS,
                    }),
                );
                dropped = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn payloads_match_the_dialect() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            cron_payload("30 2 * * *", at, 3),
            json!({"kind": "cron", "schedule": "30 2 * * *", "fired_at_unix_ms": 1_700_000_000_123_u64, "tick": 3})
        );
        assert_eq!(
            interval_payload(5000, at, 1),
            json!({"kind": "interval", "every_ms": 5000, "fired_at_unix_ms": 1_700_000_000_123_u64, "tick": 1})
        );
        assert_eq!(
            fs_watch_payload("/in/a.txt", "create", at, 2),
            json!({"kind": "fs_watch", "path": "/in/a.txt", "event": "create", "fired_at_unix_ms": 1_700_000_000_123_u64, "tick": 2})
        );
    }

    #[test]
    fn the_payload_kind_overrides_manual_in_the_trigger_context() {
        let at = SystemTime::now();
        let trigger = crate::context::flatten_trigger(
            crate::graph::Source::Manual,
            &interval_payload(1000, at, 1),
        );
        assert_eq!(trigger.get("kind"), Some(&json!("interval")));
    }

    #[cfg(feature = "fs-watch")]
    #[test]
    fn fs_events_map_to_the_four_dialect_kinds() {
        use crate::workflow::serve::FsEvents;
        use notify::event::{
            AccessKind, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind, RemoveKind,
            RenameMode,
        };
        let c = fs_watch::classify;
        assert_eq!(
            c(EventKind::Create(CreateKind::File)),
            Some(FsEvents::CREATE)
        );
        assert_eq!(
            c(EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            Some(FsEvents::MODIFY)
        );
        assert_eq!(
            c(EventKind::Modify(ModifyKind::Name(RenameMode::Both))),
            Some(FsEvents::RENAME)
        );
        assert_eq!(
            c(EventKind::Remove(RemoveKind::File)),
            Some(FsEvents::REMOVE)
        );
        assert_eq!(
            c(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))),
            None
        );
        assert_eq!(c(EventKind::Access(AccessKind::Any)), None);
        assert_eq!(fs_watch::name(FsEvents::REMOVE), "remove");
    }

    #[cfg(feature = "fs-watch")]
    #[test]
    fn a_missing_watched_path_refuses_to_start() {
        use crate::workflow::serve::FsEvents;
        static TRIGGERS: [TriggerDef; 1] = [TriggerDef::FsWatch {
            path: "/nonexistent/agentd-fs-watch",
            recursive: false,
            events: FsEvents::ALL,
            debounce_ms: 250,
            start: "s",
        }];
        static DEF: ServeDef = ServeDef {
            routes: &[],
            triggers: &TRIGGERS,
        };
        match prepare(&DEF) {
            Err(ServeError::Trigger { trigger, reason }) => {
                assert_eq!(trigger, "fs_watch#0:s");
                assert!(reason.contains("does not exist"), "{reason}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a missing path must refuse to start"),
        }
    }

    #[test]
    fn a_zero_interval_refuses_to_start() {
        static TRIGGERS: [TriggerDef; 1] = [TriggerDef::Interval {
            every: "0s",
            every_ms: 0,
            start: "s",
        }];
        static DEF: ServeDef = ServeDef {
            routes: &[],
            triggers: &TRIGGERS,
        };
        assert!(matches!(prepare(&DEF), Err(ServeError::Trigger { .. })));
    }

    #[cfg(feature = "schedule-cron")]
    #[test]
    fn cron_schedules_with_six_and_seven_fields_parse_and_advance() {
        use std::str::FromStr as _;
        for expr in ["0 30 2 * * *", "0 30 2 * * * 2099", "*/5 * * * * *"] {
            let s = cron::Schedule::from_str(expr);
            assert!(s.is_ok(), "{expr}: {s:?}");
        }
        let every5 = cron::Schedule::from_str("*/5 * * * * *").map_err(|e| e.to_string());
        let every5 = every5.unwrap_or_else(|e| panic!("{e}"));
        let now = chrono::Local::now();
        let mut upcoming = every5.after(&now);
        let (a, b) = (upcoming.next(), upcoming.next());
        let gap = b.zip(a).map(|(b, a)| (b - a).num_seconds());
        assert_eq!(gap, Some(5));
    }
}
