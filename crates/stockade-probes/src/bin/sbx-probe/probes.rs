//! The probes. Each returns `Ok(detail)` when the action succeeded and `Err(Fail)` with the
//! errno of the first refused syscall otherwise.

use std::ffi::CString;
use std::io::Write;

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

/// `ppid` and `self` stand for the parent's and the probe's own pid.
fn expand(s: &str) -> String {
    // SAFETY: getppid/getpid cannot fail.
    let (pp, me) = unsafe { (libc::getppid(), libc::getpid()) };
    match s {
        "ppid" => pp.to_string(),
        "self" => me.to_string(),
        _ => s.replace("{ppid}", &pp.to_string()),
    }
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
    "opath-read PATH",
    "exec PATH",
    "fd-scan",
    "kill PID SIG",
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
    "tcp-connect IP PORT",
    "udp-send IP PORT",
    "tcp-listen IP PORT MILLIS",
    "tcp-loopback",
    "udp-loopback",
    "unix-connect PATH",
    "unix-abstract NAME",
    "unix-selfpath DIR",
    "posture",
    "find-token REVERSED-TOKEN",
    "env-has NAME...",
    "sentinel TOKEN",
    "core-limit",
    "fork-bomb MAX",
    "fd-exhaust MAX",
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
        "opath-read" => opath_read(arg(a, 0, "PATH")),
        "exec" => exec(arg(a, 0, "PATH")),
        "fd-scan" => fd_scan(),
        "kill" => {
            let pid: i32 = num(arg(a, 0, "PID"), "PID");
            let sig: i32 = num(arg(a, 1, "SIG"), "SIG");
            // SAFETY: kill has no memory arguments.
            check(unsafe { libc::kill(pid, sig) } as i64, "kill").map(|_| format!("signal {sig} delivered to {pid}"))
        }
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
        "tcp-connect" => tcp_connect(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT")),
        "udp-send" => udp_send(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT")),
        "tcp-listen" => tcp_listen(arg(a, 0, "IP"), num(arg(a, 1, "PORT"), "PORT"), num(arg(a, 2, "MILLIS"), "MILLIS")),
        "tcp-loopback" => tcp_loopback(),
        "udp-loopback" => udp_loopback(),
        "unix-connect" => unix_connect(arg(a, 0, "PATH").as_bytes(), false),
        "unix-abstract" => unix_connect(arg(a, 0, "NAME").as_bytes(), true),
        "unix-selfpath" => unix_selfpath(arg(a, 0, "DIR")),
        "posture" => posture(),
        "find-token" => find_token(arg(a, 0, "TOKEN")),
        "env-has" => env_has(a),
        "sentinel" => sentinel(),
        "core-limit" => core_limit(),
        "fork-bomb" => fork_bomb(num(arg(a, 0, "MAX"), "MAX")),
        "fd-exhaust" => fd_exhaust(num(arg(a, 0, "MAX"), "MAX")),
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

fn path_call(a: &[String], what: &str, f: impl FnOnce(&CString) -> i64) -> Probe {
    let p = arg(a, 0, "PATH");
    let c = cs(p);
    check(f(&c), &format!("{what} {p}")).map(|r| format!("{what} {p} succeeded ({r})"))
}

fn two_path_call(a: &[String], what: &str, f: impl FnOnce(&CString, &CString) -> i64) -> Probe {
    let (x, y) = (arg(a, 0, "PATH1"), arg(a, 1, "PATH2"));
    let (cx, cy) = (cs(x), cs(y));
    check(f(&cx, &cy), &format!("{what} {x} {y}")).map(|_| format!("{what} {x} {y} succeeded"))
}

fn close(fd: i64) {
    // SAFETY: closing an fd this process owns.
    unsafe { libc::close(fd as i32) };
}

fn fs_open(path: &str, flags: i32, write: bool) -> Probe {
    let c = cs(path);
    // SAFETY: valid path; mode is used only with O_CREAT.
    let fd = check(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) } as i64, &format!("open {path}"))?;
    let res = if write {
        let m = b"sbx-probe-was-here\n";
        // SAFETY: fd is open, m is a valid buffer.
        check(unsafe { libc::write(fd as i32, m.as_ptr().cast(), m.len()) } as i64, &format!("write {path}"))
            .map(|n| format!("wrote {n} bytes to {path}"))
    } else {
        Ok(format!("opened {path}"))
    };
    close(fd);
    res
}

fn read_file(path: &str) -> Probe {
    let path = &expand(path);
    let c = cs(path);
    // SAFETY: valid path.
    let fd =
        check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) } as i64, &format!("open {path}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: fd is open, the tail of buf is writable.
        let r = unsafe { libc::read(fd as i32, buf[n..].as_mut_ptr().cast(), buf.len() - n) } as i64;
        match check(r, &format!("read {path}")) {
            Ok(0) => break,
            Ok(k) => n += k as usize,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        }
        if path.starts_with("/dev/") {
            break;
        }
    }
    close(fd);
    let text: String = String::from_utf8_lossy(&buf[..n]).chars().map(|c| if c == '\0' { '\n' } else { c }).collect();
    Ok(text)
}

