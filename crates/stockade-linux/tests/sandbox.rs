//! End-to-end runs of real sandboxes through the library API (and, for the byte-exact stdout
//! and unprivileged cases, through the built `stockade` binary).
//!
//! Every "denied" check has an "allowed" control beside it, and host-side effects are checked
//! on the host (file hashes, processes), not only exit codes. Tests that need user namespaces
//! or root print why they skip.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stockade_linux::mount_plan::PLACEHOLDER_NOTE;
use stockade_linux::LinuxBackend;
use stockade_policy::{
    Backend, CommandSpec, Diagnose, ExitStatus, HostEnv, LinuxImplementation, Locations, Outcome, Overrides, Policy,
    Source, Stdio,
};

use common::skip;

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test: `<tmp>/stockade-linux-test-<pid>-<n>/{ws,home,out}`.
struct Dirs {
    base: PathBuf,
    ws: PathBuf,
    home: PathBuf,
    out: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        // Not below /tmp: the sandbox's /tmp is private, which would hide the host side.
        let base = test_root().join(format!(
            "stockade-linux-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        for sub in ["ws", "home", "out"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        let base = std::fs::canonicalize(base).unwrap();
        Dirs { ws: base.join("ws"), home: base.join("home"), out: base.join("out"), base }
    }
}

/// Where test directories go: the target dir's tmp, unless that lies in a directory the sandbox
/// makes private (a checkout under /tmp), in which case a fixed directory elsewhere.
fn test_root() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let private = ["/tmp", "/var/tmp", "/dev/shm", "/run"].iter().any(|p| target.starts_with(p));
    if !private {
        return target.to_path_buf();
    }
    let root = if euid() == 0 {
        PathBuf::from("/var/lib/stockade-linux-tests")
    } else {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/stockade-linux-tests")
    };
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// The effective uid, read from /proc (the tests avoid unsafe code).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn policy(d: &Dirs, tweak: impl FnOnce(&mut Overrides)) -> Policy {
    let mut o = Overrides { workspace: Some(d.ws.clone()), ..Overrides::default() };
    tweak(&mut o);
    let env = HostEnv { home: Some(d.home.clone()), vars: Default::default(), cwd: d.ws.clone() };
    stockade_policy::resolve(&o, None, &[], &env, &Locations::linux(&env)).unwrap()
}

fn userns() -> bool {
    match stockade_linux::host_facts::probe_userns() {
        Ok(()) => true,
        Err(why) => {
            skip("userns", &why);
            false
        }
    }
}

/// Whether git is installed (printing why the test skips if not).
fn git_installed() -> bool {
    let there = Command::new("git").arg("--version").output().is_ok();
    if !there {
        let _ = writeln!(std::io::stderr(), "SKIP: git not installed");
    }
    there
}

fn spec(script: &str) -> CommandSpec {
    CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: None,
        host_env: vec![(OsString::from("PATH"), OsString::from("/usr/local/bin:/usr/bin:/bin"))],
        stdio: Stdio::Null,
    }
}

fn run(p: &Policy, script: &str) -> Outcome {
    LinuxBackend::default().run(p, &spec(script)).unwrap()
}

fn code(o: &Outcome) -> i32 {
    o.status.cli_code()
}

fn hash_tree(dir: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    let mut entries: Vec<_> = walk(dir);
    entries.sort();
    for p in entries {
        p.hash(&mut h);
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()).hash(&mut h);
            if m.is_file() {
                std::fs::read(&p).unwrap().hash(&mut h);
            }
        }
    }
    h.finish()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            v.extend(walk(&p));
        }
        v.push(p);
    }
    v
}

#[test]
fn writes_outside_denied_inside_allowed() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    std::fs::write(d.out.join("existing"), "keep").unwrap();
    let before = hash_tree(&d.out);
    let p = policy(&d, |_| {});
    let out = d.out.display();
    // Each denied verb must fail (so the script counts failures), and the control must succeed.
    let script = format!(
        "n=0; echo x > {out}/new || n=$((n+1)); echo x >> {out}/existing || n=$((n+1)); true > {out}/existing || n=$((n+1)); \
         mkdir {out}/d || n=$((n+1)); rm {out}/existing || n=$((n+1)); ln -s x {out}/l || n=$((n+1)); \
         chmod 777 {out}/existing || n=$((n+1)); touch -d 2000-01-01 {out}/existing || n=$((n+1)); \
         echo inside > ws-file || exit 99; exit $n"
    );
    let o = run(&p, &script);
    assert_eq!(code(&o), 8, "every outside write verb fails, the inside write works: {o:?}");
    assert_eq!(hash_tree(&d.out), before, "host dir outside the workspace unchanged");
    assert_eq!(std::fs::read_to_string(d.ws.join("ws-file")).unwrap(), "inside\n");
    assert_eq!(o.implementation, "namespaces");
}

/// The private `/tmp`, `/var/tmp` and `/dev/shm` are writable in every run, however the
/// command's Landlock set-up and pid 1's mounts interleave. A Landlock rule for `/tmp` taken
/// before pid 1 had mounted the private tmpfs there held the host's `/tmp`, which Landlock's
/// walk skips once covered: 5 and 2 of 300 CLI runs (musl and glibc builds) then failed to
/// create anything in `/tmp` or `/var/tmp`, and 6 to 10 of these 120 runs in each of three
/// tries with that timing put back. The rule's timing is pinned by `landlock_rules` tests; this
/// catches such a race end to end. The control: a write outside the workspace still fails.
#[test]
fn private_tmp_dirs_writable_in_every_run() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |_| {});
    let out = d.out.display();
    let script = format!(
        "touch /tmp/f /var/tmp/f /dev/shm/f && mkdir /tmp/d /var/tmp/d /dev/shm/d || exit 1; \
         touch {out}/f 2>/dev/null && exit 2; exit 0"
    );
    let mut failed = Vec::new();
    for i in 0..120 {
        let o = run(&p, &script);
        if code(&o) != 0 {
            failed.push((i, code(&o)));
        }
    }
    assert!(
        failed.is_empty(),
        "runs that could not write their private temp dirs (1) or wrote outside (2): {failed:?}"
    );
    assert!(!d.out.join("f").exists(), "nothing written outside");
}

#[test]
fn protected_paths_read_only_and_missing_ones_not_creatable() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    std::fs::create_dir_all(d.ws.join(".vscode")).unwrap();
    std::fs::write(d.ws.join(".vscode/settings.json"), "{}").unwrap();
    let p = policy(&d, |_| {});
    let o = run(
        &p,
        "n=0; echo x >> .vscode/settings.json || n=$((n+1)); mkdir -p .git/hooks || n=$((n+1)); \
         echo x > .codex/x || n=$((n+1)); git init -q 2>/dev/null || n=$((n+1)); echo ok > allowed || exit 99; exit $n",
    );
    assert_eq!(code(&o), 4, "{o:?}");
    assert_eq!(std::fs::read_to_string(d.ws.join(".vscode/settings.json")).unwrap(), "{}");
    assert!(!d.ws.join(".git/hooks").exists(), "no hooks dir on the host");
    assert!(!d.ws.join(".codex/x").exists());
    assert_eq!(entries(&d.ws.join(".git")), [PLACEHOLDER_NOTE], "the .git placeholder holds only its note");
    assert!(d.ws.join("allowed").exists(), "control: the workspace itself is writable");
    // git ignores the placeholder: the workspace is not a repository.
    let g = Command::new("git").arg("-C").arg(&d.ws).args(["rev-parse", "--git-dir"]).output();
    if let Ok(g) = g {
        assert!(!g.status.success() || !String::from_utf8_lossy(&g.stdout).contains(d.ws.to_str().unwrap()));
    }
}

