//! The [`Directory`] handle: state behind one `RwLock`, a backend, and the one
//! mutation path (validate → copy → persist → commit) every operation uses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use super::backend::{DirectoryBackend, Record};
use super::error::DirectoryError;
use super::password;
use super::state::State;
use super::tx::Tx;

/// Organizations, domains, users, groups, resources, aliases and mailbox
/// permissions, held in memory and persisted through a [`DirectoryBackend`].
///
/// Mutations are synchronous (run them on a blocking thread) and serialised by
/// the write lock; lookups take the read lock only. A mutation that the backend
/// refuses changes nothing in memory.
pub struct Directory {
    backend: Arc<dyn DirectoryBackend>,
    state: RwLock<State>,
    generation: AtomicU64,
    /// Personal-access-token uses not yet persisted (DateLastUsed).
    pub(crate) pat_uses: super::pats::UseLog,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Loads every record from the backend. Inconsistent data (bad JSON, unknown
    /// organization, an address or name used twice) is refused as `Backend`, so
    /// the daemon can stop with "corrupt store" instead of serving half a directory.
    pub fn open(backend: Arc<dyn DirectoryBackend>) -> Result<Directory, DirectoryError> {
        let records = backend.load_all()?;
        let state = State::load(records)
            .map_err(|e| DirectoryError::Backend(format!("corrupt directory data: {e}")))?;
        // Make the dummy hash now, so the first unknown login is not slower than later ones.
        let _ = password::dummy_phc();
        Ok(Directory {
            backend,
            state: RwLock::new(state),
            generation: AtomicU64::new(0),
            pat_uses: super::pats::UseLog::default(),
        })
    }

    /// A counter bumped by every successful mutation that changed something:
    /// caches keyed on it (e.g. in `access`) know when to refresh.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every organization and entity as the records the backend would hold,
    /// sorted by (kind, id): for backups and for round-trip checks.
    pub fn export(&self) -> Result<Vec<Record>, DirectoryError> {
        self.read()
            .records()
            .map_err(|e| DirectoryError::Backend(format!("cannot serialise: {e}")))
    }

    /// The read side. A poisoned lock is still consistent (memory is only
    /// changed by `State::commit`, which does not panic on valid input), so it
    /// is used as is.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` under the write lock on a fresh change set, persists what it
    /// changed, and commits it to memory only if the backend accepted it.
    pub(crate) fn mutate<R>(
        &self,
        f: impl FnOnce(&State, &mut Tx) -> Result<R, DirectoryError>,
    ) -> Result<R, DirectoryError> {
        self.mutate_with(true, f)
    }

    /// [`Directory::mutate`] for bookkeeping no session or cache depends on (a
    /// token's DateLastUsed): the generation stays, so live sessions do not re-check.
    pub(crate) fn mutate_quietly<R>(
        &self,
        f: impl FnOnce(&State, &mut Tx) -> Result<R, DirectoryError>,
    ) -> Result<R, DirectoryError> {
        self.mutate_with(false, f)
    }

    fn mutate_with<R>(
        &self,
        bump: bool,
        f: impl FnOnce(&State, &mut Tx) -> Result<R, DirectoryError>,
    ) -> Result<R, DirectoryError> {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut tx = Tx::default();
        let out = f(&st, &mut tx)?;
        tx.prune(&st);
        if tx.is_empty() {
            return Ok(out);
        }
        let ops = tx.ops()?;
        self.backend.apply(ops)?;
        st.commit(tx);
        if bump {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::MemoryBackend;

    #[test]
    fn open_empty_backend() {
        let d = Directory::open(Arc::new(MemoryBackend::new()));
        assert!(d.as_ref().is_ok_and(|d| d.generation() == 0));
        assert_eq!(d.and_then(|d| d.export()).map(|r| r.len()), Ok(0));
    }
}
