//! A check after the run for nested repositories that git on the host enters on its own.
//!
//! A repository records a submodule as a gitlink in its index. When a submodule's checkout has
//! a `.git` (a directory, or a file naming its git directory), a plain `git status` in the
//! outer repository runs git inside it, and that git reads the submodule's config (which can
//! name a program to run, such as `core.fsmonitor`) and hooks. A command in the sandbox can
//! write all of that: `git init sub`, a config, `git update-index --cacheinfo 160000,...,sub`;
//! or repoint an existing submodule's `.git` file at a git directory it made; or make a
//! repository in one run and record it in a later one. Only each writable root's own
//! repository metadata is protected (see docs/linux.md, "What neither implementation stops"),
//! so the run is not stopped; instead the check reports, as a [`Warning`] that the CLI prints:
//!
//! - a gitlink the run added, or one whose checkout gained a `.git` during the run
//!   (`git_submodule_recorded`), whatever that repository's age;
//! - a gitlinked repository's `.git` link, `config`, `config.worktree`, `commondir` or hooks
//!   changed during the run (`git_nested_repository_changed`), submodules of submodules
//!   included;
//! - a submodule git directory under `.git/modules` that the run created (`git_module_created`):
//!   `git submodule update` on the host would adopt it;
//! - anything it could not look at (`git_nested_unchecked`): an index it cannot read, a split
//!   index entry it cannot resolve, too many or too deep submodules.
//!
//! "During the run" means a `ctime` at or after the run's start, read from the clock the kernel
//! stamps files with ([`sys::coarse_realtime`]); a command can set a file's `mtime`, not its
//! `ctime`. "Added" compares with [`snapshot`], which must be taken before the command starts:
//! the namespaces implementation takes it after the go message, while pid 1 builds the mount
//! view, and pid 1 starts the command only once told the snapshot is done.
//!
//! A version of an index whose gitlinks an earlier run read is not read again: they come from
//! `gitlinks_cache` (see [`Watch::with_cache`]), which keeps reading the index off the launch
//! of every command.
//!
//! Every file is read only if it is a regular file (a FIFO or device would block or never end),
//! without following symlinks, and up to a size limit.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use stockade_policy::Warning;

use crate::git_index;
use crate::gitlinks_cache::{self, Cache};
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
    /// Gitlinks of index versions read before (off unless [`Watch::with_cache`]).
    cache: std::cell::RefCell<Cache>,
    /// The wall clock in seconds, for the age of an index version (tests move it).
    clock: fn() -> i64,
}

#[derive(Debug)]
struct Watched {
    /// The work tree.
    root: PathBuf,
    /// Its git directory.
    git: PathBuf,
    /// Its submodules' git directories under `.git/modules` before the run.
    modules: HashSet<PathBuf>,
    /// The index before the command started.
    before: Option<Before>,
}

#[derive(Debug)]
struct Before {
    /// The index file read, and its gitlinks (or why they could not be read).
    index: Snapshot,
    /// The same gitlinks, for lookups (`None`: the index could not be read).
    recorded: Option<HashSet<PathBuf>>,
    /// The gitlinks whose checkout had a `.git`.
    checked_out: HashSet<PathBuf>,
}

/// An index's gitlinks (or why they could not be read), with the identity of the file they
/// were read from (`None`: there was no index).
type Snapshot = (Option<IndexId>, Result<Vec<PathBuf>, String>);

/// What tells one version of an index file from another (git replaces it by renaming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// Whether this version names a shared index (a split index): its gitlinks then come from
    /// a second file, which this identity does not cover.
    split: bool,
    /// Whether a writer could change this version without moving its times: someone had the
    /// file open for writing when it was read (a page of a shared mapping dirtied before then
    /// can change again unseen), or that could not be told, or its filesystem is not one whose
    /// times follow every write (ext4, XFS, Btrfs; on tmpfs no write through a shared mapping
    /// moves them). Asked once, when the file is read: the same `dev` later is the same
    /// filesystem.
    writer: bool,
}

impl IndexId {
    fn key(self, oid_len: usize, checksum: Vec<u8>) -> gitlinks_cache::Key {
        let IndexId { dev, ino, size, mtime, ctime, .. } = self;
        gitlinks_cache::Key { dev, ino, size, mtime, ctime, oid_len, checksum }
    }

    /// The identity `m` gives (not split and without a writer, until the file is read and says
    /// otherwise).
    fn of(m: &std::fs::Metadata) -> Self {
        IndexId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            split: false,
            writer: false,
        }
    }
}

