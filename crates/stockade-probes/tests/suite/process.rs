//! THREATS.md §3.2: process probes P1-P9.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::harness::{loud, obs_of, rand_token, sv, Case, Impl, Who};

/// landlock-only's gap for scheduling changes to the user's other processes (not the broad
/// "process", which the signal gap matches first).
const SCHED_GAP: &[&str] = &["setpriority"];
/// landlock-only's gap on a kernel without Landlock signal scoping (ABI < 6).
const SIGNAL_GAP: &[&str] = &["can be sent signals"];

/// Pids of host processes whose argv contains `token`.
pub fn host_pids_with(token: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if c.windows(token.len()).any(|w| w == token.as_bytes())
                && !String::from_utf8_lossy(&c).starts_with("setpriv")
            {
                v.push(pid);
            }
        }
    }
    v
}

pub fn kill_all(pids: &[u32]) {
    for p in pids {
        // SAFETY: signalling leftovers of our own probe.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
}

/// Waits up to `ms` for processes with `token` to disappear; returns the survivors.
pub fn survivors(token: &str, ms: u64) -> Vec<u32> {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        let v = host_pids_with(token);
        if v.is_empty() || Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// P1 + F8: ptrace, process_vm_*, /proc/<pid>/mem, pidfd_getfd against a host process.
probe_test!(p1_ptrace_host, |c: &mut Case| {
    let s = c.sentinel.pid().to_string();
    let items = vec![
        sv(&["ptrace-attach", &s]),
        sv(&["process-vm-readv", &s]),
        sv(&["process-vm-writev", &s]),
        sv(&["proc-mem", &s]),
        sv(&["pidfd-getfd", &s, "0"]),
        sv(&["ptrace-attach", "ppid"]),
        sv(&["proc-mem", "ppid"]),
        // The supervisor, outside the sandbox: hidden by the pid namespace, and outside the
        // Landlock domain under `landlock-only`, whose ptrace rule refuses it (no gap).
        sv(&["ptrace-attach", "supervisor"]),
        sv(&["proc-mem", "supervisor"]),
    ];
    c.expect_all_denied("P1", &items, None, &[0, 1, 3, 4]);
    c.expect_all_allowed("P1-control", &[sv(&["fork"]), sv(&["read", "/proc/self/status"])]);
});

// P2: signals and priority changes to host processes; the sentinel must survive.
probe_test!(p2_signal_host, |c: &mut Case| {
    let s = c.sentinel.pid().to_string();
    if c.imp == Impl::Namespaces {
        let o = c.probe_unsandboxed(&["kill", &s, "0"]);
        c.escapes("P2", &o);
    }
    let items =
        vec![sv(&["kill", &s, "0"]), sv(&["pidfd-signal", &s]), sv(&["kill", &s, "15"]), sv(&["kill", &s, "9"])];
    c.expect_all_denied("P2", &items, None, &[]);
    c.expect_all_denied("P2-priority", &[sv(&["setpriority", &s])], Some(SCHED_GAP), &[]);
    c.expect_all_allowed("P2-control", &[sv(&["kill", "self", "0"])]);
    if !c.sentinel.alive() {
        c.fail("P2: the host sentinel was killed from inside the sandbox".into());
    }
    p2_kill_all(c);
});

/// P2 `kill -9 -1`: the command signals every process it may. Only the sandbox's own processes
/// may die: the command's own child (the control: kill(-1) really acted), not the host sentinel
/// nor the supervisor. SIGKILL, which nothing can catch, so that a survivor was not reached.
///
/// Safety: outside a pid namespace and without Landlock signal scoping, kill(-1) reaches every
/// process of the uid, and as root every process on the machine. So it runs under namespaces
/// (pid namespace) and, under landlock-only, only as the unprivileged user on a kernel with
/// signal scoping (ABI 6); and only after a harmless probe showed the host sentinel out of reach.
fn p2_kill_all(c: &mut Case) {
    let abi = crate::harness::landlock_abi();
    let scoped = abi.is_some_and(|a| a >= 6);
    let run = match c.imp {
        Impl::Namespaces => true,
        Impl::LandlockOnly => c.who == Who::User && c.acc.uid != 0 && scoped,
    };
    if !run {
        let o = c.probe(&["kill", "self", "0"]);
        if !scoped {
            // The documented gap, from a run's report.
            match Case::gap_listed(&o.gaps, SIGNAL_GAP) {
                Some(g) => c.note(format!("landlock-only: P2 `kill -9 -1` not run (documented gap: {g})")),
                None => c.fail(format!(
                    "P2: landlock-only without signal scoping (Landlock ABI {abi:?}) does not list the signal gap \
                     (looked for {SIGNAL_GAP:?} in {:?})",
                    o.gaps
                )),
            }
        } else {
            c.note(
                "P2 `kill -9 -1` not run as root under landlock-only: should Landlock's signal scoping fail, it \
                 would kill every process on the machine"
                    .to_owned(),
            );
        }
        return;
    }
    let s = c.sentinel.pid().to_string();
    let rev: String = c.sentinel.token.chars().rev().collect();
    let pre_items: [&[&str]; 2] = [&["kill", &s, "0"], &["find-token", &rev]];
    let pre = c.batch(&pre_items);
    // Out of reach means the kernel's answer for it: no such process in a pid namespace of
    // the sandbox's own, refused by Landlock's signal scoping under landlock-only.
    let hidden = match c.imp {
        Impl::Namespaces => pre[0].errno() == Some(i64::from(libc::ESRCH)) && pre[1].is_denied(),
        Impl::LandlockOnly => pre[0].errno() == Some(i64::from(libc::EPERM)),
    };
    let reach = !hidden;
    if reach {
        c.fail(format!(
            "P2 `kill -9 -1` not run: the host sentinel is within reach of the sandbox ({}; {})",
            pre[0].summary(),
            pre[1].summary()
        ));
        return;
    }
    // The probe is the command itself: under a shell, kill(-1) would kill the shell as well.
    let p = c.probe_bin();
    // The probe checks the sentinel itself, in the same process, just before kill(-1).
    let r = c.sandboxed(&[&p, "kill-all", "9", &s]);
    std::thread::sleep(Duration::from_millis(100));
    let o = obs_of(&r, "kill-all 9 (kill -9 -1)");
    c.allowed("P2-kill-all-control (kill(-1) killed the command's own child)", &o);
    if !c.sentinel.alive() {
        c.fail(format!("P2: `kill -9 -1` inside the sandbox killed the host sentinel\n{}", r.describe()));
    }
    if r.signal.is_some() || r.report.is_none() {
        c.fail(format!("P2: `kill -9 -1` inside the sandbox killed the supervisor\n{}", r.describe()));
    }
}

fn open_pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: standard pty allocation; fds are checked and owned.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt failed");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let sl = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(sl >= 0, "open pts failed");
        // Raw mode: an injected byte is readable (FIONREAD) without waiting for a newline.
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(sl, &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(sl, libc::TCSANOW, &t), 0);
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(sl))
    }
}

