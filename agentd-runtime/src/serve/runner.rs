//! A trigger's runner: fires one trigger's runs, one at a time, claiming
//! fleet ticks in the shared store first (docs/operations.md "Schedules").
//! Used by the schedule tasks (`serve/schedule.rs`) and the MCP resource
//! listeners (`serve/mcp_trigger.rs`); imports neither, so both can hand it
//! their fires without an import circle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::engine::Trigger;
use crate::outcome::RunReport;
use crate::serve::State;
use crate::serve::store::{TICK_LEASE, TickClaim, TickLease};
use crate::workflow::serve::TriggerDef;

/// Fires one trigger's runs, one at a time.
pub(crate) struct Runner {
    pub(super) state: Arc<State>,
    pub(super) index: usize,
    pub(super) def: &'static TriggerDef,
    /// A run of this trigger is going.
    pub(super) busy: Arc<AtomicBool>,
}

// By hand: a derive would ask for `W: Clone`.
impl Clone for Runner {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
            index: self.index,
            def: self.def,
            busy: Arc::clone(&self.busy),
        }
    }
}

impl Runner {
    pub(crate) fn new(state: Arc<State>, index: usize, def: &'static TriggerDef) -> Self {
        Self {
            state,
            index,
            def,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    #[cfg(any(feature = "fs-watch", feature = "mcp"))]
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// The trigger this runner fires.
    #[cfg(feature = "mcp")]
    pub(crate) const fn def(&self) -> &'static TriggerDef {
        self.def
    }

    /// The server state the runs use.
    #[cfg(feature = "mcp")]
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// Claim tick `id` in the store, then [`Runner::fire`] it if this replica
    /// won; a tick another replica holds is watched ([`Runner::watch_tick`])
    /// so it is taken over should that replica die. `None` when nothing runs
    /// here now.
    pub(super) async fn claim_and_fire(
        &self,
        tick: u64,
        id: u64,
        payload: Value,
        stop: &watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        // Busy here: leave the tick to a replica that is free (a local store
        // counts the skip, as always).
        if self.state.store.shared() && self.busy.load(Ordering::Acquire) {
            self.skip(tick);
            return None;
        }
        let claim = self.state.store.tick(self.index, id);
        match self.state.store_op(claim).await {
            Ok(TickClaim::Won(lease)) => self.fire(tick, payload, Some(lease)),
            Ok(TickClaim::Done) => None,
            Ok(TickClaim::Held) => {
                let watcher = self.clone();
                let stop = stop.clone();
                tokio::spawn(async move { watcher.watch_tick(tick, id, payload, stop).await });
                None
            }
            Err(e) => {
                crate::obs::audit(
                    "cron.store_unavailable",
                    json!({"kind": self.def.kind(), "start_node": self.def.start(),
                           "tick": tick, "reason": e.to_string()}),
                );
                None
            }
        }
    }

    /// Watch tick `id`, held by another replica, until it is done; take it
    /// over when its lease lapses. Gives up once the holder could no longer
    /// be running it (the run deadline plus two leases).
    pub(super) async fn watch_tick(
        &self,
        tick: u64,
        id: u64,
        payload: Value,
        mut stop: watch::Receiver<bool>,
    ) {
        let horizon =
            Instant::now() + self.state.run_options.timeout + TICK_LEASE.saturating_mul(2);
        while Instant::now() < horizon {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(TICK_LEASE / 2) => {}
            }
            match self
                .state
                .store_op(self.state.store.tick(self.index, id))
                .await
            {
                Ok(TickClaim::Won(lease)) => {
                    self.state.metrics.lease_takeover();
                    crate::obs::audit(
                        "cron.takeover",
                        json!({"kind": self.def.kind(), "start_node": self.def.start(), "tick": tick}),
                    );
                    if let Some(run) = self.fire(tick, payload, Some(lease)) {
                        let _ = run.await;
                    }
                    return;
                }
                Ok(TickClaim::Done) => return,
                // Still held, or the store is away for now: look again.
                Ok(TickClaim::Held) | Err(_) => {}
            }
        }
    }

    pub(super) fn skip(&self, tick: u64) {
        self.state.metrics.trigger_skipped(self.index);
        crate::obs::audit(
            "cron.skipped",
            json!({"kind": self.def.kind(), "start_node": self.def.start(), "tick": tick}),
        );
    }

    /// Start a run with `payload` unless one is going; `None` when skipped,
    /// else the run's task (an interval waits for it before the next delay).
    /// With a `lease` (a claimed tick), the lease is renewed while the run
    /// goes and finished after it.
    pub(crate) fn fire(
        &self,
        tick: u64,
        payload: Value,
        lease: Option<Box<dyn TickLease>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let kind = self.def.kind();
        let start = self.def.start();
        let fs = matches!(self.def, TriggerDef::FsWatch { .. });
        let mcp = matches!(self.def, TriggerDef::McpResource { .. });
        if self.busy.swap(true, Ordering::AcqRel) {
            self.skip(tick);
            return None;
        }
        self.state.metrics.trigger_fired(self.index);
        if fs {
            crate::obs::audit(
                "fs_watch.fire",
                json!({
                    "path": payload.get("path"),
                    "fs_event": payload.get("event"),
                    "tick": tick,
                    "start_node": start,
                }),
            );
        } else if mcp {
            crate::obs::audit(
                "mcp_trigger.fire",
                json!({"kind": kind, "uri": payload.get("uri"), "tick": tick, "start_node": start}),
            );
        } else {
            crate::obs::audit(
                "cron.fire",
                json!({"kind": kind, "start_node": start, "tick": tick}),
            );
        }
        let state = Arc::clone(&self.state);
        let busy = Arc::clone(&self.busy);
        let guard = state.track();
        let prefix = match (fs, mcp) {
            (true, _) => "fs_watch",
            (_, true) => "mcp_trigger",
            _ => "cron",
        };
        let run = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let report = state.run(start, Trigger::manual(payload));
            audit_completion(prefix, &report, started.elapsed());
            busy.store(false, Ordering::Release);
        });
        Some(tokio::spawn(async move {
            // The drain waits for the run and for the lease's last word.
            let _guard = guard;
            let mut run = run;
            let Some(lease) = lease else {
                let _ = run.await;
                return;
            };
            loop {
                tokio::select! {
                    _ = &mut run => break,
                    () = tokio::time::sleep(TICK_LEASE / 3) => {
                        // A lost lease means another replica took the tick
                        // over (we looked dead): at least once, said so.
                        if let Ok(false) = lease.renew().await {
                            crate::obs::audit("cron.lease_lost", json!({"start_node": start, "tick": tick}));
                        }
                    }
                }
            }
            let _ = lease.finish().await;
        }))
    }
}

fn audit_completion(prefix: &str, report: &RunReport, took: Duration) {
    let elapsed_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    match &report.outcome {
        Ok(outcome) => crate::obs::audit(
            match prefix {
                "fs_watch" => "fs_watch.completed",
                "mcp_trigger" => "mcp_trigger.completed",
                _ => "cron.completed",
            },
            json!({"status": outcome.status(), "elapsed_ms": elapsed_ms}),
        ),
        Err(e) => crate::obs::audit(
            match prefix {
                "fs_watch" => "fs_watch.error",
                "mcp_trigger" => "mcp_trigger.run_error",
                _ => "cron.error",
            },
            json!({"reason": e.to_string()}),
        ),
    }
}

/// Milliseconds since the UNIX epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
