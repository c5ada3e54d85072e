//! Protocol-neutral message analysis: what any protocol reads from a message's raw
//! RFC 5322 bytes. Owns the MIME part tree with exact encoded offsets of every
//! header and body, part paths, header fields (raw, unfolded, RFC 2047 decoded),
//! transfer and charset decoding (charsets via mail-parser), address lists, the
//! Date header, body and attachment choice, and the decoded text search reads.
//!
//! A leaf: it imports only std and crates, never another mailgate module, and holds
//! no protocol syntax (IMAP BODYSTRUCTURE/ENVELOPE and section names stay in
//! `imap::content`; EWS XML in `ews`). Pure functions over bytes, never failing on
//! bad input, so they are unit- and property-tested without a store or a socket.

#![warn(missing_docs)]

mod address;
mod attachment;
mod date;
mod decode;
pub mod edit;
mod header;
mod mime;
mod text;

use std::num::NonZeroU32;

pub use address::{Address, Mailbox, addresses, mailboxes};
pub use attachment::{Attachment, Bodies, Located, attachments, bodies};
pub use date::Date;
pub use decode::{
    UnknownEncoding, base64, charset_text, quoted_printable, rfc2047, rfc2231, transfer_decode,
};
pub use header::{Field, decoded, field, fields, unfold};
pub use mime::{
    BadPartPath, Children, ContentType, Part, PartPath, parse, parse_content_type, resolve,
    split_params,
};
pub use text::any_body_text;

/// A message parsed once: its raw bytes and part tree, with the questions EWS and
/// IMAP ask of it answered from the one parse.
#[derive(Debug)]
pub struct Message<'m> {
    raw: &'m [u8],
    root: Part,
}

impl<'m> Message<'m> {
    /// Parses `raw`; never fails (broken MIME yields a best-effort tree).
    pub fn parse(raw: &'m [u8]) -> Message<'m> {
        Message {
            raw,
            root: parse(raw),
        }
    }

    /// The bytes it was parsed from.
    pub fn raw(&self) -> &'m [u8] {
        self.raw
    }

    /// The root part: the message itself.
    pub fn root(&self) -> &Part {
        &self.root
    }

    /// The part at `path` (`1.2` is `[1, 2]`), if there is one.
    pub fn part(&self, path: &[NonZeroU32]) -> Option<&Part> {
        resolve(&self.root, path)
    }

    /// The top-level header fields.
    pub fn fields(&self) -> Vec<Field<'m>> {
        self.root.fields(self.raw)
    }

    /// The first top-level header field named `name`, case-insensitively.
    pub fn field(&self, name: &str) -> Option<Field<'m>> {
        field(&self.fields(), name)
    }

    /// The address list in header `name` (From, To, Cc, ...); empty when absent.
    pub fn addresses(&self, name: &str) -> Vec<Address> {
        self.field(name)
            .map_or_else(Vec::new, |f| addresses(&f.unfolded()))
    }

    /// The Date header, when present and valid.
    pub fn date(&self) -> Option<Date> {
        self.field("date").and_then(|f| Date::parse(f.value))
    }

    /// The text/plain and text/html body parts a client shows.
    pub fn bodies(&self) -> Bodies<'_> {
        bodies(self.raw, &self.root)
    }

    /// The attachments, in tree order.
    pub fn attachments(&self) -> Vec<Attachment> {
        attachments(self.raw, &self.root)
    }
}

#[cfg(test)]
pub(crate) mod tests;
