//! Name resolution as a seam, so tests can count lookups and fake answers (DNS rebinding).
//!
//! The proxy calls the resolver only for names an allow rule has already accepted, and only
//! once per connection; the addresses it returns are checked and then connected to directly.

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

/// Looks up the addresses of a host name. Blocking; the proxy calls it on a blocking thread,
/// at most [`Limits::max_lookups`](crate::Limits::max_lookups) at once. The proxy cannot cancel
/// a call: one that outlives the connection's deadline keeps its thread and its slot until it
/// returns, so an implementation should give up by itself eventually (`getaddrinfo` does).
pub trait Resolve: Send + Sync + 'static {
    /// All addresses of `name` (already validated, lowercase, not an IP literal).
    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` on Unix), i.e. what the host itself uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        Ok((name, 0u16).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}
