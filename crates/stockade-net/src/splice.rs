//! Zero-copy relaying on Linux with `splice(2)`: socket -> pipe -> socket, so tunnel bytes
//! never pass through a user-space buffer of the supervisor.
//!
//! Only used when both ends are real sockets (TCP or unix); the portable [`crate::relay`] copy
//! loop covers everything else. Same contract as `relay::relay`: counts bytes, forwards
//! half-close, ends on error or when idle for the idle timeout. Each direction owns one pipe
//! of at most [`PIPE_SIZE`] bytes, so memory stays bounded per tunnel.
//!
//! `splice` into a socket whose peer is gone raises `SIGPIPE` (there is no `MSG_NOSIGNAL`);
//! the supervisor keeps it ignored, as every Rust program does by default.
//!
//! # References
//! `splice(2)`, `fcntl(2)` `F_SETPIPE_SZ`; rustix's safe wrappers.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;

use crate::relay::Counters;

/// Requested capacity of each direction's pipe (the kernel may grant less).
pub(crate) const PIPE_SIZE: usize = 1 << 20;

/// A tokio socket whose readiness can be awaited and whose fd can be spliced.
pub(crate) trait SpliceSocket: AsFd {
    /// Waits for readiness (`TcpStream::ready`).
    fn ready(&self, interest: Interest) -> impl std::future::Future<Output = io::Result<tokio::io::Ready>>;
    /// Runs a non-blocking I/O operation, clearing readiness on `WouldBlock` (`TcpStream::try_io`).
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

impl SpliceSocket for tokio::net::TcpStream {
    fn ready(&self, interest: Interest) -> impl std::future::Future<Output = io::Result<tokio::io::Ready>> {
        tokio::net::TcpStream::ready(self, interest)
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        tokio::net::TcpStream::try_io(self, interest, f)
    }
}

impl SpliceSocket for tokio::net::UnixStream {
    fn ready(&self, interest: Interest) -> impl std::future::Future<Output = io::Result<tokio::io::Ready>> {
        tokio::net::UnixStream::ready(self, interest)
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        tokio::net::UnixStream::try_io(self, interest, f)
    }
}

/// Relays between `client` and `upstream` with splice until both directions end, either fails,
/// or the tunnel is idle for `idle`. Fails only if the pipes cannot be created (fd limit),
/// before any byte has moved, so the caller can fall back to the copy loop.
pub(crate) async fn relay<C: SpliceSocket, U: SpliceSocket>(
    client: &C,
    upstream: &U,
    counters: &Counters,
    idle: Duration,
) -> io::Result<()> {
    let (up_pipe, down_pipe) = (new_pipe()?, new_pipe()?);
    let up = pump(client, upstream, up_pipe, &counters.out, counters);
    let down = pump(upstream, client, down_pipe, &counters.inn, counters);
    let both = async {
        let _ = tokio::try_join!(up, down);
    };
    tokio::select! {
        () = both => {}
        () = crate::relay::watchdog(counters, idle) => {}
    }
    Ok(())
}

fn new_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    // Best effort: a smaller pipe only means more splice calls.
    let _ = fcntl_setpipe_size(&w, PIPE_SIZE);
    Ok((r, w))
}

async fn pump<S: SpliceSocket, D: SpliceSocket>(
    src: &S,
    dst: &D,
    (pipe_r, pipe_w): (OwnedFd, OwnedFd),
    count: &AtomicU64,
    counters: &Counters,
) -> io::Result<()> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        src.ready(Interest::READABLE).await?;
        // The pipe is empty here, so WouldBlock can only mean "no data on the socket yet".
        let n = match src.try_io(Interest::READABLE, || Ok(splice(src, None, &pipe_w, None, PIPE_SIZE, flags)?)) {
            Ok(0) => {
                let _ = rustix::net::shutdown(dst, rustix::net::Shutdown::Write);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            dst.ready(Interest::WRITABLE).await?;
            match dst.try_io(Interest::WRITABLE, || Ok(splice(&pipe_r, None, dst, None, left, flags)?)) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        counters.touch();
    }
}
