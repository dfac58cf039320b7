//! Fixtures shared by the plan tests: a Windows-like tree, a policy, and a simulated apply.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use stockade_policy::*;
use stockade_windows::acl_model::{AccessMask, Ace, AceFlags};
use stockade_windows::ledger::{Account, Accounts, Ledger};
use stockade_windows::plan::{HostFacts, Identity, WindowsPlan};
use stockade_windows::sid::Sid;
use stockade_windows::tree::{Node, Tree};
use stockade_windows::win_path::WinPath;

pub const WS: &str = "C:/Users/me/src/app";

pub fn user() -> Sid {
    "S-1-5-21-1-2-3-1001".parse().unwrap()
}

pub fn other_user() -> Sid {
    "S-1-5-21-1-2-3-1002".parse().unwrap()
}

pub fn logon() -> Sid {
    "S-1-5-5-0-77".parse().unwrap()
}

pub fn identity() -> Identity {
    Identity {
        user: user(),
        name: r"HOST\me".into(),
        groups: vec![Sid::everyone(), Sid::builtin_users(), Sid::authenticated_users(), Sid::new(5, &[4]), logon()],
        logon_sid: Some(logon()),
        profile_dir: WinPath::new("C:/Users/me"),
        temp_dir: Some(WinPath::new("C:/Users/me/AppData/Local/Temp")),
    }
}

pub fn accounts() -> Accounts {
    let a = |name: &str, rid: u32| Account { name: name.into(), sid: Sid::new(5, &[21, 1, 2, 3, rid]) };
    Accounts {
        offline: a("stockade-offline", 1010),
        online: a("stockade-online", 1011),
        group: a("stockade-sandbox", 1012),
    }
}

pub fn full(sid: Sid) -> Ace {
    Ace::allow(sid, AccessMask::FILE_ALL_ACCESS, AceFlags::TREE)
}

/// A realistic tree: C:\ readable by Users, the profile private to the user, a workspace with
/// `.git`, and `C:\Users\Public` writable by Everyone.
pub fn base_tree() -> Tree {
    let sy = Sid::local_system();
    let ba = Sid::administrators();
    let mut t = Tree::default();
    t.dir(
        "C:",
        &sy,
        vec![
            full(sy.clone()),
            full(ba.clone()),
            Ace::allow(Sid::builtin_users(), AccessMask::READ_GRANT, AceFlags::TREE),
            Ace::allow(Sid::authenticated_users(), AccessMask::APPEND_DATA, AceFlags::NONE),
        ],
    );
    t.dir("C:/Users", &sy, vec![]);
    t.dir("C:/Users/Public", &sy, vec![full(Sid::everyone())]);
    t.file("C:/Users/Public/shared.txt", &sy, vec![]);
    t.dir("C:/Users/me", &user(), vec![full(sy.clone()), full(ba), full(user())]);
    t.nodes.get_mut(&WinPath::new("C:/Users/me")).unwrap().sd.protected = true;
    for d in
        ["C:/Users/me/src", WS, "C:/Users/me/src/app/src", "C:/Users/me/src/app/.git", "C:/Users/me/src/app/.git/hooks"]
    {
        t.dir(d, &user(), vec![]);
    }
    t.file("C:/Users/me/src/app/src/main.rs", &user(), vec![]);
    t.file("C:/Users/me/src/app/.git/config", &user(), vec![]);
    t.file("C:/Users/me/src/app/.git/HEAD", &user(), vec![]);
    t.file("C:/Users/me/.bashrc", &user(), vec![]);
    t.dir("C:/Users/me/.ssh", &user(), vec![]);
    t.file("C:/Users/me/.ssh/id_ed25519", &user(), vec![]);
    for d in ["C:/Users/me/AppData", "C:/Users/me/AppData/Local", "C:/Users/me/AppData/Local/Temp"] {
        t.dir(d, &user(), vec![]);
    }
    t.dir("C:/Users/me/AppData/Local/stockade", &user(), vec![]);
    t
}

pub fn sourced(p: &str) -> Sourced<PathBuf> {
    Sourced::new(PathBuf::from(p), Source::Default)
}

pub fn policy(roots: &[&str], protected: &[&str]) -> Policy {
    let list = |l: &[&str]| l.iter().map(|s| Sourced::new((*s).to_owned(), Source::Default)).collect();
    Policy {
        mode: Mode::WorkspaceWrite,
        workspace: PathBuf::from(WS),
        filesystem: FsPolicy {
            readable: Readable::All,
            deny_read: vec![sourced("C:/Users/me/.ssh")],
            writable_roots: roots.iter().map(|r| sourced(r)).collect(),
            protected: protected.iter().map(|p| sourced(p)).collect(),
            deny_write: vec![sourced("C:/Users/me/.bashrc")],
            private_tmp: true,
        },
        network: NetworkPolicy { mode: NetworkMode::Off, allow: vec![], deny: vec![] },
        process: ProcessLimits {
            timeout: None,
            memory_bytes: Some(1 << 30),
            max_processes: Some(64),
            max_open_files: None,
        },
        env: EnvPolicy { allow: list(defaults::ENV_ALLOW), deny: list(defaults::ENV_DENY), set: vec![] },
        linux: LinuxSettings {
            implementation: LinuxImplementation::Namespaces,
            allow_fallback: false,
            allowed_implementations: LinuxImplementation::ALL.to_vec(),
        },
        windows: WindowsSettings {
            sandbox: WindowsImplementation::Elevated,
            private_desktop: true,
            allowed_implementations: WindowsImplementation::ALL.to_vec(),
        },
        allow_escalation: false,
        provenance: Provenance::default(),
    }
}

pub fn default_policy() -> Policy {
    let prot: Vec<String> = defaults::PROTECTED.iter().map(|p| format!("{WS}/{p}")).collect();
    let prot: Vec<&str> = prot.iter().map(String::as_str).collect();
    policy(&[WS], &prot)
}

pub fn facts(tree: Tree) -> HostFacts {
    let fingerprints =
        [WS, "C:/Users/me/AppData/Local/stockade/tmp"].iter().map(|r| (WinPath::new(r), format!("fp:{r}"))).collect();
    HostFacts {
        identity: identity(),
        state_dir: WinPath::new("C:/Users/me/AppData/Local/stockade"),
        tree,
        fingerprints,
        tool_dirs: vec![],
        system_dirs: vec![WinPath::new("D:/Apps/Windows")],
    }
}

pub fn ledger(elevated: bool) -> Ledger {
    let mut l = Ledger::new([42; 16]);
    if elevated {
        l.accounts = Some(accounts());
    }
    l
}

/// What `apply` does to the tree, in the model: create, then add explicit ACEs.
pub fn simulate_apply(tree: &mut Tree, plan: &WindowsPlan) {
    for c in &plan.create {
        let sd = stockade_windows::acl_model::SecurityDescriptor::with_aces(user(), vec![]);
        tree.nodes.insert(c.path.clone(), Node { is_dir: c.is_dir, reparse: false, sd });
    }
    for a in &plan.add {
        let node = tree.nodes.get_mut(&a.path).expect("ACE on a path that exists after creation");
        let dacl = node.sd.dacl.get_or_insert_with(Vec::new);
        if !dacl.contains(&a.ace) {
            dacl.push(a.ace.clone());
        }
    }
}
