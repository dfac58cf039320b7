//! Policies for the profile tests, built by hand so they are identical on every machine
//! (resolution canonicalizes against the real file system, which differs between hosts).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use stockade_macos::{HostFacts, ProxyEndpoint, Tag};
use stockade_policy::defaults;
use stockade_policy::{
    EnvPolicy, FsPolicy, LinuxImplementation, LinuxSettings, Mode, NetworkMode, NetworkPolicy, Policy, ProcessLimits,
    Provenance, Readable, Source, Sourced, WindowsImplementation, WindowsSettings,
};

pub const HOME: &str = "/Users/dev";
pub const WS: &str = "/Users/dev/src/project";
pub const TMP: &str = "/private/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/stockade-0123abcd";
pub const PROXY_PORT: u16 = 38123;

fn d<T>(v: T) -> Sourced<T> {
    Sourced::new(v, Source::Default)
}

fn home_list(l: &[&str]) -> Vec<Sourced<PathBuf>> {
    l.iter().map(|s| d(PathBuf::from(s.replacen('~', HOME, 1)))).collect()
}

/// The built-in default policy as `resolve` produces it on a Mac for a user `dev` working in
/// `~/src/project` (a plain clone: `.git` is a directory).
pub fn default_policy() -> Policy {
    let ws = PathBuf::from(WS);
    let protected = defaults::PROTECTED.iter().map(|p| d(ws.join(p))).collect();
    let mut deny_write = home_list(defaults::DENY_WRITE);
    let support = Path::new(HOME).join("Library/Application Support/stockade");
    for p in [support.clone(), support.join("state")] {
        deny_write.push(Sourced::new(p, Source::Derived { reason: "stockade's own configuration and state".into() }));
    }
    Policy {
        mode: Mode::WorkspaceWrite,
        workspace: ws.clone(),
        filesystem: FsPolicy {
            readable: Readable::All,
            deny_read: [home_list(defaults::DENY_READ), home_list(defaults::DENY_READ_MACOS)].concat(),
            writable_roots: vec![d(ws)],
            protected,
            deny_write,
            private_tmp: true,
        },
        network: NetworkPolicy { mode: NetworkMode::Off, allow: vec![], deny: vec![] },
        process: ProcessLimits {
            timeout: None,
            memory_bytes: None,
            max_processes: Some(defaults::MAX_PROCESSES),
            max_open_files: Some(defaults::MAX_OPEN_FILES),
        },
        env: EnvPolicy {
            allow: defaults::ENV_ALLOW.iter().map(|s| d((*s).to_owned())).collect(),
            deny: defaults::ENV_DENY.iter().map(|s| d((*s).to_owned())).collect(),
            set: vec![],
        },
        linux: LinuxSettings {
            implementation: LinuxImplementation::Namespaces,
            allow_fallback: false,
            allowed_implementations: LinuxImplementation::ALL.to_vec(),
        },
        windows: WindowsSettings {
            sandbox: WindowsImplementation::Elevated,
            private_desktop: true,
            allowed_implementations: WindowsImplementation::ALL.to_vec(),
        },
        allow_escalation: true,
        provenance: Provenance::default(),
    }
}

/// `read-only`: no writable roots (and therefore no protected paths).
pub fn read_only_policy() -> Policy {
    let mut p = default_policy();
    p.mode = Mode::ReadOnly;
    p.filesystem.writable_roots.clear();
    p.filesystem.protected.clear();
    p
}

/// Reads limited to two roots, with a deny-read path inside one of them and an extra
/// writable root holding a deny-read path too.
pub fn roots_policy() -> Policy {
    let mut p = default_policy();
    p.filesystem.readable =
        Readable::Roots(vec![d(PathBuf::from("/Users/dev/src")), d(PathBuf::from("/Users/dev/.rustup"))]);
    p.filesystem.deny_read.push(d(PathBuf::from("/Users/dev/src/other/.env")));
    p.filesystem.writable_roots.push(d(PathBuf::from("/Users/dev/.cargo/registry")));
    p.filesystem.deny_read.push(d(PathBuf::from("/Users/dev/.cargo/registry/secrets/token")));
    p
}

pub fn with_network(mut p: Policy, mode: NetworkMode) -> Policy {
    p.network.mode = mode;
    if mode == NetworkMode::Allow {
        p.network.allow.push(d("github.com".parse().expect("host rule")));
    }
    p
}

pub fn tag() -> Tag {
    Tag::parse("stockade-0123abcd").expect("tag")
}

pub fn facts() -> HostFacts {
    HostFacts {
        private_tmp: Some(TMP.into()),
        terminals: vec!["/dev/ttys003".into()],
        proxy: None,
        tag: tag(),
        git_metadata: vec![],
    }
}

pub fn facts_with_proxy(unix_socket: bool) -> HostFacts {
    HostFacts {
        proxy: Some(ProxyEndpoint {
            port: PROXY_PORT,
            unix_socket: unix_socket.then(|| PathBuf::from("/private/var/folders/zz/T/stockade-0123abcd.proxy.sock")),
        }),
        ..facts()
    }
}

/// Every path a policy names.
pub fn policy_paths(p: &Policy) -> Vec<PathBuf> {
    let fs = &p.filesystem;
    let mut out: Vec<PathBuf> = fs
        .deny_read
        .iter()
        .chain(&fs.writable_roots)
        .chain(&fs.protected)
        .chain(&fs.deny_write)
        .map(|s| s.value.clone())
        .collect();
    if let Readable::Roots(r) = &fs.readable {
        out.extend(r.iter().map(|s| s.value.clone()));
    }
    out.push(p.workspace.clone());
    out
}
