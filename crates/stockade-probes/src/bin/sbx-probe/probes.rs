//! The probes. Each returns `Ok(detail)` when the action succeeded and `Err(Fail)` with the
//! errno of the first refused syscall otherwise.

use std::ffi::CString;
use std::io::Write;

mod fs;
mod info;
mod net;
mod process;

use fs::*;
use info::*;
use net::*;
use process::*;

type Probe = Result<String, Fail>;

/// A refused action: the errno and what was being done.
struct Fail {
    errno: i32,
    detail: String,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turns a raw return value into a result, capturing errno when negative.
fn check(ret: i64, what: &str) -> Result<i64, Fail> {
    if ret < 0 {
        let e = errno();
        Err(Fail { errno: e, detail: format!("{what}: {}", std::io::Error::from_raw_os_error(e)) })
    } else {
        Ok(ret)
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("sbx-probe: {msg} (run `sbx-probe list`)");
    std::process::exit(2);
}

fn cs(s: &str) -> CString {
    match CString::new(s) {
        Ok(c) => c,
        Err(_) => usage("argument contains a NUL byte"),
    }
}

fn arg<'a>(args: &'a [String], i: usize, name: &str) -> &'a str {
    match args.get(i) {
        Some(a) => a,
        None => usage(&format!("missing argument {name}")),
    }
}

/// `ppid` and `self` stand for the parent's and the probe's own pid, `supervisor` for the
/// stockade process that runs the sandbox (`{ppid}` and `{supervisor}` inside a path).
fn expand(s: &str) -> String {
    // SAFETY: getppid/getpid cannot fail.
    let (pp, me) = unsafe { (libc::getppid(), libc::getpid()) };
    let sup = supervisor(pp).to_string();
    match s {
        "ppid" => pp.to_string(),
        "self" => me.to_string(),
        "supervisor" => sup,
        _ => s.replace("{ppid}", &pp.to_string()).replace("{supervisor}", &sup),
    }
}

/// The nearest ancestor named `stockade` (the supervisor, when the sandbox lets it be seen;
/// the probe usually runs below a shell), or 0, which names no process, when none is visible
/// (a pid namespace hides it).
fn supervisor(mut pid: libc::pid_t) -> libc::pid_t {
    while pid > 1 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "stockade") {
            return pid;
        }
        // The parent's pid is the field after the parenthesised name (which may hold spaces).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        pid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    }
    0
}

