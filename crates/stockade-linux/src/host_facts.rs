//! Probing the host: kernel, Landlock, user namespaces, seccomp, cgroups, and the state of the
//! paths the mount plan depends on. Every path under an agent-writable tree is examined with
//! `openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH)`, never by following a link.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use stockade_policy::Policy;

use crate::mount_plan::{HostFacts, Identities, PathState, Protected};
use crate::sys;

/// Facts that `doctor` reports and `run` uses to choose an implementation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// `uname -r`.
    pub kernel: String,
    /// Landlock ABI (0: unavailable).
    pub landlock_abi: i32,
    /// `Ok` or why user namespaces cannot be created.
    pub userns: Result<(), String>,
    /// Whether seccomp filters are supported.
    pub seccomp: bool,
    /// What the cgroup v2 hierarchy offers, in words, and whether limits could be delegated.
    pub cgroup: (bool, String),
}

/// Why user namespaces may be unavailable, from the sysctls that control them.
pub fn userns_restriction() -> Option<String> {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some(
            "AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=1)"
                .into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("sysctl kernel.unprivileged_userns_clone=0".into());
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("sysctl user.max_user_namespaces=0".into());
    }
    None
}

/// Tries to create a user namespace, and a mount namespace inside it, in a throwaway child.
/// The mount namespace is what tells: under Ubuntu's AppArmor restriction an unconfined
/// process may create a user namespace, but gets no capability in it, so the mount namespace
/// (and every other one a run makes) fails with `EPERM`.
pub fn probe_userns() -> Result<(), String> {
    match sys::clone_process((libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64) {
        Ok(0) => {
            // SAFETY-free: the child only exits.
            sys_exit0()
        }
        Ok(pid) => {
            let _ = sys::wait_pid(pid);
            Ok(())
        }
        Err(e) => Err(userns_restriction().unwrap_or_else(|| format!("clone(CLONE_NEWUSER) failed: {e}"))),
    }
}

fn sys_exit0() -> ! {
    sys::exit_now(0)
}

/// Probes everything `doctor` shows.
pub fn capabilities(test_disable_userns: bool) -> Capabilities {
    let seccomp = std::fs::read_to_string("/proc/self/status").map(|s| s.contains("Seccomp:")).unwrap_or(false);
    Capabilities {
        kernel: sys::kernel_release(),
        landlock_abi: sys::landlock_abi(),
        userns: if test_disable_userns { Err("disabled for testing".into()) } else { probe_userns() },
        seccomp,
        cgroup: cgroup_v2(),
    }
}

/// Whether cgroup v2 has the memory and pids controllers, and in words what is there.
pub fn cgroup_v2() -> (bool, String) {
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Ok(c) = std::fs::read_to_string(format!("{root}/cgroup.controllers")) {
            let has = c.split_whitespace().any(|x| x == "memory") && c.split_whitespace().any(|x| x == "pids");
            let c = c.trim();
            return (
                has,
                if c.is_empty() {
                    format!("cgroup2 at {root} has no controllers (memory and pids are bound to cgroup v1)")
                } else {
                    format!("cgroup2 at {root} with controllers: {c}")
                },
            );
        }
    }
    (false, "no cgroup2 hierarchy mounted".into())
}

/// What is at `rel` below the root open as `rootfd` (whose path is `root`): the state, how
/// many leading components exist, and the path to protect. Records in `ids` the identity of
/// every component it opens that is not a symlink.
fn state_below(
    rootfd: &OwnedFd,
    root: &Path,
    rel: &Path,
    ids: &mut Identities,
) -> io::Result<(PathState, usize, PathBuf)> {
    let comps: Vec<Component<'_>> = rel.components().collect();
    let mut prefix = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c);
        match sys::open_path(Some(rootfd.as_raw_fd()), &prefix, sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_BENEATH) {
            Ok(fd) => {
                let (t, id) = sys::type_and_identity(&fd)?;
                if t == libc::S_IFLNK {
                    return Ok((PathState::Symlink, i, prefix));
                }
                ids.record(root, &prefix, id);
                if i + 1 == comps.len() {
                    let st = if t == libc::S_IFDIR { PathState::Dir } else { PathState::File };
                    return Ok((st, i + 1, prefix));
                }
                if t != libc::S_IFDIR {
                    // e.g. `.git` is a gitdir pointer file: protect the file itself.
                    return Ok((PathState::File, i + 1, prefix));
                }
                if c.as_os_str() == ".git" && !has_head(&fd)? {
                    // Not a repository (a placeholder from an earlier run, or any other `.git`
                    // without `HEAD`): protect all of it, as when `.git` is missing. Protecting
                    // only its hooks and config would let the command add `HEAD`, `objects` and
                    // `refs` and so turn the workspace into a repository of its making.
                    return Ok((PathState::Dir, i + 1, prefix));
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((PathState::Missing, i, rel.to_path_buf())),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok((PathState::Symlink, i, prefix)),
            Err(e) => return Err(e),
        }
    }
    Ok((PathState::Dir, comps.len(), prefix))
}

