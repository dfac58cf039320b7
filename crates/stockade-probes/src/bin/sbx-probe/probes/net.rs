//! Network probes (N1-N10): socket families, TCP/UDP to the host, unix sockets.

use super::*;

pub(super) fn family(s: &str) -> (i32, i32, i32) {
    use libc::*;
    match s {
        "unix" => (AF_UNIX, SOCK_STREAM, 0),
        "inet" => (AF_INET, SOCK_STREAM, 0),
        "inet6" => (AF_INET6, SOCK_STREAM, 0),
        "udp" => (AF_INET, SOCK_DGRAM, 0),
        "vsock" => (AF_VSOCK, SOCK_STREAM, 0),
        "packet" => (AF_PACKET, SOCK_RAW, 0),
        "raw-icmp" => (AF_INET, SOCK_RAW, IPPROTO_ICMP),
        "raw6-icmp" => (AF_INET6, SOCK_RAW, IPPROTO_ICMPV6),
        "icmp-dgram" => (AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
        "netlink-route" => (AF_NETLINK, SOCK_RAW, NETLINK_ROUTE),
        "netlink-sock-diag" => (AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG),
        "netlink-audit" => (AF_NETLINK, SOCK_RAW, NETLINK_AUDIT),
        "netlink-uevent" => (AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT),
        "netlink-netfilter" => (AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER),
        "netlink-xfrm" => (AF_NETLINK, SOCK_RAW, NETLINK_XFRM),
        "netlink-generic" => (AF_NETLINK, SOCK_RAW, NETLINK_GENERIC),
        "alg" => (AF_ALG, SOCK_SEQPACKET, 0),
        "bluetooth" => (AF_BLUETOOTH, SOCK_RAW, 0),
        "can" => (AF_CAN, SOCK_RAW, 1),
        "xdp" => (AF_XDP, SOCK_RAW, 0),
        "key" => (AF_KEY, SOCK_RAW, 2),
        "rds" => (AF_RDS, SOCK_SEQPACKET, 0),
        "tipc" => (AF_TIPC, SOCK_RDM, 0),
        "llc" => (AF_LLC, SOCK_DGRAM, 0),
        other => match other.parse() {
            Ok(n) => (n, SOCK_STREAM, 0),
            Err(_) => usage(&format!("unknown socket family `{other}`")),
        },
    }
}

pub(super) fn socket(a: &[String]) -> Probe {
    let (f, mut t, mut p) = family(arg(a, 0, "FAMILY"));
    if let Some(x) = a.get(1) {
        t = num(x, "TYPE");
    }
    if let Some(x) = a.get(2) {
        p = num(x, "PROTO");
    }
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(f, t | libc::SOCK_CLOEXEC, p) } as i64, &format!("socket({f}, {t}, {p})"))?;
    close(fd);
    Ok(format!("socket({f}, {t}, {p}) created"))
}

/// `socketpair(FAMILY, SOCK_STREAM)`: the kernel builds both sockets through the family's own
/// code, as for `socket`, so the filter's family rule must cover it too (THREATS.md N8).
pub(super) fn socketpair(a: &[String]) -> Probe {
    let (f, _, _) = family(arg(a, 0, "FAMILY"));
    let mut fds = [-1; 2];
    // SAFETY: a valid two-int out buffer.
    let r = unsafe { libc::socketpair(f, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    check(r as i64, &format!("socketpair({f}, SOCK_STREAM)"))?;
    close(fds[0] as i64);
    close(fds[1] as i64);
    Ok(format!("socketpair({f}, SOCK_STREAM) created"))
}

/// A sockaddr for an IP literal; returns the storage and its length.
pub(super) fn sockaddr(ip: &str, port: u16) -> (libc::sockaddr_storage, libc::socklen_t, i32) {
    // SAFETY: sockaddr_storage is plain data.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as u32, libc::AF_INET)
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32, libc::AF_INET6)
        }
        Err(_) => usage(&format!("`{ip}` is not an IP literal")),
    }
}

