//! Mailbox rights: the one decision, for every protocol, of what a principal may do to
//! a mailbox, a folder or an item in it, and its audit record.
//!
//! [`decide`] is pure: the actor, the owner's grants to that actor (FULL_ACCESS,
//! SEND_AS, SEND_ON_BEHALF from the directory, groups already expanded) and the
//! action give the answer. [`MailboxRights`] reads the grants, decides and emits one
//! `mailbox_access` audit event per decision. IMAP shared folders and SMTP sender
//! rights call it now, EWS delegate and impersonated access next.
//!
//! Decided semantics (Exchange's, where WorkMail is silent): the owner may do
//! everything; FULL_ACCESS allows every action in the mailbox except sending from
//! it, which takes SEND_AS (send as the owner) or SEND_ON_BEHALF (send with the
//! actor in `Sender:`); an impersonation role acts as the mailbox's owner, limited to
//! the read actions when it is READ_ONLY (marking an item read is a write).
//!
//! This module must not touch the store or a session: it answers yes or no.

use std::net::IpAddr;

use super::RoleType;
use crate::directory::{Directory, Rights};
use crate::events::audit::{AuditProtocol, MailboxAccess, MailboxAction, ObjectType};
use crate::events::{AuditEvent, Events, new_id};

/// Who acts on a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// A logged-in user acting as themself.
    User { org_id: &'a str, user_id: &'a str },
    /// An impersonation role acting as `user_id` (EWS ExchangeImpersonation); its
    /// rules have already named that user.
    Role {
        org_id: &'a str,
        role_id: &'a str,
        user_id: &'a str,
        kind: RoleType,
    },
}

impl Actor<'_> {
    fn org_id(&self) -> &str {
        match self {
            Actor::User { org_id, .. } | Actor::Role { org_id, .. } => org_id,
        }
    }

    /// The user recorded as acting (the impersonated user for a role).
    fn user_id(&self) -> &str {
        match self {
            Actor::User { user_id, .. } | Actor::Role { user_id, .. } => user_id,
        }
    }
}

/// Whether a user may put an address in `From:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendAuthority {
    /// The address is the user's own (primary or alias).
    Own,
    /// SEND_AS on the owner's mailbox (which also allows sending on behalf).
    SendAs {
        /// Id of the user or resource that owns the address.
        owner: String,
    },
    /// SEND_ON_BEHALF only: `Sender:` must name the user.
    OnBehalf {
        /// Id of the user or resource that owns the address.
        owner: String,
    },
    /// No authority (unknown address, group address, other organization, no grant).
    No,
}

/// Why an action was allowed; `None` from [`decide`] means it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The actor's own mailbox.
    Owner,
    /// FULL_ACCESS on the owner's mailbox.
    FullAccess,
    /// SEND_AS: send with the owner's address in `From:`.
    SendAs,
    /// SEND_ON_BEHALF: send as the owner with the actor in `Sender:`.
    SendOnBehalf,
    /// An impersonation role acting as the owner.
    Role,
}

/// Whether the action only reads (what a READ_ONLY role may do).
pub fn is_read(action: MailboxAction) -> bool {
    use MailboxAction::*;
    matches!(
        action,
        Read | ReadHierarchy | ReadSummary | ReadAttachment | ReadPermissions
    )
}

/// The decision: `rights` are the owner's grants to a user actor (ignored for the
/// owner and for roles).
pub fn decide(
    actor: Actor<'_>,
    owner_id: &str,
    rights: Rights,
    action: MailboxAction,
) -> Option<Grant> {
    let sending = action == MailboxAction::SubmitEmailForSending;
    match actor {
        Actor::Role { user_id, kind, .. } => (user_id == owner_id
            && (kind == RoleType::FullAccess || is_read(action)))
        .then_some(Grant::Role),
        Actor::User { user_id, .. } if user_id == owner_id => Some(Grant::Owner),
        Actor::User { .. } if sending && rights.send_as => Some(Grant::SendAs),
        Actor::User { .. } if sending && rights.send_on_behalf => Some(Grant::SendOnBehalf),
        Actor::User { .. } if !sending && rights.full_access => Some(Grant::FullAccess),
        Actor::User { .. } => None,
    }
}

/// What was acted on, for the audit record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Object<'a> {
    /// `Folder`, `Message` (the default) or `Attachment`.
    pub kind: Option<ObjectType>,
    pub folder_path: Option<&'a str>,
    pub folder_id: Option<&'a str>,
    pub item_id: Option<&'a str>,
}

/// Where a request came from, for the audit record.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub protocol: AuditProtocol,
    pub source_ip: IpAddr,
    pub user_agent: Option<&'a str>,
}

/// Reads grants from the directory, decides, and audits each decision.
pub struct MailboxRights {
    directory: std::sync::Arc<Directory>,
    events: Events,
    /// `arn:aws:workmail:REGION:ACCOUNT:organization/`.
    arn_prefix: String,
}

