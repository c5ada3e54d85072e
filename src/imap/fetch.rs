//! FETCH data items for one message (RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162
//! MODSEQ): which inputs a request needs and how each item is written.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName, Part, Section};

use super::content::{self, BinaryError, Structure};
use super::response::{encode_item, internal_date};
use crate::store::MessageMeta;

/// What a FETCH needs loaded per message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub raw: bool,
    pub structure: bool,
    /// A non-PEEK body item: the message becomes \Seen.
    pub sets_seen: bool,
}

/// What the items of a request need.
pub fn needs(items: &[MessageDataItemName<'_>]) -> Needs {
    use MessageDataItemName::*;
    let mut n = Needs::default();
    for item in items {
        match item {
            Body | BodyStructure | Envelope => n.structure = true,
            BodyExt { peek, .. } | Binary { peek, .. } => {
                n.raw = true;
                n.sets_seen |= !peek;
            }
            BinarySize { .. } | Rfc822Header => n.raw = true,
            Rfc822 | Rfc822Text => {
                n.raw = true;
                n.sets_seen = true;
            }
            _ => {}
        }
    }
    n
}

fn part_text(p: &Part) -> String {
    p.0.as_ref()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn field_list(fields: &[AString<'_>]) -> String {
    fields
        .iter()
        .map(|f| String::from_utf8_lossy(f.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The section spec as the response repeats it (`1.2.HEADER.FIELDS (FROM)`).
pub fn section_text(section: Option<&Section<'_>>) -> String {
    let with = |p: &Option<Part>, what: &str| match p {
        Some(p) => format!("{}.{what}", part_text(p)),
        None => what.to_string(),
    };
    match section {
        None => String::new(),
        Some(Section::Part(p)) => part_text(p),
        Some(Section::Header(p)) => with(p, "HEADER"),
        Some(Section::HeaderFields(p, f)) => {
            with(p, &format!("HEADER.FIELDS ({})", field_list(f.as_ref())))
        }
        Some(Section::HeaderFieldsNot(p, f)) => with(
            p,
            &format!("HEADER.FIELDS.NOT ({})", field_list(f.as_ref())),
        ),
        Some(Section::Text(p)) => with(p, "TEXT"),
        Some(Section::Mime(p)) => format!("{}.MIME", part_text(p)),
    }
}

fn push_literal(out: &mut Vec<u8>, data: &[u8], binary: bool) {
    if binary && data.contains(&0) {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

fn slice(data: &[u8], partial: Option<(u32, NonZeroU32)>) -> &[u8] {
    match partial {
        None => data,
        Some((origin, len)) => {
            let start = (origin as usize).min(data.len());
            let end = start.saturating_add(len.get() as usize).min(data.len());
            &data[start..end]
        }
    }
}

/// Why an item could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    UnknownCte,
}

/// One message's inputs.
pub struct Message<'a> {
    pub meta: &'a MessageMeta,
    pub raw: Option<&'a [u8]>,
    pub structure: Option<&'a Structure>,
    /// Shown with `\Recent` (recent in this session, a rev1 client).
    pub recent: bool,
}

/// Writes the items (space-separated, without the surrounding parentheses).
pub fn render(
    items: &[MessageDataItemName<'_>],
    m: &Message<'_>,
    out: &mut Vec<u8>,
) -> Result<(), FetchError> {
    use MessageDataItemName::*;
    let raw = m.raw.unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match item {
            Flags => {
                out.extend_from_slice(b"FLAGS (");
                if m.recent {
                    out.extend_from_slice(b"\\Recent");
                    if !m.meta.flags.is_empty() {
                        out.push(b' ');
                    }
                }
                out.extend_from_slice(m.meta.flags.join(" ").as_bytes());
                out.push(b')');
            }
            Uid => out.extend_from_slice(format!("UID {}", m.meta.uid).as_bytes()),
            InternalDate => out.extend_from_slice(
                format!("INTERNALDATE {}", internal_date(m.meta.internal_date)).as_bytes(),
            ),
            Rfc822Size => out.extend_from_slice(format!("RFC822.SIZE {}", m.meta.size).as_bytes()),
            ModSeq => out.extend_from_slice(format!("MODSEQ ({})", m.meta.modseq).as_bytes()),
            Envelope => {
                if let Some(s) = m.structure {
                    out.extend_from_slice(&encode_item(MessageDataItem::Envelope(
                        s.envelope.clone(),
                    )));
                }
            }
            BodyStructure => {
                if let Some(s) = m.structure {
                    out.extend_from_slice(&encode_item(MessageDataItem::BodyStructure(
                        s.body_structure.clone(),
                    )));
                }
            }
            Body => {
                if let Some(s) = m.structure {
                    out.extend_from_slice(&encode_item(MessageDataItem::Body(
                        crate::imap::content::without_extensions(s.body_structure.clone()),
                    )));
                }
            }
            BodyExt {
                section, partial, ..
            } => {
                // BODY[] is the stored bytes as they are; no parsing needed.
                let data = match section {
                    None => std::borrow::Cow::Borrowed(raw),
                    Some(s) => content::section(raw, Some(s)),
                };
                out.extend_from_slice(
                    format!("BODY[{}]", section_text(section.as_ref())).as_bytes(),
                );
                if let Some((origin, _)) = partial {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.push(b' ');
                push_literal(out, slice(&data, *partial), false);
            }
            Binary {
                section, partial, ..
            } => {
                let data = content::binary(raw, section).map_err(|e| match e {
                    BinaryError::UnknownCte => FetchError::UnknownCte,
                })?;
                out.extend_from_slice(format!("BINARY[{}]", dotted(section)).as_bytes());
                if let Some((origin, _)) = partial {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.push(b' ');
                push_literal(out, slice(&data, *partial), true);
            }
            BinarySize { section } => {
                let data = content::binary(raw, section).map_err(|e| match e {
                    BinaryError::UnknownCte => FetchError::UnknownCte,
                })?;
                out.extend_from_slice(
                    format!("BINARY.SIZE[{}] {}", dotted(section), data.len()).as_bytes(),
                );
            }
            Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                push_literal(out, raw, false);
            }
            Rfc822Header => {
                let data = content::section(raw, Some(&Section::Header(None)));
                out.extend_from_slice(b"RFC822.HEADER ");
                push_literal(out, &data, false);
            }
            Rfc822Text => {
                let data = content::section(raw, Some(&Section::Text(None)));
                out.extend_from_slice(b"RFC822.TEXT ");
                push_literal(out, &data, false);
            }
        }
    }
    Ok(())
}

fn dotted(part: &[NonZeroU32]) -> String {
    part.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::core::Vec1;

    #[test]
    fn section_specs() {
        let p = |v: &[u32]| {
            Part(
                Vec1::try_from(
                    v.iter()
                        .map(|n| NonZeroU32::new(*n).unwrap())
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
            )
        };
        assert_eq!(section_text(None), "");
        assert_eq!(section_text(Some(&Section::Part(p(&[1, 2])))), "1.2");
        assert_eq!(section_text(Some(&Section::Header(None))), "HEADER");
        assert_eq!(section_text(Some(&Section::Text(Some(p(&[2]))))), "2.TEXT");
        assert_eq!(section_text(Some(&Section::Mime(p(&[3])))), "3.MIME");
        let fields = Vec1::try_from(vec![
            AString::try_from("From").unwrap(),
            AString::try_from("To").unwrap(),
        ])
        .unwrap();
        assert_eq!(
            section_text(Some(&Section::HeaderFields(None, fields))),
            "HEADER.FIELDS (From To)"
        );
        assert_eq!(
            slice(b"abcdef", Some((2, NonZeroU32::new(3).unwrap()))),
            b"cde"
        );
        assert_eq!(slice(b"ab", Some((5, NonZeroU32::new(3).unwrap()))), b"");
    }
}
