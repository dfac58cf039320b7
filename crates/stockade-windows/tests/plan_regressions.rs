//! The regression rules of WINDOWS.md ("What hurt Codex's users"), each as a named test, plus
//! golden output of the plan for the default policy.
//!
//! See: ../shared/WINDOWS.md, issue 5 ("Must show").

mod common;

use std::collections::BTreeSet;

use common::*;
use stockade_policy::{Access, WindowsImplementation};
use stockade_windows::access_check::World;
use stockade_windows::acl_model::{AccessMask, Ace, AceFlags, AceKind};
use stockade_windows::firewall_plan::offline_rules;
use stockade_windows::plan::{cleanup_plan, plan, record, sandbox_token, MAX_ROOTS};
use stockade_windows::policy_view::PolicyView;
use stockade_windows::sid::Sid;
use stockade_windows::win_path::WinPath;
use stockade_windows::{Error, RootRefusal};

const UNELEVATED: WindowsImplementation = WindowsImplementation::Unelevated;
const ELEVATED: WindowsImplementation = WindowsImplementation::Elevated;

fn token_for(p: &stockade_windows::plan::WindowsPlan) -> stockade_windows::access_check::Token {
    sandbox_token(p, user(), identity().groups, Some(&logon()))
}

#[test]
fn regression_no_delete_child_or_dac_rights_on_any_grant() {
    for imp in [UNELEVATED, ELEVATED] {
        let p = plan(&default_policy(), imp, &facts(base_tree()), &ledger(imp == ELEVATED)).unwrap();
        assert!(!p.add.is_empty());
        for a in p.add.iter().filter(|a| a.ace.kind == AceKind::Allow) {
            assert!(!a.ace.mask.intersects(AccessMask::DELETE_CHILD), "FILE_DELETE_CHILD granted on {}", a.path);
            assert!(!a.ace.mask.intersects(AccessMask::WRITE_DAC | AccessMask::WRITE_OWNER), "{}", a.path);
        }
    }
}

#[test]
fn regression_protected_dirs_are_created_before_the_first_run() {
    let p = plan(&default_policy(), UNELEVATED, &facts(base_tree()), &ledger(false)).unwrap();
    let created: Vec<String> = p.create.iter().map(|c| c.path.to_string()).collect();
    for missing in [".stockade", ".codex", ".claude", ".vscode", ".idea"] {
        assert!(created.contains(&format!(r"C:\Users\me\src\app\{missing}")), "{missing} not created: {created:?}");
    }
    assert!(!created.iter().any(|c| c.ends_with(r".git\hooks")), "existing dirs are not re-created");
    // After applying, the sandbox can neither write into them nor replace them.
    let mut tree = base_tree();
    common::simulate_apply(&mut tree, &p);
    let world = World { tree: &tree, added: Default::default() };
    let t = token_for(&p);
    for path in [".codex/config.toml", ".codex", ".git/hooks/pre-commit", ".git/config"] {
        let path = WinPath::new(&format!("{WS}/{path}"));
        assert!(!world.may_write(&t, &path), "{path} writable");
    }
    assert!(!world.may_delete(&t, &WinPath::new(&format!("{WS}/.git"))), ".git cannot be renamed away");
    // Allowed controls: ordinary files in the workspace and new ones in `.git` stay writable.
    assert!(world.may_write(&t, &WinPath::new(&format!("{WS}/src/main.rs"))));
    assert!(world.may_write(&t, &WinPath::new(&format!("{WS}/new/file.txt"))));
    assert!(world.may_write(&t, &WinPath::new(&format!("{WS}/.git/index"))), "git commit still works");
}

