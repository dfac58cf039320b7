//! THREATS.md §3.3: network probes N1-N10 (N11 belongs to the proxy issue).

use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};

use crate::harness::{sv, Case, Impl, Residual, Who};

/// landlock-only's unix-socket gap; not bare "socket", which its TCP gap ("IP sockets") matches.
const SOCKET_GAP: &[&str] = &["unix socket"];
const UDP_GAP: &[&str] = &["udp"];
/// landlock-only's gap for IP sockets, which it forbids altogether.
const IP_GAP: &[&str] = &["IP sockets"];

/// A non-loopback address of this host (the source address towards the internet); no packet
/// is sent to find it.
fn host_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("1.1.1.1:53").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

// N1: egress to the outside: the host's own external address (harness listener) stands in for
// "the internet" so that the negative control can prove the probe works; public IPs too.
probe_test!(n1_egress, |c: &mut Case| {
    let Some(ip) = host_ip() else {
        crate::harness::skip(&c.name, "network", "this host has no non-loopback address");
        return;
    };
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let drained = |l: &std::net::TcpListener| {
        let mut n = 0;
        while l.accept().is_ok() {
            n += 1;
        }
        n
    };
    if c.imp == Impl::Namespaces {
        let o = c.probe_unsandboxed(&["tcp-connect", &ip, &port]);
        c.escapes("N1", &o);
        if drained(&l) == 0 {
            c.fail("N1: negative control: the host listener saw nothing".into());
        }
    }
    let items = vec![
        sv(&["tcp-connect", &ip, &port]),
        sv(&["tcp-connect", "1.1.1.1", "80"]),
        sv(&["tcp-connect", "2606:4700:4700::1111", "80"]),
    ];
    c.expect_all_denied("N1", &items, None, &[]);
    let sh = format!(
        "curl -sS --max-time 3 http://{ip}:{port}/ ; bash -c 'echo hi > /dev/tcp/{ip}/{port}'; \
         python3 -c 'import socket; socket.create_connection((\"{ip}\", {port}), 2)'; \
         git ls-remote http://{ip}:{port}/x.git; echo end"
    );
    let r = c.sandboxed(&["/bin/sh", "-c", &sh]);
    let n = drained(&l);
    if n > 0 {
        c.fail(format!(
            "N1: shell-level tools (curl, bash /dev/tcp, python3, git) reached the host address {n} time(s)\n{}",
            r.describe()
        ));
    }
});

// N2: host loopback services (TCP v4 and v6) and shell-level variants.
probe_test!(n2_host_loopback, |c: &mut Case| {
    let p4 = c.listeners.tcp4_port().to_string();
    let mut items = vec![sv(&["tcp-connect", "127.0.0.1", &p4])];
    if let Some(p6) = c.listeners.tcp6_port() {
        items.push(sv(&["tcp-connect", "::1", &p6.to_string()]));
    }
    if c.imp == Impl::Namespaces {
        let o = c.probe_unsandboxed(&["tcp-connect", "127.0.0.1", &p4]);
        c.escapes("N2", &o);
        if c.listeners.reached().is_empty() {
            c.fail("N2: negative control: the host listener saw nothing".into());
        }
        c.rebaseline();
    }
    c.expect_all_denied("N2", &items, None, &[]);
    let sh = format!(
        "curl -sS --max-time 2 http://127.0.0.1:{p4}/; curl -sS --max-time 2 http://localhost:{p4}/; \
         bash -c 'echo hi > /dev/tcp/127.0.0.1/{p4}'; python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {p4}), 2)'; echo end"
    );
    let _ = c.sandboxed(&["/bin/sh", "-c", &sh]);
    // Loopback inside the sandbox works (local test servers), under the namespaces implementation.
    let o = c.probe(&["tcp-loopback"]);
    match c.imp {
        Impl::Namespaces => {
            c.allowed("N2-control (loopback inside the sandbox)", &o);
        }
        Impl::LandlockOnly => {
            if o.outcome != "allowed" {
                c.note(format!("landlock-only: in-sandbox loopback TCP does not work: {}", o.summary()));
            }
        }
    }
});

