//! `submission::Submit` for protocols other than SMTP (EWS): the message goes the
//! way an authenticated SMTP submission goes — sender rights on its From, the
//! recipients resolved as RCPT resolves them, a Received and the submission
//! headers added, one durable write for every local copy, the Sent Items copy and
//! the outbound queue, with the flow's email events in the same commit.

use std::sync::Arc;

use async_trait::async_trait;

use super::SmtpContext;
use super::delivery::{self, AcceptedRcpt, Destination, Envelope, Submitter};
use super::message::{header_facts, received_header, submission_headers};
use crate::access::mailbox::{Actor, Origin, SendAuthority};
use crate::submission::{Submission, Submit, SubmitError, Submitted};

#[async_trait]
impl Submit for SmtpContext {
    async fn submit(&self, s: Submission<'_>) -> Result<Submitted, SubmitError> {
        if s.message.len() > self.limits.max_message_size {
            return Err(SubmitError::TooLarge);
        }
        let (org, user) = match s.actor {
            Actor::User { org_id, user_id }
            | Actor::Role {
                org_id, user_id, ..
            } => (org_id, user_id),
        };
        let own = self
            .directory
            .describe_user(org, user)
            .ok()
            .and_then(|u| u.base.email);
        let mut facts = header_facts(&s.message);
        let from = match facts.from.to_ascii_lowercase() {
            f if f.is_empty() => own
                .clone()
                .ok_or_else(|| SubmitError::SendAsDenied(String::new()))?,
            f => f,
        };
        let origin = Origin {
            protocol: s.protocol,
            source_ip: s.source_ip,
            user_agent: None,
        };
        let on_behalf_of = match self.auth.mailboxes().send_authority(s.actor, &from, origin) {
            SendAuthority::Own | SendAuthority::SendAs { .. } => None,
            SendAuthority::OnBehalf { .. } => own.clone(),
            SendAuthority::No => return Err(SubmitError::SendAsDenied(from)),
        };
        let mut rcpts: Vec<AcceptedRcpt> = Vec::new();
        for address in s.recipients.iter().map(|a| a.trim().to_ascii_lowercase()) {
            if address.is_empty() || rcpts.iter().any(|r| r.address == address) {
                continue;
            }
            let mailboxes = match delivery::destination(self, &address, true) {
                Destination::Local(m) => m,
                Destination::Remote => vec![],
                Destination::Unknown => {
                    return Err(SubmitError::Recipient(address, "user unknown"));
                }
                Destination::NoRelay => {
                    return Err(SubmitError::Recipient(
                        address,
                        "no relay (smarthost) is configured for other domains",
                    ));
                }
                Destination::NoMailbox => {
                    return Err(SubmitError::Recipient(
                        address,
                        "no mailbox behind this address",
                    ));
                }
            };
            rcpts.push(AcceptedRcpt {
                address,
                notify_failure: true,
                mailboxes,
            });
        }
        if rcpts.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        let now = crate::clock::now_secs();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut head = received_header("ews", s.source_ip, &self.hostname, "HTTPS", &id, now);
        head.push_str(&submission_headers(
            &mut facts,
            &self.hostname,
            now,
            on_behalf_of.as_deref(),
        ));
        let message: Arc<[u8]> = head
            .as_bytes()
            .iter()
            .chain(s.message.iter())
            .copied()
            .collect();
        let submitter = Submitter {
            org: org.to_string(),
            user_id: user.to_string(),
            on_behalf_of,
            sent_copy: s.save_copy,
        };
        let trace = crate::events::new_id();
        let submitted = vec![crate::events::outbox::email_row(
            org,
            &trace,
            &crate::events::EmailEvent::OutgoingEmailSubmitted {
                recipients: rcpts.iter().map(|r| r.address.clone()).collect(),
                sender: submitter.on_behalf_of.clone(),
                from: if facts.from.is_empty() {
                    from.clone()
                } else {
                    facts.from.clone()
                },
                subject: facts.subject.clone(),
            },
        )];
        let envelope_from = own.unwrap_or(from);
        let envelope = Envelope {
            from: &envelope_from,
            envelope_id: None,
            rcpts: &rcpts,
        };
        let queued =
            delivery::outbound_message(self, message.clone(), envelope, &submitter, &facts, trace);
        let report = delivery::deliver(
            self,
            message.clone(),
            &rcpts,
            &facts,
            Some(&submitter),
            queued,
            None,
            submitted,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "submission over EWS failed; nothing was stored");
            SubmitError::Storage
        })?;
        if !report.bounced.is_empty()
            && let Err(e) =
                delivery::return_refused(self, envelope, &report, &message, now * 1000).await
        {
            tracing::error!(error = %e, "a DSN for a refused recipient was not stored");
        }
        Ok(Submitted {
            sent_copy: report.sent_copy,
        })
    }
}
