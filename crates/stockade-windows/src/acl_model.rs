//! Access masks, ACEs, DACLs and security descriptors as plain data, with Windows'
//! inheritance rules and canonical ordering.
//!
//! These types mirror the documented structures
//! ([ACCESS_MASK](https://learn.microsoft.com/en-us/windows/win32/secauthz/access-mask),
//! [ACE_HEADER flags](https://learn.microsoft.com/en-us/windows/win32/api/winnt/ns-winnt-ace_header),
//! [File access rights](https://learn.microsoft.com/en-us/windows/win32/fileio/file-access-rights-constants))
//! without depending on any Windows crate, so the plan and the access model can be computed and
//! tested on every platform. The `apply` layer converts them through SDDL (see [`crate::sddl`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sid::Sid;

/// A 32-bit access mask (specific rights in the low 16 bits, standard rights, generic rights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct AccessMask(pub u32);

impl AccessMask {
    /// `FILE_READ_DATA` / `FILE_LIST_DIRECTORY`.
    pub const READ_DATA: AccessMask = AccessMask(0x1);
    /// `FILE_WRITE_DATA` / `FILE_ADD_FILE` (create a file in a directory).
    pub const WRITE_DATA: AccessMask = AccessMask(0x2);
    /// `FILE_APPEND_DATA` / `FILE_ADD_SUBDIRECTORY` (create a subdirectory).
    pub const APPEND_DATA: AccessMask = AccessMask(0x4);
    /// `FILE_READ_EA`.
    pub const READ_EA: AccessMask = AccessMask(0x8);
    /// `FILE_WRITE_EA`.
    pub const WRITE_EA: AccessMask = AccessMask(0x10);
    /// `FILE_EXECUTE` / `FILE_TRAVERSE`.
    pub const EXECUTE: AccessMask = AccessMask(0x20);
    /// `FILE_DELETE_CHILD`: delete any child of a directory regardless of the child's DACL.
    /// Never granted by stockade: it would let a child's deny ACE be bypassed by deleting and
    /// re-creating the child.
    pub const DELETE_CHILD: AccessMask = AccessMask(0x40);
    /// `FILE_READ_ATTRIBUTES`.
    pub const READ_ATTRIBUTES: AccessMask = AccessMask(0x80);
    /// `FILE_WRITE_ATTRIBUTES`.
    pub const WRITE_ATTRIBUTES: AccessMask = AccessMask(0x100);
    /// `DELETE`: delete (or rename) the object itself.
    pub const DELETE: AccessMask = AccessMask(0x1_0000);
    /// `READ_CONTROL`: read the security descriptor.
    pub const READ_CONTROL: AccessMask = AccessMask(0x2_0000);
    /// `WRITE_DAC`: change the DACL.
    pub const WRITE_DAC: AccessMask = AccessMask(0x4_0000);
    /// `WRITE_OWNER`: take ownership.
    pub const WRITE_OWNER: AccessMask = AccessMask(0x8_0000);
    /// `SYNCHRONIZE`.
    pub const SYNCHRONIZE: AccessMask = AccessMask(0x10_0000);
    /// `GENERIC_ALL`.
    pub const GENERIC_ALL: AccessMask = AccessMask(0x1000_0000);
    /// `GENERIC_EXECUTE`.
    pub const GENERIC_EXECUTE: AccessMask = AccessMask(0x2000_0000);
    /// `GENERIC_WRITE`.
    pub const GENERIC_WRITE: AccessMask = AccessMask(0x4000_0000);
    /// `GENERIC_READ`.
    pub const GENERIC_READ: AccessMask = AccessMask(0x8000_0000);

    /// `FILE_GENERIC_READ` (0x120089).
    pub const FILE_GENERIC_READ: AccessMask = AccessMask(0x0012_0089);
    /// `FILE_GENERIC_WRITE` (0x120116).
    pub const FILE_GENERIC_WRITE: AccessMask = AccessMask(0x0012_0116);
    /// `FILE_GENERIC_EXECUTE` (0x1200A0).
    pub const FILE_GENERIC_EXECUTE: AccessMask = AccessMask(0x0012_00a0);
    /// `FILE_ALL_ACCESS` (0x1F01FF).
    pub const FILE_ALL_ACCESS: AccessMask = AccessMask(0x001f_01ff);

