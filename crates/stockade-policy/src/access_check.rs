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

/// The rule that decided a path's access. In JSON its fields sit beside the decision's own
/// (flattened), so a rule's entry is written as `entry`, never as a second `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// `danger-full-access`: no sandbox.
    FullAccess,
    /// Under a deny-read path.
    DenyRead {
        /// The deny-read entry.
        #[serde(rename = "entry")]
        path: PathBuf,
        /// Where that entry came from.
        source: Source,
    },
    /// Under a protected path inside a writable root.
    Protected {
        /// The protected entry.
        #[serde(rename = "entry")]
        path: PathBuf,
        /// Where it came from.
        source: Source,
    },
    /// Under a deny-write path.
    DenyWrite {
        /// The deny-write entry.
        #[serde(rename = "entry")]
        path: PathBuf,
        /// Where it came from.
        source: Source,
    },
    /// Under a writable root.
    WritableRoot {
        /// The root.
        #[serde(rename = "entry")]
        path: PathBuf,
        /// Where it came from.
        source: Source,
    },
    /// Readable because the policy reads everything, or because it is under a readable root.
    Readable {
        /// The readable root, or `/` for "everything".
        #[serde(rename = "entry")]
        path: PathBuf,
    },
    /// Not under any readable root.
    NotReadable,
    /// In a host directory this platform's sandbox hides whatever the policy says (the host's
    /// socket directories, or its shared temp directories where the sandbox has its own); see
    /// [`hidden_by_sandbox`].
    HiddenBySandbox {
        /// The hidden directory.
        hidden_dir: PathBuf,
        /// Why the sandbox hides it, in words.
        reason: String,
    },
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

/// `decision` as the sandbox applies it on a host where it hides the directories in `hidden`
/// (each with its reason, from the platform's backend): a path in one of them is neither
/// readable nor writable, unless it lies in a writable root (which the sandbox keeps) or the
/// policy already denies it. Pure.
pub fn hidden_by_sandbox(policy: &Policy, decision: Decision, hidden: &[(PathBuf, String)]) -> Decision {
    let in_writable_root = policy.filesystem.writable_roots.iter().any(|r| decision.path.starts_with(&r.value));
    if decision.access == Access::None || in_writable_root || policy.mode == Mode::DangerFullAccess {
        return decision;
    }
    match hidden.iter().find(|(dir, _)| decision.path.starts_with(dir)) {
        Some((dir, reason)) => Decision {
            access: Access::None,
            rule: Rule::HiddenBySandbox { hidden_dir: dir.clone(), reason: reason.clone() },
            ..decision
        },
        None => decision,
    }
}

#[cfg(test)]
mod hidden_tests {
    use super::*;
    use crate::provenance::Sourced;

    #[test]
    fn a_hidden_directory_overrides_readability_but_not_a_writable_root() {
        let env = crate::HostEnv { home: Some("/home/u".into()), cwd: "/usr".into(), ..Default::default() };
        let mut p =
            crate::resolve(&crate::Overrides::default(), None, &[], &env, &crate::Locations::linux(&env)).unwrap();
        p.filesystem.writable_roots = vec![Sourced::new(PathBuf::from("/tmp/ws"), Source::Default)];
        let hidden = [(PathBuf::from("/run"), "host sockets".to_owned()), ("/tmp".into(), "private /tmp".into())];
        let d = hidden_by_sandbox(&p, decide(&p, Path::new("/run/secrets/token")), &hidden);
        assert_eq!(d.access, Access::None);
        assert_eq!(d.rule, Rule::HiddenBySandbox { hidden_dir: "/run".into(), reason: "host sockets".into() });
        let w = hidden_by_sandbox(&p, decide(&p, Path::new("/tmp/ws/src")), &hidden);
        assert_eq!(w.access, Access::Write, "a writable root stays");
        let u = hidden_by_sandbox(&p, decide(&p, Path::new("/usr/bin/git")), &hidden);
        assert_eq!(u.access, Access::Read, "control");
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    /// The decision's `path` is the path asked about; the rule's entry is `entry`.
    #[test]
    fn the_asked_path_and_the_rules_entry_keep_their_own_keys() {
        let d = Decision {
            path: PathBuf::from("/home/u/.ssh/id_rsa"),
            access: Access::None,
            rule: Rule::DenyRead { path: "/home/u/.ssh".into(), source: Source::Default },
        };
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(text.matches("\"path\"").count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["path"], "/home/u/.ssh/id_rsa");
        assert_eq!(v["entry"], "/home/u/.ssh");
    }
}