/// A `.git` that is not a repository (no `HEAD`) is protected whole on every run, not only on
/// the run that created it as a placeholder: protecting just its hooks and config would let the
/// command add `HEAD`, `objects` and `refs`, making the workspace a repository of its making
/// and hiding the parent one.
#[test]
fn a_git_dir_without_head_stays_read_only_on_later_runs() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |_| {});
    let attack = "n=0; echo 'ref: refs/heads/main' > .git/HEAD 2>/dev/null && n=$((n+1)); \
                  mkdir .git/objects 2>/dev/null && n=$((n+1)); echo x > .git/commondir 2>/dev/null && n=$((n+1)); \
                  git init -q 2>/dev/null && n=$((n+1)); echo ok > allowed || exit 99; exit $n";
    // First run: `.git` is missing and becomes a placeholder. Second run: the placeholder is
    // there. Third: an empty `.git` made by someone else.
    for round in ["placeholder created", "placeholder present", "empty .git"] {
        if round == "empty .git" {
            std::fs::remove_dir_all(d.ws.join(".git")).unwrap();
            std::fs::create_dir(d.ws.join(".git")).unwrap();
        }
        let before =
            if d.ws.join(".git").exists() { entries(&d.ws.join(".git")) } else { vec![PLACEHOLDER_NOTE.into()] };
        let o = run(&p, attack);
        assert_eq!(code(&o), 0, "{round}: the command wrote into .git: {o:?}");
        assert_eq!(entries(&d.ws.join(".git")), before, "{round}");
        assert!(d.ws.join("allowed").exists(), "{round}: control: the workspace itself is writable");
        std::fs::remove_file(d.ws.join("allowed")).unwrap();
    }
}

/// A repository at `ws` with one commit and a linked worktree at `worktree`.
fn repo_with_worktree(ws: &Path, worktree: &Path) {
    let g = |args: &[&str]| {
        let ok = Command::new("git").arg("-C").arg(ws).args(args).status().unwrap().success();
        assert!(ok, "git {args:?}");
    };
    g(&["init", "-q"]);
    g(&["-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "one"]);
    g(&["worktree", "add", "-q", worktree.to_str().unwrap()]);
}

/// Beyond `.git/hooks` and `.git/config`: the files through which git on the host could be
/// redirected or made to run code are read-only too, for linked worktrees (`commondir`,
/// `config.worktree`), submodules (`hooks`, `config` in `.git/modules/...`) and the main
/// worktree's `config.worktree`; their directories cannot be renamed away. `git commit` still
/// works, and so does writing elsewhere in `.git` (controls).
#[test]
fn worktree_and_submodule_metadata_is_read_only() {
    if !userns() || !git_installed() {
        return;
    }
    let d = Dirs::new();
    repo_with_worktree(&d.ws, &d.out.join("wt"));
    // A submodule's git directory, as `git submodule update` leaves it (with a `/` in its name).
    let module = d.ws.join(".git/modules/libs/sub");
    std::fs::create_dir_all(module.join("hooks")).unwrap();
    std::fs::write(module.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(module.join("config"), "[core]\n\tworktree = ../../../../libs/sub\n").unwrap();
    let git = d.ws.join(".git");
    let watched = [
        git.join("worktrees/wt/commondir"),
        git.join("worktrees/wt/gitdir"),
        git.join("worktrees/wt/config.worktree"),
        module.join("config"),
    ];
    let before: Vec<Vec<u8>> = watched.iter().map(|p| std::fs::read(p).unwrap_or_default()).collect();
    let p = policy(&d, |_| {});
    let o = run(
        &p,
        "n=0; for f in .git/worktrees/wt/commondir .git/worktrees/wt/gitdir .git/worktrees/wt/config.worktree .git/config.worktree \
         .git/modules/libs/sub/config .git/modules/libs/sub/hooks/post-checkout; do \
           echo x > $f 2>/dev/null && { echo wrote $f; n=$((n+1)); }; done; \
         mv .git/worktrees/wt .git/worktrees/moved 2>/dev/null && { echo moved wt; n=$((n+1)); }; \
         mv .git/modules/libs .git/modules/moved 2>/dev/null && { echo moved libs; n=$((n+1)); }; \
         echo x >> .git/info/exclude || exit 98; \
         git -c user.email=t@example.invalid -c user.name=t commit -q --allow-empty -m two || exit 99; exit $n",
    );
    assert_eq!(code(&o), 0, "{o:?}");
    let after: Vec<Vec<u8>> = watched.iter().map(|p| std::fs::read(p).unwrap_or_default()).collect();
    assert_eq!(after, before, "host-side: the worktree and submodule metadata is unchanged");
    assert!(!module.join("hooks/post-checkout").exists());
    let log = Command::new("git").arg("-C").arg(&d.ws).args(["log", "--oneline"]).output().unwrap();
    assert!(String::from_utf8_lossy(&log.stdout).contains("two"), "control: the commit landed");
    // The linked worktree still works from the host.
    let st = Command::new("git").arg("-C").arg(d.out.join("wt")).args(["status", "--short"]).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    // Thousands of directories under .git/worktrees (which a command could make to slow every
    // later run, or to push real ones past a cap) refuse the run, with the fix in the message.
    for i in 0..=stockade_linux::host_facts::MAX_GIT_DIRS {
        std::fs::create_dir(git.join(format!("worktrees/junk{i}"))).unwrap();
    }
    let e = LinuxBackend::default().run(&p, &spec("true")).unwrap_err();
    assert!(e.to_string().contains("git metadata") && e.to_string().contains("git worktree prune"), "{e:?}");
}

/// A linked worktree inside the workspace: its `.git` file is read-only, since a command could
/// otherwise point it at a repository of its making whose config git on the host would obey
/// there. Control: other files of that worktree are writable.
#[test]
fn a_linked_worktree_inside_the_workspace_keeps_its_git_file() {
    if !userns() || !git_installed() {
        return;
    }
    let d = Dirs::new();
    repo_with_worktree(&d.ws, &d.ws.join(".worktrees/feat"));
    let pointer = d.ws.join(".worktrees/feat/.git");
    let before = std::fs::read(&pointer).unwrap();
    let o = run(
        &policy(&d, |_| {}),
        "echo 'gitdir: /elsewhere/.git' > .worktrees/feat/.git && exit 91; \
         mv .worktrees/feat .worktrees/moved && exit 92; echo x > .worktrees/feat/file || exit 93; exit 0",
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(std::fs::read(&pointer).unwrap(), before, "host-side: the worktree's .git file is unchanged");
    assert!(d.ws.join(".worktrees/feat/file").exists(), "control: the worktree's files are writable");
}

/// The private tmpfs mounts limit inodes as well as bytes (THREATS.md R3): empty files take
/// kernel memory their size does not count. Control: files can be made there.
#[test]
fn private_tmpfs_mounts_limit_inodes() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let o = run(
        &policy(&d, |_| {}),
        "for m in /tmp /var/tmp /dev/shm; do grep -q \" $m [^ ]* .*tmpfs .*nr_inodes=262144\" /proc/self/mountinfo || exit 90; done; \
         touch /tmp/a /var/tmp/a /dev/shm/a || exit 91; exit 0",
    );
    assert_eq!(code(&o), 0, "{o:?}");
}

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// THREATS F15: replacing or removing a dentry on the host detaches the mounts on it in other
/// mount namespaces, and `rename(2)` may replace an empty directory. An empty `.git`
/// placeholder renamed over during a run used to drop the sandbox's read-only bind, letting the
/// command plant hooks in whatever took its place. A placeholder is never empty, so the rename
/// fails and the bind stays.
#[test]
fn placeholder_cannot_be_replaced_on_the_host_during_a_run() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |o| o.writable_roots.push(d.out.clone()));
    let (ws, out) = (d.ws.clone(), d.out.clone());
    let host = std::thread::spawn(move || {
        // Wait until the command is running (it writes `started`), then try to put a fresh
        // directory in the placeholder's place.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !out.join("started").exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::create_dir(ws.join("fresh")).unwrap();
        let r = std::fs::rename(ws.join("fresh"), ws.join(".git"));
        std::fs::write(out.join("renamed"), "").unwrap();
        r
    });
    let script = format!(
        "echo > {out}/started; i=0; while [ ! -e {out}/renamed ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; \
         n=0; mkdir -p .git/hooks 2>/dev/null && n=$((n+1)); \
         echo '#!/bin/sh' > .git/hooks/pre-commit 2>/dev/null && n=$((n+1)); \
         echo ok > allowed || exit 99; exit $n",
        out = d.out.display()
    );
    let o = run(&p, &script);
    let renamed = host.join().unwrap();
    let err = renamed.expect_err("the host could rename a directory over the non-empty placeholder");
    assert!(matches!(err.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)), "{err}");
    assert_eq!(code(&o), 0, "the command could create .git/hooks or a hook: {o:?}");
    assert!(!d.ws.join(".git/hooks").exists(), "no hooks dir on the host");
    assert_eq!(entries(&d.ws.join(".git")), [PLACEHOLDER_NOTE]);
    assert!(d.ws.join("allowed").exists(), "control: the workspace itself is writable");
    // Control for the mechanism: an empty directory in the workspace can be replaced.
    std::fs::create_dir(d.ws.join("empty")).unwrap();
    std::fs::rename(d.ws.join("fresh"), d.ws.join("empty")).unwrap();
}

