//! The few libc calls the launcher needs that std does not offer: a new session for the
//! child, killing a process group, and forwarding signals (macOS only).
//!
//! References: `setsid(2)`, `killpg(2)`, `sigprocmask(2)`/`pthread_sigmask(3)`,
//! `sigpending(2)`, `sigwait(3)` in the macOS man pages
//! (<https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/>).
//!
//! Signal forwarding works without a handler: the launcher blocks the forwarded signals in
//! its own thread before it starts any other thread or child (threads inherit the mask; std
//! resets the mask in children), polls `sigpending`, and takes a pending signal with
//! `sigwait`, which returns at once because the signal is already pending.
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The signals stockade passes on to the command's process group: interrupt, terminate,
/// hang-up, quit, and window-size changes (the child has its own session, so the terminal
/// no longer sends them to it).
pub(crate) const FORWARDED: [libc::c_int; 5] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGWINCH];

fn forwarded_set() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusive sigset_t.
    if unsafe { libc::sigemptyset(&mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for s in FORWARDED {
        // SAFETY: `set` is initialised; `s` is a valid signal number.
        if unsafe { libc::sigaddset(&mut set, s) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// While alive, the forwarded signals are blocked in this thread (and in threads it starts)
/// and collected with [`SignalBlock::take_pending`]. Dropping it discards pending ones and
/// restores the previous mask. Not `Send`: the mask belongs to the thread that set it.
pub(crate) struct SignalBlock {
    old: libc::sigset_t,
    _thread_bound: PhantomData<*const ()>,
}

impl SignalBlock {
    /// Blocks the forwarded signals in the calling thread.
    pub(crate) fn new() -> io::Result<Self> {
        let set = forwarded_set()?;
        // SAFETY: as above, zeroed plain data that pthread_sigmask fills in.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the duration of the call.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(SignalBlock { old, _thread_bound: PhantomData })
    }

    /// Takes one pending forwarded signal, if any, without waiting.
    pub(crate) fn take_pending(&self) -> io::Result<Option<libc::c_int>> {
        // SAFETY: zeroed plain data that sigpending fills in.
        let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pending` is a valid, exclusive sigset_t.
        if unsafe { libc::sigpending(&mut pending) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for s in FORWARDED {
            // SAFETY: `pending` was filled in by sigpending.
            if unsafe { libc::sigismember(&pending, s) } == 1 {
                // SAFETY: zeroed plain data, initialised by sigemptyset before use.
                let mut only: libc::sigset_t = unsafe { std::mem::zeroed() };
                let mut got: libc::c_int = 0;
                // SAFETY: valid pointers; `s` is pending and blocked, so sigwait returns at once.
                let rc = unsafe {
                    libc::sigemptyset(&mut only);
                    libc::sigaddset(&mut only, s);
                    libc::sigwait(&only, &mut got)
                };
                if rc != 0 {
                    return Err(io::Error::from_raw_os_error(rc));
                }
                return Ok(Some(got));
            }
        }
        Ok(None)
    }
}

impl Drop for SignalBlock {
    fn drop(&mut self) {
        // The command has ended; a signal that arrived since would otherwise hit stockade
        // itself the moment the mask is restored.
        while let Ok(Some(_)) = self.take_pending() {}
        // SAFETY: `self.old` is the mask pthread_sigmask returned in `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// Makes the child start a new session (and process group) before it execs `sandbox-exec`:
/// the whole tree can be killed with one `killpg`, and the command has no controlling
/// terminal, so it cannot push input into the user's shell with `TIOCSTI`.
pub(crate) fn new_session(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls setsid(2), which is
    // async-signal-safe, and reads errno.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Lowers the child's resource limits before it execs `sandbox-exec`: no core files (a core
/// dump holds the command's memory, secrets included, and is written outside the sandbox's
/// rules), and at most `max_open_files` descriptors per process, a hard limit the command
/// cannot raise again. A limit already lower stays as it is.
pub(crate) fn limit_resources(cmd: &mut Command, max_open_files: Option<u32>) {
    // SAFETY: the closure runs between fork and exec and only calls getrlimit(2) and
    // setrlimit(2), which are async-signal-safe, and reads errno.
    unsafe {
        cmd.pre_exec(move || {
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::setrlimit(libc::RLIMIT_CORE, &zero) == -1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(n) = max_open_files {
                let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == -1 {
                    return Err(io::Error::last_os_error());
                }
                let n = libc::rlim_t::from(n);
                let lowered = libc::rlimit { rlim_cur: rl.rlim_cur.min(n), rlim_max: rl.rlim_max.min(n) };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Sends `signal` to every process in group `pgid`. A group that no longer exists is not an
/// error. Refuses group ids 0 and 1 (the caller's group and launchd's).
pub(crate) fn kill_group(pgid: u32, signal: libc::c_int) -> io::Result<()> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return Ok(()) };
    if pgid <= 1 {
        return Ok(());
    }
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, signal) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(e)
    }
}

/// The device path of the terminal on `fd` (`/dev/ttys003`), if `fd` is a terminal.
pub(crate) fn terminal_path(fd: libc::c_int) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: isatty has no memory-safety preconditions.
    if unsafe { libc::isatty(fd) } != 1 {
        return None;
    }
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for `buf.len()` bytes; ttyname_r NUL-terminates on success.
    let rc = unsafe { libc::ttyname_r(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0)?;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&buf[..len]));
    std::fs::canonicalize(path).ok()
}
