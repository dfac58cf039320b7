//! THREATS.md §3.4: resource probes R1-R7, bounded so the suite stays fast.

use std::time::Duration;

use crate::harness::{core_pattern, obs_of, Case, Impl, Residual};
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
    // The process limit refuses with EAGAIN (a cgroup's pids.max and RLIMIT_NPROC alike); any
    // other failure would be the probe's, not the limit.
    if o.errno() != Some(i64::from(libc::EAGAIN)) {
        c.fail(format!("R1: the bomb did not end in EAGAIN\n{}", o.ctx));
    }
    // ...at the configured limit, not at some lower one. (An unprivileged `landlock-only` run
    // has only RLIMIT_NPROC, which counts every process of the uid on the host, with the count
    // at launch added as headroom: the suite's other contexts for that user start and end
    // processes meanwhile, so there the count can drift either way.)
    let forked: Option<u64> =
        o.detail().split("after ").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|n| n.parse().ok());
    let shared_count = c.imp == Impl::LandlockOnly && c.acc.uid != 0;
    if !shared_count && !forked.is_some_and(|n| (32..64).contains(&n)) {
        c.fail(format!("R1: expected the bomb to stop just below 64 processes, got {forked:?}\n{}", o.ctx));
    }
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
    // tmpfs pages are memory too: `/dev/shm` holds no more than the limit. (Under
    // `landlock-only` it is the host's, a documented gap; R3 checks where fills land.)
    if c.imp == Impl::Namespaces {
        let r = c.sandboxed_with(
            &["--config", &cfg],
            &["/bin/sh", "-c", "head -c 268435456 /dev/zero > /dev/shm/fill; echo size=$(stat -c %s /dev/shm/fill)"],
        );
        let size: Option<u64> = r.out().split("size=").nth(1).and_then(|t| t.trim().parse().ok());
        match size {
            // The tmpfs's own size (no memory cgroup: unprivileged), or the run's memory cgroup
            // killing the writer (tmpfs pages are charged to it: root).
            Some(n) if n <= 64 << 20 => {}
            None if r.code == Some(128 + 9) => {}
            _ => c.fail(format!(
                "R2: /dev/shm took more than the 64 MiB limit (or nothing was written)\n{}",
                r.describe()
            )),
        }
        if size == Some(0) {
            c.fail(format!("R2-control: nothing could be written to /dev/shm\n{}", r.describe()));
        }
    }
});

