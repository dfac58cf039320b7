//! Process probes (P1-P9, R1-R7): ptrace family, signals, TTY ioctls, namespaces, the P7
//! syscall table and its i386 variant, io_uring, limits.

use super::*;

pub(super) fn ptrace_attach(pid: i32) -> Probe {
    // SAFETY: PTRACE_ATTACH takes no memory arguments.
    check(unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) }, &format!("ptrace(PTRACE_ATTACH, {pid})"))?;
    let mut st = 0;
    // SAFETY: waiting for the stop of the tracee; st is writable.
    unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
    // SAFETY: detaching the tracee we attached.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    Ok(format!("attached to {pid} (detached again)"))
}

pub(super) fn process_vm(pid: i32, write: bool) -> Probe {
    let mut local = [0u8; 8];
    let liov = libc::iovec { iov_base: local.as_mut_ptr().cast(), iov_len: 8 };
    // Address 0x1000 is never mapped: a permitted call reaches the copy and fails EFAULT.
    let riov = libc::iovec { iov_base: 0x1000 as *mut libc::c_void, iov_len: 8 };
    let nr = if write { libc::SYS_process_vm_writev } else { libc::SYS_process_vm_readv };
    // SAFETY: both iovecs are valid for this call; the remote address is only used by the kernel.
    let r = unsafe { libc::syscall(nr, pid, &liov, 1u64, &riov, 1u64, 0u64) };
    let what = if write { "process_vm_writev" } else { "process_vm_readv" };
    match check(r, &format!("{what}({pid})")) {
        Ok(n) => Ok(format!("{what} copied {n} bytes")),
        Err(f) if f.errno == libc::EFAULT => {
            Ok(format!("{what}: access to {pid} granted (EFAULT on the unmapped probe address)"))
        }
        Err(f) => Err(f),
    }
}

pub(super) fn pidfd_open(pid: i32) -> Result<i64, Fail> {
    // SAFETY: no memory arguments.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) }, &format!("pidfd_open({pid})"))
}

pub(super) fn pidfd_getfd(pid: i32, fd: i32) -> Probe {
    let pfd = pidfd_open(pid)?;
    // SAFETY: no memory arguments.
    let r = check(
        unsafe { libc::syscall(libc::SYS_pidfd_getfd, pfd as i32, fd, 0u32) },
        &format!("pidfd_getfd({pid}, {fd})"),
    );
    close(pfd);
    r.map(|n| format!("stole fd {fd} of {pid} as {n} -> {}", fd_target(n as i32)))
}

pub(super) fn pidfd_signal(pid: i32) -> Probe {
    let pfd = pidfd_open(pid)?;
    // SAFETY: signal 0, info NULL.
    let r = check(
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pfd as i32, 0, std::ptr::null::<u8>(), 0u32) },
        &format!("pidfd_send_signal({pid}, 0)"),
    );
    close(pfd);
    r.map(|_| format!("may signal {pid} through a pidfd"))
}

pub(super) fn tty_fd(s: &str) -> i32 {
    if s == "tty" {
        let p = cs("/dev/tty");
        // SAFETY: valid path; the fd is left to process exit.
        return unsafe { libc::open(p.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    }
    num(s, "FD")
}

pub(super) fn tiocsti(fd: i32, req: u64, what: &str) -> Probe {
    if fd < 0 {
        let e = errno();
        return Err(Fail { errno: e, detail: format!("open /dev/tty: {}", std::io::Error::from_raw_os_error(e)) });
    }
    let c: u8 = b'#';
    // SAFETY: raw ioctl on fd with a pointer to one byte, as TIOCSTI expects.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, req, &c as *const u8) };
    check(r, &format!("ioctl({fd}, {what})")).map(|_| format!("injected a byte into the terminal on fd {fd} ({what})"))
}

pub(super) fn tioclinux(fd: i32) -> Probe {
    // TIOCLINUX subcode 2 (set selection) with a zeroed selection struct.
    let mut buf = [0u8; 16];
    buf[0] = 2;
    // SAFETY: buf is a valid, writable argument block.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, 0x541Cu64, buf.as_mut_ptr()) };
    check(r, &format!("ioctl({fd}, TIOCLINUX)")).map(|_| "TIOCLINUX accepted".to_owned())
}

pub(super) fn setns(path: &str) -> Probe {
    let c = cs(path);
    // SAFETY: valid path.
    let fd =
        check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) } as i64, &format!("open {path}"))?;
    // SAFETY: no memory arguments.
    let r = check(unsafe { libc::setns(fd as i32, 0) } as i64, &format!("setns({path})"));
    close(fd);
    r.map(|_| format!("joined {path}"))
}

