//! `http_request` header values: literal text with `{{secret:NAME}}` placeholders,
//! the only placeholder the runtime fills in a header (`http_header_bad_placeholder`).

/// Check an `http_request` header value: only `{{secret:NAME}}` placeholders
/// (whitespace-trimmed, non-empty name) are allowed, and every `{{` must be closed.
pub fn check_header_placeholders(value: &str) -> Result<(), String> {
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("unclosed `{{` placeholder".to_string());
        };
        let inner = after[..close].trim();
        let ok = inner
            .strip_prefix("secret:")
            .is_some_and(|name| !name.trim().is_empty());
        if !ok {
            return Err(format!(
                "placeholder `{{{{{inner}}}}}` is not allowed (only `{{{{secret:NAME}}}}`)"
            ));
        }
        rest = &after[close + 2..];
    }
    Ok(())
}