fn read_dir(path: &str) -> Probe {
    let c = cs(path);
    // SAFETY: valid path.
    let fd = check(
        unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) } as i64,
        &format!("open {path}"),
    )?;
    let mut buf = vec![0u8; 32768];
    let mut names = Vec::new();
    loop {
        // SAFETY: fd is a directory, buf is writable for its length.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd as i32, buf.as_mut_ptr(), buf.len()) };
        let n = match check(n, &format!("getdents64 {path}")) {
            Ok(0) => break,
            Ok(n) => n as usize,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        };
        let mut off = 0;
        while off < n {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name...
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
            let s = String::from_utf8_lossy(&name[..end]).into_owned();
            if s != "." && s != ".." {
                names.push(s);
            }
            off += reclen;
        }
        if names.len() > 100_000 {
            break;
        }
    }
    close(fd);
    names.sort();
    Ok(names.join("\n"))
}

fn opath_read(path: &str) -> Probe {
    let c = cs(path);
    // SAFETY: valid path.
    let fd = check(
        unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) } as i64,
        &format!("open(O_PATH) {path}"),
    )?;
    let mut buf = [0u8; 64];
    // SAFETY: buf is writable.
    let r = check(unsafe { libc::read(fd as i32, buf.as_mut_ptr().cast(), buf.len()) } as i64, "read on O_PATH fd");
    close(fd);
    r.map(|n| format!("read {n} bytes through an O_PATH fd"))
}

fn exec(path: &str) -> Probe {
    match std::process::Command::new(path).stdin(std::process::Stdio::null()).status() {
        Ok(s) => Ok(format!("executed {path}: {s}")),
        Err(e) => Err(Fail { errno: e.raw_os_error().unwrap_or(0), detail: format!("execve {path}: {e}") }),
    }
}

fn fd_target(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("?({e})"))
}

/// Lists every open fd above 2; an inherited directory, socket, pidfd or namespace fd is an escape.
fn fd_scan() -> Probe {
    let mut found = Vec::new();
    let mut dangerous = false;
    for fd in 3..65536 {
        // SAFETY: F_GETFD has no memory arguments.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            continue;
        }
        // SAFETY: st is a properly sized out buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open, st is writable.
        unsafe { libc::fstat(fd, &mut st) };
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => "dir",
            libc::S_IFSOCK => "socket",
            libc::S_IFIFO => "pipe",
            libc::S_IFREG => "file",
            libc::S_IFCHR => "chr",
            _ => "other",
        };
        let target = fd_target(fd);
        let bad = matches!(kind, "dir" | "socket")
            || target.contains("pidfd")
            || target.contains(":[") && target.starts_with("net:");
        let bad = bad || target.starts_with("mnt:") || target.starts_with("user:") || target.starts_with("pid:");
        let mut note = String::new();
        if kind == "dir" {
            let dots = cs("..");
            // SAFETY: fd is a directory fd; path is valid.
            let up = unsafe { libc::openat(fd, dots.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
            if up >= 0 {
                note = format!(" (openat(fd, \"..\") -> {})", fd_target(up));
                close(up as i64);
            }
        }
        dangerous |= bad || kind == "other";
        found.push(format!("{fd}:{kind}:{target}{note}"));
    }
    if dangerous {
        Ok(format!("host handles reachable: {}", found.join(", ")))
    } else {
        Err(Fail { errno: 0, detail: format!("no directory/socket/pidfd/ns fd above 2; open: [{}]", found.join(", ")) })
    }
}

