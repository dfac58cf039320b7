//! Everything the forked children need, built before the fork: C strings, pointer arrays, the
//! BPF program and Landlock masks. The children only read this (see [`crate::sys`]).

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::landlock_rules::{self, LandlockPlan};
use crate::mount_plan::{Identities, MountOp, MountPlan};
use crate::seccomp_rules::Insn;

/// At most this many writable roots (the child keeps their fds in a fixed array).
pub const MAX_WRITABLE_ROOTS: usize = 64;

/// Most files a run keeps in hidden directories (see [`MountOp::KeepFile`]; one today).
pub const MAX_KEPT_FILES: usize = 4;

/// In [`Prepared::cgroups_ready`]: the supervisor has made what it could of the run's groups.
pub const CGROUPS_DONE: u32 = 1 << 31;

/// A mount step with its strings converted.
#[derive(Debug)]
pub enum ChildOp {
    /// See [`MountOp::MakePrivate`].
    MakePrivate,
    /// See [`MountOp::ReadOnlyRoot`].
    ReadOnlyRoot,
    /// See [`MountOp::HideDir`].
    HideDir {
        /// Path.
        path: CString,
        /// tmpfs options.
        opts: CString,
        /// Mounted read-only (false where a [`ChildOp::KeepFile`] follows, which seals it).
        rdonly: bool,
    },
    /// See [`MountOp::KeepFile`].
    KeepFile {
        /// The hidden directory, whose tmpfs holds the mount point.
        dir: CString,
        /// The file on the host, opened before any mount.
        source: CString,
        /// The directories to make below `dir`, outermost first.
        parents: Vec<CString>,
        /// The file, below `dir`.
        rel: CString,
        /// Index in the child's array of kept sources.
        slot: usize,
        /// Whether this is the last file kept in `dir`, after which its tmpfs turns read-only.
        seal: bool,
    },
    /// See [`MountOp::HideFile`].
    HideFile {
        /// Path.
        path: CString,
    },
    /// See [`MountOp::Tmpfs`].
    Tmpfs {
        /// Path.
        path: CString,
        /// tmpfs options.
        opts: CString,
    },
    /// See [`MountOp::BindWritable`].
    BindWritable {
        /// Path.
        path: CString,
        /// Index in the child's fd array.
        slot: usize,
    },
    /// See [`MountOp::BindReadOnly`].
    BindReadOnly {
        /// Root.
        root: CString,
        /// Below the root.
        rel: CString,
        /// `(st_dev, st_ino)` the supervisor saw on the host.
        id: (u64, u64),
    },
    /// See [`MountOp::Pin`].
    Pin {
        /// Root.
        root: CString,
        /// Below the root.
        rel: CString,
        /// `(st_dev, st_ino)` the supervisor saw on the host.
        id: (u64, u64),
    },
    /// See [`MountOp::Dev`].
    Dev {
        /// `/dev/shm` tmpfs options.
        shm_opts: Option<CString>,
    },
    /// See [`MountOp::Proc`].
    Proc,
}

/// The Landlock part, as the child uses it.
#[derive(Debug)]
pub struct ChildLandlock {
    /// handled_access_fs.
    pub handled_fs: u64,
    /// handled_access_net.
    pub handled_net: u64,
    /// scoped.
    pub scoped: u64,
    /// Rights allowed on non-directories.
    pub file_rights: u64,
    /// Size of the attr struct for this ABI.
    pub attr_size: usize,
    /// The rules, in the plan's order.
    pub rules: Vec<ChildRule>,
}

/// One Landlock rule as the child uses it (see [`crate::landlock_rules::Rule`]).
#[derive(Debug)]
pub struct ChildRule {
    /// The tree.
    pub path: CString,
    /// The rights granted below it.
    pub rights: u64,
    /// Open the path with `RESOLVE_NO_SYMLINKS`.
    pub no_symlinks: bool,
    /// When the command adds it.
    pub when: landlock_rules::RuleTime,
}

/// Size of [`Prepared::child_stack`].
pub const CHILD_STACK_SIZE: usize = 256 * 1024;

