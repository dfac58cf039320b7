//! Starting the sandbox's pid 1 while the supervisor is still preparing the run.
//!
//! Creating the namespaces (above all the network namespace, which registers a few hundred
//! sysctls) is the largest single cost of a run. So pid 1 is cloned first, from a dedicated
//! thread, and enters its namespaces on one core while the supervisor computes the mount plan,
//! Landlock rules and seccomp program on the other, and then maps pid 1's ids.
//! When [`LaunchedInit::go`] hands it the finished [`Prepared`], it starts the command, which
//! drops its privileges and installs its seccomp filter on the other core while pid 1 builds
//! the mount view; the command then enters the view and execs (see `sys::init_run`).
//!
//! Pid 1 shares the supervisor's memory (`CLONE_VM`), so the [`Prepared`] it receives is the
//! supervisor's own, read in place: no serialization, and it stays valid because the launching
//! thread keeps it alive until pid 1 is reaped. The launching thread is also pid 1's parent for
//! `PR_SET_PDEATHSIG`, and pid 1 runs with that thread's TLS pointer; the thread therefore
//! does nothing but wait for pid 1, with every signal blocked, so that nothing else writes the
//! `errno` the two share. A one-shot run's pid 1 lets the thread end once it has reported the
//! command's exit (see [`Wake::Done`]), so that the CLI exits with a single thread.
//!
//! Sharing memory must not let the command reach the supervisor through pid 1. The command
//! runs in a fresh address space after `execve`; `ptrace`, `process_vm_*` and `/proc/1/mem`
//! stay closed because pid 1 keeps capabilities the command lacks (and is outside its Landlock
//! domain). Two more paths needed closing: pid 1 resets every signal handler it copied from the
//! supervisor and keeps all signals blocked (a handler would run the supervisor's code on its
//! data when the command signals pid 1), and `/proc` is mounted with `hidepid=ptraceable`, which
//! hides pid 1 from the command (writing its `oom_score_adj`, `coredump_filter` or `clear_refs`
//! would act on the supervisor, which shares its address space; Landlock also refuses those
//! writes where it exists).
//!
//! References: [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html) (`CLONE_VM`,
//! `CLONE_PIDFD`), [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html)
//! (`PR_SET_PDEATHSIG` follows the parent thread).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use libc::{c_int, c_void};

use crate::prepare::Prepared;

/// Size of pid 1's own stack.
const INIT_STACK_SIZE: usize = 256 * 1024;

/// What pid 1 needs before the run is prepared.
#[derive(Debug)]
pub struct InitStart {
    /// Whether pid 1 brings `lo` up in its network namespace before the go message. Only when
    /// it needs loopback itself (the allowlist bridge); otherwise it does so after its mounts
    /// (see `Prepared::loopback`).
    pub loopback: bool,
    /// A pidfd of the supervisor: pid 1 checks it right after arming `PR_SET_PDEATHSIG`.
    pub sync_fd: RawFd,
    /// Pid 1's end of the go socket: one 8-byte message, the address of the [`Prepared`];
    /// address 0 or end of file means the supervisor gave up, and pid 1 exits quietly.
    pub go_fd: RawFd,
    /// Write end of the report pipe.
    pub report_fd: RawFd,
    /// The supervisor's end of the go socket, which pid 1 closes in its copy of the fd table.
    go_write_fd: RawFd,
    /// The caller's CPU affinity, which pid 1 restores (the launching thread runs elsewhere,
    /// see [`prefer_another_cpu`], and pid 1 would inherit that).
    pub(super) cpus: Option<libc::cpu_set_t>,
    /// Pid 1's own stack, mapped by the launching thread.
    stack: Option<super::ChildStack>,
    /// Set to the go message's address once it is on the go socket: pid 1 watches this for a
    /// moment before it sleeps in `read` (see `sys::poll_briefly`).
    pub(super) go_posted: Arc<AtomicUsize>,
}

impl InitStart {
    /// The supervisor's end of the go socket (pid 1 closes its copy).
    pub(super) fn go_write_fd(&self) -> RawFd {
        self.go_write_fd
    }

    /// Bundles what pid 1 needs before the go message.
    pub fn new(loopback: bool, sync_fd: RawFd, go_fd: RawFd, report_fd: RawFd) -> Self {
        InitStart {
            loopback,
            sync_fd,
            go_fd,
            report_fd,
            go_write_fd: -1,
            cpus: None,
            stack: None,
            go_posted: Arc::default(),
        }
    }
}

