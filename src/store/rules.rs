//! The pure rules every backend applies the same way: item ids, the stored
//! spelling of flag lists, flag arithmetic, folder names, property merges and
//! the tag limit.
//!
//! Owns nothing stored; shared by `sqlite` and `postgres` so that the two never
//! drift apart on what a STORE or an UpdateItem means.

use super::{ChangeKind, FlagOp, ItemChange, Property, flag_change_kind, normalize_flags};

/// A stable item id (IMAP OBJECTID, EWS ItemId). Time-ordered (UUIDv7) so the
/// unique index on it grows at its right edge: a random id dirtied one index page
/// per delivered message, written to the WAL and again at checkpoint.
pub(crate) fn new_item_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A flag list as stored: normalised, space-separated.
pub(crate) fn flags_to_text(flags: &[String]) -> String {
    normalize_flags(flags).join(" ")
}

/// A stored flag list back as flags.
pub(crate) fn flags_from_text(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Checks a folder path: non-empty components, no control characters, bounded.
pub(crate) fn valid_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && name
            .split('/')
            .all(|part| !part.is_empty() && part.len() <= 255)
        && !name.chars().any(|ch| ch.is_control())
}

/// What a flag command does to one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FlagStep {
    /// Changed after the client's UNCHANGEDSINCE: left alone, reported MODIFIED.
    Modified,
    /// Its flags already are what the command asks.
    Same,
    /// New flags, recorded in the feed as `kind`.
    Set { next: Vec<String>, kind: ChangeKind },
}

/// The step STORE `op` with `flags` takes on a message at `modseq` holding the
/// stored flag text `stored`.
pub(crate) fn flag_step(
    modseq: i64,
    stored: &str,
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<u64>,
) -> FlagStep {
    if unchanged_since.is_some_and(|u| modseq as u64 > u) {
        return FlagStep::Modified;
    }
    let current = flags_from_text(stored);
    let next = apply_flag_op(&current, op, flags);
    if next == normalize_flags(&current) {
        return FlagStep::Same;
    }
    let kind = flag_change_kind(&current, &next);
    FlagStep::Set { next, kind }
}

/// The flags a message has after STORE `op` with `flags` (normalised).
pub(crate) fn apply_flag_op(current: &[String], op: FlagOp, flags: &[String]) -> Vec<String> {
    match op {
        FlagOp::Replace => normalize_flags(flags),
        FlagOp::Add => normalize_flags(&[current.to_vec(), flags.to_vec()].concat()),
        FlagOp::Remove => normalize_flags(
            &current
                .iter()
                .filter(|f| !flags.iter().any(|g| g.eq_ignore_ascii_case(f)))
                .cloned()
                .collect::<Vec<_>>(),
        ),
    }
}

/// An item's properties after `change` (set replaces by name, remove drops),
/// in name order.
pub(crate) fn merge_properties(before: &[Property], change: &ItemChange) -> Vec<Property> {
    let mut after = before.to_vec();
    after.retain(|(n, _)| !change.remove.contains(n) && !change.set.iter().any(|(s, _)| s == n));
    after.extend(change.set.iter().cloned());
    after.sort();
    after
}

/// Whether a resource with tag keys `existing` stays within `max` tags once
/// `new` is added (a key already there, or given twice, counts once).
pub(crate) fn tags_fit(existing: &[String], new: &[super::Tag], max: usize) -> bool {
    let mut keys: std::collections::BTreeSet<&str> = existing.iter().map(String::as_str).collect();
    keys.extend(new.iter().map(|(k, _)| k.as_str()));
    keys.len() <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(flags: &[&str]) -> Vec<String> {
        flags.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn a_flag_step_refuses_after_unchangedsince_skips_no_ops_and_names_the_change() {
        let seen = v(&["\\Seen"]);
        assert_eq!(
            flag_step(5, "\\Seen", FlagOp::Add, &seen, Some(4)),
            FlagStep::Modified
        );
        assert_eq!(
            flag_step(5, "\\Seen", FlagOp::Add, &seen, Some(5)),
            FlagStep::Same
        );
        assert_eq!(
            flag_step(5, "$Work", FlagOp::Add, &seen, None),
            FlagStep::Set {
                next: v(&["\\Seen", "$Work"]),
                kind: ChangeKind::ReadFlag
            }
        );
        assert_eq!(
            flag_step(5, "\\Seen", FlagOp::Add, &v(&["\\Flagged"]), None),
            FlagStep::Set {
                next: v(&["\\Flagged", "\\Seen"]),
                kind: ChangeKind::Flags
            }
        );
    }

    #[test]
    fn flag_ops_add_remove_and_replace_case_insensitively() {
        let cur = v(&["\\Seen", "$Work"]);
        assert_eq!(
            apply_flag_op(&cur, FlagOp::Add, &v(&["\\seen", "\\Flagged"])),
            v(&["\\Flagged", "\\Seen", "$Work"])
        );
        assert_eq!(
            apply_flag_op(&cur, FlagOp::Remove, &v(&["\\SEEN"])),
            v(&["$Work"])
        );
        assert_eq!(
            apply_flag_op(&cur, FlagOp::Replace, &[]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn flag_text_round_trips_and_skips_empty_parts() {
        let flags = v(&["\\Seen", "$Work"]);
        assert_eq!(flags_from_text(&flags_to_text(&flags)), flags);
        assert_eq!(flags_from_text("  a  b "), v(&["a", "b"]));
    }

    #[test]
    fn folder_names_are_checked() {
        assert!(valid_folder_name("Work/2026"));
        for bad in ["", "a//b", "/a", "a/", "tab\there", &"x".repeat(256)] {
            assert!(!valid_folder_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn property_merges_replace_remove_and_sort() {
        let before = vec![("b".to_string(), vec![1]), ("a".to_string(), vec![2])];
        let change = ItemChange {
            flags: None,
            set: vec![("b".into(), vec![9]), ("c".into(), vec![3])],
            remove: vec!["a".into()],
        };
        assert_eq!(
            merge_properties(&before, &change),
            vec![("b".to_string(), vec![9]), ("c".to_string(), vec![3])]
        );
    }

    #[test]
    fn the_tag_limit_counts_each_key_once() {
        let t = |k: &str| (k.to_string(), "v".to_string());
        let existing = vec!["x".to_string(), "y".to_string()];
        assert!(tags_fit(&existing, &[t("x"), t("z")], 3), "x overwrites");
        assert!(!tags_fit(&existing, &[t("p"), t("q")], 3));
        assert!(tags_fit(&[], &[t("a"), t("a")], 1), "a key given twice");
        assert!(!tags_fit(&[], &[t("a")], 0));
        assert!(tags_fit(&existing, &[], usize::MAX));
    }
}
