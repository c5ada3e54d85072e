//! \Recent (RFC 3501 2.3.2): a message is recent in exactly one session, the
//! first to see it. The daemon keeps, per folder, the first UID no session has
//! claimed; a read-write SELECT, and every later arrival a selected session is
//! told of, claims the UIDs below the view's last one. EXAMINE and STATUS only
//! look. IMAP4rev2 dropped the flag; a session that enabled it is never shown it.
//!
//! The claims live in this daemon's memory: after a restart every message is
//! recent again for the first session that selects its folder, and daemons
//! sharing one store each hand out their own claims (RFC 3501 allows a server
//! that cannot tell to err this way; none of it touches the stored flags).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

/// A folder as claims know it: its store id and UIDVALIDITY, so a folder that
/// reuses a deleted one's id starts afresh.
pub type FolderKey = (i64, u32);

/// The first unclaimed UID of every folder a session has looked at.
#[derive(Debug, Default)]
pub struct RecentClaims {
    next: Mutex<HashMap<FolderKey, u32>>,
}

impl RecentClaims {
    /// The first UID nobody has claimed (1 for a folder nobody selected yet).
    pub fn first_unclaimed(&self, folder: FolderKey) -> u32 {
        let next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        next.get(&folder).copied().unwrap_or(1)
    }

    /// Claims every unclaimed UID below `end`; returns those this caller got
    /// (empty when another session was first).
    pub fn claim(&self, folder: FolderKey, end: u32) -> Range<u32> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let first = next.entry(folder).or_insert(1);
        let from = *first;
        if end > from {
            *first = end;
            from..end
        } else {
            from..from
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_uid_is_claimed_once() {
        let claims = RecentClaims::default();
        let f = (7, 100);
        assert_eq!(claims.first_unclaimed(f), 1);
        assert_eq!(claims.claim(f, 4), 1..4);
        assert_eq!(claims.first_unclaimed(f), 4);
        // A second session looking at the same messages gets none of them.
        assert!(claims.claim(f, 4).is_empty());
        assert!(claims.claim(f, 2).is_empty());
        assert_eq!(claims.first_unclaimed(f), 4);
        assert_eq!(claims.claim(f, 6), 4..6);
        // Another folder, or the same id under a new UIDVALIDITY, is separate.
        assert_eq!(claims.claim((8, 100), 3), 1..3);
        assert_eq!(claims.first_unclaimed((7, 101)), 1);
    }
}
