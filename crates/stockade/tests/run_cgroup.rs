//! A root caller's run gets a `pids` cgroup of its own (the kernel applies no `RLIMIT_NPROC`
//! to uid 0), and the CLI leaves none behind: once it has exited, the run's pid 1 removes the
//! group, with no later run needed to sweep it.
//!
//! Alone in its own test binary on purpose: any other namespaces run as root sweeps the groups
//! of supervisors that are gone, so a run beside this one could remove the group and hide a pid
//! 1 that did not. Cargo runs test binaries one after another.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Prints why the test skips, or fails it when `STOCKADE_TEST_REQUIRE` lists `feature`.
fn skip(feature: &str, why: &str) {
    let required = std::env::var("STOCKADE_TEST_REQUIRE").unwrap_or_default();
    assert!(!required.split(',').any(|r| r == feature), "{feature} is required by STOCKADE_TEST_REQUIRE: {why}");
    eprintln!("SKIP: {why}");
}

#[test]
fn the_runs_pids_group_is_gone_once_the_cli_has_exited() {
    let pids = Path::new("/sys/fs/cgroup/pids");
    // The owner of /proc/self is the effective uid.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        return skip("root", "per-run cgroups are for root callers");
    }
    if !pids.join("cgroup.procs").exists() {
        return skip("cgroup-v1-pids", "the host mounts no cgroup v1 pids controller");
    }
    let dir = tempfile::tempdir().unwrap();
    let (ws, home) = (dir.path().join("ws"), dir.path().join("home"));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(home.join(".config")).unwrap();
    // The command names its group and checks, from inside, that the group's directory exists.
    let o = Command::new(common::stockade_bin())
        .args(["run", "--", "sh", "-c"])
        .arg("g=$(sed -n 's/^[0-9]*:pids://p' /proc/self/cgroup); test -d /sys/fs/cgroup/pids$g && echo $g")
        .current_dir(&ws)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .output()
        .unwrap();
    if o.status.code() == Some(125) && String::from_utf8_lossy(&o.stderr).contains("namespace") {
        return skip("userns", &format!("no namespaces run here: {}", String::from_utf8_lossy(&o.stderr)));
    }
    let group = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    // Control: during the run, the command was in a group of its own, which existed.
    assert!(o.status.success() && group.starts_with("/stockade-"), "{o:?}");
    let group_dir = pids.join(group.trim_start_matches('/'));
    let start = Instant::now();
    while group_dir.exists() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!group_dir.exists(), "{} still there {:?} after the CLI exited", group_dir.display(), start.elapsed());
}
