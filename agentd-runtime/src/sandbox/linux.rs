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
    for rule in plan.fs.iter().flatten() {
        // Paths were checked when the plan was resolved; one that vanished
        // since grants nothing, which is the safe direction.
        let Ok(fd) = PathFd::new(&rule.path) else {
            continue;
        };
        let dir = std::fs::metadata(&rule.path).is_ok_and(|m| m.is_dir());
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
    let deny = RET_ERRNO | libc::EPERM as u32;
    let mut prog = Vec::with_capacity(12 + 2 * numbers.len());
    prog.extend([
        stmt(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, deny),
        stmt(LD_W_ABS, NR),
        jump(JGE_K, X32_BIT, 0, 1),
        stmt(RET_K, deny),
    ]);
    if !exec {
        // Threads only: a new process needs the exec group.
        prog.extend([
            jump(JEQ_K, libc::SYS_clone as u32, 0, 4),
            stmt(LD_W_ABS, ARG0_LOW),
            jump(JSET_K, libc::CLONE_THREAD as u32, 0, 1),
            stmt(RET_K, RET_ALLOW),
            stmt(RET_K, deny),
        ]);
    }
    for &nr in numbers {
        // Numbers are small and non-negative on x86_64; the cast is exact.
        prog.push(jump(JEQ_K, nr as u32, 0, 1));
        prog.push(stmt(RET_K, RET_ALLOW));
    }
    prog.push(stmt(RET_K, deny));
    prog
}

/// `clone3` answers `ENOSYS` (its flags are behind a pointer), everything
/// else passes to the allow-list.
#[cfg(target_arch = "x86_64")]
fn clone3_fallback() -> Vec<Insn> {
    vec![
        stmt(LD_W_ABS, NR),
        jump(JEQ_K, libc::SYS_clone3 as u32, 0, 1),
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
        stmt(RET_K, RET_ALLOW),
    ]
}

/// Install the allow-list; returns how many system calls it allows.
#[cfg(target_arch = "x86_64")]
fn seccomp(plan: &Plan) -> Result<usize, String> {
    let exec = plan.groups.contains(&Group::Exec);
    let mut numbers: Vec<i64> = plan
        .groups
        .iter()
        .flat_map(|g| super::syscalls::numbers(*g).iter().copied())
        .filter(|nr| exec || *nr != libc::SYS_clone)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let count = numbers.len() + usize::from(!exec);
    // The allow-list does not allow `seccomp` itself, so it goes on last.
    // The `clone3` answer is expected (the C library falls back on it), so it
    // is not logged; denials of the allow-list are.
    install(&clone3_fallback(), false)?;
    install(&allow_list(&numbers, exec), true)?;
    Ok(count)
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
        let fallback = clone3_fallback();
        assert_eq!(
            verdict(&fallback, x86, libc::SYS_clone3 as u32, 0),
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(verdict(&fallback, x86, libc::SYS_read as u32, 0), RET_ALLOW);
    }

    #[test]
    fn files_get_only_file_rights() {
        let rights = fs_access(Access::READ.with(Access::WRITE).with(Access::REMOVE), false);
        assert!(rights.contains(AccessFs::ReadFile) && rights.contains(AccessFs::WriteFile));
        assert!(!rights.contains(AccessFs::ReadDir) && !rights.contains(AccessFs::MakeReg));
    }
}