pub(super) fn ns_flag(name: &str) -> i32 {
    match name {
        "user" => libc::CLONE_NEWUSER,
        "mnt" => libc::CLONE_NEWNS,
        "net" => libc::CLONE_NEWNET,
        "pid" => libc::CLONE_NEWPID,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "cgroup" => libc::CLONE_NEWCGROUP,
        "time" => 0x80,
        other => usage(&format!("unknown namespace `{other}`")),
    }
}

pub(super) fn clone_ns(flags: i32, v3: bool) -> Probe {
    let r = if v3 {
        // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls
        let args: [u64; 8] = [flags as u64, 0, 0, 0, libc::SIGCHLD as u64, 0, 0, 0];
        // SAFETY: args is a valid 64-byte clone_args; the child only calls _exit.
        unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 64usize) }
    } else {
        // SAFETY: fork-like clone without a new stack; the child only calls _exit.
        unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as u64, 0u64, 0u64, 0u64, 0u64) }
    };
    if r == 0 {
        // SAFETY: in the child: leave immediately.
        unsafe { libc::_exit(0) };
    }
    let what = if v3 { "clone3" } else { "clone" };
    let pid = check(r, &format!("{what}(flags={flags:#x})"))?;
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
    Ok(format!("{what}(flags={flags:#x}) created child {pid}"))
}

pub(super) fn io_uring() -> Probe {
    let mut params = [0u8; 120];
    // SAFETY: params is a zeroed io_uring_params of the right size.
    let fd = check(unsafe { libc::syscall(libc::SYS_io_uring_setup, 8u32, params.as_mut_ptr()) }, "io_uring_setup(8)")?;
    close(fd);
    Ok(format!("io_uring instance created (fd {fd}): SQEs bypass seccomp socket/open filters"))
}

