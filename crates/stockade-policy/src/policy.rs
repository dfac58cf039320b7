//! The resolved, platform-neutral policy that every backend enforces.
//!
//! A [`Policy`] is the *result* of resolution (see [`crate::resolve()`]): all paths are absolute
//! and canonical, all defaults are filled in, requirements have been checked, and every value
//! knows where it came from. Backends never read configuration files themselves; they receive a
//! `Policy` and enforce exactly it, or refuse.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::host_rule::HostRule;
use crate::provenance::{Provenance, Sourced};

/// How much the sandboxed command may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Nothing may be written except the private temp dir.
    ReadOnly,
    /// The workspace and extra writable roots may be written (minus protected paths).
    WorkspaceWrite,
    /// No sandbox at all. Only when requirements allow it.
    DangerFullAccess,
}

impl Mode {
    /// All modes, in the order they are documented.
    pub const ALL: [Mode; 3] = [Mode::ReadOnly, Mode::WorkspaceWrite, Mode::DangerFullAccess];

    /// The name used in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::WorkspaceWrite => "workspace-write",
            Mode::DangerFullAccess => "danger-full-access",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, &Mode::ALL, Mode::as_str)
    }
}

/// Whether and how the command may reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// No network at all (loopback inside the sandbox still works where the platform can
    /// give the sandbox its own loopback).
    Off,
    /// Only the hosts named by [`NetworkPolicy::allow`], through stockade's proxy.
    Allow,
    /// Unrestricted network.
    On,
}

impl NetworkMode {
    /// All network modes, from narrowest to widest.
    pub const ALL: [NetworkMode; 3] = [NetworkMode::Off, NetworkMode::Allow, NetworkMode::On];

    /// The name used in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Off => "off",
            NetworkMode::Allow => "allow",
            NetworkMode::On => "on",
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkMode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, &NetworkMode::ALL, NetworkMode::as_str)
    }
}

/// The Linux enforcement implementations (see DESIGN.md, "Linux").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinuxImplementation {
    /// User, mount, pid, network, IPC and UTS namespaces plus Landlock and seccomp.
    Namespaces,
    /// Landlock and seccomp only, for hosts without user namespaces; keeps fewer promises.
    LandlockOnly,
}

impl LinuxImplementation {
    /// All implementations, strongest first.
    pub const ALL: [LinuxImplementation; 2] = [LinuxImplementation::Namespaces, LinuxImplementation::LandlockOnly];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            LinuxImplementation::Namespaces => "namespaces",
            LinuxImplementation::LandlockOnly => "landlock-only",
        }
    }
}

impl fmt::Display for LinuxImplementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LinuxImplementation {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, &LinuxImplementation::ALL, LinuxImplementation::as_str)
    }
}

/// The Windows enforcement implementations (see WINDOWS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowsImplementation {
    /// Dedicated sandbox users, firewall rules and WFP filters, set up once as administrator.
    Elevated,
    /// A write-restricted token only; cannot restrict reads or enforce network-off.
    Unelevated,
}

impl WindowsImplementation {
    /// All implementations, preferred first.
    pub const ALL: [WindowsImplementation; 2] = [WindowsImplementation::Elevated, WindowsImplementation::Unelevated];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowsImplementation::Elevated => "elevated",
            WindowsImplementation::Unelevated => "unelevated",
        }
    }
}

impl fmt::Display for WindowsImplementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WindowsImplementation {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, &WindowsImplementation::ALL, WindowsImplementation::as_str)
    }
}

/// A name that is not one of the accepted values; carries the accepted values for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What the user wrote.
    pub given: String,
    /// The accepted names.
    pub expected: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not one of: {}", self.given, self.expected.join(", "))
    }
}

impl std::error::Error for UnknownName {}

fn parse_name<T: Copy>(s: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|v| name(*v) == s)
        .ok_or_else(|| UnknownName { given: s.to_owned(), expected: all.iter().map(|v| name(*v)).collect() })
}

/// Which paths the command may read at all (before deny-read carve-outs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "roots", rename_all = "snake_case")]
pub enum Readable {
    /// Everything the user can read.
    All,
    /// Only these trees (plus the writable roots and what the platform needs to run programs).
    Roots(Vec<Sourced<PathBuf>>),
}