fn ptrace_attach(pid: i32) -> Probe {
    // SAFETY: PTRACE_ATTACH takes no memory arguments.
    check(unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) }, &format!("ptrace(PTRACE_ATTACH, {pid})"))?;
    let mut st = 0;
    // SAFETY: waiting for the stop of the tracee; st is writable.
    unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
    // SAFETY: detaching the tracee we attached.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    Ok(format!("attached to {pid} (detached again)"))
}

fn process_vm(pid: i32, write: bool) -> Probe {
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

fn pidfd_open(pid: i32) -> Result<i64, Fail> {
    // SAFETY: no memory arguments.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) }, &format!("pidfd_open({pid})"))
}

fn pidfd_getfd(pid: i32, fd: i32) -> Probe {
    let pfd = pidfd_open(pid)?;
    // SAFETY: no memory arguments.
    let r = check(
        unsafe { libc::syscall(libc::SYS_pidfd_getfd, pfd as i32, fd, 0u32) },
        &format!("pidfd_getfd({pid}, {fd})"),
    );
    close(pfd);
    r.map(|n| format!("stole fd {fd} of {pid} as {n} -> {}", fd_target(n as i32)))
}

fn pidfd_signal(pid: i32) -> Probe {
    let pfd = pidfd_open(pid)?;
    // SAFETY: signal 0, info NULL.
    let r = check(
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pfd as i32, 0, std::ptr::null::<u8>(), 0u32) },
        &format!("pidfd_send_signal({pid}, 0)"),
    );
    close(pfd);
    r.map(|_| format!("may signal {pid} through a pidfd"))
}

fn tty_fd(s: &str) -> i32 {
    if s == "tty" {
        let p = cs("/dev/tty");
        // SAFETY: valid path; the fd is left to process exit.
        return unsafe { libc::open(p.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    }
    num(s, "FD")
}

fn tiocsti(fd: i32, req: u64, what: &str) -> Probe {
    if fd < 0 {
        let e = errno();
        return Err(Fail { errno: e, detail: format!("open /dev/tty: {}", std::io::Error::from_raw_os_error(e)) });
    }
    let c: u8 = b'#';
    // SAFETY: raw ioctl on fd with a pointer to one byte, as TIOCSTI expects.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, req, &c as *const u8) };
    check(r, &format!("ioctl({fd}, {what})")).map(|_| format!("injected a byte into the terminal on fd {fd} ({what})"))
}

fn tioclinux(fd: i32) -> Probe {
    // TIOCLINUX subcode 2 (set selection) with a zeroed selection struct.
    let mut buf = [0u8; 16];
    buf[0] = 2;
    // SAFETY: buf is a valid, writable argument block.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, 0x541Cu64, buf.as_mut_ptr()) };
    check(r, &format!("ioctl({fd}, TIOCLINUX)")).map(|_| "TIOCLINUX accepted".to_owned())
}

fn setns(path: &str) -> Probe {
    let c = cs(path);
    // SAFETY: valid path.
    let fd =
        check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) } as i64, &format!("open {path}"))?;
    // SAFETY: no memory arguments.
    let r = check(unsafe { libc::setns(fd as i32, 0) } as i64, &format!("setns({path})"));
    close(fd);
    r.map(|_| format!("joined {path}"))
}

