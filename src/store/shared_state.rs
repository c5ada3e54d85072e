//! Small values that every daemon on one shared store reads and rewrites
//! atomically, each with an expiry: the login throttle's counters, so that an
//! attacker gets no more guesses from N daemons than from one (issue 19).
//!
//! Owns only the interface. Only a shared backend has it
//! ([`Backend::shared_state`](super::Backend::shared_state)); a daemon alone
//! keeps such counters in memory, where they cost no write.

use async_trait::async_trait;

use super::Result;

/// Computes the new values of the keys from their current ones (in the order of
/// the keys; `None` when absent or expired): each a value and the epoch ms at
/// which it expires, or `None` to remove it. May run more than once (a retried
/// transaction), so it must depend on its input alone; the run that committed
/// is the last.
pub type Update<'a> = &'a mut (dyn FnMut(&[Option<String>]) -> Vec<Option<(String, i64)>> + Send);

/// Keyed values shared by every daemon on the store.
#[async_trait]
pub trait SharedState: Send + Sync {
    /// Locks `keys` against every other daemon, reads them as they are at
    /// `now_ms`, and writes what `update` returns, in one transaction.
    async fn update_shared(&self, keys: &[String], now_ms: i64, update: Update<'_>) -> Result<()>;
}