/// The filesystem part of a policy. All paths are absolute and canonical (for paths that do
/// not exist yet, the longest existing ancestor is canonical).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsPolicy {
    /// What may be read at all.
    pub readable: Readable,
    /// Trees that may not be read even though `readable` covers them (secrets).
    pub deny_read: Vec<Sourced<PathBuf>>,
    /// Trees the command may write. Empty in `read-only` mode. The first one is the workspace
    /// in `workspace-write` mode.
    pub writable_roots: Vec<Sourced<PathBuf>>,
    /// Paths inside writable roots that stay read-only, whether or not they exist yet.
    pub protected: Vec<Sourced<PathBuf>>,
    /// Paths that may never be written, wherever they are (shell rc files, stockade's own
    /// configuration and state). Inside a writable root they act like protected paths.
    pub deny_write: Vec<Sourced<PathBuf>>,
    /// Whether the command gets a private, initially empty temp directory.
    pub private_tmp: bool,
}

impl FsPolicy {
    /// Iterates over the writable roots as plain paths.
    pub fn writable_paths(&self) -> impl Iterator<Item = &Path> {
        self.writable_roots.iter().map(|s| s.value.as_path())
    }
}

/// The network part of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkPolicy {
    /// Off, allow-listed, or on.
    pub mode: NetworkMode,
    /// Hosts that may be reached in [`NetworkMode::Allow`].
    pub allow: Vec<Sourced<HostRule>>,
    /// Hosts that may never be reached; deny wins over allow.
    pub deny: Vec<Sourced<HostRule>>,
}

/// Resource limits for the whole process tree of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessLimits {
    /// Wall-clock limit; the whole tree is killed when it expires.
    pub timeout: Option<Duration>,
    /// Memory limit for the whole tree, in bytes.
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes (and threads) alive at once.
    pub max_processes: Option<u32>,
    /// Maximum number of open file descriptors per process (`RLIMIT_NOFILE`'s hard limit, which
    /// the command cannot raise). Per process, not per tree: it keeps one runaway program from
    /// holding an unbounded share of the host's file table, while `max_processes` bounds how
    /// many such programs there are.
    pub max_open_files: Option<u32>,
}

/// Which environment variables the command receives.
///
/// The command's environment is built from scratch: a host variable passes only when its name
/// matches an `allow` pattern and no `deny` pattern; `set` adds fixed values afterwards. See
/// [`crate::env_filter`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvPolicy {
    /// Name patterns (`*` wildcards) of variables that may pass from the host.
    pub allow: Vec<Sourced<String>>,
    /// Name patterns that never pass, even when allowed (secrets).
    pub deny: Vec<Sourced<String>>,
    /// Variables set to fixed values for the command.
    pub set: Vec<Sourced<(String, String)>>,
}

/// Settings that only the Linux backend reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinuxSettings {
    /// The implementation the user asked for.
    pub implementation: LinuxImplementation,
    /// Whether `run` may fall back to `landlock-only` when the chosen implementation is not
    /// available on this host.
    pub allow_fallback: bool,
    /// The implementations the requirements allow (all when there is no requirement).
    pub allowed_implementations: Vec<LinuxImplementation>,
}

impl LinuxSettings {
    /// The implementations `run` may use, in order of preference: the chosen one, then the
    /// fallback when allowed, each only if the requirements allow it.
    pub fn candidates(&self) -> Vec<LinuxImplementation> {
        let mut out = vec![self.implementation];
        if self.allow_fallback && self.implementation != LinuxImplementation::LandlockOnly {
            out.push(LinuxImplementation::LandlockOnly);
        }
        out.retain(|i| self.allowed_implementations.contains(i));
        out
    }
}

/// Settings that only the Windows backend reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowsSettings {
    /// The implementation the user asked for.
    pub sandbox: WindowsImplementation,
    /// Run each command on a private desktop (no window messages to the user's desktop).
    pub private_desktop: bool,
    /// The implementations the requirements allow (all when there is no requirement).
    pub allowed_implementations: Vec<WindowsImplementation>,
}

/// A fully resolved policy. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The sandbox mode.
    pub mode: Mode,
    /// The workspace: the command's working directory, and its first writable root in
    /// `workspace-write` mode.
    pub workspace: PathBuf,
    /// Filesystem rules.
    pub filesystem: FsPolicy,
    /// Network rules.
    pub network: NetworkPolicy,
    /// Resource limits.
    pub process: ProcessLimits,
    /// Environment rules.
    pub env: EnvPolicy,
    /// Linux-only settings.
    pub linux: LinuxSettings,
    /// Windows-only settings.
    pub windows: WindowsSettings,
    /// Whether a person may grant a wider policy for one command (future agent integration);
    /// requirements can forbid it.
    pub allow_escalation: bool,
    /// Where each scalar setting came from.
    pub provenance: Provenance,
}
