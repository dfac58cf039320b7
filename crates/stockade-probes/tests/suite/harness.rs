//! The harness: locating binaries, per-test temp dirs, the unprivileged user, running `stockade`
//! with a probe, host-side checks (snapshots, sentinels, listeners) and verdicts.
//!
//! Vocabulary: a *case* is one probe test in one *context* (who runs it: root or the
//! unprivileged user; which implementation: `namespaces` or `landlock-only`). A probe line is
//! the JSON `sbx-probe` prints. "denied" verdicts need the probe's own outcome AND a clean host.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::host::{bind_unix, chown_tree, rand_token, snapshot, snapshot_diff, Listeners, Sentinel, Snapshot};

pub const USER_NAME: &str = "stockade-probe";

/// Credential files every case's `$HOME` holds (relative to it), each marked with
/// `SECRET_MARK`: the sandbox must not read any of them.
pub const SECRET_FILES: [&str; 11] = [
    ".ssh/id_ed25519",
    ".ssh/authorized_keys",
    ".aws/credentials",
    ".config/gh/hosts.yml",
    ".netrc",
    ".git-credentials",
    ".docker/config.json",
    ".kube/config",
    ".gnupg/private-keys-v1.d/key",
    ".bash_history",
    ".npmrc",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Root,
    User,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Namespaces,
    LandlockOnly,
}

impl Impl {
    pub fn flag(self) -> &'static str {
        match self {
            Impl::Namespaces => "namespaces",
            Impl::LandlockOnly => "landlock-only",
        }
    }
}

/// Writes straight to fd 2 so that the line is visible even when libtest captures output.
pub fn loud(msg: &str) {
    let line = format!("{msg}\n");
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// The features `STOCKADE_TEST_REQUIRE` names (a missing one fails its test instead of
/// skipping it; `core-pattern` also opts in to a test that changes a host-wide setting).
pub fn required() -> Vec<String> {
    std::env::var("STOCKADE_TEST_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Skips the current test with a printed reason, or fails it when `STOCKADE_TEST_REQUIRE`
/// names `feature`.
pub fn skip(test: &str, feature: &str, reason: &str) {
    if required().iter().any(|r| r == feature || r == "all") {
        panic!("{test}: required host feature `{feature}` unavailable (STOCKADE_TEST_REQUIRE): {reason}");
    }
    loud(&format!("SKIPPED {test}: {reason} [feature {feature}; set STOCKADE_TEST_REQUIRE={feature} to fail instead]"));
    if let Some(base) = base_dir_if_exists() {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(base.join("skipped.txt")) {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("target"),
    }
}

/// The built `stockade`: `$STOCKADE_BIN`, else `<target>/debug/stockade`, else release.
pub fn stockade_built() -> PathBuf {
    if let Some(p) = std::env::var_os("STOCKADE_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "STOCKADE_BIN={} does not exist", p.display());
        return p;
    }
    let t = target_dir();
    for c in [t.join("debug/stockade"), t.join("release/stockade")] {
        if c.is_file() {
            assert_fresh(&c);
            return c;
        }
    }
    panic!(
        "no built stockade binary under {} (debug or release): run `cargo build -p stockade` first \
         (with the same CARGO_TARGET_DIR), or set STOCKADE_BIN",
        t.display()
    );
}

/// The newest modification time under `dir` (recursively).
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut best = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() { newest(&p) } else { e.metadata().ok().and_then(|m| m.modified().ok()) };
        best = best.max(t);
    }
    best
}

/// A binary found by convention must not be older than the sources it is built from: the suite
/// would otherwise judge a stale sandbox.
fn assert_fresh(bin: &Path) {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).unwrap();
    let crates = workspace_root().join("crates");
    for c in ["stockade", "stockade-linux", "stockade-policy", "stockade-net"] {
        if let Some(src) = newest(&crates.join(c).join("src")) {
            assert!(
                src <= built,
                "{} is older than the sources in crates/{c}/src: run `cargo build -p stockade` first (or set STOCKADE_BIN)",
                bin.display()
            );
        }
    }
}

fn base_dir_if_exists() -> Option<PathBuf> {
    let b = base_dir_path();
    b.is_dir().then_some(b)
}

fn base_dir_path() -> PathBuf {
    if let Some(p) = std::env::var_os("STOCKADE_PROBE_TMP") {
        return PathBuf::from(p);
    }
    // Not under /tmp, /var/tmp or /run: the sandbox replaces those with private mounts.
    if is_root() {
        PathBuf::from("/var/lib/stockade-probes")
    } else {
        target_dir().join("stockade-probes")
    }
}

/// The per-run base dir, world-traversable, holding staged binaries and per-test dirs.
pub fn base_dir() -> &'static PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let b = base_dir_path();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_file(b.join("skipped.txt"));
        // Staged binaries of earlier runs whose test process is gone.
        for e in std::fs::read_dir(&b).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("bin-").and_then(|p| p.parse::<u32>().ok()) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        b
    })
}

pub struct Bins {
    pub stockade: PathBuf,
    pub probe: PathBuf,
}

