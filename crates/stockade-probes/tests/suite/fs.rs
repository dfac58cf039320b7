//! THREATS.md §3.1: filesystem probes F1-F17.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{snapshot, snapshot_diff, sv, Case, Impl, Residual, Who, SECRET_MARK};

const METADATA_GAP: &[&str] = &["metadata", "chmod"];
const PROTECTED_GAP: &[&str] = &["protected"];
const TMP_GAP: &[&str] = &["tmp is not private", "no private /tmp", "no private tmp"];

// F1 + F6: every write verb outside the workspace, rename out and RENAME_EXCHANGE.
probe_test!(f1_write_outside, |c: &mut Case| {
    let (o, w) = (c.out_s(), c.ws_s());
    // A directory to move out whole (F6), with a file in it.
    std::fs::create_dir_all(c.ws.join("dmove")).unwrap();
    std::fs::write(c.ws.join("dmove/inner"), "x").unwrap();
    let items = vec![
        sv(&["write", &format!("{o}/new")]),
        sv(&["write", &format!("{o}/existing")]),
        sv(&["trunc", &format!("{o}/existing")]),
        sv(&["truncate", &format!("{o}/existing")]),
        sv(&["mkdir", &format!("{o}/d")]),
        sv(&["unlink", &format!("{o}/existing")]),
        sv(&["rename", &format!("{w}/f"), &format!("{o}/f")]),
        sv(&["rename", &format!("{w}/dmove"), &format!("{o}/dmove")]),
        sv(&["exchange", &format!("{w}/f"), &format!("{o}/exchange")]),
        sv(&["symlink", "x", &format!("{o}/l")]),
        sv(&["mkfifo", &format!("{o}/p")]),
        sv(&["bind-unix", &format!("{o}/s")]),
        sv(&["link", &format!("{w}/README.md"), &format!("{o}/hl")]),
        sv(&["create", "/etc/sbx-probe-new"]),
        sv(&["write", "/usr/local/sbx-probe-new"]),
    ];
    c.expect_all_denied("F1", &items, None, &[0, 4]);
    c.expect_all_allowed(
        "F1-control",
        &[
            sv(&["write", &format!("{w}/new")]),
            sv(&["mkdir", &format!("{w}/d2")]),
            sv(&["rename", &format!("{w}/f"), &format!("{w}/f2")]),
            sv(&["symlink", "x", &format!("{w}/l")]),
            sv(&["mkfifo", &format!("{w}/p")]),
            sv(&["bind-unix", &format!("{w}/s")]),
            sv(&["unlink", &format!("{w}/new")]),
        ],
    );
    // Shell-level variants take other code paths.
    // Each in a subshell: a failed redirection on a special builtin ends a POSIX shell.
    let sh = format!(
        "(echo x > {o}/sh-new); (echo x >> {o}/existing); (: > {o}/victim); (cp /bin/true {o}/); (mkdir {o}/shd); \
         (rm -f {o}/exchange); (mv {w}/README.md {o}/); (ln -s x {o}/shl); echo done"
    );
    let r = c.sandboxed(&["/bin/sh", "-c", &sh]);
    if r.out().trim() != "done" {
        c.fail(format!("F1 shell variants: the shell itself failed\n{}", r.describe()));
    }
});

// F2: metadata changes outside (not mediated by Landlock: EROFS from read-only mounts).
probe_test!(f2_metadata_outside, |c: &mut Case| {
    let (o, h, w) = (c.out_s(), c.home.to_string_lossy().into_owned(), c.ws_s());
    let items = vec![
        sv(&["chmod", &format!("{o}/existing")]),
        sv(&["chown", &format!("{o}/existing")]),
        sv(&["utime", &format!("{o}/existing")]),
        sv(&["setxattr", &format!("{o}/existing")]),
        sv(&["chmod", &format!("{h}/.local/bin/tool")]),
    ];
    c.expect_all_denied("F2", &items, Some(METADATA_GAP), &[0, 2, 3]);
    if c.imp == Impl::LandlockOnly {
        // The documented gap really changed host files: accept exactly that and re-baseline.
        c.note("landlock-only: F2 metadata of host files changed (documented gap)".into());
        c.rebaseline();
    }
    c.expect_all_allowed(
        "F2-control",
        &[
            sv(&["chmod", &format!("{w}/README.md")]),
            sv(&["utime", &format!("{w}/README.md")]),
            sv(&["setxattr", &format!("{w}/README.md")]),
        ],
    );
});

// F3: symlinks inside the workspace pointing outside (absolute, to `/`, relative).
probe_test!(f3_symlink_out, |c: &mut Case| {
    let (o, h, w) = (c.out_s(), c.home.to_string_lossy().into_owned(), c.ws_s());
    let depth = c.ws.components().count();
    let up = "../".repeat(depth);
    let rel_target = format!("{}{}", up, o.trim_start_matches('/'));
    let setup = c.run_batch(
        &[
            sv(&["symlink", &format!("{h}/.bashrc"), &format!("{w}/rc")]),
            sv(&["symlink", "/", &format!("{w}/root")]),
            sv(&["symlink", &rel_target, &format!("{w}/up")]),
            sv(&["symlink", "README.md", &format!("{w}/inside")]),
        ],
        true,
    );
    for s in &setup {
        c.allowed("F3-setup (symlink creation inside the workspace)", s);
    }
    c.expect_all_denied(
        "F3",
        &[
            sv(&["write", &format!("{w}/rc")]),
            sv(&["write", &format!("{w}/root{o}/pwn")]),
            sv(&["write", &format!("{w}/up/existing")]),
            sv(&["trunc", &format!("{w}/up/victim")]),
        ],
        None,
        &[0, 2],
    );
    c.expect_all_allowed("F3-control", &[sv(&["write", &format!("{w}/inside")])]);
});

