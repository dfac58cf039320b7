//! The checks themselves can fail: a probe run without the sandbox must be reported as an
//! escape by the same code that judges sandboxed runs (STYLE.md 10/12), and
//! `STOCKADE_TEST_REQUIRE` turns a skip into a failure.

use std::time::Duration;

use crate::harness::{residual_gap_problems, skip, sv, Case, Impl, Residual};

// Self-test: every verdict path reports an escape when there is no sandbox.
probe_test!(meta_failures_are_reported, |c: &mut Case| {
    if c.imp == Impl::LandlockOnly {
        return; // implementation-independent; once per account is enough
    }
    c.quiet = true;
    let o = c.out_s();
    let s = c.sentinel.pid().to_string();
    let p4 = c.listeners.tcp4_port().to_string();
    let abs = c.listeners.abstract_name.clone();
    let items = vec![
        sv(&["write", &format!("{o}/meta")]),
        sv(&["tcp-connect", "127.0.0.1", &p4]),
        sv(&["unix-abstract", &abs]),
        sv(&["kill", &s, "9"]),
    ];
    let obs = c.run_batch(&items, false);
    std::thread::sleep(Duration::from_millis(100));
    for ob in &obs {
        assert!(!c.denied("META", ob), "denied() accepted an unsandboxed escape: {}", ob.summary());
    }
    let n = c.failures.len();
    c.host_clean("META");
    let host_failures = c.failures.len() - n;
    // file changed, listeners reached, sentinel dead: three host-side failures expected
    assert!(host_failures >= 3, "host-side checks missed escapes: {:?}", &c.failures[n..]);
    assert!(c.failures.len() >= 4 + 3);
    // The gap logic must not excuse an escape whose gap is not listed.
    c.imp = Impl::LandlockOnly;
    let before = c.failures.len();
    assert!(!c.denied_or_gap("META", &obs[0], &["no-such-gap-word"]));
    assert_eq!(c.failures.len(), before + 1);
    c.imp = Impl::Namespaces;
    // Under namespaces an allowed residual-class action passes only with its gap listed.
    let mut escaped = obs[0].clone();
    for (gaps, excused) in [
        (vec![], false),
        (vec!["the host's /tmp is not private".to_owned()], false),
        (vec!["pre-existing hard links to files outside writable roots".to_owned()], false),
        (vec!["a repository made by `git init` in a subdirectory has writable hooks".to_owned()], true),
    ] {
        escaped.gaps = gaps;
        let before = c.failures.len();
        assert_eq!(c.denied_or_residual("META", &escaped, Residual::NestedRepo, &[]), excused);
        assert_eq!(c.failures.len(), before + usize::from(!excused), "residual verdict for {:?}", escaped.gaps);
    }
    crate::harness::loud(&format!("NOTE {}: self-test saw {} reported failures as expected", c.name, c.failures.len()));
    c.failures.clear();
    c.rebaseline();
});

/// The residual-gap rule of `backend_present`: exactly the accepted residual gaps, none
/// missing (the strings here are made up; only the keywords matter).
#[test]
fn meta_residual_gap_rule() {
    let all = vec![
        "host unix sockets bound after the launch can be connected to".to_owned(),
        "files with several hard links may share the inode of a file outside".to_owned(),
        "a repository created in a subdirectory (`git init sub`) gets writable hooks".to_owned(),
        "a new .git/commondir redirects git's config".to_owned(),
        "inotify instances count against the user's own limits".to_owned(),
        "a crash hands the process's memory to the host's core_pattern socket helper".to_owned(),
    ];
    assert_eq!(residual_gap_problems(&all, &Residual::ALL), Vec::<String>::new());
    for i in 0..all.len() {
        let mut fewer = all.clone();
        fewer.remove(i);
        assert!(!residual_gap_problems(&fewer, &Residual::ALL).is_empty(), "dropping {:?} went unnoticed", all[i]);
        // ...unless that gap is closed on the host (the socket gap with Landlock ABI 9).
        let must: Vec<Residual> = Residual::ALL.into_iter().filter(|r| r.find(&all[i..=i]).is_none()).collect();
        assert_eq!(residual_gap_problems(&fewer, &must), Vec::<String>::new());
    }
    for other in [
        "network on: the command shares the host's network",
        "host unix sockets can be connected to",
        "protected paths inside writable roots are writable",
    ] {
        let mut more = all.clone();
        more.push(other.to_owned());
        assert!(!residual_gap_problems(&more, &Residual::ALL).is_empty(), "unknown gap {other:?} accepted");
    }
}

/// The child half of `require_turns_skip_into_failure`: skips, which must panic when the env
/// var names the feature.
#[test]
fn meta_require_child() {
    // Only as the parent's child, so that a normal run prints no self-test skip line.
    if std::env::var_os("STOCKADE_SELFTEST_CHILD").is_none() {
        return;
    }
    skip("meta_require_child", "sbx-selftest-feature", "self-test of STOCKADE_TEST_REQUIRE");
}