// SAFETY: a `Prepared` owns everything its raw pointers point into (argv/envp strings), so it
// may move between threads. It is shared read-only between the supervisor, pid 1 and the
// command; the command's stack is a separate mapping it only reaches through its stack pointer.
unsafe impl Send for Prepared {}
// SAFETY: see above.
unsafe impl Sync for Prepared {}

/// Keeps something alive on the launching thread until pid 1 is reaped.
type Keep = Arc<Prepared>;

/// Work for the launching thread once pid 1 is reaped (removing the run's cgroups).
pub type AfterExit = Box<dyn FnOnce() + Send>;

/// What the launching thread hands over when pid 1 lets it go (see [`Wake::Done`]): pid 1
/// still runs on the stack `start` owns, so these are freed, and the run's leftover work
/// done, only once pid 1 is reaped, by whoever releases it.
struct Leftovers {
    start: Box<InitStart>,
    keep: mpsc::Receiver<(Option<Keep>, Option<AfterExit>)>,
    pidfd: OwnedFd,
}

impl Leftovers {
    /// Waits for pid 1 to exit, reaps it, then frees what it used and runs the work left for
    /// after its exit.
    fn reap(self) {
        loop {
            // SAFETY: a zeroed siginfo is a valid out-parameter; the pidfd is ours.
            let r = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PIDFD, self.pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED)
            };
            // `P_PIDFD` is Linux 5.4; `namespaces` needs 5.12 (see docs/linux.md).
            if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        // Released, the run hands over nothing more.
        after_reaping(self.start, self.keep.try_iter());
    }
}

/// Once pid 1 is reaped: nothing reads `start` or its stack any more, what the run handed over
/// may be dropped, and the work it left (removing cgroups) be done.
fn after_reaping(start: Box<InitStart>, handed_over: impl Iterator<Item = (Option<Keep>, Option<AfterExit>)>) {
    drop(start);
    for (keep, after) in handed_over {
        drop(keep);
        if let Some(f) = after {
            f();
        }
    }
}

/// Who reaps pid 1 once it let its launching thread go: the thread, if the run released pid 1
/// first; otherwise the run, with what the thread left.
#[derive(Default)]
struct Handoff {
    released: bool,
    leftovers: Option<Leftovers>,
}

fn lock(h: &Mutex<Handoff>) -> std::sync::MutexGuard<'_, Handoff> {
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A pid 1 that is being cloned or setting up its namespaces, and waits for
/// [`LaunchedInit::go`].
pub struct LaunchedInit {
    started: Option<mpsc::Receiver<io::Result<(libc::pid_t, RawFd)>>>,
    /// Pid 1's number for the write end of the launching thread's "done" pipe.
    launcher_done_fd: RawFd,
    /// Its pid in the supervisor's pid namespace (once [`LaunchedInit::started`] succeeded).
    pub pid: libc::pid_t,
    /// A pidfd for it (from `CLONE_PIDFD`, so never a recycled pid), once
    /// [`LaunchedInit::started`] succeeded.
    pidfd: Option<OwnedFd>,
    status: mpsc::Receiver<io::Result<c_int>>,
    keep: mpsc::Sender<(Option<Keep>, Option<AfterExit>)>,
    go: OwnedFd,
    go_posted: Arc<AtomicUsize>,
    /// The caller's CPU affinity when pid 1 was launched, which pid 1 restores for itself.
    cpus: Option<libc::cpu_set_t>,
    sent: bool,
    /// The supervisor's copies of the fds pid 1 uses: kept until pid 1 has been cloned, since
    /// their numbers must not name anything else when its fd table is copied.
    held: Vec<OwnedFd>,
    /// Shared with the launching thread, for a pid 1 that lets it go.
    handoff: Arc<Mutex<Handoff>>,
    /// The launching thread's handle, held so that the thread stays joinable while this lives.
    /// With musl, a detached thread unmaps its own stack as it ends, and a one-shot run's
    /// thread ends at the end of the run, when pid 1 lets it go: that `munmap` had to flush
    /// the TLB of every CPU that uses this address space (pid 1's among them), just as the CLI
    /// exits. A joinable thread leaves its stack to whoever joins or detaches it. The CLI never
    /// drops its retired `LaunchedInit`, so the stack goes with the process; a library caller's
    /// next `prelaunch`, `take` or `discard` drops it, which detaches the thread, and the C
    /// library then frees the stack of a thread that has already ended. (glibc keeps a
    /// detached thread's stack in its cache rather than unmapping it; only musl was measured.)
    thread: std::thread::JoinHandle<()>,
    /// Pid 1's uid and gid maps, which [`LaunchedInit::map_ids`] writes.
    maps: IdMaps,
}

