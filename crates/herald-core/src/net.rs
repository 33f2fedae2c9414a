//! Which IP addresses Herald may deliver webhooks to.
//!
//! Endpoint URLs come from customers, so without a rule anyone who can create an
//! endpoint could make Herald send requests into its own network: the cloud
//! metadata service at 169.254.169.254, an admin panel on 127.0.0.1, a database
//! on 10.0.0.5. Herald therefore connects only to globally routable unicast
//! addresses, checked after DNS resolution (a public name can point at a
//! private address), unless the operator lists a network in
//! `HERALD_ALLOW_SUBNETS`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Networks the operator allows Herald to deliver to even though they are not
/// global, read from `HERALD_ALLOW_SUBNETS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

/// An entry of an allow list that is neither an address nor a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "entry {position} ({entry:?}) is not an IP address or a network such as 10.0.0.0/8 or fd00::/8"
)]
pub struct AllowListError {
    /// Where the entry is in the list, counting from 1.
    pub position: usize,
    pub entry: String,
}

/// Herald's refusal to connect to an address, worded for the operator who has
/// to decide whether to allow it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is not a global address ({reason}); Herald refuses to deliver to non-global addresses unless HERALD_ALLOW_SUBNETS includes it (for example HERALD_ALLOW_SUBNETS={suggestion})")]
pub struct Refusal {
    pub ip: IpAddr,
    pub reason: &'static str,
    /// The single-address network of `ip`, ready to paste into the setting.
    pub suggestion: String,
}

impl Refusal {
    /// The refusal as a tenant may read it (the attempt log, the API, the
    /// portal), for a URL whose host is `host`. For a name it says neither
    /// which address the name resolved to nor what kind it is: otherwise any
    /// tenant could use Herald to map the names of the operator's internal
    /// network. The operator's log keeps the detail ([`Refusal`]'s `Display`).
    pub fn tenant_text(&self, host: &TenantHost<'_>) -> String {
        match host {
            TenantHost::Name(name) => format!(
                "{name} resolves to a non-public address; Herald delivers only to public internet \
                 addresses (SSRF protection)"
            ),
            TenantHost::Literal => format!(
                "{} is not a public address ({}); Herald delivers only to public internet \
                 addresses (SSRF protection)",
                self.ip, self.reason
            ),
        }
    }
}

/// How the refused address came into a URL, for [`Refusal::tenant_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantHost<'a> {
    /// The URL names a host, which resolved to the refused address.
    Name(&'a str),
    /// The URL's host is the refused address itself (the tenant wrote it).
    Literal,
}

/// Why `ip` is not a globally routable unicast address, or `None` if it is.
///
/// The reason is a short phrase that reads well in "`ip` is not a global
/// address (`reason`)". Addresses that carry an IPv4 address inside an IPv6 one
/// (IPv4-mapped, NAT64 and 6to4) are judged by the IPv4 address they lead to,
/// because that is where a connection would end up.
pub fn non_global_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

impl AllowList {
    /// An allow list of exactly these networks.
    pub fn new(nets: Vec<IpNet>) -> AllowList {
        AllowList(nets)
    }

