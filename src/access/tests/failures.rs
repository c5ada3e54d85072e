//! Brute-force tracker: address delays (growth, cap, window expiry, normalisation),
//! per-account budgets (shared by aliases, refunded on success, bounded guesses),
//! known addresses outside the budget, and bounded memory.

use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;

use crate::access::{Admission, FailurePolicy, FailureTracker, RetryAfter, account_key};

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

/// Fails `n` times from `from`, each as soon as the address allows, each on a
/// different account (so no budget interferes); returns the time of the last failure.
fn fail_as_allowed(t: &mut FailureTracker, from: IpAddr, mut now: u64, n: u32) -> u64 {
    for i in 0..n {
        let account = format!("name:victim{now}-{i}");
        if let Err(RetryAfter(d)) = t.admit(from, &account, now) {
            now += d.as_millis() as u64;
        }
        assert!(t.admit(from, &account, now).is_ok());
        t.record_failure(from, now);
    }
    now
}

fn address_wait(t: &mut FailureTracker, from: IpAddr, now: u64) -> Result<(), RetryAfter> {
    t.admit(from, "name:someone-fresh", now).map(|_| ())
}

#[test]
fn address_delays_grow_exponentially_and_cap() {
    let mut t = tracker();
    let a = ip("192.0.2.1");
    let mut now = fail_as_allowed(&mut t, a, T, 4);
    assert!(
        address_wait(&mut t, a, now).is_ok(),
        "four failures cost nothing"
    );
    let mut seen = Vec::new();
    for _ in 0..12 {
        now = fail_as_allowed(&mut t, a, now, 1);
        let Err(RetryAfter(d)) = address_wait(&mut t, a, now) else {
            panic!("expected a delay");
        };
        seen.push(d.as_secs());
    }
    assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    // Part way through a delay, only the remainder is owed.
    assert_eq!(
        address_wait(&mut t, a, now + 100_000),
        Err(RetryAfter(Duration::from_secs(200)))
    );
    assert!(address_wait(&mut t, a, now + 300_000).is_ok());
}

#[test]
fn an_account_budget_bounds_guesses_from_rotating_addresses() {
    let mut t = tracker();
    let alice = account_key(Some("u-alice"), "alice@acme.test");
    // One guess per fresh address, two per second for two minutes.
    let mut checked = 0;
    for i in 0..240u32 {
        let now = T + u64::from(i) * 500;
        if t.admit(v4(0x0a00_0000 + i), &alice, now).is_ok() {
            checked += 1;
            t.record_failure(v4(0x0a00_0000 + i), now);
        }
    }
    // burst 10, then one per 6 s: 10 + 119.5 s / 6 s.
    assert_eq!(checked, 10 + 19, "guesses in two minutes");
    // A fresh address with the right password is refused too: nothing tells them apart.
    assert!(t.admit(ip("198.51.100.7"), &alice, T + 119_999).is_err());
}

#[test]
fn aliases_share_the_budget_of_their_account() {
    let id = Some("u-alice");
    assert_eq!(
        account_key(id, "alice@acme.test"),
        account_key(id, "al@acme.test")
    );
    assert_ne!(
        account_key(None, "alice@acme.test"),
        account_key(id, "alice@acme.test")
    );
    // Unknown names are keyed by their text, case-insensitively and bounded.
    assert_eq!(account_key(None, " BOB@x "), account_key(None, "bob@x"));
    let huge = "x".repeat(100_000);
    assert!(account_key(None, &huge).len() < 300);
}

#[test]
fn a_known_address_is_admitted_while_the_budget_is_spent() {
    let mut t = tracker();
    let alice = account_key(Some("u-alice"), "alice@acme.test");
    let home = ip("203.0.113.5");
    let admission = t.admit(home, &alice, T).unwrap();
    assert_eq!(admission, Admission::Charged, "not yet known");
    t.record_success(home, &alice, admission, T);
    // The success gave its check back: the whole burst is still there.
    for i in 0..10u32 {
        assert_eq!(
            t.admit(v4(0x0a00_0000 + i), &alice, T + 1),
            Ok(Admission::Charged)
        );
        t.record_failure(v4(0x0a00_0000 + i), T + 1);
    }
    assert!(
        t.admit(ip("198.51.100.7"), &alice, T + 2).is_err(),
        "budget spent"
    );
    // Her own address goes on working, twenty times in twenty.
    for k in 0..20 {
        let now = T + 2 + k;
        assert_eq!(t.admit(home, &alice, now), Ok(Admission::Known));
        t.record_success(home, &alice, Admission::Known, now);
    }
    // Known for `known_for`, then it must earn its place again.
    let later = T + 21 + FailurePolicy::default().known_for.as_millis() as u64;
    assert_eq!(t.admit(home, &alice, later), Ok(Admission::Charged));
}

