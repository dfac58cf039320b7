//! The backend's one error type: every variant names the step, the object and (for Win32
//! failures) the error code, and maps to a stable snake_case code and a hint.
//! docs/windows.md has a troubleshooting section per code.

use stockade_policy::Diagnose;

use crate::win_path::WinPath;

/// Why a writable root is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootRefusal {
    /// A drive or share root (`C:\`).
    DriveRoot,
    /// The user's profile directory (`%USERPROFILE%`) or an ancestor of it: it holds the
    /// registry hives (`NTUSER.DAT`) and every secret.
    UserProfile,
    /// `%TEMP%` or an ancestor of it: shared with every program of the user.
    TempDir,
    /// Contains stockade's own state directory.
    StateDir,
    /// The root is a junction or symbolic link: stamping it would not cover its target.
    ReparsePoint,
    /// Windows' own directories (`%SystemRoot%`, `%ProgramFiles%`, `%ProgramData%`) or a
    /// directory containing them.
    SystemDir,
}

impl RootRefusal {
    fn words(self) -> &'static str {
        match self {
            RootRefusal::DriveRoot => "is a drive root",
            RootRefusal::UserProfile => "is or contains the user profile (%USERPROFILE%)",
            RootRefusal::TempDir => "is or contains the user's temp dir (%TEMP%)",
            RootRefusal::StateDir => "contains stockade's state directory",
            RootRefusal::ReparsePoint => "is a junction or symbolic link",
            RootRefusal::SystemDir => "is or contains a Windows system directory",
        }
    }
}

