//! Property tests of the parsers a hostile client talks to: the HTTP request head parser and
//! the host validator. Case counts are bounded so the suite runs in seconds; raise them with
//! `PROPTEST_CASES=100000 cargo test -p stockade-net --test props` for a longer fuzzing run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use stockade_net::hostname::{parse_authority, parse_host, Host};
use stockade_net::http::{head_end, interpret, parse_head, ProxyRequest};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 2000, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes never panic the parsers.
    #[test]
    fn head_parser_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Some(end) = head_end(&bytes) {
            if let Ok(head) = parse_head(&bytes[..end], 100) {
                let _ = interpret(&head);
            }
        }
        let mut framed = bytes.clone();
        framed.extend_from_slice(b"\r\n\r\n");
        if let Ok(head) = parse_head(&framed, 100) {
            let _ = interpret(&head);
        }
    }

    /// Whatever the validator accepts as a name is lowercase LDH, and never an IP in disguise.
    #[test]
    fn host_validator_output_is_clean(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        match parse_host(&bytes) {
            Ok(Host::Name(n)) => {
                prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
                prop_assert!(!n.ends_with('.') && !n.is_empty() && n.len() <= 253);
                prop_assert!(n.parse::<IpAddr>().is_err());
                let last = n.rsplit('.').next().unwrap();
                prop_assert!(!last.bytes().all(|b| b.is_ascii_digit()), "numeric last label accepted as name: {n}");
                prop_assert!(!bytes.contains(&0));
            }
            Ok(Host::Ip(ip)) => {
                if let IpAddr::V6(v6) = ip { prop_assert!(v6.to_ipv4_mapped().is_none()) }
            }
            Err(_) => {}
        }
    }

    /// Names made of LDH-ish characters: same properties, with a much higher hit rate.
    #[test]
    fn ldh_like_names(s in "[a-zA-Z0-9.\\-x]{1,40}") {
        if let Ok(Host::Name(n)) = parse_host(s.as_bytes()) {
            prop_assert_eq!(n, s.to_ascii_lowercase().trim_end_matches('.').to_owned());
        }
    }

    /// Every notation of an IPv4 address parses to that address.
    #[test]
    fn ipv4_notations_agree(v in any::<u32>(), style in 0u8..5) {
        let ip = Ipv4Addr::from(v);
        let [a, b, c, d] = ip.octets();
        let text = match style {
            0 => format!("{v}"),
            1 => format!("0x{v:x}"),
            2 => format!("0{v:o}"),
            3 => format!("{a}.{}", (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)),
            _ => format!("0x{a:x}.0{b:o}.{c}.0x{d:X}"),
        };
        prop_assert_eq!(parse_host(text.as_bytes()), Ok(Host::Ip(IpAddr::V4(ip))), "{}", text);
        let mapped = format!("[{}]", ip.to_ipv6_mapped());
        prop_assert_eq!(parse_host(mapped.as_bytes()), Ok(Host::Ip(IpAddr::V4(ip))));
    }

    /// IPv6 literals round-trip, bracketed, bare and with a zone id.
    #[test]
    fn ipv6_literals(v in any::<u128>()) {
        let ip = Ipv6Addr::from(v);
        let want = match ip.to_ipv4_mapped() { Some(v4) => IpAddr::V4(v4), None => IpAddr::V6(ip) };
        prop_assert_eq!(parse_host(format!("[{ip}]").as_bytes()), Ok(Host::Ip(want)));
        prop_assert_eq!(parse_host(format!("[{ip}%25eth0]").as_bytes()), Ok(Host::Ip(want)));
        prop_assert_eq!(parse_authority(format!("[{ip}]:443").as_bytes(), None), Ok((Host::Ip(want), 443)));
    }

    /// A well-formed absolute-form request is accepted, keeps its path, and always closes.
    #[test]
    fn absolute_form_roundtrip(host in "[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}", port in 1u16.., path in "(/[a-zA-Z0-9._~-]{0,8}){0,4}") {
        let req = format!("GET http://{host}:{port}{path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n");
        let head = parse_head(req.as_bytes(), 100).unwrap();
        match interpret(&head) {
            Ok(ProxyRequest::Forward { host: h, port: p, upstream_head }) => {
                prop_assert_eq!(h, Host::Name(host.clone()));
                prop_assert_eq!(p, port);
                let up = String::from_utf8(upstream_head).unwrap();
                let want_path = if path.is_empty() { "/".to_owned() } else { path.clone() };
                let want_start = format!("GET {} HTTP/1.1\r\n", want_path);
                prop_assert!(up.starts_with(&want_start));
                prop_assert!(up.ends_with("Connection: close\r\n\r\n"));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
