//! Connection admission: a total cap, a per-source-IP cap (both released on drop)
//! and a per-source-IP connection rate.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use super::rate::RateLimiter;

/// Counts live connections against the configured caps.
#[derive(Debug)]
pub struct ConnLimits {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
    rate: RateLimiter,
}

/// A held connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnPermit {
    limits: Arc<ConnLimits>,
    /// The source counted against the per-IP cap; `None` while only the total
    /// is held (a PROXY listener waiting for the header that names the client).
    ip: Option<IpAddr>,
}

impl ConnLimits {
    /// `rate_per_minute` 0 means no rate limit.
    pub fn new(max_total: usize, max_per_ip: usize, rate_per_minute: u32) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_total,
            max_per_ip,
            rate: RateLimiter::per_minute(rate_per_minute),
            total: AtomicUsize::new(0),
            per_ip: DashMap::new(),
        })
    }

    /// Takes a slot for a connection from `ip`, or `None` when a cap or the rate
    /// is reached (every attempt counts towards the rate).
    /// IPv4-mapped IPv6 sources count as their IPv4 address.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        if self.rate.check(ip.to_canonical()).is_err() {
            return None;
        }
        let permit = self.try_acquire_total()?;
        self.count_ip(permit, ip)
    }

    /// Takes a slot against the total cap only: a connection from a trusted load
    /// balancer, whose PROXY header has yet to name the client that the per-IP cap
    /// and rate apply to (see [`ConnLimits::admit_client`]).
    pub fn try_acquire_total(self: &Arc<Self>) -> Option<ConnPermit> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            })
            .ok()?;
        Some(ConnPermit {
            limits: self.clone(),
            ip: None,
        })
    }

    /// Applies the per-IP rate and cap to the client a PROXY header named, on a
    /// permit from [`ConnLimits::try_acquire_total`]; `None` (the slot freed) when
    /// over either. A permit already counted for an IP is returned unchanged.
    pub fn admit_client(self: &Arc<Self>, permit: ConnPermit, ip: IpAddr) -> Option<ConnPermit> {
        if permit.ip.is_some() {
            return Some(permit);
        }
        if self.rate.check(ip.to_canonical()).is_err() {
            return None;
        }
        self.count_ip(permit, ip)
    }

    /// Counts a total-only permit against `ip`'s cap.
    fn count_ip(&self, mut permit: ConnPermit, ip: IpAddr) -> Option<ConnPermit> {
        let ip = ip.to_canonical();
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        permit.ip = Some(ip);
        Some(permit)
    }

    /// Live connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.limits.per_ip.remove_if_mut(&ip, |_, n| {
                *n -= 1;
                *n == 0
            });
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_total_and_release_on_drop() {
        let limits = ConnLimits::new(3, 2, 0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = limits.try_acquire(a).unwrap();
        let p2 = limits.try_acquire(mapped).unwrap();
        assert!(
            limits.try_acquire(a).is_none(),
            "mapped IPv6 counts as the same IPv4 source"
        );
        let p3 = limits.try_acquire(b).unwrap();
        assert!(
            limits.try_acquire("10.0.0.3".parse().unwrap()).is_none(),
            "total cap"
        );
        assert_eq!(limits.total(), 3);
        drop(p1);
        let p4 = limits.try_acquire(a).unwrap();
        drop((p2, p3, p4));
        assert_eq!(limits.total(), 0);
        assert!(limits.per_ip.is_empty(), "no entries left behind");
    }
    #[test]
    fn a_total_only_slot_is_counted_per_ip_once_the_client_is_known() {
        let limits = ConnLimits::new(3, 1, 0);
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let held = limits.try_acquire(client).unwrap();
        // Two connections from one load balancer: neither counts against its own IP.
        let a = limits.try_acquire_total().unwrap();
        let b = limits.try_acquire_total().unwrap();
        assert_eq!(limits.total(), 3);
        assert!(
            limits.try_acquire_total().is_none(),
            "total cap still applies"
        );
        assert!(
            limits.admit_client(a, client).is_none(),
            "the named client is over its cap"
        );
        assert_eq!(limits.total(), 2, "the refused slot is freed");
        let b = limits
            .admit_client(b, "198.51.100.1".parse().unwrap())
            .unwrap();
        let b = limits.admit_client(b, client).unwrap();
        assert_eq!(b.ip, Some("198.51.100.1".parse().unwrap()), "counted once");
        drop((held, b));
        assert_eq!(limits.total(), 0);
        assert!(limits.per_ip.is_empty(), "no entries left behind");
    }

    #[test]
    fn connection_rate_counts_attempts_even_after_release() {
        let limits = ConnLimits::new(100, 100, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        drop(limits.try_acquire(a).unwrap());
        drop(limits.try_acquire(a).unwrap());
        assert!(
            limits.try_acquire(a).is_none(),
            "third connection this minute"
        );
        assert!(limits.try_acquire("10.0.0.2".parse().unwrap()).is_some());
        assert_eq!(limits.total(), 0, "a refused attempt holds no slot");
    }
}
