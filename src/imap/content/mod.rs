//! What IMAP derives from a message's bytes, in IMAP's own syntax: ENVELOPE,
//! BODYSTRUCTURE, body sections by name (HEADER.FIELDS, MIME, TEXT), BINARY and the
//! text search keys. Written on top of `crate::message`, which owns the MIME tree,
//! decoding, headers and addresses; nothing protocol-neutral belongs here. Pure
//! functions over the raw RFC 5322 bytes, so they are unit- and property-tested
//! without a store or a socket.

mod binary;
mod envelope;
mod search;
mod section;
mod structure;
pub use binary::binary_parts_to_base64;
pub(crate) use structure::without_extensions;

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::body::BodyStructure;
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::fetch::Section;

use crate::message::Message;

/// ENVELOPE and BODYSTRUCTURE of one message, computed once and cached in the store
/// per body (`Store::put_body_cache`), so FETCH of structure never re-parses a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    pub envelope: Envelope<'static>,
    pub body_structure: BodyStructure<'static>,
    /// The Date header's wall-clock time in its own zone, as seconds since the
    /// epoch (SENTBEFORE/SENTON/SENTSINCE compare the date as written, RFC 9051
    /// 6.4.4: "25 Mar 2007 00:00 +0200" is on the 25th), if parseable.
    pub sent_date: Option<i64>,
}

impl Structure {
    /// Parses the message. Never fails: broken MIME yields a best-effort structure.
    pub fn of(raw: &[u8]) -> Structure {
        let message = Message::parse(raw);
        Structure {
            envelope: envelope::envelope(&message.fields()),
            body_structure: structure::body_structure(raw, message.root()),
            sent_date: message.date().map(|d| d.wall_clock()),
        }
    }

    /// Serialised form for the store's body cache.
    pub fn to_cache(&self) -> Vec<u8> {
        let cached = Cached {
            version: CACHE_VERSION,
            envelope: Cow::Borrowed(&self.envelope),
            body_structure: Cow::Borrowed(&self.body_structure),
            sent_date: self.sent_date,
        };
        serde_json::to_vec(&cached).unwrap_or_default()
    }

    /// `None` when the cached bytes are from another version of this format.
    pub fn from_cache(bytes: &[u8]) -> Option<Structure> {
        let cached: Cached<'static> = serde_json::from_slice(bytes).ok()?;
        if cached.version != CACHE_VERSION {
            return None;
        }
        Some(Structure {
            envelope: cached.envelope.into_owned(),
            body_structure: cached.body_structure.into_owned(),
            sent_date: cached.sent_date,
        })
    }
}

/// Bumped whenever `Structure::of` changes its output, so stale cache rows are
/// recomputed instead of served.
const CACHE_VERSION: u32 = 2;

/// The cache row format: JSON of imap-types' own serde forms plus a version tag.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached<'a> {
    version: u32,
    envelope: Cow<'a, Envelope<'static>>,
    body_structure: Cow<'a, BodyStructure<'static>>,
    sent_date: Option<i64>,
}

/// BODY[section] bytes; `None` section is the whole message. A part that does not
/// exist yields an empty string, as RFC 9051 6.4.5 has servers do.
pub fn section<'m>(raw: &'m [u8], section: Option<&Section<'_>>) -> Cow<'m, [u8]> {
    section::section(raw, section)
}

/// Why BINARY[part] could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one we can decode: `[UNKNOWN-CTE]`.
    UnknownCte,
}

/// BINARY[part] (RFC 3516): the part's content with its transfer encoding removed.
/// An empty `part` is the whole message body.
pub fn binary(raw: &[u8], part: &[NonZeroU32]) -> Result<Vec<u8>, BinaryError> {
    section::binary(raw, part)
}

/// Which text a search key looks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextKey<'k> {
    /// HEADER field-name string (empty string matches any message with the field);
    /// FROM, TO, CC, BCC, SUBJECT map to this with their field name.
    Header(&'k str, &'k str),
    /// BODY: the decoded text of the body parts.
    Body(&'k str),
    /// TEXT: header and body.
    Text(&'k str),
}

/// Case-insensitive substring match (RFC 9051 6.4.4), on decoded header values
/// (RFC 2047) and decoded bodies (quoted-printable, base64, charsets to UTF-8).
pub fn text_matches(raw: &[u8], key: &TextKey<'_>) -> bool {
    search::text_matches(raw, key)
}

#[cfg(test)]
mod tests;
