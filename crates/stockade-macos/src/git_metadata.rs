//! The files of a writable root's repository, beyond `.git/hooks` and `.git/config`, through
//! which a command could make git on the host read a config or hooks of its making.
//!
//! * `.git/commondir`, which does not exist in most repositories: any content moves where git
//!   reads the config and hooks from (Linux can only warn about a new one after the run;
//!   Seatbelt can keep it from being created, since a deny rule matches a path that does not
//!   exist yet);
//! * `.git/config.worktree`, read when `extensions.worktreeConfig` is set;
//! * for each linked worktree, `.git/worktrees/<name>/commondir`, `gitdir` and
//!   `config.worktree`;
//! * for each submodule's git directory under `.git/modules` (any depth, with a `HEAD`), its
//!   `hooks` and `config`.
//!
//! Read from the host before each run (the profile itself stays pure). Links are not followed:
//! git never makes `.git/worktrees` or `.git/modules` a link, and what lies behind one is not
//! this repository's metadata.

use std::path::{Path, PathBuf};

/// Most directories looked at under `.git/worktrees` and `.git/modules` of one root: a
/// command could make thousands to slow every later run.
pub const MAX_GIT_DIRS: usize = 128;

/// The paths to keep read-only in the repository of each of `roots` (a root whose `.git` is
/// not a directory has none).
pub fn git_metadata(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in roots {
        let git = root.join(".git");
        if !is_real_dir(&git) {
            continue;
        }
        out.push(git.join("commondir"));
        out.push(git.join("config.worktree"));
        let mut budget = MAX_GIT_DIRS;
        for wt in real_subdirs(&git.join("worktrees")).into_iter().take(MAX_GIT_DIRS) {
            budget -= 1;
            out.extend(["commondir", "gitdir", "config.worktree"].map(|f| wt.join(f)));
        }
        let mut stack = vec![git.join("modules")];
        while let Some(dir) = stack.pop() {
            for sub in real_subdirs(&dir) {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                if sub.join("HEAD").is_file() {
                    out.push(sub.join("hooks"));
                    out.push(sub.join("config"));
                }
                stack.push(sub);
            }
        }
    }
    out
}

fn is_real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// The directories directly in `dir` (not links), sorted.
fn real_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_the_redirecting_files_of_worktrees_and_submodules() {
        let base = std::env::temp_dir().join(format!("stockade-macos-git-metadata-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("ws");
        let git = root.join(".git");
        std::fs::create_dir_all(git.join("worktrees/feat")).unwrap();
        std::fs::create_dir_all(git.join("modules/libs/sub/hooks")).unwrap();
        std::fs::write(git.join("modules/libs/sub/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::os::unix::fs::symlink(&base, git.join("modules/link")).unwrap();
        let other = base.join("plain");
        std::fs::create_dir_all(&other).unwrap();
        let got = git_metadata(&[root.clone(), other]);
        let want: Vec<PathBuf> = [
            "commondir",
            "config.worktree",
            "worktrees/feat/commondir",
            "worktrees/feat/gitdir",
            "worktrees/feat/config.worktree",
            "modules/libs/sub/hooks",
            "modules/libs/sub/config",
        ]
        .iter()
        .map(|r| git.join(r))
        .collect();
        assert_eq!(got, want);
        let _ = std::fs::remove_dir_all(&base);
    }
}
