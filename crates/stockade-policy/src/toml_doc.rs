//! A thin, span-aware view over a parsed TOML document.
//!
//! Configuration is read by walking the document by hand rather than through serde derive, for
//! three reasons the user sees: every value knows its file and line (provenance), an unknown key
//! is an error that names the nearest valid key, and a wrong type names the key and what was
//! expected. The walkers in [`crate::config_file`] and [`crate::requirements`] declare the keys
//! they accept; this module does the bookkeeping.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{line_col, Error, Location};
use crate::provenance::Source;

/// A parsed file: its path, its text (for line numbers) and its root table.
pub(crate) struct Doc<'a> {
    path: PathBuf,
    text: &'a str,
    root: DeTable<'a>,
    /// Whether values are requirements (for [`Source`]) or user configuration.
    is_requirement: bool,
}

impl<'a> Doc<'a> {
    /// Parses `text` read from `path`.
    pub(crate) fn parse(path: &Path, text: &'a str, is_requirement: bool) -> Result<Self, Error> {
        match DeTable::parse(text) {
            Ok(root) => Ok(Doc { path: path.to_owned(), text, root: root.into_inner(), is_requirement }),
            Err(e) => {
                let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
                Err(Error::TomlSyntax {
                    at: Location { path: path.to_owned(), line, column },
                    message: e.message().trim().to_owned(),
                })
            }
        }
    }

    /// The root table.
    pub(crate) fn root(&self) -> Table<'_, 'a> {
        Table { doc: self, table: &self.root, prefix: String::new() }
    }

    fn location(&self, offset: usize) -> Location {
        let (line, column) = line_col(self.text, offset);
        Location { path: self.path.clone(), line, column }
    }
}

/// One table of a document, with the dotted prefix of its keys.
#[derive(Clone)]
pub(crate) struct Table<'d, 'a> {
    doc: &'d Doc<'a>,
    table: &'d DeTable<'a>,
    prefix: String,
}

/// One key and its value.
pub(crate) struct Field<'d, 'a> {
    doc: &'d Doc<'a>,
    key: String,
    value: &'d Spanned<DeValue<'a>>,
}

impl<'d, 'a> Table<'d, 'a> {
    /// Fails on the first key not in `allowed`, suggesting the nearest of `allowed` or, when the
    /// key belongs to another section, that section's key (`known_elsewhere`).
    pub(crate) fn check_keys(&self, allowed: &[&str], known_elsewhere: &[&str]) -> Result<(), Error> {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if !allowed.contains(&name) {
                return Err(Error::UnknownKey {
                    at: self.doc.location(key.span().start),
                    key: self.dotted(name),
                    suggestion: suggest(name, allowed, known_elsewhere, &self.prefix),
                });
            }
        }
        Ok(())
    }

    /// The names of all keys, in document order or sorted (the toml crate decides).
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'d str> + '_ {
        self.table.iter().map(|(k, _)| k.get_ref().as_ref())
    }

    /// The field named `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<Field<'d, 'a>> {
        self.table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, value)| Field {
            doc: self.doc,
            key: self.dotted(key),
            value,
        })
    }

    fn dotted(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }
}

impl<'d, 'a> Field<'d, 'a> {
    /// The full dotted key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Where the value starts.
    pub(crate) fn location(&self) -> Location {
        self.doc.location(self.value.span().start)
    }

    /// The provenance of this value.
    pub(crate) fn source(&self) -> Source {
        source_at(self.doc, &self.key, self.value.span().start)
    }

    /// An `InvalidValue` error for this field.
    pub(crate) fn invalid(&self, problem: impl Into<String>) -> Error {
        Error::InvalidValue { at: self.location(), key: self.key.clone(), problem: problem.into() }
    }

    fn type_error(&self, expected: &str) -> Error {
        self.invalid(format!("expected {expected}, found {}", self.value.get_ref().type_str()))
    }

    /// The value as a string.
    pub(crate) fn as_str(&self) -> Result<&'d str, Error> {
        self.value.get_ref().as_str().ok_or_else(|| self.type_error("a string"))
    }

    /// The value as a boolean.
    pub(crate) fn as_bool(&self) -> Result<bool, Error> {
        self.value.get_ref().as_bool().ok_or_else(|| self.type_error("`true` or `false`"))
    }

    /// The value as a non-negative integer.
    pub(crate) fn as_u64(&self) -> Result<u64, Error> {
        let int = self.value.get_ref().as_integer().ok_or_else(|| self.type_error("an integer"))?;
        let digits = int.as_str().replace('_', "");
        let digits = digits.trim_start_matches('+');
        let digits =
            digits.strip_prefix("0x").or(digits.strip_prefix("0o")).or(digits.strip_prefix("0b")).unwrap_or(digits);
        u64::from_str_radix(digits, int.radix())
            .map_err(|_| self.invalid(format!("expected a non-negative integer, found `{}`", int.as_str())))
    }

    /// The value as a table.
    pub(crate) fn as_table(&self) -> Result<Table<'d, 'a>, Error> {
        let table = self.value.get_ref().as_table().ok_or_else(|| self.type_error("a table"))?;
        Ok(Table { doc: self.doc, table, prefix: self.key.clone() })
    }

    /// Whether the value is a table (for keys that accept a list or a table).
    pub(crate) fn is_table(&self) -> bool {
        self.value.get_ref().is_table()
    }

    /// The value as an array of strings, each with its own provenance and location.
    pub(crate) fn as_str_list(&self) -> Result<Vec<(String, Source, Location)>, Error> {
        let array = self.value.get_ref().as_array().ok_or_else(|| self.type_error("an array of strings"))?;
        array
            .iter()
            .map(|item| match item.get_ref().as_str() {
                Some(s) => Ok((
                    s.to_owned(),
                    source_at(self.doc, &self.key, item.span().start),
                    self.doc.location(item.span().start),
                )),
                None => Err(Error::InvalidValue {
                    at: self.doc.location(item.span().start),
                    key: self.key.clone(),
                    problem: format!("expected a string, found {}", item.get_ref().type_str()),
                }),
            })
            .collect()
    }
}

fn source_at(doc: &Doc<'_>, key: &str, offset: usize) -> Source {
    let at = doc.location(offset);
    if doc.is_requirement {
        Source::Requirement { path: at.path, line: at.line, key: key.to_owned() }
    } else {
        Source::File { path: at.path, line: at.line, key: key.to_owned() }
    }
}

/// The nearest key to `name`: the same leaf name in another section first, then the closest
/// allowed key at this level by edit distance.
fn suggest(name: &str, allowed: &[&str], elsewhere: &[&str], prefix: &str) -> Option<String> {
    if let Some(full) = elsewhere.iter().find(|k| k.rsplit('.').next() == Some(name)) {
        return Some((*full).to_owned());
    }
    let best = allowed
        .iter()
        .map(|k| (strsim::levenshtein(name, k), *k))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))?;
    Some(if prefix.is_empty() { best.1.to_owned() } else { format!("{prefix}.{}", best.1) })
}