#[test]
fn regression_missing_git_dir_is_created_protected_and_config_file_kind() {
    let mut tree = base_tree();
    tree.nodes.retain(|p, _| !p.starts_with(&WinPath::new(&format!("{WS}/.git"))));
    let p = plan(&default_policy(), UNELEVATED, &facts(tree), &ledger(false)).unwrap();
    let git = p.create.iter().find(|c| c.path == WinPath::new(&format!("{WS}/.git"))).expect(".git created");
    assert!(git.is_dir);
    let mut tree = base_tree();
    tree.nodes.remove(&WinPath::new(&format!("{WS}/.git/config")));
    let p = plan(&default_policy(), UNELEVATED, &facts(tree), &ledger(false)).unwrap();
    let config = p.create.iter().find(|c| c.path == WinPath::new(&format!("{WS}/.git/config"))).unwrap();
    assert!(!config.is_dir, "a missing .git/config is created as an empty file");
}

#[test]
fn regression_second_run_plans_nothing() {
    for imp in [UNELEVATED, ELEVATED] {
        let mut tree = base_tree();
        let mut l = ledger(imp == ELEVATED);
        let first = plan(&default_policy(), imp, &facts(tree.clone()), &l).unwrap();
        assert!(!first.is_noop());
        common::simulate_apply(&mut tree, &first);
        record(&mut l, &first);
        let second = plan(&default_policy(), imp, &facts(tree.clone()), &l).unwrap();
        assert!(second.is_noop(), "{imp}: {second:#?}");
        // Only the per-root fingerprints are needed for that: a run's snapshot without the
        // scanned parts of the tree plans nothing either.
        let mut small = tree.clone();
        small.nodes.retain(|p, _| {
            p.starts_with(&WinPath::new(WS))
                || p.starts_with(&WinPath::new("C:/Users/me/AppData/Local/stockade"))
                || p.depth() <= 3
        });
        assert!(plan(&default_policy(), imp, &facts(small), &l).unwrap().is_noop());
        // A root whose fingerprint changed (re-cloned, ACL reset) is stamped again.
        for (path, node) in tree.nodes.iter_mut() {
            if path.starts_with(&WinPath::new(WS)) {
                node.sd.dacl = Some(vec![]);
            }
        }
        let mut f = facts(tree);
        f.fingerprints.insert(WinPath::new(WS), "fp:changed".into());
        let third = plan(&default_policy(), imp, &f, &l).unwrap();
        assert!(third.add.iter().all(|a| a.path.starts_with(&WinPath::new(WS))));
        assert!(!third.add.is_empty());
    }
}

/// A protected object replaced on the host after it was stamped (git renames a new
/// `.git/config` over the old one; `.vscode` deleted and made again) has no deny ACE: the next
/// plan puts it back, although the ledger records it and the root's fingerprint is unchanged.
#[test]
fn regression_a_replaced_protected_object_gets_its_deny_ace_again() {
    for imp in [UNELEVATED, ELEVATED] {
        let mut tree = base_tree();
        let mut l = ledger(imp == ELEVATED);
        let first = plan(&default_policy(), imp, &facts(tree.clone()), &l).unwrap();
        common::simulate_apply(&mut tree, &first);
        record(&mut l, &first);
        let config = WinPath::new(&format!("{WS}/.git/config"));
        let stamped = first.add.iter().filter(|a| a.path == config).count();
        assert!(stamped > 0, "the first plan protects .git/config");
        // The new file carries only what it inherits.
        let node = tree.nodes.get_mut(&config).unwrap();
        node.sd.dacl = Some(
            node.sd.dacl.take().unwrap_or_default().into_iter().filter(|a| a.flags.has(AceFlags::INHERITED)).collect(),
        );
        let second = plan(&default_policy(), imp, &facts(tree.clone()), &l).unwrap();
        let again: Vec<_> = second.add.iter().filter(|a| a.path == config).collect();
        assert_eq!(again.len(), stamped, "{imp}: {second:#?}");
        assert!(second.add.iter().all(|a| a.path == config), "{imp}: only the replaced object: {second:#?}");
        common::simulate_apply(&mut tree, &second);
        let world = World { tree: &tree, added: Default::default() };
        assert!(!world.may_write(&token_for(&second), &config), "{imp}: .git/config writable again");
    }
}

