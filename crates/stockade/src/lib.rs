//! # stockade: run an AI coding agent's commands in an OS sandbox
//!
//! This is the facade: it takes a resolved [`Policy`] (see [`stockade_policy`]), picks the
//! backend for this operating system, and runs a [`CommandSpec`] under it, returning an
//! [`Outcome`]. The `stockade` command-line tool is a thin layer over this library; agents and
//! their tools can use the library directly so that *every* action goes through one policy.
//!
//! ## Terms
//!
//! * **backend**: the platform's enforcement (Linux namespaces + Landlock + seccomp; Windows
//!   tokens, ACLs and sandbox users; macOS Seatbelt), behind the [`Backend`] trait.
//! * **implementation**: a backend's variant (`namespaces` or `landlock-only` on Linux,
//!   `elevated` or `unelevated` on Windows); requirements may restrict which are allowed.
//!
//! ## Platform notes
//!
//! The backend is chosen at compile time in one place (the `PlatformBackend` alias below). On a
//! platform whose backend is not available, [`Sandbox::run`] refuses; it never runs a command
//! unsandboxed unless the policy's mode is `danger-full-access`.
//!
//! ## Example
//!
//! ```no_run
//! use stockade::{CommandSpec, HostEnv, Locations, Overrides, Sandbox};
//!
//! let env = HostEnv::from_process()?;
//! let policy = stockade::load_policy(&Overrides::default(), None, &[], &env, &Locations::for_this_os(&env))?;
//! let cmd = CommandSpec::from_argv(&["sh".into(), "-c".into(), "echo hello".into()]).unwrap();
//! let outcome = Sandbox::new(policy).run(&cmd)?;
//! println!("exit: {}", outcome.status.cli_code());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod direct;
mod error;
mod network;

pub use error::{BackendFailure, Error};
pub use network::NetOptions;
pub use stockade_policy::*;

#[cfg(target_os = "linux")]
type PlatformBackend = stockade_linux::LinuxBackend;
#[cfg(target_os = "macos")]
type PlatformBackend = stockade_macos::MacosBackend;
#[cfg(windows)]
type PlatformBackend = stockade_windows::WindowsBackend;

/// Resolves the policy from the standard locations (see [`stockade_policy::load`]).
pub fn load_policy(
    overrides: &Overrides,
    config: Option<&std::path::Path>,
    extra_requirements: &[std::path::PathBuf],
    env: &HostEnv,
    locations: &Locations,
) -> Result<Policy, Error> {
    Ok(stockade_policy::load(overrides, config, extra_requirements, env, locations)?)
}

/// A policy bound to this platform's backend.
#[derive(Debug, Clone)]
pub struct Sandbox {
    policy: Policy,
    net: NetOptions,
}

/// The host directories this platform's sandbox hides from a command under `policy` whatever
/// the policy says, each with the reason in words (see `Backend::hidden_dirs`), for
/// [`hidden_by_sandbox`]. Looked up in this process's environment (`XDG_RUNTIME_DIR`, `HOME`).
pub fn hidden_dirs(policy: &Policy) -> Vec<(std::path::PathBuf, String)> {
    use stockade_policy::Backend as _;
    let env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    PlatformBackend::default().hidden_dirs(policy, &env)
}

/// Gives the next [`Sandbox::run`] of this process a head start where the platform allows it:
/// on Linux, the sandbox's pid 1 starts creating its namespaces now, while the caller is still
/// resolving the policy. For a process that runs one command and exits, like the CLI: the
/// sandbox's pid 1 then waits after the command until the process exits (or the next
/// `prelaunch`), so that its teardown does not delay the caller. A run that cannot use it
/// discards it. Does nothing elsewhere.
pub fn prelaunch() {
    #[cfg(target_os = "linux")]
    stockade_linux::init_launch::prelaunch();
}

impl Sandbox {
    /// Binds `policy` to this platform's backend.
    pub fn new(policy: Policy) -> Self {
        Sandbox { policy, net: NetOptions::default() }
    }

    /// How network decisions are surfaced (a JSON-lines log file, live stderr lines). Only
    /// used when the policy has a network allowlist.
    pub fn with_net_options(mut self, net: NetOptions) -> Self {
        self.net = net;
        self
    }

    /// The policy this sandbox enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Runs `cmd` under the policy and waits for it. In `danger-full-access` mode the command
    /// runs directly, without a sandbox (only reachable when requirements allow that mode).
    pub fn run(&self, cmd: &CommandSpec) -> Result<Outcome, Error> {
        if self.policy.mode == Mode::DangerFullAccess {
            #[cfg(target_os = "linux")]
            stockade_linux::init_launch::discard();
            return direct::run(&self.policy, cmd);
        }
        let backend = PlatformBackend::default();
        let failed = |e| Error::Backend(BackendFailure(Box::new(e)));
        if self.policy.network.mode != NetworkMode::Allow {
            return backend.run(&self.policy, cmd).map_err(failed);
        }
        // Allowlist: the proxy is the command's only way out; its log goes into the outcome.
        let proxy = network::RunProxy::start(&self.policy, &self.net)?;
        match backend.run_with_proxy(&self.policy, cmd, proxy.endpoint()) {
            Ok(mut outcome) => {
                proxy.finish(Some(&mut outcome));
                Ok(outcome)
            }
            Err(e) => {
                proxy.finish(None);
                Err(failed(e))
            }
        }
    }

    /// Prepares the host once for this policy (`stockade setup`).
    pub fn setup(&self, options: &SetupOptions) -> Result<SetupReport, Error> {
        PlatformBackend::default().setup(&self.policy, options).map_err(|e| Error::Backend(BackendFailure(Box::new(e))))
    }

    /// Removes everything stockade added to the host (`stockade cleanup`).
    pub fn cleanup(&self) -> Result<SetupReport, Error> {
        PlatformBackend::default().cleanup(&self.policy).map_err(|e| Error::Backend(BackendFailure(Box::new(e))))
    }

    /// What this host supports and what `run` would use with this policy.
    pub fn doctor(&self) -> DoctorReport {
        PlatformBackend::default().doctor(&self.policy)
    }
}
