//! The Seatbelt profile: SBPL text generated from a [`Policy`], with no I/O.
//!
//! This is the "plan" half of the macOS backend (STYLE.md 1): [`generate`] is a pure function
//! of the resolved policy and a few [`HostFacts`] gathered by the launcher, and its result,
//! [`Profile`], is golden-tested on every platform (`tests/golden/`).
//!
//! ## Shape of a profile
//!
//! 1. `(deny default)`: everything not allowed below is refused, including `file-mount`,
//!    `file-unmount`, `iokit-open`, `system-socket` and every Mach service not listed (the
//!    devfs-mount class of escapes, CVE-2023-32364, needs an `allow default` profile).
//! 2. Processes, a sysctl read allowlist, the Mach services ordinary command-line tools need,
//!    semaphores, the terminal devices.
//! 3. File reads, file writes (only under writable roots and the private temp dir).
//! 4. Read-only carve-outs (protected paths, deny-write, deny-read), **after** the allows.
//! 5. Network rules for the policy's mode.
//!
//! ## Ordering: later rules win
//!
//! SBPL evaluates every rule that matches an operation and the *last* one decides; `(deny
//! default)` only applies when nothing matches. Carve-outs therefore come after the broad
//! allows they cut into. References: the "Apple Sandbox Guide v1.0" by fG!
//! (<https://reverse.put.as/2011/09/14/apple-sandbox-guide-v1-0/>), Chromium's
//! `sandbox/mac/seatbelt_sandbox_design.md`
//! (<https://chromium.googlesource.com/chromium/src/+/main/sandbox/mac/seatbelt_sandbox_design.md>),
//! and "last-match semantics" in the SBPL chapter at <https://mdview.io/s/22fe803f>.
//! `tests/macos_enforcement.rs` checks the claim on a real Mac.
//!
//! ## Paths are parameters, never text
//!
//! No path from the policy is ever spliced into the profile: each becomes a `-D NAME=VALUE`
//! argument of `sandbox-exec` and the profile says `(param "NAME")`. A path with a quote,
//! a backslash, a newline or a parenthesis therefore cannot change the profile (the injection
//! class behind google-gemini/gemini-cli#22832). The only dynamic text in the profile is the
//! proxy port, a `u16`, and the run's [`Tag`], which admits only `[a-z0-9-]` (spliced rather
//! than passed as a parameter because `(with message "...")` with a literal is the form known
//! to work on current macOS). Non-UTF-8 paths are refused ([`Error::NonUtf8Path`]): Seatbelt
//! parameters are C strings handed to a Scheme interpreter, and stockade cannot show that
//! every byte survives, so a deny rule could silently stop matching.
//!
//! ## Canonical paths
//!
//! The kernel hands Seatbelt resolved paths (`/private/tmp/x`, never `/tmp/x`). Policy paths
//! are canonicalized at resolution time on the Mac; the launcher passes the realpath of the
//! private temp dir in [`HostFacts`]. Protected paths are kept as written and may not exist
//! yet, so the launcher refuses when one of them goes through a symbolic link
//! ([`check_protected_paths`]).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use stockade_policy::{Mode, NetworkMode, Policy, Readable};

use crate::error::Error;
use crate::tag::Tag;

/// Host facts the profile depends on, gathered by the launcher (`launch` probe) so that
/// [`generate`] stays pure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// The realpath of this run's private temp dir (inside the per-user temp dir, so under
    /// `/private/var/folders/...` on a Mac), when the policy asks for one. Writable.
    pub private_tmp: Option<PathBuf>,
    /// The realpaths of the terminal devices the command inherits on stdin, stdout or stderr
    /// (`/dev/ttys003`). Only these terminals are usable: any other `/dev/ttys*` of the user
    /// (another Terminal tab) could otherwise be opened to read its keystrokes.
    pub terminals: Vec<PathBuf>,
    /// Where the allowlist proxy listens, for [`NetworkMode::Allow`].
    pub proxy: Option<ProxyEndpoint>,
    /// This run's tag, carried by every denial message so the log reader finds this run's
    /// denials and no one else's.
    pub tag: Tag,
    /// The files of the writable roots' repositories that would let git on the host be
    /// redirected (see [`crate::git_metadata`]), kept read-only like protected paths.
    pub git_metadata: Vec<PathBuf>,
}