#[test]
fn regression_userprofile_temp_drive_roots_and_state_dir_refused() {
    let cases = [
        ("C:/Users/me", RootRefusal::UserProfile),
        ("C:/Users", RootRefusal::UserProfile),
        ("C:/", RootRefusal::DriveRoot),
        ("C:/Users/me/AppData/Local/Temp", RootRefusal::TempDir),
        ("C:/Users/me/AppData/Local", RootRefusal::TempDir),
        ("C:/Windows/System32", RootRefusal::SystemDir),
        ("c:/program files/app", RootRefusal::SystemDir),
        ("C:/ProgramData", RootRefusal::SystemDir),
        ("D:/Apps", RootRefusal::SystemDir),
        ("D:/Apps/Windows/Temp", RootRefusal::SystemDir),
    ];
    for (root, want) in cases {
        let err = plan(&policy(&[root], &[]), UNELEVATED, &facts(base_tree()), &ledger(false)).unwrap_err();
        assert!(matches!(err, Error::RefusedRoot { reason, .. } if reason == want), "{root}: {err}");
        assert_eq!(stockade_policy::Diagnose::code(&err), "refused_root");
    }
    let mut f = facts(base_tree());
    f.identity.temp_dir = None;
    let err = plan(&policy(&["C:/Users/me/AppData/Local"], &[]), UNELEVATED, &f, &ledger(false)).unwrap_err();
    assert!(matches!(err, Error::RefusedRoot { reason: RootRefusal::StateDir, .. }));
}

#[test]
fn regression_junction_roots_refused_and_never_stamped_through() {
    let mut tree = base_tree();
    tree.dir(&format!("{WS}/link"), &user(), vec![]);
    tree.nodes.get_mut(&WinPath::new(&format!("{WS}/link"))).unwrap().reparse = true;
    tree.dir(&format!("{WS}/link/.codex"), &user(), vec![]);
    let prot = [format!("{WS}/link/.codex"), format!("{WS}/.git/hooks")];
    let prot: Vec<&str> = prot.iter().map(String::as_str).collect();
    let p = plan(&policy(&[WS], &prot), UNELEVATED, &facts(tree.clone()), &ledger(false)).unwrap();
    assert!(p.add.iter().all(|a| !tree.below_reparse_point(&a.path)), "no ACE through the junction");
    assert!(p.skipped.iter().any(|s| s.path == WinPath::new(&format!("{WS}/link/.codex"))));
    // What is skipped reaches the run's outcome as a gap naming it.
    let gaps = stockade_windows::plan::skipped_gaps(&p.skipped);
    assert!(gaps.iter().any(|g| g.contains(r"link\.codex") && g.contains("junction")), "{gaps:?}");
    let err = plan(&policy(&[&format!("{WS}/link")], &[]), UNELEVATED, &facts(tree), &ledger(false)).unwrap_err();
    assert!(matches!(err, Error::RefusedRoot { reason: RootRefusal::ReparsePoint, .. }));
}

#[test]
fn regression_firewall_rules_independent_of_per_run_values() {
    let mut a = default_policy();
    let mut b = default_policy();
    a.process.timeout = Some(std::time::Duration::from_secs(5));
    b.network.mode = stockade_policy::NetworkMode::Allow;
    b.filesystem.writable_roots.push(sourced("C:/Users/me/src/other"));
    let mut tree = base_tree();
    tree.dir("C:/Users/me/src/other", &user(), vec![]);
    let pa = plan(&a, ELEVATED, &facts(tree.clone()), &ledger(true)).unwrap();
    let pb = plan(&b, ELEVATED, &facts(tree), &ledger(true)).unwrap();
    assert_eq!(pa.firewall, pb.firewall);
    assert_eq!(pa.firewall, offline_rules(&accounts().offline.sid));
    assert_eq!(pa.wfp, pb.wfp);
}

