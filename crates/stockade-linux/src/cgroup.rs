//! Tree-wide limits through cgroup v1 `pids` and `memory` controllers, for root callers on
//! hosts that mount them (this is where `RLIMIT_NPROC` fails: the kernel never applies it to
//! uid 0 in the initial user namespace, and a root caller maps 0 to 0).
//!
//! A run gets its own `stockade-<pid>-<n>` group under each controller; the command moves
//! itself in (writing `0` to `tasks`, through the controller roots of [`open_roots`]) before it
//! forks, so every descendant is counted (under `namespaces` once the supervisor has made the
//! groups after the go message; pid 1 stays outside). The group is removed when the tree
//! is gone: by the thread that reaped pid 1, or, for a one-shot caller (the CLI), which exits
//! before that, by pid 1 itself once the caller is gone (`sys::remove_run_groups`). A later
//! run's [`sweep`] takes what is left when pid 1 does not get that far.
//!
//! References: [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html),
//! [Documentation/admin-guide/cgroup-v1/pids.rst](https://docs.kernel.org/admin-guide/cgroup-v1/pids.html).

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use stockade_policy::Policy;

/// The groups of one run.
#[derive(Debug)]
pub struct RunGroups {
    dirs: Vec<PathBuf>,
    /// Which of [`CONTROLLERS`] got a group.
    pub created: [bool; 2],
    /// What is limited, in words.
    pub words: Vec<String>,
    /// Whether the process limit is enforced tree-wide.
    pub pids: bool,
    /// Whether the memory limit is enforced tree-wide.
    pub memory: bool,
}

fn controller(name: &str) -> Option<PathBuf> {
    let p = Path::new("/sys/fs/cgroup").join(name);
    p.join("cgroup.procs").exists().then_some(p)
}

