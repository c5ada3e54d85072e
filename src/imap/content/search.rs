//! SEARCH text keys (RFC 9051 6.4.4): case-insensitive substring matching on the
//! decoded header values and body text that `message` extracts.

use super::TextKey;
use crate::message::{any_body_text, decoded as header_text, fields, parse};

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