    /// Whether some entry contains `ip`. An IPv4 address and its IPv4-mapped
    /// IPv6 form (`::ffff:a.b.c.d`) are the same destination, so each matches
    /// entries written in the other form too.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let other_form = match ip {
            IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        };
        self.0
            .iter()
            .any(|net| net.contains(&ip) || other_form.is_some_and(|other| net.contains(&other)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, in the order they were given.
    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }

    /// Whether Herald may connect to `ip`: yes if it is global or allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(reason) = non_global_reason(ip) else {
            return Ok(());
        };
        if self.allows(ip) {
            return Ok(());
        }
        Err(Refusal {
            ip,
            reason,
            suggestion: IpNet::from(ip).to_string(),
        })
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;

    /// Reads comma-separated networks (`10.0.0.0/8, fd00::/8`) or single
    /// addresses (`127.0.0.1`, meaning just that host). An empty or blank
    /// string is an empty list, so the setting can be present but unset.
    ///
    /// A network written with host bits set (`10.1.2.3/8`) means the network
    /// that contains it (`10.0.0.0/8`), which is what such a typo intends.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(AllowList::default());
        }
        s.split(',')
            .enumerate()
            .map(|(index, raw)| {
                let entry = raw.trim();
                parse_entry(entry).ok_or_else(|| AllowListError {
                    position: index + 1,
                    entry: entry.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList)
    }
}

impl fmt::Display for AllowList {
    /// The list in the form [`FromStr`] reads, for logging the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, net) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

fn parse_entry(entry: &str) -> Option<IpNet> {
    if entry.contains('/') {
        entry.parse::<IpNet>().ok().map(|net| net.trunc())
    } else {
        entry.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

/// IPv4 special-purpose blocks (IANA's registry, RFC 6890 and successors),
/// most specific first where they overlap.
const V4_SPECIAL: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 32), "unspecified"),
    // "This network": only meaningful as a source address.
    (v4(0, 0, 0, 0, 8), "reserved"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private"),
    // IETF protocol assignments. A few of these are anycast services that are
    // technically reachable, but none of them is a webhook receiver.
    (v4(192, 0, 0, 0, 24), "reserved"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    // The deprecated 6to4 relay anycast block.
    (v4(192, 88, 99, 0, 24), "reserved"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// IPv6 special-purpose blocks that are not judged by an embedded IPv4
/// address, most specific first where they overlap. Everything outside
/// 2000::/3 (global unicast) that is not listed here is reserved.
const V6_SPECIAL: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    // Local-use NAT64: translates to whatever the local network chose.
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "private"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), "benchmarking"),
    // IETF protocol assignments, including Teredo (2001::/32) and ORCHID.
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), "reserved"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
const IPV4_MAPPED: Ipv6Net = v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96);
const IPV4_COMPATIBLE: Ipv6Net = v6([0, 0, 0, 0, 0, 0, 0, 0], 96);
const NAT64_WELL_KNOWN: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix_len)
}

