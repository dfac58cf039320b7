//! # stockade-macos: how macOS enforces a stockade policy
//!
//! The macOS backend turns a resolved [`Policy`] into a deny-default Seatbelt profile (SBPL,
//! the Scheme-like Sandbox Profile Language), runs the command under it with
//! `/usr/bin/sandbox-exec`, and reads the sandbox's denials back from the unified log.
//!
//! ## Overview
//!
//! * [`profile`] (pure, every platform): the SBPL text and its `-D` parameters from the
//!   policy and a few [`HostFacts`]. Paths are parameters, never profile text. Golden tests
//!   live in `tests/golden/`.
//! * [`command`] (pure): the child's environment, the `sandbox-exec` argv, and the program
//!   lookup that turns "not found" into exit 127 before anything starts.
//! * [`denial`] (pure): the `log stream` predicate and the parser that turns kernel sandbox
//!   reports tagged with this run's [`Tag`] into [`stockade_policy::Denial`] events.
//! * [`enforcement`] (pure): the layers and gaps of a run, and `stockade doctor`'s report.
//! * `launch` and `sys` (macOS only): spawn, new session, signal forwarding, timeout kill of
//!   the whole process group, log reading.
//!
//! ## Terms
//!
//! * **Seatbelt**: the macOS kernel sandbox (`Sandbox.kext`), configured by an SBPL profile.
//! * **carve-out**: a deny rule that cuts a read-only or unreadable hole into an allowed
//!   tree (protected paths, deny-write, deny-read); it comes after the allows, because in
//!   SBPL the last matching rule wins.
//! * **tag**: a per-run token that every denial message carries.
//!
//! ## Platform notes
//!
//! Only `launch`/`sys` are `cfg(target_os = "macos")`; on other platforms
//! [`MacosBackend::run`](stockade_policy::Backend::run) returns [`Error::Unsupported`]
//! and everything else compiles and is tested. `sandbox-exec` has been marked deprecated
//! (its man page says so) but still ships and works; see `docs/macos.md` for what is and is not
//! enforced. References: `man sandbox-exec`, `man log`, the Apple Sandbox Guide by fG!
//! (<https://reverse.put.as/2011/09/14/apple-sandbox-guide-v1-0/>), Chromium's Seatbelt
//! design notes
//! (<https://chromium.googlesource.com/chromium/src/+/main/sandbox/mac/seatbelt_sandbox_design.md>).
//!
//! ## Example
//!
//! ```
//! use stockade_macos::{generate, HostFacts, Tag};
//! use stockade_policy::{resolve, HostEnv, Locations, Overrides};
//!
//! let dir = std::env::temp_dir();
//! let env = HostEnv { home: Some("/nonexistent-home".into()), cwd: dir.clone(), ..Default::default() };
//! let policy = resolve(&Overrides::default(), None, &[], &env, &Locations::macos(&env)).unwrap();
//! let facts = HostFacts {
//!     private_tmp: Some("/private/var/folders/xy/T/stockade-1".into()),
//!     terminals: vec![],
//!     proxy: None,
//!     tag: Tag::fresh(),
//!     git_metadata: vec![],
//! };
//! let profile = generate(&policy, &facts).unwrap();
//! assert!(profile.text.starts_with("(version 1)"));
//! // The workspace is a parameter, not profile text.
//! assert!(!profile.text.contains(policy.workspace.to_str().unwrap()));
//! assert_eq!(profile.param("WRITABLE_ROOT_0"), policy.workspace.to_str());
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod command;
pub mod denial;
pub mod enforcement;
mod error;
pub mod git_metadata;
pub mod profile;
pub mod tag;

#[cfg(target_os = "macos")]
mod launch;
#[cfg(target_os = "macos")]
mod sys;

pub use error::Error;
pub use profile::{generate, HostFacts, Profile, ProxyEndpoint};
pub use stockade_policy::Diagnose;
use stockade_policy::{Backend, CommandSpec, DoctorReport, Outcome, Policy};
pub use tag::Tag;

