//! The seccomp filter: a pure table of denied system calls and the classic-BPF program built
//! from it.
//!
//! The filter is a deny list on top of the other layers: it removes kernel attack surface and
//! the syscalls that could undo the mount namespace (see THREATS.md F10, P5, P7). It checks the
//! architecture first, so a 32-bit `int 0x80` syscall or an x32 syscall number cannot reach a
//! different table. Denied calls fail with `EPERM` (`ENOSYS` for `clone3`, so libc falls back
//! to `clone`, whose flags the filter can inspect).
//!
//! References: [seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html),
//! [Documentation/userspace-api/seccomp_filter.rst](https://docs.kernel.org/userspace-api/seccomp_filter.html).

use serde::Serialize;

/// One classic-BPF instruction, in the layout of `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_ERRNO` with an errno.
pub const fn ret_errno(errno: i32) -> u32 {
    0x0005_0000 | (errno as u32 & 0xffff)
}

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Offset of the low 32 bits of argument `i` (little-endian).
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
/// Offset of the high 32 bits of argument `i` (little-endian).
const fn off_arg_hi(i: u32) -> u32 {
    off_arg_lo(i) + 4
}

fn ld(k: u32) -> Insn {
    Insn { code: LD_W_ABS, jt: 0, jf: 0, k }
}
fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code: JEQ_K, jt, jf, k }
}
fn jset(k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code: JSET_K, jt, jf, k }
}
fn jge(k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code: JGE_K, jt, jf, k }
}
fn and(k: u32) -> Insn {
    Insn { code: AND_K, jt: 0, jf: 0, k }
}
fn ja(k: u32) -> Insn {
    Insn { code: JA, jt: 0, jf: 0, k }
}
fn ret(k: u32) -> Insn {
    Insn { code: RET_K, jt: 0, jf: 0, k }
}

/// The architecture the filter is built for: its audit id and syscall numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Arch {
    /// x86-64 (`AUDIT_ARCH_X86_64`); x32 numbers (bit 30) are denied.
    X86_64,
    /// arm64 (`AUDIT_ARCH_AARCH64`).
    Aarch64,
}

impl Arch {
    /// The architecture this crate was compiled for.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => 0xc000_003e,
            Arch::Aarch64 => 0xc000_00b7,
        }
    }
}

/// What the socket-family rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SocketRule {
    /// AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK with `NETLINK_ROUTE` (inside a private network
    /// namespace, where IP only reaches the sandbox's own loopback).
    UnixIpRoute,
    /// AF_UNIX only (`landlock-only` with network off: no network namespace, so IP and netlink
    /// sockets would reach the host's network).
    UnixOnly,
}

/// Which processes the command can name by pid, which decides what the calls that change
/// another process by pid need from the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProcessScope {
    /// A pid namespace of the sandbox's own (`namespaces`): every pid the command can name is
    /// one of the sandbox's processes (its own, or pid 1, stockade's init, whose limits it
    /// could lower only to end its own run), so those calls are left to the kernel.
    PidNamespace,
    /// The host's pids (`landlock-only`), where the user's other processes are reachable and
    /// Landlock does not mediate these calls: `prlimit64` may change only the caller's own
    /// limits (another process's `RLIMIT_CPU` or `RLIMIT_FSIZE` would kill it as surely as a
    /// signal), and the whole-user forms of `setpriority` and `ioprio_set` are refused. Other
    /// per-pid priority and affinity changes stay allowed (runtimes pin and renice their own
    /// threads by thread id) and are reported as a gap.
    HostPids,
}

/// The filter's inputs, derived from the implementation and the network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeccompPlan {
    /// Target architecture.
    pub arch: Arch,
    /// Which socket families may be created.
    pub sockets: SocketRule,
    /// Which processes the command can name by pid.
    pub processes: ProcessScope,
}