/// The P7 table: dangerous syscalls called with harmless, bad arguments. A call that reaches
/// the kernel fails with EFAULT/EINVAL/EBADF/...; a filtered one with EPERM/ENOSYS (or SIGSYS).
pub(super) fn raw_syscall(name: &str) -> Probe {
    use libc::*;
    let bad = usize::MAX as i64; // an unmapped pointer
    let (nr, a): (i64, [i64; 5]) = match name {
        "bpf" => (SYS_bpf, [0, bad, 8, 0, 0]),
        "perf_event_open" => (SYS_perf_event_open, [bad, 0, -1, -1, 0]),
        "userfaultfd" => (SYS_userfaultfd, [-1, 0, 0, 0, 0]),
        "keyctl" => (SYS_keyctl, [0, 0, 0, 0, 0]),
        "add_key" => (SYS_add_key, [bad, bad, 0, 0, 0]),
        "request_key" => (SYS_request_key, [bad, bad, 0, 0, 0]),
        "kexec_load" => (SYS_kexec_load, [0, 0, bad, -1, 0]),
        "kexec_file_load" => (SYS_kexec_file_load, [-1, -1, 0, bad, -1]),
        "init_module" => (SYS_init_module, [bad, 0, bad, 0, 0]),
        "finit_module" => (SYS_finit_module, [-1, bad, -1, 0, 0]),
        "delete_module" => (SYS_delete_module, [bad, 0, 0, 0, 0]),
        "iopl" => (SYS_iopl, [99, 0, 0, 0, 0]),
        "ioperm" => (SYS_ioperm, [-1, 1, 1, 0, 0]),
        "swapon" => (SYS_swapon, [bad, 0, 0, 0, 0]),
        "swapoff" => (SYS_swapoff, [bad, 0, 0, 0, 0]),
        "reboot" => (SYS_reboot, [0, 0, 0, 0, 0]),
        "syslog" => (SYS_syslog, [3, bad, 16, 0, 0]),
        "acct" => (SYS_acct, [bad, 0, 0, 0, 0]),
        "quotactl" => (SYS_quotactl, [0, bad, 0, bad, 0]),
        "settimeofday" => (SYS_settimeofday, [bad, bad, 0, 0, 0]),
        "clock_settime" => (SYS_clock_settime, [0, bad, 0, 0, 0]),
        "adjtimex" => (SYS_adjtimex, [bad, 0, 0, 0, 0]),
        "sethostname" => (SYS_sethostname, [bad, 1, 0, 0, 0]),
        "setdomainname" => (SYS_setdomainname, [bad, 1, 0, 0, 0]),
        "personality" => (SYS_personality, [0x0040_0000 | 0x0200_0000, 0, 0, 0, 0]),
        "modify_ldt" => (SYS_modify_ldt, [1, bad, 16, 0, 0]),
        "mount" => (SYS_mount, [bad, bad, bad, 0, 0]),
        "umount2" => (SYS_umount2, [bad, 0, 0, 0, 0]),
        "pivot_root" => (SYS_pivot_root, [bad, bad, 0, 0, 0]),
        "chroot" => (SYS_chroot, [bad, 0, 0, 0, 0]),
        "setns" => (SYS_setns, [-1, 0, 0, 0, 0]),
        "unshare" => (SYS_unshare, [-1, 0, 0, 0, 0]),
        "open_tree" => (SYS_open_tree, [-1, bad, 0, 0, 0]),
        "move_mount" => (SYS_move_mount, [-1, bad, -1, bad, 0]),
        "fsopen" => (SYS_fsopen, [bad, 0, 0, 0, 0]),
        "fsconfig" => (SYS_fsconfig, [-1, 0, 0, 0, 0]),
        "fsmount" => (SYS_fsmount, [-1, 0, 0, 0, 0]),
        "fspick" => (SYS_fspick, [-1, bad, 0, 0, 0]),
        "mount_setattr" => (SYS_mount_setattr, [-1, bad, 0, bad, 32]),
        "io_uring_setup" => (SYS_io_uring_setup, [1, bad, 0, 0, 0]),
        "io_uring_enter" => (SYS_io_uring_enter, [-1, 0, 0, 0, 0]),
        "io_uring_register" => (SYS_io_uring_register, [-1, 0, 0, 0, 0]),
        "open_by_handle_at" => (SYS_open_by_handle_at, [-1, bad, 0, 0, 0]),
        "name_to_handle_at" => (SYS_name_to_handle_at, [-1, bad, bad, bad, 0]),
        "process_vm_readv" => (SYS_process_vm_readv, [0, bad, 1, bad, 1]),
        "process_vm_writev" => (SYS_process_vm_writev, [0, bad, 1, bad, 1]),
        "ptrace" => (SYS_ptrace, [PTRACE_PEEKDATA as i64, 0, 0, 0, 0]),
        "pidfd_getfd" => (SYS_pidfd_getfd, [-1, 0, 0, 0, 0]),
        "fanotify_init" => (SYS_fanotify_init, [-1, 0, 0, 0, 0]),
        "lookup_dcookie" => (212, [0, bad, 0, 0, 0]),
        "uselib" => (SYS_uselib, [bad, 0, 0, 0, 0]),
        "nfsservctl" => (180, [0, 0, 0, 0, 0]),
        "move_pages" => (SYS_move_pages, [0, 1, bad, bad, bad]),
        "migrate_pages" => (SYS_migrate_pages, [0, 64, bad, bad, 0]),
        "mbind" => (SYS_mbind, [bad, 4096, 99, 0, 0]),
        "set_mempolicy" => (SYS_set_mempolicy, [99, 0, 0, 0, 0]),
        "kcmp" => (SYS_kcmp, [-1, -1, 99, 0, 0]),
        // Positive controls: these must reach the kernel.
        "getrandom" => (SYS_getrandom, [bad, 1, 0, 0, 0]),
        "chmod" => (SYS_chmod, [bad, 0, 0, 0, 0]),
        "listen" => (SYS_listen, [-1, 0, 0, 0, 0]),
        "prctl" => (SYS_prctl, [PR_GET_DUMPABLE as i64, 0, 0, 0, 0]),
        "rseq" => (SYS_rseq, [bad, 32, 0, 0, 0]),
        // What `setarch -R` and debuggers ask for (PER_LINUX | ADDR_NO_RANDOMIZE).
        "personality_no_randomize" => (SYS_personality, [0x0004_0000, 0, 0, 0, 0]),
        other => usage(&format!("unknown syscall `{other}`")),
    };
    // SAFETY: every argument set above is invalid on purpose: bad pointers are never mapped,
    // so a call that reaches the kernel fails before touching memory or state.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
    check(r, &format!("{name}(bad args)")).map(|v| format!("{name} returned {v}"))
}