/// Copies `stockade` and `sbx-probe` to a world-readable dir so the unprivileged user can run
/// them even when the target dir is not traversable for it.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = base_dir().join(format!("bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let stage = |src: &Path, name: &str| {
            let dst = dir.join(name);
            std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("cannot stage {}: {e}", src.display()));
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
            dst
        };
        let stockade = stage(&stockade_built(), "stockade");
        let probe = stage(Path::new(env!("CARGO_BIN_EXE_sbx-probe")), "sbx-probe");
        Bins { stockade, probe }
    })
}

#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Whether commands must be wrapped in `setpriv` to run as this account.
    pub switch: bool,
}

fn id_of(flag: &str, name: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok().filter(|_| o.status.success())
}

/// The unprivileged account: `stockade-probe` (created when running as root), or the current
/// user when the suite itself runs unprivileged.
pub fn unprivileged() -> Result<Account, String> {
    static ACC: OnceLock<Result<Account, String>> = OnceLock::new();
    ACC.get_or_init(|| {
        if !is_root() {
            // SAFETY: getuid/getgid cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            return Ok(Account { name: std::env::var("USER").unwrap_or_default(), uid, gid, switch: false });
        }
        if id_of("-u", USER_NAME).is_none() {
            let o = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/bin/sh",
                    "--user-group",
                    USER_NAME,
                ])
                .output()
                .map_err(|e| format!("cannot run useradd: {e}"))?;
            if !o.status.success() && id_of("-u", USER_NAME).is_none() {
                return Err(format!("useradd {USER_NAME} failed: {}", String::from_utf8_lossy(&o.stderr)));
            }
        }
        let uid = id_of("-u", USER_NAME).ok_or("no uid for the probe user")?;
        let gid = id_of("-g", USER_NAME).ok_or("no gid for the probe user")?;
        if Command::new("setpriv").arg("--version").output().is_err() {
            return Err("setpriv (util-linux) is not installed".into());
        }
        Ok(Account { name: USER_NAME.to_owned(), uid, gid, switch: true })
    })
    .clone()
}

pub fn root_account() -> Account {
    Account { name: "root".into(), uid: 0, gid: 0, switch: false }
}

/// Host feature checks, run as the account that will run stockade.
fn userns_available(acc: &Account) -> Result<(), String> {
    let mut c = as_account(acc, &["unshare", "-U", "-r", "true"]);
    match c.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            Err(format!("user namespaces unavailable for {}: {}", acc.name, String::from_utf8_lossy(&o.stderr).trim()))
        }
        Err(e) => Err(format!("cannot run unshare: {e}")),
    }
}

pub fn landlock_abi() -> Option<i64> {
    let o = Command::new(&bins().probe).arg("landlock-abi").output().ok()?;
    let v: Value = serde_json::from_slice(&o.stdout).ok()?;
    v["detail"].as_str()?.parse().ok().filter(|_| v["outcome"] == "allowed")
}

/// A command run as `acc` (through `setpriv` when the harness is root and acc is not).
pub fn as_account(acc: &Account, argv: &[&str]) -> Command {
    if acc.switch {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", acc.uid))
            .arg(format!("--regid={}", acc.gid))
            .arg("--clear-groups")
            .arg("--")
            .args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    }
}

/// The residual gaps the `namespaces` implementation may have (the lead's decision, THREATS.md
/// F5B, F11, N6, R6, R7): an action of one of these classes passes only when the run's report lists the
/// gap, exactly like landlock-only's documented gaps. Any other gap under namespaces fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residual {
    /// N6: pathname unix sockets the host binds after the launch (Landlock ABI < 9 cannot
    /// mediate connect(); sockets bound at launch are covered and must be denied).
    SocketAfterLaunch,
    /// F5B: hard links that already exist inside writable roots and point at outside files.
    PreexistingHardLink,
    /// F11: `git init sub` gets writable hooks (only each writable root's own protected paths
    /// are read-only).
    NestedRepo,
    /// F11: a new `.git/commondir` redirects the host's git to config and hooks the command
    /// wrote (no placeholder possible: any `commondir` changes what git does).
    GitRedirect,
    /// R6: inotify instances and watches count against the user's own per-user limits (pid 1
    /// could cap the sandbox's share, at 0.27 ms a run; see docs/linux.md).
    InotifyAllowance,
    /// R7: the host's `core_pattern` names a socket helper (`@`, Linux 6.16+), to which the
    /// kernel applies no core limit, or a pipe helper while the caller's hard core limit is 0
    /// (pipe helpers ignore 0, and only a privileged process could raise it to 1).
    CoreHelper,
}

impl Residual {
    pub const ALL: [Residual; 6] = [
        Residual::SocketAfterLaunch,
        Residual::PreexistingHardLink,
        Residual::NestedRepo,
        Residual::GitRedirect,
        Residual::InotifyAllowance,
        Residual::CoreHelper,
    ];