pub(super) fn poll1(fd: i32, events: i16, ms: i32) -> i32 {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) }
}

pub(super) fn tcp_connect(ip: &str, port: u16) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(
        unsafe { libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) } as i64,
        "socket",
    )?;
    // SAFETY: ss/len describe a valid sockaddr.
    let r = unsafe { libc::connect(fd as i32, (&ss as *const libc::sockaddr_storage).cast(), len) };
    let res = if r == 0 || errno() == libc::EINPROGRESS {
        if poll1(fd as i32, libc::POLLOUT, 3000) <= 0 {
            Err(Fail { errno: libc::ETIMEDOUT, detail: format!("connect {ip}:{port}: no answer in 3 s") })
        } else {
            let mut err: i32 = 0;
            let mut l = 4u32;
            // SAFETY: err/l are valid out parameters.
            unsafe {
                libc::getsockopt(fd as i32, libc::SOL_SOCKET, libc::SO_ERROR, (&mut err as *mut i32).cast(), &mut l)
            };
            if err != 0 {
                Err(Fail {
                    errno: err,
                    detail: format!("connect {ip}:{port}: {}", std::io::Error::from_raw_os_error(err)),
                })
            } else {
                let m = b"sbx-probe-tcp\n";
                // SAFETY: fd connected, m valid.
                unsafe { libc::send(fd as i32, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL) };
                Ok(format!("connected to {ip}:{port} and sent a marker"))
            }
        }
    } else {
        let e = errno();
        Err(Fail { errno: e, detail: format!("connect {ip}:{port}: {}", std::io::Error::from_raw_os_error(e)) })
    };
    close(fd);
    res
}

pub(super) fn udp_send(ip: &str, port: u16) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(fam, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket(udp)")?;
    let m = b"sbx-probe-udp\n";
    // SAFETY: valid buffer and sockaddr.
    let r = unsafe {
        libc::sendto(fd as i32, m.as_ptr().cast(), m.len(), 0, (&ss as *const libc::sockaddr_storage).cast(), len)
    };
    let res = check(r as i64, &format!("sendto {ip}:{port}")).map(|n| format!("sent {n} bytes to {ip}:{port}"));
    close(fd);
    res
}

/// Binds a TCP socket to `ip:port` and lets it go: allowed when the bind succeeds (a
/// privileged port squatted, THREATS N10).
pub(super) fn tcp_bind(ip: &str, port: u16) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket")? as i32;
    // SAFETY: valid sockaddr.
    let r = check(
        unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) } as i64,
        &format!("bind {ip}:{port}"),
    );
    close(fd as i64);
    r.map(|_| format!("bound {ip}:{port}"))
}

pub(super) fn tcp_listen(ip: &str, port: u16, ms: i32) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket")? as i32;
    let one: i32 = 1;
    // SAFETY: valid option buffer.
    unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const i32).cast(), 4) };
    // SAFETY: valid sockaddr.
    let r = check(
        unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) } as i64,
        &format!("bind {ip}:{port}"),
    )
    // SAFETY: fd is a bound socket.
    .and_then(|_| check(unsafe { libc::listen(fd, 8) } as i64, "listen"));
    if let Err(f) = r {
        close(fd as i64);
        return Err(f);
    }
    let mut st = std::io::stdout().lock();
    let _ = writeln!(st, "{{\"listening\":true}}");
    let _ = st.flush();
    drop(st);
    let res = if poll1(fd, libc::POLLIN, ms) > 0 {
        Ok(format!("listening on {ip}:{port} accepted a connection from outside"))
    } else {
        Err(Fail { errno: 0, detail: format!("bound and listening on {ip}:{port}; nobody connected in {ms} ms") })
    };
    close(fd as i64);
    res
}

