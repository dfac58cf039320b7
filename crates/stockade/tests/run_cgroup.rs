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
    eprintln!("SKIP: {why}");
}

#[test]
fn the_runs_cgroups_are_gone_once_the_cli_has_exited() {
    let cg = Path::new("/sys/fs/cgroup");
    // The owner of /proc/self is the effective uid.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        return skip("root", "per-run cgroups are for root callers");
    }
    if !cg.join("pids/cgroup.procs").exists() {
        return skip("cgroup-v1", "the host mounts no cgroup v1 pids controller");
    }
    if let Err(why) = stockade_linux::host_facts::probe_userns() {
        return skip("userns", &format!("user namespaces unavailable: {why}"));
    }
    let with_memory = cg.join("memory/cgroup.procs").exists();
    let dir = tempfile::tempdir().unwrap();
    let (ws, home) = (dir.path().join("ws"), dir.path().join("home"));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(home.join(".config")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, if with_memory { "[process]\nmemory = \"512MiB\"\n" } else { "" }).unwrap();
    // The command names its groups (the last component: the host may show a prefix) and checks,
    // from inside, that each group's directory exists.
    let script = "for c in pids memory; do \
                  g=$(sed -n \"s/^[0-9]*:$c:.*\\///p\" /proc/self/cgroup); \
                  case $g in stockade-*) test -d /sys/fs/cgroup/$c/$g && echo $c/$g;; esac; done";
    let o = Command::new(common::stockade_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--", "sh", "-c", script])
        .current_dir(&ws)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .output()
        .unwrap();
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
