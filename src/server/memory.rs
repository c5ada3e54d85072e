//! Allocator settings for a daemon whose memory should follow the sessions it
//! holds, not the largest burst it ever served (glibc only; elsewhere these do
//! nothing).

use std::time::Duration;

/// How often freed memory is handed back to the kernel.
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Allocations of 256 KiB and more (message bodies, large FETCH responses, the
/// argon2 work area) are mapped and unmapped on their own. glibc would otherwise
/// raise this threshold to the largest block freed so far (up to 32 MiB), after
/// which such buffers live in the arenas and their freed pages stay resident
/// behind long-lived session state. Call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Every 30 s, returns the free pages inside the allocator's arenas to the kernel
/// (`malloc_trim`): after a burst (a FETCH-heavy hour, a login storm) the arenas
/// are mostly free but stay resident otherwise (measured: 70 MiB -> 56 MiB after
/// the IMAP benchmark's workload).
pub fn spawn_trimmer() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' locks itself; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}
