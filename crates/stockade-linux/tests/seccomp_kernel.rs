//! The seccomp filter in the real kernel, not the in-crate interpreter: every call the filter
//! denies is answered by the filter, and each one's control, the same call without the filter,
//! reaches the kernel.
//!
//! Inside a sandbox the command has no capabilities, so the kernel itself answers `EPERM` to
//! many of these calls (`reboot`, `init_module`, `swapon`...), and a probe there cannot tell
//! which layer spoke. Here a forked child keeps root's capabilities: without the filter those
//! calls fail for their bad arguments (`EFAULT`, `EINVAL`, `EBADF`, `ENOSYS`...), with it they
//! get the filter's `EPERM`. The calls use libc's syscall numbers, so a wrong number in the
//! filter's table shows up as a call that was not filtered.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use stockade_linux::prepare::child_bpf;
use stockade_linux::seccomp_rules::{build, Arch, ProcessScope, SeccompPlan, SocketRule, DENIED};

use common::skip;

/// An address nothing maps: a call that reaches the kernel fails on it before touching anything.
const BAD: i64 = 8;

/// One call and what the filter must answer (`None`: the filter lets it through).
struct Call {
    name: &'static str,
    nr: i64,
    args: [i64; 6],
    filtered: Option<i32>,
}

fn call(name: &'static str, nr: i64, args: &[i64]) -> Call {
    let mut a = [0; 6];
    a[..args.len()].copy_from_slice(args);
    Call { name, nr, args: a, filtered: Some(libc::EPERM) }
}

