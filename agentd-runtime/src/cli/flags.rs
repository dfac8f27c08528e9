//! The compiled binary's flags: one table ([`FLAGS`]) that drives parsing,
//! the env twins, conflicts and `--help`, read with lexopt.
//!
//! Owns the command-line grammar only: `--long VALUE`, `--long=VALUE`,
//! `-s VALUE` / `-sVALUE` for the flags with a short form, switches, each
//! flag at most once, no positional arguments. A flag not given on the
//! command line takes its env twin when that is set (switches read the
//! dialect's env boolean). Meaning (defaults, validation of values, which
//! flags need which) stays with the modules that own each flag.
//!
//! clap did this before; it cost every binary ~0.14 MB and most of a
//! one-shot run's start-up instructions (docs/performance.md). Errors and
//! `--help` keep its layout, so scripts and people see what they saw.

use std::ffi::OsString;
use std::fmt::Write as _;

/// One flag: identity, grammar, env twin and help.
#[derive(Debug)]
pub(crate) struct Flag {
    /// The name code asks for (`timeout_secs`).
    pub(crate) id: &'static str,
    /// `--long`, without the dashes.
    pub(crate) long: &'static str,
    pub(crate) short: Option<char>,
    /// Its environment twin.
    pub(crate) env: Option<&'static str>,
    /// The value's name in `--help`; `None` for a switch.
    pub(crate) value: Option<&'static str>,
    pub(crate) help: &'static str,
    /// The `--help` section.
    pub(crate) heading: Heading,
    /// Flags it cannot be given with (on the command line).
    pub(crate) conflicts: &'static [&'static str],
    /// May be given several times (each value kept, see [`Matches::values`]).
    pub(crate) repeat: bool,
}

/// `--help` sections, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Heading {
    Options,
    Logging,
    Serve,
}

impl Heading {
    fn title(self) -> &'static str {
        match self {
            Heading::Options => "Options",
            Heading::Logging => "Logging",
            Heading::Serve => "Serve mode",
        }
    }
}

const fn opt(
    id: &'static str,
    long: &'static str,
    value: &'static str,
    env: Option<&'static str>,
    help: &'static str,
) -> Flag {
    Flag {
        id,
        long,
        short: None,
        env,
        value: Some(value),
        help,
        heading: Heading::Options,
        conflicts: &[],
        repeat: false,
    }
}

const fn switch(
    id: &'static str,
    long: &'static str,
    env: Option<&'static str>,
    help: &'static str,
) -> Flag {
    Flag {
        id,
        long,
        short: None,
        env,
        value: None,
        help,
        heading: Heading::Options,
        conflicts: &[],
        repeat: false,
    }
}

const fn short(flag: Flag, c: char) -> Flag {
    Flag {
        short: Some(c),
        ..flag
    }
}

const fn repeatable(flag: Flag) -> Flag {
    Flag {
        repeat: true,
        ..flag
    }
}

const fn under(flag: Flag, heading: Heading) -> Flag {
    Flag { heading, ..flag }
}

const fn conflicts(flag: Flag, with: &'static [&'static str]) -> Flag {
    Flag {
        conflicts: with,
        ..flag
    }
}