fn ns_flag(name: &str) -> i32 {
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

fn clone_ns(flags: i32, v3: bool) -> Probe {
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

fn io_uring() -> Probe {
    let mut params = [0u8; 120];
    // SAFETY: params is a zeroed io_uring_params of the right size.
    let fd = check(unsafe { libc::syscall(libc::SYS_io_uring_setup, 8u32, params.as_mut_ptr()) }, "io_uring_setup(8)")?;
    close(fd);
    Ok(format!("io_uring instance created (fd {fd}): SQEs bypass seccomp socket/open filters"))
}

/// The P7 table: dangerous syscalls called with harmless, bad arguments. A call that reaches
/// the kernel fails with EFAULT/EINVAL/EBADF/...; a filtered one with EPERM/ENOSYS (or SIGSYS).
fn raw_syscall(name: &str) -> Probe {
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
        "vm86" => (166, [0, 0, 0, 0, 0]),
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
        other => usage(&format!("unknown syscall `{other}`")),
    };
    // SAFETY: every argument set above is invalid on purpose: bad pointers are never mapped,
    // so a call that reaches the kernel fails before touching memory or state.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
    check(r, &format!("{name}(bad args)")).map(|v| format!("{name} returned {v}"))
}

/// The same dangerous calls through the i386 `int 0x80` entry: a filter that ignores
/// `seccomp_data.arch` would let these through under other numbers.
fn int80(name: &str) -> Probe {
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

fn family(s: &str) -> (i32, i32, i32) {
    use libc::*;
    match s {
        "unix" => (AF_UNIX, SOCK_STREAM, 0),
        "inet" => (AF_INET, SOCK_STREAM, 0),
        "inet6" => (AF_INET6, SOCK_STREAM, 0),
        "udp" => (AF_INET, SOCK_DGRAM, 0),
        "vsock" => (AF_VSOCK, SOCK_STREAM, 0),
        "packet" => (AF_PACKET, SOCK_RAW, 0),
        "raw-icmp" => (AF_INET, SOCK_RAW, IPPROTO_ICMP),
        "raw6-icmp" => (AF_INET6, SOCK_RAW, IPPROTO_ICMPV6),
        "icmp-dgram" => (AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
        "netlink-route" => (AF_NETLINK, SOCK_RAW, NETLINK_ROUTE),
        "netlink-sock-diag" => (AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG),
        "netlink-audit" => (AF_NETLINK, SOCK_RAW, NETLINK_AUDIT),
        "netlink-uevent" => (AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT),
        "netlink-netfilter" => (AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER),
        "netlink-xfrm" => (AF_NETLINK, SOCK_RAW, NETLINK_XFRM),
        "netlink-generic" => (AF_NETLINK, SOCK_RAW, NETLINK_GENERIC),
        "alg" => (AF_ALG, SOCK_SEQPACKET, 0),
        "bluetooth" => (AF_BLUETOOTH, SOCK_RAW, 0),
        "can" => (AF_CAN, SOCK_RAW, 1),
        "xdp" => (AF_XDP, SOCK_RAW, 0),
        "key" => (AF_KEY, SOCK_RAW, 2),
        "rds" => (AF_RDS, SOCK_SEQPACKET, 0),
        "tipc" => (AF_TIPC, SOCK_RDM, 0),
        "llc" => (AF_LLC, SOCK_DGRAM, 0),
        other => match other.parse() {
            Ok(n) => (n, SOCK_STREAM, 0),
            Err(_) => usage(&format!("unknown socket family `{other}`")),
        },
    }
}

fn socket(a: &[String]) -> Probe {
    let (f, mut t, mut p) = family(arg(a, 0, "FAMILY"));
    if let Some(x) = a.get(1) {
        t = num(x, "TYPE");
    }
    if let Some(x) = a.get(2) {
        p = num(x, "PROTO");
    }
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(f, t | libc::SOCK_CLOEXEC, p) } as i64, &format!("socket({f}, {t}, {p})"))?;
    close(fd);
    Ok(format!("socket({f}, {t}, {p}) created"))
}

/// A sockaddr for an IP literal; returns the storage and its length.
fn sockaddr(ip: &str, port: u16) -> (libc::sockaddr_storage, libc::socklen_t, i32) {
    // SAFETY: sockaddr_storage is plain data.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as u32, libc::AF_INET)
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32, libc::AF_INET6)
        }
        Err(_) => usage(&format!("`{ip}` is not an IP literal")),
    }
}