pub(super) fn tcp_loopback() -> Probe {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_fail("bind 127.0.0.1:0"))?;
    let addr = l.local_addr().map_err(io_fail("getsockname"))?;
    let mut c = std::net::TcpStream::connect(addr).map_err(io_fail("connect to own listener"))?;
    let (mut s, _) = l.accept().map_err(io_fail("accept"))?;
    c.write_all(b"ping").map_err(io_fail("send"))?;
    let mut b = [0u8; 4];
    std::io::Read::read_exact(&mut s, &mut b).map_err(io_fail("recv"))?;
    Ok(format!("loopback TCP round trip on {addr}"))
}

pub(super) fn udp_loopback() -> Probe {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(io_fail("bind udp"))?;
    let addr = s.local_addr().map_err(io_fail("getsockname"))?;
    s.send_to(b"ping", addr).map_err(io_fail("sendto self"))?;
    let mut b = [0u8; 8];
    s.set_read_timeout(Some(std::time::Duration::from_secs(2))).map_err(io_fail("timeout"))?;
    s.recv_from(&mut b).map_err(io_fail("recvfrom"))?;
    Ok(format!("loopback UDP round trip on {addr}"))
}

pub(super) fn sockaddr_un(name: &[u8], abstract_ns: bool) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as u16;
    let off = usize::from(abstract_ns);
    if name.len() + off >= sun.sun_path.len() {
        usage("unix socket name too long");
    }
    for (i, b) in name.iter().enumerate() {
        sun.sun_path[i + off] = *b as libc::c_char;
    }
    let base = std::mem::size_of::<libc::sa_family_t>();
    let len = if abstract_ns { base + 1 + name.len() } else { base + name.len() + 1 };
    (sun, len as u32)
}

pub(super) fn unix_connect(name: &[u8], abstract_ns: bool) -> Probe {
    let (sun, len) = sockaddr_un(name, abstract_ns);
    let shown = format!("{}{}", if abstract_ns { "@" } else { "" }, String::from_utf8_lossy(name));
    // SAFETY: no memory arguments.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64,
        "socket(AF_UNIX)",
    )?;
    // SAFETY: valid sockaddr_un.
    let r = check(
        unsafe { libc::connect(fd as i32, (&sun as *const libc::sockaddr_un).cast(), len) } as i64,
        &format!("connect {shown}"),
    );
    if r.is_ok() {
        let m = b"sbx-probe-unix\n";
        // SAFETY: connected fd, valid buffer.
        unsafe { libc::send(fd as i32, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL) };
    }
    close(fd);
    r.map(|_| format!("connected to {shown} and sent a marker"))
}

pub(super) fn bind_unix(path: &str) -> Probe {
    let (sun, len) = sockaddr_un(path.as_bytes(), false);
    // SAFETY: no memory arguments.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64,
        "socket(AF_UNIX)",
    )?;
    // SAFETY: valid sockaddr_un.
    let r = check(
        unsafe { libc::bind(fd as i32, (&sun as *const libc::sockaddr_un).cast(), len) } as i64,
        &format!("bind {path}"),
    );
    close(fd);
    r.map(|_| format!("socket file {path} created"))
}

