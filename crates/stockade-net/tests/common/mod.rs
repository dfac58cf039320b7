//! Shared fixtures for the integration tests: local servers, a fake resolver, proxy startup.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test fixtures: a panic is a test failure

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stockade_net::{Limits, Proxy, ProxyConfig, ProxyHandle, Resolve, Rules};

/// A resolver that answers from a table and records every name it was asked for.
#[derive(Default)]
pub struct FakeResolver {
    pub answers: HashMap<String, Vec<IpAddr>>,
    pub asked: Mutex<Vec<String>>,
}

impl Resolve for FakeResolver {
    fn resolve(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        self.asked.lock().unwrap().push(name.to_owned());
        self.answers.get(name).cloned().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
    }
}

impl FakeResolver {
    pub fn with(pairs: &[(&str, &str)]) -> Arc<Self> {
        let mut answers = HashMap::new();
        for (n, ip) in pairs {
            answers.entry(n.to_string()).or_insert_with(Vec::new).push(ip.parse().unwrap());
        }
        Arc::new(FakeResolver { answers, asked: Mutex::new(Vec::new()) })
    }

    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

pub fn rules(allow: &[&str], deny: &[&str]) -> Rules {
    Rules::new(allow.iter().map(|s| s.parse().unwrap()), deny.iter().map(|s| s.parse().unwrap()))
}

pub fn start(rules: Rules, resolver: Arc<FakeResolver>) -> ProxyHandle {
    start_with(rules, resolver, Limits::default())
}

pub fn start_with(rules: Rules, resolver: Arc<FakeResolver>, limits: Limits) -> ProxyHandle {
    start_resolving(rules, resolver, limits)
}

/// Like [`start_with`], with any resolver (e.g. one that blocks).
pub fn start_resolving(rules: Rules, resolver: Arc<dyn Resolve>, limits: Limits) -> ProxyHandle {
    let mut c = ProxyConfig::new(rules);
    c.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    c.resolver = resolver;
    c.limits = limits;
    Proxy::start(c).unwrap()
}

/// A server that counts accepted connections; `Http` answers one request per connection with
/// a body naming the request line and the Host header, `Echo` echoes.
pub struct Server {
    pub addr: SocketAddr,
    pub accepted: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Http,
    Echo,
}

impl Server {
    pub fn start(kind: Kind) -> Server {
        Self::start_on("127.0.0.1:0", kind).unwrap()
    }

    pub fn start_on(addr: &str, kind: Kind) -> std::io::Result<Server> {
        let l = TcpListener::bind(addr)?;
        let addr = l.local_addr()?;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let acc = accepted.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let acc = acc.clone();
                std::thread::spawn(move || match kind {
                    Kind::Echo => {
                        acc.lock().unwrap().push("echo".into());
                        let mut r = s.try_clone().unwrap();
                        let _ = std::io::copy(&mut r, &mut s);
                    }
                    Kind::Http => {
                        let head = read_head(&mut s);
                        acc.lock().unwrap().push(head.clone());
                        let first = head.lines().next().unwrap_or("").to_owned();
                        let host = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
                            .unwrap_or("-");
                        let body = format!("ok {first} host={host}");
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                });
            }
        });
        Ok(Server { addr, accepted })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far. Waits briefly first: the proxy reports success as soon as
    /// its connect completes, which can be before this server's accept thread has recorded it.
    pub fn hits(&self) -> usize {
        std::thread::sleep(Duration::from_millis(50));
        self.accepted.lock().unwrap().len()
    }
}

pub fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn connect(proxy: &ProxyHandle) -> TcpStream {
    let s = TcpStream::connect(proxy.tcp_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends raw bytes to the proxy and returns everything it answers until it closes.
pub fn exchange(proxy: &ProxyHandle, request: &[u8]) -> String {
    let mut s = connect(proxy);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `CONNECT target`, then (if established) a round trip through the echo server.
pub fn connect_echo(proxy: &ProxyHandle, target: &str) -> Result<(), String> {
    let mut s = connect(proxy);
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    if !head.starts_with("HTTP/1.1 200") {
        let mut rest = String::new();
        let _ = s.read_to_string(&mut rest);
        return Err(format!("{head}{rest}"));
    }
    s.write_all(b"\x16\x03\x01 tls-shaped hello").unwrap();
    let mut back = [0u8; 20];
    s.read_exact(&mut back).map_err(|e| e.to_string())?;
    assert_eq!(&back, b"\x16\x03\x01 tls-shaped hello");
    Ok(())
}

/// A minimal SOCKS5 client: returns the reply code (and leaves the stream open on success).
pub fn socks_connect(proxy: &ProxyHandle, atyp: u8, addr: &[u8], port: u16) -> (u8, TcpStream) {
    let mut s = connect(proxy);
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    let mut req = vec![5, 1, 0, atyp];
    if atyp == 3 {
        req.push(addr.len() as u8);
    }
    req.extend_from_slice(addr);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).unwrap();
    let mut rep = [0u8; 4];
    s.read_exact(&mut rep).unwrap();
    let rest = match rep[3] {
        1 => 6,
        4 => 18,
        _ => panic!("unexpected bound address type {}", rep[3]),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).unwrap();
    (rep[1], s)
}

pub fn tool(name: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        let _ = writeln!(std::io::stderr(), "SKIP: `{name}` is not installed");
    }
    found
}