// F4: a protected path replaced by a symlink must make setup fail closed, never bind the target.
// See: THREATS.md F4 (codex sandbox_blocks_codex_symlink_replacement_attack, CVE-2024-42472)
probe_test!(f4_symlinked_protected_path_fails_closed, |c: &mut Case| {
    let victim = c.out.join("dir");
    std::os::unix::fs::symlink(&victim, c.ws.join(".codex")).unwrap();
    let before = snapshot(&victim);
    let ws = c.ws_s();
    let target = format!("{ws}/.codex/inner");
    let p = c.probe_bin();
    let r = c.stockade(
        &["-C", &ws, "--implementation", c.imp.flag()],
        &[&p, "write", &target],
        b"",
        std::time::Duration::from_secs(60),
    );
    match (r.code, r.error_code()) {
        (Some(125), Some(code)) if code != "backend_unavailable" => {
            if r.stderr.trim().is_empty() {
                c.fail(format!("F4: refused without a message\n{}", r.describe()));
            }
        }
        // landlock-only binds nothing, so there is no symlink to follow; protected paths are
        // its documented gap and Landlock still denies the write outside.
        (Some(0), None) if c.imp == Impl::LandlockOnly && Case::gap_listed(&r.gaps(), PROTECTED_GAP).is_some() => {
            c.note("landlock-only: F4 symlinked protected path runs (protected paths are a documented gap)".into());
        }
        _ => c.fail(format!(
            "F4: a symlinked protected path did not fail closed with a specific error\n{}",
            r.describe()
        )),
    }
    let d = snapshot_diff(&before, &snapshot(&victim));
    if !d.is_empty() {
        c.fail(format!("F4: the symlink target changed: {d:?}"));
    }
    std::fs::remove_file(c.ws.join(".codex")).unwrap();
});

// F4: the sandbox plants a symlink where the host writes the report afterwards.
probe_test!(f4_report_path_symlink_not_followed, |c: &mut Case| {
    let ws = c.ws_s();
    let victim = format!("{}/victim", c.out_s());
    let report = format!("{ws}/report.json");
    let r = c.stockade(
        &["-C", &ws, "--implementation", c.imp.flag(), "--report", &report],
        &["/bin/sh", "-c", &format!("ln -sf {victim} {report}")],
        b"",
        std::time::Duration::from_secs(60),
    );
    if r.code != Some(0) {
        c.fail(format!("F4 report: the planting command failed\n{}", r.describe()));
    }
    let md = std::fs::symlink_metadata(&report);
    if !md.map(|m| m.is_file()).unwrap_or(false) {
        c.fail(format!("F4 report: {report} is not a regular file after the run"));
    }
});

// F5: hardlinks: creating one to an outside file (A), and one the harness made before launch (B).
probe_test!(f5_hardlinks, |c: &mut Case| {
    let (o, h, w) = (c.out_s(), c.home.to_string_lossy().into_owned(), c.ws_s());
    c.expect_all_denied(
        "F5A",
        &[
            sv(&["link", &format!("{o}/victim"), &format!("{w}/h")]),
            sv(&["link", &format!("{h}/.bashrc"), &format!("{w}/h2")]),
        ],
        None,
        &[0],
    );
    if c.imp == Impl::Namespaces {
        let _ = std::fs::remove_file(c.ws.join("h"));
    }
    c.expect_all_allowed("F5A-control", &[sv(&["link", &format!("{w}/README.md"), &format!("{w}/h3")])]);
    // B: a hardlink that already exists in the workspace and points at an outside inode.
    std::fs::hard_link(c.out.join("victim"), c.ws.join("prelink")).unwrap();
    c.rebaseline();
    let target = format!("{w}/prelink");
    if c.imp == Impl::Namespaces {
        // Negative control: without the sandbox the write reaches the outside file.
        let before = std::fs::read(c.out.join("victim")).unwrap();
        let o = c.probe_unsandboxed(&["write", &target]);
        c.escapes("F5B", &o);
        if std::fs::read(c.out.join("victim")).unwrap() == before {
            c.fail("F5B: negative control: writing the pre-existing hardlink left the outside file unchanged".into());
        }
        c.rebaseline();
    }
    let before = std::fs::read(c.out.join("victim")).unwrap();
    let ws = c.ws_s();
    let p = c.probe_bin();
    let r = c.stockade(
        &["-C", &ws, "--implementation", c.imp.flag()],
        &[&p, "write", &target],
        b"",
        std::time::Duration::from_secs(60),
    );
    let after = std::fs::read(c.out.join("victim")).unwrap();
    if r.code == Some(125) {
        c.note(format!("F5B: stockade refused a workspace with an outside hardlink ({:?})", r.error_code()));
    } else if after != before {
        let gaps = r.report.as_ref().map(|_| r.gaps()).unwrap_or_default();
        let what = format!(
            "appending through a pre-existing hardlink in the workspace modified {}/victim outside it",
            c.out_s()
        );
        match c.imp {
            // An accepted residual gap of namespaces, only while the report discloses it.
            Impl::Namespaces => {
                c.residual_listed("F5B", &what, &gaps, Residual::PreexistingHardLink, &r.describe());
            }
            Impl::LandlockOnly => match Case::gap_listed(&gaps, &["hardlink", "hard link"]) {
                Some(g) => c.note(format!("F5B: pre-existing hardlink modified the outside file (documented: {g})")),
                None => c.fail(format!("F5B: {what}, and stockade neither refused nor reported it\n{}", r.describe())),
            },
        }
        c.rebaseline();
    }
    std::fs::remove_file(c.ws.join("prelink")).unwrap();
    c.rebaseline();
});

// F7 + F8: /proc traversal into host processes (their root, cwd, mem), and through the
// command's own `/proc/self/root` to a deny-read file: the magic link must lead to the
// sandbox's view (or to a path Landlock checks like any other), not around it.
probe_test!(f7_proc_traversal, |c: &mut Case| {
    let s = c.sentinel.pid().to_string();
    let h = c.home.to_string_lossy().into_owned();
    c.expect_all_denied(
        "F7",
        &[
            sv(&["read", &format!("/proc/{s}/root{h}/.ssh/id_ed25519")]),
            sv(&["readdir", &format!("/proc/{s}/cwd")]),
            sv(&["readdir", &format!("/proc/{s}/root/")]),
            sv(&["proc-mem", &s]),
        ],
        Some(&["process"]),
        &[0, 1, 3],
    );
    // Not a matter of seeing other processes, so no gap excuses it under `landlock-only`.
    c.expect_all_denied("F7-self-root", &[sv(&["read", &format!("/proc/self/root{h}/.ssh/id_ed25519")])], None, &[0]);
    c.expect_all_allowed("F7-control", &[sv(&["read", "/proc/self/status"]), sv(&["readdir", "/proc/self/fd"])]);
});

