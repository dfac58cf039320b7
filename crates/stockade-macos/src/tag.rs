//! The per-run tag that marks this run's denials in the unified log.
//!
//! Seatbelt writes every denial to the unified log, for every sandboxed process on the Mac.
//! The profile attaches `(with message "<tag>")` to its deny rules, so this run's
//! denials carry a unique token and the log reader (see [`crate::denial`]) can ask
//! `log stream` for exactly those. The tag is not a secret (any process of the user can see
//! `sandbox-exec`'s arguments); it only separates concurrent runs.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use serde::Serialize;

/// A run tag: `stockade-` followed by lowercase hex. Only `[a-z0-9-]`, so it needs no quoting
/// inside a `log` predicate or an SBPL string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// The prefix of every tag.
    pub const PREFIX: &'static str = "stockade-";

    /// A fresh tag for one run, from the process id, the time and std's per-process random
    /// hasher keys (no extra dependency; uniqueness, not secrecy, is what matters).
    pub fn fresh() -> Tag {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        h.write_u128(now.as_nanos());
        let a = h.finish();
        h.write_u64(a);
        Tag(format!("{}{:016x}{:016x}", Self::PREFIX, a, h.finish()))
    }

    /// A tag from text, for tests and replaying logs; `None` unless it has the prefix and
    /// only `[a-z0-9-]` after it.
    pub fn parse(s: &str) -> Option<Tag> {
        let rest = s.strip_prefix(Self::PREFIX)?;
        (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            .then(|| Tag(s.to_owned()))
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tags_are_valid_and_differ() {
        let a = Tag::fresh();
        let b = Tag::fresh();
        assert_ne!(a, b);
        assert_eq!(Tag::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.as_str().len(), Tag::PREFIX.len() + 32);
    }

    #[test]
    fn parse_table() {
        for ok in ["stockade-0", "stockade-abc-123"] {
            assert!(Tag::parse(ok).is_some(), "{ok}");
        }
        for bad in
            ["stockade-", "other-1", "stockade-A", "stockade-a\"b", "stockade-a\\b", "stockade-a b", "stockade-\n"]
        {
            assert!(Tag::parse(bad).is_none(), "{bad:?}");
        }
    }
}