// N3: UDP (exfiltration, DNS). Each probe has a verdict of its own: `udp-reach` to the host's
// UDP listener is refused (under namespaces nothing listens on that port in the sandbox's own
// loopback, so the kernel answers ECONNREFUSED; landlock-only forbids IP sockets), public DNS is
// unreachable; and the host listener receives nothing, from the probes or from shell tools.
// Controls: outside, the same probe reaches the listener; inside, `getent` resolves `localhost`
// and UDP on the sandbox's own loopback works (namespaces; landlock-only: its documented gap).
probe_test!(n3_udp_dns, |c: &mut Case| {
    let pu = c.listeners.udp_port().to_string();
    if c.imp == Impl::Namespaces {
        let o = c.probe_unsandboxed(&["udp-reach", "127.0.0.1", &pu]);
        c.escapes("N3", &o);
        std::thread::sleep(Duration::from_millis(50));
        if c.listeners.reached().is_empty() {
            c.fail("N3: negative control: the host UDP listener saw nothing".into());
        }
        let r = c.unsandboxed(&["/bin/sh", "-c", "getent ahosts example.com"]);
        if !r.out().contains("example.com") && !r.out().lines().any(|l| l.contains("STREAM")) {
            c.note(
                "N3: this host resolves no public names, so `getent ahosts example.com` inside is no test of DNS"
                    .into(),
            );
        }
    }
    let items: [&[&str]; 2] = [&["udp-reach", "127.0.0.1", &pu], &["udp-send", "1.1.1.1", "53"]];
    let obs = c.batch(&items);
    std::thread::sleep(Duration::from_millis(50));
    let reached = c.listeners.reached();
    let mut excused = false;
    for o in &obs {
        excused |= c.denied_or_gap("N3", o, UDP_GAP) && o.outcome == "allowed";
    }
    if !reached.is_empty() && !excused {
        c.fail(format!("N3: UDP from the sandbox reached the host listener: {reached:?}\n{}", obs[0].ctx));
    }
    // Shell level: the resolver, and python's sendto (a plain sendto, whose own result shows
    // nothing: the host listener is the verdict). `getent hosts localhost` is the control that
    // getent itself runs.
    let script = format!(
        "getent hosts localhost >/dev/null && echo local-ok; getent ahosts example.com; \
         command -v python3 >/dev/null && echo python-ok; \
         python3 -c 'import socket; socket.socket(2,2).sendto(b\"x\",(\"127.0.0.1\",{pu})); print(\"sent\")' 2>&1; echo rc=$?"
    );
    let r = c.sandboxed(&["/bin/sh", "-c", &script]);
    let out = r.out();
    if !out.contains("local-ok") || !out.contains("python-ok") {
        c.fail(format!("N3-control: `getent hosts localhost` or python3 does not work inside\n{}", r.describe()));
    }
    // The datagram really went out (to the sandbox's own loopback) under namespaces; under
    // landlock-only the socket itself is refused (no IP sockets there).
    let sent = out.lines().any(|l| l.trim() == "sent");
    let refused = out.contains("Address family not supported") || out.contains("PermissionError");
    match c.imp {
        Impl::Namespaces if !sent => {
            c.fail(format!("N3-control: python's sendto did not run inside\n{}", r.describe()))
        }
        Impl::LandlockOnly if !sent && !refused => {
            c.fail(format!("N3-control: python's sendto neither ran nor was refused\n{}", r.describe()))
        }
        _ => {}
    }
    if out.contains("example.com") || out.lines().any(|l| l.contains("STREAM")) {
        c.fail(format!("N3: DNS resolution works inside the sandbox\n{}", r.describe()));
    }
    std::thread::sleep(Duration::from_millis(50));
    let reached = c.listeners.reached();
    if !reached.is_empty() {
        match (c.imp, Case::gap_listed(&r.gaps(), UDP_GAP)) {
            (Impl::LandlockOnly, Some(g)) => {
                c.note(format!("landlock-only: N3 python's UDP reached the host (documented gap: {g})"))
            }
            _ => c.fail(format!(
                "N3: python's UDP from the sandbox reached the host listener: {reached:?}\n{}",
                r.describe()
            )),
        }
    }
    let o = c.probe(&["udp-loopback"]);
    match c.imp {
        Impl::Namespaces => {
            c.allowed("N3-control (UDP loopback inside)", &o);
        }
        // No IP sockets at all under landlock-only: passes only as its documented gap.
        Impl::LandlockOnly => match (o.is_denied(), Case::gap_listed(&o.gaps, IP_GAP)) {
            (false, _) => {
                c.allowed("N3-control (UDP loopback inside)", &o);
            }
            (true, Some(g)) => {
                c.note(format!("landlock-only: N3 UDP loopback inside is refused (documented gap: {g})"))
            }
            (true, None) => c.fail(format!(
                "N3: landlock-only refuses UDP loopback inside without a documented gap ({IP_GAP:?}): {}\n{}",
                o.summary(),
                o.ctx
            )),
        },
    }
});