/// The uid and gid maps of pid 1's user namespace: `"U U 1\n"` and `"G G 1\n"`, the caller's
/// ids mapped to themselves.
pub struct IdMaps {
    /// The `uid_map` line.
    pub uid: String,
    /// The `gid_map` line.
    pub gid: String,
}

/// A launching thread, already running on another CPU, that waits for what pid 1 needs
/// ([`Launcher::launch`]) and then clones it. Spawning it before the caller creates pid 1's
/// fds lets the thread's start (tens of microseconds until it runs on the other CPU) overlap
/// that work: pid 1's path, the longer of the two before the go message, starts sooner.
pub struct Launcher {
    slot: Arc<Slot>,
    parts: Option<LauncherParts>,
}

/// What [`Launcher::launch`] hands over to the [`LaunchedInit`].
struct LauncherParts {
    pid_rx: mpsc::Receiver<io::Result<(libc::pid_t, RawFd)>>,
    status_rx: mpsc::Receiver<io::Result<c_int>>,
    keep_tx: mpsc::Sender<(Option<Keep>, Option<AfterExit>)>,
    handoff: Arc<Mutex<Handoff>>,
    cpus: Option<libc::cpu_set_t>,
    /// The launching thread (see `LaunchedInit::thread`).
    thread: std::thread::JoinHandle<()>,
}

/// Where the caller leaves pid 1's start data for the launching thread: `state` is 0 until
/// then, [`PUBLISHED`] once `data` holds it, [`ABANDONED`] if it never will.
#[derive(Default)]
struct Slot {
    state: AtomicU32,
    data: Mutex<Option<(Box<InitStart>, OwnedFd)>>,
}

const PUBLISHED: u32 = 1;
const ABANDONED: u32 = 2;

/// Spawns the thread that will clone pid 1 with namespace `flags` and then wait for it (or,
/// for a one-shot run, until pid 1 lets it go, see `Wake::Done`), and moves it off the
/// caller's CPU. It maps pid 1's stack and waits for [`Launcher::launch`].
pub fn spawn_launcher(flags: u64) -> io::Result<Launcher> {
    let cpus = affinity();
    let slot = Arc::new(Slot::default());
    let (pid_tx, pid_rx) = mpsc::sync_channel::<io::Result<(libc::pid_t, RawFd)>>(1);
    let (status_tx, status_rx) = mpsc::channel();
    let (keep_tx, keep_rx) = mpsc::channel::<(Option<Keep>, Option<AfterExit>)>();
    let handoff = Arc::new(Mutex::new(Handoff::default()));
    let theirs = Arc::clone(&handoff);
    let ours = Arc::clone(&slot);
    let handle = std::thread::Builder::new().name("stockade-init".into()).stack_size(64 * 1024).spawn(move || {
        block_all_signals();
        let stack = super::ChildStack::new(INIT_STACK_SIZE);
        if super::wait_for_word(&ours.state) != PUBLISHED {
            return; // the caller gave up before pid 1 was launched
        }
        let Some((mut start, done_r)) = ours.data.lock().ok().and_then(|mut d| d.take()) else {
            let _ = pid_tx.send(Err(io::Error::other("pid 1's start data went missing")));
            return;
        };
        let top = match stack {
            Ok(stack) => start.stack.insert(stack).top(),
            Err(e) => {
                let _ = pid_tx.send(Err(e));
                return;
            }
        };
        let mut pidfd: c_int = -1;
        // SAFETY: `start` and its stack outlive pid 1 (this thread drops them only after
        // reaping it); the callee never returns.
        let pid = unsafe {
            libc::clone(
                init_trampoline,
                top,
                (flags as c_int) | libc::CLONE_VM | libc::CLONE_PIDFD | libc::SIGCHLD,
                &*start as *const InitStart as *mut c_void,
                &mut pidfd as *mut c_int,
            )
        };
        if pid < 0 {
            let _ = pid_tx.send(Err(io::Error::last_os_error()));
            return;
        }
        // A copy of our own, taken before the run gets the pidfd: the run closes its copy when
        // it is done with pid 1, which may be before pid 1 has exited. Without one, waiting in
        // `waitpid` alone is still correct. (rustix does not set the `errno` shared with pid 1.)
        // SAFETY: the pidfd clone just returned, still only ours.
        let own = rustix::io::fcntl_dupfd_cloexec(unsafe { BorrowedFd::borrow_raw(pidfd) }, 0).ok();
        let _ = pid_tx.send(Ok((pid, pidfd)));
        if let Some(own) = own {
            if wait_for_exit_or_done(&own, &done_r) == Wake::Done {
                let mut h = lock(&theirs);
                if !h.released {
                    // Pid 1 still runs on the stack `start` owns: the run reaps it when it
                    // releases it, then frees these (see `LaunchedInit::release`).
                    h.leftovers = Some(Leftovers { start, keep: keep_rx, pidfd: own });
                    return;
                }
                // Released already: pid 1 is on its way out; reap it here as usual.
            }
        }
        let mut st: c_int = 0;
        // Signals are blocked, so no EINTR, and nothing else here touches the errno pid 1
        // shares until waitpid returns.
        let status = loop {
            // SAFETY: valid out-pointer.
            if unsafe { libc::waitpid(pid, &mut st, 0) } >= 0 {
                break Ok(st);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                // ECHILD: something else in this process reaped pid 1 (waitpid(-1)).
                break Err(e);
            }
        };
        let _ = status_tx.send(status);
        // Until the run drops its handle. A CLI exits before this, which is fine.
        after_reaping(start, keep_rx.iter());
    })?;
    if let Some(cpus) = cpus {
        prefer_another_cpu(&handle, cpus);
    }
    Ok(Launcher { slot, parts: Some(LauncherParts { pid_rx, status_rx, keep_tx, handoff, cpus, thread: handle }) })
}

