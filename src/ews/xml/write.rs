//! Response XML: a thin builder over quick-xml's writer that makes output valid
//! whatever the store holds.
//!
//! Text and attribute values are escaped by quick-xml; before that, characters XML
//! 1.0 forbids (C0 controls but tab/LF/CR, U+FFFE/U+FFFF; Rust strings already
//! exclude lone surrogates) are dropped, because one such character in a subject
//! makes strict clients (Outlook for Mac's libxml2, eM Client) drop the whole
//! response.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

/// Builds one XML document in memory.
pub struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Default for Xml {
    fn default() -> Self {
        Xml::new()
    }
}

/// Whether XML 1.0 allows the character in a document.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The text with XML-forbidden characters removed (borrowed when none).
pub fn clean(text: &str) -> Cow<'_, str> {
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|c| allowed(*c)).collect())
    }
}

impl Xml {
    /// An empty document with the XML declaration.
    pub fn new() -> Xml {
        let mut xml = Xml {
            writer: Writer::new(Vec::with_capacity(4096)),
        };
        xml.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        xml
    }

    /// Makes room for `additional` more bytes at once (a response known to carry
    /// megabytes grows once instead of by doubling and copying).
    pub fn reserve(&mut self, additional: usize) {
        self.writer.get_mut().reserve(additional);
    }

    /// Without the declaration: for documents appended to a stream that has one.
    pub fn fragment() -> Xml {
        Xml {
            writer: Writer::new(Vec::with_capacity(1024)),
        }
    }

    fn start_tag<'a>(name: &'a str, attrs: &[(&str, &str)]) -> BytesStart<'a> {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            start.push_attribute((*k, clean(v).as_ref()));
        }
        start
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        let _ = self
            .writer
            .write_event(Event::Start(Self::start_tag(name, attrs)));
        self
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = self.writer.write_event(Event::End(BytesEnd::new(name)));
        self
    }

    /// An element without content.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        let _ = self
            .writer
            .write_event(Event::Empty(Self::start_tag(name, attrs)));
        self
    }

    /// Escaped text content.
    pub fn text(&mut self, text: &str) -> &mut Self {
        let cleaned = clean(text);
        if !cleaned.contains('\r') {
            let _ = self
                .writer
                .write_event(Event::Text(BytesText::new(cleaned.as_ref())));
            return self;
        }
        // A raw CR would reach the client as LF (XML line-end normalization):
        // written as a reference, a CRLF body stays CRLF, as Exchange writes it.
        let escaped = quick_xml::escape::escape(cleaned.as_ref()).replace('\r', "&#13;");
        let _ = self
            .writer
            .write_event(Event::Text(BytesText::from_escaped(escaped)));
        self
    }

    /// `<name attrs>base64 of data</name>`, encoded straight into the document:
    /// base64's alphabet needs no escaping and holds no forbidden character, and
    /// the data is often megabytes (MIME content, attachments).
    pub fn base64_leaf(&mut self, name: &str, attrs: &[(&str, &str)], data: &[u8]) -> &mut Self {
        use base64::Engine;
        self.open(name, attrs);
        let out = self.writer.get_mut();
        let start = out.len();
        let len = base64::encoded_len(data.len(), true).unwrap_or(0);
        out.resize(start + len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(data, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        self.close(name)
    }

    /// `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name, &[]).text(text).close(name)
    }

    /// `<name attrs>text</name>`.
    pub fn leaf_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.open(name, attrs).text(text).close(name)
    }

    /// Markup written verbatim (constant fragments only, never client data).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        let _ = self
            .writer
            .write_event(Event::Text(BytesText::from_escaped(markup)));
        self
    }

    /// The document's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.writer.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_drops_forbidden_characters() {
        let mut x = Xml::fragment();
        x.open("t:Subject", &[("a", "x\"<\u{1}")])
            .text("a<b & c\u{0}\u{b}\u{FFFE}d\u{1F600}")
            .close("t:Subject");
        let out = String::from_utf8(x.finish()).unwrap();
        assert_eq!(
            out,
            "<t:Subject a=\"x&quot;&lt;\">a&lt;b &amp; cd\u{1F600}</t:Subject>"
        );
        assert!(crate::ews::xml::read::parse(out.as_bytes()).is_ok());
    }

    #[test]
    fn carriage_returns_survive_a_parser() {
        let mut x = Xml::fragment();
        x.leaf("t:Body", "a\r\nb < c");
        let out = String::from_utf8(x.finish()).unwrap();
        assert_eq!(out, "<t:Body>a&#13;\nb &lt; c</t:Body>");
        let back = crate::ews::xml::read::parse(out.as_bytes()).unwrap();
        assert_eq!(back.text, "a\r\nb < c");
        let mut x = Xml::fragment();
        x.base64_leaf("t:MimeContent", &[("CharacterSet", "UTF-8")], b"Hi>??");
        assert_eq!(
            String::from_utf8(x.finish()).unwrap(),
            "<t:MimeContent CharacterSet=\"UTF-8\">SGk+Pz8=</t:MimeContent>"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_as_valid_xml(s in ".*") {
            let mut x = Xml::fragment();
            x.leaf("a", &s);
            let out = x.finish();
            let back = crate::ews::xml::read::parse(&out).unwrap();
            proptest::prop_assert_eq!(back.text, clean(&s).into_owned());
        }
    }
}
