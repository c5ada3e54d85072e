//! Brute-force protection for password logins (IMAP LOGIN/AUTHENTICATE, SMTP AUTH, EWS
//! basic auth): pure bookkeeping with the clock passed in, wrapped by the daemon in a
//! mutex.
//!
//! Two mechanisms, because an attacker can rotate either the address or the account:
//!
//! - **Per source address, a delay.** After `threshold` failures, each further attempt
//!   from that address must wait `base_delay * 2^(failures - threshold)` (capped at
//!   `max_delay`) after its last failure before it is even checked. A success does not
//!   clear an address (one valid account must not launder an address that is guessing
//!   others). IPv4-mapped IPv6 sources count as their IPv4 address; native IPv6 sources
//!   are keyed by their `/ipv6_prefix` network (64 by default), because one client
//!   usually holds a whole /64.
//! - **Per account, a budget of failed password checks** (a generic cell rate: `burst`
//!   at once, then one per `refill`), keyed by the account the login resolves to, so
//!   every alias of a user shares one budget. A check is charged before it runs and
//!   given back when it succeeds, so a user's own logins never spend it and concurrent
//!   attempts cannot overdraw it. An attacker rotating addresses thus gets at most
//!   `burst + 60 s / refill` guesses per account per minute.
//! - **Per account, the addresses it last logged in from** (up to `known_per_account`,
//!   each for `known_for` after its last success), which are admitted without the budget. The budget
//!   alone would let an attacker who rotates addresses lock the user out by spending it;
//!   the user's own clients come from where they came from before and go on working.
//!   A guesser sharing such an address meets that address's delay, as before. What an
//!   attacker can still deny is a first login from a new address while he keeps the
//!   budget spent; nothing tells that login apart from his own.
//!
//! A key is forgotten `window` after its last failure (addresses) or once its budget is
//! full again (accounts). Each table is capped at `max_entries`: expired entries are
//! dropped first, then the oldest.

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
    /// Failed password checks an account may take at once.
    pub burst: u32,
    /// Then one more per this interval.
    pub refill: Duration,
    /// Addresses remembered per account as its own (admitted without the budget).
    pub known_per_account: usize,
    /// How long an address stays known after its last successful login.
    pub known_for: Duration,
    /// Entries kept per table (addresses, accounts).
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
            burst: 10,
            refill: Duration::from_secs(6),
            known_per_account: 8,
            known_for: Duration::from_secs(30 * 24 * 3600),
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

/// An address's failures and when the last one was.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: u64,
}

/// Entries that lapse at a deadline, indexed by (deadline, insertion sequence), so
/// dropping the lapsed ones and evicting the soonest to lapse are O(log n).
#[derive(Debug)]
struct Expiring<K, V> {
    map: HashMap<K, (V, u64, u64)>,
    order: BTreeMap<(u64, u64), K>,
    next_seq: u64,
}

