//! The only module with `unsafe`: thin wrappers over the system calls the backend needs, and
//! the code that runs in the forked children (sandbox init and command) between `clone` and
//! `execve`.
//!
//! Rules for the child side: pid 1 shares the supervisor's memory (see [`spawn_launcher`]) and the
//! command shares pid 1's until `execve`, while other supervisor threads run on, so the
//! children must not allocate, take locks or unwind. Everything they touch (C strings, pointer
//! arrays, the BPF program, Landlock masks) is prepared by [`crate::prepare`] and only read; the
//! children make system calls and write fixed-size records to the report pipe.
//!
//! References: [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html),
//! [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html),
//! [openat2(2)](https://man7.org/linux/man-pages/man2/openat2.2.html),
//! [landlock(7)](https://man7.org/linux/man-pages/man7/landlock.7.html),
//! [capabilities(7)](https://man7.org/linux/man-pages/man7/capabilities.7.html).
#![allow(unsafe_code)]

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{c_int, c_long, c_void};

use crate::landlock_rules::RuleTime;
use crate::mount_plan::{PlaceholderKind, PLACEHOLDER_NOTE};
use crate::prepare::{ChildOp, Prepared};

mod clone3;
mod fd_pass;
mod futex;
pub mod keyring;
mod launch;
pub mod lease;
mod stack;
pub use clone3::{clone3_fork, clone3_vm, CLONE3_VM};
use fd_pass::send_bridge_listener;
pub use fd_pass::{recv_fd, seqpacket_pair};
pub use launch::{spawn_launcher, AfterExit, IdMaps, InitStart, LaunchedInit, Launcher};
pub use stack::ChildStack;

// ---- constants the libc crate may not carry on every version ----
const SYS_OPENAT2: c_long = 437;
const SYS_OPEN_TREE: c_long = 428;
const SYS_MOVE_MOUNT: c_long = 429;
const SYS_MOUNT_SETATTR: c_long = 442;
const SYS_LANDLOCK_CREATE_RULESET: c_long = 444;
const SYS_LANDLOCK_ADD_RULE: c_long = 445;
const SYS_LANDLOCK_RESTRICT_SELF: c_long = 446;
const SYS_CLOSE_RANGE: c_long = 436;
const SYS_PIDFD_OPEN: c_long = 434;
const SYS_PIDFD_SEND_SIGNAL: c_long = 424;

/// `RESOLVE_NO_SYMLINKS`.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// `RESOLVE_BENEATH`.
pub const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;
const CLOSE_RANGE_CLOEXEC: u32 = 4;
const SECBIT_ALL_LOCKED_NOROOT: c_long = 0x2f; // NOROOT|NOROOT_LOCKED|NO_SETUID_FIXUP|..._LOCKED|KEEP_CAPS_LOCKED

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

// ---------------------------------------------------------------- supervisor-side wrappers

fn cvt(r: c_long) -> io::Result<c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn path_cstr(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `openat2(dirfd, path, O_PATH|O_CLOEXEC|O_NOFOLLOW, resolve)`: an `O_PATH` fd that never
/// followed a symlink on its way (and `RESOLVE_BENEATH` keeps it below `dirfd`).
pub fn open_path(dirfd: Option<RawFd>, path: &Path, resolve: u64) -> io::Result<OwnedFd> {
    let c = path_cstr(path)?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: resolve | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how that outlive the call.
    let fd = cvt(unsafe {
        libc::syscall(SYS_OPENAT2, dirfd.unwrap_or(libc::AT_FDCWD), c.as_ptr(), &how, std::mem::size_of::<OpenHow>())
    })?;
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// One `fstat` of an fd: its `st_mode` file type bits, and `(st_dev, st_ino)`, the identity
/// pid 1 re-checks before it mounts over or pins the path.
pub fn type_and_identity(fd: &OwnedFd) -> io::Result<(u32, (u64, u64))> {
    // SAFETY: a zeroed `stat` is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a valid pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } as c_long)?;
    Ok((st.st_mode & libc::S_IFMT, (st.st_dev, st.st_ino)))
}

/// Sets `word` to `value` (not 0) and wakes the sandbox process that waits for it (a word of
/// [`Prepared`], which the supervisor shares with pid 1 and the command until they exec).
pub fn announce(word: &std::sync::atomic::AtomicU32, value: u32) {
    futex::set(word, value);
}

/// Creates a placeholder named `name` in `dir`, without following symlinks (see
/// [`PlaceholderKind`]). `EEXIST` counts as success (a concurrent run made it, or the path
/// appeared since it was probed); the caller re-verifies by opening it.
///
/// A noted directory is never empty, not even for an instant: `rename(2)` may replace an empty
/// directory, and replacing or removing a dentry detaches every mount on it in other mount
/// namespaces. An empty `.git` placeholder replaced on the host (by a process swapping `.git`
/// during setup, THREATS F15) silently dropped the sandbox's read-only bind. So the directory is
/// built under a temporary name with its note inside, then moved into place with
/// `renameat2(RENAME_NOREPLACE)`. Where that is unavailable (some network filesystems, some
/// container seccomp profiles) it is made in place and filled at once, empty for that moment.
/// If stockade is killed between the two steps, the temporary directory
/// (`.stockade-placeholder.<pid>.<n>.<ns>.tmp`) stays behind.
pub fn create_placeholder(dir: &OwnedFd, name: &OsStr, kind: PlaceholderKind) -> io::Result<()> {
    let c = std::ffi::CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let r = match kind {
        PlaceholderKind::NotedDir => create_noted_dir(dir, &c),
        PlaceholderKind::EmptyDir => {
            // SAFETY: valid fd and C string.
            let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
            cvt(r as c_long).map(|_| ())
        }
        PlaceholderKind::EmptyFile => create_file_excl(dir.as_raw_fd(), &c, 0o644, b""),
    };
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

const PLACEHOLDER_TEXT: &[u8] = b"stockade created this directory as a read-only stand-in for a protected path \
that did not exist, so that sandboxed commands cannot create it. It may be deleted when no \
sandbox is running in this directory.\n";

/// See [`create_placeholder`].
fn create_noted_dir(dir: &OwnedFd, name: &std::ffi::CString) -> io::Result<()> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let note = std::ffi::CString::new(PLACEHOLDER_NOTE).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let d = dir.as_raw_fd();
    // A temporary name nobody else uses. A taken one (a concurrent run, or a sandboxed command
    // guessing it) is skipped; its EEXIST must not be mistaken for "the placeholder exists".
    let mut attempt = 0;
    let tmp = loop {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tmp = std::ffi::CString::new(format!("{PLACEHOLDER_NOTE}.{}.{seq}.{nanos}.tmp", std::process::id()))
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: valid fd and C string.
        match cvt(unsafe { libc::mkdirat(d, tmp.as_ptr(), 0o755) } as c_long) {
            Ok(_) => break tmp,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempt < 8 => attempt += 1,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Err(io::Error::from_raw_os_error(libc::EBUSY)),
            Err(e) => return Err(e),
        }
    };
    // SAFETY: valid fd and C string; O_NOFOLLOW|O_DIRECTORY opens only the directory just made.
    let tfd = unsafe {
        libc::openat(d, tmp.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
    };
    let filled = if tfd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // EEXIST here means someone put a file in our fresh directory, not that the
        // placeholder exists: report it as EBUSY.
        create_file_excl(tfd, &note, 0o444, PLACEHOLDER_TEXT).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => io::Error::from_raw_os_error(libc::EBUSY),
            _ => e,
        })
    };
    // Err(Ok(e)): the rename failed; Err(Err(e)): filling the directory failed.
    let placed: Result<(), Result<io::Error, io::Error>> = match filled {
        Err(e) => Err(Err(e)),
        Ok(()) => {
            // SAFETY: valid fds and C strings.
            let r = unsafe {
                libc::syscall(libc::SYS_renameat2, d, tmp.as_ptr(), d, name.as_ptr(), libc::RENAME_NOREPLACE)
            };
            cvt(r).map(|_| ()).map_err(Ok)
        }
    };
    if placed.is_err() {
        // Undo only what this call made: the note (if this call wrote it) through the
        // directory's own fd, then the temporary directory (which fails unless it is empty).
        if tfd >= 0 && !matches!(placed, Err(Err(ref e)) if e.raw_os_error() == Some(libc::EBUSY)) {
            // SAFETY: valid fd and C string.
            unsafe { libc::unlinkat(tfd, note.as_ptr(), 0) };
        }
        // SAFETY: valid fd and C string.
        unsafe { libc::unlinkat(d, tmp.as_ptr(), libc::AT_REMOVEDIR) };
    }
    if tfd >= 0 {
        // SAFETY: tfd was opened above.
        unsafe { libc::close(tfd) };
    }
    match placed {
        Ok(()) => Ok(()),
        // No RENAME_NOREPLACE here: a filesystem without it (EINVAL, some network filesystems)
        // or a container whose seccomp profile forbids renameat2 (ENOSYS, EPERM). Create the
        // directory in place and fill it at once; it is empty for that moment. A plain rename
        // is no fallback: it would replace an empty directory someone made meanwhile.
        Err(Ok(e)) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)) => {
            // SAFETY: valid fd and C string.
            cvt(unsafe { libc::mkdirat(d, name.as_ptr(), 0o755) } as c_long)?;
            // SAFETY: as above.
            let fd = unsafe {
                libc::openat(d, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd was just opened by us and is owned here.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            create_file_excl(fd.as_raw_fd(), &note, 0o444, PLACEHOLDER_TEXT).map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) => io::Error::from_raw_os_error(libc::EBUSY),
                _ => e,
            })
        }
        Err(Ok(e) | Err(e)) => Err(e),
    }
}

/// Creates a new regular file `name` in `dir` (never following or reusing a link) holding `text`.
fn create_file_excl(dir: RawFd, name: &CStr, mode: libc::mode_t, text: &[u8]) -> io::Result<()> {
    // SAFETY: valid fd and C string; O_EXCL|O_NOFOLLOW never follows or reuses a link.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened by us and is owned here.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut f, text)
}

