//! THREATS.md §3.5: information leaks I1-I6 (I4 is in fs.rs with F12).

use crate::harness::{sv, Case, Impl, Who, SECRET_ENV};

const PROCESS_GAP: &[&str] = &["process"];
/// landlock-only's gap naming the shared UTS and mount namespaces.
const UTS_MOUNT_GAP: &[&str] = &["host's name and mount table"];
/// landlock-only's gap naming the shared network namespace.
const NETNS_GAP: &[&str] = &["/proc/net"];

// I1 + I6: environment secrets and session addresses never pass; the supervisor's and the
// pid-1 environ do not leak them either.
probe_test!(i1_env_secrets, |c: &mut Case| {
    c.extra_env = vec![
        ("DISPLAY".into(), ":99".into()),
        ("WAYLAND_DISPLAY".into(), "wayland-99".into()),
        ("DBUS_SESSION_BUS_ADDRESS".into(), "unix:path=/run/user/0/bus".into()),
    ];
    let mut names: Vec<&str> = SECRET_ENV.iter().map(|(k, _)| *k).collect();
    names.extend(["SSH_AUTH_SOCK", "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]);
    let mut item = vec!["env-has".to_owned()];
    item.extend(names.iter().map(|s| (*s).to_owned()));
    c.expect_all_denied("I1", &[item], None, &[0]);
    c.expect_all_allowed("I1-control", &[sv(&["env-has", "PATH", "HOME"])]);
    let values: Vec<&str> = SECRET_ENV.iter().map(|(_, v)| *v).collect();
    for path in ["/proc/self/environ", "/proc/{ppid}/environ", "/proc/1/environ", "/proc/{supervisor}/environ"] {
        let o = c.probe(&["read", path]);
        let leaked: Vec<&&str> = values.iter().filter(|v| o.detail().contains(**v)).collect();
        if !leaked.is_empty() {
            match (c.imp, Case::gap_listed(&o.gaps, PROCESS_GAP)) {
                (Impl::LandlockOnly, Some(g)) if path != "/proc/self/environ" => {
                    c.note(format!("landlock-only: I1 {path} leaks host env (documented gap: {g})"))
                }
                _ => c.fail(format!("I1: {path} inside the sandbox leaks secrets {leaked:?}\n{}", o.ctx)),
            }
        }
    }
});

// I2: other processes are invisible (pid namespace).
probe_test!(i2_process_visibility, |c: &mut Case| {
    // Reversed, so that no process inside (the probe, its shell) carries the token itself.
    let tok: String = c.sentinel.token.chars().rev().collect();
    c.expect_all_denied("I2", &[sv(&["find-token", &tok])], Some(PROCESS_GAP), &[0]);
    let r = c.sandboxed(&["/bin/sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    let n: usize = r.out().trim().parse().unwrap_or(usize::MAX);
    if c.imp == Impl::Namespaces && n > 10 {
        c.fail(format!("I2: {n} pids visible inside the sandbox\n{}", r.describe()));
    }
});

/// Whether a `/proc/net/tcp` table lists a listening socket (state 0A) on local port `port`.
fn lists_tcp_listener(table: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1).is_some_and(|a| a.ends_with(&want)) && f.get(3) == Some(&"0A")
    })
}

/// Whether a `/proc/net/unix` table lists a socket bound to `path` (`@name` when abstract).
fn lists_unix(table: &str, path: &str) -> bool {
    table.lines().skip(1).any(|l| l.split_whitespace().last() == Some(path))
}

/// The file system type of the topmost mount on `mount_point` in a mountinfo table, and the
/// mount points strictly below it.
fn mount_at(mountinfo: &str, mount_point: &std::path::Path) -> (Option<String>, Vec<String>) {
    let (mut top, mut below) = (None, Vec::new());
    for l in mountinfo.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(mp) = f.get(4) else { continue };
        let mp = mp.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
        let fstype = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1)).map(|t| (*t).to_owned());
        let mp = std::path::Path::new(&mp);
        if mp == mount_point {
            top = fstype;
        } else if mp.starts_with(mount_point) {
            below.push(mp.display().to_string());
        }
    }
    (top, below)
}

