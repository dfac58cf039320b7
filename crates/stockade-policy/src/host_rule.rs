//! Network host rules: `github.com`, `*.npmjs.org`, `github.com:22`, `127.0.0.1:8080`.
//!
//! A rule names a host (exactly, or every subdomain with a leading `*.`) and optionally one
//! port. Without a port a rule covers the web ports 80 and 443 only; `host:port` covers exactly
//! that port. The network proxy makes the connection decisions; this module only parses,
//! normalises and compares rules, so that configuration errors surface when the policy is
//! resolved and requirements can compare a rule against their ceiling.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The ports a rule without an explicit port covers.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// The host part of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// Exactly this (lowercase, no trailing dot) host name.
    Exact(String),
    /// Every strict subdomain of this name (`*.example.com` does not match `example.com`).
    Subdomains(String),
    /// An IP address literal.
    Ip(IpAddr),
}

/// One allow or deny rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostRule {
    /// Which host(s).
    pub host: HostPattern,
    /// One port, or `None` for [`DEFAULT_PORTS`].
    pub port: Option<u16>,
}

/// Why a host rule was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRuleError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for HostRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid host rule `{}`: {}", self.rule.escape_debug(), self.reason)
    }
}

impl std::error::Error for HostRuleError {}

impl HostRule {
    /// Whether a connection to `host` (already normalised: lowercase, no trailing dot) on
    /// `port` matches this rule.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        };
        port_ok
            && match &self.host {
                HostPattern::Exact(name) => name == host,
                HostPattern::Subdomains(base) => {
                    host.strip_suffix(base.as_str()).is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
                }
                HostPattern::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            }
    }

    /// Whether this rule, as a deny rule, refuses a connection to `host` on `port`. A deny rule
    /// without a port refuses every port ("hosts that may never be reached"), where an allow
    /// rule without one allows only the web ports: with `allow = ["*.example.com:8443"]`,
    /// `deny = ["admin.example.com"]` must refuse `admin.example.com:8443` too.
    pub fn denies(&self, host: &str, port: u16) -> bool {
        let any_port = HostRule { port: Some(port), ..self.clone() };
        if self.port.is_some() {
            self.matches(host, port)
        } else {
            any_port.matches(host, port)
        }
    }

    /// Whether every connection this rule allows is also allowed by `ceiling`. Used to check
    /// a user's allow rules against the requirements' `[network] allowed_hosts`.
    pub fn is_within(&self, ceiling: &HostRule) -> bool {
        let ports_ok = match (self.port, ceiling.port) {
            (_, None) if self.port.is_none() => true,
            (Some(p), None) => DEFAULT_PORTS.contains(&p),
            (Some(p), Some(c)) => p == c,
            (None, Some(_)) => false,
            (None, None) => true,
        };
        ports_ok
            && match (&self.host, &ceiling.host) {
                (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
                (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
                (HostPattern::Exact(a), HostPattern::Subdomains(b)) => {
                    a.strip_suffix(b.as_str()).is_some_and(|p| p.len() > 1 && p.ends_with('.'))
                }
                (HostPattern::Subdomains(a), HostPattern::Subdomains(b)) => {
                    a == b || a.strip_suffix(b.as_str()).is_some_and(|p| p.len() > 1 && p.ends_with('.'))
                }
                _ => false,
            }
    }
}

impl FromStr for HostRule {
    type Err = HostRuleError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostRuleError { rule: raw.to_owned(), reason };
        if raw.is_empty() {
            return Err(err("the rule is empty"));
        }
        if !raw.is_ascii() {
            return Err(err("write international names in their ASCII (punycode) form"));
        }
        // Split off an optional port; `[v6]:port` and bare `v6` both parse.
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| err("missing `]`"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| err("expected `:` after `]`"))?),
            };
            (h, port)
        } else if raw.matches(':').count() > 1 {
            (raw, None)
        } else {
            match raw.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (raw, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(err("the port must be a number from 1 to 65535")),
                Ok(n) => Some(n),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(HostRule { host: HostPattern::Ip(ip), port });
        }
        let (pattern, name) = match host.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, host),
        };
        validate_name(name).map_err(err)?;
        if ends_in_number(name) {
            return Err(err("looks like a numeric IP address in a non-standard notation"));
        }
        let host = if pattern { HostPattern::Subdomains(name.to_owned()) } else { HostPattern::Exact(name.to_owned()) };
        Ok(HostRule { host, port })
    }
}

/// Whether the last label is numeric (decimal, or `0x` hex): such names are IPv4 addresses in
/// some notation (`0x7f.1`, `2130706433`), never host names, as in the URL standard.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
    last.bytes().all(|b| b.is_ascii_digit()) || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Letters, digits and hyphens, labels of 1 to 63 bytes not starting or ending with `-`.
fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("the host name must be 1 to 253 characters long");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must be 1 to 63 characters long");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("host names may contain only letters, digits, `-` and `.` (a `*.` prefix is allowed)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label may not start or end with `-`");
        }
    }
    Ok(())
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(n) => f.write_str(n)?,
            HostPattern::Subdomains(n) => write!(f, "*.{n}")?,
            HostPattern::Ip(IpAddr::V6(ip)) if self.port.is_some() => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl Serialize for HostRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> HostRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_prints_round_trip() {
        for s in ["github.com", "*.npmjs.org", "github.com:22", "127.0.0.1:8080", "[::1]:8080", "::1"] {
            assert_eq!(rule(s).to_string(), s);
        }
        assert_eq!(rule("GitHub.COM.").to_string(), "github.com");
    }

    #[test]
    fn rejects_bad_rules() {
        for s in [
            "",
            "a b.com",
            "ex\0ample.com",
            "-x.com",
            "x..com",
            "host:0",
            "host:99999",
            "bücher.de",
            "0x7f.1",
            "017700000001",
            "[::1",
        ] {
            assert!(s.parse::<HostRule>().is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let r = rule("*.example.com");
        assert!(r.matches("a.example.com", 443));
        assert!(r.matches("a.b.example.com", 80));
        assert!(!r.matches("example.com", 443));
        assert!(!r.matches("badexample.com", 443));
        assert!(!r.matches("a.example.com", 22));
    }

    #[test]
    fn port_rules() {
        assert!(rule("github.com:22").matches("github.com", 22));
        assert!(!rule("github.com:22").matches("github.com", 443));
        assert!(rule("github.com").matches("github.com", 443));
        assert!(!rule("github.com").matches("github.com", 8443));
    }

    #[test]
    fn ceiling_comparison() {
        assert!(rule("a.example.com").is_within(&rule("*.example.com")));
        assert!(rule("*.a.example.com").is_within(&rule("*.example.com")));
        assert!(!rule("*.example.com").is_within(&rule("a.example.com")));
        assert!(!rule("example.com").is_within(&rule("*.example.com")));
        assert!(rule("x.com:443").is_within(&rule("x.com")));
        assert!(!rule("x.com:22").is_within(&rule("x.com")));
        assert!(!rule("x.com").is_within(&rule("x.com:443")));
        assert!(rule("x.com:22").is_within(&rule("x.com:22")));
    }
}
