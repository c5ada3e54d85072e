//! Header fields of a header block: splitting into fields with their exact raw
//! extent, lookup by name, unfolding, and decoded (RFC 2047) values. IMAP shows
//! values as written; EWS and search want them decoded; both start here.

use super::decode::rfc2047;

/// One header field: its full raw extent (name to the end of its last line) and
/// the raw value (after the colon, folding kept).
#[derive(Debug, Clone, Copy)]
pub struct Field<'m> {
    /// The field name as written, surrounding white space removed.
    pub name: &'m [u8],
    /// Everything after the colon up to the end of the field, folding kept.
    pub value: &'m [u8],
    /// The whole field as written, including its final line break.
    pub raw: &'m [u8],
}

impl Field<'_> {
    /// The value unfolded and trimmed, encoded words left alone (IMAP ENVELOPE).
    pub fn unfolded(&self) -> Vec<u8> {
        unfold(self.value)
    }

    /// The value unfolded with its RFC 2047 encoded words decoded to UTF-8 (what a
    /// person reads: EWS Subject, search).
    pub fn decoded(&self) -> String {
        decoded(self.value)
    }
}

/// Splits a header block into fields. Lines without a colon are skipped; a
/// continuation line before any field is ignored.
pub fn fields<'m>(header: &'m [u8]) -> Vec<Field<'m>> {
    let mut out: Vec<Field<'m>> = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    let flush = |out: &mut Vec<Field<'m>>, from: usize, to: usize| {
        let raw = &header[from..to];
        if let Some(colon) = memchr::memchr(b':', raw) {
            let name = raw[..colon].trim_ascii();
            if !name.is_empty() && !name.contains(&b'\n') {
                out.push(Field {
                    name,
                    value: &raw[colon + 1..],
                    raw,
                });
            }
        }
    };
    while pos < header.len() {
        let end = memchr::memchr(b'\n', &header[pos..]).map_or(header.len(), |i| pos + i + 1);
        let line = &header[pos..end];
        let blank = line == b"\n" || line == b"\r\n";
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation || blank {
            if let Some(s) = start.take() {
                flush(&mut out, s, pos);
            }
            if blank {
                return out;
            }
            start = Some(pos);
        }
        pos = end;
    }
    if let Some(s) = start {
        flush(&mut out, s, header.len());
    }
    out
}

/// The first field named `name` (case-insensitive).
pub fn field<'m>(fields: &[Field<'m>], name: &str) -> Option<Field<'m>> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .copied()
}

/// A header value unfolded (line breaks and NULs removed) and trimmed, as IMAP
/// shows it.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n' && *b != 0)
        .collect();
    v.trim_ascii().to_vec()
}

/// A header value unfolded (line breaks removed, NULs kept) and trimmed, with its
/// encoded words decoded.
pub fn decoded(value: &[u8]) -> String {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    rfc2047(unfolded.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_keep_their_raw_extent() {
        let h = b"Subject: a\r\n b\r\nX-Y:z\r\nbroken line\r\n\r\nignored: 1\r\n";
        let f = fields(h);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(unfold(f[0].value), b"a b");
        assert_eq!(f[1].name, b"X-Y");
    }

    #[test]
    fn raw_unfolded_and_decoded_values() {
        let h = b"subject: =?utf-8?q?caf=C3=A9?=\r\n =?utf-8?b?IGF1?= lait\r\nTo: x\r\n\r\n";
        let f = fields(h);
        let s = field(&f, "SUBJECT").unwrap();
        assert_eq!(s.unfolded(), b"=?utf-8?q?caf=C3=A9?= =?utf-8?b?IGF1?= lait");
        assert_eq!(s.decoded(), "café au lait");
        assert_eq!(field(&f, "to").unwrap().decoded(), "x");
        assert!(field(&f, "cc").is_none());
    }
}
