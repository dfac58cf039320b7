//! The early launch of the sandbox's pid 1 (see `init_launch` and `sys::launch`): whatever a
//! run does with it (uses it, discards a prelaunched one that does not fit, abandons it when
//! preparing fails), nothing of it outlives the run (a prelaunched pid 1 that ran the command
//! stays, asleep and alone, until released or until the process exits), and the command keeps
//! the caller's CPU affinity although the launching thread runs elsewhere.
//!
//! One test function on purpose: it counts this process's children, which other tests running
//! in parallel threads would disturb.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stockade_linux::{init_launch, LinuxBackend};
use stockade_policy::{Backend, CommandSpec, HostEnv, Locations, NetworkMode, Overrides, Policy, Stdio};

use common::skip;

/// Every child of every thread of this process.
fn children() -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let list = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(list.split_whitespace().map(str::to_owned));
    }
    out
}

/// Waits (up to 5 s) until this process has no children left: pid 1 exited and its launching
/// thread reaped it.
fn assert_no_children_soon(what: &str) {
    let start = Instant::now();
    loop {
        let c = children();
        if c.is_empty() {
            return;
        }
        if start.elapsed() >= Duration::from_secs(5) {
            let info: Vec<String> = c
                .iter()
                .map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                    let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
                    let ns = std::fs::read_link(format!("/proc/{p}/ns/pid"))
                        .map(|l| l.display().to_string())
                        .unwrap_or_default();
                    format!("{} wchan={wchan} {ns}", stat.split(' ').take(4).collect::<Vec<_>>().join(" "))
                })
                .collect();
            panic!("{what}: processes left behind: {info:#?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn policy(ws: &Path, home: &Path, network: Option<NetworkMode>) -> Policy {
    let o = Overrides { workspace: Some(ws.to_owned()), network, ..Overrides::default() };
    let env = HostEnv { home: Some(home.to_owned()), vars: Default::default(), cwd: ws.to_owned() };
    stockade_policy::resolve(&o, None, &[], &env, &Locations::linux(&env)).unwrap()
}

fn spec(script: &str, out: &Path) -> CommandSpec {
    CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), format!("{script} > {}/out 2>&1", out.display()).into()],
        cwd: None,
        host_env: vec![(OsString::from("PATH"), OsString::from("/usr/local/bin:/usr/bin:/bin"))],
        stdio: Stdio::Inherit,
    }
}

fn affinity_of(status: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("?").trim().to_owned()
}

