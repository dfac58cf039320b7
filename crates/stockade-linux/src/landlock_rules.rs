//! The Landlock ruleset: which access rights are handled and which trees get which rights,
//! computed from the policy without system calls.
//!
//! Landlock is allow-only and inherits down the tree (a right granted on a directory holds for
//! everything below it), so it cannot make `ws/.git` read-only inside a writable `ws/`: that
//! is the mount plan's job. Here Landlock is the second wall for writes, the only wall in
//! `landlock-only`, and the scoping of signals and abstract unix sockets.
//!
//! References: [landlock(7)](https://man7.org/linux/man-pages/man7/landlock.7.html),
//! [kernel docs: Landlock ABI versions](https://docs.kernel.org/userspace-api/landlock.html#abi-versions),
//! the [`landlock`] crate (used here for the per-ABI access sets).

use std::path::{Path, PathBuf};

use landlock::{Access, AccessFs, AccessNet, Scope, ABI};
use serde::Serialize;
use stockade_policy::{NetworkMode, Policy, Readable};

use crate::mount_plan::Cover;

/// Which implementation the rules are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flavor {
    /// Inside the mount namespace: reads are shaped by mounts, network by the netns.
    Namespaces,
    /// On the host's own mounts: deny-read must be carved out, TCP handled here.
    LandlockOnly,
}

/// The ruleset, as raw masks for the child to pass to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandlockPlan {
    /// The kernel ABI the masks are built for.
    pub abi: i32,
    /// `handled_access_fs`.
    pub handled_fs: u64,
    /// `handled_access_net` (0 when the kernel has no network rules, or they are not needed).
    pub handled_net: u64,
    /// `scoped`: signals and abstract unix sockets (ABI 6+).
    pub scoped: u64,
    /// The rights that may be granted on a non-directory.
    pub file_rights: u64,
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

/// One `LANDLOCK_RULE_PATH_BENEATH` rule: `rights` on the tree at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The tree, opened by the child in its own view.
    pub path: PathBuf,
    /// The rights granted below it.
    pub rights: u64,
    /// Open `path` with `RESOLVE_NO_SYMLINKS`, and refuse the launch if a symlink is met. True
    /// for the writable roots, which the policy has already canonicalized: a symlink there
    /// means the tree was swapped after the policy was resolved, and following it would grant
    /// writes on wherever it points (THREATS F15). The system trees (`/bin` is a link to
    /// `usr/bin` on merged-`/usr` systems) are followed as they are.
    pub no_symlinks: bool,
    /// When the command adds it (see [`rule_time`]).
    pub when: RuleTime,
}

/// When the command of the namespaces view adds a rule: as early as the path names the same
/// Landlock walk as in the finished view, which takes the rules off the path from the end of
/// pid 1's mounts to the command's `execve`. The order of the variants is the order in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RuleTime {
    /// While pid 1 still mounts (and every rule of `landlock-only`).
    WhileMounting,
    /// Once pid 1 has built the view's `/dev`, the last step but `/proc` (see
    /// [`crate::mount_plan::MountOp::Dev`]).
    AfterDev,
    /// Once the view is finished.
    InFinishedView,
}

impl Rule {
    fn new(path: impl Into<PathBuf>, rights: u64, no_symlinks: bool) -> Rule {
        Rule { path: path.into(), rights, no_symlinks, when: RuleTime::WhileMounting }
    }
}

/// When the command of the namespaces view adds `rule`, given what the mount plan mounts over.
///
/// A Landlock rule holds an inode, and the kernel checks an access by walking from the file up
/// to the root, looking for rules on the way; at a mount's root it goes on from the parent of
/// the directory the mount covers, skipping that directory itself. So a rule added while pid 1
/// still mounts holds the right inode only for a path that no step mounts over, at the path or
/// above it: the host inode there is the view's. The others wait:
///
/// - paths at or below a [`Cover`] that is done by the time `/dev` is (the private `/tmp` and
///   `/var/tmp`, `/dev` and what pid 1 builds inside it, hidden trees): until pid 1 has built
///   `/dev`. A rule for `/tmp` taken before its tmpfs was mounted held the host's `/tmp`, and
///   creating a socket in the view's `/tmp` then failed with `EACCES` in the runs where the
///   command got there first;
/// - paths at or below a later cover (`/proc`), and the writable roots (`no_symlinks`): until
///   the view is finished. A writable root's rule must hold the very directory pid 1 bound
///   there, which the finished view's path resolves to, whereas on the host a concurrent
///   rename could have put another directory at that path in the meantime.
pub fn rule_time(rule: &Rule, covers: &[Cover]) -> RuleTime {
    if rule.no_symlinks {
        return RuleTime::InFinishedView;
    }
    covers
        .iter()
        .filter(|c| rule.path.starts_with(&c.path))
        .map(|c| if c.by_dev { RuleTime::AfterDev } else { RuleTime::InFinishedView })
        .max()
        .unwrap_or(RuleTime::WhileMounting)
}

