//! Property tests: on generated trees (random extra files and directories with random ACEs:
//! Everyone-writable places, other users' files, NULL DACLs) and generated policies (extra
//! roots, protected and deny-write paths that may or may not exist), the plan, applied in the
//! access model, keeps the policy's promises and never changes the real user's access.

mod common;

use std::net::IpAddr;

use common::*;
use proptest::prelude::*;
use stockade_policy::{Access, Policy, Readable, WindowsImplementation};
use stockade_windows::access_check::{check, Token, World};
use stockade_windows::acl_model::{AccessMask, Ace, AceFlags};
use stockade_windows::firewall_plan::{allows, offline_rules, Protocol, PROXY_PORTS};
use stockade_windows::plan::{elevated_token, plan, record, sandbox_token, WindowsPlan};
use stockade_windows::policy_view::PolicyView;
use stockade_windows::sid::Sid;
use stockade_windows::tree::{Node, Tree};
use stockade_windows::win_path::WinPath;

const PARENTS: &[&str] = &["C:/Users/me", WS, "C:/Users/Public", "C:/Users/me/src", "C:/Data"];
const NAMES: &[&str] = &["a", "b", "node_modules", ".git", "hooks", "cfg", "x.txt"];

#[derive(Debug, Clone)]
struct Extra {
    parent: usize,
    path: Vec<usize>,
    is_dir: bool,
    acl: u8,
}

fn extra() -> impl Strategy<Value = Extra> {
    (0..PARENTS.len(), proptest::collection::vec(0..NAMES.len(), 1..3), any::<bool>(), 0u8..8)
        .prop_map(|(parent, path, is_dir, acl)| Extra { parent, path, is_dir, acl })
}

#[derive(Debug, Clone)]
struct Case {
    extras: Vec<Extra>,
    extra_root: Option<usize>,
    protected: Vec<usize>,
    deny_write: Vec<usize>,
    deny_read: Vec<usize>,
    readable_roots: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(extra(), 0..14),
        proptest::option::of(0..14usize),
        proptest::collection::vec(0..14usize, 0..4),
        proptest::collection::vec(0..14usize, 0..3),
        proptest::collection::vec(0..14usize, 0..3),
        any::<bool>(),
    )
        .prop_map(|(extras, extra_root, protected, deny_write, deny_read, readable_roots)| Case {
            extras,
            extra_root,
            protected,
            deny_write,
            deny_read,
            readable_roots,
        })
}

fn extra_path(e: &Extra) -> String {
    let mut p = PARENTS[e.parent].to_owned();
    for n in &e.path {
        p.push('/');
        p.push_str(NAMES[*n]);
    }
    p
}

/// Builds the tree and the policy of a case. ACL kinds: 0-1 inherit only, 2 Everyone modify
/// (no `WRITE_DAC`: the user cannot relabel it, so it is reported), 3 Everyone full,
/// 4 another user full, 5 Users read, 6 Everyone DELETE_CHILD, 7 NULL DACL (outside roots).
fn build(c: &Case) -> (Tree, Policy) {
    let mut tree = base_tree();
    tree.dir(
        "C:/Data",
        &Sid::local_system(),
        vec![Ace::allow(Sid::authenticated_users(), AccessMask(0x1301bf), AceFlags::TREE)],
    );
    let paths: Vec<String> = c.extras.iter().map(extra_path).collect();
    for (e, path) in c.extras.iter().zip(&paths) {
        let wp = WinPath::new(path);
        // Files have no children: skip extras below an existing file.
        if wp.ancestors_and_self().any(|a| a != wp && tree.get(&a).is_some_and(|n| !n.is_dir)) {
            continue;
        }
        // Intermediate directories.
        for a in wp.ancestors_and_self().filter(|a| *a != wp) {
            if !tree.exists(&a) {
                tree.dir(&a.to_string(), &user(), vec![]);
            }
        }
        if tree.exists(&wp) {
            continue;
        }
        let in_ws = wp.starts_with(&WinPath::new(WS));
        let aces = match e.acl {
            2 => vec![Ace::allow(Sid::everyone(), AccessMask::ROOT_GRANT, AceFlags::TREE)],
            3 => vec![full(Sid::everyone())],
            4 => vec![full(other_user())],
            5 => vec![Ace::allow(Sid::builtin_users(), AccessMask::READ_GRANT, AceFlags::TREE)],
            6 => vec![Ace::allow(Sid::everyone(), AccessMask::DELETE_CHILD, AceFlags::NONE)],
            _ => vec![],
        };
        let owner = if e.acl == 2 { Sid::local_system() } else { user() };
        let mut sd = stockade_windows::acl_model::SecurityDescriptor::with_aces(owner, aces);
        if e.acl == 7 && !in_ws {
            sd.dacl = None;
        }
        tree.nodes.insert(wp, Node { is_dir: e.is_dir, reparse: false, sd });
    }
    let pick = |i: &usize| paths.get(*i).cloned();
    let mut roots = vec![WS.to_owned()];
    if let Some(r) = c.extra_root.as_ref().and_then(pick) {
        let wp = WinPath::new(&r);
        let ok = tree.get(&wp).is_some_and(|n| n.is_dir && n.sd.dacl.is_some())
            && !wp.starts_with(&WinPath::new("C:/Users/me/AppData"))
            && wp.depth() > 3;
        if ok {
            roots.push(r);
        }
    }
    let mut protected: Vec<String> =
        vec![format!("{WS}/.git/hooks"), format!("{WS}/.git/config"), format!("{WS}/.codex")];
    protected.extend(c.protected.iter().filter_map(pick));
    let roots_ref: Vec<&str> = roots.iter().map(String::as_str).collect();
    let prot_ref: Vec<&str> = protected.iter().map(String::as_str).collect();
    let mut pol = policy(&roots_ref, &prot_ref);
    pol.filesystem.deny_write.extend(c.deny_write.iter().filter_map(pick).map(|p| sourced(&p)));
    pol.filesystem.deny_read.extend(c.deny_read.iter().filter_map(pick).map(|p| sourced(&p)));
    if c.readable_roots {
        pol.filesystem.readable = Readable::Roots(vec![sourced("C:/Users/me/src"), sourced("C:/Data")]);
    }
    (tree, pol)
}

