//! Copying bytes both ways between a client and its destination, counting them, with an idle
//! timeout and bounded buffers.
//!
//! Each direction owns one fixed-size buffer, so a tunnel costs two buffers however fast either
//! side is: when the slower side stops reading, the faster side is simply not read from (TCP
//! flow control pushes back to the sender). Half-close is forwarded: when one side finishes
//! sending, the other side's write half is shut down and the opposite direction continues.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Byte counts and last activity of one tunnel, shared with the task that logs it.
#[derive(Debug)]
pub(crate) struct Counters {
    /// Bytes from the client to the destination.
    pub(crate) out: AtomicU64,
    /// Bytes from the destination to the client.
    pub(crate) inn: AtomicU64,
    start: Instant,
    last_ms: AtomicU64,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters { out: AtomicU64::new(0), inn: AtomicU64::new(0), start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    pub(crate) fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Relays until both directions have finished, either side fails, or the tunnel is idle for
/// `idle`. Errors are not reported: a tunnel that breaks simply ends, and the counts say how far
/// it got.
pub(crate) async fn relay<C, U>(client: C, upstream: U, counters: &Counters, buf_size: usize, idle: Duration)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    counters.touch();
    let both = async {
        let up = copy_one(&mut cr, &mut uw, &counters.out, counters, buf_size);
        let down = copy_one(&mut ur, &mut cw, &counters.inn, counters, buf_size);
        let _ = tokio::try_join!(up, down);
    };
    tokio::select! {
        () = both => {}
        () = watchdog(counters, idle) => {}
    }
}

/// Completes once the tunnel has seen no bytes in either direction for `idle`.
pub(crate) async fn watchdog(counters: &Counters, idle: Duration) {
    let tick = (idle / 4).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(tick).await;
        if counters.idle_for() >= idle {
            break;
        }
    }
}

async fn copy_one<R, W>(
    r: &mut R,
    w: &mut W,
    count: &AtomicU64,
    counters: &Counters,
    buf_size: usize,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; buf_size.max(512)];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            // Forward the half-close; the other direction keeps going.
            let _ = w.shutdown().await;
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        counters.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relays_both_ways_with_half_close_and_counts() {
        let (client, mut client_far) = tokio::io::duplex(1024);
        let (upstream, mut upstream_far) = tokio::io::duplex(1024);
        let counters = Counters::new();
        let far = async {
            client_far.write_all(b"hello").await.unwrap();
            client_far.shutdown().await.unwrap();
            let mut got = Vec::new();
            upstream_far.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"hello");
            upstream_far.write_all(b"world!").await.unwrap();
            upstream_far.shutdown().await.unwrap();
            let mut back = Vec::new();
            client_far.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"world!");
        };
        tokio::join!(relay(client, upstream, &counters, 16, Duration::from_secs(5)), far);
        assert_eq!(counters.out.load(Ordering::Relaxed), 5);
        assert_eq!(counters.inn.load(Ordering::Relaxed), 6);
    }

    #[tokio::test]
    async fn idle_tunnel_is_closed() {
        let (client, _keep1) = tokio::io::duplex(64);
        let (upstream, _keep2) = tokio::io::duplex(64);
        let counters = Counters::new();
        let started = Instant::now();
        relay(client, upstream, &counters, 64, Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