impl MailboxRights {
    /// Decisions over this directory, audited to `events`.
    pub fn new(
        directory: std::sync::Arc<Directory>,
        events: Events,
        arn_prefix: String,
    ) -> MailboxRights {
        MailboxRights {
            directory,
            events,
            arn_prefix,
        }
    }

    /// The grant, without an audit record: for listings (which mailboxes to show)
    /// and for re-checks of an access already audited.
    pub fn peek(&self, actor: Actor<'_>, owner_id: &str, action: MailboxAction) -> Option<Grant> {
        decide(actor, owner_id, self.rights(actor, owner_id), action)
    }

    /// Decides and emits the `mailbox_access` audit event.
    pub fn authorize(
        &self,
        actor: Actor<'_>,
        owner_id: &str,
        action: MailboxAction,
        object: Object<'_>,
        origin: Origin<'_>,
    ) -> Option<Grant> {
        let rights = self.rights(actor, owner_id);
        self.judge(actor, owner_id, rights, action, object, origin)
    }

    /// The owner's grants to a user acting on someone else's mailbox (none matter
    /// for the owner or a role).
    fn rights(&self, actor: Actor<'_>, owner_id: &str) -> Rights {
        match actor {
            Actor::User { org_id, user_id } if user_id != owner_id => {
                self.directory.mailbox_rights(org_id, user_id, owner_id)
            }
            _ => Rights::default(),
        }
    }

    /// [`decide`], then its audit record.
    fn judge(
        &self,
        actor: Actor<'_>,
        owner_id: &str,
        rights: Rights,
        action: MailboxAction,
        object: Object<'_>,
        origin: Origin<'_>,
    ) -> Option<Grant> {
        let grant = decide(actor, owner_id, rights, action);
        self.audit(actor, owner_id, action, object, origin, grant.is_some());
        grant
    }

    /// Who may put `address` in `From:` (SMTP submission, EWS send): the address's
    /// owner decides through [`decide`] with `submit_email_for_sending`, audited. An
    /// address of a group, of another organization or of nobody gives `No` (not
    /// audited: there is no mailbox to act on).
    pub fn send_authority(
        &self,
        actor: Actor<'_>,
        address: &str,
        origin: Origin<'_>,
    ) -> SendAuthority {
        let Some((owner, rights)) =
            self.directory
                .sender_grants(actor.org_id(), actor.user_id(), address)
        else {
            return SendAuthority::No;
        };
        let action = MailboxAction::SubmitEmailForSending;
        match self.judge(actor, &owner, rights, action, Object::default(), origin) {
            Some(Grant::Owner | Grant::Role) => SendAuthority::Own,
            Some(Grant::SendAs) => SendAuthority::SendAs { owner },
            Some(Grant::SendOnBehalf) => SendAuthority::OnBehalf { owner },
            Some(Grant::FullAccess) | None => SendAuthority::No,
        }
    }

