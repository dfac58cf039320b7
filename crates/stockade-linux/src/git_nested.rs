//! A check after the run for nested repositories that git on the host enters on its own.
//!
//! A repository records a submodule as a gitlink in its index. When a submodule's checkout has
//! a `.git` (a directory, or a file naming its git directory), a plain `git status` in the
//! outer repository runs git inside it, and that git reads the submodule's config (which can
//! name a program to run, such as `core.fsmonitor`) and hooks. A command in the sandbox can
//! write all of that: `git init sub`, a config, `git update-index --cacheinfo 160000,...,sub`;
//! or repoint an existing submodule's `.git` file at a git directory it made. Only each writable
//! root's own repository metadata is protected (see docs/linux.md, "What neither
//! implementation stops"), so the run is not stopped; instead, after it, every gitlink's
//! repository is looked at, nested ones included, and whatever of its config, hooks or `.git`
//! link changed during the run becomes a [`Warning`] that the CLI prints.
//!
//! "Changed during the run" is a `ctime` at or after the run's start, read from the clock the
//! kernel stamps files with ([`sys::coarse_realtime`]). A command can set a file's `mtime` but
//! not its `ctime`.
//!
//! The index is read while the command runs ([`snapshot`]), off the run's critical path; after
//! the run it is read again only if it changed.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use stockade_policy::Warning;

use crate::git_index;
use crate::sys;

/// Most submodule repositories looked at in one check (all levels together): each costs a
/// dozen or two `lstat` calls after the run.
const MAX_REPOS: usize = 128;
/// How deep submodules of submodules are followed.
const MAX_DEPTH: usize = 4;
/// Largest index read; a bigger one is reported as not checked.
const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Largest `.git` file, `commondir` or config read.
const MAX_SMALL_FILE: u64 = 1 << 20;
/// Most entries of one `hooks` directory looked at.
const MAX_HOOKS: usize = 256;

/// The repositories watched during one run, and when the run started.
#[derive(Debug)]
pub struct Watch {
    start: (i64, i64),
    repos: Vec<Watched>,
}

#[derive(Debug)]
struct Watched {
    /// The work tree.
    root: PathBuf,
    /// Its git directory.
    git: PathBuf,
    /// The index as read during the run.
    snapshot: Option<Snapshot>,
}

/// An index's gitlinks (or why they could not be read), with the identity of the file they
/// were read from.
type Snapshot = (IndexId, Result<Vec<PathBuf>, String>);

/// What tells one version of an index file from another (git replaces it by renaming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl IndexId {
    fn of(m: &std::fs::Metadata) -> Self {
        IndexId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Starts watching the repositories among `git_dirs` that are a work tree's own `.git` (the
/// submodules' git directories under `.git/modules` are reached through the gitlinks); call
/// before the command starts.
pub fn watch(git_dirs: impl IntoIterator<Item = PathBuf>) -> Watch {
    let repos = git_dirs
        .into_iter()
        .filter(|git| git.file_name().is_some_and(|n| n == ".git"))
        .filter_map(|git| Some(Watched { root: git.parent()?.to_path_buf(), git, snapshot: None }))
        .collect();
    Watch { start: sys::coarse_realtime(), repos }
}

/// Reads the watched indexes now, while the command runs, so that [`check`] need not when
/// they did not change.
pub fn snapshot(w: &mut Watch) {
    for r in &mut w.repos {
        r.snapshot = read_gitlinks(&r.git).ok();
    }
}

/// The warnings after the run: config, hooks or `.git` links of a submodule's repository
/// (nested ones included) that changed during the run, and indexes that could not be read.
pub fn check(w: &Watch) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut todo: Vec<(PathBuf, PathBuf, usize, Option<&Snapshot>)> =
        w.repos.iter().map(|r| (r.root.clone(), r.git.clone(), 0, r.snapshot.as_ref())).collect();
    let mut looked = 0;
    while let Some((root, git, depth, snapshot)) = todo.pop() {
        let links = match current_gitlinks(&git, snapshot) {
            Ok(l) => l,
            Err(why) => {
                out.push(unchecked(&git.join("index"), &why));
                continue;
            }
        };
        for rel in links.iter().filter(|p| is_plain_relative(p)) {
            let wt = root.join(rel);
            // A submodule that is not checked out has no `.git`: nothing for git to enter.
            if std::fs::symlink_metadata(wt.join(".git")).is_err() {
                continue;
            }
            if looked == MAX_REPOS {
                out.push(unchecked(&git.join("index"), &format!("more than {MAX_REPOS} submodules to look at")));
                return out;
            }
            looked += 1;
            let Some(sub_git) = inspect(&wt, w.start, &mut out) else { continue };
            if depth + 1 < MAX_DEPTH {
                todo.push((wt, sub_git, depth + 1, None));
            }
        }
    }
    out
}