/// Every flag of a compiled binary, in `--help` order.
pub(crate) static FLAGS: &[Flag] = &[
    opt(
        "input",
        "input",
        "JSON",
        None,
        "Trigger input as inline JSON (`-` reads stdin); non-JSON text becomes {\"raw\": text}",
    ),
    short(
        opt(
            "input_file",
            "input-file",
            "PATH",
            Some("AGENTD_INPUT"),
            "Read the trigger input from a file (`-` reads stdin)",
        ),
        'i',
    ),
    short(
        opt(
            "start",
            "start",
            "NAME",
            Some("AGENTD_START"),
            "Start node to run (default: the only manual start, else the only start)",
        ),
        's',
    ),
    switch(
        "dry_run",
        "dry-run",
        Some("AGENTD_DRY_RUN"),
        "Skip side effects; side-effecting nodes return placeholders",
    ),
    opt(
        "timeout_secs",
        "timeout-secs",
        "SECS",
        Some("AGENTD_TIMEOUT_SECS"),
        "Run deadline in seconds, checked between nodes [default: 120]",
    ),
    switch(
        "validate_only",
        "validate-only",
        Some("AGENTD_VALIDATE_ONLY"),
        "Print {\"ok\": true, \"workflow\": ...} and exit (validated at build time)",
    ),
    short(
        switch(
            "version",
            "version",
            None,
            "Print the workflow name and compiler version",
        ),
        'V',
    ),
    switch(
        "provenance",
        "provenance",
        None,
        "Print the build provenance as JSON: source sha256s, signer key, versions, capabilities",
    ),
    opt(
        "sandbox",
        "sandbox",
        "MODE",
        Some("AGENTD_SANDBOX"),
        "Kernel sandbox: enforce, best-effort or off [default: the workflow's [sandbox] mode, else best-effort]",
    ),
    switch(
        "print_sandbox",
        "print-sandbox",
        None,
        "Print the Landlock and seccomp rules this binary would apply with these flags, and exit",
    ),
    opt(
        "policy",
        "policy",
        "FILE",
        Some("AGENTD_POLICY"),
        "A TOML file with a [policy] table that replaces the baked policy (checked at start; \
         only in binaries built with `agentd build --policy-overrides`)",
    ),
    opt(
        "intel_unix",
        "intel-unix",
        "PATH",
        Some("AGENTD_INTEL_UNIX"),
        "Unix socket of the `default` LLM backend (framed JSON-RPC); wins over --intel-http",
    ),
    opt(
        "intel_http",
        "intel-http",
        "URL",
        Some("AGENTD_INTEL_HTTP"),
        "HTTP endpoint of the `default` LLM backend (http://host[:port]/path)",
    ),
    opt(
        "intel_http_bearer_file",
        "intel-http-bearer-file",
        "PATH",
        Some("AGENTD_INTEL_HTTP_BEARER_FILE"),
        "File holding the --intel-http bearer token (else $AGENTD_INTEL_HTTP_BEARER)",
    ),
    repeatable(opt(
        "mcp_url",
        "mcp-url",
        "NAME=URL",
        None,
        "Reach [[mcp_servers]] NAME at URL instead of its `url` (repeatable; also $AGENTD_MCP_URL_<NAME>; still checked against [policy.http])",
    )),
    opt(
        "state_dir",
        "state-dir",
        "DIR",
        Some("AGENTD_STATE_DIR"),
        "Directory for checkpoints (pause_for_approval, --checkpoint-each-node)",
    ),
    opt(
        "resume",
        "resume",
        "RUN_ID",
        Some("AGENTD_RESUME"),
        "Resume the checkpointed run RUN_ID from --state-dir (approves unless --deny)",
    ),
    conflicts(
        switch(
            "approve",
            "approve",
            None,
            "With --resume: approve the paused run and continue it (the default)",
        ),
        &["deny"],
    ),
    switch(
        "deny",
        "deny",
        None,
        "With --resume: deny the paused run; it ends `failed` without running further",
    ),
    switch(
        "checkpoint_each_node",
        "checkpoint-each-node",
        Some("AGENTD_CHECKPOINT_EACH_NODE"),
        "Write a progress checkpoint after every node, for --resume-incomplete after a crash",
    ),
    conflicts(
        switch(
            "resume_incomplete",
            "resume-incomplete",
            None,
            "Resume every interrupted (not paused) checkpoint of this workflow, then exit",
        ),
        &["resume"],
    ),
    switch(
        "list_checkpoints",
        "list-checkpoints",
        None,
        "Print one line per checkpoint in --state-dir and exit",
    ),
    opt(
        "checkpoint_retention_days",
        "checkpoint-retention-days",
        "DAYS",
        Some("AGENTD_CHECKPOINT_RETENTION_DAYS"),
        "At start, delete this workflow's checkpoints older than DAYS (0 keeps all) [default: 30]",
    ),
    under(
        opt(
            "log_level",
            "log-level",
            "LOG_LEVEL",
            Some("AGENTD_LOG"),
            "Log filter: a level or directives like `warn,agentd::engine=debug` [default: warn]",
        ),
        Heading::Logging,
    ),
    under(
        opt(
            "log_format",
            "log-format",
            "LOG_FORMAT",
            Some("AGENTD_LOG_FORMAT"),
            "Log line format: text (alias pretty) or json [default: text]",
        ),
        Heading::Logging,
    ),
    under(
        opt(
            "log_target",
            "log-target",
            "LOG_TARGET",
            Some("AGENTD_LOG_TARGET"),
            "Where logs go: stderr, stdout or file:PATH [default: stderr]",
        ),
        Heading::Logging,
    ),
    under(
        switch(
            "quiet",
            "quiet",
            Some("AGENTD_QUIET"),
            "No log output (the [logging.audit] sink stays on)",
        ),
        Heading::Logging,
    ),
    under(
        opt(
            "mode",
            "mode",
            "MODE",
            Some("AGENTD_MODE"),
            "`once` or `serve` [default: serve when the workflow has HTTP routes or cron/interval/fs_watch triggers]",
        ),
        Heading::Serve,
    ),
    under(
        short(
            opt(
                "bind",
                "bind",
                "ADDR",
                Some("AGENTD_HTTP_BIND"),
                "Listen address, IP:PORT (port 0 picks a free one) [default: 127.0.0.1:8080]",
            ),
            'b',
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "drain_timeout_secs",
            "drain-timeout-secs",
            "SECS",
            Some("AGENTD_DRAIN_TIMEOUT_SECS"),
            "Seconds in-flight requests and runs get to finish after SIGTERM/SIGINT [default: 30]",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "max_connections",
            "max-connections",
            "N",
            Some("AGENTD_MAX_CONNECTIONS"),
            "Open connections allowed at once; one more gets 503 [default: 1024]",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "max_runs",
            "max-runs",
            "N",
            Some("AGENTD_MAX_RUNS"),
            "Workflow runs in flight on the worker pool; one more gets 503 + Retry-After [default: 64]",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "max_preauth_bytes",
            "max-preauth-bytes",
            "BYTES",
            Some("AGENTD_MAX_PREAUTH_BYTES"),
            "Bytes of HMAC-signed request bodies held before they are authenticated, all clients together; past it 503 [default: 67108864]",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "read_timeout_secs",
            "read-timeout-secs",
            "SECS",
            Some("AGENTD_READ_TIMEOUT_SECS"),
            "Seconds to wait for a request's headers (also the keep-alive idle limit) and for its body [default: 30]",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "reload_file",
            "reload-file",
            "PATH",
            Some("AGENTD_RELOAD_FILE"),
            "Touching this file reloads TLS, auth material and the --policy file, like SIGHUP",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "state_url",
            "state-url",
            "URL",
            Some("AGENTD_STATE_URL"),
            "Fleet mode: share idempotency keys, rate limits and trigger ticks with every replica through Redis, redis://HOST:PORT/DB or rediss:// (binaries built with `agentd build --fleet`)",
        ),
        Heading::Serve,
    ),
    under(
        opt(
            "state_password_secret",
            "state-password-secret",
            "NAME",
            Some("AGENTD_STATE_PASSWORD_SECRET"),
            "The secret (a [[secrets]] name or environment variable) holding the --state-url password",
        ),
        Heading::Serve,
    ),
];

