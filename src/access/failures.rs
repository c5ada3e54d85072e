//! Brute-force protection for password logins (IMAP LOGIN/AUTHENTICATE, SMTP AUTH, EWS
//! basic auth): pure bookkeeping with the clock passed in, wrapped by the daemon in a
//! mutex.
//!
//! Failures are counted separately per source address and per login name, so neither
//! rotating addresses against one account nor rotating accounts from one address escapes.
//! After `threshold` failures, each further attempt on that key must wait
//! `base_delay * 2^(failures - threshold)` (capped at `max_delay`) after the last failure
//! before it is even checked. The delay is a slowdown, never a lockout, so an attacker
//! can at worst slow a victim's login down to one try per `max_delay`.
//! A key's count is forgotten `window` after its last failure; a success clears the
//! login's count but not the address's (one valid account must not launder an address
//! that is guessing others). IPv4-mapped IPv6 sources count as their IPv4 address; native
//! IPv6 sources are keyed by their `/ipv6_prefix` network (64 by default), because one
//! client usually holds a whole /64. Each table is capped at `max_entries`: expired
//! entries are dropped first, then the entry with the oldest last failure.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use super::iprange::ip_key;

/// Tuning of the tracker (config keys in the daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures tolerated without delay.
    pub threshold: u32,
    /// How long after its last failure a key is forgotten.
    pub window: Duration,
    /// First delay once the threshold is reached.
    pub base_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Entries kept per table (addresses, logins).
    pub max_entries: usize,
    /// IPv6 sources are keyed by this many leading bits.
    pub ipv6_prefix: u8,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            threshold: 5,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5 * 60),
            max_entries: 100_000,
            ipv6_prefix: 64,
        }
    }
}

/// Refusal to even check credentials yet; protocols answer with their "try later"
/// (IMAP `NO [UNAVAILABLE]`, SMTP `454 4.7.0`, HTTP 429 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins; retry after {} ms", .0.as_millis())]
pub struct RetryAfter(pub Duration);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_ms: u64,
    seq: u64,
}

/// One keyed table with an index by (last failure, insertion sequence) for expiry and
/// eviction in O(log n).
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Entry>,
    order: BTreeMap<(u64, u64), K>,
    next_seq: u64,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn purge(&mut self, now_ms: u64, window_ms: u64) {
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0.saturating_add(window_ms) > now_ms {
                break;
            }
            let key = entry.remove();
            self.map.remove(&key);
        }
    }

    fn live(&self, key: &K, now_ms: u64, window_ms: u64) -> Option<Entry> {
        self.map
            .get(key)
            .filter(|e| e.last_ms.saturating_add(window_ms) > now_ms)
            .copied()
    }

    fn record(&mut self, key: K, now_ms: u64, window_ms: u64, cap: usize) {
        let previous = self.live(&key, now_ms, window_ms).map_or(0, |e| e.failures);
        if let Some(old) = self.map.remove(&key) {
            self.order.remove(&(old.last_ms, old.seq));
        }
        while self.map.len() >= cap.max(1) {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&victim);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert((now_ms, seq), key.clone());
        self.map.insert(
            key,
            Entry {
                failures: previous.saturating_add(1),
                last_ms: now_ms,
                seq,
            },
        );
    }

    fn clear(&mut self, key: &K) {
        if let Some(old) = self.map.remove(key) {
            self.order.remove(&(old.last_ms, old.seq));
        }
    }
}

/// Per-address and per-login failure counters with exponential delays.
#[derive(Debug)]
pub struct FailureTracker {
    policy: FailurePolicy,
    by_ip: Table<u128>,
    by_login: Table<String>,
}

impl FailureTracker {
    /// An empty tracker.
    pub fn new(policy: FailurePolicy) -> Self {
        FailureTracker {
            policy,
            by_ip: Table::new(),
            by_login: Table::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &FailurePolicy {
        &self.policy
    }

    /// Whether credentials from this address for this login may be checked now.
    pub fn check(&self, ip: IpAddr, login: &str, now_ms: u64) -> Result<(), RetryAfter> {
        let window = self.window_ms();
        let waits = [
            self.by_ip.live(&self.ip_key(ip), now_ms, window),
            self.by_login.live(&login_key(login), now_ms, window),
        ]
        .into_iter()
        .flatten()
        .map(|e| {
            e.last_ms
                .saturating_add(self.delay_ms(e.failures))
                .saturating_sub(now_ms)
        });
        match waits.max() {
            Some(ms) if ms > 0 => Err(RetryAfter(Duration::from_millis(ms))),
            _ => Ok(()),
        }
    }

    /// Counts a failed login against both the address and the login name.
    pub fn record_failure(&mut self, ip: IpAddr, login: &str, now_ms: u64) {
        let window = self.window_ms();
        let cap = self.policy.max_entries;
        self.by_ip.purge(now_ms, window);
        self.by_login.purge(now_ms, window);
        let ip_key = self.ip_key(ip);
        self.by_ip.record(ip_key, now_ms, window, cap);
        self.by_login.record(login_key(login), now_ms, window, cap);
    }

    /// A successful login clears the login's count; the address keeps its count.
    pub fn record_success(&mut self, _ip: IpAddr, login: &str, now_ms: u64) {
        let window = self.window_ms();
        self.by_ip.purge(now_ms, window);
        self.by_login.purge(now_ms, window);
        self.by_login.clear(&login_key(login));
    }

    /// Entries held (addresses, logins), for metrics and tests.
    pub fn len(&self) -> (usize, usize) {
        (self.by_ip.map.len(), self.by_login.map.len())
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.by_ip.map.is_empty() && self.by_login.map.is_empty()
    }

    /// Delay owed after `failures` failures.
    pub fn delay_for(&self, failures: u32) -> Duration {
        Duration::from_millis(self.delay_ms(failures))
    }

    fn delay_ms(&self, failures: u32) -> u64 {
        let Some(excess) = failures.checked_sub(self.policy.threshold) else {
            return 0;
        };
        let base = duration_ms(self.policy.base_delay);
        let factor = 1u64 << excess.min(62);
        base.saturating_mul(factor)
            .min(duration_ms(self.policy.max_delay))
    }

    fn window_ms(&self) -> u64 {
        duration_ms(self.policy.window)
    }

    fn ip_key(&self, ip: IpAddr) -> u128 {
        match ip.to_canonical() {
            v4 @ IpAddr::V4(_) => ip_key(v4),
            v6 => {
                let bits = u32::from(self.policy.ipv6_prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                ip_key(v6) & mask
            }
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Login names compare case-insensitively and are bounded to 256 characters so a huge
/// name cannot inflate memory.
fn login_key(login: &str) -> String {
    login
        .trim()
        .chars()
        .take(256)
        .flat_map(char::to_lowercase)
        .collect()
}
