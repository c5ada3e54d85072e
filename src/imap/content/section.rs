//! BODY[section] and BINARY[part]: slices of the raw message located through the
//! MIME tree (RFC 9051 6.4.5, RFC 3516).

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::fetch::{Part, Section};

use super::BinaryError;
use super::decode::{base64, quoted_printable};
use super::mime::{Children, Entity, field, fields, parse, resolve, unfold};

/// The message (or encapsulated message) a HEADER/TEXT section refers to.
fn message_of<'e>(root: &'e Entity, part: Option<&Part>) -> Option<&'e Entity> {
    match part {
        None => Some(root),
        Some(p) => match &resolve(root, p.0.as_ref())?.children {
            Children::Message(m) => Some(m),
            _ => None,
        },
    }
}

/// See [`super::section`].
pub(crate) fn section<'m>(raw: &'m [u8], section: Option<&Section<'_>>) -> Cow<'m, [u8]> {
    let Some(section) = section else {
        return Cow::Borrowed(raw);
    };
    let root = parse(raw);
    let slice = |r: std::ops::Range<usize>| Cow::Borrowed(&raw[r]);
    let empty = || Cow::Borrowed(&raw[..0]);
    match section {
        Section::Part(p) => {
            resolve(&root, p.0.as_ref()).map_or_else(empty, |e| slice(e.body.clone()))
        }
        Section::Header(p) => {
            message_of(&root, p.as_ref()).map_or_else(empty, |m| slice(m.header.clone()))
        }
        Section::Text(p) => {
            message_of(&root, p.as_ref()).map_or_else(empty, |m| slice(m.body.clone()))
        }
        Section::Mime(p) => {
            resolve(&root, p.0.as_ref()).map_or_else(empty, |e| slice(e.header.clone()))
        }
        Section::HeaderFields(p, names) | Section::HeaderFieldsNot(p, names) => {
            let Some(m) = message_of(&root, p.as_ref()) else {
                return empty();
            };
            let keep = matches!(section, Section::HeaderFields(..));
            let wanted = |name: &[u8]| {
                names
                    .as_ref()
                    .iter()
                    .any(|n| n.as_ref().eq_ignore_ascii_case(name))
            };
            let mut out = Vec::new();
            for f in fields(&raw[m.header.clone()]) {
                if wanted(f.name) == keep {
                    out.extend_from_slice(f.raw);
                    if !f.raw.ends_with(b"\n") {
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
            Cow::Owned(out)
        }
    }
}

/// Removes the transfer encoding named by a Content-Transfer-Encoding value.
pub(crate) fn decode_cte(cte: Option<&[u8]>, body: &[u8]) -> Result<Vec<u8>, BinaryError> {
    let cte = cte.map(|c| c.to_ascii_lowercase()).unwrap_or_default();
    match cte.as_slice() {
        b"" | b"7bit" | b"8bit" | b"binary" => Ok(body.to_vec()),
        b"base64" => Ok(base64(body)),
        b"quoted-printable" => Ok(quoted_printable(body, false)),
        _ => Err(BinaryError::UnknownCte),
    }
}

/// The Content-Transfer-Encoding of an entity, unfolded.
pub(crate) fn cte_of(raw: &[u8], e: &Entity) -> Option<Vec<u8>> {
    field(&fields(&raw[e.header.clone()]), "content-transfer-encoding").map(|f| unfold(f.value))
}

/// See [`super::binary`].
pub(crate) fn binary(raw: &[u8], part: &[NonZeroU32]) -> Result<Vec<u8>, BinaryError> {
    let root = parse(raw);
    if part.is_empty() {
        // BINARY[] is the whole message, header included (RFC 3516 4.1).
        let mut whole = raw[..root.body.start].to_vec();
        whole.extend(decode_cte(
            cte_of(raw, &root).as_deref(),
            &raw[root.body.clone()],
        )?);
        return Ok(whole);
    }
    let Some(e) = resolve(&root, part) else {
        return Ok(Vec::new());
    };
    decode_cte(cte_of(raw, e).as_deref(), &raw[e.body.clone()])
}
