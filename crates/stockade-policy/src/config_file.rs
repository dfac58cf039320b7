//! Reading `config.toml`: the user's own settings and named profiles.
//!
//! A config file (and each `[profiles.NAME]` in it) is read into a [`Layer`]: a partial policy
//! whose every value carries its provenance. Layers are applied over the built-in defaults in
//! order (defaults, file, selected profile, command line) by [`crate::resolve()`].
//!
//! Lists are either replaced or edited: `deny_read = ["~/.ssh"]` replaces the default list,
//! `deny_read = { add = ["~/work/.env"], remove = ["~/.npmrc"] }` edits it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Location};
use crate::host_rule::HostRule;
use crate::paths::{expand, ExpandError, HostEnv};
use crate::policy::{LinuxImplementation, Mode, NetworkMode, WindowsImplementation};
use crate::provenance::Sourced;
use crate::toml_doc::{Doc, Field, Table};

/// Keys of a layer (the top level of the file, or one profile).
const LAYER_KEYS: &[&str] = &["mode", "filesystem", "network", "process", "env", "linux", "windows"];
const FS_KEYS: &[&str] =
    &["readable", "deny_read", "writable_roots", "protected", "deny_write", "protect_git_pointer", "private_tmp"];
const NET_KEYS: &[&str] = &["mode", "allow", "deny"];
const PROCESS_KEYS: &[&str] = &["timeout", "memory", "max_processes", "max_open_files"];
const ENV_KEYS: &[&str] = &["allow", "deny", "set"];
const LINUX_KEYS: &[&str] = &["implementation", "allow_fallback"];
const WINDOWS_KEYS: &[&str] = &["sandbox", "private_desktop"];
const EDIT_KEYS: &[&str] = &["add", "remove"];

/// Every valid dotted key, for "did you mean" suggestions across sections.
pub(crate) const ALL_KEYS: &[&str] = &[
    "mode",
    "profile",
    "profiles",
    "filesystem.readable",
    "filesystem.deny_read",
    "filesystem.writable_roots",
    "filesystem.protected",
    "filesystem.deny_write",
    "filesystem.protect_git_pointer",
    "filesystem.private_tmp",
    "network.mode",
    "network.allow",
    "network.deny",
    "process.timeout",
    "process.memory",
    "process.max_processes",
    "process.max_open_files",
    "env.allow",
    "env.deny",
    "env.set",
    "linux.implementation",
    "linux.allow_fallback",
    "windows.sandbox",
    "windows.private_desktop",
];

/// A change to one list of the policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListEdit<T> {
    /// Replace the whole list.
    Replace(Vec<Sourced<T>>),
    /// Add and remove items.
    Edit {
        /// Items appended (if not already present).
        add: Vec<Sourced<T>>,
        /// Items removed (compared by value).
        remove: Vec<T>,
    },
}

impl<T: PartialEq + Clone> ListEdit<T> {
    /// Applies this edit to `list`.
    pub(crate) fn apply(&self, list: &mut Vec<Sourced<T>>) {
        match self {
            ListEdit::Replace(items) => *list = items.clone(),
            ListEdit::Edit { add, remove } => {
                list.retain(|i| !remove.contains(&i.value));
                for item in add {
                    if !list.iter().any(|i| i.value == item.value) {
                        list.push(item.clone());
                    }
                }
            }
        }
    }
}

/// The `readable` setting: everything, or only some roots.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReadableSpec {
    All,
    Roots(Vec<Sourced<PathBuf>>),
}

