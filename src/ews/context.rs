//! One authenticated EWS request's standing: who acts, on whose mailbox by
//! default, from where, and the audited mailbox-rights decision for each mailbox it
//! touches (through `access::mailbox`).

use std::net::IpAddr;

use super::codes::ResponseCode;
use super::service::Ews;
use crate::access::RoleType;
use crate::access::login::{Impersonation, Session};
use crate::access::mailbox::{Actor, Object, Origin};
use crate::directory::Recipient;
use crate::events::audit::{AuditProtocol, MailboxAction};

/// Who sent the request.
#[derive(Debug, Clone)]
pub enum Who {
    /// A user with their password (Basic).
    User(Session),
    /// An impersonation role acting as a user (Bearer + ExchangeImpersonation).
    Role(Impersonation),
    /// A role's valid token without `ExchangeImpersonation`: no mailbox to act on
    /// (exchangelib's version probe sends such a request).
    RoleWithoutTarget { org_id: String },
}

impl Who {
    /// The organization and mailbox acted on by default: the user's own, or the
    /// impersonated user's.
    pub fn mailbox(&self) -> Option<(&str, &str)> {
        match self {
            Who::User(s) => Some((&s.org_id, &s.user_id)),
            Who::Role(i) => Some((&i.org_id, &i.user_id)),
            Who::RoleWithoutTarget { .. } => None,
        }
    }
}

/// The request's standing, handed to every operation.
pub struct Context<'a> {
    pub ews: &'a Ews,
    pub who: Who,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Context<'_> {
    /// The organization the request acts in.
    pub fn org_id(&self) -> &str {
        match &self.who {
            Who::User(s) => &s.org_id,
            Who::Role(i) => &i.org_id,
            Who::RoleWithoutTarget { org_id } => org_id,
        }
    }

    /// The mailbox a folder id without a `Mailbox` names: the user's own, or the
    /// impersonated user's.
    pub fn own_mailbox(&self) -> Result<&str, ResponseCode> {
        self.who
            .mailbox()
            .map(|(_, m)| m)
            .ok_or(ResponseCode::ErrorMissingEmailAddress)
    }

    fn actor(&self) -> Option<Actor<'_>> {
        match &self.who {
            Who::User(s) => Some(Actor::User {
                org_id: &s.org_id,
                user_id: &s.user_id,
            }),
            Who::Role(i) => Some(Actor::Role {
                org_id: &i.org_id,
                role_id: &i.role_id,
                user_id: &i.user_id,
                kind: i.role_type,
            }),
            Who::RoleWithoutTarget { .. } => None,
        }
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            protocol: AuditProtocol::Ews,
            source_ip: self.ip,
            user_agent: self.user_agent.as_deref(),
        }
    }

    /// Decides (and audits) one action on `owner`'s mailbox.
    pub fn authorize(
        &self,
        owner: &str,
        action: MailboxAction,
        object: Object<'_>,
    ) -> Result<(), ResponseCode> {
        let actor = self.actor().ok_or(ResponseCode::ErrorMissingEmailAddress)?;
        let rights = self.ews.auth.mailboxes();
        match rights.authorize(actor, owner, action, object, self.origin()) {
            Some(_) => Ok(()),
            None => Err(ResponseCode::ErrorAccessDenied),
        }
    }

    /// Whether a READ_ONLY role is acting (writes are refused before any work).
    pub fn read_only(&self) -> bool {
        matches!(&self.who, Who::Role(i) if i.role_type == RoleType::ReadOnly)
    }

    /// The mailbox (user id) an SMTP address names in this organization.
    pub fn mailbox_of(&self, address: &str) -> Result<String, ResponseCode> {
        match self.ews.directory.resolve_address(address.trim()) {
            Some(Recipient::User { org, id } | Recipient::Resource { org, id })
                if org == self.org_id() =>
            {
                Ok(id)
            }
            _ => Err(ResponseCode::ErrorNonExistentMailbox),
        }
    }
}
