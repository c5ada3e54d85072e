//! EWS notification subscriptions (pull and streaming): which mailbox and folders
//! a client watches, which event types, and how far it has read the mailbox's
//! change feed (its watermark).
//!
//! Subscriptions live in memory, outside any HTTP connection, because Outlook
//! reconnects GetStreamingEvents with the same id after each timeout; they expire
//! after their timeout unused (pull: the client's Timeout, streaming: 30 minutes)
//! and do not survive a restart (clients resubscribe on ErrorSubscriptionNotFound).
//! Events are the change feed that IMAP IDLE reads, translated to EWS events by
//! [`events_for`], which is pure.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dashmap::DashMap;

use crate::store::{Change, ChangeKind};

/// Subscriptions a mailbox may hold at once.
pub const MAX_PER_MAILBOX: usize = 2_000;
/// Subscriptions the daemon holds at once.
pub const MAX_TOTAL: usize = 100_000;
/// How long an unused streaming subscription lives.
pub const STREAMING_IDLE: Duration = Duration::from_secs(30 * 60);

/// EWS event types, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventTypes(u8);

impl EventTypes {
    pub const NEW_MAIL: u8 = 1;
    pub const CREATED: u8 = 2;
    pub const DELETED: u8 = 4;
    pub const MODIFIED: u8 = 8;
    pub const MOVED: u8 = 16;
    pub const COPIED: u8 = 32;

    /// Reads `EventTypes/EventType` names; unknown ones (FreeBusyChangedEvent) add
    /// nothing.
    pub fn parse<'a>(names: impl Iterator<Item = &'a str>) -> EventTypes {
        EventTypes(names.fold(0, |acc, n| {
            acc | match n.trim() {
                "NewMailEvent" => Self::NEW_MAIL,
                "CreatedEvent" => Self::CREATED,
                "DeletedEvent" => Self::DELETED,
                "ModifiedEvent" => Self::MODIFIED,
                "MovedEvent" => Self::MOVED,
                "CopiedEvent" => Self::COPIED,
                _ => 0,
            }
        }))
    }

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// One subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    /// The mailbox watched.
    pub mailbox: String,
    /// Who created it (user or role id): only they may read it.
    pub creator: String,
    /// Store folder ids watched; `None` for every folder.
    pub folders: Option<HashSet<i64>>,
    pub events: EventTypes,
    /// The feed position events are reported after.
    pub watermark: i64,
    pub streaming: bool,
    /// Unused this long, it expires.
    pub timeout: Duration,
    pub last_used: Instant,
}

/// Why a subscription cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Unknown, expired, or someone else's.
    NotFound,
    /// Too many already.
    TooMany,
}

/// Every live subscription.
#[derive(Default)]
pub struct Subscriptions {
    live: DashMap<String, Mutex<Subscription>>,
    /// The recent feeds of the mailboxes they watch, shared among them.
    feeds: super::feed::Feeds,
}

impl Subscriptions {
    /// Adds a subscription; returns its id.
    pub fn add(&self, mut sub: Subscription) -> Result<String, Unusable> {
        self.expire();
        if self.live.len() >= MAX_TOTAL {
            return Err(Unusable::TooMany);
        }
        let same_mailbox = self
            .live
            .iter()
            .filter(|s| s.value().lock().is_ok_and(|s| s.mailbox == sub.mailbox))
            .count();
        if same_mailbox >= MAX_PER_MAILBOX {
            return Err(Unusable::TooMany);
        }
        sub.id = STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        let id = sub.id.clone();
        self.live.insert(id.clone(), Mutex::new(sub));
        Ok(id)
    }

    /// A copy of `creator`'s subscription `id`, marked used now.
    pub fn get(&self, id: &str, creator: &str) -> Result<Subscription, Unusable> {
        let entry = self.live.get(id).ok_or(Unusable::NotFound)?;
        let mut sub = entry.lock().map_err(|_| Unusable::NotFound)?;
        if sub.creator != creator || sub.last_used.elapsed() > sub.timeout {
            return Err(Unusable::NotFound);
        }
        sub.last_used = Instant::now();
        Ok(sub.clone())
    }

