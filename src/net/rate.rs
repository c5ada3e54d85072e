//! Per-source-IP event rate limits (connections per minute, messages per minute),
//! like Postfix's anvil `smtpd_client_*_rate_limit`.
//!
//! The generic cell rate algorithm: each IP has a "theoretical arrival time" that
//! advances by `60 s / limit` per allowed event; an event is refused while that time
//! is more than a minute ahead. It allows bursts up to the limit, then a steady
//! `limit` per minute, and keeps one `Instant` per recently seen IP.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

const WINDOW: Duration = Duration::from_secs(60);
/// Entries are swept once the map holds this many, dropping the IPs whose
/// allowance has fully refilled (they carry no state worth keeping).
const SWEEP_AT: usize = 4096;

/// Events per minute per source IP; a limit of 0 allows everything.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    tat: DashMap<IpAddr, Instant>,
}

impl RateLimiter {
    /// `per_minute` events per IP and minute; 0 turns the limit off.
    pub fn per_minute(per_minute: u32) -> RateLimiter {
        RateLimiter {
            interval: (per_minute > 0).then(|| WINDOW / per_minute),
            tat: DashMap::new(),
        }
    }

    /// Counts one event from `ip` now; `Err(wait)` when over the limit, with the
    /// time until the next event would be allowed. IPv4-mapped IPv6 sources count
    /// as their IPv4 address.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    /// `check` at a given instant (tests drive the clock).
    pub fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        if self.tat.len() >= SWEEP_AT {
            self.tat.retain(|_, tat| *tat > now);
        }
        let mut tat = self.tat.entry(ip.to_canonical()).or_insert(now);
        let start = (*tat).max(now);
        let next = start + interval;
        if next > now + WINDOW {
            return Err(next - (now + WINDOW));
        }
        *tat = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn zero_is_unlimited() {
        let r = RateLimiter::per_minute(0);
        let now = Instant::now();
        for _ in 0..100_000 {
            assert!(r.check_at(ip("192.0.2.1"), now).is_ok());
        }
        assert!(r.tat.is_empty(), "an off limiter keeps no state");
    }

    #[test]
    fn burst_up_to_the_limit_then_steady_rate() {
        let r = RateLimiter::per_minute(6); // one per 10 s
        let t0 = Instant::now();
        for i in 0..6 {
            assert!(r.check_at(ip("192.0.2.1"), t0).is_ok(), "event {i}");
        }
        let wait = r.check_at(ip("192.0.2.1"), t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another address has its own allowance.
        assert!(r.check_at(ip("192.0.2.2"), t0).is_ok());
        // A refused event does not consume allowance: after 10 s one more passes.
        assert!(
            r.check_at(ip("192.0.2.1"), t0 + Duration::from_secs(9))
                .is_err()
        );
        assert!(
            r.check_at(ip("192.0.2.1"), t0 + Duration::from_secs(10))
                .is_ok()
        );
        assert!(
            r.check_at(ip("192.0.2.1"), t0 + Duration::from_secs(10))
                .is_err()
        );
        // After a quiet minute the whole burst is back.
        let later = t0 + Duration::from_secs(130);
        for i in 0..6 {
            assert!(r.check_at(ip("192.0.2.1"), later).is_ok(), "event {i}");
        }
        assert!(r.check_at(ip("192.0.2.1"), later).is_err());
    }

    #[test]
    fn mapped_ipv6_counts_as_ipv4() {
        let r = RateLimiter::per_minute(1);
        let now = Instant::now();
        assert!(r.check_at(ip("192.0.2.7"), now).is_ok());
        assert!(r.check_at(ip("::ffff:192.0.2.7"), now).is_err());
    }

    #[test]
    fn idle_entries_are_swept() {
        let r = RateLimiter::per_minute(60);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT as u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            r.check_at(a, t0).unwrap();
        }
        assert_eq!(r.tat.len(), SWEEP_AT);
        r.check_at(ip("192.0.2.1"), t0 + Duration::from_secs(5))
            .unwrap();
        assert_eq!(r.tat.len(), 1, "refilled entries dropped; the new one kept");
    }
}