pub(super) fn unix_selfpath(dir: &str) -> Probe {
    let path = format!("{dir}/sbx-self.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).map_err(io_fail("bind own pathname socket"))?;
    let c = std::os::unix::net::UnixStream::connect(&path).map_err(io_fail("connect own pathname socket"));
    let _ = std::fs::remove_file(&path);
    c?;
    l.accept().map_err(io_fail("accept"))?;
    Ok(format!("AF_UNIX IPC through {path} works"))
}

/// I3: listens on `127.0.0.1:PORT` (`tcp PORT`) or on the abstract unix name `NAME`
/// (`unix NAME`), then reads `/proc/net/tcp` or `/proc/net/unix` in the same process.
/// "allowed": the table lists the probe's own listener (so the table shows this process's
/// network namespace and is not blind); `detail` holds the whole table for the harness to look
/// for the host's sockets in.
pub(super) fn listen_proc_net(kind: &str, what: &str) -> Probe {
    let (fd, table, want) = match kind {
        "tcp" => {
            let port: u16 = num(what, "PORT");
            let (ss, len, fam) = sockaddr("127.0.0.1", port);
            // SAFETY: no memory arguments.
            let fd = check(unsafe { libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket")?;
            // SAFETY: valid sockaddr.
            let b = unsafe { libc::bind(fd as i32, (&ss as *const libc::sockaddr_storage).cast(), len) };
            (fd, "/proc/net/tcp", check(b as i64, &format!("bind 127.0.0.1:{port}")).map(|_| format!("{port:04X}")))
        }
        "unix" => {
            let (sun, len) = sockaddr_un(what.as_bytes(), true);
            // SAFETY: no memory arguments.
            let fd = check(
                unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as i64,
                "socket(AF_UNIX)",
            )?;
            // SAFETY: valid sockaddr_un.
            let b = unsafe { libc::bind(fd as i32, (&sun as *const libc::sockaddr_un).cast(), len) };
            (fd, "/proc/net/unix", check(b as i64, &format!("bind @{what}")).map(|_| format!("@{what}")))
        }
        other => usage(&format!("listen-proc-net: unknown kind `{other}` (tcp or unix)")),
    };
    // SAFETY: fd is a bound socket.
    let res = want.and_then(|w| check(unsafe { libc::listen(fd as i32, 1) } as i64, "listen").map(|_| w));
    let res = res.and_then(|want| {
        let text = read_file(table)?;
        // tcp: the local address column is `HEXIP:HEXPORT` and listeners have state 0A;
        // unix: the last column is the path, `@name` for abstract sockets.
        let own = text.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match kind {
                "tcp" => f.get(1).is_some_and(|a| a.ends_with(&format!(":{want}"))) && f.get(3) == Some(&"0A"),
                _ => f.last() == Some(&want.as_str()),
            }
        });
        if own {
            Ok(text)
        } else {
            Err(Fail { errno: 0, detail: format!("{table} does not list the probe's own listener {want}:\n{text}") })
        }
    });
    close(fd);
    res
}

/// N3: sends one datagram to `IP:PORT` over a connected UDP socket and waits 500 ms for the
/// answer an unconnected `sendto` never sees: the ICMP "port unreachable" that arrives, as
/// ECONNREFUSED, when nothing listens there in this network namespace. "allowed": the
/// datagram went out and nothing refused it (a listener got it, or the path is silent);
/// "denied": the socket, the send or the destination refused it.
pub(super) fn udp_reach(ip: &str, port: u16) -> Probe {
    let (ss, len, fam) = sockaddr(ip, port);
    // SAFETY: no memory arguments.
    let fd = check(unsafe { libc::socket(fam, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) } as i64, "socket(udp)")?;
    // SAFETY: valid sockaddr.
    let r = check(
        unsafe { libc::connect(fd as i32, (&ss as *const libc::sockaddr_storage).cast(), len) } as i64,
        &format!("connect(udp) {ip}:{port}"),
    )
    .and_then(|_| {
        let m = b"sbx-probe-udp\n";
        // SAFETY: connected fd, valid buffer.
        let n = unsafe { libc::send(fd as i32, m.as_ptr().cast(), m.len(), 0) };
        check(n as i64, &format!("send {ip}:{port}"))
    })
    .and_then(|n| {
        // An ICMP error is reported by the next receive (POLLERR); a datagram back is fine.
        if poll1(fd as i32, libc::POLLIN, 500) > 0 {
            let mut b = [0u8; 64];
            // SAFETY: valid buffer.
            let k = unsafe { libc::recv(fd as i32, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) };
            if k < 0 && errno() != libc::EAGAIN {
                return check(k as i64, &format!("recv after send {ip}:{port}"));
            }
        }
        Ok(n)
    });
    close(fd);
    r.map(|n| format!("sent {n} bytes to {ip}:{port}; nothing refused them in 500 ms"))
}
