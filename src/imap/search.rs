//! SEARCH key evaluation over one message (RFC 9051 6.4.4): flags, sizes, dates and
//! UIDs from the metadata; header, body and text keys through `content`.

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::datetime::NaiveDate;
use std::collections::HashMap;

use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::content::{self, TextKey};
use super::sequence;
use crate::store::MessageMeta;

/// One message as a search sees it.
pub struct Candidate<'a> {
    /// 1-based sequence number.
    pub seq: u32,
    pub meta: &'a MessageMeta,
    /// The raw message, loaded only when a key needs it.
    pub raw: Option<&'a [u8]>,
    /// The Date header's wall-clock time (see `Structure::sent_date`), for SENT* keys.
    pub sent_date: Option<i64>,
    /// Recent in this session (RECENT, NEW, OLD).
    pub recent: bool,
}

/// Bounds `*` stands for, and the key's message sets resolved against them once
/// (keyed by where each set sits in the key, which outlives the search).
pub struct Stars {
    pub max_seq: u32,
    pub max_uid: u32,
    sets: HashMap<usize, sequence::Merged>,
}

impl Stars {
    /// The bounds, with every set in `key` merged against them.
    pub fn new(max_seq: u32, max_uid: u32, key: &SearchKey<'_>) -> Stars {
        let mut stars = Stars {
            max_seq,
            max_uid,
            sets: HashMap::new(),
        };
        stars.compile(key);
        stars
    }

    fn compile(&mut self, key: &SearchKey<'_>) {
        use SearchKey::*;
        match key {
            SequenceSet(set) => {
                let merged = sequence::Merged::of(set, self.max_seq);
                self.sets.insert(address(set), merged);
            }
            Uid(set) => {
                let merged = sequence::Merged::of(set, self.max_uid);
                self.sets.insert(address(set), merged);
            }
            And(keys) => keys.as_ref().iter().for_each(|k| self.compile(k)),
            Not(k) => self.compile(k),
            Or(a, b) => {
                self.compile(a);
                self.compile(b);
            }
            _ => {}
        }
    }

    /// Whether `n` is in `set` (one of this key's), `*` standing for `star`.
    fn contains(&self, set: &SequenceSet, n: u32, star: u32) -> bool {
        match self.sets.get(&address(set)) {
            Some(merged) => merged.contains(n),
            None => sequence::contains(set, n, star),
        }
    }
}

fn address(set: &SequenceSet) -> usize {
    std::ptr::from_ref(set) as usize
}

/// Whether evaluating `key` needs the message bytes.
pub fn needs_body(key: &SearchKey<'_>) -> bool {
    use SearchKey::*;
    match key {
        And(keys) => keys.as_ref().iter().any(needs_body),
        Not(k) => needs_body(k),
        Or(a, b) => needs_body(a) || needs_body(b),
        Bcc(_) | Body(_) | Cc(_) | From(_) | Header(..) | Subject(_) | Text(_) | To(_)
        | SentBefore(_) | SentOn(_) | SentSince(_) => true,
        _ => false,
    }
}

/// Whether a SENTBEFORE/SENTON/SENTSINCE key needs the parsed Date header.
pub fn uses_sent_date(key: &SearchKey<'_>) -> bool {
    use SearchKey::*;
    match key {
        And(keys) => keys.as_ref().iter().any(uses_sent_date),
        Not(k) => uses_sent_date(k),
        Or(a, b) => uses_sent_date(a) || uses_sent_date(b),
        SentBefore(_) | SentOn(_) | SentSince(_) => true,
        _ => false,
    }
}

/// Whether any key is MODSEQ (the response then carries `(MODSEQ n)`).
pub fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

fn day_of_date(d: &NaiveDate) -> i64 {
    d.as_ref()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp().div_euclid(86_400))
        .unwrap_or(0)
}

fn text(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).into_owned()
}

