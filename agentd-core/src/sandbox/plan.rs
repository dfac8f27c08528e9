//! The sandbox plan: which paths, ports and system calls a compiled workflow
//! keeps, derived from its policy and the capabilities compiled in.
//!
//! Pure `std`, no I/O except reading `PATH`-style strings it is given: the
//! runtime computes the plan it applies from this module, and the compiler
//! (`agentd check --explain-sandbox`) includes the same file (`#[path]`) so the
//! rules an operator reviews at build time are computed by the same code the
//! binary runs. It must never touch the kernel or the filesystem: applying is
//! `sandbox/linux.rs`'s job, resolving paths the caller's.
//!
//! A glob maps to its longest literal directory prefix (`/data/in/*.json` ->
//! `/data/in`); the in-process policy matcher stays the exact check. See
//! `docs/security.md` for the whole mapping.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `[sandbox] mode`, `--sandbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Refuse to start (exit 5) when a wall cannot be applied.
    Enforce,
    /// Apply what the kernel supports; log what could not be applied.
    BestEffort,
    /// No kernel sandbox.
    Off,
}

impl Mode {
    /// The spelling of `[sandbox] mode` and `--sandbox`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::BestEffort => "best-effort",
            Self::Off => "off",
        }
    }

    /// Parse `enforce`, `best-effort` or `off`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enforce" => Some(Self::Enforce),
            "best-effort" => Some(Self::BestEffort),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// Access rights of one Landlock path rule (a small bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access(pub u8);

impl Access {
    /// Open files for reading, list directories.
    pub const READ: Self = Self(1);
    /// Open files for writing, truncate, create files and directories.
    pub const WRITE: Self = Self(2);
    /// Remove files and directories, rename across directories.
    pub const REMOVE: Self = Self(4);
    /// Execute files (and read them: scripts and the loader need it).
    pub const EXEC: Self = Self(8);

    /// The union of two sets.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every right of `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `read,write,remove,exec` (the rights present, in that order).
    #[must_use]
    pub fn label(self) -> String {
        let names = [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::REMOVE, "remove"),
            (Self::EXEC, "exec"),
        ];
        let parts: Vec<&str> = names
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect();
        parts.join(",")
    }
}

/// One Landlock path rule: `access` on `path` and everything beneath it.
///
/// Path and reason are borrowed when they are `'static` (the baked plan's rules,
/// the runtime's constant ones): a start completes the baked plan without copying
/// its strings (docs/performance.md "Run once, issue 19 round 3").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsRule {
    /// Absolute, lexically normalised.
    pub path: Cow<'static, str>,
    pub access: Access,
    /// Where the rule comes from (`[policy.fs] read "/data/**"`).
    pub why: Cow<'static, str>,
}

impl FsRule {
    /// A rule with its reason.
    #[must_use]
    pub fn new(
        path: impl Into<Cow<'static, str>>,
        access: Access,
        why: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            path: path.into(),
            access,
            why: why.into(),
        }
    }
}

/// A group of system calls the seccomp allow-list takes whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Memory, threads, files, time, polling, signals: every binary.
    Base,
    /// Start child processes (`shell_run`, MCP stdio servers).
    Exec,
    /// Outgoing sockets (`http_request`, LLM backends, OTLP export).
    NetClient,
    /// Listening sockets (serve mode).
    NetServer,
    /// inotify (`fs_watch` triggers).
    Watch,
}

impl Group {
    /// The group's name in printed plans.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Exec => "exec",
            Self::NetClient => "net-client",
            Self::NetServer => "net-server",
            Self::Watch => "watch",
        }
    }

    /// The system calls of the group (x86_64 names).
    #[must_use]
    pub const fn syscalls(self) -> &'static [&'static str] {
        match self {
            Self::Base => BASE,
            Self::Exec => EXEC,
            Self::NetClient => NET_CLIENT,
            Self::NetServer => NET_SERVER,
            Self::Watch => WATCH,
        }
    }

    /// The groups a set of runtime features needs (`shell`, `mcp`, `http`, ...).
    #[must_use]
    pub fn for_features(features: &[&str]) -> Vec<Self> {
        let has = |f: &str| features.contains(&f);
        let mut groups = vec![Self::Base];
        if has("shell") || has("mcp") || has("secrets-exec") {
            groups.push(Self::Exec);
        }
        if [
            "http",
            "llm",
            "llm-remote",
            "otel",
            "serve",
            "secrets-oauth2",
            "mcp-http",
        ]
        .iter()
        .any(|f| has(f))
        {
            groups.push(Self::NetClient);
        }
        if has("serve") {
            groups.push(Self::NetServer);
        }
        if has("fs-watch") {
            groups.push(Self::Watch);
        }
        groups
    }
}

