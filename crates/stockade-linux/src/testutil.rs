//! Test helpers: a default policy for a given workspace (without touching the filesystem), and
//! running git with no user or system config.

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

/// Whether git is installed; prints why a test skips when it is not.
pub fn git_installed() -> bool {
    let there = std::process::Command::new("git").arg("--version").output().is_ok();
    if !there {
        eprintln!("SKIP: git not installed");
    }
    there
}

/// Runs git in `dir` with no user or system config (and any directory trusted), failing the
/// test if it fails.
#[allow(clippy::unwrap_used)]
pub fn git(dir: &std::path::Path, args: &[&str]) {
    let o = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A version 2 git index (SHA-1 names) with entries of the given modes and paths, for tests of
/// index readers.
pub fn index_v2(entries: &[(u32, &str)]) -> Vec<u8> {
    let mut d = b"DIRC".to_vec();
    d.extend_from_slice(&2u32.to_be_bytes());
    d.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (mode, path) in entries {
        let mut e = vec![0u8; 24];
        e.extend_from_slice(&mode.to_be_bytes());
        e.extend_from_slice(&[0u8; 12]);
        e.extend_from_slice(&[0xab; 20]);
        e.extend_from_slice(&(path.len().min(0xfff) as u16).to_be_bytes());
        e.extend_from_slice(path.as_bytes());
        let pad = 8 - (e.len() % 8);
        e.extend(std::iter::repeat_n(0u8, pad));
        d.extend_from_slice(&e);
    }
    d.extend_from_slice(&[0u8; 20]);
    d
}