// F9: leaked file descriptors (runc CVE-2024-21626 class). The harness hands stockade an
// inheritable directory fd and socket; the command must see neither.
// See: THREATS.md F9
probe_test!(f9_fd_leak, |c: &mut Case| {
    c.leak_fds = true;
    // Negative control: the probe run directly with the leaked fds finds them.
    if c.imp == Impl::Namespaces {
        let p = c.probe_bin();
        let mut cmd = crate::harness::as_account(&c.acc, &[&p, "fd-scan"]);
        c.leak_into(&mut cmd);
        let r = crate::harness::run_cmd(cmd, b"", std::time::Duration::from_secs(30));
        let o = crate::harness::obs_of(&r, "fd-scan (direct, leaked fds)");
        c.escapes("F9", &o);
    }
    let o = c.probe(&["fd-scan"]);
    c.denied("F9", &o);
    // Run by stockade directly (no shell in between), the command has nothing open above 2:
    // not a file, pipe or device either (THREATS F9: only stdio).
    let p = c.probe_bin();
    let r = c.sandboxed(&[&p, "fd-scan"]);
    let o = crate::harness::obs_of(&r, "fd-scan (run by stockade directly)");
    c.denied("F9", &o);
    if !o.detail().ends_with("open: []") {
        c.fail(format!("F9: the command started with descriptors above 2 open: {}", o.detail()));
    }
    c.leak_fds = false;
});

// F10: mount tricks to uncover protected paths, and the mount API.
probe_test!(f10_mount_tricks, |c: &mut Case| {
    let w = c.ws_s();
    let hooks = format!("{w}/.git/hooks");
    let items = vec![
        sv(&["umount", &hooks]),
        sv(&["remount-rw", &hooks]),
        sv(&["mount-tmpfs", &format!("{w}/d")]),
        sv(&["bind-mount", &format!("{w}/d"), &hooks]),
        sv(&["chroot", &w]),
        sv(&["pivot-root", &w, &format!("{w}/d")]),
        sv(&["open-tree", &format!("{w}/.git")]),
        sv(&["fsopen"]),
        sv(&["fspick", &hooks]),
        sv(&["mount-setattr", &hooks]),
        sv(&["unshare", "mnt"]),
        sv(&["unshare", "user"]),
    ];
    // Without a sandbox, root reaches the mount API; anyone may create a user namespace.
    let neg: &[usize] = if c.who == Who::Root { &[6, 7, 11] } else { &[11] };
    c.expect_all_denied("F10", &items, None, neg);
    let sh = format!("unshare -Urm sh -c 'umount {hooks}; echo x >> {hooks}/pre-commit' 2>&1; echo rc=$?");
    let r = c.sandboxed(&["/bin/sh", "-c", &sh]);
    if r.out().contains("rc=0") {
        c.fail(format!("F10: nested `unshare -Urm` + umount succeeded\n{}", r.describe()));
    }
    c.expect_all_allowed("F10-control", &[sv(&["fork"])]);
});

// F11: repo metadata and agent config inside the writable workspace stay read-only.
probe_test!(f11_protected_paths, |c: &mut Case| {
    let w = c.ws_s();
    let cfg_before = std::fs::read(c.ws.join(".git/config")).unwrap();
    let items = vec![
        sv(&["write", &format!("{w}/.git/hooks/pre-commit")]),
        sv(&["write", &format!("{w}/.git/config")]),
        sv(&["trunc", &format!("{w}/.git/config")]),
        sv(&["unlink", &format!("{w}/.git/config")]),
        sv(&["rename", &format!("{w}/.git/hooks"), &format!("{w}/.git/hooks-old")]),
        sv(&["mkdir", &format!("{w}/.codex")]),
        sv(&["mkdir", &format!("{w}/.claude")]),
        sv(&["write", &format!("{w}/.vscode")]),
        sv(&["mkdir", &format!("{w}/.stockade")]),
        sv(&["mkdir", &format!("{w}/.idea")]),
        sv(&["chmod", &format!("{w}/.git/config")]),
        // Inside the agent and editor config directories (placeholders where they were
        // missing, so `mkdir` of them alone meets EEXIST): what an agent or editor would read.
        sv(&["write", &format!("{w}/.codex/config.toml")]),
        sv(&["write", &format!("{w}/.claude/settings.json")]),
        sv(&["write", &format!("{w}/.vscode/settings.json")]),
        sv(&["write", &format!("{w}/.stockade/config.toml")]),
        sv(&["write", &format!("{w}/.idea/workspace.xml")]),
        // A dev container's `initializeCommand` runs on the host; husky's hooks run from host
        // git through `core.hooksPath`.
        sv(&["mkdir", &format!("{w}/.devcontainer")]),
        sv(&["write", &format!("{w}/.devcontainer/devcontainer.json")]),
        sv(&["mkdir", &format!("{w}/.husky")]),
        sv(&["write", &format!("{w}/.husky/pre-commit")]),
    ];
    c.expect_all_denied("F11", &items, Some(PROTECTED_GAP), &[0, 1, 5]);
    if c.imp == Impl::Namespaces {
        // Undo what the negative control wrote.
        let _ = std::fs::remove_file(c.ws.join(".git/hooks/pre-commit"));
        std::fs::write(c.ws.join(".git/config"), &cfg_before).unwrap();
        let _ = std::fs::remove_dir(c.ws.join(".codex"));
    }
    let git_before = snapshot(&c.ws.join(".git/hooks"));
    // Shell level: git itself rewriting its config.
    let r = c.sandboxed(&[
        "/bin/sh",
        "-c",
        "git rev-parse --git-dir >/dev/null || exit 97; git config core.hooksPath /tmp/h; git config core.fsmonitor 'touch /tmp/PWNED'; echo",
    ]);
    if r.code == Some(97) {
        c.fail(format!(
            "F11-control: git does not run in the sandbox, so its config writes prove nothing\n{}",
            r.describe()
        ));
    }
    let protected_changed = snapshot_diff(&git_before, &snapshot(&c.ws.join(".git/hooks")));
    let cfg_after = std::fs::read(c.ws.join(".git/config")).unwrap();
    // Empty placeholders the backend creates to bind over are fine; content is not.
    let dirs_created: Vec<&str> = [".codex", ".claude", ".vscode", ".stockade", ".idea"]
        .into_iter()
        .filter(|d| {
            let p = c.ws.join(d);
            p.is_file() || std::fs::read_dir(&p).map(|mut e| e.next().is_some()).unwrap_or(false)
        })
        .collect();
    if !protected_changed.is_empty() || cfg_after != cfg_before || !dirs_created.is_empty() {
        let msg = format!(
            "F11: protected paths changed on the host: hooks {protected_changed:?}, .git/config changed: {}, created: {dirs_created:?}",
            cfg_after != cfg_before
        );
        if c.imp == Impl::LandlockOnly && c.notes.iter().any(|n| n.contains("documented gap")) {
            c.note(format!("landlock-only: {msg} (documented gap)"));
        } else {
            c.fail(msg);
        }
    }
    c.expect_all_allowed(
        "F11-control",
        &[sv(&["write", &format!("{w}/.git/description")]), sv(&["write", &format!("{w}/.git/info/exclude")])],
    );
});

