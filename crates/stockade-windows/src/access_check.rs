//! The Windows access check, as documented, over the plain-data model.
//!
//! [How DACLs control access](https://learn.microsoft.com/en-us/windows/win32/secauthz/how-dacls-control-access-to-an-object):
//! the system walks the DACL in order; an ACE whose SID is in the token and that is not
//! inherit-only either denies (if it names any still-requested right: deny) or grants its
//! rights; the check succeeds once every requested right is granted and fails at the end of the
//! list. A NULL DACL grants everything; an empty DACL grants nothing (but the owner's implicit
//! `READ_CONTROL | WRITE_DAC`).
//!
//! [Restricted tokens](https://learn.microsoft.com/en-us/windows/win32/secauthz/restricted-tokens):
//! a token with restricting SIDs passes a second check with the restricting SIDs instead of
//! the user and groups, and access is the intersection. For a *write-restricted* token
//! (`WRITE_RESTRICTED`) the second check is made only for write rights: this model uses
//! [`AccessMask::WRITE_RIGHTS`], which includes `DELETE`, `FILE_DELETE_CHILD`, `WRITE_DAC` and
//! `WRITE_OWNER` (the conservative reading; the Windows integration tests check it).
//!
//! Operations on paths are built from checks: creating needs `FILE_ADD_FILE` /
//! `FILE_ADD_SUBDIRECTORY` on the parent; deleting needs `DELETE` on the object or
//! `FILE_DELETE_CHILD` on its parent; and *replacing* (rename away, create anew) makes a path
//! writable if any ancestor can be deleted and re-created.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::acl_model::{AccessMask, Ace, AceKind, SecurityDescriptor};
use crate::sid::Sid;
use crate::tree::Tree;
use crate::win_path::WinPath;

/// An access token, reduced to what access checks read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The user.
    pub user: Sid,
    /// Enabled groups (including Everyone, Users, the logon SID...).
    pub groups: Vec<Sid>,
    /// Restricting SIDs (empty for an unrestricted token).
    pub restricting_sids: Vec<Sid>,
    /// `WRITE_RESTRICTED`: restricting SIDs are checked for write rights only.
    pub write_restricted: bool,
}

impl Token {
    /// An unrestricted token for `user` with `groups`.
    pub fn plain(user: Sid, groups: Vec<Sid>) -> Token {
        Token { user, groups, restricting_sids: Vec::new(), write_restricted: false }
    }

    fn normal_sids(&self) -> Vec<&Sid> {
        std::iter::once(&self.user).chain(&self.groups).collect()
    }
}

/// Evaluates one pass of the DACL for `sids`; `true` if every right of `desired` is granted.
fn dacl_grants(sd: &SecurityDescriptor, sids: &[&Sid], desired: AccessMask, restricted_pass: bool) -> bool {
    let unresolved = Sid::unresolved();
    let Some(dacl) = &sd.dacl else {
        return true;
    };
    let mut remaining = desired.map_generic_file().0 & !AccessMask::GENERIC_ALL.0 & 0x0fff_ffff;
    let owner_rights_ace = dacl.iter().any(|a| a.sid == Sid::new(3, &[4]));
    if let Some(owner) = &sd.owner {
        if !owner_rights_ace && sids.contains(&owner) {
            remaining &= !(AccessMask::READ_CONTROL.0 | AccessMask::WRITE_DAC.0);
        }
    }
    for ace in dacl.iter().filter(|a| a.is_effective()) {
        if remaining == 0 {
            break;
        }
        // An unresolved SID (see `Sid::unresolved`) is assumed to be one of the user's groups
        // for allows in the normal check, and never to match a deny or a restricting SID.
        let matches = if ace.sid == unresolved {
            ace.kind == AceKind::Allow && !restricted_pass
        } else {
            sids.contains(&&ace.sid)
        };
        if !matches {
            continue;
        }
        let mask = ace.mask.map_generic_file().0;
        match ace.kind {
            AceKind::Deny if mask & remaining != 0 => return false,
            AceKind::Deny => {}
            AceKind::Allow => remaining &= !mask,
        }
    }
    remaining == 0
}

