//! The `Message` view on a realistic message, and property tests on arbitrary
//! bytes: nothing panics, and every part's offsets lie within the message.

use proptest::prelude::*;

use super::*;

const MESSAGE: &[u8] = b"From: =?utf-8?q?J=C3=B6rg?= <j@x.de>\r\n\
To: Team: a@x, b@y;, c@z\r\n\
Subject: =?utf-8?q?Caf=C3=A9?=\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSMOpbGxv\r\n\
--b\r\nContent-Type: image/png; name=p.png\r\n\r\nPNG\r\n--b--\r\n";

#[test]
fn one_parse_answers_every_question() {
    let m = Message::parse(MESSAGE);
    assert_eq!(m.raw(), MESSAGE);
    assert_eq!(m.field("subject").unwrap().decoded(), "Café");
    let from = m.addresses("from");
    let first = mailboxes(&from).next().unwrap();
    assert_eq!(
        (first.decoded_name().as_deref(), first.address().as_str()),
        (Some("Jörg"), "j@x.de")
    );
    let to: Vec<String> = mailboxes(&m.addresses("TO"))
        .map(Mailbox::address)
        .collect();
    assert_eq!(to, ["a@x", "b@y", "c@z"]);
    assert!(m.addresses("cc").is_empty());
    let date = m.date().unwrap();
    assert_eq!(date.offset_secs, 3600);
    assert_eq!(date.utc, 1_795_428_000 - 3600);
    let text = m.bodies().text.unwrap();
    assert_eq!(text.path.to_string(), "1");
    assert_eq!(text.part.text(MESSAGE), "Héllo");
    assert_eq!(text.part.decoded(MESSAGE).unwrap(), "Héllo".as_bytes());
    let p = m.part(&"2".parse::<PartPath>().unwrap().0).unwrap();
    assert_eq!(&MESSAGE[p.body.clone()], b"PNG");
    assert_eq!(
        m.attachments()
            .iter()
            .map(|a| a.file_name.clone())
            .collect::<Vec<_>>(),
        [Some("p.png".to_string())]
    );
}

/// Every part of the tree, depth first.
fn walk<'p>(p: &'p Part, out: &mut Vec<&'p Part>) {
    out.push(p);
    match &p.children {
        Children::Leaf => {}
        Children::Multi(parts) => parts.iter().for_each(|c| walk(c, out)),
        Children::Message(m) => walk(m, out),
    }
}

/// Arbitrary bytes, or messages assembled from MIME pieces that reach deep into
/// the parser; shared with the property tests of `message`'s users.
pub(crate) fn arb_message() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "Content-Type: multipart/mixed; boundary=x\r\n",
        "Content-Type: multipart/alternative; boundary=y\r\n",
        "Content-Type: multipart/digest; boundary=y\r\n",
        "Content-Type: message/rfc822\r\n",
        "Content-Type: text/html; charset=iso-8859-1\r\n",
        "Content-Type: image/png; name*0*=utf-8''%E2; name*1=x\r\n",
        "Content-Disposition: attachment; filename=\"=?utf-8?b?w6k=?=\"\r\n",
        "Content-Disposition: inline\r\n",
        "Content-ID: <a@b>\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "Content-Transfer-Encoding: x-bogus\r\n",
        "From: a <b@c>, G: d@e;\r\n",
        "Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n",
        "Subject: =?utf-8?b?w6k=?=\r\n",
        "\r\n",
        "--x\r\n",
        "--y\r\n",
        "--x--\r\n",
        "=C3=\r\n",
        "text\r\n",
        "\n",
        " folded\r\n",
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat().into_bytes()),
    ]
}

proptest! {
    #[test]
    fn parts_lie_within_the_message(raw in arb_message()) {
        let root = parse(&raw);
        prop_assert_eq!(root.header.start, 0);
        prop_assert_eq!(root.body.end, raw.len());
        let mut parts = Vec::new();
        walk(&root, &mut parts);
        for p in parts {
            prop_assert!(p.header.start <= p.header.end);
            prop_assert_eq!(p.header.end, p.body.start);
            prop_assert!(p.body.start <= p.body.end && p.body.end <= raw.len());
            let inside = |c: &Part| p.body.start <= c.header.start && c.body.end <= p.body.end;
            match &p.children {
                Children::Leaf => {}
                Children::Multi(children) => {
                    prop_assert!(!children.is_empty());
                    for c in children {
                        prop_assert!(inside(c));
                    }
                    for pair in children.windows(2) {
                        prop_assert!(pair[0].body.end <= pair[1].header.start);
                    }
                }
                Children::Message(m) => prop_assert!(inside(m)),
            }
        }
    }

    #[test]
    fn never_panics_on_any_bytes(raw in arb_message(), path in prop::collection::vec(1u32..4, 0..4)) {
        let m = Message::parse(&raw);
        let path: Vec<_> = path.into_iter().filter_map(std::num::NonZeroU32::new).collect();
        if let Some(p) = m.part(&path) {
            let _ = p.decoded(&raw);
            let _ = p.text(&raw);
            let _ = p.fields(&raw);
        }
        for f in m.fields() {
            let _ = f.decoded();
            let _ = addresses(&f.unfolded());
            let _ = Date::parse(f.value);
        }
        let _ = m.date();
        let bodies = m.bodies();
        for b in [bodies.text, bodies.html].into_iter().flatten() {
            prop_assert!(m.part(&b.path.0).is_some_and(|p| std::ptr::eq(p, b.part)));
        }
        for a in m.attachments() {
            prop_assert!(m.part(&a.path.0).is_some());
            prop_assert!(a.size <= raw.len());
        }
        let _ = any_body_text(&raw, m.root(), &mut |t| t.contains('é'));
        let text = String::from_utf8_lossy(&raw);
        let _ = rfc2231(&text);
        let _ = split_params(&text);
    }
}
