//! End-to-end tests of the proxy against local servers on 127.0.0.1 / [::1] only. Every
//! denial test has an allowed control beside it, and denials check that the destination
//! server accepted nothing.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use stockade_net::Limits;

#[test]
fn plain_http_allowed_and_rewritten_to_origin_form() {
    let web = Server::start(Kind::Http);
    let p = web.port();
    let dns = FakeResolver::with(&[("allowed.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns.clone());
    let out = exchange(
        &proxy,
        format!("GET http://allowed.test:{p}/x?y HTTP/1.1\r\nHost: allowed.test:{p}\r\n\r\n").as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(&format!("ok GET /x?y HTTP/1.1 host=allowed.test:{p}")), "{out}");
    assert_eq!(dns.asked(), ["allowed.test"]);
    let log = proxy.shutdown();
    assert_eq!(log.events.len(), 1);
    let e = &log.events[0];
    assert!(e.allowed && e.host == "allowed.test" && e.port == p);
    assert_eq!(e.rule.as_deref(), Some(format!("allowed.test:{p}").as_str()));
    assert!(e.bytes_out > 0 && e.bytes_in > 0, "{e:?}");
}

#[test]
fn host_header_mismatch_is_refused() {
    let web = Server::start(Kind::Http);
    let p = web.port();
    let proxy = start(rules(&[&format!("127.0.0.1:{p}")], &[]), FakeResolver::with(&[]));
    let ok = exchange(&proxy, format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n").as_bytes());
    assert!(ok.starts_with("HTTP/1.1 200"), "control: {ok}");
    assert_eq!(web.hits(), 1);
    let bad = exchange(&proxy, format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\nHost: evil.example\r\n\r\n").as_bytes());
    assert!(bad.starts_with("HTTP/1.1 403"), "{bad}");
    assert!(bad.contains("Host header"), "{bad}");
    assert_eq!(web.hits(), 1, "the mismatching request reached the server");
    let log = proxy.shutdown();
    assert_eq!(log.notices.len(), 1);
}

#[test]
fn connect_tunnel_allowed_and_non_allowed_host_denied_without_lookup() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dns = FakeResolver::with(&[("allowed.test", "127.0.0.1"), ("evil.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns.clone());
    connect_echo(&proxy, &format!("allowed.test:{p}")).expect("control");
    let err = connect_echo(&proxy, &format!("evil.test:{p}")).unwrap_err();
    assert!(err.starts_with("HTTP/1.1 403"), "{err}");
    assert!(
        err.contains(&format!(
            "blocked connection to evil.test:{p} (no rule); allow it with --allow-host evil.test:{p}"
        )),
        "{err}"
    );
    assert_eq!(dns.asked(), ["allowed.test"], "a denied name was resolved");
    assert_eq!(echo.hits(), 1);
    let log = proxy.shutdown();
    assert_eq!(
        log.notices[0].message,
        format!("stockade: blocked connection to evil.test:{p} (no rule); allow it with --allow-host evil.test:{p}")
    );
    let d = &log.denials()[0];
    assert_eq!(d.target, format!("evil.test:{p}"));
}

#[test]
fn deny_rules_win_and_denied_names_are_never_resolved() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dns = FakeResolver::with(&[("a.corp.test", "127.0.0.1"), ("secret.corp.test", "127.0.0.1")]);
    let allow = [format!("*.corp.test:{p}"), format!("127.0.0.1:{p}")];
    let proxy = start(rules(&[&allow[0], &allow[1]], &["secret.corp.test"]), dns.clone());
    // Deny rule without a port covers 80/443 only, so use a port rule to deny this port.
    drop(proxy);
    let proxy = start(rules(&[&allow[0], &allow[1]], &[&format!("secret.corp.test:{p}")]), dns.clone());
    connect_echo(&proxy, &format!("a.corp.test:{p}")).expect("control");
    let err = connect_echo(&proxy, &format!("secret.corp.test:{p}")).unwrap_err();
    assert!(err.contains("denied by rule"), "{err}");
    let (code, _) = socks_connect(&proxy, 3, b"secret.corp.test", p);
    assert_eq!(code, 2);
    assert!(!dns.asked().contains(&"secret.corp.test".to_owned()), "{:?}", dns.asked());
    assert_eq!(echo.hits(), 1);
}

#[test]
fn dns_rebinding_to_loopback_or_metadata_is_refused() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dns = FakeResolver::with(&[("allowed.test", "127.0.0.1"), ("meta.test", "169.254.169.254")]);
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("meta.test:{p}")], &[]), dns.clone());
    let err = connect_echo(&proxy, &format!("allowed.test:{p}")).unwrap_err();
    assert!(err.starts_with("HTTP/1.1 403") && err.contains("resolves only to addresses the proxy refuses"), "{err}");
    let err = connect_echo(&proxy, &format!("meta.test:{p}")).unwrap_err();
    assert!(err.contains("resolves only to addresses the proxy refuses"), "{err}");
    assert!(!err.contains("169.254"), "the refusal names the address: {err}");
    assert_eq!(echo.hits(), 0);
    // Control: naming the address as well allows the same name.
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns);
    connect_echo(&proxy, &format!("allowed.test:{p}")).expect("control");
    assert_eq!(echo.hits(), 1);
}

#[test]
fn ip_notation_tricks_are_the_same_ip() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let forms = ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "[::ffff:127.0.0.1]", "127.0.0.1."];
    let dns = FakeResolver::with(&[]);
    // Only a public name is allowed: every loopback spelling is refused, and none is looked up.
    let proxy = start(rules(&[&format!("allowed.test:{p}")], &[]), dns.clone());
    for f in forms {
        let err = connect_echo(&proxy, &format!("{f}:{p}")).unwrap_err();
        assert!(err.starts_with("HTTP/1.1 403"), "{f}: {err}");
        let out = exchange(&proxy, format!("GET http://{f}:{p}/ HTTP/1.1\r\n\r\n").as_bytes());
        assert!(out.starts_with("HTTP/1.1 403"), "{f}: {out}");
    }
    for meta in ["169.254.169.254", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "[::ffff:169.254.169.254]"] {
        let out = exchange(&proxy, format!("GET http://{meta}/latest/meta-data/ HTTP/1.1\r\n\r\n").as_bytes());
        assert!(out.starts_with("HTTP/1.1 403"), "{meta}: {out}");
    }
    let out = exchange(&proxy, b"GET http://metadata.google.internal/computeMetadata/v1/ HTTP/1.1\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(dns.asked().is_empty(), "{:?}", dns.asked());
    assert_eq!(echo.hits(), 0);
    // Control: a rule naming 127.0.0.1 and this port allows every spelling of it.
    let proxy = start(rules(&[&format!("127.0.0.1:{p}")], &[]), dns);
    for f in forms {
        connect_echo(&proxy, &format!("{f}:{p}")).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    assert_eq!(echo.hits(), forms.len());
}

#[test]
fn loopback_rule_works_only_for_its_port() {
    let a = Server::start(Kind::Echo);
    let b = Server::start(Kind::Echo);
    let proxy = start(
        rules(&[&format!("127.0.0.1:{}", a.port()), &format!("localhost:{}", a.port())], &[]),
        FakeResolver::with(&[]),
    );
    connect_echo(&proxy, &format!("127.0.0.1:{}", a.port())).expect("control");
    connect_echo(&proxy, &format!("localhost:{}", a.port())).expect("control via localhost");
    assert!(connect_echo(&proxy, &format!("127.0.0.1:{}", b.port())).is_err());
    assert!(connect_echo(&proxy, &format!("localhost:{}", b.port())).is_err());
    assert_eq!((a.hits(), b.hits()), (2, 0));
}

#[test]
fn socks5_domain_ipv4_ipv6_and_reply_codes() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dns = FakeResolver::with(&[("allowed.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns.clone());
    let (code, mut s) = socks_connect(&proxy, 3, b"allowed.test", p);
    assert_eq!(code, 0);
    s.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    assert_eq!(socks_connect(&proxy, 1, &[127, 0, 0, 1], p).0, 0);
    // NUL byte in the host name: refused (2), never resolved; same name without it works above.
    assert_eq!(socks_connect(&proxy, 3, b"allowed.test\0.evil", p).0, 2);
    assert_eq!(socks_connect(&proxy, 3, b"evil.test", p).0, 2);
    assert_eq!(socks_connect(&proxy, 3, b"2130706433", p + 1).0, 2);
    assert_eq!(dns.asked(), ["allowed.test"]);
    // Allowed but closed port: connection refused (5).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cp = closed.local_addr().unwrap().port();
    drop(closed);
    let proxy2 = start(rules(&[&format!("127.0.0.1:{cp}")], &[]), FakeResolver::with(&[]));
    assert_eq!(socks_connect(&proxy2, 1, &[127, 0, 0, 1], cp).0, 5);
    // IPv6 where the host has it.
    match Server::start_on("[::1]:0", Kind::Echo) {
        Ok(v6) => {
            let p6 = v6.port();
            let proxy3 = start(rules(&[&format!("[::1]:{p6}")], &[]), FakeResolver::with(&[]));
            let one: std::net::Ipv6Addr = "::1".parse().unwrap();
            assert_eq!(socks_connect(&proxy3, 4, &one.octets(), p6).0, 0);
            assert_eq!(socks_connect(&proxy3, 4, &one.octets(), p6 + 1).0, 2);
            assert_eq!(v6.hits(), 1);
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "SKIP IPv6 part: cannot bind [::1]: {e}");
        }
    }
    assert_eq!(echo.hits(), 2);
}

#[test]
fn socks5_unsupported_command_and_methods() {
    let proxy = start(rules(&[], &[]), FakeResolver::with(&[]));
    let mut s = connect(&proxy);
    s.write_all(&[5, 1, 2]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0xff]);
    let mut s = connect(&proxy);
    s.write_all(&[5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, 0, 80]).unwrap();
    let mut r = [0u8; 12];
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r[..2], &[5, 0,][..]);
    assert_eq!(r[3], 7, "UDP ASSOCIATE must get reply 7");
}

