//! Applying a [`Plan`] to this process: Landlock, then seccomp.
//!
//! Owns the kernel calls of the sandbox and nothing else: which rules to
//! apply is `plan.rs`'s decision. Both walls are inherited across `fork` and
//! `execve`, so every child process (shell commands, MCP servers) runs under
//! them too. The `unsafe` here is `prctl`, `seccomp(2)` and the Landlock ABI
//! probe, made through libc.

#![allow(unsafe_code)]

use landlock::{
    ABI, Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus,
    NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
};

use super::plan::{Access, Group, Plan};

/// The newest Landlock ABI whose rights we ask for (6.10+: IOCTL on devices;
/// TCP from ABI 4). Older kernels get what they support (best effort).
const ABI_FS: ABI = ABI::V5;

/// What one wall did.
#[derive(Debug)]
pub(super) struct Outcome {
    /// `fully enforced (ABI 7)`, `partially enforced ...`, `not applied: ...`.
    pub landlock: String,
    /// Whether every Landlock rule asked for is enforced.
    pub landlock_full: bool,
    /// `Ok` once the filter is installed; the error otherwise.
    pub seccomp: Result<usize, String>,
}

/// Apply `plan` to the whole process.
pub(super) fn apply(plan: &Plan) -> Outcome {
    let (landlock, landlock_full) = match landlock(plan) {
        Ok(status) => status,
        Err(e) => (format!("not applied: {e}"), false),
    };
    let seccomp = seccomp(plan);
    Outcome {
        landlock,
        landlock_full,
        seccomp,
    }
}

/// The Landlock ABI the running kernel reports (0 when it has none).
pub(super) fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // reads no memory and returns the ABI version or -1.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) };
    i32::try_from(v).unwrap_or(0).max(0)
}

fn fs_access(access: Access, dir: bool) -> BitFlags<AccessFs> {
    let mut out = BitFlags::empty();
    if access.contains(Access::READ) {
        out |= AccessFs::ReadFile | AccessFs::ReadDir;
    }
    if access.contains(Access::WRITE) {
        out |= AccessFs::WriteFile | AccessFs::Truncate | AccessFs::MakeReg | AccessFs::MakeDir;
    }
    if access.contains(Access::REMOVE) {
        out |= AccessFs::RemoveFile | AccessFs::RemoveDir | AccessFs::Refer;
    }
    if access.contains(Access::EXEC) {
        out |= AccessFs::Execute | AccessFs::ReadFile;
    }
    if dir {
        out
    } else {
        out & AccessFs::from_file(ABI_FS)
    }
}

fn landlock(plan: &Plan) -> Result<(String, bool), landlock::RulesetError> {
    let mut net: BitFlags<AccessNet> = BitFlags::empty();
    if plan.connect.is_some() {
        net |= AccessNet::ConnectTcp;
    }
    if plan.bind.is_some() {
        net |= AccessNet::BindTcp;
    }
    if plan.fs.is_none() && net.is_empty() {
        return Ok(("not applied: no [policy] (allow-all)".to_owned(), true));
    }
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::BestEffort);
    if plan.fs.is_some() {
        ruleset = ruleset.handle_access(AccessFs::from_all(ABI_FS))?;
    }
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net)?;
    }
    let mut created = ruleset.create()?;
    // A kernel without Landlock (or with it disabled) enforces no rule: the
    // result is "not enforced" with or without them, so do not open and
    // `stat` every path of the plan for nothing (docs/performance.md "Run once,
    // issue 19 round 3").
    let rules = if kernel_abi() > 0 {
        plan.fs.as_deref()
    } else {
        None
    };
    for rule in rules.into_iter().flatten() {
        // Paths were checked when the plan was resolved; one that vanished
        // since grants nothing, which is the safe direction.
        let Ok(fd) = PathFd::new(&*rule.path) else {
            continue;
        };
        let dir = std::fs::metadata(&*rule.path).is_ok_and(|m| m.is_dir());
        created = created.add_rule(PathBeneath::new(fd, fs_access(rule.access, dir)))?;
    }
    for (port, _) in plan.connect.iter().flatten() {
        created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
    }
    for (port, _) in plan.bind.iter().flatten() {
        created = created.add_rule(NetPort::new(*port, AccessNet::BindTcp))?;
    }
    let status = created.restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available { kernel_abi, .. } => kernel_abi.map_or_else(
            || format!("ABI {}", self::kernel_abi()),
            |v| format!("ABI {v}"),
        ),
        LandlockStatus::NotEnabled => "Landlock not enabled at boot".to_owned(),
        LandlockStatus::NotImplemented => "kernel without Landlock".to_owned(),
    };
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => (format!("fully enforced ({abi})"), true),
        RulesetStatus::PartiallyEnforced => (
            format!("partially enforced ({abi}: some rights need a newer kernel)"),
            false,
        ),
        RulesetStatus::NotEnforced => (format!("not enforced ({abi})"), false),
    })
}

