//! Small operations: ConvertId (our ids have one format) and GetServerTimeZones.

use super::{Reply, ids};
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::xml::{Element, Xml};

/// ConvertId: ids are already in their only format (EwsId), so an EwsId converts
/// to itself; other formats name nothing here. exchangelib's version probe sends a
/// dummy id and reads only the header.
pub fn convert_id(_ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let dest = op.attr("DestinationFormat").unwrap_or("EwsId");
    let mut reply = Reply::begin(xml, "ConvertId");
    for alt in ids(op, "SourceIds") {
        let id = alt.attr("Id").unwrap_or("");
        let ours = matches!(alt.attr("Format"), Some("EwsId") | None) && EwsId::decode(id).is_ok();
        if ours && dest == "EwsId" {
            let x = reply.ok();
            x.empty(
                "m:AlternateId",
                &[
                    ("xsi:type", "t:AlternateIdType"),
                    ("Format", "EwsId"),
                    ("Id", id),
                    ("Mailbox", alt.attr("Mailbox").unwrap_or("")),
                ],
            );
            reply.end();
        } else {
            reply.error(
                ResponseCode::ErrorInvalidIdMalformed,
                "Only EwsId identifiers exist on this server.",
            );
        }
    }
    reply.finish();
}

/// GetServerTimeZones: the server keeps every time in UTC; it offers UTC.
pub fn get_server_time_zones(_op: &Element, xml: &mut Xml) {
    let mut reply = Reply::begin(xml, "GetServerTimeZones");
    let x = reply.ok();
    x.open("m:TimeZoneDefinitions", &[]);
    x.open(
        "t:TimeZoneDefinition",
        &[("Id", "UTC"), ("Name", "(UTC) Coordinated Universal Time")],
    );
    x.open("t:Periods", &[]);
    x.empty(
        "t:Period",
        &[
            ("Bias", "PT0M"),
            ("Name", "Standard"),
            ("Id", "trule:Microsoft/Registry/UTC/1-Standard"),
        ],
    );
    x.close("t:Periods");
    x.close("t:TimeZoneDefinition");
    x.close("m:TimeZoneDefinitions");
    reply.end();
    reply.finish();
}
