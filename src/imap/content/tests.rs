//! Realistic messages with the exact ENVELOPE/BODYSTRUCTURE text Dovecot sends,
//! sections, BINARY, search, and property tests on arbitrary bytes.

use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::fetch::{MessageDataItem, Part};
use imap_codec::imap_types::response::{Data, Response};
use proptest::prelude::*;

use super::*;
use crate::message::tests::arb_message;

/// CRLF line endings for readable fixtures.
fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// `* 1 FETCH (ENVELOPE ... BODYSTRUCTURE ...)` as imap-codec puts it on the wire.
/// Byte for byte what Dovecot sends, except that imap-codec spells the types of
/// text and message/rfc822 parts in capitals ("TEXT", "MESSAGE" "RFC822"), which
/// clients compare case-insensitively.
fn fetch_line(s: &Structure) -> String {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::new(1).unwrap(),
        items: Vec1::try_from(vec![
            MessageDataItem::Envelope(s.envelope.clone()),
            MessageDataItem::BodyStructure(s.body_structure.clone()),
        ])
        .unwrap(),
    });
    String::from_utf8(ResponseCodec::default().encode(&response).dump()).unwrap()
}

fn part(nums: &[u32]) -> Part {
    Part(
        Vec1::try_from(
            nums.iter()
                .map(|n| NonZeroU32::new(*n).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap(),
    )
}

fn nz(nums: &[u32]) -> Vec<NonZeroU32> {
    nums.iter().map(|n| NonZeroU32::new(*n).unwrap()).collect()
}

fn sect(raw: &[u8], s: Section<'_>) -> String {
    String::from_utf8_lossy(&section(raw, Some(&s))).into_owned()
}

fn names(n: &[&'static str]) -> Vec1<AString<'static>> {
    Vec1::try_from(
        n.iter()
            .map(|s| AString::try_from(*s).unwrap())
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

const PLAIN: &str = "Date: Mon, 23 Nov 2026 10:00:00 +0000
From: \"Alice Example\" <alice@example.com>
To: bob@example.org
Subject: Hello
 world
Message-ID: <1@example.com>

Hi Bob,
bye
";

#[test]
fn plain_message_as_dovecot_sends_it() {
    let raw = crlf(PLAIN);
    let s = Structure::of(&raw);
    assert_eq!(
        fetch_line(&s),
        "* 1 FETCH (ENVELOPE (\"Mon, 23 Nov 2026 10:00:00 +0000\" \"Hello world\" \
         ((\"Alice Example\" NIL \"alice\" \"example.com\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.com\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.com\")) \
         ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL \"<1@example.com>\") \
         BODYSTRUCTURE (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 NIL NIL NIL NIL))\r\n"
    );
    assert_eq!(s.sent_date, Some(1_795_428_000));
    assert_eq!(section(&raw, None), &raw[..]);
    assert_eq!(sect(&raw, Section::Text(None)), "Hi Bob,\r\nbye\r\n");
    assert_eq!(sect(&raw, Section::Part(part(&[1]))), "Hi Bob,\r\nbye\r\n");
    assert_eq!(sect(&raw, Section::Part(part(&[2]))), "");
    assert_eq!(sect(&raw, Section::Part(part(&[1, 1]))), "");
    assert!(sect(&raw, Section::Header(None)).ends_with("<1@example.com>\r\n\r\n"));
    assert_eq!(
        sect(
            &raw,
            Section::HeaderFields(None, names(&["subject", "FROM", "x-none"]))
        ),
        "From: \"Alice Example\" <alice@example.com>\r\nSubject: Hello\r\n world\r\n\r\n"
    );
    assert_eq!(
        sect(
            &raw,
            Section::HeaderFieldsNot(None, names(&["date", "subject", "message-id"]))
        ),
        "From: \"Alice Example\" <alice@example.com>\r\nTo: bob@example.org\r\n\r\n"
    );
    assert_eq!(
        sect(&raw, Section::HeaderFields(None, names(&["x-none"]))),
        "\r\n"
    );
    // BINARY[] is the whole message, header included (RFC 3516 4.1).
    assert_eq!(binary(&raw, &[]).unwrap(), raw);
}

const MIXED: &str = "From: a@b.c
Subject: =?utf-8?q?Caf=C3=A9?= menu
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

preamble
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 au lait
--inner
Content-Type: text/html; charset=utf-8

<p>Caf&eacute;</p>
--inner--

--outer
Content-Type: application/pdf; name=\"menu.pdf\"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=\"menu.pdf\"
Content-Language: en, fr
Content-ID: <pdf1@x>
Content-Description: The menu

JVBERi0xLjQK
--outer--
";

#[test]
fn mixed_with_alternative_and_attachment() {
    let raw = crlf(MIXED);
    let s = Structure::of(&raw);
    assert_eq!(
        fetch_line(&s),
        "* 1 FETCH (ENVELOPE (NIL \"=?utf-8?q?Caf=C3=A9?= menu\" ((NIL NIL \"a\" \"b.c\")) \
         ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL) \
         BODYSTRUCTURE (((\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 17 0 NIL NIL NIL NIL)\
         (\"TEXT\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 18 0 NIL NIL NIL NIL) \
         \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)\
         (\"application\" \"pdf\" (\"name\" \"menu.pdf\") \"<pdf1@x>\" \"The menu\" \"base64\" 12 NIL \
         (\"attachment\" (\"filename\" \"menu.pdf\")) (\"en\" \"fr\") NIL) \
         \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL))\r\n"
    );
    assert_eq!(s.sent_date, None);
    assert_eq!(
        sect(&raw, Section::Part(part(&[1, 1]))),
        "Caf=C3=A9 au lait"
    );
    assert_eq!(
        sect(&raw, Section::Mime(part(&[1, 2]))),
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    );
    assert!(sect(&raw, Section::Part(part(&[1]))).starts_with("--inner\r\n"));
    assert!(sect(&raw, Section::Part(part(&[1]))).ends_with("--inner--\r\n"));
    assert_eq!(sect(&raw, Section::Part(part(&[3]))), "");
    assert_eq!(
        sect(&raw, Section::Header(Some(part(&[2])))),
        "",
        "not a message"
    );
    assert_eq!(binary(&raw, &nz(&[2])).unwrap(), b"%PDF-1.4\n");
    assert_eq!(
        binary(&raw, &nz(&[1, 1])).unwrap(),
        "Café au lait".as_bytes()
    );
    assert_eq!(binary(&raw, &nz(&[1, 2])).unwrap(), b"<p>Caf&eacute;</p>");
    assert_eq!(binary(&raw, &nz(&[9])).unwrap(), b"");

    assert!(text_matches(&raw, &TextKey::Header("subject", "CAFÉ MEN")));
    assert!(text_matches(&raw, &TextKey::Header("Subject", "")));
    assert!(!text_matches(&raw, &TextKey::Header("X-Missing", "")));
    assert!(!text_matches(&raw, &TextKey::Header("subject", "=?utf-8")));
    assert!(text_matches(&raw, &TextKey::Body("café AU")));
    assert!(
        !text_matches(&raw, &TextKey::Body("Caf=C3")),
        "decoded, not raw"
    );
    assert!(
        !text_matches(&raw, &TextKey::Body("PDF-1.4")),
        "not a text part"
    );
    assert!(!text_matches(&raw, &TextKey::Body("menu")), "header only");
    assert!(text_matches(&raw, &TextKey::Text("café menu")));
    assert!(text_matches(&raw, &TextKey::Text("eacute")));
}

const NESTED: &str = "From: fwd@x.y
To: Team: a@x.y, \"B. B\" <b@x.y>;, undisclosed-recipients:;
Subject: Fwd
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: message/rfc822

From: orig@x.y
Subject: Original
Date: Tue, 1 Dec 2026 00:00:00 -0500
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: base64

b3JpZ2luYWwg6XTp
--b1--
";

#[test]
fn nested_message_and_groups() {
    let raw = crlf(NESTED);
    let s = Structure::of(&raw);
    assert_eq!(
        fetch_line(&s),
        "* 1 FETCH (ENVELOPE (NIL \"Fwd\" ((NIL NIL \"fwd\" \"x.y\")) ((NIL NIL \"fwd\" \"x.y\")) \
         ((NIL NIL \"fwd\" \"x.y\")) ((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x.y\")(\"B. B\" NIL \"b\" \"x.y\")\
         (NIL NIL NIL NIL)(NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL) \
         BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 NIL NIL NIL NIL)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7bit\" 172 \
         (\"Tue, 1 Dec 2026 00:00:00 -0500\" \"Original\" ((NIL NIL \"orig\" \"x.y\")) ((NIL NIL \"orig\" \"x.y\")) \
         ((NIL NIL \"orig\" \"x.y\")) NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"base64\" 16 0 NIL NIL NIL NIL) 6 NIL NIL NIL NIL) \
         \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL))\r\n"
    );
    let inner = sect(&raw, Section::Part(part(&[2])));
    // The encapsulated message's Date, as written in its own zone (-0500).
    assert_eq!(
        Structure::of(inner.as_bytes()).sent_date,
        Some(1_796_101_200 - 5 * 3600)
    );
    assert!(inner.starts_with("From: orig@x.y\r\n") && inner.ends_with("b3JpZ2luYWwg6XTp"));
    assert_eq!(
        sect(&raw, Section::Text(Some(part(&[2])))),
        "b3JpZ2luYWwg6XTp"
    );
    assert_eq!(sect(&raw, Section::Part(part(&[2, 1]))), "b3JpZ2luYWwg6XTp");
    assert_eq!(
        sect(
            &raw,
            Section::HeaderFields(Some(part(&[2])), names(&["subject"]))
        ),
        "Subject: Original\r\n\r\n"
    );
    assert!(sect(&raw, Section::Header(Some(part(&[2])))).starts_with("From: orig@x.y\r\n"));
    assert!(sect(&raw, Section::Header(Some(part(&[2])))).ends_with("base64\r\n\r\n"));
    assert_eq!(
        sect(&raw, Section::Mime(part(&[2]))),
        "Content-Type: message/rfc822\r\n\r\n"
    );
    assert_eq!(binary(&raw, &nz(&[2, 1])).unwrap(), b"original \xe9t\xe9");
    // Charset decoded before matching; the nested header is body text.
    assert!(text_matches(&raw, &TextKey::Body("ORIGINAL ÉTÉ")));
    assert!(text_matches(&raw, &TextKey::Body("original")));
    assert!(text_matches(&raw, &TextKey::Header("to", "b. b")));
}

#[test]
fn digest_parts_default_to_messages() {
    let raw = crlf(
        "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nfirst\n--d\nContent-Type: text/plain\n\nnote\n--d--\n",
    );
    let s = Structure::of(&raw);
    let line = fetch_line(&s);
    assert!(
        line.contains("BODYSTRUCTURE ((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7bit\" 21 (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL)(\"TEXT\" \"plain\""),
        "{line}"
    );
}

#[test]
fn missing_headers_and_unknown_encoding() {
    let raw = crlf("\nhello\n");
    let s = Structure::of(&raw);
    assert_eq!(
        fetch_line(&s),
        "* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) \
         BODYSTRUCTURE (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL))\r\n"
    );
    let raw = crlf(
        "Sender: \nReply-To: r@x\nFrom: f@x\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n",
    );
    let s = Structure::of(&raw);
    assert_eq!(s.envelope.sender, s.envelope.from, "empty Sender is From");
    assert_ne!(s.envelope.reply_to, s.envelope.from);
    assert_eq!(binary(&raw, &[]), Err(BinaryError::UnknownCte));
    assert_eq!(binary(&raw, &nz(&[1])), Err(BinaryError::UnknownCte));
}

#[test]
fn malformed_mime_still_has_a_structure() {
    // Truncated: no close delimiter, the last part cut inside its header.
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nfirst\n--zz\nContent-Type: image/png\nContent-Transfer-Enc",
    );
    let s = Structure::of(&raw);
    let line = fetch_line(&s);
    assert!(line.contains("(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)(\"image\" \"png\" NIL NIL NIL \"7bit\" 0 NIL NIL NIL NIL) \"mixed\""), "{line}");
    // A multipart without any delimiter gets one empty part; without a boundary
    // it is plain text.
    let raw = crlf("Content-Type: multipart/mixed; boundary=nope\n\njust text\n");
    let line = fetch_line(&Structure::of(&raw));
    assert!(line.contains("BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\""), "{line}");
    let raw = crlf("Content-Type: multipart/mixed\n\njust text\n");
    let line = fetch_line(&Structure::of(&raw));
    assert!(
        line.contains(
            "BODYSTRUCTURE (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1"
        ),
        "{line}"
    );
    // Bare LF, NUL bytes and 8-bit headers.
    let raw = b"Subject: caf\xc3\xa9\x00!\nFrom: \xff <x@y>\n\nbody".to_vec();
    let s = Structure::of(&raw);
    assert!(fetch_line(&s).contains(
        "BODYSTRUCTURE (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0"
    ));
    assert!(text_matches(&raw, &TextKey::Header("subject", "CAFÉ")));
    // Deep nesting is cut off instead of overflowing the stack.
    let mut deep = Vec::new();
    for i in 0..2000 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    let _ = Structure::of(&deep);
    let _ = section(&deep, Some(&Section::Part(part(&[1; 60]))));
}

#[test]
fn cache_round_trips_and_rejects_other_versions() {
    for fixture in [PLAIN, MIXED, NESTED] {
        let s = Structure::of(&crlf(fixture));
        assert_eq!(Structure::from_cache(&s.to_cache()), Some(s));
    }
    assert_eq!(Structure::from_cache(b"garbage"), None);
    let s = Structure::of(&crlf(PLAIN));
    let other =
        String::from_utf8(s.to_cache())
            .unwrap()
            .replacen("\"version\":2", "\"version\":999", 1);
    assert_eq!(Structure::from_cache(other.as_bytes()), None);
}

#[test]
fn structure_is_fast_on_a_large_message() {
    let mut raw = crlf(MIXED);
    let attachment = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(200_000);
    let at = raw.len() - b"\r\n--outer--\r\n".len();
    raw.splice(at..at, format!("\r\n{attachment}").into_bytes());
    let start = std::time::Instant::now();
    let s = Structure::of(&raw);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(fetch_line(&s).contains("\"base64\" 7600014 NIL"));
}

proptest! {
    #[test]
    fn never_panics_and_cache_round_trips(raw in arb_message(), path in prop::collection::vec(1u32..4, 0..4)) {
        let s = Structure::of(&raw);
        prop_assert_eq!(Structure::from_cache(&s.to_cache()), Some(s.clone()));
        let _ = fetch_line(&s);
        let p = nz(&path);
        let _ = binary(&raw, &p);
        if !path.is_empty() {
            for sec in [
                Section::Part(part(&path)),
                Section::Mime(part(&path)),
                Section::Header(Some(part(&path))),
                Section::Text(Some(part(&path))),
                Section::HeaderFieldsNot(Some(part(&path)), names(&["from"])),
            ] {
                let _ = section(&raw, Some(&sec));
            }
        }
        let _ = section(&raw, Some(&Section::HeaderFields(None, names(&["subject"]))));
        // HEADER and TEXT always split the message exactly.
        let mut whole = section(&raw, Some(&Section::Header(None))).into_owned();
        whole.extend_from_slice(&section(&raw, Some(&Section::Text(None))));
        prop_assert_eq!(whole, raw.clone());
        for key in [TextKey::Header("from", "b"), TextKey::Body("é"), TextKey::Text("x")] {
            let _ = text_matches(&raw, &key);
        }
    }
}

#[test]
fn deepest_structure_still_caches() {
    // Nesting at the parser's depth limit must survive serde_json's recursion limit,
    // whatever the mix of multiparts and encapsulated messages.
    for pattern in [[true, false], [true, true], [false, false]] {
        let mut deep = Vec::new();
        for i in 0..100 {
            if pattern[i % 2] {
                deep.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                        .as_bytes(),
                );
            } else {
                deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
            }
        }
        deep.extend_from_slice(
            b"Content-Type: application/x-y; a=b\r\nContent-Disposition: inline\r\n\r\nend\r\n",
        );
        let s = Structure::of(&deep);
        assert_eq!(Structure::from_cache(&s.to_cache()), Some(s), "{pattern:?}");
    }
}

/// Every extension field, an encapsulated multipart message, a folded boundary
/// with a space, prologues and epilogues, and a broken transfer encoding; sizes
/// and line counts by Dovecot's rules (the newline before a delimiter is not
/// part of the body, lines are line feeds).
const EVERYTHING: &str = "From: ann@mail.test
Date: Fri, 20 Nov 2026 08:30:00 +0100
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary=\"part
 one\"

This is a MIME message.

--part one
Content-Type: text/x-notes; charset=us-ascii; note=\"say \\\"hi\\\"\"
Content-ID: <notes@mail.test>
Content-MD5: SGVsbG8gd29ybGQhIQ==
Content-Disposition: inline; kind=memo
Content-Description: meeting notes
Content-Language: de, en
Content-Location: http://mail.test/notes.txt

agenda

--part one
Content-Type: message/rfc822

From: bo@mail.test
To: cy@mail.test, di@mail.test
Date: Thu, 19 Nov 2026 17:00:00 +0000
Subject: minutes
Content-Type: multipart/alternative; boundary=\"alt\"

ignored prologue
--alt
Content-Type: text/html
Content-Transfer-Encoding: 8bit

<b>Minutes</b>

--alt
Content-Type: text/plain
Content-Transfer-Encoding: ?bogus

Minutes, in plain text

--alt--
ignored epilogue

--part one--
epilogue
";

#[test]
fn every_extension_field_like_dovecot() {
    let raw = crlf(EVERYTHING);
    let s = Structure::of(&raw);
    let line = fetch_line(&s);
    let expected = "BODYSTRUCTURE ((\"TEXT\" \"x-notes\" (\"charset\" \"us-ascii\" \"note\" \"say \\\"hi\\\"\") \
        \"<notes@mail.test>\" \"meeting notes\" \"7bit\" 8 1 \"SGVsbG8gd29ybGQhIQ==\" (\"inline\" (\"kind\" \"memo\")) \
        (\"de\" \"en\") \"http://mail.test/notes.txt\")(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7bit\" 390 \
        (\"Thu, 19 Nov 2026 17:00:00 +0000\" \"minutes\" ((NIL NIL \"bo\" \"mail.test\")) ((NIL NIL \"bo\" \"mail.test\")) \
        ((NIL NIL \"bo\" \"mail.test\")) ((NIL NIL \"cy\" \"mail.test\")(NIL NIL \"di\" \"mail.test\")) NIL NIL NIL NIL) \
        ((\"TEXT\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" 16 1 NIL NIL NIL NIL)\
        (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 24 1 NIL NIL NIL NIL) \
        \"alternative\" (\"boundary\" \"alt\") NIL NIL NIL) 21 NIL NIL NIL NIL) \
        \"mixed\" (\"boundary\" \"part one\") NIL NIL NIL))\r\n";
    assert!(line.ends_with(expected), "{line}");
    assert_eq!(
        sect(&raw, Section::Part(part(&[2, 1]))),
        "<b>Minutes</b>\r\n"
    );
    assert_eq!(
        sect(&raw, Section::Part(part(&[2, 2]))),
        "Minutes, in plain text\r\n"
    );
    assert_eq!(
        sect(
            &raw,
            Section::HeaderFields(Some(part(&[2])), names(&["SUBJECT"]))
        ),
        "Subject: minutes\r\n\r\n"
    );
    assert!(
        sect(&raw, Section::Text(Some(part(&[2])))).starts_with("ignored prologue\r\n--alt\r\n")
    );
    assert_eq!(binary(&raw, &nz(&[2, 2])), Err(BinaryError::UnknownCte));
}

#[test]
fn the_sent_date_is_the_day_as_written_in_its_own_zone() {
    let day = |date: &str| {
        let raw = format!("Date: {date}\r\nSubject: x\r\n\r\nbody\r\n");
        Structure::of(raw.as_bytes())
            .sent_date
            .map(|s| s.div_euclid(86_400))
    };
    // 2007-03-25 is day 13597 since the epoch.
    assert_eq!(
        day("Sun, 25 Mar 2007 00:00:00 +0200"),
        Some(13_597),
        "22:00 UTC the day before"
    );
    assert_eq!(
        day("Sun, 25 Mar 2007 23:00:00 -0500"),
        Some(13_597),
        "04:00 UTC the day after"
    );
    assert_eq!(day("Sun, 25 Mar 2007 12:00:00 +0000"), Some(13_597));
    assert_eq!(day("not a date"), None);
}

#[test]
fn fetch_body_is_the_structure_without_extension_data() {
    let raw = b"Content-Type: multipart/mixed; boundary=\"foo bar\"\r\n\r\n\
--foo bar\r\nContent-Type: text/x-myown; charset=us-ascii\r\n\r\nhello\r\n\r\n\
--foo bar--\r\n";
    let s = Structure::of(raw);
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::new(1).unwrap(),
        items: Vec1::from(MessageDataItem::Body(without_extensions(
            s.body_structure.clone(),
        ))),
    });
    let line = String::from_utf8(ResponseCodec::default().encode(&response).dump()).unwrap();
    assert_eq!(
        line,
        "* 1 FETCH (BODY ((\"TEXT\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1) \"mixed\"))\r\n"
    );
    assert!(
        fetch_line(&s).contains("\"mixed\" (\"boundary\" \"foo bar\") NIL NIL NIL"),
        "BODYSTRUCTURE keeps it"
    );
}
