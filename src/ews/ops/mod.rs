//! EWS operations: the table of what is served, and the response frame every
//! operation writes into (`m:{Op}Response/m:ResponseMessages/m:{Op}ResponseMessage`,
//! one message per requested id, in request order).
//!
//! An operation not in the table still gets HTTP 200 and a well-formed
//! `{Op}Response` with ResponseClass Error and `ErrorInvalidOperation`: an HTTP 500
//! makes Outlook prompt for credentials again, and ErrorInvalidRequest makes
//! exchangelib retry the request under ten schema versions.

use super::codes::ResponseCode;
use super::context::Context;
use super::envelope::{self, NS_MESSAGES, NS_TYPES};
use super::xml::{Element, Xml};

mod apps;
mod attachment;
pub mod compose;
mod config;
mod export;
mod flat;
mod folder;
pub mod item;
mod misc;
mod notify;
mod people;
pub mod photo;
mod respond;
pub mod restrict;
pub mod shape;
mod sync;
mod update;
pub mod write;

/// Every operation served (the rest get [`unsupported`]'s answer).
pub const SERVED: &[&str] = &[
    "GetFolder",
    "FindFolder",
    "SyncFolderHierarchy",
    "CreateFolder",
    "DeleteFolder",
    "UpdateFolder",
    "MoveFolder",
    "CopyFolder",
    "EmptyFolder",
    "FindItem",
    "GetItem",
    "CreateItem",
    "SendItem",
    "UpdateItem",
    "DeleteItem",
    "MoveItem",
    "CopyItem",
    "MarkAllItemsAsRead",
    "MarkAsJunk",
    "ArchiveItem",
    "ExportItems",
    "UploadItems",
    "SyncFolderItems",
    "Subscribe",
    "GetEvents",
    "GetStreamingEvents",
    "Unsubscribe",
    "ResolveNames",
    "ExpandDL",
    "GetAttachment",
    "CreateAttachment",
    "DeleteAttachment",
    "ConvertId",
    "GetServerTimeZones",
    "GetServiceConfiguration",
    "GetMailTips",
    "GetUserPhoto",
    "GetAppMarketplaceUrl",
    "GetAppManifests",
    "GetUnifiedGroupsSettings",
];

/// The operation's name as a metrics label: itself when served, else `unsupported`.
pub fn served(op: &str) -> &'static str {
    SERVED
        .iter()
        .find(|s| **s == op)
        .copied()
        .unwrap_or("unsupported")
}

/// What an operation answers: one document, or (GetStreamingEvents) a stream of
/// complete envelopes sent as they happen.
pub enum Answer {
    Document(Vec<u8>),
    Stream(tokio::sync::mpsc::Receiver<bytes::Bytes>),
}

/// Answers one operation.
pub async fn dispatch(ctx: Context<'_>, op: &Element) -> Answer {
    if op.name == "GetStreamingEvents" {
        return notify::get_streaming_events(ctx, op).await;
    }
    let ctx = &ctx;
    let mut xml = Xml::new();
    envelope::open(&mut xml);
    match op.name.as_str() {
        "GetFolder" => folder::get_folder(ctx, op, &mut xml).await,
        "FindFolder" => folder::find_folder(ctx, op, &mut xml).await,
        "SyncFolderHierarchy" => folder::sync_folder_hierarchy(ctx, op, &mut xml).await,
        "CreateFolder" => folder::create_folder(ctx, op, &mut xml).await,
        "DeleteFolder" => folder::delete_folder(ctx, op, &mut xml).await,
        "UpdateFolder" => folder::update_folder(ctx, op, &mut xml).await,
        "FindItem" => item::find_item(ctx, op, &mut xml).await,
        "GetItem" => item::get_item(ctx, op, &mut xml).await,
        "CreateItem" => write::create_item(ctx, op, &mut xml).await,
        "UpdateItem" => update::update_item(ctx, op, &mut xml).await,
        "SendItem" => write::send_item(ctx, op, &mut xml).await,
        "DeleteItem" => write::delete_item(ctx, op, &mut xml).await,
        "MoveItem" => write::copy_or_move(ctx, op, &mut xml, true).await,
        "CopyItem" => write::copy_or_move(ctx, op, &mut xml, false).await,
        "MarkAllItemsAsRead" => write::mark_all_items_as_read(ctx, op, &mut xml).await,
        "MarkAsJunk" => write::mark_as_junk(ctx, op, &mut xml).await,
        "ArchiveItem" => write::archive_item(ctx, op, &mut xml).await,
        "ExportItems" => export::export_items(ctx, op, &mut xml).await,
        "UploadItems" => export::upload_items(ctx, op, &mut xml).await,
        "SyncFolderItems" => sync::sync_folder_items(ctx, op, &mut xml).await,
        "Subscribe" => notify::subscribe(ctx, op, &mut xml).await,
        "GetEvents" => notify::get_events(ctx, op, &mut xml).await,
        "Unsubscribe" => notify::unsubscribe(ctx, op, &mut xml),
        "ResolveNames" => people::resolve_names(ctx, op, &mut xml),
        "ExpandDL" => people::expand_dl(ctx, op, &mut xml),
        "GetAttachment" => attachment::get_attachment(ctx, op, &mut xml).await,
        "CreateAttachment" => attachment::create_attachment(ctx, op, &mut xml).await,
        "DeleteAttachment" => attachment::delete_attachment(ctx, op, &mut xml).await,
        "ConvertId" => misc::convert_id(ctx, op, &mut xml).await,
        "GetServerTimeZones" => misc::get_server_time_zones(op, &mut xml),
        "MoveFolder" => folder::move_folder(ctx, op, &mut xml).await,
        "CopyFolder" => folder::copy_folder(ctx, op, &mut xml).await,
        "EmptyFolder" => folder::empty_folder(ctx, op, &mut xml).await,
        "GetServiceConfiguration" => config::get_service_configuration(ctx, op, &mut xml),
        "GetMailTips" => config::get_mail_tips(ctx, op, &mut xml).await,
        "GetUserPhoto" => photo::get_user_photo(op, &mut xml),
        "GetAppMarketplaceUrl" => apps::get_app_marketplace_url(&mut xml),
        "GetAppManifests" => apps::get_app_manifests(op, &mut xml),
        "GetUnifiedGroupsSettings" => apps::get_unified_groups_settings(&mut xml),
        other => unsupported(other, &mut xml),
    }
    envelope::close(&mut xml);
    Answer::Document(xml.finish())
}

