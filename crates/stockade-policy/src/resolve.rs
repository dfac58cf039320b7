//! Resolution: built-in defaults <- config file <- profile <- command line, then requirements.
//!
//! The result is a [`Policy`] with absolute, canonical paths and the provenance of every value.
//! Reading files is separate ([`load`]) from combining them ([`resolve`]) so the combination is
//! tested without touching the user's real configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config_file::{ConfigFile, Layer, ListEdit, ReadableSpec};
use crate::defaults;
use crate::error::Error;
use crate::host_rule::HostRule;
use crate::locations::Locations;
use crate::paths::{absolutize, canonicalize_lenient, expand, Canonicalizer, HostEnv};
use crate::policy::*;
use crate::provenance::{Provenance, Source, Sourced};
use crate::requirements::RequirementsFile;

/// Values given on the command line. Each one wins over the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `-C DIR`: the workspace and the command's working directory.
    pub workspace: Option<PathBuf>,
    /// `-s MODE`.
    pub mode: Option<Mode>,
    /// `-w PATH`, repeatable: extra writable roots.
    pub writable_roots: Vec<PathBuf>,
    /// `--deny-read PATH`, repeatable: extra deny-read paths.
    pub deny_read: Vec<PathBuf>,
    /// `-n off|on`.
    pub network: Option<NetworkMode>,
    /// `--allow-host HOST[:PORT]`, repeatable; implies network mode `allow`.
    pub allow_hosts: Vec<String>,
    /// `-p PROFILE`.
    pub profile: Option<String>,
    /// `--timeout SECS`.
    pub timeout: Option<Duration>,
    /// `--implementation NAME` (Linux only; ignored elsewhere).
    pub linux_implementation: Option<LinuxImplementation>,
}

/// The text of one configuration or requirements file, already read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
}

impl FileText {
    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn read_optional(path: &Path) -> Result<Option<FileText>, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(FileText { path: path.to_owned(), text })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::ReadFile { path: path.to_owned(), source }),
        }
    }

    /// Reads `path`, which must exist.
    pub fn read(path: &Path) -> Result<FileText, Error> {
        std::fs::read_to_string(path)
            .map(|text| FileText { path: path.to_owned(), text })
            .map_err(|source| Error::ReadFile { path: path.to_owned(), source })
    }
}

/// Reads the configuration and requirements files and resolves the policy.
///
/// * `config`: `--config FILE` if given (must exist), else the user config location (optional).
/// * `extra_requirements`: `--requirements FILE`s; they are checked *in addition to* the system
///   file, which no option or environment variable can replace.
pub fn load(
    overrides: &Overrides,
    config: Option<&Path>,
    extra_requirements: &[PathBuf],
    env: &HostEnv,
    locations: &Locations,
) -> Result<Policy, Error> {
    let config_text = match config {
        Some(p) => Some(FileText::read(&absolutize(p, &env.cwd))?),
        None => locations.user_config.as_deref().map(FileText::read_optional).transpose()?.flatten(),
    };
    let mut reqs = Vec::new();
    if let Some(sys) = FileText::read_optional(&locations.system_requirements)? {
        reqs.push(sys);
    }
    for p in extra_requirements {
        reqs.push(FileText::read(&absolutize(p, &env.cwd))?);
    }
    resolve(overrides, config_text.as_ref(), &reqs, env, locations)
}

