//! The network allowlist end to end on Linux: the built binary, a private network namespace
//! whose only way out is the proxy bridge, real tools inside, and local servers on the host.
//! Every denied probe (THREATS.md N11) has an allowed control, and the host server counts the
//! connections it really received.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A host HTTP server on 127.0.0.1 that answers `hello` and counts connections.
struct HostServer {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl HostServer {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
            }
        });
        HostServer { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    home: PathBuf,
}

fn env() -> Option<Env> {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let (ws, home) = (root.join("ws"), root.join("home"));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let e = Env { _dir: dir, ws, home };
    let doctor = e.stockade(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap_or_default();
    if v["implementation"] != "namespaces" {
        let reason = format!("the namespaces implementation is not available here (doctor: {})", v["implementation"]);
        let required = std::env::var("STOCKADE_TEST_REQUIRE").unwrap_or_default();
        assert!(!required.split(',').any(|r| r == "userns" || r == "all"), "required but unavailable: {reason}");
        let _ = writeln!(std::io::stderr(), "SKIP network allowlist tests: {reason}");
        return None;
    }
    Some(e)
}

fn tool(name: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().is_ok_and(|o| o.status.success());
    if !found {
        let _ = writeln!(std::io::stderr(), "SKIP {name} probes: `{name}` is not installed");
    }
    found
}

impl Env {
    fn stockade(&self, args: &[&str]) -> Output {
        Command::new(common::stockade_bin())
            .args(args)
            .current_dir(&self.ws)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .output()
            .unwrap()
    }

    /// Runs `script` with the allowlist `hosts`; returns (stdout, stderr, report).
    fn run(&self, hosts: &[String], script: &str) -> (String, String, serde_json::Value) {
        let report = self.ws.join("report.json");
        let mut args: Vec<String> = vec!["run".into(), "--report".into(), report.display().to_string()];
        for h in hosts {
            args.push("--allow-host".into());
            args.push(h.clone());
        }
        args.extend(["--".into(), "sh".into(), "-c".into(), script.into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = self.stockade(&refs);
        let rep = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default()).unwrap_or_default();
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned(), rep)
    }
}

/// `curl` through the sandbox's proxy variables, but without the loopback `NO_PROXY` exemption
/// (the host's loopback is only reachable through the proxy).
const CURL: &str = "curl -sS --max-time 5 --noproxy ''";

#[test]
fn allowed_host_through_http_connect_and_socks5() {
    let Some(e) = env() else { return };
    if !tool("curl") {
        return;
    }
    let srv = HostServer::start();
    let p = srv.port;
    let script = format!(
        "{CURL} http://localhost:{p}/ && echo; \
         {CURL} --proxytunnel http://localhost:{p}/ && echo; \
         curl -sS --max-time 5 --noproxy '' --socks5-hostname 127.0.0.1:3128 http://localhost:{p}/ && echo"
    );
    let (out, err, rep) = e.run(&[format!("localhost:{p}")], &script);
    assert_eq!(out, "hello\nhello\nhello\n", "stderr: {err}");
    assert_eq!(srv.hits(), 3);
    let events = rep["network"].as_array().unwrap();
    assert_eq!(events.iter().filter(|e| e["allowed"] == true).count(), 3, "{events:?}");
    assert!(events.iter().all(|e| e["rule"] == format!("localhost:{p}")), "{events:?}");
}

#[test]
fn python_and_git_use_the_proxy() {
    let Some(e) = env() else { return };
    if !tool("python3") || !tool("git") {
        return;
    }
    let srv = HostServer::start();
    let p = srv.port;
    let py = format!(
        "import os, urllib.request; os.environ.pop('NO_PROXY'); os.environ.pop('no_proxy'); \
         print(urllib.request.urlopen('http://localhost:{p}/', timeout=5).read().decode())"
    );
    let script = format!(
        "python3 -c \"{py}\"; \
         NO_PROXY= no_proxy= git ls-remote http://localhost:{p}/repo.git 2>&1 | head -1; true"
    );
    let (out, err, rep) = e.run(&[format!("localhost:{p}")], &script);
    assert!(out.starts_with("hello\n"), "python through the proxy: {out} {err}");
    // git reached the host server through the proxy (the answer is not a repository).
    assert!(srv.hits() >= 2, "git did not reach the server: {out} {err}");
    assert!(rep["network"].as_array().unwrap().iter().all(|e| e["allowed"] == true));
}

// See: THREATS.md N11 (proxy-mode bypasses).
#[test]
fn n11_bypasses_fail_and_reach_nothing() {
    let Some(e) = env() else { return };
    if !tool("curl") || !tool("python3") {
        return;
    }
    let srv = HostServer::start();
    let p = srv.port;
    let other = HostServer::start();
    let q = other.port;
    let probes = [
        // Direct connections: the sandbox's own loopback has no server; nothing else routes.
        format!("curl -sS --max-time 3 --noproxy '*' http://localhost:{p}/"),
        format!("env -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy curl -sS --max-time 3 http://127.0.0.1:{p}/"),
        format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {p}), 3)\""),
        "curl -sS --max-time 3 --noproxy '*' http://1.1.1.1/".to_owned(),
        // Through the proxy, but not allowed.
        format!("{CURL} --fail http://localhost:{q}/"),
        format!("{CURL} --fail --proxytunnel https://evil.example:{p}/"),
        format!("{CURL} --fail http://2130706433:{p}/"),
        format!("{CURL} --fail http://0x7f.1:{p}/"),
        format!("{CURL} --fail http://0177.0.0.1:{p}/"),
        format!("{CURL} --fail 'http://[::ffff:127.0.0.1]:{p}/'"),
        "curl -sS --max-time 3 --fail --socks5-hostname 127.0.0.1:3128 http://169.254.169.254/".to_owned(),
        format!("{CURL} --fail http://metadata.google.internal:{p}/"),
        // A Host header that disagrees with the request target.
        format!("{CURL} --fail -H 'Host: evil.example' http://localhost:{p}/"),
        // A NUL byte inside a SOCKS5 domain name.
        format!(
            "python3 -c \"import socket,struct; s=socket.create_connection(('127.0.0.1',3128),3); s.sendall(b'\\x05\\x01\\x00'); s.recv(2); \
             n=b'evil\\x00localhost'; s.sendall(b'\\x05\\x01\\x00\\x03'+bytes([len(n)])+n+struct.pack('>H',{p})); r=s.recv(10); \
             raise SystemExit(0 if r[1]==0 else 1)\""
        ),
        // DNS and UDP have no route at all.
        "getent hosts example.com".to_owned(),
        "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('1.1.1.1', 53))\"".to_owned(),
    ];
    for probe in &probes {
        let (out, err, _) = e.run(&[format!("localhost:{p}")], &format!("{probe} >/dev/null 2>&1; echo rc=$?"));
        assert!(!out.contains("rc=0"), "N11 bypass succeeded: `{probe}`\nstdout: {out}\nstderr: {err}");
    }
    assert_eq!(srv.hits(), 0, "the allowed server was reached by a bypass");
    assert_eq!(other.hits(), 0, "a non-allowed port was reached");
    // Control: the same allowlist does reach the allowed port through the proxy.
    let (out, _, _) = e.run(&[format!("localhost:{p}")], &format!("{CURL} http://localhost:{p}/"));
    assert_eq!(out, "hello");
    assert_eq!(srv.hits(), 1);
}

