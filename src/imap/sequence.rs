//! Message sets to messages: sequence numbers and UIDs against the session's view of
//! the selected folder (RFC 9051 9, `sequence-set`).

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// A sequence number that does not name a message in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSet;

fn bounds(seq: &Sequence, star: u32) -> (u32, u32) {
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => star,
    };
    let (a, b) = match seq {
        Sequence::Single(s) => (v(s), v(s)),
        Sequence::Range(a, b) => (v(a), v(b)),
    };
    (a.min(b), a.max(b))
}

/// Indexes (0-based) into `uids` named by sequence numbers, ascending. A number past
/// the last message is an error, except through `*`.
pub fn by_seq(set: &SequenceSet, uids: &[u32]) -> Result<Vec<usize>, BadSet> {
    let count = uids.len() as u32;
    let mut ranges = Vec::with_capacity(set.0.as_ref().len());
    for seq in set.0.as_ref() {
        let (lo, hi) = bounds(seq, count);
        if count == 0 || hi > count || lo == 0 {
            return Err(BadSet);
        }
        ranges.push((lo - 1) as usize..hi as usize);
    }
    Ok(expand(ranges))
}

/// Indexes (0-based) into ascending `uids` of the UIDs in the set, ascending.
/// UIDs that do not exist are ignored; `*` is the highest UID, so `n:*` always names
/// at least the last message (RFC 9051 6.4.9).
pub fn by_uid(set: &SequenceSet, uids: &[u32]) -> Vec<usize> {
    let star = uids.last().copied().unwrap_or(0);
    let ranges = set
        .0
        .as_ref()
        .iter()
        .map(|seq| {
            let (lo, hi) = bounds(seq, star);
            uids.partition_point(|&u| u < lo)..uids.partition_point(|&u| u <= hi)
        })
        .collect();
    expand(ranges)
}

/// The indexes covered by `ranges`, each once, ascending. The ranges are merged
/// before anything is expanded, so a set that names the whole folder 50,000 times
/// (`1:*,1:*,...`) costs one pass over the folder, not 50,000 (issue 20.6: it took
/// 1.4 GiB and stalled every session for seconds).
fn expand(mut ranges: Vec<std::ops::Range<usize>>) -> Vec<usize> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<usize> = Vec::new();
    for r in ranges {
        let from = out.last().map_or(r.start, |&last| r.start.max(last + 1));
        out.extend(from..r.end);
    }
    out
}

/// A set with `*` resolved and its ranges merged, for testing every message of a
/// folder against it (SEARCH): one binary search per message, however many ranges
/// the client sent (a set naming the folder 50,000 times is one range here).
pub struct Merged(Vec<(u32, u32)>);

impl Merged {
    /// `set` with `*` standing for `star`.
    pub fn of(set: &SequenceSet, star: u32) -> Merged {
        let mut ranges: Vec<(u32, u32)> = set.0.as_ref().iter().map(|s| bounds(s, star)).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len().min(1024));
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Merged(merged)
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(lo, _)| lo <= n);
        i > 0 && self.0[i - 1].1 >= n
    }

    /// The parts of `runs` (ascending, disjoint `(first, last)`) in the set, as
    /// ascending runs: VANISHED (EARLIER) over a range of absent UIDs, without
    /// a step per UID.
    pub fn intersect(&self, runs: &[(u32, u32)]) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < runs.len() {
            let (a, b) = (self.0[i], runs[j]);
            let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        out
    }
}

