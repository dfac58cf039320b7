//! Resolution, layering, provenance and requirements, through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::fs;
use std::path::{Path, PathBuf};

use stockade_policy::*;

/// A home directory and a workspace in a fresh temp dir, with a matching host environment.
struct Fixture {
    _dir: tempfile::TempDir,
    home: PathBuf,
    ws: PathBuf,
    env: HostEnv,
    locations: Locations,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        let ws = root.join("ws");
        fs::create_dir_all(home.join(".ssh")).unwrap();
        fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        let mut env = HostEnv { home: Some(home.clone()), cwd: ws.clone(), ..Default::default() };
        env.vars.insert("PROJ".into(), root.join("proj").display().to_string());
        let locations = Locations::linux(&env);
        Fixture { _dir: dir, home, ws, env, locations }
    }

    fn file(&self, name: &str, text: &str) -> FileText {
        let path = self.home.join(name);
        fs::write(&path, text).unwrap();
        FileText { path, text: text.to_owned() }
    }

    fn resolve(&self, o: &Overrides, config: Option<&str>, reqs: &[&str]) -> Result<Policy, Error> {
        let config = config.map(|c| self.file("config.toml", c));
        let reqs: Vec<FileText> = reqs.iter().enumerate().map(|(i, r)| self.file(&format!("req{i}.toml"), r)).collect();
        resolve(o, config.as_ref(), &reqs, &self.env, &self.locations)
    }

    fn ok(&self, o: &Overrides, config: Option<&str>, reqs: &[&str]) -> Policy {
        self.resolve(o, config, reqs).unwrap_or_else(|e| panic!("resolution failed: {e}"))
    }

    fn err(&self, o: &Overrides, config: Option<&str>, reqs: &[&str]) -> Error {
        match self.resolve(o, config, reqs) {
            Ok(p) => panic!("expected an error, got mode {}", p.mode),
            Err(e) => e,
        }
    }
}

fn paths(list: &[Sourced<PathBuf>]) -> Vec<&Path> {
    list.iter().map(|s| s.value.as_path()).collect()
}

fn none() -> Overrides {
    Overrides::default()
}

#[test]
fn defaults_keep_the_promise() {
    let f = Fixture::new();
    let p = f.ok(&none(), None, &[]);
    assert_eq!(p.mode, Mode::WorkspaceWrite);
    assert_eq!(p.network.mode, NetworkMode::Off);
    assert_eq!(p.workspace, f.ws);
    assert_eq!(paths(&p.filesystem.writable_roots), vec![f.ws.as_path()]);
    for rel in [".git/hooks", ".git/config", ".codex", ".claude", ".vscode", ".idea", ".stockade"] {
        assert!(paths(&p.filesystem.protected).contains(&f.ws.join(rel).as_path()), "{rel} protected");
    }
    assert!(paths(&p.filesystem.deny_read).contains(&f.home.join(".ssh").as_path()));
    assert!(paths(&p.filesystem.deny_write).contains(&f.home.join(".bashrc").as_path()));
    assert!(paths(&p.filesystem.deny_write).contains(&f.home.join(".config/stockade").as_path()), "own config dir");
    assert!(p.filesystem.private_tmp);
    assert_eq!(p.provenance.get("mode"), Source::Default);
    assert!(p.allow_escalation);
    assert_eq!(p.linux.implementation, LinuxImplementation::Namespaces);
    assert_eq!(p.windows.sandbox, WindowsImplementation::Elevated);
    assert!(p.windows.private_desktop);
}

/// macOS keeps shell history, keychains and browser profiles where Linux does not: its
/// locations add them to the default deny-read list; Linux's add nothing.
#[test]
fn macos_secrets_are_denied_on_macos_only() {
    let f = Fixture::new();
    let mac = resolve(&none(), None, &[], &f.env, &Locations::macos(&f.env)).unwrap();
    for rel in [".zsh_sessions", "Library/Keychains", "Library/Application Support/Firefox", "Library/Cookies"] {
        assert!(paths(&mac.filesystem.deny_read).contains(&f.home.join(rel).as_path()), "{rel}");
    }
    let linux = f.ok(&none(), None, &[]);
    assert!(!paths(&linux.filesystem.deny_read).iter().any(|p| p.starts_with(f.home.join("Library"))));
    assert!(paths(&linux.filesystem.deny_read).contains(&f.home.join(".ssh").as_path()), "control");
}

