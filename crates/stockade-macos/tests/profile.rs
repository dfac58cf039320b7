//! Profile generation: golden files, the "no path in the text" property, parameter names,
//! and agreement with the platform-neutral `decide`.
//!
//! Regenerate the golden files with `STOCKADE_BLESS=1 cargo test -p stockade-macos --test
//! profile`, then review the diff: every changed line is a change of the sandbox.

// Helpers outside #[test] fns panic on broken fixtures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use stockade_macos::profile::{FileOp, SYSTEM_READ_ROOTS};
use stockade_macos::{generate, Diagnose, Profile};
use stockade_policy::{decide, Access, Mode, NetworkMode, Policy, Readable, Source, Sourced};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn render_params(p: &Profile) -> String {
    p.params.iter().map(|p| format!("{}={}\n", p.name, p.value.escape_debug())).collect()
}

/// Compares `profile` with `tests/golden/<name>.sb` and `<name>.params`, or writes them
/// when `STOCKADE_BLESS=1`.
fn golden(name: &str, profile: &Profile) {
    let dir = golden_dir();
    let files = [(format!("{name}.sb"), profile.text.clone()), (format!("{name}.params"), render_params(profile))];
    for (file, actual) in files {
        let path = dir.join(&file);
        if std::env::var_os("STOCKADE_BLESS").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with STOCKADE_BLESS=1 to create it", path.display()));
        if expected != actual {
            let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "{file} differs from the golden file at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
                 run with STOCKADE_BLESS=1 and review the diff if the change is intended",
                first + 1,
                expected.lines().nth(first),
                actual.lines().nth(first)
            );
        }
    }
}

#[test]
fn golden_workspace_write_default() {
    golden("workspace-write", &generate(&default_policy(), &facts()).unwrap());
}

#[test]
fn golden_read_only() {
    golden("read-only", &generate(&read_only_policy(), &facts()).unwrap());
}

#[test]
fn golden_network_allow() {
    let p = with_network(default_policy(), NetworkMode::Allow);
    golden("network-allow", &generate(&p, &facts_with_proxy(true)).unwrap());
}

#[test]
fn golden_network_on() {
    golden("network-on", &generate(&with_network(default_policy(), NetworkMode::On), &facts()).unwrap());
}

#[test]
fn golden_readable_roots() {
    golden("readable-roots", &generate(&roots_policy(), &facts()).unwrap());
}

#[test]
fn danger_full_access_is_not_generated() {
    let mut p = default_policy();
    p.mode = Mode::DangerFullAccess;
    assert_eq!(generate(&p, &facts()).unwrap_err().code(), "mode_not_sandboxed");
}

#[test]
fn allow_without_proxy_is_refused_and_private_tmp_is_required() {
    let p = with_network(default_policy(), NetworkMode::Allow);
    assert_eq!(generate(&p, &facts()).unwrap_err().code(), "network_allowlist_unavailable");
    let no_tmp = stockade_macos::HostFacts { private_tmp: None, ..facts() };
    assert_eq!(generate(&default_policy(), &no_tmp).unwrap_err().code(), "private_tmp_missing");
    let mut p = default_policy();
    p.filesystem.private_tmp = false;
    let prof = generate(&p, &no_tmp).unwrap();
    assert!(prof.param("PRIVATE_TMP_0").is_none());
}

#[test]
fn network_modes_differ_only_where_they_should() {
    let off = generate(&default_policy(), &facts()).unwrap().text;
    let on = generate(&with_network(default_policy(), NetworkMode::On), &facts()).unwrap().text;
    let allow = generate(&with_network(default_policy(), NetworkMode::Allow), &facts_with_proxy(false)).unwrap().text;
    assert!(!off.contains("(remote ip") && !off.contains("(remote tcp") && !off.contains("mDNSResponder\")))"));
    assert!(!off.contains("trustd"));
    assert!(allow.contains(&format!("(remote tcp \"localhost:{PROXY_PORT}\")")));
    assert!(
        !allow.contains("(remote ip)") && !allow.contains("mDNSResponder\")))"),
        "no direct IP and no DNS in allow mode"
    );
    assert!(!allow.contains("PROXY_SOCKET"), "no unix bridge unless the proxy has one");
    assert!(on.contains("(allow network-outbound (remote ip))"));
    assert!(!on.contains("(allow network*") && !on.contains("(allow network-outbound)\n"), "never every socket kind");
}