    /// Every right that changes an object or its name: the bits a write-restricted token's
    /// restricting SIDs are checked for (see [`crate::access_check`]). Includes
    /// `FILE_DELETE_CHILD`, `DELETE`, `WRITE_DAC` and `WRITE_OWNER` in addition to the
    /// specific bits of `FILE_GENERIC_WRITE`.
    pub const WRITE_RIGHTS: AccessMask = AccessMask(0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x1_0000 | 0x4_0000 | 0x8_0000);

    /// What stockade grants a write SID on a writable root: read, write, execute and
    /// `DELETE` (0x1301BF), *without* `FILE_DELETE_CHILD`, `WRITE_DAC` or `WRITE_OWNER`.
    pub const ROOT_GRANT: AccessMask =
        AccessMask(Self::FILE_GENERIC_READ.0 | Self::FILE_GENERIC_WRITE.0 | Self::FILE_GENERIC_EXECUTE.0 | 0x1_0000);

    /// What stockade denies on protected paths: every write right.
    pub const DENY_WRITE: AccessMask = Self::WRITE_RIGHTS;

    /// What stockade grants the sandbox group to read a tree: read and execute (0x1200A9).
    pub const READ_GRANT: AccessMask = AccessMask(Self::FILE_GENERIC_READ.0 | Self::FILE_GENERIC_EXECUTE.0);

    /// What stockade denies on deny-read paths: reading data, listing, executing, reading EAs
    /// (attributes stay readable so a parent's listing does not break).
    pub const DENY_READ: AccessMask = AccessMask(0x1 | 0x8 | 0x20);

    /// Whether every bit of `other` is in `self`.
    pub fn contains(self, other: AccessMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a bit.
    pub fn intersects(self, other: AccessMask) -> bool {
        self.0 & other.0 != 0
    }

    /// Maps generic rights to file-specific rights with the file object's generic mapping
    /// ([generic access rights](https://learn.microsoft.com/en-us/windows/win32/secauthz/generic-access-rights)).
    pub fn map_generic_file(self) -> AccessMask {
        let mut m = self.0 & 0x0fff_ffff;
        if self.0 & Self::GENERIC_READ.0 != 0 {
            m |= Self::FILE_GENERIC_READ.0;
        }
        if self.0 & Self::GENERIC_WRITE.0 != 0 {
            m |= Self::FILE_GENERIC_WRITE.0;
        }
        if self.0 & Self::GENERIC_EXECUTE.0 != 0 {
            m |= Self::FILE_GENERIC_EXECUTE.0;
        }
        if self.0 & Self::GENERIC_ALL.0 != 0 {
            m |= Self::FILE_ALL_ACCESS.0;
        }
        AccessMask(m)
    }
}

impl std::ops::BitOr for AccessMask {
    type Output = AccessMask;
    fn bitor(self, rhs: AccessMask) -> AccessMask {
        AccessMask(self.0 | rhs.0)
    }
}

impl fmt::Display for AccessMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// ACE inheritance flags ([ACE_HEADER](https://learn.microsoft.com/en-us/windows/win32/api/winnt/ns-winnt-ace_header)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct AceFlags(pub u8);

impl AceFlags {
    /// `OBJECT_INHERIT_ACE` (OI): files below inherit it.
    pub const OI: AceFlags = AceFlags(0x1);
    /// `CONTAINER_INHERIT_ACE` (CI): directories below inherit it.
    pub const CI: AceFlags = AceFlags(0x2);
    /// `NO_PROPAGATE_INHERIT_ACE` (NP): only direct children inherit it.
    pub const NP: AceFlags = AceFlags(0x4);
    /// `INHERIT_ONLY_ACE` (IO): not checked on this object, only inherited.
    pub const IO: AceFlags = AceFlags(0x8);
    /// `INHERITED_ACE` (ID): this ACE was inherited from a parent.
    pub const INHERITED: AceFlags = AceFlags(0x10);
    /// No flags: this object only.
    pub const NONE: AceFlags = AceFlags(0);
    /// OI|CI: the object and everything below it.
    pub const TREE: AceFlags = AceFlags(0x3);