/// All the child reads.
#[derive(Debug)]
pub struct Prepared {
    /// Mount steps (empty for `landlock-only`).
    pub ops: Vec<ChildOp>,
    /// `/dev/null`, `/dev/zero`, ... to bind into the new `/dev`.
    pub dev_nodes: Vec<CString>,
    /// Landlock, if the kernel has it.
    pub landlock: Option<ChildLandlock>,
    /// The seccomp program.
    pub bpf: Vec<libc::sock_filter>,
    /// `(resource, limit)` pairs.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Working directory.
    pub cwd: CString,
    /// Programs to try, in order (PATH lookup done up front).
    pub candidates: Vec<CString>,
    /// argv strings (kept alive for `argv_ptrs`).
    pub argv: Vec<CString>,
    /// envp strings (kept alive for `envp_ptrs`).
    pub envp: Vec<CString>,
    /// NULL-terminated argv.
    pub argv_ptrs: Vec<*const libc::c_char>,
    /// NULL-terminated envp.
    pub envp_ptrs: Vec<*const libc::c_char>,
    /// Write end of the report pipe (close-on-exec).
    pub report_fd: RawFd,
    /// The stack the command runs on between pid 1's `clone(CLONE_VM)` and `execve` (sharing
    /// pid 1's memory avoids copying its page tables); unused by `landlock-only`.
    pub child_stack: Option<crate::sys::ChildStack>,
    /// `/dev/null` for `Stdio::Null`.
    pub stdio_null: Option<RawFd>,
    /// The run's cgroup v1 groups the command joins itself (under `namespaces` beside pid 1's
    /// mounts), before it forks anything: each `tasks` file relative to the root of its
    /// controller (by slot in [`crate::cgroup::CONTROLLERS`]).
    pub cgroup_joins: Vec<(usize, CString)>,
    /// The run's group name (its directory below each controller's root), for the groups of
    /// [`Prepared::cgroup_joins`]: a one-shot run's pid 1 removes them before it exits.
    pub cgroup_name: Option<CString>,
    /// The controllers' roots on the host's mounts, opened before the sandbox's processes were
    /// made (-1 where there is none). The command closes its copies before it execs; pid 1
    /// closes its own once it has started the command, except, with `exit_with_supervisor`,
    /// those of the groups it removes at the end.
    pub cgroup_roots: [RawFd; 2],
    /// The parent of the run's cgroup v2 group, opened before the sandbox's processes were made
    /// (-1 where there is none; see [`crate::cgroup::V2Parent`]).
    pub cgroup2_parent: RawFd,
    /// The run's cgroup v2 group, relative to [`Prepared::cgroup2_parent`], made before the go
    /// message: pid 1 clones the command into it (`CLONE_INTO_CGROUP`), and a one-shot run's
    /// pid 1 removes it before it exits.
    pub cgroup2_name: Option<CString>,
    /// The error (`errno`) with which cloning the command into that group failed, 0 if it did
    /// not: the command then starts without the group (a kernel before 5.7, or a seccomp filter
    /// around stockade that refuses `clone3`, as Docker's default and stockade's own do), and
    /// the run's `limits` layer says so instead of claiming the group's limits.
    pub cgroup2_missed: std::sync::atomic::AtomicI32,
    /// Set by the supervisor once it has made the groups (under `namespaces`, after the go
    /// message): [`CGROUPS_DONE`] plus bit `slot` for each group that exists. The command
    /// waits for it before it joins.
    pub cgroups_ready: std::sync::atomic::AtomicU32,
    /// The supervisor's pid, when the command is its direct child (`landlock-only`).
    pub parent: Option<libc::pid_t>,
    /// The init's end of the network bridge socketpair (`network = "allow"`), or -1: pid 1
    /// creates the sandbox-side proxy listener in the private network namespace and sends it
    /// to the supervisor over this socket (SCM_RIGHTS).
    pub bridge_fd: RawFd,
    /// The loopback port of that listener inside the sandbox.
    pub bridge_port: u16,
    /// After reporting the command's exit, pid 1 waits until the supervisor process exits (its
    /// pidfd turns readable) or releases it (the next prelaunch), instead of exiting at once,
    /// so that tearing its namespaces down does not compete with the supervisor's last work; it
    /// lets the thread that launched it end first, and removes the run's cgroups just before
    /// it exits (see `sys::wait_for_release`). Only for a one-shot caller (the CLI's
    /// prelaunch): nothing of the sandbox runs any more at that point.
    pub exit_with_supervisor: bool,
    /// Pid 1's end of its go socket (namespaces only, else -1): where it waits, with
    /// `exit_with_supervisor`, to be released.
    pub go_fd: RawFd,
    /// Pid 1's copy of a pidfd of the supervisor (namespaces only, else -1): with
    /// `exit_with_supervisor`, pid 1 exits once it reports the supervisor gone (see
    /// `sys::wait_for_release` for why not at the end of file on `go_fd`).
    pub supervisor_pidfd: RawFd,
    /// With `exit_with_supervisor`: where pid 1 tells the thread that launched it that it no
    /// longer needs it (namespaces only, else -1; see `LaunchedInit` for why).
    pub launcher_done_fd: RawFd,
    /// Set by pid 1 once the mount view is complete: the command, started before it, waits
    /// for this before it looks at any path (namespaces only).
    pub proceed: std::sync::atomic::AtomicU32,
    /// Set by pid 1 once it has built the view's `/dev` (or, at the latest, with `proceed`):
    /// the command then adds its Landlock rules below `/dev` (namespaces only).
    pub dev_ready: std::sync::atomic::AtomicU32,
    /// The highest capability number this kernel knows: the command drops the bounding set up
    /// to it, with calls that all succeed (see `sys::command_in_sandbox` for why that matters).
    pub last_cap: libc::c_int,
    /// The caller's CPU affinity, when the command is started while pid 1 mounts (namespaces):
    /// pid 1 moves it to another of these CPUs, and it takes them all back before exec.
    pub cpus: Option<libc::cpu_set_t>,
    /// Pid 1 brings loopback up in the sandbox's network namespace after its mounts, before it
    /// lets the command exec (namespaces, unless it did so before the go message for the
    /// allowlist bridge).
    pub loopback: bool,
}