// F11: a nested `git init` creates a repo whose hooks the user may run later.
// See: THREATS.md F11 ("git init in subdir denied (no .git created)")
probe_test!(f11_nested_git_init, |c: &mut Case| {
    let plant = [
        "/bin/sh",
        "-c",
        "git init -q sub && mkdir -p sub/.git/hooks && printf '#!/bin/sh\\n' > sub/.git/hooks/pre-commit; echo rc=$?",
    ];
    let hook = c.ws.join("sub/.git/hooks/pre-commit");
    if c.imp == Impl::Namespaces {
        // Negative control: without the sandbox the same command plants the hook.
        let r = c.unsandboxed(&plant);
        if !hook.exists() {
            c.fail(format!("F11 nested: negative control planted no hook (the probe is blind)\n{}", r.describe()));
        }
        let _ = std::fs::remove_dir_all(c.ws.join("sub"));
        c.rebaseline();
    }
    let r = c.sandboxed(&plant);
    let planted = hook.exists();
    if planted {
        let gaps = r.gaps();
        match (c.imp, Case::gap_listed(&gaps, PROTECTED_GAP)) {
            (Impl::LandlockOnly, Some(g)) => {
                c.note(format!("landlock-only: nested repo hook planted (documented gap: {g})"))
            }
            (Impl::LandlockOnly, None) => c.fail(format!(
                "F11 nested: `git init sub` inside the workspace planted sub/.git/hooks/pre-commit\n{}",
                r.describe()
            )),
            // An accepted residual gap of namespaces, only while the report discloses it.
            (Impl::Namespaces, _) => {
                c.residual_listed(
                    "F11 nested",
                    "`git init sub` inside the workspace planted sub/.git/hooks/pre-commit",
                    &gaps,
                    Residual::NestedRepo,
                    &r.describe(),
                );
            }
        }
    }
    // The workspace's own repository stays protected meanwhile.
    if c.ws.join(".git/hooks/pre-commit").exists() {
        c.fail(format!("F11 nested: the workspace's own .git/hooks/pre-commit appeared\n{}", r.describe()));
    }
});

// F11 (class): a nested repository recorded as a submodule. The command makes `sub` a
// repository whose config names a program (`core.fsmonitor`) and records it in the
// workspace's index as a gitlink; a plain `git status` on the host then runs git inside `sub`,
// which runs that program on the host. Only each writable root's own git metadata is
// protected, so for namespaces this is an accepted residual gap: the report must list it, and
// the run must report the changed config as a warning (in the report and on stderr).
// See: THREATS.md F11 ("defend the class, not the one command line")
probe_test!(f11_gitlinked_nested_repo, |c: &mut Case| {
    let ran = c.dir.join("fsmonitor-ran");
    let script = format!(
        "git init -q sub && git -C sub config core.fsmonitor 'touch {}; false' \
         && git update-index --add --cacheinfo 160000,1111111111111111111111111111111111111111,sub; echo rc=$?",
        ran.display()
    );
    let plant = ["/bin/sh", "-c", script.as_str()];
    // What a developer does next on the host: `git status` in the workspace.
    let host_status_runs_it = |c: &Case| {
        let _ = std::fs::remove_file(&ran);
        let _ = c.host_git(&["status"]);
        let hit = ran.exists();
        let _ = std::fs::remove_file(&ran);
        hit
    };
    let undo = |c: &Case| {
        let _ = c.host_git(&["update-index", "--force-remove", "sub"]);
        let _ = std::fs::remove_dir_all(c.ws.join("sub"));
    };
    if c.imp == Impl::Namespaces {
        // Negative control: without the sandbox the same command makes host git run it.
        let r = c.unsandboxed(&plant);
        if !host_status_runs_it(c) {
            c.fail(format!(
                "F11 gitlink: negative control: host git did not run the program (the probe is blind)\n{}",
                r.describe()
            ));
        }
        undo(c);
        c.rebaseline();
    }
    let r = c.sandboxed(&plant);
    if !String::from_utf8_lossy(&r.stdout).contains("rc=0") {
        c.fail(format!("F11 gitlink: the plant did not run inside the sandbox (the probe is blind)\n{}", r.describe()));
    } else if host_status_runs_it(c) {
        let warned = r.report.as_ref().is_some_and(|v| {
            v["warnings"].as_array().is_some_and(|w| {
                w.iter().any(|w| {
                    w["code"] == "git_nested_repository_changed"
                        && w["path"] == c.ws.join("sub/.git/config").to_string_lossy().as_ref()
                })
            })
        });
        if !warned || !r.stderr.contains("warning: the command changed") {
            c.fail(format!(
                "F11 gitlink: the nested repository's new config was not reported as a warning\n{}",
                r.describe()
            ));
        }
        let gaps = r.gaps();
        match (c.imp, Case::gap_listed(&gaps, PROTECTED_GAP)) {
            (Impl::LandlockOnly, Some(g)) => {
                c.note(format!("landlock-only: gitlinked nested repo planted (documented gap: {g})"))
            }
            (Impl::LandlockOnly, None) => {
                c.fail(format!("F11 gitlink: host git runs a program the command configured\n{}", r.describe()))
            }
            (Impl::Namespaces, _) => {
                c.residual_listed(
                    "F11 gitlink",
                    "host `git status` runs a program a gitlinked nested repository's config names",
                    &gaps,
                    Residual::NestedRepo,
                    &r.describe(),
                );
            }
        }
    } else {
        c.note(format!(
            "F11 gitlink: host git did not run the program (stricter than the listed gap)\n{}",
            r.describe()
        ));
    }
    undo(c);
});