/// The running kernel's Landlock ABI version, or 0 when Landlock is unavailable.
pub fn landlock_abi() -> i32 {
    // SAFETY: a version query takes no pointer.
    let v = unsafe {
        libc::syscall(SYS_LANDLOCK_CREATE_RULESET, std::ptr::null::<c_void>(), 0usize, LANDLOCK_CREATE_RULESET_VERSION)
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// The wall clock as the kernel stamps file times with it (`CLOCK_REALTIME_COARSE`): seconds
/// and nanoseconds. A file changed after this call has a `ctime` at or after it, which a read of
/// the precise clock does not guarantee (the coarse clock may lag it by a tick).
#[allow(clippy::unnecessary_cast)] // `time_t` and `c_long` are narrower on 32-bit targets
pub fn coarse_realtime() -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer; the call cannot fail for this clock id.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec as i64, ts.tv_nsec as i64)
}

/// `uname` release string.
pub fn kernel_release() -> String {
    // SAFETY: zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates the field.
    unsafe { CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned()
}

/// Real uid and gid of the caller.
pub fn ids() -> (u32, u32) {
    // SAFETY: always succeed.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// A pipe with both ends close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds is a valid 2-element array.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as c_long)?;
    // SAFETY: fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Opens `/dev/null` read-write, close-on-exec.
pub fn open_devnull() -> io::Result<OwnedFd> {
    // SAFETY: constant C string.
    let fd = cvt(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) } as c_long)?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Forks with `flags` (namespace flags allowed) like `fork(2)`: returns 0 in the child.
/// The child must call only async-signal-safe code and end in `execve` or `_exit`.
pub fn clone_process(flags: u64) -> io::Result<libc::pid_t> {
    // SAFETY: raw clone without CLONE_VM and a NULL stack behaves like fork: the child gets a
    // copy of the address space and continues here; callers uphold the no-allocation rule.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0usize, 0usize, 0usize, 0usize) };
    cvt(r).map(|p| p as libc::pid_t)
}

/// `pidfd_open(pid)`.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd = cvt(unsafe { libc::syscall(SYS_PIDFD_OPEN, pid, 0) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Polls `fds` for input; returns which are readable, or all false on timeout/EINTR.
pub fn poll_in(fds: &[RawFd], timeout_ms: i32) -> Vec<bool> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: p is a valid array of pollfd of the given length.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r <= 0 {
        return vec![false; fds.len()];
    }
    p.iter().map(|x| x.revents != 0).collect()
}

/// Sends `sig` to `pid` (negative for a process group); errors ignored (the target may be gone).
pub fn kill(pid: libc::pid_t, sig: c_int) {
    // SAFETY: no pointers.
    unsafe { libc::kill(pid, sig) };
}

/// `pidfd_send_signal(pidfd, sig)`: signals exactly the process the pidfd names, even if
/// another thread reaped it and its pid was reused (then it fails with `ESRCH`).
pub fn pidfd_kill(pidfd: RawFd, sig: c_int) {
    // SAFETY: no pointers but the NULL siginfo.
    unsafe { libc::syscall(SYS_PIDFD_SEND_SIGNAL, pidfd, sig, std::ptr::null::<libc::siginfo_t>(), 0u32) };
}

/// `waitpid(pid, 0)`, retrying on EINTR; returns the raw wait status.
pub fn wait_pid(pid: libc::pid_t) -> io::Result<c_int> {
    let mut st = 0;
    loop {
        // SAFETY: st is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r >= 0 {
            return Ok(st);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Reads whatever is available (non-blocking after EOF of all writers) into `buf`.
pub fn read_all(fd: &OwnedFd, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: chunk is a valid writable buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if n > 0 {
            buf.extend_from_slice(&chunk[..n as usize]);
        } else if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// Sets `O_NONBLOCK` on an fd.
pub fn set_nonblock(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

// ---------------------------------------------------------------- signal forwarding

use std::sync::atomic::{AtomicI32, Ordering};

const SLOTS: usize = 32;
static FORWARD_FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
/// The signals the supervisor forwards to the sandbox.
pub const FORWARDED: [c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

extern "C" fn forward_handler(sig: c_int) {
    let b = [sig as u8];
    for slot in &FORWARD_FDS {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe; a stale fd at worst fails.
            unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
        }
    }
}

/// While alive, the forwarded signals are written (as one byte each) to a pipe the run polls.
pub struct SignalForward {
    slot: usize,
    old: Vec<(c_int, libc::sigaction)>,
    /// The read end to poll.
    pub read: OwnedFd,
    _write: OwnedFd,
}

impl SignalForward {
    /// Installs the handlers (once per process, shared by concurrent runs).
    pub fn install() -> io::Result<Self> {
        let (read, write) = pipe()?;
        set_nonblock(write.as_raw_fd());
        set_nonblock(read.as_raw_fd());
        let slot = FORWARD_FDS
            .iter()
            .position(|s| s.compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst).is_ok())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EMFILE))?;
        let mut old = Vec::new();
        for sig in FORWARDED {
            // SAFETY: zeroed sigaction is valid; we fill the handler and flags.
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = forward_handler as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            // SAFETY: zeroed is a valid out-parameter.
            let mut prev: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointers.
            if unsafe { libc::sigaction(sig, &sa, &mut prev) } == 0 {
                old.push((sig, prev));
            }
        }
        Ok(SignalForward { slot, old, read, _write: write })
    }
}

impl Drop for SignalForward {
    fn drop(&mut self) {
        FORWARD_FDS[self.slot].store(-1, Ordering::SeqCst);
        if FORWARD_FDS.iter().all(|s| s.load(Ordering::SeqCst) < 0) {
            for (sig, prev) in &self.old {
                // SAFETY: restoring the previous disposition.
                unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
            }
        }
    }
}

// ---------------------------------------------------------------- child side

/// Record kinds on the report pipe.
pub const MSG_SETUP: u32 = 1;
/// Exec failed (payload: errno).
pub const MSG_EXEC: u32 = 2;
/// The command ended (payload: raw wait status).
pub const MSG_EXIT: u32 = 3;
/// Pid 1 has started the command (or reported why it could not): what the supervisor can do
/// while the command runs is done now rather than while pid 1 builds the mount view, where it
/// would compete with it.
pub const MSG_STARTED: u32 = 4;

/// Fixed setup steps (mount ops and Landlock rules use their index instead).
pub mod step {
    /// Reading the "go" byte / PR_SET_PDEATHSIG.
    pub const PDEATHSIG: i32 = 1001;
    /// sethostname.
    pub const HOSTNAME: i32 = 1005;
    /// Bringing loopback up.
    pub const LOOPBACK: i32 = 1006;
    /// Forking the command.
    pub const FORK: i32 = 1007;
    /// setsid.
    pub const SETSID: i32 = 1008;
    /// stdio redirection.
    pub const STDIO: i32 = 1009;
    /// setrlimit.
    pub const RLIMIT: i32 = 1010;
    /// chdir.
    pub const CHDIR: i32 = 1011;
    /// PR_SET_NO_NEW_PRIVS.
    pub const NNP: i32 = 1012;
    /// landlock_create_ruleset.
    pub const LANDLOCK_CREATE: i32 = 1013;
    /// landlock_restrict_self.
    pub const LANDLOCK_RESTRICT: i32 = 1014;
    /// Dropping capabilities.
    pub const CAPS: i32 = 1015;
    /// Installing the seccomp filter.
    pub const SECCOMP: i32 = 1016;
    /// close_range.
    pub const CLOSE_FDS: i32 = 1017;
    /// Joining the run's cgroups.
    pub const CGROUP: i32 = 1018;
    /// Creating and handing over the network bridge listener.
    pub const BRIDGE: i32 = 1019;
    /// The IPC and UTS namespaces pid 1 makes for the command (unshare).
    pub const IPC_UTS: i32 = 1020;
    /// Landlock rules start here (+ index).
    pub const LANDLOCK_RULE: i32 = 2000;
    /// A writable root found to be a symlink when opened for its Landlock rule (+ index); far
    /// above [`LANDLOCK_RULE`], since `landlock-only` may have thousands of rules.
    pub const LANDLOCK_PATH_LINK: i32 = 1 << 24;
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

// Pid 1, and the command until it execs, share the supervisor's memory. They must not enter libc
// code that takes a process-wide lock or acts on "all threads": such state is the supervisor's.
// musl's `sigaction` locks for SIGABRT (a lock held by a supervisor thread, or by a process
// killed while holding it, would never be released for them), and its `setrlimit` signals every
// thread it knows of, which are the supervisor's. So those two calls are made as raw syscalls.

/// The kernel's `struct sigaction` (the same layout on x86_64 and aarch64).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Resets `sig` to its default disposition with the raw `rt_sigaction` syscall (see above).
/// Invalid numbers just fail.
fn reset_signal(sig: c_int) {
    let act = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: a valid struct; no old action is asked for; 8 is the kernel's sigset size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            c_long::from(sig),
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8 as c_long,
        )
    };
}

/// Blocks every signal in the calling thread with the raw `rt_sigprocmask` syscall: libc's
/// wrappers silently leave out the signals the libc reserves for its threads (32 and 33 on
/// glibc, 32 to 34 on musl).
fn block_every_signal() {
    let all: u64 = !0;
    // SAFETY: a valid 8-byte mask; the old mask is not asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            c_long::from(libc::SIG_SETMASK),
            &all as *const u64,
            std::ptr::null_mut::<u64>(),
            8 as c_long,
        )
    };
}

/// `RLIMIT_NOFILE` as the rlimit lists store resources (the numbers are `u32` on glibc and
/// `c_int` on musl): `close_and_exec` sets it apart from the others.
#[allow(clippy::unnecessary_cast)]
pub const RLIMIT_NOFILE: u32 = libc::RLIMIT_NOFILE as u32;

/// This process's limit of `resource` as (soft, hard), which the command inherits; if it cannot
/// be read (it always can), "unlimited", so that the policy's limit applies as it is.
pub fn inherited_limit(resource: u32) -> (u64, u64) {
    let mut rl = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // The resource is `u32` on glibc and `c_int` on musl.
    // SAFETY: a valid out-pointer.
    if unsafe { libc::getrlimit(resource as _, &mut rl) } != 0 {
        return (u64::MAX, u64::MAX);
    }
    (rl.rlim_cur, rl.rlim_max)
}

