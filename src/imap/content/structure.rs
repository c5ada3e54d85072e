//! BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2) with extension data, in the
//! shape Dovecot produces: lower-case defaults, values as written in the headers.

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{IString, NString, Vec1};

use super::envelope::{envelope, header_nstring, istr};
use crate::message::{Children, Field, Part as MimePart, field, fields, split_params, unfold};

/// The BODYSTRUCTURE of `e`, a part or message within `raw`.
pub(crate) fn body_structure(raw: &[u8], e: &MimePart) -> BodyStructure<'static> {
    let flds = fields(&raw[e.header.clone()]);
    let ct = &e.content_type;
    let disposition = disposition(&flds);
    if let Children::Multi(parts) = &e.children {
        let bodies: Vec<BodyStructure<'static>> =
            parts.iter().map(|p| body_structure(raw, p)).collect();
        return BodyStructure::Multi {
            bodies: Vec1::try_from(bodies).unwrap_or_else(|_| {
                Vec1::from([BodyStructure::Single {
                    body: text_body(0, 0),
                    extension_data: None,
                }])
            }),
            subtype: istr(ct.subtype.as_bytes()),
            extension_data: Some(MultiPartExtensionData {
                parameter_list: params(&ct.params),
                tail: Some(disposition),
            }),
        };
    }
    let body = &raw[e.body.clone()];
    let mut parameter_list = params(&ct.params);
    let is_text = ct.kind.eq_ignore_ascii_case("text");
    if is_text && ct.param("charset").is_none() {
        parameter_list.push((istr(b"charset"), istr(b"us-ascii")));
    }
    let cte = field(&flds, "content-transfer-encoding")
        .map(|f| unfold(f.value))
        .filter(|v| is_token(v))
        .unwrap_or_else(|| b"7bit".to_vec());
    let basic = BasicFields {
        parameter_list,
        id: header_nstring(&flds, "content-id"),
        description: header_nstring(&flds, "content-description"),
        content_transfer_encoding: istr(&cte),
        size: u32::try_from(body.len()).unwrap_or(u32::MAX),
    };
    let specific = match &e.children {
        Children::Message(inner) => {
            let inner_fields = fields(&raw[inner.header.clone()]);
            SpecificFields::Message {
                envelope: Box::new(envelope(&inner_fields)),
                body_structure: Box::new(body_structure(raw, inner)),
                number_of_lines: lines(body),
            }
        }
        _ if is_text => SpecificFields::Text {
            subtype: istr(ct.subtype.as_bytes()),
            number_of_lines: lines(body),
        },
        _ => SpecificFields::Basic {
            r#type: istr(ct.kind.as_bytes()),
            subtype: istr(ct.subtype.as_bytes()),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: Some(SinglePartExtensionData {
            md5: header_nstring(&flds, "content-md5"),
            tail: Some(disposition),
        }),
    }
}

/// The non-extensible form FETCH BODY returns (RFC 9051 7.5.2: "extension data
/// is never returned with the BODY fetch"): `s` without extension data at any
/// depth, including inside attached messages.
pub(crate) fn without_extensions(s: BodyStructure<'static>) -> BodyStructure<'static> {
    match s {
        BodyStructure::Single { body, .. } => BodyStructure::Single {
            body: Body {
                basic: body.basic,
                specific: match body.specific {
                    SpecificFields::Message {
                        envelope,
                        body_structure,
                        number_of_lines,
                    } => SpecificFields::Message {
                        envelope,
                        body_structure: Box::new(without_extensions(*body_structure)),
                        number_of_lines,
                    },
                    other => other,
                },
            },
            extension_data: None,
        },
        BodyStructure::Multi {
            bodies, subtype, ..
        } => {
            let bodies: Vec<_> = bodies.into_iter().map(without_extensions).collect();
            BodyStructure::Multi {
                bodies: Vec1::unvalidated(bodies),
                subtype,
                extension_data: None,
            }
        }
    }
}

/// An empty text/plain body, for the impossible empty multipart.
fn text_body(size: u32, lines: u32) -> Body<'static> {
    Body {
        basic: BasicFields {
            parameter_list: vec![(istr(b"charset"), istr(b"us-ascii"))],
            id: NString(None),
            description: NString(None),
            content_transfer_encoding: istr(b"7bit"),
            size,
        },
        specific: SpecificFields::Text {
            subtype: istr(b"plain"),
            number_of_lines: lines,
        },
    }
}

fn params(p: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    p.iter()
        .map(|(n, v)| (istr(n.as_bytes()), istr(v.as_bytes())))
        .collect()
}

/// Content-Disposition, Content-Language and Content-Location, always all three
/// (NIL when absent), as Dovecot sends them.
fn disposition(flds: &[Field<'_>]) -> Disposition<'static> {
    let disposition = field(flds, "content-disposition").and_then(|f| {
        let value = String::from_utf8_lossy(&unfold(f.value)).into_owned();
        let (kind, p) = split_params(&value);
        (!kind.is_empty()).then(|| (istr(kind.as_bytes()), params(&p)))
    });
    let language = field(flds, "content-language")
        .map(|f| {
            String::from_utf8_lossy(&unfold(f.value))
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| istr(l.as_bytes()))
                .collect()
        })
        .unwrap_or_default();
    Disposition {
        disposition,
        tail: Some(Language {
            language,
            tail: Some(Location {
                location: header_nstring(flds, "content-location"),
                extensions: vec![],
            }),
        }),
    }
}

/// Lines of an encoded body, counted as Dovecot does: its line feeds (the one
/// before a delimiter belongs to the delimiter, so "text" + CRLF + "--b" is 0).
fn lines(body: &[u8]) -> u32 {
    u32::try_from(memchr::memchr_iter(b'\n', body).count()).unwrap_or(u32::MAX)
}

/// Whether a Content-Transfer-Encoding value is an RFC 2045 token; anything else
/// is reported as the default, as Dovecot does.
fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(b))
}
