//! IMAP4rev1 + IMAP4rev2 (RFC 3501, RFC 9051) sessions over the shared store.
//!
//! `content` is pure message logic (structure, sections, search text); the session
//! modules own the protocol state and talk to the store.

pub mod content;
