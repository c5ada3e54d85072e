//! Sending mail for a signed-in user from a protocol other than SMTP (EWS
//! CreateItem/SendItem): the interface only. `smtp` implements it with its own
//! submission path — sender rights, local delivery, the Sent Items copy, the
//! outbound queue, email events — so a message sent over EWS is one SMTP
//! submission, and EWS never imports `smtp` (the daemon hands it the
//! implementation).

use std::net::IpAddr;

use async_trait::async_trait;

use crate::access::mailbox::Actor;
use crate::events::audit::AuditProtocol;

/// One message to send.
pub struct Submission<'a> {
    /// Who sends: a user, or a role acting as its user.
    pub actor: Actor<'a>,
    /// The RFC 5322 message as the client gave it (Bcc already taken out).
    pub message: Vec<u8>,
    /// Every envelope recipient (To, Cc and Bcc).
    pub recipients: Vec<String>,
    /// Keep a copy for the sender (EWS SendAndSaveCopy), and where.
    pub save_copy: Option<SavedCopy>,
    pub protocol: AuditProtocol,
    pub source_ip: IpAddr,
}

/// The sender's copy of a sent message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedCopy {
    /// The folder (EWS SavedItemFolderId, checked by the caller for the sender's
    /// right to create there); `None` for the sender's Sent Items.
    pub folder: Option<i64>,
    /// Its flags besides `\Seen` (EWS categories).
    pub flags: Vec<String>,
    /// Properties the copy keeps beside it (EWS extended properties, reminders,
    /// sensitivity), as the sent item had them.
    pub properties: Vec<crate::store::Property>,
}

/// Why nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("not authorized to send as {0}")]
    SendAsDenied(String),
    #[error("the message has no recipients")]
    NoRecipients,
    #[error("recipient {0} rejected: {1}")]
    Recipient(String, &'static str),
    #[error("message too large")]
    TooLarge,
    #[error("temporary storage failure")]
    Storage,
}

/// What a submission did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// The item id of the Sent Items copy, when one was kept.
    pub sent_copy: Option<String>,
}

/// Sends mail as SMTP submission does.
#[async_trait]
pub trait Submit: Send + Sync {
    async fn submit(&self, submission: Submission<'_>) -> Result<Submitted, SubmitError>;
}
