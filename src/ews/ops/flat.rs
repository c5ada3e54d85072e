//! The response frame of operations whose `m:{Op}Response` is itself the
//! response message (GetUserPhoto, GetAppManifests, GetAppMarketplaceUrl,
//! GetUnifiedGroupsSettings, and the outer level of GetServiceConfiguration and
//! GetMailTips): `ResponseClass`, then `MessageText`, `ResponseCode`,
//! `DescriptiveLinkKey` in the schema's order, then the operation's own elements.

use super::default_text;
use crate::ews::codes::ResponseCode;
use crate::ews::envelope::{NS_MESSAGES, NS_TYPES};
use crate::ews::xml::Xml;

/// One open `m:{Op}Response` element.
pub struct Flat<'x> {
    xml: &'x mut Xml,
    name: String,
}

impl<'x> Flat<'x> {
    fn open(xml: &'x mut Xml, op: &str, class: &str) -> Flat<'x> {
        let name = format!("m:{op}Response");
        xml.open(
            &name,
            &[
                ("ResponseClass", class),
                ("xmlns:m", NS_MESSAGES),
                ("xmlns:t", NS_TYPES),
            ],
        );
        Flat { xml, name }
    }

    /// A Success response; write the operation's elements into [`Flat::xml`],
    /// then call [`Flat::finish`].
    pub fn ok(xml: &'x mut Xml, op: &str) -> Flat<'x> {
        let flat = Flat::open(xml, op, "Success");
        flat.xml
            .leaf("m:ResponseCode", ResponseCode::NoError.as_str());
        flat
    }

    /// An Error response with `text` (the code's usual text when `None`); the
    /// operation may still add the elements its schema requires.
    pub fn error(xml: &'x mut Xml, op: &str, code: ResponseCode, text: Option<&str>) -> Flat<'x> {
        let flat = Flat::open(xml, op, "Error");
        flat.xml
            .leaf("m:MessageText", text.unwrap_or_else(|| default_text(code)))
            .leaf("m:ResponseCode", code.as_str())
            .leaf("m:DescriptiveLinkKey", "0");
        flat
    }

    /// The writer, inside the response element.
    pub fn xml(&mut self) -> &mut Xml {
        self.xml
    }

    /// Closes the response element.
    pub fn finish(self) {
        self.xml.close(&self.name);
    }
}
