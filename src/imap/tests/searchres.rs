//! SEARCHRES (RFC 5182) over a real socket: SAVE and `$` in every sequence-set
//! position, pipelining, the resets, and the bad inputs.

use super::*;

/// Alice's INBOX with five messages, UIDs 1..=5, the odd ones \Seen; selected.
async fn five(f: &Fixture) -> Tls {
    let mut c = imaps(f, Some("alice")).await;
    for (i, subject) in ["one", "two", "three", "four", "five"].iter().enumerate() {
        let flags = if i % 2 == 0 { "\\Seen" } else { "" };
        let r = append(&mut c, "ap", "INBOX", flags, &message(subject, 10)).await;
        assert!(r.starts_with("ap OK [APPENDUID "), "{r}");
    }
    let r = c.cmd("sel", "SELECT INBOX").await;
    assert!(r.contains("* 5 EXISTS"), "{r}");
    c
}

/// The `* n FETCH (UID u ...` pairs in a response, in order.
fn fetched(r: &str) -> Vec<(u32, u32)> {
    r.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("* ")?;
            let (seq, rest) = rest.split_once(" FETCH (")?;
            let uid = rest.split("UID ").nth(1)?.split([' ', ')']).next()?;
            Some((seq.parse().ok()?, uid.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_saved_result_is_used_by_fetch_store_search_copy_move_and_expunge() {
    let f = fixture().await;
    let mut c = five(&f).await;
    let r = c.cmd("a0", "CAPABILITY").await;
    assert!(r.contains(" SEARCHRES"), "{r}");

    // SAVE alone: no ESEARCH, no SEARCH response.
    let r = c.cmd("a1", "SEARCH RETURN (SAVE) SEEN").await;
    assert_eq!(r, "a1 OK SEARCH completed, result saved\r\n");
    let r = c.cmd("a2", "FETCH $ (UID)").await;
    assert_eq!(fetched(&r), vec![(1, 1), (3, 3), (5, 5)], "{r}");
    let r = c.cmd("a3", "UID FETCH $ (FLAGS)").await;
    assert_eq!(fetched(&r), vec![(1, 1), (3, 3), (5, 5)], "{r}");
    // `$` as a search key, after UID, under NOT; a `$` search string is just text.
    let r = c.cmd("a4", "UID SEARCH UID $ SUBJECT three").await;
    assert!(r.contains("* SEARCH 3\r\n"), "{r}");
    let r = c.cmd("a5", "SEARCH NOT $").await;
    assert!(r.contains("* SEARCH 2 4\r\n"), "{r}");
    let r = c.cmd("a6", "SEARCH OR $ SUBJECT $").await;
    assert!(r.contains("* SEARCH 1 3 5\r\n"), "{r}");
    let r = c.cmd("a7", "STORE $ +FLAGS (\\Flagged)").await;
    assert_eq!(r.matches("\\Flagged").count(), 3, "{r}");
    assert!(r.contains("a7 OK"), "{r}");

    // Messages expunged since drop out; sequence numbers follow the view.
    let r = c.cmd("b1", "UID STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    assert!(r.contains("b1 OK"), "{r}");
    let r = c.cmd("b2", "EXPUNGE").await;
    assert!(r.contains("* 3 EXPUNGE"), "{r}");
    let r = c.cmd("b3", "FETCH $ (UID)").await;
    assert_eq!(fetched(&r), vec![(1, 1), (4, 5)], "{r}");
    let r = c.cmd("b4", "UID COPY $ Archive").await;
    assert!(
        r.contains("b4 OK [COPYUID ") && r.contains(" 1,5 1,2]"),
        "{r}"
    );

    // SAVE with MIN keeps only the minimum, and MIN is still answered.
    let r = c.cmd("c1", "UID SEARCH RETURN (SAVE MIN) UNSEEN").await;
    assert!(r.contains("* ESEARCH (TAG \"c1\") UID MIN 2\r\n"), "{r}");
    let r = c.cmd("c2", "UID MOVE $ Archive").await;
    assert!(r.contains("* 2 EXPUNGE") && r.contains("c2 OK"), "{r}");
    let r = c.cmd("c3", "STATUS Archive (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 3)"), "{r}");
    // The moved message is gone from `$` too.
    let r = c.cmd("c4", "UID FETCH $ (FLAGS)").await;
    assert_eq!(fetched(&r), vec![], "{r}");
    assert!(r.contains("c4 OK"), "{r}");

    // SAVE with ALL (and MODSEQ-free) answers ALL and saves all.
    let r = c.cmd("d1", "SEARCH RETURN (ALL SAVE) ALL").await;
    assert!(r.contains("* ESEARCH (TAG \"d1\") ALL 1:3\r\n"), "{r}");
    let r = c.cmd("d2", "STORE $ +FLAGS.SILENT (\\Deleted)").await;
    assert!(r.contains("d2 OK"), "{r}");
    let r = c.cmd("d3", "UID EXPUNGE $").await;
    assert!(r.matches(" EXPUNGE\r\n").count() == 3, "{r}");
    let r = c.cmd("d4", "FETCH $ (UID)").await;
    assert_eq!(fetched(&r), vec![], "{r}");
    assert!(r.contains("d4 OK"), "{r}");
}

#[tokio::test]
async fn a_pipelined_fetch_sees_the_search_before_it_and_resets_empty_the_result() {
    let f = fixture().await;
    let mut c = five(&f).await;
    // Sent in one write: the FETCH must see what the SEARCH saved.
    c.send("p1 SEARCH RETURN (SAVE) UNSEEN\r\np2 FETCH $ (UID)\r\n")
        .await;
    let r = c.until("p2").await;
    assert!(r.starts_with("p1 OK"), "{r}");
    assert_eq!(fetched(&r), vec![(2, 2), (4, 4)], "{r}");

    // A SEARCH with SAVE that ends in NO empties `$`; one that ends in BAD (bad
    // option, unparsable) leaves it as it was (RFC 9051 6.4.4.1).
    let all: Vec<(u32, u32)> = (1..=5).map(|n| (n, n)).collect();
    for (tag, failing, status, left) in [
        (
            "f1",
            "SEARCH RETURN (SAVE) CHARSET KOI8-R SEEN",
            "NO",
            vec![],
        ),
        ("f2", "SEARCH RETURN (SAVE FOO) SEEN", "BAD", all.clone()),
        (
            "f3",
            "UID SEARCH RETURN (SAVE) LARGER x",
            "BAD",
            all.clone(),
        ),
    ] {
        let r = c.cmd("s", "SEARCH RETURN (SAVE) ALL").await;
        assert!(r.starts_with("s OK"), "{r}");
        c.send(&format!("{tag} {failing}\r\n{tag}f UID FETCH $ (UID)\r\n"))
            .await;
        let r = c.until(&format!("{tag}f")).await;
        assert!(r.starts_with(&format!("{tag} {status}")), "{r}");
        assert_eq!(fetched(&r), left, "{failing}: {r}");
        assert!(r.contains(&format!("{tag}f OK")), "{r}");
    }

    // SELECT, EXAMINE, UNSELECT and CLOSE each reset it.
    for (tag, reset, reselect) in [
        ("r1", "SELECT INBOX", None),
        ("r2", "EXAMINE INBOX", None),
        ("r3", "UNSELECT", Some("SELECT INBOX")),
        ("r4", "CLOSE", Some("SELECT INBOX")),
    ] {
        let r = c.cmd("s", "SEARCH RETURN (SAVE) ALL").await;
        assert!(r.starts_with("s OK"), "{r}");
        let r = c.cmd(tag, reset).await;
        assert!(r.contains(&format!("{tag} OK")), "{r}");
        if let Some(select) = reselect {
            let r = c.cmd("re", select).await;
            assert!(r.contains("re OK"), "{r}");
        }
        let r = c.cmd(&format!("{tag}f"), "FETCH $ (UID)").await;
        assert_eq!(fetched(&r), vec![], "{reset}: {r}");
        assert!(r.contains(&format!("{tag}f OK")), "{r}");
    }
}

#[tokio::test]
async fn dollar_without_a_result_is_empty_and_misplaced_dollar_is_bad() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    let r = c.cmd("n1", "FETCH $ (FLAGS)").await;
    assert!(r.starts_with("n1 BAD"), "no mailbox selected: {r}");
    drop(c);
    let mut c = five(&f).await;
    // Nothing saved yet: `$` is the empty set everywhere.
    let r = c.cmd("e1", "FETCH $ (FLAGS)").await;
    assert!(r.starts_with("e1 OK"), "{r}");
    let r = c.cmd("e2", "UID STORE $ +FLAGS (\\Deleted)").await;
    assert!(r.starts_with("e2 OK"), "{r}");
    let r = c.cmd("e3", "COPY $ Archive").await;
    assert!(r.starts_with("e3 OK") && !r.contains("COPYUID"), "{r}");
    let r = c.cmd("e4", "MOVE $ Nowhere").await;
    assert!(r.starts_with("e4 NO [TRYCREATE]"), "{r}");
    let r = c.cmd("e5", "SEARCH $").await;
    assert!(r.contains("* SEARCH\r\n") && r.contains("e5 OK"), "{r}");
    let r = c.cmd("e6", "SEARCH OR $ SEEN").await;
    assert!(r.contains("* SEARCH 1 3 5\r\n"), "{r}");
    // `$` only stands alone as a whole sequence set.
    for (tag, bad) in [
        ("b1", "FETCH 1:$ (FLAGS)"),
        ("b2", "FETCH $,2 (FLAGS)"),
        ("b3", "UID FETCH $:* (FLAGS)"),
        ("b4", "SEARCH LARGER $"),
        ("b5", "SEARCH UID 1,$"),
        ("b6", "FETCH 1 ($)"),
        ("b7", "EXPUNGE $"),
    ] {
        let r = c.cmd(tag, bad).await;
        assert!(r.starts_with(&format!("{tag} BAD")), "{bad}: {r}");
    }
    let r = c.cmd("z", "NOOP").await;
    assert!(r.starts_with("z OK"), "{r}");
    // Nothing was flagged deleted or copied by the empty `$`.
    let r = c.cmd("z2", "STATUS Archive (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
    let r = c.cmd("z3", "SEARCH DELETED").await;
    assert!(r.contains("* SEARCH\r\n"), "{r}");
}