/// The same dangerous calls through the i386 `int 0x80` entry: a filter that ignores
/// `seccomp_data.arch` would let these through under other numbers.
pub(super) fn int80(name: &str) -> Probe {
    // i386 numbers; arguments chosen so that a call reaching the kernel fails harmlessly.
    let (nr, b, c, d): (u32, u32, u32, u32) = match name {
        "ptrace" => (26, 16, 0, 0),            // PTRACE_ATTACH pid 0 -> ESRCH if reached
        "unshare" => (310, 0xffff_ffff, 0, 0), // EINVAL if reached
        "mount" => (21, 0, 0, 0),              // EFAULT if reached
        "setns" => (346, 0xffff_ffff, 0, 0),   // EBADF if reached
        "io_uring_setup" => (425, 1, 0, 0),    // EFAULT if reached
        "keyctl" => (288, 0xffff, 0, 0),       // EOPNOTSUPP if reached
        "bpf" => (357, 0, 0, 8),               // EFAULT if reached
        "socket_vsock" => (359, 40, 1, 0),     // a vsock socket if reached
        "getpid" => (20, 0, 0, 0),             // positive control
        other => usage(&format!("unknown i386 syscall `{other}`")),
    };
    let ret: i64;
    #[cfg(target_arch = "x86_64")]
    {
        let mut rax = nr as i64;
        // SAFETY: a compat syscall with integer arguments only (no pointers the kernel writes);
        // rbx is saved and restored around the call because LLVM reserves it.
        unsafe {
            std::arch::asm!(
                "xchg {b}, rbx",
                "int 0x80",
                "xchg {b}, rbx",
                b = inout(reg) b as u64 => _,
                inout("rax") rax,
                in("rcx") c as u64,
                in("rdx") d as u64,
                in("rsi") 0u64,
                in("rdi") 0u64,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            );
        }
        ret = rax as i32 as i64;
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (nr, b, c, d);
        usage("int80 probes exist only on x86_64");
    }
    if ret < 0 {
        let e = (-ret) as i32;
        Err(Fail { errno: e, detail: format!("i386 {name} via int 0x80: {}", std::io::Error::from_raw_os_error(e)) })
    } else {
        if name == "socket_vsock" {
            close(ret);
        }
        Ok(format!("i386 {name} via int 0x80 returned {ret}"))
    }
}

pub(super) fn sentinel() -> Probe {
    loop {
        // SAFETY: pause has no arguments; the process waits for a signal.
        unsafe { libc::pause() };
    }
}

/// R7: whether the core limit keeps a crash's core from a core file and from the host's
/// `core_pattern` helper. "denied": it does (for this host's pattern); "allowed": it does not.
pub(super) fn core_limit() -> Probe {
    // SAFETY: rl is a valid out buffer.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    check(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut rl) } as i64, "getrlimit")?;
    // A `core_pattern` pipe helper gets the core at any limit but exactly 1 byte, a socket
    // helper (`@`) at any limit at all; a core file needs at least a page.
    let pattern = std::fs::read("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let (pipe, socket) = (pattern.starts_with(b"|"), pattern.starts_with(b"@"));
    let d = format!(
        "RLIMIT_CORE soft={} hard={} (core_pattern a pipe: {pipe}, a socket: {socket})",
        rl.rlim_cur, rl.rlim_max
    );
    if rl.rlim_max <= 1 && !socket && (rl.rlim_cur == 1 || !pipe) {
        Err(Fail { errno: 0, detail: d })
    } else {
        Ok(d)
    }
}

/// What [`core_dump`]'s crashing child does to its core-file limit first.
#[derive(Clone, Copy)]
pub(super) enum CoreLimit {
    /// Nothing: the limit it inherited.
    AsIs,
    /// Lowers it to 0 (what `ssh-agent` does, and what hands a core to a `core_pattern` pipe
    /// helper, which ignores the limit unless it is exactly 1).
    Zero,
    /// Raises the soft limit to the hard one (`ulimit -c unlimited` where allowed).
    Max,
}

impl CoreLimit {
    /// The mode named `name` on the command line.
    pub(super) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "as-is" => Self::AsIs,
            "zero" => Self::Zero,
            "max" => Self::Max,
            _ => return None,
        })
    }
}

