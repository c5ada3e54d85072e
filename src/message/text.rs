//! The text a message holds, decoded for people and for search: each text part's
//! content with transfer encoding and charset removed, and the header fields of
//! encapsulated messages. IMAP SEARCH BODY/TEXT matches on it; EWS search will.

use super::header::fields;
use super::mime::{Children, Part};

/// Whether `f` accepts any piece of text in the body of `part`, at any depth: the
/// decoded content of every text/* leaf (an unknown transfer encoding is read as
/// is) and each decoded header value of an encapsulated message (its header is
/// text of the enclosing body). Stops at the first piece `f` accepts.
pub fn any_body_text(raw: &[u8], part: &Part, f: &mut impl FnMut(&str) -> bool) -> bool {
    match &part.children {
        Children::Multi(parts) => parts.iter().any(|p| any_body_text(raw, p, f)),
        Children::Message(m) => {
            fields(&raw[m.header.clone()])
                .iter()
                .any(|field| f(&field.decoded()))
                || any_body_text(raw, m, f)
        }
        Children::Leaf => part.content_type.kind.eq_ignore_ascii_case("text") && f(&part.text(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    #[test]
    fn text_parts_and_nested_headers_only() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9t=E9\r\n--b\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?utf-8?q?na=C3=AFve?=\r\n\r\ninner\r\n--b--\r\n";
        let root = parse(raw);
        let mut seen = Vec::new();
        assert!(!any_body_text(raw, &root, &mut |t| {
            seen.push(t.to_string());
            false
        }));
        assert_eq!(seen, ["été", "naïve", "inner"]);
        assert!(any_body_text(raw, &root, &mut |t| t == "naïve"));
    }
}
