//! The Windows plan: from a [`Policy`], the real user's identity, a snapshot of the relevant
//! file tree and the [`Ledger`] of what is applied, compute what must change on the host.
//!
//! Pure: it touches neither the file system nor processes, and has no raw pointers. `apply` executes a plan; the access model
//! ([`crate::access_check`]) proves properties of it.
//!
//! ## What is planned
//!
//! * one synthetic **write SID** per writable root (`S-1-5-21-a-b-c-d`, derived from the
//!   install's seed and the root, so reused run after run) plus a **temp SID** for the parent of
//!   the per-run temp dirs and one **sandbox SID** that every sandbox token carries as a
//!   restricting SID and that all of stockade's deny ACEs name;
//! * on each root: allow `ROOT_GRANT` (read, write, execute, `DELETE`) for its write SID,
//!   inheritable to everything below, and on the root itself the same without `DELETE` (the
//!   workspace cannot be moved away); never `FILE_DELETE_CHILD`;
//! * on each protected path: an inheritable deny of every write right for the sandbox SID,
//!   and a deny of `DELETE` on each ancestor between the root and it (renaming `.git` away and
//!   planting a new `.git\hooks` is a write too); protected paths that do not exist yet are
//!   created first (a directory, or an empty file for known file names);
//! * elevated: the same grants for the sandbox group (the sandbox users' normal access check),
//!   read grants on readable roots, deny-read on deny-read paths, the users and group, the
//!   firewall rules and WFP filters for the offline user;
//! * a reconciliation pass: every snapshotted object the sandbox token could still write (or,
//!   elevated, read) against the policy, typically something writable by Everyone, gets a
//!   deny for the sandbox SID (or group). The user's own access is never changed: stockade only
//!   adds ACEs naming its own SIDs.
//!
//! Everything is diffed against the ledger, so a second run with the same policy plans nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stockade_policy::{Access, Mode, Policy, WindowsImplementation};

use crate::access_check::{check, Token, World};
use crate::acl_model::{AccessMask, Ace, AceFlags};
use crate::error::{Error, RootRefusal};
use crate::firewall_plan::{offline_rules, offline_wfp_filters, FirewallRule, WfpFilter};
use crate::ledger::{Accounts, Ledger, PathAce};
use crate::policy_view::PolicyView;
use crate::sid::Sid;
use crate::tree::Tree;
use crate::win_path::WinPath;

/// The most writable roots one policy may have: each adds a restricting SID to the token.
pub const MAX_ROOTS: usize = 32;

/// Names of protected paths that are files, created empty when missing.
const FILE_NAMES: &[&str] = &["config"];

/// The real user stockade runs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user's SID.
    pub user: Sid,
    /// `DOMAIN\name`.
    pub name: String,
    /// The token's enabled groups (Everyone, Users, Authenticated Users, INTERACTIVE, ...).
    pub groups: Vec<Sid>,
    /// The logon SID of the session (`S-1-5-5-x-y`), if known.
    pub logon_sid: Option<Sid>,
    /// `%USERPROFILE%`.
    pub profile_dir: WinPath,
    /// `%TEMP%`, if set.
    pub temp_dir: Option<WinPath>,
}

/// A per-root fingerprint (volume serial, file id, and a hash of the root's security
/// descriptor), gathered in O(1) per root. A changed fingerprint means the root was replaced
/// or its ACL reset, and its ACEs are stamped again.
pub type Fingerprint = String;

/// What the probe found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The user.
    pub identity: Identity,
    /// stockade's state directory (`%LOCALAPPDATA%\stockade`).
    pub state_dir: WinPath,
    /// The snapshot: roots, protected paths, their ancestors, and whatever setup scanned.
    pub tree: Tree,
    /// Fingerprints of the roots as they are now.
    pub fingerprints: BTreeMap<WinPath, Fingerprint>,
    /// Directories on the user's `PATH` inside the user's profile (per-user tool installs such
    /// as `.cargo\bin`): the elevated sandbox accounts cannot read the profile, so these get a
    /// read grant for the sandbox group when the policy reads everything.
    #[serde(default)]
    pub tool_dirs: Vec<WinPath>,
    /// Windows' own directories (`%SystemRoot%`, `%ProgramFiles%`, `%ProgramFiles(x86)%`,
    /// `%ProgramData%`), which are never writable roots. The standard locations on `C:` are
    /// refused even when this is empty.
    #[serde(default)]
    pub system_dirs: Vec<WinPath>,
}

