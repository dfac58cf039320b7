//! # stockade-linux: how Linux enforces a stockade policy
//!
//! This crate will hold the Linux backend (issue 3). Until it lands, [`LinuxBackend`] refuses every
//! sandboxed run with a clear error, so `stockade run` exits 125 instead of running a command
//! without the sandbox the policy asks for.
#![deny(missing_docs)]

use stockade_policy::{Backend, Check, CheckStatus, CommandSpec, Diagnose, DoctorReport, Enforcement, Outcome, Policy};

/// The Linux backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxBackend;

/// Failures of the Linux backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend is not implemented in this build.
    #[error("the Linux sandbox backend is not available in this build of stockade")]
    NotImplemented,
}

impl Diagnose for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::NotImplemented => "backend_unavailable",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            "only `--sandbox danger-full-access` (where requirements allow it) runs commands on this platform for now"
                .to_owned(),
        )
    }
}

impl Backend for LinuxBackend {
    type Error = Error;

    fn doctor(&self, _policy: &Policy) -> DoctorReport {
        DoctorReport {
            platform: "linux".to_owned(),
            checks: vec![Check {
                name: "backend".to_owned(),
                status: CheckStatus::Missing,
                detail: Error::NotImplemented.to_string(),
                fix: Error::NotImplemented.hint(),
            }],
            implementation: None,
            enforcement: Enforcement::default(),
        }
    }

    fn run(&self, _policy: &Policy, _cmd: &CommandSpec) -> Result<Outcome, Error> {
        Err(Error::NotImplemented)
    }
}
