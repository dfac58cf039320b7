//! Benchmark: throughput and added latency of the proxy against a direct loopback connection,
//! in one run (machines here are noisy, so only same-run ratios mean anything).
//!
//! `cargo run --release -p stockade-net --example netbench -- [MiB] [requests]`
//!
//! - throughput: download `MiB` (default 1024) from a local server, directly, through the
//!   proxy's TCP listener with `CONNECT`, and (on Unix) through the in-sandbox path: forwarder
//!   on loopback -> unix socket -> proxy;
//! - latency: `requests` (default 2000) small HTTP requests, each on a new connection, directly
//!   and through the proxy (absolute-form GET); also round trips inside one open tunnel.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is the point

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use stockade_net::{Proxy, ProxyConfig, Rules};

const CHUNK: usize = 256 * 1024;

/// A loopback server that runs `handle` on its own thread for every connection.
fn server(handle: impl Fn(TcpStream) + Clone + Send + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || handle(s));
        }
    });
    addr
}

/// Sends `total` bytes to every client.
fn source_server(total: u64) -> SocketAddr {
    let buf = std::sync::Arc::new(vec![0x5au8; CHUNK]);
    server(move |mut s| {
        let mut left = total;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
            left -= n as u64;
        }
    })
}

/// Answers one HTTP request head with a tiny response.
fn http_server() -> SocketAddr {
    server(|mut s| {
        let _ = s.set_nodelay(true);
        let mut buf = [0u8; 2048];
        let mut got = Vec::new();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    })
}

/// Echoes everything back.
fn echo_server() -> SocketAddr {
    server(|mut s| {
        let _ = s.set_nodelay(true);
        let mut r = s.try_clone().unwrap();
        let _ = std::io::copy(&mut r, &mut s);
    })
}

fn read_head(s: &mut TcpStream) {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "proxy closed: {}", String::from_utf8_lossy(&got));
        got.push(b[0]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
}

fn tunnel(via: SocketAddr, to: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(via).unwrap();
    s.set_nodelay(true).unwrap();
    write!(s, "CONNECT {to} HTTP/1.1\r\nHost: {to}\r\n\r\n").unwrap();
    read_head(&mut s);
    s
}

fn drain(mut s: TcpStream, total: u64) -> f64 {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    let t = Instant::now();
    while got < total {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "short transfer: {got} of {total}");
        got += n as u64;
    }
    got as f64 / t.elapsed().as_secs_f64() / (1024.0 * 1024.0)
}

