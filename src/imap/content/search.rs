//! SEARCH text keys (RFC 9051 6.4.4): case-insensitive substring matching on the
//! decoded header values and body text that `message` extracts.

use super::TextKey;
use crate::message::{Address, addresses, any_body_text, decoded as header_text, fields, parse};

/// Header fields holding address lists, searched by their addresses as well.
const ADDRESS_FIELDS: [&str; 6] = ["from", "to", "cc", "bcc", "sender", "reply-to"];

/// An address list as a search reads it: each mailbox as `name <local@domain>`
/// (comments and quoting gone, encoded words decoded), groups by their name, so
/// FROM finds `user@domain` in `<user (comment)@ (comment) domain>` and a display
/// name given as `addr (Name)` (RFC 3501 6.4.4 leaves the matching to the server;
/// this is what clients expect of FROM/TO/CC/BCC).
fn address_text(value: &[u8]) -> String {
    let mut out = String::new();
    for a in addresses(value) {
        match a {
            Address::Mailbox(m) => {
                if let Some(name) = m.decoded_name() {
                    out.push_str(&name);
                    out.push(' ');
                }
                out.push('<');
                out.push_str(&m.address());
                out.push_str(">, ");
            }
            Address::GroupStart(name) => {
                out.push_str(&name);
                out.push_str(": ");
            }
            Address::GroupEnd => out.push_str("; "),
        }
    }
    out
}

/// Lower-cased for case-insensitive comparison (Unicode-aware, so "É" finds "é").
fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// See [`super::text_matches`].
pub(crate) fn text_matches(raw: &[u8], key: &TextKey<'_>) -> bool {
    let root = parse(raw);
    match key {
        TextKey::Header(name, needle) => {
            let needle = fold(needle);
            fields(&raw[root.header.clone()])
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .any(|f| {
                    needle.is_empty()
                        || fold(&header_text(f.value)).contains(&needle)
                        || (ADDRESS_FIELDS.iter().any(|a| name.eq_ignore_ascii_case(a))
                            && fold(&address_text(f.value)).contains(&needle))
                })
        }
        TextKey::Body(needle) => {
            let needle = fold(needle);
            any_body_text(raw, &root, &mut |t| fold(t).contains(&needle))
        }
        TextKey::Text(needle) => {
            let needle = fold(needle);
            fields(&raw[root.header.clone()]).iter().any(|f| {
                let line = format!(
                    "{}: {}",
                    String::from_utf8_lossy(f.name),
                    header_text(f.value)
                );
                fold(&line).contains(&needle)
            }) || any_body_text(raw, &root, &mut |t| fold(t).contains(&needle))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(value: &str, needle: &str) -> bool {
        let raw = format!("From: {value}\r\nSubject: s\r\n\r\nbody\r\n");
        text_matches(raw.as_bytes(), &TextKey::Header("From", needle))
    }

    /// imaptest's search-addresses: the address is found however it is
    /// written, display names and comments included; other fields are not
    /// read as addresses.
    #[test]
    fn from_finds_addresses_inside_comments_and_display_names() {
        let odd = "<user-from (comment)@ (comment) domain.org>";
        assert!(from(odd, "user-from@domain.org"));
        assert!(from(odd, "ser-fro"));
        assert!(from("user-from@domain.org (RealFrom)", "realfrom"));
        assert!(from("RealFrom <user-from@domain.org>", "ealfro"));
        assert!(from("=?utf-8?q?J=C3=B6rg?= <j@x.org>", "jörg <j@x.org>"));
        assert!(!from(odd, "user-to@domain.org"));
        assert!(!from("user-from@domain.org", "realfrom"));
        let raw = b"Subject: <a (c)@ b.org>\r\n\r\n";
        assert!(!text_matches(raw, &TextKey::Header("Subject", "a@b.org")));
    }
}
