//! Issue 3 "Must show": bad input gets a clear error and exit 125.

use std::time::Duration;

use crate::harness::Case;

fn refused(c: &mut Case, what: &str, opts: &[&str]) {
    let r = c.stockade(opts, &["true"], b"", Duration::from_secs(60));
    let code = r.error_code();
    let msg =
        r.report.as_ref().and_then(|v| v.pointer("/error/message")).and_then(|m| m.as_str()).unwrap_or("").to_owned();
    if r.code == Some(125) && r.report.is_none() && r.stderr.contains("error:") {
        // Rejected while parsing the command line, before a report exists.
        crate::harness::loud(&format!(
            "NOTE {}: {what} -> 125 (argument error): {}",
            c.name,
            r.stderr.lines().next().unwrap_or("")
        ));
        return;
    }
    if r.code != Some(125) || code.is_none() || msg.is_empty() || r.stderr.trim().is_empty() {
        c.fail(format!("{what}: want exit 125 with an error code and a message\n{}", r.describe()));
    } else if code.as_deref() == Some("backend_unavailable") {
        c.fail(format!("{what}: refused only because the backend is missing, not for the bad input\n{}", r.describe()));
    } else {
        crate::harness::loud(&format!("NOTE {}: {what} -> 125 {:?}: {msg}", c.name, code));
    }
}

/// Under landlock-only protected paths are a documented gap (nothing is bound), so running is
/// acceptable there when the report lists it.
fn refused_or_gap(c: &mut Case, what: &str, opts: &[&str]) {
    if c.imp == crate::harness::Impl::LandlockOnly {
        let r = c.stockade(opts, &["true"], b"", Duration::from_secs(60));
        if r.code == Some(0) {
            match Case::gap_listed(&r.gaps(), &["protected"]) {
                Some(g) => c.note(format!("landlock-only: {what}: runs (documented gap: {g})")),
                None => {
                    c.fail(format!("{what}: ran under landlock-only without the protected-path gap\n{}", r.describe()))
                }
            }
            return;
        }
    }
    refused(c, what, opts);
}

probe_test!(bad_input_refused, |c: &mut Case| {
    let imp = c.imp.flag();
    let missing = c.dir.join("no-such-dir").to_string_lossy().into_owned();
    let ws = c.ws_s();
    let home = c.home.to_string_lossy().into_owned();
    refused(c, "nonexistent workspace", &["-C", &missing, "--implementation", imp]);
    refused(c, "nonexistent writable root", &["-C", &ws, "-w", &missing, "--implementation", imp]);
    refused(c, "unknown implementation", &["-C", &ws, "--implementation", "sbx-bogus"]);
    refused(c, "`/` as a writable root", &["-C", &ws, "-w", "/", "--implementation", imp]);
    refused(c, "$HOME as the workspace", &["-C", &home, "--implementation", imp]);
    // A protected path that is a symlink (`ln -s /tmp/x ws/.codex`).
    std::os::unix::fs::symlink("/tmp/x", c.ws.join(".codex")).unwrap();
    refused_or_gap(c, "protected path `.codex` is a symlink", &["-C", &ws, "--implementation", imp]);
    std::fs::remove_file(c.ws.join(".codex")).unwrap();
    std::os::unix::fs::symlink(c.out.join("victim"), c.ws.join(".git/config.sbx")).unwrap();
    std::fs::rename(c.ws.join(".git/config"), c.ws.join(".git/config.real")).unwrap();
    std::fs::rename(c.ws.join(".git/config.sbx"), c.ws.join(".git/config")).unwrap();
    refused_or_gap(c, "protected path `.git/config` is a symlink", &["-C", &ws, "--implementation", imp]);
    std::fs::remove_file(c.ws.join(".git/config")).unwrap();
    std::fs::rename(c.ws.join(".git/config.real"), c.ws.join(".git/config")).unwrap();
});