fn poll1(fd: i32, events: i16, ms: i32) -> i32 {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) }
}

fn tcp_connect(ip: &str, port: u16) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(
        unsafe { libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) } as i64,
        "socket",
    )?;
    // SAFETY: ss/len describe a valid sockaddr.
    let r = unsafe { libc::connect(fd as i32, (&ss as *const libc::sockaddr_storage).cast(), len) };
    let res = if r == 0 || errno() == libc::EINPROGRESS {
        if poll1(fd as i32, libc::POLLOUT, 3000) <= 0 {
            Err(Fail { errno: libc::ETIMEDOUT, detail: format!("connect {ip}:{port}: no answer in 3 s") })
        } else {
            let mut err: i32 = 0;
            let mut l = 4u32;
            // SAFETY: err/l are valid out parameters.
            unsafe {
                libc::getsockopt(fd as i32, libc::SOL_SOCKET, libc::SO_ERROR, (&mut err as *mut i32).cast(), &mut l)
            };
            if err != 0 {
                Err(Fail {
                    errno: err,
                    detail: format!("connect {ip}:{port}: {}", std::io::Error::from_raw_os_error(err)),
                })
            } else {
                let m = b"sbx-probe-tcp\n";
                // SAFETY: fd connected, m valid.
                unsafe { libc::send(fd as i32, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL) };
                Ok(format!("connected to {ip}:{port} and sent a marker"))
            }
        }
    } else {
        let e = errno();
        Err(Fail { errno: e, detail: format!("connect {ip}:{port}: {}", std::io::Error::from_raw_os_error(e)) })
    };
    close(fd);
    res
}

fn udp_send(ip: &str, port: u16) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(fam, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket(udp)")?;
    let m = b"sbx-probe-udp\n";
    // SAFETY: valid buffer and sockaddr.
    let r = unsafe {
        libc::sendto(fd as i32, m.as_ptr().cast(), m.len(), 0, (&ss as *const libc::sockaddr_storage).cast(), len)
    };
    let res = check(r as i64, &format!("sendto {ip}:{port}")).map(|n| format!("sent {n} bytes to {ip}:{port}"));
    close(fd);
    res
}

fn tcp_listen(ip: &str, port: u16, ms: i32) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket")? as i32;
    let one: i32 = 1;
    // SAFETY: valid option buffer.
    unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const i32).cast(), 4) };
    // SAFETY: valid sockaddr.
    let r = check(
        unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) } as i64,
        &format!("bind {ip}:{port}"),
    )
    // SAFETY: fd is a bound socket.
    .and_then(|_| check(unsafe { libc::listen(fd, 8) } as i64, "listen"));
    if let Err(f) = r {
        close(fd as i64);
        return Err(f);
    }
    let mut st = std::io::stdout().lock();
    let _ = writeln!(st, "{{\"listening\":true}}");
    let _ = st.flush();
    drop(st);
    let res = if poll1(fd, libc::POLLIN, ms) > 0 {
        Ok(format!("listening on {ip}:{port} accepted a connection from outside"))
    } else {
        Err(Fail { errno: 0, detail: format!("bound and listening on {ip}:{port}; nobody connected in {ms} ms") })
    };
    close(fd as i64);
    res
}

