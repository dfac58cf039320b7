//! The process start-up that the Linux binary does itself (`no_main`, see src/process_start.rs):
//! closed standard fds are filled with `/dev/null` before anything else is opened, `SIGPIPE` is
//! ignored, a panic exits with 101, and the arguments reach the CLI.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

/// A scratch directory holding a workspace (`ws`) and a home (`home`), so that the caller's
/// configuration stays out.
fn scratch() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join("ws")).unwrap();
    std::fs::create_dir_all(root.join("home/.config")).unwrap();
    (dir, root)
}

/// `stockade` with `args`, in `root`'s workspace and with its home.
fn stockade_cmd(root: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(common::stockade_bin());
    c.args(args).current_dir(root.join("ws")).env_clear();
    c.env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("home/.config"))
        .env("XDG_STATE_HOME", root.join("home/.state"));
    c
}

/// A `danger-full-access` run (no sandbox: only stockade's own start is under test).
fn stockade(root: &std::path::Path, args: &[&str]) -> Command {
    let mut c = stockade_cmd(root, &["run", "-s", "danger-full-access"]);
    c.args(args);
    c
}

/// Closes fds 0 and 1 in the child just before it execs stockade.
fn close_stdin_and_stdout(c: &mut Command) {
    // SAFETY: close(2) is async-signal-safe and touches no memory.
    unsafe {
        c.pre_exec(|| {
            libc::close(0);
            libc::close(1);
            Ok(())
        });
    }
}

#[test]
fn closed_standard_fds_are_filled_with_dev_null() {
    let (_dir, root) = scratch();
    // The command is stockade's child here: it reads where stockade's own fds 0 and 1 lead.
    let probe = ["--", "sh", "-c", "readlink /proc/$PPID/fd/0 /proc/$PPID/fd/1 >&2"];
    // Control: open fds are passed through as they are.
    let o = stockade(&root, &probe).stdin(Stdio::null()).output().unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&o.stderr).lines().map(str::to_owned).collect();
    assert_eq!(o.status.code(), Some(0), "{lines:?}");
    assert_eq!(lines[0], "/dev/null");
    assert!(lines[1].starts_with("pipe:"), "stdout of the control: {lines:?}");
    // Closed: stockade's own start-up puts /dev/null there.
    let mut c = stockade(&root, &probe);
    close_stdin_and_stdout(&mut c);
    let o = c.stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().collect::<Vec<_>>(), ["/dev/null", "/dev/null"]);
}

#[test]
fn a_report_never_takes_the_place_of_a_closed_stdout() {
    // Without the start-up's check, the report file would be opened as fd 1 and the command's
    // output would land in it.
    let (_dir, root) = scratch();
    let report = root.join("report.json");
    let mut c = stockade(&root, &["--report", report.to_str().unwrap(), "--", "sh", "-c", "echo LEAKED"]);
    close_stdin_and_stdout(&mut c);
    let o = c.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains("LEAKED"), "the command's output went into the report: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("status").is_some(), "a report: {text}");
    // Control: with stdout open, the same command's output reaches it.
    let o = stockade(&root, &["--", "sh", "-c", "echo LEAKED"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "LEAKED\n");
}

#[test]
fn a_broken_pipe_does_not_kill_stockade() {
    let (_dir, root) = scratch();
    // `explain` prints the resolved policy to stdout (a run's stdout is the command's).
    let explain = || stockade_cmd(&root, &["explain"]);
    // Its stdout is a pipe whose reader is gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = explain().stdout(writer).stderr(Stdio::null()).status().unwrap();
    assert_eq!(status.signal(), None, "killed by a signal ({status:?}): SIGPIPE is not ignored, or a panic aborted");
    assert!(status.code().is_some());
    // Control: with a reader, the same command succeeds and prints.
    let o = explain().output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!o.stdout.is_empty());
}

#[test]
fn arguments_reach_the_cli_unchanged() {
    let (_dir, root) = scratch();
    // Spaces, an empty argument and bytes that are not UTF-8 survive the trip through argv.
    let odd = std::ffi::OsStr::new("a b");
    let bytes = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff\xfe");
    let o = stockade(&root, &["--", "sh", "-c", "printf '%s|' \"$@\"", "sh"])
        .arg(odd)
        .arg("")
        .arg(bytes)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"a b||\xff\xfe|");
}