/// Sets the soft and hard values of an rlimit of the calling process with the raw `prlimit64`
/// syscall (see above). Returns the syscall's result.
fn set_rlimit(resource: u32, soft: u64, hard: u64) -> c_long {
    let rl = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: a valid struct; pid 0 is the caller; no old value is asked for.
    unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as c_long,
            c_long::from(resource),
            &rl as *const libc::rlimit,
            std::ptr::null_mut::<libc::rlimit>(),
        )
    }
}

fn report(fd: RawFd, kind: u32, a: i32, b: i32) {
    let mut rec = [0u8; 12];
    rec[0..4].copy_from_slice(&kind.to_ne_bytes());
    rec[4..8].copy_from_slice(&a.to_ne_bytes());
    rec[8..12].copy_from_slice(&b.to_ne_bytes());
    // SAFETY: valid buffer; 12 bytes < PIPE_BUF, so the write is atomic.
    unsafe { libc::write(fd, rec.as_ptr().cast(), rec.len()) };
}

fn fail(p: &Prepared, step: i32) -> ! {
    fail_fd(p.report_fd, step)
}

fn fail_fd(report_fd: RawFd, step: i32) -> ! {
    let e = errno();
    report(report_fd, MSG_SETUP, step, e);
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(125) }
}

fn check(p: &Prepared, step: i32, r: c_long) {
    check_fd(p.report_fd, step, r);
}

fn check_fd(report_fd: RawFd, step: i32, r: c_long) {
    if r < 0 {
        fail_fd(report_fd, step);
    }
}

/// An `O_PATH` descriptor of the directory at absolute `path`, refusing symlinks anywhere on
/// the way; negative on failure (errno set).
fn open_dir_nofollow(path: &CStr) -> c_int {
    openat2_raw(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, RESOLVE_NO_SYMLINKS)
}

/// Hides what is at a path: `open` it (without following symlinks), then `mount_over` the fd.
/// Mounting on a name unlinked since the open fails with `ENOENT`. That happens when a host
/// socket's server exits, or when an editor saves a deny-read file by renaming a new one over
/// it; the path is then reopened, so that a replacement gets hidden too. Returns 0 when
/// nothing (or a symlink) is left at the path, or the caller cannot reach it: nothing to hide
/// there.
fn hide(open: impl Fn() -> c_int, mount_over: impl Fn(c_int) -> c_long) -> c_long {
    for _ in 0..4 {
        let fd = open();
        if fd < 0 {
            // Gone, a symlink now, or out of the caller's reach: nothing to hide. Anything
            // else (out of fds, a directory replaced by a file) fails the launch.
            return if matches!(errno(), libc::ENOENT | libc::ELOOP | libc::EACCES) { 0 } else { -1 };
        }
        let r = mount_over(fd);
        let replaced = r < 0 && errno() == libc::ENOENT;
        close(fd);
        if !replaced {
            return r;
        }
    }
    // SAFETY: setting errno for the report.
    unsafe { *libc::__errno_location() = libc::ENOENT };
    -1
}

fn openat2_raw(dirfd: c_int, path: &CStr, flags: c_int, resolve: u64) -> c_int {
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: 0, resolve };
    // SAFETY: valid C string and struct.
    unsafe { libc::syscall(SYS_OPENAT2, dirfd, path.as_ptr(), &how, std::mem::size_of::<OpenHow>()) as c_int }
}

fn setattr(fd: c_int, path: &CStr, flags: u32, set: u64, clr: u64) -> c_long {
    let attr = MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 };
    // SAFETY: valid C string and struct.
    unsafe { libc::syscall(SYS_MOUNT_SETATTR, fd, path.as_ptr(), flags, &attr, std::mem::size_of::<MountAttr>()) }
}

/// Clones the mount at `src_fd` (recursively), sets attributes, and attaches it on `dst_fd`.
/// Binds `src_fd` onto `dst_fd` as it is (open_tree clone, move_mount); attributes are left
/// to a later `mount_setattr`.
fn move_tree(src_fd: c_int, dst_fd: c_int, recursive: bool) -> c_long {
    bind_with(src_fd, dst_fd, None, recursive)
}

/// Whether `fd` is a regular file (an `fstat` that cannot fail on a valid fd).
fn is_regular(fd: c_int) -> bool {
    // SAFETY: zeroed stat is a valid out buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out buffer.
    unsafe { libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG }
}

/// [`ChildOp::KeepFile`]: in the hidden directory `dir`'s fresh tmpfs, the parents of `rel`,
/// an empty file at `rel`, `src` bound over it read-only (nothing when `src` is -1: the file
/// was gone), and with `seal` the tmpfs made read-only. Nothing here follows a link: the tmpfs
/// is our own, and empty until now.
fn keep_file(dir: &CStr, parents: &[std::ffi::CString], rel: &CStr, src: c_int, seal: bool) -> c_long {
    let all = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let dfd = open_dir_nofollow(dir);
    if dfd < 0 {
        return -1;
    }
    let r = (|| {
        if src < 0 {
            return if seal { setattr(dfd, c"", libc::AT_EMPTY_PATH as u32, MOUNT_ATTR_RDONLY, 0) } else { 0 };
        }
        for d in parents {
            // SAFETY: valid fd and C string.
            if unsafe { libc::mkdirat(dfd, d.as_ptr(), 0o755) } < 0 && errno() != libc::EEXIST {
                return -1;
            }
        }
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and C string.
        let made = unsafe { libc::openat(dfd, rel.as_ptr(), flags, 0o644) };
        if made < 0 {
            return -1;
        }
        close(made);
        let target = openat2_raw(dfd, rel, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if target < 0 {
            return -1;
        }
        let bound = bind_fd(src, target, MOUNT_ATTR_RDONLY | all, 0, false);
        close(target);
        if bound < 0 {
            return -1;
        }
        if seal {
            return setattr(dfd, c"", libc::AT_EMPTY_PATH as u32, MOUNT_ATTR_RDONLY, 0);
        }
        0
    })();
    close(dfd);
    r
}

fn bind_fd(src_fd: c_int, dst_fd: c_int, set: u64, clr: u64, recursive: bool) -> c_long {
    bind_with(src_fd, dst_fd, Some((set, clr)), recursive)
}

fn bind_with(src_fd: c_int, dst_fd: c_int, attrs: Option<(u64, u64)>, recursive: bool) -> c_long {
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: valid fd and empty C string.
    let tree = unsafe {
        libc::syscall(
            SYS_OPEN_TREE,
            src_fd,
            c"".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32 | rec,
        )
    } as c_int;
    if tree < 0 {
        return -1;
    }
    if let Some((set, clr)) = attrs {
        if setattr(tree, c"", libc::AT_EMPTY_PATH as u32 | rec, set, clr) < 0 {
            // SAFETY: our fd.
            unsafe { libc::close(tree) };
            return -1;
        }
    }
    // SAFETY: valid fds and empty C strings.
    let r = unsafe {
        libc::syscall(
            SYS_MOVE_MOUNT,
            tree,
            c"".as_ptr(),
            dst_fd,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    // SAFETY: our fd.
    unsafe { libc::close(tree) };
    r
}

fn mount_raw(src: &CStr, target: &CStr, fstype: &CStr, flags: libc::c_ulong, data: Option<&CStr>) -> c_long {
    // SAFETY: valid C strings (data may be NULL).
    unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr()).cast(),
        ) as c_long
    }
}

