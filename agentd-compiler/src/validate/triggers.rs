//! Trigger values beyond their start node: cron schedules, intervals, `fs_watch`
//! events and the MCP server of a resource trigger (`invalid_cron`,
//! `invalid_interval`, `invalid_fs_watch_event`, `unknown_trigger_mcp_server`).

use super::{FS_WATCH_EVENTS, MAX_FS_WATCH_DEBOUNCE_MS};
use super::{Validator, did_you_mean};
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::grammar::{parse_cron, parse_interval};
use crate::loc;
use crate::model::Trigger;

impl<'a> Validator<'a> {
    // -- extra: trigger syntax --------------------------------------------------------

    pub(super) fn check_trigger_syntax(&mut self) {
        let mut servers: Vec<&str> = self
            .doc
            .mcp_servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        servers.sort_unstable();
        servers.dedup();
        for (i, t) in self.doc.triggers.iter().enumerate() {
            match t {
                Trigger::Cron(c) => {
                    if let Err(why) = parse_cron(&c.schedule) {
                        let d = Diagnostic::new(
                            Code::InvalidCron,
                            self.path(),
                            format!("invalid cron schedule `{}`: {why}", c.schedule),
                        )
                        .with_span(self.span(loc!["triggers", i, "schedule"]))
                        .with_label("not a cron expression")
                        .with_help(
                            "write `min hour dom mon dow` (e.g. \"30 2 * * *\") or \
                             `sec min hour dom mon dow [year]` (e.g. \"0 30 2 * * *\")",
                        );
                        self.push(d);
                    }
                }
                Trigger::Interval(iv) => {
                    if let Err(why) = parse_interval(&iv.every) {
                        let d = Diagnostic::new(
                            Code::InvalidInterval,
                            self.path(),
                            format!("invalid interval `{}`: {why}", iv.every),
                        )
                        .with_span(self.span(loc!["triggers", i, "every"]))
                        .with_label("not an interval")
                        .with_help("write a positive whole number and a unit: \"30s\", \"5m\", \"2h\" or \"1d\"");
                        self.push(d);
                    }
                }
                Trigger::FsWatch(f) => {
                    for (k, ev) in f.events.iter().enumerate() {
                        let lower = ev.to_ascii_lowercase();
                        if FS_WATCH_EVENTS.contains(&lower.as_str()) {
                            continue;
                        }
                        let help = did_you_mean(&lower, FS_WATCH_EVENTS).unwrap_or_else(|| {
                            "events are create, modify, remove (or delete) and rename".to_string()
                        });
                        let d = Diagnostic::new(
                            Code::InvalidFsWatchEvent,
                            self.path(),
                            format!("fs_watch trigger: unknown event `{ev}`"),
                        )
                        .with_span(self.span(loc!["triggers", i, "events", k]))
                        .with_label("unknown event kind")
                        .with_help(help);
                        self.push(d);
                    }
                    // A path that keeps changing more often than `debounce_ms`
                    // never settles, so a huge value is a trigger that never fires.
                    if f.debounce_ms > MAX_FS_WATCH_DEBOUNCE_MS {
                        let d = Diagnostic::new(
                            Code::InvalidFsWatchDebounce,
                            self.path(),
                            format!(
                                "fs_watch trigger: debounce_ms = {} is above the limit of {MAX_FS_WATCH_DEBOUNCE_MS} (10 minutes)",
                                f.debounce_ms
                            ),
                        )
                        .with_span(self.span(loc!["triggers", i, "debounce_ms"]))
                        .with_label("too long to ever settle")
                        .with_help("events on one path are coalesced for debounce_ms; use at most 600000 (the default is 250)");
                        self.push(d);
                    }
                }
                Trigger::McpResourceUpdated(m) | Trigger::McpResourceCreated(m) => {
                    if servers.contains(&m.server.as_str()) {
                        continue;
                    }
                    let help =
                        did_you_mean(&m.server, servers.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "declare it: [[mcp_servers]] name = \"{}\", command = [...]",
                                m.server
                            )
                        });
                    let d = Diagnostic::new(
                        Code::UnknownTriggerMcpServer,
                        self.path(),
                        format!(
                            "{} trigger names mcp server `{}`, which is not declared in [[mcp_servers]]",
                            t.type_name(),
                            m.server
                        ),
                    )
                    .with_span(self.span(loc!["triggers", i, "server"]))
                    .with_label("unknown server")
                    .with_note("MCP resource triggers are parsed but never fire in dialect 1")
                    .with_help(help);
                    self.push(d);
                }
                Trigger::InternalEvent(_) => {}
            }
        }
    }
}