/// Runs `stockade OPTS -- probe ARGS` with a pty as controlling terminal and stdin; returns the
/// observation and whether an injected byte is pending in the terminal's input queue.
fn with_pty(c: &mut Case, opts: &[&str], args: &[&str]) -> (crate::harness::Obs, bool) {
    use std::os::unix::process::CommandExt;
    let (m, sl) = open_pty();
    let st = crate::harness::bins().stockade.to_string_lossy().into_owned();
    let p = c.probe_bin();
    let mut argv: Vec<&str> = vec![&st, "run"];
    argv.extend_from_slice(opts);
    argv.push("--");
    argv.push(&p);
    argv.extend_from_slice(args);
    let mut cmd = crate::harness::as_account(&c.acc, &argv);
    cmd.current_dir(&c.ws).env("HOME", &c.home).env("PATH", "/usr/local/bin:/usr/bin:/bin");
    let fd = sl.as_raw_fd();
    // SAFETY: setsid/ioctl/dup2 are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::dup2(fd, 0);
            Ok(())
        });
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).stdin(std::process::Stdio::inherit());
    let out = cmd.output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let r = crate::harness::Run {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: None,
        elapsed: Duration::ZERO,
        peak_rss_kb: None,
    };
    // Is a byte waiting to be read on the terminal (injected into its input)?
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD into an int.
    unsafe { libc::ioctl(sl.as_raw_fd(), libc::FIONREAD, &mut n) };
    drop(m);
    (obs_of(&r, &args.join(" ")), n > 0)
}