/// Starts watching the repositories among `git_dirs` that are a work tree's own `.git`, with
/// the submodule git directories among them (under a `.git/modules`) as they are before the
/// run; call before the command starts, then [`snapshot`].
pub fn watch(git_dirs: impl IntoIterator<Item = PathBuf>) -> Watch {
    let all: Vec<PathBuf> = git_dirs.into_iter().collect();
    let repos = all
        .iter()
        .filter(|git| git.file_name().is_some_and(|n| n == ".git"))
        .filter_map(|git| {
            let modules = all.iter().filter(|m| m.starts_with(git.join("modules"))).cloned().collect();
            Some(Watched { root: git.parent()?.to_path_buf(), git: git.clone(), modules, before: None })
        })
        .collect();
    Watch { start: sys::coarse_realtime(), repos, cache: Default::default(), clock: || sys::coarse_realtime().0 }
}

impl Watch {
    /// Looks up and records the gitlinks of the indexes it reads in the cache `load` gives
    /// (see `gitlinks_cache`): a version of an index an earlier run read is not read again.
    /// Without repositories to watch, no cache is loaded.
    pub fn with_cache(mut self, load: impl FnOnce() -> Cache) -> Watch {
        if !self.repos.is_empty() {
            self.cache = std::cell::RefCell::new(load());
        }
        self
    }
}

/// Writes back what the watch added to its cache (see [`Watch::with_cache`]); call after
/// [`check`].
pub fn save_cache(w: &Watch) {
    w.cache.borrow().save();
}

/// Reads the watched indexes and which gitlinks are checked out. Must run before the command
/// starts (what [`check`] calls added is what differs from this).
pub fn snapshot(w: &mut Watch) {
    for r in &mut w.repos {
        let index = read_gitlinks(&r.git, Some((&w.cache, (w.clock)())));
        let recorded: Option<HashSet<PathBuf>> = index.1.as_ref().ok().map(|l| l.iter().cloned().collect());
        let checked_out = recorded.iter().flatten().filter(|p| has_dotgit(&r.root.join(p))).cloned().collect();
        r.before = Some(Before { index, recorded, checked_out });
    }
}

/// The warnings after the run (see the module documentation).
pub fn check(w: &Watch) -> Vec<Warning> {
    let mut out = Vec::new();
    for r in &w.repos {
        new_modules(r, &mut out);
    }
    let mut looked = 0;
    // Breadth first, so that the watched repositories' own submodules are looked at before
    // the limit on repositories can cut the walk short. Depth 0: a watched repository.
    let mut todo: std::collections::VecDeque<(PathBuf, PathBuf, usize, Option<&Before>)> =
        w.repos.iter().map(|r| (r.root.clone(), r.git.clone(), 0, r.before.as_ref())).collect();
    while let Some((root, git, depth, before)) = todo.pop_front() {
        let links = match current_gitlinks(&git, before.map(|b| &b.index), w.start) {
            Ok(l) => l,
            Err(why) => {
                out.push(unchecked(&git.join("index"), &why));
                continue;
            }
        };
        for rel in &links {
            let wt = root.join(rel);
            if !has_dotgit(&wt) {
                continue;
            }
            if depth == 0 {
                // Added by the run, or checked out during it (or unknown: counted as such).
                let recorded_before = before.and_then(|b| b.recorded.as_ref()).is_some_and(|l| l.contains(rel));
                let checked_out_before = before.is_some_and(|b| b.checked_out.contains(rel));
                if !recorded_before || !checked_out_before {
                    out.push(recorded(&wt, recorded_before));
                }
            }
            if depth == MAX_DEPTH {
                out.push(unchecked(
                    &git.join("index"),
                    &format!("submodules nested more than {MAX_DEPTH} levels deep"),
                ));
                break;
            }
            if !take_one(&mut looked, &git, &mut out) {
                return out;
            }
            if let Some(sub_git) = inspect(&wt, w.start, &mut out) {
                todo.push_back((wt, sub_git, depth + 1, None));
            }
        }
    }
    out
}

/// Counts one more repository to inspect; past [`MAX_REPOS`], says so and returns false.
fn take_one(looked: &mut usize, git: &Path, out: &mut Vec<Warning>) -> bool {
    if *looked == MAX_REPOS {
        out.push(unchecked(&git.join("index"), &format!("more than {MAX_REPOS} submodules to look at")));
        return false;
    }
    *looked += 1;
    true
}