/// A partial policy from one source. `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layer {
    pub mode: Option<Sourced<Mode>>,
    pub readable: Option<Sourced<ReadableSpec>>,
    pub deny_read: Option<ListEdit<PathBuf>>,
    pub writable_roots: Option<ListEdit<PathBuf>>,
    pub protected: Option<ListEdit<PathBuf>>,
    pub deny_write: Option<ListEdit<PathBuf>>,
    pub protect_git_pointer: Option<Sourced<bool>>,
    pub private_tmp: Option<Sourced<bool>>,
    pub network_mode: Option<Sourced<NetworkMode>>,
    pub network_allow: Option<ListEdit<HostRule>>,
    pub network_deny: Option<ListEdit<HostRule>>,
    pub timeout: Option<Sourced<Duration>>,
    pub memory: Option<Sourced<u64>>,
    pub max_processes: Option<Sourced<u32>>,
    pub max_open_files: Option<Sourced<u32>>,
    pub env_allow: Option<ListEdit<String>>,
    pub env_deny: Option<ListEdit<String>>,
    pub env_set: Vec<Sourced<(String, String)>>,
    pub linux_implementation: Option<Sourced<LinuxImplementation>>,
    pub linux_allow_fallback: Option<Sourced<bool>>,
    pub windows_sandbox: Option<Sourced<WindowsImplementation>>,
    pub windows_private_desktop: Option<Sourced<bool>>,
}

/// A parsed `config.toml`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfigFile {
    /// The file, for messages.
    pub path: PathBuf,
    /// The top-level settings.
    pub base: Layer,
    /// `profile = "NAME"`: the profile used when the command line names none.
    pub default_profile: Option<Sourced<String>>,
    /// The `[profiles.NAME]` tables.
    pub profiles: BTreeMap<String, Layer>,
}

impl ConfigFile {
    /// Parses the text of the config file at `path`.
    pub(crate) fn parse(path: &Path, text: &str, env: &HostEnv) -> Result<Self, Error> {
        let doc = Doc::parse(path, text, false)?;
        let root = doc.root();
        let mut top_keys = LAYER_KEYS.to_vec();
        top_keys.extend(["profile", "profiles"]);
        root.check_keys(&top_keys, ALL_KEYS)?;
        let base = read_layer(&root, env)?;
        let default_profile = match root.get("profile") {
            Some(f) => Some(Sourced::new(f.as_str()?.to_owned(), f.source())),
            None => None,
        };
        let mut profiles = BTreeMap::new();
        if let Some(f) = root.get("profiles") {
            let table = f.as_table()?;
            let names: Vec<&str> = table.keys().collect();
            for name in names {
                if let Some(p) = table.get(name) {
                    let layer_table = p.as_table()?;
                    layer_table.check_keys(LAYER_KEYS, ALL_KEYS)?;
                    profiles.insert(name.to_owned(), read_layer(&layer_table, env)?);
                }
            }
        }
        Ok(ConfigFile { path: path.to_owned(), base, default_profile, profiles })
    }
}

