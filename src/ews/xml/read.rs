//! A SOAP request as a small element tree, read with quick-xml under limits.
//!
//! EWS requests are small documents whose meaning sits in element local names
//! (clients pick their own prefixes: `m:`, `t:`, `ns2:`, none), so the tree keeps
//! local names only. Reading refuses what a hostile client could use against the
//! daemon: a DTD or entity declaration (no entity is ever expanded), nesting deeper
//! than [`MAX_DEPTH`], more than [`MAX_ELEMENTS`] elements, and malformed XML.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Deeper than any EWS request (a Restriction of a few dozen levels is already odd).
pub const MAX_DEPTH: usize = 128;
/// More elements than any sane request (a 1,000-id GetItem is about 3,000).
pub const MAX_ELEMENTS: usize = 200_000;

/// Why a request document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("XML nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("XML with more than {MAX_ELEMENTS} elements")]
    TooMany,
}

/// One element: local name, attributes by local name, its own text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child of that local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child of that local name, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text of a child element.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }
}

fn local(name: &[u8]) -> String {
    let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
    String::from_utf8_lossy(local).into_owned()
}

fn element(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = a
            .unescape_value()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        attrs.push((local(key), value.into_owned()));
    }
    Ok(Element {
        name: local(start.name().as_ref()),
        attrs,
        ..Element::default()
    })
}

/// Parses a whole document into its root element.
pub fn parse(xml: &[u8]) -> Result<Element, XmlError> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Start(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(element(&s)?);
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                let e = element(&s)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => return Ok(e),
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let text = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let Some(top) = stack.last_mut() else {
                    continue;
                };
                let name = r.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                top.text.push_str(&resolve_reference(&name)?);
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => return Err(XmlError::Malformed("document ends early".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        buf.clear();
    }
}

/// The five predefined entities and character references; anything else names an
/// entity this document could only have declared in a DTD, which is refused.
fn resolve_reference(name: &str) -> Result<String, XmlError> {
    let predefined = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    };
    if let Some(c) = predefined {
        return Ok(c.to_string());
    }
    let code = if let Some(hex) = name.strip_prefix("#x") {
        u32::from_str_radix(hex, 16).ok()
    } else if let Some(dec) = name.strip_prefix('#') {
        dec.parse().ok()
    } else {
        return Err(XmlError::Malformed(format!("undeclared entity &{name};")));
    };
    code.and_then(char::from_u32)
        .map(String::from)
        .ok_or_else(|| XmlError::Malformed(format!("bad character reference &{name};")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_local_names_attributes_and_text() {
        let doc = br#"<?xml version="1.0"?><s:Envelope xmlns:s="x" xmlns:m="y"><s:Body><m:GetFolder a:Traversal="Shallow" xmlns:a="z"><m:Id>a &amp; b &#x41;</m:Id><m:Empty/></m:GetFolder></s:Body></s:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        let op = root.path(&["Body", "GetFolder"]).unwrap();
        assert_eq!(op.attr("Traversal"), Some("Shallow"));
        assert_eq!(op.child_text("Id"), Some("a & b A"));
        assert!(op.child("Empty").is_some());
    }

    #[test]
    fn refuses_dtds_entities_depth_and_garbage() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>"#;
        assert_eq!(parse(bomb), Err(XmlError::Dtd));
        assert!(matches!(
            parse(b"<a>&lol;</a>"),
            Err(XmlError::Malformed(_))
        ));
        let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b""), Err(XmlError::Malformed(_))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_tag_soup(parts in proptest::collection::vec(
            proptest::prop_oneof!["<a>", "</a>", "<b x='1'/>", "&amp;", "&#0;", "text", "<!DOCTYPE x>", "<![CDATA[x]]>"], 0..40)) {
            let _ = parse(parts.concat().as_bytes());
        }
    }
}
