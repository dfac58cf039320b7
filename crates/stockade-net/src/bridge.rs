//! The in-sandbox half of the Linux bridge: a plain blocking TCP-to-unix-socket forwarder.
//!
//! Inside the sandbox's private network namespace there is only loopback. The supervisor
//! bind-mounts the proxy's unix socket into the sandbox, and a small helper process listens on
//! the sandbox's `127.0.0.1:PORT` and relays every connection to that socket, so tools that only
//! speak TCP to a proxy (all of them) reach the supervisor's proxy and nothing else.
//!
//! No tokio here: the helper is typically a process forked from the single-threaded launcher,
//! where starting a runtime is neither needed nor wise. [`serve_forwarder`] runs on the calling
//! thread and starts two threads per connection only once it is running; call it in a process
//! that has no other threads (or right after `exec`), as with anything after `fork`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Accepts TCP connections on `listener` forever and relays each to the unix socket at
/// `unix_path` (connecting anew per connection, so a restarted proxy is picked up). Returns
/// only if accepting fails with a non-transient error.
pub fn serve_forwarder(listener: TcpListener, unix_path: &Path) -> Result<(), Error> {
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                let path = unix_path.to_owned();
                // If no thread can be started (pids limit), the connection is dropped: the client
                // sees a reset, the forwarder survives.
                let _ =
                    std::thread::Builder::new().name("stockade-fwd".to_owned()).spawn(move || forward_one(tcp, path));
            }
            Err(e) if is_transient(&e) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => return Err(Error::ForwarderAccept { source }),
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted | io::ErrorKind::WouldBlock)
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources for now; retry after a pause.
        || matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// Copies until end of stream through a 64 KiB buffer (`io::copy`'s 8 KiB cost half the
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
/// `net.core.wmem_default` (208 KiB); the kernel caps the request at twice
/// `net.core.wmem_max`. On the 2-vCPU machine here (wmem_max 4 MiB), it raised the path
/// through the forwarder from 62-64% to 72-78% of direct throughput.
#[cfg(target_os = "linux")]
pub(crate) const UNIX_SEND_BUFFER: usize = 4 * 1024 * 1024;

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