#[test]
fn denials_are_reported_with_the_fix_and_logged() {
    let Some(e) = env() else { return };
    if !tool("curl") {
        return;
    }
    let log = e.ws.join("net.jsonl");
    let report = e.ws.join("r.json");
    let o = e.stockade(&[
        "run",
        "--allow-host",
        "localhost:1",
        "--net-log",
        log.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "curl -sS --max-time 3 http://evil.example/ >/dev/null 2>&1; true",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "stockade: blocked connection to evil.example:80 (no rule); allow it with --allow-host evil.example:80"
        ),
        "{err}"
    );
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let d = &rep["denials"][0];
    assert_eq!((d["layer"].as_str(), d["kind"].as_str()), (Some("proxy"), Some("network")));
    assert_eq!(d["suggested_grant"]["rule"], "evil.example:80");
    let line = std::fs::read_to_string(&log).unwrap();
    assert!(line.contains("\"evil.example\"") && line.contains("\"allowed\":false"), "{line}");
}

/// An allowed name that resolves only to a loopback or private address is refused, and what the
/// command can read while it runs (the client's answer, the stderr line, the `--net-log` file)
/// does not say which address: that would map the user's network for it. The user learns it
/// after the run, on stderr and in the report, with the rule that would allow it. The name is
/// the machine's own host name, which Debian maps to a loopback address in `/etc/hosts`.
#[test]
fn a_private_address_behind_an_allowed_name_is_named_only_after_the_run() {
    let Some(e) = env() else { return };
    if !tool("curl") {
        return;
    }
    let name = String::from_utf8_lossy(&Command::new("hostname").output().unwrap().stdout).trim().to_owned();
    let addrs: Vec<std::net::IpAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 80))
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    if name.is_empty() || name == "localhost" || addrs.is_empty() || !addrs.iter().all(|a| a.is_loopback()) {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP private-address naming: the host name `{name}` does not resolve to loopback only ({addrs:?})"
        );
        return;
    }
    let addr = addrs[0].to_string();
    let log = e.ws.join("net-private.jsonl");
    let report = e.ws.join("r-private.json");
    let o = e.stockade(&[
        "run",
        "--allow-host",
        &format!("{name}:80"),
        "--net-log",
        log.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &format!("{CURL} -o /dev/null -w '%{{http_code}}' http://{name}/; echo; {CURL} http://{name}/"),
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(out.starts_with("403"), "the client is refused: {out} / {err}");
    assert!(
        out.contains("resolves only to addresses the proxy refuses") && !out.contains(&addr),
        "the 403 body: {out}"
    );
    let during = err.lines().find(|l| l.contains("blocked connection to")).unwrap_or_default();
    assert!(during.contains(&name) && !during.contains(&addr), "the line while the command runs: {err}");
    let after = err.lines().find(|l| l.contains("was refused:")).unwrap_or_default();
    assert!(after.contains(&addr) && after.contains("--allow-host"), "the line after the run: {err}");
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(file.contains(&name) && !file.contains(&addr), "the --net-log file: {file}");
    let rep = std::fs::read_to_string(&report).unwrap();
    assert!(rep.contains(&addr), "the report names it: {rep}");
}

#[test]
fn allowlist_refused_without_namespaces() {
    let Some(e) = env() else { return };
    let o = e.stockade(&["run", "--implementation", "landlock-only", "--allow-host", "example.com", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot confine a network allowlist"));
    // Control: landlock-only runs with the network off.
    let o = e.stockade(&["run", "--implementation", "landlock-only", "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A host `git http-backend` behind python's CGI server, with one bare repository.
struct GitServer {
    port: u16,
    _root: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git_server() -> Option<GitServer> {
    let exec = Command::new("git").arg("--exec-path").output().ok()?;
    let backend = PathBuf::from(String::from_utf8_lossy(&exec.stdout).trim()).join("git-http-backend");
    if !backend.exists() {
        let _ = writeln!(std::io::stderr(), "SKIP git smart HTTP: {} not found", backend.display());
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let src = root.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q"]);
    std::fs::write(src.join("README"), "cloned through the sandbox's proxy\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-qm", "x"]);
    let served = root.path().join("srv");
    std::fs::create_dir_all(served.join("cgi-bin")).unwrap();
    git(root.path(), &["clone", "-q", "--bare", "src", "srv/repo.git"]);
    let cgi = served.join("cgi-bin/git");
    std::fs::write(&cgi, format!("#!/bin/sh\nexec '{}'\n", backend.display())).unwrap();
    std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--cgi", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(&served)
        .env("GIT_PROJECT_ROOT", &served)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // python's CGI handler runs scripts as `nobody` under root; let git serve the repo.
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some(GitServer { port, _root: root, child })
}

#[test]
fn git_clone_over_smart_http_inside_the_sandbox() {
    let Some(e) = env() else { return };
    if !tool("git") || !tool("python3") {
        return;
    }
    let Some(srv) = git_server() else { return };
    let p = srv.port;
    let clone = format!(
        "NO_PROXY= no_proxy= git clone -q http://localhost:{p}/cgi-bin/git/repo.git cloned && cat cloned/README"
    );
    let (out, err, rep) = e.run(&[format!("localhost:{p}")], &clone);
    assert_eq!(out, "cloned through the sandbox's proxy\n", "stderr: {err}");
    assert!(e.ws.join("cloned/.git").is_dir(), "the clone landed in the workspace");
    assert!(rep["network"].as_array().unwrap().iter().all(|ev| ev["allowed"] == true && ev["port"] == p));
    // Denied control: the same clone without the allowlist entry for that port.
    let (out, _, rep) = e.run(&[format!("localhost:{}", p.wrapping_add(1))], &clone.replace("cloned", "again"));
    assert!(out.is_empty() && !e.ws.join("again").exists(), "clone without a rule succeeded: {out}");
    assert!(rep["network"].as_array().unwrap().iter().any(|ev| ev["allowed"] == false));
}
