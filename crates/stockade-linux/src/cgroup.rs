//! Tree-wide limits through cgroups, where the rlimits fall short: `RLIMIT_NPROC` is never
//! applied to uid 0 of the initial user namespace (and a root caller maps 0 to 0), and
//! `RLIMIT_AS` limits one process's address space, not a tree's memory.
//!
//! Two kinds of host, and each controller is on exactly one of them:
//! - **cgroup v1** `pids` and `memory` mounted (this project's test host; root callers): a run
//!   gets its own `stockade-<pid>-<n>` group under each controller; the command moves itself in
//!   (writing `0` to `tasks`, through the controller roots of [`open_roots`]) before it forks, so
//!   every descendant is counted (under `namespaces` once the supervisor has made the groups
//!   after the go message; pid 1 stays outside).
//! - **cgroup v2**, for a caller in the root group of the hierarchy it sees (root on a host or VM
//!   without systemd, for one) whose root enables the controllers for the groups below it: a
//!   run's group is made below the caller's own group ([`V2Parent`] says why nowhere else), and
//!   the command is cloned straight into it (`CLONE_INTO_CGROUP`, see `sys::clone3`): moving a
//!   process later would wait for an RCU grace period. The group is made before the go
//!   message, since the command is cloned right after it. Where the clone into it fails, the
//!   command starts without it and the run says so (`Prepared::cgroup2_missed`).
//!
//! Groups are removed when the tree is gone: by the thread that reaped pid 1, or, for a one-shot
//! caller (the CLI), which exits before that, by pid 1 itself once the caller is gone
//! (`sys::remove_run_groups`). A later run's [`sweep`] takes what is left when pid 1 does not get
//! that far.
//!
//! References: [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html),
//! [Documentation/admin-guide/cgroup-v1/pids.rst](https://docs.kernel.org/admin-guide/cgroup-v1/pids.html),
//! [Documentation/admin-guide/cgroup-v2.rst](https://docs.kernel.org/admin-guide/cgroup-v2.html)
//! ("Delegation", "No Internal Process Constraint").

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
    /// The run's cgroup v2 group, which the command is cloned into (see [`Planned::create_v2`]).
    pub v2_dir: Option<PathBuf>,
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
pub fn sweep(v2_parent: Option<&Path>) {
    // A few per run: each `rmdir` may wait on the cgroup lock, and the run's wait starts after
    // this. Leftovers are taken by the next runs.
    let mut budget = MAX_SWEPT;
    let dirs = CONTROLLERS.iter().filter_map(|ctl| controller(ctl)).chain(v2_parent.map(Path::to_path_buf));
    for dir in dirs {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if budget == 0 {
                return;
            }
            let name = e.file_name();
            // Only names stockade makes (`stockade-<pid>-<n>`): another program's empty
            // `stockade-web` group is not ours to remove.
            let Some(pid) = name.to_str().and_then(run_group_pid) else { continue };
            // A supervisor in another pid namespace looks gone from here: its group is left
            // alone while it is young, since it is empty between its making and its command's
            // start (a cgroup v2 group for longer: it is made before the go message). The
            // cgroup filesystem dates a directory when its inode is made: at `mkdir`, or later
            // if the kernel dropped the inode meanwhile, when a stale group only waits longer.
            let young = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < MIN_SWEPT_AGE);
            if !young && !Path::new("/proc").join(pid).exists() {
                budget -= 1;
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// The supervisor's pid in a run group's name, `stockade-<pid>-<n>`, or `None` for any other
/// name.
fn run_group_pid(name: &str) -> Option<&str> {
    let (pid, n) = name.strip_prefix("stockade-")?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then_some(pid)
}

/// Most stale groups one [`sweep`] tries to remove.
const MAX_SWEPT: usize = 4;

/// How old a group must be before [`sweep`] considers it stale.
const MIN_SWEPT_AGE: std::time::Duration = std::time::Duration::from_secs(60);

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
        let mut g = RunGroups::new(None);
        let limits = self.limits("memory.limit_in_bytes");
        for (slot, limit) in limits.into_iter().enumerate().filter(|&(slot, _)| usable[slot]) {
            let (Some((file, value)), Some(ctl)) = (limit, controller(CONTROLLERS[slot])) else { continue };
            let dir = ctl.join(&self.name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            g.dirs.push(dir.clone());
            g.created[slot] = true;
            if std::fs::write(dir.join(file), &value).is_ok() {
                g.holds(slot, format!("cgroup v1 {file}={value} for the whole tree"));
            }
        }
        if g.dirs.is_empty() {
            None
        } else {
            Some(g)
        }
    }

    /// By slot in [`CONTROLLERS`]: the file that holds each limit the policy sets, and its
    /// value (the memory limit's file is `memory_file`, which cgroup v1 and v2 name apart).
    fn limits(&self, memory_file: &'static str) -> [Option<(&'static str, String)>; 2] {
        [
            self.max_processes.map(|n| ("pids.max", n.to_string())),
            self.memory_bytes.map(|b| (memory_file, b.to_string())),
        ]
    }

    /// Makes the run's cgroup v2 group in `parent` for the limits that no cgroup v1 group covers
    /// (`v1_usable`, by slot in [`CONTROLLERS`]) and that `parent` enables for its children (its
    /// `cgroup.subtree_control`). `None` when there are none, or when the group cannot be made
    /// (a parent the caller may not write to): the rlimits remain, and the run's words say so.
    /// The command is to be cloned into [`RunGroups::v2_dir`] (see `sys::clone3`).
    pub fn create_v2(&self, parent: &V2Parent, v1_usable: [bool; 2]) -> Option<RunGroups> {
        use rustix::fs::{mkdirat, openat, Mode, OFlags};
        let limits = self.limits("memory.max");
        if limits.iter().zip(v1_usable).all(|(l, v1)| l.is_none() || v1) {
            return None;
        }
        let enabled = enabled(&read_at(&parent.fd, "cgroup.subtree_control")?);
        let slots: Vec<usize> = (0..CONTROLLERS.len())
            .filter(|&slot| !v1_usable[slot] && limits[slot].is_some() && enabled[slot])
            .collect();
        if slots.is_empty() {
            return None;
        }
        mkdirat(&parent.fd, self.name.as_str(), Mode::from_raw_mode(0o755)).ok()?;
        let mut g = RunGroups::new(Some(parent.path.join(&self.name)));
        for slot in slots {
            let Some((file, value)) = &limits[slot] else { continue };
            let written = openat(
                &parent.fd,
                format!("{}/{file}", self.name).as_str(),
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(|f| rustix::io::write(&f, value.as_bytes()))
            .is_ok();
            if written {
                g.holds(slot, format!("cgroup v2 {file}={value} for the whole tree"));
            }
        }
        if g.words.is_empty() {
            // A group without a limit would only be reported as one.
            g.remove();
            return None;
        }
        Some(g)
    }
}

/// A small file below `dir` (cgroup interface files are a line or two).
fn read_at(dir: &OwnedFd, name: &str) -> Option<String> {
    use rustix::fs::{openat, Mode, OFlags};
    let f = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 512];
    let n = rustix::io::read(&f, &mut buf).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

/// Where cgroup v2 is mounted: alone at `/sys/fs/cgroup`, or beside cgroup v1 (a "hybrid"
/// host such as this project's test machine) at `/sys/fs/cgroup/unified`. Of the two, only the
/// one where cgroup v2 is mounted has a `cgroup.controllers` file (a cgroup v1 mount or the
/// tmpfs that holds the v1 mounts has none).
const V2_MOUNTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// The cgroup v2 group a run's group is made in: the caller's own group, and only when that is
/// the root of the hierarchy it sees (a caller in the root group, such as root on a host or VM
/// without systemd). Below any other group the run's group could not have controllers: a group
/// other than the root that holds processes (the caller) cannot enable them for the groups below
/// it. And beside the caller's group, in its parent, the command would leave the caller's unit:
/// its limits (`TasksMax=`, `MemoryMax=`), its accounting, and the kill when the unit stops
/// would no longer cover it. On a systemd host the way is a scope of its own with `Delegate=yes`,
/// asked of systemd; stockade does not do that yet, and uses the rlimits there.
#[derive(Debug)]
pub struct V2Parent {
    /// The group's directory (for the sweep and for removal by path).
    pub path: PathBuf,
    /// It, opened `O_PATH` before the sandbox's first process exists: the supervisor makes the
    /// run's group through it, and pid 1 clones the command into that group and removes it
    /// through its copy, when its own mounts have made its view of `/sys` read-only.
    pub fd: OwnedFd,
}

/// Finds and opens the [`V2Parent`], only when `v1` lacks a controller's root: a controller
/// mounted under cgroup v1 cannot also be on v2, so on a host where both v1 roots opened there
/// is nothing to look for, and this makes no system call.
pub fn open_v2_parent(v1: &[Option<OwnedFd>; 2]) -> Option<V2Parent> {
    if v1.iter().all(Option::is_some) {
        return None;
    }
    let path = locate_v2().ok()?;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    Some(V2Parent { path, fd: OwnedFd::from(dir) })
}

/// The directory of the caller's own cgroup v2 group when it may hold a run's group (see
/// [`V2Parent`]), or why not.
fn locate_v2() -> Result<PathBuf, String> {
    // The caller's group first: it is not the root on most hosts (on systemd's, never), which
    // then need read nothing more on the path a launch waits for.
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    match own_v2_path(&own) {
        Some("/") => {}
        Some(own) => {
            return Err(format!(
                "the caller's cgroup v2 group {own} holds processes, so no group below it can have controllers, \
                 and a group beside it would take the command out of the caller's unit"
            ))
        }
        None => return Err("/proc/self/cgroup has no cgroup v2 line".into()),
    }
    let mount = V2_MOUNTS
        .iter()
        .map(Path::new)
        .find(|m| m.join("cgroup.controllers").exists())
        .ok_or("no cgroup v2 hierarchy is mounted")?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    if mount_root(&mountinfo, mount) != Some("/") {
        return Err(format!("{} does not show the root of this process's cgroup namespace", mount.display()));
    }
    Ok(mount.to_path_buf())
}

/// The root field (the mounted directory of its filesystem) of the cgroup2 mount at `at`, from
/// the text of `/proc/self/mountinfo`: of the last one listed there, the one on top when
/// several are stacked. (`at` is compared as listed: the kernel escapes spaces and the like in
/// mount points, which the two places looked at do not have.)
fn mount_root<'a>(mountinfo: &'a str, at: &Path) -> Option<&'a str> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4).map(Path::new) == Some(at) && f.get(sep + 1) == Some(&"cgroup2")).then(|| f[3])
    })
}