/// Every denied call with arguments that make it fail harmlessly when the kernel runs it as
/// root (checked by the control), plus the socket family rules and an allowed `personality`.
fn calls() -> Vec<Call> {
    use libc::*;
    let mut v = vec![
        call("mount", SYS_mount, &[BAD, BAD, BAD, 0, 0]),
        call("umount2", SYS_umount2, &[BAD, 0]),
        call("pivot_root", SYS_pivot_root, &[BAD, BAD]),
        call("chroot", SYS_chroot, &[BAD]),
        call("open_tree", SYS_open_tree, &[-1, BAD, 0]),
        call("move_mount", SYS_move_mount, &[-1, BAD, -1, BAD, 0]),
        call("fsopen", SYS_fsopen, &[BAD, 0]),
        call("fsconfig", SYS_fsconfig, &[-1, 0, 0, 0, 0]),
        call("fsmount", SYS_fsmount, &[-1, 0, 0]),
        call("fspick", SYS_fspick, &[-1, BAD, 0]),
        call("mount_setattr", SYS_mount_setattr, &[-1, BAD, 0, BAD, 32]),
        call("open_tree_attr", 467, &[-1, BAD, 0, BAD, 32]), // not in every libc yet
        call("setns", SYS_setns, &[-1, 0]),
        call("unshare", SYS_unshare, &[-1]),
        call("ptrace", SYS_ptrace, &[PTRACE_PEEKDATA as i64, 0, 0, 0]),
        call("process_vm_readv", SYS_process_vm_readv, &[0, BAD, 1, BAD, 1, 0]),
        call("process_vm_writev", SYS_process_vm_writev, &[0, BAD, 1, BAD, 1, 0]),
        call("pidfd_getfd", SYS_pidfd_getfd, &[-1, 0, 0]),
        call("kcmp", SYS_kcmp, &[-1, -1, 99, 0, 0]),
        call("io_uring_setup", SYS_io_uring_setup, &[1, BAD]),
        call("io_uring_enter", SYS_io_uring_enter, &[-1, 0, 0, 0, 0, 0]),
        call("io_uring_register", SYS_io_uring_register, &[-1, 0, 0, 0]),
        call("keyctl", SYS_keyctl, &[0xffff, 0, 0, 0, 0]),
        call("add_key", SYS_add_key, &[BAD, BAD, 0, 0, 0]),
        call("request_key", SYS_request_key, &[BAD, BAD, 0, 0]),
        call("bpf", SYS_bpf, &[0, BAD, 8]),
        call("perf_event_open", SYS_perf_event_open, &[BAD, 0, -1, -1, 0]),
        call("userfaultfd", SYS_userfaultfd, &[-1]),
        call("kexec_load", SYS_kexec_load, &[0, 0, 0, 0xdead_0000]),
        call("kexec_file_load", SYS_kexec_file_load, &[-1, -1, 0, 0, 0xdead_0000]),
        call("init_module", SYS_init_module, &[BAD, 0, BAD]),
        call("finit_module", SYS_finit_module, &[-1, BAD, 0]),
        call("delete_module", SYS_delete_module, &[BAD, 0]),
        call("iopl", SYS_iopl, &[99]),
        call("ioperm", SYS_ioperm, &[0xffff_0000, 1, 0]),
        call("modify_ldt", SYS_modify_ldt, &[99, 0, 0]),
        call("uselib", SYS_uselib, &[BAD]),
        call("swapon", SYS_swapon, &[BAD, 0]),
        call("swapoff", SYS_swapoff, &[BAD]),
        call("reboot", SYS_reboot, &[0, 0, 0, 0]),
        call("syslog", SYS_syslog, &[99, 0, 0]),
        call("acct", SYS_acct, &[BAD]),
        call("quotactl", SYS_quotactl, &[0, BAD, 0, 0]),
        call("quotactl_fd", SYS_quotactl_fd, &[-1, 0, 0, 0]),
        call("settimeofday", SYS_settimeofday, &[BAD, 0]),
        call("clock_settime", SYS_clock_settime, &[99, BAD]),
        call("clock_adjtime", SYS_clock_adjtime, &[99, BAD]),
        call("adjtimex", SYS_adjtimex, &[BAD]),
        call("sethostname", SYS_sethostname, &[BAD, 1]),
        call("setdomainname", SYS_setdomainname, &[BAD, 1]),
        call("open_by_handle_at", SYS_open_by_handle_at, &[-1, BAD, 0]),
        call("name_to_handle_at", SYS_name_to_handle_at, &[-1, BAD, BAD, BAD, 0]),
        call("fanotify_init", SYS_fanotify_init, &[0xffff_ffff, 0]),
        call("lookup_dcookie", SYS_lookup_dcookie, &[0, BAD, 0]),
        call("nfsservctl", SYS_nfsservctl, &[0, 0, 0]),
        call("move_pages", SYS_move_pages, &[0, 1, BAD, BAD, BAD, 0]),
        call("migrate_pages", SYS_migrate_pages, &[0, 64, BAD, BAD]),
        call("mbind", SYS_mbind, &[BAD, 4096, 99, 0, 0, 0]),
        call("set_mempolicy", SYS_set_mempolicy, &[99, 0, 0]),
        call("set_mempolicy_home_node", 450, &[BAD, 4096, 0, 1]), // not in every libc yet
        // The child has no controlling terminal (it called `setsid`), so this hangs up nothing.
        call("vhangup", SYS_vhangup, &[]),
    ];
    let family = |name, nr, args: &[i64]| Call { filtered: Some(EAFNOSUPPORT), ..call(name, nr, args) };
    v.push(family("socketpair(AF_INET)", SYS_socketpair, &[AF_INET as i64, SOCK_STREAM as i64, 0, BAD]));
    v.push(family("socketpair(AF_VSOCK)", SYS_socketpair, &[AF_VSOCK as i64, SOCK_STREAM as i64, 0, BAD]));
    v.push(family("socket(AF_INET, SOCK_PACKET)", SYS_socket, &[AF_INET as i64, 10 | SOCK_CLOEXEC as i64, 0]));
    v.push(family("socket(AF_VSOCK)", SYS_socket, &[AF_VSOCK as i64, SOCK_STREAM as i64, 0]));
    // The calls the filter looks into: on a bad fd the kernel answers EBADF, the filter EPERM,
    // also for a command number with high bits set (the kernel reads 32 bits of it).
    v.push(call("ioctl(TIOCSTI)", SYS_ioctl, &[-1, 0x5412, BAD]));
    v.push(call("ioctl(TIOCSTI | 1 << 32)", SYS_ioctl, &[-1, (1 << 32) | 0x5412, BAD]));
    v.push(call("ioctl(TIOCLINUX)", SYS_ioctl, &[-1, 0x541c, BAD]));
    v.push(Call { filtered: None, ..call("ioctl(TCGETS)", SYS_ioctl, &[-1, 0x5401, BAD]) });
    // Namespace flags with CLONE_FS or CLONE_THREAD, which the kernel refuses (EINVAL), so no
    // child is made without the filter either.
    v.push(call("clone(CLONE_NEWUSER | CLONE_FS)", SYS_clone, &[0x1000_0000 | 0x200, 0, 0, 0, 0]));
    v.push(call("clone(CLONE_NEWNS | CLONE_FS)", SYS_clone, &[0x2_0000 | 0x200, 0, 0, 0, 0]));
    v.push(call(
        "clone(CLONE_NEWPID | CLONE_THREAD)",
        SYS_clone,
        &[0x2000_0000 | 0x1_0000 | 0x800 | 0x100, 0, 0, 0, 0],
    ));
    v.push(Call { filtered: Some(ENOSYS), ..call("clone3", SYS_clone3, &[0, 0]) });
    v.push(call("personality(READ_IMPLIES_EXEC)", SYS_personality, &[0x0040_0000]));
    v.push(Call { filtered: None, ..call("personality(ADDR_NO_RANDOMIZE)", SYS_personality, &[0x0004_0000]) });
    v.push(Call {
        filtered: None,
        ..call("socketpair(AF_UNIX)", SYS_socketpair, &[AF_UNIX as i64, SOCK_STREAM as i64, 0, BAD])
    });
    v
}