/// Every snapshotted path, plus a new child in each directory.
fn probe_paths(tree: &Tree) -> Vec<WinPath> {
    let mut out: Vec<WinPath> = tree.nodes.keys().cloned().collect();
    out.extend(tree.nodes.iter().filter(|(_, n)| n.is_dir).map(|(p, _)| p.join("new-file.txt")));
    out
}

/// The probes, plus the policy's protected and deny-write paths and a child of each, which
/// may not exist (a deny-write path below a file).
fn probe_paths_and_policy(tree: &Tree, view: &PolicyView) -> Vec<WinPath> {
    let mut out = probe_paths(tree);
    for q in view.protected.iter().chain(&view.deny_write) {
        out.push(q.clone());
        out.push(q.join("new-file.txt"));
    }
    out
}

/// `PROPTEST_CASES` when set (the explicit config would otherwise ignore it), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn plan_and_apply(pol: &Policy, imp: WindowsImplementation, tree: &Tree) -> Option<(WindowsPlan, Tree)> {
    let p = plan(pol, imp, &facts(tree.clone()), &ledger(imp == WindowsImplementation::Elevated)).ok()?;
    let mut after = tree.clone();
    simulate_apply(&mut after, &p);
    Some((p, after))
}

fn token(p: &WindowsPlan, imp: WindowsImplementation) -> Token {
    match imp {
        WindowsImplementation::Elevated => elevated_token(p, &accounts()),
        WindowsImplementation::Unelevated => sandbox_token(p, user(), identity().groups, Some(&logon())),
    }
}

