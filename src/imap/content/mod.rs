//! What IMAP derives from a message's bytes: ENVELOPE, BODYSTRUCTURE, body sections,
//! BINARY decoding and the text search keys. Pure functions over the raw RFC 5322
//! bytes, so they are unit- and property-tested without a store or a socket.

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::body::BodyStructure;
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::fetch::Section;

/// ENVELOPE and BODYSTRUCTURE of one message, computed once and cached in the store
/// per body (`Store::put_body_cache`), so FETCH of structure never re-parses a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    pub envelope: Envelope<'static>,
    pub body_structure: BodyStructure<'static>,
    /// The Date header as epoch seconds (SENTBEFORE/SENTON/SENTSINCE), if parseable.
    pub sent_date: Option<i64>,
}

impl Structure {
    /// Parses the message. Never fails: broken MIME yields a best-effort structure.
    pub fn of(_raw: &[u8]) -> Structure {
        todo!("imap-content helper")
    }

    /// Serialised form for the store's body cache.
    pub fn to_cache(&self) -> Vec<u8> {
        todo!("imap-content helper")
    }

    /// `None` when the cached bytes are from another version of this format.
    pub fn from_cache(_bytes: &[u8]) -> Option<Structure> {
        todo!("imap-content helper")
    }
}

/// BODY[section] bytes; `None` section is the whole message. A part that does not
/// exist yields an empty string, as RFC 9051 6.4.5 has servers do.
pub fn section<'m>(_raw: &'m [u8], _section: Option<&Section<'_>>) -> Cow<'m, [u8]> {
    todo!("imap-content helper")
}

/// Why BINARY[part] could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one we can decode: `[UNKNOWN-CTE]`.
    UnknownCte,
}

/// BINARY[part] (RFC 3516): the part's content with its transfer encoding removed.
/// An empty `part` is the whole message body.
pub fn binary(_raw: &[u8], _part: &[NonZeroU32]) -> Result<Vec<u8>, BinaryError> {
    todo!("imap-content helper")
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
pub fn text_matches(_raw: &[u8], _key: &TextKey<'_>) -> bool {
    todo!("imap-content helper")
}