/// Removes groups left by earlier runs whose supervisor is gone and whose pid 1 did not get to
/// remove them: a run that timed out or was killed (pid 1 killed with it), one whose set-up
/// failed, a supervisor that exec'd. Only empty groups can be removed, so a group still in use
/// is never touched.
///
/// A run calls it once pid 1 reports that the command started, while the supervisor would
/// otherwise only wait: before that it would delay the launch (an `rmdir` here and the command
/// joining its groups take the same cgroup lock), and on a thread of its own it cost more
/// than the sweep itself (the thread's exit unmaps its stack, which interrupts every CPU
/// running pid 1 or the command, since they share the supervisor's address space).
pub fn sweep() {
    // A few per run: each `rmdir` may wait on the cgroup lock, and the run's wait starts after
    // this. Leftovers are taken by the next runs.
    let mut budget = MAX_SWEPT;
    for ctl in ["pids", "memory"] {
        let Some(dir) = controller(ctl) else { continue };
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if budget == 0 {
                return;
            }
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("stockade-")) else { continue };
            let Some(pid) = rest.split('-').next() else { continue };
            if !Path::new("/proc").join(pid).exists() {
                budget -= 1;
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// Most stale groups one [`sweep`] tries to remove.
const MAX_SWEPT: usize = 4;

/// The cgroup v1 controllers stockade limits with, in the order of the slots of
/// [`open_roots`] and [`Planned::tasks`].
pub const CONTROLLERS: [&str; 2] = ["pids", "memory"];

/// Opens each controller's root directory (`O_PATH`), or `None` where it is not mounted.
///
/// Both implementations open them before the sandbox's first process exists, and the command
/// reaches its `tasks` files through them. Under `namespaces` that happens before pid 1 is
/// cloned, and the command joins while pid 1 builds the mount view, on the host's mounts. Through the sandbox's own copies it could not: they become
/// read-only, and a file open for writing on one of them would make pid 1's recursive
/// read-only `mount_setattr` of `/` fail with `EBUSY`.
///
/// No check that a root is a cgroup mount, as [`Planned::create`] makes: it costs a `stat`
/// here, on the path every run waits for, and a root is only used for a group that was made.
pub fn open_roots() -> [Option<OwnedFd>; 2] {
    CONTROLLERS.map(|ctl| {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(Path::new("/sys/fs/cgroup").join(ctl))
            .ok()?;
        Some(OwnedFd::from(dir))
    })
}

/// The groups a run will have, named before they exist. Under `namespaces`, the run names them
/// before the go message (the command needs their paths) and makes them after it
/// ([`Planned::create`]), off the path every run waits for: making them took about 0.1 ms
/// there.
#[derive(Debug, Clone)]
pub struct Planned {
    name: String,
    max_processes: Option<u32>,
    memory_bytes: Option<u64>,
}

/// Names the run's groups, if the policy sets a limit a group can enforce. No system calls:
/// whether the controllers exist is up to [`Planned::create`].
pub fn plan(policy: &Policy) -> Option<Planned> {
    static N: AtomicU64 = AtomicU64::new(0);
    if policy.process.max_processes.is_none() && policy.process.memory_bytes.is_none() {
        return None;
    }
    Some(Planned {
        name: format!("stockade-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)),
        max_processes: policy.process.max_processes,
        memory_bytes: policy.process.memory_bytes,
    })
}

impl Planned {
    /// The group's name, the same under every controller: the directory below each root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each group's `tasks` file relative to its controller's root, with the controller's slot
    /// in [`CONTROLLERS`]: what the command joins once [`Planned::create`] made it.
    pub fn tasks(&self) -> Vec<(usize, PathBuf)> {
        let wanted = [self.max_processes.is_some(), self.memory_bytes.is_some()];
        (0..CONTROLLERS.len())
            .filter(|&slot| wanted[slot])
            .map(|slot| (slot, Path::new(&self.name).join("tasks")))
            .collect()
    }

    /// Creates the groups (root callers; elsewhere `mkdir` fails and the rlimits remain), for
    /// the controllers whose slot in [`CONTROLLERS`] is `usable`: a group the command could
    /// not join (its root failed to open) would only be reported as a limit that holds.
    /// Returns `None` when none could be made.
    pub fn create(&self, usable: [bool; 2]) -> Option<RunGroups> {
        let mut g = RunGroups { dirs: Vec::new(), created: [false; 2], words: Vec::new(), pids: false, memory: false };
        // By slot in CONTROLLERS: the limit file and its value.
        let limits = [
            self.max_processes.map(|n| ("pids.max", n.to_string())),
            self.memory_bytes.map(|b| ("memory.limit_in_bytes", b.to_string())),
        ];
        for (slot, limit) in limits.into_iter().enumerate().filter(|&(slot, _)| usable[slot]) {
            let (Some((file, value)), Some(ctl)) = (limit, controller(CONTROLLERS[slot])) else { continue };
            let dir = ctl.join(&self.name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            g.dirs.push(dir.clone());
            g.created[slot] = true;
            if std::fs::write(dir.join(file), &value).is_ok() {
                g.words.push(format!("cgroup v1 {file}={value} for the whole tree"));
                if slot == 0 {
                    g.pids = true;
                } else {
                    g.memory = true;
                }
            }
        }
        if g.dirs.is_empty() {
            None
        } else {
            Some(g)
        }
    }
}

impl RunGroups {
    /// Bit `slot` for each controller of [`CONTROLLERS`] that got a group.
    pub fn made_mask(&self) -> u32 {
        (0..CONTROLLERS.len()).filter(|&slot| self.created[slot]).fold(0, |bits, slot| bits | 1 << slot)
    }

    /// Removes the groups once their tasks are gone (retrying while the kernel finishes).
    pub fn remove(self) {
        self.remover()();
    }

    /// [`RunGroups::remove`] as a closure for the thread that reaps the sandbox.
    pub fn remover(&self) -> impl FnOnce() + Send + 'static {
        let dirs = self.dirs.clone();
        move || remove_dirs(&dirs)
    }
}

fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        for _ in 0..20 {
            // Gone already: a one-shot run's pid 1 removes its groups itself (see
            // `sys::remove_run_groups`).
            if std::fs::remove_dir(d).map_or_else(|e| e.kind() == std::io::ErrorKind::NotFound, |()| true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
