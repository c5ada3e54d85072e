//! Records produced by the code checked against the committed JSON Schemas
//! (`schemas/events/*.schema.json`). The checker covers the keywords those
//! schemas use except `pattern` (no regex crate in the tree); the interop test
//! validates real flows with the full Python `jsonschema`.

use std::net::IpAddr;

use serde_json::Value;

use super::audit::*;
use super::email::*;
use super::new_id;

fn schema(file: &str) -> Value {
    let path = format!("{}/schemas/events/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// Problems of `v` against `s`, with their JSON paths.
fn check(s: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(c) = s.get("const")
        && c != v
    {
        out.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(v)
    {
        out.push(format!("{at}: {v} not in the enum"));
    }
    if let Some(Value::String(t)) = s.get("type") {
        let ok = match t.as_str() {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            other => panic!("type {other} not handled by the checker"),
        };
        if !ok {
            out.push(format!("{at}: {v} is not {t}"));
            return;
        }
    }
    if let (Some(min), Some(text)) = (s.get("minLength").and_then(Value::as_u64), v.as_str())
        && (text.chars().count() as u64) < min
    {
        out.push(format!("{at}: shorter than {min}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_i64), v.as_i64())
        && n < min
    {
        out.push(format!("{at}: below {min}"));
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(items, item, &format!("{at}[{i}]"), out);
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = r.as_str()
                && !obj.contains_key(k)
            {
                out.push(format!("{at}.{k}: required"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, val, &format!("{at}.{k}"), out),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{at}.{k}: not allowed"))
                }
                None => {}
            }
        }
    }
}

fn assert_valid(file: &str, v: &Value) {
    let mut problems = Vec::new();
    check(&schema(file), v, "$", &mut problems);
    assert!(problems.is_empty(), "{file}: {problems:?}\n{v}");
}

fn bounced() -> BouncedRecipient {
    BouncedRecipient {
        email_address: "b@example.test".into(),
        reason: "mailbox full".into(),
        status: "5.2.2".into(),
    }
}

fn every_email_event() -> Vec<EmailEvent> {
    vec![
        EmailEvent::OrganizationEmailReceived {
            recipients: vec!["a@example.test".into()],
            sender: None,
            from: "x@remote.test".into(),
            subject: "hi".into(),
            message_id: "m1@remote.test".into(),
            spam_verdict: "PASS".into(),
            dkim_verdict: "NONE".into(),
            dmarc_verdict: "FAIL".into(),
            dmarc_policy: Some("REJECT".into()),
            spf_verdict: "NONE".into(),
            message_timestamp: 1,
        },
        EmailEvent::MailboxEmailDelivered {
            recipient: "a@example.test".into(),
            folder: "Inbox".into(),
        },
        EmailEvent::RuleApplied {
            rule_name: "r".into(),
            rule_type: "INBOUND_RULE".into(),
            rule_actions: vec![RuleAction {
                action: "BOUNCE".into(),
                recipients: vec!["a@example.test".into()],
            }],
            target_folder: None,
            target_recipient: None,
        },
        EmailEvent::JournalingInitiated {
            journaling_address: "j@example.test".into(),
        },
        EmailEvent::IncomingEmailBounced {
            bounced_recipient: bounced(),
        },
        EmailEvent::OutgoingEmailSubmitted {
            recipients: vec!["z@remote.test".into()],
            sender: Some("d@example.test".into()),
            from: "a@example.test".into(),
            subject: "s".into(),
        },
        EmailEvent::OutgoingEmailSent {
            recipient: "z@remote.test".into(),
            sender: None,
            from: "a@example.test".into(),
            message_id: "m2@example.test".into(),
        },
        EmailEvent::OutgoingEmailBounced {
            bounced_recipient: bounced(),
            destination: "remote.test".into(),
            reason: "550 5.1.1 no such user".into(),
        },
        EmailEvent::DmarcPolicyApplied {
            from: "x@remote.test".into(),
            recipients: vec!["a@example.test".into()],
            policy: "QUARANTINE".into(),
        },
    ]
}

fn every_audit_event() -> Vec<AuditEvent> {
    let arn = "arn:aws:workmail:local:000000000000:organization/m-0123abcd".to_string();
    let ip: IpAddr = "::1".parse().unwrap();
    vec![
        AuditEvent::MailboxAccess(MailboxAccess {
            request_id: new_id(),
            organization_arn: arn.clone(),
            user_id: "u".into(),
            impersonator_id: Some("i".into()),
            protocol: AuditProtocol::Imap,
            source_ip: ip,
            user_agent: None,
            action: MailboxAction::UpdateReadState,
            owner_id: "u".into(),
            object_type: ObjectType::Message,
            item_id: Some("1".into()),
            folder_path: Some("INBOX".into()),
            folder_id: None,
            attachment_path: None,
            action_allowed: true,
        }),
        AuditEvent::AccessControl(AccessControl {
            request_id: new_id(),
            organization_arn: arn.clone(),
            user_id: "u".into(),
            impersonator_id: None,
            protocol: AuditProtocol::Smtp,
            source_ip: ip,
            scope: AccessScope::AccessControl,
            rule_id: Some("deny-smtp".into()),
            access_granted: false,
        }),
        AuditEvent::Authentication(Authentication {
            request_id: new_id(),
            organization_arn: String::new(),
            user_id: String::new(),
            user: "nobody@example.test".into(),
            protocol: AuditProtocol::Smtp,
            source_ip: ip,
            user_agent: None,
            method: "basic",
            auth_successful: false,
            auth_failed_reason: Some("unknown user".into()),
            personal_access_token_id: None,
        }),
        AuditEvent::PersonalAccessToken(PersonalAccessToken {
            request_id: new_id(),
            organization_arn: arn.clone(),
            user_id: "u".into(),
            user: "a@example.test".into(),
            protocol: "webapp",
            source_ip: ip,
            user_agent: Some("curl".into()),
            action: PatAction::Create,
            name: "t".into(),
            expires_time: Some(5),
            scopes: vec!["mail".into()],
        }),
        AuditEvent::AvailabilityProvider(AvailabilityProvider {
            request_id: new_id(),
            organization_arn: arn,
            user_id: "u".into(),
            provider_type: "EWS",
            domain: "partner.test".into(),
            function_arn: None,
            ews_endpoint: Some("https://partner.test/EWS/Exchange.asmx".into()),
            error_message: None,
            availability_event_successful: true,
        }),
    ]
}

#[test]
fn every_email_event_matches_its_schema() {
    for e in every_email_event() {
        let file = format!(
            "email-{}.schema.json",
            e.name().to_lowercase().replace('_', "-")
        );
        assert_valid(&file, &e.to_json(&new_id(), &new_id(), 1_700_000_000_000));
    }
}

#[test]
fn every_audit_record_matches_its_schema() {
    for e in every_audit_event() {
        let file = format!("audit-{}.schema.json", e.log_type().replace('_', "-"));
        assert_valid(&file, &e.to_json(&new_id(), 1_700_000_000_000));
    }
}

#[test]
fn the_checker_catches_what_a_schema_forbids() {
    let s = schema("email-mailbox-email-delivered.schema.json");
    let good = every_email_event()[1].to_json(&new_id(), &new_id(), 1);
    let mut problems = Vec::new();
    check(&s, &good, "$", &mut problems);
    assert!(problems.is_empty());
    let mut bad = good.clone();
    bad["event"].as_object_mut().unwrap().remove("folder");
    bad["event"]["extra"] = 1.into();
    bad["eventTimestamp"] = "soon".into();
    check(&s, &bad, "$", &mut problems);
    assert_eq!(problems.len(), 3, "{problems:?}");
}
