//! Filesystem probes (F1-F17): one file-system syscall each, and the fd scan (F9).

use super::*;

pub(super) fn path_call(a: &[String], what: &str, f: impl FnOnce(&CString) -> i64) -> Probe {
    let p = arg(a, 0, "PATH");
    let c = cs(p);
    check(f(&c), &format!("{what} {p}")).map(|r| format!("{what} {p} succeeded ({r})"))
}

pub(super) fn two_path_call(a: &[String], what: &str, f: impl FnOnce(&CString, &CString) -> i64) -> Probe {
    let (x, y) = (arg(a, 0, "PATH1"), arg(a, 1, "PATH2"));
    let (cx, cy) = (cs(x), cs(y));
    check(f(&cx, &cy), &format!("{what} {x} {y}")).map(|_| format!("{what} {x} {y} succeeded"))
}

pub(super) fn fs_open(path: &str, flags: i32, write: bool) -> Probe {
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

pub(super) fn read_file(path: &str) -> Probe {
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

pub(super) fn read_dir(path: &str) -> Probe {
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

/// F17: `open(O_PATH)` works on a file the sandbox may not read (Landlock does not check
/// O_PATH), so the fd must not be usable to read it: reopening it for reading through the
/// magic link `/proc/self/fd/N` resolves to the file again and must be checked like an open of
/// its path. "allowed": the file's content was read through the reopened fd (in `detail`).
pub(super) fn opath_reopen(path: &str) -> Probe {
    let c = cs(path);
    // SAFETY: valid path.
    let fd = check(
        unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) } as i64,
        &format!("open(O_PATH) {path}"),
    )?;
    let via = format!("/proc/self/fd/{fd}");
    let r = read_file(&via);
    close(fd);
    r.map(|text| format!("reopened {path} through {via} for reading: {text}"))
}

/// F17 (harness side): `ftruncate(fd, 0)` on an fd the command may have inherited.
pub(super) fn ftruncate_fd(fd: i32) -> Probe {
    // SAFETY: no memory arguments.
    check(unsafe { libc::ftruncate(fd, 0) } as i64, &format!("ftruncate({fd}, 0)"))
        .map(|_| format!("truncated the file behind fd {fd} ({})", fd_target(fd)))
}

/// F17 (harness side): `write(fd)` of a marker on an fd the command may have inherited.
pub(super) fn write_fd(fd: i32) -> Probe {
    let m = b"sbx-probe-was-here\n";
    // SAFETY: m is a valid buffer.
    check(unsafe { libc::write(fd, m.as_ptr().cast(), m.len()) } as i64, &format!("write({fd})"))
        .map(|n| format!("wrote {n} bytes to fd {fd} ({})", fd_target(fd)))
}

pub(super) fn exec(path: &str) -> Probe {
    match std::process::Command::new(path).stdin(std::process::Stdio::null()).status() {
        Ok(s) => Ok(format!("executed {path}: {s}")),
        Err(e) => Err(Fail { errno: e.raw_os_error().unwrap_or(0), detail: format!("execve {path}: {e}") }),
    }
}

pub(super) fn fd_target(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("?({e})"))
}

/// Lists every open fd above 2; an inherited directory, socket, pidfd or namespace fd is an escape.
pub(super) fn fd_scan() -> Probe {
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