/// Without a home directory the default deny lists would protect nothing, so resolution stops
/// with `home_unknown` rather than run with less. Control: with one, it resolves.
#[test]
fn an_unknown_home_directory_stops_resolution() {
    let f = Fixture::new();
    let mut env = f.env.clone();
    env.home = None;
    let e = resolve(&none(), None, &[], &env, &f.locations).unwrap_err();
    assert_eq!(e.code(), "home_unknown", "{e}");
    assert!(resolve(&none(), None, &[], &f.env, &f.locations).is_ok());
    // A relative or empty `HOME` names no home: see `crates/stockade/tests/cli.rs`.
}

#[test]
fn access_decisions_follow_the_most_specific_rule() {
    let f = Fixture::new();
    fs::create_dir_all(f.home.join("extra")).unwrap();
    let o = Overrides { writable_roots: vec![f.home.join("extra")], ..none() };
    let p = f.ok(&o, Some("[filesystem]\ndeny_write = { add = [\"~/extra/locked\"] }\n"), &[]);
    assert_eq!(decide(&p, &f.ws.join("src/main.rs")).access, Access::Write);
    assert_eq!(decide(&p, &f.ws.join(".git/hooks/pre-commit")).access, Access::Read);
    assert!(matches!(decide(&p, &f.ws.join(".git/hooks/pre-commit")).rule, Rule::Protected { .. }));
    assert_eq!(decide(&p, &f.home.join("extra/x")).access, Access::Write);
    assert_eq!(decide(&p, &f.home.join("extra/locked/x")).access, Access::Read, "deny-write inside a writable root");
    assert_eq!(decide(&p, &f.home.join(".ssh/id_ed25519")).access, Access::None);
    assert_eq!(decide(&p, Path::new("/etc/passwd")).access, Access::Read);
    assert_eq!(decide(&p, &f.ws.join(".codex/config.toml")).access, Access::Read, "protected even if missing");
}

#[test]
fn layers_apply_in_order_with_provenance() {
    let f = Fixture::new();
    let cfg = "mode = \"read-only\"\n\n[network]\nmode = \"on\"\n\n[profiles.ci]\nmode = \"workspace-write\"\n[profiles.ci.process]\ntimeout = \"10m\"\n";
    let p = f.ok(&none(), Some(cfg), &[]);
    assert_eq!(p.mode, Mode::ReadOnly);
    assert!(p.filesystem.writable_roots.is_empty(), "read-only has no writable roots");
    match p.provenance.get("mode") {
        Source::File { line, key, .. } => assert_eq!((line, key.as_str()), (1, "mode")),
        other => panic!("unexpected source {other:?}"),
    }
    match p.provenance.get("network.mode") {
        Source::File { line, key, .. } => assert_eq!((line, key.as_str()), (4, "network.mode")),
        other => panic!("unexpected source {other:?}"),
    }

    let with_profile = Overrides { profile: Some("ci".into()), ..none() };
    let p = f.ok(&with_profile, Some(cfg), &[]);
    assert_eq!(p.mode, Mode::WorkspaceWrite);
    assert_eq!(p.process.timeout, Some(std::time::Duration::from_secs(600)));
    assert!(matches!(p.provenance.get("mode"), Source::File { ref key, .. } if key == "profiles.ci.mode"));
    assert_eq!(p.provenance.get("profile"), Source::Cli { flag: "--profile".into() });

    let cli =
        Overrides { profile: Some("ci".into()), mode: Some(Mode::ReadOnly), network: Some(NetworkMode::Off), ..none() };
    let p = f.ok(&cli, Some(cfg), &[]);
    assert_eq!((p.mode, p.network.mode), (Mode::ReadOnly, NetworkMode::Off));
    assert_eq!(p.provenance.get("mode"), Source::Cli { flag: "--sandbox".into() });
}