    /// Moves a subscription's watermark forward (never back).
    pub fn advance(&self, id: &str, watermark: i64) {
        if let Some(entry) = self.live.get(id)
            && let Ok(mut sub) = entry.lock()
        {
            sub.watermark = sub.watermark.max(watermark);
            sub.last_used = Instant::now();
        }
    }

    /// Removes `creator`'s subscription.
    pub fn remove(&self, id: &str, creator: &str) -> Result<(), Unusable> {
        self.get(id, creator)?;
        self.live.remove(id);
        Ok(())
    }

    /// Drops expired subscriptions (and the feeds no one reads any more).
    pub fn expire(&self) {
        self.live.retain(|_, s| {
            s.get_mut()
                .is_ok_and(|s| s.last_used.elapsed() <= s.timeout)
        });
        self.feeds.prune();
    }

    /// The shared recent feed of `mailbox`, for reading a subscription's events.
    pub fn feed(&self, mailbox: &str) -> super::feed::Feed {
        self.feeds.feed(mailbox)
    }

    /// How many are live (for metrics and tests).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// A watermark's wire form.
pub fn watermark(seq: i64) -> String {
    STANDARD.encode(format!("W{seq}"))
}

/// Reads a watermark.
pub fn parse_watermark(text: &str) -> Option<i64> {
    let raw = String::from_utf8(STANDARD.decode(text.trim()).ok()?).ok()?;
    raw.strip_prefix('W')?.parse().ok()
}

/// One EWS event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `NewMailEvent`, `CreatedEvent`, ...
    pub kind: &'static str,
    pub seq: i64,
    /// Item id (for item events) or folder item id (for folder events).
    pub item: Option<String>,
    pub folder: Option<String>,
    /// The store folder id the change is in.
    pub folder_id: i64,
}