/// Where a flag's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Given {
    /// The value (`""` for a switch given on the command line).
    value: String,
    from_env: bool,
}

/// The parsed command line, by flag id.
#[derive(Debug, Default)]
pub struct Matches {
    given: Vec<(&'static str, Given)>,
}

impl Matches {
    fn get(&self, id: &str) -> Option<&Given> {
        self.given.iter().find(|(k, _)| *k == id).map(|(_, g)| g)
    }

    /// The value of `id`, from the command line or else its env twin.
    #[must_use]
    pub fn value(&self, id: &str) -> Option<String> {
        self.get(id).map(|g| g.value.clone())
    }

    /// Every value of a repeatable flag, in command-line order.
    #[must_use]
    pub fn values(&self, id: &str) -> Vec<String> {
        self.given
            .iter()
            .filter(|(k, _)| *k == id)
            .map(|(_, g)| g.value.clone())
            .collect()
    }

    /// Whether `id`'s value came from its env twin.
    #[must_use]
    pub fn from_env(&self, id: &str) -> bool {
        self.get(id).is_some_and(|g| g.from_env)
    }

    /// A switch: given on the command line, or its env twin is the
    /// dialect's true (`1`, `true`, `TRUE`, `True`).
    #[must_use]
    pub fn switch(&self, id: &str) -> bool {
        match self.get(id) {
            Some(Given {
                from_env: false, ..
            }) => true,
            Some(Given {
                value,
                from_env: true,
            }) => dialect_bool(value),
            None => false,
        }
    }
}

/// The dialect's env boolean: true only for `1`, `true`, `TRUE`, `True`.
#[must_use]
pub(crate) fn dialect_bool(value: &str) -> bool {
    matches!(value, "1" | "true" | "TRUE" | "True")
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Run with these flags.
    Run(Matches),
    /// `--help`: print this and exit 0.
    Help(String),
}

/// Parse `args` (the program name first) for the binary called `name`,
/// reading env twins from `env`.
///
/// # Errors
///
/// The rendered usage error (clap's layout), for stderr and exit 2.
pub(crate) fn parse(
    name: &str,
    about: &str,
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Parsed, String> {
    use lexopt::Arg;

    let mut parser = lexopt::Parser::from_iter(args);
    let mut matches = Matches::default();
    let mut on_cli: Vec<&'static str> = Vec::new();
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return Err(usage_error(name, &lexopt_message(&e))),
        };
        let flag = match &arg {
            Arg::Long("help") | Arg::Short('h') => return Ok(Parsed::Help(help(name, about))),
            Arg::Long(long) => FLAGS.iter().find(|f| f.long == *long),
            Arg::Short(c) => FLAGS.iter().find(|f| f.short == Some(*c)),
            Arg::Value(v) => {
                return Err(usage_error(
                    name,
                    &format!("unexpected argument '{}' found", v.to_string_lossy()),
                ));
            }
        };
        let Some(flag) = flag else {
            let shown = match arg {
                Arg::Long(l) => format!("--{l}"),
                Arg::Short(c) => format!("-{c}"),
                Arg::Value(_) => String::new(),
            };
            return Err(usage_error(
                name,
                &format!("unexpected argument '{shown}' found"),
            ));
        };
        if on_cli.contains(&flag.id) && !flag.repeat {
            return Err(usage_error(
                name,
                &format!(
                    "the argument '{}' cannot be used multiple times",
                    display(flag)
                ),
            ));
        }
        let value = match flag.value {
            None => {
                // `--switch=x` is an error, as it was.
                if let Some(v) = parser.optional_value() {
                    return Err(usage_error(
                        name,
                        &format!(
                            "unexpected value '{}' for '--{}' found; no more were expected",
                            v.to_string_lossy(),
                            flag.long
                        ),
                    ));
                }
                String::new()
            }
            Some(_) => match parser.value() {
                Ok(v) => v.into_string().map_err(|v| {
                    usage_error(
                        name,
                        &format!(
                            "invalid UTF-8 was detected in the value '{}' of '{}'",
                            v.to_string_lossy(),
                            display(flag)
                        ),
                    )
                })?,
                Err(_) => {
                    return Err(usage_error(
                        name,
                        &format!(
                            "a value is required for '{}' but none was supplied",
                            display(flag)
                        ),
                    ));
                }
            },
        };
        on_cli.push(flag.id);
        matches.given.push((
            flag.id,
            Given {
                value,
                from_env: false,
            },
        ));
    }
    for flag in FLAGS {
        if let Some(other) = flag
            .conflicts
            .iter()
            .find(|other| on_cli.contains(&flag.id) && on_cli.contains(other))
            .and_then(|other| FLAGS.iter().find(|f| f.id == *other))
        {
            return Err(usage_error(
                name,
                &format!(
                    "the argument '{}' cannot be used with '{}'",
                    display(flag),
                    display(other)
                ),
            ));
        }
    }
    // Env twins fill what the command line left unset; an env value that
    // is not UTF-8 counts as unset.
    for flag in FLAGS {
        let Some(twin) = flag.env else {
            continue;
        };
        if on_cli.contains(&flag.id) {
            continue;
        }
        if let Some(value) = env(twin).and_then(|v| v.into_string().ok()) {
            matches.given.push((
                flag.id,
                Given {
                    value,
                    from_env: true,
                },
            ));
        }
    }
    Ok(Parsed::Run(matches))
}