/// One classic-BPF instruction (`struct sock_filter`).
type Insn = libc::sock_filter;

const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

// Opcodes and `seccomp_data` offsets (linux/filter.h, linux/seccomp.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16; // args[0], low 32 bits on little-endian x86_64
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_BIT: u32 = 0x4000_0000;
const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO | errno

/// The allow-list as a BPF program: a wrong architecture or an x32 call
/// fails, `clone` without `CLONE_THREAD` fails unless `exec` is in, each
/// allowed number returns ALLOW, anything else `EPERM`.
///
/// Built by hand rather than with seccompiler: its compiler cost every binary
/// ~0.3 M instructions at start (more than a whole hello run, see
/// docs/performance.md) for what is a linear list of comparisons.
#[cfg(target_arch = "x86_64")]
fn allow_list(numbers: &[i64], exec: bool) -> Vec<Insn> {
    let (head, head_len) = allow_list_head(exec);
    let mut prog = Vec::with_capacity(12 + 2 * numbers.len());
    prog.extend_from_slice(&head[..head_len]);
    for &nr in numbers {
        // Numbers are small and non-negative on x86_64; the cast is exact.
        prog.push(jump(JEQ_K, nr as u32, 0, 1));
        prog.push(stmt(RET_K, RET_ALLOW));
    }
    prog.push(stmt(RET_K, DENY));
    prog
}

/// What the allow-list refuses with: `EPERM`.
const DENY: u32 = RET_ERRNO | libc::EPERM as u32;

/// The allow-list's first instructions (architecture, x32, threads-only
/// `clone` unless `exec`) and how many of the eleven are used.
#[cfg(target_arch = "x86_64")]
const fn allow_list_head(exec: bool) -> ([Insn; 11], usize) {
    let head = [
        stmt(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, DENY),
        stmt(LD_W_ABS, NR),
        jump(JGE_K, X32_BIT, 0, 1),
        stmt(RET_K, DENY),
        // Threads only: a new process needs the exec group.
        jump(JEQ_K, libc::SYS_clone as u32, 0, 4),
        stmt(LD_W_ABS, ARG0_LOW),
        jump(JSET_K, libc::CLONE_THREAD as u32, 0, 1),
        stmt(RET_K, RET_ALLOW),
        stmt(RET_K, DENY),
    ];
    (head, if exec { 6 } else { 11 })
}

/// `clone3` answers `ENOSYS` (its flags are behind a pointer), everything
/// else passes to the allow-list.
#[cfg(target_arch = "x86_64")]
const CLONE3_FALLBACK: [Insn; 4] = [
    stmt(LD_W_ABS, NR),
    jump(JEQ_K, libc::SYS_clone3 as u32, 0, 1),
    stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
    stmt(RET_K, RET_ALLOW),
];