/// The macOS backend: Seatbelt through `sandbox-exec`.
///
/// `Default` has no allowlist proxy, so it refuses `network = allow` with
/// [`Error::NetworkAllowlistUnavailable`]; the facade passes the proxy with
/// [`MacosBackend::with_proxy`] once it starts one.
#[derive(Debug, Default, Clone)]
pub struct MacosBackend {
    proxy: Option<ProxyEndpoint>,
}

impl MacosBackend {
    /// A backend whose sandboxes may reach the allowlist proxy at `proxy` (and nothing else)
    /// in `network = allow` mode.
    pub fn with_proxy(proxy: ProxyEndpoint) -> Self {
        MacosBackend { proxy: Some(proxy) }
    }
}

impl Backend for MacosBackend {
    type Error = Error;

    fn doctor(&self, policy: &Policy) -> DoctorReport {
        imp::doctor(self, policy)
    }

    fn run(&self, policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Error> {
        imp::run(self, policy, cmd)
    }

    /// The facade's proxy listens on a loopback TCP port here; the profile admits exactly that
    /// port. Without a TCP address the run is refused like any allowlist without a proxy.
    fn run_with_proxy(
        &self,
        policy: &Policy,
        cmd: &CommandSpec,
        proxy: &stockade_policy::ProxyEndpoint,
    ) -> Result<Outcome, Error> {
        match proxy.tcp {
            Some(addr) if addr.ip().is_loopback() => {
                MacosBackend::with_proxy(ProxyEndpoint { port: addr.port(), unix_socket: None }).run(policy, cmd)
            }
            _ => self.run(policy, cmd),
        }
    }
}

#[cfg(target_os = "macos")]
use launch as imp;

/// The backend on a platform without Seatbelt: typed refusals, and a doctor report that says
/// so.
#[cfg(not(target_os = "macos"))]
mod imp {
    use stockade_policy::{Check, CheckStatus, CommandSpec, Diagnose, DoctorReport, Outcome, Policy};

    use crate::{Error, MacosBackend};

    fn unsupported() -> Error {
        Error::Unsupported { feature: "seatbelt", platform: std::env::consts::OS }
    }

    pub(crate) fn run(_: &MacosBackend, _: &Policy, _: &CommandSpec) -> Result<Outcome, Error> {
        Err(unsupported())
    }

    pub(crate) fn doctor(b: &MacosBackend, policy: &Policy) -> DoctorReport {
        let e = unsupported();
        DoctorReport {
            platform: "macos".into(),
            checks: vec![Check {
                name: "seatbelt".into(),
                status: CheckStatus::Missing,
                detail: e.to_string(),
                fix: e.hint(),
            }],
            implementation: None,
            enforcement: crate::enforcement::enforcement(policy, b.proxy.is_some(), false),
        }
    }
}

#[cfg(all(test, not(target_os = "macos")))]
mod tests {
    use super::*;

    #[test]
    fn run_elsewhere_is_a_typed_refusal() {
        let env = stockade_policy::HostEnv {
            home: Some("/nonexistent-home".into()),
            cwd: std::env::temp_dir(),
            ..Default::default()
        };
        let policy = stockade_policy::resolve(
            &stockade_policy::Overrides::default(),
            None,
            &[],
            &env,
            &stockade_policy::Locations::macos(&env),
        )
        .unwrap();
        let cmd = CommandSpec::from_argv(&["true".into()]).unwrap();
        let e = MacosBackend::default().run(&policy, &cmd).unwrap_err();
        assert_eq!(e.code(), "unsupported");
        let report = MacosBackend::default().doctor(&policy);
        assert_eq!(report.implementation, None);
        assert_eq!(report.checks[0].status, stockade_policy::CheckStatus::Missing);
    }
}