    /// Whether every flag of `other` is set.
    pub fn has(self, other: AceFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags without `other`.
    pub fn without(self, other: AceFlags) -> AceFlags {
        AceFlags(self.0 & !other.0)
    }
}

impl std::ops::BitOr for AceFlags {
    type Output = AceFlags;
    fn bitor(self, rhs: AceFlags) -> AceFlags {
        AceFlags(self.0 | rhs.0)
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AceKind {
    /// `ACCESS_DENIED_ACE_TYPE`.
    Deny,
    /// `ACCESS_ALLOWED_ACE_TYPE`.
    Allow,
}

/// One access control entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ace {
    /// Allow or deny.
    pub kind: AceKind,
    /// Inheritance flags.
    pub flags: AceFlags,
    /// The trustee.
    pub sid: Sid,
    /// The rights.
    pub mask: AccessMask,
}

impl Ace {
    /// An allow ACE.
    pub fn allow(sid: Sid, mask: AccessMask, flags: AceFlags) -> Ace {
        Ace { kind: AceKind::Allow, flags, sid, mask }
    }

    /// A deny ACE.
    pub fn deny(sid: Sid, mask: AccessMask, flags: AceFlags) -> Ace {
        Ace { kind: AceKind::Deny, flags, sid, mask }
    }

    /// Whether the ACE takes part in access checks on the object it is on (not inherit-only).
    pub fn is_effective(&self) -> bool {
        !self.flags.has(AceFlags::IO)
    }

    /// Whether the ACE was inherited.
    pub fn is_inherited(&self) -> bool {
        self.flags.has(AceFlags::INHERITED)
    }

    /// The ACE a child inherits from this one, if any, following the documented rules
    /// ([ACE inheritance rules](https://learn.microsoft.com/en-us/windows/win32/secauthz/ace-inheritance-rules)):
    /// a file inherits OI ACEs as effective ACEs with no inheritance flags; a directory inherits
    /// CI ACEs as effective ACEs (keeping OI/CI unless NP) and OI-only ACEs as inherit-only
    /// ACEs for its files (unless NP).
    pub fn inherited_by(&self, child_is_dir: bool) -> Option<Ace> {
        let f = self.flags;
        let make = |flags: AceFlags| Ace { flags: flags | AceFlags::INHERITED, ..self.clone() };
        if !child_is_dir {
            return f.has(AceFlags::OI).then(|| make(AceFlags::NONE));
        }
        if f.has(AceFlags::CI) {
            if f.has(AceFlags::NP) {
                Some(make(AceFlags::NONE))
            } else {
                Some(make(f.without(AceFlags::IO | AceFlags::INHERITED)))
            }
        } else if f.has(AceFlags::OI) && !f.has(AceFlags::NP) {
            Some(make(AceFlags::OI | AceFlags::IO))
        } else {
            None
        }
    }
}

/// A DACL: `None` is a NULL DACL (everyone gets every right), `Some(vec![])` an empty DACL
/// (nobody gets anything but the owner's implicit rights).
pub type Dacl = Option<Vec<Ace>>;

/// A security descriptor, reduced to what file access decisions need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityDescriptor {
    /// The owner.
    pub owner: Option<Sid>,
    /// The DACL, explicit and inherited ACEs as stored on the object.
    pub dacl: Dacl,
    /// `SE_DACL_PROTECTED`: the DACL does not inherit from the parent.
    pub protected: bool,
}

impl SecurityDescriptor {
    /// A descriptor with an owner and explicit ACEs that also inherits from its parent.
    pub fn with_aces(owner: Sid, aces: Vec<Ace>) -> SecurityDescriptor {
        SecurityDescriptor { owner: Some(owner), dacl: Some(aces), protected: false }
    }