/// Submodule git directories under the watched repository's `.git/modules` that the run made.
fn new_modules(r: &Watched, out: &mut Vec<Warning>) {
    // Most repositories have none: one `lstat` instead of walking `.git` after every run.
    if r.modules.is_empty() && std::fs::symlink_metadata(r.git.join("modules")).is_err() {
        return;
    }
    match crate::host_facts::git_dirs(&r.root) {
        Ok(Some(dirs)) => {
            for m in dirs.modules.iter().filter(|m| !r.modules.contains(*m)) {
                out.push(Warning {
                    code: "git_module_created".into(),
                    path: m.clone(),
                    message: format!(
                        "the command created the submodule repository `{}`: `git submodule update` on the host \
                         would use it, with its config and hooks, so it can run code a sandboxed command wrote. \
                         Look at it, and remove it unless you expected it, before updating submodules here",
                        m.display()
                    ),
                });
            }
        }
        Ok(None) => {}
        Err(e) => out.push(unchecked(&r.git.join("modules"), &e.to_string())),
    }
}

/// Whether the checkout `wt` has a `.git` (of any kind: git enters it).
fn has_dotgit(wt: &Path) -> bool {
    std::fs::symlink_metadata(wt.join(".git")).is_ok()
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

/// The gitlinks of `git`'s index: from `before` if the file is the one read then.
fn current_gitlinks(git: &Path, before: Option<&Snapshot>, start: (i64, i64)) -> Result<Vec<PathBuf>, String> {
    match before {
        Some((was, links)) if unchanged(git, *was, start) => links.clone(),
        _ => read_gitlinks(git, None).1,
    }
}

/// Whether `git`'s index is still the version `was` names, for a run whose watch started at
/// `start`: the same file, size and times, a `ctime` from before `start` (see
/// [`may_postdate`]), no shared index, and no writer that could have changed it unseen (see
/// [`IndexId::writer`]). The `ctime` rule is git's own "racy" rule: the kernel takes `ctime`
/// from a clock that moves in ticks (before Linux 6.13, and later on filesystems without
/// fine-grained timestamps), so a write in place within the tick of the look before the run
/// could keep it, and the command can put the size and `mtime` back; every write after `start`
/// gets a `ctime` at or after it, and no command can set `ctime` or the clock. A split index's
/// gitlinks also come from its shared index, which the command could rewrite in place, so it
/// is always read again. No index then and now: unchanged. One `lstat` after each run.
fn unchanged(git: &Path, was: Option<IndexId>, start: (i64, i64)) -> bool {
    match (std::fs::symlink_metadata(git.join("index")), was) {
        (Err(e), None) => e.kind() == std::io::ErrorKind::NotFound,
        (Ok(m), Some(was)) => !was.split && !was.writer && !may_postdate(was.ctime, start) && IndexId::of(&m) == was,
        _ => false,
    }
}

/// Reads `git`'s index (and its shared index, if split): the identity of the file read and
/// its gitlinks, or why they could not be read. No index: no gitlinks. The index is streamed
/// through a small buffer, so the supervisor's memory does not grow with it (and no large
/// buffer is freed during the run: an unmap would interrupt the CPUs running pid 1 or the
/// command, which share the supervisor's address space).
///
/// With `cached`, a cache and the time now (only before the run; after it, the index is what
/// the run wrote, which no earlier run can have cached and which is left to the next one): a
/// version whose gitlinks the cache holds is not read past its checksum, as long as nobody has the file
/// open for writing, and what is read goes into the cache if nobody had the file open for writing, it
/// did not change while it was read, its times are older than [`gitlinks_cache::RACY_SECS`]
/// and the index is not split (its shared index is another file, which the key does not
/// cover). Only indexes on a filesystem whose times follow every write are looked up or cached.
/// See `gitlinks_cache` for why each.
fn read_gitlinks(git: &Path, cached: Option<(&std::cell::RefCell<Cache>, i64)>) -> Snapshot {
    let (m, file) = match open_regular(&git.join("index"), MAX_INDEX_BYTES) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, Ok(Vec::new())),
        Err(e) => {
            let id = std::fs::symlink_metadata(git.join("index")).ok().map(|m| IndexId::of(&m));
            return (id, Err(e.to_string()));
        }
    };
    let oid_len = oid_len(git);
    let id = IndexId::of(&m);
    let follows = sys::lease::times_follow_writes(&file);
    let cached = cached.filter(|(cache, _)| cache.borrow().is_on() && follows);
    let key = cached.and_then(|_| checksum(&file, m.size(), oid_len)).map(|sum| id.key(oid_len, sum));
    let hit = cached.zip(key.as_ref()).and_then(|((cache, _), k)| cache.borrow().get(k));
    // Asked once, before reading: a writer that shows up later moves the file's times.
    let writer = !follows || !sys::lease::no_writers(&file);
    let no_writers = key.is_some() && !writer;
    if let (Some(links), true) = (hit, no_writers) {
        // Not split: a split index is never cached (below).
        return (Some(id), Ok(links));
    }
    let mut split = false;
    let links = git_index::gitlinks_from(&file, m.size(), oid_len).map_err(|e| e.to_string()).and_then(|mut links| {
        if let Some(name) = links.shared_index.take() {
            split = true;
            if !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("odd shared index name {name}"));
            }
            let (sm, shared) = open_regular(&git.join(format!("sharedindex.{name}")), MAX_INDEX_BYTES)
                .map_err(|e| format!("shared index sharedindex.{name}: {e}"))?;
            let shared =
                git_index::gitlinks_from(shared, sm.size(), oid_len).map_err(|e| format!("shared index: {e}"))?;
            let mut seen: HashSet<PathBuf> = links.gitlinks.iter().cloned().collect();
            links.gitlinks.extend(shared.gitlinks.into_iter().filter(|p| seen.insert(p.clone())));
            if links.gitlinks.len() > git_index::MAX_GITLINKS {
                return Err(git_index::IndexError::TooManyGitlinks.to_string());
            }
        }
        if links.unnamed_gitlinks > 0 {
            return Err("a split index replaces a submodule entry (this reader does not decode which)".into());
        }
        Ok(links.gitlinks)
    });
    let cacheable = no_writers
        && !split
        && cached.is_some_and(|(_, now)| settled(&id, now))
        && file.metadata().is_ok_and(|after| IndexId::of(&after) == id);
    if let (Ok(l), true, Some((cache, _)), Some(k)) = (&links, cacheable, cached, key) {
        cache.borrow_mut().put(k, l.clone());
    }
    (Some(IndexId { split, writer, ..id }), links)
}

