//! The mount plan: which mounts the sandbox's mount namespace gets, computed from the policy
//! and facts about the host, with no system calls (STYLE.md 1).
//!
//! The view is the host's `/`, recursively read-only, `nosuid` and `nodev`, with:
//! writable binds of the writable roots; read-only binds over protected paths inside them;
//! empty read-only tmpfs over deny-read directories and host socket directories (`/run`,
//! `/var/run`, `$XDG_RUNTIME_DIR`); `/dev/null` bound (read-only, unreadable) over deny-read
//! files; private tmpfs on `/tmp` and `/var/tmp`; a minimal `/dev`; and a fresh `/proc` whose
//! `/proc/sys` is read-only.
//!
//! Protected paths that do not exist yet cannot be bound over (a bind needs a mount point).
//! See [`Missing`] and docs/linux.md for what happens instead.
//!
//! References: [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html),
//! [open_tree(2)](https://man7.org/linux/man-pages/man2/open_tree.2.html),
//! [mount_setattr(2)](https://man7.org/linux/man-pages/man2/mount_setattr.2.html).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use stockade_policy::Policy;

/// What the host looks like at one protected path, as probed by [`crate::host_facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PathState {
    /// A directory.
    Dir,
    /// A regular file (or anything that is neither a directory nor a symlink).
    File,
    /// A symbolic link: refused.
    Symlink,
    /// Does not exist.
    Missing,
}

/// A protected path, relative to the writable root that contains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protected {
    /// The writable root.
    pub root: PathBuf,
    /// The path below the root (non-empty, no `..`).
    pub rel: PathBuf,
    /// What exists there now.
    pub state: PathState,
    /// For a missing path: how many leading components of `rel` exist (as directories).
    pub existing_components: usize,
    /// Whether a missing path gets a placeholder. True for protected paths and for deny-write
    /// entries that name directories (`~/.config/git` inside a writable `~/.config`, stockade's
    /// own configuration directory); false for other deny-write entries, which may name files
    /// (`~/.bashrc` inside a writable `/home`), where an empty directory or file would change
    /// how shells behave: a missing one stays creatable, which the run reports as a gap.
    pub placeholder: bool,
}

/// Facts about the host the plan depends on (gathered by [`crate::host_facts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// Protected paths (and deny-write paths inside writable roots) with their state.
    pub protected: Vec<Protected>,
    /// Which deny-read paths exist, and whether each is a directory.
    pub deny_read: Vec<(PathBuf, bool)>,
    /// Host socket directories that exist and are not symlinks (`/run`, `$XDG_RUNTIME_DIR`...).
    pub socket_dirs: Vec<PathBuf>,
    /// Regular files below `socket_dirs` that the view keeps (see [`MountOp::KeepFile`]).
    pub kept: Vec<PathBuf>,
    /// The git directories of the writable roots' repositories (each `.git` and its
    /// submodules') whose `commondir` is checked after the run (see [`crate::git_redirect`]).
    pub repositories: Vec<PathBuf>,
    /// Whether `/var/tmp` exists as a directory.
    pub var_tmp: bool,
    /// Bound pathname unix sockets of the host (from `/proc/net/unix`) that the sandbox would
    /// still see: each gets `/dev/null` bound over it, since a read-only mount does not stop
    /// `connect()` and Landlock mediates it only from ABI 9.
    pub sockets: Vec<PathBuf>,
    /// The identity of every existing path the probe of the protected paths opened below a
    /// writable root (see [`Identities`]).
    #[serde(skip)]
    pub identities: Identities,
}

/// `(st_dev, st_ino)` of paths below writable roots, keyed by `(root, rel)`, as the probe of
/// the protected paths found them. Pid 1 re-checks a read-only bind's or a pin's identity
/// before it mounts, and these spare the supervisor opening each path a second time for it
/// (two `openat2`s and an `fstat` per path, on the path every run waits for). A path the probe
/// did not open, such as a placeholder made after it, is not here and is opened afresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities(HashMap<(PathBuf, PathBuf), (u64, u64)>);

impl Identities {
    /// Records the identity of `root/rel`.
    pub fn record(&mut self, root: &Path, rel: &Path, id: (u64, u64)) {
        self.0.insert((root.to_path_buf(), rel.to_path_buf()), id);
    }

