//! CIDR parsing and matching for rule IP conditions.
//!
//! Every address is mapped into one 128-bit key space: IPv6 addresses as themselves,
//! IPv4 `a.b.c.d` as its IPv4-mapped form `::ffff:a.b.c.d`. An IPv4 range `a.b.c.d/n`
//! becomes `::ffff:a.b.c.d/(96+n)`. So an IPv4 source and its mapped IPv6 spelling are the
//! same key and match the same ranges whichever way either is written, and an IPv6 range
//! that covers the mapped block (`::/0`, `::ffff:0:0/96`) covers IPv4 sources too.

use std::net::IpAddr;

/// The matching key of a source address (see the module doc).
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// One parsed CIDR range in key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// Prefix length in key space (0..=128).
    pub prefix: u8,
    /// Network key with host bits cleared.
    pub network: u128,
}

fn mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl IpRange {
    /// Parses `addr/prefix` with an IPv4 or IPv6 address. Host bits set below the prefix
    /// are cleared (`10.1.2.3/8` is `10.0.0.0/8`). A bare address, octets with leading
    /// zeros, signs, zone ids or prefixes beyond 32/128 are refused.
    pub fn parse(text: &str) -> Option<IpRange> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let digits_ok = !prefix.is_empty()
            && prefix.len() <= 3
            && prefix.bytes().all(|b| b.is_ascii_digit())
            && (prefix == "0" || !prefix.starts_with('0'));
        if !digits_ok {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let (max, offset) = match addr {
            IpAddr::V4(_) => (32, 96),
            IpAddr::V6(_) => (128, 0),
        };
        if prefix > max {
            return None;
        }
        let prefix = prefix + offset;
        Some(IpRange {
            prefix,
            network: ip_key(addr) & mask(prefix),
        })
    }

    /// Whether the range covers a key.
    pub fn contains_key(self, key: u128) -> bool {
        key & mask(self.prefix) == self.network
    }
}

/// A set of ranges grouped by prefix length, each group a sorted list of networks, so a
/// lookup is one binary search per distinct prefix length rather than a scan of up to
/// 1024 ranges.
#[derive(Debug, Clone, Default)]
pub struct IpSet {
    groups: Vec<PrefixGroup>,
}

#[derive(Debug, Clone)]
struct PrefixGroup {
    mask: u128,
    networks: Vec<u128>,
}

impl IpSet {
    /// Builds the lookup structure once, when a rule is stored.
    pub fn new(ranges: impl IntoIterator<Item = IpRange>) -> IpSet {
        let mut by_prefix: Vec<Vec<u128>> = vec![Vec::new(); 129];
        for r in ranges {
            by_prefix[usize::from(r.prefix)].push(r.network);
        }
        let mut groups = Vec::new();
        // Shortest prefixes first: broad ranges decide most lookups early.
        for (prefix, mut networks) in by_prefix.into_iter().enumerate() {
            if networks.is_empty() {
                continue;
            }
            networks.sort_unstable();
            networks.dedup();
            groups.push(PrefixGroup {
                mask: mask(prefix as u8),
                networks,
            });
        }
        IpSet { groups }
    }

    /// True when the set holds no range (the condition is not set).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether any range covers the key.
    pub fn contains_key(&self, key: u128) -> bool {
        self.groups
            .iter()
            .any(|g| g.networks.binary_search(&(key & g.mask)).is_ok())
    }
}