/// The core-file limit, which every filter keeps as the sandbox set it, and the calls that
/// change another process by pid, filtered only where the command shares the
/// host's pids (`landlock-only`). A pid and a uid that do not exist keep the control harmless:
/// without the filter the kernel answers `EFAULT` or `ESRCH`.
fn process_calls(processes: ProcessScope) -> Vec<Call> {
    use libc::*;
    const NO_PID: i64 = 0x3fff_fff0;
    let f = |c: Call| if processes == ProcessScope::HostPids { c } else { Call { filtered: None, ..c } };
    vec![
        f(call("prlimit64(another pid, set)", SYS_prlimit64, &[NO_PID, RLIMIT_CPU as i64, BAD, 0])),
        f(call("setpriority(PRIO_USER)", SYS_setpriority, &[PRIO_USER as i64, NO_PID, 10])),
        f(call("ioprio_set(IOPRIO_WHO_USER)", SYS_ioprio_set, &[3, NO_PID, (2 << 13) | 4])),
        Call { filtered: None, ..call("prlimit64(own, read)", SYS_prlimit64, &[0, RLIMIT_CPU as i64, 0, BAD]) },
        Call {
            filtered: None,
            ..call("prlimit64(another pid, read)", SYS_prlimit64, &[NO_PID, RLIMIT_CPU as i64, 0, BAD])
        },
        // The core limit stays as the sandbox set it, in every filter: setting it "succeeds"
        // without a change, unless the old value is asked for too. Reading it reaches the kernel.
        Call { filtered: Some(0), ..call("setrlimit(RLIMIT_CORE)", SYS_setrlimit, &[RLIMIT_CORE as i64, BAD]) },
        Call { filtered: Some(0), ..call("prlimit64(own core, set)", SYS_prlimit64, &[0, RLIMIT_CORE as i64, BAD, 0]) },
        call("prlimit64(own core, set and read)", SYS_prlimit64, &[0, RLIMIT_CORE as i64, BAD, BAD]),
        Call { filtered: None, ..call("prlimit64(own core, read)", SYS_prlimit64, &[0, RLIMIT_CORE as i64, 0, BAD]) },
        Call { filtered: None, ..call("setrlimit(RLIMIT_CPU)", SYS_setrlimit, &[RLIMIT_CPU as i64, BAD]) },
        Call {
            filtered: None,
            ..call("setpriority(PRIO_PROCESS)", SYS_setpriority, &[PRIO_PROCESS as i64, NO_PID, 10])
        },
    ]
}