// F11 (class): `.git/commondir` points git at another "common directory", whose config and
// hooks it then uses. The command writes one naming a directory it made, with a config that
// sets core.hooksPath; on the host, `git config` in the workspace then reads that value. No
// placeholder can stop it (any `commondir` changes git's behaviour), so for namespaces it is an
// accepted residual gap that the report must list; landlock-only lists all protected paths.
// See: THREATS.md F11 ("defend the class, not the one command line")
probe_test!(f11_git_commondir_redirect, |c: &mut Case| {
    let plant = [
        "/bin/sh",
        "-c",
        "mkdir -p .cd/objects .cd/refs && printf '[core]\n\trepositoryformatversion = 0\n\thooksPath = /tmp/sbx-hooks\n' > .cd/config \
         && echo ../.cd > .git/commondir; echo rc=$?",
    ];
    let redirected = |c: &Case| {
        let o = c.host_git(&["config", "--get", "core.hooksPath"]);
        o.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "/tmp/sbx-hooks")
    };
    if c.imp == Impl::Namespaces {
        // Negative control: without the sandbox the same command redirects the host's git.
        let r = c.unsandboxed(&plant);
        if !redirected(c) {
            c.fail(format!(
                "F11 commondir: negative control did not redirect git (the probe is blind)\n{}",
                r.describe()
            ));
        }
        let _ = std::fs::remove_file(c.ws.join(".git/commondir"));
        let _ = std::fs::remove_dir_all(c.ws.join(".cd"));
        c.rebaseline();
    }
    let r = c.sandboxed(&plant);
    if redirected(c) {
        // The run cannot be stopped, but it must not pass silently: a warning in the report
        // and on stderr names the file.
        let warned = r.report.as_ref().is_some_and(|v| {
            v["warnings"].as_array().is_some_and(|w| w.iter().any(|w| w["code"] == "git_commondir_created"))
        });
        if !warned || !r.stderr.contains("warning: the command created") {
            c.fail(format!("F11 commondir: the new .git/commondir was not reported as a warning\n{}", r.describe()));
        }
        let gaps = r.gaps();
        match (c.imp, Case::gap_listed(&gaps, PROTECTED_GAP)) {
            (Impl::LandlockOnly, Some(g)) => {
                c.note(format!("landlock-only: .git/commondir planted (documented gap: {g})"))
            }
            (Impl::LandlockOnly, None) => c.fail(format!(
                "F11 commondir: the command redirected the host's git with .git/commondir\n{}",
                r.describe()
            )),
            (Impl::Namespaces, _) => {
                c.residual_listed(
                    "F11 commondir",
                    "a new .git/commondir redirected the host's git config",
                    &gaps,
                    Residual::GitRedirect,
                    &r.describe(),
                );
            }
        }
    } else {
        c.note(format!(
            "F11 commondir: the sandboxed run did not redirect git (stricter than the listed gap)\n{}",
            r.describe()
        ));
    }
    let _ = std::fs::remove_file(c.ws.join(".git/commondir"));
    let _ = std::fs::remove_dir_all(c.ws.join(".cd"));
});

// F12 + I4: home-directory persistence (writes) and credential files (reads).
probe_test!(f12_home_persistence_and_secrets, |c: &mut Case| {
    let h = c.home.to_string_lossy().into_owned();
    let writes: Vec<Vec<String>> = [
        ".bashrc",
        ".profile",
        ".zshrc",
        ".gitconfig",
        ".bash_logout",
        ".ssh/authorized_keys",
        ".config/autostart/x.desktop",
        ".local/bin/git",
        ".cargo/config.toml",
        ".npmrc",
    ]
    .iter()
    .map(|f| sv(&["write", &format!("{h}/{f}")]))
    .collect();
    c.expect_all_denied("F12-write", &writes, None, &[0, 5]);
    let reads: Vec<Vec<String>> =
        crate::harness::SECRET_FILES.iter().map(|f| sv(&["read", &format!("{h}/{f}")])).collect();
    if c.imp == Impl::Namespaces {
        let neg = c.run_batch(&reads[..1], false);
        c.escapes("I4", &neg[0]);
    }
    for o in c.run_batch(&reads, true) {
        if o.outcome == "allowed" && o.detail().contains(SECRET_MARK) {
            c.fail(format!("I4: secret readable: `{}` -> {}", o.label, o.summary()));
        } else if o.outcome == "allowed" {
            c.note(format!("I4: `{}` opened but holds no secret (replaced)", o.label));
        }
    }
    c.expect_all_allowed(
        "F12-control",
        &[sv(&["read", &format!("{h}/.bashrc")]), sv(&["read", &format!("{}/existing", c.out_s())])],
    );
});

// F13: devices, /proc/sys, sysrq.
probe_test!(f13_devices, |c: &mut Case| {
    let w = c.ws_s();
    let items = vec![
        sv(&["mknod-chr", &format!("{w}/null")]),
        sv(&["mknod-blk", &format!("{w}/sda")]),
        sv(&["write", "/proc/sysrq-trigger"]),
        sv(&["write", "/proc/sys/kernel/core_pattern"]),
        sv(&["write", "/sys/kernel/mm/transparent_hugepage/enabled"]),
        sv(&["read", "/dev/kmsg"]),
        sv(&["read", "/dev/mem"]),
    ];
    let neg: &[usize] = if c.who == Who::Root { &[0, 5] } else { &[] };
    c.expect_all_denied("F13", &items, None, neg);
    c.expect_all_allowed(
        "F13-control",
        &[sv(&["write", "/dev/null"]), sv(&["read", "/dev/urandom"]), sv(&["read", "/proc/self/status"])],
    );
    // A block device of the host (THREATS: `echo x > /dev/sda`): under a disk's files, so
    // reading it would get round every deny-read path. Root only: a user cannot open one
    // outside either, so that control would be blind. Inside, `/dev` is minimal (namespaces:
    // no such file) or Landlock refuses it (landlock-only: `EACCES`).
    if c.who != Who::Root {
        return;
    }
    let Some(dev) = readable_block_device() else {
        c.note("F13: no block device this host lets root read; the block-device check is left out".into());
        return;
    };
    let o = c.probe_unsandboxed(&["read", &dev]);
    c.escapes("F13-block", &o);
    let o = c.probe(&["read", &dev]);
    let want = if c.imp == Impl::Namespaces { libc::ENOENT } else { libc::EACCES };
    if c.denied("F13-block", &o) && o.errno() != Some(i64::from(want)) {
        c.fail(format!("F13-block: refused, but not as expected (errno {want}): {}", o.summary()));
    }
    // The same device through a bind of it outside `/dev` (as a chroot's `/dev` is bound from
    // the host): the view mounts every host mount `nodev`, and `landlock-only`, which cannot,
    // leaves the host's device mounts out of what the command may read. `EACCES` both ways.
    if c.dir.starts_with("/tmp") || c.dir.starts_with("/var/tmp") {
        // `landlock-only` leaves the host's temp dirs out whole: a refusal would not show that
        // it left the device mount out.
        c.note(format!(
            "F13: the case directory {} is in a temp dir; the bound-device check is left out",
            c.dir.display()
        ));
        return;
    }
    let bound = c.dir.join("bound-dev");
    std::fs::write(&bound, b"").unwrap();
    let Some(_bind) = BindMount::new(&dev, &bound) else {
        c.note(format!("F13: could not bind {dev} here; the bound-device check is left out"));
        return;
    };
    let b = bound.to_string_lossy().into_owned();
    let o = c.probe_unsandboxed(&["read", &b]);
    c.escapes("F13-bound-block", &o);
    let o = c.probe(&["read", &b]);
    if c.denied("F13-bound-block", &o) && o.errno() != Some(i64::from(libc::EACCES)) {
        c.fail(format!("F13-bound-block: refused, but not with EACCES: {}", o.summary()));
    }
});