    /// Words that must all appear (case-insensitive) in the gap string.
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Residual::SocketAfterLaunch => &["socket", "after"],
            Residual::PreexistingHardLink => &["hard link", "outside"],
            Residual::NestedRepo => &["subdirectory", "git init"],
            Residual::GitRedirect => &["commondir"],
            Residual::InotifyAllowance => &["inotify instances", "limits"],
            Residual::CoreHelper => &["core_pattern", "helper"],
        }
    }

    /// The listed gap of this class, if any.
    pub fn find(self, gaps: &[String]) -> Option<String> {
        gaps.iter()
            .find(|g| {
                let g = g.to_lowercase();
                self.words().iter().all(|w| g.contains(&w.to_lowercase()))
            })
            .cloned()
    }

    /// Whether this kernel leaves the gap open, so that namespaces must list it: the socket gap
    /// closes with Landlock ABI 9 (`LANDLOCK_ACCESS_FS_RESOLVE_UNIX`).
    pub fn open_on_this_host(self) -> bool {
        match self {
            Residual::SocketAfterLaunch => landlock_abi().is_none_or(|a| a < 9),
            Residual::CoreHelper => core_helper_reaches_crashes(),
            _ => true,
        }
    }
}

/// The host's `core_pattern` (empty if it cannot be read).
pub fn core_pattern() -> Vec<u8> {
    std::fs::read("/proc/sys/kernel/core_pattern").unwrap_or_default()
}

/// Whether a crash in the sandbox reaches this host's crash handler whatever stockade does
/// (see [`Residual::CoreHelper`]).
pub fn core_helper_reaches_crashes() -> bool {
    let pattern = core_pattern();
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid out-pointer.
    let hard = if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut rl) } == 0 { rl.rlim_max } else { u64::MAX };
    pattern.starts_with(b"@") || (pattern.starts_with(b"|") && hard == 0)
}

/// What is wrong with the namespaces implementation's `enforcement.gaps`: every gap must be one
/// of the accepted residual gaps, and each residual gap in `must_list` must be listed (a backend
/// that silently drops the disclosure fails).
pub fn residual_gap_problems(gaps: &[String], must_list: &[Residual]) -> Vec<String> {
    let mut p = Vec::new();
    for g in gaps {
        if !Residual::ALL.iter().any(|r| r.find(std::slice::from_ref(g)).is_some()) {
            p.push(format!("namespaces reports a gap that is not an accepted residual gap: {g:?}"));
        }
    }
    for r in must_list {
        if r.find(gaps).is_none() {
            p.push(format!("namespaces does not list the residual gap {r:?} (words {:?}) in {gaps:?}", r.words()));
        }
    }
    p
}

/// The result of one process run.
#[derive(Debug)]
pub struct Run {
    pub argv: Vec<String>,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub report: Option<Value>,
    pub elapsed: Duration,
    /// The spawned process's peak RSS (VmHWM), polled while it ran.
    pub peak_rss_kb: Option<u64>,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Every JSON probe line in stdout.
    pub fn probes(&self) -> Vec<Value> {
        self.out()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("probe").is_some() && v.get("outcome").is_some())
            .collect()
    }

    /// The single probe line; None when the probe printed nothing (e.g. killed by SIGSYS).
    pub fn probe(&self) -> Option<Value> {
        self.probes().into_iter().next()
    }

    pub fn error_code(&self) -> Option<String> {
        self.report.as_ref()?.pointer("/error/code")?.as_str().map(str::to_owned)
    }

    pub fn gaps(&self) -> Vec<String> {
        self.report
            .as_ref()
            .and_then(|r| r.pointer("/enforcement/gaps"))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|g| g.as_str().map(str::to_owned).unwrap_or_else(|| g.to_string())).collect())
            .unwrap_or_default()
    }

    pub fn describe(&self) -> String {
        format!(
            "argv: {:?}\nexit: {:?} signal: {:?} after {:?}\nstdout: {}\nstderr: {}\nreport: {}",
            self.argv,
            self.code,
            self.signal,
            self.elapsed,
            truncate(&self.out(), 2000),
            truncate(&self.stderr, 2000),
            self.report.as_ref().map(|r| truncate(&r.to_string(), 2000)).unwrap_or_else(|| "none".into())
        )
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_owned()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &s[..end], s.len())
    }
}

/// Spawns `cmd`, feeds `stdin`, collects output, kills it after `limit`.
pub fn run_cmd(mut cmd: Command, stdin: &[u8], limit: Duration) -> Run {
    let argv: Vec<String> =
        std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|s| s.to_string_lossy().into_owned()).collect();
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {argv:?}: {e}"));
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let w = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let re = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let pid = child.id();
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = st
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = Some(peak.unwrap_or(0).max(kb));
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let s = child.wait().unwrap();
            let _ = w.join();
            panic!("{argv:?} hung: killed after {limit:?} (status {s:?}); stderr so far lost");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = w.join();
    let stdout = ro.join().unwrap();
    let stderr = String::from_utf8_lossy(&re.join().unwrap()).into_owned();
    use std::os::unix::process::ExitStatusExt;
    Run {
        argv,
        code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
        report: None,
        elapsed: start.elapsed(),
        peak_rss_kb: peak,
    }
}

