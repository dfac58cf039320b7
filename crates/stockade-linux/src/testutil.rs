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

/// An empty scratch directory for one test, under the temporary directory and named after
/// `name` and this process (what an earlier run left there is removed first).
#[allow(clippy::unwrap_used)]
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stockade-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An object name for gitlink entries (git does not look for the object).
pub const GITLINK_OID: &str = "1111111111111111111111111111111111111111";

/// Whether git is installed; prints why a test skips when it is not.
pub fn git_installed() -> bool {
    let there = std::process::Command::new("git").arg("--version").output().is_ok();
    if !there {
        skip("git not installed");
    }
    there
}

/// Says why a test (or part of one) did not run: straight to stderr, since libtest captures
/// `eprintln!`, and CI counts these lines.
pub fn skip(why: &str) {
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("SKIP: {why}\n"));
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

/// One version 2 or 3 git index entry (SHA-1 names) with the given mode and path, with the
/// extended flags when `extended`, padded as git pads it.
pub fn index_entry(mode: u32, path: &str, extended: bool) -> Vec<u8> {
    let mut e = vec![0u8; 24];
    e.extend_from_slice(&mode.to_be_bytes());
    e.extend_from_slice(&[0u8; 12]);
    e.extend_from_slice(&[0xab; 20]);
    let flags = (path.len().min(0xfff) as u16) | if extended { 0x4000 } else { 0 };
    e.extend_from_slice(&flags.to_be_bytes());
    if extended {
        e.extend_from_slice(&[0, 0]);
    }
    e.extend_from_slice(path.as_bytes());
    let pad = 8 - (e.len() % 8);
    e.extend(std::iter::repeat_n(0u8, pad));
    e
}

/// A git index of `version` with `entries` (from [`index_entry`]), the extension bytes `ext`
/// and a (zero) SHA-1 checksum, for tests of index readers.
pub fn index_file(version: u32, entries: &[Vec<u8>], ext: &[u8]) -> Vec<u8> {
    let mut d = b"DIRC".to_vec();
    d.extend_from_slice(&version.to_be_bytes());
    d.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        d.extend_from_slice(e);
    }
    d.extend_from_slice(ext);
    d.extend_from_slice(&[0u8; 20]);
    d
}

/// A version 2 git index with entries of the given modes and paths.
pub fn index_v2(entries: &[(u32, &str)]) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = entries.iter().map(|(mode, path)| index_entry(*mode, path, false)).collect();
    index_file(2, &entries, &[])
}