fn num<T: std::str::FromStr>(s: &str, name: &str) -> T {
    match expand(s).parse() {
        Ok(n) => n,
        Err(_) => usage(&format!("{name} `{s}` is not a number")),
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn emit(probe: &str, r: &Probe) {
    let line = match r {
        Ok(d) => format!(
            "{{\"probe\":{},\"outcome\":\"allowed\",\"errno\":null,\"detail\":{}}}",
            json_str(probe),
            json_str(d)
        ),
        Err(f) => format!(
            "{{\"probe\":{},\"outcome\":\"denied\",\"errno\":{},\"detail\":{}}}",
            json_str(probe),
            f.errno,
            json_str(&f.detail)
        ),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Every probe id with its arguments, for `sbx-probe list`.
const LIST: &[&str] = &[
    "write PATH",
    "create PATH",
    "trunc PATH",
    "truncate PATH",
    "mkdir PATH",
    "rmdir PATH",
    "unlink PATH",
    "rename FROM TO",
    "exchange A B",
    "symlink TARGET LINK",
    "link FROM TO",
    "mkfifo PATH",
    "mknod-chr PATH",
    "mknod-blk PATH",
    "bind-unix PATH",
    "chmod PATH",
    "chown PATH",
    "utime PATH",
    "setxattr PATH",
    "read PATH",
    "readdir PATH",
    "stat PATH",
    "opath-reopen PATH",
    "ftruncate-fd FD",
    "write-fd FD",
    "exec PATH",
    "fd-scan",
    "kill PID SIG",
    "kill-all SIG GUARD_PID",
    "setpriority PID",
    "ptrace-attach PID",
    "process-vm-readv PID",
    "process-vm-writev PID",
    "proc-mem PID",
    "pidfd-open PID",
    "pidfd-getfd PID FD",
    "pidfd-signal PID",
    "tiocsti FD",
    "tiocsti-hi FD",
    "tioclinux FD",
    "setns PATH",
    "unshare user|mnt|net|pid|ipc|uts|cgroup|time",
    "clone-ns user|mnt|net|pid|ipc|uts|cgroup",
    "clone3-ns user|mnt|net|pid|ipc|uts|cgroup",
    "fork",
    "mount-tmpfs TARGET",
    "bind-mount SRC DST",
    "umount TARGET",
    "remount-rw TARGET",
    "chroot PATH",
    "pivot-root NEW OLD",
    "open-tree PATH",
    "fsopen",
    "fspick PATH",
    "mount-setattr PATH",
    "io-uring",
    "syscall NAME",
    "int80 NAME",
    "socket FAMILY [TYPE [PROTO]]",
    "socketpair FAMILY",
    "tcp-connect IP PORT",
    "udp-send IP PORT",
    "udp-reach IP PORT",
    "tcp-listen IP PORT MILLIS",
    "tcp-bind IP PORT",
    "tcp-loopback",
    "listen-proc-net tcp PORT|unix NAME",
    "udp-loopback",
    "unix-connect PATH",
    "unix-abstract NAME",
    "unix-selfpath DIR",
    "posture",
    "find-token REVERSED-TOKEN",
    "env-has NAME...",
    "sentinel TOKEN",
    "core-limit",
    "core-dump DIR as-is|zero|max",
    "fork-bomb MAX",
    "fd-exhaust MAX [file|inotify|eventfd|timerfd]",
    "sysv-shm KEY",
    "sysv-shm-create KEY",
    "hostname",
    "landlock-abi",
];

/// Runs the probe named by `args[0]`; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let id = arg(args, 0, "ID").to_owned();
    if id == "list" {
        for l in LIST {
            println!("{l}");
        }
        return 0;
    }
    let a = &args[1..];
    let r = match id.as_str() {
        "write" => fs_open(arg(a, 0, "PATH"), libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, true),
        "create" => fs_open(arg(a, 0, "PATH"), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, true),
        "trunc" => fs_open(arg(a, 0, "PATH"), libc::O_WRONLY | libc::O_TRUNC, false),
        "truncate" => path_call(a, "truncate", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::truncate(p.as_ptr(), 0) as i64 }
        }),
        "mkdir" => path_call(a, "mkdir", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::mkdir(p.as_ptr(), 0o755) as i64 }
        }),
        "rmdir" => path_call(a, "rmdir", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::rmdir(p.as_ptr()) as i64 }
        }),
        "unlink" => path_call(a, "unlink", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::unlink(p.as_ptr()) as i64 }
        }),
        "mkfifo" => path_call(a, "mkfifo", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::mkfifo(p.as_ptr(), 0o644) as i64 }
        }),
        "mknod-chr" => path_call(a, "mknod", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) as i64 }
        }),
        "mknod-blk" => path_call(a, "mknod", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::mknod(p.as_ptr(), libc::S_IFBLK | 0o666, libc::makedev(8, 0)) as i64 }
        }),
        "chmod" => path_call(a, "chmod", |p| {
            // SAFETY: p is a valid NUL-terminated path.
            unsafe { libc::chmod(p.as_ptr(), 0o777) as i64 }
        }),
        "chown" => path_call(a, "chown", |p| {
            // SAFETY: p is a valid NUL-terminated path; getuid/getgid cannot fail.
            unsafe { libc::chown(p.as_ptr(), libc::getuid(), libc::getgid()) as i64 }
        }),
        "utime" => path_call(a, "utimensat", |p| {
            let t = libc::timespec { tv_sec: 946_684_800, tv_nsec: 0 };
            let ts = [t, t];
            // SAFETY: p is a valid path and ts points to two timespecs.
            unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), ts.as_ptr(), 0) as i64 }
        }),
        "setxattr" => path_call(a, "setxattr", |p| {
            let n = cs("user.sbx");
            // SAFETY: valid path, name and a 1-byte value.
            unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), b"1".as_ptr().cast(), 1, 0) as i64 }
        }),
        "rename" => two_path_call(a, "rename", |x, y| {
            // SAFETY: valid NUL-terminated paths.
            unsafe { libc::rename(x.as_ptr(), y.as_ptr()) as i64 }
        }),
        "exchange" => two_path_call(a, "renameat2(RENAME_EXCHANGE)", |x, y| {
            // SAFETY: valid NUL-terminated paths; raw syscall with documented arguments.
            unsafe { libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, x.as_ptr(), libc::AT_FDCWD, y.as_ptr(), 2u32) }
        }),
        "symlink" => two_path_call(a, "symlink", |x, y| {
            // SAFETY: valid NUL-terminated paths.
            unsafe { libc::symlink(x.as_ptr(), y.as_ptr()) as i64 }
        }),
        "link" => two_path_call(a, "link", |x, y| {
            // SAFETY: valid NUL-terminated paths.
            unsafe { libc::link(x.as_ptr(), y.as_ptr()) as i64 }
        }),
        "bind-unix" => bind_unix(arg(a, 0, "PATH")),
        "read" => read_file(arg(a, 0, "PATH")),
        "readdir" => read_dir(arg(a, 0, "PATH")),
        "stat" => path_call(a, "stat", |p| {
            // SAFETY: valid path; st is a properly sized out buffer.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                libc::stat(p.as_ptr(), &mut st) as i64
            }
        }),
        "opath-reopen" => opath_reopen(arg(a, 0, "PATH")),
        "ftruncate-fd" => ftruncate_fd(num(arg(a, 0, "FD"), "FD")),
        "write-fd" => write_fd(num(arg(a, 0, "FD"), "FD")),
        "exec" => exec(arg(a, 0, "PATH")),
        "fd-scan" => fd_scan(),
        "kill" => {
            let pid: i32 = num(arg(a, 0, "PID"), "PID");
            let sig: i32 = num(arg(a, 1, "SIG"), "SIG");
            // SAFETY: kill has no memory arguments.
            check(unsafe { libc::kill(pid, sig) } as i64, "kill").map(|_| format!("signal {sig} delivered to {pid}"))
        }
        "kill-all" => kill_all(num(arg(a, 0, "SIG"), "SIG"), num(arg(a, 1, "GUARD_PID"), "GUARD_PID")),
        "setpriority" => {
            let pid: u32 = num(arg(a, 0, "PID"), "PID");
            // SAFETY: no memory arguments.
            check(unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, 19) } as i64, "setpriority")
                .map(|_| format!("nice of {pid} changed"))
        }
        "ptrace-attach" => ptrace_attach(num(arg(a, 0, "PID"), "PID")),
        "process-vm-readv" => process_vm(num(arg(a, 0, "PID"), "PID"), false),
        "process-vm-writev" => process_vm(num(arg(a, 0, "PID"), "PID"), true),
        "proc-mem" => fs_open(&format!("/proc/{}/mem", expand(arg(a, 0, "PID"))), libc::O_RDWR, false),
        "pidfd-open" => pidfd_open(num(arg(a, 0, "PID"), "PID")).map(|fd| format!("pidfd {fd}")),
        "pidfd-getfd" => pidfd_getfd(num(arg(a, 0, "PID"), "PID"), num(arg(a, 1, "FD"), "FD")),
        "pidfd-signal" => pidfd_signal(num(arg(a, 0, "PID"), "PID")),
        "tiocsti" => tiocsti(tty_fd(arg(a, 0, "FD")), libc::TIOCSTI, "TIOCSTI"),
        "tiocsti-hi" => tiocsti(tty_fd(arg(a, 0, "FD")), (0x123u64 << 32) | libc::TIOCSTI, "TIOCSTI|0x123<<32"),
        "tioclinux" => tioclinux(tty_fd(arg(a, 0, "FD"))),
        "setns" => setns(arg(a, 0, "PATH")),
        "unshare" => {
            let f = ns_flag(arg(a, 0, "NS"));
            // SAFETY: unshare has no memory arguments.
            check(unsafe { libc::unshare(f) } as i64, "unshare").map(|_| "new namespace created".to_owned())
        }
        "clone-ns" => clone_ns(ns_flag(arg(a, 0, "NS")), false),
        "clone3-ns" => clone_ns(ns_flag(arg(a, 0, "NS")), true),
        "fork" => clone_ns(0, false),
        "mount-tmpfs" => path_call(a, "mount", |p| {
            let (s, t) = (cs("none"), cs("tmpfs"));
            // SAFETY: valid strings; data may be NULL.
            unsafe { libc::mount(s.as_ptr(), p.as_ptr(), t.as_ptr(), 0, std::ptr::null()) as i64 }
        }),
        "bind-mount" => two_path_call(a, "mount(MS_BIND)", |x, y| {
            // SAFETY: valid strings; fstype and data may be NULL for a bind mount.
            unsafe { libc::mount(x.as_ptr(), y.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) as i64 }
        }),
        "umount" => path_call(a, "umount2", |p| {
            // SAFETY: valid path.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) as i64 }
        }),
        "remount-rw" => path_call(a, "mount(MS_REMOUNT|MS_BIND)", |p| {
            // SAFETY: valid path; source, fstype and data may be NULL for a remount.
            unsafe {
                libc::mount(
                    std::ptr::null(),
                    p.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND,
                    std::ptr::null(),
                ) as i64
            }
        }),
        "chroot" => path_call(a, "chroot", |p| {
            // SAFETY: valid path.
            unsafe { libc::chroot(p.as_ptr()) as i64 }
        }),
        "pivot-root" => two_path_call(a, "pivot_root", |x, y| {
            // SAFETY: valid paths.
            unsafe { libc::syscall(libc::SYS_pivot_root, x.as_ptr(), y.as_ptr()) }
        }),
        "open-tree" => path_call(a, "open_tree(OPEN_TREE_CLONE)", |p| {
            // SAFETY: valid path; flags OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC.
            unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), 1u32 | libc::O_CLOEXEC as u32) }
        }),
        "fsopen" => {
            let t = cs("tmpfs");
            // SAFETY: valid fs name; FSOPEN_CLOEXEC.
            check(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), 1u32) }, "fsopen(tmpfs)")
                .map(|fd| format!("fs context fd {fd}"))
        }
        "fspick" => path_call(a, "fspick", |p| {
            // SAFETY: valid path; FSPICK_CLOEXEC.
            unsafe { libc::syscall(libc::SYS_fspick, libc::AT_FDCWD, p.as_ptr(), 1u32) }
        }),
        "mount-setattr" => path_call(a, "mount_setattr(clear RDONLY)", |p| {
            // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }
            let attr: [u64; 4] = [0, 1, 0, 0];
            // SAFETY: valid path and a 32-byte mount_attr.
            unsafe { libc::syscall(libc::SYS_mount_setattr, libc::AT_FDCWD, p.as_ptr(), 0u32, attr.as_ptr(), 32usize) }
        }),
        "io-uring" => io_uring(),
        "syscall" => raw_syscall(arg(a, 0, "NAME")),
        "int80" => int80(arg(a, 0, "NAME")),
        "socket" => socket(a),
        "socketpair" => socketpair(a),
        "tcp-connect" => tcp_connect(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT")),
        "udp-send" => udp_send(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT")),
        "udp-reach" => udp_reach(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT")),
        "tcp-listen" => tcp_listen(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT"), num(arg(a, 2, "MILLIS"), "MILLIS")),
        "tcp-bind" => tcp_bind(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT")),
        "tcp-loopback" => tcp_loopback(),
        "listen-proc-net" => listen_proc_net(arg(a, 0, "tcp|unix"), arg(a, 1, "PORT|NAME")),
        "udp-loopback" => udp_loopback(),
        "unix-connect" => unix_connect(arg(a, 0, "PATH").as_bytes(), false),
        "unix-abstract" => unix_connect(arg(a, 0, "NAME").as_bytes(), true),
        "unix-selfpath" => unix_selfpath(arg(a, 0, "DIR")),
        "posture" => posture(),
        "find-token" => find_token(arg(a, 0, "TOKEN")),
        "env-has" => env_has(a),
        "sentinel" => sentinel(),
        "core-limit" => core_limit(),
        "core-dump" => {
            let mode = arg(a, 1, "MODE");
            let mode = process::CoreLimit::parse(mode).unwrap_or_else(|| usage(&format!("unknown mode {mode}")));
            core_dump(arg(a, 0, "DIR"), mode)
        }
        "fork-bomb" => fork_bomb(num(arg(a, 0, "MAX"), "MAX")),
        "fd-exhaust" => {
            let kind = a.get(1).map_or("file", String::as_str);
            let kind = process::FdKind::parse(kind).unwrap_or_else(|| usage(&format!("unknown fd kind {kind}")));
            fd_exhaust(num(arg(a, 0, "MAX"), "MAX"), kind)
        }
        "sysv-shm" => sysv_shm(num(arg(a, 0, "KEY"), "KEY")),
        "sysv-shm-create" => sysv_shm_create(num(arg(a, 0, "KEY"), "KEY")),
        "hostname" => hostname(),
        "landlock-abi" => {
            // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a NULL attr and size 0.
            check(
                unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) },
                "landlock_create_ruleset(VERSION)",
            )
            .map(|v| v.to_string())
        }
        other => usage(&format!("unknown probe `{other}`")),
    };
    emit(&id, &r);
    0
}

fn close(fd: i64) {
    // SAFETY: closing an fd this process owns.
    unsafe { libc::close(fd as i32) };
}

fn io_fail(what: &'static str) -> impl Fn(std::io::Error) -> Fail {
    move |e| Fail { errno: e.raw_os_error().unwrap_or(0), detail: format!("{what}: {e}") }
}
