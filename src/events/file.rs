//! The JSON-lines file sink: append, rotate by size and age, fsync by policy.
//!
//! A rotated file is renamed to `<path>.<epoch ms>` (the names sort by age, so
//! `jq . email.jsonl.* email.jsonl` reads everything in order) and only the newest
//! `keep` rotated files are kept.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::config::{Fsync, SinkConfig};
use super::metrics::SinkStats;
use super::sink::{Record, Worker};

/// How a file sink behaves, with the defaults applied.
#[derive(Debug, Clone)]
pub struct FilePolicy {
    /// The file written; rotated files sit next to it.
    pub path: PathBuf,
    /// Size past which the file is rotated (0: never).
    pub rotate_bytes: u64,
    /// Age at which the file is rotated.
    pub rotate_after: Option<Duration>,
    /// Rotated files kept.
    pub keep: usize,
    /// When to fsync.
    pub fsync: Fsync,
    /// Longest time without fsync under [`Fsync::Interval`].
    pub fsync_interval: Duration,
}

impl FilePolicy {
    /// The policy of a validated file sink config; `path` already resolved.
    pub fn of(c: &SinkConfig, path: PathBuf) -> FilePolicy {
        FilePolicy {
            path,
            rotate_bytes: c.rotate_bytes.unwrap_or(100 << 20),
            rotate_after: c.rotate_secs.filter(|s| *s > 0).map(Duration::from_secs),
            keep: c.keep.unwrap_or(10),
            fsync: c.fsync.unwrap_or(Fsync::Interval),
            fsync_interval: Duration::from_millis(c.fsync_interval_ms.unwrap_or(1000)),
        }
    }

    /// Whether a file of `size` bytes opened `age` ago is due for rotation.
    pub fn rotation_due(&self, size: u64, age: Duration) -> bool {
        size > 0
            && ((self.rotate_bytes > 0 && size >= self.rotate_bytes)
                || self.rotate_after.is_some_and(|a| age >= a))
    }
}

/// The writer of one file sink.
pub struct FileSink {
    policy: FilePolicy,
    out: BufWriter<File>,
    size: u64,
    opened: Instant,
    dirty_since: Option<Instant>,
    stats: SinkStats,
}

impl FileSink {
    /// Opens (creating the directory) the file for appending.
    pub fn open(policy: FilePolicy, stats: SinkStats) -> std::io::Result<FileSink> {
        if let Some(parent) = policy.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let size = drop_torn_tail(&policy.path)?;
        let file = open_append(&policy.path)?;
        Ok(FileSink {
            policy,
            out: BufWriter::with_capacity(256 * 1024, file),
            size,
            opened: Instant::now(),
            dirty_since: None,
            stats,
        })
    }

