//! The supervisor: prepares a run, forks the sandbox, waits with the timeout while forwarding
//! signals, and turns what the children reported into an [`Outcome`].

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use stockade_policy::{
    env_filter, CommandSpec, Enforcement, ExitStatus, LayerReport, LayerStatus, NetworkMode, Outcome, Policy, Stdio,
    Warning,
};

use crate::error::{Error, Result};
use crate::init_launch::{self, InitLaunch};
use crate::landlock_rules::{self, Flavor, LandlockInputs};
use crate::mount_plan::{self, Missing, MountPlan};
use crate::prepare::{self, Prepared};
use crate::seccomp_rules::{self, Arch, ProcessScope, SeccompPlan, SocketRule};
use crate::sys::RLIMIT_NOFILE;
use crate::{host_facts, sys};

/// The result of trying one implementation.
#[derive(Debug)]
pub enum Attempt {
    /// The command ran.
    Done(Outcome),
    /// The implementation cannot run on this host (and why); try the next one.
    Unavailable(String),
}

fn layer(id: &str, status: LayerStatus, detail: impl Into<String>) -> LayerReport {
    LayerReport { layer: id.into(), status, detail: detail.into() }
}

// The resource numbers are `u32` on glibc and `c_int` on musl.
#[allow(clippy::unnecessary_cast)]
const RLIMIT_CORE: u32 = libc::RLIMIT_CORE as u32;
#[allow(clippy::unnecessary_cast)]
const RLIMIT_NPROC: u32 = libc::RLIMIT_NPROC as u32;
#[allow(clippy::unnecessary_cast)]
const RLIMIT_AS: u32 = libc::RLIMIT_AS as u32;

/// The command's core-file limit, in bytes. Not 0: at 0 the kernel writes no core file, but
/// it still hands the whole core to a `core_pattern` pipe helper (systemd-coredump, apport),
/// which runs as root in the host's namespaces; at exactly 1 it aborts the dump before it
/// starts the helper ("RLIMIT_CORE is set to 1, aborting core"), and 1 byte is below the
/// smallest core file it would write. The seccomp filter keeps the command from changing it
/// (see `seccomp_rules::core_limit_writes`). A caller whose hard limit is already 0 passes 0
/// on: raising it takes a privilege the run does not have.
pub const CORE_LIMIT: u64 = 1;

/// How reports and `doctor` describe [`CORE_LIMIT`].
pub const CORE_WORDS: &str = "RLIMIT_CORE=1 byte (no core file, no core_pattern pipe helper; changes are ignored)";

/// What the command's core limit cannot keep from the host's crash handler, given the host's
/// `core_pattern` and the limit the run applies (`core_limit`, see [`rlimits`]): a socket helper
/// (`@` or `@@`, Linux 6.16+) gets every core whatever the limit, a pipe helper (`|`) every core
/// at limit 0. Pure.
pub fn core_helper_gap(core_pattern: &[u8], core_limit: u64) -> Option<String> {
    let pattern = String::from_utf8_lossy(core_pattern);
    let pattern = pattern.trim_end();
    if pattern.starts_with('@') {
        Some(format!(
            "a crash hands the process's memory to the host's core_pattern socket helper (`{pattern}`): the kernel applies no core limit to socket helpers"
        ))
    } else if pattern.starts_with('|') && core_limit == 0 {
        Some(format!(
            "a crash hands the process's memory to the host's core_pattern pipe helper (`{pattern}`): the caller's hard core limit is 0, which pipe helpers ignore, and raising it to 1, which they honour, takes CAP_SYS_RESOURCE"
        ))
    } else {
        None
    }
}

/// [`core_helper_gap`] for this host, read from `/proc/sys/kernel/core_pattern` (nothing if it
/// cannot be read: no crash handler this process can see). One `read` into a buffer larger
/// than the kernel's 128-byte pattern: it runs beside every command.
pub fn host_core_helper_gap(core_limit: u64) -> Option<String> {
    use rustix::fs::{open, Mode, OFlags};
    let fd = open("/proc/sys/kernel/core_pattern", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 256];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    core_helper_gap(&buf[..n], core_limit)
}

/// The rlimits for a run, each as (resource, soft, hard), and their description.
/// `shared_uid_count` is added to the process limit where `RLIMIT_NPROC` counts the user's
/// processes on the whole host. `nofile_now` is the (soft, hard) open-file limit the command
/// would inherit: `process.max_open_files` only ever lowers it, and keeps a lower soft limit
/// (programs that use `select` rely on staying below 1,024 unless they raise it themselves).
/// `core_hard_now` is the hard core limit the command would inherit: [`CORE_LIMIT`], or 0 when
/// that is what the caller has.
pub fn rlimits(
    policy: &Policy,
    shared_uid_count: u64,
    nofile_now: (u64, u64),
    core_hard_now: u64,
) -> (Vec<(u32, u64, u64)>, String) {
    let core = CORE_LIMIT.min(core_hard_now);
    let mut v = vec![(RLIMIT_CORE, core, core)];
    let mut words = vec![if core == CORE_LIMIT {
        CORE_WORDS.to_owned()
    } else {
        "RLIMIT_CORE=0 (the caller's hard limit; no core file; changes are ignored)".to_owned()
    }];
    if let Some(n) = policy.process.max_open_files {
        let (soft, hard) = (nofile_now.0.min(u64::from(n)), nofile_now.1.min(u64::from(n)));
        v.push((RLIMIT_NOFILE, soft, hard));
        words.push(if hard < u64::from(n) {
            format!("RLIMIT_NOFILE={hard} per process (inherited, below the policy's {n})")
        } else {
            format!("RLIMIT_NOFILE={n} per process")
        });
    }
    if let Some(n) = policy.process.max_processes {
        let lim = u64::from(n) + shared_uid_count;
        v.push((RLIMIT_NPROC, lim, lim));
        words.push(if shared_uid_count > 0 {
            format!("RLIMIT_NPROC={lim} ({n} + {shared_uid_count} already running as this uid)")
        } else {
            format!("RLIMIT_NPROC={n} (counted in the sandbox's user namespace)")
        });
    }
    if let Some(m) = policy.process.memory_bytes {
        v.push((RLIMIT_AS, m, m));
        words.push(format!("RLIMIT_AS={m} (address space per process, not a tree-wide memory limit)"));
    }
    (v, words.join("; "))
}

/// The limits layer's sentence about cgroup v2 when the run has no cgroup v2 group (`used`
/// says it has: its words say what it limits), made once the command has started: it reads
/// `/sys`, which would otherwise wait on the lock the new network namespace's device
/// registration holds while the run is prepared.
fn cgroup_v2_words(used: bool, needs_vm: bool) -> String {
    if used {
        return String::new();
    }
    let (cg, cgw) = host_facts::cgroup_v2();
    if cg {
        format!("; no cgroup v2 group: {}", crate::cgroup::v2_unused_words(needs_vm))
    } else {
        format!("; no cgroup v2 delegation: {cgw}")
    }
}

struct Common {
    env: Vec<(OsString, OsString)>,
    argv: Vec<std::ffi::CString>,
    envp: Vec<std::ffi::CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    candidates: Vec<std::ffi::CString>,
    cwd: std::ffi::CString,
    devnull: Option<OwnedFd>,
}

fn common(
    policy: &Policy,
    cmd: &CommandSpec,
    extra_env: &[(OsString, OsString)],
    devnull: Option<OwnedFd>,
) -> Result<Common> {
    let mut env = env_filter::build_env(&policy.env, cmd.host_env.iter().cloned());
    for (k, v) in extra_env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let (argv, envp, argv_ptrs, envp_ptrs) = prepare::args_env(&cmd.program, &cmd.args, &env)?;
    let candidates = prepare::candidates(&cmd.program, &env)?;
    let cwd_path = cmd.cwd.clone().unwrap_or_else(|| policy.workspace.clone());
    let cwd = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(cwd_path.as_os_str()))
        .map_err(|_| Error::Nul { what: "working directory".into() })?;
    Ok(Common { env, argv, envp, argv_ptrs, envp_ptrs, candidates, cwd, devnull })
}

/// The raw numbers of the cgroup controllers' roots (-1 where none is open).
fn raw_fds(roots: &[Option<OwnedFd>; 2]) -> [RawFd; 2] {
    roots.each_ref().map(|r| r.as_ref().map_or(-1, |fd| fd.as_raw_fd()))
}