/// What git reads from a writable root's repository, beyond `.git/hooks` and `.git/config`,
/// that would let a command redirect or run code in git on the host, as `(path, placeholder)`:
///
/// * `.git/config.worktree`, read when `extensions.worktreeConfig` is set (an empty placeholder
///   changes nothing when it is not);
/// * for each linked worktree, `.git/worktrees/<name>/commondir` (where that worktree's git
///   finds the config and hooks), `gitdir` (which `git worktree repair` and `prune` trust) and
///   its `config.worktree`, and the linked worktree's own `.git` file that `gitdir` names;
/// * for each submodule's git directory under `.git/modules`, its `hooks` and `config`.
///
/// The directories on the way get pinned by the mount plan, so none can be renamed and
/// replaced. A new `commondir` cannot be kept out this way; see [`crate::git_redirect`].
pub fn repository_metadata(dirs: &GitDirs) -> Vec<(PathBuf, bool)> {
    let git = &dirs.git;
    let mut out = vec![(git.join("config.worktree"), true)];
    // Git never makes these symlinks; one would lead the host's git elsewhere. Listing it
    // makes the run refuse with `protected_path_symlink`.
    for d in ["worktrees", "modules"] {
        if std::fs::symlink_metadata(git.join(d)).is_ok_and(|m| m.file_type().is_symlink()) {
            out.push((git.join(d), false));
        }
    }
    for wt in &dirs.worktrees {
        out.push((wt.join("commondir"), false));
        out.push((wt.join("gitdir"), false));
        out.push((wt.join("config.worktree"), true));
        // The linked worktree's own `.git` file, named by `gitdir`: when the worktree lies in a
        // writable root, a command could point it at a repository of its making, whose config
        // git on the host would obey in that worktree. (`protected` keeps only what lies in a
        // writable root; a missing one gets nothing.)
        if let Some(pointer) = std::fs::read_to_string(wt.join("gitdir")).ok().map(|t| PathBuf::from(t.trim_end())) {
            if pointer.is_absolute() && pointer.file_name().is_some_and(|n| n == ".git") {
                out.push((pointer, false));
            }
        }
    }
    for m in &dirs.modules {
        out.push((m.join("hooks"), true));
        out.push((m.join("config"), false));
    }
    out
}

/// A writable root's repository: its `.git` and the git directories inside it, linked
/// worktrees' and submodules'. Found once per run ([`git_dirs`]); both the protected paths and
/// the check after the run ([`crate::git_redirect`]) come from it.
#[derive(Debug, Default)]
pub struct GitDirs {
    /// The repository's `.git` directory.
    pub git: PathBuf,
    /// `.git/worktrees/<name>`.
    pub worktrees: Vec<PathBuf>,
    /// Submodule git directories (with a `HEAD`) under `.git/modules`, nested ones included.
    pub modules: Vec<PathBuf>,
}

impl GitDirs {
    /// The git directories whose `commondir` is checked after the run: `.git` and the
    /// submodules' (a linked worktree's has one of its own, which is protected).
    pub fn watched(&self) -> impl Iterator<Item = PathBuf> + '_ {
        std::iter::once(self.git.clone()).chain(self.modules.iter().cloned())
    }
}

/// The linked worktrees' and submodules' git directories of `root`'s repository, or `None`
/// when the root holds none (`.git` missing, a file, or without `HEAD`). More than
/// [`MAX_GIT_DIRS`] is refused (`E2BIG`): a command could otherwise make thousands in one run
/// to make the next runs slow, and protecting only some would leave the rest open.
pub fn git_dirs(root: &Path) -> io::Result<Option<GitDirs>> {
    let git = root.join(".git");
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if !std::fs::symlink_metadata(&git).is_ok_and(|m| m.is_dir()) || !exists(&git.join("HEAD")) {
        return Ok(None);
    }
    let too_many = || io::Error::from_raw_os_error(libc::E2BIG);
    let mut dirs = GitDirs { worktrees: subdirs(&git.join("worktrees")), modules: Vec::new(), git: git.clone() };
    let mut seen = dirs.worktrees.len();
    if seen > MAX_GIT_DIRS {
        return Err(too_many());
    }
    // Submodule names may contain `/`, so their git directories can sit deeper; nested
    // submodules live in `<module>/modules`. Bounded, as a hostile tree could be deep.
    let mut todo: Vec<(PathBuf, usize)> = vec![(git.join("modules"), 0)];
    while let Some((dir, depth)) = todo.pop() {
        for d in subdirs(&dir) {
            seen += 1;
            if seen > MAX_GIT_DIRS {
                return Err(too_many());
            }
            if exists(&d.join("HEAD")) {
                if depth < MODULE_DEPTH {
                    todo.push((d.join("modules"), depth + 1));
                }
                dirs.modules.push(d);
            } else if depth < MODULE_DEPTH {
                todo.push((d, depth + 1));
            }
        }
    }
    Ok(Some(dirs))
}

