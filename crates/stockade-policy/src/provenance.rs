//! Where each resolved value came from.
//!
//! A user who asks "why can't my command write `~/.npmrc`?" needs more than the answer: they
//! need to know which file and line to change. Every value in a resolved [`Policy`] therefore
//! carries a [`Source`], and `stockade explain` prints it next to the value.
//!
//! [`Policy`]: crate::Policy

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The origin of one resolved value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A built-in default of stockade.
    Default,
    /// A key in a configuration file (`config.toml`), possibly inside a profile.
    File {
        /// The file the value was read from.
        path: PathBuf,
        /// One-based line of the key.
        line: usize,
        /// The dotted key, e.g. `profiles.ci.network.mode`.
        key: String,
    },
    /// A command-line flag.
    Cli {
        /// The flag as the user typed it, e.g. `--allow-host`.
        flag: String,
    },
    /// A requirements file that forced the value (mandatory lists, forced settings).
    Requirement {
        /// The requirements file.
        path: PathBuf,
        /// One-based line of the key.
        line: usize,
        /// The dotted key, e.g. `mandatory_deny_read`.
        key: String,
    },
    /// Derived from the host at resolution time (the workspace's `.git` pointer file, the
    /// user's home directory, ...).
    Derived {
        /// What it was derived from, in words.
        reason: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "built-in default"),
            Source::File { path, line, key } => {
                write!(f, "`{}`:{line} (`{key}`)", path.display())
            }
            Source::Cli { flag } => write!(f, "command line `{flag}`"),
            Source::Requirement { path, line, key } => {
                write!(f, "requirement `{}`:{line} (`{key}`)", path.display())
            }
            Source::Derived { reason } => write!(f, "derived: {reason}"),
        }
    }
}

/// The provenance of every scalar setting of a policy, keyed by dotted setting name
/// (`mode`, `network.mode`, `process.timeout`, ...). List items carry their own [`Source`]
/// next to the value instead (see [`Sourced`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Provenance(BTreeMap<String, Source>);

impl Provenance {
    /// Records (or replaces) where the setting `key` came from.
    pub fn set(&mut self, key: &str, source: Source) {
        self.0.insert(key.to_owned(), source);
    }

    /// Where the setting `key` came from; `Default` for settings never touched.
    pub fn get(&self, key: &str) -> Source {
        self.0.get(key).cloned().unwrap_or(Source::Default)
    }

    /// Iterates over all recorded settings in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Source)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A value together with where it came from; used for the items of every policy list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    /// The value itself.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    /// Pairs a value with its source.
    pub fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }
}