impl Launcher {
    /// Hands pid 1's start data to the launching thread, which clones it right away. `go` is
    /// the supervisor's end of the socket pair whose other end is `start.go_fd`; `held` are
    /// the fds whose numbers `start` names, closed once pid 1 has its copies.
    pub fn launch(
        mut self,
        mut start: InitStart,
        maps: IdMaps,
        go: OwnedFd,
        held: Vec<OwnedFd>,
    ) -> io::Result<LaunchedInit> {
        let (done_r, done_w) = super::pipe()?;
        let Some(parts) = self.parts.take() else { return Err(io::Error::other("pid 1 was launched already")) };
        start.go_write_fd = go.as_raw_fd();
        start.cpus = parts.cpus;
        let go_posted = Arc::clone(&start.go_posted);
        let launcher_done_fd = done_w.as_raw_fd();
        let mut held = held;
        held.push(done_w);
        if let Ok(mut d) = self.slot.data.lock() {
            *d = Some((Box::new(start), done_r));
        }
        super::futex::set(&self.slot.state, PUBLISHED);
        Ok(LaunchedInit {
            started: Some(parts.pid_rx),
            launcher_done_fd,
            pid: 0,
            pidfd: None,
            status: parts.status_rx,
            keep: parts.keep_tx,
            go,
            go_posted,
            cpus: parts.cpus,
            sent: false,
            held,
            handoff: parts.handoff,
            thread: parts.thread,
            maps,
        })
    }
}

impl Drop for Launcher {
    /// A launcher never given pid 1's start data (the caller failed to create its fds) lets
    /// its thread end.
    fn drop(&mut self) {
        if self.parts.is_some() {
            super::futex::set(&self.slot.state, ABANDONED);
        }
    }
}

impl LaunchedInit {
    /// Waits until the clone returned (it runs while the caller prepares the run): the error
    /// is the one `clone(2)` gave, such as `EPERM` where user namespaces are restricted. Then
    /// closes the supervisor's copies of pid 1's fds.
    pub fn started(&mut self) -> io::Result<()> {
        if let Some(rx) = self.started.take() {
            let result = rx.recv().map_err(|_| io::Error::other("the init launcher thread died"));
            self.held.clear();
            let (pid, pidfd) = result??;
            // SAFETY: CLONE_PIDFD returned a fresh fd that nothing else owns.
            self.pidfd = Some(unsafe { OwnedFd::from_raw_fd(pidfd) });
            self.pid = pid;
        }
        Ok(())
    }

