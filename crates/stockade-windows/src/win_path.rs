//! Windows paths as data: components compared case-insensitively, printable with `\`.
//!
//! The plan is computed on every platform, so it cannot use `std::path::Path`, whose parsing
//! follows the host OS (on Linux `C:\Users` is a single component). A [`WinPath`] splits on
//! both `\` and `/`, drops `.` components and empty ones, and compares ASCII-case-insensitively
//! like NTFS with its default case-insensitive directories
//! ([naming files](https://learn.microsoft.com/en-us/windows/win32/fileio/naming-a-file)).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A normalized Windows path.
#[derive(Debug, Clone, Default)]
pub struct WinPath {
    comps: Vec<String>,
}

impl WinPath {
    /// Parses `s`, accepting `\` and `/` as separators. A verbatim prefix `\\?\` is removed.
    pub fn new(s: &str) -> WinPath {
        let s = s.strip_prefix(r"\\?\").unwrap_or(s);
        WinPath { comps: s.split(['\\', '/']).filter(|c| !c.is_empty() && *c != ".").map(str::to_owned).collect() }
    }

    /// From a host path (lossy for non-Unicode paths, which the policy never produces).
    pub fn from_path(p: &Path) -> WinPath {
        WinPath::new(&p.to_string_lossy())
    }

    /// The components.
    pub fn components(&self) -> &[String] {
        &self.comps
    }

    /// The parent, or `None` for a root or an empty path.
    pub fn parent(&self) -> Option<WinPath> {
        (self.comps.len() > 1).then(|| WinPath { comps: self.comps[..self.comps.len() - 1].to_vec() })
    }

    /// `self` followed by `name`.
    pub fn join(&self, name: &str) -> WinPath {
        let mut comps = self.comps.clone();
        comps.extend(WinPath::new(name).comps);
        WinPath { comps }
    }

    /// The last component.
    pub fn file_name(&self) -> Option<&str> {
        self.comps.last().map(String::as_str)
    }

    /// Whether `self` is `base` or below it.
    pub fn starts_with(&self, base: &WinPath) -> bool {
        base.comps.len() <= self.comps.len()
            && self.comps.iter().zip(&base.comps).all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Every ancestor from the shortest (the drive) to `self` inclusive.
    pub fn ancestors_and_self(&self) -> impl Iterator<Item = WinPath> + '_ {
        (1..=self.comps.len()).map(|n| WinPath { comps: self.comps[..n].to_vec() })
    }

    /// Whether this is a drive root such as `C:` (or a share root `\\server\share`).
    pub fn is_drive_root(&self) -> bool {
        self.comps.len() <= 1
    }

    /// The number of components.
    pub fn depth(&self) -> usize {
        self.comps.len()
    }

    fn key(&self) -> impl Iterator<Item = String> + '_ {
        self.comps.iter().map(|c| c.to_ascii_lowercase())
    }
}

impl PartialEq for WinPath {
    fn eq(&self, other: &Self) -> bool {
        self.comps.len() == other.comps.len() && self.starts_with(other)
    }
}

impl Eq for WinPath {}

impl Hash for WinPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for c in self.key() {
            c.hash(state);
        }
    }
}

impl PartialOrd for WinPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WinPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}

impl fmt::Display for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.comps.join("\\"))?;
        if self.comps.len() == 1 && self.comps[0].ends_with(':') {
            f.write_str("\\")?;
        }
        Ok(())
    }
}

impl Serialize for WinPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WinPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(WinPath::new(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_separators_case_and_verbatim_prefix() {
        let a = WinPath::new(r"\\?\C:\Users\Me\src\.\app\");
        let b = WinPath::new("c:/users/me/SRC/app");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), r"C:\Users\Me\src\app");
        assert_eq!(WinPath::new("C:").to_string(), r"C:\");
        assert!(a.starts_with(&WinPath::new(r"C:\USERS")));
        assert!(!WinPath::new(r"C:\Users2").starts_with(&WinPath::new(r"C:\Users")));
        assert!(WinPath::new(r"C:\").is_drive_root());
        assert_eq!(a.ancestors_and_self().count(), 5);
    }
}