/// The `tasks` files the command joins: each planned group's, relative to its controller's
/// root, for the controllers whose root is open.
fn cgroup_joins(planned: Option<&crate::cgroup::Planned>, roots: [RawFd; 2]) -> Result<Vec<(usize, CString)>> {
    let Some(g) = planned else { return Ok(Vec::new()) };
    g.tasks()
        .into_iter()
        .filter(|(slot, _)| roots[*slot] >= 0)
        .map(|(slot, rel)| Ok((slot, prepare::cpath(&rel)?)))
        .collect()
}

/// `/dev/null` for a command whose stdio is [`Stdio::Null`] (opened by the supervisor, before
/// the children that use it are created).
fn stdin_devnull(cmd: &CommandSpec) -> Result<Option<OwnedFd>> {
    match cmd.stdio {
        Stdio::Null => Ok(Some(sys::open_devnull().map_err(|e| syscall("open /dev/null", e))?)),
        _ => Ok(None),
    }
}

fn syscall(call: &'static str, source: io::Error) -> Error {
    Error::Syscall { call, source }
}

/// Creates the placeholders the plan asks for, never following symlinks.
fn create_placeholders(plan: &MountPlan) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for m in &plan.missing {
        let Missing::Placeholder { root, rel, kind } = m;
        {
            let full = root.join(rel);
            let err = |source| Error::Placeholder { path: full.clone(), source };
            let rootfd = sys::open_path(None, root, sys::RESOLVE_NO_SYMLINKS).map_err(err)?;
            let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
            let parentfd = match parent {
                Some(pr) => {
                    sys::open_path(Some(rootfd.as_raw_fd()), pr, sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_BENEATH)
                        .map_err(err)?
                }
                None => rootfd,
            };
            let name = rel.file_name().ok_or_else(|| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
            sys::create_placeholder(&parentfd, name, *kind).map_err(err)?;
            created.push(format!("`{}`", full.display()));
        }
    }
    Ok(created)
}

/// The loopback port, inside the sandbox, of the listener that leads to the allowlist proxy.
pub const BRIDGE_PORT: u16 = 3128;

