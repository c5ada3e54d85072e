//! EWS ItemId and FolderId values: opaque base64 strings that name a store item or
//! folder (by its stable store item id) or one of the two folders EWS has above the
//! store's (the root and "Top of Information Store", named by their mailbox).
//!
//! Nothing in an id is trusted: a well-formed id that names another mailbox's item
//! is only a name, and the mailbox-rights decision runs on the item's real owner.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const VERSION: u8 = 1;

/// What an id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EwsId {
    /// A message (store item id).
    Item(String),
    /// A store folder (its item id).
    Folder(String),
    /// The mailbox's root folder (`root`).
    Root(String),
    /// The mailbox's "Top of Information Store" (`msgfolderroot`).
    Top(String),
    /// An attachment: `item id:part path`.
    Attachment(String),
}

/// A value that is not an id of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl EwsId {
    fn parts(&self) -> (u8, &str) {
        match self {
            EwsId::Item(v) => (b'I', v),
            EwsId::Folder(v) => (b'F', v),
            EwsId::Root(v) => (b'R', v),
            EwsId::Top(v) => (b'T', v),
            EwsId::Attachment(v) => (b'A', v),
        }
    }

    /// The wire form.
    pub fn encode(&self) -> String {
        let (kind, value) = self.parts();
        let mut raw = Vec::with_capacity(value.len() + 2);
        raw.extend([VERSION, kind]);
        raw.extend_from_slice(value.as_bytes());
        STANDARD.encode(raw)
    }

    /// Reads a wire id.
    pub fn decode(id: &str) -> Result<EwsId, Malformed> {
        if id.len() > 512 {
            return Err(Malformed);
        }
        let raw = STANDARD.decode(id.trim()).map_err(|_| Malformed)?;
        let [VERSION, kind, rest @ ..] = raw.as_slice() else {
            return Err(Malformed);
        };
        let value = std::str::from_utf8(rest).map_err(|_| Malformed)?;
        let allowed = |b: u8| {
            b.is_ascii_alphanumeric() || b == b'-' || (*kind == b'A' && (b == b':' || b == b'.'))
        };
        if value.is_empty() || !value.bytes().all(allowed) {
            return Err(Malformed);
        }
        let value = value.to_string();
        Ok(match kind {
            b'I' => EwsId::Item(value),
            b'F' => EwsId::Folder(value),
            b'R' => EwsId::Root(value),
            b'T' => EwsId::Top(value),
            b'A' => EwsId::Attachment(value),
            _ => return Err(Malformed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        for id in [
            EwsId::Item("0190abcd".into()),
            EwsId::Folder("x1".into()),
            EwsId::Root("7f0c-11".into()),
            EwsId::Top("u".into()),
            EwsId::Attachment("0190abcd:1.2".into()),
        ] {
            assert_eq!(EwsId::decode(&id.encode()), Ok(id));
        }
        let good = EwsId::Item("0190abcd".into()).encode();
        let mut flipped = good.clone().into_bytes();
        flipped[2] ^= 0x01;
        let flipped = String::from_utf8(flipped).unwrap();
        assert_ne!(EwsId::decode(&flipped), Ok(EwsId::Item("0190abcd".into())));
        for bad in ["", "!!", "AAAA", &STANDARD.encode([1, b'I', b'\'', b';'])] {
            assert_eq!(EwsId::decode(bad), Err(Malformed), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,80}") {
            let _ = EwsId::decode(&s);
        }
    }
}