/// A deterministic generator (xorshift) for awkward path components.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    /// A component that contains a unique marker and some awkward characters.
    fn component(&mut self, marker: usize) -> String {
        const AWKWARD: &[&str] = &[
            "\"",
            "\\",
            "\n",
            " ",
            "(",
            ")",
            ";",
            "#",
            "'",
            "$(x)",
            "`",
            "|",
            "ü",
            "日本",
            "\u{202e}",
            "\t",
            "*",
            "?",
            "\"))(allow default)(deny ((\"",
            "#\"",
            "\\\"",
            "%",
            "=",
            "\r",
            "..x",
            "-D",
        ];
        let mut s = format!("q{marker}z");
        for _ in 0..(1 + self.next() % 4) {
            s.push_str(self.pick(AWKWARD));
            s.push_str(self.pick(&["a", "", "B", "0"]));
        }
        s
    }

    fn path(&mut self, marker: usize) -> PathBuf {
        let mut p = PathBuf::from("/");
        for i in 0..(1 + self.next() % 3) {
            p.push(self.component(marker * 10 + i as usize));
        }
        p
    }
}

/// A policy of a fixed shape whose every path is awkward and generated.
fn awkward_policy(rng: &mut Rng, readable_roots: bool) -> Policy {
    let mut n = 0;
    let mut next = |rng: &mut Rng| {
        n += 1;
        Sourced::new(rng.path(n), Source::Default)
    };
    let mut p = default_policy();
    let ws = next(rng);
    p.workspace = ws.value.clone();
    let fs = &mut p.filesystem;
    fs.writable_roots = vec![ws.clone(), next(rng)];
    fs.protected = vec![
        Sourced::new(ws.value.join(rng.component(900)).join(rng.component(901)), Source::Default),
        Sourced::new(ws.value.join(rng.component(902)), Source::Default),
    ];
    fs.deny_write = vec![next(rng), next(rng)];
    fs.deny_read = vec![next(rng), next(rng), next(rng)];
    if readable_roots {
        fs.readable = Readable::Roots(vec![next(rng), next(rng)]);
    }
    p
}

#[test]
fn no_policy_path_ever_appears_in_the_profile_text() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..300 {
        let roots = round % 2 == 0;
        let p = awkward_policy(&mut rng, roots);
        let net = [NetworkMode::Off, NetworkMode::On, NetworkMode::Allow][round % 3];
        let p = with_network(p, net);
        let mut f = facts_with_proxy(true);
        f.private_tmp = Some(rng.path(999));
        f.terminals = vec![rng.path(997)];
        if let Some(proxy) = f.proxy.as_mut() {
            proxy.unix_socket = Some(rng.path(998));
        }
        let prof = generate(&p, &f).unwrap();
        let mut paths = policy_paths(&p);
        paths.extend(f.private_tmp.clone());
        paths.extend(f.terminals.clone());
        if net == NetworkMode::Allow {
            paths.extend(f.proxy.as_ref().and_then(|x| x.unix_socket.clone()));
        }
        for path in &paths {
            let s = path.to_str().unwrap();
            assert!(!prof.text.contains(s), "round {round}: {s:?} spliced into the profile");
            // Every component with its marker stays out of the text, too.
            for c in path.components().skip(1) {
                assert!(!prof.text.contains(c.as_os_str().to_str().unwrap()), "round {round}: {c:?} in the text");
            }
        }
        // Values pass byte for byte as -D arguments.
        let args = prof.sandbox_exec_args();
        for path in &paths {
            let want = path.to_str().unwrap();
            assert!(prof.params.iter().any(|p| p.value == want), "round {round}: {want:?} is not a parameter value");
            assert!(args.iter().any(|a| a.to_str().is_some_and(|a| a.ends_with(&format!("={want}")))));
        }
        // The text depends on the policy's shape only, never on its path values.
        let mut rng2 = Rng(rng.0 ^ 0xffff);
        let q = with_network(awkward_policy(&mut rng2, roots), net);
        let mut f2 = f.clone();
        f2.private_tmp = Some("/private/tmp/other".into());
        assert_eq!(generate(&q, &f2).unwrap().text, prof.text, "round {round}");
        assert_well_formed(&prof.text);
    }
}

/// Parentheses balance and strings close, outside comments: a generated profile is one
/// well-formed list of S-expressions.
fn assert_well_formed(text: &str) {
    let mut depth = 0i32;
    for (n, line) in text.lines().enumerate() {
        let mut in_str = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (in_str, c) {
                (false, ';') => break,
                (false, '"') | (true, '"') => in_str = !in_str,
                (true, '\\') => {
                    chars.next();
                }
                (false, '(') => depth += 1,
                (false, ')') => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0, "line {}: unbalanced `)`", n + 1);
        }
        assert!(!in_str, "line {}: unterminated string", n + 1);
    }
    assert_eq!(depth, 0, "unbalanced parentheses");
}