fn bits(f: landlock::BitFlags<AccessFs>) -> u64 {
    f.bits()
}

/// Inputs beyond the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LandlockInputs {
    /// What the namespaces view mounts over (from its mount plan), which decides when each
    /// rule is added (see [`rule_time`]).
    pub covers: Vec<Cover>,
    /// Trees readable in `landlock-only`: the readable set less deny-read, `/dev` and the
    /// directories the namespaces view hides (see [`landlock_only_read_roots`]).
    pub read_roots: Vec<PathBuf>,
    /// Extra writable directories (the private temp dir of `landlock-only`).
    pub extra_writable: Vec<PathBuf>,
    /// Host files the namespaces view keeps in a hidden directory
    /// ([`crate::mount_plan::MountOp::KeepFile`]), readable under `readable = [roots]` too,
    /// and under `landlock-only`, whose read roots leave those directories out as well.
    pub kept: Vec<PathBuf>,
}

/// The device nodes a command may read, write and (ABI 5+) use device ioctls on, under both
/// implementations: the terminal and the data sinks and sources. Under `landlock-only`
/// nothing else in the host's `/dev` is readable but `/dev/random` and `/dev/urandom`.
pub const DEV_NODES: [&str; 6] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/pts", "/dev/ptmx"];

/// Builds the ruleset for `abi` (a kernel ABI number; 0 means no Landlock and gives `None`).
pub fn plan(policy: &Policy, abi: i32, flavor: Flavor, inputs: &LandlockInputs) -> Option<LandlockPlan> {
    if abi <= 0 {
        return None;
    }
    let a = ABI::from(abi);
    let all = bits(AccessFs::from_all(a));
    let read = bits(AccessFs::from_read(a));
    let file_rights = bits(AccessFs::from_file(a));
    let dev = (AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev | AccessFs::ReadDir).bits() & all;
    let mut rules = Vec::new();
    match (flavor, &policy.filesystem.readable) {
        (Flavor::Namespaces, Readable::All) => rules.push(Rule::new("/", read, false)),
        (Flavor::LandlockOnly, readable) => {
            // Opened without following links: a read root swapped for one since it was listed
            // fails the run rather than granting the link's target.
            rules.extend(inputs.read_roots.iter().map(|p| Rule::new(p, read, true)));
            if matches!(readable, Readable::Roots(_)) {
                // What a program needs to start, as under `namespaces`; the host's `/dev` is
                // granted node by node below.
                let trees = SYSTEM_TREES.iter().filter(|t| **t != "/dev");
                rules.extend(trees.map(|t| Rule::new(*t, read, false)));
            }
            // `/etc/resolv.conf`'s target in `/run` (or its directory, see
            // `supervisor::resolver_dir`), left out of the read roots with `/run`.
            rules.extend(inputs.kept.iter().map(|f| Rule::new(f, read, true)));
        }
        (Flavor::Namespaces, Readable::Roots(roots)) => {
            rules.extend(roots.iter().map(|r| Rule::new(&r.value, read, false)));
            rules.extend(SYSTEM_TREES.iter().map(|t| Rule::new(*t, read, false)));
            // `/etc/resolv.conf`'s target in `/run`, which no system tree holds.
            rules.extend(inputs.kept.iter().map(|f| Rule::new(f, read, false)));
        }
    }
    for w in policy.filesystem.writable_paths() {
        rules.push(Rule::new(w, all, true));
    }
    if flavor == Flavor::Namespaces && policy.filesystem.private_tmp {
        for t in ["/tmp", "/var/tmp", "/dev/shm"] {
            rules.push(Rule::new(t, all, false));
        }
    }
    rules.extend(inputs.extra_writable.iter().map(|p| Rule::new(p, all, true)));
    for d in DEV_NODES {
        rules.push(Rule::new(d, dev, false));
    }
    if flavor == Flavor::LandlockOnly {
        // The host's `/dev` is not among the read roots (its disks hold every file, past
        // deny-read): its names stay listable, and the random devices readable.
        rules.push(Rule::new("/dev", bits(AccessFs::ReadDir.into()) & all, false));
        for d in ["/dev/random", "/dev/urandom"] {
            rules.push(Rule::new(d, bits(AccessFs::ReadFile.into()) & all, false));
        }
    }
    if flavor == Flavor::Namespaces {
        for r in &mut rules {
            r.when = rule_time(r, &inputs.covers);
        }
    }
    let handled_net = match (flavor, policy.network.mode) {
        // No network namespace: TCP bind/connect are denied here (UDP and the rest by seccomp).
        (Flavor::LandlockOnly, NetworkMode::Off) => AccessNet::from_all(a).bits(),
        // The private netns already has only loopback, where local test servers must work.
        _ => 0,
    };
    Some(LandlockPlan { abi, handled_fs: all, handled_net, scoped: Scope::from_all(a).bits(), file_rights, rules })
}

