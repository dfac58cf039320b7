//! Tree-wide limits through cgroup v1 `pids` and `memory` controllers, for root callers on
//! hosts that mount them (this is where `RLIMIT_NPROC` fails: the kernel never applies it to
//! uid 0 in the initial user namespace, and a root caller maps 0 to 0).
//!
//! A run gets its own `stockade-<pid>-<n>` group under each controller; the sandbox's first
//! process moves itself in (writing `0` to `tasks`) before it forks, so every descendant is
//! counted. The group is removed when the tree is gone, by the thread that reaped pid 1, or by
//! the next run's [`sweep`] when the caller exited first.
//!
//! References: [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html),
//! [Documentation/admin-guide/cgroup-v1/pids.rst](https://docs.kernel.org/admin-guide/cgroup-v1/pids.html).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use stockade_policy::Policy;

/// The groups of one run.
#[derive(Debug)]
pub struct RunGroups {
    dirs: Vec<PathBuf>,
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

/// Removes groups left by earlier runs whose supervisor is gone (a CLI exits right after its
/// run, before the thread that reaps pid 1 could remove the group). Only empty groups can be removed,
/// so a group still in use is never touched.
///
/// A run calls it once pid 1 reports that the command started, while the supervisor would
/// otherwise only wait: before that it would delay the launch (an `rmdir` here and pid 1
/// joining its own groups take the same cgroup lock), and on a thread of its own it cost more
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

/// Creates the groups the policy needs, when the caller is root and the controllers exist.
/// Returns `None` when nothing applies (the rlimits remain).
pub fn create(policy: &Policy) -> Option<RunGroups> {
    // SAFETY-free: geteuid via std is not available; the real check is whether mkdir works.
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!("stockade-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let mut g = RunGroups { dirs: Vec::new(), words: Vec::new(), pids: false, memory: false };
    if controller("pids").is_none() && controller("memory").is_none() {
        return None;
    }
    if let (Some(max), Some(ctl)) = (policy.process.max_processes, controller("pids")) {
        let dir = ctl.join(&name);
        if std::fs::create_dir(&dir).is_ok() {
            g.dirs.push(dir.clone());
            if std::fs::write(dir.join("pids.max"), max.to_string()).is_ok() {
                g.pids = true;
                g.words.push(format!("cgroup v1 pids.max={max} for the whole tree"));
            }
        }
    }
    if let (Some(bytes), Some(ctl)) = (policy.process.memory_bytes, controller("memory")) {
        let dir = ctl.join(&name);
        if std::fs::create_dir(&dir).is_ok() {
            g.dirs.push(dir.clone());
            if std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string()).is_ok() {
                g.memory = true;
                g.words.push(format!("cgroup v1 memory.limit_in_bytes={bytes} for the whole tree"));
            }
        }
    }
    if g.dirs.is_empty() {
        None
    } else {
        Some(g)
    }
}

impl RunGroups {
    /// Every group's `tasks` file, for the sandbox's first process to join by writing `0`.
    pub fn task_paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("tasks")).collect()
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
            if std::fs::remove_dir(d).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