    /// Maps pid 1's ids (after [`LaunchedInit::started`]): `deny` to its `setgroups`, then its
    /// `uid_map` and `gid_map`, written from here, before the go message, which is what pid 1
    /// waits for before anything that needs them (its mounts). Pid 1 used to write them itself
    /// while the supervisor prepared the run; its path was the longer one before the go message,
    /// and moving this work to the supervisor's made a run shorter (see docs/linux-log.md, "A
    /// twelfth session"). The supervisor may: it is in the parent user namespace and has the
    /// ids it maps.
    pub fn map_ids(&self) -> io::Result<()> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        use rustix::fs::{open, openat, Mode, OFlags};
        let pidfd = self.pidfd.as_ref().ok_or_else(|| io::Error::other("pid 1 was not started"))?;
        let dir =
            open(format!("/proc/{}", self.pid), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        // The directory is pid 1's if pid 1 is still alive once it is open: a pid is only
        // reused after its process has been reaped.
        let mut alive = [PollFd::new(pidfd, PollFlags::IN)];
        if poll(&mut alive, Some(&Timespec { tv_sec: 0, tv_nsec: 0 }))? != 0 {
            return Err(io::Error::other("pid 1 exited before its ids were mapped"));
        }
        for (name, line) in
            [("setgroups", "deny"), ("uid_map", self.maps.uid.as_str()), ("gid_map", self.maps.gid.as_str())]
        {
            let file = openat(&dir, name, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
            rustix::io::write(&file, line.as_bytes())?;
        }
        Ok(())
    }

    /// The caller's CPU affinity that pid 1 restored for itself (the command takes it back
    /// too before it execs).
    pub fn cpus(&self) -> Option<libc::cpu_set_t> {
        self.cpus
    }

    /// Lets the launching thread run on any of the caller's CPUs again. It was moved off the
    /// caller's CPU to clone pid 1 beside the supervisor's work; left there, its exit at the
    /// end of a one-shot run, which the CLI's own exit waits for, waited for that one CPU even
    /// when it was busy. Unpinned, it wakes where pid 1 releases it. Best effort. (Should the
    /// thread have ended already, the C library has cleared the thread id it keeps, and the
    /// call sets the calling thread to the caller's CPUs, which it already has.)
    pub fn unpin_launcher(&self) {
        use std::os::unix::thread::JoinHandleExt;
        if let Some(cpus) = &self.cpus {
            // SAFETY: a valid set of the size passed; the pthread_t is valid while the unjoined
            // handle is held.
            unsafe {
                libc::pthread_setaffinity_np(
                    self.thread.as_pthread_t() as _,
                    std::mem::size_of::<libc::cpu_set_t>(),
                    cpus,
                )
            };
        }
    }

    /// Pid 1's number for the pipe on which it lets the launching thread go (see
    /// `Wake::Done`).
    pub fn launcher_done_fd(&self) -> RawFd {
        self.launcher_done_fd
    }

    /// The pidfd of pid 1 (after [`LaunchedInit::started`]).
    pub fn pidfd(&self) -> RawFd {
        self.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Hands `prepared` to pid 1. It stays alive until pid 1 is reaped, even if the caller
    /// returns first.
    pub fn go(&mut self, prepared: &Arc<Prepared>) {
        let _ = self.keep.send((Some(Arc::clone(prepared)), None));
        let addr = Arc::as_ptr(prepared) as usize;
        self.send(addr);
        self.go_posted.store(addr, Ordering::Release);
    }

    fn send(&mut self, addr: usize) {
        self.sent = true;
        let addr = addr.to_ne_bytes();
        // SAFETY: valid buffer; one 8-byte message. A pid 1 that already died makes this fail
        // with EPIPE, without a SIGPIPE; the wait then explains. Before `started`, a failed
        // clone leaves the message queued on the supervisor's own copy of pid 1's end, which
        // `started` closes.
        unsafe { libc::send(self.go.as_raw_fd(), addr.as_ptr().cast(), addr.len(), libc::MSG_NOSIGNAL) };
    }

    /// Lets pid 1 start the command once its mount view is built (the supervisor's look at the
    /// workspace before the command, see `git_nested`, is done): a second message on the go
    /// socket.
    pub fn proceed(&mut self) {
        self.send(1);
    }

    /// Ends a pid 1 that waits after its run (`Prepared::exit_with_supervisor`): a second
    /// message on the go socket.
    pub fn release(&mut self) {
        let leftovers = self.let_go();
        self.send(0);
        Self::reap_later(leftovers);
    }

    /// From now on the launching thread, if it is still there, reaps pid 1 itself; what it
    /// left if it is gone.
    fn let_go(&self) -> Option<Leftovers> {
        let mut h = lock(&self.handoff);
        h.released = true;
        h.leftovers.take()
    }

    /// Reaps a pid 1 whose launching thread has ended, on a thread of its own: pid 1 tears its
    /// namespaces down before it can be reaped, which the caller need not wait for.
    fn reap_later(leftovers: Option<Leftovers>) {
        let Some(l) = leftovers else { return };
        let slot = Arc::new(Mutex::new(Some(l)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new().name("stockade-reap".into()).spawn(move || {
            if let Some(l) = theirs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                l.reap();
            }
        });
        // Without a thread (the closure, not the leftovers, is gone), here and now.
        if spawned.is_err() {
            if let Some(l) = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                l.reap();
            }
        }
    }

    /// Runs `f` on the launching thread once pid 1 has been reaped (for a pid 1 that let that
    /// thread go, on the thread that reaps it after its release).
    pub fn after_exit(&self, f: AfterExit) {
        let _ = self.keep.send((None, Some(f)));
    }

    /// Pid 1's raw wait status, once its pidfd has reported that it exited. (Not for a
    /// one-shot run's pid 1 once it has reported the command's exit: it let the launching
    /// thread go, and is reaped when released, see `Wake::Done`.)
    pub fn status(&self) -> io::Result<c_int> {
        self.status.recv().map_err(|_| io::Error::other("the init launcher thread died"))?
    }
}

impl Drop for LaunchedInit {
    /// A run abandoned before the go message (an error while preparing) tells pid 1 to exit:
    /// address 0. Closing the socket alone is not enough, since a concurrent run's pid 1 may
    /// hold a copy of this end. It first waits for the clone, so that pid 1 (if any) copied the
    /// fds it expects and is there to read the message.
    fn drop(&mut self) {
        let _ = self.started();
        if !self.sent {
            self.send(0);
        }
        // A pid 1 that let its launching thread go, never released: end it now rather than
        // when every copy of `go` is closed (a concurrent run's pid 1 may hold one), and reap it.
        let leftovers = self.let_go();
        if leftovers.is_some() {
            self.send(0);
        }
        Self::reap_later(leftovers);
    }
}

/// The calling thread's CPU affinity.
fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is valid; the size passed is its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0).then_some(set)
    }
}

