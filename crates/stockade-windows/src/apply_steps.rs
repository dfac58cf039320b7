//! The order in which a plan is applied, behind a narrow seam so it is tested on every
//! platform with a recording fake.
//!
//! The order is part of the design, not an accident of the code:
//!
//! 1. the ledger records everything about to be applied and is saved **first**, so an
//!    interrupted apply can still be cleaned up (cleanup removing an ACE that never landed is
//!    harmless; an ACE that landed without a record would be stranded);
//! 2. firewall rules and WFP filters (accounts exist already: they were created and recorded
//!    in an earlier step of setup);
//! 3. protected paths that do not exist are **created before** any ACE is stamped and before
//!    any command runs, so the sandbox never gets to create them itself;
//! 4. ACEs, in parallel groups of separate trees (within a group, parents before children);
//! 5. the roots' fingerprints as they are *after* stamping, and the ledger again.
//!
//! [`HostOps`] is the seam: the Windows implementation is in `apply::backend`.

use crate::error::Error;
use crate::firewall_plan::{FirewallRule, WfpFilter};
use crate::ledger::{Ledger, PathAce};
use crate::plan::{record, CleanupPlan, WindowsPlan};
use crate::win_path::WinPath;

/// What applying a plan needs from the host.
pub trait HostOps {
    /// Persists the ledger.
    fn save_ledger(&mut self, ledger: &Ledger) -> Result<(), Error>;
    /// Creates a directory (with parents) or an empty file; an existing one is fine.
    fn create(&mut self, path: &WinPath, is_dir: bool) -> Result<(), Error>;
    /// Adds (or removes) explicit ACEs; the groups may be processed in parallel.
    fn stamp(&mut self, groups: &[Vec<PathAce>], adding: bool) -> Result<(), Error>;
    /// Adds firewall rules (after checking that local rules take effect).
    fn add_firewall(&mut self, rules: &[FirewallRule]) -> Result<(), Error>;
    /// Adds WFP filters.
    fn add_wfp(&mut self, filters: &[WfpFilter]) -> Result<(), Error>;
    /// The fingerprint of a root as it is now.
    fn fingerprint(&mut self, root: &WinPath) -> Option<String>;
}

