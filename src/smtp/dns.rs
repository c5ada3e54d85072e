//! DNS for the sender checks: a resolver with short query timeouts and negative
//! caching, and a cache of mailgate's own in front of it that remembers parsed
//! answers for their TTL and *failures* for a minute.
//!
//! Why: mail-auth calls a cache before each lookup and inserts what it resolves, but
//! a lookup that fails (timeout, SERVFAIL) is inserted nowhere, and hickory caches
//! neither failures nor "no such name" answers without an SOA. With a resolver that
//! drops queries, every message then waited for hickory's timeout, and sessions
//! sharing one in-flight query all waited together (measured: 88 times slower than
//! with static records). Here each check records the names it missed; when the check
//! ends in a DNS failure (or hits its deadline) those names are remembered as failed
//! for [`FAILURE_TTL`], so the next messages get TEMPERROR at once instead of waiting.
//! A failure is keyed by the name's hash (the cache trait hands out borrowed keys of
//! a generic type); a collision would cost one wrong TEMPERROR for a minute.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{DnsError, MessageAuthenticator, RecordSet, ResolverCache, Txt};

use super::sender_auth::SenderAuthError;

/// How long a failed lookup is answered from memory.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);
/// How long a "no such record" answer is kept when its zone gives no SOA TTL.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Entries per cache; when full, expired ones go, else all (a burst of new names).
const MAX_ENTRIES: usize = 20_000;

/// A resolver asking `nameservers` (or `/etc/resolv.conf`'s), each query given
/// `query_timeout` and one retry, with "no such record" answers cached for a minute.
pub fn resolver(
    nameservers: &[SocketAddr],
    query_timeout: Duration,
) -> Result<MessageAuthenticator, SenderAuthError> {
    let (config, mut opts) = if nameservers.is_empty() {
        mail_auth::hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| SenderAuthError(format!("cannot read /etc/resolv.conf: {e}")))?
    } else {
        let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
        for addr in nameservers {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            config.add_name_server(ns);
        }
        (config, ResolverOpts::default())
    };
    opts.timeout = query_timeout;
    opts.attempts = 1;
    opts.negative_min_ttl = Some(NEGATIVE_TTL);
    MessageAuthenticator::new(config, opts)
        .map_err(|e| SenderAuthError(format!("cannot set up the DNS resolver: {e}")))
}

/// What a cached failure answers, for the record types that can say "failed".
pub trait Failure: Sized {
    /// `None`: this type cannot carry a failure, so the lookup is made again.
    fn failure() -> Option<Self>;
}

impl Failure for Txt {
    fn failure() -> Option<Self> {
        Some(Txt::Error(mail_auth::Error::Dns(DnsError::Resolver(
            "failed recently (cached)".into(),
        ))))
    }
}

impl<T> Failure for RecordSet<T> {
    fn failure() -> Option<Self> {
        None
    }
}

/// Answers by name with their expiry, and failed names by hash.
pub struct TtlCache<K, V> {
    hasher: RandomState,
    answers: Mutex<HashMap<K, (V, Instant)>>,
    failed: Mutex<HashMap<u64, Instant>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            hasher: RandomState::new(),
            answers: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone + Failure> TtlCache<K, V> {
    fn hash<Q: Hash + ?Sized>(&self, name: &Q) -> u64 {
        self.hasher.hash_one(name)
    }

    fn get<Q>(&self, name: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((v, until)) = self.answers.lock().ok()?.get(name)
            && *until > now
        {
            return Some(v.clone());
        }
        let failed_until = *self.failed.lock().ok()?.get(&self.hash(name))?;
        (failed_until > now).then(V::failure).flatten()
    }

    fn insert(&self, key: K, value: V, until: Instant, now: Instant) {
        let Ok(mut answers) = self.answers.lock() else {
            return;
        };
        if answers.len() >= MAX_ENTRIES {
            answers.retain(|_, (_, u)| *u > now);
            if answers.len() >= MAX_ENTRIES {
                answers.clear();
            }
        }
        if let Ok(mut failed) = self.failed.lock() {
            failed.remove(&self.hash(&key));
        }
        answers.insert(key, (value, until));
    }

    fn fail(&self, hash: u64, now: Instant) {
        let Ok(mut failed) = self.failed.lock() else {
            return;
        };
        if failed.len() >= MAX_ENTRIES {
            failed.retain(|_, u| *u > now);
            if failed.len() >= MAX_ENTRIES {
                failed.clear();
            }
        }
        failed.insert(hash, now + FAILURE_TTL);
    }

    /// Entries held (answers, failures).
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        (
            self.answers.lock().map_or(0, |m| m.len()),
            self.failed.lock().map_or(0, |m| m.len()),
        )
    }
}

