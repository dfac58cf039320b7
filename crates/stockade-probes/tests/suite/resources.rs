//! THREATS.md §3.4: resource probes R1-R7, bounded so the suite stays fast.

use std::time::Duration;

use crate::harness::{obs_of, sv, Case, Impl};
use crate::process::{kill_all, survivors};

fn config(c: &Case, body: &str) -> String {
    let p = c.dir.join("config.toml");
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

// R1: a bounded process bomb hits the configured process limit.
probe_test!(r1_fork_bomb, |c: &mut Case| {
    let cfg = config(c, "[process]\nmax_processes = 64\n");
    if c.imp == Impl::Namespaces {
        let o = c.probe_unsandboxed(&["fork-bomb", "300"]);
        c.escapes("R1", &o);
    }
    let p = c.probe_bin();
    let r = c.sandboxed_with(&["--config", &cfg], &[&p, "fork-bomb", "300"]);
    let o = obs_of(&r, "fork-bomb 300 (max_processes = 64)");
    c.denied("R1", &o);
    // The host can still fork after the bomb.
    let t = std::time::Instant::now();
    let ok = std::process::Command::new("/bin/true").status().map(|s| s.success()).unwrap_or(false);
    if !ok || t.elapsed() > Duration::from_secs(2) {
        c.fail(format!("R1: the host could not fork+exec promptly after the bomb ({:?})", t.elapsed()));
    }
});

// R2: memory limit (bounded: 64 MiB limit, 512 MiB allocation).
probe_test!(r2_memory, |c: &mut Case| {
    let cfg = config(c, "[process]\nmemory = \"64MiB\"\n");
    let py = "a = bytearray(512 << 20); print('allocated')";
    if c.imp == Impl::Namespaces {
        let r = c.unsandboxed(&["python3", "-c", py]);
        if !r.out().contains("allocated") {
            c.fail(format!("R2: negative control: 512 MiB allocation failed without a sandbox\n{}", r.describe()));
        }
    }
    let r = c.sandboxed_with(&["--config", &cfg], &["python3", "-c", py]);
    if r.out().contains("allocated") {
        c.fail(format!("R2: 512 MiB allocated under a 64 MiB memory limit\n{}", r.describe()));
    }
});

// R3: a bounded 256 MiB fill of /tmp stays in the private tmpfs (or hits its size limit) and
// never lands in the host /tmp.
probe_test!(r3_tmp_fill, |c: &mut Case| {
    let name = format!("/tmp/sbx-fill-{}", crate::harness::rand_token());
    let r =
        c.sandboxed(&["/bin/sh", "-c", &format!("head -c 268435456 /dev/zero > {name}; echo rc=$?; ls -la {name}")]);
    if std::path::Path::new(&name).exists() {
        let _ = std::fs::remove_file(&name);
        if c.imp == Impl::Namespaces {
            c.fail(format!("R3: the fill landed in the host /tmp\n{}", r.describe()));
        } else {
            c.note("landlock-only: /tmp is the host's".into());
        }
    }
});

// R4: the timeout kills the whole tree, including background children, and says so.
probe_test!(r4_timeout, |c: &mut Case| {
    let p = c.probe_bin();
    let tok = format!("sbx-timeout-{}", crate::harness::rand_token());
    let script = format!("{p} sentinel {tok}-bg & while :; do :; done");
    let r = c.sandboxed_with(&["--timeout", "1"], &["/bin/sh", "-c", &script]);
    if r.code != Some(124) {
        c.fail(format!("R4: expected exit 124 on timeout\n{}", r.describe()));
    }
    if r.elapsed > Duration::from_secs(10) {
        c.fail(format!("R4: a 1 s timeout took {:?}", r.elapsed));
    }
    let rep = r.report.clone().unwrap_or_default();
    if rep.pointer("/status/kind").and_then(|k| k.as_str()) != Some("timed_out") || rep["timed_out"] != true {
        c.fail(format!("R4: the report does not say timed_out\n{}", r.describe()));
    }
    let left = survivors(&tok, 1500);
    if !left.is_empty() {
        kill_all(&left);
        c.fail(format!("R4: a background child survived the timeout: {left:?}"));
    }
});

// R6: fd exhaustion hits a limit.
probe_test!(r6_fd_exhaustion, |c: &mut Case| {
    c.expect_all_denied("R6", &[sv(&["fd-exhaust", "2000000"])], None, &[]);
});

// R7: no core dumps handed to the host's core_pattern helper.
probe_test!(r7_core, |c: &mut Case| {
    c.expect_all_denied("R7", &[sv(&["core-limit"])], None, &[0]);
});

// R5: output flooding: one 64 MiB line without a newline on stdout plus 16 MiB on stderr arrive
// complete, and the supervisor's memory stays bounded while relaying them.
probe_test!(r5_output_flood, |c: &mut Case| {
    let r = c.sandboxed(&["/bin/sh", "-c", "head -c 67108864 /dev/zero | tr '\\0' x; head -c 16777216 /dev/zero >&2"]);
    if r.code != Some(0) || r.stdout.len() != 64 << 20 || r.stderr.len() != 16 << 20 {
        c.fail(format!(
            "R5: flood not relayed intact: exit {:?}, stdout {} bytes, stderr {} bytes",
            r.code,
            r.stdout.len(),
            r.stderr.len()
        ));
    }
    if let Some(kb) = r.peak_rss_kb {
        if kb > 64 * 1024 {
            c.fail(format!("R5: the supervisor's peak RSS reached {kb} KiB while relaying 80 MiB"));
        }
    }
});