/// The host side of placeholders: a noted directory appears whole (never empty), an existing
/// path of any kind is left exactly as it is (no replace, no note added), and nothing else
/// (no temporary directory) stays behind.
#[test]
fn placeholders_never_replace_anything_and_leave_nothing_behind() {
    use stockade_linux::mount_plan::PlaceholderKind;
    use stockade_linux::sys::create_placeholder;
    let d = Dirs::new();
    let fd: std::os::fd::OwnedFd = std::fs::File::open(&d.ws).unwrap().into();
    create_placeholder(&fd, ".git".as_ref(), PlaceholderKind::NotedDir).unwrap();
    assert_eq!(entries(&d.ws), [".git"]);
    assert_eq!(entries(&d.ws.join(".git")), [PLACEHOLDER_NOTE]);
    let note = std::fs::read_to_string(d.ws.join(".git").join(PLACEHOLDER_NOTE)).unwrap();
    assert!(note.contains("stockade"), "{note}");
    // Again: it exists, which is success, and nothing changes.
    create_placeholder(&fd, ".git".as_ref(), PlaceholderKind::NotedDir).unwrap();
    assert_eq!(entries(&d.ws.join(".git")), [PLACEHOLDER_NOTE]);
    // An existing empty directory, a file and a symlink are not replaced or filled.
    std::fs::create_dir(d.ws.join("empty")).unwrap();
    std::fs::write(d.ws.join("file"), "user data").unwrap();
    std::os::unix::fs::symlink(&d.out, d.ws.join("link")).unwrap();
    for name in ["empty", "file", "link"] {
        create_placeholder(&fd, name.as_ref(), PlaceholderKind::NotedDir).unwrap();
    }
    assert_eq!(entries(&d.ws.join("empty")), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(d.ws.join("file")).unwrap(), "user data");
    assert!(std::fs::symlink_metadata(d.ws.join("link")).unwrap().file_type().is_symlink());
    assert_eq!(entries(&d.out), Vec::<String>::new(), "nothing created through the link");
    // The other kinds.
    create_placeholder(&fd, ".codex".as_ref(), PlaceholderKind::EmptyDir).unwrap();
    create_placeholder(&fd, "config".as_ref(), PlaceholderKind::EmptyFile).unwrap();
    create_placeholder(&fd, "file".as_ref(), PlaceholderKind::EmptyFile).unwrap();
    assert_eq!(entries(&d.ws.join(".codex")), Vec::<String>::new());
    assert_eq!(std::fs::read(d.ws.join("config")).unwrap(), b"");
    assert_eq!(std::fs::read_to_string(d.ws.join("file")).unwrap(), "user data");
    assert_eq!(entries(&d.ws), [".codex", ".git", "config", "empty", "file", "link"]);
}

#[test]
fn protected_symlink_is_refused_with_a_code() {
    let d = Dirs::new();
    std::os::unix::fs::symlink(&d.out, d.ws.join(".codex")).unwrap();
    let p = policy(&d, |_| {});
    let e = LinuxBackend::default().run(&p, &spec("true")).unwrap_err();
    assert_eq!(e.code(), "protected_path_symlink");
    assert_eq!(std::fs::read_dir(&d.out).unwrap().count(), 0, "nothing was created through the link");
}

/// A workspace that the private /tmp would cover is refused before anything is created or
/// mounted (the conflict itself is unit-tested in `mount_plan`).
#[test]
fn workspace_at_tmp_is_refused_with_a_code() {
    let d = Dirs::new();
    let p = policy(&d, |o| o.workspace = Some(PathBuf::from("/tmp")));
    let e = LinuxBackend::default().run(&p, &spec("true")).unwrap_err();
    assert_eq!(e.code(), "private_tmp_conflict", "{e}");
    assert!(e.to_string().contains("`/tmp`"), "{e}");
    let hint = e.hint().unwrap_or_default();
    assert!(hint.contains("/tmp/project") && hint.contains("private_tmp = false"), "{hint}");
}

#[test]
fn deny_read_hidden_with_control() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    std::fs::create_dir_all(d.home.join(".ssh")).unwrap();
    std::fs::write(d.home.join(".ssh/id_ed25519"), "SECRET").unwrap();
    std::fs::write(d.home.join(".netrc"), "SECRET").unwrap();
    std::fs::write(d.home.join("notes"), "public").unwrap();
    let p = policy(&d, |_| {});
    let h = d.home.display();
    let o = run(
        &p,
        &format!("grep -q public {h}/notes || exit 99; n=0; cat {h}/.ssh/id_ed25519 || n=$((n+1)); grep -q SECRET {h}/.netrc || n=$((n+1)); exit $n"),
    );
    assert_eq!(code(&o), 2, "{o:?}");
}