    /// The recorded identity of `root/rel`, if the probe opened it.
    pub fn get(&self, root: &Path, rel: &Path) -> Option<(u64, u64)> {
        self.0.get(&(root.to_path_buf(), rel.to_path_buf())).copied()
    }
}

/// How a missing protected path is kept from being created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Missing {
    /// A placeholder (see [`PlaceholderKind`]) is created on the host before the run, then bound
    /// read-only, and left in place (removing it could unmount it under a concurrent run on the
    /// same workspace). Used for names that mean nothing in that form: agent config directories,
    /// `.git/hooks` and `.git/config` inside an existing `.git`, and `.git` itself when it is
    /// missing: git's repository discovery skips a `.git` directory that is not a repository,
    /// so the placeholder neither creates a repository nor hides a parent one, while its
    /// read-only bind keeps `git init` (and planted hooks) out of the workspace.
    Placeholder {
        /// The writable root.
        root: PathBuf,
        /// Below the root.
        rel: PathBuf,
        /// What it is made of.
        kind: PlaceholderKind,
    },
}

/// What a placeholder is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PlaceholderKind {
    /// A directory holding only [`PLACEHOLDER_NOTE`], for `.git` and directories inside it:
    /// never empty, so nothing can be renamed over it, and git never lists what is inside
    /// `.git`.
    NotedDir,
    /// An empty directory, for paths in the work tree (`.codex`, `.vscode`): a file inside
    /// would appear in every `git status` as untracked. A process outside every sandbox could
    /// rename a directory over it during a run (docs/linux.md, "What remains").
    EmptyDir,
    /// An empty regular file (`.git/config`).
    EmptyFile,
}

impl PlaceholderKind {
    /// The kind for `rel` (below a writable root): a file for [`FILE_NAMES`] as the last
    /// component, a noted directory at or below `.git`, an empty directory elsewhere.
    fn for_path(rel: &Path, last: bool) -> PlaceholderKind {
        if last && rel.file_name().is_some_and(|n| FILE_NAMES.iter().any(|f| n == *f)) {
            PlaceholderKind::EmptyFile
        } else if rel.components().next().is_some_and(|c| c.as_os_str() == ".git") {
            PlaceholderKind::NotedDir
        } else {
            PlaceholderKind::EmptyDir
        }
    }
}

/// One mount step inside the sandbox's mount namespace, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MountOp {
    /// `MS_REC|MS_PRIVATE` on `/`: nothing propagates to or from the host.
    MakePrivate,
    /// `mount_setattr(/, AT_RECURSIVE, RDONLY|NOSUID|NODEV)`.
    ReadOnlyRoot,
    /// An empty, read-only tmpfs over a directory (deny-read, host sockets).
    HideDir(PathBuf),
    /// `/dev/null` bound read-only and `nodev` over a file, so opening it fails.
    HideFile(PathBuf),
    /// A host file below a hidden directory, kept in the view read-only at its own path: with
    /// the network on, the target of `/etc/resolv.conf` where that is a link into `/run`
    /// (systemd-resolved's `stub-resolv.conf`), without which no name resolves. The hidden
    /// directory's tmpfs stays writable until this step, which makes the file's parents and a
    /// mount point in it, binds the host file there (opened before the tmpfs covered it), and
    /// then makes the tmpfs read-only.
    KeepFile {
        /// The hidden directory.
        dir: PathBuf,
        /// The file, below it.
        rel: PathBuf,
    },
    /// A private writable tmpfs (`/tmp`, `/var/tmp`), `nosuid,nodev`, with a size limit.
    Tmpfs {
        /// Where.
        path: PathBuf,
        /// `size=` in bytes.
        size: u64,
    },
    /// A writable recursive bind of a writable root onto itself, from an fd opened without
    /// following symlinks (before any tmpfs could cover it).
    BindWritable(PathBuf),
    /// A read-only bind of a protected path onto itself, resolved below its root with
    /// `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS` after the root's bind is in place.
    BindReadOnly {
        /// The writable root.
        root: PathBuf,
        /// Below the root.
        rel: PathBuf,
    },
    /// A directory inside a writable root bound onto itself, still writable, so that it is a
    /// mount point: `rename` and `rmdir` of a mount point fail with `EBUSY`, so `.git` cannot
    /// be moved aside and replaced by a fresh one around its read-only children.
    Pin {
        /// The writable root.
        root: PathBuf,
        /// Below the root.
        rel: PathBuf,
    },
    /// A minimal `/dev` on tmpfs: null zero full random urandom tty bound from the host,
    /// a private devpts, `ptmx`, `fd`/`stdin`/`stdout`/`stderr` links, and `/dev/shm`. Always
    /// the last step but [`MountOp::Proc`]: once it is done, the command adds the Landlock
    /// rules for paths that the steps up to here mount over (see [`covers`]), so no later step
    /// may mount over anything but `/proc`.
    Dev {
        /// Size of `/dev/shm`, or `None` for no `/dev/shm`.
        shm_size: Option<u64>,
    },
    /// A fresh procfs for the new pid namespace, then `/proc/sys` read-only.
    Proc,
}

