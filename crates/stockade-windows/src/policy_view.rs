//! The policy's filesystem rules in Windows path terms.
//!
//! [`stockade_policy::decide`] is the platform-neutral meaning of a policy, on `std::path`
//! paths of the host. The plan needs the same answers for [`WinPath`]s on every host and with
//! NTFS's case-insensitive names, so this view restates it; a test holds the two to agreement.

use stockade_policy::{Access, Mode, Policy, Readable};

use crate::win_path::WinPath;

/// The policy's path lists as [`WinPath`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    /// `danger-full-access`.
    pub full_access: bool,
    /// Writable roots, the workspace first.
    pub roots: Vec<WinPath>,
    /// Protected paths (read-only inside writable roots).
    pub protected: Vec<WinPath>,
    /// Deny-write paths.
    pub deny_write: Vec<WinPath>,
    /// Deny-read paths.
    pub deny_read: Vec<WinPath>,
    /// Readable roots, or `None` for "everything the user can read".
    pub readable: Option<Vec<WinPath>>,
}

impl PolicyView {
    /// The view of `policy`.
    pub fn new(policy: &Policy) -> PolicyView {
        let fs = &policy.filesystem;
        let list = |v: &[stockade_policy::Sourced<std::path::PathBuf>]| {
            v.iter().map(|s| WinPath::from_path(&s.value)).collect::<Vec<_>>()
        };
        PolicyView {
            full_access: policy.mode == Mode::DangerFullAccess,
            roots: list(&fs.writable_roots),
            protected: list(&fs.protected),
            deny_write: list(&fs.deny_write),
            deny_read: list(&fs.deny_read),
            readable: match &fs.readable {
                Readable::All => None,
                Readable::Roots(r) => Some(list(r)),
            },
        }
    }

    /// The root `path` is in, if any.
    pub fn root_of(&self, path: &WinPath) -> Option<&WinPath> {
        self.roots.iter().find(|r| path.starts_with(r))
    }

    /// Paths inside a writable root that must stay read-only: protected paths and deny-write
    /// paths under a root.
    pub fn read_only_in_roots(&self) -> Vec<WinPath> {
        let mut out: Vec<WinPath> =
            self.protected.iter().chain(&self.deny_write).filter(|p| self.root_of(p).is_some()).cloned().collect();
        out.sort();
        out.dedup();
        out
    }

    /// The access the policy gives `path`, with the same precedence as
    /// [`stockade_policy::decide`].
    pub fn access(&self, path: &WinPath) -> Access {
        if self.full_access {
            return Access::Write;
        }
        if self.deny_read.iter().any(|d| path.starts_with(d)) {
            return Access::None;
        }
        let in_root = self.root_of(path).is_some();
        if in_root && self.protected.iter().any(|p| path.starts_with(p)) {
            return Access::Read;
        }
        let readable =
            || in_root || self.readable.as_ref().is_none_or(|roots| roots.iter().any(|r| path.starts_with(r)));
        if self.deny_write.iter().any(|p| path.starts_with(p)) {
            return if readable() { Access::Read } else { Access::None };
        }
        if in_root {
            return Access::Write;
        }
        if readable() {
            Access::Read
        } else {
            Access::None
        }
    }
}
