//! Strict validation of the destination a client names, before any decision is made.
//!
//! Every path into the proxy (HTTP absolute-form URL, `CONNECT` authority, `Host` header,
//! SOCKS5 domain name) funnels the client's bytes through [`parse_host`]. It returns either a
//! normalised host name (lowercase LDH labels, no trailing dot) or an IP address, and refuses
//! everything else. The point is that the policy decision and the connection see the *same*
//! destination: a string that some resolver or URL parser would read as an IP address is an
//! IP address here too, so `2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1` and
//! `[::ffff:127.0.0.1]` are all `127.0.0.1`, never names to look up.
//!
//! Pure: no I/O, no DNS.
//!
//! # International names
//!
//! Non-ASCII input is refused; names must arrive in their ASCII (punycode, `xn--`) form, which
//! is what curl, browsers, git and package managers send anyway. This avoids pulling a full
//! IDNA/UTS-46 implementation into the supervisor, and rules are ASCII-only as well, so an
//! `xn--` label compares byte for byte with the rule that names it.
//!
//! # References
//! - IPv4 number parsing follows the WHATWG URL standard, "IPv4 parser":
//!   <https://url.spec.whatwg.org/#concept-ipv4-parser> (the notation `inet_aton(3)` accepts).
//! - Host names: RFC 1123 section 2.1 (LDH labels), RFC 3986 section 3.2.2 (IP literals).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest host name accepted (RFC 1035, without the trailing dot).
pub const MAX_NAME_LEN: usize = 253;

/// A validated destination host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name: lowercase letters, digits and hyphens in dot-separated labels.
    Name(String),
    /// An IP address in canonical form (IPv4-mapped IPv6 addresses become IPv4).
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Host {
    /// `host:port` as a rule or a log would write it (`[v6]:port` for IPv6).
    pub fn with_port(&self, port: u16) -> String {
        match self {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            other => format!("{other}:{port}"),
        }
    }
}

/// Why a host was refused. The variants are coarse on purpose: the log names the raw input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// Empty, or longer than [`MAX_NAME_LEN`].
    Length,
    /// A byte outside letters, digits, `-` and `.` (NUL, `%`, `_`, space, `@`, ...).
    Character,
    /// Non-ASCII; international names must be sent in punycode.
    NonAscii,
    /// An empty label, a label over 63 bytes, or one starting or ending with `-`.
    Label,
    /// Looks numeric (the last label is a number) but is not a valid IPv4 address.
    BadIpv4,
    /// A bracketed or colon-containing literal that is not a valid IPv6 address.
    BadIpv6,
}

impl HostError {
    /// A short reason for logs and error replies.
    pub fn reason(self) -> &'static str {
        match self {
            HostError::Length => "host name is empty or too long",
            HostError::Character => "host name contains a byte that is not a letter, digit, `-` or `.`",
            HostError::NonAscii => "international host names must be sent in punycode (`xn--`) form",
            HostError::Label => "host name has an empty, overlong or hyphen-edged label",
            HostError::BadIpv4 => "host looks like an IPv4 address but is not a valid one",
            HostError::BadIpv6 => "host is not a valid IPv6 address",
        }
    }
}

/// Validates and normalises a host exactly as a client sent it (no port).
///
/// Accepts: LDH names (case-folded, one trailing dot removed), IPv4 in any `inet_aton`
/// notation, IPv6 bare or in brackets, with an optional zone id (`%eth0` or URL-encoded `%25eth0`,
/// which is dropped: the proxy never routes by zone).
pub fn parse_host(raw: &[u8]) -> Result<Host, HostError> {
    if raw.is_empty() || raw.len() > MAX_NAME_LEN + 2 {
        return Err(HostError::Length);
    }
    if !raw.is_ascii() {
        return Err(HostError::NonAscii);
    }
    // ASCII checked above, so this cannot fail; refuse rather than unwrap anyway.
    let s = std::str::from_utf8(raw).map_err(|_| HostError::NonAscii)?;
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(HostError::BadIpv6)?;
        return parse_ipv6(inner).map(|ip| Host::Ip(canonical(IpAddr::V6(ip))));
    }
    if s.contains(':') {
        return parse_ipv6(s).map(|ip| Host::Ip(canonical(IpAddr::V6(ip))));
    }
    let lower = s.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(HostError::Length);
    }
    if let Some(ip) = parse_ipv4(name)? {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return Err(HostError::Label);
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(HostError::Character);
        }
    }
    Ok(Host::Name(name.to_owned()))
}

