//! SEARCH text keys (RFC 9051 6.4.4): case-insensitive substring matching on
//! decoded header values and decoded text parts.

use super::TextKey;
use super::decode::{charset_text, rfc2047};
use super::mime::{Children, Entity, fields, parse};
use super::section::{cte_of, decode_cte};

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
                .any(|f| needle.is_empty() || fold(&header_text(f.value)).contains(&needle))
        }
        TextKey::Body(needle) => body_contains(raw, &root, &fold(needle)),
        TextKey::Text(needle) => {
            let needle = fold(needle);
            fields(&raw[root.header.clone()]).iter().any(|f| {
                let line = format!(
                    "{}: {}",
                    String::from_utf8_lossy(f.name),
                    header_text(f.value)
                );
                fold(&line).contains(&needle)
            }) || body_contains(raw, &root, &needle)
        }
    }
}

/// A header value unfolded with its encoded words decoded.
fn header_text(value: &[u8]) -> String {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    rfc2047(unfolded.trim_ascii())
}

/// Whether any text part of the entity (at any depth) contains `needle`.
fn body_contains(raw: &[u8], e: &Entity, needle: &str) -> bool {
    match &e.children {
        Children::Multi(parts) => parts.iter().any(|p| body_contains(raw, p, needle)),
        Children::Message(m) => {
            // The encapsulated message's header is text of the body too.
            fields(&raw[m.header.clone()])
                .iter()
                .any(|f| fold(&header_text(f.value)).contains(needle))
                || body_contains(raw, m, needle)
        }
        Children::Leaf => {
            if !e.content_type.kind.eq_ignore_ascii_case("text") {
                return false;
            }
            let body = &raw[e.body.clone()];
            let decoded =
                decode_cte(cte_of(raw, e).as_deref(), body).unwrap_or_else(|_| body.to_vec());
            let text = charset_text(&decoded, e.content_type.param("charset"));
            needle.is_empty() || fold(&text).contains(needle)
        }
    }
}
