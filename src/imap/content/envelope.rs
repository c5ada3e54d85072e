//! ENVELOPE (RFC 9051 7.5.2) syntax: header values as written (unfolded, encoded
//! words left alone, as Dovecot does) and address lists in IMAP's shape, on top of
//! `message`'s header fields and address parser.

use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::envelope::{Address, Envelope};

use crate::message::{self, Field, field, unfold};

/// Host shown for an address without a domain (a NIL host would mean a group).
const MISSING_DOMAIN: &str = "MISSING_DOMAIN";
/// Mailbox shown for an address without a local part.
const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

/// An IMAP string from arbitrary bytes: quoted when it can be, else a literal;
/// NUL (never allowed) is dropped.
pub(crate) fn istr(bytes: &[u8]) -> IString<'static> {
    let clean: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
    IString::try_from(clean).unwrap_or_else(|_| IString::try_from("").expect("empty quoted"))
}

/// A non-NIL [`NString`] from arbitrary bytes.
pub(crate) fn nstr(bytes: &[u8]) -> NString<'static> {
    NString(Some(istr(bytes)))
}

/// An unfolded header value, or NIL when the field is absent.
pub(crate) fn header_nstring(fields: &[Field<'_>], name: &str) -> NString<'static> {
    field(fields, name).map_or(NString(None), |f| nstr(&unfold(f.value)))
}

/// The ENVELOPE of a message or encapsulated message with these header fields.
pub(crate) fn envelope(fields: &[Field<'_>]) -> Envelope<'static> {
    let list = |name: &str| -> Vec<Address<'static>> {
        field(fields, name).map_or_else(Vec::new, |f| addresses(&unfold(f.value)))
    };
    let from = list("from");
    let or_from = |v: Vec<Address<'static>>| if v.is_empty() { from.clone() } else { v };
    Envelope {
        date: header_nstring(fields, "date"),
        subject: header_nstring(fields, "subject"),
        sender: or_from(list("sender")),
        reply_to: or_from(list("reply-to")),
        from: from.clone(),
        to: list("to"),
        cc: list("cc"),
        bcc: list("bcc"),
        in_reply_to: header_nstring(fields, "in-reply-to"),
        message_id: header_nstring(fields, "message-id"),
    }
}

/// Parses an address list into ENVELOPE form: groups become a start marker (NIL
/// NIL name NIL), their members, and an end marker (NIL NIL NIL NIL); a missing
/// local part or domain is shown as Dovecot shows it.
pub(crate) fn addresses(value: &[u8]) -> Vec<Address<'static>> {
    let nil = || NString(None);
    let or = |s: &str, missing: &str| nstr(if s.is_empty() { missing } else { s }.as_bytes());
    message::addresses(value)
        .into_iter()
        .map(|a| match a {
            message::Address::Mailbox(m) => Address {
                name: m.name.map_or_else(nil, |n| nstr(n.as_bytes())),
                adl: m.route.map_or_else(nil, |r| nstr(r.as_bytes())),
                mailbox: or(&m.local, MISSING_MAILBOX),
                host: or(&m.domain, MISSING_DOMAIN),
            },
            message::Address::GroupStart(name) => Address {
                name: nil(),
                adl: nil(),
                mailbox: nstr(name.as_bytes()),
                host: nil(),
            },
            message::Address::GroupEnd => Address {
                name: nil(),
                adl: nil(),
                mailbox: nil(),
                host: nil(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(a: &[Address<'_>]) -> Vec<[Option<String>; 4]> {
        let s = |n: &NString<'_>| {
            n.0.as_ref()
                .map(|i| String::from_utf8_lossy(i.as_ref()).into_owned())
        };
        a.iter()
            .map(|a| [s(&a.name), s(&a.adl), s(&a.mailbox), s(&a.host)])
            .collect()
    }

    fn o(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn common_address_forms() {
        let got = show(&addresses(
            br#""Doe, John" <john@example.com>, jane@example.org (Jane R), =?utf-8?q?J=C3=B6rg?= <j@x.de>, <bare@y>"#,
        ));
        assert_eq!(
            got,
            vec![
                [o("Doe, John"), None, o("john"), o("example.com")],
                [o("Jane R"), None, o("jane"), o("example.org")],
                [o("=?utf-8?q?J=C3=B6rg?="), None, o("j"), o("x.de")],
                [None, None, o("bare"), o("y")],
            ]
        );
    }

    #[test]
    fn groups_routes_and_broken_addresses() {
        let got = show(&addresses(
            b"Team: a@x, \"B\" <b@y>;, undisclosed-recipients:;, <@r1,@r2:c@z>, nodomain, @only",
        ));
        assert_eq!(
            got,
            vec![
                [None, None, o("Team"), None],
                [None, None, o("a"), o("x")],
                [o("B"), None, o("b"), o("y")],
                [None, None, None, None],
                [None, None, o("undisclosed-recipients"), None],
                [None, None, None, None],
                [None, o("@r1,@r2"), o("c"), o("z")],
                [None, None, o("nodomain"), o(MISSING_DOMAIN)],
                [None, None, o(MISSING_MAILBOX), o("only")],
            ]
        );
        assert!(addresses(b"").is_empty());
        assert!(addresses(b" , ,").is_empty());
        // An unterminated group still ends.
        let got = show(&addresses(b"G: a@b"));
        assert_eq!(got.last().unwrap(), &[None, None, None, None]);
        // A group holding only a comment is an empty group.
        let got = show(&addresses(b"group2: (foo) ;"));
        assert_eq!(
            got,
            vec![[None, None, o("group2"), None], [None, None, None, None]]
        );
    }
}