// P3: TIOCSTI/TIOCLINUX injection into the user's terminal, incl. the high-bits form.
// See: CVE-2019-10063 (flatpak: 64-bit ioctl compare), CVE-2017-5226 (bwrap --new-session)
probe_test!(p3_tty_injection, |c: &mut Case| {
    let ws = c.ws_s();
    if c.imp == Impl::Namespaces {
        let (o, pending) = with_pty(c, &["-C", &ws, "-s", "danger-full-access"], &["tiocsti", "0"]);
        if !(c.escapes("P3", &o) && pending) {
            c.fail(format!("P3: negative control injected nothing into the pty (pending={pending})"));
        }
    }
    for args in [["tiocsti", "0"], ["tiocsti-hi", "0"], ["tiocsti", "tty"], ["tiocsti-hi", "tty"], ["tioclinux", "0"]] {
        let (o, pending) = with_pty(c, &["-C", &ws, "--implementation", c.imp.flag()], &args);
        if o.rc == Some(125) {
            c.fail(format!("P3: stockade refused to run\n{}", o.ctx));
            continue;
        }
        c.denied("P3", &o);
        // On a pty the kernel itself answers TIOCLINUX with ENOTTY (only virtual consoles
        // implement it), so only EPERM shows that the filter answered.
        if args[0] == "tioclinux" && o.errno() != Some(i64::from(libc::EPERM)) {
            c.fail(format!("P3: TIOCLINUX was not answered by the seccomp filter (EPERM)\n{}", o.ctx));
        }
        if pending {
            c.fail(format!("P3: `{}`: a byte was injected into the user's terminal", args.join(" ")));
        }
    }
});

// P5: namespace re-entry and nested namespaces.
probe_test!(p5_namespaces, |c: &mut Case| {
    let s = c.sentinel.pid().to_string();
    let items = vec![
        sv(&["setns", "/proc/1/ns/mnt"]),
        sv(&["setns", &format!("/proc/{s}/ns/mnt")]),
        sv(&["setns", &format!("/proc/{s}/ns/net")]),
        sv(&["unshare", "user"]),
        sv(&["unshare", "net"]),
        sv(&["clone-ns", "user"]),
        sv(&["clone3-ns", "user"]),
        sv(&["clone3-ns", "net"]),
    ];
    // /proc/1 may belong to an outer container here; the sentinel's namespaces are the host's.
    let neg: &[usize] = if c.who == Who::Root { &[1, 3, 5, 6] } else { &[3, 5, 6] };
    c.expect_all_denied("P5", &items, None, neg);
    c.expect_all_allowed("P5-control", &[sv(&["fork"]), sv(&["stat", "/proc/self/ns/net"])]);
});