/// Combines already-read files into a policy. See the module docs for the order.
pub fn resolve(
    overrides: &Overrides,
    config: Option<&FileText>,
    requirements: &[FileText],
    env: &HostEnv,
    locations: &Locations,
) -> Result<Policy, Error> {
    let config = config.map(|c| ConfigFile::parse(&c.path, &c.text, env)).transpose()?;
    let reqs = requirements
        .iter()
        .map(|r| Ok((r.path.clone(), RequirementsFile::parse(&r.path, &r.text, env)?)))
        .collect::<Result<Vec<_>, Error>>()?;

    let workspace = resolve_workspace(overrides, env)?;
    let mut d = Draft::defaults(env, locations)?;
    let mut prov = Provenance::default();
    prov.set(
        "workspace",
        if overrides.workspace.is_some() { cli("-C") } else { Source::Derived { reason: "current directory".into() } },
    );

    if let Some(cfg) = &config {
        d.apply(&cfg.base, &mut prov);
        let chosen = match &overrides.profile {
            Some(name) => Some(Sourced::new(name.clone(), cli("--profile"))),
            None => cfg.default_profile.clone(),
        };
        if let Some(name) = chosen {
            let layer = cfg.profiles.get(&name.value).ok_or_else(|| Error::UnknownProfile {
                name: name.value.clone(),
                available: cfg.profiles.keys().cloned().collect(),
            })?;
            prov.set("profile", name.source.clone());
            d.apply(layer, &mut prov);
        }
    } else if let Some(name) = &overrides.profile {
        return Err(Error::UnknownProfile { name: name.clone(), available: Vec::new() });
    }
    d.apply(&cli_layer(overrides, &d)?, &mut prov);

    // Requirements' mandatory lists go in after every user layer, so none can remove them.
    for (_, r) in &reqs {
        ListEdit::Edit { add: r.mandatory_deny_read.clone(), remove: vec![] }.apply(&mut d.deny_read);
        ListEdit::Edit { add: r.mandatory_protected.clone(), remove: vec![] }.apply(&mut d.protected);
    }

    let mut policy = d.finish(&workspace, locations, prov)?;
    for (_, r) in &reqs {
        check_requirements(&mut policy, r)?;
    }
    for file in config.iter().map(|c| &c.path).chain(reqs.iter().map(|(p, _)| p)) {
        let file = canonicalize_lenient(&absolutize(file, &env.cwd));
        if let Some(root) = policy.filesystem.writable_paths().find(|r| file.starts_with(r)) {
            return Err(Error::PolicyFileWritable { file, root: root.to_owned() });
        }
    }
    Ok(policy)
}

fn cli(flag: &str) -> Source {
    Source::Cli { flag: flag.to_owned() }
}

fn resolve_workspace(o: &Overrides, env: &HostEnv) -> Result<PathBuf, Error> {
    let given = o.workspace.clone().unwrap_or_else(|| env.cwd.clone());
    let abs = absolutize(&given, &env.cwd);
    match std::fs::metadata(&abs) {
        Ok(m) if m.is_dir() => std::fs::canonicalize(&abs).map_err(|source| Error::Workspace { path: given, source }),
        Ok(_) => Err(Error::Workspace {
            path: given,
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        }),
        Err(source) => Err(Error::Workspace { path: given, source }),
    }
}

