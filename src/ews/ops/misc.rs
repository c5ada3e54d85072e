//! Small operations: ConvertId (our ids have one format; it tells whose mailbox
//! an id is in) and GetServerTimeZones.

use super::{Reply, ids};
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::xml::{Element, Xml};

/// ConvertId: ids are already in their only format (EwsId), so an EwsId converts
/// to itself, with `Mailbox` the primary address of the mailbox that holds it
/// (DavMail learns the user's address this way, sending a made-up one); other
/// formats name nothing here. exchangelib's version probe sends a dummy id and
/// reads only the header.
pub async fn convert_id(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let dest = op.attr("DestinationFormat").unwrap_or("EwsId");
    let mut reply = Reply::begin(xml, "ConvertId");
    for alt in ids(op, "SourceIds") {
        let id = alt.attr("Id").unwrap_or("");
        let ours = match alt.attr("Format") {
            Some("EwsId") | None => EwsId::decode(id).ok(),
            Some(_) => None,
        };
        let Some(ours) = ours.filter(|_| dest == "EwsId") else {
            reply.error(
                ResponseCode::ErrorInvalidIdMalformed,
                "Only EwsId identifiers exist on this server.",
            );
            continue;
        };
        match owner_address(ctx, &ours).await {
            Some(mailbox) => {
                let x = reply.ok();
                x.empty(
                    "m:AlternateId",
                    &[
                        ("xsi:type", "t:AlternateIdType"),
                        ("Format", "EwsId"),
                        ("Id", id),
                        ("Mailbox", &mailbox),
                    ],
                );
                reply.end();
            }
            None => reply.fail(ResponseCode::ErrorItemNotFound),
        }
    }
    reply.finish();
}

/// The primary address of the mailbox holding what an id names, when that is a
/// user or resource of the requester's organization.
async fn owner_address(ctx: &Context<'_>, id: &EwsId) -> Option<String> {
    let store = &ctx.ews.store;
    let owner = match id {
        EwsId::Root(m) | EwsId::Top(m) => m.clone(),
        EwsId::Folder(f) => store.folder_by_item_id(f).await.ok()?.mailbox_id,
        EwsId::Item(i) => store.message_by_item_id(i).await.ok()?.0.mailbox_id,
        EwsId::Attachment(a) => {
            let item = a.split(':').next()?;
            store.message_by_item_id(item).await.ok()?.0.mailbox_id
        }
    };
    let d = &ctx.ews.directory;
    let org = ctx.org_id();
    match d.describe_user(org, &owner) {
        Ok(u) => u.base.email,
        Err(_) => d.describe_resource(org, &owner).ok()?.base.email,
    }
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