/// Runs under the `namespaces` implementation; `bridge` is required for `network = "allow"`.
pub fn run_namespaces(policy: &Policy, cmd: &CommandSpec, bridge: Option<&crate::NetworkBridge>) -> Result<Attempt> {
    if let Some((root, tmp)) = mount_plan::private_tmp_conflict(policy) {
        init_launch::discard();
        return Err(Error::PrivateTmpConflict { root, tmp });
    }
    if let Some((root, hidden_by)) = mount_plan::hidden_writable_root(policy) {
        init_launch::discard();
        return Err(Error::HiddenWritableRoot { root, hidden_by });
    }
    // Off and allow both get a private network namespace; with allow, its only way out is the
    // bridge listener that pid 1 hands to the supervisor (see `sys::init_run`).
    let netns = policy.network.mode != NetworkMode::On;
    let bridge = match (policy.network.mode, bridge) {
        (NetworkMode::Allow, Some(b)) => {
            Some((b.clone(), sys::seqpacket_pair().map_err(|e| syscall("socketpair", e))?))
        }
        (NetworkMode::Allow, None) => {
            return Err(Error::NetworkAllowlistUnavailable { reason: "no proxy was started for this run" })
        }
        _ => None,
    };
    // Pid 1 creates its namespaces while the rest of the run is prepared. Every fd it holds
    // must exist before it is cloned (it gets a copy of the fd table then).
    let devnull = stdin_devnull(cmd)?;
    let launch = match init_launch::take(netns, devnull.is_some() || bridge.is_some()) {
        Some(l) => l,
        None => InitLaunch::new(netns, bridge.is_some())?,
    };
    let InitLaunch {
        mut init,
        report_r,
        report_fd,
        go_fd,
        supervisor_pidfd,
        one_shot,
        loopback_in_init,
        cgroup_roots,
        cgroup2,
        ..
    } = launch;
    let signals = sys::SignalForward::install().map_err(|e| syscall("sigaction", e))?;
    let started = Instant::now();

    let facts = host_facts::host_facts(policy, &cmd.host_env)?;
    let plan = mount_plan::plan(policy, &facts);
    let abi = sys::landlock_abi();
    let inputs =
        LandlockInputs { covers: mount_plan::covers(&plan), kept: facts.kept.clone(), ..LandlockInputs::default() };
    let ll = landlock_rules::plan(policy, abi, Flavor::Namespaces, &inputs);
    let bpf = seccomp_rules::build(&SeccompPlan {
        arch: Arch::native(),
        sockets: SocketRule::UnixIpRoute,
        processes: ProcessScope::PidNamespace,
    });
    let proxy_env: Vec<(OsString, OsString)> = match &bridge {
        Some(_) => stockade_net::proxy_env(BRIDGE_PORT).into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        None => Vec::new(),
    };
    let c = common(policy, cmd, &proxy_env, devnull)?;
    let (limits, mut limits_words) =
        rlimits(policy, 0, sys::inherited_limit(RLIMIT_NOFILE), sys::inherited_limit(RLIMIT_CORE).1);
    let core_limit = limits.iter().find(|r| r.0 == RLIMIT_CORE).map_or(CORE_LIMIT, |r| r.1);
    // The cgroup v1 groups are made after the go message (see `cgroup::Planned`); a cgroup v2
    // group now, since pid 1 clones the command into it right after the go message (here this
    // thread would otherwise wait for the clone of pid 1).
    let planned_groups = crate::cgroup::plan(policy);
    let root_fds = raw_fds(&cgroup_roots);
    let cgroup_joins = cgroup_joins(planned_groups.as_ref(), root_fds)?;
    let v2_groups = match (&planned_groups, &cgroup2) {
        (Some(g), Some(parent)) if sys::CLONE3_VM => g.create_v2(parent, root_fds.map(|fd| fd >= 0)),
        _ => None,
    };
    // Removes that group if the run ends before pid 1 has the go message.
    let mut v2_guard = RemoveGroupsOnDrop(v2_groups);
    let placeholders = create_placeholders(&plan)?;
    let creatable = host_facts::creatable_deny_write(&facts.protected);
    let git_watch = crate::git_redirect::watch(facts.repositories.iter().cloned());
    let mut nested_watch = crate::git_nested::watch(facts.repositories.iter().cloned());
    // The pointer arrays point into the argv/envp strings, which move (not copy) into `Prepared`.
    let prepared = std::sync::Arc::new(Prepared {
        ops: prepare::child_ops(&plan, &facts.identities)?,
        dev_nodes: ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
            .iter()
            .map(|s| std::ffi::CString::new(*s).map_err(|_| Error::Nul { what: (*s).into() }))
            .collect::<Result<_>>()?,
        landlock: ll.as_ref().map(prepare::child_landlock).transpose()?,
        bpf: prepare::child_bpf(&bpf),
        rlimits: limits,
        cwd: c.cwd,
        candidates: c.candidates,
        argv: c.argv,
        envp: c.envp,
        argv_ptrs: c.argv_ptrs,
        envp_ptrs: c.envp_ptrs,
        report_fd,
        cgroup_joins,
        cgroup_name: planned_groups.as_ref().map(|g| prepare::cpath(Path::new(g.name()))).transpose()?,
        cgroup_roots: root_fds,
        cgroup2_parent: cgroup2.as_ref().map_or(-1, |p| p.fd.as_raw_fd()),
        cgroup2_name: match (&v2_guard.0, &planned_groups) {
            (Some(_), Some(g)) => Some(prepare::cpath(Path::new(g.name()))?),
            _ => None,
        },
        cgroup2_missed: Default::default(),
        cgroups_ready: Default::default(),
        child_stack: Some(sys::ChildStack::new(prepare::CHILD_STACK_SIZE).map_err(|e| syscall("mmap (stack)", e))?),
        stdio_null: c.devnull.as_ref().map(|f| f.as_raw_fd()),
        parent: None,
        bridge_fd: bridge.as_ref().map_or(-1, |(_, (_, child))| child.as_raw_fd()),
        bridge_port: BRIDGE_PORT,
        exit_with_supervisor: one_shot,
        go_fd,
        supervisor_pidfd,
        launcher_done_fd: init.launcher_done_fd(),
        proceed: Default::default(),
        dev_ready: Default::default(),
        last_cap: sys::last_capability().map_err(|e| syscall("prctl(PR_CAPBSET_READ)", e))?,
        cpus: init.cpus(),
        loopback: netns && !loopback_in_init,
    });
    // The clone's result first: this thread maps pid 1's ids before the go message, which pid 1
    // waits for before anything that needs them (see `LaunchedInit::map_ids`).
    if let Err(e) = init.started() {
        return match e.raw_os_error() {
            Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::EACCES) => {
                let mut why =
                    host_facts::userns_restriction().unwrap_or_else(|| format!("clone(CLONE_NEWUSER|...) failed: {e}"));
                // Made on the host before the clone's result was known; they stay (see
                // docs/linux.md), so whatever runs next says so.
                if !placeholders.is_empty() {
                    why.push_str(&format!(
                        "; placeholders for missing protected paths were created on the host before this was known: {}",
                        placeholders.join(", ")
                    ));
                }
                Ok(Attempt::Unavailable(why))
            }
            _ => Err(syscall("clone", e)),
        };
    }
    init.map_ids().map_err(|e| syscall("writing pid 1's setgroups, uid_map and gid_map", e))?;
    init.go(&prepared);
    let v2_groups = v2_guard.0.take();
    // While pid 1 builds the mount view and the command sets itself up: the run's cgroups,
    // which the command waits for before it joins them, then the look at the repositories,
    // which `proceed` ends (pid 1 lets the command exec only after it).
    let v1_groups = planned_groups.and_then(|g| g.create(root_fds.map(|fd| fd >= 0)));
    let v1_summary = summary(v1_groups.as_ref());
    let groups = crate::cgroup::RunGroups::merge(v1_groups, v2_groups);
    let made = groups.as_ref().map_or(0, crate::cgroup::RunGroups::made_mask);
    sys::announce(&prepared.cgroups_ready, prepare::CGROUPS_DONE | made);
    nested_watch = nested_watch.with_cache(crate::gitlinks_cache::Cache::for_runs);
    crate::git_nested::snapshot(&mut nested_watch);
    init.proceed();
    let deadline = policy.process.timeout.and_then(|t| Instant::now().checked_add(t));
    let pid = init.pid;
    let forwarder = bridge.map(|(b, (ours, child))| {
        drop(child);
        Forwarder::start(ours, b)
    });
    if let Some(g) = groups.as_ref().map(|g| g.remover()) {
        init.after_exit(Box::new(g));
    }
    // While the command runs, this thread would only wait: it does what can wait until then.
    let mut v2_words = None;
    let mut core_gap = None;
    let mut chores = || {
        init.unpin_launcher();
        if groups.is_some() {
            crate::cgroup::sweep(cgroup2.as_ref().map(|p| p.path.as_path()));
        }
        v2_words = Some(cgroup_v2_words(groups.as_ref().is_some_and(|g| g.v2_dir.is_some()), true));
        core_gap = Some(host_core_helper_gap(core_limit));
    };
    let waited = wait(Child::Init(&init), deadline, &signals, &report_r, pid, true, groups.as_ref(), &mut chores);
    let v2_words =
        v2_words.unwrap_or_else(|| cgroup_v2_words(groups.as_ref().is_some_and(|g| g.v2_dir.is_some()), true));
    let core_gap = core_gap.unwrap_or_else(|| host_core_helper_gap(core_limit));
    if let Some(f) = forwarder {
        f.stop();
    }
    let waited = waited?;
    if one_shot {
        // Pid 1 waits, having reaped everything, until this process exits (or the next
        // prelaunch): its teardown then does not compete with the caller's last work.
        init_launch::retire(init);
    }
    let (groups_words, v2_words) = without_missed_group(
        waited.groups_words.clone(),
        v1_summary,
        v2_words,
        prepared.cgroup2_missed.load(std::sync::atomic::Ordering::Relaxed),
    );
    let (limits_status, limits_extra) = limits_status(policy, &groups_words);
    limits_words = format!("{limits_extra}{limits_words}{v2_words}");
    let duration = started.elapsed();
    drop(signals);
    let status = decode(&prepared, &plan, &waited, policy)?;
    let (uid, gid) = sys::ids();
    let mut enforcement = Enforcement {
        layers: vec![
            layer("userns", LayerStatus::Full, format!("uid {uid} and gid {gid} mapped to themselves")),
            layer(
                "mountns",
                if creatable.is_empty() { LayerStatus::Full } else { LayerStatus::Partial },
                mount_detail(&plan, &placeholders),
            ),
            layer("pidns", LayerStatus::Full, "stockade init is pid 1; host processes invisible; tree killed on exit"),
            if policy.network.mode == NetworkMode::Allow {
                layer(
                    "netns",
                    LayerStatus::Full,
                    format!("private network namespace; the only way out is the allowlist proxy at 127.0.0.1:{BRIDGE_PORT}"),
                )
            } else if netns {
                layer("netns", LayerStatus::Full, "private network namespace with loopback only")
            } else {
                layer("netns", LayerStatus::None, "network on: host network namespace")
            },
            layer("ipcns", LayerStatus::Full, "private System V IPC and POSIX message queues"),
            layer("utsns", LayerStatus::Full, "hostname `stockade`"),
            match &ll {
                Some(l) => layer(
                    "landlock",
                    LayerStatus::Full,
                    format!("ABI {}: writes limited to writable roots and private tmp; signal and abstract-socket scoping{}", l.abi, if l.scoped == 0 { " unavailable" } else { "" }),
                ),
                None => layer("landlock", LayerStatus::None, "kernel without Landlock; the mount namespace still enforces writes"),
            },
            layer("seccomp", LayerStatus::Full, format!("{} denied syscalls, socket families, clone namespace flags, TIOCSTI/TIOCLINUX, arch check", seccomp_rules::DENIED.len())),
            layer("nnp", LayerStatus::Full, "PR_SET_NO_NEW_PRIVS"),
            layer("caps", LayerStatus::Full, "empty capability sets, bounding set cleared, NOROOT securebits locked"),
            layer("limits", limits_status, limits_words),
            layer("env", LayerStatus::Full, format!("{} variables from the policy's allowlist", c.env.len())),
        ],
        gaps: Vec::new(),
    };
    if policy.network.mode == NetworkMode::On {
        enforcement.gaps.push("network on: the command shares the host's network".into());
    }
    if !creatable.is_empty() {
        let names: Vec<String> = creatable.iter().map(|p| format!("`{}`", p.display())).collect();
        enforcement.gaps.push(format!(
            "deny-write paths inside writable roots that do not exist can be created: {} (they may name files, so no placeholder stands in for them; create them, or keep their parent out of the writable roots)",
            names.join(", ")
        ));
    }
    enforcement.gaps.extend(residual_gaps(abi, true));
    enforcement.gaps.extend(core_gap);

    let mut outcome = Outcome::new(status, duration, "namespaces", enforcement);
    outcome.warnings = crate::git_redirect::check(&git_watch);
    outcome.warnings.extend(crate::git_nested::check(&nested_watch));
    if matches!(policy.filesystem.readable, stockade_policy::Readable::Roots(_)) {
        // Every socket directory, those hidden entry by entry around a writable root too. (Not
        // looked up under `readable = all`, which lists no root: the default keeps its tail.)
        let mut view_hides = host_facts::socket_dirs(&cmd.host_env);
        view_hides.extend(host_facts::private_tmp_dirs(policy));
        outcome.warnings.extend(hidden_readable_roots(policy, &view_hides));
    }
    crate::git_nested::save_cache(&nested_watch);
    Ok(Attempt::Done(outcome))
}

fn mount_detail(plan: &MountPlan, placeholders: &[String]) -> String {
    let mut s = format!("{} mount steps: read-only `/`, writable roots, protected read-only, deny-read and host sockets hidden, private /tmp, minimal /dev, fresh /proc", plan.ops.len());
    if !placeholders.is_empty() {
        s.push_str(&format!(
            "; created placeholders on the host for missing protected paths: {}",
            placeholders.join(", ")
        ));
    }
    s
}

struct Waited {
    /// The raw wait status of the process we waited for.
    status: i32,
    timed_out: bool,
    records: Vec<(u32, i32, i32)>,
    /// What the run's cgroups limited: words, pids, memory.
    groups_words: GroupsSummary,
}

/// What a run's groups limit: words, and whether they hold the process count and the memory.
type GroupsSummary = Option<(Vec<String>, bool, bool)>;