/// The sorted, deduplicated system call numbers of `groups`, without
/// `clone` unless `exec` (threads-only `clone` is checked before the list).
#[cfg(target_arch = "x86_64")]
fn sorted_numbers(groups: &[Group], exec: bool) -> Vec<i64> {
    let mut numbers: Vec<i64> = groups
        .iter()
        .flat_map(|g| super::syscalls::numbers(*g).iter().copied())
        .filter(|nr| exec || *nr != libc::SYS_clone)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// Install the allow-list; returns how many system calls it allows.
///
/// The plan's groups follow from the features compiled in, so the program
/// for them is built when the runtime is compiled ([`BAKED`]); only a plan
/// with other groups (none at run time today) builds its program here.
#[cfg(target_arch = "x86_64")]
fn seccomp(plan: &Plan) -> Result<usize, String> {
    let exec = plan.groups.contains(&Group::Exec);
    let built;
    let (program, count): (&[Insn], usize) = if plan.groups == BAKED_GROUPS.as_slice() {
        (BAKED.program(), BAKED.count)
    } else {
        let numbers = sorted_numbers(&plan.groups, exec);
        built = allow_list(&numbers, exec);
        (&built, numbers.len() + usize::from(!exec))
    };
    // The allow-list does not allow `seccomp` itself, so it goes on last.
    // The `clone3` answer is expected (the C library falls back on it), so it
    // is not logged; denials of the allow-list are.
    install(&CLONE3_FALLBACK, false)?;
    install(program, true)?;
    Ok(count)
}

/// The groups the features compiled into this runtime need: the const twin
/// of `Group::for_features(&sandbox::features())` (a test holds them equal).
#[cfg(target_arch = "x86_64")]
const BAKED_GROUPS: BakedGroups = BakedGroups::of_features();

/// Up to five groups in `Group::for_features` order, as a const value.
#[cfg(target_arch = "x86_64")]
struct BakedGroups {
    groups: [Group; 5],
    len: usize,
}

#[cfg(target_arch = "x86_64")]
impl BakedGroups {
    const fn of_features() -> Self {
        let on = [
            true,
            cfg!(feature = "shell") || cfg!(feature = "mcp") || cfg!(feature = "secrets-exec"),
            cfg!(feature = "http")
                || cfg!(feature = "llm")
                || cfg!(feature = "llm-remote")
                || cfg!(feature = "otel")
                || cfg!(feature = "serve")
                || cfg!(feature = "secrets-oauth2")
                || cfg!(feature = "mcp-http"),
            cfg!(feature = "serve"),
            cfg!(feature = "fs-watch"),
        ];
        let all = [
            Group::Base,
            Group::Exec,
            Group::NetClient,
            Group::NetServer,
            Group::Watch,
        ];
        let mut groups = [Group::Base; 5];
        let mut len = 0;
        let mut i = 0;
        while i < all.len() {
            if on[i] {
                groups[len] = all[i];
                len += 1;
            }
            i += 1;
        }
        Self { groups, len }
    }

    fn as_slice(&self) -> &[Group] {
        &self.groups[..self.len]
    }

    const fn contains(&self, group: Group) -> bool {
        let mut i = 0;
        while i < self.len {
            if self.groups[i] as u8 == group as u8 {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// Every group's calls together, the most an allow-list can hold.
#[cfg(target_arch = "x86_64")]
const MAX_NUMBERS: usize = super::syscalls::numbers(Group::Base).len()
    + super::syscalls::numbers(Group::Exec).len()
    + super::syscalls::numbers(Group::NetClient).len()
    + super::syscalls::numbers(Group::NetServer).len()
    + super::syscalls::numbers(Group::Watch).len();

/// The allow-list program of [`BAKED_GROUPS`], computed by the compiler.
#[cfg(target_arch = "x86_64")]
static BAKED: BakedProgram = BakedProgram::bake();

/// An allow-list program in a fixed-size buffer (a const cannot hold a `Vec`).
#[cfg(target_arch = "x86_64")]
struct BakedProgram {
    insns: [Insn; 12 + 2 * MAX_NUMBERS],
    len: usize,
    /// System calls allowed (as [`seccomp`] reports it).
    count: usize,
}

#[cfg(target_arch = "x86_64")]
impl BakedProgram {
    /// [`sorted_numbers`] then [`allow_list`], in const code.
    const fn bake() -> Self {
        let exec = BAKED_GROUPS.contains(Group::Exec);
        let mut numbers = [0_i64; MAX_NUMBERS];
        let mut n = 0;
        let mut g = 0;
        while g < BAKED_GROUPS.len {
            let list = super::syscalls::numbers(BAKED_GROUPS.groups[g]);
            let mut i = 0;
            while i < list.len() {
                let nr = list[i];
                if exec || nr != libc::SYS_clone {
                    // Insertion into the sorted prefix, skipping duplicates.
                    let mut at = 0;
                    while at < n && numbers[at] < nr {
                        at += 1;
                    }
                    if at == n || numbers[at] != nr {
                        let mut j = n;
                        while j > at {
                            numbers[j] = numbers[j - 1];
                            j -= 1;
                        }
                        numbers[at] = nr;
                        n += 1;
                    }
                }
                i += 1;
            }
            g += 1;
        }
        let mut insns = [stmt(0, 0); 12 + 2 * MAX_NUMBERS];
        let mut len = 0;
        let head = allow_list_head(exec);
        let mut i = 0;
        while i < head.1 {
            insns[len] = head.0[i];
            len += 1;
            i += 1;
        }
        let mut i = 0;
        while i < n {
            // Numbers are small and non-negative on x86_64; the cast is exact.
            insns[len] = jump(JEQ_K, numbers[i] as u32, 0, 1);
            insns[len + 1] = stmt(RET_K, RET_ALLOW);
            len += 2;
            i += 1;
        }
        insns[len] = stmt(RET_K, DENY);
        len += 1;
        Self {
            insns,
            len,
            count: n + if exec { 0 } else { 1 },
        }
    }

    fn program(&self) -> &[Insn] {
        &self.insns[..self.len]
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn seccomp(_plan: &Plan) -> Result<usize, String> {
    Err("no system call table for this architecture (x86_64 only)".to_owned())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, TSYNC [| LOG])`: every thread of the
/// process at once; with `log`, denials are recorded by the kernel's audit log.
fn install(program: &[Insn], log: bool) -> Result<(), String> {
    let len = u16::try_from(program.len()).map_err(|_| "seccomp filter too long".to_owned())?;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes no pointers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    let mut flags = libc::SECCOMP_FILTER_FLAG_TSYNC;
    if log {
        flags |= libc::SECCOMP_FILTER_FLAG_LOG;
    }
    // SAFETY: `prog` points at `program`, alive for the call; the kernel copies
    // the filter and keeps no reference to our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &raw const prog,
        )
    };
    match rc {
        0 => Ok(()),
        rc if rc > 0 => Err(format!(
            "thread {rc} has another seccomp filter; cannot synchronise"
        )),
        _ => Err(std::io::Error::last_os_error().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_group_s_numbers_are_its_names_in_order() {
        use super::super::syscalls::{number, numbers};
        let all = [
            Group::Base,
            Group::Exec,
            Group::NetClient,
            Group::NetServer,
            Group::Watch,
        ];
        for g in all {
            let from_names: Vec<Option<i64>> = g.syscalls().iter().map(|n| number(n)).collect();
            let baked: Vec<Option<i64>> = numbers(g).iter().map(|n| Some(*n)).collect();
            assert_eq!(from_names, baked, "group {}", g.name());
        }
    }

    /// Runs the classic-BPF program on one call, as the kernel would.
    #[cfg(target_arch = "x86_64")]
    fn verdict(prog: &[Insn], arch: u32, nr: u32, arg0: u32) -> u32 {
        let mut pc = 0;
        let mut a = 0_u32;
        loop {
            let i = prog[pc];
            match i.code {
                LD_W_ABS => {
                    a = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG0_LOW => arg0,
                        other => panic!("load of offset {other}"),
                    };
                    pc += 1;
                }
                RET_K => return i.k,
                JEQ_K | JGE_K | JSET_K => {
                    let taken = match i.code {
                        JEQ_K => a == i.k,
                        JGE_K => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += 1 + usize::from(if taken { i.jt } else { i.jf });
                }
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_allow_list_allows_listed_calls_threads_only_clone_and_denies_the_rest() {
        let x86 = AUDIT_ARCH_X86_64;
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let nrs = [libc::SYS_read, libc::SYS_write];
        let prog = allow_list(&nrs, false);
        assert_eq!(verdict(&prog, x86, libc::SYS_read as u32, 0), RET_ALLOW);
        assert_eq!(verdict(&prog, x86, libc::SYS_write as u32, 0), RET_ALLOW);
        assert_eq!(verdict(&prog, x86, libc::SYS_socket as u32, 0), eperm);
        let clone = libc::SYS_clone as u32;
        let thread = libc::CLONE_THREAD as u32 | libc::CLONE_VM as u32;
        assert_eq!(verdict(&prog, x86, clone, thread), RET_ALLOW);
        assert_eq!(verdict(&prog, x86, clone, libc::SIGCHLD as u32), eperm);
        assert_eq!(verdict(&prog, 0x4000_0003, libc::SYS_read as u32, 0), eperm);
        assert_eq!(
            verdict(&prog, x86, X32_BIT | libc::SYS_read as u32, 0),
            eperm
        );
        let with_exec = allow_list(&[libc::SYS_read, libc::SYS_clone], true);
        assert_eq!(
            verdict(&with_exec, x86, clone, libc::SIGCHLD as u32),
            RET_ALLOW
        );
        let fallback = CLONE3_FALLBACK;
        assert_eq!(
            verdict(&fallback, x86, libc::SYS_clone3 as u32, 0),
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(verdict(&fallback, x86, libc::SYS_read as u32, 0), RET_ALLOW);
    }

    /// The program baked when the runtime was compiled is the one the plan's
    /// groups would build at run time, for the features compiled in.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_baked_allow_list_is_the_one_built_from_the_plan_s_groups() {
        let groups = Group::for_features(&super::super::features());
        assert_eq!(BAKED_GROUPS.as_slice(), groups.as_slice());
        let exec = groups.contains(&Group::Exec);
        let numbers = sorted_numbers(&groups, exec);
        let built = allow_list(&numbers, exec);
        let same = |a: &Insn, b: &Insn| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k);
        assert_eq!(BAKED.program().len(), built.len());
        assert!(BAKED.program().iter().zip(&built).all(|(a, b)| same(a, b)));
        assert_eq!(BAKED.count, numbers.len() + usize::from(!exec));
    }

    #[test]
    fn files_get_only_file_rights() {
        let rights = fs_access(Access::READ.with(Access::WRITE).with(Access::REMOVE), false);
        assert!(rights.contains(AccessFs::ReadFile) && rights.contains(AccessFs::WriteFile));
        assert!(!rights.contains(AccessFs::ReadDir) && !rights.contains(AccessFs::MakeReg));
    }
}
