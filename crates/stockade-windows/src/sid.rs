//! Security identifiers (SIDs) as plain data, and the synthetic write SIDs stockade mints.
//!
//! A SID names a security principal: a user, a group, a logon session, or (for stockade) a
//! *capability* that exists only to be matched by ACEs and restricted tokens. The string form
//! is `S-R-I-S1-S2-...` (revision, identifier authority, sub-authorities); see
//! [Security identifiers](https://learn.microsoft.com/en-us/windows/security/identity-protection/access-control/security-identifiers)
//! and [SID string format](https://learn.microsoft.com/en-us/windows/win32/secauthz/sid-components).
//!
//! Synthetic write SIDs are shaped like machine account SIDs (`S-1-5-21-a-b-c-d`) but map to no
//! account. They are derived deterministically from a per-install random seed and the root's
//! path, so the same root always gets the same SID on this install (no growth of "Account
//! Unknown" entries across runs) while another install's SIDs cannot be predicted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A security identifier, independent of any Windows API type so the plan and the access
/// model run on every platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid {
    /// The 48-bit identifier authority (5 = NT authority, 1 = world, 3 = creator).
    pub authority: u64,
    /// The sub-authorities, at most 15.
    pub sub_authorities: Vec<u32>,
}

/// A SID string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SID string (expected S-1-<authority>-<sub>...)")]
pub struct BadSid(pub String);

/// The maximum number of sub-authorities a SID may have (`SID_MAX_SUB_AUTHORITIES`).
pub const MAX_SUB_AUTHORITIES: usize = 15;

impl Sid {
    /// A SID from an authority and sub-authorities.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Sid {
        Sid { authority, sub_authorities: sub_authorities.to_vec() }
    }

    /// `S-1-1-0`, Everyone (the world SID).
    pub fn everyone() -> Sid {
        Sid::new(1, &[0])
    }

    /// `S-1-5-18`, the LocalSystem account.
    pub fn local_system() -> Sid {
        Sid::new(5, &[18])
    }

    /// `S-1-5-32-544`, the built-in Administrators group.
    pub fn administrators() -> Sid {
        Sid::new(5, &[32, 544])
    }

    /// `S-1-5-32-545`, the built-in Users group.
    pub fn builtin_users() -> Sid {
        Sid::new(5, &[32, 545])
    }

    /// `S-1-5-11`, Authenticated Users.
    pub fn authenticated_users() -> Sid {
        Sid::new(5, &[11])
    }

    /// `S-1-3-0`, CREATOR OWNER: an inheritable ACE for it becomes an ACE for the creator.
    pub fn creator_owner() -> Sid {
        Sid::new(3, &[0])
    }

    /// A placeholder for a SID the model could not resolve (a domain-relative SDDL alias such
    /// as `DU` or `LA`, which needs the domain to expand). The access model treats an allow ACE
    /// for it as matching the user in the normal check and nothing in the restricted check,
    /// and a deny ACE for it as matching nothing: both over-approximate access, which is the
    /// safe side for "could the sandbox write this?". Never written to a real ACL.
    pub fn unresolved() -> Sid {
        Sid::new(0, &[u32::MAX, 0])
    }

    /// Whether this SID is a logon-session SID (`S-1-5-5-x-y`), which names one interactive
    /// logon and is used to scope desktops and default DACLs.
    pub fn is_logon_sid(&self) -> bool {
        self.authority == 5 && self.sub_authorities.len() == 3 && self.sub_authorities[0] == 5
    }

    /// Whether the SID names a principal that every local user belongs to (Everyone,
    /// Authenticated Users, Users, INTERACTIVE): an allow for such a SID is an allow for the
    /// sandbox user too.
    pub fn is_broad_group(&self) -> bool {
        *self == Sid::everyone()
            || *self == Sid::authenticated_users()
            || *self == Sid::builtin_users()
            || *self == Sid::new(5, &[4])
    }

    /// A synthetic machine-SID-shaped identifier (`S-1-5-21-a-b-c-d`) derived from `seed`
    /// and `label` (a root path or a role name). Deterministic: the same inputs give the same
    /// SID; the RID `d` is at least 1000 like an ordinary account's.
    pub fn synthetic(seed: &[u8; 16], label: &str) -> Sid {
        let h1 = mix(seed, label.as_bytes(), 0x9e37_79b9_7f4a_7c15);
        let h2 = mix(seed, label.as_bytes(), 0xc2b2_ae3d_27d4_eb4f);
        let a = (h1 >> 32) as u32;
        let b = h1 as u32;
        let c = (h2 >> 32) as u32;
        let d = 1000 + ((h2 as u32) % 0x7fff_0000);
        Sid::new(5, &[21, a, b, c, d])
    }
}