/// A deny-read path inside the workspace (`~/.local/share/keyrings` with `~/.local` as the
/// workspace) stays hidden, and its parent cannot be renamed away, which would carry the hiding
/// mount with it and leave the secret readable at the new path in the next run. Control: a
/// sibling directory renames.
#[test]
fn hidden_paths_inside_the_workspace_cannot_be_moved_out_from_under_their_mount() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let local = d.home.join(".local");
    std::fs::create_dir_all(local.join("share/keyrings")).unwrap();
    std::fs::create_dir_all(local.join("other")).unwrap();
    std::fs::write(local.join("share/keyrings/login.keyring"), "SECRET").unwrap();
    let p = policy(&d, |o| o.workspace = Some(local.clone()));
    let l = local.display();
    let o = run(
        &p,
        &format!(
            "grep -q SECRET {l}/share/keyrings/login.keyring && exit 90; mv {l}/share {l}/s2 && exit 91; \
             mv {l}/other {l}/o2 || exit 92; exit 0"
        ),
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(local.join("share/keyrings/login.keyring").exists() && !local.join("s2").exists());
    assert!(local.join("o2").is_dir(), "control: the sibling was renamed on the host");
    let o = run(&p, &format!("grep -q SECRET {l}/share/keyrings/login.keyring && exit 90; exit 0"));
    assert_eq!(code(&o), 0, "the next run reads the secret: {o:?}");
}

/// With `~/.config` as the workspace, the deny-write directories inside it that do not exist
/// yet (stockade's own configuration directory, `~/.config/git`) get empty placeholders bound
/// read-only, so the command cannot create them: a `config.toml` there would configure every
/// later run, a git config there runs code on the host. Control: another directory is created.
#[test]
fn missing_deny_write_directories_inside_the_workspace_cannot_be_created() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let config = d.home.join(".config");
    std::fs::create_dir_all(&config).unwrap();
    let p = policy(&d, |o| o.workspace = Some(config.clone()));
    let c = config.display();
    let o = run(
        &p,
        &format!(
            "mkdir -p {c}/stockade && echo 'mode = \"danger-full-access\"' > {c}/stockade/config.toml && exit 91; \
             mkdir -p {c}/git && echo '[core]' > {c}/git/config && exit 92; mkdir {c}/nvim || exit 93; exit 0"
        ),
    );
    assert_eq!(code(&o), 0, "{o:?}");
    for dir in ["stockade", "git"] {
        let entries: Vec<_> = std::fs::read_dir(config.join(dir)).unwrap().collect();
        assert!(entries.is_empty(), "`{dir}` is not an empty placeholder: {entries:?}");
    }
    assert!(config.join("nvim").is_dir(), "control: another directory was created");
    assert!(o.enforcement.gaps.iter().all(|g| !g.contains("can be created")), "{:?}", o.enforcement.gaps);
}