fn has_flag(m: &MessageMeta, flag: &str) -> bool {
    m.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// Evaluates `key` for one message.
pub fn eval(key: &SearchKey<'_>, c: &Candidate<'_>, stars: &Stars) -> bool {
    use SearchKey::*;
    let m = c.meta;
    let day = m.internal_date.div_euclid(86_400_000);
    let sent_day = c.sent_date.map(|s| s.div_euclid(86_400));
    let header = |name: &str, value: &AString<'_>| {
        let v = text(value);
        c.raw
            .is_some_and(|raw| content::text_matches(raw, &TextKey::Header(name, &v)))
    };
    match key {
        And(keys) => keys.as_ref().iter().all(|k| eval(k, c, stars)),
        SequenceSet(set) => stars.contains(set, c.seq, stars.max_seq),
        All => true,
        Answered => has_flag(m, "\\Answered"),
        Unanswered => !has_flag(m, "\\Answered"),
        Deleted => has_flag(m, "\\Deleted"),
        Undeleted => !has_flag(m, "\\Deleted"),
        Draft => has_flag(m, "\\Draft"),
        Undraft => !has_flag(m, "\\Draft"),
        Flagged => has_flag(m, "\\Flagged"),
        Unflagged => !has_flag(m, "\\Flagged"),
        Seen => has_flag(m, "\\Seen"),
        Unseen => !has_flag(m, "\\Seen"),
        Recent => c.recent,
        New => c.recent && !has_flag(m, "\\Seen"),
        Old => !c.recent,
        Keyword(k) => has_flag(m, k.as_ref()),
        Unkeyword(k) => !has_flag(m, k.as_ref()),
        Before(d) => day < day_of_date(d),
        On(d) => day == day_of_date(d),
        Since(d) => day >= day_of_date(d),
        SentBefore(d) => sent_day.is_some_and(|s| s < day_of_date(d)),
        SentOn(d) => sent_day == Some(day_of_date(d)),
        SentSince(d) => sent_day.is_some_and(|s| s >= day_of_date(d)),
        Larger(n) => m.size > u64::from(*n),
        Smaller(n) => m.size < u64::from(*n),
        Uid(set) => stars.contains(set, m.uid, stars.max_uid),
        Bcc(v) => header("Bcc", v),
        Cc(v) => header("Cc", v),
        From(v) => header("From", v),
        To(v) => header("To", v),
        Subject(v) => header("Subject", v),
        Header(name, v) => header(&text(name), v),
        Body(v) => {
            let v = text(v);
            c.raw
                .is_some_and(|raw| content::text_matches(raw, &TextKey::Body(&v)))
        }
        Text(v) => {
            let v = text(v);
            c.raw
                .is_some_and(|raw| content::text_matches(raw, &TextKey::Text(&v)))
        }
        Not(k) => !eval(k, c, stars),
        Or(a, b) => eval(a, c, stars) || eval(b, c, stars),
        ModSequence { modseq, .. } => m.modseq >= *modseq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::command::CommandBody;

    fn key(criteria: &str) -> SearchKey<'static> {
        let line = format!("a SEARCH {criteria}\r\n");
        let (_, cmd) = CommandCodec::default().decode(line.as_bytes()).unwrap();
        match cmd.body {
            CommandBody::Search { criteria, .. } => {
                let v: Vec<_> = criteria.into_iter().collect();
                if v.len() == 1 {
                    imap_codec::imap_types::IntoStatic::into_static(v[0].clone())
                } else {
                    imap_codec::imap_types::IntoStatic::into_static(SearchKey::And(
                        v.try_into().unwrap(),
                    ))
                }
            }
            _ => unreachable!(),
        }
    }

    fn meta(uid: u32, flags: &[&str], size: u64, ms: i64) -> MessageMeta {
        MessageMeta {
            uid,
            modseq: uid as u64 * 10,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            internal_date: ms,
            size,
            body_id: 1,
            item_id: String::new(),
        }
    }

    fn hit(criteria: &str, m: &MessageMeta, seq: u32) -> bool {
        let c = Candidate {
            seq,
            meta: m,
            raw: None,
            sent_date: None,
            recent: false,
        };
        let key = key(criteria);
        eval(&key, &c, &Stars::new(5, 50, &key))
    }

    /// Issue 20.6 through SEARCH: a set naming the folder 50,000 times is merged
    /// once, not walked for each of 3,547 messages.
    #[test]
    fn a_huge_set_is_tested_once_per_message() {
        let criteria = format!("UID {}", vec!["1:*"; 50_000].join(","));
        let key = key(&criteria);
        let stars = Stars::new(3_547, 3_547, &key);
        let started = std::time::Instant::now();
        let hits = (1..=3_547u32)
            .filter(|&n| {
                let m = meta(n, &[], 10, 0);
                let c = Candidate {
                    seq: n,
                    meta: &m,
                    raw: None,
                    sent_date: None,
                    recent: false,
                };
                eval(&key, &c, &stars)
            })
            .count();
        assert_eq!(hits, 3_547);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
    }

    /// RECENT, NEW and OLD follow the session's \Recent (RFC 3501 6.4.4).
    #[test]
    fn recent_new_and_old() {
        let seen = meta(1, &["\\Seen"], 10, 0);
        let unseen = meta(2, &[], 10, 0);
        let check = |criteria: &str, m: &MessageMeta, recent: bool| {
            let key = key(criteria);
            let c = Candidate {
                seq: 1,
                meta: m,
                raw: None,
                sent_date: None,
                recent,
            };
            eval(&key, &c, &Stars::new(5, 50, &key))
        };
        assert!(check("RECENT", &seen, true));
        assert!(!check("RECENT", &seen, false));
        assert!(check("NEW", &unseen, true));
        assert!(!check("NEW", &seen, true), "NEW is RECENT UNSEEN");
        assert!(!check("NEW", &unseen, false));
        assert!(check("OLD", &unseen, false));
        assert!(!check("OLD", &unseen, true));
    }

    #[test]
    fn metadata_keys() {
        // 2026-11-24 01:02:03 UTC
        let m = meta(7, &["\\Seen", "$Work"], 2000, 1_795_482_123_000);
        assert!(hit("ALL", &m, 2));
        assert!(hit("SEEN", &m, 2));
        assert!(!hit("UNSEEN", &m, 2));
        assert!(hit("KEYWORD $work", &m, 2));
        assert!(hit("LARGER 1999 SMALLER 2001", &m, 2));
        assert!(hit("NOT DELETED", &m, 2));
        assert!(hit("OR DELETED SEEN", &m, 2));
        assert!(hit("UID 5:7", &m, 2));
        assert!(!hit("UID 8:*", &m, 2));
        assert!(hit("2:*", &m, 2));
        assert!(!hit("3", &m, 2));
        assert!(hit("ON 24-Nov-2026", &m, 2));
        assert!(hit("SINCE 24-Nov-2026 BEFORE 25-Nov-2026", &m, 2));
        assert!(!hit("BEFORE 24-Nov-2026", &m, 2));
        assert!(hit("MODSEQ 70", &m, 2));
        assert!(!hit("MODSEQ 71", &m, 2));
        assert!(!needs_body(&key("SEEN UID 1")));
        assert!(needs_body(&key("NOT SUBJECT x")));
        assert!(uses_modseq(&key("OR SEEN MODSEQ 4")));
        assert!(uses_sent_date(&key("NOT SENTON 1-Jan-2020")));
        assert!(!uses_sent_date(&key("SUBJECT x")));
    }
}
