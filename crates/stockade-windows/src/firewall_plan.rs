//! Firewall rules and WFP filters for the offline sandbox user, as data, and a model of what
//! they leave reachable.
//!
//! Rules go through the [`INetFwPolicy2`](https://learn.microsoft.com/en-us/windows/win32/api/netfw/nn-netfw-inetfwpolicy2)
//! COM API and are scoped to the offline user with
//! [`LocalUserAuthorizedList`](https://learn.microsoft.com/en-us/windows/win32/api/netfw/nf-netfw-inetfwrule3-get_localuserauthorizedlist)
//! (an SDDL string naming that user's SID). They never depend on per-run values: the proxy
//! listens in a fixed port range ([`PROXY_PORTS`]), so a new run never changes a rule and never
//! needs elevation again. The firewall does not cover everything (ICMP echo through some
//! paths, DNS via the DNS client service, SMB via the kernel redirector), so persistent
//! [WFP filters](https://learn.microsoft.com/en-us/windows/win32/fwp/windows-filtering-platform-start-page)
//! block those for the same user.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::sid::Sid;

/// The fixed loopback TCP port range stockade's proxy listens in for the elevated
/// implementation. Fixed so that firewall rules never change between runs.
pub const PROXY_PORTS: RangeInclusive<u16> = 47_800..=47_809;

/// The prefix of every rule and filter name stockade creates (cleanup finds them by it too).
pub const NAME_PREFIX: &str = "stockade";

/// Traffic direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// `NET_FW_RULE_DIR_OUT`.
    Outbound,
}

/// Rule action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `NET_FW_ACTION_BLOCK`.
    Block,
}

/// IP protocol of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `NET_FW_IP_PROTOCOL_ANY` (256).
    Any,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
}

impl Protocol {
    /// The protocol number `INetFwRule::put_Protocol` takes.
    pub fn number(self) -> i32 {
        match self {
            Protocol::Any => 256,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// An address range (inclusive) of one family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddrRange {
    /// First address.
    pub first: IpAddr,
    /// Last address.
    pub last: IpAddr,
}

/// One firewall rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    /// Unique name (`stockade-<offline account SID>-...`).
    pub name: String,
    /// What the rule is for, shown in the Windows Firewall console.
    pub description: String,
    /// Direction.
    pub direction: Direction,
    /// Action.
    pub action: Action,
    /// Protocol.
    pub protocol: Protocol,
    /// Remote addresses; rendered `a-b,c-d` for `put_RemoteAddresses`.
    pub remote_addresses: Vec<AddrRange>,
    /// Remote port ranges (TCP/UDP only); empty means all ports.
    pub remote_ports: Vec<RangeInclusive<u16>>,
    /// SDDL for `LocalUserAuthorizedList`: the users the rule applies to.
    pub local_users_sddl: String,
}

impl FirewallRule {
    /// The `RemoteAddresses` string.
    pub fn remote_addresses_string(&self) -> String {
        self.remote_addresses.iter().map(|r| format!("{}-{}", r.first, r.last)).collect::<Vec<_>>().join(",")
    }

