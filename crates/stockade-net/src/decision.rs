//! Pure rule evaluation: may this client reach this host and port, and then this address?
//!
//! A decision happens in two steps so that a denied name is never resolved (no DNS leak) and
//! an allowed name is connected to exactly the address that was checked (no second lookup):
//!
//! 1. [`Rules::check_host`] on the validated host *before* any lookup: deny rules first
//!    (deny wins), then the first allow rule that matches. The result says how to obtain
//!    addresses: the literal itself, loopback for `localhost`, or DNS for other names.
//! 2. [`Rules::check_addr`] on every address the lookup returned, before connecting: deny
//!    rules naming that address, then the special-address check below.
//!
//! # Special addresses
//!
//! Loopback, link-local (cloud metadata `169.254.169.254`, `fe80::/10`), private (RFC 1918,
//! ULA `fc00::/7`), shared CGNAT (`100.64.0.0/10`), unspecified, broadcast, multicast and the
//! reserved `240.0.0.0/4` are reachable only when an **allow rule names that IP address** (and
//! the port matches), e.g. `127.0.0.1:8080` or `[::1]:8080`. A name rule alone never reaches them,
//! which is what defeats DNS rebinding (`allowed.example` answering `127.0.0.1`). To reach an
//! internal name, write both rules: `registry.corp:443` and `10.1.2.3:443`. The one exception is
//! the name `localhost` (and `*.localhost`, RFC 6761): the proxy answers it itself with
//! `127.0.0.1` and `::1`, never asks DNS, and an exact `localhost` rule reaches loopback on the
//! rule's port(s) only (`localhost:8080` means port 8080 and nothing else). IPv4-mapped IPv6,
//! NAT64 (`64:ff9b::/96`, and the local-use `64:ff9b:1::/48`) and 6to4 (`2002::/16`) addresses
//! are classified by the IPv4 address they carry, and IP deny rules apply to that address too;
//! deprecated IPv4-compatible addresses (`::a.b.c.d`) count as reserved.
//!
//! The cloud metadata names (`metadata.google.internal`, `metadata`) additionally need an
//! exact rule; a wildcard such as `*.google.internal` does not cover them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use stockade_policy::{HostPattern, HostRule, NetworkPolicy};

use crate::hostname::{canonical, Host};

/// Names of cloud metadata services, which a wildcard rule never covers.
pub const METADATA_NAMES: [&str; 2] = ["metadata.google.internal", "metadata"];

/// The allow and deny rules the proxy enforces, normalised once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    allow: Vec<HostRule>,
    deny: Vec<HostRule>,
}

/// How to find the addresses of an allowed host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The host is an address; use it as is.
    Literal(IpAddr),
    /// `localhost`: `127.0.0.1` and `::1`, without asking DNS.
    Loopback,
    /// Ask the resolver for this name.
    Dns(String),
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A deny rule matched (it wins over any allow rule).
    DenyRule(HostRule),
    /// No allow rule matches the host and port.
    NoRule,
    /// The address is special (loopback, private, ...) and no allow rule names it.
    SpecialAddress {
        /// The address.
        ip: IpAddr,
        /// Its class, for the message.
        class: AddrClass,
    },
    /// A metadata service name matched only through a wildcard rule.
    MetadataName,
    /// The client's destination did not validate (bad bytes, bad IP notation, bad port).
    InvalidHost(&'static str),
    /// The name did not resolve, or resolved to nothing usable.
    Unresolvable,
}

impl Refusal {
    /// The deny rule responsible, if any (the event's `rule` field).
    pub fn rule(&self) -> Option<&HostRule> {
        match self {
            Refusal::DenyRule(r) => Some(r),
            _ => None,
        }
    }

    /// A short reason in words, for the log and the stderr line.
    pub fn reason(&self) -> String {
        match self {
            Refusal::DenyRule(r) => format!("denied by rule `{r}`"),
            Refusal::NoRule => "no rule".to_owned(),
            Refusal::SpecialAddress { ip, class } => {
                format!("{} address {ip} needs a rule naming that address", class.as_str())
            }
            Refusal::MetadataName => "cloud metadata names need an exact rule".to_owned(),
            Refusal::InvalidHost(why) => format!("invalid destination: {why}"),
            Refusal::Unresolvable => "the name does not resolve".to_owned(),
        }
    }

