//! Turning configured path strings into absolute, canonical paths.
//!
//! Rules are matched against canonical paths on every platform (symlinks resolved once, at
//! policy build time), so `ln -s ~/.ssh ws/keys` cannot dodge a deny-read rule written as
//! `~/.ssh`. A path that does not exist yet keeps its missing tail after its longest existing,
//! canonicalized ancestor.

use std::collections::BTreeMap;
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
        let home = vars.get("HOME").or_else(|| vars.get("USERPROFILE")).map(PathBuf::from);
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
    let parts: Vec<Component<'_>> = path.components().collect();
    for split in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..split].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&prefix) {
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
}
