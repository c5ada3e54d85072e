//! Running the backend's async SQL from the blocking traits (`DirectoryBackend`,
//! `AccessBackend`, the shared secrets), which the directory, the access engine
//! and provisioning call from blocking threads.
//!
//! Decision: the runtime is the caller's (`Handle::try_current` at each call),
//! not one captured at open, because the store may be opened on a short-lived
//! runtime (tests, `store::open`) and used on the daemon's. On a multi-thread
//! runtime the call goes through `block_in_place`, so even an async task may make
//! it (it stalls that worker for the query); on a current-thread runtime it must
//! come from a blocking thread (`spawn_blocking`), as the directory's callers do.
//! Outside any runtime it is an error, never a panic.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::store::{Result, StoreError};

/// Runs `work` to completion on the caller's tokio runtime.
pub(crate) fn block_on<F: Future>(work: F) -> Result<F::Output> {
    let handle = Handle::try_current().map_err(|_| {
        StoreError::Io(
            "postgres: called outside a tokio runtime (run it on the daemon's blocking threads)"
                .to_string(),
        )
    })?;
    Ok(match handle.runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| handle.block_on(work)),
        _ => handle.block_on(work),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        let e = block_on(async { 1 }).unwrap_err().to_string();
        assert!(e.contains("outside a tokio runtime"), "{e}");
    }

    #[test]
    fn works_from_a_blocking_thread_and_from_an_async_task() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let from_blocking = rt.block_on(async {
            tokio::task::spawn_blocking(|| block_on(async { 2 }).ok())
                .await
                .ok()
                .flatten()
        });
        assert_eq!(from_blocking, Some(2));
        let from_task = rt.block_on(async {
            tokio::spawn(async { block_on(async { 3 }).ok() })
                .await
                .ok()
                .flatten()
        });
        assert_eq!(from_task, Some(3));
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let on_current = current.block_on(async {
            tokio::task::spawn_blocking(|| block_on(async { 4 }).ok())
                .await
                .ok()
                .flatten()
        });
        assert_eq!(on_current, Some(4));
    }
}
