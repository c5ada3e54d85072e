//! A bounded on-disk FIFO of JSON lines for the HTTP sink: every record is appended
//! here first and removed only once the receiver acknowledged it, so a receiver
//! that is down (or a daemon restart) loses nothing; a full spool drops new records
//! and the caller counts them.
//!
//! Layout: numbered segment files `<seq>.jsonl` and `head` holding
//! `<seq> <offset>` of the first unacknowledged byte. Delivery is at least once: a
//! crash between a POST and the update of `head` re-sends that batch, and
//! receivers de-duplicate by the records' ids (`eventId`, `event_id`).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 4 << 20;

/// The spool of one sink.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Segment numbers, oldest first; the last one is being appended to.
    segments: VecDeque<u64>,
    /// Size of each segment in `segments`.
    sizes: VecDeque<u64>,
    head_offset: u64,
    tail: File,
}

/// Lines read from the head, not yet acknowledged.
pub struct Peeked {
    /// The records, without their newlines, oldest first.
    pub lines: Vec<String>,
    /// Bytes to acknowledge once delivered (may cover a torn last line skipped).
    bytes: u64,
}

impl Spool {
    /// Opens the spool in `dir` (created if missing), resuming where `head` says.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut segments: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".jsonl")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        segments.sort_unstable();
        let (head_seq, mut head_offset) = std::fs::read_to_string(dir.join("head"))
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|n| n.parse::<u64>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((0, 0));
        // Segments wholly before the head were delivered; a crash left them behind.
        for seq in segments.iter().filter(|s| **s < head_seq) {
            let _ = std::fs::remove_file(segment_path(dir, *seq));
        }
        segments.retain(|s| *s >= head_seq);
        if segments.first() != Some(&head_seq) {
            head_offset = 0;
        }
        // Always append to a fresh segment: a torn line in an old one stays behind
        // a line boundary that `peek` knows how to skip.
        let next = segments.last().map_or(1, |s| s + 1).max(head_seq);
        let tail = create_segment(dir, next)?;
        segments.push(next);
        let sizes = segments
            .iter()
            .map(|s| {
                std::fs::metadata(segment_path(dir, *s))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .collect::<VecDeque<u64>>();
        let head_offset = head_offset.min(sizes.front().copied().unwrap_or(0));
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segments: segments.into(),
            sizes,
            head_offset,
            tail,
        })
    }

    /// Changes the limit (a reload); records already spooled stay even if over it.
    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
    }

    /// Bytes waiting to be delivered.
    pub fn bytes(&self) -> u64 {
        self.sizes.iter().sum::<u64>() - self.head_offset
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.bytes() == 0
    }

    /// Appends lines while they fit under the limit; returns how many were taken
    /// (the rest are the caller's to count as dropped).
    pub fn append<'a>(&mut self, lines: impl Iterator<Item = &'a str>) -> std::io::Result<usize> {
        let mut buf = Vec::new();
        let mut taken = 0;
        let mut room = self.max_bytes.saturating_sub(self.bytes());
        for l in lines {
            let need = l.len() as u64 + 1;
            if need > room {
                break;
            }
            room -= need;
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
            taken += 1;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.tail.write_all(&buf)?;
        if let Some(size) = self.sizes.back_mut() {
            *size += buf.len() as u64;
        }
        if self.sizes.back().copied().unwrap_or(0) >= SEGMENT_BYTES {
            let next = self.segments.back().map_or(1, |s| s + 1);
            self.tail = create_segment(&self.dir, next)?;
            self.segments.push_back(next);
            self.sizes.push_back(0);
        }
        Ok(taken)
    }

    /// Up to `max` lines from the head, without removing them.
    pub fn peek(&mut self, max: usize) -> std::io::Result<Peeked> {
        let mut lines = Vec::new();
        let mut bytes = 0u64;
        let mut offset = self.head_offset;
        for (i, seq) in self.segments.iter().enumerate() {
            let size = self.sizes[i];
            if offset >= size {
                // An empty or finished segment: acknowledging moves past it.
                offset = 0;
                continue;
            }
            let mut f = File::open(segment_path(&self.dir, *seq))?;
            f.seek(SeekFrom::Start(offset))?;
            let mut r = BufReader::new(f.take(size - offset));
            let mut line = String::new();
            while lines.len() < max {
                line.clear();
                let n = r.read_line(&mut line)? as u64;
                if n == 0 {
                    break;
                }
                bytes += n;
                if line.ends_with('\n') {
                    line.pop();
                    if !line.is_empty() {
                        lines.push(line.clone());
                    }
                }
                // A line without its newline was torn by a crash: skipped.
            }
            if lines.len() >= max {
                break;
            }
            offset = 0;
        }
        Ok(Peeked { lines, bytes })
    }

    /// Removes what `peeked` returned, once the receiver has it.
    pub fn ack(&mut self, peeked: &Peeked) -> std::io::Result<()> {
        let mut left = peeked.bytes;
        loop {
            let size = self.sizes.front().copied().unwrap_or(0);
            let in_head = size - self.head_offset;
            if left < in_head || self.segments.len() == 1 {
                self.head_offset += left.min(in_head);
                break;
            }
            left -= in_head;
            if let Some(seq) = self.segments.pop_front() {
                self.sizes.pop_front();
                let _ = std::fs::remove_file(segment_path(&self.dir, seq));
            }
            self.head_offset = 0;
        }
        // The only segment fully delivered: start afresh so files do not grow forever.
        if self.segments.len() == 1 && self.head_offset > 0 && self.head_offset == self.sizes[0] {
            let old = self.segments[0];
            let next = old + 1;
            self.tail = create_segment(&self.dir, next)?;
            self.segments = VecDeque::from([next]);
            self.sizes = VecDeque::from([0]);
            self.head_offset = 0;
            self.write_head()?;
            let _ = std::fs::remove_file(segment_path(&self.dir, old));
            return Ok(());
        }
        self.write_head()
    }

    fn write_head(&self) -> std::io::Result<()> {
        let tmp = self.dir.join("head.tmp");
        let seq = self.segments.front().copied().unwrap_or(0);
        std::fs::write(&tmp, format!("{seq} {}\n", self.head_offset))?;
        std::fs::rename(tmp, self.dir.join("head"))
    }

    /// Makes appended records durable (the caller's fsync policy).
    pub fn sync(&self) -> std::io::Result<()> {
        self.tail.sync_data()
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:012}.jsonl"))
}