/// A deny-read directory that holds the workspace (`~/.kube` with `~/.kube/cache/ws` as the
/// workspace) is hidden around it: its secrets stay unreadable, the workspace stays writable.
#[test]
fn a_deny_read_directory_holding_the_workspace_is_hidden_around_it() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let kube = d.home.join(".kube");
    let ws = kube.join("cache/ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(kube.join("config"), "SECRET").unwrap();
    std::fs::write(kube.join("cache/token"), "SECRET").unwrap();
    let p = policy(&d, |o| o.workspace = Some(ws.clone()));
    let (k, w) = (kube.display(), ws.display());
    let o = run(
        &p,
        &format!(
            "grep -q SECRET {k}/config && exit 90; grep -q SECRET {k}/cache/token && exit 91; \
             echo ok > {w}/out || exit 92; exit 0"
        ),
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(std::fs::read_to_string(ws.join("out")).unwrap(), "ok\n", "control: the workspace is writable");
}

#[test]
fn pid1_is_stockade_and_host_pids_invisible() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let mut sentinel = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sentinel.id();
    let p = policy(&d, |_| {});
    let o = run(
        &p,
        &format!(
            "[ $PPID = 1 ] || exit 10; [ $$ != 1 ] || exit 10; [ -e /proc/{pid} ] && exit 11; kill -0 {pid} 2>/dev/null && exit 12; \
             [ $(ls -d /proc/[0-9]* | wc -l) -lt 10 ] || exit 13; kill -0 $$ || exit 14; exit 0"
        ),
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(sentinel.try_wait().unwrap().is_none(), "host sentinel still alive");
    sentinel.kill().unwrap();
    let _ = sentinel.wait();
}

/// With the network on, `/etc/resolv.conf` reads inside where it is a link into `/run`
/// (systemd-resolved's `stub-resolv.conf`, Ubuntu's and Fedora's default): the view keeps that
/// one file in its otherwise empty, read-only `/run`. Control: with the network off the link
/// dangles, as before. Runs only on such a host.
#[test]
fn resolv_conf_linked_into_run_reads_with_the_network_on() {
    if !userns() {
        return;
    }
    let Some(target) = stockade_linux::host_facts::kept_resolv_conf(Path::new("/etc/resolv.conf"), &["/run".into()])
    else {
        skip("resolv-link", "/etc/resolv.conf here is not a link to a file below /run");
        return;
    };
    let want = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    let d = Dirs::new();
    let on = policy(&d, |o| o.network = Some(stockade_policy::NetworkMode::On));
    let t = target.display();
    // Read-only by the mounts themselves (the kernel answers `EROFS` before Landlock is asked),
    // and nothing else of the host's `/run` there.
    let script = format!(
        "cat /etc/resolv.conf > got || exit 11; \
         grep -q ' /run ro,' /proc/self/mountinfo || exit 12; grep -q ' {t} ro,' /proc/self/mountinfo || exit 13; \
         [ \"$(ls -A /run)\" = \"$(echo '{t}' | cut -d/ -f3)\" ] || exit 14; exit 0"
    );
    let o = run(&on, &script);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(std::fs::read_to_string(d.ws.join("got")).unwrap(), want);
    let off = policy(&d, |_| {});
    let o = run(&off, "cat /etc/resolv.conf >/dev/null 2>&1 && exit 10; exit 0");
    assert_eq!(code(&o), 0, "with the network off nothing is kept: {o:?}");
}

/// Under `landlock-only`, which leaves the host's `/run` out of what the command may read: with
/// the network on, `/etc/resolv.conf` reads where it is a link into `/run`, and the rest of
/// `/run` stays unreadable. Control: with the network off the file is not readable either.
/// Runs only on such a host.
#[test]
fn resolv_conf_linked_into_run_reads_under_landlock_only() {
    let Some(_) = stockade_linux::host_facts::kept_resolv_conf(Path::new("/etc/resolv.conf"), &["/run".into()]) else {
        skip("resolv-link", "/etc/resolv.conf here is not a link to a file below /run");
        return;
    };
    if stockade_linux::sys::landlock_abi() <= 0 {
        skip("landlock", "the kernel reports no Landlock ABI");
        return;
    }
    let want = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    let d = Dirs::new();
    let backend = LinuxBackend { disable_userns: true, ..LinuxBackend::default() };
    let mut on = policy(&d, |o| o.network = Some(stockade_policy::NetworkMode::On));
    on.linux.allow_fallback = true;
    let o = backend
        .run(&on, &spec("cat /etc/resolv.conf > got || exit 11; ls /run >/dev/null 2>&1 && exit 12; exit 0"))
        .unwrap();
    assert_eq!(o.implementation, "landlock-only");
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(std::fs::read_to_string(d.ws.join("got")).unwrap(), want);
    let mut off = policy(&d, |_| {});
    off.linux.allow_fallback = true;
    let o = backend.run(&off, &spec("cat /etc/resolv.conf >/dev/null 2>&1 && exit 10; exit 0")).unwrap();
    assert_eq!(code(&o), 0, "with the network off it stays unreadable: {o:?}");
}

/// A readable root listed inside a directory the sandbox hides (here the host's `/tmp`) cannot be
/// read under either implementation, and the outcome says so instead of leaving the user to
/// guess. Control: the file reads without the sandbox.
#[test]
fn a_readable_root_the_sandbox_hides_is_warned_about() {
    let d = Dirs::new();
    let Some((_, backends)) = each_implementation(&d) else { return };
    let dir = std::env::temp_dir().join(format!("stockade-readable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();
    if !dir.starts_with("/tmp") {
        skip("tmp", "the temp dir is not below /tmp");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let _gone = RemoveDirOnDrop(dir.clone());
    std::fs::write(dir.join("f"), "host\n").unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "host\n", "control");
    let mut p = policy(&d, |_| {});
    p.linux.allow_fallback = true;
    let root = |v: &Path| stockade_policy::Sourced::new(v.to_path_buf(), stockade_policy::Source::Default);
    p.filesystem.readable = stockade_policy::Readable::Roots(vec![root(&d.ws), root(&dir)]);
    for (name, backend) in backends {
        let o = backend.run(&p, &spec(&format!("cat '{}/f' && exit 10; exit 0", dir.display()))).unwrap();
        assert_eq!(code(&o), 0, "{name}: the file was readable: {o:?}");
        assert!(
            o.warnings.iter().any(|w| w.code == "readable_root_hidden" && w.path == dir),
            "{name}: no warning: {:?}",
            o.warnings
        );
    }
}

/// Removes a directory the test made on the host when dropped, also when an assertion fails.
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loopback_works_outside_unreachable() {
    if !userns() {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() && Command::new("python3").arg("-V").output().is_err() {
        let _ = writeln!(std::io::stderr(), "SKIP: python3 not installed");
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |_| {});
    let script = "python3 -c '
import socket, sys
s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen()
c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b\"hi\")
assert a.recv(2) == b\"hi\"
try:
    socket.create_connection((\"1.1.1.1\", 80), timeout=2); sys.exit(3)
except OSError:
    pass
try:
    socket.socket(40, socket.SOCK_STREAM); sys.exit(4)
except OSError:
    pass
'";
    let mut s = spec(script);
    s.host_env.extend(std::env::vars_os().filter(|(k, _)| k == "PATH" || k == "HOME" || k == "PYENV_ROOT"));
    let o = LinuxBackend::default().run(&p, &s).unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
}

#[test]
fn timeout_kills_background_children() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |o| o.timeout = Some(Duration::from_millis(700)));
    let marker = format!("{}", 40000 + std::process::id() % 10000);
    let o = run(&p, &format!("sleep {marker} & setsid sleep {marker} & sleep {marker}"));
    assert_eq!(o.status, ExitStatus::TimedOut);
    assert!(o.timed_out);
    std::thread::sleep(Duration::from_millis(200));
    let left = Command::new("pgrep").args(["-f", &format!("^sleep {marker}$")]).output().unwrap();
    assert!(left.stdout.is_empty(), "no sleeper survived: {}", String::from_utf8_lossy(&left.stdout));
}

#[test]
fn exit_codes() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |_| {});
    assert_eq!(run(&p, "exit 3").status, ExitStatus::Exited { code: 3 });
    assert_eq!(run(&p, "kill -TERM $$").status, ExitStatus::Signaled { signal: 15 });
    let b = LinuxBackend::default();
    let mut s = spec("");
    s.program = "/nonexistent/prog".into();
    s.args.clear();
    assert_eq!(b.run(&p, &s).unwrap().status, ExitStatus::NotFound);
    s.program = "no-such-program-anywhere".into();
    assert_eq!(b.run(&p, &s).unwrap().status, ExitStatus::NotFound);
    std::fs::write(d.ws.join("noexec.sh"), "#!/bin/sh\n").unwrap();
    s.program = d.ws.join("noexec.sh").into();
    assert_eq!(b.run(&p, &s).unwrap().status, ExitStatus::NotExecutable);
    assert_eq!(b.run(&p, &s).unwrap().status.cli_code(), 126);
}

#[test]
fn env_scrubbed_caps_empty_nnp_set() {
    if !userns() {
        return;
    }
    let d = Dirs::new();
    let p = policy(&d, |_| {});
    let mut s = spec(
        "cat /proc/self/environ | tr '\\0' '\\n' | grep -q '^GITHUB_TOKEN=' && exit 10; \
         cat /proc/self/environ | tr '\\0' '\\n' | grep -q '^LANG=C.UTF-8$' || exit 11; \
         cat /proc/self/environ | tr '\\0' '\\n' | grep -q '^RANDOM_HOST_VAR=' && exit 12; \
         for f in CapEff CapPrm CapInh CapAmb CapBnd; do grep -q \"^$f:\\s*0000000000000000$\" /proc/self/status || exit 13; done; \
         grep -q '^NoNewPrivs:\\s*1$' /proc/self/status || exit 14; grep -q '^Seccomp:\\s*2$' /proc/self/status || exit 15; \
         [ $(ls /proc/self/fd | wc -l) -le 4 ] || exit 16; exit 0",
    );
    s.host_env.push(("GITHUB_TOKEN".into(), "ghp_secret".into()));
    s.host_env.push(("LANG".into(), "C.UTF-8".into()));
    s.host_env.push(("RANDOM_HOST_VAR".into(), "x".into()));
    let o = LinuxBackend::default().run(&p, &s).unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    let layers: Vec<_> = o.enforcement.layers.iter().map(|l| l.layer.as_str()).collect();
    for l in
        ["userns", "mountns", "pidns", "netns", "ipcns", "utsns", "landlock", "seccomp", "nnp", "caps", "limits", "env"]
    {
        assert!(layers.contains(&l), "layer {l} reported");
    }
}

/// The command and everything it starts are in the run's `pids` group, pid 1 is not (the
/// command joins it itself, through the controller's root opened before pid 1 was cloned),
/// and the group is gone after the run. Root only, where the host mounts the cgroup v1 `pids`
/// controller.
#[test]
fn command_tree_is_in_the_runs_pids_cgroup() {
    if !userns() {
        return;
    }
    if euid() != 0 || !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        let _ = writeln!(std::io::stderr(), "SKIP: per-run cgroups need root and cgroup v1 pids");
        return;
    }
    let d = Dirs::new();
    let mut p = policy(&d, |_| {});
    p.process.max_processes = Some(50);
    let outside = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(!outside.contains(":pids:/stockade-"), "control: the test itself is in no run's group: {outside}");
    let o = run(
        &p,
        "grep ':pids:/stockade-' /proc/self/cgroup > own || exit 10; \
         sh -c 'grep :pids: /proc/self/cgroup' > child || exit 11; cmp -s own child || exit 12; \
         procs=/sys/fs/cgroup/pids$(sed -n 's/^[0-9]*:pids://p' own)/cgroup.procs; \
         grep -qx $$ $procs || exit 13; grep -qx 1 $procs && exit 14; exit 0",
    );
    assert_eq!(code(&o), 0, "{o:?}");
    let limits = o.enforcement.layers.iter().find(|l| l.layer == "limits").unwrap();
    assert!(limits.detail.contains("pids.max=50"), "{limits:?}");
    let group = std::fs::read_to_string(d.ws.join("own")).unwrap();
    let name = group.trim().rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("stockade-"), "{group}");
    // Removed once pid 1 is reaped, on the launching thread: give it a moment.
    let dir = Path::new("/sys/fs/cgroup/pids").join(&name);
    for _ in 0..200 {
        if !dir.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn git_status_and_commit_in_workspace_repo() {
    if !userns() {
        return;
    }
    if !git_installed() {
        return;
    }
    let d = Dirs::new();
    let g = |args: &[&str]| assert!(Command::new("git").arg("-C").arg(&d.ws).args(args).status().unwrap().success());
    g(&["init", "-q"]);
    g(&["config", "user.email", "t@example.invalid"]);
    g(&["config", "user.name", "t"]);
    let config_before = std::fs::read(d.ws.join(".git/config")).unwrap();
    let p = policy(&d, |_| {});
    let mut s = spec(
        "echo hello > a.txt && git add a.txt && git commit -qm first && git status --short | grep -q . && exit 10; \
         git config core.hooksPath /tmp/h 2>/dev/null && exit 11; echo '#!/bin/sh' > .git/hooks/pre-commit 2>/dev/null && exit 12; exit 0",
    );
    s.host_env.push(("HOME".into(), d.home.clone().into()));
    let o = LinuxBackend::default().run(&p, &s).unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    let log = Command::new("git").arg("-C").arg(&d.ws).args(["log", "--oneline"]).output().unwrap();
    assert!(String::from_utf8_lossy(&log.stdout).contains("first"), "the commit landed on the host");
    assert_eq!(std::fs::read(d.ws.join(".git/config")).unwrap(), config_before);
    assert!(!d.ws.join(".git/hooks/pre-commit").exists());
}

/// `landlock-only` with `readable = [roots]`: programs start (the system trees are granted, as
/// under `namespaces`), a root is readable (control), and a deny-read path inside a root stays
/// unreadable. Before, the roots were taken as given: `/bin/sh` itself was refused.
#[test]
fn landlock_only_readable_roots_start_programs_and_keep_deny_read() {
    if stockade_linux::sys::landlock_abi() <= 0 {
        skip("landlock", "the kernel reports no Landlock ABI");
        return;
    }
    let d = Dirs::new();
    std::fs::create_dir_all(d.home.join(".ssh")).unwrap();
    std::fs::write(d.home.join(".ssh/id_ed25519"), "SECRET").unwrap();
    std::fs::write(d.home.join("notes"), "public").unwrap();
    let mut p = policy(&d, |_| {});
    p.linux.allow_fallback = true;
    p.filesystem.readable =
        stockade_policy::Readable::Roots(vec![stockade_policy::Sourced::new(d.base.clone(), Source::Default)]);
    assert!(p.filesystem.deny_read.iter().any(|r| r.value == d.home.join(".ssh")), "the default deny-read list");
    let forced = LinuxBackend { disable_userns: true, ..LinuxBackend::default() };
    let h = d.home.display();
    let o = forced
        .run(&p, &spec(&format!("grep -q public {h}/notes || exit 11; cat {h}/.ssh/id_ed25519 && exit 10; exit 0")))
        .unwrap();
    assert_eq!(o.implementation, "landlock-only");
    assert_eq!(code(&o), 0, "{o:?}");
}

#[test]
fn landlock_only_fallback_when_userns_unavailable() {
    if stockade_linux::sys::landlock_abi() <= 0 {
        skip("landlock", "the kernel reports no Landlock ABI");
        return;
    }
    let d = Dirs::new();
    std::fs::write(d.out.join("existing"), "keep").unwrap();
    let before = hash_tree(&d.out);
    let mut p = policy(&d, |_| {});
    let forced = LinuxBackend { disable_userns: true, ..LinuxBackend::default() };
    p.linux.allow_fallback = false;
    let e = forced.run(&p, &spec("true")).unwrap_err();
    assert_eq!(e.code(), "linux_implementation_unavailable", "no silent fallback");
    p.linux.allow_fallback = true;
    let o = forced
        .run(
            &p,
            &spec(&format!("echo x > {}/existing && exit 10; echo ok > inside || exit 11; exit 0", d.out.display())),
        )
        .unwrap();
    assert_eq!(o.implementation, "landlock-only");
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(hash_tree(&d.out), before);
    assert!(d.ws.join("inside").exists());
    assert!(o.enforcement.gaps.iter().any(|g| g.contains("protected paths")), "gaps are disclosed");
    let o2 = forced.run(&p, &spec("[ \"$(stat -c %a \"$TMPDIR\")\" = 700 ] || exit 13")).unwrap();
    assert_eq!(code(&o2), 0, "the private TMPDIR is 0700 in the shared temp dir: {o2:?}");
    let why = o.warnings.iter().find(|w| w.code == "fell_back_to_landlock_only");
    assert!(why.is_some_and(|w| w.message.contains("disabled for testing")), "the fallback says why: {:?}", o.warnings);
    // landlock-only because the requirements rule `namespaces` out (the user allowed the
    // fallback): the outcome says so too, where user namespaces work.
    let mut req = p.clone();
    req.linux.implementation = LinuxImplementation::LandlockOnly;
    req.linux.allowed_implementations = vec![LinuxImplementation::LandlockOnly];
    req.provenance.set(
        "linux.implementation",
        Source::Requirement { path: "/etc/stockade/requirements.toml".into(), line: 2, key: "linux".into() },
    );
    let o = LinuxBackend::default().run(&req, &spec("true")).unwrap();
    assert_eq!(o.implementation, "landlock-only");
    let why = o.warnings.iter().find(|w| w.code == "fell_back_to_landlock_only");
    assert!(why.is_some_and(|w| w.message.contains("requirements")), "says why: {:?}", o.warnings);
    // No IP sockets without a network namespace; unix sockets still work.
    let o = forced
        .run(
            &p,
            &spec(
                "python3 -c 'import socket; socket.socket(socket.AF_UNIX)' || exit 12; \
                 python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)' 2>/dev/null && exit 10; exit 0",
            ),
        )
        .unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
}

/// The default policy for `d` (with the fallback to `landlock-only` allowed) and a backend for
/// each implementation this host can run: `landlock-only` (forced), and `namespaces` where
/// user namespaces work. `None`, with a printed skip, without Landlock.
fn each_implementation(d: &Dirs) -> Option<(Policy, Vec<(&'static str, LinuxBackend)>)> {
    if stockade_linux::sys::landlock_abi() <= 0 {
        skip("landlock", "the kernel reports no Landlock ABI");
        return None;
    }
    let mut p = policy(d, |_| {});
    p.linux.allow_fallback = true;
    let mut backends = vec![("landlock-only", LinuxBackend { disable_userns: true, ..LinuxBackend::default() })];
    if userns() {
        backends.push(("namespaces", LinuxBackend::default()));
    }
    Some((p, backends))
}

/// THREATS F15 for the workspace root: the policy holds the root's canonical path; if that path
/// is a symlink by the time the sandbox is set up (swapped in by a concurrent process), both
/// implementations refuse instead of granting writes where the link points. For
/// `landlock-only` the Landlock rule is the only wall: opened through the link, it granted
/// writes on the link's target.
#[test]
fn writable_root_swapped_for_a_symlink_after_resolution_fails_closed() {
    let d = Dirs::new();
    let Some((p, backends)) = each_implementation(&d) else { return };
    let real = d.base.join("ws-real");
    let script = format!("echo x > planted; echo x > {}/planted-abs; exit 0", d.ws.display());
    for (name, backend) in backends {
        std::fs::rename(&d.ws, &real).unwrap();
        std::os::unix::fs::symlink(&d.out, &d.ws).unwrap();
        let r = backend.run(&p, &spec(&script));
        std::fs::remove_file(&d.ws).unwrap();
        std::fs::rename(&real, &d.ws).unwrap();
        let e = r.expect_err(&format!("{name}: ran with the workspace swapped for a link"));
        if name == "landlock-only" {
            // Here it is the child's Landlock step that refuses; namespaces refuses earlier,
            // on the host, when it opens the root to probe its protected paths.
            assert!(e.to_string().contains("became a symlink"), "{e}");
        }
        assert_eq!(entries(&d.out), Vec::<String>::new(), "{name}: nothing written where the link pointed");
        assert_eq!(entries(&real.parent().unwrap().join("ws")), Vec::<String>::new());
        // Control: with the real directory back in place the same run writes in the workspace.
        let o = backend.run(&p, &spec(&script)).unwrap();
        assert_eq!(code(&o), 0, "{name}: {o:?}");
        assert_eq!(o.implementation, name);
        assert!(d.ws.join("planted").exists() && d.ws.join("planted-abs").exists(), "{name}");
        std::fs::remove_file(d.ws.join("planted")).unwrap();
        std::fs::remove_file(d.ws.join("planted-abs")).unwrap();
    }
}

/// THREATS F15 as a race on the workspace root: while launches happen, a host thread keeps
/// swapping the root for a symlink to another directory and back. Every launch must write in
/// the real root or fail; nothing may land where the link points. Both implementations,
/// 40 launches each.
#[test]
fn workspace_root_swapped_during_launches_never_grants_the_links_target() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let d = Dirs::new();
    let Some((p, backends)) = each_implementation(&d) else { return };
    let script = format!("echo x > planted.$$; echo x > {}/planted-abs.$$; exit 0", d.ws.display());
    for (name, backend) in backends {
        let stop = Arc::new(AtomicBool::new(false));
        let (ws, out, st) = (d.ws.clone(), d.out.clone(), stop.clone());
        let real = d.base.join("ws-real");
        let racer = std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !st.load(Ordering::Relaxed) {
                if std::fs::rename(&ws, &real).is_ok() {
                    let linked = std::os::unix::fs::symlink(&out, &ws).is_ok();
                    std::thread::yield_now();
                    if linked {
                        let _ = std::fs::remove_file(&ws);
                    }
                    std::fs::rename(&real, &ws).unwrap();
                    swaps += 1;
                }
                std::thread::yield_now();
            }
            swaps
        });
        let (mut ran, mut refused) = (0, 0);
        for _ in 0..40 {
            match backend.run(&p, &spec(&script)) {
                Ok(o) if code(&o) == 0 => ran += 1,
                // Set up, then the write failed: the root was swapped after the bind, which
                // writes in the real directory or nowhere.
                Ok(_) | Err(_) => refused += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = racer.join().unwrap();
        assert!(std::fs::symlink_metadata(&d.ws).unwrap().is_dir(), "{name}: the racer left the root in place");
        let _ = writeln!(std::io::stderr(), "{name}: {ran} launches ran, {refused} refused, {swaps} swaps");
        assert_eq!(entries(&d.out), Vec::<String>::new(), "{name}: something was written where the link pointed");
        assert!(swaps > 0, "{name}: the race never ran");
        // Control: without the racer a launch writes in the workspace.
        let o = backend.run(&p, &spec(&script)).unwrap();
        assert_eq!(code(&o), 0, "{name}: {o:?}");
        assert!(entries(&d.ws).iter().any(|e| e.starts_with("planted-abs.")), "{name}");
        for e in entries(&d.ws).into_iter().filter(|e| e.starts_with("planted")) {
            std::fs::remove_file(d.ws.join(e)).unwrap();
        }
    }
}

/// The CLI: `$STOCKADE_BIN` when set (CI points it at the static musl build), else the debug
/// build in the target directory.
fn stockade_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("STOCKADE_BIN") {
        return Some(PathBuf::from(bin));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/stockade");
    if bin.exists() {
        Some(bin)
    } else {
        {
            use std::io::Write as _;
            let _ =
                writeln!(std::io::stderr(), "SKIP: {} not built (run `cargo build -p stockade` first)", bin.display());
        }
        None
    }
}

#[test]
fn hundred_megabytes_of_stdout_byte_identical() {
    if !userns() {
        return;
    }
    let Some(bin) = stockade_bin() else { return };
    let d = Dirs::new();
    let data: Vec<u8> = (0..100_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(d.ws.join("blob"), &data).unwrap();
    let out = Command::new(&bin).current_dir(&d.ws).args(["run", "--", "cat", "blob"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "byte-identical");
}

/// Whether process `pid` holds an fd on the pipe with inode `ino`.
fn holds_pipe(pid: &str, ino: u64) -> bool {
    let link = format!("pipe:[{ino}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| fds.flatten().any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.as_os_str() == link.as_str())))
        .unwrap_or(false)
}

/// A process whose `comm` is `name` and that holds the pipe with inode `ino`, and its parent.
fn pipe_holder_named(name: &str, ino: u64) -> Option<(String, String)> {
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let status = std::fs::read_to_string(p.path().join("status")).unwrap_or_default();
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned());
        if field("Name:").as_deref() == Some(name) && holds_pipe(&pid, ino) {
            return Some((pid, field("PPid:").unwrap_or_default()));
        }
    }
    None
}

/// The read end of `child`'s stdout pipe (kept open, as a reading caller would), and the
/// process named `name` that holds the pipe's other end with its parent, found within 5 s.
fn command_on_stdout_of(child: &mut std::process::Child, name: &str) -> (std::fs::File, Option<(String, String)>) {
    let out = std::fs::File::from(std::os::fd::OwnedFd::from(child.stdout.take().unwrap()));
    let ino = std::os::unix::fs::MetadataExt::ino(&out.metadata().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(found) = pipe_holder_named(name, ino) {
            return (out, Some(found));
        }
        if std::time::Instant::now() > deadline {
            return (out, None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A caller that reads the command's output through pipes (as agents do) gets end of file when
/// the command and stockade are done: the sandbox's pid 1, which outlives the CLI's run by a
/// moment (see `init_launch::retire`), holds no copy of stdout once the command runs. The
/// command itself holding the pipe is the control; pid 1 is found as the command's parent.
#[test]
fn pid1_holds_no_copy_of_the_callers_stdout() {
    if !userns() {
        return;
    }
    let Some(bin) = stockade_bin() else { return };
    let d = Dirs::new();
    let mut child = Command::new(&bin)
        .current_dir(&d.ws)
        .args(["run", "--", "sleep", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open (as a reading caller would) until the end.
    let (out, command) = command_on_stdout_of(&mut child, "sleep");
    let ino = std::os::unix::fs::MetadataExt::ino(&out.metadata().unwrap());
    // Pid 1 closes its copy right after the command's exec; give it a moment.
    let pid1_still_holds = command.as_ref().map(|(_, pid1)| {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while holds_pipe(pid1, ino) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        holds_pipe(pid1, ino)
    });
    let _ = child.kill();
    let _ = child.wait();
    drop(out);
    let (_, pid1) = command.expect("control: the command (sleep) holds its stdout");
    assert!(!pid1.is_empty() && pid1 != "0", "the command's parent is pid 1 of the sandbox");
    assert_eq!(pid1_still_holds, Some(false), "pid 1 ({pid1}) still holds a copy of the caller's stdout");
}

/// The CLI's pid 1 waits after the command, without the thread that launched it (and so
/// without `PR_SET_PDEATHSIG`), until the CLI process exits: then it must end too. Pid 1 is
/// found as the parent of the command (`sleep`). With the CLI stopped, it must outlive the
/// command, asleep (the control: this run used the prelaunched, one-shot pid 1); once the CLI
/// is let go and exits, it must end. Watched through a pidfd, so a reused pid cannot fool it.
#[test]
fn retired_pid1_ends_with_the_cli() {
    if !userns() {
        return;
    }
    let Some(bin) = stockade_bin() else { return };
    let d = Dirs::new();
    let config = d.base.join("empty-config.toml");
    std::fs::write(&config, "").unwrap();
    let mut child = Command::new(&bin)
        .current_dir(&d.ws)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--", "sleep", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_out, found) = command_on_stdout_of(&mut child, "sleep");
    let (command, pid1) = found.expect("control: the command (sleep) never showed up");
    let pidfd = stockade_linux::sys::pidfd_open(pid1.parse().unwrap()).expect("pid 1 is alive while the command runs");
    let exited = |ms| stockade_linux::sys::poll_in(&[std::os::fd::AsRawFd::as_raw_fd(&pidfd)], ms)[0];
    // SAFETY: stopping and resuming the CLI process this test spawned.
    let signal = |sig| unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    signal(libc::SIGSTOP);
    let gone = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{command}")).exists() {
        if std::time::Instant::now() > gone {
            signal(libc::SIGCONT);
            panic!("the command (sleep 1, pid {command}) did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let outlived = !exited(200);
    signal(libc::SIGCONT);
    assert!(child.wait().unwrap().success());
    let ended = exited(5000);
    if !ended {
        // SAFETY: a pidfd of the stray pid 1, for the cleanup.
        unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, std::os::fd::AsRawFd::as_raw_fd(&pidfd), libc::SIGKILL, 0, 0)
        };
    }
    assert!(outlived, "control: pid 1 ({pid1}) ended with the command, before the CLI (no one-shot pid 1?)");
    assert!(ended, "pid 1 ({pid1}) outlived the CLI by 5 s");
}

/// landlock-only's private `TMPDIR` lives under the host's temp dir, which may lie below a
/// symlink; it becomes a Landlock writable root (opened without following symlinks), so its
/// path must be the canonical one, or every landlock-only run would be refused.
#[test]
fn landlock_only_private_tmp_below_a_symlinked_tmpdir() {
    if stockade_linux::sys::landlock_abi() <= 0 {
        skip("landlock", "the kernel reports no Landlock ABI");
        return;
    }
    let Some(bin) = stockade_bin() else { return };
    let d = Dirs::new();
    let real = d.base.join("real-tmp");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, d.base.join("link-tmp")).unwrap();
    let out = Command::new(&bin)
        .current_dir(&d.ws)
        .env("TMPDIR", d.base.join("link-tmp"))
        .args([
            "run",
            "--implementation",
            "landlock-only",
            "--",
            "sh",
            "-c",
            "echo x > \"$TMPDIR/f\" && echo \"$TMPDIR\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tmpdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(Path::new(&tmpdir).starts_with(&real), "TMPDIR {tmpdir} is below the canonical temp dir");
    assert_eq!(entries(&real), Vec::<String>::new(), "the private TMPDIR is removed after the run");
}

#[test]
fn unprivileged_user_gets_the_same_sandbox() {
    // SAFETY-free check of the real uid via /proc.
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if !root {
        let _ = writeln!(std::io::stderr(), "SKIP: needs root to switch to an unprivileged user");
        return;
    }
    let Some(bin) = stockade_bin() else { return };
    if Command::new("setpriv").arg("--version").output().is_err() {
        let _ = writeln!(std::io::stderr(), "SKIP: setpriv not installed");
        return;
    }
    let d = Dirs::new();
    for p in [&d.base, &d.ws, &d.out, &d.home] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["run", "--", "sh", "-c"])
        .arg(format!(
            "[ $(id -u) = 65534 ] || exit 10; grep -q '^CapEff:\\s*0*$' /proc/self/status || exit 11; \
             echo x > {}/nope 2>/dev/null && exit 12; echo ok > ok || exit 13; exit 0",
            d.out.display()
        ))
        .current_dir(&d.ws)
        .env("HOME", &d.home)
        .output()
        .unwrap();
    if out.status.code() == Some(125) && !userns() {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.ws.join("ok").exists());
    assert!(!d.out.join("nope").exists());
}

#[test]
fn git_placeholder_in_a_repo_subdir_keeps_parent_discovery() {
    if !userns() {
        return;
    }
    if !git_installed() {
        return;
    }
    let d = Dirs::new();
    // The repository is the parent of the workspace.
    let repo = d.ws.parent().unwrap().to_path_buf();
    assert!(Command::new("git").arg("-C").arg(&repo).args(["init", "-q"]).status().unwrap().success());
    let p = policy(&d, |_| {});
    let o = run(&p, "git rev-parse --show-toplevel > top.txt && mkdir .git/hooks 2>/dev/null && exit 10; exit 0");
    assert_eq!(code(&o), 0, "{o:?}");
    let top = std::fs::read_to_string(d.ws.join("top.txt")).unwrap();
    assert_eq!(top.trim(), repo.to_str().unwrap(), "inside: the parent repo is still found");
    let host = Command::new("git").arg("-C").arg(&d.ws).args(["rev-parse", "--show-toplevel"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), repo.to_str().unwrap(), "host: same");
    assert_eq!(entries(&d.ws.join(".git")), [PLACEHOLDER_NOTE], "the placeholder holds only its note");
}