/// Maps IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to plain IPv4 so one rule and one range check
/// covers both spellings. IPv4-compatible (`::a.b.c.d`) addresses are deprecated and left as
/// IPv6, where they fall outside any allowed range unless named.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn parse_ipv6(s: &str) -> Result<Ipv6Addr, HostError> {
    let addr = match s.find('%') {
        Some(i) => {
            let zone = &s[i + 1..];
            let zone = zone.strip_prefix("25").unwrap_or(zone);
            if zone.is_empty()
                || !zone.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(HostError::BadIpv6);
            }
            &s[..i]
        }
        None => s,
    };
    addr.parse::<Ipv6Addr>().map_err(|_| HostError::BadIpv6)
}

/// The WHATWG/`inet_aton` IPv4 parser. `Ok(None)`: not numeric, so a name. `Err`: numeric
/// but invalid, which is refused rather than looked up (a resolver might read it differently).
fn parse_ipv4(name: &str) -> Result<Option<Ipv4Addr>, HostError> {
    let parts: Vec<&str> = name.split('.').collect();
    let last = parts.last().copied().unwrap_or("");
    let all_digits = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    if parse_number(last).is_none() && !all_digits {
        return Ok(None);
    }
    if parts.len() > 4 {
        return Err(HostError::BadIpv4);
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for p in &parts {
        numbers.push(parse_number(p).ok_or(HostError::BadIpv4)?);
    }
    let (last, init) = numbers.split_last().ok_or(HostError::BadIpv4)?;
    if init.iter().any(|&n| n > 255) {
        return Err(HostError::BadIpv4);
    }
    let width = 8 * (5 - numbers.len() as u32);
    if width < 64 && *last >= 1u64 << width {
        return Err(HostError::BadIpv4);
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i as u32));
    }
    let value = u32::try_from(value).map_err(|_| HostError::BadIpv4)?;
    Ok(Some(Ipv4Addr::from(value)))
}

/// One IPv4 part: `0x` hex, leading-zero octal, or decimal. `None` if not a number. Values
/// are capped so overlong digit strings cannot overflow (they are out of range anyway).
fn parse_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (h, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return (radix == 16).then_some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 16 {
        return Some(u64::MAX);
    }
    if trimmed.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(trimmed, radix).ok().map(|v| v.min(u64::MAX >> 1))
}

/// Splits `host:port`, `[v6]:port` (an authority) into a validated host and port.
/// `default_port` applies when there is no port (absolute-form `http://host/`); `None` means
/// the port is mandatory (`CONNECT host:port`).
pub fn parse_authority(raw: &[u8], default_port: Option<u16>) -> Result<(Host, u16), AuthorityError> {
    let (host, port) = if raw.first() == Some(&b'[') {
        let end = raw.iter().position(|&b| b == b']').ok_or(AuthorityError::Host(HostError::BadIpv6))?;
        let (h, rest) = raw.split_at(end + 1);
        match rest {
            [] => (h, None),
            [b':', p @ ..] => (h, Some(p)),
            _ => return Err(AuthorityError::Port),
        }
    } else {
        match raw.iter().rposition(|&b| b == b':') {
            Some(i) => (&raw[..i], Some(&raw[i + 1..])),
            None => (raw, None),
        }
    };
    let port = match port {
        Some(p) => parse_port(p).ok_or(AuthorityError::Port)?,
        None => default_port.ok_or(AuthorityError::Port)?,
    };
    if host.first() != Some(&b'[') && host.contains(&b':') {
        return Err(AuthorityError::Host(HostError::BadIpv6));
    }
    Ok((parse_host(host).map_err(AuthorityError::Host)?, port))
}

fn parse_port(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(p).ok()?.parse::<u16>().ok().filter(|&n| n != 0)
}

/// Why an authority (`host:port`) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityError {
    /// The host part is invalid.
    Host(HostError),
    /// The port is missing where required, not a number, 0, or over 65535.
    Port,
}