/// The system trees a program needs to start, readable under `readable = [roots]` as well
/// (in `landlock-only` all but `/dev`, see [`landlock_only_read_roots`]).
pub const SYSTEM_TREES: [&str; 11] =
    ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc", "/opt", "/proc", "/sys", "/dev"];

/// What `landlock-only` leaves out of its read roots (see [`carve`]): the policy's deny-read
/// paths; the host's `/dev`, whose disks hold every file past deny-read (a root caller's
/// command could read `/dev/sda`) and whose `/dev/shm` holds other programs' shared memory;
/// and `hidden`, the directories the namespaces view covers with an empty tmpfs that
/// `landlock-only` cannot replace (the host's socket directories, whose files include
/// container secrets such as `/run/secrets`, and with a private temp dir the host's `/tmp`
/// and `/var/tmp`, where credential caches such as `/tmp/krb5cc_*` live). [`plan`] grants the
/// nodes a command needs in `/dev`, and the kept `resolv.conf` target.
pub fn landlock_only_unreadable(policy: &Policy, hidden: &[PathBuf]) -> Vec<PathBuf> {
    let mut deny: Vec<PathBuf> = policy.filesystem.deny_read.iter().map(|d| d.value.clone()).collect();
    deny.push(PathBuf::from("/dev"));
    deny.extend(hidden.iter().cloned());
    deny
}

/// The read roots of `landlock-only`: everything (`readable = all`) or the policy's roots,
/// less [`landlock_only_unreadable`], listing directories with `children` where something
/// below them is left out. (Under a list of roots, [`plan`] adds the system trees.) A writable
/// root below a left-out directory stays readable through its own rule.
pub fn landlock_only_read_roots(
    policy: &Policy,
    hidden: &[PathBuf],
    children: &dyn Fn(&Path) -> Vec<PathBuf>,
) -> Vec<PathBuf> {
    let deny = landlock_only_unreadable(policy, hidden);
    let starts: Vec<PathBuf> = match &policy.filesystem.readable {
        Readable::All => vec![PathBuf::from("/")],
        Readable::Roots(roots) => roots.iter().map(|r| r.value.clone()).collect(),
    };
    starts.iter().flat_map(|s| carve(s, &deny, children)).collect()
}

/// The trees to grant read on so that everything under `start` is readable except the `deny`
/// trees: walks down only where a deny path lies below, listing entries with `children`.
pub fn carve(start: &Path, deny: &[PathBuf], children: &dyn Fn(&Path) -> Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    carve_into(start, deny, children, &mut out);
    out
}

fn carve_into(at: &Path, deny: &[PathBuf], children: &dyn Fn(&Path) -> Vec<PathBuf>, out: &mut Vec<PathBuf>) {
    // A start inside a denied tree (a readable root listed below a deny-read path) is left out
    // whole.
    if deny.iter().any(|d| at.starts_with(d)) {
        return;
    }
    if !deny.iter().any(|d| d.starts_with(at)) {
        out.push(at.to_path_buf());
        return;
    }
    for c in children(at) {
        carve_into(&c, deny, children, out);
    }
}