/// The mount plan and what it implies for the host and for Landlock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MountPlan {
    /// The mounts, in order.
    pub ops: Vec<MountOp>,
    /// How each missing protected path is handled.
    pub missing: Vec<Missing>,
}

/// A path the view mounts something else over: a fresh tmpfs, a hidden tree or file, `/dev`,
/// `/proc`. A Landlock rule added for it (or for a path below it) before that step would hold
/// the host's inode there, which the finished view no longer reaches: Landlock's walk up from a
/// file skips a directory that a mount covers (it goes from the mount's root straight to the
/// covered directory's parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cover {
    /// Where the mount goes.
    pub path: PathBuf,
    /// Whether the step is done by the time [`MountOp::Dev`] is (every step but
    /// [`MountOp::Proc`]).
    pub by_dev: bool,
}

/// The paths `plan` mounts over, in order (see [`Cover`]). Binds of a path onto itself
/// ([`MountOp::BindWritable`], [`MountOp::BindReadOnly`], [`MountOp::Pin`]) are not covers:
/// the same inodes stay at and below the path.
pub fn covers(plan: &MountPlan) -> Vec<Cover> {
    let dev_step = plan.ops.iter().position(|op| matches!(op, MountOp::Dev { .. }));
    plan.ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| {
            let path = match op {
                MountOp::HideDir(p) | MountOp::HideFile(p) | MountOp::Tmpfs { path: p, .. } => p.clone(),
                MountOp::KeepFile { dir, rel } => dir.join(rel),
                MountOp::Dev { .. } => "/dev".into(),
                MountOp::Proc => "/proc".into(),
                MountOp::MakePrivate
                | MountOp::ReadOnlyRoot
                | MountOp::BindWritable(_)
                | MountOp::BindReadOnly { .. }
                | MountOp::Pin { .. } => return None,
            };
            Some(Cover { path, by_dev: dev_step.is_some_and(|d| i <= d) })
        })
        .collect()
}

/// Size of each private tmpfs (`/tmp`, `/var/tmp`, `/dev/shm`) unless a third of the memory
/// limit is lower.
pub const DEFAULT_TMP_SIZE: u64 = 1 << 30;

/// The one file inside a placeholder directory at or below `.git`: a note saying what the
/// directory is. It also keeps the directory from ever being empty, which matters because
/// `rename(2)` may replace an empty directory, detaching the sandbox's read-only bind of it (see
/// [`crate::sys::create_placeholder`]).
pub const PLACEHOLDER_NOTE: &str = ".stockade-placeholder";

/// Names that are created as empty files, not directories, when they are missing.
const FILE_NAMES: &[&str] = &["config", "config.worktree"];

/// The directories that get a private tmpfs when `filesystem.private_tmp` is on.
pub const PRIVATE_TMP_DIRS: [&str; 2] = ["/tmp", "/var/tmp"];