fn cstr(what: &str, s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::Nul { what: format!("{what} {}", s.to_string_lossy()) })
}

/// A path as a C string (an error names a path with a NUL byte).
pub fn cpath(p: &Path) -> Result<CString> {
    cstr("path", p.as_os_str())
}

/// The identity of `root/rel`: as the probe of the protected paths recorded it, or else
/// resolved now on the host without following symlinks (a placeholder made since).
fn host_identity(ids: &Identities, root: &Path, rel: &Path) -> Result<(u64, u64)> {
    if let Some(id) = ids.get(root, rel) {
        return Ok(id);
    }
    let err = |source| Error::OpenPath { path: root.join(rel), source };
    let rootfd = crate::sys::open_path(None, root, crate::sys::RESOLVE_NO_SYMLINKS).map_err(err)?;
    let fd = crate::sys::open_path(
        Some(rootfd.as_raw_fd()),
        rel,
        crate::sys::RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_BENEATH,
    )
    .map_err(err)?;
    let (kind, id) = crate::sys::type_and_identity(&fd).map_err(err)?;
    if kind == libc::S_IFLNK {
        return Err(Error::ProtectedSymlink { path: root.join(rel) });
    }
    Ok(id)
}

/// Converts the mount plan (after placeholders exist), recording the identity of every path
/// that gets a read-only bind or a pin, for the child to re-check (`ids`: those the probe of
/// the host already found).
pub fn child_ops(plan: &MountPlan, ids: &Identities) -> Result<Vec<ChildOp>> {
    let mut slot = 0;
    let mut kept = 0;
    // A hidden directory's tmpfs stays writable exactly while kept files follow it in the plan.
    let keep_follows =
        |i: usize, d: &Path| matches!(plan.ops.get(i + 1), Some(MountOp::KeepFile { dir, .. }) if dir == d);
    plan.ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            Ok(match op {
                MountOp::MakePrivate => ChildOp::MakePrivate,
                MountOp::ReadOnlyRoot => ChildOp::ReadOnlyRoot,
                MountOp::HideDir(p) => ChildOp::HideDir {
                    path: cpath(p)?,
                    opts: cstr("opts", "mode=0755,size=4096".as_ref())?,
                    rdonly: !keep_follows(i, p),
                },
                MountOp::KeepFile { dir, rel } => {
                    kept += 1;
                    if kept > MAX_KEPT_FILES {
                        return Err(Error::Setup {
                            step: format!("more than {MAX_KEPT_FILES} files kept in hidden directories"),
                            source: std::io::Error::from_raw_os_error(libc::E2BIG),
                        });
                    }
                    let mut parents = Vec::new();
                    let mut at = PathBuf::new();
                    for c in rel.parent().into_iter().flat_map(Path::components) {
                        at.push(c);
                        parents.push(cpath(&at)?);
                    }
                    ChildOp::KeepFile {
                        dir: cpath(dir)?,
                        source: cpath(&dir.join(rel))?,
                        parents,
                        rel: cpath(rel)?,
                        slot: kept - 1,
                        seal: !keep_follows(i, dir),
                    }
                }
                MountOp::HideFile(p) => ChildOp::HideFile { path: cpath(p)? },
                MountOp::Tmpfs { path, size } => {
                    ChildOp::Tmpfs { path: cpath(path)?, opts: cstr("opts", tmpfs_options(*size).as_ref())? }
                }
                MountOp::BindWritable(p) => {
                    slot += 1;
                    if slot > MAX_WRITABLE_ROOTS {
                        return Err(Error::Setup {
                            step: format!("more than {MAX_WRITABLE_ROOTS} writable roots"),
                            source: std::io::Error::from_raw_os_error(libc::E2BIG),
                        });
                    }
                    ChildOp::BindWritable { path: cpath(p)?, slot: slot - 1 }
                }
                MountOp::BindReadOnly { root, rel } => {
                    ChildOp::BindReadOnly { root: cpath(root)?, rel: cpath(rel)?, id: host_identity(ids, root, rel)? }
                }
                MountOp::Pin { root, rel } => {
                    ChildOp::Pin { root: cpath(root)?, rel: cpath(rel)?, id: host_identity(ids, root, rel)? }
                }
                MountOp::Dev { shm_size } => {
                    ChildOp::Dev { shm_opts: shm_size.map(|s| cstr("opts", tmpfs_options(s).as_ref())).transpose()? }
                }
                MountOp::Proc => ChildOp::Proc,
            })
        })
        .collect()
}

