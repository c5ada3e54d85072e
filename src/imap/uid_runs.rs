//! The UIDs of a selected folder in sequence order, held as runs of consecutive
//! UIDs. Mail arrives with consecutive UIDs and is mostly expunged in stretches,
//! so a folder of thousands of messages is a handful of runs: a session sitting
//! in IDLE keeps a few dozen bytes for it instead of 4 bytes per message.

/// `len` consecutive UIDs from `first`, the first at sequence index `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u32,
    len: u32,
    index: u32,
}

impl Run {
    /// The run's highest UID (inclusive: a run may end at 4,294,967,295).
    fn last(&self) -> u32 {
        self.first + (self.len - 1)
    }
}

/// Ascending UIDs with O(log runs) lookups both ways.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UidRuns {
    runs: Vec<Run>,
}

impl UidRuns {
    /// The UIDs of an ascending list.
    pub fn from_ascending(uids: impl IntoIterator<Item = u32>) -> UidRuns {
        let mut runs = UidRuns::default();
        for uid in uids {
            runs.push(uid);
        }
        runs.runs.shrink_to_fit();
        runs
    }

    /// The number of messages.
    pub fn len(&self) -> usize {
        self.runs.last().map_or(0, |r| (r.index + r.len) as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The highest UID, 0 when empty.
    pub fn last(&self) -> u32 {
        self.runs.last().map_or(0, Run::last)
    }

    /// The UID at 0-based sequence index `i`.
    pub fn uid_at(&self, i: usize) -> Option<u32> {
        let i = u32::try_from(i).ok()?;
        let r = self.runs[..self.runs.partition_point(|r| r.index <= i)].last()?;
        (i < r.index + r.len).then(|| r.first + (i - r.index))
    }

    /// The 0-based sequence index of `uid`, if present.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        let r = self.runs[..self.runs.partition_point(|r| r.first <= uid)].last()?;
        (uid <= r.last()).then(|| (r.index + (uid - r.first)) as usize)
    }

    /// Appends `uid`, which must be above every UID held (else it is ignored).
    pub fn push(&mut self, uid: u32) {
        if !self.is_empty() && uid <= self.last() {
            return;
        }
        let index = self.len() as u32;
        match self.runs.last_mut() {
            // `uid` is above the last UID, so `last + 1` does not overflow.
            Some(r) if r.last() + 1 == uid => r.len += 1,
            _ => self.runs.push(Run {
                first: uid,
                len: 1,
                index,
            }),
        }
    }

    /// Removes `uid`; returns the sequence index it had.
    pub fn remove(&mut self, uid: u32) -> Option<usize> {
        let at = self
            .runs
            .partition_point(|r| r.first <= uid)
            .checked_sub(1)?;
        let r = self.runs[at];
        if uid > r.last() {
            return None;
        }
        let index = r.index + (uid - r.first);
        let mut next = at + 1;
        if r.len == 1 {
            self.runs.remove(at);
            next = at;
        } else if uid == r.first {
            self.runs[at] = Run {
                first: uid + 1,
                len: r.len - 1,
                index: r.index,
            };
        } else if uid == r.last() {
            self.runs[at].len -= 1;
        } else {
            // Split: the upper part starts where `uid` was.
            self.runs[at].len = uid - r.first;
            self.runs.insert(
                at + 1,
                Run {
                    first: uid + 1,
                    len: r.last() - uid,
                    index,
                },
            );
            next = at + 2;
        }
        for r in &mut self.runs[next..] {
            r.index -= 1;
        }
        Some(index as usize)
    }

    /// Every UID, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.runs.iter().flat_map(|r| r.first..=r.last())
    }

    /// Every UID, ascending, as a vector (what sequence-set resolution takes).
    pub fn to_vec(&self) -> Vec<u32> {
        let mut v = Vec::with_capacity(self.len());
        v.extend(self.iter());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn consecutive_uids_are_one_run_and_a_hole_splits_it() {
        let mut u = UidRuns::from_ascending(1..=1000);
        assert_eq!(u.runs.len(), 1);
        assert_eq!((u.len(), u.last()), (1000, 1000));
        assert_eq!(u.remove(500), Some(499));
        assert_eq!(u.runs.len(), 2);
        assert_eq!(u.uid_at(499), Some(501));
        assert_eq!(u.index_of(500), None);
        assert_eq!(u.index_of(1000), Some(998));
        assert_eq!(u.remove(500), None);
        u.push(1001);
        assert_eq!(u.runs.len(), 2);
        u.push(1003);
        assert_eq!((u.runs.len(), u.len(), u.last()), (3, 1001, 1003));
        u.push(7);
        assert_eq!(u.len(), 1001, "a UID below the last is ignored");
    }

    #[test]
    fn empty_and_out_of_range_lookups() {
        let mut u = UidRuns::default();
        assert_eq!(
            (u.len(), u.last(), u.uid_at(0), u.index_of(1)),
            (0, 0, None, None)
        );
        assert_eq!(u.remove(1), None);
        u.push(4_294_967_295);
        assert_eq!((u.uid_at(0), u.uid_at(1)), (Some(4_294_967_295), None));
        assert_eq!(u.index_of(4_294_967_295), Some(0));
        assert_eq!(u.remove(4_294_967_295), Some(0));
        assert!(u.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Remove(u32),
    }

    proptest! {
        /// Against a plain vector: every operation answers the same and the
        /// runs always hold exactly the vector's UIDs.
        #[test]
        fn behaves_like_a_sorted_vector(
            start in prop::collection::btree_set(1u32..200, 0..60),
            ops in prop::collection::vec(
                prop_oneof![(1u32..260).prop_map(Op::Push), (1u32..260).prop_map(Op::Remove)],
                0..80,
            ),
        ) {
            let mut model: Vec<u32> = start.iter().copied().collect();
            let mut runs = UidRuns::from_ascending(model.clone());
            for op in ops {
                match op {
                    Op::Push(uid) => {
                        if model.last().is_none_or(|&l| uid > l) {
                            model.push(uid);
                        }
                        runs.push(uid);
                    }
                    Op::Remove(uid) => {
                        let want = model.binary_search(&uid).ok();
                        if let Some(i) = want {
                            model.remove(i);
                        }
                        prop_assert_eq!(runs.remove(uid), want);
                    }
                }
                prop_assert_eq!(runs.to_vec(), model.clone());
                prop_assert_eq!(runs.len(), model.len());
                prop_assert_eq!(runs.last(), model.last().copied().unwrap_or(0));
                for (i, &uid) in model.iter().enumerate() {
                    prop_assert_eq!(runs.uid_at(i), Some(uid));
                    prop_assert_eq!(runs.index_of(uid), Some(i));
                }
                prop_assert_eq!(runs.uid_at(model.len()), None);
                // No two runs could be one.
                for w in runs.runs.windows(2) {
                    prop_assert!(w[0].last() + 1 < w[1].first);
                }
            }
        }
    }
}
