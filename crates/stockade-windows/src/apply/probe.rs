//! Gathering [`HostFacts`]: who the user is, and a snapshot of the objects a plan is about.
//!
//! Per run the snapshot covers the roots, their ancestors, the protected and deny paths and
//! stockade's temp parent: O(number of roots × depth) descriptor reads, never a walk of the
//! workspace. Setup adds a bounded scan (the children of the drive root and of the profile) to
//! find places writable by everyone.

use std::collections::BTreeMap;
use std::path::Path;

use stockade_policy::Policy;

use super::{acl, token};
use crate::error::Error;
use crate::plan::{HostFacts, Identity};
use crate::policy_view::PolicyView;
use crate::tree::{Node, Tree};
use crate::win_path::WinPath;

/// Adds `path` to the tree if it exists (errors other than "not found" are reported).
fn snapshot(tree: &mut Tree, path: &WinPath) -> Result<(), Error> {
    if tree.exists(path) {
        return Ok(());
    }
    let h = match acl::open(path, false) {
        Ok(h) => h,
        Err(Error::Win32 { code: 2 | 3 | 5 | 123, .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let i = acl::info(&h, path)?;
    let sd = match acl::read_for_model(&h, path) {
        Ok(sd) => sd,
        // Object or callback ACEs: the model cannot evaluate this object; leave it out of the
        // snapshot. If the plan must change it, `acl::change` refuses with the same error.
        Err(Error::UnsupportedAcl { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    tree.nodes.insert(path.clone(), Node { is_dir: i.is_dir, reparse: i.reparse, sd });
    Ok(())
}

fn env_path(name: &str) -> Option<WinPath> {
    std::env::var_os(name).map(|v| WinPath::from_path(Path::new(&v)))
}

/// The facts for `policy`. `scan` adds the setup-time scan.
pub fn facts(policy: &Policy, state_dir: &Path, scan: bool) -> Result<HostFacts, Error> {
    let tok = token::process_token()?;
    let id = token::identity(&tok)?;
    let profile = env_path("USERPROFILE").unwrap_or_default();
    let identity = Identity {
        user: id.user,
        name: std::env::var("USERNAME").unwrap_or_default(),
        groups: id.groups,
        logon_sid: id.logon_sid,
        profile_dir: profile.clone(),
        temp_dir: env_path("TEMP"),
    };
    let state = WinPath::from_path(state_dir);
    let view = PolicyView::new(policy);
    let mut interesting: Vec<WinPath> = Vec::new();
    interesting.extend(view.roots.iter().cloned());
    interesting.extend(view.read_only_in_roots());
    interesting.extend(view.deny_read.iter().cloned());
    interesting.extend(view.deny_write.iter().cloned());
    interesting.push(state.join("tmp"));
    let mut tree = Tree::default();
    for p in &interesting {
        for a in p.ancestors_and_self() {
            snapshot(&mut tree, &a)?;
        }
    }
    if scan {
        for dir in [WinPath::new(&profile.components().first().cloned().unwrap_or_default()), profile.clone()] {
            if let Ok(entries) = std::fs::read_dir(dir.to_string()) {
                for e in entries.flatten().take(200) {
                    snapshot(&mut tree, &WinPath::from_path(&e.path()))?;
                }
            }
        }
    }
    // PATH directories inside the profile (per-user tool installs), for the elevated read grants.
    let mut tool_dirs = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let d = WinPath::from_path(&dir);
            if d.starts_with(&profile) && d != profile && !tool_dirs.contains(&d) {
                for a in d.ancestors_and_self() {
                    snapshot(&mut tree, &a)?;
                }
                tool_dirs.push(d);
            }
        }
    }
    let mut fingerprints = BTreeMap::new();
    for r in view.roots.iter().chain(std::iter::once(&state.join("tmp"))) {
        if let Ok(fp) = acl::fingerprint(r) {
            fingerprints.insert(r.clone(), fp);
        }
    }
    let system_dirs =
        ["SystemRoot", "ProgramFiles", "ProgramFiles(x86)", "ProgramData"].iter().filter_map(|v| env_path(v)).collect();
    Ok(HostFacts { identity, state_dir: state, tree, fingerprints, tool_dirs, system_dirs })
}