/// Opens (O_PATH, no symlinks) a mount target, creating it when it is missing (which only
/// succeeds inside our own tmpfs mounts: the rest of the tree is read-only by then).
fn open_target(path: &CStr, dir: bool) -> c_int {
    let fd = openat2_raw(libc::AT_FDCWD, path, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    if fd >= 0 || errno() != libc::ENOENT {
        return fd;
    }
    // mkdir -p, component by component, on the raw bytes.
    let bytes = path.to_bytes_with_nul();
    let mut buf = [0u8; 4096];
    if bytes.len() > buf.len() {
        return -1;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    let n = bytes.len() - 1;
    for i in 1..=n {
        if i == n || buf[i] == b'/' {
            let last = i == n;
            let saved = buf[i];
            buf[i] = 0;
            // SAFETY: buf[..=i] is NUL-terminated.
            let c = unsafe { CStr::from_bytes_with_nul_unchecked(&buf[..=i]) };
            let r = if last && !dir {
                // SAFETY: valid C string.
                let f = unsafe {
                    libc::open(c.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW, 0o644)
                };
                if f >= 0 {
                    // SAFETY: our fd.
                    unsafe { libc::close(f) };
                    0
                } else {
                    -1
                }
            } else {
                // SAFETY: valid C string.
                unsafe { libc::mkdir(c.as_ptr(), 0o755) }
            };
            if r < 0 && errno() != libc::EEXIST {
                return -1;
            }
            buf[i] = saved;
        }
    }
    openat2_raw(libc::AT_FDCWD, path, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE_NO_SYMLINKS)
}

fn close(fd: c_int) {
    if fd >= 0 {
        // SAFETY: closing an fd we opened.
        unsafe { libc::close(fd) };
    }
}

fn apply_mounts(p: &Prepared) {
    let ns = libc::MS_NOSUID | libc::MS_NODEV;
    let all = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    // Sources that must be opened before any tmpfs covers them (a root below /tmp).
    let mut src = [-1 as c_int; crate::prepare::MAX_WRITABLE_ROOTS];
    for (i, op) in p.ops.iter().enumerate() {
        if let ChildOp::BindWritable { path, slot } = op {
            src[*slot] = open_dir_nofollow(path);
            if src[*slot] < 0 {
                fail(p, i as i32);
            }
        }
    }
    // The same for the host files the view keeps below a hidden directory. One gone since the
    // supervisor looked (`ENOENT`) is not kept; one that is not a regular file reached without
    // following a link ends the run.
    let mut kept = [-1 as c_int; crate::prepare::MAX_KEPT_FILES];
    for (i, op) in p.ops.iter().enumerate() {
        if let ChildOp::KeepFile { source, slot, .. } = op {
            let fd = openat2_raw(libc::AT_FDCWD, source, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
            if fd < 0 && errno() == libc::ENOENT {
                continue;
            }
            if fd < 0 {
                fail(p, i as i32);
            }
            if !is_regular(fd) {
                // SAFETY: this thread's errno; the step's message names the cause.
                unsafe { *libc::__errno_location() = libc::EINVAL };
                fail(p, i as i32);
            }
            kept[*slot] = fd;
        }
    }
    let mut devs = [-1 as c_int; 6];
    for (k, name) in p.dev_nodes.iter().enumerate() {
        devs[k] = openat2_raw(libc::AT_FDCWD, name, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    }
    let null_fd = devs[0];
    let mut last_root: (Option<&CStr>, c_int) = (None, -1);
    for (i, op) in p.ops.iter().enumerate() {
        let i32i = i as i32;
        match op {
            ChildOp::MakePrivate => {
                check(p, i32i, mount_raw(c"none", c"/", c"", libc::MS_REC | libc::MS_PRIVATE, None));
            }
            ChildOp::ReadOnlyRoot => {
                check(p, i32i, setattr(libc::AT_FDCWD, c"/", AT_RECURSIVE, MOUNT_ATTR_RDONLY | all, 0));
            }
            ChildOp::HideDir { path, opts, rdonly } => {
                let ro = if *rdonly { libc::MS_RDONLY } else { 0 };
                let r = hide(
                    || open_dir_nofollow(path),
                    |fd| {
                        let target = fd_path(fd);
                        mount_raw(c"tmpfs", target.as_cstr(), c"tmpfs", ns | libc::MS_NOEXEC | ro, Some(opts))
                    },
                );
                check(p, i32i, r);
            }
            ChildOp::KeepFile { dir, parents, rel, slot, seal, .. } => {
                check(p, i32i, keep_file(dir, parents, rel, kept[*slot], *seal));
                if kept[*slot] >= 0 {
                    close(kept[*slot]);
                }
            }
            ChildOp::HideFile { path } => {
                let r = hide(
                    || openat2_raw(libc::AT_FDCWD, path, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE_NO_SYMLINKS),
                    |fd| bind_fd(null_fd, fd, MOUNT_ATTR_RDONLY | all | MOUNT_ATTR_NOEXEC, 0, false),
                );
                check(p, i32i, r);
            }
            ChildOp::Tmpfs { path, opts } => {
                check(p, i32i, mount_raw(c"tmpfs", path, c"tmpfs", ns, Some(opts)));
            }
            ChildOp::BindWritable { path, slot } => {
                let dst = open_target(path, true);
                if dst < 0 {
                    fail(p, i32i);
                }
                let r = bind_fd(src[*slot], dst, all, MOUNT_ATTR_RDONLY, true);
                close(dst);
                close(src[*slot]);
                check(p, i32i, r);
            }
            ChildOp::BindReadOnly { root, rel, id } | ChildOp::Pin { root, rel, id } => {
                // Consecutive steps below the same root (the protected paths of a workspace)
                // share one descriptor of it; a new root is opened after the previous steps'
                // mounts, exactly as when each step opened its own.
                if last_root.0 != Some(root.as_c_str()) {
                    close(last_root.1);
                    let rfd = open_dir_nofollow(root);
                    if rfd < 0 {
                        fail(p, i32i);
                    }
                    last_root = (Some(root.as_c_str()), rfd);
                }
                let fd = openat2_raw(
                    last_root.1,
                    rel,
                    libc::O_PATH | libc::O_NOFOLLOW,
                    RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
                );
                if fd < 0 {
                    fail(p, i32i);
                }
                // The same inode the supervisor examined (and, for a placeholder, created):
                // anything else means the tree was swapped meanwhile, so fail closed.
                // SAFETY: a zeroed `stat` is a valid out-parameter; fd is open.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: as above.
                if unsafe { libc::fstat(fd, &mut st) } < 0 || (st.st_dev, st.st_ino) != *id {
                    // SAFETY: setting errno for the report.
                    unsafe { *libc::__errno_location() = libc::ESTALE };
                    fail(p, i32i);
                }
                let (set, clr) = if matches!(op, ChildOp::Pin { .. }) {
                    (all, MOUNT_ATTR_RDONLY)
                } else {
                    (MOUNT_ATTR_RDONLY | all, 0)
                };
                let r = bind_fd(fd, fd, set, clr, true);
                close(fd);
                check(p, i32i, r);
                if rel.is_empty() {
                    // The root itself was just covered: later steps must open the new mount.
                    close(last_root.1);
                    last_root = (None, -1);
                }
            }
            ChildOp::Dev { shm_opts } => {
                check(
                    p,
                    i32i,
                    mount_raw(
                        c"tmpfs",
                        c"/dev",
                        c"tmpfs",
                        libc::MS_NOSUID | libc::MS_NOEXEC,
                        Some(c"mode=0755,size=65536"),
                    ),
                );
                // SAFETY: constant C strings.
                unsafe {
                    libc::mkdir(c"/dev/pts".as_ptr(), 0o755);
                    libc::symlink(c"pts/ptmx".as_ptr(), c"/dev/ptmx".as_ptr());
                    libc::symlink(c"/proc/self/fd".as_ptr(), c"/dev/fd".as_ptr());
                    libc::symlink(c"/proc/self/fd/0".as_ptr(), c"/dev/stdin".as_ptr());
                    libc::symlink(c"/proc/self/fd/1".as_ptr(), c"/dev/stdout".as_ptr());
                    libc::symlink(c"/proc/self/fd/2".as_ptr(), c"/dev/stderr".as_ptr());
                    if shm_opts.is_some() {
                        libc::mkdir(c"/dev/shm".as_ptr(), 0o1777);
                    }
                }
                for (k, name) in p.dev_nodes.iter().enumerate() {
                    if devs[k] < 0 {
                        continue;
                    }
                    // A fresh tmpfs: create the file the node is bound onto, and bind onto it.
                    // SAFETY: valid C string.
                    let dst = unsafe {
                        libc::open(
                            name.as_ptr(),
                            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                            0o644,
                        )
                    };
                    if dst < 0 {
                        fail(p, i32i);
                    }
                    let r = move_tree(devs[k], dst, false);
                    close(dst);
                    check(p, i32i, r);
                }
                // One pass for the tmpfs and the device binds: read-only (writes to a device node
                // are allowed on a read-only mount, but chmod/chown of the host's node are not),
                // nosuid, noexec, device access allowed. devpts and shm are mounted after it.
                check(
                    p,
                    i32i,
                    setattr(
                        libc::AT_FDCWD,
                        c"/dev",
                        AT_RECURSIVE,
                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                        MOUNT_ATTR_NODEV,
                    ),
                );
                check(
                    p,
                    i32i,
                    mount_raw(
                        c"devpts",
                        c"/dev/pts",
                        c"devpts",
                        libc::MS_NOSUID | libc::MS_NOEXEC,
                        Some(c"newinstance,ptmxmode=0666,mode=620"),
                    ),
                );
                if let Some(opts) = shm_opts {
                    check(p, i32i, mount_raw(c"tmpfs", c"/dev/shm", c"tmpfs", ns, Some(opts)));
                }
                // `/dev` is done (no later step mounts below it): the command may add its
                // Landlock rules there while the rest is built.
                futex::set(&p.dev_ready, 1);
            }
            ChildOp::Proc => {
                // hidepid=ptraceable (Linux 5.8+) hides the processes the caller cannot
                // ptrace: pid 1 (it keeps capabilities the command lacks). Its /proc files
                // would otherwise reach the supervisor, whose address space it shares: writing
                // its oom_score_adj, coredump_filter or clear_refs acts on the supervisor too.
                let r = mount_raw(c"proc", c"/proc", c"proc", ns | libc::MS_NOEXEC, Some(c"hidepid=ptraceable"));
                let r = if r < 0 && errno() == libc::EINVAL {
                    mount_raw(c"proc", c"/proc", c"proc", ns | libc::MS_NOEXEC, None)
                } else {
                    r
                };
                check(p, i32i, r);
                let fd =
                    openat2_raw(libc::AT_FDCWD, c"/proc/sys", libc::O_PATH | libc::O_DIRECTORY, RESOLVE_NO_SYMLINKS);
                if fd < 0 {
                    fail(p, i32i);
                }
                let r = bind_fd(fd, fd, MOUNT_ATTR_RDONLY | all | MOUNT_ATTR_NOEXEC, 0, true);
                close(fd);
                check(p, i32i, r);
            }
        }
    }
    close(last_root.1);
    for fd in devs {
        close(fd);
    }
}

/// `/proc/self/fd/N` as a C string in a stack buffer.
struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    fn as_cstr(&self) -> &CStr {
        let end = self.buf.iter().position(|&b| b == 0).unwrap_or(self.buf.len() - 1);
        // SAFETY: we wrote a NUL at `end`.
        unsafe { CStr::from_bytes_with_nul_unchecked(&self.buf[..=end]) }
    }
}

fn fd_path(fd: c_int) -> FdPath {
    let mut buf = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 12];
    let mut n = fd.max(0) as u32;
    let mut k = 0;
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for j in 0..k {
        buf[prefix.len() + j] = digits[k - 1 - j];
    }
    FdPath { buf }
}

fn loopback_up() -> c_long {
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return -1;
    }
    // SAFETY: zeroed ifreq is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // The request is `c_ulong` on glibc, `c_int` on musl.
    // SAFETY: valid socket and ifreq.
    let r = unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS as _, &ifr) };
    close(s);
    r as c_long
}

extern "C" fn noop_handler(_: c_int) {}