fn summary(groups: Option<&crate::cgroup::RunGroups>) -> GroupsSummary {
    groups.map(|g| (g.words.clone(), g.pids, g.memory))
}

/// The run's groups as applied: all of them (`all`), or, when the command could not be started
/// in its cgroup v2 group (`missed` is the error), only the cgroup v1 ones (`v1`), with words
/// that say so in place of `v2_words`.
fn without_missed_group(
    all: GroupsSummary,
    v1: GroupsSummary,
    v2_words: String,
    missed: i32,
) -> (GroupsSummary, String) {
    if missed == 0 {
        return (all, v2_words);
    }
    let why = io::Error::from_raw_os_error(missed);
    (
        v1,
        format!(
            "; no cgroup v2 group: starting the command in it failed ({why}), so no group limits the tree \
             (the kernel applies no RLIMIT_NPROC to uid 0, and RLIMIT_AS limits each process)"
        ),
    )
}

/// The `limits` layer's status and the cgroup part of its detail.
fn limits_status(policy: &Policy, groups: &GroupsSummary) -> (LayerStatus, String) {
    match groups {
        Some((words, pids, memory)) => {
            let full =
                (*pids || policy.process.max_processes.is_none()) && (*memory || policy.process.memory_bytes.is_none());
            (if full { LayerStatus::Full } else { LayerStatus::Partial }, format!("{}; ", words.join("; ")))
        }
        None => (LayerStatus::Partial, String::new()),
    }
}

fn parse_records(buf: &[u8]) -> Vec<(u32, i32, i32)> {
    buf.chunks_exact(12)
        .map(|r| {
            let w = |i: usize| [r[i], r[i + 1], r[i + 2], r[i + 3]];
            (u32::from_ne_bytes(w(0)), i32::from_ne_bytes(w(4)), i32::from_ne_bytes(w(8)))
        })
        .collect()
}

/// The process a run waits for.
enum Child<'a> {
    /// The sandbox's pid 1, reaped by its launching thread (or, for a one-shot run's pid 1,
    /// after its release, see `LaunchedInit::release`).
    Init(&'a sys::LaunchedInit),
    /// The command itself (`landlock-only`), reaped here.
    Direct(libc::pid_t),
}

/// Waits for `child`. With `early_exit` (pid 1 of a namespace sandbox), returns as soon as the
/// command's exit status is reported: pid 1 reaped the whole tree before reporting, and what
/// remains is the kernel tearing its namespaces down, which need not delay the caller.
/// `on_started` runs once, when pid 1 reports that the command started.
#[allow(clippy::too_many_arguments)]
fn wait(
    child: Child<'_>,
    deadline: Option<Instant>,
    signals: &sys::SignalForward,
    report: &OwnedFd,
    forward_to: libc::pid_t,
    early_exit: bool,
    groups: Option<&crate::cgroup::RunGroups>,
    on_started: &mut dyn FnMut(),
) -> Result<Waited> {
    let groups_words = summary(groups);
    let own_pidfd;
    let (pid, pidfd) = match &child {
        Child::Init(init) => (init.pid, init.pidfd()),
        Child::Direct(pid) => {
            own_pidfd = sys::pidfd_open(*pid).map_err(|e| syscall("pidfd_open", e))?;
            (*pid, own_pidfd.as_raw_fd())
        }
    };
    // Pid 1 is reaped by another thread, possibly while this loop runs, so it is
    // signalled through its pidfd (a reused pid is never hit); the landlock-only command is
    // reaped here, after the loop, so its process group can be signalled by id.
    let signal = |sig: i32| match &child {
        Child::Init(_) => sys::pidfd_kill(pidfd, sig),
        Child::Direct(_) => sys::kill(forward_to, sig),
    };
    let mut timed_out = false;
    let mut started = false;
    let mut records_buf = Vec::new();
    sys::set_nonblock(report.as_raw_fd());
    loop {
        let ms = match deadline {
            Some(d) if !timed_out => {
                d.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32
            }
            _ => -1,
        };
        let ready = sys::poll_in(&[pidfd, signals.read.as_raw_fd(), report.as_raw_fd()], ms);
        if ready[1] {
            let mut b = Vec::new();
            sys::read_all(&signals.read, &mut b);
            for sig in b {
                signal(i32::from(sig));
            }
        }
        if ready[2] {
            sys::read_all(report, &mut records_buf);
            let records = parse_records(&records_buf);
            if !started && records.iter().any(|r| r.0 == sys::MSG_STARTED) {
                started = true;
                on_started();
            }
            if early_exit && records.iter().any(|r| r.0 == sys::MSG_EXIT) {
                return Ok(Waited { status: 0, timed_out, records, groups_words });
            }
        }
        if ready[0] {
            break;
        }
        if let Some(d) = deadline {
            if !timed_out && Instant::now() >= d {
                timed_out = true;
                match &child {
                    Child::Init(_) => signal(libc::SIGKILL),
                    Child::Direct(_) => sys::kill(pid, libc::SIGKILL),
                }
            }
        }
    }
    let status = match child {
        Child::Init(init) => init.status().map_err(|e| syscall("waitpid", e))?,
        Child::Direct(pid) => sys::wait_pid(pid).map_err(|e| syscall("waitpid", e))?,
    };
    sys::read_all(report, &mut records_buf);
    let records = parse_records(&records_buf);
    Ok(Waited { status, timed_out, records, groups_words })
}

fn step_name(p: &Prepared, plan: &MountPlan, ll_rules: &[(PathBuf, u64)], step: i32) -> String {
    use sys::step::*;
    match step {
        s if s >= 0 && (s as usize) < plan.ops.len() => mount_plan::describe(&plan.ops[s as usize]),
        s if s >= LANDLOCK_PATH_LINK => ll_rules.get((s - LANDLOCK_PATH_LINK) as usize).map_or(
            "a path with a Landlock rule is a symlink".into(),
            |(path, _)| {
                format!(
                    "`{}` (a writable root, or a readable tree of `landlock-only`): it became a symlink after the policy was resolved (opened for its Landlock rule with RESOLVE_NO_SYMLINKS)",
                    path.display()
                )
            },
        ),
        s if s >= LANDLOCK_RULE => {
            ll_rules.get((s - LANDLOCK_RULE) as usize).map_or("a Landlock rule".into(), |(path, _)| {
                format!("Landlock rule for `{}` (landlock_add_rule)", path.display())
            })
        }
        PDEATHSIG => "prctl(PR_SET_PDEATHSIG)".into(),
        HOSTNAME => "sethostname".into(),
        IPC_UTS => "unshare(CLONE_NEWIPC|CLONE_NEWUTS) in pid 1, for the command".into(),
        LOOPBACK => "bringing up loopback (SIOCSIFFLAGS)".into(),
        FORK => "forking the command (clone)".into(),
        SETSID => "setsid".into(),
        STDIO => "redirecting stdio (dup2)".into(),
        RLIMIT => "setrlimit".into(),
        CHDIR => format!("chdir `{}`", p.cwd.to_string_lossy()),
        NNP => "prctl(PR_SET_NO_NEW_PRIVS)".into(),
        LANDLOCK_CREATE => "landlock_create_ruleset".into(),
        LANDLOCK_RESTRICT => "landlock_restrict_self".into(),
        CAPS => "capset (dropping capabilities)".into(),
        SECCOMP => "installing the seccomp filter".into(),
        CLOSE_FDS => "close_range".into(),
        BRIDGE => format!("creating the proxy listener on 127.0.0.1:{BRIDGE_PORT} and handing it over"),
        _ => format!("step {step}"),
    }
}

fn decode(p: &Prepared, plan: &MountPlan, w: &Waited, policy: &Policy) -> Result<ExitStatus> {
    let ll_rules: Vec<(PathBuf, u64)> = p
        .landlock
        .as_ref()
        .map(|l| l.rules.iter().map(|r| (PathBuf::from(r.path.to_string_lossy().into_owned()), r.rights)).collect())
        .unwrap_or_default();
    for &(kind, a, b) in &w.records {
        if kind == sys::MSG_SETUP {
            return Err(Error::Setup {
                step: step_name(p, plan, &ll_rules, a),
                source: io::Error::from_raw_os_error(b),
            });
        }
    }
    if w.timed_out {
        return Ok(ExitStatus::TimedOut);
    }
    for &(kind, a, _) in &w.records {
        if kind == sys::MSG_EXEC {
            return Ok(if a == libc::ENOENT || a == libc::ENOTDIR {
                ExitStatus::NotFound
            } else {
                ExitStatus::NotExecutable
            });
        }
    }
    let raw = w.records.iter().find(|r| r.0 == sys::MSG_EXIT).map_or(w.status, |r| r.1);
    let _ = policy;
    Ok(if libc::WIFSIGNALED(raw) {
        ExitStatus::Signaled { signal: libc::WTERMSIG(raw) }
    } else {
        ExitStatus::Exited { code: libc::WEXITSTATUS(raw) }
    })
}