// R3: a bounded 256 MiB fill of /tmp stays in the private tmpfs (or hits its size limit) and
// never lands in the host /tmp.
probe_test!(r3_tmp_fill, |c: &mut Case| {
    // The same for /dev/shm: a fill never lands in the host's.
    let shm = format!("/dev/shm/sbx-fill-{}", crate::harness::rand_token());
    let r = c.sandboxed(&["/bin/sh", "-c", &format!("head -c 16777216 /dev/zero > {shm} && echo wrote")]);
    if c.imp == Impl::Namespaces && !r.out().contains("wrote") {
        c.fail(format!("R3-control: nothing could be written to the private /dev/shm\n{}", r.describe()));
    }
    if std::path::Path::new(&shm).exists() {
        let _ = std::fs::remove_file(&shm);
        if c.imp == Impl::Namespaces {
            c.fail(format!("R3: a /dev/shm fill landed in the host's /dev/shm\n{}", r.describe()));
        }
    }
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

/// The default policy's open-file limit per process (`process.max_open_files`).
const MAX_OPEN_FILES: u64 = 65_536;

/// How many descriptors `fd-exhaust` opened before it stopped (its detail says "after N fds",
/// or "opened N fds" when it reached the number asked for).
fn fds_opened(o: &crate::harness::Obs) -> Option<u64> {
    let d = o.detail();
    let after = d.split("after ").nth(1).or_else(|| d.split("opened ").nth(1))?;
    after.split_whitespace().next()?.parse().ok()
}

/// This process's open-file limit (soft, hard), which stockade and the command inherit.
fn nofile() -> (u64, u64) {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    (rl.rlim_cur, rl.rlim_max)
}

/// R6 against the limit `limit`, which `opts` set: a process of the command opens files until
/// `EMFILE` after raising its soft limit to the hard one, as a program that wants many files
/// does, and stops just below `limit` (not at a lower limit: the control that the limit is the
/// policy's); it cannot raise its hard limit past `limit`. Negative controls, without the
/// sandbox: the same script opens more than `limit`, and the hard limit can be set above it.
fn r6_limit_holds(c: &mut Case, opts: &[&str], limit: u64, what: &str) {
    let p = c.probe_bin();
    let exhaust = format!("ulimit -Sn \"$(ulimit -Hn)\" && exec '{p}' fd-exhaust {}", 2 * limit);
    let inside = obs_of(&c.sandboxed_with(opts, &["/bin/sh", "-c", &exhaust]), "fd-exhaust (soft raised to hard)");
    c.denied(&format!("R6 ({what}: open files beyond the limit)"), &inside);
    match fds_opened(&inside) {
        Some(n) if n <= limit && n + 16 >= limit && inside.errno() == Some(i64::from(libc::EMFILE)) => {}
        _ => c.fail(format!("R6 ({what}): expected EMFILE just below {limit} open files, got {}", inside.ctx)),
    }
    let outside = obs_of(&c.unsandboxed(&["/bin/sh", "-c", &exhaust]), "fd-exhaust without the sandbox");
    match fds_opened(&outside) {
        Some(n) if n > limit => {}
        _ => {
            c.fail(format!("R6-negative ({what}): without the sandbox the probe should pass {limit}: {}", outside.ctx))
        }
    }
    let raise = format!("ulimit -n {} && echo raised", limit + 1);
    let r = c.sandboxed_with(opts, &["/bin/sh", "-c", &raise]);
    if r.out().contains("raised") {
        c.fail(format!("R6 ({what}): the command raised its hard open-file limit\n{}", r.describe()));
    }
    let r = c.unsandboxed(&["/bin/sh", "-c", &raise]);
    if !r.out().contains("raised") {
        c.fail(format!("R6-negative ({what}): without the sandbox the hard limit could not be set\n{}", r.describe()));
    }
}

// R6: open files per process are limited (`process.max_open_files`), and the command cannot
// raise the limit. A configured limit below what the test runner has is always checked; the
// default (65,536) only where the runner's hard limit is above it, which the harness raises when
// it may (root with CAP_SYS_RESOURCE; raising a hard limit harms no other test).
probe_test!(r6_fd_exhaustion, |c: &mut Case| {
    let (soft, inherited) = nofile();
    let limit = (inherited.min(MAX_OPEN_FILES) / 2).max(64);
    let cfg = config(c, &format!("[process]\nmax_open_files = {limit}\n"));
    r6_limit_holds(c, &["--config", &cfg], limit, "configured");
    // The smallest limit a policy may set still starts a command: the limit is set just
    // before `execve`, after the set-up's own descriptors.
    let min = config(c, "[process]\nmax_open_files = 16\n");
    let r = c.sandboxed_with(&["--config", &min], &["/bin/sh", "-c", "echo started; ulimit -Hn"]);
    if r.out().split_whitespace().collect::<Vec<_>>() != ["started", "16"] {
        c.fail(format!("R6: a command under max_open_files = 16 did not start with that limit\n{}", r.describe()));
    }
    if inherited <= MAX_OPEN_FILES {
        // Only the hard limit rises; the soft one, which the other tests in this process use,
        // stays as it is.
        let rl = libc::rlimit { rlim_cur: soft, rlim_max: 4 * MAX_OPEN_FILES };
        // SAFETY: a valid struct; raising this process's hard limit, which only root may do.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
            let e = std::io::Error::last_os_error();
            crate::harness::skip(
                &c.name,
                "r6-default-limit",
                &format!(
                    "the default limit ({MAX_OPEN_FILES}) cannot bind: this runner's hard open-file limit is \
                     {inherited} and raising it failed ({e}; it takes CAP_SYS_RESOURCE)"
                ),
            );
            return;
        }
    }
    r6_limit_holds(c, &[], MAX_OPEN_FILES, "default");
});

// R6 (kernel objects): the `inotify_init`, `eventfd` and `timerfd` loops THREATS.md names. Each
// object is a descriptor, so the per-process open-file limit stops them as it stops files (and
// the loop gets well past a dozen first: the sandbox does not refuse the calls themselves). The
// same loops without the sandbox pass the limit (the control). Inotify instances and watches are
// also counted per user, shared with the user's own processes: that part is a gap every run
// lists. One context at a time makes inotify instances (at most 40, against 128 per user by
// default), so the contexts of one user do not run each other out and no other process of the
// runner's user is starved while this runs.
static INOTIFY: std::sync::Mutex<()> = std::sync::Mutex::new(());

probe_test!(r6_kernel_objects, |c: &mut Case| {
    const LIMIT: u64 = 32;
    let cfg = config(c, &format!("[process]\nmax_open_files = {LIMIT}\n"));
    let p = c.probe_bin();
    for kind in ["inotify", "eventfd", "timerfd"] {
        let _one = (kind == "inotify").then(|| INOTIFY.lock().unwrap_or_else(|e| e.into_inner()));
        let inside = c.sandboxed_with(&["--config", &cfg], &[&p, "fd-exhaust", &(2 * LIMIT).to_string(), kind]);
        let inside = obs_of(&inside, &format!("fd-exhaust {kind} (max_open_files = {LIMIT})"));
        c.denied(&format!("R6 ({kind} instances beyond the open-file limit)"), &inside);
        match fds_opened(&inside) {
            Some(n) if n < LIMIT && n + 8 >= LIMIT && inside.errno() == Some(i64::from(libc::EMFILE)) => {}
            _ => c.fail(format!("R6 ({kind}): expected EMFILE just below {LIMIT} descriptors, got {}", inside.ctx)),
        }
        if kind == "inotify" && Case::gap_listed(&inside.gaps, &["inotify instances"]).is_none() {
            c.fail(format!("R6 (inotify): the per-user inotify limits are not listed as a gap\n{}", inside.ctx));
        }
        let outside = c.probe_unsandboxed(&["fd-exhaust", &(LIMIT + 8).to_string(), kind]);
        c.escapes(&format!("R6-negative ({kind} past {LIMIT} without the sandbox)"), &outside);
    }
});

/// A random System V IPC key (positive, never `IPC_PRIVATE`).
fn ipc_key() -> i32 {
    let mut b = [0u8; 4];
    // SAFETY: valid buffer.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    (i32::from_ne_bytes(b) & 0x3fff_ffff) | 0x1000_0000
}

/// The host's id for the shared memory segment with `key`, if there is one.
fn host_shm(key: i32) -> Option<i32> {
    // SAFETY: shmget without flags only looks the segment up.
    let id = unsafe { libc::shmget(key, 0, 0) };
    (id >= 0).then_some(id)
}

fn remove_shm(id: i32) {
    // SAFETY: removing a segment this test created or found by its random key.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

/// A segment the test made on the host, removed however the test ends.
struct HostSegment(i32);

impl Drop for HostSegment {
    fn drop(&mut self) {
        remove_shm(self.0);
    }
}

// R6 (IPC): System V objects are private to the sandbox and go with it. A segment the host
// made is invisible inside (visible without the sandbox: the probe is not blind); one made
// inside (the control: IPC works) is not on the host after the run.
probe_test!(r6_sysv_ipc, |c: &mut Case| {
    const GAP: &[&str] = &["System V IPC"];
    let (outside, inside) = (ipc_key(), ipc_key());
    // SAFETY: creating a one-page segment with a random key, readable by the run's user.
    let host_id = unsafe { libc::shmget(outside, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o644) };
    if host_id < 0 {
        let e = std::io::Error::last_os_error();
        crate::harness::skip(&c.name, "sysv-ipc", &format!("this kernel offers no System V shared memory here: {e}"));
        return;
    }
    let segment = HostSegment(host_id);
    let (k_out, k_in) = (outside.to_string(), inside.to_string());
    let neg = c.probe_unsandboxed(&["sysv-shm", &k_out]);
    c.escapes("R6-negative (host segment visible without a sandbox)", &neg);
    let o = c.batch(&[&["sysv-shm", &k_out], &["sysv-shm-create", &k_in], &["sysv-shm", &k_in]]);
    c.denied_or_gap("R6 (host System V segment seen inside)", &o[0], GAP);
    c.allowed("R6-control (create a segment inside)", &o[1]);
    c.allowed("R6-control (see the segment made inside)", &o[2]);
    drop(segment);
    if let Some(id) = host_shm(inside) {
        remove_shm(id);
        match (c.imp, Case::gap_listed(&o[1].gaps, GAP)) {
            (Impl::LandlockOnly, Some(g)) => {
                c.note(format!("landlock-only: R6 the sandbox's segment is on the host (documented gap: {g})"))
            }
            _ => {
                c.fail(format!("R6: a System V segment made in the sandbox is on the host after the run\n{}", o[1].ctx))
            }
        }
    }
});

/// Core files a crash in `dir` may have left there (a relative `core_pattern` such as Debian's
/// `core`, with or without `.PID`), removed.
fn remove_cores(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("core") && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Serializes the cases that change the host's `core_pattern`: every context of the suite runs
/// in this one process.
static CORE_PATTERN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A `core_pattern` set for a test, and the old one put back when it is dropped.
struct CorePattern(Vec<u8>);

impl CorePattern {
    fn set(pattern: &str) -> std::io::Result<Self> {
        let old = core_pattern();
        std::fs::write("/proc/sys/kernel/core_pattern", pattern)?;
        Ok(Self(old))
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/core_pattern", &self.0);
    }
}

// R7: no core dumps, neither core files nor cores handed to the host's `core_pattern` helper
// (systemd-coredump, apport: root programs in the host's namespaces that read the crashed
// process's memory). The command's limit is 1 byte, and it cannot change it (lowering it to 0
// is accepted and ignored): at 0 a helper would still get the core. A crash inside, with the
// limit as inherited, lowered to 0 or raised as far as allowed, dumps nothing; without the
// sandbox a crash with the limit raised writes a core file (the probe sees dumps). With a pipe
// in `core_pattern` (opt-in, root: STOCKADE_TEST_REQUIRE=core-pattern, since it changes a
// host-wide setting for a moment; the pattern discards what it gets), the same crashes inside
// reach no helper, where a crash at limit 0 without the sandbox does.
probe_test!(r7_core, |c: &mut Case| {
    // Where the host's crash handler is out of the limit's reach (a socket helper, or a pipe
    // helper under a caller's hard limit of 0), every run must say so.
    const HELPER: &[&str] = &["core_pattern", "helper"];
    let neg = c.probe_unsandboxed(&["core-limit"]);
    c.escapes("R7-negative (the core limit without the sandbox)", &neg);
    let o = c.probe(&["core-limit"]);
    c.denied_or_residual("R7 (the core limit)", &o, Residual::CoreHelper, HELPER);
    let ws = c.ws_s();
    let crashes = |c: &mut Case, how: &str| {
        let o = c.batch(&[&["core-dump", &ws, "as-is"], &["core-dump", &ws, "zero"], &["core-dump", &ws, "max"]]);
        for (o, limit) in o.iter().zip(["as inherited", "lowered to 0", "raised"]) {
            let id = format!("R7 (a crash with the core limit {limit}, {how})");
            c.denied_or_residual(&id, o, Residual::CoreHelper, HELPER);
        }
        remove_cores(&c.ws);
    };
    let pattern = core_pattern();
    if pattern.starts_with(b"|") || pattern.starts_with(b"@") {
        crashes(c, "to the host's core_pattern helper");
    } else {
        crashes(c, "core file");
        if pattern.contains(&b'/') {
            c.note(
                "R7-negative skipped: core_pattern names another directory, where the control would leave a core"
                    .into(),
            );
        } else {
            let o = c.probe_unsandboxed(&["core-dump", &ws, "max"]);
            remove_cores(&c.ws);
            c.escapes("R7-negative (a core file without the sandbox)", &o);
        }
    }
    if !crate::harness::required().iter().any(|r| r == "core-pattern") {
        crate::harness::skip(
            &c.name,
            "core-pattern",
            "the core_pattern helper case changes a host-wide setting for a moment: \
             STOCKADE_TEST_REQUIRE=core-pattern runs it (as root)",
        );
        return;
    }
    let _one = CORE_PATTERN.lock().unwrap_or_else(|e| e.into_inner());
    let set = CorePattern::set("|/bin/dd of=/dev/null status=none");
    if let Err(e) = set {
        panic!("{}: STOCKADE_TEST_REQUIRE=core-pattern, but core_pattern cannot be set: {e}", c.name);
    }
    crashes(c, "to a core_pattern pipe helper");
    let o = c.probe_unsandboxed(&["core-dump", &ws, "zero"]);
    c.escapes("R7-negative (a helper gets the core at limit 0 without the sandbox)", &o);
    drop(set);
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
