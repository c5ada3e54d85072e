//! One authenticated EWS request's standing: who acts, on whose mailbox by
//! default, from where, and the audited mailbox-rights decision for each mailbox it
//! touches (through `access::mailbox`).

use std::net::IpAddr;
use std::sync::Arc;

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
    /// An impersonation role acting as a user (Bearer + ExchangeImpersonation),
    /// with the token and target address it was decided on (re-checked by
    /// long-lived requests).
    Role {
        imp: Impersonation,
        token: String,
        target: String,
    },
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
            Who::Role { imp: i, .. } => Some((&i.org_id, &i.user_id)),
            Who::RoleWithoutTarget { .. } => None,
        }
    }
}

/// The request's standing, handed to every operation.
pub struct Context<'a> {
    pub ews: &'a Arc<Ews>,
    pub who: Who,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Context<'_> {
    /// The organization the request acts in.
    pub fn org_id(&self) -> &str {
        match &self.who {
            Who::User(s) => &s.org_id,
            Who::Role { imp: i, .. } => &i.org_id,
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

    /// Who acts, for decisions made elsewhere (sending); `None` for a role
    /// without a target.
    pub fn actor(&self) -> Option<Actor<'_>> {
        match &self.who {
            Who::User(s) => Some(Actor::User {
                org_id: &s.org_id,
                user_id: &s.user_id,
            }),
            Who::Role { imp: i, .. } => Some(Actor::Role {
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
        matches!(&self.who, Who::Role { imp, .. } if imp.role_type == RoleType::ReadOnly)
    }

    /// Who created a subscription: only they may read it.
    pub fn creator(&self) -> String {
        match &self.who {
            Who::User(s) => s.user_id.clone(),
            Who::Role { imp, .. } => format!("{}:{}", imp.role_id, imp.user_id),
            Who::RoleWithoutTarget { org_id } => format!("{org_id}:-"),
        }
    }

    /// Whether the request may still go on (for long-lived requests): the user's
    /// state and rules, or the role, token and its rules, as of now.
    pub fn still_allowed(&mut self) -> bool {
        let auth = &self.ews.auth;
        match &mut self.who {
            Who::User(session) => auth.recheck(session, self.ip, crate::access::Protocol::Ews),
            Who::Role { token, target, .. } => auth
                .impersonate(token, target, self.ip, crate::clock::now_ms_u64())
                .is_ok(),
            Who::RoleWithoutTarget { .. } => false,
        }
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