/// Whether a version's times are old enough that any later change to the file moves them
/// (see [`gitlinks_cache::RACY_SECS`]): both before `now` (seconds) by more than that.
fn settled(id: &IndexId, now: i64) -> bool {
    id.mtime.0 < now - gitlinks_cache::RACY_SECS && id.ctime.0 < now - gitlinks_cache::RACY_SECS
}

/// The index's trailing checksum (git's hash of everything before it), or `None` when git
/// wrote none (`index.skipHash`: all zero bytes) or it cannot be read.
fn checksum(file: &std::fs::File, size: u64, oid_len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut sum = vec![0u8; oid_len];
    file.read_exact_at(&mut sum, size.checked_sub(oid_len as u64)?).ok()?;
    sum.iter().any(|&b| b != 0).then_some(sum)
}

/// Opens `p` if it is a regular file of at most `max` bytes: without following a symlink, and
/// without blocking (a FIFO would wait for a writer), then checked with `fstat`.
fn open_regular(p: &Path, max: u64) -> std::io::Result<(std::fs::Metadata, std::fs::File)> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p)?;
    let m = f.metadata()?;
    if !m.is_file() || m.size() > max {
        return Err(std::io::Error::other(format!("not a regular file of at most {max} bytes")));
    }
    Ok((m, f))
}

/// Reads `p` if it is a regular file of at most `max` bytes (see [`open_regular`]).
fn read_regular(p: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let (m, f) = open_regular(p, max)?;
    let mut data = Vec::with_capacity(m.size() as usize);
    f.take(max).read_to_end(&mut data)?;
    Ok(data)
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
    String::from_utf8(read_regular(p, MAX_SMALL_FILE).ok()?).ok()
}

/// Whether `m` may have changed at or after `start` (its ctime, which a command cannot set; see
/// [`may_postdate`]).
fn after(m: &std::fs::Metadata, start: (i64, i64)) -> bool {
    may_postdate((m.ctime(), m.ctime_nsec()), start)
}

/// Whether a change stamped `ctime` may have happened at or after `start` (seconds and
/// nanoseconds of the same clock). A `ctime` without nanoseconds may have been cut to the
/// second, or to two (FAT), so then one from the second before `start`'s counts too.
fn may_postdate(ctime: (i64, i64), start: (i64, i64)) -> bool {
    ctime >= start || (ctime.1 == 0 && ctime.0 + 1 >= start.0)
}

