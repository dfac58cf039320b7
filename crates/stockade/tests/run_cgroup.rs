//! A root caller's run gets cgroups of its own (cgroup v1 `pids`, and `memory` with a memory
//! limit: the kernel applies no `RLIMIT_NPROC` to uid 0), and the CLI leaves none behind: once
//! it has exited, the run's pid 1 removes them, with no later run needed to sweep them.
//!
//! Alone in its own test binary on purpose: any other run as root with limits sweeps the groups
//! of supervisors that are gone, so a run beside this one could remove the groups and hide a
//! pid 1 that did not. `cargo test` runs test binaries one after another (a runner that runs
//! them in parallel, such as `cargo nextest`, weakens this test).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Prints why the test skips, or fails it when `STOCKADE_TEST_REQUIRE` lists `feature` (or
/// `all`).
fn skip(feature: &str, why: &str) {
    let required = std::env::var("STOCKADE_TEST_REQUIRE").unwrap_or_default();
    let listed = required.split(',').map(str::trim).any(|r| r == feature || r == "all");
    assert!(!listed, "{feature} is required by STOCKADE_TEST_REQUIRE: {why}");
    // Straight to stderr: libtest captures `eprintln!`, and CI counts these lines.
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("SKIP: {why}\n"));
}

/// `stockade run` with `options` of `sh -c script` in `ws`, with `home` as the only home and a
/// bare environment.
fn run(ws: &Path, home: &Path, options: &[&OsStr], script: &str) -> std::process::Output {
    Command::new(common::stockade_bin())
        .arg("run")
        .args(options)
        .args(["--", "sh", "-c", script])
        .current_dir(ws)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .output()
        .unwrap()
}

/// A scratch directory with a workspace and a home in it, where runs of this process get cgroup
/// v1 groups (root, a `pids` hierarchy, user namespaces); `None` after saying why not.
fn v1_groups_setup() -> Option<(tempfile::TempDir, std::path::PathBuf, std::path::PathBuf)> {
    // The owner of /proc/self is the effective uid.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        skip("root", "per-run cgroups are for root callers");
        return None;
    }
    if !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        skip("cgroup-v1", "the host mounts no cgroup v1 pids controller");
        return None;
    }
    if let Err(why) = stockade_linux::host_facts::probe_userns() {
        skip("userns", &format!("user namespaces unavailable: {why}"));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ws, home) = (dir.path().join("ws"), dir.path().join("home"));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(home.join(".config")).unwrap();
    Some((dir, ws, home))
}

#[test]
fn the_runs_cgroups_are_gone_once_the_cli_has_exited() {
    let cg = Path::new("/sys/fs/cgroup");
    let Some((dir, ws, home)) = v1_groups_setup() else { return };
    let with_memory = cg.join("memory/cgroup.procs").exists();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, if with_memory { "[process]\nmemory = \"512MiB\"\n" } else { "" }).unwrap();
    // The command names its groups (the last component: the host may show a prefix) and checks,
    // from inside, that each group's directory exists.
    let script = "for c in pids memory; do \
                  g=$(sed -n \"s/^[0-9]*:$c:.*\\///p\" /proc/self/cgroup); \
                  case $g in stockade-*) test -d /sys/fs/cgroup/$c/$g && echo $c/$g;; esac; done";
    let o = run(&ws, &home, &[OsStr::new("--config"), config.as_os_str()], script);
    assert!(o.status.success(), "{o:?}");
    let groups: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect();
    // Control: during the run, the command was in groups of its own, which existed.
    let expected = if with_memory { 2 } else { 1 };
    assert_eq!(groups.len(), expected, "the command's run groups: {groups:?}; {o:?}");
    let start = Instant::now();
    for g in &groups {
        let path = cg.join(g);
        while path.exists() && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!path.exists(), "{} still there {:?} after the CLI exited", path.display(), start.elapsed());
    }
}

