//! Limits that keep the proxy healthy when a client is slow, buggy or hostile.
//!
//! The proxy runs in the supervisor, so a sandboxed command must not be able to exhaust it:
//! every connection holds a slot from a fixed pool, the request head must arrive completely
//! within a deadline (a slowloris client that trickles one byte at a time is cut off when the
//! deadline passes, not when a per-read timer expires), heads have a size cap, relay buffers are
//! bounded (each starts small and grows for bulk transfers only from one shared budget), a
//! tunnel with no traffic in either direction is closed, and name lookups, which cannot be
//! cancelled, run on a fixed number of threads.

use std::time::Duration;

/// Resource limits of one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; further clients are closed immediately, without a reply.
    pub max_connections: usize,
    /// Deadline for the whole handshake: the HTTP request head or the SOCKS5 greeting and request.
    pub handshake_timeout: Duration,
    /// Deadline for resolving and connecting to the destination.
    pub connect_timeout: Duration,
    /// Name lookups running at once (at least 1), each on its own thread. A lookup cannot be
    /// cancelled, so one past its deadline keeps its thread and its slot until the system
    /// resolver answers; a lookup that finds no free slot before its deadline is refused (`503`,
    /// SOCKS reply 1). This bounds the supervisor's threads however many slow names a sandboxed
    /// command asks for.
    pub max_lookups: usize,
    /// A tunnel with no bytes in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Largest HTTP request head (request line plus headers) accepted.
    pub max_header_bytes: usize,
    /// Most header lines in one HTTP request head.
    pub max_headers: usize,
    /// Starting size of each relay buffer (two per tunnel).
    pub buffer_size: usize,
    /// Size a relay buffer may grow to while reads keep filling it (a bulk transfer): fewer,
    /// larger reads and writes are what make the relay fast.
    pub max_buffer_size: usize,
    /// Memory all tunnels together may use beyond their starting buffers; once spent, buffers
    /// stop growing until other tunnels end. Worst case for the relay:
    /// `max_connections * 2 * buffer_size + buffer_budget`.
    pub buffer_budget: usize,
    /// Most decision events kept in memory; later ones are counted as dropped (the JSON-lines
    /// file, if any, still receives them).
    pub max_events: usize,
}

impl Limits {
    /// [`Limits::max_lookups`] as used: at least 1, and at most 1,024 (a semaphore cannot hold
    /// an unbounded number of permits, and more threads than that would defeat the limit).
    pub fn lookup_slots(&self) -> usize {
        self.max_lookups.clamp(1, 1024)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
            max_lookups: 16,
            idle_timeout: Duration::from_secs(300),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            buffer_size: 64 * 1024,
            max_buffer_size: 4 * 1024 * 1024,
            buffer_budget: 64 * 1024 * 1024,
            max_events: 100_000,
        }
    }
}