    /// Records an action a session was allowed to take without a new decision
    /// (its own mailbox, or a shared folder whose grant was checked on opening).
    pub fn audit(
        &self,
        actor: Actor<'_>,
        owner_id: &str,
        action: MailboxAction,
        object: Object<'_>,
        origin: Origin<'_>,
        allowed: bool,
    ) {
        let impersonator_id = match actor {
            Actor::Role { role_id, .. } => Some(role_id.to_string()),
            Actor::User { .. } => None,
        };
        self.events.audit(AuditEvent::MailboxAccess(MailboxAccess {
            request_id: new_id(),
            organization_arn: format!("{}{}", self.arn_prefix, actor.org_id()),
            user_id: actor.user_id().to_string(),
            impersonator_id,
            protocol: origin.protocol,
            source_ip: origin.source_ip.to_canonical(),
            user_agent: origin.user_agent.map(str::to_string),
            action,
            owner_id: owner_id.to_string(),
            object_type: object.kind.unwrap_or(ObjectType::Message),
            item_id: object.item_id.map(str::to_string),
            folder_path: object.folder_path.map(str::to_string),
            folder_id: object.folder_id.map(str::to_string),
            attachment_path: None,
            action_allowed: allowed,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MailboxAction::*;

    const ALL_ACTIONS: [MailboxAction; 16] = [
        Read,
        ReadHierarchy,
        ReadSummary,
        ReadAttachment,
        ReadPermissions,
        Create,
        Update,
        UpdatePermissions,
        UpdateReadState,
        Delete,
        SubmitEmailForSending,
        AbortSendingEmail,
        Move,
        MoveTo,
        Copy,
        CopyTo,
    ];

    fn user(id: &str) -> Actor<'_> {
        Actor::User {
            org_id: "m-1",
            user_id: id,
        }
    }

    fn grants(full_access: bool, send_as: bool, send_on_behalf: bool) -> Rights {
        Rights {
            full_access,
            send_as,
            send_on_behalf,
        }
    }

    #[test]
    fn the_owner_may_do_everything() {
        for a in ALL_ACTIONS {
            assert_eq!(
                decide(user("u1"), "u1", Rights::default(), a),
                Some(Grant::Owner)
            );
        }
    }

    #[test]
    fn full_access_does_everything_but_send() {
        for a in ALL_ACTIONS {
            let expected = (a != SubmitEmailForSending).then_some(Grant::FullAccess);
            assert_eq!(
                decide(user("u1"), "u2", grants(true, false, false), a),
                expected,
                "{a:?}"
            );
        }
    }

    #[test]
    fn sending_takes_send_as_before_send_on_behalf() {
        let send = |r| decide(user("u1"), "u2", r, SubmitEmailForSending);
        assert_eq!(send(grants(false, true, true)), Some(Grant::SendAs));
        assert_eq!(send(grants(false, false, true)), Some(Grant::SendOnBehalf));
        assert_eq!(send(grants(true, false, false)), None);
        assert_eq!(
            decide(user("u1"), "u2", grants(false, true, true), Read),
            None,
            "send rights do not read"
        );
    }

    #[test]
    fn a_role_acts_as_its_user_and_read_only_only_reads() {
        let role = |kind| Actor::Role {
            org_id: "m-1",
            role_id: "r",
            user_id: "u2",
            kind,
        };
        for a in ALL_ACTIONS {
            assert_eq!(
                decide(role(RoleType::FullAccess), "u2", Rights::default(), a),
                Some(Grant::Role)
            );
            let read_only = decide(role(RoleType::ReadOnly), "u2", Rights::default(), a);
            assert_eq!(read_only.is_some(), is_read(a), "{a:?}");
            assert_eq!(
                decide(role(RoleType::FullAccess), "u3", Rights::ALL, a),
                None,
                "another mailbox"
            );
        }
        assert!(!is_read(UpdateReadState), "marking read is a write");
    }

    /// Every decision through `MailboxRights` leaves one audit record, allowed or
    /// not; sending from another's address needs a send grant, not FULL_ACCESS.
    #[test]
    fn decisions_are_audited_once_each() {
        use crate::directory::{MemoryBackend, Permission, testing};
        use std::sync::Arc;
        let d = Arc::new(Directory::open(Arc::new(MemoryBackend::new())).unwrap());
        let org = d.create_organization("acme", "acme.test").unwrap();
        let boss = testing::user(&d, &org, "boss", "Corr3ct-Horse");
        let pa = testing::user(&d, &org, "pa", "Corr3ct-Horse");
        d.put_mailbox_permissions(&org, &boss, &pa, &[Permission::FullAccess])
            .unwrap();
        let (events, captured) = Events::capture();
        let rights = MailboxRights::new(d.clone(), events, "arn:x/".into());
        let origin = Origin {
            protocol: AuditProtocol::Smtp,
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
        };
        let pa_acts = Actor::User {
            org_id: &org,
            user_id: &pa,
        };
        assert_eq!(
            rights.send_authority(pa_acts, "pa@acme.test", origin),
            SendAuthority::Own
        );
        assert_eq!(
            rights.send_authority(pa_acts, "boss@acme.test", origin),
            SendAuthority::No
        );
        assert_eq!(
            rights.send_authority(pa_acts, "nobody@acme.test", origin),
            SendAuthority::No
        );
        assert_eq!(
            rights.authorize(pa_acts, &boss, Read, Object::default(), origin),
            Some(Grant::FullAccess)
        );
        assert_eq!(rights.peek(pa_acts, &boss, Delete), Some(Grant::FullAccess));
        d.put_mailbox_permissions(&org, &boss, &pa, &[Permission::SendOnBehalf])
            .unwrap();
        assert_eq!(
            rights.send_authority(pa_acts, "boss@acme.test", origin),
            SendAuthority::OnBehalf {
                owner: boss.clone()
            }
        );
        assert_eq!(
            rights.authorize(pa_acts, &boss, Read, Object::default(), origin),
            None
        );
        // Own send, refused send, read, on-behalf send, refused read: five records
        // (the unknown address and the peek leave none).
        let mut records = Vec::new();
        for _ in 0..200 {
            records = captured.audit.lock().unwrap().clone();
            if records.len() >= 5 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let allowed: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r["action"].clone(),
                    r["action_allowed"].clone(),
                    r["owner_id"] == *boss,
                )
            })
            .collect();
        assert_eq!(
            allowed,
            [
                (
                    serde_json::json!("submit_email_for_sending"),
                    serde_json::json!(true),
                    false
                ),
                (
                    serde_json::json!("submit_email_for_sending"),
                    serde_json::json!(false),
                    true
                ),
                (serde_json::json!("read"), serde_json::json!(true), true),
                (
                    serde_json::json!("submit_email_for_sending"),
                    serde_json::json!(true),
                    true
                ),
                (serde_json::json!("read"), serde_json::json!(false), true),
            ]
        );
        assert!(
            records
                .iter()
                .all(|r| r["log_type"] == "mailbox_access" && r["user_id"] == *pa)
        );
    }
}
