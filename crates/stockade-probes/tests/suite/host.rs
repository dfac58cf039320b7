//! Host-side evidence: tree snapshots (content hash, mode, owner, mtime, xattrs, link count),
//! the same-uid sentinel process, and the listeners (TCP, UDP, abstract and pathname unix
//! sockets) that a sandboxed command must never reach.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{as_account, bins, Account};

/// A host-side snapshot of a tree: type, mode, owner, times, size, content hash, link target,
/// xattrs of every entry (symlinks not followed).
pub type Snapshot = BTreeMap<PathBuf, String>;

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn xattrs(p: &Path) -> String {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid path and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return String::new();
    }
    String::from_utf8_lossy(&buf[..n as usize]).replace('\0', ",")
}

pub fn snapshot(root: &Path) -> Snapshot {
    let mut m = Snapshot::new();
    fn walk(p: &Path, m: &mut Snapshot) {
        let Ok(md) = std::fs::symlink_metadata(p) else { return };
        let ft = md.file_type();
        let content = if ft.is_file() {
            format!("file:{:x}", std::fs::read(p).map(|d| fnv(&d)).unwrap_or(0))
        } else if ft.is_symlink() {
            format!("link:{}", std::fs::read_link(p).map(|t| t.display().to_string()).unwrap_or_default())
        } else if ft.is_dir() {
            "dir".to_owned()
        } else {
            "special".to_owned()
        };
        // ctime is left out: a denied attempt never changes it, but reading xattrs is fine.
        m.insert(
            p.to_owned(),
            format!(
                "{content} mode={:o} uid={} gid={} mtime={}.{} size={} nlink={} xattr=[{}]",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec(),
                if ft.is_dir() { 0 } else { md.size() },
                md.nlink(),
                xattrs(p)
            ),
        );
        if ft.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), m);
                }
            }
        }
    }
    walk(root, &mut m);
    m
}

pub fn snapshot_diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => d.push(format!("removed {}", k.display())),
            Some(v2) if v2 != v => d.push(format!("changed {}: {v} -> {v2}", k.display())),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            d.push(format!("created {}", k.display()));
        }
    }
    d
}

pub fn chown_tree(p: &Path, uid: u32, gid: u32) {
    fn walk(p: &Path, uid: u32, gid: u32) {
        let _ = std::os::unix::fs::lchown(p, Some(uid), Some(gid));
        if std::fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                walk(&e.path(), uid, gid);
            }
        }
    }
    walk(p, uid, gid);
}

pub fn rand_token() -> String {
    let mut b = [0u8; 8];
    // SAFETY: valid buffer.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A process of the run user outside the sandbox; it must still be alive after each probe.
pub struct Sentinel {
    pub child: std::process::Child,
    pub token: String,
}

impl Sentinel {
    pub fn start(acc: &Account) -> Sentinel {
        let token = format!("sbx-sentinel-{}", rand_token());
        let p = bins().probe.to_string_lossy().into_owned();
        let child = as_account(acc, &[&p, "sentinel", &token])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it runs the probe binary (not setpriv) so its pid is the sentinel's.
        let pid = child.id();
        for _ in 0..200 {
            if std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.windows(token.len()).any(|w| w == token.as_bytes()))
                .unwrap_or(false)
                && std::fs::read_link(format!("/proc/{pid}/exe")).map(|e| e.ends_with("sbx-probe")).unwrap_or(false)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Sentinel { child, token }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A non-blocking pathname unix listener at `p`; the run user `acc` must be able to connect
/// to it outside the sandbox (negative control).
pub fn bind_unix(acc: &Account, p: &Path) -> std::os::unix::net::UnixListener {
    let l = std::os::unix::net::UnixListener::bind(p).unwrap_or_else(|e| panic!("bind {}: {e}", p.display()));
    l.set_nonblocking(true).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    let _ = std::os::unix::fs::lchown(p, Some(acc.uid), Some(acc.gid));
    l
}

/// Host listeners created by the harness; the sandbox must reach none of them.
pub struct Listeners {
    pub tcp4: std::net::TcpListener,
    pub tcp6: Option<std::net::TcpListener>,
    pub udp: std::net::UdpSocket,
    pub abstract_name: String,
    abstract_sock: std::os::unix::net::UnixListener,
    pub paths: Vec<(PathBuf, std::os::unix::net::UnixListener)>,
}

impl Listeners {
    pub fn start(acc: &Account, dirs: &[PathBuf]) -> Listeners {
        let tcp4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tcp4.set_nonblocking(true).unwrap();
        let tcp6 = std::net::TcpListener::bind("[::1]:0").ok();
        if let Some(t) = &tcp6 {
            t.set_nonblocking(true).unwrap();
        }
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        let abstract_name = format!("sbx-probe-{}", rand_token());
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        let abstract_sock = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        abstract_sock.set_nonblocking(true).unwrap();
        let mut paths = Vec::new();
        for d in dirs {
            let p = d.join(format!("sbx-daemon-{}.sock", &rand_token()[..8]));
            let l = bind_unix(acc, &p);
            paths.push((p, l));
        }
        Listeners { tcp4, tcp6, udp, abstract_name, abstract_sock, paths }
    }

    pub fn tcp4_port(&self) -> u16 {
        self.tcp4.local_addr().unwrap().port()
    }

    pub fn tcp6_port(&self) -> Option<u16> {
        self.tcp6.as_ref().map(|t| t.local_addr().unwrap().port())
    }

    pub fn udp_port(&self) -> u16 {
        self.udp.local_addr().unwrap().port()
    }

    /// Adds a pathname listener (see `bind_unix`) that the host checks then watch like the
    /// others, e.g. a socket bound after the sandboxed command started.
    pub fn adopt(&mut self, p: PathBuf, l: std::os::unix::net::UnixListener) {
        self.paths.push((p, l));
    }

    /// Accepts (and so excuses) what reached the pathname listener `p` only; every other
    /// listener keeps its connections for `reached`. Returns how many connections it accepted.
    pub fn drain_path(&self, p: &Path) -> usize {
        let mut n = 0;
        for (q, l) in &self.paths {
            if q == p {
                while l.accept().is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Everything that reached a listener since the last call.
    pub fn reached(&self) -> Vec<String> {
        let mut r = Vec::new();
        while let Ok((_, a)) = self.tcp4.accept() {
            r.push(format!("TCP 127.0.0.1:{} accepted a connection from {a}", self.tcp4_port()));
        }
        if let Some(t) = &self.tcp6 {
            while let Ok((_, a)) = t.accept() {
                r.push(format!("TCP [::1] accepted a connection from {a}"));
            }
        }
        let mut b = [0u8; 64];
        while let Ok((n, a)) = self.udp.recv_from(&mut b) {
            r.push(format!("UDP 127.0.0.1:{} received {n} bytes from {a}", self.udp_port()));
        }
        while self.abstract_sock.accept().is_ok() {
            r.push(format!("abstract unix @{} accepted a connection", self.abstract_name));
        }
        for (p, l) in &self.paths {
            while l.accept().is_ok() {
                r.push(format!("unix socket {} accepted a connection", p.display()));
            }
        }
        r
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (p, _) in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
