//! Brute-force tracker: growth and cap of delays, reset on success, window expiry,
//! address normalisation and bounded memory.

use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;

use crate::access::{FailurePolicy, FailureTracker, RetryAfter};

const T: u64 = 1_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(n.into())
}

fn tracker() -> FailureTracker {
    FailureTracker::new(FailurePolicy::default())
}

/// Fails `n` times, each as soon as allowed; returns the time of the last failure.
fn fail_as_allowed(t: &mut FailureTracker, from: IpAddr, login: &str, mut now: u64, n: u32) -> u64 {
    for _ in 0..n {
        if let Err(RetryAfter(d)) = t.check(from, login, now) {
            now += d.as_millis() as u64;
        }
        assert!(t.check(from, login, now).is_ok());
        t.record_failure(from, login, now);
    }
    now
}

#[test]
fn delays_grow_exponentially_and_cap() {
    let mut t = tracker();
    let a = ip("192.0.2.1");
    let mut now = fail_as_allowed(&mut t, a, "alice", T, 4);
    assert!(
        t.check(a, "alice", now).is_ok(),
        "four failures cost nothing"
    );
    let mut seen = Vec::new();
    for _ in 0..12 {
        now = fail_as_allowed(&mut t, a, "alice", now, 1);
        let Err(RetryAfter(d)) = t.check(a, "alice", now) else {
            panic!("expected a delay");
        };
        seen.push(d.as_secs());
    }
    assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    // Part way through a delay, only the remainder is owed.
    assert_eq!(
        t.check(a, "alice", now + 100_000),
        Err(RetryAfter(Duration::from_secs(200)))
    );
    assert!(t.check(a, "alice", now + 300_000).is_ok());
}

#[test]
fn address_and_login_are_tracked_separately() {
    let mut t = tracker();
    let a = ip("192.0.2.1");
    let now = fail_as_allowed(&mut t, a, "alice", T, 5);
    // Same address, another login: the address is throttled.
    assert!(t.check(a, "bob", now).is_err());
    // Another address, same login: the login is throttled.
    assert!(t.check(ip("198.51.100.7"), "alice", now).is_err());
    // Neither: free.
    assert!(t.check(ip("198.51.100.7"), "bob", now).is_ok());
    // Login names compare case-insensitively, ignoring surrounding space.
    assert!(t.check(ip("198.51.100.7"), " ALICE ", now).is_err());
}

#[test]
fn success_clears_the_login_but_not_the_address() {
    let mut t = tracker();
    let a = ip("192.0.2.1");
    let now = fail_as_allowed(&mut t, a, "alice", T, 5) + 1_000;
    t.record_success(a, "alice", now);
    assert!(t.check(ip("198.51.100.7"), "alice", now).is_ok());
    assert!(t.check(a, "bob", now).is_ok(), "delay already served");
    // The address still counts five failures: its next failure owes 2 s.
    t.record_failure(a, "carol", now);
    assert_eq!(
        t.check(a, "dave", now),
        Err(RetryAfter(Duration::from_secs(2)))
    );
    // Carol has one failure only.
    assert!(t.check(ip("198.51.100.7"), "carol", now).is_ok());
}

#[test]
fn counts_expire_after_the_window() {
    let a = ip("192.0.2.1");
    let window = FailurePolicy::default().window.as_millis() as u64;
    // Just inside the window the count survives: a ninth failure owes 16 s.
    let mut t = tracker();
    let last = fail_as_allowed(&mut t, a, "alice", T, 8);
    t.record_failure(a, "alice", last + window - 1);
    assert_eq!(
        t.check(a, "alice", last + window - 1),
        Err(RetryAfter(Duration::from_secs(16)))
    );
    // From the window's end on, the counts are gone: a new failure costs nothing.
    let mut t = tracker();
    let last = fail_as_allowed(&mut t, a, "alice", T, 8);
    t.record_failure(a, "alice", last + window);
    assert!(t.check(a, "alice", last + window).is_ok());
    assert_eq!(t.len(), (1, 1));
}

#[test]
fn ipv4_mapped_and_ipv6_prefix_normalisation() {
    let mut t = tracker();
    let now = fail_as_allowed(&mut t, ip("::ffff:192.0.2.1"), "a", T, 5);
    assert!(t.check(ip("192.0.2.1"), "b", now).is_err());
    let now = fail_as_allowed(&mut t, ip("2001:db8:1:2::1"), "c", now, 5);
    assert!(
        t.check(ip("2001:db8:1:2:ffff::9"), "d", now).is_err(),
        "same /64"
    );
    assert!(
        t.check(ip("2001:db8:1:3::1"), "d", now).is_ok(),
        "other /64"
    );
}

#[test]
fn memory_is_bounded_and_oldest_entries_go_first() {
    let mut t = FailureTracker::new(FailurePolicy {
        max_entries: 100,
        threshold: 1,
        ..FailurePolicy::default()
    });
    for i in 0..1_000u32 {
        let addr = v4(0x0a00_0000 + i);
        t.record_failure(addr, &format!("user{i}"), T + u64::from(i));
        let (ips, logins) = t.len();
        assert!(ips <= 100 && logins <= 100);
    }
    let now = T + 1_000;
    // The newest are remembered, the oldest forgotten.
    assert!(t.check(v4(0x0a00_0000 + 999), "x", now).is_err());
    assert!(t.check(v4(0x0a00_0000), "x", now).is_ok());
    // Expired entries are purged on the next write.
    let later = now + FailurePolicy::default().window.as_millis() as u64;
    t.record_success(ip("192.0.2.1"), "nobody", later);
    assert!(t.is_empty());
}

#[test]
fn huge_login_names_are_bounded() {
    let mut t = tracker();
    let huge = "x".repeat(100_000);
    let now = fail_as_allowed(&mut t, ip("192.0.2.1"), &huge, T, 5);
    // Names equal in their first 256 characters share a counter.
    let similar = format!("{}y", "x".repeat(99_999));
    assert!(t.check(ip("198.51.100.1"), &similar, now).is_err());
}

proptest! {
    #[test]
    fn delays_are_monotone_and_capped(a in 0u32..200, b in 0u32..200) {
        let t = tracker();
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(t.delay_for(lo) <= t.delay_for(hi));
        prop_assert!(t.delay_for(hi) <= t.policy().max_delay);
        prop_assert_eq!(t.delay_for(lo.min(4)), Duration::ZERO);
    }

    /// Random interleavings never panic and never exceed the cap.
    #[test]
    fn random_traffic_stays_bounded(
        ops in prop::collection::vec((0u8..3, 0u32..50, 0u64..600_000), 0..300)
    ) {
        let mut t = FailureTracker::new(FailurePolicy { max_entries: 16, ..FailurePolicy::default() });
        let mut now = T;
        for (op, who, dt) in ops {
            now += dt;
            let addr = v4(0xc000_0200 + who);
            let login = format!("u{}", who % 7);
            match op {
                0 => t.record_failure(addr, &login, now),
                1 => t.record_success(addr, &login, now),
                _ => {
                    if let Err(RetryAfter(d)) = t.check(addr, &login, now) {
                        prop_assert!(d <= t.policy().max_delay);
                    }
                }
            }
            let (ips, logins) = t.len();
            prop_assert!(ips <= 16 && logins <= 16);
        }
    }
}
