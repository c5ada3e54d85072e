//! Message data on its way in (DATA or BDAT), held in memory within one budget
//! shared by all sessions, and spilled to an unnamed file beyond it.
//!
//! Why: a client that sends 39 MiB and then stalls before the final dot holds its
//! data until the data timeout (10 minutes). Held in memory, 16 such clients took
//! 620 MiB (issue 20.4), 200 per address would take 7.8 GiB. With the budget, the
//! data of stalled and slow clients beyond it waits on disk; only a message that
//! is complete is read back, for the sender checks and the store, which need it
//! whole. The file has no name (it is gone when the session drops it, crash or
//! not). Writes go through the page cache with no fsync: nothing on disk here is
//! acknowledged to anyone.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The memory all sessions' message data may hold together, and where the rest goes.
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
    spill_dir: PathBuf,
}

impl BodyBudget {
    /// `limit` bytes in memory; beyond it, files in `spill_dir` (created if missing).
    pub fn new(limit: usize, spill_dir: PathBuf) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            limit,
            used: AtomicUsize::new(0),
            spill_dir,
        })
    }

    /// Bytes held in memory now, for tests and metrics.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One message's data so far.
pub struct Body {
    budget: Arc<BodyBudget>,
    mem: Vec<u8>,
    /// Bytes of the budget this body holds (its memory's length, rounded up to the
    /// chunks it took).
    held: usize,
    spill: Option<io::BufWriter<File>>,
    len: usize,
}

/// The budget is taken in chunks of this size, not per line.
const CHUNK: usize = 64 * 1024;

impl Body {
    /// An empty body drawing on `budget`.
    pub fn new(budget: Arc<BodyBudget>) -> Body {
        Body {
            budget,
            mem: Vec::new(),
            held: 0,
            spill: None,
            len: 0,
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the data went to disk.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// Appends bytes: in memory while the budget allows, else on disk.
    pub fn extend(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.len += bytes.len();
        if let Some(file) = &mut self.spill {
            return file.write_all(bytes);
        }
        let need = self.mem.len() + bytes.len();
        if need > self.held {
            let more = (need - self.held).div_ceil(CHUNK) * CHUNK;
            if !self.budget.take(more) {
                return self.spill_to_disk(bytes);
            }
            self.held += more;
        }
        self.mem.extend_from_slice(bytes);
        Ok(())
    }

    fn spill_to_disk(&mut self, bytes: &[u8]) -> io::Result<()> {
        std::fs::create_dir_all(&self.budget.spill_dir)?;
        let mut file =
            io::BufWriter::with_capacity(CHUNK, tempfile::tempfile_in(&self.budget.spill_dir)?);
        file.write_all(&self.mem)?;
        file.write_all(bytes)?;
        self.mem = Vec::new();
        self.budget.give(std::mem::take(&mut self.held));
        self.spill = Some(file);
        Ok(())
    }

    /// The whole message, read back from disk if it was spilled.
    pub fn into_vec(mut self) -> io::Result<Vec<u8>> {
        match self.spill.take() {
            None => Ok(std::mem::take(&mut self.mem)),
            Some(file) => {
                let mut file = file.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                let mut out = Vec::with_capacity(self.len);
                file.read_to_end(&mut out)?;
                Ok(out)
            }
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_stay_within_the_budget_and_spill_beyond_it() {
        let dir = tempfile::tempdir().unwrap();
        let budget = BodyBudget::new(4 * CHUNK, dir.path().join("spill"));
        let line = vec![b'x'; 1000];
        let mut bodies: Vec<Body> = (0..4).map(|_| Body::new(budget.clone())).collect();
        for _ in 0..300 {
            for b in &mut bodies {
                b.extend(&line).unwrap();
            }
            assert!(budget.used() <= 4 * CHUNK);
        }
        assert!(
            bodies.iter().any(Body::spilled),
            "300 KB each cannot all fit in 256 KiB"
        );
        for b in bodies {
            assert_eq!(b.len(), 300_000);
            assert_eq!(b.into_vec().unwrap(), vec![b'x'; 300_000]);
        }
        assert_eq!(budget.used(), 0, "everything given back");
        let small = {
            let mut b = Body::new(budget.clone());
            b.extend(b"Subject: hi\r\n\r\nyo\r\n").unwrap();
            assert!(!b.spilled());
            assert_eq!(budget.used(), CHUNK);
            b.into_vec().unwrap()
        };
        assert_eq!(small, b"Subject: hi\r\n\r\nyo\r\n");
        assert_eq!(budget.used(), 0);
    }
}