    /// The reason for a refusal of the addresses the proxy's own lookup of an allowed *name*
    /// returned, as told to the sandboxed client and written wherever it can read: the class of
    /// reason, never the address nor the IP deny rule that names it.
    ///
    /// The client asked for a name, not an address. Answering "private address 10.1.2.3" (or
    /// "denied by rule `10.1.2.3`") would tell a command inside the sandbox where an internal
    /// name points, mapping the host's network, which is exactly what the refusal withholds.
    /// [`Refusal::reason`] keeps the details for the supervisor's own report.
    ///
    /// Both kinds get the same words: telling "private" from "denied by a rule" would tell a
    /// command that can read the policy which of its deny rules the name points at.
    pub fn reason_after_lookup(&self) -> String {
        match self {
            Refusal::SpecialAddress { .. } | Refusal::DenyRule(_) => AFTER_LOOKUP.to_owned(),
            other => other.reason(),
        }
    }
}

/// [`Refusal::reason_after_lookup`]'s words for every refused address behind an allowed name.
const AFTER_LOOKUP: &str =
    "resolves only to addresses the proxy refuses (private, local, or named by a deny rule); the run's report names them";

/// The class of a special-purpose address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `169.254.0.0/16` (includes cloud metadata), `fe80::/10`.
    LinkLocal,
    /// RFC 1918, `fc00::/7`.
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT, also Alibaba's metadata `100.100.100.200`).
    SharedNat,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4` (reserved).
    Reserved,
}

impl AddrClass {
    /// The class in words.
    pub fn as_str(self) -> &'static str {
        match self {
            AddrClass::Loopback => "loopback",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Private => "private",
            AddrClass::SharedNat => "shared (CGNAT)",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Broadcast => "broadcast",
            AddrClass::Multicast => "multicast",
            AddrClass::Reserved => "reserved",
        }
    }
}

/// The special class of `ip`, or `None` for an ordinary public unicast address.
pub fn classify(ip: IpAddr) -> Option<AddrClass> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrClass> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_loopback() {
        AddrClass::Loopback
    } else if a == 0 {
        AddrClass::Unspecified
    } else if ip.is_link_local() {
        AddrClass::LinkLocal
    } else if ip.is_private() {
        AddrClass::Private
    } else if a == 100 && (64..128).contains(&b) {
        AddrClass::SharedNat
    } else if ip.is_broadcast() {
        AddrClass::Broadcast
    } else if ip.is_multicast() {
        AddrClass::Multicast
    } else if a >= 240 {
        AddrClass::Reserved
    } else {
        return None;
    })
}

/// The IPv4 address an IPv6 address leads to through a translator: NAT64's well-known prefix
/// (`64:ff9b::/96`) and its local-use prefix (`64:ff9b:1::/48`, RFC 8215, taken here with the
/// IPv4 address in the last 32 bits, as most local deployments use a /96 inside it) and 6to4
/// (`2002::/16`, bits 16..48). Such an address reaches that IPv4 address where a translator or
/// relay exists, so classes and deny rules apply to it as to the IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let (seg, o) = (ip.segments(), ip.octets());
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[..3] == [0x64, 0xff9b, 1] {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if seg[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddrClass> {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    Some(if ip.is_loopback() {
        AddrClass::Loopback
    } else if ip.is_unspecified() {
        AddrClass::Unspecified
    } else if seg[..6] == [0; 6] {
        // Deprecated IPv4-compatible addresses (`::127.0.0.1`): never a legitimate destination.
        AddrClass::Reserved
    } else if seg[0] & 0xffc0 == 0xfe80 {
        AddrClass::LinkLocal
    } else if seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xffc0 == 0xfec0 {
        AddrClass::Private
    } else if ip.is_multicast() {
        AddrClass::Multicast
    } else {
        return None;
    })
}

impl Rules {
    /// Rules from lists of allow and deny rules. IP rules are canonicalised so that a rule
    /// for `::ffff:10.0.0.1` and one for `10.0.0.1` mean the same address.
    pub fn new(allow: impl IntoIterator<Item = HostRule>, deny: impl IntoIterator<Item = HostRule>) -> Self {
        let norm = |mut r: HostRule| {
            if let HostPattern::Ip(ip) = r.host {
                r.host = HostPattern::Ip(canonical(ip));
            }
            r
        };
        Rules { allow: allow.into_iter().map(norm).collect(), deny: deny.into_iter().map(norm).collect() }
    }

    /// The rules of a resolved policy's `[network]` section (provenance is dropped: the log
    /// names rules by their text).
    pub fn from_policy(net: &NetworkPolicy) -> Self {
        Rules::new(net.allow.iter().map(|s| s.value.clone()), net.deny.iter().map(|s| s.value.clone()))
    }

    /// Step 1: the decision on the validated host, before any lookup. On success returns the
    /// allow rule that matched and how to obtain addresses.
    pub fn check_host(&self, host: &Host, port: u16) -> Result<(HostRule, Lookup), Refusal> {
        let key = host.to_string();
        if let Some(r) = self.deny.iter().find(|r| r.denies(&key, port)) {
            return Err(Refusal::DenyRule(r.clone()));
        }
        let rule = self.allow.iter().find(|r| r.matches(&key, port)).ok_or(Refusal::NoRule)?.clone();
        let lookup = match host {
            Host::Ip(ip) => {
                self.check_addr(*ip, port)?;
                Lookup::Literal(*ip)
            }
            Host::Name(n) if n == "localhost" || n.ends_with(".localhost") => Lookup::Loopback,
            Host::Name(n) => {
                if METADATA_NAMES.contains(&n.as_str()) && !matches!(rule.host, HostPattern::Exact(_)) {
                    return Err(Refusal::MetadataName);
                }
                Lookup::Dns(n.clone())
            }
        };
        Ok((rule, lookup))
    }

    /// Step 2: whether one address obtained by [`Lookup`] may be connected to on `port`.
    /// `localhost` lookups pass `via_localhost_rule` so an exact `localhost` rule reaches
    /// loopback (and only loopback).
    pub fn check_addr_for(&self, ip: IpAddr, port: u16, rule: &HostRule) -> Result<(), Refusal> {
        let ip = canonical(ip);
        let localhost_rule = matches!(&rule.host, HostPattern::Exact(n) if n == "localhost");
        if localhost_rule && classify(ip) == Some(AddrClass::Loopback) {
            return self.check_deny_addr(ip, port);
        }
        self.check_addr(ip, port)
    }

    /// Deny rules naming the address, then the special-address check.
    pub fn check_addr(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        let ip = canonical(ip);
        self.check_deny_addr(ip, port)?;
        if let Some(class) = classify(ip) {
            let named = self.allow.iter().any(|r| r.host == HostPattern::Ip(ip) && r.matches(&ip.to_string(), port));
            if !named {
                return Err(Refusal::SpecialAddress { ip, class });
            }
        }
        Ok(())
    }

    fn check_deny_addr(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        // The address itself, and the IPv4 address a translated IPv6 one leads to.
        let embedded = match canonical(ip) {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        for key in std::iter::once(ip).chain(embedded).map(|a| a.to_string()) {
            if let Some(r) = self.deny.iter().find(|r| r.denies(&key, port)) {
                return Err(Refusal::DenyRule(r.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostname::parse_host;

    fn rules(allow: &[&str], deny: &[&str]) -> Rules {
        Rules::new(allow.iter().map(|s| s.parse().unwrap()), deny.iter().map(|s| s.parse().unwrap()))
    }

    fn host(s: &str) -> Host {
        parse_host(s.as_bytes()).unwrap()
    }

    #[test]
    fn deny_wins_and_no_rule_refuses() {
        let r = rules(&["*.example.com", "example.org"], &["evil.example.com"]);
        assert!(r.check_host(&host("a.example.com"), 443).is_ok());
        assert!(matches!(r.check_host(&host("evil.example.com"), 443), Err(Refusal::DenyRule(_))));
        assert_eq!(r.check_host(&host("example.com"), 443), Err(Refusal::NoRule));
        assert_eq!(r.check_host(&host("example.org"), 22), Err(Refusal::NoRule));
        assert_eq!(
            r.check_host(&host("EXAMPLE.org."), 80),
            Ok(("example.org".parse().unwrap(), Lookup::Dns("example.org".into())))
        );
    }

    /// An IP deny rule also applies to the NAT64 and 6to4 addresses that lead to that address
    /// (a DNS64 resolver answers an allowed name with one); the local-use NAT64 prefix is
    /// classified by the address it carries.
    #[test]
    fn ip_deny_rules_see_through_nat64_and_6to4() {
        let r = rules(&["*.example.com"], &["93.184.215.14"]);
        for v6 in ["64:ff9b::5db8:d70e", "64:ff9b:1::5db8:d70e", "2002:5db8:d70e::1"] {
            let ip: IpAddr = v6.parse().unwrap();
            assert!(matches!(r.check_deny_addr(ip, 443), Err(Refusal::DenyRule(_))), "{v6}");
        }
        assert!(r.check_deny_addr("64:ff9b::5db8:d70f".parse().unwrap(), 443).is_ok(), "control");
        assert_eq!(classify("64:ff9b:1::a00:1".parse().unwrap()), Some(AddrClass::Private));
    }

    /// A deny rule without a port refuses every port, also one an allow rule opens; one with a
    /// port refuses only that port.
    #[test]
    fn a_portless_deny_rule_refuses_every_port() {
        let r = rules(
            &["*.example.com:8443", "*.example.com"],
            &["admin.example.com", "93.184.215.14", "x.example.com:443"],
        );
        assert!(matches!(r.check_host(&host("admin.example.com"), 8443), Err(Refusal::DenyRule(_))));
        assert!(matches!(r.check_host(&host("admin.example.com"), 443), Err(Refusal::DenyRule(_))));
        assert!(matches!(r.check_deny_addr(IpAddr::from([93, 184, 215, 14]), 8443), Err(Refusal::DenyRule(_))));
        assert!(matches!(r.check_host(&host("x.example.com"), 443), Err(Refusal::DenyRule(_))));
        assert!(r.check_host(&host("x.example.com"), 8443).is_ok(), "a deny rule with a port keeps to it");
        assert!(r.check_host(&host("www.example.com"), 8443).is_ok(), "control");
    }

    #[test]
    fn loopback_needs_an_ip_rule_for_that_port() {
        let r = rules(&["127.0.0.1:8080", "public.example"], &[]);
        for h in ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]"] {
            assert!(r.check_host(&host(h), 8080).is_ok(), "{h}");
            assert_eq!(r.check_host(&host(h), 8081), Err(Refusal::NoRule), "{h}");
        }
        assert!(r.check_addr(IpAddr::from([127, 0, 0, 1]), 8080).is_ok());
        assert!(matches!(r.check_addr(IpAddr::from([127, 0, 0, 2]), 8080), Err(Refusal::SpecialAddress { .. })));
        // DNS rebinding: an allowed name answering loopback is refused at the address step.
        let (rule, _) = r.check_host(&host("public.example"), 443).unwrap();
        assert!(matches!(
            r.check_addr_for(IpAddr::from([127, 0, 0, 1]), 443, &rule),
            Err(Refusal::SpecialAddress { class: AddrClass::Loopback, .. })
        ));
        assert!(r.check_addr_for(IpAddr::from([93, 184, 215, 14]), 443, &rule).is_ok());
    }

    /// The reason a sandboxed client gets for a name that resolved to refused addresses says
    /// why in general and never names the address or the IP rule.
    #[test]
    fn reason_after_lookup_withholds_the_address() {
        let r = rules(&["*.example.com"], &["10.9.9.9"]);
        let (rule, _) = r.check_host(&host("a.example.com"), 443).unwrap();
        for ip in ["10.1.2.3", "127.0.0.1", "169.254.169.254", "fd00::1", "10.9.9.9"] {
            let why = r.check_addr_for(ip.parse().unwrap(), 443, &rule).unwrap_err();
            let told = why.reason_after_lookup();
            assert!(told.starts_with("resolves only to ") && !told.contains(ip), "{ip}: {told}");
            assert_eq!(told, AFTER_LOOKUP, "{ip}: one message whatever refused it");
            assert!(why.reason().contains(ip), "control: the supervisor's reason keeps {ip}: {}", why.reason());
        }
    }

    #[test]
    fn localhost_rule_is_port_exact() {
        let r = rules(&["localhost:8080"], &[]);
        let (rule, lookup) = r.check_host(&host("localhost"), 8080).unwrap();
        assert_eq!(lookup, Lookup::Loopback);
        assert!(r.check_addr_for(IpAddr::from([127, 0, 0, 1]), 8080, &rule).is_ok());
        assert!(r.check_addr_for("::1".parse().unwrap(), 8080, &rule).is_ok());
        assert!(r.check_addr_for(IpAddr::from([10, 0, 0, 1]), 8080, &rule).is_err());
        assert_eq!(r.check_host(&host("localhost"), 8081), Err(Refusal::NoRule));
    }

    #[test]
    fn metadata_and_private_ranges() {
        let r = rules(&["*.google.internal", "*.example.com"], &[]);
        assert_eq!(r.check_host(&host("metadata.google.internal"), 80), Err(Refusal::MetadataName));
        for ip in [
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            assert!(classify(ip.parse().unwrap()).is_some(), "{ip}");
            assert!(r.check_addr(ip.parse().unwrap(), 443).is_err(), "{ip}");
        }
        for ip in [
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "ff02::1",
            "::",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "::8.8.8.8",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
        ] {
            assert!(classify(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.215.14", "2606:4700::1111", "100.128.0.1", "172.32.0.1", "2002:5db8:d70e::1"] {
            assert_eq!(classify(ip.parse().unwrap()), None, "{ip}");
        }
        let r = rules(&["169.254.169.254:80"], &[]);
        assert!(r.check_host(&host("169.254.169.254"), 80).is_ok());
        assert!(r.check_host(&host("169.254.169.254"), 443).is_err());
    }

    #[test]
    fn deny_rules_apply_to_resolved_addresses() {
        let r = rules(&["*.example.com"], &["93.184.215.14"]);
        let (rule, _) = r.check_host(&host("a.example.com"), 443).unwrap();
        assert!(matches!(r.check_addr_for(IpAddr::from([93, 184, 215, 14]), 443, &rule), Err(Refusal::DenyRule(_))));
        assert!(r.check_addr_for(IpAddr::from([93, 184, 215, 15]), 443, &rule).is_ok());
    }
}
