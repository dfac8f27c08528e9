//! `[logging]` values as the runtime (`agentd_runtime::obs`) accepts them: a filter
//! directive of levels and `target=level` pairs (span and field filters are refused:
//! the runtime has no regex engine), `text` / `pretty` / `json`, `stderr` / `stdout`
//! / `file:PATH`, and `never` / `daily` / `hourly` / `minutely`. The validator reports
//! a refusal as `invalid_logging`.

/// The level names a directive accepts (any case), besides `0`–`5`.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn is_level(text: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(text))
        || matches!(text, "0" | "1" | "2" | "3" | "4" | "5")
}

fn is_target(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

/// Check a filter directive such as `warn,agentd::audit=info`.
pub fn check_level(spec: &str) -> Result<(), String> {
    for part in spec.split(',') {
        let d = part.trim();
        if d.is_empty() {
            continue;
        }
        if d.contains(['[', ']', '{', '}']) {
            return Err(format!(
                "`{d}`: span and field filters are not supported; use `target=level`"
            ));
        }
        match d.split_once('=') {
            Some((target, level)) => {
                if !is_target(target.trim()) {
                    return Err(format!("`{d}`: `{}` is not a target", target.trim()));
                }
                if !is_level(level.trim()) {
                    return Err(format!(
                        "`{d}`: `{}` is not a level (off, error, warn, info, debug, trace)",
                        level.trim()
                    ));
                }
            }
            None if is_level(d) || is_target(d) => {}
            None => return Err(format!("`{d}` is neither a level nor a target")),
        }
    }
    Ok(())
}

/// Check a log or audit target.
pub fn check_target(text: &str) -> Result<(), String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("stderr") || t.eq_ignore_ascii_case("stdout") {
        return Ok(());
    }
    match t.strip_prefix("file:") {
        Some(path) if !path.trim().is_empty() => Ok(()),
        Some(_) => Err(format!("`{text}`: `file:` needs a path")),
        None => Err(format!(
            "`{text}` is not a target: expected stderr, stdout or file:PATH"
        )),
    }
}

/// Check a `format`.
pub fn check_format(text: &str) -> Result<(), String> {
    if ["text", "pretty", "json"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(text.trim()))
    {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a format: expected text, pretty or json"
        ))
    }
}

/// Check a `rotation`.
pub fn check_rotation(text: &str) -> Result<(), String> {
    if ["never", "daily", "hourly", "minutely"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(text.trim()))
    {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a rotation: expected never, daily, hourly or minutely"
        ))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_accept_levels_targets_and_pairs() {
        for ok in [
            "warn",
            "INFO",
            "2",
            "warn,agentd::audit=info",
            "agentd::engine",
            " , debug",
            "",
        ] {
            assert_eq!(check_level(ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("agentd=loud", "`loud` is not a level"),
            ("=info", "is not a target"),
            ("info warn", "neither a level nor a target"),
            (
                "agentd[run]=debug",
                "span and field filters are not supported",
            ),
        ] {
            let err = check_level(bad).err().unwrap_or_default();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn targets_formats_and_rotations() {
        assert!(check_target("STDERR").is_ok() && check_target("file:/var/log/a").is_ok());
        assert!(check_target("file:").is_err() && check_target("syslog").is_err());
        assert!(check_format("Pretty").is_ok() && check_format("yaml").is_err());
        assert!(check_rotation("hourly").is_ok() && check_rotation("weekly").is_err());
    }
}