/// Every env twin ([`Flag::env`]) starts with this; [`EnvTwins::read`] skips
/// the rest of the environment on it.
const TWIN_PREFIX: &[u8] = b"AGENTD_";

/// The env twins' values, read in one pass over the process environment
/// instead of one `getenv` scan per flag (docs/performance.md "Run once, issue
/// 19 round 3"). Same answers as `std::env::var_os` for each twin: the first
/// `NAME=value` entry wins, as glibc's `getenv` has it; entries without `=` are
/// skipped.
#[derive(Debug, Default)]
pub(crate) struct EnvTwins {
    found: Vec<(&'static str, OsString)>,
}

impl EnvTwins {
    /// Read the twins from the process environment in one pass over libc's
    /// `environ`, without std's environment lock.
    ///
    /// # Safety
    ///
    /// No other thread may change the environment during the call: call it
    /// from a process's own start-up ([`super::Process::Owned`]), before the
    /// process starts threads. A CLI run inside a process that is not its own
    /// reads the twins with [`EnvTwins::read_locked`].
    #[cfg(all(unix, not(miri)))]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn read() -> Self {
        use std::os::unix::ffi::OsStrExt as _;

        unsafe extern "C" {
            static environ: *const *const std::ffi::c_char;
        }
        let mut twins = Self::default();
        // SAFETY: `environ` is libc's NULL-terminated array of NUL-terminated
        // strings, and by this function's contract nothing changes the
        // environment while it runs, so neither the array nor its strings
        // change under us.
        let mut entry = unsafe { environ };
        if entry.is_null() {
            return twins;
        }
        loop {
            // SAFETY: `entry` points into the NULL-terminated array (checked
            // non-null above and advanced only past non-null elements).
            let ptr = unsafe { *entry };
            if ptr.is_null() {
                break;
            }
            // SAFETY: every element of `environ` is a NUL-terminated string
            // that outlives this function (see above), so it has at least
            // one byte: its first character or its NUL.
            let first = unsafe { *ptr.cast::<u8>() };
            // Most of the environment is turned away on its first byte,
            // without measuring the entry.
            if Some(&first) == TWIN_PREFIX.first() {
                // SAFETY: as above.
                let bytes = unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes();
                twins.offer(bytes, |value| {
                    std::ffi::OsStr::from_bytes(value).to_os_string()
                });
            }
            // SAFETY: `ptr` was not the terminating NULL, so the next element
            // is still inside the array.
            entry = unsafe { entry.add(1) };
        }
        twins
    }