/// What `stockade doctor` says about limits: whether a run here gets a group for both limits
/// (process count and memory), and in words what it would use.
pub fn describe() -> (bool, String) {
    let writable = |p: &Path| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok();
    let v1 = open_roots();
    let v1_ok: Vec<bool> = CONTROLLERS
        .iter()
        .zip(&v1)
        .map(|(c, r)| r.is_some() && writable(&Path::new("/sys/fs/cgroup").join(c)))
        .collect();
    let mut words = Vec::new();
    let v1_names = names(|s| v1_ok[s]);
    if !v1_names.is_empty() {
        words.push(format!("cgroup v1 groups per run for {}", v1_names.join(" and ")));
    } else if v1.iter().any(Option::is_some) {
        words.push("the cgroup v1 controllers are not writable by this user".into());
    }
    let mut covered = v1_names.len();
    if v1.iter().any(Option::is_none) {
        match locate_v2() {
            Err(why) => words.push(format!("no cgroup v2 group: {why}")),
            Ok(path) => {
                let on = enabled_at(&path);
                let v2_names = names(|s| v1[s].is_none() && on[s]);
                let at = path.display();
                if v2_names.is_empty() {
                    words.push(format!(
                        "no cgroup v2 group: {at} does not enable pids or memory for the groups below it"
                    ));
                } else if !writable(&path) {
                    words.push(format!("no cgroup v2 group: {at} is not writable by this user"));
                } else if !crate::sys::CLONE3_VM {
                    words.push(format!(
                        "cgroup v2 groups in {at} for landlock-only runs only (namespaces needs x86-64 for them)"
                    ));
                } else {
                    words.push(format!("cgroup v2 groups per run in {at} for {}", v2_names.join(" and ")));
                    covered += v2_names.len();
                }
            }
        }
    }
    (covered == CONTROLLERS.len(), words.join("; "))
}

