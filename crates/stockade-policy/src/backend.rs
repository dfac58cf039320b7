//! The contract between the facade and the platform backends.
//!
//! The trait lives here, in the crate every backend already depends on, so that platform
//! crates never depend on the facade or on each other. The facade re-exports it.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

use crate::outcome::{Enforcement, Outcome};
use crate::policy::Policy;

/// What happens to the command's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Stdio {
    /// The command shares stockade's stdin, stdout and stderr.
    #[default]
    Inherit,
    /// stdin reads nothing; output is discarded.
    Null,
}

/// The command to run, as the backend receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program (looked up on the sandbox's `PATH` when it has no `/`).
    pub program: OsString,
    /// Its arguments (without the program).
    pub args: Vec<OsString>,
    /// Working directory; `None` means the policy's workspace.
    pub cwd: Option<PathBuf>,
    /// The *host* environment; the backend filters it through the policy's env rules.
    pub host_env: Vec<(OsString, OsString)>,
    /// Standard streams.
    pub stdio: Stdio,
}

impl CommandSpec {
    /// A command from an argv (first element is the program) and the current process's
    /// environment. Returns `None` for an empty argv.
    pub fn from_argv(argv: &[OsString]) -> Option<Self> {
        let (program, args) = argv.split_first()?;
        Some(CommandSpec {
            program: program.clone(),
            args: args.to_vec(),
            cwd: None,
            host_env: std::env::vars_os().collect(),
            stdio: Stdio::Inherit,
        })
    }
}

/// The network allowlist proxy the facade started for one run. A backend that supports
/// `network = "allow"` routes the command's traffic to it and nowhere else; one that does not
/// refuses the run (it never falls back to `on`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEndpoint {
    /// The proxy's unix socket on the host (the Linux bridge), in a directory only the
    /// supervisor can write.
    pub unix_socket: Option<PathBuf>,
    /// The proxy's loopback TCP address (for platforms without a private network namespace).
    pub tcp: Option<std::net::SocketAddr>,
    /// Hands the proxy a listener to serve directly (the Linux bridge's listener from inside
    /// the sandbox), saving a relay hop; backends fall back to `unix_socket` without it.
    pub adopt: Option<ListenerSink>,
}

/// A way to hand a TCP listener to the running proxy (see [`ProxyEndpoint::adopt`]).
#[derive(Clone)]
pub struct ListenerSink(pub std::sync::Arc<dyn Fn(std::net::TcpListener) -> std::io::Result<()> + Send + Sync>);

impl ListenerSink {
    /// Gives `listener` to the proxy.
    pub fn adopt(&self, listener: std::net::TcpListener) -> std::io::Result<()> {
        (self.0)(listener)
    }
}

impl std::fmt::Debug for ListenerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenerSink(..)")
    }
}

impl PartialEq for ListenerSink {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ListenerSink {}

/// A failure of a backend, with a stable code and a hint, so the CLI can print and report it
/// the same way for every platform.
pub trait Diagnose: std::error::Error + Send + Sync + 'static {
    /// A stable snake_case code (documented in docs/errors.md).
    fn code(&self) -> &'static str;
    /// What the user can do about it, if anything.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// The result of one `doctor` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Available and working.
    Ok,
    /// Available with limits, or not needed by the current policy.
    Warn,
    /// Missing; some layer cannot be applied.
    Missing,
}

/// One line of `stockade doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`landlock`, `user namespaces`, ...).
    pub name: String,
    /// The result.
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// How to fix it, for `Missing` and `Warn`.
    pub fix: Option<String>,
}

/// What `stockade doctor` reports for this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The platform (`linux`, `macos`, `windows`).
    pub platform: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The implementation `run` would use with the given policy, or `None` if it would refuse.
    pub implementation: Option<String>,
    /// The layers `run` would apply.
    pub enforcement: Enforcement,
}

/// Options of `stockade setup` (one-time host preparation; only Windows needs it today).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupOptions {
    /// `--elevated` / `--unelevated`: which implementation to prepare; `None` for the one the
    /// policy selects.
    pub implementation: Option<String>,
    /// `--user DOMAIN\NAME`: prepare for another user (an administrator provisioning).
    pub for_user: Option<String>,
}

/// What `setup` or `cleanup` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SetupReport {
    /// Each action taken, in order, in words.
    pub actions: Vec<String>,
    /// Whether the host was already in the requested state (nothing was changed).
    pub already_done: bool,
}

/// A platform's way of enforcing a [`Policy`].
pub trait Backend {
    /// The backend's failures.
    type Error: Diagnose;

    /// Checks what this host supports, for `stockade doctor`, under `policy`.
    fn doctor(&self, policy: &Policy) -> DoctorReport;

    /// Runs `cmd` under `policy`: spawns it sandboxed, relays stdio and signals, waits, tears
    /// everything down and reports. Must refuse (return an error) rather than run with less
    /// enforcement than the policy and its requirements demand.
    fn run(&self, policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Self::Error>;

    /// Like [`Backend::run`], for a policy with a network allowlist: the command's only way out
    /// is `proxy`. The default ignores the proxy, so a backend without allowlist support
    /// refuses the run in `run` as it must.
    fn run_with_proxy(
        &self,
        policy: &Policy,
        cmd: &CommandSpec,
        proxy: &ProxyEndpoint,
    ) -> Result<Outcome, Self::Error> {
        let _ = proxy;
        self.run(policy, cmd)
    }

    /// The host directories this platform's sandbox hides from the command whatever `policy`
    /// says (the host's socket directories, its shared temp directories where the sandbox has
    /// its own), each with the reason in words, so that `stockade explain` does not call them
    /// readable (see [`crate::access_check::hidden_by_sandbox`]). `host_env` is the caller's
    /// environment. The default names none.
    fn hidden_dirs(
        &self,
        policy: &Policy,
        host_env: &[(std::ffi::OsString, std::ffi::OsString)],
    ) -> Vec<(std::path::PathBuf, String)> {
        let _ = (policy, host_env);
        Vec::new()
    }

    /// Prepares the host once (users, ACLs, firewall rules). The default does nothing, for
    /// platforms that need no preparation.
    fn setup(&self, policy: &Policy, options: &SetupOptions) -> Result<SetupReport, Self::Error> {
        let _ = (policy, options);
        Ok(SetupReport { actions: vec!["nothing to set up on this platform".into()], already_done: true })
    }

    /// Removes everything `setup` (and runs) ever added to the host. The default does nothing.
    fn cleanup(&self, policy: &Policy) -> Result<SetupReport, Self::Error> {
        let _ = policy;
        Ok(SetupReport { actions: vec!["nothing to clean up on this platform".into()], already_done: true })
    }
}