/// What every binary keeps. `clone` is allowed only for threads
/// (`CLONE_THREAD`) unless [`Group::Exec`] is in; `clone3` answers `ENOSYS`
/// (its flags are behind a pointer a filter cannot read) so the C library
/// falls back to `clone`.
#[rustfmt::skip]
const BASE: &[&str] = &[
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "preadv2", "pwritev2", "open", "openat", "openat2", "close", "close_range", "stat",
    "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "lseek", "access",
    "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd", "fcntl",
    "flock", "fsync", "fdatasync", "ftruncate", "fadvise64", "fallocate", "mkdir",
    "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "chmod",
    "fchmod", "fchmodat", "umask", "utimensat", "copy_file_range", "sendfile", "dup",
    "dup2", "dup3", "pipe", "pipe2", "ioctl", "mmap", "munmap", "mprotect", "mremap",
    "madvise", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
    "sigaltstack", "tgkill", "getpid", "gettid", "getppid", "getpgrp", "getuid", "geteuid",
    "getgid", "getegid", "getresuid", "getresgid", "getrandom", "clock_gettime",
    "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "futex",
    "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "sched_yield",
    "sched_getaffinity", "exit", "exit_group", "restart_syscall", "uname", "prlimit64",
    "getrlimit", "setrlimit", "getrusage", "sysinfo", "poll", "ppoll", "select",
    "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
    "epoll_pwait2", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime",
    "timerfd_gettime", "clone", "clone3", "arch_prctl", "prctl", "membarrier",
    // A connected pair of local sockets reaches no network (std's process
    // spawning and tokio's signal pipe use one), and without `socket` and
    // `connect` there is no other socket to send on.
    "socketpair", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
];

#[rustfmt::skip]
const EXEC: &[&str] = &[
    "execve", "execveat", "fork", "vfork", "kill", "setpgid", "getpgid", "setsid", "wait4",
    "waitid",
];

/// `bind` is here too: the C library's resolver binds a netlink socket; TCP
/// binds are still limited to the serve port by Landlock.
#[rustfmt::skip]
const NET_CLIENT: &[&str] = &[
    "socket", "connect", "bind", "getsockname", "getpeername", "setsockopt", "getsockopt",
    "shutdown",
];

const NET_SERVER: &[&str] = &["listen", "accept", "accept4"];

const WATCH: &[&str] = &["inotify_init1", "inotify_add_watch", "inotify_rm_watch"];

/// The lists of a `[policy]` the plan reads.
#[derive(Clone, Debug, Default)]
pub struct PolicyLists<'a> {
    pub fs_read: Vec<&'a str>,
    pub fs_write: Vec<&'a str>,
    pub fs_delete: Vec<&'a str>,
    pub fs_list: Vec<&'a str>,
    pub http_urls: Vec<&'a str>,
    pub shell_commands: Vec<&'a str>,
}

/// Everything a plan is computed from.
#[derive(Clone, Debug, Default)]
pub struct Inputs<'a> {
    /// Working directory relative patterns are joined to.
    pub cwd: &'a str,
    /// The policy in force; `None` is allow-all (no Landlock fs or port rules).
    pub policy: Option<PolicyLists<'a>>,
    /// Runtime features compiled in.
    pub features: Vec<&'a str>,
    /// MCP stdio server commands, already resolved to a path where possible.
    pub mcp_commands: Vec<String>,
    /// URLs the binary connects to besides `[policy.http]` (LLM backends,
    /// OTLP, `--intel-http`), with why.
    pub connect_urls: Vec<(String, String)>,
    /// TCP ports the binary listens on (serve mode's `--bind`).
    pub bind_ports: Vec<u16>,
    /// What the runtime itself needs (state dir, logs, TLS files, ...).
    pub runtime_fs: Vec<FsRule>,
}