/// A writable root that a private tmpfs would cover or split: `/tmp` or `/var/tmp` itself, or
/// a directory above one (`/var`, `/`), with the private tmp directory it conflicts with.
///
/// Such a run is refused rather than planned. Covering the root would hide the workspace (the
/// command would see an empty directory); leaving `/tmp` the host's instead would share it, and
/// the host's sockets in it (tmux, X11, ssh-agent), with the command, while the report says
/// `/tmp` is private. A writable root below `/tmp` is fine: it is bound over the tmpfs.
pub fn private_tmp_conflict(policy: &Policy) -> Option<(PathBuf, &'static str)> {
    if !policy.filesystem.private_tmp {
        return None;
    }
    PRIVATE_TMP_DIRS.iter().find_map(|tmp| {
        policy.filesystem.writable_paths().find(|w| Path::new(tmp).starts_with(w)).map(|w| (w.to_path_buf(), *tmp))
    })
}

/// A writable root at or below `/dev` or `/proc`, which every sandbox replaces with its own
/// (a minimal `/dev`, a fresh `/proc`), with the directory that would hide it. Such a run is
/// refused: the command would find its working directory gone.
pub fn hidden_writable_root(policy: &Policy) -> Option<(PathBuf, &'static str)> {
    ["/dev", "/proc"].iter().find_map(|fresh| {
        policy.filesystem.writable_paths().find(|w| w.starts_with(fresh)).map(|w| (w.to_path_buf(), *fresh))
    })
}

/// Builds the plan. Pure.
pub fn plan(policy: &Policy, facts: &HostFacts) -> MountPlan {
    let mut ops = vec![MountOp::MakePrivate, MountOp::ReadOnlyRoot];
    // Under a memory limit, a third of it each: the three private tmpfs mounts (`/tmp`,
    // `/var/tmp`, `/dev/shm`) then hold no more than the limit together. Their pages are memory
    // that an `RLIMIT_AS` (the limit without a memory cgroup) does not count.
    let size = policy.process.memory_bytes.map_or(DEFAULT_TMP_SIZE, |m| (m / 3).min(DEFAULT_TMP_SIZE));
    for d in &facts.socket_dirs {
        ops.push(MountOp::HideDir(d.clone()));
        for f in &facts.kept {
            if let Ok(rel) = f.strip_prefix(d) {
                ops.push(MountOp::KeepFile { dir: d.clone(), rel: rel.to_path_buf() });
            }
        }
    }
    if policy.filesystem.private_tmp {
        ops.push(MountOp::Tmpfs { path: "/tmp".into(), size });
        if facts.var_tmp {
            ops.push(MountOp::Tmpfs { path: "/var/tmp".into(), size });
        }
    }
    for w in policy.filesystem.writable_paths() {
        ops.push(MountOp::BindWritable(w.to_path_buf()));
    }
    let mut missing = Vec::new();
    let mut ro = Vec::new();
    for p in &facts.protected {
        match p.state {
            PathState::Dir | PathState::File => {
                ro.push(MountOp::BindReadOnly { root: p.root.clone(), rel: p.rel.clone() });
            }
            PathState::Symlink => {}
            PathState::Missing if !p.placeholder => {}
            PathState::Missing => {
                let comps: Vec<_> = p.rel.components().collect();
                let first_missing: PathBuf = comps[..=p.existing_components.min(comps.len() - 1)].iter().collect();
                let creates_git = first_missing.file_name().is_some_and(|n| n == ".git");
                if creates_git {
                    // Protect the whole placeholder `.git`, which covers every path below it.
                    let m = Missing::Placeholder {
                        root: p.root.clone(),
                        rel: first_missing.clone(),
                        kind: PlaceholderKind::NotedDir,
                    };
                    if !missing.contains(&m) {
                        missing.push(m);
                        ro.push(MountOp::BindReadOnly { root: p.root.clone(), rel: first_missing });
                    }
                } else {
                    // Placeholders for every missing component; the last is bound read-only.
                    for i in p.existing_components..comps.len() {
                        let rel: PathBuf = comps[..=i].iter().collect();
                        let kind = PlaceholderKind::for_path(&rel, i + 1 == comps.len());
                        let m = Missing::Placeholder { root: p.root.clone(), rel, kind };
                        if !missing.contains(&m) {
                            missing.push(m);
                        }
                    }
                    ro.push(MountOp::BindReadOnly { root: p.root.clone(), rel: p.rel.clone() });
                }
            }
        }
    }
    // Pin every directory between a root and a read-only bind (`.git` for `.git/hooks`), and
    // between a root and a hidden path inside it: a command that renamed such a directory
    // would carry the read-only bind or the hiding mount away with it, and the next run would
    // find nothing to protect or hide at the old path while the file sat readable or writable
    // at the new one. Pins come before the hides: a pin binds its directory without what is
    // mounted below it.
    let pinned_below = |root: &Path, rel: &Path| -> Vec<MountOp> {
        let comps: Vec<_> = rel.components().collect();
        let mut prefix = PathBuf::new();
        let mut pins = Vec::new();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            prefix.push(c);
            pins.push(MountOp::Pin { root: root.to_path_buf(), rel: prefix.clone() });
        }
        pins
    };
    let mut pins: Vec<MountOp> = Vec::new();
    for op in &ro {
        if let MountOp::BindReadOnly { root, rel } = op {
            pins.extend(pinned_below(root, rel));
        }
    }
    let hidden = facts.deny_read.iter().map(|(p, _)| p).chain(&facts.sockets);
    for path in hidden {
        let root =
            policy.filesystem.writable_paths().filter(|w| path.starts_with(w)).max_by_key(|w| w.as_os_str().len());
        if let Some(rel) = root.and_then(|r| path.strip_prefix(r).ok().map(|rel| (r, rel))) {
            pins.extend(pinned_below(rel.0, rel.1));
        }
    }
    for pin in pins {
        if !ops.contains(&pin) {
            ops.push(pin);
        }
    }
    for op in ro {
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    for (path, is_dir) in &facts.deny_read {
        ops.push(if *is_dir { MountOp::HideDir(path.clone()) } else { MountOp::HideFile(path.clone()) });
    }
    for sock in &facts.sockets {
        ops.push(MountOp::HideFile(sock.clone()));
    }
    ops.push(MountOp::Dev { shm_size: policy.filesystem.private_tmp.then_some(size) });
    ops.push(MountOp::Proc);
    MountPlan { ops, missing }
}