/// Entry of the sandbox's pid 1 (namespaces implementation), cloned by the thread of [`spawn_launcher`] into
/// its new namespaces: while the supervisor prepares the run (and maps pid 1's ids, see
/// `LaunchedInit::map_ids`), it brings loopback up if the allowlist bridge needs it, and makes the
/// IPC and UTS namespaces (and the host name) that the command will inherit; then it waits for the
/// go message and continues in [`init_run`]. Never returns.
fn init_entry(start: &InitStart) -> ! {
    let fd = start.report_fd;
    // Pid 1 copied the supervisor's signal handlers when it was cloned, and shares its memory:
    // a handler run here would run the supervisor's code on the supervisor's data. Every
    // signal is blocked (the launching thread blocked all but the two or three its libc keeps
    // for itself) and goes back to its default (for the init of a pid namespace, that means
    // ignored unless it is SIGKILL).
    block_every_signal();
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            reset_signal(sig);
        }
    }
    if let Some(cpus) = &start.cpus {
        // SAFETY: valid set of the size passed. Best effort: failing leaves a narrower set.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), cpus) };
    }
    // SAFETY: prctl with integer args.
    check_fd(fd, step::PDEATHSIG, unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as c_long);
    // A supervisor that died before PDEATHSIG was armed shows as a readable pidfd.
    let mut pfd = libc::pollfd { fd: start.sync_fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
        // SAFETY: always safe.
        unsafe { libc::_exit(125) };
    }
    // `sync_fd` stays open: a pid 1 that outlives its run waits on it (`wait_for_release`).
    close(start.go_write_fd());
    // Its uid and gid maps are written by the supervisor before the go message
    // (`LaunchedInit::map_ids`).
    if start.loopback {
        check_fd(fd, step::LOOPBACK, loopback_up());
    }
    // The IPC and UTS namespaces, made here rather than in the clone, and before the command is
    // cloned, which inherits them: here they run beside the supervisor's preparation, where in
    // the command, after the go message, they were on the path the run waits for. Pid 1 uses
    // neither (no System V IPC; it never reads its host name).
    // SAFETY: unshare with constant flags.
    check_fd(fd, step::IPC_UTS, unsafe { libc::unshare(libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) } as c_long);
    // SAFETY: valid buffer of the length passed.
    check_fd(fd, step::HOSTNAME, unsafe { libc::sethostname(c"stockade".as_ptr(), 8) } as c_long);
    poll_briefly(|| start.go_posted.load(Ordering::Acquire) != 0);
    let addr = next_go_message(start.go_fd);
    // go_fd stays open: a pid 1 that outlives its run waits on it to be released.
    if addr == [0u8; 8] {
        // SAFETY: always safe.
        unsafe { libc::_exit(125) };
    }
    // SAFETY: the supervisor sent the address of its `Prepared`, which the launching thread
    // keeps alive until this process is reaped (see `launch`).
    let p = unsafe { &*(usize::from_ne_bytes(addr) as *const Prepared) };
    init_run(p)
}

/// How long [`poll_briefly`] looks before giving up.
const POLL_BUDGET_NS: u64 = 500_000;

/// Looks at `done` until it holds, for at most [`POLL_BUDGET_NS`], yielding the CPU between
/// looks; the caller then sleeps until it holds. Pid 1 waits so for the go message and the
/// command for the end of the mounts, both usually a fraction of a millisecond away. Woken
/// from sleep, a process waits for its virtual CPU to leave the halted state, which took tens
/// of microseconds here (the hypervisor has to deliver an interrupt to it); yielding instead
/// keeps the CPU awake and still lets anything else on it run. Neither call fails, so neither
/// touches the `errno` the sandbox's processes share.
fn poll_briefly(done: impl Fn() -> bool) {
    let start = monotonic_ns();
    while !done() && monotonic_ns().saturating_sub(start) < POLL_BUDGET_NS {
        // SAFETY: no arguments.
        unsafe { libc::sched_yield() };
    }
}

/// Waits until `word` is no longer 0 (looking first, see [`poll_briefly`]) and returns it.
fn wait_for_word(word: &std::sync::atomic::AtomicU32) -> u32 {
    poll_briefly(|| word.load(Ordering::Acquire) != 0);
    futex::wait_set(word)
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The next 8-byte message on pid 1's go socket. If the supervisor closed its end or gave up,
/// pid 1 exits quietly with 125: the supervisor knows why.
fn next_go_message(fd: c_int) -> [u8; 8] {
    let mut msg = [0u8; 8];
    let mut got = 0;
    while got < msg.len() {
        // SAFETY: valid buffer range.
        let n = unsafe { libc::read(fd, msg[got..].as_mut_ptr().cast(), msg.len() - got) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            // SAFETY: always safe.
            unsafe { libc::_exit(125) };
        }
        got += n as usize;
    }
    msg
}

/// Pid 1 after the go message: starts the command, builds the mount view while the command
/// joins the run's cgroups and restricts itself, lets it exec, and reaps until it ends. Pid 1
/// stays outside the run's cgroups: it only reaps, and joining was its first step, on the path
/// the mounts wait for. Never returns.
fn init_run(p: &Prepared) -> ! {
    // Block the signals we handle, so none is lost between fork and sigwaitinfo.
    // SAFETY: sigset manipulation on a local.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::sigemptyset(&mut set) };
    let sigs = [
        libc::SIGCHLD,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCONT,
        libc::SIGTSTP,
    ];
    for s in sigs {
        // SAFETY: installs a no-op handler (so pid 1 is not immune to them) and adds to the set.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = noop_handler as *const () as usize;
            libc::sigaction(s, &sa, std::ptr::null_mut());
            libc::sigaddset(&mut set, s);
        }
    }
    // Everything stays blocked (as inherited from the launching thread): these are taken with
    // sigwaitinfo below, so no handler ever runs in pid 1, and no other signal is delivered.
    // The no-op handlers only make them deliverable to the init of a pid namespace.
    // SAFETY: valid set.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };

    // The command is started now, before the mount view exists, so that it drops its
    // privileges and installs its seccomp filter on the other core while pid 1 mounts; it
    // waits for `proceed` before it looks at any path (see `command_in_sandbox`). It shares
    // our memory until it execs (like posix_spawn), on its own stack.
    let Some(stack) = &p.child_stack else { fail(p, step::FORK) };
    // Straight into the run's cgroup v2 group, if it has one (see `clone3`): the command could
    // not move itself there cheaply, as it joins v1 groups. Where that fails, without it.
    let into_group = p.cgroup2_name.as_ref().and_then(|name| {
        let group = openat2_raw(
            p.cgroup2_parent,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY,
            RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
        );
        if group < 0 {
            p.cgroup2_missed.store(errno(), Ordering::Relaxed);
            return None;
        }
        let (base, len) = stack.region();
        // SAFETY: as for `clone` below; `clone3_vm` writes no `errno`.
        let r = unsafe { clone3_vm(0, command_trampoline, p as *const Prepared as *mut c_void, base, len, group) };
        close(group);
        r.map_err(|e| p.cgroup2_missed.store(e.raw_os_error().unwrap_or(libc::EINVAL), Ordering::Relaxed)).ok()
    });
    let child = match into_group {
        Some(pid) => pid,
        // SAFETY: the stack is a mapping of its own that nothing else uses, alive as long as
        // `p`; the callee never returns into our frames and only reads `p` (and sets nothing
        // of ours but `errno`, see `command_in_sandbox`).
        None => unsafe {
            libc::clone(
                command_trampoline,
                stack.top(),
                libc::CLONE_VM | libc::SIGCHLD,
                p as *const Prepared as *mut c_void,
            )
        },
    };
    if child < 0 {
        fail(p, step::FORK);
    }
    if let Some(cpus) = &p.cpus {
        move_to_another_cpu(child, cpus);
    }
    // The command joins through its own copies (see `join_cgroups`). A one-shot run's pid 1
    // keeps the roots of the groups it will remove at the end (`remove_run_groups`), and only
    // those: the command cannot reach pid 1's fds (it may not ptrace pid 1, which `/proc` also
    // hides from it), but what pid 1 does not hold cannot leak.
    for (slot, fd) in p.cgroup_roots.iter().enumerate() {
        let kept = p.exit_with_supervisor && p.cgroup_name.is_some() && p.cgroup_joins.iter().any(|(s, _)| *s == slot);
        if *fd >= 0 && !kept {
            close(*fd);
        }
    }
    if !(p.exit_with_supervisor && p.cgroup2_name.is_some()) {
        close(p.cgroup2_parent);
    }
    // The command has its own copies of stdin, stdout and stderr. Pid 1 never uses them, and a
    // caller reading the command's output through pipes waits for every copy to close:
    // without this, its end of file would wait for pid 1's exit, after the supervisor's.
    // (Rust's runtime opens 0 to 2 at start, so none of pid 1's own fds has those numbers;
    // the check keeps that from mattering.)
    let keep = [p.report_fd, p.go_fd, p.launcher_done_fd, p.supervisor_pidfd];
    for fd in (0..=2).filter(|fd| !keep.contains(fd) && Some(*fd) != p.stdio_null) {
        close(fd);
    }
    apply_mounts(p);
    if p.loopback {
        // Here, after the mounts, where pid 1 usually waits for the command to finish setting
        // itself up; it was on the command's path before.
        check(p, step::LOOPBACK, loopback_up());
    }
    if p.bridge_fd >= 0 {
        check(p, step::BRIDGE, send_bridge_listener(p.bridge_fd, p.bridge_port));
        close(p.bridge_fd);
    }
    // The supervisor looks at the workspace's repositories before the command starts (see
    // `git_nested`) and says when it is done: one more message on the go socket, usually
    // queued long before the mounts are.
    next_go_message(p.go_fd);
    futex::set(&p.dev_ready, 1); // a plan without `/dev` still lets the command on
    futex::set(&p.proceed, 1);
    report(p.report_fd, MSG_STARTED, 0, 0);

    loop {
        // SAFETY: valid set; info may be NULL.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if sig == libc::SIGCHLD {
            loop {
                let mut st = 0;
                // SAFETY: valid out-pointer.
                let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
                if pid == child {
                    // Kill whatever the command left behind and reap it all, so that when the
                    // supervisor reads the status nothing of the sandbox runs any more; only
                    // our own exit (kernel teardown of the namespaces) remains.
                    reap_the_rest();

                    if p.exit_with_supervisor {
                        // Before the report: the supervisor may exit as soon as it has read it,
                        // and its exit ends the launching thread, which with PDEATHSIG armed
                        // would kill this process before it removed the run's cgroups, leaving
                        // them to the next run's sweep (seen once in CI). Nothing of the sandbox
                        // runs any more, and the supervisor's pidfd stands in from here (see
                        // `wait_for_release`).
                        // SAFETY: prctl with integer args (this call cannot fail).
                        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
                    }
                    report(p.report_fd, MSG_EXIT, st, 0);
                    if p.exit_with_supervisor {
                        wait_for_release(p);
                    }
                    // SAFETY: always safe.
                    unsafe { libc::_exit(0) };
                }
                if pid <= 0 {
                    break;
                }
            }
        } else if sig > 0 {
            if sig == libc::SIGTSTP {
                continue;
            }
            // The command leads its own session and process group.
            // SAFETY: plain kill.
            if unsafe { libc::kill(-child, sig) } < 0 {
                kill(child, sig);
            }
        }
    }
}

