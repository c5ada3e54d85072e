//! SEARCHRES (RFC 5182, part of IMAP4rev2): the `$` marker that stands for the
//! result a `SEARCH RETURN (SAVE)` kept. imap-codec does not know `$`, so before the
//! command is parsed every `$` in a sequence-set position is replaced with the
//! messages it names, spelled so imap-codec parses them; a `$` anywhere else is left
//! alone (it is a valid atom in a mailbox name, flag keyword or search string) and,
//! where only a sequence set would do, imap-codec rejects it (BAD).
//!
//! The saved result holds messages, kept as UIDs: under a UID command `$` becomes
//! those UIDs, under a sequence-number command their current sequence numbers, and
//! inside SEARCH criteria a `UID` key, so it means the same messages either way.
//! Messages expunged since the SEARCH drop out because only UIDs still in the view
//! are substituted. Substitution happens when the command is dispatched, after every
//! earlier command finished, which is what RFC 5182 2.1 asks of a server that
//! receives a command using `$` pipelined behind a SEARCH with SAVE.

use std::borrow::Cow;

use super::lexer::{Tok, token};
use super::response::compact_set;

/// Stands in for `$` where the saved result is empty and a set must still parse;
/// the session answers such a command without running it (`names_nothing`).
const NOTHING: &str = "4294967295";

/// A command with `$` replaced.
#[derive(Debug, PartialEq, Eq)]
pub struct Substituted<'a> {
    pub bytes: Cow<'a, [u8]>,
    /// The command's own sequence set (FETCH, STORE, COPY, MOVE, UID EXPUNGE) was
    /// `$` and the saved result is empty: it names no message and succeeds doing
    /// nothing (RFC 5182 2.1).
    pub names_nothing: bool,
}

/// The saved UIDs still in the view (`view`: UIDs in sequence order, ascending).
pub fn present(saved: &[u32], view: &[u32]) -> Vec<u32> {
    saved
        .iter()
        .copied()
        .filter(|u| view.binary_search(u).is_ok())
        .collect()
}