fn referenced_params(text: &str) -> BTreeSet<String> {
    text.split("(param \"").skip(1).filter_map(|s| s.split_once('"')).map(|(name, _)| name.to_owned()).collect()
}

#[test]
fn parameter_names_are_unique_defined_and_used() {
    // Many entries (WRITABLE_ROOT_1 vs WRITABLE_ROOT_10), and the same path in several lists.
    let mut p = roots_policy();
    for i in 0..12 {
        p.filesystem.writable_roots.push(Sourced::new(PathBuf::from(format!("/Volumes/w{i}")), Source::Default));
    }
    let dup = PathBuf::from("/Users/dev/src/project/.vscode");
    p.filesystem.deny_write.push(Sourced::new(dup.clone(), Source::Default));
    p.filesystem.deny_read.push(Sourced::new(dup, Source::Default));
    let p = with_network(p, NetworkMode::Allow);
    let prof = generate(&p, &facts_with_proxy(true)).unwrap();
    let names: Vec<&str> = prof.params.iter().map(|p| p.name.as_str()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "duplicate parameter names: {names:?}");
    for n in &names {
        assert!(n.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'), "{n}");
        assert!(!n.starts_with('_'), "{n}: Apple's own profiles use _-prefixed names");
    }
    let used = referenced_params(&prof.text);
    let defined: BTreeSet<String> = names.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(used, defined, "every parameter is referenced and every reference defined");
    assert!(defined.contains("WRITABLE_ROOT_10") && defined.contains("WRITABLE_ROOT_1"));
}

/// Paths to probe around a policy: every policy path, a child, a grandchild, a sibling with a
/// shared prefix, the parent.
fn probes(p: &Policy) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in policy_paths(p) {
        out.push(path.join("child"));
        out.push(path.join("a/b"));
        if let Some(parent) = path.parent() {
            out.push(parent.to_path_buf());
            let name = path.file_name().unwrap().to_str().unwrap();
            out.push(parent.join(format!("{name}x")));
        }
        out.push(path);
    }
    for s in ["/etc/passwd", "/private/etc/hosts", "/usr/bin/git", "/Users/other/secret", "/Users/dev", "/tmp/x"] {
        out.push(s.into());
    }
    out
}

/// The profile's file rules, evaluated with Seatbelt's last-match semantics, grant exactly
/// what `decide` says, with two documented differences: parents of carve-outs inside a
/// writable root are not writable themselves (rename protection), and in readable-roots mode
/// the system paths programs need are readable.
#[test]
fn profile_agrees_with_decide() {
    for p in [default_policy(), read_only_policy(), roots_policy(), with_network(default_policy(), NetworkMode::On)] {
        let prof = generate(&p, &facts()).unwrap();
        let carve_parents: Vec<&str> =
            prof.params.iter().filter(|x| x.name.starts_with("CARVE_OUT_PARENT")).map(|x| x.value.as_str()).collect();
        for path in probes(&p) {
            let d = decide(&p, &path);
            let read = prof.allows(FileOp::Read, &path);
            let write = prof.allows(FileOp::Write, &path);
            let system = SYSTEM_READ_ROOTS.iter().any(|s| path.starts_with(s));
            let expect_read =
                d.access >= Access::Read || (system && matches!(p.filesystem.readable, Readable::Roots(_)));
            assert_eq!(read, expect_read, "{}: read; decide says {:?}", path.display(), d);
            let is_parent = carve_parents.iter().any(|c| Path::new(c) == path);
            let expect_write = d.access == Access::Write && !is_parent;
            assert_eq!(write, expect_write, "{}: write; decide says {:?}", path.display(), d);
            if d.access == Access::None && !system {
                assert!(!prof.allows(FileOp::MapExecutable, &path), "{}: map-executable", path.display());
            }
            if matches!(d.rule, stockade_policy::Rule::DenyRead { .. }) {
                assert!(!prof.allows(FileOp::Exec, &path), "{}: exec from a deny-read path", path.display());
            }
        }
        // The private temp dir is writable in every mode; /tmp is not.
        let tmp = Path::new(TMP).join("f");
        assert!(prof.allows(FileOp::Write, &tmp));
        assert!(!prof.allows(FileOp::Write, Path::new("/private/tmp/f")));
        assert!(prof.allows(FileOp::Write, Path::new("/dev/null")));
        assert!(!prof.allows(FileOp::Read, Path::new("/dev/dtracehelper")));
        assert!(!prof.allows(FileOp::Ioctl, Path::new("/dev/disk0")));
        // The inherited terminal, and no other terminal of the user.
        assert!(prof.allows(FileOp::Read, Path::new("/dev/ttys003")));
        assert!(prof.allows(FileOp::Ioctl, Path::new("/dev/ttys003")));
        assert!(!prof.allows(FileOp::Write, Path::new("/dev/ttys004")));
        assert!(!prof.allows(FileOp::Ioctl, Path::new("/dev/ttys004")));
    }
}