/// Pid 1, once the command has been reaped: kills and reaps every other process of the
/// sandbox. Every process the sandbox started that is still alive descends from a child of
/// pid 1 (orphans are reparented to it), so when pid 1 has no child left, nothing else runs:
/// the common case then skips `kill(-1)`, which walks every process of the host. (A process a
/// privileged host process moved into the pid namespace with `setns` has its parent outside;
/// the sandbox itself cannot do that, and such a process dies with pid 1.)
fn reap_the_rest() {
    let mut other = 0;
    loop {
        // SAFETY: valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut other, libc::WNOHANG) };
        if r > 0 || (r < 0 && errno() == libc::EINTR) {
            continue;
        }
        if r < 0 {
            return; // ECHILD: no process left
        }
        break;
    }
    kill(-1, libc::SIGKILL);
    // SAFETY: valid out-pointer.
    while unsafe { libc::waitpid(-1, &mut other, 0) } > 0 || errno() == libc::EINTR {}
}

/// Confines `pid` to the CPUs of `allowed` other than the caller's, if there are any. A new
/// process starts on its parent's CPU, and the scheduler leaves it queued there for a while
/// even when another CPU is idle; the command would then wait for pid 1's mounts instead of
/// restricting itself beside them. It takes `allowed` back before it execs.
fn move_to_another_cpu(pid: libc::pid_t, allowed: &libc::cpu_set_t) {
    if let Some(others) = cpus_besides_current(allowed) {
        // SAFETY: a valid set of the size passed.
        unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &others) };
    }
}

/// `allowed` without the CPU the caller runs on, or `None` if that leaves none (or the CPU is
/// unknown).
fn cpus_besides_current(allowed: &libc::cpu_set_t) -> Option<libc::cpu_set_t> {
    let here = current_cpu()?;
    let mut others = *allowed;
    // SAFETY: a local set; `here` is a CPU number the kernel gave, below CPU_SETSIZE.
    unsafe {
        libc::CPU_CLR(here as usize, &mut others);
        (libc::CPU_COUNT(&others) > 0).then_some(others)
    }
}

/// The CPU the caller runs on. A raw `getcpu`: glibc's `sched_getcpu` reads the calling
/// thread's rseq area, and pid 1 and the command run with the launching thread's, which the
/// kernel does not update for them.
fn current_cpu() -> Option<u32> {
    let mut here: libc::c_uint = 0;
    // SAFETY: getcpu with a valid out-pointer and two NULLs.
    let r = unsafe {
        libc::syscall(libc::SYS_getcpu, &mut here, std::ptr::null_mut::<c_void>(), std::ptr::null_mut::<c_void>())
    };
    (r >= 0).then_some(here)
}

/// Pid 1 of a one-shot run, after the command's end was reported (with `PR_SET_PDEATHSIG`
/// disarmed before that, see `init_run`): waits until the supervisor process is gone or
/// releases it (a message on the go socket, see `LaunchedInit::release`), without the thread
/// that launched it, which it lets go.
///
/// "Gone" is read from a pidfd of the supervisor, not from the end of file on the go socket.
/// An exiting process closes its fds before its parent is told: the end of file woke this
/// process while the supervisor was still exiting, and when that was on the same CPU, its
/// teardown of the namespaces (0.2 to 0.4 ms) ran first, before the caller learnt that the CLI
/// had exited (15 of 102 traced runs). The pidfd is woken together with the caller, under the
/// same lock. An end of file without that (a library caller that exec'd) ends the wait after
/// [`RELEASE_GRACE_MS`].
///
/// That thread's TLS is the one this process runs with, and it goes away with the thread; so
/// once the thread is told, nothing here may touch TLS: rustix's raw system calls leave `errno`
/// alone, and `_exit` is a bare system call in both C libraries (bound at load time: Rust links
/// with `-z now`, and the musl build is static).
fn wait_for_release(p: &Prepared) -> ! {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let (go, done) = (p.go_fd, p.launcher_done_fd);
    if done >= 0 {
        // SAFETY: pid 1's copy of the pipe's write end, open until it exits.
        let _ = rustix::io::write(unsafe { rustix::fd::BorrowedFd::borrow_raw(done) }, &[1]);
    }
    // SAFETY: pid 1's end of the go socket and its copy of the supervisor's pidfd, both open
    // until it exits.
    let (go, sup) =
        unsafe { (rustix::fd::BorrowedFd::borrow_raw(go), rustix::fd::BorrowedFd::borrow_raw(p.supervisor_pidfd)) };
    let mut go_open = true;
    // Whether the run is over for sure: the supervisor process is gone, or it released pid 1
    // (its next run's groups get other names). A supervisor that exec'd keeps its pid, and its
    // new image numbers its groups from 0 again: those are left to the sweep.
    let over = loop {
        let grace = Timespec { tv_sec: 0, tv_nsec: RELEASE_GRACE_MS * 1_000_000 };
        let mut both = [PollFd::new(&sup, PollFlags::IN), PollFd::new(&go, PollFlags::IN)];
        let fds = if go_open { &mut both[..] } else { &mut both[..1] };
        match poll(fds, (!go_open).then_some(&grace)) {
            Ok(0) => break false, // end of file long ago, and the supervisor still there: it exec'd
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break false,
        }
        if !fds[0].revents().is_empty() {
            break true;
        }
        let mut b = [0u8; 8];
        match rustix::io::read(go, &mut b) {
            Ok(0) => go_open = false,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Ok(_) => break true, // released
            Err(_) => break false,
        }
    };
    if over {
        remove_run_groups(p);
    }
    // SAFETY: always safe.
    unsafe { libc::_exit(0) }
}

/// Removes the run's cgroups (root callers, see `cgroup`), which only the command's tree used,
/// all of it reaped by now. A one-shot caller (the CLI) exits before the thread that reaps pid
/// 1 could remove them; the next run's sweep did, while that run's command ran (in A/B runs,
/// `git status` took 45 to 79 µs longer that way). Done here, after the caller is gone, the
/// sweep normally finds nothing. The controllers' roots are pid 1's copies of the host's
/// mounts, kept for this (see `init_run`). Raw calls: nothing here writes `errno`.
fn remove_run_groups(p: &Prepared) {
    if let (Some(name), true) = (&p.cgroup2_name, p.cgroup2_parent >= 0) {
        // SAFETY: pid 1's copy of the group's parent, open until it exits.
        let parent = unsafe { rustix::fd::BorrowedFd::borrow_raw(p.cgroup2_parent) };
        let _ = rustix::fs::unlinkat(parent, name.as_c_str(), rustix::fs::AtFlags::REMOVEDIR);
    }
    let Some(name) = &p.cgroup_name else { return };
    let made = p.cgroups_ready.load(Ordering::Acquire);
    for (slot, _) in &p.cgroup_joins {
        // No indexing that could panic: the thread whose TLS a panic would use is gone.
        let root = p.cgroup_roots.get(*slot).copied().unwrap_or(-1);
        if root >= 0 && made & (1 << *slot) != 0 {
            // SAFETY: pid 1's copy of the controller's root, open until it exits.
            let root = unsafe { rustix::fd::BorrowedFd::borrow_raw(root) };
            let _ = rustix::fs::unlinkat(root, name.as_c_str(), rustix::fs::AtFlags::REMOVEDIR);
        }
    }
}

/// How long a retired pid 1 waits for the supervisor's exit once the go socket reached end of
/// file (see [`wait_for_release`]); the exit usually follows within microseconds.
const RELEASE_GRACE_MS: i64 = 100;

extern "C" fn command_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `&Prepared` pid 1 passed to clone, alive until pid 1 is reaped.
    let p = unsafe { &*(arg as *const Prepared) };
    command_in_sandbox(p)
}

/// The command joins the run's groups, once the supervisor has made them (under `namespaces`
/// after the go message), through the controllers' roots opened before the sandbox existed (see
/// [`crate::cgroup::open_roots`]), then closes those roots. It has not forked yet, so all it
/// starts is counted. Writing `0` to a v1 `tasks` file moves only the writer, without the
/// thread-group lock and RCU grace period that writing a pid costs.
fn join_cgroups(p: &Prepared) {
    if !p.cgroup_joins.is_empty() {
        let made = wait_for_word(&p.cgroups_ready);
        for (slot, rel) in &p.cgroup_joins {
            if made & (1 << slot) == 0 {
                continue; // not made (mkdir refused): the rlimits remain
            }
            let fd = openat2_raw(p.cgroup_roots[*slot], rel, libc::O_WRONLY, RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH);
            check(p, step::CGROUP, fd as c_long);
            // SAFETY: valid buffer; "0" means the calling thread.
            let r = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } as c_long;
            close(fd);
            check(p, step::CGROUP, r);
        }
    }
    for fd in p.cgroup_roots {
        if fd >= 0 {
            close(fd);
        }
    }
}

/// The command under pid 1 (namespaces implementation), started before the mount view is
/// built: beside pid 1's mounts it becomes a fresh process, sets no_new_privs, drops its
/// capabilities, installs the seccomp filter, joins the run's cgroups and adds the Landlock
/// rules whose trees are the same before and after the view is built, then, once pid 1 has
/// built `/dev`, those below it; it waits for `proceed`, then enters the view (working
/// directory, the writable roots' Landlock rules) and execs. Never returns.
///
/// Until `proceed`, the view is unfinished, so nothing before it resolves a path whose answer
/// the view changes (the cgroup join goes through the host's controller roots; for the early
/// Landlock rules see [`crate::landlock_rules::rule_time`]). This process shares
/// pid 1's memory and `errno`. None of its calls before `proceed` fails in a working run, or
/// they return their error rather than store it (the capability loop knows where to stop, see
/// `drop_caps`; its futex waits and Landlock opens go through rustix), and a failure ends the
/// run, so pid 1's mounts and its loopback step, which read `errno` after a failed call, never
/// see a value set here.
/// After `proceed`, pid 1 only reports and waits for signals. (A failure's report may carry a
/// value the other process set meanwhile: only its wording can suffer.)
fn command_in_sandbox(p: &Prepared) -> ! {
    start_process(p);
    no_new_privs(p);
    drop_caps(p);
    install_seccomp(p);
    join_cgroups(p);
    let ruleset = landlock_begin(p);
    wait_for_word(&p.dev_ready);
    add_rules_at(p, ruleset, RuleTime::AfterDev);
    wait_for_word(&p.proceed);
    if let Some(cpus) = &p.cpus {
        // Back to the caller's CPUs (see `move_to_another_cpu`). Best effort: a narrower set
        // only costs speed.
        // SAFETY: a valid set of the size passed.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), cpus) };
    }
    enter_cwd(p);
    landlock_finish(p, ruleset);
    close_and_exec(p)
}