/// The `landlock_ruleset_attr` size to pass for an ABI (older kernels reject unknown fields).
pub fn attr_size(abi: i32) -> usize {
    match abi {
        ..=3 => 8,
        4 | 5 => 16,
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::policy;
    use stockade_policy::{Source, Sourced};

    #[test]
    fn carve_skips_only_denied_trees() {
        let tree = |p: &Path| -> Vec<PathBuf> {
            match p.to_str() {
                Some("/") => vec!["/usr".into(), "/home".into()],
                Some("/home") => vec!["/home/u".into()],
                Some("/home/u") => vec!["/home/u/.ssh".into(), "/home/u/src".into(), "/home/u/.netrc".into()],
                _ => vec![],
            }
        };
        let got = carve(Path::new("/"), &["/home/u/.ssh".into(), "/home/u/.netrc".into()], &tree);
        assert_eq!(got, vec![PathBuf::from("/usr"), "/home/u/src".into()]);
        // A start inside a denied tree gives nothing; one above a denied tree is split.
        assert!(carve(Path::new("/home/u/.ssh/keys"), &["/home/u/.ssh".into()], &tree).is_empty());
        assert_eq!(
            carve(Path::new("/home/u"), &["/home/u/.ssh".into()], &tree),
            vec![PathBuf::from("/home/u/src"), "/home/u/.netrc".into()]
        );
    }

    #[test]
    fn namespaces_rules_abi7() {
        let p = policy("/ws");
        let lp = plan(&p, 7, Flavor::Namespaces, &LandlockInputs::default()).unwrap();
        assert_eq!(lp.handled_net, 0, "netns handles network; loopback must work");
        assert_eq!(lp.scoped, 3);
        assert_eq!(lp.rules[0], Rule::new("/", bits(AccessFs::from_read(ABI::V5)), false));
        let ws = Rule { when: RuleTime::InFinishedView, ..Rule::new("/ws", lp.handled_fs, true) };
        assert!(lp.rules.contains(&ws), "writable roots never via a symlink");
        assert!(lp.rules.contains(&Rule::new("/tmp", lp.handled_fs, false)));
        assert!(plan(&p, 0, Flavor::Namespaces, &LandlockInputs::default()).is_none());
    }

    /// The covers of the default layout (see `mount_plan::tests::golden_default_layout`).
    fn default_covers() -> Vec<Cover> {
        let cover = |p: &str, by_dev| Cover { path: p.into(), by_dev };
        vec![
            cover("/run", true),
            cover("/tmp", true),
            cover("/var/tmp", true),
            cover("/home/u/.ssh", true),
            cover("/dev", true),
            cover("/proc", false),
        ]
    }

    /// A rule waits for every step that mounts over its path or above it (Landlock's walk skips
    /// a directory a mount covers), and the writable roots for the finished view; `/` never
    /// waits, and `landlock-only` has no view to wait for.
    #[test]
    fn rules_wait_for_what_they_name() {
        let p = policy("/ws");
        let inputs = LandlockInputs { covers: default_covers(), ..LandlockInputs::default() };
        let lp = plan(&p, 7, Flavor::Namespaces, &inputs).unwrap();
        let at =
            |t: RuleTime| -> Vec<&Path> { lp.rules.iter().filter(|r| r.when == t).map(|r| r.path.as_path()).collect() };
        assert_eq!(at(RuleTime::InFinishedView), [Path::new("/ws")]);
        let after_dev = [
            "/tmp",
            "/var/tmp",
            "/dev/shm",
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/tty",
            "/dev/pts",
            "/dev/ptmx",
        ];
        assert_eq!(at(RuleTime::AfterDev), after_dev.map(Path::new));
        assert_eq!(at(RuleTime::WhileMounting), [Path::new("/")]);

        // Readable roots: `/dev` and `/proc` themselves are mounted over too.
        let mut roots = policy("/ws");
        roots.filesystem.readable = Readable::Roots(vec![Sourced::new("/srv".into(), Source::Default)]);
        let lp = plan(&roots, 7, Flavor::Namespaces, &inputs).unwrap();
        let when = |path: &str| lp.rules.iter().find(|r| r.path == Path::new(path)).map(|r| r.when);
        assert_eq!(when("/srv"), Some(RuleTime::WhileMounting));
        assert_eq!(when("/usr"), Some(RuleTime::WhileMounting));
        assert_eq!(when("/dev"), Some(RuleTime::AfterDev));
        assert_eq!(when("/proc"), Some(RuleTime::InFinishedView));

        let inputs = LandlockInputs {
            read_roots: vec!["/usr".into()],
            extra_writable: vec!["/tmp/stockade-1".into()],
            covers: default_covers(),
            kept: Vec::new(),
        };
        let lp = plan(&p, 7, Flavor::LandlockOnly, &inputs).unwrap();
        assert!(lp.rules.iter().all(|r| r.when == RuleTime::WhileMounting));

        let rule = |p: &str| Rule::new(p, 0, false);
        let covers = default_covers();
        assert_eq!(rule_time(&rule("/devices"), &covers), RuleTime::WhileMounting, "components, not string prefixes");
        assert_eq!(rule_time(&rule("/tmp/x/y"), &covers), RuleTime::AfterDev, "below a cover");
        assert_eq!(rule_time(&rule("/proc/self"), &covers), RuleTime::InFinishedView);
        assert_eq!(rule_time(&Rule::new("/dev/shm/ws", 0, true), &covers), RuleTime::InFinishedView);
        assert_eq!(rule_time(&rule("/tmp"), &[]), RuleTime::WhileMounting, "nothing mounted over it");
    }

    #[test]
    fn landlock_only_reads_no_host_device_but_the_few_it_grants() {
        let p = policy("/ws");
        assert!(landlock_only_unreadable(&p, &[]).contains(&PathBuf::from("/dev")));
        let kids = |d: &Path| match d.to_str() {
            Some("/") => vec![PathBuf::from("/dev"), PathBuf::from("/usr")],
            _ => Vec::new(),
        };
        assert_eq!(carve(Path::new("/"), &landlock_only_unreadable(&p, &[]), &kids), vec![PathBuf::from("/usr")]);

        let inputs = LandlockInputs { read_roots: vec!["/usr".into()], ..LandlockInputs::default() };
        let lp = plan(&p, 7, Flavor::LandlockOnly, &inputs).unwrap();
        let rights =
            |path: &str| lp.rules.iter().filter(|r| r.path == Path::new(path)).map(|r| r.rights).collect::<Vec<_>>();
        let read_file = bits(AccessFs::ReadFile.into());
        assert_eq!(rights("/dev"), vec![bits(AccessFs::ReadDir.into())], "names only");
        assert_eq!(rights("/dev/urandom"), vec![read_file]);
        assert_eq!(rights("/dev/random"), vec![read_file]);
        assert!(rights("/dev/null")[0] & read_file != 0);
        assert!(rights("/dev/zram0").is_empty());

        // Under namespaces `/dev` is the view's own minimal tmpfs, readable through `/`.
        let ns = plan(&p, 7, Flavor::Namespaces, &LandlockInputs::default()).unwrap();
        assert!(!ns.rules.iter().any(|r| r.path == Path::new("/dev")));
    }

    #[test]
    fn a_kept_file_is_readable_under_roots_once_the_view_is_finished() {
        let mut p = policy("/ws");
        let root = |v: &str| stockade_policy::Sourced::new(PathBuf::from(v), stockade_policy::Source::Default);
        p.filesystem.readable = Readable::Roots(vec![root("/ws")]);
        let f = PathBuf::from("/run/systemd/resolve/stub-resolv.conf");
        let mut covers = default_covers();
        covers.push(Cover { path: f.clone(), by_dev: true });
        let inputs = LandlockInputs { kept: vec![f.clone()], covers, ..LandlockInputs::default() };
        let lp = plan(&p, 7, Flavor::Namespaces, &inputs).unwrap();
        let rule = lp.rules.iter().find(|r| r.path == f).unwrap();
        assert_ne!(rule.rights & bits(AccessFs::ReadFile.into()), 0);
        assert_ne!(rule.when, RuleTime::WhileMounting, "the host's inode there is not the kept one");
        let all = plan(&policy("/ws"), 7, Flavor::Namespaces, &inputs).unwrap();
        assert!(!all.rules.iter().any(|r| r.path == f), "`/` covers it under readable = all");
    }

    /// What the namespaces view hides under an empty tmpfs (`/run`, the host's `/tmp`) is left
    /// out of `landlock-only`'s read roots, a writable root below one keeps its own rule, and
    /// a kept `resolv.conf` target there gets a read rule of its own.
    #[test]
    fn landlock_only_leaves_hidden_dirs_out_but_keeps_the_resolv_conf_target() {
        let p = policy("/tmp/ws");
        let hidden = [PathBuf::from("/run"), "/tmp".into()];
        assert!(landlock_only_unreadable(&p, &hidden).ends_with(&hidden));
        let kids = |d: &Path| match d.to_str() {
            Some("/") => vec![PathBuf::from("/run"), "/tmp".into(), "/usr".into()],
            Some("/tmp") => vec![PathBuf::from("/tmp/krb5cc_0"), "/tmp/ws".into()],
            _ => Vec::new(),
        };
        let roots = landlock_only_read_roots(&p, &hidden, &kids);
        assert_eq!(roots, vec![PathBuf::from("/usr")]);

        let f = PathBuf::from("/run/systemd/resolve/stub-resolv.conf");
        let inputs = LandlockInputs { read_roots: roots, kept: vec![f.clone()], ..LandlockInputs::default() };
        let lp = plan(&p, 7, Flavor::LandlockOnly, &inputs).unwrap();
        let kept = lp.rules.iter().find(|r| r.path == f).unwrap();
        assert_ne!(kept.rights & bits(AccessFs::ReadFile.into()), 0);
        assert!(kept.no_symlinks, "opened without following links, like the read roots");
        assert!(lp.rules.contains(&Rule::new("/tmp/ws", lp.handled_fs, true)), "the workspace keeps its rule");
        assert!(!lp.rules.iter().any(|r| r.path == Path::new("/run") || r.path == Path::new("/tmp")));
    }

    #[test]
    fn landlock_only_roots_get_the_system_trees_but_not_dev_and_lose_deny_read() {
        let mut p = policy("/ws");
        let root = |v: &str| stockade_policy::Sourced::new(PathBuf::from(v), stockade_policy::Source::Default);
        p.filesystem.readable = Readable::Roots(vec![root("/"), root("/home/u")]);
        p.filesystem.deny_read = vec![root("/home/u/.ssh")];
        let kids = |d: &Path| match d.to_str() {
            Some("/") => vec![PathBuf::from("/dev"), "/home".into(), "/usr".into()],
            Some("/home") => vec![PathBuf::from("/home/u")],
            Some("/home/u") => vec![PathBuf::from("/home/u/.ssh"), "/home/u/src".into()],
            _ => Vec::new(),
        };
        let roots = landlock_only_read_roots(&p, &[], &kids);
        assert_eq!(roots, vec![PathBuf::from("/home/u/src"), "/usr".into(), "/home/u/src".into()]);

        let inputs = LandlockInputs { read_roots: roots, ..LandlockInputs::default() };
        let lp = plan(&p, 7, Flavor::LandlockOnly, &inputs).unwrap();
        let read = bits(AccessFs::from_read(ABI::from(7)));
        for t in ["/usr", "/bin", "/lib", "/etc", "/proc"] {
            assert!(lp.rules.contains(&Rule::new(t, read, false)), "{t}");
        }
        assert!(!lp
            .rules
            .iter()
            .any(|r| r.path == Path::new("/dev") && r.rights & bits(AccessFs::ReadFile.into()) != 0));
    }

    #[test]
    fn landlock_only_handles_tcp_and_has_no_shared_tmp() {
        let p = policy("/ws");
        let inputs = LandlockInputs {
            read_roots: vec!["/usr".into()],
            extra_writable: vec!["/tmp/stockade-1".into()],
            covers: Vec::new(),
            kept: Vec::new(),
        };
        let lp = plan(&p, 7, Flavor::LandlockOnly, &inputs).unwrap();
        assert_ne!(lp.handled_net, 0);
        assert!(lp.rules.contains(&Rule::new("/ws", lp.handled_fs, true)));
        assert!(lp.rules.contains(&Rule::new("/tmp/stockade-1", lp.handled_fs, true)));
        assert!(!lp.rules.iter().any(|r| r.path == Path::new("/tmp")));
        assert!(!lp.rules.iter().any(|r| r.path == Path::new("/")));
    }

    #[test]
    fn older_abis_shrink_masks() {
        let p = policy("/ws");
        for abi in 1..=7 {
            let lp = plan(&p, abi, Flavor::LandlockOnly, &LandlockInputs::default()).unwrap();
            assert_eq!(lp.scoped == 0, abi < 6, "abi {abi}");
            assert_eq!(lp.handled_net == 0, abi < 4, "abi {abi}");
            for r in &lp.rules {
                assert_eq!(r.rights & !lp.handled_fs, 0);
            }
        }
    }
}
