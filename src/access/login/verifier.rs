//! Password verification on a few dedicated threads, one per core.
//!
//! An argon2id check takes ~19 MiB and tens of milliseconds of one core. Run on
//! tokio's blocking pool, a burst of logins (10,000 IMAP clients reconnecting after
//! a restart) would run hundreds at once: no faster on two cores, and every
//! thread's allocator arena keeps its 19 MiB afterwards (measured: 200 concurrent
//! IMAP logins left the daemon at 3 GiB RSS). A fixed pool bounds both the
//! parallelism and the memory to the number of cores; the rest queue.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The verification threads; they end when the pool is dropped.
pub struct VerifierPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl VerifierPool {
    /// `threads` workers (at least one).
    pub fn new(threads: usize) -> VerifierPool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mailgate-verify-{i}"))
                .spawn(move || {
                    loop {
                        // Hold the lock only while taking a job. With none waiting,
                        // give the argon2 work area back before sleeping.
                        let job = match rx.lock() {
                            Ok(r) => r.try_recv().or_else(|_| {
                                crate::directory::release_work_area();
                                r.recv()
                            }),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking job answers None (its sender drops); the
                            // worker lives on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password verification thread");
            }
        }
        VerifierPool {
            jobs: Mutex::new(tx),
        }
    }

    /// One worker per available core.
    pub fn per_core() -> VerifierPool {
        VerifierPool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `f` on a worker; `None` if the pool is gone or `f` panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.lock().ok()?.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn runs_jobs_at_most_pool_size_at_once() {
        let pool = Arc::new(VerifierPool::new(2));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (pool, now, peak) = (pool.clone(), now.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
                .await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap().unwrap());
        }
        assert_eq!(results, (0..8).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_answers_none_and_the_pool_goes_on() {
        let pool = VerifierPool::new(1);
        assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }
}