/// The options of a private tmpfs of `size` bytes (`/tmp`, `/var/tmp`, `/dev/shm`): a limit on
/// inodes too (one per 4 KiB, at least 1024), since empty files take kernel memory that the
/// size does not count (THREATS.md R3).
pub fn tmpfs_options(size: u64) -> String {
    format!("mode=1777,size={size},nr_inodes={}", (size / 4096).max(1024))
}

/// Converts the Landlock plan.
pub fn child_landlock(plan: &LandlockPlan) -> Result<ChildLandlock> {
    Ok(ChildLandlock {
        handled_fs: plan.handled_fs,
        handled_net: plan.handled_net,
        scoped: plan.scoped,
        file_rights: plan.file_rights,
        attr_size: landlock_rules::attr_size(plan.abi),
        rules: plan
            .rules
            .iter()
            .map(|r| {
                Ok(ChildRule { path: cpath(&r.path)?, rights: r.rights, no_symlinks: r.no_symlinks, when: r.when })
            })
            .collect::<Result<_>>()?,
    })
}

/// Converts the seccomp program.
pub fn child_bpf(prog: &[Insn]) -> Vec<libc::sock_filter> {
    prog.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect()
}

/// The programs `execve` should try: the program itself when it has a `/`, else each `PATH`
/// entry of the command's environment joined with it (what `execvp` would try).
pub fn candidates(program: &OsStr, env: &[(OsString, OsString)]) -> Result<Vec<CString>> {
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![cstr("program", program)?]);
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    path.as_bytes()
        .split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            cstr("program", OsStr::from_bytes(&full))
        })
        .collect()
}

