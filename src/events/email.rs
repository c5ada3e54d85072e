//! WorkMail email events (camelCase fields, `eventName` tag) as typed records.

use serde::Serialize;

/// `bouncedRecipient` of the bounce events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BouncedRecipient {
    pub email_address: String,
    pub reason: String,
    /// Enhanced status code, e.g. `5.2.2`.
    pub status: String,
}

/// One action of an email flow rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleAction {
    pub action: String,
    pub recipients: Vec<String>,
}

/// The email events of WorkMail's event catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "eventName", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailEvent {
    #[serde(rename_all = "camelCase")]
    OrganizationEmailReceived {
        recipients: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
        from: String,
        subject: String,
        message_id: String,
        spam_verdict: String,
        dkim_verdict: String,
        dmarc_verdict: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        dmarc_policy: Option<String>,
        spf_verdict: String,
        message_timestamp: i64,
    },
    #[serde(rename_all = "camelCase")]
    MailboxEmailDelivered { recipient: String, folder: String },
    #[serde(rename_all = "camelCase")]
    RuleApplied {
        rule_name: String,
        rule_type: String,
        rule_actions: Vec<RuleAction>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target_folder: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target_recipient: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    JournalingInitiated { journaling_address: String },
    #[serde(rename_all = "camelCase")]
    IncomingEmailBounced { bounced_recipient: BouncedRecipient },
    #[serde(rename_all = "camelCase")]
    OutgoingEmailSubmitted {
        recipients: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
        from: String,
        subject: String,
    },
    #[serde(rename_all = "camelCase")]
    OutgoingEmailSent {
        recipient: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
        from: String,
        message_id: String,
    },
    #[serde(rename_all = "camelCase")]
    OutgoingEmailBounced {
        bounced_recipient: BouncedRecipient,
        destination: String,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    DmarcPolicyApplied {
        from: String,
        recipients: Vec<String>,
        policy: String,
    },
}

impl EmailEvent {
    /// The `eventName`, as sink filters name it.
    pub fn name(&self) -> &'static str {
        match self {
            EmailEvent::OrganizationEmailReceived { .. } => "ORGANIZATION_EMAIL_RECEIVED",
            EmailEvent::MailboxEmailDelivered { .. } => "MAILBOX_EMAIL_DELIVERED",
            EmailEvent::RuleApplied { .. } => "RULE_APPLIED",
            EmailEvent::JournalingInitiated { .. } => "JOURNALING_INITIATED",
            EmailEvent::IncomingEmailBounced { .. } => "INCOMING_EMAIL_BOUNCED",
            EmailEvent::OutgoingEmailSubmitted { .. } => "OUTGOING_EMAIL_SUBMITTED",
            EmailEvent::OutgoingEmailSent { .. } => "OUTGOING_EMAIL_SENT",
            EmailEvent::OutgoingEmailBounced { .. } => "OUTGOING_EMAIL_BOUNCED",
            EmailEvent::DmarcPolicyApplied { .. } => "DMARC_POLICY_APPLIED",
        }
    }

    /// `{"traceId", "eventTimestamp", "eventId", "event": {"eventName", ...}}`.
    #[cfg(test)]
    pub fn to_json(
        &self,
        trace_id: &str,
        event_id: &str,
        event_timestamp: i64,
    ) -> serde_json::Value {
        serde_json::to_value(self.record(trace_id, event_id, event_timestamp)).unwrap_or_default()
    }

    /// The same record as one JSON line, serialized straight from the event (the
    /// `Value` tree of [`Self::to_json`] cost an allocation per field on every
    /// delivered message).
    pub fn to_line(&self, trace_id: &str, event_id: &str, event_timestamp: i64) -> String {
        serde_json::to_string(&self.record(trace_id, event_id, event_timestamp)).unwrap_or_default()
    }

    fn record<'a>(
        &'a self,
        trace_id: &'a str,
        event_id: &'a str,
        event_timestamp: i64,
    ) -> Record<'a> {
        Record {
            trace_id,
            event_timestamp,
            event_id,
            event: self,
        }
    }
}

/// The envelope every email event travels in.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    trace_id: &'a str,
    event_timestamp: i64,
    event_id: &'a str,
    event: &'a EmailEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_insights_queries() {
        let e = EmailEvent::IncomingEmailBounced {
            bounced_recipient: BouncedRecipient {
                email_address: "b@example.test".into(),
                reason: "mailbox full".into(),
                status: "5.2.2".into(),
            },
        };
        let v = e.to_json("t1", "e1", 7);
        let line: serde_json::Value = serde_json::from_str(&e.to_line("t1", "e1", 7)).unwrap();
        assert_eq!(line, v, "the sink line is the same record");
        assert_eq!(v["eventTimestamp"], 7);
        assert_eq!(v["eventId"], "e1");
        assert_eq!(v["traceId"], "t1");
        assert_eq!(v["event"]["eventName"], "INCOMING_EMAIL_BOUNCED");
        assert_eq!(
            v["event"]["bouncedRecipient"]["emailAddress"],
            "b@example.test"
        );
        let e = EmailEvent::MailboxEmailDelivered {
            recipient: "a@x.test".into(),
            folder: "Inbox".into(),
        };
        assert_eq!(
            e.to_json("t", "e", 1)["event"]["eventName"],
            "MAILBOX_EMAIL_DELIVERED"
        );
        let e = EmailEvent::DmarcPolicyApplied {
            from: "f".into(),
            recipients: vec![],
            policy: "REJECT".into(),
        };
        assert_eq!(
            e.to_json("t", "e", 1)["event"]["eventName"],
            "DMARC_POLICY_APPLIED"
        );
        assert_eq!(e.name(), "DMARC_POLICY_APPLIED");
        for name in crate::events::config::EMAIL_EVENT_NAMES {
            assert_eq!(
                name,
                name.to_ascii_uppercase(),
                "filter names are the eventName values"
            );
        }
    }
}