/// Why a run here has no cgroup v2 group, in words for its `limits` layer; `needs_vm` for a
/// `namespaces` run, which needs [`crate::sys::CLONE3_VM`] to start its command in one.
pub fn v2_unused_words(needs_vm: bool) -> String {
    if needs_vm && !crate::sys::CLONE3_VM {
        return "namespaces starts its command in a cgroup v2 group on x86-64 only".into();
    }
    match locate_v2() {
        Err(why) => why,
        Ok(path) => {
            let on = enabled_at(&path);
            let listed = names(|s| on[s]);
            if listed.is_empty() {
                format!("{} does not enable pids or memory for the groups below it", path.display())
            } else {
                format!(
                    "{} enables {} for the groups below it, which is not what the policy's limits need, \
                     or this user may not make a group there",
                    path.display(),
                    listed.join(" and ")
                )
            }
        }
    }
}

/// The caller's cgroup v2 path, from the text of `/proc/self/cgroup` (its `0::` line).
fn own_v2_path(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::")).filter(|p| p.starts_with('/'))
}

/// Which of [`CONTROLLERS`] a `cgroup.subtree_control` text enables for the groups below.
fn enabled(subtree_control: &str) -> [bool; 2] {
    CONTROLLERS.map(|c| subtree_control.split_whitespace().any(|x| x == c))
}

