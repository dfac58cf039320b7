//! The ledger: everything stockade has applied to this host, so a run can check in
//! O(number of roots) that nothing needs doing, and `stockade cleanup` can remove exactly what
//! was added (every ACE, created directory, user, group, firewall rule and WFP filter).
//!
//! The ledger lives in stockade's state directory (`%LOCALAPPDATA%\stockade\ledger.json`),
//! which is never writable by the sandbox. It is versioned: a newer stockade reading an older
//! ledger re-plans, an older stockade refuses a newer ledger.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::acl_model::Ace;
use crate::sid::Sid;
use crate::win_path::WinPath;

/// The ledger format version this build writes.
pub const LEDGER_VERSION: u32 = 1;

/// An ACE on a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PathAce {
    /// The object.
    pub path: WinPath,
    /// The explicit ACE stockade added there.
    pub ace: Ace,
}

/// The sandbox accounts of the elevated implementation, once created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// The offline user (no network but the proxy).
    pub offline: Account,
    /// The online user (network on).
    pub online: Account,
    /// Their group, which the ACL grants name.
    pub group: Account,
}

/// One local account or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its SID.
    pub sid: Sid,
}

/// The names of the sandbox accounts and group for the real user `user`.
///
/// Per real user, not per machine: two users of one machine each get their own accounts and
/// group, so one user's sandbox is never granted another user's workspace, and one user's
/// setup never resets the password another user's runs depend on. Local account names are at
/// most 20 characters: `stk-<8 hex>-off`, `-on`, `-grp`.
pub fn account_names(user: &Sid) -> [String; 3] {
    let tag = user.to_string().bytes().fold(0xcbf2_9ce4_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    ["off", "on", "grp"].map(|k| format!("stk-{tag:08x}-{k}"))
}

/// What has been applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Format version.
    pub version: u32,
    /// The per-install random seed synthetic SIDs derive from (hex).
    pub seed: String,
    /// The write SID of every root ever stamped.
    pub write_sids: BTreeMap<WinPath, Sid>,
    /// Every ACE added.
    pub aces: BTreeSet<PathAce>,
    /// Directories and files stockade created (protected paths that did not exist).
    pub created: BTreeSet<WinPath>,
    /// The elevated implementation's accounts.
    pub accounts: Option<Accounts>,
    /// Firewall rule names.
    pub firewall_rules: BTreeSet<String>,
    /// WFP filter names.
    pub wfp_filters: BTreeSet<String>,
    /// Per root: the fingerprint observed after stamping (see [`crate::plan::Fingerprint`]).
    pub fingerprints: BTreeMap<WinPath, String>,
}

impl Ledger {
    /// An empty ledger for a new install with `seed`.
    pub fn new(seed: [u8; 16]) -> Ledger {
        Ledger {
            version: LEDGER_VERSION,
            seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
            write_sids: BTreeMap::new(),
            aces: BTreeSet::new(),
            created: BTreeSet::new(),
            accounts: None,
            firewall_rules: BTreeSet::new(),
            wfp_filters: BTreeSet::new(),
            fingerprints: BTreeMap::new(),
        }
    }

    /// The seed as bytes, or `None` if the ledger's seed is malformed.
    pub fn seed_bytes(&self) -> Option<[u8; 16]> {
        let s = self.seed.as_bytes();
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in s.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(hex, 16).ok()?;
        }
        Some(out)
    }

    /// Whether nothing is recorded (cleanup has nothing to do).
    pub fn is_empty(&self) -> bool {
        self.aces.is_empty()
            && self.created.is_empty()
            && self.accounts.is_none()
            && self.firewall_rules.is_empty()
            && self.wfp_filters.is_empty()
    }

    /// Parses a ledger file's text.
    pub fn from_json(text: &str) -> Result<Ledger, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The ledger file's text.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl_model::{AccessMask, AceFlags};

    #[test]
    fn account_names_are_per_user_short_and_stable() {
        let a: Sid = "S-1-5-21-1-2-3-1001".parse().unwrap();
        let b: Sid = "S-1-5-21-1-2-3-1002".parse().unwrap();
        let na = account_names(&a);
        assert_eq!(na, account_names(&a));
        assert_ne!(na, account_names(&b));
        assert!(na.iter().all(|n| n.len() <= 20 && n.starts_with("stk-")), "{na:?}");
        assert!(na[0].ends_with("-off") && na[1].ends_with("-on") && na[2].ends_with("-grp"));
    }

    #[test]
    fn round_trips_through_json_and_keeps_the_seed() {
        let mut l = Ledger::new([0xab; 16]);
        l.aces.insert(PathAce {
            path: WinPath::new(r"C:\src\app"),
            ace: Ace::allow(Sid::synthetic(&[0xab; 16], "x"), AccessMask::ROOT_GRANT, AceFlags::TREE),
        });
        let back = Ledger::from_json(&l.to_json()).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.seed_bytes(), Some([0xab; 16]));
        assert!(!back.is_empty());
        assert!(Ledger::new([0; 16]).is_empty());
    }
}
