//! ENVELOPE (RFC 9051 7.5.2): header values as written (unfolded, encoded words
//! left alone, as Dovecot does) and RFC 5322 address lists, lenient about the
//! obsolete and broken forms found in real mail.

use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::mime::{Field, field, unfold};

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

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An atom, dot-atom or domain literal, as written.
    Word(String),
    /// A quoted string: as written, and its content.
    Quoted(String, String),
    Comment(String),
    Special(char),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(Tok::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                flush(&mut word, &mut out);
                let (mut raw, mut content) = (String::from('"'), String::new());
                while let Some(d) = chars.next() {
                    raw.push(d);
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                raw.push(e);
                                content.push(e);
                            }
                        }
                        '"' => break,
                        _ => content.push(d),
                    }
                }
                out.push(Tok::Quoted(raw, content));
            }
            '(' => {
                flush(&mut word, &mut out);
                let (mut depth, mut text) = (1, String::new());
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                text.push(e);
                            }
                        }
                        '(' => {
                            depth += 1;
                            text.push(d);
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(d);
                        }
                        _ => text.push(d),
                    }
                }
                out.push(Tok::Comment(text));
            }
            '<' | '>' | '@' | ',' | ';' | ':' => {
                flush(&mut word, &mut out);
                out.push(Tok::Special(c));
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            _ => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Parses an address list; groups become a start marker (NIL NIL name NIL), their
/// members, and an end marker (NIL NIL NIL NIL).
pub(crate) fn addresses(value: &[u8]) -> Vec<Address<'static>> {
    let text = String::from_utf8_lossy(value);
    let toks = tokenize(&text);
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_group = false;
    while i < toks.len() {
        // One item: up to a top-level ',' or ';' (commas inside <> are a route).
        let mut j = i;
        let mut angle = false;
        let mut group_colon = None;
        while j < toks.len() {
            match toks[j] {
                Tok::Special('<') => angle = true,
                Tok::Special('>') => angle = false,
                Tok::Special(',' | ';') if !angle => break,
                Tok::Special(':') if !angle && !in_group && group_colon.is_none() => {
                    group_colon = Some(j);
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        if let Some(colon) = group_colon {
            let name = phrase(&toks[i..colon]);
            out.push(Address {
                name: NString(None),
                adl: NString(None),
                mailbox: nstr(name.as_bytes()),
                host: NString(None),
            });
            in_group = true;
            i = colon + 1;
            continue;
        }
        if let Some(a) = mailbox(&toks[i..j]) {
            out.push(a);
        }
        if in_group && matches!(toks.get(j), Some(Tok::Special(';')) | None) {
            out.push(Address {
                name: NString(None),
                adl: NString(None),
                mailbox: NString(None),
                host: NString(None),
            });
            in_group = false;
        }
        i = j + 1;
    }
    out
}

/// Display-name words joined by single spaces, quotes removed.
fn phrase(toks: &[Tok]) -> String {
    let words: Vec<&str> = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Word(w) => Some(w.as_str()),
            Tok::Quoted(_, c) => Some(c.as_str()),
            Tok::Special('@') => Some("@"),
            _ => None,
        })
        .collect();
    words.join(" ")
}

/// Local part or domain: tokens concatenated as written.
fn joined(toks: &[Tok]) -> String {
    toks.iter()
        .filter_map(|t| match t {
            Tok::Word(w) => Some(w.as_str()),
            Tok::Quoted(raw, _) => Some(raw.as_str()),
            _ => None,
        })
        .collect()
}

/// One mailbox: `name <route:local@domain>` or `local@domain (comment)`.
fn mailbox(toks: &[Tok]) -> Option<Address<'static>> {
    if toks.is_empty() {
        return None;
    }
    let comment = toks.iter().rev().find_map(|t| match t {
        Tok::Comment(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
        _ => None,
    });
    let open = toks.iter().position(|t| *t == Tok::Special('<'));
    let (name, spec) = match open {
        Some(o) => {
            let close = toks[o..]
                .iter()
                .position(|t| *t == Tok::Special('>'))
                .map_or(toks.len(), |c| o + c);
            let name = phrase(&toks[..o]);
            (Some(name).filter(|n| !n.is_empty()), &toks[o + 1..close])
        }
        None => (None, toks),
    };
    let name = name.or(comment);
    // Source route: "@a,@b:" before the address.
    let (adl, spec) = match spec.iter().position(|t| *t == Tok::Special(':')) {
        Some(c) if spec.first() == Some(&Tok::Special('@')) => {
            let route: String = spec[..c]
                .iter()
                .filter_map(|t| match t {
                    Tok::Word(w) => Some(w.clone()),
                    Tok::Special('@') => Some("@".into()),
                    Tok::Special(',') => Some(",".into()),
                    _ => None,
                })
                .collect();
            (Some(route), &spec[c + 1..])
        }
        _ => (None, spec),
    };
    let at = spec.iter().rposition(|t| *t == Tok::Special('@'));
    let (local, domain) = match at {
        Some(a) => (joined(&spec[..a]), joined(&spec[a + 1..])),
        None => (joined(spec), String::new()),
    };
    // Nothing but a comment (`group: (foo) ;`) is no address.
    if local.is_empty() && domain.is_empty() && open.is_none() {
        return None;
    }
    let or = |s: String, missing: &str| if s.is_empty() { missing.to_string() } else { s };
    Some(Address {
        name: name.map_or(NString(None), |n| nstr(n.as_bytes())),
        adl: adl.map_or(NString(None), |r| nstr(r.as_bytes())),
        mailbox: nstr(or(local, MISSING_MAILBOX).as_bytes()),
        host: nstr(or(domain, MISSING_DOMAIN).as_bytes()),
    })
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
