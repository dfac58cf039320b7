//! The one error type of the Linux backend.
//!
//! Every variant names the operation (and the syscall and path where there is one) and maps to
//! a stable snake_case code through [`Diagnose::code`], which `--json` output carries and tests
//! assert. Hints name the fix: a sysctl, the AppArmor profile in `contrib/apparmor/`, a kernel
//! version, or `stockade doctor`.

use std::io;
use std::path::PathBuf;

use stockade_policy::Diagnose;

/// Failures of the Linux backend. Each one means the command did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A protected path (or a component of it) is a symbolic link. Binding it read-only would
    /// protect the link's target instead of the path, so the run is refused.
    #[error("protected path `{path}` is a symbolic link (or has one on its way); refusing to bind it")]
    ProtectedSymlink {
        /// The protected path, as the policy wrote it.
        path: PathBuf,
    },
    /// A writable root is `/tmp` or `/var/tmp`, or contains one, while the policy gives the
    /// command a private tmpfs there (see `mount_plan::private_tmp_conflict`).
    #[error("writable root `{root}` is or contains `{tmp}`, which the sandbox replaces with a private, empty tmpfs")]
    PrivateTmpConflict {
        /// The writable root (the workspace, usually).
        root: PathBuf,
        /// The private tmp directory it conflicts with.
        tmp: &'static str,
    },
    /// A writable root is inside `/dev` or `/proc`, which the sandbox replaces with its own
    /// (see `mount_plan::hidden_writable_root`).
    #[error("writable root `{root}` is inside `{hidden_by}`, which the sandbox replaces with its own")]
    HiddenWritableRoot {
        /// The writable root (the workspace, usually).
        root: PathBuf,
        /// `/dev` or `/proc`.
        hidden_by: &'static str,
    },
    /// Opening a path on the host without following symlinks failed.
    #[error("cannot open `{path}` without following symlinks (openat2)")]
    OpenPath {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating the placeholder for a protected path that does not exist yet failed.
    #[error("cannot create placeholder for protected path `{path}`")]
    Placeholder {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// None of the implementations the policy allows works on this host.
    #[error("no allowed Linux sandbox implementation works here: {reason}")]
    NoImplementation {
        /// Why each candidate was rejected.
        reason: String,
        /// The user-namespace failure, when that was the cause.
        userns: Option<String>,
    },
    /// Landlock is needed but the kernel does not offer it.
    #[error("Landlock is not available on this kernel (needed by `{implementation}`)")]
    LandlockUnavailable {
        /// The implementation that needs it.
        implementation: &'static str,
    },
    /// `network = "allow"` without a proxy to bridge to, or with an implementation that cannot
    /// confine the command to it.
    #[error("network allowlist unavailable: {reason}")]
    NetworkAllowlistUnavailable {
        /// Why.
        reason: &'static str,
    },
    /// A string given to the kernel contains a NUL byte.
    #[error("`{what}` contains a NUL byte")]
    Nul {
        /// What it was (argument, environment variable, path).
        what: String,
    },
    /// A system call in the supervisor failed.
    #[error("{call} failed")]
    Syscall {
        /// The syscall.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A step of the sandbox setup inside the new namespaces failed.
    #[error("sandbox setup failed at {step}")]
    Setup {
        /// The step, with its path.
        step: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Diagnose for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::ProtectedSymlink { .. } => "protected_path_symlink",
            Error::PrivateTmpConflict { .. } => "private_tmp_conflict",
            Error::HiddenWritableRoot { .. } => "writable_root_hidden",
            Error::OpenPath { .. } => "open_path_failed",
            Error::Placeholder { .. } => "protected_placeholder_failed",
            Error::NoImplementation { .. } => "linux_implementation_unavailable",
            Error::LandlockUnavailable { .. } => "landlock_unavailable",
            Error::NetworkAllowlistUnavailable { .. } => "network_allowlist_unavailable",
            Error::Nul { .. } => "nul_in_argument",
            Error::Syscall { .. } => "syscall_failed",
            Error::Setup { .. } => "sandbox_setup_failed",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::ProtectedSymlink { .. } => {
                "remove the symlink (or replace it with the real directory) and run again; stockade never binds a symlink's target".into()
            }
            Error::PrivateTmpConflict { tmp, .. } => format!(
                "work in a directory below it (such as `{tmp}/project`), or share the host's temporary directories with `filesystem.private_tmp = false`"
            ),
            Error::HiddenWritableRoot { hidden_by, .. } => {
                format!("work in a directory outside `{hidden_by}`")
            }
            Error::OpenPath { .. } | Error::Placeholder { .. } => {
                "check that the path exists, is not a symlink, and is writable by you".into()
            }
            Error::NoImplementation { userns: Some(why), .. } => format!(
                "user namespaces are unavailable ({why}); on Ubuntu 24.04+ either install the AppArmor profile \
                 from `contrib/apparmor/stockade` (see docs/linux.md) or set `sysctl kernel.apparmor_restrict_unprivileged_userns=0`; \
                 or allow the weaker implementation with `[linux] allow_fallback = true` in config.toml"
            ),
            Error::NoImplementation { .. } => "run `stockade doctor` to see what this host supports".into(),
            Error::LandlockUnavailable { .. } => {
                "Landlock needs Linux 5.13+ with `lsm=landlock` enabled; run `stockade doctor`".into()
            }
            Error::NetworkAllowlistUnavailable { .. } => {
                "allowlists need the `namespaces` implementation (a private network namespace); run `stockade doctor`".into()
            }
            Error::Nul { .. } => "remove the NUL byte".into(),
            Error::Syscall { .. } | Error::Setup { .. } => "run `stockade doctor` to see what this host supports".into(),
        })
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
