//! Delivery status notifications (RFC 3464): the multipart/report a sender finds in
//! their Inbox when the smarthost refused a recipient or the lifetime ran out.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use crate::smtp::message::{header_len, rfc5322_date};

/// What went wrong for one recipient.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Our host name: the reporting MTA and the DSN's From domain.
    pub reporting_mta: &'a str,
    /// The smarthost that refused, or that could not be reached.
    pub remote_mta: &'a str,
    pub sender: &'a str,
    /// The sender's ENVID (RFC 3461), echoed as Original-Envelope-Id.
    pub envelope_id: Option<&'a str>,
    pub recipient: &'a str,
    /// Enhanced status, e.g. `5.1.1`.
    pub status: &'a str,
    /// The server's reply or our reason, one line.
    pub diagnostic: &'a str,
    /// When the message was accepted, milliseconds since the epoch.
    pub arrival_ms: i64,
}

/// One header-safe line: control characters (multi-line replies) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The machine-readable part (message/delivery-status).
fn status_fields(f: &Failure<'_>) -> String {
    let envid = f
        .envelope_id
        .map(|id| format!("Original-Envelope-Id: {}\r\n", one_line(id)))
        .unwrap_or_default();
    format!(
        "{envid}Reporting-MTA: dns; {}\r\nArrival-Date: {}\r\n\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nRemote-MTA: dns; {}\r\nDiagnostic-Code: smtp; {}\r\n",
        one_line(f.reporting_mta),
        rfc5322_date(f.arrival_ms / 1000),
        one_line(f.recipient),
        one_line(f.status),
        one_line(f.remote_mta),
        one_line(f.diagnostic),
    )
}

/// Builds the DSN for `failure` about `original` (its header section is attached).
pub fn build(failure: &Failure<'_>, original: &[u8], now_secs: i64) -> std::io::Result<Vec<u8>> {
    let human = format!(
        "Your message could not be delivered to {}.\r\n\r\nThe mail server {} answered:\r\n    {}\r\n\r\nThis is an automatic message from {}; do not reply to it.\r\n",
        one_line(failure.recipient),
        one_line(failure.remote_mta),
        one_line(failure.diagnostic),
        one_line(failure.reporting_mta),
    );
    let headers = &original[..header_len(original)];
    let encoding = if headers.is_ascii() { "7bit" } else { "8bit" };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human),
            MimePart::new(
                "message/delivery-status",
                status_fields(failure).into_bytes(),
            )
            .transfer_encoding("7bit"),
            MimePart::new("text/rfc822-headers", headers.to_vec()).transfer_encoding(encoding),
        ],
    );
    MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("MAILER-DAEMON@{}", failure.reporting_mta),
        ))
        .to(failure.sender.to_string())
        .subject("Undelivered Mail Returned to Sender")
        .date(now_secs)
        .message_id(format!(
            "{}@{}",
            uuid::Uuid::new_v4().simple(),
            failure.reporting_mta
        ))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_names_recipient_status_and_carries_the_original_headers() {
        let original = b"From: alice@acme.test\r\nSubject: quarterly report\r\nMessage-ID: <q1@acme.test>\r\n\r\nsecret body\r\n";
        let f = Failure {
            reporting_mta: "mx.acme.test",
            remote_mta: "smart.test",
            sender: "alice@acme.test",
            envelope_id: Some("QQ314159"),
            recipient: "nobody@remote.test",
            status: "5.1.1",
            diagnostic: "550 5.1.1 no such user\nsecond line",
            arrival_ms: 1_700_000_000_000,
        };
        let dsn = build(&f, original, 1_700_000_100).unwrap();
        let text = String::from_utf8(dsn.clone()).unwrap();
        for needle in [
            "multipart/report",
            "report-type=\"delivery-status\"",
            "message/delivery-status",
            "Original-Envelope-Id: QQ314159",
            "Final-Recipient: rfc822; nobody@remote.test",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; smart.test",
            "Diagnostic-Code: smtp; 550 5.1.1 no such user second line",
            "text/rfc822-headers",
            "Subject: quarterly report",
            "Message-ID: <q1@acme.test>",
            "Auto-Submitted: auto-replied",
            "MAILER-DAEMON@mx.acme.test",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(!text.contains("secret body"), "only the headers come back");
        let parsed = mail_parser::MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert_eq!(parsed.parts.len(), 4, "the report and its three parts");
    }
}
