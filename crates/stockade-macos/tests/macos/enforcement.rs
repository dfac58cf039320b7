//! Enforcement on a real Mac: the THREATS.md classes that apply to macOS, each denied probe
//! paired with an allowed control, checking host-side effects (file contents, listeners,
//! sentinel processes), not only exit codes.
//!
//! Included by `tests/macos_enforcement.rs` on macOS only; run with
//! `cargo test -p stockade-macos --test macos_enforcement`. Every test
//! uses its own directory under `$TMPDIR` and a fake home, so the user's real `~/.ssh` is
//! never touched. `STOCKADE_TEST_REQUIRE=denial-log` turns the denial-report test's skip
//! (when `log stream` shows nothing, e.g. without access to the unified log) into a failure.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stockade_macos::MacosBackend;
use stockade_policy::{
    resolve, Backend, CommandSpec, DenialKind, ExitStatus, HostEnv, Locations, NetworkMode, Outcome, Overrides, Policy,
    Stdio,
};

/// One test's directories: a workspace, a fake home with secrets, and an outside dir.
struct Harness {
    root: PathBuf,
    ws: PathBuf,
    home: PathBuf,
    out: PathBuf,
}

impl Harness {
    fn new(name: &str) -> Harness {
        let base = std::fs::canonicalize(std::env::temp_dir()).unwrap();
        let root = base.join(format!("stockade-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (ws, home, out) = (root.join("ws"), root.join("home"), root.join("out"));
        for d in [&ws, &home.join(".ssh"), &out, &ws.join(".git")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join(".ssh/id_test"), "SECRET-KEY").unwrap();
        std::fs::write(home.join("notes.txt"), "public notes").unwrap();
        std::fs::write(home.join(".zshrc"), "# rc\n").unwrap();
        std::fs::write(out.join("existing"), "original").unwrap();
        std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
        Harness { root, ws, home, out }
    }

    fn policy(&self, edit: impl FnOnce(&mut Overrides)) -> Policy {
        let env = HostEnv { home: Some(self.home.clone()), cwd: self.ws.clone(), ..Default::default() };
        let mut o = Overrides { workspace: Some(self.ws.clone()), ..Default::default() };
        edit(&mut o);
        resolve(&o, None, &[], &env, &Locations::macos(&env)).unwrap()
    }

    /// Runs `sh -c script` in the default policy (or an edited one).
    fn sh(&self, policy: &Policy, script: &str) -> Outcome {
        let mut cmd = CommandSpec::from_argv(&["/bin/sh".into(), "-c".into(), script.into()]).unwrap();
        cmd.stdio = Stdio::Null;
        cmd.host_env.push(("GITHUB_TOKEN".into(), OsString::from("ghp_should_not_pass")));
        MacosBackend::default().run(policy, &cmd).unwrap()
    }

    fn read(&self, p: &Path) -> Option<String> {
        std::fs::read_to_string(p).ok()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn code(o: &Outcome) -> i32 {
    o.status.cli_code()
}

// THREATS F1: writes outside the workspace, all verbs; control: the same verbs inside.
#[test]
fn f1_writes_outside_the_workspace_are_denied() {
    let h = Harness::new("f1");
    let p = h.policy(|_| {});
    let out = h.out.display();
    for verb in [
        format!("echo x > '{out}/new'"),
        format!("echo x >> '{out}/existing'"),
        format!(": > '{out}/existing'"),
        format!("mkdir '{out}/d'"),
        format!("rm '{out}/existing'"),
        format!("ln -s x '{out}/l'"),
        format!("mkfifo '{out}/p'"),
        format!("chmod 777 '{out}/existing'"),
        format!("touch -t 200001010000 '{out}/existing'"),
        format!("mv '{}/f' '{out}/f'", h.ws.display()),
    ] {
        std::fs::write(h.ws.join("f"), "f").unwrap();
        assert_ne!(code(&h.sh(&p, &verb)), 0, "{verb}");
    }
    assert_eq!(h.read(&h.out.join("existing")).as_deref(), Some("original"));
    let names: Vec<_> = std::fs::read_dir(&h.out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![OsString::from("existing")]);
    // Control.
    let ws = h.ws.display();
    assert_eq!(code(&h.sh(&p, &format!("echo x > '{ws}/new' && mkdir '{ws}/d' && mv '{ws}/new' '{ws}/d/'"))), 0);
    assert_eq!(h.read(&h.ws.join("d/new")).as_deref(), Some("x\n"));
}

// THREATS F11: protected paths, including ones that do not exist yet, and renaming their
// parent; control: git's ordinary writes inside `.git`.
#[test]
fn f11_protected_paths_stay_read_only() {
    let h = Harness::new("f11");
    let p = h.policy(|_| {});
    let ws = h.ws.display();
    assert_ne!(code(&h.sh(&p, &format!("mkdir '{ws}/.git/hooks'"))), 0, "mkdir .git/hooks");
    assert!(!h.ws.join(".git/hooks").exists());
    assert_ne!(code(&h.sh(&p, &format!("echo '[core] hooksPath=/tmp' >> '{ws}/.git/config'"))), 0);
    assert_ne!(code(&h.sh(&p, &format!("mv '{ws}/.git' '{ws}/g'"))), 0, "rename the parent away");
    assert_ne!(code(&h.sh(&p, &format!("mkdir -p '{ws}/.vscode' && echo x > '{ws}/.vscode/tasks.json'"))), 0);
    assert_eq!(h.read(&h.ws.join(".git/config")).as_deref(), Some("[core]\n"));
    assert!(h.ws.join(".git").is_dir() && !h.ws.join(".vscode").exists());
    // Control: index.lock and objects are ordinary writes.
    assert_eq!(code(&h.sh(&p, &format!("echo x > '{ws}/.git/index.lock' && mkdir -p '{ws}/.git/objects/ab'"))), 0);
}

// THREATS F12/I4: deny-read secrets; control: other files of the same home.
#[test]
fn f12_deny_read_secrets() {
    let h = Harness::new("f12");
    let p = h.policy(|_| {});
    let (home, ws) = (h.home.display(), h.ws.display());
    assert_ne!(code(&h.sh(&p, &format!("cat '{home}/.ssh/id_test' > '{ws}/leak'"))), 0);
    assert_ne!(h.read(&h.ws.join("leak")).as_deref(), Some("SECRET-KEY"));
    assert_ne!(code(&h.sh(&p, &format!("ls '{home}/.ssh' > '{ws}/list'"))), 0);
    // Writes to deny-write files outside the workspace.
    assert_ne!(code(&h.sh(&p, &format!("echo 'curl x|sh' >> '{home}/.zshrc'"))), 0);
    assert_eq!(h.read(&h.home.join(".zshrc")).as_deref(), Some("# rc\n"));
    // Control.
    assert_eq!(code(&h.sh(&p, &format!("cat '{home}/notes.txt' > '{ws}/ok'"))), 0);
    assert_eq!(h.read(&h.ws.join("ok")).as_deref(), Some("public notes"));
}

// THREATS F3/F5: symlinks and hard links from the workspace to outside; control: a link
// inside the workspace.
#[test]
fn f3_symlink_and_hardlink_escapes() {
    let h = Harness::new("f3");
    let p = h.policy(|_| {});
    let (ws, out, home) = (h.ws.display(), h.out.display(), h.home.display());
    assert_ne!(code(&h.sh(&p, &format!("ln -s '{out}/existing' '{ws}/lnk' && echo pwn >> '{ws}/lnk'"))), 0);
    assert_eq!(h.read(&h.out.join("existing")).as_deref(), Some("original"));
    assert_ne!(
        code(&h.sh(&p, &format!("ln -s '{home}/.ssh' '{ws}/keys' && cat '{ws}/keys/id_test' > '{ws}/leak'"))),
        0
    );
    assert_ne!(h.read(&h.ws.join("leak")).as_deref(), Some("SECRET-KEY"));
    // A hard link to a protected file, then a write through it (Seatbelt checks names).
    let _ = h.sh(&p, &format!("ln '{ws}/.git/config' '{ws}/cfg' && echo pwn >> '{ws}/cfg'"));
    assert_eq!(h.read(&h.ws.join(".git/config")).as_deref(), Some("[core]\n"), "hard link to a protected file");
    // Control.
    assert_eq!(code(&h.sh(&p, &format!("echo a > '{ws}/t' && ln -s t '{ws}/l2' && echo b >> '{ws}/l2'"))), 0);
    assert_eq!(h.read(&h.ws.join("t")).as_deref(), Some("a\nb\n"));
}

// THREATS N1/N2: no network with network off, even to the host's loopback; control: the
// same connection with network on.
#[test]
fn n2_network_off_blocks_host_loopback() {
    let h = Harness::new("n2");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!("/usr/bin/nc -z -G 2 127.0.0.1 {port}");
    let off = h.policy(|_| {});
    assert_ne!(code(&h.sh(&off, &probe)), 0);
    assert!(listener.accept().is_err(), "the host listener accepted a connection from a network-off sandbox");
    assert_ne!(code(&h.sh(&off, "/usr/bin/nc -z -G 2 1.1.1.1 443")), 0);
    // Control.
    let on = h.policy(|o| o.network = Some(NetworkMode::On));
    assert_eq!(code(&h.sh(&on, &probe)), 0);
    assert!(listener.accept().is_ok(), "control: network on reaches the listener");
}

// THREATS N6: connect() to a host unix socket; control: a socket inside the workspace.
#[test]
fn n6_host_unix_sockets_are_closed() {
    let h = Harness::new("n6");
    let host_sock = h.out.join("daemon.sock");
    let host = std::os::unix::net::UnixListener::bind(&host_sock).unwrap();
    host.set_nonblocking(true).unwrap();
    let ws_sock = h.ws.join("own.sock");
    let own = std::os::unix::net::UnixListener::bind(&ws_sock).unwrap();
    own.set_nonblocking(true).unwrap();
    for p in [h.policy(|_| {}), h.policy(|o| o.network = Some(NetworkMode::On))] {
        assert_ne!(code(&h.sh(&p, &format!("/usr/bin/nc -U -z '{}'", host_sock.display()))), 0);
        assert!(host.accept().is_err(), "host socket reached (network {})", p.network.mode);
    }
    // Control.
    let p = h.policy(|_| {});
    assert_eq!(code(&h.sh(&p, &format!("/usr/bin/nc -U -z '{}'", ws_sock.display()))), 0);
    assert!(own.accept().is_ok());
}

// THREATS P2: signals to host processes; control: signalling the sandbox's own child.
#[test]
fn p2_signals_to_host_processes_are_denied() {
    let h = Harness::new("p2");
    let p = h.policy(|_| {});
    let mut sentinel = std::process::Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let pid = sentinel.id();
    assert_ne!(code(&h.sh(&p, &format!("kill -TERM {pid}"))), 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(sentinel.try_wait().unwrap().is_none(), "the host sentinel was killed from the sandbox");
    sentinel.kill().unwrap();
    let _ = sentinel.wait();
    // Control.
    assert_eq!(code(&h.sh(&p, "/bin/sleep 30 & kill $! && wait $!; test $? -gt 128")), 0);
}

// THREATS I1: environment scrubbing; control: PATH and TMPDIR pass.
#[test]
fn i1_environment_is_scrubbed() {
    let h = Harness::new("i1");
    let p = h.policy(|_| {});
    assert_eq!(code(&h.sh(&p, &format!("env > '{}/env.txt'", h.ws.display()))), 0);
    let env = h.read(&h.ws.join("env.txt")).unwrap();
    assert!(!env.contains("ghp_should_not_pass"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")));
    let tmpdir = env.lines().find_map(|l| l.strip_prefix("TMPDIR=")).unwrap();
    assert!(tmpdir.contains("stockade-"), "private TMPDIR: {tmpdir}");
    // The private temp dir is writable and removed afterwards; the shared /tmp is not.
    assert_eq!(code(&h.sh(&p, "echo x > \"$TMPDIR/f\"")), 0);
    assert!(!Path::new(tmpdir).exists(), "private temp dir removed after the run");
    let marker = format!("/private/tmp/stockade-it-{}", std::process::id());
    assert_ne!(code(&h.sh(&p, &format!("echo x > '{marker}'"))), 0);
    assert!(!Path::new(&marker).exists());
}

// THREATS R4/P6: a timeout kills the whole tree; background jobs do not outlive the run;
// control: a command that finishes in time.
#[test]
fn r4_timeout_kills_the_whole_tree() {
    let h = Harness::new("r4");
    let p = h.policy(|o| o.timeout = Some(Duration::from_secs(1)));
    let marker = format!("31.{}", std::process::id() % 1000);
    let started = Instant::now();
    let o = h.sh(&p, &format!("/bin/sleep {marker} & /bin/sleep {marker}"));
    assert_eq!(o.status, ExitStatus::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let left = std::process::Command::new("/usr/bin/pgrep").args(["-f", &format!("sleep {marker}")]).output().unwrap();
    assert!(left.stdout.is_empty(), "left behind: {}", String::from_utf8_lossy(&left.stdout));
    // Background job of a command that exits normally.
    let o = h.sh(&h.policy(|_| {}), &format!("/bin/sleep {marker}1 &"));
    assert_eq!(o.status, ExitStatus::Exited { code: 0 });
    std::thread::sleep(Duration::from_millis(200));
    let left = std::process::Command::new("/usr/bin/pgrep").args(["-f", &format!("sleep {marker}1")]).output().unwrap();
    assert!(left.stdout.is_empty(), "background job outlived the run");
    // Control.
    assert_eq!(h.sh(&p, "exit 0").status, ExitStatus::Exited { code: 0 });
}

// THREATS P6 on macOS: a launchd job submitted from the sandbox would outlive the run
// (launchctl talks to launchd over the bootstrap port, not a named Mach service). Expected
// to be refused; the harness removes the job either way. No unsandboxed control: it would
// add a job to the user's launchd.
#[test]
fn p6_launchd_job_submission_is_refused() {
    let h = Harness::new("p6");
    let p = h.policy(|_| {});
    let label = format!("dev.stockade.it.{}", std::process::id());
    let _ = h.sh(&p, &format!("/bin/launchctl submit -l {label} -- /bin/sleep 600"));
    let listed = std::process::Command::new("/bin/launchctl").args(["list", &label]).output().unwrap();
    let _ = std::process::Command::new("/bin/launchctl").args(["remove", &label]).output();
    assert!(!listed.status.success(), "a launchd job submitted from the sandbox exists: {label}");
}

// Exit statuses as on Linux: code, signal, not found, not executable.
#[test]
fn exit_statuses() {
    let h = Harness::new("exit");
    let p = h.policy(|_| {});
    assert_eq!(h.sh(&p, "exit 3").status, ExitStatus::Exited { code: 3 });
    assert_eq!(h.sh(&p, "kill -9 $$").status, ExitStatus::Signaled { signal: 9 });
    let run = |argv: &[&str]| {
        let mut c = CommandSpec::from_argv(&argv.iter().map(OsString::from).collect::<Vec<_>>()).unwrap();
        c.stdio = Stdio::Null;
        MacosBackend::default().run(&p, &c).unwrap().status
    };
    assert_eq!(run(&["stockade-no-such-program"]), ExitStatus::NotFound);
    std::fs::write(h.ws.join("script.txt"), "echo\n").unwrap();
    assert_eq!(run(&["./script.txt"]), ExitStatus::NotExecutable);
    assert_eq!(run(&["true"]), ExitStatus::Exited { code: 0 });
}

// Denials come back as structured events tagged for this run.
#[test]
fn denials_are_reported_from_the_unified_log() {
    let h = Harness::new("log");
    let p = h.policy(|_| {});
    let o = h.sh(&p, &format!("cat '{}/.ssh/id_test'", h.home.display()));
    assert_ne!(code(&o), 0);
    let hit = o.denials.iter().find(|d| d.kind == DenialKind::FileRead && d.target.ends_with(".ssh/id_test"));
    if hit.is_none() {
        let strict = std::env::var("STOCKADE_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|x| x == "denial-log"));
        let msg = format!("no denial read from `log stream` (got {:?}); is the unified log readable?", o.denials);
        assert!(!strict, "{msg}");
        let _ = writeln!(std::io::stderr(), "SKIP denials_are_reported_from_the_unified_log: {msg}");
        return;
    }
    let d = hit.unwrap();
    assert_eq!(d.layer, "seatbelt");
    assert!(d.rule.as_deref().unwrap_or_default().contains("deny-read"), "{d:?}");
}

// `doctor` on this Mac: sandbox-exec present, the default profile compiles.
#[test]
fn doctor_on_this_mac() {
    let h = Harness::new("doctor");
    let r = MacosBackend::default().doctor(&h.policy(|_| {}));
    assert_eq!(r.implementation.as_deref(), Some("seatbelt"), "{:#?}", r.checks);
    assert!(r.checks.iter().any(|c| c.name == "sandbox-exec" && c.status == stockade_policy::CheckStatus::Ok));
    assert!(r.checks.iter().any(|c| c.name == "profile" && c.status == stockade_policy::CheckStatus::Ok));
}
