//! The one error type of `stockade-policy`, with stable codes.
//!
//! Messages follow the CLI's style (lowercase, backticked paths, no trailing period). Every
//! variant maps to a stable snake_case [`Error::code`] that appears in `--json` output and that
//! tests assert on, so messages can improve without breaking callers.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A position in a file, for messages: `path:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// One-based line.
    pub line: usize,
    /// One-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Everything that can go wrong while loading and resolving a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or requirements file exists but could not be read.
    #[error("cannot read `{path}`", path = path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is not valid TOML.
    #[error("{at}: invalid TOML: {message}")]
    TomlSyntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// A key that stockade does not know. Nothing is silently ignored.
    #[error("{at}: unknown key `{key}`{}", suggestion_text(suggestion.as_deref()))]
    UnknownKey {
        /// Where the key is.
        at: Location,
        /// The full dotted key.
        key: String,
        /// The nearest valid key, if one is close.
        suggestion: Option<String>,
    },
    /// A key with a value of the wrong type or outside its range.
    #[error("{at}: invalid value for `{key}`: {problem}")]
    InvalidValue {
        /// Where the value is.
        at: Location,
        /// The full dotted key.
        key: String,
        /// What is wrong, including what was expected.
        problem: String,
    },
    /// A command-line value that cannot be used.
    #[error("invalid value for `{flag}`: {problem}")]
    InvalidFlag {
        /// The flag.
        flag: String,
        /// What is wrong.
        problem: String,
    },
    /// `--profile` or `profile =` names a profile the config file does not define.
    #[error("unknown profile `{name}`{}", available_text(available))]
    UnknownProfile {
        /// The requested name.
        name: String,
        /// Profiles the config defines.
        available: Vec<String>,
    },
    /// A requirements file forbids a value of the resolved policy.
    #[error("{at}: requirement `{key}` refuses {refused}; it allows {allowed}")]
    RequirementViolation {
        /// The requirement's key in its file.
        at: Location,
        /// The requirement key (`allowed_modes`, `network.allowed_hosts`, ...).
        key: String,
        /// The refused value, as the user would write it.
        refused: String,
        /// What the requirement allows, in words.
        allowed: String,
    },
    /// A requirement's allowed list is empty, which would forbid everything.
    #[error("{at}: `{key}` is empty; an empty allowed list would forbid every value")]
    EmptyAllowedList {
        /// Where the list is.
        at: Location,
        /// The key.
        key: String,
    },
    /// The workspace does not exist or is not a directory.
    #[error("workspace `{path}` is not a directory", path = path.display())]
    Workspace {
        /// The path as given.
        path: PathBuf,
        /// Why it could not be used.
        #[source]
        source: io::Error,
    },
    /// An extra writable root does not exist.
    #[error("writable root `{path}` does not exist", path = path.display())]
    WritableRootMissing {
        /// The path as given.
        path: PathBuf,
        /// The I/O error from resolving it.
        #[source]
        source: io::Error,
    },
    /// A writable root so broad that the promise of the default policy cannot hold.
    #[error("refusing writable root `{path}`: {reason}", path = path.display())]
    WritableRootTooBroad {
        /// The root.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A policy file would be writable by the sandbox, which could then widen its own policy.
    #[error("refusing to read policy from `{file}`: it is inside writable root `{root}`", file = file.display(), root = root.display())]
    PolicyFileWritable {
        /// The config or requirements file.
        file: PathBuf,
        /// The writable root that contains it.
        root: PathBuf,
    },
    /// A `$VAR` in a configured path names a variable that is not set.
    #[error("{at}: `{value}` uses `${var}`, which is not set")]
    UndefinedVariable {
        /// Where the value is.
        at: Location,
        /// The value as written.
        value: String,
        /// The variable name.
        var: String,
    },
    /// The home directory is needed (for `~` or default secrets) but unknown.
    #[error("cannot determine the home directory (`HOME` is not set, or not an absolute path): the default deny-read and deny-write lists are relative to it")]
    HomeUnknown,
    /// Two options that contradict each other.
    #[error("{first} conflicts with {second}")]
    Conflict {
        /// One option.
        first: String,
        /// The other.
        second: String,
    },
}

fn suggestion_text(s: Option<&str>) -> String {
    s.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
}

fn available_text(names: &[String]) -> String {
    if names.is_empty() {
        "; the config file defines no profiles".to_owned()
    } else {
        format!("; defined profiles: {}", names.join(", "))
    }
}

impl Error {
    /// A stable snake_case code for this kind of failure (documented in docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            Error::ReadFile { .. } => "config_unreadable",
            Error::TomlSyntax { .. } => "config_syntax",
            Error::UnknownKey { .. } => "config_unknown_key",
            Error::InvalidValue { .. } => "config_invalid_value",
            Error::InvalidFlag { .. } => "invalid_flag",
            Error::UnknownProfile { .. } => "unknown_profile",
            Error::RequirementViolation { .. } => "requirement_violation",
            Error::EmptyAllowedList { .. } => "requirements_empty_list",
            Error::Workspace { .. } => "workspace_invalid",
            Error::WritableRootMissing { .. } => "writable_root_missing",
            Error::WritableRootTooBroad { .. } => "writable_root_too_broad",
            Error::PolicyFileWritable { .. } => "policy_file_writable",
            Error::UndefinedVariable { .. } => "undefined_variable",
            Error::HomeUnknown => "home_unknown",
            Error::Conflict { .. } => "conflicting_options",
        }
    }

    /// A short, actionable hint for the user, when there is one to give.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::UnknownKey { .. } => "see docs/policy.md for every key".to_owned(),
            Error::RequirementViolation { .. } => {
                "requirements are set by your administrator; ask them or choose an allowed value".to_owned()
            }
            Error::Workspace { .. } => "pass an existing directory with `-C DIR`".to_owned(),
            Error::WritableRootMissing { .. } => {
                "create the directory first, or remove it from `-w`/`writable_roots`".to_owned()
            }
            Error::WritableRootTooBroad { .. } => {
                "make only the project directory writable, e.g. `-C ~/src/project`".to_owned()
            }
            Error::PolicyFileWritable { .. } => "move the file outside every writable root".to_owned(),
            Error::UnknownProfile { .. } => "define it as `[profiles.NAME]` in your config file".to_owned(),
            Error::HomeUnknown => {
                "set `HOME` to your home directory (an absolute path), e.g. `HOME=/home/you`".to_owned()
            }
            _ => return None,
        })
    }
}

/// Converts a byte offset in `text` to a one-based (line, column).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
        assert_eq!(line_col(t, 999), (3, 1));
    }
}