impl AuthorityError {
    /// A short reason for logs and error replies.
    pub fn reason(self) -> &'static str {
        match self {
            AuthorityError::Host(h) => h.reason(),
            AuthorityError::Port => "the port is missing or not a number from 1 to 65535",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    #[test]
    fn every_ipv4_notation_is_an_ip() {
        for (raw, want) in [
            ("127.0.0.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("0x7F.0.0.01", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("127.0.0.1.", "127.0.0.1"),
            ("169.254.169.254", "169.254.169.254"),
            ("0xa9fea9fe", "169.254.169.254"),
            ("2852039166", "169.254.169.254"),
            ("0", "0.0.0.0"),
            ("0x", "0.0.0.0"),
            ("1.0x", "1.0.0.0"),
        ] {
            assert_eq!(parse_host(raw.as_bytes()), Ok(ip(want)), "{raw}");
        }
    }

    #[test]
    fn numeric_but_invalid_is_refused_not_a_name() {
        for raw in ["256.0.0.1", "1.2.3.4.5", "4294967296", "0x100000000", "1.2.3.09", "09", "999999999999999999999999"]
        {
            assert_eq!(parse_host(raw.as_bytes()), Err(HostError::BadIpv4), "{raw}");
        }
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(parse_host(b"[::1]"), Ok(ip("::1")));
        assert_eq!(parse_host(b"::1"), Ok(ip("::1")));
        assert_eq!(parse_host(b"[::ffff:127.0.0.1]"), Ok(ip("127.0.0.1")));
        assert_eq!(parse_host(b"[::ffff:7f00:1]"), Ok(ip("127.0.0.1")));
        assert_eq!(parse_host(b"[fe80::1%eth0]"), Ok(ip("fe80::1")));
        assert_eq!(parse_host(b"[fe80::1%25eth0]"), Ok(ip("fe80::1")));
        assert_eq!(parse_host(b"[fe80::1%]"), Err(HostError::BadIpv6));
        assert_eq!(parse_host(b"[::1"), Err(HostError::BadIpv6));
        assert_eq!(parse_host(b"[example.com]"), Err(HostError::BadIpv6));
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(parse_host(b"GitHub.COM."), Ok(Host::Name("github.com".into())));
        assert_eq!(parse_host(b"xn--bcher-kva.de"), Ok(Host::Name("xn--bcher-kva.de".into())));
        assert_eq!(parse_host(b"1password.com"), Ok(Host::Name("1password.com".into())));
        assert_eq!(parse_host(b"a.0x7g"), Ok(Host::Name("a.0x7g".into())));
    }

    #[test]
    fn bad_names_are_refused() {
        for (raw, want) in [
            (&b""[..], HostError::Length),
            (b"ex\0ample.com", HostError::Character),
            (b"evil.com\0.allowed.example", HostError::Character),
            (b"a b.com", HostError::Character),
            (b"a_b.com", HostError::Character),
            (b"127%2e0.0.1", HostError::BadIpv4),
            (b"ex%2eample.com", HostError::Character),
            (b"user@host", HostError::Character),
            ("bücher.de".as_bytes(), HostError::NonAscii),
            (b"a..com", HostError::Label),
            (b"-a.com", HostError::Label),
            (b".", HostError::Length),
            (b"a.com..", HostError::Label),
        ] {
            assert_eq!(parse_host(raw), Err(want), "{:?}", String::from_utf8_lossy(raw));
        }
        let long = format!("{}.com", "a".repeat(64));
        assert_eq!(parse_host(long.as_bytes()), Err(HostError::Label));
        let too_long = vec![b'a'; 300];
        assert_eq!(parse_host(&too_long), Err(HostError::Length));
    }

    #[test]
    fn authorities() {
        assert_eq!(parse_authority(b"example.com:443", None), Ok((Host::Name("example.com".into()), 443)));
        assert_eq!(parse_authority(b"example.com", Some(80)), Ok((Host::Name("example.com".into()), 80)));
        assert_eq!(parse_authority(b"[::1]:8080", None), Ok((ip("::1"), 8080)));
        assert_eq!(parse_authority(b"[::1]", Some(80)), Ok((ip("::1"), 80)));
        assert_eq!(parse_authority(b"example.com", None), Err(AuthorityError::Port));
        assert_eq!(parse_authority(b"example.com:0", None), Err(AuthorityError::Port));
        assert_eq!(parse_authority(b"example.com:65536", None), Err(AuthorityError::Port));
        assert_eq!(parse_authority(b"example.com:+80", None), Err(AuthorityError::Port));
        assert_eq!(parse_authority(b"::1:80", None), Err(AuthorityError::Host(HostError::BadIpv6)));
        assert_eq!(parse_authority(b"[::1]x", None), Err(AuthorityError::Port));
    }
}