#[test]
fn protected_paths_that_do_not_exist_yet_are_covered_with_their_parents() {
    let p = default_policy();
    let prof = generate(&p, &facts()).unwrap();
    let ws = Path::new(WS);
    // `mkdir .git/hooks` and anything below it.
    assert!(!prof.allows(FileOp::Write, &ws.join(".git/hooks")));
    assert!(!prof.allows(FileOp::Write, &ws.join(".git/hooks/pre-commit")));
    assert!(!prof.allows(FileOp::Write, &ws.join(".git/config")));
    // `.git` itself cannot be renamed away, but git can still write its index.
    assert!(!prof.allows(FileOp::Write, &ws.join(".git")));
    assert!(prof.allows(FileOp::Write, &ws.join(".git/index.lock")));
    assert!(prof.allows(FileOp::Write, &ws.join(".gitignore")));
    assert!(prof.allows(FileOp::Read, &ws.join(".git/hooks/pre-commit")));
}

/// The repository files that would redirect git on the host (`.git/commondir`, a worktree's
/// `gitdir`, a submodule's config) are read-only like protected paths, and a missing
/// `commondir` cannot be created. Control: the rest of `.git` stays writable for git itself.
#[test]
fn git_metadata_that_redirects_git_is_read_only() {
    let p = default_policy();
    let ws = Path::new(WS);
    let git_metadata: Vec<PathBuf> = ["commondir", "worktrees/feat/gitdir", "modules/sub/config", "modules/sub/hooks"]
        .iter()
        .map(|r| ws.join(".git").join(r))
        .collect();
    let prof = generate(&p, &stockade_macos::HostFacts { git_metadata: git_metadata.clone(), ..facts() }).unwrap();
    for m in &git_metadata {
        assert!(!prof.allows(FileOp::Write, m), "{} writable", m.display());
    }
    assert!(!prof.allows(FileOp::Write, &ws.join(".git/modules/sub/hooks/post-checkout")));
    assert!(prof.allows(FileOp::Write, &ws.join(".git/worktrees/feat/HEAD")), "control");
    assert!(prof.allows(FileOp::Write, &ws.join(".git/objects/ab/cdef")), "control");
    // Without them, the same profile lets `.git/commondir` be written.
    assert!(generate(&p, &facts()).unwrap().allows(FileOp::Write, &ws.join(".git/commondir")));
}

#[test]
fn protected_path_through_a_symlink_is_refused() {
    let p = default_policy();
    let link = Path::new(WS).join(".git");
    let e = stockade_macos::profile::check_protected_paths(&p, |x| x == link).unwrap_err();
    assert_eq!(e.code(), "protected_path_symlink");
    stockade_macos::profile::check_protected_paths(&p, |_| false).unwrap();
}

#[test]
fn non_utf8_policy_paths_are_refused() {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut p = default_policy();
        let bad = PathBuf::from(std::ffi::OsStr::from_bytes(b"/Users/dev/\xff\xfe"));
        p.filesystem.deny_read.push(Sourced::new(bad, Source::Default));
        assert_eq!(generate(&p, &facts()).unwrap_err().code(), "non_utf8_path");
    }
    let mut p = default_policy();
    p.filesystem.protected.push(Sourced::new(PathBuf::from("/Users/dev/src/project/../x"), Source::Default));
    assert_eq!(generate(&p, &facts()).unwrap_err().code(), "path_not_normalized");
}

#[test]
fn the_tag_is_the_only_per_run_text() {
    let a = generate(&default_policy(), &facts()).unwrap().text;
    let mut f = facts();
    f.tag = stockade_macos::Tag::parse("stockade-ffff").unwrap();
    let b = generate(&default_policy(), &f).unwrap().text;
    assert_eq!(a.replace("stockade-0123abcd", "T"), b.replace("stockade-ffff", "T"));
    // On `(deny default)` and on every explicit deny rule except the silenced one.
    let denies = a.matches("\n(deny ").count();
    assert_eq!(a.matches("(with message \"stockade-0123abcd\")").count(), denies - 1);
    assert_eq!(a.matches("(with no-report)").count(), 1);
}