#[test]
fn regression_cleanup_removes_exactly_the_ledger() {
    for imp in [UNELEVATED, ELEVATED] {
        let original = base_tree();
        let mut tree = original.clone();
        let mut l = ledger(imp == ELEVATED);
        let p = plan(&default_policy(), imp, &facts(tree.clone()), &l).unwrap();
        common::simulate_apply(&mut tree, &p);
        record(&mut l, &p);
        let c = cleanup_plan(&l);
        let removed: BTreeSet<_> = c.remove_aces.iter().cloned().collect();
        assert_eq!(removed, l.aces, "every recorded ACE and nothing else");
        assert_eq!(c.delete_created.iter().cloned().collect::<BTreeSet<_>>(), l.created);
        assert_eq!(c.firewall_rules.len(), l.firewall_rules.len());
        assert_eq!(c.accounts.is_some(), imp == ELEVATED);
        // Deepest first, so children go before parents.
        assert!(c.remove_aces.windows(2).all(|w| w[0].path.depth() >= w[1].path.depth()));
        // Applying the cleanup in the model gives back the original tree.
        for r in &c.remove_aces {
            let node = tree.nodes.get_mut(&r.path).unwrap();
            node.sd.dacl.as_mut().unwrap().retain(|a| *a != r.ace);
        }
        for d in &c.delete_created {
            tree.nodes.remove(d);
        }
        assert_eq!(tree, original);
    }
}

#[test]
fn regression_token_sid_set_is_bounded() {
    let roots: Vec<String> = (0..MAX_ROOTS + 1).map(|i| format!("C:/Users/me/src/r{i}")).collect();
    let refs: Vec<&str> = roots.iter().map(String::as_str).collect();
    let err = plan(&policy(&refs, &[]), UNELEVATED, &facts(base_tree()), &ledger(false)).unwrap_err();
    assert!(matches!(err, Error::TooManyRoots { .. }));
    let p = plan(&default_policy(), UNELEVATED, &facts(base_tree()), &ledger(false)).unwrap();
    // roots + temp + sandbox + logon + Everyone
    assert_eq!(token_for(&p).restricting_sids.len(), 1 + 4);
}

#[test]
fn everyone_writable_places_outside_the_roots_are_closed() {
    let p = plan(&default_policy(), UNELEVATED, &facts(base_tree()), &ledger(false)).unwrap();
    let mut tree = base_tree();
    let world_before = World { tree: &tree, added: Default::default() };
    let t = token_for(&p);
    assert!(world_before.may_write(&t, &WinPath::new("C:/Users/Public/shared.txt")), "negative control");
    common::simulate_apply(&mut tree, &p);
    let world = World { tree: &tree, added: Default::default() };
    for path in ["C:/Users/Public/shared.txt", "C:/Users/Public/new.txt", "C:/Users/me/.bashrc", "C:/evil.txt"] {
        assert!(!world.may_write(&t, &WinPath::new(path)), "{path}");
    }
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
}

#[test]
fn policy_view_agrees_with_the_platform_neutral_decision() {
    let pol = default_policy();
    let view = PolicyView::new(&pol);
    for path in [
        "C:/Users/me/src/app/src/main.rs",
        "C:/Users/me/src/app/.git/hooks/x",
        "C:/Users/me/src/app/.git/HEAD",
        "C:/Users/me/.ssh/id",
        "C:/Users/me/.bashrc",
        "C:/Windows/notepad.exe",
    ] {
        let want = stockade_policy::decide(&pol, std::path::Path::new(path)).access;
        assert_eq!(view.access(&WinPath::new(path)), want, "{path}");
    }
    assert_eq!(view.access(&WinPath::new("c:/users/ME/src/APP/x")), Access::Write, "case-insensitive");
}

