//! The process start-up that the Linux binary does itself (`no_main`, see src/process_start.rs):
//! closed standard fds are filled with `/dev/null` before anything else is opened (stockade's
//! own and, through it, the sandboxed command's), `SIGPIPE` is ignored (output to a reader
//! that went away ends quietly), a panic exits with 101, and the arguments reach the CLI.
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

/// Closes `fds` in the child just before it execs stockade.
fn close_before_exec(c: &mut Command, fds: &'static [i32]) {
    // SAFETY: close(2) is async-signal-safe and touches no memory.
    unsafe {
        c.pre_exec(move || {
            for &fd in fds {
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// A `danger-full-access` run whose command (stockade's child) writes where each of stockade's
/// own fds 0 to 2 leads to the file returned: one `readlink` per fd, so that a closed fd gives
/// an empty line rather than hiding the others.
fn stockade_fds_probe(root: &std::path::Path) -> (Command, std::path::PathBuf) {
    let out = root.join("fds");
    let script = format!("for f in 0 1 2; do readlink /proc/$PPID/fd/$f || echo; done > {}; true", out.display());
    (stockade(root, &["--", "sh", "-c", &script]), out)
}

fn lines(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn closed_standard_fds_are_filled_with_dev_null() {
    let (_dir, root) = scratch();
    // Control: open fds are passed through as they are.
    let (mut c, out) = stockade_fds_probe(&root);
    let o = c.stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let fds = lines(&out);
    assert_eq!(fds[0], "/dev/null");
    assert!(fds[1].starts_with("pipe:") && fds[2].starts_with("pipe:"), "the control's stdout and stderr: {fds:?}");
    // Closed stdin and stdout; then closed stderr alone. Stockade's start-up puts /dev/null there.
    for (closed, want) in
        [(&[0, 1][..], ["/dev/null", "/dev/null", "pipe:"]), (&[2][..], ["/dev/null", "pipe:", "/dev/null"])]
    {
        let (mut c, out) = stockade_fds_probe(&root);
        close_before_exec(&mut c, closed);
        let o = c.stdin(Stdio::null()).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "fds {closed:?} closed: {}", String::from_utf8_lossy(&o.stderr));
        let fds = lines(&out);
        for (got, want) in fds.iter().zip(want) {
            assert!(got.starts_with(want), "fds {closed:?} closed: {fds:?}");
        }
    }
}

#[test]
fn an_open_o_path_stdin_is_left_as_it_is() {
    // `poll` reports an open `O_PATH` fd as invalid, like a closed one; it must stay as it is.
    let (_dir, root) = scratch();
    let (mut c, out) = stockade_fds_probe(&root);
    // SAFETY: open/dup2/close are async-signal-safe; the path is a static C string.
    unsafe {
        c.pre_exec(|| {
            let fd = libc::open(c"/".as_ptr(), libc::O_PATH);
            if fd < 0 || libc::dup2(fd, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert_eq!(lines(&out)[0], "/");
}

#[test]
fn a_sandboxed_command_gets_dev_null_for_closed_stdio() {
    if let Err(why) = stockade_linux::host_facts::probe_userns() {
        let required = std::env::var("STOCKADE_TEST_REQUIRE").unwrap_or_default();
        assert!(!required.split(',').any(|f| f.trim() == "userns"), "userns required but unavailable: {why}");
        eprintln!("SKIP: userns unavailable: {why}");
        return;
    }
    let (_dir, root) = scratch();
    // The command's own fds 0 and 1. Read in command substitutions: a redirection such as `>&2`
    // on a command is applied to the shell itself while that command runs (dash).
    let probe = || {
        let script = r#"a=$(readlink /proc/$$/fd/0); b=$(readlink /proc/$$/fd/1); echo "$a $b" >&2"#;
        stockade_cmd(&root, &["run", "--", "sh", "-c", script])
    };
    // Control: stdin from /dev/null, stdout a pipe.
    let o = probe().stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.starts_with("/dev/null pipe:"), "{err}");
    // Both closed. Without the start-up's fill the command starts with them closed, and the
    // shell's first pipe takes their numbers.
    let mut c = probe();
    close_before_exec(&mut c, &[0, 1]);
    let o = c.stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.trim_end(), "/dev/null /dev/null");
}

/// A socket whose other end is gone: writing to it raises `SIGPIPE`, or fails with `EPIPE`
/// when that signal is ignored.
fn gone_reader() -> std::os::fd::OwnedFd {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(ours);
    theirs.into()
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    let (_dir, root) = scratch();
    // `explain` and `doctor` print to stdout (a run's stdout is the command's), as with
    // `stockade explain | head -1`.
    for view in ["explain", "doctor"] {
        let o = stockade_cmd(&root, &[view]).stdout(gone_reader()).output().unwrap();
        assert_eq!(o.status.signal(), None, "{view}: killed by a signal ({:?}): SIGPIPE is not ignored", o.status);
        assert_eq!(o.status.code(), Some(0), "{view}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stderr.is_empty(), "{view}: {}", String::from_utf8_lossy(&o.stderr));
        // Control: with a reader, the same command prints.
        let o = stockade_cmd(&root, &[view]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{view}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!o.stdout.is_empty(), "{view}");
    }
}

#[test]
fn a_panic_ends_with_status_101() {
    let (_dir, root) = scratch();
    // A run's `--json` outcome goes to stderr with `eprintln!`, which panics when it cannot
    // write: here stderr's reader is gone. The panic must end the process with 101, as from a
    // Rust `main`, not abort it from the C entry point.
    let status =
        stockade(&root, &["--json", "--", "true"]).stdin(Stdio::null()).stderr(gone_reader()).status().unwrap();
    assert_eq!(status.signal(), None, "{status:?}");
    assert_eq!(status.code(), Some(101));
    // Control: with a reader, the same run succeeds.
    let o = stockade(&root, &["--json", "--", "true"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"status\""));
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
