//! # stockade-policy: what a sandboxed command may do
//!
//! This crate is the platform-neutral half of stockade. It defines the [`Policy`] every backend
//! enforces, resolves it from built-in defaults, the user's `config.toml` (and its named
//! profiles), command-line [`Overrides`] and the administrator's `requirements.toml`, and
//! records the provenance of every value. It also holds the vocabulary shared by all backends:
//! [`CommandSpec`], [`Outcome`], [`Backend`].
//!
//! ## Terms
//!
//! * **workspace**: the directory the command runs in and, by default, may write.
//! * **writable root**: a tree the command may write (the workspace and any extra roots).
//! * **protected path**: a path inside a writable root that stays read-only (`.git/hooks`).
//! * **deny-read / deny-write**: paths the command may not read / write wherever they are.
//! * **requirements**: constraints from an administrator; they can refuse a policy, never widen it.
//! * **provenance**: where a value came from (default, `file:line`, flag, requirement).
//!
//! ## Platform notes
//!
//! Resolution canonicalizes paths on the host it runs on, so a policy is resolved where it is
//! enforced. Configuration locations differ per OS ([`Locations`]).
//!
//! ## Example
//!
//! ```
//! use stockade_policy::{resolve, Access, HostEnv, Locations, Overrides};
//!
//! let dir = std::env::temp_dir();
//! let env = HostEnv { home: Some("/nonexistent-home".into()), cwd: dir.clone(), ..Default::default() };
//! let locations = Locations::linux(&env);
//! let policy = resolve(&Overrides::default(), None, &[], &env, &locations).unwrap();
//! let ws = policy.workspace.clone();
//! assert_eq!(stockade_policy::decide(&policy, &ws.join("src/main.rs")).access, Access::Write);
//! assert_eq!(stockade_policy::decide(&policy, &ws.join(".git/hooks/pre-commit")).access, Access::Read);
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod access_check;
pub mod backend;
mod config_file;
pub mod defaults;

/// The longest timeout a policy may set: a year. Longer ones mean no timeout in practice, and
/// the backends add it to the current time, which must not overflow.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// The smallest memory limit a policy may set. The command's process shares the supervisor's
/// memory until it execs, so a limit below what that set-up needs gets the whole run killed
/// before the command starts, with nothing to say why.
pub const MIN_MEMORY_BYTES: u64 = 64 << 20;

/// The smallest per-process open-file limit a policy may set: the standard streams plus room
/// for a dynamic loader, its libraries and a shell's redirections. Below it programs fail to
/// start with errors that do not point at the limit.
pub const MIN_OPEN_FILES: u32 = 16;
pub mod env_filter;
mod error;
pub mod host_rule;
pub mod locations;
pub mod outcome;
pub mod paths;
pub mod policy;
pub mod provenance;
mod requirements;
pub mod resolve;
mod toml_doc;

pub use access_check::{decide, hidden_by_sandbox, Access, Decision, Rule};
pub use backend::{
    Backend, Check, CheckStatus, CommandSpec, Diagnose, DoctorReport, ListenerSink, ProxyEndpoint, SetupOptions,
    SetupReport, Stdio,
};
pub use error::{Error, Location};
pub use host_rule::{HostPattern, HostRule};
pub use locations::Locations;
pub use outcome::{
    Denial, DenialKind, Enforcement, ExitStatus, Grant, LayerReport, LayerStatus, NetworkEvent, Outcome, Requirement,
    Warning,
};
pub use paths::HostEnv;
pub use policy::*;
pub use provenance::{Provenance, Source, Sourced};
pub use resolve::{load, resolve, FileText, Overrides};
