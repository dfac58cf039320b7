//! Denial classification against a real policy, the child's environment, and the
//! enforcement report. Sample log lines are written for these tests.

// Helpers outside #[test] fns panic on broken fixtures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;

use common::*;
use stockade_macos::command::{child_env, sandbox_exec_argv};
use stockade_macos::denial::{classify, parse_line, Collector, Report};
use stockade_macos::enforcement::{doctor_report, enforcement, HostProbe};
use stockade_macos::{generate, ProxyEndpoint};
use stockade_policy::{CheckStatus, DenialKind, Grant, LayerStatus, NetworkMode};

fn report(op: &str, target: &str) -> Report {
    Report { process: "probe".into(), pid: 7, operation: op.into(), target: target.into() }
}

#[test]
fn denials_name_the_rule_and_a_scoped_grant() {
    let p = default_policy();
    let d = classify(&p, &report("file-read-data", "/Users/dev/.ssh/id_ed25519"));
    assert_eq!((d.layer.as_str(), d.kind), ("seatbelt", DenialKind::FileRead));
    assert!(d.rule.as_deref().unwrap().contains("deny-read `/Users/dev/.ssh`"), "{:?}", d.rule);
    assert_eq!(d.suggested_grant, Some(Grant::ReadPath { path: "/Users/dev/.ssh/id_ed25519".into() }));

    let d = classify(&p, &report("file-write-create", "/Users/dev/src/project/.git/hooks/pre-commit"));
    assert_eq!(d.kind, DenialKind::FileWrite);
    assert!(d.rule.as_deref().unwrap().contains("protected"), "{:?}", d.rule);
    assert_eq!(
        d.suggested_grant,
        Some(Grant::WritePath { path: "/Users/dev/src/project/.git/hooks/pre-commit".into() })
    );

    let d = classify(&p, &report("file-write-data", "/Users/dev/.zshrc"));
    assert!(d.rule.as_deref().unwrap().contains("deny-write"), "{:?}", d.rule);

    let d = classify(&p, &report("file-write-unlink", "/Users/dev/src/project/.git"));
    assert!(d.rule.as_deref().unwrap().contains("parent of the carve-out"), "{:?}", d.rule);

    let d = classify(&p, &report("file-write-create", "/Users/dev/elsewhere/x"));
    assert!(d.rule.as_deref().unwrap().contains("not under a writable root"), "{:?}", d.rule);

    let d = classify(&p, &report("network-outbound", "93.184.216.34:443"));
    assert_eq!(d.kind, DenialKind::Network);
    assert_eq!(d.suggested_grant, Some(Grant::Host { rule: "93.184.216.34:443".into() }));
    assert!(d.rule.as_deref().unwrap().contains("network mode `off`"));

    let d = classify(&p, &report("network-outbound", "/private/var/run/docker.sock"));
    assert_eq!(d.suggested_grant, None, "no grant opens a host socket");
    assert!(d.rule.as_deref().unwrap().contains("unix sockets"));

    let d = classify(&p, &report("signal", ""));
    assert_eq!((d.kind, d.suggested_grant.clone()), (DenialKind::Process, None));
    let d = classify(&p, &report("mach-lookup", "com.apple.FSEvents"));
    assert_eq!(d.kind, DenialKind::Syscall);
    assert_eq!(d.target, "com.apple.FSEvents");
}

#[test]
fn collector_dedups_and_keeps_order() {
    let p = default_policy();
    let t = tag();
    let line = |msg: &str| serde_json::json!({"processID": 0, "eventMessage": msg}).to_string();
    let mut c = Collector::default();
    assert!(c.push_line(
        &p,
        &t,
        &line("Sandbox: cat(1) deny(1) file-read-data /Users/dev/.aws/credentials stockade-0123abcd")
    ));
    assert!(!c.push_line(
        &p,
        &t,
        &line("Sandbox: cat(2) deny(1) file-read-data /Users/dev/.aws/credentials stockade-0123abcd")
    ));
    assert!(c.push_line(&p, &t, &line("Sandbox: nc(3) deny(1) network-outbound 1.1.1.1:53 stockade-0123abcd")));
    assert!(!c.push_line(&p, &t, "not json"));
    let d = c.finish();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].target, "/Users/dev/.aws/credentials");
    assert!(parse_line(&line("Sandbox: x(1) deny(1) file-read-data /a"), &t).is_none(), "untagged");
}

