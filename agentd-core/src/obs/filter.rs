//! The log-level directive (`--log-level`, `AGENTD_LOG`, `[logging].level`):
//! `warn`, `info,agentd::engine=debug`, `warn,agentd::audit=info`.
//!
//! The grammar is the comma-separated subset of tracing-subscriber's
//! `EnvFilter` that dialect-1 workflows use: a bare level sets the default,
//! `target=level` sets the level for targets starting with `target` (the
//! longest matching prefix wins, as in `EnvFilter`), and a bare target
//! enables everything under it. Span and field filters (`target[span]=level`)
//! are not supported: EnvFilter's implementation of them needs `regex`, which
//! would cost every binary hundreds of kilobytes. Such a directive is skipped
//! and reported, never silently widened.
//!
//! Owns parsing and matching only; it never decides where output goes.

use std::str::FromStr;

use tracing_core::{Level, LevelFilter};

/// A parsed directive list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// `(target prefix, level)`; a later directive for a target replaces an
    /// earlier one, and the longest matching prefix decides.
    targets: Vec<(String, LevelFilter)>,
}

/// What [`Filter::parse`] returns: the filter and the directives it skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The usable filter.
    pub filter: Filter,
    /// Directives with span or field filters, which are not supported.
    pub skipped: Vec<String>,
}

impl Filter {
    /// Everything at `level` and above, for every target.
    #[must_use]
    pub fn at(level: LevelFilter) -> Self {
        Self {
            default: level,
            targets: Vec::new(),
        }
    }

    /// Parse a directive list. An empty list means `error` (EnvFilter's
    /// default when no directive sets one).
    ///
    /// # Errors
    ///
    /// The first directive that is not `level`, `target=level` or `target`.
    pub fn parse(spec: &str) -> Result<Parsed, String> {
        let mut default = None;
        let mut targets: Vec<(String, LevelFilter)> = Vec::new();
        let mut skipped = Vec::new();
        for raw in spec.split(',') {
            let directive = raw.trim();
            if directive.is_empty() {
                continue;
            }
            if directive.contains(['[', ']', '{', '}']) {
                skipped.push(directive.to_owned());
                continue;
            }
            match directive.split_once('=') {
                Some((target, level)) => {
                    let target = target.trim();
                    let level = parse_level(level.trim()).ok_or_else(|| {
                        format!("`{directive}`: `{}` is not a level", level.trim())
                    })?;
                    if target.is_empty() {
                        return Err(format!("`{directive}`: empty target"));
                    }
                    check_target(target).map_err(|e| format!("`{directive}`: {e}"))?;
                    set(&mut targets, target, level);
                }
                None => match parse_level(directive) {
                    Some(level) => default = Some(level),
                    None => {
                        check_target(directive).map_err(|e| format!("`{directive}`: {e}"))?;
                        set(&mut targets, directive, LevelFilter::TRACE);
                    }
                },
            }
        }
        Ok(Parsed {
            filter: Self {
                default: default.unwrap_or(LevelFilter::ERROR),
                targets,
            },
            skipped,
        })
    }

    /// Whether an event or span of `target` at `level` passes.
    #[must_use]
    pub fn enabled(&self, target: &str, level: &Level) -> bool {
        // The longest matching prefix wins (a short list: no sorting).
        let mut best: Option<&(String, LevelFilter)> = None;
        for t in &self.targets {
            if target.starts_with(t.0.as_str()) && best.is_none_or(|b| t.0.len() > b.0.len()) {
                best = Some(t);
            }
        }
        best.map_or(self.default, |(_, l)| *l) >= *level
    }

    /// The most verbose level any target can reach.
    #[must_use]
    pub fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, LevelFilter::max)
    }
}

/// Set `target`'s level, replacing an earlier directive for it.
fn set(targets: &mut Vec<(String, LevelFilter)>, target: &str, level: LevelFilter) {
    match targets.iter_mut().find(|(t, _)| t == target) {
        Some(slot) => slot.1 = level,
        None => targets.push((target.to_owned(), level)),
    }
}

/// `off`, `error`, `warn`, `info`, `debug`, `trace` (any case) or `0`–`5`.
fn parse_level(text: &str) -> Option<LevelFilter> {
    LevelFilter::from_str(text).ok()
}

/// Targets are Rust paths (`agentd::audit`) or plain words: no spaces and
/// no `=`, which would make a typo like `info warn` mean something else.
fn check_target(target: &str) -> Result<(), String> {
    if target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
    {
        Ok(())
    } else {
        Err(format!("`{target}` is neither a level nor a target"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(spec: &str) -> Filter {
        match Filter::parse(spec) {
            Ok(p) => p.filter,
            Err(e) => panic!("`{spec}` should parse: {e}"),
        }
    }

    #[test]
    fn a_bare_level_sets_the_default_for_every_target() {
        let f = filter("warn");
        assert!(f.enabled("agentd::engine", &Level::WARN));
        assert!(f.enabled("anything", &Level::ERROR));
        assert!(!f.enabled("agentd::engine", &Level::INFO));
        assert_eq!(f.max_level(), LevelFilter::WARN);
        assert_eq!(filter("INFO"), filter("info"));
        assert_eq!(filter("2"), filter("warn"));
    }

    #[test]
    fn target_directives_override_the_default_by_prefix() {
        let f = filter("warn,agentd::audit=info");
        assert!(f.enabled("agentd::audit", &Level::INFO));
        assert!(!f.enabled("agentd::audit", &Level::DEBUG));
        assert!(!f.enabled("agentd::engine", &Level::INFO));
        assert!(f.enabled("agentd::engine", &Level::WARN));
        assert_eq!(f.max_level(), LevelFilter::INFO);
    }

    #[test]
    fn the_longest_matching_prefix_wins_whatever_the_order() {
        let f = filter("agentd::engine=trace,info,agentd=error");
        assert!(f.enabled("agentd::engine", &Level::TRACE));
        assert!(!f.enabled("agentd::audit", &Level::WARN));
        assert!(f.enabled("agentd::audit", &Level::ERROR));
        assert!(f.enabled("hyper", &Level::INFO));
        let g = filter("agentd=error,agentd::engine=trace,info");
        assert_eq!(
            f.enabled("agentd::serve", &Level::WARN),
            g.enabled("agentd::serve", &Level::WARN)
        );
    }

    #[test]
    fn a_bare_target_enables_everything_under_it_and_off_silences() {
        let f = filter("off,agentd::engine");
        assert!(f.enabled("agentd::engine", &Level::TRACE));
        assert!(!f.enabled("agentd::audit", &Level::ERROR));
        assert!(!filter("off").enabled("x", &Level::ERROR));
    }

    #[test]
    fn empty_means_errors_only_and_blank_parts_are_ignored() {
        let f = filter("");
        assert!(f.enabled("x", &Level::ERROR));
        assert!(!f.enabled("x", &Level::WARN));
        assert_eq!(filter(" , debug ,"), filter("debug"));
    }

    #[test]
    fn bad_directives_are_errors_naming_the_directive() {
        for (spec, needle) in [
            ("agentd=loud", "`agentd=loud`: `loud` is not a level"),
            ("=info", "empty target"),
            ("info warn", "`info warn`"),
        ] {
            let err = Filter::parse(spec).err().unwrap_or_default();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn span_filters_are_skipped_and_reported_not_widened() {
        let parsed =
            Filter::parse("warn,agentd[workflow.run]=trace").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.skipped, ["agentd[workflow.run]=trace"]);
        assert!(!parsed.filter.enabled("agentd::engine", &Level::INFO));
    }
}
