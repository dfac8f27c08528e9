//! Names written in a workflow that must also be names elsewhere: environment
//! variables and Rust identifiers (custom `rust` node handlers).

/// `[A-Za-z_][A-Za-z0-9_]*`: what an environment variable name looks like.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `[A-Za-z_][A-Za-z0-9_]*`, not `_` alone and not a keyword: a name `agentd!` can bind
/// with `name = path`, and `agentd build --handlers` can call as `agentd_handlers::name`.
pub fn is_rust_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    name != "_"
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && syn::parse_str::<syn::Ident>(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_recognised() {
        assert!(is_env_name("API_TOKEN"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("sk-live-abc"));
        assert!(!is_env_name("a b"));
    }
}