// N4: raw, packet and ICMP sockets.
probe_test!(n4_raw_packet_icmp, |c: &mut Case| {
    let items = vec![
        sv(&["socket", "raw-icmp"]),
        sv(&["socket", "raw6-icmp"]),
        sv(&["socket", "packet"]),
        sv(&["socket", "icmp-dgram"]),
    ];
    let neg: &[usize] = if c.who == Who::Root { &[0, 2] } else { &[] };
    c.expect_all_denied("N4", &items, None, neg);
    let r = c.sandboxed(&["/bin/sh", "-c", "ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; echo rc=$?"]);
    if r.out().contains("rc=0") && c.imp == Impl::LandlockOnly {
        c.fail(format!("N4: ping works under landlock-only (shares the host network)\n{}", r.describe()));
    }
});

// N5: abstract unix sockets of the host.
probe_test!(n5_abstract_unix, |c: &mut Case| {
    let name = c.listeners.abstract_name.clone();
    c.expect_all_denied("N5", &[sv(&["unix-abstract", &name])], None, &[0]);
    c.expect_all_allowed("N5-control (own pathname socket IPC)", &[sv(&["unix-selfpath", &c.ws_s()])]);
});

// N6: pathname unix sockets of host daemons bound before the launch: in host /tmp,
// /run/user/$UID (hidden by the mount plan), `~/.docker/run` and `out/` (readable directories
// outside the workspace). Denied under namespaces (/dev/null is bound over sockets that exist at
// launch); under landlock-only reachable only as its documented gap.
probe_test!(n6_pathname_unix, |c: &mut Case| {
    let paths: Vec<PathBuf> = c.listeners.paths.iter().map(|(p, _)| p.clone()).collect();
    for d in [c.out.clone(), c.home.join(".docker/run"), PathBuf::from("/tmp")] {
        if !paths.iter().any(|p| p.parent() == Some(d.as_path())) {
            c.fail(format!("N6: no host listener in {} (harness setup)", d.display()));
        }
    }
    let items: Vec<Vec<String>> = paths.iter().map(|p| sv(&["unix-connect", &p.to_string_lossy()])).collect();
    if c.imp == Impl::Namespaces {
        // Negative control: each socket is reachable without the sandbox, and its listener sees
        // exactly that connection.
        for (o, p) in c.run_batch(&items, false).iter().zip(&paths) {
            c.escapes("N6", o);
            let n = c.listeners.drain_path(p);
            if n != 1 {
                c.fail(format!("N6: negative control: {} accepted {n} connections, expected 1", p.display()));
            }
        }
        c.rebaseline();
    }
    for (o, p) in c.run_batch(&items, true).iter().zip(&paths) {
        // Only the connection the landlock-only gap excuses is taken off the books; anything else
        // that reached any listener still fails `host_clean`.
        if c.denied_or_gap("N6", o, SOCKET_GAP) && o.outcome == "allowed" {
            let n = c.listeners.drain_path(p);
            if n != 1 {
                c.fail(format!("N6: {} accepted {n} connections for one allowed connect", p.display()));
            }
        }
    }
    c.expect_all_allowed("N6-control", &[sv(&["unix-selfpath", &c.ws_s()])]);
    if c.imp == Impl::Namespaces {
        c.expect_all_allowed("N6-control (private /tmp)", &[sv(&["unix-selfpath", "/tmp"])]);
    }
});

