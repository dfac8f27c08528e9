//! Trigger schedules: `cron` expressions (five fields the Unix way, or six/seven with
//! seconds first) and `interval.every` durations. The validator reports what these
//! refuse (`invalid_cron`, `invalid_interval`); the serve lowering bakes what they
//! return, so the binary schedules exactly what was checked.

use std::str::FromStr;
use std::time::Duration;

/// Parse an `interval.every` value: `<u64><unit>`, unit one of `s|sec|secs`,
/// `m|min|mins`, `h|hr|hrs`, `d|day|days`; zero is rejected.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err("expected a whole number followed by a unit, e.g. `5m`".into());
    }
    let n: u64 = num.parse().map_err(|_| format!("`{num}` is too large"))?;
    let unit_secs: u64 = match unit.trim_start() {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hr" | "hrs" => 3600,
        "d" | "day" | "days" => 86_400,
        "" => return Err("missing unit (s, m, h or d)".into()),
        other => {
            return Err(format!(
                "unknown unit `{other}` (expected s|sec|secs, m|min|mins, h|hr|hrs, d|day|days)"
            ));
        }
    };
    if n == 0 {
        return Err("the interval must be greater than zero".into());
    }
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{t}` is too large"))
}

/// Normalise and check a cron schedule. Six or seven fields (seconds first) and
/// `@shorthand` forms are taken as they are, with the `cron` crate's meaning (day of
/// week 1-7 = Sunday-Saturday, as in dialect 1). A classic five-field expression gets
/// a `0` seconds field prepended and its day of week read the Unix way (0-7, Sunday
/// being 0 or 7), rewritten as day names so the `cron` crate cannot shift it by one.
/// Returns the expression to hand to the `cron` crate.
pub fn parse_cron(expr: &str) -> Result<String, String> {
    let t = expr.trim();
    let fields: Vec<&str> = t.split_whitespace().collect();
    let prefixed = !t.starts_with('@') && fields.len() == 5;
    if !t.starts_with('@') && !(5..=7).contains(&fields.len()) {
        return Err(format!(
            "expected 5 fields (`min hour dom mon dow`) or 6-7 fields with seconds first \
             (`sec min hour dom mon dow [year]`); found {}",
            fields.len()
        ));
    }
    let normalized = if prefixed {
        let dow = unix_day_of_week(fields[4])?;
        format!("0 {} {dow}", fields[..4].join(" "))
    } else {
        t.to_string()
    };
    match cron::Schedule::from_str(&normalized) {
        Ok(_) => Ok(normalized),
        Err(e) => Err(cron_error_text(
            &e.to_string(),
            if prefixed { 2 } else { 0 },
        )),
    }
}

/// A five-field expression's day-of-week field (Unix numbering: 0-7, 0 and 7 both
/// Sunday) as the `cron` crate's day names. `*`, `?` and items already written with
/// names pass through; numbers, ranges and steps are expanded to the days they mean.
fn unix_day_of_week(field: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let number = |text: &str| -> Result<usize, String> {
        match text.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(n),
            _ => Err(format!(
                "day of week `{text}` is out of range (0-7 or SUN-SAT; 0 and 7 are Sunday)"
            )),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        if item.bytes().any(|b| b.is_ascii_alphabetic()) {
            items.push(item.to_string());
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<usize>() {
                Ok(n) if n > 0 => (range, n),
                _ => {
                    return Err(format!(
                        "day-of-week step `{step}` must be a positive number"
                    ));
                }
            },
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                // `5/2` means from Friday to the end of the week.
                None if step > 1 => (number(range)?, 6),
                None => {
                    let n = number(range)?;
                    (n, n)
                }
            },
        };
        if from > to {
            return Err(format!("day-of-week range `{range}` runs backwards"));
        }
        let mut days: Vec<usize> = (from..=to).step_by(step).map(|d| d % 7).collect();
        days.sort_unstable();
        days.dedup();
        items.extend(days.into_iter().map(|d| NAMES[d].to_string()));
    }
    Ok(items.join(","))
}

/// The `cron` crate renders errors as `expr\n   ^\nmessage`; keep the message (or the
/// column when there is none), adjusted for any seconds field we prepended.
fn cron_error_text(raw: &str, shift: usize) -> String {
    let lines: Vec<&str> = raw.lines().collect();
    let caret = lines.get(1).and_then(|l| l.find('^'));
    let message = lines
        .iter()
        .skip(2)
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match (message.is_empty(), caret) {
        (false, _) => message,
        (true, Some(col)) => format!("syntax error at column {}", col.saturating_sub(shift) + 1),
        (true, None) => raw.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_normalisation() {
        assert_eq!(parse_cron("30 2 * * *").as_deref(), Ok("0 30 2 * * *"));
        assert_eq!(parse_cron("0 30 2 * * *").as_deref(), Ok("0 30 2 * * *"));
        assert_eq!(
            parse_cron("0 7 * * 1-5").as_deref(),
            Ok("0 0 7 * * MON,TUE,WED,THU,FRI")
        );
        assert_eq!(parse_cron("0 7 * * 0").as_deref(), Ok("0 0 7 * * SUN"));
        assert_eq!(
            parse_cron("0 7 * * 5-7").as_deref(),
            Ok("0 0 7 * * SUN,FRI,SAT")
        );
        assert_eq!(
            parse_cron("0 7 * * */2").as_deref(),
            Ok("0 0 7 * * SUN,TUE,THU,SAT")
        );
        assert_eq!(
            parse_cron("0 7 * * MON-FRI").as_deref(),
            Ok("0 0 7 * * MON-FRI")
        );
        assert!(parse_cron("0 7 * * 8").is_err());
        assert!(parse_cron("0 7 * * 5-1").is_err());
        let err = parse_cron("30 2 * * x").expect_err("invalid");
        assert!(!err.contains('\n'), "{err}");
    }

    /// A five-field "weekdays" schedule fires Monday to Friday, never at the weekend:
    /// the `cron` crate numbers days from 1 = Sunday, Unix cron from 0 = Sunday.
    #[test]
    fn five_field_weekdays_fire_monday_to_friday() {
        use std::str::FromStr as _;
        let expr = parse_cron("0 7 * * 1-5").expect("valid");
        let schedule = cron::Schedule::from_str(&expr).expect("the crate accepts it");
        let days: Vec<String> = schedule
            .upcoming(chrono::Utc)
            .take(10)
            .map(|t| t.format("%a").to_string())
            .collect();
        assert!(
            days.iter().all(|d| !matches!(d.as_str(), "Sat" | "Sun")),
            "{days:?}"
        );
        for day in ["Mon", "Tue", "Wed", "Thu", "Fri"] {
            assert!(days.iter().any(|d| d == day), "{day} missing from {days:?}");
        }
    }
}
