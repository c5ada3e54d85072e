//! Where login throttling keeps its state: in memory for a daemon alone, in the
//! store for daemons sharing one (PostgreSQL), so that an attacker gets no more
//! guesses from N daemons than from one (issue 19).
//!
//! Both run the same rules ([`FailureTracker`]): on a shared store each step
//! reads the (address, account) pair's [`Slice`] under a lock every daemon
//! honours, seeds a scratch tracker with it, runs the step, and writes the slice
//! back, in one transaction. A login costs two such transactions (admission, then
//! its outcome). When the store cannot be reached the daemon falls back to its own
//! memory for that step (logged): throttling per daemon, never none.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::{Admission, FailurePolicy, FailureTracker, RetryAfter, Slice};
use crate::store::Backend;

/// The throttle state of every login path of one daemon.
pub struct Throttle {
    policy: FailurePolicy,
    local: Mutex<FailureTracker>,
    shared: Option<Arc<dyn Backend>>,
}

impl Throttle {
    /// State in this daemon's memory.
    pub fn local(policy: FailurePolicy) -> Self {
        Throttle {
            local: Mutex::new(FailureTracker::new(policy.clone())),
            policy,
            shared: None,
        }
    }

    /// State in `store` when it is shared by several daemons, else in memory.
    pub fn for_store(policy: FailurePolicy, store: Arc<dyn Backend>) -> Self {
        let shared = store.shared_state().is_some().then_some(store);
        Throttle {
            shared,
            ..Throttle::local(policy)
        }
    }

    /// [`FailureTracker::admit`].
    pub async fn admit(
        &self,
        ip: IpAddr,
        account: &str,
        now_ms: u64,
    ) -> Result<Admission, RetryAfter> {
        self.step(ip, account, now_ms, true, |t| t.admit(ip, account, now_ms))
            .await
    }

    /// [`FailureTracker::record_success`].
    pub async fn record_success(
        &self,
        ip: IpAddr,
        account: &str,
        admission: Admission,
        now_ms: u64,
    ) {
        self.step(ip, account, now_ms, true, |t| {
            t.record_success(ip, account, admission, now_ms)
        })
        .await
    }

    /// [`FailureTracker::record_failure`] (the address only).
    pub async fn record_failure(&self, ip: IpAddr, account: &str, now_ms: u64) {
        self.step(ip, account, now_ms, false, |t| t.record_failure(ip, now_ms))
            .await
    }

    /// Runs `f` on the shared slice of (`ip`, `account`) — the address alone
    /// unless `with_account` — or on this daemon's memory.
    async fn step<R: Send>(
        &self,
        ip: IpAddr,
        account: &str,
        now_ms: u64,
        with_account: bool,
        f: impl Fn(&mut FailureTracker) -> R + Send + Sync,
    ) -> R {
        if let Some(state) = self.shared.as_ref().and_then(|s| s.shared_state()) {
            let scratch = FailureTracker::new(self.policy.clone());
            let mut keys = vec![address_key(scratch.address_key(ip))];
            if with_account {
                keys.push(account_key(account));
            }
            let mut out = None;
            let mut update = |values: &[Option<String>]| {
                let slice = Slice {
                    address: values[0].as_deref().and_then(decode_address),
                    ..values
                        .get(1)
                        .and_then(|v| v.as_deref())
                        .and_then(decode_account)
                        .unwrap_or_default()
                };
                let mut t =
                    FailureTracker::with_slice(self.policy.clone(), ip, account, &slice, now_ms);
                out = Some(f(&mut t));
                let after = t.slice(ip, account, now_ms);
                let mut new = vec![
                    t.address_expiry(&after)
                        .zip(after.address)
                        .map(|(exp, a)| (encode_address(a), clamp(exp))),
                ];
                if with_account {
                    new.push(
                        t.account_expiry(&after)
                            .map(|exp| (encode_account(&after), clamp(exp))),
                    );
                }
                new
            };
            match state.update_shared(&keys, clamp(now_ms), &mut update).await {
                Ok(()) => {
                    if let Some(out) = out {
                        return out;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "login throttle: shared state unavailable; this daemon's own counts apply");
                }
            }
        }
        let mut t = self.local.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut t)
    }
}

