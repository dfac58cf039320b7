//! The messages between stockade and the runner of the elevated implementation.
//!
//! stockade (the real user) cannot start a process under another account's restricted token:
//! `CreateProcessAsUserW` needs a privilege ordinary users lack unless the token is a restricted
//! version of the caller's own. So stockade starts `stockade-runner.exe` as the sandbox account
//! (`CreateProcessWithLogonW`), and the runner, restricting *its own* token, starts the command.
//! They talk over a named pipe whose DACL admits only the sandbox account, after stockade has
//! checked the client's process id. One request, one response, each a line of JSON.

use serde::{Deserialize, Serialize};
use stockade_policy::ExitStatus;

use crate::launch_plan::JobLimits;
use crate::sid::Sid;

/// What the runner must start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Restricting SIDs besides the runner's own logon SID.
    pub restricting_sids: Vec<Sid>,
    /// The resolved program.
    pub application: String,
    /// The command line, UTF-16 code units (keeps unpaired surrogates).
    pub command_line: Vec<u16>,
    /// Working directory.
    pub cwd: String,
    /// The environment.
    pub environment: Vec<(String, String)>,
    /// Job limits.
    pub job: JobLimits,
    /// `winsta\desktop`, or `None` for the runner's.
    pub desktop: Option<String>,
    /// Timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// `Stdio::Null` instead of the runner's own stdio.
    pub stdio_null: bool,
}

/// How the command ended, as the runner reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunStatus {
    /// Exited with a code.
    Exited {
        /// The code.
        code: i32,
    },
    /// Killed at the timeout.
    TimedOut,
    /// Program not found.
    NotFound,
    /// Program not executable.
    NotExecutable,
    /// The runner failed; the stable error code.
    Failed {
        /// Win32 error code.
        win32: u32,
    },
}

impl RunStatus {
    /// From the launcher's status.
    pub fn from_exit(s: ExitStatus) -> RunStatus {
        match s {
            ExitStatus::Exited { code } => RunStatus::Exited { code },
            ExitStatus::TimedOut => RunStatus::TimedOut,
            ExitStatus::NotFound => RunStatus::NotFound,
            ExitStatus::NotExecutable => RunStatus::NotExecutable,
            ExitStatus::Signaled { signal } => RunStatus::Exited { code: 128 + signal },
        }
    }

    /// To the outcome's status; `None` for a runner failure.
    pub fn to_exit(self) -> Option<ExitStatus> {
        match self {
            RunStatus::Exited { code } => Some(ExitStatus::Exited { code }),
            RunStatus::TimedOut => Some(ExitStatus::TimedOut),
            RunStatus::NotFound => Some(ExitStatus::NotFound),
            RunStatus::NotExecutable => Some(ExitStatus::NotExecutable),
            RunStatus::Failed { .. } => None,
        }
    }
}

/// The runner's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResponse {
    /// How the command ended.
    pub status: RunStatus,
    /// Its wall-clock time in milliseconds.
    pub duration_ms: u64,
}

/// One message as a line.
pub fn encode<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_default();
    s.push('\n');
    s
}

/// A line back into a message.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch_plan::ui_limits;

    #[test]
    fn messages_round_trip_as_single_lines() {
        let req = RunRequest {
            restricting_sids: vec![Sid::everyone(), Sid::synthetic(&[1; 16], "r")],
            application: r"C:\Windows\System32\cmd.exe".into(),
            command_line: vec![0xd800, b'a' as u16, b'\n' as u16],
            cwd: r"C:\src\app".into(),
            environment: vec![("A".into(), "line\nbreak".into())],
            job: JobLimits {
                kill_on_close: true,
                breakaway: false,
                die_on_unhandled_exception: true,
                active_processes: Some(8),
                job_memory: None,
                ui_limits: ui_limits::ALL,
            },
            desktop: Some(r"WinSta0\stockade-1".into()),
            timeout_ms: Some(5000),
            stdio_null: false,
        };
        let line = encode(&req);
        assert_eq!(line.matches('\n').count(), 1, "one line, newlines escaped");
        assert_eq!(decode::<RunRequest>(&line).unwrap(), req);
        let resp = RunResponse { status: RunStatus::Exited { code: -1 }, duration_ms: 12 };
        assert_eq!(decode::<RunResponse>(&encode(&resp)).unwrap(), resp);
        assert_eq!(RunStatus::from_exit(ExitStatus::TimedOut).to_exit(), Some(ExitStatus::TimedOut));
        assert_eq!(RunStatus::Failed { win32: 5 }.to_exit(), None);
    }
}