/// Where stockade's network proxy listens for the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyEndpoint {
    /// The loopback TCP port of the proxy (HTTP, CONNECT).
    pub port: u16,
    /// An optional unix-socket bridge to the proxy (realpath); the only host unix socket the
    /// sandbox may connect to.
    pub unix_socket: Option<PathBuf>,
}

/// One `-D NAME=VALUE` parameter of `sandbox-exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// The name the profile refers to with `(param "NAME")`.
    pub name: String,
    /// The value: an absolute, canonical, UTF-8 path.
    pub value: String,
}

/// A file operation class, as the profile groups Seatbelt's `file-*` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    /// `file-read*`: contents, metadata, directory listings.
    Read,
    /// `file-read-metadata` only (stat, lookups through a directory).
    ReadMetadata,
    /// `file-write*`: create, write, truncate, unlink, rename, chmod, utimes, xattrs.
    Write,
    /// `file-ioctl`: device and file ioctls.
    Ioctl,
    /// `file-map-executable`: mapping code (dyld, JITs).
    MapExecutable,
    /// `process-exec`: running a file as a program.
    Exec,
}

impl FileOp {
    fn sbpl(self) -> &'static str {
        match self {
            FileOp::Read => "file-read*",
            FileOp::ReadMetadata => "file-read-metadata",
            FileOp::Write => "file-write*",
            FileOp::Ioctl => "file-ioctl",
            FileOp::MapExecutable => "file-map-executable",
            FileOp::Exec => "process-exec",
        }
    }

    /// Whether a rule naming `self` applies to an access of kind `asked`.
    fn covers(self, asked: FileOp) -> bool {
        self == asked || (self == FileOp::Read && asked == FileOp::ReadMetadata)
    }
}

/// Which paths a file rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Matcher {
    /// Every path (a rule without a filter).
    Everything,
    /// `(subpath (param NAME))`: the path and everything below it.
    SubpathParam(String),
    /// `(literal (param NAME))`: exactly the path.
    LiteralParam(String),
    /// `(subpath "/usr")`: a fixed system path.
    Subpath(&'static str),
    /// `(literal "/dev/null")`: a fixed system path.
    Literal(&'static str),
    /// `(regex #"^/dev/fd/[0-9]+$")`: a fixed pattern (only the patterns in this file).
    Regex(&'static str),
}

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `(allow ...)`.
    Allow,
    /// `(deny ...)`, reported with the run's tag.
    Deny,
    /// `(deny ... (with no-report))`: expected noise that would drown real denials.
    DenySilently,
}

/// One file rule of the profile, kept in structured form so tests can evaluate the profile
/// against [`stockade_policy::decide`] (see [`Profile::allows`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRule {
    /// Allow or deny.
    pub action: Action,
    /// The operations it covers.
    pub ops: Vec<FileOp>,
    /// The paths it covers (any of them).
    pub matchers: Vec<Matcher>,
    /// Why the rule exists (rendered as a comment above it).
    pub why: &'static str,
}

/// A generated profile: the SBPL text and the parameters it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The SBPL source, passed to `sandbox-exec -p`.
    pub text: String,
    /// The `-D` parameters, in order; names are unique.
    pub params: Vec<Param>,
    /// The file rules in the order they appear in `text` (for evaluation in tests).
    pub file_rules: Vec<FileRule>,
}

impl Profile {
    /// The `sandbox-exec` arguments before the command: `-p TEXT -D NAME=VALUE ...`.
    pub fn sandbox_exec_args(&self) -> Vec<OsString> {
        let mut out = vec![OsString::from("-p"), OsString::from(&self.text)];
        for p in &self.params {
            out.push("-D".into());
            out.push(format!("{}={}", p.name, p.value).into());
        }
        out
    }

    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| p.name == name).map(|p| p.value.as_str())
    }

    /// Evaluates the file rules for `op` on the canonical `path` the way Seatbelt does: the
    /// last matching rule decides, and nothing matching means `(deny default)`. A model for
    /// tests and `explain`-style tooling, not a replacement for the kernel.
    pub fn allows(&self, op: FileOp, path: &Path) -> bool {
        let mut allowed = false;
        for rule in &self.file_rules {
            if rule.ops.iter().any(|o| o.covers(op)) && rule.matchers.iter().any(|m| self.matches(m, path)) {
                allowed = rule.action == Action::Allow;
            }
        }
        allowed
    }

    fn matches(&self, m: &Matcher, path: &Path) -> bool {
        match m {
            Matcher::Everything => true,
            Matcher::SubpathParam(n) => self.param(n).is_some_and(|v| path.starts_with(v)),
            Matcher::LiteralParam(n) => self.param(n).is_some_and(|v| path == Path::new(v)),
            Matcher::Subpath(s) => path.starts_with(s),
            Matcher::Literal(s) => path == Path::new(s),
            Matcher::Regex(r) => regex_model(r, path),
        }
    }
}

