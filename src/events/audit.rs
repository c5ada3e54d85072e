//! The five WorkMail audit log types as typed records (snake_case fields verbatim
//! from the WorkMail guide), so a producer cannot emit a malformed record.

use std::net::IpAddr;

use serde::Serialize;

/// Protocol values of the audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuditProtocol {
    AutoDiscover,
    #[serde(rename = "EWS")]
    Ews,
    #[serde(rename = "IMAP")]
    Imap,
    WindowsOutlook,
    ActiveSync,
    #[serde(rename = "SMTP")]
    Smtp,
    WebMail,
    IncomingEmail,
    OutgoingEmail,
}

/// Which evaluation an access-control record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AccessScope {
    AccessControl,
    DeviceAccessControl,
    ImpersonationAccessControl,
}

/// One evaluation of the access control rules (or of an impersonation role's rules).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessControl {
    pub request_id: String,
    pub organization_arn: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonator_id: Option<String>,
    pub protocol: AuditProtocol,
    pub source_ip: IpAddr,
    pub scope: AccessScope,
    /// The deciding rule's name; absent when no rule matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub access_granted: bool,
}

/// One authentication attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Authentication {
    pub request_id: String,
    pub organization_arn: String,
    /// Empty when the login named nobody we know.
    pub user_id: String,
    /// The login name the client used.
    pub user: String,
    pub protocol: AuditProtocol,
    pub source_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Always `basic` (passwords).
    pub method: &'static str,
    pub auth_successful: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_failed_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_access_token_id: Option<String>,
}

/// What a mailbox access did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxAction {
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
}

/// The object a mailbox access touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ObjectType {
    Folder,
    Message,
    Attachment,
}

/// One operation attempted on an item or folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailboxAccess {
    pub request_id: String,
    pub organization_arn: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonator_id: Option<String>,
    pub protocol: AuditProtocol,
    pub source_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub action: MailboxAction,
    pub owner_id: String,
    pub object_type: ObjectType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_path: Option<String>,
    pub action_allowed: bool,
}

/// A personal access token was created or deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonalAccessToken {
    pub request_id: String,
    pub organization_arn: String,
    pub user_id: String,
    pub user: String,
    pub protocol: &'static str,
    pub source_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub action: PatAction,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_time: Option<i64>,
    pub scopes: Vec<String>,
}

/// PAT actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatAction {
    Create,
    Delete,
}

/// One availability (free/busy) request to a provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvailabilityProvider {
    pub request_id: String,
    pub organization_arn: String,
    pub user_id: String,
    #[serde(rename = "type")]
    pub provider_type: &'static str,
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ews_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub availability_event_successful: bool,
}

/// Any audit record.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditEvent {
    MailboxAccess(MailboxAccess),
    AccessControl(AccessControl),
    Authentication(Authentication),
    PersonalAccessToken(PersonalAccessToken),
    AvailabilityProvider(AvailabilityProvider),
}

impl AuditEvent {
    /// The audit log type, as sinks filter on it.
    pub fn log_type(&self) -> &'static str {
        match self {
            AuditEvent::MailboxAccess(_) => "mailbox_access",
            AuditEvent::AccessControl(_) => "access_control",
            AuditEvent::Authentication(_) => "authentication",
            AuditEvent::PersonalAccessToken(_) => "personal_access_token",
            AuditEvent::AvailabilityProvider(_) => "availability_provider",
        }
    }

    /// The record as one JSON line: the fields plus `event_timestamp` (epoch ms),
    /// `event_id` (unique, for de-duplication) and `log_type`, serialized straight
    /// from the event (no intermediate map: EWS writes one per item it reads).
    pub fn to_line(&self, event_id: &str, event_timestamp: i64) -> String {
        #[derive(Serialize)]
        struct Line<'a, E: Serialize> {
            #[serde(flatten)]
            event: &'a E,
            event_timestamp: i64,
            event_id: &'a str,
            log_type: &'a str,
        }
        fn line<E: Serialize>(event: &E, id: &str, ts: i64, log_type: &str) -> String {
            let l = Line {
                event,
                event_timestamp: ts,
                event_id: id,
                log_type,
            };
            serde_json::to_string(&l).unwrap_or_default()
        }
        let t = self.log_type();
        match self {
            AuditEvent::MailboxAccess(e) => line(e, event_id, event_timestamp, t),
            AuditEvent::AccessControl(e) => line(e, event_id, event_timestamp, t),
            AuditEvent::Authentication(e) => line(e, event_id, event_timestamp, t),
            AuditEvent::PersonalAccessToken(e) => line(e, event_id, event_timestamp, t),
            AuditEvent::AvailabilityProvider(e) => line(e, event_id, event_timestamp, t),
        }
    }

    /// [`AuditEvent::to_line`] as a JSON value (for tests and schema checks).
    pub fn to_json(&self, event_id: &str, event_timestamp: i64) -> serde_json::Value {
        serde_json::from_str(&self.to_line(event_id, event_timestamp)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_control_record_has_the_workmail_fields() {
        let e = AuditEvent::AccessControl(AccessControl {
            request_id: "r1".into(),
            organization_arn: "arn:aws:workmail:local:000000000000:organization/m-0".into(),
            user_id: "u1".into(),
            impersonator_id: None,
            protocol: AuditProtocol::Imap,
            source_ip: "127.0.0.1".parse().unwrap(),
            scope: AccessScope::AccessControl,
            rule_id: None,
            access_granted: false,
        });
        let v = e.to_json("e1", 42);
        assert_eq!(v["protocol"], "IMAP");
        assert_eq!(v["scope"], "AccessControl");
        assert_eq!(v["source_ip"], "127.0.0.1");
        assert_eq!(v["event_timestamp"], 42);
        assert_eq!(v["access_granted"], false);
        assert!(v.get("rule_id").is_none(), "absent when no rule matched");
        assert!(v.get("impersonator_id").is_none());
    }
}
