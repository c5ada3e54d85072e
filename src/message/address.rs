//! RFC 5322 address lists: display name, source route, local part, domain and
//! groups, lenient about the obsolete and broken forms found in real mail. Values
//! are kept as written (IMAP ENVELOPE shows them so); decoding is on request.

use super::decode::rfc2047;

/// One element of an address list. A group (`Team: a@x, b@y;`) is its start,
/// its member mailboxes and its end, so a flat list keeps the order as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A mailbox, inside a group or not.
    Mailbox(Mailbox),
    /// `name:` opening a group (the name as written, possibly empty).
    GroupStart(String),
    /// `;` closing a group (also supplied at the end of the list, or of the
    /// item after an unterminated group).
    GroupEnd,
}

/// One mailbox, each piece as written (quotes removed from the display name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name (`"Doe, John" <...>`), or the comment of `addr (Name)`.
    pub name: Option<String>,
    /// An obsolete source route (`@r1,@r2`), without its colon.
    pub route: Option<String>,
    /// The local part, empty when missing.
    pub local: String,
    /// The domain, empty when missing.
    pub domain: String,
}

impl Mailbox {
    /// `local@domain` (just `local` without a domain): the address to compare
    /// and to show as EmailAddress.
    pub fn address(&self) -> String {
        if self.domain.is_empty() {
            self.local.clone()
        } else {
            format!("{}@{}", self.local, self.domain)
        }
    }

    /// The display name with its RFC 2047 encoded words decoded.
    pub fn decoded_name(&self) -> Option<String> {
        self.name.as_deref().map(|n| rfc2047(n.as_bytes()))
    }
}

/// Only the mailboxes of an address list, in order, group members included.
pub fn mailboxes(list: &[Address]) -> impl Iterator<Item = &Mailbox> {
    list.iter().filter_map(|a| match a {
        Address::Mailbox(m) => Some(m),
        _ => None,
    })
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

/// Parses an address list (From, To, Cc, ...): mailboxes in order, a group as its
/// start, its members and its end. Never fails; what is not an address is skipped.
pub fn addresses(value: &[u8]) -> Vec<Address> {
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
            out.push(Address::GroupStart(name));
            in_group = true;
            i = colon + 1;
            continue;
        }
        if let Some(m) = mailbox(&toks[i..j]) {
            out.push(Address::Mailbox(m));
        }
        if in_group && matches!(toks.get(j), Some(Tok::Special(';')) | None) {
            out.push(Address::GroupEnd);
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
fn mailbox(toks: &[Tok]) -> Option<Mailbox> {
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
    Some(Mailbox {
        name,
        route: adl,
        local,
        domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, local: &str, domain: &str) -> Address {
        Address::Mailbox(Mailbox {
            name: name.map(str::to_string),
            route: None,
            local: local.into(),
            domain: domain.into(),
        })
    }

    #[test]
    fn common_address_forms() {
        let got = addresses(
            br#""Doe, John" <john@example.com>, jane@example.org (Jane R), =?utf-8?q?J=C3=B6rg?= <j@x.de>, <bare@y>"#,
        );
        assert_eq!(
            got,
            vec![
                mb(Some("Doe, John"), "john", "example.com"),
                mb(Some("Jane R"), "jane", "example.org"),
                mb(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x.de"),
                mb(None, "bare", "y"),
            ]
        );
        let Address::Mailbox(jorg) = &got[2] else {
            panic!()
        };
        assert_eq!(jorg.decoded_name().as_deref(), Some("Jörg"));
        assert_eq!(jorg.address(), "j@x.de");
        let all: Vec<String> = mailboxes(&got).map(Mailbox::address).collect();
        assert_eq!(
            all,
            ["john@example.com", "jane@example.org", "j@x.de", "bare@y"]
        );
    }

    #[test]
    fn groups_routes_and_broken_addresses() {
        let got = addresses(
            b"Team: a@x, \"B\" <b@y>;, undisclosed-recipients:;, <@r1,@r2:c@z>, nodomain, @only",
        );
        assert_eq!(
            got,
            vec![
                Address::GroupStart("Team".into()),
                mb(None, "a", "x"),
                mb(Some("B"), "b", "y"),
                Address::GroupEnd,
                Address::GroupStart("undisclosed-recipients".into()),
                Address::GroupEnd,
                Address::Mailbox(Mailbox {
                    name: None,
                    route: Some("@r1,@r2".into()),
                    local: "c".into(),
                    domain: "z".into()
                }),
                mb(None, "nodomain", ""),
                mb(None, "", "only"),
            ]
        );
        assert!(addresses(b"").is_empty());
        assert!(addresses(b" , ,").is_empty());
        assert_eq!(addresses(b"G: a@b").last(), Some(&Address::GroupEnd));
        assert_eq!(
            addresses(b"group2: (foo) ;"),
            vec![Address::GroupStart("group2".into()), Address::GroupEnd]
        );
        let Address::Mailbox(m) = &addresses(b"nodomain")[0] else {
            panic!()
        };
        assert_eq!(m.address(), "nodomain");
    }
}