fn tcp_loopback() -> Probe {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_fail("bind 127.0.0.1:0"))?;
    let addr = l.local_addr().map_err(io_fail("getsockname"))?;
    let mut c = std::net::TcpStream::connect(addr).map_err(io_fail("connect to own listener"))?;
    let (mut s, _) = l.accept().map_err(io_fail("accept"))?;
    c.write_all(b"ping").map_err(io_fail("send"))?;
    let mut b = [0u8; 4];
    std::io::Read::read_exact(&mut s, &mut b).map_err(io_fail("recv"))?;
    Ok(format!("loopback TCP round trip on {addr}"))
}

fn udp_loopback() -> Probe {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(io_fail("bind udp"))?;
    let addr = s.local_addr().map_err(io_fail("getsockname"))?;
    s.send_to(b"ping", addr).map_err(io_fail("sendto self"))?;
    let mut b = [0u8; 8];
    s.set_read_timeout(Some(std::time::Duration::from_secs(2))).map_err(io_fail("timeout"))?;
    s.recv_from(&mut b).map_err(io_fail("recvfrom"))?;
    Ok(format!("loopback UDP round trip on {addr}"))
}

fn io_fail(what: &'static str) -> impl Fn(std::io::Error) -> Fail {
    move |e| Fail { errno: e.raw_os_error().unwrap_or(0), detail: format!("{what}: {e}") }
}

fn sockaddr_un(name: &[u8], abstract_ns: bool) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as u16;
    let off = usize::from(abstract_ns);
    if name.len() + off >= sun.sun_path.len() {
        usage("unix socket name too long");
    }
    for (i, b) in name.iter().enumerate() {
        sun.sun_path[i + off] = *b as libc::c_char;
    }
    let base = std::mem::size_of::<libc::sa_family_t>();
    let len = if abstract_ns { base + 1 + name.len() } else { base + name.len() + 1 };
    (sun, len as u32)
}

fn unix_connect(name: &[u8], abstract_ns: bool) -> Probe {
    let (sun, len) = sockaddr_un(name, abstract_ns);
    let shown = format!("{}{}", if abstract_ns { "@" } else { "" }, String::from_utf8_lossy(name));
    // SAFETY: no memory arguments.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64,
        "socket(AF_UNIX)",
    )?;
    // SAFETY: valid sockaddr_un.
    let r = check(
        unsafe { libc::connect(fd as i32, (&sun as *const libc::sockaddr_un).cast(), len) } as i64,
        &format!("connect {shown}"),
    );
    if r.is_ok() {
        let m = b"sbx-probe-unix\n";
        // SAFETY: connected fd, valid buffer.
        unsafe { libc::send(fd as i32, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL) };
    }
    close(fd);
    r.map(|_| format!("connected to {shown} and sent a marker"))
}

fn bind_unix(path: &str) -> Probe {
    let (sun, len) = sockaddr_un(path.as_bytes(), false);
    // SAFETY: no memory arguments.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64,
        "socket(AF_UNIX)",
    )?;
    // SAFETY: valid sockaddr_un.
    let r = check(
        unsafe { libc::bind(fd as i32, (&sun as *const libc::sockaddr_un).cast(), len) } as i64,
        &format!("bind {path}"),
    );
    close(fd);
    r.map(|_| format!("socket file {path} created"))
}

fn unix_selfpath(dir: &str) -> Probe {
    let path = format!("{dir}/sbx-self.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).map_err(io_fail("bind own pathname socket"))?;
    let c = std::os::unix::net::UnixStream::connect(&path).map_err(io_fail("connect own pathname socket"));
    let _ = std::fs::remove_file(&path);
    c?;
    l.accept().map_err(io_fail("accept"))?;
    Ok(format!("AF_UNIX IPC through {path} works"))
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim_start_matches(':').trim().to_owned()))
        .unwrap_or_else(|| "?".to_owned())
}