fn recorded(wt: &Path, recorded_before: bool) -> Warning {
    let what = if recorded_before {
        "a repository appeared during the run at the submodule path"
    } else {
        "the command recorded as a submodule, with a repository checked out there,"
    };
    Warning {
        code: "git_submodule_recorded".into(),
        path: wt.to_path_buf(),
        message: format!(
            "{what} `{}`: git on the host enters it on its own (a plain `git status` in the outer repository \
             does), reading its config and running its hooks, so running git here can run code a sandboxed \
             command wrote. Look at it before running git in this repository",
            wt.display()
        ),
    }
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
            "could not check `{}` ({why}), so submodule repositories it records were not checked for config or \
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
        let (base, ws) = repo("changes");
        // Made before the run: an embedded repository recorded as a gitlink (the control for
        // "unchanged"), and a plain nested repository that is not recorded.
        git(&ws, &["init", "-q", "old"]);
        git(&ws, &["init", "-q", "loose"]);
        gitlink(&ws, "old");

        let w = start_run(&ws);
        assert_eq!(codes(&check(&w)), vec![], "nothing changed yet");

        // The command's doing: a config in the loose repository (not recorded: not reported)...
        git(&ws.join("loose"), &["config", "core.fsmonitor", "false"]);
        assert_eq!(codes(&check(&w)), vec![], "a repository that is not a gitlink");
        // ...a new nested repository, recorded as a gitlink...
        git(&ws, &["init", "-q", "new"]);
        git(&ws.join("new"), &["config", "core.fsmonitor", "false"]);
        gitlink(&ws, "new");
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
        let later = start_run(&ws);
        assert!(later.start > w.start);
        assert_eq!(codes(&check(&later)), vec![]);

        // An index that cannot be read is reported, not skipped silently.
        std::fs::write(ws.join(".git/index"), b"DIRC\0\0\0\x09").unwrap();
        let got = codes(&check(&later));
        assert_eq!(got, vec![("git_nested_unchecked".into(), ws.join(".git/index"))]);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// With a cache, a version of the index read before is not read again: a list planted in
    /// the cache for the current version stands in for the file (which shows the lookup), but
    /// not while someone has the file open for writing; a version is cached only once its times
    /// are old enough, and never while a writer has it open; a new version is read.
    #[test]
    fn an_index_read_before_comes_from_the_cache() {
        if !crate::testutil::git_installed() {
            return;
        }
        let (ring, name) = (sys::keyring::THREAD_KEYRING, gitlinks_cache::KEY_NAME);
        if !Cache::load(ring, name).is_on() {
            eprintln!("skipped: keyrings cannot be used here");
            return;
        }
        let (base, ws) = repo("cache");
        let index = ws.join(".git/index");
        let f = std::fs::File::open(&index).unwrap();
        if !sys::lease::times_follow_writes(&f) || !sys::lease::no_writers(&f) {
            eprintln!("skipped: the scratch directory's filesystem is not one the cache trusts, or has no leases");
            let _ = std::fs::remove_dir_all(&base);
            return;
        }
        drop(f);
        let recorded = |w: &Watch| w.repos[0].before.as_ref().and_then(|b| b.recorded.clone()).unwrap();
        let watch_at = |clock: fn() -> i64| {
            let mut w = watch([ws.join(".git")]).with_cache(|| Cache::load(ring, name));
            w.clock = clock;
            snapshot(&mut w);
            save_cache(&w);
            w
        };
        let later: fn() -> i64 = || sys::coarse_realtime().0 + 60;
        let current_key = || {
            let f = std::fs::File::open(&index).unwrap();
            let m = f.metadata().unwrap();
            IndexId::of(&m).key(20, checksum(&f, m.size(), 20).unwrap())
        };

        watch_at(|| sys::coarse_realtime().0);
        assert_eq!(Cache::load(ring, name).get(&current_key()), None, "just written: not settled");
        let writer = std::fs::OpenOptions::new().append(true).open(&index).unwrap();
        watch_at(later);
        assert_eq!(Cache::load(ring, name).get(&current_key()), None, "open for writing: not cached");
        drop(writer);
        // Another test's child, between its fork and its exec, holds copies of this process's
        // descriptors, the writer just dropped among them (the likely cause of one failure
        // here in a full run): look again a few times before concluding.
        let mut cached = None;
        for _ in 0..20 {
            let w = watch_at(later);
            assert!(recorded(&w).is_empty());
            cached = Cache::load(ring, name).get(&current_key());
            if cached.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(cached, Some(vec![]), "settled, no writer: cached");

        let mut planted = Cache::load(ring, name);
        planted.put(current_key(), vec!["ghost".into()]);
        planted.save();
        let w = watch_at(later);
        assert_eq!(recorded(&w), HashSet::from([PathBuf::from("ghost")]), "the cached list, not the file");
        let writer = std::fs::OpenOptions::new().append(true).open(&index).unwrap();
        let w = watch_at(later);
        assert!(recorded(&w).is_empty(), "while a writer has it open, the file is read");
        drop(writer);

        gitlink(&ws, "sub");
        let w = watch_at(later);
        assert_eq!(recorded(&w), HashSet::from([PathBuf::from("sub")]), "a new version is read");
        assert_eq!(Cache::load(ring, name).get(&current_key()), Some(vec![PathBuf::from("sub")]));
        let _ = sys::keyring::remove_user_key(ring, name);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// After the run, the list read before stands for an index that looks the same only if
    /// that version's `ctime` predates the watch and the index is not split. Here the
    /// before-run identity is made to match the file's metadata after the command's change
    /// (what a write in place within one tick of a coarse clock, with the size and `mtime`
    /// put back, would leave): its `ctime` is not before the watch started, so the index is
    /// read again, also when its `ctime` is exactly the watch's start. Control: with the watch
    /// started seconds later, the same identity is trusted on ext4, XFS or Btrfs (and read
    /// again elsewhere), so the rule decides, not the metadata. A split index is read again
    /// whatever its times, and a real one is recorded as split.
    #[test]
    fn an_index_is_trusted_after_the_run_only_if_older_than_the_watch_and_not_split() {
        if !crate::testutil::git_installed() {
            return;
        }
        let (base, ws) = repo("racy");
        git(&ws, &["init", "-q", "sub"]);
        let mut w = start_run(&ws);
        gitlink(&ws, "sub"); // the command's doing
                             // What the read before the run records for this version (on a filesystem whose times
                             // may stay put: a possible writer).
        let follows = sys::lease::times_follow_writes(&std::fs::File::open(ws.join(".git/index")).unwrap());
        let now =
            IndexId { writer: !follows, ..IndexId::of(&std::fs::symlink_metadata(ws.join(".git/index")).unwrap()) };
        w.repos[0].before.as_mut().unwrap().index.0 = Some(now);
        let reported = vec![("git_submodule_recorded".to_string(), ws.join("sub"))];
        assert_eq!(codes(&check(&w)), reported, "changed after the watch started: read again");
        w.start = now.ctime;
        assert_eq!(codes(&check(&w)), reported, "changed in the instant the watch started: read again");
        w.start = (now.ctime.0 + 3, 0);
        let index = std::fs::File::open(ws.join(".git/index")).unwrap();
        if !sys::lease::times_follow_writes(&index) || !sys::lease::no_writers(&index) {
            assert_eq!(codes(&check(&w)), reported, "a filesystem whose times may stay put: read again");
            crate::testutil::skip(
                "the trust rule's control: the scratch directory is not on ext4, XFS or Btrfs, or has no leases",
            );
            let _ = std::fs::remove_dir_all(&base);
            return;
        }
        drop(index);
        assert_eq!(codes(&check(&w)), vec![], "older than the watch and the same: trusted");
        w.repos[0].before.as_mut().unwrap().index.0 = Some(IndexId { split: true, ..now });
        assert_eq!(codes(&check(&w)), reported, "split: read again");
        w.repos[0].before.as_mut().unwrap().index.0 = Some(IndexId { writer: true, ..now });
        assert_eq!(codes(&check(&w)), reported, "a writer when it was read: read again");

        let writer = std::fs::OpenOptions::new().append(true).open(ws.join(".git/index")).unwrap();
        let w = start_run(&ws);
        assert!(w.repos[0].before.as_ref().and_then(|b| b.index.0).is_some_and(|id| id.writer), "writer recorded");
        drop(writer);

        git(&ws, &["update-index", "--split-index"]);
        let w = start_run(&ws);
        assert!(w.repos[0].before.as_ref().and_then(|b| b.index.0).is_some_and(|id| id.split), "split recorded");
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A `ctime` with nanoseconds is compared as it is; one without may have been cut to the
    /// second or to two, so it counts as possibly at or after a start up to two seconds later.
    #[test]
    fn a_ctime_without_nanoseconds_is_given_the_filesystem_granularity() {
        assert!(may_postdate((100, 5), (100, 5)));
        assert!(!may_postdate((100, 4), (100, 5)));
        assert!(!may_postdate((99, 999_999_999), (100, 0)));
        assert!(may_postdate((100, 0), (100, 500)), "cut to the second: maybe after");
        assert!(may_postdate((99, 0), (100, 500)), "cut to two seconds: maybe after");
        assert!(!may_postdate((98, 0), (100, 500)));
        assert!(!may_postdate((98, 0), (100, 0)));
    }

    /// Past [`MAX_REPOS`] checked-out submodules, the check says it stopped; submodules that
    /// are not checked out do not count.
    #[test]
    fn too_many_submodules_is_reported_not_skipped() {
        if !crate::testutil::git_installed() {
            return;
        }
        let base = crate::testutil::scratch_dir("git-nested-many");
        git(&base, &["init", "-q"]);
        let mut info = String::new();
        for i in 0..MAX_REPOS + 40 {
            info.push_str(&format!("160000 {OID}\tm{i:03}\n"));
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
        let w = start_run(&base);
        assert_eq!(codes(&check(&w)), vec![], "{MAX_REPOS} checked out, the rest not: all looked at");
        std::fs::create_dir_all(base.join(format!("m{:03}/.git", MAX_REPOS + 1))).unwrap();
        let got = codes(&check(&w));
        assert_eq!(got.last(), Some(&("git_nested_unchecked".into(), base.join(".git/index"))), "{got:?}");
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A fresh repository with one commit, under a new temporary directory.
    fn repo(name: &str) -> (PathBuf, PathBuf) {
        let base = crate::testutil::scratch_dir(&format!("git-nested-{name}"));
        let ws = base.join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        git(&ws, &["init", "-q"]);
        std::fs::write(ws.join("a"), "a").unwrap();
        git(&ws, &["add", "a"]);
        git(&ws, &["commit", "-qm", "init"]);
        (base, ws)
    }

    use crate::testutil::GITLINK_OID as OID;

    fn gitlink(ws: &Path, path: &str) {
        git(ws, &["update-index", "--add", "--cacheinfo", &format!("160000,{OID},{path}")]);
    }

    /// A run's watch, taken a little after whatever was set up before it.
    fn start_run(ws: &Path) -> Watch {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut w = watch([ws.join(".git")]);
        snapshot(&mut w);
        w
    }

    /// Work split over two runs: a repository made in the first, recorded as a submodule in
    /// the second (its config then predates the second run); and a repository moved into a
    /// submodule path that had no checkout.
    #[test]
    fn submodules_recorded_or_checked_out_by_the_run_are_reported_whatever_their_age() {
        if !crate::testutil::git_installed() {
            return;
        }
        let (base, ws) = repo("two-runs");
        gitlink(&ws, "empty"); // recorded, not checked out
        git(&ws, &["init", "-q", "stash"]);
        git(&ws.join("stash"), &["config", "core.fsmonitor", "false"]);
        git(&ws, &["init", "-q", "stash2"]);
        let w = start_run(&ws);
        assert_eq!(codes(&check(&w)), vec![]);
        std::fs::rename(ws.join("stash"), ws.join("sub")).unwrap();
        gitlink(&ws, "sub");
        std::fs::remove_dir_all(ws.join("empty")).ok();
        std::fs::rename(ws.join("stash2"), ws.join("empty")).unwrap();
        let got = codes(&check(&w));
        assert!(got.contains(&("git_submodule_recorded".into(), ws.join("sub"))), "{got:?}");
        assert!(got.contains(&("git_submodule_recorded".into(), ws.join("empty"))), "{got:?}");
        let _ = std::fs::remove_dir_all(&base);
    }

    /// What the check cannot resolve it reports: a split index replacing a submodule entry,
    /// submodules nested deeper than it follows, a gitlink path git would follow although it
    /// is not a plain relative path. And a FIFO or a symlink to `/dev/zero` where it reads a
    /// file neither hangs it nor fills its memory.
    #[test]
    fn hostile_or_unusual_repositories_are_reported_not_skipped() {
        if !crate::testutil::git_installed() {
            return;
        }
        // Split index: git writes the new gitlink as a nameless replacement entry.
        let (base, ws) = repo("split");
        std::fs::write(ws.join("sub"), "x").unwrap();
        git(&ws, &["add", "sub"]);
        git(&ws, &["update-index", "--split-index"]);
        let w = start_run(&ws);
        std::fs::remove_file(ws.join("sub")).unwrap();
        git(&ws, &["init", "-q", "sub"]);
        git(&ws, &["update-index", "--cacheinfo", &format!("160000,{OID},sub")]);
        let got = codes(&check(&w));
        assert!(got.contains(&("git_nested_unchecked".into(), ws.join(".git/index"))), "{got:?}");
        let _ = std::fs::remove_dir_all(&base);

        // Five levels of checked-out submodules: the fifth is past the limit.
        let (base, ws) = repo("deep");
        let mut dir = ws.clone();
        for level in 1..=MAX_DEPTH + 1 {
            let name = format!("l{level}");
            git(&dir, &["init", "-q", &name]);
            gitlink(&dir, &name);
            dir = dir.join(name);
        }
        let w = start_run(&ws);
        let got = codes(&check(&w));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "git_nested_unchecked");
        let _ = std::fs::remove_dir_all(&base);

        // `./sub`, which git normalises when it writes but follows when it reads one.
        let (base, ws) = repo("odd-path");
        let w = start_run(&ws);
        git(&ws, &["init", "-q", "sub"]);
        let index = crate::testutil::index_v2(&[(0o100644, "a"), (0o160000, "./sub")]);
        std::fs::write(ws.join(".git/index"), index).unwrap();
        let got = codes(&check(&w));
        assert!(got.contains(&("git_submodule_recorded".into(), ws.join("./sub"))), "{got:?}");
        let _ = std::fs::remove_dir_all(&base);

        // A FIFO as a submodule's `.git` and as the index; a split index whose shared index is
        // a symlink to /dev/zero.
        let (base, ws) = repo("fifo");
        let w = start_run(&ws);
        std::fs::create_dir(ws.join("zz")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(ws.join("zz/.git")).status().unwrap().success());
        gitlink(&ws, "zz");
        let (tx, rx) = std::sync::mpsc::channel();
        let w2 = watch([ws.join(".git")]);
        std::thread::spawn(move || {
            tx.send((codes(&check(&w)), {
                std::fs::remove_file(w2.repos[0].git.join("index")).unwrap();
                assert!(std::process::Command::new("mkfifo")
                    .arg(w2.repos[0].git.join("index"))
                    .status()
                    .unwrap()
                    .success());
                codes(&check(&w2))
            }))
        });
        let (got, got_fifo_index) = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the check hung");
        assert!(got.contains(&("git_submodule_recorded".into(), ws.join("zz"))), "{got:?}");
        assert_eq!(got_fifo_index, vec![("git_nested_unchecked".into(), ws.join(".git/index"))]);
        let _ = std::fs::remove_dir_all(&base);

        let (base, ws) = repo("zero");
        git(&ws, &["update-index", "--split-index"]);
        let w = start_run(&ws);
        for e in std::fs::read_dir(ws.join(".git")).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("sharedindex.") {
                std::fs::remove_file(e.path()).unwrap();
                std::os::unix::fs::symlink("/dev/zero", e.path()).unwrap();
            }
        }
        std::fs::write(ws.join(".git/index"), std::fs::read(ws.join(".git/index")).unwrap()).unwrap();
        let got = codes(&check(&w));
        assert_eq!(got, vec![("git_nested_unchecked".into(), ws.join(".git/index"))]);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A submodule git directory the run makes under `.git/modules` (which `git submodule
    /// update` would adopt) is reported; one that was there is not.
    #[test]
    fn submodule_git_dirs_created_by_the_run_are_reported() {
        if !crate::testutil::git_installed() {
            return;
        }
        let (base, ws) = repo("modules");
        std::fs::create_dir_all(ws.join(".git/modules/old")).unwrap();
        std::fs::write(ws.join(".git/modules/old/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let dirs = crate::host_facts::git_dirs(&ws).unwrap().unwrap();
        let mut w = watch(dirs.watched());
        snapshot(&mut w);
        assert_eq!(codes(&check(&w)), vec![]);
        std::fs::create_dir_all(ws.join(".git/modules/evil")).unwrap();
        std::fs::write(ws.join(".git/modules/evil/HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(codes(&check(&w)), vec![("git_module_created".into(), ws.join(".git/modules/evil"))]);
        let _ = std::fs::remove_dir_all(&base);
    }
}