/// A bind mount of one file, undone (lazily) when dropped, so that a failed check never leaves
/// a host device bound in the test's directory.
struct BindMount(std::ffi::CString);

impl BindMount {
    fn new(source: &str, target: &std::path::Path) -> Option<BindMount> {
        use std::os::unix::ffi::OsStrExt;
        let src = std::ffi::CString::new(source).ok()?;
        let dst = std::ffi::CString::new(target.as_os_str().as_bytes()).ok()?;
        // SAFETY: two valid C strings; no data argument.
        let r = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
        (r == 0).then_some(BindMount(dst))
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        // SAFETY: a valid C string.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A block device under `/sys/block` that this process can read: disks before loop devices
/// (some hosts refuse even root their disks), one with data before an empty one, and only
/// one whose first 512 bytes read without error (an unconnected `nbd` opens, then fails).
fn readable_block_device() -> Option<String> {
    use std::io::Read;
    let mut names: Vec<(bool, bool, String)> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|n| {
            let size = std::fs::read_to_string(format!("/sys/block/{n}/size")).unwrap_or_default();
            let empty = size.trim().parse::<u64>().map_or(true, |s| s == 0);
            (n.starts_with("loop"), empty, n)
        })
        .collect();
    names.sort();
    names.into_iter().map(|(_, _, n)| format!("/dev/{n}")).find(|p| {
        let mut buf = [0u8; 512];
        std::fs::File::open(p).and_then(|mut f| f.read(&mut buf)).is_ok()
    })
}

// F14: a setuid-root binary in the workspace must not grant root (NNP, nosuid).
probe_test!(f14_setuid, |c: &mut Case| {
    if c.who == Who::Root {
        c.note("F14: already root; the setuid check runs in the user tier".into());
        return;
    }
    if !crate::harness::is_root() {
        crate::harness::skip(&c.name, "root", "making a setuid-root copy needs the harness to run as root");
        return;
    }
    let dst = c.ws.join("suid-probe");
    std::fs::copy(&crate::harness::bins().probe, &dst).unwrap();
    std::os::unix::fs::chown(&dst, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let d = dst.to_string_lossy().into_owned();
    privileged_copy(c, &d, "setuid-root copy", |o| o.detail().contains(" euid=0 "));

    // The same at a system path, outside every writable root, where `sudo`, `su` and `pkexec`
    // live: there the read-only view of `/` (`nosuid`) and no_new_privs must stop it, where
    // the copy above met the workspace's bind. A root-owned directory beside the staged
    // binaries stands in for `/usr/bin`.
    let sys = crate::harness::bins().probe.with_file_name(format!("suid-system-{}", crate::harness::rand_token()));
    std::fs::copy(&crate::harness::bins().probe, &sys).unwrap();
    std::os::unix::fs::chown(&sys, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&sys, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let s = sys.to_string_lossy().into_owned();
    privileged_copy(c, &s, "setuid-root binary at a system path", |o| o.detail().contains(" euid=0 "));
    std::fs::remove_file(&sys).unwrap();

    // A file capability (THREATS: `ping` with `cap_net_raw`), on another copy: exec grants it
    // without the sandbox; no_new_privs (and `nosuid` on the binds) keep it out inside.
    let fcap = c.ws.join("fcap-probe");
    std::fs::copy(&crate::harness::bins().probe, &fcap).unwrap();
    if let Err(e) = set_file_capability(&fcap, CAP_NET_RAW) {
        crate::harness::skip(&c.name, "file-caps", &format!("setting a file capability failed here: {e}"));
        return;
    }
    let f = fcap.to_string_lossy().into_owned();
    // CapPrm as /proc shows it: 16 hex digits; CAP_NET_RAW is bit 13.
    let has_net_raw = |o: &crate::harness::Obs| {
        o.detail()
            .split_whitespace()
            .find_map(|w| w.strip_prefix("CapPrm="))
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .is_some_and(|v| v & (1 << CAP_NET_RAW) != 0)
    };
    privileged_copy(c, &f, "file-capability copy", has_net_raw);
});

/// F14's check of a privileged copy of the probe (`bin`), which reports its posture: without
/// the sandbox `granted` must hold (the control; the namespaces pass runs it for both), inside
/// it must not, and the posture must be the sandbox's (no capability, no_new_privs, seccomp).
fn privileged_copy(c: &mut Case, bin: &str, what: &str, granted: impl Fn(&crate::harness::Obs) -> bool) {
    if c.imp == Impl::Namespaces {
        let r = c.unsandboxed(&[bin, "posture"]);
        let o = crate::harness::obs_of(&r, &format!("{what} posture unsandboxed"));
        if !granted(&o) {
            c.fail(format!("F14: negative control: the {what} gave nothing without a sandbox\n{}", o.ctx));
        }
    }
    let r = c.sandboxed(&[bin, "posture"]);
    let o = crate::harness::obs_of(&r, &format!("{what} posture"));
    if granted(&o) || o.outcome != "denied" {
        c.fail(format!("F14: the {what} ran with privileges or a weak posture: {}", o.summary()));
    }
}

/// `CAP_NET_RAW` (linux/capability.h), the capability `ping` is commonly given as a file
/// capability.
const CAP_NET_RAW: u32 = 13;

/// Gives `path` the file capability `cap`, permitted and effective (what `setcap
/// cap_net_raw+ep` writes): a version 2 `security.capability` attribute, which the kernel
/// honours for a process whose user namespace maps root (the host's, here).
fn set_file_capability(path: &std::path::Path, cap: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;
    // magic_etc, then (permitted, inheritable) for capabilities 0-31 and 32-63.
    let words = [VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, 1 << cap, 0, 0, 0];
    let value: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: valid C strings and a buffer of the length passed.
    let r = unsafe {
        libc::setxattr(cpath.as_ptr(), c"security.capability".as_ptr(), value.as_ptr().cast(), value.len(), 0)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

// F16: /tmp, /var/tmp, /dev/shm are private: nothing reaches the host, host files invisible.
probe_test!(f16_shared_tmp, |c: &mut Case| {
    let tok = crate::harness::rand_token();
    let names: Vec<String> = ["/tmp", "/var/tmp", "/dev/shm"].iter().map(|d| format!("{d}/sbx-{tok}")).collect();
    if c.imp == Impl::Namespaces {
        let neg = c.run_batch(&[sv(&["write", &names[0]])], false);
        c.escapes("F16", &neg[0]);
        if std::path::Path::new(&names[0]).exists() {
            std::fs::remove_file(&names[0]).unwrap();
        } else {
            c.fail("F16: negative control: the host did not see the file".into());
        }
    }
    let items: Vec<Vec<String>> = names.iter().map(|n| sv(&["write", n])).collect();
    for o in c.run_batch(&items, true) {
        if c.imp == Impl::LandlockOnly && o.is_denied() {
            match Case::gap_listed(&o.gaps, TMP_GAP) {
                Some(g) => {
                    c.note(format!("landlock-only: `{}` denied: no private temp dir (documented: {g})", o.label))
                }
                None => c.fail(format!("F16: `{}` denied under landlock-only and no /tmp gap is documented", o.label)),
            }
            continue;
        }
        c.allowed("F16-control (private temp is writable)", &o);
    }
    for n in &names {
        if std::path::Path::new(n).exists() {
            let _ = std::fs::remove_file(n);
            match (c.imp, n.starts_with("/tmp")) {
                (Impl::LandlockOnly, _) => c.note(format!("landlock-only: {n} written on the host temp dir")),
                _ => c.fail(format!("F16: {n} written inside the sandbox appeared on the host")),
            }
        }
    }
    if c.imp == Impl::LandlockOnly {
        // Its private temp dir is $TMPDIR.
        let p = c.probe_bin();
        let r = c.sandboxed(&["/bin/sh", "-c", &format!("'{p}' write \"${{TMPDIR:?}}/sbx-{tok}\"")]);
        let o = crate::harness::obs_of(&r, "write $TMPDIR/sbx");
        c.allowed("F16-control (landlock-only: $TMPDIR is writable)", &o);
    }
    // A file the host keeps in its temp dir (a Kerberos ticket cache, `/tmp/krb5cc_*`) and one
    // in the user's runtime dir (like a container's `/run/secrets`): readable without the
    // sandbox; inside, the namespaces view has empty directories there (no such file), and
    // `landlock-only`, which cannot replace them, leaves them out of what it lets the command
    // read (`EACCES`). Neither may reach the command.
    let mut host_files = vec![std::path::PathBuf::from(format!("/tmp/sbx-hostfile-{tok}"))];
    let run_user = std::path::PathBuf::from(format!("/run/user/{}", c.acc.uid));
    if run_user.is_dir() {
        host_files.push(run_user.join(format!("sbx-hostfile-{tok}")));
    } else {
        c.note(format!("F16: no {} on this host; only the /tmp file is checked", run_user.display()));
    }
    let _gone = RemoveOnDrop(host_files.clone());
    for f in &host_files {
        std::fs::write(f, format!("{SECRET_MARK} host file\n")).unwrap();
        std::os::unix::fs::chown(f, Some(c.acc.uid), Some(c.acc.gid)).unwrap();
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for f in &host_files {
        let path = f.to_string_lossy().into_owned();
        let o = c.probe_unsandboxed(&["read", &path]);
        if c.escapes("F16-host-file", &o) && !o.detail().contains(SECRET_MARK) {
            c.fail(format!("F16-host-file: negative control read {path} but not its content: {}", o.summary()));
        }
        let o = c.probe(&["read", &path]);
        let want = if c.imp == Impl::Namespaces { libc::ENOENT } else { libc::EACCES };
        if c.denied("F16-host-file", &o) && o.errno() != Some(i64::from(want)) {
            c.fail(format!("F16-host-file: {path} refused, but not as expected (errno {want}): {}", o.summary()));
        }
        if o.detail().contains(SECRET_MARK) {
            c.fail(format!("F16-host-file: the content of {path} reached the command"));
        }
    }
    let host_sock = c.listeners.paths[1].0.file_name().unwrap().to_string_lossy().into_owned();
    let o = c.probe(&["readdir", "/tmp"]);
    if o.detail().contains(&host_sock) {
        c.fail(format!("F16: host /tmp content ({host_sock}) is visible in the sandbox"));
    }
    // Listing the host's /tmp: an empty private one under namespaces, refused under
    // landlock-only (the default policy has a private temp dir).
    if c.imp == Impl::LandlockOnly && !(o.is_denied() && o.errno() == Some(i64::from(libc::EACCES))) {
        c.fail(format!("F16: landlock-only let the command list the host's /tmp: {}", o.summary()));
    }
});

/// Removes the listed files when dropped, so that a failed check leaves no host file behind.
struct RemoveOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

// F17: Landlock edge cases. (a) `open(O_PATH)` works on files Landlock denies (it does not
// check O_PATH), so reopening such an fd for reading through `/proc/self/fd/N` must be checked
// like an open of the path (under namespaces the key is hidden, and the O_PATH open already
// fails). (b) A file the caller opened before the sandbox exists is not usable inside: the
// supervisor passes no inherited fd on. (c) A program built in the workspace runs.
// See: THREATS.md F17 (kselftest `effective_access`, `ftruncate`, `execute`)
probe_test!(f17_landlock_edges, |c: &mut Case| {
    let key = format!("{}/.ssh/id_ed25519", c.home.display());
    // Negative control: without a sandbox the same reopen reads the key.
    let o = c.probe_unsandboxed(&["opath-reopen", &key]);
    if c.escapes("F17-opath", &o) && !o.detail().contains(SECRET_MARK) {
        c.fail(format!("F17-opath: negative control read the key but not its content: {}", o.summary()));
    }
    let o = c.probe(&["opath-reopen", &key]);
    if c.denied("F17-opath", &o) && o.detail().contains(SECRET_MARK) {
        c.fail(format!("F17-opath: the key's content reached the command: {}", o.summary()));
    }
    // Under landlock-only the path stays visible, so the O_PATH open succeeds and the refusal
    // must come from Landlock at the reopen, the edge this probe exists for.
    if c.imp == Impl::LandlockOnly
        && o.is_denied()
        && !(o.detail().contains("/proc/self/fd/") && o.errno() == Some(i64::from(libc::EACCES)))
    {
        c.fail(format!("F17-opath: not refused by Landlock at the reopen through /proc/self/fd: {}", o.summary()));
    }
    let readme = format!("{}/README.md", c.ws_s());
    let o = c.probe(&["opath-reopen", &readme]);
    if c.allowed("F17-opath-control (O_PATH + reopen of a workspace file)", &o) && !o.detail().contains("hello") {
        c.fail(format!(
            "F17-opath-control: the reopened workspace file did not read back its content: {}",
            o.summary()
        ));
    }

    // (b) A scratch file of this case (outside every writable root, read-write for the run's
    // user) opened by the harness without close-on-exec and handed to `stockade` as fd 7; a
    // second copy gets the same treatment without a sandbox, where it must be truncated.
    const ORIGINAL: &str = "scratch-original\n";
    const EBADF: i64 = libc::EBADF as i64;
    let scratch = c.dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let (held, held_neg) = (scratch.join("held"), scratch.join("held-neg"));
    for f in [&held, &held_neg] {
        std::fs::write(f, ORIGINAL).unwrap();
    }
    crate::harness::chown_tree(&scratch, c.acc.uid, c.acc.gid);
    let open_rw = |p: &std::path::Path| std::fs::OpenOptions::new().read(true).write(true).open(p).unwrap();
    let fd_items: [&[&str]; 2] = [&["write-fd", "7"], &["ftruncate-fd", "7"]];
    {
        let f = open_rw(&held_neg);
        c.inherit_fds = vec![(std::os::fd::AsRawFd::as_raw_fd(&f), 7)];
        for o in c.batch_unsandboxed(&fd_items) {
            c.escapes("F17-inherited-fd", &o);
        }
        c.inherit_fds.clear();
    }
    let left = std::fs::read(&held_neg).unwrap();
    if !left.is_empty() {
        c.fail(format!(
            "F17-inherited-fd: negative control: the inherited fd 7 did not truncate {} ({} bytes left)",
            held_neg.display(),
            left.len()
        ));
    }
    {
        let f = open_rw(&held);
        c.inherit_fds = vec![(std::os::fd::AsRawFd::as_raw_fd(&f), 7)];
        for o in c.batch(&fd_items) {
            // EBADF only: any other answer means fd 7 is open inside (whatever it names).
            if c.denied("F17-inherited-fd", &o) && o.errno() != Some(EBADF) {
                c.fail(format!("F17-inherited-fd: fd 7 is open inside the sandbox: `{}` -> {}", o.label, o.summary()));
            }
        }
        c.inherit_fds.clear();
    }
    let now = std::fs::read_to_string(&held).unwrap_or_default();
    if now != ORIGINAL {
        c.fail(format!("F17-inherited-fd: the host file behind the inherited fd changed: {now:?}"));
    }

    let dst = c.ws.join("tool");
    std::fs::copy("/bin/true", &dst).unwrap();
    std::os::unix::fs::chown(&dst, Some(c.acc.uid), Some(c.acc.gid)).unwrap();
    let o = c.probe(&["exec", &dst.to_string_lossy()]);
    c.allowed("F17-control (exec from the workspace)", &o);
});

// F11 (class): the protected binds sit on `.git/hooks` and `.git/config`; renaming `.git` itself
// away and putting a fresh `.git` with a hook in its place must not work either.
// See: THREATS.md F11 ("defend the class, not the one command line")
probe_test!(f11_git_dir_replaced, |c: &mut Case| {
    let script = "mv .git .git-moved && mkdir -p .git/hooks && cp -r .git-moved/objects .git-moved/refs .git-moved/HEAD .git/ \
                  && printf '[core]\\n\\trepositoryformatversion = 0\\n\\thooksPath = .git/hooks\\n' > .git/config \
                  && printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit; echo rc=$?";
    let r = c.sandboxed(&["/bin/sh", "-c", script]);
    let hook = c.ws.join(".git/hooks/pre-commit");
    if hook.exists() {
        match (c.imp, Case::gap_listed(&r.gaps(), PROTECTED_GAP)) {
            (Impl::LandlockOnly, Some(g)) => c.note(format!("landlock-only: replaced .git with a hook (documented gap: {g})")),
            _ => c.fail(format!(
                "F11 .git replaced: the sandbox moved `.git` aside and planted .git/hooks/pre-commit in a fresh `.git`, \
                 which the host's git will run\n{}",
                r.describe()
            )),
        }
    }
});

// F15: setup-time race: while launches happen, another process keeps swapping `.git` with a
// symlink to a directory outside the workspace. Every launch must bind the real directory or
// refuse; nothing outside may change. Bounded to 20 launches.
// See: THREATS.md F15 (runc CVE-2021-30465)
probe_test!(f15_setup_race, |c: &mut Case| {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let fake = c.out.join("fakegit");
    std::fs::create_dir_all(fake.join("hooks")).unwrap();
    std::fs::write(fake.join("config"), "[core]\n").unwrap();
    crate::harness::chown_tree(&fake, c.acc.uid, c.acc.gid);
    c.rebaseline();
    let stop = Arc::new(AtomicBool::new(false));
    let (ws, st) = (c.ws.clone(), stop.clone());
    let racer = std::thread::spawn(move || {
        let (git, real, link) = (ws.join(".git"), ws.join(".git-real"), ws.join(".git-link"));
        let _ = std::os::unix::fs::symlink(&fake, &link);
        let mut n = 0u32;
        while !st.load(Ordering::Relaxed) {
            // .git -> .git-real, symlink -> .git, then back.
            if std::fs::rename(&git, &real).is_ok() {
                let _ = std::fs::rename(&link, &git);
                std::thread::yield_now();
                let _ = std::fs::rename(&git, &link);
                let _ = std::fs::rename(&real, &git);
            }
            n += 1;
        }
        let _ = std::fs::remove_file(&link);
        n
    });
    let w = c.ws_s();
    let (mut ran, mut refused) = (0, 0);
    for _ in 0..20 {
        let ws = w.clone();
        let p = c.probe_bin();
        let hook = format!("{w}/.git/hooks/pre-commit");
        let r = c.stockade(
            &["-C", &ws, "--implementation", c.imp.flag()],
            &[&p, "write", &hook],
            b"",
            std::time::Duration::from_secs(60),
        );
        if r.code == Some(125) {
            refused += 1;
        } else {
            ran += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    if !c.ws.join(".git").is_dir() || std::fs::symlink_metadata(c.ws.join(".git")).unwrap().file_type().is_symlink() {
        panic!("F15: harness left .git in a bad state");
    }
    c.note(format!("F15: {ran} launches ran, {refused} refused while {swaps} swaps happened"));
    let planted = c.ws.join(".git/hooks/pre-commit").exists();
    if planted && c.imp == Impl::Namespaces {
        c.fail("F15: a launch during the race let the command write .git/hooks/pre-commit".into());
    }
    let _ = std::fs::remove_file(c.ws.join(".git/hooks/pre-commit"));
});
