//! What a sandboxed run produced: exit status, what was enforced, and what was denied.
//!
//! The `Outcome` is shared by every backend and is the payload of `--report` and `--json`.
//! It is shaped for agents as much as for people: denials are structured events naming the
//! layer, the object and the rule, with a suggested *scoped* grant (one path, one host) that a
//! person could approve for one command instead of turning the sandbox off.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitStatus {
    /// Exited normally with this code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// Killed by a signal (Unix).
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// Killed by stockade because the policy's timeout expired.
    TimedOut,
    /// The program was not found.
    NotFound,
    /// The program was found but could not be executed (permissions, format).
    NotExecutable,
}

impl ExitStatus {
    /// The exit code the CLI uses for this status: the command's code, 128+N for signal N,
    /// 124 for a timeout, 127 for not found, 126 for not executable.
    pub fn cli_code(self) -> i32 {
        match self {
            ExitStatus::Exited { code } => code,
            ExitStatus::Signaled { signal } => 128 + signal,
            ExitStatus::TimedOut => 124,
            ExitStatus::NotFound => 127,
            ExitStatus::NotExecutable => 126,
        }
    }
}

/// How completely one layer was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    /// Applied as the policy asks.
    Full,
    /// Applied with gaps named in the detail.
    Partial,
    /// Not applied.
    None,
}

/// Whether a layer must be applied for a run to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Apply what the host supports and report the rest.
    BestEffort,
    /// Refuse to run when the layer cannot be applied in full.
    Required,
}

/// One layer of enforcement and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// A stable id: `userns`, `mountns`, `pidns`, `netns`, `landlock`, `seccomp`, `acl`, ...
    pub layer: String,
    /// Full, partial or none.
    pub status: LayerStatus,
    /// What was applied, or what is missing and why.
    pub detail: String,
}

/// Every layer of one run (or of what `doctor` predicts a run would use).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Enforcement {
    /// The layers, in the order they are applied.
    pub layers: Vec<LayerReport>,
    /// Promises of the policy this implementation cannot keep on this host, in words.
    pub gaps: Vec<String>,
}

/// What kind of action was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialKind {
    /// Reading a file or listing a directory.
    FileRead,
    /// Creating, changing or deleting a file.
    FileWrite,
    /// A network connection.
    Network,
    /// Signalling, tracing or inspecting another process.
    Process,
    /// A system call refused by the syscall filter.
    Syscall,
    /// A resource limit was hit.
    Resource,
}

/// A narrow, one-command widening of the policy that would have allowed a denied action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grant {
    /// Make this path writable for one command.
    WritePath {
        /// The path.
        path: PathBuf,
    },
    /// Make this path readable for one command.
    ReadPath {
        /// The path.
        path: PathBuf,
    },
    /// Allow this host (and port) for one command.
    Host {
        /// The host rule, as `--allow-host` takes it.
        rule: String,
    },
}

/// One denied action, as observed by a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The layer that denied it (same ids as [`LayerReport::layer`]).
    pub layer: String,
    /// What kind of action.
    pub kind: DenialKind,
    /// The object: a path, `host:port`, a syscall name.
    pub target: String,
    /// The policy rule responsible, in words, when known.
    pub rule: Option<String>,
    /// A grant that would allow exactly this, when one makes sense.
    pub suggested_grant: Option<Grant>,
}

/// One connection decision of the network proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkEvent {
    /// Seconds since the Unix epoch, with milliseconds.
    pub time: f64,
    /// The requested host name or address.
    pub host: String,
    /// The requested port.
    pub port: u16,
    /// Whether the connection was allowed.
    pub allowed: bool,
    /// The rule that matched, or `None` for "no rule".
    pub rule: Option<String>,
    /// Bytes sent by the command.
    pub bytes_out: u64,
    /// Bytes received by the command.
    pub bytes_in: u64,
}

/// The result of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// How the command ended.
    pub status: ExitStatus,
    /// Whether the timeout expired (same as `status == TimedOut`, kept flat for consumers).
    pub timed_out: bool,
    /// Wall-clock time from spawn to exit.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// The implementation used (`namespaces`, `landlock-only`, `elevated`, `seatbelt`, `none`).
    pub implementation: String,
    /// What was enforced.
    pub enforcement: Enforcement,
    /// Denied actions observed during the run.
    pub denials: Vec<Denial>,
    /// Network decisions of the proxy, when the policy has an allowlist.
    pub network: Vec<NetworkEvent>,
    /// What the run did that the sandbox could not prevent (one of the backend's listed gaps)
    /// and that the user should look at before trusting the workspace again.
    pub warnings: Vec<Warning>,
}

/// Something in a writable root that a listed gap let a command write and that matters later
/// on the host, found by a check after the run (see [`Outcome::warnings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable identifier for agents, such as `git_commondir_created`.
    pub code: String,
    /// The path concerned.
    pub path: PathBuf,
    /// In words: what it does and what to do about it.
    pub message: String,
}

impl Outcome {
    /// An outcome for a command that ended with `status` after `duration`.
    pub fn new(
        status: ExitStatus,
        duration: Duration,
        implementation: impl Into<String>,
        enforcement: Enforcement,
    ) -> Self {
        Outcome {
            status,
            timed_out: status == ExitStatus::TimedOut,
            duration,
            implementation: implementation.into(),
            enforcement,
            denials: Vec::new(),
            network: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_codes() {
        assert_eq!(ExitStatus::Exited { code: 3 }.cli_code(), 3);
        assert_eq!(ExitStatus::Signaled { signal: 9 }.cli_code(), 137);
        assert_eq!(ExitStatus::TimedOut.cli_code(), 124);
        assert_eq!(ExitStatus::NotFound.cli_code(), 127);
        assert_eq!(ExitStatus::NotExecutable.cli_code(), 126);
    }

    #[test]
    fn serializes_flat_for_reports() {
        let o = Outcome::new(ExitStatus::TimedOut, Duration::from_millis(1500), "none", Enforcement::default());
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["status"]["kind"], "timed_out");
        assert_eq!(v["timed_out"], true);
        assert_eq!(v["duration"], 1.5);
    }
}
