//! The CLI contract, run through the built binary: `explain`, and the exit codes that need no
//! sandbox backend (`danger-full-access`, refusals, bad input).
//! The commands use POSIX `sh`; the Windows CLI contract is covered in stockade-windows.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

/// An isolated home, config dir and workspace, so the developer's real configuration never
/// leaks into a test.
struct Cli {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    ws: PathBuf,
}

impl Cli {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        let ws = root.join("ws");
        fs::create_dir_all(home.join(".config")).unwrap();
        fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        Cli { _dir: dir, root, home, ws }
    }

    fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(common::stockade_bin());
        c.args(args)
            .current_dir(&self.ws)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"));
        c
    }

    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `stockade run -s danger-full-access` followed by `extra`.
fn danger(extra: &[&str]) -> Vec<String> {
    ["run", "-s", "danger-full-access"].iter().chain(extra).map(|s| s.to_string()).collect()
}

#[test]
fn exit_codes_of_the_command() {
    let t = Cli::new();
    assert_eq!(code(&t.run(&danger(&["--", "sh", "-c", "exit 7"]))), 7);
    assert_eq!(code(&t.run(&danger(&["--", "true"]))), 0);
    assert_eq!(code(&t.run(&danger(&["--", "sh", "-c", "kill -TERM $$"]))), 128 + 15);
    assert_eq!(code(&t.run(&danger(&["--", "sh", "-c", "kill -KILL $$"]))), 128 + 9);
    assert_eq!(code(&t.run(&danger(&["--", "definitely-not-a-program-xyz"]))), 127);
    let script = t.write("ws/not-executable.sh", "#!/bin/sh\necho hi\n");
    assert_eq!(code(&t.run(&danger(&["--", script.to_str().unwrap()]))), 126);
    // In the sandbox too, and each says why: no shell ran to say it.
    let o = t.run(&["run", "--", "definitely-not-a-program-xyz"]);
    assert_eq!(code(&o), 127);
    assert!(stderr(&o).contains("`definitely-not-a-program-xyz`: command not found in the sandbox"), "{}", stderr(&o));
    let o = t.run(&["run", "--", script.to_str().unwrap()]);
    assert_eq!(code(&o), 126);
    assert!(stderr(&o).contains("cannot be executed"), "{}", stderr(&o));
    assert!(
        !stderr(&t.run(&["run", "--", "sh", "-c", "exit 127"])).contains("not found"),
        "control: the command's own 127"
    );
}

#[test]
fn timeout_kills_the_whole_tree() {
    let t = Cli::new();
    let marker = t.ws.join("survivor");
    let start = std::time::Instant::now();
    let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let o = t.run(&danger(&["--timeout", "1", "--", "sh", "-c", &script]));
    assert_eq!(code(&o), 124);
    assert!(start.elapsed().as_secs() < 10, "timed out promptly");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(!marker.exists(), "a background child outlived the timeout");
    // Control: without a timeout the same background child does run.
    let o = t.run(&danger(&["--", "sh", "-c", &format!("touch {}", marker.display())]));
    assert_eq!(code(&o), 0);
    assert!(marker.exists());
}