/// What neither implementation can stop on this kernel, in words (reported, never hidden).
pub fn residual_gaps(abi: i32, mounts: bool) -> Vec<String> {
    let mut g = Vec::new();
    if abi < 9 && !mounts {
        g.push("host unix sockets (pathname sockets anywhere, including in /run, /tmp and $XDG_RUNTIME_DIR, whose files are unreadable) can be connected to: Landlock ABI < 9 does not mediate connect()".to_owned());
    } else if abi < 9 {
        g.push(
            "host unix sockets bound after the sandbox started, outside the hidden directories (/run, /var/run, /tmp, $XDG_RUNTIME_DIR, deny-read paths), \
             can be connected to: Landlock ABI < 9 does not mediate connect() on pathname sockets (sockets bound at launch are covered)"
                .to_owned(),
        );
    }
    g.push("files in writable roots that already have several hard links may share their inode with a file outside; writing them changes it".into());
    g.push("a repository created in a subdirectory (`git init sub`) gets writable hooks and config, and a plain `git status` on the host runs git inside it once the command records it as a submodule in the index; an existing submodule's `.git` file can be repointed likewise; only each writable root's own git metadata is read-only (every run reports, as a warning, repositories it recorded as submodules, and config, hooks and `.git` links it changed in repositories recorded as submodules)".into());
    g.push(GIT_REDIRECT_GAP.into());
    g.push(INOTIFY_GAP.into());
    g
}

/// Inotify instances and watches are counted per user, through every user namespace up to the
/// host's, so the sandbox draws on the same allowance as the user's editors and file watchers.
/// Pid 1 could lower the sandbox's own share by writing `/proc/sys/user/max_inotify_*` in its
/// user namespace, but the first such write in a new namespace cost 0.27 ms of every run's
/// latency here (see docs/linux.md), so it is not done.
const INOTIFY_GAP: &str = "inotify instances and watches count against the user's own limits \
     (fs.inotify.max_user_instances and max_user_watches), shared with the user's other processes: a command can use \
     up what is left while it runs (each of its processes holds no more than its open-file limit; all are released \
     when the run ends)";

/// The one file git reads from a repository's `.git` that does not exist in most repositories
/// and cannot get a placeholder: any `commondir`, even one naming `.git` itself, changes what
/// git does, and Linux offers no way to keep a name from being created in a writable directory
/// without putting something there. See [`crate::git_redirect`].
const GIT_REDIRECT_GAP: &str = "a new `.git/commondir` in a repository is writable: it makes git on the host read config \
     and hooks from the directory it names, and a name cannot be kept from being created in a writable directory without \
     leaving a file there (every run reports one it finds, as a warning)";

/// The promises `landlock-only` cannot keep on a kernel offering Landlock ABI `abi`, in words.
/// Pure.
pub fn landlock_only_gaps(policy: &Policy, abi: i32) -> Vec<String> {
    let fs = &policy.filesystem;
    let mut g = vec![
        "protected paths inside writable roots (`.git/hooks`, `.git/config`, agent config) are writable: Landlock cannot subtract from a writable tree".to_owned(),
        "metadata changes outside the writable roots (chmod, chown, utime, setxattr) are not mediated by Landlock".into(),
        if abi >= 6 {
            "other processes of the same user are visible in /proc; signals to them are denied by Landlock scoping, ptrace by seccomp".into()
        } else {
            format!("other processes of the same user are visible in /proc and can be sent signals (`kill -9 -1`): this kernel's Landlock ABI {abi} has no signal scoping (ABI 6); ptrace is denied by seccomp")
        },
        "other processes and process groups of the same user can have their scheduling changed (setpriority, ioprio_set, sched_setaffinity, sched_setscheduler, sched_setparam, sched_setattr by pid or group; SCHED_IDLE needs no privilege): Landlock does not mediate these calls, and runtimes make them on their own threads; changing their resource limits (prlimit) and the whole-user forms of setpriority and ioprio_set are refused by seccomp, which also refuses prlimit on the command's own processes by pid (only pid 0, the caller, works)".into(),
        "the user's other terminals (/dev/pts) can be opened, read and written: there is no private devpts".into(),
        "background processes that start their own process group or session can outlive the run, and if stockade itself is killed, every process of the command can (no pid namespace)".into(),
        if policy.filesystem.private_tmp {
            "the host's /tmp is not private, only out of reach: the command can neither read nor write it, nor /var/tmp (writable roots below them excepted); TMPDIR points to a private directory removed after the run".into()
        } else {
            "the host's /tmp is not private; TMPDIR points to a private directory removed after the run".into()
        },
        "the host's name and mount table are visible (no UTS or mount namespace): /proc/self/mountinfo lists every host mount and where it comes from".into(),
        "TCP servers on loopback cannot be used (no private network namespace; IP sockets are forbidden)".into(),
        "the host's network is shared (no private network namespace): /proc/net lists the host's sockets and interfaces".into(),
        "System V IPC objects and POSIX message queues are shared with the host (no IPC namespace): the command can use those its user may access, and what it creates outlives the run".into(),
    ];
    if abi < 6 {
        g.push(format!("abstract unix sockets of the host can be connected to: this kernel's Landlock ABI {abi} has no abstract-socket scoping (ABI 6)"));
    }
    if abi < 3 {
        g.push(format!("files outside the writable roots that the user may write can be truncated (`truncate`, `open` with O_TRUNC): this kernel's Landlock ABI {abi} cannot restrict truncation (ABI 3)"));
    }
    let writable_roots: Vec<&Path> = fs.writable_paths().collect();
    let readable_roots: Vec<&Path> = match &fs.readable {
        stockade_policy::Readable::All => Vec::new(),
        stockade_policy::Readable::Roots(r) => r.iter().map(|s| s.value.as_path()).collect(),
    };
    let inside = |p: &Path, roots: &[&Path]| roots.iter().any(|r| p.starts_with(r));
    let exposed: Vec<String> = fs
        .deny_read
        .iter()
        .filter(|d| inside(&d.value, &writable_roots) || inside(&d.value, &readable_roots))
        .map(|d| format!("`{}`", d.value.display()))
        .collect();
    if !exposed.is_empty() {
        g.push(format!("deny-read paths inside writable or readable roots stay readable ({}): Landlock cannot subtract from a tree it grants", exposed.join(", ")));
    }
    let writable: Vec<String> = fs
        .deny_write
        .iter()
        .filter(|d| inside(&d.value, &writable_roots))
        .map(|d| format!("`{}`", d.value.display()))
        .collect();
    if !writable.is_empty() {
        g.push(format!(
            "deny-write paths inside writable roots are writable ({}): Landlock cannot subtract from a writable tree",
            writable.join(", ")
        ));
    }
    if policy.process.max_processes.is_some() {
        g.push("the process limit counts all of this user's processes on the host (RLIMIT_NPROC), unless a cgroup applies it".into());
    }
    g.extend(residual_gaps(abi, false));
    g
}

/// What `landlock-only` leaves out of its read roots besides deny-read and `/dev` (see
/// [`landlock_rules::landlock_only_unreadable`]), by kind.
struct LandlockOnlyHidden {
    /// The host's socket directories, which the namespaces view covers with an empty tmpfs.
    sockets: Vec<PathBuf>,
    /// With a private temp dir, the host's `/tmp`, `/var/tmp` and `/dev/shm` (the command's
    /// own, its `TMPDIR`, has a rule of its own; `/dev` is left out whole anyway).
    tmp: Vec<PathBuf>,
    /// The host's other device mounts, which the view mounts `nodev` (see
    /// [`host_facts::device_mounts`]), less those below a tree granted whole.
    devices: Vec<PathBuf>,
    /// Device mounts below a tree the command is granted whole anyway, which therefore stay
    /// readable: a gap of the run.
    exposed_devices: Vec<PathBuf>,
}