/// What a `SEARCH RETURN (...)` with SAVE keeps (RFC 5182 2.4): with MIN and/or MAX
/// and neither ALL nor COUNT, only those messages; otherwise all found. `hits` are
/// UIDs; `options` the RETURN words, upper-cased.
pub fn to_save(options: &[String], hits: &[u32]) -> Vec<u32> {
    let has = |o: &str| options.iter().any(|w| w == o);
    let mut out = if (has("MIN") || has("MAX")) && !has("ALL") && !has("COUNT") {
        let mut v = Vec::new();
        if has("MIN") {
            v.extend(hits.iter().min());
        }
        if has("MAX") {
            v.extend(hits.iter().max());
        }
        v
    } else {
        hits.to_vec()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Replaces `$` in `msg`. `saved` are the saved UIDs still in the view, ascending;
/// `view` the view's UIDs in sequence order.
pub fn substitute<'a>(msg: &'a [u8], saved: &[u32], view: &[u32]) -> Substituted<'a> {
    let unchanged = Substituted {
        bytes: Cow::Borrowed(msg),
        names_nothing: false,
    };
    let Some((uid, name, args)) = command_name(msg) else {
        return unchanged;
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut names_nothing = false;
    match name.as_str() {
        "FETCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE" if name != "EXPUNGE" || uid => {
            let Some((Tok::Atom, start, end)) = token(msg, args) else {
                return unchanged;
            };
            if &msg[start..end] != b"$" {
                return unchanged;
            }
            let set = if uid {
                compact_set(saved)
            } else {
                let seqs: Vec<u32> = saved
                    .iter()
                    .filter_map(|u| view.binary_search(u).ok())
                    .map(|i| i as u32 + 1)
                    .collect();
                compact_set(&seqs)
            };
            if set.is_empty() {
                names_nothing = true;
                edits.push((start, end, NOTHING.to_string()));
            } else {
                edits.push((start, end, set));
            }
        }
        "SEARCH" => {
            let key = if saved.is_empty() {
                "NOT ALL".to_string()
            } else {
                format!("UID {}", compact_set(saved))
            };
            for (start, end) in search_markers(msg, args) {
                edits.push((start, end, key.clone()));
            }
        }
        _ => {}
    }
    if edits.is_empty() {
        return unchanged;
    }
    let mut out = msg.to_vec();
    for (start, end, with) in edits.into_iter().rev() {
        out.splice(start..end, with.into_bytes());
    }
    Substituted {
        bytes: Cow::Owned(out),
        names_nothing,
    }
}

/// `tag [UID] NAME SP`: whether UID, NAME upper-cased, and where its arguments start.
fn command_name(msg: &[u8]) -> Option<(bool, String, usize)> {
    let sp = msg.iter().position(|&b| b == b' ')?;
    let word = |from: usize| -> Option<(String, usize)> {
        let len = msg[from..].iter().position(|&b| b == b' ')?;
        let w = std::str::from_utf8(&msg[from..from + len]).ok()?;
        Some((w.to_ascii_uppercase(), from + len + 1))
    };
    let (first, next) = word(sp + 1)?;
    if first == "UID" {
        let (name, args) = word(next)?;
        Some((true, name, args))
    } else {
        Some((false, first, next))
    }
}

/// How many argument tokens follow a search key (RFC 9051 `search-key`); `None` for
/// MODSEQ, whose count depends on what follows.
fn arity(key: &str) -> Option<usize> {
    Some(match key {
        "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" | "KEYWORD" | "UNKEYWORD"
        | "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" | "LARGER"
        | "SMALLER" | "CHARSET" | "OLDER" | "YOUNGER" => 1,
        "HEADER" => 2,
        "MODSEQ" => return None,
        _ => 0,
    })
}

/// Byte ranges of the `$` markers in SEARCH criteria starting at `pos`: a `$` key,
/// or `UID $` as a whole. Arguments of other keys are skipped, so `SUBJECT $`
/// searches for a dollar sign.
fn search_markers(msg: &[u8], mut pos: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut skip = 0usize;
    let mut uid_at: Option<usize> = None;
    while let Some((tok, start, end)) = token(msg, pos) {
        pos = end;
        if matches!(tok, Tok::Open | Tok::Close) {
            skip = 0;
            uid_at = None;
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let is_dollar = tok == Tok::Atom && &msg[start..end] == b"$";
        if let Some(at) = uid_at.take() {
            if is_dollar {
                out.push((at, end));
            }
            continue;
        }
        if is_dollar {
            out.push((start, end));
            continue;
        }
        if tok != Tok::Atom {
            continue;
        }
        let key = String::from_utf8_lossy(&msg[start..end]).to_ascii_uppercase();
        if key == "UID" {
            uid_at = Some(start);
            continue;
        }
        skip = match arity(&key) {
            Some(n) => n,
            // MODSEQ ["entry-name" entry-type] mod-sequence.
            None => match token(msg, pos) {
                Some((Tok::Str | Tok::Literal, ..)) => 3,
                _ => 1,
            },
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(msg: &str, saved: &[u32], view: &[u32]) -> (String, bool) {
        let s = substitute(msg.as_bytes(), saved, view);
        (
            String::from_utf8_lossy(&s.bytes).into_owned(),
            s.names_nothing,
        )
    }

    const VIEW: [u32; 5] = [3, 5, 7, 8, 20];

    #[test]
    fn sequence_set_positions() {
        assert_eq!(
            sub("a UID FETCH $ (FLAGS)\r\n", &[5, 7, 8], &VIEW),
            ("a UID FETCH 5,7:8 (FLAGS)\r\n".into(), false)
        );
        assert_eq!(
            sub("a FETCH $ (FLAGS)\r\n", &[5, 7, 8], &VIEW),
            ("a FETCH 2:4 (FLAGS)\r\n".into(), false)
        );
        assert_eq!(
            sub("a store $ +FLAGS ($)\r\n", &[20], &VIEW),
            ("a store 5 +FLAGS ($)\r\n".into(), false)
        );
        assert_eq!(
            sub("a UID MOVE $ Archive\r\n", &[3], &VIEW),
            ("a UID MOVE 3 Archive\r\n".into(), false)
        );
        assert_eq!(
            sub("a UID EXPUNGE $\r\n", &[3, 20], &VIEW),
            ("a UID EXPUNGE 3,20\r\n".into(), false)
        );
        assert_eq!(
            sub("a COPY $ $\r\n", &[], &VIEW),
            ("a COPY 4294967295 $\r\n".into(), true)
        );
    }

    #[test]
    fn other_positions_are_left_alone() {
        for m in [
            "a FETCH 1:$ (FLAGS)\r\n",
            "a FETCH $,2 (FLAGS)\r\n",
            "a SELECT $\r\n",
            "a EXPUNGE $\r\n",
            "a SEARCH SUBJECT $\r\n",
            "a SEARCH HEADER $ $\r\n",
            "a SEARCH SUBJECT \"$\" BODY {1}\r\n$\r\n",
            "a SEARCH KEYWORD $Forwarded\r\n",
            "a SEARCH MODSEQ \"/flags/$\" all 5\r\n",
            "a APPEND $ {1}\r\n$\r\n",
        ] {
            assert_eq!(sub(m, &[5], &VIEW), (m.to_string(), false), "{m}");
        }
    }

    #[test]
    fn search_criteria() {
        assert_eq!(
            sub("a SEARCH $ UNSEEN\r\n", &[5, 7], &VIEW).0,
            "a SEARCH UID 5,7 UNSEEN\r\n"
        );
        assert_eq!(
            sub("a UID SEARCH OR UID $ (SUBJECT $ $)\r\n", &[5], &VIEW).0,
            "a UID SEARCH OR UID 5 (SUBJECT $ UID 5)\r\n"
        );
        assert_eq!(
            sub("a SEARCH CHARSET UTF-8 NOT $\r\n", &[], &VIEW).0,
            "a SEARCH CHARSET UTF-8 NOT NOT ALL\r\n"
        );
        assert_eq!(
            sub("a SEARCH MODSEQ 5 $\r\n", &[8], &VIEW).0,
            "a SEARCH MODSEQ 5 UID 8\r\n"
        );
        assert_eq!(
            sub("a SEARCH BODY {1+}\r\n$ $\r\n", &[8], &VIEW).0,
            "a SEARCH BODY {1+}\r\n$ UID 8\r\n"
        );
    }

    #[test]
    fn saved_results() {
        assert_eq!(present(&[1, 5, 9, 20], &VIEW), vec![5, 20]);
        let opts = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(to_save(&opts(&["SAVE"]), &[9, 3, 7]), vec![3, 7, 9]);
        assert_eq!(to_save(&opts(&["SAVE", "MIN"]), &[9, 3, 7]), vec![3]);
        assert_eq!(
            to_save(&opts(&["MAX", "SAVE", "MIN"]), &[9, 3, 7]),
            vec![3, 9]
        );
        assert_eq!(
            to_save(&opts(&["SAVE", "MIN", "COUNT"]), &[9, 3, 7]),
            vec![3, 7, 9]
        );
        assert_eq!(to_save(&opts(&["SAVE", "MAX"]), &[]), Vec::<u32>::new());
    }

    proptest::proptest! {
        /// Whatever the bytes, substitution neither panics nor touches a command
        /// without a `$`.
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let s = substitute(&input, &[1, 2], &[1, 2, 3]);
            if !input.contains(&b'$') {
                proptest::prop_assert_eq!(&*s.bytes, &input[..]);
            }
        }
    }
}