fn create_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: std::ops::Range<usize>) -> Vec<String> {
        n.map(|i| format!("{{\"i\":{i}}}")).collect()
    }

    #[test]
    fn fifo_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        assert!(s.is_empty());
        let all = lines(0..10);
        assert_eq!(s.append(all.iter().map(|l| l.as_str())).unwrap(), 10);
        let p = s.peek(4).unwrap();
        assert_eq!(p.lines, all[..4]);
        s.ack(&p).unwrap();
        // Reopen: the head survives, unacknowledged lines come back.
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        s.append(lines(10..12).iter().map(|l| l.as_str())).unwrap();
        let p = s.peek(100).unwrap();
        assert_eq!(p.lines, lines(4..12));
        s.ack(&p).unwrap();
        assert!(s.is_empty());
        assert!(s.peek(10).unwrap().lines.is_empty());
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files <= 3, "delivered segments are removed ({files} files)");
    }

    #[test]
    fn full_spool_takes_what_fits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 30).unwrap();
        let all = lines(0..10); // 8 bytes each with the newline
        assert_eq!(s.append(all.iter().map(|l| l.as_str())).unwrap(), 3);
        assert_eq!(s.bytes(), 24);
        let p = s.peek(10).unwrap();
        s.ack(&p).unwrap();
        assert_eq!(s.append(all.iter().map(|l| l.as_str())).unwrap(), 3);
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("000000000001.jsonl"), "{\"a\":1}\n{\"b\":").unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(["{\"c\":3}"].into_iter()).unwrap();
        let p = s.peek(10).unwrap();
        assert_eq!(p.lines, ["{\"a\":1}", "{\"c\":3}"]);
        s.ack(&p).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn many_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        let big = "x".repeat(1 << 20);
        for _ in 0..10 {
            s.append([big.as_str()].into_iter()).unwrap();
        }
        let mut got = 0;
        loop {
            let p = s.peek(3).unwrap();
            if p.lines.is_empty() {
                break;
            }
            got += p.lines.len();
            s.ack(&p).unwrap();
        }
        assert_eq!(got, 10);
        assert!(s.is_empty());
    }
}
