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
    ip: IpAddr,
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
        let ip = ip.to_canonical();
        if self.rate.check(ip).is_err() {
            return None;
        }
        if self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            })
            .is_err()
        {
            return None;
        }
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            drop(count);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *count += 1;
        Some(ConnPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Live connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limits.per_ip.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
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