/// The events a subscription reports for a run of feed changes (its folders and
/// types only). `folder_item` gives a store folder's item id. An item rewritten
/// under its own id (an edited draft: the feed has its old UID expunged, then its
/// new one created, in one commit) is one ModifiedEvent.
pub fn events_for(
    sub: &Subscription,
    changes: &[Change],
    folder_item: &dyn Fn(i64) -> Option<String>,
) -> Vec<Event> {
    let rewritten = |i: usize, c: &Change| {
        !c.item_id.is_empty()
            && changes[i + 1..].iter().any(|n| {
                n.kind == ChangeKind::Created
                    && n.item_id == c.item_id
                    && n.folder_id == c.folder_id
            })
    };
    let recreated = |i: usize, c: &Change| {
        !c.item_id.is_empty()
            && changes[..i].iter().any(|p| {
                p.kind == ChangeKind::Expunged
                    && p.item_id == c.item_id
                    && p.folder_id == c.folder_id
            })
    };
    let mut out = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let watched = sub
            .folders
            .as_ref()
            .is_none_or(|f| f.contains(&c.folder_id));
        if !watched {
            continue;
        }
        let folder = folder_item(c.folder_id);
        let item = (!c.item_id.is_empty()).then(|| c.item_id.clone());
        let mut push = |kind, bit, item: Option<String>, folder: Option<String>| {
            if sub.events.has(bit) {
                out.push(Event {
                    kind,
                    seq: c.seq,
                    item,
                    folder,
                    folder_id: c.folder_id,
                });
            }
        };
        match c.kind {
            ChangeKind::Expunged if rewritten(i, c) => {}
            ChangeKind::Created if recreated(i, c) => {
                push("ModifiedEvent", EventTypes::MODIFIED, item, folder)
            }
            ChangeKind::Created => {
                push(
                    "NewMailEvent",
                    EventTypes::NEW_MAIL,
                    item.clone(),
                    folder.clone(),
                );
                push("CreatedEvent", EventTypes::CREATED, item, folder);
            }
            ChangeKind::Flags | ChangeKind::ReadFlag => {
                push("ModifiedEvent", EventTypes::MODIFIED, item, folder)
            }
            ChangeKind::Expunged => push("DeletedEvent", EventTypes::DELETED, item, folder),
            ChangeKind::FolderCreated => push("CreatedEvent", EventTypes::CREATED, None, item),
            ChangeKind::FolderDeleted => push("DeletedEvent", EventTypes::DELETED, None, item),
            ChangeKind::FolderRenamed => push("ModifiedEvent", EventTypes::MODIFIED, None, item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(folders: Option<&[i64]>, events: &[&str]) -> Subscription {
        Subscription {
            id: String::new(),
            mailbox: "m".into(),
            creator: "u".into(),
            folders: folders.map(|f| f.iter().copied().collect()),
            events: EventTypes::parse(events.iter().copied()),
            watermark: 0,
            streaming: false,
            timeout: Duration::from_secs(60),
            last_used: Instant::now(),
        }
    }

    fn change(seq: i64, folder_id: i64, kind: ChangeKind) -> Change {
        Change {
            seq,
            folder_id,
            kind,
            uid: 1,
            modseq: 1,
            item_id: format!("i{seq}"),
        }
    }

    #[test]
    fn feed_changes_become_the_subscribed_events_of_watched_folders() {
        let s = sub(
            Some(&[1]),
            &["NewMailEvent", "DeletedEvent", "ModifiedEvent"],
        );
        let changes = [
            change(1, 1, ChangeKind::Created),
            change(2, 2, ChangeKind::Created),
            change(3, 1, ChangeKind::Flags),
            change(4, 1, ChangeKind::Expunged),
            change(5, 1, ChangeKind::FolderRenamed),
        ];
        let ev = events_for(&s, &changes, &|id| Some(format!("f{id}")));
        let kinds: Vec<_> = ev.iter().map(|e| (e.kind, e.seq)).collect();
        assert_eq!(
            kinds,
            [
                ("NewMailEvent", 1),
                ("ModifiedEvent", 3),
                ("DeletedEvent", 4),
                ("ModifiedEvent", 5)
            ]
        );
        assert_eq!(ev[3].item, None, "a folder event names the folder");
        assert_eq!(ev[3].folder.as_deref(), Some("i5"));
        let all = sub(None, &["CreatedEvent"]);
        assert_eq!(events_for(&all, &changes, &|_| None).len(), 2);
        // A draft rewritten under its id: expunged and created in one commit.
        let mut edit = [
            change(6, 1, ChangeKind::Expunged),
            change(7, 1, ChangeKind::Created),
        ];
        edit[1].item_id = edit[0].item_id.clone();
        let ev = events_for(&s, &edit, &|_| None);
        let kinds: Vec<_> = ev.iter().map(|e| (e.kind, e.item.as_deref())).collect();
        assert_eq!(kinds, [("ModifiedEvent", Some("i6"))]);
    }

    #[test]
    fn subscriptions_belong_to_their_creator_and_expire() {
        let subs = Subscriptions::default();
        let id = subs.add(sub(None, &["NewMailEvent"])).unwrap();
        assert!(subs.get(&id, "u").is_ok());
        assert_eq!(subs.get(&id, "intruder").unwrap_err(), Unusable::NotFound);
        subs.advance(&id, 9);
        subs.advance(&id, 3);
        assert_eq!(subs.get(&id, "u").unwrap().watermark, 9);
        let mut old = sub(None, &[]);
        old.timeout = Duration::ZERO;
        let gone = subs.add(old).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(subs.get(&gone, "u").unwrap_err(), Unusable::NotFound);
        subs.remove(&id, "u").unwrap();
        assert!(subs.get(&id, "u").is_err());
        assert_eq!(parse_watermark(&watermark(42)), Some(42));
        assert_eq!(parse_watermark("junk"), None);
    }
}