fn read_layer(t: &Table<'_, '_>, env: &HostEnv) -> Result<Layer, Error> {
    let mut l = Layer { mode: parse_opt(t.get("mode"))?, ..Layer::default() };
    if let Some(fs) = t.get("filesystem") {
        let fs = fs.as_table()?;
        fs.check_keys(FS_KEYS, ALL_KEYS)?;
        if let Some(f) = fs.get("readable") {
            let spec = if f.is_table() || f.as_str().is_err() {
                ReadableSpec::Roots(path_list(&f, env)?)
            } else if f.as_str()? == "all" {
                ReadableSpec::All
            } else {
                return Err(f.invalid("expected `\"all\"` or an array of paths"));
            };
            l.readable = Some(Sourced::new(spec, f.source()));
        }
        l.deny_read = path_edit(fs.get("deny_read"), env)?;
        l.writable_roots = path_edit(fs.get("writable_roots"), env)?;
        l.protected = path_edit(fs.get("protected"), env)?;
        l.deny_write = path_edit(fs.get("deny_write"), env)?;
        l.protect_git_pointer = bool_opt(fs.get("protect_git_pointer"))?;
        l.private_tmp = bool_opt(fs.get("private_tmp"))?;
    }
    if let Some(net) = t.get("network") {
        let net = net.as_table()?;
        net.check_keys(NET_KEYS, ALL_KEYS)?;
        l.network_mode = parse_opt(net.get("mode"))?;
        l.network_allow =
            edit(net.get("allow"), |s, at| s.parse::<HostRule>().map_err(|e| invalid_at(at, e.to_string())))?;
        l.network_deny =
            edit(net.get("deny"), |s, at| s.parse::<HostRule>().map_err(|e| invalid_at(at, e.to_string())))?;
    }
    if let Some(p) = t.get("process") {
        let p = p.as_table()?;
        p.check_keys(PROCESS_KEYS, ALL_KEYS)?;
        if let Some(f) = p.get("timeout") {
            l.timeout = Some(Sourced::new(duration(&f)?, f.source()));
        }
        if let Some(f) = p.get("memory") {
            let n = bytes(&f)?;
            if n < crate::MIN_MEMORY_BYTES {
                return Err(f.invalid(format!(
                    "the memory limit must be at least {} MiB: below that the sandbox's own set-up cannot run",
                    crate::MIN_MEMORY_BYTES >> 20
                )));
            }
            l.memory = Some(Sourced::new(n, f.source()));
        }
        if let Some(f) = p.get("max_processes") {
            let n = u32::try_from(f.as_u64()?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| f.invalid("expected a number from 1 to 4294967295"))?;
            l.max_processes = Some(Sourced::new(n, f.source()));
        }
        if let Some(f) = p.get("max_open_files") {
            let n = u32::try_from(f.as_u64()?).ok().filter(|n| *n >= crate::MIN_OPEN_FILES).ok_or_else(|| {
                f.invalid(format!(
                    "expected a number from {} to 4294967295: a program needs a few descriptors \
                         beyond its standard streams to start at all",
                    crate::MIN_OPEN_FILES
                ))
            })?;
            l.max_open_files = Some(Sourced::new(n, f.source()));
        }
    }
    if let Some(e) = t.get("env") {
        let e = e.as_table()?;
        e.check_keys(ENV_KEYS, ALL_KEYS)?;
        l.env_allow = edit(e.get("allow"), env_pattern)?;
        l.env_deny = edit(e.get("deny"), env_pattern)?;
        if let Some(set) = e.get("set") {
            let set = set.as_table()?;
            let names: Vec<&str> = set.keys().collect();
            for name in names {
                if let Some(f) = set.get(name) {
                    env_pattern(name, &f.location())?;
                    l.env_set.push(Sourced::new((name.to_owned(), f.as_str()?.to_owned()), f.source()));
                }
            }
        }
    }
    if let Some(lx) = t.get("linux") {
        let lx = lx.as_table()?;
        lx.check_keys(LINUX_KEYS, ALL_KEYS)?;
        l.linux_implementation = parse_opt(lx.get("implementation"))?;
        l.linux_allow_fallback = bool_opt(lx.get("allow_fallback"))?;
    }
    if let Some(w) = t.get("windows") {
        let w = w.as_table()?;
        w.check_keys(WINDOWS_KEYS, ALL_KEYS)?;
        l.windows_sandbox = parse_opt(w.get("sandbox"))?;
        l.windows_private_desktop = bool_opt(w.get("private_desktop"))?;
    }
    Ok(l)
}

fn invalid_at(at: &Location, problem: String) -> Error {
    Error::InvalidValue { at: at.clone(), key: String::new(), problem }
}

/// Parses a string field with `FromStr` (modes, implementations).
pub(crate) fn parse_opt<T>(f: Option<Field<'_, '_>>) -> Result<Option<Sourced<T>>, Error>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(f) = f else { return Ok(None) };
    let v = f.as_str()?.parse::<T>().map_err(|e| f.invalid(e.to_string()))?;
    Ok(Some(Sourced::new(v, f.source())))
}

fn bool_opt(f: Option<Field<'_, '_>>) -> Result<Option<Sourced<bool>>, Error> {
    f.map(|f| Ok(Sourced::new(f.as_bool()?, f.source()))).transpose()
}