/// Syscalls denied with `EPERM`, by name, with their x86-64 and aarch64 numbers (`None` where
/// the architecture has no such call). Names are kept for reports and tests.
pub const DENIED: &[(&str, Option<u32>, Option<u32>)] = &[
    // namespace and mount manipulation (F10, P5)
    ("mount", Some(165), Some(40)),
    ("umount2", Some(166), Some(39)),
    ("pivot_root", Some(155), Some(41)),
    ("chroot", Some(161), Some(51)),
    ("open_tree", Some(428), Some(428)),
    ("move_mount", Some(429), Some(429)),
    ("fsopen", Some(430), Some(430)),
    ("fsconfig", Some(431), Some(431)),
    ("fsmount", Some(432), Some(432)),
    ("fspick", Some(433), Some(433)),
    ("mount_setattr", Some(442), Some(442)),
    ("open_tree_attr", Some(467), Some(467)),
    ("setns", Some(308), Some(268)),
    ("unshare", Some(272), Some(97)),
    // process inspection (F8, P1)
    ("ptrace", Some(101), Some(117)),
    ("process_vm_readv", Some(310), Some(270)),
    ("process_vm_writev", Some(311), Some(271)),
    ("pidfd_getfd", Some(438), Some(438)),
    ("kcmp", Some(312), Some(272)),
    // io_uring bypasses seccomp for the operations it performs
    ("io_uring_setup", Some(425), Some(425)),
    ("io_uring_enter", Some(426), Some(426)),
    ("io_uring_register", Some(427), Some(427)),
    // kernel attack surface (P7)
    ("keyctl", Some(250), Some(219)),
    ("add_key", Some(248), Some(217)),
    ("request_key", Some(249), Some(218)),
    ("bpf", Some(321), Some(280)),
    ("perf_event_open", Some(298), Some(241)),
    ("userfaultfd", Some(323), Some(282)),
    ("kexec_load", Some(246), Some(104)),
    ("kexec_file_load", Some(320), Some(294)),
    ("init_module", Some(175), Some(105)),
    ("finit_module", Some(313), Some(273)),
    ("delete_module", Some(176), Some(106)),
    ("iopl", Some(172), None),
    ("ioperm", Some(173), None),
    ("modify_ldt", Some(154), None),
    ("uselib", Some(134), None),
    ("swapon", Some(167), Some(224)),
    ("swapoff", Some(168), Some(225)),
    ("reboot", Some(169), Some(142)),
    ("syslog", Some(103), Some(116)),
    ("acct", Some(163), Some(89)),
    ("quotactl", Some(179), Some(60)),
    ("quotactl_fd", Some(443), Some(443)),
    ("settimeofday", Some(164), Some(170)),
    ("clock_settime", Some(227), Some(112)),
    ("clock_adjtime", Some(305), Some(266)),
    ("adjtimex", Some(159), Some(171)),
    ("sethostname", Some(170), Some(161)),
    ("setdomainname", Some(171), Some(162)),
    ("open_by_handle_at", Some(304), Some(265)),
    ("name_to_handle_at", Some(303), Some(264)),
    ("fanotify_init", Some(300), Some(262)),
    ("lookup_dcookie", Some(212), Some(18)),
    ("nfsservctl", Some(180), Some(42)),
    ("move_pages", Some(279), Some(239)),
    ("migrate_pages", Some(256), Some(238)),
    ("mbind", Some(237), Some(235)),
    ("set_mempolicy", Some(238), Some(237)),
    ("set_mempolicy_home_node", Some(450), Some(450)),
    ("vhangup", Some(153), Some(58)),
];

const NR_CLONE: (u32, u32) = (56, 220);
const NR_CLONE3: (u32, u32) = (435, 435);
const NR_SOCKET: (u32, u32) = (41, 198);
const NR_SOCKETPAIR: (u32, u32) = (53, 199);
const NR_IOCTL: (u32, u32) = (16, 29);
const NR_PERSONALITY: (u32, u32) = (135, 92);
const NR_PRLIMIT64: (u32, u32) = (302, 261);
const NR_SETRLIMIT: (u32, u32) = (160, 164);
/// `RLIMIT_CORE` (the same number on x86-64 and arm64).
const RLIMIT_CORE: u32 = 4;
const NR_SETPRIORITY: (u32, u32) = (141, 140);
const NR_IOPRIO_SET: (u32, u32) = (251, 30);

/// `setpriority`'s `PRIO_PROCESS` and `PRIO_PGRP` (`PRIO_USER`, 2, reaches every process of a
/// user).
const PRIO_PROCESS: u32 = 0;
const PRIO_PGRP: u32 = 1;
/// `ioprio_set`'s `IOPRIO_WHO_PROCESS` and `IOPRIO_WHO_PGRP` (`IOPRIO_WHO_USER`, 3, reaches
/// every process of a user).
const IOPRIO_WHO_PROCESS: u32 = 1;
const IOPRIO_WHO_PGRP: u32 = 2;

/// Every `CLONE_NEW*` flag: `NEWTIME`, `NEWNS`, `NEWCGROUP`, `NEWUTS`, `NEWIPC`, `NEWUSER`,
/// `NEWPID`, `NEWNET`.
pub const CLONE_NS_FLAGS: u32 =
    0x80 | 0x2_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;
/// `TIOCSTI`: push a byte into the terminal's input queue.
pub const TIOCSTI: u32 = 0x5412;
/// `TIOCLINUX`: virtual-console services, including selection paste.
pub const TIOCLINUX: u32 = 0x541c;

