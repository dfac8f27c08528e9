//! The small string grammars inside workflow values: cron and interval schedules,
//! route auth references, `http_request` header placeholders, `[logging]` directives,
//! environment and handler names.
//!
//! Pure functions from text to a parsed value or the reason it is refused. Both the
//! validator (which turns a refusal into a diagnostic) and the lowerings (which bake
//! the parsed value) call these, so what is checked is what is baked. Never reports
//! and never depends on another module of the crate.

pub mod auth_ref;
pub mod header;
pub mod logging;
pub mod names;
pub mod schedule;

pub use auth_ref::{AuthRef, AuthScheme, parse_auth_ref};
pub use header::check_header_placeholders;
pub use logging::{check_format, check_level, check_rotation, check_target};
pub use names::{is_env_name, is_rust_identifier};
pub use schedule::{parse_cron, parse_interval};