    fn sync(&mut self) {
        if self.dirty_since.take().is_some()
            && let Err(e) = self.out.get_ref().sync_data()
        {
            self.stats.failed.inc();
            tracing::error!(path = %self.policy.path.display(), error = %e, "event file fsync failed");
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.dirty_since = None;
        let rotated = rotated_name(&self.policy.path, crate::clock::now_ms());
        std::fs::rename(&self.policy.path, &rotated)?;
        self.out = BufWriter::with_capacity(256 * 1024, open_append(&self.policy.path)?);
        self.size = 0;
        self.opened = Instant::now();
        prune(&self.policy.path, self.policy.keep);
        Ok(())
    }
}

/// Cuts a last line without its newline (a crash in the middle of a write; the
/// outbox delivers that record again) so the next record starts on a line of its
/// own; returns the file's size after. A missing file has size 0.
fn drop_torn_tail(path: &Path) -> std::io::Result<u64> {
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let size = f.metadata()?.len();
    let keep = complete_lines_len(&mut f, size)?;
    if keep < size {
        f.set_len(keep)?;
        tracing::warn!(path = %path.display(), cut = size - keep, "event file ended in a torn line; cut");
    }
    Ok(keep)
}

/// The length of the part of a `size`-byte file that ends with its last newline.
fn complete_lines_len(f: &mut File, size: u64) -> std::io::Result<u64> {
    let mut end = size;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The ids (`eventId`, `event_id`) of the last `n` records of the sink writing
/// `path`, read backwards through the file and, if it holds fewer, the newest
/// rotated ones. The outbox reader skips these when it offers the rows the sink
/// had not marked before a crash: what the sink wrote then is not written twice.
pub fn last_ids(path: &Path, n: usize) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    if n == 0 {
        return ids;
    }
    let mut files = rotated(path);
    files.push(path.to_path_buf());
    let mut seen = 0;
    for file in files.iter().rev() {
        let Ok(text) = tail_lines(file, n - seen) else {
            continue;
        };
        for line in text.iter().rev() {
            seen += 1;
            if let Some(id) = record_id(line) {
                ids.insert(id);
            }
        }
        if seen >= n {
            break;
        }
    }
    ids
}

/// The id a record carries, if it parses.
pub fn record_id(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ids {
        #[serde(rename = "eventId")]
        email: Option<String>,
        event_id: Option<String>,
    }
    let ids: Ids = serde_json::from_str(line).ok()?;
    ids.email.or(ids.event_id)
}

/// The last `n` complete lines of a file, oldest first.
fn tail_lines(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let mut f = File::open(path)?;
    let size = f.metadata()?.len();
    let mut end = complete_lines_len(&mut f, size)?;
    let mut lines: Vec<String> = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 && lines.len() < n {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        let mut joined = chunk.to_vec();
        joined.extend_from_slice(&carry);
        // Everything after the first newline of `joined` is whole lines (unless the
        // chunk starts the file); the part before it waits for the next chunk.
        let mut parts: Vec<&[u8]> = joined.split(|b| *b == b'\n').collect();
        parts.pop(); // after the last newline: empty
        let head = if start > 0 {
            parts.remove(0).to_vec()
        } else {
            Vec::new()
        };
        for p in parts.iter().rev() {
            if lines.len() >= n {
                break;
            }
            lines.push(String::from_utf8_lossy(p).into_owned());
        }
        carry = head;
        carry.push(b'\n');
        end = start;
    }
    lines.reverse();
    Ok(lines)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `<path>.<ms>`; a later rotation in the same millisecond gets the next number.
fn rotated_name(path: &Path, now_ms: i64) -> PathBuf {
    let mut ms = now_ms;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{ms:013}"));
        let p = PathBuf::from(name);
        if !p.exists() {
            return p;
        }
        ms += 1;
    }
}

/// Deletes the oldest rotated files of `path` beyond `keep`.
fn prune(path: &Path, keep: usize) {
    let rotated = rotated(path);
    let excess = rotated.len().saturating_sub(keep);
    for old in &rotated[..excess] {
        let _ = std::fs::remove_file(old);
    }
}

/// The rotated files of `path`, oldest first.
fn rotated(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{base}.");
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    let mut rotated: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.strip_prefix(&prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
        })
        .map(|e| e.path())
        .collect();
    rotated.sort();
    rotated
}

impl Worker for FileSink {
    fn write(&mut self, batch: &[Record]) -> bool {
        let mut res = Ok(());
        for r in batch {
            // Rotate before a line that would take the file past the limit, so files
            // stay under `rotate_bytes` unless one record alone is bigger.
            let after = self.size + r.line.len() as u64 + 1;
            if self.size > 0 && self.policy.rotation_due(after, self.opened.elapsed()) {
                res = self.rotate();
                if res.is_err() {
                    break;
                }
            }
            res = writeln!(self.out, "{}", r.line);
            if res.is_err() {
                break;
            }
            self.size += r.line.len() as u64 + 1;
        }
        let res = res.and_then(|_| self.out.flush());
        match res {
            Ok(()) => {
                self.stats.sent.inc_by(batch.len() as u64);
                self.dirty_since.get_or_insert_with(Instant::now);
                if self.policy.fsync == Fsync::Always {
                    self.sync();
                }
                true
            }
            Err(e) => {
                self.stats.failed.inc();
                tracing::error!(path = %self.policy.path.display(), error = %e, "event sink write failed");
                false
            }
        }
    }

    fn tick(&mut self) -> Duration {
        if let Some(since) = self.dirty_since
            && since.elapsed() >= self.policy.fsync_interval
        {
            self.sync();
        }
        if self.policy.rotation_due(self.size, self.opened.elapsed())
            && let Err(e) = self.rotate()
        {
            self.stats.failed.inc();
            tracing::error!(path = %self.policy.path.display(), error = %e, "event file rotation failed");
        }
        let mut wait = self.policy.fsync_interval;
        if let Some(a) = self.policy.rotate_after {
            wait = wait.min(
                a.saturating_sub(self.opened.elapsed())
                    .max(Duration::from_millis(10)),
            );
        }
        wait
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
        self.sync();
    }