/// TCP ports a Landlock rule allows; `None` leaves the operation unrestricted.
pub type Ports = Option<Vec<(u16, String)>>;

/// The rules a binary applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Landlock path rules; `None` when there is no `[policy]` (allow-all).
    pub fs: Option<Vec<FsRule>>,
    /// Landlock TCP connect ports (ABI 4 and later).
    pub connect: Ports,
    /// Landlock TCP bind ports (ABI 4 and later).
    pub bind: Ports,
    /// Why a port restriction was left off.
    pub notes: Vec<String>,
    /// seccomp groups; the allow-list is their union.
    pub groups: Vec<Group>,
}

/// Directories shared libraries and the dynamic loader live in: a child
/// process that is a dynamic executable cannot start without them.
pub const LOADER_PATHS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/etc/ld.so.cache",
];

/// Files the C library's resolver reads for an outbound connection by name.
pub const DNS_PATHS: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
];

/// Compute the plan.
#[must_use]
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let groups = Group::for_features(&inputs.features);
    let mut plan = Plan {
        groups,
        ..Plan::default()
    };
    let Some(policy) = &inputs.policy else {
        plan.notes
            .push("no [policy] (allow-all): no Landlock path or port rules".to_owned());
        return plan;
    };
    let cwd = inputs.cwd;
    let mut rules: Vec<FsRule> = Vec::new();
    let lists = [
        (&policy.fs_read, Access::READ, "read"),
        (&policy.fs_list, Access::READ, "list"),
        (&policy.fs_write, Access::WRITE, "write"),
        (&policy.fs_delete, Access::REMOVE, "delete"),
    ];
    for (patterns, access, key) in lists {
        for p in patterns {
            rules.push(FsRule::new(
                literal_prefix(cwd, p),
                access,
                format!("[policy.fs] {key} \"{p}\""),
            ));
        }
    }
    let exec = plan.groups.contains(&Group::Exec);
    if exec {
        for c in &policy.shell_commands {
            rules.push(FsRule::new(
                literal_prefix(cwd, c),
                Access::EXEC,
                format!("[policy.shell] \"{c}\""),
            ));
        }
        for c in &inputs.mcp_commands {
            rules.push(FsRule::new(
                literal_prefix(cwd, c),
                Access::EXEC,
                format!("[[mcp_servers]] command \"{c}\""),
            ));
        }
        for p in LOADER_PATHS {
            rules.push(FsRule::new(
                *p,
                Access::READ.with(Access::EXEC),
                "dynamic loader and libraries of child processes",
            ));
        }
    }
    let net = plan.groups.contains(&Group::NetClient);
    if net {
        for p in DNS_PATHS {
            rules.push(FsRule::new(*p, Access::READ, "name resolution"));
        }
    }
    rules.extend(inputs.runtime_fs.iter().cloned());
    plan.fs = Some(merge(rules));

    // Ports: every URL must name (or imply) its port, else connect stays open.
    let mut connect = Vec::new();
    let mut open = None;
    let urls = policy
        .http_urls
        .iter()
        .map(|u| ((*u).to_owned(), format!("[policy.http] \"{u}\"")))
        .chain(inputs.connect_urls.iter().cloned());
    for (url, why) in urls {
        match url_port(&url) {
            Some(port) => connect.push((port, why)),
            None => {
                open.get_or_insert(format!("connect: any port ({why} names no fixed port)"));
            }
        }
    }
    if let Some(note) = open {
        plan.notes.push(note);
    } else {
        plan.connect = Some(merge_ports(connect));
    }
    plan.bind = Some(merge_ports(
        inputs
            .bind_ports
            .iter()
            .map(|p| (*p, "serve mode --bind".to_owned()))
            .collect(),
    ));
    plan
}