#[test]
fn stockade_failures_exit_125_with_a_hint() {
    let t = Cli::new();
    let o = t.run(&["run", "-C", "/nonexistent/workspace", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("error: workspace `/nonexistent/workspace` is not a directory"), "{}", stderr(&o));
    assert!(stderr(&o).contains("hint: "), "{}", stderr(&o));

    let o = t.run(&["run", "-w", "missing-dir", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("writable root `missing-dir` does not exist"), "{}", stderr(&o));

    let o = t.run(&["run", "--implementation", "chroot", "--", "true"]);
    assert_eq!(code(&o), 125, "bad flags are stockade failures too");
    assert!(stderr(&o).contains("chroot"), "{}", stderr(&o));

    let o = t.run(&["run", "-s", "yolo", "--", "true"]);
    assert_eq!(code(&o), 125);

    let o = t.run(&["run"]);
    assert_eq!(code(&o), 125, "a missing command is an error");

    // Without an absolute HOME the default deny lists would protect nothing: refused, with a
    // hint, and nothing runs.
    let marker = t.ws.join("ran");
    for home in [None, Some(""), Some("rel/home")] {
        let mut c = t.cmd(&["run", "--", "touch", marker.to_str().unwrap()]);
        match home {
            None => c.env_remove("HOME"),
            Some(h) => c.env("HOME", h),
        };
        let o = c.output().unwrap();
        assert_eq!(code(&o), 125, "HOME={home:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("home directory") && stderr(&o).contains("hint: set `HOME`"), "{}", stderr(&o));
        assert!(!marker.exists(), "HOME={home:?}: the command ran");
    }

    // With `--json`, an error in the arguments themselves comes as JSON with a code too.
    let o = t.run(&["run", "--json", "--timeout", "0", "--", "true"]);
    assert_eq!(code(&o), 125);
    let v: serde_json::Value = serde_json::from_str(stderr(&o).trim()).expect("one JSON object on stderr");
    assert_eq!(v["error"]["code"], "invalid_arguments", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--timeout"), "{v}");
    assert!(!stderr(&t.run(&["run", "--timeout", "0", "--", "true"])).trim_start().starts_with('{'), "control: plain");

    // A timeout past a year is refused before anything runs (adding it to the clock overflowed).
    let o = t.run(&["run", "--timeout", "18446744073709551615", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("at most a year"), "{}", stderr(&o));
    assert!(!marker.exists());
}

#[test]
fn config_errors_name_file_line_and_key() {
    let t = Cli::new();
    let bad = t.write("cfg/bad.toml", "mode = \"read-only\"\n[network\n");
    let o = t.run(&["explain", "--config", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains(&format!("`{}`:2:", bad.display())), "{}", stderr(&o));

    let typo = t.write("cfg/typo.toml", "[filesystem]\ndeny_reed = []\n");
    let o = t.run(&["explain", "--config", typo.to_str().unwrap()]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("unknown key `filesystem.deny_reed`; did you mean `filesystem.deny_read`?"),
        "{}",
        stderr(&o)
    );

    // The user config location is read without `--config`.
    t.write("home/.config/stockade/config.toml", "[network]\nmode = \"warp\"\n");
    let o = t.run(&["explain"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("stockade/config.toml`:2:"), "{}", stderr(&o));
}

#[test]
fn requirements_refuse_and_cannot_be_loosened() {
    let t = Cli::new();
    let strict = t.write("req/strict.toml", "allowed_modes = [\"read-only\", \"workspace-write\"]\n");
    let loose = t.write("req/loose.toml", "allowed_modes = [\"danger-full-access\"]\n");
    let o = t.run(&["run", "--requirements", strict.to_str().unwrap(), "-s", "danger-full-access", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("requirement `allowed_modes` refuses mode `danger-full-access`"), "{}", stderr(&o));
    let o = t.run(&[
        "run",
        "--requirements",
        strict.to_str().unwrap(),
        "--requirements",
        loose.to_str().unwrap(),
        "-s",
        "danger-full-access",
        "--",
        "true",
    ]);
    assert_eq!(code(&o), 125, "a second file cannot widen the first");
    // Control: the loose file alone allows it.
    let o = t.run(&["run", "--requirements", loose.to_str().unwrap(), "-s", "danger-full-access", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let json =
        t.run(&["run", "--json", "--requirements", strict.to_str().unwrap(), "-s", "danger-full-access", "--", "true"]);
    let v: serde_json::Value = serde_json::from_str(stderr(&json).trim()).unwrap();
    assert_eq!(v["error"]["code"], "requirement_violation");
}

#[test]
fn explain_shows_provenance_and_path_access() {
    let t = Cli::new();
    let cfg = t.write("cfg/c.toml", "[network]\nallow = [\"github.com\"]\nmode = \"allow\"\n");
    let o = t.run(&[
        "explain",
        "--config",
        cfg.to_str().unwrap(),
        ".git/hooks/pre-commit",
        "src/lib.rs",
        "~/.ssh/id_rsa",
        "/etc/hostname",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("mode        workspace-write  (built-in default)"), "{out}");
    assert!(out.contains(&format!("network     allow  (`{}`:3 (`network.mode`))", cfg.display())), "{out}");
    assert!(out.contains(&format!("`{}/.git/hooks/pre-commit`  read  by protected path", t.ws.display())), "{out}");
    assert!(out.contains(&format!("`{}/src/lib.rs`  write  by writable root", t.ws.display())), "{out}");
    assert!(out.contains("`/etc/hostname`  read  readable under `/`"), "{out}");

    let ssh = t.home.join(".ssh/id_rsa");
    let o = t.run(&["explain", "--json", "--deny-read", "/etc/hostname", ssh.to_str().unwrap(), "/etc/hostname"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy"]["mode"], "workspace-write");
    assert_eq!(v["paths"][0]["access"], "none");
    assert_eq!(v["paths"][0]["rule"], "deny_read");
    assert_eq!(v["paths"][1]["access"], "none");
    assert_eq!(v["paths"][1]["source"]["kind"], "cli");
    // The path asked about keeps its key; the rule's entry has its own.
    assert_eq!(v["paths"][0]["path"], ssh.to_str().unwrap());
    assert_eq!(v["paths"][1]["entry"], "/etc/hostname");
}

/// `explain` says what the sandbox does, not only what the policy says: the host's `/run` and
/// its shared `/tmp` are hidden whatever the policy reads (Linux). Control: `/etc/hostname`
/// stays readable.
#[cfg(target_os = "linux")]
#[test]
fn explain_names_what_the_sandbox_hides() {
    let t = Cli::new();
    let o = t.run(&["explain", "/run/secrets/token", "/tmp/krb5cc_0", "/etc/hostname"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("`/run/secrets/token`  none  hidden by the sandbox: `/run`"), "{out}");
    assert!(out.contains("`/tmp/krb5cc_0`  none  hidden by the sandbox"), "{out}");
    assert!(out.contains("`/etc/hostname`  read  readable under `/`"), "{out}");
    let o = t.run(&["explain", "--json", "/run/secrets/token"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["paths"][0]["access"], "none");
    assert_eq!(v["paths"][0]["rule"], "hidden_by_sandbox");
    assert_eq!(v["paths"][0]["path"], "/run/secrets/token");
    assert_eq!(v["paths"][0]["hidden_dir"], "/run");
}

#[test]
fn report_file_records_outcome_and_errors() {
    let t = Cli::new();
    let report = t.ws.join("out/report.json");
    fs::create_dir_all(report.parent().unwrap()).unwrap();
    let o = t.run(&danger(&["--report", report.to_str().unwrap(), "--", "sh", "-c", "exit 3"]));
    assert_eq!(code(&o), 3);
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["status"]["kind"], "exited");
    assert_eq!(v["status"]["code"], 3);
    assert_eq!(v["timed_out"], false);
    assert_eq!(v["implementation"], "none");

    let o = t.run(&["run", "--report", report.to_str().unwrap(), "-C", "/nonexistent", "--", "true"]);
    assert_eq!(code(&o), 125);
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "workspace_invalid");

    // A report path that is a directory is refused before the command runs.
    let marker = t.ws.join("ran");
    let out = report.parent().unwrap();
    for bad in [out.to_str().unwrap().to_owned(), format!("{}/", out.display())] {
        let o = t.run(&danger(&["--report", &bad, "--", "touch", marker.to_str().unwrap()]));
        assert_eq!(code(&o), 125, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("directory, not a file"), "{}", stderr(&o));
        assert!(!marker.exists(), "{bad}: the command ran");
    }
    // One the command turns into a directory: the command's status is still said, and no
    // temporary file is left next to it.
    let late = out.join("late.json");
    let o = t.run(&danger(&[
        "--report",
        late.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &format!("mkdir {}; exit 3", late.display()),
    ]));
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("exit status 3"), "{}", stderr(&o));
    let left: Vec<_> = fs::read_dir(out).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().contains(".stockade-")), "{left:?}");
}

// See: THREATS.md F4 (confused deputy): a command may plant a symlink where stockade later writes.
#[test]
fn report_write_does_not_follow_a_planted_symlink() {
    let t = Cli::new();
    let victim = t.write("outside/victim.txt", "precious\n");
    let report = t.ws.join("report.json");
    let plant = format!("ln -s {} {}", victim.display(), report.display());
    let o = t.run(&danger(&["--report", report.to_str().unwrap(), "--", "sh", "-c", &plant]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n", "the symlink target was not written");
    let meta = fs::symlink_metadata(&report).unwrap();
    assert!(meta.is_file(), "the report replaced the link instead of following it");
    assert!(fs::read_to_string(&report).unwrap().contains("\"exited\""));
    // Control: the same command without --report leaves the link in place (so the probe works).
    let o = t.run(&danger(&["--", "sh", "-c", &format!("rm {r}; {plant}", r = report.display())]));
    assert_eq!(code(&o), 0);
    assert!(fs::symlink_metadata(&report).unwrap().file_type().is_symlink());
}

#[test]
fn doctor_reports_config_locations() {
    let t = Cli::new();
    let o = t.run(&["doctor", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let user = checks.iter().find(|c| c["name"] == "user config").unwrap();
    assert!(user["detail"]
        .as_str()
        .unwrap()
        .contains(&t.home.join(".config/stockade/config.toml").display().to_string()));
    assert!(checks.iter().any(|c| c["name"] == "requirements"));
    let o = t.run(&["doctor"]);
    assert!(stdout(&o).starts_with("stockade doctor ("), "{}", stdout(&o));
}

/// Whether `o` is stockade refusing because implementation `imp` cannot run on this host (said
/// with a `SKIP` line).
#[cfg(target_os = "linux")]
fn unavailable(imp: &str, o: &Output) -> bool {
    let err = String::from_utf8_lossy(&o.stderr);
    let skip = code(o) == 125 && err.contains("no allowed Linux sandbox implementation works here");
    if skip {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIP {imp}: not available here: {err}\n").as_bytes(),
        );
    }
    skip
}

/// A caller whose hard core limit is already 0 (a hardened host, `ulimit -Hc 0`,
/// `LimitCORE=0`) still runs commands: the sandbox keeps 0 rather than asking for the 1 byte it
/// would otherwise set, which needs a privilege to raise to. The report says so.
#[cfg(target_os = "linux")]
#[test]
fn a_caller_with_a_hard_core_limit_of_zero_still_runs() {
    use std::os::unix::process::CommandExt;
    let c = Cli::new();
    let report = c.ws.join("core-report.json");
    for imp in ["namespaces", "landlock-only"] {
        let mut cmd = c.cmd(&["run", "--implementation", imp, "--report"]);
        cmd.arg(&report).args(["--", "sh", "-c", "ulimit -c; ulimit -Hc"]).current_dir(&c.ws);
        // SAFETY: setrlimit is async-signal-safe; lowering a limit needs no privilege.
        unsafe {
            cmd.pre_exec(|| {
                let rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::setrlimit(libc::RLIMIT_CORE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if unavailable(imp, &o) {
            continue;
        }
        assert_eq!((code(&o), stdout(&o).split_whitespace().collect::<Vec<_>>()), (0, vec!["0", "0"]), "{imp}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let limits = v["enforcement"]["layers"].as_array().unwrap().iter().find(|l| l["layer"] == "limits").unwrap();
        assert!(limits["detail"].as_str().unwrap().contains("RLIMIT_CORE=0"), "{imp}: {limits}");
    }
}

/// The smallest open-file limit a policy may set still starts a command when the caller hands
/// stockade many descriptors (here 3 to 20, without close-on-exec): the limit is set just
/// before `execve`, once they are all marked close-on-exec. Set earlier, the sandbox's own
/// set-up met `EMFILE` and the run was refused.
#[cfg(target_os = "linux")]
#[test]
fn the_smallest_open_file_limit_starts_a_command_despite_inherited_fds() {
    let c = Cli::new();
    let cfg = c.write("cfg16.toml", "[process]\nmax_open_files = 16\n");
    for imp in ["namespaces", "landlock-only"] {
        let stockade = c.cmd::<&str>(&[]);
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(r#"for i in $(seq 3 20); do eval "exec $i</dev/null"; done; exec "$@""#)
            .arg("bash")
            .arg(stockade.get_program())
            .args(["run", "--implementation", imp, "--config"])
            .arg(&cfg)
            .args(["--", "sh", "-c", "ulimit -Hn"])
            .current_dir(&c.ws)
            .env_clear();
        for (k, v) in stockade.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if unavailable(imp, &o) {
            continue;
        }
        assert_eq!((code(&o), String::from_utf8_lossy(&o.stdout).trim()), (0, "16"), "{imp}: {err}");
    }
}