/// One probe's observed result.
#[derive(Debug, Clone)]
pub struct Obs {
    pub label: String,
    /// "allowed", "denied", "killed(signal N)" or "no-output".
    pub outcome: String,
    pub line: Option<Value>,
    pub rc: Option<i64>,
    /// `enforcement.gaps` of the run's report.
    pub gaps: Vec<String>,
    /// The whole run, for failure messages.
    pub ctx: String,
}

impl Obs {
    pub fn is_denied(&self) -> bool {
        self.outcome == "denied" || self.outcome.starts_with("killed")
    }

    pub fn errno(&self) -> Option<i64> {
        self.line.as_ref()?.get("errno")?.as_i64()
    }

    pub fn detail(&self) -> String {
        self.line.as_ref().and_then(|l| l["detail"].as_str()).unwrap_or("").to_owned()
    }

    pub fn summary(&self) -> String {
        format!("{} errno={:?} rc={:?} detail={}", self.outcome, self.errno(), self.rc, truncate(&self.detail(), 600))
    }
}

/// The single probe line of a plain (non-batch) run.
pub fn obs_of(r: &Run, label: &str) -> Obs {
    let line = r.probe();
    let outcome = match &line {
        Some(v) => v["outcome"].as_str().unwrap_or("?").to_owned(),
        None if r.signal.is_some() => format!("killed(signal {})", r.signal.unwrap_or(0)),
        None if r.code.is_some_and(|c| c > 128 && c < 160) => format!("killed(signal {})", r.code.unwrap_or(0) - 128),
        None => "no-output".into(),
    };
    Obs { label: label.to_owned(), outcome, line, rc: r.code.map(i64::from), gaps: r.gaps(), ctx: r.describe() }
}

/// One probe test in one context, with its own temp dir: `ws/` (workspace, a git repo with
/// protected paths), `out/` (host files outside the workspace), `home/` (the run's $HOME with
/// planted secrets and rc files), `reports/`.
pub struct Case {
    pub name: String,
    pub who: Who,
    pub imp: Impl,
    pub acc: Account,
    pub dir: PathBuf,
    pub ws: PathBuf,
    pub out: PathBuf,
    pub home: PathBuf,
    pub extra_env: Vec<(String, String)>,
    /// Hand stockade an inheritable directory fd (40) and socket (41), see F9.
    pub leak_fds: bool,
    /// More fds `stockade` inherits: (an fd the test owns, the number it gets), see F17.
    pub inherit_fds: Vec<(std::os::fd::RawFd, std::os::fd::RawFd)>,
    /// Suppress the live FAIL/NOTE lines (the self-test provokes failures on purpose).
    pub quiet: bool,
    leaked: Vec<std::os::fd::OwnedFd>,
    reports: PathBuf,
    nrun: usize,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
    before_out: Snapshot,
    before_home: Snapshot,
    pub sentinel: Sentinel,
    pub listeners: Listeners,
}

pub const SECRET_ENV: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghp_canary"),
    ("AWS_SECRET_ACCESS_KEY", "aws-canary"),
    ("OPENAI_API_KEY", "sk-canary"),
    ("ANTHROPIC_API_KEY", "sk-ant-canary"),
    ("NPM_TOKEN", "npm-canary"),
    ("MY_SECRET", "secret-canary"),
    ("DATABASE_PASSWORD", "pw-canary"),
];

pub const SECRET_MARK: &str = "SBX-CANARY-SECRET";

fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, s).unwrap();
}