#[test]
fn child_environment_is_scrubbed_and_points_at_tmp_and_proxy() {
    let host: Vec<(OsString, OsString)> = [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/Users/dev"),
        ("GITHUB_TOKEN", "ghp_x"),
        ("SSH_AUTH_SOCK", "/private/tmp/com.apple.launchd.x/Listeners"),
        ("TMPDIR", "/var/folders/zz/T/"),
        ("HTTPS_PROXY", "http://evil:1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).into(), (*v).into()))
    .collect();
    let get = |env: &[(OsString, OsString)], k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());

    let off = child_env(&default_policy(), &host, Some(std::path::Path::new(TMP)), None);
    assert_eq!(get(&off, "PATH"), Some("/usr/bin:/bin".into()));
    assert_eq!(get(&off, "GITHUB_TOKEN"), None);
    assert_eq!(get(&off, "SSH_AUTH_SOCK"), None);
    assert_eq!(get(&off, "TMPDIR"), Some(TMP.into()));
    assert_eq!(off.iter().filter(|(k, _)| k == "TMPDIR").count(), 1);
    assert_eq!(get(&off, "HTTPS_PROXY"), None);

    let proxy = ProxyEndpoint { port: PROXY_PORT, unix_socket: None };
    let allow = child_env(&with_network(default_policy(), NetworkMode::Allow), &host, None, Some(&proxy));
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"] {
        assert_eq!(get(&allow, k), Some(url.clone().into()), "{k}");
    }
    assert_eq!(allow.iter().filter(|(k, _)| k == "HTTPS_PROXY").count(), 1);
}

#[test]
fn sandbox_exec_argv_ends_options_before_the_command() {
    let prof = generate(&default_policy(), &facts()).unwrap();
    let argv = sandbox_exec_argv(&prof, "-rf".as_ref(), &["x".into()]);
    assert_eq!(argv[0], "-p");
    let dashdash = argv.iter().position(|a| a == "--").unwrap();
    assert_eq!(&argv[dashdash + 1..], &[OsString::from("-rf"), OsString::from("x")]);
    assert!(argv[..dashdash].iter().skip(2).step_by(2).all(|a| a == "-D"));
}

#[test]
fn enforcement_names_the_gaps() {
    let e = enforcement(&default_policy(), false, true);
    assert!(e.layers.iter().any(|l| l.layer == "seatbelt" && l.status == LayerStatus::Full));
    assert!(e.gaps.iter().any(|g| g.contains("pid namespace")));
    assert!(e.gaps.iter().any(|g| g.contains("max_processes")));
    let rl = e.layers.iter().find(|l| l.layer == "rlimits").expect("an rlimits layer");
    assert!(rl.status == LayerStatus::Full && rl.detail.contains("RLIMIT_CORE=0"), "{rl:?}");
    assert!(
        rl.detail.contains(&format!("RLIMIT_NOFILE at most {}", stockade_policy::defaults::MAX_OPEN_FILES)),
        "{rl:?}"
    );
    assert!(!e.gaps.iter().any(|g| g.contains("max_open_files")), "enforced, so not a gap");
    let allow = with_network(default_policy(), NetworkMode::Allow);
    let e = enforcement(&allow, false, true);
    assert!(e.layers.iter().any(|l| l.layer == "seatbelt-network" && l.status == LayerStatus::None));
}

#[test]
fn doctor_reports_each_check() {
    let ok = HostProbe {
        sandbox_exec: Ok(()),
        os_version: Some("15.1".into()),
        profile_compiles: Some(Ok(())),
        log_available: true,
        proxy_available: false,
    };
    let r = doctor_report(&default_policy(), &ok);
    assert_eq!(r.platform, "macos");
    assert_eq!(r.implementation.as_deref(), Some("seatbelt"));
    assert!(r.checks.iter().all(|c| c.status == CheckStatus::Ok), "{:?}", r.checks);

    let broken =
        HostProbe { sandbox_exec: Err("No such file or directory".into()), profile_compiles: None, ..ok.clone() };
    let r = doctor_report(&default_policy(), &broken);
    assert_eq!(r.implementation, None);
    assert_eq!(r.checks[0].status, CheckStatus::Missing);
    assert!(r.checks[0].fix.is_some());

    let rejected =
        HostProbe { profile_compiles: Some(Err("unbound variable: file-map-executable".into())), ..ok.clone() };
    assert_eq!(doctor_report(&default_policy(), &rejected).implementation, None);

    let mut danger = default_policy();
    danger.mode = stockade_policy::Mode::DangerFullAccess;
    assert_eq!(doctor_report(&danger, &ok).implementation.as_deref(), Some("none"));

    let allow = with_network(default_policy(), NetworkMode::Allow);
    let r = doctor_report(&allow, &ok);
    assert_eq!(r.implementation, None, "allow without the proxy is refused");
    assert!(r.checks.iter().any(|c| c.name == "allowlist proxy" && c.status == CheckStatus::Missing));
}