const EPERM: i32 = 1;
const ENOSYS: i32 = 38;
const EAFNOSUPPORT: i32 = 97;
const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const NETLINK_ROUTE: u32 = 0;
/// `SOCK_PACKET`: with `AF_INET`, the kernel creates an `AF_PACKET` socket instead.
const SOCK_PACKET: u32 = 10;
/// The socket type without `SOCK_NONBLOCK` and `SOCK_CLOEXEC` (`SOCK_TYPE_MASK`).
const SOCK_TYPE_MASK: u32 = 0xf;
/// `personality`'s `ADDR_NO_RANDOMIZE` (what `setarch -R` and debuggers set).
const ADDR_NO_RANDOMIZE: u32 = 0x0004_0000;

fn nr(arch: Arch, pair: (u32, u32)) -> u32 {
    match arch {
        Arch::X86_64 => pair.0,
        Arch::Aarch64 => pair.1,
    }
}

/// What the filter does with one syscall number: a block of instructions that always ends in
/// a return (it may load arguments first).
fn actions(plan: &SeccompPlan) -> Vec<(u32, Vec<Insn>)> {
    let arch = plan.arch;
    let mut out = vec![
        // clone3 -> ENOSYS: its flags live in memory the filter cannot read.
        (nr(arch, NR_CLONE3), vec![ret(ret_errno(ENOSYS))]),
        // clone: deny namespace flags (first argument on both architectures).
        (
            nr(arch, NR_CLONE),
            vec![ld(off_arg_lo(0)), jset(CLONE_NS_FLAGS, 0, 1), ret(ret_errno(EPERM)), ret(RET_ALLOW)],
        ),
        // ioctl: TIOCSTI / TIOCLINUX, compared on the low 32 bits only (CVE-2019-10063).
        (
            nr(arch, NR_IOCTL),
            vec![ld(off_arg_lo(1)), jeq(TIOCSTI, 2, 0), jeq(TIOCLINUX, 1, 0), ret(RET_ALLOW), ret(ret_errno(EPERM))],
        ),
        // personality: only the harmless queries and ADDR_NO_RANDOMIZE (the other flags change
        // how the kernel lays out or reports the process: READ_IMPLIES_EXEC, MMAP_PAGE_ZERO,
        // UNAME26 and the rest).
        (
            nr(arch, NR_PERSONALITY),
            vec![
                ld(off_arg_lo(0)),
                jeq(0, 3, 0),
                jeq(ADDR_NO_RANDOMIZE, 2, 0),
                jeq(0xffff_ffff, 1, 0),
                ret(ret_errno(EPERM)),
                ret(RET_ALLOW),
            ],
        ),
    ];
    // socket: family allow list (THREATS.md N8).
    let mut sock = vec![ld(off_arg_lo(0)), jeq(AF_UNIX, 0, 1), ret(RET_ALLOW)];
    if plan.sockets == SocketRule::UnixIpRoute {
        sock.extend([
            // AF_INET, unless its type is SOCK_PACKET, which the kernel turns into AF_PACKET.
            jeq(AF_INET, 0, 5),
            ld(off_arg_lo(1)),
            and(SOCK_TYPE_MASK),
            jeq(SOCK_PACKET, 1, 0),
            ret(RET_ALLOW),
            ret(ret_errno(EAFNOSUPPORT)),
            jeq(AF_INET6, 0, 1),
            ret(RET_ALLOW),
            jeq(AF_NETLINK, 0, 3),
            ld(off_arg_lo(2)),
            jeq(NETLINK_ROUTE, 0, 1),
            ret(RET_ALLOW),
        ]);
    }
    sock.push(ret(ret_errno(EAFNOSUPPORT)));
    out.push((nr(arch, NR_SOCKET), sock));
    // socketpair: AF_UNIX only, in every mode. It creates its sockets as `socket` does (loading
    // the family's module and running its set-up), and only AF_UNIX (and AF_TIPC) implement it.
    out.push((
        nr(arch, NR_SOCKETPAIR),
        vec![ld(off_arg_lo(0)), jeq(AF_UNIX, 0, 1), ret(RET_ALLOW), ret(ret_errno(EAFNOSUPPORT))],
    ));
    // The core-file limit stays where the sandbox set it (see `core_limit_writes`).
    out.push((
        nr(arch, NR_SETRLIMIT),
        vec![ld(off_arg_lo(0)), jeq(RLIMIT_CORE, 0, 1), ret(ret_errno(0)), ret(RET_ALLOW)],
    ));
    let mut prlimit = Vec::new();
    if plan.processes == ProcessScope::HostPids {
        // prlimit64(pid, resource, new, old): on another process (pid not 0, which is how
        // libc's setrlimit names the caller) only to read (new is NULL, both halves of the
        // pointer); on the caller, on to the core-limit rule.
        prlimit.extend([
            ld(off_arg_lo(0)),
            jeq(0, 6, 0),
            ld(off_arg_lo(2)),
            jeq(0, 0, 3),
            ld(off_arg_hi(2)),
            jeq(0, 0, 1),
            ret(RET_ALLOW),
            ret(ret_errno(EPERM)),
        ]);
    }
    prlimit.extend(core_limit_writes());
    prlimit.push(ret(RET_ALLOW));
    out.push((nr(arch, NR_PRLIMIT64), prlimit));
    if plan.processes == ProcessScope::HostPids {
        // setpriority(which, ...) and ioprio_set(which, ...): one process or process group,
        // not every process of a user.
        for (call, one, group) in
            [(NR_SETPRIORITY, PRIO_PROCESS, PRIO_PGRP), (NR_IOPRIO_SET, IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP)]
        {
            out.push((
                nr(arch, call),
                vec![ld(off_arg_lo(0)), jeq(one, 1, 0), jeq(group, 0, 1), ret(RET_ALLOW), ret(ret_errno(EPERM))],
            ));
        }
    }
    for (_, x86, arm) in DENIED {
        let n = match arch {
            Arch::X86_64 => *x86,
            Arch::Aarch64 => *arm,
        };
        if let Some(n) = n {
            out.push((n, vec![ret(ret_errno(EPERM))]));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    out.dedup_by_key(|(n, _)| *n);
    out
}

/// The start of `prlimit64`'s block: a request to set `RLIMIT_CORE` (the new limit's pointer
/// is not NULL) returns 0 without changing anything, unless it also asks for the old limit,
/// which it would not get: that fails with `EPERM`. Falls through to the rest of the block
/// otherwise.
///
/// Why: the sandbox's core limit is 1 byte (see `supervisor::rlimits`), at which the kernel
/// aborts a core dump before it starts a `core_pattern` pipe helper (systemd-coredump, apport),
/// a program that runs as root in the host's namespaces and reads the crashed process's memory
/// and `/proc` entries. At 0 the kernel still hands the whole core to such a helper (the
/// limit only applies to core files). Lowering a soft limit needs no privilege, so without
/// this rule a command could set 0 and crash on purpose. Programs that lower the limit to keep
/// secrets out of core files (`ssh-agent` exits if `setrlimit` fails) get what they asked for;
/// raising it, which the hard limit of 1 would refuse anyway, is the one request not honoured.
fn core_limit_writes() -> Vec<Insn> {
    vec![
        ld(off_arg_lo(1)),
        jeq(RLIMIT_CORE, 0, 10),
        ld(off_arg_lo(2)),
        jeq(0, 0, 2),
        ld(off_arg_hi(2)),
        jeq(0, 6, 0),
        ld(off_arg_lo(3)),
        jeq(0, 0, 2),
        ld(off_arg_hi(3)),
        jeq(0, 1, 0),
        ret(ret_errno(EPERM)),
        ret(ret_errno(0)),
    ]
}

/// Where a patched `ja` goes: one syscall's action block, or the final allow.
#[derive(Clone, Copy)]
enum Target {
    Action(usize),
    Allow,
}

/// The most numbers a leaf of the search compares one by one.
const LEAF: usize = 6;

/// Emits a binary search over `acts[range]` (sorted by number), with the syscall number in the
/// accumulator: every path ends in a return or a jump to an action block or the final allow.
/// Plain denials return from a shared `EPERM` at the end of their leaf.
fn search(acts: &[(u32, Vec<Insn>)], range: std::ops::Range<usize>, out: &mut Vec<(Insn, Option<Target>)>) {
    if range.len() <= LEAF {
        let deny = ret(ret_errno(EPERM));
        let is_deny = |i: usize| acts[i].1 == [deny];
        // Instructions left in this leaf after each number's compare, up to the shared EPERM.
        let size = |i: usize| if is_deny(i) { 1 } else { 2 };
        let total: usize = range.clone().map(size).sum::<usize>() + 1;
        let mut used = 0;
        for i in range {
            used += size(i);
            if is_deny(i) {
                out.push((jeq(acts[i].0, (total - used) as u8, 0), None));
            } else {
                out.push((jeq(acts[i].0, 0, 1), None));
                out.push((ja(0), Some(Target::Action(i))));
            }
        }
        out.push((ja(0), Some(Target::Allow)));
        out.push((deny, None));
        return;
    }
    let mid = range.start + range.len() / 2;
    let mut below = Vec::new();
    search(acts, range.start..mid, &mut below);
    // nr >= acts[mid]: jump over the lower half.
    out.push((jge(acts[mid].0, 0, 1), None));
    out.push((ja(below.len() as u32), None));
    out.extend(below);
    search(acts, mid..range.end, out);
}

/// Builds the filter program. Pure: the same plan always gives the same program.
///
/// After the architecture check, a binary search over the syscall numbers that need anything
/// but "allow" leads to each one's action block. Any syscall costs about a dozen instructions,
/// where a linear list of ~70 comparisons cost ~150 for the common, allowed ones; that also
/// matters when the filter is installed, since the kernel runs it once per syscall number to
/// build its allow cache (about 0.1 ms saved per run).
pub fn build(plan: &SeccompPlan) -> Vec<Insn> {
    let arch = plan.arch;
    let mut p = vec![ld(OFF_ARCH), jeq(arch.audit(), 1, 0), ret(RET_KILL_PROCESS), ld(OFF_NR)];
    if arch == Arch::X86_64 {
        // x32 syscall numbers have bit 30 set and index another table.
        p.push(jset(0x4000_0000, 0, 1));
        p.push(ret(ret_errno(EPERM)));
    }
    let acts = actions(plan);
    let mut tree = Vec::new();
    search(&acts, 0..acts.len(), &mut tree);
    // Layout: tree, then each action block, then the final allow.
    let tree_start = p.len();
    let mut action_at = Vec::with_capacity(acts.len());
    let mut at = tree_start + tree.len();
    let deny = [ret(ret_errno(EPERM))];
    for (_, block) in &acts {
        action_at.push(at);
        // Plain denials are answered inside the search and need no block of their own.
        if block[..] != deny {
            at += block.len();
        }
    }
    let allow_at = at;
    for (i, (mut insn, target)) in tree.into_iter().enumerate() {
        if let Some(t) = target {
            let to = match t {
                Target::Action(k) => action_at[k],
                Target::Allow => allow_at,
            };
            insn.k = (to - (tree_start + i + 1)) as u32;
        }
        p.push(insn);
    }
    for (_, block) in acts {
        if block[..] != deny {
            p.extend(block);
        }
    }
    p.push(ret(RET_ALLOW));
    p
}

/// Runs `prog` on one syscall the way the kernel would, for tests: returns the action.
#[cfg(test)]
pub(crate) fn simulate(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                acc = u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
                pc += 1;
            }
            JEQ_K | JSET_K | JGE_K => {
                let t = match i.code {
                    JEQ_K => acc == i.k,
                    JGE_K => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc += 1 + usize::from(if t { i.jt } else { i.jf });
            }
            JA => pc += 1 + i.k as usize,
            AND_K => {
                acc &= i.k;
                pc += 1;
            }
            RET_K => return i.k,
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: u32 = 0xc000_003e;

    fn prog(sockets: SocketRule) -> Vec<Insn> {
        build(&SeccompPlan { arch: Arch::X86_64, sockets, processes: ProcessScope::PidNamespace })
    }

    /// Every filter that can ship: each socket rule with each process scope.
    fn plans(arch: Arch) -> Vec<SeccompPlan> {
        let mut v = Vec::new();
        for sockets in [SocketRule::UnixIpRoute, SocketRule::UnixOnly] {
            for processes in [ProcessScope::PidNamespace, ProcessScope::HostPids] {
                v.push(SeccompPlan { arch, sockets, processes });
            }
        }
        v
    }

    fn run(p: &[Insn], nr: u32, args: [u64; 6]) -> u32 {
        simulate(p, X86, nr, args)
    }

    #[test]
    fn jumps_stay_in_bounds_and_end_in_ret() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for plan in plans(arch) {
                let p = build(&plan);
                assert!(p.len() < 4096);
                for (i, ins) in p.iter().enumerate() {
                    if ins.code == JEQ_K || ins.code == JSET_K || ins.code == JGE_K {
                        assert!(i + 1 + usize::from(ins.jt.max(ins.jf)) < p.len());
                    }
                    if ins.code == JA {
                        assert!(i + 1 + (ins.k as usize) < p.len());
                    }
                }
                assert_eq!(p.last().map(|i| i.code), Some(RET_K));
            }
        }
    }

    /// The straightforward linear filter over the same actions, which the binary search
    /// replaced: the oracle for the search. (The actions themselves are checked by the named
    /// tests below.)
    fn linear(plan: &SeccompPlan) -> Vec<Insn> {
        let mut p = vec![ld(OFF_ARCH), jeq(plan.arch.audit(), 1, 0), ret(RET_KILL_PROCESS), ld(OFF_NR)];
        if plan.arch == Arch::X86_64 {
            p.push(jset(0x4000_0000, 0, 1));
            p.push(ret(ret_errno(EPERM)));
        }
        for (nr, block) in actions(plan) {
            p.push(jeq(nr, 0, block.len() as u8));
            p.extend(block);
        }
        p.push(ret(RET_ALLOW));
        p
    }

    /// The search filter decides exactly like the linear one, for every syscall number (and
    /// x32 and foreign-arch variants), with arguments that reach every argument check.
    #[test]
    fn search_agrees_with_linear_filter() {
        let args: [[u64; 6]; 17] = [
            [0; 6],
            [0x1000_0000 | 17, 0, 0, 0, 0, 0],
            [0x0100_0000 | 0x0020_0000 | 17, 0x5412, 0, 0, 0, 0],
            [0, 0x541c, 0, 0, 0, 0],
            [0, (0x123u64 << 32) | 0x5412, 0, 0, 0, 0],
            [2, 1, 0, 0, 0, 0],
            [10, 1, 0, 0, 0, 0],
            [16, 3, 0, 0, 0, 0],
            [16, 3, 9, 0, 0, 0],
            [0xffff_ffff, 0, 0, 0, 0, 0],
            [2, 10, 0, 0, 0, 0],
            [2, 10 | 0x80800, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [0x0004_0000, 0, 0, 0, 0, 0],
            [1234, 7, 0, 0, 0, 0],
            [1234, 7, 1 << 32, 0, 0, 0],
            [2, 0, 0, 0, 0, 0],
        ];
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for plan in plans(arch) {
                let (new, old) = (build(&plan), linear(&plan));
                for audit in [arch.audit(), 0x4000_0003] {
                    for base in [0u32, 0x4000_0000] {
                        for nr in 0..1100u32 {
                            for a in args {
                                assert_eq!(
                                    simulate(&new, audit, base | nr, a),
                                    simulate(&old, audit, base | nr, a),
                                    "{plan:?} arch {audit:#x} nr {:#x} args {a:?}",
                                    base | nr
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn foreign_arch_is_killed_and_x32_denied() {
        let p = prog(SocketRule::UnixIpRoute);
        assert_eq!(simulate(&p, 0x4000_0003, 26, [0; 6]), RET_KILL_PROCESS); // i386 ptrace
        assert_eq!(run(&p, 0x4000_0000 | 101, [0; 6]), ret_errno(EPERM));
        assert_eq!(run(&p, 39, [0; 6]), RET_ALLOW); // getpid: control
    }

    #[test]
    fn every_denied_name_is_denied_and_controls_pass() {
        let p = prog(SocketRule::UnixIpRoute);
        for (name, x86, _) in DENIED {
            let n = x86.unwrap_or(u32::MAX);
            if n != u32::MAX {
                assert_eq!(run(&p, n, [0; 6]), ret_errno(EPERM), "{name}");
            }
        }
        for allowed in [
            0u32, 1, 2, 90,  /*chmod*/
            50,  /*listen*/
            157, /*prctl*/
            318, /*getrandom*/
            334, /*rseq*/
        ] {
            assert_eq!(run(&p, allowed, [0; 6]), RET_ALLOW, "{allowed}");
        }
    }

    #[test]
    fn clone_flags_and_clone3() {
        let p = prog(SocketRule::UnixIpRoute);
        assert_eq!(run(&p, 435, [0; 6]), ret_errno(ENOSYS));
        assert_eq!(run(&p, 56, [0x0100_0000 | 0x0020_0000 | 17, 0, 0, 0, 0, 0]), RET_ALLOW); // fork-like
        assert_eq!(run(&p, 56, [0x0001_0f00, 0, 0, 0, 0, 0]), RET_ALLOW); // thread
        assert_eq!(run(&p, 56, [0x1000_0000 | 17, 0, 0, 0, 0, 0]), ret_errno(EPERM)); // NEWUSER
        assert_eq!(run(&p, 56, [0x0002_0000, 0, 0, 0, 0, 0]), ret_errno(EPERM));
        // NEWNS
    }

    #[test]
    fn tiocsti_compared_on_low_32_bits() {
        let p = prog(SocketRule::UnixIpRoute);
        assert_eq!(run(&p, 16, [0, 0x5412, 0, 0, 0, 0]), ret_errno(EPERM));
        assert_eq!(run(&p, 16, [0, (0x123u64 << 32) | 0x5412, 0, 0, 0, 0]), ret_errno(EPERM));
        assert_eq!(run(&p, 16, [0, 0x541c, 0, 0, 0, 0]), ret_errno(EPERM));
        assert_eq!(run(&p, 16, [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW); // TCGETS: control
    }

    #[test]
    fn socket_families() {
        let p = prog(SocketRule::UnixIpRoute);
        assert_eq!(run(&p, 41, [1, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&p, 41, [2, 2, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&p, 41, [10, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&p, 41, [16, 3, 0, 0, 0, 0]), RET_ALLOW); // netlink route
        assert_eq!(run(&p, 41, [16, 3, 9, 0, 0, 0]), ret_errno(EAFNOSUPPORT)); // netlink audit
        assert_eq!(run(&p, 41, [40, 1, 0, 0, 0, 0]), ret_errno(EAFNOSUPPORT)); // vsock
        assert_eq!(run(&p, 41, [17, 3, 0, 0, 0, 0]), ret_errno(EAFNOSUPPORT)); // packet
        let p = prog(SocketRule::UnixOnly);
        assert_eq!(run(&p, 41, [1, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&p, 41, [2, 2, 0, 0, 0, 0]), ret_errno(EAFNOSUPPORT));
        assert_eq!(run(&p, 41, [16, 3, 0, 0, 0, 0]), ret_errno(EAFNOSUPPORT));
    }

    /// `socket(AF_INET, SOCK_PACKET)` makes an AF_PACKET socket, whatever flags are or'd into
    /// the type; other AF_INET types (with or without flags) stay allowed.
    #[test]
    fn inet_sock_packet_is_packet() {
        let p = prog(SocketRule::UnixIpRoute);
        let (nonblock, cloexec) = (0x800u64, 0x80000u64);
        for t in [10, 10 | nonblock, 10 | cloexec, 10 | nonblock | cloexec] {
            assert_eq!(run(&p, 41, [2, t, 0, 0, 0, 0]), ret_errno(EAFNOSUPPORT), "type {t:#x}");
        }
        for t in [1, 2, 3, 5, 1 | nonblock | cloexec, 2 | cloexec, 3 | nonblock] {
            assert_eq!(run(&p, 41, [2, t, 0, 0, 0, 0]), RET_ALLOW, "type {t:#x}");
        }
        assert_eq!(run(&p, 41, [10, 10, 0, 0, 0, 0]), RET_ALLOW); // AF_INET6 has no such alias
    }

    /// `socketpair` builds its sockets as `socket` does (THREATS.md N8): AF_UNIX only, in both
    /// modes, on both architectures.
    #[test]
    fn socketpair_is_unix_only() {
        for (arch, nr) in [(Arch::X86_64, 53), (Arch::Aarch64, 199)] {
            for sockets in [SocketRule::UnixIpRoute, SocketRule::UnixOnly] {
                let p = build(&SeccompPlan { arch, sockets, processes: ProcessScope::HostPids });
                let run = |args| simulate(&p, arch.audit(), nr, args);
                assert_eq!(run([1, 1, 0, 0, 0, 0]), RET_ALLOW, "{arch:?} unix stream");
                assert_eq!(run([1, 2 | 0x80000, 0, 0, 0, 0]), RET_ALLOW, "{arch:?} unix dgram");
                for family in [2u64, 10, 16, 30 /* tipc */, 38 /* alg */, 40 /* vsock */] {
                    assert_eq!(run([family, 1, 0, 0, 0, 0]), ret_errno(EAFNOSUPPORT), "{arch:?} family {family}");
                }
            }
        }
    }

    #[test]
    fn personality_queries_only() {
        let p = prog(SocketRule::UnixIpRoute);
        assert_eq!(run(&p, 135, [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&p, 135, [0, 0, 0, 0, 0, 0]), RET_ALLOW); // PER_LINUX
        assert_eq!(run(&p, 135, [0x0004_0000, 0, 0, 0, 0, 0]), RET_ALLOW); // ADDR_NO_RANDOMIZE
        assert_eq!(run(&p, 135, [0x0040_0000, 0, 0, 0, 0, 0]), ret_errno(EPERM)); // READ_IMPLIES_EXEC
        assert_eq!(run(&p, 135, [0x0002_0000, 0, 0, 0, 0, 0]), ret_errno(EPERM)); // UNAME26
        assert_eq!(run(&p, 135, [0x0010_0000, 0, 0, 0, 0, 0]), ret_errno(EPERM));
        // MMAP_PAGE_ZERO
    }

    /// Under `landlock-only` another process's limits cannot be changed (reading them, and
    /// the caller's own, still works), nor every process of a user reniced; under
    /// `namespaces` the kernel decides, since every pid there is the sandbox's.
    #[test]
    fn other_processes_limits_and_whole_user_priority() {
        for (arch, prlimit, setprio, ioprio) in [(Arch::X86_64, 302, 141, 251), (Arch::Aarch64, 261, 140, 30)] {
            let host = build(&SeccompPlan { arch, sockets: SocketRule::UnixOnly, processes: ProcessScope::HostPids });
            let own =
                build(&SeccompPlan { arch, sockets: SocketRule::UnixOnly, processes: ProcessScope::PidNamespace });
            let run = |p: &[Insn], nr, args| simulate(p, arch.audit(), nr, args);
            let deny = ret_errno(EPERM);
            for (nr, args, under_host) in [
                (prlimit, [0, 7, 0x7fff_0000, 0, 0, 0], RET_ALLOW),       // own limits
                (prlimit, [1234, 7, 0, 0x7fff_0000, 0, 0], RET_ALLOW),    // read another's
                (prlimit, [1234, 7, 0x7fff_0000, 0, 0, 0], deny),         // set another's
                (prlimit, [1234, 7, 0x7f_0000_0000, 0, 0, 0], deny),      // pointer above 4 GiB
                (prlimit, [1 << 32, 7, 0x7fff_0000, 0, 0, 0], RET_ALLOW), // the kernel reads pid 0
                (setprio, [0, 0, 10, 0, 0, 0], RET_ALLOW),                // PRIO_PROCESS, self
                (setprio, [0, 1234, 10, 0, 0, 0], RET_ALLOW),             // one process (a thread)
                (setprio, [1, 0, 10, 0, 0, 0], RET_ALLOW),                // own process group
                (setprio, [2, 0, 10, 0, 0, 0], deny),                     // PRIO_USER
                (setprio, [(1 << 32) | 2, 0, 10, 0, 0, 0], deny),         // high bits ignored
                (ioprio, [1, 0, 0x6000, 0, 0, 0], RET_ALLOW),             // IOPRIO_WHO_PROCESS
                (ioprio, [2, 0, 0x6000, 0, 0, 0], RET_ALLOW),             // IOPRIO_WHO_PGRP
                (ioprio, [3, 0, 0x6000, 0, 0, 0], deny),                  // IOPRIO_WHO_USER
            ] {
                assert_eq!(run(&host, nr, args), under_host, "{arch:?} nr {nr} {args:?}");
                assert_eq!(run(&own, nr, args), RET_ALLOW, "{arch:?} nr {nr} {args:?} in a pid namespace");
            }
        }
    }

    /// Setting the core limit returns 0 without effect in every filter, or `EPERM` when the old
    /// value is asked for too; reading it and setting other limits are left to the kernel.
    #[test]
    fn the_core_limit_cannot_be_changed() {
        for (arch, prlimit, setrlimit) in [(Arch::X86_64, 302, 160), (Arch::Aarch64, 261, 164)] {
            for processes in [ProcessScope::HostPids, ProcessScope::PidNamespace] {
                let p = build(&SeccompPlan { arch, sockets: SocketRule::UnixIpRoute, processes });
                let run = |nr, args| simulate(&p, arch.audit(), nr, args);
                let (ignored, deny) = (ret_errno(0), ret_errno(EPERM));
                let ptr = 0x7fff_0000;
                for (nr, args, want) in [
                    (setrlimit, [4, ptr, 0, 0, 0, 0], ignored), // setrlimit(RLIMIT_CORE)
                    (setrlimit, [(1 << 32) | 4, ptr, 0, 0, 0, 0], ignored), // high bits ignored
                    (setrlimit, [7, ptr, 0, 0, 0, 0], RET_ALLOW), // RLIMIT_NOFILE
                    (prlimit, [0, 4, ptr, 0, 0, 0], ignored),   // set, as libc's setrlimit
                    (prlimit, [0, 4, 0x7f_0000_0000, 0, 0, 0], ignored), // pointer above 4 GiB
                    (prlimit, [0, 4, ptr, ptr, 0, 0], deny),    // set and read back
                    (prlimit, [0, 4, ptr, 0x7f_0000_0000, 0, 0], deny), // the same, high old pointer
                    (prlimit, [0, 4, 0, ptr, 0, 0], RET_ALLOW), // read it
                    (prlimit, [0, 7, ptr, ptr, 0, 0], RET_ALLOW), // another resource
                ] {
                    assert_eq!(run(nr, args), want, "{arch:?} {processes:?} nr {nr} {args:?}");
                }
                // Another process's core limit: refused where the command shares the host's
                // pids, as for any of its limits; in a pid namespace, ignored like its own.
                let other = if processes == ProcessScope::HostPids { deny } else { ignored };
                assert_eq!(run(prlimit, [1234, 4, ptr, 0, 0, 0]), other, "{arch:?} {processes:?}");
                assert_eq!(run(prlimit, [1234, 4, 0, ptr, 0, 0]), RET_ALLOW, "{arch:?} {processes:?}");
            }
        }
    }

    /// The numbers the filter uses are the native libc's.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn process_call_numbers_match_libc() {
        for (ours, theirs) in [
            (NR_PRLIMIT64, libc::SYS_prlimit64),
            (NR_SETRLIMIT, libc::SYS_setrlimit),
            (NR_SETPRIORITY, libc::SYS_setpriority),
            (NR_IOPRIO_SET, libc::SYS_ioprio_set),
        ] {
            assert_eq!(i64::from(ours.0), theirs);
        }
    }
}