/// argv strings, envp strings, and their NULL-terminated pointer arrays.
pub type ArgsEnv = (Vec<CString>, Vec<CString>, Vec<*const libc::c_char>, Vec<*const libc::c_char>);

/// Builds argv/envp arrays.
pub fn args_env(program: &OsStr, args: &[OsString], env: &[(OsString, OsString)]) -> Result<ArgsEnv> {
    let argv: Vec<CString> = std::iter::once(program)
        .chain(args.iter().map(|a| a.as_os_str()))
        .map(|a| cstr("argument", a))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstr("environment variable", OsStr::from_bytes(&kv))
        })
        .collect::<Result<_>>()?;
    let mut ap: Vec<_> = argv.iter().map(|c| c.as_ptr()).collect();
    ap.push(std::ptr::null());
    let mut ep: Vec<_> = envp.iter().map(|c| c.as_ptr()).collect();
    ep.push(std::ptr::null());
    Ok((argv, envp, ap, ep))
}

/// Raw fd of an optional owned fd.
pub fn raw(fd: Option<&OwnedFd>) -> RawFd {
    fd.map_or(-1, |f| f.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_directory_stays_writable_until_its_kept_file_seals_it() {
        let plan = MountPlan {
            ops: vec![
                MountOp::HideDir("/run".into()),
                MountOp::KeepFile { dir: "/run".into(), rel: "systemd/resolve/stub-resolv.conf".into() },
                MountOp::HideDir("/home/u/.docker/run".into()),
            ],
            missing: vec![],
        };
        let ops = child_ops(&plan, &Identities::default()).unwrap();
        assert!(matches!(&ops[0], ChildOp::HideDir { rdonly: false, .. }));
        match &ops[1] {
            ChildOp::KeepFile { dir, source, parents, rel, slot, seal } => {
                assert_eq!(dir.as_c_str(), c"/run");
                assert_eq!(source.as_c_str(), c"/run/systemd/resolve/stub-resolv.conf");
                assert_eq!(parents, &[c"systemd".to_owned(), c"systemd/resolve".to_owned()]);
                assert_eq!(rel.as_c_str(), c"systemd/resolve/stub-resolv.conf");
                assert_eq!((*slot, *seal), (0, true));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&ops[2], ChildOp::HideDir { rdonly: true, .. }));

        // Hidden twice (`/run` also a deny-read path), two files kept: only the hide they
        // follow stays writable, and only the last of them seals it.
        let keep = |rel: &str| MountOp::KeepFile { dir: "/run".into(), rel: rel.into() };
        let plan = MountPlan {
            ops: vec![MountOp::HideDir("/run".into()), keep("a"), keep("b/c"), MountOp::HideDir("/run".into())],
            missing: vec![],
        };
        let ops = child_ops(&plan, &Identities::default()).unwrap();
        assert!(matches!(&ops[0], ChildOp::HideDir { rdonly: false, .. }));
        assert!(matches!(&ops[1], ChildOp::KeepFile { seal: false, slot: 0, .. }));
        assert!(matches!(&ops[2], ChildOp::KeepFile { seal: true, slot: 1, .. }));
        assert!(matches!(&ops[3], ChildOp::HideDir { rdonly: true, .. }));
    }

    #[test]
    fn path_lookup_like_execvp() {
        let env = vec![(OsString::from("PATH"), OsString::from("/a::/b"))];
        let c = candidates(OsStr::new("ls"), &env).unwrap();
        assert_eq!(c, vec![c"/a/ls".to_owned(), c"./ls".to_owned(), c"/b/ls".to_owned()]);
        assert_eq!(candidates(OsStr::new("./x"), &env).unwrap(), vec![c"./x".to_owned()]);
    }

    #[test]
    fn nul_is_a_typed_error() {
        let e = args_env(OsStr::new("a"), &[OsString::from("b\0c")], &[]).unwrap_err();
        assert!(matches!(e, Error::Nul { .. }));
    }
}
