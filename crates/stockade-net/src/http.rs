//! HTTP/1.x proxy requests: parsing the request head and rewriting plain-HTTP requests.
//!
//! Pure: the connection handling lives in `server.rs`. The parser is strict on purpose: a
//! request a lenient parser and a strict origin server would read differently is a way to make
//! the proxy check one destination and reach another, so anything unusual is refused with a
//! 400 rather than guessed at. Accepted:
//!
//! - `CONNECT host:port HTTP/1.x` (authority-form), for TLS and any other TCP protocol;
//! - `METHOD http://host[:port]/path HTTP/1.x` (absolute-form) for plain HTTP. `https://` in
//!   absolute form is refused (clients use `CONNECT` for that); so are origin-form requests
//!   (this is a proxy, not a server), user info in the URL (`http://allowed@evil/`), obsolete
//!   line folding, bare LF line ends, NUL and other control bytes.
//!
//! A `Host` header must name the same host and port as the request target (after the same
//! normalisation); more than one `Host` header is refused.
//!
//! Plain-HTTP requests are forwarded one per upstream connection, with `Connection: close`, so
//! a client cannot send a second request for another virtual host over a connection that was
//! checked for the first one.
//!
//! # References
//! RFC 9112 sections 3 (request line), 3.2 (request target forms), 5 (field syntax).

use crate::hostname::{parse_authority, AuthorityError, Host};

/// The HTTP version of a request (`HTTP/1.0` or `HTTP/1.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A parsed request head, borrowing from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method token.
    pub method: &'a str,
    /// The request target as sent.
    pub target: &'a str,
    /// The protocol version.
    pub version: Version,
    /// Header fields in order, values with surrounding whitespace removed.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    RequestLine,
    /// A header line is malformed (no colon, bad name, control bytes, folding).
    Header,
    /// More header lines than allowed.
    TooManyHeaders,
}

impl HeadError {
    /// A short reason for the 400 reply.
    pub fn reason(self) -> &'static str {
        match self {
            HeadError::RequestLine => "malformed request line",
            HeadError::Header => "malformed header field",
            HeadError::TooManyHeaders => "too many header fields",
        }
    }
}

/// The end of the head (the index just after the blank line), if the buffer holds one.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a complete head (as delimited by [`head_end`], blank line included).
pub fn parse_head(head: &[u8], max_headers: usize) -> Result<RequestHead<'_>, HeadError> {
    let body = head.strip_suffix(b"\r\n\r\n").ok_or(HeadError::RequestLine)?;
    let mut lines = CrlfLines(Some(body));
    let line = lines.next().ok_or(HeadError::RequestLine)?;
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::RequestLine);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::RequestLine);
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(HeadError::RequestLine);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => return Err(HeadError::RequestLine),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= max_headers {
            return Err(HeadError::TooManyHeaders);
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(HeadError::Header)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(HeadError::Header);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeadError::Header);
        }
        let value = trim_ows(value);
        // Names are tchar-only, hence ASCII.
        let name = std::str::from_utf8(name).map_err(|_| HeadError::Header)?;
        headers.push((name, value));
    }
    // Method and target were checked to be ASCII above.
    let method = std::str::from_utf8(method).map_err(|_| HeadError::RequestLine)?;
    let target = std::str::from_utf8(target).map_err(|_| HeadError::RequestLine)?;
    Ok(RequestHead { method, target, version, headers })
}

/// Splits on CRLF only; a bare CR or LF stays inside a line, where the byte checks refuse it.
struct CrlfLines<'a>(Option<&'a [u8]>);

impl<'a> Iterator for CrlfLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.0?;
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                self.0 = Some(&rest[i + 2..]);
                Some(&rest[..i])
            }
            None => {
                self.0 = None;
                Some(rest)
            }
        }
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// What a proxy request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRequest {
    /// A `CONNECT` tunnel.
    Connect {
        /// Destination host.
        host: Host,
        /// Destination port.
        port: u16,
    },
    /// A plain-HTTP request to forward.
    Forward {
        /// Destination host.
        host: Host,
        /// Destination port (80 unless the URL names one).
        port: u16,
        /// The head to send upstream (origin-form, hop-by-hop headers removed).
        upstream_head: Vec<u8>,
    },
}

/// Why a proxy request was refused after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not something this proxy serves (origin-form, `https://` absolute form, user info): 400.
    Unsupported(&'static str),
    /// The target's host or port is invalid: 400, and a denial in the log. Carries the raw
    /// authority for the log.
    BadTarget(String, AuthorityError),
    /// The `Host` header disagrees with the target: 403, and a denial in the log.
    HostMismatch {
        /// The target's host.
        host: Host,
        /// The target's port.
        port: u16,
    },
}

