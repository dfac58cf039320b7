//! SOCKS5 (RFC 1928) with the "no authentication" method and the `CONNECT` command.
//!
//! Domain-name (`socks5h://`), IPv4 and IPv6 address types are accepted; a domain name goes
//! through the same strict validator as HTTP hosts, so a NUL byte or an IP written in octal is
//! caught here as well. Unsupported commands (`BIND`, `UDP ASSOCIATE`) get reply 7, unknown
//! address types reply 8, a policy refusal reply 2 ("not allowed by ruleset").
//!
//! The first byte (version 5) has already been consumed by protocol detection when
//! [`read_request`] runs.
//!
//! # References
//! RFC 1928 sections 3 (method negotiation), 4 (requests), 6 (replies).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::hostname::{canonical, parse_host, Host, HostError};

/// SOCKS protocol version byte.
pub const VERSION: u8 = 5;

/// Reply codes of RFC 1928 section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    /// Succeeded.
    Succeeded = 0,
    /// General SOCKS server failure.
    GeneralFailure = 1,
    /// Connection not allowed by ruleset.
    NotAllowed = 2,
    /// Network unreachable.
    NetworkUnreachable = 3,
    /// Host unreachable (also: name does not resolve, connect timeout).
    HostUnreachable = 4,
    /// Connection refused.
    ConnectionRefused = 5,
    /// Command not supported.
    CommandNotSupported = 7,
    /// Address type not supported.
    AddressTypeNotSupported = 8,
}

impl Reply {
    /// The reply for a failed connect.
    pub fn for_io_error(e: &io::Error) -> Reply {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Reply::ConnectionRefused,
            io::ErrorKind::NetworkUnreachable => Reply::NetworkUnreachable,
            io::ErrorKind::HostUnreachable | io::ErrorKind::TimedOut => Reply::HostUnreachable,
            _ => Reply::GeneralFailure,
        }
    }
}

/// A CONNECT request's destination, or why it cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Connect to this destination.
    Connect(Host, u16),
    /// The domain name did not validate (logged as a denial with the raw name).
    BadHost(String, u16, HostError),
    /// Not CONNECT, or an unknown address type: reply with this code and close.
    Unsupported(Reply),
}

/// Negotiates the method and reads the request. `Ok(None)` means the client offered no
/// acceptable method and has been told so (reply `0xFF`).
pub async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> io::Result<Option<Request>> {
    let n = s.read_u8().await? as usize;
    let mut methods = [0u8; 255];
    s.read_exact(&mut methods[..n]).await?;
    if !methods[..n].contains(&0) {
        s.write_all(&[VERSION, 0xff]).await?;
        return Ok(None);
    }
    s.write_all(&[VERSION, 0]).await?;
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await?;
    if hdr[0] != VERSION || hdr[2] != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad SOCKS5 request header"));
    }
    let (cmd, atyp) = (hdr[1], hdr[3]);
    let host = match atyp {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            Ok(Host::Ip(IpAddr::V4(Ipv4Addr::from(a))))
        }
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            Ok(Host::Ip(canonical(IpAddr::V6(Ipv6Addr::from(a)))))
        }
        3 => {
            let len = s.read_u8().await? as usize;
            let mut name = vec![0u8; len];
            s.read_exact(&mut name).await?;
            parse_host(&name).map_err(|e| (String::from_utf8_lossy(&name).escape_debug().to_string(), e))
        }
        _ => return Ok(Some(Request::Unsupported(Reply::AddressTypeNotSupported))),
    };
    let port = s.read_u16().await?;
    if cmd != 1 {
        return Ok(Some(Request::Unsupported(Reply::CommandNotSupported)));
    }
    Ok(Some(match host {
        Ok(h) => Request::Connect(h, port),
        Err((raw, e)) => Request::BadHost(raw, port, e),
    }))
}

/// The reply message: code plus the bound address (zeros when there is none).
pub fn reply(code: Reply, bound: Option<SocketAddr>) -> Vec<u8> {
    let mut out = vec![VERSION, code as u8, 0];
    match bound {
        Some(SocketAddr::V6(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Some(SocketAddr::V4(a)) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        None => out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0]),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: &[u8]) -> (io::Result<Option<Request>>, Vec<u8>) {
        let (mut a, mut b) = tokio::io::duplex(4096);
        b.write_all(input).await.unwrap();
        let r = read_request(&mut a).await;
        drop(a);
        let mut out = Vec::new();
        b.read_to_end(&mut out).await.unwrap();
        (r, out)
    }

    #[tokio::test]
    async fn parses_every_address_type() {
        let (r, out) = run(b"\x01\x00\x05\x01\x00\x03\x0bexample.com\x01\xbb").await;
        assert_eq!(r.unwrap(), Some(Request::Connect(Host::Name("example.com".into()), 443)));
        assert_eq!(out, [5, 0]);
        let (r, _) = run(b"\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50").await;
        assert_eq!(r.unwrap(), Some(Request::Connect(Host::Ip("127.0.0.1".parse().unwrap()), 80)));
        let mut v6 = b"\x01\x00\x05\x01\x00\x04".to_vec();
        v6.extend_from_slice(&"::ffff:169.254.169.254".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0, 80]);
        let (r, _) = run(&v6).await;
        assert_eq!(r.unwrap(), Some(Request::Connect(Host::Ip("169.254.169.254".parse().unwrap()), 80)));
    }

    #[tokio::test]
    async fn refuses_bad_names_commands_and_methods() {
        let (r, _) = run(b"\x01\x00\x05\x01\x00\x03\x0cex\x00ample.com\x01\xbb").await;
        assert!(matches!(r.unwrap(), Some(Request::BadHost(_, 443, HostError::Character))));
        let (r, _) = run(b"\x01\x00\x05\x01\x00\x03\x0a2130706433\x00\x50").await;
        assert_eq!(r.unwrap(), Some(Request::Connect(Host::Ip("127.0.0.1".parse().unwrap()), 80)));
        let (r, _) = run(b"\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x50").await;
        assert_eq!(r.unwrap(), Some(Request::Unsupported(Reply::CommandNotSupported)));
        let (r, _) = run(b"\x01\x00\x05\x01\x00\x09").await;
        assert_eq!(r.unwrap(), Some(Request::Unsupported(Reply::AddressTypeNotSupported)));
        let (r, out) = run(b"\x01\x02").await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(out, [5, 0xff]);
    }

    #[test]
    fn replies() {
        assert_eq!(reply(Reply::NotAllowed, None), [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(reply(Reply::Succeeded, Some("10.0.0.1:258".parse().unwrap())), [5, 0, 0, 1, 10, 0, 0, 1, 1, 2]);
    }
}