/// Warns about what changed in the repository of the submodule checkout `wt`, and returns its
/// git directory (`None` when it has none).
fn inspect(wt: &Path, start: (i64, i64), out: &mut Vec<Warning>) -> Option<PathBuf> {
    let dotgit = wt.join(".git");
    let m = std::fs::symlink_metadata(&dotgit).ok()?;
    let gitdir = if m.is_dir() {
        dotgit
    } else {
        // A `gitdir:` file (or a symlink): repointing it is the change to report.
        if after(&m, start) {
            out.push(changed(&dotgit, wt));
        }
        if m.file_type().is_symlink() {
            wt.join(std::fs::read_link(&dotgit).ok()?)
        } else {
            let text = read_small(&dotgit)?;
            wt.join(text.strip_prefix("gitdir:")?.trim())
        }
    };
    let mut dirs = vec![gitdir.clone()];
    if let Some(common) = read_small(&gitdir.join("commondir")) {
        dirs.push(gitdir.join(common.trim()));
    }
    for d in &dirs {
        for f in ["config", "config.worktree", "commondir"] {
            let p = d.join(f);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| after(&m, start)) {
                out.push(changed(&p, wt));
            }
        }
        let hooks = d.join("hooks");
        let Ok(hm) = std::fs::symlink_metadata(&hooks) else { continue };
        // The directory's ctime covers hooks added, removed or renamed; each file's, edits.
        let edited = || {
            std::fs::read_dir(&hooks).into_iter().flatten().flatten().take(MAX_HOOKS).find_map(|e| {
                let p = e.path();
                std::fs::symlink_metadata(&p).is_ok_and(|m| after(&m, start)).then_some(p)
            })
        };
        if after(&hm, start) {
            out.push(changed(&hooks, wt));
        } else if let Some(p) = edited() {
            out.push(changed(&p, wt));
        }
    }
    Some(gitdir)
}

/// The gitlinks of `git`'s index: from `snapshot` if the file is the one read then.
fn current_gitlinks(git: &Path, snapshot: Option<&Snapshot>) -> Result<Vec<PathBuf>, String> {
    let index = git.join("index");
    let m = match std::fs::symlink_metadata(&index) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    match snapshot {
        Some((id, links)) if *id == IndexId::of(&m) => links.clone(),
        _ => read_gitlinks(git).and_then(|(_, links)| links),
    }
}

