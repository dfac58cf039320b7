//! Turning configured path strings into absolute, canonical paths.
//!
//! Rules are matched against canonical paths on every platform (symlinks resolved once, at
//! policy build time), so `ln -s ~/.ssh ws/keys` cannot dodge a deny-read rule written as
//! `~/.ssh`. A path that does not exist yet keeps its missing tail after its longest existing,
//! canonicalized ancestor.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

/// The parts of the host environment resolution depends on. Gathered once by the caller so
/// resolution is repeatable in tests.
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    /// The user's home directory, if known.
    pub home: Option<PathBuf>,
    /// Environment variables available to `$VAR` expansion in configured paths.
    pub vars: BTreeMap<String, String>,
    /// The current directory (default workspace).
    pub cwd: PathBuf,
}

impl HostEnv {
    /// Reads the real process environment.
    pub fn from_process() -> std::io::Result<Self> {
        let vars: BTreeMap<String, String> =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        // Only an absolute path names a home: `HOME=` or `HOME=rel` would move every `~` rule
        // somewhere else (resolution then stops with `home_unknown`).
        let home = vars.get("HOME").or_else(|| vars.get("USERPROFILE")).map(PathBuf::from).filter(|h| h.is_absolute());
        Ok(HostEnv { home, vars, cwd: std::env::current_dir()? })
    }
}

/// Why a path could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `~` used but the home directory is unknown.
    NoHome,
    /// `$NAME` used but not set.
    Unset(String),
}

/// Expands a leading `~` or `~/` and every `$NAME` / `${NAME}`. Other characters are literal.
pub(crate) fn expand(raw: &str, env: &HostEnv) -> Result<PathBuf, ExpandError> {
    let mut out = String::new();
    let rest = if raw == "~" || raw.starts_with("~/") {
        let home = env.home.as_ref().ok_or(ExpandError::NoHome)?;
        out.push_str(&home.to_string_lossy());
        &raw[1..]
    } else {
        raw
    };
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let (name, consumed) = if rest[i + 1..].starts_with('{') {
            match rest[i + 2..].find('}') {
                Some(end) => (&rest[i + 2..i + 2 + end], end + 2),
                None => return Err(ExpandError::Unset(rest[i + 2..].to_owned())),
            }
        } else {
            let len =
                rest[i + 1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len() - i - 1);
            (&rest[i + 1..i + 1 + len], len)
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        let value = env.vars.get(name).ok_or_else(|| ExpandError::Unset(name.to_owned()))?;
        out.push_str(value);
        for _ in 0..consumed {
            chars.next();
        }
    }
    Ok(PathBuf::from(out))
}

/// Makes `path` absolute against `base` and removes `.` components; `..` is kept for
/// [`canonicalize_lenient`] to resolve against the real tree.
pub fn absolutize(path: &Path, base: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    joined.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

/// Canonicalizes the longest existing ancestor of an absolute `path` and appends the rest,
/// normalising `..` lexically in the part that does not exist.
pub fn canonicalize_lenient(path: &Path) -> PathBuf {
    Canonicalizer::default().lenient(path)
}

/// Canonicalizes many paths that share ancestors (a policy names dozens below the home
/// directory) with one `lstat` per distinct component, instead of `realpath`'s `readlink` of
/// every component of every path. Only symlinks are handed to `realpath`. Meant for one
/// resolution: it remembers what it saw, so the tree must not change while it is used.
#[derive(Debug, Default)]
pub struct Canonicalizer {
    // Keyed by bytes: hashing a `Path` walks its components.
    known: HashMap<std::ffi::OsString, Option<PathBuf>>,
}

impl Canonicalizer {
    /// [`canonicalize_lenient`], sharing the lookups of earlier calls.
    pub fn lenient(&mut self, path: &Path) -> PathBuf {
        let parts: Vec<Component<'_>> = path.components().collect();
        for split in (1..=parts.len()).rev() {
            let prefix: PathBuf = parts[..split].iter().collect();
            if let Some(mut out) = self.existing(&prefix) {
                for part in &parts[split..] {
                    match part {
                        Component::ParentDir => {
                            out.pop();
                        }
                        Component::Normal(name) => out.push(name),
                        _ => {}
                    }
                }
                return out;
            }
        }
        path.to_path_buf()
    }

    /// The canonical form of an existing absolute path; `None` when it does not exist or
    /// cannot be resolved (what `realpath` would fail on).
    pub fn existing(&mut self, path: &Path) -> Option<PathBuf> {
        if let Some(known) = self.known.get(path.as_os_str()) {
            return known.clone();
        }
        let found = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => self.existing(parent).and_then(|dir| {
                let candidate = dir.join(name);
                match std::fs::symlink_metadata(&candidate) {
                    Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&candidate).ok(),
                    Ok(_) => Some(candidate),
                    Err(_) => None,
                }
            }),
            // The root, or a path ending in `..`.
            _ => std::fs::canonicalize(path).ok(),
        };
        self.known.insert(path.as_os_str().to_owned(), found.clone());
        found
    }
}