impl LandlockOnlyHidden {
    fn of_host(policy: &Policy, host_env: &[(OsString, OsString)]) -> LandlockOnlyHidden {
        let (devices, exposed_devices) = device_mounts(policy, host_facts::device_mounts());
        LandlockOnlyHidden {
            sockets: host_facts::socket_dirs(host_env),
            tmp: host_facts::private_tmp_dirs(policy),
            devices,
            exposed_devices,
        }
    }

    /// Everything to leave out of the read roots.
    fn all(&self) -> Vec<PathBuf> {
        self.sockets.iter().chain(&self.tmp).chain(&self.devices).cloned().collect()
    }
}

/// The host's device `mounts` outside `/dev` that `landlock-only` can leave out of its read
/// roots, and those it cannot: one below a writable root, or under `readable = [roots]` below
/// a system tree, whose rule grants it anyway (Landlock cannot take a subtree out of a rule),
/// and `/`, which would leave nothing readable. Pure.
fn device_mounts(policy: &Policy, mounts: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let roots = matches!(policy.filesystem.readable, stockade_policy::Readable::Roots(_));
    let granted_whole = |d: &Path| {
        d.parent().is_none()
            || policy.filesystem.writable_paths().any(|w| d.starts_with(w))
            || (roots && landlock_rules::SYSTEM_TREES.iter().any(|t| d.starts_with(t)))
    };
    mounts.into_iter().partition(|d| !granted_whole(d))
}

/// What `landlock-only` grants read on for a kept `resolv.conf` target in one of the host's
/// socket directories: the directory holding it where that lies below the socket directory and
/// holds no directory of its own and no deny-read path (`/run/systemd/resolve`), since
/// systemd-resolved replaces the file by a rename when its search domains change and a rule on
/// the file would leave the new one unreadable (glibc then takes a missing `resolv.conf` to
/// mean 127.0.0.1, and no name resolves); the file alone elsewhere (a directory such as
/// NetworkManager's, whose subdirectories hold connection profiles, or `/run` itself).
/// `has_subdirs` says whether the directory holds one. Pure.
fn resolver_grant(file: PathBuf, sockets: &[PathBuf], deny_read: &[PathBuf], has_subdirs: bool) -> PathBuf {
    match file.parent() {
        Some(dir)
            if !has_subdirs
                && sockets.iter().any(|h| dir.starts_with(h) && dir != h.as_path())
                && !deny_read.iter().any(|d| d.starts_with(dir)) =>
        {
            dir.to_path_buf()
        }
        _ => file,
    }
}

/// Whether `dir` holds a directory (one that cannot be listed counts as holding one).
fn has_subdirs(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |r| r.flatten().any(|e| e.file_type().map_or(true, |t| t.is_dir())))
}

/// A warning for each readable root the policy lists inside a directory the sandbox hides
/// (`hidden`: the host's socket directories, its shared temp directories), which the command
/// therefore cannot read although the policy names it. Pure.
pub fn hidden_readable_roots(policy: &Policy, hidden: &[PathBuf]) -> Vec<Warning> {
    let stockade_policy::Readable::Roots(roots) = &policy.filesystem.readable else { return Vec::new() };
    roots
        .iter()
        // One inside a writable root is reached through that root.
        .filter(|r| !policy.filesystem.writable_paths().any(|w| r.value.starts_with(w)))
        .filter_map(|r| hidden.iter().find(|h| r.value.starts_with(h)).map(|h| (&r.value, h)))
        .map(|(root, dir)| Warning {
            code: "readable_root_hidden".into(),
            path: root.clone(),
            message: format!(
                "`{}` is listed as readable, but it lies in `{}`, which the sandbox hides (host sockets and shared temporary files live there), so the command could not read it; list a directory outside it instead",
                root.display(),
                dir.display()
            ),
        })
        .collect()
}