#[test]
fn meta_require_turns_skip_into_failure() {
    let exe = std::env::current_exe().unwrap();
    let run = |req: &str| {
        std::process::Command::new(&exe)
            .args(["--exact", "meta::meta_require_child", "--test-threads=1"])
            .env("STOCKADE_TEST_REQUIRE", req)
            .env("STOCKADE_SELFTEST_CHILD", "1")
            .output()
            .unwrap()
    };
    assert!(!run("sbx-selftest-feature").status.success(), "a required feature's skip did not fail");
    assert!(run("").status.success(), "a plain skip failed");
}

// The backend is present: `stockade run -- true` works. Fails loudly while it is missing.
probe_test!(backend_present, |c: &mut Case| {
    let r = c.sandboxed(&["true"]);
    if r.code != Some(0) {
        c.fail(format!("`stockade run -- true` did not exit 0\n{}", r.describe()));
    }
    let imp = r.report.as_ref().and_then(|v| v["implementation"].as_str()).unwrap_or("").to_owned();
    if imp != c.imp.flag() {
        c.fail(format!("the report says implementation {imp:?}, asked for {}", c.imp.flag()));
    }
    // Posture as reported: under namespaces every isolation layer is full and the only gaps are
    // the accepted residual ones (`Residual`); under landlock-only the gaps name what it cannot
    // keep.
    let layers: Vec<(String, String)> = r
        .report
        .as_ref()
        .and_then(|v| v.pointer("/enforcement/layers"))
        .and_then(|l| l.as_array())
        .map(|a| {
            a.iter()
                .map(|l| (l["layer"].as_str().unwrap_or("").to_owned(), l["status"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let status = |name: &str| layers.iter().find(|(l, _)| l == name).map(|(_, s)| s.clone());
    match c.imp {
        crate::harness::Impl::Namespaces => {
            for l in ["userns", "mountns", "pidns", "netns", "landlock", "seccomp", "nnp", "caps"] {
                if status(l).as_deref() != Some("full") {
                    c.fail(format!("namespaces: layer `{l}` is {:?}, not full: {layers:?}", status(l)));
                }
            }
            // Only the accepted residual gaps, each of them listed while this kernel leaves it open.
            let gaps = r.gaps();
            let must: Vec<Residual> = Residual::ALL.into_iter().filter(|g| g.open_on_this_host()).collect();
            for p in residual_gap_problems(&gaps, &must) {
                c.fail(p);
            }
            // The rule itself must catch a backend that drops one of these disclosures.
            for drop in &must {
                let fewer: Vec<String> =
                    gaps.iter().filter(|g| drop.find(std::slice::from_ref(g)).is_none()).cloned().collect();
                if residual_gap_problems(&fewer, &must).is_empty() {
                    c.fail(format!("self-test: dropping the {drop:?} gap from {gaps:?} went unnoticed"));
                }
            }
            for g in &gaps {
                c.note(format!("namespaces lists the accepted residual gap: {g}"));
            }
        }
        crate::harness::Impl::LandlockOnly => {
            for l in ["landlock", "seccomp", "nnp"] {
                if status(l).is_none() || status(l).as_deref() == Some("none") {
                    c.fail(format!("landlock-only: layer `{l}` is {:?}: {layers:?}", status(l)));
                }
            }
            for words in [&["protected"][..], &["unix socket"], &["metadata"], &["process"]] {
                if Case::gap_listed(&r.gaps(), words).is_none() {
                    c.fail(format!("landlock-only: the report does not list the {words:?} gap: {:?}", r.gaps()));
                }
            }
        }
    }
});

/// The child half of `meta_escape_fails_the_suite`: with `STOCKADE_SELFTEST_ESCAPE=1` it judges
/// an unsandboxed write outside the workspace as if it were sandboxed; the test must fail.
#[test]
fn meta_escape_child() {
    if std::env::var_os("STOCKADE_SELFTEST_ESCAPE").is_none() {
        return;
    }
    crate::harness::run_case("meta_escape_child", crate::harness::Who::User, Impl::Namespaces, |c| {
        let o = c.out_s();
        let obs = c.probe_unsandboxed(&["write", &format!("{o}/deliberate")]);
        c.denied("SELFTEST", &obs);
    });
}

#[test]
fn meta_escape_fails_the_suite() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(&exe)
        .args(["--exact", "meta::meta_escape_child", "--test-threads=1"])
        .env("STOCKADE_SELFTEST_ESCAPE", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("SKIPPED") || String::from_utf8_lossy(&out.stderr).contains("SKIPPED") {
        skip("meta_escape_fails_the_suite", "unprivileged", "the child case could not run");
        return;
    }
    assert!(!out.status.success(), "an unsandboxed escape did not fail the test binary:\n{text}");
    assert!(text.contains("ESCAPE"), "the failure does not name the escape:\n{text}");
}

/// STYLE.md 11: with `STOCKADE_TEST_LANDLOCK_ABI=N` the host must offer exactly Landlock ABI N,
/// so that CI notices when it runs on a different kernel than it declares.
#[test]
fn meta_host_matches_declared() {
    let Some(want) = std::env::var_os("STOCKADE_TEST_LANDLOCK_ABI") else {
        return;
    };
    let want: i64 = want.to_string_lossy().parse().expect("STOCKADE_TEST_LANDLOCK_ABI is a number");
    assert_eq!(
        crate::harness::landlock_abi(),
        Some(want),
        "the host's Landlock ABI differs from STOCKADE_TEST_LANDLOCK_ABI"
    );
}
