//! A check after the run for the gap in the `.git` protection that matters most later on the
//! host: a new `commondir` in a writable root's repository (its `.git`, or a submodule's git
//! directory under `.git/modules`), which makes git read its
//! config and hooks from the directory the file names (see docs/linux.md, "What neither
//! implementation stops"). No placeholder can keep the name from being created, so the run is
//! not stopped; the outcome carries a [`Warning`] and the CLI prints it.
//!
//! Git never writes `commondir` in a main repository's `.git` (only in the per-worktree
//! directories under `.git/worktrees/`), so a new one is the command's doing.

use std::path::{Path, PathBuf};

use stockade_policy::Warning;

/// The repositories watched during one run: each writable root's `.git` directory (when it is
/// a repository) and whether it had a `commondir` before the command started.
#[derive(Debug, Default)]
pub struct Watch {
    repos: Vec<(PathBuf, bool)>,
}

/// Records, before the command starts, whether each git directory (from
/// [`crate::host_facts::GitDirs::watched`]) already has a `commondir`.
pub fn watch(git_dirs: impl IntoIterator<Item = PathBuf>) -> Watch {
    let repos = git_dirs
        .into_iter()
        .map(|git| {
            let had = exists_nofollow(&git.join("commondir"));
            (git, had)
        })
        .collect();
    Watch { repos }
}

/// The warnings after the run: a `commondir` in a watched repository, whether this run created
/// it (`git_commondir_created`) or it was already there (`git_commondir_present`, perhaps left
/// by an earlier run: it stays dangerous until someone looks at it).
pub fn check(w: &Watch) -> Vec<Warning> {
    w.repos
        .iter()
        .filter(|(git, _)| exists_nofollow(&git.join("commondir")))
        .map(|(git, had)| warning(&git.join("commondir"), !had))
        .collect()
}

/// The warning for a `commondir` at `path`, created by this run or not.
pub fn warning(path: &Path, created: bool) -> Warning {
    let (code, what) = if created {
        ("git_commondir_created", "the command created")
    } else {
        ("git_commondir_present", "this repository has")
    };
    Warning {
        code: code.into(),
        path: path.to_path_buf(),
        message: format!(
            "{what} `{}`: git on the host reads this repository's config and hooks from the directory \
             that file names (git itself never writes one in a repository's own `.git`), so running git here \
             can run code a sandboxed command wrote. Look at it, and remove it unless you expected it, before \
             running git in this repository",
            path.display()
        ),
    }
}

fn exists_nofollow(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commondir_is_reported_as_created_or_present() {
        let base = std::env::temp_dir().join(format!("stockade-git-redirect-{}", std::process::id()));
        let (repo, plain, none) = (base.join("repo"), base.join("plain"), base.join("none"));
        std::fs::create_dir_all(repo.join(".git/modules/sub")).unwrap();
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(repo.join(".git/modules/sub/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::create_dir_all(plain.join(".git")).unwrap(); // no HEAD: not a repository
        std::fs::create_dir_all(&none).unwrap();
        let mut p = crate::testutil::policy(repo.to_str().unwrap());
        for other in [&plain, &none] {
            p.filesystem
                .writable_roots
                .push(stockade_policy::Sourced::new(other.clone(), stockade_policy::Source::Default));
        }
        let watched = |p: &stockade_policy::Policy| {
            crate::host_facts::repositories(p)
                .unwrap()
                .iter()
                .flat_map(crate::host_facts::GitDirs::watched)
                .collect::<Vec<_>>()
        };
        let w = watch(watched(&p));
        assert_eq!(
            w.repos,
            vec![(repo.join(".git"), false), (repo.join(".git/modules/sub"), false)],
            "only the root holding a repository is watched, with its submodules"
        );
        assert!(check(&w).is_empty(), "nothing changed");
        for r in [&repo, &plain] {
            std::fs::write(r.join(".git/commondir"), "../elsewhere\n").unwrap();
        }
        std::fs::write(repo.join(".git/modules/sub/commondir"), "../../elsewhere\n").unwrap();
        let got = check(&w);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|w| w.code == "git_commondir_created"));
        assert_eq!(got[0].path, repo.join(".git/commondir"));
        assert_eq!(got[1].path, repo.join(".git/modules/sub/commondir"));
        // One that was there before the run is still reported, under its own code.
        let got = check(&watch(watched(&p)));
        assert_eq!(got.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(), ["git_commondir_present"; 2]);
        let _ = std::fs::remove_dir_all(&base);
    }
}