/// One check's view of a cache: answers from `first` (static records), then the
/// shared cache; the names it had to look up are noted, so that a check ending in a
/// DNS failure can remember them as failed.
pub struct Tracked<'a, F, K, V> {
    first: &'a F,
    cache: &'a TtlCache<K, V>,
    missed: Mutex<Vec<u64>>,
}

impl<'a, F, K: Hash + Eq, V: Clone + Failure> Tracked<'a, F, K, V> {
    /// A fresh view for one check.
    pub fn new(first: &'a F, cache: &'a TtlCache<K, V>) -> Self {
        Tracked {
            first,
            cache,
            missed: Mutex::new(Vec::new()),
        }
    }

    /// Remembers every name this check looked up and got no answer for as failed.
    pub fn failed(&self) {
        let now = Instant::now();
        if let Ok(missed) = self.missed.lock() {
            for &h in missed.iter() {
                self.cache.fail(h, now);
            }
        }
    }
}

impl<F, K, V> ResolverCache<K, V> for Tracked<'_, F, K, V>
where
    F: ResolverCache<K, V>,
    K: Hash + Eq,
    V: Clone + Failure,
{
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.first.get(name) {
            return Some(v);
        }
        if let Some(v) = self.cache.get(name, Instant::now()) {
            return Some(v);
        }
        if let Ok(mut missed) = self.missed.lock() {
            missed.push(self.cache.hash(name));
        }
        None
    }

    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let hash = self.cache.hash(&key);
        if let Ok(mut missed) = self.missed.lock() {
            missed.retain(|&h| h != hash);
        }
        self.cache.insert(key, value, valid_until, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first layer that knows nothing.
    struct Empty;
    impl ResolverCache<Box<str>, Txt> for Empty {
        fn get<Q>(&self, _: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            None
        }
        fn remove<Q>(&self, _: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            None
        }
        fn insert(&self, _: Box<str>, _: Txt, _: Instant) {}
    }

    fn is_failure(t: &Txt) -> bool {
        matches!(t, Txt::Error(mail_auth::Error::Dns(DnsError::Resolver(_))))
    }

    #[test]
    fn answers_are_kept_for_their_ttl_and_failures_for_a_minute() {
        let cache: TtlCache<Box<str>, Txt> = TtlCache::default();
        let check = Tracked::new(&Empty, &cache);
        assert!(check.get::<str>("a.test.").is_none(), "a miss");
        assert!(check.get::<str>("b.test.").is_none(), "a miss");
        let now = Instant::now();
        let answer = Txt::Error(mail_auth::Error::Dns(DnsError::InvalidRecordType));
        check.insert("a.test.".into(), answer, now + Duration::from_secs(300));
        check.failed();
        // a.test. was answered: kept; b.test. never was: failed for a minute.
        let next = Tracked::new(&Empty, &cache);
        let a = next.get::<str>("a.test.").expect("cached answer");
        assert!(!is_failure(&a));
        let b = next.get::<str>("b.test.").expect("cached failure");
        assert!(is_failure(&b));
        assert!(next.get::<str>("c.test.").is_none());
        assert_eq!(cache.len(), (1, 1));
        // Expiry.
        let later = now + Duration::from_secs(301);
        assert!(cache.get::<str>("a.test.", later).is_none());
        assert!(
            cache
                .get::<str>("b.test.", now + FAILURE_TTL + Duration::from_secs(1))
                .is_none()
        );
        // A later answer replaces the failure.
        next.insert("b.test.".into(), a.clone(), now + Duration::from_secs(300));
        assert!(!is_failure(&cache.get::<str>("b.test.", now).unwrap()));
    }

    #[test]
    fn record_sets_cannot_fail_from_memory() {
        let cache: TtlCache<Box<str>, RecordSet<std::net::Ipv4Addr>> = TtlCache::default();
        cache.fail(cache.hash("x.test."), Instant::now());
        assert!(
            cache.get::<str>("x.test.", Instant::now()).is_none(),
            "looked up again"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let cache: TtlCache<Box<str>, Txt> = TtlCache::default();
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES + 10) {
            let answer = Txt::Error(mail_auth::Error::Dns(DnsError::InvalidRecordType));
            cache.insert(
                format!("n{i}.test.").into(),
                answer,
                now + Duration::from_secs(60),
                now,
            );
            cache.fail(i as u64, now);
        }
        let (answers, failures) = cache.len();
        assert!(answers <= MAX_ENTRIES && failures <= MAX_ENTRIES);
    }
}