/// P9: capabilities, no_new_privs, seccomp mode and ids. "allowed" means the posture is weak.
fn posture() -> Probe {
    let s = std::fs::read_to_string("/proc/self/status").map_err(io_fail("read /proc/self/status"))?;
    let f = |k| status_field(&s, k);
    let (eff, prm, amb, inh, nnp, sec) =
        (f("CapEff"), f("CapPrm"), f("CapAmb"), f("CapInh"), f("NoNewPrivs"), f("Seccomp"));
    let zero = |v: &str| v.chars().all(|c| c == '0');
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let setgroups = std::fs::read_to_string("/proc/self/setgroups").unwrap_or_default();
    // SAFETY: getuid/getgid/geteuid cannot fail.
    let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
    let detail = format!(
        "CapEff={eff} CapPrm={prm} CapAmb={amb} CapInh={inh} NoNewPrivs={nnp} Seccomp={sec} uid={uid} euid={euid} gid={gid} uid_map=[{}] setgroups={}",
        uid_map.split_whitespace().collect::<Vec<_>>().join(" "),
        setgroups.trim()
    );
    let weak = !zero(&eff) || !zero(&prm) || !zero(&amb) || nnp != "1" || sec != "2";
    if weak {
        Ok(detail)
    } else {
        Err(Fail { errno: 0, detail })
    }
}

/// `reversed` is the token reversed, so that the probe's own argv does not match.
fn find_token(reversed: &str) -> Probe {
    let token: String = reversed.chars().rev().collect();
    let token = token.as_str();
    let mut seen = 0;
    let dir = std::fs::read_dir("/proc").map_err(io_fail("readdir /proc"))?;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        seen += 1;
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if c.windows(token.len()).any(|w| w == token.as_bytes()) {
                return Ok(format!("process {pid} with `{token}` in its argv is visible ({seen}+ pids listed)"));
            }
        }
    }
    Err(Fail { errno: libc::ESRCH, detail: format!("no process with `{token}` among {seen} visible pids") })
}

fn env_has(names: &[String]) -> Probe {
    let env = std::fs::read("/proc/self/environ").map_err(io_fail("read /proc/self/environ"))?;
    let vars: Vec<String> =
        env.split(|b| *b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    let hits: Vec<&String> =
        vars.iter().filter(|v| names.iter().any(|n| v.split('=').next() == Some(n.as_str()))).collect();
    let all: Vec<&str> = vars.iter().filter_map(|v| v.split('=').next()).collect();
    if hits.is_empty() {
        Err(Fail { errno: 0, detail: format!("none present; environment names: {}", all.join(",")) })
    } else {
        Ok(format!("present: {}", hits.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")))
    }
}

fn sentinel() -> Probe {
    loop {
        // SAFETY: pause has no arguments; the process waits for a signal.
        unsafe { libc::pause() };
    }
}

fn core_limit() -> Probe {
    // SAFETY: rl is a valid out buffer.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    check(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut rl) } as i64, "getrlimit")?;
    let d = format!("RLIMIT_CORE soft={} hard={}", rl.rlim_cur, rl.rlim_max);
    if rl.rlim_cur == 0 && rl.rlim_max == 0 {
        Err(Fail { errno: 0, detail: d })
    } else {
        Ok(d)
    }
}

/// R1: fork children that wait, until `max` or the first failure; then kill them all.
fn fork_bomb(max: usize) -> Probe {
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

fn fd_exhaust(max: usize) -> Probe {
    let mut n = 0;
    let p = cs("/dev/null");
    while n < max {
        // SAFETY: valid path.
        let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY) };
        if fd < 0 {
            let e = errno();
            return Err(Fail {
                errno: e,
                detail: format!("open failed after {n} fds: {}", std::io::Error::from_raw_os_error(e)),
            });
        }
        n += 1;
    }
    Ok(format!("opened {n} fds without hitting a limit"))
}

fn hostname() -> Probe {
    // SAFETY: u is a valid out buffer.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    check(unsafe { libc::uname(&mut u) } as i64, "uname")?;
    let name: String = u.nodename.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
    Ok(name)
}