/// The response name of an operation (`GetUserOofSettingsRequest` answers as
/// `GetUserOofSettingsResponse`).
fn base_name(op: &str) -> &str {
    op.strip_suffix("Request").unwrap_or(op)
}

fn unsupported(op: &str, xml: &mut Xml) {
    let op: String = op
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let op = if op.is_empty() {
        "Unknown".to_string()
    } else {
        op
    };
    let mut reply = Reply::begin(xml, base_name(&op));
    reply.error(
        ResponseCode::ErrorInvalidOperation,
        &format!("The operation {op} is not supported by this server."),
    );
    reply.finish();
}

/// The response frame of one operation.
pub struct Reply<'x> {
    xml: &'x mut Xml,
    response: String,
    message: String,
}

impl<'x> Reply<'x> {
    /// Opens `m:{op}Response` and its `m:ResponseMessages`.
    pub fn begin(xml: &'x mut Xml, op: &str) -> Reply<'x> {
        let response = format!("m:{op}Response");
        xml.open(
            &response,
            &[("xmlns:m", NS_MESSAGES), ("xmlns:t", NS_TYPES)],
        );
        xml.open("m:ResponseMessages", &[]);
        Reply {
            xml,
            message: format!("m:{op}ResponseMessage"),
            response,
        }
    }

    /// Opens a Success message; write its content into the returned writer, then
    /// call [`Reply::end`].
    pub fn ok(&mut self) -> &mut Xml {
        self.xml
            .open(&self.message, &[("ResponseClass", "Success")])
            .leaf("m:ResponseCode", ResponseCode::NoError.as_str());
        self.xml
    }

    /// The writer, inside the current message.
    pub fn xml(&mut self) -> &mut Xml {
        self.xml
    }

    /// Closes a message opened by [`Reply::ok`].
    pub fn end(&mut self) {
        self.xml.close(&self.message);
    }

    /// A whole Error message.
    pub fn error(&mut self, code: ResponseCode, text: &str) {
        self.error_open(code, text);
        self.end();
    }

    /// Opens an Error message (text, code, link key written); write what the
    /// operation adds after them, then call [`Reply::end`].
    pub fn error_open(&mut self, code: ResponseCode, text: &str) -> &mut Xml {
        self.xml
            .open(&self.message, &[("ResponseClass", "Error")])
            .leaf("m:MessageText", text)
            .leaf("m:ResponseCode", code.as_str())
            .leaf("m:DescriptiveLinkKey", "0");
        self.xml
    }

    /// An empty Success message, or the error's Error message.
    pub fn empty_or_fail(&mut self, done: Result<(), ResponseCode>) {
        match done {
            Ok(()) => {
                self.ok();
                self.end();
            }
            Err(code) => self.fail(code),
        }
    }

    /// An Error message with the code's usual text.
    pub fn fail(&mut self, code: ResponseCode) {
        self.error(code, default_text(code));
    }

    /// Closes the frame.
    pub fn finish(self) {
        self.xml.close("m:ResponseMessages").close(&self.response);
    }
}

/// A short human text for an error code.
pub fn default_text(code: ResponseCode) -> &'static str {
    use ResponseCode::*;
    match code {
        ErrorAccessDenied => "Access is denied. Check credentials and try again.",
        ErrorFolderNotFound => "The specified folder could not be found in the store.",
        ErrorItemNotFound => "The specified object was not found in the store.",
        ErrorInvalidIdMalformed => "Id is malformed.",
        ErrorNonExistentMailbox => "The SMTP address has no mailbox associated with it.",
        ErrorMissingEmailAddress => {
            "An impersonation token needs ExchangeImpersonation to name a mailbox."
        }
        ErrorFolderExists => "A folder with the specified name already exists.",
        ErrorDeleteDistinguishedFolder => "Distinguished folders cannot be deleted.",
        ErrorQuotaExceeded => "The mailbox quota has been exceeded.",
        ErrorInvalidSyncStateData => "Synchronization state data is corrupt or otherwise invalid.",
        ErrorSchemaValidation => "The request failed schema validation.",
        ErrorIrresolvableConflict => {
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."
        }
        _ => "The request could not be completed.",
    }
}

/// Whether an XML boolean attribute or text is true (`true`/`1`).
pub fn truthy(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some("true" | "1"))
}

/// The id elements under a container (`FolderIds`, `ItemIds`, ...), in order.
pub fn ids<'e>(op: &'e Element, container: &str) -> Vec<&'e Element> {
    op.child(container)
        .map(|c| c.children.iter().collect())
        .unwrap_or_default()
}