    /// Opened before the writer it replaces finished, which may since have grown or
    /// rotated the file: open the path again (nothing is buffered yet) and re-read
    /// its size. If that fails, the file opened at reload time is kept.
    fn resume(&mut self) {
        match open_append(&self.policy.path).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((size, file)) => {
                self.out = BufWriter::with_capacity(256 * 1024, file);
                self.size = size;
                self.opened = Instant::now();
            }
            Err(e) => {
                tracing::warn!(path = %self.policy.path.display(), error = %e, "event file reopen failed; keeping the file opened at reload");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::events::sink::Kind;

    fn policy(path: PathBuf) -> FilePolicy {
        FilePolicy {
            path,
            rotate_bytes: 1000,
            rotate_after: None,
            keep: 2,
            fsync: Fsync::Always,
            fsync_interval: Duration::from_millis(50),
        }
    }

    fn rec(i: usize) -> Record {
        Record {
            kind: Kind::Audit("authentication"),
            line: format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(90)).into(),
            seq: 0,
        }
    }

    #[test]
    fn rotation_rule() {
        let mut p = policy("x".into());
        assert!(!p.rotation_due(999, Duration::ZERO));
        assert!(p.rotation_due(1000, Duration::ZERO));
        p.rotate_bytes = 0;
        assert!(!p.rotation_due(1 << 40, Duration::ZERO));
        p.rotate_after = Some(Duration::from_secs(60));
        assert!(p.rotation_due(1, Duration::from_secs(60)));
        assert!(
            !p.rotation_due(0, Duration::from_secs(600)),
            "empty files stay"
        );
    }

    #[test]
    fn rotates_by_age_on_the_timer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email.jsonl");
        let mut p = policy(path.clone());
        p.rotate_bytes = 0;
        p.rotate_after = Some(Duration::from_millis(50));
        let mut sink = FileSink::open(p, SinkStats::default()).unwrap();
        sink.write(&[rec(1)]);
        assert!(sink.tick() <= Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        sink.tick();
        let count = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, 2, "the old file rotated, a new one opened");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        sink.tick();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "empty files stay"
        );
    }

    #[test]
    fn rotates_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut sink = FileSink::open(policy(path.clone()), SinkStats::default()).unwrap();
        for i in 0..50 {
            sink.write(&[rec(i)]);
        }
        sink.finish();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "current + keep=2 rotated: {names:?}");
        assert!(std::fs::metadata(&path).unwrap().len() <= 1000);
        for n in &names[..2] {
            assert!(std::fs::metadata(dir.path().join(n)).unwrap().len() <= 1000);
        }
        // The newest records survive, in order, across the rotated files.
        let mut all = Vec::new();
        for n in &names[..2] {
            all.extend(
                std::fs::read_to_string(dir.path().join(n))
                    .unwrap()
                    .lines()
                    .map(String::from),
            );
        }
        all.extend(
            std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(String::from),
        );
        let last: serde_json::Value = serde_json::from_str(all.last().unwrap()).unwrap();
        assert_eq!(last["n"], 49);
        assert_eq!(sink.stats.sent.get(), 50);
    }

    #[test]
    fn a_torn_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email.jsonl");
        std::fs::write(&path, "{\"eventId\":\"a\"}\n{\"eventId\":\"b\"}\n{\"eventI").unwrap();
        let mut sink = FileSink::open(policy(path.clone()), SinkStats::default()).unwrap();
        assert!(sink.write(&[rec(1)]));
        sink.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], "{\"eventId\":\"b\"}");
        assert!(lines[2].starts_with("{\"n\":1"));
        // A file of one torn line, and no file at all.
        std::fs::write(&path, "{\"torn").unwrap();
        assert_eq!(drop_torn_tail(&path).unwrap(), 0);
        assert_eq!(drop_torn_tail(&dir.path().join("none")).unwrap(), 0);
    }

    #[test]
    fn last_ids_reads_back_through_the_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let line = |i: usize| {
            format!(
                "{{\"event_id\":\"id{i}\",\"pad\":\"{}\"}}\n",
                "x".repeat(i * 7000 % 90_000)
            )
        };
        let older: String = (0..5).map(line).collect();
        std::fs::write(rotated_name(&path, 1), older).unwrap();
        let newer: String = (5..20).map(line).collect();
        // The newest file ends in a torn line, which does not count.
        std::fs::write(&path, newer + "{\"event_id\":\"torn").unwrap();
        let want = |r: std::ops::Range<usize>| -> HashSet<String> {
            r.map(|i| format!("id{i}")).collect()
        };
        assert_eq!(last_ids(&path, 3), want(17..20));
        assert_eq!(last_ids(&path, 15), want(5..20));
        assert_eq!(last_ids(&path, 18), want(2..20), "into the rotated file");
        assert_eq!(last_ids(&path, 100), want(0..20));
        assert!(last_ids(&path, 0).is_empty());
        assert!(last_ids(&dir.path().join("none"), 5).is_empty());
        assert_eq!(record_id("{\"eventId\":\"e\"}").as_deref(), Some("e"));
        assert_eq!(record_id("not json"), None);
    }
}