/// Makes `calls` in a forked child, under `prog` if given, and returns each call's errno (0
/// when it succeeded).
fn errnos(calls: &[Call], prog: Option<&[libc::sock_filter]>) -> Vec<i32> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int buffer.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let mut out = vec![0i32; calls.len()];
    // Everything the child needs is allocated before the fork; it only makes system calls.
    let fprog = prog.map(|p| libc::sock_fprog { len: p.len() as u16, filter: p.as_ptr() as *mut libc::sock_filter });
    // SAFETY: the child below makes only async-signal-safe calls and ends in `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain system calls on values prepared before the fork; `out` is this child's
        // copy of the parent's buffer.
        unsafe {
            libc::setsid();
            if let Some(f) = &fprog {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, f as *const _ as usize, 0, 0) != 0
                {
                    libc::_exit(2);
                }
            }
            for (i, c) in calls.iter().enumerate() {
                let a = c.args;
                let r = libc::syscall(c.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                out[i] = if r < 0 { *libc::__errno_location() } else { 0 };
            }
            let bytes = std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), out.len() * 4);
            let ok = libc::write(fds[1], bytes.as_ptr().cast(), bytes.len()) == bytes.len() as isize;
            libc::_exit(if ok { 0 } else { 3 });
        }
    }
    // SAFETY: the parent's copy of the write end, not used again.
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    // SAFETY: our own child; a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child failed: status {status:#x}");
    let mut buf = vec![0u8; out.len() * 4];
    // SAFETY: a buffer of the length passed; the read end is ours.
    let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: our read end, not used again.
    unsafe { libc::close(fds[0]) };
    assert_eq!(n, buf.len() as isize, "short report from the child");
    buf.chunks(4).map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn errno_name(e: i32) -> String {
    if e == 0 {
        "success".into()
    } else {
        std::io::Error::from_raw_os_error(e).to_string()
    }
}

#[test]
fn every_denied_call_is_answered_by_the_filter_and_reaches_the_kernel_without_it() {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        skip("root", "without capabilities the kernel itself answers EPERM to most of these calls");
        return;
    }
    // Every x86-64 entry of the filter's table is tried here.
    for (name, x86, _) in DENIED {
        if x86.is_some() {
            assert!(calls().iter().any(|c| c.name == *name), "`{name}` is denied by the filter but not tried here");
        }
    }
    // As the two implementations use it: `namespaces` with IP, `landlock-only` with network off.
    // Every filter that can ship: `namespaces` uses (UnixIpRoute, PidNamespace), `landlock-only`
    // either socket rule (by network mode) with HostPids.
    for (sockets, processes) in [
        (SocketRule::UnixIpRoute, ProcessScope::PidNamespace),
        (SocketRule::UnixOnly, ProcessScope::HostPids),
        (SocketRule::UnixIpRoute, ProcessScope::HostPids),
    ] {
        let mut calls = calls();
        calls.extend(process_calls(processes));
        let prog = child_bpf(&build(&SeccompPlan { arch: Arch::X86_64, sockets, processes }));
        let (without, with) = (errnos(&calls, None), errnos(&calls, Some(&prog)));
        let mut wrong = Vec::new();
        for ((c, w), f) in calls.iter().zip(&without).zip(&with) {
            match c.filtered {
                // The control: without the filter, the kernel answers something else.
                Some(e) if *w == e => wrong.push(format!("{}: the kernel itself answers {}", c.name, errno_name(e))),
                Some(e) if *f != e => {
                    wrong.push(format!("{}: got {} under the filter, not {}", c.name, errno_name(*f), errno_name(e)))
                }
                None if f != w => {
                    wrong.push(format!("{}: the filter changed {} to {}", c.name, errno_name(*w), errno_name(*f)))
                }
                _ => {}
            }
        }
        assert!(wrong.is_empty(), "{sockets:?}:\n{}", wrong.join("\n"));
    }
}