#[test]
fn golden_acl_plan_for_the_workspace_root() {
    let p = plan(&default_policy(), UNELEVATED, &facts(base_tree()), &ledger(false)).unwrap();
    let on = |path: &str| -> Vec<String> {
        p.add
            .iter()
            .filter(|a| a.path == WinPath::new(path))
            .map(|a| stockade_windows::sddl::render_ace(&a.ace))
            .collect()
    };
    let w = p.roots[0].sid.to_string();
    let s = p.sandbox_sid.to_string();
    assert_eq!(on(WS), vec![format!("(A;;0x1201bf;;;{w})"), format!("(A;OICIIO;0x1301bf;;;{w})")]);
    assert_eq!(on(&format!("{WS}/.git/hooks")), vec![format!("(D;OICI;0xd0156;;;{s})")]);
    assert_eq!(on(&format!("{WS}/.git")), vec![format!("(D;;0x10000;;;{s})")]);
    assert_eq!(w, "S-1-5-21-".to_owned() + &w[9..], "machine-SID shaped");
}

#[test]
fn places_the_user_cannot_relabel_are_reported_not_failed() {
    let mut tree = base_tree();
    let modify = Ace::allow(Sid::everyone(), AccessMask::ROOT_GRANT, AceFlags::TREE);
    tree.dir("C:/Shared", &Sid::local_system(), vec![modify]);
    let p = plan(&default_policy(), UNELEVATED, &facts(tree.clone()), &ledger(false)).unwrap();
    assert!(
        p.skipped.iter().any(|s| s.path == WinPath::new("C:/Shared") && s.reason.contains("administrator")),
        "{:?}",
        p.skipped
    );
    assert!(p.add.iter().all(|a| !a.path.starts_with(&WinPath::new("C:/Shared"))));
    // An administrator's setup (Administrators enabled) closes it.
    let mut f = facts(tree);
    f.identity.groups.push(Sid::administrators());
    let p = plan(&default_policy(), UNELEVATED, &f, &ledger(false)).unwrap();
    assert!(p.add.iter().any(|a| a.path == WinPath::new("C:/Shared") && a.ace.kind == AceKind::Deny));
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
}

#[test]
fn elevated_accounts_can_read_per_user_tools_on_path_but_not_secrets() {
    let mut tree = base_tree();
    tree.dir("C:/Users/me/.cargo", &user(), vec![]);
    tree.dir("C:/Users/me/.cargo/bin", &user(), vec![]);
    tree.file("C:/Users/me/.cargo/bin/cargo.exe", &user(), vec![]);
    let mut f = facts(tree.clone());
    f.tool_dirs =
        vec![WinPath::new("C:/Users/me/.cargo/bin"), WinPath::new("C:/Users/me/.ssh"), WinPath::new("C:/Users/me")];
    let p = plan(&default_policy(), ELEVATED, &f, &ledger(true)).unwrap();
    let grants: Vec<String> = p
        .add
        .iter()
        .filter(|a| a.ace.kind == AceKind::Allow && a.ace.mask == AccessMask::READ_GRANT)
        .map(|a| a.path.to_string())
        .collect();
    assert_eq!(grants, vec![r"C:\Users\me\.cargo\bin".to_owned()], "only the tool dir, never the profile or a secret");
    common::simulate_apply(&mut tree, &p);
    let world = World { tree: &tree, added: Default::default() };
    let t = stockade_windows::plan::elevated_token(&p, &accounts());
    assert!(world.may_read(&t, &WinPath::new("C:/Users/me/.cargo/bin/cargo.exe")));
    assert!(!world.may_read(&t, &WinPath::new("C:/Users/me/.ssh/id_ed25519")));
    assert!(!world.may_read(&t, &WinPath::new("C:/Users/me/.bashrc")), "the rest of the profile stays unreadable");
    assert!(!world.may_write(&t, &WinPath::new("C:/Users/me/.cargo/bin/cargo.exe")));
}

