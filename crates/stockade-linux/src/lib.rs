//! # stockade-linux: how Linux enforces a stockade policy
//!
//! Two implementations, chosen from [`LinuxSettings::candidates`](stockade_policy::LinuxSettings::candidates):
//!
//! * **`namespaces`** (default): the command runs in new user, mount, pid, network, IPC and
//!   UTS namespaces. The caller's uid/gid map to themselves. The mount namespace shows `/`
//!   read-only, the writable roots writable, protected paths read-only, deny-read paths and
//!   host socket directories empty, private `/tmp`, a minimal `/dev` and a fresh `/proc`. Pid 1
//!   is stockade's own tiny init (`sys::init_entry`); when it exits (command done, timeout,
//!   or the supervisor killed: `PR_SET_PDEATHSIG`) the kernel kills everything left in the
//!   pid namespace. Then Landlock, `no_new_privs`, an empty capability set, seccomp, `setsid`,
//!   closed fds, and `execve`. Pid 1 is launched first and creates its namespaces while the
//!   supervisor prepares the rest of the run ([`init_launch`]).
//! * **`landlock-only`**: for hosts without user namespaces. Landlock, seccomp (which here also
//!   forbids IP and netlink sockets), `no_new_privs`, dropped capabilities, `setsid`, closed fds.
//!   It cannot keep every promise; the gaps are listed in every [`Outcome`]'s enforcement.
//!
//! Terminology: the *supervisor* is the calling process; the *init* is pid 1 of the sandbox;
//! the *command* is what the user asked to run. The supervisor never re-executes itself: the
//! children are raw `clone`s that only make system calls on data the supervisor prepared
//! ([`prepare`]), so the library is safe to use from multithreaded programs.
//!
//! Platform notes: Linux 5.13+ for Landlock, 5.12+ for `mount_setattr`, 5.6+ for `openat2`,
//! 5.3+ for `pidfd_open` and `CLONE_PIDFD`.
//! See docs/linux.md for the decisions (missing protected paths, cgroups vs rlimits, root).
//!
//! ```no_run
//! use stockade_policy::{Backend, CommandSpec};
//! # fn demo(policy: &stockade_policy::Policy) {
//! let cmd = CommandSpec::from_argv(&["true".into()]).unwrap();
//! let outcome = stockade_linux::LinuxBackend::default().run(policy, &cmd);
//! # }
//! ```
#![cfg(target_os = "linux")]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod cgroup;
pub mod doctor;
pub mod error;
pub mod git_index;
pub mod git_nested;
pub mod git_redirect;
pub mod gitlinks_cache;
pub mod host_facts;
pub mod init_launch;
pub mod landlock_rules;
pub mod mount_plan;
pub mod prepare;
pub mod seccomp_rules;
pub mod supervisor;
pub mod sys;

#[cfg(test)]
pub(crate) mod testutil;

use std::path::PathBuf;

pub use error::Error;
use stockade_policy::{Backend, CommandSpec, DoctorReport, LinuxImplementation, Outcome, Policy};

/// The environment variable that makes the backend behave as if user namespaces were
/// unavailable, so the `landlock-only` fallback can be tested on hosts that have them. It can
/// only select an implementation the policy already allows; it never weakens a policy.
pub const TEST_DISABLE_USERNS_ENV: &str = "STOCKADE_LINUX_TEST_DISABLE_USERNS";

/// The bridge for `network = "allow"`: the allowlist proxy's unix socket on the host.
///
/// Pid 1 creates a TCP listener on `127.0.0.1:3128` inside the sandbox's private network
/// namespace and hands it to the supervisor (SCM_RIGHTS), which relays every connection on it
/// to this socket. No process of stockade's runs inside the sandbox for this, nothing is
/// mounted into it, and the namespace has no other way out. The command gets the proxy
/// variables from [`stockade_net::proxy_env`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkBridge {
    /// The proxy's unix socket on the host.
    pub socket: PathBuf,
    /// When set, the sandbox's listener is handed to the proxy itself (no relay hop).
    pub adopt: Option<stockade_policy::ListenerSink>,
}

/// The Linux backend.
#[derive(Debug, Default, Clone)]
pub struct LinuxBackend {
    /// Behave as if user namespaces were unavailable (tests of the fallback).
    pub disable_userns: bool,
    /// The network bridge for allowlists (set by [`Backend::run_with_proxy`]).
    pub bridge: Option<NetworkBridge>,
}

impl LinuxBackend {
    fn userns_disabled(&self) -> bool {
        self.disable_userns || std::env::var_os(TEST_DISABLE_USERNS_ENV).is_some_and(|v| v == "1")
    }
}

