//! The [`Directory`] handle: state behind one `RwLock`, a backend, and the one
//! mutation path (catch up → validate → copy → persist, fenced by the version
//! → commit) every operation uses; and [`Directory::refresh`], which brings the
//! state up to what other daemons on a shared backend wrote.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use super::backend::{
    DirectoryBackend, Fenced, MAX_FENCED_ATTEMPTS, Record, RecordChanges, fenced_retry_pause,
};
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
///
/// On a backend several daemons share, every mutation first catches up with
/// the stored version and is written only if nobody moved it meanwhile
/// (otherwise it catches up, validates again and retries), so each is validated
/// against the freshest state; [`Directory::refresh`] (polled, or called on a
/// notification) brings in other daemons' writes and moves the generation, so
/// live sessions re-check.
pub struct Directory {
    backend: Arc<dyn DirectoryBackend>,
    state: RwLock<State>,
    generation: AtomicU64,
    /// The backend version `state` reflects. Its lock serialises mutations and
    /// refreshes (taken before `state`'s write lock, never after).
    loaded: Mutex<u64>,
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

/// Inconsistent stored data, as the error that stops the daemon ("corrupt store").
fn corrupt(e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Backend(format!("corrupt directory data: {e}"))
}

impl Directory {
    /// Loads every record from the backend. Inconsistent data (bad JSON, unknown
    /// organization, an address or name used twice) is refused as `Backend`, so
    /// the daemon can stop with "corrupt store" instead of serving half a directory.
    pub fn open(backend: Arc<dyn DirectoryBackend>) -> Result<Directory, DirectoryError> {
        let all = backend.records_since(0)?;
        let state = State::load(all.records).map_err(corrupt)?;
        // Make the dummy hash now, so the first unknown login is not slower than later ones.
        let _ = password::dummy_phc();
        Ok(Directory {
            backend,
            state: RwLock::new(state),
            generation: AtomicU64::new(0),
            loaded: Mutex::new(all.version),
            pat_uses: super::pats::UseLog::default(),
        })
    }

    /// A counter bumped by every successful mutation that changed something, and
    /// by every refresh that brought in another daemon's writes: caches keyed on
    /// it (e.g. in `access`) and live sessions know when to re-check.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Brings the directory up to the backend's version: one cheap query when
    /// nothing moved; otherwise what changed since is loaded and applied, and the
    /// generation moves. Returns whether anything was loaded. Blocking: call it
    /// from a blocking thread (the daemon's refresher does, every few hundred
    /// milliseconds, and a change notification may too). On `Err` the directory
    /// keeps serving what it had.
    pub fn refresh(&self) -> Result<bool, DirectoryError> {
        let mut loaded = self.lock_loaded();
        self.catch_up(&mut loaded)
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
    /// changed, and commits it to memory only if the backend accepted it. `f`
    /// may run more than once (once per attempt, each time on the newest state),
    /// so it must not have effects outside the change set.
    pub(crate) fn mutate<R>(
        &self,
        f: impl FnMut(&State, &mut Tx) -> Result<R, DirectoryError>,
    ) -> Result<R, DirectoryError> {
        self.mutate_with(true, f)
    }

    /// [`Directory::mutate`] for bookkeeping no session or cache depends on (a
    /// token's DateLastUsed): the generation stays, so live sessions do not re-check.
    pub(crate) fn mutate_quietly<R>(
        &self,
        f: impl FnMut(&State, &mut Tx) -> Result<R, DirectoryError>,
    ) -> Result<R, DirectoryError> {
        self.mutate_with(false, f)
    }

    fn mutate_with<R>(
        &self,
        bump: bool,
        mut f: impl FnMut(&State, &mut Tx) -> Result<R, DirectoryError>,
    ) -> Result<R, DirectoryError> {
        let mut loaded = self.lock_loaded();
        for attempt in 0..MAX_FENCED_ATTEMPTS {
            std::thread::sleep(fenced_retry_pause(attempt));
            self.catch_up(&mut loaded)?;
            let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let mut tx = Tx::default();
            let out = f(&st, &mut tx)?;
            tx.prune(&st);
            if tx.is_empty() {
                return Ok(out);
            }
            let ops = tx.ops()?;
            match self.backend.apply_at(*loaded, ops)? {
                Fenced::Applied(version) => {
                    st.commit(tx);
                    *loaded = version;
                    if bump {
                        self.generation.fetch_add(1, Ordering::AcqRel);
                    }
                    return Ok(out);
                }
                // Another daemon wrote first: catch up and validate again.
                Fenced::Moved => continue,
            }
        }
        Err(DirectoryError::Backend(format!(
            "the directory kept changing under this write; gave up after {MAX_FENCED_ATTEMPTS} attempts"
        )))
    }

    /// [`Directory::refresh`] with the version lock held.
    fn catch_up(&self, loaded: &mut u64) -> Result<bool, DirectoryError> {
        if self.backend.version()? == *loaded {
            return Ok(false);
        }
        let changes = self.backend.records_since(*loaded)?;
        *loaded = self.install(changes)?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Applies loaded changes (a delta in place, a full set as a new state) and
    /// returns the version the state is now at. A delta that does not fit, never
    /// expected since every stored version was validated whole, is replaced by a
    /// full load; until that load succeeds the state may be half-changed and
    /// the next catch-up tries again from the old version.
    fn install(&self, changes: RecordChanges) -> Result<u64, DirectoryError> {
        let all = match changes.full {
            true => changes,
            false => {
                let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
                match st.apply_changes(changes.records, changes.deleted) {
                    Ok(()) => return Ok(changes.version),
                    Err(e) => {
                        tracing::warn!(error = %e, "directory changes did not apply; reloading all");
                    }
                }
                drop(st);
                self.backend.records_since(0)?
            }
        };
        let state = State::load(all.records).map_err(corrupt)?;
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
        Ok(all.version)
    }

    fn lock_loaded(&self) -> MutexGuard<'_, u64> {
        // The guarded version is written only after its state is installed.
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
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
