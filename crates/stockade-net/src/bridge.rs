//! The Linux bridge's plain blocking TCP-to-unix-socket forwarder, for proxies that cannot
//! adopt the sandbox's listener.
//!
//! Inside the sandbox's private network namespace there is only loopback. The sandbox's pid 1
//! opens a listener on its `127.0.0.1:PORT` and hands it to the supervisor: a proxy that can
//! adopt it serves it directly (the CLI's does); otherwise [`serve_forwarder`] relays every
//! connection on it to the proxy's unix socket. Either way, tools that only speak TCP to a
//! proxy (all of them) reach the supervisor's proxy and nothing else.
//!
//! No tokio here, so that it runs anywhere: on a thread of the supervisor, or in a process
//! forked from a single-threaded launcher, where starting a runtime is neither needed nor wise.
//! [`serve_forwarder`] runs on the calling thread and starts two threads per connection only
//! once it is running; after `fork`, call it in a process that has no other threads (or right
//! after `exec`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// Accepts TCP connections on `listener` forever and relays each to the unix socket at
/// `unix_path` (connecting anew per connection, so a restarted proxy is picked up), at most
/// [`MAX_FORWARDED`] at a time. Returns only if accepting fails with a non-transient error.
pub fn serve_forwarder(listener: TcpListener, unix_path: &Path) -> Result<(), Error> {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                // Over the cap, the connection is closed at once (as the proxy does with its own).
                if open.fetch_add(1, Ordering::AcqRel) >= MAX_FORWARDED {
                    open.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                let (path, slot) = (unix_path.to_owned(), OpenSlot(Arc::clone(&open)));
                // If no thread can be started (pids limit), the connection is dropped: the client
                // sees a reset, the forwarder survives.
                let _ = std::thread::Builder::new().name("stockade-fwd".to_owned()).spawn(move || {
                    let _slot = slot;
                    forward_one(tcp, path)
                });
            }
            Err(e) if is_transient(&e) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => return Err(Error::ForwarderAccept { source }),
        }
    }
}

/// Most connections the forwarder relays at once, as many as the proxy admits by default
/// (`Limits::max_connections`): each costs two threads and up to two 1 MiB buffers.
pub const MAX_FORWARDED: usize = 256;

/// One relayed connection counted against [`MAX_FORWARDED`], released when dropped.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted | io::ErrorKind::WouldBlock)
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources for now; retry after a pause.
        || matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// Copies until end of stream through a [`FORWARD_BUFFER`] (`io::copy`'s 8 KiB cost half the
/// throughput of a large download in `bench/net/run.sh`).
///
/// Writes never raise `SIGPIPE`: this process's signal dispositions belong to the launcher,
/// and std writes to a unix socket with plain `write(2)`, which would kill the forwarder when
/// the proxy hangs up. On Linux every write is a `send` with `MSG_NOSIGNAL` (which is also why
/// this is not `splice(2)`, which has no such flag); elsewhere std's writes are used.
fn copy<W: Write + std::os::fd::AsFd>(r: &mut impl Read, w: &mut W) -> io::Result<u64> {
    let mut buf = vec![0u8; FORWARD_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        write_all(w, &buf[..n])?;
        total += n as u64;
    }
}

#[cfg(target_os = "linux")]
fn write_all<W: Write + std::os::fd::AsFd>(w: &mut W, mut data: &[u8]) -> io::Result<()> {
    use rustix::net::{send, SendFlags};
    while !data.is_empty() {
        match send(&*w, data, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn write_all<W: Write + std::os::fd::AsFd>(w: &mut W, data: &[u8]) -> io::Result<()> {
    w.write_all(data)
}

/// Bytes per relay buffer in the forwarder (two per connection). A read fills only what the
/// socket holds, and `vec!` of zeros maps pages as they are first written, so a connection
/// that carries little costs little; a bulk transfer moves in fewer, larger calls (through
/// the forwarder in `bench/net/run.sh`: 54% of direct throughput in one run with 64 KiB,
/// 61-64% in five with 1 MiB).
const FORWARD_BUFFER: usize = 1024 * 1024;

/// Send buffer asked for on both ends of a bridge connection's unix socket. A unix stream's
/// sender may have only its send buffer's worth of data queued at the receiver, by default
/// `net.core.wmem_default` (208 KiB). The kernel doubles what it is asked for (for its own
/// bookkeeping), up to twice `net.core.wmem_max`: 2 MiB per end here, which is also what a
/// command that stops reading can keep queued per connection (256 connections: 512 MiB of
/// kernel memory at most, against the several MiB a loopback TCP socket may autotune to).
#[cfg(target_os = "linux")]
pub(crate) const UNIX_SEND_BUFFER: usize = 1024 * 1024;

fn forward_one(tcp: TcpStream, path: PathBuf) {
    let Ok(unix) = UnixStream::connect(&path) else { return };
    // Uploads from the sandbox flow from here through this socket.
    #[cfg(target_os = "linux")]
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&unix, UNIX_SEND_BUFFER);
    let _ = tcp.set_nodelay(true);
    let (Ok(mut tcp_r), Ok(mut unix_w)) = (tcp.try_clone(), unix.try_clone()) else { return };
    let up = std::thread::Builder::new().name("stockade-fwd-up".to_owned()).spawn(move || {
        let _ = copy(&mut tcp_r, &mut unix_w);
        let _ = unix_w.shutdown(Shutdown::Write);
    });
    let (mut unix_r, mut tcp_w) = (unix, tcp);
    let _ = copy(&mut unix_r, &mut tcp_w);
    let _ = tcp_w.shutdown(Shutdown::Write);
    if let Ok(t) = up {
        let _ = t.join();
    }
}