#[test]
fn a_git_pointer_file_is_protected_instead_of_the_hooks_below_it() {
    // A worktree's `.git` is a file naming the real git dir; `.git/hooks` cannot exist below it.
    let mut tree = base_tree();
    tree.nodes.retain(|p, _| !p.starts_with(&WinPath::new(&format!("{WS}/.git"))));
    tree.file(&format!("{WS}/.git"), &user(), vec![]);
    let p = plan(&default_policy(), UNELEVATED, &facts(tree.clone()), &ledger(false)).unwrap();
    assert!(!p.create.iter().any(|c| c.path.starts_with(&WinPath::new(&format!("{WS}/.git")))), "{:?}", p.create);
    common::simulate_apply(&mut tree, &p);
    let world = World { tree: &tree, added: Default::default() };
    let t = token_for(&p);
    assert!(!world.may_write(&t, &WinPath::new(&format!("{WS}/.git"))), "the pointer cannot be rewritten or replaced");
    assert!(!world.may_write(&t, &WinPath::new(&format!("{WS}/.git/hooks/pre-commit"))));
    assert!(world.may_write(&t, &WinPath::new(&format!("{WS}/src/main.rs"))), "control");
}

#[test]
fn a_deny_write_path_below_a_file_keeps_the_file_writable_but_not_replaceable() {
    // Found by `the_roots_stay_writable`: a deny-write path `b/a` below a file `b` made `b`
    // read-only, though the policy makes `b` writable. Only replacing `b` with a directory could
    // plant `b/a`, so `b` is kept from being deleted or renamed, and stays writable.
    for everyone_delete_child in [false, true] {
        let mut tree = base_tree();
        let parent = format!("{WS}/d");
        let aces = if everyone_delete_child {
            vec![Ace::allow(Sid::everyone(), AccessMask::DELETE_CHILD, AceFlags::NONE)]
        } else {
            vec![]
        };
        tree.dir(&parent, &user(), aces);
        tree.file(&format!("{parent}/b"), &user(), vec![]);
        let mut pol = default_policy();
        pol.filesystem.deny_write.push(sourced(&format!("{parent}/b/a")));
        let b = WinPath::new(&format!("{parent}/b"));
        assert_eq!(PolicyView::new(&pol).access(&b), Access::Write);
        for imp in [UNELEVATED, ELEVATED] {
            let p = plan(&pol, imp, &facts(tree.clone()), &ledger(imp == ELEVATED)).unwrap();
            assert!(p.skipped.is_empty(), "{:?}", p.skipped);
            assert!(!p.create.iter().any(|c| c.path.starts_with(&b)), "{:?}", p.create);
            let mut after = tree.clone();
            common::simulate_apply(&mut after, &p);
            let world = World { tree: &after, added: Default::default() };
            let t = match imp {
                UNELEVATED => token_for(&p),
                ELEVATED => stockade_windows::plan::elevated_token(&p, &accounts()),
            };
            assert!(world.may_open(&t, &b, AccessMask::WRITE_DATA), "{imp}: the file stays writable");
            assert!(!world.may_delete(&t, &b), "{imp}: the file cannot be deleted or renamed");
            for below in ["b/a", "b/a/x", "b/new"] {
                assert!(!world.may_write(&t, &WinPath::new(&format!("{parent}/{below}"))), "{imp}: {below}");
            }
            assert!(world.may_write(&t, &WinPath::new(&format!("{parent}/c"))), "{imp}: control");
        }
    }
}

#[test]
fn a_null_dacl_inside_a_root_is_reported() {
    // Found by `elevated_sandbox_users_read_only_what_the_policy_allows`: a NULL DACL below a
    // root inherits nothing, so the root's grants (and the sandbox group's read) stop there.
    let mut tree = base_tree();
    let dir = WinPath::new(&format!("{WS}/vendor"));
    tree.dir(&dir.to_string(), &user(), vec![]);
    tree.nodes.get_mut(&dir).unwrap().sd.dacl = None;
    for imp in [UNELEVATED, ELEVATED] {
        let p = plan(&default_policy(), imp, &facts(tree.clone()), &ledger(imp == ELEVATED)).unwrap();
        assert!(p.skipped.iter().any(|s| s.path == dir && s.reason.contains("NULL DACL")), "{imp}: {:?}", p.skipped);
        assert!(p.add.iter().all(|a| a.path != dir), "{imp}: the NULL DACL is left unchanged");
    }
}