fn skipped(p: &WindowsPlan, path: &WinPath) -> bool {
    p.skipped.iter().any(|s| path.starts_with(&s.path))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]

    /// Nothing outside the writable roots, and no protected path, is writable by the
    /// sandbox token, by any route (write, create, delete and re-create, rename an ancestor).
    #[test]
    fn nothing_but_the_roots_is_writable(c in case()) {
        let (tree, pol) = build(&c);
        let view = PolicyView::new(&pol);
        for imp in WindowsImplementation::ALL {
            let Some((p, after)) = plan_and_apply(&pol, imp, &tree) else { continue };
            let world = World { tree: &after, added: Default::default() };
            let t = token(&p, imp);
            for path in probe_paths_and_policy(&after, &view) {
                if path.starts_with(&p.temp_parent) || view.access(&path) == Access::Write || skipped(&p, &path) {
                    continue;
                }
                prop_assert!(!world.may_write(&t, &path), "{imp}: {path} writable; plan {:#?}", p.add);
            }
        }
    }

    /// Allowed control: everything the policy makes writable (and the user can write) is
    /// writable by the sandbox token.
    #[test]
    fn the_roots_stay_writable(c in case()) {
        let (tree, pol) = build(&c);
        let view = PolicyView::new(&pol);
        let user_token = Token::plain(user(), identity().groups);
        for imp in WindowsImplementation::ALL {
            let Some((p, after)) = plan_and_apply(&pol, imp, &tree) else { continue };
            let world = World { tree: &after, added: Default::default() };
            let t = token(&p, imp);
            for path in probe_paths(&after) {
                if view.access(&path) != Access::Write || !world.may_write(&user_token, &path) {
                    continue;
                }
                // A file standing where a protected path's directory would be (a `.git`
                // pointer file) is protected on purpose: replacing it is the attack.
                let shadows_protected = tree.get(&path).is_some_and(|n| !n.is_dir)
                    && view.protected.iter().any(|q| q.starts_with(&path) && *q != path);
                if shadows_protected {
                    continue;
                }
                prop_assert!(world.may_write(&t, &path), "{imp}: {path} not writable");
            }
        }
    }

    /// The real user's own access is never reduced (nor widened).
    #[test]
    fn the_real_users_access_is_unchanged(c in case()) {
        let (tree, pol) = build(&c);
        let user_token = Token::plain(user(), identity().groups);
        let rights = [AccessMask::READ_DATA, AccessMask::WRITE_DATA, AccessMask::DELETE, AccessMask::DELETE_CHILD, AccessMask::WRITE_DAC];
        for imp in WindowsImplementation::ALL {
            let Some((_, after)) = plan_and_apply(&pol, imp, &tree) else { continue };
            let none = Default::default();
            for path in probe_paths(&tree) {
                for r in rights {
                    let before = check(&user_token, &tree.effective(&path, &none, &user(), false), r);
                    let now = check(&user_token, &after.effective(&path, &none, &user(), false), r);
                    prop_assert_eq!(before, now, "{} {} {}", imp, path, r);
                }
            }
        }
    }

    /// Elevated: the sandbox users read nothing the policy denies, and read the roots.
    #[test]
    fn elevated_sandbox_users_read_only_what_the_policy_allows(c in case()) {
        let (tree, pol) = build(&c);
        let view = PolicyView::new(&pol);
        let imp = WindowsImplementation::Elevated;
        if let Some((p, after)) = plan_and_apply(&pol, imp, &tree) {
            let world = World { tree: &after, added: Default::default() };
            let t = token(&p, imp);
            for path in probe_paths(&after) {
                if path.starts_with(&p.temp_parent) || skipped(&p, &path) {
                    continue;
                }
                match view.access(&path) {
                    Access::None => prop_assert!(!world.may_read(&t, &path), "{path} readable"),
                    Access::Write if view.root_of(&path).is_some() => prop_assert!(world.may_read(&t, &path), "{path} unreadable"),
                    _ => {}
                }
            }
        }
    }

    /// Applying a plan and planning again gives nothing to do.
    #[test]
    fn a_second_plan_is_empty(c in case()) {
        let (tree, pol) = build(&c);
        for imp in WindowsImplementation::ALL {
            let mut l = ledger(imp == WindowsImplementation::Elevated);
            let Ok(p) = plan(&pol, imp, &facts(tree.clone()), &l) else { continue };
            let mut after = tree.clone();
            simulate_apply(&mut after, &p);
            record(&mut l, &p);
            let again = plan(&pol, imp, &facts(after), &l).unwrap();
            prop_assert!(again.is_noop(), "{:#?}", again);
        }
    }

    /// The offline user's firewall rules leave exactly the proxy ports on loopback TCP.
    #[test]
    fn offline_user_reaches_only_the_proxy_ports(v4 in any::<[u8; 4]>(), v6 in any::<u128>(), port in any::<u16>(), tcp in any::<bool>()) {
        let rules = offline_rules(&accounts().offline.sid);
        let offline = accounts().offline.sid;
        let proto = if tcp { Protocol::Tcp } else { Protocol::Udp };
        for addr in [IpAddr::from(v4), IpAddr::from(v6.to_be_bytes()), IpAddr::from([127, v4[1], v4[2], v4[3]])] {
            let want = tcp && addr.is_loopback() && PROXY_PORTS.contains(&port);
            prop_assert_eq!(allows(&rules, &offline, proto, addr, port), want, "{} {:?} {}", addr, proto, port);
        }
        prop_assert!(allows(&rules, &accounts().online.sid, proto, IpAddr::from(v4), port), "the online user is not affected");
    }
}