// I3: host topology: hostname (UTS namespace), the host's sockets in /proc/net (network
// namespace), and mountinfo (mount namespace): a deny-read directory is a tmpfs inside, never
// the host's directory. Each check has its control: outside, the same view shows the host's
// name, sockets and directory; inside, the same tables list what the command itself opened.
// landlock-only shares these namespaces by design: /proc/net passes there only as its
// documented gap (no private network namespace); hostname and mountinfo are noted.
probe_test!(i3_topology, |c: &mut Case| {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim().to_owned();
    let port = c.listeners.tcp4_port();
    let abs = format!("@{}", c.listeners.abstract_name);
    let ssh = c.home.join(".ssh");
    if c.imp == Impl::Namespaces {
        // Negative controls: outside, each probe sees the host.
        let items: [&[&str]; 4] =
            [&["hostname"], &["read", "/proc/net/tcp"], &["read", "/proc/net/unix"], &["read", "/proc/self/mountinfo"]];
        let o = c.batch_unsandboxed(&items);
        if !(c.escapes("I3-hostname", &o[0]) && o[0].detail().trim() == host) {
            c.fail(format!("I3: negative control: `hostname` outside is not the host's `{host}`: {}", o[0].summary()));
        }
        if !(c.escapes("I3-tcp", &o[1]) && lists_tcp_listener(&o[1].detail(), port)) {
            c.fail(format!("I3: negative control: /proc/net/tcp outside does not list the host listener :{port}"));
        }
        if !(c.escapes("I3-unix", &o[2]) && lists_unix(&o[2].detail(), &abs)) {
            c.fail(format!("I3: negative control: /proc/net/unix outside does not list the host socket {abs}"));
        }
        if c.escapes("I3-mountinfo", &o[3]) && mount_at(&o[3].detail(), &ssh).0.as_deref() == Some("tmpfs") {
            c.fail(format!("I3: negative control: {} is a tmpfs mount outside already", ssh.display()));
        }
    }
    // The key under the deny-read directory: unreadable inside, readable outside.
    let key = ssh.join("id_ed25519").to_string_lossy().into_owned();
    c.expect_all_denied("I3-key", &[sv(&["read", &key])], None, &[0]);

    // Own sockets: a port and a name other than the host's, in the sandbox's network namespace.
    let own_port = if port == 40000 { 40001 } else { 40000 };
    let own_abs = format!("sbx-i3-own-{}", &crate::harness::rand_token()[..8]);
    let ps = own_port.to_string();
    let items: [&[&str]; 5] = [
        &["hostname"],
        &["listen-proc-net", "tcp", &ps],
        &["listen-proc-net", "unix", &own_abs],
        &["read", "/proc/net/tcp"],
        &["read", "/proc/self/mountinfo"],
    ];
    let o = c.batch(&items);
    if c.imp == Impl::LandlockOnly {
        // The host's name and mounts are visible there: the report must say so.
        let seen = o[0].detail().trim() == host || o[4].detail().contains(" / / ");
        match Case::gap_listed(&o[0].gaps, UTS_MOUNT_GAP) {
            Some(g) if seen => c.note(format!("landlock-only: I3 host name and mounts visible (documented gap: {g})")),
            None if seen => c.fail(format!(
                "I3: landlock-only shows the host's name or mount table and the report does not list the gap \
                 (looked for {UTS_MOUNT_GAP:?} in {:?})",
                o[0].gaps
            )),
            _ => {}
        }
        // IP sockets are forbidden there, so /proc/net/tcp is read as is; the unix table comes
        // with the command's own abstract socket (the control).
        c.allowed("I3-unix-control (own abstract socket listed)", &o[2]);
        let tcp =
            c.allowed("I3-tcp-control (/proc/net/tcp readable)", &o[3]) && lists_tcp_listener(&o[3].detail(), port);
        let unix = lists_unix(&o[2].detail(), &abs);
        if tcp || unix {
            match Case::gap_listed(&o[3].gaps, NETNS_GAP) {
                Some(g) => c.note(format!(
                    "landlock-only: I3 host sockets listed in /proc/net (tcp {tcp}, unix {unix}; documented gap: {g})"
                )),
                None => c.fail(format!(
                    "I3: host sockets are listed in /proc/net under landlock-only (tcp {tcp}, unix {unix}) and the report \
                     does not list a shared-network gap (looked for {NETNS_GAP:?} in {:?})",
                    o[3].gaps
                )),
            }
        } else {
            c.note("landlock-only: I3 the host's sockets are not listed in /proc/net".into());
        }
        return;
    }
    if c.allowed("I3-hostname-control", &o[0]) && o[0].detail().trim() == host {
        c.fail(format!("I3: the sandbox sees the host's hostname `{host}`"));
    }
    if c.allowed("I3-tcp-control (own loopback listener listed)", &o[1]) && lists_tcp_listener(&o[1].detail(), port) {
        c.fail(format!("I3: the host listener :{port} is listed in /proc/net/tcp inside\n{}", o[1].detail()));
    }
    if c.allowed("I3-unix-control (own abstract socket listed)", &o[2]) && lists_unix(&o[2].detail(), &abs) {
        c.fail(format!("I3: the host abstract socket {abs} is listed in /proc/net/unix inside"));
    }
    if c.allowed("I3-mountinfo-control (readable)", &o[4]) {
        let (top, below) = mount_at(&o[4].detail(), &ssh);
        if top.as_deref() != Some("tmpfs") {
            c.fail(format!(
                "I3: mountinfo inside shows no tmpfs over the deny-read {} (topmost: {top:?}): host content may show\n{}",
                ssh.display(),
                o[4].detail()
            ));
        }
        if !below.is_empty() {
            c.fail(format!("I3: mounts below the deny-read {} inside: {below:?}", ssh.display()));
        }
    }
});

