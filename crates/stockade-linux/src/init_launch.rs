//! Launching the sandbox's pid 1 ahead of the rest of a run, and the optional head start a
//! one-shot caller (the CLI) can give it before it even resolves the policy.
//!
//! Creating the namespaces costs more than anything else in a run (well over half a
//! millisecond here, most of it the network namespace), and needs nothing from the policy but
//! whether the network namespace is private. [`InitLaunch::new`] starts it on another thread
//! right away (see `sys::spawn_launcher`); the run prepares its mount plan, Landlock rules and
//! seccomp program meanwhile and hands them over with the go message.
//!
//! [`prelaunch`] goes one step further for a process that is about to run one command: it
//! starts a pid 1 with a private network namespace before the policy is resolved. The next
//! run takes it if it fits (network off, no extra fds needed); anything else discards it,
//! which makes pid 1 exit before it ever sees a command. A pid 1 that ran the command waits,
//! alone, until the process exits or the next prelaunch releases it ([`retire`]), so that its
//! teardown happens after the caller is gone.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::sys;

/// A pid 1 on its way up, with the supervisor's ends of its pipes.
pub struct InitLaunch {
    /// The launching thread's handle.
    pub init: sys::LaunchedInit,
    /// Whether pid 1 got a private network namespace.
    pub netns: bool,
    /// Whether pid 1 brings loopback up before the go message; otherwise, with `netns`, it
    /// does so after its mounts (see `Prepared::loopback`).
    pub loopback_in_init: bool,
    /// The read end of the report pipe.
    pub report_r: OwnedFd,
    /// Pid 1's number for the write end of the report pipe.
    pub report_fd: RawFd,
    /// Pid 1's number for its end of the go socket.
    pub go_fd: RawFd,
    /// Pid 1's number for its copy of a pidfd of this process (see
    /// `Prepared::supervisor_pidfd`).
    pub supervisor_pidfd: RawFd,
    /// Started by [`prelaunch`] for a one-shot caller: after the command's exit, pid 1 waits
    /// until the process exits or the next prelaunch releases it (see [`retire`]).
    pub one_shot: bool,
    /// The cgroup controllers' roots, opened before the clone so that pid 1 and the command
    /// have them too (see [`crate::cgroup::open_roots`]).
    pub cgroup_roots: [Option<OwnedFd>; 2],
    /// Where a cgroup v2 group for the run can be made, on a host without those v1 roots,
    /// opened before the clone for the same reason (see [`crate::cgroup::open_v2_parent`]).
    pub cgroup2: Option<crate::cgroup::V2Parent>,
}

impl InitLaunch {
    /// Starts cloning pid 1 into new user, mount and pid namespaces (and network, with
    /// `netns`; pid 1 makes the IPC and UTS namespaces itself, see `sys::init_entry`). With `loopback_in_init`
    /// pid 1 brings loopback up before the go message (the allowlist bridge needs it there);
    /// otherwise it does so after its mounts, off the path the run waits for. Every fd
    /// pid 1 will use must exist before this: it gets a copy of the fd table when it is cloned.
    pub fn new(netns: bool, loopback_in_init: bool) -> Result<Self> {
        let syscall = |call, source| Error::Syscall { call, source };
        // Pid 1 makes the IPC and UTS namespaces after the clone (see `sys::init_entry`).
        let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;
        if netns {
            flags |= libc::CLONE_NEWNET;
        }
        // The thread first: it gets going on the other CPU while the fds are made here.
        let launcher =
            sys::spawn_launcher(flags as u64).map_err(|e| syscall("spawning pid 1's launching thread", e))?;
        let (uid, gid) = sys::ids();
        let (report_r, report_w) = sys::pipe().map_err(|e| syscall("pipe2", e))?;
        let (go_w, go_r) = sys::seqpacket_pair().map_err(|e| syscall("socketpair", e))?;
        let me = sys::pidfd_open(std::process::id() as libc::pid_t).map_err(|e| syscall("pidfd_open", e))?;
        let cgroup_roots = crate::cgroup::open_roots();
        let cgroup2 = crate::cgroup::open_v2_parent(&cgroup_roots);
        let start =
            sys::InitStart::new(netns && loopback_in_init, me.as_raw_fd(), go_r.as_raw_fd(), report_w.as_raw_fd());
        let maps = sys::IdMaps { uid: format!("{uid} {uid} 1\n"), gid: format!("{gid} {gid} 1\n") };
        let (report_fd, go_fd, supervisor_pidfd) = (report_w.as_raw_fd(), go_r.as_raw_fd(), me.as_raw_fd());
        let init = launcher
            .launch(start, maps, go_w, vec![report_w, go_r, me])
            .map_err(|e| syscall("launching pid 1 (pipe2)", e))?;
        Ok(InitLaunch {
            init,
            netns,
            loopback_in_init,
            report_r,
            report_fd,
            go_fd,
            supervisor_pidfd,
            one_shot: false,
            cgroup_roots,
            cgroup2,
        })
    }
}

static PRELAUNCHED: Mutex<Option<InitLaunch>> = Mutex::new(None);
/// The pid 1 of the last run that used a prelaunch, waiting to be released.
static RETIRED: Mutex<Option<sys::LaunchedInit>> = Mutex::new(None);

/// Keeps the pid 1 of a finished one-shot run until the process exits or the next
/// [`prelaunch`], [`take`] or [`discard`] releases it; releases the one kept before. So a
/// process that calls `prelaunch` for every run keeps at most one such pid 1.
pub fn retire(init: sys::LaunchedInit) {
    let old = RETIRED.lock().ok().and_then(|mut r| r.replace(init));
    if let Some(mut old) = old {
        old.release();
    }
}

fn release_retired() {
    let old = RETIRED.lock().ok().and_then(|mut r| r.take());
    if let Some(mut old) = old {
        old.release();
    }
}

/// Starts a pid 1 (private network namespace) for the next namespaces run of this process, so
/// that creating its namespaces overlaps with resolving the policy. For a process that runs
/// one command and exits, like the CLI: a pid 1 that ran the command waits until the process
/// exits or the next prelaunch releases it. Harmless when the run does not use it: it is
/// discarded (and exits) at the next [`take`] or [`discard`], or with the process.
pub fn prelaunch() {
    release_retired();
    if let Ok(mut launch) = InitLaunch::new(true, false) {
        launch.one_shot = true;
        if let Ok(mut slot) = PRELAUNCHED.lock() {
            *slot = Some(launch);
        }
    }
}

/// The prelaunched pid 1 if there is one and it fits a run with `netns` and no extra fds.
pub fn take(netns: bool, needs_extra_fds: bool) -> Option<InitLaunch> {
    release_retired();
    let launch = PRELAUNCHED.lock().ok()?.take()?;
    (launch.netns == netns && !needs_extra_fds).then_some(launch)
}

/// Discards a prelaunched pid 1 (the run went another way).
pub fn discard() {
    release_retired();
    if let Ok(mut slot) = PRELAUNCHED.lock() {
        slot.take();
    }
}