/// The rules the runtime adds to every plan whatever it is started with
/// (devices, and the time zone files of cron schedules): the first rules of
/// the runtime's own list, so the compiler can bake them with the policy's.
#[must_use]
pub fn constant_runtime_rules(features: &[&str]) -> Vec<FsRule> {
    let mut fs = vec![
        FsRule::new("/dev/null", Access::READ.with(Access::WRITE), "runtime"),
        FsRule::new("/dev/urandom", Access::READ, "runtime"),
        FsRule::new("/dev/random", Access::READ, "runtime"),
    ];
    if features.contains(&"schedule-cron") {
        fs.push(FsRule::new(
            "/etc/localtime",
            Access::READ,
            "cron local time",
        ));
        fs.push(FsRule::new(
            "/usr/share/zoneinfo",
            Access::READ,
            "cron local time",
        ));
    }
    fs
}

/// Whether [`plan`] of these policy lists is the same in every working
/// directory and `PATH`, so `agentd build` may compute it: every path
/// pattern and command is absolute (or `*`), and no `[[mcp_servers]]`
/// command (found on `PATH` at start) sits between the policy's rules and
/// the runtime's.
#[must_use]
pub fn bakeable(policy: &PolicyLists<'_>, features: &[&str]) -> bool {
    let absolute = |p: &&str| *p == "*" || p.starts_with('/');
    !features.contains(&"mcp")
        && [
            &policy.fs_read,
            &policy.fs_write,
            &policy.fs_delete,
            &policy.fs_list,
            &policy.shell_commands,
        ]
        .iter()
        .all(|l| l.iter().all(absolute))
}

/// One rule of a baked plan (`&'static` twin of [`FsRule`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BakedRule {
    pub path: &'static str,
    pub access: Access,
    pub why: &'static str,
}

/// The plan of a binary's baked `[policy]` with its constant rules and
/// URLs and nothing it learns at start, computed by `agentd build` with this
/// same planner (when [`bakeable`]) and compiled into the binary as consts:
/// a start adds what only it knows with [`extend`] instead of planning from
/// the policy again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BakedPlan {
    pub fs: &'static [BakedRule],
    /// `None`: some URL names no fixed port (the reason is in `notes`).
    pub connect: Option<&'static [(u16, &'static str)]>,
    pub notes: &'static [&'static str],
}

impl BakedPlan {
    /// The plan as computed at build time, with the groups of `features`.
    #[must_use]
    pub fn to_plan(&self, features: &[&str]) -> Plan {
        Plan {
            fs: Some(
                self.fs
                    .iter()
                    .map(|r| FsRule::new(r.path, r.access, r.why))
                    .collect(),
            ),
            connect: self.connect.map(|ports| {
                ports
                    .iter()
                    .map(|(port, why)| (*port, (*why).to_owned()))
                    .collect()
            }),
            bind: Some(Vec::new()),
            notes: self.notes.iter().map(|n| (*n).to_owned()).collect(),
            groups: Group::for_features(features),
        }
    }
}

/// A plan computed from a policy with `runtime_fs` and `connect_urls` cut
/// short, completed with the rest: the same plan as [`plan`] of the whole
/// lists (rules are merged in the same order, so reasons join alike; a
/// URL without a fixed port opens `connect` as there). A plan without a
/// `[policy]` has nothing to add.
#[must_use]
pub fn extend(
    mut plan: Plan,
    runtime_fs: &[FsRule],
    connect_urls: &[(String, String)],
    bind_ports: &[u16],
) -> Plan {
    let Some(fs) = plan.fs.take() else {
        return plan;
    };
    plan.fs = Some(if runtime_fs.is_empty() {
        fs
    } else {
        let mut all = fs;
        all.extend(runtime_fs.iter().cloned());
        merge(all)
    });
    if let Some(ports) = plan.connect.take() {
        let mut all = ports;
        let mut open = None;
        for (url, why) in connect_urls {
            match url_port(url) {
                Some(port) => all.push((port, why.clone())),
                None => {
                    open.get_or_insert(format!("connect: any port ({why} names no fixed port)"));
                }
            }
        }
        match open {
            Some(note) => plan.notes.push(note),
            None => plan.connect = Some(merge_ports(all)),
        }
    }
    plan.bind = Some(merge_ports(
        bind_ports
            .iter()
            .map(|p| (*p, "serve mode --bind".to_owned()))
            .collect(),
    ));
    plan
}