/// Groups ACEs so that every path is in the group of its topmost ancestor among the ACEs'
/// paths (a root and everything stamped below it), parents first within a group. Separate
/// groups touch separate trees and can be stamped in parallel: propagation from one never
/// races with a change in another.
pub fn stamp_groups(aces: &[PathAce]) -> Vec<Vec<PathAce>> {
    let mut sorted: Vec<PathAce> = aces.to_vec();
    sorted.sort_by(|a, b| a.path.depth().cmp(&b.path.depth()).then_with(|| a.cmp(b)));
    let mut groups: Vec<(WinPath, Vec<PathAce>)> = Vec::new();
    for a in sorted {
        match groups.iter_mut().find(|(top, _)| a.path.starts_with(top)) {
            Some((_, g)) => g.push(a),
            None => groups.push((a.path.clone(), vec![a])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Applies `plan` through `ops` in the documented order, updating `ledger`.
pub fn execute(plan: &WindowsPlan, ledger: &mut Ledger, ops: &mut dyn HostOps) -> Result<(), Error> {
    if plan.is_noop() {
        return Ok(());
    }
    record(ledger, plan);
    ops.save_ledger(ledger)?;
    if !plan.firewall.is_empty() {
        ops.add_firewall(&plan.firewall)?;
    }
    if !plan.wfp.is_empty() {
        ops.add_wfp(&plan.wfp)?;
    }
    for c in &plan.create {
        ops.create(&c.path, c.is_dir)?;
    }
    if !plan.add.is_empty() {
        ops.stamp(&stamp_groups(&plan.add), true)?;
    }
    for root in plan.fingerprints.keys() {
        if let Some(fp) = ops.fingerprint(root) {
            ledger.fingerprints.insert(root.clone(), fp);
        }
    }
    ops.save_ledger(ledger)
}

/// Removes what `cleanup` lists, deepest ACEs first. Accounts, firewall rules and WFP
/// filters are removed by the caller (they need administrator rights).
pub fn execute_cleanup(cleanup: &CleanupPlan, ops: &mut dyn HostOps) -> Result<(), Error> {
    // One group: removal goes strictly deepest first.
    if !cleanup.remove_aces.is_empty() {
        ops.stamp(std::slice::from_ref(&cleanup.remove_aces), false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl_model::{AccessMask, Ace, AceFlags};
    use crate::plan::Create;
    use crate::sid::Sid;

    /// Records every call; fails the call named `fail_at`.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
        saved: Vec<Ledger>,
        fail_at: Option<&'static str>,
    }

    impl Recorder {
        fn call(&mut self, name: &'static str, detail: String) -> Result<(), Error> {
            self.calls.push(format!("{name} {detail}").trim().to_owned());
            if self.fail_at == Some(name) {
                return Err(Error::win32("set_acl", detail, 5));
            }
            Ok(())
        }
    }

    impl HostOps for Recorder {
        fn save_ledger(&mut self, ledger: &Ledger) -> Result<(), Error> {
            self.saved.push(ledger.clone());
            self.call("save_ledger", String::new())
        }
        fn create(&mut self, path: &WinPath, is_dir: bool) -> Result<(), Error> {
            self.call("create", format!("{path} {is_dir}"))
        }
        fn stamp(&mut self, groups: &[Vec<PathAce>], adding: bool) -> Result<(), Error> {
            self.call("stamp", format!("{} groups adding={adding}", groups.len()))
        }
        fn add_firewall(&mut self, rules: &[FirewallRule]) -> Result<(), Error> {
            self.call("firewall", rules.len().to_string())
        }
        fn add_wfp(&mut self, filters: &[WfpFilter]) -> Result<(), Error> {
            self.call("wfp", filters.len().to_string())
        }
        fn fingerprint(&mut self, root: &WinPath) -> Option<String> {
            self.calls.push(format!("fingerprint {root}"));
            Some("after".into())
        }
    }

    fn plan() -> WindowsPlan {
        let w = Sid::synthetic(&[1; 16], "root");
        let ace = |p: &str| PathAce {
            path: WinPath::new(p),
            ace: Ace::allow(w.clone(), AccessMask::ROOT_GRANT, AceFlags::TREE),
        };
        WindowsPlan {
            implementation: stockade_policy::WindowsImplementation::Unelevated,
            sandbox_sid: Sid::synthetic(&[1; 16], "s"),
            temp_sid: Sid::synthetic(&[1; 16], "t"),
            temp_parent: WinPath::new(r"C:\state\tmp"),
            roots: vec![],
            create: vec![Create { path: WinPath::new(r"C:\ws\.codex"), is_dir: true }],
            add: vec![ace(r"C:\ws\.codex"), ace(r"C:\ws"), ace(r"D:\other\root")],
            skipped: vec![],
            create_accounts: false,
            firewall: vec![],
            wfp: vec![],
            fingerprints: [(WinPath::new(r"C:\ws"), "before".to_owned())].into_iter().collect(),
        }
    }

    #[test]
    fn ledger_first_then_creation_then_acls_then_fingerprints() {
        let mut rec = Recorder::default();
        let mut ledger = Ledger::new([1; 16]);
        execute(&plan(), &mut ledger, &mut rec).unwrap();
        assert_eq!(
            rec.calls,
            vec![
                "save_ledger",
                r"create C:\ws\.codex true",
                "stamp 2 groups adding=true",
                r"fingerprint C:\ws",
                "save_ledger"
            ]
        );
        assert_eq!(rec.saved[0].aces.len(), 3, "the first save already holds every ACE");
        assert_eq!(ledger.fingerprints[&WinPath::new(r"C:\ws")], "after", "fingerprint taken after stamping");
    }

    #[test]
    fn an_interrupted_apply_leaves_a_ledger_cleanup_can_use() {
        let mut rec = Recorder { fail_at: Some("stamp"), ..Recorder::default() };
        let mut ledger = Ledger::new([1; 16]);
        assert!(execute(&plan(), &mut ledger, &mut rec).is_err());
        assert_eq!(rec.saved.len(), 1);
        assert_eq!(rec.saved[0].aces.len(), 3);
        assert!(rec.saved[0].created.contains(&WinPath::new(r"C:\ws\.codex")));
    }

    #[test]
    fn groups_are_parents_first_and_split_by_root() {
        let groups = stamp_groups(&plan().add);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0][0].path, WinPath::new(r"C:\ws"));
        assert_eq!(groups[0][1].path, WinPath::new(r"C:\ws\.codex"));
    }

    #[test]
    fn a_noop_plan_touches_nothing() {
        let mut rec = Recorder::default();
        let mut p = plan();
        p.create.clear();
        p.add.clear();
        execute(&p, &mut Ledger::new([1; 16]), &mut rec).unwrap();
        assert!(rec.calls.is_empty());
    }
}