/// Which of [`CONTROLLERS`] the cgroup v2 group at `dir` enables for the groups below it.
fn enabled_at(dir: &Path) -> [bool; 2] {
    std::fs::read_to_string(dir.join("cgroup.subtree_control")).map_or([false; 2], |t| enabled(&t))
}

/// The names of the controllers of [`CONTROLLERS`] whose slot `on` picks.
fn names(on: impl Fn(usize) -> bool) -> Vec<&'static str> {
    (0..CONTROLLERS.len()).filter(|&s| on(s)).map(|s| CONTROLLERS[s]).collect()
}

impl RunGroups {
    /// No group yet, or (with `v2_dir`) the run's cgroup v2 group, before it holds a limit.
    fn new(v2_dir: Option<PathBuf>) -> RunGroups {
        RunGroups {
            dirs: v2_dir.iter().cloned().collect(),
            created: [false; 2],
            words: Vec::new(),
            pids: false,
            memory: false,
            v2_dir,
        }
    }

    /// Notes that the groups hold the limit of the controller in `slot` of [`CONTROLLERS`],
    /// said in `words`.
    fn holds(&mut self, slot: usize, words: String) {
        self.words.push(words);
        if slot == 0 {
            self.pids = true;
        } else {
            self.memory = true;
        }
    }

    /// `a` and `b` as one: a run may have cgroup v1 groups for some controllers and a cgroup v2
    /// group for the others.
    pub fn merge(a: Option<RunGroups>, b: Option<RunGroups>) -> Option<RunGroups> {
        match (a, b) {
            (Some(mut a), Some(b)) => {
                a.dirs.extend(b.dirs);
                a.words.extend(b.words);
                for slot in 0..CONTROLLERS.len() {
                    a.created[slot] |= b.created[slot];
                }
                a.pids |= b.pids;
                a.memory |= b.memory;
                a.v2_dir = a.v2_dir.or(b.v2_dir);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_stockade_makes_are_run_groups() {
        assert_eq!(run_group_pid("stockade-1234-0"), Some("1234"));
        assert_eq!(run_group_pid("stockade-1-17"), Some("1"));
        for other in [
            "stockade-web",
            "stockade-web-1",
            "stockade-12",
            "stockade-12-",
            "stockade--3",
            "stockade-1-2-3",
            "docker-1-2",
        ] {
            assert_eq!(run_group_pid(other), None, "{other}");
        }
    }

    #[test]
    fn own_path_is_the_v2_line() {
        let hybrid = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/x\n0::/\n";
        assert_eq!(own_v2_path(hybrid), Some("/"));
        let v2 = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope\n";
        assert_eq!(own_v2_path(v2), Some("/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope"));
        assert_eq!(own_v2_path("4:memory:/x\n"), None);
        assert_eq!(own_v2_path("0::relative\n"), None);
    }

    #[test]
    fn mount_root_is_read_for_the_cgroup2_mount_only() {
        let info = "31 24 0:27 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
                    40 31 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(mount_root(info, Path::new("/sys/fs/cgroup/unified")), Some("/"));
        assert_eq!(mount_root(info, Path::new("/sys/fs/cgroup")), None, "a tmpfs there is no cgroup2 mount");
        // A host's hierarchy mounted in a container: its root is the container's group, not `/`.
        let container = "50 40 0:30 /system.slice/docker-1.scope /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
        assert_eq!(mount_root(container, Path::new("/sys/fs/cgroup")), Some("/system.slice/docker-1.scope"));
        // Stacked at the same place: the one on top (listed last) is what the path shows.
        let stacked = "40 31 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                       60 40 0:37 /a.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(mount_root(stacked, Path::new("/sys/fs/cgroup")), Some("/a.slice"));
    }

    #[test]
    fn enabled_reads_whole_words() {
        assert_eq!(enabled("cpuset cpu io memory pids\n"), [true, true]);
        assert_eq!(enabled("memory hugetlb\n"), [false, true]);
        assert_eq!(enabled("\n"), [false, false]);
        assert_eq!(enabled("pids_extra"), [false, false]);
    }

    #[test]
    fn merge_keeps_both_kinds() {
        let mut v1 = RunGroups::new(None);
        v1.dirs.push("/sys/fs/cgroup/pids/a".into());
        v1.created[0] = true;
        v1.holds(0, "v1".into());
        let mut v2 = RunGroups::new(Some("/sys/fs/cgroup/unified/a".into()));
        v2.holds(1, "v2".into());
        let m = RunGroups::merge(Some(v1), Some(v2)).unwrap();
        assert_eq!((m.pids, m.memory, m.made_mask(), m.dirs.len()), (true, true, 1, 2));
        assert_eq!(m.v2_dir.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/a")));
        assert!(RunGroups::merge(None, None).is_none());
    }
}
