//! The thin, macOS-only half: probe the host, start `sandbox-exec` with the generated
//! profile, relay signals, enforce the timeout, read denials from the unified log.
//!
//! Signals: the forwarded ones are blocked in the calling thread for the length of the run
//! and collected by polling, so `stockade run` (single-threaded when it calls `run`) passes
//! Ctrl-C and `kill` on to the command. A library caller with other threads that do not
//! block those signals may have them delivered there instead.
//!
//! Everything decided here comes from the pure modules ([`crate::profile`],
//! [`crate::command`], [`crate::denial`], [`crate::enforcement`]); this file only performs.
//! `sandbox-exec(1)`: `man sandbox-exec`; `log(1)`: `man log`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio as StdStdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stockade_policy::{CommandSpec, Denial, DoctorReport, ExitStatus, Mode, NetworkMode, Outcome, Policy, Stdio};

use crate::command::{child_env, resolve_program, sandbox_exec_argv, Probe, Resolution, SANDBOX_EXEC};
use crate::denial::{log_stream_args, Collector};
use crate::enforcement::{doctor_report, enforcement, HostProbe};
use crate::profile::{check_protected_paths, generate, HostFacts, Profile};
use crate::{sys, Error, MacosBackend, Tag};

/// `log(1)`, by absolute path.
const LOG: &str = "/usr/bin/log";
/// How long to wait for `log stream` to start before running the command anyway.
const LOG_READY: Duration = Duration::from_millis(500);
/// How long to keep reading the log after the command ends: reports arrive asynchronously.
const LOG_GRACE: Duration = Duration::from_millis(300);
/// How often the wait loop looks at the child, the clock and pending signals.
const POLL: Duration = Duration::from_millis(5);

/// Runs `cmd` under `policy` (see [`crate::MacosBackend`]).
pub(crate) fn run(backend: &MacosBackend, policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Error> {
    if policy.mode == Mode::DangerFullAccess {
        return Err(Error::NotSandboxed);
    }
    if policy.network.mode == NetworkMode::Allow && backend.proxy.is_none() {
        return Err(Error::NetworkAllowlistUnavailable);
    }
    sandbox_exec_present().map_err(|source| Error::SandboxExecMissing { source })?;
    check_protected_paths(policy, is_symlink)?;

    let tag = Tag::fresh();
    let tmp = if policy.filesystem.private_tmp { Some(PrivateTmp::create(&tag)?) } else { None };
    let terminals = match cmd.stdio {
        Stdio::Null => Vec::new(),
        _ => (0..3).filter_map(sys::terminal_path).collect(),
    };
    let roots: Vec<std::path::PathBuf> = policy.filesystem.writable_roots.iter().map(|r| r.value.clone()).collect();
    let facts = HostFacts {
        private_tmp: tmp.as_ref().map(|t| t.path.clone()),
        terminals,
        proxy: backend.proxy.clone(),
        tag,
        git_metadata: crate::git_metadata::git_metadata(&roots),
    };
    let profile = generate(policy, &facts)?;

    let env = child_env(policy, &cmd.host_env, facts.private_tmp.as_deref(), backend.proxy.as_ref());
    let cwd = cmd.cwd.clone().unwrap_or_else(|| policy.workspace.clone());
    let log_available = Path::new(LOG).exists();
    let report = enforcement(policy, backend.proxy.is_some(), log_available);
    let started = Instant::now();
    let path_var = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
    match resolve_program(&cmd.program, path_var, &cwd, probe_file) {
        Resolution::Found(_) => {}
        Resolution::NotFound => return Ok(Outcome::new(ExitStatus::NotFound, started.elapsed(), "seatbelt", report)),
        Resolution::NotExecutable(_) => {
            return Ok(Outcome::new(ExitStatus::NotExecutable, started.elapsed(), "seatbelt", report))
        }
    }

    // Block the forwarded signals before any thread or child exists, so they stay pending
    // for this thread (children get a clean mask from std).
    let signals = sys::SignalBlock::new().map_err(|source| Error::Signals { source })?;
    // `log stream` takes a moment to attach; let it do so while the profile is checked.
    let log = if log_available { LogReader::start(&facts.tag) } else { None };
    preflight(&profile)?;
    if let Some(l) = &log {
        l.wait_ready();
    }

    let mut c = Command::new(SANDBOX_EXEC);
    c.args(sandbox_exec_argv(&profile, &cmd.program, &cmd.args))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cwd);
    if cmd.stdio == Stdio::Null {
        c.stdin(StdStdio::null()).stdout(StdStdio::null()).stderr(StdStdio::null());
    }
    sys::new_session(&mut c);
    sys::limit_resources(&mut c, policy.process.max_open_files);
    let started = Instant::now();
    let mut child = c.spawn().map_err(|source| Error::Spawn { source })?;
    let pgid = child.id();
    let status = wait(&mut child, pgid, policy.process.timeout, &signals, started);
    // Whatever is left of the group (background jobs) does not outlive the run.
    let _ = sys::kill_group(pgid, libc::SIGKILL);
    drop(signals);
    let status = status?;

    let mut outcome = Outcome::new(status, started.elapsed(), "seatbelt", report);
    outcome.denials = log.map(|l| l.finish(policy, &facts.tag)).unwrap_or_default();
    drop(tmp);
    Ok(outcome)
}