    /// Read the twins through `std::env::var_os`, one at a time (under std's
    /// environment lock, so safe beside threads that change the environment).
    pub(crate) fn read_locked() -> Self {
        let mut twins = Self::default();
        for name in FLAGS.iter().filter_map(|f| f.env) {
            if let Some(value) = std::env::var_os(name) {
                twins.found.push((name, value));
            }
        }
        twins
    }

    /// Take one `NAME=value` entry if it names a twin not seen yet.
    #[cfg_attr(not(all(unix, not(miri))), allow(dead_code))]
    fn offer(&mut self, entry: &[u8], value: impl FnOnce(&[u8]) -> OsString) {
        // The first byte alone turns away most of the environment.
        if entry.first() != TWIN_PREFIX.first() || !entry.starts_with(TWIN_PREFIX) {
            return;
        }
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            return;
        };
        let name = &entry[..eq];
        let Some(twin) = FLAGS
            .iter()
            .filter_map(|f| f.env)
            .find(|twin| twin.as_bytes() == name)
        else {
            return;
        };
        if self.found.iter().any(|(seen, _)| *seen == twin) {
            return;
        }
        self.found.push((twin, value(&entry[eq + 1..])));
    }

    /// The value of the twin `name`, as `std::env::var_os(name)` would give it.
    pub(crate) fn get(&self, name: &str) -> Option<OsString> {
        self.found
            .iter()
            .find(|(twin, _)| *twin == name)
            .map(|(_, value)| value.clone())
    }
}

