//! # stockade-windows: how Windows enforces a stockade policy
//!
//! Windows has no namespaces and no Seatbelt; a sandbox there is composed from security
//! identifiers (SIDs), access control lists, restricted tokens, separate user accounts, the
//! Windows Firewall and Filtering Platform, job objects and desktops. This crate computes what
//! to change as pure data ([`plan`], [`firewall_plan`], [`launch_plan`], [`env_block`],
//! [`cmdline`], [`runner_protocol`]), proves properties of it with a model of the Windows access
//! check ([`access_check`] over [`acl_model`] and [`tree`]), fixes the order of applying it
//! behind a narrow seam ([`apply_steps`]), and applies it on Windows (`apply`, compiled only
//! there). Descriptors cross between the model and Windows as SDDL ([`sddl`]). The
//! `stockade-runner` binary is the elevated implementation's launcher.
//!
//! ## Terms
//!
//! * **write SID**: a synthetic, machine-SID-shaped SID (`S-1-5-21-a-b-c-d`) that maps to no
//!   account; one per writable root, granted write on that root only.
//! * **sandbox SID**: one synthetic SID every sandbox token carries; stockade's deny ACEs
//!   name it, so they never affect the real user.
//! * **write-restricted token**: a token from `CreateRestrictedToken(WRITE_RESTRICTED)`; a write
//!   must be allowed for the user *and* for one of its restricting SIDs.
//! * **unelevated / elevated**: the two implementations (see `docs/windows.md`).
//! * **ledger**: the record of everything applied, for O(roots) checks per run and for
//!   `stockade cleanup`.
//!
//! ## Platform notes
//!
//! Everything but `apply` builds and is tested on every platform. On other platforms
//! [`WindowsBackend`] returns [`Error::Unsupported`].
//!
//! ## Example
//!
//! ```
//! use stockade_windows::access_check::{check, Token};
//! use stockade_windows::acl_model::{AccessMask, Ace, AceFlags, SecurityDescriptor};
//! use stockade_windows::sid::Sid;
//!
//! let user: Sid = "S-1-5-21-1-2-3-1001".parse().unwrap();
//! let write_sid = Sid::synthetic(&[1; 16], r"C:\src\app");
//! let token = Token {
//!     user: user.clone(),
//!     groups: vec![Sid::everyone()],
//!     restricting_sids: vec![write_sid.clone()],
//!     write_restricted: true,
//! };
//! // The user's own file, without an ACE for the write SID: readable, not writable.
//! let sd = SecurityDescriptor::with_aces(user.clone(), vec![Ace::allow(user, AccessMask::FILE_ALL_ACCESS, AceFlags::NONE)]);
//! assert!(check(&token, &sd, AccessMask::FILE_GENERIC_READ));
//! assert!(!check(&token, &sd, AccessMask::WRITE_DATA));
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod access_check;
pub mod acl_model;
pub mod apply_steps;
pub mod cmdline;
pub mod env_block;
mod error;
pub mod firewall_plan;
pub mod launch_plan;
pub mod ledger;
pub mod plan;
pub mod policy_view;
pub mod runner_protocol;
pub mod sddl;
pub mod sid;
pub mod tree;
pub mod win_path;

#[cfg(windows)]
#[allow(unsafe_code)]
pub mod apply;

pub use error::{Error, RootRefusal};
use stockade_policy::{Backend, CommandSpec, DoctorReport, Outcome, Policy, SetupOptions, SetupReport};

/// The Windows backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsBackend;

impl Backend for WindowsBackend {
    type Error = Error;

    fn doctor(&self, policy: &Policy) -> DoctorReport {
        imp::doctor(policy)
    }

    fn run(&self, policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Error> {
        imp::run(policy, cmd)
    }

    fn setup(&self, policy: &Policy, options: &SetupOptions) -> Result<SetupReport, Error> {
        imp::setup(policy, options)
    }

    fn cleanup(&self, policy: &Policy) -> Result<SetupReport, Error> {
        imp::cleanup(policy)
    }
}

#[cfg(windows)]
use apply::backend as imp;

#[cfg(not(windows))]
mod imp {
    use stockade_policy::{
        Check, CheckStatus, CommandSpec, Diagnose, DoctorReport, Enforcement, Outcome, Policy, SetupOptions,
        SetupReport,
    };

    use crate::Error;

    fn unsupported() -> Error {
        Error::Unsupported { platform: std::env::consts::OS }
    }

    pub fn doctor(_policy: &Policy) -> DoctorReport {
        let e = unsupported();
        DoctorReport {
            platform: "windows".into(),
            checks: vec![Check {
                name: "backend".into(),
                status: CheckStatus::Missing,
                detail: e.to_string(),
                fix: e.hint(),
            }],
            implementation: None,
            enforcement: Enforcement::default(),
        }
    }

    pub fn run(_policy: &Policy, _cmd: &CommandSpec) -> Result<Outcome, Error> {
        Err(unsupported())
    }

    pub fn setup(_policy: &Policy, _options: &SetupOptions) -> Result<SetupReport, Error> {
        Err(unsupported())
    }

    pub fn cleanup(_policy: &Policy) -> Result<SetupReport, Error> {
        Err(unsupported())
    }
}