// I5: kernel log and kernel info.
// `syslog` with a bad buffer fails whether or not it reaches the kernel, so it cannot show the
// filter at work here; `tests/seccomp_kernel.rs` does, with capabilities kept. `/dev/kmsg` can:
// root reads it outside (the negative control), and the sandbox's `/dev` has no such node.
probe_test!(i5_kernel_info, |c: &mut Case| {
    let neg: &[usize] = if c.who == Who::Root { &[1] } else { &[] };
    c.expect_all_denied("I5", &[sv(&["syscall", "syslog"]), sv(&["read", "/dev/kmsg"])], None, neg);
    // Kernel addresses and debug interfaces: `/proc/kallsyms` shows no addresses inside (the
    // command has no CAP_SYSLOG). debugfs and tracefs are root-only: an unprivileged caller's
    // command cannot read them, a root caller's can (a documented choice, docs/linux.md), so
    // for root this only records what it sees.
    let script = "a=$(head -c 16 /proc/kallsyms 2>/dev/null); echo \"addr=${a:-none}\"; \
                  echo \"debug=$(ls -A /sys/kernel/debug 2>/dev/null | wc -l)\"; \
                  if head -c 1 /sys/kernel/tracing/trace >/dev/null 2>&1; then echo trace=read; else echo trace=denied; fi";
    let field = |out: &str, k: &str| {
        out.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(str::to_owned).unwrap_or_default()
    };
    let inside = c.sandboxed(&["/bin/bash", "-c", script]);
    let out = inside.out();
    if !field(&out, "addr").chars().all(|ch| ch == '0') && field(&out, "addr") != "none" {
        c.fail(format!("I5: /proc/kallsyms shows kernel addresses inside\n{}", inside.describe()));
    }
    if c.who == Who::Root {
        let outside = c.unsandboxed(&["/bin/bash", "-c", script]).out();
        if field(&outside, "addr").chars().all(|ch| ch == '0') {
            c.note(format!("I5-negative: root outside sees no kernel addresses either here ({outside:?})"));
        }
        c.note(format!(
            "I5: debugfs and tracefs for a root caller's command: {} entries, trace {}",
            field(&out, "debug"),
            field(&out, "trace")
        ));
    } else if field(&out, "debug") != "0" || field(&out, "trace") != "denied" {
        c.fail(format!("I5: debugfs or tracefs is readable inside for an unprivileged caller\n{}", inside.describe()));
    }
});