/// `--name <VALUE>` or `--name`.
fn display(flag: &Flag) -> String {
    match flag.value {
        Some(v) => format!("--{} <{v}>", flag.long),
        None => format!("--{}", flag.long),
    }
}

fn lexopt_message(e: &lexopt::Error) -> String {
    match e {
        lexopt::Error::UnexpectedValue { option, value } => format!(
            "unexpected value '{}' for '{option}' found; no more were expected",
            value.to_string_lossy()
        ),
        other => other.to_string(),
    }
}

fn usage_error(name: &str, message: &str) -> String {
    format!("error: {message}\n\nUsage: {name} [OPTIONS]\n\nFor more information, try '--help'.\n")
}

/// `--help`: the flags by section, each with its env twin.
#[must_use]
pub(crate) fn help(name: &str, about: &str) -> String {
    let mut out = format!("{about}\n\nUsage: {name} [OPTIONS]\n");
    let left = |f: &Flag| {
        let short = f.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
        match f.value {
            Some(v) => format!("{short}--{} <{v}>", f.long),
            None => format!("{short}--{}", f.long),
        }
    };
    let width = FLAGS.iter().map(|f| left(f).len()).max().unwrap_or(0);
    for heading in [Heading::Options, Heading::Logging, Heading::Serve] {
        let _ = write!(out, "\n{}:\n", heading.title());
        for f in FLAGS.iter().filter(|f| f.heading == heading) {
            let env = f.env.map_or(String::new(), |e| format!(" [env: {e}=]"));
            let _ = writeln!(out, "  {:<width$}  {}{env}", left(f), f.help);
        }
        if heading == Heading::Options {
            let _ = writeln!(out, "  {:<width$}  Print help", "-h, --help");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Matches, String> {
        let argv = std::iter::once("agent")
            .chain(args.iter().copied())
            .map(OsString::from);
        let lookup = |var: &str| {
            env.iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| OsString::from(*v))
        };
        match parse("agent", "about", argv, lookup)? {
            Parsed::Run(m) => Ok(m),
            Parsed::Help(_) => Err("help".to_owned()),
        }
    }

    #[test]
    fn every_env_twin_starts_with_the_prefix_the_one_pass_skips_on() {
        for twin in FLAGS.iter().filter_map(|f| f.env) {
            assert!(twin.as_bytes().starts_with(TWIN_PREFIX), "{twin}");
        }
    }

    #[test]
    fn env_twins_keep_the_first_entry_of_a_name_as_getenv_does() {
        let mut twins = EnvTwins::default();
        for entry in [
            "PATH=/bin",
            "AGENTD_START",
            "AGENTD_STARTX=no",
            "AGENTD_START=first",
            "AGENTD_START=second",
            "AGENTD_NOT_A_TWIN=x",
            "AGENTD_LOG=a=b",
            "AGENTD_QUIET=",
        ] {
            twins.offer(entry.as_bytes(), |v| {
                OsString::from(String::from_utf8_lossy(v).into_owned())
            });
        }
        assert_eq!(twins.get("AGENTD_START"), Some(OsString::from("first")));
        assert_eq!(twins.get("AGENTD_LOG"), Some(OsString::from("a=b")));
        assert_eq!(twins.get("AGENTD_QUIET"), Some(OsString::new()));
        assert_eq!(twins.get("AGENTD_NOT_A_TWIN"), None);
        assert_eq!(twins.get("AGENTD_MODE"), None);
        assert_eq!(twins.get("PATH"), None);
    }

    #[cfg(all(unix, not(miri)))]
    #[test]
    fn env_twins_read_from_the_process_agree_with_var_os() {
        // SAFETY: no test of this crate changes the process environment.
        #[allow(unsafe_code)]
        let twins = unsafe { EnvTwins::read() };
        let locked = EnvTwins::read_locked();
        for twin in FLAGS.iter().filter_map(|f| f.env) {
            assert_eq!(twins.get(twin), std::env::var_os(twin), "{twin}");
            assert_eq!(locked.get(twin), std::env::var_os(twin), "{twin}");
        }
    }

    #[test]
    fn every_value_form_is_read() {
        let m = run(
            &[
                "--start",
                "a",
                "--timeout-secs=5",
                "-i",
                "in.json",
                "-b0.0.0.0:1",
            ],
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.value("start").as_deref(), Some("a"));
        assert_eq!(m.value("timeout_secs").as_deref(), Some("5"));
        assert_eq!(m.value("input_file").as_deref(), Some("in.json"));
        assert_eq!(m.value("bind").as_deref(), Some("0.0.0.0:1"));
        assert!(!m.from_env("start"));
    }

    #[test]
    fn env_twins_fill_what_the_command_line_leaves_unset() {
        let m = run(
            &["--start", "cli"],
            &[
                ("AGENTD_START", "env"),
                ("AGENTD_TIMEOUT_SECS", "9"),
                ("AGENTD_DRY_RUN", "0"),
                ("AGENTD_QUIET", "true"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.value("start").as_deref(), Some("cli"));
        assert!(!m.from_env("start"));
        assert_eq!(m.value("timeout_secs").as_deref(), Some("9"));
        assert!(m.from_env("timeout_secs"));
        assert!(!m.switch("dry_run"), "`0` is false");
        assert!(m.switch("quiet"));
        assert!(!m.switch("validate_only"));
    }

    #[test]
    fn bad_command_lines_are_clap_style_usage_errors() {
        let err = |args: &[&str]| run(args, &[]).err().unwrap_or_default();
        assert!(
            err(&["--bogus"]).starts_with("error: unexpected argument '--bogus' found\n"),
            "{}",
            err(&["--bogus"])
        );
        assert!(err(&["stray"]).contains("unexpected argument 'stray' found"));
        assert!(
            err(&["--start"])
                .contains("a value is required for '--start <NAME>' but none was supplied")
        );
        assert!(
            err(&["--start", "a", "--start", "b"])
                .contains("the argument '--start <NAME>' cannot be used multiple times")
        );
        assert!(
            err(&["--approve", "--deny"])
                .contains("the argument '--approve' cannot be used with '--deny'")
        );
        assert!(err(&["--dry-run=yes"]).contains("unexpected value 'yes' for '--dry-run'"));
        assert!(err(&["--bogus"]).ends_with("For more information, try '--help'.\n"));
    }

    #[test]
    fn help_lists_every_flag_with_its_env_twin_by_section() {
        let Ok(Parsed::Help(text)) = parse(
            "agent",
            "Run it",
            ["agent", "--help"].map(OsString::from),
            |_| None,
        ) else {
            panic!("--help is help");
        };
        assert!(text.starts_with("Run it\n\nUsage: agent [OPTIONS]\n"));
        for f in FLAGS {
            assert!(text.contains(&format!("--{}", f.long)), "{}", f.long);
            if let Some(env) = f.env {
                assert!(text.contains(&format!("[env: {env}=]")), "{env}");
            }
        }
        let (options, logging, serve) = (
            text.find("\nOptions:\n"),
            text.find("\nLogging:\n"),
            text.find("\nServe mode:\n"),
        );
        assert!(options < logging && logging < serve, "{text}");
    }

    #[test]
    fn ids_and_names_are_unique() {
        for (i, a) in FLAGS.iter().enumerate() {
            for b in &FLAGS[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.long, b.long);
                assert!(a.short.is_none() || a.short != b.short, "{}", a.long);
            }
        }
    }
}
