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

/// Copies until end of stream: with `splice(2)` on Linux (no copy through user space), else
/// (or if no pipe can be made) through a 64 KiB buffer, since `io::copy`'s 8 KiB costs half
/// the throughput of a large download (measured by `bench/net/run.sh`).
fn copy<S>(r: &mut S, w: &mut (impl Write + std::os::fd::AsFd)) -> io::Result<u64>
where
    S: Read + std::os::fd::AsFd,
{
    #[cfg(target_os = "linux")]
    if let Ok((pipe_r, pipe_w)) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        let _ = rustix::pipe::fcntl_setpipe_size(&pipe_w, FORWARD_PIPE);
        let flags = rustix::pipe::SpliceFlags::MOVE;
        let mut total = 0u64;
        loop {
            let n = match rustix::pipe::splice(&*r, None, &pipe_w, None, FORWARD_PIPE, flags) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut left = n;
            while left > 0 {
                match rustix::pipe::splice(&pipe_r, None, &*w, None, left, flags) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(m) => left -= m,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            total += n as u64;
        }
    }
    let mut buf = vec![0u8; FORWARD_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Bytes per relay buffer in the forwarder (two per connection).
const FORWARD_BUFFER: usize = 64 * 1024;

/// Requested pipe capacity for the forwarder's splice path.
#[cfg(target_os = "linux")]
const FORWARD_PIPE: usize = 1 << 20;

fn forward_one(tcp: TcpStream, path: PathBuf) {
    let Ok(unix) = UnixStream::connect(&path) else { return };
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
