//! What SMTP reads from and adds to a message's header section. Pure functions.

use mail_parser::MessageParser;

use crate::clock;

/// Header facts the email events report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFacts {
    pub subject: String,
    /// The first From address.
    pub from: String,
    pub message_id: Option<String>,
    pub has_date: bool,
    pub has_sender: bool,
}

/// Reads the header section (mail-parser never panics; garbage gives empty facts).
pub fn header_facts(raw: &[u8]) -> HeaderFacts {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return HeaderFacts::default();
    };
    HeaderFacts {
        subject: msg.subject().unwrap_or_default().to_string(),
        from: msg
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string(),
        message_id: msg.message_id().map(str::to_string),
        has_date: msg.date().is_some(),
        has_sender: msg.header("Sender").is_some(),
    }
}

/// Length of the header section including the blank line, or the whole message if
/// it has no body.
pub fn header_len(raw: &[u8]) -> usize {
    memchr::memmem::find(raw, b"\r\n\r\n").map_or(raw.len(), |i| i + 4)
}

/// An RFC 5322 date for `secs` since the epoch, in UTC.
pub fn rfc5322_date(secs: i64) -> String {
    let c = clock::civil(secs);
    format!(
        "{}, {} {} {:04} {:02}:{:02}:{:02} +0000",
        clock::WEEKDAY_ABBR[c.weekday as usize],
        c.day,
        clock::MONTH_ABBR[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second,
    )
}

/// The headers a submission adds when the client left them out (RFC 6409 §8):
/// Message-ID and Date; and `Sender:` when sending on behalf of another mailbox.
pub fn submission_headers(
    facts: &mut HeaderFacts,
    hostname: &str,
    now_secs: i64,
    on_behalf_sender: Option<&str>,
) -> String {
    // `facts` is updated to describe the message with these headers added, so the
    // caller need not parse the header section again.
    let mut out = String::new();
    if facts.message_id.is_none() {
        let id = format!("{}@{hostname}", uuid::Uuid::new_v4().simple());
        out.push_str(&format!("Message-ID: <{id}>\r\n"));
        facts.message_id = Some(id);
    }
    if !facts.has_date {
        out.push_str(&format!("Date: {}\r\n", rfc5322_date(now_secs)));
        facts.has_date = true;
    }
    if let (Some(sender), false) = (on_behalf_sender, facts.has_sender) {
        out.push_str(&format!("Sender: <{sender}>\r\n"));
        facts.has_sender = true;
    }
    out
}

/// The trace header every hop prepends (RFC 5321 §4.4).
pub fn received_header(
    helo: &str,
    peer: std::net::IpAddr,
    hostname: &str,
    with: &str,
    id: &str,
    now_secs: i64,
) -> String {
    let helo: String = helo
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    format!(
        "Received: from {helo} ([{}])\r\n\tby {hostname} (mailgate) with {with} id {id};\r\n\t{}\r\n",
        peer.to_canonical(),
        rfc5322_date(now_secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_from_headers() {
        let raw = b"From: Alice <alice@acme.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <x@y>\r\n\r\nbody";
        let f = header_facts(raw);
        assert_eq!(f.from, "alice@acme.test");
        assert_eq!(f.subject, "café");
        assert_eq!(f.message_id.as_deref(), Some("x@y"));
        assert!(!f.has_date && !f.has_sender);
        assert_eq!(header_facts(b"\x00\xff garbage").from, "");
        assert_eq!(header_len(raw), raw.len() - 4);
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_435_200),
            "Mon, 23 Nov 2026 12:00:00 +0000"
        );
    }

    #[test]
    fn submission_adds_only_what_is_missing() {
        let f = header_facts(
            b"From: a@b.test\r\nDate: Mon, 23 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@b>\r\n\r\n",
        );
        let mut unchanged = f.clone();
        assert_eq!(submission_headers(&mut unchanged, "mx.test", 0, None), "");
        assert_eq!(unchanged, f);
        let mut f = header_facts(b"From: boss@b.test\r\n\r\n");
        let added = submission_headers(&mut f, "mx.test", 0, Some("aide@b.test"));
        assert!(added.starts_with("Message-ID: <") && added.contains("@mx.test>\r\nDate: "));
        assert!(added.ends_with("Sender: <aide@b.test>\r\n"));
        let parsed = header_facts(format!("From: boss@b.test\r\n{added}\r\n").as_bytes());
        assert_eq!(
            parsed, f,
            "the updated facts describe the message with the added headers"
        );
    }

    #[test]
    fn received_header_is_folded_and_sanitised() {
        let h = received_header(
            "evil\r\nX-Injected: 1",
            "127.0.0.1".parse().unwrap(),
            "mx.test",
            "ESMTPS",
            "abc",
            0,
        );
        assert!(!h.contains("\r\nX-Injected"), "{h}");
        assert!(h.starts_with("Received: from evilX-Injected:1 ([127.0.0.1])\r\n\tby mx.test"));
        assert!(h.ends_with("+0000\r\n"));
    }
}