/// Failures of the Windows backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This operating system is not Windows.
    #[error("the Windows sandbox cannot run on {platform}")]
    Unsupported {
        /// The current platform.
        platform: &'static str,
    },
    /// A writable root the policy names cannot be stamped safely.
    #[error("refusing writable root `{path}`: it {}", reason.words())]
    RefusedRoot {
        /// The root.
        path: WinPath,
        /// Why.
        reason: RootRefusal,
    },
    /// More writable roots than one token can carry.
    #[error("{count} writable roots is more than the {max} a sandbox token can carry")]
    TooManyRoots {
        /// How many the policy has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No implementation is both allowed and usable.
    #[error("no Windows sandbox implementation is allowed and ready: {detail}")]
    NoImplementation {
        /// What was tried.
        detail: String,
    },
    /// The elevated implementation was selected but `stockade setup` has not run.
    #[error("the elevated sandbox is not set up on this machine")]
    SetupRequired,
    /// `danger-full-access` is not run by the Windows backend.
    #[error("the Windows backend only runs sandboxed commands")]
    Unsandboxed,
    /// A Win32 call failed during a named step.
    #[error("{step} failed on `{object}`: Win32 error {code}")]
    Win32 {
        /// The step (`set_acl`, `create_restricted_token`, `net_user_add`, ...).
        step: &'static str,
        /// The path, account, rule or object.
        object: String,
        /// `GetLastError()` or the returned status.
        code: u32,
    },
    /// A COM call failed (firewall).
    #[error("{step} failed: HRESULT {hresult:#010x}")]
    Com {
        /// The step.
        step: &'static str,
        /// The HRESULT.
        hresult: i32,
    },
    /// Group policy makes local firewall rules ineffective.
    #[error("local firewall rules are overridden by group policy for profile {profile}")]
    FirewallOverridden {
        /// The firewall profile (domain, private, public).
        profile: &'static str,
    },
    /// The ledger or another state file could not be read or written.
    #[error("state file `{path}`: {detail}")]
    State {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// An ACL read from the system uses a construct the model does not handle.
    #[error("cannot model the ACL of `{path}`: {detail}")]
    UnsupportedAcl {
        /// The object.
        path: String,
        /// The construct.
        detail: String,
    },
    /// An argument cannot be passed safely to a batch file.
    #[error("argument {index} cannot be passed safely to a batch file")]
    UnsafeBatchArgument {
        /// Its position.
        index: usize,
    },
    /// The environment has a name or value Windows cannot carry.
    #[error("environment variable `{name}` cannot be passed: {detail}")]
    BadEnvironment {
        /// The name.
        name: String,
        /// What is wrong.
        detail: &'static str,
    },
    /// The user declined the elevation prompt.
    #[error("elevation was declined")]
    ElevationDeclined,
    /// `network = "allow"` needs stockade's proxy, which this backend is not connected to yet.
    #[error("network `allow` needs stockade's proxy, which the Windows backend is not connected to yet")]
    NetworkAllowUnavailable,
}

impl Error {
    /// A Win32 failure with the thread's last error (call right after the failing API).
    pub fn win32(step: &'static str, object: impl Into<String>, code: u32) -> Error {
        Error::Win32 { step, object: object.into(), code }
    }
}

impl Diagnose for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::Unsupported { .. } => "unsupported_platform",
            Error::RefusedRoot { .. } => "refused_root",
            Error::TooManyRoots { .. } => "too_many_roots",
            Error::NoImplementation { .. } => "no_implementation",
            Error::SetupRequired => "setup_required",
            Error::Unsandboxed => "unsandboxed_refused",
            Error::Win32 { step, code, .. } => win32_code(step, *code),
            Error::Com { .. } => "firewall_com_failed",
            Error::FirewallOverridden { .. } => "firewall_overridden",
            Error::State { .. } => "state_file",
            Error::UnsupportedAcl { .. } => "unsupported_acl",
            Error::UnsafeBatchArgument { .. } => "unsafe_batch_argument",
            Error::BadEnvironment { .. } => "bad_environment",
            Error::ElevationDeclined => "elevation_declined",
            Error::NetworkAllowUnavailable => "network_allow_unavailable",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Unsupported { .. } => "use the backend of this platform".into(),
            Error::RefusedRoot { .. } => {
                "choose a project directory as the workspace; stockade gives every run a private temp dir".into()
            }
            Error::TooManyRoots { .. } => "merge writable roots under a common project directory".into(),
            Error::NoImplementation { .. } => {
                "check `[windows] allowed_sandbox_implementations` in requirements.toml and run `stockade doctor`".into()
            }
            Error::SetupRequired => {
                "run `stockade setup` once (it asks for administrator rights), or select `--unelevated`".into()
            }
            Error::Unsandboxed => "use `--sandbox danger-full-access` through the facade, where requirements allow it".into(),
            Error::Win32 { code, .. } => win32_hint(*code),
            Error::Com { .. } => "check that the Windows Defender Firewall service (mpssvc) is running".into(),
            Error::FirewallOverridden { .. } => {
                "ask the administrator to allow local firewall rules (group policy) or use the unelevated sandbox with network off".into()
            }
            Error::State { .. } => "run `stockade cleanup` and then `stockade setup` to rebuild the state".into(),
            Error::UnsupportedAcl { .. } => "reset the object's permissions (icacls PATH /reset) or exclude it".into(),
            Error::UnsafeBatchArgument { .. } => "run the script through `cmd /c` with the arguments quoted yourself".into(),
            Error::BadEnvironment { .. } => "remove the variable from `env.set` in config.toml".into(),
            Error::ElevationDeclined => "run `stockade setup` again and accept the administrator prompt".into(),
            Error::NetworkAllowUnavailable => "use `--network off` or `--network on` until the proxy is connected".into(),
        })
    }
}

/// Stable codes for the Win32 errors users actually meet.
fn win32_code(step: &str, code: u32) -> &'static str {
    match code {
        5 => "access_denied",
        1326 => "sandbox_logon_failed",
        1907 | 1330 => "sandbox_password_expired",
        1909 => "sandbox_account_locked",
        1168 => "sandbox_profile_missing",
        1344 => "token_too_large",
        1223 => "elevation_declined",
        _ if step.starts_with("set_acl") || step.starts_with("read_acl") => "acl_failed",
        _ if step.starts_with("net_") => "account_failed",
        _ if step.starts_with("wfp") => "wfp_failed",
        _ => "win32_failed",
    }
}

fn win32_hint(code: u32) -> String {
    match code {
        5 => "run `stockade setup` again; if it keeps failing, check that no other tool locks the path".into(),
        1326 | 1907 | 1330 | 1909 | 1168 => {
            "the sandbox account is broken; run `stockade setup` to re-provision it, then `stockade doctor`".into()
        }
        1344 => "reduce the number of writable roots".into(),
        _ => "run `stockade doctor` for details".into(),
    }
}
