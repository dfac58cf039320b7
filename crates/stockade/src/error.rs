//! The facade's error type.

use stockade_policy::Diagnose;

/// Why a run could not happen. The command's own failures are not errors: they are in the
/// [`Outcome`](crate::Outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy could not be resolved or was refused by requirements.
    #[error(transparent)]
    Policy(#[from] stockade_policy::Error),
    /// The platform backend refused or failed to set up the sandbox.
    #[error(transparent)]
    Backend(BackendFailure),
    /// The command could not be started (in `danger-full-access` mode).
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The network allowlist proxy could not be started.
    #[error("cannot start the network allowlist proxy")]
    Network {
        /// The proxy's error.
        #[source]
        source: stockade_net::Error,
    },
    /// The private directory for the proxy socket could not be created.
    #[error("cannot create the proxy socket directory `{path}`", path = path.display())]
    NetworkDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for or killing the command failed.
    #[error("lost track of the command")]
    Wait {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A stable snake_case code (documented in docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Policy(e) => e.code(),
            Error::Backend(e) => e.0.code(),
            Error::Network { source } => source.code(),
            Error::NetworkDir { .. } => "net_socket_dir",
            Error::Spawn { .. } => "spawn_failed",
            Error::Wait { .. } => "wait_failed",
        }
    }

    /// What the user can do about it, if anything.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Policy(e) => e.hint(),
            Error::Backend(e) => e.0.hint(),
            Error::Network { .. } | Error::NetworkDir { .. } => {
                Some("check that the temp directory is writable; `stockade doctor` shows the network setup".into())
            }
            Error::Spawn { .. } | Error::Wait { .. } => None,
        }
    }
}

/// A backend's error, boxed so the facade's type is the same on every platform.
#[derive(Debug)]
pub struct BackendFailure(pub Box<dyn Diagnose>);

impl std::fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