/// One rule per path, the union of their rights, sorted by path.
/// A stable sort keeps the rules of one path in the order given, so their
/// reasons join in that order (no map: every start computes a plan).
fn merge(mut rules: Vec<FsRule>) -> Vec<FsRule> {
    rules.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out: Vec<FsRule> = Vec::with_capacity(rules.len());
    for r in rules {
        match out.last_mut() {
            Some(existing) if existing.path == r.path => {
                existing.access = existing.access.with(r.access);
                if !existing.why.contains(&*r.why) {
                    let why = existing.why.to_mut();
                    why.push_str("; ");
                    why.push_str(&r.why);
                }
            }
            _ => out.push(r),
        }
    }
    out
}

fn merge_ports(mut ports: Vec<(u16, String)>) -> Vec<(u16, String)> {
    ports.sort_by_key(|(p, _)| *p);
    let mut out: Vec<(u16, String)> = Vec::with_capacity(ports.len());
    for (p, why) in ports {
        match out.last_mut() {
            Some((port, entry)) if *port == p => {
                if !entry.contains(&why) {
                    if !entry.is_empty() {
                        entry.push_str("; ");
                    }
                    entry.push_str(&why);
                }
            }
            _ => out.push((p, why)),
        }
    }
    out
}

/// The longest literal directory prefix of a path pattern, absolute and
/// normalised: `/data/**` -> `/data`, `/data/in/*.json` -> `/data/in`,
/// `/etc/passwd` -> `/etc/passwd`, `*` -> `/`.
#[must_use]
pub fn literal_prefix(cwd: &str, pattern: &str) -> String {
    if pattern == "*" {
        return "/".to_owned();
    }
    let Some(star) = pattern.find(['*', '?', '[']) else {
        return normalize(cwd, pattern);
    };
    let literal = &pattern[..star];
    // Up to the last `/` before the glob: the directory the glob lives in.
    let dir = match literal.rfind('/') {
        Some(0) => "/",
        Some(i) => &literal[..i],
        None if pattern.starts_with('/') => "/",
        None => ".",
    };
    normalize(cwd, dir)
}

/// Lexical normalisation, the one the policy matcher uses (`policy` re-exports
/// it): join to `cwd`, drop `.` and empty components, `..` pops (never above `/`).
#[must_use]
pub fn normalize(cwd: &str, path: &str) -> String {
    // Most paths are already absolute and normal: a copy, without taking
    // them apart.
    if is_normal_absolute(path) {
        return path.to_owned();
    }
    let base = if path.starts_with('/') { "" } else { cwd };
    // `out` is the stack of kept components, each as `/name`: `..` pops the
    // last one by cutting at its slash (every fs check runs this, so no
    // separate list of parts).
    let mut out = String::with_capacity(base.len() + path.len() + 1);
    for comp in base.split('/').chain(path.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
            }
            other => {
                out.push('/');
                out.push_str(other);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Whether `path` is what [`normalize`] makes of it: absolute, and no empty,
/// `.` or `..` component (so no `//` and no trailing `/`, `/` itself aside).
#[must_use]
pub fn is_normal_absolute(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(|comp| !matches!(comp, "" | "." | "..")))
}

/// The TCP port a URL (or URL pattern) connects to, when it is fixed:
/// an explicit port, else 80 for `http`, 443 for `https`, 4317 for a bare
/// `grpc`-less OTLP host is not guessed. `None` when the authority holds a
/// glob, or the scheme is unknown.
#[must_use]
pub fn url_port(url: &str) -> Option<u16> {
    if url.trim() == "*" {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port_text = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']')
            .and_then(|(_, rest)| rest.strip_prefix(':'))
    } else {
        host_port.rsplit_once(':').map(|(_, p)| p)
    };
    match port_text {
        Some(p) => p.parse::<u16>().ok(),
        None if authority.contains('*') => None,
        None => match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            // Redis' port, plain or TLS (fleet mode's --state-url).
            "redis" | "rediss" => Some(6379),
            _ => None,
        },
    }
}