/// The standard system directories, refused as roots whatever the environment says.
const SYSTEM_DIRS: &[&str] = &[r"C:\Windows", r"C:\Program Files", r"C:\Program Files (x86)", r"C:\ProgramData"];

/// A writable root and its write SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootSid {
    /// The root.
    pub root: WinPath,
    /// Its write SID.
    pub sid: Sid,
}

/// Something to create before the first command.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Create {
    /// The path.
    pub path: WinPath,
    /// A directory (or an empty file).
    pub is_dir: bool,
}

/// An object the plan could not make safe, and why; reported as a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The object.
    pub path: WinPath,
    /// Why.
    pub reason: String,
}

/// What a run could not protect, as gaps for its outcome (and the `acl` layer is then
/// partial): each skipped object, with why. A run never keeps less of its promise in silence.
pub fn skipped_gaps(skipped: &[Skipped]) -> Vec<String> {
    skipped
        .iter()
        .map(|s| format!("`{}` is left as it was, so the sandbox is not kept from it: {}", s.path, s.reason))
        .collect()
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowsPlan {
    /// The implementation planned for.
    pub implementation: WindowsImplementation,
    /// The SID every stockade deny ACE names; every sandbox token restricts to it.
    pub sandbox_sid: Sid,
    /// The write SID of the per-run temp parent.
    pub temp_sid: Sid,
    /// The parent of the per-run temp dirs (`<state>\tmp`).
    pub temp_parent: WinPath,
    /// Write SIDs of this policy's roots (the token's restricting SIDs).
    pub roots: Vec<RootSid>,
    /// To create first, parents before children.
    pub create: Vec<Create>,
    /// ACEs to add, not yet in the ledger.
    pub add: Vec<PathAce>,
    /// Objects left as they are, with the reason.
    pub skipped: Vec<Skipped>,
    /// Elevated and the accounts do not exist yet.
    pub create_accounts: bool,
    /// Firewall rules to add.
    pub firewall: Vec<FirewallRule>,
    /// WFP filters to add.
    pub wfp: Vec<WfpFilter>,
    /// Root fingerprints to record after applying.
    pub fingerprints: BTreeMap<WinPath, Fingerprint>,
}

impl WindowsPlan {
    /// Whether applying the plan would change nothing.
    pub fn is_noop(&self) -> bool {
        self.create.is_empty()
            && self.add.is_empty()
            && !self.create_accounts
            && self.firewall.is_empty()
            && self.wfp.is_empty()
    }
}

/// The SID all deny ACEs name.
pub fn sandbox_sid(seed: &[u8; 16]) -> Sid {
    Sid::synthetic(seed, "stockade:sandbox")
}

/// The write SID of `root`: derived from the lower-cased path so `C:\Src` and `c:\src` agree.
pub fn write_sid(seed: &[u8; 16], root: &WinPath) -> Sid {
    Sid::synthetic(seed, &format!("stockade:root:{}", root.to_string().to_lowercase()))
}

/// Checks a writable root against the refusal rules.
pub fn check_root(root: &WinPath, facts: &HostFacts) -> Result<(), Error> {
    let (identity, state_dir, tree) = (&facts.identity, &facts.state_dir, &facts.tree);
    let refuse = |reason| Err(Error::RefusedRoot { path: root.clone(), reason });
    if root.is_drive_root() {
        return refuse(RootRefusal::DriveRoot);
    }
    let system = SYSTEM_DIRS.iter().map(|s| WinPath::new(s)).chain(facts.system_dirs.iter().cloned());
    if system.clone().any(|d| root.starts_with(&d) || d.starts_with(root)) {
        return refuse(RootRefusal::SystemDir);
    }
    if identity.profile_dir.starts_with(root) {
        return refuse(RootRefusal::UserProfile);
    }
    if identity.temp_dir.as_ref().is_some_and(|t| t.starts_with(root)) {
        return refuse(RootRefusal::TempDir);
    }
    if state_dir.starts_with(root) {
        return refuse(RootRefusal::StateDir);
    }
    if root.ancestors_and_self().any(|a| tree.get(&a).is_some_and(|n| n.reparse)) {
        return refuse(RootRefusal::ReparsePoint);
    }
    Ok(())
}

/// The token the command runs with: write-restricted to the roots' write SIDs, the temp SID,
/// the sandbox SID, the logon SID and Everyone. `user`/`groups` are the real user's
/// (unelevated) or the sandbox user's (elevated).
pub fn sandbox_token(plan: &WindowsPlan, user: Sid, groups: Vec<Sid>, logon_sid: Option<&Sid>) -> Token {
    let mut restricting: Vec<Sid> = plan.roots.iter().map(|r| r.sid.clone()).collect();
    restricting.push(plan.temp_sid.clone());
    restricting.push(plan.sandbox_sid.clone());
    restricting.extend(logon_sid.cloned());
    restricting.push(Sid::everyone());
    Token { user, groups, restricting_sids: restricting, write_restricted: true }
}

/// The token of the elevated implementation's offline user.
pub fn elevated_token(plan: &WindowsPlan, accounts: &Accounts) -> Token {
    let groups = vec![accounts.group.sid.clone(), Sid::everyone(), Sid::builtin_users(), Sid::authenticated_users()];
    sandbox_token(plan, accounts.offline.sid.clone(), groups, None)
}

/// The two ACEs of a writable root for `sid`: the root itself without `DELETE`, everything
/// below with it.
fn grant_root(root: &WinPath, sid: &Sid, push: &mut dyn FnMut(&WinPath, Ace)) {
    let no_delete = AccessMask(AccessMask::ROOT_GRANT.0 & !AccessMask::DELETE.0);
    push(root, Ace::allow(sid.clone(), no_delete, AceFlags::NONE));
    push(root, Ace::allow(sid.clone(), AccessMask::ROOT_GRANT, AceFlags::TREE | AceFlags::IO));
}

/// Plans `policy` for `implementation` on the host described by `facts`, given `ledger`.
pub fn plan(
    policy: &Policy,
    implementation: WindowsImplementation,
    facts: &HostFacts,
    ledger: &Ledger,
) -> Result<WindowsPlan, Error> {
    if policy.mode == Mode::DangerFullAccess {
        return Err(Error::Unsandboxed);
    }
    let seed =
        ledger.seed_bytes().ok_or_else(|| Error::State { path: "ledger.json".into(), detail: "bad seed".into() })?;
    let view = PolicyView::new(policy);
    if view.roots.len() > MAX_ROOTS {
        return Err(Error::TooManyRoots { count: view.roots.len(), max: MAX_ROOTS });
    }
    for r in &view.roots {
        check_root(r, facts)?;
    }
    let elevated = implementation == WindowsImplementation::Elevated;
    let accounts = if elevated { ledger.accounts.as_ref() } else { None };
    let group = accounts.map(|a| a.group.sid.clone());
    let temp_parent = facts.state_dir.join("tmp");
    let mut p = WindowsPlan {
        implementation,
        sandbox_sid: sandbox_sid(&seed),
        temp_sid: Sid::synthetic(&seed, "stockade:tmp"),
        temp_parent: temp_parent.clone(),
        roots: view.roots.iter().map(|r| RootSid { root: r.clone(), sid: write_sid(&seed, r) }).collect(),
        create: Vec::new(),
        add: Vec::new(),
        skipped: Vec::new(),
        create_accounts: elevated && accounts.is_none(),
        firewall: Vec::new(),
        wfp: Vec::new(),
        fingerprints: BTreeMap::new(),
    };

    let mut desired: Vec<PathAce> = Vec::new();
    // Read-only paths that cannot exist because a file stands on the way, with that file.
    let mut pinned: Vec<(WinPath, WinPath)> = Vec::new();
    let mut push = |path: &WinPath, ace: Ace| desired.push(PathAce { path: path.clone(), ace });
    // The temp parent: only what is below it, never the parent itself.
    push(&temp_parent, Ace::allow(p.temp_sid.clone(), AccessMask::ROOT_GRANT, AceFlags::TREE | AceFlags::IO));
    if let Some(g) = &group {
        push(&temp_parent, Ace::allow(g.clone(), AccessMask::ROOT_GRANT, AceFlags::TREE | AceFlags::IO));
    }
    if !facts.tree.exists(&temp_parent) {
        p.create.push(Create { path: temp_parent.clone(), is_dir: true });
    }
    for rs in &p.roots {
        grant_root(&rs.root, &rs.sid, &mut push);
        if let Some(g) = &group {
            grant_root(&rs.root, g, &mut push);
        }
    }
    for prot in view.read_only_in_roots() {
        let Some(root) = view.root_of(&prot).cloned() else { continue };
        if facts.tree.below_reparse_point(&prot) {
            p.skipped.push(Skipped { path: prot.clone(), reason: "below a junction or link".into() });
            continue;
        }
        // An existing *file* on the way means the path cannot exist below it; replacing the
        // file with a directory is how it would be planted. Otherwise the topmost missing
        // component is created (read-only), the rest stays absent.
        let target = prot
            .ancestors_and_self()
            .filter(|a| a.depth() > root.depth())
            .find(|a| facts.tree.get(a).is_none_or(|n| !n.is_dir && *a != prot))
            .unwrap_or_else(|| prot.clone());
        let file_on_the_way = target != prot && facts.tree.exists(&target);
        if file_on_the_way {
            pinned.push((prot.clone(), target.clone()));
        }
        // Below a protected path's file (a worktree's `.git` pointer naming the real git dir)
        // the file's content is what the protected path means: it is protected as a whole. A
        // deny-write path's file is only kept from being deleted or renamed: the policy leaves
        // it writable (`decide` says Write), and writing it plants nothing below it.
        let is_protected = view.protected.iter().any(|q| prot.starts_with(q));
        if file_on_the_way && !is_protected {
            for a in target.ancestors_and_self().filter(|a| a.depth() > root.depth()) {
                push(&a, Ace::deny(p.sandbox_sid.clone(), AccessMask::DELETE, AceFlags::NONE));
                if let Some(g) = &group {
                    push(&a, Ace::deny(g.clone(), AccessMask::DELETE, AceFlags::NONE));
                }
            }
            continue;
        }
        if !facts.tree.exists(&target) {
            let is_dir = !(target == prot && prot.file_name().is_some_and(|n| FILE_NAMES.contains(&n)));
            let c = Create { path: target.clone(), is_dir };
            if !p.create.contains(&c) {
                p.create.push(c);
            }
        }
        push(&target, Ace::deny(p.sandbox_sid.clone(), AccessMask::DENY_WRITE, AceFlags::TREE));
        if let Some(g) = &group {
            push(&target, Ace::deny(g.clone(), AccessMask::DENY_WRITE, AceFlags::TREE));
        }
        for a in target.ancestors_and_self().filter(|a| a.depth() > root.depth() && *a != target) {
            push(&a, Ace::deny(p.sandbox_sid.clone(), AccessMask::DELETE, AceFlags::NONE));
            if let Some(g) = &group {
                push(&a, Ace::deny(g.clone(), AccessMask::DELETE, AceFlags::NONE));
            }
        }
    }
    if let (Some(g), None) = (&group, &view.readable) {
        for t in &facts.tool_dirs {
            let bad = t.starts_with(&facts.identity.profile_dir) && t.depth() <= facts.identity.profile_dir.depth()
                || view.deny_read.iter().any(|d| t.starts_with(d) || d.starts_with(t))
                || !facts.tree.exists(t)
                || facts.tree.below_reparse_point(t);
            if !bad {
                push(t, Ace::allow(g.clone(), AccessMask::READ_GRANT, AceFlags::TREE));
            }
        }
    }
    if let Some(g) = &group {
        for r in view.readable.iter().flatten() {
            if facts.tree.exists(r) {
                push(r, Ace::allow(g.clone(), AccessMask::READ_GRANT, AceFlags::TREE));
            }
        }
        for d in &view.deny_read {
            if facts.tree.exists(d) && facts.tree.below_reparse_point(d) {
                // Reached through a junction or link: an ACE set there would land elsewhere.
                p.skipped.push(Skipped { path: d.clone(), reason: "deny-read path below a junction or link".into() });
            } else if facts.tree.exists(d) {
                push(d, Ace::deny(g.clone(), AccessMask::DENY_READ, AceFlags::TREE));
            }
        }
    }
    p.create.sort();

    // Reconciliation against the access model.
    let mut added: BTreeMap<WinPath, Vec<Ace>> = BTreeMap::new();
    for d in &desired {
        added.entry(d.path.clone()).or_default().push(d.ace.clone());
    }
    let mut world = World { tree: &facts.tree, added };
    let token = match accounts {
        Some(a) => elevated_token(&p, a),
        None => sandbox_token(
            &p,
            facts.identity.user.clone(),
            facts.identity.groups.clone(),
            facts.identity.logon_sid.as_ref(),
        ),
    };
    let mut extra: Vec<PathAce> = Vec::new();
    // Only objects whose ACL the user may change get ACEs from this pass; the others are
    // reported (they need `stockade setup --elevated`, or an administrator).
    let user_token = Token::plain(facts.identity.user.clone(), facts.identity.groups.clone());
    let none = BTreeMap::new();
    let can_change = |path: &WinPath| {
        let is_dir = facts.tree.get(path).is_some_and(|n| n.is_dir);
        check(&user_token, &facts.tree.effective(path, &none, &facts.identity.user, is_dir), AccessMask::WRITE_DAC)
    };
    const NEEDS_ADMIN: &str = "needs administrator rights to change its ACL (`stockade setup --elevated`)";
    for (path, node) in &facts.tree.nodes {
        if facts.tree.below_reparse_point(path) || path.starts_with(&temp_parent) {
            continue;
        }
        let access = view.access(path);
        // A NULL DACL inherits nothing to what is below it: the root's grants (and, elevated,
        // the sandbox group's read) stop there, and adding an ACE would take access from the user.
        if access == Access::Write && node.sd.dacl.is_none() {
            p.skipped.push(Skipped { path: path.clone(), reason: "NULL DACL inside a writable root".into() });
        }
        if access != Access::Write && world.may_write(&token, path) {
            if node.sd.dacl.is_none() {
                p.skipped.push(Skipped { path: path.clone(), reason: "NULL DACL (writable by everyone)".into() });
                continue;
            }
            if !can_change(path) {
                p.skipped.push(Skipped { path: path.clone(), reason: NEEDS_ADMIN.into() });
                continue;
            }
            let deny = Ace::deny(p.sandbox_sid.clone(), AccessMask::DENY_WRITE, AceFlags::TREE);
            world.added.entry(path.clone()).or_default().push(deny.clone());
            extra.push(PathAce { path: path.clone(), ace: deny });
            if world.may_delete(&token, path) {
                if let Some(parent) = path.parent().filter(|q| facts.tree.exists(q) && can_change(q)) {
                    let dc = Ace::deny(p.sandbox_sid.clone(), AccessMask::DELETE_CHILD, AceFlags::NONE);
                    world.added.entry(parent.clone()).or_default().push(dc.clone());
                    extra.push(PathAce { path: parent, ace: dc });
                }
            }
            if world.may_write(&token, path) {
                p.skipped.push(Skipped { path: path.clone(), reason: "still writable after deny ACEs".into() });
            }
        }
        if let Some(g) = group.as_ref().filter(|_| access == Access::None) {
            if world.may_read(&token, path) && !can_change(path) {
                p.skipped.push(Skipped { path: path.clone(), reason: NEEDS_ADMIN.into() });
            } else if world.may_read(&token, path) {
                let deny = Ace::deny(g.clone(), AccessMask::DENY_READ, AceFlags::TREE);
                world.added.entry(path.clone()).or_default().push(deny.clone());
                extra.push(PathAce { path: path.clone(), ace: deny });
            }
        }
    }
    // A read-only path kept absent by a file on the way stays absent only while the file
    // cannot be replaced: close a parent's `FILE_DELETE_CHILD` (granted to Everyone, say) too,
    // or report it.
    for (prot, file) in &pinned {
        if !world.may_write(&token, prot) {
            continue;
        }
        if world.may_delete(&token, file) {
            if let Some(parent) = file.parent().filter(|q| facts.tree.exists(q) && can_change(q)) {
                let dc = Ace::deny(p.sandbox_sid.clone(), AccessMask::DELETE_CHILD, AceFlags::NONE);
                world.added.entry(parent.clone()).or_default().push(dc.clone());
                extra.push(PathAce { path: parent, ace: dc });
            }
        }
        if world.may_write(&token, prot) {
            p.skipped.push(Skipped { path: prot.clone(), reason: "still writable after deny ACEs".into() });
        }
    }
    desired.extend(extra);

    // Diff against the ledger and the snapshot.
    let changed_roots: BTreeSet<&WinPath> = p
        .roots
        .iter()
        .map(|r| &r.root)
        .chain(std::iter::once(&temp_parent))
        .filter(|r| facts.fingerprints.get(*r) != ledger.fingerprints.get(*r))
        .collect();
    let mut seen = BTreeSet::new();
    for d in desired {
        // Adding an ACE to a NULL DACL would turn "everyone may do anything" into "only the
        // ACEs listed", taking access away from the user: leave such objects alone.
        if facts.tree.get(&d.path).is_some_and(|n| n.sd.dacl.is_none()) {
            if !p.skipped.iter().any(|s| s.path == d.path) {
                p.skipped.push(Skipped { path: d.path.clone(), reason: "NULL DACL (left unchanged)".into() });
            }
            continue;
        }
        let root_changed = changed_roots.iter().any(|r| d.path.starts_with(r));
        let probed = facts.tree.get(&d.path);
        let on_object = probed.is_some_and(|n| n.sd.explicit().contains(&d.ace));
        let recorded = ledger.aces.contains(&d);
        // A recorded ACE is trusted while its root is unchanged, unless the object was looked
        // at and lacks it: git replaces `.git/config` by renaming a new file over it, and a
        // deleted and recreated `.vscode` comes back without the deny ACE, writable through
        // the root's inherited grant. The root's fingerprint does not see either.
        if (recorded && (on_object || (!root_changed && probed.is_none()))) || !seen.insert(d.clone()) {
            continue;
        }
        p.add.push(d);
    }
    for r in changed_roots {
        if let Some(fp) = facts.fingerprints.get(r) {
            p.fingerprints.insert(r.clone(), fp.clone());
        }
    }
    if let Some(a) = accounts {
        p.firewall =
            offline_rules(&a.offline.sid).into_iter().filter(|r| !ledger.firewall_rules.contains(&r.name)).collect();
        p.wfp =
            offline_wfp_filters(&a.offline.sid).into_iter().filter(|f| !ledger.wfp_filters.contains(&f.name)).collect();
    }
    Ok(p)
}

/// Records an applied plan in the ledger (called by `apply` after each step succeeds, and by
/// tests to simulate it).
pub fn record(ledger: &mut Ledger, plan: &WindowsPlan) {
    for rs in &plan.roots {
        ledger.write_sids.insert(rs.root.clone(), rs.sid.clone());
    }
    ledger.created.extend(plan.create.iter().map(|c| c.path.clone()));
    ledger.aces.extend(plan.add.iter().cloned());
    ledger.firewall_rules.extend(plan.firewall.iter().map(|r| r.name.clone()));
    ledger.wfp_filters.extend(plan.wfp.iter().map(|f| f.name.clone()));
    ledger.fingerprints.extend(plan.fingerprints.clone());
}

/// What `stockade cleanup` removes: exactly what the ledger holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPlan {
    /// ACEs to remove, deepest paths first.
    pub remove_aces: Vec<PathAce>,
    /// Created objects to delete when still empty, deepest first.
    pub delete_created: Vec<WinPath>,
    /// Accounts to delete.
    pub accounts: Option<Accounts>,
    /// Firewall rules to delete.
    pub firewall_rules: Vec<String>,
    /// WFP filters to delete (with stockade's provider and sublayer).
    pub wfp_filters: Vec<String>,
}

/// The cleanup plan for `ledger`.
pub fn cleanup_plan(ledger: &Ledger) -> CleanupPlan {
    let mut remove_aces: Vec<PathAce> = ledger.aces.iter().cloned().collect();
    remove_aces.sort_by(|a, b| b.path.depth().cmp(&a.path.depth()).then_with(|| a.cmp(b)));
    let mut delete_created: Vec<WinPath> = ledger.created.iter().cloned().collect();
    delete_created.sort_by_key(|p| std::cmp::Reverse(p.depth()));
    CleanupPlan {
        remove_aces,
        delete_created,
        accounts: ledger.accounts.clone(),
        firewall_rules: ledger.firewall_rules.iter().cloned().collect(),
        wfp_filters: ledger.wfp_filters.iter().cloned().collect(),
    }
}