    /// The `RemotePorts` string (`None` for all ports).
    pub fn remote_ports_string(&self) -> Option<String> {
        (!self.remote_ports.is_empty()).then(|| {
            self.remote_ports
                .iter()
                .map(
                    |r| if r.start() == r.end() { r.start().to_string() } else { format!("{}-{}", r.start(), r.end()) },
                )
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    fn matches(&self, user: &Sid, proto: Protocol, addr: IpAddr, port: u16) -> bool {
        let user_ok = self.local_users_sddl.contains(&format!(";;;{user})"));
        let proto_ok = self.protocol == Protocol::Any || self.protocol == proto;
        let addr_ok = self.remote_addresses.iter().any(|r| in_range(addr, &r.first, &r.last));
        let port_ok = self.remote_ports.is_empty() || self.remote_ports.iter().any(|r| r.contains(&port));
        user_ok && proto_ok && addr_ok && port_ok
    }
}

fn in_range(a: IpAddr, first: &IpAddr, last: &IpAddr) -> bool {
    match (a, first, last) {
        (IpAddr::V4(a), IpAddr::V4(f), IpAddr::V4(l)) => (*f..=*l).contains(&a),
        (IpAddr::V6(a), IpAddr::V6(f), IpAddr::V6(l)) => (*f..=*l).contains(&a),
        _ => false,
    }
}

/// The `LocalUserAuthorizedList` SDDL naming one user.
pub fn user_sddl(user: &Sid) -> String {
    format!("O:LSD:(A;;CC;;;{user})")
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

fn v6(a: u128) -> IpAddr {
    IpAddr::from(a.to_be_bytes())
}

/// Every address except loopback (`127.0.0.0/8`, `::1`).
fn non_loopback() -> Vec<AddrRange> {
    vec![
        AddrRange { first: v4([0, 0, 0, 0]), last: v4([126, 255, 255, 255]) },
        AddrRange { first: v4([128, 0, 0, 0]), last: v4([255, 255, 255, 255]) },
        AddrRange { first: v6(0), last: v6(0) },
        AddrRange { first: v6(2), last: v6(u128::MAX) },
    ]
}

fn loopback() -> Vec<AddrRange> {
    vec![
        AddrRange { first: v4([127, 0, 0, 0]), last: v4([127, 255, 255, 255]) },
        AddrRange { first: v6(1), last: v6(1) },
    ]
}

/// The rules for the offline user: block everything but loopback, block loopback UDP, block
/// loopback TCP outside [`PROXY_PORTS`]. Depends only on the user's SID.
pub fn offline_rules(offline_user: &Sid) -> Vec<FirewallRule> {
    let sddl = user_sddl(offline_user);
    let rule = |suffix: &str, description: &str, protocol, remote_addresses, remote_ports| FirewallRule {
        name: format!("{NAME_PREFIX}-{offline_user}-{suffix}"),
        description: description.to_owned(),
        direction: Direction::Outbound,
        action: Action::Block,
        protocol,
        remote_addresses,
        remote_ports,
        local_users_sddl: sddl.clone(),
    };
    let below = 1..=(*PROXY_PORTS.start() - 1);
    let above = (*PROXY_PORTS.end() + 1)..=u16::MAX;
    vec![
        rule(
            "non-loopback",
            "stockade: the offline sandbox user reaches no network",
            Protocol::Any,
            non_loopback(),
            vec![],
        ),
        rule(
            "loopback-udp",
            "stockade: no loopback UDP for the offline sandbox user",
            Protocol::Udp,
            loopback(),
            vec![],
        ),
        rule(
            "loopback-tcp",
            "stockade: loopback TCP only to the stockade proxy ports",
            Protocol::Tcp,
            loopback(),
            vec![0..=0, below, above],
        ),
    ]
}

/// Whether an outbound connection by `user` is left allowed by `rules` (Windows Firewall's
/// outbound default is allow; a matching block rule wins).
pub fn allows(rules: &[FirewallRule], user: &Sid, proto: Protocol, addr: IpAddr, port: u16) -> bool {
    !rules.iter().any(|r| r.action == Action::Block && r.matches(user, proto, addr, port))
}

/// What a WFP filter matches, besides the user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WfpMatch {
    /// ICMP (v4 protocol 1, v6 protocol 58).
    Icmp,
    /// A remote port on TCP and UDP.
    RemotePort {
        /// The port.
        port: u16,
    },
}

/// One persistent WFP block filter at the ALE connect layers (`FWPM_LAYER_ALE_AUTH_CONNECT_V4`
/// and `_V6`), conditioned on `FWPM_CONDITION_ALE_USER_ID` matching the offline user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WfpFilter {
    /// Display name (`stockade-<offline account SID>-wfp-...`).
    pub name: String,
    /// What is matched.
    pub matches: WfpMatch,
    /// The SDDL for the user condition.
    pub user_sddl: String,
}

/// The WFP filters for the offline user: ICMP, DNS (53, 853) and SMB (139, 445).
pub fn offline_wfp_filters(offline_user: &Sid) -> Vec<WfpFilter> {
    let sddl = user_sddl(offline_user);
    let mut out = vec![WfpFilter {
        name: format!("{NAME_PREFIX}-{offline_user}-wfp-icmp"),
        matches: WfpMatch::Icmp,
        user_sddl: sddl.clone(),
    }];
    for port in [53u16, 853, 139, 445] {
        out.push(WfpFilter {
            name: format!("{NAME_PREFIX}-{offline_user}-wfp-port-{port}"),
            matches: WfpMatch::RemotePort { port },
            user_sddl: sddl.clone(),
        });
    }
    out
}

/// The key of stockade's persistent WFP provider.
pub const WFP_PROVIDER_KEY: u128 = 0x5b0c_6f1e_8a2d_4c7b_9e31_d4a6_0f2b_7c91;
/// The key of stockade's WFP sublayer.
pub const WFP_SUBLAYER_KEY: u128 = 0x5b0c_6f1e_8a2d_4c7b_9e31_d4a6_0f2b_7c92;

/// A stable, well-formed (version 4 layout) GUID for a filter `label`, so cleanup can delete
/// filters by key without having stored run-time ids.
pub fn wfp_key(label: &str) -> u128 {
    let fnv = |offset: u64| label.bytes().fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let raw = (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x6c62_272e_07bb_0142));
    (raw & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
}

/// The two filters (IPv4 and IPv6 connect layers) of one [`WfpFilter`]: their keys.
pub fn wfp_filter_keys(name: &str) -> [u128; 2] {
    [wfp_key(&format!("{name}/v4")), wfp_key(&format!("{name}/v6"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Sid {
        "S-1-5-21-10-20-30-1005".parse().unwrap()
    }

    #[test]
    fn golden_rule_strings() {
        let rules = offline_rules(&user());
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].remote_addresses_string(),
            "0.0.0.0-126.255.255.255,128.0.0.0-255.255.255.255,::-::,::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(rules[0].remote_ports_string(), None);
        assert_eq!(rules[2].remote_addresses_string(), "127.0.0.0-127.255.255.255,::1-::1");
        assert_eq!(rules[2].remote_ports_string().as_deref(), Some("0,1-47799,47810-65535"));
        assert_eq!(rules[0].local_users_sddl, "O:LSD:(A;;CC;;;S-1-5-21-10-20-30-1005)");
        assert_eq!(rules[1].protocol.number(), 17);
    }

    #[test]
    fn only_proxy_ports_on_loopback_remain_and_other_users_are_untouched() {
        let rules = offline_rules(&user());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for port in PROXY_PORTS {
            assert!(allows(&rules, &user(), Protocol::Tcp, lo, port), "proxy port {port} allowed");
        }
        assert!(!allows(&rules, &user(), Protocol::Tcp, lo, 22));
        assert!(!allows(&rules, &user(), Protocol::Udp, lo, *PROXY_PORTS.start()));
        assert!(!allows(&rules, &user(), Protocol::Tcp, "93.184.216.34".parse().unwrap(), 443));
        let other: Sid = "S-1-5-21-10-20-30-1001".parse().unwrap();
        assert!(allows(&rules, &other, Protocol::Tcp, "93.184.216.34".parse().unwrap(), 443));
    }

    #[test]
    fn wfp_filters_cover_icmp_dns_and_smb() {
        let f = offline_wfp_filters(&user());
        let ports: Vec<u16> = f
            .iter()
            .filter_map(|f| if let WfpMatch::RemotePort { port } = f.matches { Some(port) } else { None })
            .collect();
        assert_eq!(ports, vec![53, 853, 139, 445]);
        assert!(f.iter().any(|f| f.matches == WfpMatch::Icmp));
    }

    #[test]
    fn wfp_keys_are_stable_distinct_and_well_formed() {
        let [a, b] = wfp_filter_keys("stockade-offline-wfp-icmp");
        assert_ne!(a, b);
        assert_eq!(wfp_filter_keys("stockade-offline-wfp-icmp"), [a, b]);
        for k in [a, b, wfp_key("x")] {
            assert_eq!((k >> 76) & 0xf, 4, "version nibble");
            assert_eq!((k >> 62) & 0x3, 2, "variant bits");
            assert_ne!(k, WFP_PROVIDER_KEY);
        }
    }
}
