//! Test helpers: a default policy for a given workspace, without touching the filesystem.

use std::path::PathBuf;

use stockade_policy::{HostEnv, Locations, Overrides, Policy, Source, Sourced};

/// The default policy with `ws` as workspace and only writable root, and no host lists.
pub fn policy(ws: &str) -> Policy {
    let env = HostEnv { home: Some("/nonexistent-home".into()), vars: Default::default(), cwd: std::env::temp_dir() };
    let mut p = stockade_policy::resolve(&Overrides::default(), None, &[], &env, &Locations::linux(&env)).unwrap();
    p.workspace = PathBuf::from(ws);
    p.filesystem.writable_roots = vec![Sourced::new(PathBuf::from(ws), Source::Default)];
    p.filesystem.protected.clear();
    p.filesystem.deny_read.clear();
    p.filesystem.deny_write.clear();
    p
}