/// The same for runs whose CLI exits the moment it has the command's status, on a busy machine:
/// pid 1 must not be killed before it removes the groups (its parent is the CLI's launching
/// thread, which ends with the CLI). A thread spinning on every CPU makes that race likely:
/// before pid 1 disarmed `PR_SET_PDEATHSIG` ahead of its report, 75 of 200 such runs left their
/// `pids` group behind here (and one run in CI without the spinning threads).
#[test]
fn no_run_leaves_its_groups_behind_on_a_busy_machine() {
    let Some((_dir, ws, home)) = v1_groups_setup() else { return };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let spinners: Vec<_> = (0..cpus)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut groups = Vec::new();
    for _ in 0..40 {
        let o = run(&ws, &home, &[], "sed -n 's/^[0-9]*:pids:.*\\///p' /proc/self/cgroup");
        let group = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        if !o.status.success() || !group.starts_with("stockade-") {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("the command did not run in a pids group of its own: {group:?}; {o:?}");
        }
        groups.push(Path::new("/sys/fs/cgroup/pids").join(group));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    let start = Instant::now();
    while groups.iter().any(|g| g.exists()) && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let left: Vec<_> = groups.iter().filter(|g| g.exists()).collect();
    assert!(left.is_empty(), "{} of {} runs left their group behind: {left:?}", left.len(), groups.len());
}

/// The cgroup v2 group a run's group would go in, if this host gives runs one (see
/// `cgroup::V2Parent`: this process in the root group of a cgroup v2 hierarchy whose root
/// enables `pids` for the groups below it); `Err` says why not.
fn v2_parent_with_pids() -> Result<std::path::PathBuf, String> {
    if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        return Err("pids is a cgroup v1 controller on this host, so cgroup v2 cannot have it".into());
    }
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|m| Path::new(m).join("cgroup.controllers").exists())
        .ok_or("no cgroup v2 hierarchy is mounted")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).ok_or("no cgroup v2 line in /proc/self/cgroup")?;
    if own != "/" {
        return Err(format!("this process is in cgroup v2 group {own}, not the root: runs get no group"));
    }
    let control = std::fs::read_to_string(Path::new(mount).join("cgroup.subtree_control")).unwrap_or_default();
    if !control.split_whitespace().any(|c| c == "pids") {
        return Err(format!("{mount} does not enable pids for the groups below it"));
    }
    if rustix::fs::access(mount, rustix::fs::Access::WRITE_OK).is_err() {
        return Err(format!("{mount} is not writable by this user"));
    }
    Ok(mount.into())
}

/// Where this host gives runs a cgroup v2 group (a caller in the root group of a cgroup v2
/// hierarchy that enables `pids` below it; not this project's hybrid test host, where `pids` is
/// a cgroup v1 controller), the command starts in a group of its own whose `pids.max` holds the
/// whole tree: 4 children start (the control), a burst of 12 more hits the limit (the group's
/// `pids.events` counts the refused forks), and the group is gone once the CLI has exited.
#[test]
fn a_cgroup_v2_group_holds_the_run_where_the_host_gives_one() {
    let parent = match v2_parent_with_pids() {
        Ok(p) if cfg!(target_arch = "x86_64") => p,
        Ok(_) => return skip("cgroup-v2-pids", "namespaces starts its command in a cgroup v2 group on x86-64 only"),
        Err(why) => return skip("cgroup-v2-pids", &why),
    };
    if let Err(why) = stockade_linux::host_facts::probe_userns() {
        return skip("userns", &format!("user namespaces unavailable: {why}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let (ws, home) = (dir.path().join("ws"), dir.path().join("home"));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(home.join(".config")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[process]\nmax_processes = 8\n").unwrap();
    let report = dir.path().join("report.json");
    // Prints the group, its limit, whether 4 children run, and the forks refused in a burst of
    // 12 more (in a subshell: a shell that cannot fork exits).
    let script = format!(
        "g=$(sed -n 's/^0:://p' /proc/self/cgroup); d={}$g; echo \"$g\"; cat $d/pids.max; \
         sleep 5 & a=$!; sleep 5 & b=$!; sleep 5 & c=$!; sleep 5 & e=$!; \
         kill -0 $a $b $c $e && echo running=4; \
         (for i in $(seq 12); do sleep 5 & done) 2>/dev/null; \
         sed -n 's/^max //p' $d/pids.events; kill $a $b $c $e 2>/dev/null; true",
        parent.display()
    );
    let options = [OsStr::new("--config"), config.as_os_str(), OsStr::new("--report"), report.as_os_str()];
    let o = run(&ws, &home, &options, &script);
    // Where something around this test refuses `clone3` (as Docker's default seccomp profile
    // does), the run starts the command without the group and says so: not this test's subject.
    let outcome = std::fs::read_to_string(&report).unwrap_or_default();
    if outcome.contains("starting the command in it failed") {
        return skip("cgroup-v2-pids", "the command could not be cloned into its group here (clone3 refused)");
    }
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 4, "{o:?}");
    let group = lines[0].rsplit('/').next().unwrap_or_default();
    assert!(group.starts_with("stockade-"), "the command's cgroup v2 group: {}; {o:?}", lines[0]);
    assert_eq!(lines[1], "8", "pids.max; {o:?}");
    assert_eq!(lines[2], "running=4", "the control: children under the limit; {o:?}");
    let refused: u64 = lines[3].trim().parse().unwrap_or(0);
    assert!(refused > 0, "no fork over the limit was refused (pids.events max {}); {o:?}", lines[3]);
    let path = parent.join(group);
    let start = Instant::now();
    while path.exists() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!path.exists(), "{} still there {:?} after the CLI exited", path.display(), start.elapsed());
}