/// A 64-bit keyed mix (splitmix64 finalizer over the bytes). Not a cryptographic MAC: the SIDs
/// only need to be stable per install and not to collide; unpredictability comes from the seed.
fn mix(seed: &[u8; 16], data: &[u8], salt: u64) -> u64 {
    let mut h = salt;
    for chunk in seed.chunks(8).chain(data.chunks(8)) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h ^= u64::from_le_bytes(w).wrapping_add(chunk.len() as u64);
        h = splitmix(h);
    }
    splitmix(h ^ data.len() as u64)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Authorities of 2^32 and above are printed in hex, as ConvertSidToStringSidW does.
        if self.authority >= 1 << 32 {
            write!(f, "S-1-0x{:012X}", self.authority)?;
        } else {
            write!(f, "S-1-{}", self.authority)?;
        }
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl FromStr for Sid {
    type Err = BadSid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadSid(s.to_owned());
        let mut parts = s.split('-');
        if !parts.next().is_some_and(|p| p.eq_ignore_ascii_case("S")) || parts.next() != Some("1") {
            return Err(bad());
        }
        let auth = parts.next().ok_or_else(bad)?;
        let authority = match auth.strip_prefix("0x").or_else(|| auth.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| bad())?,
            None => auth.parse::<u64>().map_err(|_| bad())?,
        };
        if authority >= 1 << 48 {
            return Err(bad());
        }
        let subs = parts.map(|p| p.parse::<u32>().map_err(|_| bad())).collect::<Result<Vec<_>, _>>()?;
        if subs.is_empty() || subs.len() > MAX_SUB_AUTHORITIES {
            return Err(bad());
        }
        Ok(Sid { authority, sub_authorities: subs })
    }
}

impl Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_well_known_and_machine_sids() {
        for s in ["S-1-1-0", "S-1-5-18", "S-1-5-32-544", "S-1-5-21-1-2-3-1001", "S-1-5-5-0-123456"] {
            assert_eq!(s.parse::<Sid>().unwrap().to_string(), s);
        }
        assert_eq!("S-1-0x10000000000-7".parse::<Sid>().unwrap().to_string(), "S-1-0x010000000000-7");
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "S-1",
            "S-1-5",
            "S-2-5-18",
            "X-1-5-18",
            "S-1-5-x",
            "S-1-5-18-",
            "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        ] {
            assert!(s.parse::<Sid>().is_err(), "{s:?} must not parse");
        }
    }

    #[test]
    fn synthetic_sids_are_machine_shaped_stable_and_distinct() {
        let seed = [7u8; 16];
        let a = Sid::synthetic(&seed, r"C:\src\app");
        assert_eq!(a, Sid::synthetic(&seed, r"C:\src\app"), "same root, same SID");
        assert_ne!(a, Sid::synthetic(&seed, r"C:\src\other"));
        assert_ne!(a, Sid::synthetic(&[8u8; 16], r"C:\src\app"), "another install, another SID");
        assert_eq!(a.authority, 5);
        assert_eq!(a.sub_authorities.len(), 5);
        assert_eq!(a.sub_authorities[0], 21);
        assert!(a.sub_authorities[4] >= 1000);
        assert_eq!(a.to_string().parse::<Sid>().unwrap(), a);
    }

    #[test]
    fn logon_and_broad_groups() {
        assert!("S-1-5-5-0-999".parse::<Sid>().unwrap().is_logon_sid());
        assert!(!Sid::local_system().is_logon_sid());
        assert!(Sid::everyone().is_broad_group());
        assert!(!Sid::administrators().is_broad_group());
    }
}