/// Reads `git`'s index (and its shared index, if split) and returns the identity of the file
/// read with its gitlinks, or why they could not be read; `Err` when it cannot be opened.
fn read_gitlinks(git: &Path) -> Result<Snapshot, String> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(git.join("index")).map_err(|e| e.to_string())?;
    let m = f.metadata().map_err(|e| e.to_string())?;
    let id = IndexId::of(&m);
    if !m.is_file() || m.size() > MAX_INDEX_BYTES {
        return Ok((id, Err(format!("not a regular file of at most {MAX_INDEX_BYTES} bytes"))));
    }
    let mut data = Vec::with_capacity(m.size() as usize);
    if let Err(e) = f.by_ref().take(MAX_INDEX_BYTES).read_to_end(&mut data) {
        return Ok((id, Err(e.to_string())));
    }
    let oid_len = oid_len(git);
    let parsed = git_index::gitlinks(&data, oid_len).map_err(|e| e.to_string()).and_then(|mut links| {
        if let Some(name) = links.shared_index.take().filter(|n| n.bytes().all(|b| b.is_ascii_hexdigit())) {
            let shared = std::fs::read(git.join(format!("sharedindex.{name}")))
                .map_err(|e| format!("shared index sharedindex.{name}: {e}"))?;
            for p in git_index::gitlinks(&shared, oid_len).map_err(|e| format!("shared index: {e}"))?.gitlinks {
                if !links.gitlinks.contains(&p) {
                    links.gitlinks.push(p);
                }
            }
        }
        Ok(links.gitlinks)
    });
    Ok((id, parsed))
}

/// Object name length of the repository at `git`: 32 bytes with
/// `extensions.objectFormat = sha256`, else 20 (SHA-1).
fn oid_len(git: &Path) -> usize {
    let sha256 = read_small(&git.join("config")).is_some_and(|c| {
        c.lines().any(|l| {
            let l = l.trim().to_ascii_lowercase();
            l.strip_prefix("objectformat")
                .and_then(|rest| rest.trim_start().strip_prefix('='))
                .is_some_and(|v| v.trim().trim_matches('"') == "sha256")
        })
    });
    if sha256 {
        32
    } else {
        20
    }
}

fn read_small(p: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut s = String::new();
    std::fs::File::open(p).ok()?.take(MAX_SMALL_FILE).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Whether `m` changed at or after `start` (its ctime, which a command cannot set).
fn after(m: &std::fs::Metadata, start: (i64, i64)) -> bool {
    (m.ctime(), m.ctime_nsec()) >= start
}

/// A path the index may name: relative, with no `..` (git refuses others, but the index is
/// the command's to write).
fn is_plain_relative(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_))) && p.components().next().is_some()
}

fn changed(path: &Path, wt: &Path) -> Warning {
    Warning {
        code: "git_nested_repository_changed".into(),
        path: path.to_path_buf(),
        message: format!(
            "the command changed `{}`, part of the repository of `{}`, which is recorded as a submodule: git on \
             the host enters it on its own (a plain `git status` in the outer repository does), reading that \
             config and running those hooks, so running git here can run code a sandboxed command wrote. Look \
             at it before running git in this repository",
            path.display(),
            wt.display()
        ),
    }
}