/// How deep [`git_dirs`] looks for submodule git directories.
const MODULE_DEPTH: usize = 4;

/// Most linked-worktree and submodule directories [`git_dirs`] accepts in one repository.
pub const MAX_GIT_DIRS: usize = 128;

/// The real (not symlinked) subdirectories of `dir`; none when it is missing or a symlink.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Vec::new();
    }
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Whether a `.git` directory has a `HEAD` entry of any kind (git's first test for a
/// repository; a symlinked `HEAD` is what git wrote long ago).
fn has_head(git: &std::os::fd::OwnedFd) -> io::Result<bool> {
    match sys::open_path(Some(git.as_raw_fd()), Path::new("HEAD"), sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_BENEATH) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The repositories of the writable roots ([`git_dirs`] of each that holds one). Too many git
/// directories in one refuses the run, with the fix in the message.
pub fn repositories(policy: &Policy) -> Result<Vec<GitDirs>, crate::Error> {
    let mut repos = Vec::new();
    for root in policy.filesystem.writable_paths() {
        let dirs = git_dirs(root).map_err(|source| crate::Error::Setup {
            step: format!(
                "protecting the git metadata of `{}`: more than {MAX_GIT_DIRS} linked-worktree and submodule \
                 directories under .git/worktrees and .git/modules (prune stale ones with `git worktree prune`)",
                root.display()
            ),
            source,
        })?;
        repos.extend(dirs);
    }
    Ok(repos)
}

/// The protected paths (and deny-write paths inside writable roots, and the git metadata of
/// `repos`), each with its state.
pub fn protected(policy: &Policy, repos: &[GitDirs], ids: &mut Identities) -> Result<Vec<Protected>, crate::Error> {
    let mut out = Vec::new();
    // Each writable root is opened once for all the paths below it.
    let mut roots: Vec<(&Path, OwnedFd)> = Vec::new();
    let deny_write_inside = policy
        .filesystem
        .deny_write
        .iter()
        .filter(|d| policy.filesystem.writable_paths().any(|w| d.value.starts_with(w)));
    let tagged = policy
        .filesystem
        .protected
        .iter()
        .map(|p| (p.value.clone(), true))
        .chain(deny_write_inside.map(|p| (p.value.clone(), deny_write_dir(p))))
        .chain(repos.iter().flat_map(repository_metadata));
    for (path, placeholder) in tagged {
        let path = &path;
        let Some(root) =
            policy.filesystem.writable_paths().filter(|w| path.starts_with(w)).max_by_key(|w| w.as_os_str().len())
        else {
            continue; // outside every writable root: read-only anyway
        };
        let Ok(rel) = path.strip_prefix(root) else { continue };
        if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            continue;
        }
        let open_error = |source| crate::Error::OpenPath { path: path.clone(), source };
        let rootfd = match roots.iter().position(|(r, _)| *r == root) {
            Some(i) => &roots[i].1,
            None => {
                let fd = sys::open_path(None, root, sys::RESOLVE_NO_SYMLINKS).map_err(open_error)?;
                roots.push((root, fd));
                &roots[roots.len() - 1].1
            }
        };
        let (state, existing, rel) = state_below(rootfd, root, rel, ids).map_err(open_error)?;
        if state == PathState::Symlink {
            return Err(crate::Error::ProtectedSymlink { path: path.clone() });
        }
        let item = Protected { root: root.to_path_buf(), rel, state, existing_components: existing, placeholder };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

/// Whether a deny-write path names a directory, so that an empty directory can stand in for
/// it while it does not exist: the built-in entries of
/// [`stockade_policy::defaults::DENY_WRITE_DIRS`], and stockade's own configuration and state
/// directories (the only deny-write entries the policy derives). Other entries may name files,
/// for which no placeholder is harmless (see docs/linux.md): a missing one is reported instead.
pub fn deny_write_dir(entry: &stockade_policy::Sourced<PathBuf>) -> bool {
    match &entry.source {
        stockade_policy::Source::Default => stockade_policy::defaults::DENY_WRITE_DIRS
            .iter()
            .any(|d| d.strip_prefix("~/").is_some_and(|rel| entry.value.ends_with(rel))),
        stockade_policy::Source::Derived { .. } => true,
        _ => false,
    }
}

/// The deny-write paths inside writable roots that do not exist and get no placeholder: a
/// command can create them (reported as a gap of the run).
pub fn creatable_deny_write(protected: &[Protected]) -> Vec<PathBuf> {
    protected.iter().filter(|p| p.state == PathState::Missing && !p.placeholder).map(|p| p.root.join(&p.rel)).collect()
}

fn lstat_dir(p: &Path) -> Option<bool> {
    let m = std::fs::symlink_metadata(p).ok()?;
    if m.file_type().is_symlink() {
        None
    } else {
        Some(m.is_dir())
    }
}

/// The host's directories of daemon sockets that the sandbox hides (`/run`, `/var/run`,
/// `$XDG_RUNTIME_DIR`, `~/.docker/run`), as the existing directories they are: canonical, since
/// pid 1 opens each without following symlinks and finds nothing to hide at a path through one
/// (a home directory below a symlinked `/home`, `/var/run` -> `/run`), and without those below
/// `/run`, which `/run` covers. `landlock-only` leaves the same ones out of its read roots.
pub fn socket_dirs(host_env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    let mut named: Vec<PathBuf> = vec!["/run".into(), "/var/run".into()];
    if let Some((_, x)) = host_env.iter().find(|(k, _)| k == "XDG_RUNTIME_DIR") {
        named.push(PathBuf::from(x));
    }
    // Docker Desktop and rootless setups keep the daemon socket under the home directory.
    if let Some((_, h)) = host_env.iter().find(|(k, _)| k == "HOME") {
        named.push(Path::new(h).join(".docker/run"));
    }
    let mut canonical: Vec<PathBuf> = Vec::new();
    for d in named.iter().filter(|d| d.is_absolute()).filter_map(|d| std::fs::canonicalize(d).ok()) {
        let below_run = d.starts_with("/run") && d != Path::new("/run");
        if !canonical.contains(&d) && lstat_dir(&d) == Some(true) && !below_run {
            canonical.push(d);
        }
    }
    canonical
}

/// The mount points of the host's device filesystems other than `/dev` (a chroot's `/dev`
/// bound from the host, a device node bound on its own, a second devtmpfs): the namespaces view
/// mounts everything `nodev`, which `landlock-only` cannot, so it leaves these out of its read
/// roots as it does `/dev`, whose disks hold every file past deny-read. Nothing when
/// `/proc/self/mountinfo` cannot be read.
pub fn device_mounts() -> Vec<PathBuf> {
    std::fs::read("/proc/self/mountinfo").map(|t| devtmpfs_mount_points(&t)).unwrap_or_default()
}

/// The mount points in `mountinfo` (the bytes of `/proc/self/mountinfo`, where a mount point
/// need not be UTF-8) whose filesystem is a devtmpfs, other than `/dev` and those below it.
/// Pure.
fn devtmpfs_mount_points(mountinfo: &[u8]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in mountinfo.split(|b| *b == b'\n') {
        let f: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
        let Some(sep) = f.iter().position(|x| *x == b"-") else { continue };
        let (Some(at), Some(&fstype)) = (f.get(4), f.get(sep + 1)) else { continue };
        if fstype != b"devtmpfs" {
            continue;
        }
        let at = PathBuf::from(unescape_mount_field(at));
        if !at.starts_with("/dev") && !out.contains(&at) {
            out.push(at);
        }
    }
    out
}

/// A mountinfo field as the path it names: the kernel writes a space, tab, newline and
/// backslash in it as `\040`, `\011`, `\012` and `\134`.
fn unescape_mount_field(b: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// The host's shared temp directories the sandbox gives the command private ones for when
/// `filesystem.private_tmp` is on ([`crate::mount_plan::PRIVATE_TMP_DIRS`] and `/dev/shm`), as
/// the existing directories they are: what of the host's the command cannot reach there.
pub fn private_tmp_dirs(policy: &Policy) -> Vec<PathBuf> {
    if !policy.filesystem.private_tmp {
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for t in crate::mount_plan::PRIVATE_TMP_DIRS.iter().chain(&["/dev/shm"]) {
        if let Ok(t) = std::fs::canonicalize(t) {
            if t.is_dir() && !dirs.contains(&t) {
                dirs.push(t);
            }
        }
    }
    dirs
}

/// Everything the mount plan needs.
pub fn host_facts(policy: &Policy, host_env: &[(OsString, OsString)]) -> Result<HostFacts, crate::Error> {
    let roots: Vec<PathBuf> = policy.filesystem.writable_paths().map(Path::to_path_buf).collect();
    let holds_root = |d: &Path| roots.iter().any(|w| w.starts_with(d));
    // A directory to hide that holds a writable root (a workspace on a drive under
    // `/run/media`, `-w ~/.kube/cache`) cannot be covered whole: everything in it but the way
    // to the roots is hidden instead, entry by entry (`carve_around_roots`). One that is itself
    // a writable root stays visible: the root wins.
    let (socket_dirs, around): (Vec<PathBuf>, Vec<PathBuf>) =
        socket_dirs(host_env).into_iter().partition(|d| !holds_root(d));
    let mut deny_read: Vec<(PathBuf, bool)> = Vec::new();
    let mut around_deny: Vec<PathBuf> = Vec::new();
    for d in &policy.filesystem.deny_read {
        match lstat_dir(&d.value) {
            Some(true) if holds_root(&d.value) => around_deny.push(d.value.clone()),
            Some(_) if holds_root(&d.value) => {}
            Some(is_dir) => deny_read.push((d.value.clone(), is_dir)),
            None => {}
        }
    }
    let mut carved = Vec::new();
    for d in around.iter().chain(&around_deny).filter(|d| !roots.contains(d)) {
        carve_around_roots(d, &roots, &mut carved);
    }
    let mut hidden: Vec<PathBuf> = socket_dirs.clone();
    if policy.filesystem.private_tmp {
        hidden.extend(["/tmp", "/var/tmp", "/dev/shm"].map(PathBuf::from));
    }
    hidden.extend(deny_read.iter().map(|(p, _)| p.clone()));
    hidden.extend(carved.iter().filter(|(_, dir)| *dir).map(|(p, _)| p.clone()));
    for c in carved {
        if !deny_read.contains(&c) {
            deny_read.push(c);
        }
    }
    let kept = if policy.network.mode == stockade_policy::NetworkMode::On {
        kept_resolv_conf(Path::new("/etc/resolv.conf"), &socket_dirs).into_iter().collect()
    } else {
        Vec::new()
    };
    let sockets = read_proc_net_unix().map(|t| unix_socket_paths(&t, &hidden)).unwrap_or_default();
    let repos = repositories(policy)?;
    let mut identities = Identities::default();
    Ok(HostFacts {
        sockets,
        protected: protected(policy, &repos, &mut identities)?,
        identities,
        repositories: repos.iter().flat_map(GitDirs::watched).collect(),
        deny_read,
        socket_dirs,
        kept,
        var_tmp: lstat_dir(Path::new("/var/tmp")) == Some(true),
    })
}

/// Where `resolv_conf` (`/etc/resolv.conf`) is a link to a regular file below one of the
/// `hidden` directories (systemd-resolved's `/run/systemd/resolve/stub-resolv.conf`, on Ubuntu
/// and Fedora), that file: the view keeps it (see [`crate::mount_plan::MountOp::KeepFile`]), or
/// with the network on no name would resolve, the link pointing into an empty `/run`.
pub fn kept_resolv_conf(resolv_conf: &Path, hidden: &[PathBuf]) -> Option<PathBuf> {
    let link = std::fs::symlink_metadata(resolv_conf).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::canonicalize(resolv_conf).ok()?;
    let regular = std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_file());
    (regular && hidden.iter().any(|d| target.starts_with(d) && target != *d)).then_some(target)
}

/// Adds to `out` what hides everything below `dir` but the writable `roots` inside it: each
/// entry on no root's way, whole (a directory gets a tmpfs, anything else `/dev/null`), while
/// the entries leading to a root are walked into and the roots themselves left alone. Links
/// are left as they are: nothing can be mounted over a link, and its target is hidden or
/// visible on its own terms. What appears in `dir` after this listing stays visible, like a
/// socket bound after the sandbox started (a documented gap).
///
/// The same walk as `landlock-only`'s read rules ([`crate::landlock_rules::carve`], with the
/// roots in place of the deny-read paths and [`children`] leaving links out).
pub fn carve_around_roots(dir: &Path, roots: &[PathBuf], out: &mut Vec<(PathBuf, bool)>) {
    for path in crate::landlock_rules::carve(dir, roots, &children) {
        if let Some(is_dir) = lstat_dir(&path) {
            out.push((path, is_dir));
        }
    }
}

/// `/proc/net/unix`, as bytes (a socket's path need not be UTF-8), read in large steps: each
/// read of that file starts a new walk of the namespace's socket table, and the kernel returns
/// at most about a page per read, so reads of 8 KiB take the fewest; `read_to_string`'s first
/// reads are of 32 bytes (five to seven reads for a table of two sockets here, against two).
fn read_proc_net_unix() -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut text = Vec::with_capacity(64 * 1024);
    std::fs::File::open("/proc/net/unix")?.read_to_end(&mut text)?;
    Ok(text)
}

/// Pathname sockets listed in `/proc/net/unix` (its bytes) that exist as sockets (not
/// symlinks) and are not already under a `hidden` tree, by their canonical paths (pid 1 opens
/// each without following symlinks, so a path through a symlinked directory would hide
/// nothing). At most 1024, deduplicated.
pub fn unix_socket_paths(proc_net_unix: &[u8], hidden: &[PathBuf]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    // Sockets gather in a few directories: each component is looked at once, not once per
    // socket as `realpath` would.
    let mut dirs = stockade_policy::paths::Canonicalizer::default();
    let trim_start = |s: &[u8]| -> usize { s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len()) };
    let mut out: Vec<PathBuf> = Vec::new();
    for line in proc_net_unix.split(|&b| b == b'\n').skip(1) {
        // Num RefCount Protocol Flags Type St Inode Path: the path is what follows the 7th field.
        let mut rest = line;
        for _ in 0..7 {
            rest = &rest[trim_start(rest)..];
            rest = &rest[rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len())..];
        }
        let path = &rest[trim_start(rest)..];
        if path.first() != Some(&b'/') {
            continue; // unnamed or abstract (`@...`): not a filesystem object
        }
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(path));
        if hidden.iter().any(|h| p.starts_with(h))
            || !std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_socket())
        {
            continue;
        }
        let Some(real) = p.parent().and_then(|d| dirs.existing(d)).zip(p.file_name()).map(|(d, n)| d.join(n)) else {
            continue;
        };
        if hidden.iter().any(|h| real.starts_with(h)) || out.contains(&real) {
            continue;
        }
        out.push(real);
        if out.len() >= 1024 {
            break;
        }
    }
    out
}

