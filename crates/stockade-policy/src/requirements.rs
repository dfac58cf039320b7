//! Reading `requirements.toml`: constraints an administrator puts on every policy.
//!
//! Requirements constrain, they do not configure. Each requirements file is checked on its own
//! against the resolved policy, so an extra `--requirements FILE` can only add constraints: it
//! can never widen what the system file allows, because the system file is still checked. The
//! mandatory lists are added to the policy after the user's layers, so no config can remove
//! them.

use std::path::{Path, PathBuf};

use crate::config_file::expand_at;
use crate::error::{Error, Location};
use crate::host_rule::HostRule;
use crate::paths::HostEnv;
use crate::policy::{LinuxImplementation, Mode, WindowsImplementation};
use crate::provenance::{Source, Sourced};
use crate::toml_doc::{Doc, Field};

const TOP_KEYS: &[&str] =
    &["allowed_modes", "allow_escalation", "mandatory_deny_read", "mandatory_protected", "network", "linux", "windows"];
const NET_KEYS: &[&str] = &["allowed_hosts", "allow_on"];
const LINUX_KEYS: &[&str] = &["allowed_implementations"];
const WINDOWS_KEYS: &[&str] = &["allowed_sandbox_implementations", "private_desktop"];
const ALL_KEYS: &[&str] = &[
    "allowed_modes",
    "allow_escalation",
    "mandatory_deny_read",
    "mandatory_protected",
    "network.allowed_hosts",
    "network.allow_on",
    "linux.allowed_implementations",
    "windows.allowed_sandbox_implementations",
    "windows.private_desktop",
];

/// One constraint with the place it was written, for refusal messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Req<T> {
    pub value: T,
    pub at: Location,
    pub key: String,
}

impl<T> Req<T> {
    /// The provenance to record on values this constraint forces.
    pub(crate) fn source(&self) -> Source {
        Source::Requirement { path: self.at.path.clone(), line: self.at.line, key: self.key.clone() }
    }

    /// A refusal of `refused` by this constraint.
    pub(crate) fn refuse(&self, refused: impl Into<String>, allowed: impl Into<String>) -> Error {
        Error::RequirementViolation {
            at: self.at.clone(),
            key: self.key.clone(),
            refused: refused.into(),
            allowed: allowed.into(),
        }
    }
}

/// One parsed requirements file.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequirementsFile {
    pub allowed_modes: Option<Req<Vec<Mode>>>,
    pub allow_escalation: Option<Req<bool>>,
    pub mandatory_deny_read: Vec<Sourced<PathBuf>>,
    pub mandatory_protected: Vec<Sourced<PathBuf>>,
    pub allowed_hosts: Option<Req<Vec<HostRule>>>,
    pub allow_on: Option<Req<bool>>,
    pub linux_allowed: Option<Req<Vec<LinuxImplementation>>>,
    pub windows_allowed: Option<Req<Vec<WindowsImplementation>>>,
    pub windows_private_desktop: Option<Req<bool>>,
}

impl RequirementsFile {
    /// Parses the requirements file at `path`.
    pub(crate) fn parse(path: &Path, text: &str, env: &HostEnv) -> Result<Self, Error> {
        let doc = Doc::parse(path, text, true)?;
        let root = doc.root();
        root.check_keys(TOP_KEYS, ALL_KEYS)?;
        let mut r = RequirementsFile {
            allowed_modes: nonempty_list(root.get("allowed_modes"))?,
            allow_escalation: bool_req(root.get("allow_escalation"))?,
            ..Default::default()
        };
        for (key, out) in
            [("mandatory_deny_read", &mut r.mandatory_deny_read), ("mandatory_protected", &mut r.mandatory_protected)]
        {
            if let Some(f) = root.get(key) {
                for (s, src, at) in f.as_str_list()? {
                    out.push(Sourced::new(expand_at(&s, &at, env)?, src));
                }
            }
        }
        for p in &r.mandatory_deny_read {
            if !p.value.is_absolute() {
                let Source::Requirement { path, line, .. } = &p.source else { continue };
                return Err(Error::InvalidValue {
                    at: Location { path: path.clone(), line: *line, column: 1 },
                    key: "mandatory_deny_read".into(),
                    problem: format!("`{}` must be absolute or start with `~/`", p.value.display()),
                });
            }
        }
        if let Some(net) = root.get("network") {
            let net = net.as_table()?;
            net.check_keys(NET_KEYS, ALL_KEYS)?;
            r.allowed_hosts = nonempty_list(net.get("allowed_hosts"))?;
            r.allow_on = bool_req(net.get("allow_on"))?;
        }
        if let Some(lx) = root.get("linux") {
            let lx = lx.as_table()?;
            lx.check_keys(LINUX_KEYS, ALL_KEYS)?;
            r.linux_allowed = nonempty_list(lx.get("allowed_implementations"))?;
        }
        if let Some(w) = root.get("windows") {
            let w = w.as_table()?;
            w.check_keys(WINDOWS_KEYS, ALL_KEYS)?;
            r.windows_allowed = nonempty_list(w.get("allowed_sandbox_implementations"))?;
            r.windows_private_desktop = bool_req(w.get("private_desktop"))?;
        }
        Ok(r)
    }
}

/// A list of names where an empty list is an error, not "allow nothing silently".
fn nonempty_list<T>(f: Option<Field<'_, '_>>) -> Result<Option<Req<Vec<T>>>, Error>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(f) = f else { return Ok(None) };
    let items = f.as_str_list()?;
    if items.is_empty() {
        return Err(Error::EmptyAllowedList { at: f.location(), key: f.key().to_owned() });
    }
    let value = items
        .into_iter()
        .map(|(s, _, at)| {
            s.parse::<T>().map_err(|e| Error::InvalidValue { at, key: f.key().to_owned(), problem: e.to_string() })
        })
        .collect::<Result<Vec<T>, Error>>()?;
    Ok(Some(Req { value, at: f.location(), key: f.key().to_owned() }))
}

fn bool_req(f: Option<Field<'_, '_>>) -> Result<Option<Req<bool>>, Error> {
    f.map(|f| Ok(Req { value: f.as_bool()?, at: f.location(), key: f.key().to_owned() })).transpose()
}