const fn v6(segments: [u16; 8], prefix_len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix_len)
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_SPECIAL
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, reason)| *reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    // Forms that lead to an IPv4 address: judge that address.
    if IPV4_MAPPED.contains(&ip) || NAT64_WELL_KNOWN.contains(&ip) {
        return v4_reason(Ipv4Addr::from(bits as u32));
    }
    if SIX_TO_FOUR.contains(&ip) {
        // 2002:AABB:CCDD::/48 is the 6to4 site of AA.BB.CC.DD.
        return v4_reason(Ipv4Addr::from((bits >> 80) as u32));
    }
    if let Some((_, reason)) = V6_SPECIAL.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(reason);
    }
    // Checked after :: and ::1, which share the prefix: the deprecated
    // IPv4-compatible form is no longer routed anywhere.
    if IPV4_COMPATIBLE.contains(&ip) || !GLOBAL_UNICAST.contains(&ip) {
        return Some("reserved");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn ipv4_addresses() {
        let table: &[(&str, Option<&str>)] = &[
            // Global.
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("1.0.0.0", None),
            ("9.255.255.255", None),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("126.255.255.255", None),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.0.1.0", None),
            ("192.0.3.0", None),
            ("192.88.98.255", None),
            ("192.88.100.0", None),
            ("192.167.255.255", None),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.20.0.0", None),
            ("198.51.99.255", None),
            ("198.51.101.0", None),
            ("203.0.112.255", None),
            ("203.0.114.0", None),
            ("223.255.255.255", None),
            // 0.0.0.0/8.
            ("0.0.0.0", Some("unspecified")),
            ("0.0.0.1", Some("reserved")),
            ("0.255.255.255", Some("reserved")),
            // Private.
            ("10.0.0.0", Some("private")),
            ("10.255.255.255", Some("private")),
            ("172.16.0.0", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.0.1", Some("private")),
            ("192.168.255.255", Some("private")),
            // Shared address space.
            ("100.64.0.0", Some("shared address space (CGNAT)")),
            ("100.127.255.255", Some("shared address space (CGNAT)")),
            // Loopback.
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            // Link-local, including the cloud metadata service.
            ("169.254.0.0", Some("link-local")),
            ("169.254.169.254", Some("link-local")),
            // IETF protocol assignments and the 6to4 relay.
            ("192.0.0.0", Some("reserved")),
            ("192.0.0.9", Some("reserved")),
            ("192.0.0.255", Some("reserved")),
            ("192.88.99.1", Some("reserved")),
            // Documentation.
            ("192.0.2.1", Some("documentation")),
            ("198.51.100.7", Some("documentation")),
            ("203.0.113.255", Some("documentation")),
            // Benchmarking.
            ("198.18.0.0", Some("benchmarking")),
            ("198.19.255.255", Some("benchmarking")),
            // Multicast.
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            // Reserved class E and broadcast.
            ("240.0.0.0", Some("reserved")),
            ("255.255.255.254", Some("reserved")),
            ("255.255.255.255", Some("broadcast")),
        ];
        for (addr, expected) in table {
            assert_eq!(non_global_reason(ip(addr)), *expected, "{addr}");
        }
    }

    #[test]
    fn ipv6_addresses() {
        let table: &[(&str, Option<&str>)] = &[
            // Global.
            ("2606:4700:4700::1111", None),
            ("2001:4860:4860::8888", None),
            ("2a00:1450:4001:80b::200e", None),
            ("2001:200::1", None),
            ("2001:db9::1", None),
            ("3ffe::1", None),
            ("3fff:1000::1", None),
            // Unspecified and loopback.
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            // IPv4-compatible (deprecated).
            ("::2", Some("reserved")),
            ("::8.8.8.8", Some("reserved")),
            ("::127.0.0.1", Some("reserved")),
            // IPv4-mapped: judged by the IPv4 address.
            ("::ffff:8.8.8.8", None),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:0.0.0.0", Some("unspecified")),
            ("::ffff:100.64.1.1", Some("shared address space (CGNAT)")),
            ("::ffff:255.255.255.255", Some("broadcast")),
            ("::ffff:7f00:1", Some("loopback")),
            // IPv4-translated (SIIT) is not IPv4-mapped.
            ("::ffff:0:8.8.8.8", Some("reserved")),
            // NAT64.
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::192.168.1.1", Some("private")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("64:ff9b:1::1", Some("private")),
            ("64:ff9b:1:ffff::8.8.8.8", Some("private")),
            ("64:ff9b:0:0:1::1", Some("reserved")),
            // Discard-only.
            ("100::", Some("discard-only")),
            ("100::ffff:ffff:ffff:ffff", Some("discard-only")),
            ("100:0:0:1::", Some("reserved")),
            // IETF protocol assignments, Teredo, benchmarking, documentation.
            ("2001::", Some("reserved")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("reserved")),
            ("2001:3::1", Some("reserved")),
            ("2001:10::1", Some("reserved")),
            ("2001:1ff:ffff::1", Some("reserved")),
            ("2001:2::1", Some("benchmarking")),
            ("2001:2:0:ffff::1", Some("benchmarking")),
            ("2001:db8::1", Some("documentation")),
            ("2001:db8:ffff:ffff::1", Some("documentation")),
            ("3fff::1", Some("documentation")),
            ("3fff:fff::1", Some("documentation")),
            // 6to4: judged by the IPv4 address in bits 16..48.
            ("2002:0808:0808::1", None),
            ("2002:7f00:0001::1", Some("loopback")),
            ("2002:c0a8:0101::1", Some("private")),
            ("2002:a9fe:a9fe:1::1", Some("link-local")),
            ("2002::1", Some("unspecified")),
            ("2002:e000:1::", Some("multicast")),
            // Unique local, link-local, site-local, multicast.
            ("fc00::1", Some("unique local")),
            ("fd12:3456:789a::1", Some("unique local")),
            (
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("unique local"),
            ),
            ("fe80::1", Some("link-local")),
            ("febf:ffff::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("feff::1", Some("site-local")),
            ("ff02::1", Some("multicast")),
            ("ff0e::1", Some("multicast")),
            // Outside 2000::/3.
            ("1::", Some("reserved")),
            ("1000::1", Some("reserved")),
            ("4000::1", Some("reserved")),
            ("5f00::1", Some("reserved")),
            ("e000::1", Some("reserved")),
            ("fb00::1", Some("reserved")),
        ];
        for (addr, expected) in table {
            assert_eq!(non_global_reason(ip(addr)), *expected, "{addr}");
        }
    }

    #[test]
    fn parse_allow_list() {
        let table: &[(&str, Result<&str, AllowListError>)] = &[
            ("", Ok("")),
            ("   ", Ok("")),
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("127.0.0.1", Ok("127.0.0.1/32")),
            ("::1", Ok("::1/128")),
            ("10.0.0.0/8,fd00::/8", Ok("10.0.0.0/8,fd00::/8")),
            (
                " 10.0.0.0/8 , 192.168.1.5 ,fe80::/10 ",
                Ok("10.0.0.0/8,192.168.1.5/32,fe80::/10"),
            ),
            ("10.1.2.3/8", Ok("10.0.0.0/8")),
            ("fd12::5/16", Ok("fd12::/16")),
            ("0.0.0.0/0", Ok("0.0.0.0/0")),
            ("::ffff:10.0.0.0/104", Ok("::ffff:10.0.0.0/104")),
            (
                "10.0.0.0/33",
                Err(AllowListError {
                    position: 1,
                    entry: "10.0.0.0/33".into(),
                }),
            ),
            (
                "10.0.0.0/8,localhost",
                Err(AllowListError {
                    position: 2,
                    entry: "localhost".into(),
                }),
            ),
            (
                "10.0.0.0/8,,fd00::/8",
                Err(AllowListError {
                    position: 2,
                    entry: "".into(),
                }),
            ),
            (
                "10.0.0.0/8,",
                Err(AllowListError {
                    position: 2,
                    entry: "".into(),
                }),
            ),
            (
                "10.0.0/8",
                Err(AllowListError {
                    position: 1,
                    entry: "10.0.0/8".into(),
                }),
            ),
            (
                "10.0.0.0 /8",
                Err(AllowListError {
                    position: 1,
                    entry: "10.0.0.0 /8".into(),
                }),
            ),
            (
                "10.0.0.0/8 192.168.0.0/16",
                Err(AllowListError {
                    position: 1,
                    entry: "10.0.0.0/8 192.168.0.0/16".into(),
                }),
            ),
            (
                "1.2.3.4,fe80::1%eth0",
                Err(AllowListError {
                    position: 2,
                    entry: "fe80::1%eth0".into(),
                }),
            ),
            (
                "10.0.0.0/",
                Err(AllowListError {
                    position: 1,
                    entry: "10.0.0.0/".into(),
                }),
            ),
        ];
        for (input, expected) in table {
            let got = input.parse::<AllowList>().map(|list| list.to_string());
            assert_eq!(got.as_deref(), expected.as_deref(), "{input:?}");
        }
    }

    #[test]
    fn allow_list_error_message() {
        let err = "10.0.0.0/8,nope".parse::<AllowList>().err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "entry 2 (\"nope\") is not an IP address or a network such as 10.0.0.0/8 or fd00::/8"
            )
        );
    }

    #[test]
    fn allows() {
        let list: AllowList = "10.0.0.0/8, 127.0.0.1, fd00::/8, ::ffff:192.168.0.0/112"
            .parse()
            .expect("valid list");
        let table: &[(&str, bool)] = &[
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("fd00::1", true),
            ("fdff::1", true),
            ("fc00::1", false),
            // IPv4-mapped addresses match IPv4 entries, and the other way round.
            ("::ffff:10.1.2.3", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:127.0.0.2", false),
            ("192.168.3.4", true),
            ("::ffff:192.168.3.4", true),
            ("192.169.0.0", false),
            // Other embeddings are different destinations as far as the list
            // is concerned.
            ("::10.1.2.3", false),
            ("64:ff9b::10.1.2.3", false),
            ("::1", false),
        ];
        for (addr, expected) in table {
            assert_eq!(list.allows(ip(addr)), *expected, "{addr}");
        }
        assert!(!list.is_empty());
        assert_eq!(list.nets().len(), 4);

        let empty = AllowList::default();
        assert!(empty.is_empty());
        for addr in ["10.0.0.1", "::1", "8.8.8.8"] {
            assert!(!empty.allows(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn check() {
        let list: AllowList = "10.0.0.0/8,::1".parse().expect("valid list");
        let refusal = |addr: &str, reason: &'static str, suggestion: &str| {
            Err(Refusal {
                ip: ip(addr),
                reason,
                suggestion: suggestion.to_owned(),
            })
        };
        let table: Vec<(&str, Result<(), Refusal>)> = vec![
            ("8.8.8.8", Ok(())),
            ("2606:4700::1", Ok(())),
            ("::ffff:1.1.1.1", Ok(())),
            ("10.1.1.1", Ok(())),
            ("::ffff:10.1.1.1", Ok(())),
            ("::1", Ok(())),
            (
                "127.0.0.1",
                refusal("127.0.0.1", "loopback", "127.0.0.1/32"),
            ),
            (
                "169.254.169.254",
                refusal("169.254.169.254", "link-local", "169.254.169.254/32"),
            ),
            (
                "192.168.1.1",
                refusal("192.168.1.1", "private", "192.168.1.1/32"),
            ),
            (
                "::ffff:127.0.0.1",
                refusal("::ffff:127.0.0.1", "loopback", "::ffff:127.0.0.1/128"),
            ),
            ("fe80::1", refusal("fe80::1", "link-local", "fe80::1/128")),
            ("fd00::1", refusal("fd00::1", "unique local", "fd00::1/128")),
            ("::", refusal("::", "unspecified", "::/128")),
        ];
        for (addr, expected) in table {
            assert_eq!(list.check(ip(addr)), expected, "{addr}");
        }

        // An empty list allows exactly the global addresses.
        let empty = AllowList::default();
        assert_eq!(empty.check(ip("1.1.1.1")), Ok(()));
        assert_eq!(
            empty.check(ip("10.0.0.1")),
            refusal("10.0.0.1", "private", "10.0.0.1/32")
        );
    }

    #[test]
    fn refusal_message() {
        let table = [
            (
                "127.0.0.1",
                "127.0.0.1 is not a global address (loopback); Herald refuses to deliver to non-global addresses unless HERALD_ALLOW_SUBNETS includes it (for example HERALD_ALLOW_SUBNETS=127.0.0.1/32)",
            ),
            (
                "fd00::1",
                "fd00::1 is not a global address (unique local); Herald refuses to deliver to non-global addresses unless HERALD_ALLOW_SUBNETS includes it (for example HERALD_ALLOW_SUBNETS=fd00::1/128)",
            ),
        ];
        for (addr, expected) in table {
            let message = AllowList::default()
                .check(ip(addr))
                .err()
                .map(|e| e.to_string());
            assert_eq!(message.as_deref(), Some(expected), "{addr}");
        }
    }

    #[test]
    fn tenant_text_names_no_resolved_address() {
        let refusal = AllowList::default().check(ip("10.1.2.3")).unwrap_err();
        let by_name = refusal.tenant_text(&TenantHost::Name("intranet.corp"));
        assert_eq!(
            by_name,
            "intranet.corp resolves to a non-public address; Herald delivers only to public internet addresses (SSRF protection)"
        );
        assert!(!by_name.contains("10.1.2.3") && !by_name.contains("private"));
        assert_eq!(
            refusal.tenant_text(&TenantHost::Literal),
            "10.1.2.3 is not a public address (private); Herald delivers only to public internet addresses (SSRF protection)"
        );
    }

    #[test]
    fn suggestion_is_accepted_and_allows_the_address() {
        let table = [
            "127.0.0.1",
            "10.9.8.7",
            "fe80::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ];
        for addr in table {
            let refusal = AllowList::default().check(ip(addr)).expect_err(addr);
            let list: AllowList = refusal.suggestion.parse().expect(addr);
            assert_eq!(list.check(ip(addr)), Ok(()), "{addr}");
        }
    }
}