fn wait(
    child: &mut Child,
    pgid: u32,
    timeout: Option<Duration>,
    signals: &sys::SignalBlock,
    started: Instant,
) -> Result<ExitStatus, Error> {
    let wait_err = |source| Error::Wait { source };
    loop {
        if let Some(s) = child.try_wait().map_err(wait_err)? {
            return Ok(from_std(s));
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            sys::kill_group(pgid, libc::SIGKILL).map_err(wait_err)?;
            child.wait().map_err(wait_err)?;
            return Ok(ExitStatus::TimedOut);
        }
        if let Some(sig) = signals.take_pending().map_err(|source| Error::Signals { source })? {
            sys::kill_group(pgid, sig).map_err(wait_err)?;
        }
        std::thread::sleep(POLL);
    }
}

fn from_std(s: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match s.signal() {
        Some(signal) => ExitStatus::Signaled { signal },
        None => ExitStatus::Exited { code: s.code().unwrap_or(1) },
    }
}

/// What `stockade doctor` reports on this Mac.
pub(crate) fn doctor(backend: &MacosBackend, policy: &Policy) -> DoctorReport {
    let sandbox_exec = sandbox_exec_present().map_err(|e| e.to_string());
    let os_version = Command::new("/usr/bin/sw_vers")
        .arg("-productVersion")
        .stdin(StdStdio::null())
        .stderr(StdStdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned());
    let profile_compiles = (sandbox_exec.is_ok() && policy.mode != Mode::DangerFullAccess).then(|| {
        let tmp = std::fs::canonicalize(std::env::temp_dir()).ok();
        let facts = HostFacts {
            private_tmp: tmp,
            terminals: vec![],
            proxy: backend.proxy.clone(),
            tag: Tag::fresh(),
            git_metadata: vec![],
        };
        match generate(policy, &facts) {
            Ok(p) => preflight(&p).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    });
    let probe = HostProbe {
        sandbox_exec,
        os_version,
        profile_compiles,
        log_available: Path::new(LOG).exists(),
        proxy_available: backend.proxy.is_some(),
    };
    doctor_report(policy, &probe)
}

fn sandbox_exec_present() -> std::io::Result<()> {
    let m = std::fs::metadata(SANDBOX_EXEC)?;
    if m.is_file() && m.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "not an executable file"))
    }
}

/// Compiles and applies the profile once around `/usr/bin/true`, so a profile this macOS
/// rejects fails as [`Error::ProfileRejected`] (exit 125) instead of looking like the
/// command's own failure.
fn preflight(profile: &Profile) -> Result<(), Error> {
    let out = Command::new(SANDBOX_EXEC)
        .args(sandbox_exec_argv(profile, "/usr/bin/true".as_ref(), &[]))
        .env_clear()
        .current_dir("/")
        .stdin(StdStdio::null())
        .stdout(StdStdio::null())
        .stderr(StdStdio::piped())
        .output()
        .map_err(|source| Error::Spawn { source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::ProfileRejected { stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
    }
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

fn probe_file(p: &Path) -> Probe {
    match std::fs::metadata(p) {
        Err(_) => Probe::Missing,
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Probe::Executable,
        Ok(_) => Probe::NotExecutable,
    }
}

/// This run's private temp dir, removed when dropped.
struct PrivateTmp {
    path: PathBuf,
}

impl PrivateTmp {
    /// Creates `$TMPDIR/stockade-<tag>` (mode 0700) inside the per-user temp dir and returns
    /// its realpath (`/private/var/folders/...`), which is what Seatbelt compares against.
    fn create(tag: &Tag) -> Result<Self, Error> {
        let base = std::env::temp_dir();
        let path = base.join(tag.as_str());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| Error::PrivateTmpCreate { path: path.clone(), source })?;
        let real = std::fs::canonicalize(&path).map_err(|source| Error::PrivateTmpCreate { path, source })?;
        Ok(PrivateTmp { path: real })
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks the command may have planted.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running `log stream` for one tag.
struct LogReader {
    child: Child,
    lines: Option<JoinHandle<Vec<String>>>,
    ready: mpsc::Receiver<()>,
    started: Instant,
}

impl LogReader {
    /// Starts `log stream`; `None` if it cannot start (denials then go unreported, which
    /// the enforcement report says).
    fn start(tag: &Tag) -> Option<Self> {
        let mut child = Command::new(LOG)
            .args(log_stream_args(tag))
            .stdin(StdStdio::null())
            .stdout(StdStdio::piped())
            .stderr(StdStdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        let (ready, is_ready) = mpsc::channel();
        let needle = tag.as_str().to_owned();
        let lines = std::thread::spawn(move || {
            let mut keep = Vec::new();
            let mut first = true;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if first {
                    let _ = ready.send(());
                    first = false;
                }
                if line.contains(&needle) {
                    keep.push(line);
                }
            }
            keep
        });
        Some(LogReader { child, lines: Some(lines), ready: is_ready, started: Instant::now() })
    }

    /// Waits until `log stream` printed its first line (its header, once attached), at most
    /// [`LOG_READY`] after it started: denials before that point go unreported.
    fn wait_ready(&self) {
        let left = LOG_READY.saturating_sub(self.started.elapsed());
        let _ = self.ready.recv_timeout(left);
    }

    /// Waits for late reports, stops the stream and turns its lines into denials.
    fn finish(mut self, policy: &Policy, tag: &Tag) -> Vec<Denial> {
        std::thread::sleep(LOG_GRACE);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines = self.lines.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let mut c = Collector::default();
        for l in &lines {
            c.push_line(policy, tag, l);
        }
        c.finish()
    }
}

impl Drop for LogReader {
    /// Stops `log stream` on every path out of a run, including errors before the command
    /// started, so no reader outlives the run.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