/// The few fixed patterns used in this file, evaluated without a regex engine.
fn regex_model(pattern: &str, path: &Path) -> bool {
    let Some(s) = path.to_str() else { return false };
    let digits_after = |prefix: &str| {
        s.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    match pattern {
        FD_REGEX => digits_after("/dev/fd/"),
        _ => false,
    }
}

const FD_REGEX: &str = "^/dev/fd/[0-9]+$";

/// Paths a program needs to run when the policy reads only some roots
/// ([`Readable::Roots`]): the OS, its libraries and frameworks, developer tools, installed
/// language runtimes (`/Library/Frameworks/Python.framework`, `/Library/Java`) and
/// Homebrew. Fixed system paths, not policy paths.
pub const SYSTEM_READ_ROOTS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr",
    "/System",
    "/Library/Apple",
    "/Library/Developer/CommandLineTools",
    "/Library/Frameworks",
    "/Library/Java",
    "/Applications/Xcode.app",
    "/opt/homebrew",
    "/private/etc",
    "/private/var/db/timezone",
    "/private/var/select",
];

/// Single system files programs need in readable-roots mode (the `xcode-select` link that
/// `/usr/bin/git` and `clang` shims read).
pub const SYSTEM_READ_FILES: &[&str] = &["/private/var/db/xcode_select_link"];

/// Checks, on the host, that no protected path goes through a symbolic link below its
/// writable root. `is_symlink` is `lstat`-based (injected so the check is testable).
/// Seatbelt matches resolved paths, so a protected `.git` that is a link would protect the
/// link's name while writes reach its target.
pub fn check_protected_paths(policy: &Policy, is_symlink: impl Fn(&Path) -> bool) -> Result<(), Error> {
    let fs = &policy.filesystem;
    for p in &fs.protected {
        let Some(root) = fs.writable_roots.iter().map(|r| r.value.as_path()).find(|r| p.value.starts_with(r)) else {
            continue;
        };
        let mut cur = root.to_path_buf();
        let Ok(rest) = p.value.strip_prefix(root) else { continue };
        for c in rest.components() {
            cur.push(c);
            if is_symlink(&cur) {
                return Err(Error::ProtectedPathSymlink { path: p.value.clone(), link: cur });
            }
        }
    }
    Ok(())
}