/// Entries of a directory (empty on error), sorted, without symbolic links.
///
/// For `landlock_rules::carve`: a rule taken on a link would hold its target, which may be a
/// deny-read path (`/home` -> `var/home` on some distributions, or a link a command planted in
/// the workspace on an earlier run). Leaving links out loses nothing: their targets get rules
/// through their own paths, since the deny-read paths are canonical.
pub fn children(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| !t.is_symlink()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// How many processes the real uid has on the host now (for `RLIMIT_NPROC` headroom where
/// the count is shared with the host).
pub fn processes_of_uid(uid: u32) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(s) = std::fs::read_to_string(e.path().join("status")) {
            let real = s
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok());
            if real == Some(uid) {
                n += s
                    .lines()
                    .find(|l| l.starts_with("Threads:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    .unwrap_or(1);
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory to hide that holds a writable root: everything in it is hidden but the way
    /// to the root, which stays, with the root itself; links are left alone.
    #[test]
    fn carving_around_a_root_hides_all_but_its_way() {
        let dir = std::fs::canonicalize(crate::testutil::scratch_dir("carve-around")).unwrap();
        let d = dir.join("kube");
        std::fs::create_dir_all(d.join("cache/ws/src")).unwrap();
        std::fs::create_dir_all(d.join("cache/other")).unwrap();
        std::fs::create_dir_all(d.join("secrets")).unwrap();
        std::fs::write(d.join("config"), "SECRET").unwrap();
        std::fs::write(d.join("cache/token"), "SECRET").unwrap();
        std::os::unix::fs::symlink("config", d.join("link")).unwrap();
        let root = d.join("cache/ws");
        let mut out = Vec::new();
        carve_around_roots(&d, std::slice::from_ref(&root), &mut out);
        assert_eq!(
            out,
            vec![
                (d.join("cache/other"), true),
                (d.join("cache/token"), false),
                (d.join("config"), false),
                (d.join("secrets"), true),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Only deny-write entries known to name directories get placeholders; a missing one of
    /// any other kind is listed as creatable.
    #[test]
    fn deny_write_directories_get_placeholders_and_the_rest_are_reported() {
        use stockade_policy::{Source, Sourced};
        let entry = |p: &str, source| Sourced::new(PathBuf::from(p), source);
        let derived = || Source::Derived { reason: "stockade's own configuration and state".into() };
        let cli = || Source::Cli { flag: "--deny-write".into() };
        assert!(deny_write_dir(&entry("/home/u/.config/git", Source::Default)));
        assert!(deny_write_dir(&entry("/home/u/.local/bin", Source::Default)));
        assert!(deny_write_dir(&entry("/home/u/.config/stockade", derived())));
        assert!(!deny_write_dir(&entry("/home/u/.bashrc", Source::Default)));
        assert!(!deny_write_dir(&entry("/home/u/.config/git", cli())));
        let missing = |rel: &str, placeholder| Protected {
            root: "/home/u/.config".into(),
            rel: rel.into(),
            state: PathState::Missing,
            existing_components: 0,
            placeholder,
        };
        let exists = Protected { state: PathState::Dir, ..missing("fish", false) };
        let got = creatable_deny_write(&[missing("git", true), missing("tool.conf", false), exists]);
        assert_eq!(got, vec![PathBuf::from("/home/u/.config/tool.conf")]);
    }

    #[test]
    fn resolv_conf_is_kept_only_as_a_link_to_a_regular_file_in_a_hidden_directory() {
        let dir = std::fs::canonicalize(crate::testutil::scratch_dir("resolv-conf")).unwrap();
        let run = dir.join("run");
        std::fs::create_dir_all(run.join("systemd/resolve")).unwrap();
        let stub = run.join("systemd/resolve/stub-resolv.conf");
        std::fs::write(&stub, "nameserver 127.0.0.53\n").unwrap();
        std::fs::write(dir.join("elsewhere"), "nameserver 10.0.0.1\n").unwrap();
        let link = |name: &str, to: &Path| {
            let l = dir.join(name);
            std::os::unix::fs::symlink(to, &l).unwrap();
            l
        };
        let hidden = [run.clone()];
        assert_eq!(kept_resolv_conf(&link("a", &stub), &hidden), Some(stub.clone()));
        assert_eq!(
            kept_resolv_conf(&link("b", Path::new("run/systemd/resolve/stub-resolv.conf")), &hidden),
            Some(stub)
        );
        assert_eq!(kept_resolv_conf(&dir.join("elsewhere"), &hidden), None, "a plain file stays where it is");
        assert_eq!(kept_resolv_conf(&link("c", &dir.join("elsewhere")), &hidden), None, "outside the hidden dirs");
        assert_eq!(kept_resolv_conf(&link("d", &run.join("systemd")), &hidden), None, "not a regular file");
        assert_eq!(kept_resolv_conf(&link("e", &run.join("missing")), &hidden), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn devtmpfs_mounts_besides_dev_are_found_and_unescaped() {
        let text = "24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,mode=755\n\
             25 24 0:22 / /dev/pts rw - devpts devpts rw\n\
             90 27 0:6 / /srv/chroot/dev rw,relatime shared:5 - devtmpfs devtmpfs rw\n\
             91 27 0:6 /sda /srv/my\\040box/sda rw - devtmpfs devtmpfs rw\n\
             92 27 0:30 / /srv/chroot/dev/shm rw - tmpfs tmpfs rw\n\
             93 27 0:6 / /srv/chroot/dev rw - devtmpfs devtmpfs rw\n";
        assert_eq!(
            devtmpfs_mount_points(text.as_bytes()),
            vec![PathBuf::from("/srv/chroot/dev"), PathBuf::from("/srv/my box/sda")],
            "bind mounts of it and of a single node, once each; not /dev, not other filesystems"
        );
        assert_eq!(unescape_mount_field(b"a\\134b\\011c\\9x"), "a\\b\tc\\9x");
        let mut latin1 = b"90 27 0:6 / /srv/caf".to_vec();
        latin1.extend([0xe9, b' ']);
        latin1.extend(b"rw - devtmpfs devtmpfs rw\n");
        use std::os::unix::ffi::OsStrExt;
        let got = devtmpfs_mount_points(&latin1);
        assert_eq!(got.len(), 1, "a mount point that is not UTF-8 is still found");
        assert_eq!(got[0].as_os_str().as_bytes(), b"/srv/caf\xe9");
    }

    #[test]
    fn socket_dirs_are_the_existing_ones_canonical_and_once() {
        let dir = std::fs::canonicalize(crate::testutil::scratch_dir("socket-dirs-once")).unwrap();
        if dir.starts_with("/run") {
            // A scratch directory below `/run` (a `TMPDIR` there) is covered by `/run` itself.
            eprintln!("SKIP: the scratch directory {} is below /run", dir.display());
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        std::os::unix::fs::symlink(&runtime, dir.join("runtime-link")).unwrap();
        let env = |xdg: &Path, home: &Path| {
            vec![(OsString::from("XDG_RUNTIME_DIR"), xdg.as_os_str().to_owned()), ("HOME".into(), home.into())]
        };
        // Through a link, and a home without `.docker/run`: the link's target, and no more.
        let got = socket_dirs(&env(&dir.join("runtime-link"), &dir));
        assert!(got.contains(&runtime), "{got:?}");
        assert!(!got.iter().any(|d| d.starts_with(&dir) && *d != runtime), "{got:?}");
        std::fs::create_dir_all(dir.join(".docker/run")).unwrap();
        let got = socket_dirs(&env(&runtime, &dir));
        assert_eq!(got.iter().filter(|d| **d == runtime).count(), 1);
        assert!(got.contains(&dir.join(".docker/run")), "{got:?}");
        // `/var/run` is a link to `/run` on most hosts: one entry, and none below `/run`.
        assert!(got.iter().filter(|d| d.starts_with("/run")).count() <= 1, "{got:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A link among the entries is left out, so `carve` never takes a rule on one: here a link
    /// into a deny-read directory, which a rule on the link would have opened.
    #[test]
    fn children_leave_out_links_so_carve_never_grants_a_links_target() {
        let dir = std::fs::canonicalize(crate::testutil::scratch_dir("children-links")).unwrap();
        let secret = dir.join("home/.ssh");
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::create_dir_all(dir.join("ws/src")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("ws/keys")).unwrap();
        std::fs::write(dir.join("ws/.env"), "x").unwrap();
        let kids = children(&dir.join("ws"));
        assert_eq!(kids, vec![dir.join("ws/.env"), dir.join("ws/src")]);
        // A deny-read path inside the workspace makes carve list its entries.
        let got = crate::landlock_rules::carve(&dir, &[dir.join("ws/.env"), secret.clone()], &children);
        assert!(!got.iter().any(|p| p.starts_with(&secret) || p == &dir.join("ws/keys")), "{got:?}");
        assert!(got.contains(&dir.join("ws/src")), "control: the workspace's other entries are granted: {got:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn parses_proc_net_unix_paths_and_skips_hidden_abstract_and_missing() {
        let dir = std::env::temp_dir().join(format!("stockade-sock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let sock = dir.join("with space.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let text = format!(
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000: 00000002 00000000 00010000 0001 01 11 {}\n\
             0000: 00000002 00000000 00010000 0001 01 12 @abstract\n\
             0000: 00000002 00000000 00010000 0001 01 13 /run/user/1000/bus\n\
             0000: 00000002 00000000 00010000 0001 01 14 /nonexistent/x.sock\n\
             0000: 00000003 00000000 00000000 0001 03 15\n",
            sock.display()
        );
        let got = unix_socket_paths(text.as_bytes(), &[PathBuf::from("/run")]);
        assert_eq!(got, vec![sock.clone()]);
        // A name that is not UTF-8 is still a path, and does not hide the others.
        use std::os::unix::ffi::OsStrExt;
        let odd = dir.join(std::ffi::OsStr::from_bytes(b"odd-\xff.sock"));
        let _m = std::os::unix::net::UnixListener::bind(&odd).unwrap();
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"0000: 00000002 00000000 00010000 0001 01 16 ");
        bytes.extend_from_slice(odd.as_os_str().as_bytes());
        bytes.push(b'\n');
        let got = unix_socket_paths(&bytes, &[PathBuf::from("/run")]);
        assert_eq!(got, vec![sock.clone(), odd.clone()]);
        // Through a symlinked directory: listed by its canonical path (pid 1 opens it without
        // following symlinks), once, and skipped when that path is hidden.
        let link = dir.with_file_name(format!("stockade-sock-link-{}", std::process::id()));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let mut bytes = bytes.clone();
        bytes.extend_from_slice(b"0000: 00000002 00000000 00010000 0001 01 17 ");
        bytes.extend_from_slice(link.join("with space.sock").as_os_str().as_bytes());
        bytes.push(b'\n');
        let got = unix_socket_paths(&bytes, &[PathBuf::from("/run")]);
        assert_eq!(got, vec![sock.clone(), odd.clone()], "the link's path is the same socket");
        let got = unix_socket_paths(&bytes, &[PathBuf::from("/run"), dir.clone()]);
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, Vec::<PathBuf>::new(), "hidden by its canonical path");
    }

    /// A socket directory reached through a symlink (a home directory below a symlinked
    /// `/home`) is planned by its real path: pid 1 opens it without following symlinks.
    #[test]
    fn socket_dirs_are_found_by_their_canonical_paths() {
        let base = crate::testutil::scratch_dir("socket-dirs");
        let base = std::fs::canonicalize(&base).unwrap();
        std::fs::create_dir_all(base.join("real/.docker/run")).unwrap();
        std::fs::create_dir_all(base.join("ws")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("home")).unwrap();
        let policy = crate::testutil::policy(base.join("ws").to_str().unwrap());
        let env = [(OsString::from("HOME"), base.join("home").into_os_string())];
        let facts = host_facts(&policy, &env).unwrap();
        let _ = std::fs::remove_dir_all(&base);
        assert!(facts.socket_dirs.contains(&base.join("real/.docker/run")), "{:?}", facts.socket_dirs);
        assert!(!facts.socket_dirs.iter().any(|d| d.starts_with(base.join("home"))), "{:?}", facts.socket_dirs);
    }

    /// The probe records the identity of each protected path that exists and of the
    /// directories on its way (which the plan pins), and nothing for a missing one, whose
    /// placeholder is opened afresh once made.
    #[test]
    fn probe_records_identities_of_what_it_opened() {
        use std::os::unix::fs::MetadataExt;
        let ws = crate::testutil::scratch_dir("identities");
        std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        std::fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let mut policy = crate::testutil::policy(ws.to_str().unwrap());
        for rel in [".git/hooks", ".codex"] {
            policy
                .filesystem
                .protected
                .push(stockade_policy::Sourced::new(ws.join(rel), stockade_policy::Source::Default));
        }
        let mut ids = Identities::default();
        let found = protected(&policy, &[], &mut ids).unwrap();
        let id_of = |rel: &str| {
            let m = std::fs::symlink_metadata(ws.join(rel)).unwrap();
            Some((m.dev(), m.ino()))
        };
        let want = (id_of(".git"), id_of(".git/hooks"));
        let got = (ids.get(&ws, Path::new(".git")), ids.get(&ws, Path::new(".git/hooks")));
        let missing = ids.get(&ws, Path::new(".codex"));
        let states: Vec<PathState> = found.iter().map(|p| p.state).collect();
        let _ = std::fs::remove_dir_all(&ws);
        assert_eq!(states, vec![PathState::Dir, PathState::Missing]);
        assert_eq!(got, want);
        assert_eq!(missing, None);
    }
}