impl<K: Hash + Eq + Clone, V: Copy> Expiring<K, V> {
    fn new() -> Self {
        Expiring {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The value of a key that has not lapsed by `now_ms`.
    fn get<Q>(&self, key: &Q, now_ms: u64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map
            .get(key)
            .filter(|&&(_, deadline, _)| deadline > now_ms)
            .map(|&(v, _, _)| v)
    }

    /// Drops the entries lapsed by `now_ms`.
    fn purge(&mut self, now_ms: u64) {
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let key = entry.remove();
            self.map.remove(&key);
        }
    }

    /// Sets `key` to lapse at `deadline` (removes it when that has passed); at `cap`
    /// entries the one soonest to lapse makes room.
    fn put(&mut self, key: K, value: V, deadline: u64, now_ms: u64, cap: usize) {
        if let Some((_, old_deadline, old_seq)) = self.map.remove(&key) {
            self.order.remove(&(old_deadline, old_seq));
        }
        if deadline <= now_ms {
            return;
        }
        while self.map.len() >= cap.max(1) {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&victim);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert((deadline, seq), key.clone());
        self.map.insert(key, (value, deadline, seq));
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Per-address failure counters with exponential delays, and per-account budgets of
/// failed password checks.
#[derive(Debug)]
pub struct FailureTracker {
    policy: FailurePolicy,
    /// Failures per address, lapsing `window` after the last one.
    by_ip: Expiring<u128, Failures>,
    /// Per account, the cell-rate algorithm's theoretical arrival time, lapsing when
    /// it has passed (the budget is full again).
    budgets: Expiring<String, u64>,
    known: KnownAddresses,
}

/// How a login was let through to its password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// From one of the account's own addresses: outside the budget.
    Known,
    /// One check taken from the account's budget.
    Charged,
}

impl FailureTracker {
    /// An empty tracker.
    pub fn new(policy: FailurePolicy) -> Self {
        FailureTracker {
            policy,
            by_ip: Expiring::new(),
            budgets: Expiring::new(),
            known: KnownAddresses::default(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &FailurePolicy {
        &self.policy
    }

    /// Whether a password from this address for this account may be checked now, and
    /// on what terms; a charged check is given back by [`Self::record_success`].
    /// `account` comes from [`account_key`].
    pub fn admit(
        &mut self,
        ip: IpAddr,
        account: &str,
        now_ms: u64,
    ) -> Result<Admission, RetryAfter> {
        let ip = self.ip_key(ip);
        let address_wait = self.by_ip.get(&ip, now_ms).map_or(0, |f| {
            f.last_ms
                .saturating_add(self.delay_ms(f.count))
                .saturating_sub(now_ms)
        });
        if address_wait > 0 {
            return Err(RetryAfter(Duration::from_millis(address_wait)));
        }
        if self
            .known
            .contains(account, ip, now_ms, duration_ms(self.policy.known_for))
        {
            return Ok(Admission::Known);
        }
        let interval = duration_ms(self.policy.refill).max(1);
        let tolerance = interval.saturating_mul(u64::from(self.policy.burst.max(1) - 1));
        self.budgets.purge(now_ms);
        let tat = self.budgets.get(account, now_ms).unwrap_or(0).max(now_ms);
        let owed = tat - now_ms;
        if owed > tolerance {
            return Err(RetryAfter(Duration::from_millis(owed - tolerance)));
        }
        let tat = tat + interval;
        self.budgets.put(
            account.to_string(),
            tat,
            tat,
            now_ms,
            self.policy.max_entries,
        );
        Ok(Admission::Charged)
    }

    /// A login succeeded: its charged check is given back and the address becomes one
    /// of the account's own. The address keeps its failure count.
    pub fn record_success(&mut self, ip: IpAddr, account: &str, admission: Admission, now_ms: u64) {
        if admission == Admission::Charged {
            let interval = duration_ms(self.policy.refill).max(1);
            let tat = self
                .budgets
                .get(account, now_ms)
                .unwrap_or(0)
                .saturating_sub(interval);
            self.budgets.put(
                account.to_string(),
                tat,
                tat,
                now_ms,
                self.policy.max_entries,
            );
        }
        let ip = self.ip_key(ip);
        let (window, per_account, cap) = (
            duration_ms(self.policy.known_for),
            self.policy.known_per_account,
            self.policy.max_entries,
        );
        self.known
            .insert(account, ip, now_ms, window, per_account, cap);
    }

    /// Counts a failed login against the address (the account paid when admitted).
    pub fn record_failure(&mut self, ip: IpAddr, now_ms: u64) {
        self.by_ip.purge(now_ms);
        let ip = self.ip_key(ip);
        let count = self.by_ip.get(&ip, now_ms).map_or(0, |f| f.count);
        let failures = Failures {
            count: count.saturating_add(1),
            last_ms: now_ms,
        };
        let deadline = now_ms.saturating_add(self.window_ms());
        self.by_ip
            .put(ip, failures, deadline, now_ms, self.policy.max_entries);
    }

    /// Entries held (failing addresses, accounts with a spent budget, accounts with
    /// known addresses), for metrics and tests.
    pub fn len(&self) -> (usize, usize, usize) {
        (self.by_ip.len(), self.budgets.len(), self.known.map.len())
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
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

/// The budget key of a login: the account it names, so every alias of a user shares
/// one budget; a login naming nobody is keyed by its normalised text (it costs a dummy
/// hash all the same, and must look like a real account).
pub fn account_key(user_id: Option<&str>, login: &str) -> String {
    match user_id {
        Some(id) => format!("user:{id}"),
        None => format!("name:{}", login_key(login)),
    }
}

/// One (address, account) pair's share of the tracker's state: what daemons on a
/// shared store keep in it so that N daemons give an attacker no more guesses than
/// one (`access::throttle`). A daemon seeds a scratch tracker with the slice
/// ([`FailureTracker::with_slice`]), runs the same `admit` / `record_*` rules, and
/// stores the slice back ([`FailureTracker::slice`]): one set of rules for both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    /// The address's failures: (count, last failure epoch ms).
    pub address: Option<(u32, u64)>,
    /// The account's budget: the cell-rate algorithm's theoretical arrival time.
    pub budget: Option<u64>,
    /// The account's own addresses (address key, last success epoch ms), oldest first.
    pub known: Vec<(u128, u64)>,
}

impl FailureTracker {
    /// A tracker holding only `slice`, the state of (`ip`, `account`).
    pub fn with_slice(
        policy: FailurePolicy,
        ip: IpAddr,
        account: &str,
        slice: &Slice,
        now_ms: u64,
    ) -> Self {
        let mut t = FailureTracker::new(policy);
        let key = t.ip_key(ip);
        if let Some((count, last_ms)) = slice.address {
            let deadline = last_ms.saturating_add(t.window_ms());
            t.by_ip.put(
                key,
                Failures { count, last_ms },
                deadline,
                now_ms,
                usize::MAX,
            );
        }
        if let Some(tat) = slice.budget {
            t.budgets
                .put(account.to_string(), tat, tat, now_ms, usize::MAX);
        }
        if !slice.known.is_empty() {
            t.known.map.insert(account.to_string(), slice.known.clone());
        }
        t
    }

    /// The state of (`ip`, `account`) as it stands at `now_ms` (lapsed parts left out).
    pub fn slice(&self, ip: IpAddr, account: &str, now_ms: u64) -> Slice {
        let window = duration_ms(self.policy.known_for);
        Slice {
            address: self
                .by_ip
                .get(&self.ip_key(ip), now_ms)
                .map(|f| (f.count, f.last_ms)),
            budget: self.budgets.get(account, now_ms),
            known: self
                .known
                .map
                .get(account)
                .map(|list| {
                    list.iter()
                        .copied()
                        .filter(|&(_, at)| at.saturating_add(window) > now_ms)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// When the address's part of a slice lapses (epoch ms), for a store's expiry.
    pub fn address_expiry(&self, slice: &Slice) -> Option<u64> {
        slice
            .address
            .map(|(_, last)| last.saturating_add(self.window_ms()))
    }

    /// When the account's part of a slice (budget and known addresses) lapses.
    pub fn account_expiry(&self, slice: &Slice) -> Option<u64> {
        let window = duration_ms(self.policy.known_for);
        let known = slice
            .known
            .iter()
            .map(|&(_, at)| at.saturating_add(window))
            .max();
        slice.budget.max(known)
    }

    /// The address key `ip` is counted under (IPv6 by its prefix).
    pub fn address_key(&self, ip: IpAddr) -> u128 {
        self.ip_key(ip)
    }
}

/// Per account, the addresses of its recent successful logins, most recent last.
#[derive(Debug, Default)]
struct KnownAddresses {
    map: HashMap<String, Vec<(u128, u64)>>,
}

impl KnownAddresses {
    fn contains(&self, account: &str, ip: u128, now_ms: u64, window_ms: u64) -> bool {
        self.map.get(account).is_some_and(|list| {
            list.iter()
                .any(|&(k, at)| k == ip && at.saturating_add(window_ms) > now_ms)
        })
    }

    fn insert(
        &mut self,
        account: &str,
        ip: u128,
        now_ms: u64,
        window_ms: u64,
        per_account: usize,
        cap: usize,
    ) {
        if !self.map.contains_key(account) && self.map.len() >= cap.max(1) {
            // Full: forget accounts whose addresses all went quiet, else the stalest.
            self.map.retain(|_, list| {
                list.last()
                    .is_some_and(|&(_, at)| at.saturating_add(window_ms) > now_ms)
            });
            if self.map.len() >= cap.max(1)
                && let Some(stalest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, list)| list.last().map_or(0, |&(_, at)| at))
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&stalest);
            }
        }
        let list = self.map.entry(account.to_string()).or_default();
        list.retain(|&(k, at)| k != ip && at.saturating_add(window_ms) > now_ms);
        list.push((ip, now_ms));
        let excess = list.len().saturating_sub(per_account.max(1));
        list.drain(..excess);
    }
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