#[test]
fn early_launch_leaves_nothing_behind_and_keeps_affinity() {
    if let Err(why) = stockade_linux::host_facts::probe_userns() {
        skip("userns", &why);
        return;
    }
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("stockade-launch-test-{}", std::process::id()));
    let base = if ["/tmp", "/var/tmp", "/dev/shm", "/run"].iter().any(|p| base.starts_with(p)) {
        PathBuf::from(std::env::var_os("HOME").unwrap())
            .join(format!(".cache/stockade-launch-test-{}", std::process::id()))
    } else {
        base
    };
    let (ws, home, out) = (base.join("ws"), base.join("home"), base.join("out"));
    for d in [&ws, &home, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (ws, home, out) =
        (std::fs::canonicalize(ws).unwrap(), std::fs::canonicalize(home).unwrap(), std::fs::canonicalize(out).unwrap());
    let writable = Policy { ..policy(&ws, &home, None) };
    let mut with_out = writable.clone();
    with_out
        .filesystem
        .writable_roots
        .push(stockade_policy::Sourced::new(out.clone(), stockade_policy::Source::Default));
    let backend = LinuxBackend::default();
    assert!(children().is_empty(), "the test starts without children");

    // A plain run: the command sees the caller's affinity, not the launching thread's.
    let mine = affinity_of(&std::fs::read_to_string("/proc/self/status").unwrap());
    let o = backend.run(&with_out, &spec("grep Cpus_allowed_list /proc/self/status", &out)).unwrap();
    assert_eq!(o.status.cli_code(), 0, "{o:?}");
    let theirs = affinity_of(&std::fs::read_to_string(out.join("out")).unwrap());
    assert_eq!(theirs, mine, "the command's CPU affinity");
    assert_no_children_soon("a finished run");

    // One that does not fit (network on) is discarded and a fresh one runs the command.
    init_launch::prelaunch();
    let mut net_on = with_out.clone();
    net_on.network.mode = NetworkMode::On;
    let o = backend.run(&net_on, &spec("echo fresh", &out)).unwrap();
    assert_eq!(o.status.cli_code(), 0, "{o:?}");
    assert_eq!(std::fs::read_to_string(out.join("out")).unwrap(), "fresh\n");
    assert_no_children_soon("a discarded prelaunch");

    // Preparing fails after pid 1 was launched (a protected path is a symlink): the run is
    // refused and its pid 1 told to exit without running anything.
    // (The earlier runs left a placeholder there.)
    let _ = std::fs::remove_dir_all(ws.join(".codex"));
    std::os::unix::fs::symlink(&out, ws.join(".codex")).unwrap();
    std::fs::remove_file(out.join("out")).unwrap();
    let e = backend.run(&with_out, &spec("echo ran", &out)).unwrap_err();
    assert_eq!(stockade_policy::Diagnose::code(&e), "protected_path_symlink");
    assert!(!out.join("out").exists(), "nothing ran");
    assert_no_children_soon("an abandoned launch");
    std::fs::remove_file(ws.join(".codex")).unwrap();

    // A prelaunched pid 1 that no run takes is gone once discarded.
    init_launch::prelaunch();
    init_launch::discard();
    assert_no_children_soon("a discarded, unused prelaunch");

    // The command is started before pid 1 builds the mount view (see `sys::init_run`). When
    // a mount step fails, the command must never run and nothing may be left. (A command that
    // did not wait for the view would mostly lose the race to this failure, which comes early
    // in the plan; it is every other run of the suite, with its view checked, that catches
    // one.) As root, a
    // writable root owned by another user, mode 0700, with a `.git` in it does it: the
    // supervisor (root on the host) can open that protected path, pid 1 (root only in its own
    // namespace, where that owner is unmapped) cannot search the root to bind it read-only.
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let alien = base.join("alien");
        std::fs::create_dir_all(alien.join(".git")).unwrap();
        std::os::unix::fs::chown(&alien, Some(4242), Some(4242)).unwrap();
        std::fs::set_permissions(&alien, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let o =
            Overrides { workspace: Some(ws.clone()), writable_roots: vec![out.clone(), alien], ..Overrides::default() };
        let env = HostEnv { home: Some(home.clone()), vars: Default::default(), cwd: ws.clone() };
        let p = stockade_policy::resolve(&o, None, &[], &env, &Locations::linux(&env)).unwrap();
        let _ = std::fs::remove_file(out.join("out"));
        let e = backend.run(&p, &spec("echo ran", &out)).unwrap_err();
        assert_eq!(stockade_policy::Diagnose::code(&e), "sandbox_setup_failed", "{e}");
        assert!(e.to_string().contains("alien/.git"), "pid 1's bind of the protected path failed: {e}");
        assert!(!out.join("out").exists(), "the command ran although the mount view failed");
        assert_no_children_soon("a run whose mount view failed");
        // Control: the same run without that root runs the command.
        let o = backend.run(&with_out, &spec("echo ran", &out)).unwrap();
        assert_eq!(o.status.cli_code(), 0, "{o:?}");
        assert_eq!(std::fs::read_to_string(out.join("out")).unwrap(), "ran\n");
        assert_no_children_soon("the control run");
    } else {
        skip("root", "a failed mount step is provoked with another user's directory, which only root can create");
    }

    // The command, moved to another CPU while pid 1 mounts, takes back exactly the caller's
    // set, not every CPU: here a caller confined to one. (The plain run above shows that it
    // takes back the whole set.)
    // SAFETY: a zeroed set is valid; the calls read and write this thread's affinity.
    let (before, one) = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        let cpu = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)).unwrap();
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one), 0);
        (set, cpu)
    };
    let o = backend.run(&with_out, &spec("grep Cpus_allowed_list /proc/self/status", &out));
    // SAFETY: restores this thread's affinity from a set read above.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &before) };
    assert_eq!(o.unwrap().status.cli_code(), 0);
    assert_eq!(affinity_of(&std::fs::read_to_string(out.join("out")).unwrap()), one.to_string());
    assert_no_children_soon("a run confined to one CPU");

    // Concurrent runs in one process, some abandoned: each pid 1 gets a copy of the others'
    // fds when it is cloned, so an abandoned run must not rely on its socket being closed.
    let bad_ws = base.join("bad-ws");
    std::fs::create_dir_all(&bad_ws).unwrap();
    std::os::unix::fs::symlink(&out, bad_ws.join(".codex")).unwrap();
    let bad = policy(&std::fs::canonicalize(&bad_ws).unwrap(), &home, None);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (good, bad, out, backend) = (&with_out, &bad, &out, &backend);
            s.spawn(move || {
                for i in 0..8 {
                    if (t + i) % 3 == 0 {
                        assert!(backend.run(bad, &spec("true", out)).is_err());
                    } else {
                        let o = backend.run(good, &spec(&format!("echo {t}-{i}; true"), out)).unwrap();
                        assert_eq!(o.status.cli_code(), 0, "{o:?}");
                    }
                }
            });
        }
    });
    assert_no_children_soon("concurrent runs, some abandoned");

    // A prelaunched pid 1 that fits (network off) runs the command, then waits, asleep and
    // alone, until released or until this process exits.
    init_launch::prelaunch();
    let o = backend.run(&with_out, &spec("(echo used; sleep 30 & echo bg)", &out)).unwrap();
    assert_eq!(o.status.cli_code(), 0, "{o:?}");
    assert_eq!(std::fs::read_to_string(out.join("out")).unwrap(), "used\nbg\n");
    // Read until it settles: the launching thread ends about now, and pid 1, its child, moves
    // to another thread of this process, whose `children` file may have been read already.
    let start = Instant::now();
    let mut left = children();
    while left.len() != 1 && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
        left = children();
    }
    assert_eq!(left.len(), 1, "only the prelaunched pid 1 stays: {left:?}");
    let pid1 = &left[0];
    // The run returns once pid 1 reported; it may take a moment to reach its pause.
    let start = Instant::now();
    let sleeping = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap();
        stat.split(' ').nth(2) == Some("S")
    };
    while !sleeping() {
        assert!(start.elapsed() < Duration::from_secs(5), "pid 1 does not sleep");
        std::thread::sleep(Duration::from_millis(5));
    }
    let its_children = std::fs::read_to_string(format!("/proc/{pid1}/task/{pid1}/children")).unwrap();
    assert_eq!(its_children.trim(), "", "the command and what it started in the background are gone");
    // The thread that launched it has ended (a sleeping thread would slow this process's
    // exit), while pid 1, no longer tied to it by PR_SET_PDEATHSIG, lives on.
    let launcher_threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap_or_default();
                comm.trim() == "stockade-init"
            })
            .count()
    };
    let start = Instant::now();
    while launcher_threads() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the launching thread of a one-shot run did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(sleeping(), "pid 1 outlives the thread that launched it, asleep");
    // The next prelaunch (or a discard) releases it: a process that prelaunches for every run
    // keeps at most one.
    init_launch::prelaunch();
    init_launch::discard();
    assert_no_children_soon("a released pid 1 and a discarded prelaunch");

    let _ = std::fs::remove_dir_all(&base);
}
