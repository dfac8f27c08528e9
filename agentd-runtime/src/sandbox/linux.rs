//! Applying a [`Plan`] to this process: Landlock, then seccomp.
//!
//! Owns the kernel calls of the sandbox and nothing else: which rules to
//! apply is `plan.rs`'s decision. Both walls are inherited across `fork` and
//! `execve`, so every child process (shell commands, MCP servers) runs under
//! them too. The `unsafe` here is the one `seccomp(2)` call, made through
//! libc because seccompiler only installs filters without the `LOG` flag.

#![allow(unsafe_code)]

use std::collections::BTreeMap;

use landlock::{
    ABI, Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus,
    NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
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

/// Install the allow-list; returns how many system calls it allows.
#[cfg(target_arch = "x86_64")]
fn seccomp(plan: &Plan) -> Result<usize, String> {
    let exec = plan.groups.contains(&Group::Exec);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for group in &plan.groups {
        for &nr in super::syscalls::numbers(*group) {
            let conditions = if nr == libc::SYS_clone && !exec {
                // Threads only: a process needs the exec group.
                let thread = libc::CLONE_THREAD as u64;
                let cond = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(thread),
                    thread,
                )
                .map_err(|e| e.to_string())?;
                vec![SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?]
            } else {
                Vec::new()
            };
            rules.insert(nr, conditions);
        }
    }
    let count = rules.len();
    let allow = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| e.to_string())?;
    let allow: BpfProgram = allow
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| e.to_string())?;
    let clone3: BpfProgram = clone3
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    // The allow-list does not allow `seccomp` itself, so it goes on last.
    install(&clone3)?;
    install(&allow)?;
    Ok(count)
}

#[cfg(not(target_arch = "x86_64"))]
fn seccomp(_plan: &Plan) -> Result<usize, String> {
    Err("no system call table for this architecture (x86_64 only)".to_owned())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, TSYNC | LOG)`: every thread of the
/// process at once, and denials recorded by the kernel's audit log.
fn install(program: &BpfProgram) -> Result<(), String> {
    let len = u16::try_from(program.len()).map_err(|_| "seccomp filter too long".to_owned())?;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes no pointers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    let prog = libc::sock_fprog {
        len,
        // seccompiler's `sock_filter` is `#[repr(C)]` with the kernel's
        // layout (u16, u8, u8, u32), the same as libc's.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    let flags = libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_LOG;
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

    #[test]
    fn files_get_only_file_rights() {
        let rights = fs_access(Access::READ.with(Access::WRITE).with(Access::REMOVE), false);
        assert!(rights.contains(AccessFs::ReadFile) && rights.contains(AccessFs::WriteFile));
        assert!(!rights.contains(AccessFs::ReadDir) && !rights.contains(AccessFs::MakeReg));
    }
}