/// Entry of the `landlock-only` command, forked by the supervisor. Never returns. Here the
/// working directory and the Landlock rules are resolved before the capabilities go: a root
/// caller's command then starts in, and is allowed, what root can reach on the host.
pub fn command_main(p: &Prepared) -> ! {
    start_process(p);
    enter_cwd(p);
    no_new_privs(p);
    let ruleset = landlock_begin(p);
    landlock_finish(p, ruleset);
    drop_caps(p);
    install_seccomp(p);
    close_and_exec(p)
}

/// Makes the command a fresh process: default signal dispositions and an empty mask, its own
/// session, stdio, rlimits (and, for `landlock-only`, death with the supervisor and the run's
/// cgroups).
fn start_process(p: &Prepared) {
    // Default dispositions first, with every signal still blocked (as inherited from pid 1, or
    // reset here in a command forked from the supervisor, which inherited Rust's ignored
    // SIGPIPE among others). Under pid 1 the command inherits its no-op handlers: a signal
    // forwarded while pid 1 mounts would run one and be lost, where it must end the command
    // as it would after exec. The raw call cannot fail, so no `errno` is written.
    for s in 1..32 {
        if s != libc::SIGKILL && s != libc::SIGSTOP {
            reset_signal(s);
        }
    }
    // SAFETY: signal-safe calls on locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    if let Some(parent) = p.parent {
        // landlock-only: die with the supervisor (there is no pid namespace to do it).
        // SAFETY: prctl/getppid with integer args.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(125);
            }
        }
        join_cgroups(p);
    }
    // SAFETY: no pointers.
    check(p, step::SETSID, unsafe { libc::setsid() } as c_long);
    if let Some(null) = p.stdio_null {
        for t in 0..3 {
            // SAFETY: valid fds.
            check(p, step::STDIO, unsafe { libc::dup2(null, t) } as c_long);
        }
    }
    // The open-file limit waits for `close_and_exec`: the steps before it open descriptors of
    // their own, and a small limit would refuse them.
    for (res, soft, hard) in p.rlimits.iter().filter(|r| r.0 != RLIMIT_NOFILE) {
        check(p, step::RLIMIT, set_rlimit(*res, *soft, *hard));
    }
}

fn no_new_privs(p: &Prepared) {
    // SAFETY: prctl with integer args.
    check(p, step::NNP, unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as c_long);
}

/// Installs the seccomp filter (which allows every call made after it here).
fn install_seccomp(p: &Prepared) {
    let prog = libc::sock_fprog { len: p.bpf.len() as u16, filter: p.bpf.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prog points at the prepared program, alive for the call.
    check(p, step::SECCOMP, unsafe {
        libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const _ as usize, 0, 0)
    } as c_long);
}

fn enter_cwd(p: &Prepared) {
    // SAFETY: valid C string.
    check(p, step::CHDIR, unsafe { libc::chdir(p.cwd.as_ptr()) } as c_long);
}

/// Landlock's first part: the ruleset at the kernel's ABI, with the rules that need no finished
/// mount view (all of them for `landlock-only`; see [`crate::landlock_rules::rule_time`]).
/// Returns the ruleset, or -1 without Landlock.
/// In the namespaces implementation this runs while pid 1 mounts, so no call here that can fail
/// in a working run writes `errno` (see `command_in_sandbox`): the paths are opened through
/// rustix, which returns the error.
fn landlock_begin(p: &Prepared) -> c_int {
    let Some(ll) = &p.landlock else { return -1 };
    let attr = RulesetAttr { handled_access_fs: ll.handled_fs, handled_access_net: ll.handled_net, scoped: ll.scoped };
    // SAFETY: valid struct of the size we pass.
    let rs = unsafe { libc::syscall(SYS_LANDLOCK_CREATE_RULESET, &attr, ll.attr_size, 0u32) } as c_int;
    if rs < 0 {
        fail(p, step::LANDLOCK_CREATE);
    }
    add_rules(p, ll, rs, RuleTime::WhileMounting);
    rs
}

/// Adds the rules of time `when` to the ruleset `rs` (nothing without Landlock).
fn add_rules_at(p: &Prepared, rs: c_int, when: RuleTime) {
    if let Some(ll) = &p.landlock {
        add_rules(p, ll, rs, when);
    }
}

/// Landlock's second part, in the finished view: the remaining rules, then
/// `landlock_restrict_self` (which needs no_new_privs first).
fn landlock_finish(p: &Prepared, rs: c_int) {
    let Some(ll) = &p.landlock else { return };
    add_rules(p, ll, rs, RuleTime::InFinishedView);
    // SAFETY: valid ruleset fd.
    check(p, step::LANDLOCK_RESTRICT, unsafe { libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, rs, 0u32) });
    close(rs);
}

