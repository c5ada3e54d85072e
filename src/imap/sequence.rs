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
    let mut out = Vec::new();
    for seq in set.0.as_ref() {
        let (lo, hi) = bounds(seq, count);
        if count == 0 || hi > count || lo == 0 {
            return Err(BadSet);
        }
        out.extend((lo - 1) as usize..hi as usize);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Indexes (0-based) into ascending `uids` of the UIDs in the set, ascending.
/// UIDs that do not exist are ignored; `*` is the highest UID, so `n:*` always names
/// at least the last message (RFC 9051 6.4.9).
pub fn by_uid(set: &SequenceSet, uids: &[u32]) -> Vec<usize> {
    let star = uids.last().copied().unwrap_or(0);
    let mut out = Vec::new();
    for seq in set.0.as_ref() {
        let (lo, hi) = bounds(seq, star);
        let start = uids.partition_point(|&u| u < lo);
        let end = uids.partition_point(|&u| u <= hi);
        out.extend(start..end);
    }
    out.sort_unstable();
    out.dedup();
    out
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

    #[test]
    fn uids() {
        let uids = [3, 5, 9, 10];
        assert_eq!(by_uid(&set("1:*"), &uids), vec![0, 1, 2, 3]);
        assert_eq!(by_uid(&set("4:9"), &uids), vec![1, 2]);
        assert_eq!(by_uid(&set("100:*"), &uids), vec![3]);
        assert_eq!(by_uid(&set("*:100"), &uids), vec![3]);
        assert_eq!(by_uid(&set("4294967295"), &uids), Vec::<usize>::new());
        assert_eq!(by_uid(&set("1:*"), &[]), Vec::<usize>::new());
        assert!(contains(&set("2,4:*"), 7, 7));
        assert!(!contains(&set("2,4:6"), 7, 7));
    }
}