/// Whether `uid` is in the set, with `*` standing for `star` (SEARCH UID, QRESYNC).
pub fn contains(set: &SequenceSet, n: u32, star: u32) -> bool {
    set.0.as_ref().iter().any(|seq| {
        let (lo, hi) = bounds(seq, star);
        (lo..=hi).contains(&n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).unwrap()
    }

    #[test]
    fn merged_sets_intersect_runs() {
        let m = Merged::of(&set("2:4,8,10:*"), 12);
        assert_eq!(
            m.intersect(&[(1, 3), (5, 9), (11, 20)]),
            vec![(2, 3), (8, 8), (11, 12)]
        );
        assert_eq!(m.intersect(&[]), vec![]);
        assert_eq!(m.intersect(&[(5, 7)]), vec![]);
        assert_eq!(
            Merged::of(&set("1:*"), 3).intersect(&[(1, 9)]),
            vec![(1, 3)]
        );
    }

    #[test]
    fn sequence_numbers() {
        let uids = [3, 5, 9, 10];
        assert_eq!(by_seq(&set("1:*"), &uids), Ok(vec![0, 1, 2, 3]));
        assert_eq!(by_seq(&set("*"), &uids), Ok(vec![3]));
        assert_eq!(by_seq(&set("3:2,1"), &uids), Ok(vec![0, 1, 2]));
        assert_eq!(by_seq(&set("*:3"), &uids), Ok(vec![2, 3]));
        assert_eq!(by_seq(&set("5"), &uids), Err(BadSet));
        assert_eq!(by_seq(&set("1"), &[]), Err(BadSet));
        assert_eq!(by_seq(&set("4294967295"), &uids), Err(BadSet));
    }

    /// Issue 20.6: the whole folder named 50,000 times costs one pass over it.
    #[test]
    fn a_set_repeating_the_whole_folder_is_merged_before_expanding() {
        let uids: Vec<u32> = (1..=3_547).collect();
        let text = vec!["1:*"; 50_000].join(",");
        let big = set(&text);
        let started = std::time::Instant::now();
        let by_uid_out = by_uid(&big, &uids);
        let by_seq_out = by_seq(&big, &uids).unwrap();
        assert_eq!(by_uid_out, (0..3_547).collect::<Vec<_>>());
        assert_eq!(by_seq_out, by_uid_out);
        assert!(
            by_uid_out.capacity() < 2 * 3_547,
            "no 50,000-fold expansion"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    proptest::proptest! {
        /// A merged set answers as the set does.
        #[test]
        fn merged_sets_answer_as_the_set(
            ranges in proptest::collection::vec((1u32..60, 0u32..20), 1..30),
            star in 1u32..80,
        ) {
            let text: Vec<String> = ranges.iter().map(|(a, n)| format!("{a}:{}", a + n)).collect();
            let with_star = format!("{},70:*", text.join(","));
            for text in [text.join(","), with_star] {
                let set = set(&text);
                let merged = Merged::of(&set, star);
                for n in 0..100 {
                    proptest::prop_assert_eq!(merged.contains(n), contains(&set, n, star), "{} {}", text, n);
                }
            }
        }

        /// Merging first gives what expanding every range would.
        #[test]
        fn merged_expansion_is_the_sorted_union(
            ranges in proptest::collection::vec((0usize..60, 0usize..20), 0..30)
        ) {
            let ranges: Vec<_> = ranges.into_iter().map(|(a, n)| a..a + n).collect();
            let mut naive: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
            naive.sort_unstable();
            naive.dedup();
            proptest::prop_assert_eq!(expand(ranges), naive);
        }
    }

    #[test]
    fn uids() {
        let uids = [3, 5, 9, 10];
        assert_eq!(by_uid(&set("1:*"), &uids), vec![0, 1, 2, 3]);
        assert_eq!(by_uid(&set("4:9"), &uids), vec![1, 2]);
        assert_eq!(by_uid(&set("100:*"), &uids), vec![3]);
        assert_eq!(by_uid(&set("*:100"), &uids), vec![3]);
        assert_eq!(by_uid(&set("4294967295"), &uids), Vec::<usize>::new());
        assert_eq!(by_uid(&set("1:*"), &[]), Vec::<usize>::new());
        assert_eq!(by_uid(&set("9:10,3:5,4"), &uids), vec![0, 1, 2, 3]);
        assert!(contains(&set("2,4:*"), 7, 7));
        assert!(!contains(&set("2,4:6"), 7, 7));
    }
}