// P6: nothing outlives the run: daemons, setsid children, and a SIGKILLed supervisor.
probe_test!(p6_outlive, |c: &mut Case| {
    let p = c.probe_bin();
    let tok = format!("sbx-orphan-{}", rand_token());
    let script = format!("setsid {p} sentinel {tok}-a </dev/null >/dev/null 2>&1 & nohup {p} sentinel {tok}-b >/dev/null 2>&1 & ({p} sentinel {tok}-c &) ; exit 0");
    if c.imp == Impl::Namespaces {
        let neg = format!("setsid {p} sentinel {tok}-neg </dev/null >/dev/null 2>&1 & exit 0");
        let _ = c.unsandboxed(&["/bin/sh", "-c", &neg]);
        std::thread::sleep(Duration::from_millis(200));
        let left = host_pids_with(&format!("{tok}-neg"));
        if left.is_empty() {
            c.fail("P6: negative control: the orphan did not survive without a sandbox (probe blind)".into());
        }
        kill_all(&left);
    }
    let r = c.sandboxed(&["/bin/sh", "-c", &script]);
    let left = survivors(&tok, 1000);
    if !left.is_empty() {
        kill_all(&left);
        match (c.imp, Case::gap_listed(&r.gaps(), &["outlive"])) {
            (Impl::LandlockOnly, Some(g)) => {
                c.note(format!("landlock-only: P6 {} processes outlived the run (documented gap: {g})", left.len()))
            }
            _ => c.fail(format!("P6: processes outlived the sandbox: {left:?}\n{}", r.describe())),
        }
    }
    // Supervisor killed with SIGKILL mid-run.
    let tok2 = format!("sbx-kill9-{}", rand_token());
    let st = crate::harness::bins().stockade.to_string_lossy().into_owned();
    let ws = c.ws_s();
    let mut cmd = crate::harness::as_account(
        &c.acc,
        &[&st, "run", "-C", &ws, "--implementation", c.imp.flag(), "--", &p, "sentinel", &tok2],
    );
    cmd.current_dir(&c.ws)
        .env("HOME", &c.home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    // The sentinel itself: stockade's own argv (and its pid 1's, which shares it) holds the
    // token too, and waiting for those would kill stockade before the command ran.
    let sentinel_up = || {
        host_pids_with(&tok2).iter().any(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).next() == Some(p.as_bytes()))
        })
    };
    while !sentinel_up() && start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(st)) = child.try_wait() {
            let mut e = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut e);
            panic!("P6: stockade exited ({st}) before the sentinel started: {e}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if !sentinel_up() {
        c.fail("P6: the sentinel never started in the sandbox, so killing stockade tested nothing".into());
    }
    // SAFETY: killing the stockade process we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let left = survivors(&tok2, 2000);
    if !left.is_empty() {
        kill_all(&left);
        c.fail(format!("P6: the sandboxed command outlived a SIGKILLed supervisor: {left:?}"));
    }
});

const FILTERED: &[i64] = &[1, 13, 38]; // EPERM, EACCES, ENOSYS

fn reached_kernel(o: &crate::harness::Obs) -> bool {
    o.outcome == "allowed" || (o.outcome == "denied" && !FILTERED.contains(&o.errno().unwrap_or(-1)))
}

const TABLE: &[&str] = &[
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "iopl",
    "ioperm",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "personality",
    "modify_ldt",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "pidfd_getfd",
    "fanotify_init",
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
    // No `vm86` or `vm86old`: x86_64 has neither (the i386 entry is killed, see `int80`).
    "move_pages",
    "migrate_pages",
    "mbind",
    "set_mempolicy",
];