#[test]
fn a_known_address_that_guesses_meets_its_address_delay() {
    let mut t = tracker();
    let alice = account_key(Some("u-alice"), "alice");
    let office = ip("203.0.113.5");
    t.record_success(office, &alice, Admission::Known, T);
    let now = fail_as_allowed(&mut t, office, T, 5);
    assert!(t.admit(office, &alice, now).is_err());
}

#[test]
fn counts_expire_after_the_window() {
    let a = ip("192.0.2.1");
    let window = FailurePolicy::default().window.as_millis() as u64;
    // Just inside the window the count survives: a ninth failure owes 16 s.
    let mut t = tracker();
    let last = fail_as_allowed(&mut t, a, T, 8);
    t.record_failure(a, last + window - 1);
    assert_eq!(
        address_wait(&mut t, a, last + window - 1),
        Err(RetryAfter(Duration::from_secs(16)))
    );
    // From the window's end on, the counts are gone: a new failure costs nothing.
    let mut t = tracker();
    let last = fail_as_allowed(&mut t, a, T, 8);
    t.record_failure(a, last + window);
    assert!(address_wait(&mut t, a, last + window).is_ok());
    assert_eq!(t.len().0, 1);
}

#[test]
fn ipv4_mapped_and_ipv6_prefix_normalisation() {
    let mut t = tracker();
    let now = fail_as_allowed(&mut t, ip("::ffff:192.0.2.1"), T, 5);
    assert!(address_wait(&mut t, ip("192.0.2.1"), now).is_err());
    let now = fail_as_allowed(&mut t, ip("2001:db8:1:2::1"), now, 5);
    assert!(
        address_wait(&mut t, ip("2001:db8:1:2:ffff::9"), now).is_err(),
        "same /64"
    );
    assert!(
        address_wait(&mut t, ip("2001:db8:1:3::1"), now).is_ok(),
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
        let now = T + u64::from(i);
        let account = format!("name:user{i}");
        let _ = t.admit(addr, &account, now);
        t.record_failure(addr, now);
        t.record_success(addr, &account, Admission::Known, now);
        let (ips, budgets, known) = t.len();
        assert!(ips <= 100 && budgets <= 100 && known <= 100);
    }
    let now = T + 1_000;
    // The newest are remembered, the oldest forgotten.
    assert!(address_wait(&mut t, v4(0x0a00_0000 + 999), now).is_err());
    assert!(address_wait(&mut t, v4(0x0a00_0000), now).is_ok());
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

    /// Random interleavings never panic, never exceed the caps, and never admit more
    /// charged checks for one account than the budget allows.
    #[test]
    fn random_traffic_stays_bounded(
        ops in prop::collection::vec((0u8..3, 0u32..50, 0u64..20_000), 0..300)
    ) {
        let policy = FailurePolicy { max_entries: 16, ..FailurePolicy::default() };
        let mut t = FailureTracker::new(policy.clone());
        let mut now = T;
        let mut charged: Vec<u64> = Vec::new();
        for (op, who, dt) in ops {
            now += dt;
            let addr = v4(0xc000_0200 + who);
            let account = "user:only-one";
            match op {
                0 => t.record_failure(addr, now),
                1 => t.record_success(addr, account, Admission::Known, now),
                _ => match t.admit(addr, account, now) {
                    Ok(Admission::Charged) => charged.push(now),
                    Ok(Admission::Known) => {}
                    Err(RetryAfter(d)) => prop_assert!(d <= policy.max_delay.max(policy.refill * policy.burst)),
                },
            }
            // Never more than burst + minute/refill charged checks in any minute.
            let in_minute = charged.iter().filter(|&&at| at + 60_000 > now).count() as u64;
            prop_assert!(in_minute <= u64::from(policy.burst) + 60_000 / policy.refill.as_millis() as u64);
            let (ips, budgets, known) = t.len();
            prop_assert!(ips <= 16 && budgets <= 16 && known <= 16);
        }
    }
}