fn unchecked(path: &Path, why: &str) -> Warning {
    Warning {
        code: "git_nested_unchecked".into(),
        path: path.to_path_buf(),
        message: format!(
            "could not read `{}` ({why}), so submodule repositories it records were not checked for config or \
             hooks the command changed. Look at them before running git in this repository",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::testutil::git;

    fn codes(w: &[Warning]) -> Vec<(String, PathBuf)> {
        w.iter().map(|w| (w.code.clone(), w.path.clone())).collect()
    }

    /// The attack from docs/linux.md, step by step, each step reported; a nested repository
    /// that is not a gitlink, and one whose files predate the run, are not.
    #[test]
    fn changes_in_gitlinked_repositories_are_reported() {
        if !crate::testutil::git_installed() {
            return;
        }
        let base = std::env::temp_dir().join(format!("stockade-git-nested-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let ws = base.join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        git(&ws, &["init", "-q"]);
        std::fs::write(ws.join("a"), "a").unwrap();
        git(&ws, &["add", "a"]);
        git(&ws, &["commit", "-qm", "init"]);
        // Made before the run: an embedded repository recorded as a gitlink (the control for
        // "unchanged"), and a plain nested repository that is not recorded.
        git(&ws, &["init", "-q", "old"]);
        git(&ws, &["init", "-q", "loose"]);
        let oid = "1111111111111111111111111111111111111111";
        git(&ws, &["update-index", "--add", "--cacheinfo", &format!("160000,{oid},old")]);
        std::thread::sleep(std::time::Duration::from_millis(20));

        let mut w = watch([ws.join(".git")]);
        snapshot(&mut w);
        assert_eq!(codes(&check(&w)), vec![], "nothing changed yet");

        // The command's doing: a config in the loose repository (not recorded: not reported)...
        git(&ws.join("loose"), &["config", "core.fsmonitor", "false"]);
        assert_eq!(codes(&check(&w)), vec![], "a repository that is not a gitlink");
        // ...a new nested repository, recorded as a gitlink...
        git(&ws, &["init", "-q", "new"]);
        git(&ws.join("new"), &["config", "core.fsmonitor", "false"]);
        git(&ws, &["update-index", "--add", "--cacheinfo", &format!("160000,{oid},new")]);
        let got = codes(&check(&w));
        assert!(got.contains(&("git_nested_repository_changed".into(), ws.join("new/.git/config"))), "{got:?}");
        assert!(!got.iter().any(|(_, p)| p.starts_with(ws.join("old"))), "old is unchanged: {got:?}");
        // ...a hook edited in the old one, and its .git replaced by a link elsewhere.
        std::fs::write(ws.join("old/.git/hooks/pre-commit.sample"), "#!/bin/sh\n").unwrap();
        let got = codes(&check(&w));
        assert!(got.contains(&("git_nested_repository_changed".into(), ws.join("old/.git/hooks/pre-commit.sample"))));
        std::fs::rename(ws.join("old/.git"), ws.join("old-gitdir")).unwrap();
        std::fs::write(ws.join("old/.git"), format!("gitdir: {}\n", ws.join("old-gitdir").display())).unwrap();
        let got = codes(&check(&w));
        assert!(got.contains(&("git_nested_repository_changed".into(), ws.join("old/.git"))), "{got:?}");

        // A run that starts now sees none of that as its own.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut later = watch([ws.join(".git")]);
        assert!(later.start > w.start);
        snapshot(&mut later);
        assert_eq!(codes(&check(&later)), vec![]);

        // An index that cannot be read is reported, not skipped silently.
        std::fs::write(ws.join(".git/index"), b"DIRC\0\0\0\x09").unwrap();
        let got = codes(&check(&later));
        assert_eq!(got, vec![("git_nested_unchecked".into(), ws.join(".git/index"))]);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// Past [`MAX_REPOS`] checked-out submodules, the check says it stopped; submodules that
    /// are not checked out do not count.
    #[test]
    fn too_many_submodules_is_reported_not_skipped() {
        if !crate::testutil::git_installed() {
            return;
        }
        let base = std::env::temp_dir().join(format!("stockade-git-nested-many-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        git(&base, &["init", "-q"]);
        let oid = "1111111111111111111111111111111111111111";
        let mut info = String::new();
        for i in 0..MAX_REPOS + 40 {
            info.push_str(&format!("160000 {oid}\tm{i:03}\n"));
            if i < MAX_REPOS {
                std::fs::create_dir_all(base.join(format!("m{i:03}/.git"))).unwrap();
            }
        }
        let mut child = std::process::Command::new("git")
            .arg("-C")
            .arg(&base)
            .args(["update-index", "--index-info"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), info.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        let w = watch([base.join(".git")]);
        assert_eq!(codes(&check(&w)), vec![], "{MAX_REPOS} checked out, the rest not: all looked at");
        std::fs::create_dir_all(base.join(format!("m{:03}/.git", MAX_REPOS + 1))).unwrap();
        assert_eq!(codes(&check(&w)), vec![("git_nested_unchecked".into(), base.join(".git/index"))]);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn only_plain_relative_paths_are_followed() {
        assert!(is_plain_relative(Path::new("a/b")));
        for p in ["", "/etc", "../x", "a/../../x", "./a"] {
            assert!(!is_plain_relative(Path::new(p)), "{p}");
        }
    }
}
