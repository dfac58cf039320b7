//! Where stockade's files live on each platform (DESIGN.md, "Configuration files").
//!
//! The system requirements path is a constant per platform: no environment variable or option
//! can point stockade at another one, because whoever controls the environment (the agent)
//! must not be able to replace the administrator's constraints. Options may only *add*
//! requirements files.

use std::path::PathBuf;

use crate::paths::HostEnv;

/// The locations for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The user's home directory.
    pub home: Option<PathBuf>,
    /// The directory holding the user config (deny-written for sandboxed commands).
    pub user_config_dir: Option<PathBuf>,
    /// The user config file, read when it exists and `--config` is not given.
    pub user_config: Option<PathBuf>,
    /// The administrator's requirements file.
    pub system_requirements: PathBuf,
    /// stockade's state directory (ledgers, per-run temp dirs).
    pub state_dir: Option<PathBuf>,
    /// Secrets of this platform added to [`crate::defaults::DENY_READ`] (home-relative, like
    /// it): where macOS keeps browser profiles and shell history is not where Linux does.
    pub platform_deny_read: &'static [&'static str],
}

impl Locations {
    /// The locations for the platform this binary was built for.
    pub fn for_this_os(env: &HostEnv) -> Self {
        if cfg!(windows) {
            Self::windows(env)
        } else if cfg!(target_os = "macos") {
            Self::macos(env)
        } else {
            Self::linux(env)
        }
    }

    /// Linux and other Unix: XDG base directories.
    pub fn linux(env: &HostEnv) -> Self {
        let xdg = |var: &str, fallback: &str| {
            env.vars
                .get(var)
                .filter(|v| v.starts_with('/'))
                .map(PathBuf::from)
                .or_else(|| env.home.as_ref().map(|h| h.join(fallback)))
        };
        let config_dir = xdg("XDG_CONFIG_HOME", ".config").map(|d| d.join("stockade"));
        Locations {
            home: env.home.clone(),
            user_config: config_dir.as_ref().map(|d| d.join("config.toml")),
            user_config_dir: config_dir,
            system_requirements: PathBuf::from("/etc/stockade/requirements.toml"),
            state_dir: xdg("XDG_STATE_HOME", ".local/state").map(|d| d.join("stockade")),
            platform_deny_read: &[],
        }
    }

    /// macOS: `~/Library/Application Support`.
    pub fn macos(env: &HostEnv) -> Self {
        let support = env.home.as_ref().map(|h| h.join("Library/Application Support/stockade"));
        Locations {
            home: env.home.clone(),
            user_config: support.as_ref().map(|d| d.join("config.toml")),
            state_dir: support.as_ref().map(|d| d.join("state")),
            user_config_dir: support,
            system_requirements: PathBuf::from("/Library/Application Support/stockade/requirements.toml"),
            platform_deny_read: crate::defaults::DENY_READ_MACOS,
        }
    }

    /// Windows: `%APPDATA%`, `%ProgramData%`, `%LOCALAPPDATA%`.
    pub fn windows(env: &HostEnv) -> Self {
        let var = |v: &str| env.vars.get(v).map(PathBuf::from);
        let config_dir = var("APPDATA").map(|d| d.join("stockade"));
        // ProgramData is read from the environment only as a fallback; the default location is
        // fixed so a changed environment cannot hide the administrator's file.
        let program_data = PathBuf::from(r"C:\ProgramData");
        Locations {
            home: env.home.clone(),
            user_config: config_dir.as_ref().map(|d| d.join("config.toml")),
            user_config_dir: config_dir,
            system_requirements: program_data.join("stockade").join("requirements.toml"),
            state_dir: var("LOCALAPPDATA").map(|d| d.join("stockade")),
            platform_deny_read: &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_follows_xdg_but_not_for_requirements() {
        let mut env = HostEnv { home: Some("/home/u".into()), ..Default::default() };
        let l = Locations::linux(&env);
        assert_eq!(l.user_config, Some("/home/u/.config/stockade/config.toml".into()));
        assert_eq!(l.state_dir, Some("/home/u/.local/state/stockade".into()));
        env.vars.insert("XDG_CONFIG_HOME".into(), "/x".into());
        env.vars.insert("XDG_STATE_HOME".into(), "relative".into());
        let l = Locations::linux(&env);
        assert_eq!(l.user_config, Some("/x/stockade/config.toml".into()));
        assert_eq!(
            l.state_dir,
            Some("/home/u/.local/state/stockade".into()),
            "relative XDG paths are ignored per the spec"
        );
        assert_eq!(l.system_requirements, PathBuf::from("/etc/stockade/requirements.toml"));
    }
}