/// The command line as one more layer.
fn cli_layer(o: &Overrides, d: &Draft) -> Result<Layer, Error> {
    let mut l = Layer { mode: o.mode.map(|m| Sourced::new(m, cli("--sandbox"))), ..Layer::default() };
    if !o.writable_roots.is_empty() {
        if o.mode == Some(Mode::ReadOnly) {
            return Err(Error::Conflict { first: "`--sandbox read-only`".into(), second: "`--writable`".into() });
        }
        l.writable_roots = Some(ListEdit::Edit {
            add: o.writable_roots.iter().map(|p| Sourced::new(p.clone(), cli("--writable"))).collect(),
            remove: vec![],
        });
    }
    if !o.deny_read.is_empty() {
        l.deny_read = Some(ListEdit::Edit {
            add: o.deny_read.iter().map(|p| Sourced::new(p.clone(), cli("--deny-read"))).collect(),
            remove: vec![],
        });
    }
    if !o.allow_hosts.is_empty() {
        if let Some(n) = o.network.filter(|n| *n != NetworkMode::Allow) {
            return Err(Error::Conflict { first: format!("`--network {n}`"), second: "`--allow-host`".into() });
        }
        let rules = o
            .allow_hosts
            .iter()
            .map(|h| {
                h.parse::<HostRule>()
                    .map(|r| Sourced::new(r, cli("--allow-host")))
                    .map_err(|e| Error::InvalidFlag { flag: "--allow-host".into(), problem: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        l.network_allow = Some(ListEdit::Edit { add: rules, remove: vec![] });
        l.network_mode = Some(Sourced::new(NetworkMode::Allow, cli("--allow-host")));
    }
    if let Some(n) = o.network {
        if n == NetworkMode::Allow && o.allow_hosts.is_empty() && d.network_allow.is_empty() {
            return Err(Error::InvalidFlag {
                flag: "--network".into(),
                problem: "`allow` needs at least one `--allow-host`".into(),
            });
        }
        l.network_mode = Some(Sourced::new(n, cli("--network")));
    }
    l.timeout = o.timeout.map(|t| Sourced::new(t, cli("--timeout")));
    l.linux_implementation = o.linux_implementation.map(|i| Sourced::new(i, cli("--implementation")));
    Ok(l)
}

/// The policy being built: defaults with layers applied, paths not yet resolved.
struct Draft {
    mode: Sourced<Mode>,
    readable: Sourced<ReadableSpec>,
    deny_read: Vec<Sourced<PathBuf>>,
    writable_roots: Vec<Sourced<PathBuf>>,
    protected: Vec<Sourced<PathBuf>>,
    deny_write: Vec<Sourced<PathBuf>>,
    protect_git_pointer: Sourced<bool>,
    private_tmp: Sourced<bool>,
    network_mode: Sourced<NetworkMode>,
    network_allow: Vec<Sourced<HostRule>>,
    network_deny: Vec<Sourced<HostRule>>,
    timeout: Option<Sourced<Duration>>,
    memory: Option<Sourced<u64>>,
    max_processes: Option<Sourced<u32>>,
    max_open_files: Option<Sourced<u32>>,
    env_allow: Vec<Sourced<String>>,
    env_deny: Vec<Sourced<String>>,
    env_set: Vec<Sourced<(String, String)>>,
    linux_implementation: Sourced<LinuxImplementation>,
    linux_allow_fallback: Sourced<bool>,
    windows_sandbox: Sourced<WindowsImplementation>,
    windows_private_desktop: Sourced<bool>,
}

fn default<T>(v: T) -> Sourced<T> {
    Sourced::new(v, Source::Default)
}

impl Draft {
    fn defaults(env: &HostEnv, locations: &Locations) -> Result<Self, Error> {
        // The built-in deny lists are home-relative (`~/.ssh`, `~/.bashrc`): without a home
        // directory they would silently protect nothing, so resolution stops instead. A home
        // that is empty or relative is as good as none (`HostEnv::from_process` drops it).
        let home_list = |l: &[&str]| -> Result<Vec<Sourced<PathBuf>>, Error> {
            if env.home.is_none() {
                return Err(Error::HomeUnknown);
            }
            l.iter().map(|s| expand(s, env).map(default).map_err(|_| Error::HomeUnknown)).collect()
        };
        let strs = |l: &[&str]| l.iter().map(|s| default((*s).to_owned())).collect();
        Ok(Draft {
            mode: default(Mode::WorkspaceWrite),
            readable: default(ReadableSpec::All),
            deny_read: {
                let mut l = home_list(defaults::DENY_READ)?;
                l.extend(home_list(locations.platform_deny_read)?);
                l
            },
            writable_roots: Vec::new(),
            protected: defaults::PROTECTED.iter().map(|s| default(PathBuf::from(s))).collect(),
            deny_write: home_list(defaults::DENY_WRITE)?,
            protect_git_pointer: default(true),
            private_tmp: default(true),
            network_mode: default(NetworkMode::Off),
            network_allow: Vec::new(),
            network_deny: Vec::new(),
            timeout: None,
            memory: None,
            max_processes: Some(default(defaults::MAX_PROCESSES)),
            max_open_files: Some(default(defaults::MAX_OPEN_FILES)),
            env_allow: strs(defaults::ENV_ALLOW),
            env_deny: strs(defaults::ENV_DENY),
            env_set: Vec::new(),
            linux_implementation: default(LinuxImplementation::Namespaces),
            linux_allow_fallback: default(false),
            windows_sandbox: default(WindowsImplementation::Elevated),
            windows_private_desktop: default(true),
        })
    }

    fn apply(&mut self, l: &Layer, prov: &mut Provenance) {
        fn set<T: Clone>(slot: &mut Sourced<T>, v: &Option<Sourced<T>>, key: &str, prov: &mut Provenance) {
            if let Some(v) = v {
                *slot = v.clone();
                prov.set(key, v.source.clone());
            }
        }
        fn set_opt<T: Clone>(slot: &mut Option<Sourced<T>>, v: &Option<Sourced<T>>, key: &str, prov: &mut Provenance) {
            if let Some(v) = v {
                *slot = Some(v.clone());
                prov.set(key, v.source.clone());
            }
        }
        fn edit<T: PartialEq + Clone>(list: &mut Vec<Sourced<T>>, e: &Option<ListEdit<T>>) {
            if let Some(e) = e {
                e.apply(list);
            }
        }
        set(&mut self.mode, &l.mode, "mode", prov);
        set(&mut self.readable, &l.readable, "filesystem.readable", prov);
        edit(&mut self.deny_read, &l.deny_read);
        edit(&mut self.writable_roots, &l.writable_roots);
        edit(&mut self.protected, &l.protected);
        edit(&mut self.deny_write, &l.deny_write);
        set(&mut self.protect_git_pointer, &l.protect_git_pointer, "filesystem.protect_git_pointer", prov);
        set(&mut self.private_tmp, &l.private_tmp, "filesystem.private_tmp", prov);
        set(&mut self.network_mode, &l.network_mode, "network.mode", prov);
        edit(&mut self.network_allow, &l.network_allow);
        edit(&mut self.network_deny, &l.network_deny);
        set_opt(&mut self.timeout, &l.timeout, "process.timeout", prov);
        set_opt(&mut self.memory, &l.memory, "process.memory", prov);
        set_opt(&mut self.max_processes, &l.max_processes, "process.max_processes", prov);
        set_opt(&mut self.max_open_files, &l.max_open_files, "process.max_open_files", prov);
        edit(&mut self.env_allow, &l.env_allow);
        edit(&mut self.env_deny, &l.env_deny);
        for s in &l.env_set {
            self.env_set.retain(|e| e.value.0 != s.value.0);
            self.env_set.push(s.clone());
        }
        set(&mut self.linux_implementation, &l.linux_implementation, "linux.implementation", prov);
        set(&mut self.linux_allow_fallback, &l.linux_allow_fallback, "linux.allow_fallback", prov);
        set(&mut self.windows_sandbox, &l.windows_sandbox, "windows.sandbox", prov);
        set(&mut self.windows_private_desktop, &l.windows_private_desktop, "windows.private_desktop", prov);
    }

    /// Resolves paths against the workspace and assembles the policy.
    fn finish(self, workspace: &Path, locations: &Locations, mut prov: Provenance) -> Result<Policy, Error> {
        let mut paths = Canonicalizer::default();
        let canon = |list: Vec<Sourced<PathBuf>>, paths: &mut Canonicalizer| -> Vec<Sourced<PathBuf>> {
            let mut out: Vec<Sourced<PathBuf>> = Vec::new();
            for s in list {
                let p = paths.lenient(&absolutize(&s.value, workspace));
                if !out.iter().any(|o| o.value.as_os_str() == p.as_os_str()) {
                    out.push(Sourced::new(p, s.source));
                }
            }
            out
        };

        // `-w` with read-only mode from a file or profile: as with `-s read-only -w`, the user
        // asked for a writable directory that this mode would silently drop.
        if self.mode.value == Mode::ReadOnly {
            if let Some(w) = self.writable_roots.iter().find(|s| matches!(s.source, Source::Cli { .. })) {
                return Err(Error::Conflict {
                    first: format!("read-only mode (from {})", self.mode.source),
                    second: format!("`--writable {}`", w.value.display()),
                });
            }
        }
        let mut writable_roots = Vec::new();
        if self.mode.value != Mode::ReadOnly {
            writable_roots.push(Sourced::new(workspace.to_owned(), prov.get("workspace")));
            for s in self.writable_roots {
                let abs = absolutize(&s.value, workspace);
                let real = std::fs::canonicalize(&abs)
                    .map_err(|source| Error::WritableRootMissing { path: s.value.clone(), source })?;
                if !real.is_dir() {
                    return Err(Error::WritableRootMissing {
                        path: s.value,
                        source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
                    });
                }
                if !writable_roots.iter().any(|r: &Sourced<PathBuf>| r.value.as_os_str() == real.as_os_str()) {
                    writable_roots.push(Sourced::new(real, s.source));
                }
            }
        }
        if self.mode.value == Mode::WorkspaceWrite {
            let home = locations.home.as_deref().map(|h| paths.lenient(h));
            for root in &writable_roots {
                if root.value.parent().is_none() {
                    return Err(Error::WritableRootTooBroad {
                        path: root.value.clone(),
                        reason: "it is the filesystem root",
                    });
                }
                if home.as_deref() == Some(root.value.as_path()) {
                    return Err(Error::WritableRootTooBroad {
                        path: root.value.clone(),
                        reason: "it is your home directory, where shell startup files and credentials live",
                    });
                }
            }
        }

        // Protected entries: relative ones apply inside every writable root.
        let mut protected: Vec<Sourced<PathBuf>> = Vec::new();
        for entry in self.protected {
            let targets: Vec<PathBuf> = if entry.value.is_absolute() {
                vec![entry.value.clone()]
            } else {
                writable_roots.iter().map(|r| r.value.join(&entry.value)).collect()
            };
            for t in targets {
                // Not canonicalized: a protected path that is a symlink must reach the backend
                // as written, so that it refuses instead of protecting the link's target.
                let t = absolutize(&t, workspace);
                if !protected.iter().any(|p| p.value.as_os_str() == t.as_os_str()) {
                    protected.push(Sourced::new(t, entry.source.clone()));
                }
            }
        }
        if self.protect_git_pointer.value {
            for root in &writable_roots {
                let git = root.value.join(".git");
                if std::fs::symlink_metadata(&git).is_ok_and(|m| !m.is_dir())
                    && !protected.iter().any(|p| p.value == git)
                {
                    protected.push(Sourced::new(
                        git,
                        Source::Derived {
                            reason: "`.git` is a file pointer or link (filesystem.protect_git_pointer)".into(),
                        },
                    ));
                }
            }
        }
        prov.set("filesystem.protect_git_pointer", self.protect_git_pointer.source.clone());

        let mut deny_write = canon(self.deny_write, &mut paths);
        for dir in [&locations.user_config_dir, &locations.state_dir].into_iter().flatten() {
            let p = paths.lenient(dir);
            if !deny_write.iter().any(|d| d.value.as_os_str() == p.as_os_str()) {
                deny_write
                    .push(Sourced::new(p, Source::Derived { reason: "stockade's own configuration and state".into() }));
            }
        }

        let readable = match self.readable.value {
            ReadableSpec::All => Readable::All,
            ReadableSpec::Roots(r) => Readable::Roots(canon(r, &mut paths)),
        };
        let policy = Policy {
            mode: self.mode.value,
            workspace: workspace.to_owned(),
            filesystem: FsPolicy {
                readable,
                deny_read: canon(self.deny_read, &mut paths),
                writable_roots,
                protected,
                deny_write,
                private_tmp: self.private_tmp.value,
            },
            network: NetworkPolicy {
                mode: self.network_mode.value,
                allow: self.network_allow,
                deny: self.network_deny,
            },
            process: ProcessLimits {
                timeout: self.timeout.map(|t| t.value),
                memory_bytes: self.memory.map(|m| m.value),
                max_processes: self.max_processes.map(|m| m.value),
                max_open_files: self.max_open_files.map(|m| m.value),
            },
            env: EnvPolicy { allow: self.env_allow, deny: self.env_deny, set: self.env_set },
            linux: LinuxSettings {
                implementation: self.linux_implementation.value,
                allow_fallback: self.linux_allow_fallback.value,
                allowed_implementations: LinuxImplementation::ALL.to_vec(),
            },
            windows: WindowsSettings {
                sandbox: self.windows_sandbox.value,
                private_desktop: self.windows_private_desktop.value,
                allowed_implementations: WindowsImplementation::ALL.to_vec(),
            },
            allow_escalation: true,
            provenance: prov,
        };
        if policy.network.mode == NetworkMode::Allow && policy.network.allow.is_empty() {
            return Err(Error::Conflict {
                first: "network mode `allow`".into(),
                second: "an empty `network.allow` list (name at least one host)".into(),
            });
        }
        Ok(policy)
    }
}

/// Checks the policy against one requirements file, narrowing what the file narrows.
fn check_requirements(p: &mut Policy, r: &RequirementsFile) -> Result<(), Error> {
    let names = |v: &[String]| v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    if let Some(req) = &r.allowed_modes {
        if !req.value.contains(&p.mode) {
            let allowed: Vec<String> = req.value.iter().map(|m| m.to_string()).collect();
            return Err(req.refuse(format!("mode `{}`", p.mode), format!("only {}", names(&allowed))));
        }
    }
    if let Some(req) = &r.allow_escalation {
        if !req.value {
            p.allow_escalation = false;
            p.provenance.set("allow_escalation", req.source());
        }
    }
    if p.network.mode == NetworkMode::On {
        let forbidding =
            match (&r.allow_on, &r.allowed_hosts) {
                (Some(on), _) if !on.value => {
                    Some(on.refuse("network mode `on`", "`off`, or `allow` within the host ceiling"))
                }
                (None, Some(hosts)) => Some(hosts.refuse(
                    "network mode `on`",
                    "only the listed hosts (set `network.allow_on = true` to permit `on`)",
                )),
                _ => None,
            };
        if let Some(e) = forbidding {
            return Err(e);
        }
    }
    if let (NetworkMode::Allow, Some(ceiling)) = (p.network.mode, &r.allowed_hosts) {
        for rule in &p.network.allow {
            if !ceiling.value.iter().any(|c| rule.value.is_within(c)) {
                let allowed: Vec<String> = ceiling.value.iter().map(|c| c.to_string()).collect();
                return Err(ceiling.refuse(
                    format!("host `{}` (from {})", rule.value, rule.source),
                    format!("only {}", names(&allowed)),
                ));
            }
        }
    }
    if let Some(req) = &r.linux_allowed {
        p.linux.allowed_implementations.retain(|i| req.value.contains(i));
        if !p.linux.allowed_implementations.contains(&p.linux.implementation) {
            let allowed: Vec<String> = req.value.iter().map(|i| i.to_string()).collect();
            match p.provenance.get("linux.implementation") {
                // `landlock-only` keeps fewer promises, so a requirement alone does not choose
                // it: the user's config must select it or allow falling back to it. Only where
                // a Linux implementation will run: elsewhere, and without a sandbox, the setting
                // does nothing, and one requirements file may serve every platform.
                Source::Default
                    if p.linux.allowed_implementations == [LinuxImplementation::LandlockOnly]
                        && !p.linux.allow_fallback
                        && cfg!(target_os = "linux")
                        && p.mode != Mode::DangerFullAccess =>
                {
                    return Err(req.refuse(
                        "Linux implementation `namespaces` (the default); `landlock-only`, the one these \
                         requirements allow, keeps fewer promises (see `stockade doctor`) and runs only when \
                         your config selects it (`[linux] implementation = \"landlock-only\"`) or allows \
                         falling back to it (`allow_fallback = true`)",
                        format!("only {}", names(&allowed)),
                    ));
                }
                Source::Default if !p.linux.allowed_implementations.is_empty() => {
                    p.linux.implementation = p.linux.allowed_implementations[0];
                    p.provenance.set("linux.implementation", req.source());
                }
                _ => {
                    return Err(req.refuse(
                        format!("Linux implementation `{}`", p.linux.implementation),
                        format!("only {}", names(&allowed)),
                    ))
                }
            }
        }
    }
    if let Some(req) = &r.windows_allowed {
        p.windows.allowed_implementations.retain(|i| req.value.contains(i));
        if !p.windows.allowed_implementations.contains(&p.windows.sandbox) {
            let allowed: Vec<String> = req.value.iter().map(|i| i.to_string()).collect();
            match p.provenance.get("windows.sandbox") {
                Source::Default if !p.windows.allowed_implementations.is_empty() => {
                    p.windows.sandbox = p.windows.allowed_implementations[0];
                    p.provenance.set("windows.sandbox", req.source());
                }
                _ => {
                    return Err(req.refuse(
                        format!("Windows sandbox `{}`", p.windows.sandbox),
                        format!("only {}", names(&allowed)),
                    ))
                }
            }
        }
    }
    if let Some(req) = &r.windows_private_desktop {
        if req.value && !p.windows.private_desktop {
            return Err(req.refuse("`windows.private_desktop = false`", "only private desktops"));
        }
        if req.value {
            p.provenance.set("windows.private_desktop", req.source());
        }
    }
    Ok(())
}