fn clamp(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The shared key of an address (its [`FailureTracker::address_key`]).
fn address_key(key: u128) -> String {
    format!("throttle:ip:{key:032x}")
}

/// The shared key of an account ([`super::account_key`]'s text).
fn account_key(account: &str) -> String {
    format!("throttle:account:{account}")
}

/// `count last_ms`.
fn encode_address((count, last): (u32, u64)) -> String {
    format!("{count} {last}")
}

fn decode_address(s: &str) -> Option<(u32, u64)> {
    let (count, last) = s.split_once(' ')?;
    Some((count.parse().ok()?, last.parse().ok()?))
}

/// `budget|key:at,key:at` with `-` for no budget.
fn encode_account(slice: &Slice) -> String {
    let budget = slice.budget.map_or("-".to_string(), |t| t.to_string());
    let known: Vec<String> = slice
        .known
        .iter()
        .map(|(k, at)| format!("{k:x}:{at}"))
        .collect();
    format!("{budget}|{}", known.join(","))
}

/// The account's part of a slice; `None` for text no daemon wrote (read as nothing).
fn decode_account(s: &str) -> Option<Slice> {
    let (budget, known) = s.split_once('|')?;
    let budget = match budget {
        "-" => None,
        b => Some(b.parse().ok()?),
    };
    let known = known
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| {
            let (key, at) = k.split_once(':')?;
            Some((u128::from_str_radix(key, 16).ok()?, at.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Slice {
        address: None,
        budget,
        known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_round_trip_through_their_text() {
        assert_eq!(decode_address(&encode_address((7, 1234))), Some((7, 1234)));
        for slice in [
            Slice::default(),
            Slice {
                address: None,
                budget: Some(99),
                known: vec![(0xc000_0201, 5), (u128::MAX, 6)],
            },
            Slice {
                address: None,
                budget: None,
                known: vec![(1, 2)],
            },
        ] {
            assert_eq!(decode_account(&encode_account(&slice)), Some(slice));
        }
    }

    #[test]
    fn text_no_daemon_wrote_reads_as_nothing() {
        for bad in ["", "7", "x 1", "1 -2"] {
            assert_eq!(decode_address(bad), None, "{bad:?}");
        }
        for bad in ["", "12", "x|", "1|zz:1", "1|1:x", "1|1"] {
            assert_eq!(decode_account(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_tracker_seeded_with_a_slice_gives_it_back_after_the_same_steps() {
        // Running steps on one tracker, or on scratch trackers seeded from the
        // previous step's slice, ends in the same state: the shared path runs the
        // local rules.
        let policy = FailurePolicy::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let account = "user:u1";
        let mut whole = FailureTracker::new(policy.clone());
        let mut slice = Slice::default();
        let mut now = 1_000_000u64;
        for i in 0..30 {
            let mut scratch = FailureTracker::with_slice(policy.clone(), ip, account, &slice, now);
            let a = whole.admit(ip, account, now);
            let b = scratch.admit(ip, account, now);
            assert_eq!(a, b, "step {i}");
            if let Ok(admission) = a {
                if i % 7 == 6 {
                    whole.record_success(ip, account, admission, now);
                    scratch.record_success(ip, account, admission, now);
                } else {
                    whole.record_failure(ip, now);
                    scratch.record_failure(ip, now);
                }
            }
            slice = scratch.slice(ip, account, now);
            assert_eq!(slice, whole.slice(ip, account, now), "step {i}");
            now += 700;
        }
        assert!(slice.address.is_some() && slice.budget.is_some() && !slice.known.is_empty());
    }

    #[tokio::test]
    async fn alone_a_daemon_throttles_in_memory() {
        let t = Throttle::local(FailurePolicy::default());
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let mut now = 1_000_000;
        let mut refused = false;
        for _ in 0..40 {
            match t.admit(ip, "name:nobody", now).await {
                Ok(_) => t.record_failure(ip, "name:nobody", now).await,
                Err(_) => refused = true,
            }
            now += 10;
        }
        assert!(refused, "forty fast failures were never throttled");
    }
}
