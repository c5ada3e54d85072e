//! Response formatting: strings as IMAP atoms, quoted strings or literals, dates in
//! the INTERNALDATE form, and single FETCH items encoded by imap-codec.

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use std::num::NonZeroU32;

use crate::clock;

/// Appends `s` as an IMAP string: quoted when it can be, else a literal, so names
/// with quotes, backslashes or 8-bit bytes survive.
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024
        && s.iter()
            .all(|&b| (0x20..0x7f).contains(&b) || (b >= 0x80 && std::str::from_utf8(s).is_ok()));
    if quotable && !s.iter().any(|&b| b >= 0x80) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// `s` as an IMAP string, for building text responses.
pub fn string(s: &str) -> String {
    let mut v = Vec::new();
    push_string(&mut v, s.as_bytes());
    String::from_utf8_lossy(&v).into_owned()
}

/// INTERNALDATE text (`"24-Nov-2026 01:02:03 +0000"`, quoted) for epoch milliseconds.
pub fn internal_date(ms: i64) -> String {
    let c = clock::civil(ms.div_euclid(1000));
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        c.day,
        clock::MONTH_ABBR[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// One FETCH item (ENVELOPE, BODYSTRUCTURE) in imap-codec's encoding, which knows
/// the grammar of these nested structures; the surrounding `* n FETCH (` is cut off.
pub fn encode_item(item: MessageDataItem<'_>) -> Vec<u8> {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::from(item),
    });
    let bytes = ResponseCodec::default().encode(&response).dump();
    let prefix = b"* 1 FETCH (";
    let end = bytes.len().saturating_sub(3);
    if bytes.starts_with(prefix) && end >= prefix.len() {
        bytes[prefix.len()..end].to_vec()
    } else {
        bytes
    }
}

/// Ascending runs `(first, last)` as an IMAP sequence set (`1:4,7`).
pub fn runs_set(runs: &[(u32, u32)]) -> String {
    let parts: Vec<String> = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    parts.join(",")
}

/// A set of numbers in the compact `1:3,7` form (COPYUID, VANISHED, ESEARCH ALL).
pub fn compact_set(nums: &[u32]) -> String {
    let mut sorted = nums.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Numbers in the given order joined by commas, for COPYUID's paired lists.
pub fn ordered_set(nums: &[u32]) -> String {
    nums.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_written_as_a_sequence_set() {
        assert_eq!(runs_set(&[(1, 1), (3, 4), (9, 12)]), "1,3:4,9:12");
        assert_eq!(runs_set(&[]), "");
    }

    #[test]
    fn strings_are_quoted_or_literal() {
        assert_eq!(string("INBOX"), "\"INBOX\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(string("caf\u{e9}"), "{5}\r\ncaf\u{e9}");
        assert_eq!(string("a\r\nb"), "{4}\r\na\r\nb");
    }

    #[test]
    fn dates_and_sets() {
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(
            internal_date(1_795_482_123_000),
            "\"24-Nov-2026 01:02:03 +0000\""
        );
        assert_eq!(compact_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(ordered_set(&[3, 1]), "3,1");
    }
}