/// R7: a child changes into `dir`, sets its core limit as `limit` says and dies of `SIGSEGV`.
/// "allowed": the kernel dumped its core (the wait status says so: a core file written, or the
/// core handed to the `core_pattern` helper); "denied": it did not. Core files it leaves in
/// `dir` are for the caller to remove.
pub(super) fn core_dump(dir: &str, limit: CoreLimit) -> Probe {
    let dir = cs(dir);
    // SAFETY: the child only makes async-signal-safe calls before it dies.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain calls on valid pointers; the child ends in the signal.
        unsafe {
            if libc::chdir(dir.as_ptr()) != 0 {
                libc::_exit(3);
            }
            let mut rl: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_CORE, &mut rl);
            match limit {
                CoreLimit::AsIs => {}
                CoreLimit::Zero => {
                    rl.rlim_cur = 0;
                    libc::setrlimit(libc::RLIMIT_CORE, &rl);
                }
                CoreLimit::Max => {
                    rl.rlim_cur = rl.rlim_max;
                    libc::setrlimit(libc::RLIMIT_CORE, &rl);
                }
            }
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::kill(libc::getpid(), libc::SIGSEGV);
            libc::_exit(4);
        }
    }
    check(pid as i64, "fork")?;
    let mut st = 0;
    // SAFETY: reaping our own child.
    check(unsafe { libc::waitpid(pid, &mut st, 0) } as i64, "waitpid")?;
    if !libc::WIFSIGNALED(st) {
        return Err(Fail { errno: 0, detail: format!("the child did not crash (wait status {st:#x})") });
    }
    if libc::WCOREDUMP(st) {
        Ok(format!("signal {} with a core dump (wait status {st:#x})", libc::WTERMSIG(st)))
    } else {
        Err(Fail {
            errno: 0,
            detail: format!("signal {} without a core dump (wait status {st:#x})", libc::WTERMSIG(st)),
        })
    }
}

/// R1: fork children that wait, until `max` or the first failure; then kill them all.
pub(super) fn fork_bomb(max: usize) -> Probe {
    let mut kids = Vec::new();
    let mut fail = None;
    while kids.len() < max {
        // SAFETY: the child only pauses (async-signal-safe) until it is killed.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: waiting for SIGKILL.
                unsafe { libc::pause() };
            }
        }
        if pid < 0 {
            fail = Some(errno());
            break;
        }
        kids.push(pid);
    }
    let n = kids.len();
    for pid in &kids {
        // SAFETY: killing our own children.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for pid in &kids {
        let mut st = 0;
        // SAFETY: reaping our own children.
        unsafe { libc::waitpid(*pid, &mut st, 0) };
    }
    match fail {
        None => Ok(format!("forked {n} processes without hitting a limit")),
        Some(e) => Err(Fail {
            errno: e,
            detail: format!("fork failed after {n} processes: {}", std::io::Error::from_raw_os_error(e)),
        }),
    }
}

/// The kernel objects [`fd_exhaust`] can make, each held through a descriptor of its own:
/// THREATS.md R6 names open files, `inotify_init`, `eventfd` and `timerfd` loops.
#[derive(Clone, Copy)]
pub(super) enum FdKind {
    /// `open("/dev/null")`.
    File,
    /// `inotify_init1`: also counted against the user's `fs.inotify.max_user_instances`.
    Inotify,
    /// `eventfd`.
    Eventfd,
    /// `timerfd_create`.
    Timerfd,
}

impl FdKind {
    /// The kind named `name` on the command line.
    pub(super) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "file" => Self::File,
            "inotify" => Self::Inotify,
            "eventfd" => Self::Eventfd,
            "timerfd" => Self::Timerfd,
            _ => return None,
        })
    }

    fn make(self) -> (libc::c_int, &'static str) {
        // SAFETY: each call takes a valid path or plain flags and returns a new descriptor or -1.
        let fd = unsafe {
            match self {
                Self::File => libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY),
                Self::Inotify => libc::inotify_init1(0),
                Self::Eventfd => libc::eventfd(0, 0),
                Self::Timerfd => libc::timerfd_create(libc::CLOCK_MONOTONIC, 0),
            }
        };
        let call = match self {
            Self::File => "open",
            Self::Inotify => "inotify_init1",
            Self::Eventfd => "eventfd",
            Self::Timerfd => "timerfd_create",
        };
        (fd, call)
    }
}