#[test]
fn default_profile_from_the_file_and_unknown_profiles() {
    let f = Fixture::new();
    let cfg = "profile = \"quiet\"\n[profiles.quiet]\nmode = \"read-only\"\n";
    assert_eq!(f.ok(&none(), Some(cfg), &[]).mode, Mode::ReadOnly);
    let e = f.err(&Overrides { profile: Some("loud".into()), ..none() }, Some(cfg), &[]);
    assert_eq!(e.code(), "unknown_profile");
    assert!(e.to_string().contains("quiet"), "lists defined profiles: {e}");
    let e = f.err(&Overrides { profile: Some("x".into()), ..none() }, None, &[]);
    assert_eq!(e.code(), "unknown_profile");
}

#[test]
fn lists_are_replaced_or_edited() {
    let f = Fixture::new();
    let p = f.ok(&none(), Some("[filesystem]\ndeny_read = [\"~/only\"]\n"), &[]);
    assert_eq!(paths(&p.filesystem.deny_read), vec![f.home.join("only").as_path()]);

    let p = f.ok(&none(), Some("[filesystem]\ndeny_read = { add = [\"$PROJ/.env\"], remove = [\"~/.npmrc\"] }\n"), &[]);
    let dr = paths(&p.filesystem.deny_read);
    assert!(dr.contains(&f.home.join(".ssh").as_path()));
    assert!(!dr.contains(&f.home.join(".npmrc").as_path()));
    assert!(dr.iter().any(|p| p.ends_with("proj/.env")));

    let p = f.ok(&none(), Some("[env]\nallow = { add = [\"MY_TOOL_*\"] }\nset = { FOO = \"bar\" }\n"), &[]);
    assert!(env_filter::passes(&p.env, "MY_TOOL_HOME"));
    assert!(!env_filter::passes(&p.env, "MY_TOOL_TOKEN"), "deny still wins");
    assert_eq!(p.env.set[0].value, ("FOO".to_owned(), "bar".to_owned()));
}

#[test]
fn unknown_keys_name_the_nearest_valid_key() {
    let f = Fixture::new();
    let e = f.err(&none(), Some("[filesystem]\ndeny_reed = []\n"), &[]);
    assert_eq!(e.code(), "config_unknown_key");
    match &e {
        Error::UnknownKey { at, key, suggestion } => {
            assert_eq!(key, "filesystem.deny_reed");
            assert_eq!(suggestion.as_deref(), Some("filesystem.deny_read"));
            assert_eq!(at.line, 2);
        }
        other => panic!("{other:?}"),
    }
    let e = f.err(&none(), Some("deny_read = []\n"), &[]);
    assert!(matches!(&e, Error::UnknownKey { suggestion: Some(s), .. } if s == "filesystem.deny_read"), "{e}");
    let e = f.err(&none(), Some("[profiles.x]\nnetwrok = {}\n"), &[]);
    assert!(
        matches!(&e, Error::UnknownKey { key, suggestion: Some(s), .. } if key == "profiles.x.netwrok" && s == "profiles.x.network"),
        "{e:?}"
    );
    let e = f.err(&none(), Some("[filesystem]\ndeny_read = { ad = [] }\n"), &[]);
    assert_eq!(e.code(), "config_unknown_key");
    let e = f.err(&none(), Some("zzzzzz = 1\n"), &[]);
    assert!(matches!(&e, Error::UnknownKey { suggestion: None, .. }), "no far-fetched suggestion: {e}");
}