/// Checks that `path` can be a Seatbelt parameter value and returns it as one: absolute,
/// without `.`/`..` components, UTF-8, no NUL. Everything else (quotes, backslashes,
/// newlines, spaces, parentheses, non-ASCII) passes byte for byte, because the value never
/// becomes profile text.
pub fn param_value(path: &Path) -> Result<String, Error> {
    let s = path.to_str().ok_or_else(|| Error::NonUtf8Path { path: path.to_owned() })?;
    if s.contains('\0') {
        return Err(Error::NulInPath { path: s.to_owned() });
    }
    // Checked on the text: `Path::components` hides `.`, `//` and a trailing `/`.
    let normal = s == "/"
        || (path.is_absolute()
            && path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && s[1..].split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."));
    if !normal {
        return Err(Error::PathNotNormalized { path: path.to_owned() });
    }
    Ok(s.to_owned())
}

/// The parameter names of one profile, each unique: `PREFIX_N` counted per prefix.
#[derive(Debug, Default)]
struct Params {
    list: Vec<Param>,
}

impl Params {
    fn add(&mut self, prefix: &str, path: &Path) -> Result<String, Error> {
        let n = self.list.iter().filter(|p| p.name.rsplit_once('_').is_some_and(|(pre, _)| pre == prefix)).count();
        let name = format!("{prefix}_{n}");
        self.list.push(Param { name: name.clone(), value: param_value(path)? });
        Ok(name)
    }
}

/// Generates the profile for `policy` on a host described by `facts`.
///
/// Fails for `danger-full-access` (no sandbox; the facade runs it directly), for `allow`
/// networking without a proxy endpoint, when a private temp dir is wanted but missing, and
/// for paths that cannot be parameters ([`param_value`]).
pub fn generate(policy: &Policy, facts: &HostFacts) -> Result<Profile, Error> {
    if policy.mode == Mode::DangerFullAccess {
        return Err(Error::NotSandboxed);
    }
    let fs = &policy.filesystem;
    let mut params = Params::default();

    // Writable: the policy's roots (none in read-only mode) and the private temp dir.
    let mut writable = Vec::new();
    for r in &fs.writable_roots {
        writable.push((r.value.clone(), params.add("WRITABLE_ROOT", &r.value)?));
    }
    if fs.private_tmp {
        let tmp = facts.private_tmp.as_ref().ok_or(Error::PrivateTmpMissing)?;
        writable.push((tmp.clone(), params.add("PRIVATE_TMP", tmp)?));
    }
    let proxy = match policy.network.mode {
        NetworkMode::Allow => Some(facts.proxy.as_ref().ok_or(Error::NetworkAllowlistUnavailable)?),
        _ => None,
    };

    let mut terminals = Vec::new();
    for t in &facts.terminals {
        if !terminals.iter().any(|(p, _)| p == t) {
            terminals.push((t.clone(), params.add("TERMINAL", t)?));
        }
    }
    let mut rules: Vec<FileRule> = vec![FileRule {
        action: Action::Allow,
        ops: vec![FileOp::Exec],
        matchers: vec![Matcher::Everything],
        why:
            "run programs (except from deny-read paths, below); what they may touch is decided by the rules that follow",
    }];
    match &fs.readable {
        Readable::All => rules.push(FileRule {
            action: Action::Allow,
            ops: vec![FileOp::Read, FileOp::MapExecutable],
            matchers: vec![Matcher::Everything],
            why: "filesystem.readable = all: read everything the user can, minus the deny-read carve-outs below",
        }),
        Readable::Roots(roots) => {
            rules.push(FileRule {
                action: Action::Allow,
                ops: vec![FileOp::ReadMetadata],
                matchers: vec![Matcher::Everything],
                why: "path lookups (stat of every parent) work everywhere; contents only under the roots below",
            });
            let mut m: Vec<Matcher> = vec![Matcher::Literal("/")];
            m.extend(SYSTEM_READ_FILES.iter().map(|s| Matcher::Literal(s)));
            m.extend(SYSTEM_READ_ROOTS.iter().map(|s| Matcher::Subpath(s)));
            rules.push(FileRule {
                action: Action::Allow,
                ops: vec![FileOp::Read, FileOp::MapExecutable],
                matchers: m,
                why: "what programs need to run: the OS, libraries, developer tools, Homebrew, /etc",
            });
            let mut m = Vec::new();
            for r in roots {
                m.push(Matcher::SubpathParam(params.add("READABLE_ROOT", &r.value)?));
            }
            if !m.is_empty() {
                rules.push(FileRule {
                    action: Action::Allow,
                    ops: vec![FileOp::Read, FileOp::MapExecutable],
                    matchers: m,
                    why: "filesystem.readable roots",
                });
            }
        }
    }
    // Devices: none but these, whatever the read rules above say (another terminal of the
    // user, /dev/console and the like are readable by the user but not by the command).
    rules.push(FileRule {
        action: Action::Deny,
        ops: vec![FileOp::Read, FileOp::Write, FileOp::Ioctl],
        matchers: vec![Matcher::Subpath("/dev")],
        why: "no device except the ones allowed below",
    });
    rules.push(FileRule {
        action: Action::Allow,
        ops: vec![FileOp::Read, FileOp::Write, FileOp::Ioctl],
        matchers: vec![
            Matcher::Literal("/dev/null"),
            Matcher::Literal("/dev/zero"),
            Matcher::Literal("/dev/tty"),
            Matcher::Literal("/dev/stdin"),
            Matcher::Literal("/dev/stdout"),
            Matcher::Literal("/dev/stderr"),
            Matcher::Regex(FD_REGEX),
        ],
        why: "null, zero, /dev/tty (fails anyway: the command has no controlling terminal) and /dev/fd/N \
              (process substitution); no new pseudo-terminals",
    });
    rules.push(FileRule {
        action: Action::Allow,
        ops: vec![FileOp::Read],
        matchers: vec![
            Matcher::Literal("/dev"),
            Matcher::Literal("/dev/fd"),
            Matcher::Literal("/dev/random"),
            Matcher::Literal("/dev/urandom"),
        ],
        why: "randomness, and listing /dev and /dev/fd; read-only",
    });
    if !terminals.is_empty() {
        rules.push(FileRule {
            action: Action::Allow,
            ops: vec![FileOp::Read, FileOp::Write, FileOp::Ioctl],
            matchers: terminals.iter().map(|(_, n)| Matcher::LiteralParam(n.clone())).collect(),
            why: "the terminal the command inherited (colors, window size); not the user's other terminals",
        });
    }
    if !writable.is_empty() {
        rules.push(FileRule {
            action: Action::Allow,
            ops: vec![FileOp::Read, FileOp::Write, FileOp::Ioctl, FileOp::MapExecutable],
            matchers: writable.iter().map(|(_, n)| Matcher::SubpathParam(n.clone())).collect(),
            why: "writable roots and the private temp dir",
        });
    }

    // Carve-outs: after every allow, so they win.
    let mut carve = Vec::new();
    for p in fs.protected.iter().map(|p| &p.value).chain(&facts.git_metadata) {
        if writable.iter().any(|(w, _)| p.starts_with(w)) && !carve.iter().any(|(c, _): &(PathBuf, _)| c == p) {
            carve.push((p.clone(), params.add("PROTECTED", p)?));
        }
    }
    if !carve.is_empty() {
        rules.push(FileRule {
            action: Action::Deny,
            ops: vec![FileOp::Write],
            matchers: carve.iter().map(|(_, n)| Matcher::SubpathParam(n.clone())).collect(),
            why: "protected paths stay read-only inside writable roots, whether or not they exist yet \
                  (subpath includes the path itself, so `mkdir .git/hooks` fails too)",
        });
    }
    let mut deny_write = Vec::new();
    for p in &fs.deny_write {
        deny_write.push(Matcher::SubpathParam(params.add("DENY_WRITE", &p.value)?));
    }
    if !deny_write.is_empty() {
        rules.push(FileRule {
            action: Action::Deny,
            ops: vec![FileOp::Write],
            matchers: deny_write,
            why: "deny-write paths (shell startup files, stockade's own configuration), wherever they are",
        });
    }
    // Parents of carve-outs inside writable roots: Seatbelt checks only the two names of a
    // rename, so `mv .git g && edit g/hooks/x && mv g .git` would defeat a subpath rule.
    let carved: Vec<&Path> = carve
        .iter()
        .map(|(p, _)| p.as_path())
        .chain(fs.deny_write.iter().map(|p| p.value.as_path()))
        .chain(fs.deny_read.iter().map(|p| p.value.as_path()))
        .collect();
    let mut parents: Vec<PathBuf> = Vec::new();
    for c in carved {
        let Some((root, _)) = writable.iter().find(|(w, _)| c.starts_with(w) && c != w) else { continue };
        let mut a = c.parent();
        while let Some(p) = a {
            if p == root.as_path() || !p.starts_with(root) {
                break;
            }
            if !parents.iter().any(|x| x == p) {
                parents.push(p.to_owned());
            }
            a = p.parent();
        }
    }
    let mut m = Vec::new();
    for p in &parents {
        m.push(Matcher::LiteralParam(params.add("CARVE_OUT_PARENT", p)?));
    }
    if !m.is_empty() {
        rules.push(FileRule {
            action: Action::Deny,
            ops: vec![FileOp::Write],
            matchers: m,
            why: "parents of carve-outs inside writable roots cannot be renamed or removed \
                  (creating files inside them still works)",
        });
    }
    let mut deny_read = Vec::new();
    for p in &fs.deny_read {
        deny_read.push(Matcher::SubpathParam(params.add("DENY_READ", &p.value)?));
    }
    if !deny_read.is_empty() {
        rules.push(FileRule {
            action: Action::Deny,
            ops: vec![FileOp::Read, FileOp::Write, FileOp::MapExecutable, FileOp::Exec],
            matchers: deny_read,
            why: "deny-read secrets: last, so nothing above can re-open them",
        });
    }
    rules.push(FileRule {
        action: Action::DenySilently,
        ops: vec![FileOp::Read, FileOp::Write, FileOp::Ioctl],
        matchers: vec![Matcher::Literal("/dev/dtracehelper")],
        why: "dyld offers DTrace probes here; registering them is kernel attack surface and failing is harmless, \
              so refuse it without filling the denial report",
    });

    let proxy_socket = match proxy.and_then(|p| p.unix_socket.as_ref()) {
        Some(s) => Some(params.add("PROXY_SOCKET", s)?),
        None => None,
    };

    let mut text = String::new();
    render_head(&mut text, policy.network.mode, &facts.tag);
    for rule in &rules {
        render_rule(&mut text, rule, &facts.tag);
    }
    render_unix_sockets(&mut text, &writable);
    render_network(&mut text, policy.network.mode, proxy.map(|p| p.port), proxy_socket.as_deref());
    Ok(Profile { text, params: params.list, file_rules: rules })
}

/// The message modifier of deny rules. The tag is the one dynamic string in the profile:
/// [`Tag`] admits only `[a-z0-9-]`, so it cannot leave the string literal.
fn tagged(tag: &Tag) -> String {
    format!("(with message \"{tag}\")")
}

fn render_head(t: &mut String, net: NetworkMode, tag: &Tag) {
    let _ = writeln!(
        t,
        "(version 1)\n\
         ;; stockade Seatbelt profile (generated; docs/macos.md). Paths are -D parameters.\n\
         ;; Everything not allowed below is denied, and every denial carries this run's tag.\n\
         ;; That includes file-mount/file-unmount (no devfs or other mounts: the CVE-2023-32364\n\
         ;; class needs an allow-default profile), iokit-open and system-socket.\n\
         (deny default {})\n",
        tagged(tag)
    );
    t.push_str(
        ";; Processes: fork; signal and inspect only this sandbox's processes.\n\
         (allow process-fork)\n\
         (allow signal (target same-sandbox))\n\
         (allow process-info* (target same-sandbox))\n\n",
    );
    t.push_str(
        ";; sysctl: read-only, named values that runtimes query (CPU count and features, memory\n\
         ;; and page size, OS version). Not kern.proc.* (other processes) nor any write.\n\
         (allow sysctl-read\n",
    );
    for name in SYSCTL_NAMES {
        let _ = writeln!(t, "  (sysctl-name \"{name}\")");
    }
    for prefix in SYSCTL_PREFIXES {
        let _ = writeln!(t, "  (sysctl-name-prefix \"{prefix}\")");
    }
    t.push_str(")\n\n");
    t.push_str(
        ";; Mach services, each one needed by ordinary command-line tools; nothing broader.\n(allow mach-lookup\n",
    );
    for (name, why) in MACH_SERVICES {
        let _ = writeln!(t, "  ;; {why}\n  (global-name \"{name}\")");
    }
    if net != NetworkMode::Off {
        for (name, why) in MACH_SERVICES_NETWORK {
            let _ = writeln!(t, "  ;; {why}\n  (global-name \"{name}\")");
        }
    }
    t.push_str(")\n\n");
    t.push_str(
        ";; POSIX semaphores (Python multiprocessing, make -j jobserver implementations) and the\n\
         ;; notification center's shared page (notify(3), used by libc time zone handling).\n\
         (allow ipc-posix-sem)\n\
         (allow ipc-posix-shm-read-data (ipc-posix-name \"apple.shm.notification_center\"))\n\n",
    );
}

fn render_rule(t: &mut String, r: &FileRule, tag: &Tag) {
    let _ = writeln!(t, ";; {}", r.why.split_whitespace().collect::<Vec<_>>().join(" "));
    t.push_str(match r.action {
        Action::Allow => "(allow",
        Action::Deny | Action::DenySilently => "(deny",
    });
    for op in &r.ops {
        let _ = write!(t, " {}", op.sbpl());
    }
    for m in &r.matchers {
        t.push_str("\n  ");
        match m {
            Matcher::Everything => t.truncate(t.len() - 3),
            Matcher::SubpathParam(n) => {
                let _ = write!(t, "(subpath (param \"{n}\"))");
            }
            Matcher::LiteralParam(n) => {
                let _ = write!(t, "(literal (param \"{n}\"))");
            }
            Matcher::Subpath(s) => {
                let _ = write!(t, "(subpath \"{s}\")");
            }
            Matcher::Literal(s) => {
                let _ = write!(t, "(literal \"{s}\")");
            }
            Matcher::Regex(r) => {
                let _ = write!(t, "(regex #\"{r}\")");
            }
        }
    }
    match r.action {
        Action::Allow => {}
        Action::Deny => {
            let _ = write!(t, "\n  {}", tagged(tag));
        }
        Action::DenySilently => t.push_str("\n  (with no-report)"),
    }
    t.push_str(")\n\n");
}

fn render_unix_sockets(t: &mut String, writable: &[(PathBuf, String)]) {
    if writable.is_empty() {
        return;
    }
    t.push_str(
        ";; Unix sockets the command creates itself (test servers, asyncio, language servers)\n\
         ;; live under writable roots; connecting to any other unix socket (docker.sock,\n\
         ;; ssh-agent, launchd helpers) falls to (deny default). Creating a unix socket is\n\
         ;; harmless on its own; bind and connect are what the rules below decide.\n\
         (allow system-socket (socket-domain AF_UNIX))\n\
         (allow network-bind network-inbound",
    );
    for (_, n) in writable {
        let _ = write!(t, "\n  (local unix-socket (subpath (param \"{n}\")))");
    }
    t.push_str(")\n(allow network-outbound");
    for (_, n) in writable {
        let _ = write!(t, "\n  (remote unix-socket (subpath (param \"{n}\")))");
    }
    t.push_str(")\n\n");
}

fn render_network(t: &mut String, mode: NetworkMode, port: Option<u16>, proxy_socket: Option<&str>) {
    match (mode, port) {
        (NetworkMode::Off, _) | (NetworkMode::Allow, None) => t.push_str(
            ";; network = off: no IP traffic at all, not even DNS (no mDNSResponder socket) or\n\
             ;; loopback, which on macOS is the host's own loopback.\n",
        ),
        (NetworkMode::Allow, Some(port)) => {
            let _ = writeln!(
                t,
                ";; network = allow: only stockade's proxy on the loopback port; no DNS (the proxy\n\
                 ;; resolves allowed names), no other address, no UDP.\n\
                 (allow network-outbound (remote tcp \"localhost:{port}\"))"
            );
            if let Some(n) = proxy_socket {
                let _ = writeln!(
                    t,
                    ";; The proxy's unix-socket bridge, the only host socket allowed.\n\
                     (allow network-outbound (remote unix-socket (path-literal (param \"{n}\"))))"
                );
            }
        }
        (NetworkMode::On, _) => t.push_str(
            ";; network = on: any IP address, in and out, and DNS through mDNSResponder. Host unix\n\
             ;; sockets stay closed: (remote ip) does not cover them.\n\
             (allow network-outbound (remote ip))\n\
             (allow network-inbound (local ip))\n\
             (allow network-bind (local ip))\n\
             (allow network-outbound (remote unix-socket (path-literal \"/private/var/run/mDNSResponder\")))\n",
        ),
    }
}

/// sysctl names any program may read: CPU, memory and OS identification that runtimes
/// (Go, Rust std, Node, Python, the JVM, clang) query at start-up.
const SYSCTL_NAMES: &[&str] = &[
    "hw.activecpu",
    "hw.availcpu",
    "hw.byteorder",
    "hw.cachelinesize",
    "hw.cpufamily",
    "hw.cpufrequency",
    "hw.cpufrequency_max",
    "hw.cpusubtype",
    "hw.cputype",
    "hw.l1dcachesize",
    "hw.l1icachesize",
    "hw.l2cachesize",
    "hw.l3cachesize",
    "hw.logicalcpu",
    "hw.logicalcpu_max",
    "hw.machine",
    "hw.memsize",
    "hw.model",
    "hw.ncpu",
    "hw.nperflevels",
    "hw.pagesize",
    "hw.pagesize_compat",
    "hw.physicalcpu",
    "hw.physicalcpu_max",
    "hw.tbfrequency",
    "kern.argmax",
    "kern.boottime",
    "kern.hostname",
    "kern.maxfiles",
    "kern.maxfilesperproc",
    "kern.ngroups",
    "kern.osproductversion",
    "kern.osrelease",
    "kern.ostype",
    "kern.osvariant_status",
    "kern.osversion",
    "kern.secure_kernel",
    "kern.usrstack64",
    "kern.version",
    "machdep.cpu.brand_string",
    "sysctl.proc_cputype",
    "sysctl.proc_translated",
    "vm.loadavg",
];

/// sysctl name prefixes: CPU feature flags (`hw.optional.arm.FEAT_*`, `hw.optional.avx2_0`),
/// performance levels and the x86 CPUID summary.
const SYSCTL_PREFIXES: &[&str] = &["hw.optional.", "hw.perflevel", "machdep.cpu."];

/// Mach services for every run, each with the reason it is needed.
const MACH_SERVICES: &[(&str, &str)] = &[
    ("com.apple.system.opendirectoryd.libinfo", "user and group lookups: getpwuid (whoami, git, ssh, ~ expansion)"),
    ("com.apple.system.opendirectoryd.membership", "group membership checks (id, ls -l, access checks in tools)"),
    ("com.apple.system.notification_center", "notify(3): libc's time zone and directory-cache invalidation"),
    ("com.apple.system.logger", "syslog(3)/ASL from command-line tools"),
    ("com.apple.logd", "os_log from any program that links Apple frameworks"),
    ("com.apple.bsd.dirhelper", "confstr(_CS_DARWIN_USER_TEMP_DIR): the per-user temp/cache dir lookup"),
];

/// Mach services only when the network is `allow` or `on`.
const MACH_SERVICES_NETWORK: &[(&str, &str)] = &[
    ("com.apple.trustd.agent", "TLS certificate evaluation (Security.framework: curl, git-remote-https)"),
    ("com.apple.trustd", "TLS certificate evaluation, system trust store"),
    (
        "com.apple.SystemConfiguration.configd",
        "read the system's proxy and DNS settings (Python urllib, CFNetwork); read-only for users",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_value_table() {
        let ok = |s: &str| param_value(Path::new(s));
        // Accepted byte-exactly: nothing here becomes profile text.
        for s in [
            "/a b",
            "/quote\"d",
            "/back\\slash",
            "/new\nline",
            "/paren)(x",
            "/semi;colon",
            "/ünï/çødé/日本",
            "/#\"hash",
            "/",
        ] {
            assert_eq!(ok(s).unwrap(), s, "{s:?}");
        }
        // Rejected with a typed error.
        assert_eq!(crate::Diagnose::code(&ok("rel/x").unwrap_err()), "path_not_normalized");
        assert_eq!(crate::Diagnose::code(&ok("/a/../b").unwrap_err()), "path_not_normalized");
        assert_eq!(crate::Diagnose::code(&ok("/a/./b").unwrap_err()), "path_not_normalized");
        assert_eq!(crate::Diagnose::code(&ok("/a/b/").unwrap_err()), "path_not_normalized");
        assert_eq!(crate::Diagnose::code(&ok("/a//b").unwrap_err()), "path_not_normalized");
        assert_eq!(crate::Diagnose::code(&ok("/nul\0x").unwrap_err()), "nul_in_path");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let bad = Path::new(std::ffi::OsStr::from_bytes(b"/latin1-\xe9t\xe9"));
            assert_eq!(crate::Diagnose::code(&param_value(bad).unwrap_err()), "non_utf8_path");
        }
    }

    #[test]
    fn regex_model_matches_only_its_patterns() {
        assert!(!regex_model(FD_REGEX, Path::new("/dev/fd/")));
        assert!(regex_model(FD_REGEX, Path::new("/dev/fd/12")));
        assert!(!regex_model(FD_REGEX, Path::new("/dev/fdx/1")));
        assert!(!regex_model("^.*$", Path::new("/x")));
    }
}