/// Interprets a parsed head as a proxy request, checking the `Host` header.
pub fn interpret(head: &RequestHead<'_>) -> Result<ProxyRequest, RequestError> {
    if head.method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = parse_authority(head.target.as_bytes(), None)
            .map_err(|e| RequestError::BadTarget(head.target.to_owned(), e))?;
        check_host_header(head, &host, port)?;
        return Ok(ProxyRequest::Connect { host, port });
    }
    let target = head.target;
    let rest = match target.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &target[7..],
        _ if target.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) => {
            return Err(RequestError::Unsupported("https URLs must be requested with CONNECT"))
        }
        _ => return Err(RequestError::Unsupported("only absolute http:// URLs and CONNECT are proxied")),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(RequestError::Unsupported("user info in proxy URLs is not supported"));
    }
    let (host, port) = parse_authority(authority.as_bytes(), Some(80))
        .map_err(|e| RequestError::BadTarget(authority.to_owned(), e))?;
    check_host_header(head, &host, port)?;
    let path = path.split('#').next().unwrap_or("");
    let path = match path.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{path}"),
        _ => path.to_owned(),
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("{} {} {}\r\n", head.method, path, head.version.as_str()).as_bytes());
    let mut has_host = false;
    for (name, value) in &head.headers {
        let hop = ["connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate"];
        if hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        let h = if port == 80 { host.to_string() } else { host.with_port(port) };
        let h = match &host {
            Host::Ip(std::net::IpAddr::V6(ip)) if port == 80 => format!("[{ip}]"),
            _ => h,
        };
        out.extend_from_slice(format!("Host: {h}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(ProxyRequest::Forward { host, port, upstream_head: out })
}

fn check_host_header(head: &RequestHead<'_>, host: &Host, port: u16) -> Result<(), RequestError> {
    let mut values = head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("host")).map(|(_, v)| *v);
    let mismatch = || RequestError::HostMismatch { host: host.clone(), port };
    let Some(value) = values.next() else { return Ok(()) };
    if values.next().is_some() {
        return Err(mismatch());
    }
    match parse_authority(value, Some(port)) {
        Ok((h, p)) if &h == host && p == port => Ok(()),
        _ => Err(mismatch()),
    }
}

/// A minimal response with a one-line text body, always closing the connection.
pub fn response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
        body.len() + 1
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<ProxyRequest, RequestError> {
        let head = parse_head(s.as_bytes(), 100).map_err(|e| RequestError::Unsupported(e.reason()))?;
        interpret(&head)
    }

    #[test]
    fn connect_with_and_without_host_header() {
        let want = Ok(ProxyRequest::Connect { host: Host::Name("example.com".into()), port: 443 });
        assert_eq!(req("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), want);
        assert_eq!(req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), want);
        assert_eq!(req("CONNECT EXAMPLE.com.:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"), want);
        assert!(matches!(
            req("CONNECT example.com:443 HTTP/1.1\r\nHost: evil.com:443\r\n\r\n"),
            Err(RequestError::HostMismatch { .. })
        ));
        assert!(matches!(req("CONNECT example.com HTTP/1.1\r\n\r\n"), Err(RequestError::BadTarget(..))));
    }

    #[test]
    fn absolute_form_is_rewritten() {
        let r = req("GET http://Example.com:8080/a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n");
        let Ok(ProxyRequest::Forward { host, port, upstream_head }) = r else { panic!("{r:?}") };
        assert_eq!((host, port), (Host::Name("example.com".into()), 8080));
        assert_eq!(
            String::from_utf8(upstream_head).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let Ok(ProxyRequest::Forward { upstream_head, .. }) = req("GET http://example.com?q HTTP/1.0\r\n\r\n") else {
            panic!()
        };
        assert_eq!(
            String::from_utf8(upstream_head).unwrap(),
            "GET /?q HTTP/1.0\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn host_header_must_match() {
        for h in ["evil.com", "example.com:81", "example.com:80, evil.com"] {
            let r = req(&format!("GET http://example.com/ HTTP/1.1\r\nHost: {h}\r\n\r\n"));
            assert!(matches!(r, Err(RequestError::HostMismatch { .. })), "{h}: {r:?}");
        }
        let two = req("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nHost: evil.com\r\n\r\n");
        assert!(matches!(two, Err(RequestError::HostMismatch { .. })));
        assert!(req("GET http://example.com/ HTTP/1.1\r\nhost: EXAMPLE.COM:80\r\n\r\n").is_ok());
    }

    #[test]
    fn unusual_requests_are_refused() {
        for s in [
            "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET https://example.com/ HTTP/1.1\r\n\r\n",
            "GET http://allowed.example@127.0.0.1/ HTTP/1.1\r\n\r\n",
            "GET http://example.com/ HTTP/2.0\r\n\r\n",
            "GET  http://example.com/ HTTP/1.1\r\n\r\n",
            "GET http://example.com/ HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "GET http://example.com/ HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            "GET http://example.com/ HTTP/1.1\nX: a\r\n\r\n",
            "GET http://exa\0mple.com/ HTTP/1.1\r\n\r\n",
            "GET http://127%2e0.0.1/ HTTP/1.1\r\n\r\n",
            "GET http://[::1/ HTTP/1.1\r\n\r\n",
            "G\u{e9}T http://example.com/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(req(s).is_err(), "{s:?}");
        }
        let many: String = (0..101).map(|i| format!("X{i}: y\r\n")).collect();
        let s = format!("GET http://example.com/ HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_head(s.as_bytes(), 100), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn ip_notations_in_urls_are_ips() {
        for (url, ip) in [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
            ("http://[fe80::1%25eth0]:8080/", "fe80::1"),
        ] {
            let Ok(ProxyRequest::Forward { host, .. }) = req(&format!("GET {url} HTTP/1.1\r\n\r\n")) else {
                panic!("{url}")
            };
            assert_eq!(host, Host::Ip(ip.parse().unwrap()), "{url}");
        }
    }
}