/// Moves the launching thread off the caller's CPU: the scheduler tends to queue a new thread
/// behind its creator, which would serialise the clone with the work it is meant to overlap.
/// Pid 1 restores `allowed` for itself (and so for the command).
fn prefer_another_cpu(handle: &std::thread::JoinHandle<()>, allowed: libc::cpu_set_t) {
    use std::os::unix::thread::JoinHandleExt;
    if let Some(others) = super::cpus_besides_current(&allowed) {
        // SAFETY: a valid set of the size passed; the pthread_t is valid while the unjoined
        // handle is held.
        unsafe {
            libc::pthread_setaffinity_np(handle.as_pthread_t() as _, std::mem::size_of::<libc::cpu_set_t>(), &others)
        };
    }
}

/// What woke the launching thread.
#[derive(PartialEq, Eq)]
enum Wake {
    /// Pid 1 exited: reap it.
    Exited,
    /// Pid 1 of a one-shot run reported the command's exit and now waits only for the process
    /// to exit: the thread may end. Exiting with a second, sleeping thread cost the CLI about
    /// 0.1 ms here: `exit_group` has to wake it on its CPU and wait for it. Pid 1 disarmed
    /// `PR_SET_PDEATHSIG` before it said so, and from then on touches nothing of this thread's,
    /// such as its TLS, which goes with it (see `sys::wait_for_release`).
    Done,
}

/// Waits until pid 1 exits or says it no longer needs this thread. No call here sets the
/// `errno` this thread shares with pid 1 (rustix returns errors instead).
fn wait_for_exit_or_done(pid1: &OwnedFd, done: &OwnedFd) -> Wake {
    use rustix::event::{poll, PollFd, PollFlags};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(pid1, PollFlags::IN), PollFd::new(done, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return Wake::Exited,
        }
        if !fds[0].revents().is_empty() {
            return Wake::Exited;
        }
        if !fds[1].revents().is_empty() {
            let mut b = [0u8; 1];
            // One byte: done. End of file: every write end is closed, so pid 1 has exited.
            return match rustix::io::read(done.as_fd(), &mut b) {
                Ok(1) => Wake::Done,
                _ => Wake::Exited,
            };
        }
    }
}

fn block_all_signals() {
    // SAFETY: sigset manipulation on a local, then pthread_sigmask for this thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    }
}

extern "C" fn init_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `InitStart` the launching thread keeps alive until pid 1 is reaped.
    let start = unsafe { &*(arg as *const InitStart) };
    super::init_entry(start)
}