/// Adds to `rs` the rules of time `when`, each on the tree its path opens to now. A path absent
/// from the view gets no rule: there is nothing there to allow.
fn add_rules(p: &Prepared, ll: &crate::prepare::ChildLandlock, rs: c_int, when: RuleTime) {
    use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
    for (k, r) in ll.rules.iter().enumerate().filter(|(_, r)| r.when == when) {
        let resolve = if r.no_symlinks { ResolveFlags::NO_SYMLINKS } else { ResolveFlags::empty() };
        let opened = rustix::fs::openat2(
            rustix::fs::CWD,
            r.path.as_c_str(),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        );
        let fd = match opened {
            Ok(fd) => fd,
            // A writable root swapped for a link since the policy was resolved.
            Err(e) if r.no_symlinks && e == rustix::io::Errno::LOOP => fail(p, step::LANDLOCK_PATH_LINK + k as i32),
            Err(_) => continue,
        };
        let dir = rustix::fs::fstat(&fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        let allowed_access = if dir { r.rights } else { r.rights & ll.file_rights };
        if allowed_access == 0 {
            // Only directory rights, on a path that is not one (`/dev` under `landlock-only`
            // on an odd host): nothing to allow, and the kernel would refuse the rule.
            continue;
        }
        let pb = PathBeneathAttr { allowed_access, parent_fd: fd.as_raw_fd() };
        // SAFETY: valid struct.
        let added = unsafe { libc::syscall(SYS_LANDLOCK_ADD_RULE, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0u32) };
        drop(fd);
        if added < 0 {
            fail(p, step::LANDLOCK_RULE + k as i32);
        }
    }
}

/// Marks every fd but stdio close-on-exec and execs the first `PATH` candidate that works.
fn close_and_exec(p: &Prepared) -> ! {
    // Everything but stdio (and the report pipe, until exec) is closed.
    // SAFETY: no pointers.
    check(p, step::CLOSE_FDS, unsafe { libc::syscall(SYS_CLOSE_RANGE, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) });
    // Last, since nothing before `execve` opens another descriptor (both filters allow
    // `prlimit64` on the caller, and lowering a limit takes no capability).
    for (res, soft, hard) in p.rlimits.iter().filter(|r| r.0 == RLIMIT_NOFILE) {
        check(p, step::RLIMIT, set_rlimit(*res, *soft, *hard));
    }

    let mut err = libc::ENOENT;
    let mut saw_eacces = false;
    for cand in &p.candidates {
        // SAFETY: prepared NUL-terminated arrays.
        unsafe { libc::execve(cand.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr()) };
        err = errno();
        if err == libc::EACCES {
            saw_eacces = true;
        } else if err != libc::ENOENT && err != libc::ENOTDIR {
            break;
        }
    }
    if saw_eacces && (err == libc::ENOENT || err == libc::ENOTDIR) {
        err = libc::EACCES;
    }
    report(p.report_fd, MSG_EXEC, err, 0);
    // SAFETY: always safe.
    unsafe { libc::_exit(127) }
}

/// The highest capability number of this kernel (what `/proc/sys/kernel/cap_last_cap`
/// says): a binary search for the last number `PR_CAPBSET_READ` accepts, which is cheaper
/// than reading the file. An error if it accepts none (a seccomp profile around stockade
/// that refuses it): the command could then not be shown to drop its bounding set.
pub fn last_capability() -> io::Result<c_int> {
    // SAFETY: prctl with integer arguments; it only reads the caller's bounding set.
    let known = |c: c_int| unsafe { libc::prctl(libc::PR_CAPBSET_READ, c, 0, 0, 0) } >= 0;
    if !known(0) {
        return Err(io::Error::last_os_error());
    }
    // Find the last `c` in 0..64 that exists.
    let (mut lo, mut hi) = (0, 64);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if known(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

fn drop_caps(p: &Prepared) {
    // SAFETY: prctl/capset with integer args and valid local structs.
    unsafe {
        // Root inside the namespace must not regain capabilities on exec.
        libc::prctl(libc::PR_SET_SECUREBITS, SECBIT_ALL_LOCKED_NOROOT, 0, 0, 0);
        // Up to the last capability this kernel knows, not through all 64, so that no call here
        // fails (which `command_in_sandbox` relies on). A failure shows in capset's check below
        // only for the other sets; the bounding set is defence in depth under no_new_privs.
        for cap in 0..=p.last_cap {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        let hdr = CapHeader { version: 0x2008_0522, pid: 0 };
        let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
        if libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) < 0 {
            fail(p, step::CAPS);
        }
    }
}

/// `_exit(code)` without running destructors or atexit handlers (for throwaway children).
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: always safe.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::cell::Cell;
    use std::ffi::CString;

    use super::*;

    fn devnull() -> c_int {
        // SAFETY: constant C string.
        unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
    }

    fn set_errno(e: c_int) {
        // SAFETY: errno is thread-local.
        unsafe { *libc::__errno_location() = e };
    }

    /// `hide` reopens a name replaced between its open and the mount (ENOENT), skips a name
    /// that is gone, passes other errors on, and fails closed when the name keeps changing.
    #[test]
    fn hide_retries_a_replaced_name_and_fails_closed() {
        let opens = Cell::new(0);
        let open = || {
            opens.set(opens.get() + 1);
            devnull()
        };
        // Replaced twice, then mounted.
        let mounts = Cell::new(0);
        let r = hide(open, |_| {
            mounts.set(mounts.get() + 1);
            if mounts.get() < 3 {
                set_errno(libc::ENOENT);
                -1
            } else {
                0
            }
        });
        assert_eq!((r, opens.get()), (0, 3));
        // Gone (or a symlink) at the first open: nothing to hide.
        let gone = || {
            set_errno(libc::ENOENT);
            -1
        };
        assert_eq!(hide(gone, |_| panic!("nothing to mount over")), 0);
        // Out of fds, or a directory replaced by a file: refuse.
        let emfile = || {
            set_errno(libc::EMFILE);
            -1
        };
        assert_eq!(hide(emfile, |_| panic!("nothing to mount over")), -1);
        // Another error is the caller's to report.
        let r = hide(devnull, |_| {
            set_errno(libc::EPERM);
            -1
        });
        assert_eq!((r, errno()), (-1, libc::EPERM));
        // Replaced at every attempt: refuse rather than leave it visible.
        opens.set(0);
        let r = hide(open, |_| {
            set_errno(libc::ENOENT);
            -1
        });
        assert_eq!((r, errno(), opens.get()), (-1, libc::ENOENT, 4));
    }

    /// Prints why a test skips, or fails it when `STOCKADE_TEST_REQUIRE` lists the feature.
    fn skip(feature: &str, why: &str) {
        let required = std::env::var("STOCKADE_TEST_REQUIRE").unwrap_or_default();
        assert!(!required.split(',').any(|r| r == feature), "{feature} is required by STOCKADE_TEST_REQUIRE: {why}");
        // Straight to stderr: libtest captures `eprintln!`, and CI counts these lines.
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("SKIP: needs {feature}: {why}\n"));
    }

    /// Set by [`clone3_child`]: it shares the test's memory.
    static CLONE3_CHILD_RAN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    /// The address of a local of [`clone3_child`]: on the stack it was given.
    static CLONE3_CHILD_STACK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A child of `clone3_vm`: notes that it ran and where its stack is, and waits for end of
    /// file on the pipe whose read end `arg` points at, then exits with 7. Raw calls only: it
    /// runs on the test thread's thread pointer.
    extern "C" fn clone3_child(arg: *mut c_void) -> c_int {
        let local = 0u8;
        CLONE3_CHILD_STACK.store(std::ptr::addr_of!(local) as usize, Ordering::SeqCst);
        CLONE3_CHILD_RAN.store(1, Ordering::SeqCst);
        // SAFETY: `arg` is the test's read end, alive until the child is reaped.
        wait_for_eof(unsafe { *(arg as *const c_int) });
        7
    }

    /// Reads `fd` until end of file: the children here share the test's fd table
    /// (`CLONE_FILES`), so the test's close of the write end is theirs too. (With copies of the
    /// table they would also hold every fd other tests of this process have open at the time,
    /// such as a file another test opened for writing and checks has no writer left.)
    fn wait_for_eof(fd: c_int) {
        let mut b = [0u8; 1];
        // SAFETY: a raw read into a valid buffer.
        unsafe { while libc::syscall(libc::SYS_read, fd, b.as_mut_ptr(), 1) > 0 {} }
    }

    /// What `/proc/<pid>/cgroup` says of `pid`'s cgroup v2 group.
    fn v2_group_of(pid: libc::pid_t) -> String {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        text.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or_default().to_string()
    }

    /// `clone3_vm` and `clone3_fork` start their child inside the cgroup v2 group they are
    /// given, which is how a run's command gets into a cgroup v2 group (`cgroup::create_v2`),
    /// and `clone3_vm` runs its child on the stack given, sharing our memory, as `clone` does
    /// for the command otherwise. No controller is needed to place a process, so a host whose
    /// cgroup v2 hierarchy has none (such as a hybrid one) still shows it. Needs root (to make
    /// a group) and a cgroup v2 mount.
    #[test]
    fn clone3_children_start_in_the_cgroup_v2_group() {
        let Some(mount) = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .find(|m| Path::new(m).join("cgroup.controllers").exists())
        else {
            return skip("cgroup-v2", "no cgroup v2 hierarchy is mounted");
        };
        if !CLONE3_VM {
            return skip("clone3-vm", "clone3_vm exists on x86-64 only");
        }
        let name = format!("stockade-test-clone3-{}", std::process::id());
        let dir = Path::new(mount).join(&name);
        if let Err(e) = std::fs::create_dir(&dir) {
            return skip("root", &format!("cannot make {}: {e}", dir.display()));
        }
        let group = std::fs::File::open(&dir).unwrap();
        let stack = ChildStack::new(64 * 1024).unwrap();
        let (base, len) = stack.region();
        let files = libc::CLONE_FILES as u64;
        for into in [true, false] {
            let (r, w) = pipe().unwrap();
            let read_end = r.as_raw_fd();
            CLONE3_CHILD_RAN.store(0, Ordering::SeqCst);
            let cg = if into { group.as_raw_fd() } else { -1 };
            // SAFETY: the stack is ours and idle; the child uses raw calls only and `read_end`
            // outlives it (it is reaped below).
            let pid =
                unsafe { clone3_vm(files, clone3_child, &read_end as *const c_int as *mut c_void, base, len, cg) }
                    .unwrap();
            let there = v2_group_of(pid);
            drop(w);
            let status = wait_pid(pid).unwrap();
            assert_eq!(there == format!("/{name}"), into, "clone3_vm child's group: {there}");
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7, "status {status:#x}");
            assert_eq!(CLONE3_CHILD_RAN.load(Ordering::SeqCst), 1, "the child shares our memory");
            let at = CLONE3_CHILD_STACK.load(Ordering::SeqCst);
            assert!(
                (base as usize..base as usize + len).contains(&at),
                "the child's local at {at:#x}: not on its stack"
            );
        }
        for into in [true, false] {
            let (r, w) = pipe().unwrap();
            let pid = clone3_fork(files, if into { group.as_raw_fd() } else { -1 }).unwrap();
            if pid == 0 {
                wait_for_eof(r.as_raw_fd());
                // SAFETY: the forked child ends here.
                unsafe { libc::_exit(8) };
            }
            let there = v2_group_of(pid);
            drop(w);
            let status = wait_pid(pid).unwrap();
            assert_eq!(there == format!("/{name}"), into, "clone3_fork child's group: {there}");
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 8, "status {status:#x}");
        }
        drop(group);
        for _ in 0..100 {
            if std::fs::remove_dir(&dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{} outlived its children", dir.display());
    }

    /// The kernel behaviour `landlock_rules::rule_time` rests on: a Landlock rule taken on a
    /// directory before a mount covers it does not apply inside that mount (the walk up from the
    /// mount's root goes on from the covered directory's parent), while a rule taken after the
    /// mount, on the mount's root, does. A child in its own user and mount namespaces takes a rule
    /// allowing file creation on `early` and then mounts a tmpfs over it, mounts one over `late`
    /// and then takes the same rule there, restricts itself, and creates a file in each.
    #[test]
    fn landlock_skips_a_directory_that_a_mount_covers() {
        if landlock_abi() < 1 {
            return skip("landlock", "the kernel has no Landlock");
        }
        if let Err(why) = crate::host_facts::probe_userns() {
            return skip("userns", &why);
        }
        let dir = crate::testutil::scratch_dir("landlock-cover");
        let cstr = |p: std::path::PathBuf| CString::new(p.into_os_string().into_encoded_bytes()).unwrap();
        let (early, late) = (dir.join("early"), dir.join("late"));
        std::fs::create_dir(&early).unwrap();
        std::fs::create_dir(&late).unwrap();
        let (early_file, late_file) = (cstr(early.join("f")), cstr(late.join("f")));
        let (early, late) = (cstr(early), cstr(late));
        let (uid_map, gid_map) = (format!("{0} {0} 1", ids().0), format!("{0} {0} 1", ids().1));
        const MAKE_REG: u64 = 1 << 8;
        // The child makes only system calls, on what was prepared above (this process has
        // other threads, so it must not allocate or take locks).
        let child = || -> c_int {
            // SAFETY: raw system calls on valid C strings, buffers and structs.
            unsafe {
                if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                    return 100;
                }
                for (file, text) in [
                    (c"/proc/self/setgroups", b"deny".as_slice()),
                    (c"/proc/self/uid_map", uid_map.as_bytes()),
                    (c"/proc/self/gid_map", gid_map.as_bytes()),
                ] {
                    let fd = libc::open(file.as_ptr(), libc::O_WRONLY);
                    if fd < 0 || libc::write(fd, text.as_ptr().cast(), text.len()) < 0 {
                        return 101;
                    }
                    libc::close(fd);
                }
                let none = std::ptr::null();
                libc::mount(c"none".as_ptr(), c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none.cast());
                let attr = RulesetAttr { handled_access_fs: MAKE_REG, handled_access_net: 0, scoped: 0 };
                let rs = libc::syscall(SYS_LANDLOCK_CREATE_RULESET, &attr, 8usize, 0u32) as c_int;
                let rule = |path: &CString| {
                    let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                    let pb = PathBeneathAttr { allowed_access: MAKE_REG, parent_fd: fd };
                    libc::syscall(SYS_LANDLOCK_ADD_RULE, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0u32) == 0
                };
                let tmpfs = |path: &CString| {
                    libc::mount(c"tmpfs".as_ptr(), path.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) == 0
                };
                if rs < 0 || !rule(&early) || !tmpfs(&early) || !tmpfs(&late) || !rule(&late) {
                    return 102;
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, rs, 0u32) != 0
                {
                    return 103;
                }
                let create = |path: &CString| {
                    let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o600);
                    if fd >= 0 {
                        libc::close(fd);
                        0
                    } else {
                        *libc::__errno_location()
                    }
                };
                match (create(&early_file), create(&late_file)) {
                    (libc::EACCES, 0) => 0,
                    (0, _) => 1, // the early rule applied after all
                    _ => 2,
                }
            }
        };
        // SAFETY: the child runs `child` and exits without returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: ends the child.
            unsafe { libc::_exit(child()) };
        }
        let mut status = 0;
        // SAFETY: our own child; a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        match libc::WEXITSTATUS(status) {
            100 => skip("userns", "unshare(CLONE_NEWUSER | CLONE_NEWNS) failed"),
            code => assert_eq!(code, 0, "1: a rule taken before the mount applied inside it; 2 or more: setup failed"),
        }
    }
}