// P7: the try-syscall table: each call must be filtered (EPERM/ENOSYS/SIGSYS), not reach the
// kernel; positive controls must reach it. Plus the i386 `int 0x80` arch check.
probe_test!(p7_syscall_table, |c: &mut Case| {
    let items: Vec<Vec<String>> = TABLE.iter().map(|n| sv(&["syscall", n])).collect();
    if c.imp == Impl::Namespaces && c.who == Who::Root {
        // Negative control: without a filter these reach the kernel (EFAULT/EINVAL/EBADF...).
        let neg: Vec<Vec<String>> =
            ["bpf", "add_key", "mount", "io_uring_setup", "pidfd_getfd", "setns", "unshare", "fsopen"]
                .iter()
                .map(|n| sv(&["syscall", n]))
                .collect();
        for o in c.run_batch(&neg, false) {
            if !reached_kernel(&o) {
                c.fail(format!(
                    "P7: negative control: `{}` did not reach the kernel without a sandbox: {}",
                    o.label,
                    o.summary()
                ));
            }
        }
        let o = c.probe_unsandboxed(&["int80", "socket_vsock"]);
        c.escapes("P7-i386", &o);
    }
    for o in c.run_batch(&items, true) {
        if reached_kernel(&o) {
            c.fail(format!("P7: `{}` reached the kernel inside the sandbox (not filtered): {}", o.label, o.summary()));
        }
    }
    let controls: Vec<Vec<String>> = ["getrandom", "chmod", "listen", "prctl", "rseq", "personality_no_randomize"]
        .iter()
        .map(|n| sv(&["syscall", n]))
        .collect();
    for o in c.run_batch(&controls, true) {
        if !reached_kernel(&o) {
            c.fail(format!("P7-control: `{}` was filtered but must reach the kernel: {}", o.label, o.summary()));
        }
    }
    let i386: Vec<Vec<String>> =
        ["ptrace", "unshare", "mount", "setns", "io_uring_setup", "keyctl", "bpf", "socket_vsock"]
            .iter()
            .map(|n| sv(&["int80", n]))
            .collect();
    for o in c.run_batch(&i386, true) {
        if reached_kernel(&o) {
            c.fail(format!(
                "P7-i386: `{}` via int 0x80 reached the kernel (filter ignores the arch): {}",
                o.label,
                o.summary()
            ));
        }
    }
    let o = c.probe(&["int80", "getpid"]);
    if o.outcome != "allowed" {
        loud(&format!("NOTE {}: i386 getpid via int 0x80 is {} (whole compat ABI blocked)", c.name, o.summary()));
    }
});

// P8: io_uring (its SQEs bypass seccomp's view of socket/open).
probe_test!(p8_io_uring, |c: &mut Case| {
    c.expect_all_denied("P8", &[sv(&["io-uring"])], None, &[0]);
});

// P9: capabilities, no_new_privs, seccomp mode, uid mapping.
probe_test!(p9_posture, |c: &mut Case| {
    if c.imp == Impl::Namespaces {
        let o = c.probe_unsandboxed(&["posture"]);
        c.escapes("P9", &o);
    }
    let o = c.probe(&["posture"]);
    c.denied("P9 (weak posture: caps, NoNewPrivs or Seccomp)", &o);
    let want = format!(" uid={} ", c.acc.uid);
    if !o.detail().contains(&want) {
        c.fail(format!("P9: the command does not run as the caller's uid {}: {}", c.acc.uid, o.detail()));
    }
    // The bounding set is emptied wherever the command starts with capabilities to drop: in
    // its own user namespace, or as root. (An unprivileged `landlock-only` command has none,
    // cannot drop any, and no_new_privs keeps file capabilities from adding to it.)
    if (c.imp == Impl::Namespaces || c.acc.uid == 0) && !o.detail().contains("CapBnd=0000000000000000 ") {
        c.fail(format!("P9: the bounding set was not emptied: {}", o.detail()));
    }
    // In the sandbox's user namespace `setgroups` is refused, so the command cannot drop a
    // supplementary group that a file's permissions deny it through, and only the caller's
    // own ids are mapped.
    if c.imp == Impl::Namespaces {
        let map = format!("uid_map=[{} {} 1]", c.acc.uid, c.acc.uid);
        if !o.detail().ends_with("setgroups=deny") || !o.detail().contains(&map) {
            c.fail(format!("P9: expected {map} and setgroups=deny in the sandbox: {}", o.detail()));
        }
    }
});
