//! Real clients through the proxy: curl (HTTP proxy, CONNECT tunnel, SOCKS5 with host names),
//! python3's urllib with the proxy environment, and git smart HTTP against a local
//! `git http-backend`. Each is skipped with a printed reason when the tool is missing. The
//! unix-socket bridge (proxy on a unix socket, forwarder on loopback) is exercised here on the
//! host; running the same inside the Linux sandbox is the lead's integration test.

#![cfg(unix)] // the fixtures use sh, chmod and CGI scripts
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use stockade_net::{proxy_env, Proxy, ProxyConfig};

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).env_clear().output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn curl_http_connect_and_socks5_hostname() {
    if !tool("curl") {
        return;
    }
    let web = Server::start(Kind::Http);
    let p = web.port();
    let dns = FakeResolver::with(&[("allowed.test", "127.0.0.1"), ("evil.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns.clone());
    let pp = proxy.tcp_addr().unwrap().port();
    let via_http = format!("http://127.0.0.1:{pp}");
    let via_socks = format!("127.0.0.1:{pp}");
    let ok_url = format!("http://allowed.test:{p}/a");
    let bad_url = format!("http://evil.test:{p}/a");
    for (args, want_ok) in [
        (vec!["-x", via_http.as_str(), ok_url.as_str()], true),
        (vec!["-x", via_http.as_str(), "-p", ok_url.as_str()], true),
        (vec!["--socks5-hostname", via_socks.as_str(), ok_url.as_str()], true),
        (vec!["-x", via_http.as_str(), bad_url.as_str()], false),
        (vec!["-x", via_http.as_str(), "-p", bad_url.as_str()], false),
        (vec!["--socks5-hostname", via_socks.as_str(), bad_url.as_str()], false),
    ] {
        let (status, out) = curl(&[&["-f"][..], &args].concat());
        assert_eq!(status, want_ok, "{args:?}: {out}");
        if want_ok {
            assert!(out.contains("ok GET /a HTTP/1.1"), "{args:?}: {out}");
        }
    }
    assert_eq!(web.hits(), 3);
    assert!(!dns.asked().contains(&"evil.test".to_owned()));
}

#[test]
fn python_urllib_with_proxy_env() {
    if !tool("python3") {
        return;
    }
    let web = Server::start(Kind::Http);
    let p = web.port();
    let dns = FakeResolver::with(&[("allowed.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("allowed.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns);
    let script = "import sys, urllib.request\n\
        try:\n    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n\
        except Exception as e:\n    print('ERR', e); sys.exit(1)\n";
    let run = |url: String| {
        let out = Command::new("python3")
            .args(["-c", script, &url])
            .env_clear()
            .envs(proxy_env(proxy.tcp_addr().unwrap().port()))
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = run(format!("http://allowed.test:{p}/py"));
    assert!(ok && out.contains("ok GET /py"), "{out}");
    let (ok, out) = run(format!("http://evil.test:{p}/py"));
    assert!(!ok && out.contains("403"), "{out}");
    assert_eq!(web.hits(), 1);
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap()
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn git_smart_http_clone_through_proxy() {
    if !tool("git") || !tool("python3") {
        return;
    }
    let backend = Command::new("git").arg("--exec-path").output().unwrap();
    let backend = PathBuf::from(String::from_utf8_lossy(&backend.stdout).trim()).join("git-http-backend");
    if !backend.exists() {
        let _ = writeln!(std::io::stderr(), "SKIP: git-http-backend not found at {}", backend.display());
        return;
    }
    let root = std::env::temp_dir().join(format!("stockade-net-git-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    assert!(git(&src, &["init", "-q", "-b", "main"]).status.success());
    std::fs::write(src.join("README"), "through the proxy\n").unwrap();
    assert!(git(&src, &["add", "."]).status.success());
    assert!(git(&src, &["commit", "-qm", "x"]).status.success());
    let served = root.join("srv");
    std::fs::create_dir_all(served.join("cgi-bin")).unwrap();
    assert!(git(&root, &["clone", "-q", "--bare", "src", "srv/repo.git"]).status.success());
    let cgi = served.join("cgi-bin/git");
    std::fs::write(&cgi, format!("#!/bin/sh\nexec '{}'\n", backend.display())).unwrap();
    Command::new("chmod").args(["+x", cgi.to_str().unwrap()]).status().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Child(
        Command::new("python3")
            .args(["-m", "http.server", "--cgi", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(&served)
            .env("GIT_PROJECT_ROOT", &served)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            // Python's CGI handler drops to `nobody` when run as root; let git serve root's repo.
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "safe.directory")
            .env("GIT_CONFIG_VALUE_0", "*")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dns = FakeResolver::with(&[("git.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("git.test:{port}"), &format!("127.0.0.1:{port}")], &[]), dns);
    let env = proxy_env(proxy.tcp_addr().unwrap().port());
    let clone = |url: &str, into: &str| {
        Command::new("git")
            .args(["clone", "-q", url, into])
            .current_dir(&root)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let ok = clone(&format!("http://git.test:{port}/cgi-bin/git/repo.git"), "ok");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(std::fs::read_to_string(root.join("ok/README")).unwrap(), "through the proxy\n");
    let bad = clone(&format!("http://other.test:{port}/cgi-bin/git/repo.git"), "bad");
    assert!(!bad.status.success());
    assert!(!root.join("bad/README").exists());
    let log = proxy.shutdown();
    assert!(log.events.iter().any(|e| e.allowed && e.host == "git.test"));
    assert!(log.events.iter().any(|e| !e.allowed && e.host == "other.test"));
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(unix)]
#[test]
fn unix_socket_bridge_with_forwarder() {
    let echo = Server::start(Kind::Echo);
    let web = Server::start(Kind::Http);
    let dir = std::env::temp_dir().join(format!("stockade-net-bridge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("proxy.sock");
    let mut c =
        ProxyConfig::new(rules(&[&format!("127.0.0.1:{}", echo.port()), &format!("127.0.0.1:{}", web.port())], &[]));
    c.listen_unix = Some(sock.clone());
    c.resolver = FakeResolver::with(&[]) as Arc<dyn stockade_net::Resolve>;
    let proxy = Proxy::start(c).unwrap();
    assert!(sock.exists());
    let fwd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fport = fwd.local_addr().unwrap().port();
    let sock2 = sock.clone();
    std::thread::spawn(move || stockade_net::bridge::serve_forwarder(fwd, &sock2));
    // Minimal SOCKS5 through the forwarder.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fport)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1]).unwrap();
    s.write_all(&echo.port().to_be_bytes()).unwrap();
    let mut r = [0u8; 12];
    s.read_exact(&mut r).unwrap();
    assert_eq!(r[3], 0, "{r:?}");
    s.write_all(b"via bridge").unwrap();
    let mut back = [0u8; 10];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"via bridge");
    if tool("curl") {
        let (ok, out) =
            curl(&["-f", "-x", &format!("http://127.0.0.1:{fport}"), &format!("http://127.0.0.1:{}/b", web.port())]);
        assert!(ok && out.contains("ok GET /b"), "{out}");
        let (ok, _) = curl(&["-f", "-x", &format!("http://127.0.0.1:{fport}"), "http://127.0.0.1:9/"]);
        assert!(!ok);
    }
    drop(s);
    proxy.shutdown();
    assert!(!sock.exists(), "the socket is removed at shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GIT_SSH_COMMAND` from `proxy_env`: ssh reaches an allowed `host:port` through SOCKS5 with
/// the host *name* (the proxy resolves it), and a name without a rule is refused.
#[test]
fn ssh_via_nc_socks5_proxy_command() {
    if !tool("ssh") || !tool("python3") {
        return;
    }
    let nc_ok = Command::new("sh").args(["-c", "nc -h 2>&1 | grep -q OpenBSD"]).status().map(|s| s.success());
    if nc_ok.ok() != Some(true) {
        let _ = writeln!(std::io::stderr(), "SKIP: OpenBSD `nc` (Debian package netcat-openbsd) is not installed");
        return;
    }
    // A fake ssh server: records the client's identification line, answers with its own, closes.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            let _ = std::io::BufReader::new(s.try_clone().unwrap()).read_line(&mut line);
            seen2.lock().unwrap().push(line);
            let _ = s.write_all(b"SSH-2.0-fake\r\n");
        }
    });
    let dns = FakeResolver::with(&[("git.test", "127.0.0.1"), ("evil.test", "127.0.0.1")]);
    let proxy = start(rules(&[&format!("git.test:{p}"), &format!("127.0.0.1:{p}")], &[]), dns.clone());
    let env = proxy_env(proxy.tcp_addr().unwrap().port());
    let ssh_cmd = env.iter().find(|(k, _)| k == "GIT_SSH_COMMAND").unwrap().1.clone();
    let run = |host: &str| {
        // `timeout`: after the fake server hangs up, nc keeps waiting on ssh's open stdin.
        let line = format!(
            "timeout 4 {ssh_cmd} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -p {p} git@{host} true"
        );
        Command::new("sh").args(["-c", &line]).stdin(Stdio::null()).output().unwrap()
    };
    let _ = run("git.test");
    assert_eq!(seen.lock().unwrap().len(), 1, "ssh did not reach the allowed host");
    assert!(seen.lock().unwrap()[0].starts_with("SSH-2.0-"), "{:?}", seen.lock().unwrap());
    let _ = run("evil.test");
    assert_eq!(seen.lock().unwrap().len(), 1, "ssh reached a host without a rule");
    assert_eq!(dns.asked(), ["git.test"], "nc must send the name, and a denied name is not resolved");
    let log = proxy.shutdown();
    assert!(log.notices.iter().any(|n| n.event.host == "evil.test"));
}