    /// The explicit (not inherited) ACEs.
    pub fn explicit(&self) -> Vec<Ace> {
        self.dacl.iter().flatten().filter(|a| !a.is_inherited()).cloned().collect()
    }
}

/// Sorts ACEs into the canonical order Windows tools expect and `SetSecurityInfo` produces:
/// explicit deny, explicit allow, then inherited ACEs in their original (parent-first) order.
/// ([Order of ACEs in a DACL](https://learn.microsoft.com/en-us/windows/win32/secauthz/order-of-aces-in-a-dacl))
pub fn canonical_order(aces: &[Ace]) -> Vec<Ace> {
    let explicit = |k: AceKind| aces.iter().filter(move |a| !a.is_inherited() && a.kind == k).cloned();
    let inherited = aces.iter().filter(|a| a.is_inherited()).cloned();
    explicit(AceKind::Deny).chain(explicit(AceKind::Allow)).chain(inherited).collect()
}

/// The DACL a child ends up with: its explicit ACEs, then (unless protected) what it inherits
/// from `parent_dacl`. A NULL parent DACL passes nothing down.
pub fn compose_child_dacl(explicit: &[Ace], protected: bool, parent_dacl: &Dacl, child_is_dir: bool) -> Vec<Ace> {
    let mut out: Vec<Ace> = explicit.iter().filter(|a| !a.is_inherited()).cloned().collect();
    if !protected {
        if let Some(parent) = parent_dacl {
            out.extend(parent.iter().filter_map(|a| a.inherited_by(child_is_dir)));
        }
    }
    canonical_order(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> Sid {
        s.parse().unwrap()
    }

    #[test]
    fn generic_mapping_for_files() {
        assert_eq!(AccessMask::GENERIC_READ.map_generic_file(), AccessMask::FILE_GENERIC_READ);
        assert_eq!(AccessMask::GENERIC_ALL.map_generic_file(), AccessMask::FILE_ALL_ACCESS);
        assert_eq!((AccessMask::GENERIC_WRITE | AccessMask::DELETE).map_generic_file().0, 0x0013_0116);
    }

    #[test]
    fn root_grant_has_no_delete_child_or_dac_rights() {
        assert_eq!(AccessMask::ROOT_GRANT.0, 0x0013_01bf);
        assert!(!AccessMask::ROOT_GRANT.intersects(AccessMask::DELETE_CHILD));
        assert!(!AccessMask::ROOT_GRANT.intersects(AccessMask::WRITE_DAC | AccessMask::WRITE_OWNER));
    }

    #[test]
    fn inheritance_rules_table() {
        let s = sid("S-1-5-21-1-2-3-1001");
        let m = AccessMask::READ_GRANT;
        let ace = |f: u8| Ace::allow(s.clone(), m, AceFlags(f));
        let id = AceFlags::INHERITED.0;
        // (flags on parent, what a file gets, what a directory gets)
        let table: &[(u8, Option<u8>, Option<u8>)] = &[
            (0, None, None),
            (0x1, Some(id), Some(0x1 | 0x8 | id)),
            (0x2, None, Some(0x2 | id)),
            (0x3, Some(id), Some(0x3 | id)),
            (0x3 | 0x4, Some(id), Some(id)),
            (0x1 | 0x4, Some(id), None),
            (0x3 | 0x8, Some(id), Some(0x3 | id)),
        ];
        for &(parent, file, dir) in table {
            assert_eq!(ace(parent).inherited_by(false).map(|a| a.flags.0), file, "file from {parent:#x}");
            assert_eq!(ace(parent).inherited_by(true).map(|a| a.flags.0), dir, "dir from {parent:#x}");
        }
    }

    #[test]
    fn canonical_order_puts_explicit_deny_first_and_keeps_inherited_last() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let aces = vec![
            Ace::allow(u.clone(), AccessMask::READ_GRANT, AceFlags::INHERITED),
            Ace::allow(u.clone(), AccessMask::ROOT_GRANT, AceFlags::NONE),
            Ace::deny(u.clone(), AccessMask::DENY_WRITE, AceFlags::NONE),
        ];
        let c = canonical_order(&aces);
        assert_eq!(c[0].kind, AceKind::Deny);
        assert_eq!(c[1].mask, AccessMask::ROOT_GRANT);
        assert!(c[2].is_inherited());
    }

    #[test]
    fn protected_child_inherits_nothing_and_null_parent_passes_nothing() {
        let u = sid("S-1-5-21-1-2-3-1001");
        let parent = Some(vec![Ace::allow(u, AccessMask::READ_GRANT, AceFlags::TREE)]);
        assert!(compose_child_dacl(&[], true, &parent, true).is_empty());
        assert_eq!(compose_child_dacl(&[], false, &parent, false).len(), 1);
        assert!(compose_child_dacl(&[], false, &None, false).is_empty());
    }
}
