//! The macOS backend's one error type.
//!
//! Every variant is scoped to one operation and names the API (`sandbox-exec`, `log stream`,
//! `setsid`) and the path involved, and maps to a stable snake_case code through
//! [`Diagnose::code`] (documented in `docs/macos.md` and `docs/errors.md`), so the CLI and
//! agents can react to the code instead of the message.

use std::path::PathBuf;

use stockade_policy::Diagnose;

/// Why the macOS backend could not build or run a sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend was asked to run on an operating system other than macOS.
    #[error("the Seatbelt sandbox ({feature}) is not available on {platform}")]
    Unsupported {
        /// What is missing (`seatbelt`).
        feature: &'static str,
        /// The platform this build runs on (`linux`, `windows`, ...).
        platform: &'static str,
    },
    /// `danger-full-access` reached the backend; the facade runs that mode without a sandbox,
    /// and a Seatbelt profile that allows everything would only pretend to be one.
    #[error("`danger-full-access` is not sandboxed; the Seatbelt backend does not run it")]
    NotSandboxed,
    /// A path in the policy is not valid UTF-8. Seatbelt parameters are strings and stockade
    /// cannot prove they keep non-UTF-8 bytes intact, so a rule could silently not match.
    #[error("path `{}` is not valid UTF-8 and cannot be passed to Seatbelt exactly", path.display())]
    NonUtf8Path {
        /// The path (lossy display).
        path: PathBuf,
    },
    /// A path in the policy contains a NUL byte, which no command line can carry.
    #[error("path `{}` contains a NUL byte", path.escape_debug())]
    NulInPath {
        /// The path, lossily converted.
        path: String,
    },
    /// A path in the policy is relative or contains `.`/`..`; Seatbelt compares resolved
    /// paths, so such a rule would never match.
    #[error("path `{}` is not absolute and normalized", path.display())]
    PathNotNormalized {
        /// The path.
        path: PathBuf,
    },
    /// The policy asks for a private temp dir but the host probe did not create one.
    #[error("the policy asks for a private temp dir but none was prepared")]
    PrivateTmpMissing,
    /// The policy's network mode is `allow` but no proxy was handed to the backend.
    #[error("network mode `allow` needs stockade's proxy, which is not wired to the macOS backend in this build")]
    NetworkAllowlistUnavailable,
    /// A protected path, or one of its parents inside a writable root, is a symbolic link;
    /// Seatbelt matches resolved paths, so the rule would protect the wrong object.
    #[error("protected path `{}` goes through a symbolic link at `{}`", path.display(), link.display())]
    ProtectedPathSymlink {
        /// The protected path as the policy names it.
        path: PathBuf,
        /// The component that is a link.
        link: PathBuf,
    },
    /// `/usr/bin/sandbox-exec` is missing or not executable.
    #[error("`/usr/bin/sandbox-exec` is missing or not executable")]
    SandboxExecMissing {
        /// The OS error from `stat`.
        #[source]
        source: std::io::Error,
    },
    /// `sandbox-exec` refused the generated profile (an SBPL feature this macOS lacks).
    #[error("`sandbox-exec` rejected the generated profile: {stderr}")]
    ProfileRejected {
        /// What `sandbox-exec` printed.
        stderr: String,
    },
    /// Creating the private temp dir failed.
    #[error("cannot create the private temp dir `{}`", path.display())]
    PrivateTmpCreate {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Spawning `sandbox-exec` failed.
    #[error("cannot start `/usr/bin/sandbox-exec`")]
    Spawn {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for, signalling or killing the command failed.
    #[error("lost track of the sandboxed command")]
    Wait {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Blocking or reading signals (`pthread_sigmask`/`sigwait`) failed.
    #[error("cannot set up signal forwarding")]
    Signals {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::Unsupported { .. } => "unsupported",
            Error::NotSandboxed => "mode_not_sandboxed",
            Error::NonUtf8Path { .. } => "non_utf8_path",
            Error::NulInPath { .. } => "nul_in_path",
            Error::PathNotNormalized { .. } => "path_not_normalized",
            Error::PrivateTmpMissing => "private_tmp_missing",
            Error::NetworkAllowlistUnavailable => "network_allowlist_unavailable",
            Error::ProtectedPathSymlink { .. } => "protected_path_symlink",
            Error::SandboxExecMissing { .. } => "sandbox_exec_missing",
            Error::ProfileRejected { .. } => "profile_rejected",
            Error::PrivateTmpCreate { .. } => "private_tmp_create_failed",
            Error::Spawn { .. } => "spawn_failed",
            Error::Wait { .. } => "wait_failed",
            Error::Signals { .. } => "signal_setup_failed",
        }
    }

    fn hint(&self) -> Option<String> {
        let h = match self {
            Error::Unsupported { .. } => "this backend only runs on macOS; `stockade doctor` shows the backend for this host",
            Error::NotSandboxed => "run it through the facade (`stockade run`), which handles `danger-full-access` itself",
            Error::NonUtf8Path { .. } => "rename the path, or remove it from the policy (`stockade explain` shows where it comes from)",
            Error::NulInPath { .. } => "remove the path from the policy",
            Error::PathNotNormalized { .. } => "write the path without `..` (`stockade explain` shows where it comes from)",
            Error::PrivateTmpMissing => "this is a bug in the caller; set `filesystem.private_tmp = false` to work around it",
            Error::NetworkAllowlistUnavailable => {
                "use `--network off` or `--network on` on macOS until the allowlist proxy is wired in"
            }
            Error::ProtectedPathSymlink { .. } => {
                "replace the link with a real directory, or remove the entry from `filesystem.protected`"
            }
            Error::SandboxExecMissing { .. } => "restore `/usr/bin/sandbox-exec` (it ships with macOS); run `stockade doctor`",
            Error::ProfileRejected { .. } => {
                "run `stockade doctor` and report the macOS version; the profile uses an SBPL feature this version lacks"
            }
            Error::PrivateTmpCreate { .. } => "check that `$TMPDIR` exists and is writable, or set `filesystem.private_tmp = false`",
            Error::Spawn { .. } | Error::Wait { .. } | Error::Signals { .. } => return None,
        };
        Some(h.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case_and_every_variant_has_one() {
        let io = || std::io::Error::other("x");
        let all = [
            Error::Unsupported { feature: "seatbelt", platform: "linux" },
            Error::NotSandboxed,
            Error::NonUtf8Path { path: "/x".into() },
            Error::NulInPath { path: "/x".into() },
            Error::PathNotNormalized { path: "x".into() },
            Error::PrivateTmpMissing,
            Error::NetworkAllowlistUnavailable,
            Error::ProtectedPathSymlink { path: "/a".into(), link: "/a".into() },
            Error::SandboxExecMissing { source: io() },
            Error::ProfileRejected { stderr: "x".into() },
            Error::PrivateTmpCreate { path: "/t".into(), source: io() },
            Error::Spawn { source: io() },
            Error::Wait { source: io() },
            Error::Signals { source: io() },
        ];
        let mut codes: Vec<&str> = all.iter().map(Diagnose::code).collect();
        for c in &codes {
            assert!(c.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{c}");
        }
        assert_eq!(Error::NetworkAllowlistUnavailable.code(), "network_allowlist_unavailable");
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "codes are unique");
    }
}
