//! APPEND of binary content (RFC 3516 4.4): a part whose transfer encoding is
//! `binary` may hold NULs, which no IMAP string can carry, so a later FETCH
//! BODY[part] could not return it. Such parts are stored re-encoded as base64
//! (as Dovecot does); BINARY[part] decodes them back to the octets sent.

use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::message::{Children, Part, parse};

/// Base64 lines are 76 characters (RFC 2045 6.8).
const LINE: usize = 76;

/// The message with every `binary` leaf part re-encoded as base64, or `None`
/// when it has none (it is stored as sent).
pub fn binary_parts_to_base64(raw: &[u8]) -> Option<Vec<u8>> {
    let root = parse(raw);
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    collect(raw, &root, &mut edits);
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0.start);
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + 64);
    let mut at = 0;
    for (range, with) in edits {
        out.extend_from_slice(&raw[at..range.start]);
        out.extend_from_slice(&with);
        at = range.end;
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

fn collect(raw: &[u8], part: &Part, edits: &mut Vec<(Range<usize>, Vec<u8>)>) {
    match &part.children {
        Children::Multi(parts) => parts.iter().for_each(|p| collect(raw, p, edits)),
        Children::Message(m) => collect(raw, m, edits),
        Children::Leaf => {
            let fields = part.fields(raw);
            let Some(cte) = fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(b"content-transfer-encoding"))
            else {
                return;
            };
            if !cte.value.trim_ascii().eq_ignore_ascii_case(b"binary") {
                return;
            }
            // The field's place in `raw` (fields are slices of it).
            let start = cte.raw.as_ptr() as usize - raw.as_ptr() as usize;
            let newline = if cte.raw.ends_with(b"\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            let field = format!("Content-Transfer-Encoding: base64{newline}");
            edits.push((start..start + cte.raw.len(), field.into_bytes()));
            let body = &raw[part.body.clone()];
            let encoded = STANDARD.encode(body);
            let mut lines = Vec::with_capacity(encoded.len() + encoded.len() / LINE * 2 + 2);
            for (i, chunk) in encoded.as_bytes().chunks(LINE).enumerate() {
                if i > 0 {
                    lines.extend_from_slice(b"\r\n");
                }
                lines.extend_from_slice(chunk);
            }
            // A body that ended the message with a line break keeps one.
            if part.body.end == raw.len() && body.ends_with(b"\n") {
                lines.extend_from_slice(b"\r\n");
            }
            edits.push((part.body.clone(), lines));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::content::binary;
    use std::num::NonZeroU32;

    const ONE: [NonZeroU32; 1] = [NonZeroU32::MIN];

    #[test]
    fn a_binary_single_part_becomes_base64_and_binary_fetch_gives_it_back() {
        let body = b"\x00-\xe4\r\n\r\n\n";
        let mut raw = b"From: u@d.org\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        let out = binary_parts_to_base64(&raw).expect("converted");
        assert!(!out.contains(&0), "no NUL left");
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n"),
            "{text}"
        );
        assert!(text.starts_with("From: u@d.org\r\n"), "{text}");
        assert_eq!(binary(&out, &ONE).unwrap(), body);
    }

    #[test]
    fn only_binary_parts_of_a_multipart_change() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Transfer-Encoding: BINARY\r\n\r\n\x00\x01\x02\r\n--b--\r\n";
        let out = binary_parts_to_base64(raw).expect("converted");
        let two = [NonZeroU32::MIN, NonZeroU32::new(2).unwrap()];
        assert_eq!(binary(&out, &ONE).unwrap(), b"hello");
        assert_eq!(binary(&out, &two[1..]).unwrap(), b"\x00\x01\x02");
        assert!(String::from_utf8_lossy(&out).contains("--b--\r\n"));
    }

    #[test]
    fn other_encodings_are_left_alone() {
        assert_eq!(binary_parts_to_base64(b"Subject: x\r\n\r\nplain\r\n"), None);
        let qp = b"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n";
        assert_eq!(binary_parts_to_base64(qp), None);
        // A header without a body, and garbage, are not errors.
        let header_only = binary_parts_to_base64(b"Content-Transfer-Encoding: binary\r\n\r\n");
        assert!(header_only.is_some_and(|m| m.ends_with(b"base64\r\n\r\n")));
        assert_eq!(binary_parts_to_base64(b"\x00\xff"), None);
    }
}
