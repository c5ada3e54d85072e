//! MULTIAPPEND (RFC 3502) over a real socket: several messages in one APPEND,
//! stored all or none, with APPENDUID naming every new UID.

use super::*;

async fn count(c: &mut Tls, mailbox: &str) -> String {
    let r = c.cmd("st", &format!("STATUS {mailbox} (MESSAGES)")).await;
    r.split("(MESSAGES ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("{r}"))
        .to_string()
}

#[tokio::test]
async fn several_messages_in_one_append_are_stored_together() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    let r = c.cmd("a0", "CAPABILITY").await;
    assert!(r.contains(" MULTIAPPEND"), "{r}");

    // LITERAL+ throughout, with flags and a date on the second message.
    let (m1, m2, m3) = (message("one", 10), message("two", 20), message("three", 30));
    c.send(&format!(
        "a1 APPEND INBOX (\\Seen) {{{}+}}\r\n{m1} (\\Flagged) \"24-Nov-2026 01:02:03 +0000\" {{{}+}}\r\n{m2} {{{}+}}\r\n{m3}\r\n",
        m1.len(),
        m2.len(),
        m3.len()
    ))
    .await;
    let r = c.until("a1").await;
    assert!(
        r.starts_with("a1 OK [APPENDUID ") && r.contains(" 1:3] "),
        "{r}"
    );
    assert_eq!(count(&mut c, "INBOX").await, "3");

    // Synchronizing literals: a continuation request for each message.
    let (m4, m5) = (message("four", 10), message("five", 10));
    c.send(&format!("a2 APPEND INBOX {{{}}}\r\n", m4.len()))
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(&format!("{m4} (\\Draft) {{{}}}\r\n", m5.len()))
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(&format!("{m5}\r\n")).await;
    let r = c.until("a2").await;
    assert!(
        r.starts_with("a2 OK [APPENDUID ") && r.contains(" 4:5] "),
        "{r}"
    );

    let r = c.cmd("a3", "SELECT INBOX").await;
    assert!(r.contains("* 5 EXISTS"), "{r}");
    let r = c.cmd("a4", "FETCH 1:* (UID FLAGS INTERNALDATE)").await;
    assert!(
        r.contains("* 1 FETCH (UID 1 FLAGS (\\Recent \\Seen)"),
        "{r}"
    );
    assert!(
        r.contains(
            "* 2 FETCH (UID 2 FLAGS (\\Recent \\Flagged) INTERNALDATE \"24-Nov-2026 01:02:03 +0000\")"
        ),
        "{r}"
    );
    assert!(
        r.contains("* 5 FETCH (UID 5 FLAGS (\\Recent \\Draft)"),
        "{r}"
    );
    let r = c.cmd("a5", "UID FETCH 3 BODY.PEEK[]").await;
    assert!(r.contains(&m3), "{r}");
}

#[tokio::test]
async fn a_refused_message_in_the_middle_leaves_nothing_stored() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    let ok = message("ok", 10);
    let n = ok.len();

    // Too large, LITERAL+: read and dropped with the whole command.
    let big = "x".repeat(LIMIT as usize + 1);
    c.send(&format!(
        "b1 APPEND INBOX {{{n}+}}\r\n{ok} {{{}+}}\r\n{big} {{{n}+}}\r\n{ok}\r\n",
        big.len()
    ))
    .await;
    let r = c.until("b1").await;
    assert!(r.starts_with("b1 NO [TOOBIG]"), "{r}");
    assert_eq!(count(&mut c, "INBOX").await, "0");

    // Too large, synchronizing: refused before the client sends it.
    c.send(&format!("b2 APPEND INBOX {{{n}}}\r\n")).await;
    assert!(c.line().await.starts_with("+ "));
    c.send(&format!("{ok} {{{}}}\r\n", LIMIT + 1)).await;
    let r = c.until("b2").await;
    assert!(r.starts_with("b2 NO [TOOBIG]"), "{r}");
    assert_eq!(count(&mut c, "INBOX").await, "0");

    // Empty, and malformed, in the middle.
    c.send(&format!(
        "b3 APPEND INBOX {{{n}+}}\r\n{ok} {{0+}}\r\n {{{n}+}}\r\n{ok}\r\n"
    ))
    .await;
    let r = c.until("b3").await;
    assert!(r.starts_with("b3 NO"), "{r}");
    c.send(&format!(
        "b4 APPEND INBOX {{{n}+}}\r\n{ok} \"not a date\" {{{n}+}}\r\n{ok}\r\n"
    ))
    .await;
    let r = c.until("b4").await;
    assert!(r.starts_with("b4 BAD"), "{r}");
    c.send(&format!(
        "b5 APPEND Nowhere {{{n}+}}\r\n{ok} {{{n}+}}\r\n{ok}\r\n"
    ))
    .await;
    let r = c.until("b5").await;
    assert!(r.starts_with("b5 NO [TRYCREATE]"), "{r}");
    assert_eq!(count(&mut c, "INBOX").await, "0");
    let r = c.cmd("z", "NOOP").await;
    assert!(r.starts_with("z OK"), "{r}");
}