/// Whether `path` is `root` or inside it (component-wise, on canonical paths).
pub fn is_within(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HostEnv {
        let mut vars = BTreeMap::new();
        vars.insert("PROJ".to_owned(), "/srv/p".to_owned());
        HostEnv { home: Some("/home/u".into()), vars, cwd: "/cwd".into() }
    }

    #[test]
    fn expands_home_and_vars() {
        assert_eq!(expand("~", &env()), Ok("/home/u".into()));
        assert_eq!(expand("~/.ssh", &env()), Ok("/home/u/.ssh".into()));
        assert_eq!(expand("~user/x", &env()), Ok("~user/x".into()));
        assert_eq!(expand("$PROJ/a", &env()), Ok("/srv/p/a".into()));
        assert_eq!(expand("${PROJ}x/a", &env()), Ok("/srv/px/a".into()));
        assert_eq!(expand("a$/b", &env()), Ok("a$/b".into()));
        assert_eq!(expand("$NOPE/a", &env()), Err(ExpandError::Unset("NOPE".into())));
        let no_home = HostEnv { home: None, ..env() };
        assert_eq!(expand("~/x", &no_home), Err(ExpandError::NoHome));
    }

    #[test]
    fn absolutize_and_lenient_canonicalize() {
        assert_eq!(absolutize(Path::new("a/./b"), Path::new("/w")), PathBuf::from("/w/a/b"));
        let dir = std::env::temp_dir().join(format!("stockade-paths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(canonicalize_lenient(&dir.join("x/../y/z")), real.join("y/z"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The caching canonicalizer agrees with `realpath` through symlinks (absolute, relative,
    /// chained, to files, dangling) and `..` after a symlink, however the calls are ordered.
    #[cfg(unix)]
    #[test]
    fn canonicalizer_agrees_with_realpath() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("stockade-canon-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real/sub")).unwrap();
        std::fs::write(dir.join("real/sub/f"), b"").unwrap();
        symlink(dir.join("real"), dir.join("abs")).unwrap();
        symlink("real/sub", dir.join("rel")).unwrap();
        symlink("abs", dir.join("chain")).unwrap();
        symlink("real/sub/f", dir.join("file")).unwrap();
        symlink("nowhere", dir.join("dangling")).unwrap();
        let probes = [
            "real/sub/f",
            "abs/sub",
            "abs/sub/f",
            "rel/f",
            "rel/..",
            "rel/../sub/f",
            "chain/sub/../sub",
            "file",
            "dangling",
            "dangling/x",
            "missing/a/b",
            "abs/missing/../sub",
            "real/sub/f/x",
        ];
        let mut shared = Canonicalizer::default();
        for order in [probes.to_vec(), probes.iter().rev().copied().collect()] {
            for p in order {
                let path = dir.join(p);
                let mut fresh = Canonicalizer::default();
                let got = shared.lenient(&path);
                assert_eq!(got, fresh.lenient(&path), "{p}");
                if let Ok(real) = std::fs::canonicalize(&path) {
                    assert_eq!(got, real, "{p}");
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
