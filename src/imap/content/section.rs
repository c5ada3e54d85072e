//! BODY[section] and BINARY[part]: IMAP's section names (HEADER, HEADER.FIELDS,
//! MIME, TEXT) mapped onto `message`'s part tree (RFC 9051 6.4.5, RFC 3516).

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::fetch::{Part, Section};

use super::BinaryError;
use crate::message::{Children, Part as MimePart, UnknownEncoding, fields, parse, resolve};

/// The message (or encapsulated message) a HEADER/TEXT section refers to.
fn message_of<'e>(root: &'e MimePart, part: Option<&Part>) -> Option<&'e MimePart> {
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

impl From<UnknownEncoding> for BinaryError {
    fn from(_: UnknownEncoding) -> BinaryError {
        BinaryError::UnknownCte
    }
}

/// See [`super::binary`].
pub(crate) fn binary(raw: &[u8], part: &[NonZeroU32]) -> Result<Vec<u8>, BinaryError> {
    let root = parse(raw);
    if part.is_empty() {
        // BINARY[] is the whole message, header included (RFC 3516 4.1).
        let mut whole = raw[..root.body.start].to_vec();
        whole.extend(root.decoded(raw)?);
        return Ok(whole);
    }
    let Some(e) = resolve(&root, part) else {
        return Ok(Vec::new());
    };
    Ok(e.decoded(raw)?)
}