/// A list given as an array (replace) or as `{ add = [...], remove = [...] }` (edit).
fn edit<T>(
    f: Option<Field<'_, '_>>,
    conv: impl Fn(&str, &Location) -> Result<T, Error>,
) -> Result<Option<ListEdit<T>>, Error> {
    let Some(f) = f else { return Ok(None) };
    let fix_key = |e: Error| match e {
        Error::InvalidValue { at, key, problem } if key.is_empty() => {
            Error::InvalidValue { at, key: f.key().to_owned(), problem }
        }
        other => other,
    };
    let items = |field: &Field<'_, '_>| -> Result<Vec<Sourced<T>>, Error> {
        field
            .as_str_list()?
            .into_iter()
            .map(|(s, src, at)| Ok(Sourced::new(conv(&s, &at).map_err(fix_key)?, src)))
            .collect()
    };
    if f.is_table() {
        let t = f.as_table()?;
        t.check_keys(EDIT_KEYS, &[])?;
        let add = t.get("add").map(|a| items(&a)).transpose()?.unwrap_or_default();
        let remove = t.get("remove").map(|r| items(&r)).transpose()?.unwrap_or_default();
        Ok(Some(ListEdit::Edit { add, remove: remove.into_iter().map(|s| s.value).collect() }))
    } else {
        Ok(Some(ListEdit::Replace(items(&f)?)))
    }
}

fn path_edit(f: Option<Field<'_, '_>>, env: &HostEnv) -> Result<Option<ListEdit<PathBuf>>, Error> {
    edit(f, |s, at| expand_at(s, at, env))
}

fn path_list(f: &Field<'_, '_>, env: &HostEnv) -> Result<Vec<Sourced<PathBuf>>, Error> {
    f.as_str_list()?.into_iter().map(|(s, src, at)| Ok(Sourced::new(expand_at(&s, &at, env)?, src))).collect()
}

/// Expands `~` and `$VAR` in a configured path, with the error pointing at the value.
pub(crate) fn expand_at(s: &str, at: &Location, env: &HostEnv) -> Result<PathBuf, Error> {
    if s.is_empty() {
        return Err(invalid_at(at, "a path may not be empty".to_owned()));
    }
    expand(s, env).map_err(|e| match e {
        ExpandError::NoHome => Error::HomeUnknown,
        ExpandError::Unset(var) => Error::UndefinedVariable { at: at.clone(), value: s.to_owned(), var },
    })
}

fn env_pattern(s: &str, at: &Location) -> Result<String, Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'*') {
        return Err(invalid_at(at, format!("`{s}` is not a variable name or pattern (letters, digits, `_` and `*`)")));
    }
    Ok(s.to_owned())
}

/// `600`, `"600s"`, `"10m"`, `"2h"`.
fn duration(f: &Field<'_, '_>) -> Result<Duration, Error> {
    let secs = match f.as_u64() {
        Ok(n) => n,
        Err(_) => {
            let s = f.as_str().map_err(|_| f.invalid("expected seconds as an integer or a string like \"10m\""))?;
            parse_duration(s).ok_or_else(|| {
                f.invalid(format!("`{s}` is not a duration; write seconds (`600`) or `\"30s\"`, `\"10m\"`, `\"2h\"`"))
            })?
        }
    };
    if secs == 0 {
        return Err(f.invalid("the timeout must be at least 1 second"));
    }
    if secs > crate::MAX_TIMEOUT_SECS {
        return Err(f.invalid(format!("the timeout must be at most a year ({} seconds)", crate::MAX_TIMEOUT_SECS)));
    }
    Ok(Duration::from_secs(secs))
}

/// Parses `30s`, `10m`, `2h` or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b's' => (&s[..s.len() - 1], 1),
        b'm' => (&s[..s.len() - 1], 60),
        b'h' => (&s[..s.len() - 1], 3600),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// `1073741824`, `"512MiB"`, `"2GiB"`, `"1G"`.
fn bytes(f: &Field<'_, '_>) -> Result<u64, Error> {
    if let Ok(n) = f.as_u64() {
        return Ok(n);
    }
    let s = f.as_str().map_err(|_| f.invalid("expected bytes as an integer or a string like \"2GiB\""))?;
    parse_bytes(s)
        .ok_or_else(|| f.invalid(format!("`{s}` is not a size; write bytes or e.g. `\"512MiB\"`, `\"2GiB\"`")))
}

/// Parses sizes with binary suffixes (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`).
pub(crate) fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}