/// Rounds of each throughput measurement (`NETBENCH_ROUNDS` overrides; the machine is noisy).
fn rounds() -> usize {
    std::env::var("NETBENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5)
}

/// CPU seconds this whole process has used so far, all threads, ended ones included (Linux
/// `/proc`; `None` elsewhere).
fn process_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the comm field.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn medianf(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn small_request(via: Option<SocketAddr>, to: SocketAddr) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect(via.unwrap_or(to)).unwrap();
    s.set_nodelay(true).unwrap();
    match via {
        Some(_) => write!(s, "GET http://{to}/ HTTP/1.1\r\nHost: {to}\r\n\r\n").unwrap(),
        None => write!(s, "GET / HTTP/1.1\r\nHost: {to}\r\n\r\n").unwrap(),
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(out.ends_with(b"ok"), "{}", String::from_utf8_lossy(&out));
    t.elapsed()
}

fn round_trips(mut s: TcpStream, n: usize) -> Duration {
    let mut v = Vec::with_capacity(n);
    let mut b = [0u8; 64];
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&[7u8; 64]).unwrap();
        s.read_exact(&mut b).unwrap();
        v.push(t.elapsed());
    }
    median(v)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let requests: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let total = mib * 1024 * 1024;
    let (src, web, echo) = (source_server(total), http_server(), echo_server());
    let rules =
        Rules::new([src, web, echo].map(|a| format!("{}:{}", a.ip(), a.port()).parse().unwrap()), std::iter::empty());
    let mut config = ProxyConfig::new(rules);
    config.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    #[cfg(unix)]
    let dir = std::env::temp_dir().join(format!("stockade-netbench-{}", std::process::id()));
    #[cfg(unix)]
    {
        let _ = std::fs::create_dir_all(&dir);
        config.listen_unix = Some(dir.join("proxy.sock"));
    }
    let proxy = Proxy::start(config).unwrap();
    let via = proxy.tcp_addr().unwrap();

    // Warm up, then alternate direct and proxied runs (the machine is shared and noisy) and
    // report medians of ROUNDS runs each, plus the median of the per-round ratios.
    let _ = drain(TcpStream::connect(src).unwrap(), total.min(64 << 20));
    #[cfg(unix)]
    let fwd_addr = {
        let fwd = TcpListener::bind("127.0.0.1:0").unwrap();
        let fwd_addr = fwd.local_addr().unwrap();
        let sock = dir.join("proxy.sock");
        std::thread::spawn(move || stockade_net::bridge::serve_forwarder(fwd, &sock));
        fwd_addr
    };
    let (mut direct, mut proxied, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    #[cfg(unix)]
    let (mut bridged, mut bridged_ratios) = (Vec::new(), Vec::new());
    let (mut direct_cpu, mut proxied_cpu) = (0.0, 0.0);
    for _ in 0..rounds() {
        let c0 = process_cpu();
        let d = drain(TcpStream::connect(src).unwrap(), total);
        let c1 = process_cpu();
        let p = drain(tunnel(via, src), total);
        if let (Some(a), Some(b), Some(c)) = (c0, c1, process_cpu()) {
            direct_cpu += b - a;
            proxied_cpu += c - b;
        }
        direct.push(d);
        proxied.push(p);
        ratios.push(p / d);
        #[cfg(unix)]
        {
            let b = drain(tunnel(fwd_addr, src), total);
            bridged.push(b);
            bridged_ratios.push(b / d);
        }
    }
    if std::env::var_os("NETBENCH_VERBOSE").is_some() {
        println!("direct  {:?}", direct.iter().map(|v| *v as u64).collect::<Vec<_>>());
        println!("proxied {:?}", proxied.iter().map(|v| *v as u64).collect::<Vec<_>>());
    }
    println!(
        "throughput  {mib} MiB x {}  direct median {:6.0} MiB/s  proxy median {:6.0} MiB/s  median ratio {:5.1}%  (best {:5.1}%)",
        rounds(),
        medianf(&direct),
        medianf(&proxied),
        100.0 * medianf(&ratios),
        100.0 * ratios.iter().cloned().fold(0.0, f64::max)
    );
    let gib = rounds() as f64 * mib as f64 / 1024.0;
    println!(
        "CPU         {:.2} s per GiB direct (server + client), {:.2} s per GiB through the proxy (+ relay)",
        direct_cpu / gib,
        proxied_cpu / gib
    );
    #[cfg(unix)]
    println!(
        "throughput  {mib} MiB x {}  via forwarder+unix socket median {:6.0} MiB/s  median ratio {:5.1}%  (best {:5.1}%)",
        rounds(),
        medianf(&bridged),
        100.0 * medianf(&bridged_ratios),
        100.0 * bridged_ratios.iter().cloned().fold(0.0, f64::max)
    );

    for _ in 0..50 {
        small_request(None, web);
        small_request(Some(via), web);
    }
    let mut d = Vec::with_capacity(requests);
    let mut p = Vec::with_capacity(requests);
    for _ in 0..requests {
        d.push(small_request(None, web));
        p.push(small_request(Some(via), web));
    }
    let (md, mp) = (median(d), median(p));
    println!(
        "latency     {requests} new-connection requests  direct median {:7.1} us  proxy median {:7.1} us  added {:7.1} us",
        md.as_secs_f64() * 1e6,
        mp.as_secs_f64() * 1e6,
        (mp.as_secs_f64() - md.as_secs_f64()) * 1e6
    );
    let rd = round_trips(TcpStream::connect(echo).unwrap(), requests);
    let rp = round_trips(tunnel(via, echo), requests);
    println!(
        "latency     {requests} round trips in an open tunnel  direct median {:7.1} us  proxy median {:7.1} us  added {:7.1} us",
        rd.as_secs_f64() * 1e6,
        rp.as_secs_f64() * 1e6,
        (rp.as_secs_f64() - rd.as_secs_f64()) * 1e6
    );
    let log = proxy.shutdown();
    println!("proxy events logged: {}", log.events.len());
    #[cfg(unix)]
    let _ = std::fs::remove_dir_all(&dir);
}