#[test]
fn bad_toml_names_file_line_and_column() {
    let f = Fixture::new();
    let e = f.err(&none(), Some("mode = \"read-only\"\n[network\n"), &[]);
    assert_eq!(e.code(), "config_syntax");
    match &e {
        Error::TomlSyntax { at, .. } => {
            assert_eq!(at.line, 2);
            assert!(at.path.ends_with("config.toml"));
            assert!(at.column >= 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("config.toml`:2:"), "{e}");
}

#[test]
fn wrong_values_name_the_key_and_the_expectation() {
    let f = Fixture::new();
    for (cfg, key, needle) in [
        ("mode = 3\n", "mode", "expected a string"),
        ("mode = \"yolo\"\n", "mode", "read-only, workspace-write, danger-full-access"),
        ("[network]\nallow = [\"bad host\"]\n", "network.allow", "invalid host rule"),
        ("[process]\ntimeout = \"soon\"\n", "process.timeout", "not a duration"),
        ("[process]\nmemory = \"lots\"\n", "process.memory", "not a size"),
        ("[process]\nmemory = 1\n", "process.memory", "at least 64 MiB"),
        ("[process]\ntimeout = 31536001\n", "process.timeout", "at most a year"),
        ("[process]\ntimeout = \"9999999999h\"\n", "process.timeout", "at most a year"),
        ("[process]\nmax_processes = 0\n", "process.max_processes", "from 1"),
        ("[process]\nmax_open_files = 15\n", "process.max_open_files", "from 16"),
        ("[process]\nmax_open_files = 4294967296\n", "process.max_open_files", "from 16"),
        ("[env]\nallow = [\"A B\"]\n", "env.allow", "not a variable name"),
        ("[linux]\nimplementation = \"chroot\"\n", "linux.implementation", "namespaces, landlock-only"),
        ("[filesystem]\nreadable = \"some\"\n", "filesystem.readable", "\"all\""),
    ] {
        let e = f.err(&none(), Some(cfg), &[]);
        assert_eq!(e.code(), "config_invalid_value", "{cfg}");
        match &e {
            Error::InvalidValue { key: k, problem, .. } => {
                assert_eq!(k, key, "{cfg}");
                assert!(problem.contains(needle), "{cfg}: {problem}");
            }
            other => panic!("{other:?}"),
        }
    }
    let e = f.err(&none(), Some("[filesystem]\ndeny_read = [\"$NOPE/x\"]\n"), &[]);
    assert_eq!(e.code(), "undefined_variable");
}

#[test]
fn sizes_and_durations() {
    let f = Fixture::new();
    let p = f.ok(&none(), Some("[process]\ntimeout = 90\nmemory = \"2GiB\"\nmax_processes = 64\n"), &[]);
    assert_eq!(p.process.timeout, Some(std::time::Duration::from_secs(90)));
    assert_eq!(p.process.memory_bytes, Some(2 << 30));
    assert_eq!(p.process.max_processes, Some(64));
    assert_eq!(p.process.max_open_files, Some(stockade_policy::defaults::MAX_OPEN_FILES), "the default stays");
    let p = f.ok(&none(), Some("[process]\nmax_open_files = 16\n"), &[]);
    assert_eq!(p.process.max_open_files, Some(16));
}

#[cfg(unix)]
#[test]
fn paths_expand_and_resolve_against_the_workspace() {
    let f = Fixture::new();
    fs::create_dir_all(f.ws.join("build")).unwrap();
    fs::create_dir_all(f.home.join("vault")).unwrap();
    std::os::unix::fs::symlink(f.home.join("vault"), f.home.join("keys")).unwrap();
    let o = Overrides { writable_roots: vec!["build".into()], deny_read: vec![f.home.join("keys")], ..none() };
    let p = f.ok(&o, None, &[]);
    assert!(paths(&p.filesystem.writable_roots).contains(&f.ws.join("build").as_path()));
    assert!(
        paths(&p.filesystem.protected).contains(&f.ws.join("build/.git/hooks").as_path()),
        "protected applies per root"
    );
    let keys = p.filesystem.deny_read.iter().find(|s| s.source == Source::Cli { flag: "--deny-read".into() }).unwrap();
    assert_eq!(keys.value, f.home.join("vault"), "symlinks are resolved once, at build time");
}

#[test]
fn bad_roots_are_refused() {
    let f = Fixture::new();
    let e = f.err(&Overrides { writable_roots: vec!["missing".into()], ..none() }, None, &[]);
    assert_eq!(e.code(), "writable_root_missing");
    let e = f.err(&Overrides { workspace: Some(f.ws.join("nope")), ..none() }, None, &[]);
    assert_eq!(e.code(), "workspace_invalid");
    let e = f.err(&Overrides { workspace: Some(f.home.clone()), ..none() }, None, &[]);
    assert_eq!(e.code(), "writable_root_too_broad");
    let e = f.err(&Overrides { writable_roots: vec!["/".into()], ..none() }, None, &[]);
    assert_eq!(e.code(), "writable_root_too_broad");
    // Read-only mode may run anywhere, even in the home directory.
    let p = f.ok(&Overrides { workspace: Some(f.home.clone()), mode: Some(Mode::ReadOnly), ..none() }, None, &[]);
    assert!(p.filesystem.writable_roots.is_empty());
    let e = f.err(&Overrides { mode: Some(Mode::ReadOnly), writable_roots: vec![f.ws.clone()], ..none() }, None, &[]);
    assert_eq!(e.code(), "conflicting_options");
    // The same when read-only mode comes from the config file: `-w` is not dropped in silence.
    let e = f.err(&Overrides { writable_roots: vec![f.ws.clone()], ..none() }, Some("mode = \"read-only\"\n"), &[]);
    assert_eq!(e.code(), "conflicting_options", "{e}");
    assert!(e.to_string().contains("config.toml") && e.to_string().contains("--writable"), "{e}");
}

#[test]
fn policy_files_inside_writable_roots_are_refused() {
    let f = Fixture::new();
    let path = f.ws.join("stockade.toml");
    fs::write(&path, "mode = \"workspace-write\"\n").unwrap();
    let config = FileText { path: path.clone(), text: "mode = \"workspace-write\"\n".into() };
    let e = resolve(&none(), Some(&config), &[], &f.env, &f.locations).unwrap_err();
    assert_eq!(e.code(), "policy_file_writable");
    let req = FileText { path, text: "allowed_modes = [\"workspace-write\"]\n".into() };
    let e = resolve(&none(), None, &[req], &f.env, &f.locations).unwrap_err();
    assert_eq!(e.code(), "policy_file_writable", "requirements too");
}

#[test]
fn git_pointer_file_is_protected() {
    let f = Fixture::new();
    fs::remove_dir_all(f.ws.join(".git")).unwrap();
    fs::write(f.ws.join(".git"), "gitdir: /elsewhere/.git/worktrees/x\n").unwrap();
    let p = f.ok(&none(), None, &[]);
    let git = p.filesystem.protected.iter().find(|s| s.value == f.ws.join(".git")).expect(".git pointer protected");
    assert!(matches!(git.source, Source::Derived { .. }));
    let p = f.ok(&none(), Some("[filesystem]\nprotect_git_pointer = false\n"), &[]);
    assert!(!paths(&p.filesystem.protected).contains(&f.ws.join(".git").as_path()));
}

#[test]
fn network_flags() {
    let f = Fixture::new();
    let o = Overrides { allow_hosts: vec!["github.com".into(), "*.crates.io:443".into()], ..none() };
    let p = f.ok(&o, None, &[]);
    assert_eq!(p.network.mode, NetworkMode::Allow);
    assert_eq!(p.network.allow.len(), 2);
    assert_eq!(p.provenance.get("network.mode"), Source::Cli { flag: "--allow-host".into() });
    let e = f.err(&Overrides { network: Some(NetworkMode::Off), ..o.clone() }, None, &[]);
    assert_eq!(e.code(), "conflicting_options");
    let e = f.err(&Overrides { allow_hosts: vec!["exa mple.com".into()], ..none() }, None, &[]);
    assert_eq!(e.code(), "invalid_flag");
    let e = f.err(&none(), Some("[network]\nmode = \"allow\"\n"), &[]);
    assert_eq!(e.code(), "conflicting_options", "allow with no hosts");
}

// ---- requirements ----

#[test]
fn allowed_modes_refuse_with_file_and_key() {
    let f = Fixture::new();
    let req = "# admin\nallowed_modes = [\"read-only\", \"workspace-write\"]\n";
    f.ok(&none(), None, &[req]);
    let e = f.err(&Overrides { mode: Some(Mode::DangerFullAccess), ..none() }, None, &[req]);
    assert_eq!(e.code(), "requirement_violation");
    match &e {
        Error::RequirementViolation { at, key, refused, .. } => {
            assert_eq!((at.line, key.as_str()), (2, "allowed_modes"));
            assert!(at.path.ends_with("req0.toml"));
            assert!(refused.contains("danger-full-access"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extra_requirements_cannot_loosen() {
    let f = Fixture::new();
    let system = "allowed_modes = [\"read-only\"]\n";
    let extra =
        "allowed_modes = [\"read-only\", \"workspace-write\", \"danger-full-access\"]\n[network]\nallow_on = true\n";
    let e = f.err(&none(), None, &[system, extra]);
    assert_eq!(e.code(), "requirement_violation");
    assert!(
        matches!(&e, Error::RequirementViolation { at, .. } if at.path.ends_with("req0.toml")),
        "the system file refuses: {e}"
    );
    // And an extra file can add a constraint the system file lacks.
    let e =
        f.err(&Overrides { network: Some(NetworkMode::On), ..none() }, None, &["", "[network]\nallow_on = false\n"]);
    assert!(
        matches!(&e, Error::RequirementViolation { at, key, .. } if at.path.ends_with("req1.toml") && key == "network.allow_on"),
        "{e}"
    );
}

#[test]
fn empty_allowed_lists_are_errors() {
    let f = Fixture::new();
    for (req, key) in [
        ("allowed_modes = []\n", "allowed_modes"),
        ("[network]\nallowed_hosts = []\n", "network.allowed_hosts"),
        ("[linux]\nallowed_implementations = []\n", "linux.allowed_implementations"),
        ("[windows]\nallowed_sandbox_implementations = []\n", "windows.allowed_sandbox_implementations"),
    ] {
        let e = f.err(&none(), None, &[req]);
        assert_eq!(e.code(), "requirements_empty_list", "{req}");
        assert!(matches!(&e, Error::EmptyAllowedList { key: k, .. } if k == key), "{e:?}");
    }
}

#[test]
fn network_ceiling() {
    let f = Fixture::new();
    let req = "[network]\nallowed_hosts = [\"*.crates.io\", \"github.com\", \"github.com:22\"]\n";
    let ok = Overrides { allow_hosts: vec!["index.crates.io".into(), "github.com:22".into()], ..none() };
    f.ok(&ok, None, &[req]);
    let bad = Overrides { allow_hosts: vec!["evil.example".into()], ..none() };
    let e = f.err(&bad, None, &[req]);
    assert!(
        matches!(&e, Error::RequirementViolation { key, refused, .. } if key == "network.allowed_hosts" && refused.contains("evil.example")),
        "{e}"
    );
    let port = Overrides { allow_hosts: vec!["github.com:8443".into()], ..none() };
    assert_eq!(f.err(&port, None, &[req]).code(), "requirement_violation");
    let on = Overrides { network: Some(NetworkMode::On), ..none() };
    assert_eq!(f.err(&on, None, &[req]).code(), "requirement_violation", "a ceiling forbids `on` unless allow_on");
    f.ok(&on, None, &[&format!("{req}allow_on = true\n")]);
}

#[test]
fn mandatory_lists_survive_user_config() {
    let f = Fixture::new();
    let req = "mandatory_deny_read = [\"~/corp-secrets\"]\nmandatory_protected = [\"Makefile\"]\n";
    let cfg = "[filesystem]\ndeny_read = []\nprotected = []\n";
    let p = f.ok(&none(), Some(cfg), &[req]);
    let secret = p
        .filesystem
        .deny_read
        .iter()
        .find(|s| s.value == f.home.join("corp-secrets"))
        .expect("mandatory deny-read kept");
    assert!(matches!(&secret.source, Source::Requirement { key, .. } if key == "mandatory_deny_read"));
    assert_eq!(paths(&p.filesystem.protected), vec![f.ws.join("Makefile").as_path()]);
    assert_eq!(decide(&p, &f.ws.join("Makefile")).access, Access::Read);
    let e = f.err(&none(), None, &["mandatory_deny_read = [\"relative/x\"]\n"]);
    assert_eq!(e.code(), "config_invalid_value");
}

#[test]
fn implementation_requirements() {
    let f = Fixture::new();
    let req = "[linux]\nallowed_implementations = [\"landlock-only\"]\n[windows]\nallowed_sandbox_implementations = [\"unelevated\"]\n";
    // landlock-only is weaker: on Linux a requirement alone does not select it, the user's
    // config must. Elsewhere, and without a sandbox, the Linux setting does nothing.
    if cfg!(target_os = "linux") {
        let e = f.err(&none(), None, &[req]);
        assert_eq!(e.code(), "requirement_violation");
        assert!(e.to_string().contains("allow_fallback = true"), "the message says how to accept it: {e}");
    } else {
        f.ok(&none(), None, &[req]);
    }
    let full = Overrides { mode: Some(Mode::DangerFullAccess), ..none() };
    f.ok(&full, None, &[req]);
    let p = f.ok(&none(), Some("[linux]\nimplementation = \"landlock-only\"\n"), &[req]);
    assert_eq!(p.linux.implementation, LinuxImplementation::LandlockOnly);
    let p = f.ok(&none(), Some("[linux]\nallow_fallback = true\n"), &[req]);
    assert_eq!(p.linux.implementation, LinuxImplementation::LandlockOnly, "consent through the fallback");
    assert_eq!(p.linux.allowed_implementations, vec![LinuxImplementation::LandlockOnly]);
    assert_eq!(p.windows.sandbox, WindowsImplementation::Unelevated);
    assert!(matches!(p.provenance.get("linux.implementation"), Source::Requirement { .. }));
    let explicit = Overrides { linux_implementation: Some(LinuxImplementation::Namespaces), ..none() };
    assert_eq!(
        f.err(&explicit, None, &[req]).code(),
        "requirement_violation",
        "an explicit choice is refused, not changed"
    );
    let p = f.ok(
        &none(),
        Some("[linux]\nallow_fallback = true\n"),
        &["[linux]\nallowed_implementations = [\"namespaces\"]\n"],
    );
    assert_eq!(p.linux.candidates(), vec![LinuxImplementation::Namespaces], "fallback removed when not allowed");
    let p = f.ok(&none(), Some("[linux]\nallow_fallback = true\n"), &[]);
    assert_eq!(p.linux.candidates(), vec![LinuxImplementation::Namespaces, LinuxImplementation::LandlockOnly]);
}

#[test]
fn private_desktop_and_escalation() {
    let f = Fixture::new();
    let req = "allow_escalation = false\n[windows]\nprivate_desktop = true\n";
    let p = f.ok(&none(), None, &[req]);
    assert!(!p.allow_escalation);
    assert!(matches!(p.provenance.get("allow_escalation"), Source::Requirement { .. }));
    assert!(matches!(p.provenance.get("windows.private_desktop"), Source::Requirement { .. }));
    let e = f.err(&none(), Some("[windows]\nprivate_desktop = false\n"), &[req]);
    assert_eq!(e.code(), "requirement_violation");
}

#[test]
fn unknown_requirement_keys_and_syntax() {
    let f = Fixture::new();
    let e = f.err(&none(), None, &["allowed_mode = [\"read-only\"]\n"]);
    assert!(matches!(&e, Error::UnknownKey { suggestion: Some(s), .. } if s == "allowed_modes"), "{e}");
    let e = f.err(&none(), None, &["allowed_hosts = [\"x.com\"]\n"]);
    assert!(matches!(&e, Error::UnknownKey { suggestion: Some(s), .. } if s == "network.allowed_hosts"), "{e}");
    assert_eq!(f.err(&none(), None, &["allowed_modes = [\"read-only\"\n"]).code(), "config_syntax");
    assert_eq!(f.err(&none(), None, &["allowed_modes = [\"sometimes\"]\n"]).code(), "config_invalid_value");
}

#[test]
fn load_reads_files_and_missing_optional_ones() {
    let f = Fixture::new();
    // No user config, no system requirements: defaults.
    let mut locations = f.locations.clone();
    locations.system_requirements = f.home.join("no-such-requirements.toml");
    let p = load(&none(), None, &[], &f.env, &locations).unwrap();
    assert_eq!(p.mode, Mode::WorkspaceWrite);
    // A system requirements file is read from its fixed location.
    fs::write(&locations.system_requirements, "allowed_modes = [\"read-only\"]\n").unwrap();
    assert_eq!(load(&none(), None, &[], &f.env, &locations).unwrap_err().code(), "requirement_violation");
    // An explicit --config that does not exist is an error, not silently ignored.
    let e = load(&none(), Some(Path::new("/nonexistent/stockade.toml")), &[], &f.env, &f.locations).unwrap_err();
    assert_eq!(e.code(), "config_unreadable");
}