/// Whether `token` is granted `desired` on an object with descriptor `sd`.
pub fn check(token: &Token, sd: &SecurityDescriptor, desired: AccessMask) -> bool {
    if !dacl_grants(sd, &token.normal_sids(), desired, false) {
        return false;
    }
    if token.restricting_sids.is_empty() {
        return true;
    }
    let restricted_desired = if token.write_restricted {
        AccessMask(desired.map_generic_file().0 & AccessMask::WRITE_RIGHTS.0)
    } else {
        desired
    };
    if restricted_desired.0 == 0 {
        return true;
    }
    let rs: Vec<&Sid> = token.restricting_sids.iter().collect();
    dacl_grants(sd, &rs, restricted_desired, true)
}

/// A file tree with the plan's additional ACEs: the world the sandbox runs in.
#[derive(Debug, Clone)]
pub struct World<'a> {
    /// The snapshot.
    pub tree: &'a Tree,
    /// Explicit ACEs added per path.
    pub added: BTreeMap<WinPath, Vec<Ace>>,
}

impl World<'_> {
    fn sd(&self, token: &Token, path: &WinPath, leaf_is_dir: bool) -> SecurityDescriptor {
        self.tree.effective(path, &self.added, &token.user, leaf_is_dir)
    }

    /// Whether `token` may open the existing (or would-be) object at `path` for `desired`.
    pub fn may_open(&self, token: &Token, path: &WinPath, desired: AccessMask) -> bool {
        let is_dir = self.tree.get(path).is_some_and(|n| n.is_dir);
        check(token, &self.sd(token, path, is_dir), desired)
    }

    /// Whether `token` may create `path` in its parent, creating missing parents first.
    pub fn may_create(&self, token: &Token, path: &WinPath, is_dir: bool) -> bool {
        let Some(parent) = path.parent() else {
            return false;
        };
        // Nothing can be created below a file (`ERROR_PATH_NOT_FOUND`): only replacing the
        // file with a directory can (see `may_write`).
        if self.tree.get(&parent).is_some_and(|n| !n.is_dir) {
            return false;
        }
        if !self.tree.exists(&parent) && !self.may_create(token, &parent, true) {
            return false;
        }
        let right = if is_dir { AccessMask::APPEND_DATA } else { AccessMask::WRITE_DATA };
        check(token, &self.sd(token, &parent, true), right)
    }

    /// Whether `token` may delete (or rename away) `path`.
    pub fn may_delete(&self, token: &Token, path: &WinPath) -> bool {
        self.may_open(token, path, AccessMask::DELETE)
            || path.parent().is_some_and(|p| self.may_open(token, &p, AccessMask::DELETE_CHILD))
    }

    /// Whether `token` may change the content at `path` by any route: writing it, creating
    /// it, or deleting (renaming away) it or one of its ancestors and re-creating it (an
    /// ancestor as a directory, which is how a file on the way is replaced).
    pub fn may_write(&self, token: &Token, path: &WinPath) -> bool {
        let exists = self.tree.exists(path);
        if exists && self.may_open(token, path, AccessMask::WRITE_DATA) {
            return true;
        }
        if !exists && self.may_create(token, path, false) {
            return true;
        }
        path.ancestors_and_self().filter(|a| self.tree.exists(a)).any(|a| {
            let is_dir = a != *path || self.tree.get(&a).is_some_and(|n| n.is_dir);
            self.may_delete(token, &a) && self.may_create(token, &a, is_dir)
        })
    }

    /// Whether `token` may read the data at `path`.
    pub fn may_read(&self, token: &Token, path: &WinPath) -> bool {
        self.may_open(token, path, AccessMask::READ_DATA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl_model::AceFlags;

    fn sid(s: &str) -> Sid {
        s.parse().unwrap()
    }

    fn sd(aces: Vec<Ace>) -> SecurityDescriptor {
        SecurityDescriptor { owner: Some(sid("S-1-5-18")), dacl: Some(aces), protected: false }
    }

    #[test]
    fn null_dacl_grants_everything_and_empty_dacl_nothing() {
        let t = Token::plain(sid("S-1-5-21-1-2-3-1001"), vec![Sid::everyone()]);
        let null = SecurityDescriptor { owner: None, dacl: None, protected: false };
        assert!(check(&t, &null, AccessMask::FILE_ALL_ACCESS));
        assert!(!check(&t, &sd(vec![]), AccessMask::READ_DATA));
    }

    #[test]
    fn ace_order_decides_and_deny_only_hits_remaining_rights() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let t = Token::plain(u.clone(), vec![]);
        let allow = Ace::allow(u.clone(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE);
        let deny = Ace::deny(u.clone(), AccessMask::WRITE_DATA, AceFlags::NONE);
        assert!(!check(&t, &sd(vec![deny.clone(), allow.clone()]), AccessMask::WRITE_DATA));
        assert!(check(&t, &sd(vec![allow, deny]), AccessMask::WRITE_DATA), "allow first grants before the deny");
    }

    #[test]
    fn inherit_only_aces_are_skipped_and_generic_rights_map() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let t = Token::plain(u.clone(), vec![]);
        let io = Ace::allow(u.clone(), AccessMask::FILE_ALL_ACCESS, AceFlags::TREE | AceFlags::IO);
        assert!(!check(&t, &sd(vec![io]), AccessMask::READ_DATA));
        let gr = Ace::allow(u, AccessMask::GENERIC_READ, AceFlags::NONE);
        assert!(check(&t, &sd(vec![gr.clone()]), AccessMask::FILE_GENERIC_READ));
        assert!(!check(&t, &sd(vec![gr]), AccessMask::WRITE_DATA));
    }

    #[test]
    fn owner_gets_read_control_and_write_dac_implicitly() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let t = Token::plain(u.clone(), vec![]);
        let s = SecurityDescriptor { owner: Some(u), dacl: Some(vec![]), protected: false };
        assert!(check(&t, &s, AccessMask::WRITE_DAC | AccessMask::READ_CONTROL));
        assert!(!check(&t, &s, AccessMask::READ_DATA));
    }

    #[test]
    fn write_restricted_second_pass_is_for_writes_only() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let w = sid("S-1-5-21-9-9-9-5000");
        let mut t = Token::plain(u.clone(), vec![Sid::everyone()]);
        t.restricting_sids = vec![w.clone()];
        t.write_restricted = true;
        let user_only = sd(vec![Ace::allow(u.clone(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE)]);
        assert!(check(&t, &user_only, AccessMask::FILE_GENERIC_READ), "reads: normal pass only");
        assert!(!check(&t, &user_only, AccessMask::WRITE_DATA), "writes need a restricting SID too");
        let both = sd(vec![
            Ace::allow(u.clone(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE),
            Ace::allow(w.clone(), AccessMask::ROOT_GRANT, AceFlags::NONE),
        ]);
        assert!(check(&t, &both, AccessMask::WRITE_DATA));
        assert!(!check(&t, &both, AccessMask::WRITE_DAC), "the root grant has no WRITE_DAC");
        t.write_restricted = false;
        assert!(!check(&t, &user_only, AccessMask::READ_DATA), "a fully restricted token checks reads too");
    }

    #[test]
    fn unresolved_sids_over_approximate_access() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let t = Token::plain(u.clone(), vec![]);
        let allow = sd(vec![Ace::allow(Sid::unresolved(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE)]);
        assert!(check(&t, &allow, AccessMask::WRITE_DATA), "assumed to be one of the user's groups");
        let deny = sd(vec![
            Ace::deny(Sid::unresolved(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE),
            Ace::allow(u.clone(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE),
        ]);
        assert!(check(&t, &deny, AccessMask::WRITE_DATA), "an unresolved deny is not assumed to apply");
        let restricted = Token { restricting_sids: vec![Sid::everyone()], write_restricted: true, ..t };
        assert!(!check(&restricted, &allow, AccessMask::WRITE_DATA), "never a restricting SID");
    }

    #[test]
    fn deny_for_restricting_sid_does_not_touch_the_user() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let w = sid("S-1-5-21-9-9-9-5000");
        let s = sd(vec![
            Ace::deny(w.clone(), AccessMask::DENY_WRITE, AceFlags::NONE),
            Ace::allow(u.clone(), AccessMask::FILE_ALL_ACCESS, AceFlags::NONE),
            Ace::allow(w.clone(), AccessMask::ROOT_GRANT, AceFlags::NONE),
        ]);
        let plain = Token::plain(u.clone(), vec![]);
        assert!(check(&plain, &s, AccessMask::FILE_ALL_ACCESS));
        let restricted = Token { restricting_sids: vec![w], write_restricted: true, ..plain };
        assert!(!check(&restricted, &s, AccessMask::WRITE_DATA));
        assert!(check(&restricted, &s, AccessMask::READ_DATA));
    }
}