// N6 (residual): a pathname socket the host binds in `out/` after the sandboxed command started.
// Sockets bound at launch are covered; this one is reachable under namespaces while Landlock
// ABI < 9 cannot mediate connect(), an accepted residual gap that passes only when the report
// lists it. The command announces itself with a marker in the workspace, waits until the socket
// exists, then connects; the harness binds it only after seeing the marker.
probe_test!(n6_unix_bound_after_launch, |c: &mut Case| {
    // In a directory of its own, made before the baseline: binding and removing the socket
    // then changes nothing that host_clean watches (entries named `sbx-daemon-` are listeners).
    let dir = c.out.join("sbx-daemon-late");
    std::fs::create_dir(&dir).unwrap();
    crate::harness::chown_tree(&dir, c.acc.uid, c.acc.gid);
    c.rebaseline();
    let sock = dir.join(format!("sbx-daemon-late-{}.sock", &crate::harness::rand_token()[..6]));
    let (s, w) = (sock.to_string_lossy().into_owned(), c.ws_s());
    if c.imp == Impl::Namespaces {
        // Negative control: the same sequence without the sandbox reaches the late socket.
        let (o, seen, n) = late_socket_run(c, &sock, false);
        c.escapes("N6-late", &o);
        if !seen || n != 1 {
            c.fail(format!("N6-late: negative control: socket seen {seen}, accepted {n} connections (expected 1)"));
        }
        c.rebaseline();
    }
    let (o, seen, n) = late_socket_run(c, &sock, true);
    let ok = c.denied_or_residual("N6-late", &o, Residual::SocketAfterLaunch, SOCKET_GAP);
    let expect = usize::from(o.outcome == "allowed");
    if n != expect {
        c.fail(format!("N6-late: the late socket accepted {n} connections, the probe says {}", o.summary()));
    }
    if ok && o.is_denied() && !seen {
        c.note(format!("N6-late: the late socket {s} was not visible in the sandbox"));
    }
    // Nothing but the harness's own socket (removed again) ever appeared next to it.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    if !left.is_empty() {
        c.fail(format!("N6-late: files appeared in {}: {left:?}", dir.display()));
    }
    // Ordinary work inside the workspace still works.
    c.expect_all_allowed("N6-late-control", &[sv(&["unix-selfpath", &w])]);
});

