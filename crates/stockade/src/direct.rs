//! Running a command with no sandbox, for `danger-full-access`.
//!
//! This mode exists because some work genuinely needs the whole machine, and because a user
//! who cannot get it through stockade will turn stockade off entirely. It is reachable only
//! when requirements allow the mode, and the outcome says `implementation: "none"`. The host
//! environment passes through unchanged: with no sandbox there is nothing to protect it from.

use std::process::Command;
use std::time::{Duration, Instant};

use stockade_policy::{CommandSpec, Enforcement, ExitStatus, LayerReport, LayerStatus, Outcome, Policy, Stdio};

use crate::Error;

/// Spawns `cmd` directly and waits, enforcing only the policy's timeout.
pub(crate) fn run(policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Error> {
    let mut c = Command::new(&cmd.program);
    c.args(&cmd.args)
        .current_dir(cmd.cwd.as_deref().unwrap_or(&policy.workspace))
        .env_clear()
        .envs(cmd.host_env.iter().map(|(k, v)| (k, v)));
    if cmd.stdio == Stdio::Null {
        c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    }
    #[cfg(unix)]
    if policy.process.timeout.is_some() {
        // Its own process group, so a timeout can kill the whole tree.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
    }
    let enforcement = Enforcement {
        layers: vec![LayerReport {
            layer: "sandbox".into(),
            status: LayerStatus::None,
            detail: "danger-full-access: no sandbox".into(),
        }],
        gaps: vec!["every promise: the command runs with the user's full access".into()],
    };
    let started = Instant::now();
    let mut child = match c.spawn() {
        Ok(child) => child,
        Err(e) => {
            let status = match e.kind() {
                std::io::ErrorKind::NotFound => ExitStatus::NotFound,
                std::io::ErrorKind::PermissionDenied => ExitStatus::NotExecutable,
                _ => return Err(Error::Spawn { program: cmd.program.to_string_lossy().into_owned(), source: e }),
            };
            return Ok(Outcome::new(status, started.elapsed(), "none", enforcement));
        }
    };
    let wait_err = |source| Error::Wait { source };
    let status = match policy.process.timeout {
        None => from_std(child.wait().map_err(wait_err)?),
        Some(limit) => loop {
            if let Some(s) = child.try_wait().map_err(wait_err)? {
                break from_std(s);
            }
            if started.elapsed() >= limit {
                kill_tree(child.id());
                let _ = child.kill();
                child.wait().map_err(wait_err)?;
                break ExitStatus::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(5));
        },
    };
    Ok(Outcome::new(status, started.elapsed(), "none", enforcement))
}

fn from_std(s: std::process::ExitStatus) -> ExitStatus {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&s) {
        return ExitStatus::Signaled { signal };
    }
    ExitStatus::Exited { code: s.code().unwrap_or(1) }
}

#[cfg(unix)]
fn kill_tree(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(not(unix))]
fn kill_tree(_pid: u32) {
    // Without process groups the direct mode ends the child itself (`Child::kill`); the
    // sandboxed backends use job objects for the whole tree.
}