/// Runs under the `landlock-only` implementation.
pub fn run_landlock_only(policy: &Policy, cmd: &CommandSpec) -> Result<Attempt> {
    let abi = sys::landlock_abi();
    let hidden = LandlockOnlyHidden::of_host(policy, &cmd.host_env);
    let read_roots = landlock_rules::landlock_only_read_roots(policy, &hidden.all(), &host_facts::children);
    // With the network on, `/etc/resolv.conf`'s target where it lies in a socket directory
    // (systemd-resolved's, in `/run`), as the namespaces view keeps it.
    let deny_read: Vec<PathBuf> = policy.filesystem.deny_read.iter().map(|d| d.value.clone()).collect();
    let kept: Vec<PathBuf> = match policy.network.mode {
        NetworkMode::On => host_facts::kept_resolv_conf(Path::new("/etc/resolv.conf"), &hidden.sockets)
            .map(|f| {
                let subdirs = f.parent().is_none_or(has_subdirs);
                resolver_grant(f, &hidden.sockets, &deny_read, subdirs)
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let tmp = private_tmp_dir()?;
    let _cleanup = RemoveOnDrop(tmp.clone());
    let inputs = LandlockInputs { read_roots, kept, extra_writable: vec![tmp.clone()], ..LandlockInputs::default() };
    let Some(ll) = landlock_rules::plan(policy, abi, Flavor::LandlockOnly, &inputs) else {
        return Ok(Attempt::Unavailable("Landlock is not available".into()));
    };
    let sockets = if policy.network.mode == NetworkMode::Off { SocketRule::UnixOnly } else { SocketRule::UnixIpRoute };
    let bpf = seccomp_rules::build(&SeccompPlan { arch: Arch::native(), sockets, processes: ProcessScope::HostPids });
    let tmp_env: Vec<(OsString, OsString)> =
        ["TMPDIR", "TMP", "TEMP"].iter().map(|k| (OsString::from(k), tmp.clone().into_os_string())).collect();
    let c = common(policy, cmd, &tmp_env, stdin_devnull(cmd)?)?;
    let (uid, _) = sys::ids();
    // Made before the command is forked; it joins the cgroup v1 groups as under `namespaces`,
    // and is forked into a cgroup v2 group.
    let cgroup_roots = crate::cgroup::open_roots();
    let cgroup2 = crate::cgroup::open_v2_parent(&cgroup_roots);
    let root_fds = raw_fds(&cgroup_roots);
    let planned_groups = crate::cgroup::plan(policy);
    let usable = root_fds.map(|fd| fd >= 0);
    // Removed at the end, or on the way out of an error before.
    let v1_groups = planned_groups.as_ref().and_then(|g| g.create(usable));
    let v1_summary = summary(v1_groups.as_ref());
    let groups_guard = RemoveGroupsOnDrop(crate::cgroup::RunGroups::merge(
        v1_groups,
        planned_groups.as_ref().zip(cgroup2.as_ref()).and_then(|(g, parent)| g.create_v2(parent, usable)),
    ));
    let groups = groups_guard.0.as_ref();
    let cgroup_joins = cgroup_joins(planned_groups.as_ref(), root_fds)?;
    let made = groups.map_or(0, crate::cgroup::RunGroups::made_mask);
    let shared = if policy.process.max_processes.is_some() { host_facts::processes_of_uid(uid) } else { 0 };
    let (limits, mut limits_words) =
        rlimits(policy, shared, sys::inherited_limit(RLIMIT_NOFILE), sys::inherited_limit(RLIMIT_CORE).1);
    let core_limit = limits.iter().find(|r| r.0 == RLIMIT_CORE).map_or(CORE_LIMIT, |r| r.1);
    let (report_r, report_w) = sys::pipe().map_err(|e| syscall("pipe2", e))?;
    let prepared = Prepared {
        ops: Vec::new(),
        dev_nodes: Vec::new(),
        landlock: Some(prepare::child_landlock(&ll)?),
        bpf: prepare::child_bpf(&bpf),
        rlimits: limits,
        cwd: c.cwd.clone(),
        candidates: c.candidates.clone(),
        argv: c.argv.clone(),
        envp: c.envp.clone(),
        argv_ptrs: c.argv_ptrs.clone(),
        envp_ptrs: c.envp_ptrs.clone(),
        report_fd: report_w.as_raw_fd(),
        cgroup_joins,
        cgroup_name: None, // the supervisor removes them: it reaps the command itself
        cgroup_roots: root_fds,
        cgroup2_parent: -1, // the command is forked into its group, below
        cgroup2_name: None,
        cgroup2_missed: Default::default(),
        cgroups_ready: std::sync::atomic::AtomicU32::new(prepare::CGROUPS_DONE | made),
        child_stack: None,
        stdio_null: c.devnull.as_ref().map(|f| f.as_raw_fd()),
        // SAFETY-free: getpid never fails.
        parent: Some(std::process::id() as libc::pid_t),
        bridge_fd: -1,
        bridge_port: 0,
        exit_with_supervisor: false,
        go_fd: -1,
        supervisor_pidfd: -1,
        launcher_done_fd: -1,
        proceed: Default::default(),
        dev_ready: Default::default(),
        last_cap: sys::last_capability().map_err(|e| syscall("prctl(PR_CAPBSET_READ)", e))?,
        cpus: None,
        loopback: false,
    };
    // Protected paths are not enforced here, so too many git directories only narrows the check.
    let repos = policy.filesystem.writable_paths().filter_map(|r| host_facts::git_dirs(r).ok().flatten());
    let git_dirs: Vec<PathBuf> = repos.flat_map(|d| d.watched().collect::<Vec<_>>()).collect();
    let git_watch = crate::git_redirect::watch(git_dirs.iter().cloned());
    let mut nested_watch = crate::git_nested::watch(git_dirs).with_cache(crate::gitlinks_cache::Cache::for_runs);
    // Here the command starts as soon as it is cloned.
    crate::git_nested::snapshot(&mut nested_watch);
    let signals = sys::SignalForward::install().map_err(|e| syscall("sigaction", e))?;
    let started = Instant::now();
    // Into the cgroup v2 group, or, where that fails (see `Prepared::cgroup2_missed`), without it.
    let mut missed = 0;
    let v2_group = groups.and_then(|g| g.v2_dir.as_ref()).and_then(|dir| {
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            std::fs::OpenOptions::new().read(true),
            libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .open(dir)
        .map_err(|e| missed = e.raw_os_error().unwrap_or(libc::EINVAL))
        .ok()
    });
    let forked = match &v2_group {
        Some(dir) => sys::clone3_fork(0, dir.as_raw_fd()).or_else(|e| {
            missed = e.raw_os_error().unwrap_or(libc::EINVAL);
            sys::clone_process(0)
        }),
        None => sys::clone_process(0),
    };
    let pid = match forked {
        Ok(0) => sys::command_main(&prepared),
        Ok(pid) => pid,
        Err(e) => return Err(syscall("clone", e)),
    };
    drop(v2_group);
    drop(report_w);
    let deadline = policy.process.timeout.and_then(|t| Instant::now().checked_add(t));
    if groups.is_some() {
        crate::cgroup::sweep(cgroup2.as_ref().map(|p| p.path.as_path()));
    }
    let v2_words = cgroup_v2_words(groups.is_some_and(|g| g.v2_dir.is_some()), false);
    let core_gap = host_core_helper_gap(core_limit);
    let waited = wait(Child::Direct(pid), deadline, &signals, &report_r, -pid, false, groups, &mut || {});
    // Whatever stayed in the command's process group goes with it (before its cgroups).
    sys::kill(-pid, libc::SIGKILL);
    drop(groups_guard);
    let waited = waited?;
    let (groups_words, v2_words) = without_missed_group(waited.groups_words.clone(), v1_summary, v2_words, missed);
    let (limits_status, limits_extra) = limits_status(policy, &groups_words);
    limits_words = format!("{limits_extra}{limits_words}{v2_words}");
    let duration = started.elapsed();
    drop(signals);
    let plan = MountPlan::default();
    let status = decode(&prepared, &plan, &waited, policy)?;
    let enforcement = Enforcement {
        layers: vec![
            layer("userns", LayerStatus::None, "landlock-only: no user namespace"),
            layer("mountns", LayerStatus::None, "landlock-only: host mounts"),
            layer("pidns", LayerStatus::None, "landlock-only: host pid namespace; the command's process group is killed at the end"),
            layer("netns", LayerStatus::None, "landlock-only: host network namespace; seccomp forbids IP and netlink sockets when network is off"),
            layer("landlock", LayerStatus::Partial, format!("ABI {abi}: reads of deny-read paths and writes outside writable roots denied; TCP {}; protected paths not enforceable", if ll.handled_net != 0 { "denied" } else { "allowed" })),
            layer("seccomp", LayerStatus::Full, format!("{} denied syscalls; sockets: {:?}", seccomp_rules::DENIED.len(), sockets)),
            layer("nnp", LayerStatus::Full, "PR_SET_NO_NEW_PRIVS"),
            layer("caps", LayerStatus::Full, "empty capability sets, bounding set cleared where permitted"),
            layer("limits", limits_status, limits_words),
            layer("env", LayerStatus::Full, format!("{} variables from the policy's allowlist", c.env.len())),
        ],
        gaps: landlock_only_gaps(policy, abi)
            .into_iter()
            .chain(hidden.exposed_devices.iter().map(|d| {
                format!(
                    "the host's device mount `{}` lies in a tree the command may read whole, so its device nodes (a disk, for a root caller) stay readable: Landlock cannot take a subtree out of a rule, and only the namespaces view mounts it nodev",
                    d.display()
                )
            }))
            .chain(core_gap)
            .collect(),
    };
    let mut outcome = Outcome::new(status, duration, "landlock-only", enforcement);
    outcome.warnings = crate::git_redirect::check(&git_watch);
    outcome.warnings.extend(crate::git_nested::check(&nested_watch));
    let view_hides: Vec<PathBuf> = hidden.sockets.iter().chain(&hidden.tmp).cloned().collect();
    outcome.warnings.extend(hidden_readable_roots(policy, &view_hides));
    crate::git_nested::save_cache(&nested_watch);
    Ok(Attempt::Done(outcome))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A fresh directory under the host's temp dir for landlock-only's private `TMPDIR`. Created
/// exclusively (never reusing what is there: a directory left by a killed run, or planted by
/// someone else, is skipped), with a name that does not repeat when pids are reused.
///
/// The base is canonicalized (`$TMPDIR` may lie below a symlink, such as `/home` on systems
/// where it links to `/var/home`): the path becomes a writable root of the Landlock ruleset,
/// which the child opens without following symlinks.
fn private_tmp_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let base = std::fs::canonicalize(&base).map_err(|e| syscall("realpath (the temp dir for TMPDIR)", e))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut last = None;
    for attempt in 0..16u64 {
        let tag = nanos.rotate_left(17) ^ (unique() << 8) ^ attempt;
        let tmp = base.join(format!("stockade-{}-{tag:016x}", std::process::id()));
        // 0700: it is in the shared temp directory, and the command's files are its own.
        match std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(&tmp) {
            Ok(()) => return Ok(tmp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(syscall("mkdir (private TMPDIR)", e)),
        }
    }
    Err(syscall("mkdir (private TMPDIR)", last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists))))
}

struct RemoveOnDrop(PathBuf);

/// Removes a run's groups when dropped, unless they were taken: a cgroup v2 group made before
/// the go message, should the run end before pid 1 has it.
struct RemoveGroupsOnDrop(Option<crate::cgroup::RunGroups>);

impl Drop for RemoveGroupsOnDrop {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.remove();
        }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // std's remove_dir_all does not follow symlinks (it opens with O_NOFOLLOW and unlinks links).
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The supervisor's half of the network bridge: receives the listener pid 1 created inside the
/// sandbox's network namespace and hands it to the proxy (or, for a proxy that cannot adopt
/// listeners, relays each connection on it to the proxy's unix socket).
struct Forwarder {
    listener: std::sync::Arc<std::sync::Mutex<Option<OwnedFd>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Forwarder {
    fn start(sock: OwnedFd, bridge: crate::NetworkBridge) -> Self {
        let listener = std::sync::Arc::new(std::sync::Mutex::new(None));
        let shared = listener.clone();
        let thread = std::thread::spawn(move || {
            let Ok(Some(fd)) = sys::recv_fd(&sock) else { return };
            let Ok(copy) = fd.try_clone() else { return };
            if let Ok(mut slot) = shared.lock() {
                *slot = Some(copy);
            }
            let listener = std::net::TcpListener::from(fd);
            match &bridge.adopt {
                // The proxy serves it from now on; `stop` shuts it down at the end of the run.
                Some(sink) => {
                    let _ = sink.adopt(listener);
                }
                // Returns once `stop` shuts the listener down.
                None => {
                    let _ = stockade_net::bridge::serve_forwarder(listener, &bridge.socket);
                }
            }
        });
        Forwarder { listener, thread }
    }

    /// Stops accepting (connections in flight end with the sandbox's processes).
    fn stop(self) {
        if let Ok(slot) = self.listener.lock() {
            if let Some(fd) = slot.as_ref() {
                let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
            }
        }
        // If pid 1 never sent the listener (setup failed), the socketpair closed and the thread
        // already returned.
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::policy;
    use stockade_policy::{Source, Sourced};

    fn has(gaps: &[String], words: &[&str]) -> bool {
        gaps.iter().any(|g| words.iter().all(|w| g.contains(w)))
    }

    /// The open-file limit only ever lowers what the command would inherit, soft and hard
    /// apart, and says so when the inherited hard limit is already the lower one.
    #[test]
    fn open_file_limit_lowers_and_never_raises() {
        let mut p = policy("/ws");
        p.process.max_open_files = Some(65_536);
        let nofile = |v: &[(u32, u64, u64)]| v.iter().find(|r| r.0 == RLIMIT_NOFILE).map(|r| (r.1, r.2));
        let (v, words) = rlimits(&p, 0, (1024, 1_048_576), u64::MAX);
        assert_eq!(nofile(&v), Some((1024, 65_536)), "soft kept, hard lowered");
        assert!(words.contains("RLIMIT_NOFILE=65536 per process"), "{words}");
        let (v, _) = rlimits(&p, 0, (u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(nofile(&v), Some((65_536, 65_536)), "unlimited lowered to the policy's");
        let (v, words) = rlimits(&p, 0, (512, 4096), u64::MAX);
        assert_eq!(nofile(&v), Some((512, 4096)), "a lower inherited limit stays");
        assert!(words.contains("RLIMIT_NOFILE=4096") && words.contains("inherited"), "{words}");
        p.process.max_open_files = None;
        let (v, words) = rlimits(&p, 0, (1024, 1_048_576), u64::MAX);
        assert_eq!(nofile(&v), None);
        assert!(!words.contains("NOFILE"), "{words}");
        assert!(v.contains(&(RLIMIT_CORE, 1, 1)), "no core dumps whatever the policy");
        // A caller already at 0 stays there (raising it would fail and end the run).
        let (v, words) = rlimits(&p, 0, (1024, 1_048_576), 0);
        assert!(v.contains(&(RLIMIT_CORE, 0, 0)) && words.contains("RLIMIT_CORE=0"), "{words}");
    }

    /// Which host crash handlers the core limit cannot keep a sandbox's cores from.
    #[test]
    fn core_helper_gaps() {
        assert_eq!(core_helper_gap(b"core\n", 1), None);
        assert_eq!(core_helper_gap(b"core\n", 0), None);
        assert_eq!(core_helper_gap(b"|/usr/lib/systemd/systemd-coredump %P\n", 1), None);
        let pipe = core_helper_gap(b"|/usr/share/apport/apport %p\n", 0).unwrap_or_default();
        assert!(pipe.contains("pipe helper") && pipe.contains("apport %p`"), "{pipe}");
        for socket in [&b"@/run/systemd/coredump\n"[..], b"@@/run/systemd/coredump"] {
            for limit in [0, 1] {
                let g = core_helper_gap(socket, limit).unwrap_or_default();
                assert!(g.contains("socket helper"), "{g}");
            }
        }
    }

    /// A readable root the sandbox hides is named in a warning; one outside, or `readable = all`,
    /// gives none.
    #[test]
    fn readable_roots_in_hidden_dirs_are_warned_about() {
        let mut p = policy("/ws");
        let hidden = [PathBuf::from("/run"), "/tmp".into()];
        assert!(hidden_readable_roots(&p, &hidden).is_empty(), "readable = all");
        let root = |v: &str| Sourced::new(PathBuf::from(v), Source::Default);
        p.filesystem.readable = stockade_policy::Readable::Roots(vec![
            root("/ws"),
            root("/run/media/u/disk"),
            root("/tmpx"),
            root("/tmp/ws/src"),
        ]);
        p.filesystem.writable_roots.push(root("/tmp/ws"));
        let w = hidden_readable_roots(&p, &hidden);
        assert_eq!(w.len(), 1, "one inside a writable root is readable through it: {w:?}");
        assert_eq!((w[0].code.as_str(), w[0].path.as_path()), ("readable_root_hidden", Path::new("/run/media/u/disk")));
        assert!(w[0].message.contains("`/run`"), "{}", w[0].message);
    }

    /// systemd-resolved's directory is granted whole (its file is replaced by a rename), a
    /// file directly in a hidden directory only by itself.
    #[test]
    fn the_resolver_dir_is_granted_only_below_a_hidden_dir() {
        let sockets = [PathBuf::from("/run")];
        let f = PathBuf::from("/run/systemd/resolve/stub-resolv.conf");
        assert_eq!(resolver_grant(f.clone(), &sockets, &[], false), PathBuf::from("/run/systemd/resolve"));
        assert_eq!(resolver_grant("/run/resolv.conf".into(), &sockets, &[], false), PathBuf::from("/run/resolv.conf"));
        // A directory with subdirectories (NetworkManager's profiles) or a deny-read path in it:
        // the file alone.
        assert_eq!(resolver_grant(f.clone(), &sockets, &[], true), f);
        assert_eq!(resolver_grant(f.clone(), &sockets, &["/run/systemd/resolve/x".into()], false), f);
    }

    /// A device mount the command's rules grant whole anyway is reported, not carved; `/` is
    /// never carved.
    #[test]
    fn device_mounts_below_granted_trees_are_gaps() {
        let mut p = policy("/ws");
        let mounts = vec![PathBuf::from("/srv/chroot/dev"), "/ws/rootfs/dev".into(), "/".into(), "/opt/box/dev".into()];
        let (carved, exposed) = device_mounts(&p, mounts.clone());
        assert_eq!(carved, vec![PathBuf::from("/srv/chroot/dev"), "/opt/box/dev".into()]);
        assert_eq!(exposed, vec![PathBuf::from("/ws/rootfs/dev"), "/".into()]);
        p.filesystem.readable = stockade_policy::Readable::Roots(vec![Sourced::new("/ws".into(), Source::Default)]);
        let (carved, _) = device_mounts(&p, mounts);
        assert_eq!(carved, vec![PathBuf::from("/srv/chroot/dev")], "`/opt` is granted whole under roots");
    }

    /// What `landlock-only` cannot stop depends on the kernel's Landlock ABI and on where the
    /// policy's deny paths lie; each line appears exactly when it applies.
    #[test]
    fn landlock_only_gaps_follow_the_abi_and_the_deny_paths() {
        let mut p = policy("/ws");
        let new = landlock_only_gaps(&p, 7);
        let old = landlock_only_gaps(&p, 2);
        for words in [&["can be sent signals"][..], &["abstract unix sockets"], &["truncated"]] {
            assert!(!has(&new, words), "ABI 7 lists {words:?}: {new:#?}");
            assert!(has(&old, words), "ABI 2 does not list {words:?}: {old:#?}");
        }
        assert!(!has(&landlock_only_gaps(&p, 5), &["truncated"]));
        assert!(!has(&new, &["deny-read"]) && !has(&new, &["deny-write"]));

        p.filesystem.deny_read.push(Sourced::new("/ws/.env".into(), Source::Default));
        p.filesystem.deny_read.push(Sourced::new("/home/u/.ssh".into(), Source::Default));
        p.filesystem.deny_write.push(Sourced::new("/ws/tools".into(), Source::Default));
        p.filesystem.deny_write.push(Sourced::new("/home/u/.bashrc".into(), Source::Default));
        let g = landlock_only_gaps(&p, 7);
        assert!(has(&g, &["deny-read", "`/ws/.env`"]) && !has(&g, &["/home/u/.ssh"]), "{g:#?}");
        assert!(has(&g, &["deny-write", "`/ws/tools`"]) && !has(&g, &["/home/u/.bashrc"]), "{g:#?}");

        p.filesystem.readable = stockade_policy::Readable::Roots(vec![Sourced::new("/home/u".into(), Source::Default)]);
        assert!(has(&landlock_only_gaps(&p, 7), &["deny-read", "`/home/u/.ssh`"]));
    }
}