#[test]
fn oversized_header_gets_431_and_proxy_stays_up() {
    let web = Server::start(Kind::Http);
    let p = web.port();
    let limits = Limits { max_header_bytes: 8 * 1024, ..Limits::default() };
    let proxy = start_with(rules(&[&format!("127.0.0.1:{p}")], &[]), FakeResolver::with(&[]), limits);
    let big = format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let mut s = connect(&proxy);
    let _ = s.write_all(big.as_bytes());
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert_eq!(web.hits(), 0);
    let ok = exchange(&proxy, format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\n\r\n").as_bytes());
    assert!(ok.starts_with("HTTP/1.1 200"), "control: {ok}");
}

#[test]
fn slowloris_is_cut_off_and_connection_cap_holds() {
    let web = Server::start(Kind::Http);
    let p = web.port();
    let limits = Limits { handshake_timeout: Duration::from_millis(600), max_connections: 4, ..Limits::default() };
    let proxy = start_with(rules(&[&format!("127.0.0.1:{p}")], &[]), FakeResolver::with(&[]), limits);
    // A client trickling one byte every 100 ms never completes its head: closed at the deadline.
    let mut slow = connect(&proxy);
    let started = Instant::now();
    let req = format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
    let mut closed = false;
    for b in req.as_bytes() {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let mut rest = String::new();
    let _ = slow.read_to_string(&mut rest);
    assert!(closed || rest.starts_with("HTTP/1.1 408"), "slow client was not cut off: {rest}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // Four idle clients fill the cap; a fifth is closed at once, served again once they expire.
    let idle: Vec<_> = (0..4).map(|_| connect(&proxy)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut fifth = connect(&proxy);
    let _ = fifth.write_all(format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\n\r\n").as_bytes());
    let mut out = Vec::new();
    let _ = fifth.read_to_end(&mut out);
    assert!(out.is_empty(), "over-cap client was served");
    std::thread::sleep(Duration::from_millis(900));
    let ok = exchange(&proxy, format!("GET http://127.0.0.1:{p}/ HTTP/1.1\r\n\r\n").as_bytes());
    assert!(ok.starts_with("HTTP/1.1 200"), "control after idle clients expired: {ok}");
    drop(idle);
}

#[test]
fn open_tunnels_are_logged_at_shutdown_and_json_lines_written() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dir = std::env::temp_dir().join(format!("stockade-net-log-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("net.jsonl");
    let _ = std::fs::remove_file(&file);
    let mut c = stockade_net::ProxyConfig::new(rules(&[&format!("127.0.0.1:{p}")], &[]));
    c.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    c.log_file = Some(file.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    c.on_denial =
        Some(std::sync::Arc::new(move |n: &stockade_net::log::Notice| s2.lock().unwrap().push(n.message.clone())));
    let proxy = stockade_net::Proxy::start(c).unwrap();
    let (code, mut s) = socks_connect(&proxy, 1, &[127, 0, 0, 1], p);
    assert_eq!(code, 0);
    s.write_all(b"12345").unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).unwrap();
    assert_eq!(socks_connect(&proxy, 3, b"evil.test", 443).0, 2);
    let log = proxy.shutdown();
    assert_eq!(log.events.len(), 2, "{:?}", log.events);
    let open = log.events.iter().find(|e| e.allowed).unwrap();
    assert_eq!((open.bytes_out, open.bytes_in), (5, 5));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["stockade: blocked connection to evil.test:443 (no rule); allow it with --allow-host evil.test:443"]
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().any(|l| l["allowed"] == false && l["host"] == "evil.test" && l["reason"] == "no rule"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn non_loopback_listener_and_no_listener_are_errors() {
    let mut c = stockade_net::ProxyConfig::new(rules(&[], &[]));
    assert_eq!(stockade_net::Proxy::start(c.clone()).err().unwrap().code(), "net_no_listener");
    c.listen_tcp = Some("0.0.0.0:0".parse().unwrap());
    assert_eq!(stockade_net::Proxy::start(c).err().unwrap().code(), "net_bind_tcp");
}

#[test]
fn idle_tunnel_is_closed_but_active_one_is_not() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let limits = Limits { idle_timeout: Duration::from_millis(400), ..Limits::default() };
    let proxy = start_with(rules(&[&format!("127.0.0.1:{p}")], &[]), FakeResolver::with(&[]), limits);
    // Control: a tunnel that keeps talking every 100 ms outlives the idle timeout.
    let (code, mut busy) = socks_connect(&proxy, 1, &[127, 0, 0, 1], p);
    assert_eq!(code, 0);
    let mut b = [0u8; 1];
    for _ in 0..10 {
        busy.write_all(b"x").unwrap();
        busy.read_exact(&mut b).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    // A silent tunnel is closed after the idle timeout.
    let (code, mut quiet) = socks_connect(&proxy, 1, &[127, 0, 0, 1], p);
    assert_eq!(code, 0);
    let started = Instant::now();
    let mut buf = [0u8; 8];
    assert_eq!(quiet.read(&mut buf).unwrap_or(0), 0);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
}

/// Relay buffers grow for bulk transfers from a shared budget; whether a tunnel got to grow or
/// not, every byte must arrive in order, both ways at once.
#[test]
fn bulk_tunnels_are_byte_exact_with_a_small_relay_budget() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    // Room for one tunnel direction to grow to the maximum, not for all of them.
    let limits =
        Limits { buffer_size: 4096, max_buffer_size: 256 * 1024, buffer_budget: 256 * 1024, ..Limits::default() };
    let proxy = start_with(rules(&[&format!("127.0.0.1:{p}")], &[]), FakeResolver::with(&[]), limits);
    let tunnels: Vec<_> = (0..3u8)
        .map(|seed| {
            let (code, s) = socks_connect(&proxy, 1, &[127, 0, 0, 1], p);
            assert_eq!(code, 0);
            std::thread::spawn(move || {
                let data: Vec<u8> =
                    (0..8 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8 ^ seed).collect();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                let mut r = s;
                r.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                assert!(back == data, "tunnel {seed}: {} bytes back of {}, or reordered", back.len(), data.len());
            })
        })
        .collect();
    for t in tunnels {
        t.join().unwrap();
    }
    let log = proxy.shutdown();
    let allowed: Vec<_> = log.events.iter().filter(|e| e.allowed).collect();
    assert_eq!(allowed.len(), 3);
    for e in allowed {
        assert_eq!((e.bytes_out, e.bytes_in), (8 << 20, 8 << 20), "{e:?}");
    }
}

/// The supervisor may hand the handle to another thread (e.g. a wait thread).
#[test]
fn handle_and_config_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<stockade_net::ProxyHandle>();
    check::<stockade_net::ProxyConfig>();
    check::<stockade_net::RunLog>();
}

// The Linux bridge hands the proxy a listener from inside the sandbox; it must be served with
// the same rules as the proxy's own listeners, and no longer once the proxy has stopped.
#[test]
fn adopted_listeners_are_served_with_the_same_rules() {
    use std::io::{Read, Write};
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let proxy = start(rules(&[&format!("127.0.0.1:{p}")], &[]), FakeResolver::with(&[]));
    let extra = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = extra.local_addr().unwrap();
    proxy.adopt_listener(extra).unwrap();
    let tunnel = |target: String| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        let _ = s.read_exact(&mut head);
        String::from_utf8_lossy(&head).into_owned()
    };
    assert_eq!(tunnel(format!("127.0.0.1:{p}")), "HTTP/1.1 200", "allowed through the adopted listener");
    assert_eq!(tunnel(format!("127.0.0.1:{}", p.wrapping_add(1))), "HTTP/1.1 403", "denied through it too");
    assert_eq!(echo.hits(), 1);
    let adopter = proxy.adopter();
    let log = proxy.shutdown();
    assert_eq!(log.events.len(), 2);
    let late = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(adopter.adopt(late).unwrap_err().code(), "net_adopt_listener", "a stopped proxy adopts nothing");
}

/// A sandboxed client asking for an allowed name that resolves to a private address learns
/// that it was refused and why in general, never the address: not in the 403 body, the SOCKS
/// reply, the stderr line or the JSON-lines file (which a sandboxed command may read while it
/// runs). The supervisor's report keeps the address and the rule that would allow it.
#[test]
fn refusal_after_lookup_does_not_name_the_private_address() {
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dns = FakeResolver::with(&[("internal.test", "10.1.2.3"), ("denied-addr.test", "10.9.9.9")]);
    let dir = std::env::temp_dir().join(format!("stockade-net-withheld-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("net.jsonl");
    let _ = std::fs::remove_file(&file);
    let allow = [format!("internal.test:{p}"), format!("denied-addr.test:{p}"), format!("127.0.0.1:{p}")];
    let mut c = stockade_net::ProxyConfig::new(rules(&[&allow[0], &allow[1], &allow[2]], &["10.9.9.9"]));
    c.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    c.resolver = dns;
    c.log_file = Some(file.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    c.on_denial =
        Some(std::sync::Arc::new(move |n: &stockade_net::log::Notice| s2.lock().unwrap().push(n.message.clone())));
    let proxy = stockade_net::Proxy::start(c).unwrap();

    let err = connect_echo(&proxy, &format!("internal.test:{p}")).unwrap_err();
    assert!(err.starts_with("HTTP/1.1 403"), "{err}");
    assert!(
        err.contains(&format!(
            "blocked connection to internal.test:{p} (resolves only to addresses the proxy refuses (private, \
             local, or named by a deny rule); the run's report names them)"
        )),
        "{err}"
    );
    let err = connect_echo(&proxy, &format!("denied-addr.test:{p}")).unwrap_err();
    assert!(err.contains("resolves only to addresses the proxy refuses"), "{err}");
    assert!(!err.contains("10.9.9.9") && !err.contains("deny rule refuses"), "no hint of which rule: {err}");
    let plain = exchange(
        &proxy,
        format!("GET http://internal.test:{p}/ HTTP/1.1\r\nHost: internal.test:{p}\r\n\r\n").as_bytes(),
    );
    assert!(plain.starts_with("HTTP/1.1 403"), "{plain}");
    let (code, _) = socks_connect(&proxy, 3, b"internal.test", p);
    assert_eq!(code, 2, "SOCKS: not allowed, with the bound address zeroed");
    let lines = seen.lock().unwrap().join("\n");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!((lines.lines().count(), text.lines().count()), (4, 4), "{lines}\n{text}");
    for (what, told) in [("stderr lines", &lines), ("JSON-lines file", &text), ("plain-HTTP refusal", &plain)] {
        for secret in ["10.1.2.3", "10.9.9.9"] {
            assert!(!told.contains(secret), "the {what} name {secret}:\n{told}");
        }
    }
    // Control: a client that asks for the address itself is told about it, with the fix.
    let err = connect_echo(&proxy, &format!("10.1.2.3:{p}")).unwrap_err();
    assert!(err.contains(&format!("to 10.1.2.3:{p} (no rule); allow it with --allow-host 10.1.2.3:{p}")), "{err}");
    assert_eq!(echo.hits(), 0);

    let log = proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    // The supervisor's report keeps what the client was not told.
    let denials = log.denials();
    let d = denials.iter().find(|d| d.target == format!("internal.test:{p}")).unwrap();
    assert_eq!(d.rule.as_deref(), Some("private address 10.1.2.3 needs a rule naming that address"));
    assert_eq!(d.suggested_grant, Some(stockade_policy::Grant::Host { rule: format!("10.1.2.3:{p}") }));
    let d = denials.iter().find(|d| d.target == format!("denied-addr.test:{p}")).unwrap();
    assert_eq!(d.rule.as_deref(), Some("denied by rule `10.9.9.9`"));
}

/// A resolver whose `slow.test` answers only when the test opens the gate (like a name whose
/// nameserver never answers), counting how many lookups run at once; `fast.test` answers at once.
#[derive(Default)]
struct GatedResolver {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    slow_calls: std::sync::atomic::AtomicUsize,
}

impl stockade_net::Resolve for GatedResolver {
    fn resolve(&self, name: &str) -> std::io::Result<Vec<std::net::IpAddr>> {
        use std::sync::atomic::Ordering::SeqCst;
        if name == "fast.test" {
            return Ok(vec![[127, 0, 0, 1].into()]);
        }
        self.slow_calls.fetch_add(1, SeqCst);
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        let open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(self.opened.wait_timeout_while(open, Duration::from_secs(20), |open| !*open));
        self.running.fetch_sub(1, SeqCst);
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))
    }
}

/// A lookup that outlives its deadline keeps its thread, so the proxy runs at most
/// `max_lookups` lookups at once: a sandboxed command firing many slow names gets timeouts and
/// then prompt, clear refusals, and never more resolver threads in the supervisor than the cap.
#[test]
fn slow_lookups_are_capped_and_their_threads_do_not_pile_up() {
    use std::sync::atomic::Ordering::SeqCst;
    let echo = Server::start(Kind::Echo);
    let p = echo.port();
    let dns = std::sync::Arc::new(GatedResolver::default());
    let deadline = Duration::from_millis(1500);
    let limits = Limits { max_lookups: 2, connect_timeout: deadline, ..Limits::default() };
    let allow = [format!("slow.test:{p}"), format!("fast.test:{p}"), format!("127.0.0.1:{p}")];
    let proxy = start_resolving(rules(&[&allow[0], &allow[1], &allow[2]], &[]), dns.clone(), limits);
    connect_echo(&proxy, &format!("fast.test:{p}")).expect("control: a quick lookup");
    let addr = proxy.tcp_addr().unwrap();
    let ask = move |name: &str| {
        let started = Instant::now();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "CONNECT {name}:{p} HTTP/1.1\r\nHost: {name}:{p}\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        (out, started.elapsed())
    };
    // Six at once: two lookups start and time out, four wait for a slot in vain.
    let wave: Vec<_> = (0..6).map(|_| std::thread::spawn(move || ask("slow.test"))).collect();
    let answers: Vec<_> = wave.into_iter().map(|t| t.join().unwrap()).collect();
    for (out, took) in &answers {
        assert!(*took < Duration::from_secs(3), "not answered promptly ({took:?}): {out}");
    }
    let timed_out = answers.iter().filter(|(o, _)| o.starts_with("HTTP/1.1 504")).count();
    let busy = answers.iter().filter(|(o, _)| o.starts_with("HTTP/1.1 503")).count();
    assert_eq!((timed_out, busy), (2, 4), "{answers:#?}");
    assert!(answers.iter().any(|(o, _)| o.contains(
        "stockade: cannot look up slow.test: all 2 resolver threads are still busy with earlier lookups (slow or \
         unanswered names); try again later"
    )));
    // The timed-out lookups still hold their threads; later lookups, also of a quick name and
    // over SOCKS, are refused without starting another, and without waiting out their own
    // deadline, since every slot is held by a lookup whose client already gave up.
    let (out, took) = ask("slow.test");
    assert!(out.starts_with("HTTP/1.1 503") && took < deadline / 2, "{took:?}: {out}");
    let (out, took) = ask("fast.test");
    assert!(out.starts_with("HTTP/1.1 503") && took < deadline / 2, "{took:?}: {out}");
    assert_eq!(socks_connect(&proxy, 3, b"slow.test", p).0, 1, "SOCKS general failure");
    assert_eq!(dns.most.load(SeqCst), 2, "more lookups ran at once than the cap");
    assert_eq!(dns.slow_calls.load(SeqCst), 2, "a lookup started while every slot was taken");
    assert_eq!(dns.running.load(SeqCst), 2);
    // Once the stuck lookups end, their slots are free again.
    *dns.open.lock().unwrap() = true;
    dns.opened.notify_all();
    let started = Instant::now();
    while dns.running.load(SeqCst) > 0 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    connect_echo(&proxy, &format!("fast.test:{p}")).expect("control: slots come back");
    assert_eq!(echo.hits(), 2);
}

/// A FIFO planted at the `--net-log` path (the workspace is writable by earlier runs) is
/// refused at once: opening it for writing would wait for a reader, and the run would hang
/// before its command started. Control: a regular file at the same place is used.
#[cfg(unix)]
#[test]
fn a_fifo_at_the_log_path_is_refused_without_waiting() {
    let dir = std::env::temp_dir().join(format!("stockade-net-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("net.jsonl");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let start = |path: std::path::PathBuf| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut c = stockade_net::ProxyConfig::new(rules(&["example.com"], &[]));
            c.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
            c.log_file = Some(path);
            let _ = tx.send(stockade_net::Proxy::start(c).map(|p| drop(p.shutdown())));
        });
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("Proxy::start hung on the log path")
    };
    let e = start(fifo.clone()).unwrap_err();
    assert_eq!(e.code(), "net_open_log", "{e}");
    std::fs::remove_file(&fifo).unwrap();
    start(fifo.clone()).unwrap();
    assert!(std::fs::metadata(&fifo).unwrap().is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