/// One line per op, for error messages ("sandbox setup failed at ...").
pub fn describe(op: &MountOp) -> String {
    match op {
        MountOp::MakePrivate => "making mounts private (mount MS_PRIVATE `/`)".into(),
        MountOp::ReadOnlyRoot => "read-only root (mount_setattr `/`)".into(),
        MountOp::HideDir(p) => format!("hiding `{}` (tmpfs)", p.display()),
        MountOp::HideFile(p) => format!("hiding `{}` (bind /dev/null)", p.display()),
        MountOp::KeepFile { dir, rel } => {
            format!(
                "keeping `{}` read-only in the hidden `{}` (mkdir/open_tree/move_mount)",
                dir.join(rel).display(),
                dir.display()
            )
        }
        MountOp::Tmpfs { path, .. } => format!("private tmpfs on `{}`", path.display()),
        MountOp::BindWritable(p) => format!("writable bind of `{}` (open_tree/move_mount)", p.display()),
        MountOp::BindReadOnly { root, rel } => {
            format!("read-only bind of protected `{}` (openat2/open_tree/move_mount)", root.join(rel).display())
        }
        MountOp::Pin { root, rel } => {
            format!("pinning `{}` as a mount point (open_tree/move_mount)", root.join(rel).display())
        }
        MountOp::Dev { .. } => "minimal /dev (tmpfs, devpts, device binds)".into(),
        MountOp::Proc => "fresh /proc (mount proc)".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testutil::policy;

    fn prot(rel: &str, state: PathState, existing: usize) -> Protected {
        Protected { root: "/ws".into(), rel: rel.into(), state, existing_components: existing, placeholder: true }
    }

    #[test]
    fn a_kept_file_follows_its_hidden_directory_and_is_a_cover() {
        let facts = HostFacts {
            socket_dirs: vec!["/run".into()],
            kept: vec!["/run/systemd/resolve/stub-resolv.conf".into()],
            ..HostFacts::default()
        };
        let p = plan(&policy("/ws"), &facts);
        let keep = MountOp::KeepFile { dir: "/run".into(), rel: "systemd/resolve/stub-resolv.conf".into() };
        let at = |op: &MountOp| p.ops.iter().position(|o| o == op);
        assert_eq!(at(&keep), at(&MountOp::HideDir("/run".into())).map(|i| i + 1));
        assert!(covers(&p).iter().any(|c| c.path == Path::new("/run/systemd/resolve/stub-resolv.conf")));
        let plain = plan(&policy("/ws"), &HostFacts { socket_dirs: vec!["/run".into()], ..HostFacts::default() });
        assert!(!plain.ops.iter().any(|o| matches!(o, MountOp::KeepFile { .. })));
    }

    #[test]
    fn golden_default_layout() {
        let facts = HostFacts {
            protected: vec![prot(".git/hooks", PathState::Dir, 2), prot(".codex", PathState::Missing, 0)],
            deny_read: vec![("/home/u/.ssh".into(), true), ("/home/u/.netrc".into(), false)],
            socket_dirs: vec!["/run".into()],
            kept: vec![],
            var_tmp: true,
            sockets: vec!["/srv/daemon.sock".into()],
            repositories: vec![],
            identities: Identities::default(),
        };
        let p = plan(&policy("/ws"), &facts);
        assert_eq!(
            p.ops,
            vec![
                MountOp::MakePrivate,
                MountOp::ReadOnlyRoot,
                MountOp::HideDir("/run".into()),
                MountOp::Tmpfs { path: "/tmp".into(), size: DEFAULT_TMP_SIZE },
                MountOp::Tmpfs { path: "/var/tmp".into(), size: DEFAULT_TMP_SIZE },
                MountOp::BindWritable("/ws".into()),
                MountOp::Pin { root: "/ws".into(), rel: ".git".into() },
                MountOp::BindReadOnly { root: "/ws".into(), rel: ".git/hooks".into() },
                MountOp::BindReadOnly { root: "/ws".into(), rel: ".codex".into() },
                MountOp::HideDir("/home/u/.ssh".into()),
                MountOp::HideFile("/home/u/.netrc".into()),
                MountOp::HideFile("/srv/daemon.sock".into()),
                MountOp::Dev { shm_size: Some(DEFAULT_TMP_SIZE) },
                MountOp::Proc,
            ]
        );
        assert_eq!(
            p.missing,
            vec![Missing::Placeholder { root: "/ws".into(), rel: ".codex".into(), kind: PlaceholderKind::EmptyDir }]
        );
        let cover = |p: &str, by_dev| Cover { path: p.into(), by_dev };
        assert_eq!(
            covers(&p),
            vec![
                cover("/run", true),
                cover("/tmp", true),
                cover("/var/tmp", true),
                cover("/home/u/.ssh", true),
                cover("/home/u/.netrc", true),
                cover("/srv/daemon.sock", true),
                cover("/dev", true),
                cover("/proc", false),
            ],
            "self-binds are no covers; everything but /proc is mounted by the time /dev is"
        );
    }

    #[test]
    fn a_writable_root_in_dev_or_proc_would_be_hidden() {
        assert_eq!(hidden_writable_root(&policy("/ws")), None, "control");
        assert_eq!(hidden_writable_root(&policy("/dev/shm/project")), Some(("/dev/shm/project".into(), "/dev")));
        assert_eq!(hidden_writable_root(&policy("/proc/1")), Some(("/proc/1".into(), "/proc")));
        assert_eq!(hidden_writable_root(&policy("/devices")), None, "components, not string prefixes");
    }

    #[test]
    fn a_writable_root_at_or_above_a_private_tmp_dir_conflicts() {
        let conflict = |ws: &str| private_tmp_conflict(&policy(ws));
        assert_eq!(conflict("/ws"), None, "control");
        assert_eq!(conflict("/tmp/project"), None, "below /tmp is bound over the tmpfs");
        assert_eq!(conflict("/tmp"), Some(("/tmp".into(), "/tmp")));
        assert_eq!(conflict("/var/tmp"), Some(("/var/tmp".into(), "/var/tmp")));
        assert_eq!(conflict("/var"), Some(("/var".into(), "/var/tmp")));
        assert_eq!(conflict("/"), Some(("/".into(), "/tmp")));
        let mut shared = policy("/tmp");
        shared.filesystem.private_tmp = false;
        assert_eq!(private_tmp_conflict(&shared), None, "no private tmp, nothing to conflict with");
    }

    #[test]
    fn missing_git_gets_one_empty_read_only_git_dir() {
        let facts = HostFacts {
            protected: vec![prot(".git/hooks", PathState::Missing, 0), prot(".git/config", PathState::Missing, 0)],
            ..HostFacts::default()
        };
        let p = plan(&policy("/ws"), &facts);
        assert_eq!(
            p.missing,
            vec![Missing::Placeholder { root: "/ws".into(), rel: ".git".into(), kind: PlaceholderKind::NotedDir }]
        );
        let binds: Vec<_> = p.ops.iter().filter(|o| matches!(o, MountOp::BindReadOnly { .. })).collect();
        assert_eq!(binds, vec![&MountOp::BindReadOnly { root: "/ws".into(), rel: ".git".into() }]);
    }

    #[test]
    fn missing_deny_write_files_get_no_placeholder() {
        let mut rc = prot(".bashrc", PathState::Missing, 0);
        rc.placeholder = false;
        let p = plan(&policy("/ws"), &HostFacts { protected: vec![rc], ..HostFacts::default() });
        assert!(p.missing.is_empty());
        assert!(!p.ops.iter().any(|o| matches!(o, MountOp::BindReadOnly { .. })));
    }

    /// A deny-read path (or host socket) inside a writable root is hidden, and every directory
    /// between the root and it is pinned before the hide, so the command cannot rename the
    /// secret's parent away (carrying the hiding mount with it) for a later run to read.
    #[test]
    fn hidden_paths_inside_writable_roots_have_their_parents_pinned_first() {
        let facts = HostFacts {
            deny_read: vec![("/ws/.local/share/keyrings".into(), true), ("/home/u/.ssh".into(), true)],
            sockets: vec!["/ws/run/agent.sock".into()],
            ..HostFacts::default()
        };
        let p = plan(&policy("/ws"), &facts);
        let at = |op: &MountOp| p.ops.iter().position(|o| o == op);
        let pin = |rel: &str| MountOp::Pin { root: "/ws".into(), rel: rel.into() };
        let hide = at(&MountOp::HideDir("/ws/.local/share/keyrings".into())).unwrap();
        for rel in [".local", ".local/share", "run"] {
            let i = at(&pin(rel)).unwrap_or_else(|| panic!("`{rel}` is not pinned: {:#?}", p.ops));
            assert!(i < hide, "`{rel}` is pinned after the hide");
        }
        assert!(at(&pin(".local/share/keyrings")).is_none(), "the hidden path itself gets the hide, not a pin");
        // Control: a hidden path outside every writable root needs no pin.
        assert_eq!(p.ops.iter().filter(|o| matches!(o, MountOp::Pin { .. })).count(), 3, "{:#?}", p.ops);
        assert!(at(&MountOp::HideDir("/home/u/.ssh".into())).is_some());
    }

    #[test]
    fn missing_children_of_existing_git_get_placeholders() {
        let facts = HostFacts {
            protected: vec![prot(".git/hooks", PathState::Missing, 1), prot(".git/config", PathState::Missing, 1)],
            ..HostFacts::default()
        };
        let p = plan(&policy("/ws"), &facts);
        assert_eq!(
            p.missing,
            vec![
                Missing::Placeholder { root: "/ws".into(), rel: ".git/hooks".into(), kind: PlaceholderKind::NotedDir },
                Missing::Placeholder {
                    root: "/ws".into(),
                    rel: ".git/config".into(),
                    kind: PlaceholderKind::EmptyFile
                },
            ]
        );
    }

    #[test]
    fn symlinks_are_never_planned_and_memory_caps_tmp() {
        let mut pol = policy("/ws");
        pol.process.memory_bytes = Some(1 << 20);
        pol.process.timeout = Some(Duration::from_secs(1));
        let facts = HostFacts { protected: vec![prot(".codex", PathState::Symlink, 0)], ..HostFacts::default() };
        let p = plan(&pol, &facts);
        assert!(!p.ops.iter().any(|o| matches!(o, MountOp::BindReadOnly { .. })));
        // A third of the limit each, so that the three together hold no more than it.
        assert!(p.ops.contains(&MountOp::Tmpfs { path: "/tmp".into(), size: (1 << 20) / 3 }));
        assert!(p.ops.contains(&MountOp::Dev { shm_size: Some((1 << 20) / 3) }));
    }
}