fn git(ws: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(ws)
        .args(["-c", "user.name=probe", "-c", "user.email=probe@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", ws)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

impl Case {
    pub fn new(name: &str, who: Who, imp: Impl) -> Result<Case, (String, String)> {
        let acc = match who {
            Who::Root if !is_root() => return Err(("root".into(), "the suite is not running as root".into())),
            Who::Root => root_account(),
            Who::User => unprivileged().map_err(|e| ("unprivileged".to_owned(), e))?,
        };
        let _ = bins();
        match imp {
            Impl::Namespaces => userns_available(&acc).map_err(|e| ("userns".to_owned(), e))?,
            Impl::LandlockOnly => match landlock_abi() {
                Some(_) => {}
                None => return Err(("landlock".into(), "Landlock is not available on this kernel".into())),
            },
        }
        // Short: socket paths under it must fit in sun_path (108 bytes).
        let short: String = name.chars().take(12).collect();
        let dir = base_dir().join(format!("{short}-{}{}-{}", &who_s(who)[..1], &imp.flag()[..1], &rand_token()[..8]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("CASE"), format!("{name} {} {}\n", who_s(who), imp.flag())).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ws, out, home, reports) = (dir.join("ws"), dir.join("out"), dir.join("home"), dir.join("reports"));
        for d in [&ws, &out, &home, &reports] {
            std::fs::create_dir_all(d).unwrap();
        }
        // Workspace: a git repo with a commit, a file to move out, a hook and config to protect.
        write(&ws.join("README.md"), "hello\n");
        write(&ws.join("f"), "movable\n");
        std::fs::create_dir_all(ws.join("d")).unwrap();
        git(&ws, &["init", "-q"]);
        git(&ws, &["add", "-A"]);
        git(&ws, &["commit", "-q", "-m", "init"]);
        // Outside: files the sandbox can read but must not change.
        write(&out.join("existing"), "outside-original\n");
        write(&out.join("victim"), "victim-original\n");
        write(&out.join("exchange"), "exchange-original\n");
        std::fs::create_dir_all(out.join("dir")).unwrap();
        write(&out.join("dir/inner"), "inner\n");
        // $HOME: rc files and secrets.
        for rc in [".bashrc", ".profile", ".zshrc", ".gitconfig", ".bash_logout"] {
            write(&home.join(rc), "# original rc\n");
        }
        for s in SECRET_FILES {
            write(&home.join(s), &format!("{SECRET_MARK} {s}\n"));
        }
        write(&home.join(".local/bin/tool"), "#!/bin/sh\necho tool\n");
        std::fs::create_dir_all(home.join(".config/autostart")).unwrap();
        std::fs::create_dir_all(home.join(".cargo")).unwrap();
        if acc.uid != 0 {
            for d in [&ws, &out, &home, &reports] {
                chown_tree(d, acc.uid, acc.gid);
            }
        }
        std::fs::set_permissions(&reports, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Fake daemon sockets: in out/, host /tmp and /run/user/$UID (hidden by the mount plan).
        let run_user = PathBuf::from(format!("/run/user/{}", acc.uid));
        if !run_user.exists() && is_root() {
            let _ = std::fs::create_dir_all(&run_user);
            let _ = std::os::unix::fs::lchown(&run_user, Some(acc.uid), Some(acc.gid));
            let _ = std::fs::set_permissions(&run_user, std::fs::Permissions::from_mode(0o700));
        }
        // ...and where Docker Desktop/colima put the daemon socket in $HOME.
        let docker_run = home.join(".docker/run");
        std::fs::create_dir_all(&docker_run).unwrap();
        if acc.uid != 0 {
            chown_tree(&home.join(".docker"), acc.uid, acc.gid);
        }
        let mut sock_dirs = vec![out.clone(), PathBuf::from("/tmp"), docker_run];
        if run_user.is_dir() {
            sock_dirs.push(run_user);
        }
        let listeners = Listeners::start(&acc, &sock_dirs);
        let sentinel = Sentinel::start(&acc);
        let before_out = snapshot(&out);
        let before_home = snapshot(&home);
        Ok(Case {
            name: format!("{name}::{}_{}", who_s(who), imp.flag().replace('-', "_")),
            who,
            imp,
            acc,
            dir,
            ws,
            out,
            home,
            extra_env: Vec::new(),
            leak_fds: false,
            inherit_fds: Vec::new(),
            quiet: false,
            leaked: Vec::new(),
            reports,
            nrun: 0,
            failures: Vec::new(),
            notes: Vec::new(),
            before_out,
            before_home,
            sentinel,
            listeners,
        })
    }

    /// Makes `cmd` inherit a directory fd of `out/` as fd 40 and a socket as fd 41.
    pub fn leak_into(&mut self, cmd: &mut Command) {
        use std::os::fd::{AsRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        if self.leaked.is_empty() {
            let d = std::fs::File::open(&self.out).unwrap();
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            self.leaked.push(OwnedFd::from(d));
            self.leaked.push(OwnedFd::from(s));
        }
        let (a, b) = (self.leaked[0].as_raw_fd(), self.leaked[1].as_raw_fd());
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(a, 40) < 0 || libc::dup2(b, 41) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Git on the host in the workspace, as a developer's plain `git` would run there (no
    /// global or system config, whoever owns the directory); `None` if it could not start.
    pub fn host_git(&self, args: &[&str]) -> Option<std::process::Output> {
        Command::new("git")
            .arg("-C")
            .arg(&self.ws)
            .args(["-c", "safe.directory=*"])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .ok()
    }

    pub fn probe_bin(&self) -> String {
        bins().probe.to_string_lossy().into_owned()
    }

    pub fn ws_s(&self) -> String {
        self.ws.to_string_lossy().into_owned()
    }

    pub fn out_s(&self) -> String {
        self.out.to_string_lossy().into_owned()
    }

    fn env_for(&self, c: &mut Command) {
        c.env_clear();
        c.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        c.env("HOME", &self.home);
        c.env("USER", &self.acc.name);
        c.env("LOGNAME", &self.acc.name);
        c.env("LANG", "C.UTF-8");
        c.env("XDG_CONFIG_HOME", self.home.join(".config"));
        c.env("XDG_STATE_HOME", self.home.join(".local/state"));
        c.env("XDG_RUNTIME_DIR", format!("/run/user/{}", self.acc.uid));
        c.env("SSH_AUTH_SOCK", self.listeners.paths[0].0.as_os_str());
        for (k, v) in SECRET_ENV {
            c.env(k, v);
        }
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
    }

    /// `stockade run` with `opts`, then `--`, then `cmd`; stdin empty. Returns the raw run.
    pub fn stockade(&mut self, opts: &[&str], cmd: &[&str], stdin: &[u8], limit: Duration) -> Run {
        self.nrun += 1;
        let report = self.reports.join(format!("r{}.json", self.nrun));
        let st = bins().stockade.to_string_lossy().into_owned();
        let rep = report.to_string_lossy().into_owned();
        let mut argv: Vec<&str> = vec![&st, "run"];
        if !opts.contains(&"--report") {
            argv.extend(["--report", rep.as_str()]);
        }
        argv.extend_from_slice(opts);
        argv.push("--");
        argv.extend_from_slice(cmd);
        let mut c = as_account(&self.acc, &argv);
        c.current_dir(&self.ws);
        self.env_for(&mut c);
        if self.leak_fds {
            self.leak_into(&mut c);
        }
        inherit_into(&mut c, &self.inherit_fds);
        let mut r = run_cmd(c, stdin, limit);
        r.report = std::fs::read(&report).ok().and_then(|b| serde_json::from_slice(&b).ok());
        r
    }

    /// Runs `cmd` under the default policy with this case's implementation. A refusal (exit
    /// 125) is a test failure that names the error code: enforcement cannot be tested then.
    pub fn sandboxed(&mut self, cmd: &[&str]) -> Run {
        self.sandboxed_with(&[], cmd)
    }

    pub fn sandboxed_with(&mut self, opts: &[&str], cmd: &[&str]) -> Run {
        let ws = self.ws_s();
        let mut o: Vec<&str> = vec!["-C", &ws, "--implementation", self.imp.flag()];
        o.extend_from_slice(opts);
        let r = self.stockade(&o, cmd, b"", Duration::from_secs(60));
        if r.code == Some(125) {
            panic!(
                "{}: stockade refused to run the probe (exit 125, code {:?}) — the sandbox cannot be tested; \
                 is the Linux backend built in?\n{}",
                self.name,
                r.error_code(),
                r.describe()
            );
        }
        r
    }

    /// The negative control: the same command with no sandbox at all.
    pub fn unsandboxed(&mut self, cmd: &[&str]) -> Run {
        let ws = self.ws_s();
        let r = self.stockade(&["-C", &ws, "-s", "danger-full-access"], cmd, b"", Duration::from_secs(60));
        assert_ne!(r.code, Some(125), "{}: danger-full-access refused:\n{}", self.name, r.describe());
        r
    }

    /// One probe run in the sandbox.
    pub fn probe(&mut self, args: &[&str]) -> Obs {
        self.batch(&[args]).remove(0)
    }

    /// One probe run without the sandbox (negative control).
    pub fn probe_unsandboxed(&mut self, args: &[&str]) -> Obs {
        self.batch_unsandboxed(&[args]).remove(0)
    }

    fn batch_script(&self, items: &[&[&str]]) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let p = q(&self.probe_bin());
        let mut script = String::new();
        for (i, it) in items.iter().enumerate() {
            script.push_str(&format!("echo '{{\"idx\":{i}}}'; {p}"));
            for a in it.iter() {
                script.push(' ');
                script.push_str(&q(a));
            }
            script.push_str("; echo \"{\\\"rc\\\":$?}\"\n");
        }
        script
    }

    fn split_batch(&self, r: &Run, items: &[&[&str]]) -> Vec<Obs> {
        let mut obs: Vec<Obs> = items
            .iter()
            .map(|it| Obs {
                label: it.join(" "),
                outcome: "no-output".into(),
                line: None,
                rc: None,
                gaps: r.gaps(),
                ctx: String::new(),
            })
            .collect();
        let mut cur: Option<usize> = None;
        for l in r.out().lines() {
            let Ok(v) = serde_json::from_str::<Value>(l) else { continue };
            if let Some(i) = v.get("idx").and_then(Value::as_u64) {
                cur = Some(i as usize);
            } else if let (Some(i), Some(rc)) = (cur, v.get("rc").and_then(Value::as_i64)) {
                obs[i].rc = Some(rc);
                if obs[i].line.is_none() && rc > 128 {
                    obs[i].outcome = format!("killed(signal {})", rc - 128);
                }
            } else if let (Some(i), Some(o)) = (cur, v.get("outcome").and_then(Value::as_str)) {
                obs[i].outcome = o.to_owned();
                obs[i].line = Some(v.clone());
            }
        }
        let d = r.describe();
        for o in &mut obs {
            o.ctx = d.clone();
        }
        obs
    }

    /// Several probes in one sandboxed run (one `sbx-probe` process per probe).
    pub fn batch(&mut self, items: &[&[&str]]) -> Vec<Obs> {
        let script = self.batch_script(items);
        let r = self.sandboxed(&["/bin/sh", "-c", &script]);
        self.split_batch(&r, items)
    }

    pub fn batch_unsandboxed(&mut self, items: &[&[&str]]) -> Vec<Obs> {
        let script = self.batch_script(items);
        let r = self.unsandboxed(&["/bin/sh", "-c", &script]);
        self.split_batch(&r, items)
    }

    pub fn fail(&mut self, msg: String) {
        if !self.quiet {
            loud(&format!("FAIL {}: {}", self.name, msg.lines().next().unwrap_or("")));
        }
        self.failures.push(msg);
    }

    pub fn note(&mut self, msg: String) {
        if !self.quiet {
            loud(&format!("NOTE {}: {msg}", self.name));
        }
        self.notes.push(msg);
    }

    /// The escape must be refused inside the sandbox.
    pub fn denied(&mut self, id: &str, o: &Obs) -> bool {
        if o.is_denied() {
            return true;
        }
        self.fail(format!("{id}: ESCAPE under {}: `{}` -> {}\n{}", self.imp.flag(), o.label, o.summary(), o.ctx));
        false
    }

    /// The control must work inside the sandbox.
    pub fn allowed(&mut self, id: &str, o: &Obs) -> bool {
        if o.outcome == "allowed" {
            return true;
        }
        self.fail(format!(
            "{id}: control failed under {}: `{}` -> {} (the sandbox breaks normal work)\n{}",
            self.imp.flag(),
            o.label,
            o.summary(),
            o.ctx
        ));
        false
    }

    /// The negative control: without the sandbox the probe must detect the escape.
    pub fn escapes(&mut self, id: &str, o: &Obs) -> bool {
        if o.outcome == "allowed" {
            return true;
        }
        self.fail(format!(
            "{id}: negative control did not detect the escape without a sandbox: `{}` -> {} (the probe is blind)\n{}",
            o.label,
            o.summary(),
            o.ctx
        ));
        false
    }

    /// Denied under `namespaces`; under `landlock-only` either denied or allowed AND listed in
    /// the report's `enforcement.gaps` (matching one of `gap_words`).
    pub fn denied_or_gap(&mut self, id: &str, o: &Obs, gap_words: &[&str]) -> bool {
        if self.imp == Impl::Namespaces || o.is_denied() {
            return self.denied(id, o);
        }
        if o.outcome != "allowed" {
            self.fail(format!("{id}: unexpected outcome {}\n{}", o.summary(), o.ctx));
            return false;
        }
        match o.gaps.iter().find(|g| gap_words.iter().any(|w| g.to_lowercase().contains(&w.to_lowercase()))) {
            Some(g) => {
                let g = g.clone();
                self.note(format!("landlock-only: {id} `{}` is allowed (documented gap: {g})", o.label));
                true
            }
            None => {
                let gaps = o.gaps.clone();
                self.fail(format!(
                    "{id}: `{}` allowed under landlock-only but not listed in enforcement.gaps (looked for {gap_words:?} in {gaps:?})\n{}",
                    o.label, o.ctx
                ));
                false
            }
        }
    }

    /// An action of a residual class (see `Residual`): denied is fine; allowed passes under
    /// namespaces only when the report lists that residual gap, under landlock-only when it lists
    /// a gap matching `ll_words` (as `denied_or_gap`).
    pub fn denied_or_residual(&mut self, id: &str, o: &Obs, r: Residual, ll_words: &[&str]) -> bool {
        if self.imp == Impl::LandlockOnly || o.is_denied() {
            return self.denied_or_gap(id, o, ll_words);
        }
        if o.outcome != "allowed" {
            self.fail(format!("{id}: unexpected outcome {}\n{}", o.summary(), o.ctx));
            return false;
        }
        self.residual_listed(id, &format!("`{}` is allowed", o.label), &o.gaps.clone(), r, &o.ctx.clone())
    }

    /// Under namespaces: `what` happened, which passes only when `gaps` lists residual gap `r`
    /// (printed as a NOTE); otherwise a failure.
    pub fn residual_listed(&mut self, id: &str, what: &str, gaps: &[String], r: Residual, ctx: &str) -> bool {
        match r.find(gaps) {
            Some(g) => {
                self.note(format!("{}: {id} {what} (documented residual gap: {g})", self.imp.flag()));
                true
            }
            None => {
                self.fail(format!(
                    "{id}: ESCAPE under {}: {what}, and the report does not list the residual gap {r:?} \
                     (looked for all of {:?} in {gaps:?})\n{ctx}",
                    self.imp.flag(),
                    r.words()
                ));
                false
            }
        }
    }

    /// The documented gap (from a report) that matches one of `gap_words`.
    pub fn gap_listed(gaps: &[String], gap_words: &[&str]) -> Option<String> {
        gaps.iter().find(|g| gap_words.iter().any(|w| g.to_lowercase().contains(&w.to_lowercase()))).cloned()
    }

    /// Host-side checks after the sandboxed runs: out/ and home/ unchanged, sentinel alive,
    /// listeners reached by nobody.
    pub fn host_clean(&mut self, what: &str) {
        let d1 = snapshot_diff(&self.before_out, &snapshot(&self.out));
        let d2 = snapshot_diff(&self.before_home, &snapshot(&self.home));
        let d: Vec<String> = d1.into_iter().chain(d2).filter(|l| !l.contains("sbx-daemon-")).collect();
        if !d.is_empty() {
            self.fail(format!("{what}: host files outside the workspace changed: {d:#?}"));
        }
        if !self.sentinel.alive() {
            self.fail(format!("{what}: the host sentinel process {} died", self.sentinel.pid()));
        }
        let reached = self.listeners.reached();
        if !reached.is_empty() {
            self.fail(format!("{what}: host listeners were reached: {reached:#?}"));
        }
    }

    /// Re-baselines host snapshots (after a negative control changed them on purpose).
    pub fn rebaseline(&mut self) {
        self.before_out = snapshot(&self.out);
        self.before_home = snapshot(&self.home);
        let _ = self.listeners.reached();
        if !self.sentinel.alive() {
            self.sentinel = Sentinel::start(&self.acc);
        }
    }

    pub fn finish(self) {
        if self.failures.is_empty() {
            if std::env::var_os("STOCKADE_PROBE_KEEP").is_none() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            return;
        }
        panic!(
            "{}: {} failure(s) (dir kept: {}):\n\n{}",
            self.name,
            self.failures.len(),
            self.dir.display(),
            self.failures.join("\n\n")
        );
    }
}

/// Owned strings to a list of probe argument lists.
pub fn sv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

impl Case {
    /// `batch` for owned argument lists.
    pub fn run_batch(&mut self, items: &[Vec<String>], sandbox: bool) -> Vec<Obs> {
        let refs: Vec<Vec<&str>> = items.iter().map(|i| i.iter().map(String::as_str).collect()).collect();
        let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        if sandbox {
            self.batch(&slices)
        } else {
            self.batch_unsandboxed(&slices)
        }
    }

    /// Each item must be denied in the sandbox (under landlock-only, `gap` words allow a
    /// documented gap); `neg` lists indices whose negative control must detect the escape.
    pub fn expect_all_denied(&mut self, id: &str, items: &[Vec<String>], gap: Option<&[&str]>, neg: &[usize]) {
        if self.imp == Impl::Namespaces && !neg.is_empty() {
            let roots = [self.out.clone(), self.ws.clone(), self.home.clone()];
            let before: Vec<Snapshot> = roots.iter().map(|r| snapshot(r)).collect();
            let negs: Vec<Vec<String>> = neg.iter().map(|i| items[*i].clone()).collect();
            for o in self.run_batch(&negs, false) {
                self.escapes(id, &o);
            }
            // What the controls made goes again: left in place, it would make the sandboxed
            // attempt below fail with EEXIST whatever the sandbox does (a `mkdir` or `link` of
            // the same name), and the check could not fail.
            for (root, b) in roots.iter().zip(&before) {
                let after = snapshot(root);
                let mut made: Vec<&PathBuf> = after.keys().filter(|k| !b.contains_key(*k)).collect();
                made.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
                for p in made {
                    let dir = std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
                    let _ = if dir { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
                }
            }
            self.rebaseline();
        }
        for o in self.run_batch(items, true) {
            match gap {
                Some(g) => self.denied_or_gap(id, &o, g),
                None => self.denied(id, &o),
            };
        }
    }

    pub fn expect_all_allowed(&mut self, id: &str, items: &[Vec<String>]) {
        for o in self.run_batch(items, true) {
            self.allowed(id, &o);
        }
    }
}

/// Makes `cmd` inherit each `(fd, n)` of `fds` as fd `n`, without close-on-exec. The fds stay
/// the caller's, open until the command has started.
pub fn inherit_into(cmd: &mut Command, fds: &[(std::os::fd::RawFd, std::os::fd::RawFd)]) {
    use std::os::unix::process::CommandExt;
    if fds.is_empty() {
        return;
    }
    let fds = fds.to_vec();
    // SAFETY: only async-signal-safe dup2/fcntl calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, n) in &fds {
                // dup2 onto itself keeps close-on-exec, hence the explicit F_SETFD.
                if libc::dup2(*fd, *n) < 0 || libc::fcntl(*n, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

pub fn who_s(w: Who) -> &'static str {
    match w {
        Who::Root => "root",
        Who::User => "user",
    }
}

pub fn run_case(name: &str, who: Who, imp: Impl, body: fn(&mut Case)) {
    let mut c = match Case::new(name, who, imp) {
        Ok(c) => c,
        Err((feature, reason)) => {
            skip(&format!("{name}::{}_{}", who_s(who), imp.flag().replace('-', "_")), &feature, &reason);
            return;
        }
    };
    body(&mut c);
    c.host_clean("after all runs");
    c.finish();
}

/// One probe test per context: `NAME::{root,user}_{namespaces,landlock_only}`, each with its own
/// temp dir (see `Case`).
macro_rules! probe_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn root_namespaces() {
                $crate::harness::run_case(
                    stringify!($name),
                    $crate::harness::Who::Root,
                    $crate::harness::Impl::Namespaces,
                    $body,
                )
            }
            #[test]
            fn root_landlock_only() {
                $crate::harness::run_case(
                    stringify!($name),
                    $crate::harness::Who::Root,
                    $crate::harness::Impl::LandlockOnly,
                    $body,
                )
            }
            #[test]
            fn user_namespaces() {
                $crate::harness::run_case(
                    stringify!($name),
                    $crate::harness::Who::User,
                    $crate::harness::Impl::Namespaces,
                    $body,
                )
            }
            #[test]
            fn user_landlock_only() {
                $crate::harness::run_case(
                    stringify!($name),
                    $crate::harness::Who::User,
                    $crate::harness::Impl::LandlockOnly,
                    $body,
                )
            }
        }
    };
}