impl Backend for LinuxBackend {
    type Error = Error;

    fn doctor(&self, policy: &Policy) -> DoctorReport {
        doctor::report(policy, self.userns_disabled())
    }

    /// The same under both implementations: the host's socket directories (an empty tmpfs
    /// under `namespaces`, left out of the read rules under `landlock-only`) and, with a private
    /// temp dir, the host's `/tmp`, `/var/tmp` and `/dev/shm`.
    fn hidden_dirs(
        &self,
        policy: &Policy,
        host_env: &[(std::ffi::OsString, std::ffi::OsString)],
    ) -> Vec<(std::path::PathBuf, String)> {
        let sockets = host_facts::socket_dirs(host_env).into_iter();
        let tmp = host_facts::private_tmp_dirs(policy).into_iter();
        sockets
            .map(|d| (d, "a directory of host daemon sockets, which the sandbox hides".to_owned()))
            .chain(tmp.map(|d| (d, "the host's shared temp directory: the command gets a private one".to_owned())))
            .collect()
    }

    fn run_with_proxy(
        &self,
        policy: &Policy,
        cmd: &CommandSpec,
        proxy: &stockade_policy::ProxyEndpoint,
    ) -> Result<Outcome, Error> {
        let socket = proxy
            .unix_socket
            .clone()
            .ok_or(Error::NetworkAllowlistUnavailable { reason: "the proxy has no unix socket to bridge to" })?;
        let bridge = NetworkBridge { socket, adopt: proxy.adopt.clone() };
        LinuxBackend { bridge: Some(bridge), ..self.clone() }.run(policy, cmd)
    }

    fn run(&self, policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Error> {
        let allowlist = policy.network.mode == stockade_policy::NetworkMode::Allow;
        if allowlist && self.bridge.is_none() {
            return Err(Error::NetworkAllowlistUnavailable { reason: "no proxy was started for this run" });
        }
        let mut reasons = Vec::new();
        let mut userns_reason = None;
        // The requirements ruled `namespaces` out and the user's fallback setting let
        // `landlock-only` in: the outcome says so, as for any other fallback.
        if matches!(policy.provenance.get("linux.implementation"), stockade_policy::Source::Requirement { .. })
            && !policy.linux.allowed_implementations.contains(&LinuxImplementation::Namespaces)
        {
            reasons.push("namespaces: the requirements do not allow it".to_owned());
        }
        for imp in policy.linux.candidates() {
            match imp {
                LinuxImplementation::Namespaces => {
                    if self.userns_disabled() {
                        init_launch::discard();
                        let why = "user namespaces disabled for testing".to_owned();
                        reasons.push(format!("namespaces: {why}"));
                        userns_reason = Some(why);
                        continue;
                    }
                    match supervisor::run_namespaces(policy, cmd, self.bridge.as_ref())? {
                        supervisor::Attempt::Done(o) => return Ok(o),
                        supervisor::Attempt::Unavailable(why) => {
                            reasons.push(format!("namespaces: {why}"));
                            userns_reason = Some(why);
                        }
                    }
                }
                LinuxImplementation::LandlockOnly => {
                    init_launch::discard();
                    if allowlist {
                        reasons.push(
                            "landlock-only: cannot confine a network allowlist (no private network namespace)".into(),
                        );
                        continue;
                    }
                    if sys::landlock_abi() <= 0 {
                        reasons.push("landlock-only: Landlock is not available".into());
                        continue;
                    }
                    match supervisor::run_landlock_only(policy, cmd)? {
                        supervisor::Attempt::Done(mut o) => {
                            // Why the stronger implementation did not run, where the outcome's
                            // reader (an agent, a person) sees it.
                            if !reasons.is_empty() {
                                o.warnings.insert(
                                    0,
                                    stockade_policy::Warning {
                                        code: "fell_back_to_landlock_only".into(),
                                        path: policy.workspace.clone(),
                                        message: format!(
                                            "ran under landlock-only, which the configuration allows as a fallback, with the gaps it lists: {}",
                                            reasons.join("; ")
                                        ),
                                    },
                                );
                            }
                            return Ok(o);
                        }
                        supervisor::Attempt::Unavailable(why) => reasons.push(format!("landlock-only: {why}")),
                    }
                }
            }
        }
        if reasons.is_empty() {
            reasons.push("the requirements allow none of the configured implementations".into());
        }
        if policy.linux.candidates() == [LinuxImplementation::Namespaces] && userns_reason.is_some() {
            reasons.push("falling back to landlock-only is not enabled".into());
        }
        Err(Error::NoImplementation { reason: reasons.join("; "), userns: userns_reason })
    }
}