/// Runs the late-socket sequence (sandboxed or not): the command touches a marker in the
/// workspace, waits up to 10 s for `sock`, prints whether it saw it and connects; meanwhile the
/// harness binds `sock` once the marker exists. Returns the probe's result, whether the command
/// saw the socket, and how many connections the listener accepted (it is then adopted by the
/// case's listeners, so that anything reaching it later still fails `host_clean`).
fn late_socket_run(c: &mut Case, sock: &Path, sandbox: bool) -> (crate::harness::Obs, bool, usize) {
    let marker = c.ws.join(format!(".late-{}", &crate::harness::rand_token()[..6]));
    let q = |p: &Path| format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"));
    let script = format!(
        "touch {m} || exit 3; i=0; while [ ! -S {s} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
         if [ -S {s} ]; then echo '{{\"seen\":true}}'; fi; {p} unix-connect {s}",
        m = q(&marker),
        s = q(sock),
        p = q(Path::new(&c.probe_bin())),
    );
    let _ = std::fs::remove_file(sock);
    let acc = c.acc.clone();
    let (m2, s2) = (marker.clone(), sock.to_owned());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    let binder = std::thread::spawn(move || {
        while !m2.exists() {
            if done2.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(crate::harness::bind_unix(&acc, &s2))
    });
    let cmd = ["/bin/sh", "-c", script.as_str()];
    let r = if sandbox { c.sandboxed(&cmd) } else { c.unsandboxed(&cmd) };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let l = binder.join().unwrap();
    let _ = std::fs::remove_file(&marker);
    let o = crate::harness::obs_of(&r, "unix-connect (socket bound after launch)");
    let seen = r.out().contains("\"seen\":true");
    let Some(l) = l else {
        c.fail(format!("N6-late: the command never wrote its marker, the socket was never bound\n{}", r.describe()));
        return (o, seen, 0);
    };
    let mut n = 0;
    while l.accept().is_ok() {
        n += 1;
    }
    // Gone from the file system (a later probe must not find it bound at launch), but the
    // listener stays watched until the end of the case.
    let _ = std::fs::remove_file(sock);
    c.listeners.adopt(sock.to_owned(), l);
    (o, seen, n)
}

// N7: netlink beyond NETLINK_ROUTE, and network configuration changes.
probe_test!(n7_netlink, |c: &mut Case| {
    let items = vec![
        sv(&["socket", "netlink-sock-diag"]),
        sv(&["socket", "netlink-audit"]),
        sv(&["socket", "netlink-uevent"]),
        sv(&["socket", "netlink-netfilter"]),
        sv(&["socket", "netlink-xfrm"]),
        sv(&["socket", "netlink-generic"]),
    ];
    c.expect_all_denied("N7", &items, None, &[0, 5]);
    let r = c.sandboxed(&["/bin/sh", "-c", "ip link add sbxd0 type dummy 2>&1; echo rc=$?"]);
    if r.out().contains("rc=0") {
        c.fail(format!("N7: `ip link add` succeeded inside the sandbox\n{}", r.describe()));
    }
    if c.imp == Impl::Namespaces {
        c.expect_all_allowed("N7-control (netlink route for `ip`)", &[sv(&["socket", "netlink-route"])]);
    }
});

// N8: socket families that are not network-namespaced (AF_VSOCK above all).
probe_test!(n8_families, |c: &mut Case| {
    let fams = ["vsock", "alg", "bluetooth", "can", "xdp", "key", "rds", "tipc", "llc", "packet"];
    let items: Vec<Vec<String>> = fams.iter().map(|f| sv(&["socket", f])).collect();
    c.expect_all_denied("N8", &items, None, &[0]);
    c.expect_all_allowed("N8-control", &[sv(&["socket", "unix"])]);
    // socketpair builds its sockets through the family's code as socket does. Outside, these
    // two reach their family (which answers EOPNOTSUPP: neither implements socketpair); inside,
    // the filter must answer first, with EAFNOSUPPORT. A host without vsock also answers
    // EAFNOSUPPORT, so that control only counts where the family exists.
    const EAFNOSUPPORT: i64 = libc::EAFNOSUPPORT as i64;
    let pairs = [sv(&["socketpair", "inet"]), sv(&["socketpair", "vsock"])];
    if c.imp == Impl::Namespaces {
        for o in c.run_batch(&pairs, false) {
            if o.outcome == "allowed" || (o.is_denied() && o.errno() != Some(EAFNOSUPPORT)) {
                continue;
            }
            if o.label.contains("vsock") {
                c.note(format!("N8: this host has no vsock family, so `{}` shows nothing outside", o.label));
            } else {
                c.fail(format!(
                    "N8: negative control: `{}` did not reach its family outside: {}",
                    o.label,
                    o.summary()
                ));
            }
        }
    }
    for o in c.run_batch(&pairs, true) {
        if o.errno() != Some(EAFNOSUPPORT) {
            c.fail(format!("N8: `{}` was not stopped by the family rule: {}", o.label, o.summary()));
        }
    }
    c.expect_all_allowed("N8-control (socketpair)", &[sv(&["socketpair", "unix"])]);
    let ip = [sv(&["socket", "inet"]), sv(&["socket", "inet6"])];
    if c.imp == Impl::Namespaces {
        c.expect_all_allowed("N8-control (IP sockets in the private netns)", &ip);
    } else {
        for o in c.run_batch(&ip, true) {
            if o.is_denied() && Case::gap_listed(&o.gaps, &["IP sockets"]).is_none() {
                c.fail(format!("N8: `{}` denied under landlock-only without a documented gap", o.label));
            }
        }
    }
});

// N9: cloud metadata endpoints.
probe_test!(n9_metadata, |c: &mut Case| {
    c.expect_all_denied(
        "N9",
        &[sv(&["tcp-connect", "169.254.169.254", "80"]), sv(&["tcp-connect", "100.100.100.200", "80"])],
        None,
        &[],
    );
});

// N10: a listener inside the sandbox must not be reachable from the host.
probe_test!(n10_listen, |c: &mut Case| {
    // Below the ephemeral range: no self-connect of the knocker, no clash with bind(0) ports.
    let port = (0..200)
        .map(|i| 20000 + (u16::from_str_radix(&crate::harness::rand_token()[..4], 16).unwrap() % 10000) + i)
        .find(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok())
        .unwrap();
    let ps = port.to_string();
    let knock = move |until: Instant| {
        std::thread::spawn(move || {
            let (mut hit, mut tries, mut last) = (false, 0, String::new());
            while Instant::now() < until {
                tries += 1;
                match std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(100)) {
                    Ok(_) => {
                        hit = true;
                        break;
                    }
                    Err(e) => last = e.to_string(),
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            (hit, format!("{tries} connect attempts, last error: {last}"))
        })
    };
    if c.imp == Impl::Namespaces {
        let k = knock(Instant::now() + Duration::from_secs(4));
        let o = c.probe_unsandboxed(&["tcp-listen", "0.0.0.0", &ps, "3000"]);
        let (hit, how) = k.join().unwrap();
        // The probe's own report (it accepted a connection from outside) is the verdict; the
        // knocker's view is informational (it raced the listener's start under load).
        if c.escapes("N10", &o) && !hit {
            c.note(format!("N10: negative control accepted a connection but the knocker saw none ({how})"));
        }
    }
    let k = knock(Instant::now() + Duration::from_secs(3));
    let o = c.probe(&["tcp-listen", "0.0.0.0", &ps, "2000"]);
    let (hit, _) = k.join().unwrap();
    c.denied("N10", &o);
    if hit {
        c.fail(format!("N10: the host connected to a port opened inside the sandbox\n{}", o.ctx));
    }
    // A privileged port (THREATS: "bind privileged port 80"): root binds it without the
    // sandbox; inside, the command holds no `CAP_NET_BIND_SERVICE` (and under `landlock-only`
    // with the network off no IP socket at all). Root only: a user cannot bind it outside, so
    // that control would be blind; skipped where something already listens there.
    if c.who != Who::Root {
        return;
    }
    let Some(low) = [80u16, 81, 82, 88, 444].into_iter().find(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok())
    else {
        c.note("N10: ports 80, 81, 82, 88 and 444 are all taken here; the privileged-port check is left out".into());
        return;
    };
    let lp = low.to_string();
    let o = c.probe_unsandboxed(&["tcp-bind", "0.0.0.0", &lp]);
    c.escapes("N10-privileged", &o);
    let o = c.probe(&["tcp-bind", "0.0.0.0", &lp]);
    c.denied("N10-privileged", &o);
});