/// R6: makes objects of `kind` until the kernel refuses one or `max` exist. "denied": refused
/// (the detail says after how many, the errno why); "allowed": `max` made.
pub(super) fn fd_exhaust(max: usize, kind: FdKind) -> Probe {
    let mut n = 0;
    while n < max {
        let (fd, call) = kind.make();
        if fd < 0 {
            let e = errno();
            return Err(Fail {
                errno: e,
                detail: format!("{call} failed after {n} fds: {}", std::io::Error::from_raw_os_error(e)),
            });
        }
        n += 1;
    }
    Ok(format!("opened {n} fds without hitting a limit"))
}

/// R6 (IPC): looks up the System V shared memory segment with `key`. Allowed: it is visible
/// (a segment the host made must not be, inside an IPC namespace of the sandbox's own).
pub(super) fn sysv_shm(key: i32) -> Probe {
    // SAFETY: shmget with a key and no flags only looks the segment up.
    let id = check(unsafe { libc::shmget(key, 0, 0) } as i64, "shmget")?;
    Ok(format!("segment with key {key:#x} visible (id {id})"))
}

/// R6 (IPC control): creates a System V shared memory segment with `key` and leaves it in
/// place, for the host to look for after the run.
pub(super) fn sysv_shm_create(key: i32) -> Probe {
    // SAFETY: shmget creating a one-page segment.
    let id = check(
        unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) } as i64,
        "shmget(IPC_CREAT)",
    )?;
    Ok(format!("created segment with key {key:#x} (id {id})"))
}

/// P2: `kill(-1, sig)` (`kill -TERM -1`) from a process that has a child of its own.
/// "allowed": the call succeeded and the child died of `sig`, which shows that the call really
/// signalled everything this process may signal; whether anything outside the sandbox was hit
/// is for the harness to see. "denied": the call failed, or the child survived it (killed
/// afterwards, so that nothing is left behind).
///
/// `guard` is a process that must be out of reach (the harness's host sentinel): unless
/// `kill(guard, 0)` fails with `ESRCH` or `EPERM` right here, in this process, nothing is
/// signalled. Outside a sandbox, or in a broken one, `kill(-1)` would reach every process of
/// the user (every process on the machine for root).
pub(super) fn kill_all(sig: i32, guard: i32) -> Probe {
    if guard <= 1 {
        return Err(Fail {
            errno: libc::EINVAL,
            detail: format!("refusing: guard pid {guard} names no single process"),
        });
    }
    // SAFETY: signal 0 checks reachability only.
    let reach = unsafe { libc::kill(guard, 0) };
    let e = errno();
    if reach == 0 || (e != libc::ESRCH && e != libc::EPERM) {
        return Err(Fail {
            errno: 0,
            detail: format!(
                "refusing: the guard process {guard} is within reach (kill(guard, 0) = {reach}, errno {e})"
            ),
        });
    }
    // SAFETY: the child only pauses (async-signal-safe) until a signal ends it.
    let child = unsafe { libc::fork() };
    if child == 0 {
        loop {
            // SAFETY: no arguments; waits for a signal.
            unsafe { libc::pause() };
        }
    }
    let child = check(child as i64, "fork")? as i32;
    // SAFETY: no memory arguments.
    let r = unsafe { libc::kill(-1, sig) };
    let kill_errno = if r < 0 { errno() } else { 0 };
    let mut st = 0;
    let mut died = false;
    for _ in 0..200 {
        // SAFETY: reaping our own child; st is writable.
        if unsafe { libc::waitpid(child, &mut st, libc::WNOHANG) } == child {
            died = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if !died {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, &mut st, 0);
        }
    }
    let by_sig = died && libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == sig;
    if r < 0 {
        let e = std::io::Error::from_raw_os_error(kill_errno);
        return Err(Fail { errno: kill_errno, detail: format!("kill(-1, {sig}): {e}; own child {child} survived") });
    }
    if by_sig {
        Ok(format!("kill(-1, {sig}) succeeded and killed the probe's own child {child}"))
    } else {
        Err(Fail { errno: 0, detail: format!("kill(-1, {sig}) succeeded but the own child {child} survived it") })
    }
}