/// A program name without a `/` looked up in `path_var` (`PATH`'s value),
/// as the child would be started; `exists` says whether a candidate is there.
#[must_use]
pub fn resolve_command(command: &str, path_var: &str, exists: &dyn Fn(&str) -> bool) -> String {
    if command.contains('/') {
        return command.to_owned();
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{command}", d.trim_end_matches('/')))
        .find(|c| exists(c))
        .unwrap_or_else(|| command.to_owned())
}

/// Whether everything `wanted` allows, `applied` already allows: Landlock
/// cannot widen a domain, so a policy reload may only narrow it. `Err`
/// names the first thing that would widen.
///
/// # Errors
///
/// The path or port the new plan needs that the applied one does not allow.
pub fn covers(applied: &Plan, wanted: &Plan) -> Result<(), String> {
    if let Some(applied_fs) = &applied.fs {
        let Some(wanted_fs) = &wanted.fs else {
            return Err(
                "the new policy is allow-all, the sandbox applied at start is not".to_owned(),
            );
        };
        for w in wanted_fs {
            let covered = applied_fs.iter().any(|a| {
                a.access.contains(w.access)
                    && (a.path == "/"
                        || w.path == a.path
                        || w.path
                            .strip_prefix(&*a.path)
                            .is_some_and(|rest| rest.starts_with('/')))
            });
            if !covered {
                return Err(format!(
                    "the sandbox applied at start does not allow {} on `{}` ({}); \
                     Landlock cannot widen, restart the binary to apply it",
                    w.access.label(),
                    w.path,
                    w.why
                ));
            }
        }
    }
    if let Some(applied_ports) = &applied.connect {
        let Some(wanted_ports) = &wanted.connect else {
            return Err(
                "the new policy allows connecting to any port; the sandbox applied at start does not"
                    .to_owned(),
            );
        };
        for (port, why) in wanted_ports {
            if !applied_ports.iter().any(|(p, _)| p == port) {
                return Err(format!(
                    "the sandbox applied at start does not allow TCP connect to port {port} ({why}); \
                     Landlock cannot widen, restart the binary to apply it"
                ));
            }
        }
    }
    Ok(())
}

/// The plan as text: what `--print-sandbox` and `agentd check
/// --explain-sandbox` print (one rule per line, stable order).
#[must_use]
pub fn render(plan: &Plan, mode: Mode) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "sandbox mode: {}", mode.as_str());
    match &plan.fs {
        None => {
            let _ = writeln!(out, "landlock fs: not applied (no [policy]: allow-all)");
        }
        Some(rules) => {
            let _ = writeln!(
                out,
                "landlock fs: {} rule(s); every other path is denied",
                rules.len()
            );
            for r in rules {
                let _ = writeln!(out, "  {:<20} {}  # {}", r.access.label(), r.path, r.why);
            }
        }
    }
    for (label, ports) in [("connect", &plan.connect), ("bind", &plan.bind)] {
        match ports {
            None => {
                let _ = writeln!(out, "landlock tcp {label}: any port");
            }
            Some(list) if list.is_empty() => {
                let _ = writeln!(out, "landlock tcp {label}: no port (ABI 4+)");
            }
            Some(list) => {
                let _ = writeln!(out, "landlock tcp {label}: (ABI 4+)");
                for (p, why) in list {
                    let _ = writeln!(out, "  {p:<20} # {why}");
                }
            }
        }
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let names: Vec<&str> = plan.groups.iter().map(|g| g.name()).collect();
    let calls: Vec<&str> = plan
        .groups
        .iter()
        .flat_map(|g| g.syscalls().iter().copied())
        .collect();
    let _ = writeln!(
        out,
        "seccomp: allow {} system calls ({}); any other fails with EPERM",
        calls.len(),
        names.join(", ")
    );
    let clone = if plan.groups.contains(&Group::Exec) {
        "clone: any flags"
    } else {
        "clone: threads only (CLONE_THREAD), processes fail with EPERM"
    };
    let _ = writeln!(
        out,
        "  {clone}; clone3: ENOSYS (the C library falls back to clone)"
    );
    for g in &plan.groups {
        let _ = writeln!(out, "  {}: {}", g.name(), g.syscalls().join(" "));
    }
    out
}

// `#[path]` so the file is found from this file's directory both here and
// where agentd-compiler includes this planner by path.
#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
