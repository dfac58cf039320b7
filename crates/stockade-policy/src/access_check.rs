//! What the policy means for one path: read, write, or nothing, and which rule decided.
//!
//! This is the platform-neutral meaning of a [`Policy`]. `stockade explain PATH` prints it, and
//! the backends' tests compare what the kernel actually allowed with it, so every backend is
//! held to one definition. Paths are compared component-wise after canonicalization (the
//! caller passes what [`crate::paths::canonicalize_lenient`] returns).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::policy::{Mode, Policy, Readable};
use crate::provenance::Source;

/// The access a sandboxed command has to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Neither read nor write.
    None,
    /// Read (and execute) only.
    Read,
    /// Read and write.
    Write,
}

/// The rule that decided a path's access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// `danger-full-access`: no sandbox.
    FullAccess,
    /// Under a deny-read path.
    DenyRead {
        /// The deny-read entry.
        path: PathBuf,
        /// Where that entry came from.
        source: Source,
    },
    /// Under a protected path inside a writable root.
    Protected {
        /// The protected entry.
        path: PathBuf,
        /// Where it came from.
        source: Source,
    },
    /// Under a deny-write path.
    DenyWrite {
        /// The deny-write entry.
        path: PathBuf,
        /// Where it came from.
        source: Source,
    },
    /// Under a writable root.
    WritableRoot {
        /// The root.
        path: PathBuf,
        /// Where it came from.
        source: Source,
    },
    /// Readable because the policy reads everything, or because it is under a readable root.
    Readable {
        /// The readable root, or `/` for "everything".
        path: PathBuf,
    },
    /// Not under any readable root.
    NotReadable,
}

/// The decision for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The path asked about.
    pub path: PathBuf,
    /// Its effective access.
    pub access: Access,
    /// The rule that decided.
    #[serde(flatten)]
    pub rule: Rule,
}

/// Decides the access to `path` under `policy`. Most specific rule first: deny-read, then
/// protected and deny-write (read-only carve-outs), then writable roots, then readability.
pub fn decide(policy: &Policy, path: &Path) -> Decision {
    let d = |access, rule| Decision { path: path.to_owned(), access, rule };
    if policy.mode == Mode::DangerFullAccess {
        return d(Access::Write, Rule::FullAccess);
    }
    let fs = &policy.filesystem;
    if let Some(e) = fs.deny_read.iter().find(|e| path.starts_with(&e.value)) {
        return d(Access::None, Rule::DenyRead { path: e.value.clone(), source: e.source.clone() });
    }
    let root = fs.writable_roots.iter().find(|r| path.starts_with(&r.value));
    if root.is_some() {
        if let Some(e) = fs.protected.iter().find(|e| path.starts_with(&e.value)) {
            return d(Access::Read, Rule::Protected { path: e.value.clone(), source: e.source.clone() });
        }
    }
    if let Some(e) = fs.deny_write.iter().find(|e| path.starts_with(&e.value)) {
        let access = if readable(&fs.readable, path, root.is_some()) { Access::Read } else { Access::None };
        return d(access, Rule::DenyWrite { path: e.value.clone(), source: e.source.clone() });
    }
    if let Some(r) = root {
        return d(Access::Write, Rule::WritableRoot { path: r.value.clone(), source: r.source.clone() });
    }
    match &fs.readable {
        Readable::All => d(Access::Read, Rule::Readable { path: PathBuf::from("/") }),
        Readable::Roots(roots) => match roots.iter().find(|r| path.starts_with(&r.value)) {
            Some(r) => d(Access::Read, Rule::Readable { path: r.value.clone() }),
            None => d(Access::None, Rule::NotReadable),
        },
    }
}

fn readable(r: &Readable, path: &Path, in_writable_root: bool) -> bool {
    in_writable_root
        || match r {
            Readable::All => true,
            Readable::Roots(roots) => roots.iter().any(|r| path.starts_with(&r.value)),
        }
}
